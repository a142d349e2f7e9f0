#include "tensor.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <sstream>

namespace showo2 {

// ---- Storage --------------------------------------------------------------------------------------------------------

namespace {

// Fault injection for tests (test/unit/faults.test.ts): SHOWO2_TEST_ALLOC_LIMIT=N makes every host allocation of more
// than N bytes fail exactly as a real out-of-memory does, so the ERR_OUT_OF_MEMORY path can be exercised without
// exhausting the machine. Read once; unset (the normal case) means no limit.
size_t test_alloc_limit() {
  static const size_t limit = [] {
    const char* value = std::getenv("SHOWO2_TEST_ALLOC_LIMIT");
    if (value == nullptr || *value == '\0') return SIZE_MAX;
    char* end = nullptr;
    const unsigned long long n = std::strtoull(value, &end, 10);
    return (end != nullptr && *end == '\0') ? static_cast<size_t>(n) : SIZE_MAX;
  }();
  return limit;
}

}  // namespace

std::shared_ptr<Storage> Storage::allocate(size_t nbytes) {
  if (nbytes > test_alloc_limit())
    fail(ErrorCode::OutOfMemory, "could not allocate ", nbytes, " bytes of host memory (SHOWO2_TEST_ALLOC_LIMIT is ",
         test_alloc_limit(), ")");
  std::shared_ptr<Storage> s(new Storage());
  // 64-byte alignment keeps SIMD loads and cache lines aligned; round up because aligned_alloc requires a multiple.
  size_t padded = (nbytes + 63) / 64 * 64;
  if (padded == 0) padded = 64;
  void* p = std::aligned_alloc(64, padded);
  if (!p) fail(ErrorCode::OutOfMemory, "could not allocate ", nbytes, " bytes of host memory");
  s->data_ = static_cast<uint8_t*>(p);
  s->nbytes_ = nbytes;
  s->owned_ = true;
  return s;
}

std::shared_ptr<Storage> Storage::borrow(const void* data, size_t nbytes, std::shared_ptr<const void> keepalive) {
  std::shared_ptr<Storage> s(new Storage());
  s->data_ = static_cast<uint8_t*>(const_cast<void*>(data));
  s->nbytes_ = nbytes;
  s->read_only_ = true;
  s->keepalive_ = std::move(keepalive);
  return s;
}

std::shared_ptr<Storage> Storage::wrap_device(Device device, void* data, size_t nbytes,
                                              std::function<void(void*)> release) {
  std::shared_ptr<Storage> s(new Storage());
  s->data_ = static_cast<uint8_t*>(data);
  s->nbytes_ = nbytes;
  s->device_ = device;
  s->release_ = std::move(release);
  return s;
}

Storage::~Storage() {
  if (owned_) std::free(data_);
  if (release_) release_(data_);
}

namespace {
[[noreturn]] void fail_host_access(Device device) {
  fail(ErrorCode::InvalidArgument, "host access to a tensor that lives in ", device_name(device),
       " memory; copy it to the host first (Backend::to_host)");
}
}  // namespace

const uint8_t* Storage::data() const {
  if (device_ != Device::Cpu) fail_host_access(device_);
  return data_;
}

uint8_t* Storage::mutable_data() {
  if (device_ != Device::Cpu) fail_host_access(device_);
  if (read_only_) fail(ErrorCode::InvalidArgument, "tensor memory is read-only (it is mapped from a weight file)");
  return data_;
}

const char* device_name(Device device) {
  switch (device) {
    case Device::Cpu: return "cpu";
    case Device::Cuda: return "cuda";
  }
  return "unknown";
}

// ---- shape helpers --------------------------------------------------------------------------------------------------

std::string shape_to_string(const Shape& shape) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  os << "]";
  return os.str();
}

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  int64_t s = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

Shape channels_last_to_memory_order(int64_t dim) {
  if (dim < 3) fail(ErrorCode::ShapeMismatch, "channels-last layout needs at least 3 dims [N, C, S...] but got ", dim);
  Shape dims = {0};
  for (int64_t d = 2; d < dim; ++d) dims.push_back(d);
  dims.push_back(1);
  return dims;  // [0, 2, ..., dim-1, 1]
}

