// GPU attention: scaled dot-product attention with grouped KV heads and the omni mask as data.
//
//   out[b, i, h, :] = sum_j softmax_j(scale * q[b, i, h, :] · k[b, j, g, :] | j < key_end(b, i)) * v[b, j, g, :]
//   g = h / (Hq / Hkv), key_end(b, i) = the omni mask's visible-key prefix of query row i (omni_mask.h, spec §5.1).
//
// Shapes: q [B, Lq, Hq, D], k [B, Lk, Hkv, D], v [B, Lk, Hkv, Dv], out [B, Lq, Hq, Dv]; last dims contiguous, the
// other strides arbitrary (views into fused projections and KV caches). Show-o2's shapes (spec §12): LLM 12/2 or
// 28/4 heads of 128, flow head 32/8 of 64, SigLIP 16 of 72, the VAE's single 384-wide head.
// Precision: q, k, v F32 (or BF16), widened to F32 when staged into shared memory; scores, softmax and P·V
// accumulate in F32; out F32. Exponentials are exp2 of log2(e)-prescaled scores, as in the CPU twin
// (native/core/cpu/attention.cpp). A row that sees no key writes zeros; a row whose visible scores are all NaN or
// -inf writes NaN (as PyTorch and the CPU twin do).
//
// Variants (AttentionParams::variant):
//   v1 Naive  one thread block per (b, h, query row); two exact passes over the visible keys (row max, then
//             probabilities, their sum and P·V in chunks of 128 keys). Plain loops, any head dim that fits shared
//             memory; the reference the tiled kernel is checked against on the GPU.
//   v2 Tiled  FlashAttention-2's structure on CUDA cores: a thread block owns kBlockQ query rows of one (b, h), walks
//             kBlockK-key tiles with a running max and sum per row, and never materialises Lq x Lk. Each tile is
//             classified from key_end as skip / full / partial and only partial tiles mask per element. F32 FMAs,
//             no tensor cores: the fast bf16 tensor-core kernels are issue [attn].
//   v3 TensorCore: cuda/attention_mma.cu (BF16 tensor cores); launch_attention dispatches to it.
//   Split-KV decoding: cuda/attention_decode.cu (a few query rows over a long KV cache); Auto with a workspace.
// Checked by test/native/attention_cuda_test.cu (against the CPU backend, and the variants against each other).
// Bench: build/attention_cuda_bench [--json] [--variants v1,v2] (same case names as bench/gpu/torch_baselines.py).
#include "attention.h"

#include <cuda_bf16.h>

#include <algorithm>
#include <limits>

#include "attention_decode.h"
#include "attention_mma.h"
#include "error.h"

