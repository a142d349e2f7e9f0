// cpu::attention (both tile kernels) against a plain reference: scores materialised in double, the mask applied
// through OmniMask::allowed (the definition, spec §5.1) rather than key_end tiling, softmax in double.
//
// Tolerance. Inputs are N(0, 1) with scale 1/sqrt(D), so scores are O(1) and every output element is a convex
// combination of v values (|v| < ~5). The kernels differ from the double reference by F32 rounding only: the q·k
// sums over D terms, the exp2 polynomial (about 1 ulp), and the P·V sums over up to Lk terms, which together stay
// around 1e-6 on these shapes (each case prints its max abs error). PyTorch's F32 SDPA is off by the same amount on
// such inputs (1.2e-6 at L 1000, D 128, causal; torch 2.13), its bf16 path by 2e-3 to 1.2e-2. We allow
// atol = rtol = 2e-5: about 20x the F32 rounding we see, still 100x below bf16 error, and far below what a real bug
// (one key masked wrongly, a missed rescale, a wrong kv head) does to the output (1e-2 and more).
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "cpu/attention_internal.h"
#include "cpu/ops.h"
#include "cpu/thread_pool.h"
#include "test_util.h"

using namespace showo2;
using showo2::cpu::AttentionKernel;

namespace {

constexpr double kTolerance = 2e-5;  // used as both atol and rtol; see the top of the file

// The reference: out[b, i, h, :] in double from materialised, masked scores. Any strides.
std::vector<float> reference_attention(const Tensor& q, const Tensor& k, const Tensor& v, const OmniMask& mask,
                                       float scale) {
  const int64_t B = q.size(0), Lq = q.size(1), Hq = q.size(2), D = q.size(3);
  const int64_t Lk = k.size(1), Hkv = k.size(2), Dv = v.size(3);
  const float* qp = q.data<float>();
  const float* kp = k.data<float>();
  const float* vp = v.data<float>();
  auto at = [](const Tensor& t, const float* base, int64_t b, int64_t l, int64_t h) {
    return base + b * t.stride(0) + l * t.stride(1) + h * t.stride(2);
  };
  std::vector<float> out(static_cast<size_t>(B * Lq * Hq * Dv), 0.0f);
  std::vector<double> s(static_cast<size_t>(Lk));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hq; ++h) {
      const int64_t g = h / (Hq / Hkv);
      for (int64_t i = 0; i < Lq; ++i) {
        double mx = -std::numeric_limits<double>::infinity();
        bool any = false;
        for (int64_t j = 0; j < Lk; ++j) {
          if (!mask.allowed(b, i, j, Lk)) continue;
          const float* qi = at(q, qp, b, i, h);
          const float* kj = at(k, kp, b, j, g);
          double dot = 0;
          for (int64_t d = 0; d < D; ++d) dot += static_cast<double>(qi[d]) * kj[d];
          s[static_cast<size_t>(j)] = dot * scale;
          mx = std::max(mx, s[static_cast<size_t>(j)]);
          any = true;
        }
        if (!any) continue;  // a row that sees no key stays zero
        double sum = 0;
        std::vector<double> o(static_cast<size_t>(Dv), 0.0);
        for (int64_t j = 0; j < Lk; ++j) {
          if (!mask.allowed(b, i, j, Lk)) continue;
          const double p = std::exp(s[static_cast<size_t>(j)] - mx);
          sum += p;
          const float* vj = at(v, vp, b, j, g);
          for (int64_t c = 0; c < Dv; ++c) o[static_cast<size_t>(c)] += p * vj[c];
        }
        float* dst = out.data() + ((b * Lq + i) * Hq + h) * Dv;
        for (int64_t c = 0; c < Dv; ++c) dst[c] = static_cast<float>(o[static_cast<size_t>(c)] / sum);
      }
    }
  return out;
}

std::vector<AttentionKernel> kernels_to_test() {
  std::vector<AttentionKernel> kernels = {AttentionKernel::Portable};
  if (cpu::attention_kernel_available(AttentionKernel::Avx2))
    kernels.push_back(AttentionKernel::Avx2);
  else
    std::printf("    (AVX2 kernel not available on this CPU or build: testing the portable kernel only)\n");
  return kernels;
}

const char* kernel_name(AttentionKernel k) { return k == AttentionKernel::Avx2 ? "avx2" : "portable"; }

