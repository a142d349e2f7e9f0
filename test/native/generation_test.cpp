// Generation (native/core/generation.cpp) on the CPU backend with a tiny random-weight Show-o2 written to a temporary
// safetensors file at test time (the published key layout at the tiny-model sizes of
// test/fixtures/showo2/tiny-model/config.json with a 512-token vocabulary; the committed tiny VAE).
//
// Checked:
//   * the prefix-caching path (reuse_prefix, spec §12: prefix K/V once, only the block per evaluation, suffix and pads
//     dropped, rows of different prefix lengths batched) equals the plain full-sequence computation: T2I with CFG and
//     two prompts of different lengths, a 2-latent-frame video, image-to-video; also Qwen2Model::forward_rows against
//     one forward per row;
//   * guidance 0 needs and computes no uncond branch and gives the cond velocity; the CFG combine on the model;
//   * image-to-video keeps frame 0 exactly equal to first_frame;
//   * the step callback (counts, times, the preview equals the result after the last Euler step), Heun's 2
//     evaluations per interval, seeded determinism;
//   * typed errors for every request field, and cancellation (no state left behind).
//
// Tolerance of reuse vs plain. Both paths run the same float32 operations on the same values; they differ only in
// how rows are batched (the GEMM kernel's blocking, hence summation order, depends on the number of rows) and in the
// attention's key tiling (the prefix keys come from the cache instead of the same call). That is float32 rounding,
// ~1e-7 relative per operation, amplified a little through 2 LLM layers, 2 head blocks and the ODE steps. We require
// max |reuse - plain| <= 2e-5 * max |plain| on velocities and final latents (measured values are printed; a wrong
// mask, position offset or modulation span changes outputs by 1e-2 .. 1 relative).
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "cpu/cpu_backend.h"
#include "generation.h"
#include "noise.h"
#include "showo2.h"
#include "showo2_random_model.h"
#include "tensor.h"
#include "test_util.h"
#include "text_sampler.h"
#include "understanding_session.h"
#include "weights/weight_file.h"

using namespace showo2;

