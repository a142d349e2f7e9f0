// TextSampler (native/core/text_sampler.cpp): greedy, temperature, top-k, top-p and repetition penalty semantics on
// small hand-made logits, the documented draw reproduced step by step, determinism by seed, and typed errors.
//
// Frequency checks. Each draws N = 20000 tokens (seeds fixed, so the test is deterministic) and requires every
// token's count to be within 5 standard deviations of N * p (binomial: sigma = sqrt(N p (1 - p))). For a correct
// sampler a fresh seed would fail one such check with probability < 1e-6; a wrong distribution of the kind these
// tests target (an unnormalised top-p set, a temperature applied as a multiplication, a dropped boundary token)
// moves some count by 20+ sigma.
#include <algorithm>
#include <chrono>
#include <functional>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "test_util.h"
#include "text_sampler.h"

using namespace showo2;

namespace {

constexpr int kDraws = 20000;
constexpr double kSigmas = 5.0;

SamplingParams sampling(float temperature, int64_t top_k = 0, float top_p = 1.0f, float penalty = 1.0f,
                        uint64_t seed = 1) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_k = top_k;
  p.top_p = top_p;
  p.repetition_penalty = penalty;
  p.seed = seed;
  return p;
}

std::vector<int> draw_counts(const SamplingParams& params, const std::vector<float>& logits,
                             const std::vector<int32_t>& history = {}) {
  TextSampler sampler(params);
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < kDraws; ++i)
    ++counts[static_cast<size_t>(sampler.sample(logits.data(), static_cast<int64_t>(logits.size()), history))];
  return counts;
}

// Every count within kSigmas binomial standard deviations of kDraws * p (p = 0 must give exactly 0).
void expect_frequencies(const std::vector<int>& counts, const std::vector<double>& probs, const std::string& what) {
  std::printf("    %s:", what.c_str());
  for (size_t i = 0; i < probs.size(); ++i) {
    const double expected = kDraws * probs[i];
    const double sigma = std::sqrt(kDraws * probs[i] * (1 - probs[i]));
    const double z = sigma > 0 ? (counts[i] - expected) / sigma : 0.0;
    std::printf(" [%zu] %d (expected %.0f, %+.1f sigma)", i, counts[i], expected, z);
    if (probs[i] == 0.0) CHECK_EQ(counts[i], 0);
    else if (!(std::fabs(z) <= kSigmas)) test::fail_at(__FILE__, __LINE__, what + ": a count is off by > 5 sigma");
  }
  std::printf("\n");
}

// softmax(logits / temperature) restricted to `keep` (a 0/1 mask), renormalised.
std::vector<double> probabilities(const std::vector<float>& logits, float temperature, const std::vector<int>& keep) {
  std::vector<double> p(logits.size(), 0.0);
  double total = 0;
  for (size_t i = 0; i < logits.size(); ++i)
    if (keep[i]) total += p[i] = std::exp(static_cast<double>(logits[i]) / temperature);
  for (double& v : p) v /= total;
  return p;
}

// Logits whose softmax at temperature 1 is exactly proportional to `probs`.
std::vector<float> logits_of(const std::vector<double>& probs) {
  std::vector<float> l;
  for (double p : probs) l.push_back(static_cast<float>(std::log(p)));
  return l;
}

}  // namespace

SHOWO2_TEST(greedy_is_argmax_with_ties_to_the_lowest_id) {
  std::vector<float> logits = test::random_normal(1000, 3);
  int64_t best = 0;
  for (int64_t i = 1; i < 1000; ++i)
    if (logits[static_cast<size_t>(i)] > logits[static_cast<size_t>(best)]) best = i;
  TextSampler greedy(SamplingParams{});
  CHECK_EQ(static_cast<int64_t>(greedy.sample(logits.data(), 1000, {})), best);
  // Greedy ignores top-k / top-p (as transformers without do_sample) and consumes no randomness.
  TextSampler greedy_topk(sampling(0.0f, 5, 0.3f));
  CHECK_EQ(static_cast<int64_t>(greedy_topk.sample(logits.data(), 1000, {})), best);
  std::vector<float> ties = {1.0f, 3.0f, -2.0f, 3.0f, 3.0f};
  CHECK_EQ(greedy.sample(ties.data(), 5, {}), 1);
  // -inf entries are never picked; a single finite entry always is.
  const float ninf = -std::numeric_limits<float>::infinity();
  std::vector<float> banned = {ninf, ninf, -50.0f, ninf};
  CHECK_EQ(greedy.sample(banned.data(), 4, {}), 2);
  TextSampler hot(sampling(5.0f, 0, 0.5f));
  for (int i = 0; i < 100; ++i) CHECK_EQ(hot.sample(banned.data(), 4, {}), 2);
}

