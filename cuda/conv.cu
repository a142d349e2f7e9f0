// GPU convolutions: conv3d (and conv2d as its T = KT = 1 case) with zero padding per side and strides.
//
//   out[n, o, t, h, w] = bias[o] + sum_{c, i, j, k} weight[o, c, i, j, k] * xpad[n, c, t*st + i, h*sh + j, w*sw + k]
//   x [N, C, T, H, W] F32; weight [O, C, KT, KH, KW] F32/BF16/F16; bias [O] or none; out [N, O, To, Ho, Wo] F32;
//   activations contiguous or channels-last, the weight either way (ConvParams). To = (T + pad_front + pad_back - KT) / st + 1, likewise Ho, Wo. Spec §3.1 (the Wan VAE: causal
//   3x3x3 with pad_front 2, 1x1x1 shortcuts, stride-2 down-sampling, time_conv k=(3,1,1)); CPU twin:
//   native/core/cpu/conv.cpp.
// Precision: weights widened to F32 as they are staged; F32 accumulation; F32 out.
// Like the CPU twin, taps that would read only time padding are skipped rather than multiplied by zeros (a causal
// 3-frame conv over a 1-frame chunk runs one time tap of three).
//
// Variants (ConvParams::variant):
//   v1 Naive  one thread per output element, plain loops over (c, kt, kh, kw); the GPU reference.
//   v2 Tiled  implicit GEMM on CUDA cores: C[O, pixels] = sum over (tap, c) of W[O, (c, tap)] · X[(c, tap), pixels],
//             gathered on the fly from x with the padding, 64 output channels x 64 output pixels of one output frame
//             per thread block, 16 input channels per shared-memory step.
//   v3 TensorCore  cuda/conv_mma.cu: the same implicit GEMM on BF16 tensor cores (issue [cuda-vae]).
// Fusions (all variants, cuda/conv_input.cuh): the input's first frames may be history frames read where a causal
// conv's cache keeps them, x may be read as its nearest-exact 2x upsampling, and a residual may be added to the
// output (Backend::conv3d_fused).
// Checked by test/native/conv_cuda_test.cu (against the CPU backend, and v1 against v2).
// Bench: build/attention_cuda_bench --only conv (the VAE decoder's largest conv).
#include "conv.h"
#include "conv_input.cuh"
#include "conv_mma.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace showo2::cuda {

namespace {

// ---- device code ------------------------------------------------------------------------------------------------

__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float to_f32(__half x) { return __half2float(x); }

__device__ __forceinline__ float load_bias(const ConvParams& p, int o) {
  if (p.bias == nullptr) return 0.0f;
  switch (p.bias_type) {
    case ConvWeightType::BF16: return to_f32(static_cast<const __nv_bfloat16*>(p.bias)[o]);
    case ConvWeightType::F16: return to_f32(static_cast<const __half*>(p.bias)[o]);
    default: return static_cast<const float*>(p.bias)[o];
  }
}

// ---- v1: naive ----------------------------------------------------------------------------------------------------

constexpr int kNaiveThreads = 256;

template <typename Wt>
__global__ void __launch_bounds__(kNaiveThreads) conv_naive_kernel(const ConvParams p) {
  const int64_t total = static_cast<int64_t>(p.N) * p.O * p.To * p.Ho * p.Wo;
  const Wt* weight = static_cast<const Wt*>(p.weight);
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    // idx is out's flat index: decomposed in out's layout, so consecutive threads write consecutive addresses.
    int64_t rest = idx;
    int o = 0;
    if (p.channels_last) {
      o = static_cast<int>(rest % p.O);
      rest /= p.O;
    }
    const int wo = static_cast<int>(rest % p.Wo); rest /= p.Wo;
    const int ho = static_cast<int>(rest % p.Ho); rest /= p.Ho;
    const int to = static_cast<int>(rest % p.To); rest /= p.To;
    if (!p.channels_last) {
      o = static_cast<int>(rest % p.O);
      rest /= p.O;
    }
    const int n = static_cast<int>(rest);
    float acc = load_bias(p, o);
    for (int c = 0; c < p.C; ++c)
      for (int kt = 0; kt < p.KT; ++kt) {
        const int ti = to * p.stride_t - p.pad_front + kt;
        if (ti < 0 || ti >= p.T) continue;
        const ConvInputFrame<float> frame = conv_input_frame<float>(p, n, ti);
        for (int kh = 0; kh < p.KH; ++kh) {
          const int hi = ho * p.stride_h - p.pad_top + kh;
          if (hi < 0 || hi >= p.H) continue;
          for (int kw = 0; kw < p.KW; ++kw) {
            const int wi = wo * p.stride_w - p.pad_left + kw;
            if (wi < 0 || wi >= p.W) continue;
            const float xv = conv_input_pixel(p, frame, hi, wi)[c * frame.channel_stride];
            const float wv = to_f32(weight[conv_weight_index(p, o, c, (kt * p.KH + kh) * p.KW + kw)]);
            acc = fmaf(xv, wv, acc);
          }
        }
      }
    static_cast<float*>(p.out)[idx] = acc + conv_residual<float>(p, idx);
  }
}

