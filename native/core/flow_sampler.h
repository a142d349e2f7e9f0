// The flow-matching ODE sampler (spec §7.2): the reference integrates dx/dt = v(x, t) from t = 0 (noise) to t = 1
// (clean latent) on a fixed grid warped toward the noise end, with classifier-free guidance.
//
//   grid:  u_i = i / (N - 1), tau_i = u_i / (u_i + s - s u_i), i = 0 .. N-1     (N grid points; tau_0 = 0, tau_N-1 = 1)
//   CFG:   v = v_u + g (v_c - v_u)                                               (g = 0: v = v_c, no uncond branch)
//   Euler (the reference, torchdiffeq method="euler" on the grid): N - 1 evaluations,
//          x_{i+1} = x_i + (tau_{i+1} - tau_i) v(x_i, tau_i)
//   Heun  (an option; 2nd order, explicit trapezoid): 2 evaluations per interval, 2 (N - 1) in all,
//          k1 = v(x_i, tau_i);  k2 = v(x_i + h k1, tau_{i+1});  x_{i+1} = x_i + h/2 (k1 + k2),  h = tau_{i+1} - tau_i
//          (the last interval evaluates the model at t = 1, a time it was trained on).
// The state is F32 (the reference keeps the ODE state in fp32); times are computed in double.
//
// The sampler itself is model-agnostic: flow_ode_solve() drives any velocity function, so the integrators are tested
// on synthetic fields (test/native/flow_sampler_test.cpp) and generation.cpp plugs in the model.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "backend.h"
#include "tensor.h"

namespace showo2 {

enum class OdeSolver { Euler, Heun };

struct FlowSamplerConfig {
  int64_t num_inference_steps = 50;     // grid points N (spec §7.2: N-1 Euler model evaluations); >= 2
  double time_shift = 3.0;              // s > 0: tau = u / (u + s - s*u)
  float guidance_scale = 5.0f;          // >= 0; 0 disables CFG (no unconditional branch is computed at all)
  OdeSolver solver = OdeSolver::Euler;  // Heun: 2nd order, two evaluations per interval (see above)
  // ERR_INVALID_ARGUMENT naming the field (num_inference_steps, time_shift, guidance_scale).
  void validate() const;
  // Model evaluations (a CFG pair counts once) the whole ODE takes: N - 1 (Euler) or 2 (N - 1) (Heun).
  int64_t model_evaluations() const;
};

// tau_0 = 0 ... tau_{N-1} = 1 (spec §7.2; flow_time_grid(5, 3) = {0, 0.1, 0.25, 0.5, 1}, spec §14).
// ERR_INVALID_ARGUMENT for num_points < 2 or time_shift <= 0.
std::vector<double> flow_time_grid(int64_t num_points, double time_shift);

// v = v_u + g (v_c - v_u), elementwise, into `out` (may alias v_cond); all F32 of one shape.
void cfg_combine(Backend& backend, const Tensor& v_cond, const Tensor& v_uncond, float guidance_scale, Tensor& out);

// One velocity evaluation, with the CFG combine left to the integrator so an Euler step is one fused kernel
// (Backend::flow_euler_update): v = uncond + guidance (cond - uncond), or v = cond when uncond is undefined.
struct GuidedVelocity {
  Tensor cond;          // F32, x's shape
  Tensor uncond;        // F32, x's shape; undefined: no guidance
  float guidance = 0;   // g
};

// v as one tensor (cond itself when unguided, else cfg_combine into a new tensor of the backend).
Tensor combined_velocity(Backend& backend, const GuidedVelocity& v);

// What the ODE loop reports after each interval. Tensors live on the backend (Backend::to_host to read them).
struct FlowOdeStep {
  int64_t step;                   // 1-based interval index
  int64_t total_steps;            // N - 1
  int64_t model_evaluations;      // so far
  double t_prev, t;               // the interval [tau_{step-1}, tau_{step}]
  const Tensor& x;                // state at t
  const GuidedVelocity& v_first;  // the velocity at (x(t_prev), t_prev): predicted clean = x_prev + (1 - t_prev) v
  const Tensor& x_prev;           // state at t_prev
};

// A velocity evaluation v(x, t) -> a new F32 tensor of x's shape (no guidance split), or its guided form.
using VelocityFn = std::function<Tensor(const Tensor& x, double t)>;
using GuidedVelocityFn = std::function<GuidedVelocity(const Tensor& x, double t)>;

// Integrates from x0 (copied; F32 contiguous, on the backend) over the config's grid and returns the state at t = 1
// (on the backend). `on_step` (may be empty) runs after each interval; `should_cancel` (may be empty) is polled
// before every evaluation (ERR_CANCELLED). Validates the config. Euler steps are one flow_euler_update each; Heun
// combines each velocity first (cfg_combine) and keeps the trapezoid in separate ops.
Tensor flow_ode_solve(Backend& backend, const FlowSamplerConfig& config, const Tensor& x0,
                      const GuidedVelocityFn& velocity, const std::function<void(const FlowOdeStep&)>& on_step = {},
                      const std::function<bool()>& should_cancel = {});
Tensor flow_ode_solve(Backend& backend, const FlowSamplerConfig& config, const Tensor& x0, const VelocityFn& velocity,
                      const std::function<void(const FlowOdeStep&)>& on_step = {},
                      const std::function<bool()>& should_cancel = {});

}  // namespace showo2
