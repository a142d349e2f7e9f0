// Helpers shared by the libFuzzer harnesses in test/fuzz/ (one per parser; tools/fuzz.sh builds and runs them).
//
// The contract every harness checks: any input ends in success or a showo2::Error with one of the codes that parser
// documents. Everything else is a finding and crashes the run so libFuzzer saves the input:
//   * another exception type escapes LLVMFuzzerTestOneInput (std::terminate);
//   * a showo2::Error with a code the parser never promises (e.g. ERR_SHAPE_MISMATCH from a tensor view after the
//     file was "validated", or ERR_INTERNAL) aborts in expect_code();
//   * an invariant of a successful parse does not hold: FUZZ_CHECK aborts naming it;
//   * ASan/UBSan reports, leaks, timeouts (-timeout) and memory blow-ups (-rss_limit_mb, -malloc_limit_mb).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <string>
#include <vector>

#include "error.h"
#include "tensor.h"

namespace showo2::fuzz {

[[noreturn]] inline void invariant_failed(const char* file, int line, const char* what) {
  std::fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", file, line, what);
  std::fflush(stderr);
  std::abort();
}

#define FUZZ_CHECK(cond) \
  do {                   \
    if (!(cond)) ::showo2::fuzz::invariant_failed(__FILE__, __LINE__, #cond); \
  } while (0)

// Aborts unless `e` carries one of `allowed`: a parser that fails with a code it does not document is a bug even
// when the failure itself is clean.
inline void expect_code(const Error& e, std::initializer_list<ErrorCode> allowed) {
  for (ErrorCode code : allowed)
    if (e.code() == code) return;
  std::fprintf(stderr, "unexpected error code %s: %s\n", e.code_str(), e.what());
  std::fflush(stderr);
  std::abort();
}

// Reads every byte of [p, p + n) so that ASan checks the whole range (the compiler may not drop volatile loads).
inline void touch(const void* p, size_t n) {
  const volatile uint8_t* bytes = static_cast<const volatile uint8_t*>(p);
  uint8_t sink = 0;
  for (size_t i = 0; i < n; ++i) sink ^= bytes[i];
  (void)sink;
}

// The byte range a host tensor addresses: element [0,...,0] through its last element (strides may be zero or
// arbitrary, so this is not numel * element size). Zero bytes for an empty tensor.
inline void addressed_bytes(const Tensor& t, const uint8_t** begin, size_t* length) {
  *begin = static_cast<const uint8_t*>(t.raw());
  *length = 0;
  if (t.numel() == 0) return;
  uint64_t last = 0;
  for (int64_t d = 0; d < t.dim(); ++d)
    last += static_cast<uint64_t>(t.size(d) - 1) * static_cast<uint64_t>(t.stride(d));
  *length = static_cast<size_t>((last + 1) * dtype_size(t.dtype()));
}

// Touches the first and the last element a tensor addresses (all of its bytes when small): a view that reaches past
// its storage is an ASan report here.
inline void touch_tensor(const Tensor& t) {
  const uint8_t* begin;
  size_t length;
  addressed_bytes(t, &begin, &length);
  if (length == 0) return;
  const size_t esize = dtype_size(t.dtype());
  if (length <= 4096) {
    touch(begin, length);
  } else {
    touch(begin, esize);
    touch(begin + length - esize, esize);
  }
}

// A fixture file read once at start-up (harnesses that need real companions, e.g. the shards of an index).
inline std::vector<uint8_t> read_fixture(const std::string& relative) {
  const std::string path = std::string(SHOWO2_FIXTURES_DIR) + "/" + relative;
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    std::fprintf(stderr, "fuzz harness: cannot read the fixture %s\n", path.c_str());
    std::abort();
  }
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

}  // namespace showo2::fuzz
