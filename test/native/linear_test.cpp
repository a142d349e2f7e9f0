// cpu::linear and cpu::matmul (native/core/cpu/linear.cpp): layouts, broadcasting and argument checks. The GEMM
// underneath is tested exhaustively in gemm_test.cpp; here the reference is a plain double loop over the logical
// (strided) tensors, so a wrong flattening or stride shows up even if the GEMM is right.
//
// Tolerance as in gemm_test.cpp: F32 accumulation in another order than the double reference, inputs in [-1, 1]:
// atol = 1e-6 · (K + 1), rtol = 1e-5 · sqrt(K + 1) (the error grows ~ eps32 · K / 3; the margin is ~50x).
#include <cmath>
#include <string>
#include <vector>

#include "cpu/ops.h"
#include "cpu/thread_pool.h"
#include "tensor.h"
#include "test_util.h"

using namespace showo2;

namespace {

Tensor random_tensor(const Shape& shape, uint32_t seed) {
  return Tensor::from_f32(shape, test::random_vector(static_cast<size_t>(shape_numel(shape)), seed));
}

Tensor filled(const Shape& shape, float value) {
  return Tensor::from_f32(shape, std::vector<float>(static_cast<size_t>(shape_numel(shape)), value));
}

// out[r, n] for a 2-D view of rows: x_rows [R, K], weight [N, K] (any float dtype), bias [N] or undefined.
std::vector<float> linear_reference(const std::vector<float>& x_rows, int64_t K, const Tensor& weight,
                                    const Tensor& bias) {
  const int64_t N = weight.size(0), R = static_cast<int64_t>(x_rows.size()) / std::max<int64_t>(K, 1);
  std::vector<float> w = weight.to_f32_vector();
  std::vector<float> b = bias.defined() ? bias.to_f32_vector() : std::vector<float>();
  std::vector<float> out(static_cast<size_t>(R * N));
  for (int64_t r = 0; r < R; ++r)
    for (int64_t n = 0; n < N; ++n) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k) acc += static_cast<double>(x_rows[r * K + k]) * w[n * K + k];
      out[r * N + n] = static_cast<float>(acc) + (b.empty() ? 0.0f : b[n]);
    }
  return out;
}

void expect_close_k(const std::vector<float>& out, const std::vector<float>& ref, int64_t K, const std::string& what) {
  CHECK_EQ(out.size(), ref.size());
  EXPECT_CLOSE(out.data(), ref.data(), out.size(), 1e-6 * (K + 1), 1e-5 * std::sqrt(K + 1.0), what);
}

}  // namespace

// ---- linear ---------------------------------------------------------------------------------------------------------

SHOWO2_TEST(linear_matches_reference_for_every_weight_and_bias_dtype) {
  cpu::ThreadPool pool(2);
  const int64_t K = 67, N = 45;
  Tensor x = random_tensor({2, 3, K}, 1);  // leading dims [2, 3] flatten to 6 rows
  for (DType wdt : {DType::F32, DType::BF16, DType::F16})
    for (int bias_kind = 0; bias_kind < 4; ++bias_kind) {  // none, F32, BF16, F16
      Tensor weight = random_tensor({N, K}, 2).to(wdt);
      Tensor bias;
      const DType bias_dtypes[] = {DType::F32, DType::F32, DType::BF16, DType::F16};
      if (bias_kind > 0) bias = random_tensor({N}, 3).to(bias_dtypes[bias_kind]);
      Tensor out = filled({2, 3, N}, NAN);
      cpu::linear(x, weight, bias, out, &pool);
      expect_close_k(out.to_f32_vector(), linear_reference(x.to_f32_vector(), K, weight, bias), K,
                     std::string("weight ") + dtype_name(wdt) + " bias kind " + std::to_string(bias_kind));
    }
}

SHOWO2_TEST(linear_decode_and_prefill_shapes) {
  // M = 1 takes the unpacked decode path, M = 70 the packed one; both with a BF16 weight as checkpoints ship it.
  cpu::ThreadPool pool(2);
  const int64_t K = 96, N = 131;
  Tensor weight = random_tensor({N, K}, 5).to(DType::BF16);
  Tensor bias = random_tensor({N}, 6);
  for (int64_t rows : {1, 70}) {
    Tensor x = random_tensor({rows, K}, 7);
    Tensor out = Tensor::empty({rows, N}, DType::F32);
    cpu::linear(x, weight, bias, out, &pool);
    expect_close_k(out.to_f32_vector(), linear_reference(x.to_f32_vector(), K, weight, bias), K,
                   "rows " + std::to_string(rows));
  }
}

