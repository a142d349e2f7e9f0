// Embedding lookup on the CPU (backend.h): out[i, :] = table[ids[i], :].
//
//   ids:   I32 or I64, contiguous, any shape S (the backend contract uses [N]).
//   table: [V, C] F32/BF16/F16, last dimension contiguous (a row-sliced table is fine).
//   out:   S + [C], F32, last dimension contiguous.
// Every id is validated before anything is written, so a bad id leaves out untouched and the error names the first
// offending position and value. BF16/F16 rows are widened exactly (both fit in F32).
#include <cstdint>
#include <cstring>

#include "../backend_checks.h"
#include "ops.h"
#include "rows.h"

namespace showo2::cpu {

namespace {

int64_t id_at(const Tensor& ids, int64_t i) {
  return ids.dtype() == DType::I64 ? ids.data<int64_t>()[i] : static_cast<int64_t>(ids.data<int32_t>()[i]);
}

}  // namespace

void embedding(const Tensor& ids, const Tensor& table, Tensor& out, ThreadPool* pool) {
  const EmbeddingShape s = check_embedding_args(ids, table, out);
  const int64_t n = s.num_ids, C = s.cols;
  if (n == 0 || C == 0) return;
  check_embedding_ids(ids.raw(), ids.dtype(), n, s.vocab);

  RowLayout out_rows(out);
  const int64_t table_row_stride = table.stride(0);
  const DType table_dtype = table.dtype();
  const uint8_t* table_bytes = static_cast<const uint8_t*>(table.raw());
  const size_t elem = dtype_size(table_dtype);
  float* po = out.mutable_data<float>();

  parallel_rows(pool, n, C, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const uint8_t* src = table_bytes + static_cast<size_t>(id_at(ids, i) * table_row_stride) * elem;
      float* dst = po + out_rows.offset(i);
      if (table_dtype == DType::F32) {
        std::memcpy(dst, src, static_cast<size_t>(C) * sizeof(float));
      } else {
        const uint16_t* h = reinterpret_cast<const uint16_t*>(src);
        if (table_dtype == DType::BF16)
          for (int64_t c = 0; c < C; ++c) dst[c] = bf16_to_f32(h[c]);
        else
          for (int64_t c = 0; c < C; ++c) dst[c] = f16_to_f32(h[c]);
      }
    }
  });
}

}  // namespace showo2::cpu
