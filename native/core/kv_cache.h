// Per-layer key/value cache shared by the two Show-o2 transformers that attend causally over the sequence: the Qwen2.5
// LLM (spec §2.1, KV-cached decoding §8.2) and the flow head (spec §6.2, prefix caching across ODE steps §12).
//
// Each layer holds K and V of the positions seen so far, [batch, capacity, num_key_value_heads, head_dim] F32, of which
// the first length() positions are valid. K is stored after RoPE (the rotation depends only on the key's own position,
// so cached keys never change). Model code appends by writing slots [length, length + L) of every layer and then
// committing the new length, so an error half-way leaves the cache as it was.
//
// Batched forwards over caches of different lengths (the cond and uncond branches of CFG have prefixes of different
// lengths, spec §12) describe their rows as CacheRows groups: the rows of one group share a cache (its batch is the
// group's row count), hence one RoPE offset and one query offset of the omni mask.
#pragma once

#include <cstdint>
#include <vector>

#include "backend.h"
#include "omni_mask.h"
#include "tensor.h"

namespace showo2 {

class KvCache {
 public:
  // `max_positions`: the model's context; reserve() refuses to grow past it.
  KvCache(int64_t num_layers, int64_t batch, int64_t num_key_value_heads, int64_t head_dim, int64_t max_positions);

  int64_t length() const { return length_; }  // cached positions
  int64_t batch() const { return batch_; }
  int64_t capacity() const { return capacity_; }
  int64_t num_layers() const { return static_cast<int64_t>(keys_.size()); }
  int64_t num_key_value_heads() const { return num_key_value_heads_; }
  int64_t head_dim() const { return head_dim_; }
  int64_t max_positions() const { return max_positions_; }
  // Forget positions >= length (ERR_INVALID_ARGUMENT if length > length() or negative). Keeps the memory.
  void truncate(int64_t length);
  void clear() { length_ = 0; }

  // Makes room for `positions` positions (no-op when capacity() already suffices). Capacity grows geometrically
  // (x2, at least 256) so appending one token at a time costs amortised O(1) copies, but never beyond
  // max_positions. Existing entries are moved with backend.copy. ERR_INVALID_ARGUMENT past the context.
  void reserve(int64_t positions, Backend& backend);
  // The whole buffers of one layer, [batch, capacity, Hkv, head_dim] (slice dim 1 to the valid or new positions).
  // Writing slots >= length() through them is how a model appends; commit() then publishes the new length.
  const Tensor& keys(int64_t layer) const { return keys_.at(static_cast<size_t>(layer)); }
  const Tensor& values(int64_t layer) const { return values_.at(static_cast<size_t>(layer)); }
  // Sets length() to `length` after the slots up to it were written (ERR_INTERNAL beyond the capacity).
  void commit(int64_t length);

  // A cache of `batch` samples each holding a copy of sample `sample` of this cache's valid positions (so one prompt
  // prefix computed once can seed several rows), with capacity for `extra` more positions.
  KvCache replicate(int64_t sample, int64_t batch, int64_t extra, Backend& backend) const;

 private:
  int64_t batch_;
  int64_t num_key_value_heads_;
  int64_t head_dim_;
  int64_t max_positions_;
  int64_t length_ = 0;
  int64_t capacity_ = 0;
  std::vector<Tensor> keys_;    // per layer [batch, capacity, Hkv, head_dim]
  std::vector<Tensor> values_;  // per layer [batch, capacity, Hkv, head_dim]
};

// Rows [row_begin, row_end) of a batched forward whose K/V live in `cache` (cache->batch() == row_end - row_begin).
// Their new positions start at cache->length() (RoPE offset and omni-mask query offset); `blocks` are the rows'
// bidirectional blocks in absolute positions (one list per row, or one shared list; empty = plain causal).
struct CacheRows {
  int64_t row_begin = 0;
  int64_t row_end = 0;
  KvCache* cache = nullptr;
  std::vector<std::vector<BidirectionalBlock>> blocks;
};

// Checks that `groups` tile rows [0, rows) in order, each with a cache of the right batch and layout, and that every
// group's new positions fit its cache's context; `what` names the caller in errors.
void check_cache_rows(const std::vector<CacheRows>& groups, int64_t rows, int64_t new_positions, int64_t num_layers,
                      int64_t num_key_value_heads, int64_t head_dim, const char* what);

}  // namespace showo2
