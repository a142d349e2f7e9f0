// Elementwise binary ops and affine scaling on the CPU (backend.h).
//
//   add:   out = a + b        mul: out = a * b        scale: out = x * alpha + beta
//   clamp: out = min(max(x, lo), hi), NaN passing through (torch.clamp)
//   a, out: F32, same shape [..., C], last dimension contiguous (leading strides free); out may alias a (or x).
//   b:      F32, a's shape or a suffix of it, broadcast over a's leading dims (e.g. a [B, L, C] + b [C] or b [L, C]).
// Plain loops: the compiler vectorises them at the baseline ISA and the ops are memory-bound, so there is no AVX2
// variant.
#include <cstdint>
#include <string>

#include "ops.h"
#include "rows.h"

namespace showo2::cpu {

namespace {

enum class BinaryOp { Add, Mul };

void check_same_shape(const Tensor& a, const Tensor& out, const char* op, const char* what) {
  if (out.shape() != a.shape())
    fail(ErrorCode::ShapeMismatch, op, ": ", what, ": expected shape ", a.shape_string(), " but got ",
         out.shape_string());
}

void check_pointwise_operand(const Tensor& t, const char* what) {
  check_dtype(t, DType::F32, what);
  check_row_rank(t, what);
  check_last_dim_contiguous(t, what);
}

// True when b's shape is the last b.dim() dimensions of a's shape.
bool is_suffix_shape(const Shape& a, const Shape& b) {
  if (b.size() > a.size()) return false;
  return std::equal(b.begin(), b.end(), a.end() - static_cast<std::ptrdiff_t>(b.size()));
}

void binary(const Tensor& a, const Tensor& b, Tensor& out, ThreadPool* pool, BinaryOp op, const char* name) {
  std::string prefix = name;
  check_pointwise_operand(a, (prefix + ": a").c_str());
  check_pointwise_operand(b, (prefix + ": b").c_str());
  check_pointwise_operand(out, (prefix + ": out").c_str());
  check_writable(out, (prefix + ": out").c_str());
  check_same_shape(a, out, name, "out");
  if (!is_suffix_shape(a.shape(), b.shape()))
    fail(ErrorCode::ShapeMismatch, name, ": b: expected a's shape ", a.shape_string(),
         " or a suffix of it but got ", b.shape_string());
  if (a.numel() == 0) return;
  // b is read with row-major broadcasting, so it must be contiguous (it is a bias-like operand, rarely a view).
  check_contiguous(b, (prefix + ": b").c_str());

  RowLayout a_rows(a), out_rows(out);
  const int64_t C = a_rows.row_length();
  // A b of shape [] or [1] against a wider last dimension cannot happen: a suffix has the same last dim, except the
  // 0-D b, which broadcasts one value over everything.
  const bool b_scalar = b.dim() == 0;
  const int64_t b_rows = b_scalar ? 1 : b.numel() / C;
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

// Shared skeleton of the unary maps: validates x/out under `name`, then applies fn to every element row by row.
template <typename Fn>
void unary_map(const Tensor& x, Tensor& out, ThreadPool* pool, const char* name, Fn fn) {
  const std::string prefix = name;
  check_pointwise_operand(x, (prefix + ": x").c_str());
  check_pointwise_operand(out, (prefix + ": out").c_str());
  check_writable(out, (prefix + ": out").c_str());
  check_same_shape(x, out, name, "out");
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
  unary_map(x, out, pool, "scale", [=](float v) { return v * alpha + beta; });
}

void clamp(const Tensor& x, float lo, float hi, Tensor& out, ThreadPool* pool) {
  if (!(lo <= hi)) fail(ErrorCode::InvalidArgument, "clamp: expected lo <= hi but got lo=", lo, " hi=", hi);
  // Comparisons that are false for NaN, so a NaN input stays NaN instead of becoming a bound.
  unary_map(x, out, pool, "clamp", [=](float v) { return v < lo ? lo : (v > hi ? hi : v); });
}

}  // namespace showo2::cpu
