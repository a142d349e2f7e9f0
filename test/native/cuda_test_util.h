// Helpers for the kernel-vs-CPU tests of the CUDA families (test/native/*_cuda_test.cu).
//
//   require_cuda_device()        skips the case (with the reason) unless a supported GPU is present, so the suites
//                                run everywhere and report "skipped" on CI machines without one
//   DeviceMirror m(host_tensor)  the whole storage of a host tensor copied to the device, so a view keeps its byte
//                                offset and strides there: m.f32() is the device address of element [0, ..., 0]
//   m.download()                 the device bytes back, as a host tensor with the original view's shape and strides
//   sync_and_check()             waits for the queued kernels and turns an asynchronous CUDA error into a failure
// Tests launch on the default stream (0), which every launcher accepts.
#pragma once

#include <cuda_runtime.h>

#include <cstring>
#include <memory>
#include <string>

#include "../../cuda/cuda_check.h"
#include "../../cuda/device_info.h"
#include "../../cuda/kernel_utils.cuh"
#include "tensor.h"
#include "test_util.h"

namespace showo2::test {

inline void require_cuda_device() {
  const cuda::CudaInfo info = cuda::query_cuda();
  if (!info.unavailable_reason.empty()) skip_test("no usable CUDA device: " + info.unavailable_reason);
}

inline void sync_and_check() { SHOWO2_CUDA_CHECK(cudaDeviceSynchronize()); }

class DeviceMirror {
 public:
  explicit DeviceMirror(const Tensor& host) : host_(host) {
    const size_t nbytes = host.storage()->nbytes();
    SHOWO2_CUDA_CHECK(cudaMalloc(&base_, nbytes == 0 ? 1 : nbytes));
    if (nbytes) SHOWO2_CUDA_CHECK(cudaMemcpy(base_, host.storage()->data(), nbytes, cudaMemcpyHostToDevice));
  }
  ~DeviceMirror() { cudaFree(base_); }
  DeviceMirror(const DeviceMirror&) = delete;
  DeviceMirror& operator=(const DeviceMirror&) = delete;

  void* ptr() const { return static_cast<uint8_t*>(base_) + host_.byte_offset(); }
  float* f32() const { return static_cast<float*>(ptr()); }

  // The device contents as a host tensor with the original view (shape, strides, offset) over a fresh storage.
  Tensor download() const {
    const size_t nbytes = host_.storage()->nbytes();
    std::shared_ptr<Storage> storage = Storage::allocate(nbytes);
    sync_and_check();
    if (nbytes) SHOWO2_CUDA_CHECK(cudaMemcpy(storage->mutable_data(), base_, nbytes, cudaMemcpyDeviceToHost));
    return Tensor::view_of(storage, host_.dtype(), host_.shape(), host_.strides(), host_.byte_offset());
  }
  std::vector<float> download_f32() const { return download().to_f32_vector(); }

 private:
  Tensor host_;
  void* base_ = nullptr;
};

// A host tensor's RowMap over its leading dims (what the backend glue computes for the launchers).
inline cuda::RowMap row_map_of(const Tensor& t) {
  if (t.dim() <= 1) return cuda::RowMap{};
  return cuda::make_row_map(t.shape().data(), t.strides().data(), static_cast<int>(t.dim() - 1), "test");
}
inline int64_t rows_of(const Tensor& t) {
  int64_t rows = 1;
  for (int64_t d = 0; d + 1 < t.dim(); ++d) rows *= t.size(d);
  return rows;
}

}  // namespace showo2::test
