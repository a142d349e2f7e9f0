// One Euler step of the flow ODE with classifier-free guidance on the CPU (backend.h; spec §7.2).
//
//   v = v_u + g * (v_c - v_u)            (v_uncond undefined: v = v_c)
//   x = x + dt * v
//   x, v_cond, v_uncond: F32, same shape, contiguous.
// Precision: fp32 with every operation rounded on its own, in the order of the reference's expressions
// (cfg: v_u + g * (v_c - v_u); torchdiffeq's Euler: y0 + dt * f), so the step equals the unfused sequence
// (flow_sampler.cpp's cfg_combine, then scale and add) bit for bit. Memory-bound plain loop, no AVX2 variant.
#include <algorithm>
#include <cstdint>

#include "../backend_checks.h"
#include "ops.h"
#include "rows.h"

namespace showo2::cpu {

void flow_euler_update(Tensor& x, const Tensor& v_cond, const Tensor& v_uncond, float guidance, float dt,
                       ThreadPool* pool) {
  check_flow_euler_update_args(x, v_cond, v_uncond);
  const bool guided = v_uncond.defined();
  const int64_t n = x.numel();
  if (n == 0) return;
  float* px = x.mutable_data<float>();
  const float* pc = v_cond.data<float>();
  const float* pu = guided ? v_uncond.data<float>() : nullptr;
  // Treated as rows of 4096 so the pool splits the work (the layout is flat).
  constexpr int64_t kRow = 4096;
  parallel_rows(pool, (n + kRow - 1) / kRow, kRow, [&](int64_t begin, int64_t end) {
    const int64_t i_end = std::min(n, end * kRow);
    if (guided) {
      for (int64_t i = begin * kRow; i < i_end; ++i) {
        const float diff = pc[i] - pu[i];
        const float scaled = guidance * diff;
        const float v = pu[i] + scaled;
        const float step = dt * v;
        px[i] = px[i] + step;
      }
    } else {
      for (int64_t i = begin * kRow; i < i_end; ++i) {
        const float step = dt * pc[i];
        px[i] = px[i] + step;
      }
    }
  });
}

}  // namespace showo2::cpu