Shape memory_order_to_channels_last(int64_t dim) {
  if (dim < 3) fail(ErrorCode::ShapeMismatch, "channels-last layout needs at least 3 dims [N, C, S...] but got ", dim);
  Shape dims = {0, dim - 1};
  for (int64_t d = 1; d < dim - 1; ++d) dims.push_back(d);
  return dims;  // [0, dim-1, 1, ..., dim-2]
}

Shape channels_last_strides(const Shape& shape) {
  const Shape to_memory = channels_last_to_memory_order(static_cast<int64_t>(shape.size()));
  Shape memory_shape;
  for (int64_t d : to_memory) memory_shape.push_back(shape[static_cast<size_t>(d)]);
  const Shape memory_strides = contiguous_strides(memory_shape);
  Shape strides(shape.size());
  for (size_t i = 0; i < to_memory.size(); ++i) strides[static_cast<size_t>(to_memory[i])] = memory_strides[i];
  return strides;
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) fail(ErrorCode::ShapeMismatch, "negative dimension in shape ", shape_to_string(shape));
    if (d != 0 && n > INT64_MAX / d) fail(ErrorCode::ShapeMismatch, "shape ", shape_to_string(shape), " overflows");
    n *= d;
  }
  return n;
}

// ---- Tensor ---------------------------------------------------------------------------------------------------------

Tensor Tensor::empty(const Shape& shape, DType dtype) {
  int64_t n = shape_numel(shape);
  Tensor t;
  t.storage_ = Storage::allocate(static_cast<size_t>(n) * dtype_size(dtype));
  t.dtype_ = dtype;
  t.shape_ = shape;
  t.strides_ = contiguous_strides(shape);
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype) {
  Tensor t = empty(shape, dtype);
  std::memset(t.mutable_raw(), 0, t.nbytes());
  return t;
}

Tensor Tensor::from_f32(const Shape& shape, const std::vector<float>& values) {
  Tensor t = empty(shape, DType::F32);
  if (static_cast<int64_t>(values.size()) != t.numel())
    fail(ErrorCode::ShapeMismatch, "from_f32: ", values.size(), " values for shape ", shape_to_string(shape));
  std::memcpy(t.mutable_raw(), values.data(), values.size() * sizeof(float));
  return t;
}

Tensor Tensor::view_of(std::shared_ptr<Storage> storage, DType dtype, const Shape& shape, const Shape& strides,
                       size_t byte_offset) {
  if (!storage) fail(ErrorCode::InvalidArgument, "view_of: null storage");
  if (shape.size() != strides.size())
    fail(ErrorCode::ShapeMismatch, "view_of: shape ", shape_to_string(shape), " and strides ",
         shape_to_string(strides), " differ in rank");
  int64_t n = shape_numel(shape);
  size_t esize = dtype_size(dtype);
  if (byte_offset % esize != 0) fail(ErrorCode::InvalidArgument, "view_of: byte offset not aligned to the element");
  if (n > 0) {
    // Highest addressed element, computed with overflow checks so a hostile header cannot wrap around.
    uint64_t max_index = 0;
    for (size_t i = 0; i < shape.size(); ++i) {
      if (strides[i] < 0) fail(ErrorCode::ShapeMismatch, "view_of: negative stride");
      uint64_t span = static_cast<uint64_t>(shape[i] - 1);
      uint64_t st = static_cast<uint64_t>(strides[i]);
      if (st != 0 && span > (UINT64_MAX - max_index) / st) fail(ErrorCode::ShapeMismatch, "view_of: extent overflows");
      max_index += span * st;
    }
    uint64_t end_byte;
    if (max_index >= UINT64_MAX / esize - 1 ||
        __builtin_add_overflow(static_cast<uint64_t>(byte_offset), (max_index + 1) * esize, &end_byte) ||
        end_byte > storage->nbytes())
      fail(ErrorCode::ShapeMismatch, "view_of: ", shape_to_string(shape), " ", dtype_name(dtype), " at byte ",
           byte_offset, " does not fit in a storage of ", storage->nbytes(), " bytes");
  }
  Tensor t;
  t.storage_ = std::move(storage);
  t.dtype_ = dtype;
  t.shape_ = shape;
  t.strides_ = strides;
  t.byte_offset_ = byte_offset;
  return t;
}

