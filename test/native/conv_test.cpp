// cpu::conv3d / conv2d (native/core/cpu/conv.cpp) against a direct double-precision loop written here, on seeded
// random inputs, for both lowerings (Window, Gather), every GEMM kernel set (AVX2, portable, reference loop), small
// and default tiles, with and without a thread pool; plus the PyTorch golden fixtures and the argument errors.
//
// Tolerance: the reference accumulates in double; conv.cpp accumulates K = C*KT*KH*KW products in fp32 (in a
// different order per GEMM kernel). Inputs are U(-1, 1) and weights U(-1, 1)/sqrt(K), so each output is a sum of K
// terms of size <= 1/sqrt(K); fp32 rounding of such a sum stays below ~sqrt(K)*eps*|terms| ~ 1e-6 for K <= 1100, and
// we allow atol 2e-5 + rtol 1e-5 (an order of magnitude of slack for adversarial orderings, still far below any real
// indexing bug, which shows up as O(0.1) errors). BF16/F16 weights are compared against the reference run on the
// same rounded weights, so the tolerance is unchanged.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cpu/conv_internal.h"
#include "cpu/cpu_features.h"
#include "cpu/gemm.h"
#include "cpu/gemm_internal.h"
#include "cpu/ops.h"
#include "cpu/thread_pool.h"
#include "kernel_fixtures.h"
#include "tensor.h"
#include "test_util.h"

using namespace showo2;
using showo2::test::random_vector;

