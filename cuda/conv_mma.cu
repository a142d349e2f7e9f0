// v3 convolution: v2's implicit GEMM (cuda/conv.cu) on BF16 tensor cores (mma.sync.m16n8k16, compute capability 8.0
// and newer). Same function, layouts and padding rules as v1/v2 (conv.h):
//
//   out[n, o, t, h, w] = bias[o] + sum_{c, i, j, k} weight[o, c, i, j, k] * xpad[n, c, t*st + i, h*sh + j, w*sw + k]
//
// Precision: the F32 activations and the weights (F32, BF16 or F16) are rounded to BF16 as they are staged; products
// and sums are F32 on the tensor cores, bias and output F32. On inputs that are BF16 values already (x rounded, BF16
// weights) the products are exact and v3 differs from v2 only in summation order; on general F32 activations each
// product carries the BF16 rounding of x (2^-9 relative), which is the accuracy this variant trades for speed.
//
// GEMM view, per thread block: C[o, pixel] (64 output channels x 64 output pixels of one output frame) = sum over
// (input-channel chunk of 32, tap) of A[o, c] = weight[o, c, tap] times B[c, pixel] = xpad[n, c, input position of
// pixel under tap]. Both tiles are staged in shared memory as BF16 rows of 32 channels (A: one row per output
// channel, B: one row per pixel), padded by 8 elements so the fragment loads hit 32 different banks. 4 warps in a
// 2 x 2 layout each own 32 channels x 32 pixels: 2 x 4 mma tiles of 16 x 8, 8 mma per 16-channel k-step.
// Fragment layouts (PTX ISA, m16n8k16 .bf16, group = lane / 4, quad = lane % 4): A reg0 (row group, k 2quad..+1),
// reg1 (row group+8), reg2/reg3 at k +8; B reg0 (k 2quad..+1, col group), reg1 (k +8); C c0,c1 (row group, cols
// 2quad..+1), c2,c3 (row group+8). With k contiguous in both tiles every fragment register is one 32-bit load.
// Time taps that read only padding for the block's output frame are skipped, as in v1/v2.
//
// Fusions and layouts as v1/v2 (cuda/conv_input.cuh): history frames read in place, upsampled input, residual
// epilogue; channels-first or channels-last activations and weights. Channels-last operands with C % 4 == 0 are
// staged with vector loads (a pixel's or an output channel's 32-channel run by 8 threads, 16 bytes each), which is
// what the layout is for: the channels-first gather reads one float per pixel per channel.
// Activations are F32 (rounded to BF16 as staged) or BF16 in memory (ConvActivationType: staged as they are, the
// output rounded to BF16 in the epilogue): only this variant reads BF16 activations.
// Not here yet: cp.async double-buffering. Checked by test/native/conv_cuda_test.cu and conv_fused_cuda_test.cu
// (v3 against the CPU backend); timed by bench/native/attention_cuda_bench.cu --only conv (--variants v3,v3cl).
#include "conv_mma.h"
#include "mma.cuh"
#include "conv_input.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <atomic>
#include <cstdint>

