// Data movement without arithmetic on the GPU: strided copy and nearest-neighbour 2x upsampling.
//
//   copy:               dst[i0, ..., ik] = src[i0, ..., ik]           (any strides on both sides, rank <= 6; F32 or
//                                                                     BF16 on each side, converting between them)
//   upsample_nearest2x: out[p, h, w] = x[p, h / 2, w / 2]             (x [N, C, (T,) H, W] -> [..., 2H, 2W])
// Spec §3.1: the Wan VAE's causal frame caches, concatenation along T into a slice of a larger tensor, the NCTHW <->
// token-major change around its per-frame attention (copy), and its Resample 'upsample' step (upsample).
// Precision: exact (moves bits), except F32 -> BF16 copies, which round to nearest even.
// Variants:
//   * copy: the launcher first drops size-1 dims and folds dims that are back to back on both sides. A copy that
//     folds to one unit-stride run on both sides is a cudaMemcpyAsync (device to device); anything else is one
//     thread per element, threads along the (folded) innermost dim, so the side with a unit inner stride is
//     coalesced. A tiled shared-memory transpose would also coalesce the other side of an NCTHW <-> token-major
//     change; it is the next variant to add if the VAE's layout changes show up in a profile.
//   * upsample: one thread per input element writes a float2 into each of its two output rows (8 B-aligned output),
//     or four scalars for a misaligned view.
// Checked by test/native/layout_cuda_test.cu against cpu::CpuBackend.
#include "layout.h"

#include <cuda_bf16.h>

#include <algorithm>

#include "cuda_check.h"
#include "kernel_utils.cuh"

