// Showo2Config::from_json (native/core/showo2.cpp): the published config.json resolves to the presets of spec §2.1,
// §3.4 and §6.2; explicit sub-configs describe any other size; every inconsistency is a typed error naming the field.
#include <string>

#include <cmath>

#include "showo2.h"
#include "showo2_random_model.h"
#include "test_util.h"

using namespace showo2;

namespace {

// The 1.5B-HQ config.json of spec §9 (the published fields, nothing else).
const char* kPublished15B = R"({
  "_class_name": "Showo2Qwen2_5", "add_qk_norm": true, "add_time_embeds": true, "clip_latent_dim": 1152,
  "clip_pretrained_model_path": "google/siglip-so400m-patch14-384", "hidden_size": 1536, "image_latent_dim": 16,
  "image_latent_height": 27, "image_latent_width": 27, "llm_model_path": "Qwen/Qwen2.5-1.5B-Instruct",
  "llm_vocab_size": 151669, "load_from_showo": true, "num_diffusion_layers": 10, "patch_size": 2,
  "video_latent_height": 27, "video_latent_width": 27 })";

std::string error_message(const std::string& json) {
  try {
    Showo2Config::from_json(json, "config.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& haystack, const std::string& needle) { return haystack.find(needle) != std::string::npos; }

}  // namespace

SHOWO2_TEST(published_1_5b_config_resolves_to_the_presets) {
  const Showo2Config c = Showo2Config::from_json(kPublished15B, "config.json");
  CHECK_EQ(c.llm.hidden_size, 1536);
  CHECK_EQ(c.llm.num_hidden_layers, 28);
  CHECK_EQ(c.llm.num_attention_heads, 12);
  CHECK_EQ(c.llm.num_key_value_heads, 2);
  CHECK_EQ(c.llm.intermediate_size, 8960);
  CHECK_EQ(c.llm.vocab_size, 151669);
  CHECK(c.llm.tie_word_embeddings);
  CHECK_EQ(c.und_trans.num_hidden_layers, 26);
  CHECK_EQ(c.und_trans.hidden_size, 1152);
  CHECK_EQ(c.und_trans.num_attention_heads, 16);
  CHECK_EQ(c.und_trans.intermediate_size, 4304);
  CHECK_EQ(c.diffusion_head.num_hidden_layers, 10);
  CHECK_EQ(c.diffusion_head.hidden_size, 2048);
  CHECK_EQ(c.diffusion_head.num_key_value_heads, 8);
  CHECK(c.diffusion_head.rope_scaling.has_value());
  CHECK_EQ(c.vae.z_dim, 16);
  CHECK_EQ(c.image_resolution(), 432);
  CHECK_EQ(c.pixels_per_token(), 16);
}

SHOWO2_TEST(the_7b_preset_is_untied_and_wider) {
  std::string json = kPublished15B;
  json.replace(json.find("\"hidden_size\": 1536"), 19, "\"hidden_size\": 3584");
  json.replace(json.find("Qwen2.5-1.5B-Instruct"), 21, "Qwen2.5-7B-Instruct");
  const Showo2Config c = Showo2Config::from_json(json, "config.json");
  CHECK_EQ(c.llm.hidden_size, 3584);
  CHECK_EQ(c.llm.num_attention_heads, 28);
  CHECK_EQ(c.llm.num_key_value_heads, 4);
  CHECK_EQ(c.llm.intermediate_size, 18944);
  CHECK(!c.llm.tie_word_embeddings);
  CHECK_EQ(c.llm.vocab_size, 151669);
}

SHOWO2_TEST(explicit_sub_configs_describe_any_size) {
  const Showo2Config c = Showo2Config::from_json(R"({
    "hidden_size": 64, "llm_vocab_size": 1000, "clip_latent_dim": 48, "num_diffusion_layers": 2,
    "image_latent_height": 4, "image_latent_width": 4, "llm_model_path": "my/own-llm",
    "llm_config": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                   "num_key_value_heads": 2, "tie_word_embeddings": false, "rope_theta": 10000.0},
    "und_trans_config": {"hidden_size": 48, "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4},
    "diffusion_head_config": {"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 4,
                              "num_key_value_heads": 2, "head_dim": 8, "rope_scaling": null},
    "vae_config": {"dim": 4}
  })", "tiny/config.json");
  CHECK_EQ(c.llm.vocab_size, 1000);  // llm_vocab_size fills the LLM's vocabulary
  CHECK(!c.llm.tie_word_embeddings);
  CHECK_EQ(c.und_trans.num_hidden_layers, 2);
  CHECK_EQ(c.diffusion_head.num_hidden_layers, 2);  // from num_diffusion_layers
  CHECK(!c.diffusion_head.rope_scaling.has_value());
  CHECK_EQ(c.vae.dim, 4);
  CHECK_EQ(c.image_resolution(), 64);
}

SHOWO2_TEST(inconsistent_or_wrong_fields_are_typed_errors_naming_the_field) {
  CHECK_THROWS_CODE(Showo2Config::from_json("{", "config.json"), CorruptFile);
  CHECK_THROWS_CODE(Showo2Config::from_json("[]", "config.json"), InvalidArgument);
  std::string m = error_message(R"({"hidden_size": "big"})");
  CHECK(contains(m, "config.json: hidden_size: expected an integer"));
  m = error_message(R"({"hidden_size": 2048})");
  CHECK(contains(m, "hidden_size: expected the LLM width llm_config.hidden_size = 1536"));
  m = error_message(R"({"llm_model_path": "someone/else"})");
  CHECK(contains(m, "llm_model_path") && contains(m, "llm_config"));
  m = error_message(R"({"clip_latent_dim": 1024})");
  CHECK(contains(m, "clip_latent_dim: expected und_trans_config.hidden_size = 1152"));
  m = error_message(R"({"num_diffusion_layers": 4, "diffusion_head_config": {"num_hidden_layers": 3}})");
  CHECK(contains(m, "num_diffusion_layers"));
  m = error_message(R"({"diffusion_head_config": {"head_dim": 32}})");
  CHECK(contains(m, "diffusion_head_config: head_dim"));
  m = error_message(R"({"diffusion_head_config": {"rope_scaling": {"rope_type": "yarn"}}})");
  CHECK(contains(m, "diffusion_head_config.rope_scaling.rope_type"));
  m = error_message(R"({"llm_config": {"num_key_value_heads": 5}})");
  CHECK(contains(m, "num_key_value_heads"));
  m = error_message(R"({"image_latent_dim": 8})");
  CHECK(contains(m, "image_latent_dim: expected vae_config.z_dim = 16 but got 8"));
  m = error_message(R"({"vae_config": {"dim": 3}})");
  CHECK(contains(m, "config.json: vae_config: dim"));
  m = error_message(R"({"patch_size": 0})");
  CHECK(contains(m, "patch_size: expected a positive integer"));
  m = error_message(R"({"und_trans_config": {"hidden_act": "relu"}})");
  CHECK(contains(m, "hidden_act"));
}

// Found with test/fuzz/config_fuzz.cpp: sizes had no upper bound, so a config.json with a huge image_latent_height or
// patch_size overflowed int64 (undefined behaviour) in image_resolution() and in the model's constructor, and a VAE
// with 65 stages shifted past 64 bits in spatial_stride(). Every size is now at most kMaxConfigSize (2^20) and the
// VAE has at most 16 stages, named in an ERR_INVALID_ARGUMENT.
SHOWO2_TEST(sizes_beyond_the_config_limit_are_refused_before_they_overflow) {
  std::string m = error_message(R"({"image_latent_height": 4611686018427387904})");
  CHECK(contains(m, "config.json: image_latent_height: expected a positive integer up to 1048576 but got "
                    "4611686018427387904"));
  m = error_message(R"({"patch_size": 4611686018427387904})");
  CHECK(contains(m, "patch_size: expected a positive integer up to 1048576"));
  m = error_message(R"({"llm_config": {"vocab_size": 151669, "max_position_embeddings": 1048577}})");
  CHECK(contains(m, "llm_config: max_position_embeddings: expected a positive integer up to 1048576"));
  m = error_message(R"({"llm_config": {"head_dim": 2097152}})");
  CHECK(contains(m, "llm_config: head_dim: expected 0 (derived) or a positive integer up to 1048576"));
  m = error_message(R"({"und_trans_config": {"intermediate_size": 1099511627776}})");
  CHECK(contains(m, "und_trans_config: intermediate_size: expected a positive integer up to 1048576"));
  m = error_message(R"({"diffusion_head_config": {"frequency_embedding_size": 1099511627776}})");
  CHECK(contains(m, "diffusion_head_config: frequency_embedding_size: expected a positive integer up to 1048576"));
  std::string many_stages = R"({"vae_config": {"dim_mult": [1)";
  for (int i = 0; i < 65; ++i) many_stages += ",1";
  many_stages += R"(], "temperal_downsample": [false)";
  for (int i = 0; i < 64; ++i) many_stages += ",true";
  many_stages += "]}}";
  m = error_message(many_stages);
  CHECK(contains(m, "vae_config: dim_mult: expected 2 to 16 stages but got 66"));
  // The limits themselves are accepted (and image_resolution() stays exact).
  const Showo2Config c = Showo2Config::from_json(R"({"image_latent_height": 1048576, "patch_size": 1048576})",
                                                 "config.json");
  CHECK_EQ(c.image_resolution(), int64_t{1048576} * 1048576 * 8);
}

// The parameter table of spec §9.1 (computed there from the published shapes): LLM 1.543 B (tied embedding counted
// once), semantic layers 0.396 B, flow head 10 x 86.0 M, total about 2.83 B.
SHOWO2_TEST(parameter_counts_match_the_spec_table_for_1_5b) {
  const Showo2Config c = Showo2Config::from_json(kPublished15B, "config.json");
  std::vector<weights::TensorRecord> records;
  for (const test::KeySpec& k : test::showo2_checkpoint_keys(c)) records.push_back({k.name, DType::BF16, k.shape, ""});
  // Some exports store the tied lm_head anyway: it must not be counted twice.
  records.push_back({"showo.lm_head.weight", DType::BF16, {c.llm.vocab_size, c.llm.hidden_size}, ""});
  const std::vector<weights::TensorRecord> vae = {{"decoder.head.2.weight", DType::F32, {3, 96, 3, 3, 3}, ""}};
  const Showo2ParameterCounts n = count_parameters(c, records, vae);
  auto near = [](int64_t value, double expected, double rel) { return std::fabs(value - expected) <= rel * expected; };
  CHECK(near(n.llm, 1.543e9, 0.001));
  CHECK(near(n.semantic, 0.396e9, 0.003));
  CHECK(near(n.flow_head - 4096 * 2048 - 4096 - 64 * 2048 - 64 - 2048, 10 * 86.0e6, 0.001));  // minus diffusion_head_b
  CHECK(near(n.total() - n.vae, 2.83e9, 0.002));
  CHECK_EQ(n.other, 0);
  CHECK_EQ(n.vae, 3 * 96 * 27);
  CHECK(n.projections > 10e6 && n.projections < 30e6);
}

SHOWO2_TEST_MAIN()
