// Tensor: a typed, strided view over a reference-counted block of memory.
//
// The core passes Tensors between model code and the backend. A Tensor never copies on view operations: it shares
// its Storage (an owned aligned buffer, or a read-only window into a memory-mapped checkpoint that keeps the mapping
// alive). Shapes and strides are in elements; strides may be arbitrary non-negative values and kernels state which
// layouts they accept (most want the last dimension contiguous) and check with the helpers below.
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

// The bytes behind one or more tensors. Either owns an aligned heap buffer, or borrows memory owned by `keepalive`
// (e.g. a memory-mapped file) and is then read-only.
class Storage {
 public:
  // Allocates `nbytes` (64-byte aligned, uninitialised). Throws ERR_OUT_OF_MEMORY.
  static std::shared_ptr<Storage> allocate(size_t nbytes);
  // Wraps external memory; `keepalive` stays referenced as long as this storage lives.
  static std::shared_ptr<Storage> borrow(const void* data, size_t nbytes, std::shared_ptr<const void> keepalive);

  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  const uint8_t* data() const { return data_; }
  uint8_t* mutable_data();  // throws ERR_INVALID_ARGUMENT for read-only (borrowed) storage
  size_t nbytes() const { return nbytes_; }
  bool read_only() const { return read_only_; }

 private:
  Storage() = default;
  uint8_t* data_ = nullptr;
  size_t nbytes_ = 0;
  bool owned_ = false;
  bool read_only_ = false;
  std::shared_ptr<const void> keepalive_;
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
  const std::shared_ptr<Storage>& storage() const { return storage_; }
  size_t byte_offset() const { return byte_offset_; }

  // Raw pointers to element [0,...,0]. The typed forms check the dtype matches T.
  const void* raw() const;
  void* mutable_raw();
  template <typename T> const T* data() const { check_type_(sizeof(T)); return static_cast<const T*>(raw()); }
  template <typename T> T* mutable_data() { check_type_(sizeof(T)); return static_cast<T*>(mutable_raw()); }

  // Views (no copy).
  Tensor reshape(const Shape& new_shape) const;          // requires contiguity; one dim may be -1
  Tensor slice(int64_t d, int64_t start, int64_t end) const;  // half-open [start, end) along d
  Tensor select(int64_t d, int64_t index) const;          // drops dimension d
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor unsqueeze(int64_t d) const;

  // Copies.
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
int64_t shape_numel(const Shape& shape);

// ---- argument checks used by every backend op. They throw showo2::Error naming `what` (e.g. "linear: weight"). ----
void check_dtype(const Tensor& t, DType dtype, const char* what);
void check_float(const Tensor& t, const char* what);  // F32, BF16 or F16
void check_dim(const Tensor& t, int64_t dim, const char* what);
void check_shape(const Tensor& t, const Shape& expected, const char* what);
void check_contiguous(const Tensor& t, const char* what);
void check_last_dim_contiguous(const Tensor& t, const char* what);
void check_writable(const Tensor& t, const char* what);

}  // namespace showo2