int64_t Tensor::size(int64_t d) const {
  if (d < 0) d += dim();
  if (d < 0 || d >= dim()) fail(ErrorCode::InvalidArgument, "dimension ", d, " out of range for ", shape_string());
  return shape_[static_cast<size_t>(d)];
}

int64_t Tensor::stride(int64_t d) const {
  if (d < 0) d += dim();
  if (d < 0 || d >= dim()) fail(ErrorCode::InvalidArgument, "dimension ", d, " out of range for ", shape_string());
  return strides_[static_cast<size_t>(d)];
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape_) n *= d;
  return n;
}

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (size_t i = shape_.size(); i-- > 0;) {
    if (shape_[i] != 1 && strides_[i] != expected) return false;
    expected *= shape_[i];
  }
  return true;
}

const void* Tensor::raw() const {
  if (!storage_) fail(ErrorCode::InvalidArgument, "use of an undefined tensor");
  return storage_->data() + byte_offset_;
}

void* Tensor::mutable_raw() {
  if (!storage_) fail(ErrorCode::InvalidArgument, "use of an undefined tensor");
  return storage_->mutable_data() + byte_offset_;
}

const void* Tensor::device_raw() const {
  if (!storage_) fail(ErrorCode::InvalidArgument, "use of an undefined tensor");
  return static_cast<const uint8_t*>(storage_->device_data()) + byte_offset_;
}

void* Tensor::mutable_device_raw() {
  if (!storage_) fail(ErrorCode::InvalidArgument, "use of an undefined tensor");
  if (storage_->read_only())
    fail(ErrorCode::InvalidArgument, "tensor memory is read-only (it is mapped from a weight file)");
  return static_cast<uint8_t*>(storage_->device_data()) + byte_offset_;
}

void Tensor::check_type_(size_t elem_size) const {
  if (dtype_size(dtype_) != elem_size)
    fail(ErrorCode::UnsupportedDtype, "tensor of dtype ", dtype_name(dtype_), " accessed as a ", elem_size,
         "-byte element type");
}

static int64_t normalize_dim(int64_t d, int64_t rank, const char* op) {
  if (d < 0) d += rank;
  if (d < 0 || d >= rank) fail(ErrorCode::InvalidArgument, op, ": dimension out of range");
  return d;
}

Tensor Tensor::reshape(const Shape& new_shape) const {
  if (!is_contiguous()) fail(ErrorCode::ShapeMismatch, "reshape of a non-contiguous tensor ", shape_string());
  Shape s = new_shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      if (infer >= 0) fail(ErrorCode::ShapeMismatch, "reshape: more than one -1 in ", shape_to_string(new_shape));
      infer = static_cast<int64_t>(i);
    } else {
      known *= s[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || numel() % known != 0)
      fail(ErrorCode::ShapeMismatch, "reshape: cannot view ", shape_string(), " as ", shape_to_string(new_shape));
    s[static_cast<size_t>(infer)] = numel() / known;
  }
  if (shape_numel(s) != numel())
    fail(ErrorCode::ShapeMismatch, "reshape: cannot view ", shape_string(), " as ", shape_to_string(new_shape));
  Tensor t = *this;
  t.shape_ = s;
  t.strides_ = contiguous_strides(s);
  return t;
}

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end) const {
  d = normalize_dim(d, dim(), "slice");
  int64_t n = shape_[static_cast<size_t>(d)];
  if (start < 0 || end < start || end > n)
    fail(ErrorCode::InvalidArgument, "slice [", start, ", ", end, ") out of range for dimension ", d, " of ",
         shape_string());
  Tensor t = *this;
  t.byte_offset_ += static_cast<size_t>(start * strides_[static_cast<size_t>(d)]) * dtype_size(dtype_);
  t.shape_[static_cast<size_t>(d)] = end - start;
  return t;
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  d = normalize_dim(d, dim(), "select");
  Tensor t = slice(d, index, index + 1);
  t.shape_.erase(t.shape_.begin() + d);
  t.strides_.erase(t.strides_.begin() + d);
  return t;
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  d0 = normalize_dim(d0, dim(), "transpose");
  d1 = normalize_dim(d1, dim(), "transpose");
  Tensor t = *this;
  std::swap(t.shape_[static_cast<size_t>(d0)], t.shape_[static_cast<size_t>(d1)]);
  std::swap(t.strides_[static_cast<size_t>(d0)], t.strides_[static_cast<size_t>(d1)]);
  return t;
}

