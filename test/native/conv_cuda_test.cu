// cuda/conv.cu (every variant) against the CPU backend (cpu::CpuBackend::conv3d / conv2d) on device copies of the same
// seeded random inputs, at the Wan VAE's shapes (spec §3.1) and awkward ones: the causal 3x3x3 conv (pad_front 2) on
// one and several frames, 1x1x1 shortcuts, the stride-2 'downsample' convs (right/bottom padding), both time_convs
// (k=(3,1,1), stride 2 or causal), the RGB input and output convs, asymmetric padding and strides, even kernels, odd
// sizes, BF16/F16 weights and biases, no bias.
//
// Tolerance. x is U(-1, 1) and weights U(-1, 1)/sqrt(K) with K = C*KT*KH*KW terms per output, so outputs are O(1).
// The CPU (blocked GEMMs) and the GPU (one FMA chain per output, in channel-chunk order) both accumulate in F32 in
// different orders; each sum's rounding error grows like sqrt(K) * eps * |partial sums|, about 4e-6 at the VAE's
// largest K = 384*27, and about 2e-7 at K = 27. We allow atol = 2e-5 * max(1, sqrt(K / 1024)) plus rtol 1e-5: 8x or
// more above both errors added, while an indexing or padding bug moves outputs by O(0.1). Reduced-precision weights
// are rounded once on the host and both sides read the same rounded values, so the tolerance is unchanged.
//
// v3 (BF16 tensor cores, cuda/conv_mma.cu) runs every case twice: on x rounded to BF16 against the CPU on the same
// rounded x and weights (exact products, F32 sums: the tolerance above), and on the F32 x, where it is bounded by a
// relative RMS error of 1% and the figure is printed.
//
// Without a CUDA device every case is reported as skipped with the reason.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "conv.h"
#include "conv_mma.h"
#include "cpu/cpu_backend.h"
#include "cuda_test_util.h"
#include "test_util.h"

using namespace showo2;
using showo2::cuda::ConvParams;
using showo2::cuda::ConvVariant;
using showo2::test::random_vector;

