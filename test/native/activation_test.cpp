// cpu::silu / gelu / softmax (native/core/cpu/activation.cpp, activation_avx2.cpp): both kernel sets against double
// references written here, on seeded random inputs with awkward row lengths and strided views; special values; the
// PyTorch GELU golden fixture; argument errors.
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "cpu/activation_internal.h"
#include "cpu/ops.h"
#include "cpu/thread_pool.h"
#include "kernel_fixtures.h"
#include "tensor.h"
#include "test_util.h"

using namespace showo2;
using cpu::ActivationKernel;
using showo2::test::random_vector;

namespace {

double silu_ref(double x) { return x / (1.0 + std::exp(-x)); }
double gelu_erf_ref(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }
double gelu_tanh_ref(double x) {
  const double k = std::sqrt(2.0 / 3.14159265358979323846);
  return 0.5 * x * (1.0 + std::tanh(k * (x + 0.044715 * x * x * x)));
}

std::vector<ActivationKernel> kernels() {
  std::vector<ActivationKernel> ks = {ActivationKernel::Portable};
  if (cpu::activation_kernel_available(ActivationKernel::Avx2)) ks.push_back(ActivationKernel::Avx2);
  return ks;
}

const char* kernel_name(ActivationKernel k) { return k == ActivationKernel::Avx2 ? "avx2" : "portable"; }

enum class Op { Silu, GeluErf, GeluTanh };

void run_op(Op op, const Tensor& x, Tensor& out, cpu::ThreadPool* pool, ActivationKernel k) {
  switch (op) {
    case Op::Silu: cpu::silu_with_kernel(x, out, pool, k); return;
    case Op::GeluErf: cpu::gelu_with_kernel(x, GeluApproximation::None, out, pool, k); return;
    case Op::GeluTanh: cpu::gelu_with_kernel(x, GeluApproximation::Tanh, out, pool, k); return;
  }
}

double op_ref(Op op, double x) {
  switch (op) {
    case Op::Silu: return silu_ref(x);
    case Op::GeluErf: return gelu_erf_ref(x);
    case Op::GeluTanh: return gelu_tanh_ref(x);
  }
  return 0;
}

// Tolerances per op and kernel, as |out - ref| <= atol + rtol*|ref|.
//   portable: one <cmath> call (<= 1 ulp) and 2-4 fp32 roundings: ~4 ulp relative, 4e-7 (rtol). The absolute part
//     covers gelu's 1 + erf / 1 + tanh cancellation for negative x: 1 ulp of 1 (1.2e-7) times 0.5|x| <= 5 for |x| <=
//     10, so 6e-7 (atol 1e-6).
//   avx2: the exp polynomial is good to ~2 ulp, so silu and tanh-GELU (which has no cancellation in this form) get the
//     same 4e-7; erf-GELU carries the A&S 7.1.26 error, |erf error| <= 1.5e-7, times 0.5|x| <= 5: 7.5e-7 absolute,
//     within atol 1e-6 (torch's own vectorised erf is the same approximation).
constexpr double kRtol = 4e-7;
constexpr double kAtol = 1e-6;

}  // namespace

SHOWO2_TEST(pointwise_activations_match_double_reference) {
  cpu::ThreadPool pool(2);
  for (ActivationKernel k : kernels())
    for (Op op : {Op::Silu, Op::GeluErf, Op::GeluTanh})
      for (int64_t C : {1, 7, 8, 9, 33, 1000}) {
        const int64_t rows = 5;
        std::vector<float> xv = random_vector(static_cast<size_t>(rows * C), 7 + static_cast<uint32_t>(C), -10, 10);
        Tensor x = Tensor::from_f32({rows, C}, xv);
        Tensor out = Tensor::empty({rows, C}, DType::F32);
        run_op(op, x, out, C == 1000 ? &pool : nullptr, k);
        std::vector<float> ref(xv.size());
        for (size_t i = 0; i < xv.size(); ++i) ref[i] = static_cast<float>(op_ref(op, xv[i]));
        std::vector<float> got = out.to_f32_vector();
        EXPECT_CLOSE(got.data(), ref.data(), ref.size(), kAtol, kRtol,
                     std::string(kernel_name(k)) + " op " + std::to_string(static_cast<int>(op)) + " C=" +
                         std::to_string(C));
      }
}

