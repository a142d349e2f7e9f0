// How the convolution kernels (cuda/conv.cu v1/v2, cuda/conv_mma.cu v3) address their operands in either layout
// (ConvParams::channels_last, ::weight_channels_last; see conv.h):
//   * the logical input: frame t of batch item n is either a history frame (a causal conv's cached frames, read
//     where the cache keeps them) or a frame of x, which may be read as its nearest-exact 2x upsampling;
//   * the output and the residual: out[n, o, to, pixel];
//   * the weight: weight[o, c, tap].
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "conv.h"

namespace showo2::cuda {

// One input frame: channel c of pixel index q (hi * W + wi of the frame's stored plane) is at
// base[c * channel_stride + q * pixel_stride]. Channels-first: channel planes (pixel_stride 1); channels-last: pixel
// runs of C channels (channel_stride 1, pixel_stride C).
// Ta: the activation element type (float, or __nv_bfloat16 for ConvActivationType::BF16).
template <typename Ta>
struct ConvInputFrame {
  const Ta* base;
  int64_t channel_stride;
  int32_t pixel_stride;
};

template <typename Ta>
__device__ __forceinline__ ConvInputFrame<Ta> conv_input_frame(const ConvParams& p, int n, int t) {
  if (t < p.history_frames) {
    const int i = t == 0 ? 0 : 1;  // constant indices keep the kernel parameters out of local memory
    const Ta* base = static_cast<const Ta*>(p.history[i]) + n * p.history_stride_n[i];
    return p.channels_last ? ConvInputFrame<Ta>{base, 1, p.C} : ConvInputFrame<Ta>{base, p.history_stride_c[i], 1};
  }
  const Ta* x = static_cast<const Ta*>(p.x);
  const int shift = p.upsample2x ? 1 : 0;
  const int64_t plane = static_cast<int64_t>(p.H >> shift) * (p.W >> shift);
  const int x_frames = p.T - p.history_frames;
  const int64_t frame = static_cast<int64_t>(n) * x_frames + (t - p.history_frames);  // in [N, x_frames]
  if (p.channels_last) return {x + frame * plane * p.C, 1, p.C};
  return {x + (static_cast<int64_t>(n) * p.C * x_frames + (t - p.history_frames)) * plane,
          static_cast<int64_t>(x_frames) * plane, 1};
}

// Channel 0 of logical input position (hi, wi) of a frame, 0 <= hi < H, 0 <= wi < W (add c * channel_stride for
// channel c). Upsampled input: nearest-exact at an exact factor 2 reads source floor(h / 2) (floor((h + 0.5) / 2) is
// the same).
template <typename Ta>
__device__ __forceinline__ const Ta* conv_input_pixel(const ConvParams& p, const ConvInputFrame<Ta>& frame, int hi,
                                                      int wi) {
  const int64_t q = p.upsample2x ? static_cast<int64_t>(hi >> 1) * (p.W >> 1) + (wi >> 1)
                                 : static_cast<int64_t>(hi) * p.W + wi;
  return frame.base + q * frame.pixel_stride;
}

// Flat index of out[n, o, to, pixel] (pixel = ho * Wo + wo), in out's layout; the residual shares it.
__device__ __forceinline__ int64_t conv_out_index(const ConvParams& p, int n, int o, int to, int pixel) {
  const int64_t frame_pixels = static_cast<int64_t>(p.Ho) * p.Wo;
  if (p.channels_last) return ((static_cast<int64_t>(n) * p.To + to) * frame_pixels + pixel) * p.O + o;
  return ((static_cast<int64_t>(n) * p.O + o) * p.To + to) * frame_pixels + pixel;
}

// Flat index of weight[o, c, tap] (tap = (kt * KH + kh) * KW + kw), in the weight's layout.
__device__ __forceinline__ int64_t conv_weight_index(const ConvParams& p, int o, int c, int tap) {
  const int taps = p.KT * p.KH * p.KW;
  if (p.weight_channels_last) return (static_cast<int64_t>(o) * taps + tap) * p.C + c;
  return (static_cast<int64_t>(o) * p.C + c) * taps + tap;
}

__device__ __forceinline__ float conv_activation_to_f32(float v) { return v; }
__device__ __forceinline__ float conv_activation_to_f32(__nv_bfloat16 v) { return __bfloat162float(v); }

// The residual added to output element `index` (conv_out_index), or 0.
template <typename Ta>
__device__ __forceinline__ float conv_residual(const ConvParams& p, int64_t index) {
  return p.residual != nullptr ? conv_activation_to_f32(static_cast<const Ta*>(p.residual)[index]) : 0.0f;
}

// Writes output element `index` (F32 accumulator rounded to nearest even for BF16).
__device__ __forceinline__ void conv_store(const ConvParams& p, int64_t index, float v) {
  if (p.activation_type == ConvActivationType::BF16)
    static_cast<__nv_bfloat16*>(p.out)[index] = __float2bfloat16_rn(v);
  else
    static_cast<float*>(p.out)[index] = v;
}

}  // namespace showo2::cuda