namespace showo2::cuda {

namespace {

constexpr int kLayoutBlock = 256;

// ================================================= device code ======================================================

__device__ __forceinline__ void convert(float v, float* out) { *out = v; }
__device__ __forceinline__ void convert(float v, __nv_bfloat16* out) { *out = __float2bfloat16_rn(v); }
__device__ __forceinline__ void convert(__nv_bfloat16 v, float* out) { *out = __bfloat162float(v); }
__device__ __forceinline__ void convert(__nv_bfloat16 v, __nv_bfloat16* out) { *out = v; }

template <typename Ts, typename Td>
__global__ void __launch_bounds__(kLayoutBlock) copy_kernel(const LayoutParams p, int64_t total) {
  const Ts* src = reinterpret_cast<const Ts*>(p.src);
  Td* dst = reinterpret_cast<Td*>(p.dst);
  for (int64_t e = int64_t(blockIdx.x) * kLayoutBlock + threadIdx.x; e < total;
       e += int64_t(gridDim.x) * kLayoutBlock) {
    int64_t rest = e, s_off = 0, d_off = 0;
    for (int d = p.rank - 1; d >= 0; --d) {
      const int64_t i = rest % p.size[d];
      rest /= p.size[d];
      s_off += i * p.src_stride[d];
      d_off += i * p.dst_stride[d];
    }
    convert(src[s_off], dst + d_off);
  }
}

template <bool kPairs>
__global__ void __launch_bounds__(kLayoutBlock) upsample_nearest2x_kernel(const LayoutParams p) {
  const int64_t W = p.width, total = p.planes * p.height * W;
  for (int64_t e = int64_t(blockIdx.x) * kLayoutBlock + threadIdx.x; e < total;
       e += int64_t(gridDim.x) * kLayoutBlock) {
    const int64_t w = e % W, ph = e / W;  // ph = plane * H + h: output rows 2ph and 2ph + 1 of the same plane
    const float v = p.src[e];
    float* o0 = p.dst + (2 * ph) * (2 * W) + 2 * w;
    float* o1 = o0 + 2 * W;
    if constexpr (kPairs) {
      *reinterpret_cast<float2*>(o0) = make_float2(v, v);
      *reinterpret_cast<float2*>(o1) = make_float2(v, v);
    } else {
      o0[0] = o0[1] = o1[0] = o1[1] = v;
    }
  }
}

// ================================================= launchers ========================================================

// Highest element offset a view addresses (strides are non-negative).
int64_t last_offset(const LayoutParams& p, const int64_t* stride) {
  int64_t last = 0;
  for (int d = 0; d < p.rank; ++d) last += (p.size[d] - 1) * stride[d];
  return last;
}

// Drops size-1 dims and merges dim d into d-1 where both sides are back to back.
LayoutParams fold_copy_dims(const LayoutParams& in) {
  LayoutParams out = in;
  out.rank = 0;
  for (int d = 0; d < in.rank; ++d) {
    if (in.size[d] == 1) continue;
    const int r = out.rank;
    if (r > 0 && out.src_stride[r - 1] == in.size[d] * in.src_stride[d] &&
        out.dst_stride[r - 1] == in.size[d] * in.dst_stride[d]) {
      out.size[r - 1] *= in.size[d];
      out.src_stride[r - 1] = in.src_stride[d];
      out.dst_stride[r - 1] = in.dst_stride[d];
      continue;
    }
    out.size[r] = in.size[d];
    out.src_stride[r] = in.src_stride[d];
    out.dst_stride[r] = in.dst_stride[d];
    ++out.rank;
  }
  return out;
}

}  // namespace

void launch_copy(const LayoutParams& p, cudaStream_t stream) {
  if (p.rank < 0 || p.rank > kMaxCopyRank)
    fail(ErrorCode::ShapeMismatch, "copy: at most ", kMaxCopyRank, " dimensions are supported on the GPU, got ",
         p.rank);
  int64_t total = 1;
  for (int d = 0; d < p.rank; ++d) {
    if (p.size[d] < 0 || p.src_stride[d] < 0 || p.dst_stride[d] < 0)
      fail(ErrorCode::ShapeMismatch, "copy: negative size or stride");
    total *= p.size[d];
  }
  if (total == 0) return;
  if (p.src == nullptr || p.dst == nullptr) fail(ErrorCode::InvalidArgument, "copy: null device pointer");
  bool same_view = p.src == p.dst;
  for (int d = 0; d < p.rank && same_view; ++d)
    same_view = p.size[d] == 1 || p.src_stride[d] == p.dst_stride[d];
  if (same_view) return;
  for (DType t : {p.src_dtype, p.dst_dtype})
    if (t != DType::F32 && t != DType::BF16) fail(ErrorCode::UnsupportedDtype, "copy: F32 or BF16 only on the GPU");
  const size_t s_size = dtype_size(p.src_dtype), d_size = dtype_size(p.dst_dtype);
  // A conservative test on the address hulls (as on the CPU): interleaved views are rejected too; no caller needs
  // them, and an overlapping copy would depend on thread order.
  const auto* s_lo = reinterpret_cast<const char*>(p.src);
  const auto* d_lo = reinterpret_cast<const char*>(p.dst);
  const char* s_hi = s_lo + last_offset(p, p.src_stride) * static_cast<int64_t>(s_size) + (s_size - 1);
  const char* d_hi = d_lo + last_offset(p, p.dst_stride) * static_cast<int64_t>(d_size) + (d_size - 1);
  if (!(s_hi < d_lo || d_hi < s_lo)) fail(ErrorCode::InvalidArgument, "copy: src and dst overlap in memory");
  const LayoutParams f = fold_copy_dims(p);
  if (p.src_dtype == p.dst_dtype && (f.rank == 0 || (f.rank == 1 && f.src_stride[0] == 1 && f.dst_stride[0] == 1))) {
    SHOWO2_CUDA_CHECK(cudaMemcpyAsync(p.dst, p.src, static_cast<size_t>(total) * s_size, cudaMemcpyDeviceToDevice,
                                      stream));
    return;
  }
  const unsigned int grid = blocks_for(total, kLayoutBlock);
  const bool src_bf16 = p.src_dtype == DType::BF16, dst_bf16 = p.dst_dtype == DType::BF16;
  if (src_bf16 && dst_bf16)
    copy_kernel<__nv_bfloat16, __nv_bfloat16><<<grid, kLayoutBlock, 0, stream>>>(f, total);
  else if (src_bf16)
    copy_kernel<__nv_bfloat16, float><<<grid, kLayoutBlock, 0, stream>>>(f, total);
  else if (dst_bf16)
    copy_kernel<float, __nv_bfloat16><<<grid, kLayoutBlock, 0, stream>>>(f, total);
  else
    copy_kernel<float, float><<<grid, kLayoutBlock, 0, stream>>>(f, total);
  SHOWO2_CUDA_CHECK_LAUNCH();
}

void launch_upsample_nearest2x(const LayoutParams& p, cudaStream_t stream) {
  if (p.planes < 0 || p.height < 0 || p.width < 0) fail(ErrorCode::ShapeMismatch, "upsample_nearest2x: negative size");
  const int64_t total = p.planes * p.height * p.width;
  if (total == 0) return;
  if (p.src == nullptr || p.dst == nullptr) fail(ErrorCode::InvalidArgument, "upsample_nearest2x: null device pointer");
  const bool pairs = (reinterpret_cast<uintptr_t>(p.dst) & 7u) == 0;
  SHOWO2_BOOL_SWITCH(pairs, kPairs, [&] {
    upsample_nearest2x_kernel<kPairs><<<blocks_for(total, kLayoutBlock), kLayoutBlock, 0, stream>>>(p);
  });
  SHOWO2_CUDA_CHECK_LAUNCH();
}

}  // namespace showo2::cuda
