// The Qwen2.5 language model decoder (spec §2.1): token ids -> embeddings -> 28 decoder layers -> final RMSNorm, and
// the lm_head that turns the final-normed states into logits.
//
//   embed_tokens: ids [B, L] -> [B, L, H]
//   forward:      inputs_embeds [B, L, H] at positions cache.length() .. + L - 1 -> final-normed hidden [B, L, H]
//   lm_head:      hidden [N, H] -> logits [N, V]
//
// Each decoder layer is the HF Qwen2DecoderLayer: pre-RMSNorm GQA self-attention (q/k/v with bias, o_proj without,
// rotate-half RoPE with theta 1e6 on 1-D positions, spec §5.2) and a pre-RMSNorm SwiGLU MLP, each around a residual.
// Show-o2 calls it with `inputs_embeds` (text embeddings interleaved with visual tokens) and the omni-attention mask
// (spec §5.1): causal, plus full attention inside each [time token + visual tokens] block. The flow head and lm_head
// both read the state after the final norm (spec §2.1).
//
// Written only against the Backend interface (backend.h), so the CUDA backend runs this code unchanged. Weights are
// used as stored (F32, BF16 or F16; the kernels widen them); activations and the KV cache are F32.
//
// KV cache (spec §8.2, §12): earlier positions never attend to later ones under the omni mask as long as a block is
// fed in one call, so caching K/V and feeding only the new positions is exact. forward() appends to the cache and
// rolls back on any error, so a cancelled or failed call leaves the cache as it was. forward_rows() does the same for
// rows that continue caches of different lengths in one batched pass (generation's prefix caching, spec §12).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "backend.h"
#include "config_json.h"
#include "kv_cache.h"
#include "omni_mask.h"
#include "rope.h"
#include "tensor.h"

namespace showo2 {

class WeightBinder;

// HF Qwen2 config.json spellings. Defaults are Qwen2.5-1.5B-Instruct with Show-o2's resized vocabulary.
struct Qwen2Config {
  int64_t vocab_size = 151669;  // Show-o2 resizes the table to 151669 rows (spec §2.1)
  int64_t hidden_size = 1536;
  int64_t intermediate_size = 8960;
  int64_t num_hidden_layers = 28;
  int64_t num_attention_heads = 12;
  int64_t num_key_value_heads = 2;
  int64_t head_dim = 0;  // 0: hidden_size / num_attention_heads (HF's default)
  double rms_norm_eps = 1e-6;
  double rope_theta = 1e6;
  int64_t max_position_embeddings = 32768;
  bool tie_word_embeddings = true;
  std::string hidden_act = "silu";  // the only supported value; anything else is ERR_INVALID_ARGUMENT

  // The published backbones by their Hub name ("Qwen/Qwen2.5-1.5B-Instruct", "Qwen/Qwen2.5-7B-Instruct"), with
  // vocab_size already 151669 (spec §2.1 table). ERR_INVALID_ARGUMENT listing the known names otherwise.
  static Qwen2Config preset(const std::string& llm_model_path);
  // `base` overridden by the fields present in `reader` (HF Qwen2 config.json field names; "vocab_size" too).
  // rope_theta is read from the top level (transformers 4.x files, the Hub's Qwen2.5 configs) or from
  // "rope_parameters" (transformers 5.x). A "rope_scaling"/"rope_parameters" of any rope_type other than "default",
  // or "use_sliding_window": true, is ERR_INVALID_ARGUMENT: Qwen2.5 uses neither (spec §2.1 "no rope scaling").
  // The result is validated. (Two overloads rather than `base = {}`: a default argument of the enclosing class's own
  // type cannot use its member initialisers inside the class, which GCC rejects.)
  static Qwen2Config from_config(const ConfigReader& reader, Qwen2Config base);
  static Qwen2Config from_config(const ConfigReader& reader);
  void validate(const std::string& where) const;  // ERR_INVALID_ARGUMENT naming the field
  int64_t resolved_head_dim() const;
};

// The LLM's KV cache (kv_cache.h) sized from the config: num_hidden_layers layers of [batch, capacity,
// num_key_value_heads, head_dim], at most max_position_embeddings positions.
class Qwen2KvCache : public KvCache {
 public:
  Qwen2KvCache(const Qwen2Config& config, int64_t batch);
};

namespace qwen2 {

// Members are named after the checkpoint keys (<prefix> is "showo." in Show-o2 checkpoints, "" in a plain HF
// Qwen2ForCausalLM checkpoint); shapes as stored, with D = head_dim, I = intermediate_size.
struct Qwen2Attention {
  Tensor q_proj_weight;  // <prefix>model.layers.{i}.self_attn.q_proj.weight   [Hq*D, H]
  Tensor q_proj_bias;    // <prefix>model.layers.{i}.self_attn.q_proj.bias     [Hq*D]
  Tensor k_proj_weight;  // <prefix>model.layers.{i}.self_attn.k_proj.weight   [Hkv*D, H]
  Tensor k_proj_bias;    // <prefix>model.layers.{i}.self_attn.k_proj.bias     [Hkv*D]
  Tensor v_proj_weight;  // <prefix>model.layers.{i}.self_attn.v_proj.weight   [Hkv*D, H]
  Tensor v_proj_bias;    // <prefix>model.layers.{i}.self_attn.v_proj.bias     [Hkv*D]
  Tensor o_proj_weight;  // <prefix>model.layers.{i}.self_attn.o_proj.weight   [H, Hq*D] (no bias, spec §2.1)
};

struct Qwen2Mlp {
  Tensor gate_proj_weight;  // <prefix>model.layers.{i}.mlp.gate_proj.weight   [I, H]
  Tensor up_proj_weight;    // <prefix>model.layers.{i}.mlp.up_proj.weight     [I, H]
  Tensor down_proj_weight;  // <prefix>model.layers.{i}.mlp.down_proj.weight   [H, I]
};

struct Qwen2DecoderLayer {
  Tensor input_layernorm_weight;           // <prefix>model.layers.{i}.input_layernorm.weight            [H]
  Qwen2Attention self_attn;                // <prefix>model.layers.{i}.self_attn.*
  Tensor post_attention_layernorm_weight;  // <prefix>model.layers.{i}.post_attention_layernorm.weight   [H]
  Qwen2Mlp mlp;                            // <prefix>model.layers.{i}.mlp.*
};

}  // namespace qwen2

class Qwen2Model {
 public:
  // Validates the config (ERR_INVALID_ARGUMENT naming the field). The backend must outlive the model.
  Qwen2Model(const Qwen2Config& config, Backend& backend);

