// Normalisations on the GPU: RMSNorm, LayerNorm and softmax over the last dimension, and the Wan VAE's channel RMS
// norm.
//
//   rms_norm:         y[r, i] = x[r, i] / sqrt(mean_i(x[r, :]^2) + eps) * weight[i]
//   layer_norm:       y[r, i] = (x[r, i] - mean) / sqrt(var + eps) * weight[i] + bias[i]        (biased variance)
//   softmax:          y[r, i] = exp(x[r, i] - max_r) / sum_j exp(x[r, j] - max_r)
//   channel_rms_norm: y[n, c, s] = x[n, c, s] / max(||x[n, :, s]||_2, 1e-12) * sqrt(C) * gamma[c]
//                     (then silu(y) when NormParams::silu_after: the VAE's norm + SiLU in one pass)
// Shapes: x, out [..., C] as `rows` rows of C floats (last dim contiguous, leading strides free, see RowMap);
// channel norm: dense [N, C, S] or channels-last [N, S, C]. weight/bias/gamma [C] F32, BF16 or F16 (null = 1 / 0). out may alias x.
// Spec: §2 (Qwen2 RMSNorm, eps 1e-6), §3.4 (SigLIP LayerNorm), §3.1 (Wan RMS_norm), §12 numerics ("fp32
// RMSNorm/LayerNorm/softmax").
// Precision: fp32 in, fp32 statistics (per-thread fp32 partial sums, then a warp/block tree: the error grows with
// log2 of the row, below the CPU's 8-lane chains), fp32 out. Parameters are widened exactly. The output roundings
// follow the CPU twin (native/core/cpu/norm.cpp): (x * inv_rms) * w; ((x - mean) * inv_std) * w + b.
// Variants (one kernel body, two template facts chosen by the launcher):
//   * row owner: a warp per row (C <= 1024: 8 rows per 256-thread block, shuffles only), or a block of 128/256/512
//     threads per row for the wide rows (C up to 4736 in Show-o2) with a shared-memory step between warps;
//   * vector width: float4 when C % 4 == 0 and every row start is 16-byte aligned, else scalar (odd C, views).
//   The passes re-read the row instead of keeping it in registers: a row is at most ~19 KB, so the second read hits
//   L1/L2 and DRAM traffic stays one read and one write per element, without a register budget that depends on C.
// Checked by test/native/norm_cuda_test.cu against cpu::CpuBackend; timed by bench/native/pointwise_cuda_bench.cu
// (`pointwise_cuda_bench --json`, case rms_norm).
#include "norm.h"

#include <cuda_bf16.h>

#include <cmath>

#include "cuda_check.h"
#include "kernel_utils.cuh"

