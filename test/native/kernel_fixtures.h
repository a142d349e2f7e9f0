// Reads the PyTorch golden fixtures under test/fixtures/kernels/ (written by tools/fixtures/make_kernel_fixtures.py;
// manifest.json there lists every tensor's shape and origin). Each is a raw little-endian float32 file <name>.f32.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "test_util.h"

namespace showo2::test {

// The fixture's values; fails the test (not skips it) when the file is missing or not `count` floats, since the
// fixtures are committed and a missing one is a packaging bug.
inline std::vector<float> read_kernel_fixture(const std::string& name, size_t count) {
  const std::string path = std::string(SHOWO2_FIXTURES_DIR) + "/kernels/" + name + ".f32";
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail_at(__FILE__, __LINE__, "cannot open fixture " + path);
  std::vector<float> values(count + 1);
  size_t got = std::fread(values.data(), sizeof(float), count + 1, f);
  std::fclose(f);
  if (got != count)
    fail_at(__FILE__, __LINE__,
            "fixture " + path + " holds " + std::to_string(got) + " floats, expected " + std::to_string(count));
  values.resize(count);
  return values;
}

}  // namespace showo2::test