namespace {

constexpr double kReuseRelToMax = 2e-5;  // reuse_prefix vs plain (see the header)

// Token ids of the 512-row tiny vocabulary (the real ids are > 151000; only their roles matter here).
constexpr int32_t kBos = 1, kEos = 2, kBoi = 3, kEoi = 4, kImgPad = 5, kBov = 6, kEov = 7, kVidPad = 8, kPad = 9;

std::string fixtures() { return SHOWO2_FIXTURES_DIR; }

std::string temp_path(const std::string& name) {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/showo2_generation_test_" + name;
}

struct TinyModel {
  cpu::CpuBackend backend{2};
  Showo2Config config;
  std::unique_ptr<weights::WeightFile> weights, vae;
  std::unique_ptr<Showo2Model> model;
};

// Built once: a random checkpoint written with save_safetensors and loaded back through the binder.
TinyModel& tiny() {
  static std::unique_ptr<TinyModel> m;
  if (m) return *m;
  const std::string vae_path = fixtures() + "/vae/tiny_vae.pth";
  if (!std::ifstream(vae_path).good() || !std::ifstream(fixtures() + "/showo2/tiny-model/config.json").good())
    test::skip_test("test/fixtures/vae/tiny_vae.pth or test/fixtures/showo2/tiny-model/config.json not present");
  auto made = std::make_unique<TinyModel>();
  made->config = test::tiny_showo2_config(fixtures());
  test::InMemoryWeights random;
  test::random_showo2_weights(made->config, 1234, random);
  std::vector<std::pair<std::string, Tensor>> tensors(random.all().begin(), random.all().end());
  const std::string path = temp_path("tiny.safetensors");
  weights::save_safetensors(path, tensors);
  made->weights = weights::open_weight_file(path);
  made->vae = weights::open_weight_file(vae_path);
  made->model = std::make_unique<Showo2Model>(made->config, *made->weights, *made->vae, made->backend);
  std::remove(path.c_str());  // the mapping stays valid
  m = std::move(made);
  return *m;
}

// The reference template (spec §2.3): [bos] text [boi] [pad]*(n_vis+1) [eoi] [eos] [PAD]*(max_text_len - len(text)).
GenerationSequence sequence(const std::vector<int32_t>& text, int64_t n_vis, int64_t max_text_len, bool video = false) {
  GenerationSequence s;
  s.ids.push_back(kBos);
  s.ids.insert(s.ids.end(), text.begin(), text.end());
  s.ids.push_back(video ? kBov : kBoi);
  s.block_offset = static_cast<int64_t>(s.ids.size());
  s.ids.insert(s.ids.end(), static_cast<size_t>(n_vis + 1), video ? kVidPad : kImgPad);
  s.ids.push_back(video ? kEov : kEoi);
  s.ids.push_back(kEos);
  s.ids.insert(s.ids.end(), static_cast<size_t>(max_text_len - static_cast<int64_t>(text.size())), kPad);
  return s;
}

std::vector<int32_t> text(int n, int32_t first) {
  std::vector<int32_t> t;
  for (int i = 0; i < n; ++i) t.push_back(static_cast<int32_t>(10 + (first + 37 * i) % 500));
  return t;
}

// T2I with two prompts of different lengths (3 and 7 tokens), 8x8 latents (16 visual tokens), CFG 5, N = 4.
GenerationRequest t2i_request() {
  GenerationRequest r;
  const int64_t n_vis = 16, max_text = 10;
  r.cond = {sequence(text(3, 1), n_vis, max_text), sequence(text(7, 100), n_vis, max_text)};
  r.uncond = sequence({}, n_vis, max_text);
  r.latent_shape = {2, 16, 1, 8, 8};
  r.seed = 7;
  r.sampler.num_inference_steps = 4;
  r.sampler.guidance_scale = 5.0f;
  return r;
}

// T2V: 2 latent frames of 8x8 (32 visual tokens), video tokens, CFG 3, N = 3.
GenerationRequest t2v_request() {
  GenerationRequest r;
  const int64_t n_vis = 32, max_text = 8;
  r.cond = {sequence(text(5, 7), n_vis, max_text, true)};
  r.uncond = sequence({}, n_vis, max_text, true);
  r.latent_shape = {1, 16, 2, 8, 8};
  r.seed = 11;
  r.sampler.num_inference_steps = 3;
  r.sampler.guidance_scale = 3.0f;
  return r;
}

GenerationRequest i2v_request() {
  GenerationRequest r = t2v_request();
  r.first_frame = Tensor::from_f32({1, 16, 1, 8, 8}, test::random_normal(16 * 64, 99));
  r.seed = 12;
  return r;
}

struct Compare {
  double max_err, max_ref;
};

Compare compare(const Tensor& out, const Tensor& ref) {
  const auto o = out.to_f32_vector(), r = ref.to_f32_vector();
  Compare c{0, 0};
  for (size_t i = 0; i < r.size(); ++i) {
    c.max_err = std::max(c.max_err, std::fabs(static_cast<double>(o[i]) - r[i]));
    c.max_ref = std::max(c.max_ref, std::fabs(static_cast<double>(r[i])));
  }
  return c;
}

void expect_reuse_matches(const Tensor& reuse, const Tensor& plain, const std::string& what) {
  CHECK(reuse.shape() == plain.shape());
  const Compare c = compare(reuse, plain);
  std::printf("    %s: max |reuse - plain| %.3g = %.3g of max|plain| %.3g (bound %.0e)\n", what.c_str(), c.max_err,
              c.max_err / c.max_ref, c.max_ref, kReuseRelToMax);
  const auto o = reuse.to_f32_vector(), r = plain.to_f32_vector();
  EXPECT_CLOSE(o.data(), r.data(), r.size(), kReuseRelToMax * c.max_ref, 0.0, what);
}

void expect_reuse_matches_plain(GenerationRequest r, const std::string& what) {
  TinyModel& m = tiny();
  const Tensor x = gaussian_noise(r.latent_shape, 5);
  r.reuse_prefix = true;
  const Tensor v_reuse = guided_velocity(*m.model, r, x, 0.3);
  const Tensor final_reuse = generate_latents(*m.model, r);
  r.reuse_prefix = false;
  const Tensor v_plain = guided_velocity(*m.model, r, x, 0.3);
  const Tensor final_plain = generate_latents(*m.model, r);
  CHECK(v_reuse.shape() == r.latent_shape);
  expect_reuse_matches(v_reuse, v_plain, what + " guided velocity at t = 0.3");
  expect_reuse_matches(final_reuse, final_plain, what + " final latent");
  // Not trivially equal: the velocity is far from zero and from the state.
  CHECK(compare(v_plain, Tensor::zeros(v_plain.shape(), DType::F32)).max_err > 0.1);
}

}  // namespace

