// gemm (native/core/cpu/gemm.cpp, gemm_avx2.cpp) against gemm_reference, the plain double-accumulating triple loop.
//
// Every kernel set the machine can run is tested directly through gemm_detail::run_gemm (the portable one always,
// AVX2 when the CPU has it), because gemm() itself picks one set per process. Each case covers F32/BF16/F16 B in
// both layouts, on a 2- and a 3-thread pool and without one. The reference reads exactly the B values the kernels
// read (the stored BF16/F16 widened), so the only expected difference is F32 rounding.
//
// Tolerance: gemm accumulates in F32 in a different order (kc slices, 8-lane vectors) from the reference, which
// accumulates in double and rounds once. With inputs in [-1, 1] a dot product of length K has magnitude ~sqrt(K)/3,
// and F32 accumulation error grows like eps32 · sqrt(K) · (that magnitude) ~ 6e-8 · K / 3, i.e. ~3e-5 at K = 1536.
// atol = 1e-6 · (K + 1) leaves a ~50x margin over that, rtol = 1e-5 · sqrt(K + 1) covers large |C| (bias, beta · C).
// A wrong index or a missed tile shows up as an O(1) error, far outside both.
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "cpu/cpu_features.h"
#include "cpu/gemm.h"
#include "cpu/gemm_internal.h"
#include "cpu/thread_pool.h"
#include "test_util.h"

using namespace showo2;
using cpu::GemmArgs;
using cpu::gemm_detail::GemmKernelSet;

namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();

std::vector<const GemmKernelSet*> kernel_sets() {
  std::vector<const GemmKernelSet*> sets = {&cpu::gemm_detail::portable_kernels()};
#if defined(SHOWO2_HAVE_AVX2_KERNELS)
  if (cpu::cpu_features().use_avx2) sets.push_back(&cpu::gemm_detail::avx2_kernels());
#endif
  return sets;
}

// B stored in its dtype, as raw bytes.
struct StoredB {
  std::vector<uint16_t> half;
  std::vector<float> f32;
  const void* data(DType dt) const { return dt == DType::F32 ? static_cast<const void*>(f32.data()) : half.data(); }
};

StoredB store_b(const std::vector<float>& values, DType dt) {
  StoredB s;
  if (dt == DType::F32) {
    s.f32 = values;
  } else {
    s.half.resize(values.size());
    for (size_t i = 0; i < values.size(); ++i)
      s.half[i] = dt == DType::BF16 ? f32_to_bf16(values[i]) : f32_to_f16(values[i]);
  }
  return s;
}

struct GemmCase {
  int64_t M, N, K;
  DType b_dtype = DType::F32;
  bool b_transposed = false;
  bool bias = false;
  float beta = 0.0f;
  int64_t pad = 0;  // extra columns in lda/ldb/ldc beyond the logical width, filled with NaN sentinels
};

std::string describe(const GemmCase& c, const char* kernels, int threads) {
  std::ostringstream os;
  os << kernels << " M=" << c.M << " N=" << c.N << " K=" << c.K << " B=" << dtype_name(c.b_dtype)
     << (c.b_transposed ? " NT" : " NN") << (c.bias ? " bias" : "") << " beta=" << c.beta << " pad=" << c.pad
     << " threads=" << threads;
  return os.str();
}

