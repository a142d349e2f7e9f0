// Elementwise binary ops and affine scaling on the CPU (backend.h).
//
//   add:   out = a + b        mul: out = a * b        scale: out = x * alpha + beta
//   clamp: out = min(max(x, lo), hi), NaN passing through (torch.clamp)
//   a, out: F32, same shape [..., C], last dimension contiguous (leading strides free); out may alias a (or x).
//   b:      F32, a's shape or a suffix of it, broadcast over a's leading dims (e.g. a [B, L, C] + b [C] or b [L, C]).
// Plain loops: the compiler vectorises them at the baseline ISA and the ops are memory-bound, so there is no AVX2
// variant.
#include <cstdint>

#include "../backend_checks.h"
#include "ops.h"
#include "rows.h"

namespace showo2::cpu {

namespace {

enum class BinaryOp { Add, Mul };

void binary(const Tensor& a, const Tensor& b, Tensor& out, ThreadPool* pool, BinaryOp op, const char* name) {
  const BinaryShape s = check_binary_args(a, b, out, name);
  if (a.numel() == 0) return;

  RowLayout a_rows(a), out_rows(out);
  const int64_t C = s.cols;
  const bool b_scalar = s.b_scalar;
  const int64_t b_rows = s.b_rows;
  const float* pa = a.data<float>();
  const float* pb = b.data<float>();
  float* po = out.mutable_data<float>();

  parallel_rows(pool, a_rows.rows(), C, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* ar = pa + a_rows.offset(r);
      float* orow = po + out_rows.offset(r);
      if (b_scalar) {
        const float bv = pb[0];
        if (op == BinaryOp::Add)
          for (int64_t i = 0; i < C; ++i) orow[i] = ar[i] + bv;
        else
          for (int64_t i = 0; i < C; ++i) orow[i] = ar[i] * bv;
        continue;
      }
      const float* br = pb + (r % b_rows) * C;
      if (op == BinaryOp::Add)
        for (int64_t i = 0; i < C; ++i) orow[i] = ar[i] + br[i];
      else
        for (int64_t i = 0; i < C; ++i) orow[i] = ar[i] * br[i];
    }
  });
}

}  // namespace

void add(const Tensor& a, const Tensor& b, Tensor& out, ThreadPool* pool) {
  binary(a, b, out, pool, BinaryOp::Add, "add");
}

void mul(const Tensor& a, const Tensor& b, Tensor& out, ThreadPool* pool) {
  binary(a, b, out, pool, BinaryOp::Mul, "mul");
}

namespace {

// Shared skeleton of the unary maps: applies fn to every element row by row (x/out checked by the caller).
template <typename Fn>
void unary_map(const Tensor& x, Tensor& out, ThreadPool* pool, Fn fn) {
  if (x.numel() == 0) return;
  RowLayout x_rows(x), out_rows(out);
  const int64_t C = x_rows.row_length();
  const float* px = x.data<float>();
  float* po = out.mutable_data<float>();
  parallel_rows(pool, x_rows.rows(), C, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* xr = px + x_rows.offset(r);
      float* orow = po + out_rows.offset(r);
      for (int64_t i = 0; i < C; ++i) orow[i] = fn(xr[i]);
    }
  });
}

}  // namespace

void scale(const Tensor& x, float alpha, float beta, Tensor& out, ThreadPool* pool) {
  // Multiply then add, rounding twice, exactly as torch's x * alpha + beta does (no fused multiply-add).
  check_unary_args(x, out, "scale");
  unary_map(x, out, pool, [=](float v) { return v * alpha + beta; });
}

void clamp(const Tensor& x, float lo, float hi, Tensor& out, ThreadPool* pool) {
  check_clamp_args(x, lo, hi, out);
  // Comparisons that are false for NaN, so a NaN input stays NaN instead of becoming a bound.
  unary_map(x, out, pool, [=](float v) { return v < lo ? lo : (v > hi ? hi : v); });
}

}  // namespace showo2::cpu
