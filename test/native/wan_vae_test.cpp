// WanVae (native/core/wan_vae.cpp) on the CPU backend against the fixtures of the independent PyTorch reference
// (tools/reference/wan_vae.py via tools/fixtures/make_vae_fixtures.py): a tiny random-weight VAE (dim 4, the
// published key layout, bf16 weights) encoding an image and a 5-frame video and decoding 1-, 2- and 3-frame latents
// through the chunked causal path. Also: the fixture comparison fails when one weight is perturbed by 1%, the
// streaming callback, and the typed errors (inputs, configs that do not match the weights).
//
// Tolerance. The expected outputs were computed in float64 from the bf16 weights; the port runs fp32 with fp32
// accumulation. The fixture generator measures an fp32 PyTorch run at ~1e-6 absolute on the latents and ~1e-5 on the
// pixels (outputs of std 0.26-0.47). We require
//   * relative L2 error ||out - ref|| / ||ref|| <= 1e-4 (the brief's bound; about 10x the fp32 PyTorch error), and
//   * every element |out - ref| <= 1e-3 + 1e-3 |ref| (catches a few wrong pixels an L2 norm could hide; ~100x fp32).
// The perturbation test shows this is tight enough to see a 1% change in a single layer's weight.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "cpu/cpu_backend.h"
#include "tensor.h"
#include "test_util.h"
#include "wan_vae.h"
#include "vae_fixtures.h"
#include "weights/weight_file.h"

using namespace showo2;
using namespace showo2::test::vae;

namespace {

constexpr double kMaxRelL2 = 1e-4;
constexpr double kAtol = 1e-3;
constexpr double kRtol = 1e-3;

double relative_l2(const Tensor& out, const Tensor& ref) {
  return test::relative_l2(out.to_f32_vector(), ref.to_f32_vector());
}

// Checks shape, the relative L2 bound and the elementwise bound; prints the measured error either way.
void expect_matches(const Tensor& out, const Tensor& ref, const std::string& what) {
  if (out.shape() != ref.shape())
    test::fail_at(__FILE__, __LINE__, what + ": shape " + out.shape_string() + " vs reference " + ref.shape_string());
  const double rel = relative_l2(out, ref);
  std::printf("    %s: relative L2 error %.3g (bound %.0e)\n", what.c_str(), rel, kMaxRelL2);
  if (!(rel <= kMaxRelL2)) test::fail_at(__FILE__, __LINE__, what + ": relative L2 error above the bound");
  auto o = out.to_f32_vector(), r = ref.to_f32_vector();
  EXPECT_CLOSE(o.data(), r.data(), r.size(), kAtol, kRtol, what);
}

// A copy of the fixture weights as a safetensors file with one tensor multiplied by `factor`.
std::unique_ptr<weights::WeightFile> weights_with_scaled_tensor(const weights::WeightFile& src, const std::string& key,
                                                                float factor, const std::string& path) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  bool found = false;
  for (const auto& r : src.tensors()) {
    Tensor t = src.load(r.name);
    if (r.name == key) {
      std::vector<float> v = t.to_f32_vector();
      for (float& x : v) x *= factor;
      t = Tensor::from_f32(r.shape, v).to(r.dtype);
      found = true;
    }
    tensors.emplace_back(r.name, t);
  }
  if (!found) test::fail_at(__FILE__, __LINE__, "no tensor " + key + " in the fixture weights");
  weights::save_safetensors(path, tensors);
  return weights::open_weight_file(path);
}

std::string temp_path(const std::string& name) {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/showo2_wan_vae_test_" + name;
}

}  // namespace

