// Activations on the GPU: SiLU, GELU (exact erf and tanh forms) and the fused SwiGLU product.
//
//   silu(x)      = x / (1 + exp(-x))
//   gelu(x)      = x * 0.5 * (1 + erf(x / sqrt(2)))
//   gelu_tanh(x) = 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))
//   swiglu(g, u) = silu(g) * u                          (one pass instead of silu then mul: 12 B/element, not 20)
// Shapes: x, up, out [..., C] as rows of C floats (last dim contiguous, leading strides free); out may alias x/up.
// Spec §12: SiLU in the Qwen/head MLPs and adaLN/time MLPs, gelu_pytorch_tanh in SigLIP vs exact-erf GELU in fusion
// and diff_proj. The SwiGLU fusion is issue [cuda]'s "one kernel per fusion opportunity" for the MLPs.
// Precision: fp32 with CUDA's accurate expf/erff/tanhf (<= 2 ulp each; no fast-math intrinsics), in the literal
// PyTorch formula order of the CPU twin (native/core/cpu/activation.cpp), so the two agree to a few ulp.
// Variants: the shared element loop (pointwise.cuh): dense or row-strided, float4 or scalar.
// Checked by test/native/activation_cuda_test.cu against cpu::CpuBackend; timed by bench/native/pointwise_cuda_bench.cu
// (`pointwise_cuda_bench --json`, case swiglu).
#include "activation.h"

#include "pointwise.cuh"

namespace showo2::cuda {

namespace {

// ================================================= device code ======================================================

__device__ __forceinline__ float silu_f(float x) { return x / (1.0f + expf(-x)); }

struct SiluOp {
  __device__ float operator()(float x) const { return silu_f(x); }
};
struct GeluErfOp {
  __device__ float operator()(float x) const {
    constexpr float kAlpha = 0.70710678118654752440f;  // 1/sqrt(2)
    return x * 0.5f * (1.0f + erff(x * kAlpha));
  }
};
struct GeluTanhOp {
  __device__ float operator()(float x) const {
    constexpr float kBeta = 0.79788456080286535588f;  // sqrt(2/pi)
    constexpr float kKappa = 0.044715f;
    return 0.5f * x * (1.0f + tanhf(kBeta * (x + kKappa * x * x * x)));
  }
};
struct SwigluOp {
  __device__ float operator()(float gate, float up) const { return silu_f(gate) * up; }
};

// ================================================= launchers ========================================================

void check_activation_params(const ActivationParams& p, bool needs_up, const char* op) {
  if (p.rows < 0 || p.cols < 0) fail(ErrorCode::ShapeMismatch, op, ": negative size");
  if (p.rows * p.cols > 0 && (p.x == nullptr || p.out == nullptr || (needs_up && p.up == nullptr)))
    fail(ErrorCode::InvalidArgument, op, ": null device pointer");
}

}  // namespace

void launch_activation(const ActivationParams& p, cudaStream_t stream) {
  check_activation_params(p, false, "activation");
  MapOperands<1> m;
  m.in[0] = p.x;
  m.in_rows[0] = p.x_rows;
  m.in_col_stride[0] = 1;
  m.out = p.out;
  m.out_rows = p.out_rows;
  m.rows = p.rows;
  m.cols = p.cols;
  switch (p.kind) {
    case ActivationKind::Silu: launch_map(m, SiluOp{}, stream); return;
    case ActivationKind::GeluErf: launch_map(m, GeluErfOp{}, stream); return;
    case ActivationKind::GeluTanh: launch_map(m, GeluTanhOp{}, stream); return;
  }
  fail(ErrorCode::InvalidArgument, "activation: unknown kind ", static_cast<int>(p.kind));
}

void launch_swiglu(const ActivationParams& p, cudaStream_t stream) {
  check_activation_params(p, true, "swiglu");
  MapOperands<2> m;
  m.in[0] = p.x;
  m.in_rows[0] = p.x_rows;
  m.in_col_stride[0] = 1;
  m.in[1] = p.up;
  m.in_rows[1] = p.up_rows;
  m.in_col_stride[1] = 1;
  m.out = p.out;
  m.out_rows = p.out_rows;
  m.rows = p.rows;
  m.cols = p.cols;
  launch_map(m, SwigluOp{}, stream);
}

}  // namespace showo2::cuda