SHOWO2_TEST(activations_on_strided_views_and_in_place) {
  // Rows of a [4, 6, 20] tensor viewed as [6, 4, 10] through a transpose and a slice: leading strides are not the
  // contiguous ones. Then in place (out aliases x).
  for (ActivationKernel k : kernels()) {
    std::vector<float> xv = random_vector(4 * 6 * 20, 3, -6, 6);
    Tensor base = Tensor::from_f32({4, 6, 20}, xv);
    Tensor x = base.transpose(0, 1).slice(2, 5, 15);  // [6, 4, 10]
    Tensor out = Tensor::empty({6, 4, 10}, DType::F32);
    cpu::silu_with_kernel(x, out, nullptr, k);
    std::vector<float> got = out.to_f32_vector(), xs = x.to_f32_vector();
    std::vector<float> ref(xs.size());
    for (size_t i = 0; i < xs.size(); ++i) ref[i] = static_cast<float>(silu_ref(xs[i]));
    EXPECT_CLOSE(got.data(), ref.data(), ref.size(), kAtol, kRtol, "silu on a strided view");

    Tensor inplace = Tensor::from_f32({4, 6, 20}, xv);
    Tensor view = inplace.transpose(0, 1).slice(2, 5, 15);
    cpu::gelu_with_kernel(view, GeluApproximation::Tanh, view, nullptr, k);
    std::vector<float> after = view.to_f32_vector();
    for (size_t i = 0; i < xs.size(); ++i) ref[i] = static_cast<float>(gelu_tanh_ref(xs[i]));
    EXPECT_CLOSE(after.data(), ref.data(), ref.size(), kAtol, kRtol, "gelu_tanh in place on a view");
    // Elements outside the view are untouched.
    std::vector<float> all = inplace.to_f32_vector();
    CHECK_EQ(all[0], xv[0]);
    CHECK_EQ(all[19], xv[19]);
  }
}

SHOWO2_TEST(activations_special_values) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  for (ActivationKernel k : kernels()) {
    // 9 values: a full vector plus a tail element, so both code paths of the AVX2 kernels see them.
    Tensor x = Tensor::from_f32({9}, {nan, 0.0f, -0.0f, 100.0f, -100.0f, inf, 1e-30f, -1e-30f, nan});
    Tensor out = Tensor::empty({9}, DType::F32);
    for (Op op : {Op::Silu, Op::GeluErf, Op::GeluTanh}) {
      run_op(op, x, out, nullptr, k);
      std::vector<float> y = out.to_f32_vector();
      const std::string what = std::string(kernel_name(k)) + " op " + std::to_string(static_cast<int>(op));
      if (!std::isnan(y[0]) || !std::isnan(y[8])) test::fail_at(__FILE__, __LINE__, what + ": NaN must stay NaN");
      CHECK_EQ(y[1], 0.0f);
      CHECK_EQ(y[3], 100.0f);           // saturates to x
      CHECK(y[4] == 0.0f);              // -100 -> (-)0, never NaN
      CHECK(std::isinf(y[5]) && y[5] > 0);
      CHECK(std::fabs(y[6] - 0.5e-30f) < 1e-36f);  // f(x) ~ x/2 near 0 for all three
    }
  }
}

SHOWO2_TEST(gelu_matches_torch_fixture) {
  // tools/fixtures/make_kernel_fixtures.py: F.gelu(x) and F.gelu(x, approximate="tanh") over [-10, 10] and tails.
  const size_t n = 2011;
  std::vector<float> xv = test::read_kernel_fixture("gelu_x", n);
  std::vector<float> erf_ref = test::read_kernel_fixture("gelu_erf_out", n);
  std::vector<float> tanh_ref = test::read_kernel_fixture("gelu_tanh_out", n);
  Tensor x = Tensor::from_f32({static_cast<int64_t>(n)}, xv);
  Tensor out = Tensor::empty({static_cast<int64_t>(n)}, DType::F32);
  for (ActivationKernel k : kernels()) {
    // Against torch's fp32 result both sides carry their own rounding (torch: A&S erf, Sleef tanh, with the 1 + f
    // cancellation for negative x): the same 1e-6 absolute budget covers both errors (each <= ~7.5e-7 for |x| <= 10,
    // and the tails are exact 0 or x on both sides).
    cpu::gelu_with_kernel(x, GeluApproximation::None, out, nullptr, k);
    std::vector<float> got = out.to_f32_vector();
    EXPECT_CLOSE(got.data(), erf_ref.data(), n, 1.5e-6, 1e-6, std::string(kernel_name(k)) + " gelu vs torch");
    cpu::gelu_with_kernel(x, GeluApproximation::Tanh, out, nullptr, k);
    got = out.to_f32_vector();
    EXPECT_CLOSE(got.data(), tanh_ref.data(), n, 1.5e-6, 1e-6, std::string(kernel_name(k)) + " gelu_tanh vs torch");
  }
}

