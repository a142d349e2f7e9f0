// Internals of the CPU attention family (attention.cpp, attention_avx2.cpp), shared with its test and benchmark.
//
// Split of work:
//   attention.cpp       validates arguments, plans the tiles (which key tiles each query tile visits and which of
//                       them need masking), runs the plan on the thread pool, and holds the portable tile kernel.
//   attention_avx2.cpp  the same tile kernel with AVX2/FMA register blocking; chosen at run time (cpu_features.h).
//
// This header holds only plain structs, constants and declarations, no inline functions: attention_avx2.cpp is
// compiled with -mavx2, and an inline function instantiated there could be the copy the linker keeps for every other
// file, which would then crash on CPUs without AVX2.
#pragma once

#include <cstdint>

namespace showo2 {
class Tensor;
class OmniMask;
}  // namespace showo2

namespace showo2::cpu {

class ThreadPool;

// Tile sizes, shared by both kernels so they visit the same tiles and round the same way. With the packed-head cache
// the sizes matter little: on Zen 3 (D 128) every pair from 48..144 query rows x 64..256 keys ran within a few
// percent; 96 x 128 keeps the scratch (about 270 KB at D 128) inside a 512 KB L2.
struct AttentionTileTraits {
  static constexpr int64_t kBlockQ = 96;        // query rows per tile (one thread task)
  static constexpr int64_t kBlockK = 128;       // keys per tile (one online-softmax step)
  static constexpr int64_t kRowsPerStrip = 6;   // query rows held in registers by the AVX2 micro-kernels
  static constexpr int64_t kKeysPerPanel = 16;  // keys per packed K panel (two 8-float AVX2 vectors)
  // Largest per-thread cache of one kv head's packed K and V (see AttentionTile::packed_k). 16 MiB holds a
  // 128-dim head up to 16k keys, or the VAE's 384-dim head over 54x54 tokens; longer sequences pack per tile.
  static constexpr int64_t kMaxPackedHeadBytes = int64_t{16} << 20;
  static_assert(kBlockQ % kRowsPerStrip == 0, "a query tile must be whole register strips");
  static_assert(kBlockK % kKeysPerPanel == 0, "a key tile must be whole K panels");
};

// One (query tile, key tile) pair the kernel must compute. Key tiles that no query row of the tile may see are
// skipped by the planner and never appear.
struct AttentionKeyTile {
  int64_t begin = 0;         // first key; a multiple of kBlockK, so begin / kBlockK numbers the tile
  int64_t width = 0;         // keys in this tile (<= kBlockK; smaller only for the last visible tile)
  bool needs_mask = false;   // false: every row sees every key of the tile, so masking is skipped
};

// One query tile of one (batch, head): the unit of work a tile kernel runs. All pointers are raw so the AVX2 file
// needs no inline code from other headers.
struct AttentionTile {
  const float* q = nullptr;     // row 0 of the tile, [rows, head_dim] with row stride q_row_stride
  const float* k = nullptr;     // key 0 of this head's kv head, [num_keys, head_dim] with row stride k_row_stride
  const float* v = nullptr;     // key 0 of this head's kv head, [num_keys, value_dim] with row stride v_row_stride
  float* out = nullptr;         // row 0 of the tile, [rows, value_dim] with row stride out_row_stride
  int64_t q_row_stride = 0, k_row_stride = 0, v_row_stride = 0, out_row_stride = 0;  // in elements
  int64_t rows = 0;             // query rows in this tile (<= kBlockQ)
  int64_t num_keys = 0;         // Lk
  int64_t head_dim = 0;         // D (q, k)
  int64_t value_dim = 0;        // Dv (v, out)
  float scale = 1.0f;           // softmax scale applied to q·k
  const int64_t* key_end = nullptr;          // [rows]: row r sees keys [0, key_end[r]) (omni_mask.h)
  const AttentionKeyTile* key_tiles = nullptr;  // the visible key tiles, in increasing key order
  int64_t num_key_tiles = 0;
  float* scratch = nullptr;     // attention_scratch_layout(head_dim, value_dim).total floats, 64-byte aligned
  // Packed K and V of this kv head, kept across the query tiles (and the query heads of a GQA group) that one
  // thread runs in a row, so each key tile is packed once rather than once per query tile. Slot i holds key tile i
  // in the kernel's own packed format: packed_k + i * kBlockK * head_dim, packed_v + i * kBlockK * padded_value_dim.
  // tile_is_packed[i] says whether slot i is filled; the kernel fills a slot with all min(kBlockK, num_keys - begin)
  // keys of the tile (not only those this query tile sees), because a later query tile may see more of it.
  // All three are null when the head is too large to cache (kMaxPackedHeadBytes); tiles are then packed into
  // scratch each time.
  float* packed_k = nullptr;
  float* packed_v = nullptr;
  uint8_t* tile_is_packed = nullptr;
};

// Where each piece of a tile kernel's per-thread scratch lives, as float offsets from AttentionTile::scratch (each a
// multiple of 16 floats, so 64-byte aligned). Defined once, in attention.cpp, for both kernels.
struct AttentionScratchLayout {
  int64_t padded_value_dim = 0;  // value_dim rounded up to 8 (one AVX2 vector), the row length of v_tile and acc
  int64_t q_tile = 0;            // [kBlockQ, head_dim]      q rows times scale*log2(e)
  int64_t k_tile = 0;            // [kBlockK, head_dim]      k tile transposed (the AVX2 kernel: in 16-key panels)
  int64_t v_tile = 0;            // [kBlockK, padded_value_dim]  v tile with zero padding columns
  int64_t scores = 0;            // [kBlockQ, kBlockK]       scores, then probabilities, of the current key tile
  int64_t acc = 0;               // [kBlockQ, padded_value_dim]  unnormalised output rows
  int64_t row_max = 0;           // [kBlockQ] running max (log2 domain)
  int64_t row_sum = 0;           // [kBlockQ] running sum of probabilities
  int64_t row_rescale = 0;       // [kBlockQ] factor the accumulator row is multiplied by in the current step
  int64_t total = 0;             // floats in all
};
AttentionScratchLayout attention_scratch_layout(int64_t head_dim, int64_t value_dim);

// The tile kernels. Both compute the same thing; only speed differs.
void attention_tile_portable(const AttentionTile& tile);
#if defined(SHOWO2_HAVE_AVX2_KERNELS)
void attention_tile_avx2(const AttentionTile& tile);
#endif

enum class AttentionKernel { Portable, Avx2 };

// Whether `kernel` can run here (Avx2 needs the AVX2 build and an AVX2/FMA CPU).
bool attention_kernel_available(AttentionKernel kernel);

// cpu::attention with an explicit kernel instead of the run-time choice; for tests and benchmarks. Throws
// ERR_INVALID_ARGUMENT when the kernel is not available.
void attention_with_kernel(const Tensor& q, const Tensor& k, const Tensor& v, const OmniMask& mask, float scale,
                           Tensor& out, ThreadPool* pool, AttentionKernel kernel);

}  // namespace showo2::cpu
