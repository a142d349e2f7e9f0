// PatchEmbed (native/core/patch_embed.cpp) against nn.Conv2d(kernel 2, stride 2) applied per frame
// (tools/fixtures/make_visual_fixtures.py): both Show-o2 embedders (image_embedder_und 4->48, image_embedder_gen
// 4->40, bf16 weights) on a 3-frame, non-square latent [2, 4, 3, 8, 12], tokens frame-major then row-major (spec §3.3).
//
// Tolerance: |out - ref| <= 5e-6 + 5e-6 |ref|. The reference is float64 from the same bf16 weights; a float32
// PyTorch conv lands 4.8e-7 from it (outputs up to ~4.4), so this is ~10x float32 PyTorch. A swapped row/column or
// frame order moves tokens by O(1).
#include <cstdio>
#include <string>

#include "cpu/cpu_backend.h"
#include "patch_embed.h"
#include "test_util.h"
#include "visual_fixtures.h"

using namespace showo2;
using namespace showo2::test::visual;

namespace {

constexpr double kAtol = 5e-6;
constexpr double kRtol = 5e-6;

PatchEmbed load(const weights::WeightFile& file, const std::string& prefix, int64_t out, Backend& backend) {
  PatchEmbed embed(4, out, 2, backend);
  WeightBinder binder;
  embed.bind_weights(binder, prefix);
  load_component(binder, file, prefix, "PatchEmbed");
  return embed;
}

}  // namespace

SHOWO2_TEST(und_and_gen_embedders_match_conv2d_per_frame) {
  require_fixtures();
  Fixtures f;
  cpu::CpuBackend backend(2);
  PatchEmbed und = load(*f.weights, "image_embedder_und.", 48, backend);
  PatchEmbed gen = load(*f.weights, "image_embedder_gen.", 40, backend);
  Tensor latent = f.get("latent");  // [2, 4, 3, 8, 12]
  expect_matches(und.forward(latent), f.get("und_tokens"), kAtol, kRtol, "image_embedder_und tokens");
  expect_matches(gen.forward(latent), f.get("gen_tokens"), kAtol, kRtol, "image_embedder_gen tokens");
}

// A strided latent (a frame slice of a larger video, here frames 1..2) gives the tokens of those frames.
SHOWO2_TEST(strided_latent_gives_the_same_tokens) {
  require_fixtures();
  Fixtures f;
  cpu::CpuBackend backend(2);
  PatchEmbed gen = load(*f.weights, "image_embedder_gen.", 40, backend);
  Tensor latent = f.get("latent");
  Tensor tail = latent.slice(2, 1, 3);  // [2, 4, 2, 8, 12], not contiguous
  Tensor all = gen.forward(latent);     // [2, 72, 40]: 24 tokens per frame
  Tensor expected = all.slice(1, 24, 72).contiguous();
  CHECK(gen.forward(tail).to_f32_vector() == gen.forward(tail.contiguous()).to_f32_vector());
  expect_matches(gen.forward(tail), expected, 1e-6, 1e-6, "frames 1..2 of a strided latent");
}

SHOWO2_TEST(perturbed_weight_fails_the_comparison) {
  require_fixtures();
  Fixtures f;
  cpu::CpuBackend backend(2);
  auto perturbed = with_scaled_tensor(*f.weights, "image_embedder_und.proj.weight", 1.01f, "patch_perturbed");
  PatchEmbed und = load(*perturbed, "image_embedder_und.", 48, backend);
  Tensor out = und.forward(f.get("latent"));
  std::printf("    image_embedder_und.proj.weight x1.01: max abs err %.3g\n", max_abs_error(out, f.get("und_tokens")));
  CHECK(comparison_fails(out, f.get("und_tokens"), kAtol, kRtol));
}

SHOWO2_TEST(bad_inputs_give_typed_errors) {
  require_fixtures();
  Fixtures f;
  cpu::CpuBackend backend(1);
  CHECK_THROWS_CODE(PatchEmbed(4, 40, 0, backend), InvalidArgument);
  PatchEmbed gen = load(*f.weights, "image_embedder_gen.", 40, backend);
  CHECK_THROWS_CODE(gen.forward(Tensor::zeros({1, 4, 8, 8}, DType::F32)), ShapeMismatch);        // rank 4
  CHECK_THROWS_CODE(gen.forward(Tensor::zeros({1, 3, 1, 8, 8}, DType::F32)), ShapeMismatch);     // 3 channels
  CHECK_THROWS_CODE(gen.forward(Tensor::zeros({1, 4, 1, 7, 8}, DType::F32)), InvalidArgument);   // H odd
  CHECK_THROWS_CODE(gen.forward(Tensor::zeros({1, 4, 1, 8, 8}, DType::BF16)), UnsupportedDtype);
  PatchEmbed wrong(4, 48, 2, backend);  // gen's weights are [40, 4, 2, 2]
  WeightBinder binder;
  wrong.bind_weights(binder, "image_embedder_gen.");
  CHECK_THROWS_CODE(load_component(binder, *f.weights, "image_embedder_gen.", "PatchEmbed"), ShapeMismatch);
}

SHOWO2_TEST_MAIN()