// ---- v2: tiled implicit GEMM ------------------------------------------------------------------------------------
//
// Block (pixel tile, channel tile, n * To + to) computes out[n, o0 : o0+64, to, pixels p0 : p0+64] where pixels are
// the flattened (ho, wo) of one output frame. The reduction runs over input-channel chunks of 16 (outer) and the
// kernel taps (inner): for one (chunk, tap) step the block stages
//   a_tile[kk][m] = weight[o0 + m, c0 + kk, tap]                     (64 channels x 16 inputs)
//   b_tile[kk][p] = xpad[n, c0 + kk, input position of pixel p0 + p under this tap]   (16 inputs x 64 pixels)
// and every thread adds a 4 x 4 outer-product block. Taps inner means consecutive steps read weights and inputs
// that sit next to the previous step's in memory, so they mostly come from L1. Time taps that land in the padding
// for this output frame are skipped for the whole block (they are the same for all its pixels).
//
// Threads: 256 = 16 x 16; thread (ty, tx) owns channels o0 + 4*ty .. +3 and pixels p0 + 4*tx .. +3, read from shared
// memory as float4. Staging: each thread always loads the same pixel (p = tid % 64) for 4 input channels, so its
// output coordinates are computed once; consecutive threads read consecutive pixels (coalesced for stride 1).
// Shared memory: a_tile 16 x 68 + b_tile 16 x 64 floats = 8.5 KiB; the a_tile pitch of 68 keeps float4 alignment and
// spreads the transposing writes over the banks.

struct ConvTiledTraits {
  static constexpr int kThreads = 256;
  static constexpr int kBlockO = 64;       // output channels per block
  static constexpr int kBlockP = 64;       // output pixels per block
  static constexpr int kBlockC = 16;       // input channels per step
  static constexpr int kPerThreadO = 4;
  static constexpr int kPerThreadP = 4;
  static constexpr int kAPitch = kBlockO + 4;
  static_assert((kBlockO / kPerThreadO) * (kBlockP / kPerThreadP) == kThreads, "one 4x4 block per thread");
  static_assert(kBlockC * kBlockO % kThreads == 0 && kBlockC * kBlockP % kThreads == 0, "even staging");
  static_assert(kThreads % kBlockP == 0, "a thread stages one fixed pixel");
  static_assert(kAPitch % 4 == 0, "a_tile rows must stay float4-aligned");
};

