#include "understanding_session.h"

#include <algorithm>

#include "error.h"

namespace showo2 {

UnderstandingSession::UnderstandingSession(Showo2Model& model, bool flow_head_context)
    : model_(&model), cache_(model.config().llm, 1), sampler_(std::make_unique<TextSampler>(SamplingParams{})) {
  if (flow_head_context) {
    head_ = std::make_unique<FlowHead>(model.flow_head_weights(), model.backend());
    head_cache_ = std::make_unique<KvCache>(head_->make_cache(1));
  }
}

UnderstandingSession::~UnderstandingSession() = default;

int64_t UnderstandingSession::context_length() const { return model_->config().llm.max_position_embeddings; }

void UnderstandingSession::append(const SequenceChunk& chunk, const std::function<bool()>& should_cancel) {
  const int64_t start = cache_.length();
  const int64_t L = static_cast<int64_t>(chunk.ids.size());
  const int64_t hidden = model_->config().hidden_size;
  if (L == 0) fail(ErrorCode::InvalidArgument, "UnderstandingSession.append: the chunk is empty");
  if (start + L > context_length())
    fail(ErrorCode::InvalidArgument, "UnderstandingSession.append: the sequence would be ", start + L,
         " positions long (", start, " already + ", L, " new), longer than the model's context of ",
         context_length(), " positions");

  // Which chunk positions are overwritten, to reject overlaps and keep placeholders out of the penalty history.
  std::vector<char> inserted(static_cast<size_t>(L), 0);
  auto claim = [&](int64_t position, int64_t count, const char* what) {
    if (position < start || position + count > start + L)
      fail(ErrorCode::InvalidArgument, "UnderstandingSession.append: ", what, " at positions [", position, ", ",
           position + count, ") lies outside the chunk [", start, ", ", start + L, ")");
    for (int64_t i = position - start; i < position - start + count; ++i) {
      if (inserted[static_cast<size_t>(i)])
        fail(ErrorCode::InvalidArgument, "UnderstandingSession.append: ", what, " overlaps another insert at position ",
             start + i);
      inserted[static_cast<size_t>(i)] = 1;
    }
  };
  for (const auto& t : chunk.times) claim(t.position, 1, "a time token");
  for (const auto& v : chunk.visuals) {
    if (v.tokens.dim() != 2 || v.tokens.size(1) != hidden)
      fail(ErrorCode::ShapeMismatch, "UnderstandingSession.append: visual tokens must be [n, ", hidden, "] but got ",
           v.tokens.shape_string());
    claim(v.position, v.tokens.size(0), "visual tokens");
  }
  for (const auto& b : chunk.blocks)
    if (b.length > 0 && (b.offset < start || b.offset + b.length > start + L))
      fail(ErrorCode::InvalidArgument, "UnderstandingSession.append: bidirectional block [", b.offset, ", ",
           b.offset + b.length, ") lies outside the chunk [", start, ", ", start + L, ")");

  Backend& backend = model_->backend();
  Tensor ids = Tensor::empty({1, L}, DType::I32);
  std::copy(chunk.ids.begin(), chunk.ids.end(), ids.mutable_data<int32_t>());
  Tensor embeds = model_->llm().embed_tokens(ids);                       // [1, L, hidden]
  Tensor rows = embeds.reshape({L, hidden});
  if (!chunk.times.empty()) {
    std::vector<float> ts;
    for (const auto& t : chunk.times) ts.push_back(t.t);
    Tensor tokens = model_->time_tokens(ts);                              // [n_times, hidden]
    for (size_t i = 0; i < chunk.times.size(); ++i) {
      const int64_t row = chunk.times[i].position - start;
      Tensor dst = rows.slice(0, row, row + 1);
      backend.copy(tokens.slice(0, static_cast<int64_t>(i), static_cast<int64_t>(i) + 1), dst);
    }
  }
  for (const auto& v : chunk.visuals) {
    const int64_t row = v.position - start;
    Tensor dst = rows.slice(0, row, row + v.tokens.size(0));
    backend.copy(backend.to_device(v.tokens), dst);  // the caller's tokens may be host tensors
  }

  Tensor hidden_states = model_->llm().forward(embeds, {chunk.blocks}, cache_, should_cancel);  // [1, L, hidden]
  std::vector<float> logits;
  try {
    Tensor last = hidden_states.reshape({L, hidden}).slice(0, L - 1, L);  // [1, hidden] (a contiguous row)
    Tensor out = backend.to_host(model_->llm().lm_head(last));           // [1, V], read on the host by the sampler
    const float* p = out.data<float>();
    logits.assign(p, p + out.numel());
  } catch (...) {
    cache_.truncate(start);  // keep the session as it was
    throw;
  }
  last_logits_ = std::move(logits);
  for (int64_t i = 0; i < L; ++i) history_.push_back(inserted[static_cast<size_t>(i)] ? -1 : chunk.ids[static_cast<size_t>(i)]);
  ids_.insert(ids_.end(), chunk.ids.begin(), chunk.ids.end());
  if (head_) pending_.push_back(PendingStates{start, hidden_states.reshape({L, hidden}), chunk.blocks, chunk.times});
}

void UnderstandingSession::set_sampling(const SamplingParams& params) {
  params.validate();
  sampler_ = std::make_unique<TextSampler>(params);
}

int32_t UnderstandingSession::sample(const std::vector<int32_t>& banned) {
  if (last_logits_.empty())
    fail(ErrorCode::InvalidArgument, "UnderstandingSession.sample: nothing has been appended yet");
  std::vector<int32_t> text_ids;
  text_ids.reserve(history_.size());
  for (int32_t id : history_)
    if (id >= 0) text_ids.push_back(id);
  return sampler_->sample(last_logits_.data(), static_cast<int64_t>(last_logits_.size()), text_ids, banned);
}

void UnderstandingSession::truncate(int64_t length) {
  if (length < 0 || length > cache_.length())
    fail(ErrorCode::InvalidArgument, "UnderstandingSession.truncate: expected a length in [0, ", cache_.length(),
         "] but got ", length);
  if (length == cache_.length()) return;
  cache_.truncate(length);
  history_.resize(static_cast<size_t>(length));
  ids_.resize(static_cast<size_t>(length));
  last_logits_.clear();  // the logits belonged to the dropped tail; the next append recomputes them
  if (!head_) return;
  if (head_cache_->length() > length) head_cache_->truncate(length);
  while (!pending_.empty() && pending_.back().start >= length) pending_.pop_back();
  if (!pending_.empty()) {
    PendingStates& p = pending_.back();
    if (p.start + p.states.size(0) > length) {  // keep the part before the cut
      p.states = p.states.slice(0, 0, length - p.start);
      std::vector<BidirectionalBlock> blocks;
      for (BidirectionalBlock b : p.blocks) {
        if (b.offset >= length) continue;
        b.length = std::min(b.length, length - b.offset);
        blocks.push_back(b);
      }
      p.blocks = std::move(blocks);
      std::vector<TimeInsert> times;
      for (const TimeInsert& t : p.times)
        if (t.position < length) times.push_back(t);
      p.times = std::move(times);
    }
  }
}

// ---- mixed modality: the flow head over the conversation ---------------------------------------------------------

void UnderstandingSession::sync_flow_head(const std::function<bool()>& should_cancel) {
  const int64_t hidden = model_->config().hidden_size;
  while (!pending_.empty()) {
    PendingStates& p = pending_.front();
    const int64_t end = p.start + p.states.size(0);
    std::vector<BidirectionalBlock> blocks = p.blocks;
    std::sort(blocks.begin(), blocks.end(),
              [](const BidirectionalBlock& a, const BidirectionalBlock& b) { return a.offset < b.offset; });
    // Segments end after each modulated block (one adaLN span per head call), so a resumed or split run is exact:
    // the head is causal across segments and no block straddles a segment boundary.
    for (int64_t done = head_cache_->length(); done < end;) {
      int64_t seg_end = end;
      std::vector<ModulatedSpan> spans;
      std::vector<float> t;
      for (const BidirectionalBlock& b : blocks) {
        if (b.length <= 0 || b.offset < done) continue;
        auto time = std::find_if(p.times.begin(), p.times.end(),
                                 [&](const TimeInsert& ti) { return ti.position == b.offset; });
        if (time == p.times.end()) continue;  // no TIME at the block's start: identity modulation
        seg_end = b.offset + b.length;
        spans.push_back(ModulatedSpan{b.offset - done, seg_end - done});
        t.push_back(time->t);
        break;
      }
      std::vector<BidirectionalBlock> seg_blocks;
      for (const BidirectionalBlock& b : blocks)
        if (b.length > 0 && b.offset >= done && b.offset < seg_end) {
          SHOWO2_CHECK(b.offset + b.length <= seg_end, Internal, "UnderstandingSession: block [", b.offset, ", ",
                       b.offset + b.length, ") straddles a flow-head segment ending at ", seg_end);
          seg_blocks.push_back(b);
        }
      const int64_t n = seg_end - done;
      Tensor states = p.states.slice(0, done - p.start, seg_end - p.start).contiguous().reshape({1, n, hidden});
      const Tensor c = t.empty() ? Tensor() : model_->time_condition(t);  // [1, head hidden]
      head_->forward(states, c, spans, {CacheRows{0, 1, head_cache_.get(), {seg_blocks}}}, should_cancel);
      done = seg_end;
    }
    pending_.erase(pending_.begin());
  }
}

CachedPrefix UnderstandingSession::generation_prefix(const std::function<bool()>& should_cancel) {
  if (!head_)
    fail(ErrorCode::InvalidArgument, "UnderstandingSession.generation_prefix: this session was created without a ",
         "flow-head context (needed to draw images inside a conversation)");
  sync_flow_head(should_cancel);
  SHOWO2_CHECK(head_cache_->length() == cache_.length(), Internal, "UnderstandingSession: the flow head holds ",
               head_cache_->length(), " positions but the LLM ", cache_.length());
  return CachedPrefix{&cache_, head_cache_.get()};
}

}  // namespace showo2