namespace showo2::cuda {

namespace {

// Who owns a row: kRowThreads == 32 is a warp per row, more is a whole block per row.
template <int kRowThreads>
struct RowNormTraits {
  static constexpr int kRowsPerBlock = kRowThreads == 32 ? 8 : 1;
  static constexpr int kBlockThreads = kRowThreads * kRowsPerBlock;
  static_assert(kRowThreads == 32 || kRowThreads == 128 || kRowThreads == 256 || kRowThreads == 512,
                "row owner sizes: a warp, or a block of 128/256/512");
  static_assert(kBlockThreads <= 1024, "a block holds at most 1024 threads");
};

constexpr int kChannelBlock = 256;  // channel norm: positions per block (one thread each, coalesced along S)

// ================================================= device code ======================================================

template <int kRowThreads, int kVec>
__global__ void __launch_bounds__(RowNormTraits<kRowThreads>::kBlockThreads)
    rms_norm_kernel(const NormParams p) {
  using Traits = RowNormTraits<kRowThreads>;
  for (int64_t row = int64_t(blockIdx.x) * Traits::kRowsPerBlock + threadIdx.y; row < p.rows;
       row += int64_t(gridDim.x) * Traits::kRowsPerBlock) {
    const float* xr = p.x + p.x_rows.offset(row);
    float* yr = p.out + p.out_rows.offset(row);
    float ss = 0.0f;
    for (int64_t i = int64_t(threadIdx.x) * kVec; i < p.cols; i += kRowThreads * kVec) {
      const VecF<kVec> v = load_vec<kVec>(xr + i);
#pragma unroll
      for (int j = 0; j < kVec; ++j) ss += v.v[j] * v.v[j];
    }
    ss = row_sum<kRowThreads>(ss);
    const float inv_rms = 1.0f / sqrtf(ss / static_cast<float>(p.cols) + p.eps);
    for (int64_t i = int64_t(threadIdx.x) * kVec; i < p.cols; i += kRowThreads * kVec) {
      VecF<kVec> v = load_vec<kVec>(xr + i);
#pragma unroll
      for (int j = 0; j < kVec; ++j) v.v[j] = (v.v[j] * inv_rms) * load_param(p.weight, p.weight_dtype, i + j, 1.0f);
      store_vec<kVec>(yr + i, v);
    }
  }
}

template <int kRowThreads, int kVec>
__global__ void __launch_bounds__(RowNormTraits<kRowThreads>::kBlockThreads)
    layer_norm_kernel(const NormParams p) {
  using Traits = RowNormTraits<kRowThreads>;
  for (int64_t row = int64_t(blockIdx.x) * Traits::kRowsPerBlock + threadIdx.y; row < p.rows;
       row += int64_t(gridDim.x) * Traits::kRowsPerBlock) {
    const float* xr = p.x + p.x_rows.offset(row);
    float* yr = p.out + p.out_rows.offset(row);
    float s = 0.0f;
    for (int64_t i = int64_t(threadIdx.x) * kVec; i < p.cols; i += kRowThreads * kVec) {
      const VecF<kVec> v = load_vec<kVec>(xr + i);
#pragma unroll
      for (int j = 0; j < kVec; ++j) s += v.v[j];
    }
    const float mean = row_sum<kRowThreads>(s) / static_cast<float>(p.cols);
    // Second pass over the deviations (not E[x^2] - mean^2, which cancels catastrophically for rows far from 0).
    float sq = 0.0f;
    for (int64_t i = int64_t(threadIdx.x) * kVec; i < p.cols; i += kRowThreads * kVec) {
      const VecF<kVec> v = load_vec<kVec>(xr + i);
#pragma unroll
      for (int j = 0; j < kVec; ++j) {
        const float d = v.v[j] - mean;
        sq += d * d;
      }
    }
    const float var = row_sum<kRowThreads>(sq) / static_cast<float>(p.cols);
    const float inv_std = 1.0f / sqrtf(var + p.eps);
    for (int64_t i = int64_t(threadIdx.x) * kVec; i < p.cols; i += kRowThreads * kVec) {
      VecF<kVec> v = load_vec<kVec>(xr + i);
#pragma unroll
      for (int j = 0; j < kVec; ++j) {
        // Explicit roundings so the GPU cannot contract (x - mean) * inv_std * w + b into an fma the CPU twin lacks.
        float y = __fmul_rn(v.v[j] - mean, inv_std);
        y = __fmul_rn(y, load_param(p.weight, p.weight_dtype, i + j, 1.0f));
        v.v[j] = __fadd_rn(y, load_param(p.bias, p.bias_dtype, i + j, 0.0f));
      }
      store_vec<kVec>(yr + i, v);
    }
  }
}

template <int kRowThreads, int kVec>
__global__ void __launch_bounds__(RowNormTraits<kRowThreads>::kBlockThreads)
    softmax_kernel(const NormParams p) {
  using Traits = RowNormTraits<kRowThreads>;
  for (int64_t row = int64_t(blockIdx.x) * Traits::kRowsPerBlock + threadIdx.y; row < p.rows;
       row += int64_t(gridDim.x) * Traits::kRowsPerBlock) {
    const float* xr = p.x + p.x_rows.offset(row);
    float* yr = p.out + p.out_rows.offset(row);
    float m = -INFINITY;
    for (int64_t i = int64_t(threadIdx.x) * kVec; i < p.cols; i += kRowThreads * kVec) {
      const VecF<kVec> v = load_vec<kVec>(xr + i);
#pragma unroll
      for (int j = 0; j < kVec; ++j) m = max_nan(m, v.v[j]);
    }
    m = row_max<kRowThreads>(m);  // NaN anywhere in the row makes every output NaN, as in torch and on the CPU
    float s = 0.0f;
    for (int64_t i = int64_t(threadIdx.x) * kVec; i < p.cols; i += kRowThreads * kVec) {
      const VecF<kVec> v = load_vec<kVec>(xr + i);
#pragma unroll
      for (int j = 0; j < kVec; ++j) s += expf(v.v[j] - m);
    }
    const float inv_sum = 1.0f / row_sum<kRowThreads>(s);
    for (int64_t i = int64_t(threadIdx.x) * kVec; i < p.cols; i += kRowThreads * kVec) {
      VecF<kVec> v = load_vec<kVec>(xr + i);
#pragma unroll
      for (int j = 0; j < kVec; ++j) v.v[j] = expf(v.v[j] - m) * inv_sum;
      store_vec<kVec>(yr + i, v);
    }
  }
}

// Element conversions of the channel norm (F32 or BF16 activations), and runs of kVec elements (kVec = 4: one
// float4 or one 8-byte bf16 load/store; the launcher checks the alignment).
__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
template <typename T> __device__ __forceinline__ T from_float(float v);
template <> __device__ __forceinline__ float from_float<float>(float v) { return v; }
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

template <int kVec>
__device__ __forceinline__ void load_run(const float* p, float (&v)[kVec]) {
  const VecF<kVec> r = load_vec<kVec>(p);
#pragma unroll
  for (int j = 0; j < kVec; ++j) v[j] = r.v[j];
}
template <int kVec>
__device__ __forceinline__ void load_run(const __nv_bfloat16* p, float (&v)[kVec]) {
  if constexpr (kVec == 4) {
    const uint2 raw = *reinterpret_cast<const uint2*>(p);
    const float2 lo = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&raw.x));
    const float2 hi = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&raw.y));
    v[0] = lo.x, v[1] = lo.y, v[2] = hi.x, v[3] = hi.y;
  } else {
#pragma unroll
    for (int j = 0; j < kVec; ++j) v[j] = __bfloat162float(p[j]);
  }
}
template <int kVec>
__device__ __forceinline__ void store_run(float* p, const float (&v)[kVec]) {
  VecF<kVec> r;
#pragma unroll
  for (int j = 0; j < kVec; ++j) r.v[j] = v[j];
  store_vec<kVec>(p, r);
}
template <int kVec>
__device__ __forceinline__ void store_run(__nv_bfloat16* p, const float (&v)[kVec]) {
  if constexpr (kVec == 4) {
    const __nv_bfloat162 lo = __floats2bfloat162_rn(v[0], v[1]), hi = __floats2bfloat162_rn(v[2], v[3]);
    *reinterpret_cast<uint2*>(p) =
        make_uint2(*reinterpret_cast<const uint32_t*>(&lo), *reinterpret_cast<const uint32_t*>(&hi));
  } else {
#pragma unroll
    for (int j = 0; j < kVec; ++j) p[j] = __float2bfloat16_rn(v[j]);
  }
}

