// fusion_proj: RMSNorm -> Linear -> GELU(erf) -> Linear over concat[und, gen]; see fusion.h.
#include "fusion.h"

#include <cmath>

#include "error.h"

namespace showo2 {

FusionProj::FusionProj(int64_t und_dim, int64_t hidden_size, double rms_norm_eps, Backend& backend)
    : und_dim_(und_dim), hidden_size_(hidden_size), rms_norm_eps_(static_cast<float>(rms_norm_eps)),
      backend_(&backend) {
  SHOWO2_CHECK(und_dim > 0 && hidden_size > 0, InvalidArgument,
               "FusionProj: expected positive und_dim (clip_latent_dim) and hidden_size but got ", und_dim, ", ",
               hidden_size);
  SHOWO2_CHECK(rms_norm_eps > 0 && std::isfinite(rms_norm_eps), InvalidArgument,
               "FusionProj: expected a positive rms_norm_eps but got ", rms_norm_eps);
}

void FusionProj::bind_weights(WeightBinder& binder, const std::string& prefix) {
  const int64_t U = und_dim_, H = hidden_size_;
  binder.bind(&norm_weight_, prefix + "0.weight", {U + H});
  binder.bind(&fc1_weight_, prefix + "1.weight", {H, U + H});
  binder.bind(&fc1_bias_, prefix + "1.bias", {H});
  binder.bind(&fc2_weight_, prefix + "3.weight", {H, H});
  binder.bind(&fc2_bias_, prefix + "3.bias", {H});
}

Tensor FusionProj::forward(const Tensor& und, const Tensor& gen) {
  if (und.dim() != 3 || und.size(2) != und_dim_)
    fail(ErrorCode::ShapeMismatch, "FusionProj.forward: und: expected [N, T, ", und_dim_, "] but got ",
         und.shape_string());
  if (gen.dim() != 3 || gen.size(0) != und.size(0) || gen.size(1) != und.size(1) || gen.size(2) != hidden_size_)
    fail(ErrorCode::ShapeMismatch, "FusionProj.forward: gen: expected [", und.size(0), ", ", und.size(1), ", ",
         hidden_size_, "] (und's N and T) but got ", gen.shape_string());
  check_dtype(und, DType::F32, "FusionProj.forward: und");
  check_dtype(gen, DType::F32, "FusionProj.forward: gen");
  SHOWO2_CHECK(norm_weight_.defined(), InvalidArgument, "FusionProj.forward: weights not loaded");
  Backend& b = *backend_;
  const int64_t N = und.size(0), T = und.size(1), U = und_dim_, H = hidden_size_;

  Tensor hidden_states = b.empty({N, T, U + H}, DType::F32);  // [N, T, U+H] = torch.cat([und, gen], dim=-1)
  Tensor und_part = hidden_states.slice(2, 0, U), gen_part = hidden_states.slice(2, U, U + H);
  b.copy(und, und_part);
  b.copy(gen, gen_part);
  b.rms_norm(hidden_states, norm_weight_, rms_norm_eps_, hidden_states);  // fusion_proj.0, fp32 (spec §3.5)
  Tensor h = b.empty({N, T, H}, DType::F32);                              // [N, T, H]
  b.linear(hidden_states, fc1_weight_, fc1_bias_, h);                     // fusion_proj.1
  b.gelu(h, GeluApproximation::None, h);                                  // fusion_proj.2: nn.GELU(), erf
  Tensor out = b.empty({N, T, H}, DType::F32);                            // [N, T, H]
  b.linear(h, fc2_weight_, fc2_bias_, out);                               // fusion_proj.3
  return out;
}

}  // namespace showo2
