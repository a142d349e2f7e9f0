#include "showo2.h"

#include "config_json.h"
#include "error.h"
#include "weight_binder.h"

namespace showo2 {

// ---- config ------------------------------------------------------------------------------------------------------

Showo2Config Showo2Config::from_json(const std::string& text, const std::string& source) {
  const weights::JsonValue root = parse_config_json(text, source);
  const ConfigReader r(root, source);
  Showo2Config c;
  r.read("_class_name", &c.class_name);
  r.read("llm_model_path", &c.llm_model_path);
  r.read("hidden_size", &c.hidden_size);
  r.read("llm_vocab_size", &c.llm_vocab_size);
  r.read("image_latent_dim", &c.image_latent_dim);
  r.read("patch_size", &c.patch_size);
  r.read("image_latent_height", &c.image_latent_height);
  r.read("image_latent_width", &c.image_latent_width);
  r.read("clip_latent_dim", &c.clip_latent_dim);
  r.read("num_diffusion_layers", &c.num_diffusion_layers);
  r.read("add_time_embeds", &c.add_time_embeds);

  auto positive = [&r](const char* field, int64_t v) {
    if (!is_config_size(v)) r.fail_field(field, config_size_error(v));
  };
  positive("hidden_size", c.hidden_size);
  positive("llm_vocab_size", c.llm_vocab_size);
  positive("image_latent_dim", c.image_latent_dim);
  positive("patch_size", c.patch_size);
  positive("image_latent_height", c.image_latent_height);
  positive("image_latent_width", c.image_latent_width);
  positive("clip_latent_dim", c.clip_latent_dim);
  positive("num_diffusion_layers", c.num_diffusion_layers);
  if (!c.add_time_embeds)
    r.fail_field("add_time_embeds", "expected true (every released Show-o2 model feeds a time-step token)");

  // LLM: the preset named by llm_model_path, overridden by llm_config. Without llm_config the preset must exist.
  const weights::JsonValue* llm_object = r.find_object("llm_config");
  Qwen2Config llm_base;
  if (llm_object) {
    try {
      llm_base = Qwen2Config::preset(c.llm_model_path);
    } catch (const Error&) {
      llm_base = Qwen2Config{};  // an explicit llm_config describes a model the presets don't know
    }
    llm_base.vocab_size = c.llm_vocab_size;
    c.llm = Qwen2Config::from_config(r.child(*llm_object, "llm_config"), llm_base);
  } else {
    try {
      c.llm = Qwen2Config::preset(c.llm_model_path);
    } catch (const Error& e) {
      r.fail_field("llm_model_path", std::string(e.what()) + "; give the backbone's sizes in llm_config");
    }
    c.llm.vocab_size = c.llm_vocab_size;
  }
  if (c.llm.hidden_size != c.hidden_size)
    r.fail_field("hidden_size", "expected the LLM width llm_config.hidden_size = " + std::to_string(c.llm.hidden_size) +
                                    " but got " + std::to_string(c.hidden_size));
  if (c.llm.vocab_size != c.llm_vocab_size)
    r.fail_field("llm_vocab_size", "expected llm_config.vocab_size = " + std::to_string(c.llm.vocab_size) +
                                       " (the embedding rows) but got " + std::to_string(c.llm_vocab_size));

  if (const auto* o = r.find_object("und_trans_config")) c.und_trans = SiglipConfig::from_config(r.child(*o, "und_trans_config"));
  if (c.und_trans.hidden_size != c.clip_latent_dim)
    r.fail_field("clip_latent_dim", "expected und_trans_config.hidden_size = " + std::to_string(c.und_trans.hidden_size) +
                                        " but got " + std::to_string(c.clip_latent_dim));

  FlowHeadConfig head_base;
  head_base.num_hidden_layers = c.num_diffusion_layers;
  if (const auto* o = r.find_object("diffusion_head_config")) {
    c.diffusion_head = FlowHeadConfig::from_config(r.child(*o, "diffusion_head_config"), head_base);
    if (c.diffusion_head.num_hidden_layers != c.num_diffusion_layers)
      r.fail_field("num_diffusion_layers", "disagrees with diffusion_head_config.num_hidden_layers (" +
                                               std::to_string(c.diffusion_head.num_hidden_layers) + ")");
  } else {
    c.diffusion_head = head_base;
  }

  if (const auto* o = r.find_object("vae_config")) c.vae = WanVaeConfig::from_config(r.child(*o, "vae_config"));
  if (c.vae.z_dim != c.image_latent_dim)
    r.fail_field("image_latent_dim", "expected vae_config.z_dim = " + std::to_string(c.vae.z_dim) + " but got " +
                                         std::to_string(c.image_latent_dim));
  return c;
}

// ---- model -------------------------------------------------------------------------------------------------------

Showo2Model::Showo2Model(const Showo2Config& config, const weights::WeightFile& weights,
                         const weights::WeightFile& vae_weights, Backend& backend)
    : config_(config),
      backend_(&backend),
      llm_(config.llm, backend),
      image_embedder_und_(config.image_latent_dim, config.clip_latent_dim, config.patch_size, backend),
      image_embedder_gen_(config.image_latent_dim, config.hidden_size, config.patch_size, backend),
      position_embedding_(config.image_latent_height, config.image_latent_width, config.clip_latent_dim),
      und_trans_(config.und_trans, backend),
      fusion_proj_(config.clip_latent_dim, config.hidden_size, 1e-6, backend),
      time_embed_(config.diffusion_head.hidden_size, config.diffusion_head.frequency_embedding_size, backend),
      flow_head_(config.diffusion_head, config.hidden_size,
                 config.patch_size * config.patch_size * config.image_latent_dim) {
  WeightBinder b;
  llm_.bind_weights(b, "showo.");
  image_embedder_und_.bind_weights(b, "image_embedder_und.");
  image_embedder_gen_.bind_weights(b, "image_embedder_gen.");
  position_embedding_.bind_weights(b, "position_embedding.weight");
  und_trans_.bind_weights(b, "und_trans.");
  fusion_proj_.bind_weights(b, "fusion_proj.");
  time_embed_.bind_weights(b, "time_embed.");
  const int64_t head = config.diffusion_head.hidden_size;
  if (head != config.hidden_size) {
    b.bind(&time_embed_proj_weight_, "time_embed_proj.weight", {config.hidden_size, head});
    b.bind(&time_embed_proj_bias_, "time_embed_proj.bias", {config.hidden_size});
  }
  flow_head_.bind_weights(b);
  b.load_all(weights, backend, "Showo2",
             "hidden_size, llm_vocab_size, image_latent_*, clip_latent_dim, num_diffusion_layers, llm_config, "
             "und_trans_config, diffusion_head_config");
  llm_.finish_loading();
  vae_ = std::make_unique<WanVae>(vae_weights, config.vae, backend);
}

Tensor Showo2Model::visual_tokens(const Tensor& latent, const CancelFn& should_cancel) {
  if (latent.dim() != 5 || latent.size(1) != config_.image_latent_dim)
    fail(ErrorCode::ShapeMismatch, "Showo2.visual_tokens: expected a latent [N, ", config_.image_latent_dim,
         ", T, h, w] but got ", latent.shape_string());
  const int64_t N = latent.size(0), T = latent.size(2);
  const int64_t p = config_.patch_size;
  if (latent.size(3) % p != 0 || latent.size(4) % p != 0)
    fail(ErrorCode::InvalidArgument, "Showo2.visual_tokens: latent height and width must be multiples of the patch ",
         "size ", p, " but got ", latent.size(3), "x", latent.size(4));
  const int64_t gh = latent.size(3) / p, gw = latent.size(4) / p;
  const int64_t per_frame = gh * gw;

  // Semantic path: patch embed + position table, then the SigLIP stack over each frame's tokens.
  Tensor und = image_embedder_und_.forward(latent);                        // [N, T*gh*gw, clip]
  Tensor pe = position_embedding_.for_grid(gh, gw, *backend_);            // [gh*gw, clip] on the backend
  Tensor und_frames = und.reshape({N * T, per_frame, config_.clip_latent_dim});  // [N*T, gh*gw, clip]
  backend_->add(und_frames, pe, und_frames);                               // PE broadcast over frames
  und_frames = und_trans_.forward(und_frames, should_cancel);              // [N*T, gh*gw, clip]
  und = und_frames.reshape({N, T * per_frame, config_.clip_latent_dim});

  // Projector path and fusion.
  Tensor gen = image_embedder_gen_.forward(latent);                        // [N, T*gh*gw, hidden]
  return fusion_proj_.forward(und, gen);                                   // [N, T*gh*gw, hidden]
}

Tensor Showo2Model::time_condition(const std::vector<float>& t) { return time_embed_.forward(t); }

Tensor Showo2Model::time_tokens(const std::vector<float>& t) {
  Tensor c = time_embed_.forward(t);                                       // [B, head hidden]
  if (!time_embed_proj_weight_.defined()) return c;                        // same width: c is the token (spec §14)
  Tensor out = backend_->empty({static_cast<int64_t>(t.size()), config_.hidden_size}, DType::F32);
  backend_->linear(c, time_embed_proj_weight_, time_embed_proj_bias_, out);  // [B, hidden]
  return out;
}

// ---- parameter counts ----------------------------------------------------------------------------------------------

Showo2ParameterCounts count_parameters(const Showo2Config& config, const std::vector<weights::TensorRecord>& weights,
                                       const std::vector<weights::TensorRecord>& vae_weights) {
  auto numel = [](const weights::TensorRecord& r) {
    int64_t n = 1;
    for (int64_t d : r.shape) n *= d;
    return n;
  };
  auto starts_with = [](const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; };
  Showo2ParameterCounts counts;
  for (const weights::TensorRecord& r : weights) {
    const std::string& k = r.name;
    if (k == "showo.lm_head.weight" && config.llm.tie_word_embeddings) continue;  // the embedding, counted already
    if (starts_with(k, "showo.")) counts.llm += numel(r);
    else if (starts_with(k, "und_trans.") || starts_with(k, "position_embedding.") || starts_with(k, "image_embedder_und."))
      counts.semantic += numel(r);
    else if (starts_with(k, "diffusion_head_a.") || starts_with(k, "diffusion_head_b.")) counts.flow_head += numel(r);
    else if (starts_with(k, "image_embedder_gen.") || starts_with(k, "fusion_proj.") || starts_with(k, "time_embed.") ||
             starts_with(k, "time_embed_proj.") || starts_with(k, "diff_proj."))
      counts.projections += numel(r);
    else counts.other += numel(r);
  }
  for (const weights::TensorRecord& r : vae_weights) counts.vae += numel(r);
  return counts;
}

}  // namespace showo2
