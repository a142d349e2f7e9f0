// WanVae's spatially tiled decode and seeded posterior sample (native/core/wan_vae.cpp), on the CPU backend with the
// tiny random-weight fixture VAE (test/fixtures/vae/, dim 4, the published key layout).
//
// Tiled decode. A tile is decoded exactly as the untiled decode of its latent window (same code, its own caches), so
// the test rebuilds the tiled result from independently decoded windows with its own copy of the blend, and the
// library must match it to float rounding: that is the check that catches a broken blend (an off-by-one ramp, hard
// seams or a missing normalisation each miss it by >= 1e-3, printed). Against the untiled decode the tiled one is an
// approximation whose error is only bounded loosely (see kSeamRelL2Bound for why it is large with this fixture).
//
// Posterior sample: determinism per seed, the documented generator (eps pinned for one seed), the mean over seeds
// approaching z, and the noise scale exp(0.5 * logvar) in the normalised space (spec §3.1 quirk: not divided by std).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "cpu/cpu_backend.h"
#include "tensor.h"
#include "test_util.h"
#include "vae_fixtures.h"
#include "wan_vae.h"
#include "weights/weight_file.h"

using namespace showo2;
using namespace showo2::test::vae;
using showo2::test::max_abs_diff;
using showo2::test::relative_l2;
using Tiling = WanVaeDecodeOptions::Tiling;

namespace {

// Tiled (tile 8, overlap 4 latent pixels) vs untiled decode, relative L2 over the clip. Measured: 0.35 (1 frame,
// 24x24) and 0.37 (2 frames, 20x28), printed. It is large because of what tiling changes, not because of the blend:
//   * the decoder's middle AttentionBlock attends over the whole latent frame, and a tile sees 64 of 576 tokens;
//   * zero padding at a tile border disturbs the random-weight decoder ~8 latent pixels deep (measured once, with the
//     attention zeroed: relative error 1.1, 0.6, 0.3, 0.1, ... per latent column from the border, 3e-3 at 8), so an
//     8-pixel tile is all border. Bigger tiles shrink it (checked: tile 16 gives ~0.13 on the image).
// Trained weights are much smoother than these random ones; this bound only catches gross failures (a forgotten
// normalisation measures 1.35). The blend itself is checked exactly, against kSameBlendMaxAbs.
constexpr double kSeamRelL2Bound = 0.5;
// The library vs the test's own blend of independently decoded windows, on pixels where no window was clamped (the
// public decode clamps each window, the library blends before clamping): the same products and sums up to float
// rounding of values <= 1, so a few ulps. A deliberately wrong blend differs by >= kWrongBlendMinAbs.
constexpr double kSameBlendMaxAbs = 1e-5;
constexpr double kWrongBlendMinAbs = 1e-3;

struct TinyVae {
  std::unique_ptr<weights::WeightFile> weights = weights::open_weight_file(fixture("tiny_vae.pth"));
  cpu::CpuBackend backend{2};
  WanVae vae{*weights, WanVaeConfig::from_json(read_text(fixture("tiny_vae_config.json")), "tiny_vae_config.json"),
             backend};
};

Tensor random_latent(const Shape& shape, uint32_t seed) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return Tensor::from_f32(shape, test::random_normal(static_cast<size_t>(n), seed));
}

WanVaeDecodeOptions tiled(int64_t tile, int64_t overlap) {
  WanVaeDecodeOptions o;
  o.tiling = Tiling::On;
  o.tile_latent = tile;
  o.overlap_latent = overlap;
  return o;
}

WanVaeDecodeOptions untiled() {
  WanVaeDecodeOptions o;
  o.tiling = Tiling::Off;
  return o;
}

// How the test stitches independently decoded windows.
enum class Blend {
  Linear,       // the documented blend: complementary linear ramps across each overlap
  HardSeam,     // no blending: each pixel from one tile, cut in the middle of the overlap
  RampOffByOne, // the rising ramp shifted by one pixel, so the weights sum to 1 + 1/L in the overlaps
  Unnormalised, // both tiles at weight 1 in the overlaps (a forgotten normalisation)
};

