// One conversation with the model: the token sequence so far, its LLM KV cache and the sampler (spec §8.2, §8.3).
//
// Callers append chunks of the sequence (a prompt with images, then one sampled token at a time) and read the next
// token. A chunk is described as the reference builds its embeddings (spec §4): token ids for every position, with
// placeholder ids where a TIME token or visual tokens go, whose embeddings are then overwritten; plus the chunk's
// bidirectional blocks. Positions are absolute, so a later turn of a chat simply appends to the cached sequence:
// earlier positions never attend to later ones, so a KV-cached decode is exactly the reference's full recomputation
// (spec §8.2).
//
// Not thread-safe; one call at a time (the binding serialises calls per model).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "omni_mask.h"
#include "qwen2.h"
#include "showo2.h"
#include "tensor.h"
#include "text_sampler.h"

namespace showo2 {

// Visual tokens to place at absolute positions [position, position + tokens.size(0)).
struct VisualInsert {
  int64_t position = 0;
  Tensor tokens;  // [n, hidden] F32 (Showo2Model::visual_tokens of one image or video, flattened)
};

// A TIME(t) token at an absolute position (spec §3.6; understanding uses t = 1.0).
struct TimeInsert {
  int64_t position = 0;
  float t = 1.0f;
};

struct SequenceChunk {
  std::vector<int32_t> ids;                  // one id per appended position (placeholders where inserts go)
  std::vector<TimeInsert> times;
  std::vector<VisualInsert> visuals;
  std::vector<BidirectionalBlock> blocks;    // absolute positions; blocks must lie inside the chunk
};
// The repetition penalty sees every appended id except the placeholders that inserts overwrite (they are not text).

class UnderstandingSession {
 public:
  explicit UnderstandingSession(Showo2Model& model);

  int64_t length() const { return cache_.length(); }
  // Context length of the model (max_position_embeddings of the LLM).
  int64_t context_length() const;

  // Appends a chunk, runs the LLM over it and keeps the logits of its last position for sample(). On any error
  // (including ERR_CANCELLED from `should_cancel`, polled between layers) the session is left exactly as before.
  // Errors: ERR_INVALID_ARGUMENT for an empty chunk, an insert or block outside the chunk, overlapping inserts, an
  // insert whose width is not the model's hidden size, or a sequence longer than the context.
  void append(const SequenceChunk& chunk, const std::function<bool()>& should_cancel = {});

  // Logits [V] of the last appended position (empty before the first append).
  const std::vector<float>& last_logits() const { return last_logits_; }

  // Starts a new sampling run (a new seed, temperature, ...). Until called, sampling is greedy.
  void set_sampling(const SamplingParams& params);
  // Draws the next token from last_logits(). ERR_INVALID_ARGUMENT before the first append.
  int32_t sample();

  // Forgets positions >= length (e.g. a turn the user discarded). ERR_INVALID_ARGUMENT if length > length().
  void truncate(int64_t length);

 private:
  Showo2Model* model_;
  Qwen2KvCache cache_;
  std::vector<int32_t> history_;             // text ids per position, -1 at inserted positions
  std::vector<float> last_logits_;
  std::unique_ptr<TextSampler> sampler_;
};

}  // namespace showo2
