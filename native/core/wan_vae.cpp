// The Wan2.1 3D causal VAE (spec §3.1); see wan_vae.h for the contract.
//
// Reading order: config, weight binding (every key checked before any load), the caches, then the forward pieces
// small to large (causal conv, residual block, attention block, resample, encoder, decoder) and the public API.
#include "wan_vae.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "model_ops.h"
#include "config_json.h"
#include "weight_binder.h"
#include "weights/json.h"

namespace showo2 {

using namespace wan_vae;

// ---- config ------------------------------------------------------------------------------------------------------

WanVaeConfig WanVaeConfig::from_json(const std::string& text, const std::string& source) {
  const weights::JsonValue root = parse_config_json(text, source);
  return from_config(ConfigReader(root, source));
}

WanVaeConfig WanVaeConfig::from_config(const ConfigReader& r) {
  WanVaeConfig c;
  r.read("dim", &c.dim);
  r.read("z_dim", &c.z_dim);
  r.read("num_res_blocks", &c.num_res_blocks);
  r.read("dim_mult", &c.dim_mult);
  r.read("attn_scales", &c.attn_scales);
  r.read("temperal_downsample", &c.temperal_downsample);
  r.read("latents_mean", &c.latents_mean);
  r.read("latents_std", &c.latents_std);
  c.validate(r.path().empty() ? r.source() : r.source() + ": " + r.path());
  return c;
}

void WanVaeConfig::validate(const std::string& where) const {
  auto bad = [&where](const char* field, const std::string& why) {
    fail(ErrorCode::InvalidArgument, where, ": ", field, ": ", why);
  };
  if (!is_config_size(dim)) bad("dim", config_size_error(dim));
  if (dim % 2 != 0) bad("dim", "expected an even value (the upsamplers halve channels) but got " + std::to_string(dim));
  if (!is_config_size(z_dim)) bad("z_dim", config_size_error(z_dim));
  if (!is_config_size(num_res_blocks)) bad("num_res_blocks", config_size_error(num_res_blocks));
  // The spatial stride is 2^(stages - 1) (and the temporal one at most that): 16 stages keep it a small power of two.
  if (dim_mult.size() < 2 || dim_mult.size() > 16)
    bad("dim_mult", "expected 2 to 16 stages but got " + std::to_string(dim_mult.size()));
  for (int64_t m : dim_mult)
    if (!is_config_size(m)) bad("dim_mult", "expected multipliers from 1 to " + std::to_string(kMaxConfigSize));
  if (temperal_downsample.size() != dim_mult.size() - 1)
    bad("temperal_downsample", "expected " + std::to_string(dim_mult.size() - 1) + " entries (len(dim_mult) - 1) but got " +
                                   std::to_string(temperal_downsample.size()));
  if (static_cast<int64_t>(latents_mean.size()) != z_dim)
    bad("latents_mean", "expected z_dim = " + std::to_string(z_dim) + " values but got " +
                            std::to_string(latents_mean.size()));
  if (static_cast<int64_t>(latents_std.size()) != z_dim)
    bad("latents_std", "expected z_dim = " + std::to_string(z_dim) + " values but got " +
                           std::to_string(latents_std.size()));
  for (float s : latents_std)
    if (!(s > 0.0f) || !std::isfinite(s)) bad("latents_std", "expected finite positive values");
}

int64_t WanVaeConfig::spatial_stride() const { return int64_t{1} << (dim_mult.size() - 1); }

int64_t WanVaeConfig::temporal_stride() const {
  int64_t s = 1;
  for (bool t : temperal_downsample) s *= t ? 2 : 1;
  return s;
}

// ---- weight binding ----------------------------------------------------------------------------------------------
// Pass 1 records, for every module member, its key, the shape the checkpoint must hold and the shape the forward
// code uses (a view of the same elements). Pass 2 checks all of them at once; pass 3 loads.

namespace {

// The WeightBinder plus the layout of the conv weights (channels-last next to channels-last activations).
struct VaeBinder {
  WeightBinder& weights;
  bool channels_last;
  void conv(Tensor* slot, const std::string& key, Shape stored, Shape used) {
    if (channels_last)
      weights.bind_channels_last(slot, key, std::move(stored), std::move(used));
    else
      weights.bind(slot, key, std::move(stored), std::move(used));
  }
  void bind(Tensor* slot, const std::string& key, Shape stored, Shape used) {
    weights.bind(slot, key, std::move(stored), std::move(used));
  }
  void bind(Tensor* slot, const std::string& key, Shape stored) { weights.bind(slot, key, std::move(stored)); }
};

void bind_causal_conv(VaeBinder& b, CausalConv3d& m, const std::string& key, int64_t out, int64_t in, int64_t kt,
                      int64_t kh, int64_t kw) {
  b.conv(&m.weight, key + ".weight", {out, in, kt, kh, kw}, {out, in, kt, kh, kw});  // [O, C, kt, kh, kw]
  b.bind(&m.bias, key + ".bias", {out});                       // [O]
}

void bind_rms_norm(VaeBinder& b, RmsNorm& m, const std::string& key, int64_t dim, bool images) {
  // RMS_norm(images=False) stores gamma [C, 1, 1, 1]; images=True (attention) [C, 1, 1].
  Shape stored = images ? Shape{dim, 1, 1} : Shape{dim, 1, 1, 1};
  b.bind(&m.gamma, key + ".gamma", stored, {dim});
}

void bind_residual(VaeBinder& b, ResidualBlock& m, const std::string& key) {
  bind_rms_norm(b, m.residual_0, key + ".residual.0", m.in_dim, false);
  bind_causal_conv(b, m.residual_2, key + ".residual.2", m.out_dim, m.in_dim, 3, 3, 3);
  bind_rms_norm(b, m.residual_3, key + ".residual.3", m.out_dim, false);
  bind_causal_conv(b, m.residual_6, key + ".residual.6", m.out_dim, m.out_dim, 3, 3, 3);
  if (m.in_dim != m.out_dim) bind_causal_conv(b, m.shortcut, key + ".shortcut", m.out_dim, m.in_dim, 1, 1, 1);
}

void bind_attention(VaeBinder& b, AttentionBlock& m, const std::string& key) {
  const int64_t C = m.dim;
  bind_rms_norm(b, m.norm, key + ".norm", C, true);
  // The 1x1 Conv2ds act on token-major activations here, so they are kept as linear weights [O, C].
  b.bind(&m.to_qkv.weight, key + ".to_qkv.weight", {3 * C, C, 1, 1}, {3 * C, C});
  b.bind(&m.to_qkv.bias, key + ".to_qkv.bias", {3 * C});
  b.bind(&m.proj.weight, key + ".proj.weight", {C, C, 1, 1}, {C, C});
  b.bind(&m.proj.bias, key + ".proj.bias", {C});
}

void bind_resample(VaeBinder& b, Resample& m, const std::string& key) {
  const int64_t C = m.dim;
  const bool up = m.mode == Resample::Mode::Upsample2d || m.mode == Resample::Mode::Upsample3d;
  const int64_t out = up ? C / 2 : C;
  // A per-frame Conv2d runs as a Conv3d with kt = 1: same elements, [O, C, 1, 3, 3].
  b.conv(&m.resample_1.weight, key + ".resample.1.weight", {out, C, 3, 3}, {out, C, 1, 3, 3});
  b.bind(&m.resample_1.bias, key + ".resample.1.bias", {out});
  if (m.mode == Resample::Mode::Upsample3d) bind_causal_conv(b, m.time_conv, key + ".time_conv", 2 * C, C, 3, 1, 1);
  if (m.mode == Resample::Mode::Downsample3d) bind_causal_conv(b, m.time_conv, key + ".time_conv", C, C, 3, 1, 1);
}

void bind_stage_layers(VaeBinder& b, std::vector<StageLayer>& layers, const std::string& key) {
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::string k = key + "." + std::to_string(i);
    switch (layers[i].kind) {
      case StageLayer::Kind::Residual: bind_residual(b, layers[i].residual, k); break;
      case StageLayer::Kind::Attention: bind_attention(b, layers[i].attention, k); break;
      case StageLayer::Kind::Resample: bind_resample(b, layers[i].resample, k); break;
    }
  }
}

StageLayer residual_layer(int64_t in, int64_t out) {
  StageLayer l;
  l.kind = StageLayer::Kind::Residual;
  l.residual.in_dim = in;
  l.residual.out_dim = out;
  return l;
}
StageLayer attention_layer(int64_t dim) {
  StageLayer l;
  l.kind = StageLayer::Kind::Attention;
  l.attention.dim = dim;
  return l;
}
StageLayer resample_layer(int64_t dim, Resample::Mode mode) {
  StageLayer l;
  l.kind = StageLayer::Kind::Resample;
  l.resample.dim = dim;
  l.resample.mode = mode;
  return l;
}

bool has_scale(const std::vector<double>& scales, double s) {
  for (double v : scales)
    if (std::fabs(v - s) < 1e-9) return true;
  return false;
}

// Encoder3d.__init__: dims = dim * [1] + dim_mult; per stage num_res_blocks RBs (+ attention at attn_scales), then a
// Resample except after the last stage.
void build_encoder(const WanVaeConfig& c, Encoder3d& e) {
  std::vector<int64_t> dims = {c.dim};
  for (int64_t m : c.dim_mult) dims.push_back(c.dim * m);
  double scale = 1.0;
  const size_t stages = c.dim_mult.size();
  for (size_t i = 0; i < stages; ++i) {
    int64_t in = dims[i];
    const int64_t out = dims[i + 1];
    for (int64_t r = 0; r < c.num_res_blocks; ++r) {
      e.downsamples.push_back(residual_layer(in, out));
      if (has_scale(c.attn_scales, scale)) e.downsamples.push_back(attention_layer(out));
      in = out;
    }
    if (i + 1 != stages) {
      e.downsamples.push_back(resample_layer(
          out, c.temperal_downsample[i] ? Resample::Mode::Downsample3d : Resample::Mode::Downsample2d));
      scale /= 2.0;
    }
  }
  const int64_t top = dims.back();
  e.middle_0.in_dim = e.middle_0.out_dim = top;
  e.middle_1.dim = top;
  e.middle_2.in_dim = e.middle_2.out_dim = top;
}

// Decoder3d.__init__: dims = dim * [dim_mult[-1]] + reversed(dim_mult); stages after the first start from half the
// channels (the previous upsampler's conv halves them); num_res_blocks + 1 RBs per stage; temporal upsampling mirrors
// temperal_downsample.
void build_decoder(const WanVaeConfig& c, Decoder3d& d) {
  std::vector<int64_t> dims = {c.dim * c.dim_mult.back()};
  for (auto it = c.dim_mult.rbegin(); it != c.dim_mult.rend(); ++it) dims.push_back(c.dim * *it);
  const size_t stages = c.dim_mult.size();
  double scale = 1.0 / static_cast<double>(int64_t{1} << (stages - 2));
  for (size_t i = 0; i < stages; ++i) {
    int64_t in = i == 0 ? dims[i] : dims[i] / 2;
    const int64_t out = dims[i + 1];
    for (int64_t r = 0; r < c.num_res_blocks + 1; ++r) {
      d.upsamples.push_back(residual_layer(in, out));
      if (has_scale(c.attn_scales, scale)) d.upsamples.push_back(attention_layer(out));
      in = out;
    }
    if (i + 1 != stages) {
      const bool temporal = c.temperal_downsample[stages - 2 - i];  // temperal_upsample = temperal_downsample[::-1]
      d.upsamples.push_back(resample_layer(out, temporal ? Resample::Mode::Upsample3d : Resample::Mode::Upsample2d));
      scale *= 2.0;
    }
  }
  const int64_t top = dims.front();
  d.middle_0.in_dim = d.middle_0.out_dim = top;
  d.middle_1.dim = top;
  d.middle_2.in_dim = d.middle_2.out_dim = top;
}

// ---- chunk caches ------------------------------------------------------------------------------------------------
// The reference keys its cache by module; here each cached module takes the next slot in visiting order, which is the
// same on every chunk because every module takes its slot whether or not it reads it.

// The last frames of one module's input stream, kept on the backend as a ring of `capacity` frame slots: a chunk
// writes only its own newest frames into the ring (overwriting the oldest), and the next chunk's conv reads them
// where they lie (ConvFusion::history), so no chunk ever copies or concatenates the frames it keeps.
struct FrameCache {
  Tensor ring;           // [N, C, capacity, H, W]; undefined until the first recorded frames
  int64_t count = 0;     // frames held, <= capacity
  int64_t head = 0;      // slot of the oldest held frame
  bool started = false;  // the resamplers' first-chunk state ('Rep' / "remember and pass through")
  bool record = true;    // false on the last chunk: nothing will read the frames (see push_frames)
};

class ChunkCaches {
 public:
  // `last`: no later chunk follows (see FrameCache::record).
  void begin_chunk(bool last) {
    next_ = 0;
    last_ = last;
  }
  FrameCache& next() {
    if (next_ == slots_.size()) slots_.emplace_back();
    FrameCache& slot = slots_[next_++];
    slot.record = !last_;
    return slot;
  }

