// The flow-matching ODE sampler (native/core/flow_sampler.cpp) on synthetic velocity fields: the warped time grid
// (spec §7.2, §14), Euler against closed forms (exact on straight-line flows, the product formula on a linear field),
// Heun's second order (the error ratio when the step halves) and evaluation count, the CFG combine, the step report,
// cancellation and the typed config errors.
#include <cmath>
#include <cstdio>
#include <vector>

#include "cpu/cpu_backend.h"
#include "flow_sampler.h"
#include "test_util.h"

using namespace showo2;

namespace {

cpu::CpuBackend& backend() {
  static cpu::CpuBackend b(1);
  return b;
}

// v(x, t) = lambda(t) * x elementwise, as a VelocityFn (the model is replaced by a field with a known solution).
VelocityFn linear_field(double (*lambda)(double), int* calls = nullptr) {
  return [lambda, calls](const Tensor& x, double t) {
    if (calls) ++*calls;
    Tensor v = Tensor::empty(x.shape(), DType::F32);
    backend().scale(x, static_cast<float>(lambda(t)), 0.0f, v);
    return v;
  };
}

double solve_scalar(const FlowSamplerConfig& config, double x0, const VelocityFn& f) {
  const Tensor out = flow_ode_solve(backend(), config, Tensor::from_f32({1}, {static_cast<float>(x0)}), f);
  return out.data<float>()[0];
}

}  // namespace

SHOWO2_TEST(time_grid_is_the_shifted_linspace) {
  const std::vector<double> g = flow_time_grid(5, 3.0);
  const std::vector<double> want = {0.0, 0.1, 0.25, 0.5, 1.0};  // spec §14
  CHECK_EQ(g.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) CHECK(std::fabs(g[i] - want[i]) < 1e-15);
  CHECK_EQ(flow_time_grid(2, 3.0), (std::vector<double>{0.0, 1.0}));
  const std::vector<double> uniform = flow_time_grid(4, 1.0);  // shift 1: the plain linspace
  for (size_t i = 0; i < uniform.size(); ++i) CHECK(std::fabs(uniform[i] - i / 3.0) < 1e-15);
  const std::vector<double> fifty = flow_time_grid(50, 3.0);
  for (size_t i = 1; i < fifty.size(); ++i) CHECK(fifty[i] > fifty[i - 1]);
  CHECK(fifty[1] - fifty[0] < fifty[49] - fifty[48]);  // more steps near the noise end
  CHECK_THROWS_CODE(flow_time_grid(1, 3.0), InvalidArgument);
  CHECK_THROWS_CODE(flow_time_grid(5, 0.0), InvalidArgument);
  CHECK_THROWS_CODE(flow_time_grid(5, -1.0), InvalidArgument);
}

SHOWO2_TEST(config_validation_names_the_field) {
  FlowSamplerConfig c;
  c.validate();
  CHECK_EQ(c.model_evaluations(), int64_t{49});
  c.solver = OdeSolver::Heun;
  CHECK_EQ(c.model_evaluations(), int64_t{98});
  for (int64_t n : {-3, 0, 1}) {
    FlowSamplerConfig bad;
    bad.num_inference_steps = n;
    CHECK_THROWS_CODE(bad.validate(), InvalidArgument);
  }
  FlowSamplerConfig g;
  g.guidance_scale = -0.5f;
  CHECK_THROWS_CODE(g.validate(), InvalidArgument);
  g.guidance_scale = NAN;
  CHECK_THROWS_CODE(g.validate(), InvalidArgument);
  FlowSamplerConfig s;
  s.time_shift = INFINITY;
  CHECK_THROWS_CODE(s.validate(), InvalidArgument);
}

SHOWO2_TEST(euler_matches_closed_forms) {
  FlowSamplerConfig c;
  c.num_inference_steps = 6;
  // Straight-line flow towards a target (the rectified-flow ideal v = (x1 - x) / (1 - t)): Euler from the noise end
  // lands on x1 (each step moves a fraction h / (1 - t) of the remaining way).
  const float target = 2.5f;
  const VelocityFn straight = [&](const Tensor& x, double t) {
    Tensor v = Tensor::empty(x.shape(), DType::F32);
    backend().scale(x, static_cast<float>(-1.0 / (1.0 - t)), static_cast<float>(target / (1.0 - t)), v);
    return v;
  };
  CHECK(std::fabs(solve_scalar(c, -1.0, straight) - target) < 1e-5);
  // v = lambda x: x_N = x_0 prod_i (1 + lambda h_i) on the warped grid.
  const std::vector<double> tau = flow_time_grid(6, 3.0);
  double expected = 0.8;
  for (size_t i = 0; i + 1 < tau.size(); ++i) expected *= 1.0 + (-1.3) * (tau[i + 1] - tau[i]);
  int calls = 0;
  const double got = solve_scalar(c, 0.8, linear_field([](double) { return -1.3; }, &calls));
  CHECK(std::fabs(got - expected) < 1e-6);
  CHECK_EQ(calls, 5);  // N - 1 evaluations
  // Evaluated at the left end of each interval: a field that is 1 only at t = tau_i moves x by exactly 1.
  FlowSamplerConfig two;
  two.num_inference_steps = 2;
  CHECK(std::fabs(solve_scalar(two, 0.0, [](const Tensor& x, double t) {
          return Tensor::from_f32(x.shape(), {t == 0.0 ? 1.0f : 100.0f});
        })) - 1.0 < 1e-7);
}

