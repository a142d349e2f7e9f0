// Rotary position embedding tables (spec §5.2).
//
// Both Show-o2 RoPEs are rotate-half with plain 1-D positions 0..L-1:
//   * the Qwen2.5 LLM: head_dim 128, theta 1e6, no scaling;
//   * the flow head:   head_dim 64, theta 5e5, Llama-3 frequency scaling (factor 32, low 1, high 4, original 8192).
// The table holds cos/sin for every position and frequency, computed in double and stored as F32, so every backend
// applies identical angles.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "tensor.h"

namespace showo2 {

// Llama-3 style frequency remapping ("rope_type": "llama3" in transformers).
struct Llama3RopeScaling {
  double factor = 32.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  double original_max_position_embeddings = 8192.0;
};

struct RopeTable {
  int64_t head_dim = 0;
  int64_t max_positions = 0;
  Tensor cos;  // [max_positions, head_dim/2] F32
  Tensor sin;  // [max_positions, head_dim/2] F32
};

// inv_freq_i = 1 / theta^(2i/head_dim), optionally remapped by Llama-3 scaling. head_dim must be even.
std::vector<double> rope_inverse_frequencies(int64_t head_dim, double theta,
                                             const std::optional<Llama3RopeScaling>& scaling);

RopeTable make_rope_table(int64_t head_dim, int64_t max_positions, double theta,
                          const std::optional<Llama3RopeScaling>& scaling = std::nullopt);

}  // namespace showo2
