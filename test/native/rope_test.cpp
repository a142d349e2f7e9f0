// RoPE tables (native/core/rope.cpp) and the in-place rotation (native/core/cpu/rope.cpp): inverse frequencies with and
// without the Llama-3 remap against an independent formulation written here and against PyTorch (golden fixture), the
// cos/sin table against its formula, the rotation against a double reference on strided views; argument errors.
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cpu/ops.h"
#include "cpu/thread_pool.h"
#include "kernel_fixtures.h"
#include "rope.h"
#include "tensor.h"
#include "test_util.h"

using namespace showo2;
using showo2::test::random_vector;

namespace {

constexpr double kTwoPi = 6.28318530717958647692;

// The flow head's configuration (spec §5.2, DiffusionHeadConfig).
Llama3RopeScaling flow_head_scaling() { return Llama3RopeScaling{32.0, 1.0, 4.0, 8192.0}; }

// The Llama-3 rule written in frequency terms rather than wavelengths: a frequency f (radians per position) completes
// original*f/(2*pi) turns over the original context. More than high_freq_factor turns: keep; fewer than
// low_freq_factor: slow down by factor; in between, blend linearly in that turn count.
double llama3_by_turns(double f, const Llama3RopeScaling& s) {
  const double turns = s.original_max_position_embeddings * f / kTwoPi;
  if (turns > s.high_freq_factor) return f;
  if (turns < s.low_freq_factor) return f / s.factor;
  const double w = (turns - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
  return f * (w + (1.0 - w) / s.factor);
}

}  // namespace

SHOWO2_TEST(inverse_frequencies_unscaled) {
  // Qwen2.5: head_dim 128, theta 1e6. theta^(-2i/d) = exp(-(2i/d) ln theta) in long double.
  std::vector<double> inv = rope_inverse_frequencies(128, 1e6, std::nullopt);
  CHECK_EQ(inv.size(), size_t{64});
  for (int i = 0; i < 64; ++i) {
    const long double expected = std::exp(-(2.0L * i / 128.0L) * std::log(1e6L));
    // Both are double-precision evaluations of the same real number: a few ulp (1e-15 relative) apart.
    CHECK(std::fabs(inv[static_cast<size_t>(i)] - static_cast<double>(expected)) <= 1e-14 * static_cast<double>(expected));
  }
  CHECK_EQ(inv[0], 1.0);
}

SHOWO2_TEST(inverse_frequencies_llama3_match_independent_formula) {
  const Llama3RopeScaling s = flow_head_scaling();
  std::vector<double> inv = rope_inverse_frequencies(64, 5e5, s);
  std::vector<double> plain = rope_inverse_frequencies(64, 5e5, std::nullopt);
  int kept = 0, divided = 0, blended = 0;
  for (size_t i = 0; i < inv.size(); ++i) {
    const double expected = llama3_by_turns(plain[i], s);
    // The two formulations round differently in the blend band: allow 1e-13 relative (a few hundred ulp is still
    // nothing next to any real mistake, e.g. a swapped factor is 32x).
    CHECK(std::fabs(inv[i] - expected) <= 1e-13 * expected);
    if (inv[i] == plain[i]) ++kept;
    else if (inv[i] == plain[i] / 32.0) ++divided;
    else ++blended;
  }
  // head_dim 64, theta 5e5: wavelengths 2*pi*5e5^(2i/64) cross 2048 after i = 14 and 8192 after i = 17, so all three
  // bands are exercised.
  CHECK_EQ(kept, 15);
  CHECK_EQ(blended, 3);
  CHECK_EQ(divided, 14);
  // Spot values: i = 0 keeps 1; the last frequency is divided by the factor.
  CHECK_EQ(inv[0], 1.0);
  CHECK(std::fabs(inv[31] - std::pow(5e5, -62.0 / 64.0) / 32.0) <= 1e-15 * inv[31] * 32);
}

SHOWO2_TEST(inverse_frequencies_match_torch_fixture) {
  // tools/fixtures/make_kernel_fixtures.py reproduces transformers' llama3 init (and the plain init) in fp32 torch.
  std::vector<float> llama3 = test::read_kernel_fixture("rope_inv_freq_llama3_d64", 32);
  std::vector<float> qwen = test::read_kernel_fixture("rope_inv_freq_qwen2_d128", 64);
  std::vector<double> ours_llama3 = rope_inverse_frequencies(64, 5e5, flow_head_scaling());
  std::vector<double> ours_qwen = rope_inverse_frequencies(128, 1e6, std::nullopt);
  // torch evaluates theta ** (i/d) and the remap in fp32: each value within a few fp32 ulp (~2.4e-7 relative) of
  // the exact one we compute in double; 1e-6 relative bounds that with margin.
  for (size_t i = 0; i < 32; ++i) CHECK(std::fabs(ours_llama3[i] - llama3[i]) <= 1e-6 * ours_llama3[i]);
  for (size_t i = 0; i < 64; ++i) CHECK(std::fabs(ours_qwen[i] - qwen[i]) <= 1e-6 * ours_qwen[i]);
}

SHOWO2_TEST(table_matches_formula) {
  const int64_t positions = 300;
  RopeTable t = make_rope_table(64, positions, 5e5, flow_head_scaling());
  CHECK_EQ(t.head_dim, int64_t{64});
  CHECK_EQ(t.max_positions, positions);
  CHECK(t.cos.shape() == (Shape{positions, 32}));
  CHECK(t.sin.shape() == (Shape{positions, 32}));
  std::vector<double> inv = rope_inverse_frequencies(64, 5e5, flow_head_scaling());
  std::vector<float> c = t.cos.to_f32_vector(), s = t.sin.to_f32_vector(), c_ref(c.size()), s_ref(s.size());
  for (int64_t p = 0; p < positions; ++p)
    for (int64_t i = 0; i < 32; ++i) {
      c_ref[static_cast<size_t>(p * 32 + i)] = static_cast<float>(std::cos(p * inv[static_cast<size_t>(i)]));
      s_ref[static_cast<size_t>(p * 32 + i)] = static_cast<float>(std::sin(p * inv[static_cast<size_t>(i)]));
    }
  // The table is the double angle rounded once to fp32; the reference does the same, so they agree to within the
  // final rounding (half an fp32 ulp of 1 = 6e-8).
  EXPECT_CLOSE(c.data(), c_ref.data(), c.size(), 6e-8, 0.0, "cos table");
  EXPECT_CLOSE(s.data(), s_ref.data(), s.size(), 6e-8, 0.0, "sin table");
}

SHOWO2_TEST(rope_rotation_matches_reference) {
  cpu::ThreadPool pool(2);
  for (int64_t D : {2, 64, 128}) {
    const int64_t B = 2, L = 5, H = 3, offset = 3;
    RopeTable t = make_rope_table(D, 16, 1e6);
    // q is a view into a fused [B, L, 2, H, D] projection (q then k), so its leading strides are not contiguous ones.
    std::vector<float> fused_values =
        random_vector(static_cast<size_t>(B * L * 2 * H * D), 5 + static_cast<uint32_t>(D));
    Tensor fused = Tensor::from_f32({B, L, 2, H, D}, fused_values);
    Tensor q = fused.select(2, 0);  // [B, L, H, D]
    std::vector<float> before = q.to_f32_vector();
    std::vector<double> inv = rope_inverse_frequencies(D, 1e6, std::nullopt);
    std::vector<float> ref(before.size());
    const int64_t half = D / 2;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t l = 0; l < L; ++l)
        for (int64_t h = 0; h < H; ++h)
          for (int64_t i = 0; i < half; ++i) {
            const size_t base = static_cast<size_t>(((b * L + l) * H + h) * D);
            // The reference uses the table's own fp32 cos/sin (what the kernel is given) in double arithmetic.
            const double angle = static_cast<double>(offset + l) * inv[static_cast<size_t>(i)];
            const double c = static_cast<float>(std::cos(angle)), s = static_cast<float>(std::sin(angle));
            const double x1 = before[base + i], x2 = before[base + half + i];
            ref[base + i] = static_cast<float>(x1 * c - x2 * s);
            ref[base + half + i] = static_cast<float>(x2 * c + x1 * s);
          }
    cpu::rope(q, t, offset, D == 128 ? &pool : nullptr);
    std::vector<float> got = q.to_f32_vector();
    // Two fp32 products and a sum of values in [-1, 1]: within 2 fp32 ulp of 1 (2.4e-7) of the double result.
    EXPECT_CLOSE(got.data(), ref.data(), ref.size(), 3e-7, 0.0, "rope D=" + std::to_string(D));
    // k (the other half of the fused tensor) is untouched.
    std::vector<float> k_after = fused.select(2, 1).to_f32_vector();
    std::vector<float> k_before = Tensor::from_f32({B, L, 2, H, D}, fused_values).select(2, 1).to_f32_vector();
    CHECK(k_after == k_before);
  }
}

