// The Wan2.1 3D causal VAE (spec §3.1): video/image pixels <-> 16-channel latents, 8x spatial and 4x temporal stride.
//
//   encode: video [N, 3, 1+4k, H, W] F32 in [-1, 1] -> z [N, 16, 1+k, H/8, W/8], z = (mu - latents_mean) / latents_std
//   decode: z [N, 16, T, h, w] -> pixels [N, 3, 1+4(T-1), 8h, 8w], clamped to [-1, 1]
//
// Written only against the Backend interface (backend.h), so the CUDA backend runs this code unchanged.
// Chunked causal processing exactly as the reference (spec §3.1): encode feeds frame 0 alone and then chunks of 4
// frames; decode feeds one latent frame at a time. Each k=3 causal conv keeps the last 2 frames of its input stream
// (CACHE_T = 2) between chunks, in a 2-slot ring on the backend that the next chunk's conv reads in place
// (Backend::conv3d_fused: no concatenated copy); the temporal resamplers keep their own state ('Rep' on the
// decoder's first chunk). The upsamplers' nearest-exact 2x and the residual blocks' shortcut add are read and added
// inside the convs too (the CPU backend composes them, the CUDA kernels fuse them).
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
#include "config_json.h"
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
  // The same from an already parsed object (e.g. the `vae_config` member of a Show-o2 config.json).
  static WanVaeConfig from_config(const ConfigReader& reader);
  // Throws ERR_INVALID_ARGUMENT naming the first inconsistent field.
  // `where` prefixes the message (the config's file and path when it came from one).
  void validate(const std::string& where = "WanVaeConfig") const;
  // Spatial and temporal strides of the latent grid: 2^(len(dim_mult)-1) and 2^(number of temporal stages).
  int64_t spatial_stride() const;
  int64_t temporal_stride() const;
};

namespace wan_vae {

// One tile's extent along a latent axis, in latent pixels [begin, end) (see WanVaeDecodeOptions).
struct TileSpan {
  int64_t begin = 0, end = 0;
  bool operator==(const TileSpan& o) const { return begin == o.begin && end == o.end; }
};
// Tiles of `tile` latent pixels covering [0, size) with at least `overlap` pixels shared by neighbours: one tile when
// size <= tile, else 1 + ceil((size - tile) / (tile - overlap)) tiles with begins spread evenly from 0 to size - tile
// (begin_i = i * (size - tile) / (count - 1), floored), so every seam gets about the same overlap, never less than
// `overlap`. Requires tile >= 1 and 0 <= overlap < tile (WanVae::decode validates its options first).
std::vector<TileSpan> tile_spans(int64_t size, int64_t tile, int64_t overlap);

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

// Options of WanVae::decode. Spatial tiling bounds the activations of one decoded chunk: each tile of the latent is
// decoded independently through the whole causal pipeline (its own per-conv frame caches, one latent frame at a
// time, so frames still stream out), and the pixel tiles are blended with linear ramps across each overlap (per-axis
// weights that sum to 1 at every pixel) before clamping. Tiling is an approximation: the decoder's receptive field
// crosses tile borders (most of the difference is near the seams) and its middle attention, global over a frame,
// sees only the tile (a small difference everywhere); test/native/wan_vae_tiling_test.cpp measures it.
//
// Memory of an untiled decode (released config, dim 96; per output pixel of one frame, per batch item): the largest
// activations are the 96- and 192-channel tensors at full and half resolution.
//   * per-conv frame caches (2 frames of every k=3 conv's input; 1 after the first chunk): ~2365 floats = ~9.5 KB,
//     ~1344 of them at full resolution (3 ResidualBlocks x 2 convs x 96 ch x 2 frames, plus the head);
//   * one 4-frame chunk in flight (a full-resolution ResidualBlock holds x, norm(x), [cache, x] and the conv output):
//     ~1730 floats = ~7 KB; a 1-frame chunk a quarter of that. (On the CUDA backend the [cache, x] copy is gone, so
//     this overestimates its chunk by about a quarter; the estimate stays conservative.)
// So a video decode needs ~17 KB per output pixel (a 432x432 clip ~3.1 GB, 1024x1024 ~17 GB) and an image, whose
// only chunk records no caches, ~1.7 KB (1024x1024 ~1.8 GB). estimate_untiled_decode_bytes() gives this estimate.
// Tiling divides the chunk activations (one tile's chunk is alive at a time) and, for an image, everything; a video's
// frame caches stay alive for all tiles at once (that is what lets frames stream), so they still total ~9.5 KB per
// output pixel times the tiles' area overhead ((5 * 32 / 128)^2 = 1.56 for 1024 px with the defaults).
struct WanVaeDecodeOptions {
  enum class Tiling {
    Auto,  // tile when estimate_untiled_decode_bytes(latent) exceeds the budget (see WanVae::plan_decode)
    Off,   // never tile: the reference's decode, exactly
    On,    // always tile (a tile covering the whole latent is the untiled decode, exactly)
  };
  // Whether to decode in spatial tiles. Defaults to Auto.
  Tiling tiling = Tiling::Auto;
  // Tile side in latent pixels (x8 in pixels), >= 1. Defaults to 32 (256 px): one 4-frame chunk of a tile then needs
  // ~0.45 GB of activations (65536 px x ~7 KB).
  int64_t tile_latent = 32;
  // Minimum overlap of neighbouring tiles in latent pixels, 0 <= overlap_latent < tile_latent; the blend ramps span
  // the whole overlap. Defaults to 8 (64 px, a quarter of a tile: room for the decoder's border effects to fade).
  int64_t overlap_latent = 8;
  // Auto's threshold on the estimated untiled peak, in bytes, >= 0. Defaults to 8 GiB: Show-o2's native sizes
  // (432/512 px images and videos, 1024 px images) decode untiled, i.e. exactly as the reference; a 1024 px video
  // (~17 GB) is tiled. On a backend that knows its free memory (CUDA) the budget is the smaller of this and 90% of
  // what it can still allocate, and Auto also shrinks the tile until the tiled estimate fits (WanVae::plan_decode).
  int64_t auto_max_bytes = int64_t{8} << 30;

