// Single-precision GEMM for the CPU backend: the engine under linear, matmul, attention and convolution.
//
//   C[M, N] = A[M, K] · B  (+ bias[N])  (+ beta · C)
//   A: F32, row-major with leading dimension lda.
//   B: F32, BF16 or F16. Either B_kn = [K, N] row-major ("NN", ldb >= N) or, with b_transposed, B_nk = [N, K]
//      row-major ("NT", ldb >= K) which is the nn.Linear weight layout.
//   C: F32 row-major with leading dimension ldc.
// Accumulation is F32; BF16/F16 operands are widened while packing.
// Threading: the call splits its work over `pool` (may be null = single thread). It is safe to call from inside a
// pool worker (it then runs single-threaded), which is how attention/conv use it per tile.
#pragma once

#include <cstdint>

#include "../dtype.h"

namespace showo2::cpu {

class ThreadPool;

struct GemmArgs {
  int64_t M = 0, N = 0, K = 0;
  const float* A = nullptr;
  int64_t lda = 0;
  const void* B = nullptr;
  DType b_dtype = DType::F32;
  int64_t ldb = 0;
  bool b_transposed = false;  // true: B is [N, K] (weight layout)
  float* C = nullptr;
  int64_t ldc = 0;
  float beta = 0.0f;           // 0: C is overwritten (never read, so it may hold garbage/NaN)
  const float* bias = nullptr; // optional [N], added to every row
};

void gemm(const GemmArgs& args, ThreadPool* pool);

// The plain triple loop, kept as the reference the fast path is tested against and for bisecting regressions.
void gemm_reference(const GemmArgs& args);

}  // namespace showo2::cpu