// Per-axis weights of each tile at output pixel x, written independently of the library: in the overlap [s, e) of
// tiles i and i+1 the later tile gets u = (x - s + 0.5) / (e - s) and the earlier one 1 - u. (The layouts used here
// have at most two tiles on any pixel.)
std::vector<std::vector<double>> axis_weights(const std::vector<wan_vae::TileSpan>& spans, int64_t stride,
                                              Blend blend) {
  std::vector<std::vector<double>> w;
  for (const auto& s : spans) w.emplace_back(static_cast<size_t>((s.end - s.begin) * stride), 1.0);
  for (size_t i = 0; i + 1 < spans.size(); ++i) {
    const int64_t s = spans[i + 1].begin * stride, e = spans[i].end * stride, L = e - s;
    for (int64_t x = s; x < e; ++x) {
      double u = (static_cast<double>(x - s) + 0.5) / static_cast<double>(L);
      double later = u, earlier = 1.0 - u;
      if (blend == Blend::HardSeam) later = x - s >= L / 2 ? 1.0 : 0.0, earlier = 1.0 - later;
      if (blend == Blend::RampOffByOne) later = std::min(1.0, u + 1.0 / static_cast<double>(L));
      if (blend == Blend::Unnormalised) later = earlier = 1.0;
      w[i + 1][static_cast<size_t>(x - spans[i + 1].begin * stride)] = later;
      w[i][static_cast<size_t>(x - spans[i].begin * stride)] = earlier;
    }
  }
  return w;
}

struct Stitched {
  std::vector<float> pixels;  // [N, 3, F, 8h, 8w], clamped
  std::vector<char> exact;    // 1 where no contributing window value was clamped (the blend saw the true values)
};

// The tiled decode rebuilt from untiled decodes of each latent window, blended by `blend`, then clamped.
Stitched stitch_windows(WanVae& vae, const Tensor& latent, int64_t tile, int64_t overlap, Blend blend) {
  const int64_t N = latent.size(0), T = latent.size(2), h = latent.size(3), w = latent.size(4);
  const int64_t ss = vae.config().spatial_stride(), F = 1 + vae.config().temporal_stride() * (T - 1);
  const int64_t H = h * ss, W = w * ss;
  const auto rows = wan_vae::tile_spans(h, tile, overlap), cols = wan_vae::tile_spans(w, tile, overlap);
  const auto wr = axis_weights(rows, ss, blend), wc = axis_weights(cols, ss, blend);
  std::vector<double> sum(static_cast<size_t>(N * 3 * F * H * W), 0.0);
  Stitched out;
  out.exact.assign(sum.size(), 1);
  for (size_t r = 0; r < rows.size(); ++r)
    for (size_t c = 0; c < cols.size(); ++c) {
      Tensor window = latent.slice(3, rows[r].begin, rows[r].end).slice(4, cols[c].begin, cols[c].end).contiguous();
      const std::vector<float> px = vae.decode(window, untiled()).to_f32_vector();  // [N, 3, F, th*8, tw*8]
      const int64_t th = (rows[r].end - rows[r].begin) * ss, tw = (cols[c].end - cols[c].begin) * ss;
      for (int64_t nf = 0; nf < N * 3 * F; ++nf)
        for (int64_t y = 0; y < th; ++y)
          for (int64_t x = 0; x < tw; ++x) {
            const size_t o = static_cast<size_t>((nf * H + rows[r].begin * ss + y) * W + cols[c].begin * ss + x);
            const float v = px[static_cast<size_t>((nf * th + y) * tw + x)];
            sum[o] += wr[r][static_cast<size_t>(y)] * wc[c][static_cast<size_t>(x)] * v;
            if (!(std::fabs(v) < 1.0f)) out.exact[o] = 0;
          }
    }
  for (double v : sum) out.pixels.push_back(static_cast<float>(std::min(1.0, std::max(-1.0, v))));
  return out;
}