SHOWO2_TEST(linear_accepts_1d_input) {
  const int64_t K = 10, N = 4;
  Tensor x = random_tensor({K}, 8);
  Tensor weight = random_tensor({N, K}, 9);
  Tensor out = Tensor::empty({N}, DType::F32);
  cpu::linear(x, weight, Tensor(), out, nullptr);
  expect_close_k(out.to_f32_vector(), linear_reference(x.to_f32_vector(), K, weight, Tensor()), K, "1-D x");
}

SHOWO2_TEST(linear_strided_rows_in_and_out) {
  // x is K middle columns of a wider buffer (like one slice of a fused projection); out writes columns [3, 3 + N) of a
  // wider buffer whose other columns must stay untouched.
  cpu::ThreadPool pool(2);
  const int64_t K = 40, N = 33;
  Tensor wide_x = random_tensor({4, 5, K + 9}, 10);
  Tensor x = wide_x.slice(2, 4, 4 + K);  // [4, 5, K], rows strided by K + 9
  Tensor weight = random_tensor({N, K}, 11).to(DType::F16);
  Tensor bias = random_tensor({N}, 12);
  Tensor wide_out = filled({4, 5, N + 7}, -7.0f);
  Tensor out = wide_out.slice(2, 3, 3 + N);  // [4, 5, N], rows strided by N + 7
  cpu::linear(x, weight, bias, out, &pool);
  expect_close_k(out.to_f32_vector(), linear_reference(x.to_f32_vector(), K, weight, bias), K, "strided rows");
  std::vector<float> all = wide_out.to_f32_vector();
  for (int64_t r = 0; r < 20; ++r)
    for (int64_t j = 0; j < N + 7; ++j)
      if (j < 3 || j >= 3 + N) CHECK_EQ(all[static_cast<size_t>(r * (N + 7) + j)], -7.0f);
}

SHOWO2_TEST(linear_strided_weight_and_bias) {
  // A weight that is a row slice of a fused [3N, K'] matrix (row stride K' > K is fine), a bias with stride 2.
  const int64_t K = 24, N = 10;
  Tensor fused = random_tensor({3 * N, K + 4}, 13);
  Tensor weight = fused.slice(0, N, 2 * N).slice(1, 0, K);  // [N, K], row stride K + 4
  Tensor bias_buffer = random_tensor({2 * N}, 14);
  Tensor bias = Tensor::view_of(bias_buffer.storage(), DType::F32, {N}, {2}, 0);
  Tensor x = random_tensor({3, K}, 15);
  Tensor out = Tensor::empty({3, N}, DType::F32);
  cpu::linear(x, weight, bias, out, nullptr);
  expect_close_k(out.to_f32_vector(), linear_reference(x.to_f32_vector(), K, weight.contiguous(), bias), K,
                 "strided weight");
}

SHOWO2_TEST(linear_empty_inputs) {
  // No rows: nothing to do. K = 0: out = bias.
  Tensor weight = random_tensor({6, 8}, 16);
  Tensor x0 = Tensor::empty({0, 8}, DType::F32);
  Tensor out0 = Tensor::empty({0, 6}, DType::F32);
  cpu::linear(x0, weight, Tensor(), out0, nullptr);
  Tensor xk = Tensor::empty({2, 0}, DType::F32);
  Tensor wk = Tensor::empty({3, 0}, DType::F32);
  Tensor bias = Tensor::from_f32({3}, {1.0f, 2.0f, 3.0f});
  Tensor outk = filled({2, 3}, NAN);
  cpu::linear(xk, wk, bias, outk, nullptr);
  std::vector<float> expected = {1, 2, 3, 1, 2, 3};
  std::vector<float> got = outk.to_f32_vector();
  EXPECT_CLOSE(got.data(), expected.data(), 6, 0.0, 0.0, "K = 0");
}

