// Times the Qwen2.5-1.5B decoder (Qwen2Model, native/core/qwen2.cpp) on the CPU backend with random BF16 weights made
// in memory (no files): prefill throughput and greedy decode throughput, for comparison with
// bench/torch/qwen2_baseline.py (transformers' Qwen2ForCausalLM in bf16, same cases, same thread count), and the
// machine's memory bandwidth, which bounds decoding: each decoded token streams every weight once.
//
//   qwen2_bench [--threads N] [--json] [--prefill 128,512] [--prompt 16] [--decode 32] [--iters 2] [--layers 28]
//
//   --prefill   prompt lengths to time: forward over L new tokens into an empty cache + lm_head on the last one
//   --prompt    prompt length before decoding
//   --decode    tokens decoded per timed run: embed + forward(1 token) + lm_head + greedy pick, on the KV cache
//   --iters     timed runs per prefill case (after one warm-up run of the shortest); decode reports the median token
//   --layers    fewer layers for a quick run (the bandwidth bound follows)
//
// Cases (JSON lines for bench/cpu_vs_torch.py): qwen2_prefill_<L> (ms per call, tokens/s), qwen2_decode (ms per
// token, tokens/s), and two rows with no PyTorch twin: memory_read_bandwidth (ms to read 1 GiB, GB/s) and
// qwen2_decode_bandwidth_bound (weight bytes per token / bandwidth, in ms).
//
// Bandwidth: a multi-threaded read of a 2 GiB buffer (8 streams per thread), best of 5 runs, on the same pool.
//
// Memory: ~3.1 GB of BF16 weights (the embedding is tied, so lm_head reads the same 466 MB table) plus the 2 GiB
// bandwidth buffer, freed before the model is built.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
#endif

#include "bench_util.h"
#include "cpu/cpu_backend.h"
#include "cpu/cpu_features.h"
#include "cpu/thread_pool.h"
#include "in_memory_weights.h"
#include "qwen2.h"
#include "tensor.h"
#include "text_sampler.h"
#include "weight_binder.h"
#include "weights/weight_file.h"

using namespace showo2;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Uniform BF16 values with standard deviation `stddev` (uniform on [-a, a], a = sqrt(3) stddev), from splitmix64:
// about a nanosecond per value, so 1.5 B parameters take a second or two on two threads (std::normal_distribution
// would take minutes). Decode speed does not depend on the distribution; the values only need to be finite and
// realistic in scale.
Tensor random_bf16(const Shape& shape, float stddev, uint64_t seed, cpu::ThreadPool& pool) {
  Tensor t = Tensor::empty(shape, DType::BF16);
  uint16_t* out = t.mutable_data<uint16_t>();
  const int64_t n = t.numel();
  const float a = std::sqrt(3.0f) * stddev;
  pool.parallel_for((n + 4095) / 4096, 1, [&](int64_t begin, int64_t end) {
    for (int64_t block = begin; block < end; ++block) {
      uint64_t state = seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(block) * 0xBF58476D1CE4E5B9ull;
      for (int64_t i = block * 4096; i < std::min(n, (block + 1) * 4096); ++i) {
        uint64_t z = (state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        const float u = static_cast<float>(z >> 40) * (1.0f / 16777216.0f);  // [0, 1)
        out[i] = f32_to_bf16((2.0f * u - 1.0f) * a);
      }
    }
  });
  return t;
}

Tensor constant_bf16(const Shape& shape, float value) {
  Tensor t = Tensor::empty(shape, DType::BF16);
  std::fill_n(t.mutable_data<uint16_t>(), t.numel(), f32_to_bf16(value));
  return t;
}

// The Qwen2.5-1.5B key layout (prefix ""), random weights; returns the bytes a decode step reads (every linear
// weight, the norms, and the tied lm_head).
int64_t make_weights(const Qwen2Config& c, test::InMemoryWeights& file, cpu::ThreadPool& pool) {
  const int64_t H = c.hidden_size, I = c.intermediate_size, D = c.resolved_head_dim();
  const int64_t q = c.num_attention_heads * D, kv = c.num_key_value_heads * D;
  int64_t decode_bytes = 0;
  uint64_t seed = 1;
  auto linear = [&](const std::string& name, int64_t out, int64_t in) {
    file.add(name, random_bf16({out, in}, 1.0f / std::sqrt(static_cast<float>(in)), seed++, pool));
    decode_bytes += out * in * 2;
  };
  auto vec = [&](const std::string& name, int64_t n, float stddev, bool ones) {
    file.add(name, ones ? constant_bf16({n}, 1.0f) : random_bf16({n}, stddev, seed++, pool));
    decode_bytes += n * 2;
  };
  file.add("model.embed_tokens.weight", random_bf16({c.vocab_size, H}, 1.0f / std::sqrt(static_cast<float>(H)),
                                                    seed++, pool));
  decode_bytes += c.vocab_size * H * 2;  // read by lm_head (tied); the embedding lookup reads one row
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    vec(p + "input_layernorm.weight", H, 0, true);
    linear(p + "self_attn.q_proj.weight", q, H);
    vec(p + "self_attn.q_proj.bias", q, 0.1f, false);
    linear(p + "self_attn.k_proj.weight", kv, H);
    vec(p + "self_attn.k_proj.bias", kv, 0.1f, false);
    linear(p + "self_attn.v_proj.weight", kv, H);
    vec(p + "self_attn.v_proj.bias", kv, 0.1f, false);
    linear(p + "self_attn.o_proj.weight", H, q);
    vec(p + "post_attention_layernorm.weight", H, 0, true);
    linear(p + "mlp.gate_proj.weight", I, H);
    linear(p + "mlp.up_proj.weight", I, H);
    linear(p + "mlp.down_proj.weight", H, I);
  }
  vec("model.norm.weight", H, 0, true);
  return decode_bytes;
}