Tensor random_tensor(const Shape& shape, uint32_t seed) {
  return Tensor::from_f32(shape, test::random_normal(static_cast<size_t>(shape_numel(shape)), seed));
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  float m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

// Runs every kernel, single-threaded and on `pool`, and compares with the reference. Threaded and single-threaded
// runs must agree bit for bit: a tile's arithmetic does not depend on which thread runs it.
void check_against_reference(const std::string& what, const Tensor& q, const Tensor& k, const Tensor& v,
                             const OmniMask& mask, float scale, cpu::ThreadPool* pool, double tolerance = kTolerance) {
  const std::vector<float> ref = reference_attention(q, k, v, mask, scale);
  const Shape out_shape = {q.size(0), q.size(1), q.size(2), v.size(3)};
  for (AttentionKernel kernel : kernels_to_test()) {
    Tensor out_single = Tensor::empty(out_shape, DType::F32);
    Tensor out_threaded = Tensor::empty(out_shape, DType::F32);
    cpu::attention_with_kernel(q, k, v, mask, scale, out_single, nullptr, kernel);
    cpu::attention_with_kernel(q, k, v, mask, scale, out_threaded, pool, kernel);
    const std::vector<float> single = out_single.to_f32_vector();
    const std::vector<float> threaded = out_threaded.to_f32_vector();
    const std::string label = what + " [" + kernel_name(kernel) + "]";
    std::printf("    %-60s max |err| %.2e\n", label.c_str(), static_cast<double>(max_abs_diff(single, ref)));
    EXPECT_CLOSE(single.data(), ref.data(), ref.size(), tolerance, tolerance, label);
    if (single != threaded)
      test::fail_at(__FILE__, __LINE__, label + ": threaded output differs from single-threaded output");
  }
}

// Self-attention over [B, L, H*, D] random tensors.
void check_self_attention(const std::string& what, int64_t B, int64_t L, int64_t Hq, int64_t Hkv, int64_t D,
                          const OmniMask& mask, uint32_t seed, int64_t Dv = -1) {
  if (Dv < 0) Dv = D;
  cpu::ThreadPool pool(3);
  Tensor q = random_tensor({B, L, Hq, D}, seed);
  Tensor k = random_tensor({B, L, Hkv, D}, seed + 1);
  Tensor v = random_tensor({B, L, Hkv, Dv}, seed + 2);
  check_against_reference(what, q, k, v, mask, 1.0f / std::sqrt(static_cast<float>(D)), &pool);
}

}  // namespace

// ---- masks ------------------------------------------------------------------------------------------------------

SHOWO2_TEST(causal_matches_reference) {
  check_self_attention("causal B2 L7 H2 D64", 2, 7, 2, 2, 64, OmniMask::causal(), 11);
  check_self_attention("causal B1 L1 H3 D64", 1, 1, 3, 3, 64, OmniMask::causal(), 12);
  check_self_attention("causal B2 L1000 H2 D128", 2, 1000, 2, 2, 128, OmniMask::causal(), 13);
}

SHOWO2_TEST(full_matches_reference) {
  check_self_attention("full B2 L7 H2 D64", 2, 7, 2, 2, 64, OmniMask::full(), 21);
  check_self_attention("full B1 L730 H2 D64", 1, 730, 2, 2, 64, OmniMask::full(), 22);
}

SHOWO2_TEST(omni_blocks_differ_per_sample) {
  // Several blocks in sample 0, different ones in sample 1; blocks start and end mid-tile and one is a single token.
  OmniMask mask = OmniMask::omni({{{5, 20}, {40, 100}, {300, 300}, {650, 1}}, {{0, 50}, {200, 400}}});
  check_self_attention("omni B2 L730 H2 D72", 2, 730, 2, 2, 72, mask, 31);
  // One block list shared by both samples, block reaching the end of the sequence.
  OmniMask shared = OmniMask::omni({{{100, 29}, {150, 50}}});
  check_self_attention("omni shared B2 L200 H2 D64", 2, 200, 2, 2, 64, shared, 32);
}

// ---- shapes -----------------------------------------------------------------------------------------------------

SHOWO2_TEST(grouped_query_attention) {
  OmniMask omni = OmniMask::omni({{{20, 60}}});
  check_self_attention("GQA 12/2 D128 (LLM 1.5B) causal L100", 1, 100, 12, 2, 128, OmniMask::causal(), 41);
  check_self_attention("GQA 32/8 D64 (flow head) omni L130", 1, 130, 32, 8, 64, omni, 42);
  check_self_attention("GQA 28/4 D128 (LLM 7B) omni L57", 1, 57, 28, 4, 128, omni, 43);
}

