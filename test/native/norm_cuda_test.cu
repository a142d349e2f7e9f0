// cuda/norm.cu (RMSNorm, LayerNorm, softmax, channel RMS norm) against the CPU backend (native/core/cpu/norm.cpp,
// activation.cpp) on the same seeded inputs: odd and model row lengths, F32/BF16/F16/absent parameters, strided
// views, in place, warp- and block-per-row variants, NaN rows. Skipped without a CUDA device, except the argument
// checks, which never touch the GPU.
//
// Tolerance (row norms): both sides are fp32 with fp32 partial sums. The CPU finishes its 8 lane sums in double; the
// GPU sums per thread (chains of at most C/32 = 148 terms for the widest row) then in a tree, so its mean(x^2) or
// variance is within ~(C/32 + log2 C) * 2^-24 relative of exact (< 1e-5 worst case, ~1e-6 in practice), and the
// normalising factor (a square root) halves that. Three more roundings per output. rtol 1e-5 covers that worst case;
// atol 1e-6 covers outputs near zero, whose error is set by the row's scale (|x| <= ~6 here over an rms of ~1.5).
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "../../cuda/norm.h"
#include "cpu/cpu_backend.h"
#include "cuda_test_util.h"
#include "tensor.h"
#include "test_util.h"

using namespace showo2;
using showo2::test::DeviceMirror;
using showo2::test::random_normal;
using showo2::test::random_vector;

namespace {

constexpr double kAtol = 1e-6;
constexpr double kRtol = 1e-5;

cuda::NormParams row_params(const Tensor& x, const DeviceMirror& dx, const Tensor& out, const DeviceMirror& dout) {
  cuda::NormParams p;
  p.x = dx.f32();
  p.x_rows = test::row_map_of(x);
  p.out = dout.f32();
  p.out_rows = test::row_map_of(out);
  p.rows = test::rows_of(x);
  p.cols = x.size(-1);
  return p;
}

Tensor make_param(int64_t C, DType dtype, uint32_t seed) {
  return Tensor::from_f32({C}, random_vector(static_cast<size_t>(C), seed, 0.5f, 1.5f)).to(dtype);
}

// Row lengths: tails (1, 7), q/k-norm (64), SigLIP head (72), odd wide (1153), LLM (1536), flow head (2048), an
// odd multiple of 4 above 4096 (4304: the 512-thread variant with float4), and the widest norm in Show-o2 (4736).
const int64_t kRowLengths[] = {1, 7, 64, 72, 1153, 1536, 2048, 4304, 4736};

}  // namespace

SHOWO2_TEST(rms_norm_matches_cpu) {
  test::require_cuda_device();
  cpu::CpuBackend cpu(2);
  for (int64_t C : kRowLengths)
    for (DType dt : {DType::F32, DType::BF16, DType::F16})
      for (bool with_weight : {true, false}) {
        const int64_t rows = C <= 72 ? 301 : 9;  // many rows: several warp-per-row blocks and a partial last block
        Tensor x = Tensor::from_f32({rows, C}, random_normal(static_cast<size_t>(rows * C), 10 + uint32_t(C), 1.5f));
        Tensor w = with_weight ? make_param(C, dt, 11) : Tensor();
        Tensor ref = Tensor::empty({rows, C}, DType::F32);
        cpu.rms_norm(x, w, 1e-6f, ref);

        DeviceMirror dx(x), dw(with_weight ? w : Tensor::zeros({1}, DType::F32));
        Tensor out = Tensor::zeros({rows, C}, DType::F32);
        DeviceMirror dout(out);
        cuda::NormParams p = row_params(x, dx, out, dout);
        p.weight = with_weight ? dw.ptr() : nullptr;
        p.weight_dtype = dt;
        p.eps = 1e-6f;
        cuda::launch_rms_norm(p, 0);
        const std::vector<float> got = dout.download_f32(), want = ref.to_f32_vector();
        EXPECT_CLOSE(got.data(), want.data(), want.size(), kAtol, kRtol,
                     "rms_norm C=" + std::to_string(C) + " " + dtype_name(dt) + (with_weight ? "" : " no weight"));

        cuda::launch_rms_norm(row_params(x, dx, x, dx), 0);  // in place, no weight
        Tensor ref_in_place = Tensor::empty({rows, C}, DType::F32);
        cpu.rms_norm(x, Tensor(), 0.0f, ref_in_place);
        const std::vector<float> got2 = dx.download_f32(), want2 = ref_in_place.to_f32_vector();
        EXPECT_CLOSE(got2.data(), want2.data(), want2.size(), kAtol, kRtol, "rms_norm in place C=" + std::to_string(C));
      }
}

