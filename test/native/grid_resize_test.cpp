// resize_grid_bicubic / resize_grid_bilinear (native/core/grid_resize.cpp) against PyTorch's own float32
// F.interpolate(align_corners=False) results (tools/fixtures/make_visual_fixtures.py): 27->14 (the video token pooling,
// spec §8.3), 27->32 and 27->64 (the HQ position tables, spec §3.4), 4->6, 6->4, the 27->27 identity and two
// non-square cases, in both modes.
//
// Tolerance: |out - ref| <= 1e-6 + 1e-6 |ref| (inputs ~N(0, 1), outputs up to ~4). The port does PyTorch's float
// arithmetic in PyTorch's order, including the fused multiply-adds of its x86 build in the index/weight maths
// (grid_resize.cpp). What is left is the accumulation, which PyTorch's vectorised build may also fuse: a few float
// ulps (measured up to ~8e-7 on these cases with a Python emulation of the port). An off-by-one tap, a wrong scale
// ((in-1)/(out-1) or a clamped cubic index) moves outputs by 1e-2..1, far outside. The identity is checked bit-exact.
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "grid_resize.h"
#include "test_util.h"
#include "visual_fixtures.h"

using namespace showo2;
using namespace showo2::test::visual;

namespace {

constexpr double kAtol = 1e-6;
constexpr double kRtol = 1e-6;

struct Case {
  int64_t H, W, h, w;
};
const Case kCases[] = {{27, 27, 14, 14}, {27, 27, 32, 32}, {27, 27, 64, 64}, {4, 4, 6, 6},
                       {6, 6, 4, 4},     {27, 27, 27, 27}, {5, 7, 3, 10},   {9, 4, 13, 6}};

std::string name(const char* mode, const Case& c) {
  return std::string("resize_") + mode + "_" + std::to_string(c.H) + "x" + std::to_string(c.W) + "_to_" +
         std::to_string(c.h) + "x" + std::to_string(c.w);
}

}  // namespace

SHOWO2_TEST(bicubic_matches_torch_interpolate) {
  require_fixtures();
  Fixtures f;
  for (const Case& c : kCases) {
    Tensor grid = f.get(name("in", c));
    expect_matches(resize_grid_bicubic(grid, c.h, c.w), f.get(name("bicubic", c)), kAtol, kRtol, name("bicubic", c));
  }
}

SHOWO2_TEST(bilinear_matches_torch_interpolate) {
  require_fixtures();
  Fixtures f;
  for (const Case& c : kCases) {
    Tensor grid = f.get(name("in", c));
    expect_matches(resize_grid_bilinear(grid, c.h, c.w), f.get(name("bilinear", c)), kAtol, kRtol,
                   name("bilinear", c));
  }
}

// Spec §14: a same-size resize is an exact identity (bit for bit, also next to Inf/NaN, where a 0-weight tap would
// otherwise give 0 * Inf = NaN).
SHOWO2_TEST(same_size_is_an_exact_identity) {
  std::vector<float> v = test::random_normal(5 * 4 * 3, 3);
  v[7] = std::numeric_limits<float>::infinity();
  Tensor grid = Tensor::from_f32({5, 4, 3}, v);
  for (Tensor out : {resize_grid_bicubic(grid, 5, 4), resize_grid_bilinear(grid, 5, 4)}) {
    CHECK(out.shape() == grid.shape());
    const std::vector<float> o = out.to_f32_vector();
    for (size_t i = 0; i < v.size(); ++i) CHECK(o[i] == v[i]);
  }
}

// A strided input (the transpose of a contiguous grid) gives the same answer as its contiguous copy.
SHOWO2_TEST(strided_input_matches_contiguous) {
  Tensor base = Tensor::from_f32({7, 5, 2}, test::random_normal(70, 9));
  Tensor strided = base.transpose(0, 1);  // [5, 7, 2], not contiguous
  CHECK(!strided.is_contiguous());
  CHECK(resize_grid_bicubic(strided, 3, 9).to_f32_vector() ==
        resize_grid_bicubic(strided.contiguous(), 3, 9).to_f32_vector());
  CHECK(resize_grid_bilinear(strided, 8, 2).to_f32_vector() ==
        resize_grid_bilinear(strided.contiguous(), 8, 2).to_f32_vector());
}

SHOWO2_TEST(bad_arguments_give_typed_errors) {
  Tensor grid = Tensor::zeros({4, 4, 3}, DType::F32);
  CHECK_THROWS_CODE(resize_grid_bicubic(Tensor::zeros({4, 4}, DType::F32), 2, 2), ShapeMismatch);
  CHECK_THROWS_CODE(resize_grid_bilinear(Tensor::zeros({1, 4, 4, 3}, DType::F32), 2, 2), ShapeMismatch);
  CHECK_THROWS_CODE(resize_grid_bicubic(Tensor::zeros({0, 4, 3}, DType::F32), 2, 2), ShapeMismatch);
  CHECK_THROWS_CODE(resize_grid_bicubic(grid.to(DType::BF16), 2, 2), UnsupportedDtype);
  CHECK_THROWS_CODE(resize_grid_bicubic(grid, 0, 2), InvalidArgument);
  CHECK_THROWS_CODE(resize_grid_bilinear(grid, 2, -1), InvalidArgument);
}

SHOWO2_TEST_MAIN()
