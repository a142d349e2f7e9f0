// Show-o2's flow head (spec §6.2): the 2-layer diff_proj MLP, `num_hidden_layers` adaLN-modulated transformer blocks
// (diffusion_head_a) and the DiT-style final layer (diffusion_head_b) that turn the final-normed LLM states into
// per-token velocities.
//
// This file holds the configuration and the weights, which every Show-o2 checkpoint carries and the loader checks.
// The forward pass (modulated blocks over the omni mask, final layer, unpatchify) is the [gen] work and lands with the
// flow-matching sampler.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config_json.h"
#include "rope.h"
#include "tensor.h"
#include "weight_binder.h"

namespace showo2 {

// The `diffusion_head_config` object of config.json (the reference's DiffusionHeadConfig). Defaults are the released
// head, identical for the 1.5B and 7B models (spec §6.2).
struct FlowHeadConfig {
  int64_t hidden_size = 2048;
  int64_t intermediate_size = 8192;                  // SwiGLU, no bias
  int64_t num_hidden_layers = 10;                    // config.json's top-level num_diffusion_layers
  int64_t num_attention_heads = 32;
  int64_t num_key_value_heads = 8;
  int64_t head_dim = 64;
  double rms_norm_eps = 1e-5;                        // the blocks' input/post-attention norms
  double qk_norm_eps = 1e-6;                         // q_norm / k_norm (spec §12 "eps values")
  double final_norm_eps = 1e-6;                      // diffusion_head_b.norm_final
  double rope_theta = 500000.0;
  std::optional<Llama3RopeScaling> rope_scaling = Llama3RopeScaling{};  // "rope_type": "llama3"; null: no scaling
  int64_t max_position_embeddings = 8192;
  int64_t frequency_embedding_size = 256;            // the time embedding's sinusoid width (spec §3.6)

  // `base` overridden by the fields present (rope_scaling: an object with rope_type "llama3" and its four numbers,
  // or null for plain RoPE).
  static FlowHeadConfig from_config(const ConfigReader& reader, FlowHeadConfig base);
  static FlowHeadConfig from_config(const ConfigReader& reader) { return from_config(reader, FlowHeadConfig()); }
  void validate(const std::string& where) const;
  // q_norm / k_norm width: hidden_size / num_attention_heads (spec §14).
  int64_t qk_norm_dim() const { return hidden_size / num_attention_heads; }
};

namespace flow_head {

struct ModulatedAttentionBlock {                // diffusion_head_a.{k}
  Tensor input_layernorm;                       // .input_layernorm.weight              [hidden]
  Tensor post_attention_layernorm;              // .post_attention_layernorm.weight     [hidden]
  Tensor q_proj, k_proj, v_proj, o_proj;        // .self_attn.{q,k,v,o}_proj.weight     [heads*hd | kv*hd, hidden], o: [hidden, heads*hd]
  Tensor q_norm, k_norm;                        // .self_attn.{q,k}_norm.weight         [hidden / heads]
  Tensor gate_proj, up_proj, down_proj;         // .mlp.{gate,up,down}_proj.weight      [inter, hidden], [hidden, inter]
                                                // .adaLN_modulation.0 is nn.SiLU()
  Tensor adaLN_modulation_1_weight;             // .adaLN_modulation.1.weight           [6*hidden, hidden]
  Tensor adaLN_modulation_1_bias;               // .adaLN_modulation.1.bias             [6*hidden]
};

struct FinalLayer {                             // diffusion_head_b
  Tensor norm_final;                            // .norm_final.weight                   [hidden]
  Tensor adaLN_modulation_1_weight;             // .adaLN_modulation.1.weight           [2*hidden, hidden]
  Tensor adaLN_modulation_1_bias;               // .adaLN_modulation.1.bias             [2*hidden]
  Tensor linear_weight;                         // .linear.weight                       [p*p*C, hidden]
  Tensor linear_bias;                           // .linear.bias                         [p*p*C]
};

}  // namespace flow_head

class FlowHeadWeights {
 public:
  // `llm_hidden_size`: the LLM width; diff_proj exists only when it differs from the head's (spec §14).
  // `out_channels`: p * p * latent channels (64 for Show-o2).
  FlowHeadWeights(const FlowHeadConfig& config, int64_t llm_hidden_size, int64_t out_channels);
  void bind_weights(WeightBinder& binder);

  bool has_diff_proj() const { return has_diff_proj_; }

  Tensor diff_proj_0_weight, diff_proj_0_bias;  // diff_proj.0.{weight,bias}  [head, llm], [head]; diff_proj.1 is GELU(erf)
  Tensor diff_proj_2_weight, diff_proj_2_bias;  // diff_proj.2.{weight,bias}  [head, head], [head]
  std::vector<flow_head::ModulatedAttentionBlock> diffusion_head_a;
  flow_head::FinalLayer diffusion_head_b;

 private:
  FlowHeadConfig config_;
  int64_t llm_hidden_size_;
  int64_t out_channels_;
  bool has_diff_proj_;
};

}  // namespace showo2
