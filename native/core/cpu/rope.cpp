// Rotate-half RoPE applied in place on the CPU (backend.h; tables from native/core/rope.cpp, spec §5.2).
//
//   x [B, L, H, D] F32, last dimension contiguous (other strides free, e.g. q/k views of a fused projection).
//   For position p = position_offset + l and i < D/2, with x1 = x[i], x2 = x[i + D/2]:
//     x[i]       = x1 * cos[p, i] - x2 * sin[p, i]
//     x[i + D/2] = x2 * cos[p, i] + x1 * sin[p, i]
// This is transformers' `q * cos + rotate_half(q) * sin` with cos/sin duplicated over both halves. fp32 math; the
// loop vectorises at the baseline ISA and is memory-bound, so there is no AVX2 variant.
#include <cstdint>

#include "ops.h"
#include "rows.h"

namespace showo2::cpu {

void rope(Tensor& x, const RopeTable& table, int64_t position_offset, ThreadPool* pool) {
  check_dtype(x, DType::F32, "rope: x");
  check_dim(x, 4, "rope: x");
  check_last_dim_contiguous(x, "rope: x");
  check_writable(x, "rope: x");
  const int64_t B = x.size(0), L = x.size(1), H = x.size(2), D = x.size(3);
  if (D % 2 != 0) fail(ErrorCode::ShapeMismatch, "rope: x: head_dim (last dimension) must be even but got ", D);
  if (table.head_dim != D)
    fail(ErrorCode::ShapeMismatch, "rope: table: built for head_dim ", table.head_dim, " but x has head_dim ", D);
  const int64_t half = D / 2;
  check_dtype(table.cos, DType::F32, "rope: table.cos");
  check_dtype(table.sin, DType::F32, "rope: table.sin");
  check_shape(table.cos, {table.max_positions, half}, "rope: table.cos");
  check_shape(table.sin, {table.max_positions, half}, "rope: table.sin");
  check_contiguous(table.cos, "rope: table.cos");
  check_contiguous(table.sin, "rope: table.sin");
  if (position_offset < 0 || position_offset > table.max_positions - L)
    fail(ErrorCode::InvalidArgument, "rope: position_offset: positions [", position_offset, ", ",
         position_offset + L, ") are outside the table's [0, ", table.max_positions, ")");
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
