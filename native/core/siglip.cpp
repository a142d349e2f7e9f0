// SigLIP encoder stack (semantic layers, spec §3.4); see siglip.h for the contract.
//
// Reading order: config, weight binding, then the forward pieces small to large (attention, MLP, encoder layer,
// encoder), as in transformers' modeling_siglip.py.
#include "siglip.h"

#include <cmath>

#include "model_ops.h"
#include "error.h"

namespace showo2 {

using namespace siglip;

// ---- config ------------------------------------------------------------------------------------------------------

SiglipConfig SiglipConfig::from_config(const ConfigReader& r, SiglipConfig base) {
  SiglipConfig c = base;
  r.read("hidden_size", &c.hidden_size);
  r.read("intermediate_size", &c.intermediate_size);
  r.read("num_hidden_layers", &c.num_hidden_layers);
  r.read("num_attention_heads", &c.num_attention_heads);
  r.read("layer_norm_eps", &c.layer_norm_eps);
  r.read("hidden_act", &c.hidden_act);
  c.validate(r.path().empty() ? r.source() : r.source() + ": " + r.path());
  return c;
}

SiglipConfig SiglipConfig::from_config(const ConfigReader& r) { return from_config(r, SiglipConfig{}); }

void SiglipConfig::validate(const std::string& where) const {
  auto bad = [&where](const char* field, const std::string& why) {
    fail(ErrorCode::InvalidArgument, where, ": ", field, ": ", why);
  };
  if (!is_config_size(hidden_size)) bad("hidden_size", config_size_error(hidden_size));
  if (!is_config_size(intermediate_size)) bad("intermediate_size", config_size_error(intermediate_size));
  if (!is_config_size(num_hidden_layers)) bad("num_hidden_layers", config_size_error(num_hidden_layers));
  if (!is_config_size(num_attention_heads)) bad("num_attention_heads", config_size_error(num_attention_heads));
  if (hidden_size % num_attention_heads != 0)
    bad("num_attention_heads", "expected a divisor of hidden_size " + std::to_string(hidden_size) + " but got " +
                                   std::to_string(num_attention_heads));
  if (!(layer_norm_eps > 0) || !std::isfinite(layer_norm_eps))
    bad("layer_norm_eps", "expected a positive number but got " + std::to_string(layer_norm_eps));
  if (hidden_act != "gelu_pytorch_tanh" && hidden_act != "gelu")
    bad("hidden_act", "expected \"gelu_pytorch_tanh\" or \"gelu\" but got \"" + hidden_act + "\"");
}

GeluApproximation SiglipConfig::gelu_approximation() const {
  // transformers' ACT2FN: "gelu_pytorch_tanh" is the tanh form, "gelu" the exact erf form.
  return hidden_act == "gelu" ? GeluApproximation::None : GeluApproximation::Tanh;
}

// ---- weights -----------------------------------------------------------------------------------------------------

namespace {

void bind_layer_norm(WeightBinder& b, LayerNorm& m, const std::string& key, int64_t dim) {
  b.bind(&m.weight, key + ".weight", {dim});
  b.bind(&m.bias, key + ".bias", {dim});
}

void bind_linear(WeightBinder& b, Linear& m, const std::string& key, int64_t out, int64_t in) {
  b.bind(&m.weight, key + ".weight", {out, in});
  b.bind(&m.bias, key + ".bias", {out});
}

}  // namespace

SiglipEncoder::SiglipEncoder(const SiglipConfig& config, Backend& backend) : config_(config), backend_(&backend) {
  config_.validate("SiglipConfig");
  layers_.resize(static_cast<size_t>(config_.num_hidden_layers));
}

void SiglipEncoder::bind_weights(WeightBinder& binder, const std::string& prefix) {
  const int64_t D = config_.hidden_size, I = config_.intermediate_size;
  for (size_t j = 0; j < layers_.size(); ++j) {
    SiglipEncoderLayer& l = layers_[j];
    const std::string k = prefix + "layers." + std::to_string(j);
    bind_layer_norm(binder, l.layer_norm1, k + ".layer_norm1", D);
    bind_linear(binder, l.self_attn.q_proj, k + ".self_attn.q_proj", D, D);
    bind_linear(binder, l.self_attn.k_proj, k + ".self_attn.k_proj", D, D);
    bind_linear(binder, l.self_attn.v_proj, k + ".self_attn.v_proj", D, D);
    bind_linear(binder, l.self_attn.out_proj, k + ".self_attn.out_proj", D, D);
    bind_layer_norm(binder, l.layer_norm2, k + ".layer_norm2", D);
    bind_linear(binder, l.mlp.fc1, k + ".mlp.fc1", I, D);
    bind_linear(binder, l.mlp.fc2, k + ".mlp.fc2", D, I);
  }
}

// ---- forward -----------------------------------------------------------------------------------------------------

namespace {


Tensor linear(Backend& b, const Tensor& x, const Linear& m) {
  Shape shape = x.shape();
  shape.back() = m.weight.size(0);
  Tensor out = new_f32(b, shape);  // [..., out]
  b.linear(x, m.weight, m.bias, out);
  return out;
}

// SiglipAttention.forward: multi-head attention over all T tokens (no mask), scale head_dim^-0.5.
Tensor attention(Backend& b, const SiglipAttention& m, const Tensor& hidden_states, const SiglipConfig& c) {
  const int64_t N = hidden_states.size(0), T = hidden_states.size(1);
  const int64_t H = c.num_attention_heads, head_dim = c.head_dim();
  Tensor query_states = linear(b, hidden_states, m.q_proj).reshape({N, T, H, head_dim});  // [N, T, H, hd]
  Tensor key_states = linear(b, hidden_states, m.k_proj).reshape({N, T, H, head_dim});    // [N, T, H, hd]
  Tensor value_states = linear(b, hidden_states, m.v_proj).reshape({N, T, H, head_dim});  // [N, T, H, hd]
  Tensor attn_output = new_f32(b, {N, T, H, head_dim});                                       // [N, T, H, hd]
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(head_dim)));
  b.attention(query_states, key_states, value_states, OmniMask::full(), scale, attn_output);
  return linear(b, attn_output.reshape({N, T, H * head_dim}), m.out_proj);  // [N, T, hidden]
}

