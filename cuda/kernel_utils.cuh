// Device helpers shared by the pointwise kernel families (norm, rope, activation, elementwise, layout, embedding,
// adaln_modulate, flow_ode): row addressing, warp/block reductions, parameter loads, vector access and the one
// switch macro that turns runtime layout facts into template parameters.
//
// Row model (the same as the CPU's native/core/cpu/rows.h): a tensor [..., C] whose last dimension is contiguous is
// a list of rows of C floats; the leading dimensions may have any strides. RowMap holds those leading dims after
// folding (dims laid out back to back collapse into one), so the common contiguous case is one multiply.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "dtype.h"
#include "error.h"

namespace showo2::cuda {

// Leading dimensions a RowMap can hold after folding: rank-6 tensors with nothing foldable, e.g. a permuted
// [N, C, T, H, W] view plus a batch.
constexpr int kMaxRowDims = 6;

// Row r of a [..., C] tensor starts at element offset(r). Row indices are row-major over the leading dims, and the
// outermost index wraps (r % size[0]), which is how a suffix-shaped operand broadcasts over extra leading rows.
struct RowMap {
  int rank = 0;                      // number of folded leading dims (0: a single row at offset 0)
  int64_t size[kMaxRowDims] = {};    // folded sizes, outermost first
  int64_t stride[kMaxRowDims] = {};  // element strides matching size[]

