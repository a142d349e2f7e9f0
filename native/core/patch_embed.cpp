// PatchEmbed: 2x2 patch embedding as a gather + GEMM; see patch_embed.h.
#include "patch_embed.h"

#include "error.h"

namespace showo2 {

PatchEmbed::PatchEmbed(int64_t in_channels, int64_t out_channels, int64_t patch_size, Backend& backend)
    : in_channels_(in_channels), out_channels_(out_channels), patch_size_(patch_size), backend_(&backend) {
  SHOWO2_CHECK(in_channels > 0 && out_channels > 0 && patch_size > 0, InvalidArgument,
               "PatchEmbed: expected positive in_channels, out_channels and patch_size but got ", in_channels, ", ",
               out_channels, ", ", patch_size);
}

void PatchEmbed::bind_weights(WeightBinder& binder, const std::string& prefix) {
  const int64_t p = patch_size_;
  binder.bind(&proj_weight_, prefix + "proj.weight", {out_channels_, in_channels_, p, p},
              {out_channels_, in_channels_ * p * p});
  binder.bind(&proj_bias_, prefix + "proj.bias", {out_channels_});
}

Tensor PatchEmbed::forward(const Tensor& latent) {
  const char* what = "PatchEmbed.forward: latent";
  if (latent.dim() != 5)
    fail(ErrorCode::ShapeMismatch, what, ": expected [N, C, T, H, W] but got ", latent.shape_string());
  check_dtype(latent, DType::F32, what);
  const int64_t N = latent.size(0), C = latent.size(1), T = latent.size(2), H = latent.size(3), W = latent.size(4);
  const int64_t p = patch_size_;
  if (C != in_channels_)
    fail(ErrorCode::ShapeMismatch, what, ": expected ", in_channels_, " channels but got ", latent.shape_string());
  SHOWO2_CHECK(N > 0 && T > 0 && H > 0 && W > 0 && H % p == 0 && W % p == 0, InvalidArgument, what,
               ": expected non-empty N, T and H, W positive multiples of the patch size ", p, " but got ",
               latent.shape_string());
  SHOWO2_CHECK(proj_weight_.defined(), InvalidArgument, "PatchEmbed.forward: weights not loaded");
  const int64_t h = H / p, w = W / p;

  // The latent viewed as [N, T, h, w, C, p, p] (H split into (h, p), W into (w, p); no data moves).
  const Shape& s = latent.strides();
  Tensor patches_view = Tensor::view_of(latent.storage(), DType::F32, {N, T, h, w, C, p, p},
                                        {s[0], s[2], p * s[3], p * s[4], s[1], s[3], s[4]}, latent.byte_offset());
  Tensor patches = backend_->empty({N, T, h, w, C, p, p}, DType::F32);  // [N, T, h, w, C, p, p]
  backend_->copy(patches_view, patches);
  Tensor tokens = backend_->empty({N, T * h * w, out_channels_}, DType::F32);  // [N, T*h*w, out]
  backend_->linear(patches.reshape({N, T * h * w, C * p * p}), proj_weight_, proj_bias_, tokens);
  return tokens;
}

}  // namespace showo2
