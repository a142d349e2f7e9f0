// Elementwise activations and softmax on the CPU (backend.h).
//
//   silu(x)       = x / (1 + exp(-x))
//   gelu(x)       = x * 0.5 * (1 + erf(x / sqrt(2)))                              nn.GELU(), fusion_proj, diff_proj
//   gelu_tanh(x)  = 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))       gelu_pytorch_tanh, SigLIP (§3.4)
//   softmax(x)    = exp(x - max(x)) / sum(exp(x - max(x)))                        over the last dimension
//   swiglu(g, u)  = silu(g) * u                                                   the Qwen2 / flow-head MLPs
//   x, out: F32, same shape [..., C], last dimension contiguous (leading strides free); out may alias x.
// Precision: fp32 throughout. The portable row kernels below are the literal PyTorch formulas on <cmath>; the AVX2
// ones (activation_avx2.cpp) evaluate the same functions with vectorised exp/erf, within a few 1e-7 (see
// activation_test.cpp for the measured bounds).
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "../backend_checks.h"
#include "activation_internal.h"
#include "cpu_features.h"
#include "ops.h"
#include "rows.h"

namespace showo2::cpu {

// ---- portable row kernels ------------------------------------------------------------------------------------------

namespace {

void silu_portable(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] / (1.0f + std::exp(-x[i]));
}

void gelu_erf_portable(const float* x, float* y, int64_t n) {
  constexpr float kAlpha = 0.70710678118654752440f;  // 1/sqrt(2)
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * 0.5f * (1.0f + std::erf(x[i] * kAlpha));
}

void gelu_tanh_portable(const float* x, float* y, int64_t n) {
  constexpr float kBeta = 0.79788456080286535588f;  // sqrt(2/pi)
  constexpr float kKappa = 0.044715f;
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    y[i] = 0.5f * v * (1.0f + std::tanh(kBeta * (v + kKappa * v * v * v)));
  }
}

void softmax_portable(const float* x, float* y, int64_t n) {
  float max_value = -INFINITY;
  bool has_nan = false;
  for (int64_t i = 0; i < n; ++i) {
    max_value = std::fmax(max_value, x[i]);
    has_nan |= std::isnan(x[i]);
  }
  // A NaN anywhere poisons the whole row, as in torch (fmax above would otherwise skip it).
  if (has_nan) max_value = NAN;
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float e = std::exp(x[i] - max_value);
    y[i] = e;
    sum += e;
  }
  const float inv_sum = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) y[i] *= inv_sum;
}

const ActivationKernels kPortable = {"portable", silu_portable, gelu_erf_portable, gelu_tanh_portable,
                                     softmax_portable};

// ---- dispatch and row walking --------------------------------------------------------------------------------------

const ActivationKernels& kernels_for(ActivationKernel kernel) {
  if (!activation_kernel_available(kernel))
    fail(ErrorCode::InvalidArgument, "activation: the AVX2 kernels are not available on this CPU/build");
#if defined(SHOWO2_HAVE_AVX2_KERNELS)
  if (kernel == ActivationKernel::Avx2) return activation_kernels_avx2();
#endif
  return kPortable;
}

ActivationKernel default_kernel() {
  return cpu_features().use_avx2 ? ActivationKernel::Avx2 : ActivationKernel::Portable;
}

// Applies row_kernel to every row of x (x/out checked by the caller).
void run_rows(const Tensor& x, Tensor& out, ThreadPool* pool, void (*row_kernel)(const float*, float*, int64_t)) {
  if (x.numel() == 0) return;
  RowLayout x_rows(x), out_rows(out);
  const float* px = x.data<float>();
  float* po = out.mutable_data<float>();
  const int64_t C = x_rows.row_length();
  parallel_rows(pool, x_rows.rows(), C, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) row_kernel(px + x_rows.offset(r), po + out_rows.offset(r), C);
  });
}

}  // namespace

const ActivationKernels& activation_kernels_portable() { return kPortable; }

bool activation_kernel_available(ActivationKernel kernel) {
  if (kernel == ActivationKernel::Portable) return true;
#if defined(SHOWO2_HAVE_AVX2_KERNELS)
  return cpu_features().use_avx2 || (cpu_features().avx2 && cpu_features().fma && cpu_features().f16c);
#else
  return false;
#endif
}

void silu_with_kernel(const Tensor& x, Tensor& out, ThreadPool* pool, ActivationKernel kernel) {
  const ActivationKernels& k = kernels_for(kernel);
  check_activation_args(x, out, "silu");
  run_rows(x, out, pool, k.silu);
}

void gelu_with_kernel(const Tensor& x, GeluApproximation approximation, Tensor& out, ThreadPool* pool,
                      ActivationKernel kernel) {
  const ActivationKernels& k = kernels_for(kernel);
  switch (approximation) {
    case GeluApproximation::None:
      check_activation_args(x, out, "gelu");
      run_rows(x, out, pool, k.gelu_erf);
      return;
    case GeluApproximation::Tanh:
      check_activation_args(x, out, "gelu");
      run_rows(x, out, pool, k.gelu_tanh);
      return;
  }
  fail(ErrorCode::InvalidArgument, "gelu: approximation: unknown value ", static_cast<int>(approximation));
}

void softmax_with_kernel(const Tensor& x, Tensor& out, ThreadPool* pool, ActivationKernel kernel) {
  const ActivationKernels& k = kernels_for(kernel);
  check_softmax_args(x, out);
  run_rows(x, out, pool, k.softmax);
}

void silu(const Tensor& x, Tensor& out, ThreadPool* pool) { silu_with_kernel(x, out, pool, default_kernel()); }

void gelu(const Tensor& x, GeluApproximation approximation, Tensor& out, ThreadPool* pool) {
  gelu_with_kernel(x, approximation, out, pool, default_kernel());
}

void softmax(const Tensor& x, Tensor& out, ThreadPool* pool) {
  softmax_with_kernel(x, out, pool, default_kernel());
}

void swiglu(const Tensor& gate, const Tensor& up, Tensor& out, ThreadPool* pool) {
  check_swiglu_args(gate, up, out);
  if (gate.numel() == 0) return;
  // silu through the same row kernel as cpu::silu (AVX2 where available), so swiglu equals silu-then-mul bit for
  // bit. It goes through a stack block rather than `out` because out may alias up: each element is read from gate
  // and up before out's element is written.
  void (*silu_row)(const float*, float*, int64_t) = kernels_for(default_kernel()).silu;
  RowLayout g_rows(gate), u_rows(up), o_rows(out);
  const float* pg = gate.data<float>();
  const float* pu = up.data<float>();
  float* po = out.mutable_data<float>();
  const int64_t C = g_rows.row_length();
  parallel_rows(pool, g_rows.rows(), C, [&](int64_t begin, int64_t end) {
    constexpr int64_t kBlock = 256;
    alignas(64) float act[kBlock];
    for (int64_t r = begin; r < end; ++r) {
      const float* g = pg + g_rows.offset(r);
      const float* u = pu + u_rows.offset(r);
      float* o = po + o_rows.offset(r);
      for (int64_t i0 = 0; i0 < C; i0 += kBlock) {
        const int64_t n = std::min(kBlock, C - i0);
        silu_row(g + i0, act, n);
        for (int64_t i = 0; i < n; ++i) o[i0 + i] = act[i] * u[i0 + i];
      }
    }
  });
}

}  // namespace showo2::cpu