namespace {

constexpr double kAtol = 2e-5;  // see the file comment
constexpr double kRtol = 1e-5;

struct ConvCase {
  int64_t N, C, T, H, W;
  int64_t O, KT, KH, KW;
  Conv3dParams p;
  DType weight_dtype = DType::F32;
  bool with_bias = true;
};

int64_t out_size(int64_t in, int64_t pad_a, int64_t pad_b, int64_t k, int64_t stride) {
  return (in + pad_a + pad_b - k) / stride + 1;
}

// Direct convolution in double, reading zero outside x.
std::vector<float> reference_conv3d(const ConvCase& c, const std::vector<float>& x, const std::vector<float>& w,
                                    const std::vector<float>& b) {
  const Conv3dParams& p = c.p;
  const int64_t To = out_size(c.T, p.pad_front, p.pad_back, c.KT, p.stride_t);
  const int64_t Ho = out_size(c.H, p.pad_top, p.pad_bottom, c.KH, p.stride_h);
  const int64_t Wo = out_size(c.W, p.pad_left, p.pad_right, c.KW, p.stride_w);
  std::vector<float> out(static_cast<size_t>(c.N * c.O * To * Ho * Wo));
  size_t idx = 0;
  for (int64_t n = 0; n < c.N; ++n)
    for (int64_t o = 0; o < c.O; ++o)
      for (int64_t to = 0; to < To; ++to)
        for (int64_t ho = 0; ho < Ho; ++ho)
          for (int64_t wo = 0; wo < Wo; ++wo) {
            double acc = b.empty() ? 0.0 : b[static_cast<size_t>(o)];
            for (int64_t ci = 0; ci < c.C; ++ci)
              for (int64_t kt = 0; kt < c.KT; ++kt)
                for (int64_t kh = 0; kh < c.KH; ++kh)
                  for (int64_t kw = 0; kw < c.KW; ++kw) {
                    const int64_t ti = to * p.stride_t - p.pad_front + kt;
                    const int64_t hi = ho * p.stride_h - p.pad_top + kh;
                    const int64_t wi = wo * p.stride_w - p.pad_left + kw;
                    if (ti < 0 || ti >= c.T || hi < 0 || hi >= c.H || wi < 0 || wi >= c.W) continue;
                    const double xv = x[static_cast<size_t>((((n * c.C + ci) * c.T + ti) * c.H + hi) * c.W + wi)];
                    const double wv = w[static_cast<size_t>((((o * c.C + ci) * c.KT + kt) * c.KH + kh) * c.KW + kw)];
                    acc += xv * wv;
                  }
            out[idx++] = static_cast<float>(acc);
          }
  return out;
}

// The tensors of one case, built from seeded random values (weights rounded to the case's dtype).
struct ConvInputs {
  Tensor x, weight, bias;
  std::vector<float> x_values, weight_values, bias_values;  // what the reference sees (weights after rounding)
};

ConvInputs make_inputs(const ConvCase& c, uint32_t seed) {
  ConvInputs in;
  const int64_t K = c.C * c.KT * c.KH * c.KW;
  in.x_values = random_vector(static_cast<size_t>(c.N * c.C * c.T * c.H * c.W), seed);
  in.x = Tensor::from_f32({c.N, c.C, c.T, c.H, c.W}, in.x_values);
  std::vector<float> w = random_vector(static_cast<size_t>(c.O * K), seed + 1);
  for (float& v : w) v /= std::sqrt(static_cast<float>(K));
  in.weight = Tensor::from_f32({c.O, c.C, c.KT, c.KH, c.KW}, w).to(c.weight_dtype);
  in.weight_values = in.weight.to_f32_vector();
  if (c.with_bias) {
    in.bias_values = random_vector(static_cast<size_t>(c.O), seed + 2);
    in.bias = Tensor::from_f32({c.O}, in.bias_values);
  }
  return in;
}

Shape out_shape(const ConvCase& c) {
  return {c.N, c.O, out_size(c.T, c.p.pad_front, c.p.pad_back, c.KT, c.p.stride_t),
          out_size(c.H, c.p.pad_top, c.p.pad_bottom, c.KH, c.p.stride_h),
          out_size(c.W, c.p.pad_left, c.p.pad_right, c.KW, c.p.stride_w)};
}

// ---- the GEMMs conv.cpp can be driven with ----------------------------------------------------------------------------

void portable_gemm(const cpu::GemmArgs& a, cpu::ThreadPool* pool) {
  cpu::gemm_detail::run_gemm(cpu::gemm_detail::portable_kernels(), a, pool);
}
#if defined(SHOWO2_HAVE_AVX2_KERNELS)
void avx2_gemm(const cpu::GemmArgs& a, cpu::ThreadPool* pool) {
  cpu::gemm_detail::run_gemm(cpu::gemm_detail::avx2_kernels(), a, pool);
}
#endif
void reference_gemm(const cpu::GemmArgs& a, cpu::ThreadPool*) { cpu::gemm_reference(a); }

struct NamedGemm {
  const char* name;
  cpu::GemmFn fn;
};

std::vector<NamedGemm> available_gemms() {
  std::vector<NamedGemm> gemms = {{"portable", portable_gemm}, {"reference", reference_gemm}};
#if defined(SHOWO2_HAVE_AVX2_KERNELS)
  if (cpu::cpu_features().use_avx2) gemms.push_back({"avx2", avx2_gemm});
#endif
  return gemms;
}

const char* lowering_name(cpu::ConvLowering l) {
  switch (l) {
    case cpu::ConvLowering::Auto: return "auto";
    case cpu::ConvLowering::Window: return "window";
    case cpu::ConvLowering::Gather: return "gather";
  }
  return "?";
}

// Runs the case with every lowering that applies, every GEMM, small and default tiles, with and without a pool, and
// compares each result with the reference.
void check_case(const ConvCase& c, uint32_t seed, const std::string& label) {
  ConvInputs in = make_inputs(c, seed);
  const std::vector<float> ref = reference_conv3d(c, in.x_values, in.weight_values, in.bias_values);
  cpu::ThreadPool pool(3);  // 3 threads even on a 2-core machine: uneven splits are the interesting ones
  const bool unit_stride = c.p.stride_h == 1 && c.p.stride_w == 1;
  for (cpu::ConvLowering lowering : {cpu::ConvLowering::Auto, cpu::ConvLowering::Window, cpu::ConvLowering::Gather}) {
    if (lowering == cpu::ConvLowering::Window && !unit_stride) continue;
    for (const NamedGemm& g : available_gemms())
      for (int64_t tile : {int64_t{0}, int64_t{7}})
        for (cpu::ThreadPool* p : {static_cast<cpu::ThreadPool*>(nullptr), &pool}) {
          cpu::ConvOptions options;
          options.lowering = lowering;
          options.gemm = g.fn;
          options.tile_pixels = tile;
          Tensor out = Tensor::empty(out_shape(c), DType::F32);
          cpu::conv3d_with_options(in.x, in.weight, in.bias, c.p, out, p, options);
          const std::string what = label + " [" + lowering_name(lowering) + ", gemm " + g.name + ", tile " +
                                   std::to_string(tile) + (p ? ", pool" : ", no pool") + "]";
          std::vector<float> got = out.to_f32_vector();
          EXPECT_CLOSE(got.data(), ref.data(), ref.size(), kAtol, kRtol, what);
        }
  }
}

Conv3dParams pads(int64_t front, int64_t back, int64_t top, int64_t bottom, int64_t left, int64_t right) {
  Conv3dParams p;
  p.pad_front = front;
  p.pad_back = back;
  p.pad_top = top;
  p.pad_bottom = bottom;
  p.pad_left = left;
  p.pad_right = right;
  return p;
}

}  // namespace