SHOWO2_TEST(config_defaults_are_wan21_and_json_parses) {
  WanVaeConfig c;
  CHECK_EQ(c.dim, int64_t{96});
  CHECK_EQ(c.z_dim, int64_t{16});
  CHECK(c.dim_mult == std::vector<int64_t>({1, 2, 4, 4}));
  CHECK_EQ(c.spatial_stride(), int64_t{8});
  CHECK_EQ(c.temporal_stride(), int64_t{4});
  CHECK_EQ(c.latents_mean.size(), size_t{16});
  CHECK_EQ(c.latents_std[15], 1.9160f);
  c.validate();
  WanVaeConfig j = WanVaeConfig::from_json(R"({"dim": 8, "attn_scales": [0.5]})", "inline");
  CHECK_EQ(j.dim, int64_t{8});
  CHECK(j.attn_scales == std::vector<double>({0.5}));
  CHECK_EQ(j.z_dim, int64_t{16});
  CHECK_THROWS_CODE(WanVaeConfig::from_json(R"({"dim": "big"})", "inline"), InvalidArgument);
  CHECK_THROWS_CODE(WanVaeConfig::from_json(R"({"temperal_downsample": [true]})", "inline"), InvalidArgument);
  CHECK_THROWS_CODE(WanVaeConfig::from_json(R"({"z_dim": 8})", "inline"), InvalidArgument);  // 16 mean values
  // Found with test/fuzz/config_fuzz.cpp: 65 stages made spatial_stride() shift past 64 bits, 64 temporal stages
  // overflowed temporal_stride(), and huge channel multipliers overflowed the channel counts.
  auto error_of = [](const std::string& json) -> std::string {
    try {
      WanVaeConfig::from_json(json, "inline");
    } catch (const Error& e) {
      CHECK(e.code() == ErrorCode::InvalidArgument);
      return e.what();
    }
    return "(no error)";
  };
  std::string stages = R"({"dim_mult": [1)", temporal = R"(, "temperal_downsample": [true)";
  for (int i = 0; i < 16; ++i) {
    stages += ",1";
    if (i) temporal += ",true";
  }
  CHECK_EQ(error_of(stages + "]" + temporal + "]}"),
           std::string("inline: dim_mult: expected 2 to 16 stages but got 17"));
  CHECK_EQ(error_of(R"({"dim_mult": [1, 2, 4, 4398046511104]})"),
           std::string("inline: dim_mult: expected multipliers from 1 to 1048576"));
  CHECK_EQ(error_of(R"({"dim": 4398046511104})"),
           std::string("inline: dim: expected a positive integer up to 1048576 but got 4398046511104"));
}

SHOWO2_TEST(image_encode_and_decode_match_reference) {
  require_fixtures();
  Fixtures f;
  cpu::CpuBackend backend(2);
  WanVae vae(*f.weights, tiny_config(), backend);
  WanVae::Posterior p = vae.encode_posterior(f.get("image"));
  expect_matches(p.mean, f.get("image_latent"), "image latent (normalised mu)");
  expect_matches(p.logvar, f.get("image_logvar"), "image logvar");
  expect_matches(vae.decode(f.get("image_latent")), f.get("image_decoded"), "image decoded");
}

SHOWO2_TEST(video_encode_and_decode_match_reference) {
  require_fixtures();
  Fixtures f;
  cpu::CpuBackend backend(2);
  WanVae vae(*f.weights, tiny_config(), backend);
  expect_matches(vae.encode(f.get("video")), f.get("video_latent"), "video latent (5 frames -> 2)");
  expect_matches(vae.decode(f.get("video_latent")), f.get("video_decoded"), "video decoded (2 latents -> 5)");
}

SHOWO2_TEST(three_frame_decode_matches_reference_and_streams_chunks) {
  require_fixtures();
  Fixtures f;
  cpu::CpuBackend backend(2);
  WanVae vae(*f.weights, tiny_config(), backend);
  std::vector<std::pair<int64_t, int64_t>> chunks;  // (first frame, frame count)
  Tensor streamed = Tensor::zeros({1, 3, 9, 64, 64}, DType::F32);
  Tensor out = vae.decode(f.get("latent_for_decode"), [&](const Tensor& frames, int64_t first) {
    chunks.emplace_back(first, frames.size(2));
    Tensor dst = streamed.slice(2, first, first + frames.size(2));
    backend.copy(frames, dst);
  });
  expect_matches(out, f.get("latent_decoded"), "3 latents -> 9 frames");
  CHECK(chunks == (std::vector<std::pair<int64_t, int64_t>>{{0, 1}, {1, 4}, {5, 4}}));
  CHECK(streamed.to_f32_vector() == out.to_f32_vector());
  for (float v : out.to_f32_vector()) CHECK(v >= -1.0f && v <= 1.0f);
}

