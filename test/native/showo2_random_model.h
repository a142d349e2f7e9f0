// Random-weight Show-o2 checkpoints for the generation tests and benchmark: every key of the published layout
// (spec §9.1) at the sizes of a Showo2Config, so a model loads through the same binder as from a real checkpoint.
//
//   showo2_checkpoint_keys(config)        the keys, shapes and fan-ins
//   InMemoryWeights                       a WeightFile over tensors held in memory (no file)
//   random_showo2_weights(config, seed)   F32 weights: linears ~ U(+-sqrt(3/fan_in)), norms 1 + U(+-0.1), biases and
//                                         embeddings ~ U(+-0.1)/U(+-1); the adaLN linears are NOT zero (the released
//                                         model's are trained; zeros would hide every modulation bug)
//   tiny_showo2_config(vocab)             test/fixtures/showo2/tiny-model/config.json with a small vocabulary
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "error.h"
#include "showo2.h"
#include "tensor.h"
#include "in_memory_weights.h"
#include "weights/weight_file.h"

namespace showo2::test {

enum class InitKind { Linear, Bias, Norm, Embedding };

struct KeySpec {
  std::string name;
  Shape shape;
  InitKind kind;
  int64_t fan_in = 1;
};

inline std::vector<KeySpec> showo2_checkpoint_keys(const Showo2Config& c) {
  std::vector<KeySpec> keys;
  auto linear = [&](const std::string& name, int64_t out, int64_t in, bool bias) {
    keys.push_back({name + ".weight", {out, in}, InitKind::Linear, in});
    if (bias) keys.push_back({name + ".bias", {out}, InitKind::Bias});
  };
  auto norm = [&](const std::string& name, int64_t n) { keys.push_back({name, {n}, InitKind::Norm}); };
  const Qwen2Config& llm = c.llm;
  const int64_t H = llm.hidden_size, D = llm.resolved_head_dim();
  keys.push_back({"showo.model.embed_tokens.weight", {llm.vocab_size, H}, InitKind::Embedding});
  for (int64_t i = 0; i < llm.num_hidden_layers; ++i) {
    const std::string p = "showo.model.layers." + std::to_string(i) + ".";
    norm(p + "input_layernorm.weight", H);
    linear(p + "self_attn.q_proj", llm.num_attention_heads * D, H, true);
    linear(p + "self_attn.k_proj", llm.num_key_value_heads * D, H, true);
    linear(p + "self_attn.v_proj", llm.num_key_value_heads * D, H, true);
    linear(p + "self_attn.o_proj", H, llm.num_attention_heads * D, false);
    norm(p + "post_attention_layernorm.weight", H);
    linear(p + "mlp.gate_proj", llm.intermediate_size, H, false);
    linear(p + "mlp.up_proj", llm.intermediate_size, H, false);
    linear(p + "mlp.down_proj", H, llm.intermediate_size, false);
  }
  norm("showo.model.norm.weight", H);
  if (!llm.tie_word_embeddings) linear("showo.lm_head", llm.vocab_size, H, false);

  const int64_t z = c.image_latent_dim, p = c.patch_size, U = c.clip_latent_dim;
  keys.push_back({"image_embedder_und.proj.weight", {U, z, p, p}, InitKind::Linear, z * p * p});
  keys.push_back({"image_embedder_und.proj.bias", {U}, InitKind::Bias});
  keys.push_back({"image_embedder_gen.proj.weight", {H, z, p, p}, InitKind::Linear, z * p * p});
  keys.push_back({"image_embedder_gen.proj.bias", {H}, InitKind::Bias});
  keys.push_back({"position_embedding.weight", {c.image_latent_height * c.image_latent_width, U}, InitKind::Bias});
  for (int64_t j = 0; j < c.und_trans.num_hidden_layers; ++j) {
    const std::string q = "und_trans.layers." + std::to_string(j) + ".";
    norm(q + "layer_norm1.weight", U);
    keys.push_back({q + "layer_norm1.bias", {U}, InitKind::Bias});
    for (const char* proj : {"q_proj", "k_proj", "v_proj", "out_proj"}) linear(q + "self_attn." + proj, U, U, true);
    norm(q + "layer_norm2.weight", U);
    keys.push_back({q + "layer_norm2.bias", {U}, InitKind::Bias});
    linear(q + "mlp.fc1", c.und_trans.intermediate_size, U, true);
    linear(q + "mlp.fc2", U, c.und_trans.intermediate_size, true);
  }
  norm("fusion_proj.0.weight", U + H);
  linear("fusion_proj.1", H, U + H, true);
  linear("fusion_proj.3", H, H, true);

  const FlowHeadConfig& f = c.diffusion_head;
  const int64_t Hh = f.hidden_size;
  linear("time_embed.mlp.0", Hh, f.frequency_embedding_size, true);
  linear("time_embed.mlp.2", Hh, Hh, true);
  if (Hh != H) {
    linear("time_embed_proj", H, Hh, true);
    linear("diff_proj.0", Hh, H, true);
    linear("diff_proj.2", Hh, Hh, true);
  }
  for (int64_t k = 0; k < f.num_hidden_layers; ++k) {
    const std::string q = "diffusion_head_a." + std::to_string(k) + ".";
    norm(q + "input_layernorm.weight", Hh);
    norm(q + "post_attention_layernorm.weight", Hh);
    linear(q + "self_attn.q_proj", f.num_attention_heads * f.head_dim, Hh, false);
    linear(q + "self_attn.k_proj", f.num_key_value_heads * f.head_dim, Hh, false);
    linear(q + "self_attn.v_proj", f.num_key_value_heads * f.head_dim, Hh, false);
    linear(q + "self_attn.o_proj", Hh, f.num_attention_heads * f.head_dim, false);
    norm(q + "self_attn.q_norm.weight", f.qk_norm_dim());
    norm(q + "self_attn.k_norm.weight", f.qk_norm_dim());
    linear(q + "mlp.gate_proj", f.intermediate_size, Hh, false);
    linear(q + "mlp.up_proj", f.intermediate_size, Hh, false);
    linear(q + "mlp.down_proj", Hh, f.intermediate_size, false);
    linear(q + "adaLN_modulation.1", 6 * Hh, Hh, true);
  }
  norm("diffusion_head_b.norm_final.weight", Hh);
  linear("diffusion_head_b.adaLN_modulation.1", 2 * Hh, Hh, true);
  linear("diffusion_head_b.linear", p * p * z, Hh, true);
  return keys;
}

inline Tensor random_init(const KeySpec& k, std::mt19937& rng) {
  std::vector<float> v(static_cast<size_t>(shape_numel(k.shape)));
  float lo = -0.1f, hi = 0.1f, add = 0.0f;
  switch (k.kind) {
    case InitKind::Linear: hi = std::sqrt(3.0f / static_cast<float>(k.fan_in)); lo = -hi; break;
    case InitKind::Bias: break;
    case InitKind::Norm: add = 1.0f; break;
    case InitKind::Embedding: lo = -1.0f; hi = 1.0f; break;
  }
  std::uniform_real_distribution<float> dist(lo, hi);
  for (float& x : v) x = add + dist(rng);
  return Tensor::from_f32(k.shape, v);
}

inline void random_showo2_weights(const Showo2Config& config, uint32_t seed, InMemoryWeights& out) {
  std::mt19937 rng(seed);
  for (const KeySpec& k : showo2_checkpoint_keys(config)) out.add(k.name, random_init(k, rng));
}

inline std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorCode::FileNotFound, "cannot read ", path);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

// The committed tiny model's config.json (hidden 64, 2 LLM layers, head width 32 with 2 blocks, VAE dim 4) with the
// vocabulary shrunk to `vocab` rows so the random checkpoint stays small.
inline Showo2Config tiny_showo2_config(const std::string& fixtures_dir, int64_t vocab = 512) {
  std::string text = read_text_file(fixtures_dir + "/showo2/tiny-model/config.json");
  for (size_t at; (at = text.find("151669")) != std::string::npos;) text.replace(at, 6, std::to_string(vocab));
  return Showo2Config::from_json(text, "tiny-model/config.json (vocab " + std::to_string(vocab) + ")");
}

}  // namespace showo2::test