SHOWO2_TEST(top_k_1_equals_greedy_and_keeps_boundary_ties) {
  std::vector<float> logits = test::random_normal(5000, 4);
  TextSampler greedy(SamplingParams{});
  const int32_t best = greedy.sample(logits.data(), 5000, {});
  for (uint64_t seed = 0; seed < 50; ++seed) {
    TextSampler s(sampling(1.5f, 1, 1.0f, 1.0f, seed));
    CHECK_EQ(s.sample(logits.data(), 5000, {}), best);
  }
  // transformers' TopKLogitsWarper keeps every token whose score equals the k-th largest: both 3.0 entries here.
  std::vector<float> ties = {1.0f, 3.0f, 0.0f, 3.0f};
  expect_frequencies(draw_counts(sampling(1.0f, 1), ties), {0.0, 0.5, 0.0, 0.5}, "top_k 1 with a tie at the top");
  // top_k 2 on distinct logits: renormalised softmax of the two largest.
  std::vector<float> l = {0.0f, 1.0f, 2.0f, 0.5f};
  expect_frequencies(draw_counts(sampling(1.0f, 2), l), probabilities(l, 1.0f, {0, 1, 1, 0}), "top_k 2");
  // top_k >= vocab is off.
  expect_frequencies(draw_counts(sampling(1.0f, 10), l), probabilities(l, 1.0f, {1, 1, 1, 1}), "top_k 10 of 4");
}

SHOWO2_TEST(temperature_scales_the_logits) {
  std::vector<float> l = {0.0f, 1.0f, 2.0f, -1.0f};
  expect_frequencies(draw_counts(sampling(1.0f), l), probabilities(l, 1.0f, {1, 1, 1, 1}), "temperature 1");
  expect_frequencies(draw_counts(sampling(2.0f), l), probabilities(l, 2.0f, {1, 1, 1, 1}), "temperature 2");
  expect_frequencies(draw_counts(sampling(0.5f), l), probabilities(l, 0.5f, {1, 1, 1, 1}), "temperature 0.5");
}

SHOWO2_TEST(top_p_keeps_the_smallest_set_reaching_the_mass) {
  // Probabilities 0.5, 0.3, 0.15, 0.05 (ids scrambled so rank order differs from id order).
  const std::vector<double> p = {0.15, 0.5, 0.05, 0.3};
  const std::vector<float> l = logits_of(p);
  // 0.45: the top token alone (0.5) reaches it.
  expect_frequencies(draw_counts(sampling(1.0f, 0, 0.45f), l), {0, 1, 0, 0}, "top_p 0.45");
  // 0.6: 0.5 < 0.6, so the second token joins; 0.8 >= 0.6 stops.
  expect_frequencies(draw_counts(sampling(1.0f, 0, 0.6f), l), probabilities(l, 1.0f, {0, 1, 0, 1}), "top_p 0.6");
  // 0.81: 0.8 < 0.81, so the third joins too.
  expect_frequencies(draw_counts(sampling(1.0f, 0, 0.81f), l), probabilities(l, 1.0f, {1, 1, 0, 1}), "top_p 0.81");
  // After top-k 2 the mass is renormalised over the two kept (0.625, 0.375): 0.6 keeps only the first.
  expect_frequencies(draw_counts(sampling(1.0f, 2, 0.6f), l), {0, 1, 0, 0}, "top_k 2 then top_p 0.6");
  // Temperature comes before top-p: at T = 4 the top token's mass is ~0.32 < 0.45, so more tokens join.
  std::vector<int> counts = draw_counts(sampling(4.0f, 0, 0.45f), l);
  CHECK(counts[3] > 0);
}

