// The tensor-core attention kernel (v3, cuda/attention_mma.cu): what it takes and its launcher. Internal to
// cuda/attention.cu, which dispatches to it; callers use launch_attention (attention.h).
#pragma once

#include <cuda_runtime.h>

#include "attention.h"

namespace showo2::cuda {

// The widest head the tensor-core kernel stages (max(D, Dv), rounded up to its buckets 64 / 80 / 128).
constexpr int kAttentionMmaMaxHeadDim = 128;

// Whether v3 can run these params on the current device: BF16 inputs, max(D, Dv) <= kAttentionMmaMaxHeadDim and a
// device of compute capability 8.0 or newer (mma.sync with BF16 operands). Host code; reads the current device's
// compute capability (cached per device).
bool attention_mma_supported(const AttentionParams& params);

// Launches v3 on `stream`. The caller (launch_attention) has validated the params and checked
// attention_mma_supported.
cudaError_t launch_attention_mma(const AttentionParams& params, cudaStream_t stream);

}  // namespace showo2::cuda
