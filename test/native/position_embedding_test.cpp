// PositionEmbedding (native/core/position_embedding.cpp) against the fixtures: the 6x6x48 bf16 table of
// visual_weights.safetensors at its own grid (the table itself, widened to F32) and bicubically resized to 4x4, 8x8
// and 3x5 by PyTorch's float32 F.interpolate (spec §3.4, §11.3, §14).
//
// Tolerance: the table's own grid must be bit-exact (spec §14); resized grids |out - ref| <= 1e-6 + 1e-6 |ref|, the
// resize's tolerance (see grid_resize_test.cpp; the table is N(0, 1), outputs up to ~3.5).
#include <cstdio>
#include <string>

#include "position_embedding.h"
#include "test_util.h"
#include "visual_fixtures.h"

using namespace showo2;
using namespace showo2::test::visual;

namespace {

constexpr double kAtol = 1e-6;
constexpr double kRtol = 1e-6;

PositionEmbedding load(const Fixtures& f) {
  PositionEmbedding pe(f.config_int("image_latent_height"), f.config_int("image_latent_width"),
                       f.config_int("clip_latent_dim"));
  WeightBinder binder;
  pe.bind_weights(binder, "position_embedding.weight");
  load_component(binder, *f.weights, "position_embedding.", "PositionEmbedding");
  return pe;
}

}  // namespace

SHOWO2_TEST(own_grid_is_the_table_exactly) {
  require_fixtures();
  Fixtures f;
  PositionEmbedding pe = load(f);
  Tensor table = pe.for_grid(6, 6);
  CHECK_EQ(table.dtype(), DType::F32);
  CHECK(table.shape() == (Shape{36, 48}));
  CHECK(table.to_f32_vector() == f.get("pe_6x6").to_f32_vector());
  CHECK(table.to_f32_vector() == f.weights->load("position_embedding.weight").to_f32_vector());
}

SHOWO2_TEST(other_grids_are_bicubic_resizes_of_the_table) {
  require_fixtures();
  Fixtures f;
  PositionEmbedding pe = load(f);
  for (auto [h, w] : {std::pair<int64_t, int64_t>{4, 4}, {8, 8}, {3, 5}}) {
    const std::string key = "pe_" + std::to_string(h) + "x" + std::to_string(w);
    expect_matches(pe.for_grid(h, w), f.get(key), kAtol, kRtol, key);
  }
}

SHOWO2_TEST(cached_grids_are_reused) {
  require_fixtures();
  Fixtures f;
  PositionEmbedding pe = load(f);
  Tensor a = pe.for_grid(8, 8), b = pe.for_grid(8, 8);
  CHECK(a.storage() == b.storage());  // the same cached tensor, not a recomputation
  CHECK(pe.for_grid(3, 5).storage() != a.storage());
}

SHOWO2_TEST(bad_arguments_give_typed_errors) {
  CHECK_THROWS_CODE(PositionEmbedding(0, 27, 1152), InvalidArgument);
  PositionEmbedding unloaded(27, 27, 1152);
  CHECK_THROWS_CODE(unloaded.for_grid(27, 27), InvalidArgument);  // bind_weights + load_all not called
  require_fixtures();
  Fixtures f;
  PositionEmbedding pe = load(f);
  CHECK_THROWS_CODE(pe.for_grid(0, 4), InvalidArgument);
  // A table whose size disagrees with the config is reported by the loader, by key.
  PositionEmbedding wrong(5, 5, 48);
  WeightBinder binder;
  wrong.bind_weights(binder, "position_embedding.weight");
  CHECK_THROWS_CODE(load_component(binder, *f.weights, "position_embedding.", "PositionEmbedding"), ShapeMismatch);
}

SHOWO2_TEST_MAIN()
