// Random Wan VAE weights in memory, for any WanVaeConfig: used where no published checkpoint is at hand (the full-size
// GPU test, test/native/wan_vae_cuda_test.cu, and bench/native/wan_vae_bench.cpp).
//
//   InMemoryWeightFile file(random_wan_vae_weights(config, 1000));
//   WanVae vae(file, config, backend);
//
// The keys and shapes come from WanVae itself (expected_wan_vae_keys), not from a second copy of the module layout.
// Scale (tools/reference/wan_vae.py's random_init_): conv weights N(0, 1/fan_in), biases N(0, 0.02^2), gammas 1, so
// activations stay O(1) through the whole network. Deterministic for a seed; `dtype` is what the tensors hold (BF16
// makes CPU and GPU read identical weights, since the CUDA backend uploads matrices as BF16).
#pragma once

#include <cmath>
#include <cstdint>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "cpu/cpu_backend.h"
#include "error.h"
#include "tensor.h"
#include "wan_vae.h"
#include "weights/weight_file.h"

namespace showo2::test {

// A WeightFile over tensors held in memory: saves writing ~0.5 GB of random weights to disk just to map them back.
class InMemoryWeightFile final : public weights::WeightFile {
 public:
  explicit InMemoryWeightFile(std::map<std::string, Tensor> tensors) : tensors_(std::move(tensors)) {
    for (const auto& [name, t] : tensors_) records_.push_back({name, t.dtype(), t.shape(), path_});
  }
  const std::string& path() const override { return path_; }
  std::string format() const override { return "memory"; }
  const std::vector<weights::TensorRecord>& tensors() const override { return records_; }
  const std::map<std::string, std::string>& metadata() const override { return metadata_; }
  Tensor load(const std::string& name) const override {
    auto it = tensors_.find(name);
    if (it == tensors_.end()) fail(ErrorCode::TensorNotFound, "no tensor ", name, " in ", path_);
    return it->second;
  }

 private:
  std::string path_ = "<random wan_vae weights>";
  std::map<std::string, Tensor> tensors_;  // sorted by name, as tensors() promises
  std::vector<weights::TensorRecord> records_;
  std::map<std::string, std::string> metadata_;
};

// Every key WanVae expects for `config`, with its stored shape: given an empty file the loader lists every missing
// key as "    <key> [d0, d1, ...]" (the format test/native/wan_vae_test.cpp pins for the published layout).
inline std::vector<std::pair<std::string, Shape>> expected_wan_vae_keys(const WanVaeConfig& config) {
  InMemoryWeightFile empty({});
  cpu::CpuBackend backend(1);
  std::string message;
  try {
    WanVae probe(empty, config, backend);
  } catch (const Error& e) {
    message = e.what();
  }
  std::vector<std::pair<std::string, Shape>> keys;
  std::istringstream lines(message.substr(std::min(message.find("missing keys"), message.size())));
  std::string line;
  std::getline(lines, line);  // "missing keys (N):"
  while (std::getline(lines, line) && line.rfind("    ", 0) == 0) {
    const size_t open = line.find('['), close = line.find(']');
    if (open == std::string::npos || close == std::string::npos) break;
    Shape shape;
    std::istringstream dims(line.substr(open + 1, close - open - 1));
    for (std::string d; std::getline(dims, d, ',');) shape.push_back(std::stoll(d));
    keys.emplace_back(line.substr(4, open - 5), shape);
  }
  if (keys.empty()) fail(ErrorCode::Internal, "expected_wan_vae_keys: could not read the keys from: ", message);
  return keys;
}

inline std::map<std::string, Tensor> random_wan_vae_weights(const WanVaeConfig& config, uint32_t seed,
                                                            DType dtype = DType::F32) {
  std::map<std::string, Tensor> tensors;
  for (const auto& [name, shape] : expected_wan_vae_keys(config)) {
    const bool is_gamma = name.size() >= 6 && name.compare(name.size() - 6, 6, ".gamma") == 0;
    const bool is_bias = name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    std::vector<float> values(static_cast<size_t>(shape_numel(shape)), 1.0f);
    if (!is_gamma) {
      const double fan_in = static_cast<double>(shape_numel(shape) / shape[0]);
      std::mt19937 rng(seed);
      std::normal_distribution<float> normal(0.0f, is_bias ? 0.02f : static_cast<float>(1.0 / std::sqrt(fan_in)));
      for (float& v : values) v = normal(rng);
    }
    Tensor t = Tensor::from_f32(shape, values);
    tensors[name] = dtype == DType::F32 ? t : t.to(dtype);
    ++seed;
  }
  return tensors;
}

}  // namespace showo2::test
