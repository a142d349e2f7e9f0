#include "cpu_features.h"

#include <cstdlib>
#include <cstring>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace showo2::cpu {

// CPUID and XGETBV directly rather than __builtin_cpu_supports: that needs libgcc's or compiler-rt's __cpu_model,
// which zig's Clang (tools/prebuild.mjs --zig) cannot link into a shared object, and it knows "f16c" only from GCC 11
// or Clang 18 on.
static CpuFeatures detect() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0) {
    const bool osxsave = (ecx & bit_OSXSAVE) != 0;
    bool ymm_enabled = false;  // the OS saves the AVX (YMM) registers: XCR0 bits 1 (SSE) and 2 (AVX)
    if (osxsave && (ecx & bit_AVX) != 0) {
      unsigned xcr0_lo = 0, xcr0_hi = 0;
      __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
      ymm_enabled = (xcr0_lo & 0x6) == 0x6;
    }
    f.fma = ymm_enabled && (ecx & bit_FMA) != 0;
    f.f16c = ymm_enabled && (ecx & bit_F16C) != 0;
    unsigned eax7 = 0, ebx7 = 0, ecx7 = 0, edx7 = 0;
    f.avx2 = ymm_enabled && __get_cpuid_count(7, 0, &eax7, &ebx7, &ecx7, &edx7) != 0 && (ebx7 & bit_AVX2) != 0;
  }
#if defined(SHOWO2_HAVE_AVX2_KERNELS)
  const char* off = std::getenv("SHOWO2_DISABLE_AVX2");
  bool disabled = off && std::strcmp(off, "") != 0 && std::strcmp(off, "0") != 0;
  f.use_avx2 = f.avx2 && f.fma && f.f16c && !disabled;
#endif
#endif
  return f;
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

std::string cpu_features_string() {
  const CpuFeatures& f = cpu_features();
  std::string s;
  if (f.avx2) s += "avx2 ";
  if (f.fma) s += "fma ";
  if (f.f16c) s += "f16c ";
  s += f.use_avx2 ? "(using avx2 kernels)" : "(using portable kernels)";
  return s;
}

}  // namespace showo2::cpu
