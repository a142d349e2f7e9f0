// CPU attention, AVX2/FMA tile kernel: the fast twin of attention_tile_portable (attention.cpp has the contract,
// the planner and the threading; this file computes one query tile).
//
// Per key tile the kernel does what FlashAttention-2 does per block, with register-blocked micro-kernels:
//   1. pack the K tile transposed into panels of 16 keys (k_tile[p][d][16]) and V into aligned rows; with the head
//      cache (AttentionTile::packed_k) this happens once per kv head and thread instead of once per query tile
//   2. scores[r, j]  = q_tile[r, :] · k[j, :]      6 rows x 16 keys in 12 ymm accumulators, streaming over d
//   3. online softmax per row (mask only on partial tiles), probabilities written over the scores
//   4. acc[r, c]     = acc[r, c] * rescale[r] + sum_j p[r, j] v[j, c]   6 rows x 16 columns, streaming over j
// Each micro-kernel step is 2 vector loads, 6 broadcasts and 12 FMAs, so it is bound by the FMA units rather than
// by loads. Row counts that are not a multiple of 6 (the last tile, single-row decoding) use narrower strips instead
// of padding, so decoding one token costs one row of work.
//
// Only plain functions and intrinsics here: no standard-library templates or inline functions from shared headers,
// because a copy compiled with -mavx2 could be the one the linker keeps for the portable code (attention_internal.h).
#include "attention_internal.h"

// CMake defines SHOWO2_HAVE_AVX2_KERNELS where it compiles this file with -mavx2 -mfma; elsewhere it is empty.
#if defined(SHOWO2_HAVE_AVX2_KERNELS)

#include <immintrin.h>
#include <math.h>

#include <cstdint>