SHOWO2_TEST(awkward_head_dims) {
  check_self_attention("SigLIP 16 heads of 72, full L50", 1, 50, 16, 16, 72, OmniMask::full(), 51);
  check_self_attention("VAE single 384-wide head, full L300", 1, 300, 1, 1, 384, OmniMask::full(), 52);
  // Dims that are not whole vectors exercise the scalar tails and the padded V tile.
  check_self_attention("D 7, Dv 13 causal L70", 2, 70, 2, 1, 7, OmniMask::causal(), 53, 13);
  check_self_attention("D 20, Dv 8 full L65", 1, 65, 1, 1, 20, OmniMask::full(), 54, 8);
  check_self_attention("D 1, Dv 1 causal L9", 1, 9, 1, 1, 1, OmniMask::causal(), 55, 1);
}

SHOWO2_TEST(kv_head_too_large_to_cache_packs_per_tile) {
  // 6000 keys of a 384-wide head are 18 MB of packed K and V, over AttentionTileTraits::kMaxPackedHeadBytes, so
  // the kernels pack every key tile into scratch instead of keeping the head. Few query rows keep the reference fast.
  const int64_t Lq = 20, Lk = 6000, D = 384;
  static_assert(Lk * 2 * D * 4 > cpu::AttentionTileTraits::kMaxPackedHeadBytes, "the head must not fit the cache");
  cpu::ThreadPool pool(2);
  Tensor q = random_tensor({1, Lq, 2, D}, 56);
  Tensor k = random_tensor({1, Lk, 1, D}, 57), v = random_tensor({1, Lk, 1, D}, 58);
  check_against_reference("uncached head, full", q, k, v, OmniMask::full(), 0.05f, &pool);
  check_against_reference("uncached head, causal rows at the end", q, k, v, OmniMask::causal(Lk - Lq), 0.05f, &pool);
}

SHOWO2_TEST(online_softmax_rescales_across_tiles) {
  // Scores that grow along the keys (to ~190 at the last key) make the running max rise on every key tile, so each
  // step must rescale the accumulator, and exp of the raw scores would overflow F32 (e^89 already does).
  const int64_t L = 300, D = 64;
  cpu::ThreadPool pool(2);
  std::vector<float> qv(static_cast<size_t>(L * D), 1.0f), kv = test::random_normal(static_cast<size_t>(L * D), 61);
  for (int64_t j = 0; j < L; ++j)
    for (int64_t d = 0; d < D; ++d) {
      float& x = kv[static_cast<size_t>(j * D + d)];
      x = 0.02f * static_cast<float>(j) + 0.1f * x;
    }
  Tensor q = Tensor::from_f32({1, L, 1, D}, qv);
  Tensor k = Tensor::from_f32({1, L, 1, D}, kv);
  Tensor v = random_tensor({1, L, 1, D}, 62);
  // F32 scores near 190 carry rounding errors near 1e-5, which the softmax weights and the output inherit: PyTorch's
  // F32 SDPA is off by 5e-5 on this construction too. So this case allows 10x the usual tolerance; a missed or
  // doubled rescale is still off by O(1).
  check_against_reference("rising scores, causal", q, k, v, OmniMask::causal(), 0.5f, &pool, 10 * kTolerance);
  check_against_reference("rising scores, full", q, k, v, OmniMask::full(), 0.5f, &pool, 10 * kTolerance);
}

// ---- layouts ----------------------------------------------------------------------------------------------------

