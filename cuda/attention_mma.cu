// v3 attention: FlashAttention-2's forward on BF16 tensor cores (mma.sync.m16n8k16, compute capability 8.0 and
// newer), with the omni mask as data. Same function and conventions as v1/v2 (cuda/attention.cu, attention.h):
//
//   out[b, i, h, :] = sum_j softmax_j(scale * q[b, i, h, :] · k[b, j, g, :] | j < key_end(b, i)) * v[b, j, g, :]
//
// Inputs BF16 (the only dtype tensor cores take here), out F32; max(D, Dv) <= 128 in three buckets (64, 80 for
// SigLIP's 72, 128). Scores and the output accumulate in F32 on the tensor cores; as in FlashAttention the
// probabilities are rounded to BF16 for P·V, and the row sums add those rounded values, so every output is an exact
// convex combination of v rows with BF16 weights (error <= 2^-9 max|v| against the F32 softmax).
//
// Structure. One thread block = 4 warps = 64 query rows of one (b, h); warp w owns rows 16w .. 16w + 15 and keeps
// them in registers as mma A fragments for the whole kernel. The block walks 64-key tiles: K and V tiles are staged
// in shared memory (BF16, rows padded by 8 elements so fragment loads are bank-conflict free), S = Q K^T is eight
// 16x8 mma tiles per warp, the online softmax runs on the S accumulators in registers (a row lives on the 4 lanes
// of a quad: two shuffles reduce it), and the S accumulators are repacked in place as the A operand of P·V (the
// m16n8k16 accumulator layout of two adjacent 8-key tiles is the A layout of one 16-key step).
//
// Fragment layouts (PTX ISA, mma.m16n8k16 .bf16; group = lane / 4, quad = lane % 4):
//   A 16x16 row-major: reg0 (row group, cols 2quad..+1), reg1 (row group+8, same cols), reg2/reg3 the same at col +8
//   B 16x8 col-major:  reg0 (k 2quad..+1, col group), reg1 (k 2quad+8..+9, col group)
//   C 16x8 F32:        c0,c1 (row group, cols 2quad..+1), c2,c3 (row group+8, same cols)
// Q·K^T: B[k = d][n = key] = K[key][d], so a B register is one 32-bit load of two adjacent d of one K row.
// P·V:   B[k = key][n = d] = V[key][d]; the two keys of a register are in different V rows: two 16-bit loads.
//
// Masking (as v2): key_end is non-decreasing in the query row, so the query tile's first and last valid rows bound
// it; key tiles past the last row's end are never visited, tiles below the first row's end run without per-element
// tests, and the rest (the causal diagonal, block edges, the key tail) mask scores of keys >= key_end(row) to -inf.
//
// What is not here yet (issue [attn]): cp.async / TMA double-buffering of the K and V tiles, ldmatrix, Hopper's
// wgmma with warp specialisation, split-KV decoding. Checked by test/native/attention_cuda_test.cu (v3 against the
// CPU backend on the BF16 cases); timed by bench/native/attention_cuda_bench.cu (--variants v3).
#include "attention_mma.h"
#include "mma.cuh"

#include <cuda_bf16.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <limits>

