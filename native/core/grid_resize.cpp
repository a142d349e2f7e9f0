// Host-side token-grid resizes (bicubic, bilinear); see grid_resize.h for the contract and PyTorch's arithmetic.
#include "grid_resize.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "error.h"

namespace showo2 {

namespace {

// The source taps of one output axis: out_size * taps indices and weights, row-major by output index.
struct AxisTaps {
  int64_t taps = 1;
  std::vector<int64_t> index;
  std::vector<float> weight;
};

// A same-size axis is one tap of weight 1, so the resize is an exact copy even next to Inf/NaN (0 * Inf is NaN).
AxisTaps identity_axis(int64_t size) {
  AxisTaps a;
  a.taps = 1;
  for (int64_t i = 0; i < size; ++i) {
    a.index.push_back(i);
    a.weight.push_back(1.0f);
  }
  return a;
}

// area_pixel_compute_source_index (align_corners=False): scale * (dst + 0.5) - 0.5, in float.
// PyTorch's x86 kernels are built with FMA contraction, so this product-plus-constant is one fused operation there;
// the fraction t = src - floor(src) then differs by up to an ulp of src (~1e-6 at src ~ 16) if it is not fused here.
float source_index(float scale, int64_t dst) {
  return std::fma(scale, static_cast<float>(dst) + 0.5f, -0.5f);
}

// guard_index_and_lambda: the left tap and the fraction, both kept inside the input.
void floor_and_fraction(float src, int64_t in_size, int64_t* i0, float* t) {
  *i0 = std::min(static_cast<int64_t>(std::floor(src)), in_size - 1);
  *t = std::min(std::max(src - static_cast<float>(*i0), 0.0f), 1.0f);
}

AxisTaps bilinear_axis(int64_t in_size, int64_t out_size) {
  if (in_size == out_size) return identity_axis(out_size);
  AxisTaps a;
  a.taps = 2;
  const float scale = static_cast<float>(in_size) / static_cast<float>(out_size);
  for (int64_t i = 0; i < out_size; ++i) {
    const float src = std::max(source_index(scale, i), 0.0f);  // linear modes clamp negative sources to 0
    int64_t i0;
    float t;
    floor_and_fraction(src, in_size, &i0, &t);
    a.index.push_back(i0);
    a.index.push_back(i0 < in_size - 1 ? i0 + 1 : i0);
    a.weight.push_back(1.0f - t);
    a.weight.push_back(t);
  }
  return a;
}

// Keys' cubic convolution kernel with A = -0.75 (PyTorch's get_cubic_upsample_coefficients), evaluated with the
// fused multiply-adds PyTorch's x86 build contracts these Horner forms into: cubic_convolution2 cancels to near 0 at
// the outer taps, so an unfused evaluation moves outputs by ~1e-6 instead of ~1e-7.
constexpr float kCubicA = -0.75f;
float cubic_convolution1(float x) {  // |x| <= 1: ((A + 2) x - (A + 3)) x^2 + 1
  return std::fma(std::fma(kCubicA + 2.0f, x, -(kCubicA + 3.0f)) * x, x, 1.0f);
}
float cubic_convolution2(float x) {  // 1 < |x| < 2: ((A x - 5A) x + 8A) x - 4A
  return std::fma(std::fma(std::fma(kCubicA, x, -5.0f * kCubicA), x, 8.0f * kCubicA), x, -4.0f * kCubicA);
}

AxisTaps bicubic_axis(int64_t in_size, int64_t out_size) {
  if (in_size == out_size) return identity_axis(out_size);
  AxisTaps a;
  a.taps = 4;
  const float scale = static_cast<float>(in_size) / static_cast<float>(out_size);
  for (int64_t i = 0; i < out_size; ++i) {
    const float src = source_index(scale, i);  // not clamped at 0 for cubic
    int64_t i0;
    float t;
    floor_and_fraction(src, in_size, &i0, &t);
    const float w[4] = {cubic_convolution2(t + 1.0f), cubic_convolution1(t), cubic_convolution1(1.0f - t),
                        cubic_convolution2((1.0f - t) + 1.0f)};
    for (int64_t j = 0; j < 4; ++j) {
      a.index.push_back(std::max<int64_t>(std::min<int64_t>(i0 - 1 + j, in_size - 1), 0));  // replicate the border
      a.weight.push_back(w[j]);
    }
  }
  return a;
}

void check_grid(const Tensor& grid, int64_t out_h, int64_t out_w, const char* what) {
  if (grid.dim() != 3)
    fail(ErrorCode::ShapeMismatch, what, ": grid: expected [H, W, C] but got ", grid.shape_string());
  if (grid.size(0) < 1 || grid.size(1) < 1 || grid.size(2) < 1)
    fail(ErrorCode::ShapeMismatch, what, ": grid: expected non-empty dimensions but got ", grid.shape_string());
  check_dtype(grid, DType::F32, what);
  if (out_h < 1 || out_w < 1)
    fail(ErrorCode::InvalidArgument, what, ": expected an output size of at least 1x1 but got ", out_h, "x", out_w);
}

// out[y, x, :] = sum_k wy[k] * (sum_j wx[j] * grid[ty[k], tx[j], :]), in PyTorch's order (inner axis W, outer H).
Tensor resize(const Tensor& grid, const AxisTaps& ay, const AxisTaps& ax, int64_t out_h, int64_t out_w) {
  const Tensor src = grid.contiguous();
  const int64_t W = src.size(1), C = src.size(2);
  const float* in = src.data<float>();
  Tensor out = Tensor::empty({out_h, out_w, C}, DType::F32);  // [h, w, C]
  float* po = out.mutable_data<float>();
  std::vector<float> row(static_cast<size_t>(C));
  for (int64_t y = 0; y < out_h; ++y) {
    for (int64_t x = 0; x < out_w; ++x) {
      float* dst = po + (y * out_w + x) * C;
      for (int64_t k = 0; k < ay.taps; ++k) {
        const int64_t sy = ay.index[y * ay.taps + k];
        const float wy = ay.weight[y * ay.taps + k];
        // row = sum_j wx[j] * grid[sy, tx[j], :]
        for (int64_t j = 0; j < ax.taps; ++j) {
          const float* cell = in + (sy * W + ax.index[x * ax.taps + j]) * C;
          const float wx = ax.weight[x * ax.taps + j];
          if (j == 0) {
            for (int64_t c = 0; c < C; ++c) row[c] = cell[c] * wx;
          } else {
            for (int64_t c = 0; c < C; ++c) row[c] += cell[c] * wx;
          }
        }
        if (k == 0) {
          for (int64_t c = 0; c < C; ++c) dst[c] = row[c] * wy;
        } else {
          for (int64_t c = 0; c < C; ++c) dst[c] += row[c] * wy;
        }
      }
    }
  }
  return out;
}

}  // namespace

Tensor resize_grid_bicubic(const Tensor& grid, int64_t out_h, int64_t out_w) {
  check_grid(grid, out_h, out_w, "resize_grid_bicubic");
  if (grid.size(0) == out_h && grid.size(1) == out_w) return grid.to(DType::F32);  // a copy: exact (spec §14)
  return resize(grid, bicubic_axis(grid.size(0), out_h), bicubic_axis(grid.size(1), out_w), out_h, out_w);
}

Tensor resize_grid_bilinear(const Tensor& grid, int64_t out_h, int64_t out_w) {
  check_grid(grid, out_h, out_w, "resize_grid_bilinear");
  if (grid.size(0) == out_h && grid.size(1) == out_w) return grid.to(DType::F32);
  return resize(grid, bilinear_axis(grid.size(0), out_h), bilinear_axis(grid.size(1), out_w), out_h, out_w);
}

}  // namespace showo2
