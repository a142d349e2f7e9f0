// CPU GEMM: C[M, N] = A[M, K] · B (+ bias[N]) (+ beta · C), see gemm.h for layouts.
//
// This file holds three things, in order:
//   1. gemm_reference: the plain triple loop (double accumulation), what every faster path is tested against;
//   2. run_gemm: the blocked, threaded driver (algorithm in gemm_internal.h), shared by every kernel set;
//   3. the portable kernel set (plain C++ the compiler vectorises), used where AVX2 is absent or disabled.
// gemm() picks the AVX2 kernel set (gemm_avx2.cpp) when cpu_features().use_avx2, else the portable one.
//
// Precision: F32 accumulation; BF16/F16 B is widened exactly while packing. The summation order differs from the
// reference (K is split into kc slices and vector lanes), so results match it to ~sqrt(K) ulps, not bit-for-bit.
// Used by every nn.Linear of the model (spec §2-§6) through cpu::linear, and by matmul, attention and convolution.
//
// Bench (same case names and JSON lines, so the two outputs line up):
//   cmake --build build-native --target linear_bench && build-native/linear_bench --threads 2 [--variant portable]
//   python3 bench/torch/linear_baseline.py --threads 2
#include "gemm.h"

#include <algorithm>
#include <new>
#include <vector>

#include "../error.h"
#include "cpu_features.h"
#include "gemm_internal.h"
#include "thread_pool.h"

namespace showo2::cpu {

// ---- 1. reference ---------------------------------------------------------------------------------------------------

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

namespace gemm_detail {

// ---- 2. driver ------------------------------------------------------------------------------------------------------

namespace {

// Below this much work ((M + 1) · N · K: multiply-adds plus weight elements streamed) a call finishes in a few
// microseconds, less than it takes to wake the pool, so it runs on the calling thread.
constexpr double kMinParallelWork = 1 << 17;

// A per-thread, 64-byte aligned, grow-only packing buffer. Pool threads live as long as the pool, so after the first
// few calls gemm allocates nothing.
class PackBuffer {
 public:
  PackBuffer() = default;
  PackBuffer(const PackBuffer&) = delete;
  PackBuffer& operator=(const PackBuffer&) = delete;
  ~PackBuffer() { release(); }

  float* get(size_t floats) {
    if (floats > capacity_) {
      release();
      data_ = static_cast<float*>(::operator new(floats * sizeof(float), std::align_val_t(64)));
      capacity_ = floats;
    }
    return data_;
  }

