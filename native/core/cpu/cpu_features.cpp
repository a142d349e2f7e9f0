#include "cpu_features.h"

#include <cstdlib>
#include <cstring>

namespace showo2::cpu {

static CpuFeatures detect() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  f.avx2 = __builtin_cpu_supports("avx2");
  f.fma = __builtin_cpu_supports("fma");
#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 11)
  f.f16c = __builtin_cpu_supports("f16c");
#else
  f.f16c = f.avx2;  // every AVX2 CPU shipped also has F16C
#endif
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
