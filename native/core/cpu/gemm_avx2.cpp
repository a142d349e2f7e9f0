// AVX2 + FMA + F16C kernel set for the CPU GEMM (driver and algorithm: gemm.cpp, gemm_internal.h).
//
//   micro-kernel: C[6, 16] += A_panel[kc, 6] · B_panel[kc, 16], 12 ymm accumulators; per k, 2 loads of B, 6
//                 broadcasts of A and 12 FMAs, so the two FMA pipes (not the loads) are the limit.
//   pack_b:       NN rows are copied 16 wide; NT (weight layout) rows are transposed 8 x 8 in registers. BF16 widens
//                 by a 16-bit shift, F16 with vcvtph2ps; both exact.
//   small_m_nt:   decode shapes (M <= kSmallMMax, weight layout): dot products straight from the weight rows, a few
//                 rows of A against a few weight rows at a time, so the weight streams from memory exactly once.
// Compiled with -mavx2 -mfma -mf16c (x86 only); reached only when cpu_features().use_avx2.
//
// This file calls no inline function defined in another header (not even std::min or dtype.h's converters): a copy
// instantiated here would carry AVX2 instructions, and the linker may keep it for callers in baseline-x86 files.
#include <immintrin.h>

#include "gemm_internal.h"

namespace showo2::cpu::gemm_detail {

namespace {

// Blocking for Zen3-class cores (32 KiB L1d, 512 KiB L2 per core, large shared L3), chosen by measurement with
// linear_bench --kc/--mc/--nc: kc = 512 beat 256 and 384 by a few percent (fewer passes over C, and the A panel
// streams well from L2 even though the 32 KiB B micro-panel fills L1). nc made no measurable difference from 1024 to
// 4096 once the B block lives in L3; 2048 keeps the per-thread packing buffer at 4 MiB. kSmallMMax: with a
// [8960, 1536] weight on 2 threads the unpacked dot path beat packing up to M = 16 for F32 (5.3 vs 6.6 ms) and past
// M = 32 for BF16; packing only pays once it is amortised over more rows.
struct Avx2Traits {
  static constexpr int kMR = 6;
  static constexpr int kNR = 16;
  static constexpr int64_t kMC = 96;
  static constexpr int64_t kKC = 512;
  static constexpr int64_t kNC = 2048;
  static constexpr int64_t kSmallMMax = 16;
  static_assert(kNR == 16, "pack_b and the micro-kernel hold a B row in two ymm registers");
  static_assert(kMC % kMR == 0 && kNC % kNR == 0, "cache blocks must hold whole micro-tiles");
  static_assert(kKC * kNR * sizeof(float) <= 32 * 1024, "a B micro-panel should fit in L1");
  static_assert(kMC * kKC * sizeof(float) <= 256 * 1024, "the packed A block should stay in half the L2");
};

constexpr int kMR = Avx2Traits::kMR;
constexpr int kNR = Avx2Traits::kNR;

inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

// ---- widening loads: 8 consecutive B elements of any float dtype as 8 F32 lanes -------------------------------------

template <DType DT> inline __m256 load8(const void* base, int64_t index);
template <> inline __m256 load8<DType::F32>(const void* base, int64_t index) {
  return _mm256_loadu_ps(static_cast<const float*>(base) + index);
}
template <> inline __m256 load8<DType::BF16>(const void* base, int64_t index) {
  __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + index));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));  // bf16 is the top half of an f32
}
template <> inline __m256 load8<DType::F16>(const void* base, int64_t index) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + index)));
}

template <DType DT> inline float load1(const void* base, int64_t index);
template <> inline float load1<DType::F32>(const void* base, int64_t index) {
  return static_cast<const float*>(base)[index];
}
template <> inline float load1<DType::BF16>(const void* base, int64_t index) {
  return _mm_cvtss_f32(_mm_castsi128_ps(_mm_cvtsi32_si128(static_cast<const uint16_t*>(base)[index] << 16)));
}
template <> inline float load1<DType::F16>(const void* base, int64_t index) {
  return _cvtsh_ss(static_cast<const uint16_t*>(base)[index]);
}

