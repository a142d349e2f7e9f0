// gaussian_noise (native/core/noise.cpp): Philox4x32-10 against the published known-answer vectors (Random123's
// kat_vectors), the documented counter/transform reproduced by an independent implementation here for a few
// elements, determinism and prefix stability (element i depends on i and the seed only), and the statistics of a
// million draws.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "noise.h"
#include "test_util.h"

using namespace showo2;

namespace {

// noise.h's definition, written out again: Philox4x32-10 with 64-bit products, then Box-Muller in double.
float independent_element(uint64_t seed, uint64_t i) {
  const uint64_t n = i / 2;
  uint32_t c[4] = {static_cast<uint32_t>(n), static_cast<uint32_t>(n >> 32), 0, 0};
  uint32_t k[2] = {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)};
  for (int r = 0; r < 10; ++r) {
    const uint64_t p0 = 0xD2511F53ull * c[0], p1 = 0xCD9E8D57ull * c[2];
    const uint32_t out[4] = {static_cast<uint32_t>(p1 >> 32) ^ c[1] ^ k[0], static_cast<uint32_t>(p1),
                             static_cast<uint32_t>(p0 >> 32) ^ c[3] ^ k[1], static_cast<uint32_t>(p0)};
    for (int j = 0; j < 4; ++j) c[j] = out[j];
    k[0] += 0x9E3779B9u;
    k[1] += 0xBB67AE85u;
  }
  const double u1 = std::ldexp(static_cast<double>((static_cast<uint64_t>(c[1]) << 32 | c[0]) >> 11) + 1.0, -53);
  const double u2 = std::ldexp(static_cast<double>((static_cast<uint64_t>(c[3]) << 32 | c[2]) >> 11), -53);
  const double r = std::sqrt(-2.0 * std::log(u1)), theta = 2.0 * M_PI * u2;
  return static_cast<float>(i % 2 == 0 ? r * std::cos(theta) : r * std::sin(theta));
}

}  // namespace

SHOWO2_TEST(philox_known_answers) {
  using A4 = std::array<uint32_t, 4>;
  CHECK(noise::philox4x32_10({0, 0, 0, 0}, {0, 0}) == (A4{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}));
  CHECK(noise::philox4x32_10({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, {0xffffffffu, 0xffffffffu}) ==
        (A4{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}));
  CHECK(noise::philox4x32_10({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, {0xa4093822u, 0x299f31d0u}) ==
        (A4{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}));
}

SHOWO2_TEST(documented_counters_reproduced_independently) {
  const uint64_t seed = 0x123456789abcdefull;
  const Tensor t = gaussian_noise({3, 5, 7}, seed);  // 105 elements: odd, so the last one is a cos without its sin
  const float* p = t.data<float>();
  for (uint64_t i : {0ull, 1ull, 2ull, 3ull, 50ull, 51ull, 103ull, 104ull})
    CHECK_EQ(p[i], independent_element(seed, i));
  // Pair n uses counter n: element 2^33 + 1 of a huge tensor is the sin of counter (0, 1, 0, 0).
  const uint64_t far = (1ull << 33) + 1;
  const auto w = noise::philox4x32_10({0, 1, 0, 0}, {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)});
  const double u1 = std::ldexp(static_cast<double>((static_cast<uint64_t>(w[1]) << 32 | w[0]) >> 11) + 1.0, -53);
  const double u2 = std::ldexp(static_cast<double>((static_cast<uint64_t>(w[3]) << 32 | w[2]) >> 11), -53);
  CHECK_EQ(independent_element(seed, far), static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::sin(2.0 * M_PI * u2)));
}

SHOWO2_TEST(deterministic_and_prefix_stable) {
  const auto a = gaussian_noise({2, 16, 1, 8, 8}, 42).to_f32_vector();
  const auto b = gaussian_noise({2, 16, 1, 8, 8}, 42).to_f32_vector();
  CHECK(a == b);
  const auto c = gaussian_noise({2, 16, 1, 8, 8}, 43).to_f32_vector();
  size_t same = 0;
  for (size_t i = 0; i < a.size(); ++i) same += a[i] == c[i];
  CHECK(same < 3);
  const auto shorter = gaussian_noise({101}, 42).to_f32_vector();  // the element order is the only layout input
  for (size_t i = 0; i < shorter.size(); ++i) CHECK_EQ(shorter[i], a[i]);
  CHECK_EQ(gaussian_noise({0, 4}, 1).numel(), int64_t{0});
  CHECK_THROWS_CODE(gaussian_noise({-1, 4}, 1), InvalidArgument);
}

SHOWO2_TEST(standard_normal_statistics) {
  const int64_t n = 1 << 20;
  const auto v = gaussian_noise({n}, 2024).to_f32_vector();
  double sum = 0, sq = 0, within1 = 0, beyond3 = 0, max_abs = 0;
  for (float x : v) {
    sum += x;
    sq += static_cast<double>(x) * x;
    within1 += std::fabs(x) < 1.0;
    beyond3 += std::fabs(x) > 3.0;
    max_abs = std::max(max_abs, static_cast<double>(std::fabs(x)));
    if (!std::isfinite(x)) test::fail_at(__FILE__, __LINE__, "non-finite noise");
  }
  const double mean = sum / n, var = sq / n - mean * mean;
  std::printf("    mean %.5f std %.5f P(|x|<1) %.5f P(|x|>3) %.6f max |x| %.2f\n", mean, std::sqrt(var), within1 / n,
              beyond3 / n, max_abs);
  // 5-sigma bounds for n = 2^20 draws: sd(mean) = 1e-3, sd(var) = sqrt(2/n) = 1.4e-3, sd(P) <= 5e-4.
  CHECK(std::fabs(mean) < 5e-3);
  CHECK(std::fabs(var - 1.0) < 7e-3);
  CHECK(std::fabs(within1 / n - 0.682689) < 2.5e-3);
  CHECK(std::fabs(beyond3 / n - 0.0026998) < 3e-4);
}

SHOWO2_TEST_MAIN()
