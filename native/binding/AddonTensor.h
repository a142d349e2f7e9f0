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

namespace showo2::binding {

// A float32 tensor coming from JS: the typed array (referenced so it outlives an asynchronous call) and its shape.
struct FloatInput {
  Napi::Reference<Napi::Float32Array> ref;
  const float* data = nullptr;
  Shape shape;
};

// Re-checks `data` (a Float32Array) and `shape` (an array of `rank` positive integers whose product is the array's
// length); throws ERR_INVALID_ARGUMENT / ERR_SHAPE_MISMATCH naming `what` ("video" -> "video.data", "video.shape").
// The names in messages describe the rank by dims, e.g. [N, C, T, H, W] for rank 5.
FloatInput ReadFloatInput(Napi::Env env, Napi::Value data, Napi::Value shape, size_t rank, const std::string& what);

// Worker-thread half: a contiguous F32 tensor holding a copy of the input.
Tensor CopyFloatInput(const FloatInput& input);

// {data: Float32Array, shape: number[]} from an F32 result (gives up `bytes`).
Napi::Object FloatResultToJs(Napi::Env env, TensorBytes& bytes);

}  // namespace showo2::binding
