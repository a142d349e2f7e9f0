#include "flow_head.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "model_ops.h"
#include "error.h"

namespace showo2 {

FlowHeadConfig FlowHeadConfig::from_config(const ConfigReader& r, FlowHeadConfig c) {
  r.read("hidden_size", &c.hidden_size);
  r.read("intermediate_size", &c.intermediate_size);
  r.read("num_hidden_layers", &c.num_hidden_layers);
  r.read("num_attention_heads", &c.num_attention_heads);
  r.read("num_key_value_heads", &c.num_key_value_heads);
  r.read("head_dim", &c.head_dim);
  r.read("rms_norm_eps", &c.rms_norm_eps);
  r.read("qk_norm_eps", &c.qk_norm_eps);
  r.read("final_norm_eps", &c.final_norm_eps);
  r.read("rope_theta", &c.rope_theta);
  r.read("max_position_embeddings", &c.max_position_embeddings);
  r.read("frequency_embedding_size", &c.frequency_embedding_size);
  if (const auto* v = r.find("rope_scaling")) {
    if (v->is_null()) {
      c.rope_scaling.reset();
    } else {
      const ConfigReader s = r.child(*r.find_object("rope_scaling"), "rope_scaling");
      std::string type = "llama3";
      s.read("rope_type", &type);
      if (!s.has("rope_type")) s.read("type", &type);  // older transformers spelling
      if (type != "llama3") s.fail_field("rope_type", "expected \"llama3\" (the only scaling the head uses) but got \"" + type + "\"");
      Llama3RopeScaling scaling;
      s.read("factor", &scaling.factor);
      s.read("low_freq_factor", &scaling.low_freq_factor);
      s.read("high_freq_factor", &scaling.high_freq_factor);
      s.read("original_max_position_embeddings", &scaling.original_max_position_embeddings);
      c.rope_scaling = scaling;
    }
  }
  c.validate(r.path().empty() ? r.source() : r.source() + ": " + r.path());
  return c;
}

void FlowHeadConfig::validate(const std::string& where) const {
  auto bad = [&where](const char* field, const std::string& why) {
    fail(ErrorCode::InvalidArgument, where, ": ", field, ": ", why);
  };
  for (auto [field, value] : {std::pair<const char*, int64_t>{"hidden_size", hidden_size},
                              {"intermediate_size", intermediate_size},
                              {"num_hidden_layers", num_hidden_layers},
                              {"num_attention_heads", num_attention_heads},
                              {"num_key_value_heads", num_key_value_heads},
                              {"head_dim", head_dim},
                              {"max_position_embeddings", max_position_embeddings},
                              {"frequency_embedding_size", frequency_embedding_size}})
    if (!is_config_size(value)) bad(field, config_size_error(value));
  if (num_attention_heads % num_key_value_heads != 0)
    bad("num_key_value_heads", "expected a divisor of num_attention_heads (" + std::to_string(num_attention_heads) +
                                   ") but got " + std::to_string(num_key_value_heads));
  if (head_dim % 2 != 0) bad("head_dim", "expected an even value (rotate-half RoPE) but got " + std::to_string(head_dim));
  if (hidden_size % num_attention_heads != 0)
    bad("hidden_size", "expected a multiple of num_attention_heads (the q/k norm width is hidden_size / heads)");
  if (qk_norm_dim() != head_dim)
    bad("head_dim", "expected hidden_size / num_attention_heads = " + std::to_string(qk_norm_dim()) +
                        " (q_norm/k_norm act per head, spec §14) but got " + std::to_string(head_dim));
  for (auto [field, value] : {std::pair<const char*, double>{"rms_norm_eps", rms_norm_eps},
                              {"qk_norm_eps", qk_norm_eps},
                              {"final_norm_eps", final_norm_eps},
                              {"rope_theta", rope_theta}})
    if (!(value > 0.0)) bad(field, "expected a positive number but got " + std::to_string(value));
}

FlowHeadWeights::FlowHeadWeights(const FlowHeadConfig& config, int64_t llm_hidden_size, int64_t out_channels)
    : config_(config),
      llm_hidden_size_(llm_hidden_size),
      out_channels_(out_channels),
      has_diff_proj_(llm_hidden_size != config.hidden_size) {
  diffusion_head_a.resize(static_cast<size_t>(config.num_hidden_layers));
}

void FlowHeadWeights::bind_weights(WeightBinder& b) {
  const int64_t H = config_.hidden_size;
  const int64_t q_out = config_.num_attention_heads * config_.head_dim;
  const int64_t kv_out = config_.num_key_value_heads * config_.head_dim;
  const int64_t I = config_.intermediate_size;
  if (has_diff_proj_) {
    b.bind(&diff_proj_0_weight, "diff_proj.0.weight", {H, llm_hidden_size_});
    b.bind(&diff_proj_0_bias, "diff_proj.0.bias", {H});
    b.bind(&diff_proj_2_weight, "diff_proj.2.weight", {H, H});
    b.bind(&diff_proj_2_bias, "diff_proj.2.bias", {H});
  }
  for (size_t k = 0; k < diffusion_head_a.size(); ++k) {
    auto& blk = diffusion_head_a[k];
    const std::string p = "diffusion_head_a." + std::to_string(k) + ".";
    b.bind(&blk.input_layernorm, p + "input_layernorm.weight", {H});
    b.bind(&blk.post_attention_layernorm, p + "post_attention_layernorm.weight", {H});
    b.bind(&blk.q_proj, p + "self_attn.q_proj.weight", {q_out, H});
    b.bind(&blk.k_proj, p + "self_attn.k_proj.weight", {kv_out, H});
    b.bind(&blk.v_proj, p + "self_attn.v_proj.weight", {kv_out, H});
    b.bind(&blk.o_proj, p + "self_attn.o_proj.weight", {H, q_out});
    b.bind(&blk.q_norm, p + "self_attn.q_norm.weight", {config_.qk_norm_dim()});
    b.bind(&blk.k_norm, p + "self_attn.k_norm.weight", {config_.qk_norm_dim()});
    b.bind(&blk.gate_proj, p + "mlp.gate_proj.weight", {I, H});
    b.bind(&blk.up_proj, p + "mlp.up_proj.weight", {I, H});
    b.bind(&blk.down_proj, p + "mlp.down_proj.weight", {H, I});
    b.bind(&blk.adaLN_modulation_1_weight, p + "adaLN_modulation.1.weight", {6 * H, H});
    b.bind(&blk.adaLN_modulation_1_bias, p + "adaLN_modulation.1.bias", {6 * H});
  }
  auto& f = diffusion_head_b;
  b.bind(&f.norm_final, "diffusion_head_b.norm_final.weight", {H});
  b.bind(&f.adaLN_modulation_1_weight, "diffusion_head_b.adaLN_modulation.1.weight", {2 * H, H});
  b.bind(&f.adaLN_modulation_1_bias, "diffusion_head_b.adaLN_modulation.1.bias", {2 * H});
  b.bind(&f.linear_weight, "diffusion_head_b.linear.weight", {out_channels_, H});
  b.bind(&f.linear_bias, "diffusion_head_b.linear.bias", {out_channels_});
}

// ---- forward ------------------------------------------------------------------------------------------------------
//
// Reading order as modules.py: helpers (linear, norm, adaLN chunks, modulate), the modulated block, the head.

using namespace flow_head;

namespace {

// Chunk i of width H of an adaLN output [Rc, k*H] (torch's .chunk(k, dim=-1)): [Rc, H], rows k*H apart.
Tensor ada_chunk(const Tensor& ada, int64_t i, int64_t H) { return ada.slice(1, i * H, (i + 1) * H); }

}  // namespace

// The rows' adaLN inputs: SiLU(c) once per call (adaLN_modulation.0 is nn.SiLU()), and which condition row each
// position takes. Positions outside every span take the identity (shift 0, scale 0, gate 1: row_group -1), so the
// prefix states never depend on c (spec §6.2).
struct FlowHead::Modulation {
  Tensor silu_c;     // [Rc, H] on the backend; undefined when no row has a span
  Tensor row_group;  // I32 [R*L] on the backend: c's row for positions inside their row's span, -1 elsewhere
  bool any() const { return silu_c.defined(); }

