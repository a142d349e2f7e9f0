// TimestepEmbedder: sinusoid (host, float32) -> Linear -> SiLU -> Linear (backend); see time_embed.h.
#include "time_embed.h"

#include <cmath>

#include "error.h"

namespace showo2 {

TimestepEmbedder::TimestepEmbedder(int64_t hidden_size, int64_t frequency_embedding_size, Backend& backend)
    : hidden_size_(hidden_size), frequency_embedding_size_(frequency_embedding_size), backend_(&backend) {
  SHOWO2_CHECK(hidden_size > 0, InvalidArgument, "TimestepEmbedder: expected a positive hidden_size but got ",
               hidden_size);
  SHOWO2_CHECK(frequency_embedding_size >= 2, InvalidArgument,
               "TimestepEmbedder: expected frequency_embedding_size >= 2 but got ", frequency_embedding_size);
}

void TimestepEmbedder::bind_weights(WeightBinder& binder, const std::string& prefix) {
  const int64_t H = hidden_size_, F = frequency_embedding_size_;
  binder.bind(&mlp_0_weight_, prefix + "mlp.0.weight", {H, F});
  binder.bind(&mlp_0_bias_, prefix + "mlp.0.bias", {H});
  binder.bind(&mlp_2_weight_, prefix + "mlp.2.weight", {H, H});
  binder.bind(&mlp_2_bias_, prefix + "mlp.2.bias", {H});
}

Tensor TimestepEmbedder::sinusoid(const std::vector<float>& t, int64_t frequency_embedding_size) {
  SHOWO2_CHECK(frequency_embedding_size >= 2, InvalidArgument,
               "TimestepEmbedder.sinusoid: expected frequency_embedding_size >= 2 but got ", frequency_embedding_size);
  const int64_t B = static_cast<int64_t>(t.size()), F = frequency_embedding_size, half = F / 2;
  // freqs = torch.exp(-math.log(max_period) * torch.arange(0, half, dtype=torch.float32) / half): the Python float
  // scalar joins the float32 tensor as a float32, and each step rounds to float32.
  const float neg_log_max_period = static_cast<float>(-std::log(10000.0));
  std::vector<float> freqs(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i)
    freqs[i] = std::exp((neg_log_max_period * static_cast<float>(i)) / static_cast<float>(half));
  Tensor emb = Tensor::zeros({B, F}, DType::F32);  // [B, F]; an odd F keeps its last column 0 (DiT's padding)
  float* pe = emb.mutable_data<float>();
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t i = 0; i < half; ++i) {
      const float args = t[b] * freqs[i];  // t stays in [0, 1]: no x1000 (spec §3.6, §11.9)
      pe[b * F + i] = std::cos(args);      // cos first
      pe[b * F + half + i] = std::sin(args);
    }
  }
  return emb;
}

Tensor TimestepEmbedder::forward(const std::vector<float>& t) {
  SHOWO2_CHECK(!t.empty(), InvalidArgument, "TimestepEmbedder.forward: expected at least one time value");
  SHOWO2_CHECK(mlp_0_weight_.defined(), InvalidArgument, "TimestepEmbedder.forward: weights not loaded");
  Backend& b = *backend_;
  const int64_t B = static_cast<int64_t>(t.size()), H = hidden_size_;
  Tensor t_freq = b.to_device(sinusoid(t, frequency_embedding_size_));  // [B, F], computed on the host
  Tensor h = b.empty({B, H}, DType::F32);                               // [B, H]
  b.linear(t_freq, mlp_0_weight_, mlp_0_bias_, h);         // mlp.0
  b.silu(h, h);                                            // mlp.1
  Tensor c = b.empty({B, H}, DType::F32);                  // [B, H]
  b.linear(h, mlp_2_weight_, mlp_2_bias_, c);              // mlp.2
  return c;
}

}  // namespace showo2