SHOWO2_TEST(heun_is_second_order_with_two_evaluations_per_interval) {
  // dx/dt = (sin(2t) + 1/2) x: x(1) = x0 exp((1 - cos 2) / 2 + 1/2). Halving the step divides Euler's error by ~2,
  // Heun's by ~4 (float64 gives 3.96 / 3.78 for shift 1 / 3 at 16 -> 32 intervals; the F32 state adds ~1e-6).
  auto lambda = [](double t) { return std::sin(2.0 * t) + 0.5; };
  const double x0 = 1.0, exact = x0 * std::exp((1.0 - std::cos(2.0)) / 2.0 + 0.5);
  for (double shift : {1.0, 3.0}) {
    double err[2][3];
    for (int s = 0; s < 2; ++s)
      for (int k = 0; k < 3; ++k) {
        FlowSamplerConfig c;
        c.solver = s == 0 ? OdeSolver::Euler : OdeSolver::Heun;
        c.time_shift = shift;
        c.num_inference_steps = 8 * (1 << k) + 1;  // 8, 16, 32 intervals
        int calls = 0;
        err[s][k] = std::fabs(solve_scalar(c, x0, linear_field(lambda, &calls)) - exact);
        CHECK_EQ(calls, static_cast<int>((s == 0 ? 1 : 2) * (c.num_inference_steps - 1)));
      }
    const double euler_ratio = err[0][1] / err[0][2], heun_ratio = err[1][1] / err[1][2];
    std::printf("    shift %.0f: Euler errors %.3g %.3g %.3g (ratio %.2f), Heun %.3g %.3g %.3g (ratio %.2f)\n", shift,
                err[0][0], err[0][1], err[0][2], euler_ratio, err[1][0], err[1][1], err[1][2], heun_ratio);
    CHECK(euler_ratio > 1.7 && euler_ratio < 2.4);
    CHECK(heun_ratio > 3.5 && heun_ratio < 4.5);
    CHECK(err[1][2] < err[0][2] / 20);
  }
}

SHOWO2_TEST(cfg_combine_is_vu_plus_g_times_difference) {
  const auto vc = test::random_normal(257, 1), vu = test::random_normal(257, 2);
  const Tensor c = Tensor::from_f32({257}, vc), u = Tensor::from_f32({257}, vu);
  for (float g : {0.0f, 1.0f, 5.0f, 7.5f}) {
    Tensor out = Tensor::empty({257}, DType::F32);
    cfg_combine(backend(), c, u, g, out);
    std::vector<float> want(257);
    for (size_t i = 0; i < want.size(); ++i) want[i] = vu[i] + g * (vc[i] - vu[i]);
    EXPECT_CLOSE(out.data<float>(), want.data(), want.size(), 1e-6, 1e-6, "cfg");
  }
}

SHOWO2_TEST(step_report_and_cancellation) {
  FlowSamplerConfig c;
  c.num_inference_steps = 5;
  std::vector<double> t_prev, t;
  std::vector<int64_t> evals;
  const Tensor x0 = Tensor::from_f32({2}, {1.0f, -2.0f});
  const Tensor out = flow_ode_solve(backend(), c, x0, linear_field([](double) { return 0.5; }),
                                    [&](const FlowOdeStep& s) {
                                      CHECK_EQ(s.total_steps, int64_t{4});
                                      CHECK_EQ(s.step, static_cast<int64_t>(t.size()) + 1);
                                      t_prev.push_back(s.t_prev);
                                      t.push_back(s.t);
                                      evals.push_back(s.model_evaluations);
                                      // v_first is the field at (x_prev, t_prev).
                                      CHECK_EQ(s.v_first.cond.data<float>()[1], 0.5f * s.x_prev.data<float>()[1]);
                                    });
  CHECK_EQ(t, (std::vector<double>{0.1, 0.25, 0.5, 1.0}));
  CHECK_EQ(t_prev[0], 0.0);
  CHECK_EQ(evals, (std::vector<int64_t>{1, 2, 3, 4}));
  CHECK(x0.data<float>()[0] == 1.0f && out.data<float>()[0] > 1.0f);  // the input is not modified
  int polls = 0;
  CHECK_THROWS_CODE(flow_ode_solve(backend(), c, x0, linear_field([](double) { return 0.5; }), {},
                                   [&]() { return ++polls > 2; }),
                    Cancelled);
  CHECK_EQ(polls, 3);
}

SHOWO2_TEST_MAIN()
