// The semantic layers S(.) of Show-o2's understanding path (spec §3.4): the SigLIP-so400m vision encoder stack with
// its last layer removed, i.e. 26 pre-LN transformer layers of width 1152 (16 heads of 72, MLP 4304,
// gelu_pytorch_tanh, LayerNorm eps 1e-6), bidirectional attention with no mask, and no final LayerNorm
// (the output is last_hidden_state). SigLIP's conv patch embedding, post_layernorm and pooling head are not used;
// the input is image_embedder_und(latent) + PE (patch_embed.h, position_embedding.h).
//
// The weights always come from the Show-o2 checkpoint (re-trained, spec §3.4), under und_trans.layers.{j}.
// Written only against the Backend interface, so the CUDA backend runs this code unchanged.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "backend.h"
#include "config_json.h"
#include "tensor.h"
#include "weight_binder.h"

namespace showo2 {

// The `und_trans_config` object of config.json, in SigLIP vision config spellings. Defaults: Show-o2's 26 layers.
struct SiglipConfig {
  int64_t hidden_size = 1152;
  int64_t intermediate_size = 4304;
  int64_t num_hidden_layers = 26;  // SigLIP-so400m has 27; Show-o2 deletes the last (spec §3.4)
  int64_t num_attention_heads = 16;
  double layer_norm_eps = 1e-6;
  // "gelu_pytorch_tanh" (tanh approximation, SigLIP's) or "gelu" (exact erf); anything else is ERR_INVALID_ARGUMENT.
  std::string hidden_act = "gelu_pytorch_tanh";

  // `base` overridden by the fields present in `reader`; then validate() naming the file and path.
  // (Two overloads rather than `SiglipConfig base = {}`: GCC rejects a default argument that needs this class's
  // default member initializers before the class is complete.)
  static SiglipConfig from_config(const ConfigReader& reader, SiglipConfig base);
  static SiglipConfig from_config(const ConfigReader& reader);  // base = the Show-o2 defaults above
  // ERR_INVALID_ARGUMENT naming the first inconsistent field; `where` prefixes the message.
  void validate(const std::string& where) const;

  int64_t head_dim() const { return hidden_size / num_attention_heads; }
  GeluApproximation gelu_approximation() const;
};

namespace siglip {

struct LayerNorm {
  Tensor weight;  // [hidden]
  Tensor bias;    // [hidden]
};
struct Linear {
  Tensor weight;  // [out, in]
  Tensor bias;    // [out]
};

struct SiglipAttention {
  Linear q_proj;    // und_trans.layers.{j}.self_attn.q_proj.{weight,bias}     [hidden, hidden], [hidden]
  Linear k_proj;    // und_trans.layers.{j}.self_attn.k_proj.{weight,bias}     [hidden, hidden], [hidden]
  Linear v_proj;    // und_trans.layers.{j}.self_attn.v_proj.{weight,bias}     [hidden, hidden], [hidden]
  Linear out_proj;  // und_trans.layers.{j}.self_attn.out_proj.{weight,bias}   [hidden, hidden], [hidden]
};

struct SiglipMLP {
  Linear fc1;  // und_trans.layers.{j}.mlp.fc1.{weight,bias}   [intermediate, hidden], [intermediate]
  Linear fc2;  // und_trans.layers.{j}.mlp.fc2.{weight,bias}   [hidden, intermediate], [hidden]
};

struct SiglipEncoderLayer {
  LayerNorm layer_norm1;     // und_trans.layers.{j}.layer_norm1.{weight,bias}   [hidden], [hidden]
  SiglipAttention self_attn;
  LayerNorm layer_norm2;     // und_trans.layers.{j}.layer_norm2.{weight,bias}   [hidden], [hidden]
  SiglipMLP mlp;
};

}  // namespace siglip

class SiglipEncoder {
 public:
  // Validates the config (ERR_INVALID_ARGUMENT). The backend must outlive the encoder.
  SiglipEncoder(const SiglipConfig& config, Backend& backend);

  // prefix "und_trans." -> und_trans.layers.{j}.{layer_norm1, self_attn.{q,k,v,out}_proj, layer_norm2, mlp.fc1/fc2}.
  void bind_weights(WeightBinder& binder, const std::string& prefix);

  // x [N, T, hidden] F32 (last dim contiguous) -> [N, T, hidden] F32 (last_hidden_state; x is not modified).
  // should_cancel is polled before each layer -> ERR_CANCELLED. ERR_SHAPE_MISMATCH / ERR_UNSUPPORTED_DTYPE for a
  // wrong input.
  Tensor forward(const Tensor& x, const std::function<bool()>& should_cancel = {});

  const SiglipConfig& config() const { return config_; }

 private:
  SiglipConfig config_;
  Backend* backend_;
  std::vector<siglip::SiglipEncoderLayer> layers_;  // und_trans.layers.{0..num_hidden_layers-1}
};

}  // namespace showo2
