// cpu::embedding (native/core/cpu/embedding.cpp): row gathers from F32/BF16/F16 tables with I32/I64 ids, multi-dim
// ids, a row-sliced table, threads; out-of-range ids and other argument errors.
//
// Exactness: a gather copies (F32) or widens (BF16/F16, exactly representable in F32), so results must equal the
// table's values bit for bit; the tests compare with ==.
#include <cstdint>
#include <string>
#include <vector>

#include "cpu/ops.h"
#include "cpu/thread_pool.h"
#include "tensor.h"
#include "test_util.h"

using namespace showo2;
using showo2::test::random_vector;

namespace {

Tensor make_ids(const std::vector<int64_t>& ids, DType dtype, const Shape& shape) {
  Tensor t = Tensor::empty(shape, dtype);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (dtype == DType::I64) t.mutable_data<int64_t>()[i] = ids[i];
    else t.mutable_data<int32_t>()[i] = static_cast<int32_t>(ids[i]);
  }
  return t;
}

}  // namespace

SHOWO2_TEST(embedding_gathers_rows_for_every_dtype) {
  const int64_t V = 50, C = 37;
  std::vector<float> values = random_vector(static_cast<size_t>(V * C), 1);
  const std::vector<int64_t> ids = {0, 49, 7, 7, 23, 1};
  cpu::ThreadPool pool(2);
  for (DType table_dtype : {DType::F32, DType::BF16, DType::F16})
    for (DType id_dtype : {DType::I32, DType::I64}) {
      Tensor table = Tensor::from_f32({V, C}, values).to(table_dtype);
      std::vector<float> widened = table.to_f32_vector();
      Tensor out = Tensor::empty({6, C}, DType::F32);
      cpu::embedding(make_ids(ids, id_dtype, {6}), table, out, &pool);
      std::vector<float> got = out.to_f32_vector();
      for (size_t i = 0; i < ids.size(); ++i)
        for (int64_t c = 0; c < C; ++c)
          CHECK_EQ(got[i * C + static_cast<size_t>(c)], widened[static_cast<size_t>(ids[i] * C + c)]);
    }
}

SHOWO2_TEST(embedding_multi_dim_ids_and_sliced_table) {
  // ids [2, 3] -> out [2, 3, C]; the table is columns 4..20 of a wider one (row stride != C).
  const int64_t V = 10, W = 24;
  std::vector<float> values = random_vector(static_cast<size_t>(V * W), 2);
  Tensor wide = Tensor::from_f32({V, W}, values);
  Tensor table = wide.slice(1, 4, 20);  // [10, 16]
  const std::vector<int64_t> ids = {9, 0, 3, 3, 8, 1};
  Tensor out = Tensor::empty({2, 3, 16}, DType::F32);
  cpu::embedding(make_ids(ids, DType::I64, {2, 3}), table, out, nullptr);
  std::vector<float> got = out.to_f32_vector();
  for (size_t i = 0; i < ids.size(); ++i)
    for (int64_t c = 0; c < 16; ++c)
      CHECK_EQ(got[i * 16 + static_cast<size_t>(c)], values[static_cast<size_t>(ids[i] * W + 4 + c)]);
}

SHOWO2_TEST(embedding_rejects_out_of_range_ids) {
  Tensor table = Tensor::zeros({5, 4}, DType::F32);
  Tensor out = Tensor::empty({3, 4}, DType::F32);
  out.mutable_data<float>()[0] = 42.0f;
  for (DType id_dtype : {DType::I32, DType::I64}) {
    CHECK_THROWS_CODE(cpu::embedding(make_ids({1, 5, 2}, id_dtype, {3}), table, out, nullptr), InvalidArgument);
    CHECK_THROWS_CODE(cpu::embedding(make_ids({-1, 0, 2}, id_dtype, {3}), table, out, nullptr), InvalidArgument);
  }
  // The message names the position and the value, and nothing was written (ids are checked first).
  try {
    cpu::embedding(make_ids({1, 2, 151669}, DType::I64, {3}), table, out, nullptr);
    CHECK(false);
  } catch (const Error& e) {
    CHECK_EQ(std::string(e.what()), std::string("embedding: ids: id 151669 at position 2 is outside the table's [0, 5)"));
  }
  CHECK_EQ(out.data<float>()[0], 42.0f);
}

SHOWO2_TEST(embedding_rejects_bad_arguments) {
  Tensor table = Tensor::zeros({5, 4}, DType::F32);
  Tensor out = Tensor::empty({2, 4}, DType::F32);
  CHECK_THROWS_CODE(cpu::embedding(Tensor::zeros({2}, DType::F32), table, out, nullptr), UnsupportedDtype);
  CHECK_THROWS_CODE(cpu::embedding(make_ids({0, 1}, DType::I32, {2}), Tensor::zeros({5, 4}, DType::I32), out, nullptr),
                    UnsupportedDtype);
  CHECK_THROWS_CODE(cpu::embedding(make_ids({0, 1}, DType::I32, {2}), Tensor::zeros({20}, DType::F32), out, nullptr),
                    ShapeMismatch);
  Tensor out_bad = Tensor::empty({2, 5}, DType::F32);
  CHECK_THROWS_CODE(cpu::embedding(make_ids({0, 1}, DType::I32, {2}), table, out_bad, nullptr), ShapeMismatch);
  Tensor ids_strided = make_ids({0, 1, 2, 3}, DType::I64, {2, 2}).transpose(0, 1);
  Tensor out_224 = Tensor::empty({2, 2, 4}, DType::F32);
  CHECK_THROWS_CODE(cpu::embedding(ids_strided, table, out_224, nullptr), ShapeMismatch);
  CHECK_THROWS_CODE(cpu::embedding(Tensor(), table, out, nullptr), InvalidArgument);
}

SHOWO2_TEST_MAIN()
