// The tiny Wan VAE fixtures of the PyTorch reference (test/fixtures/vae/, made by tools/fixtures/make_vae_fixtures.py)
// and the error measures the VAE tests report, shared by wan_vae_test, wan_vae_tiling_test and wan_vae_cuda_test.
#pragma once

#include <algorithm>
#include <cmath>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "tensor.h"
#include "test_util.h"
#include "wan_vae.h"
#include "weights/weight_file.h"

namespace showo2::test {

namespace vae {

inline std::string fixture(const std::string& name) { return std::string(SHOWO2_FIXTURES_DIR) + "/vae/" + name; }

inline bool fixtures_present() {
  for (const char* f : {"tiny_vae.pth", "tiny_vae_config.json", "tiny_vae_io.safetensors"})
    if (!std::ifstream(fixture(f)).good()) return false;
  return true;
}

// Skips the calling test (with the reason) when the fixtures are not there.
inline void require_fixtures() {
  if (!fixtures_present()) skip_test("test/fixtures/vae/ not present (tools/fixtures/make_vae_fixtures.py)");
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

// The tiny VAE's config (dim 4, the published key layout).
inline WanVaeConfig tiny_config() {
  return WanVaeConfig::from_json(read_text(fixture("tiny_vae_config.json")), "tiny_vae_config.json");
}

// The tiny VAE's weights (bf16, the published .pth layout) and the reference's inputs and outputs.
struct Fixtures {
  std::unique_ptr<weights::WeightFile> weights = weights::open_weight_file(fixture("tiny_vae.pth"));
  std::unique_ptr<weights::WeightFile> io = weights::open_weight_file(fixture("tiny_vae_io.safetensors"));
  Tensor get(const std::string& name) const { return io->load(name).contiguous(); }
};

}  // namespace vae

// ||o - r|| / ||r|| in double.
inline double relative_l2(const std::vector<float>& o, const std::vector<float>& r) {
  double num = 0, den = 0;
  for (size_t i = 0; i < r.size(); ++i) {
    num += (static_cast<double>(o[i]) - r[i]) * (static_cast<double>(o[i]) - r[i]);
    den += static_cast<double>(r[i]) * r[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

inline double max_abs_diff(const std::vector<float>& o, const std::vector<float>& r) {
  double m = 0;
  for (size_t i = 0; i < r.size(); ++i) m = std::max(m, std::fabs(static_cast<double>(o[i]) - r[i]));
  return m;
}

}  // namespace showo2::test