// WanVaeLayout::ChannelsLast (activations [N, T, H, W, C] in memory, conv weights [O, kt, kh, kw, C]: the layout the
// GPU runs fastest) computes the same function as the default layout: on the CPU backend the same bits, for encode,
// the chunked video decode and a tiled decode. This checks the layout plumbing of the model code (every activation
// allocation, the frame rings, the attention block's in-place tokens, the upsample3d frame interleave) here, where
// there is no GPU; the CUDA kernels' layouts are held to the CPU in the *_cuda tests.
SHOWO2_TEST(channels_last_layout_gives_the_same_bits) {
  require_fixtures();
  Fixtures f;
  cpu::CpuBackend backend(2);
  WanVae first(*f.weights, tiny_config(), backend, WanVaeLayout::ChannelsFirst);
  WanVae last(*f.weights, tiny_config(), backend, WanVaeLayout::ChannelsLast);
  WanVae automatic(*f.weights, tiny_config(), backend);
  CHECK(!first.channels_last());
  CHECK(last.channels_last());
  CHECK(!automatic.channels_last());  // the CPU backend prefers contiguous activations
  auto same = [](const Tensor& a, const Tensor& b, const char* what) {
    if (a.shape() != b.shape() || a.to_f32_vector() != b.to_f32_vector())
      test::fail_at(__FILE__, __LINE__, std::string(what) + ": channels-last result differs from channels-first");
  };
  const WanVae::Posterior pf = first.encode_posterior(f.get("video")), pl = last.encode_posterior(f.get("video"));
  same(pf.mean, pl.mean, "video encode (mean)");
  same(pf.logvar, pl.logvar, "video encode (logvar)");
  same(first.encode(f.get("image")), last.encode(f.get("image")), "image encode");
  same(first.decode(f.get("latent_for_decode")), last.decode(f.get("latent_for_decode")), "3-latent decode");
  WanVaeDecodeOptions tiled;
  tiled.tiling = WanVaeDecodeOptions::Tiling::On;
  tiled.tile_latent = 5;
  tiled.overlap_latent = 2;
  same(first.decode(f.get("video_latent"), tiled), last.decode(f.get("video_latent"), tiled), "tiled video decode");
  // And the channels-last model still meets the reference.
  expect_matches(last.decode(f.get("video_latent")), f.get("video_decoded"), "channels-last video decoded");
}

// A backend that prefers BF16 (or F16) activations but whose ops take F32 only: WanVae asks for what it prefers
// and the ops refuse with typed errors; nothing crashes and nothing is computed wrong silently.
class PrefersDtype : public cpu::CpuBackend {
 public:
  explicit PrefersDtype(DType d) : cpu::CpuBackend(1), dtype_(d) {}
  DType preferred_conv_activation_dtype() const override { return dtype_; }

 private:
  DType dtype_;
};

SHOWO2_TEST(activation_dtype_comes_from_the_backend) {
  require_fixtures();
  Fixtures f;
  cpu::CpuBackend cpu(1);
  CHECK(WanVae(*f.weights, tiny_config(), cpu).activation_dtype() == DType::F32);
  PrefersDtype bf16(DType::BF16);
  WanVae vae(*f.weights, tiny_config(), bf16);
  CHECK(vae.activation_dtype() == DType::BF16);
  CHECK_THROWS_CODE(vae.decode(f.get("image_latent")), UnsupportedDtype);
  CHECK_THROWS_CODE(vae.encode(f.get("image")), UnsupportedDtype);
  PrefersDtype f16(DType::F16);
  CHECK_THROWS_CODE(WanVae(*f.weights, tiny_config(), f16), UnsupportedDtype);
}

SHOWO2_TEST(bad_layout_is_a_typed_error) {
  require_fixtures();
  Fixtures f;
  cpu::CpuBackend backend(1);
  CHECK_THROWS_CODE(WanVae(*f.weights, tiny_config(), backend, static_cast<WanVaeLayout>(7)), InvalidArgument);
}

// The comparison is sharp enough to see a 1% change in one layer's weights, and the single-frame path really skips
// the upsample3d time_conv (spec §3.1 "Single-image simplification") while the multi-frame path really uses it.
SHOWO2_TEST(fixture_comparison_fails_when_one_weight_is_perturbed) {
  require_fixtures();
  Fixtures f;
  cpu::CpuBackend backend(2);
  const WanVaeConfig config = tiny_config();

  auto encoder_perturbed = weights_with_scaled_tensor(*f.weights, "encoder.middle.0.residual.6.weight", 1.01f,
                                                      temp_path("encoder_perturbed.safetensors"));
  WanVae vae_e(*encoder_perturbed, config, backend);
  const double enc_err = relative_l2(vae_e.encode(f.get("image")), f.get("image_latent"));
  std::printf("    encoder.middle.0.residual.6.weight x1.01: image latent relative L2 error %.3g\n", enc_err);
  CHECK(enc_err > kMaxRelL2);

  auto time_conv_perturbed = weights_with_scaled_tensor(*f.weights, "decoder.upsamples.3.time_conv.weight", 1.01f,
                                                        temp_path("time_conv_perturbed.safetensors"));
  WanVae vae_t(*time_conv_perturbed, config, backend);
  const double video_err = relative_l2(vae_t.decode(f.get("video_latent")), f.get("video_decoded"));
  const double image_err = relative_l2(vae_t.decode(f.get("image_latent")), f.get("image_decoded"));
  std::printf("    decoder.upsamples.3.time_conv.weight x1.01: video decode error %.3g, image decode error %.3g\n",
              video_err, image_err);
  CHECK(video_err > kMaxRelL2);
  CHECK(image_err <= kMaxRelL2);
  std::remove(temp_path("encoder_perturbed.safetensors").c_str());
  std::remove(temp_path("time_conv_perturbed.safetensors").c_str());
}