template <typename Wt>
__global__ void __launch_bounds__(ConvTiledTraits::kThreads) conv_tiled_kernel(const ConvParams p) {
  using Traits = ConvTiledTraits;
  constexpr int BO = Traits::kBlockO, BP = Traits::kBlockP, BC = Traits::kBlockC;
  __shared__ __align__(16) float a_tile[BC][Traits::kAPitch];
  __shared__ __align__(16) float b_tile[BC][BP];

  const int frame_pixels = p.Ho * p.Wo;
  const int p0 = blockIdx.x * BP, o0 = blockIdx.y * BO;
  const int n = blockIdx.z / p.To, to = blockIdx.z % p.To;
  const int tid = threadIdx.x, ty = tid / 16, tx = tid % 16;
  const Wt* weight = static_cast<const Wt*>(p.weight);

  // The pixel this thread stages, and its top-left input position before the tap offset.
  const int my_p = tid % BP;
  const bool my_p_valid = p0 + my_p < frame_pixels;
  const int my_ho = my_p_valid ? (p0 + my_p) / p.Wo : 0;
  const int my_wo = my_p_valid ? (p0 + my_p) % p.Wo : 0;
  const int h_base = my_ho * p.stride_h - p.pad_top;
  const int w_base = my_wo * p.stride_w - p.pad_left;

  // Time taps with a real input frame for this output frame: [kt_first, kt_last).
  const int t_base = to * p.stride_t - p.pad_front;
  const int kt_first = max(0, -t_base);
  const int kt_last = min(p.KT, p.T - t_base);

  float acc[Traits::kPerThreadO][Traits::kPerThreadP] = {};

  for (int c0 = 0; c0 < p.C; c0 += BC) {
    for (int kt = kt_first; kt < kt_last; ++kt) {
      const ConvInputFrame<float> frame = conv_input_frame<float>(p, n, t_base + kt);  // x, history, or x upsampled
      for (int kh = 0; kh < p.KH; ++kh) {
        const int hi = h_base + kh;
        for (int kw = 0; kw < p.KW; ++kw) {
          const int wi = w_base + kw;
          const int tap = (kt * p.KH + kh) * p.KW + kw;
          __syncthreads();  // the previous step's tiles have been read

          // a_tile[kk][m] = weight[o0 + m, c0 + kk, tap]; consecutive threads take consecutive kk (contiguous c when
          // taps == 1).
#pragma unroll
          for (int i = 0; i < BC * BO / Traits::kThreads; ++i) {
            const int e = tid + i * Traits::kThreads;
            const int kk = e % BC, m = e / BC;
            const int o = o0 + m, c = c0 + kk;
            a_tile[kk][m] = (o < p.O && c < p.C) ? to_f32(weight[conv_weight_index(p, o, c, tap)]) : 0.0f;
          }
          // b_tile[kk][my_p] = xpad at (c0 + kk, hi, wi) of this time tap.
          const bool in_bounds = my_p_valid && hi >= 0 && hi < p.H && wi >= 0 && wi < p.W;
          const float* x_at = in_bounds ? conv_input_pixel(p, frame, hi, wi) : frame.base;
#pragma unroll
          for (int i = 0; i < BC * BP / Traits::kThreads; ++i) {
            const int kk = tid / BP + i * (Traits::kThreads / BP);
            const int c = c0 + kk;
            b_tile[kk][my_p] = (in_bounds && c < p.C) ? x_at[c * frame.channel_stride] : 0.0f;
          }
          __syncthreads();

#pragma unroll
          for (int kk = 0; kk < BC; ++kk) {
            const float4 a = *reinterpret_cast<const float4*>(&a_tile[kk][ty * Traits::kPerThreadO]);
            const float4 b = *reinterpret_cast<const float4*>(&b_tile[kk][tx * Traits::kPerThreadP]);
            const float av[4] = {a.x, a.y, a.z, a.w}, bv[4] = {b.x, b.y, b.z, b.w};
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
              for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
          }
        }
      }
    }
  }

  // Epilogue: bias and the fused residual, then the 4 x 4 block into out[n, o, to, pixel].
#pragma unroll
  for (int i = 0; i < Traits::kPerThreadO; ++i) {
    const int o = o0 + ty * Traits::kPerThreadO + i;
    if (o >= p.O) continue;
    const float bias = load_bias(p, o);
#pragma unroll
    for (int j = 0; j < Traits::kPerThreadP; ++j) {
      const int px = p0 + tx * Traits::kPerThreadP + j;
      if (px >= frame_pixels) continue;
      const int64_t index = conv_out_index(p, n, o, to, px);
      static_cast<float*>(p.out)[index] = acc[i][j] + bias + conv_residual<float>(p, index);
    }
  }
}

