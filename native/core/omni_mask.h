// Show-o2's omni-attention mask, described as data (spec §5.1, §5.3).
//
//   allowed(q, k) = (k <= q) OR (q and k lie in the same bidirectional block [offset, offset+length))
//
// Because every block contains its own query row, the keys a query may see always form a prefix [0, key_end(q)):
//   key_end(q) = block.offset + block.length   if q lies inside a block,
//                q + 1                          otherwise (plain causal).
// key_end is non-decreasing in q, so a kernel can classify a (query tile, key tile) pair as
//   skip    : k_begin >= key_end(q_first_row_end..)   (no query in the tile sees any key in it),
//   full    : k_end   <= key_end(q_first)             (every query sees every key),
//   partial : otherwise (only these pay for per-element masking).
// Non-causal attention (SigLIP, VAE) is the degenerate mask with key_end(q) = num_keys.
//
// Positions are absolute sequence positions. With a KV cache the queries are the rows
// [query_offset, query_offset + Lq) of the full sequence and the keys are [0, Lk).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "error.h"

namespace showo2 {

struct BidirectionalBlock {
  int64_t offset = 0;  // first position of the block (the time-token position in Show-o2 layouts)
  int64_t length = 0;  // number of positions, N_vis + 1 for an image block; 0 means "no block" and is ignored
};

class OmniMask {
 public:
  // Full (bidirectional) attention over all keys: the SigLIP and VAE attention.
  static OmniMask full() {
    OmniMask m;
    m.causal_ = false;
    return m;
  }
  // Causal attention with bidirectional blocks. `blocks_per_sample` has one entry per batch sample (or exactly one,
  // shared by all samples). Blocks inside one sample must not overlap; they are sorted here.
  static OmniMask omni(std::vector<std::vector<BidirectionalBlock>> blocks_per_sample, int64_t query_offset = 0) {
    OmniMask m;
    m.causal_ = true;
    m.query_offset_ = query_offset;
    for (auto& blocks : blocks_per_sample) {
      std::vector<BidirectionalBlock> kept;
      for (const auto& b : blocks) {
        SHOWO2_CHECK(b.offset >= 0 && b.length >= 0, InvalidArgument, "omni mask: block (offset ", b.offset,
                     ", length ", b.length, ") must be non-negative");
        if (b.length > 0) kept.push_back(b);
      }
      std::sort(kept.begin(), kept.end(),
                [](const BidirectionalBlock& a, const BidirectionalBlock& b) { return a.offset < b.offset; });
      for (size_t i = 1; i < kept.size(); ++i)
        SHOWO2_CHECK(kept[i].offset >= kept[i - 1].offset + kept[i - 1].length, InvalidArgument,
                     "omni mask: blocks at offsets ", kept[i - 1].offset, " and ", kept[i].offset, " overlap");
      m.blocks_.push_back(std::move(kept));
    }
    return m;
  }
  // Plain causal attention (no blocks).
  static OmniMask causal(int64_t query_offset = 0) { return omni({{}}, query_offset); }

  bool is_causal() const { return causal_; }
  int64_t query_offset() const { return query_offset_; }
  // Number of per-sample block lists (1 = shared by every sample).
  size_t num_samples() const { return blocks_.size(); }
  const std::vector<BidirectionalBlock>& blocks(int64_t sample) const {
    return blocks_.size() == 1 ? blocks_[0] : blocks_.at(static_cast<size_t>(sample));
  }

  // Checks the mask fits a batch of `batch` samples; throws ERR_INVALID_ARGUMENT otherwise.
  void validate(int64_t batch) const {
    if (causal_)
      SHOWO2_CHECK(blocks_.size() == 1 || static_cast<int64_t>(blocks_.size()) == batch, InvalidArgument,
                   "omni mask: has block lists for ", blocks_.size(), " samples but the batch has ", batch);
  }

  // One past the last key that query row `q_row` (0-based, relative to query_offset) may attend to, clamped to
  // num_keys. See the header comment for why this single number describes the whole row.
  int64_t key_end(int64_t sample, int64_t q_row, int64_t num_keys) const {
    if (!causal_) return num_keys;
    int64_t q = q_row + query_offset_;
    int64_t end = q + 1;
    for (const auto& b : blocks(sample)) {
      if (q < b.offset) break;
      if (q < b.offset + b.length) { end = b.offset + b.length; break; }
    }
    return std::min(end, num_keys);
  }

  bool allowed(int64_t sample, int64_t q_row, int64_t k, int64_t num_keys) const {
    return k < key_end(sample, q_row, num_keys);
  }

 private:
  bool causal_ = true;
  int64_t query_offset_ = 0;
  std::vector<std::vector<BidirectionalBlock>> blocks_;
};

}  // namespace showo2
