// Tensor views, bounds validation and dtype conversions.
#include <cmath>
#include <cstring>
#include <limits>

#include "tensor.h"
#include "test_util.h"

using namespace showo2;

SHOWO2_TEST(contiguous_strides_and_views) {
  Tensor t = Tensor::from_f32({2, 3, 4}, showo2::test::random_vector(24, 1));
  CHECK(t.is_contiguous());
  CHECK_EQ(t.strides(), (Shape{12, 4, 1}));
  Tensor tr = t.transpose(0, 2);  // [4, 3, 2]
  CHECK(!tr.is_contiguous());
  CHECK_EQ(tr.shape(), (Shape{4, 3, 2}));
  std::vector<float> src = t.to_f32_vector();
  std::vector<float> viewed = tr.to_f32_vector();
  // tr[i][j][k] == t[k][j][i]
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 2; ++k) CHECK_EQ(viewed[(i * 3 + j) * 2 + k], src[(k * 3 + j) * 4 + i]);
  Tensor c = tr.contiguous();
  CHECK(c.is_contiguous());
  CHECK(c.to_f32_vector() == viewed);

  Tensor s = t.slice(1, 1, 3);  // [2, 2, 4]
  CHECK_EQ(s.shape(), (Shape{2, 2, 4}));
  CHECK_EQ(s.to_f32_vector()[0], src[4]);
  Tensor sel = t.select(0, 1);  // [3, 4]
  CHECK_EQ(sel.to_f32_vector()[0], src[12]);
  CHECK_EQ(t.reshape({6, -1}).shape(), (Shape{6, 4}));
  CHECK_EQ(t.unsqueeze(0).shape(), (Shape{1, 2, 3, 4}));
}

SHOWO2_TEST(permute_and_channels_last_layout) {
  // [N, C, T, H, W] = [2, 3, 2, 2, 4] laid out channels-last: memory [N, T, H, W, C].
  const Shape shape = {2, 3, 2, 2, 4};
  CHECK_EQ(channels_last_strides(shape), (Shape{48, 1, 24, 12, 3}));
  CHECK_EQ(channels_last_to_memory_order(5), (Shape{0, 2, 3, 4, 1}));
  CHECK_EQ(memory_order_to_channels_last(5), (Shape{0, 4, 1, 2, 3}));
  Tensor memory = Tensor::from_f32({2, 2, 2, 4, 3}, showo2::test::random_vector(96, 2));
  Tensor cl = memory.permute(memory_order_to_channels_last(5));
  CHECK_EQ(cl.shape(), shape);
  CHECK_EQ(cl.strides(), channels_last_strides(shape));
  CHECK(cl.is_channels_last());
  CHECK(!cl.is_contiguous());
  // Element [n, c, t, h, w] of the view is memory[n, t, h, w, c].
  const std::vector<float> m = memory.to_f32_vector(), v = cl.to_f32_vector();
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t t = 0; t < 2; ++t)
        for (int64_t h = 0; h < 2; ++h)
          for (int64_t w = 0; w < 4; ++w)
            CHECK_EQ(v[static_cast<size_t>((((n * 3 + c) * 2 + t) * 2 + h) * 4 + w)],
                     m[static_cast<size_t>((((n * 2 + t) * 2 + h) * 4 + w) * 3 + c)]);
  // The memory-order view walks the bytes in order, whatever the layout.
  CHECK(cl.memory_order_view().to_f32_vector() == m);
  CHECK(memory.memory_order_view().to_f32_vector() == m);
  CHECK_EQ(cl.memory_order_view().shape(), (Shape{96}));
  // Size-1 dims are ignored: C == 1 or T = H = W = 1 is both layouts.
  Tensor single = Tensor::zeros({2, 1, 2, 2, 2}, DType::F32);
  CHECK(single.is_contiguous() && single.is_channels_last());
  Tensor pixel = Tensor::zeros({2, 5, 1, 1, 1}, DType::F32);
  CHECK(pixel.is_contiguous() && pixel.is_channels_last());
  // Neither layout, and too few dims.
  CHECK(!Tensor::zeros({2, 3, 4, 5}, DType::F32).transpose(2, 3).is_channels_last());
  CHECK(!Tensor::zeros({2, 3}, DType::F32).is_channels_last());
  CHECK_THROWS_CODE(Tensor::zeros({2, 3, 4}, DType::F32).transpose(0, 2).memory_order_view(), InvalidArgument);
  CHECK_THROWS_CODE(cl.permute({0, 1, 2, 3}), InvalidArgument);
  CHECK_THROWS_CODE(cl.permute({0, 1, 2, 3, 3}), InvalidArgument);
  CHECK_THROWS_CODE(channels_last_strides({2, 3}), ShapeMismatch);
}

SHOWO2_TEST(bad_views_are_typed_errors) {
  Tensor t = Tensor::zeros({2, 3}, DType::F32);
  CHECK_THROWS_CODE(t.reshape({4, 2}), ShapeMismatch);
  CHECK_THROWS_CODE(t.reshape({-1, -1}), ShapeMismatch);
  CHECK_THROWS_CODE(t.slice(1, 2, 5), InvalidArgument);
  CHECK_THROWS_CODE(t.transpose(0, 1).reshape({6}), ShapeMismatch);
  CHECK_THROWS_CODE(t.size(2), InvalidArgument);
  CHECK_THROWS_CODE(t.data<uint16_t>(), UnsupportedDtype);
  auto storage = Storage::allocate(24);
  // 7 floats do not fit in 24 bytes; neither does an offset view; a huge stride must not wrap around.
  CHECK_THROWS_CODE(Tensor::view_of(storage, DType::F32, {7}, {1}, 0), ShapeMismatch);
  CHECK_THROWS_CODE(Tensor::view_of(storage, DType::F32, {6}, {1}, 4), ShapeMismatch);
  CHECK_THROWS_CODE(Tensor::view_of(storage, DType::F32, {2}, {INT64_MAX / 2}, 0), ShapeMismatch);
  CHECK_THROWS_CODE(Tensor::view_of(storage, DType::F32, {2}, {1}, 2), InvalidArgument);
  Tensor ok = Tensor::view_of(storage, DType::F32, {2, 3}, {3, 1}, 0);
  CHECK_EQ(ok.numel(), 6);
}

