// Launchers for the elementwise family (cuda/elementwise.cu): add and mul with suffix broadcasting, affine scale and
// clamp. Raw device pointers in, work queued on `stream`; launch failures throw showo2::Error. Semantics are
// backend.h's; the CPU twin is native/core/cpu/elementwise.cpp.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernel_utils.cuh"

namespace showo2::cuda {

enum class ElementwiseOp { Add, Mul, Scale, Clamp };

struct ElementwiseParams {
  ElementwiseOp op = ElementwiseOp::Add;
  const float* a = nullptr;  // first operand [rows, cols] (scale/clamp: x)
  RowMap a_rows;             // where row r of a starts
  const float* b = nullptr;  // add/mul: second operand, a's shape or a contiguous suffix of it
  RowMap b_rows;             // where row r of b starts; a suffix-shaped b has a map that wraps (b_rows.size[0] < rows)
  bool b_scalar = false;     // add/mul: b is one value (0-D) broadcast over everything
  float* out = nullptr;      // output [rows, cols]; may alias a
  RowMap out_rows;           // where row r of out starts
  int64_t rows = 0;          // number of rows of a (product of its leading dims)
  int64_t cols = 0;          // last dimension
  float alpha = 1.0f;        // scale: out = a * alpha + beta
  float beta = 0.0f;
  float lo = 0.0f;           // clamp: out = min(max(a, lo), hi), NaN stays NaN
  float hi = 0.0f;
};

void launch_elementwise(const ElementwiseParams& p, cudaStream_t stream);

}  // namespace showo2::cuda