// Decodes `latent` untiled and tiled (tile 8, overlap 4) and checks the seam error, the library's blend against the
// test's, and that every deliberately wrong blend is caught by the bound. Also checks the streamed chunks.
void check_tiled_decode(const Shape& shape, uint32_t seed) {
  TinyVae t;
  const Tensor latent = random_latent(shape, seed);
  const std::string what = shape_to_string(shape);
  const std::vector<float> reference = t.vae.decode(latent, untiled()).to_f32_vector();

  std::vector<std::pair<int64_t, int64_t>> chunks;  // (first frame, frame count)
  const int64_t frames = 1 + t.vae.config().temporal_stride() * (shape[2] - 1);
  Tensor streamed = Tensor::zeros({shape[0], 3, frames, shape[3] * 8, shape[4] * 8}, DType::F32);
  const Tensor tiled_out = t.vae.decode(latent, tiled(8, 4), [&](const Tensor& chunk, int64_t first) {
    chunks.emplace_back(first, chunk.size(2));
    Tensor dst = streamed.slice(2, first, first + chunk.size(2));
    t.backend.copy(chunk, dst);
  });
  const std::vector<float> out = tiled_out.to_f32_vector();
  CHECK(tiled_out.shape() == (Shape{shape[0], 3, frames, shape[3] * 8, shape[4] * 8}));
  CHECK(streamed.to_f32_vector() == out);
  CHECK_EQ(static_cast<int64_t>(chunks.size()), shape[2]);
  for (float v : out) CHECK(v >= -1.0f && v <= 1.0f);

  const double rel = relative_l2(out, reference), abs_err = max_abs_diff(out, reference);
  std::printf("    %s tile 8 overlap 4 vs untiled: max abs %.3g, relative L2 %.3g (bound %.2g)\n", what.c_str(),
              abs_err, rel, kSeamRelL2Bound);
  CHECK(rel <= kSeamRelL2Bound);

  // Max |library - stitched| over the pixels the stitch got exactly.
  auto blend_error = [&out](const Stitched& st) {
    double m = 0;
    for (size_t i = 0; i < out.size(); ++i)
      if (st.exact[i]) m = std::max(m, std::fabs(static_cast<double>(out[i]) - st.pixels[i]));
    return m;
  };
  const Stitched linear = stitch_windows(t.vae, latent, 8, 4, Blend::Linear);
  size_t exact = 0;
  for (char e : linear.exact) exact += e != 0;
  const double same = blend_error(linear);
  std::printf("    %s library vs the test's blend of window decodes: max abs %.3g on %.1f%% of pixels (bound %.0e)\n",
              what.c_str(), same, 100.0 * static_cast<double>(exact) / static_cast<double>(out.size()),
              kSameBlendMaxAbs);
  CHECK(exact > out.size() / 2);
  CHECK(same <= kSameBlendMaxAbs);

  for (auto [blend, name] : {std::pair<Blend, const char*>{Blend::HardSeam, "hard seams"},
                             std::pair<Blend, const char*>{Blend::RampOffByOne, "ramp off by one pixel"},
                             std::pair<Blend, const char*>{Blend::Unnormalised, "no normalisation"}}) {
    const Stitched wrong = stitch_windows(t.vae, latent, 8, 4, blend);
    const double wrong_blend = blend_error(wrong), wrong_rel = relative_l2(wrong.pixels, reference);
    std::printf("    %s deliberately wrong (%s): vs library max abs %.3g; vs untiled max abs %.3g, relative L2 %.3g\n",
                what.c_str(), name, wrong_blend, max_abs_diff(wrong.pixels, reference), wrong_rel);
    CHECK(wrong_blend >= kWrongBlendMinAbs);
    if (blend == Blend::Unnormalised) CHECK(wrong_rel > kSeamRelL2Bound);
  }
}

}  // namespace

SHOWO2_TEST(tile_spans_cover_the_axis_with_even_overlaps) {
  using wan_vae::TileSpan;
  CHECK(wan_vae::tile_spans(8, 8, 4) == (std::vector<TileSpan>{{0, 8}}));
  CHECK(wan_vae::tile_spans(5, 8, 4) == (std::vector<TileSpan>{{0, 5}}));
  CHECK(wan_vae::tile_spans(24, 8, 4) == (std::vector<TileSpan>{{0, 8}, {4, 12}, {8, 16}, {12, 20}, {16, 24}}));
  CHECK(wan_vae::tile_spans(20, 8, 4) == (std::vector<TileSpan>{{0, 8}, {4, 12}, {8, 16}, {12, 20}}));
  CHECK(wan_vae::tile_spans(10, 8, 4) == (std::vector<TileSpan>{{0, 8}, {2, 10}}));  // overlap grows to 6
  // 54 (432 px) with the defaults: 1 + ceil(22 / 24) = 2 tiles, overlap 10.
  CHECK(wan_vae::tile_spans(54, 32, 8) == (std::vector<TileSpan>{{0, 32}, {22, 54}}));
  // 128 (1024 px): 1 + ceil(96 / 24) = 5 tiles, begins 0, 24, 48, 72, 96.
  CHECK_EQ(wan_vae::tile_spans(128, 32, 8).size(), size_t{5});
  CHECK(wan_vae::tile_spans(128, 32, 8)[4] == (TileSpan{96, 128}));
  CHECK_THROWS_CODE(wan_vae::tile_spans(10, 4, 4), InvalidArgument);
}

