// The backend interface: every numeric operation the model code needs, and nothing model-specific.
//
// Model components (qwen2, siglip, wan_vae, flow_head, ...) call only these operations, so the same model code runs on
// the CPU backend (native/core/cpu/) and the CUDA backend (cuda/). Each operation documents its layouts; backends
// validate arguments and throw showo2::Error (never abort). Outputs are written into caller-provided tensors so model
// code controls allocation; `out` may alias an input only where an op says so.
//
// Precision contract (CPU): activations are F32; weights may be F32, BF16 or F16 and are widened in registers;
// accumulation is F32.
#pragma once

#include <cstdint>
#include <string>

#include "omni_mask.h"
#include "tensor.h"

namespace showo2 {

enum class GeluApproximation { None, Tanh };  // exact erf form (nn.GELU()) / tanh form (gelu_pytorch_tanh)

struct Conv2dParams {
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;  // zero padding
};

struct Conv3dParams {
  int64_t stride_t = 1, stride_h = 1, stride_w = 1;
  // Zero padding per side. The Wan VAE's causal conv uses pad_front = 2 (k=3), pad_back = 0 (spec §3.1).
  int64_t pad_front = 0, pad_back = 0, pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
};

// What conv3d_fused reads and adds around a plain conv3d (the Wan VAE's causal convs, spec §3.1). Each fusion saves
// a full pass over the activations on the GPU; the default implementation composes the unfused ops.
struct ConvFusion {
  static constexpr int kMaxHistory = 2;  // a k=3 causal conv keeps CACHE_T = 2 frames
  // Frames placed in front of x along T, oldest first: a causal conv's cached input (its frame ring, so the conv
  // reads the cache where it lies instead of from a concatenated copy). Each is [N, C, 1, H, W] F32 with x's N, C,
  // H, W; any strides across N and C, each frame's H x W plane contiguous. history_count in [0, kMaxHistory].
  Tensor history[kMaxHistory];
  int history_count = 0;
  // true: x is read as nn.Upsample(scale_factor=2, mode='nearest-exact') of itself in H and W (the VAE upsampler's
  // conv input), so the conv sees [N, C, T, 2H, 2W] without it being written. Not combined with history.
  bool upsample2x = false;
  // Added to the output when defined (a residual block's shortcut): [N, O, To, Ho, Wo] F32 contiguous, not
  // overlapping out.
  Tensor residual;
};

// Precomputed rotary tables (see rope.h): cos/sin of shape [max_positions, head_dim/2], F32.
struct RopeTable;

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;

  // ---- memory ---------------------------------------------------------------------------------------------------
  // Where this backend's tensors live. Model code never dereferences a tensor it got from the backend; it moves data
  // across with to_device / to_host. On the CPU backend all of these are plain host operations (no copies).
  virtual Device device() const { return Device::Cpu; }
  // A new contiguous tensor in this backend's memory (uninitialised).
  virtual Tensor empty(const Shape& shape, DType dtype) { return Tensor::empty(shape, dtype); }
  // This backend's copy of a model weight (host tensor, any float dtype as stored). The CUDA backend uploads it
  // once, converted to its weight dtype (bf16 by default; fp16 as an option; F32 kept for norms and biases as the
  // spec's numerics ask), and returns the device tensor. The CPU backend returns it unchanged (widened in registers).
  virtual Tensor upload_weight(const Tensor& host) { return host; }
  // This backend's copy of a host activation (same dtype). CPU: returns it unchanged.
  virtual Tensor to_device(const Tensor& host) { return host; }
  // A host copy of a tensor of this backend. CPU: returns it unchanged.
  virtual Tensor to_host(const Tensor& t) { return t; }
  // Waits for all queued work (the CUDA backend runs asynchronously on one stream). CPU: nothing to wait for.
  virtual void synchronize() {}

  // out[..., N] = x[..., K] · weight[N, K]^T (+ bias[N]). x/out F32 with contiguous last dim; weight F32/BF16/F16
  // contiguous; bias (may be undefined) F32/BF16/F16.
  virtual void linear(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& out) = 0;

  // out[b] = a[b] · (transpose_b ? b[b]^T : b[b]). a [B,M,K], b [B,K,N] or [B,N,K], out [B,M,N]; F32; B may be 1 for
  // b to broadcast.
  virtual void matmul(const Tensor& a, const Tensor& b, bool transpose_b, Tensor& out) = 0;

  // Scaled dot-product attention with grouped KV heads and a prefix-per-row mask (omni_mask.h). Never materialises
  // the Lq x Lk score matrix.
  //   q [B, Lq, Hq, D], k [B, Lk, Hkv, D], v [B, Lk, Hkv, Dv], out [B, Lq, Hq, Dv]; F32; last dims contiguous;
  //   Hq % Hkv == 0 (query head h uses kv head h / (Hq/Hkv)).
  // A query row that may see no key at all writes zeros.
  virtual void attention(const Tensor& q, const Tensor& k, const Tensor& v, const OmniMask& mask, float scale,
                         Tensor& out) = 0;

