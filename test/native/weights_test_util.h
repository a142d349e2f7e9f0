// Helpers shared by the weights_*_test.cpp files: fixture paths, the expected.json written by
// tools/fixtures/make_weight_fixtures.py, comparisons of a WeightFile against it, and scratch files.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "test_util.h"
#include "weights/json.h"
#include "weights/mapped_file.h"
#include "weights/weight_file.h"

namespace showo2::test {

inline std::string weights_fixture(const std::string& rel) {
  return std::string(SHOWO2_FIXTURES_DIR) + "/weights/" + rel;
}

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail_at(__FILE__, __LINE__, "cannot read " + path);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

inline void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!f) fail_at(__FILE__, __LINE__, "cannot write " + path);
}

// A fresh scratch folder per test process; removed at exit unless SHOWO2_KEEP_TEST_FILES is set (to inspect files,
// e.g. with make_weight_fixtures.py --verify-converted).
inline std::string scratch_dir() {
  struct Dir {
    std::filesystem::path path;
    Dir() {
      path = std::filesystem::temp_directory_path() /
             ("showo2_weights_test_" + std::to_string(std::random_device{}()));
      std::filesystem::remove_all(path);
      std::filesystem::create_directories(path);
    }
    ~Dir() {
      std::error_code ec;
      if (std::getenv("SHOWO2_KEEP_TEST_FILES")) std::printf("kept test files in %s\n", path.string().c_str());
      else std::filesystem::remove_all(path, ec);
    }
  };
  static Dir dir;
  return dir.path.string();
}

// Iterations for the random-mutation tests: the default, or SHOWO2_FUZZ_ITERATIONS for a longer soak (e.g. under
// -DSHOWO2_SANITIZE=ON).
inline int fuzz_iterations(int default_count) {
  const char* env = std::getenv("SHOWO2_FUZZ_ITERATIONS");
  return env && std::atoi(env) > 0 ? std::atoi(env) : default_count;
}

inline const weights::JsonValue& expected_json() {
  static const weights::JsonValue doc = [] {
    std::string path = weights_fixture("expected.json");
    auto file = weights::MappedFile::open(path);
    return weights::parse_json(std::string_view(reinterpret_cast<const char*>(file->data()), file->size()), path);
  }();
  return doc;
}

inline const weights::JsonValue& expected_for(const std::string& fixture) {
  const weights::JsonValue* e = expected_json().find(fixture);
  if (!e) fail_at(__FILE__, __LINE__, "expected.json has no entry for " + fixture);
  return *e;
}

// Values of any dtype as doubles, in logical row-major order (bool and integers exactly).
inline std::vector<double> tensor_values(const Tensor& t) {
  std::vector<double> out;
  if (is_float_dtype(t.dtype())) {
    for (float v : t.to_f32_vector()) out.push_back(v);
    return out;
  }
  Tensor c = t.contiguous();
  const uint8_t* p = static_cast<const uint8_t*>(c.raw());
  for (int64_t i = 0; i < c.numel(); ++i) {
    switch (c.dtype()) {
      case DType::F64: { double v; std::memcpy(&v, p + i * 8, 8); out.push_back(v); break; }
      case DType::I64: { int64_t v; std::memcpy(&v, p + i * 8, 8); out.push_back(static_cast<double>(v)); break; }
      case DType::I32: { int32_t v; std::memcpy(&v, p + i * 4, 4); out.push_back(v); break; }
      case DType::I16: { int16_t v; std::memcpy(&v, p + i * 2, 2); out.push_back(v); break; }
      case DType::I8: out.push_back(static_cast<int8_t>(p[i])); break;
      case DType::U8: case DType::Bool: out.push_back(p[i]); break;
      default: fail_at(__FILE__, __LINE__, "unexpected dtype");
    }
  }
  return out;
}