// In-register 8 x 8 transpose: afterwards r[j] holds what was column j.
inline void transpose8x8(__m256 r[8]) {
  __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
  __m256 s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
  __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
  __m256 s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
  __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
  __m256 s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
  __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
  __m256 s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
  r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
  r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
  r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
  r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
  r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

// ---- packing --------------------------------------------------------------------------------------------------------

void avx2_pack_a(const float* a, int64_t lda, int64_t mc, int64_t kc, float* dst) {
  for (int64_t p = 0; p < mc; p += kMR, dst += kMR * kc) {
    const int rows = static_cast<int>(min64(kMR, mc - p));
    const float* src = a + p * lda;
    if (rows == kMR) {
      const float* r0 = src;
      const float* r1 = src + lda;
      const float* r2 = src + 2 * lda;
      const float* r3 = src + 3 * lda;
      const float* r4 = src + 4 * lda;
      const float* r5 = src + 5 * lda;
      for (int64_t k = 0; k < kc; ++k) {
        float* d = dst + k * kMR;
        d[0] = r0[k];
        d[1] = r1[k];
        d[2] = r2[k];
        d[3] = r3[k];
        d[4] = r4[k];
        d[5] = r5[k];
      }
    } else {
      for (int64_t k = 0; k < kc; ++k)
        for (int i = 0; i < kMR; ++i) dst[k * kMR + i] = i < rows ? src[i * lda + k] : 0.0f;
    }
  }
}

// Any panel, any layout, one element at a time: used for the ragged last panel and the k tail.
template <DType DT>
void pack_b_scalar(const GemmArgs& a, int64_t k_begin, int64_t k_end, int64_t k0, int64_t n, int cols, float* dst) {
  for (int64_t k = k_begin; k < k_end; ++k)
    for (int j = 0; j < kNR; ++j) {
      float v = 0.0f;
      if (j < cols) v = load1<DT>(a.B, a.b_transposed ? (n + j) * a.ldb + k0 + k : (k0 + k) * a.ldb + n + j);
      dst[k * kNR + j] = v;
    }
}

// B_kn: walk each row of B once, left to right, scattering 16-wide pieces to their panels. (Panel by panel would read
// kc rows 64 bytes at a time, one page per row, which the prefetchers and TLB handle badly.)
template <DType DT>
void pack_b_nn(const GemmArgs& a, int64_t k0, int64_t kc, int64_t n0, int64_t nc, float* dst) {
  const int64_t full_panels = nc / kNR;
  for (int64_t k = 0; k < kc; ++k) {
    const int64_t row = (k0 + k) * a.ldb + n0;
    float* d = dst + k * kNR;
    for (int64_t p = 0; p < full_panels; ++p, d += kNR * kc) {
      _mm256_store_ps(d, load8<DT>(a.B, row + p * kNR));
      _mm256_store_ps(d + 8, load8<DT>(a.B, row + p * kNR + 8));
    }
  }
  if (full_panels * kNR < nc)
    pack_b_scalar<DT>(a, 0, kc, k0, n0 + full_panels * kNR, static_cast<int>(nc - full_panels * kNR),
                      dst + full_panels * kNR * kc);
}

// B_nk (weight layout): panel by panel, each from 16 weight rows.
template <DType DT>
void pack_b_nt(const GemmArgs& a, int64_t k0, int64_t kc, int64_t n0, int64_t nc, float* dst) {
  for (int64_t p = 0; p < nc; p += kNR, dst += kNR * kc) {
    const int64_t n = n0 + p;
    const int cols = static_cast<int>(min64(kNR, nc - p));
    if (cols < kNR) {
      pack_b_scalar<DT>(a, 0, kc, k0, n, cols, dst);
      continue;
    }
    // Transpose 8 rows x 8 k at a time into the k-major panel.
    int64_t k = 0;
    for (; k + 8 <= kc; k += 8) {
      for (int half = 0; half < 2; ++half) {
        __m256 r[8];
        for (int i = 0; i < 8; ++i) r[i] = load8<DT>(a.B, (n + half * 8 + i) * a.ldb + k0 + k);
        transpose8x8(r);
        for (int j = 0; j < 8; ++j) _mm256_store_ps(dst + (k + j) * kNR + half * 8, r[j]);
      }
    }
    pack_b_scalar<DT>(a, k, kc, k0, n, cols, dst);
  }
}

template <DType DT>
void pack_b_typed(const GemmArgs& a, int64_t k0, int64_t kc, int64_t n0, int64_t nc, float* dst) {
  if (a.b_transposed) pack_b_nt<DT>(a, k0, kc, n0, nc, dst);
  else pack_b_nn<DT>(a, k0, kc, n0, nc, dst);
}

void avx2_pack_b(const GemmArgs& a, int64_t k0, int64_t kc, int64_t n0, int64_t nc, float* dst) {
  switch (a.b_dtype) {
    case DType::BF16: return pack_b_typed<DType::BF16>(a, k0, kc, n0, nc, dst);
    case DType::F16: return pack_b_typed<DType::F16>(a, k0, kc, n0, nc, dst);
    default: return pack_b_typed<DType::F32>(a, k0, kc, n0, nc, dst);
  }
}

// ---- micro-kernel ---------------------------------------------------------------------------------------------------

// The 12 accumulators are named variables, not an array: GCC keeps an __m256 array in memory and would store every
// accumulator on every k step.
void avx2_micro_kernel(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int m, int n,
                       const TileEpilogue& ep) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(), c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps(), c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; ++k, a += kMR, b += kNR) {
    const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
    __m256 ai = _mm256_broadcast_ss(a + 0);
    c00 = _mm256_fmadd_ps(ai, b0, c00);
    c01 = _mm256_fmadd_ps(ai, b1, c01);
    ai = _mm256_broadcast_ss(a + 1);
    c10 = _mm256_fmadd_ps(ai, b0, c10);
    c11 = _mm256_fmadd_ps(ai, b1, c11);
    ai = _mm256_broadcast_ss(a + 2);
    c20 = _mm256_fmadd_ps(ai, b0, c20);
    c21 = _mm256_fmadd_ps(ai, b1, c21);
    ai = _mm256_broadcast_ss(a + 3);
    c30 = _mm256_fmadd_ps(ai, b0, c30);
    c31 = _mm256_fmadd_ps(ai, b1, c31);
    ai = _mm256_broadcast_ss(a + 4);
    c40 = _mm256_fmadd_ps(ai, b0, c40);
    c41 = _mm256_fmadd_ps(ai, b1, c41);
    ai = _mm256_broadcast_ss(a + 5);
    c50 = _mm256_fmadd_ps(ai, b0, c50);
    c51 = _mm256_fmadd_ps(ai, b1, c51);
  }
  __m256 acc[kMR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  if (m == kMR && n == kNR) {
    const bool has_bias = ep.bias != nullptr, has_beta = ep.beta != 0.0f;
    const __m256 bias0 = has_bias ? _mm256_loadu_ps(ep.bias) : _mm256_setzero_ps();
    const __m256 bias1 = has_bias ? _mm256_loadu_ps(ep.bias + 8) : _mm256_setzero_ps();
    const __m256 beta = _mm256_set1_ps(ep.beta);
    for (int i = 0; i < kMR; ++i) {
      float* row = c + i * ldc;
      __m256 v0 = _mm256_add_ps(acc[i][0], bias0), v1 = _mm256_add_ps(acc[i][1], bias1);
      if (has_beta) {
        v0 = _mm256_fmadd_ps(beta, _mm256_loadu_ps(row), v0);
        v1 = _mm256_fmadd_ps(beta, _mm256_loadu_ps(row + 8), v1);
      }
      _mm256_storeu_ps(row, v0);
      _mm256_storeu_ps(row + 8, v1);
    }
    return;
  }
  alignas(32) float tile[kMR * kNR];
  for (int i = 0; i < kMR; ++i) {
    _mm256_store_ps(tile + i * kNR, acc[i][0]);
    _mm256_store_ps(tile + i * kNR + 8, acc[i][1]);
  }
  store_tile(tile, kNR, c, ldc, m, n, ep);
}

