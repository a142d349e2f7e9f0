// cpu::copy / upsample_nearest2x (native/core/cpu/layout.cpp) against index loops written here: strided views on
// either side (the VAE's NCTHW <-> token-major change, a slice along T as a concatenation target), threads; errors.
//
// Exactness: both ops move values without arithmetic, so the tests compare with ==.
#include <cstdint>
#include <string>
#include <vector>

#include "cpu/ops.h"
#include "cpu/thread_pool.h"
#include "tensor.h"
#include "test_util.h"

using namespace showo2;
using showo2::test::random_vector;

SHOWO2_TEST(copy_changes_layout_ncthw_to_token_major_and_back) {
  cpu::ThreadPool pool(2);
  const int64_t N = 2, C = 5, T = 3, H = 4, W = 6;
  auto xv = random_vector(static_cast<size_t>(N * C * T * H * W), 11);
  Tensor x = Tensor::from_f32({N, C, T, H * W}, xv);
  // token-major [N, T, HW, C] = x.permute(0, 2, 3, 1)
  Tensor tokens = Tensor::empty({N, T, H * W, C}, DType::F32);
  cpu::copy(x.transpose(1, 2).transpose(2, 3), tokens, &pool);
  const float* pt = tokens.data<float>();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t p = 0; p < H * W; ++p)
          CHECK_EQ(pt[((n * T + t) * H * W + p) * C + c], xv[((n * C + c) * T + t) * H * W + p]);
  // ... and back, writing through a strided destination view.
  Tensor back = Tensor::empty({N, C, T, H * W}, DType::F32);
  Tensor back_view = back.transpose(1, 2).transpose(2, 3);
  cpu::copy(tokens, back_view, nullptr);
  CHECK(back.to_f32_vector() == xv);
}

SHOWO2_TEST(copy_into_a_time_slice_concatenates) {
  const int64_t N = 1, C = 3, H = 2, W = 3;
  auto a = random_vector(static_cast<size_t>(N * C * 2 * H * W), 12);
  auto b = random_vector(static_cast<size_t>(N * C * 3 * H * W), 13);
  Tensor cat = Tensor::empty({N, C, 5, H, W}, DType::F32);
  Tensor s0 = cat.slice(2, 0, 2), s1 = cat.slice(2, 2, 5);
  cpu::copy(Tensor::from_f32({N, C, 2, H, W}, a), s0, nullptr);
  cpu::copy(Tensor::from_f32({N, C, 3, H, W}, b), s1, nullptr);
  auto y = cat.to_f32_vector();
  for (int64_t c = 0; c < C; ++c)
    for (int64_t t = 0; t < 5; ++t)
      for (int64_t p = 0; p < H * W; ++p) {
        const float expected = t < 2 ? a[(c * 2 + t) * H * W + p] : b[(c * 3 + (t - 2)) * H * W + p];
        CHECK_EQ(y[(c * 5 + t) * H * W + p], expected);
      }
  // A 0-D copy and a copy onto itself are fine.
  Tensor s = Tensor::from_f32({}, {3.0f}), d = Tensor::zeros({}, DType::F32);
  cpu::copy(s, d, nullptr);
  CHECK_EQ(d.to_f32_vector()[0], 3.0f);
  cpu::copy(cat, cat, nullptr);
  CHECK(cat.to_f32_vector() == y);
}

SHOWO2_TEST(copy_rejects_bad_arguments) {
  Tensor x = Tensor::zeros({2, 3}, DType::F32);
  Tensor wrong_shape = Tensor::empty({3, 2}, DType::F32);
  CHECK_THROWS_CODE(cpu::copy(x, wrong_shape, nullptr), ShapeMismatch);
  Tensor bf = Tensor::zeros({2, 3}, DType::BF16);
  CHECK_THROWS_CODE(cpu::copy(bf, x, nullptr), UnsupportedDtype);
  Tensor big = Tensor::zeros({4, 3}, DType::F32);
  Tensor lo = big.slice(0, 0, 3), hi = big.slice(0, 1, 4);
  CHECK_THROWS_CODE(cpu::copy(lo, hi, nullptr), InvalidArgument);
}

SHOWO2_TEST(upsample_nearest2x_repeats_each_pixel) {
  cpu::ThreadPool pool(2);
  for (const Shape& shape : std::vector<Shape>{{1, 3, 2, 5, 7}, {2, 4, 3, 1}, {1, 96, 1, 8, 8}}) {
    const int64_t H = shape[shape.size() - 2], W = shape.back();
    const int64_t planes = shape_numel(shape) / (H * W);
    auto xv = random_vector(static_cast<size_t>(shape_numel(shape)), 14);
    Shape out_shape = shape;
    out_shape[out_shape.size() - 2] *= 2;
    out_shape.back() *= 2;
    Tensor out = Tensor::empty(out_shape, DType::F32);
    cpu::upsample_nearest2x(Tensor::from_f32(shape, xv), out, &pool);
    auto y = out.to_f32_vector();
    for (int64_t p = 0; p < planes; ++p)
      for (int64_t h = 0; h < 2 * H; ++h)
        for (int64_t w = 0; w < 2 * W; ++w)
          CHECK_EQ(y[(p * 2 * H + h) * 2 * W + w], xv[(p * H + h / 2) * W + w / 2]);
  }
}

SHOWO2_TEST(upsample_nearest2x_rejects_bad_arguments) {
  Tensor x = Tensor::zeros({1, 2, 3, 4}, DType::F32);
  Tensor same = Tensor::empty({1, 2, 3, 4}, DType::F32);
  CHECK_THROWS_CODE(cpu::upsample_nearest2x(x, same, nullptr), ShapeMismatch);
  Tensor flat = Tensor::zeros({2, 3, 4}, DType::F32), flat_out = Tensor::empty({2, 6, 8}, DType::F32);
  CHECK_THROWS_CODE(cpu::upsample_nearest2x(flat, flat_out, nullptr), ShapeMismatch);
  Tensor out = Tensor::empty({1, 2, 6, 8}, DType::F32);
  CHECK_THROWS_CODE(cpu::upsample_nearest2x(x.to(DType::F16), out, nullptr), UnsupportedDtype);
}

SHOWO2_TEST_MAIN()