SHOWO2_TEST(linear_rejects_bad_arguments) {
  const int64_t K = 8, N = 5;
  Tensor x = random_tensor({3, K}, 17);
  Tensor weight = random_tensor({N, K}, 18);
  Tensor bias = random_tensor({N}, 19);
  Tensor out = Tensor::empty({3, N}, DType::F32);

  CHECK_THROWS_CODE(cpu::linear(Tensor(), weight, bias, out, nullptr), InvalidArgument);
  CHECK_THROWS_CODE(cpu::linear(x.to(DType::BF16), weight, bias, out, nullptr), UnsupportedDtype);
  CHECK_THROWS_CODE(cpu::linear(x, Tensor::zeros({N, K}, DType::I32), bias, out, nullptr), UnsupportedDtype);
  CHECK_THROWS_CODE(cpu::linear(x, random_tensor({N, K + 1}, 20), bias, out, nullptr), ShapeMismatch);
  CHECK_THROWS_CODE(cpu::linear(x, random_tensor({1, N, K}, 21), bias, out, nullptr), ShapeMismatch);
  CHECK_THROWS_CODE(cpu::linear(x, random_tensor({K, N}, 22).transpose(0, 1), bias, out, nullptr), ShapeMismatch);
  CHECK_THROWS_CODE(cpu::linear(x, weight, random_tensor({N + 1}, 23), out, nullptr), ShapeMismatch);
  CHECK_THROWS_CODE(cpu::linear(x, weight, Tensor::zeros({N}, DType::I64), out, nullptr), UnsupportedDtype);
  Tensor wrong_rows = Tensor::empty({2, N}, DType::F32);
  CHECK_THROWS_CODE(cpu::linear(x, weight, bias, wrong_rows, nullptr), ShapeMismatch);
  Tensor wrong_cols = Tensor::empty({3, N + 1}, DType::F32);
  CHECK_THROWS_CODE(cpu::linear(x, weight, bias, wrong_cols, nullptr), ShapeMismatch);
  Tensor half_out = Tensor::empty({3, N}, DType::F16);
  CHECK_THROWS_CODE(cpu::linear(x, weight, bias, half_out, nullptr), UnsupportedDtype);
  // The last dimension must be contiguous.
  Tensor x_t = random_tensor({K, 3}, 24).transpose(0, 1);
  CHECK_THROWS_CODE(cpu::linear(x_t, weight, bias, out, nullptr), ShapeMismatch);
  // Leading dims that do not flatten to evenly strided rows: [4, 3, K] viewed as [3, 4, K].
  Tensor x_perm = random_tensor({4, 3, K}, 25).transpose(0, 1);
  Tensor out_perm = Tensor::empty({3, 4, N}, DType::F32);
  CHECK_THROWS_CODE(cpu::linear(x_perm, weight, bias, out_perm, nullptr), ShapeMismatch);
  // A read-only output (e.g. a view of a mapped checkpoint).
  std::vector<float> frozen(static_cast<size_t>(3 * N));
  Tensor ro = Tensor::view_of(Storage::borrow(frozen.data(), frozen.size() * 4, nullptr), DType::F32, {3, N}, {N, 1},
                              0);
  CHECK_THROWS_CODE(cpu::linear(x, weight, bias, ro, nullptr), InvalidArgument);
  // Writing over the input while reading it.
  Tensor square_w = random_tensor({K, K}, 26);
  Tensor in_place = random_tensor({3, K}, 27);
  CHECK_THROWS_CODE(cpu::linear(in_place, square_w, Tensor(), in_place, nullptr), InvalidArgument);
}

// ---- matmul ---------------------------------------------------------------------------------------------------------

namespace {

// out[b] = a[b] · op(b[b]) on logical (strided) tensors, in double.
std::vector<float> matmul_reference(const Tensor& a, const Tensor& b, bool transpose_b) {
  const int64_t batch = a.size(0), M = a.size(1), K = a.size(2), N = transpose_b ? b.size(1) : b.size(2);
  std::vector<float> av = a.to_f32_vector(), bv = b.to_f32_vector();
  const int64_t b_stride = b.size(0) == 1 ? 0 : b.size(1) * b.size(2);
  std::vector<float> out(static_cast<size_t>(batch * M * N));
  for (int64_t i = 0; i < batch; ++i)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        double acc = 0;
        for (int64_t k = 0; k < K; ++k) {
          float bk = transpose_b ? bv[i * b_stride + n * K + k] : bv[i * b_stride + k * N + n];
          acc += static_cast<double>(av[(i * M + m) * K + k]) * bk;
        }
        out[(i * M + m) * N + n] = static_cast<float>(acc);
      }
  return out;
}

}  // namespace

SHOWO2_TEST(matmul_batched_broadcast_and_transposed) {
  cpu::ThreadPool pool(2);
  const int64_t M = 19, K = 37, N = 23;
  for (int64_t batch : {1, 3})
    for (int64_t b_batch : {int64_t{1}, batch})
      for (bool transpose_b : {false, true}) {
        Tensor a = random_tensor({batch, M, K}, 30);
        Tensor b = random_tensor(transpose_b ? Shape{b_batch, N, K} : Shape{b_batch, K, N}, 31);
        Tensor out = filled({batch, M, N}, NAN);
        cpu::matmul(a, b, transpose_b, out, &pool);
        expect_close_k(out.to_f32_vector(), matmul_reference(a, b, transpose_b), K,
                       "batch " + std::to_string(batch) + " b batch " + std::to_string(b_batch) +
                           (transpose_b ? " NT" : " NN"));
      }
}

