// A small test harness for the C++ core tests (no external framework, so the core tests build anywhere CMake does).
//
//   SHOWO2_TEST(name) { ... }          registers a test case
//   CHECK(cond) / CHECK_EQ(a, b)       fail the case with file:line and the values
//   CHECK_THROWS_CODE(expr, Code)      expr must throw showo2::Error with ErrorCode::Code; prints the message
//   expect_close(out, ref, n, atol, rtol, what)
//       llm.c-style comparison |out - ref| <= atol + rtol * |ref| for every element; on failure prints the max
//       absolute and relative error and the first few mismatches, so a failure explains itself. NaN never passes.
//
// Each test executable's main() (SHOWO2_TEST_MAIN) runs every case, catching exceptions per case, and ends with the
// line "N passed, M failed" (", K skipped"). A case may call skip_test("reason") to be reported as skipped.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "error.h"

namespace showo2::test {

struct TestCase {
  const char* name;
  std::function<void()> fn;
};

inline std::vector<TestCase>& registry() {
  static std::vector<TestCase> cases;
  return cases;
}

struct Registrar {
  Registrar(const char* name, std::function<void()> fn) { registry().push_back({name, std::move(fn)}); }
};

struct Failure {
  std::string message;
};
struct Skipped {
  std::string reason;
};

[[noreturn]] inline void skip_test(const std::string& reason) { throw Skipped{reason}; }

inline int run_all(int argc, char** argv) {
  int passed = 0, failed = 0, skipped = 0;
  const char* filter = argc > 1 ? argv[1] : nullptr;
  for (const auto& tc : registry()) {
    if (filter && std::string(tc.name).find(filter) == std::string::npos) continue;
    try {
      tc.fn();
      ++passed;
      std::printf("[ pass ] %s\n", tc.name);
    } catch (const Skipped& s) {
      ++skipped;
      std::printf("[ skip ] %s: %s\n", tc.name, s.reason.c_str());
    } catch (const Failure& f) {
      ++failed;
      std::printf("[ FAIL ] %s\n%s\n", tc.name, f.message.c_str());
    } catch (const showo2::Error& e) {
      ++failed;
      std::printf("[ FAIL ] %s: unexpected showo2::Error %s: %s\n", tc.name, e.code_str(), e.what());
    } catch (const std::exception& e) {
      ++failed;
      std::printf("[ FAIL ] %s: unexpected exception: %s\n", tc.name, e.what());
    }
    std::fflush(stdout);
  }
  std::printf("%d passed, %d failed", passed, failed);
  if (skipped) std::printf(", %d skipped", skipped);
  std::printf("\n");
  return failed == 0 ? 0 : 1;
}

// Prints a value for a failure message: streamable types as themselves, vectors element-wise, others as "?".
template <typename T, typename = void>
struct is_streamable : std::false_type {};
template <typename T>
struct is_streamable<T, std::void_t<decltype(std::declval<std::ostream&>() << std::declval<const T&>())>>
    : std::true_type {};

template <typename T>
void print_value(std::ostream& os, const T& v) {
  if constexpr (is_streamable<T>::value) {
    if constexpr (std::is_same_v<T, uint8_t> || std::is_same_v<T, int8_t>) os << static_cast<int>(v);
    else os << v;
  } else {
    os << "?";
  }
}
template <typename T>
void print_value(std::ostream& os, const std::vector<T>& v) {
  os << "[";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) os << ", ";
    print_value(os, v[i]);
  }
  os << "]";
}

template <typename A, typename B>
std::string describe_pair(const A& a, const B& b) {
  std::ostringstream os;
  print_value(os, a);
  os << " vs ";
  print_value(os, b);
  return os.str();
}

[[noreturn]] inline void fail_at(const char* file, int line, const std::string& msg) {
  std::ostringstream os;
  os << "  " << file << ":" << line << ": " << msg;
  throw Failure{os.str()};
}

