// Times cpu::linear on the Show-o2 LLM projection shapes (Qwen2.5-1.5B: hidden 1536, MLP 8960), for comparison with
// bench/torch/linear_baseline.py, which runs the same case names with torch.nn.functional.linear.
//
//   linear_bench [--threads N] [--json] [--variant linear|portable|reference] [--case SUBSTRING]
//                [--mc N --kc N --nc N --small-m-max N]
//
//   --threads      pool size (default: all hardware threads)
//   --json         one {"case", "ms", "gflops"} object per line instead of a table
//   --variant      linear: cpu::linear (the AVX2 kernels when the CPU has them, as the model runs it);
//                  portable: the same GEMM with the portable kernels; reference: gemm_reference (slow: M=1 case only
//                  is quick)
//   --mc/--kc/--nc/--small-m-max  run the variant's kernel set with other blocking (for tuning Avx2Traits in
//                  gemm_avx2.cpp and PortableTraits in gemm.cpp)
//
// Method: 3 warm-up calls, then at least 10 calls and at least 1 s; the median is reported. Inputs are random
// normal (zeros could take faster paths on some CPUs and would hide NaN bugs).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cpu/cpu_features.h"
#include "cpu/gemm.h"
#include "cpu/gemm_internal.h"
#include "cpu/ops.h"
#include "cpu/thread_pool.h"
#include "bench_util.h"
#include "tensor.h"

using namespace showo2;

namespace {

struct BenchCase {
  const char* name;
  int64_t M, K, N;
  DType weight_dtype;
};

// Keep in sync with CASES in bench/torch/linear_baseline.py.
const BenchCase kCases[] = {
    {"linear_f32_M512_K1536_N1536", 512, 1536, 1536, DType::F32},
    {"linear_f32_M512_K1536_N8960", 512, 1536, 8960, DType::F32},
    {"linear_f32_M1_K1536_N8960", 1, 1536, 8960, DType::F32},
    {"linear_bf16w_M512_K1536_N1536", 512, 1536, 1536, DType::BF16},
};

// Warm-up calls, minimum calls, minimum seconds (see bench_util.h).
const bench::TimingPolicy kTiming{3, 10, 1.0};

int usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s [--threads N] [--json] [--variant linear|portable|reference] [--case SUBSTRING]\n"
               "          [--mc N --kc N --nc N --small-m-max N]\n",
               argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 0;
  bool json = false;
  std::string variant = "linear", filter;
  int64_t mc = 0, kc = 0, nc = 0, small_m_max = -1;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    bool has_value = i + 1 < argc;
    if (arg == "--json") json = true;
    else if (arg == "--threads" && has_value) threads = std::atoi(argv[++i]);
    else if (arg == "--variant" && has_value) variant = argv[++i];
    else if (arg == "--case" && has_value) filter = argv[++i];
    else if (arg == "--mc" && has_value) mc = std::atoll(argv[++i]);
    else if (arg == "--kc" && has_value) kc = std::atoll(argv[++i]);
    else if (arg == "--nc" && has_value) nc = std::atoll(argv[++i]);
    else if (arg == "--small-m-max" && has_value) small_m_max = std::atoll(argv[++i]);
    else return usage(argv[0]);
  }
  if (variant != "linear" && variant != "portable" && variant != "reference") return usage(argv[0]);

  cpu::ThreadPool pool(threads);
  // null: time cpu::linear itself; otherwise run_gemm with this kernel set.
  const cpu::gemm_detail::GemmKernelSet* kernels = nullptr;
  if (variant == "portable") kernels = &cpu::gemm_detail::portable_kernels();
  cpu::gemm_detail::GemmKernelSet tuned;
  if (mc > 0 || kc > 0 || nc > 0 || small_m_max >= 0) {
    tuned = kernels ? *kernels : cpu::gemm_detail::portable_kernels();
#if defined(SHOWO2_HAVE_AVX2_KERNELS)
    if (!kernels && cpu::cpu_features().use_avx2) tuned = cpu::gemm_detail::avx2_kernels();
#endif
    if (mc > 0) tuned.mc = mc;
    if (kc > 0) tuned.kc = kc;
    if (nc > 0) tuned.nc = nc;
    if (small_m_max >= 0) tuned.small_m_max = small_m_max;
    kernels = &tuned;
  }
  if (!json)
    std::printf("# linear_bench: %d threads, variant %s, cpu: %s\n", pool.num_threads(), variant.c_str(),
                cpu::cpu_features_string().c_str());

  for (const BenchCase& bc : kCases) {
    if (!filter.empty() && std::string(bc.name).find(filter) == std::string::npos) continue;
    Tensor x = bench::random_normal_tensor({bc.M, bc.K}, 1.0f, 1);
    Tensor weight =
        bench::random_normal_tensor({bc.N, bc.K}, 1.0f / std::sqrt(static_cast<float>(bc.K)), 2).to(bc.weight_dtype);
    Tensor bias = bench::random_normal_tensor({bc.N}, 1.0f, 3);
    Tensor out = Tensor::empty({bc.M, bc.N}, DType::F32);

    cpu::GemmArgs args;  // the GEMM cpu::linear issues for this case, for the non-default variants
    args.M = bc.M;
    args.N = bc.N;
    args.K = bc.K;
    args.A = x.data<float>();
    args.lda = bc.K;
    args.B = weight.raw();
    args.b_dtype = bc.weight_dtype;
    args.ldb = bc.K;
    args.b_transposed = true;
    args.C = out.mutable_data<float>();
    args.ldc = bc.N;
    args.bias = bias.data<float>();

    double ms;
    if (variant == "reference") ms = bench::median_ms([&] { cpu::gemm_reference(args); }, kTiming);
    else if (kernels) ms = bench::median_ms([&] { cpu::gemm_detail::run_gemm(*kernels, args, &pool); }, kTiming);
    else ms = bench::median_ms([&] { cpu::linear(x, weight, bias, out, &pool); }, kTiming);
    double gflops = 2.0 * bc.M * bc.N * bc.K / (ms * 1e-3) / 1e9;
    bench::print_result(json, bc.name, ms, gflops);
    std::fflush(stdout);
  }
  return 0;
}
