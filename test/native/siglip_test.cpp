// SiglipEncoder (native/core/siglip.cpp) against transformers' SiglipEncoder (tools/fixtures/make_visual_fixtures.py):
//   * SigLIP A: hidden 48, 4 heads of 12, MLP 96, 2 layers, gelu_pytorch_tanh, on x [2, 10, 48];
//   * SigLIP B: hidden 36, 2 heads of 18 (an awkward head size, as so400m's 72), MLP 80, 2 layers, exact "gelu",
//     on x [1, 7, 36];
// both with bf16 weights under Show-o2's und_trans.layers.{j} keys, configs read from visual_config.json.
//
// Tolerance: |out - ref| <= 2e-5 + 2e-5 |ref| (measured: ~1.2e-6). The reference is float64 from the same bf16 weights; a float32
// PyTorch run lands 1.1-1.3e-6 from it (outputs up to ~5.5), so this allows ~15x float32 PyTorch for a different
// summation order in GEMMs, LayerNorm and the online-softmax attention. Using the other GELU form, a missing
// LayerNorm bias, a 1% weight change or a wrong attention scale each move outputs by 7e-4 (the GELU forms) to 2e-2 (a 1% weight), all outside the tolerance.
#include <cstdio>
#include <string>

#include "cpu/cpu_backend.h"
#include "siglip.h"
#include "test_util.h"
#include "visual_fixtures.h"

using namespace showo2;
using namespace showo2::test::visual;

namespace {

constexpr double kAtol = 2e-5;
constexpr double kRtol = 2e-5;

SiglipConfig config_of(const Fixtures& f, const char* field) {
  return SiglipConfig::from_config(f.root.child(*f.root.find_object(field), field));
}

SiglipEncoder load(const SiglipConfig& config, const weights::WeightFile& file, Backend& backend) {
  SiglipEncoder encoder(config, backend);
  WeightBinder binder;
  encoder.bind_weights(binder, "und_trans.");
  load_component(binder, file, "und_trans.", "SiglipEncoder");
  return encoder;
}

}  // namespace

SHOWO2_TEST(config_defaults_are_show_o2_and_json_parses) {
  SiglipConfig d;
  CHECK_EQ(d.hidden_size, int64_t{1152});
  CHECK_EQ(d.num_hidden_layers, int64_t{26});
  CHECK_EQ(d.head_dim(), int64_t{72});
  CHECK(d.gelu_approximation() == GeluApproximation::Tanh);
  d.validate("defaults");
  require_fixtures();
  Fixtures f;
  SiglipConfig a = config_of(f, "und_trans_config");
  CHECK_EQ(a.hidden_size, int64_t{48});
  CHECK_EQ(a.head_dim(), int64_t{12});
  SiglipConfig b = config_of(f, "und_trans_config_head18");
  CHECK_EQ(b.head_dim(), int64_t{18});
  CHECK(b.gelu_approximation() == GeluApproximation::None);

  auto parse = [](const char* json, SiglipConfig base = SiglipConfig{}) {
    weights::JsonValue v = parse_config_json(json, "inline");
    return SiglipConfig::from_config(ConfigReader(v, "inline", "und_trans_config"), base);
  };
  SiglipConfig base;
  base.num_hidden_layers = 3;
  CHECK_EQ(parse(R"({"hidden_size": 64, "num_attention_heads": 8})", base).num_hidden_layers, int64_t{3});
  CHECK_THROWS_CODE(parse(R"({"hidden_act": "relu"})"), InvalidArgument);
  CHECK_THROWS_CODE(parse(R"({"hidden_size": 50, "num_attention_heads": 16})"), InvalidArgument);
  CHECK_THROWS_CODE(parse(R"({"num_hidden_layers": 0})"), InvalidArgument);
  CHECK_THROWS_CODE(parse(R"({"layer_norm_eps": -1})"), InvalidArgument);
  CHECK_THROWS_CODE(parse(R"({"hidden_size": "wide"})"), InvalidArgument);
}

SHOWO2_TEST(head_dim_12_tanh_gelu_matches_transformers) {
  require_fixtures();
  Fixtures f;
  cpu::CpuBackend backend(2);
  SiglipEncoder encoder = load(config_of(f, "und_trans_config"), *f.weights, backend);
  Tensor x = f.get("siglip_a_input");
  const std::vector<float> before = x.to_f32_vector();
  expect_matches(encoder.forward(x), f.get("siglip_a_output"), kAtol, kRtol, "SigLIP A last_hidden_state");
  CHECK(x.to_f32_vector() == before);  // the input is not modified
}

