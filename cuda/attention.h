// GPU scaled-dot-product attention with grouped KV heads and the omni mask described as data (cuda/attention.cu).
//
//   out[b, i, h, :] = sum_j softmax_j(scale * q[b, i, h, :] · k[b, j, g, :] | j < key_end(b, i)) * v[b, j, g, :]
//   g = h / (Hq / Hkv); key_end as in native/core/omni_mask.h (spec §5.1).
//
// The launchers take device pointers and explicit strides (q, k, v are usually views into a fused qkv projection or
// a KV cache); CudaBackend::attention (cuda/cuda_backend_attention_conv.cu) validates Tensors and fills the params.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "omni_mask.h"

namespace showo2::cuda {

// The omni mask of one launch, carried by value inside AttentionParams (so inside the kernel's parameter space).
// Why by value rather than a device array: nothing to upload or cache per call, no host-device copy in the middle
// of a layer, and a launch that captures into a CUDA graph (the ODE loop) carries its own mask. The capacity covers
// Show-o2's masks many times over (one to four blocks per sample); a batch with more block lists than fit is split
// into several launches by fill_attention_mask.
struct AttentionMask {
  static constexpr int kMaxLists = 64;    // per-sample block lists in one launch
  static constexpr int kMaxBlocks = 256;  // blocks over all lists of one launch

  int32_t causal = 0;        // 0: full attention, every query sees every key (the fields below are ignored)
  int32_t num_lists = 1;     // 1: one list shared by every sample; else one list per sample of the launch
  int64_t query_offset = 0;  // absolute sequence position of query row 0 (KV-cache decoding: the cached length)
  // List l holds blocks [list_begin[l], list_begin[l + 1]), sorted by begin and non-overlapping (OmniMask::omni
  // guarantees both); block i covers absolute positions [block_begin[i], block_end[i]).
  int32_t list_begin[kMaxLists + 1] = {};
  int32_t block_begin[kMaxBlocks] = {};
  int32_t block_end[kMaxBlocks] = {};
};

#if defined(__CUDACC__)
#define SHOWO2_HOST_DEVICE __host__ __device__
#else
#define SHOWO2_HOST_DEVICE
#endif

// One past the last key that query row `q_row` of launch-sample `b` may see, clamped to num_keys: OmniMask::key_end
// evaluated on the AttentionMask (the kernels call it; the tests check it against OmniMask on the host).
SHOWO2_HOST_DEVICE inline int attention_key_end(const AttentionMask& m, int b, int64_t q_row, int num_keys) {
  if (!m.causal) return num_keys;
  const int64_t q = q_row + m.query_offset;
  int64_t end = q + 1;
  const int list = m.num_lists == 1 ? 0 : b;
  for (int i = m.list_begin[list]; i < m.list_begin[list + 1]; ++i) {
    if (q < m.block_begin[i]) break;  // blocks are sorted: q lies before every remaining block
    if (q < m.block_end[i]) {
      end = m.block_end[i];
      break;
    }
  }
  return static_cast<int>(end < num_keys ? end : num_keys);
}

// Fills `out` with the mask of samples [batch_begin, batch_end) of `mask`, as many of them as fit, and returns the
// number of samples it took (>= 1). Throws ERR_INVALID_ARGUMENT when a single sample has more than kMaxBlocks
// blocks or a position does not fit in int32. Host code.
int64_t fill_attention_mask(const OmniMask& mask, int64_t batch_begin, int64_t batch_end, AttentionMask* out);

// Which kernel runs. All compute the same function (v3 with BF16 probabilities); tests compare them and
// bench/native/attention_cuda_bench.cu times them side by side.
enum class AttentionVariant {
  Naive,       // v1: one thread block per (b, h, query row), plain loops, exact two-pass softmax; any head dim
  Tiled,       // v2: query x key tiles in shared memory, online softmax, skip/full/partial tiles; head dims <= 512
               //     (larger head dims fall back to v1)
  TensorCore,  // v3 (cuda/attention_mma.cu): v2's structure on BF16 tensor cores (mma.sync, compute capability 8.0+),
               //     P rounded to BF16 for P·V as in FlashAttention; BF16 inputs and max(D, Dv) <= 128, anything
               //     else runs v2
  Auto,        // split-KV decoding (cuda/attention_decode.cu) for a few query rows over many keys when a workspace
               // is given; else v3 when it can run the params on this device; else v2. What CudaBackend uses
};

enum class AttentionInputType { F32, BF16 };  // dtype of q, k, v (out is always F32)

// Everything one launch needs. Pointers are device pointers to element [0, 0, 0, 0]; strides are in elements.
struct AttentionParams {
  const void* q = nullptr;  // [B, Lq, Hq, D], last dim contiguous
  const void* k = nullptr;  // [B, Lk, Hkv, D], last dim contiguous
  const void* v = nullptr;  // [B, Lk, Hkv, Dv], last dim contiguous
  float* out = nullptr;     // [B, Lq, Hq, Dv], last dim contiguous; must not overlap q, k, v
  AttentionInputType input_type = AttentionInputType::F32;  // of q, k and v
  int64_t q_batch_stride = 0, q_row_stride = 0, q_head_stride = 0;
  int64_t k_batch_stride = 0, k_row_stride = 0, k_head_stride = 0;
  int64_t v_batch_stride = 0, v_row_stride = 0, v_head_stride = 0;
  int64_t out_batch_stride = 0, out_row_stride = 0, out_head_stride = 0;
  int32_t batch = 0;         // B (<= 65535: the grid's z dimension)
  int32_t num_queries = 0;   // Lq
  int32_t num_keys = 0;      // Lk (the valid keys; a KV cache may hold more rows, which are never read)
  int32_t num_heads = 0;     // Hq (<= 65535: the grid's y dimension)
  int32_t num_kv_heads = 0;  // Hkv, Hq % Hkv == 0; query head h reads kv head h / (Hq / Hkv)
  int32_t head_dim = 0;      // D of q and k (> 0)
  int32_t value_dim = 0;     // Dv of v and out
  float scale = 1.0f;        // multiplies q·k before the softmax (1/sqrt(D) in every Show-o2 attention)
  AttentionMask mask;        // which keys each query row sees; samples indexed relative to this launch's batch
  AttentionVariant variant = AttentionVariant::Auto;
  // Device scratch that lets Auto decode a few query rows over a long KV cache with split-KV (cuda/attention_decode.h):
  // at least attention_split_workspace_floats(params, attention_split_count(params)) floats; null: never split.
  float* split_workspace = nullptr;
  size_t split_workspace_floats = 0;
};

// Launches the attention on `stream` (asynchronous). Returns cudaErrorInvalidValue for parameters the kernels cannot
// take (a null pointer, a head dim too large for v1's shared memory, a grid over CUDA's limits) and the launch error
// otherwise; never throws. The caller validates shapes (CudaBackend::attention does).
cudaError_t launch_attention(const AttentionParams& params, cudaStream_t stream);

// Dimension limits of the tiled kernel; larger head dims run the naive kernel.
constexpr int kAttentionTiledMaxHeadDim = 512;

}  // namespace showo2::cuda