SHOWO2_TEST(reuse_prefix_matches_plain_t2i_cfg_two_prompts) { expect_reuse_matches_plain(t2i_request(), "T2I B=2"); }

SHOWO2_TEST(reuse_prefix_matches_plain_t2v_two_frames) { expect_reuse_matches_plain(t2v_request(), "T2V T=2"); }

SHOWO2_TEST(reuse_prefix_matches_plain_i2v) { expect_reuse_matches_plain(i2v_request(), "I2V T=2"); }

SHOWO2_TEST(reuse_prefix_matches_plain_heun_and_duplicate_prompts) {
  GenerationRequest r = t2i_request();
  r.cond[1] = r.cond[0];  // one distinct cond prefix shared by two rows
  r.sampler.solver = OdeSolver::Heun;
  r.sampler.num_inference_steps = 3;
  expect_reuse_matches_plain(r, "T2I Heun, duplicate prompts");
}

SHOWO2_TEST(forward_rows_matches_one_forward_per_row) {
  // Two rows continuing caches of different lengths in one batched call == each row alone (spec §12 batching).
  TinyModel& m = tiny();
  Qwen2Model& llm = m.model->llm();
  const int64_t H = m.config.hidden_size;
  const std::vector<int64_t> prefix = {3, 9};
  std::vector<std::unique_ptr<Qwen2KvCache>> alone, batched;
  for (int64_t P : prefix) {
    Tensor ids = Tensor::empty({1, P}, DType::I32);
    for (int64_t i = 0; i < P; ++i) ids.mutable_data<int32_t>()[i] = static_cast<int32_t>(20 + 3 * i + P);
    alone.push_back(std::make_unique<Qwen2KvCache>(m.config.llm, 1));
    batched.push_back(std::make_unique<Qwen2KvCache>(m.config.llm, 1));
    llm.forward(llm.embed_tokens(ids), {}, *alone.back());
    llm.forward(llm.embed_tokens(ids), {}, *batched.back());
  }
  const int64_t Lb = 5;
  Tensor block = Tensor::from_f32({2, Lb, H}, test::random_normal(static_cast<size_t>(2 * Lb * H), 3));
  std::vector<CacheRows> groups;
  for (int64_t r = 0; r < 2; ++r)
    groups.push_back(CacheRows{r, r + 1, batched[static_cast<size_t>(r)].get(), {{BidirectionalBlock{prefix[static_cast<size_t>(r)], Lb}}}});
  Tensor out = llm.forward_rows(block, groups);  // [2, Lb, H]
  for (int64_t r = 0; r < 2; ++r) {
    Tensor one = llm.forward(block.slice(0, r, r + 1).contiguous(), {{BidirectionalBlock{prefix[static_cast<size_t>(r)], Lb}}},
                             *alone[static_cast<size_t>(r)]);
    expect_reuse_matches(out.slice(0, r, r + 1).contiguous(), one, "forward_rows row " + std::to_string(r));
    CHECK_EQ(batched[static_cast<size_t>(r)]->length(), prefix[static_cast<size_t>(r)] + Lb);
  }
}

SHOWO2_TEST(guidance_zero_is_the_cond_velocity_and_needs_no_uncond) {
  TinyModel& m = tiny();
  GenerationRequest r = t2i_request();
  const Tensor x = gaussian_noise(r.latent_shape, 21);
  r.sampler.guidance_scale = 0.0f;
  r.uncond = GenerationSequence{};  // invalid on purpose: with g = 0 it is neither checked nor computed
  const Tensor v_cond = guided_velocity(*m.model, r, x, 0.25);
  // v_uncond alone: the uncond sequence as the "cond" of a g = 0 request.
  GenerationRequest u = t2i_request();
  const GenerationSequence empty = u.uncond;
  u.cond = {empty, empty};
  u.sampler.guidance_scale = 0.0f;
  const Tensor v_uncond = guided_velocity(*m.model, u, x, 0.25);
  // CFG on the model: v(g) = v_u + g (v_c - v_u), for g = 5 and g = 1 (= v_c).
  for (float g : {5.0f, 1.0f}) {
    GenerationRequest c = t2i_request();
    c.sampler.guidance_scale = g;
    const Tensor v = guided_velocity(*m.model, c, x, 0.25);
    const auto vc = v_cond.to_f32_vector(), vu = v_uncond.to_f32_vector();
    std::vector<float> expected(vc.size());
    for (size_t i = 0; i < vc.size(); ++i) expected[i] = vu[i] + g * (vc[i] - vu[i]);
    const auto got = v.to_f32_vector();
    const double scale = compare(Tensor::from_f32(v.shape(), expected), Tensor::zeros(v.shape(), DType::F32)).max_err;
    std::printf("    CFG g=%.0f vs v_u + g (v_c - v_u) from separate runs\n", g);
    EXPECT_CLOSE(got.data(), expected.data(), expected.size(), 2e-5 * scale, 0.0, "CFG combine");
  }
  // The branches really differ (the prompt matters), so the checks above can fail.
  CHECK(compare(v_cond, v_uncond).max_err > 1e-2);
}

