// Split-KV decoding attention (attention_decode.h says why it exists). Same function and conventions as the other
// variants (attention.h): F32 or BF16 q, k, v; F32 out; scores, softmax and P·V in F32; exp2 of log2(e)-prescaled
// scores; a row that sees no key writes zeros, a row whose visible scores are all NaN or -inf writes NaN.
//
// Kernel 1, attention_split_kernel: grid (splits, Hkv, B), 128 threads. Thread block (s, g, b) takes the G = Hq/Hkv x Lq
// query rows that read KV head g (row r = head-in-group * Lq + query index) and the keys of chunk s
// ([s * chunk, (s + 1) * chunk), chunk a multiple of 64). It walks 64-key tiles as the tiled kernel does: the K tile
// into shared memory, G x 64 scores (one thread per (row, key) pair, keys past the row's key_end at -inf), the
// online-softmax update of each row (one thread per row), the V tile into the same buffer, then P·V with one thread
// per output column keeping all G rows' accumulators in registers. It writes, per (sample, query head, row, split),
// the unnormalised output, the running max and the running sum into the workspace.
// Kernel 2, attention_split_combine_kernel: grid (Lq, Hq, B), one thread per output column: the rows' global max over
// the splits, each split's partial rescaled by exp2(max_s - max), divided by the rescaled sum.
//
// Shared memory (F32): q [kMaxRows][D|1], K/V tile [64][max(D, Dv)|1], probabilities [kMaxRows][65], and per row its
// max, sum, rescale factor and key_end. Odd pitches keep the (row, key) score loop and the column-per-thread P·V loop
// free of bank conflicts (as in the tiled kernel). At kMaxRows 64 and D 128: about 84 KB.
#include "attention_decode.h"

#include <cuda_bf16.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <limits>

namespace showo2::cuda {

namespace {

constexpr int kThreads = 128;  // also the widest value dim: one output column per thread
constexpr int kBlockK = 64;
constexpr int kMinKeysPerSplit = 256;  // a chunk shorter than this costs more in launch and combine than it saves
constexpr int kMaxSplits = 128;
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();
static_assert(kAttentionDecodeMaxHeadDim <= kThreads, "P·V runs one output column per thread");

__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }

struct SplitLayout {
  int qk_pitch, kv_pitch, p_pitch;
  size_t q_floats, kv_floats, p_floats;
  size_t bytes(int max_rows) const {
    return sizeof(float) * (q_floats + kv_floats + p_floats + 3 * static_cast<size_t>(max_rows)) +
           sizeof(int) * static_cast<size_t>(max_rows);
  }
};

__host__ __device__ inline SplitLayout split_layout(int head_dim, int value_dim, int max_rows) {
  SplitLayout l;
  l.qk_pitch = head_dim | 1;
  l.kv_pitch = (head_dim > value_dim ? head_dim : value_dim) | 1;
  l.p_pitch = kBlockK + 1;
  l.q_floats = static_cast<size_t>(max_rows) * l.qk_pitch;
  l.kv_floats = static_cast<size_t>(kBlockK) * l.kv_pitch;
  l.p_floats = static_cast<size_t>(max_rows) * l.p_pitch;
  return l;
}

// Where one row's partial results live in the workspace: out [B][Hq][Lq][S][Dv], then max and sum [B][Hq][Lq][S].
struct SplitWorkspace {
  float* out;
  float* max;
  float* sum;
  __host__ __device__ SplitWorkspace(float* base, const AttentionParams& p, int splits) {
    const size_t rows = static_cast<size_t>(p.batch) * p.num_heads * p.num_queries * splits;
    out = base;
    max = base + rows * p.value_dim;
    sum = max + rows;
  }
};

// rows x cols of a strided global matrix into a pitched shared tile, zeros for rows >= valid_rows (one warp per row).
template <typename T>
__device__ __forceinline__ void stage_rows(float* tile, int pitch, const T* src, int64_t src_row_stride, int rows,
                                           int valid_rows, int cols) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int r = warp; r < rows; r += kThreads / 32) {
    float* dst = tile + r * pitch;
    if (r < valid_rows) {
      const T* row = src + r * src_row_stride;
      for (int c = lane; c < cols; c += 32) dst[c] = to_f32(row[c]);
    } else {
      for (int c = lane; c < cols; c += 32) dst[c] = 0.0f;
    }
  }
}

