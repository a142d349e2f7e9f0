// CPU attention: blockwise scaled dot-product attention with grouped KV heads and the omni mask.
//
//   out[b, i, h, :] = sum_j softmax_j(scale * q[b, i, h, :] · k[b, j, g, :] | j < key_end(b, i)) * v[b, j, g, :]
//   where g = h / (Hq / Hkv) and key_end is the omni mask's prefix length (omni_mask.h, spec §5.1).
//
// Shapes: q [B, Lq, Hq, D], k [B, Lk, Hkv, D], v [B, Lk, Hkv, Dv], out [B, Lq, Hq, Dv]. F32, last dims contiguous,
// other strides arbitrary (q/k/v are usually views into one fused qkv projection). Attention shapes: spec §12.
// Precision: F32 in and out, F32 accumulation; exp is evaluated as exp2 of log2(e)-prescaled scores.
//
// Algorithm (FlashAttention-2 on a CPU): each (batch, head, tile of kBlockQ query rows) is one task. A task walks the
// key tiles of kBlockK keys its rows may see, keeping a running max and sum per row and rescaling its output
// accumulator, so the Lq x Lk score matrix never exists (only one kBlockQ x kBlockK tile of it at a time). Key tiles
// no row sees are skipped and only tiles that straddle a row's mask boundary are masked (plan_key_tiles). Each thread
// keeps the current kv head's K and V packed, so the query tiles and GQA query heads it runs next reuse them.
//
// Variants, slow to fast (bench/native/attention_bench.cpp --kernel portable|avx2 runs either):
//   attention_tile_portable  plain loops over the same tiles (this file); any CPU.
//   attention_tile_avx2      register-blocked AVX2/FMA micro-kernels (attention_avx2.cpp); used where the CPU has them.
// The test (test/native/attention_test.cpp) checks both against a materialised double-precision reference.
//
// Bench: build/attention_bench [--threads N] [--json]; PyTorch baseline: bench/torch/attention_baseline.py.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "../backend_checks.h"
#include "attention_internal.h"
#include "cpu_features.h"
#include "ops.h"
#include "thread_pool.h"

