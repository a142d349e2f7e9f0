// CudaBackend: device selection, the stream, the caching memory pool, weight upload and host <-> device transfers
// (cuda_backend.h, cuda_backend_impl.h). The numeric operations live in gemm.cu, cuda_backend_pointwise.cu and
// cuda_backend_attention_conv.cu.
//
// Contract of this file:
//   empty(shape, dtype)   a contiguous Device::Cuda tensor from the pool (uninitialised)
//   upload_weight(host)   once per host tensor: ndim >= 2 -> weight dtype (BF16 default, F16 option), converted on the
//                         host with dtype.h's round-to-nearest-even; ndim <= 1 (norm scales, biases) -> F32 (spec §12:
//                         fp32 norms); a Cuda tensor is returned as is
//   to_device(host)       same dtype, contiguous, copied on the stream (a Cuda tensor is returned as is)
//   to_host(t)            waits for the stream, returns a contiguous host tensor (a Cpu tensor is returned as is)
// Precision: weights round once to bf16/fp16 at upload; activations stay F32 (spec §12).
#include "cuda_backend_impl.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "cuda_check.h"
#include "device_info.h"
#include "gemm.h"

namespace showo2::cuda {

// ---- DevicePool -----------------------------------------------------------------------------------------------------

DevicePool::DevicePool(int device_index, size_t limit_bytes) : device_index_(device_index), limit_(limit_bytes) {}

DevicePool::~DevicePool() {
  std::lock_guard<std::mutex> lock(mutex_);
  free_cached_locked();
}

size_t DevicePool::round_size(size_t nbytes) {
  constexpr size_t kMin = 512, kPow2Max = size_t{64} << 20, kLargeStep = size_t{8} << 20;
  if (nbytes <= kMin) return kMin;
  if (nbytes <= kPow2Max) {
    size_t c = kMin;
    while (c < nbytes) c <<= 1;
    return c;
  }
  return (nbytes + kLargeStep - 1) / kLargeStep * kLargeStep;
}

void DevicePool::free_cached_locked() {
  cudaSetDevice(device_index_);
  for (auto& [size, blocks] : free_)
    for (void* p : blocks) cudaFree(p);  // errors ignored: this also runs at process exit
  free_.clear();
  cached_ = 0;
}

void DevicePool::release_cached() {
  std::lock_guard<std::mutex> lock(mutex_);
  free_cached_locked();
}

void* DevicePool::allocate(size_t nbytes, size_t* class_bytes) {
  const size_t size = round_size(nbytes);
  *class_bytes = size;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = free_.find(size);
  if (it != free_.end() && !it->second.empty()) {
    void* p = it->second.back();
    it->second.pop_back();
    cached_ -= size;
    in_use_ += size;
    peak_ = std::max(peak_, in_use_);
    return p;
  }
  // A new block: within the limit (counting cached blocks, which are released first when they are in the way).
  if (limit_ != 0 && in_use_ + cached_ + size > limit_) free_cached_locked();
  if (limit_ != 0 && in_use_ + size > limit_)
    fail(ErrorCode::OutOfMemory, "CUDA backend: allocating ", nbytes, " bytes (class ", size, ") would exceed the ",
         "memory pool limit of ", limit_, " bytes (", in_use_, " bytes in use)");
  void* p = nullptr;
  cudaError_t err = cudaMalloc(&p, size);
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    free_cached_locked();  // give the cache back to the driver and try once more
    err = cudaMalloc(&p, size);
  }
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    fail(ErrorCode::OutOfMemory, "CUDA backend: out of device memory allocating ", nbytes, " bytes (", in_use_,
         " bytes in use by showo2 on device ", device_index_, ")");
  }
  if (err != cudaSuccess) throw_cuda_error(err, "cudaMalloc", __FILE__, __LINE__);
  in_use_ += size;
  peak_ = std::max(peak_, in_use_);
  return p;
}

void DevicePool::release(void* ptr, size_t class_bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  in_use_ -= class_bytes;
  cached_ += class_bytes;
  free_[class_bytes].push_back(ptr);
}

size_t DevicePool::bytes_in_use() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return in_use_;
}

size_t DevicePool::bytes_cached() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return cached_;
}

size_t DevicePool::peak_bytes_in_use() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return peak_;
}

