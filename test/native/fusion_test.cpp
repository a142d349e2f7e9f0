// FusionProj (native/core/fusion.cpp) against a PyTorch module written from spec §3.5 (RMSNorm eps 1e-6 over
// und+hidden = 88 -> Linear 88->40 -> nn.GELU() -> Linear 40->40, bf16 weights under fusion_proj.{0,1,3}), and the
// whole understanding visual path of spec §8.2 on single-frame latents:
//   Fuse( SigLIP( PatchEmbedUnd(z) + PE(grid) ), PatchEmbedGen(z) )
// at a 4x4 token grid (resized position table) and at the table's own 6x6 grid.
//
// Tolerance: fusion alone |out - ref| <= 1e-5 + 1e-5 |ref|: the float64 reference vs a float32 PyTorch run differs by
// 1.2e-6 (outputs up to ~2.5; the RMSNorm over 88 features and two GEMMs), so ~10x float32 PyTorch. The end-to-end
// path chains patch embed, SigLIP (tolerance 2e-5, see siglip_test.cpp) and fusion, so it gets SigLIP's 2e-5 + 2e-5.
#include <cstdio>
#include <string>

#include "cpu/cpu_backend.h"
#include "fusion.h"
#include "patch_embed.h"
#include "position_embedding.h"
#include "siglip.h"
#include "test_util.h"
#include "visual_fixtures.h"

using namespace showo2;
using namespace showo2::test::visual;

namespace {

constexpr double kAtol = 1e-5;
constexpr double kRtol = 1e-5;
constexpr double kPathAtol = 2e-5;
constexpr double kPathRtol = 2e-5;

FusionProj load(const weights::WeightFile& file, Backend& backend) {
  FusionProj fusion(48, 40, 1e-6, backend);
  WeightBinder binder;
  fusion.bind_weights(binder, "fusion_proj.");
  load_component(binder, file, "fusion_proj.", "FusionProj");
  return fusion;
}

// The tiny model's visual path, built and loaded the way Show-o2 will: one binder over the whole file.
struct VisualPath {
  PatchEmbed image_embedder_und, image_embedder_gen;
  PositionEmbedding position_embedding;
  SiglipEncoder und_trans;
  FusionProj fusion_proj;
  Backend& backend;

  VisualPath(const Fixtures& f, Backend& b)
      : image_embedder_und(f.config_int("image_latent_dim"), f.config_int("clip_latent_dim"), f.config_int("patch_size"), b),
        image_embedder_gen(f.config_int("image_latent_dim"), f.config_int("hidden_size"), f.config_int("patch_size"), b),
        position_embedding(f.config_int("image_latent_height"), f.config_int("image_latent_width"),
                           f.config_int("clip_latent_dim")),
        und_trans(SiglipConfig::from_config(
                      f.root.child(*f.root.find_object("und_trans_config"), "und_trans_config")),
                  b),
        fusion_proj(f.config_int("clip_latent_dim"), f.config_int("hidden_size"), 1e-6, b),
        backend(b) {
    WeightBinder binder;
    image_embedder_und.bind_weights(binder, "image_embedder_und.");
    image_embedder_gen.bind_weights(binder, "image_embedder_gen.");
    position_embedding.bind_weights(binder, "position_embedding.weight");
    und_trans.bind_weights(binder, "und_trans.");
    fusion_proj.bind_weights(binder, "fusion_proj.");
    binder.ignore_prefix("time_embed");
    binder.load_all(*f.weights, b, "visual path", "the fixture's tiny config");
  }

  // latent [N, C, 1, H, W] -> fused visual tokens [N, (H/p)*(W/p), hidden] (spec §8.2).
  Tensor forward(const Tensor& latent) {
    const int64_t p = image_embedder_und.patch_size();
    Tensor und = image_embedder_und.forward(latent);                                     // [N, h*w, und]
    Tensor pe = position_embedding.for_grid(latent.size(3) / p, latent.size(4) / p);     // [h*w, und]
    backend.add(und, pe, und);                                                           // broadcast over N
    Tensor semantic = und_trans.forward(und);                                            // [N, h*w, und]
    return fusion_proj.forward(semantic, image_embedder_gen.forward(latent));            // [N, h*w, hidden]
  }
};

}  // namespace

SHOWO2_TEST(fusion_matches_reference) {
  require_fixtures();
  Fixtures f;
  cpu::CpuBackend backend(2);
  FusionProj fusion = load(*f.weights, backend);
  expect_matches(fusion.forward(f.get("fusion_und"), f.get("fusion_gen")), f.get("fusion_output"), kAtol, kRtol,
                 "fusion_proj output");
}

SHOWO2_TEST(understanding_visual_path_matches_reference) {
  require_fixtures();
  Fixtures f;
  cpu::CpuBackend backend(2);
  VisualPath path(f, backend);
  expect_matches(path.forward(f.get("vis_latent_8x8")), f.get("vis_fused_8x8"), kPathAtol, kPathRtol,
                 "visual tokens, 4x4 grid (resized position table)");
  expect_matches(path.forward(f.get("vis_latent_12x12")), f.get("vis_fused_12x12"), kPathAtol, kPathRtol,
                 "visual tokens, 6x6 grid (the table's own grid)");
}

SHOWO2_TEST(perturbed_weight_fails_the_comparison) {
  require_fixtures();
  Fixtures f;
  cpu::CpuBackend backend(2);
  for (const char* key : {"fusion_proj.0.weight", "fusion_proj.3.bias"}) {
    auto perturbed = with_scaled_tensor(*f.weights, key, 1.01f, "fusion_perturbed");
    FusionProj fusion = load(*perturbed, backend);
    Tensor out = fusion.forward(f.get("fusion_und"), f.get("fusion_gen"));
    std::printf("    %s x1.01: max abs err %.3g\n", key, max_abs_error(out, f.get("fusion_output")));
    CHECK(comparison_fails(out, f.get("fusion_output"), kAtol, kRtol));
  }
}

SHOWO2_TEST(bad_inputs_give_typed_errors) {
  require_fixtures();
  Fixtures f;
  cpu::CpuBackend backend(1);
  CHECK_THROWS_CODE(FusionProj(48, 40, 0.0, backend), InvalidArgument);
  FusionProj fusion = load(*f.weights, backend);
  Tensor und = f.get("fusion_und"), gen = f.get("fusion_gen");
  CHECK_THROWS_CODE(fusion.forward(gen, gen), ShapeMismatch);                                       // und width 40
  CHECK_THROWS_CODE(fusion.forward(und, und), ShapeMismatch);                                       // gen width 48
  CHECK_THROWS_CODE(fusion.forward(und, Tensor::zeros({2, 4, 40}, DType::F32)), ShapeMismatch);     // T differs
  CHECK_THROWS_CODE(fusion.forward(und.to(DType::BF16), gen), UnsupportedDtype);
  FusionProj wrong(48, 32, 1e-6, backend);  // the fixture's hidden is 40
  WeightBinder binder;
  wrong.bind_weights(binder, "fusion_proj.");
  CHECK_THROWS_CODE(load_component(binder, *f.weights, "fusion_proj.", "FusionProj"), ShapeMismatch);
}

SHOWO2_TEST_MAIN()
