// Show-o2's flow head (spec §6.2): the 2-layer diff_proj MLP, `num_hidden_layers` adaLN-modulated transformer blocks
// (diffusion_head_a) and the DiT-style final layer (diffusion_head_b) that turn the final-normed LLM states into
// per-token velocities.
//
//   llm_hidden [R, L, llm hidden] (final-normed LLM states)
//     -> diff_proj: Linear -> GELU(erf) -> Linear          (absent when the widths are equal, spec §14)  [R, L, H]
//     -> num_hidden_layers x ModulatedAttentionBlock      (adaLN from c inside the visual block only)    [R, L, H]
//     -> FinalLayer: modulate(RMSNorm(h)) -> Linear                                                      [R, L, p*p*C]
//
// The head attends over the same sequence as the LLM with the same omni mask and its own Llama-3-scaled RoPE on
// positions 0..L-1 (spec §5.2), so it is a transformer over the whole sequence, not a per-token MLP (spec §11.6).
// Like Qwen2Model it appends K/V to a KvCache and can run rows that continue caches of different lengths in one
// batched pass (CacheRows, kv_cache.h): generation computes the prefix before the visual block once and then only the
// block at every ODE step (spec §12). Positions outside every modulated span use shift = 0, scale = 0, gate = 1, so
// the prefix states do not depend on c.
//
// Reading the visual outputs back into a latent (the channels-last unpatchify of spec §6.2) lives in generation.cpp,
// which knows the latent's shape.
//
// Written only against the Backend interface (backend.h); activations and the cache are F32, weights as stored.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "backend.h"
#include "config_json.h"
#include "kv_cache.h"
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
  const FlowHeadConfig& config() const { return config_; }
  int64_t llm_hidden_size() const { return llm_hidden_size_; }
  int64_t out_channels() const { return out_channels_; }

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

// The positions [begin, end) of one row's new positions that take the row's adaLN modulation: the visual block,
// TIME position included (spec §6.2). An empty span (begin == end) means identity modulation for the whole row.
struct ModulatedSpan {
  int64_t begin = 0;
  int64_t end = 0;
};

// The flow head's forward pass over weights loaded elsewhere (Showo2Model owns them). Not thread-safe (the RoPE table
// grows lazily); one call at a time.
class FlowHead {
 public:
  // `weights` and `backend` must outlive the head.
  FlowHead(const FlowHeadWeights& weights, Backend& backend);

  const FlowHeadConfig& config() const { return weights_->config(); }
  // An empty cache for `batch` rows: num_hidden_layers layers of [batch, capacity, num_key_value_heads, head_dim], at
  // most max_position_embeddings positions.
  KvCache make_cache(int64_t batch) const;

  // llm_hidden [R, L, llm hidden] F32: the final-normed LLM states of the new positions of R rows (spec §2.1).
  // c [1 or R, hidden] F32: the adaLN conditioning time_embed(t) (row r uses c[r], or c[0] for every row); may be
  //   undefined when every span is empty.
  // spans: one per row (relative to the row's new positions), or empty = no modulation anywhere.
  // groups: the rows' caches, RoPE offsets and omni blocks (absolute positions), as for Qwen2Model::forward_rows.
  // Returns the final layer's output [R, L, p*p*C] for every new position and appends the new K/V to the caches. On
  // any error (ERR_CANCELLED from `should_cancel`, polled before each block, included) every cache keeps its length.
  Tensor forward(const Tensor& llm_hidden, const Tensor& c, const std::vector<ModulatedSpan>& spans,
                 const std::vector<CacheRows>& groups, const std::function<bool()>& should_cancel = {});

 private:
  struct RowGroup;  // a CacheRows group with its mask built (flow_head.cpp)
  struct Modulation;
  void ensure_rope_table(int64_t positions);
  void modulated_block(const flow_head::ModulatedAttentionBlock& block, int64_t layer_index, Tensor& hidden_states,
                       const Modulation& modulation, const std::vector<RowGroup>& groups);

  const FlowHeadWeights* weights_;
  Backend* backend_;
  RopeTable rope_table_;  // the head's Llama-3-scaled table, grown lazily
};

}  // namespace showo2
