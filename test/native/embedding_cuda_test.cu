// cuda/embedding.cu against the CPU backend (native/core/cpu/embedding.cpp): I32 and I64 ids, F32/BF16/F16 tables,
// odd widths (1, 7, 1153) and the LLM's 1536, a row-sliced table, the first and last vocabulary rows, and
// out-of-range ids (the device record names the first bad position; the host check gives the CPU's message).
// Skipped without a CUDA device, except the host-side id check.
//
// Tolerance: none. The gather widens BF16/F16 exactly on both sides (atol 0, rtol 0).
#include <cstdint>
#include <string>
#include <vector>

#include "../../cuda/embedding.h"
#include "backend_checks.h"
#include "cpu/cpu_backend.h"
#include "cuda_test_util.h"
#include "tensor.h"
#include "test_util.h"

using namespace showo2;
using showo2::test::DeviceMirror;
using showo2::test::random_normal;

namespace {

Tensor make_ids(const std::vector<int64_t>& values, DType dtype) {
  Tensor ids = Tensor::empty({static_cast<int64_t>(values.size())}, dtype);
  for (size_t i = 0; i < values.size(); ++i) {
    if (dtype == DType::I64) ids.mutable_data<int64_t>()[i] = values[i];
    else ids.mutable_data<int32_t>()[i] = static_cast<int32_t>(values[i]);
  }
  return ids;
}

cuda::EmbeddingParams params_for(const Tensor& ids, const DeviceMirror& dids, const Tensor& table,
                                 const DeviceMirror& dtable, const Tensor& out, const DeviceMirror& dout) {
  cuda::EmbeddingParams p;
  p.ids = dids.ptr();
  p.ids_dtype = ids.dtype();
  p.num_ids = ids.numel();
  p.table = dtable.ptr();
  p.table_dtype = table.dtype();
  p.vocab = table.size(0);
  p.table_row_stride = table.stride(0);
  p.out = dout.f32();
  p.out_rows = test::row_map_of(out);
  p.cols = table.size(1);
  return p;
}

}  // namespace

SHOWO2_TEST(embedding_matches_cpu) {
  test::require_cuda_device();
  cpu::CpuBackend cpu(2);
  uint32_t seed = 700;
  const int64_t V = 97;
  const std::vector<int64_t> id_values = {0, 96, 5, 5, 42, 1, 77, 96, 13, 0, 64};
  for (int64_t C : {int64_t{1}, int64_t{7}, int64_t{1153}, int64_t{1536}})
    for (DType tdt : {DType::F32, DType::BF16, DType::F16})
      for (DType idt : {DType::I32, DType::I64})
        for (bool sliced : {false, true}) {
          // sliced: the table is the first C columns of a wider [V, C + 3] tensor (row stride C + 3).
          Tensor full = Tensor::from_f32({V, C + 3}, random_normal(static_cast<size_t>(V * (C + 3)), seed++)).to(tdt);
          Tensor table = sliced ? full.slice(1, 0, C)
                                : Tensor::from_f32({V, C}, random_normal(static_cast<size_t>(V * C), seed++)).to(tdt);
          Tensor ids = make_ids(id_values, idt);
          Tensor ref = Tensor::empty({ids.numel(), C}, DType::F32);
          cpu.embedding(ids, table, ref);
          DeviceMirror dids(ids), dtable(table);
          Tensor out = Tensor::zeros({ids.numel(), C}, DType::F32);
          DeviceMirror dout(out);
          cuda::launch_embedding(params_for(ids, dids, table, dtable, out, dout), 0);
          const std::vector<float> got = dout.download_f32(), want = ref.to_f32_vector();
          EXPECT_CLOSE(got.data(), want.data(), want.size(), 0.0, 0.0,
                       "embedding C=" + std::to_string(C) + " " + dtype_name(tdt) + " " + dtype_name(idt) +
                           (sliced ? " sliced" : ""));
        }
}

SHOWO2_TEST(embedding_records_the_first_bad_device_id) {
  test::require_cuda_device();
  const int64_t V = 10, C = 9;
  Tensor table = Tensor::from_f32({V, C}, random_normal(static_cast<size_t>(V * C), 800));
  Tensor ids = make_ids({3, 10, 2, -1, 9}, DType::I64);  // positions 1 (10 >= V) and 3 (-1) are bad
  DeviceMirror dids(ids), dtable(table);
  Tensor out = Tensor::from_f32({5, C}, std::vector<float>(5 * C, 7.0f));
  DeviceMirror dout(out);
  unsigned long long* record = nullptr;
  SHOWO2_CUDA_CHECK(cudaMalloc(&record, sizeof(*record)));
  SHOWO2_CUDA_CHECK(cudaMemset(record, 0xff, sizeof(*record)));
  cuda::EmbeddingParams p = params_for(ids, dids, table, dtable, out, dout);
  p.bad_position = record;
  cuda::launch_embedding(p, 0);
  unsigned long long bad = 0;
  SHOWO2_CUDA_CHECK(cudaMemcpy(&bad, record, sizeof(bad), cudaMemcpyDeviceToHost));
  cudaFree(record);
  CHECK_EQ(bad, 1ull);  // the first bad position, whatever order the blocks ran in
  const std::vector<float> got = dout.download_f32(), t = table.to_f32_vector();
  for (int64_t c = 0; c < C; ++c) {
    CHECK_EQ(got[static_cast<size_t>(0 * C + c)], t[static_cast<size_t>(3 * C + c)]);  // good rows gathered
    CHECK_EQ(got[static_cast<size_t>(1 * C + c)], 0.0f);                                 // bad rows zeroed
    CHECK_EQ(got[static_cast<size_t>(3 * C + c)], 0.0f);
  }
}

SHOWO2_TEST(embedding_host_ids_are_checked_with_the_cpu_message) {
  // Runs without a device: host ids are validated before anything is uploaded.
  Tensor ids = make_ids({0, 4, 12}, DType::I32);
  CHECK_THROWS_CODE(check_embedding_ids(ids.raw(), DType::I32, 3, 12), InvalidArgument);
  try {
    check_embedding_ids(ids.raw(), DType::I32, 3, 12);
    CHECK(false);
  } catch (const Error& e) {
    CHECK_EQ(std::string(e.what()), std::string("embedding: ids: id 12 at position 2 is outside the table's [0, 12)"));
  }
  cuda::EmbeddingParams p;
  p.ids_dtype = DType::F32;
  CHECK_THROWS_CODE(cuda::launch_embedding(p, 0), UnsupportedDtype);
}

SHOWO2_TEST_MAIN()