SHOWO2_TEST(decode_options_are_validated) {
  require_fixtures();
  TinyVae t;
  const Tensor latent = random_latent({1, 16, 1, 8, 8}, 1);
  WanVaeDecodeOptions o = tiled(0, 0);
  CHECK_THROWS_CODE(t.vae.decode(latent, o), InvalidArgument);  // tile_latent 0
  o = tiled(8, 8);
  CHECK_THROWS_CODE(t.vae.decode(latent, o), InvalidArgument);  // overlap == tile
  o = tiled(8, -1);
  CHECK_THROWS_CODE(t.vae.decode(latent, o), InvalidArgument);
  o = WanVaeDecodeOptions{};
  o.auto_max_bytes = -1;
  CHECK_THROWS_CODE(t.vae.decode(latent, o), InvalidArgument);
  o = WanVaeDecodeOptions{};
  o.tiling = static_cast<Tiling>(7);
  CHECK_THROWS_CODE(t.vae.decode(latent, o), InvalidArgument);
  try {
    t.vae.decode(latent, tiled(8, 9));
    test::fail_at(__FILE__, __LINE__, "expected an invalid overlap");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("overlap_latent") != std::string::npos);
  }
}

SHOWO2_TEST(tiling_on_with_one_tile_equals_untiled_exactly) {
  require_fixtures();
  TinyVae t;
  const Tensor latent = random_latent({1, 16, 2, 12, 10}, 2);
  const std::vector<float> reference = t.vae.decode(latent, untiled()).to_f32_vector();
  CHECK(t.vae.decode(latent, tiled(12, 4)).to_f32_vector() == reference);  // tile >= both sides
  CHECK(t.vae.decode(latent, tiled(64, 8)).to_f32_vector() == reference);
  CHECK(t.vae.decode(latent).to_f32_vector() == reference);  // the original overload: Auto, far below the budget
}

SHOWO2_TEST(tiled_image_decode_seam_error) {
  require_fixtures();
  check_tiled_decode({1, 16, 1, 24, 24}, 3);
  // A correct tiler approaches the untiled decode as tiles grow.
  TinyVae t;
  const Tensor latent = random_latent({1, 16, 1, 24, 24}, 3);
  const std::vector<float> reference = t.vae.decode(latent, untiled()).to_f32_vector();
  const double small = relative_l2(t.vae.decode(latent, tiled(8, 4)).to_f32_vector(), reference);
  const double large = relative_l2(t.vae.decode(latent, tiled(16, 8)).to_f32_vector(), reference);
  std::printf("    relative L2 vs untiled: tile 8 overlap 4 %.3g, tile 16 overlap 8 %.3g\n", small, large);
  CHECK(large < 0.5 * small);
}

SHOWO2_TEST(tiled_two_frame_decode_seam_error_and_streaming) {
  require_fixtures();
  check_tiled_decode({1, 16, 2, 20, 28}, 4);
}

SHOWO2_TEST(auto_tiles_above_the_memory_estimate) {
  require_fixtures();
  TinyVae t;
  // The estimate (wan_vae.h): N * 64hw * (dim * (T == 1 ? 18 : 170) + 12 * frames); the released dim 96 at 1024 px.
  CHECK_EQ(t.vae.estimate_untiled_decode_bytes({1, 16, 1, 24, 24}), int64_t{36864} * (4 * 18 + 12));
  CHECK_EQ(t.vae.estimate_untiled_decode_bytes({2, 16, 2, 24, 24}), int64_t{2} * 36864 * (4 * 170 + 12 * 5));
  const Tensor latent = random_latent({1, 16, 1, 24, 24}, 5);
  WanVaeDecodeOptions o;
  o.tile_latent = 8;
  o.overlap_latent = 4;
  o.auto_max_bytes = t.vae.estimate_untiled_decode_bytes(latent.shape());  // not above: untiled
  CHECK(t.vae.decode(latent, o).to_f32_vector() == t.vae.decode(latent, untiled()).to_f32_vector());
  o.auto_max_bytes -= 1;  // above: tiled
  CHECK(t.vae.decode(latent, o).to_f32_vector() == t.vae.decode(latent, tiled(8, 4)).to_f32_vector());
}

