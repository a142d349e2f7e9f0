// RMSNorm and LayerNorm over the last dimension, and the Wan VAE's channel RMS norm, on the CPU (backend.h).
//
//   rms_norm:   y = x / sqrt(mean(x^2) + eps) * weight
//   layer_norm: y = (x - mean) / sqrt(var + eps) * weight + bias          (biased variance, two passes)
//   x, out: F32 [..., C], last dimension contiguous, same shape; out may alias x.
//   weight, bias: [C] F32/BF16/F16, contiguous, or undefined (weight = 1, bias = 0).
// Precision: fp32 inputs, fp32 sums in eight interleaved partial accumulators (short chains keep the rounding error
// near sqrt(C/8) ulp and let the compiler vectorise), the per-row statistics finished in double: the "fp32
// RMSNorm/LayerNorm" of spec §12. norm_test.cpp holds it to 1e-5 relative of a double reference for C up to 4736.
// No AVX2 variant: the rows are short and memory-bound next to the GEMMs around them.
//
//   channel_rms_norm (Wan RMS_norm, spec §3.1): y[n, c, s] = x[n, c, s] / max(||x[n, :, s]||_2, 1e-12) * sqrt(C) *
//   gamma[c], over the channel axis of a contiguous [N, C, S...] tensor (the reduction is strided by S, so the loop
//   runs over a block of positions s at once, accumulating in double per position) or a channels-last one. The order
//   of the roundings follows PyTorch's F.normalize(x, dim=1) * scale * gamma: divide, then scale, then gamma.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "../backend_checks.h"
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

// An optional [C] parameter widened to F32 (empty when undefined); its dtype and shape are checked already.
std::vector<float> load_param(const Tensor& t) { return t.defined() ? t.to_f32_vector() : std::vector<float>{}; }

}  // namespace

void rms_norm(const Tensor& x, const Tensor& weight, float eps, Tensor& out, ThreadPool* pool) {
  const int64_t C = check_rms_norm_args(x, weight, eps, out).cols;
  std::vector<float> w = load_param(weight);
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
  const int64_t C = check_layer_norm_args(x, weight, bias, eps, out).cols;
  std::vector<float> w = load_param(weight);
  std::vector<float> b = load_param(bias);
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

void channel_rms_norm(const Tensor& x, const Tensor& gamma, Tensor& out, ThreadPool* pool) {
  check_dtype(x, DType::F32, "channel_rms_norm: x");  // F32 only here (backend.h: BF16 on a device backend)
  const ChannelNormShape shape = check_channel_rms_norm_args(x, gamma, out);
  const int64_t N = shape.N, C = shape.C, S = shape.S;
  std::vector<float> g = load_param(gamma);
  if (x.numel() == 0) return;
  const float scale = static_cast<float>(std::sqrt(static_cast<double>(C)));
  const float* px = x.data<float>();
  float* po = out.mutable_data<float>();
  // Element (n, c, s) at n * C * S + c * cs + s * ps: contiguous [N, C, S] (cs = S, ps = 1) or channels-last
  // [N, S, C] (cs = 1, ps = C) memory. The arithmetic is the same in both, so the two layouts give bit-identical
  // results; the layout is a template fact so the contiguous loops keep their unit stride at compile time (they
  // vectorise as before the channels-last case existed).
  auto run = [&](auto channels_last) {
    constexpr bool kChannelsLast = decltype(channels_last)::value;
    const int64_t cs = kChannelsLast ? 1 : S;
    const int64_t ps = kChannelsLast ? C : 1;
    constexpr int64_t kBlock = 64;  // positions per work item: one cache line's worth of rows per channel, 8 lines
    const int64_t blocks_per_sample = (S + kBlock - 1) / kBlock;
    parallel_rows(pool, N * blocks_per_sample, kBlock * C, [&](int64_t begin, int64_t end) {
      double sumsq[kBlock];
      float denom[kBlock];
      for (int64_t item = begin; item < end; ++item) {
        const int64_t n = item / blocks_per_sample;
        const int64_t s0 = (item % blocks_per_sample) * kBlock;
        const int64_t len = std::min<int64_t>(kBlock, S - s0);
        const float* xs = px + n * C * S + s0 * ps;
        float* os = po + n * C * S + s0 * ps;
        for (int64_t i = 0; i < len; ++i) sumsq[i] = 0;
        for (int64_t c = 0; c < C; ++c)
          for (int64_t i = 0; i < len; ++i)
            sumsq[i] += static_cast<double>(xs[c * cs + i * ps]) * xs[c * cs + i * ps];
        // F.normalize: x / max(||x||, eps) with eps = 1e-12.
        for (int64_t i = 0; i < len; ++i) denom[i] = static_cast<float>(std::max(std::sqrt(sumsq[i]), 1e-12));
        for (int64_t c = 0; c < C; ++c)
          for (int64_t i = 0; i < len; ++i) os[c * cs + i * ps] = (xs[c * cs + i * ps] / denom[i]) * scale * g[c];
      }
    });
  };
  if (shape.channels_last)
    run(std::true_type{});
  else
    run(std::false_type{});
}

}  // namespace showo2::cpu
