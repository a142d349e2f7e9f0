// Row iteration shared by the last-dimension kernel families (norm, activation, elementwise, rope).
//
// Those kernels see a tensor [..., C] whose last dimension is contiguous as rows of C floats. The leading dimensions
// may have any strides (slices and transposes of activations are common), so a row's start is found by unravelling
// its index. Rows are numbered row-major over the leading dimensions; suffix broadcasting (elementwise.cpp) relies on
// that order.
//
// Not for *_avx2.cpp files: an inline function compiled there with AVX2 flags could become the copy the linker keeps
// for every caller (see attention_internal.h).
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>

#include "../tensor.h"
#include "thread_pool.h"

namespace showo2::cpu {

// Element offsets of the rows of a tensor, treating a 0-D tensor as one row of one element.
class RowLayout {
 public:
  explicit RowLayout(const Tensor& t) {
    int64_t rank = t.dim();
    row_length_ = rank == 0 ? 1 : t.size(-1);
    for (int64_t d = 0; d + 1 < rank; ++d) {
      sizes_[num_leading_] = t.size(d);
      strides_[num_leading_] = t.stride(d);
      rows_ *= t.size(d);
      ++num_leading_;
    }
    // Fold leading dims that are laid out back to back, so the common contiguous case is a single multiply.
    int64_t folded = 0;
    for (int64_t d = 0; d < num_leading_; ++d) {
      if (folded > 0 && strides_[folded - 1] == sizes_[d] * strides_[d]) {
        sizes_[folded - 1] *= sizes_[d];
        strides_[folded - 1] = strides_[d];
      } else {
        sizes_[folded] = sizes_[d];
        strides_[folded] = strides_[d];
        ++folded;
      }
    }
    num_leading_ = folded;
  }

  int64_t rows() const { return rows_; }
  int64_t row_length() const { return row_length_; }

  int64_t offset(int64_t row) const {
    int64_t off = 0;
    for (int64_t d = num_leading_ - 1; d >= 0; --d) {
      off += (row % sizes_[d]) * strides_[d];
      row /= sizes_[d];
    }
    return off;
  }

 private:
  static constexpr int kMaxRank = 16;  // the argument checks (backend_checks.cpp) reject deeper tensors
  int64_t sizes_[kMaxRank] = {};
  int64_t strides_[kMaxRank] = {};
  int64_t num_leading_ = 0;
  int64_t rows_ = 1;
  int64_t row_length_ = 1;
};

// Runs fn(begin, end) over row ranges, on the pool when there is enough work to be worth waking it: a chunk should
// carry at least ~16K elements, or the hand-off costs more than the arithmetic.
inline void parallel_rows(ThreadPool* pool, int64_t rows, int64_t row_length,
                          const std::function<void(int64_t, int64_t)>& fn) {
  if (rows <= 0) return;
  int64_t grain = std::max<int64_t>(1, (int64_t{1} << 14) / std::max<int64_t>(row_length, 1));
  if (pool == nullptr || rows <= grain) {
    fn(0, rows);
    return;
  }
  pool->parallel_for(rows, grain, fn);
}

}  // namespace showo2::cpu