namespace showo2::cuda {

namespace {

using mma::load_u32;
using mma::mma_16x8x16;

using bf16 = __nv_bfloat16;

constexpr int kThreads = 128;  // 4 warps
constexpr int kBlockQ = 64;    // query rows per thread block: 16 per warp
constexpr int kBlockK = 64;    // keys per tile
constexpr int kRowPad = 8;     // BF16 elements of padding per shared-memory row (see the pitch note below)
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Shared memory: Q [kBlockQ][pitch], K [kBlockK][pitch], V [kBlockK][pitch], pitch = kDim + 8 BF16. With a pitch of
// (kDim + 8) / 2 words the 8 rows a fragment load touches start 4 banks apart (kDim 64, 128) or 12 apart (kDim 80),
// so the 32 lanes of a warp hit 32 different banks; every row also starts 16-byte aligned for the vector staging.
template <int kDim>
constexpr size_t mma_shared_bytes() {
  return sizeof(bf16) * static_cast<size_t>(kBlockQ + 2 * kBlockK) * (kDim + kRowPad);
}

__device__ __forceinline__ uint32_t pack_bf16(bf16 lo, bf16 hi) {
  return static_cast<uint32_t>(__bfloat16_as_ushort(lo)) | (static_cast<uint32_t>(__bfloat16_as_ushort(hi)) << 16);
}

// Two F32 values already representable in BF16 (rounded by the caller) as one A-fragment register.
__device__ __forceinline__ uint32_t pack_f32(float lo, float hi) {
  return pack_bf16(__float2bfloat16_rn(lo), __float2bfloat16_rn(hi));
}

__device__ __forceinline__ float round_to_bf16(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }

// Whether 16-byte vector loads can stage rows of `cols` elements starting at `base` every `row_stride` elements.
__device__ __forceinline__ bool vector_ok(const bf16* base, int64_t row_stride, int cols) {
  return cols % 8 == 0 && row_stride % 8 == 0 && reinterpret_cast<uintptr_t>(base) % 16 == 0;
}

// kRows x kDim of a strided BF16 matrix into a pitched shared tile; rows >= valid_rows and columns >= cols are
// zeros, so padded head dims and keys past Lk contribute nothing to any product.
template <int kDim, int kRows>
__device__ __forceinline__ void stage_rows(bf16* tile, const bf16* src, int64_t row_stride, int valid_rows, int cols,
                                           bool vector) {
  constexpr int kPitch = kDim + kRowPad;
  if (vector) {
    constexpr int kChunks = kDim / 8;  // 16-byte chunks per row
    for (int idx = threadIdx.x; idx < kRows * kChunks; idx += kThreads) {
      const int r = idx / kChunks, c = (idx % kChunks) * 8;
      uint4 chunk = make_uint4(0, 0, 0, 0);
      if (r < valid_rows && c < cols) chunk = *reinterpret_cast<const uint4*>(src + r * row_stride + c);
      *reinterpret_cast<uint4*>(tile + r * kPitch + c) = chunk;
    }
  } else {
    for (int idx = threadIdx.x; idx < kRows * kDim; idx += kThreads) {
      const int r = idx / kDim, c = idx % kDim;
      tile[r * kPitch + c] = r < valid_rows && c < cols ? src[r * row_stride + c] : __ushort_as_bfloat16(0);
    }
  }
}

template <int kDim>
__global__ void __launch_bounds__(kThreads) attention_mma_kernel(const __grid_constant__ AttentionParams p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  static_assert(kDim % 16 == 0, "head dims are staged in whole 16-wide mma steps");
  constexpr int kPitch = kDim + kRowPad;
  constexpr int kSteps = kDim / 16;        // k-steps of Q K^T
  constexpr int kKeyTiles = kBlockK / 8;   // 8-key n-tiles of S
  constexpr int kOutTiles = kDim / 8;      // 8-column n-tiles of O
  extern __shared__ __align__(16) unsigned char smem_raw[];
  bf16* q_tile = reinterpret_cast<bf16*>(smem_raw);
  bf16* k_tile = q_tile + kBlockQ * kPitch;
  bf16* v_tile = k_tile + kBlockK * kPitch;

  const int D = p.head_dim, Dv = p.value_dim, Lq = p.num_queries, Lk = p.num_keys;
  // The costliest query tiles (the last ones, under a causal mask) are launched first so they do not form the tail.
  const int q_tile_index = gridDim.x - 1 - blockIdx.x;
  const int h = blockIdx.y, b = blockIdx.z;
  const int kv_head = h / (p.num_heads / p.num_kv_heads);
  const int row0 = q_tile_index * kBlockQ;
  const int valid_rows = min(kBlockQ, Lq - row0);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int group = lane / 4, quad = lane % 4;

  const bf16* q = static_cast<const bf16*>(p.q) + b * p.q_batch_stride + static_cast<int64_t>(row0) * p.q_row_stride +
                  h * p.q_head_stride;
  const bf16* k = static_cast<const bf16*>(p.k) + b * p.k_batch_stride + kv_head * p.k_head_stride;
  const bf16* v = static_cast<const bf16*>(p.v) + b * p.v_batch_stride + kv_head * p.v_head_stride;
  stage_rows<kDim, kBlockQ>(q_tile, q, p.q_row_stride, valid_rows, D, vector_ok(q, p.q_row_stride, D));
  const bool k_vector = vector_ok(k, p.k_row_stride, D), v_vector = vector_ok(v, p.v_row_stride, Dv);

  // This thread's two rows of the tile (as C-fragment rows): lo = group, hi = group + 8 within the warp's 16.
  const int row_lo = warp * 16 + group, row_hi = row_lo + 8;
  const int end_lo = attention_key_end(p.mask, b, row0 + row_lo, Lk);
  const int end_hi = attention_key_end(p.mask, b, row0 + row_hi, Lk);
  const int tile_min_end = attention_key_end(p.mask, b, row0, Lk);
  const int tile_max_end = attention_key_end(p.mask, b, row0 + valid_rows - 1, Lk);
  const float scale_log2 = p.scale * kLog2e;
  __syncthreads();  // q_tile staged

  uint32_t q_frag[kSteps][4];
  {
    const bf16* lo = q_tile + row_lo * kPitch + 2 * quad;
    const bf16* hi = lo + 8 * kPitch;
#pragma unroll
    for (int st = 0; st < kSteps; ++st) {
      q_frag[st][0] = load_u32(lo + 16 * st);
      q_frag[st][1] = load_u32(hi + 16 * st);
      q_frag[st][2] = load_u32(lo + 16 * st + 8);
      q_frag[st][3] = load_u32(hi + 16 * st + 8);
    }
  }

  float o[kOutTiles][4];
#pragma unroll
  for (int t = 0; t < kOutTiles; ++t) o[t][0] = o[t][1] = o[t][2] = o[t][3] = 0.0f;
  // Running max (log2 domain) and this lane's share of the running sum, per row; the quad's 4 lanes hold the same max.
  float max_lo = kNegInf, max_hi = kNegInf, sum_lo = 0.0f, sum_hi = 0.0f;

  for (int k0 = 0; k0 < tile_max_end; k0 += kBlockK) {  // tiles at or past tile_max_end: no row sees them
    const bool full = k0 + kBlockK <= tile_min_end;
    const int tile_keys = min(kBlockK, Lk - k0);
    __syncthreads();  // every warp is done with the previous K and V tiles
    stage_rows<kDim, kBlockK>(k_tile, k + static_cast<int64_t>(k0) * p.k_row_stride, p.k_row_stride, tile_keys, D,
                              k_vector);
    stage_rows<kDim, kBlockK>(v_tile, v + static_cast<int64_t>(k0) * p.v_row_stride, p.v_row_stride, tile_keys, Dv,
                              v_vector);
    __syncthreads();

    // S = Q K^T: this warp's 16 rows x 64 keys.
    float s[kKeyTiles][4];
#pragma unroll
    for (int n = 0; n < kKeyTiles; ++n) {
      s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
      const bf16* key_row = k_tile + (n * 8 + group) * kPitch + 2 * quad;
#pragma unroll
      for (int st = 0; st < kSteps; ++st) mma_16x8x16(s[n], q_frag[st], load_u32(key_row + 16 * st), load_u32(key_row + 16 * st + 8));
    }

    // Log2-domain scores; partial tiles hide the keys each row may not see.
#pragma unroll
    for (int n = 0; n < kKeyTiles; ++n)
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        s[n][i] *= scale_log2;
        if (!full && k0 + n * 8 + 2 * quad + (i & 1) >= (i < 2 ? end_lo : end_hi)) s[n][i] = kNegInf;
      }

    // Online softmax, one row at a time (i0 = 0: row lo, i0 = 2: row hi). Returns the factor that rescales the row's
    // earlier output; leaves the BF16-rounded probabilities in s.
    auto softmax_row = [&](float& row_max, float& row_sum, int row_end, int i0) -> float {
      float tile_max = kNegInf;
#pragma unroll
      for (int n = 0; n < kKeyTiles; ++n) tile_max = fmaxf(tile_max, fmaxf(s[n][i0], s[n][i0 + 1]));
      tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
      tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 2));
      const float new_max = fmaxf(row_max, tile_max);
      if (new_max == kNegInf) {
        // Nothing finite yet. If the row does see keys here they are all -inf or NaN: the softmax is undefined and
        // the row becomes NaN (v1, v2 and the CPU twin's rule); otherwise the row simply has nothing yet.
#pragma unroll
        for (int n = 0; n < kKeyTiles; ++n) s[n][i0] = s[n][i0 + 1] = 0.0f;
        if (row_end > k0) row_sum = __int_as_float(0x7fc00000);
        return 1.0f;
      }
      const float rescale = exp2f(row_max - new_max);  // 0 on the row's first visible tile (old max -inf)
      row_sum *= rescale;
#pragma unroll
      for (int n = 0; n < kKeyTiles; ++n)
#pragma unroll
        for (int i = i0; i < i0 + 2; ++i) {
          s[n][i] = round_to_bf16(exp2f(s[n][i] - new_max));  // masked keys: exp2(-inf) = 0
          row_sum += s[n][i];
        }
      row_max = new_max;
      return rescale;
    };
    const float rescale_lo = softmax_row(max_lo, sum_lo, end_lo, 0);
    const float rescale_hi = softmax_row(max_hi, sum_hi, end_hi, 2);
#pragma unroll
    for (int t = 0; t < kOutTiles; ++t) {
      o[t][0] *= rescale_lo, o[t][1] *= rescale_lo;
      o[t][2] *= rescale_hi, o[t][3] *= rescale_hi;
    }