 private:
  void release() {
    if (data_) ::operator delete(data_, std::align_val_t(64));
    data_ = nullptr;
    capacity_ = 0;
  }
  float* data_ = nullptr;
  size_t capacity_ = 0;
};

thread_local PackBuffer t_packed_a;
thread_local PackBuffer t_packed_b;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// Splits `extent` into `blocks` nearly equal parts whose boundaries are multiples of `unit` (except the end).
int64_t part_begin(int64_t extent, int64_t unit, int64_t blocks, int64_t index) {
  int64_t units = ceil_div(extent, unit);
  return std::min(extent, units * index / blocks * unit);
}

// The largest block size <= max_block, a multiple of unit, that cuts extent into equal-ish blocks (so a 1536-wide
// dimension with a 1024 limit becomes 2 x 768 rather than 1024 + 512).
int64_t balanced_block(int64_t extent, int64_t max_block, int64_t unit) {
  int64_t blocks = ceil_div(extent, max_block);
  return std::min(round_up(ceil_div(extent, blocks), unit), round_up(extent, unit));
}

void validate(const GemmArgs& a) {
  SHOWO2_CHECK(a.M >= 0 && a.N >= 0 && a.K >= 0, InvalidArgument, "gemm: M, N and K must be non-negative but got M=",
               a.M, " N=", a.N, " K=", a.K);
  if (a.M == 0 || a.N == 0) return;
  SHOWO2_CHECK(a.C != nullptr, InvalidArgument, "gemm: C is null");
  SHOWO2_CHECK(a.ldc >= a.N, InvalidArgument, "gemm: ldc (", a.ldc, ") must be >= N (", a.N, ")");
  if (a.K == 0) return;
  SHOWO2_CHECK(a.A != nullptr && a.B != nullptr, InvalidArgument, "gemm: A or B is null");
  SHOWO2_CHECK(a.lda >= a.K, InvalidArgument, "gemm: lda (", a.lda, ") must be >= K (", a.K, ")");
  int64_t b_width = a.b_transposed ? a.K : a.N;
  SHOWO2_CHECK(a.ldb >= b_width, InvalidArgument, "gemm: ldb (", a.ldb, ") must be >= ", a.b_transposed ? "K" : "N",
               " (", b_width, ")");
  SHOWO2_CHECK(is_float_dtype(a.b_dtype), UnsupportedDtype, "gemm: B dtype must be F32, BF16 or F16 but got ",
               dtype_name(a.b_dtype));
}

// K == 0: the product is empty, C = bias + beta * C.
void bias_only(const GemmArgs& a) {
  for (int64_t m = 0; m < a.M; ++m) {
    float* c = a.C + m * a.ldc;
    for (int64_t n = 0; n < a.N; ++n) {
      float v = a.bias ? a.bias[n] : 0.0f;
      if (a.beta != 0.0f) v += a.beta * c[n];
      c[n] = v;
    }
  }
}

// The packed GEMM for the tile C[m0:m1, n0:n1], on the calling thread.
void gemm_tile(const GemmKernelSet& ks, const GemmArgs& a, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  const int64_t kc_step = balanced_block(a.K, ks.kc, 1);
  const int64_t nc_step = balanced_block(n1 - n0, ks.nc, ks.nr);
  const int64_t mc_step = balanced_block(m1 - m0, ks.mc, ks.mr);
  float* packed_b = t_packed_b.get(static_cast<size_t>(kc_step * nc_step));
  float* packed_a = t_packed_a.get(static_cast<size_t>(kc_step * mc_step));

  for (int64_t jc = n0; jc < n1; jc += nc_step) {
    const int64_t nc = std::min(nc_step, n1 - jc);
    for (int64_t pc = 0; pc < a.K; pc += kc_step) {
      const int64_t kc = std::min(kc_step, a.K - pc);
      ks.pack_b(a, pc, kc, jc, nc, packed_b);
      // The first K slice applies the caller's beta and bias; later slices accumulate onto it.
      const bool first_slice = pc == 0;
      for (int64_t ic = m0; ic < m1; ic += mc_step) {
        const int64_t mc = std::min(mc_step, m1 - ic);
        ks.pack_a(a.A + ic * a.lda + pc, a.lda, mc, kc, packed_a);
        for (int64_t jr = 0; jr < nc; jr += ks.nr) {
          const int n = static_cast<int>(std::min<int64_t>(ks.nr, nc - jr));
          TileEpilogue ep;
          ep.beta = first_slice ? a.beta : 1.0f;
          ep.bias = first_slice && a.bias ? a.bias + jc + jr : nullptr;
          const float* b_panel = packed_b + jr * kc;
          float* c_row = a.C + ic * a.ldc + jc + jr;
          for (int64_t ir = 0; ir < mc; ir += ks.mr) {
            const int m = static_cast<int>(std::min<int64_t>(ks.mr, mc - ir));
            ks.micro_kernel(kc, packed_a + ir * kc, b_panel, c_row + ir * a.ldc, a.ldc, m, n, ep);
          }
        }
      }
    }
  }
}

struct Grid {
  int64_t rows = 1, cols = 1;  // tasks along M and along N
};

// Chooses how `threads` tasks tile C. Splitting N makes every task pack all of A; splitting M makes every task pack
// all of B; so pick the factorisation that re-packs the fewest elements (each K long): (cols-1)·M + (rows-1)·N.
Grid choose_grid(const GemmKernelSet& ks, int64_t M, int64_t N, int threads) {
  Grid best;
  int64_t best_cost = -1;
  for (int64_t cols = 1; cols <= threads; ++cols) {
    if (threads % cols != 0) continue;
    int64_t rows = threads / cols;
    if (cols > ceil_div(N, ks.nr) || rows > ceil_div(M, ks.mr)) continue;
    int64_t cost = (cols - 1) * M + (rows - 1) * N;
    if (best_cost < 0 || cost < best_cost) {
      best_cost = cost;
      best = {rows, cols};
    }
  }
  return best;  // {1, 1} when C is too small to split
}

}  // namespace

void store_tile(const float* acc, int64_t acc_ld, float* c, int64_t ldc, int m, int n, const TileEpilogue& ep) {
  for (int i = 0; i < m; ++i) {
    const float* src = acc + i * acc_ld;
    float* dst = c + i * ldc;
    for (int j = 0; j < n; ++j) {
      float v = src[j];
      if (ep.bias) v += ep.bias[j];
      if (ep.beta != 0.0f) v += ep.beta * dst[j];
      dst[j] = v;
    }
  }
}

void run_gemm(const GemmKernelSet& ks, const GemmArgs& a, ThreadPool* pool) {
  validate(a);
  if (a.M == 0 || a.N == 0) return;
  if (a.K == 0) return bias_only(a);

  int threads = pool ? pool->num_threads() : 1;
  if (static_cast<double>(a.M + 1) * a.N * a.K < kMinParallelWork) threads = 1;

  if (a.b_transposed && a.M <= ks.small_m_max) {
    // Decode-like: every thread streams its own rows of the weight once.
    int64_t parts = std::min<int64_t>(threads, a.N);
    auto run_part = [&](int64_t p) {
      ks.small_m_nt(a, 0, a.M, part_begin(a.N, 1, parts, p), part_begin(a.N, 1, parts, p + 1));
    };
    if (parts <= 1) return run_part(0);
    pool->parallel_for(parts, 1, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) run_part(p);
    });
    return;
  }

