// Launcher for rotate-half RoPE in place (cuda/rope.cu). Raw device pointers in, work queued on `stream`; argument
// errors and launch failures throw showo2::Error. Semantics are backend.h's Backend::rope; the CPU twin is
// native/core/cpu/rope.cpp and the tables come from native/core/rope.h (uploaded as F32).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace showo2::cuda {

struct RopeParams {
  float* x = nullptr;               // [B, L, H, D], last dim contiguous, rotated in place
  int64_t batch = 0;                // B
  int64_t seq_len = 0;              // L
  int64_t heads = 0;                // H
  int64_t head_dim = 0;             // D (even)
  int64_t stride_b = 0;             // element strides of x's leading dims (q/k views of a fused projection are fine)
  int64_t stride_l = 0;
  int64_t stride_h = 0;
  const float* cos = nullptr;       // [table_positions, D/2] contiguous F32
  const float* sin = nullptr;       // [table_positions, D/2] contiguous F32
  int64_t table_positions = 0;      // rows of the cos/sin tables
  int64_t position_offset = 0;      // row l of x uses table row position_offset + l
};

// For p = position_offset + l, i < D/2: (x[i], x[i + D/2]) <- (x[i] cos - x[i + D/2] sin, x[i + D/2] cos + x[i] sin).
void launch_rope(const RopeParams& p, cudaStream_t stream);

}  // namespace showo2::cuda