    // O += P V, 16 keys per step: the S tiles 2kk and 2kk+1 are the A fragment of step kk.
#pragma unroll
    for (int kk = 0; kk < kBlockK / 16; ++kk) {
      const uint32_t a[4] = {pack_f32(s[2 * kk][0], s[2 * kk][1]), pack_f32(s[2 * kk][2], s[2 * kk][3]),
                             pack_f32(s[2 * kk + 1][0], s[2 * kk + 1][1]), pack_f32(s[2 * kk + 1][2], s[2 * kk + 1][3])};
      const bf16* v_rows = v_tile + (kk * 16 + 2 * quad) * kPitch + group;
#pragma unroll
      for (int t = 0; t < kOutTiles; ++t) {
        const bf16* col = v_rows + t * 8;
        mma_16x8x16(o[t], a, pack_bf16(col[0], col[kPitch]), pack_bf16(col[8 * kPitch], col[9 * kPitch]));
      }
    }
  }

  // Normalise and write: the row sums are spread over the quad's 4 lanes.
  sum_lo += __shfl_xor_sync(0xffffffffu, sum_lo, 1);
  sum_lo += __shfl_xor_sync(0xffffffffu, sum_lo, 2);
  sum_hi += __shfl_xor_sync(0xffffffffu, sum_hi, 1);
  sum_hi += __shfl_xor_sync(0xffffffffu, sum_hi, 2);
  auto write_row = [&](int row, float row_sum, int i0) {
    if (row >= valid_rows) return;
    const float inv = row_sum != 0.0f ? 1.0f / row_sum : 0.0f;  // no visible key: zeros (backend.h); NaN stays NaN
    float* out = p.out + b * p.out_batch_stride + static_cast<int64_t>(row0 + row) * p.out_row_stride +
                 h * p.out_head_stride;
#pragma unroll
    for (int t = 0; t < kOutTiles; ++t) {
      const int c = t * 8 + 2 * quad;
      if (c < Dv) out[c] = o[t][i0] * inv;
      if (c + 1 < Dv) out[c + 1] = o[t][i0 + 1] * inv;
    }
  };
  write_row(row_lo, sum_lo, 0);
  write_row(row_hi, sum_hi, 2);
