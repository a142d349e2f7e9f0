// The Show-o2 model (spec §2–§6): its configuration (config.json with the sub-model presets), the weights of every
// component checked and loaded in one pass, and the shared pieces both pipelines use: the visual path (VAE latent ->
// fused visual tokens) and the time-step token.
//
//   config.json ─┬─ llm_config            (Qwen2Config, or the preset named by llm_model_path)     -> showo.*
//                ├─ und_trans_config      (SiglipConfig, defaults: so400m minus its last layer)    -> und_trans.*
//                ├─ diffusion_head_config (FlowHeadConfig, defaults: the released 10-layer head)  -> diffusion_head_*, diff_proj
//                └─ vae_config            (WanVaeConfig, defaults: Wan2.1)                         -> the separate VAE file
//
// Understanding (text generation with a KV cache) lives in understanding_session.h; generation (flow head + ODE) in
// the [gen] files.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backend.h"
#include "fusion.h"
#include "flow_head.h"
#include "patch_embed.h"
#include "position_embedding.h"
#include "qwen2.h"
#include "siglip.h"
#include "tensor.h"
#include "time_embed.h"
#include "wan_vae.h"
#include "weights/weight_file.h"

namespace showo2 {

// config.json of a Show-o2 checkpoint (spec §9 lists the published fields). Sub-model sizes come from presets for
// the published checkpoints and can be given explicitly for any other size (llm_config, und_trans_config,
// diffusion_head_config, vae_config).
struct Showo2Config {
  std::string class_name = "Showo2Qwen2_5";                // "_class_name"
  std::string llm_model_path = "Qwen/Qwen2.5-1.5B-Instruct"; // names the LLM preset when llm_config is absent
  int64_t hidden_size = 1536;                              // LLM width (must equal llm_config.hidden_size)
  int64_t llm_vocab_size = 151669;                         // embedding rows after Show-o2's resize (spec §2.1)
  int64_t image_latent_dim = 16;                           // VAE latent channels
  int64_t patch_size = 2;                                  // latent pixels per token side (spec §3.3)
  int64_t image_latent_height = 27;                        // the position table's token grid (not the VAE latent size)
  int64_t image_latent_width = 27;
  int64_t clip_latent_dim = 1152;                          // semantic-layer width
  int64_t num_diffusion_layers = 10;                       // flow-head blocks
  bool add_time_embeds = true;

  Qwen2Config llm;
  SiglipConfig und_trans;
  FlowHeadConfig diffusion_head;
  WanVaeConfig vae;

  // Parses and cross-checks a config.json. ERR_CORRUPT_FILE for invalid JSON; ERR_INVALID_ARGUMENT naming the field
  // (with its path, e.g. "llm_config.num_key_value_heads") for a wrong type, value or inconsistency.
  static Showo2Config from_json(const std::string& text, const std::string& source);

  // Pixel side of the square image the position table was trained at: token grid x patch x VAE stride (432).
  int64_t image_resolution() const { return image_latent_height * patch_size * vae.spatial_stride(); }
  // Latent pixels per visual token side x VAE stride: an image must be a multiple of this (16 px).
  int64_t pixels_per_token() const { return patch_size * vae.spatial_stride(); }
};

// Parameters per component, counted from the checkpoints' tensor shapes (what `model.info` reports). A tied lm_head
// stored anyway (some exports do) is counted once, with the embedding.
struct Showo2ParameterCounts {
  int64_t llm = 0;          // showo.*: the Qwen2.5 embedding, layers, final norm, and an untied lm_head
  int64_t semantic = 0;     // und_trans.*, position_embedding, image_embedder_und (the understanding path)
  int64_t flow_head = 0;    // diffusion_head_a.*, diffusion_head_b.*
  int64_t projections = 0;  // image_embedder_gen, fusion_proj, time_embed, time_embed_proj, diff_proj
  int64_t other = 0;        // any other tensor of the Show-o2 checkpoint (none in the published ones)
  int64_t vae = 0;          // every tensor of the VAE file
  int64_t total() const { return llm + semantic + flow_head + projections + other + vae; }
};

Showo2ParameterCounts count_parameters(const Showo2Config& config, const std::vector<weights::TensorRecord>& weights,
                                       const std::vector<weights::TensorRecord>& vae_weights);

class Showo2Model {
 public:
  // Checks every key of `weights` (the Show-o2 checkpoint) and of `vae_weights` (the Wan VAE) against `config` and
  // reports all missing, unexpected and misshapen tensors in one typed error per file (WeightBinder), then loads them
  // (zero-copy views of the mapped files where possible). The backend must outlive the model.
  Showo2Model(const Showo2Config& config, const weights::WeightFile& weights, const weights::WeightFile& vae_weights,
              Backend& backend);

  const Showo2Config& config() const { return config_; }
  Backend& backend() { return *backend_; }
  Qwen2Model& llm() { return llm_; }
  // diff_proj.*, diffusion_head_a.*, diffusion_head_b.*; FlowHead (flow_head.h) runs them.
  const FlowHeadWeights& flow_head_weights() const { return flow_head_; }
  WanVae& vae() { return *vae_; }

  using CancelFn = std::function<bool()>;

  // Fused visual tokens of normalised VAE latents (spec §3.3–§3.5):
  //   latent [N, z, T, h, w] -> und = SigLIP26(image_embedder_und(latent) + PE(h/p, w/p))  per frame
  //                              gen = image_embedder_gen(latent)
  //                              fusion_proj(concat[und, gen])                  -> [N, T * (h/p) * (w/p), hidden]
  // Tokens are frame-major, row-major inside a frame. The semantic layers attend within one frame (the reference runs
  // them on [N*T] images).
  Tensor visual_tokens(const Tensor& latent, const CancelFn& should_cancel = {});

  // The time-step token fed to the LLM at a visual block's first position: time_embed_proj(time_embed(t)), or the
  // time embedding itself when the LLM and flow head have the same width (spec §3.6, §14). [B] -> [B, hidden].
  Tensor time_tokens(const std::vector<float>& t);
  // The flow head's conditioning vector c = time_embed(t), [B] -> [B, head hidden].
  Tensor time_condition(const std::vector<float>& t);

 private:
  Showo2Config config_;
  Backend* backend_;
  Qwen2Model llm_;                         // showo.*
  PatchEmbed image_embedder_und_;          // image_embedder_und.proj.{weight,bias}  [clip, z, p, p], [clip]
  PatchEmbed image_embedder_gen_;          // image_embedder_gen.proj.{weight,bias}  [hidden, z, p, p], [hidden]
  PositionEmbedding position_embedding_;   // position_embedding.weight             [grid_h * grid_w, clip]
  SiglipEncoder und_trans_;                // und_trans.layers.{j}.*
  FusionProj fusion_proj_;                 // fusion_proj.{0,1,3}.*
  TimestepEmbedder time_embed_;            // time_embed.mlp.{0,2}.*
  Tensor time_embed_proj_weight_;          // time_embed_proj.weight  [hidden, head hidden]; only when they differ
  Tensor time_embed_proj_bias_;            // time_embed_proj.bias    [hidden]
  FlowHeadWeights flow_head_;              // diff_proj.*, diffusion_head_a.*, diffusion_head_b.*
  std::unique_ptr<WanVae> vae_;            // the separate VAE file (published Wan2.1 layout)
};

}  // namespace showo2
