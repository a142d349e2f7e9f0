// cuda/activation.cu (SiLU, GELU erf/tanh, fused SwiGLU) against the CPU backend (native/core/cpu/activation.cpp,
// which takes its AVX2 kernels where the CPU has them) on the same seeded inputs: odd sizes (1, 7, 1153), model
// widths (72, 4304 = SigLIP's MLP, 8960 = Qwen2.5-1.5B's intermediate size), strided views and in place. Skipped
// without a CUDA device.
//
// Tolerance: CUDA's expf/erff/tanhf are within 2 ulp, libm's within 1 and the CPU's AVX2 versions within a few
// 1e-7 (activation_test.cpp); each formula composes 2-4 of them with roundings, so both sides sit within ~5e-7
// relative of exact and of each other. rtol 1e-5 leaves 20x headroom and still catches a wrong formula (erf vs tanh
// GELU differ by up to ~1e-3); atol 1e-6 covers results that cancel towards zero (GELU/SiLU of large negatives,
// where both sides are tiny and their relative error is meaningless).
#include <cstdint>
#include <string>
#include <vector>

#include "../../cuda/activation.h"
#include "cpu/cpu_backend.h"
#include "cuda_test_util.h"
#include "tensor.h"
#include "test_util.h"

using namespace showo2;
using showo2::test::DeviceMirror;
using showo2::test::random_normal;

namespace {

constexpr double kAtol = 1e-6;
constexpr double kRtol = 1e-5;

const Shape kShapes[] = {{1}, {7}, {3, 72}, {5, 1153}, {4, 4304}, {2, 8960}, {2, 3, 5, 7}};

cuda::ActivationParams params_for(const Tensor& x, const DeviceMirror& dx, const Tensor& out,
                                  const DeviceMirror& dout) {
  cuda::ActivationParams p;
  p.x = dx.f32();
  p.x_rows = test::row_map_of(x);
  p.out = dout.f32();
  p.out_rows = test::row_map_of(out);
  p.rows = test::rows_of(x);
  p.cols = x.size(-1);
  return p;
}

}  // namespace

SHOWO2_TEST(silu_and_gelu_match_cpu) {
  test::require_cuda_device();
  cpu::CpuBackend cpu(2);
  uint32_t seed = 100;
  for (const Shape& shape : kShapes)
    for (cuda::ActivationKind kind :
         {cuda::ActivationKind::Silu, cuda::ActivationKind::GeluErf, cuda::ActivationKind::GeluTanh}) {
      // stddev 4: reaches the saturated tails (|x| > 10) where the formulas lose digits first.
      Tensor x = Tensor::from_f32(shape, random_normal(static_cast<size_t>(shape_numel(shape)), seed++, 4.0f));
      Tensor ref = Tensor::empty(shape, DType::F32);
      const char* name = kind == cuda::ActivationKind::Silu ? "silu"
                         : kind == cuda::ActivationKind::GeluErf ? "gelu" : "gelu_tanh";
      if (kind == cuda::ActivationKind::Silu) cpu.silu(x, ref);
      else cpu.gelu(x, kind == cuda::ActivationKind::GeluErf ? GeluApproximation::None : GeluApproximation::Tanh, ref);
      DeviceMirror dx(x);
      cuda::ActivationParams p = params_for(x, dx, x, dx);  // in place
      p.kind = kind;
      cuda::launch_activation(p, 0);
      const std::vector<float> got = dx.download_f32(), want = ref.to_f32_vector();
      EXPECT_CLOSE(got.data(), want.data(), want.size(), kAtol, kRtol, std::string(name) + " " + x.shape_string());
    }
}

SHOWO2_TEST(swiglu_matches_cpu) {
  test::require_cuda_device();
  cpu::CpuBackend cpu(2);
  uint32_t seed = 200;
  for (const Shape& shape : kShapes) {
    const size_t n = static_cast<size_t>(shape_numel(shape));
    Tensor gate = Tensor::from_f32(shape, random_normal(n, seed++, 3.0f));
    Tensor up = Tensor::from_f32(shape, random_normal(n, seed++, 3.0f));
    Tensor ref = Tensor::empty(shape, DType::F32);
    cpu.swiglu(gate, up, ref);
    DeviceMirror dgate(gate), dup(up);
    cuda::ActivationParams p = params_for(gate, dgate, up, dup);  // out aliases up
    p.up = dup.f32();
    p.up_rows = test::row_map_of(up);
    cuda::launch_swiglu(p, 0);
    const std::vector<float> got = dup.download_f32(), want = ref.to_f32_vector();
    EXPECT_CLOSE(got.data(), want.data(), want.size(), kAtol, kRtol, "swiglu " + gate.shape_string());
  }
  // Gate and up as the two halves of one fused [R, 2I] projection (strided rows), out a separate tensor.
  const int64_t R = 5, I = 1153;
  Tensor fused = Tensor::from_f32({R, 2 * I}, random_normal(static_cast<size_t>(R * 2 * I), 300, 3.0f));
  Tensor gate = fused.slice(1, 0, I), up = fused.slice(1, I, 2 * I);
  Tensor ref = Tensor::empty({R, I}, DType::F32);
  cpu.swiglu(gate, up, ref);
  DeviceMirror dgate(gate), dup(up);
  Tensor out = Tensor::zeros({R, I}, DType::F32);
  DeviceMirror dout(out);
  cuda::ActivationParams p = params_for(gate, dgate, out, dout);
  p.up = dup.f32();
  p.up_rows = test::row_map_of(up);
  cuda::launch_swiglu(p, 0);
  const std::vector<float> got = dout.download_f32(), want = ref.to_f32_vector();
  EXPECT_CLOSE(got.data(), want.data(), want.size(), kAtol, kRtol, "swiglu on the halves of a fused projection");
}

SHOWO2_TEST(activation_launchers_reject_bad_arguments) {
  cuda::ActivationParams p;
  p.rows = 2;
  p.cols = 3;
  CHECK_THROWS_CODE(cuda::launch_activation(p, 0), InvalidArgument);
  float dummy[6] = {};
  p.x = dummy;
  p.out = dummy;
  CHECK_THROWS_CODE(cuda::launch_swiglu(p, 0), InvalidArgument);  // no up
}

SHOWO2_TEST_MAIN()