namespace showo2::cuda {

namespace {

constexpr float kLog2e = 1.4426950408889634f;
// The params (with the mask) travel as a kernel argument; 4 KiB is the limit on every architecture and toolkit.
static_assert(sizeof(AttentionParams) <= 4096, "AttentionParams must fit the kernel parameter space");
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// ---- device code ------------------------------------------------------------------------------------------------

__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }

// ---- v1: naive ----------------------------------------------------------------------------------------------------

constexpr int kNaiveThreads = 128;

// Block-wide reductions over kNaiveThreads threads; `scratch` holds one float per warp. Every thread gets the result.
template <bool kMax>
__device__ float naive_block_reduce(float x, float* scratch) {
  for (int offset = 16; offset > 0; offset /= 2) {
    const float y = __shfl_xor_sync(0xffffffffu, x, offset);
    x = kMax ? fmaxf(x, y) : x + y;
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) scratch[warp] = x;
  __syncthreads();
  x = scratch[0];
  for (int w = 1; w < kNaiveThreads / 32; ++w) x = kMax ? fmaxf(x, scratch[w]) : x + scratch[w];
  __syncthreads();  // scratch is reused by the next reduction
  return x;
}

// Shared memory: q_row [D] (q times scale*log2(e)), o_row [Dv] (unnormalised output), probs [kNaiveThreads],
// scratch [kNaiveThreads / 32].
size_t naive_shared_bytes(int head_dim, int value_dim) {
  return sizeof(float) * (static_cast<size_t>(head_dim) + value_dim + kNaiveThreads + kNaiveThreads / 32);
}

template <typename T>
__global__ void __launch_bounds__(kNaiveThreads) attention_naive_kernel(const __grid_constant__ AttentionParams p) {
  extern __shared__ float smem[];
  const int D = p.head_dim, Dv = p.value_dim;
  float* q_row = smem;
  float* o_row = q_row + D;
  float* probs = o_row + Dv;
  float* scratch = probs + kNaiveThreads;

  const int i = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int g = h / (p.num_heads / p.num_kv_heads);
  const T* q = static_cast<const T*>(p.q) + b * p.q_batch_stride + i * p.q_row_stride + h * p.q_head_stride;
  const T* k = static_cast<const T*>(p.k) + b * p.k_batch_stride + g * p.k_head_stride;
  const T* v = static_cast<const T*>(p.v) + b * p.v_batch_stride + g * p.v_head_stride;
  float* out = p.out + b * p.out_batch_stride + i * p.out_row_stride + h * p.out_head_stride;

  const float q_scale = p.scale * kLog2e;
  for (int d = threadIdx.x; d < D; d += kNaiveThreads) q_row[d] = to_f32(q[d]) * q_scale;
  for (int c = threadIdx.x; c < Dv; c += kNaiveThreads) o_row[c] = 0.0f;
  const int end = attention_key_end(p.mask, b, i, p.num_keys);
  __syncthreads();

  auto score = [&](int j) {
    const T* k_row = k + j * p.k_row_stride;
    float s = 0.0f;
    for (int d = 0; d < D; ++d) s += q_row[d] * to_f32(k_row[d]);
    return s;
  };

  // Pass 1: the exact row max (fmaxf skips NaN; an all-NaN row keeps -inf and turns NaN in pass 2).
  float row_max = kNegInf;
  for (int j = threadIdx.x; j < end; j += kNaiveThreads) row_max = fmaxf(row_max, score(j));
  row_max = naive_block_reduce<true>(row_max, scratch);

  // Pass 2: probabilities of 128 keys at a time, then every thread adds them into its output columns.
  float sum = 0.0f;
  for (int j0 = 0; j0 < end; j0 += kNaiveThreads) {
    const int j = j0 + threadIdx.x;
    float pj = 0.0f;
    if (j < end) {
      pj = exp2f(score(j) - row_max);
      sum += pj;
    }
    probs[threadIdx.x] = pj;
    __syncthreads();
    const int n = min(kNaiveThreads, end - j0);
    for (int c = threadIdx.x; c < Dv; c += kNaiveThreads) {
      float acc = o_row[c];
      for (int jj = 0; jj < n; ++jj) acc += probs[jj] * to_f32(v[(j0 + jj) * p.v_row_stride + c]);
      o_row[c] = acc;
    }
    __syncthreads();  // probs is overwritten by the next chunk
  }
  sum = naive_block_reduce<false>(sum, scratch);

  const float inv = sum != 0.0f ? 1.0f / sum : 0.0f;  // end == 0: the row saw no key and writes zeros
  for (int c = threadIdx.x; c < Dv; c += kNaiveThreads) out[c] = o_row[c] * inv;
}

// ---- v2: tiled --------------------------------------------------------------------------------------------------
//
// Thread layout. 128 threads = 16 row groups x 8 lanes. Row group ty owns kRowsPerThread query rows
// (ty*R .. ty*R + R - 1); its 8 lanes (consecutive lanes of one warp, so a row's reductions are three xor-shuffles)
// split the row's work: lane tx scores keys tx + 8*jj of the key tile and accumulates output columns tx + 8*c. A
// thread therefore keeps, per row, kKeysPerLane scores and kColsPerLane output accumulators in registers, and the
// row's running max (identical on the 8 lanes) and a partial running sum (added across lanes at the end).
//
// Shared memory (F32, sized by the runtime D and Dv):
//   q_tile  [kBlockQ][qk_pitch]   q rows times scale*log2(e); rows past Lq are zeros
//   kv_tile [kBlockK][kv_pitch]   the K tile, then (after the scores are done) the V tile of the same keys
//   p_tile  [kBlockQ][p_pitch]    probabilities of the current tile, read by every lane of the row in P·V
// K and V share a buffer to keep two to four blocks resident per SM; the price is two extra barriers per tile.
// Pitches avoid bank conflicts: qk_pitch is odd, so the 8 lanes reading k rows tx + 8*jj at the same d hit 8
// different banks, and the 4 row groups of a warp reading q rows at the same d too; p_pitch = kBlockK + 8/R puts the
// 32 threads of a warp writing p_tile[ty*R + r][tx + 8*jj] on 32 different banks.
//
// Masking (STYLE §3, omni_mask.h). key_end is non-decreasing in the query row, so for the query tile
//   tile_min_end = key_end(first row), tile_max_end = key_end(last row < Lq):
//   key tiles at or past tile_max_end          skip:    no row sees them; the loop stops before them,
//   key tiles ending at or before tile_min_end full:    every row sees every key; no per-element test,
//   the rest (about one per tile on the causal diagonal, plus the edges of bidirectional blocks)
//                                               partial: scores of keys >= key_end(row) become -inf.
// Keys past Lk always fall in a partial tile (tile_min_end <= Lk), so they are masked too; they are also staged as
// zeros, never read from memory. The mask is read straight from the kernel's parameter space (__grid_constant__
// params: no per-thread copy), once per row at the start and twice per query tile for the classification.
//
// Buckets (max(D, Dv) <= 64 / 128 / 384 / 512), their tiles and what limits residency on an H100 (228 KiB shared
// memory and 64K registers per SM; ptxas: 128 / 167 / 161 / 96 registers, no spills):
//   64:  64 q x 64 k, ~50 KB shared          -> 4 blocks (16 warps) per SM, registers and shared memory alike
//   128: 64 q x 64 k, ~83 KB at D 128        -> 2 blocks (8 warps), shared memory (D 72: ~54 KB -> 3, registers)
//   384: 32 q x 32 k, ~103 KB at D 384       -> 2 blocks (8 warps), shared memory
//   512: 16 q x 32 k, ~101 KB at D 512       -> 2 blocks (8 warps), shared memory
// Low occupancy is the price of F32 tiles; the tensor-core kernels of issue [attn] stage bf16 and double-buffer.

template <int kMaxHeadDim_>
struct AttentionTiledTraits {
  static constexpr int kMaxHeadDim = kMaxHeadDim_;  // this instantiation serves max(D, Dv) <= kMaxHeadDim
  static constexpr int kThreads = 128;
  static constexpr int kLanesPerRow = 8;
  static constexpr int kRowGroups = kThreads / kLanesPerRow;
  // Fewer rows per thread for wide heads keeps the output accumulators (R * kColsPerLane registers) near 64-96.
  static constexpr int kRowsPerThread = kMaxHeadDim <= 128 ? 4 : kMaxHeadDim <= 384 ? 2 : 1;
  static constexpr int kKeysPerLane = kMaxHeadDim <= 128 ? 8 : 4;
  static constexpr int kBlockQ = kRowGroups * kRowsPerThread;
  static constexpr int kBlockK = kLanesPerRow * kKeysPerLane;
  static constexpr int kColsPerLane = kMaxHeadDim / kLanesPerRow;
  static constexpr int kPPad = 8 / kRowsPerThread;

