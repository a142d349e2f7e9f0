// Bandwidth benchmark for the memory-bound CUDA kernels between the GEMMs, at Show-o2's shapes (Qwen2.5-1.5B-sized
// LLM, 432x432 image with CFG: 2 x 730 tokens):
//   rms_norm  [4096, 1536]          F32 weight               (the LLM's input_layernorm over a 4096-token prefill)
//   swiglu    [4096, 8960]                                   (the LLM's MLP: silu(gate) * up)
//   rope      [2, 730, 12, 128]     offset 0                 (the LLM's q rotation over the cond/uncond batch)
//   modulate  [1460, 2048]          2 groups                 (the flow head's adaLN modulate)
//
//   pointwise_cuda_bench [--json] [--iters N]
//
// Method: every timed launch is preceded (outside the timed region) by a 256 MB memset that evicts the 50 MB L2, so
// the numbers are DRAM bandwidth, not cache replay; each launch is timed with a pair of CUDA events and the median
// of N (default 50) is reported. Bytes count each tensor read or written once (the unique DRAM traffic the op
// needs); GB/s is that over the median time, and `of_peak` divides by H100 SXM's 3.35 TB/s HBM3 bandwidth.
// Without a CUDA device it prints why on stderr and exits 0 (CI).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "../../cuda/activation.h"
#include "../../cuda/adaln_modulate.h"
#include "../../cuda/cuda_check.h"
#include "../../cuda/device_info.h"
#include "../../cuda/norm.h"
#include "../../cuda/rope.h"
#include "../../native/core/rope.h"
#include "bench_util.h"

using namespace showo2;

