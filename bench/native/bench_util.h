// Shared pieces of the C++ benchmarks (bench/native/*_bench.cpp): random inputs, median timing, result lines.
//
// Method for every CPU benchmark: warm-up calls, then at least `min_iters` calls and at least `min_seconds`; the
// median is reported (it resists the odd preempted run better than the mean). Inputs are random normal: zeros could
// take faster paths on some CPUs and would hide NaN bugs. bench/cpu_vs_torch.py reads the --json lines.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "tensor.h"

namespace showo2::bench {

struct TimingPolicy {
  int warmup_iters = 3;
  int min_iters = 10;
  double min_seconds = 1.0;
};

inline Tensor random_normal_tensor(const Shape& shape, float stddev, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> values(static_cast<size_t>(shape_numel(shape)));
  for (auto& v : values) v = dist(rng);
  return Tensor::from_f32(shape, values);
}

// Median wall time of fn() in milliseconds.
template <typename Fn>
double median_ms(Fn&& fn, const TimingPolicy& policy = {}) {
  using Clock = std::chrono::steady_clock;
  for (int i = 0; i < policy.warmup_iters; ++i) fn();
  std::vector<double> times;
  auto start = Clock::now();
  while (static_cast<int>(times.size()) < policy.min_iters ||
         std::chrono::duration<double>(Clock::now() - start).count() < policy.min_seconds) {
    auto t0 = Clock::now();
    fn();
    times.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  size_t n = times.size();
  return n % 2 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);
}

// One result line: JSON for bench/cpu_vs_torch.py, or an aligned table row for people.
inline void print_result(bool json, const char* case_name, double ms, double gflops) {
  if (json) std::printf("{\"case\": \"%s\", \"ms\": %.4f, \"gflops\": %.2f}\n", case_name, ms, gflops);
  else std::printf("%-40s %10.3f ms %9.2f GFLOP/s\n", case_name, ms, gflops);
}

}  // namespace showo2::bench