SHOWO2_TEST(strided_views_of_fused_qkv) {
  // q, k, v as head slices of one fused projection output [B, L, Hq + 2 Hkv, D] (the LLM layout), and out a slice of
  // a wider buffer, so every row and batch stride differs from the contiguous one.
  const int64_t B = 2, L = 97, Hq = 4, Hkv = 2, D = 64;
  Tensor qkv = random_tensor({B, L, Hq + 2 * Hkv, D}, 71);
  Tensor q = qkv.slice(2, 0, Hq);
  Tensor k = qkv.slice(2, Hq, Hq + Hkv);
  Tensor v = qkv.slice(2, Hq + Hkv, Hq + 2 * Hkv);
  CHECK(!q.is_contiguous() && !k.is_contiguous() && !v.is_contiguous());
  OmniMask mask = OmniMask::omni({{{10, 40}}, {{30, 50}}});
  cpu::ThreadPool pool(2);
  check_against_reference("fused qkv views", q, k, v, mask, 0.125f, &pool);

  // Sequence-major storage [L, B, H, D] viewed as [B, L, H, D], and a strided output.
  Tensor q_lb = random_tensor({L, B, Hq, D}, 72).transpose(0, 1);
  Tensor k_lb = random_tensor({L, B, Hkv, D}, 73).transpose(0, 1);
  Tensor v_lb = random_tensor({L, B, Hkv, D}, 74).transpose(0, 1);
  const std::vector<float> ref = reference_attention(q_lb, k_lb, v_lb, mask, 0.125f);
  for (AttentionKernel kernel : kernels_to_test()) {
    Tensor wide = Tensor::zeros({B, L, Hq + 1, D}, DType::F32);
    Tensor out = wide.slice(2, 1, Hq + 1);
    cpu::attention_with_kernel(q_lb, k_lb, v_lb, mask, 0.125f, out, &pool, kernel);
    const std::vector<float> got = out.to_f32_vector();
    EXPECT_CLOSE(got.data(), ref.data(), ref.size(), kTolerance, kTolerance,
                 std::string("sequence-major views [") + kernel_name(kernel) + "]");
    // The head the output slice leaves out is untouched.
    const std::vector<float> skipped = wide.slice(2, 0, 1).to_f32_vector();
    for (float x : skipped) CHECK_EQ(x, 0.0f);
  }
}

// ---- KV cache -----------------------------------------------------------------------------------------------------

SHOWO2_TEST(kv_cache_rows_match_full_computation) {
  // Queries [query_offset, L) against all L cached keys must reproduce those rows of the full computation; this is
  // Euler steps with a cached prefix (spec §12), with the block straddling the split.
  const int64_t B = 2, L = 230, Hq = 6, Hkv = 2, D = 64, split = 150;
  const std::vector<std::vector<BidirectionalBlock>> blocks = {{{100, 101}}, {{140, 60}}};
  cpu::ThreadPool pool(2);
  Tensor q = random_tensor({B, L, Hq, D}, 81);
  Tensor k = random_tensor({B, L, Hkv, D}, 82);
  Tensor v = random_tensor({B, L, Hkv, D}, 83);
  const float scale = 0.125f;
  for (AttentionKernel kernel : kernels_to_test()) {
    Tensor full_out = Tensor::empty({B, L, Hq, D}, DType::F32);
    cpu::attention_with_kernel(q, k, v, OmniMask::omni(blocks), scale, full_out, &pool, kernel);

    Tensor tail_out = Tensor::empty({B, L - split, Hq, D}, DType::F32);
    cpu::attention_with_kernel(q.slice(1, split, L), k, v, OmniMask::omni(blocks, split), scale, tail_out, &pool,
                               kernel);
    const std::vector<float> want = full_out.slice(1, split, L).to_f32_vector();
    const std::vector<float> got = tail_out.to_f32_vector();
    // Same tiles see the same keys, but the query tiles start at a different row, so allow rounding differences.
    EXPECT_CLOSE(got.data(), want.data(), want.size(), kTolerance, kTolerance,
                 std::string("cached tail rows [") + kernel_name(kernel) + "]");

    // Token-by-token decoding after the blocks: row p sees keys [0, p] of the cache (Lk = p + 1).
    for (int64_t p : {210, 211, 229}) {
      Tensor row_out = Tensor::empty({B, 1, Hq, D}, DType::F32);
      cpu::attention_with_kernel(q.slice(1, p, p + 1), k.slice(1, 0, p + 1), v.slice(1, 0, p + 1),
                                 OmniMask::omni(blocks, p), scale, row_out, &pool, kernel);
      const std::vector<float> want_row = full_out.slice(1, p, p + 1).to_f32_vector();
      const std::vector<float> got_row = row_out.to_f32_vector();
      EXPECT_CLOSE(got_row.data(), want_row.data(), want_row.size(), kTolerance, kTolerance,
                   std::string("decoded row ") + std::to_string(p) + " [" + kernel_name(kernel) + "]");
    }
  }
}

// ---- edge cases ---------------------------------------------------------------------------------------------------

