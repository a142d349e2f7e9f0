#include "kv_cache.h"

#include <algorithm>
#include <utility>

#include "error.h"

namespace showo2 {

KvCache::KvCache(int64_t num_layers, int64_t batch, int64_t num_key_value_heads, int64_t head_dim,
                 int64_t max_positions)
    : batch_(batch), num_key_value_heads_(num_key_value_heads), head_dim_(head_dim), max_positions_(max_positions) {
  SHOWO2_CHECK(batch > 0, InvalidArgument, "KvCache: batch: expected a positive integer but got ", batch);
  SHOWO2_CHECK(num_layers > 0 && num_key_value_heads > 0 && head_dim > 0 && max_positions > 0, InvalidArgument,
               "KvCache: expected positive layers, heads, head_dim and context but got ", num_layers, ", ",
               num_key_value_heads, ", ", head_dim, ", ", max_positions);
  keys_.resize(static_cast<size_t>(num_layers));
  values_.resize(static_cast<size_t>(num_layers));
}

void KvCache::truncate(int64_t length) {
  SHOWO2_CHECK(length >= 0 && length <= length_, InvalidArgument, "KvCache.truncate: length: expected 0..", length_,
               " (the cached positions) but got ", length);
  length_ = length;
}

void KvCache::commit(int64_t length) {
  SHOWO2_CHECK(length >= 0 && length <= capacity_, Internal, "KvCache.commit: length ", length,
               " exceeds the reserved capacity ", capacity_);
  length_ = length;
}

void KvCache::reserve(int64_t positions, Backend& backend) {
  if (positions <= capacity_) return;
  SHOWO2_CHECK(positions <= max_positions_, InvalidArgument, "KvCache: ", positions,
               " positions are longer than the model's context of ", max_positions_, " positions");
  const int64_t capacity = std::min(max_positions_, std::max({positions, 2 * capacity_, int64_t{256}}));
  // Allocate every new buffer before replacing any, so an out-of-memory error leaves the cache untouched.
  std::vector<Tensor> keys(keys_.size()), values(values_.size());
  for (size_t l = 0; l < keys_.size(); ++l) {
    keys[l] = backend.empty({batch_, capacity, num_key_value_heads_, head_dim_}, DType::F32);
    values[l] = backend.empty({batch_, capacity, num_key_value_heads_, head_dim_}, DType::F32);
  }
  if (length_ > 0) {
    for (size_t l = 0; l < keys_.size(); ++l) {
      Tensor k_dst = keys[l].slice(1, 0, length_), v_dst = values[l].slice(1, 0, length_);
      backend.copy(keys_[l].slice(1, 0, length_), k_dst);
      backend.copy(values_[l].slice(1, 0, length_), v_dst);
    }
  }
  keys_ = std::move(keys);
  values_ = std::move(values);
  capacity_ = capacity;
}

KvCache KvCache::replicate(int64_t sample, int64_t batch, int64_t extra, Backend& backend) const {
  SHOWO2_CHECK(sample >= 0 && sample < batch_, InvalidArgument, "KvCache.replicate: sample ", sample,
               " outside the cache's batch of ", batch_);
  KvCache out(num_layers(), batch, num_key_value_heads_, head_dim_, max_positions_);
  out.reserve(std::min(max_positions_, std::max<int64_t>(length_ + extra, 1)), backend);
  if (length_ > 0) {
    for (size_t l = 0; l < keys_.size(); ++l) {
      const Tensor k_src = keys_[l].slice(0, sample, sample + 1).slice(1, 0, length_);  // [1, P, Hkv, D]
      const Tensor v_src = values_[l].slice(0, sample, sample + 1).slice(1, 0, length_);
      for (int64_t b = 0; b < batch; ++b) {
        Tensor k_dst = out.keys_[l].slice(0, b, b + 1).slice(1, 0, length_);
        Tensor v_dst = out.values_[l].slice(0, b, b + 1).slice(1, 0, length_);
        backend.copy(k_src, k_dst);
        backend.copy(v_src, v_dst);
      }
    }
  }
  out.length_ = length_;
  return out;
}

void check_cache_rows(const std::vector<CacheRows>& groups, int64_t rows, int64_t new_positions, int64_t num_layers,
                      int64_t num_key_value_heads, int64_t head_dim, const char* what) {
  SHOWO2_CHECK(!groups.empty(), InvalidArgument, what, ": no cache groups given");
  int64_t next = 0;
  for (const CacheRows& g : groups) {
    SHOWO2_CHECK(g.cache != nullptr, InvalidArgument, what, ": a cache group has no cache");
    SHOWO2_CHECK(g.row_begin == next && g.row_end > g.row_begin, InvalidArgument, what, ": cache groups must tile ",
                 "the rows in order; got rows [", g.row_begin, ", ", g.row_end, ") after row ", next);
    SHOWO2_CHECK(g.cache->batch() == g.row_end - g.row_begin, ShapeMismatch, what, ": rows [", g.row_begin, ", ",
                 g.row_end, ") use a cache made for batch ", g.cache->batch());
    SHOWO2_CHECK(g.cache->num_layers() == num_layers && g.cache->num_key_value_heads() == num_key_value_heads &&
                     g.cache->head_dim() == head_dim,
                 InvalidArgument, what, ": the cache was made for another model config");
    const int64_t past = g.cache->length();
    if (past + new_positions > g.cache->max_positions())
      fail(ErrorCode::InvalidArgument, what, ": ", past, " cached + ", new_positions, " new positions = ",
           past + new_positions, " positions are longer than the model's context of ", g.cache->max_positions(),
           " positions");
    next = g.row_end;
  }
  SHOWO2_CHECK(next == rows, ShapeMismatch, what, ": cache groups cover ", next, " rows but the input has ", rows);
}

}  // namespace showo2
