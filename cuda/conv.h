// GPU 2-D and 3-D convolutions with zero padding per side and strides (cuda/conv.cu): the Wan VAE's convs (spec §3.1)
// and the patch embeds. conv2d is the 3-D case with T = KT = 1.
//
// The launchers take device pointers; CudaBackend::conv2d / conv3d (cuda/cuda_backend_attention_conv.cu) validate
// Tensors exactly as the CPU backend does and fill the params.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace showo2::cuda {

enum class ConvWeightType { F32, BF16, F16 };  // dtype of weight and bias (bias may differ: see ConvParams)
// dtype of the activations x, history frames, residual and out (all alike). BF16 runs on v3 only (launch_conv
// returns cudaErrorInvalidValue for v1/v2, or below compute capability 8.0).
enum class ConvActivationType { F32, BF16 };

// Which kernel runs. All compute the same function (v3 on BF16-rounded operands); tests compare them.
enum class ConvVariant {
  Naive,       // v1: one thread per output element, plain loops over (c, kt, kh, kw)
  Tiled,       // v2: a 64 output channels x 64 output pixels tile per thread block, implicit GEMM through shared
               //     memory, F32
  TensorCore,  // v3 (cuda/conv_mma.cu): v2's implicit GEMM on BF16 tensor cores (compute capability 8.0+);
               //     activations and weights rounded to BF16, F32 accumulation. Below 8.0 it runs v2
};

// Everything one launch needs. Pointers are device pointers to dense tensors in the layouts below.
struct ConvParams {
  const void* x = nullptr;      // [N, C, T, H, W] activation_type (memory [N, T, H, W, C] when channels_last)
  const void* weight = nullptr; // [O, C, KT, KH, KW], weight_type (memory [O, KT, KH, KW, C] when weight_channels_last)
  const void* bias = nullptr;   // [O], bias_type, or null for no bias
  void* out = nullptr;          // [N, O, To, Ho, Wo] activation_type in x's layout; must not overlap x
  ConvActivationType activation_type = ConvActivationType::F32;
  // Layouts. channels_last: x, history frames, out and residual are channels-last (PyTorch's channels_last_3d), so
  // the kernels read a pixel's channels as one run; weight_channels_last: the weight's channels are innermost. The
  // two are independent; every variant takes every combination (cuda/conv_input.cuh addresses them).
  bool channels_last = false;
  bool weight_channels_last = false;
  ConvWeightType weight_type = ConvWeightType::F32;
  ConvWeightType bias_type = ConvWeightType::F32;
  int32_t N = 0, C = 0, T = 0, H = 0, W = 0;  // input sizes (T = 1 for conv2d)
  int32_t O = 0, KT = 0, KH = 0, KW = 0;      // output channels and kernel extent (KT = 1 for conv2d)
  int32_t To = 0, Ho = 0, Wo = 0;             // output sizes: (in + pad_a + pad_b - k) / stride + 1 per dim
  int32_t stride_t = 1, stride_h = 1, stride_w = 1;
  // Zero padding per side. The VAE's causal conv: pad_front 2, pad_back 0 (spec §3.1).
  int32_t pad_front = 0, pad_back = 0, pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
  ConvVariant variant = ConvVariant::Tiled;

  // Fusions (Backend::conv3d_fused, backend.h ConvFusion). T, H and W above are the logical input's sizes: the
  // first history_frames of its T frames come from `history` (frame i of batch item n at history[i] +
  // n * history_stride_n[i]: channel planes of H x W history_stride_c[i] apart, or when channels_last one dense
  // H x W x C block), the rest from x, which then holds T - history_frames frames. With upsample2x, x holds H/2 x W/2
  // frames read as their nearest-exact 2x upsampling (no history then). residual, when set, is added to the output
  // ([N, O, To, Ho, Wo] in out's layout).
  static constexpr int kMaxHistory = 2;
  const void* history[kMaxHistory] = {nullptr, nullptr};
  int64_t history_stride_n[kMaxHistory] = {0, 0};
  int64_t history_stride_c[kMaxHistory] = {0, 0};
  int32_t history_frames = 0;
  bool upsample2x = false;
  const void* residual = nullptr;
};

// Launches the convolution on `stream` (asynchronous). Returns cudaErrorInvalidValue for parameters the kernels
// cannot take (null pointers, non-positive sizes, a grid over CUDA's limits) and the launch error otherwise; never
// throws.
cudaError_t launch_conv(const ConvParams& params, cudaStream_t stream);

}  // namespace showo2::cuda
