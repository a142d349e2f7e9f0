// TimestepEmbedder (native/core/time_embed.cpp) against a PyTorch module written from spec §3.6 (DiT's sinusoid with t
// in [0, 1], cos first; mlp = Linear(F->32), SiLU, Linear(32->32), bf16 weights under time_embed.mlp.{0,2}), with
// F = 16 and an odd F = 17 (DiT's zero-column padding), and the sinusoid alone at Show-o2's F = 256.
//
// Tolerances:
//   * sinusoid |out - ref| <= 1e-6: PyTorch computes it in float32 (its vectorised exp/cos/sin are ~1 ulp); values
//     lie in [-1, 1], so this allows a few float ulps. A x1000 time scale, sin/cos swapped or a wrong frequency
//     moves values by O(1).
//   * c |out - ref| <= 2e-6 + 2e-6 |ref|: float64 reference from the float32 sinusoid; a float32 PyTorch run differs by
//     1.2e-7 (outputs up to ~1.1), plus the sinusoid's few ulps carried through two small GEMMs: ~10x.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "cpu/cpu_backend.h"
#include "test_util.h"
#include "time_embed.h"
#include "visual_fixtures.h"

using namespace showo2;
using namespace showo2::test::visual;

namespace {

constexpr double kSinusoidAtol = 1e-6;
constexpr double kAtol = 2e-6;
constexpr double kRtol = 2e-6;

TimestepEmbedder load(const weights::WeightFile& file, const std::string& prefix, int64_t freq, Backend& backend) {
  TimestepEmbedder embed(32, freq, backend);
  WeightBinder binder;
  embed.bind_weights(binder, prefix);
  load_component(binder, file, prefix, "TimestepEmbedder");
  return embed;
}

}  // namespace

SHOWO2_TEST(sinusoid_matches_pytorch_float32) {
  require_fixtures();
  Fixtures f;
  const std::vector<float> t = f.get("time_t").to_f32_vector();  // 0, 0.25, 0.7, 1
  expect_matches(TimestepEmbedder::sinusoid(t, 16), f.get("time_sinusoid"), kSinusoidAtol, 0, "sinusoid F=16");
  expect_matches(TimestepEmbedder::sinusoid(t, 17), f.get("time_sinusoid_odd"), kSinusoidAtol, 0, "sinusoid F=17");
  expect_matches(TimestepEmbedder::sinusoid(t, 256), f.get("time_sinusoid_256"), kSinusoidAtol, 0, "sinusoid F=256");
  // t = 0: cos terms 1, sin terms 0; the odd size's pad column stays 0.
  std::vector<float> zero = TimestepEmbedder::sinusoid({0.0f}, 17).to_f32_vector();
  for (int i = 0; i < 8; ++i) CHECK(zero[i] == 1.0f && zero[8 + i] == 0.0f);
  CHECK(zero[16] == 0.0f);
}

SHOWO2_TEST(embedding_matches_reference) {
  require_fixtures();
  Fixtures f;
  cpu::CpuBackend backend(2);
  const std::vector<float> t = f.get("time_t").to_f32_vector();
  TimestepEmbedder even = load(*f.weights, "time_embed.", 16, backend);
  expect_matches(even.forward(t), f.get("time_c"), kAtol, kRtol, "c, F=16");
  TimestepEmbedder odd = load(*f.weights, "time_embed_odd.", 17, backend);
  expect_matches(odd.forward(t), f.get("time_c_odd"), kAtol, kRtol, "c, F=17 (zero-padded)");
}

SHOWO2_TEST(perturbed_weight_fails_the_comparison) {
  require_fixtures();
  Fixtures f;
  cpu::CpuBackend backend(2);
  auto perturbed = with_scaled_tensor(*f.weights, "time_embed.mlp.0.weight", 1.01f, "time_perturbed");
  TimestepEmbedder bad = load(*perturbed, "time_embed.", 16, backend);
  Tensor out = bad.forward(f.get("time_t").to_f32_vector());
  std::printf("    time_embed.mlp.0.weight x1.01: max abs err %.3g\n", max_abs_error(out, f.get("time_c")));
  CHECK(comparison_fails(out, f.get("time_c"), kAtol, kRtol));
}

SHOWO2_TEST(bad_arguments_give_typed_errors) {
  require_fixtures();
  Fixtures f;
  cpu::CpuBackend backend(1);
  CHECK_THROWS_CODE(TimestepEmbedder(0, 256, backend), InvalidArgument);
  CHECK_THROWS_CODE(TimestepEmbedder(32, 1, backend), InvalidArgument);
  CHECK_THROWS_CODE(TimestepEmbedder::sinusoid({0.5f}, 0), InvalidArgument);
  TimestepEmbedder even = load(*f.weights, "time_embed.", 16, backend);
  CHECK_THROWS_CODE(even.forward({}), InvalidArgument);
  TimestepEmbedder unloaded(32, 16, backend);
  CHECK_THROWS_CODE(unloaded.forward({0.5f}), InvalidArgument);
  // F = 16 bound against the F = 17 weights: wrongly shaped mlp.0.weight, reported by key.
  TimestepEmbedder wrong(32, 16, backend);
  WeightBinder binder;
  wrong.bind_weights(binder, "time_embed_odd.");
  CHECK_THROWS_CODE(load_component(binder, *f.weights, "time_embed_odd.", "TimestepEmbedder"), ShapeMismatch);
}

SHOWO2_TEST_MAIN()