  const Grid grid = choose_grid(ks, a.M, a.N, threads);
  auto run_task = [&](int64_t t) {
    int64_t r = t / grid.cols, c = t % grid.cols;
    gemm_tile(ks, a, part_begin(a.M, ks.mr, grid.rows, r), part_begin(a.M, ks.mr, grid.rows, r + 1),
              part_begin(a.N, ks.nr, grid.cols, c), part_begin(a.N, ks.nr, grid.cols, c + 1));
  };
  const int64_t tasks = grid.rows * grid.cols;
  if (tasks == 1) return run_task(0);
  pool->parallel_for(tasks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) run_task(t);
  });
}

// ---- 3. portable kernels --------------------------------------------------------------------------------------------
//
// 4 x 8 tiles: 8 accumulators of 4 lanes leave room in the 16 SSE registers of baseline x86-64 (NEON has 32). GCC
// vectorised this shape best of 2..8 x 4..16 (29 vs 25 GFLOP/s for 6 x 8 on one Zen3 core). Loops are written
// lane-wise (no reductions inside the k loop) so the compiler can vectorise them without -ffast-math.

namespace {

struct PortableTraits {
  static constexpr int kMR = 4;
  static constexpr int kNR = 8;
  static constexpr int64_t kMC = 96;
  static constexpr int64_t kKC = 256;
  static constexpr int64_t kNC = 2048;
  static constexpr int64_t kSmallMMax = 8;  // measured: the dot path beat packing up to M = 8 for F32 weights
  static_assert(kMC % kMR == 0 && kNC % kNR == 0, "cache blocks must hold whole micro-tiles");
  static_assert(kKC * kNR * sizeof(float) <= 16 * 1024, "a B micro-panel should stay in a 32 KiB L1 next to A");
};

inline float widen(const float* p, int64_t i) { return p[i]; }
inline float widen_bf16(const uint16_t* p, int64_t i) { return bf16_to_f32(p[i]); }
inline float widen_f16(const uint16_t* p, int64_t i) { return f16_to_f32(p[i]); }

void portable_pack_a(const float* a, int64_t lda, int64_t mc, int64_t kc, float* dst) {
  constexpr int MR = PortableTraits::kMR;
  for (int64_t p = 0; p < mc; p += MR, dst += MR * kc) {
    const int rows = static_cast<int>(std::min<int64_t>(MR, mc - p));
    for (int64_t k = 0; k < kc; ++k)
      for (int i = 0; i < MR; ++i) dst[k * MR + i] = i < rows ? a[(p + i) * lda + k] : 0.0f;
  }
}

template <typename T, float (*Widen)(const T*, int64_t)>
void portable_pack_b_typed(const GemmArgs& a, int64_t k0, int64_t kc, int64_t n0, int64_t nc, float* dst) {
  constexpr int NR = PortableTraits::kNR;
  const T* b = static_cast<const T*>(a.B);
  for (int64_t p = 0; p < nc; p += NR, dst += NR * kc) {
    const int cols = static_cast<int>(std::min<int64_t>(NR, nc - p));
    if (a.b_transposed) {
      // B_nk: each panel column is a contiguous weight row; read it along k.
      for (int j = 0; j < NR; ++j) {
        if (j < cols) {
          const T* row = b + (n0 + p + j) * a.ldb + k0;
          for (int64_t k = 0; k < kc; ++k) dst[k * NR + j] = Widen(row, k);
        } else {
          for (int64_t k = 0; k < kc; ++k) dst[k * NR + j] = 0.0f;
        }
      }
    } else {
      for (int64_t k = 0; k < kc; ++k) {
        const T* row = b + (k0 + k) * a.ldb + n0 + p;
        for (int j = 0; j < NR; ++j) dst[k * NR + j] = j < cols ? Widen(row, j) : 0.0f;
      }
    }
  }
}

void portable_pack_b(const GemmArgs& a, int64_t k0, int64_t kc, int64_t n0, int64_t nc, float* dst) {
  switch (a.b_dtype) {
    case DType::BF16: return portable_pack_b_typed<uint16_t, widen_bf16>(a, k0, kc, n0, nc, dst);
    case DType::F16: return portable_pack_b_typed<uint16_t, widen_f16>(a, k0, kc, n0, nc, dst);
    default: return portable_pack_b_typed<float, widen>(a, k0, kc, n0, nc, dst);
  }
}

void portable_micro_kernel(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int m, int n,
                           const TileEpilogue& ep) {
  constexpr int MR = PortableTraits::kMR, NR = PortableTraits::kNR;
  float acc[MR][NR] = {};
  for (int64_t k = 0; k < kc; ++k, a += MR, b += NR)
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i][j] += a[i] * b[j];
  store_tile(&acc[0][0], NR, c, ldc, m, n, ep);
}