 private:
  std::vector<FrameCache> slots_;
  size_t next_ = 0;
  bool last_ = false;
};

// ---- forward pieces ------------------------------------------------------------------------------------------------


// Activations [N, C, T, H, W] are contiguous or channels-last (memory [N, T, H, W, C], WanVaeLayout), in F32 or BF16
// (the backend's preferred_conv_activation_dtype); every new one takes the layout and dtype of the activation it
// derives from, so what the entry points chose runs throughout.
Tensor new_activation(Backend& b, const Shape& shape, bool channels_last, DType dtype) {
  if (!channels_last) return b.empty(shape, dtype);
  Shape memory;
  for (int64_t d : channels_last_to_memory_order(static_cast<int64_t>(shape.size())))
    memory.push_back(shape[static_cast<size_t>(d)]);
  return b.empty(memory, dtype).permute(memory_order_to_channels_last(static_cast<int64_t>(shape.size())));
}

// Channels-last in the strict sense: a tensor with size-1 dims in the right places is both, and then contiguous wins.
bool strictly_channels_last(const Tensor& x) { return !x.is_contiguous() && x.is_channels_last(); }

Tensor new_like(Backend& b, const Shape& shape, const Tensor& like) {
  return new_activation(b, shape, strictly_channels_last(like), like.dtype());
}

// A copy of x in the given layout and dtype (x itself when it already is; copy converts F32 <-> BF16).
Tensor in_layout(Backend& b, const Tensor& x, bool channels_last, DType dtype) {
  if (x.dtype() == dtype && (channels_last ? x.is_channels_last() : x.is_contiguous())) return x;
  Tensor out = new_activation(b, x.shape(), channels_last, dtype);
  b.copy(x, out);
  return out;
}

// Frames [first, first + count) of x as a new tensor in the given layout and dtype.
Tensor frames_of(Backend& b, const Tensor& x, int64_t first, int64_t count, bool channels_last, DType dtype) {
  Shape shape = x.shape();
  shape[2] = count;
  Tensor out = new_activation(b, shape, channels_last, dtype);  // [N, C, count, H, W]
  b.copy(x.slice(2, first, first + count), out);
  return out;
}

// Frames j, j + 2, j + 4, ... of x [N, C, 2T, H, W] (either layout) as a view [N, C, T, H, W].
Tensor every_other_frame(const Tensor& x, int64_t j) {
  Shape shape = x.shape(), strides = x.strides();
  shape[2] /= 2;
  strides[2] *= 2;
  return Tensor::view_of(x.storage(), x.dtype(), shape, strides,
                         x.byte_offset() + static_cast<size_t>(j * x.stride(2)) * dtype_size(x.dtype()));
}

// The cache's frames, oldest first, as the history in front of the next conv's input.
ConvFusion history_of(const FrameCache& cache) {
  ConvFusion f;
  const int64_t capacity = cache.ring.defined() ? cache.ring.size(2) : 0;
  f.history_count = static_cast<int>(cache.count);
  for (int64_t i = 0; i < cache.count; ++i) {
    const int64_t slot = (cache.head + i) % capacity;
    f.history[i] = cache.ring.slice(2, slot, slot + 1);  // [N, C, 1, H, W]
  }
  return f;
}

// Appends x's frames to the cache, keeping the last `capacity` frames of the stream (call it after the conv that
// read the old ones). On the last chunk nothing will read them, so the cache is released instead: an image decode
// then holds no caches at all, and a video's caches are released one by one as its last chunk goes through.
void push_frames(Backend& b, FrameCache& cache, const Tensor& x, int64_t capacity) {
  if (!cache.record) {
    cache = FrameCache{Tensor(), 0, 0, cache.started, cache.record};
    return;
  }
  const Shape ring_shape = {x.size(0), x.size(1), capacity, x.size(3), x.size(4)};
  if (!cache.ring.defined() || cache.ring.shape() != ring_shape) {
    cache.ring = new_like(b, ring_shape, x);  // [N, C, capacity, H, W]
    cache.count = cache.head = 0;
  }
  const int64_t T = x.size(2);
  if (T >= capacity) {  // the chunk alone fills the ring: one copy, oldest in slot 0
    b.copy(x.slice(2, T - capacity, T), cache.ring);
    cache.count = capacity;
    cache.head = 0;
    return;
  }
  for (int64_t t = 0; t < T; ++t) {  // fewer new frames than slots: write each over the oldest (or a free slot)
    const int64_t slot = (cache.head + cache.count) % capacity;
    Tensor dst = cache.ring.slice(2, slot, slot + 1);
    b.copy(x.slice(2, t, t + 1), dst);
    if (cache.count < capacity)
      ++cache.count;
    else
      cache.head = (cache.head + 1) % capacity;
  }
}

// conv3d over the input `f` describes (history frames in front of x, or x upsampled), plus f.residual.
Tensor conv3d(Backend& b, const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv3dParams& p,
              const ConvFusion& f = {}) {
  const int64_t up = f.upsample2x ? 2 : 1;
  const int64_t T = x.size(2) + f.history_count, H = x.size(3) * up, W = x.size(4) * up;
  const int64_t To = (T + p.pad_front + p.pad_back - weight.size(2)) / p.stride_t + 1;
  const int64_t Ho = (H + p.pad_top + p.pad_bottom - weight.size(3)) / p.stride_h + 1;
  const int64_t Wo = (W + p.pad_left + p.pad_right - weight.size(4)) / p.stride_w + 1;
  Tensor out = new_like(b, {x.size(0), weight.size(0), To, Ho, Wo}, x);  // [N, O, To, Ho, Wo]
  b.conv3d_fused(x, f, weight, bias, p, out);
  return out;
}

// CausalConv3d.forward(x, cache_x): time padded 2*pad_t = kt - 1 frames in front by the cached input frames, then
// zeros; space padded (k-1)/2 on each side; plus `residual` when defined (fused into the conv). Then the cache takes
// the newest frames of the input stream (CACHE_T = kt - 1 = 2 for the k=3 convs).
Tensor causal_conv(Backend& b, const CausalConv3d& conv, const Tensor& x, FrameCache* cache,
                   const Tensor& residual = Tensor()) {
  const int64_t kt = conv.weight.size(2), kh = conv.weight.size(3), kw = conv.weight.size(4);
  const int64_t history = kt - 1;
  Conv3dParams p;
  p.pad_top = p.pad_bottom = (kh - 1) / 2;
  p.pad_left = p.pad_right = (kw - 1) / 2;
  ConvFusion f = history > 0 && cache != nullptr ? history_of(*cache) : ConvFusion{};
  f.residual = residual;
  p.pad_front = history - f.history_count;
  Tensor out = conv3d(b, x, conv.weight, conv.bias, p, f);  // [N, O, T, H, W]
  if (history > 0 && cache != nullptr) push_frames(b, *cache, x, history);
  return out;
}

Tensor norm_silu(Backend& b, const RmsNorm& norm, const Tensor& x) {
  Tensor y = new_like(b, x.shape(), x);  // [N, C, T, H, W]
  b.channel_rms_norm_silu(x, norm.gamma, y);
  return y;
}

// ResidualBlock.forward: shortcut(x) + conv(drop(silu(norm(conv(silu(norm(x)))))))
Tensor residual_block(Backend& b, const ResidualBlock& m, const Tensor& x, ChunkCaches& caches) {
  Tensor h = m.in_dim != m.out_dim ? causal_conv(b, m.shortcut, x, nullptr) : x;  // [N, out, T, H, W]
  Tensor y = norm_silu(b, m.residual_0, x);                                       // [N, in, T, H, W]
  y = causal_conv(b, m.residual_2, y, &caches.next());                            // [N, out, T, H, W]
  y = norm_silu(b, m.residual_3, y);                                              // [N, out, T, H, W]
  return causal_conv(b, m.residual_6, y, &caches.next(), h);                      // [N, out, T, H, W], + h
}

// AttentionBlock.forward: per frame, single-head attention over the H*W tokens, 1/sqrt(C) scale, plus the residual.
// Channels-last F32 activations already hold each frame's tokens as rows of C channels, so the to_qkv / proj
// linears read and write them in place; other activations (contiguous, or BF16, which the linears do not take) go
// through token-major F32 copies and back. The block runs once per chunk at the lowest resolution, so the copies are
// small next to the convolutions.
Tensor attention_block(Backend& b, const AttentionBlock& m, const Tensor& x) {
  const int64_t N = x.size(0), C = x.size(1), T = x.size(2), HW = x.size(3) * x.size(4);
  const bool in_place = strictly_channels_last(x) && x.dtype() == DType::F32;
  auto token_view = [&](const Tensor& t) {  // t [N, C, T, H, W] viewed as [N*T, HW, C] (permute(0, 2, 3, 4, 1))
    return strictly_channels_last(t) ? t.permute(channels_last_to_memory_order(5)).reshape({N * T, HW, C})
                                     : t.reshape({N, C, T, HW}).transpose(1, 2).transpose(2, 3);
  };
  Tensor normed = new_like(b, x.shape(), x);  // [N, C, T, H, W]
  b.channel_rms_norm(x, m.norm.gamma, normed);
  Tensor tokens;  // [N*T, HW, C] F32
  if (in_place) {
    tokens = token_view(normed);
  } else {
    tokens = new_f32(b, {N * T, HW, C});
    Tensor dst = strictly_channels_last(normed) ? tokens : tokens.reshape({N, T, HW, C});
    b.copy(token_view(normed), dst);
  }
  Tensor qkv = new_f32(b, {N * T, HW, 3 * C});  // [N*T, HW, 3C]: to_qkv as a linear over channels
  b.linear(tokens, m.to_qkv.weight, m.to_qkv.bias, qkv);
  Tensor q = qkv.slice(2, 0, C).unsqueeze(2);          // [N*T, HW, 1, C]
  Tensor k = qkv.slice(2, C, 2 * C).unsqueeze(2);      // [N*T, HW, 1, C]
  Tensor v = qkv.slice(2, 2 * C, 3 * C).unsqueeze(2);  // [N*T, HW, 1, C]
  Tensor attn_output = new_f32(b, {N * T, HW, 1, C});     // [N*T, HW, 1, C]
  b.attention(q, k, v, OmniMask::full(), static_cast<float>(1.0 / std::sqrt(static_cast<double>(C))), attn_output);
  Tensor out = new_like(b, x.shape(), x);  // [N, C, T, H, W]
  if (in_place) {
    Tensor out_tokens = token_view(out);
    b.linear(attn_output.reshape({N * T, HW, C}), m.proj.weight, m.proj.bias, out_tokens);
    Tensor out_flat = out.memory_order_view();  // out and x share a layout: the residual add is elementwise in memory
    b.add(out_flat, x.memory_order_view(), out_flat);
    return out;
  }
  Tensor projected = new_f32(b, {N * T, HW, C});  // [N*T, HW, C]
  b.linear(attn_output.reshape({N * T, HW, C}), m.proj.weight, m.proj.bias, projected);
  Tensor shortcut = new_f32(b, {N * T, HW, C});  // x's tokens in F32, for the residual add
  Tensor shortcut_dst = strictly_channels_last(x) ? shortcut : shortcut.reshape({N, T, HW, C});
  b.copy(token_view(x), shortcut_dst);
  b.add(projected, shortcut, projected);
  Tensor out_view = token_view(out);
  const Tensor src = strictly_channels_last(out) ? projected : projected.reshape({N, T, HW, C});
  b.copy(src, out_view);  // back to x's layout and dtype
  return out;
}

// Resample 'upsample3d' time step: time_conv (C -> 2C) doubles the frames; channels [0, C) become frame 2t and
// [C, 2C) frame 2t+1. On the first chunk ('Rep') the frame passes through unchanged; on the next one the time conv
// sees zeros in front (frame 0 is not history), as the reference.
Tensor double_frames(Backend& b, const Resample& m, const Tensor& x, FrameCache& cache) {
  if (!cache.started) {
    cache.started = true;
    return x;  // [N, C, T, H, W]
  }
  const int64_t N = x.size(0), C = x.size(1), T = x.size(2), H = x.size(3), W = x.size(4);
  Tensor doubled = causal_conv(b, m.time_conv, x, &cache);  // [N, 2C, T, H, W]
  Tensor out = new_like(b, {N, C, 2 * T, H, W}, x);           // [N, C, 2T, H, W]
  for (int64_t j = 0; j < 2; ++j) {  // x.reshape(b, 2, c, t, h, w) stacked on a new dim after t
    Tensor dst = every_other_frame(out, j);  // [N, C, T, H, W], frames 2t + j
    b.copy(doubled.slice(1, j * C, (j + 1) * C), dst);
  }
  return out;
}

// Resample 'downsample3d' time step (after the spatial conv): the first chunk passes through and is remembered;
// later chunks run time_conv (k=3, stride 2, no padding) over [remembered last frame, chunk].
Tensor halve_frames(Backend& b, const Resample& m, const Tensor& x, FrameCache& cache) {
  if (!cache.started) {
    cache.started = true;
    push_frames(b, cache, x, 1);  // keeps [N, C, 1, H, W]
    return x;
  }
  Conv3dParams p;
  p.stride_t = 2;
  Tensor out = conv3d(b, x, m.time_conv.weight, m.time_conv.bias, p, history_of(cache));  // over [last, x]: T/2
  push_frames(b, cache, x, 1);
  return out;
}

Tensor resample(Backend& b, const Resample& m, const Tensor& x, ChunkCaches& caches) {
  FrameCache& cache = caches.next();  // taken by every mode, so the slot order never depends on the mode
  switch (m.mode) {
    case Resample::Mode::Upsample2d:
    case Resample::Mode::Upsample3d: {
      Tensor y = m.mode == Resample::Mode::Upsample3d ? double_frames(b, m, x, cache) : x;  // [N, C, T', H, W]
      Conv3dParams p;
      p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = 1;
      ConvFusion f;
      f.upsample2x = true;  // nn.Upsample(scale 2, 'nearest-exact'), read by the conv rather than written
      return conv3d(b, y, m.resample_1.weight, m.resample_1.bias, p, f);  // [N, C/2, T', 2H, 2W]
    }
    case Resample::Mode::Downsample2d:
    case Resample::Mode::Downsample3d: {
      Conv3dParams p;  // nn.ZeroPad2d((0, 1, 0, 1)) then a 3x3 stride-2 conv
      p.stride_h = p.stride_w = 2;
      p.pad_bottom = p.pad_right = 1;
      Tensor y = conv3d(b, x, m.resample_1.weight, m.resample_1.bias, p);  // [N, C, T, H/2, W/2]
      return m.mode == Resample::Mode::Downsample3d ? halve_frames(b, m, y, cache) : y;
    }
  }
  fail(ErrorCode::Internal, "WanVae: unknown resample mode");
}

Tensor run_stage_layers(Backend& b, const std::vector<StageLayer>& layers, Tensor x, ChunkCaches& caches) {
  for (const StageLayer& l : layers) {
    switch (l.kind) {
      case StageLayer::Kind::Residual: x = residual_block(b, l.residual, x, caches); break;
      case StageLayer::Kind::Attention: x = attention_block(b, l.attention, x); break;
      case StageLayer::Kind::Resample: x = resample(b, l.resample, x, caches); break;
    }
  }
  return x;
}

// Encoder3d.forward on one chunk: [N, 3, T, H, W] -> [N, 2*z_dim, T', H/8, W/8]
Tensor encoder_forward(Backend& b, const Encoder3d& e, const Tensor& x, ChunkCaches& caches) {
  Tensor h = causal_conv(b, e.conv1, x, &caches.next());  // [N, dim, T, H, W]
  h = run_stage_layers(b, e.downsamples, h, caches);       // [N, 4*dim, T', H/8, W/8]
  h = residual_block(b, e.middle_0, h, caches);
  h = attention_block(b, e.middle_1, h);
  h = residual_block(b, e.middle_2, h, caches);
  h = norm_silu(b, e.head_0, h);
  return causal_conv(b, e.head_2, h, &caches.next());  // [N, 2*z_dim, T', H/8, W/8]
}

// Decoder3d.forward on one latent frame: [N, z_dim, 1, h, w] -> [N, 3, 1 or 4, 8h, 8w] (not clamped)
Tensor decoder_forward(Backend& b, const Decoder3d& d, const Tensor& x, ChunkCaches& caches) {
  Tensor h = causal_conv(b, d.conv1, x, &caches.next());  // [N, 4*dim, 1, h, w]
  h = residual_block(b, d.middle_0, h, caches);
  h = attention_block(b, d.middle_1, h);
  h = residual_block(b, d.middle_2, h, caches);
  h = run_stage_layers(b, d.upsamples, h, caches);  // [N, dim, 1 or 4, 8h, 8w]
  h = norm_silu(b, d.head_0, h);
  return causal_conv(b, d.head_2, h, &caches.next());  // [N, 3, 1 or 4, 8h, 8w]
}

// Per-channel affine on x [N, C, T, h, w] in place: x[:, c] = (x[:, c] * mul[c]) + add[c], one scale() per channel.
void affine_per_channel(Backend& b, Tensor& x, const std::vector<float>& mul, const std::vector<float>& add) {
  for (int64_t c = 0; c < x.size(1); ++c) {
    Tensor channel = x.select(1, c);  // [N, T, h, w]
    b.scale(channel, mul[static_cast<size_t>(c)], add[static_cast<size_t>(c)], channel);
  }
}

void check_video_input(const Tensor& t, int64_t channels, const char* what) {
  if (t.dim() != 5)
    fail(ErrorCode::ShapeMismatch, what, ": expected a 5-D tensor [N, ", channels, ", T, H, W] but got ",
         t.shape_string());
  if (t.dtype() != DType::F32)
    fail(ErrorCode::UnsupportedDtype, what, ": expected F32 but got ", dtype_name(t.dtype()));
  if (t.size(1) != channels)
    fail(ErrorCode::ShapeMismatch, what, ": expected ", channels, " channels (dim 1) but got ", t.size(1), " in ",
         t.shape_string());
  if (t.size(0) <= 0 || t.size(2) <= 0 || t.size(3) <= 0 || t.size(4) <= 0)
    fail(ErrorCode::InvalidArgument, what, ": expected non-empty dimensions but got ", t.shape_string());
}

}  // namespace

