// Launchers for the activation family (cuda/activation.cu): SiLU, GELU (erf and tanh forms) and the fused SwiGLU
// product. Raw device pointers in, work queued on `stream`; launch failures throw showo2::Error. Semantics are
// backend.h's; the CPU twin is native/core/cpu/activation.cpp (swiglu: the CPU backend's fused op).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernel_utils.cuh"

namespace showo2::cuda {

enum class ActivationKind {
  Silu,      // x / (1 + exp(-x))                                       Qwen2/head MLPs, adaLN and time MLPs
  GeluErf,   // x * 0.5 * (1 + erf(x / sqrt(2)))                          nn.GELU(): fusion_proj, diff_proj
  GeluTanh,  // 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))     gelu_pytorch_tanh: SigLIP (spec §3.4)
};

struct ActivationParams {
  ActivationKind kind = ActivationKind::Silu;  // silu/gelu only (swiglu always applies SiLU to the gate)
  const float* x = nullptr;    // input [rows, cols]; swiglu: the gate projection
  RowMap x_rows;               // where row r of x starts
  const float* up = nullptr;   // swiglu only: the up projection [rows, cols]
  RowMap up_rows;              // where row r of up starts
  float* out = nullptr;        // output [rows, cols]; may alias x (or up)
  RowMap out_rows;             // where row r of out starts
  int64_t rows = 0;            // number of rows (product of the leading dims)
  int64_t cols = 0;            // last dimension
};

// out = act(x)
void launch_activation(const ActivationParams& p, cudaStream_t stream);
// out = silu(x) * up   (SwiGLU's elementwise part: silu(gate_proj(h)) * up_proj(h))
void launch_swiglu(const ActivationParams& p, cudaStream_t stream);

}  // namespace showo2::cuda