SHOWO2_TEST(i2v_keeps_frame0_exactly) {
  TinyModel& m = tiny();
  GenerationRequest r = i2v_request();
  const Tensor out = generate_latents(*m.model, r);
  const auto frame0 = out.slice(2, 0, 1).contiguous().to_f32_vector();
  const auto cond = r.first_frame.to_f32_vector();
  for (size_t i = 0; i < cond.size(); ++i)
    if (frame0[i] != cond[i]) test::fail_at(__FILE__, __LINE__, "frame 0 differs at " + std::to_string(i));
  // Frame 1 moved away from its noise; the velocity of frame 0 is zero.
  const Tensor noise = gaussian_noise(r.latent_shape, r.seed);
  CHECK(compare(out.slice(2, 1, 2).contiguous(), noise.slice(2, 1, 2).contiguous()).max_err > 0.1);
  const Tensor v = guided_velocity(*m.model, r, noise, 0.5);
  CHECK_EQ(compare(v.slice(2, 0, 1).contiguous(), Tensor::zeros({1, 16, 1, 8, 8}, DType::F32)).max_err, 0.0);
}

SHOWO2_TEST(step_callback_heun_evaluations_and_determinism) {
  TinyModel& m = tiny();
  GenerationRequest r = t2i_request();
  std::vector<int64_t> steps, evals;
  std::vector<double> times;
  Tensor last_preview;
  const Tensor out = generate_latents(*m.model, r, [&](const GenerationStep& s) {
    steps.push_back(s.step);
    evals.push_back(s.model_evaluations);
    times.push_back(s.t);
    CHECK_EQ(s.total_steps, int64_t{3});
    CHECK(s.latents.shape() == r.latent_shape && s.predicted_clean.shape() == r.latent_shape);
    if (s.step == s.total_steps)  // a copy: the callback's tensors are only valid during the call
      last_preview = Tensor::from_f32(s.predicted_clean.shape(), s.predicted_clean.to_f32_vector());
  });
  CHECK_EQ(steps, (std::vector<int64_t>{1, 2, 3}));
  CHECK_EQ(evals, (std::vector<int64_t>{1, 2, 3}));
  const std::vector<double> grid = flow_time_grid(4, 3.0);
  CHECK_EQ(times, (std::vector<double>{grid[1], grid[2], grid[3]}));
  // After the last Euler interval (to t = 1) the preview x + (1 - t_prev) v is the result itself.
  CHECK_EQ(compare(last_preview, out).max_err, 0.0);

  // Seeded determinism; initial_latents = the seed's noise gives the same result; another seed differs.
  CHECK_EQ(compare(generate_latents(*m.model, r), out).max_err, 0.0);
  GenerationRequest given = r;
  given.initial_latents = gaussian_noise(r.latent_shape, r.seed);
  given.seed = 999;
  CHECK_EQ(compare(generate_latents(*m.model, given), out).max_err, 0.0);
  GenerationRequest other = r;
  other.seed = 8;
  CHECK(compare(generate_latents(*m.model, other), out).max_err > 0.1);

  // Heun: two evaluations per interval.
  r.sampler.solver = OdeSolver::Heun;
  evals.clear();
  generate_latents(*m.model, r, [&](const GenerationStep& s) { evals.push_back(s.model_evaluations); });
  CHECK_EQ(evals, (std::vector<int64_t>{2, 4, 6}));
}