#else
  __trap();  // never launched below compute capability 8.0 (attention_mma_supported)
#endif
}

template <int kDim>
cudaError_t launch_bucket(const AttentionParams& p, cudaStream_t stream) {
  constexpr size_t bytes = mma_shared_bytes<kDim>();
  if (bytes > 48 * 1024) {
    const cudaError_t err = cudaFuncSetAttribute(attention_mma_kernel<kDim>,
                                                 cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
    if (err != cudaSuccess) return err;
  }
  const dim3 grid(static_cast<unsigned>((p.num_queries + kBlockQ - 1) / kBlockQ), static_cast<unsigned>(p.num_heads),
                  static_cast<unsigned>(p.batch));
  attention_mma_kernel<kDim><<<grid, kThreads, bytes, stream>>>(p);
  return cudaGetLastError();
}

// The current device's compute capability major version, 0 when it cannot be read. Cached per device: launches
// happen per layer and the answer never changes.
int current_compute_major() {
  constexpr int kMaxDevices = 64;
  static std::atomic<int> cache[kMaxDevices];  // major + 1; 0 = not read yet
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess || device < 0) return 0;
  if (device < kMaxDevices) {
    const int cached = cache[device].load(std::memory_order_relaxed);
    if (cached != 0) return cached - 1;
  }
  int major = 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess) return 0;
  if (device < kMaxDevices) cache[device].store(major + 1, std::memory_order_relaxed);
  return major;
}

}  // namespace

bool attention_mma_supported(const AttentionParams& p) {
  if (p.input_type != AttentionInputType::BF16) return false;
  if (std::max(p.head_dim, p.value_dim) > kAttentionMmaMaxHeadDim) return false;
  return current_compute_major() >= 8;
}

cudaError_t launch_attention_mma(const AttentionParams& p, cudaStream_t stream) {
  const int widest = std::max(p.head_dim, p.value_dim);
  if (widest <= 64) return launch_bucket<64>(p, stream);
  if (widest <= 80) return launch_bucket<80>(p, stream);
  return launch_bucket<128>(p, stream);
}

}  // namespace showo2::cuda
