// Benchmark for cpu::attention on the LLM's attention shape (B 2, 12 heads, L 1024, head dim 128), with the three
// masks Show-o2 uses: causal (text), omni (a causal prefix then one bidirectional image block per sample, spec §5.1)
// and full (SigLIP/VAE style). bench/torch/attention_baseline.py prints the same cases for PyTorch's SDPA.
//
//   attention_bench [--threads N] [--json] [--repeats R] [--kernel auto|portable|avx2]
//
// --threads  pool size (default: every hardware thread available to the process)
// --json     one JSON object per line: {"case", "ms" (median), "gflops"}
// --kernel   auto follows cpu_features() (what the model uses); portable/avx2 force one tile kernel
//
// GFLOP/s counts only unmasked work: 4 * D flops (a multiply and an add for q·k and for p·v) per (query, key) pair
// the mask allows, per head. Skipped and masked work is not credited, so the three cases compare fairly.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cpu/attention_internal.h"
#include "cpu/cpu_features.h"
#include "cpu/ops.h"
#include "cpu/thread_pool.h"
#include "bench_util.h"
#include "test_util.h"

using namespace showo2;

namespace {

constexpr int64_t kBatch = 2, kHeads = 12, kLength = 1024, kHeadDim = 128;

struct Options {
  int threads = 0;
  bool json = false;
  int repeats = 9;
  int warmup = 2;
  std::string kernel = "auto";
};

[[noreturn]] void usage(const char* message) {
  std::fprintf(stderr, "attention_bench: %s\nusage: attention_bench [--threads N] [--json] [--repeats R] "
                       "[--kernel auto|portable|avx2]\n", message);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) usage(("missing value after " + a).c_str());
      return argv[++i];
    };
    if (a == "--threads") o.threads = std::atoi(value());
    else if (a == "--json") o.json = true;
    else if (a == "--repeats") o.repeats = std::max(1, std::atoi(value()));
    else if (a == "--warmup") o.warmup = std::max(0, std::atoi(value()));
    else if (a == "--kernel") o.kernel = value();
    else usage(("unknown option " + a).c_str());
  }
  if (o.kernel != "auto" && o.kernel != "portable" && o.kernel != "avx2")
    usage("--kernel must be auto, portable or avx2");
  return o;
}

struct Case {
  std::string name;
  OmniMask mask;
};

int64_t allowed_pairs(const OmniMask& mask) {
  int64_t n = 0;
  for (int64_t b = 0; b < kBatch; ++b)
    for (int64_t i = 0; i < kLength; ++i) n += mask.key_end(b, i, kLength);
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  const Options opt = parse(argc, argv);
  cpu::ThreadPool pool(opt.threads);
  std::string impl = opt.kernel;
  if (impl == "auto") impl = cpu::cpu_features().use_avx2 ? "avx2" : "portable";
  const cpu::AttentionKernel kernel = impl == "avx2" ? cpu::AttentionKernel::Avx2 : cpu::AttentionKernel::Portable;
  if (!cpu::attention_kernel_available(kernel)) usage("the AVX2 kernel is not available on this CPU or build");

  const std::string shape = "_B" + std::to_string(kBatch) + "_H" + std::to_string(kHeads) + "_L" +
                            std::to_string(kLength) + "_D" + std::to_string(kHeadDim);
  // Omni: per sample a causal text prefix, then one bidirectional block of 730 positions (729 image tokens plus
  // <|vision_end|>, spec §5.3), at different offsets as prompt lengths differ.
  const std::vector<Case> cases = {
      {"attention_causal" + shape, OmniMask::causal()},
      {"attention_omni" + shape, OmniMask::omni({{{100, 730}}, {{150, 730}}})},
      {"attention_full" + shape, OmniMask::full()},
  };

  const Shape qkv_shape = {kBatch, kLength, kHeads, kHeadDim};
  const size_t n = static_cast<size_t>(shape_numel(qkv_shape));
  Tensor q = Tensor::from_f32(qkv_shape, test::random_normal(n, 1));
  Tensor k = Tensor::from_f32(qkv_shape, test::random_normal(n, 2));
  Tensor v = Tensor::from_f32(qkv_shape, test::random_normal(n, 3));
  Tensor out = Tensor::empty(qkv_shape, DType::F32);
  const float scale = 1.0f / std::sqrt(static_cast<float>(kHeadDim));

  if (!opt.json)
    std::printf("# cpu attention, %d threads, %s kernel, %s\n", pool.num_threads(), impl.c_str(),
                cpu::cpu_features_string().c_str());
  for (const Case& c : cases) {
    auto run = [&] { cpu::attention_with_kernel(q, k, v, c.mask, scale, out, &pool, kernel); };
    // A fixed number of repeats (--repeats) rather than a time budget: one case runs ~0.1 s at 2 threads.
    const double median = bench::median_ms(run, bench::TimingPolicy{opt.warmup, opt.repeats, 0.0});
    const double gflops = static_cast<double>(allowed_pairs(c.mask)) * kHeads * 4.0 * kHeadDim / (median * 1e6);
    bench::print_result(opt.json, c.name.c_str(), median, gflops);
    std::fflush(stdout);
  }
  return 0;
}
