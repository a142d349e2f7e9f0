// cpu::add / mul / scale / clamp (native/core/cpu/elementwise.cpp): same-shape and suffix-broadcast operands, strided views,
// in place, threads; argument errors.
//
// Exactness: each output is one fp32 operation (add, mul) or two (scale: a product rounded, then a sum rounded), the
// same operations the references below perform in fp32, so results must match bit for bit; the tests compare with ==.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cpu/ops.h"
#include "cpu/thread_pool.h"
#include "tensor.h"
#include "test_util.h"

using namespace showo2;
using showo2::test::random_vector;

SHOWO2_TEST(add_and_mul_same_shape_and_broadcast) {
  cpu::ThreadPool pool(2);
  const int64_t B = 3, L = 70, C = 129;  // 27090 elements: enough for the pool to split
  std::vector<float> av = random_vector(static_cast<size_t>(B * L * C), 1);
  Tensor a = Tensor::from_f32({B, L, C}, av);
  // b as a's full shape, as [L, C] (per-position, e.g. a position table) and as [C] (a bias-like vector).
  for (const Shape& b_shape : {Shape{B, L, C}, Shape{L, C}, Shape{C}})
    for (bool is_add : {true, false}) {
      std::vector<float> bv = random_vector(static_cast<size_t>(shape_numel(b_shape)), 2);
      Tensor b = Tensor::from_f32(b_shape, bv);
      Tensor out = Tensor::empty({B, L, C}, DType::F32);
      if (is_add) cpu::add(a, b, out, &pool);
      else cpu::mul(a, b, out, &pool);
      std::vector<float> got = out.to_f32_vector();
      bool ok = true;
      for (size_t i = 0; i < av.size(); ++i) {
        const float bi = bv[i % bv.size()];
        ok &= got[i] == (is_add ? av[i] + bi : av[i] * bi);
      }
      if (!ok)
        test::fail_at(__FILE__, __LINE__, std::string(is_add ? "add" : "mul") + " with b " + shape_to_string(b_shape));
    }
}