// Dot product in 8 independent lanes (vectorisable without reassociation), summed at the end.
inline float dot_lanes(const float* x, const float* y, int64_t K) {
  constexpr int L = 8;
  float lanes[L] = {};
  int64_t k = 0;
  for (; k + L <= K; k += L)
    for (int l = 0; l < L; ++l) lanes[l] += x[k + l] * y[k + l];
  float tail = 0.0f;
  for (; k < K; ++k) tail += x[k] * y[k];
  float sum = 0.0f;
  for (int l = 0; l < L; ++l) sum += lanes[l];
  return sum + tail;
}

thread_local std::vector<float> t_widened_row;

void portable_small_m_nt(const GemmArgs& a, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  std::vector<float>& widened = t_widened_row;
  if (a.b_dtype != DType::F32) widened.resize(static_cast<size_t>(a.K));
  for (int64_t n = n0; n < n1; ++n) {
    const float* w;
    if (a.b_dtype == DType::F32) {
      w = static_cast<const float*>(a.B) + n * a.ldb;
    } else {
      // Separate loops per dtype: the BF16 one is a plain shift the compiler vectorises.
      const uint16_t* row = static_cast<const uint16_t*>(a.B) + n * a.ldb;
      if (a.b_dtype == DType::BF16)
        for (int64_t k = 0; k < a.K; ++k) widened[k] = bf16_to_f32(row[k]);
      else
        for (int64_t k = 0; k < a.K; ++k) widened[k] = f16_to_f32(row[k]);
      w = widened.data();
    }
    for (int64_t m = m0; m < m1; ++m) {
      float v = dot_lanes(a.A + m * a.lda, w, a.K);
      if (a.bias) v += a.bias[n];
      float* c = a.C + m * a.ldc + n;
      if (a.beta != 0.0f) v += a.beta * *c;
      *c = v;
    }
  }
}

}  // namespace

const GemmKernelSet& portable_kernels() {
  static const GemmKernelSet set = {
      "portable",          PortableTraits::kMR,  PortableTraits::kNR,   PortableTraits::kMC,
      PortableTraits::kKC, PortableTraits::kNC,  PortableTraits::kSmallMMax,
      portable_pack_a,     portable_pack_b,      portable_micro_kernel, portable_small_m_nt,
  };
  return set;
}

}  // namespace gemm_detail

void gemm(const GemmArgs& args, ThreadPool* pool) {
#if defined(SHOWO2_HAVE_AVX2_KERNELS)
  if (cpu_features().use_avx2) return gemm_detail::run_gemm(gemm_detail::avx2_kernels(), args, pool);
#endif
  gemm_detail::run_gemm(gemm_detail::portable_kernels(), args, pool);
}

}  // namespace showo2::cpu
