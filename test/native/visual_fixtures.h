// Shared helpers for the visual-path tests (siglip, patch_embed, grid_resize, position_embedding, fusion, time_embed)
// against test/fixtures/visual/, written by tools/fixtures/make_visual_fixtures.py from PyTorch / transformers.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "cpu/cpu_backend.h"
#include "config_json.h"
#include "tensor.h"
#include "test_util.h"
#include "weight_binder.h"
#include "weights/weight_file.h"

namespace showo2::test::visual {

inline std::string fixture(const std::string& name) { return std::string(SHOWO2_FIXTURES_DIR) + "/visual/" + name; }

inline void require_fixtures() {
  for (const char* f : {"visual_config.json", "visual_weights.safetensors", "siglip_head18.safetensors",
                        "visual_io.safetensors"})
    if (!std::ifstream(fixture(f)).good())
      skip_test("test/fixtures/visual/ not present (tools/fixtures/make_visual_fixtures.py)");
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

struct Fixtures {
  std::unique_ptr<weights::WeightFile> weights = weights::open_weight_file(fixture("visual_weights.safetensors"));
  std::unique_ptr<weights::WeightFile> head18 = weights::open_weight_file(fixture("siglip_head18.safetensors"));
  std::unique_ptr<weights::WeightFile> io = weights::open_weight_file(fixture("visual_io.safetensors"));
  weights::JsonValue config = parse_config_json(read_text(fixture("visual_config.json")), "visual_config.json");
  ConfigReader root{config, "visual_config.json"};

  Tensor get(const std::string& name) const { return io->load(name).contiguous(); }
  int64_t config_int(const char* field) const {
    int64_t v = -1;
    root.read(field, &v);
    return v;
  }
};

// Loads what `binder` bound from `file`; the fixture file holds the weights of several components, so every key
// outside `keep_prefix` is ignored (WeightBinder would report it as unexpected). The weights stay host tensors (the
// CPU backend's upload_weight is the identity).
inline void load_component(WeightBinder& binder, const weights::WeightFile& file, const std::string& keep_prefix,
                           const std::string& what) {
  for (const auto& r : file.tensors())
    if (r.name.compare(0, keep_prefix.size(), keep_prefix) != 0) binder.ignore_prefix(r.name);
  static cpu::CpuBackend host(1);
  binder.load_all(file, host, what, "the fixture's tiny config");
}

// Checks the shape and |out - ref| <= atol + rtol |ref| everywhere; prints the max errors either way.
inline void expect_matches(const Tensor& out, const Tensor& ref, double atol, double rtol, const std::string& what) {
  if (out.shape() != ref.shape())
    fail_at(__FILE__, __LINE__, what + ": shape " + out.shape_string() + " vs reference " + ref.shape_string());
  const std::vector<float> o = out.to_f32_vector(), r = ref.to_f32_vector();
  double max_abs = 0, max_rel = 0;
  for (size_t i = 0; i < r.size(); ++i) {
    const double err = std::fabs(static_cast<double>(o[i]) - r[i]);
    max_abs = std::max(max_abs, err);
    if (r[i] != 0) max_rel = std::max(max_rel, err / std::fabs(static_cast<double>(r[i])));
  }
  std::printf("    %s: max abs err %.3g, max rel err %.3g (atol %.0e, rtol %.0e)\n", what.c_str(), max_abs, max_rel,
              atol, rtol);
  std::string report;
  if (!all_close(o.data(), r.data(), r.size(), atol, rtol, what, &report)) fail_at(__FILE__, __LINE__, report);
}

// Max |out - ref| (for the perturbation tests, which expect it to exceed a tolerance).
inline double max_abs_error(const Tensor& out, const Tensor& ref) {
  const std::vector<float> o = out.to_f32_vector(), r = ref.to_f32_vector();
  double m = 0;
  for (size_t i = 0; i < r.size(); ++i) m = std::max(m, std::fabs(static_cast<double>(o[i]) - r[i]));
  return m;
}

// True when expect_matches(out, ref, atol, rtol) would fail: the "a perturbed weight is seen" checks use the very
// comparison the fixture tests use.
inline bool comparison_fails(const Tensor& out, const Tensor& ref, double atol, double rtol) {
  const std::vector<float> o = out.to_f32_vector(), r = ref.to_f32_vector();
  std::string report;
  return out.shape() != ref.shape() || !all_close(o.data(), r.data(), r.size(), atol, rtol, "", &report);
}

inline std::string temp_path(const std::string& name) {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/showo2_visual_test_" + name;
}

// A safetensors copy of `src` with one tensor multiplied by `factor` (for "the comparison can fail" tests).
inline std::unique_ptr<weights::WeightFile> with_scaled_tensor(const weights::WeightFile& src, const std::string& key,
                                                               float factor, const std::string& name) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  bool found = false;
  for (const auto& r : src.tensors()) {
    Tensor t = src.load(r.name);
    if (r.name == key) {
      std::vector<float> v = t.to_f32_vector();
      for (float& x : v) x *= factor;
      t = Tensor::from_f32(r.shape, v).to(r.dtype);
      found = true;
    }
    tensors.emplace_back(r.name, t);
  }
  if (!found) fail_at(__FILE__, __LINE__, "no tensor " + key + " in the fixture weights");
  const std::string path = temp_path(name);
  weights::save_safetensors(path, tensors);
  auto file = weights::open_weight_file(path);
  std::remove(path.c_str());  // the mapping stays valid after unlink
  return file;
}

}  // namespace showo2::test::visual
