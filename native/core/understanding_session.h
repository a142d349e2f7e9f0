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

#include "flow_head.h"
#include "generation.h"
#include "kv_cache.h"
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

// Mixed-modality generation (spec §8.4) draws images in the middle of a conversation: the new image's block attends to
// every earlier position in the LLM AND in the flow head, which runs over the whole sequence (spec §11.6). A session
// created with `flow_head_context` keeps the final-normed LLM states of the positions it appends until
// generation_prefix() runs the flow head over them, so the head's K/V of the history are computed once, incrementally,
// like the LLM's. Inside the head, a block whose first position holds a TIME(t) insert takes the adaLN modulation of
// time_embed(t) (an earlier image, t = 1.0 in the reference's t2i_generate); every other position takes identity
// modulation (spec §6.2).
class UnderstandingSession {
 public:
  explicit UnderstandingSession(Showo2Model& model, bool flow_head_context = false);
  ~UnderstandingSession();

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
  // Draws the next token from last_logits(), never one of `banned` (this call only). ERR_INVALID_ARGUMENT before
  // the first append.
  int32_t sample(const std::vector<int32_t>& banned = {});

  // Forgets positions >= length (e.g. a turn the user discarded). ERR_INVALID_ARGUMENT if length > length().
  void truncate(int64_t length);

  // Every id appended so far, placeholders included (length() of them).
  const std::vector<int32_t>& ids() const { return ids_; }
  bool has_flow_head_context() const { return head_ != nullptr; }

  // The K/V of every position so far in the LLM and the flow head, as the cond prefix of an image generated in place
  // (GenerationSequence::cached_prefix). Runs the flow head over the positions appended since the last call first
  // (polling should_cancel before each of its blocks; on cancel the work done so far is kept and the next call
  // resumes). The caches are the session's own: valid until the next append or truncate, and generation leaves them
  // as it found them. ERR_INVALID_ARGUMENT for a session without flow_head_context.
  CachedPrefix generation_prefix(const std::function<bool()>& should_cancel = {});

 private:
  // Appended positions whose flow-head K/V are not computed yet (flow_head_context only).
  struct PendingStates {
    int64_t start = 0;                       // absolute position of states' first row
    Tensor states;                           // [n, hidden] final-normed LLM states (backend memory)
    std::vector<BidirectionalBlock> blocks;  // the chunk's blocks (absolute)
    std::vector<TimeInsert> times;           // the chunk's TIME inserts (absolute)
  };
  void sync_flow_head(const std::function<bool()>& should_cancel);

  Showo2Model* model_;
  Qwen2KvCache cache_;
  std::vector<int32_t> ids_;                 // every id per position
  std::vector<int32_t> history_;             // text ids per position, -1 at inserted positions
  std::vector<float> last_logits_;
  std::unique_ptr<TextSampler> sampler_;
  std::unique_ptr<FlowHead> head_;           // flow_head_context only
  std::unique_ptr<KvCache> head_cache_;
  std::vector<PendingStates> pending_;
};

}  // namespace showo2