SHOWO2_TEST(borrowed_storage_is_read_only_and_keeps_owner_alive) {
  auto owner = std::make_shared<std::vector<float>>(4, 1.5f);
  auto storage = Storage::borrow(owner->data(), owner->size() * 4, owner);
  std::weak_ptr<std::vector<float>> weak = owner;
  owner.reset();
  CHECK(!weak.expired());  // the storage keeps the owner alive
  Tensor t = Tensor::view_of(storage, DType::F32, {4}, {1}, 0);
  CHECK(t.read_only());
  CHECK_EQ(t.to_f32_vector()[3], 1.5f);
  CHECK_THROWS_CODE(t.mutable_raw(), InvalidArgument);
  storage.reset();
  t = Tensor();
  CHECK(weak.expired());
}

// Independent check of the conversions: bf16 must equal "round the fp32 bit pattern to the top 16 bits, ties to
// even"; f16 is checked exhaustively by round-tripping every half value and against known encodings.
SHOWO2_TEST(bf16_rounding) {
  CHECK_EQ(f32_to_bf16(1.0f), 0x3f80);
  CHECK_EQ(f32_to_bf16(-2.0f), 0xc000);
  // 1 + 2^-8 is exactly halfway between bf16 1.0 and 1.0078125: ties to even -> 1.0.
  CHECK_EQ(f32_to_bf16(1.00390625f), 0x3f80);
  // 1 + 3*2^-8 is halfway between 1.0078125 (odd mantissa) and 1.015625: ties to even -> up.
  CHECK_EQ(f32_to_bf16(1.01171875f), 0x3f82);
  CHECK_EQ(f32_to_bf16(std::numeric_limits<float>::infinity()), 0x7f80);
  CHECK(std::isnan(bf16_to_f32(f32_to_bf16(std::nanf("")))));
  CHECK_EQ(f32_to_bf16(3.4e38f), 0x7f80);  // rounds past the largest bf16 to inf, as torch does
  for (uint32_t h = 0; h < 0x10000; ++h) {
    float f = bf16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    CHECK_EQ(f32_to_bf16(f), static_cast<uint16_t>(h));
  }
}

SHOWO2_TEST(f16_round_trip_and_rounding) {
  CHECK_EQ(f32_to_f16(1.0f), 0x3c00);
  CHECK_EQ(f32_to_f16(-2.0f), 0xc000);
  CHECK_EQ(f32_to_f16(65504.0f), 0x7bff);
  CHECK_EQ(f32_to_f16(65520.0f), 0x7c00);  // halfway to 65536 rounds to inf
  CHECK_EQ(f32_to_f16(5.960464477539063e-08f), 0x0001);  // smallest subnormal 2^-24
  CHECK_EQ(f32_to_f16(2.98023223876953125e-08f), 0x0000);  // 2^-25 is a tie with zero: even -> 0
  CHECK_EQ(f32_to_f16(4.0e-08f), 0x0001);  // above the tie rounds up
  CHECK_EQ(f32_to_f16(6.103515625e-05f), 0x0400);  // smallest normal 2^-14
  CHECK_EQ(f16_to_f32(0x3555), 0.333251953125f);
  for (uint32_t h = 0; h < 0x10000; ++h) {
    float f = f16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    CHECK_EQ(f32_to_f16(f), static_cast<uint16_t>(h));
  }
  // Midpoints between consecutive positive normal halves round to the even neighbour.
  for (uint32_t h = 0x0400; h < 0x7bff; h += 97) {
    float lo = f16_to_f32(static_cast<uint16_t>(h)), hi = f16_to_f32(static_cast<uint16_t>(h + 1));
    float mid = lo + (hi - lo) / 2;
    uint16_t expect = (h & 1) ? static_cast<uint16_t>(h + 1) : static_cast<uint16_t>(h);
    CHECK_EQ(f32_to_f16(mid), expect);
  }
}

SHOWO2_TEST(tensor_dtype_conversion) {
  std::vector<float> v = showo2::test::random_normal(100, 7);
  Tensor t = Tensor::from_f32({10, 10}, v);
  Tensor b = t.to(DType::BF16);
  Tensor h = t.to(DType::F16);
  CHECK(b.dtype() == DType::BF16 && h.dtype() == DType::F16);
  std::vector<float> vb = b.to_f32_vector(), vh = h.to_f32_vector();
  for (size_t i = 0; i < v.size(); ++i) {
    CHECK_EQ(vb[i], bf16_to_f32(f32_to_bf16(v[i])));
    CHECK_EQ(vh[i], f16_to_f32(f32_to_f16(v[i])));
  }
  Tensor ints = Tensor::zeros({3}, DType::I64);
  CHECK_THROWS_CODE(ints.to(DType::F32), UnsupportedDtype);
  CHECK_THROWS_CODE(t.to(DType::I32), UnsupportedDtype);
}

SHOWO2_TEST_MAIN()