namespace {

cpu::CpuBackend& cpu_backend() {
  static cpu::CpuBackend backend;
  return backend;
}

struct ConvCase {
  int64_t N, C, T, H, W;
  int64_t O, KT, KH, KW;
  Conv3dParams p;
  DType weight_dtype = DType::F32;
  bool with_bias = true;
  DType bias_dtype = DType::F32;
};

Conv3dParams pads(int64_t front, int64_t back, int64_t top, int64_t bottom, int64_t left, int64_t right) {
  Conv3dParams p;
  p.pad_front = front, p.pad_back = back, p.pad_top = top, p.pad_bottom = bottom, p.pad_left = left,
  p.pad_right = right;
  return p;
}

int64_t out_size(int64_t in, int64_t pad_a, int64_t pad_b, int64_t k, int64_t stride) {
  return (in + pad_a + pad_b - k) / stride + 1;
}

cuda::ConvWeightType weight_type(DType d) {
  return d == DType::BF16 ? cuda::ConvWeightType::BF16
                          : d == DType::F16 ? cuda::ConvWeightType::F16 : cuda::ConvWeightType::F32;
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  float m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::fmax(m, std::fabs(a[i] - b[i]));
  return m;
}

// Runs the case as conv3d on the CPU backend and on both GPU variants; `as_conv2d` runs the CPU side as conv2d on
// [N, C, H, W] (T = KT = 1) instead, so both CpuBackend entry points are the reference somewhere.
void check_case(const ConvCase& c, uint32_t seed, const std::string& label, bool as_conv2d = false) {
  test::require_cuda_device();
  const int64_t K = c.C * c.KT * c.KH * c.KW;
  const Shape x_shape = {c.N, c.C, c.T, c.H, c.W};
  Tensor x = Tensor::from_f32(x_shape, random_vector(static_cast<size_t>(shape_numel(x_shape)), seed));
  std::vector<float> w = random_vector(static_cast<size_t>(c.O * K), seed + 1);
  for (float& v : w) v /= std::sqrt(static_cast<float>(K));
  Tensor weight = Tensor::from_f32({c.O, c.C, c.KT, c.KH, c.KW}, w).to(c.weight_dtype);
  Tensor bias;
  if (c.with_bias) bias = Tensor::from_f32({c.O}, random_vector(static_cast<size_t>(c.O), seed + 2)).to(c.bias_dtype);

  const int64_t To = out_size(c.T, c.p.pad_front, c.p.pad_back, c.KT, c.p.stride_t);
  const int64_t Ho = out_size(c.H, c.p.pad_top, c.p.pad_bottom, c.KH, c.p.stride_h);
  const int64_t Wo = out_size(c.W, c.p.pad_left, c.p.pad_right, c.KW, c.p.stride_w);
  Tensor ref_out = Tensor::empty({c.N, c.O, To, Ho, Wo}, DType::F32);
  if (as_conv2d) {
    Conv2dParams p2;
    p2.stride_h = c.p.stride_h, p2.stride_w = c.p.stride_w;
    p2.pad_top = c.p.pad_top, p2.pad_bottom = c.p.pad_bottom, p2.pad_left = c.p.pad_left, p2.pad_right = c.p.pad_right;
    Tensor out2 = ref_out.reshape({c.N, c.O, Ho, Wo});
    cpu_backend().conv2d(x.reshape({c.N, c.C, c.H, c.W}), weight.reshape({c.O, c.C, c.KH, c.KW}), bias, p2, out2);
  } else {
    cpu_backend().conv3d(x, weight, bias, c.p, ref_out);
  }
  const std::vector<float> ref = ref_out.to_f32_vector();

  test::DeviceMirror dx(x), dw(weight);
  std::unique_ptr<test::DeviceMirror> db = c.with_bias ? std::make_unique<test::DeviceMirror>(bias) : nullptr;
  const double atol = 2e-5 * std::max(1.0, std::sqrt(static_cast<double>(K) / 1024.0)), rtol = 1e-5;
  auto run = [&](ConvVariant variant, const float* x_device) {
    Tensor out = Tensor::zeros({c.N, c.O, To, Ho, Wo}, DType::F32);
    test::DeviceMirror dout(out);
    ConvParams p;
    p.x = x_device;
    p.weight = dw.ptr();
    p.bias = db ? db->ptr() : nullptr;
    p.out = dout.f32();
    p.weight_type = weight_type(c.weight_dtype);
    p.bias_type = weight_type(c.bias_dtype);
    p.N = static_cast<int32_t>(c.N), p.C = static_cast<int32_t>(c.C), p.T = static_cast<int32_t>(c.T);
    p.H = static_cast<int32_t>(c.H), p.W = static_cast<int32_t>(c.W), p.O = static_cast<int32_t>(c.O);
    p.KT = static_cast<int32_t>(c.KT), p.KH = static_cast<int32_t>(c.KH), p.KW = static_cast<int32_t>(c.KW);
    p.To = static_cast<int32_t>(To), p.Ho = static_cast<int32_t>(Ho), p.Wo = static_cast<int32_t>(Wo);
    p.stride_t = static_cast<int32_t>(c.p.stride_t), p.stride_h = static_cast<int32_t>(c.p.stride_h);
    p.stride_w = static_cast<int32_t>(c.p.stride_w);
    p.pad_front = static_cast<int32_t>(c.p.pad_front), p.pad_back = static_cast<int32_t>(c.p.pad_back);
    p.pad_top = static_cast<int32_t>(c.p.pad_top), p.pad_bottom = static_cast<int32_t>(c.p.pad_bottom);
    p.pad_left = static_cast<int32_t>(c.p.pad_left), p.pad_right = static_cast<int32_t>(c.p.pad_right);
    p.variant = variant;
    SHOWO2_CUDA_CHECK(cuda::launch_conv(p, nullptr));
    test::sync_and_check();
    return dout.download().to_f32_vector();
  };
  for (ConvVariant variant : {ConvVariant::Naive, ConvVariant::Tiled}) {
    const std::vector<float> got = run(variant, dx.f32());
    const std::string what = label + (variant == ConvVariant::Naive ? " [v1 naive]" : " [v2 tiled]");
    std::printf("    %-64s max |err| %.2e\n", what.c_str(), static_cast<double>(max_abs_diff(got, ref)));
    EXPECT_CLOSE(got.data(), ref.data(), ref.size(), atol, rtol, what);
  }

  // v3 (BF16 tensor cores) rounds x and the weights to BF16 and multiplies exactly: on inputs that are BF16 values
  // already it must match the CPU on those same values to the F32 tolerance above. It must really be v3 (compute
  // capability 8.0+), not its v2 fallback.
  if (!cuda::conv_mma_supported()) test::fail_at(__FILE__, __LINE__, label + ": the device cannot run conv v3");
  Tensor x_bf16 = x.to(DType::BF16).to(DType::F32);
  Tensor w_bf16 = weight.to(DType::F32).to(DType::BF16);
  Tensor ref_bf16_out = Tensor::empty({c.N, c.O, To, Ho, Wo}, DType::F32);
  cpu_backend().conv3d(x_bf16, w_bf16, bias, c.p, ref_bf16_out);
  const std::vector<float> ref_bf16 = ref_bf16_out.to_f32_vector();
  test::DeviceMirror dx_bf16(x_bf16);
  const std::vector<float> got_v3 = run(ConvVariant::TensorCore, dx_bf16.f32());
  const std::string what = label + " [v3 tensor cores, bf16 operands]";
  std::printf("    %-64s max |err| %.2e\n", what.c_str(), static_cast<double>(max_abs_diff(got_v3, ref_bf16)));
  EXPECT_CLOSE(got_v3.data(), ref_bf16.data(), ref_bf16.size(), atol, rtol, what);
  // On the F32 activations: the error BF16 rounding costs, reported, and bounded by a relative RMS of 1% (the
  // rounding is 2^-9 relative per operand; a real bug is O(1)).
  const std::vector<float> got_f32_in = run(ConvVariant::TensorCore, dx.f32());
  double err2 = 0, ref2 = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    err2 += (static_cast<double>(got_f32_in[i]) - ref[i]) * (static_cast<double>(got_f32_in[i]) - ref[i]);
    ref2 += static_cast<double>(ref[i]) * ref[i];
  }
  const double rel_rms = ref2 > 0 ? std::sqrt(err2 / ref2) : std::sqrt(err2);
  std::printf("    %-64s relative RMS error %.2e against F32\n", (label + " [v3 on f32 activations]").c_str(), rel_rms);
  if (!(rel_rms <= 1e-2)) test::fail_at(__FILE__, __LINE__, label + ": v3 relative RMS error " + std::to_string(rel_rms));
}

}  // namespace