SHOWO2_TEST(tiled_estimate_counts_every_tile_and_equals_untiled_for_one_tile) {
  require_fixtures();
  TinyVae t;  // dim 4, stride 8
  for (const Shape& shape : {Shape{1, 16, 1, 24, 24}, Shape{2, 16, 3, 20, 28}})
    CHECK_EQ(t.vae.estimate_tiled_decode_bytes(shape, 32, 8), t.vae.estimate_untiled_decode_bytes(shape));
  // An image: one 8x8-latent tile's chunk plus the output. tile_spans(24, 8, 2) = 4 tiles per axis.
  CHECK_EQ(t.vae.estimate_tiled_decode_bytes({1, 16, 1, 24, 24}, 8, 2), int64_t{64 * 64} * 4 * 18 + 36864 * 12);
  // A 2-frame video (5 frames out): caches over 4 x 4 tiles of 64 x 64 px, one tile's chunk, the output.
  CHECK_EQ(t.vae.estimate_tiled_decode_bytes({1, 16, 2, 24, 24}, 8, 2),
           int64_t{16 * 64 * 64} * 4 * 98 + int64_t{64 * 64} * 4 * 72 + 36864 * 12 * 5);
}

SHOWO2_TEST(auto_plan_follows_the_memory_the_backend_has) {
  require_fixtures();
  TinyVae t;
  const Shape image = {1, 16, 1, 24, 24};
  const int64_t untiled_bytes = t.vae.estimate_untiled_decode_bytes(image);
  WanVaeDecodeOptions o;  // Auto, tile 32 / overlap 8, 8 GiB
  // Unknown free memory (the CPU backend): the byte threshold alone decides, as before.
  WanVae::DecodePlan plan = t.vae.plan_decode(image, o, -1);
  CHECK(!plan.tiled);
  CHECK_EQ(plan.budget_bytes, o.auto_max_bytes);
  CHECK_EQ(plan.estimated_bytes, untiled_bytes);
  // Known free memory: 90% of it is the budget when smaller.
  plan = t.vae.plan_decode(image, o, untiled_bytes / 9 * 10 + 10);
  CHECK(!plan.tiled);
  CHECK_EQ(plan.budget_bytes, (untiled_bytes / 9 * 10 + 10) / 10 * 9);
  // Too little for the whole image: tiles of 16 latent pixels, halved until the estimate fits.
  o.tile_latent = 16;
  o.overlap_latent = 4;
  const int64_t for_16 = t.vae.estimate_tiled_decode_bytes(image, 16, 4);
  const int64_t for_8 = t.vae.estimate_tiled_decode_bytes(image, 8, 2);
  CHECK(for_8 < for_16 && for_16 < untiled_bytes);
  plan = t.vae.plan_decode(image, o, for_16 / 9 * 10 + 10);
  CHECK(plan.tiled);
  CHECK_EQ(plan.tile_latent, 16);
  CHECK_EQ(plan.overlap_latent, 4);
  plan = t.vae.plan_decode(image, o, for_8 / 9 * 10 + 10);
  CHECK(plan.tiled);
  CHECK_EQ(plan.tile_latent, 8);
  CHECK_EQ(plan.overlap_latent, 2);
  CHECK_EQ(plan.estimated_bytes, for_8);
  // Nothing fits: the smallest estimate (decode then fails at allocation if the memory really is not there).
  plan = t.vae.plan_decode(image, o, 1000);
  CHECK(plan.tiled);
  CHECK_EQ(plan.tile_latent, 8);
  // On and Off ignore the memory.
  CHECK(!t.vae.plan_decode(image, untiled(), 1000).tiled);
  plan = t.vae.plan_decode(image, tiled(16, 4), int64_t{1} << 40);
  CHECK(plan.tiled && plan.tile_latent == 16 && plan.overlap_latent == 4 && plan.budget_bytes == 0);
}

SHOWO2_TEST(auto_decode_runs_the_plan) {
  require_fixtures();
  TinyVae t;
  const Tensor latent = random_latent({1, 16, 1, 24, 24}, 6);
  WanVaeDecodeOptions o;
  o.tile_latent = 16;
  o.overlap_latent = 4;
  // A byte threshold under the 16-pixel tiles' estimate: Auto shrinks them to 8 (overlap 2), as plan_decode says.
  o.auto_max_bytes = t.vae.estimate_tiled_decode_bytes(latent.shape(), 16, 4) - 1;
  const WanVae::DecodePlan plan = t.vae.plan_decode(latent.shape(), o, -1);
  CHECK(plan.tiled && plan.tile_latent == 8 && plan.overlap_latent == 2);
  CHECK(t.vae.decode(latent, o).to_f32_vector() == t.vae.decode(latent, tiled(8, 2)).to_f32_vector());
}

