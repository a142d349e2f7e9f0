// The inside of the CPU GEMM (gemm.h), shared by gemm.cpp (driver + portable kernels) and gemm_avx2.cpp (AVX2/FMA
// kernels). Not public API: tests include it to run the portable kernels on an AVX2 machine, where gemm() itself would
// always pick AVX2 (cpu_features() is detected once per process).
//
// The algorithm is the GotoBLAS/BLIS one. For each block of C columns [jc, jc+nc) and each K slice [pc, pc+kc):
//   pack B[pc:pc+kc, jc:jc+nc] into nr-wide panels (widening BF16/F16 to F32; the block lives in L3),
//   then for each block of rows [ic, ic+mc): pack A[ic:ic+mc, pc:pc+kc] into mr-tall panels (lives in L2) and sweep
//   the micro-kernel over every mr x nr tile (one B panel, kc x nr, stays in L1 while A panels stream past it).
// A kernel set supplies the packing routines, the micro-kernel and its tile/blocking sizes; the driver (run_gemm in
// gemm.cpp) owns the loops and the threading, so both instruction sets share one schedule.
//
// Decode-like calls (M small, B in weight layout) skip packing: packing B would read and write the whole weight to
// use it for only a few rows, so a dot-product kernel streams the weight rows once instead (small_m_nt).
#pragma once

#include <cstdint>

#include "gemm.h"

namespace showo2::cpu::gemm_detail {

// How a micro-kernel merges its accumulators into C.
struct TileEpilogue {
  float beta = 0.0f;            // C = acc (+ bias) + beta * C; beta == 0 means C is not read at all
  const float* bias = nullptr;  // bias for the tile's first column, or null
};

struct GemmKernelSet {
  const char* name;
  int mr, nr;          // micro-tile: mr rows of A by nr columns of B
  int64_t mc, kc, nc;  // cache blocks: mc rows of A (L2), kc of K, nc columns of B (L3); mc % mr == nc % nr == 0
  int64_t small_m_max;  // NT calls with M <= this use small_m_nt instead of packing

  // Packs the mc x kc block of A at `a` (row-major, lda) into ceil(mc/mr) panels, each kc x mr (k-major, mr values
  // per k), zero-filling the rows past mc so the micro-kernel never branches on them.
  void (*pack_a)(const float* a, int64_t lda, int64_t mc, int64_t kc, float* dst);
  // Packs the logical block B[k0:k0+kc, n0:n0+nc] (any layout/dtype of args) into ceil(nc/nr) panels of kc x nr,
  // widened to F32, zero-filling the columns past nc.
  void (*pack_b)(const GemmArgs& args, int64_t k0, int64_t kc, int64_t n0, int64_t nc, float* dst);
  // c[0:m, 0:n] (row stride ldc) = epilogue(sum_k a_panel[k*mr + i] * b_panel[k*nr + j]); m <= mr, n <= nr.
  void (*micro_kernel)(int64_t kc, const float* a_panel, const float* b_panel, float* c, int64_t ldc, int m, int n,
                       const TileEpilogue& epilogue);
  // Unpacked path for B_nk (b_transposed): C[m0:m1, n0:n1] = A[m0:m1, :] · B_nk[n0:n1, :]^T over the full K, with the
  // bias and beta of args.
  void (*small_m_nt)(const GemmArgs& args, int64_t m0, int64_t m1, int64_t n0, int64_t n1);
};

// Plain C++ kernels (compiler-vectorised); run everywhere.
const GemmKernelSet& portable_kernels();
#if defined(SHOWO2_HAVE_AVX2_KERNELS)
// AVX2 + FMA + F16C kernels (gemm_avx2.cpp). Only call when cpu_features().use_avx2.
const GemmKernelSet& avx2_kernels();
#endif

// gemm() with a chosen kernel set: validates args, then blocks and threads as described above.
void run_gemm(const GemmKernelSet& kernels, const GemmArgs& args, ThreadPool* pool);

// Applies epilogue to a finished tile held in `acc` (row stride acc_ld), for kernels that compute edge tiles into a
// scratch buffer.
void store_tile(const float* acc, int64_t acc_ld, float* c, int64_t ldc, int m, int n, const TileEpilogue& epilogue);

}  // namespace showo2::cpu::gemm_detail