SHOWO2_TEST(scalar_b_broadcasts_everywhere) {
  Tensor a = Tensor::from_f32({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor b = Tensor::from_f32({}, {10});
  Tensor out = Tensor::empty({2, 3}, DType::F32);
  cpu::add(a, b, out, nullptr);
  CHECK(out.to_f32_vector() == (std::vector<float>{11, 12, 13, 14, 15, 16}));
}

SHOWO2_TEST(elementwise_in_place_on_views) {
  // a is a strided view (a column slice); out aliases it; the rest of the storage is untouched.
  std::vector<float> base_values = random_vector(4 * 10, 3);
  Tensor base = Tensor::from_f32({4, 10}, base_values);
  Tensor a = base.slice(1, 2, 7);  // [4, 5], row stride 10
  std::vector<float> a_before = a.to_f32_vector();
  std::vector<float> bv = random_vector(5, 4);
  cpu::mul(a, Tensor::from_f32({5}, bv), a, nullptr);
  std::vector<float> a_after = a.to_f32_vector();
  for (size_t i = 0; i < a_after.size(); ++i) CHECK_EQ(a_after[i], a_before[i] * bv[i % 5]);
  cpu::scale(a, 0.5f, -1.0f, a, nullptr);
  std::vector<float> scaled = a.to_f32_vector();
  for (size_t i = 0; i < scaled.size(); ++i) CHECK_EQ(scaled[i], a_after[i] * 0.5f + -1.0f);
  std::vector<float> all = base.to_f32_vector();
  CHECK_EQ(all[0], base_values[0]);
  CHECK_EQ(all[1], base_values[1]);
  CHECK_EQ(all[7], base_values[7]);
  CHECK_EQ(all[39], base_values[39]);
}

SHOWO2_TEST(scale_matches_fp32_formula) {
  cpu::ThreadPool pool(2);
  std::vector<float> xv = random_vector(40000, 5, -100, 100);
  Tensor x = Tensor::from_f32({200, 200}, xv);
  Tensor out = Tensor::empty({200, 200}, DType::F32);
  cpu::scale(x, 1.7f, 0.25f, out, &pool);
  std::vector<float> got = out.to_f32_vector();
  bool ok = true;
  for (size_t i = 0; i < xv.size(); ++i) ok &= got[i] == xv[i] * 1.7f + 0.25f;
  CHECK(ok);
}

SHOWO2_TEST(elementwise_rejects_bad_arguments) {
  Tensor a = Tensor::zeros({2, 3, 4}, DType::F32);
  Tensor out = Tensor::empty({2, 3, 4}, DType::F32);
  CHECK_THROWS_CODE(cpu::add(a, Tensor::zeros({3, 5}, DType::F32), out, nullptr), ShapeMismatch);
  CHECK_THROWS_CODE(cpu::add(a, Tensor::zeros({2, 1, 4}, DType::F32), out, nullptr), ShapeMismatch);  // no size-1 bcast
  CHECK_THROWS_CODE(cpu::mul(a, Tensor::zeros({1, 2, 3, 4}, DType::F32), out, nullptr), ShapeMismatch);
  CHECK_THROWS_CODE(cpu::mul(a, Tensor::zeros({4}, DType::BF16), out, nullptr), UnsupportedDtype);
  Tensor out_235 = Tensor::empty({2, 3, 5}, DType::F32), out_flat = Tensor::empty({24}, DType::F32);
  CHECK_THROWS_CODE(cpu::add(a, Tensor::zeros({4}, DType::F32), out_235, nullptr), ShapeMismatch);
  CHECK_THROWS_CODE(cpu::scale(a, 1.0f, 0.0f, out_flat, nullptr), ShapeMismatch);
  CHECK_THROWS_CODE(cpu::scale(a.transpose(1, 2), 1.0f, 0.0f, out, nullptr), ShapeMismatch);
  Tensor b_strided = Tensor::zeros({4, 3}, DType::F32).transpose(0, 1).slice(1, 0, 4);  // [3, 4], not contiguous
  CHECK_THROWS_CODE(cpu::add(a, b_strided, out, nullptr), ShapeMismatch);
  try {
    cpu::add(a, Tensor::zeros({3, 5}, DType::F32), out, nullptr);
    CHECK(false);
  } catch (const Error& e) {
    CHECK_EQ(std::string(e.what()),
             std::string("add: b: expected a's shape [2, 3, 4] or a suffix of it but got [3, 5]"));
  }
}

SHOWO2_TEST(clamp_bounds_values_and_keeps_nan) {
  const float nan = std::nanf("");
  Tensor x = Tensor::from_f32({2, 3}, {-2.0f, -1.0f, 0.25f, 1.0f, 7.0f, nan});
  Tensor out = Tensor::empty({2, 3}, DType::F32);
  cpu::clamp(x, -1.0f, 1.0f, out, nullptr);
  auto y = out.to_f32_vector();
  CHECK_EQ(y[0], -1.0f);
  CHECK_EQ(y[1], -1.0f);
  CHECK_EQ(y[2], 0.25f);
  CHECK_EQ(y[3], 1.0f);
  CHECK_EQ(y[4], 1.0f);
  CHECK(std::isnan(y[5]));
  cpu::clamp(x, 0.0f, 0.5f, x, nullptr);  // in place
  CHECK_EQ(x.to_f32_vector()[4], 0.5f);
  CHECK_THROWS_CODE(cpu::clamp(out, 1.0f, -1.0f, out, nullptr), InvalidArgument);
  Tensor wrong = Tensor::empty({3, 2}, DType::F32);
  CHECK_THROWS_CODE(cpu::clamp(out, -1.0f, 1.0f, wrong, nullptr), ShapeMismatch);
}

SHOWO2_TEST_MAIN()