// Best-of-5 read bandwidth in GB/s (1e9 bytes/s). Every thread sums its contiguous share of a 2 GiB F32 buffer as 8
// interleaved streams, like the decode GEMV (dot_tile reads 8 weight rows at once): on the Zen 3 dev machine one
// stream per thread reached ~20% less than several (fewer misses in flight), which would make the bound look easier
// to meet than it is. SSE2 loads (baseline x86-64): the loads, not the adds, are far from limiting at DRAM speed.
double measure_read_bandwidth(cpu::ThreadPool& pool) {
  const int64_t n = (int64_t{2} << 30) / 4;
  std::unique_ptr<float[]> buffer(new float[static_cast<size_t>(n)]);
  pool.parallel_for(n / 65536, 1, [&](int64_t b, int64_t e) {  // touch every page (and fault it in) before timing
    for (int64_t i = b * 65536; i < e * 65536; ++i) buffer[static_cast<size_t>(i)] = static_cast<float>(i & 7);
  });
  const int threads = pool.num_threads();
  constexpr int kStreams = 8;
  const int64_t segment = n / threads / kStreams / 16 * 16;  // floats per stream
  std::vector<double> sums(static_cast<size_t>(threads));
  double best = 0;
  for (int run = 0; run < 5; ++run) {
    const auto t0 = Clock::now();
    pool.parallel_for(threads, 1, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        const float* p = buffer.get() + segment * kStreams * t;
        double s = 0;
#if defined(__SSE2__) || defined(_M_X64)
        __m128 acc[kStreams];
        for (int j = 0; j < kStreams; ++j) acc[j] = _mm_setzero_ps();
        for (int64_t i = 0; i < segment; i += 16)
          for (int j = 0; j < kStreams; ++j) {
            const float* q = p + j * segment + i;
            acc[j] = _mm_add_ps(acc[j], _mm_add_ps(_mm_add_ps(_mm_loadu_ps(q), _mm_loadu_ps(q + 4)),
                                                   _mm_add_ps(_mm_loadu_ps(q + 8), _mm_loadu_ps(q + 12))));
          }
        for (int j = 0; j < kStreams; ++j) {
          float lanes[4];
          _mm_storeu_ps(lanes, acc[j]);
          s += static_cast<double>(lanes[0]) + lanes[1] + lanes[2] + lanes[3];
        }
#else
        for (int64_t i = 0; i < segment * kStreams; ++i) s += p[i];
#endif
        sums[static_cast<size_t>(t)] = s;
      }
    });
    const double gbps = static_cast<double>(segment * kStreams * threads) * 4 / seconds_since(t0) / 1e9;
    best = std::max(best, gbps);
  }
  double total = 0;
  for (double s : sums) total += s;
  if (total < 0) std::printf("(impossible)\n");  // keeps the sums observable
  return best;
}

void print_row(bool json, const std::string& name, double ms, const std::string& extra_key, double extra,
               const char* unit) {
  if (json) std::printf("{\"case\": \"%s\", \"ms\": %.4f, \"%s\": %.3f}\n", name.c_str(), ms, extra_key.c_str(), extra);
  else std::printf("%-32s %12.3f ms %12.2f %s\n", name.c_str(), ms, extra, unit);
  std::fflush(stdout);
}

std::vector<int64_t> parse_list(const std::string& s) {
  std::vector<int64_t> v;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) v.push_back(std::atoll(item.c_str()));
  return v;
}

int usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s [--threads N] [--json] [--prefill 128,512] [--prompt 16] [--decode 32] [--iters 2] "
               "[--layers 28]\n",
               argv0);
  return 2;
}