SHOWO2_TEST(rms_norm_on_strided_head_views) {
  test::require_cuda_device();
  cpu::CpuBackend cpu(2);
  // q/k-norm runs per head on a [B, L, H, D] view of a fused projection: rows are not back to back, and with an odd
  // D the float4 path is off as well.
  for (int64_t D : {64, 63}) {
    Tensor base = Tensor::from_f32({2, 5, 4 * D}, random_normal(static_cast<size_t>(2 * 5 * 4 * D), 21));
    Tensor heads = base.reshape({2, 5, 4, D}).slice(2, 1, 3);  // [2, 5, 2, D] with a 4-head row stride
    Tensor w = make_param(D, DType::BF16, 22);
    Tensor ref = Tensor::empty({2, 5, 2, D}, DType::F32);
    cpu.rms_norm(heads, w, 1e-6f, ref);
    DeviceMirror dheads(heads), dw(w);
    cuda::NormParams p = row_params(heads, dheads, heads, dheads);  // in place on the view
    p.weight = dw.ptr();
    p.weight_dtype = DType::BF16;
    p.eps = 1e-6f;
    cuda::launch_rms_norm(p, 0);
    const std::vector<float> got = dheads.download_f32(), want = ref.to_f32_vector();
    EXPECT_CLOSE(got.data(), want.data(), want.size(), kAtol, kRtol, "rms_norm on head views D=" + std::to_string(D));
    // The other heads of the base tensor are untouched.
    Tensor untouched = dheads.download();
    Tensor full = Tensor::view_of(untouched.storage(), DType::F32, {2, 5, 4, D}, contiguous_strides({2, 5, 4, D}), 0);
    const std::vector<float> before = base.reshape({2, 5, 4, D}).slice(2, 0, 1).to_f32_vector();
    const std::vector<float> after = full.slice(2, 0, 1).to_f32_vector();
    EXPECT_CLOSE(after.data(), before.data(), before.size(), 0.0, 0.0, "rms_norm leaves other heads alone");
  }
}

SHOWO2_TEST(layer_norm_matches_cpu) {
  test::require_cuda_device();
  cpu::CpuBackend cpu(2);
  for (int64_t C : {int64_t{1}, int64_t{5}, int64_t{72}, int64_t{1152}, int64_t{1153}, int64_t{4304}, int64_t{4736}})
    for (DType dt : {DType::F32, DType::BF16})
      for (bool with_params : {true, false}) {
        const int64_t rows = 7;
        std::vector<float> xv = random_normal(static_cast<size_t>(rows * C), 30 + uint32_t(C));
        for (size_t i = 0; i < xv.size(); ++i) xv[i] += (i / C == 3) ? 300.0f : 0.0f;  // the two-pass variance
        Tensor x = Tensor::from_f32({rows, C}, xv);
        Tensor w = with_params ? make_param(C, dt, 31) : Tensor();
        Tensor b = with_params ? make_param(C, dt, 32) : Tensor();
        Tensor ref = Tensor::empty({rows, C}, DType::F32);
        cpu.layer_norm(x, w, b, 1e-6f, ref);
        Tensor placeholder = Tensor::zeros({1}, DType::F32);
        DeviceMirror dx(x), dw(with_params ? w : placeholder), db(with_params ? b : placeholder);
        cuda::NormParams p = row_params(x, dx, x, dx);  // in place
        p.weight = with_params ? dw.ptr() : nullptr;
        p.weight_dtype = dt;
        p.bias = with_params ? db.ptr() : nullptr;
        p.bias_dtype = dt;
        p.eps = 1e-6f;
        cuda::launch_layer_norm(p, 0);
        const std::vector<float> got = dx.download_f32(), want = ref.to_f32_vector();
        // Row 3 sits at 300 +- 3: x - mean is only exact to 300 * 2^-24 ~ 2e-5 absolute on either side before the
        // 1/std (~1) scaling, so that row gets atol 1e-4 (as in norm_test.cpp); the others keep the file's bounds.
        for (int64_t r = 0; r < rows; ++r)
          EXPECT_CLOSE(got.data() + r * C, want.data() + r * C, static_cast<size_t>(C), r == 3 ? 1e-4 : kAtol, kRtol,
                       "layer_norm C=" + std::to_string(C) + " " + dtype_name(dt) + " row " + std::to_string(r));
      }
}