// ---- WanVae ------------------------------------------------------------------------------------------------------

WanVae::WanVae(const weights::WeightFile& file, const WanVaeConfig& config, Backend& backend, WanVaeLayout layout)
    : config_(config), backend_(&backend) {
  if (layout != WanVaeLayout::Auto && layout != WanVaeLayout::ChannelsFirst && layout != WanVaeLayout::ChannelsLast)
    fail(ErrorCode::InvalidArgument, "WanVae: layout: expected Auto, ChannelsFirst or ChannelsLast but got ",
         static_cast<int>(layout));
  channels_last_ = layout == WanVaeLayout::ChannelsLast ||
                   (layout == WanVaeLayout::Auto && backend.prefers_channels_last_activations());
  activation_dtype_ = backend.preferred_conv_activation_dtype();
  if (activation_dtype_ != DType::F32 && activation_dtype_ != DType::BF16)
    fail(ErrorCode::UnsupportedDtype, "WanVae: the ", backend.name(), " backend prefers ",
         dtype_name(activation_dtype_), " conv activations; WanVae stores F32 or BF16");
  config_.validate();
  build_encoder(config_, encoder_);
  build_decoder(config_, decoder_);
  const int64_t top = config_.dim * config_.dim_mult.back();
  const int64_t z = config_.z_dim;

  WeightBinder binder;
  VaeBinder b{binder, channels_last_};
  bind_causal_conv(b, encoder_.conv1, "encoder.conv1", config_.dim, 3, 3, 3, 3);
  bind_stage_layers(b, encoder_.downsamples, "encoder.downsamples");
  bind_residual(b, encoder_.middle_0, "encoder.middle.0");
  bind_attention(b, encoder_.middle_1, "encoder.middle.1");
  bind_residual(b, encoder_.middle_2, "encoder.middle.2");
  bind_rms_norm(b, encoder_.head_0, "encoder.head.0", top, false);
  bind_causal_conv(b, encoder_.head_2, "encoder.head.2", 2 * z, top, 3, 3, 3);
  bind_causal_conv(b, conv1_, "conv1", 2 * z, 2 * z, 1, 1, 1);
  bind_causal_conv(b, conv2_, "conv2", z, z, 1, 1, 1);
  bind_causal_conv(b, decoder_.conv1, "decoder.conv1", top, z, 3, 3, 3);
  bind_residual(b, decoder_.middle_0, "decoder.middle.0");
  bind_attention(b, decoder_.middle_1, "decoder.middle.1");
  bind_residual(b, decoder_.middle_2, "decoder.middle.2");
  bind_stage_layers(b, decoder_.upsamples, "decoder.upsamples");
  bind_rms_norm(b, decoder_.head_0, "decoder.head.0", config_.dim, false);
  bind_causal_conv(b, decoder_.head_2, "decoder.head.2", 3, config_.dim, 3, 3, 3);
  binder.load_all(file, *backend_, "WanVae", "dim, z_dim, dim_mult, num_res_blocks, attn_scales, temperal_downsample");
}