  const Qwen2Config& config() const { return config_; }

  // Registers every weight with the binder under `prefix`: <prefix>model.embed_tokens.weight [V, H],
  // <prefix>model.layers.{i}.* (12 keys per layer), <prefix>model.norm.weight [H] and <prefix>lm_head.weight [V, H]
  // (bind_optional when tied: a tied checkpoint may or may not store it; untied: required).
  void bind_weights(WeightBinder& binder, const std::string& prefix);
  // Call after WeightBinder::load_all: resolves the tied lm_head (a tied model always uses embed_tokens, as HF ties
  // the parameters, even when the checkpoint stores a copy). ERR_INVALID_ARGUMENT if a required weight is unset.
  void finish_loading();

  // ids I32 or I64 [B, L] -> [B, L, H] F32 (ERR_INVALID_ARGUMENT naming position and value for an id outside [0, V)).
  Tensor embed_tokens(const Tensor& ids);

  // Runs the decoder over inputs_embeds [B, L, H] F32 placed at positions cache.length() .. cache.length()+L-1
  // (RoPE positions continue from the cache, spec §5.2). New queries attend to every cached position and to the new
  // positions under the omni mask built from `blocks` (absolute positions; one list per sample, or one list shared
  // by all samples; empty = plain causal), i.e. OmniMask::omni(blocks, cache.length()). Appends the new K/V to the
  // cache. Returns the final-normed hidden states [B, L, H] (spec §2.1: the tensor that feeds lm_head and the flow
  // head). Exceeding max_position_embeddings is ERR_INVALID_ARGUMENT ("... longer than the model's context of N
  // positions"). `should_cancel` (optional) is polled before each layer; when it returns true the cache is rolled
  // back to its length at entry and ERR_CANCELLED is thrown. Any other error also leaves the cache as it was.
  Tensor forward(const Tensor& inputs_embeds, const std::vector<std::vector<BidirectionalBlock>>& blocks,
                 KvCache& cache, const std::function<bool()>& should_cancel = {});

  // The same over rows that continue different caches (spec §12: CFG's cond and uncond rows have prefixes of
  // different lengths, B prompts have their own): inputs_embeds [R, L, H], `groups` tile the R rows, each group's new
  // positions start at its cache's length (its own RoPE offset and mask query offset). The linear layers run over
  // all R*L rows at once; RoPE and attention run per group. Appends to every group's cache; on any error (including
  // ERR_CANCELLED) every cache keeps its length at entry.
  Tensor forward_rows(const Tensor& inputs_embeds, const std::vector<CacheRows>& groups,
                      const std::function<bool()>& should_cancel = {});

  // hidden [N, H] F32 (any leading dims) -> logits [N, V] F32 (lm_head; no bias).
  Tensor lm_head(const Tensor& hidden);

  const std::vector<qwen2::Qwen2DecoderLayer>& layers() const { return layers_; }

 private:
  void ensure_rope_table(int64_t positions);
  struct RowGroup;  // a CacheRows group with its mask built (qwen2.cpp)
  Tensor decoder_layer(const qwen2::Qwen2DecoderLayer& layer, const Tensor& hidden_states, int64_t layer_index,
                       const std::vector<RowGroup>& groups);

  Qwen2Config config_;
  Backend* backend_;
  int64_t head_dim_;
  Tensor embed_tokens_weight_;                   // <prefix>model.embed_tokens.weight   [V, H]
  std::vector<qwen2::Qwen2DecoderLayer> layers_; // <prefix>model.layers.{i}.*
  Tensor norm_weight_;                           // <prefix>model.norm.weight           [H]
  Tensor lm_head_weight_;                        // <prefix>lm_head.weight              [V, H] (= embed_tokens if tied)
  RopeTable rope_table_;                         // cos/sin for positions [0, rope_table_.max_positions), grown lazily
};

}  // namespace showo2
