// TimestepEmbedder (spec §3.6): the DiT-style timestep embedding, with t in [0, 1] as is (no x1000).
//
//   half = F / 2;  freq_i = exp(-ln(10000) * i / half), i < half
//   emb  = concat[cos(t * freq), sin(t * freq)] (+ one zero column when F is odd)      [B, F]
//   c    = mlp.2( SiLU( mlp.0(emb) ) )                                                   [B, hidden]
//
// c (2048-d for Show-o2) is the flow head's adaLN conditioning vector; the LLM's time token is time_embed_proj(c),
// which lives with the Show-o2 model, not here. One t per visual block.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backend.h"
#include "tensor.h"
#include "weight_binder.h"

namespace showo2 {

class TimestepEmbedder {
 public:
  // 2048, 256 for Show-o2. ERR_INVALID_ARGUMENT for a non-positive hidden size or a frequency size < 2.
  TimestepEmbedder(int64_t hidden_size, int64_t frequency_embedding_size, Backend& backend);

  // prefix "time_embed." -> time_embed.mlp.0.{weight,bias} [H, F], [H]; time_embed.mlp.2.{weight,bias} [H, H], [H].
  void bind_weights(WeightBinder& binder, const std::string& prefix);

  // [B] times (B >= 1) -> c [B, hidden] F32. ERR_INVALID_ARGUMENT for an empty t.
  Tensor forward(const std::vector<float>& t);

  // The sinusoid [B, F] F32, computed in float32 in PyTorch's order of operations (exposed for tests):
  //   freq_i = exp((-ln(10000) * i) / half), args = t * freq_i, emb = [cos(args), sin(args), (0 if F is odd)].
  static Tensor sinusoid(const std::vector<float>& t, int64_t frequency_embedding_size);

 private:
  int64_t hidden_size_, frequency_embedding_size_;
  Backend* backend_;
  Tensor mlp_0_weight_;  // time_embed.mlp.0.weight   [hidden, F]
  Tensor mlp_0_bias_;    // time_embed.mlp.0.bias     [hidden]
                         // time_embed.mlp.1 is nn.SiLU()
  Tensor mlp_2_weight_;  // time_embed.mlp.2.weight   [hidden, hidden]
  Tensor mlp_2_bias_;    // time_embed.mlp.2.bias     [hidden]
};

}  // namespace showo2