SHOWO2_TEST(request_errors_are_typed) {
  TinyModel& m = tiny();
  Showo2Model& model = *m.model;
  auto with = [](auto edit) {
    GenerationRequest r = t2i_request();
    edit(r);
    return r;
  };
  // Latent shape.
  CHECK_THROWS_CODE(generate_latents(model, with([](GenerationRequest& r) { r.latent_shape = {2, 16, 1, 8, 7}; })),
                    InvalidArgument);  // w not a multiple of the patch
  CHECK_THROWS_CODE(generate_latents(model, with([](GenerationRequest& r) { r.latent_shape = {2, 16, 1, 9, 8}; })),
                    InvalidArgument);
  CHECK_THROWS_CODE(generate_latents(model, with([](GenerationRequest& r) { r.latent_shape = {2, 16, 8, 8}; })),
                    InvalidArgument);  // 4-D
  CHECK_THROWS_CODE(generate_latents(model, with([](GenerationRequest& r) { r.latent_shape = {2, 8, 1, 8, 8}; })),
                    InvalidArgument);  // channels
  CHECK_THROWS_CODE(generate_latents(model, with([](GenerationRequest& r) { r.latent_shape = {3, 16, 1, 8, 8}; })),
                    InvalidArgument);  // batch vs prompts
  CHECK_THROWS_CODE(generate_latents(model, with([](GenerationRequest& r) { r.cond.clear(); })), InvalidArgument);
  // Sampler.
  for (int64_t n : {0, 1})
    CHECK_THROWS_CODE(generate_latents(model, with([n](GenerationRequest& r) { r.sampler.num_inference_steps = n; })),
                      InvalidArgument);
  CHECK_THROWS_CODE(generate_latents(model, with([](GenerationRequest& r) { r.sampler.guidance_scale = -1.0f; })),
                    InvalidArgument);
  CHECK_THROWS_CODE(generate_latents(model, with([](GenerationRequest& r) { r.sampler.time_shift = 0.0; })),
                    InvalidArgument);
  // Video T inconsistent with the sequence: a T = 2 latent needs 2 * 16 + 1 placeholders, the ids hold 17.
  CHECK_THROWS_CODE(generate_latents(model, with([](GenerationRequest& r) { r.latent_shape = {2, 16, 2, 8, 8}; })),
                    InvalidArgument);
  // ... and the other way round: a T = 1 latent with a 2-frame video sequence.
  {
    GenerationRequest r = t2v_request();
    r.latent_shape = {1, 16, 1, 8, 8};
    CHECK_THROWS_CODE(generate_latents(model, r), InvalidArgument);
  }
  // block_offset / ids inconsistent with the latent shape.
  CHECK_THROWS_CODE(generate_latents(model, with([](GenerationRequest& r) { r.cond[1].block_offset += 1; })),
                    InvalidArgument);
  CHECK_THROWS_CODE(generate_latents(model, with([](GenerationRequest& r) { r.cond[0].block_offset -= 1; })),
                    InvalidArgument);
  CHECK_THROWS_CODE(generate_latents(model, with([](GenerationRequest& r) { r.uncond.block_offset = -1; })),
                    InvalidArgument);
  CHECK_THROWS_CODE(generate_latents(model, with([](GenerationRequest& r) { r.cond[0].ids.resize(8); })),
                    InvalidArgument);  // the block does not fit
  CHECK_THROWS_CODE(generate_latents(model, with([](GenerationRequest& r) { r.cond[0].ids[0] = 512; })),
                    InvalidArgument);  // outside the vocabulary
  // Too long for the context (4096 positions in the tiny config).
  CHECK_THROWS_CODE(generate_latents(model, with([](GenerationRequest& r) {
                      r.cond[0] = sequence(text(5000, 3), 16, 5000);
                    })),
                    InvalidArgument);
  // initial_latents / first_frame.
  CHECK_THROWS_CODE(generate_latents(model, with([](GenerationRequest& r) {
                      r.initial_latents = Tensor::zeros({2, 16, 1, 8, 6}, DType::F32);
                    })),
                    ShapeMismatch);
  CHECK_THROWS_CODE(generate_latents(model, with([](GenerationRequest& r) {
                      r.first_frame = Tensor::zeros({2, 16, 1, 8, 8}, DType::F32);  // an image has no frame 1
                    })),
                    InvalidArgument);
  {
    GenerationRequest r = i2v_request();
    r.first_frame = Tensor::zeros({1, 16, 2, 8, 8}, DType::F32);
    CHECK_THROWS_CODE(generate_latents(model, r), ShapeMismatch);
  }
  CHECK_THROWS_CODE(guided_velocity(model, t2i_request(), Tensor::zeros({2, 16, 1, 8, 6}, DType::F32), 0.5),
                    ShapeMismatch);
}

