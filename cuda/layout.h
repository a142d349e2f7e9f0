// Launchers for the data-movement family (cuda/layout.cu): strided copy and nearest-neighbour 2x upsampling. Raw
// device pointers in, work queued on `stream`; argument errors and launch failures throw showo2::Error. Semantics
// are backend.h's; the CPU twin is native/core/cpu/layout.cpp (hence the family name: no arithmetic, only layout).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "dtype.h"

namespace showo2::cuda {

constexpr int kMaxCopyRank = 6;

struct LayoutParams {
  // copy: dst[i...] = src[i...] over `rank` dims, arbitrary non-negative element strides on both sides.
  const float* src = nullptr;             // copy source; upsample: x, dense [planes, height, width]
  float* dst = nullptr;                   // copy destination; upsample: out, dense [planes, 2 height, 2 width]
  int rank = 0;                           // copy: number of dims (<= kMaxCopyRank; 0 = one element)
  int64_t size[kMaxCopyRank] = {};        // copy: shape
  int64_t src_stride[kMaxCopyRank] = {};  // copy: element strides of src
  int64_t dst_stride[kMaxCopyRank] = {};  // copy: element strides of dst
  int64_t planes = 0;                     // upsample: product of the dims before H, W (N * C or N * C * T)
  int64_t height = 0;                     // upsample: input H
  int64_t width = 0;                      // upsample: input W
  // copy only: the element types of src and dst, F32 or BF16 (the pointers keep their float type; the kernel
  // reinterprets them). Different types convert: BF16 -> F32 exactly, F32 -> BF16 rounded to nearest even.
  DType src_dtype = DType::F32;
  DType dst_dtype = DType::F32;
};

// dst = src. src and dst must not overlap unless they are the same view (then nothing to do):
// ERR_INVALID_ARGUMENT.
void launch_copy(const LayoutParams& p, cudaStream_t stream);
// out[p, h, w] = x[p, h / 2, w / 2].
void launch_upsample_nearest2x(const LayoutParams& p, cudaStream_t stream);

}  // namespace showo2::cuda
