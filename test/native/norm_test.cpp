// cpu::rms_norm / layer_norm (native/core/cpu/norm.cpp) against double references written here: the model's row
// sizes and odd ones, F32/BF16/F16/absent parameters, strided views, in place, threads; argument errors.
//
// Tolerance: the reference is double throughout. The kernel sums in fp32 (8 interleaved partial sums, finished in
// double), so the statistics carry ~sqrt(C/8) ulp (< 3e-6 relative at C = 4736, the largest norm in Show-o2), and the
// output adds ~3 fp32 roundings: rtol 1e-5. atol 1e-6 covers outputs near zero, whose error is set by the row scale
// (|x| <= ~4 here, divided by a std/rms of ~1: ~1e-6 absolute at most).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cpu/ops.h"
#include "cpu/thread_pool.h"
#include "tensor.h"
#include "test_util.h"

using namespace showo2;
using showo2::test::random_normal;
using showo2::test::random_vector;

namespace {

constexpr double kAtol = 1e-6;
constexpr double kRtol = 1e-5;

std::vector<float> rms_ref(const std::vector<float>& x, int64_t C, const std::vector<float>& w, double eps) {
  std::vector<float> y(x.size());
  for (size_t r = 0; r < x.size() / static_cast<size_t>(C); ++r) {
    const float* row = x.data() + r * C;
    double ss = 0;
    for (int64_t i = 0; i < C; ++i) ss += static_cast<double>(row[i]) * row[i];
    const double inv = 1.0 / std::sqrt(ss / C + eps);
    for (int64_t i = 0; i < C; ++i) y[r * C + i] = static_cast<float>(row[i] * inv * (w.empty() ? 1.0 : w[i]));
  }
  return y;
}

std::vector<float> ln_ref(const std::vector<float>& x, int64_t C, const std::vector<float>& w,
                          const std::vector<float>& b, double eps) {
  std::vector<float> y(x.size());
  for (size_t r = 0; r < x.size() / static_cast<size_t>(C); ++r) {
    const float* row = x.data() + r * C;
    double mean = 0;
    for (int64_t i = 0; i < C; ++i) mean += row[i];
    mean /= C;
    double var = 0;
    for (int64_t i = 0; i < C; ++i) var += (row[i] - mean) * (row[i] - mean);
    var /= C;
    const double inv = 1.0 / std::sqrt(var + eps);
    for (int64_t i = 0; i < C; ++i)
      y[r * C + i] = static_cast<float>((row[i] - mean) * inv * (w.empty() ? 1.0 : w[i]) + (b.empty() ? 0.0 : b[i]));
  }
  return y;
}

// A [C] parameter in `dtype` (or undefined), and the values the reference should use (after rounding).
Tensor make_param(int64_t C, DType dtype, bool defined, uint32_t seed, std::vector<float>* values) {
  values->clear();
  if (!defined) return Tensor();
  Tensor t = Tensor::from_f32({C}, random_vector(static_cast<size_t>(C), seed, 0.5f, 1.5f)).to(dtype);
  *values = t.to_f32_vector();
  return t;
}

}  // namespace

SHOWO2_TEST(rms_norm_matches_reference) {
  cpu::ThreadPool pool(2);
  // 1536/2048/64/2688: LLM, flow head, q/k-norm, fusion; 1, 7, 33: tails.
  for (int64_t C : {1, 7, 33, 64, 1536, 2048, 2688})
    for (DType dt : {DType::F32, DType::BF16, DType::F16})
      for (bool with_weight : {true, false}) {
        const int64_t rows = 9;
        std::vector<float> xv = random_normal(static_cast<size_t>(rows * C), 1 + static_cast<uint32_t>(C), 1.5f);
        std::vector<float> wv;
        Tensor w = make_param(C, dt, with_weight, 2, &wv);
        Tensor x = Tensor::from_f32({rows, C}, xv);
        Tensor out = Tensor::empty({rows, C}, DType::F32);
        cpu::rms_norm(x, w, 1e-6f, out, C >= 1536 ? &pool : nullptr);
        std::vector<float> ref = rms_ref(xv, C, wv, 1e-6f), got = out.to_f32_vector();
        EXPECT_CLOSE(got.data(), ref.data(), ref.size(), kAtol, kRtol,
                     "rms_norm C=" + std::to_string(C) + " " + dtype_name(dt) + (with_weight ? "" : " no weight"));
      }
}