SHOWO2_TEST(softmax_matches_cpu) {
  test::require_cuda_device();
  cpu::CpuBackend cpu(2);
  for (int64_t C : {int64_t{1}, int64_t{7}, int64_t{72}, int64_t{1153}, int64_t{4304}, int64_t{5000}}) {
    const int64_t rows = 6;
    std::vector<float> xv = random_normal(static_cast<size_t>(rows * C), 40 + uint32_t(C), 4.0f);
    xv[static_cast<size_t>(2 * C)] = NAN;  // row 2: a NaN poisons the whole row (torch and the CPU agree)
    // Row 4: masked entries (never the whole row: an all -inf row is NaN on both sides, which EXPECT_CLOSE rejects).
    for (int64_t i = 0; i + 1 < C; i += 2) xv[static_cast<size_t>(4 * C + i)] = -INFINITY;
    Tensor x = Tensor::from_f32({rows, C}, xv);
    Tensor ref = Tensor::empty({rows, C}, DType::F32);
    cpu.softmax(x, ref);
    DeviceMirror dx(x);
    Tensor out = Tensor::zeros({rows, C}, DType::F32);
    DeviceMirror dout(out);
    cuda::launch_softmax(row_params(x, dx, out, dout), 0);
    const std::vector<float> got = dout.download_f32(), want = ref.to_f32_vector();
    // Outputs are <= 1 and each is exp (<= 2 ulp in CUDA's expf and in libm) times a reciprocal sum whose fp32
    // error is ~log2(C) ulp on the GPU: rtol 1e-5; atol 1e-7 for the tiny probabilities far below the maximum.
    for (int64_t r = 0; r < rows; ++r) {
      if (r == 2) {
        for (int64_t i = 0; i < C; ++i) CHECK(std::isnan(got[static_cast<size_t>(r * C + i)]));
        continue;
      }
      EXPECT_CLOSE(got.data() + r * C, want.data() + r * C, static_cast<size_t>(C), 1e-7, kRtol,
                   "softmax C=" + std::to_string(C) + " row " + std::to_string(r));
    }
  }
}

SHOWO2_TEST(channel_rms_norm_matches_cpu) {
  test::require_cuda_device();
  cpu::CpuBackend cpu(2);
  // The VAE's widths (96, 384) with odd position counts, [N, C, H, W], [N, C] (S = 1), and N > 1.
  const std::vector<Shape> shapes = {{1, 96, 2, 5, 7}, {2, 384, 1, 3, 67}, {1, 3, 9, 9}, {3, 16}, {1, 8, 1, 300}};
  uint32_t seed = 50;
  for (const Shape& shape : shapes)
    for (DType gdt : {DType::F32, DType::BF16, DType::F16}) {
      const int64_t N = shape[0], C = shape[1];
      Tensor x = Tensor::from_f32(shape, random_normal(static_cast<size_t>(shape_numel(shape)), seed++, 2.0f));
      Tensor gamma = make_param(C, gdt, seed++);
      Tensor ref = Tensor::empty(shape, DType::F32);
      cpu.channel_rms_norm(x, gamma, ref);
      DeviceMirror dx(x), dg(gamma);
      cuda::NormParams p;
      p.x = dx.f32();
      p.out = dx.f32();  // in place
      p.rows = N;
      p.cols = C;
      p.positions = shape_numel(shape) / (N * C);
      p.weight = dg.ptr();
      p.weight_dtype = gdt;
      cuda::launch_channel_rms_norm(p, 0);
      const std::vector<float> got = dx.download_f32(), want = ref.to_f32_vector();
      // The CPU sums the C squares in double, the GPU in 4 fp32 chains of C/4 <= 96 terms: <= ~1e-5 relative worst
      // case on the norm, ~1e-6 typical, then three roundings: rtol 2e-5.
      EXPECT_CLOSE(got.data(), want.data(), want.size(), kAtol, 2e-5,
                   "channel_rms_norm " + x.shape_string() + " " + dtype_name(gdt));

      // The fused norm + SiLU (silu_after) against the CPU's two ops; out is another buffer this time. silu's
      // derivative is below 1.1, so the norm's error carries over unamplified: the same tolerance.
      Tensor ref_silu = Tensor::empty(shape, DType::F32);
      cpu.channel_rms_norm_silu(x, gamma, ref_silu);
      DeviceMirror dx2(x), dout(Tensor::empty(shape, DType::F32));
      p.x = dx2.f32();
      p.out = dout.f32();
      p.silu_after = true;
      cuda::launch_channel_rms_norm(p, 0);
      const std::vector<float> got_silu = dout.download_f32(), want_silu = ref_silu.to_f32_vector();
      EXPECT_CLOSE(got_silu.data(), want_silu.data(), want_silu.size(), kAtol, 2e-5,
                   "channel_rms_norm + silu " + x.shape_string() + " " + dtype_name(gdt));
    }
}

SHOWO2_TEST(norm_launchers_reject_bad_arguments) {
  // Checked before anything reaches the GPU, so this runs on machines without one.
  cuda::NormParams p;
  p.rows = 2;
  p.cols = 4;
  CHECK_THROWS_CODE(cuda::launch_rms_norm(p, 0), InvalidArgument);  // null pointers
  p.rows = -1;
  CHECK_THROWS_CODE(cuda::launch_layer_norm(p, 0), ShapeMismatch);
  cuda::NormParams c;
  c.rows = 1;
  c.cols = 4;
  c.positions = 3;
  float dummy[12] = {};
  c.x = dummy;
  c.out = dummy;
  CHECK_THROWS_CODE(cuda::launch_channel_rms_norm(c, 0), InvalidArgument);  // gamma is required
}

SHOWO2_TEST_MAIN()
