// Elementwise binary ops and affine maps on the GPU.
//
//   add:   out = a + b            mul: out = a * b            (b: a's shape or a suffix of it, or a 0-D value)
//   scale: out = a * alpha + beta
//   clamp: out = min(max(a, lo), hi), a NaN passing through (torch.clamp)
// Shapes: a, out [..., C] as rows of C floats (last dim contiguous, leading strides free); b contiguous, broadcast
// over a's leading dims by a wrapping RowMap (row r reads b row r % b_rows). out may alias a.
// Spec: the glue between the model's GEMMs (residual adds, bias-like adds of position embeddings, VAE scaling).
// Precision: fp32, each operation rounded once as on the CPU twin (native/core/cpu/elementwise.cpp); scale uses
// __fmul_rn/__fadd_rn so the GPU cannot fuse a * alpha + beta into an fma (torch's eager x * alpha + beta rounds
// twice, and so does the CPU): results are bitwise equal to the CPU's.
// Variants: the shared element loop (pointwise.cuh): dense or row-strided (a broadcast b takes the strided path),
// float4 or scalar.
// Checked by test/native/elementwise_cuda_test.cu against cpu::CpuBackend.
#include "elementwise.h"

#include "pointwise.cuh"

namespace showo2::cuda {

namespace {

// ================================================= device code ======================================================

struct AddOp {
  __device__ float operator()(float a, float b) const { return a + b; }
};
struct MulOp {
  __device__ float operator()(float a, float b) const { return a * b; }
};
struct ScaleOp {
  float alpha, beta;
  __device__ float operator()(float x) const { return __fadd_rn(__fmul_rn(x, alpha), beta); }
};
struct ClampOp {
  float lo, hi;
  // Comparisons that are false for NaN, so a NaN stays NaN (fminf/fmaxf would replace it by a bound).
  __device__ float operator()(float x) const { return x < lo ? lo : (x > hi ? hi : x); }
};

}  // namespace

// ================================================= launchers ========================================================

void launch_elementwise(const ElementwiseParams& p, cudaStream_t stream) {
  if (p.rows < 0 || p.cols < 0) fail(ErrorCode::ShapeMismatch, "elementwise: negative size");
  if (p.rows * p.cols == 0) return;
  const bool binary = p.op == ElementwiseOp::Add || p.op == ElementwiseOp::Mul;
  if (p.a == nullptr || p.out == nullptr || (binary && p.b == nullptr))
    fail(ErrorCode::InvalidArgument, "elementwise: null device pointer");
  if (binary) {
    MapOperands<2> m;
    m.in[0] = p.a;
    m.in_rows[0] = p.a_rows;
    m.in_col_stride[0] = 1;
    m.in[1] = p.b;
    m.in_rows[1] = p.b_scalar ? RowMap{} : p.b_rows;  // an empty map puts every row at offset 0
    m.in_col_stride[1] = p.b_scalar ? 0 : 1;
    m.out = p.out;
    m.out_rows = p.out_rows;
    m.rows = p.rows;
    m.cols = p.cols;
    if (p.op == ElementwiseOp::Add) launch_map(m, AddOp{}, stream);
    else launch_map(m, MulOp{}, stream);
    return;
  }
  MapOperands<1> m;
  m.in[0] = p.a;
  m.in_rows[0] = p.a_rows;
  m.in_col_stride[0] = 1;
  m.out = p.out;
  m.out_rows = p.out_rows;
  m.rows = p.rows;
  m.cols = p.cols;
  switch (p.op) {
    case ElementwiseOp::Scale: launch_map(m, ScaleOp{p.alpha, p.beta}, stream); return;
    case ElementwiseOp::Clamp:
      if (!(p.lo <= p.hi)) fail(ErrorCode::InvalidArgument, "clamp: expected lo <= hi but got lo=", p.lo, " hi=", p.hi);
      launch_map(m, ClampOp{p.lo, p.hi}, stream);
      return;
    default: break;
  }
  fail(ErrorCode::InvalidArgument, "elementwise: unknown op ", static_cast<int>(p.op));
}

}  // namespace showo2::cuda