WanVae::Posterior WanVae::encode_posterior(const Tensor& video) {
  Backend& b = *backend_;
  check_video_input(video, 3, "WanVae.encode: video");
  const int64_t N = video.size(0), T = video.size(2), H = video.size(3), W = video.size(4);
  const int64_t ts = config_.temporal_stride(), ss = config_.spatial_stride();
  if ((T - 1) % ts != 0)
    fail(ErrorCode::InvalidArgument, "WanVae.encode: video: expected 1 + ", ts, "k frames (1, ", 1 + ts, ", ",
         1 + 2 * ts, ", ...) but got ", T, " frames");
  if (H % ss != 0 || W % ss != 0)
    fail(ErrorCode::InvalidArgument, "WanVae.encode: video: expected height and width multiples of ", ss, " but got ",
         H, "x", W);
  const int64_t z = config_.z_dim, T_lat = 1 + (T - 1) / ts;
  const Tensor video_on_backend = b.to_device(video);

  // Encoder3d over chunks: frame 0 alone, then `ts` frames at a time (spec §3.1), concatenated along T.
  // [N, 2z, T', H/8, W/8]
  Tensor encoded = new_activation(b, {N, 2 * z, T_lat, H / ss, W / ss}, channels_last_, activation_dtype_);
  ChunkCaches caches;
  for (int64_t chunk = 0, first = 0; chunk < T_lat; ++chunk) {
    const int64_t frames = chunk == 0 ? 1 : ts;
    caches.begin_chunk(chunk + 1 == T_lat);
    Tensor x = frames_of(b, video_on_backend, first, frames, channels_last_, activation_dtype_);  // [N, 3, 1|4, H, W]
    Tensor out = encoder_forward(b, encoder_, x, caches);                // [N, 2z, 1, H/8, W/8]
    Tensor dst = encoded.slice(2, chunk, chunk + 1);
    b.copy(out, dst);
    first += frames;
  }
  Tensor moments = causal_conv(b, conv1_, encoded, nullptr);  // [N, 2z, T', H/8, W/8]
  Posterior posterior;
  posterior.mean = new_f32(b, {N, z, T_lat, H / ss, W / ss});  // [N, z, T', H/8, W/8]: mu.chunk(2, dim=1)[0]
  b.copy(moments.slice(1, 0, z), posterior.mean);
  posterior.logvar = new_f32(b, {N, z, T_lat, H / ss, W / ss});  // [N, z, T', H/8, W/8]
  b.copy(moments.slice(1, z, 2 * z), posterior.logvar);
  // z = (mu - mean) / std, as (mu + (-mean)) * (1 / std): two fp32 roundings, ~1 ulp from torch's division.
  std::vector<float> ones(static_cast<size_t>(z), 1.0f), zeros(static_cast<size_t>(z), 0.0f), neg_mean, inv_std;
  for (int64_t c = 0; c < z; ++c) {
    neg_mean.push_back(-config_.latents_mean[static_cast<size_t>(c)]);
    inv_std.push_back(1.0f / config_.latents_std[static_cast<size_t>(c)]);
  }
  affine_per_channel(b, posterior.mean, ones, neg_mean);
  affine_per_channel(b, posterior.mean, inv_std, zeros);
  posterior.mean = b.to_host(posterior.mean);
  posterior.logvar = b.to_host(posterior.logvar);
  return posterior;
}