SHOWO2_TEST(head_dim_18_erf_gelu_matches_transformers) {
  require_fixtures();
  Fixtures f;
  cpu::CpuBackend backend(2);
  SiglipEncoder encoder = load(config_of(f, "und_trans_config_head18"), *f.head18, backend);
  expect_matches(encoder.forward(f.get("siglip_b_input")), f.get("siglip_b_output"), kAtol, kRtol,
                 "SigLIP B (head_dim 18) last_hidden_state");
}

// The comparison can fail: a 1% change of one weight in the last layer, or the other GELU form.
SHOWO2_TEST(perturbed_weight_or_wrong_gelu_fails_the_comparison) {
  require_fixtures();
  Fixtures f;
  cpu::CpuBackend backend(2);
  const SiglipConfig config = config_of(f, "und_trans_config");
  auto perturbed = with_scaled_tensor(*f.weights, "und_trans.layers.1.self_attn.v_proj.weight", 1.01f,
                                      "siglip_perturbed");
  SiglipEncoder bad = load(config, *perturbed, backend);
  Tensor out = bad.forward(f.get("siglip_a_input"));
  std::printf("    und_trans.layers.1.self_attn.v_proj.weight x1.01: max abs err %.3g\n",
              max_abs_error(out, f.get("siglip_a_output")));
  CHECK(comparison_fails(out, f.get("siglip_a_output"), kAtol, kRtol));

  SiglipConfig erf = config;
  erf.hidden_act = "gelu";
  SiglipEncoder wrong_act = load(erf, *f.weights, backend);
  Tensor act_out = wrong_act.forward(f.get("siglip_a_input"));
  std::printf("    erf GELU instead of gelu_pytorch_tanh: max abs err %.3g\n",
              max_abs_error(act_out, f.get("siglip_a_output")));
  CHECK(comparison_fails(act_out, f.get("siglip_a_output"), kAtol, kRtol));
}

SHOWO2_TEST(cancellation_is_polled_between_layers) {
  require_fixtures();
  Fixtures f;
  cpu::CpuBackend backend(1);
  SiglipEncoder encoder = load(config_of(f, "und_trans_config"), *f.weights, backend);
  int polls = 0;
  CHECK_THROWS_CODE(encoder.forward(f.get("siglip_a_input"), [&] { return ++polls == 2; }), Cancelled);
  CHECK_EQ(polls, 2);  // cancelled before layer 1, after layer 0 ran
  polls = 0;
  encoder.forward(f.get("siglip_a_input"), [&] { return ++polls > 100; });
  CHECK_EQ(polls, 2);  // once per layer
}

SHOWO2_TEST(bad_inputs_and_mismatched_weights_give_typed_errors) {
  require_fixtures();
  Fixtures f;
  cpu::CpuBackend backend(1);
  SiglipConfig bad_heads;
  bad_heads.num_attention_heads = 7;  // 1152 % 7 != 0
  CHECK_THROWS_CODE(SiglipEncoder(bad_heads, backend), InvalidArgument);
  SiglipEncoder unloaded(config_of(f, "und_trans_config"), backend);
  CHECK_THROWS_CODE(unloaded.forward(f.get("siglip_a_input")), InvalidArgument);

  SiglipEncoder encoder = load(config_of(f, "und_trans_config"), *f.weights, backend);
  CHECK_THROWS_CODE(encoder.forward(Tensor::zeros({2, 10, 36}, DType::F32)), ShapeMismatch);
  CHECK_THROWS_CODE(encoder.forward(Tensor::zeros({10, 48}, DType::F32)), ShapeMismatch);
  CHECK_THROWS_CODE(encoder.forward(Tensor::zeros({1, 10, 48}, DType::BF16)), UnsupportedDtype);

  // Three layers bound against a two-layer checkpoint: missing keys, reported by name.
  SiglipConfig three = config_of(f, "und_trans_config");
  three.num_hidden_layers = 3;
  SiglipEncoder deeper(three, backend);
  WeightBinder b3;
  deeper.bind_weights(b3, "und_trans.");
  CHECK_THROWS_CODE(load_component(b3, *f.weights, "und_trans.", "SiglipEncoder"), InvalidArgument);
  // Config A's shapes against config B's weights: wrongly shaped keys.
  SiglipEncoder a_on_b(config_of(f, "und_trans_config"), backend);
  WeightBinder bb;
  a_on_b.bind_weights(bb, "und_trans.");
  CHECK_THROWS_CODE(load_component(bb, *f.head18, "und_trans.", "SiglipEncoder"), ShapeMismatch);
}

SHOWO2_TEST_MAIN()
