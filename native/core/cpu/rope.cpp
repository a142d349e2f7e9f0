// Rotate-half RoPE applied in place on the CPU (backend.h; tables from native/core/rope.cpp, spec §5.2).
//
//   x [B, L, H, D] F32, last dimension contiguous (other strides free, e.g. q/k views of a fused projection).
//   For position p = position_offset + l and i < D/2, with x1 = x[i], x2 = x[i + D/2]:
//     x[i]       = x1 * cos[p, i] - x2 * sin[p, i]
//     x[i + D/2] = x2 * cos[p, i] + x1 * sin[p, i]
// This is transformers' `q * cos + rotate_half(q) * sin` with cos/sin duplicated over both halves. fp32 math; the
// loop vectorises at the baseline ISA and is memory-bound, so there is no AVX2 variant.
#include <cstdint>

#include "../backend_checks.h"
#include "ops.h"
#include "rows.h"

namespace showo2::cpu {

void rope(Tensor& x, const RopeTable& table, int64_t position_offset, ThreadPool* pool) {
  const RopeShape s = check_rope_args(x, table, position_offset);
  const int64_t B = s.B, L = s.L, H = s.H, D = s.D, half = D / 2;
  if (x.numel() == 0) return;

  const int64_t sb = x.stride(0), sl = x.stride(1), sh = x.stride(2);
  float* px = x.mutable_data<float>();
  const float* cos_table = table.cos.data<float>();
  const float* sin_table = table.sin.data<float>();
  parallel_rows(pool, B * L * H, D, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t h = r % H, l = (r / H) % L, b = r / (H * L);
      float* x1 = px + b * sb + l * sl + h * sh;
      float* x2 = x1 + half;
      const float* c = cos_table + (position_offset + l) * half;
      const float* s = sin_table + (position_offset + l) * half;
      for (int64_t i = 0; i < half; ++i) {
        const float a = x1[i], bb = x2[i];
        x1[i] = a * c[i] - bb * s[i];
        x2[i] = bb * c[i] + a * s[i];
      }
    }
  });
}

}  // namespace showo2::cpu
