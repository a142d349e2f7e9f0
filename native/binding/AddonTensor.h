// How a tensor crosses into JS: {dtype, shape, data: ArrayBuffer}.
//
// The bytes are copied off the JS thread into a heap buffer (CopyTensorBytes, on a worker), and that buffer is then
// handed to an ArrayBuffer without a second copy (ToJs, on the JS thread), so reading a 1 GB embedding costs the JS
// thread nothing proportional to its size.
#pragma once

#include "AddonNapi.h"

#include <cstdint>
#include <memory>

#include "tensor.h"

namespace showo2::binding {

struct TensorBytes {
  DType dtype = DType::F32;
  Shape shape;
  std::unique_ptr<uint8_t[]> bytes;  // contiguous, row-major
  size_t nbytes = 0;

  // {dtype: "F32", shape: [..], data: ArrayBuffer}. Gives up `bytes`.
  Napi::Object ToJs(Napi::Env env);
};

// Worker-thread half: a contiguous copy of the tensor's elements.
TensorBytes CopyTensorBytes(const Tensor& tensor);

// Shapes are int64 in the core; every real dimension is far below 2^53, so a JS number holds it exactly.
Napi::Array ShapeToJs(Napi::Env env, const Shape& shape);

}  // namespace showo2::binding