namespace showo2::cuda {

namespace {

using mma::load_u32;
using mma::mma_16x8x16;

using bf16 = __nv_bfloat16;

constexpr int kThreads = 128;  // 4 warps, 2 x 2 over (channels, pixels)
constexpr int kBlockO = 64;    // output channels per block
constexpr int kBlockP = 64;    // output pixels per block
constexpr int kBlockC = 32;    // input channels per staged step (two 16-wide mma k-steps)
constexpr int kPitch = kBlockC + 8;  // BF16 per shared row: 20 words, so 8 rows start 20 banks apart mod 32

__device__ __forceinline__ bf16 to_bf16(float x) { return __float2bfloat16_rn(x); }
__device__ __forceinline__ bf16 to_bf16(bf16 x) { return x; }
__device__ __forceinline__ bf16 to_bf16(__half x) { return __float2bfloat16_rn(__half2float(x)); }

__device__ __forceinline__ float bias_at(const ConvParams& p, int o) {
  if (p.bias == nullptr) return 0.0f;
  switch (p.bias_type) {
    case ConvWeightType::BF16: return __bfloat162float(static_cast<const bf16*>(p.bias)[o]);
    case ConvWeightType::F16: return __half2float(static_cast<const __half*>(p.bias)[o]);
    default: return static_cast<const float*>(p.bias)[o];
  }
}

// Four consecutive weights as BF16, packed for one 8-byte shared-memory store (the vector staging paths).
__device__ __forceinline__ uint2 pack_bf16x4(float a, float b, float c, float d) {
  const __nv_bfloat162 lo = __floats2bfloat162_rn(a, b), hi = __floats2bfloat162_rn(c, d);
  return make_uint2(*reinterpret_cast<const uint32_t*>(&lo), *reinterpret_cast<const uint32_t*>(&hi));
}
__device__ __forceinline__ uint2 load_bf16x4(const float* ptr) {
  const float4 v = *reinterpret_cast<const float4*>(ptr);
  return pack_bf16x4(v.x, v.y, v.z, v.w);
}
__device__ __forceinline__ uint2 load_bf16x4(const bf16* ptr) { return *reinterpret_cast<const uint2*>(ptr); }
// Activations come as float or bf16 (ConvActivationType); zero as their own type.
__device__ __forceinline__ uint2 load_bf16x4(const __half* ptr) {
  const uint2 raw = *reinterpret_cast<const uint2*>(ptr);
  const float2 lo = __half22float2(*reinterpret_cast<const __half2*>(&raw.x));
  const float2 hi = __half22float2(*reinterpret_cast<const __half2*>(&raw.y));
  return pack_bf16x4(lo.x, lo.y, hi.x, hi.y);
}

// kVecX: activations channels-last with C % 4 == 0 and 16-byte aligned frames (the launcher checks), so a thread
// stages 4 channels of one pixel with one float4 load and 8 threads cover a pixel's 32-channel run: coalesced. Else
// each thread walks one pixel's channels (coalesced across pixels for channels-first). kVecW: the same for a
// channels-last weight (4 consecutive input channels of one output channel and tap per load).
template <typename Wt, typename Ta, bool kVecX, bool kVecW>
__global__ void __launch_bounds__(kThreads) conv_mma_kernel(const ConvParams p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  __shared__ __align__(16) bf16 a_tile[kBlockO * kPitch];  // [o][c]
  __shared__ __align__(16) bf16 b_tile[kBlockP * kPitch];  // [pixel][c]
  constexpr int kGroups = kBlockC / 4;                     // 4-channel groups per staged row (vector paths)
  constexpr int kVecRows = kThreads / kGroups;             // rows staged per pass of the vector paths: 16

  const int frame_pixels = p.Ho * p.Wo;
  const int p0 = blockIdx.x * kBlockP, o0 = blockIdx.y * kBlockO;
  const int n = blockIdx.z / p.To, to = blockIdx.z % p.To;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, group = lane / 4, quad = lane % 4;
  const int warp_o = (warp / 2) * 32, warp_p = (warp % 2) * 32;
  const Wt* weight = static_cast<const Wt*>(p.weight);

  // The pixels this thread stages and their input positions before the tap offset. Scalar path: pixel tid % 64
  // (threads tid and tid + 64 share it, taking alternate channels). Vector path: pixels tid / 8 + 16 i, i < 4, each
  // for the channel group tid % 8.
  constexpr int kMyPixels = kVecX ? kBlockP / kVecRows : 1;
  int h_base[kMyPixels], w_base[kMyPixels];
  bool p_valid[kMyPixels];
#pragma unroll
  for (int i = 0; i < kMyPixels; ++i) {
    const int px = p0 + (kVecX ? tid / kGroups + kVecRows * i : tid % kBlockP);
    p_valid[i] = px < frame_pixels;
    const int ho = p_valid[i] ? px / p.Wo : 0, wo = p_valid[i] ? px % p.Wo : 0;
    h_base[i] = ho * p.stride_h - p.pad_top;
    w_base[i] = wo * p.stride_w - p.pad_left;
  }
  const int my_c = tid / kBlockP;  // scalar path: 0 or 1

  const int t_base = to * p.stride_t - p.pad_front;
  const int kt_first = max(0, -t_base);
  const int kt_last = min(p.KT, p.T - t_base);

  float acc[2][4][4];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) acc[i][j][0] = acc[i][j][1] = acc[i][j][2] = acc[i][j][3] = 0.0f;

