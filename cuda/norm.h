// Launchers for the normalisation family (cuda/norm.cu): RMSNorm, LayerNorm and softmax over the last dimension,
// and the Wan VAE's RMS norm over the channel axis. Raw device pointers in, work queued on `stream`; argument errors
// and launch failures throw showo2::Error (never exit). Semantics are backend.h's; the CPU twins are in
// native/core/cpu/norm.cpp and native/core/cpu/activation.cpp (softmax).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "dtype.h"
#include "kernel_utils.cuh"

namespace showo2::cuda {

struct NormParams {
  const float* x = nullptr;           // input rows [rows, cols] (last dim contiguous); channel norm: [N, C, S] dense
  RowMap x_rows;                      // where row r of x starts (row norms and softmax)
  float* out = nullptr;               // output, same logical shape as x; may alias x
  RowMap out_rows;                    // where row r of out starts
  int64_t rows = 0;                   // number of rows; channel norm: N (samples)
  int64_t cols = 0;                   // row length C (the reduced axis); channel norm: channels C
  int64_t positions = 1;              // channel norm only: S, the product of the dims after C
  const void* weight = nullptr;       // [cols] scale (RMSNorm/LayerNorm weight, channel-norm gamma); null = 1
  DType weight_dtype = DType::F32;    // F32, BF16 or F16
  const void* bias = nullptr;         // [cols] LayerNorm bias; null = 0
  DType bias_dtype = DType::F32;      // F32, BF16 or F16
  float eps = 0.0f;                   // added to mean(x^2) (RMSNorm) or the variance (LayerNorm)
  bool silu_after = false;            // channel norm only: out = silu(norm(x)), x / (1 + exp(-x)) as activation.cu
  bool channels_last = false;         // channel norm only: x and out dense [N, S, C] (channels-last) instead
  // Channel norm only: the element type of x and out. BF16: x and out point at bf16 data (the pointers keep their
  // float type; the kernels reinterpret them), statistics still in F32, the output rounded to nearest even.
  DType io_dtype = DType::F32;
};

// y = x / sqrt(mean(x^2) + eps) * weight, per row.
void launch_rms_norm(const NormParams& p, cudaStream_t stream);
// y = (x - mean) / sqrt(var + eps) * weight + bias, per row (biased variance, two passes).
void launch_layer_norm(const NormParams& p, cudaStream_t stream);
// y = exp(x - max) / sum(exp(x - max)), per row; weight, bias and eps unused.
void launch_softmax(const NormParams& p, cudaStream_t stream);
// y[n, c, s] = x[n, c, s] / max(||x[n, :, s]||, 1e-12) * sqrt(C) * gamma[c]; x and out dense [N, C, S], or
// [N, S, C] with channels_last (x_rows/out_rows unused), gamma = weight (required).
void launch_channel_rms_norm(const NormParams& p, cudaStream_t stream);

}  // namespace showo2::cuda