SHOWO2_TEST(top_p_on_a_large_flat_vocabulary_grows_the_candidate_prefix) {
  // 151669 equal logits: top_p 0.5 keeps the first half by rank, which ties order by ascending id, so 75835 tokens
  // (mass 75834/V < 0.5 before the last one). The partial sort has to grow from 64 candidates to all of them.
  const int64_t V = 151669;
  std::vector<float> flat(static_cast<size_t>(V), 0.25f);
  TextSampler s(sampling(1.0f, 0, 0.5f, 1.0f, 9));
  int32_t max_id = 0;
  for (int i = 0; i < 200; ++i) max_id = std::max(max_id, s.sample(flat.data(), V, {}));
  std::printf("    largest of 200 draws: %d (kept ids 0..75834)\n", max_id);
  CHECK(max_id <= 75834);
  CHECK(max_id > 70000);  // 200 uniform draws over 75835 ids: P(all <= 70000) = (70001/75835)^200 < 1e-6
}

SHOWO2_TEST(repetition_penalty_follows_transformers) {
  TextSampler greedy(sampling(0.0f, 0, 1.0f, 2.0f));
  // Positive logits of seen ids are divided: 2.0 -> 1.0 < 1.5.
  std::vector<float> pos = {2.0f, 1.5f, -1.0f};
  CHECK_EQ(greedy.sample(pos.data(), 3, {0, 0, 0}), 1);
  // Negative logits are multiplied: -0.5 -> -1.0 < -0.6.
  std::vector<float> neg = {-0.5f, -0.6f};
  CHECK_EQ(greedy.sample(neg.data(), 2, {0}), 1);
  // Unseen ids are untouched; a repeated id is penalised once (distinct ids).
  std::vector<float> l = {3.0f, 1.4f};
  CHECK_EQ(greedy.sample(l.data(), 2, {0, 0, 0, 0}), 0);  // once: 3.0 / 2 = 1.5 > 1.4 (twice would give 0.75)
  CHECK_EQ(greedy.sample(l.data(), 2, {}), 0);
}

SHOWO2_TEST(the_documented_draw_is_reproduced) {
  // text_sampler.h: u = (r >> 11) * 2^-53 from mt19937_64(seed); ascending ids, running sum of exp(l - max) > u*sum.
  const std::vector<float> l = {0.3f, -1.2f, 2.0f, 0.7f, 1.1f};
  const float t = 0.8f;
  std::mt19937_64 rng(1234);
  TextSampler sampler(sampling(t, 0, 1.0f, 1.0f, 1234));
  for (int call = 0; call < 200; ++call) {
    std::vector<double> w;
    float max_s = -1e30f;
    for (float v : l) max_s = std::max(max_s, v / t);
    double total = 0;
    for (float v : l) total += w.emplace_back(std::exp(static_cast<double>(v / t) - max_s));
    const double target = static_cast<double>(rng() >> 11) * 0x1.0p-53 * total;
    int32_t expected = 4;
    double running = 0;
    for (int32_t i = 0; i < 5; ++i)
      if ((running += w[static_cast<size_t>(i)]) > target) {
        expected = i;
        break;
      }
    CHECK_EQ(sampler.sample(l.data(), 5, {}), expected);
  }
}

SHOWO2_TEST(same_seed_same_tokens) {
  std::vector<float> l = test::random_normal(2000, 5, 2.0f);
  auto run = [&](uint64_t seed) {
    TextSampler s(sampling(1.0f, 40, 0.9f, 1.3f, seed));
    std::vector<int32_t> tokens;
    for (int i = 0; i < 100; ++i) tokens.push_back(s.sample(l.data(), 2000, tokens));
    return tokens;
  };
  CHECK(run(42) == run(42));
  CHECK(run(42) != run(43));
}