// ---- small-M (decode) path ------------------------------------------------------------------------------------------

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// C[m0:m0+RM, n0:n0+RN] from RM rows of A and RN weight rows, full K. Each weight vector is widened once and used RM
// times; RM * RN <= 12 accumulators leave registers for the operands.
template <DType DT, int RM, int RN>
void dot_tile(const GemmArgs& a, int64_t m0, int64_t n0) {
  static_assert(RM * RN <= 12, "too many accumulators for 16 ymm registers");
  __m256 acc[RM][RN];
  for (int i = 0; i < RM; ++i)
    for (int j = 0; j < RN; ++j) acc[i][j] = _mm256_setzero_ps();
  const float* x = a.A + m0 * a.lda;
  int64_t k = 0;
  for (; k + 8 <= a.K; k += 8) {
    for (int j = 0; j < RN; ++j) {
      const __m256 w = load8<DT>(a.B, (n0 + j) * a.ldb + k);
      for (int i = 0; i < RM; ++i) acc[i][j] = _mm256_fmadd_ps(_mm256_loadu_ps(x + i * a.lda + k), w, acc[i][j]);
    }
  }
  for (int i = 0; i < RM; ++i)
    for (int j = 0; j < RN; ++j) {
      float v = hsum(acc[i][j]);
      for (int64_t t = k; t < a.K; ++t) v += x[i * a.lda + t] * load1<DT>(a.B, (n0 + j) * a.ldb + t);
      if (a.bias) v += a.bias[n0 + j];
      float* c = a.C + (m0 + i) * a.ldc + n0 + j;
      if (a.beta != 0.0f) v += a.beta * *c;
      *c = v;
    }
}