namespace showo2::cpu {

namespace {

using Traits = AttentionTileTraits;
constexpr int kStripRows = static_cast<int>(Traits::kRowsPerStrip);
constexpr int64_t kPanel = Traits::kKeysPerPanel;
constexpr int64_t kBlockK = Traits::kBlockK;
static_assert(kPanel == 16, "the score micro-kernel holds a panel as two 8-float vectors");

int64_t min_i64(int64_t a, int64_t b) { return a < b ? a : b; }
int64_t max_i64(int64_t a, int64_t b) { return a > b ? a : b; }

// 2^x for the x <= 0 of softmax (score - running max). Exact to about 1 ulp: round x to n + f with |f| <= 1/2, a
// degree-6 polynomial for 2^f (relative error 3e-9), and n added to the exponent bits. Below -126 (including the -inf
// of masked keys) the result is 0 rather than a subnormal. NaN stays NaN: max(lo, NaN) returns NaN.
inline __m256 exp2_nonpositive(__m256 x) {
  const __m256 lo = _mm256_set1_ps(-126.0f);
  const __m256 underflow = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
  x = _mm256_max_ps(lo, x);
  const __m256 n = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 f = _mm256_sub_ps(x, n);
  __m256 p = _mm256_set1_ps(1.5337577497120947e-4f);
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.3399859890341759e-3f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(9.618519805371761e-3f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(5.550329014658928e-2f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(2.4022646248340607e-1f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(6.931471824645996e-1f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
  const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(underflow, _mm256_mul_ps(p, _mm256_castsi256_ps(bits)));
}

inline float horizontal_max(__m256 x) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

inline float horizontal_sum(__m256 x) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

// Transposes the 8x8 block src[r * src_stride + c] into dst[c * dst_stride + r].
inline void transpose_8x8(const float* src, int64_t src_stride, float* dst, int64_t dst_stride) {
  __m256 r0 = _mm256_loadu_ps(src + 0 * src_stride), r1 = _mm256_loadu_ps(src + 1 * src_stride);
  __m256 r2 = _mm256_loadu_ps(src + 2 * src_stride), r3 = _mm256_loadu_ps(src + 3 * src_stride);
  __m256 r4 = _mm256_loadu_ps(src + 4 * src_stride), r5 = _mm256_loadu_ps(src + 5 * src_stride);
  __m256 r6 = _mm256_loadu_ps(src + 6 * src_stride), r7 = _mm256_loadu_ps(src + 7 * src_stride);
  __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
  __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
  __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
  __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  _mm256_store_ps(dst + 0 * dst_stride, _mm256_permute2f128_ps(u0, u4, 0x20));
  _mm256_store_ps(dst + 1 * dst_stride, _mm256_permute2f128_ps(u1, u5, 0x20));
  _mm256_store_ps(dst + 2 * dst_stride, _mm256_permute2f128_ps(u2, u6, 0x20));
  _mm256_store_ps(dst + 3 * dst_stride, _mm256_permute2f128_ps(u3, u7, 0x20));
  _mm256_store_ps(dst + 4 * dst_stride, _mm256_permute2f128_ps(u0, u4, 0x31));
  _mm256_store_ps(dst + 5 * dst_stride, _mm256_permute2f128_ps(u1, u5, 0x31));
  _mm256_store_ps(dst + 6 * dst_stride, _mm256_permute2f128_ps(u2, u6, 0x31));
  _mm256_store_ps(dst + 7 * dst_stride, _mm256_permute2f128_ps(u3, u7, 0x31));
}

// k_panels[p][d][jj] = k[(p * 16 + jj) * k_row_stride + d] for the `width` keys of the tile; keys past the end of a
// panel are zero (their scores are masked anyway, zeros just keep the arithmetic quiet).
void pack_k_panels(const float* k, int64_t k_row_stride, int64_t width, int64_t D, float* k_panels) {
  for (int64_t p = 0; p * kPanel < width; ++p) {
    const float* src = k + p * kPanel * k_row_stride;
    float* dst = k_panels + p * D * kPanel;
    const int64_t keys = min_i64(kPanel, width - p * kPanel);
    int64_t d0 = 0;
    if (keys == kPanel) {
      for (; d0 + 8 <= D; d0 += 8) {
        transpose_8x8(src + d0, k_row_stride, dst + d0 * kPanel, kPanel);
        transpose_8x8(src + 8 * k_row_stride + d0, k_row_stride, dst + d0 * kPanel + 8, kPanel);
      }
    }
    for (int64_t d = d0; d < D; ++d)
      for (int64_t jj = 0; jj < kPanel; ++jj) dst[d * kPanel + jj] = jj < keys ? src[jj * k_row_stride + d] : 0.0f;
  }
}

// v_tile[j, :] = v[j * v_row_stride, :] for the `width` keys of the tile, rows padded with zeros to Dvp columns.
// Copying is not only for the padding: heads are interleaved in memory, so consecutive keys of one head sit a few KB
// apart (6 KB for 12 heads of 128), and at such strides a V panel maps onto a couple of L1 sets and evicts itself.
void pack_v_tile(const float* v, int64_t v_row_stride, int64_t width, int64_t Dv, int64_t Dvp, float* v_tile) {
  for (int64_t j = 0; j < width; ++j) {
    const float* src = v + j * v_row_stride;
    float* dst = v_tile + j * Dvp;
    int64_t c = 0;
    for (; c + 8 <= Dv; c += 8) _mm256_store_ps(dst + c, _mm256_loadu_ps(src + c));
    for (; c < Dv; ++c) dst[c] = src[c];
    for (; c < Dvp; ++c) dst[c] = 0.0f;
  }
}

// The micro-kernels keep their accumulators in small arrays indexed by the (compile-time) row and vector. GCC only
// keeps such arrays in registers when the loops over them are unrolled before it scalarises the arrays; otherwise it
// writes every accumulator back to the stack on each step, which halved the kernel's speed.
#define SHOWO2_UNROLL _Pragma("GCC unroll 8")

// scores[r, 0:16] = q_tile[r, :] · panel[:, 0:16] for ROWS consecutive rows.
template <int ROWS>
void score_strip(const float* q_tile, int64_t D, const float* panel, float* scores) {
  __m256 acc0[ROWS], acc1[ROWS];
  SHOWO2_UNROLL
  for (int r = 0; r < ROWS; ++r) acc0[r] = acc1[r] = _mm256_setzero_ps();
  for (int64_t d = 0; d < D; ++d) {
    const __m256 k0 = _mm256_load_ps(panel + d * kPanel);
    const __m256 k1 = _mm256_load_ps(panel + d * kPanel + 8);
    SHOWO2_UNROLL
    for (int r = 0; r < ROWS; ++r) {
      const __m256 a = _mm256_broadcast_ss(q_tile + r * D + d);
      acc0[r] = _mm256_fmadd_ps(a, k0, acc0[r]);
      acc1[r] = _mm256_fmadd_ps(a, k1, acc1[r]);
    }
  }
  SHOWO2_UNROLL
  for (int r = 0; r < ROWS; ++r) {
    _mm256_store_ps(scores + r * kBlockK, acc0[r]);
    _mm256_store_ps(scores + r * kBlockK + 8, acc1[r]);
  }
}

// acc[r, 0:8*VECS] = acc[r, :] * rescale[r] + sum_j probs[r, j] * v[j, 0:8*VECS] for ROWS consecutive rows.
template <int ROWS, int VECS>
void value_strip(const float* probs, const float* v, int64_t v_row_stride, int64_t width, const float* rescale,
                 float* acc, int64_t acc_row_stride) {
  __m256 o[ROWS][VECS];
  SHOWO2_UNROLL
  for (int r = 0; r < ROWS; ++r) {
    const __m256 s = _mm256_broadcast_ss(rescale + r);
    SHOWO2_UNROLL
    for (int c = 0; c < VECS; ++c) o[r][c] = _mm256_mul_ps(_mm256_load_ps(acc + r * acc_row_stride + 8 * c), s);
  }
  for (int64_t j = 0; j < width; ++j) {
    __m256 vj[VECS];
    SHOWO2_UNROLL
    for (int c = 0; c < VECS; ++c) vj[c] = _mm256_load_ps(v + j * v_row_stride + 8 * c);
    SHOWO2_UNROLL
    for (int r = 0; r < ROWS; ++r) {
      const __m256 p = _mm256_broadcast_ss(probs + r * kBlockK + j);
      SHOWO2_UNROLL
      for (int c = 0; c < VECS; ++c) o[r][c] = _mm256_fmadd_ps(p, vj[c], o[r][c]);
    }
  }
  SHOWO2_UNROLL
  for (int r = 0; r < ROWS; ++r) {
    SHOWO2_UNROLL
    for (int c = 0; c < VECS; ++c) _mm256_store_ps(acc + r * acc_row_stride + 8 * c, o[r][c]);
  }
}

#undef SHOWO2_UNROLL

// The strip functions for 1..6 rows, indexed by row count; the kernels only choose among these instantiations.
using ScoreStripFn = void (*)(const float*, int64_t, const float*, float*);
using ValueStripFn = void (*)(const float*, const float*, int64_t, int64_t, const float*, float*, int64_t);
constexpr ScoreStripFn kScoreStrips[kStripRows + 1] = {nullptr,         score_strip<1>, score_strip<2>,
                                                       score_strip<3>,  score_strip<4>, score_strip<5>,
                                                       score_strip<6>};
constexpr ValueStripFn kValueStrips16[kStripRows + 1] = {nullptr,           value_strip<1, 2>, value_strip<2, 2>,
                                                         value_strip<3, 2>, value_strip<4, 2>, value_strip<5, 2>,
                                                         value_strip<6, 2>};
constexpr ValueStripFn kValueStrips8[kStripRows + 1] = {nullptr,           value_strip<1, 1>, value_strip<2, 1>,
                                                        value_strip<3, 1>, value_strip<4, 1>, value_strip<5, 1>,
                                                        value_strip<6, 1>};
static_assert(Traits::kRowsPerStrip == 6, "the strip tables above list 1..6 rows");

// One online-softmax step for one row: turns scores[0:padded_width] into probabilities in place (0 for keys the row
// may not see), and updates the row's running max and sum. Returns the factor the row's accumulator must be
// multiplied by (exp2(old max - new max); 0 on the row's first visible tile).
float softmax_step(float* s, int64_t visible, int64_t padded_width, float* row_max, float* row_sum) {
  const float neg_inf = -__builtin_inff();
  // Masking: keys at or after `visible` get -inf, so they drop out of the max and become exactly 0 below. Full
  // tiles arrive with visible == width and only the panel padding is cleared.
  for (int64_t j = visible; j < padded_width; ++j) s[j] = neg_inf;
  __m256 m = _mm256_set1_ps(neg_inf);
  for (int64_t j = 0; j < padded_width; j += 8) m = _mm256_max_ps(m, _mm256_load_ps(s + j));
  const float tile_max = horizontal_max(m);  // may drop NaN scores; those turn into NaN probabilities below
  const float new_max = tile_max > *row_max || tile_max != tile_max ? tile_max : *row_max;
  if (new_max == neg_inf) {
    for (int64_t j = 0; j < padded_width; ++j) s[j] = 0.0f;
    if (visible == 0) return 1.0f;  // the row has seen no key yet: nothing to add, nothing to rescale
    // Visible scores that are all -inf or NaN (inf/NaN inputs): the softmax is undefined, so the row becomes NaN,
    // as in PyTorch, instead of passing for a row that sees nothing.
    *row_sum = __builtin_nanf("");
    return __builtin_nanf("");
  }
  const __m256 mx = _mm256_set1_ps(new_max);
  __m256 sum = _mm256_setzero_ps();
  for (int64_t j = 0; j < padded_width; j += 8) {
    const __m256 p = exp2_nonpositive(_mm256_sub_ps(_mm256_load_ps(s + j), mx));
    _mm256_store_ps(s + j, p);
    sum = _mm256_add_ps(sum, p);
  }
  const float rescale = exp2f(*row_max - new_max);
  *row_sum = *row_sum * rescale + horizontal_sum(sum);
  *row_max = new_max;
  return rescale;
}

}  // namespace

void attention_tile_avx2(const AttentionTile& t) {
  const AttentionScratchLayout layout = attention_scratch_layout(t.head_dim, t.value_dim);
  const int64_t D = t.head_dim, Dv = t.value_dim, Dvp = layout.padded_value_dim;
  float* q_tile = t.scratch + layout.q_tile;      // [rows, D]
  float* k_scratch = t.scratch + layout.k_tile;   // [kBlockK / 16][D][16]
  float* v_scratch = t.scratch + layout.v_tile;   // [kBlockK, Dvp]
  float* scores = t.scratch + layout.scores;      // [rows, kBlockK]
  float* acc = t.scratch + layout.acc;            // [rows, Dvp]
  float* row_max = t.scratch + layout.row_max;
  float* row_sum = t.scratch + layout.row_sum;
  float* rescale = t.scratch + layout.row_rescale;

  // Scores live in the log2 domain: scale * log2(e) is folded into q once per tile, so softmax needs only exp2.
  const __m256 q_scale = _mm256_set1_ps(t.scale * 1.4426950408889634f);
  for (int64_t r = 0; r < t.rows; ++r) {
    const float* src = t.q + r * t.q_row_stride;
    float* dst = q_tile + r * D;
    int64_t d = 0;
    for (; d + 8 <= D; d += 8) _mm256_storeu_ps(dst + d, _mm256_mul_ps(_mm256_loadu_ps(src + d), q_scale));
    for (; d < D; ++d) dst[d] = src[d] * (t.scale * 1.4426950408889634f);
    for (int64_t c = 0; c < Dvp; c += 8) _mm256_store_ps(acc + r * Dvp + c, _mm256_setzero_ps());
    row_max[r] = -__builtin_inff();
    row_sum[r] = 0.0f;
  }

  for (int64_t kt = 0; kt < t.num_key_tiles; ++kt) {
    const AttentionKeyTile& tile = t.key_tiles[kt];
    const int64_t width = tile.width;
    const int64_t padded_width = (width + kPanel - 1) / kPanel * kPanel;
    // The packed tile comes from the head cache when there is one (packed whole on first use, see
    // AttentionTile::packed_k), else it is packed into scratch with just the keys this query tile sees.
    float* k_tile = k_scratch;
    float* v_tile = v_scratch;
    int64_t keys_to_pack = width;
    if (t.packed_k) {
      const int64_t slot = tile.begin / kBlockK;
      k_tile = t.packed_k + slot * kBlockK * D;
      v_tile = t.packed_v + slot * kBlockK * Dvp;
      keys_to_pack = t.tile_is_packed[slot] ? 0 : min_i64(kBlockK, t.num_keys - tile.begin);
      t.tile_is_packed[slot] = 1;
    }
    if (keys_to_pack > 0) {
      pack_k_panels(t.k + tile.begin * t.k_row_stride, t.k_row_stride, keys_to_pack, D, k_tile);
      pack_v_tile(t.v + tile.begin * t.v_row_stride, t.v_row_stride, keys_to_pack, Dv, Dvp, v_tile);
    }

    for (int64_t p = 0; p * kPanel < width; ++p)
      for (int64_t r0 = 0; r0 < t.rows; r0 += kStripRows) {
        const int64_t n = min_i64(kStripRows, t.rows - r0);
        kScoreStrips[n](q_tile + r0 * D, D, k_tile + p * D * kPanel, scores + r0 * kBlockK + p * kPanel);
      }

    for (int64_t r = 0; r < t.rows; ++r) {
      // Full tiles skip the per-row limit entirely; partial tiles clamp it to the row's key_end.
      const int64_t visible = tile.needs_mask ? min_i64(max_i64(t.key_end[r] - tile.begin, 0), width) : width;
      rescale[r] = softmax_step(scores + r * kBlockK, visible, padded_width, row_max + r, row_sum + r);
    }

    for (int64_t c0 = 0; c0 < Dvp; c0 += 16)
      for (int64_t r0 = 0; r0 < t.rows; r0 += kStripRows) {
        const int64_t n = min_i64(kStripRows, t.rows - r0);
        const ValueStripFn strip = c0 + 16 <= Dvp ? kValueStrips16[n] : kValueStrips8[n];
        strip(scores + r0 * kBlockK, v_tile + c0, Dvp, width, rescale + r0, acc + r0 * Dvp + c0, Dvp);
      }
  }

  for (int64_t r = 0; r < t.rows; ++r) {
    // A row that saw no key has sum 0 and writes zeros (backend.h); a NaN sum stays NaN.
    const float inv = row_sum[r] != 0.0f ? 1.0f / row_sum[r] : 0.0f;
    const __m256 inv8 = _mm256_set1_ps(inv);
    float* out_row = t.out + r * t.out_row_stride;
    int64_t c = 0;
    for (; c + 8 <= Dv; c += 8) _mm256_storeu_ps(out_row + c, _mm256_mul_ps(_mm256_load_ps(acc + r * Dvp + c), inv8));
    for (; c < Dv; ++c) out_row[c] = acc[r * Dvp + c] * inv;
  }
}

}  // namespace showo2::cpu

#endif  // SHOWO2_HAVE_AVX2_KERNELS
