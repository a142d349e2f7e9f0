// Launchers for the adaLN family (cuda/adaln_modulate.cu): the fused modulate and the gated residual of the flow
// head's modulated blocks. Raw device pointers in, work queued on `stream`; launch failures throw showo2::Error.
// Semantics are backend.h's Backend::modulate / gated_residual; the CPU twins are the CPU backend's fused ops.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace showo2::cuda {

struct AdaLNParams {
  int64_t rows = 0;                   // R
  int64_t cols = 0;                   // C (hidden size)
  const int32_t* row_group = nullptr; // [R] device: group of each row in [0, G), or -1 for identity (spec §6.2)
  int64_t groups = 0;                 // G: rows of shift/scale/gate. A group id outside [-1, G) acts as -1 on the
                                      // device (never an out-of-bounds read); the backend glue rejects it first
                                      // whenever row_group is readable on the host.
  const float* x = nullptr;           // modulate: input rows [R, C]; gated_residual: y, the branch output
  int64_t x_row_stride = 0;           // elements between rows of x
  float* out = nullptr;               // modulate: output rows (may alias x); gated_residual: h, updated in place
  int64_t out_row_stride = 0;         // elements between rows of out
  const float* shift = nullptr;       // modulate: [G, C] (a chunk of the adaLN output: row stride free)
  int64_t shift_row_stride = 0;
  const float* scale = nullptr;       // modulate: [G, C]
  int64_t scale_row_stride = 0;
  const float* gate = nullptr;        // gated_residual: [G, C]
  int64_t gate_row_stride = 0;
};

// out[r] = x[r] * (1 + scale[g]) + shift[g] for g = row_group[r] >= 0; out[r] = x[r] where g == -1.
void launch_modulate(const AdaLNParams& p, cudaStream_t stream);
// h[r] += gate[g] * y[r] for g = row_group[r] >= 0; h[r] += y[r] where g == -1 (gate 1).
void launch_gated_residual(const AdaLNParams& p, cudaStream_t stream);

}  // namespace showo2::cuda