template <DType DT, int RN>
void dot_row_group(const GemmArgs& a, int rows, int64_t m0, int64_t n0) {
  switch (rows) {
    case 1: return dot_tile<DT, 1, RN>(a, m0, n0);
    case 2: return dot_tile<DT, 2, RN>(a, m0, n0);
    case 3: return dot_tile<DT, 3, RN>(a, m0, n0);
    default: return dot_tile<DT, 4, (RN > 3 ? 3 : RN)>(a, m0, n0);
  }
}

// Weight rows outer, A row groups inner: a weight block (RN rows) is read from memory once and reused from L1 by every
// row group, while A (a few rows) stays in L1/L2.
template <DType DT>
void small_m_nt_typed(const GemmArgs& a, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  // One row: 8 weight rows in flight hide memory latency. More rows: 3 weight rows x 4 A rows (12 accumulators).
  const bool single_row = m1 - m0 == 1;
  const int rn = single_row ? 8 : 3;
  int64_t n = n0;
  for (; n + rn <= n1; n += rn) {
    if (single_row) {
      dot_tile<DT, 1, 8>(a, m0, n);
      continue;
    }
    for (int64_t m = m0; m < m1; m += 4) dot_row_group<DT, 3>(a, static_cast<int>(min64(4, m1 - m)), m, n);
  }
  for (; n < n1; ++n)
    for (int64_t m = m0; m < m1; m += 4) dot_row_group<DT, 1>(a, static_cast<int>(min64(4, m1 - m)), m, n);
}

void avx2_small_m_nt(const GemmArgs& a, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  switch (a.b_dtype) {
    case DType::BF16: return small_m_nt_typed<DType::BF16>(a, m0, m1, n0, n1);
    case DType::F16: return small_m_nt_typed<DType::F16>(a, m0, m1, n0, n1);
    default: return small_m_nt_typed<DType::F32>(a, m0, m1, n0, n1);
  }
}

}  // namespace

const GemmKernelSet& avx2_kernels() {
  static const GemmKernelSet set = {
      "avx2",          Avx2Traits::kMR, Avx2Traits::kNR,   Avx2Traits::kMC,   Avx2Traits::kKC,
      Avx2Traits::kNC, Avx2Traits::kSmallMMax,
      avx2_pack_a,     avx2_pack_b,     avx2_micro_kernel, avx2_small_m_nt,
  };
  return set;
}

}  // namespace showo2::cpu::gemm_detail
