// The convolution kernels' fusions (cuda/conv_input.cuh: history frames read where a causal conv's frame ring keeps
// them, x read as its nearest-exact 2x upsampling, a residual added in the epilogue), every variant, against the CPU
// backend's Backend::conv3d_fused (the composition of the unfused ops, test/native/conv_fused_test.cpp); then the
// CUDA backend's conv3d_fused entry point (argument checks, strides of ring views) against the same; all of it also
// with channels-last activations and weights (ConvParams::channels_last, ::weight_channels_last), and the
// channels-last channel norm.
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
#include <utility>
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

// Operand layouts of one launch (ConvParams::channels_last, ::weight_channels_last).
struct Layout {
  bool activations_channels_last = false;
  bool weight_channels_last = false;
  bool bf16_activations = false;  // x, history, residual and out stored as BF16 (ConvParams::activation_type)
  std::string label() const {
    return std::string(activations_channels_last ? " NDHWC" : "") + (weight_channels_last ? " w-last" : "") +
           (bf16_activations ? " bf16-act" : "");
  }
};

// A channels-last copy of a host tensor [N, C, S...] (memory [N, S..., C]): the same logical values.
Tensor channels_last_copy(const Tensor& t) {
  return t.permute(channels_last_to_memory_order(t.dim())).contiguous().permute(memory_order_to_channels_last(t.dim()));
}

// Launches one variant on device mirrors of `in` in `layout` (launcher level: the fields CudaBackend::conv3d_fused
// fills). Returns the output's logical values whatever its layout.
std::vector<float> run_variant(const Inputs& in, ConvVariant variant, const Layout& layout = {}) {
  const bool cl = layout.activations_channels_last, bf16 = layout.bf16_activations;
  auto activation = [cl, bf16](const Tensor& t) {
    const Tensor typed = bf16 ? t.to(DType::BF16) : t;
    return cl ? channels_last_copy(typed) : typed;
  };
  const Tensor x = activation(in.x), ring = activation(in.ring);
  const Tensor weight = layout.weight_channels_last ? channels_last_copy(in.weight) : in.weight;
  test::DeviceMirror dx(x), dring(ring), dw(weight), db(in.bias);
  std::unique_ptr<test::DeviceMirror> dres =
      in.fusion.residual.defined() ? std::make_unique<test::DeviceMirror>(activation(in.fusion.residual)) : nullptr;
  Tensor out = activation(Tensor::zeros(in.out_shape, DType::F32));
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
    // The ring slot the view holds, then that slot's element [0, 0, 0, 0, 0] inside the device copy of `ring`.
    const int64_t slot =
        static_cast<int64_t>((in.fusion.history[i].byte_offset() - in.ring.byte_offset()) / sizeof(float)) /
        in.ring.stride(2);
    const Tensor h = ring.slice(2, slot, slot + 1);
    p.history[i] = dring.f32() + (h.byte_offset() - ring.byte_offset()) / sizeof(float);
    p.history_stride_n[i] = h.stride(0);
    p.history_stride_c[i] = h.stride(1);
  }
  p.channels_last = cl;
  p.weight_channels_last = layout.weight_channels_last;
  p.activation_type = bf16 ? cuda::ConvActivationType::BF16 : cuda::ConvActivationType::F32;
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

