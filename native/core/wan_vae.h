// The Wan2.1 3D causal VAE (spec §3.1): video/image pixels <-> 16-channel latents, 8x spatial and 4x temporal stride.
//
//   encode: video [N, 3, 1+4k, H, W] F32 in [-1, 1] -> z [N, 16, 1+k, H/8, W/8], z = (mu - latents_mean) / latents_std
//   decode: z [N, 16, T, h, w] -> pixels [N, 3, 1+4(T-1), 8h, 8w], clamped to [-1, 1]
//
// Written only against the Backend interface (backend.h), so the CUDA backend runs this code unchanged.
// Chunked causal processing exactly as the reference (spec §3.1): encode feeds frame 0 alone and then chunks of 4
// frames; decode feeds one latent frame at a time. Each k=3 causal conv keeps the last 2 frames of its input stream
// (CACHE_T = 2) between chunks; the temporal resamplers keep their own state ('Rep' on the decoder's first chunk).
// Weights are loaded from a WeightFile holding the published key layout (`Wan2.1_VAE.pth`, or a safetensors
// conversion of it); F32, BF16 and F16 weights are used as stored (the kernels widen them).
//
// The module structs below mirror the PyTorch modules; each member is named after its checkpoint key (nn.Sequential
// indices kept, '.' -> '_'), with the full key and the stored shape beside it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "backend.h"
#include "tensor.h"
#include "weights/weight_file.h"

namespace showo2 {

// config.json spellings (the reference's `_video_vae` cfg). Defaults are the released Wan2.1 VAE.
struct WanVaeConfig {
  int64_t dim = 96;                                   // base channel count
  int64_t z_dim = 16;                                 // latent channels (the encoder emits 2*z_dim: mean + logvar)
  std::vector<int64_t> dim_mult = {1, 2, 4, 4};       // channel multiplier per stage
  int64_t num_res_blocks = 2;                         // residual blocks per encoder stage (decoder: +1)
  std::vector<double> attn_scales = {};               // spatial scales (1, 1/2, ...) that get an AttentionBlock
  std::vector<bool> temperal_downsample = {false, true, true};  // (sic, the reference's spelling) per down stage
  std::vector<float> latents_mean = {-0.7571f, -0.7089f, -0.9113f, 0.1075f, -0.1745f, 0.9653f, -0.1517f, 1.5508f,
                                     0.4134f,  -0.0715f, 0.5517f,  -0.3632f, -0.1922f, -0.9497f, 0.2503f, -0.2921f};
  std::vector<float> latents_std = {2.8184f, 1.4541f, 2.3275f, 2.6558f, 1.2196f, 1.7708f, 2.6052f, 2.0743f,
                                    3.2687f, 2.1526f, 2.8652f, 1.5579f, 1.6382f, 1.1253f, 2.8251f, 1.9160f};

