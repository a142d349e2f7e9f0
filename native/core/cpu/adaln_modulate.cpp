// adaLN modulation and the gated residual on the CPU (backend.h; spec §6.2), with per-row condition groups.
//
//   modulate:       out[r] = x[r] * (1 + scale[g]) + shift[g]      g = row_group[r] >= 0;   out[r] = x[r] if g == -1
//   gated_residual: h[r]  += gate[g] * y[r]                        g = row_group[r] >= 0;   h[r] += y[r]  if g == -1
//   x, out, h, y: F32 [R, C], last dimension contiguous (row stride free); out may alias x.
//   shift, scale, gate: F32 [G, C], last dimension contiguous (row stride free: they are chunks of one adaLN output
//   [G, k*C]); row_group: I32 [R], contiguous, values in [-1, G).
// Precision: fp32, each product and sum rounded on its own (no fused multiply-add), so the results equal the
// reference's `x * (1 + scale) + shift` and `h + gate * y` bit for bit. Memory-bound plain loops: the compiler
// vectorises them at the baseline ISA, so there is no AVX2 variant (as elementwise.cpp).
#include <cstdint>

#include "../backend_checks.h"
#include "ops.h"
#include "rows.h"

namespace showo2::cpu {

void modulate(const Tensor& x, const Tensor& shift, const Tensor& scale, const Tensor& row_group, Tensor& out,
              ThreadPool* pool) {
  const AdaLNShape s = check_modulate_args(x, shift, scale, row_group, out);
  const int64_t R = s.R, C = s.C;
  const int32_t* groups = row_group.data<int32_t>();
  if (R == 0 || C == 0) return;
  const float* px = x.data<float>();
  const float* psh = shift.data<float>();
  const float* psc = scale.data<float>();
  float* po = out.mutable_data<float>();
  const int64_t xs = x.stride(0), os = out.stride(0), shs = shift.stride(0), scs = scale.stride(0);
  parallel_rows(pool, R, C, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* xr = px + r * xs;
      float* orow = po + r * os;
      const int32_t g = groups[r];
      if (g < 0) {  // identity modulation (shift 0, scale 0): a copy unless in place
        if (orow != xr)
          for (int64_t i = 0; i < C; ++i) orow[i] = xr[i];
        continue;
      }
      const float* sh = psh + g * shs;
      const float* sc = psc + g * scs;
      for (int64_t i = 0; i < C; ++i) {
        const float one_plus_scale = 1.0f + sc[i];
        const float scaled = xr[i] * one_plus_scale;
        orow[i] = scaled + sh[i];
      }
    }
  });
}

void gated_residual(Tensor& h, const Tensor& y, const Tensor& gate, const Tensor& row_group, ThreadPool* pool) {
  const AdaLNShape s = check_gated_residual_args(h, y, gate, row_group);
  const int64_t R = s.R, C = s.C;
  const int32_t* groups = row_group.data<int32_t>();
  if (R == 0 || C == 0) return;
  float* ph = h.mutable_data<float>();
  const float* py = y.data<float>();
  const float* pg = gate.data<float>();
  const int64_t hs = h.stride(0), ys = y.stride(0), gs = gate.stride(0);
  parallel_rows(pool, R, C, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      float* hr = ph + r * hs;
      const float* yr = py + r * ys;
      const int32_t g = groups[r];
      if (g < 0) {  // gate 1: 1 * y is y exactly
        for (int64_t i = 0; i < C; ++i) hr[i] = hr[i] + yr[i];
        continue;
      }
      const float* gr = pg + g * gs;
      for (int64_t i = 0; i < C; ++i) {
        const float gated = gr[i] * yr[i];
        hr[i] = hr[i] + gated;
      }
    }
  });
}

}  // namespace showo2::cpu