// One thread per (n, s) position walks the C channels (stride S, so a warp reads 32 consecutive positions of one
// channel: coalesced). Four interleaved partial sums shorten the fp32 chain over C (<= 384 in the VAE).
template <typename T>
__global__ void __launch_bounds__(kChannelBlock) channel_rms_norm_kernel(const NormParams p) {
  const int64_t C = p.cols, S = p.positions;
  const float scale = sqrtf(static_cast<float>(C));
  const T* x = reinterpret_cast<const T*>(p.x);
  T* out = reinterpret_cast<T*>(p.out);
  for (int64_t n = blockIdx.y; n < p.rows; n += gridDim.y)
    for (int64_t s = int64_t(blockIdx.x) * kChannelBlock + threadIdx.x; s < S; s += int64_t(gridDim.x) * kChannelBlock) {
      const T* xs = x + n * C * S + s;
      T* ys = out + n * C * S + s;
      float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
      int64_t c = 0;
      for (; c + 4 <= C; c += 4)
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const float v = to_float(xs[(c + j) * S]);
          acc[j] += v * v;
        }
      for (; c < C; ++c) acc[0] += to_float(xs[c * S]) * to_float(xs[c * S]);
      const float denom = fmaxf(sqrtf((acc[0] + acc[1]) + (acc[2] + acc[3])), 1e-12f);  // F.normalize's eps
      for (c = 0; c < C; ++c) {
        const float y = ((to_float(xs[c * S]) / denom) * scale) * load_as_float(p.weight, p.weight_dtype, c);
        ys[c * S] = from_float<T>(p.silu_after ? y / (1.0f + expf(-y)) : y);  // silu as cuda/activation.cu
      }
    }
}