SHOWO2_TEST(matmul_many_small_products_and_strided_views) {
  // 16 heads of q·k^T-like products (parallel over the batch), with a and b being head slices of [L, H, D] buffers
  // transposed to [H, L, D]: batch stride D, row stride H·D.
  cpu::ThreadPool pool(2);
  const int64_t H = 16, L = 21, D = 12;
  Tensor q = random_tensor({L, H, D}, 32).transpose(0, 1);  // [H, L, D]
  Tensor k = random_tensor({L, H, D}, 33).transpose(0, 1);  // [H, L, D]
  Tensor scores = Tensor::empty({H, L, L}, DType::F32);
  cpu::matmul(q, k, true, scores, &pool);
  expect_close_k(scores.to_f32_vector(), matmul_reference(q, k, true), D, "strided heads");
  // And one large product with M = 1 (NN, packed path).
  Tensor a = random_tensor({1, 1, 300}, 34);
  Tensor b = random_tensor({1, 300, 257}, 35);
  Tensor out = Tensor::empty({1, 1, 257}, DType::F32);
  cpu::matmul(a, b, false, out, &pool);
  expect_close_k(out.to_f32_vector(), matmul_reference(a, b, false), 300, "M = 1 NN");
}

SHOWO2_TEST(matmul_empty_batch_and_rows) {
  Tensor a = Tensor::empty({0, 3, 4}, DType::F32);
  Tensor b = Tensor::empty({1, 4, 5}, DType::F32);
  Tensor out = Tensor::empty({0, 3, 5}, DType::F32);
  cpu::matmul(a, b, false, out, nullptr);
  Tensor a0 = Tensor::empty({2, 0, 4}, DType::F32);
  Tensor out0 = Tensor::empty({2, 0, 5}, DType::F32);
  cpu::matmul(a0, b, false, out0, nullptr);
}

SHOWO2_TEST(matmul_rejects_bad_arguments) {
  Tensor a = random_tensor({2, 3, 4}, 40);
  Tensor b = random_tensor({2, 4, 5}, 41);
  Tensor out = Tensor::empty({2, 3, 5}, DType::F32);
  cpu::matmul(a, b, false, out, nullptr);

  CHECK_THROWS_CODE(cpu::matmul(random_tensor({3, 4}, 42), b, false, out, nullptr), ShapeMismatch);
  CHECK_THROWS_CODE(cpu::matmul(a, random_tensor({4, 5}, 43), false, out, nullptr), ShapeMismatch);
  CHECK_THROWS_CODE(cpu::matmul(a, random_tensor({3, 4, 5}, 44), false, out, nullptr), ShapeMismatch);  // batch 3 vs 2
  CHECK_THROWS_CODE(cpu::matmul(a, random_tensor({2, 6, 5}, 45), false, out, nullptr), ShapeMismatch);  // K 6 vs 4
  CHECK_THROWS_CODE(cpu::matmul(a, b, true, out, nullptr), ShapeMismatch);  // b as [B, N, K] has K = 5
  Tensor wide_out = Tensor::empty({2, 3, 6}, DType::F32);
  CHECK_THROWS_CODE(cpu::matmul(a, b, false, wide_out, nullptr), ShapeMismatch);
  CHECK_THROWS_CODE(cpu::matmul(a.to(DType::F16), b, false, out, nullptr), UnsupportedDtype);
  CHECK_THROWS_CODE(cpu::matmul(a, b.to(DType::BF16), false, out, nullptr), UnsupportedDtype);
  Tensor half_out = Tensor::empty({2, 3, 5}, DType::BF16);
  CHECK_THROWS_CODE(cpu::matmul(a, b, false, half_out, nullptr), UnsupportedDtype);
  CHECK_THROWS_CODE(cpu::matmul(a, Tensor(), false, out, nullptr), InvalidArgument);
  Tensor b_cols = random_tensor({2, 5, 4}, 46).transpose(1, 2);  // [2, 4, 5] with a strided last dim
  CHECK_THROWS_CODE(cpu::matmul(a, b_cols, false, out, nullptr), ShapeMismatch);
}

SHOWO2_TEST_MAIN()