Tensor Tensor::unsqueeze(int64_t d) const {
  if (d < 0) d += dim() + 1;
  if (d < 0 || d > dim()) fail(ErrorCode::InvalidArgument, "unsqueeze: dimension out of range");
  Tensor t = *this;
  int64_t st = d < dim() ? strides_[static_cast<size_t>(d)] * shape_[static_cast<size_t>(d)] : 1;
  t.shape_.insert(t.shape_.begin() + d, 1);
  t.strides_.insert(t.strides_.begin() + d, st);
  return t;
}

Tensor Tensor::permute(const Shape& dims) const {
  if (static_cast<int64_t>(dims.size()) != dim())
    fail(ErrorCode::InvalidArgument, "permute: expected ", dim(), " dims but got ", shape_to_string(dims));
  std::vector<bool> seen(dims.size(), false);
  Tensor t = *this;
  for (size_t i = 0; i < dims.size(); ++i) {
    const int64_t d = dims[i];
    if (d < 0 || d >= dim() || seen[static_cast<size_t>(d)])
      fail(ErrorCode::InvalidArgument, "permute: ", shape_to_string(dims), " is not a permutation of 0..", dim() - 1);
    seen[static_cast<size_t>(d)] = true;
    t.shape_[i] = shape_[static_cast<size_t>(d)];
    t.strides_[i] = strides_[static_cast<size_t>(d)];
  }
  return t;
}

bool Tensor::is_channels_last() const {
  if (dim() < 3) return false;
  const Shape expected = channels_last_strides(shape_);
  for (size_t i = 0; i < shape_.size(); ++i)
    if (shape_[i] != 1 && strides_[i] != expected[i]) return false;
  return true;
}

Tensor Tensor::memory_order_view() const {
  if (!is_contiguous() && !is_channels_last())
    fail(ErrorCode::InvalidArgument, "memory_order_view: expected a contiguous or channels-last tensor but got shape ",
         shape_string(), " with strides ", shape_to_string(strides_));
  Tensor t = *this;
  t.shape_ = {numel()};
  t.strides_ = {1};
  return t;
}

// Visits every element offset (in elements, relative to raw()) in row-major logical order.
template <typename Fn>
static void for_each_offset(const Shape& shape, const Shape& strides, Fn&& fn) {
  int64_t n = shape_numel(shape);
  if (n == 0) return;
  std::vector<int64_t> idx(shape.size(), 0);
  int64_t off = 0;
  for (int64_t i = 0; i < n; ++i) {
    fn(off);
    for (size_t d = shape.size(); d-- > 0;) {
      if (++idx[d] < shape[d]) { off += strides[d]; break; }
      off -= strides[d] * (shape[d] - 1);
      idx[d] = 0;
    }
  }
}

static float load_as_f32(const uint8_t* base, DType dt, int64_t off) {
  switch (dt) {
    case DType::F32: { float v; std::memcpy(&v, base + off * 4, 4); return v; }
    case DType::BF16: { uint16_t v; std::memcpy(&v, base + off * 2, 2); return bf16_to_f32(v); }
    case DType::F16: { uint16_t v; std::memcpy(&v, base + off * 2, 2); return f16_to_f32(v); }
    default: fail(ErrorCode::UnsupportedDtype, "expected a float tensor, got ", dtype_name(dt));
  }
}

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  Tensor out = empty(shape_, dtype_);
  size_t es = dtype_size(dtype_);
  const uint8_t* src = static_cast<const uint8_t*>(raw());
  uint8_t* dst = static_cast<uint8_t*>(out.mutable_raw());
  for_each_offset(shape_, strides_, [&](int64_t off) {
    std::memcpy(dst, src + off * static_cast<int64_t>(es), es);
    dst += es;
  });
  return out;
}