SHOWO2_TEST(invalid_params_and_logits_are_typed_errors) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  CHECK_THROWS_CODE(TextSampler(sampling(-0.1f)), InvalidArgument);
  CHECK_THROWS_CODE(TextSampler(sampling(nan)), InvalidArgument);
  CHECK_THROWS_CODE(TextSampler(sampling(inf)), InvalidArgument);
  CHECK_THROWS_CODE(TextSampler(sampling(1.0f, -1)), InvalidArgument);
  CHECK_THROWS_CODE(TextSampler(sampling(1.0f, 0, 0.0f)), InvalidArgument);
  CHECK_THROWS_CODE(TextSampler(sampling(1.0f, 0, 1.5f)), InvalidArgument);
  CHECK_THROWS_CODE(TextSampler(sampling(1.0f, 0, nan)), InvalidArgument);
  CHECK_THROWS_CODE(TextSampler(sampling(1.0f, 0, 1.0f, 0.0f)), InvalidArgument);
  CHECK_THROWS_CODE(TextSampler(sampling(1.0f, 0, 1.0f, -2.0f)), InvalidArgument);
  CHECK_THROWS_CODE(TextSampler(sampling(1.0f, 0, 1.0f, inf)), InvalidArgument);
  try {
    sampling(1.0f, 0, 2.0f).validate();
    test::fail_at(__FILE__, __LINE__, "expected ERR_INVALID_ARGUMENT");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("top_p") != std::string::npos);
  }

  TextSampler greedy(SamplingParams{});
  TextSampler hot(sampling(1.0f, 0, 1.0f, 1.2f));
  std::vector<float> with_nan = {0.0f, nan, 1.0f};
  CHECK_THROWS_CODE(greedy.sample(with_nan.data(), 3, {}), InvalidArgument);
  CHECK_THROWS_CODE(hot.sample(with_nan.data(), 3, {}), InvalidArgument);
  std::vector<float> with_inf = {0.0f, inf, 1.0f};
  CHECK_THROWS_CODE(hot.sample(with_inf.data(), 3, {}), InvalidArgument);
  std::vector<float> all_banned = {-inf, -inf};
  CHECK_THROWS_CODE(greedy.sample(all_banned.data(), 2, {}), InvalidArgument);
  std::vector<float> ok = {0.0f, 1.0f};
  CHECK_THROWS_CODE(hot.sample(ok.data(), 2, {5}), InvalidArgument);   // history id outside [0, vocab)
  CHECK_THROWS_CODE(hot.sample(ok.data(), 0, {}), InvalidArgument);
  CHECK_THROWS_CODE(hot.sample(nullptr, 2, {}), InvalidArgument);
}

SHOWO2_TEST(full_vocabulary_sampling_cost) {
  // Not a benchmark: prints the per-call cost at Show-o2's vocabulary, which should stay far below a decode step
  // (~100 ms for the 1.5B model on 2 cores), and checks top-k picks from the top k.
  const int64_t V = 151669;
  std::vector<float> l = test::random_normal(static_cast<size_t>(V), 6, 3.0f);
  std::vector<float> sorted = l;
  std::nth_element(sorted.begin(), sorted.begin() + 49, sorted.end(), std::greater<float>());
  const float threshold = sorted[49];
  struct Case {
    const char* name;
    SamplingParams params;
  };
  for (const Case& c : {Case{"greedy", sampling(0.0f)}, Case{"top_k 50", sampling(0.8f, 50)},
                        Case{"top_p 0.9", sampling(0.8f, 0, 0.9f)}, Case{"top_k 50 + top_p 0.9", sampling(0.8f, 50, 0.9f)},
                        Case{"full softmax", sampling(1.0f)}}) {
    TextSampler s(c.params);
    std::vector<int32_t> history(300, 17);
    const auto t0 = std::chrono::steady_clock::now();
    int32_t token = 0;
    for (int i = 0; i < 20; ++i) token = s.sample(l.data(), V, history);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / 20;
    std::printf("    %-22s %.3f ms per call\n", c.name, ms);
    if (c.params.top_k == 50) CHECK(l[static_cast<size_t>(token)] >= threshold);
  }
}

SHOWO2_TEST_MAIN()
