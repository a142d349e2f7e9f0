// CudaBackend::attention, conv2d and conv3d: the device rule, the ops' shared argument contracts (backend_checks.h)
// and the kernels' own size limits, then the launchers of cuda/attention.cu and cuda/conv.cu on the backend's stream.
//
// Accepted beyond the CPU backend: attention's q, k and v may also be BF16 (all three alike; out stays F32).
// The omni mask travels inside the kernel parameters (attention.h), so there is nothing to upload or cache per call
// and a launch captured into a CUDA graph carries its mask; a batch whose block lists do not fit one launch is split
// into several launches over consecutive samples.
#include <algorithm>
#include <cstdint>
#include <limits>

#include "attention.h"
#include "attention_decode.h"
#include "backend_checks.h"
#include "conv.h"
#include "cuda_backend.h"
#include "cuda_backend_impl.h"
#include "cuda_check.h"

namespace showo2::cuda {

namespace {

constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();
constexpr int64_t kGridYZMax = 65535;

void check_fits_int32(int64_t value, const char* op, const char* what) {
  SHOWO2_CHECK(value <= kInt32Max, InvalidArgument, op, ": ", what, " ", value,
               " is larger than the CUDA kernels' 32-bit limit");
}

ConvWeightType conv_weight_type(DType dtype) {
  switch (dtype) {
    case DType::BF16: return ConvWeightType::BF16;
    case DType::F16: return ConvWeightType::F16;
    default: return ConvWeightType::F32;
  }
}

// The launch parameters of a checked convolution (check_conv*_args), after the kernels' own size limits.
ConvParams conv_params(const Tensor& x, const Tensor& weight, const Tensor& bias, const ConvShape& s, Tensor& out,
                       const char* op) {
  const Conv3dParams& p = s.p;
  const int64_t N = s.N, C = s.C, T = s.T, H = s.H, W = s.W, O = s.O, KT = s.KT, KH = s.KH, KW = s.KW;
  // The kernels index sizes with 32-bit ints (element offsets are 64-bit) and put N * To on the grid's z axis.
  for (int64_t v : {N, C, T, H, W, O, KT, KH, KW, s.Ho * s.Wo, C * KT * KH * KW}) check_fits_int32(v, op, "a size");
  for (int64_t v : {p.stride_t, p.stride_h, p.stride_w, p.pad_front, p.pad_back, p.pad_top, p.pad_bottom, p.pad_left,
                    p.pad_right})
    check_fits_int32(v, op, "a stride or padding");
  SHOWO2_CHECK(N * s.To <= kGridYZMax, InvalidArgument, op, ": N * To = ", N * s.To, " output frames exceed ",
               kGridYZMax, " (one grid row per frame)");

  ConvParams c;
  c.N = static_cast<int32_t>(N), c.C = static_cast<int32_t>(C), c.T = static_cast<int32_t>(T);
  c.H = static_cast<int32_t>(H), c.W = static_cast<int32_t>(W), c.O = static_cast<int32_t>(O);
  c.KT = static_cast<int32_t>(KT), c.KH = static_cast<int32_t>(KH), c.KW = static_cast<int32_t>(KW);
  c.To = static_cast<int32_t>(s.To), c.Ho = static_cast<int32_t>(s.Ho), c.Wo = static_cast<int32_t>(s.Wo);
  c.stride_t = static_cast<int32_t>(p.stride_t), c.stride_h = static_cast<int32_t>(p.stride_h);
  c.stride_w = static_cast<int32_t>(p.stride_w);
  c.pad_front = static_cast<int32_t>(p.pad_front), c.pad_back = static_cast<int32_t>(p.pad_back);
  c.pad_top = static_cast<int32_t>(p.pad_top), c.pad_bottom = static_cast<int32_t>(p.pad_bottom);
  c.pad_left = static_cast<int32_t>(p.pad_left), c.pad_right = static_cast<int32_t>(p.pad_right);
  c.weight_type = conv_weight_type(weight.dtype());
  c.channels_last = s.channels_last;
  c.weight_channels_last = s.weight_channels_last;
  c.activation_type = s.activation_dtype == DType::BF16 ? ConvActivationType::BF16 : ConvActivationType::F32;
  if (out.numel() == 0) return c;  // nothing to read or write; the pointers stay null
  c.x = x.device_raw();
  c.weight = weight.device_raw();
  if (bias.defined()) {
    c.bias = bias.device_raw();
    c.bias_type = conv_weight_type(bias.dtype());
  }
  c.out = out.mutable_device_raw();
  return c;
}

}  // namespace

// ---- attention ----------------------------------------------------------------------------------------------------

void CudaBackend::attention(const Tensor& q, const Tensor& k, const Tensor& v, const OmniMask& mask, float scale,
                            Tensor& out) {
  impl().activate();
  require_device_operands({{&q, "attention: q"}, {&k, "attention: k"}, {&v, "attention: v"}, {&out, "attention: out"}});
  const AttentionShape s = check_attention_args(q, k, v, mask, scale, out, AttentionInputs::F32OrBF16);
  const int64_t B = s.B, Lq = s.Lq, Lk = s.Lk, Hq = s.Hq, Hkv = s.Hkv, D = s.D, Dv = s.Dv;
  for (int64_t size : {Lq, Lk, D, Dv, Lq + mask.query_offset()}) check_fits_int32(size, "attention", "a length");
  SHOWO2_CHECK(Hq <= kGridYZMax, InvalidArgument, "attention: ", Hq, " query heads exceed ", kGridYZMax);
  if (B == 0 || Lq == 0 || Hq == 0 || Dv == 0) return;

  AttentionParams p;
  p.input_type = q.dtype() == DType::BF16 ? AttentionInputType::BF16 : AttentionInputType::F32;
  p.q_batch_stride = q.stride(0), p.q_row_stride = q.stride(1), p.q_head_stride = q.stride(2);
  p.k_batch_stride = k.stride(0), p.k_row_stride = k.stride(1), p.k_head_stride = k.stride(2);
  p.v_batch_stride = v.stride(0), p.v_row_stride = v.stride(1), p.v_head_stride = v.stride(2);
  p.out_batch_stride = out.stride(0), p.out_row_stride = out.stride(1), p.out_head_stride = out.stride(2);
  p.num_queries = static_cast<int32_t>(Lq);
  p.num_keys = static_cast<int32_t>(Lk);
  p.num_heads = static_cast<int32_t>(Hq);
  p.num_kv_heads = static_cast<int32_t>(Hkv);
  p.head_dim = static_cast<int32_t>(D);
  p.value_dim = static_cast<int32_t>(Dv);
  p.scale = scale;
  p.variant = AttentionVariant::Auto;  // split-KV decoding, BF16 tensor cores (v3) or v2, whichever applies
  // Decoding a few rows over a long cache splits the keys over thread blocks; the partial results need scratch,
  // sized for the first (largest) launch and released in stream order when this op returns.
  Tensor split_workspace;
  {
    AttentionParams first = p;
    first.batch = static_cast<int32_t>(std::min<int64_t>(B, kGridYZMax));
    const int splits = attention_split_count(first);
    if (splits > 1) {
      const size_t floats = attention_split_workspace_floats(first, splits);
      split_workspace = impl().empty({static_cast<int64_t>(floats)}, DType::F32);
      p.split_workspace = static_cast<float*>(split_workspace.mutable_device_raw());
      p.split_workspace_floats = floats;
    }
  }
  const size_t in_size = dtype_size(q.dtype());
  const auto* q_base = static_cast<const uint8_t*>(q.device_raw());
  const auto* k_base = Lk > 0 ? static_cast<const uint8_t*>(k.device_raw()) : nullptr;
  const auto* v_base = Lk > 0 ? static_cast<const uint8_t*>(v.device_raw()) : nullptr;
  auto* out_base = static_cast<float*>(out.mutable_device_raw());

  // One launch per run of samples whose block lists fit AttentionMask (every sample at once in practice).
  for (int64_t b0 = 0; b0 < B;) {
    const int64_t n = std::min<int64_t>(fill_attention_mask(mask, b0, B, &p.mask), kGridYZMax);
    p.batch = static_cast<int32_t>(n);
    p.q = q_base + static_cast<size_t>(b0 * q.stride(0)) * in_size;
    p.k = k_base ? k_base + static_cast<size_t>(b0 * k.stride(0)) * in_size : nullptr;
    p.v = v_base ? v_base + static_cast<size_t>(b0 * v.stride(0)) * in_size : nullptr;
    p.out = out_base + b0 * out.stride(0);
    SHOWO2_CUDA_CHECK(launch_attention(p, stream()));
    b0 += n;
  }
}

// ---- convolutions -------------------------------------------------------------------------------------------------

void CudaBackend::conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& p,
                         Tensor& out) {
  impl().activate();
  require_device_operands(
      {{&x, "conv2d: x"}, {&weight, "conv2d: weight"}, {&bias, "conv2d: bias"}, {&out, "conv2d: out"}});
  ConvParams c = conv_params(x, weight, bias, check_conv2d_args(x, weight, bias, p, out), out, "conv2d");
  if (out.numel() == 0) return;
  c.variant = impl().conv_dtype == DType::BF16 ? ConvVariant::TensorCore : ConvVariant::Tiled;
  SHOWO2_CUDA_CHECK(launch_conv(c, stream()));
}

