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
#include "bench_util.h"
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

// Warm-up calls, minimum calls, minimum seconds (see bench_util.h).
const bench::TimingPolicy kTiming{1, 5, 1.0};

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
    Tensor x = bench::random_normal_tensor(x_shape, 1.0f, 1);
    Tensor weight = bench::random_normal_tensor(w_shape, 1.0f / std::sqrt(static_cast<float>(bc.C * taps)), 2);
    Tensor bias = bench::random_normal_tensor({bc.O}, 1.0f, 3);
    Tensor out = Tensor::empty(out_shape, DType::F32);

    double ms;
    if (is_3d) {
      Conv3dParams p;
      p.pad_front = 2;  // causal: two zero frames in front, none behind (spec §3.1)
      p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = 1;
      ms = bench::median_ms([&] { cpu::conv3d_with_options(x, weight, bias, p, out, &pool, options); }, kTiming);
    } else {
      Conv2dParams p;
      p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = 1;
      ms = bench::median_ms([&] { cpu::conv2d_with_options(x, weight, bias, p, out, &pool, options); }, kTiming);
    }
    const double frames = is_3d ? static_cast<double>(bc.T) : 1.0;
    const double gflops = 2.0 * bc.O * bc.C * taps * frames * bc.H * bc.W / (ms * 1e-3) / 1e9;
    bench::print_result(json, bc.name, ms, gflops);
    std::fflush(stdout);
  }
  return 0;
}
