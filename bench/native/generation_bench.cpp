// Times image generation (native/core/generation.cpp) on the CPU backend with random weights made in memory, with
// the prefix-caching speed-ups of spec §12 on ("_reuse") and off ("_full": every evaluation runs the whole sequence,
// suffix and pads included, as the reference does), for comparison with bench/torch/showo2_gen_baseline.py.
//
//   generation_bench [--threads N] [--json] [--cases tiny,1p5b] [--iters 5] [--fixtures DIR] [--max-text-len 16]
//
// Cases (JSON lines for bench/cpu_vs_torch.py, ms per call):
//   gen_step_tiny_{reuse,full}       one guided velocity evaluation (CFG 5: cond + uncond rows), tiny model
//   gen_generate_tiny_{reuse,full}   the whole ODE, N = 5 grid points (4 evaluations), tiny model
//   gen_step_1p5b_{reuse,full}       one guided velocity evaluation with the published 1.5B shapes (Qwen2.5-1.5B,
//                                    26 semantic layers, the 10-block head) and random BF16 weights (~5.7 GB)
// The tiny model is test/fixtures/showo2/tiny-model/config.json (vocabulary 151669) with random F32 weights; a 64x64
// image (8x8 latent, 16 visual tokens). The 1.5B case: a 256x256 image (32x32 latent, 16x16 = 256 visual tokens,
// block 257). As in the torch twin: a 12-token prompt with ids (i * 7919 + 13) % vocab, max_text_len 16, so the
// sequences of spec §2.3 are 37 (tiny) and 277 (1.5B) positions long (the "_full" cost includes the 4 pads), CFG 5,
// shift 3. Both need the committed tiny VAE (test/fixtures/vae/tiny_vae.pth): the VAE is not part of
// the timed work, and the model constructor needs one.
//
// A "_reuse" step includes computing the prompt prefixes (once per call here; once per generation in real use): for
// these prompts that is 14 of the 37 / 277 positions (the uncond prefix: 2). Timing: one warm-up call, then the median of `iters` calls
// (1.5B: 1 warm-up + 1 timed call per case by default; each call takes seconds at 2 threads).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "cpu/cpu_backend.h"
#include "cpu/cpu_features.h"
#include "cpu/thread_pool.h"
#include "dtype.h"
#include "generation.h"
#include "noise.h"
#include "showo2.h"
#include "showo2_random_model.h"
#include "tensor.h"
#include "wan_vae.h"
#include "weights/weight_file.h"

using namespace showo2;

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

// The directory of this source file's repository checkout: <repo>/bench/native/generation_bench.cpp.
std::string default_fixtures() {
  std::string f = __FILE__;
  const size_t at = f.rfind("bench/native/");
  return (at == std::string::npos ? std::string("test/fixtures") : f.substr(0, at) + "test/fixtures");
}

// Uniform values with standard deviation `stddev` (U(+-sqrt(3) stddev)) from a counter hash, in parallel: fast enough
// for 2.8 B parameters. Only scale and finiteness matter for timing.
Tensor random_fast(const Shape& shape, float stddev, float offset, uint64_t seed, DType dtype, cpu::ThreadPool& pool) {
  Tensor t = Tensor::empty(shape, dtype);
  const int64_t n = t.numel();
  const float a = std::sqrt(3.0f) * stddev;
  pool.parallel_for((n + 4095) / 4096, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin * 4096; i < std::min(n, end * 4096); ++i) {
      uint64_t z = seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(i) * 0xD1B54A32D192ED03ull;
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      z ^= z >> 31;
      const float v = offset + (2.0f * static_cast<float>(z >> 40) * (1.0f / 16777216.0f) - 1.0f) * a;
      if (dtype == DType::BF16) t.mutable_data<uint16_t>()[i] = f32_to_bf16(v);
      else t.mutable_data<float>()[i] = v;
    }
  });
  return t;
}

void random_weights(const Showo2Config& config, DType dtype, cpu::ThreadPool& pool, test::InMemoryWeights& out) {
  uint64_t seed = 1;
  for (const test::KeySpec& k : test::showo2_checkpoint_keys(config)) {
    float stddev = 0.05f, offset = 0.0f;
    if (k.kind == test::InitKind::Linear) stddev = 1.0f / std::sqrt(static_cast<float>(k.fan_in));
    if (k.kind == test::InitKind::Norm) offset = 1.0f;
    if (k.kind == test::InitKind::Embedding) stddev = 0.5f;
    out.add(k.name, random_fast(k.shape, stddev, offset, seed++, dtype, pool));
  }
}

struct SpecialIds {
  int32_t bos = 151644, eos = 151645, boi = 151652, eoi = 151653, img_pad = 151655, pad = 151665;
};

// spec §2.3: [bos] text [boi] [pad]*(n_vis+1) [eoi] [eos] [PAD]*(max_text_len - len(text)).
// Prompt ids (i * 7919 + 13) % vocab, i < text_len: the same as bench/torch/showo2_gen_baseline.py.
GenerationSequence sequence(int64_t text_len, int64_t n_vis, int64_t max_text_len, int64_t vocab) {
  const SpecialIds s;
  GenerationSequence seq;
  seq.ids.push_back(s.bos);
  for (int64_t i = 0; i < text_len; ++i) seq.ids.push_back(static_cast<int32_t>((i * 7919 + 13) % vocab));
  seq.ids.push_back(s.boi);
  seq.block_offset = static_cast<int64_t>(seq.ids.size());
  seq.ids.insert(seq.ids.end(), static_cast<size_t>(n_vis + 1), s.img_pad);
  seq.ids.push_back(s.eoi);
  seq.ids.push_back(s.eos);
  seq.ids.insert(seq.ids.end(), static_cast<size_t>(std::max<int64_t>(0, max_text_len - text_len)), s.pad);
  return seq;
}