  // ERR_INVALID_ARGUMENT naming the field for a value outside its range.
  void validate() const;
};

// How WanVae lays out its activations [N, C, T, H, W] on the backend. ChannelsFirst: contiguous, as PyTorch's
// default. ChannelsLast: memory [N, T, H, W, C] (PyTorch's channels_last_3d), with the conv weights kept as
// [O, kt, kh, kw, C]: the implicit-GEMM convs then read whole channel runs per pixel and the attention blocks read
// each frame's tokens in place. Auto: the backend's preference (Backend::prefers_channels_last_activations; the
// CPU backend's is ChannelsFirst). Both layouts compute the same function; on the CPU backend, bit for bit.
enum class WanVaeLayout { Auto, ChannelsFirst, ChannelsLast };
// The activations' dtype is the backend's preferred_conv_activation_dtype: F32, or BF16 on a CUDA backend asked for
// it (CudaBackendOptions::conv_activation_dtype: half the activation memory and traffic, PyTorch's bf16 precision;
// the per-frame attention still computes in F32 on converted tokens). Inputs and outputs are F32 either way.

class WanVae {
 public:
  // Checks every expected key of `config` against `file` (presence, shape, float dtype) before loading anything, and
  // reports all missing, unexpected and wrongly shaped keys in one error: ERR_INVALID_ARGUMENT when keys are missing
  // or unexpected, else ERR_SHAPE_MISMATCH, else ERR_UNSUPPORTED_DTYPE. The backend must outlive the WanVae.
  // `layout`: see WanVaeLayout (ERR_INVALID_ARGUMENT for a value outside the enum).
  WanVae(const weights::WeightFile& file, const WanVaeConfig& config, Backend& backend,
         WanVaeLayout layout = WanVaeLayout::Auto);

  const WanVaeConfig& config() const { return config_; }
  // Whether the activations (and conv weights) are channels-last (the resolved WanVaeLayout).
  bool channels_last() const { return channels_last_; }
  // What the activations are stored in: the backend's preferred_conv_activation_dtype (F32, or BF16 on a CUDA
  // backend asked for it). Inputs and outputs stay F32 either way.
  DType activation_dtype() const { return activation_dtype_; }

