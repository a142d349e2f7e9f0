// Random Wan VAE weights in memory, for any WanVaeConfig: used where no published checkpoint is at hand (the full-size
// GPU test, test/native/wan_vae_cuda_test.cu, and bench/native/wan_vae_bench.cpp).
//
//   InMemoryWeights file(random_wan_vae_weights(config, 1000));
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
#include "in_memory_weights.h"
#include "wan_vae.h"
#include "weights/weight_file.h"

namespace showo2::test {

// Every key WanVae expects for `config`, with its stored shape: given an empty file the loader lists every missing
// key as "    <key> [d0, d1, ...]" (the format test/native/wan_vae_test.cpp pins for the published layout).
inline std::vector<std::pair<std::string, Shape>> expected_wan_vae_keys(const WanVaeConfig& config) {
  InMemoryWeights empty;
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
