// Philox4x32-10 + Box-Muller standard normal noise; see noise.h for the exact definition.
#include "noise.h"

#include <cmath>

#include "error.h"

namespace showo2 {

namespace noise {

namespace {
constexpr uint32_t kMultiplier0 = 0xD2511F53u, kMultiplier1 = 0xCD9E8D57u;
constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;

inline void mulhilo(uint32_t a, uint32_t b, uint32_t* hi, uint32_t* lo) {
  const uint64_t p = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(p >> 32);
  *lo = static_cast<uint32_t>(p);
}
}  // namespace

std::array<uint32_t, 4> philox4x32_10(std::array<uint32_t, 4> c, std::array<uint32_t, 2> k) {
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k[0] += kWeyl0;
      k[1] += kWeyl1;
    }
    uint32_t hi0, lo0, hi1, lo1;
    mulhilo(kMultiplier0, c[0], &hi0, &lo0);
    mulhilo(kMultiplier1, c[2], &hi1, &lo1);
    c = {hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0};
  }
  return c;
}

}  // namespace noise

Tensor gaussian_noise(const Shape& shape, uint64_t seed) {
  for (int64_t d : shape)
    SHOWO2_CHECK(d >= 0, InvalidArgument, "gaussian_noise: shape ", shape_to_string(shape),
                 " has a negative dimension");
  Tensor out = Tensor::empty(shape, DType::F32);
  float* p = out.mutable_data<float>();
  const int64_t n = out.numel();
  const std::array<uint32_t, 2> key = {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)};
  constexpr double kTwoPow53 = 9007199254740992.0;
  constexpr double kTwoPi = 6.283185307179586;  // 2 * (the double nearest pi), exactly representable doubling
  for (int64_t pair = 0; 2 * pair < n; ++pair) {
    const uint64_t np = static_cast<uint64_t>(pair);
    const auto w = noise::philox4x32_10({static_cast<uint32_t>(np), static_cast<uint32_t>(np >> 32), 0u, 0u}, key);
    const uint64_t a = ((static_cast<uint64_t>(w[1]) << 32) | w[0]) >> 11;
    const uint64_t b = ((static_cast<uint64_t>(w[3]) << 32) | w[2]) >> 11;
    const double u1 = static_cast<double>(a) / kTwoPow53 + 1.0 / kTwoPow53;  // (0, 1]
    const double u2 = static_cast<double>(b) / kTwoPow53;                    // [0, 1)
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double theta = kTwoPi * u2;
    p[2 * pair] = static_cast<float>(r * std::cos(theta));
    if (2 * pair + 1 < n) p[2 * pair + 1] = static_cast<float>(r * std::sin(theta));
  }
  return out;
}

}  // namespace showo2