// The bf16 checkpoint and an F32 copy of it give the same outputs (the kernels widen bf16 exactly).
SHOWO2_TEST(f32_weights_give_the_same_result_as_bf16) {
  require_fixtures();
  Fixtures f;
  cpu::CpuBackend backend(2);
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const auto& r : f.weights->tensors()) tensors.emplace_back(r.name, f.weights->load(r.name).to(DType::F32));
  const std::string path = temp_path("f32.safetensors");
  weights::save_safetensors(path, tensors);
  auto f32_weights = weights::open_weight_file(path);
  WanVae vae_f32(*f32_weights, tiny_config(), backend);
  WanVae vae_bf16(*f.weights, tiny_config(), backend);
  const double err = relative_l2(vae_f32.decode(f.get("video_latent")), vae_bf16.decode(f.get("video_latent")));
  std::printf("    F32 vs BF16 weights, video decode: relative L2 difference %.3g\n", err);
  CHECK(err <= 1e-6);
  std::remove(path.c_str());
}

// Against the full-size Wan2.1 layout of spec §3.1: with an empty weight file, the default config's missing-key
// list names every published key with its shape; spot-check the ones the spec's key table spells out.
SHOWO2_TEST(default_config_expects_the_published_wan21_key_layout) {
  const std::string path = temp_path("empty.safetensors");
  weights::save_safetensors(path, {});
  auto empty = weights::open_weight_file(path);
  cpu::CpuBackend backend(1);
  try {
    WanVae vae(*empty, WanVaeConfig{}, backend);
    test::fail_at(__FILE__, __LINE__, "expected missing keys");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::InvalidArgument);
    const std::string msg = e.what();
    for (const char* key : {
             "encoder.conv1.weight [96, 3, 3, 3, 3]",
             "encoder.downsamples.2.resample.1.weight [96, 96, 3, 3]",
             "encoder.downsamples.3.shortcut.weight [192, 96, 1, 1, 1]",
             "encoder.downsamples.5.time_conv.weight [192, 192, 3, 1, 1]",
             "encoder.downsamples.8.time_conv.weight [384, 384, 3, 1, 1]",
             "encoder.downsamples.10.residual.6.weight [384, 384, 3, 3, 3]",
             "encoder.middle.1.norm.gamma [384, 1, 1]",
             "encoder.middle.1.to_qkv.weight [1152, 384, 1, 1]",
             "encoder.head.0.gamma [384, 1, 1, 1]",
             "encoder.head.2.weight [32, 384, 3, 3, 3]",
             "conv1.weight [32, 32, 1, 1, 1]",
             "conv2.weight [16, 16, 1, 1, 1]",
             "decoder.conv1.weight [384, 16, 3, 3, 3]",
             "decoder.upsamples.3.resample.1.weight [192, 384, 3, 3]",
             "decoder.upsamples.3.time_conv.weight [768, 384, 3, 1, 1]",
             "decoder.upsamples.4.shortcut.weight [384, 192, 1, 1, 1]",
             "decoder.upsamples.7.time_conv.weight [768, 384, 3, 1, 1]",
             "decoder.upsamples.8.residual.0.gamma [192, 1, 1, 1]",
             "decoder.upsamples.11.resample.1.weight [96, 192, 3, 3]",
             "decoder.upsamples.14.residual.6.weight [96, 96, 3, 3, 3]",
             "decoder.head.2.weight [3, 96, 3, 3, 3]",
         })
      if (msg.find(key) == std::string::npos) test::fail_at(__FILE__, __LINE__, std::string("not listed: ") + key);
    CHECK(msg.find("encoder.downsamples.11") == std::string::npos);
    CHECK(msg.find("decoder.upsamples.15") == std::string::npos);
    CHECK(msg.find("decoder.upsamples.11.time_conv") == std::string::npos);  // upsample2d: no time_conv
    CHECK(msg.find("encoder.downsamples.2.time_conv") == std::string::npos);  // downsample2d: no time_conv
  }
  std::remove(path.c_str());
}

