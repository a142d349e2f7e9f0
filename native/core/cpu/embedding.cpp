// Embedding lookup on the CPU (backend.h): out[i, :] = table[ids[i], :].
//
//   ids:   I32 or I64, contiguous, any shape S (the backend contract uses [N]).
//   table: [V, C] F32/BF16/F16, last dimension contiguous (a row-sliced table is fine).
//   out:   S + [C], F32, last dimension contiguous.
// Every id is validated before anything is written, so a bad id leaves out untouched and the error names the first
// offending position and value. BF16/F16 rows are widened exactly (both fit in F32).
#include <cstdint>
#include <cstring>
#include <string>

#include "ops.h"
#include "rows.h"

namespace showo2::cpu {

namespace {

template <typename Id>
void check_ids_in_range(const Id* ids, int64_t n, int64_t vocab) {
  for (int64_t i = 0; i < n; ++i) {
    int64_t id = static_cast<int64_t>(ids[i]);
    if (id < 0 || id >= vocab)
      fail(ErrorCode::InvalidArgument, "embedding: ids: id ", id, " at position ", i, " is outside the table's [0, ",
           vocab, ")");
  }
}

int64_t id_at(const Tensor& ids, int64_t i) {
  return ids.dtype() == DType::I64 ? ids.data<int64_t>()[i] : static_cast<int64_t>(ids.data<int32_t>()[i]);
}

}  // namespace

void embedding(const Tensor& ids, const Tensor& table, Tensor& out, ThreadPool* pool) {
  if (!ids.defined()) fail(ErrorCode::InvalidArgument, "embedding: ids: tensor is undefined");
  if (ids.dtype() != DType::I32 && ids.dtype() != DType::I64)
    fail(ErrorCode::UnsupportedDtype, "embedding: ids: expected I32 or I64 but got ", dtype_name(ids.dtype()));
  check_contiguous(ids, "embedding: ids");
  check_float(table, "embedding: table");
  check_dim(table, 2, "embedding: table");
  check_last_dim_contiguous(table, "embedding: table");
  check_dtype(out, DType::F32, "embedding: out");
  check_row_rank(out, "embedding: out");
  check_last_dim_contiguous(out, "embedding: out");
  check_writable(out, "embedding: out");
  const int64_t vocab = table.size(0), C = table.size(1);
  Shape expected = ids.shape();
  expected.push_back(C);
  check_shape(out, expected, "embedding: out");

  const int64_t n = ids.numel();
  if (n == 0 || C == 0) return;
  if (ids.dtype() == DType::I64)
    check_ids_in_range(ids.data<int64_t>(), n, vocab);
  else
    check_ids_in_range(ids.data<int32_t>(), n, vocab);

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