// ---- launchers ----------------------------------------------------------------------------------------------------

template <typename Wt>
cudaError_t launch_typed(const ConvParams& p, cudaStream_t stream) {
  if (p.variant == ConvVariant::Naive) {
    const int64_t total = static_cast<int64_t>(p.N) * p.O * p.To * p.Ho * p.Wo;
    const int64_t blocks = (total + kNaiveThreads - 1) / kNaiveThreads;
    const unsigned grid = static_cast<unsigned>(blocks < (int64_t{1} << 20) ? blocks : (int64_t{1} << 20));
    conv_naive_kernel<Wt><<<grid, kNaiveThreads, 0, stream>>>(p);
    return cudaGetLastError();
  }
  using Traits = ConvTiledTraits;
  const int64_t pixel_tiles = (static_cast<int64_t>(p.Ho) * p.Wo + Traits::kBlockP - 1) / Traits::kBlockP;
  const int64_t channel_tiles = (p.O + Traits::kBlockO - 1) / Traits::kBlockO;
  const int64_t frames = static_cast<int64_t>(p.N) * p.To;
  if (pixel_tiles > 0x7fffffff || channel_tiles > 65535 || frames > 65535) return cudaErrorInvalidValue;
  const dim3 grid(static_cast<unsigned>(pixel_tiles), static_cast<unsigned>(channel_tiles),
                  static_cast<unsigned>(frames));
  conv_tiled_kernel<Wt><<<grid, Traits::kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_conv(const ConvParams& p, cudaStream_t stream) {
  if (p.N < 0 || p.O < 0 || p.To < 0 || p.Ho < 0 || p.Wo < 0) return cudaErrorInvalidValue;
  if (static_cast<int64_t>(p.N) * p.O * p.To * p.Ho * p.Wo == 0) return cudaSuccess;
  if (p.x == nullptr || p.weight == nullptr || p.out == nullptr) return cudaErrorInvalidValue;
  if (p.C < 1 || p.T < 1 || p.H < 1 || p.W < 1 || p.KT < 1 || p.KH < 1 || p.KW < 1) return cudaErrorInvalidValue;
  if (p.stride_t < 1 || p.stride_h < 1 || p.stride_w < 1) return cudaErrorInvalidValue;
  if (static_cast<int64_t>(p.Ho) * p.Wo > 0x7fffffff) return cudaErrorInvalidValue;  // pixel index is an int
  if (p.history_frames < 0 || p.history_frames > ConvParams::kMaxHistory || p.history_frames >= p.T)
    return cudaErrorInvalidValue;
  for (int i = 0; i < p.history_frames; ++i)
    if (p.history[i] == nullptr) return cudaErrorInvalidValue;
  if (p.upsample2x && (p.history_frames > 0 || p.H % 2 != 0 || p.W % 2 != 0)) return cudaErrorInvalidValue;
  if (p.variant == ConvVariant::TensorCore && conv_mma_supported()) return launch_conv_mma(p, stream);
  if (p.activation_type != ConvActivationType::F32) return cudaErrorInvalidValue;  // BF16 activations: v3 only
  switch (p.weight_type) {
    case ConvWeightType::BF16: return launch_typed<__nv_bfloat16>(p, stream);
    case ConvWeightType::F16: return launch_typed<__half>(p, stream);
    default: return launch_typed<float>(p, stream);
  }
}

}  // namespace showo2::cuda