SHOWO2_TEST(bad_inputs_are_typed_errors) {
  require_fixtures();
  Fixtures f;
  cpu::CpuBackend backend(1);
  WanVae vae(*f.weights, tiny_config(), backend);
  CHECK_THROWS_CODE(vae.encode(Tensor::zeros({1, 4, 1, 64, 64}, DType::F32)), ShapeMismatch);   // 4 channels
  CHECK_THROWS_CODE(vae.encode(Tensor::zeros({1, 3, 3, 64, 64}, DType::F32)), InvalidArgument);  // 3 frames
  CHECK_THROWS_CODE(vae.encode(Tensor::zeros({1, 3, 1, 60, 64}, DType::F32)), InvalidArgument);  // H % 8
  CHECK_THROWS_CODE(vae.encode(Tensor::zeros({1, 3, 1, 64, 64}, DType::F16)), UnsupportedDtype);
  CHECK_THROWS_CODE(vae.encode(Tensor::zeros({3, 1, 64, 64}, DType::F32)), ShapeMismatch);       // no T axis
  CHECK_THROWS_CODE(vae.decode(Tensor::zeros({1, 8, 1, 8, 8}, DType::F32)), ShapeMismatch);      // z_dim 16
  CHECK_THROWS_CODE(vae.decode(Tensor::zeros({1, 16, 1, 8, 8}, DType::BF16)), UnsupportedDtype);
  try {
    vae.encode(Tensor::zeros({1, 3, 6, 8, 8}, DType::F32));
    test::fail_at(__FILE__, __LINE__, "expected a frame count error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("6 frames") != std::string::npos);
  }
}

SHOWO2_TEST(config_that_does_not_match_the_weights_lists_the_keys) {
  require_fixtures();
  Fixtures f;
  cpu::CpuBackend backend(1);
  // dim 8: every width doubles, the key set is the same: one ERR_SHAPE_MISMATCH listing the wrongly shaped keys.
  WanVaeConfig wide = tiny_config();
  wide.dim = 8;
  try {
    WanVae vae(*f.weights, wide, backend);
    test::fail_at(__FILE__, __LINE__, "expected a shape mismatch");
  } catch (const Error& e) {
    const std::string msg = e.what();
    std::printf("    (expected error) %s: %.300s...\n", e.code_str(), msg.c_str());
    CHECK(e.code() == ErrorCode::ShapeMismatch);
    CHECK(msg.find("encoder.conv1.weight (expected [8, 3, 3, 3, 3], found [4, 3, 3, 3, 3])") != std::string::npos);
    CHECK(msg.find("decoder.head.2.weight") != std::string::npos);
  }
  // num_res_blocks 1: keys go missing from the config's point of view (unexpected in the file), and the decoder's
  // layer indices shift: ERR_INVALID_ARGUMENT naming both kinds.
  WanVaeConfig shallow = tiny_config();
  shallow.num_res_blocks = 1;
  try {
    WanVae vae(*f.weights, shallow, backend);
    test::fail_at(__FILE__, __LINE__, "expected an invalid argument");
  } catch (const Error& e) {
    const std::string msg = e.what();
    CHECK(e.code() == ErrorCode::InvalidArgument);
    CHECK(msg.find("unexpected keys") != std::string::npos);
    CHECK(msg.find("encoder.downsamples.10.residual.0.gamma") != std::string::npos);
  }
  // An attention scale the checkpoint does not have: its keys are missing.
  WanVaeConfig with_attention = tiny_config();
  with_attention.attn_scales = {1.0};
  try {
    WanVae vae(*f.weights, with_attention, backend);
    test::fail_at(__FILE__, __LINE__, "expected an invalid argument");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::InvalidArgument);
    CHECK(std::string(e.what()).find("missing keys") != std::string::npos);
    CHECK(std::string(e.what()).find("encoder.downsamples.1.to_qkv.weight") != std::string::npos);
  }
}

SHOWO2_TEST_MAIN()