  for (int c0 = 0; c0 < p.C; c0 += kBlockC) {
    for (int kt = kt_first; kt < kt_last; ++kt) {
      const ConvInputFrame<Ta> frame = conv_input_frame<Ta>(p, n, t_base + kt);  // x, history, or x upsampled
      for (int kh = 0; kh < p.KH; ++kh) {
        for (int kw = 0; kw < p.KW; ++kw) {
          const int tap = (kt * p.KH + kh) * p.KW + kw;
          __syncthreads();  // every warp is done with the previous step's tiles

          // a_tile[m][kk] = weight[o0 + m, c0 + kk, tap].
          if constexpr (kVecW) {
            const int cg = tid % kGroups, c = c0 + 4 * cg;
#pragma unroll
            for (int i = 0; i < kBlockO / kVecRows; ++i) {
              const int m = tid / kGroups + kVecRows * i, o = o0 + m;
              *reinterpret_cast<uint2*>(a_tile + m * kPitch + 4 * cg) =
                  o < p.O && c < p.C ? load_bf16x4(weight + conv_weight_index(p, o, c, tap)) : make_uint2(0, 0);
            }
          } else {
#pragma unroll 4
            for (int i = 0; i < kBlockO * kBlockC / kThreads; ++i) {  // consecutive threads: consecutive kk
              const int e = tid + i * kThreads;
              const int kk = e % kBlockC, m = e / kBlockC;
              const int o = o0 + m, c = c0 + kk;
              a_tile[m * kPitch + kk] = o < p.O && c < p.C ? to_bf16(weight[conv_weight_index(p, o, c, tap)])
                                                           : __ushort_as_bfloat16(0);
            }
          }
          // b_tile[pixel][kk] = xpad at (c0 + kk, input position of the pixel under this tap).
          if constexpr (kVecX) {
            const int cg = tid % kGroups, c = c0 + 4 * cg;
#pragma unroll
            for (int i = 0; i < kMyPixels; ++i) {
              const int hi = h_base[i] + kh, wi = w_base[i] + kw;
              const bool in_bounds = p_valid[i] && hi >= 0 && hi < p.H && wi >= 0 && wi < p.W && c < p.C;
              *reinterpret_cast<uint2*>(b_tile + (tid / kGroups + kVecRows * i) * kPitch + 4 * cg) =
                  in_bounds ? load_bf16x4(conv_input_pixel(p, frame, hi, wi) + c) : make_uint2(0, 0);
            }
          } else {
            const int hi = h_base[0] + kh, wi = w_base[0] + kw, my_p = tid % kBlockP;
            const bool in_bounds = p_valid[0] && hi >= 0 && hi < p.H && wi >= 0 && wi < p.W;
            const Ta* x_at = in_bounds ? conv_input_pixel(p, frame, hi, wi) : frame.base;
#pragma unroll 4
            for (int i = 0; i < kBlockC / 2; ++i) {
              const int kk = my_c + 2 * i, c = c0 + kk;
              b_tile[my_p * kPitch + kk] =
                  in_bounds && c < p.C ? to_bf16(x_at[c * frame.channel_stride]) : __ushort_as_bfloat16(0);
            }
          }
          __syncthreads();

#pragma unroll
          for (int ks = 0; ks < kBlockC / 16; ++ks) {
            uint32_t a[2][4];
#pragma unroll
            for (int mt = 0; mt < 2; ++mt) {
              const bf16* row = a_tile + (warp_o + mt * 16 + group) * kPitch + ks * 16 + 2 * quad;
              a[mt][0] = load_u32(row);
              a[mt][1] = load_u32(row + 8 * kPitch);
              a[mt][2] = load_u32(row + 8);
              a[mt][3] = load_u32(row + 8 * kPitch + 8);
            }
#pragma unroll
            for (int nt = 0; nt < 4; ++nt) {
              const bf16* col = b_tile + (warp_p + nt * 8 + group) * kPitch + ks * 16 + 2 * quad;
              const uint32_t b0 = load_u32(col), b1 = load_u32(col + 8);
#pragma unroll
              for (int mt = 0; mt < 2; ++mt) mma_16x8x16(acc[mt][nt], a[mt], b0, b1);
            }
          }
        }
      }
    }
  }