template <typename T, int kMaxRows>
__global__ void __launch_bounds__(kThreads) attention_split_kernel(const __grid_constant__ AttentionParams p, int chunk) {
  extern __shared__ float smem[];
  const int D = p.head_dim, Dv = p.value_dim, Lq = p.num_queries, Lk = p.num_keys;
  const int group = p.num_heads / p.num_kv_heads;
  const int G = group * Lq;  // <= kMaxRows (attention_split_count)
  const int split = blockIdx.x, splits = gridDim.x, kv_head = blockIdx.y, b = blockIdx.z;
  const SplitLayout layout = split_layout(D, Dv, kMaxRows);
  float* q_tile = smem;
  float* kv_tile = q_tile + layout.q_floats;
  float* p_tile = kv_tile + layout.kv_floats;
  float* row_max = p_tile + layout.p_floats;
  float* row_sum = row_max + kMaxRows;
  float* row_scale = row_sum + kMaxRows;
  int* row_end = reinterpret_cast<int*>(row_scale + kMaxRows);

  const float q_scale = p.scale * kLog2e;
  const T* q = static_cast<const T*>(p.q) + b * p.q_batch_stride + static_cast<int64_t>(kv_head) * group * p.q_head_stride;
  for (int idx = threadIdx.x; idx < G * D; idx += kThreads) {
    const int r = idx / D, d = idx % D;
    const int head_in_group = r / Lq, i = r % Lq;
    q_tile[r * layout.qk_pitch + d] = to_f32(q[i * p.q_row_stride + head_in_group * p.q_head_stride + d]) * q_scale;
  }
  for (int r = threadIdx.x; r < G; r += kThreads) {
    row_end[r] = attention_key_end(p.mask, b, r % Lq, Lk);
    row_max[r] = kNegInf;
    row_sum[r] = 0.0f;
  }
  const T* k = static_cast<const T*>(p.k) + b * p.k_batch_stride + kv_head * p.k_head_stride;
  const T* v = static_cast<const T*>(p.v) + b * p.v_batch_stride + kv_head * p.v_head_stride;
  const int key_begin = split * chunk;
  // key_end is non-decreasing in the query row: the group's last query row sees the most keys.
  const int key_stop = min(min(Lk, key_begin + chunk), attention_key_end(p.mask, b, Lq - 1, Lk));
  const int c = threadIdx.x;  // this thread's output column in P·V
  float acc[kMaxRows];
#pragma unroll
  for (int r = 0; r < kMaxRows; ++r) acc[r] = 0.0f;
  __syncthreads();

  for (int k0 = key_begin; k0 < key_stop; k0 += kBlockK) {
    const int tile_keys = min(kBlockK, Lk - k0);
    stage_rows(kv_tile, layout.kv_pitch, k + static_cast<int64_t>(k0) * p.k_row_stride, p.k_row_stride, kBlockK,
               tile_keys, D);
    __syncthreads();

    for (int idx = threadIdx.x; idx < G * kBlockK; idx += kThreads) {
      const int r = idx / kBlockK, j = idx % kBlockK;
      float s = kNegInf;
      if (k0 + j < row_end[r]) {  // row_end <= Lk: staged zero rows are never scored
        const float* q_row = q_tile + r * layout.qk_pitch;
        const float* k_row = kv_tile + j * layout.kv_pitch;
        s = 0.0f;
        for (int d = 0; d < D; ++d) s = fmaf(q_row[d], k_row[d], s);
      }
      p_tile[r * layout.p_pitch + j] = s;
    }
    __syncthreads();

    // Online softmax, one thread per row.
    for (int r = threadIdx.x; r < G; r += kThreads) {
      float* p_row = p_tile + r * layout.p_pitch;
      float tile_max = kNegInf;
      for (int j = 0; j < kBlockK; ++j) tile_max = fmaxf(tile_max, p_row[j]);
      const float new_max = fmaxf(row_max[r], tile_max);
      if (new_max == kNegInf) {
        // Nothing finite yet: if the row sees keys here they are all -inf or NaN and the row becomes NaN.
        for (int j = 0; j < kBlockK; ++j) p_row[j] = 0.0f;
        if (row_end[r] > k0) row_sum[r] = __int_as_float(0x7fc00000);
        row_scale[r] = 1.0f;
      } else {
        const float rescale = exp2f(row_max[r] - new_max);  // 0 on the row's first visible tile
        float sum = row_sum[r] * rescale;
        for (int j = 0; j < kBlockK; ++j) {
          const float e = exp2f(p_row[j] - new_max);  // masked keys: exp2(-inf) = 0
          p_row[j] = e;
          sum += e;
        }
        row_sum[r] = sum;
        row_max[r] = new_max;
        row_scale[r] = rescale;
      }
    }
    __syncthreads();  // also: every thread is done reading the K tile

    stage_rows(kv_tile, layout.kv_pitch, v + static_cast<int64_t>(k0) * p.v_row_stride, p.v_row_stride, kBlockK,
               tile_keys, Dv);
    __syncthreads();

    if (c < Dv) {
      const int pv_keys = min(kBlockK, key_stop - k0);  // past it every row's probability is 0
#pragma unroll
      for (int r = 0; r < kMaxRows; ++r)
        if (r < G) acc[r] *= row_scale[r];
      for (int j = 0; j < pv_keys; ++j) {
        const float vv = kv_tile[j * layout.kv_pitch + c];
#pragma unroll
        for (int r = 0; r < kMaxRows; ++r)
          if (r < G) acc[r] = fmaf(p_tile[r * layout.p_pitch + j], vv, acc[r]);
      }
    }
    __syncthreads();  // the next tile overwrites kv_tile and p_tile
  }

  const SplitWorkspace ws(p.split_workspace, p, splits);
#pragma unroll
  for (int r = 0; r < kMaxRows; ++r) {
    if (r >= G) break;
    const int h = kv_head * group + r / Lq, i = r % Lq;
    const size_t slot = ((static_cast<size_t>(b) * p.num_heads + h) * Lq + i) * splits + split;
    if (c < Dv) ws.out[slot * Dv + c] = acc[r];
    if (c == 0) {
      ws.max[slot] = row_max[r];
      ws.sum[slot] = row_sum[r];
    }
  }
}

