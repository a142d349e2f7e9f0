// Launcher for the embedding gather (cuda/embedding.cu). Raw device pointers in, work queued on `stream`; argument
// errors and launch failures throw showo2::Error. Semantics are backend.h's Backend::embedding; the CPU twin is
// native/core/cpu/embedding.cpp.
//
// Out-of-range ids (the contract's ERR_INVALID_ARGUMENT naming the position and value) are caught in two places:
//   * ids that live on the host (prompt tokens from the tokenizer) are validated on the host before upload, by
//     check_embedding_ids (backend_checks.h), with the CPU's exact message;
//   * ids produced on the device (a sampled token fed back in a device-side decode loop) cannot be read without a
//     synchronisation, so the kernel never reads outside the table: it writes zeros for such a row and records the
//     lowest bad position in `bad_position` (when given). The caller reads the record back when it next
//     synchronises (the backend glue does so right away; a captured decode loop can defer it to the end of the
//     loop) and then throws via fail_embedding_id (backend_checks.h).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "dtype.h"
#include "kernel_utils.cuh"

namespace showo2::cuda {

struct EmbeddingParams {
  const void* ids = nullptr;          // [num_ids] I32 or I64, contiguous
  DType ids_dtype = DType::I64;       // I32 or I64
  int64_t num_ids = 0;                // N
  const void* table = nullptr;        // [vocab, cols], last dim contiguous
  DType table_dtype = DType::F32;     // F32, BF16 or F16 (widened exactly)
  int64_t vocab = 0;                  // V: rows of the table
  int64_t table_row_stride = 0;       // elements between table rows (>= cols; a row-sliced table is fine)
  float* out = nullptr;               // [num_ids, cols] F32 through out_rows
  RowMap out_rows;                    // where output row i starts
  int64_t cols = 0;                   // C: embedding width
  unsigned long long* bad_position = nullptr;  // optional device word: atomicMin of bad positions; the caller
                                               // initialises it to kNoBadPosition
};

constexpr unsigned long long kNoBadPosition = ~0ull;

// out[i, :] = table[ids[i], :] (zeros, and a record in bad_position, for an id outside [0, vocab)).
void launch_embedding(const EmbeddingParams& p, cudaStream_t stream);

}  // namespace showo2::cuda
