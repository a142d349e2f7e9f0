// The convolution kernels' fusions (cuda/conv_input.cuh: history frames read where a causal conv's frame ring keeps
// them, x read as its nearest-exact 2x upsampling, a residual added in the epilogue), every variant, against the CPU
// backend's Backend::conv3d_fused (the composition of the unfused ops, test/native/conv_fused_test.cpp); then the
// CUDA backend's conv3d_fused entry point (argument checks, strides of ring views) against the same.
//
// Tolerance as test/native/conv_cuda_test.cu: atol 2e-5 * max(1, sqrt(K / 1024)) + rtol 1e-5 for v1/v2 and for v3
// on BF16-valued operands (x, history, weights rounded on the host for both sides), plus the residual, which both
// sides add in F32. Without a CUDA device every case is reported as skipped with the reason.
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
#include "cuda_backend.h"
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

struct FusedCase {
  int64_t N, C, T, H, W;  // x (before upsampling)
  int64_t O, KT, KH, KW;
  int history = 0;        // frames from a 2-slot ring, the older one in slot 1 (wrapped)
  bool upsample2x = false;
  bool residual = false;
  DType weight_dtype = DType::F32;
};

Tensor random_tensor(const Shape& shape, uint32_t seed, float scale = 1.0f) {
  std::vector<float> v = random_vector(static_cast<size_t>(shape_numel(shape)), seed);
  for (float& x : v) x *= scale;
  return Tensor::from_f32(shape, v);
}

// BF16-rounded copy (as F32 values) for the v3 comparison.
Tensor bf16_values(const Tensor& t) { return t.to(DType::BF16).to(DType::F32); }

struct Inputs {
  Tensor x, ring, weight, bias, residual;
  ConvFusion fusion;  // host views into ring / residual
  Conv3dParams p;
  Shape out_shape;
};

Inputs make_inputs(const FusedCase& c, uint32_t seed) {
  Inputs in;
  const int64_t K = c.C * c.KT * c.KH * c.KW;
  in.x = random_tensor({c.N, c.C, c.T, c.H, c.W}, seed);
  in.ring = random_tensor({c.N, c.C, 2, c.H, c.W}, seed + 1);
  in.weight = random_tensor({c.O, c.C, c.KT, c.KH, c.KW}, seed + 2, 1.0f / std::sqrt(static_cast<float>(K)))
                  .to(c.weight_dtype);
  in.bias = random_tensor({c.O}, seed + 3);
  in.fusion.history_count = c.history;
  in.fusion.history[0] = in.ring.slice(2, c.history == 2 ? 1 : 0, c.history == 2 ? 2 : 1);
  in.fusion.history[1] = in.ring.slice(2, 0, 1);
  if (c.history < 2) in.fusion.history[1] = Tensor();
  if (c.history < 1) in.fusion.history[0] = Tensor();
  in.fusion.upsample2x = c.upsample2x;
  in.p.pad_front = c.KT - 1 - c.history;  // a causal conv: history + zeros fill kt - 1 frames in front
  in.p.pad_top = in.p.pad_bottom = (c.KH - 1) / 2;
  in.p.pad_left = in.p.pad_right = (c.KW - 1) / 2;
  const int64_t up = c.upsample2x ? 2 : 1;
  const int64_t T = c.T + c.history, H = c.H * up, W = c.W * up;
  in.out_shape = {c.N, c.O, T + in.p.pad_front - c.KT + 1, H + 2 * in.p.pad_top - c.KH + 1,
                  W + 2 * in.p.pad_left - c.KW + 1};
  if (c.residual) in.fusion.residual = random_tensor(in.out_shape, seed + 4);
  return in;
}

std::vector<float> cpu_reference(const Inputs& in) {
  Tensor out = Tensor::empty(in.out_shape, DType::F32);
  cpu_backend().conv3d_fused(in.x, in.fusion, in.weight, in.bias, in.p, out);
  return out.to_f32_vector();
}

cuda::ConvWeightType weight_type(DType d) {
  return d == DType::BF16 ? cuda::ConvWeightType::BF16
                          : d == DType::F16 ? cuda::ConvWeightType::F16 : cuda::ConvWeightType::F32;
}

