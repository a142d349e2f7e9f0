// Rotary position embedding tables (rope.h, spec §5.2): inverse frequencies, the Llama-3 remap, and the cos/sin table.
//
// Everything is computed in double and rounded to F32 once, when stored, so the CPU and CUDA backends apply the very
// same angles whatever their own arithmetic. (transformers forms inv_freq and the angles in fp32, so its angles carry a
// relative error of ~1e-7, e.g. ~4e-4 rad at position 4096 of the fastest frequency; ours are the exact ones.)
#include "rope.h"

#include <cmath>

namespace showo2 {

namespace {

constexpr double kPi = 3.14159265358979323846;

void check_scaling(const Llama3RopeScaling& s) {
  if (!(s.factor > 0) || !std::isfinite(s.factor))
    fail(ErrorCode::InvalidArgument, "rope: scaling.factor: expected a finite value > 0 but got ", s.factor);
  if (!(s.original_max_position_embeddings > 0) || !std::isfinite(s.original_max_position_embeddings))
    fail(ErrorCode::InvalidArgument,
         "rope: scaling.original_max_position_embeddings: expected a finite value > 0 but got ",
         s.original_max_position_embeddings);
  if (!(s.low_freq_factor > 0) || !(s.high_freq_factor > s.low_freq_factor) || !std::isfinite(s.high_freq_factor))
    fail(ErrorCode::InvalidArgument,
         "rope: scaling: expected 0 < low_freq_factor < high_freq_factor (finite) but got low_freq_factor ",
         s.low_freq_factor, " and high_freq_factor ", s.high_freq_factor);
}

// The Llama-3 remap of one inverse frequency ("rope_type": "llama3" in transformers; spec §5.2). Short wavelengths
// (high frequencies) are kept, long ones are slowed down by `factor`, and the band in between is blended linearly in
// original/wavelen so the remapped spectrum has no jump.
double llama3_remap(double inv_freq, const Llama3RopeScaling& s) {
  const double wavelen = 2.0 * kPi / inv_freq;
  const double high_freq_wavelen = s.original_max_position_embeddings / s.high_freq_factor;  // 2048 for Show-o2
  const double low_freq_wavelen = s.original_max_position_embeddings / s.low_freq_factor;    // 8192 for Show-o2
  if (wavelen < high_freq_wavelen) return inv_freq;
  if (wavelen > low_freq_wavelen) return inv_freq / s.factor;
  const double smooth = (s.original_max_position_embeddings / wavelen - s.low_freq_factor) /
                        (s.high_freq_factor - s.low_freq_factor);
  return (1.0 - smooth) * inv_freq / s.factor + smooth * inv_freq;
}

}  // namespace

std::vector<double> rope_inverse_frequencies(int64_t head_dim, double theta,
                                             const std::optional<Llama3RopeScaling>& scaling) {
  if (head_dim <= 0 || head_dim % 2 != 0)
    fail(ErrorCode::InvalidArgument, "rope: head_dim: expected a positive even number but got ", head_dim);
  if (!(theta > 0.0) || !std::isfinite(theta))
    fail(ErrorCode::InvalidArgument, "rope: theta: expected a finite value > 0 but got ", theta);
  if (scaling) check_scaling(*scaling);
  std::vector<double> inv_freq(static_cast<size_t>(head_dim / 2));
  for (int64_t i = 0; i < head_dim / 2; ++i) {
    // 1 / theta^(2i/head_dim), with the exponent formed exactly as transformers does: arange(0, dim, 2) / dim.
    double f = 1.0 / std::pow(theta, static_cast<double>(2 * i) / static_cast<double>(head_dim));
    inv_freq[static_cast<size_t>(i)] = scaling ? llama3_remap(f, *scaling) : f;
  }
  return inv_freq;
}

RopeTable make_rope_table(int64_t head_dim, int64_t max_positions, double theta,
                          const std::optional<Llama3RopeScaling>& scaling) {
  if (max_positions <= 0)
    fail(ErrorCode::InvalidArgument, "rope: max_positions: expected a positive number but got ", max_positions);
  std::vector<double> inv_freq = rope_inverse_frequencies(head_dim, theta, scaling);
  const int64_t half = head_dim / 2;
  RopeTable table;
  table.head_dim = head_dim;
  table.max_positions = max_positions;
  table.cos = Tensor::empty({max_positions, half}, DType::F32);
  table.sin = Tensor::empty({max_positions, half}, DType::F32);
  float* c = table.cos.mutable_data<float>();
  float* s = table.sin.mutable_data<float>();
  for (int64_t pos = 0; pos < max_positions; ++pos)
    for (int64_t i = 0; i < half; ++i) {
      const double angle = static_cast<double>(pos) * inv_freq[static_cast<size_t>(i)];
      c[pos * half + i] = static_cast<float>(std::cos(angle));
      s[pos * half + i] = static_cast<float>(std::sin(angle));
    }
  return table;
}

}  // namespace showo2
