// Split-KV attention for decoding (cuda/attention_decode.cu): one new query token, or a small group of them, over a
// long KV cache. Internal to cuda/attention.cu, which dispatches to it; callers use launch_attention (attention.h)
// and, to enable it, attention_split_workspace_floats + AttentionParams::split_workspace.
//
// Why a kernel of its own: with a handful of query rows the tiled kernels launch ceil(Lq / 64) x Hq x B thread
// blocks, a few dozen on a GPU with 132 SMs, and each reads the whole KV cache of its head again for every query head
// of a GQA group. Decoding is bound by reading the cache, so this kernel (1) reads each KV head once for all query
// rows of its group (Hq / Hkv heads x Lq rows), and (2) splits the keys into chunks handled by separate thread
// blocks, whose partial results (unnormalised output, running max, running sum per row) a second kernel combines.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

#include "attention.h"

namespace showo2::cuda {

// Limits of the split-KV path: query rows per KV head (Hq / Hkv x Lq) and head dims. Larger runs the tiled kernels.
constexpr int kAttentionDecodeMaxRows = 64;
constexpr int kAttentionDecodeMaxHeadDim = 128;

// How many key chunks launch_attention would split these params into on the current device, 1 when the split-KV path
// does not apply (too many query rows, head dims past the limits, too few keys to be worth splitting) or does not pay
// (the tiled kernels already fill the GPU). Host code.
int attention_split_count(const AttentionParams& params);

// Floats of device workspace the split-KV path needs for `splits` chunks: per (sample, query head, row, split), the
// unnormalised output (Dv floats), the running max and the running sum.
size_t attention_split_workspace_floats(const AttentionParams& params, int splits);

// Runs the split-KV kernels with params.split_workspace (at least attention_split_workspace_floats(params, splits)
// floats) on `stream`. The caller (launch_attention) has validated the params.
cudaError_t launch_attention_split(const AttentionParams& params, int splits, cudaStream_t stream);

}  // namespace showo2::cuda