// Launches one variant on device mirrors of `in` (launcher level: the fields CudaBackend::conv3d_fused fills).
std::vector<float> run_variant(const Inputs& in, ConvVariant variant) {
  test::DeviceMirror dx(in.x), dring(in.ring), dw(in.weight), db(in.bias);
  std::unique_ptr<test::DeviceMirror> dres =
      in.fusion.residual.defined() ? std::make_unique<test::DeviceMirror>(in.fusion.residual) : nullptr;
  Tensor out = Tensor::zeros(in.out_shape, DType::F32);
  test::DeviceMirror dout(out);
  const int64_t up = in.fusion.upsample2x ? 2 : 1;
  ConvParams p;
  p.x = dx.f32();
  p.weight = dw.ptr();
  p.bias = db.ptr();
  p.out = dout.f32();
  p.weight_type = weight_type(in.weight.dtype());
  p.N = static_cast<int32_t>(in.x.size(0)), p.C = static_cast<int32_t>(in.x.size(1));
  p.T = static_cast<int32_t>(in.x.size(2) + in.fusion.history_count);
  p.H = static_cast<int32_t>(in.x.size(3) * up), p.W = static_cast<int32_t>(in.x.size(4) * up);
  p.O = static_cast<int32_t>(in.weight.size(0)), p.KT = static_cast<int32_t>(in.weight.size(2));
  p.KH = static_cast<int32_t>(in.weight.size(3)), p.KW = static_cast<int32_t>(in.weight.size(4));
  p.To = static_cast<int32_t>(in.out_shape[2]), p.Ho = static_cast<int32_t>(in.out_shape[3]);
  p.Wo = static_cast<int32_t>(in.out_shape[4]);
  p.pad_front = static_cast<int32_t>(in.p.pad_front);
  p.pad_top = p.pad_bottom = static_cast<int32_t>(in.p.pad_top);
  p.pad_left = p.pad_right = static_cast<int32_t>(in.p.pad_left);
  p.history_frames = in.fusion.history_count;
  for (int i = 0; i < in.fusion.history_count; ++i) {
    const Tensor& h = in.fusion.history[i];
    // The view's element [0, 0, 0, 0, 0] inside the ring's device copy.
    p.history[i] = dring.f32() + (h.byte_offset() - in.ring.byte_offset()) / sizeof(float);
    p.history_stride_n[i] = h.stride(0);
    p.history_stride_c[i] = h.stride(1);
  }
  p.upsample2x = in.fusion.upsample2x;
  p.residual = dres ? dres->f32() : nullptr;
  p.variant = variant;
  SHOWO2_CUDA_CHECK(cuda::launch_conv(p, nullptr));
  test::sync_and_check();
  return dout.download().to_f32_vector();
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  float m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::fmax(m, std::fabs(a[i] - b[i]));
  return m;
}

void check_case(const FusedCase& c, uint32_t seed, const std::string& label) {
  test::require_cuda_device();
  const int64_t K = c.C * c.KT * c.KH * c.KW;
  const double atol = 2e-5 * std::max(1.0, std::sqrt(static_cast<double>(K) / 1024.0)), rtol = 1e-5;
  const Inputs in = make_inputs(c, seed);
  const std::vector<float> ref = cpu_reference(in);
  for (ConvVariant v : {ConvVariant::Naive, ConvVariant::Tiled}) {
    const std::vector<float> got = run_variant(in, v);
    const std::string what = label + (v == ConvVariant::Naive ? " [v1]" : " [v2]");
    std::printf("    %-64s max |err| %.2e\n", what.c_str(), static_cast<double>(max_abs_diff(got, ref)));
    EXPECT_CLOSE(got.data(), ref.data(), ref.size(), atol, rtol, what);
  }
  if (!cuda::conv_mma_supported()) test::fail_at(__FILE__, __LINE__, label + ": the device cannot run conv v3");
  Inputs rounded = in;  // BF16-valued operands: v3's products are exact, so it must match to the F32 tolerance
  rounded.x = bf16_values(in.x);
  rounded.ring = bf16_values(in.ring);
  rounded.weight = in.weight.to(DType::BF16);
  if (c.history >= 1) rounded.fusion.history[0] = rounded.ring.slice(2, c.history == 2 ? 1 : 0, c.history == 2 ? 2 : 1);
  if (c.history == 2) rounded.fusion.history[1] = rounded.ring.slice(2, 0, 1);
  const std::vector<float> ref_bf16 = cpu_reference(rounded);
  const std::vector<float> got = run_variant(rounded, ConvVariant::TensorCore);
  const std::string what = label + " [v3, bf16 operands]";
  std::printf("    %-64s max |err| %.2e\n", what.c_str(), static_cast<double>(max_abs_diff(got, ref_bf16)));
  EXPECT_CLOSE(got.data(), ref_bf16.data(), ref_bf16.size(), atol, rtol, what);
}

}  // namespace