// ---- the VAE's convolutions ---------------------------------------------------------------------------------------

SHOWO2_TEST(causal_3x3x3_small_and_odd) {
  // CausalConv3d: two frames of zero padding in front, none behind; odd sizes everywhere; batch 2.
  check_case(ConvCase{2, 5, 4, 7, 9, 6, 3, 3, 3, pads(2, 0, 1, 1, 1, 1)}, 11, "causal C5 T4 7x9");
  check_case(ConvCase{1, 40, 3, 6, 5, 70, 3, 3, 3, pads(2, 0, 1, 1, 1, 1)}, 12, "causal C40 O70 T3 6x5");
}

SHOWO2_TEST(causal_3x3x3_vae_mid_384) {
  // decoder.middle / upsamples.0-2 at 432x432 images: 384 -> 384 on 54x54, one frame (image) and a 3-frame chunk
  // (video decoding with the 2-frame cache concatenated in front, so no time padding).
  check_case(ConvCase{1, 384, 1, 54, 54, 384, 3, 3, 3, pads(2, 0, 1, 1, 1, 1)}, 21, "VAE 384 54x54 T1 causal");
  check_case(ConvCase{1, 384, 3, 27, 29, 384, 3, 3, 3, pads(0, 0, 1, 1, 1, 1)}, 22, "VAE 384 27x29 T3 cached");
}

SHOWO2_TEST(vae_rgb_in_and_out) {
  // encoder.conv1 3 -> 96 and decoder.head.2 96 -> 3 (k3, causal), odd spatial sizes.
  check_case(ConvCase{1, 3, 1, 33, 35, 96, 3, 3, 3, pads(2, 0, 1, 1, 1, 1)}, 31, "conv1 3->96 33x35");
  check_case(ConvCase{1, 96, 2, 31, 30, 3, 3, 3, 3, pads(2, 0, 1, 1, 1, 1)}, 32, "head 96->3 T2 31x30");
}