SHOWO2_TEST(rows_that_see_no_key_write_zeros) {
  Tensor q = random_tensor({1, 3, 2, 16}, 91);
  Tensor k = Tensor::empty({1, 0, 2, 16}, DType::F32);
  Tensor v = Tensor::empty({1, 0, 2, 16}, DType::F32);
  for (AttentionKernel kernel : kernels_to_test()) {
    Tensor out = Tensor::from_f32({1, 3, 2, 16}, std::vector<float>(96, 7.0f));
    cpu::attention_with_kernel(q, k, v, OmniMask::causal(), 0.25f, out, nullptr, kernel);
    for (float x : out.to_f32_vector()) CHECK_EQ(x, 0.0f);
  }
  // Empty batch / query count: nothing to do, no error.
  Tensor q0 = Tensor::empty({0, 4, 2, 16}, DType::F32), kv0 = Tensor::empty({0, 4, 2, 16}, DType::F32);
  Tensor out0 = Tensor::empty({0, 4, 2, 16}, DType::F32);
  cpu::attention(q0, kv0, kv0, OmniMask::causal(), 0.25f, out0, nullptr);
}

SHOWO2_TEST(nan_in_a_query_row_stays_in_that_row) {
  // IEEE behaviour is kept (no fast-math): a NaN input shows up as NaN output instead of silently vanishing, and
  // it does not leak into rows that never read it.
  const int64_t L = 60, D = 32;
  std::vector<float> qv = test::random_normal(static_cast<size_t>(L * D), 95);
  qv[static_cast<size_t>(10 * D + 3)] = std::numeric_limits<float>::quiet_NaN();
  Tensor q = Tensor::from_f32({1, L, 1, D}, qv);
  Tensor k = random_tensor({1, L, 1, D}, 96), v = random_tensor({1, L, 1, D}, 97);
  for (AttentionKernel kernel : kernels_to_test()) {
    Tensor out = Tensor::empty({1, L, 1, D}, DType::F32);
    cpu::attention_with_kernel(q, k, v, OmniMask::causal(), 0.2f, out, nullptr, kernel);
    const std::vector<float> o = out.to_f32_vector();
    for (int64_t i = 0; i < L; ++i)
      for (int64_t c = 0; c < D; ++c) CHECK_EQ(std::isnan(o[static_cast<size_t>(i * D + c)]), i == 10);
  }
}

SHOWO2_TEST(nan_in_a_key_reaches_exactly_the_rows_that_see_it) {
  // Key 150 of 300 is NaN: causal rows before it (earlier key tiles and the start of its own tile) stay finite.
  const int64_t L = 300, D = 16;
  std::vector<float> kv = test::random_normal(static_cast<size_t>(L * D), 98);
  kv[static_cast<size_t>(150 * D)] = std::numeric_limits<float>::quiet_NaN();
  Tensor q = random_tensor({1, L, 1, D}, 99), k = Tensor::from_f32({1, L, 1, D}, kv);
  Tensor v = random_tensor({1, L, 1, D}, 100);
  for (AttentionKernel kernel : kernels_to_test()) {
    Tensor out = Tensor::empty({1, L, 1, D}, DType::F32);
    cpu::attention_with_kernel(q, k, v, OmniMask::causal(), 0.25f, out, nullptr, kernel);
    const std::vector<float> o = out.to_f32_vector();
    for (int64_t i = 0; i < L; ++i) CHECK_EQ(std::isnan(o[static_cast<size_t>(i * D)]), i >= 150);
  }
}

SHOWO2_TEST(dispatching_entry_point_matches_reference) {
  // cpu::attention picks the kernel from cpu_features(); whichever it picks must be right.
  cpu::ThreadPool pool(2);
  Tensor q = random_tensor({1, 130, 4, 64}, 101), k = random_tensor({1, 130, 2, 64}, 102);
  Tensor v = random_tensor({1, 130, 2, 64}, 103);
  OmniMask mask = OmniMask::omni({{{30, 70}}});
  Tensor out = Tensor::empty({1, 130, 4, 64}, DType::F32);
  cpu::attention(q, k, v, mask, 0.125f, out, &pool);
  const std::vector<float> ref = reference_attention(q, k, v, mask, 0.125f);
  const std::vector<float> got = out.to_f32_vector();
  EXPECT_CLOSE(got.data(), ref.data(), ref.size(), kTolerance, kTolerance, "cpu::attention");
}

// ---- argument validation ------------------------------------------------------------------------------------------

