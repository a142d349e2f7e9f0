// CudaBackend::attention, conv2d and conv3d: the CPU backend's argument checks (native/core/cpu/attention.cpp,
// conv.cpp) on Device::Cuda tensors, then the launchers of cuda/attention.cu and cuda/conv.cu on the backend's stream.
//
// Accepted beyond the CPU backend: attention's q, k and v may also be BF16 (all three alike; out stays F32).
// The omni mask travels inside the kernel parameters (attention.h), so there is nothing to upload or cache per call
// and a launch captured into a CUDA graph carries its mask; a batch whose block lists do not fit one launch is split
// into several launches over consecutive samples.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "attention.h"
#include "conv.h"
#include "cuda_backend.h"
#include "cuda_backend_impl.h"
#include "cuda_check.h"

namespace showo2::cuda {

namespace {

constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();
constexpr int64_t kGridYZMax = 65535;

// Whether two tensors share memory: same storage and overlapping spans from their first to their last element.
bool storage_ranges_overlap(const Tensor& a, const Tensor& b) {
  if (a.storage() != b.storage() || a.numel() == 0 || b.numel() == 0) return false;
  auto extent_bytes = [](const Tensor& t) {
    int64_t last = 0;
    for (int64_t d = 0; d < t.dim(); ++d) last += (t.size(d) - 1) * t.stride(d);
    return static_cast<size_t>(last + 1) * dtype_size(t.dtype());
  };
  const size_t a0 = a.byte_offset(), a1 = a0 + extent_bytes(a);
  const size_t b0 = b.byte_offset(), b1 = b0 + extent_bytes(b);
  return a0 < b1 && b0 < a1;
}

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

// ---- convolution argument checks (the CPU backend's, plus the device) ----------------------------------------------

int64_t conv_output_size(int64_t in, int64_t pad_a, int64_t pad_b, int64_t k, int64_t stride, const char* op,
                         const char* axis) {
  const int64_t padded = in + pad_a + pad_b;
  if (padded < k)
    fail(ErrorCode::ShapeMismatch, op, ": x: padded ", axis, " size ", padded, " is smaller than the kernel's ", k);
  return (padded - k) / stride + 1;
}

ConvParams validate_conv(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv3dParams& p,
                         Tensor& out, int spatial_dims, const char* op) {
  const std::string name = op;
  const int64_t rank = spatial_dims + 2;
  check_device(x, Device::Cuda, (name + ": x").c_str());
  check_dtype(x, DType::F32, (name + ": x").c_str());
  check_dim(x, rank, (name + ": x").c_str());
  check_contiguous(x, (name + ": x").c_str());
  check_device(weight, Device::Cuda, (name + ": weight").c_str());
  check_float(weight, (name + ": weight").c_str());
  check_dim(weight, rank, (name + ": weight").c_str());
  check_contiguous(weight, (name + ": weight").c_str());

  const int64_t strides[3] = {p.stride_t, p.stride_h, p.stride_w};
  const char* stride_names[3] = {"stride_t", "stride_h", "stride_w"};
  for (int i = 3 - spatial_dims; i < 3; ++i)
    if (strides[i] < 1)
      fail(ErrorCode::InvalidArgument, op, ": params.", stride_names[i], ": expected >= 1 but got ", strides[i]);
  const int64_t pads[6] = {p.pad_front, p.pad_back, p.pad_top, p.pad_bottom, p.pad_left, p.pad_right};
  const char* pad_names[6] = {"pad_front", "pad_back", "pad_top", "pad_bottom", "pad_left", "pad_right"};
  for (int i = 0; i < 6; ++i)
    if (pads[i] < 0)
      fail(ErrorCode::InvalidArgument, op, ": params.", pad_names[i], ": expected >= 0 but got ", pads[i]);

  const int64_t N = x.size(0), C = x.size(1), T = spatial_dims == 3 ? x.size(2) : 1, H = x.size(-2), W = x.size(-1);
  const int64_t O = weight.size(0), KT = spatial_dims == 3 ? weight.size(2) : 1, KH = weight.size(-2),
                KW = weight.size(-1);
  if (weight.size(1) != C)
    fail(ErrorCode::ShapeMismatch, op, ": weight: expected ", C, " input channels (x ", x.shape_string(),
         ") but weight ", weight.shape_string(), " has ", weight.size(1));
  if (O < 1 || KT < 1 || KH < 1 || KW < 1 || C < 1)
    fail(ErrorCode::ShapeMismatch, op, ": weight: every dimension must be >= 1 but got ", weight.shape_string());
  if (bias.defined()) {
    check_device(bias, Device::Cuda, (name + ": bias").c_str());
    check_float(bias, (name + ": bias").c_str());
    check_shape(bias, {O}, (name + ": bias").c_str());
    check_contiguous(bias, (name + ": bias").c_str());
  }
  const int64_t To = conv_output_size(T, p.pad_front, p.pad_back, KT, p.stride_t, op, "time");
  const int64_t Ho = conv_output_size(H, p.pad_top, p.pad_bottom, KH, p.stride_h, op, "height");
  const int64_t Wo = conv_output_size(W, p.pad_left, p.pad_right, KW, p.stride_w, op, "width");

  check_device(out, Device::Cuda, (name + ": out").c_str());
  check_dtype(out, DType::F32, (name + ": out").c_str());
  const Shape expected = spatial_dims == 3 ? Shape{N, O, To, Ho, Wo} : Shape{N, O, Ho, Wo};
  check_shape(out, expected, (name + ": out").c_str());
  check_contiguous(out, (name + ": out").c_str());
  check_writable(out, (name + ": out").c_str());
  if (storage_ranges_overlap(out, x)) fail(ErrorCode::InvalidArgument, op, ": out: must not overlap x");

  // The kernels index sizes with 32-bit ints (element offsets are 64-bit) and put N * To on the grid's z axis.
  for (int64_t v : {N, C, T, H, W, O, KT, KH, KW, Ho * Wo, C * KT * KH * KW}) check_fits_int32(v, op, "a size");
  for (int64_t v : {p.stride_t, p.stride_h, p.stride_w, p.pad_front, p.pad_back, p.pad_top, p.pad_bottom, p.pad_left,
                    p.pad_right})
    check_fits_int32(v, op, "a stride or padding");
  SHOWO2_CHECK(N * To <= kGridYZMax, InvalidArgument, op, ": N * To = ", N * To, " output frames exceed ",
               kGridYZMax, " (one grid row per frame)");

  ConvParams c;
  c.N = static_cast<int32_t>(N), c.C = static_cast<int32_t>(C), c.T = static_cast<int32_t>(T);
  c.H = static_cast<int32_t>(H), c.W = static_cast<int32_t>(W), c.O = static_cast<int32_t>(O);
  c.KT = static_cast<int32_t>(KT), c.KH = static_cast<int32_t>(KH), c.KW = static_cast<int32_t>(KW);
  c.To = static_cast<int32_t>(To), c.Ho = static_cast<int32_t>(Ho), c.Wo = static_cast<int32_t>(Wo);
  c.stride_t = static_cast<int32_t>(p.stride_t), c.stride_h = static_cast<int32_t>(p.stride_h);
  c.stride_w = static_cast<int32_t>(p.stride_w);
  c.pad_front = static_cast<int32_t>(p.pad_front), c.pad_back = static_cast<int32_t>(p.pad_back);
  c.pad_top = static_cast<int32_t>(p.pad_top), c.pad_bottom = static_cast<int32_t>(p.pad_bottom);
  c.pad_left = static_cast<int32_t>(p.pad_left), c.pad_right = static_cast<int32_t>(p.pad_right);
  c.weight_type = conv_weight_type(weight.dtype());
  if (out.numel() == 0) return c;  // nothing to read or write; the pointers stay null
  c.x = static_cast<const float*>(x.device_raw());
  c.weight = weight.device_raw();
  if (bias.defined()) {
    c.bias = bias.device_raw();
    c.bias_type = conv_weight_type(bias.dtype());
  }
  c.out = static_cast<float*>(out.mutable_device_raw());
  return c;
}

Conv3dParams as_conv3d(const Conv2dParams& p2) {
  Conv3dParams p;
  p.stride_h = p2.stride_h;
  p.stride_w = p2.stride_w;
  p.pad_top = p2.pad_top;
  p.pad_bottom = p2.pad_bottom;
  p.pad_left = p2.pad_left;
  p.pad_right = p2.pad_right;
  return p;
}

}  // namespace

// ---- attention ----------------------------------------------------------------------------------------------------

void CudaBackend::attention(const Tensor& q, const Tensor& k, const Tensor& v, const OmniMask& mask, float scale,
                            Tensor& out) {
  impl().activate();
  check_device(q, Device::Cuda, "attention: q");
  check_device(k, Device::Cuda, "attention: k");
  check_device(v, Device::Cuda, "attention: v");
  check_device(out, Device::Cuda, "attention: out");
  SHOWO2_CHECK(q.dtype() == DType::F32 || q.dtype() == DType::BF16, UnsupportedDtype,
               "attention: q: expected F32 or BF16 but got ", dtype_name(q.dtype()));
  check_dtype(k, q.dtype(), "attention: k");
  check_dtype(v, q.dtype(), "attention: v");
  check_dtype(out, DType::F32, "attention: out");
  check_dim(q, 4, "attention: q");
  check_dim(k, 4, "attention: k");
  check_dim(v, 4, "attention: v");
  check_dim(out, 4, "attention: out");
  check_last_dim_contiguous(q, "attention: q");
  check_last_dim_contiguous(k, "attention: k");
  check_last_dim_contiguous(v, "attention: v");
  check_last_dim_contiguous(out, "attention: out");
  check_writable(out, "attention: out");

  const int64_t B = q.size(0), Lq = q.size(1), Hq = q.size(2), D = q.size(3);
  const int64_t Lk = k.size(1), Hkv = k.size(2), Dv = v.size(3);
  SHOWO2_CHECK(k.size(0) == B, ShapeMismatch, "attention: k has batch size ", k.size(0), " but q has ", B,
               " (q ", q.shape_string(), ", k ", k.shape_string(), ")");
  SHOWO2_CHECK(k.size(3) == D, ShapeMismatch, "attention: k head dim ", k.size(3), " must equal q head dim ", D,
               " (q ", q.shape_string(), ", k ", k.shape_string(), ")");
  SHOWO2_CHECK(v.size(0) == B && v.size(1) == Lk && v.size(2) == Hkv, ShapeMismatch, "attention: v has shape ",
               v.shape_string(), " but must be [B, Lk, Hkv, Dv] = [", B, ", ", Lk, ", ", Hkv, ", Dv] to match k ",
               k.shape_string());
  SHOWO2_CHECK(Hkv > 0 && Hq % Hkv == 0, ShapeMismatch, "attention: q has ", Hq,
               " heads, which is not a multiple of k's ", Hkv,
               " kv heads (grouped-query attention needs Hq % Hkv == 0)");
  SHOWO2_CHECK(D > 0, ShapeMismatch, "attention: q head dim must be positive but q has shape ", q.shape_string());
  check_shape(out, {B, Lq, Hq, Dv}, "attention: out");
  mask.validate(B);
  SHOWO2_CHECK(mask.query_offset() >= 0, InvalidArgument, "attention: mask query_offset must be >= 0 but is ",
               mask.query_offset());
  SHOWO2_CHECK(std::isfinite(scale), InvalidArgument, "attention: scale must be finite but is ", scale);
  // Thread blocks write their output rows while others still read q/k/v, so out may not share memory with them.
  SHOWO2_CHECK(!storage_ranges_overlap(out, q), InvalidArgument, "attention: out overlaps q in memory");
  SHOWO2_CHECK(!storage_ranges_overlap(out, k), InvalidArgument, "attention: out overlaps k in memory");
  SHOWO2_CHECK(!storage_ranges_overlap(out, v), InvalidArgument, "attention: out overlaps v in memory");
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
  p.variant = AttentionVariant::Tiled;
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
  const ConvParams c = validate_conv(x, weight, bias, as_conv3d(p), out, 2, "conv2d");
  if (out.numel() == 0) return;
  SHOWO2_CUDA_CHECK(launch_conv(c, stream()));
}

void CudaBackend::conv3d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv3dParams& p,
                         Tensor& out) {
  impl().activate();
  const ConvParams c = validate_conv(x, weight, bias, p, out, 3, "conv3d");
  if (out.numel() == 0) return;
  SHOWO2_CUDA_CHECK(launch_conv(c, stream()));
}

}  // namespace showo2::cuda