// Channels-last: each position's C channels are one contiguous run, so a warp owns a position (8 per 256-thread
// block) and its lanes read the run together (float4 when kVec = 4), summing with shuffles: the row-norm pattern
// above with the Wan formula. C is at most 384 in the VAE, 3 float4 per lane.
template <typename T, int kVec>
__global__ void __launch_bounds__(kChannelBlock) channel_rms_norm_last_kernel(const NormParams p) {
  constexpr int kRowsPerBlock = kChannelBlock / 32;
  const int64_t C = p.cols, rows = p.rows * p.positions;
  const float scale = sqrtf(static_cast<float>(C));
  const int lane = threadIdx.x % 32;
  for (int64_t row = int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / 32; row < rows;
       row += int64_t(gridDim.x) * kRowsPerBlock) {
    const T* xr = reinterpret_cast<const T*>(p.x) + row * C;
    T* yr = reinterpret_cast<T*>(p.out) + row * C;
    float ss = 0.0f;
    for (int64_t i = int64_t(lane) * kVec; i < C; i += 32 * kVec) {
      float v[kVec];
      load_run<kVec>(xr + i, v);
#pragma unroll
      for (int j = 0; j < kVec; ++j) ss += v[j] * v[j];
    }
    const float denom = fmaxf(sqrtf(row_sum<32>(ss)), 1e-12f);  // F.normalize's eps
    for (int64_t i = int64_t(lane) * kVec; i < C; i += 32 * kVec) {
      float v[kVec];
      load_run<kVec>(xr + i, v);
#pragma unroll
      for (int j = 0; j < kVec; ++j) {
        const float y = ((v[j] / denom) * scale) * load_as_float(p.weight, p.weight_dtype, i + j);
        v[j] = p.silu_after ? y / (1.0f + expf(-y)) : y;
      }
      store_run<kVec>(yr + i, v);
    }
  }
}

// ================================================= launchers ========================================================

// float4 access is legal when every row start is 16-byte aligned and C splits into whole vectors.
bool rows_allow_vec4(const float* base, const RowMap& rows, int64_t cols) {
  if (cols % 4 != 0 || !aligned16(base)) return false;
  for (int d = 0; d < rows.rank; ++d)
    if (rows.stride[d] % 4 != 0) return false;
  return true;
}

void check_row_params(const NormParams& p, const char* op) {
  if (p.rows < 0 || p.cols < 0) fail(ErrorCode::ShapeMismatch, op, ": negative size");
  if (p.rows > 0 && p.cols > 0 && (p.x == nullptr || p.out == nullptr))
    fail(ErrorCode::InvalidArgument, op, ": null device pointer");
}

// Row owner by row length: a warp up to 1024 (<= 32 floats per lane), then blocks sized to keep ~8-16 floats per
// thread, which is enough loads in flight per thread to cover DRAM latency without starving the grid of blocks.
template <template <int, int> class Launch>
void dispatch_rows(const NormParams& p, cudaStream_t stream) {
  const bool vec4 = rows_allow_vec4(p.x, p.x_rows, p.cols) && rows_allow_vec4(p.out, p.out_rows, p.cols);
  SHOWO2_VEC_SWITCH(vec4, kVec, [&] {
    if (p.cols <= 1024) Launch<32, kVec>::run(p, stream);
    else if (p.cols <= 2048) Launch<128, kVec>::run(p, stream);
    else if (p.cols <= 4096) Launch<256, kVec>::run(p, stream);
    else Launch<512, kVec>::run(p, stream);
  });
}

