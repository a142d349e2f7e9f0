// Times cpu::conv3d / cpu::conv2d on the Wan VAE's 384-channel 3x3(x3) conv at the 432px latent size (54x54), for
// comparison with bench/torch/conv_baseline.py, which runs the same case names with torch.nn.functional.conv3d/conv2d.
//
//   conv_bench [--threads N] [--json] [--case SUBSTRING] [--lowering auto|window|gather] [--tile PIXELS]
//              [--gemm fast|portable]
//
//   --threads   pool size (default: all hardware threads)
//   --json      one {"case", "ms", "gflops"} object per line instead of a table
//   --lowering  force a lowering of conv.cpp (conv_internal.h); default auto, as the model runs it
//   --tile      output pixels per tile (default: conv.cpp's kDefaultTilePixels); for tuning
//   --gemm      fast: cpu::gemm (AVX2 kernels when the CPU has them); portable: the portable GEMM kernels
//
// Cases: conv3d_C384_O384_k3_T3_54x54 is one 3-frame chunk through a CausalConv3d (x [1,384,3,54,54], time padding
// front 2 / back 0, spatial padding 1, out [1,384,3,54,54]); conv2d_C384_O384_k3_54x54 is the single-image form
// (spec §3.1). GFLOP/s count the dense conv (2*O*C*27 per output element) for both us and torch, so they compare
// like for like even though conv.cpp skips the taps that would only read the causal zero frames (1/3 of the work).
// Method: 1 warm-up call, then at least 5 calls and at least 1 s; the median is reported. Inputs are random normal.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "cpu/conv_internal.h"
#include "cpu/cpu_features.h"
#include "cpu/gemm_internal.h"
#include "cpu/ops.h"
#include "cpu/thread_pool.h"
#include "tensor.h"

using namespace showo2;

namespace {

struct BenchCase {
  const char* name;
  int64_t C, O, T, H, W;  // T == 0: conv2d
};

// Keep in sync with CASES in bench/torch/conv_baseline.py.
const BenchCase kCases[] = {
    {"conv3d_C384_O384_k3_T3_54x54", 384, 384, 3, 54, 54},
    {"conv2d_C384_O384_k3_54x54", 384, 384, 0, 54, 54},
};

constexpr int kWarmupIters = 1;
constexpr int kMinIters = 5;
constexpr double kMinSeconds = 1.0;

Tensor random_tensor(const Shape& shape, float stddev, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> values(static_cast<size_t>(shape_numel(shape)));
  for (auto& v : values) v = dist(rng);
  return Tensor::from_f32(shape, values);
}

template <typename Fn>
double median_ms(Fn&& fn) {
  using Clock = std::chrono::steady_clock;
  for (int i = 0; i < kWarmupIters; ++i) fn();
  std::vector<double> times;
  auto start = Clock::now();
  while (static_cast<int>(times.size()) < kMinIters ||
         std::chrono::duration<double>(Clock::now() - start).count() < kMinSeconds) {
    auto t0 = Clock::now();
    fn();
    times.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  size_t n = times.size();
  return n % 2 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);
}

void portable_gemm(const cpu::GemmArgs& args, cpu::ThreadPool* pool) {
  cpu::gemm_detail::run_gemm(cpu::gemm_detail::portable_kernels(), args, pool);
}

int usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s [--threads N] [--json] [--case SUBSTRING] [--lowering auto|window|gather] [--tile PIXELS]\n"
               "          [--gemm fast|portable]\n",
               argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 0;
  bool json = false;
  std::string filter, lowering = "auto", gemm = "fast";
  cpu::ConvOptions options;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    bool has_value = i + 1 < argc;
    if (arg == "--json") json = true;
    else if (arg == "--threads" && has_value) threads = std::atoi(argv[++i]);
    else if (arg == "--case" && has_value) filter = argv[++i];
    else if (arg == "--lowering" && has_value) lowering = argv[++i];
    else if (arg == "--tile" && has_value) options.tile_pixels = std::atoll(argv[++i]);
    else if (arg == "--gemm" && has_value) gemm = argv[++i];
    else return usage(argv[0]);
  }
  if (lowering == "auto") options.lowering = cpu::ConvLowering::Auto;
  else if (lowering == "window") options.lowering = cpu::ConvLowering::Window;
  else if (lowering == "gather") options.lowering = cpu::ConvLowering::Gather;
  else return usage(argv[0]);
  if (gemm == "portable") options.gemm = portable_gemm;
  else if (gemm != "fast") return usage(argv[0]);

  cpu::ThreadPool pool(threads);
  if (!json)
    std::printf("# conv_bench: %d threads, lowering %s, gemm %s, cpu: %s\n", pool.num_threads(), lowering.c_str(),
                gemm.c_str(), cpu::cpu_features_string().c_str());

  for (const BenchCase& bc : kCases) {
    if (!filter.empty() && std::string(bc.name).find(filter) == std::string::npos) continue;
    const int64_t k = 3;
    const bool is_3d = bc.T > 0;
    const int64_t taps = is_3d ? k * k * k : k * k;
    Shape x_shape = is_3d ? Shape{1, bc.C, bc.T, bc.H, bc.W} : Shape{1, bc.C, bc.H, bc.W};
    Shape w_shape = is_3d ? Shape{bc.O, bc.C, k, k, k} : Shape{bc.O, bc.C, k, k};
    Shape out_shape = is_3d ? Shape{1, bc.O, bc.T, bc.H, bc.W} : Shape{1, bc.O, bc.H, bc.W};
    Tensor x = random_tensor(x_shape, 1.0f, 1);
    Tensor weight = random_tensor(w_shape, 1.0f / std::sqrt(static_cast<float>(bc.C * taps)), 2);
    Tensor bias = random_tensor({bc.O}, 1.0f, 3);
    Tensor out = Tensor::empty(out_shape, DType::F32);

    double ms;
    if (is_3d) {
      Conv3dParams p;
      p.pad_front = 2;  // causal: two zero frames in front, none behind (spec §3.1)
      p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = 1;
      ms = median_ms([&] { cpu::conv3d_with_options(x, weight, bias, p, out, &pool, options); });
    } else {
      Conv2dParams p;
      p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = 1;
      ms = median_ms([&] { cpu::conv2d_with_options(x, weight, bias, p, out, &pool, options); });
    }
    const double frames = is_3d ? static_cast<double>(bc.T) : 1.0;
    const double gflops = 2.0 * bc.O * bc.C * taps * frames * bc.H * bc.W / (ms * 1e-3) / 1e9;
    if (json) std::printf("{\"case\": \"%s\", \"ms\": %.4f, \"gflops\": %.2f}\n", bc.name, ms, gflops);
    else std::printf("%-32s %10.3f ms %9.2f GFLOP/s\n", bc.name, ms, gflops);
    std::fflush(stdout);
  }
  return 0;
}