__global__ void __launch_bounds__(kThreads)
    attention_split_combine_kernel(const __grid_constant__ AttentionParams p, int splits) {
  const int i = blockIdx.x, h = blockIdx.y, b = blockIdx.z, c = threadIdx.x, Dv = p.value_dim;
  if (c >= Dv) return;
  const SplitWorkspace ws(p.split_workspace, p, splits);
  const size_t first = ((static_cast<size_t>(b) * p.num_heads + h) * p.num_queries + i) * splits;
  float global_max = kNegInf;
  for (int s = 0; s < splits; ++s) global_max = fmaxf(global_max, ws.max[first + s]);
  float sum = 0.0f, acc = 0.0f;
  for (int s = 0; s < splits; ++s) {
    const float m = ws.max[first + s], l = ws.sum[first + s];
    if (m == kNegInf) {
      // The split saw nothing finite for this row: it adds nothing, unless it found the row's scores undefined.
      if (l != l) sum = l;
      continue;
    }
    const float w = exp2f(m - global_max);
    sum += l * w;
    acc = fmaf(ws.out[(first + s) * Dv + c], w, acc);
  }
  float* out = p.out + b * p.out_batch_stride + static_cast<int64_t>(i) * p.out_row_stride + h * p.out_head_stride;
  out[c] = sum != 0.0f ? acc / sum : 0.0f;  // no visible key: zeros; NaN sums stay NaN
}

// Multiprocessors of the current device (0 when unknown), cached per device.
int current_multiprocessors() {
  constexpr int kMaxDevices = 64;
  static std::atomic<int> cache[kMaxDevices];  // SM count + 1; 0 = not read yet
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess || device < 0) return 0;
  if (device < kMaxDevices) {
    const int cached = cache[device].load(std::memory_order_relaxed);
    if (cached != 0) return cached - 1;
  }
  int sms = 0;
  if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) return 0;
  if (device < kMaxDevices) cache[device].store(sms + 1, std::memory_order_relaxed);
  return sms;
}