Tensor WanVae::encode(const Tensor& video) { return encode_posterior(video).mean; }

Tensor WanVae::encode_sample(const Tensor& video, uint64_t seed) {
  Posterior posterior = encode_posterior(video);
  // Sampled on the host: the Backend has no exp, and the posterior is latent-sized (16 channels at 1/64 of the
  // pixels), so the round trip costs little next to the encoder.
  std::vector<float> mean = posterior.mean.to_f32_vector(), logvar = posterior.logvar.to_f32_vector();
  std::mt19937_64 rng(seed);
  constexpr double kTwoPi = 6.283185307179586476925286766559;
  constexpr double kInv2Pow53 = 1.0 / 9007199254740992.0;  // 2^-53
  double spare = 0.0;
  for (size_t i = 0; i < mean.size(); ++i) {
    double eps = spare;
    if (i % 2 == 0) {
      const double u1 = static_cast<double>((rng() >> 11) + 1) * kInv2Pow53;  // (0, 1]: log(u1) is finite
      const double u2 = static_cast<double>(rng() >> 11) * kInv2Pow53;        // [0, 1)
      const double r = std::sqrt(-2.0 * std::log(u1));
      eps = r * std::cos(kTwoPi * u2);
      spare = r * std::sin(kTwoPi * u2);
    }
    // DiagonalGaussianDistribution.sample: mean + std * eps with std = exp(0.5 * clamp(logvar, -30, 20)); here
    // `mean` is already normalised and std is not divided by latents_std (spec §3.1 quirk).
    const double std_dev = std::exp(0.5 * std::min(std::max(static_cast<double>(logvar[i]), -30.0), 20.0));
    mean[i] = static_cast<float>(mean[i] + std_dev * eps);
  }
  return Tensor::from_f32(posterior.mean.shape(), mean);  // [N, z_dim, T', H/8, W/8]
}

