// AVX2/FMA row kernels for the activation family (contract in activation.cpp, declarations in activation_internal.h).
//
// The portable kernels call <cmath> once per element; these evaluate eight lanes at a time:
//   exp:  x = n*ln2 + r with |r| <= ln2/2, exp(r) by its degree-7 Taylor polynomial (truncation < 6e-9 relative),
//         2^n by building the exponent bits. Above 88 the result is +inf (exp(88.72) is already FLT_MAX; only silu's
//         denominator gets there, where the answer is -0 either way, as in torch); below -87.3 it is flushed to 0
//         instead of becoming subnormal. NaN stays NaN.
//   erf:  Abramowitz & Stegun 7.1.26, erfc(z) ~= t*P(t)*exp(-z^2) with t = 1/(1 + p*z), |error| <= 1.5e-7 (the same
//         approximation torch's vectorised erf uses). GELU needs 1 + erf(z), which is erfc(-z); forming it as
//         erfc(|z|) or 2 - erfc(|z|) avoids the cancellation of 1 + (-(1 - erfc)) for negative inputs.
//   tanh-GELU: 0.5*(1 + tanh(u)) = 1/(1 + exp(-2u)) exactly, so gelu_tanh(x) = x / (1 + exp(-2u)); no cancellation.
// Row tails (n % 8) go through an 8-float scratch so every element takes the same arithmetic.
//
// No inline functions shared with other files here (this file is compiled with -mavx2; see activation_internal.h).
#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "activation_internal.h"

namespace showo2::cpu {

namespace {

constexpr int kLanes = 8;

__m256 exp_avx2(__m256 x) {
  const __m256 hi = _mm256_set1_ps(88.0f);
  const __m256 lo = _mm256_set1_ps(-87.3f);
  // min/max return their second operand when either is NaN, so putting x second keeps NaN.
  __m256 xc = _mm256_max_ps(lo, _mm256_min_ps(hi, x));
  __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // ln2 split in two so n*ln2_hi is exact for |n| <= 128.
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  __m256 result = _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
  // Past the clamps: +inf above, and zero below where the true result is subnormal or zero (both compares are false
  // for NaN, which stays NaN).
  result = _mm256_blendv_ps(result, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(x, hi, _CMP_GT_OQ));
  return _mm256_andnot_ps(_mm256_cmp_ps(x, lo, _CMP_LT_OQ), result);
}

// 1 + erf(z), evaluated as erfc(-z).
__m256 one_plus_erf_avx2(__m256 z) {
  const __m256 sign_mask = _mm256_set1_ps(-0.0f);
  const __m256 one = _mm256_set1_ps(1.0f);
  __m256 az = _mm256_andnot_ps(sign_mask, z);
  __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(_mm256_set1_ps(0.3275911f), az, one));
  __m256 poly = _mm256_set1_ps(1.061405429f);
  poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(-1.453152027f));
  poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(1.421413741f));
  poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(-0.284496736f));
  poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(0.254829592f));
  poly = _mm256_mul_ps(poly, t);
  __m256 erfc_abs = _mm256_mul_ps(poly, exp_avx2(_mm256_mul_ps(_mm256_xor_ps(az, sign_mask), az)));  // exp(-z^2)
  __m256 negative = _mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_LT_OQ);
  // z < 0: 1 + erf(z) = erfc(|z|); otherwise 2 - erfc(z).
  return _mm256_blendv_ps(_mm256_sub_ps(_mm256_set1_ps(2.0f), erfc_abs), erfc_abs, negative);
}

__m256 silu8(__m256 x) {
  __m256 e = exp_avx2(_mm256_xor_ps(x, _mm256_set1_ps(-0.0f)));
  return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

__m256 gelu_erf8(__m256 x) {
  __m256 z = _mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752440f));
  return _mm256_mul_ps(_mm256_mul_ps(x, _mm256_set1_ps(0.5f)), one_plus_erf_avx2(z));
}

__m256 gelu_tanh8(__m256 x) {
  const __m256 beta = _mm256_set1_ps(0.79788456080286535588f);  // sqrt(2/pi)
  __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
  __m256 u = _mm256_mul_ps(beta, _mm256_fmadd_ps(_mm256_set1_ps(0.044715f), x3, x));
  __m256 e = exp_avx2(_mm256_mul_ps(u, _mm256_set1_ps(-2.0f)));
  return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

// Applies f to n floats, eight at a time, the tail through a scratch vector.
template <__m256 (*F)(__m256)>
void map_row(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) _mm256_storeu_ps(y + i, F(_mm256_loadu_ps(x + i)));
  if (i < n) {
    float tail[kLanes] = {};
    std::memcpy(tail, x + i, static_cast<size_t>(n - i) * sizeof(float));
    _mm256_storeu_ps(tail, F(_mm256_loadu_ps(tail)));
    std::memcpy(y + i, tail, static_cast<size_t>(n - i) * sizeof(float));
  }
}

void silu_avx2(const float* x, float* y, int64_t n) { map_row<silu8>(x, y, n); }
void gelu_erf_avx2(const float* x, float* y, int64_t n) { map_row<gelu_erf8>(x, y, n); }
void gelu_tanh_avx2(const float* x, float* y, int64_t n) { map_row<gelu_tanh8>(x, y, n); }

float horizontal_max(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

float horizontal_sum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

void softmax_avx2(const float* x, float* y, int64_t n) {
  // Pass 1: the row max. A NaN lane never wins a max, so NaN is tracked separately and poisons the row, as in torch.
  __m256 vmax = _mm256_set1_ps(-INFINITY);
  __m256 vnan = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    __m256 v = _mm256_loadu_ps(x + i);
    vmax = _mm256_max_ps(vmax, v);
    vnan = _mm256_or_ps(vnan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  }
  float max_value = horizontal_max(vmax);
  bool has_nan = _mm256_movemask_ps(vnan) != 0;
  for (int64_t j = i; j < n; ++j) {
    if (x[j] != x[j]) has_nan = true;
    if (x[j] > max_value) max_value = x[j];
  }
  if (has_nan) max_value = __builtin_nanf("");

  // Pass 2: e = exp(x - max) stored to y, summed in eight fp32 lanes (row lengths here are at most a few thousand).
  const __m256 vm = _mm256_set1_ps(max_value);
  __m256 vsum = _mm256_setzero_ps();
  i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    __m256 e = exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
    _mm256_storeu_ps(y + i, e);
    vsum = _mm256_add_ps(vsum, e);
  }
  if (i < n) {
    float tail[kLanes];
    for (int j = 0; j < kLanes; ++j) tail[j] = -INFINITY;  // padding lanes contribute exp(-inf) = 0
    std::memcpy(tail, x + i, static_cast<size_t>(n - i) * sizeof(float));
    __m256 e = exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(tail), vm));
    _mm256_storeu_ps(tail, e);
    std::memcpy(y + i, tail, static_cast<size_t>(n - i) * sizeof(float));
    vsum = _mm256_add_ps(vsum, e);
  }
  // Pass 3: normalise.
  const __m256 inv_sum = _mm256_set1_ps(1.0f / horizontal_sum(vsum));
  i = 0;
  for (; i + kLanes <= n; i += kLanes) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), inv_sum));
  const float s = _mm256_cvtss_f32(inv_sum);
  for (; i < n; ++i) y[i] *= s;
}

const ActivationKernels kAvx2 = {"avx2", silu_avx2, gelu_erf_avx2, gelu_tanh_avx2, softmax_avx2};

}  // namespace

const ActivationKernels& activation_kernels_avx2() { return kAvx2; }

}  // namespace showo2::cpu
