#include "AddonTensor.h"

#include <cstring>

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
