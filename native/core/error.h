// showo2 core errors.
//
// Every failure inside the core is a showo2::Error carrying a stable machine-readable code. The N-API layer turns it
// into a JS Error with the same `code`, so callers can branch on codes without parsing messages. Never abort or exit:
// this library lives inside someone else's server.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace showo2 {

// Stable error codes. The string form (code_name) is public API: add codes, never rename them.
enum class ErrorCode {
  InvalidArgument,   // ERR_INVALID_ARGUMENT: a caller passed a value outside the documented domain
  ShapeMismatch,     // ERR_SHAPE_MISMATCH: tensor shapes/strides do not fit the operation
  UnsupportedDtype,  // ERR_UNSUPPORTED_DTYPE: a dtype the operation or format does not handle
  FileNotFound,      // ERR_FILE_NOT_FOUND
  FileRead,          // ERR_FILE_READ: an OS-level read/map/write failure
  CorruptFile,       // ERR_CORRUPT_FILE: a header, offset, size or structure that contradicts the file
  UnsafePickle,      // ERR_UNSAFE_PICKLE: a pickle asks for something a state dict never needs
  UnsupportedFormat, // ERR_UNSUPPORTED_FORMAT: a file we recognise but do not read (e.g. legacy torch format)
  TensorNotFound,    // ERR_TENSOR_NOT_FOUND
  OutOfMemory,       // ERR_OUT_OF_MEMORY
  Cuda,              // ERR_CUDA: a CUDA runtime/driver failure (message carries file:line)
  Cancelled,         // ERR_CANCELLED
  Internal,          // ERR_INTERNAL: a broken invariant inside showo2 (a bug: please report)
};

inline const char* code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::InvalidArgument: return "ERR_INVALID_ARGUMENT";
    case ErrorCode::ShapeMismatch: return "ERR_SHAPE_MISMATCH";
    case ErrorCode::UnsupportedDtype: return "ERR_UNSUPPORTED_DTYPE";
    case ErrorCode::FileNotFound: return "ERR_FILE_NOT_FOUND";
    case ErrorCode::FileRead: return "ERR_FILE_READ";
    case ErrorCode::CorruptFile: return "ERR_CORRUPT_FILE";
    case ErrorCode::UnsafePickle: return "ERR_UNSAFE_PICKLE";
    case ErrorCode::UnsupportedFormat: return "ERR_UNSUPPORTED_FORMAT";
    case ErrorCode::TensorNotFound: return "ERR_TENSOR_NOT_FOUND";
    case ErrorCode::OutOfMemory: return "ERR_OUT_OF_MEMORY";
    case ErrorCode::Cuda: return "ERR_CUDA";
    case ErrorCode::Cancelled: return "ERR_CANCELLED";
    case ErrorCode::Internal: return "ERR_INTERNAL";
  }
  return "ERR_INTERNAL";
}

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }
  const char* code_str() const { return code_name(code_); }

 private:
  ErrorCode code_;
};

namespace detail {
inline void append_all(std::ostringstream&) {}
template <typename T, typename... Rest>
void append_all(std::ostringstream& os, const T& first, const Rest&... rest) {
  os << first;
  append_all(os, rest...);
}
}  // namespace detail

// Builds a message from the pieces (streamed) and throws showo2::Error.
template <typename... Parts>
[[noreturn]] void fail(ErrorCode code, const Parts&... parts) {
  std::ostringstream os;
  detail::append_all(os, parts...);
  throw Error(code, os.str());
}

}  // namespace showo2

// Argument check: throws ERR_INVALID_ARGUMENT (or the given code) with the streamed message when cond is false.
#define SHOWO2_CHECK(cond, code, ...)                          \
  do {                                                         \
    if (!(cond)) ::showo2::fail(::showo2::ErrorCode::code, __VA_ARGS__); \
  } while (0)
