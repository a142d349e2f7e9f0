// PatchEmbed (spec §3.3): the 2x2 patch embeddings of the VAE latent, one per path.
//
//   image_embedder_und.proj   Conv2d(16 -> 1152, kernel 2, stride 2, bias): the semantic path (SigLIP width)
//   image_embedder_gen.proj   Conv2d(16 -> hidden, kernel 2, stride 2, bias): the projector path (LLM width)
//
// A video latent [N, C, T, H, W] is embedded frame by frame as images; tokens are frame-major, then row-major over
// the (H/p, W/p) grid: token = t*(h*w) + row*w + col.
//
// A conv whose kernel equals its stride sees disjoint patches, so it is one GEMM: the patches are gathered
// (Backend::copy of a strided view) into rows of C*p*p values in the conv weight's (c, i, j) order, and
// Backend::linear applies the weight viewed as [out, C*p*p]. Same sums as nn.Conv2d, one well-tuned kernel, and the
// tokens come out already in the [N, T*h*w, out] layout the sequence needs.
#pragma once

#include <cstdint>
#include <string>

#include "backend.h"
#include "tensor.h"
#include "weight_binder.h"

namespace showo2 {

class PatchEmbed {
 public:
  // ERR_INVALID_ARGUMENT for a non-positive size. The backend must outlive the PatchEmbed.
  PatchEmbed(int64_t in_channels, int64_t out_channels, int64_t patch_size, Backend& backend);

  // prefix "image_embedder_und." / "image_embedder_gen." -> <prefix>proj.{weight,bias}.
  void bind_weights(WeightBinder& binder, const std::string& prefix);

  // latent [N, C, T, H, W] F32 (any strides; H, W multiples of p) -> tokens [N, T*(H/p)*(W/p), out] F32,
  // frame-major then row-major (token = t*(h*w) + row*w + col). ERR_SHAPE_MISMATCH for a wrong rank or channel
  // count, ERR_INVALID_ARGUMENT when H or W is not a positive multiple of p, ERR_UNSUPPORTED_DTYPE for non-F32.
  Tensor forward(const Tensor& latent);

  int64_t in_channels() const { return in_channels_; }
  int64_t out_channels() const { return out_channels_; }
  int64_t patch_size() const { return patch_size_; }

 private:
  int64_t in_channels_, out_channels_, patch_size_;
  Backend* backend_;
  Tensor proj_weight_;  // <prefix>proj.weight   [out, in, p, p], used as [out, in*p*p]
  Tensor proj_bias_;    // <prefix>proj.bias     [out]
};

}  // namespace showo2
