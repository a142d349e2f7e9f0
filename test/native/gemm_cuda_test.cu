// cuda/gemm.cu (CudaBackend::linear / matmul through cuBLASLt) against the CPU GEMM (native/core/cpu/linear.cpp) at
// the model's shapes and at odd sizes, with F32 and BF16 weights; plus the memory API it relies on (upload_weight's
// conversion and cache, to_device / to_host round trips). Skips with the reason when no supported GPU is present.
//
// Tolerances, derived per output element from S = sum_k |x_k w_k| (+ |bias|), computed in double on the host:
//   * BF16 weights: the CPU reference uses the same bf16 weight values (the host tensor is converted with dtype.h's
//     round-to-nearest-even, as upload_weight does), so the only extra rounding on the GPU is x -> bf16 (relative
//     error <= u = 2^-8 per product) plus fp32 accumulation in a different order (<= K * 2^-24 * S, Higham's gamma_K
//     to first order). Bound: (2^-8 + 2 K 2^-24) * S.
//   * F32 weights and matmul: both sides accumulate in fp32 (no TF32), only the order differs: 2 K 2^-24 * S.
// A kernel that rounded anything else (e.g. the output to bf16, or used TF32) exceeds these bounds on random data.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "cpu/ops.h"
#include "cuda_backend.h"
#include "device_info.h"
#include "tensor.h"
#include "test_util.h"

using namespace showo2;
using showo2::test::random_vector;

namespace {

cuda::CudaBackend& backend() {
  static std::unique_ptr<cuda::CudaBackend> b;
  if (!b) {
    const cuda::CudaInfo info = cuda::query_cuda();
    if (!info.unavailable_reason.empty()) test::skip_test("no supported CUDA device: " + info.unavailable_reason);
    b = std::make_unique<cuda::CudaBackend>();
  }
  return *b;
}

// Checks |out - ref| <= rel_bound * S_i elementwise; prints the worst ratio either way.
void expect_within(const std::vector<float>& out, const std::vector<float>& ref, const std::vector<double>& s,
                   double rel_bound, const std::string& what) {
  double worst = 0;
  size_t bad = 0, first_bad = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double err = std::fabs(static_cast<double>(out[i]) - ref[i]);
    const double allowed = rel_bound * s[i] + 1e-30;
    const double ratio = err / allowed;
    if (!(ratio <= 1.0)) {
      if (bad++ == 0) first_bad = i;
    }
    if (ratio > worst || std::isnan(ratio)) worst = ratio;
  }
  std::printf("    %s: worst |err| / bound = %.3g over %zu values\n", what.c_str(), worst, ref.size());
  if (bad)
    test::fail_at(__FILE__, __LINE__, what + ": " + std::to_string(bad) + " values outside the bound; first at " +
                                          std::to_string(first_bad) + " out=" + std::to_string(out[first_bad]) +
                                          " ref=" + std::to_string(ref[first_bad]));
}

// S_i = sum_k |x[m, k] w[n, k]| + |bias[n]| for out[m, n].
std::vector<double> magnitudes(const std::vector<float>& x, const std::vector<float>& w, const std::vector<float>& b,
                               int64_t M, int64_t N, int64_t K) {
  std::vector<double> s(static_cast<size_t>(M * N));
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double acc = b.empty() ? 0.0 : std::fabs(b[static_cast<size_t>(n)]);
      for (int64_t k = 0; k < K; ++k)
        acc += std::fabs(static_cast<double>(x[static_cast<size_t>(m * K + k)]) * w[static_cast<size_t>(n * K + k)]);
      s[static_cast<size_t>(m * N + n)] = acc;
    }
  return s;
}