std::vector<float> Tensor::to_f32_vector() const {
  check_float(*this, "to_f32_vector");
  std::vector<float> v;
  v.reserve(static_cast<size_t>(numel()));
  const uint8_t* src = static_cast<const uint8_t*>(raw());
  for_each_offset(shape_, strides_, [&](int64_t off) { v.push_back(load_as_f32(src, dtype_, off)); });
  return v;
}

Tensor Tensor::to(DType dtype) const {
  check_float(*this, "to");
  if (!is_float_dtype(dtype)) fail(ErrorCode::UnsupportedDtype, "to: target dtype ", dtype_name(dtype));
  std::vector<float> v = to_f32_vector();
  Tensor out = empty(shape_, dtype);
  uint8_t* dst = static_cast<uint8_t*>(out.mutable_raw());
  for (size_t i = 0; i < v.size(); ++i) {
    if (dtype == DType::F32) {
      std::memcpy(dst + i * 4, &v[i], 4);
    } else {
      uint16_t h = dtype == DType::BF16 ? f32_to_bf16(v[i]) : f32_to_f16(v[i]);
      std::memcpy(dst + i * 2, &h, 2);
    }
  }
  return out;
}

std::string Tensor::shape_string() const { return shape_to_string(shape_); }

// ---- checks ---------------------------------------------------------------------------------------------------------

void check_dtype(const Tensor& t, DType dtype, const char* what) {
  if (!t.defined()) fail(ErrorCode::InvalidArgument, what, ": tensor is undefined");
  if (t.dtype() != dtype)
    fail(ErrorCode::UnsupportedDtype, what, ": expected dtype ", dtype_name(dtype), " but got ", dtype_name(t.dtype()));
}

void check_float(const Tensor& t, const char* what) {
  if (!t.defined()) fail(ErrorCode::InvalidArgument, what, ": tensor is undefined");
  if (!is_float_dtype(t.dtype()))
    fail(ErrorCode::UnsupportedDtype, what, ": expected F32, BF16 or F16 but got ", dtype_name(t.dtype()));
}

void check_dim(const Tensor& t, int64_t dim, const char* what) {
  if (!t.defined()) fail(ErrorCode::InvalidArgument, what, ": tensor is undefined");
  if (t.dim() != dim)
    fail(ErrorCode::ShapeMismatch, what, ": expected a ", dim, "-D tensor but got shape ", t.shape_string());
}

void check_shape(const Tensor& t, const Shape& expected, const char* what) {
  if (!t.defined()) fail(ErrorCode::InvalidArgument, what, ": tensor is undefined");
  if (t.shape() != expected)
    fail(ErrorCode::ShapeMismatch, what, ": expected shape ", shape_to_string(expected), " but got ", t.shape_string());
}

void check_contiguous(const Tensor& t, const char* what) {
  if (!t.is_contiguous()) fail(ErrorCode::ShapeMismatch, what, ": expected a contiguous tensor");
}

void check_last_dim_contiguous(const Tensor& t, const char* what) {
  if (t.dim() > 0 && t.size(-1) > 1 && t.stride(-1) != 1)
    fail(ErrorCode::ShapeMismatch, what, ": the last dimension must be contiguous (stride 1)");
}

void check_writable(const Tensor& t, const char* what) {
  if (t.read_only()) fail(ErrorCode::InvalidArgument, what, ": output tensor is read-only");
}

void check_device(const Tensor& t, Device device, const char* what) {
  if (t.defined() && t.device() != device)
    fail(ErrorCode::InvalidArgument, what, ": expected a tensor in ", device_name(device), " memory but got one in ",
         device_name(t.device()), " memory");
}

}  // namespace showo2
