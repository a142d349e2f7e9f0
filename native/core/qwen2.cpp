// The Qwen2.5 decoder (spec §2.1); see qwen2.h for the contract.
//
// Reading order, as modeling_qwen2.py: config, KV cache, weight binding, then the forward pieces small to large
// (attention with RoPE and the cache, MLP, decoder layer) and the model (embed, forward, lm_head).
#include "qwen2.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "model_ops.h"
#include "weight_binder.h"
#include "weights/json.h"

namespace showo2 {

using namespace qwen2;

// ---- config ------------------------------------------------------------------------------------------------------

Qwen2Config Qwen2Config::preset(const std::string& llm_model_path) {
  Qwen2Config c;  // the defaults are Qwen2.5-1.5B-Instruct with Show-o2's vocabulary
  if (llm_model_path == "Qwen/Qwen2.5-1.5B-Instruct") return c;
  if (llm_model_path == "Qwen/Qwen2.5-7B-Instruct") {
    c.hidden_size = 3584;
    c.intermediate_size = 18944;
    c.num_attention_heads = 28;
    c.num_key_value_heads = 4;
    c.tie_word_embeddings = false;
    return c;
  }
  fail(ErrorCode::InvalidArgument, "Qwen2Config.preset: llm_model_path: unknown backbone \"", llm_model_path,
       "\"; known: \"Qwen/Qwen2.5-1.5B-Instruct\", \"Qwen/Qwen2.5-7B-Instruct\"");
}

namespace {

// A rope_scaling / rope_parameters object: only the plain rope ("rope_type": "default", or no type) is Qwen2.5's.
void check_plain_rope(const ConfigReader& r, const char* field) {
  const weights::JsonValue* obj = r.find_object(field);
  if (!obj) return;
  ConfigReader sub = r.child(*obj, field);
  std::string type = "default";
  if (sub.has("rope_type")) sub.read("rope_type", &type);
  else if (sub.has("type")) sub.read("type", &type);
  if (type != "default")
    sub.fail_field(sub.has("rope_type") ? "rope_type" : "type",
                   "expected \"default\" (Qwen2.5 uses no rope scaling, spec §2.1) but got \"" + type + "\"");
}

}  // namespace

Qwen2Config Qwen2Config::from_config(const ConfigReader& r, Qwen2Config base) {
  Qwen2Config c = std::move(base);
  r.read("vocab_size", &c.vocab_size);
  r.read("hidden_size", &c.hidden_size);
  r.read("intermediate_size", &c.intermediate_size);
  r.read("num_hidden_layers", &c.num_hidden_layers);
  r.read("num_attention_heads", &c.num_attention_heads);
  r.read("num_key_value_heads", &c.num_key_value_heads);
  r.read("head_dim", &c.head_dim);
  r.read("rms_norm_eps", &c.rms_norm_eps);
  r.read("rope_theta", &c.rope_theta);
  if (const weights::JsonValue* params = r.find_object("rope_parameters")) {  // transformers 5.x layout
    r.child(*params, "rope_parameters").read("rope_theta", &c.rope_theta);
    check_plain_rope(r, "rope_parameters");
  }
  check_plain_rope(r, "rope_scaling");
  r.read("max_position_embeddings", &c.max_position_embeddings);
  r.read("tie_word_embeddings", &c.tie_word_embeddings);
  r.read("hidden_act", &c.hidden_act);
  bool sliding = false;
  r.read("use_sliding_window", &sliding);
  if (sliding) r.fail_field("use_sliding_window", "expected false (Qwen2.5 attends over the whole context)");
  c.validate(r.path().empty() ? r.source() : r.source() + ": " + r.path());
  return c;
}

Qwen2Config Qwen2Config::from_config(const ConfigReader& r) { return from_config(r, Qwen2Config()); }

void Qwen2Config::validate(const std::string& where) const {
  auto bad = [&where](const char* field, const std::string& why) {
    fail(ErrorCode::InvalidArgument, where, ": ", field, ": ", why);
  };
  auto positive = [&bad](const char* field, int64_t v) {
    if (!is_config_size(v)) bad(field, config_size_error(v));
  };
  positive("vocab_size", vocab_size);
  positive("hidden_size", hidden_size);
  positive("intermediate_size", intermediate_size);
  positive("num_hidden_layers", num_hidden_layers);
  positive("num_attention_heads", num_attention_heads);
  positive("num_key_value_heads", num_key_value_heads);
  positive("max_position_embeddings", max_position_embeddings);
  if (num_attention_heads % num_key_value_heads != 0)
    bad("num_key_value_heads", "expected a divisor of num_attention_heads (" + std::to_string(num_attention_heads) +
                                   ") but got " + std::to_string(num_key_value_heads));
  if (head_dim != 0 && !is_config_size(head_dim))
    bad("head_dim", "expected 0 (derived) or a positive integer up to " + std::to_string(kMaxConfigSize) + " but got " +
                        std::to_string(head_dim));
  if (head_dim == 0 && hidden_size % num_attention_heads != 0)
    bad("head_dim", "is 0 (derived as hidden_size / num_attention_heads) but hidden_size " +
                        std::to_string(hidden_size) + " is not a multiple of num_attention_heads " +
                        std::to_string(num_attention_heads));
  if (resolved_head_dim() % 2 != 0)
    bad("head_dim", "expected an even head size (rotate-half RoPE) but got " + std::to_string(resolved_head_dim()));
  if (!(rms_norm_eps > 0) || !std::isfinite(rms_norm_eps)) {
    std::ostringstream os;
    os << "expected a finite value > 0 but got " << rms_norm_eps;
    bad("rms_norm_eps", os.str());
  }
  if (!(rope_theta > 0) || !std::isfinite(rope_theta)) {
    std::ostringstream os;
    os << "expected a finite value > 0 but got " << rope_theta;
    bad("rope_theta", os.str());
  }
  if (hidden_act != "silu") bad("hidden_act", "expected \"silu\" (the only activation of Qwen2.5) but got \"" +
                                                  hidden_act + "\"");
}

int64_t Qwen2Config::resolved_head_dim() const {
  return head_dim > 0 ? head_dim : (num_attention_heads > 0 ? hidden_size / num_attention_heads : 0);
}

// ---- KV cache ------------------------------------------------------------------------------------------------------

namespace {
const Qwen2Config& validated(const Qwen2Config& config) {
  config.validate("Qwen2KvCache: config");
  return config;
}
}  // namespace

Qwen2KvCache::Qwen2KvCache(const Qwen2Config& config, int64_t batch)
    : KvCache(validated(config).num_hidden_layers, batch, config.num_key_value_heads, config.resolved_head_dim(),
              config.max_position_embeddings) {}

// ---- weight binding ------------------------------------------------------------------------------------------------

Qwen2Model::Qwen2Model(const Qwen2Config& config, Backend& backend)
    : config_(config), backend_(&backend), head_dim_(config.resolved_head_dim()) {
  config_.validate("Qwen2Model: config");
  layers_.resize(static_cast<size_t>(config_.num_hidden_layers));
}

void Qwen2Model::bind_weights(WeightBinder& b, const std::string& prefix) {
  const int64_t H = config_.hidden_size, V = config_.vocab_size, I = config_.intermediate_size;
  const int64_t q_dim = config_.num_attention_heads * head_dim_, kv_dim = config_.num_key_value_heads * head_dim_;
  b.bind(&embed_tokens_weight_, prefix + "model.embed_tokens.weight", {V, H});
  for (size_t i = 0; i < layers_.size(); ++i) {
    Qwen2DecoderLayer& l = layers_[i];
    const std::string key = prefix + "model.layers." + std::to_string(i) + ".";
    b.bind(&l.input_layernorm_weight, key + "input_layernorm.weight", {H});
    b.bind(&l.self_attn.q_proj_weight, key + "self_attn.q_proj.weight", {q_dim, H});
    b.bind(&l.self_attn.q_proj_bias, key + "self_attn.q_proj.bias", {q_dim});
    b.bind(&l.self_attn.k_proj_weight, key + "self_attn.k_proj.weight", {kv_dim, H});
    b.bind(&l.self_attn.k_proj_bias, key + "self_attn.k_proj.bias", {kv_dim});
    b.bind(&l.self_attn.v_proj_weight, key + "self_attn.v_proj.weight", {kv_dim, H});
    b.bind(&l.self_attn.v_proj_bias, key + "self_attn.v_proj.bias", {kv_dim});
    b.bind(&l.self_attn.o_proj_weight, key + "self_attn.o_proj.weight", {H, q_dim});
    b.bind(&l.post_attention_layernorm_weight, key + "post_attention_layernorm.weight", {H});
    b.bind(&l.mlp.gate_proj_weight, key + "mlp.gate_proj.weight", {I, H});
    b.bind(&l.mlp.up_proj_weight, key + "mlp.up_proj.weight", {I, H});
    b.bind(&l.mlp.down_proj_weight, key + "mlp.down_proj.weight", {H, I});
  }
  b.bind(&norm_weight_, prefix + "model.norm.weight", {H});
  if (config_.tie_word_embeddings) b.bind_optional(&lm_head_weight_, prefix + "lm_head.weight", {V, H});
  else b.bind(&lm_head_weight_, prefix + "lm_head.weight", {V, H});
}

void Qwen2Model::finish_loading() {
  // HF ties the parameters (lm_head.weight IS embed_tokens.weight), so a stored copy is never read; using the
  // embedding also avoids keeping a second [V, H] table alive.
  if (config_.tie_word_embeddings) lm_head_weight_ = embed_tokens_weight_;
  auto require = [](const Tensor& t, const char* name) {
    SHOWO2_CHECK(t.defined(), InvalidArgument, "Qwen2Model: ", name,
                 " is not loaded (call bind_weights and WeightBinder::load_all before finish_loading)");
  };
  require(embed_tokens_weight_, "model.embed_tokens.weight");
  require(norm_weight_, "model.norm.weight");
  require(lm_head_weight_, "lm_head.weight");
  for (const Qwen2DecoderLayer& l : layers_) require(l.mlp.down_proj_weight, "model.layers.*.mlp.down_proj.weight");
}

void Qwen2Model::ensure_rope_table(int64_t positions) {
  if (positions <= rope_table_.max_positions) return;
  // Grown geometrically (from 4096, capped at the context) so a long decode rebuilds the table only a few times.
  const int64_t size =
      std::min(config_.max_position_embeddings, std::max({positions, 2 * rope_table_.max_positions, int64_t{4096}}));
  rope_table_ = make_rope_table(head_dim_, size, config_.rope_theta);  // built on the host
  rope_table_.cos = backend_->to_device(rope_table_.cos);
  rope_table_.sin = backend_->to_device(rope_table_.sin);
}

// ---- forward pieces ------------------------------------------------------------------------------------------------

// A CacheRows group with its omni mask built for the group's query offset (the cache length at entry).
struct Qwen2Model::RowGroup {
  int64_t row_begin, row_end;
  KvCache* cache;
  int64_t past;  // cache length at entry = RoPE offset of the group's first new position
  OmniMask mask;
};

// Qwen2DecoderLayer.forward for the new positions of every row group (group g: positions [P_g, P_g + L),
// P_g = its cache length), appending their K/V to the cache slots the caller reserved (the lengths are committed by
// forward_rows() once every layer has succeeded). Linears see all rows at once; RoPE and attention run per group.
Tensor Qwen2Model::decoder_layer(const Qwen2DecoderLayer& layer, const Tensor& hidden_states, int64_t layer_index,
                                 const std::vector<RowGroup>& groups) {
  Backend& b = *backend_;
  const int64_t B = hidden_states.size(0), L = hidden_states.size(1);
  const int64_t Hq = config_.num_attention_heads, Hkv = config_.num_key_value_heads, D = head_dim_;
  const Qwen2Attention& attn = layer.self_attn;

  // ---- self-attention: residual + o_proj(attention(rope(q), rope(k), v))
  Tensor normed = rms_norm(b, hidden_states, layer.input_layernorm_weight, config_.rms_norm_eps);  // [B, L, H]
  Tensor query_states = linear(b, normed, attn.q_proj_weight, attn.q_proj_bias).reshape({B, L, Hq, D});
  Tensor key_states = linear(b, normed, attn.k_proj_weight, attn.k_proj_bias).reshape({B, L, Hkv, D});
  Tensor value_states = linear(b, normed, attn.v_proj_weight, attn.v_proj_bias).reshape({B, L, Hkv, D});
  Tensor attn_output = new_f32(b, {B, L, Hq, D});  // [B, L, Hq, D]; GQA: query head h reads kv head h / (Hq / Hkv)
  for (const RowGroup& g : groups) {
    const int64_t P = g.past;
    Tensor q = query_states.slice(0, g.row_begin, g.row_end);  // [n, L, Hq, D]
    Tensor k = key_states.slice(0, g.row_begin, g.row_end);    // [n, L, Hkv, D]
    b.rope(q, rope_table_, P);  // positions P .. P+L-1 (spec §5.2)
    b.rope(k, rope_table_, P);
    // past_key_value.update: the new K/V go to slots [P, P + L); attention then reads the whole prefix [0, P + L) as
    // strided views of the cache (the kernel accepts any row stride).
    const Tensor& cache_k = g.cache->keys(layer_index);
    const Tensor& cache_v = g.cache->values(layer_index);
    Tensor k_new = cache_k.slice(1, P, P + L);  // [n, L, Hkv, D]
    Tensor v_new = cache_v.slice(1, P, P + L);
    b.copy(k, k_new);
    b.copy(value_states.slice(0, g.row_begin, g.row_end), v_new);
    Tensor out = attn_output.slice(0, g.row_begin, g.row_end);  // [n, L, Hq, D]
    b.attention(q, cache_k.slice(1, 0, P + L), cache_v.slice(1, 0, P + L), g.mask,
                static_cast<float>(1.0 / std::sqrt(static_cast<double>(D))), out);
  }
  Tensor hidden = linear(b, attn_output.reshape({B, L, Hq * D}), attn.o_proj_weight, Tensor());  // [B, L, H]
  b.add(hidden, hidden_states, hidden);                                                          // + residual

  // ---- MLP: residual + down_proj(silu(gate_proj(x)) * up_proj(x))
  Tensor mlp_in = rms_norm(b, hidden, layer.post_attention_layernorm_weight, config_.rms_norm_eps);  // [B, L, H]
  Tensor gate = linear(b, mlp_in, layer.mlp.gate_proj_weight, Tensor());                            // [B, L, I]
  Tensor up = linear(b, mlp_in, layer.mlp.up_proj_weight, Tensor());                                // [B, L, I]
  b.swiglu(gate, up, gate);                                                                         // silu(gate) * up
  Tensor mlp_out = linear(b, gate, layer.mlp.down_proj_weight, Tensor());  // [B, L, H]
  b.add(mlp_out, hidden, mlp_out);                                        // + residual
  return mlp_out;
}

// ---- model ---------------------------------------------------------------------------------------------------------

Tensor Qwen2Model::embed_tokens(const Tensor& ids) {
  SHOWO2_CHECK(ids.defined(), InvalidArgument, "Qwen2Model.embed_tokens: ids: tensor is undefined");
  if (ids.dtype() != DType::I32 && ids.dtype() != DType::I64)
    fail(ErrorCode::UnsupportedDtype, "Qwen2Model.embed_tokens: ids: expected I32 or I64 but got ",
         dtype_name(ids.dtype()));
  if (ids.dim() != 2)
    fail(ErrorCode::ShapeMismatch, "Qwen2Model.embed_tokens: ids: expected [B, L] but got ", ids.shape_string());
  SHOWO2_CHECK(embed_tokens_weight_.defined(), InvalidArgument,
               "Qwen2Model.embed_tokens: weights are not loaded (bind_weights, load_all, finish_loading)");
  const int64_t B = ids.size(0), L = ids.size(1);
  Tensor flat = ids.contiguous().reshape({B * L});
  // Checked here (not only in the kernel) so the message names the [b, l] position a caller knows.
  for (int64_t i = 0; i < B * L; ++i) {
    const int64_t id = flat.dtype() == DType::I64 ? flat.data<int64_t>()[i]
                                                  : static_cast<int64_t>(flat.data<int32_t>()[i]);
    if (id < 0 || id >= config_.vocab_size)
      fail(ErrorCode::InvalidArgument, "Qwen2Model.embed_tokens: ids: id ", id, " at position [", i / L, ", ", i % L,
           "] is outside the vocabulary [0, ", config_.vocab_size, ")");
  }
  Tensor out = backend_->empty({B * L, config_.hidden_size}, DType::F32);  // [B*L, H]
  backend_->embedding(backend_->to_device(flat), embed_tokens_weight_, out);
  return out.reshape({B, L, config_.hidden_size});  // [B, L, H]
}

Tensor Qwen2Model::forward(const Tensor& inputs_embeds, const std::vector<std::vector<BidirectionalBlock>>& blocks,
                           KvCache& cache, const std::function<bool()>& should_cancel) {
  const int64_t B = inputs_embeds.defined() && inputs_embeds.dim() == 3 ? inputs_embeds.size(0) : cache.batch();
  SHOWO2_CHECK(B == cache.batch(), ShapeMismatch, "Qwen2Model.forward: inputs_embeds has batch ", B,
               " but the cache was made for batch ", cache.batch());
  return forward_rows(inputs_embeds, {CacheRows{0, B, &cache, blocks}}, should_cancel);
}

Tensor Qwen2Model::forward_rows(const Tensor& inputs_embeds, const std::vector<CacheRows>& groups,
                                const std::function<bool()>& should_cancel) {
  Backend& b = *backend_;
  const int64_t H = config_.hidden_size;
  SHOWO2_CHECK(norm_weight_.defined() && lm_head_weight_.defined(), InvalidArgument,
               "Qwen2Model.forward: weights are not loaded (bind_weights, load_all, finish_loading)");
  SHOWO2_CHECK(inputs_embeds.defined(), InvalidArgument, "Qwen2Model.forward: inputs_embeds: tensor is undefined");
  if (inputs_embeds.dtype() != DType::F32)
    fail(ErrorCode::UnsupportedDtype, "Qwen2Model.forward: inputs_embeds: expected F32 but got ",
         dtype_name(inputs_embeds.dtype()));
  if (inputs_embeds.dim() != 3 || inputs_embeds.size(2) != H)
    fail(ErrorCode::ShapeMismatch, "Qwen2Model.forward: inputs_embeds: expected [B, L, ", H, "] but got ",
         inputs_embeds.shape_string());
  const int64_t B = inputs_embeds.size(0), L = inputs_embeds.size(1);
  SHOWO2_CHECK(L > 0, InvalidArgument, "Qwen2Model.forward: inputs_embeds: expected at least one position but got ",
               inputs_embeds.shape_string());
  check_cache_rows(groups, B, L, config_.num_hidden_layers, config_.num_key_value_heads, head_dim_,
                   "Qwen2Model.forward");

  std::vector<RowGroup> row_groups;
  int64_t longest = 0;
  for (const CacheRows& g : groups) {
    const int64_t past = g.cache->length();
    // spec §5.1, query rows at absolute positions past .. past+L-1
    OmniMask mask = OmniMask::omni(g.blocks.empty() ? std::vector<std::vector<BidirectionalBlock>>{{}} : g.blocks, past);
    mask.validate(g.row_end - g.row_begin);
    row_groups.push_back(RowGroup{g.row_begin, g.row_end, g.cache, past, std::move(mask)});
    longest = std::max(longest, past + L);
  }
  ensure_rope_table(longest);
  for (const RowGroup& g : row_groups) g.cache->reserve(g.past + L, b);

  // Nothing below changes a cache's length: the new K/V land in slots >= past, which are only committed at the end,
  // so an exception (including cancellation) anywhere leaves every cache as it was at entry.
  Tensor hidden_states = inputs_embeds;  // [B, L, H]
  for (size_t i = 0; i < layers_.size(); ++i) {
    if (should_cancel && should_cancel())
      fail(ErrorCode::Cancelled, "Qwen2Model.forward: cancelled before layer ", i, " of ", layers_.size());
    hidden_states = decoder_layer(layers_[i], hidden_states, static_cast<int64_t>(i), row_groups);  // [B, L, H]
  }
  Tensor normed = rms_norm(b, hidden_states, norm_weight_, config_.rms_norm_eps);  // [B, L, H] (model.norm)
  for (const RowGroup& g : row_groups) g.cache->commit(g.past + L);
  return normed;
}

Tensor Qwen2Model::lm_head(const Tensor& hidden) {
  SHOWO2_CHECK(lm_head_weight_.defined(), InvalidArgument,
               "Qwen2Model.lm_head: weights are not loaded (bind_weights, load_all, finish_loading)");
  if (hidden.dim() < 1 || hidden.size(-1) != config_.hidden_size)
    fail(ErrorCode::ShapeMismatch, "Qwen2Model.lm_head: hidden: expected [N, ", config_.hidden_size, "] but got ",
         hidden.shape_string());
  return linear(*backend_, hidden, lm_head_weight_, Tensor());  // [N, V]
}

}  // namespace showo2