// Token ids [1, L] spread over the vocabulary.
Tensor prompt_ids(int64_t L, int64_t vocab) {
  Tensor ids = Tensor::empty({1, L}, DType::I32);
  for (int64_t i = 0; i < L; ++i) ids.mutable_data<int32_t>()[i] = static_cast<int32_t>((i * 7919 + 13) % vocab);
  return ids;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 0, iters = 2;
  bool json = false;
  std::vector<int64_t> prefill = {128, 512};
  int64_t prompt = 16, decode = 32, layers = 28;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    bool has_value = i + 1 < argc;
    if (arg == "--json") json = true;
    else if (arg == "--threads" && has_value) threads = std::atoi(argv[++i]);
    else if (arg == "--prefill" && has_value) prefill = parse_list(argv[++i]);
    else if (arg == "--prompt" && has_value) prompt = std::atoll(argv[++i]);
    else if (arg == "--decode" && has_value) decode = std::atoll(argv[++i]);
    else if (arg == "--iters" && has_value) iters = std::atoi(argv[++i]);
    else if (arg == "--layers" && has_value) layers = std::atoll(argv[++i]);
    else return usage(argv[0]);
  }
  if (prompt < 1 || decode < 1 || iters < 1 || layers < 1) return usage(argv[0]);

  cpu::CpuBackend backend(threads);
  cpu::ThreadPool& pool = *backend.pool();
  if (!json)
    std::printf("# qwen2_bench: Qwen2.5-1.5B shape (%lld layers), BF16 weights, %d threads, cpu: %s\n",
                static_cast<long long>(layers), pool.num_threads(), cpu::cpu_features_string().c_str());

  const double gbps = measure_read_bandwidth(pool);
  print_row(json, "memory_read_bandwidth", 1024.0 * 1024 * 1024 / (gbps * 1e9) * 1e3, "gbps", gbps, "GB/s");

  Qwen2Config config = Qwen2Config::preset("Qwen/Qwen2.5-1.5B-Instruct");
  config.num_hidden_layers = layers;
  test::InMemoryWeights file;
  const auto t_init = Clock::now();
  const int64_t decode_bytes = make_weights(config, file, pool);
  Qwen2Model model(config, backend);
  WeightBinder binder;
  model.bind_weights(binder, "");
  binder.load_all(file, backend, "Qwen2", "Qwen2.5-1.5B");
  model.finish_loading();
  if (!json)
    std::printf("# random weights: %.2f GB in %.1f s; a decode step reads %.2f GB\n",
                static_cast<double>(decode_bytes) / 1e9, seconds_since(t_init), static_cast<double>(decode_bytes) / 1e9);

  const int64_t H = config.hidden_size, V = config.vocab_size;
  auto prefill_once = [&](int64_t L) {
    Qwen2KvCache cache(config, 1);
    Tensor hidden = model.forward(model.embed_tokens(prompt_ids(L, V)), {}, cache);  // [1, L, H]
    return model.lm_head(hidden.slice(1, L - 1, L).reshape({1, H}));                  // [1, V]
  };

  // Prefill: one warm-up of the shortest case, then `iters` timed calls per case (each is seconds long).
  if (!prefill.empty()) prefill_once(*std::min_element(prefill.begin(), prefill.end()));
  for (int64_t L : prefill) {
    std::vector<double> times;
    for (int i = 0; i < iters; ++i) {
      const auto t0 = Clock::now();
      prefill_once(L);
      times.push_back(seconds_since(t0) * 1e3);
    }
    std::sort(times.begin(), times.end());
    const double ms = times[times.size() / 2];
    print_row(json, "qwen2_prefill_" + std::to_string(L), ms, "tokens_per_s", L / (ms * 1e-3), "tokens/s");
  }

  // Decode: prefill `prompt` tokens, then `decode` greedy steps; the median step is reported.
  {
    Qwen2KvCache cache(config, 1);
    Tensor ids = prompt_ids(prompt, V);
    Tensor hidden = model.forward(model.embed_tokens(ids), {}, cache);
    Tensor last = hidden.slice(1, prompt - 1, prompt).reshape({1, H});
    TextSampler sampler(SamplingParams{});
    std::vector<int32_t> history(ids.data<int32_t>(), ids.data<int32_t>() + prompt);
    std::vector<double> times;
    for (int64_t s = 0; s < decode + 1; ++s) {  // step 0 is a warm-up (first GEMV calls, cache growth)
      const auto t0 = Clock::now();
      Tensor logits = model.lm_head(last);  // [1, V]
      const int32_t token = sampler.sample(logits.data<float>(), V, history);
      history.push_back(token);
      Tensor next = Tensor::empty({1, 1}, DType::I32);
      next.mutable_data<int32_t>()[0] = token;
      last = model.forward(model.embed_tokens(next), {}, cache).reshape({1, H});
      if (s > 0) times.push_back(seconds_since(t0) * 1e3);
    }
    std::sort(times.begin(), times.end());
    const double ms = times[times.size() / 2];
    print_row(json, "qwen2_decode", ms, "tokens_per_s", 1e3 / ms, "tokens/s");
    const double bound_ms = static_cast<double>(decode_bytes) / (gbps * 1e9) * 1e3;
    print_row(json, "qwen2_decode_bandwidth_bound", bound_ms, "tokens_per_s", 1e3 / bound_ms, "tokens/s");
    if (!json)
      std::printf("# decode: %.1f ms per token = %.2fx the bandwidth bound (%.2f GB / %.1f GB/s = %.1f ms); "
                  "effective %.1f GB/s\n",
                  ms, ms / bound_ms, static_cast<double>(decode_bytes) / 1e9, gbps, bound_ms,
                  static_cast<double>(decode_bytes) / (ms * 1e-3) / 1e9);
  }
  return 0;
}
