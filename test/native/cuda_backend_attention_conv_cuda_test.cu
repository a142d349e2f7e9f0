// CudaBackend::attention / conv2d / conv3d (cuda/cuda_backend_attention_conv.cu): the glue between Tensors and the
// launchers, against the CPU backend on the same inputs. The kernels themselves are covered case by case in
// attention_cuda_test.cu and conv_cuda_test.cu; here: device tensors and views made by the backend, a batch whose
// per-sample block lists need two launches, weights through upload_weight (BF16 by default), and the typed errors
// for host tensors and bad shapes.
//
// Tolerances: as in attention_cuda_test.cu (2e-5 abs and rel: F32 on both sides, different summation order) and
// conv_cuda_test.cu (2e-5 * max(1, sqrt(K / 1024)) + 1e-5 rel). The conv's reference runs on the same BF16-rounded
// weights that upload_weight produces, so rounding the weights does not widen the tolerance.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "cpu/cpu_backend.h"
#include "cuda_backend.h"
#include "cuda_test_util.h"
#include "test_util.h"

using namespace showo2;

namespace {

cpu::CpuBackend& cpu_backend() {
  static cpu::CpuBackend backend;
  return backend;
}

Tensor random_tensor(const Shape& shape, uint32_t seed, float stddev = 1.0f) {
  return Tensor::from_f32(shape, test::random_normal(static_cast<size_t>(shape_numel(shape)), seed, stddev));
}

}  // namespace

SHOWO2_TEST(attention_views_and_split_batch_match_cpu) {
  test::require_cuda_device();
  cuda::CudaBackend gpu;
  // 70 samples with their own block lists: more than one launch's AttentionMask holds (64), so the backend splits
  // the batch. q, k, v are head slices of one fused projection, on the host and on the device alike.
  const int64_t B = 70, L = 45, Hq = 4, Hkv = 2, D = 64;
  std::vector<std::vector<BidirectionalBlock>> lists;
  for (int64_t b = 0; b < B; ++b) lists.push_back({{b % 30, 7 + b % 5}});
  const OmniMask mask = OmniMask::omni(lists);
  const Tensor qkv = random_tensor({B, L, Hq + 2 * Hkv, D}, 1);
  const Tensor qkv_dev = gpu.to_device(qkv);
  auto heads = [&](const Tensor& t, int64_t from, int64_t to) { return t.slice(2, from, to); };
  const float scale = 0.125f;

  Tensor ref = Tensor::empty({B, L, Hq, D}, DType::F32);
  cpu_backend().attention(heads(qkv, 0, Hq), heads(qkv, Hq, Hq + Hkv), heads(qkv, Hq + Hkv, Hq + 2 * Hkv), mask,
                          scale, ref);
  Tensor out_dev = gpu.empty({B, L, Hq, D}, DType::F32);
  gpu.attention(heads(qkv_dev, 0, Hq), heads(qkv_dev, Hq, Hq + Hkv), heads(qkv_dev, Hq + Hkv, Hq + 2 * Hkv), mask,
                scale, out_dev);
  const std::vector<float> got = gpu.to_host(out_dev).to_f32_vector(), want = ref.to_f32_vector();
  EXPECT_CLOSE(got.data(), want.data(), want.size(), 2e-5, 2e-5, "backend attention, 70 samples, fused views");
}

SHOWO2_TEST(attention_rejects_host_tensors_and_bad_shapes) {
  test::require_cuda_device();
  cuda::CudaBackend gpu;
  const Tensor q = random_tensor({1, 4, 2, 8}, 2);
  const Tensor q_dev = gpu.to_device(q);
  Tensor out_dev = gpu.empty({1, 4, 2, 8}, DType::F32);
  CHECK_THROWS_CODE(gpu.attention(q, q_dev, q_dev, OmniMask::causal(), 1.0f, out_dev), InvalidArgument);
  Tensor bad_out = gpu.empty({1, 4, 3, 8}, DType::F32);
  CHECK_THROWS_CODE(gpu.attention(q_dev, q_dev, q_dev, OmniMask::causal(), 1.0f, bad_out), ShapeMismatch);
  const Tensor k3 = gpu.to_device(random_tensor({1, 4, 3, 8}, 3));
  CHECK_THROWS_CODE(gpu.attention(q_dev, k3, k3, OmniMask::causal(), 1.0f, out_dev), ShapeMismatch);  // 2 % 3 != 0
}

