#include "flow_head.h"

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
    if (value <= 0) bad(field, "expected a positive integer but got " + std::to_string(value));
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
      has_diff_proj_(llm_hidden_size != config.hidden_size),
      diffusion_head_a(static_cast<size_t>(config.num_hidden_layers)) {}

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

}  // namespace showo2
