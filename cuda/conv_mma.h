// The tensor-core convolution (v3, cuda/conv_mma.cu): its launcher. Internal to cuda/conv.cu, which dispatches to it
// for ConvVariant::TensorCore; callers use launch_conv (conv.h).
#pragma once

#include <cuda_runtime.h>

#include "conv.h"

namespace showo2::cuda {

// Whether the current device can run v3 (compute capability 8.0 or newer: mma.sync with BF16 operands). Host code,
// cached per device.
bool conv_mma_supported();

// Launches v3 on `stream`; the caller (launch_conv) has validated the params and checked conv_mma_supported().
cudaError_t launch_conv_mma(const ConvParams& params, cudaStream_t stream);

}  // namespace showo2::cuda