SHOWO2_TEST(one_by_one_shortcuts) {
  // RB shortcuts and conv1/conv2: 1x1x1, no padding.
  check_case(ConvCase{2, 33, 3, 4, 5, 17, 1, 1, 1, Conv3dParams{}}, 41, "1x1x1 C33 O17");
  check_case(ConvCase{1, 192, 1, 27, 27, 384, 1, 1, 1, Conv3dParams{}}, 42, "1x1x1 shortcut 192->384 27x27");
}

SHOWO2_TEST(downsample_stride_2) {
  // 'downsample2d/3d': zero-pad right and bottom by 1, then 3x3 stride 2 (as conv2d through the CPU's conv2d entry
  // point, and as a 1-frame conv3d); even and odd inputs.
  Conv3dParams p = pads(0, 0, 0, 1, 0, 1);
  p.stride_h = p.stride_w = 2;
  check_case(ConvCase{1, 96, 1, 28, 28, 96, 1, 3, 3, p}, 51, "downsample 96 28x28 (conv2d)", true);
  check_case(ConvCase{2, 19, 1, 27, 25, 23, 1, 3, 3, p}, 52, "downsample C19 27x25 (conv2d)", true);
  check_case(ConvCase{1, 40, 1, 17, 16, 40, 1, 3, 3, p}, 53, "downsample C40 17x16 (conv3d)");
}

SHOWO2_TEST(time_convs) {
  // downsample3d's time_conv: k=(3,1,1), stride (2,1,1), frames supplied by the cache (no padding); with causal
  // padding too, so stride and skipped taps interact; upsample3d's time_conv C -> 2C, k=(3,1,1), causal.
  ConvCase down{1, 36, 5, 3, 4, 7, 3, 1, 1, Conv3dParams{}};
  down.p.stride_t = 2;
  check_case(down, 61, "time_conv stride 2");
  down.p.pad_front = 2;
  check_case(down, 62, "time_conv stride 2 causal");
  check_case(ConvCase{1, 48, 3, 9, 11, 96, 3, 1, 1, pads(2, 0, 0, 0, 0, 0)}, 63, "time_conv 48->96 causal");
}

// ---- awkward shapes and dtypes ------------------------------------------------------------------------------------

SHOWO2_TEST(asymmetric_padding_strides_even_kernels) {
  ConvCase c{1, 7, 6, 9, 8, 5, 3, 3, 2, pads(1, 2, 0, 2, 3, 1)};
  c.p.stride_t = 2, c.p.stride_h = 2, c.p.stride_w = 3;
  check_case(c, 71, "asymmetric strided");
  check_case(ConvCase{1, 34, 3, 6, 7, 3, 2, 3, 2, pads(0, 1, 2, 0, 0, 3)}, 72, "asymmetric unit stride");
  // More output frames than channels tiles, output frames that see no input frame at all (pad_back 3 > KT).
  check_case(ConvCase{2, 3, 2, 5, 5, 2, 1, 2, 2, pads(0, 3, 1, 1, 1, 1)}, 73, "frames of pure padding");
  // Patch-embed style: kernel = stride = 2, no padding.
  Conv3dParams patch;
  patch.stride_h = patch.stride_w = 2;
  check_case(ConvCase{2, 16, 1, 54, 54, 64, 1, 2, 2, patch}, 74, "2x2 patch embed 16->64 (conv2d)", true);
}

SHOWO2_TEST(reduced_precision_weights_and_bias) {
  for (DType dt : {DType::BF16, DType::F16}) {
    check_case(ConvCase{1, 35, 3, 5, 6, 8, 3, 3, 3, pads(2, 0, 1, 1, 1, 1), dt, true, dt}, 81,
               std::string("weights and bias ") + dtype_name(dt));
    check_case(ConvCase{1, 35, 3, 5, 6, 8, 3, 3, 3, pads(2, 0, 1, 1, 1, 1), dt, false}, 82,
               std::string("weights ") + dtype_name(dt) + ", no bias");
  }
  check_case(ConvCase{1, 64, 1, 20, 21, 64, 3, 3, 3, pads(2, 0, 1, 1, 1, 1), DType::BF16, true, DType::F32}, 83,
             "bf16 weights, f32 bias, 64 channels");
}

SHOWO2_TEST_MAIN()