// ---- encode_sample ----------------------------------------------------------------------------------------------

SHOWO2_TEST(encode_sample_is_seeded_and_scaled_by_exp_half_logvar) {
  require_fixtures();
  TinyVae t;
  auto io = weights::open_weight_file(fixture("tiny_vae_io.safetensors"));
  const Tensor image = io->load("image").contiguous();  // [1, 3, 1, 64, 64]
  const WanVae::Posterior p = t.vae.encode_posterior(image);
  const std::vector<float> z = p.mean.to_f32_vector(), logvar = p.logvar.to_f32_vector();
  std::vector<double> sd;
  for (float lv : logvar) sd.push_back(std::exp(0.5 * std::min(std::max(static_cast<double>(lv), -30.0), 20.0)));

  const std::vector<float> a = t.vae.encode_sample(image, 7).to_f32_vector();
  CHECK(t.vae.encode_sample(image, 7).shape() == p.mean.shape());
  CHECK(t.vae.encode_sample(image, 7).to_f32_vector() == a);
  const std::vector<float> other = t.vae.encode_sample(image, 8).to_f32_vector();
  size_t differing = 0;
  for (size_t i = 0; i < a.size(); ++i) differing += a[i] != other[i];
  CHECK(differing > a.size() * 99 / 100);

  // The documented generator, re-derived here: eps for seed 7, first elements.
  std::mt19937_64 rng(7);
  for (size_t i = 0; i < 8; i += 2) {
    const double u1 = static_cast<double>((rng() >> 11) + 1) / 9007199254740992.0;
    const double u2 = static_cast<double>(rng() >> 11) / 9007199254740992.0;
    const double r = std::sqrt(-2.0 * std::log(u1)), angle = 6.283185307179586 * u2;
    for (size_t k = 0; k < 2; ++k) {
      const double eps = k == 0 ? r * std::cos(angle) : r * std::sin(angle);
      const double expected = static_cast<float>(z[i + k] + sd[i + k] * eps);
      if (std::fabs(a[i + k] - expected) > 1e-6 * (1 + std::fabs(expected)))
        test::fail_at(__FILE__, __LINE__, "eps[" + std::to_string(i + k) + "] is not the documented generator's");
    }
  }

  // Over many seeds: the per-element mean approaches z, and (sample - z) / exp(0.5 logvar) is N(0, 1). Had the noise
  // been divided by latents_std (not the reference's quirk), the variance would be ~1/std^2 = 0.1-0.7.
  constexpr int kSeeds = 200;
  std::vector<double> mean(z.size(), 0.0);
  double e_sum = 0, e_sq = 0;
  for (int s = 0; s < kSeeds; ++s) {
    const std::vector<float> x = t.vae.encode_sample(image, 1000 + static_cast<uint64_t>(s)).to_f32_vector();
    for (size_t i = 0; i < x.size(); ++i) {
      mean[i] += x[i] / kSeeds;
      const double e = (x[i] - static_cast<double>(z[i])) / sd[i];
      e_sum += e;
      e_sq += e * e;
    }
  }
  const double n = static_cast<double>(kSeeds) * static_cast<double>(z.size());
  const double e_mean = e_sum / n, e_var = e_sq / n - e_mean * e_mean;
  double worst = 0;  // largest |mean - z| in standard errors sd / sqrt(kSeeds)
  for (size_t i = 0; i < z.size(); ++i)
    worst = std::max(worst, std::fabs(mean[i] - z[i]) / (sd[i] / std::sqrt(static_cast<double>(kSeeds))));
  std::printf("    %d seeds x %zu elements: noise mean %.4f, variance %.4f; worst |mean - z| %.2f standard errors\n",
              kSeeds, z.size(), e_mean, e_var, worst);
  CHECK(std::fabs(e_mean) < 5.0 / std::sqrt(n));               // 5 sigma
  CHECK(std::fabs(e_var - 1.0) < 5.0 * std::sqrt(2.0 / n));    // 5 sigma of a sample variance
  CHECK(worst < 5.5);  // the max of 1024 |N(0,1)| exceeds 5.5 with probability ~4e-5
}

SHOWO2_TEST_MAIN()