// ---- conv3d against the reference --------------------------------------------------------------------------------------

SHOWO2_TEST(conv3d_causal_padding_small_channels) {
  // The VAE's CausalConv3d: time padding 2 in front, none behind; odd sizes everywhere; batch 2.
  ConvCase c{2, 5, 4, 7, 9, 6, 3, 3, 3, pads(2, 0, 1, 1, 1, 1)};
  check_case(c, 11, "causal C5");
}

SHOWO2_TEST(conv3d_causal_padding_many_channels) {
  // Enough channels that Auto picks the Window lowering; the first output frame sees only the last time tap.
  ConvCase c{1, 40, 3, 6, 5, 9, 3, 3, 3, pads(2, 0, 1, 1, 1, 1)};
  check_case(c, 21, "causal C40");
}

SHOWO2_TEST(conv3d_single_frame_is_conv2d_with_last_time_slice) {
  // Spec §3.1: one frame through a causal 3x3x3 conv equals a 2-D conv with weight[:, :, 2].
  ConvCase c{1, 33, 1, 5, 6, 4, 3, 3, 3, pads(2, 0, 1, 1, 1, 1)};
  ConvInputs in = make_inputs(c, 31);
  Tensor out3 = Tensor::empty(out_shape(c), DType::F32);
  cpu::conv3d(in.x, in.weight, in.bias, c.p, out3, nullptr);
  Tensor w2 = in.weight.select(2, 2).contiguous();  // [O, C, 3, 3]
  Tensor x2 = in.x.select(2, 0).contiguous();       // [N, C, H, W]
  Conv2dParams p2;
  p2.pad_top = p2.pad_bottom = p2.pad_left = p2.pad_right = 1;
  Tensor out2 = Tensor::empty({1, 4, 5, 6}, DType::F32);
  cpu::conv2d(x2, w2, in.bias, p2, out2, nullptr);
  std::vector<float> a = out3.to_f32_vector(), b = out2.to_f32_vector();
  // Same taps, same order, same GEMMs: the results must be identical, not merely close.
  EXPECT_CLOSE(a.data(), b.data(), a.size(), 0.0, 0.0, "single frame conv3d vs conv2d");
}

SHOWO2_TEST(conv3d_1x1x1_kernels) {
  // The VAE's conv1/conv2 and RB shortcuts: 1x1x1, no padding (Window reads x directly and writes out directly).
  check_case(ConvCase{2, 33, 3, 4, 5, 17, 1, 1, 1, Conv3dParams{}}, 41, "1x1x1 C33");
  check_case(ConvCase{1, 16, 2, 3, 3, 16, 1, 1, 1, Conv3dParams{}}, 42, "1x1x1 C16");
}