// Returns true when every element satisfies |out - ref| <= atol + rtol * |ref|; prints a report otherwise.
inline bool all_close(const float* out, const float* ref, size_t n, double atol, double rtol, const std::string& what,
                      std::string* report) {
  double max_abs = 0, max_rel = 0;
  size_t bad = 0;
  std::ostringstream first;
  for (size_t i = 0; i < n; ++i) {
    double o = out[i], r = ref[i];
    double err = std::fabs(o - r);
    bool ok = std::isfinite(o) == std::isfinite(r) && (err <= atol + rtol * std::fabs(r) || o == r);
    if (std::isnan(o) || std::isnan(r)) ok = false;
    if (std::isfinite(err)) {
      max_abs = std::max(max_abs, err);
      if (std::fabs(r) > 0) max_rel = std::max(max_rel, err / std::fabs(r));
    }
    if (!ok) {
      if (bad < 5) first << "    [" << i << "] out=" << o << " ref=" << r << " |err|=" << err << "\n";
      ++bad;
    }
  }
  if (bad == 0) return true;
  std::ostringstream os;
  os << what << ": " << bad << "/" << n << " elements outside atol=" << atol << " rtol=" << rtol
     << " (max abs err " << max_abs << ", max rel err " << max_rel << ")\n"
     << first.str();
  *report = os.str();
  return false;
}

// Deterministic random numbers for tests (fixed seed per call site keeps failures reproducible).
inline std::vector<float> random_vector(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

inline std::vector<float> random_normal(size_t n, uint32_t seed, float stddev = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

}  // namespace showo2::test

#define SHOWO2_TEST_CONCAT2(a, b) a##b
#define SHOWO2_TEST_CONCAT(a, b) SHOWO2_TEST_CONCAT2(a, b)
#define SHOWO2_TEST(name)                                                                          \
  static void name();                                                                              \
  static ::showo2::test::Registrar SHOWO2_TEST_CONCAT(registrar_, name)(#name, name);              \
  static void name()

#define SHOWO2_TEST_MAIN() \
  int main(int argc, char** argv) { return ::showo2::test::run_all(argc, argv); }

#define CHECK(cond)                                                           \
  do {                                                                        \
    if (!(cond)) ::showo2::test::fail_at(__FILE__, __LINE__, "CHECK(" #cond ") failed"); \
  } while (0)

#define CHECK_EQ(a, b)                                                                                     \
  do {                                                                                                     \
    const auto va_ = (a);                                                                                      \
    const auto vb_ = (b);                                                                                      \
    if (!(va_ == vb_))                                                                                     \
      ::showo2::test::fail_at(__FILE__, __LINE__,                                                          \
                              "CHECK_EQ(" #a ", " #b ") failed: " + ::showo2::test::describe_pair(va_, vb_)); \
  } while (0)

#define CHECK_THROWS_CODE(expr, CODE)                                                                              \
  do {                                                                                                             \
    bool threw_ = false;                                                                                           \
    try {                                                                                                          \
      (void)(expr);                                                                                                \
    } catch (const ::showo2::Error& e_) {                                                                          \
      threw_ = true;                                                                                               \
      if (e_.code() != ::showo2::ErrorCode::CODE)                                                                  \
        ::showo2::test::fail_at(__FILE__, __LINE__,                                                                \
                                std::string("expected ERR code " #CODE " but got ") + e_.code_str() + ": " + e_.what()); \
      std::printf("    (expected error) %s: %s\n", e_.code_str(), e_.what());                                      \
    }                                                                                                              \
    if (!threw_) ::showo2::test::fail_at(__FILE__, __LINE__, "expected " #expr " to throw " #CODE);                \
  } while (0)

#define EXPECT_CLOSE(out, ref, n, atol, rtol, what)                                                   \
  do {                                                                                               \
    std::string report_;                                                                             \
    if (!::showo2::test::all_close((out), (ref), (n), (atol), (rtol), (what), &report_))             \
      ::showo2::test::fail_at(__FILE__, __LINE__, report_);                                          \
  } while (0)