// ---- decode ------------------------------------------------------------------------------------------------------

namespace wan_vae {

std::vector<TileSpan> tile_spans(int64_t size, int64_t tile, int64_t overlap) {
  if (tile < 1 || overlap < 0 || overlap >= tile)
    fail(ErrorCode::InvalidArgument, "wan_vae::tile_spans: expected tile >= 1 and 0 <= overlap < tile but got tile ",
         tile, ", overlap ", overlap);
  if (size <= tile) return {TileSpan{0, size}};
  const int64_t stride = tile - overlap;
  const int64_t count = 1 + (size - tile + stride - 1) / stride;  // the fewest tiles whose overlaps are >= overlap
  std::vector<TileSpan> spans;
  for (int64_t i = 0; i < count; ++i) {
    const int64_t begin = i * (size - tile) / (count - 1);
    spans.push_back({begin, begin + tile});
  }
  return spans;
}

}  // namespace wan_vae

void WanVaeDecodeOptions::validate() const {
  if (tiling != Tiling::Auto && tiling != Tiling::Off && tiling != Tiling::On)
    fail(ErrorCode::InvalidArgument, "WanVaeDecodeOptions: tiling: expected Auto, Off or On but got ",
         static_cast<int>(tiling));
  if (tile_latent < 1)
    fail(ErrorCode::InvalidArgument, "WanVaeDecodeOptions: tile_latent: expected a positive number of latent pixels ",
         "but got ", tile_latent);
  if (overlap_latent < 0 || overlap_latent >= tile_latent)
    fail(ErrorCode::InvalidArgument, "WanVaeDecodeOptions: overlap_latent: expected 0 <= overlap_latent < ",
         "tile_latent (", tile_latent, ") but got ", overlap_latent);
  if (auto_max_bytes < 0)
    fail(ErrorCode::InvalidArgument, "WanVaeDecodeOptions: auto_max_bytes: expected a non-negative byte count but got ",
         auto_max_bytes);
}

