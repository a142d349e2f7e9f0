// How the convolution kernels (cuda/conv.cu v1/v2, cuda/conv_mma.cu v3) address their logical input: frame t of
// batch item n is either a history frame (a causal conv's cached frames, read where the cache keeps them) or a frame
// of x, which may be read as its nearest-exact 2x upsampling. See ConvParams (conv.h) for the fields.
#pragma once

#include <cstdint>

#include "conv.h"

namespace showo2::cuda {

// Channel 0 of one input frame, and the distance between its channels (in floats).
struct ConvInputFrame {
  const float* base;
  int64_t channel_stride;
};

__device__ __forceinline__ ConvInputFrame conv_input_frame(const ConvParams& p, int n, int t) {
  if (t < p.history_frames) {
    const int i = t == 0 ? 0 : 1;  // constant indices keep the kernel parameters out of local memory
    return {p.history[i] + n * p.history_stride_n[i], p.history_stride_c[i]};
  }
  const int shift = p.upsample2x ? 1 : 0;
  const int64_t plane = static_cast<int64_t>(p.H >> shift) * (p.W >> shift);
  const int x_frames = p.T - p.history_frames;
  return {p.x + (static_cast<int64_t>(n) * p.C * x_frames + (t - p.history_frames)) * plane,
          static_cast<int64_t>(x_frames) * plane};
}

// Offset within a frame's plane of logical input position (hi, wi), 0 <= hi < H, 0 <= wi < W. Upsampled input:
// nearest-exact at an exact factor 2 reads source floor(h / 2) (floor((h + 0.5) / 2) is the same).
__device__ __forceinline__ int64_t conv_input_offset(const ConvParams& p, int hi, int wi) {
  if (p.upsample2x) return static_cast<int64_t>(hi >> 1) * (p.W >> 1) + (wi >> 1);
  return static_cast<int64_t>(hi) * p.W + wi;
}

// The residual added to output element `index` (out's flat index), or 0.
__device__ __forceinline__ float conv_residual(const ConvParams& p, int64_t index) {
  return p.residual != nullptr ? p.residual[index] : 0.0f;
}

}  // namespace showo2::cuda