  static_assert(kThreads % 32 == 0 && 32 % kLanesPerRow == 0, "a row's lanes must sit inside one warp");
  static_assert(kLanesPerRow == 8, "the row reductions below shuffle over 8 lanes (xor 4, 2, 1)");
  static_assert(kMaxHeadDim % kLanesPerRow == 0, "output columns split evenly over a row's lanes");
  static_assert(8 % kRowsPerThread == 0, "p_tile padding 8/R must be whole");
  static_assert(kRowsPerThread * kColsPerLane <= 96, "keep the accumulators within the register budget");
};

struct TiledLayout {
  int qk_pitch, kv_pitch, p_pitch;
  size_t q_floats, kv_floats, p_floats;
  size_t bytes() const { return sizeof(float) * (q_floats + kv_floats + p_floats); }
};

template <typename Traits>
__host__ __device__ inline TiledLayout tiled_layout(int head_dim, int value_dim) {
  TiledLayout l;
  l.qk_pitch = head_dim | 1;
  l.kv_pitch = l.qk_pitch > value_dim ? l.qk_pitch : value_dim;
  l.p_pitch = Traits::kBlockK + Traits::kPPad;
  l.q_floats = static_cast<size_t>(Traits::kBlockQ) * l.qk_pitch;
  l.kv_floats = static_cast<size_t>(Traits::kBlockK) * l.kv_pitch;
  l.p_floats = static_cast<size_t>(Traits::kBlockQ) * l.p_pitch;
  return l;
}

// rows x cols of a strided global matrix into a pitched shared tile, zero-filling rows >= valid_rows. One warp per
// row, lanes along the contiguous dim, so reads coalesce and no index needs a division.
template <typename T>
__device__ __forceinline__ void stage_rows(float* tile, int pitch, const T* src, int64_t src_row_stride, int rows,
                                           int valid_rows, int cols, float factor) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
  for (int r = warp; r < rows; r += warps) {
    float* dst = tile + r * pitch;
    if (r < valid_rows) {
      const T* row = src + r * src_row_stride;
      for (int c = lane; c < cols; c += 32) dst[c] = to_f32(row[c]) * factor;
    } else {
      for (int c = lane; c < cols; c += 32) dst[c] = 0.0f;
    }
  }
}

