#include "AddonTensor.h"

#include <cmath>
#include <cstring>
#include <string>

#include "AddonErrors.h"
#include "error.h"

namespace showo2::binding {

TensorBytes CopyTensorBytes(const Tensor& tensor) {
  Tensor contiguous = tensor.contiguous();
  TensorBytes out;
  out.dtype = contiguous.dtype();
  out.shape = contiguous.shape();
  out.nbytes = contiguous.nbytes();
  if (out.nbytes > 0) {
    out.bytes.reset(new uint8_t[out.nbytes]);
    std::memcpy(out.bytes.get(), contiguous.raw(), out.nbytes);
  }
  return out;
}

Napi::Object TensorBytes::ToJs(Napi::Env env) {
  Napi::ArrayBuffer data;
  if (nbytes == 0) {
    data = Napi::ArrayBuffer::New(env, 0);
  } else {
    data = Napi::ArrayBuffer::New(env, bytes.get(), nbytes,
                                  [](Napi::Env, void* p) { delete[] static_cast<uint8_t*>(p); });
    bytes.release();  // only now: if New() threw, the unique_ptr still frees the buffer
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("dtype", dtype_name(dtype));
  out.Set("shape", ShapeToJs(env, shape));
  out.Set("data", data);
  return out;
}

Napi::Array ShapeToJs(Napi::Env env, const Shape& shape) {
  Napi::Array out = Napi::Array::New(env, shape.size());
  for (size_t i = 0; i < shape.size(); ++i) out.Set(static_cast<uint32_t>(i), static_cast<double>(shape[i]));
  return out;
}

}  // namespace showo2::binding

namespace showo2::binding {

FloatInput ReadFloatInput(Napi::Env env, Napi::Value data, Napi::Value shape, size_t rank, const std::string& what) {
  if (!data.IsTypedArray() || data.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw MakeError(env, kErrInvalidArgument, "Expected a Float32Array for " + what + ".data");
  if (!shape.IsArray())
    throw MakeError(env, kErrInvalidArgument, "Expected an array of " + std::to_string(rank) + " integers for " + what + ".shape");
  Napi::Float32Array array = data.As<Napi::Float32Array>();
  Napi::Array js_shape = shape.As<Napi::Array>();
  if (js_shape.Length() != rank) {
    const char* dims = rank == 5 ? " [N, C, T, H, W]" : rank == 2 ? " [N, C]" : "";
    throw MakeError(env, code_name(ErrorCode::ShapeMismatch),
                    "Expected " + std::to_string(rank) + " dimensions" + dims + " for " + what +
                        ".shape but received " + std::to_string(js_shape.Length()));
  }
  FloatInput out;
  double numel = 1;
  for (uint32_t i = 0; i < rank; ++i) {
    Napi::Value v = js_shape.Get(i);
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 1) || d != std::floor(d) || d > 9007199254740991.0)
      throw MakeError(env, kErrInvalidArgument,
                      "Expected a positive integer for " + what + ".shape[" + std::to_string(i) + "]");
    out.shape.push_back(static_cast<int64_t>(d));
    numel *= d;
  }
  if (numel != static_cast<double>(array.ElementLength()))
    throw MakeError(env, code_name(ErrorCode::ShapeMismatch),
                    "Expected " + what + ".data to hold " + shape_to_string(out.shape) + " = " +
                        std::to_string(static_cast<uint64_t>(numel)) + " floats but it holds " +
                        std::to_string(array.ElementLength()));
  out.data = array.Data();
  out.ref = Napi::Persistent(array);
  return out;
}

Tensor CopyFloatInput(const FloatInput& input) {
  Tensor t = Tensor::empty(input.shape, DType::F32);
  if (t.nbytes() > 0) std::memcpy(t.mutable_raw(), input.data, t.nbytes());
  return t;
}

Napi::Object FloatResultToJs(Napi::Env env, TensorBytes& bytes) {
  Napi::Object raw = bytes.ToJs(env);
  Napi::ArrayBuffer buffer = raw.Get("data").As<Napi::ArrayBuffer>();
  Napi::Object out = Napi::Object::New(env);
  out.Set("data", Napi::Float32Array::New(env, buffer.ByteLength() / sizeof(float), buffer, 0));
  out.Set("shape", raw.Get("shape"));
  return out;
}

}  // namespace showo2::binding
