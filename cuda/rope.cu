// Rotate-half rotary position embedding in place on the GPU.
//
//   for p = position_offset + l, i < D/2, x1 = x[b, l, h, i], x2 = x[b, l, h, i + D/2]:
//     x[b, l, h, i]       = x1 * cos[p, i] - x2 * sin[p, i]
//     x[b, l, h, i + D/2] = x2 * cos[p, i] + x1 * sin[p, i]
// Shapes: x [B, L, H, D] F32 with the last dim contiguous (leading strides free); cos/sin [P, D/2] F32 contiguous.
// Spec §5.2: both Show-o2 RoPEs (Qwen2.5 LLM: D 128, theta 1e6; flow head: D 64, theta 5e5 with the Llama-3
// frequency remap) are this rotation with different tables, so one kernel serves both.
// Precision: fp32. Each product and sum is rounded separately (__fmul_rn/__fadd_rn), as transformers' eager
// `q * cos + rotate_half(q) * sin` and the CPU twin (native/core/cpu/rope.cpp) do, so the result is bitwise equal to
// the CPU's instead of differing by a contracted fma.
// Variants: one thread per kVec consecutive pairs, kVec = 4 (float4 on both halves and on the tables) when D/2 % 4
// == 0 and every row start is 16-byte aligned (D 128, 64 and SigLIP-sized 72), else scalar. The op is memory-bound:
// 2 x 16 B of x read and written plus 2 x 16 B of table per thread; the table rows are shared by the H heads of a
// position and stay in L1/L2.
// Checked by test/native/rope_cuda_test.cu against cpu::CpuBackend; timed by bench/native/pointwise_cuda_bench.cu
// (`pointwise_cuda_bench --json`, case rope).
#include "rope.h"

#include "cuda_check.h"
#include "kernel_utils.cuh"

namespace showo2::cuda {

namespace {

constexpr int kRopeBlock = 256;

// ================================================= device code ======================================================

template <int kVec>
__global__ void __launch_bounds__(kRopeBlock) rope_kernel(const RopeParams p) {
  const int64_t half = p.head_dim / 2;
  const int64_t vecs_per_row = half / kVec;
  const int64_t total = p.batch * p.seq_len * p.heads * vecs_per_row;
  for (int64_t t = int64_t(blockIdx.x) * kRopeBlock + threadIdx.x; t < total; t += int64_t(gridDim.x) * kRopeBlock) {
    const int64_t i = (t % vecs_per_row) * kVec;
    const int64_t row = t / vecs_per_row;  // (b, l, h) row-major
    const int64_t h = row % p.heads;
    const int64_t l = (row / p.heads) % p.seq_len;
    const int64_t b = row / (p.heads * p.seq_len);
    float* x1 = p.x + b * p.stride_b + l * p.stride_l + h * p.stride_h + i;
    float* x2 = x1 + half;
    const int64_t table_at = (p.position_offset + l) * half + i;
    const VecF<kVec> c = load_vec<kVec>(p.cos + table_at);
    const VecF<kVec> s = load_vec<kVec>(p.sin + table_at);
    const VecF<kVec> a = load_vec<kVec>(x1);
    const VecF<kVec> bb = load_vec<kVec>(x2);
    VecF<kVec> y1, y2;
#pragma unroll
    for (int j = 0; j < kVec; ++j) {
      y1.v[j] = __fsub_rn(__fmul_rn(a.v[j], c.v[j]), __fmul_rn(bb.v[j], s.v[j]));
      y2.v[j] = __fadd_rn(__fmul_rn(bb.v[j], c.v[j]), __fmul_rn(a.v[j], s.v[j]));
    }
    store_vec<kVec>(x1, y1);
    store_vec<kVec>(x2, y2);
  }
}

}  // namespace

// ================================================= launchers ========================================================

void launch_rope(const RopeParams& p, cudaStream_t stream) {
  if (p.batch < 0 || p.seq_len < 0 || p.heads < 0 || p.head_dim < 0)
    fail(ErrorCode::ShapeMismatch, "rope: negative size");
  if (p.head_dim % 2 != 0)
    fail(ErrorCode::ShapeMismatch, "rope: x: head_dim (last dimension) must be even but got ", p.head_dim);
  if (p.position_offset < 0 || p.position_offset > p.table_positions - p.seq_len)
    fail(ErrorCode::InvalidArgument, "rope: position_offset: positions [", p.position_offset, ", ",
         p.position_offset + p.seq_len, ") are outside the table's [0, ", p.table_positions, ")");
  const int64_t half = p.head_dim / 2;
  if (p.batch * p.seq_len * p.heads * half == 0) return;
  if (p.x == nullptr || p.cos == nullptr || p.sin == nullptr) fail(ErrorCode::InvalidArgument, "rope: null pointer");
  // float4 needs whole vectors in each half, and every x row, both halves and every table row 16-byte aligned.
  const bool vec4 = half % 4 == 0 && aligned16(p.x) && aligned16(p.cos) && aligned16(p.sin) && p.stride_b % 4 == 0 &&
                    p.stride_l % 4 == 0 && p.stride_h % 4 == 0;
  SHOWO2_VEC_SWITCH(vec4, kVec, [&] {
    const int64_t work = p.batch * p.seq_len * p.heads * (half / kVec);
    rope_kernel<kVec><<<blocks_for(work, kRopeBlock), kRopeBlock, 0, stream>>>(p);
  });
  SHOWO2_CUDA_CHECK_LAUNCH();
}

}  // namespace showo2::cuda
