// Small allocating wrappers over Backend operations for model code: each returns a new F32 tensor from the backend's
// memory (Backend::empty), so forward passes read as `h = linear(b, x, w, bias)` instead of allocate-then-call.
#pragma once

#include "backend.h"
#include "tensor.h"

namespace showo2 {

// A new uninitialised F32 tensor in the backend's memory.
inline Tensor new_f32(Backend& b, const Shape& shape) { return b.empty(shape, DType::F32); }

// x [..., K] · weight[N, K]^T (+ bias) -> [..., N].
inline Tensor linear(Backend& b, const Tensor& x, const Tensor& weight, const Tensor& bias) {
  Shape shape = x.shape();
  shape.back() = weight.size(0);
  Tensor out = new_f32(b, shape);
  b.linear(x, weight, bias, out);
  return out;
}

// RMSNorm over the last dimension -> same shape.
inline Tensor rms_norm(Backend& b, const Tensor& x, const Tensor& weight, double eps) {
  Tensor out = new_f32(b, x.shape());
  b.rms_norm(x, weight, static_cast<float>(eps), out);
  return out;
}

}  // namespace showo2
