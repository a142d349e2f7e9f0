// CudaBackend::Impl: the state behind one CudaBackend (cuda_backend.h), shared by the files that define its members.
// Owned and constructed by cuda_backend.cu; gemm.cu adds its cuBLASLt state through `gemm`.
//
//   * device_index / stream: every operation of the backend runs on this one stream of this device, in issue order,
//     so a pool block released by one op can be handed to the next op without waiting (stream order makes the reuse
//     safe); the host waits only in to_host() and synchronize().
//   * pool: the caching device allocator (DevicePool below). Tensors hold their block through Storage::wrap_device;
//     the last tensor to die returns it. The pool is shared_ptr-owned so blocks can outlive the backend.
//   * weights: upload_weight's cache, keyed by the host tensor's storage, byte offset, dtype, shape and strides, so
//     a weight bound twice (tied lm_head = embed_tokens) is uploaded once.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <utility>
#include <vector>

#include "cuda_backend.h"
#include "tensor.h"

namespace showo2::cuda {

class GemmRunner;  // gemm.h

// A caching device allocator by size class (no cudaMalloc per op).
//
// Rounding: a request of n bytes takes the class round_size(n): the next power of two from 512 B up to 64 MiB, and
// above that the next multiple of 8 MiB (powers of two would waste up to half of a large activation). Freed blocks go
// to their class's free list and are reused by the next request of that class. When cudaMalloc fails, or the limit
// would be exceeded, every cached free block is returned to the driver and the allocation is tried once more; then
// it is ERR_OUT_OF_MEMORY naming the request, the bytes in use and the limit (the backend stays usable).
class DevicePool {
 public:
  DevicePool(int device_index, size_t limit_bytes);
  ~DevicePool();
  DevicePool(const DevicePool&) = delete;
  DevicePool& operator=(const DevicePool&) = delete;

  static size_t round_size(size_t nbytes);

  void* allocate(size_t nbytes, size_t* class_bytes);  // throws ERR_OUT_OF_MEMORY / ERR_CUDA
  void release(void* ptr, size_t class_bytes);         // never throws (called from Storage destructors)
  void release_cached();                               // frees every cached (unused) block

  size_t bytes_in_use() const;
  size_t bytes_cached() const;
  size_t limit_bytes() const { return limit_; }
  // The most bytes in use at once since construction or the last reset_peak() (benchmarks' peak memory).
  size_t peak_bytes_in_use() const;
  void reset_peak();

 private:
  void free_cached_locked();
  const int device_index_;
  const size_t limit_;  // 0: no limit
  mutable std::mutex mutex_;
  std::map<size_t, std::vector<void*>> free_;  // class size -> cached blocks
  size_t in_use_ = 0, cached_ = 0, peak_ = 0;
};

struct CudaBackend::Impl {
  Impl(const CudaBackendOptions& options);
  ~Impl();

  // A new contiguous device tensor from the pool.
  Tensor empty(const Shape& shape, DType dtype);
  // Makes this backend's device current on the calling thread (N-API workers run on varying threads).
  void activate() const;

  int device_index = 0;
  DType weight_dtype = DType::BF16;
  DType conv_dtype = DType::F32;  // CudaBackendOptions::conv_dtype: F32 runs conv v2, BF16 conv v3
  bool channels_last_activations = false;  // CudaBackendOptions::channels_last_activations
  DType conv_activation_dtype = DType::F32;  // CudaBackendOptions::conv_activation_dtype
  cudaStream_t stream = nullptr;
  std::shared_ptr<DevicePool> pool;

  struct WeightKey {
    const Storage* storage;
    size_t byte_offset;
    DType dtype;
    Shape shape, strides;
    bool operator<(const WeightKey& o) const {
      return std::tie(storage, byte_offset, dtype, shape, strides) <
             std::tie(o.storage, o.byte_offset, o.dtype, o.shape, o.strides);
    }
  };
  struct WeightEntry {
    std::weak_ptr<Storage> host;  // detects a host storage freed and its address reused
    Tensor device;
  };
  std::mutex weights_mutex;
  std::map<WeightKey, WeightEntry> weights;

  std::unique_ptr<GemmRunner> gemm;  // created on the first linear/matmul (gemm.cu)
};

// The device rule of one op (the argument contract itself is backend_checks.h's): every listed operand, named
// "op: operand", must be in device memory; undefined optional operands are fine.
inline void require_device_operands(std::initializer_list<std::pair<const Tensor*, const char*>> operands) {
  for (const auto& [tensor, what] : operands) check_device(*tensor, Device::Cuda, what);
}

}  // namespace showo2::cuda
