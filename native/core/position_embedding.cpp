// The SigLIP position table and its bicubic resize per token grid; see position_embedding.h.
#include "position_embedding.h"

#include "error.h"
#include "grid_resize.h"

namespace showo2 {

PositionEmbedding::PositionEmbedding(int64_t grid_h, int64_t grid_w, int64_t dim)
    : grid_h_(grid_h), grid_w_(grid_w), dim_(dim) {
  SHOWO2_CHECK(grid_h > 0 && grid_w > 0 && dim > 0, InvalidArgument,
               "PositionEmbedding: expected a positive grid and dim (image_latent_height, image_latent_width, "
               "clip_latent_dim) but got ",
               grid_h, "x", grid_w, "x", dim);
}

void PositionEmbedding::bind_weights(WeightBinder& binder, const std::string& key) {
  cache_.clear();  // a new table invalidates every resize of the old one
  device_cache_.clear();
  binder.bind_host(&weight_, key, {grid_h_ * grid_w_, dim_});
}

Tensor PositionEmbedding::for_grid(int64_t h, int64_t w) {
  SHOWO2_CHECK(h > 0 && w > 0, InvalidArgument, "PositionEmbedding.for_grid: expected a token grid of at least 1x1 "
               "but got ", h, "x", w);
  SHOWO2_CHECK(weight_.defined(), InvalidArgument,
               "PositionEmbedding.for_grid: the position table has not been loaded (bind_weights, then load_all)");
  auto it = cache_.find({h, w});
  if (it != cache_.end()) return it->second;
  Tensor table;
  if (h == grid_h_ && w == grid_w_) {
    table = weight_.dtype() == DType::F32 ? weight_ : weight_.to(DType::F32);  // [h*w, dim]
  } else {
    Tensor grid = weight_.to(DType::F32).reshape({grid_h_, grid_w_, dim_});  // [grid_h, grid_w, dim]
    table = resize_grid_bicubic(grid, h, w).reshape({h * w, dim_});          // [h*w, dim]
  }
  cache_.emplace(std::make_pair(h, w), table);
  return table;
}

Tensor PositionEmbedding::for_grid(int64_t h, int64_t w, Backend& backend) {
  auto it = device_cache_.find({h, w});
  if (it != device_cache_.end()) return it->second;
  Tensor table = backend.to_device(for_grid(h, w));  // [h*w, dim] F32
  device_cache_.emplace(std::make_pair(h, w), table);
  return table;
}

}  // namespace showo2
