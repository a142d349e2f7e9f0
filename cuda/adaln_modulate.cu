// adaLN modulation and gated residual on the GPU (the flow head's modulated blocks, DiT-style).
//
//   modulate:        out[r, c] = x[r, c] * (1 + scale[g, c]) + shift[g, c]      g = row_group[r] >= 0
//                    out[r, c] = x[r, c]                                         g == -1
//   gated_residual:  h[r, c]  += gate[g, c] * y[r, c]                            (gate = 1 where g == -1)
// Shapes: x/y, out/h [R, C] F32 with contiguous rows (row strides free); shift/scale/gate [G, C] F32 with contiguous
// rows (chunks of the [G, 6H] adaLN output, so row strides are free too); row_group [R] I32 on the device.
// Spec §6.2 (per-token modulation: the block's image tokens take their sample's shift/scale/gate, text tokens are
// not modulated) and §12 numerics ("fp32 modulate"). Each replaces the mul + add (or mul + add for the residual)
// that the CPU model code composes today with one pass over the rows.
// Precision: fp32, every operation rounded separately in the reference order, (x * (1 + scale)) + shift and
// h + (gate * y), with __fmul_rn/__fadd_rn so the GPU cannot contract them into an fma: bitwise equal to the CPU
// twin and to PyTorch's eager fp32 modulate.
// Variants: blockIdx.y walks rows (grid-stride), blockIdx.x/threads walk columns, float4 when every row start is
// 16-byte aligned and C % 4 == 0, else scalar. A block's row reads its group id once; the [G, C] parameters are tiny
// and stay in L2.
// Checked by test/native/adaln_modulate_cuda_test.cu against cpu::CpuBackend; timed by
// bench/native/pointwise_cuda_bench.cu (`pointwise_cuda_bench --json`, case modulate).
#include "adaln_modulate.h"

#include <algorithm>

#include "cuda_check.h"
#include "kernel_utils.cuh"

namespace showo2::cuda {

namespace {

constexpr int kAdaLNBlock = 256;
constexpr int64_t kMaxGridY = 65535;

// ================================================= device code ======================================================

template <int kVec>
__global__ void __launch_bounds__(kAdaLNBlock) modulate_kernel(const AdaLNParams p) {
  for (int64_t r = blockIdx.y; r < p.rows; r += gridDim.y) {
    const int32_t g = p.row_group[r];
    const bool identity = g < 0 || g >= p.groups;
    const float* xr = p.x + r * p.x_row_stride;
    float* yr = p.out + r * p.out_row_stride;
    const float* shift = p.shift + (identity ? 0 : g * p.shift_row_stride);
    const float* scale = p.scale + (identity ? 0 : g * p.scale_row_stride);
    for (int64_t c = (int64_t(blockIdx.x) * kAdaLNBlock + threadIdx.x) * kVec; c < p.cols;
         c += int64_t(gridDim.x) * kAdaLNBlock * kVec) {
      VecF<kVec> v = load_vec<kVec>(xr + c);
      if (!identity) {
        const VecF<kVec> sh = load_vec<kVec>(shift + c);
        const VecF<kVec> sc = load_vec<kVec>(scale + c);
#pragma unroll
        for (int j = 0; j < kVec; ++j) v.v[j] = __fadd_rn(__fmul_rn(v.v[j], __fadd_rn(1.0f, sc.v[j])), sh.v[j]);
      }
      store_vec<kVec>(yr + c, v);
    }
  }
}

template <int kVec>
__global__ void __launch_bounds__(kAdaLNBlock) gated_residual_kernel(const AdaLNParams p) {
  for (int64_t r = blockIdx.y; r < p.rows; r += gridDim.y) {
    const int32_t g = p.row_group[r];
    const bool identity = g < 0 || g >= p.groups;
    const float* yr = p.x + r * p.x_row_stride;
    float* hr = p.out + r * p.out_row_stride;
    const float* gate = p.gate + (identity ? 0 : g * p.gate_row_stride);
    for (int64_t c = (int64_t(blockIdx.x) * kAdaLNBlock + threadIdx.x) * kVec; c < p.cols;
         c += int64_t(gridDim.x) * kAdaLNBlock * kVec) {
      VecF<kVec> h = load_vec<kVec>(hr + c);
      const VecF<kVec> y = load_vec<kVec>(yr + c);
      if (identity) {
#pragma unroll
        for (int j = 0; j < kVec; ++j) h.v[j] = __fadd_rn(h.v[j], y.v[j]);
      } else {
        const VecF<kVec> gt = load_vec<kVec>(gate + c);
#pragma unroll
        for (int j = 0; j < kVec; ++j) h.v[j] = __fadd_rn(h.v[j], __fmul_rn(gt.v[j], y.v[j]));
      }
      store_vec<kVec>(hr + c, h);
    }
  }
}

// ================================================= launchers ========================================================

bool rows_vec4_ok(const float* base, int64_t row_stride) {
  return base == nullptr || (aligned16(base) && row_stride % 4 == 0);
}

void check_adaln(const AdaLNParams& p, const char* op, bool modulate) {
  if (p.rows < 0 || p.cols < 0 || p.groups < 0) fail(ErrorCode::ShapeMismatch, op, ": negative size");
  if (p.rows * p.cols == 0) return;
  const bool params_ok = modulate ? (p.shift != nullptr && p.scale != nullptr) : p.gate != nullptr;
  if (p.x == nullptr || p.out == nullptr || p.row_group == nullptr || (p.groups > 0 && !params_ok))
    fail(ErrorCode::InvalidArgument, op, ": null device pointer");
}

dim3 adaln_grid(const AdaLNParams& p, int vec) {
  return dim3(blocks_for(p.cols, int64_t{kAdaLNBlock} * vec),
              static_cast<unsigned int>(std::min<int64_t>(p.rows, kMaxGridY)));
}

}  // namespace

void launch_modulate(const AdaLNParams& p, cudaStream_t stream) {
  check_adaln(p, "modulate", true);
  if (p.rows * p.cols == 0) return;
  const bool vec4 = p.cols % 4 == 0 && rows_vec4_ok(p.x, p.x_row_stride) && rows_vec4_ok(p.out, p.out_row_stride) &&
                    rows_vec4_ok(p.shift, p.shift_row_stride) && rows_vec4_ok(p.scale, p.scale_row_stride);
  SHOWO2_VEC_SWITCH(vec4, kVec, [&] { modulate_kernel<kVec><<<adaln_grid(p, kVec), kAdaLNBlock, 0, stream>>>(p); });
  SHOWO2_CUDA_CHECK_LAUNCH();
}

void launch_gated_residual(const AdaLNParams& p, cudaStream_t stream) {
  check_adaln(p, "gated_residual", false);
  if (p.rows * p.cols == 0) return;
  const bool vec4 = p.cols % 4 == 0 && rows_vec4_ok(p.x, p.x_row_stride) && rows_vec4_ok(p.out, p.out_row_stride) &&
                    rows_vec4_ok(p.gate, p.gate_row_stride);
  SHOWO2_VEC_SWITCH(vec4, kVec, [&] {
    gated_residual_kernel<kVec><<<adaln_grid(p, kVec), kAdaLNBlock, 0, stream>>>(p);
  });
  SHOWO2_CUDA_CHECK_LAUNCH();
}

}  // namespace showo2::cuda