void DevicePool::reset_peak() {
  std::lock_guard<std::mutex> lock(mutex_);
  peak_ = in_use_;
}

// ---- Impl -----------------------------------------------------------------------------------------------------------

CudaBackend::Impl::Impl(const CudaBackendOptions& options)
    : device_index(options.device_index),
      weight_dtype(options.weight_dtype),
      conv_dtype(options.conv_dtype),
      channels_last_activations(options.channels_last_activations),
      conv_activation_dtype(options.conv_activation_dtype) {
  if (conv_activation_dtype != DType::F32 && conv_activation_dtype != DType::BF16)
    fail(ErrorCode::InvalidArgument, "CUDA backend: conv_activation_dtype: expected F32 or BF16 but got ",
         dtype_name(conv_activation_dtype));
  if (weight_dtype != DType::BF16 && weight_dtype != DType::F16)
    fail(ErrorCode::InvalidArgument, "CUDA backend: weight_dtype: expected BF16 or F16 but got ",
         dtype_name(weight_dtype));
  if (conv_dtype != DType::F32 && conv_dtype != DType::BF16)
    fail(ErrorCode::InvalidArgument, "CUDA backend: conv_dtype: expected F32 or BF16 but got ", dtype_name(conv_dtype));
  const CudaInfo info = query_cuda();
  if (info.devices.empty())
    fail(ErrorCode::Cuda, "CUDA backend unavailable: ",
         info.unavailable_reason.empty() ? std::string("no CUDA device present") : info.unavailable_reason);
  if (device_index < 0 || device_index >= static_cast<int>(info.devices.size()))
    fail(ErrorCode::Cuda, "CUDA backend unavailable: device index ", device_index, " requested but ",
         info.devices.size(), " device(s) present");
  const DeviceInfo* d = nullptr;
  for (const DeviceInfo& dev : info.devices)
    if (dev.index == device_index) d = &dev;
  if (d == nullptr) fail(ErrorCode::Cuda, "CUDA backend unavailable: device ", device_index, " could not be queried");
  if (!d->supported)
    fail(ErrorCode::Cuda, "CUDA backend unavailable: ", d->name, " (device ", device_index, ") has compute capability ",
         d->compute_major, ".", d->compute_minor, "; showo2 needs ", kMinComputeMajor, ".0 or newer (bf16 tensor cores)");
  SHOWO2_CUDA_CHECK(cudaSetDevice(device_index));
  SHOWO2_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  pool = std::make_shared<DevicePool>(device_index, options.pool_limit_bytes);
}

CudaBackend::Impl::~Impl() {
  cudaSetDevice(device_index);
  if (stream) cudaStreamSynchronize(stream);  // queued kernels may still read pool blocks
  gemm.reset();
  weights.clear();  // device weights go back to the pool (which outlives us while tensors hold blocks)
  if (stream) cudaStreamDestroy(stream);
}

void CudaBackend::Impl::activate() const { SHOWO2_CUDA_CHECK(cudaSetDevice(device_index)); }

Tensor CudaBackend::Impl::empty(const Shape& shape, DType dtype) {
  const size_t nbytes = static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype);
  size_t class_bytes = 0;
  void* p = pool->allocate(nbytes, &class_bytes);
  std::shared_ptr<DevicePool> owner = pool;  // the release callback keeps the pool alive
  auto storage = Storage::wrap_device(Device::Cuda, p, nbytes,
                                      [owner, class_bytes](void* ptr) { owner->release(ptr, class_bytes); });
  return Tensor::view_of(std::move(storage), dtype, shape, contiguous_strides(shape), 0);
}

// ---- CudaBackend: memory --------------------------------------------------------------------------------------------

CudaBackend::CudaBackend(const CudaBackendOptions& options) : impl_(std::make_unique<Impl>(options)) {}

CudaBackend::~CudaBackend() = default;

cudaStream_t CudaBackend::stream() const { return impl_->stream; }
int CudaBackend::device_index() const { return impl_->device_index; }
DType CudaBackend::weight_dtype() const { return impl_->weight_dtype; }

Tensor CudaBackend::empty(const Shape& shape, DType dtype) {
  impl_->activate();
  return impl_->empty(shape, dtype);
}

