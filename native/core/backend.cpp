// The Backend's default implementations of its fused operations (backend.h): the unfused ops in sequence, so a
// backend that does not fuse (the CPU backend) computes exactly what the model computed before the fusion existed.
#include "backend.h"

#include "backend_checks.h"

namespace showo2 {

void Backend::conv3d_fused(const Tensor& x, const ConvFusion& f, const Tensor& weight, const Tensor& bias,
                           const Conv3dParams& p, Tensor& out) {
  const ConvShape s = check_conv3d_fused_args(x, f, weight, bias, p, out);
  if (s.activation_dtype != DType::F32)
    fail(ErrorCode::UnsupportedDtype, "conv3d_fused: x: the ", name(),
         " backend keeps conv activations in F32 (preferred_conv_activation_dtype) but got ",
         dtype_name(s.activation_dtype));
  if (s.channels_last || s.weight_channels_last) {
    conv3d_fused_via_contiguous(x, f, weight, bias, p, out);
    return;
  }
  Tensor input = x;  // the logical input [N, C, history + T, H', W'], materialised
  if (f.upsample2x) {
    input = empty({s.N, s.C, s.T, s.H, s.W}, DType::F32);  // nn.Upsample(scale 2, 'nearest-exact')
    upsample_nearest2x(x, input);
  } else if (f.history_count > 0) {
    input = empty({s.N, s.C, s.T, s.H, s.W}, DType::F32);  // torch.cat([history..., x], dim=2)
    for (int i = 0; i < f.history_count; ++i) {
      Tensor dst = input.slice(2, i, i + 1);
      copy(f.history[i], dst);
    }
    Tensor tail = input.slice(2, f.history_count, s.T);
    copy(x, tail);
  }
  conv3d(input, weight, bias, p, out);
  if (f.residual.defined()) add(out, f.residual, out);
}

void Backend::conv3d_fused_via_contiguous(const Tensor& x, const ConvFusion& f, const Tensor& weight,
                                          const Tensor& bias, const Conv3dParams& p, Tensor& out) {
  auto contiguous_copy = [this](const Tensor& t) {
    if (!t.defined() || t.is_contiguous()) return t;
    Tensor c = empty(t.shape(), DType::F32);
    copy(t, c);
    return c;
  };
  ConvFusion fc = f;
  for (int i = 0; i < f.history_count; ++i) fc.history[i] = contiguous_copy(f.history[i]);
  fc.residual = contiguous_copy(f.residual);
  // Weights may be BF16/F16, which copy() does not take: rearranged on the host (a weight of a host backend).
  Tensor wc = weight;
  if (!weight.is_contiguous()) {
    if (weight.device() != Device::Cpu)
      fail(ErrorCode::InvalidArgument, "conv3d_fused: weight: ", name(), " backend takes channels-last weights only ",
           "with its own conv3d_fused");
    wc = weight.contiguous();
  }
  Tensor oc = out.is_contiguous() ? out : empty(out.shape(), DType::F32);
  Backend::conv3d_fused(contiguous_copy(x), fc, wc, bias, p, oc);
  if (!out.is_contiguous()) copy(oc, out);
}

}  // namespace showo2