template <typename T, typename Traits>
__global__ void __launch_bounds__(Traits::kThreads)
    attention_tiled_kernel(const __grid_constant__ AttentionParams p) {
  constexpr int R = Traits::kRowsPerThread, KPL = Traits::kKeysPerLane, CPL = Traits::kColsPerLane;
  constexpr int BQ = Traits::kBlockQ, BK = Traits::kBlockK, LANES = Traits::kLanesPerRow;
  extern __shared__ float smem[];
  const int D = p.head_dim, Dv = p.value_dim, Lq = p.num_queries, Lk = p.num_keys;
  const TiledLayout layout = tiled_layout<Traits>(D, Dv);
  float* q_tile = smem;
  float* kv_tile = q_tile + layout.q_floats;
  float* p_tile = kv_tile + layout.kv_floats;

  // The costliest query tiles (the last ones, under a causal mask) are launched first so they do not form the tail.
  const int q_tile_index = gridDim.x - 1 - blockIdx.x;
  const int h = blockIdx.y, b = blockIdx.z;
  const int g = h / (p.num_heads / p.num_kv_heads);
  const int row0 = q_tile_index * BQ;
  const int valid_rows = min(BQ, Lq - row0);
  const int ty = threadIdx.x / LANES, tx = threadIdx.x % LANES;

  const T* q = static_cast<const T*>(p.q) + b * p.q_batch_stride + row0 * p.q_row_stride + h * p.q_head_stride;
  const T* k = static_cast<const T*>(p.k) + b * p.k_batch_stride + g * p.k_head_stride;
  const T* v = static_cast<const T*>(p.v) + b * p.v_batch_stride + g * p.v_head_stride;
  stage_rows(q_tile, layout.qk_pitch, q, p.q_row_stride, BQ, valid_rows, D, p.scale * kLog2e);

  int row_end[R];  // key_end of each of this thread's rows (rows past Lq: any value, their output is dropped)
  float row_max[R], row_sum[R], acc[R][CPL];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    row_end[r] = attention_key_end(p.mask, b, row0 + ty * R + r, Lk);
    row_max[r] = kNegInf;
    row_sum[r] = 0.0f;
#pragma unroll
    for (int c = 0; c < CPL; ++c) acc[r][c] = 0.0f;
  }
  const int tile_min_end = attention_key_end(p.mask, b, row0, Lk);
  const int tile_max_end = attention_key_end(p.mask, b, row0 + valid_rows - 1, Lk);

  for (int k0 = 0; k0 < tile_max_end; k0 += BK) {  // tiles at or past tile_max_end: skip
    const bool full = k0 + BK <= tile_min_end;
    const int tile_keys = min(BK, Lk - k0);
    __syncthreads();  // the previous tile's P·V is done with kv_tile and p_tile (and q_tile is staged)
    stage_rows(kv_tile, layout.kv_pitch, k + k0 * p.k_row_stride, p.k_row_stride, BK, tile_keys, D, 1.0f);
    __syncthreads();

    // S = Q K^T for this thread's R rows x KPL keys (log2 domain).
    float s[R][KPL];
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int jj = 0; jj < KPL; ++jj) s[r][jj] = 0.0f;
    const float* q_rows = q_tile + ty * R * layout.qk_pitch;
    const float* k_rows = kv_tile + tx * layout.kv_pitch;
    for (int d = 0; d < D; ++d) {
      float qv[R], kv[KPL];
#pragma unroll
      for (int r = 0; r < R; ++r) qv[r] = q_rows[r * layout.qk_pitch + d];
#pragma unroll
      for (int jj = 0; jj < KPL; ++jj) kv[jj] = k_rows[jj * LANES * layout.kv_pitch + d];
#pragma unroll
      for (int r = 0; r < R; ++r)
#pragma unroll
        for (int jj = 0; jj < KPL; ++jj) s[r][jj] = fmaf(qv[r], kv[jj], s[r][jj]);
    }

    // Partial tiles only: hide the keys each row may not see.
    if (!full) {
#pragma unroll
      for (int r = 0; r < R; ++r)
#pragma unroll
        for (int jj = 0; jj < KPL; ++jj)
          if (k0 + tx + jj * LANES >= row_end[r]) s[r][jj] = kNegInf;
    }

    // Online softmax: new running max per row, rescale the old sum and accumulators, probabilities into p_tile.
