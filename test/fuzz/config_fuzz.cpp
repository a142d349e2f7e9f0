// Fuzzes config.json reading: Showo2Config::from_json (native/core/showo2.cpp: the top level, the LLM preset or
// llm_config, und_trans_config, diffusion_head_config, vae_config, with their cross-checks) and
// WanVaeConfig::from_json (the separate VAE config.json that WanVae.load reads).
//
// Contract: a config, or ERR_CORRUPT_FILE (invalid JSON) / ERR_INVALID_ARGUMENT (a field). Invariants of a config
// that was accepted: every sub-config validates again, the cross-checks hold, and the sizes the config itself derives
// (head sizes, VAE strides, image resolution) are positive and computed without overflow (UBSan watches the
// arithmetic).
#include <optional>
#include <string>

#include "fuzz_util.h"
#include "showo2.h"
#include "wan_vae.h"

using showo2::ErrorCode;

namespace {

void check_vae(const showo2::WanVaeConfig& vae) {
  vae.validate("fuzz");
  FUZZ_CHECK(static_cast<int64_t>(vae.latents_mean.size()) == vae.z_dim);
  FUZZ_CHECK(vae.spatial_stride() > 0 && vae.temporal_stride() > 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  // Parse inside the try, check outside it: an invariant that throws must not pass for a clean refusal.
  std::optional<showo2::Showo2Config> config;
  try {
    config = showo2::Showo2Config::from_json(text, "config.json");
  } catch (const showo2::Error& e) {
    showo2::fuzz::expect_code(e, {ErrorCode::CorruptFile, ErrorCode::InvalidArgument});
  }
  if (config) {
    const showo2::Showo2Config& c = *config;
    c.llm.validate("fuzz");
    c.und_trans.validate("fuzz");
    c.diffusion_head.validate("fuzz");
    check_vae(c.vae);
    FUZZ_CHECK(c.llm.hidden_size == c.hidden_size && c.llm.vocab_size == c.llm_vocab_size);
    FUZZ_CHECK(c.und_trans.hidden_size == c.clip_latent_dim);
    FUZZ_CHECK(c.diffusion_head.num_hidden_layers == c.num_diffusion_layers);
    FUZZ_CHECK(c.vae.z_dim == c.image_latent_dim);
    FUZZ_CHECK(c.llm.resolved_head_dim() > 0 && c.diffusion_head.qk_norm_dim() > 0);
    FUZZ_CHECK(c.pixels_per_token() > 0 && c.image_resolution() > 0);
  }

  std::optional<showo2::WanVaeConfig> vae;
  try {
    vae = showo2::WanVaeConfig::from_json(text, "vae/config.json");
  } catch (const showo2::Error& e) {
    showo2::fuzz::expect_code(e, {ErrorCode::CorruptFile, ErrorCode::InvalidArgument});
  }
  if (vae) check_vae(*vae);
  return 0;
}
