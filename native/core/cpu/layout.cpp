// Data movement without arithmetic on the CPU (backend.h): strided copy and nearest-neighbour 2x upsampling.
//
//   copy:               dst[i...] = src[i...]; src, dst F32, same shape, any strides (non-overlapping).
//   upsample_nearest2x: out[..., h, w] = x[..., h / 2, w / 2]; x [N, C, (T,) H, W], out [..., 2H, 2W], F32 contiguous.
// The Wan VAE (spec §3.1) uses copy for its causal frame caches, for concatenating chunks along T and for the
// NCTHW <-> token-major change around the per-frame attention; upsample_nearest2x is its Resample 'upsample' step.
// Plain loops: both are memory-bound, and the rows are handed to the pool in blocks (rows.h).
#include <cstdint>
#include <cstring>

#include "ops.h"
#include "rows.h"

namespace showo2::cpu {

namespace {

// The element range [lowest, highest] a view addresses, for the overlap check.
void address_range(const Tensor& t, const uint8_t** lo, const uint8_t** hi) {
  const uint8_t* base = static_cast<const uint8_t*>(t.raw());
  int64_t last = 0;
  for (int64_t d = 0; d < t.dim(); ++d) last += (t.size(d) - 1) * t.stride(d);
  *lo = base;
  *hi = base + last * static_cast<int64_t>(dtype_size(t.dtype()));
}

}  // namespace

void copy(const Tensor& src, Tensor& dst, ThreadPool* pool) {
  check_dtype(src, DType::F32, "copy: src");
  check_dtype(dst, DType::F32, "copy: dst");
  check_row_rank(src, "copy: src");
  check_row_rank(dst, "copy: dst");
  check_writable(dst, "copy: dst");
  check_shape(dst, src.shape(), "copy: dst");
  if (src.numel() == 0) return;
  const bool same_view = src.storage() == dst.storage() && src.byte_offset() == dst.byte_offset() &&
                         src.strides() == dst.strides();
  if (same_view) return;
  if (src.storage() == dst.storage()) {
    const uint8_t *slo, *shi, *dlo, *dhi;
    address_range(src, &slo, &shi);
    address_range(dst, &dlo, &dhi);
    // A conservative test on the address hulls: interleaved views (e.g. even and odd frames) are rejected too,
    // which no caller needs.
    if (!(shi < dlo || dhi < slo))
      fail(ErrorCode::InvalidArgument, "copy: src and dst overlap in memory (", src.shape_string(), ")");
  }

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
  check_dtype(x, DType::F32, "upsample_nearest2x: x");
  check_dtype(out, DType::F32, "upsample_nearest2x: out");
  if (x.dim() != 4 && x.dim() != 5)
    fail(ErrorCode::ShapeMismatch, "upsample_nearest2x: x: expected [N, C, H, W] or [N, C, T, H, W] but got ",
         x.shape_string());
  check_contiguous(x, "upsample_nearest2x: x");
  check_contiguous(out, "upsample_nearest2x: out");
  check_writable(out, "upsample_nearest2x: out");
  Shape expected = x.shape();
  expected[expected.size() - 2] *= 2;
  expected[expected.size() - 1] *= 2;
  check_shape(out, expected, "upsample_nearest2x: out");
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