// Runs one case with one kernel set (null = public gemm()) and pool, and compares with gemm_reference. The padding
// of A and B holds NaN, so reading it would poison the result; the padding of C must come back untouched.
void check_case(const GemmCase& c, const GemmKernelSet* kernels, cpu::ThreadPool* pool, uint32_t seed) {
  const int64_t lda = c.K + c.pad;
  const int64_t b_rows = c.b_transposed ? c.N : c.K, b_width = c.b_transposed ? c.K : c.N;
  const int64_t ldb = b_width + c.pad, ldc = c.N + c.pad;

  std::vector<float> a = test::random_vector(static_cast<size_t>(c.M * lda), seed);
  std::vector<float> b = test::random_vector(static_cast<size_t>(b_rows * ldb), seed + 1);
  std::vector<float> c0 = test::random_vector(static_cast<size_t>(c.M * ldc), seed + 2);
  std::vector<float> bias = test::random_vector(static_cast<size_t>(c.N), seed + 3);
  for (int64_t r = 0; r < c.M; ++r)
    for (int64_t j = c.K; j < lda; ++j) a[r * lda + j] = kNaN;
  for (int64_t r = 0; r < b_rows; ++r)
    for (int64_t j = b_width; j < ldb; ++j) b[r * ldb + j] = kNaN;
  // beta == 0 promises C is never read: fill it with NaN so a stray read shows.
  if (c.beta == 0.0f)
    for (float& v : c0) v = kNaN;
  const float sentinel = 12345.0f;
  for (int64_t r = 0; r < c.M; ++r)
    for (int64_t j = c.N; j < ldc; ++j) c0[r * ldc + j] = sentinel;

  StoredB stored = store_b(b, c.b_dtype);
  GemmArgs args;
  args.M = c.M;
  args.N = c.N;
  args.K = c.K;
  args.A = a.data();
  args.lda = lda;
  args.B = stored.data(c.b_dtype);
  args.b_dtype = c.b_dtype;
  args.ldb = ldb;
  args.b_transposed = c.b_transposed;
  args.beta = c.beta;
  args.bias = c.bias ? bias.data() : nullptr;

  std::vector<float> out = c0, ref = c0;
  args.C = ref.data();
  args.ldc = ldc;
  cpu::gemm_reference(args);
  args.C = out.data();
  if (kernels) cpu::gemm_detail::run_gemm(*kernels, args, pool);
  else cpu::gemm(args, pool);

  const std::string what = describe(c, kernels ? kernels->name : "gemm()", pool ? pool->num_threads() : 1);
  // See the file comment for why these tolerances.
  const double atol = 1e-6 * static_cast<double>(c.K + 1);
  const double rtol = 1e-5 * std::sqrt(static_cast<double>(c.K + 1));
  for (int64_t r = 0; r < c.M; ++r) {
    EXPECT_CLOSE(out.data() + r * ldc, ref.data() + r * ldc, static_cast<size_t>(c.N), atol, rtol,
                 what + " row " + std::to_string(r));
    for (int64_t j = c.N; j < ldc; ++j)
      if (out[r * ldc + j] != sentinel) test::fail_at(__FILE__, __LINE__, what + ": wrote C padding");
  }
}

// Every B dtype and layout, on every kernel set, threaded and not.
void check_all_variants(GemmCase c, uint32_t seed) {
  cpu::ThreadPool pool2(2), pool3(3);
  cpu::ThreadPool* pools[] = {nullptr, &pool2, &pool3};
  for (const GemmKernelSet* ks : kernel_sets())
    for (DType dt : {DType::F32, DType::BF16, DType::F16})
      for (bool nt : {false, true})
        for (cpu::ThreadPool* pool : pools) {
          c.b_dtype = dt;
          c.b_transposed = nt;
          check_case(c, ks, pool, seed++);
        }
}

}  // namespace

SHOWO2_TEST(gemm_edge_shapes_all_variants) {
  // Sizes around the micro-tiles (6 x 16 AVX2, 4 x 8 portable), the 8-wide k vectors and the small-M threshold.
  const int64_t ms[] = {1, 2, 3, 4, 5, 6, 7, 9, 13};
  const int64_t ns[] = {1, 7, 8, 15, 16, 17, 33};
  const int64_t ks[] = {1, 7, 8, 9, 31};
  uint32_t seed = 100;
  for (int64_t m : ms)
    for (int64_t n : ns)
      for (int64_t k : ks) {
        GemmCase c{m, n, k};
        c.bias = (m + n + k) % 2 == 0;
        check_all_variants(c, seed);
        seed += 100;
      }
}