// Every tensor of `wf` matches expected.json[fixture] exactly (names, dtypes, shapes, values); metadata too.
inline void check_matches_expected(const weights::WeightFile& wf, const std::string& fixture) {
  const weights::JsonValue& exp = expected_for(fixture);
  const auto& tensors = exp.find("tensors")->members();
  if (wf.tensors().size() != tensors.size())
    fail_at(__FILE__, __LINE__, fixture + ": " + std::to_string(wf.tensors().size()) + " tensors, expected " +
                                    std::to_string(tensors.size()));
  for (const auto& [name, info] : tensors) {
    if (!wf.contains(name)) fail_at(__FILE__, __LINE__, fixture + ": missing tensor " + name);
    const weights::TensorRecord& rec = wf.record(name);
    Tensor t = wf.load(name);
    std::string what = fixture + ": " + name;
    if (std::string(dtype_name(rec.dtype)) != info.find("dtype")->as_string() || t.dtype() != rec.dtype)
      fail_at(__FILE__, __LINE__, what + ": dtype " + dtype_name(rec.dtype));
    Shape shape;
    for (const auto& d : info.find("shape")->items()) shape.push_back(d.as_int());
    if (rec.shape != shape || t.shape() != shape)
      fail_at(__FILE__, __LINE__, what + ": shape " + shape_to_string(t.shape()) + " vs " + shape_to_string(shape));
    std::vector<double> got = tensor_values(t);
    const auto& want = info.find("values")->items();
    if (got.size() != want.size()) fail_at(__FILE__, __LINE__, what + ": wrong number of values");
    for (size_t i = 0; i < got.size(); ++i)
      if (got[i] != want[i].as_double())
        fail_at(__FILE__, __LINE__, what + ": value [" + std::to_string(i) + "] = " + std::to_string(got[i]) +
                                        ", expected " + std::to_string(want[i].as_double()));
  }
  for (const auto& [key, value] : exp.find("metadata")->members()) {
    auto it = wf.metadata().find(key);
    if (it == wf.metadata().end() || it->second != value.as_string())
      fail_at(__FILE__, __LINE__, fixture + ": metadata '" + key + "' missing or different");
  }
}

// Expects `expr` to throw showo2::Error with `code` and a message containing every string in `parts`.
#define CHECK_THROWS_MESSAGE(expr, CODE, ...)                                                                       \
  do {                                                                                                             \
    std::string message_;                                                                                          \
    try {                                                                                                          \
      (void)(expr);                                                                                                \
    } catch (const ::showo2::Error& e_) {                                                                          \
      if (e_.code() != ::showo2::ErrorCode::CODE)                                                                  \
        ::showo2::test::fail_at(__FILE__, __LINE__,                                                                \
                                std::string("expected " #CODE " but got ") + e_.code_str() + ": " + e_.what());    \
      message_ = e_.what();                                                                                        \
      std::printf("    (expected error) %s: %s\n", e_.code_str(), e_.what());                                      \
    }                                                                                                              \
    if (message_.empty()) ::showo2::test::fail_at(__FILE__, __LINE__, "expected " #expr " to throw " #CODE);       \
    for (const std::string& part_ : std::vector<std::string>{__VA_ARGS__})                                         \
      if (message_.find(part_) == std::string::npos)                                                               \
        ::showo2::test::fail_at(__FILE__, __LINE__, "message lacks \"" + part_ + "\": " + message_);               \
  } while (0)

// Fuzz-loop step: writes `bytes` to `path`, opens it and reads every tensor. Returns true when it loaded and false
// when it was rejected with showo2::Error; anything else (another exception, a crash, a sanitizer report) fails the run.
inline bool loads_or_is_rejected(const std::string& path, const std::vector<uint8_t>& bytes) {
  write_bytes(path, bytes);
  try {
    auto wf = weights::open_weight_file(path);
    for (const weights::TensorRecord& r : wf->tensors()) (void)tensor_values(wf->load(r.name));
    return true;
  } catch (const Error&) {
    return false;
  }
}

}  // namespace showo2::test