SHOWO2_TEST(cancellation_stops_and_leaves_no_state) {
  TinyModel& m = tiny();
  for (bool reuse : {true, false}) {
    GenerationRequest r = t2i_request();
    r.reuse_prefix = reuse;
    int total = 0;  // polls of an uncancelled run
    const Tensor expected = generate_latents(*m.model, r, {}, [&]() { return ++total < 0; });
    std::printf("    reuse_prefix=%d: %d cancellation polls in a run\n", reuse ? 1 : 0, total);
    CHECK(total > 3 * 2 * 3);  // at least between the layers of every evaluation
    // Cancel at poll k + 1 for k covering the prefix computation, the first evaluation and the last steps.
    for (int k : {0, 1, 3, 7, total / 2, total - 1}) {
      int polls = 0;
      bool cancelled = false;
      try {
        generate_latents(*m.model, r, {}, [&]() { return ++polls > k; });
      } catch (const Error& e) {
        cancelled = e.code() == ErrorCode::Cancelled;
        if (!cancelled) throw;
      }
      CHECK(cancelled);
    }
    // A later run is unaffected (every cache lived inside the cancelled call).
    CHECK_EQ(compare(generate_latents(*m.model, r), expected).max_err, 0.0);
  }
}

SHOWO2_TEST(unpatchify_is_the_channels_last_reinterpretation) {
  cpu::CpuBackend backend(1);
  // Two frames of a 4x6 latent with z = 16 and p = 2: 2 * 2 * 3 = 12 tokens of 64 values, value = flat index.
  const int64_t z = 16, T = 2, h = 4, w = 6, per_frame = (h / 2) * (w / 2);
  std::vector<float> values(static_cast<size_t>(T * per_frame * 64));
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i);
  const Tensor tokens = Tensor::from_f32({T * per_frame, 64}, values);
  Tensor out = Tensor::zeros({z, T, h, w}, DType::F32);
  unpatchify(backend, tokens, out);
  const float* o = out.data<float>();
  for (int64_t c = 0; c < z; ++c)
    for (int64_t f = 0; f < T; ++f)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) {
          const float want = static_cast<float>(f * h * w * z + (y * w + x) * z + c);  // spec §6.2
          const float got = o[((c * T + f) * h + y) * w + x];
          if (got != want)
            test::fail_at(__FILE__, __LINE__, "v[" + std::to_string(c) + "," + std::to_string(f) + "," +
                                                  std::to_string(y) + "," + std::to_string(x) + "] = " +
                                                  std::to_string(got) + ", expected " + std::to_string(want));
        }
  // Token 0 covers raster pixels 0..3 of row 0, not the 2x2 patch (0,0),(0,1),(1,0),(1,1) (spec §6.2).
  CHECK_EQ(o[0 * w + 2], 2.0f * z);  // channel 0, frame 0, y 0, x 2: token 0's third pixel
  CHECK_EQ(o[1 * w + 0], 6.0f * z);  // channel 0, y 1, x 0: raster pixel 6 -> token 1
}

SHOWO2_TEST_MAIN()

// ---- mixed modality: an image drawn inside a conversation (spec §8.4; understanding_session.h) ---------------------
//
// The cond branch continues an UnderstandingSession created with flow_head_context: its LLM cache and its flow-head
// cache (computed incrementally from the kept LLM states) are the prefix. Checked here: with a text-only history the
// result equals the plain full-sequence computation of the same ids; with an earlier image in the history (its own
// TIME(1.0) block, modulated in the head) an incremental conversation (several appends, a head sync half-way, a
// discarded tail) equals a fresh session that appends the whole history at once; and the session's caches come back
// unchanged. The independent check against the PyTorch reference is test/unit/mixed-parity.test.ts.