  __host__ __device__ __forceinline__ int64_t offset(int64_t row) const {
    if (rank == 1) return (row % size[0]) * stride[0];
    int64_t off = 0;
    for (int d = rank - 1; d >= 0; --d) {
      off += (row % size[d]) * stride[d];
      row /= size[d];
    }
    return off;
  }
  // True when the rows are back to back (row r starts at r * cols) for `rows` rows: the flat fast path applies.
  __host__ __device__ bool is_dense(int64_t rows, int64_t cols) const {
    if (rows <= 1) return true;
    return rank == 1 && size[0] == rows && stride[0] == cols;
  }
};

// Builds the RowMap of the leading `leading` dims of (sizes, strides). Size-1 dims are dropped and adjacent dims
// that are laid out back to back are folded. Throws ERR_SHAPE_MISMATCH naming `what` when more than kMaxRowDims
// remain.
inline RowMap make_row_map(const int64_t* sizes, const int64_t* strides, int leading, const char* what) {
  RowMap m;
  for (int d = 0; d < leading; ++d) {
    if (sizes[d] == 1) continue;
    if (m.rank > 0 && m.stride[m.rank - 1] == sizes[d] * strides[d]) {
      m.size[m.rank - 1] *= sizes[d];
      m.stride[m.rank - 1] = strides[d];
      continue;
    }
    if (m.rank == kMaxRowDims)
      fail(ErrorCode::ShapeMismatch, what, ": more than ", kMaxRowDims,
           " non-foldable leading dimensions are not supported on the GPU");
    m.size[m.rank] = sizes[d];
    m.stride[m.rank] = strides[d];
    ++m.rank;
  }
  return m;
}

// A contiguous [rows, cols] operand.
inline RowMap dense_rows(int64_t rows, int64_t cols) {
  RowMap m;
  m.rank = 1;
  m.size[0] = rows > 0 ? rows : 1;
  m.stride[0] = cols;
  return m;
}

// ---- parameter loads (weights, biases, gammas, embedding tables) ---------------------------------------------------
// Norm weights stay F32 on the device (spec §12), but a BF16/F16 checkpoint tensor passed straight through must work
// too. The dtype is a runtime value read through a switch that is uniform across the grid: these kernels are
// memory-bound with plenty of ALU slack, and it keeps the instantiation count at one per layout variant instead of
// one per (weight, bias) dtype pair.
__device__ __forceinline__ float load_as_float(const void* p, DType dtype, int64_t i) {
  switch (dtype) {
    case DType::BF16: return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
    case DType::F16: return __half2float(static_cast<const __half*>(p)[i]);
    default: return static_cast<const float*>(p)[i];
  }
}

// An optional parameter: `fallback` (1 for a weight, 0 for a bias) where the pointer is null.
__device__ __forceinline__ float load_param(const void* p, DType dtype, int64_t i, float fallback) {
  return p == nullptr ? fallback : load_as_float(p, dtype, i);
}

// ---- reductions ----------------------------------------------------------------------------------------------------

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// max that propagates NaN (torch.max semantics; fmaxf would drop it), so a NaN row gives a NaN softmax as on the CPU.
__device__ __forceinline__ float max_nan(float a, float b) { return (a > b || a != a) ? a : b; }

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = max_nan(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum / max over the kThreads threads that own one row. kThreads == 32: the row is one warp (several rows per block,
// threadIdx.y picks the row). kThreads > 32: the row is the whole block (blockDim.x == kThreads, blockDim.y == 1)
// and the warps meet in shared memory. Every thread gets the result. Consecutive calls are safe without an extra
// barrier: a thread can only overwrite `partial` after passing the next call's first barrier, which everyone reaches
// only after reading `total` of the previous call.
template <int kThreads>
__device__ __forceinline__ float row_sum(float v) {
  static_assert(kThreads == 32 || (kThreads % 32 == 0 && kThreads <= 1024), "row owners: a warp or a whole block");
  v = warp_sum(v);
  if constexpr (kThreads > 32) {
    __shared__ float partial[kThreads / 32];
    __shared__ float total;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    if (warp == 0) {
      float t = lane < kThreads / 32 ? partial[lane] : 0.0f;
      t = warp_sum(t);
      if (lane == 0) total = t;
    }
    __syncthreads();
    v = total;
  }
  return v;
}

template <int kThreads>
__device__ __forceinline__ float row_max(float v) {
  static_assert(kThreads == 32 || (kThreads % 32 == 0 && kThreads <= 1024), "row owners: a warp or a whole block");
  v = warp_max(v);
  if constexpr (kThreads > 32) {
    __shared__ float partial[kThreads / 32];
    __shared__ float total;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    if (warp == 0) {
      float t = lane < kThreads / 32 ? partial[lane] : -INFINITY;
      t = warp_max(t);
      if (lane == 0) total = t;
    }
    __syncthreads();
    v = total;
  }
  return v;
}

// ---- vector access -------------------------------------------------------------------------------------------------
// kVec = 4 moves float4 (16 B per thread per access, what the memory system is best at); kVec = 1 is the fallback
// for odd sizes and misaligned views.

template <int kVec>
struct VecF;
template <>
struct VecF<1> {
  float v[1];
};
template <>
struct alignas(16) VecF<4> {
  float v[4];
};

template <int kVec>
__device__ __forceinline__ VecF<kVec> load_vec(const float* p) {
  VecF<kVec> r;
  if constexpr (kVec == 4) {
    const float4 t = *reinterpret_cast<const float4*>(p);
    r.v[0] = t.x; r.v[1] = t.y; r.v[2] = t.z; r.v[3] = t.w;
  } else {
    r.v[0] = *p;
  }
  return r;
}

template <int kVec>
__device__ __forceinline__ void store_vec(float* p, const VecF<kVec>& r) {
  if constexpr (kVec == 4) {
    *reinterpret_cast<float4*>(p) = make_float4(r.v[0], r.v[1], r.v[2], r.v[3]);
  } else {
    *p = r.v[0];
  }
}

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// ---- launch sizing -------------------------------------------------------------------------------------------------

// Blocks for `work` items at `per_block` items each, capped so grid-stride loops pick up the rest (the cap is far
// above what fills an H100, 132 SMs x 16 resident blocks).
inline unsigned int blocks_for(int64_t work, int64_t per_block) {
  const int64_t blocks = (work + per_block - 1) / per_block;
  constexpr int64_t kMaxBlocks = int64_t{1} << 20;
  return static_cast<unsigned int>(blocks < 1 ? 1 : (blocks > kMaxBlocks ? kMaxBlocks : blocks));
}

}  // namespace showo2::cuda

// The one place a runtime layout fact becomes a template parameter (FlashAttention's BOOL_SWITCH): the lambda body
// is instantiated for both values and the matching one runs. Keep the instantiation lists short: each kernel
// switches on at most two facts (vector width, and row owner size where it has one).
//   SHOWO2_VEC_SWITCH(use_vec4, kVec, [&] { launch<kVec>(...); });
#define SHOWO2_VEC_SWITCH(USE_VEC4, CONST_NAME, ...) \
  [&] {                                              \
    if (USE_VEC4) {                                  \
      constexpr int CONST_NAME = 4;                  \
      return __VA_ARGS__();                          \
    } else {                                         \
      constexpr int CONST_NAME = 1;                  \
      return __VA_ARGS__();                          \
    }                                                \
  }()

#define SHOWO2_BOOL_SWITCH(COND, CONST_NAME, ...) \
  [&] {                                           \
    if (COND) {                                   \
      constexpr bool CONST_NAME = true;           \
      return __VA_ARGS__();                       \
    } else {                                      \
      constexpr bool CONST_NAME = false;          \
      return __VA_ARGS__();                       \
    }                                             \
  }()