#pragma unroll
    for (int r = 0; r < R; ++r) {
      float tile_max = kNegInf;
#pragma unroll
      for (int jj = 0; jj < KPL; ++jj) tile_max = fmaxf(tile_max, s[r][jj]);
      tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 4));
      tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 2));
      tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
      const float new_max = fmaxf(row_max[r], tile_max);
      float rescale = 1.0f;
      if (new_max == kNegInf) {
        // Nothing finite seen yet. If the row does see keys here, they are all -inf or NaN: the softmax is
        // undefined and the row becomes NaN (the CPU twin's rule); otherwise the row simply has nothing yet.
#pragma unroll
        for (int jj = 0; jj < KPL; ++jj) s[r][jj] = 0.0f;
        if (row_end[r] > k0) row_sum[r] = __int_as_float(0x7fc00000);
      } else {
        rescale = exp2f(row_max[r] - new_max);  // 0 on the row's first visible tile (old max -inf)
        row_sum[r] *= rescale;
#pragma unroll
        for (int jj = 0; jj < KPL; ++jj) {
          s[r][jj] = exp2f(s[r][jj] - new_max);  // masked keys: exp2(-inf) = 0
          row_sum[r] += s[r][jj];
        }
        row_max[r] = new_max;
      }
#pragma unroll
      for (int c = 0; c < CPL; ++c) acc[r][c] *= rescale;
      float* p_row = p_tile + (ty * R + r) * layout.p_pitch;
#pragma unroll
      for (int jj = 0; jj < KPL; ++jj) p_row[tx + jj * LANES] = s[r][jj];
    }
    __syncthreads();  // every thread is done reading the K tile

    stage_rows(kv_tile, layout.kv_pitch, v + k0 * p.v_row_stride, p.v_row_stride, BK, tile_keys, Dv, 1.0f);
    __syncthreads();

    // O += P V over the keys some row of the tile may see (the rest have p = 0 in every row).
    const int pv_keys = min(BK, tile_max_end - k0);
    const float* p_rows = p_tile + ty * R * layout.p_pitch;
    for (int j = 0; j < pv_keys; ++j) {
      float pv[R];
#pragma unroll
      for (int r = 0; r < R; ++r) pv[r] = p_rows[r * layout.p_pitch + j];
      const float* v_row = kv_tile + j * layout.kv_pitch + tx;
#pragma unroll
      for (int c = 0; c < CPL; ++c) {
        if (c * LANES + tx < Dv) {  // uniform per lane for the whole kernel; a bucket wider than Dv skips columns
          const float vv = v_row[c * LANES];
#pragma unroll
          for (int r = 0; r < R; ++r) acc[r][c] = fmaf(pv[r], vv, acc[r][c]);
        }
      }
    }
  }

  // Normalise and write. The row sum is spread over the 8 lanes of the row.