namespace {

// A conversation's image-generation request: the cond row continues `prefix`; ids are the session's plus the block.
GenerationRequest conversation_request(UnderstandingSession& session, const CachedPrefix& prefix, int64_t n_vis) {
  GenerationRequest r;
  GenerationSequence cond;
  cond.ids = session.ids();
  cond.block_offset = static_cast<int64_t>(cond.ids.size());
  cond.ids.insert(cond.ids.end(), static_cast<size_t>(n_vis + 1), kImgPad);
  cond.ids.push_back(kEoi);
  cond.cached_prefix = prefix;
  r.cond = {cond};
  r.uncond = sequence({}, n_vis, 4);
  r.latent_shape = {1, 16, 1, 8, 8};
  r.seed = 21;
  r.sampler.num_inference_steps = 4;
  r.sampler.guidance_scale = 3.0f;
  return r;
}

// [boi] TIME(t) visual tokens of `latent` [eoi] starting at `start` (the image's chunk inside a conversation).
SequenceChunk image_chunk(Showo2Model& model, int64_t start, const Tensor& latent, float t) {
  SequenceChunk c;
  const Tensor tokens = model.visual_tokens(latent);  // [1, n, hidden]
  const int64_t n = tokens.size(1);
  c.ids.push_back(kBoi);
  c.ids.insert(c.ids.end(), static_cast<size_t>(n + 1), kImgPad);
  c.ids.push_back(kEoi);
  c.times.push_back(TimeInsert{start + 1, t});
  c.visuals.push_back(VisualInsert{start + 2, tokens.reshape({n, tokens.size(2)})});
  c.blocks.push_back(BidirectionalBlock{start + 1, n + 1});
  return c;
}

SequenceChunk text_chunk(const std::vector<int32_t>& ids) {
  SequenceChunk c;
  c.ids = ids;
  return c;
}

}  // namespace

SHOWO2_TEST(conversation_prefix_text_only_matches_plain_sequence) {
  TinyModel& m = tiny();
  const int64_t n_vis = 16;
  UnderstandingSession session(*m.model, /*flow_head_context=*/true);
  std::vector<int32_t> first = {kBos};
  const std::vector<int32_t> words = text(6, 3);
  first.insert(first.end(), words.begin(), words.begin() + 4);
  session.append(text_chunk(first));
  session.append(text_chunk({words[4]}));          // one token at a time, as a decode loop appends
  session.append(text_chunk({words[5], kBoi}));
  GenerationRequest in_context = conversation_request(session, session.generation_prefix(), n_vis);
  // The same ids as a plain sequence ([bos] text [boi] block [eoi]), every evaluation from scratch.
  GenerationRequest plain = in_context;
  plain.cond[0].cached_prefix = CachedPrefix{};
  plain.reuse_prefix = false;
  const Tensor x = gaussian_noise(in_context.latent_shape, 5);
  expect_reuse_matches(guided_velocity(*m.model, in_context, x, 0.3), guided_velocity(*m.model, plain, x, 0.3),
                       "conversation (text only) vs plain: guided velocity at t = 0.3");
  expect_reuse_matches(generate_latents(*m.model, in_context), generate_latents(*m.model, plain),
                       "conversation (text only) vs plain: final latent");
  CHECK_EQ(session.length(), static_cast<int64_t>(first.size()) + 3);  // generation left the caches as they were
}

