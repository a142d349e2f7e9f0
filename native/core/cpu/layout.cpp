// Data movement without arithmetic on the CPU (backend.h): strided copy and nearest-neighbour 2x upsampling.
//
//   copy:               dst[i...] = src[i...]; src, dst F32, same shape, any strides (non-overlapping).
//   upsample_nearest2x: out[..., h, w] = x[..., h / 2, w / 2]; x [N, C, (T,) H, W], out [..., 2H, 2W], F32 contiguous.
// The Wan VAE (spec §3.1) uses copy for its causal frame caches, for concatenating chunks along T and for the
// NCTHW <-> token-major change around the per-frame attention; upsample_nearest2x is its Resample 'upsample' step.
// Plain loops: both are memory-bound, and the rows are handed to the pool in blocks (rows.h).
#include <cstdint>
#include <cstring>

#include "../backend_checks.h"
#include "ops.h"
#include "rows.h"

namespace showo2::cpu {

void copy(const Tensor& src, Tensor& dst, ThreadPool* pool) {
  // F32 only here (a device backend may also convert to and from BF16 activations: backend.h copy).
  check_dtype(src, DType::F32, "copy: src");
  check_dtype(dst, DType::F32, "copy: dst");
  if (!check_copy_args(src, dst)) return;  // empty, or src and dst are the same view

  // Rows along the last dimension; leading dims via RowLayout (its offsets ignore the last stride), the last dim
  // with its own stride on each side.
  RowLayout src_rows(src), dst_rows(dst);
  const int64_t C = src.dim() == 0 ? 1 : src.size(-1);
  const int64_t s_inner = src.dim() == 0 ? 1 : src.stride(-1);
  const int64_t d_inner = dst.dim() == 0 ? 1 : dst.stride(-1);
  const float* ps = src.data<float>();
  float* pd = dst.mutable_data<float>();
  parallel_rows(pool, src_rows.rows(), C, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* sr = ps + src_rows.offset(r);
      float* dr = pd + dst_rows.offset(r);
      if (s_inner == 1 && d_inner == 1) {
        std::memcpy(dr, sr, static_cast<size_t>(C) * sizeof(float));
      } else {
        for (int64_t i = 0; i < C; ++i) dr[i * d_inner] = sr[i * s_inner];
      }
    }
  });
}

void upsample_nearest2x(const Tensor& x, Tensor& out, ThreadPool* pool) {
  check_upsample_nearest2x_args(x, out);
  if (x.numel() == 0) return;
  const int64_t H = x.size(-2), W = x.size(-1);
  const int64_t planes = x.numel() / (H * W);
  const float* px = x.data<float>();
  float* po = out.mutable_data<float>();
  // One "row" per input image row: it writes two output rows of 2W.
  parallel_rows(pool, planes * H, 4 * W, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* xr = px + r * W;
      float* o0 = po + r * 4 * W;  // output rows 2h and 2h + 1 of the same plane are adjacent
      float* o1 = o0 + 2 * W;
      for (int64_t w = 0; w < W; ++w) o0[2 * w] = o0[2 * w + 1] = xr[w];
      std::memcpy(o1, o0, static_cast<size_t>(2 * W) * sizeof(float));
    }
  });
}

}  // namespace showo2::cpu