void CudaBackend::conv3d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv3dParams& p,
                         Tensor& out) {
  impl().activate();
  require_device_operands(
      {{&x, "conv3d: x"}, {&weight, "conv3d: weight"}, {&bias, "conv3d: bias"}, {&out, "conv3d: out"}});
  ConvParams c = conv_params(x, weight, bias, check_conv3d_args(x, weight, bias, p, out), out, "conv3d");
  if (out.numel() == 0) return;
  c.variant = impl().conv_dtype == DType::BF16 ? ConvVariant::TensorCore : ConvVariant::Tiled;
  SHOWO2_CUDA_CHECK(launch_conv(c, stream()));
}

void CudaBackend::conv3d_fused(const Tensor& x, const ConvFusion& f, const Tensor& weight, const Tensor& bias,
                               const Conv3dParams& p, Tensor& out) {
  impl().activate();
  require_device_operands({{&x, "conv3d_fused: x"},
                           {&f.history[0], "conv3d_fused: fusion.history[0]"},
                           {&f.history[1], "conv3d_fused: fusion.history[1]"},
                           {&f.residual, "conv3d_fused: fusion.residual"},
                           {&weight, "conv3d_fused: weight"},
                           {&bias, "conv3d_fused: bias"},
                           {&out, "conv3d_fused: out"}});
  ConvParams c = conv_params(x, weight, bias, check_conv3d_fused_args(x, f, weight, bias, p, out), out, "conv3d_fused");
  if (out.numel() == 0) return;
  static_assert(ConvParams::kMaxHistory == ConvFusion::kMaxHistory, "one history limit");
  c.history_frames = f.history_count;
  for (int i = 0; i < f.history_count; ++i) {
    c.history[i] = f.history[i].device_raw();
    c.history_stride_n[i] = f.history[i].stride(0);
    c.history_stride_c[i] = f.history[i].stride(1);
  }
  c.upsample2x = f.upsample2x;
  if (f.residual.defined()) c.residual = f.residual.device_raw();
  // BF16 activations run on the tensor cores whatever conv_dtype says (v1/v2 read F32 only).
  c.variant = impl().conv_dtype == DType::BF16 || c.activation_type == ConvActivationType::BF16
                  ? ConvVariant::TensorCore
                  : ConvVariant::Tiled;
  SHOWO2_CUDA_CHECK(launch_conv(c, stream()));
}

}  // namespace showo2::cuda