SHOWO2_TEST(conv3d_time_conv_stride_2) {
  // The 'downsample3d' time_conv: k=(3,1,1), stride (2,1,1), applied after the cache supplies 2 frames (no padding);
  // and with padding in time so stride and skipped taps interact.
  ConvCase c{1, 36, 5, 3, 4, 7, 3, 1, 1, Conv3dParams{}};
  c.p.stride_t = 2;
  check_case(c, 51, "time_conv stride 2");
  c.p.pad_front = 2;
  check_case(c, 52, "time_conv stride 2 causal");
}

SHOWO2_TEST(conv3d_asymmetric_padding_and_strides) {
  // Every pad different, pad_back > 0, strides 2 in all three dims (Gather only for the spatial strides).
  ConvCase c{1, 7, 6, 9, 8, 5, 3, 3, 2, pads(1, 2, 0, 2, 3, 1)};
  c.p.stride_t = 2;
  c.p.stride_h = 2;
  c.p.stride_w = 3;
  check_case(c, 61, "asymmetric strided");
  ConvCase d{1, 34, 3, 6, 7, 3, 2, 3, 2, pads(0, 1, 2, 0, 0, 3)};  // unit stride, lopsided pads, even kernels
  check_case(d, 62, "asymmetric unit stride");
}

SHOWO2_TEST(conv3d_bf16_and_f16_weights_without_bias) {
  for (DType dt : {DType::BF16, DType::F16}) {
    ConvCase c{1, 35, 3, 5, 6, 8, 3, 3, 3, pads(2, 0, 1, 1, 1, 1), dt, false};
    check_case(c, 71, std::string("weights ") + dtype_name(dt));
  }
}

// ---- conv2d -------------------------------------------------------------------------------------------------------------

// conv2d is conv3d with one frame and a depth-1 kernel; compare it with the reference through that identity.
void check_conv2d(int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t KH, int64_t KW, const Conv2dParams& p2,
                  DType weight_dtype, uint32_t seed, const std::string& label) {
  ConvCase c{N, C, 1, H, W, O, 1, KH, KW, Conv3dParams{}, weight_dtype, true};
  c.p.stride_h = p2.stride_h;
  c.p.stride_w = p2.stride_w;
  c.p.pad_top = p2.pad_top;
  c.p.pad_bottom = p2.pad_bottom;
  c.p.pad_left = p2.pad_left;
  c.p.pad_right = p2.pad_right;
  ConvInputs in = make_inputs(c, seed);
  const std::vector<float> ref = reference_conv3d(c, in.x_values, in.weight_values, in.bias_values);
  Shape o5 = out_shape(c);
  cpu::ThreadPool pool(2);
  for (cpu::ThreadPool* p : {static_cast<cpu::ThreadPool*>(nullptr), &pool})
    for (int64_t tile : {int64_t{0}, int64_t{5}}) {
      Tensor out = Tensor::empty({o5[0], o5[1], o5[3], o5[4]}, DType::F32);
      cpu::ConvOptions options;
      options.tile_pixels = tile;
      cpu::conv2d_with_options(in.x.reshape({N, C, H, W}), in.weight.reshape({O, C, KH, KW}), in.bias, p2, out, p,
                               options);
      std::vector<float> got = out.to_f32_vector();
      EXPECT_CLOSE(got.data(), ref.data(), ref.size(), kAtol, kRtol,
                   label + (p ? " [pool" : " [no pool") + ", tile " + std::to_string(tile) + "]");
    }
}

SHOWO2_TEST(conv2d_vae_downsample_stride2_right_bottom_padding) {
  // 'downsample2d': zero-pad right and bottom by 1, then 3x3 stride 2 (odd and even input sizes).
  Conv2dParams p;
  p.stride_h = p.stride_w = 2;
  p.pad_bottom = p.pad_right = 1;
  check_conv2d(1, 6, 9, 8, 4, 3, 3, p, DType::F32, 81, "downsample 9x8");
  check_conv2d(2, 40, 10, 11, 5, 3, 3, p, DType::BF16, 82, "downsample 10x11 bf16");
}