// SiglipMLP.forward: fc2(act(fc1(x))).
Tensor mlp(Backend& b, const SiglipMLP& m, const Tensor& hidden_states, GeluApproximation act) {
  Tensor h = linear(b, hidden_states, m.fc1);  // [N, T, intermediate]
  b.gelu(h, act, h);
  return linear(b, h, m.fc2);  // [N, T, hidden]
}

// SiglipEncoderLayer.forward (pre-LN), updating hidden_states in place:
//   h = h + self_attn(layer_norm1(h));  h = h + mlp(layer_norm2(h))
void encoder_layer(Backend& b, const SiglipEncoderLayer& l, Tensor& hidden_states, const SiglipConfig& c) {
  const float eps = static_cast<float>(c.layer_norm_eps);
  Tensor normed = new_f32(b, hidden_states.shape());  // [N, T, hidden]
  b.layer_norm(hidden_states, l.layer_norm1.weight, l.layer_norm1.bias, eps, normed);
  Tensor attn_output = attention(b, l.self_attn, normed, c);  // [N, T, hidden]
  b.add(hidden_states, attn_output, hidden_states);
  b.layer_norm(hidden_states, l.layer_norm2.weight, l.layer_norm2.bias, eps, normed);
  Tensor mlp_output = mlp(b, l.mlp, normed, c.gelu_approximation());  // [N, T, hidden]
  b.add(hidden_states, mlp_output, hidden_states);
}

}  // namespace

Tensor SiglipEncoder::forward(const Tensor& x, const std::function<bool()>& should_cancel) {
  const char* what = "SiglipEncoder.forward: x";
  if (x.dim() != 3 || x.size(2) != config_.hidden_size)
    fail(ErrorCode::ShapeMismatch, what, ": expected [N, T, ", config_.hidden_size, "] but got ", x.shape_string());
  check_dtype(x, DType::F32, what);
  SHOWO2_CHECK(layers_.empty() || layers_[0].layer_norm1.weight.defined(), InvalidArgument,
               "SiglipEncoder.forward: weights not loaded");
  Backend& b = *backend_;
  Tensor hidden_states = new_f32(b, x.shape());  // [N, T, hidden], the residual stream (x stays untouched)
  b.copy(x, hidden_states);
  for (const SiglipEncoderLayer& layer : layers_) {
    if (should_cancel && should_cancel()) fail(ErrorCode::Cancelled, "SiglipEncoder.forward: cancelled");
    encoder_layer(b, layer, hidden_states, config_);
  }
  return hidden_states;  // last_hidden_state: no post_layernorm in Show-o2's stack
}

}  // namespace showo2
