// Next-token selection from lm_head logits (spec §8.2: understanding decodes greedily; sampling is an extension).
//
// Semantics follow transformers' generate() with its logits processors, in its order:
//   1. repetition penalty (RepetitionPenaltyLogitsProcessor): for each distinct id already in the sequence,
//      logit > 0 ? logit / p : logit * p;
//   1b. logit bias (the user's `logit_bias`, then the caller's per-call bans, which set -inf): added after the
//      penalty, so a bias is an adjustment of the final score (as OpenAI's logit_bias); -inf bans a token;
//   2. temperature (TemperatureLogitsWarper): logit / T, in F32;
//   3. top-k (TopKLogitsWarper): keep every token whose logit is >= the k-th largest (ties at the boundary are kept,
//      as torch.topk's threshold comparison does);
//   4. top-p (TopPLogitsWarper): over the tokens left, keep the smallest set of most likely tokens whose probability
//      mass is >= top_p (a token is kept while the mass of the tokens ranked above it is < top_p; always at least one);
//   5. a draw from the softmax of the kept tokens' logits.
// temperature 0 means greedy (do_sample=False): argmax after the repetition penalty, ties to the lowest id; top-k and
// top-p are ignored, as transformers ignores them without sampling.
//
// The draw (exact, so a seed reproduces a sequence on every platform; it cannot match torch.multinomial):
//   * the generator is std::mt19937_64(seed), whose output sequence the C++ standard fixes; each sample() call
//     consumes exactly one 64-bit output r (greedy calls consume none);
//   * u = (r >> 11) * 2^-53, uniform in [0, 1);
//   * the kept tokens are visited in ascending id order with weights w_i = exp(double(l_i) - double(l_max)) (l the
//     F32 logits after steps 1-2, l_max the largest kept one); the pick is the first token whose running double sum
//     exceeds u * sum(w) (the last kept token if rounding leaves none).
//
// Non-finite logits: NaN anywhere, or +inf, is ERR_INVALID_ARGUMENT naming the index (a NaN has no defined order and
// +inf no defined probability, so guessing would hide a numerical bug upstream). -inf is allowed and means "never
// pick this token" (a common way to ban tokens), but if every logit is -inf there is nothing to pick: also
// ERR_INVALID_ARGUMENT.
#pragma once

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

namespace showo2 {

struct SamplingParams {
  float temperature = 0.0f;         // 0: greedy (argmax; ties -> lowest id). Must be >= 0 and finite.
  int64_t top_k = 0;                // 0: off. Must be >= 0.
  float top_p = 1.0f;               // (0, 1]; 1: off
  float repetition_penalty = 1.0f;  // > 0 and finite; 1: off. HF semantics (see above).
  uint64_t seed = 0;
  // (id, bias) pairs added to the scores (step 1b); a bias is finite or -inf (never pick). Ids are checked against
  // the vocabulary when sampling.
  std::vector<std::pair<int32_t, float>> logit_bias;
  void validate() const;            // ERR_INVALID_ARGUMENT naming the field ("temperature", "top_p", ...)
};

class TextSampler {
 public:
  explicit TextSampler(const SamplingParams& params);  // validates; seeds std::mt19937_64(seed)

  // Picks the next token from logits [vocab] F32 given the ids already in the sequence (for the repetition penalty;
  // an id outside [0, vocab) there is ERR_INVALID_ARGUMENT). Cost: O(vocab) plus, with top-k, O(k log k); with top-p
  // alone, a partial sort of only as many top tokens as it takes to reach the mass.
  // `banned`: ids that may not be picked on this call only (e.g. <|vision_start|> once an image budget is spent).
  // If the bias and the bans leave no token, ERR_INVALID_ARGUMENT.
  int32_t sample(const float* logits, int64_t vocab, const std::vector<int32_t>& history,
                 const std::vector<int32_t>& banned = {});

  const SamplingParams& params() const { return params_; }

 private:
  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<float> scores_;      // working copy of the logits (vocab)
  std::vector<float> threshold_scratch_;  // top-k: a copy of scores_ for nth_element
  std::vector<double> weights_;    // exp(score - max) by id, valid for the candidate ids
  std::vector<int32_t> kept_;      // candidate ids
  std::vector<int32_t> distinct_;  // distinct history ids
};

}  // namespace showo2