SHOWO2_TEST(gemm_random_shapes_with_bias_beta_and_padding) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int64_t> dim(1, 130), kdim(1, 300), pad(0, 5);
  const float betas[] = {0.0f, 1.0f, 0.5f, -2.0f};
  for (int i = 0; i < 24; ++i) {
    GemmCase c{dim(rng), dim(rng), kdim(rng)};
    c.bias = i % 3 != 0;
    c.beta = betas[i % 4];
    c.pad = pad(rng);
    check_all_variants(c, 1000 + 100 * i);
  }
}

SHOWO2_TEST(gemm_spans_several_cache_blocks) {
  // M > mc (96) and K > kc (512 AVX2, 256 portable) with ragged ends: several A blocks and K slices, with the bias
  // and beta applied on the first slice only.
  GemmCase c{301, 45, 600};
  c.bias = true;
  c.beta = 0.5f;
  c.pad = 3;
  check_all_variants(c, 5000);
  // N > nc (2048 in both kernel sets): several B blocks per task, with a ragged last panel.
  GemmCase wide{20, 4243, 40};  // M > small_m_max, so NT is packed too
  wide.bias = true;
  check_all_variants(wide, 6000);
}

SHOWO2_TEST(gemm_decode_shapes_small_m) {
  // M <= small_m_max (16 AVX2, 8 portable) with the weight layout takes the unpacked dot-product path, M = 17 the
  // packed one; K tails of 1..7 exercise the scalar tail, N = 211 (not a multiple of the 8 / 3 weight-row groups) the
  // remainder loop.
  uint32_t seed = 7000;
  for (int64_t m : {1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 16, 17})
    for (int64_t k : {5, 64, 203}) {
      GemmCase c{m, 211, k};
      c.bias = m % 2 == 1;
      c.beta = m % 3 == 0 ? 1.0f : 0.0f;
      c.pad = m % 4;
      check_all_variants(c, seed);
      seed += 100;
    }
}

SHOWO2_TEST(gemm_public_entry_point_matches_reference) {
  // gemm() as the rest of the core calls it (whichever kernel set this CPU gets).
  cpu::ThreadPool pool(2);
  uint32_t seed = 8000;
  for (DType dt : {DType::F32, DType::BF16, DType::F16})
    for (bool nt : {false, true}) {
      GemmCase c{97, 130, 257, dt, nt, true, 0.0f, 2};
      check_case(c, nullptr, &pool, seed++);
      GemmCase decode{1, 300, 257, dt, nt, true, 1.0f, 0};
      check_case(decode, nullptr, &pool, seed++);
    }
}