int rows_per_kv_head(const AttentionParams& p) {
  return p.num_kv_heads > 0 ? (p.num_heads / p.num_kv_heads) * p.num_queries : 0;
}

template <typename T, int kMaxRows>
cudaError_t launch_rows_bucket(const AttentionParams& p, int splits, int chunk, cudaStream_t stream) {
  const size_t bytes = split_layout(p.head_dim, p.value_dim, kMaxRows).bytes(kMaxRows);
  if (bytes > 48 * 1024) {
    const cudaError_t err = cudaFuncSetAttribute(attention_split_kernel<T, kMaxRows>,
                                                 cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
    if (err != cudaSuccess) return err;
  }
  const dim3 grid(static_cast<unsigned>(splits), static_cast<unsigned>(p.num_kv_heads), static_cast<unsigned>(p.batch));
  attention_split_kernel<T, kMaxRows><<<grid, kThreads, bytes, stream>>>(p, chunk);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_typed(const AttentionParams& p, int splits, int chunk, cudaStream_t stream) {
  const int rows = rows_per_kv_head(p);
  if (rows <= 8) return launch_rows_bucket<T, 8>(p, splits, chunk, stream);
  if (rows <= 16) return launch_rows_bucket<T, 16>(p, splits, chunk, stream);
  return launch_rows_bucket<T, kAttentionDecodeMaxRows>(p, splits, chunk, stream);
}

}  // namespace

int attention_split_count(const AttentionParams& p) {
  const int rows = rows_per_kv_head(p);
  if (rows < 1 || rows > kAttentionDecodeMaxRows) return 1;
  if (std::max(p.head_dim, p.value_dim) > kAttentionDecodeMaxHeadDim || p.num_keys < 2 * kMinKeysPerSplit) return 1;
  const int sms = current_multiprocessors();
  if (sms <= 0) return 1;
  // Enough thread blocks for two waves over the SMs, each chunk at least kMinKeysPerSplit keys long.
  const int64_t per_split = static_cast<int64_t>(p.num_kv_heads) * p.batch;
  const int64_t wanted = (2 * static_cast<int64_t>(sms) + per_split - 1) / per_split;
  const int64_t most = std::min<int64_t>(kMaxSplits, p.num_keys / kMinKeysPerSplit);
  return static_cast<int>(std::max<int64_t>(1, std::min(wanted, most)));
}

size_t attention_split_workspace_floats(const AttentionParams& p, int splits) {
  const size_t rows = static_cast<size_t>(p.batch) * p.num_heads * p.num_queries * static_cast<size_t>(splits);
  return rows * (static_cast<size_t>(p.value_dim) + 2);
}

cudaError_t launch_attention_split(const AttentionParams& p, int splits, cudaStream_t stream) {
  if (splits < 1 || splits > 65535 || p.split_workspace == nullptr || rows_per_kv_head(p) > kAttentionDecodeMaxRows ||
      std::max(p.head_dim, p.value_dim) > kAttentionDecodeMaxHeadDim ||
      p.split_workspace_floats < attention_split_workspace_floats(p, splits))
    return cudaErrorInvalidValue;
  // Chunks of whole 64-key tiles, so a tile never straddles two splits.
  const int64_t per_split = (static_cast<int64_t>(p.num_keys) + splits - 1) / splits;
  const int chunk = static_cast<int>(std::max<int64_t>(kBlockK, (per_split + kBlockK - 1) / kBlockK * kBlockK));
  const cudaError_t err = p.input_type == AttentionInputType::BF16
                              ? launch_typed<__nv_bfloat16>(p, splits, chunk, stream)
                              : launch_typed<float>(p, splits, chunk, stream);
  if (err != cudaSuccess) return err;
  const dim3 grid(static_cast<unsigned>(p.num_queries), static_cast<unsigned>(p.num_heads),
                  static_cast<unsigned>(p.batch));
  attention_split_combine_kernel<<<grid, kThreads, 0, stream>>>(p, splits);
  return cudaGetLastError();
}

}  // namespace showo2::cuda