SHOWO2_TEST(conv2d_patch_embed_k2_s2) {
  // The 2x2 patch embeds (spec §3.3): kernel 2, stride 2, no padding, 16 latent channels.
  Conv2dParams p;
  p.stride_h = p.stride_w = 2;
  check_conv2d(1, 16, 6, 8, 24, 2, 2, p, DType::F32, 91, "patch embed");
}

SHOWO2_TEST(conv2d_same_padding_odd_sizes) {
  Conv2dParams p;
  p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = 1;
  check_conv2d(1, 3, 13, 11, 8, 3, 3, p, DType::F32, 101, "rgb input conv");
  check_conv2d(1, 48, 7, 9, 10, 3, 3, p, DType::F16, 102, "C48 f16");
}

// ---- PyTorch golden fixtures ----------------------------------------------------------------------------------------------

SHOWO2_TEST(conv3d_matches_torch_causal_fixture) {
  // tools/fixtures/make_kernel_fixtures.py: F.conv3d(F.pad(x, (0,0,0,0,2,0)), w, b, padding=(0,1,1)).
  std::vector<float> x = test::read_kernel_fixture("conv3d_causal_x", 1 * 8 * 3 * 6 * 7);
  std::vector<float> w = test::read_kernel_fixture("conv3d_causal_weight", 5 * 8 * 27);
  std::vector<float> b = test::read_kernel_fixture("conv3d_causal_bias", 5);
  std::vector<float> ref = test::read_kernel_fixture("conv3d_causal_out", 1 * 5 * 3 * 6 * 7);
  Tensor out = Tensor::empty({1, 5, 3, 6, 7}, DType::F32);
  cpu::ThreadPool pool(2);
  cpu::conv3d(Tensor::from_f32({1, 8, 3, 6, 7}, x), Tensor::from_f32({5, 8, 3, 3, 3}, w), Tensor::from_f32({5}, b),
              pads(2, 0, 1, 1, 1, 1), out, &pool);
  std::vector<float> got = out.to_f32_vector();
  // Both sides are fp32 sums of 216 terms in different orders: a few ulp of the terms' scale (~1e-7) apart.
  EXPECT_CLOSE(got.data(), ref.data(), ref.size(), 1e-5, 1e-5, "conv3d vs torch");
}

SHOWO2_TEST(conv2d_matches_torch_downsample_fixture) {
  std::vector<float> x = test::read_kernel_fixture("conv2d_down_x", 6 * 9 * 8);
  std::vector<float> w = test::read_kernel_fixture("conv2d_down_weight", 4 * 6 * 9);
  std::vector<float> b = test::read_kernel_fixture("conv2d_down_bias", 4);
  std::vector<float> ref = test::read_kernel_fixture("conv2d_down_out", 4 * 4 * 4);
  Conv2dParams p;
  p.stride_h = p.stride_w = 2;
  p.pad_bottom = p.pad_right = 1;
  Tensor out = Tensor::empty({1, 4, 4, 4}, DType::F32);  // (9 + 1 - 3) / 2 + 1 = 4, (8 + 1 - 3) / 2 + 1 = 4
  cpu::conv2d(Tensor::from_f32({1, 6, 9, 8}, x), Tensor::from_f32({4, 6, 3, 3}, w), Tensor::from_f32({4}, b), p, out,
              nullptr);
  std::vector<float> got = out.to_f32_vector();
  // fp32 sums of 54 terms in different orders.
  EXPECT_CLOSE(got.data(), ref.data(), ref.size(), 1e-5, 1e-5, "conv2d downsample vs torch");
}

// ---- argument errors ---------------------------------------------------------------------------------------------------------