void check_linear(int64_t M, int64_t N, int64_t K, DType weight_dtype, bool with_bias, uint32_t seed) {
  cuda::CudaBackend& gpu = backend();
  const std::vector<float> xv = random_vector(static_cast<size_t>(M * K), seed);
  const std::vector<float> wv = random_vector(static_cast<size_t>(N * K), seed + 1, -0.1f, 0.1f);
  const std::vector<float> bv = with_bias ? random_vector(static_cast<size_t>(N), seed + 2) : std::vector<float>{};
  const Tensor x = Tensor::from_f32({M, K}, xv);
  // The host weight in the dtype the GPU will hold, so both sides multiply the same weight values.
  const Tensor w = weight_dtype == DType::F32 ? Tensor::from_f32({N, K}, wv) : Tensor::from_f32({N, K}, wv).to(weight_dtype);
  const Tensor bias = with_bias ? Tensor::from_f32({N}, bv) : Tensor();
  Tensor ref = Tensor::empty({M, N}, DType::F32);
  cpu::linear(x, w, bias, ref, nullptr);

  const Tensor w_dev = gpu.upload_weight(w);
  CHECK(w_dev.device() == Device::Cuda && w_dev.dtype() == (weight_dtype == DType::F32 ? gpu.weight_dtype() : weight_dtype));
  Tensor out = gpu.empty({M, N}, DType::F32);
  gpu.linear(gpu.to_device(x), w_dev, with_bias ? gpu.upload_weight(bias) : Tensor(), out);
  const std::vector<float> got = gpu.to_host(out).to_f32_vector();

  const std::vector<float> w_used = w.to_f32_vector();
  const double accumulation = 2.0 * static_cast<double>(K) * std::ldexp(1.0, -24);
  const double bound = (weight_dtype == DType::F32 ? 0.0 : std::ldexp(1.0, -8)) + accumulation;
  expect_within(got, ref.to_f32_vector(), magnitudes(xv, w_used, bv, M, N, K), bound,
                "linear M" + std::to_string(M) + " N" + std::to_string(N) + " K" + std::to_string(K) + " " +
                    dtype_name(weight_dtype) + (with_bias ? " +bias" : ""));
}

}  // namespace

SHOWO2_TEST(linear_bf16_at_model_shapes) {
  // Qwen2.5-1.5B q_proj / k_proj with bias, the MLP up projection, the flow head's adaLN (one row) and its final
  // linear, at a token count that is no multiple of any tile.
  check_linear(17, 1536, 1536, DType::BF16, true, 1);
  check_linear(17, 256, 1536, DType::BF16, true, 2);
  check_linear(17, 8960, 1536, DType::BF16, false, 3);
  check_linear(2, 12288, 2048, DType::BF16, true, 4);
  check_linear(1, 1536, 8960, DType::BF16, false, 5);  // a decode step's down_proj
  check_linear(33, 64, 2048, DType::BF16, true, 6);
}

SHOWO2_TEST(linear_odd_sizes_f32_and_bf16) {
  for (DType dt : {DType::F32, DType::BF16})
    for (bool bias : {false, true}) {
      check_linear(3, 19, 37, dt, bias, 10);
      check_linear(1, 7, 5, dt, bias, 11);
      check_linear(65, 129, 257, dt, bias, 12);
    }
}

SHOWO2_TEST(linear_strided_rows_and_leading_dims) {
  cuda::CudaBackend& gpu = backend();
  const int64_t B = 2, L = 9, K = 40, N = 24;
  const std::vector<float> xv = random_vector(static_cast<size_t>(B * L * 2 * K), 20);
  const Tensor wide = Tensor::from_f32({B, L, 2 * K}, xv);
  const Tensor x = wide.slice(2, K, 2 * K);  // [B, L, K] with row stride 2K
  const Tensor w = Tensor::from_f32({N, K}, random_vector(static_cast<size_t>(N * K), 21));
  Tensor ref = Tensor::empty({B, L, N}, DType::F32);
  cpu::linear(x, w, Tensor(), ref, nullptr);
  Tensor out = gpu.empty({B, L, N}, DType::F32);
  gpu.linear(gpu.to_device(wide).slice(2, K, 2 * K), gpu.upload_weight(w), Tensor(), out);
  const std::vector<float> got = gpu.to_host(out).to_f32_vector();
  const std::vector<float> xc = x.to_f32_vector();
  expect_within(got, ref.to_f32_vector(), magnitudes(xc, w.to_f32_vector(), {}, B * L, N, K),
                std::ldexp(1.0, -8) + 2.0 * K * std::ldexp(1.0, -24), "linear on a strided [B, L, K] view");
}