SHOWO2_TEST(rope_position_zero_is_identity) {
  RopeTable t = make_rope_table(8, 4, 1e4);
  std::vector<float> values = random_vector(2 * 8, 3);
  Tensor x = Tensor::from_f32({1, 1, 2, 8}, values);
  cpu::rope(x, t, 0, nullptr);
  CHECK(x.to_f32_vector() == values);  // cos 0 = 1, sin 0 = 0 exactly
}

SHOWO2_TEST(rope_rejects_bad_arguments) {
  RopeTable t = make_rope_table(8, 10, 1e4);
  Tensor x = Tensor::zeros({1, 4, 2, 8}, DType::F32);
  CHECK_THROWS_CODE(cpu::rope(x, t, 7, nullptr), InvalidArgument);   // positions [7, 11) past the table's 10
  CHECK_THROWS_CODE(cpu::rope(x, t, -1, nullptr), InvalidArgument);
  cpu::rope(x, t, 6, nullptr);                                        // [6, 10) is the last window that fits
  Tensor x16 = Tensor::zeros({1, 4, 2, 16}, DType::F32);
  CHECK_THROWS_CODE(cpu::rope(x16, t, 0, nullptr), ShapeMismatch);    // head_dim differs from the table's
  Tensor x3d = Tensor::zeros({4, 2, 8}, DType::F32);
  CHECK_THROWS_CODE(cpu::rope(x3d, t, 0, nullptr), ShapeMismatch);
  Tensor xb = Tensor::zeros({1, 4, 2, 8}, DType::BF16);
  CHECK_THROWS_CODE(cpu::rope(xb, t, 0, nullptr), UnsupportedDtype);
  try {
    cpu::rope(x, t, 8, nullptr);
    CHECK(false);
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("positions [8, 12) are outside the table's [0, 10)") != std::string::npos);
  }

  CHECK_THROWS_CODE(make_rope_table(7, 10, 1e4), InvalidArgument);     // odd head_dim
  CHECK_THROWS_CODE(make_rope_table(8, 0, 1e4), InvalidArgument);
  CHECK_THROWS_CODE(make_rope_table(8, 10, 0.0), InvalidArgument);
  Llama3RopeScaling bad = flow_head_scaling();
  bad.high_freq_factor = bad.low_freq_factor;                       // the blend would divide by zero
  CHECK_THROWS_CODE(rope_inverse_frequencies(64, 5e5, bad), InvalidArgument);
  bad = flow_head_scaling();
  bad.factor = 0;
  CHECK_THROWS_CODE(rope_inverse_frequencies(64, 5e5, bad), InvalidArgument);
}

SHOWO2_TEST_MAIN()