namespace showo2::cpu {

namespace {

using Traits = AttentionTileTraits;

// Everything the planner needs about one attention call, after validation.
struct AttentionParams {
  const float* q = nullptr;    // q[0, 0, 0, 0]
  const float* k = nullptr;    // k[0, 0, 0, 0]
  const float* v = nullptr;    // v[0, 0, 0, 0]
  float* out = nullptr;        // out[0, 0, 0, 0]
  int64_t q_batch_stride = 0, q_row_stride = 0, q_head_stride = 0;        // elements
  int64_t k_batch_stride = 0, k_row_stride = 0, k_head_stride = 0;        // elements
  int64_t v_batch_stride = 0, v_row_stride = 0, v_head_stride = 0;        // elements
  int64_t out_batch_stride = 0, out_row_stride = 0, out_head_stride = 0;  // elements
  int64_t batch = 0;           // B
  int64_t num_queries = 0;     // Lq
  int64_t num_keys = 0;        // Lk
  int64_t num_heads = 0;       // Hq
  int64_t num_kv_heads = 0;    // Hkv (Hq % Hkv == 0)
  int64_t head_dim = 0;        // D
  int64_t value_dim = 0;       // Dv
  float scale = 1.0f;          // applied to q·k
  const OmniMask* mask = nullptr;
};

AttentionParams validate(const Tensor& q, const Tensor& k, const Tensor& v, const OmniMask& mask, float scale,
                         Tensor& out) {
  const AttentionShape s = check_attention_args(q, k, v, mask, scale, out);
  AttentionParams p;
  p.batch = s.B;
  p.num_queries = s.Lq;
  p.num_keys = s.Lk;
  p.num_heads = s.Hq;
  p.num_kv_heads = s.Hkv;
  p.head_dim = s.D;
  p.value_dim = s.Dv;
  p.scale = scale;
  p.mask = &mask;
  if (q.numel() == 0 || out.numel() == 0) return p;  // nothing to read or write; the pointers stay null
  p.q = q.data<float>();
  p.out = out.mutable_data<float>();
  p.q_batch_stride = q.stride(0), p.q_row_stride = q.stride(1), p.q_head_stride = q.stride(2);
  p.out_batch_stride = out.stride(0), p.out_row_stride = out.stride(1), p.out_head_stride = out.stride(2);
  if (k.numel() > 0) {
    p.k = k.data<float>();
    p.k_batch_stride = k.stride(0), p.k_row_stride = k.stride(1), p.k_head_stride = k.stride(2);
  }
  if (v.numel() > 0) {
    p.v = v.data<float>();
    p.v_batch_stride = v.stride(0), p.v_row_stride = v.stride(1), p.v_head_stride = v.stride(2);
  }
  return p;
}

// Lists the key tiles a query tile must visit, given each row's key_end, and returns how many.
//
// Why this is enough to skip work: every row sees a prefix of the keys, [0, key_end[r]). So the tile needs keys only
// up to max(key_end) (later key tiles are skipped outright), and a key tile lying entirely below min(key_end) is seen
// in full by every row (no masking). Only the tiles in between are partial and pay for per-row masking. With the omni
// mask key_end grows with the row, so min/max are the first/last rows; taking them over all rows keeps the plan right
// for any prefix mask. For causal attention this leaves about one partial tile per query tile, on the diagonal.
int64_t plan_key_tiles(const int64_t* key_end, int64_t rows, AttentionKeyTile* tiles) {
  int64_t min_end = key_end[0], max_end = key_end[0];
  for (int64_t r = 1; r < rows; ++r) {
    min_end = std::min(min_end, key_end[r]);
    max_end = std::max(max_end, key_end[r]);
  }
  int64_t n = 0;
  for (int64_t begin = 0; begin < max_end; begin += Traits::kBlockK) {
    AttentionKeyTile& t = tiles[n++];
    t.begin = begin;
    t.width = std::min(Traits::kBlockK, max_end - begin);
    t.needs_mask = begin + t.width > min_end;
  }
  return n;
}

void run_tiles(const AttentionParams& p, ThreadPool* pool, AttentionKernel kernel) {
  if (p.batch == 0 || p.num_queries == 0 || p.num_heads == 0 || p.value_dim == 0) return;
  void (*tile_kernel)(const AttentionTile&) = attention_tile_portable;
#if defined(SHOWO2_HAVE_AVX2_KERNELS)
  if (kernel == AttentionKernel::Avx2) tile_kernel = attention_tile_avx2;
#endif
  const int64_t num_q_tiles = (p.num_queries + Traits::kBlockQ - 1) / Traits::kBlockQ;
  const int64_t num_tasks = p.batch * p.num_heads * num_q_tiles;
  const int64_t group = p.num_heads / p.num_kv_heads;  // query heads per kv head
  const AttentionScratchLayout layout = attention_scratch_layout(p.head_dim, p.value_dim);
  const int64_t max_key_tiles = (p.num_keys + Traits::kBlockK - 1) / Traits::kBlockK;
  const int64_t packed_k_floats = max_key_tiles * Traits::kBlockK * p.head_dim;
  const int64_t packed_v_floats = max_key_tiles * Traits::kBlockK * layout.padded_value_dim;
  const bool cache_head = (packed_k_floats + packed_v_floats) * 4 <= Traits::kMaxPackedHeadBytes;

  // Tasks are numbered (batch, head, query tile) with the query tile fastest, so a thread's contiguous chunk runs
  // every query tile of a head, then the next head of the same GQA group, all on one packed kv head. Chunks span
  // whole heads, so causal tiles of unequal cost even out between threads.
  auto run_chunk = [&](int64_t task_begin, int64_t task_end) {
    // Uninitialised on purpose: kernels write before they read, and clearing a few MB per chunk would cost a
    // decoding step (Lq = 1) more than its arithmetic. Storage::allocate aligns to 64 bytes.
    const int64_t floats = layout.total + (cache_head ? packed_k_floats + packed_v_floats : 0);
    std::shared_ptr<Storage> buffer = Storage::allocate(static_cast<size_t>(floats) * sizeof(float));
    float* scratch = reinterpret_cast<float*>(buffer->mutable_data());
    std::vector<uint8_t> tile_is_packed(static_cast<size_t>(max_key_tiles), 0);
    int64_t packed_head = -1;  // b * Hkv + g of the kv head in the cache, -1 for none
    std::vector<int64_t> key_end(Traits::kBlockQ);
    std::vector<AttentionKeyTile> key_tiles(static_cast<size_t>(std::max<int64_t>(max_key_tiles, 1)));

    for (int64_t task = task_begin; task < task_end; ++task) {
      const int64_t q_tile = task % num_q_tiles;
      const int64_t h = (task / num_q_tiles) % p.num_heads;
      const int64_t b = task / (num_q_tiles * p.num_heads);
      const int64_t g = h / group;  // the kv head this query head reads
      if (cache_head && packed_head != b * p.num_kv_heads + g) {
        std::fill(tile_is_packed.begin(), tile_is_packed.end(), 0);
        packed_head = b * p.num_kv_heads + g;
      }
      const int64_t row0 = q_tile * Traits::kBlockQ;
      const int64_t rows = std::min(Traits::kBlockQ, p.num_queries - row0);
      for (int64_t r = 0; r < rows; ++r) key_end[static_cast<size_t>(r)] = p.mask->key_end(b, row0 + r, p.num_keys);

      AttentionTile t;
      t.q = p.q + b * p.q_batch_stride + row0 * p.q_row_stride + h * p.q_head_stride;
      t.k = p.k ? p.k + b * p.k_batch_stride + g * p.k_head_stride : nullptr;
      t.v = p.v ? p.v + b * p.v_batch_stride + g * p.v_head_stride : nullptr;
      t.out = p.out + b * p.out_batch_stride + row0 * p.out_row_stride + h * p.out_head_stride;
      t.q_row_stride = p.q_row_stride;
      t.k_row_stride = p.k_row_stride;
      t.v_row_stride = p.v_row_stride;
      t.out_row_stride = p.out_row_stride;
      t.rows = rows;
      t.num_keys = p.num_keys;
      t.head_dim = p.head_dim;
      t.value_dim = p.value_dim;
      t.scale = p.scale;
      t.key_end = key_end.data();
      t.key_tiles = key_tiles.data();
      t.num_key_tiles = plan_key_tiles(key_end.data(), rows, key_tiles.data());
      t.scratch = scratch;
      if (cache_head) {
        t.packed_k = scratch + layout.total;
        t.packed_v = t.packed_k + packed_k_floats;
        t.tile_is_packed = tile_is_packed.data();
      }
      tile_kernel(t);
    }
  };
  if (pool)
    pool->parallel_for(num_tasks, 1, run_chunk);
  else
    run_chunk(0, num_tasks);
}

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

}  // namespace

// ---- scratch layout (both kernels) ------------------------------------------------------------------------------

AttentionScratchLayout attention_scratch_layout(int64_t head_dim, int64_t value_dim) {
  AttentionScratchLayout s;
  s.padded_value_dim = round_up(value_dim, 8);
  int64_t at = 0;
  auto take = [&](int64_t floats) {
    int64_t offset = at;
    at += round_up(std::max<int64_t>(floats, 1), 16);
    return offset;
  };
  s.q_tile = take(Traits::kBlockQ * head_dim);
  s.k_tile = take(Traits::kBlockK * head_dim);
  s.v_tile = take(Traits::kBlockK * s.padded_value_dim);
  s.scores = take(Traits::kBlockQ * Traits::kBlockK);
  s.acc = take(Traits::kBlockQ * s.padded_value_dim);
  s.row_max = take(Traits::kBlockQ);
  s.row_sum = take(Traits::kBlockQ);
  s.row_rescale = take(Traits::kBlockQ);
  s.total = at;
  return s;
}

// ---- portable tile kernel -----------------------------------------------------------------------------------------
//
// Plain loops shaped so a compiler can vectorise the innermost one without reassociating sums: scores run along the
// keys of a transposed K tile, the output along the value columns.

void attention_tile_portable(const AttentionTile& t) {
  const AttentionScratchLayout layout = attention_scratch_layout(t.head_dim, t.value_dim);
  const int64_t D = t.head_dim, Dv = t.value_dim, Dvp = layout.padded_value_dim, Bk = Traits::kBlockK;
  float* q_tile = t.scratch + layout.q_tile;    // [rows, D]
  float* scores = t.scratch + layout.scores;    // [rows, Bk]
  float* acc = t.scratch + layout.acc;          // [rows, Dvp]
  float* row_max = t.scratch + layout.row_max;
  float* row_sum = t.scratch + layout.row_sum;
  const float neg_inf = -std::numeric_limits<float>::infinity();

  // Scores are kept in the log2 domain (scale * log2(e) folded into q), so probabilities are exp2(s - max).
  const float q_scale = t.scale * 1.4426950408889634f;
  for (int64_t r = 0; r < t.rows; ++r) {
    for (int64_t d = 0; d < D; ++d) q_tile[r * D + d] = t.q[r * t.q_row_stride + d] * q_scale;
    for (int64_t c = 0; c < Dvp; ++c) acc[r * Dvp + c] = 0.0f;
    row_max[r] = neg_inf;
    row_sum[r] = 0.0f;
  }

  for (int64_t kt = 0; kt < t.num_key_tiles; ++kt) {
    const AttentionKeyTile& tile = t.key_tiles[kt];
    const int64_t width = tile.width;
    // The k tile transposed to [D, Bk], and v rows [width, Dv]: from the head cache when there is one (packing
    // the whole tile the first time), else k packed into scratch and v read in place.
    float* k_tile_t = t.scratch + layout.k_tile;
    const float* v_rows = t.v + tile.begin * t.v_row_stride;
    int64_t v_stride = t.v_row_stride;
    int64_t keys_to_pack = width;
    if (t.packed_k) {
      const int64_t slot = tile.begin / Bk;
      k_tile_t = t.packed_k + slot * Bk * D;
      float* v_slot = t.packed_v + slot * Bk * Dvp;
      keys_to_pack = t.tile_is_packed[slot] ? 0 : std::min(Bk, t.num_keys - tile.begin);
      for (int64_t j = 0; j < keys_to_pack; ++j)
        for (int64_t c = 0; c < Dv; ++c) v_slot[j * Dvp + c] = v_rows[j * v_stride + c];
      t.tile_is_packed[slot] = 1;
      v_rows = v_slot;
      v_stride = Dvp;
    }
    for (int64_t j = 0; j < keys_to_pack; ++j) {
      const float* k_row = t.k + (tile.begin + j) * t.k_row_stride;
      for (int64_t d = 0; d < D; ++d) k_tile_t[d * Bk + j] = k_row[d];
    }

    for (int64_t r = 0; r < t.rows; ++r) {
      float* s = scores + r * Bk;
      for (int64_t j = 0; j < width; ++j) s[j] = 0.0f;
      for (int64_t d = 0; d < D; ++d) {
        const float a = q_tile[r * D + d];
        const float* k_col = k_tile_t + d * Bk;
        for (int64_t j = 0; j < width; ++j) s[j] += a * k_col[j];
      }

      // Online softmax step. Only partial tiles compute a per-row limit; a full tile is seen whole by every row.
      const int64_t visible =
          tile.needs_mask ? std::clamp<int64_t>(t.key_end[r] - tile.begin, 0, width) : width;
      float tile_max = neg_inf;
      for (int64_t j = 0; j < visible; ++j) tile_max = std::max(tile_max, s[j]);  // skips NaN; see below
      const float new_max = std::max(row_max[r], tile_max);
      if (new_max == neg_inf) {
        if (visible == 0) continue;  // the row has seen no key yet: nothing to add, nothing to rescale
        // Visible scores that are all -inf or NaN (inf/NaN inputs): the softmax is undefined, so the row becomes
        // NaN, as in PyTorch, instead of passing for a row that sees nothing. (A NaN next to finite scores needs no
        // care: exp2 turns it into a NaN probability.)
        row_sum[r] = std::numeric_limits<float>::quiet_NaN();
        continue;
      }
      const float rescale = std::exp2(row_max[r] - new_max);  // 0 on the first visible tile (max was -inf)
      float tile_sum = 0.0f;
      for (int64_t j = 0; j < visible; ++j) {
        s[j] = std::exp2(s[j] - new_max);
        tile_sum += s[j];
      }
      row_sum[r] = row_sum[r] * rescale + tile_sum;
      row_max[r] = new_max;

      float* o = acc + r * Dvp;
      for (int64_t c = 0; c < Dv; ++c) o[c] *= rescale;
      for (int64_t j = 0; j < visible; ++j) {
        const float pj = s[j];
        const float* v_row = v_rows + j * v_stride;
        for (int64_t c = 0; c < Dv; ++c) o[c] += pj * v_row[c];
      }
    }
  }

  for (int64_t r = 0; r < t.rows; ++r) {
    // A row that saw no key has sum 0 and writes zeros (backend.h); a NaN sum stays NaN.
    const float inv = row_sum[r] != 0.0f ? 1.0f / row_sum[r] : 0.0f;
    float* out_row = t.out + r * t.out_row_stride;
    for (int64_t c = 0; c < Dv; ++c) out_row[c] = acc[r * Dvp + c] * inv;
  }
}

// ---- entry points -------------------------------------------------------------------------------------------------

bool attention_kernel_available(AttentionKernel kernel) {
  if (kernel == AttentionKernel::Portable) return true;
#if defined(SHOWO2_HAVE_AVX2_KERNELS)
  return cpu_features().avx2 && cpu_features().fma;
#else
  return false;
#endif
}

void attention_with_kernel(const Tensor& q, const Tensor& k, const Tensor& v, const OmniMask& mask, float scale,
                           Tensor& out, ThreadPool* pool, AttentionKernel kernel) {
  SHOWO2_CHECK(attention_kernel_available(kernel), InvalidArgument,
               "attention: the AVX2 kernel is not available on this CPU or build");
  run_tiles(validate(q, k, v, mask, scale, out), pool, kernel);
}

void attention(const Tensor& q, const Tensor& k, const Tensor& v, const OmniMask& mask, float scale, Tensor& out,
               ThreadPool* pool) {
  const AttentionKernel kernel = cpu_features().use_avx2 ? AttentionKernel::Avx2 : AttentionKernel::Portable;
  run_tiles(validate(q, k, v, mask, scale, out), pool, kernel);
}

}  // namespace showo2::cpu