template <int kRowThreads>
dim3 row_grid(const NormParams& p) {
  return dim3(blocks_for(p.rows, RowNormTraits<kRowThreads>::kRowsPerBlock));
}
template <int kRowThreads>
dim3 row_block() {
  return dim3(kRowThreads, RowNormTraits<kRowThreads>::kRowsPerBlock);
}

template <int kRowThreads, int kVec>
struct LaunchRmsNorm {
  static void run(const NormParams& p, cudaStream_t stream) {
    rms_norm_kernel<kRowThreads, kVec><<<row_grid<kRowThreads>(p), row_block<kRowThreads>(), 0, stream>>>(p);
  }
};
template <int kRowThreads, int kVec>
struct LaunchLayerNorm {
  static void run(const NormParams& p, cudaStream_t stream) {
    layer_norm_kernel<kRowThreads, kVec><<<row_grid<kRowThreads>(p), row_block<kRowThreads>(), 0, stream>>>(p);
  }
};
template <int kRowThreads, int kVec>
struct LaunchSoftmax {
  static void run(const NormParams& p, cudaStream_t stream) {
    softmax_kernel<kRowThreads, kVec><<<row_grid<kRowThreads>(p), row_block<kRowThreads>(), 0, stream>>>(p);
  }
};

}  // namespace

void launch_rms_norm(const NormParams& p, cudaStream_t stream) {
  check_row_params(p, "rms_norm");
  if (p.rows == 0 || p.cols == 0) return;
  dispatch_rows<LaunchRmsNorm>(p, stream);
  SHOWO2_CUDA_CHECK_LAUNCH();
}

void launch_layer_norm(const NormParams& p, cudaStream_t stream) {
  check_row_params(p, "layer_norm");
  if (p.rows == 0 || p.cols == 0) return;
  dispatch_rows<LaunchLayerNorm>(p, stream);
  SHOWO2_CUDA_CHECK_LAUNCH();
}

void launch_softmax(const NormParams& p, cudaStream_t stream) {
  check_row_params(p, "softmax");
  if (p.rows == 0 || p.cols == 0) return;
  dispatch_rows<LaunchSoftmax>(p, stream);
  SHOWO2_CUDA_CHECK_LAUNCH();
}

void launch_channel_rms_norm(const NormParams& p, cudaStream_t stream) {
  check_row_params(p, "channel_rms_norm");
  if (p.positions < 0) fail(ErrorCode::ShapeMismatch, "channel_rms_norm: negative size");
  if (p.weight == nullptr) fail(ErrorCode::InvalidArgument, "channel_rms_norm: gamma is required");
  if (p.rows == 0 || p.cols == 0 || p.positions == 0) return;
  if (p.io_dtype != DType::F32 && p.io_dtype != DType::BF16)
    fail(ErrorCode::UnsupportedDtype, "channel_rms_norm: x/out must be F32 or BF16 on the GPU");
  const bool bf16 = p.io_dtype == DType::BF16;
  if (p.channels_last) {
    const uintptr_t align = bf16 ? 8 : 16;  // 4 elements
    const bool vec4 = p.cols % 4 == 0 && reinterpret_cast<uintptr_t>(p.x) % align == 0 &&
                      reinterpret_cast<uintptr_t>(p.out) % align == 0;
    const unsigned int grid = blocks_for(p.rows * p.positions, kChannelBlock / 32);
    SHOWO2_VEC_SWITCH(vec4, kVec, [&] {
      if (bf16)
        channel_rms_norm_last_kernel<__nv_bfloat16, kVec><<<grid, kChannelBlock, 0, stream>>>(p);
      else
        channel_rms_norm_last_kernel<float, kVec><<<grid, kChannelBlock, 0, stream>>>(p);
    });
    SHOWO2_CUDA_CHECK_LAUNCH();
    return;
  }
  const dim3 grid(blocks_for(p.positions, kChannelBlock), static_cast<unsigned int>(p.rows < 65535 ? p.rows : 65535));
  if (bf16)
    channel_rms_norm_kernel<__nv_bfloat16><<<grid, kChannelBlock, 0, stream>>>(p);
  else
    channel_rms_norm_kernel<float><<<grid, kChannelBlock, 0, stream>>>(p);
  SHOWO2_CUDA_CHECK_LAUNCH();
}

}  // namespace showo2::cuda