SHOWO2_TEST(history_one_frame_small_odd) {
  check_case({2, 5, 1, 7, 9, 6, 3, 3, 3, 1, false, false}, 100, "history 1, x 1 frame, 7x9");
}

SHOWO2_TEST(history_two_frames_wrapped_ring) {
  check_case({1, 19, 1, 11, 13, 70, 3, 3, 3, 2, false, false}, 200, "history 2 (wrapped), x 1 frame, 11x13");
  check_case({1, 8, 4, 6, 5, 9, 3, 3, 3, 2, false, true}, 210, "history 2, x 4 frames, + residual");
}

SHOWO2_TEST(vae_mid_block_shape_with_history_and_residual) {
  check_case({1, 384, 1, 20, 20, 384, 3, 3, 3, 2, false, true}, 300, "384 ch, 20x20, history 2, + residual");
}

SHOWO2_TEST(upsampled_input) {
  check_case({1, 7, 1, 5, 6, 10, 1, 3, 3, 0, true, false}, 400, "upsample2x 5x6 -> 10x12, 1x3x3");
  check_case({2, 96, 2, 9, 8, 48, 1, 3, 3, 0, true, true}, 410, "upsample2x 96 -> 48 ch, 2 frames, + residual");
}

SHOWO2_TEST(residual_only_and_reduced_precision_weights) {
  FusedCase c{1, 16, 3, 10, 10, 32, 3, 3, 3, 0, false, true};
  check_case(c, 500, "residual, F32 weights");
  c.weight_dtype = DType::BF16;
  check_case(c, 510, "residual, BF16 weights");
}

SHOWO2_TEST(backend_entry_point_matches_cpu_and_checks_arguments) {
  test::require_cuda_device();
  cuda::CudaBackend gpu;
  const Inputs in = make_inputs({1, 12, 1, 9, 10, 16, 3, 3, 3, 2, false, true}, 600);
  const std::vector<float> ref = cpu_reference(in);
  Tensor ring = gpu.to_device(in.ring);
  ConvFusion f;
  f.history_count = 2;
  f.history[0] = ring.slice(2, 1, 2);
  f.history[1] = ring.slice(2, 0, 1);
  f.residual = gpu.to_device(in.fusion.residual);
  Tensor out = gpu.empty(in.out_shape, DType::F32);
  gpu.conv3d_fused(gpu.to_device(in.x), f, gpu.to_device(in.weight), gpu.to_device(in.bias), in.p, out);
  const std::vector<float> got = gpu.to_host(out).to_f32_vector();
  EXPECT_CLOSE(got.data(), ref.data(), ref.size(), 2e-5, 1e-5, "CudaBackend::conv3d_fused");
  // Host history, and a fusion the kernels cannot take: typed errors, no launch.
  ConvFusion host_history = f;
  host_history.history[0] = in.ring.slice(2, 1, 2);
  CHECK_THROWS_CODE(gpu.conv3d_fused(gpu.to_device(in.x), host_history, gpu.to_device(in.weight), Tensor(), in.p, out),
                    InvalidArgument);
  ConvFusion both = f;
  both.upsample2x = true;
  CHECK_THROWS_CODE(gpu.conv3d_fused(gpu.to_device(in.x), both, gpu.to_device(in.weight), Tensor(), in.p, out),
                    InvalidArgument);
}

SHOWO2_TEST_MAIN()
