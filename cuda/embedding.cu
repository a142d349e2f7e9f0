// Embedding gather on the GPU.
//
//   out[i, c] = table[ids[i], c]            (F32 out; BF16/F16 tables widened exactly)
// Shapes: ids [N] I32/I64; table [V, C] with the last dim contiguous (row stride free); out [N, C] F32 through a
// RowMap (last dim contiguous).
// Spec §2/§4: the Qwen2.5 token embedding of the prompt and of each decoded token (embed_tokens, V = 151936,
// C = 1536 or 3584), and the special-token rows of the sequence assembly.
// Precision: exact (a widening copy).
// Out-of-range ids: see embedding.h. The kernel bounds-checks every id, so a bad id can never read outside the
// table; that row becomes zeros and its position is recorded with atomicMin, so the report names the first one
// as the CPU does.
// Variants: one block row (blockDim.y = 1) of 256 threads per id walking the row's columns; grid.y covers the ids.
// An F32 table row with C % 4 == 0 and aligned rows moves float4; BF16/F16 rows are read two elements at a time
// as 4-byte words when C is even and rows are aligned, else scalar. The gather is a few MB per prompt at most, far
// from the GEMMs' cost.
// Checked by test/native/embedding_cuda_test.cu against cpu::CpuBackend.
#include "embedding.h"

#include <algorithm>

#include "cuda_check.h"
#include "kernel_utils.cuh"

namespace showo2::cuda {

namespace {

constexpr int kEmbeddingBlock = 256;
constexpr int64_t kMaxGridY = 65535;

// ================================================= device code ======================================================

__device__ __forceinline__ int64_t id_at(const EmbeddingParams& p, int64_t i) {
  return p.ids_dtype == DType::I64 ? static_cast<const int64_t*>(p.ids)[i]
                                   : static_cast<int64_t>(static_cast<const int32_t*>(p.ids)[i]);
}

// kWide: F32 rows as float4, 16-bit rows as pairs (4-byte words); otherwise one element per thread step.
template <bool kWide>
__global__ void __launch_bounds__(kEmbeddingBlock) embedding_kernel(const EmbeddingParams p) {
  for (int64_t i = blockIdx.y; i < p.num_ids; i += gridDim.y) {
    const int64_t id = id_at(p, i);
    float* dst = p.out + p.out_rows.offset(i);
    if (id < 0 || id >= p.vocab) {
      if (threadIdx.x == 0 && blockIdx.x == 0 && p.bad_position != nullptr)
        atomicMin(p.bad_position, static_cast<unsigned long long>(i));
      for (int64_t c = int64_t(blockIdx.x) * kEmbeddingBlock + threadIdx.x; c < p.cols;
           c += int64_t(gridDim.x) * kEmbeddingBlock)
        dst[c] = 0.0f;
      continue;
    }
    const int64_t row = id * p.table_row_stride;
    if (p.table_dtype == DType::F32) {
      const float* src = static_cast<const float*>(p.table) + row;
      constexpr int kStep = kWide ? 4 : 1;
      for (int64_t c = (int64_t(blockIdx.x) * kEmbeddingBlock + threadIdx.x) * kStep; c < p.cols;
           c += int64_t(gridDim.x) * kEmbeddingBlock * kStep)
        store_vec<kStep>(dst + c, load_vec<kStep>(src + c));
    } else {
      const uint16_t* src = static_cast<const uint16_t*>(p.table) + row;
      const bool bf16 = p.table_dtype == DType::BF16;
      auto widen = [bf16](uint16_t h) {
        return bf16 ? __bfloat162float(__ushort_as_bfloat16(h)) : __half2float(__ushort_as_half(h));
      };
      constexpr int kStep = kWide ? 2 : 1;
      for (int64_t c = (int64_t(blockIdx.x) * kEmbeddingBlock + threadIdx.x) * kStep; c < p.cols;
           c += int64_t(gridDim.x) * kEmbeddingBlock * kStep) {
        if constexpr (kWide) {
          const uint32_t two = *reinterpret_cast<const uint32_t*>(src + c);
          dst[c] = widen(static_cast<uint16_t>(two & 0xffffu));
          dst[c + 1] = widen(static_cast<uint16_t>(two >> 16));
        } else {
          dst[c] = widen(src[c]);
        }
      }
    }
  }
}

}  // namespace

// ================================================= launchers ========================================================

void launch_embedding(const EmbeddingParams& p, cudaStream_t stream) {
  if (p.ids_dtype != DType::I32 && p.ids_dtype != DType::I64)
    fail(ErrorCode::UnsupportedDtype, "embedding: ids: expected I32 or I64 but got ", dtype_name(p.ids_dtype));
  if (!is_float_dtype(p.table_dtype))
    fail(ErrorCode::UnsupportedDtype, "embedding: table: expected F32, BF16 or F16 but got ", dtype_name(p.table_dtype));
  if (p.num_ids < 0 || p.cols < 0 || p.vocab < 0 || p.table_row_stride < p.cols)
    fail(ErrorCode::ShapeMismatch, "embedding: bad sizes");
  if (p.num_ids == 0 || p.cols == 0) return;
  if (p.ids == nullptr || p.table == nullptr || p.out == nullptr)
    fail(ErrorCode::InvalidArgument, "embedding: null device pointer");
  bool out_aligned = aligned16(p.out);
  for (int d = 0; d < p.out_rows.rank; ++d) out_aligned = out_aligned && p.out_rows.stride[d] % 4 == 0;
  const bool wide = p.table_dtype == DType::F32
                        ? out_aligned && p.cols % 4 == 0 && aligned16(p.table) && p.table_row_stride % 4 == 0
                        : p.cols % 2 == 0 && (reinterpret_cast<uintptr_t>(p.table) & 3u) == 0 &&
                              p.table_row_stride % 2 == 0;
  const int64_t step = p.table_dtype == DType::F32 ? (wide ? 4 : 1) : (wide ? 2 : 1);
  const dim3 grid(blocks_for(p.cols, kEmbeddingBlock * step),
                  static_cast<unsigned int>(std::min<int64_t>(p.num_ids, kMaxGridY)));
  SHOWO2_BOOL_SWITCH(wide, kWide, [&] { embedding_kernel<kWide><<<grid, kEmbeddingBlock, 0, stream>>>(p); });
  SHOWO2_CUDA_CHECK_LAUNCH();
}

}  // namespace showo2::cuda