namespace {

constexpr double kPeakBytesPerSecond = 3.35e12;  // H100 SXM5 HBM3
constexpr size_t kFlushBytes = size_t{256} << 20;

struct Options {
  bool json = false;
  int iters = 50;
};

// A device buffer of random normal floats (generated on the host once).
float* device_random(int64_t n, uint32_t seed) {
  const Tensor host = bench::random_normal_tensor({n}, 1.0f, seed);
  float* d = nullptr;
  SHOWO2_CUDA_CHECK(cudaMalloc(&d, static_cast<size_t>(n) * sizeof(float)));
  SHOWO2_CUDA_CHECK(cudaMemcpy(d, host.raw(), static_cast<size_t>(n) * sizeof(float), cudaMemcpyHostToDevice));
  return d;
}

double median_launch_ms(const std::function<void()>& launch, void* flush, int iters) {
  cudaEvent_t start, stop;
  SHOWO2_CUDA_CHECK(cudaEventCreate(&start));
  SHOWO2_CUDA_CHECK(cudaEventCreate(&stop));
  for (int i = 0; i < 3; ++i) launch();  // warm-up: module load, first-touch
  std::vector<double> times;
  for (int i = 0; i < iters; ++i) {
    SHOWO2_CUDA_CHECK(cudaMemsetAsync(flush, i & 0xff, kFlushBytes, 0));
    SHOWO2_CUDA_CHECK(cudaEventRecord(start, 0));
    launch();
    SHOWO2_CUDA_CHECK(cudaEventRecord(stop, 0));
    SHOWO2_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    SHOWO2_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    times.push_back(ms);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

void report(const Options& o, const char* name, const char* shape, double ms, double bytes) {
  const double gbps = bytes / (ms * 1e-3) / 1e9;
  const double of_peak = bytes / (ms * 1e-3) / kPeakBytesPerSecond;
  if (o.json)
    std::printf("{\"case\": \"%s\", \"shape\": \"%s\", \"ms\": %.5f, \"bytes\": %.0f, \"gbps\": %.1f, "
                "\"peak_gbps\": %.0f, \"of_peak\": %.3f}\n",
                name, shape, ms, bytes, gbps, kPeakBytesPerSecond / 1e9, of_peak);
  else
    std::printf("%-10s %-18s %9.4f ms %8.1f GB/s %6.1f%% of 3.35 TB/s\n", name, shape, ms, gbps, 100 * of_peak);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--json") o.json = true;
    else if (a == "--iters" && i + 1 < argc) o.iters = std::max(1, std::atoi(argv[++i]));
    else {
      std::fprintf(stderr, "usage: pointwise_cuda_bench [--json] [--iters N]\n");
      return 2;
    }
  }
  const cuda::CudaInfo info = cuda::query_cuda();
  if (!info.unavailable_reason.empty()) {
    std::fprintf(stderr, "pointwise_cuda_bench: skipped: %s\n", info.unavailable_reason.c_str());
    return 0;
  }
  try {
    void* flush = nullptr;
    SHOWO2_CUDA_CHECK(cudaMalloc(&flush, kFlushBytes));

    {  // RMSNorm [4096, 1536]
      const int64_t R = 4096, C = 1536;
      float* x = device_random(R * C, 1);
      float* w = device_random(C, 2);
      float* y = device_random(R * C, 3);
      cuda::NormParams p;
      p.x = x;
      p.x_rows = cuda::dense_rows(R, C);
      p.out = y;
      p.out_rows = cuda::dense_rows(R, C);
      p.rows = R;
      p.cols = C;
      p.weight = w;
      p.eps = 1e-6f;
      const double ms = median_launch_ms([&] { cuda::launch_rms_norm(p, 0); }, flush, o.iters);
      report(o, "rms_norm", "4096x1536", ms, 2.0 * R * C * 4 + C * 4);
      cudaFree(x), cudaFree(w), cudaFree(y);
    }
    {  // SwiGLU [4096, 8960]
      const int64_t R = 4096, C = 8960;
      float* gate = device_random(R * C, 4);
      float* up = device_random(R * C, 5);
      float* out = device_random(R * C, 6);
      cuda::ActivationParams p;
      p.x = gate;
      p.x_rows = cuda::dense_rows(R, C);
      p.up = up;
      p.up_rows = cuda::dense_rows(R, C);
      p.out = out;
      p.out_rows = cuda::dense_rows(R, C);
      p.rows = R;
      p.cols = C;
      const double ms = median_launch_ms([&] { cuda::launch_swiglu(p, 0); }, flush, o.iters);
      report(o, "swiglu", "4096x8960", ms, 3.0 * R * C * 4);
      cudaFree(gate), cudaFree(up), cudaFree(out);
    }
    {  // RoPE [2, 730, 12, 128] in place
      const int64_t B = 2, L = 730, H = 12, D = 128;
      const RopeTable table = make_rope_table(D, L, 1e6);
      float* x = device_random(B * L * H * D, 7);
      float *cos = nullptr, *sin = nullptr;
      const size_t table_bytes = static_cast<size_t>(L * D / 2) * sizeof(float);
      SHOWO2_CUDA_CHECK(cudaMalloc(&cos, table_bytes));
      SHOWO2_CUDA_CHECK(cudaMalloc(&sin, table_bytes));
      SHOWO2_CUDA_CHECK(cudaMemcpy(cos, table.cos.raw(), table_bytes, cudaMemcpyHostToDevice));
      SHOWO2_CUDA_CHECK(cudaMemcpy(sin, table.sin.raw(), table_bytes, cudaMemcpyHostToDevice));
      cuda::RopeParams p;
      p.x = x;
      p.batch = B;
      p.seq_len = L;
      p.heads = H;
      p.head_dim = D;
      p.stride_h = D;
      p.stride_l = H * D;
      p.stride_b = L * H * D;
      p.cos = cos;
      p.sin = sin;
      p.table_positions = L;
      const double ms = median_launch_ms([&] { cuda::launch_rope(p, 0); }, flush, o.iters);
      report(o, "rope", "2x730x12x128", ms, 2.0 * B * L * H * D * 4 + 2.0 * table_bytes);
      cudaFree(x), cudaFree(cos), cudaFree(sin);
    }
    {  // modulate [1460, 2048], 2 groups (cond / uncond), out separate
      const int64_t R = 1460, C = 2048, G = 2;
      float* x = device_random(R * C, 8);
      float* out = device_random(R * C, 9);
      float* ada = device_random(G * 6 * C, 10);  // shift and scale are chunks 0 and 1 of [G, 6C]
      std::vector<int32_t> groups(static_cast<size_t>(R));
      for (int64_t r = 0; r < R; ++r) groups[static_cast<size_t>(r)] = r < R / 2 ? 0 : 1;
      int32_t* d_groups = nullptr;
      SHOWO2_CUDA_CHECK(cudaMalloc(&d_groups, groups.size() * sizeof(int32_t)));
      SHOWO2_CUDA_CHECK(
          cudaMemcpy(d_groups, groups.data(), groups.size() * sizeof(int32_t), cudaMemcpyHostToDevice));
      cuda::AdaLNParams p;
      p.rows = R;
      p.cols = C;
      p.row_group = d_groups;
      p.groups = G;
      p.x = x;
      p.x_row_stride = C;
      p.out = out;
      p.out_row_stride = C;
      p.shift = ada;
      p.shift_row_stride = 6 * C;
      p.scale = ada + C;
      p.scale_row_stride = 6 * C;
      const double ms = median_launch_ms([&] { cuda::launch_modulate(p, 0); }, flush, o.iters);
      report(o, "modulate", "1460x2048", ms, 2.0 * R * C * 4 + 2.0 * G * C * 4 + R * 4);
      cudaFree(x), cudaFree(out), cudaFree(ada), cudaFree(d_groups);
    }
    cudaFree(flush);
  } catch (const Error& e) {
    std::fprintf(stderr, "pointwise_cuda_bench: %s: %s\n", e.code_str(), e.what());
    return 1;
  }
  return 0;
}