int64_t WanVae::estimate_untiled_decode_bytes(const Shape& latent_shape) const {
  if (latent_shape.size() != 5)
    fail(ErrorCode::ShapeMismatch, "WanVae.estimate_untiled_decode_bytes: expected [N, z_dim, T, h, w] but got ",
         shape_to_string(latent_shape));
  const int64_t N = latent_shape[0], T = latent_shape[2], ss = config_.spatial_stride();
  const int64_t pixels = N * latent_shape[3] * ss * latent_shape[4] * ss;
  const int64_t frames_out = 1 + config_.temporal_stride() * (T - 1);
  // Bytes per output pixel per unit of dim (wan_vae.h): an image's single chunk ~4.5 floats (no caches recorded);
  // a video's caches (~24.6 floats) plus one 4-frame chunk (~18 floats). Plus the F32 RGB output itself.
  const int64_t per_dim = T == 1 ? 18 : 170;
  return pixels * (config_.dim * per_dim + 12 * frames_out);
}

int64_t WanVae::estimate_tiled_decode_bytes(const Shape& latent_shape, int64_t tile_latent,
                                            int64_t overlap_latent) const {
  if (latent_shape.size() != 5)
    fail(ErrorCode::ShapeMismatch, "WanVae.estimate_tiled_decode_bytes: expected [N, z_dim, T, h, w] but got ",
         shape_to_string(latent_shape));
  const int64_t N = latent_shape[0], T = latent_shape[2], h = latent_shape[3], w = latent_shape[4];
  const int64_t ss = config_.spatial_stride(), frames_out = 1 + config_.temporal_stride() * (T - 1);
  auto tiled_extent = [&](int64_t size) {  // latent pixels summed over the tiles along one axis
    int64_t total = 0, largest = 0;
    for (const TileSpan& span : tile_spans(size, tile_latent, overlap_latent)) {
      total += span.end - span.begin;
      largest = std::max(largest, span.end - span.begin);
    }
    return std::make_pair(total, largest);
  };
  const auto [rows_total, rows_largest] = tiled_extent(h);
  const auto [cols_total, cols_largest] = tiled_extent(w);
  const int64_t all_tiles_pixels = N * rows_total * ss * cols_total * ss;
  const int64_t one_tile_pixels = N * rows_largest * ss * cols_largest * ss;
  const int64_t output = N * h * ss * w * ss * 12 * frames_out;  // the F32 RGB clip
  // Per unit of dim (estimate_untiled_decode_bytes): an image ~18 bytes per pixel of its one chunk; a video ~98 of
  // caches per pixel of every tile plus ~72 of one chunk in flight.
  if (T == 1) return one_tile_pixels * config_.dim * 18 + output;
  return all_tiles_pixels * config_.dim * 98 + one_tile_pixels * config_.dim * 72 + output;
}

WanVae::DecodePlan WanVae::plan_decode(const Shape& latent_shape, const WanVaeDecodeOptions& options,
                                       int64_t available_bytes) const {
  DecodePlan plan;
  using Tiling = WanVaeDecodeOptions::Tiling;
  const int64_t untiled = estimate_untiled_decode_bytes(latent_shape);
  if (options.tiling == Tiling::Off) {
    plan.estimated_bytes = untiled;
    return plan;
  }
  plan.tiled = true;
  plan.tile_latent = options.tile_latent;
  plan.overlap_latent = options.overlap_latent;
  plan.estimated_bytes = estimate_tiled_decode_bytes(latent_shape, plan.tile_latent, plan.overlap_latent);
  if (options.tiling == Tiling::On) return plan;

  plan.budget_bytes = options.auto_max_bytes;
  if (available_bytes >= 0) plan.budget_bytes = std::min(plan.budget_bytes, available_bytes / 10 * 9);
  if (untiled <= plan.budget_bytes) {
    plan = DecodePlan{false, 0, 0, untiled, plan.budget_bytes};
    return plan;
  }
  // Smaller tiles shrink one tile's activations but add overlap, which a video's caches pay for on every tile: take
  // the first size that fits, else the one with the smallest estimate.
  constexpr int64_t kSmallestAutoTile = 8;
  DecodePlan best = plan;
  for (DecodePlan candidate = plan; candidate.estimated_bytes > candidate.budget_bytes &&
                                    candidate.tile_latent > kSmallestAutoTile;) {
    candidate.tile_latent = std::max(kSmallestAutoTile, candidate.tile_latent / 2);
    candidate.overlap_latent = std::max<int64_t>(1, candidate.tile_latent / 4);
    candidate.estimated_bytes =
        estimate_tiled_decode_bytes(latent_shape, candidate.tile_latent, candidate.overlap_latent);
    if (candidate.estimated_bytes < best.estimated_bytes) best = candidate;
  }
  return best;
}