  // x = x * (1 + scale) + shift (modules.py `modulate`, fp32 like the reference's upcast); x [R, L, H] contiguous,
  // `ada` the block's adaLN output [Rc, k*H].
  void modulate(Backend& b, Tensor& x, const Tensor& ada, int64_t shift_chunk, int64_t scale_chunk) const {
    const int64_t H = x.size(2);
    Tensor rows = x.reshape({x.size(0) * x.size(1), H});  // [R*L, H]
    b.modulate(rows, ada_chunk(ada, shift_chunk, H), ada_chunk(ada, scale_chunk, H), row_group, rows);
  }
  // h = h + gate * y (h + y where unmodulated); h, y [R, L, H] contiguous.
  void gated_residual(Backend& b, Tensor& h, const Tensor& y, const Tensor& ada, int64_t gate_chunk) const {
    const int64_t H = h.size(2);
    Tensor h_rows = h.reshape({h.size(0) * h.size(1), H});  // [R*L, H]
    if (!any()) {
      b.add(h_rows, y.reshape({y.size(0) * y.size(1), H}), h_rows);
      return;
    }
    b.gated_residual(h_rows, y.reshape({y.size(0) * y.size(1), H}), ada_chunk(ada, gate_chunk, H), row_group);
  }
};

struct FlowHead::RowGroup {
  int64_t row_begin, row_end;
  KvCache* cache;
  int64_t past;  // cache length at entry = RoPE offset of the group's first new position
  OmniMask mask;
};

FlowHead::FlowHead(const FlowHeadWeights& weights, Backend& backend) : weights_(&weights), backend_(&backend) {
  weights.config().validate("FlowHead: config");
}

KvCache FlowHead::make_cache(int64_t batch) const {
  const FlowHeadConfig& c = config();
  return KvCache(c.num_hidden_layers, batch, c.num_key_value_heads, c.head_dim, c.max_position_embeddings);
}

void FlowHead::ensure_rope_table(int64_t positions) {
  if (positions <= rope_table_.max_positions) return;
  const FlowHeadConfig& c = config();
  const int64_t size =
      std::min(c.max_position_embeddings, std::max({positions, 2 * rope_table_.max_positions, int64_t{4096}}));
  rope_table_ = make_rope_table(c.head_dim, size, c.rope_theta, c.rope_scaling);  // Llama-3 scaled (spec §5.2), host
  rope_table_.cos = backend_->to_device(rope_table_.cos);
  rope_table_.sin = backend_->to_device(rope_table_.sin);
}

// ModulatedAttentionBlock.forward (spec §6.2) for the new positions of every row group, in place on the residual
// stream `hidden_states` [R, L, H]:
//   shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = adaLN_modulation(c).chunk(6)
//   h = h + gate_msa * attn(modulate(input_layernorm(h), shift_msa, scale_msa))
//   h = h + gate_mlp * mlp(modulate(post_attention_layernorm(h), shift_mlp, scale_mlp))
void FlowHead::modulated_block(const ModulatedAttentionBlock& block, int64_t layer_index, Tensor& hidden_states,
                               const Modulation& modulation, const std::vector<RowGroup>& groups) {
  Backend& b = *backend_;
  const FlowHeadConfig& cfg = config();
  const int64_t R = hidden_states.size(0), L = hidden_states.size(1);
  const int64_t Hq = cfg.num_attention_heads, Hkv = cfg.num_key_value_heads, D = cfg.head_dim;

  Tensor ada;  // [Rc, 6H]
  if (modulation.any()) ada = linear(b, modulation.silu_c, block.adaLN_modulation_1_weight, block.adaLN_modulation_1_bias);

  // ---- self-attention
  Tensor normed = rms_norm(b, hidden_states, block.input_layernorm, cfg.rms_norm_eps);  // [R, L, H]
  if (modulation.any()) modulation.modulate(b, normed, ada, /*shift_msa*/ 0, /*scale_msa*/ 1);
  Tensor query_states = linear(b, normed, block.q_proj, Tensor()).reshape({R, L, Hq, D});
  Tensor key_states = linear(b, normed, block.k_proj, Tensor()).reshape({R, L, Hkv, D});
  Tensor value_states = linear(b, normed, block.v_proj, Tensor()).reshape({R, L, Hkv, D});
  {  // q_norm / k_norm: RMSNorm over each head's D values, before RoPE (spec §6.2)
    Tensor q_rows = query_states.reshape({R * L * Hq, D}), k_rows = key_states.reshape({R * L * Hkv, D});
    b.rms_norm(q_rows, block.q_norm, static_cast<float>(cfg.qk_norm_eps), q_rows);
    b.rms_norm(k_rows, block.k_norm, static_cast<float>(cfg.qk_norm_eps), k_rows);
  }
  Tensor attn_output = new_f32(b, {R, L, Hq, D});
  for (const RowGroup& g : groups) {
    const int64_t P = g.past;
    Tensor q = query_states.slice(0, g.row_begin, g.row_end);  // [n, L, Hq, D]
    Tensor k = key_states.slice(0, g.row_begin, g.row_end);    // [n, L, Hkv, D]
    b.rope(q, rope_table_, P);  // the head's own positions P .. P+L-1 (spec §5.2)
    b.rope(k, rope_table_, P);
    const Tensor& cache_k = g.cache->keys(layer_index);
    const Tensor& cache_v = g.cache->values(layer_index);
    Tensor k_new = cache_k.slice(1, P, P + L), v_new = cache_v.slice(1, P, P + L);  // [n, L, Hkv, D]
    b.copy(k, k_new);
    b.copy(value_states.slice(0, g.row_begin, g.row_end), v_new);
    Tensor out = attn_output.slice(0, g.row_begin, g.row_end);  // [n, L, Hq, D]
    // Plain scaled-dot-product attention with the omni mask (spec §14), GQA.
    b.attention(q, cache_k.slice(1, 0, P + L), cache_v.slice(1, 0, P + L), g.mask,
                static_cast<float>(1.0 / std::sqrt(static_cast<double>(D))), out);
  }
  Tensor attn = linear(b, attn_output.reshape({R, L, Hq * D}), block.o_proj, Tensor());  // [R, L, H]
  modulation.gated_residual(b, hidden_states, attn, ada, /*gate_msa*/ 2);                // h += gate_msa * attn

  // ---- MLP: down_proj(silu(gate_proj(x)) * up_proj(x))
  Tensor mlp_in = rms_norm(b, hidden_states, block.post_attention_layernorm, cfg.rms_norm_eps);  // [R, L, H]
  if (modulation.any()) modulation.modulate(b, mlp_in, ada, /*shift_mlp*/ 3, /*scale_mlp*/ 4);
  Tensor gate = linear(b, mlp_in, block.gate_proj, Tensor());  // [R, L, I]
  Tensor up = linear(b, mlp_in, block.up_proj, Tensor());      // [R, L, I]
  b.swiglu(gate, up, gate);                                    // silu(gate) * up
  Tensor mlp_out = linear(b, gate, block.down_proj, Tensor());  // [R, L, H]
  modulation.gated_residual(b, hidden_states, mlp_out, ada, /*gate_mlp*/ 5);  // h += gate_mlp * mlp
}

Tensor FlowHead::forward(const Tensor& llm_hidden, const Tensor& c, const std::vector<ModulatedSpan>& spans,
                         const std::vector<CacheRows>& groups, const std::function<bool()>& should_cancel) {
  Backend& b = *backend_;
  const FlowHeadWeights& w = *weights_;
  const FlowHeadConfig& cfg = config();
  const int64_t H = cfg.hidden_size;
  SHOWO2_CHECK(w.diffusion_head_b.linear_weight.defined(), InvalidArgument,
               "FlowHead.forward: weights are not loaded");
  SHOWO2_CHECK(llm_hidden.defined(), InvalidArgument, "FlowHead.forward: llm_hidden: tensor is undefined");
  if (llm_hidden.dtype() != DType::F32)
    fail(ErrorCode::UnsupportedDtype, "FlowHead.forward: llm_hidden: expected F32 but got ",
         dtype_name(llm_hidden.dtype()));
  if (llm_hidden.dim() != 3 || llm_hidden.size(2) != w.llm_hidden_size())
    fail(ErrorCode::ShapeMismatch, "FlowHead.forward: llm_hidden: expected [R, L, ", w.llm_hidden_size(),
         "] but got ", llm_hidden.shape_string());
  const int64_t R = llm_hidden.size(0), L = llm_hidden.size(1);
  SHOWO2_CHECK(L > 0, InvalidArgument, "FlowHead.forward: llm_hidden: expected at least one position");
  SHOWO2_CHECK(spans.empty() || static_cast<int64_t>(spans.size()) == R, InvalidArgument,
               "FlowHead.forward: spans: expected one per row (", R, ") or none but got ", spans.size());
  bool any_span = false;
  for (const ModulatedSpan& s : spans) {
    SHOWO2_CHECK(s.begin >= 0 && s.end >= s.begin && s.end <= L, InvalidArgument, "FlowHead.forward: span [",
                 s.begin, ", ", s.end, ") lies outside the ", L, " new positions");
    any_span = any_span || s.end > s.begin;
  }
  if (any_span) {
    SHOWO2_CHECK(c.defined() && c.dtype() == DType::F32 && c.dim() == 2 && c.size(1) == H &&
                     (c.size(0) == 1 || c.size(0) == R),
                 ShapeMismatch, "FlowHead.forward: c: expected [1 or ", R, ", ", H, "] F32 but got ",
                 c.defined() ? c.shape_string() : std::string("undefined"));
  }
  check_cache_rows(groups, R, L, cfg.num_hidden_layers, cfg.num_key_value_heads, cfg.head_dim, "FlowHead.forward");

  std::vector<RowGroup> row_groups;
  int64_t longest = 0;
  for (const CacheRows& g : groups) {
    const int64_t past = g.cache->length();
    OmniMask mask = OmniMask::omni(g.blocks.empty() ? std::vector<std::vector<BidirectionalBlock>>{{}} : g.blocks, past);
    mask.validate(g.row_end - g.row_begin);
    row_groups.push_back(RowGroup{g.row_begin, g.row_end, g.cache, past, std::move(mask)});
    longest = std::max(longest, past + L);
  }
  ensure_rope_table(longest);
  for (const RowGroup& g : row_groups) g.cache->reserve(g.past + L, b);

  Modulation modulation;
  if (any_span) {
    modulation.silu_c = new_f32(b, c.shape());  // [Rc, H]
    b.silu(c, modulation.silu_c);
    Tensor row_group = Tensor::empty({R * L}, DType::I32);  // host: built from the spans, then moved to the backend
    int32_t* g = row_group.mutable_data<int32_t>();
    for (int64_t r = 0; r < R; ++r) {
      const ModulatedSpan& s = spans[static_cast<size_t>(r)];
      const int32_t c_row = c.size(0) == 1 ? 0 : static_cast<int32_t>(r);
      for (int64_t l = 0; l < L; ++l) g[r * L + l] = l >= s.begin && l < s.end ? c_row : -1;
    }
    modulation.row_group = b.to_device(row_group);
  }

  // diff_proj: Linear -> GELU(erf) -> Linear (diff_proj.1 is nn.GELU()), or the LLM state itself (spec §14).
  Tensor hidden_states;  // [R, L, H], the residual stream the blocks update in place (never the caller's tensor)
  if (w.has_diff_proj()) {
    Tensor x = linear(b, llm_hidden, w.diff_proj_0_weight, w.diff_proj_0_bias);  // [R, L, H]
    b.gelu(x, GeluApproximation::None, x);
    hidden_states = linear(b, x, w.diff_proj_2_weight, w.diff_proj_2_bias);  // [R, L, H]
  } else {
    hidden_states = new_f32(b, llm_hidden.shape());
    b.copy(llm_hidden, hidden_states);
  }

  // Nothing below changes a cache's length (see Qwen2Model::forward_rows), so an error leaves the caches as they were.
  for (size_t k = 0; k < w.diffusion_head_a.size(); ++k) {
    if (should_cancel && should_cancel())
      fail(ErrorCode::Cancelled, "FlowHead.forward: cancelled before block ", k, " of ", w.diffusion_head_a.size());
    modulated_block(w.diffusion_head_a[k], static_cast<int64_t>(k), hidden_states, modulation, row_groups);
  }

  // FinalLayer: shift, scale = adaLN_modulation(c).chunk(2); linear(modulate(norm_final(h), shift, scale)).
  const FinalLayer& f = w.diffusion_head_b;
  Tensor normed = rms_norm(b, hidden_states, f.norm_final, cfg.final_norm_eps);  // [R, L, H]
  if (modulation.any()) {
    Tensor ada = linear(b, modulation.silu_c, f.adaLN_modulation_1_weight, f.adaLN_modulation_1_bias);  // [Rc, 2H]
    modulation.modulate(b, normed, ada, /*shift*/ 0, /*scale*/ 1);
  }
  Tensor out = linear(b, normed, f.linear_weight, f.linear_bias);  // [R, L, p*p*C]
  for (const RowGroup& g : row_groups) g.cache->commit(g.past + L);
  return out;
}

}  // namespace showo2
