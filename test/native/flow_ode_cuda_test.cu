// cuda/flow_ode.cu (the fused Euler step with the CFG combine) against the CPU backend
// (native/core/cpu/flow_ode.cpp): with and without the unconditional velocity, guidance 0, 1 and 5, negative and
// positive steps, odd sizes (1, 7, 1153) and a 432x432 image's latent (16 x 27 x 27 x 4 after patching, ~47K).
// Skipped without a CUDA device, except the argument checks.
//
// Tolerance: none. Both sides round each of d = v_c - v_u, g * d, + v_u, dt * v and x + ... separately in the same
// order (the kernel through __f*_rn, the CPU through separate statements): bitwise equality (atol 0, rtol 0).
#include <cstdint>
#include <string>
#include <vector>

#include "../../cuda/flow_ode.h"
#include "cpu/cpu_backend.h"
#include "cuda_test_util.h"
#include "tensor.h"
#include "test_util.h"

using namespace showo2;
using showo2::test::DeviceMirror;
using showo2::test::random_normal;

SHOWO2_TEST(flow_euler_update_matches_cpu) {
  test::require_cuda_device();
  cpu::CpuBackend cpu(2);
  uint32_t seed = 1000;
  for (const Shape& shape : {Shape{1}, Shape{7}, Shape{1153}, Shape{1, 16, 27, 27, 4}})
    for (bool guided : {true, false})
      for (float guidance : {0.0f, 1.0f, 5.0f})
        for (float dt : {0.0213f, -0.0625f}) {
          const size_t n = static_cast<size_t>(shape_numel(shape));
          Tensor x = Tensor::from_f32(shape, random_normal(n, seed++));
          Tensor vc = Tensor::from_f32(shape, random_normal(n, seed++));
          Tensor vu = guided ? Tensor::from_f32(shape, random_normal(n, seed++)) : Tensor();
          DeviceMirror dx(x), dvc(vc), dvu(guided ? vu : vc);
          cpu.flow_euler_update(x, vc, vu, guidance, dt);  // the CPU updates its x after the mirror was taken
          cuda::FlowOdeParams p;
          p.x = dx.f32();
          p.v_cond = dvc.f32();
          p.v_uncond = guided ? dvu.f32() : nullptr;
          p.n = static_cast<int64_t>(n);
          p.guidance = guidance;
          p.dt = dt;
          cuda::launch_flow_euler_update(p, 0);
          const std::vector<float> got = dx.download_f32(), want = x.to_f32_vector();
          EXPECT_CLOSE(got.data(), want.data(), want.size(), 0.0, 0.0,
                       "flow_euler_update " + x.shape_string() + (guided ? " guided g=" : " unguided g=") +
                           std::to_string(guidance) + " dt=" + std::to_string(dt));
        }
}

SHOWO2_TEST(flow_euler_launcher_rejects_bad_arguments) {
  cuda::FlowOdeParams p;
  p.n = 4;
  CHECK_THROWS_CODE(cuda::launch_flow_euler_update(p, 0), InvalidArgument);
  p.n = -1;
  CHECK_THROWS_CODE(cuda::launch_flow_euler_update(p, 0), ShapeMismatch);
}

SHOWO2_TEST_MAIN()