SHOWO2_TEST(conversation_prefix_with_history_image_incremental_equals_whole) {
  TinyModel& m = tiny();
  const int64_t n_vis = 16;
  const Tensor history_latent = Tensor::from_f32({1, 16, 1, 8, 8}, test::random_normal(16 * 64, 41));
  const std::vector<int32_t> before = {kBos, 20, 21, 22}, after = {23, 24, 25, kBoi};

  // Incremental: text, image (head synced right after it), text one token at a time with a discarded detour.
  UnderstandingSession incremental(*m.model, true);
  incremental.append(text_chunk(before));
  incremental.append(image_chunk(*m.model, incremental.length(), history_latent, 1.0f));
  (void)incremental.generation_prefix();  // a sync half-way
  incremental.append(text_chunk({after[0]}));
  const int64_t keep = incremental.length();
  incremental.append(text_chunk({30, 31, 32}));
  (void)incremental.generation_prefix();  // the detour reaches the head too, then is discarded
  incremental.truncate(keep);
  incremental.append(text_chunk({after[1], after[2]}));
  incremental.append(text_chunk({after[3]}));

  // Whole: one chunk with the same ids, TIME and visual tokens.
  UnderstandingSession whole(*m.model, true);
  SequenceChunk all = text_chunk(before);
  SequenceChunk image = image_chunk(*m.model, static_cast<int64_t>(before.size()), history_latent, 1.0f);
  all.ids.insert(all.ids.end(), image.ids.begin(), image.ids.end());
  all.times = image.times;
  all.visuals = image.visuals;
  all.blocks = image.blocks;
  all.ids.insert(all.ids.end(), after.begin(), after.end());
  whole.append(all);
  CHECK(incremental.ids() == whole.ids());

  GenerationRequest a = conversation_request(incremental, incremental.generation_prefix(), n_vis);
  GenerationRequest b = conversation_request(whole, whole.generation_prefix(), n_vis);
  const Tensor x = gaussian_noise(a.latent_shape, 6);
  const Tensor va = guided_velocity(*m.model, a, x, 0.4), vb = guided_velocity(*m.model, b, x, 0.4);
  expect_reuse_matches(va, vb, "conversation with an image: incremental vs whole, velocity");
  expect_reuse_matches(generate_latents(*m.model, a), generate_latents(*m.model, b),
                       "conversation with an image: incremental vs whole, final latent");

  // The history image matters, and so does its TIME (the head's modulation and the LLM's TIME token).
  UnderstandingSession other_time(*m.model, true);
  SequenceChunk all_t0 = all;
  all_t0.times[0].t = 0.0f;
  other_time.append(all_t0);
  GenerationRequest c = conversation_request(other_time, other_time.generation_prefix(), n_vis);
  const Compare d = compare(guided_velocity(*m.model, c, x, 0.4), vb);
  std::printf("    history image at TIME(0) instead of TIME(1): max |dv| %.3g of %.3g\n", d.max_err, d.max_ref);
  CHECK(d.max_err > 1e-3 * d.max_ref);
  // Generation leaves the conversation as it was: a second run gives the same velocity.
  CHECK_EQ(compare(guided_velocity(*m.model, a, x, 0.4), va).max_err, 0.0);
}

SHOWO2_TEST(conversation_prefix_errors_are_typed) {
  TinyModel& m = tiny();
  UnderstandingSession plain_session(*m.model);  // no flow-head context
  plain_session.append(text_chunk({kBos, 20, kBoi}));
  CHECK_THROWS_CODE(plain_session.generation_prefix(), InvalidArgument);

  UnderstandingSession session(*m.model, true);
  session.append(text_chunk({kBos, 20, kBoi}));
  GenerationRequest r = conversation_request(session, session.generation_prefix(), 16);
  GenerationRequest no_reuse = r;
  no_reuse.reuse_prefix = false;
  CHECK_THROWS_CODE(generate_latents(*m.model, no_reuse), InvalidArgument);
  GenerationRequest wrong_offset = r;
  wrong_offset.cond[0].ids.insert(wrong_offset.cond[0].ids.begin() + 1, 21);  // block one later than the caches
  wrong_offset.cond[0].block_offset += 1;
  CHECK_THROWS_CODE(generate_latents(*m.model, wrong_offset), InvalidArgument);
  GenerationRequest uncond_cached = r;
  uncond_cached.uncond.cached_prefix = r.cond[0].cached_prefix;
  CHECK_THROWS_CODE(generate_latents(*m.model, uncond_cached), InvalidArgument);
}

SHOWO2_TEST(sampler_bans_and_logit_bias) {
  SamplingParams params;
  params.logit_bias = {{2, 5.0f}};
  TextSampler sampler(params);
  const std::vector<float> logits = {0.0f, 3.0f, 1.0f, -1.0f};
  CHECK_EQ(sampler.sample(logits.data(), 4, {}), 2);        // 1 + 5 beats 3
  CHECK_EQ(sampler.sample(logits.data(), 4, {}, {2}), 1);   // banned this call only
  CHECK_EQ(sampler.sample(logits.data(), 4, {}), 2);
  CHECK_THROWS_CODE(sampler.sample(logits.data(), 4, {}, {0, 1, 2, 3}), InvalidArgument);  // nothing left
  CHECK_THROWS_CODE(sampler.sample(logits.data(), 4, {}, {7}), InvalidArgument);           // outside the vocabulary
  SamplingParams bad;
  bad.logit_bias = {{1, std::numeric_limits<float>::infinity()}};
  CHECK_THROWS_CODE(TextSampler{bad}, InvalidArgument);
}