Tensor CudaBackend::to_device(const Tensor& host) {
  SHOWO2_CHECK(host.defined(), InvalidArgument, "CudaBackend.to_device: tensor is undefined");
  if (host.device() == Device::Cuda) return host;
  impl_->activate();
  const Tensor src = host.contiguous();
  Tensor out = impl_->empty(src.shape(), src.dtype());
  // Pageable source: cudaMemcpyAsync returns once the bytes are staged, so `src` may die right after.
  if (src.nbytes() > 0)
    SHOWO2_CUDA_CHECK(cudaMemcpyAsync(out.mutable_device_raw(), src.raw(), src.nbytes(), cudaMemcpyHostToDevice,
                                      impl_->stream));
  return out;
}

Tensor CudaBackend::to_host(const Tensor& t) {
  SHOWO2_CHECK(t.defined(), InvalidArgument, "CudaBackend.to_host: tensor is undefined");
  if (t.device() == Device::Cpu) return t;
  impl_->activate();
  Tensor src = t;
  if (!src.is_contiguous()) {  // gather the view on the device first (one strided copy kernel)
    src = impl_->empty(t.shape(), t.dtype());
    copy(t, src);
  }
  Tensor out = Tensor::empty(src.shape(), src.dtype());
  if (src.nbytes() > 0)
    SHOWO2_CUDA_CHECK(cudaMemcpyAsync(out.mutable_raw(), src.device_raw(), src.nbytes(), cudaMemcpyDeviceToHost,
                                      impl_->stream));
  SHOWO2_CUDA_CHECK(cudaStreamSynchronize(impl_->stream));
  return out;
}

void CudaBackend::synchronize() {
  impl_->activate();
  SHOWO2_CUDA_CHECK(cudaStreamSynchronize(impl_->stream));
}

bool CudaBackend::prefers_channels_last_activations() const { return impl_->channels_last_activations; }

DType CudaBackend::preferred_conv_activation_dtype() const { return impl_->conv_activation_dtype; }

int64_t CudaBackend::available_memory_bytes() {
  impl_->activate();
  size_t free_bytes = 0, total_bytes = 0;
  SHOWO2_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  const DevicePool& pool = *impl_->pool;
  // The pool's cached blocks are free for showo2 though the driver counts them as used.
  size_t available = free_bytes + pool.bytes_cached();
  if (pool.limit_bytes() != 0) {
    const size_t in_use = pool.bytes_in_use();
    const size_t under_limit = pool.limit_bytes() > in_use ? pool.limit_bytes() - in_use : 0;
    available = available < under_limit ? available : under_limit;
  }
  return static_cast<int64_t>(available);
}

size_t CudaBackend::peak_pool_bytes() const { return impl_->pool->peak_bytes_in_use(); }
void CudaBackend::reset_peak_pool_bytes() { impl_->pool->reset_peak(); }

Tensor CudaBackend::upload_weight(const Tensor& host) {
  SHOWO2_CHECK(host.defined(), InvalidArgument, "CudaBackend.upload_weight: tensor is undefined");
  if (host.device() == Device::Cuda) return host;
  check_float(host, "CudaBackend.upload_weight");
  Impl& im = *impl_;
  const Impl::WeightKey key{host.storage().get(), host.byte_offset(), host.dtype(), host.shape(), host.strides()};
  {
    std::lock_guard<std::mutex> lock(im.weights_mutex);
    auto it = im.weights.find(key);
    if (it != im.weights.end()) {
      if (!it->second.host.expired()) return it->second.device;  // a shared / tied weight: uploaded already
      im.weights.erase(it);  // the host storage died and its address was reused: a different tensor
    }
  }
  // Matrices (linear, conv, embedding tables) in the weight dtype; vectors (norm scales, biases) in F32.
  const DType target = host.dim() >= 2 ? im.weight_dtype : DType::F32;
  const Tensor converted = host.dtype() == target ? host.contiguous() : host.to(target);  // RNE (dtype.h)
  Tensor device = to_device(converted);
  SHOWO2_CUDA_CHECK(cudaStreamSynchronize(im.stream));  // `converted` may be a temporary: finish reading it
  std::lock_guard<std::mutex> lock(im.weights_mutex);
  im.weights[key] = Impl::WeightEntry{host.storage(), device};
  return device;
}

}  // namespace showo2::cuda
