// The flow-matching ODE sampler; see flow_sampler.h for the math.
#include "flow_sampler.h"

#include <cmath>
#include <sstream>

#include "error.h"

namespace showo2 {

void FlowSamplerConfig::validate() const {
  if (num_inference_steps < 2)
    fail(ErrorCode::InvalidArgument, "FlowSamplerConfig: num_inference_steps: expected at least 2 grid points (",
         "N points give N - 1 model evaluations) but got ", num_inference_steps);
  if (!(time_shift > 0) || !std::isfinite(time_shift)) {
    std::ostringstream os;
    os << time_shift;
    fail(ErrorCode::InvalidArgument, "FlowSamplerConfig: time_shift: expected a finite number > 0 but got ", os.str());
  }
  if (!(guidance_scale >= 0) || !std::isfinite(guidance_scale)) {
    std::ostringstream os;
    os << guidance_scale;
    fail(ErrorCode::InvalidArgument, "FlowSamplerConfig: guidance_scale: expected a finite number >= 0 but got ",
         os.str());
  }
  if (solver != OdeSolver::Euler && solver != OdeSolver::Heun)
    fail(ErrorCode::InvalidArgument, "FlowSamplerConfig: solver: expected Euler or Heun");
}

int64_t FlowSamplerConfig::model_evaluations() const {
  return (solver == OdeSolver::Heun ? 2 : 1) * (num_inference_steps - 1);
}

std::vector<double> flow_time_grid(int64_t num_points, double time_shift) {
  FlowSamplerConfig check;
  check.num_inference_steps = num_points;
  check.time_shift = time_shift;
  check.validate();
  std::vector<double> tau(static_cast<size_t>(num_points));
  for (int64_t i = 0; i < num_points; ++i) {
    const double u = static_cast<double>(i) / static_cast<double>(num_points - 1);  // linspace(0, 1, N)
    tau[static_cast<size_t>(i)] = u / (u + time_shift - time_shift * u);           // spec §7.2
  }
  tau.front() = 0.0;  // exact ends whatever the rounding
  tau.back() = 1.0;
  return tau;
}

void cfg_combine(Backend& backend, const Tensor& v_cond, const Tensor& v_uncond, float guidance_scale, Tensor& out) {
  // v_u + g (v_c - v_u), evaluated in that order (the reference's expression).
  Tensor diff = backend.empty(v_uncond.shape(), DType::F32);
  backend.scale(v_uncond, -1.0f, 0.0f, diff);         // -v_u
  backend.add(v_cond, diff, diff);                    // v_c - v_u
  backend.scale(diff, guidance_scale, 0.0f, diff);    // g (v_c - v_u)
  backend.add(diff, v_uncond, out);                   // + v_u
}

Tensor combined_velocity(Backend& backend, const GuidedVelocity& v) {
  if (!v.uncond.defined()) return v.cond;
  Tensor out = backend.empty(v.cond.shape(), DType::F32);
  cfg_combine(backend, v.cond, v.uncond, v.guidance, out);
  return out;
}

namespace {

void check_velocity(const GuidedVelocity& v, const Tensor& x) {
  for (const Tensor* t : {&v.cond, &v.uncond}) {
    if (t == &v.uncond && !t->defined()) continue;
    SHOWO2_CHECK(t->defined() && t->dtype() == DType::F32 && t->shape() == x.shape(), Internal,
                 "flow ODE: the velocity has shape ", t->defined() ? t->shape_string() : std::string("undefined"),
                 " but the state is ", x.shape_string());
  }
}

// A copy of x on the backend (the integrators update their copies in place).
Tensor clone(Backend& b, const Tensor& x) {
  Tensor out = b.empty(x.shape(), DType::F32);
  b.copy(x, out);
  return out;
}

// x + h v (h v rounded first, as torchdiffeq's y0 + dt * f), v combined from its guided form in the same kernel.
Tensor euler(Backend& b, const Tensor& x, double h, const GuidedVelocity& v) {
  Tensor out = clone(b, x);
  b.flow_euler_update(out, v.cond, v.uncond, v.guidance, static_cast<float>(h));
  return out;
}

}  // namespace

Tensor flow_ode_solve(Backend& backend, const FlowSamplerConfig& config, const Tensor& x0,
                      const GuidedVelocityFn& velocity, const std::function<void(const FlowOdeStep&)>& on_step,
                      const std::function<bool()>& should_cancel) {
  config.validate();
  SHOWO2_CHECK(x0.defined() && x0.dtype() == DType::F32, InvalidArgument, "flow ODE: the initial state must be F32");
  const std::vector<double> tau = flow_time_grid(config.num_inference_steps, config.time_shift);
  const int64_t intervals = config.num_inference_steps - 1;
  auto cancelled = [&]() { return should_cancel && should_cancel(); };

  Tensor x = clone(backend, x0);
  int64_t evaluations = 0;
  for (int64_t i = 0; i < intervals; ++i) {
    const double t0 = tau[static_cast<size_t>(i)], t1 = tau[static_cast<size_t>(i) + 1], h = t1 - t0;
    if (cancelled()) fail(ErrorCode::Cancelled, "flow ODE: cancelled before step ", i + 1, " of ", intervals);
    const GuidedVelocity k1 = velocity(x, t0);
    check_velocity(k1, x);
    ++evaluations;
    Tensor next;
    if (config.solver == OdeSolver::Euler) {
      next = euler(backend, x, h, k1);  // x + (tau_{i+1} - tau_i) v(x, tau_i)
    } else {
      const Tensor x_pred = euler(backend, x, h, k1);
      if (cancelled()) fail(ErrorCode::Cancelled, "flow ODE: cancelled in step ", i + 1, " of ", intervals);
      const GuidedVelocity k2 = velocity(x_pred, t1);
      check_velocity(k2, x);
      ++evaluations;
      Tensor sum = backend.empty(x.shape(), DType::F32);
      backend.add(combined_velocity(backend, k1), combined_velocity(backend, k2), sum);
      next = euler(backend, x, 0.5 * h, GuidedVelocity{sum, Tensor(), 0.0f});  // x + h/2 (k1 + k2)
    }
    if (on_step) on_step(FlowOdeStep{i + 1, intervals, evaluations, t0, t1, next, k1, x});
    x = std::move(next);
  }
  return x;
}

Tensor flow_ode_solve(Backend& backend, const FlowSamplerConfig& config, const Tensor& x0, const VelocityFn& velocity,
                      const std::function<void(const FlowOdeStep&)>& on_step,
                      const std::function<bool()>& should_cancel) {
  const GuidedVelocityFn guided = [&velocity](const Tensor& x, double t) {
    return GuidedVelocity{velocity(x, t), Tensor(), 0.0f};
  };
  return flow_ode_solve(backend, config, x0, guided, on_step, should_cancel);
}

}  // namespace showo2