SHOWO2_TEST(invalid_arguments_throw_typed_errors) {
  Tensor q = random_tensor({2, 5, 4, 8}, 111), k = random_tensor({2, 5, 2, 8}, 112);
  Tensor v = random_tensor({2, 5, 2, 6}, 113);
  Tensor out = Tensor::empty({2, 5, 4, 6}, DType::F32);
  const OmniMask causal = OmniMask::causal();
  auto call = [&](const Tensor& qq, const Tensor& kk, const Tensor& vv, const OmniMask& m, float s, Tensor& oo) {
    cpu::attention(qq, kk, vv, m, s, oo, nullptr);
  };
  call(q, k, v, causal, 0.3f, out);  // the valid call the cases below break one thing of

  CHECK_THROWS_CODE(call(q.to(DType::BF16), k, v, causal, 0.3f, out), UnsupportedDtype);
  CHECK_THROWS_CODE(call(q, k, v.to(DType::F16), causal, 0.3f, out), UnsupportedDtype);
  CHECK_THROWS_CODE(call(Tensor(), k, v, causal, 0.3f, out), InvalidArgument);
  CHECK_THROWS_CODE(call(q.reshape({10, 4, 8}), k, v, causal, 0.3f, out), ShapeMismatch);
  CHECK_THROWS_CODE(call(q, random_tensor({3, 5, 2, 8}, 1), v, causal, 0.3f, out), ShapeMismatch);  // batch
  CHECK_THROWS_CODE(call(q, random_tensor({2, 5, 2, 9}, 1), v, causal, 0.3f, out), ShapeMismatch);  // D
  CHECK_THROWS_CODE(call(q, k, random_tensor({2, 6, 2, 6}, 1), causal, 0.3f, out), ShapeMismatch);  // Lk
  CHECK_THROWS_CODE(call(q, k, random_tensor({2, 5, 1, 6}, 1), causal, 0.3f, out), ShapeMismatch);  // Hkv
  CHECK_THROWS_CODE(call(q, random_tensor({2, 5, 3, 8}, 1), random_tensor({2, 5, 3, 6}, 2), causal, 0.3f, out),
                    ShapeMismatch);  // 4 heads over 3 kv heads
  Tensor wrong_out = Tensor::empty({2, 5, 4, 8}, DType::F32);
  CHECK_THROWS_CODE(call(q, k, v, causal, 0.3f, wrong_out), ShapeMismatch);
  // Every other element of a wider tensor: the last dimension has stride 2.
  Tensor strided_last =
      Tensor::view_of(random_tensor({2, 5, 4, 16}, 1).storage(), DType::F32, {2, 5, 4, 8}, {320, 64, 16, 2}, 0);
  CHECK_THROWS_CODE(call(strided_last, k, v, causal, 0.3f, out), ShapeMismatch);
  CHECK_THROWS_CODE(call(q, k, v, OmniMask::omni({{}, {}, {}}), 0.3f, out), InvalidArgument);  // 3 lists, batch 2
  CHECK_THROWS_CODE(call(q, k, v, OmniMask::causal(-1), 0.3f, out), InvalidArgument);
  CHECK_THROWS_CODE(call(q, k, v, causal, std::numeric_limits<float>::quiet_NaN(), out), InvalidArgument);
  CHECK_THROWS_CODE(call(q, k, v, causal, std::numeric_limits<float>::infinity(), out), InvalidArgument);
  Tensor zero_dim_q = Tensor::empty({2, 5, 4, 0}, DType::F32), zero_dim_k = Tensor::empty({2, 5, 2, 0}, DType::F32);
  CHECK_THROWS_CODE(call(zero_dim_q, zero_dim_k, v, causal, 0.3f, out), ShapeMismatch);

  // Output that is read-only (a window into a mapped weight file) or overlaps an input.
  std::vector<float> backing(2 * 5 * 4 * 6, 0.0f);
  Tensor read_only = Tensor::view_of(Storage::borrow(backing.data(), backing.size() * 4, nullptr), DType::F32,
                                     {2, 5, 4, 6}, contiguous_strides({2, 5, 4, 6}), 0);
  CHECK_THROWS_CODE(call(q, k, v, causal, 0.3f, read_only), InvalidArgument);
  Tensor qkv = random_tensor({2, 5, 8, 8}, 114);
  Tensor q_view = qkv.slice(2, 0, 4), out_over_q = qkv.slice(2, 0, 4);
  Tensor k_view = qkv.slice(2, 4, 6), v_view = qkv.slice(2, 6, 8);
  CHECK_THROWS_CODE(call(q_view, k_view, v_view, causal, 0.3f, out_over_q), InvalidArgument);
}

SHOWO2_TEST_MAIN()