  // Epilogue: bias and the fused residual, then out[n, o, to, pixel] for this thread's fragment elements.
#pragma unroll
  for (int mt = 0; mt < 2; ++mt)
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int o = o0 + warp_o + mt * 16 + group + 8 * half;
      if (o >= p.O) continue;
      const float bias = bias_at(p, o);
#pragma unroll
      for (int nt = 0; nt < 4; ++nt)
#pragma unroll
        for (int j = 0; j < 2; ++j) {
          const int px = p0 + warp_p + nt * 8 + 2 * quad + j;
          if (px >= frame_pixels) continue;
          const int64_t index = conv_out_index(p, n, o, to, px);
          conv_store(p, index, acc[mt][nt][2 * half + j] + bias + conv_residual<Ta>(p, index));
        }
    }
#else
  __trap();  // never launched below compute capability 8.0 (conv_mma_supported)
#endif
}

bool aligned_to(const void* ptr, uintptr_t bytes) { return reinterpret_cast<uintptr_t>(ptr) % bytes == 0; }

// The vector staging of x: channels-last, whole 4-channel groups, and every frame base aligned to 4 elements (x's,
// and each history frame's for every batch item).
template <typename Ta>
bool vector_x_ok(const ConvParams& p) {
  constexpr uintptr_t kBytes = 4 * sizeof(Ta);
  if (!p.channels_last || p.C % 4 != 0 || !aligned_to(p.x, kBytes)) return false;
  for (int i = 0; i < p.history_frames; ++i)
    if (!aligned_to(p.history[i], kBytes) || p.history_stride_n[i] % 4 != 0) return false;
  return true;
}

template <typename Wt>
bool vector_w_ok(const ConvParams& p) {
  return p.weight_channels_last && p.C % 4 == 0 && aligned_to(p.weight, 4 * sizeof(Wt));
}

template <typename Wt, typename Ta, bool kVecX, bool kVecW>
cudaError_t launch_variant(const ConvParams& p, const dim3& grid, cudaStream_t stream) {
  conv_mma_kernel<Wt, Ta, kVecX, kVecW><<<grid, kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

template <typename Wt, typename Ta>
cudaError_t launch_typed(const ConvParams& p, cudaStream_t stream) {
  const int64_t pixel_tiles = (static_cast<int64_t>(p.Ho) * p.Wo + kBlockP - 1) / kBlockP;
  const int64_t channel_tiles = (p.O + kBlockO - 1) / kBlockO;
  const int64_t frames = static_cast<int64_t>(p.N) * p.To;
  if (pixel_tiles > 0x7fffffff || channel_tiles > 65535 || frames > 65535) return cudaErrorInvalidValue;
  const dim3 grid(static_cast<unsigned>(pixel_tiles), static_cast<unsigned>(channel_tiles),
                  static_cast<unsigned>(frames));
  const bool vec_x = vector_x_ok<Ta>(p), vec_w = vector_w_ok<Wt>(p);
  if (vec_x && vec_w) return launch_variant<Wt, Ta, true, true>(p, grid, stream);
  if (vec_x) return launch_variant<Wt, Ta, true, false>(p, grid, stream);
  if (vec_w) return launch_variant<Wt, Ta, false, true>(p, grid, stream);
  return launch_variant<Wt, Ta, false, false>(p, grid, stream);
}

template <typename Ta>
cudaError_t launch_activation_typed(const ConvParams& p, cudaStream_t stream) {
  switch (p.weight_type) {
    case ConvWeightType::BF16: return launch_typed<bf16, Ta>(p, stream);
    case ConvWeightType::F16: return launch_typed<__half, Ta>(p, stream);
    default: return launch_typed<float, Ta>(p, stream);
  }
}

}  // namespace

bool conv_mma_supported() {
  constexpr int kMaxDevices = 64;
  static std::atomic<int> cache[kMaxDevices];  // compute major + 1; 0 = not read yet
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess || device < 0) return false;
  int major = device < kMaxDevices ? cache[device].load(std::memory_order_relaxed) - 1 : -1;
  if (major < 0) {
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess) return false;
    if (device < kMaxDevices) cache[device].store(major + 1, std::memory_order_relaxed);
  }
  return major >= 8;
}

cudaError_t launch_conv_mma(const ConvParams& p, cudaStream_t stream) {
  if (p.activation_type == ConvActivationType::BF16) return launch_activation_typed<bf16>(p, stream);
  return launch_activation_typed<float>(p, stream);
}

}  // namespace showo2::cuda
