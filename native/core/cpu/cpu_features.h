// Run-time CPU feature detection, so one prebuilt binary uses AVX2/FMA where the CPU has them and the portable
// kernels elsewhere (never an illegal-instruction crash on an older x86 CPU). Kernels compiled with AVX2 flags live
// in files named *_avx2.cpp; CMake builds those only on x86-64.
#pragma once

#include <string>

namespace showo2::cpu {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  // True when the AVX2 kernels may run: AVX2 + FMA + F16C present and not disabled by SHOWO2_DISABLE_AVX2=1
  // (the variable exists so tests and benchmarks can exercise the portable path on an AVX2 machine).
  bool use_avx2 = false;
};

const CpuFeatures& cpu_features();
std::string cpu_features_string();  // e.g. "avx2 fma f16c (using avx2)"

}  // namespace showo2::cpu