  // Parses a config.json (fields absent from the JSON keep their defaults). ERR_INVALID_ARGUMENT naming the field for
  // a wrong type or value; ERR_CORRUPT_FILE for invalid JSON.
  static WanVaeConfig from_json(const std::string& text, const std::string& source);
  // Throws ERR_INVALID_ARGUMENT naming the first inconsistent field.
  void validate() const;
  // Spatial and temporal strides of the latent grid: 2^(len(dim_mult)-1) and 2^(number of temporal stages).
  int64_t spatial_stride() const;
  int64_t temporal_stride() const;
};

namespace wan_vae {

// CausalConv3d: a Conv3d padded 2*pad_t frames in front only (zeros or cached frames), space padded symmetrically.
struct CausalConv3d {
  Tensor weight;  // [O, C, kt, kh, kw]
  Tensor bias;    // [O]
};
// nn.Conv2d applied per frame; the weight is kept as [O, C, 1, kh, kw] (a 1-frame Conv3d) or [O, C] (1x1, linear).
struct Conv2d {
  Tensor weight;
  Tensor bias;  // [O]
};
// RMS_norm over the channel axis: gamma stored [C, 1, 1, 1] (or [C, 1, 1] in attention), kept as [C].
struct RmsNorm {
  Tensor gamma;
};

struct ResidualBlock {
  int64_t in_dim = 0, out_dim = 0;
  RmsNorm residual_0;        // <prefix>.residual.0.gamma                 [in, 1, 1, 1]
                             // residual.1 is nn.SiLU()
  CausalConv3d residual_2;   // <prefix>.residual.2.{weight,bias}         [out, in, 3, 3, 3], [out]
  RmsNorm residual_3;        // <prefix>.residual.3.gamma                 [out, 1, 1, 1]
                             // residual.4 is nn.SiLU(), residual.5 nn.Dropout (identity at inference)
  CausalConv3d residual_6;   // <prefix>.residual.6.{weight,bias}         [out, out, 3, 3, 3], [out]
  CausalConv3d shortcut;     // <prefix>.shortcut.{weight,bias}           [out, in, 1, 1, 1]; only when in != out
};

// Single-head attention over the H*W tokens of each frame (scale 1/sqrt(C)), plus the residual.
struct AttentionBlock {
  int64_t dim = 0;
  RmsNorm norm;    // <prefix>.norm.gamma                [C, 1, 1]
  Conv2d to_qkv;   // <prefix>.to_qkv.{weight,bias}      [3C, C, 1, 1], [3C]: q, k, v = channels [0,C), [C,2C), [2C,3C)
  Conv2d proj;     // <prefix>.proj.{weight,bias}        [C, C, 1, 1], [C]
};

struct Resample {
  enum class Mode { Upsample2d, Upsample3d, Downsample2d, Downsample3d };
  Mode mode = Mode::Downsample2d;
  int64_t dim = 0;
  // resample.0 is nn.Upsample(nearest-exact, x2) or nn.ZeroPad2d((0, 1, 0, 1))
  Conv2d resample_1;      // <prefix>.resample.1.{weight,bias}   up: [C/2, C, 3, 3]; down: [C, C, 3, 3] (stride 2)
  CausalConv3d time_conv; // <prefix>.time_conv.{weight,bias}    up3d: [2C, C, 3, 1, 1]; down3d: [C, C, 3, 1, 1]
};

// One entry of encoder.downsamples / decoder.upsamples (an nn.Sequential of mixed modules).
struct StageLayer {
  enum class Kind { Residual, Attention, Resample };
  Kind kind = Kind::Residual;
  ResidualBlock residual;
  AttentionBlock attention;
  Resample resample;
};

struct Encoder3d {
  CausalConv3d conv1;                  // encoder.conv1                [dim, 3, 3, 3, 3]
  std::vector<StageLayer> downsamples; // encoder.downsamples.<i>
  ResidualBlock middle_0;              // encoder.middle.0
  AttentionBlock middle_1;             // encoder.middle.1
  ResidualBlock middle_2;              // encoder.middle.2
  RmsNorm head_0;                      // encoder.head.0.gamma         [4*dim, 1, 1, 1]; head.1 is nn.SiLU()
  CausalConv3d head_2;                 // encoder.head.2               [2*z_dim, 4*dim, 3, 3, 3]
};

struct Decoder3d {
  CausalConv3d conv1;                  // decoder.conv1                [4*dim, z_dim, 3, 3, 3]
  ResidualBlock middle_0;              // decoder.middle.0
  AttentionBlock middle_1;             // decoder.middle.1
  ResidualBlock middle_2;              // decoder.middle.2
  std::vector<StageLayer> upsamples;   // decoder.upsamples.<i>
  RmsNorm head_0;                      // decoder.head.0.gamma         [dim, 1, 1, 1]; head.1 is nn.SiLU()
  CausalConv3d head_2;                 // decoder.head.2               [3, dim, 3, 3, 3]
};

}  // namespace wan_vae

class WanVae {
 public:
  // Checks every expected key of `config` against `file` (presence, shape, float dtype) before loading anything, and
  // reports all missing, unexpected and wrongly shaped keys in one error: ERR_INVALID_ARGUMENT when keys are missing
  // or unexpected, else ERR_SHAPE_MISMATCH, else ERR_UNSUPPORTED_DTYPE. The backend must outlive the WanVae.
  WanVae(const weights::WeightFile& file, const WanVaeConfig& config, Backend& backend);

  const WanVaeConfig& config() const { return config_; }

  struct Posterior {
    Tensor mean;    // [N, z_dim, T', H/8, W/8], normalised: (mu - latents_mean) / latents_std
    Tensor logvar;  // [N, z_dim, T', H/8, W/8], raw (not normalised, as the reference's posterior)
  };
  // video [N, 3, 1+4k, H, W] F32 (any strides), H and W multiples of 8. Typed errors: ERR_SHAPE_MISMATCH (rank or
  // channel count), ERR_UNSUPPORTED_DTYPE, ERR_INVALID_ARGUMENT (frame count or H/W not a multiple of 8).
  Posterior encode_posterior(const Tensor& video);
  // The normalised posterior mean (the deterministic latent the port uses; spec §3.1 "Recommendation").
  Tensor encode(const Tensor& video);

  // Called once per decoded chunk with its frames [N, 3, Tc, 8h, 8w] (clamped) and the index of its first frame.
  using DecodedChunkCallback = std::function<void(const Tensor& frames, int64_t first_frame)>;
  // latent [N, z_dim, T, h, w] F32 (normalised z), T >= 1 -> pixels [N, 3, 1+4(T-1), 8h, 8w] in [-1, 1], decoding one
  // latent frame at a time; `on_chunk` (optional) streams each chunk as soon as it is ready.
  Tensor decode(const Tensor& latent, const DecodedChunkCallback& on_chunk = {});

  const wan_vae::Encoder3d& encoder() const { return encoder_; }
  const wan_vae::Decoder3d& decoder() const { return decoder_; }

 private:
  WanVaeConfig config_;
  Backend* backend_;
  wan_vae::Encoder3d encoder_;   // encoder.*
  wan_vae::CausalConv3d conv1_;  // conv1.{weight,bias}  [2*z_dim, 2*z_dim, 1, 1, 1]: encoder output -> mu, logvar
  wan_vae::CausalConv3d conv2_;  // conv2.{weight,bias}  [z_dim, z_dim, 1, 1, 1]: before the decoder
  wan_vae::Decoder3d decoder_;   // decoder.*
};

}  // namespace showo2
