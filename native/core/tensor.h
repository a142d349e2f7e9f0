// Tensor: a typed, strided view over a reference-counted block of memory.
//
// The core passes Tensors between model code and the backend. A Tensor never copies on view operations: it shares
// its Storage (an owned aligned buffer, a read-only window into a memory-mapped checkpoint that keeps the mapping
// alive, or a block of a backend's device memory). Shapes and strides are in elements; strides may be arbitrary
// non-negative values and kernels state which layouts they accept (most want the last dimension contiguous) and check
// with the helpers below.
//
// The device rule. Every tensor knows where its bytes live (device()). Host code may only dereference Cpu tensors:
// raw(), mutable_raw(), data<T>(), mutable_data<T>(), contiguous() (when it must copy), to(), to_f32_vector() and
// Tensor::zeros/from_f32 work on host memory and throw ERR_INVALID_ARGUMENT ("... lives in cuda memory ...") for a
// Cuda tensor instead of touching a device pointer. Views (reshape, slice, select, transpose, unsqueeze, view_of)
// never touch the bytes and work on any device. The kernels of a device backend reach the address through
// device_raw() / mutable_device_raw(); model code moves data across with Backend::to_device / to_host.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "dtype.h"
#include "error.h"

namespace showo2 {

using Shape = std::vector<int64_t>;

// Where a tensor's bytes live. Host code may only dereference Cpu tensors; Cuda tensors hold device pointers that
// only kernels of the CUDA backend read (Backend::to_host brings them back).
enum class Device : uint8_t { Cpu, Cuda };
const char* device_name(Device device);  // "cpu", "cuda"

// The bytes behind one or more tensors. Either owns an aligned heap buffer, borrows host memory owned by
// `keepalive` (e.g. a memory-mapped file; then read-only), or holds a block of device memory that a backend handed
// out and takes back through a release callback when the last tensor using it is gone.
class Storage {
 public:
  // Allocates `nbytes` of host memory (64-byte aligned, uninitialised). Throws ERR_OUT_OF_MEMORY.
  static std::shared_ptr<Storage> allocate(size_t nbytes);
  // Wraps external host memory; `keepalive` stays referenced as long as this storage lives.
  static std::shared_ptr<Storage> borrow(const void* data, size_t nbytes, std::shared_ptr<const void> keepalive);
  // Wraps `nbytes` of memory on `device` (writable). `release(data)` runs exactly once when the storage is destroyed
  // (a memory pool returns the block to its free list); it must not throw. The bytes are never dereferenced here.
  static std::shared_ptr<Storage> wrap_device(Device device, void* data, size_t nbytes,
                                              std::function<void(void*)> release);

  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  Device device() const { return device_; }
  const uint8_t* data() const;  // host memory only: ERR_INVALID_ARGUMENT for device storage
  uint8_t* mutable_data();      // also ERR_INVALID_ARGUMENT for read-only (borrowed) storage
  // The address whatever the device (for device kernels and copies); never dereference it on the host.
  void* device_data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  bool read_only() const { return read_only_; }

 private:
  Storage() = default;
  uint8_t* data_ = nullptr;
  size_t nbytes_ = 0;
  bool owned_ = false;
  bool read_only_ = false;
  Device device_ = Device::Cpu;
  std::shared_ptr<const void> keepalive_;
  std::function<void(void*)> release_;
};

class Tensor {
 public:
  Tensor() = default;

  // A new contiguous tensor (uninitialised memory).
  static Tensor empty(const Shape& shape, DType dtype);
  static Tensor zeros(const Shape& shape, DType dtype);
  // Contiguous f32 tensor holding a copy of `values` (test and tool convenience).
  static Tensor from_f32(const Shape& shape, const std::vector<float>& values);
  // A view over existing storage. Validates that every addressed element lies inside the storage.
  static Tensor view_of(std::shared_ptr<Storage> storage, DType dtype, const Shape& shape, const Shape& strides,
                        size_t byte_offset);