namespace {

// Blend weights of each tile along one axis, in output pixels (latent span x stride): 1 inside, a linear ramp across
// each overlap with a neighbour ((x - a + 0.5) / L rising from the tile's begin a, (b - x - 0.5) / L falling to its
// end b, L = the overlap's length), then divided by the sum over tiles. With two tiles per overlap (the usual case)
// the ramps are already complementary and sum to 1; the division covers overlaps shared by three tiles.
std::vector<std::vector<float>> blend_weights(const std::vector<TileSpan>& spans, int64_t stride, int64_t size) {
  const size_t count = spans.size();
  std::vector<std::vector<double>> w(count);
  std::vector<double> total(static_cast<size_t>(size * stride), 0.0);
  for (size_t i = 0; i < count; ++i) {
    const int64_t a = spans[i].begin * stride, b = spans[i].end * stride;
    w[i].assign(static_cast<size_t>(b - a), 1.0);
    for (int64_t x = a; x < b; ++x) {
      double& v = w[i][static_cast<size_t>(x - a)];
      if (i > 0) {
        const int64_t prev_end = spans[i - 1].end * stride;  // the overlap with the previous tile is [a, prev_end)
        if (x < prev_end) v = std::min(v, (static_cast<double>(x - a) + 0.5) / static_cast<double>(prev_end - a));
      }
      if (i + 1 < count) {
        const int64_t next_begin = spans[i + 1].begin * stride;  // the overlap with the next tile is [next_begin, b)
        if (x >= next_begin) v = std::min(v, (static_cast<double>(b - x) - 0.5) / static_cast<double>(b - next_begin));
      }
      total[static_cast<size_t>(x)] += v;
    }
  }
  std::vector<std::vector<float>> out(count);
  for (size_t i = 0; i < count; ++i)
    for (int64_t x = spans[i].begin * stride; x < spans[i].end * stride; ++x)
      out[i].push_back(static_cast<float>(w[i][static_cast<size_t>(x - spans[i].begin * stride)] /
                                          total[static_cast<size_t>(x)]));
  return out;
}

// One spatial tile of the decode: its latent window and its own chunk caches (it is an independent causal stream).
struct DecodeTile {
  TileSpan rows, cols;  // latent pixels
  Tensor weight;        // [8*rows, 8*cols] F32: outer product of the per-axis blend weights
  ChunkCaches caches;
};

// chunk[..., tile] += pixels * tile.weight, where chunk [N, 3, Tc, 8h, 8w] accumulates the blended tiles and pixels
// [N, 3, Tc, 8th, 8tw] is the tile's decoded chunk (scaled in place).
void blend_tile_into(Backend& b, const DecodeTile& tile, int64_t stride, Tensor& pixels, Tensor& chunk) {
  b.mul(pixels, tile.weight, pixels);  // weight [8th, 8tw] broadcast over [N, 3, Tc]
  Tensor region = chunk.slice(3, tile.rows.begin * stride, tile.rows.end * stride)
                      .slice(4, tile.cols.begin * stride, tile.cols.end * stride);  // strided view into the chunk
  Tensor sum = b.empty(pixels.shape(), DType::F32);                                // [N, 3, Tc, 8th, 8tw]
  b.copy(region, sum);
  b.add(sum, pixels, sum);
  b.copy(sum, region);
}

}  // namespace

Tensor WanVae::decode(const Tensor& latent, const DecodedChunkCallback& on_chunk) {
  return decode(latent, WanVaeDecodeOptions{}, on_chunk);
}

Tensor WanVae::decode(const Tensor& latent, const WanVaeDecodeOptions& options, const DecodedChunkCallback& on_chunk) {
  Backend& b = *backend_;
  options.validate();
  const int64_t z = config_.z_dim;
  check_video_input(latent, z, "WanVae.decode: latent");
  const int64_t N = latent.size(0), T = latent.size(2), h = latent.size(3), w = latent.size(4);
  const int64_t ts = config_.temporal_stride(), ss = config_.spatial_stride();

  // mu_raw = z * std + mean, then conv2 over the whole clip (a 1x1x1 conv has no temporal extent).
  Tensor raw = new_f32(b, latent.shape());  // [N, z, T, h, w]
  b.copy(b.to_device(latent), raw);
  affine_per_channel(b, raw, config_.latents_std, config_.latents_mean);
  Tensor x = causal_conv(b, conv2_, in_layout(b, raw, channels_last_, activation_dtype_), nullptr);  // [N, z, T, h, w]

  // Auto asks the backend what it can still allocate (the CUDA backend: free device memory plus its pool's cache).
  const DecodePlan plan = plan_decode(latent.shape(), options,
                                      options.tiling == WanVaeDecodeOptions::Tiling::Auto ? b.available_memory_bytes()
                                                                                          : -1);
  const std::vector<TileSpan> row_spans = plan.tiled ? tile_spans(h, plan.tile_latent, plan.overlap_latent)
                                                     : std::vector<TileSpan>{{0, h}};
  const std::vector<TileSpan> col_spans = plan.tiled ? tile_spans(w, plan.tile_latent, plan.overlap_latent)
                                                     : std::vector<TileSpan>{{0, w}};
  const bool single_tile = row_spans.size() == 1 && col_spans.size() == 1;  // the reference's decode, exactly
  std::vector<DecodeTile> tiles;
  {
    const auto row_weights = blend_weights(row_spans, ss, h), col_weights = blend_weights(col_spans, ss, w);
    for (size_t r = 0; r < row_spans.size(); ++r)
      for (size_t c = 0; c < col_spans.size(); ++c) {
        DecodeTile tile;
        tile.rows = row_spans[r];
        tile.cols = col_spans[c];
        if (!single_tile) {
          const auto& wr = row_weights[r];
          const auto& wc = col_weights[c];
          std::vector<float> outer;
          outer.reserve(wr.size() * wc.size());
          for (float a : wr)
            for (float bb : wc) outer.push_back(a * bb);
          tile.weight = b.to_device(
              Tensor::from_f32({static_cast<int64_t>(wr.size()), static_cast<int64_t>(wc.size())}, outer));
        }
        tiles.push_back(std::move(tile));
      }
  }

  // Memory: the decoder's state between latent frames is only the per-conv frame caches (per tile); each chunk's
  // activations die inside decoder_forward, and the only tensor spanning all frames is the output itself.
  const int64_t frames_out = 1 + ts * (T - 1);
  Tensor decoded = new_f32(b, {N, 3, frames_out, h * ss, w * ss});  // [N, 3, 1+4(T-1), 8h, 8w]
  for (int64_t t = 0, first = 0; t < T; ++t) {
    Tensor chunk;  // [N, 3, 1 or 4, 8h, 8w]
    for (DecodeTile& tile : tiles) {
      tile.caches.begin_chunk(t + 1 == T);
      Tensor window = new_activation(b, {N, z, 1, tile.rows.end - tile.rows.begin, tile.cols.end - tile.cols.begin},
                                     channels_last_, activation_dtype_);
      b.copy(x.slice(2, t, t + 1).slice(3, tile.rows.begin, tile.rows.end).slice(4, tile.cols.begin, tile.cols.end),
             window);                                                     // [N, z, 1, th, tw]
      // [N, 3, 1 or 4, 8th, 8tw], contiguous F32 for the blending and clamping below (3 channels: a small copy)
      Tensor pixels = in_layout(b, decoder_forward(b, decoder_, window, tile.caches), false, DType::F32);
      if (single_tile) {
        chunk = pixels;
        break;
      }
      if (!chunk.defined()) chunk = b.to_device(Tensor::zeros({N, 3, pixels.size(2), h * ss, w * ss}, DType::F32));
      blend_tile_into(b, tile, ss, pixels, chunk);
    }
    b.clamp(chunk, -1.0f, 1.0f, chunk);
    const int64_t n = chunk.size(2);
    if (first + n > frames_out)
      fail(ErrorCode::Internal, "WanVae.decode: decoder produced more frames than ", frames_out);
    Tensor dst = decoded.slice(2, first, first + n);
    b.copy(chunk, dst);
    if (on_chunk) on_chunk(b.to_host(chunk), first);
    first += n;
  }
  return b.to_host(decoded);
}

}  // namespace showo2