SHOWO2_TEST(layer_norm_matches_reference) {
  cpu::ThreadPool pool(2);
  // 1152: SigLIP; a large mean offset checks the two-pass variance (a one-pass E[x^2] - E[x]^2 would lose it).
  for (int64_t C : {1, 5, 72, 1152, 4736})
    for (DType dt : {DType::F32, DType::BF16})
      for (bool with_params : {true, false}) {
        const int64_t rows = 7;
        std::vector<float> xv = random_normal(static_cast<size_t>(rows * C), 3 + static_cast<uint32_t>(C));
        for (size_t i = 0; i < xv.size(); ++i) xv[i] += (i / C == 3) ? 300.0f : 0.0f;
        std::vector<float> wv, bv;
        Tensor w = make_param(C, dt, with_params, 4, &wv);
        Tensor b = make_param(C, dt, with_params, 5, &bv);
        Tensor x = Tensor::from_f32({rows, C}, xv);
        Tensor out = Tensor::empty({rows, C}, DType::F32);
        cpu::layer_norm(x, w, b, 1e-6f, out, C >= 1152 ? &pool : nullptr);
        std::vector<float> ref = ln_ref(xv, C, wv, bv, 1e-6f), got = out.to_f32_vector();
        // Row 3 sits at 300 +- 3: x - mean is exact to 300 * eps = 3.6e-5 absolute before scaling by 1/std (~1), so
        // that row needs atol 1e-4; the others keep the file's tolerance. torch's fp32 LayerNorm has the same limit.
        for (int64_t r = 0; r < rows; ++r)
          EXPECT_CLOSE(got.data() + r * C, ref.data() + r * C, static_cast<size_t>(C), r == 3 ? 1e-4 : kAtol, kRtol,
                       "layer_norm C=" + std::to_string(C) + " " + dtype_name(dt) + " row " + std::to_string(r));
      }
}

SHOWO2_TEST(norms_on_views_and_in_place) {
  // q/k-norm runs per head on a [B, L, H, D] view of the projection output; rows are not contiguous.
  std::vector<float> base_values = random_normal(2 * 3 * 4 * 64, 9);
  Tensor base = Tensor::from_f32({2, 3, 4 * 64}, base_values);
  Tensor heads = base.reshape({2, 3, 4, 64}).slice(2, 1, 3);  // [2, 3, 2, 64], leading strides of a 4-head tensor
  std::vector<float> xv = heads.to_f32_vector();
  std::vector<float> wv;
  Tensor w = make_param(64, DType::BF16, true, 10, &wv);
  std::vector<float> ref = rms_ref(xv, 64, wv, 1e-6f);
  cpu::rms_norm(heads, w, 1e-6f, heads, nullptr);  // in place
  std::vector<float> got = heads.to_f32_vector();
  EXPECT_CLOSE(got.data(), ref.data(), ref.size(), kAtol, kRtol, "rms_norm in place on a head view");
  // Heads 0 and 3 are untouched.
  std::vector<float> all = base.to_f32_vector();
  CHECK_EQ(all[0], base_values[0]);
  CHECK_EQ(all[3 * 64 + 5], base_values[3 * 64 + 5]);
}

SHOWO2_TEST(norms_zero_rows_are_finite) {
  // An all-zero row gives 0 * 1/sqrt(eps): finite zeros, not NaN.
  Tensor x = Tensor::zeros({2, 16}, DType::F32);
  Tensor out = Tensor::empty({2, 16}, DType::F32);
  cpu::rms_norm(x, Tensor(), 1e-5f, out, nullptr);
  for (float v : out.to_f32_vector()) CHECK_EQ(v, 0.0f);
  cpu::layer_norm(x, Tensor(), Tensor(), 1e-5f, out, nullptr);
  for (float v : out.to_f32_vector()) CHECK_EQ(v, 0.0f);
}