// ---- softmax ---------------------------------------------------------------------------------------------------------------

SHOWO2_TEST(softmax_matches_double_reference) {
  cpu::ThreadPool pool(2);
  for (ActivationKernel k : kernels())
    for (int64_t C : {1, 5, 8, 17, 730, 4097}) {
      const int64_t rows = 6;
      // Logits spread over [-30, 30], plus a row shifted by +1000 (stability: no overflow without the max shift).
      std::vector<float> xv = random_vector(static_cast<size_t>(rows * C), 100 + static_cast<uint32_t>(C), -30, 30);
      for (int64_t i = 0; i < C; ++i) xv[static_cast<size_t>(5 * C + i)] += 1000.0f;
      Tensor x = Tensor::from_f32({rows, C}, xv);
      Tensor out = Tensor::empty({rows, C}, DType::F32);
      cpu::softmax_with_kernel(x, out, C > 1000 ? &pool : nullptr, k);
      std::vector<float> ref(xv.size());
      for (int64_t r = 0; r < rows; ++r) {
        const float* row = xv.data() + r * C;
        double m = row[0];
        for (int64_t i = 0; i < C; ++i) m = std::max<double>(m, row[i]);
        double s = 0;
        for (int64_t i = 0; i < C; ++i) s += std::exp(static_cast<double>(row[i]) - m);
        for (int64_t i = 0; i < C; ++i) ref[static_cast<size_t>(r * C + i)] = static_cast<float>(std::exp(row[i] - m) / s);
      }
      std::vector<float> got = out.to_f32_vector();
      // x - max is exact-ish (one rounding, amplified by exp to |x - max| * eps <= 60 * 6e-8 = 3.6e-6 relative for
      // the smallest probabilities), exp adds ~2 ulp, the fp32 sum of <= 4097 positive terms ~ C/8 * eps in the worst
      // case but ~1e-6 in practice: rtol 1e-5. atol 1e-12 lets probabilities that underflow in fp32 pass.
      EXPECT_CLOSE(got.data(), ref.data(), ref.size(), 1e-12, 1e-5,
                   std::string(kernel_name(k)) + " softmax C=" + std::to_string(C));
    }
}

SHOWO2_TEST(softmax_special_values_and_in_place) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  for (ActivationKernel k : kernels()) {
    // Row 0: masked entries (-inf) get exactly 0. Row 1: a NaN poisons the whole row, as in torch.
    Tensor x = Tensor::from_f32({2, 10}, {0.0f, -inf, 1.0f, -inf, 2.0f, 0.5f, -inf, -inf, 3.0f, -inf,
                                          0.0f, 1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f, 7.0f, 8.0f, nan});
    cpu::softmax_with_kernel(x, x, nullptr, k);  // in place
    std::vector<float> y = x.to_f32_vector();
    double sum = 0;
    for (int i = 0; i < 10; ++i) sum += y[static_cast<size_t>(i)];
    CHECK(std::fabs(sum - 1.0) < 1e-6);
    CHECK_EQ(y[1], 0.0f);
    CHECK_EQ(y[9], 0.0f);
    for (int i = 10; i < 20; ++i) CHECK(std::isnan(y[static_cast<size_t>(i)]));
  }
}

// ---- errors --------------------------------------------------------------------------------------------------------------------

SHOWO2_TEST(activation_rejects_bad_arguments) {
  Tensor x = Tensor::zeros({3, 4}, DType::F32);
  Tensor wrong_shape = Tensor::empty({4, 3}, DType::F32);
  CHECK_THROWS_CODE(cpu::silu(x, wrong_shape, nullptr), ShapeMismatch);
  Tensor bf = Tensor::zeros({3, 4}, DType::BF16);
  CHECK_THROWS_CODE(cpu::gelu(bf, GeluApproximation::None, x, nullptr), UnsupportedDtype);
  Tensor strided_last = Tensor::zeros({4, 3}, DType::F32).transpose(0, 1);  // [3, 4] with last stride 3
  CHECK_THROWS_CODE(cpu::softmax(strided_last, x, nullptr), ShapeMismatch);
  CHECK_THROWS_CODE(cpu::softmax(Tensor::zeros({}, DType::F32), x, nullptr), ShapeMismatch);
  CHECK_THROWS_CODE(cpu::silu(Tensor(), x, nullptr), InvalidArgument);
  try {
    cpu::gelu(x, GeluApproximation::Tanh, wrong_shape, nullptr);
    CHECK(false);
  } catch (const Error& e) {
    CHECK(std::string(e.what()).rfind("gelu: out: expected shape [3, 4]", 0) == 0);
  }
}

SHOWO2_TEST_MAIN()