#pragma unroll
  for (int r = 0; r < R; ++r) {
    float sum = row_sum[r];
    sum += __shfl_xor_sync(0xffffffffu, sum, 4);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    const int row = ty * R + r;
    if (row >= valid_rows) continue;
    const float inv = sum != 0.0f ? 1.0f / sum : 0.0f;  // no visible key: zeros (backend.h)
    float* out = p.out + b * p.out_batch_stride + static_cast<int64_t>(row0 + row) * p.out_row_stride +
                 h * p.out_head_stride;
#pragma unroll
    for (int c = 0; c < CPL; ++c)
      if (c * LANES + tx < Dv) out[c * LANES + tx] = acc[r][c] * inv;
  }
}

// ---- launchers ----------------------------------------------------------------------------------------------------

// Raises a kernel's dynamic shared memory limit when it needs more than the default 48 KiB.
template <typename Kernel>
cudaError_t allow_shared_bytes(Kernel kernel, size_t bytes) {
  if (bytes <= 48 * 1024) return cudaSuccess;
  return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
}

template <typename T>
cudaError_t launch_naive(const AttentionParams& p, cudaStream_t stream) {
  const size_t bytes = naive_shared_bytes(p.head_dim, p.value_dim);
  cudaError_t err = allow_shared_bytes(attention_naive_kernel<T>, bytes);
  if (err != cudaSuccess) return err;
  const dim3 grid(static_cast<unsigned>(p.num_queries), static_cast<unsigned>(p.num_heads),
                  static_cast<unsigned>(p.batch));
  attention_naive_kernel<T><<<grid, kNaiveThreads, bytes, stream>>>(p);
  return cudaGetLastError();
}

template <typename T, int kMaxHeadDim>
cudaError_t launch_tiled(const AttentionParams& p, cudaStream_t stream) {
  using Traits = AttentionTiledTraits<kMaxHeadDim>;
  const size_t bytes = tiled_layout<Traits>(p.head_dim, p.value_dim).bytes();
  cudaError_t err = allow_shared_bytes(attention_tiled_kernel<T, Traits>, bytes);
  if (err != cudaSuccess) return err;
  const dim3 grid(static_cast<unsigned>((p.num_queries + Traits::kBlockQ - 1) / Traits::kBlockQ),
                  static_cast<unsigned>(p.num_heads), static_cast<unsigned>(p.batch));
  attention_tiled_kernel<T, Traits><<<grid, Traits::kThreads, bytes, stream>>>(p);
  return cudaGetLastError();
}

// The D-bucket switch: the one place the runtime head dim becomes a template parameter.
template <typename T>
cudaError_t launch_typed(const AttentionParams& p, cudaStream_t stream) {
  const int widest = std::max(p.head_dim, p.value_dim);
  if (p.variant == AttentionVariant::Tiled) {
    if (widest <= 64) return launch_tiled<T, 64>(p, stream);
    if (widest <= 128) return launch_tiled<T, 128>(p, stream);
    if (widest <= 384) return launch_tiled<T, 384>(p, stream);
    if (widest <= kAttentionTiledMaxHeadDim) return launch_tiled<T, 512>(p, stream);
  }
  return launch_naive<T>(p, stream);  // v1, and the generic path for head dims past the tiled buckets
}

}  // namespace

// ---- host helpers -------------------------------------------------------------------------------------------------