SHOWO2_TEST(norms_reject_bad_arguments) {
  Tensor x = Tensor::zeros({3, 8}, DType::F32);
  Tensor out = Tensor::empty({3, 8}, DType::F32);
  CHECK_THROWS_CODE(cpu::rms_norm(x, Tensor::zeros({7}, DType::F32), 1e-6f, out, nullptr), ShapeMismatch);
  CHECK_THROWS_CODE(cpu::rms_norm(x, Tensor::zeros({8}, DType::I32), 1e-6f, out, nullptr), UnsupportedDtype);
  CHECK_THROWS_CODE(cpu::rms_norm(x, Tensor(), -1.0f, out, nullptr), InvalidArgument);
  CHECK_THROWS_CODE(cpu::rms_norm(x, Tensor(), NAN, out, nullptr), InvalidArgument);
  CHECK_THROWS_CODE(cpu::layer_norm(x, Tensor(), Tensor::zeros({9}, DType::F32), 1e-6f, out, nullptr),
                    ShapeMismatch);
  Tensor out_bad = Tensor::empty({3, 9}, DType::F32);
  CHECK_THROWS_CODE(cpu::layer_norm(x, Tensor(), Tensor(), 1e-6f, out_bad, nullptr), ShapeMismatch);
  CHECK_THROWS_CODE(cpu::layer_norm(x.to(DType::BF16), Tensor(), Tensor(), 1e-6f, out, nullptr), UnsupportedDtype);
  CHECK_THROWS_CODE(cpu::rms_norm(x.transpose(0, 1), Tensor(), 1e-6f, out, nullptr), ShapeMismatch);
  try {
    cpu::rms_norm(x, Tensor::zeros({7}, DType::F32), 1e-6f, out, nullptr);
    CHECK(false);
  } catch (const Error& e) {
    CHECK(std::string(e.what()).rfind("rms_norm: weight: expected shape [8]", 0) == 0);
  }
}

// ---- channel_rms_norm (the Wan VAE's RMS_norm, spec §3.1) ----------------------------------------------------------
// Reference in double: y = x / max(||x[n, :, s]||, 1e-12) * sqrt(C) * gamma[c]. Same tolerance as above: the kernel
// sums in double and adds three fp32 roundings (divide, scale, gamma).
std::vector<float> channel_rms_ref(const std::vector<float>& x, int64_t N, int64_t C, int64_t S,
                                   const std::vector<float>& g) {
  std::vector<float> y(x.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t s = 0; s < S; ++s) {
      double ss = 0;
      for (int64_t c = 0; c < C; ++c) ss += static_cast<double>(x[(n * C + c) * S + s]) * x[(n * C + c) * S + s];
      const double denom = std::max(std::sqrt(ss), 1e-12);
      for (int64_t c = 0; c < C; ++c)
        y[(n * C + c) * S + s] = static_cast<float>(x[(n * C + c) * S + s] / denom * std::sqrt(double(C)) * g[c]);
    }
  return y;
}

SHOWO2_TEST(channel_rms_norm_matches_reference) {
  cpu::ThreadPool pool(2);
  // [N, C, T, H, W] with the VAE's awkward widths (96, 384) and odd positions, [N, C, H, W], and [N, C].
  const std::vector<Shape> shapes = {{1, 96, 2, 5, 7}, {2, 384, 1, 3, 67}, {1, 3, 9, 9}, {3, 16}, {1, 8, 1, 200}};
  uint32_t seed = 900;
  for (const Shape& shape : shapes) {
    const int64_t N = shape[0], C = shape[1], S = shape_numel(shape) / (N * C);
    auto xv = random_normal(static_cast<size_t>(shape_numel(shape)), seed++, 2.0f);
    auto gv = random_vector(static_cast<size_t>(C), seed++, 0.5f, 1.5f);
    auto ref = channel_rms_ref(xv, N, C, S, gv);
    for (DType gdt : {DType::F32, DType::BF16, DType::F16}) {
      Tensor gamma = Tensor::from_f32({C}, gv).to(gdt);
      auto gw = gamma.to_f32_vector();  // the reference sees the rounded gamma
      auto ref_g = channel_rms_ref(xv, N, C, S, gw);
      Tensor x = Tensor::from_f32(shape, xv), out = Tensor::empty(shape, DType::F32);
      cpu::channel_rms_norm(x, gamma, out, &pool);
      EXPECT_CLOSE(out.data<float>(), ref_g.data(), ref_g.size(), kAtol, kRtol, "channel_rms_norm " + x.shape_string());
      cpu::channel_rms_norm(x, gamma, x, nullptr);  // in place, single-threaded
      EXPECT_CLOSE(x.data<float>(), ref_g.data(), ref_g.size(), kAtol, kRtol, "channel_rms_norm in place");
    }
    (void)ref;
  }
  // An all-zero position divides by the 1e-12 floor: zeros, not NaN.
  Tensor z = Tensor::zeros({1, 4, 3}, DType::F32), out = Tensor::empty({1, 4, 3}, DType::F32);
  cpu::channel_rms_norm(z, Tensor::from_f32({4}, {1, 1, 1, 1}), out, nullptr);
  for (float v : out.to_f32_vector()) CHECK_EQ(v, 0.0f);
}

