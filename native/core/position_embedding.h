// The SigLIP absolute position table of the semantic path (spec §3.4, §11.3, §14).
//
//   position_embedding.weight [grid_h * grid_w, dim]   Show-o2: [729, 1152], an nn.Embedding taken from SigLIP-384/14
//
// The semantic layers' input is image_embedder_und(latent) + PE, where PE for a token grid h x w is the table itself
// (row-major) when h x w is the table's own grid (27x27: 432 px images), and otherwise the table viewed as
// [grid_h, grid_w, dim] resized bicubically to [h, w, dim] (align_corners=False, no antialias; grid_resize.h). That is
// the intended behaviour of the reference before its HEAD regression (spec §11.3, confirmed in §14).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "backend.h"
#include "tensor.h"
#include "weight_binder.h"

namespace showo2 {

class PositionEmbedding {
 public:
  // table [grid_h*grid_w, dim]; Show-o2: 27, 27, 1152 (image_latent_height/width, clip_latent_dim).
  // ERR_INVALID_ARGUMENT for a non-positive size.
  PositionEmbedding(int64_t grid_h, int64_t grid_w, int64_t dim);

  // key: "position_embedding.weight". The table is read lazily by for_grid, after WeightBinder::load_all. It stays
  // on the host (bound with bind_host): the resize runs on the host and only its F32 result goes to a device.
  void bind_weights(WeightBinder& binder, const std::string& key);

  // The table for a token grid h x w as [h*w, dim] F32 (row-major): the table itself (widened to F32 when stored
  // BF16/F16) when (h, w) == (grid_h, grid_w), else its bicubic resize of the table viewed as [grid_h, grid_w, dim].
  // Treat the result as read-only: a stored F32 table is returned as the checkpoint's own (mapped) tensor.
  // Cached per (h, w); thread-compatible (concurrent calls need external synchronisation). ERR_INVALID_ARGUMENT for
  // h or w < 1, or when the weights have not been loaded.
  Tensor for_grid(int64_t h, int64_t w);
  // The same table moved to `backend` (Backend::to_device), cached per (h, w) so a device uploads each grid once.
  // All calls must pass the same backend.
  Tensor for_grid(int64_t h, int64_t w, Backend& backend);

  int64_t grid_h() const { return grid_h_; }
  int64_t grid_w() const { return grid_w_; }
  int64_t dim() const { return dim_; }

 private:
  int64_t grid_h_, grid_w_, dim_;
  Tensor weight_;  // position_embedding.weight   [grid_h*grid_w, dim]
  std::map<std::pair<int64_t, int64_t>, Tensor> cache_;         // (h, w) -> [h*w, dim] F32, host
  std::map<std::pair<int64_t, int64_t>, Tensor> device_cache_;  // (h, w) -> the same on the backend
};

}  // namespace showo2
