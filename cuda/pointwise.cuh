// The element loop shared by the pointwise families (activation.cu, elementwise.cu, flow_ode.cu): out = fn(in...)
// over `rows` rows of `cols` floats, with one to three inputs, each addressed through its own RowMap.
//
// Two layout facts pick the variant (SHOWO2_BOOL_SWITCH / SHOWO2_VEC_SWITCH, in launch_map below):
//   * dense: every operand is one contiguous block of rows * cols floats, so element e sits at offset e everywhere
//     (no division per element); otherwise e is split into (row, col) and each RowMap places the row (views, and a
//     suffix-shaped operand broadcast over leading rows, whose RowMap wraps);
//   * kVec = 4: float4 loads/stores when every pointer and row stride is 16-byte aligned and vectors cannot straddle
//     a row (dense: rows * cols % 4 == 0; strided: cols % 4 == 0); scalar otherwise (odd sizes).
// Grid-stride loop, 256 threads per block: these ops move 8-16 B per element and do a handful of flops, so the only
// goal is enough bytes in flight; 256 threads with float4 is 4 KB per block per access.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "cuda_check.h"
#include "kernel_utils.cuh"

namespace showo2::cuda {

template <int kInputs>
struct MapOperands {
  static_assert(kInputs >= 1 && kInputs <= 3, "one to three inputs");
  const float* in[kInputs] = {};        // inputs, each [rows, cols] through in_rows
  RowMap in_rows[kInputs];              // where row r of each input starts (a broadcast operand's map wraps)
  int64_t in_col_stride[kInputs] = {};  // 1, or 0 for a single value broadcast over everything (a 0-D operand)
  float* out = nullptr;                 // output [rows, cols]; may alias an input element for element
  RowMap out_rows;                      // where row r of out starts
  int64_t rows = 0;                     // number of rows
  int64_t cols = 0;                     // row length
};

constexpr int kMapBlock = 256;

// ================================================= device code ======================================================

template <int kInputs, int kVec, bool kDense, typename Fn>
__global__ void __launch_bounds__(kMapBlock) map_kernel(const MapOperands<kInputs> m, const Fn fn) {
  const int64_t total = m.rows * m.cols;
  for (int64_t e = (int64_t(blockIdx.x) * kMapBlock + threadIdx.x) * kVec; e < total;
       e += int64_t(gridDim.x) * kMapBlock * kVec) {
    int64_t in_off[kInputs], out_off;
    if constexpr (kDense) {
#pragma unroll
      for (int k = 0; k < kInputs; ++k) in_off[k] = e;  // dense implies in_col_stride 1
      out_off = e;
    } else {
      const int64_t r = e / m.cols, i = e - r * m.cols;
#pragma unroll
      for (int k = 0; k < kInputs; ++k) in_off[k] = m.in_rows[k].offset(r) + i * m.in_col_stride[k];
      out_off = m.out_rows.offset(r) + i;
    }
    VecF<kVec> a[kInputs];
#pragma unroll
    for (int k = 0; k < kInputs; ++k) a[k] = load_vec<kVec>(m.in[k] + in_off[k]);
    VecF<kVec> y;
#pragma unroll
    for (int j = 0; j < kVec; ++j) {
      if constexpr (kInputs == 1) y.v[j] = fn(a[0].v[j]);
      else if constexpr (kInputs == 2) y.v[j] = fn(a[0].v[j], a[1].v[j]);
      else y.v[j] = fn(a[0].v[j], a[1].v[j], a[2].v[j]);
    }
    store_vec<kVec>(m.out + out_off, y);
  }
}

// ================================================= launcher =========================================================

inline bool map_strides_vec4_ok(const void* base, const RowMap& rows) {
  if (!aligned16(base)) return false;
  for (int d = 0; d < rows.rank; ++d)
    if (rows.stride[d] % 4 != 0) return false;
  return true;
}

// Queues out = fn(in...) on `stream`. The caller has validated shapes; throws ERR_CUDA on a launch failure.
template <int kInputs, typename Fn>
void launch_map(const MapOperands<kInputs>& m, const Fn& fn, cudaStream_t stream) {
  const int64_t total = m.rows * m.cols;
  if (total == 0) return;
  bool dense = m.out_rows.is_dense(m.rows, m.cols);
  bool vec4 = map_strides_vec4_ok(m.out, m.out_rows);
  for (int k = 0; k < kInputs; ++k) {
    dense = dense && m.in_col_stride[k] == 1 && m.in_rows[k].is_dense(m.rows, m.cols);
    vec4 = vec4 && m.in_col_stride[k] == 1 && map_strides_vec4_ok(m.in[k], m.in_rows[k]);
  }
  vec4 = vec4 && (dense ? total % 4 == 0 : m.cols % 4 == 0);
  SHOWO2_BOOL_SWITCH(dense, kDense, [&] {
    SHOWO2_VEC_SWITCH(vec4, kVec, [&] {
      map_kernel<kInputs, kVec, kDense, Fn><<<blocks_for(total / kVec, kMapBlock), kMapBlock, 0, stream>>>(m, fn);
    });
  });
  SHOWO2_CUDA_CHECK_LAUNCH();
}

}  // namespace showo2::cuda