// Every variant in `layout` against the CPU backend (which computes in the contiguous layout: the layouts must not
// change the function).
void check_case(const FusedCase& c, uint32_t seed, const std::string& base_label, const Layout& layout = {}) {
  test::require_cuda_device();
  const std::string label = base_label + layout.label();
  const int64_t K = c.C * c.KT * c.KH * c.KW;
  const double atol = 2e-5 * std::max(1.0, std::sqrt(static_cast<double>(K) / 1024.0)), rtol = 1e-5;
  const Inputs in = make_inputs(c, seed);
  const std::vector<float> ref = cpu_reference(in);
  for (ConvVariant v : {ConvVariant::Naive, ConvVariant::Tiled}) {
    const std::vector<float> got = run_variant(in, v, layout);
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
  const std::vector<float> got = run_variant(rounded, ConvVariant::TensorCore, layout);
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

// Channels-last activations and weights, every variant: C % 4 == 0 takes v3's vector staging (a pixel's channel run
// by float4 loads), other C the scalar path; each fusion, both weight layouts, BF16 and F32 weights.
SHOWO2_TEST(channels_last_layouts_every_fusion) {
  const Layout cl{true, true}, cl_x_only{true, false}, cl_w_only{false, true};
  for (const Layout& layout : {cl, cl_x_only, cl_w_only}) {
    check_case({2, 5, 1, 7, 9, 6, 3, 3, 3, 1, false, false}, 700, "history 1, C 5 (scalar staging)", layout);
    check_case({1, 32, 1, 11, 13, 70, 3, 3, 3, 2, false, true}, 710, "history 2 (wrapped), C 32, + residual", layout);
    check_case({2, 96, 2, 9, 8, 48, 1, 3, 3, 0, true, true}, 720, "upsample2x 96 -> 48 ch, + residual", layout);
  }
  FusedCase bf16_weights{1, 64, 3, 10, 10, 40, 3, 3, 3, 0, false, true, DType::BF16};
  check_case(bf16_weights, 730, "residual, BF16 weights, C 64", cl);
  check_case({1, 384, 1, 20, 20, 384, 3, 3, 3, 2, false, true}, 740, "384 ch, 20x20, history 2, + residual", cl);
  check_case({1, 12, 4, 9, 7, 3, 3, 3, 3, 0, false, false}, 750, "head conv: 3 output channels", cl);
}

// BF16 activations (x, history, residual, out stored as BF16: CudaBackendOptions::conv_activation_dtype) on v3 in
// both layouts, against the CPU on the same BF16 values (BF16 weights: the products are exact), so the only
// difference is the summation order and the output's rounding to BF16 (2^-9 relative): rtol 8e-3. v1/v2 refuse BF16
// activations (cudaErrorInvalidValue), below.
SHOWO2_TEST(bf16_activations_on_tensor_cores) {
  test::require_cuda_device();
  if (!cuda::conv_mma_supported()) test::fail_at(__FILE__, __LINE__, "the device cannot run conv v3");
  const std::vector<std::pair<FusedCase, std::string>> cases = {
      {{1, 32, 1, 11, 13, 70, 3, 3, 3, 2, false, true, DType::BF16}, "history 2, C 32, + residual"},
      {{2, 96, 2, 9, 8, 48, 1, 3, 3, 0, true, true, DType::BF16}, "upsample2x 96 -> 48 ch, + residual"},
      {{2, 5, 1, 7, 9, 6, 3, 3, 3, 1, false, false, DType::BF16}, "history 1, C 5 (scalar staging)"},
  };
  uint32_t seed = 900;
  for (const auto& [c, label] : cases)
    for (bool cl : {false, true}) {
      const Layout layout{cl, cl, true};
      Inputs in = make_inputs(c, seed++);
      in.x = bf16_values(in.x);
      in.ring = bf16_values(in.ring);
      if (c.history >= 1) in.fusion.history[0] = in.ring.slice(2, c.history == 2 ? 1 : 0, c.history == 2 ? 2 : 1);
      if (c.history == 2) in.fusion.history[1] = in.ring.slice(2, 0, 1);
      if (c.residual) in.fusion.residual = bf16_values(in.fusion.residual);
      const std::vector<float> ref = cpu_reference(in);
      const std::vector<float> got = run_variant(in, ConvVariant::TensorCore, layout);
      const std::string what = label + layout.label() + " [v3]";
      std::printf("    %-64s max |err| %.2e\n", what.c_str(), static_cast<double>(max_abs_diff(got, ref)));
      EXPECT_CLOSE(got.data(), ref.data(), ref.size(), 1e-4, 8e-3, what);
    }
  // v2 cannot read BF16 activations: the launcher refuses instead of reading them as floats.
  const Inputs in = make_inputs(cases[0].first, 950);
  test::DeviceMirror dx(in.x.to(DType::BF16)), dw(in.weight), dout(Tensor::zeros(in.out_shape, DType::BF16));
  ConvParams p;
  p.x = dx.ptr(), p.weight = dw.ptr(), p.out = dout.ptr();
  p.weight_type = cuda::ConvWeightType::BF16;
  p.activation_type = cuda::ConvActivationType::BF16;
  p.N = 1, p.C = 32, p.T = 1, p.H = 11, p.W = 13, p.O = 70, p.KT = p.KH = p.KW = 3;
  p.To = 1, p.Ho = 11, p.Wo = 13, p.pad_front = 2, p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = 1;
  p.variant = ConvVariant::Tiled;
  CHECK(cuda::launch_conv(p, nullptr) == cudaErrorInvalidValue);
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

  // The same call with every operand channels-last (device tensors permuted as WanVae allocates them).
  auto device_channels_last = [&gpu](const Tensor& host) {
    return gpu.to_device(host.permute(channels_last_to_memory_order(host.dim())).contiguous())
        .permute(memory_order_to_channels_last(host.dim()));
  };
  Tensor ring_cl = device_channels_last(in.ring);
  ConvFusion g;
  g.history_count = 2;
  g.history[0] = ring_cl.slice(2, 1, 2);
  g.history[1] = ring_cl.slice(2, 0, 1);
  g.residual = device_channels_last(in.fusion.residual);
  Tensor out_cl = device_channels_last(Tensor::zeros(in.out_shape, DType::F32));
  gpu.conv3d_fused(device_channels_last(in.x), g, device_channels_last(in.weight), gpu.to_device(in.bias), in.p,
                   out_cl);
  const std::vector<float> got_cl = gpu.to_host(out_cl).to_f32_vector();
  EXPECT_CLOSE(got_cl.data(), ref.data(), ref.size(), 2e-5, 1e-5, "CudaBackend::conv3d_fused, channels-last");
  // Mixed layouts are typed errors.
  CHECK_THROWS_CODE(gpu.conv3d_fused(device_channels_last(in.x), g, gpu.to_device(in.weight), Tensor(), in.p, out),
                    ShapeMismatch);
}

// CudaBackend::channel_rms_norm(_silu) on channels-last tensors (the warp-per-position kernel) against the CPU
// backend on the same layout; C % 4 == 0 takes float4, others the scalar loads.
SHOWO2_TEST(channel_norm_channels_last_matches_cpu) {
  test::require_cuda_device();
  cuda::CudaBackend gpu;
  auto norm = [](Backend& b, bool silu, const Tensor& x, const Tensor& gamma, Tensor& out) {
    if (silu)
      b.channel_rms_norm_silu(x, gamma, out);
    else
      b.channel_rms_norm(x, gamma, out);
  };
  uint32_t seed = 800;
  for (const Shape& shape : std::vector<Shape>{{1, 96, 2, 5, 7}, {2, 384, 1, 3, 17}, {1, 3, 2, 9, 9}, {2, 130, 1, 1, 6}})
    for (bool silu : {false, true}) {
      // BF16 x and out (either layout): against the CPU on the same BF16 values, the output rounded to BF16.
      for (bool cl : {false, true}) {
        const Tensor xb = random_tensor(shape, seed++, 2.0f).to(DType::BF16).to(DType::F32);
        const Tensor gamma_b = random_tensor({shape[1]}, seed++).to(DType::BF16);
        Tensor expected_b = Tensor::empty(shape, DType::F32);
        norm(cpu_backend(), silu, xb, gamma_b, expected_b);
        Tensor dx = gpu.empty(shape, DType::BF16), dout = gpu.empty(shape, DType::BF16);
        if (cl) {
          const Tensor memory = xb.permute(channels_last_to_memory_order(5));
          dx = gpu.empty(memory.shape(), DType::BF16).permute(memory_order_to_channels_last(5));
          dout = gpu.empty(memory.shape(), DType::BF16).permute(memory_order_to_channels_last(5));
        }
        gpu.copy(gpu.to_device(xb), dx);  // F32 -> BF16: exact, the values are BF16 already
        norm(gpu, silu, dx, gpu.upload_weight(gamma_b), dout);
        const std::vector<float> got = gpu.to_host(dout).to_f32_vector(), ref = expected_b.to_f32_vector();
        EXPECT_CLOSE(got.data(), ref.data(), ref.size(), 1e-5, 8e-3,
                     std::string("bf16 channel norm ") + (cl ? "NDHWC " : "") + xb.shape_string());
      }
      const Tensor x = channels_last_copy(random_tensor(shape, seed++, 2.0f));
      const Tensor gamma = random_tensor({shape[1]}, seed++).to(DType::BF16);
      Tensor expected = channels_last_copy(Tensor::zeros(shape, DType::F32));
      norm(cpu_backend(), silu, x, gamma, expected);
      const Tensor memory = x.permute(channels_last_to_memory_order(5)).contiguous();
      Tensor dx = gpu.to_device(memory).permute(memory_order_to_channels_last(5));
      Tensor out = gpu.empty(memory.shape(), DType::F32).permute(memory_order_to_channels_last(5));
      norm(gpu, silu, dx, gpu.upload_weight(gamma), out);
      const std::vector<float> got = gpu.to_host(out).to_f32_vector(), ref = expected.to_f32_vector();
      EXPECT_CLOSE(got.data(), ref.data(), ref.size(), 1e-5, 1e-5,
                   std::string(silu ? "channel_rms_norm_silu " : "channel_rms_norm ") + x.shape_string() + " NDHWC");
    }
}

SHOWO2_TEST_MAIN()