  bool defined() const { return storage_ != nullptr; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }
  int64_t dim() const { return static_cast<int64_t>(shape_.size()); }
  // Size of dimension d; negative d counts from the end (like PyTorch).
  int64_t size(int64_t d) const;
  int64_t stride(int64_t d) const;
  int64_t numel() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  bool is_contiguous() const;
  bool read_only() const { return storage_ && storage_->read_only(); }
  Device device() const { return storage_ ? storage_->device() : Device::Cpu; }  // undefined tensors: Cpu
  const std::shared_ptr<Storage>& storage() const { return storage_; }
  size_t byte_offset() const { return byte_offset_; }

  // Raw host pointers to element [0,...,0]. The typed forms check the dtype matches T. Cpu tensors only (see the
  // device rule above): ERR_INVALID_ARGUMENT for a Cuda tensor.
  const void* raw() const;
  void* mutable_raw();
  // The address of element [0,...,0] on the tensor's own device, for backend kernels and device copies. Never
  // dereference it on the host unless device() == Device::Cpu. mutable_device_raw() rejects read-only storage.
  const void* device_raw() const;
  void* mutable_device_raw();
  template <typename T> const T* data() const { check_type_(sizeof(T)); return static_cast<const T*>(raw()); }
  template <typename T> T* mutable_data() { check_type_(sizeof(T)); return static_cast<T*>(mutable_raw()); }

  // Views (no copy).
  Tensor reshape(const Shape& new_shape) const;          // requires contiguity; one dim may be -1
  Tensor slice(int64_t d, int64_t start, int64_t end) const;  // half-open [start, end) along d
  Tensor select(int64_t d, int64_t index) const;          // drops dimension d
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor unsqueeze(int64_t d) const;
  // Dimension i of the result is dimension dims[i] of this tensor (dims: a permutation of 0..dim()-1), as
  // torch.Tensor.permute.
  Tensor permute(const Shape& dims) const;
  // Whether the strides are those of channels-last memory (PyTorch's channels_last / channels_last_3d): a tensor of
  // shape [N, C, S...] (dim >= 3) whose elements lie as a contiguous [N, S..., C]. Size-1 dims are ignored, as in
  // is_contiguous(), so a tensor can be both (e.g. C == 1).
  bool is_channels_last() const;
  // The same elements as a 1-D view in memory order, for a tensor that is contiguous or channels-last (elementwise
  // ops on two tensors of the same layout can then run on these views). ERR_INVALID_ARGUMENT otherwise.
  Tensor memory_order_view() const;

  // Copies, on the host (Cpu tensors only, except contiguous() of an already contiguous tensor, which is *this).
  Tensor contiguous() const;        // returns *this when already contiguous
  Tensor to(DType dtype) const;     // float conversions (F32/BF16/F16) only; always a new contiguous tensor
  std::vector<float> to_f32_vector() const;  // float dtypes, any layout

  std::string shape_string() const;  // "[2, 3, 4]"

 private:
  void check_type_(size_t elem_size) const;
  std::shared_ptr<Storage> storage_;
  DType dtype_ = DType::F32;
  Shape shape_;
  Shape strides_;
  size_t byte_offset_ = 0;
};

std::string shape_to_string(const Shape& shape);
Shape contiguous_strides(const Shape& shape);
// Strides of channels-last memory for a shape [N, C, S...] (dim >= 3): those of a contiguous [N, S..., C], permuted
// back to [N, C, S...].
Shape channels_last_strides(const Shape& shape);
// The dims that turn a channels-last tensor [N, C, S...] into its memory order [N, S..., C] (permute argument), and
// back.
Shape channels_last_to_memory_order(int64_t dim);
Shape memory_order_to_channels_last(int64_t dim);
int64_t shape_numel(const Shape& shape);

// ---- argument checks used by every backend op. They throw showo2::Error naming `what` (e.g. "linear: weight"). ----
void check_dtype(const Tensor& t, DType dtype, const char* what);
void check_float(const Tensor& t, const char* what);  // F32, BF16 or F16
void check_dim(const Tensor& t, int64_t dim, const char* what);
void check_shape(const Tensor& t, const Shape& expected, const char* what);
void check_contiguous(const Tensor& t, const char* what);
void check_last_dim_contiguous(const Tensor& t, const char* what);
void check_writable(const Tensor& t, const char* what);
void check_device(const Tensor& t, Device device, const char* what);  // ERR_INVALID_ARGUMENT naming both devices

}  // namespace showo2