SHOWO2_TEST(gemm_widens_f16_and_bf16_exactly) {
  // Subnormals, the largest finite values and signed zeros of each half type must widen exactly like the scalar
  // converters in dtype.h (vcvtph2ps and the bf16 shift on the AVX2 path). A is one-hot rows of the identity, so every
  // output is 1 · b + 0 · (others) and must equal the widened B element exactly (tolerance 0). Rows are fed 16 at a
  // time (packed path) and 4 at a time (small-M path); K = 16 puts the values in full 8-wide vectors.
  const int64_t K = 16, N = 17;
  const std::vector<uint16_t> f16_bits = {0x0001, 0x03ff, 0x8001, 0x0400, 0x7bff, 0xfbff, 0x0000, 0x8000,
                                          0x3c00, 0xbc00, 0x3555, 0x0200, 0x1234, 0x83ff, 0x5bff, 0x2e66};
  const std::vector<uint16_t> bf16_bits = {0x0001, 0x007f, 0x8001, 0x0080, 0x7f7f, 0xff7f, 0x0000, 0x8000,
                                           0x3f80, 0xbf80, 0x3eab, 0x0040, 0x1234, 0x807f, 0x4049, 0x3dcd};
  std::vector<float> identity(static_cast<size_t>(K * K), 0.0f);
  for (int64_t i = 0; i < K; ++i) identity[static_cast<size_t>(i * K + i)] = 1.0f;
  cpu::ThreadPool pool(2);
  for (DType dt : {DType::F16, DType::BF16}) {
    const std::vector<uint16_t>& bits = dt == DType::F16 ? f16_bits : bf16_bits;
    for (bool nt : {false, true}) {
      std::vector<uint16_t> b(static_cast<size_t>(N * K));
      std::vector<float> expected(static_cast<size_t>(K * N));  // B as [K, N], widened by dtype.h
      for (int64_t n = 0; n < N; ++n)
        for (int64_t k = 0; k < K; ++k) {
          uint16_t v = bits[static_cast<size_t>((n + k) % 16)];
          b[static_cast<size_t>(nt ? n * K + k : k * N + n)] = v;
          expected[static_cast<size_t>(k * N + n)] = dt == DType::F16 ? f16_to_f32(v) : bf16_to_f32(v);
        }
      for (const GemmKernelSet* ks : kernel_sets())
        for (int64_t rows : {int64_t{16}, int64_t{4}})
          for (int64_t m0 = 0; m0 < K; m0 += rows) {
            GemmArgs args;
            args.M = rows;
            args.N = N;
            args.K = K;
            args.A = identity.data() + m0 * K;
            args.lda = K;
            args.B = b.data();
            args.b_dtype = dt;
            args.ldb = nt ? K : N;
            args.b_transposed = nt;
            std::vector<float> out(static_cast<size_t>(rows * N));
            args.C = out.data();
            args.ldc = N;
            cpu::gemm_detail::run_gemm(*ks, args, &pool);
            EXPECT_CLOSE(out.data(), expected.data() + m0 * N, out.size(), 0.0, 0.0,
                         std::string(ks->name) + " " + dtype_name(dt) + (nt ? " NT" : " NN") + " rows from " +
                             std::to_string(m0));
          }
    }
  }
}

SHOWO2_TEST(gemm_empty_dimensions) {
  cpu::ThreadPool pool(2);
  for (const GemmKernelSet* ks : kernel_sets()) {
    // K == 0: C = bias + beta * C.
    std::vector<float> c = {1, 2, 3, 4, 5, 6};
    std::vector<float> bias = {10, 20, 30};
    GemmArgs args;
    args.M = 2;
    args.N = 3;
    args.K = 0;
    args.C = c.data();
    args.ldc = 3;
    args.bias = bias.data();
    args.beta = 2.0f;
    cpu::gemm_detail::run_gemm(*ks, args, &pool);
    std::vector<float> expected = {12, 24, 36, 18, 30, 42};
    EXPECT_CLOSE(c.data(), expected.data(), c.size(), 0.0, 0.0, std::string(ks->name) + " K=0");
    // beta == 0 and no bias: zeros, even over NaN.
    std::vector<float> nan_c(6, kNaN);
    args.C = nan_c.data();
    args.bias = nullptr;
    args.beta = 0.0f;
    cpu::gemm_detail::run_gemm(*ks, args, &pool);
    std::vector<float> zeros(6, 0.0f);
    EXPECT_CLOSE(nan_c.data(), zeros.data(), 6, 0.0, 0.0, std::string(ks->name) + " K=0 beta=0");
    // M == 0 or N == 0: nothing is touched, null pointers are fine.
    GemmArgs empty;
    empty.M = 0;
    empty.N = 5;
    empty.K = 3;
    cpu::gemm_detail::run_gemm(*ks, empty, &pool);
    empty.M = 4;
    empty.N = 0;
    cpu::gemm_detail::run_gemm(*ks, empty, &pool);
  }
}

