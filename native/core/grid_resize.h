// Host-side resizes of token grids, bit-for-bit in the spirit of torch.nn.functional.interpolate(size=(h, w),
// align_corners=False, antialias=False) on float32.
//
//   resize_grid_bicubic:  the SigLIP position table 27x27 -> the token grid of other resolutions (spec §3.4, §11.3,
//                         §14): 32x32 at 512 px, 64x64 at 1024 px. A same-size resize is an exact identity.
//   resize_grid_bilinear: the video-understanding token pooling 27x27 -> 14x14 per frame (spec §8.3).
//
// Layout: grid [H, W, C] F32 (any strides) -> a new contiguous [h, w, C] F32. The grids are tiny (at most a few
// thousand cells), so this is plain host code and not a Backend op; callers upload the result like any other input.
//
// PyTorch's arithmetic, reproduced per output axis (aten UpSample.h / UpSampleKernel.cpp, float opmath):
//   scale = float(in) / float(out)                       (size given, no scale_factor: in/out, never (in-1)/(out-1))
//   src   = scale * (dst + 0.5) - 0.5                     bilinear clamps src < 0 to 0; bicubic does not
//   i0    = min(floor(src), in - 1), t = clamp(src - i0, 0, 1)
//   bilinear: taps i0, min(i0 + 1, in - 1) with weights 1 - t, t (and exactly 1, 0 when in == out)
//   bicubic:  taps i0 - 1 .. i0 + 2 clamped to [0, in - 1], Keys' cubic convolution with A = -0.75
// and out[y, x] = sum_k wy[k] * (sum_j wx[j] * grid[ty[k], tx[j]]), accumulated in float in that order.
// Errors: ERR_SHAPE_MISMATCH (not rank 3, or an empty dimension), ERR_UNSUPPORTED_DTYPE (not F32),
// ERR_INVALID_ARGUMENT (an output size < 1).
#pragma once

#include <cstdint>

#include "tensor.h"

namespace showo2 {

// grid [H, W, C] F32 -> [h, w, C]. Bicubic: A = -0.75, source index clamped at the borders (as PyTorch's
// upsample_bicubic2d). A same-size resize is an exact identity (spec §14).
Tensor resize_grid_bicubic(const Tensor& grid, int64_t out_h, int64_t out_w);
// Bilinear (the video understanding 27x27 -> 14x14 token pooling, spec §8.3).
Tensor resize_grid_bilinear(const Tensor& grid, int64_t out_h, int64_t out_w);

}  // namespace showo2