SHOWO2_TEST(channel_rms_norm_rejects_bad_arguments) {
  Tensor x = Tensor::zeros({1, 4, 3}, DType::F32), out = Tensor::empty({1, 4, 3}, DType::F32);
  CHECK_THROWS_CODE(cpu::channel_rms_norm(x, Tensor::zeros({3}, DType::F32), out, nullptr), ShapeMismatch);
  CHECK_THROWS_CODE(cpu::channel_rms_norm(x, Tensor(), out, nullptr), InvalidArgument);
  CHECK_THROWS_CODE(cpu::channel_rms_norm(Tensor::zeros({4}, DType::F32), Tensor::zeros({4}, DType::F32), out, nullptr),
                    ShapeMismatch);
  Tensor wrong = Tensor::empty({1, 4, 2}, DType::F32);
  CHECK_THROWS_CODE(cpu::channel_rms_norm(x, Tensor::zeros({4}, DType::F32), wrong, nullptr), ShapeMismatch);
  // Channels-last x with a contiguous out (and the reverse) is a layout mismatch; a view that is neither is too.
  Tensor channels_last = Tensor::zeros({1, 3, 4}, DType::F32).transpose(1, 2);
  CHECK_THROWS_CODE(cpu::channel_rms_norm(channels_last, Tensor::zeros({4}, DType::F32), out, nullptr), ShapeMismatch);
  CHECK_THROWS_CODE(cpu::channel_rms_norm(out, Tensor::zeros({4}, DType::F32), channels_last, nullptr), ShapeMismatch);
  Tensor neither = Tensor::zeros({2, 3, 4, 1}, DType::F32).transpose(0, 2);  // [4, 3, 2, 1]
  Tensor out4 = Tensor::empty({4, 3, 2, 1}, DType::F32);
  CHECK_THROWS_CODE(cpu::channel_rms_norm(neither, Tensor::zeros({3}, DType::F32), out4, nullptr), ShapeMismatch);
}

// Channels-last x and out (memory [N, S..., C], the VAE's layout on the GPU): the same arithmetic as the contiguous
// layout, so the same bits, element for element.
SHOWO2_TEST(channel_rms_norm_channels_last_equals_contiguous) {
  cpu::ThreadPool pool(2);
  uint32_t seed = 950;
  for (const Shape& shape : std::vector<Shape>{{1, 96, 2, 5, 7}, {2, 384, 1, 3, 67}, {2, 3, 9, 9}, {1, 5, 130}}) {
    const int64_t C = shape[1];
    Tensor x = Tensor::from_f32(shape, random_normal(static_cast<size_t>(shape_numel(shape)), seed++, 2.0f));
    Tensor gamma = Tensor::from_f32({C}, random_vector(static_cast<size_t>(C), seed++, 0.5f, 1.5f)).to(DType::BF16);
    Tensor expected = Tensor::empty(shape, DType::F32);
    cpu::channel_rms_norm(x, gamma, expected, &pool);
    const int64_t rank = static_cast<int64_t>(shape.size());
    Tensor x_cl = x.permute(channels_last_to_memory_order(rank)).contiguous().permute(memory_order_to_channels_last(rank));
    CHECK(x_cl.is_channels_last() && !x_cl.is_contiguous());
    Tensor out_cl = Tensor::empty(x_cl.permute(channels_last_to_memory_order(rank)).shape(), DType::F32)
                        .permute(memory_order_to_channels_last(rank));
    cpu::channel_rms_norm(x_cl, gamma, out_cl, &pool);
    CHECK(out_cl.to_f32_vector() == expected.to_f32_vector());
    cpu::channel_rms_norm(x_cl, gamma, x_cl, nullptr);  // in place
    CHECK(x_cl.to_f32_vector() == expected.to_f32_vector());
  }
}

SHOWO2_TEST_MAIN()