SHOWO2_TEST(conv_rejects_bad_arguments) {
  ConvCase c{1, 4, 3, 5, 5, 2, 3, 3, 3, pads(2, 0, 1, 1, 1, 1)};
  ConvInputs in = make_inputs(c, 111);
  Tensor out = Tensor::empty(out_shape(c), DType::F32);
  Conv3dParams p = c.p;

  Tensor w_bad_c = Tensor::zeros({2, 3, 3, 3, 3}, DType::F32);
  CHECK_THROWS_CODE(cpu::conv3d(in.x, w_bad_c, in.bias, p, out, nullptr), ShapeMismatch);
  CHECK_THROWS_CODE(cpu::conv3d(in.x, Tensor::zeros({2, 4, 3, 3, 3}, DType::I32), in.bias, p, out, nullptr),
                    UnsupportedDtype);
  CHECK_THROWS_CODE(cpu::conv3d(in.x.to(DType::BF16), in.weight, in.bias, p, out, nullptr), UnsupportedDtype);
  CHECK_THROWS_CODE(cpu::conv3d(in.x, in.weight, Tensor::zeros({3}, DType::F32), p, out, nullptr), ShapeMismatch);
  Tensor out_bad = Tensor::empty({1, 2, 3, 5, 4}, DType::F32);
  CHECK_THROWS_CODE(cpu::conv3d(in.x, in.weight, in.bias, p, out_bad, nullptr), ShapeMismatch);
  CHECK_THROWS_CODE(cpu::conv3d(in.x.transpose(3, 4), in.weight, in.bias, p, out, nullptr), ShapeMismatch);
  CHECK_THROWS_CODE(cpu::conv3d(in.x.reshape({4, 3, 5, 5}), in.weight, in.bias, p, out, nullptr), ShapeMismatch);

  Conv3dParams neg = p;
  neg.pad_left = -1;
  CHECK_THROWS_CODE(cpu::conv3d(in.x, in.weight, in.bias, neg, out, nullptr), InvalidArgument);
  Conv3dParams zero_stride = p;
  zero_stride.stride_h = 0;
  CHECK_THROWS_CODE(cpu::conv3d(in.x, in.weight, in.bias, zero_stride, out, nullptr), InvalidArgument);
  Conv3dParams too_small = Conv3dParams{};  // 3 frames, no padding, kernel 3 is fine; a 4-deep kernel is not
  CHECK_THROWS_CODE(cpu::conv3d(in.x, Tensor::zeros({2, 4, 4, 3, 3}, DType::F32), Tensor(), too_small, out, nullptr),
                    ShapeMismatch);

  // out may not overlap x (the GEMMs would read what they already overwrote).
  Tensor both = Tensor::zeros({1, 4, 3, 5, 5}, DType::F32);
  Tensor alias = both.slice(1, 0, 2);
  CHECK_THROWS_CODE(cpu::conv3d(both, in.weight, in.bias, p, alias, nullptr), InvalidArgument);

  // The Window lowering cannot do spatial strides.
  cpu::ConvOptions window;
  window.lowering = cpu::ConvLowering::Window;
  Conv3dParams strided = p;
  strided.stride_w = 2;
  Tensor out_strided = Tensor::empty({1, 2, 3, 5, 3}, DType::F32);
  CHECK_THROWS_CODE(cpu::conv3d_with_options(in.x, in.weight, in.bias, strided, out_strided, nullptr, window),
                    InvalidArgument);

  Conv2dParams p2;
  CHECK_THROWS_CODE(cpu::conv2d(in.x, in.weight, in.bias, p2, out, nullptr), ShapeMismatch);  // 5-D into conv2d
}

SHOWO2_TEST(conv_error_messages_name_op_and_argument) {
  ConvCase c{1, 4, 3, 5, 5, 2, 3, 3, 3, pads(2, 0, 1, 1, 1, 1)};
  ConvInputs in = make_inputs(c, 121);
  Tensor out = Tensor::empty(out_shape(c), DType::F32);
  try {
    cpu::conv3d(in.x, Tensor::zeros({2, 3, 3, 3, 3}, DType::F32), in.bias, c.p, out, nullptr);
    CHECK(false);
  } catch (const Error& e) {
    CHECK(std::string(e.what()).rfind("conv3d: weight: expected 4 input channels", 0) == 0);
  }
}

SHOWO2_TEST_MAIN()