  struct Posterior {
    Tensor mean;    // [N, z_dim, T', H/8, W/8], normalised: (mu - latents_mean) / latents_std
    Tensor logvar;  // [N, z_dim, T', H/8, W/8], raw (not normalised, as the reference's posterior)
  };
  // video [N, 3, 1+4k, H, W] F32 (any strides), H and W multiples of 8. Typed errors: ERR_SHAPE_MISMATCH (rank or
  // channel count), ERR_UNSUPPORTED_DTYPE, ERR_INVALID_ARGUMENT (frame count or H/W not a multiple of 8).
  // Inputs may be host tensors or tensors of the backend; results (here, encode, encode_sample, decode and the
  // decoded chunks) are host tensors (Backend::to_host), ready to be read.
  Posterior encode_posterior(const Tensor& video);
  // The normalised posterior mean (the deterministic latent the port uses; spec §3.1 "Recommendation").
  Tensor encode(const Tensor& video);
  // A seeded sample of the posterior, as the reference's WanVAE.sample() (spec §3.1):
  //   z + exp(0.5 * clamp(logvar, -30, 20)) * eps
  // Reference quirk, reproduced on purpose: the noise is added AFTER normalisation (z = (mu - mean) / std) and is NOT
  // divided by latents_std, so its scale in the normalised space is exp(0.5 * logvar), not exp(0.5 * logvar) / std.
  // eps ~ N(0, 1) from a documented generator, reproducible across platforms (it cannot match torch's RNG bit for
  // bit): std::mt19937_64(seed); each pair of 64-bit draws gives u1 = ((a >> 11) + 1) * 2^-53 in (0, 1] and
  // u2 = (b >> 11) * 2^-53 in [0, 1), and Box-Muller in double gives eps[2k] = r cos(2 pi u2), eps[2k+1] = r sin(2 pi
  // u2) with r = sqrt(-2 ln u1), over the elements of [N, z_dim, T', h, w] in row-major order, rounded to F32.
  Tensor encode_sample(const Tensor& video, uint64_t seed);

  // Called once per decoded chunk with its frames [N, 3, Tc, 8h, 8w] (clamped) and the index of its first frame.
  using DecodedChunkCallback = std::function<void(const Tensor& frames, int64_t first_frame)>;
  // latent [N, z_dim, T, h, w] F32 (normalised z), T >= 1 -> pixels [N, 3, 1+4(T-1), 8h, 8w] in [-1, 1], decoding one
  // latent frame at a time; `on_chunk` (optional) streams each chunk as soon as it is ready.
  Tensor decode(const Tensor& latent, const DecodedChunkCallback& on_chunk = {});
  // The same with spatial tiling options (see WanVaeDecodeOptions); the overload above uses the defaults. Chunks
  // stream as above (each one blended from all tiles). ERR_INVALID_ARGUMENT for invalid options.
  Tensor decode(const Tensor& latent, const WanVaeDecodeOptions& options, const DecodedChunkCallback& on_chunk = {});
  // Estimated peak bytes of an untiled decode of a latent [N, z_dim, T, h, w] (the memory note above
  // WanVaeDecodeOptions; scales with config.dim): N * (8h * 8w) * (dim * (T == 1 ? 18 : 170) + 12 * output frames).
  int64_t estimate_untiled_decode_bytes(const Shape& latent_shape) const;
  // The same for a decode in tiles of `tile_latent` latent pixels overlapping by `overlap_latent`: the per-conv frame
  // caches of all tiles (a video's; they cover the tiles' total area), one tile's chunk activations, and the output.
  int64_t estimate_tiled_decode_bytes(const Shape& latent_shape, int64_t tile_latent, int64_t overlap_latent) const;

  // How decode() will run: untiled, or in tiles of a side and overlap; with the estimate and the budget it used.
  struct DecodePlan {
    bool tiled = false;
    int64_t tile_latent = 0, overlap_latent = 0;  // when tiled
    int64_t estimated_bytes = 0;                  // of the plan
    int64_t budget_bytes = 0;                     // Auto's budget (below); 0 for On / Off
  };
  // Off: untiled. On: the options' tiles. Auto: budget = auto_max_bytes, or 90% of `available_bytes` when that is
  // known (>= 0) and smaller; untiled when its estimate fits the budget, else the options' tiles, halved (with the
  // overlap kept at a quarter of the tile, at least 1) while the tiled estimate exceeds the budget and the tile is
  // above 8 latent pixels. decode() passes the backend's Backend::available_memory_bytes(); a plan that still does
  // not fit fails at allocation with ERR_OUT_OF_MEMORY, as before. options must be valid (validate()).
  DecodePlan plan_decode(const Shape& latent_shape, const WanVaeDecodeOptions& options, int64_t available_bytes) const;

  const wan_vae::Encoder3d& encoder() const { return encoder_; }
  const wan_vae::Decoder3d& decoder() const { return decoder_; }

 private:
  WanVaeConfig config_;
  Backend* backend_;
  bool channels_last_ = false;
  DType activation_dtype_ = DType::F32;  // the backend's preferred_conv_activation_dtype
  wan_vae::Encoder3d encoder_;   // encoder.*
  wan_vae::CausalConv3d conv1_;  // conv1.{weight,bias}  [2*z_dim, 2*z_dim, 1, 1, 1]: encoder output -> mu, logvar
  wan_vae::CausalConv3d conv2_;  // conv2.{weight,bias}  [z_dim, z_dim, 1, 1, 1]: before the decoder
  wan_vae::Decoder3d decoder_;   // decoder.*
};

}  // namespace showo2