SHOWO2_TEST(matmul_f32_batched_and_broadcast) {
  cuda::CudaBackend& gpu = backend();
  for (bool transpose_b : {false, true})
    for (int64_t Bb : {int64_t{1}, int64_t{3}}) {
      const int64_t B = 3, M = 5, K = 67, N = 9;
      const std::vector<float> av = random_vector(static_cast<size_t>(B * M * K), 30);
      const Shape b_shape = transpose_b ? Shape{Bb, N, K} : Shape{Bb, K, N};
      const std::vector<float> bv = random_vector(static_cast<size_t>(shape_numel(b_shape)), 31);
      const Tensor a = Tensor::from_f32({B, M, K}, av), b = Tensor::from_f32(b_shape, bv);
      Tensor ref = Tensor::empty({B, M, N}, DType::F32);
      cpu::matmul(a, b, transpose_b, ref, nullptr);
      Tensor out = gpu.empty({B, M, N}, DType::F32);
      gpu.matmul(gpu.to_device(a), gpu.to_device(b), transpose_b, out);
      // S from the same products: b as [N, K] per batch.
      std::vector<double> s(static_cast<size_t>(B * M * N));
      for (int64_t i = 0; i < B; ++i)
        for (int64_t m = 0; m < M; ++m)
          for (int64_t n = 0; n < N; ++n) {
            double acc = 0;
            const int64_t bi = Bb == 1 ? 0 : i;
            for (int64_t k = 0; k < K; ++k) {
              const float bk = transpose_b ? bv[static_cast<size_t>((bi * N + n) * K + k)]
                                           : bv[static_cast<size_t>((bi * K + k) * N + n)];
              acc += std::fabs(static_cast<double>(av[static_cast<size_t>((i * M + m) * K + k)]) * bk);
            }
            s[static_cast<size_t>((i * M + m) * N + n)] = acc;
          }
      expect_within(gpu.to_host(out).to_f32_vector(), ref.to_f32_vector(), s, 2.0 * K * std::ldexp(1.0, -24),
                    std::string("matmul") + (transpose_b ? " b^T" : "") + " b batch " + std::to_string(Bb));
    }
}

SHOWO2_TEST(upload_weight_converts_once_and_round_trips) {
  cuda::CudaBackend& gpu = backend();
  const Tensor w = Tensor::from_f32({4, 6}, random_vector(24, 40));
  const Tensor v = Tensor::from_f32({6}, random_vector(6, 41));
  const Tensor w_dev = gpu.upload_weight(w), again = gpu.upload_weight(w);
  CHECK(w_dev.device_raw() == again.device_raw());  // the cache: a tied weight uploads once
  CHECK(w_dev.dtype() == DType::BF16);
  CHECK(gpu.to_host(w_dev).to_f32_vector() == w.to(DType::BF16).to_f32_vector());  // RNE as dtype.h
  const Tensor v_dev = gpu.upload_weight(v);
  CHECK(v_dev.dtype() == DType::F32);  // vectors stay F32 (norm scales, biases)
  CHECK(gpu.to_host(v_dev).to_f32_vector() == v.to_f32_vector());
  // to_host of a strided device view gathers it.
  const Tensor x = Tensor::from_f32({3, 4}, random_vector(12, 42));
  CHECK(gpu.to_host(gpu.to_device(x).transpose(0, 1)).to_f32_vector() == x.transpose(0, 1).to_f32_vector());
  CHECK_THROWS_CODE(gpu.to_device(x).to_f32_vector(), InvalidArgument);  // host code never reads device memory
}

SHOWO2_TEST_MAIN()
