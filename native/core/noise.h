// Standard normal noise for the flow-matching ODE's starting state (spec §7.2), from a counter-based generator so
// every backend (this CPU code now, the CUDA backend later) draws the same values for the same seed, independently
// of thread count or launch shape.
//
// Exact definition (a CUDA kernel reproduces it by computing element i from i alone):
//   * Generator: Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11; the Random123
//     and cuRAND `Philox4_32_10` function), multipliers 0xD2511F53 / 0xCD9E8D57, Weyl key increments
//     0x9E3779B9 / 0xBB67AE85, 10 rounds, the key bumped between rounds.
//   * Key: (k0, k1) = (low 32 bits of seed, high 32 bits of seed).
//   * Element i of the row-major tensor uses pair n = i / 2 and counter (c0, c1, c2, c3) = (low 32 bits of n,
//     high 32 bits of n, 0, 0). The four output words (w0, w1, w2, w3) make two 53-bit uniforms, in double:
//       u1 = ((((uint64)w1 << 32) | w0) >> 11) * 2^-53 + 2^-53      in (0, 1]   (never 0: log(u1) stays finite)
//       u2 = ((((uint64)w3 << 32) | w2) >> 11) * 2^-53              in [0, 1)
//   * Box-Muller in double: r = sqrt(-2 ln u1), theta = 2 pi u2 (pi as the double nearest it);
//       element 2n   = (float) (r * cos(theta)),   element 2n+1 = (float) (r * sin(theta))
//     each rounded to nearest F32 once. (An odd element count simply drops the last sin.)
//   CUDA's double-precision log/sin/cos may differ from the C library's in the last double bit, which changes the
//   F32 result only when the double lies within an ulp of a rounding boundary (about 1 element in 2^29).
#pragma once

#include <array>
#include <cstdint>

#include "tensor.h"

namespace showo2 {

// Standard normal noise [shape] F32, row-major element order, as defined above. ERR_INVALID_ARGUMENT for a negative
// dimension.
Tensor gaussian_noise(const Shape& shape, uint64_t seed);

namespace noise {

// One Philox4x32-10 block: counter (c0..c3) under key (k0, k1) -> four 32-bit words.
std::array<uint32_t, 4> philox4x32_10(std::array<uint32_t, 4> counter, std::array<uint32_t, 2> key);

}  // namespace noise

}  // namespace showo2