int64_t fill_attention_mask(const OmniMask& mask, int64_t batch_begin, int64_t batch_end, AttentionMask* out) {
  *out = AttentionMask{};
  out->causal = mask.is_causal() ? 1 : 0;
  constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();
  SHOWO2_CHECK(mask.query_offset() >= 0 && mask.query_offset() <= kInt32Max, InvalidArgument,
               "attention: mask query_offset ", mask.query_offset(), " must lie in [0, 2^31)");
  out->query_offset = mask.query_offset();
  if (!mask.is_causal() || batch_end <= batch_begin) return std::max<int64_t>(batch_end - batch_begin, 1);

  const bool shared = mask.num_samples() == 1;
  const int64_t lists_wanted = shared ? 1 : batch_end - batch_begin;
  int blocks = 0;
  int64_t taken = 0;
  for (int64_t l = 0; l < lists_wanted && l < AttentionMask::kMaxLists; ++l) {
    const auto& list = mask.blocks(shared ? 0 : batch_begin + l);
    SHOWO2_CHECK(static_cast<int64_t>(list.size()) <= AttentionMask::kMaxBlocks, InvalidArgument,
                 "attention: sample ", batch_begin + l, " has ", list.size(),
                 " bidirectional blocks; the CUDA kernels take at most ", AttentionMask::kMaxBlocks, " per sample");
    if (blocks + static_cast<int64_t>(list.size()) > AttentionMask::kMaxBlocks) break;  // next launch takes the rest
    out->list_begin[l] = blocks;
    for (const BidirectionalBlock& blk : list) {
      SHOWO2_CHECK(blk.offset + blk.length <= kInt32Max, InvalidArgument, "attention: block (offset ", blk.offset,
                   ", length ", blk.length, ") reaches past position 2^31");
      out->block_begin[blocks] = static_cast<int32_t>(blk.offset);
      out->block_end[blocks] = static_cast<int32_t>(blk.offset + blk.length);
      ++blocks;
    }
    out->list_begin[l + 1] = blocks;
    ++taken;
  }
  out->num_lists = static_cast<int32_t>(taken);
  return shared ? batch_end - batch_begin : taken;
}

cudaError_t launch_attention(const AttentionParams& p, cudaStream_t stream) {
  if (p.batch < 0 || p.num_queries < 0 || p.num_keys < 0 || p.num_heads < 0 || p.value_dim < 0)
    return cudaErrorInvalidValue;
  if (p.batch == 0 || p.num_queries == 0 || p.num_heads == 0 || p.value_dim == 0) return cudaSuccess;
  if (p.q == nullptr || p.out == nullptr || (p.num_keys > 0 && (p.k == nullptr || p.v == nullptr)))
    return cudaErrorInvalidValue;
  if (p.head_dim <= 0 || p.num_kv_heads <= 0 || p.num_heads % p.num_kv_heads != 0) return cudaErrorInvalidValue;
  if (p.batch > 65535 || p.num_heads > 65535) return cudaErrorInvalidValue;  // grid z and y limits
  if (p.mask.causal && (p.mask.num_lists < 1 || p.mask.num_lists > AttentionMask::kMaxLists ||
                        (p.mask.num_lists > 1 && p.mask.num_lists < p.batch)))
    return cudaErrorInvalidValue;
  if (p.variant == AttentionVariant::Auto && p.split_workspace != nullptr && p.num_keys > 0) {
    const int splits = attention_split_count(p);
    if (splits > 1 && p.split_workspace_floats >= attention_split_workspace_floats(p, splits))
      return launch_attention_split(p, splits, stream);
  }
  if ((p.variant == AttentionVariant::TensorCore || p.variant == AttentionVariant::Auto) && attention_mma_supported(p))
    return launch_attention_mma(p, stream);
  AttentionParams cuda_cores = p;  // v3 and Auto without a tensor-core path run v2
  if (cuda_cores.variant != AttentionVariant::Naive) cuda_cores.variant = AttentionVariant::Tiled;
  return cuda_cores.input_type == AttentionInputType::BF16 ? launch_typed<__nv_bfloat16>(cuda_cores, stream)
                                                           : launch_typed<float>(cuda_cores, stream);
}

}  // namespace showo2::cuda
