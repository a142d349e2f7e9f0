// Next-token selection (text_sampler.h has the semantics and the exact draw).
//
// Speed: the decode loop calls this once per token over 151669 logits, so nothing sorts the whole vocabulary.
// top-k finds its threshold with nth_element (O(V)) and sorts only the k kept; top-p alone partially sorts a growing
// prefix of the most likely tokens (64, 256, 1024, ... candidates) until it covers the mass, which for a peaked
// language-model distribution is usually the first prefix.
#include "text_sampler.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <sstream>

#include "error.h"

namespace showo2 {

void SamplingParams::validate() const {
  if (!(temperature >= 0.0f) || !std::isfinite(temperature))
    fail(ErrorCode::InvalidArgument, "SamplingParams: temperature: expected a finite value >= 0 but got ", temperature);
  if (top_k < 0) fail(ErrorCode::InvalidArgument, "SamplingParams: top_k: expected an integer >= 0 but got ", top_k);
  if (!(top_p > 0.0f && top_p <= 1.0f))
    fail(ErrorCode::InvalidArgument, "SamplingParams: top_p: expected a value in (0, 1] but got ", top_p);
  if (!(repetition_penalty > 0.0f) || !std::isfinite(repetition_penalty))
    fail(ErrorCode::InvalidArgument, "SamplingParams: repetition_penalty: expected a finite value > 0 but got ",
         repetition_penalty);
  for (size_t i = 0; i < logit_bias.size(); ++i) {
    const float b = logit_bias[i].second;
    if (std::isnan(b) || b == std::numeric_limits<float>::infinity())
      fail(ErrorCode::InvalidArgument, "SamplingParams: logit_bias[", i, "] (id ", logit_bias[i].first,
           "): expected a finite bias or -inf but got ", b);
    if (logit_bias[i].first < 0)
      fail(ErrorCode::InvalidArgument, "SamplingParams: logit_bias[", i, "]: expected a token id >= 0 but got ",
           logit_bias[i].first);
  }
}

TextSampler::TextSampler(const SamplingParams& params) : params_(params), rng_(params.seed) { params_.validate(); }

namespace {

// Descending logit, then ascending id: the rank order used by top-k ties and top-p (deterministic for equal logits).
struct ByScoreDesc {
  const float* scores;
  bool operator()(int32_t a, int32_t b) const {
    return scores[a] != scores[b] ? scores[a] > scores[b] : a < b;
  }
};

}  // namespace

int32_t TextSampler::sample(const float* logits, int64_t vocab, const std::vector<int32_t>& history,
                            const std::vector<int32_t>& banned) {
  SHOWO2_CHECK(logits != nullptr, InvalidArgument, "TextSampler.sample: logits is null");
  SHOWO2_CHECK(vocab > 0 && vocab <= std::numeric_limits<int32_t>::max(), InvalidArgument,
               "TextSampler.sample: vocab: expected 1..2^31-1 but got ", vocab);
  const float kInf = std::numeric_limits<float>::infinity();
  bool any_finite = false;
  for (int64_t i = 0; i < vocab; ++i) {
    const float l = logits[i];
    if (std::isnan(l) || l == kInf)
      fail(ErrorCode::InvalidArgument, "TextSampler.sample: logits: ", std::isnan(l) ? "NaN" : "+inf", " at index ", i,
           " (only finite values and -inf, meaning never pick, are valid)");
    any_finite = any_finite || l != -kInf;
  }
  SHOWO2_CHECK(any_finite, InvalidArgument, "TextSampler.sample: logits: every one of the ", vocab,
               " logits is -inf, so there is no token to pick");

  // 1. repetition penalty over the distinct history ids.
  scores_.assign(logits, logits + vocab);
  float* s = scores_.data();
  if (params_.repetition_penalty != 1.0f && !history.empty()) {
    distinct_.assign(history.begin(), history.end());
    std::sort(distinct_.begin(), distinct_.end());
    distinct_.erase(std::unique(distinct_.begin(), distinct_.end()), distinct_.end());
    for (int32_t id : distinct_) {
      if (id < 0 || id >= vocab)
        fail(ErrorCode::InvalidArgument, "TextSampler.sample: history: id ", id, " is outside the vocabulary [0, ",
             vocab, ")");
      const float l = s[id];
      s[id] = l > 0.0f ? l / params_.repetition_penalty : l * params_.repetition_penalty;
    }
  }

  // 1b. the user's logit bias, then this call's bans.
  if (!params_.logit_bias.empty() || !banned.empty()) {
    for (const auto& [id, bias] : params_.logit_bias) {
      if (id < 0 || id >= vocab)
        fail(ErrorCode::InvalidArgument, "TextSampler.sample: logit_bias: id ", id, " is outside the vocabulary [0, ",
             vocab, ")");
      s[id] += bias;
    }
    for (int32_t id : banned) {
      if (id < 0 || id >= vocab)
        fail(ErrorCode::InvalidArgument, "TextSampler.sample: banned: id ", id, " is outside the vocabulary [0, ",
             vocab, ")");
      s[id] = -kInf;
    }
    bool any = false;
    for (int64_t i = 0; i < vocab && !any; ++i) any = s[i] != -kInf;
    SHOWO2_CHECK(any, InvalidArgument, "TextSampler.sample: the logit bias and the banned tokens leave no token to pick");
  }

  // Greedy: the first maximum (lowest id among ties).
  if (params_.temperature == 0.0f) {
    int64_t best = 0;
    for (int64_t i = 1; i < vocab; ++i)
      if (s[i] > s[best]) best = i;
    return static_cast<int32_t>(best);
  }

  // 2. temperature, in F32 as transformers.
  for (int64_t i = 0; i < vocab; ++i) s[i] = s[i] / params_.temperature;

  // Candidates: every token that can still be picked (not -inf).
  kept_.clear();
  if (params_.top_k > 0 && params_.top_k < vocab) {
    // 3. top-k: threshold = the k-th largest score (nth_element on a plain copy of the scores: O(V), no indirection);
    // keep every token >= threshold.
    threshold_scratch_.assign(s, s + vocab);
    std::nth_element(threshold_scratch_.begin(), threshold_scratch_.begin() + (params_.top_k - 1),
                     threshold_scratch_.end(), std::greater<float>());
    const float threshold = threshold_scratch_[static_cast<size_t>(params_.top_k - 1)];
    for (int64_t i = 0; i < vocab; ++i)
      if (s[i] >= threshold && s[i] != -kInf) kept_.push_back(static_cast<int32_t>(i));
  } else {
    for (int64_t i = 0; i < vocab; ++i)
      if (s[i] != -kInf) kept_.push_back(static_cast<int32_t>(i));
  }

  // Unnormalised probabilities of the candidates, exp(l - l_max) in double, computed once per call (by id).
  float max_score = -kInf;
  for (int32_t id : kept_) max_score = std::max(max_score, s[id]);
  weights_.resize(static_cast<size_t>(vocab));
  double* w = weights_.data();
  double total = 0.0;
  for (int32_t id : kept_) {
    w[id] = std::exp(static_cast<double>(s[id]) - static_cast<double>(max_score));
    total += w[id];
  }
  const ByScoreDesc by_score{s};

  // 4. top-p over the candidates, on their renormalised softmax.
  if (params_.top_p < 1.0f && kept_.size() > 1) {
    const double target = static_cast<double>(params_.top_p) * total;
    const size_t n = kept_.size();
    size_t prefix = std::min<size_t>(n, 64);
    size_t cut = n;  // number of tokens kept (ranked first)
    while (true) {
      std::partial_sort(kept_.begin(), kept_.begin() + static_cast<std::ptrdiff_t>(prefix), kept_.end(), by_score);
      double mass = 0.0;  // mass of the tokens ranked above the current one
      size_t i = 0;
      for (; i < prefix && mass < target; ++i) mass += w[kept_[i]];
      if (mass >= target || prefix == n) {
        cut = std::max<size_t>(i, 1);
        break;
      }
      prefix = std::min(n, prefix * 4);
    }
    kept_.resize(cut);
    std::sort(kept_.begin(), kept_.end());
    total = 0.0;
    for (int32_t id : kept_) total += w[id];
  }

  // 5. the draw (text_sampler.h): ascending id order, running double sum against u * total.
  const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
  const double target = u * total;
  double running = 0.0;
  for (int32_t id : kept_) {
    running += w[id];
    if (running > target) return id;
  }
  return kept_.back();
}

}  // namespace showo2