SHOWO2_TEST(conv3d_and_conv2d_through_upload_weight_match_cpu) {
  test::require_cuda_device();
  cuda::CudaBackend gpu;
  // The VAE's causal conv on a 2-frame chunk, weights as a checkpoint holds them (F32) and uploaded as BF16.
  const int64_t N = 1, C = 48, T = 2, H = 13, W = 11, O = 40;
  const Tensor x = random_tensor({N, C, T, H, W}, 4);
  const Tensor w = random_tensor({O, C, 3, 3, 3}, 5, 1.0f / std::sqrt(static_cast<float>(C * 27)));
  const Tensor bias = random_tensor({O}, 6, 0.1f);
  Conv3dParams p;
  p.pad_front = 2, p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = 1;
  const Tensor w_dev = gpu.upload_weight(w), bias_dev = gpu.upload_weight(bias);
  const Tensor w_as_uploaded = w.to(w_dev.dtype());  // what the device holds, for the reference
  const double atol = 2e-5 * std::sqrt(static_cast<double>(C * 27) / 1024.0), rtol = 1e-5;

  Tensor ref = Tensor::empty({N, O, T, H, W}, DType::F32);
  cpu_backend().conv3d(x, w_as_uploaded, bias, p, ref);
  Tensor out_dev = gpu.empty({N, O, T, H, W}, DType::F32);
  gpu.conv3d(gpu.to_device(x), w_dev, bias_dev, p, out_dev);
  std::vector<float> got = gpu.to_host(out_dev).to_f32_vector(), want = ref.to_f32_vector();
  EXPECT_CLOSE(got.data(), want.data(), want.size(), atol, rtol, "backend conv3d causal, bf16 weights");

  // downsample2d: right/bottom padding 1, stride 2, on frame 0.
  const Tensor x2 = x.select(2, 0).contiguous();
  const Tensor w2 = w.select(2, 2).contiguous();
  Conv2dParams p2;
  p2.stride_h = p2.stride_w = 2, p2.pad_bottom = p2.pad_right = 1;
  const int64_t Ho = (H + 1 - 3) / 2 + 1, Wo = (W + 1 - 3) / 2 + 1;
  const Tensor w2_dev = gpu.upload_weight(w2);
  Tensor ref2 = Tensor::empty({N, O, Ho, Wo}, DType::F32);
  cpu_backend().conv2d(x2, w2.to(w2_dev.dtype()), Tensor(), p2, ref2);
  Tensor out2_dev = gpu.empty({N, O, Ho, Wo}, DType::F32);
  gpu.conv2d(gpu.to_device(x2), w2_dev, Tensor(), p2, out2_dev);
  got = gpu.to_host(out2_dev).to_f32_vector(), want = ref2.to_f32_vector();
  EXPECT_CLOSE(got.data(), want.data(), want.size(), 2e-5, rtol, "backend conv2d stride 2, no bias");

  // Typed errors: a host input, and an output of the wrong shape.
  CHECK_THROWS_CODE(gpu.conv3d(x, w_dev, bias_dev, p, out_dev), InvalidArgument);
  Tensor bad = gpu.empty({N, O, T, H, W + 1}, DType::F32);
  CHECK_THROWS_CODE(gpu.conv3d(gpu.to_device(x), w_dev, bias_dev, p, bad), ShapeMismatch);
}

SHOWO2_TEST_MAIN()