SHOWO2_TEST(gemm_propagates_nan_and_inf) {
  // No -ffast-math: a NaN in A must reach its output row, never vanish (the kernels keep IEEE semantics).
  const int64_t M = 8, N = 20, K = 24;
  for (const GemmKernelSet* ks : kernel_sets())
    for (bool nt : {false, true}) {
      std::vector<float> a = test::random_vector(static_cast<size_t>(M * K), 21);
      std::vector<float> b = test::random_vector(static_cast<size_t>(N * K), 22);
      a[3 * K + 5] = kNaN;
      GemmArgs args;
      args.M = M;
      args.N = N;
      args.K = K;
      args.A = a.data();
      args.lda = K;
      args.B = b.data();
      args.ldb = nt ? K : N;
      args.b_transposed = nt;
      std::vector<float> c(static_cast<size_t>(M * N));
      args.C = c.data();
      args.ldc = N;
      cpu::gemm_detail::run_gemm(*ks, args, nullptr);
      for (int64_t n = 0; n < N; ++n) CHECK(std::isnan(c[3 * N + n]));
      for (int64_t n = 0; n < N; ++n) CHECK(std::isfinite(c[2 * N + n]));
    }
}

SHOWO2_TEST(gemm_called_from_pool_workers) {
  // attention and conv call gemm per tile from inside parallel_for; the nested call must run (serially) and agree.
  cpu::ThreadPool pool(2);
  const int64_t tiles = 6, M = 40, N = 50, K = 70;
  std::vector<float> a = test::random_vector(static_cast<size_t>(tiles * M * K), 31);
  std::vector<float> b = test::random_vector(static_cast<size_t>(K * N), 32);
  std::vector<float> out(static_cast<size_t>(tiles * M * N)), ref(out.size());
  auto args_for = [&](int64_t t, float* c) {
    GemmArgs args;
    args.M = M;
    args.N = N;
    args.K = K;
    args.A = a.data() + t * M * K;
    args.lda = K;
    args.B = b.data();
    args.ldb = N;
    args.C = c + t * M * N;
    args.ldc = N;
    return args;
  };
  pool.parallel_for(tiles, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) cpu::gemm(args_for(t, out.data()), &pool);
  });
  for (int64_t t = 0; t < tiles; ++t) cpu::gemm_reference(args_for(t, ref.data()));
  EXPECT_CLOSE(out.data(), ref.data(), out.size(), 1e-6 * (K + 1), 1e-5 * std::sqrt(K + 1.0), "nested gemm");
}

SHOWO2_TEST(gemm_rejects_bad_arguments) {
  std::vector<float> a(64), b(64), c(64);
  GemmArgs ok;
  ok.M = 4;
  ok.N = 4;
  ok.K = 4;
  ok.A = a.data();
  ok.lda = 4;
  ok.B = b.data();
  ok.ldb = 4;
  ok.C = c.data();
  ok.ldc = 4;
  cpu::gemm(ok, nullptr);

  GemmArgs bad = ok;
  bad.M = -1;
  CHECK_THROWS_CODE(cpu::gemm(bad, nullptr), InvalidArgument);
  bad = ok;
  bad.lda = 3;
  CHECK_THROWS_CODE(cpu::gemm(bad, nullptr), InvalidArgument);
  bad = ok;
  bad.N = 6;  // NN: ldb must cover N
  bad.ldc = 8;
  CHECK_THROWS_CODE(cpu::gemm(bad, nullptr), InvalidArgument);
  bad = ok;
  bad.ldc = 2;
  CHECK_THROWS_CODE(cpu::gemm(bad, nullptr), InvalidArgument);
  bad = ok;
  bad.B = nullptr;
  CHECK_THROWS_CODE(cpu::gemm(bad, nullptr), InvalidArgument);
  bad = ok;
  bad.b_dtype = DType::I32;
  CHECK_THROWS_CODE(cpu::gemm(bad, nullptr), UnsupportedDtype);
}

SHOWO2_TEST_MAIN()
