// PLACEHOLDER until the optimised GEMM lands: gemm() forwards to the reference loop.
#include "gemm.h"

#include <cstring>

namespace showo2::cpu {

static inline float load_b(const GemmArgs& a, int64_t k, int64_t n) {
  int64_t idx = a.b_transposed ? n * a.ldb + k : k * a.ldb + n;
  switch (a.b_dtype) {
    case DType::F32: return static_cast<const float*>(a.B)[idx];
    case DType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(a.B)[idx]);
    case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(a.B)[idx]);
    default: return 0.0f;
  }
}

void gemm_reference(const GemmArgs& a) {
  for (int64_t m = 0; m < a.M; ++m)
    for (int64_t n = 0; n < a.N; ++n) {
      double acc = 0;
      for (int64_t k = 0; k < a.K; ++k) acc += static_cast<double>(a.A[m * a.lda + k]) * load_b(a, k, n);
      float prev = a.beta != 0.0f ? a.beta * a.C[m * a.ldc + n] : 0.0f;
      a.C[m * a.ldc + n] = static_cast<float>(acc) + prev + (a.bias ? a.bias[n] : 0.0f);
    }
}

void gemm(const GemmArgs& args, ThreadPool*) { gemm_reference(args); }

}  // namespace showo2::cpu
