// fusion_proj (spec §3.5): the spatial(-temporal) fusion of the semantic and projector paths, per visual token.
//
//   f = Linear2( GELU_erf( Linear1( RMSNorm_eps( concat[und, gen] ) ) ) )
//
// und = S(latent) (siglip.h, width clip_latent_dim 1152), gen = image_embedder_gen(latent) (patch_embed.h, width
// hidden). The RMSNorm runs over und_dim + hidden (2688 for 1.5B, 4736 for 7B) in fp32; nn.GELU() is the exact erf
// form. For video there is no temporal mixing here: tokens are simply frame-major.
#pragma once

#include <cstdint>
#include <string>

#include "backend.h"
#include "tensor.h"
#include "weight_binder.h"

namespace showo2 {

class FusionProj {
 public:
  // eps 1e-6 for Show-o2. ERR_INVALID_ARGUMENT for non-positive sizes or eps. The backend must outlive this.
  FusionProj(int64_t und_dim, int64_t hidden_size, double rms_norm_eps, Backend& backend);

  // prefix "fusion_proj.".
  void bind_weights(WeightBinder& binder, const std::string& prefix);

  // und [N, T, und_dim], gen [N, T, hidden] F32 (last dims contiguous) -> [N, T, hidden] F32.
  // ERR_SHAPE_MISMATCH when the shapes disagree with each other or with the sizes above.
  Tensor forward(const Tensor& und, const Tensor& gen);

 private:
  int64_t und_dim_, hidden_size_;
  float rms_norm_eps_;
  Backend* backend_;
  Tensor norm_weight_;  // fusion_proj.0.weight                [und_dim + hidden]   (RMSNorm)
  Tensor fc1_weight_;   // fusion_proj.1.weight                [hidden, und_dim + hidden]
  Tensor fc1_bias_;     // fusion_proj.1.bias                  [hidden]
                        // fusion_proj.2 is nn.GELU() (erf)
  Tensor fc2_weight_;   // fusion_proj.3.weight                [hidden, hidden]
  Tensor fc2_bias_;     // fusion_proj.3.bias                  [hidden]
};

}  // namespace showo2