GenerationRequest image_request(int64_t latent_side, const Showo2Config& config, int64_t text_len,
                                int64_t max_text_len) {
  GenerationRequest r;
  const int64_t n_vis = (latent_side / config.patch_size) * (latent_side / config.patch_size);
  r.cond = {sequence(text_len, n_vis, max_text_len, config.llm_vocab_size)};
  r.uncond = sequence(0, n_vis, max_text_len, config.llm_vocab_size);
  r.latent_shape = {1, 16, 1, latent_side, latent_side};
  r.seed = 0;
  r.sampler.guidance_scale = 5.0f;
  r.sampler.num_inference_steps = 5;
  return r;
}

template <typename Fn>
double median_ms(Fn&& fn, int warmup, int iters) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> times;
  for (int i = 0; i < iters; ++i) {
    const auto t0 = Clock::now();
    fn();
    times.push_back(ms_since(t0));
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

void print_row(bool json, const std::string& name, double ms, int64_t evaluations, int64_t block_tokens) {
  if (json)
    std::printf("{\"case\": \"%s\", \"ms\": %.4f, \"evaluations\": %lld, \"block_tokens\": %lld}\n", name.c_str(), ms,
                static_cast<long long>(evaluations), static_cast<long long>(block_tokens));
  else
    std::printf("%-28s %12.3f ms  (%lld evaluation(s), block of %lld tokens)\n", name.c_str(), ms,
                static_cast<long long>(evaluations), static_cast<long long>(block_tokens));
  std::fflush(stdout);
}

int usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s [--threads N] [--json] [--cases tiny,1p5b] [--iters 5] [--fixtures DIR] "
               "[--max-text-len 16]\n",
               argv0);
  return 2;
}

// Times one model: gen_step_<tag>_{reuse,full} and, when `whole`, gen_generate_<tag>_{reuse,full}.
void run_cases(Showo2Model& model, const GenerationRequest& base, const std::string& tag, bool whole, int warmup,
               int iters, bool json) {
  const Tensor x = gaussian_noise(base.latent_shape, 3);
  const int64_t p = model.config().patch_size;
  const int64_t block = base.latent_shape[2] * (base.latent_shape[3] / p) * (base.latent_shape[4] / p) + 1;
  for (bool reuse : {true, false}) {
    GenerationRequest r = base;
    r.reuse_prefix = reuse;
    const std::string suffix = reuse ? "_reuse" : "_full";
    const double step = median_ms([&] { guided_velocity(model, r, x, 0.1); }, warmup, iters);
    print_row(json, "gen_step_" + tag + suffix, step, 1, block);
    if (whole) {
      const double all = median_ms([&] { generate_latents(model, r); }, warmup, iters);
      print_row(json, "gen_generate_" + tag + suffix, all, r.sampler.model_evaluations(), block);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 0, iters = 5;
  bool json = false;
  std::string cases = "tiny,1p5b", fixtures = default_fixtures();
  int64_t max_text_len = 16;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--json") json = true;
    else if (arg == "--threads" && has_value) threads = std::atoi(argv[++i]);
    else if (arg == "--cases" && has_value) cases = argv[++i];
    else if (arg == "--iters" && has_value) iters = std::atoi(argv[++i]);
    else if (arg == "--fixtures" && has_value) fixtures = argv[++i];
    else if (arg == "--max-text-len" && has_value) max_text_len = std::atoll(argv[++i]);
    else return usage(argv[0]);
  }
  if (iters < 1 || max_text_len < 12) return usage(argv[0]);

  try {
    cpu::CpuBackend backend(threads);
    cpu::ThreadPool& pool = *backend.pool();
    if (!json)
      std::printf("# generation_bench: %d threads, cpu: %s\n", pool.num_threads(), cpu::cpu_features_string().c_str());
    auto vae_file = weights::open_weight_file(fixtures + "/vae/tiny_vae.pth");
    const WanVaeConfig tiny_vae =
        WanVaeConfig::from_json(test::read_text_file(fixtures + "/vae/tiny_vae_config.json"), "tiny_vae_config.json");

    if (cases.find("tiny") != std::string::npos) {
      const Showo2Config config = Showo2Config::from_json(
          test::read_text_file(fixtures + "/showo2/tiny-model/config.json"), "tiny-model/config.json");
      test::InMemoryWeights file;
      random_weights(config, DType::F32, pool, file);
      Showo2Model model(config, file, *vae_file, backend);
      run_cases(model, image_request(8, config, 12, max_text_len), "tiny", true, 1, iters, json);
    }
    if (cases.find("1p5b") != std::string::npos) {
      Showo2Config config;  // the published 1.5B defaults (spec §9.1), with the tiny VAE (not timed)
      config.vae = tiny_vae;
      test::InMemoryWeights file;
      const auto t0 = Clock::now();
      random_weights(config, DType::BF16, pool, file);
      if (!json) std::printf("# 1.5B random BF16 weights made in %.1f s\n", ms_since(t0) / 1e3);
      Showo2Model model(config, file, *vae_file, backend);
      run_cases(model, image_request(32, config, 12, max_text_len), "1p5b", false, 1,
                std::max(1, iters / 5), json);
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "generation_bench: %s: %s\n", e.code_str(), e.what());
    return 1;
  }
  return 0;
}
