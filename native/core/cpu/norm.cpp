// RMSNorm and LayerNorm over the last dimension on the CPU (backend.h).
//
//   rms_norm:   y = x / sqrt(mean(x^2) + eps) * weight
//   layer_norm: y = (x - mean) / sqrt(var + eps) * weight + bias          (biased variance, two passes)
//   x, out: F32 [..., C], last dimension contiguous, same shape; out may alias x.
//   weight, bias: [C] F32/BF16/F16, contiguous, or undefined (weight = 1, bias = 0).
// Precision: fp32 inputs, fp32 sums in eight interleaved partial accumulators (short chains keep the rounding error
// near sqrt(C/8) ulp and let the compiler vectorise), the per-row statistics finished in double: the "fp32
// RMSNorm/LayerNorm" of spec §12. norm_test.cpp holds it to 1e-5 relative of a double reference for C up to 4736.
// No AVX2 variant: the rows are short and memory-bound next to the GEMMs around them.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "ops.h"
#include "rows.h"

namespace showo2::cpu {

namespace {

constexpr int kLanes = 8;

double sum_of_squares(const float* x, int64_t n) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) acc[j] += x[i + j] * x[i + j];
  double total = 0;
  for (int j = 0; j < kLanes; ++j) total += acc[j];
  for (; i < n; ++i) total += static_cast<double>(x[i]) * x[i];
  return total;
}

double sum(const float* x, int64_t n) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) acc[j] += x[i + j];
  double total = 0;
  for (int j = 0; j < kLanes; ++j) total += acc[j];
  for (; i < n; ++i) total += x[i];
  return total;
}

double sum_of_squared_deviations(const float* x, int64_t n, float mean) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      float d = x[i + j] - mean;
      acc[j] += d * d;
    }
  double total = 0;
  for (int j = 0; j < kLanes; ++j) total += acc[j];
  for (; i < n; ++i) {
    double d = static_cast<double>(x[i]) - mean;
    total += d * d;
  }
  return total;
}

// An optional [C] parameter widened to F32 (empty when undefined).
std::vector<float> load_param(const Tensor& t, int64_t C, const std::string& what) {
  if (!t.defined()) return {};
  check_float(t, what.c_str());
  check_shape(t, {C}, what.c_str());
  return t.to_f32_vector();
}

void check_norm_io(const Tensor& x, const Tensor& out, float eps, const std::string& op) {
  check_dtype(x, DType::F32, (op + ": x").c_str());
  check_row_rank(x, (op + ": x").c_str());
  check_last_dim_contiguous(x, (op + ": x").c_str());
  check_dtype(out, DType::F32, (op + ": out").c_str());
  check_last_dim_contiguous(out, (op + ": out").c_str());
  check_writable(out, (op + ": out").c_str());
  check_shape(out, x.shape(), (op + ": out").c_str());
  if (x.dim() == 0) fail(ErrorCode::ShapeMismatch, op, ": x: expected at least one dimension");
  if (!(eps >= 0.0f) || !std::isfinite(eps))
    fail(ErrorCode::InvalidArgument, op, ": eps: expected a finite value >= 0 but got ", eps);
}

}  // namespace

void rms_norm(const Tensor& x, const Tensor& weight, float eps, Tensor& out, ThreadPool* pool) {
  check_norm_io(x, out, eps, "rms_norm");
  const int64_t C = x.size(-1);
  std::vector<float> w = load_param(weight, C, "rms_norm: weight");
  if (x.numel() == 0) return;
  RowLayout x_rows(x), out_rows(out);
  const float* px = x.data<float>();
  float* po = out.mutable_data<float>();
  const float* pw = w.empty() ? nullptr : w.data();

  parallel_rows(pool, x_rows.rows(), C, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* xr = px + x_rows.offset(r);
      float* yr = po + out_rows.offset(r);
      const float inv_rms = static_cast<float>(1.0 / std::sqrt(sum_of_squares(xr, C) / C + eps));
      if (pw)
        for (int64_t i = 0; i < C; ++i) yr[i] = (xr[i] * inv_rms) * pw[i];
      else
        for (int64_t i = 0; i < C; ++i) yr[i] = xr[i] * inv_rms;
    }
  });
}

void layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps, Tensor& out, ThreadPool* pool) {
  check_norm_io(x, out, eps, "layer_norm");
  const int64_t C = x.size(-1);
  std::vector<float> w = load_param(weight, C, "layer_norm: weight");
  std::vector<float> b = load_param(bias, C, "layer_norm: bias");
  if (x.numel() == 0) return;
  RowLayout x_rows(x), out_rows(out);
  const float* px = x.data<float>();
  float* po = out.mutable_data<float>();
  const float* pw = w.empty() ? nullptr : w.data();
  const float* pb = b.empty() ? nullptr : b.data();

  parallel_rows(pool, x_rows.rows(), C, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* xr = px + x_rows.offset(r);
      float* yr = po + out_rows.offset(r);
      const float mean = static_cast<float>(sum(xr, C) / C);
      const double var = sum_of_squared_deviations(xr, C, mean) / C;
      const float inv_std = static_cast<float>(1.0 / std::sqrt(var + eps));
      for (int64_t i = 0; i < C; ++i) {
        float y = (xr[i] - mean) * inv_std;
        if (pw) y *= pw[i];
        if (pb) y += pb[i];
        yr[i] = y;
      }
    }
  });
}

}  // namespace showo2::cpu