  // x [N, C, H, W], weight [O, C, kh, kw] (F32/BF16/F16), bias [O] or undefined, out [N, O, Ho, Wo]; F32 contiguous.
  virtual void conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& p,
                      Tensor& out) = 0;
  // x [N, C, T, H, W], weight [O, C, kt, kh, kw], bias [O] or undefined, out [N, O, To, Ho, Wo]; F32 contiguous.
  virtual void conv3d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv3dParams& p,
                      Tensor& out) = 0;

  // conv3d over the input ConvFusion describes, plus its residual:
  //   out = conv3d(cat([history..., up(x)], T), weight, bias, p) + residual
  // with up = nearest-exact 2x upsampling when f.upsample2x, else identity. p's padding applies to that logical input
  // (a causal conv with h history frames passes pad_front = kt - 1 - h). x [N, C, T, H, W] F32, the rest as conv3d;
  // unlike conv3d, x, out, residual and history may be channels-last instead of contiguous (all of them alike: memory
  // [N, T, H, W, C], PyTorch's channels_last_3d), and weight may be channels-last (memory [O, kt, kh, kw, C]) whatever
  // the activations' layout. Invalid arguments are ERR_SHAPE_MISMATCH / ERR_INVALID_ARGUMENT naming the field
  // (backend_checks.h). The default composes upsample_nearest2x, copy, conv3d and add on contiguous tensors
  // (channels-last operands are copied to contiguous ones and the result back: the CPU backend computes the same
  // arithmetic in either layout, bit for bit); the CUDA backend reads history, upsampled input and residual inside the
  // conv kernel, in either layout.
  virtual void conv3d_fused(const Tensor& x, const ConvFusion& f, const Tensor& weight, const Tensor& bias,
                            const Conv3dParams& p, Tensor& out);

  // Whether models with convolutional activations (WanVae) should lay them out channels-last (memory [N, T, H, W, C])
  // on this backend: true where its conv kernels run fastest that way. CPU: false.
  virtual bool prefers_channels_last_activations() const { return false; }

  // The dtype models with convolutional activations (WanVae) should store them in on this backend: F32, or BF16
  // where the backend's conv3d_fused, channel_rms_norm(_silu) and copy take BF16 activations (copy converting to and
  // from F32). CPU: F32 (its ops take F32 only).
  virtual DType preferred_conv_activation_dtype() const { return DType::F32; }

  // Bytes this backend could still allocate for activations, or -1 when it does not know (the CPU backend). The CUDA
  // backend counts the device's free memory and its pool's cached free blocks. WanVae's automatic tiling uses it.
  virtual int64_t available_memory_bytes() { return -1; }

  // Normalisations over the last dimension (size C). weight/bias [C] F32/BF16/F16 (weight may be undefined = 1).
  // out may alias x.
  //   rms_norm:   y = x / sqrt(mean(x^2) + eps) * weight
  //   layer_norm: y = (x - mean) / sqrt(var + eps) * weight + bias      (biased variance)
  virtual void rms_norm(const Tensor& x, const Tensor& weight, float eps, Tensor& out) = 0;
  virtual void layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps, Tensor& out) = 0;

  // Rotate-half RoPE in place on x [B, L, H, D] (F32, last dim contiguous): pairs (i, i + D/2) rotate by the angle of
  // position (position_offset + l).
  virtual void rope(Tensor& x, const RopeTable& table, int64_t position_offset) = 0;

  // Elementwise activations; out may alias x. Same shape, F32.
  virtual void silu(const Tensor& x, Tensor& out) = 0;
  virtual void gelu(const Tensor& x, GeluApproximation approximation, Tensor& out) = 0;
  // Softmax over the last dimension, numerically stable; out may alias x.
  virtual void softmax(const Tensor& x, Tensor& out) = 0;

  // out[i, :] = table[ids[i], :]. ids I32/I64 [N], table [V, C] F32/BF16/F16, out [N, C] F32.
  // An id outside [0, V) is ERR_INVALID_ARGUMENT naming the position and value.
  virtual void embedding(const Tensor& ids, const Tensor& table, Tensor& out) = 0;

  // Elementwise binary ops. b has a's shape or a suffix of it (broadcast over leading dims). F32. out may alias a.
  virtual void add(const Tensor& a, const Tensor& b, Tensor& out) = 0;
  virtual void mul(const Tensor& a, const Tensor& b, Tensor& out) = 0;
  // out = x * alpha + beta. out may alias x.
  virtual void scale(const Tensor& x, float alpha, float beta, Tensor& out) = 0;
  // out = min(max(x, lo), hi) (a NaN stays NaN, as torch.clamp). Same shape, F32, last dim contiguous; out may alias x.
  virtual void clamp(const Tensor& x, float lo, float hi, Tensor& out) = 0;

  // dst[i...] = src[i...] for same-shape F32 views with arbitrary strides on both sides (frame caches, concatenation
  // along T into a slice of a larger tensor, NCTHW <-> token-major layout changes). src and dst must not overlap
  // unless they are the same view (ERR_INVALID_ARGUMENT). A backend whose preferred_conv_activation_dtype is BF16 also
  // copies BF16 views and converts between F32 and BF16 (rounding to nearest even); the CPU backend takes F32 only
  // (ERR_UNSUPPORTED_DTYPE).
  virtual void copy(const Tensor& src, Tensor& dst) = 0;

  // The Wan VAE's RMS_norm over the channel axis (spec §3.1; F.normalize(x, dim=1) * sqrt(C) * gamma):
  //   y[n, c, s] = x[n, c, s] / max(sqrt(sum_c x[n, c, s]^2), 1e-12) * sqrt(C) * gamma[c]
  // x, out [N, C, S...] (zero or more trailing dims) F32, same shape, both contiguous or both channels-last
  // (Tensor::is_channels_last: the VAE's activations on the GPU); gamma [C] F32/BF16/F16. out may alias x.
  virtual void channel_rms_norm(const Tensor& x, const Tensor& gamma, Tensor& out) = 0;
  // silu(channel_rms_norm(x)): the pair every VAE residual block and head runs (spec §3.1). Same arguments and
  // aliasing as channel_rms_norm. The default runs the two ops; the GPU fuses them (one read and one write of the
  // activations instead of two of each).
  virtual void channel_rms_norm_silu(const Tensor& x, const Tensor& gamma, Tensor& out) {
    channel_rms_norm(x, gamma, out);
    Tensor flat = out.memory_order_view();  // silu wants a contiguous last dim; out may be channels-last
    silu(flat, flat);
  }

  // ---- fused operations (one kernel each on the GPU; spec §12 numerics: modulation in fp32) -----------------------
  // SwiGLU's elementwise part: out = silu(gate) * up. Same shapes, F32, last dim contiguous; out may alias gate/up.
  virtual void swiglu(const Tensor& gate, const Tensor& up, Tensor& out) = 0;
  // adaLN modulation with per-row groups: x, out [R, C] F32 (last dim contiguous; out may alias x);
  // shift, scale [G, C] F32; row_group I32 [R] with values in [-1, G):
  //   out[r] = x[r] * (1 + scale[g]) + shift[g]     where g = row_group[r] >= 0,
  //   out[r] = x[r]                                 where row_group[r] == -1 (identity modulation, spec §6.2).
  virtual void modulate(const Tensor& x, const Tensor& shift, const Tensor& scale, const Tensor& row_group,
                        Tensor& out) = 0;
  // Gated residual: h[r] += gate[g] * y[r] (g = row_group[r]; gate 1 where row_group[r] == -1). h, y [R, C] F32;
  // gate [G, C] F32; row_group I32 [R]. y may alias nothing in h.
  virtual void gated_residual(Tensor& h, const Tensor& y, const Tensor& gate, const Tensor& row_group) = 0;
  // One Euler step of the flow ODE with classifier-free guidance (spec §7.2):
  //   x += dt * (v_uncond + g * (v_cond - v_uncond))      (v_uncond undefined: x += dt * v_cond)
  // x, v_cond, v_uncond same shape, F32 contiguous.
  virtual void flow_euler_update(Tensor& x, const Tensor& v_cond, const Tensor& v_uncond, float guidance,
                                 float dt) = 0;

  // Nearest-neighbour 2x upsampling of the last two dims (H, W): out[..., h, w] = x[..., h / 2, w / 2].
  // x [N, C, H, W] or [N, C, T, H, W], out [..., 2H, 2W]; F32 contiguous. (PyTorch's 'nearest' and 'nearest-exact'
  // agree for an exact factor of 2: floor((h + 0.5) / 2) = floor(h / 2).)
  virtual void upsample_nearest2x(const Tensor& x, Tensor& out) = 0;

 protected:
  // The default conv3d_fused on channels-last operands: contiguous copies in, the contiguous composition, the result
  // copied back into out's layout.
  void conv3d_fused_via_contiguous(const Tensor& x, const ConvFusion& f, const Tensor& weight, const Tensor& bias,
                                   const Conv3dParams& p, Tensor& out);
};

}  // namespace showo2
