// The CUDA backend: the Backend interface (native/core/backend.h) on one NVIDIA GPU, so the model code of
// native/core runs unchanged on the device.
//
//   * memory: a caching device pool (no cudaMalloc per op; freed blocks are reused by size class), one stream per
//     backend, tensors in Device::Cuda storage that return their block to the pool when released;
//   * weights: uploaded once per host tensor by upload_weight(), converted to the weight dtype (bf16 by default,
//     fp16 as an option); 1-D weights (norm scales, biases) stay F32 (spec §12 numerics);
//   * GEMM: cuBLASLt (cuda/gemm.cu), bf16/fp16 weights, fp32 accumulation and fp32 activations;
//   * everything between GEMMs: one kernel per fusion opportunity (cuda/<family>.cu).
// The member functions are defined across cuda/cuda_backend.cu (memory, transfers), cuda/gemm.cu (linear, matmul),
// cuda/cuda_backend_pointwise.cu (norms, activations, RoPE, elementwise and fused ops) and
// cuda/cuda_backend_attention_conv.cu (attention, convolutions).
//
// Errors: ERR_CUDA (with the failing call and file:line) or ERR_OUT_OF_MEMORY; the backend stays usable after either.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <memory>
#include <string>

#include "backend.h"

namespace showo2::cuda {

struct CudaBackendOptions {
  int device_index = 0;                 // which GPU
  DType weight_dtype = DType::BF16;     // BF16 or F16: the dtype matrices are uploaded in
  size_t pool_limit_bytes = 0;          // 0: no limit beyond the device's memory
  // What the convolutions (the VAE's) multiply in: F32 (the CUDA-core implicit GEMM, v2: within float rounding of
  // the CPU) or BF16 (tensor cores, v3: activations rounded to BF16 as they are staged, F32 accumulation; the
  // precision PyTorch's bf16 VAE runs at). F32 until the BF16 path's end-to-end error and speed are measured on a GPU
  // (test/native/wan_vae_cuda_test.cu prints the error; bench/native/wan_vae_bench.cpp --conv bf16 the speed).
  DType conv_dtype = DType::F32;
  // Whether convolutional models (WanVae) lay their activations out channels-last on this backend
  // (Backend::prefers_channels_last_activations): the convs then stage whole channel runs per pixel with vector
  // loads and the VAE's attention reads its tokens in place. false until measured on a GPU, as conv_dtype
  // (bench/native/wan_vae_bench.cpp --layout channels-last).
  bool channels_last_activations = false;
  // What convolutional models (WanVae) store their activations in (Backend::preferred_conv_activation_dtype): F32,
  // or BF16 (half the memory and the memory traffic of every VAE activation; the convs then run on BF16 tensor cores
  // whatever conv_dtype says, and the VAE's per-frame attention converts its tokens to F32). F32 until measured.
  DType conv_activation_dtype = DType::F32;
};

class CudaBackend final : public Backend {
 public:
  // Throws ERR_CUDA naming the reason when the device cannot be used (no driver, no device, compute capability
  // below 8.0, ...).
  explicit CudaBackend(const CudaBackendOptions& options = {});
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  std::string name() const override { return "cuda"; }
  Device device() const override { return Device::Cuda; }
  Tensor empty(const Shape& shape, DType dtype) override;
  Tensor upload_weight(const Tensor& host) override;
  Tensor to_device(const Tensor& host) override;
  Tensor to_host(const Tensor& t) override;
  void synchronize() override;
  int64_t available_memory_bytes() override;
  bool prefers_channels_last_activations() const override;
  DType preferred_conv_activation_dtype() const override;

  void linear(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& out) override;
  void matmul(const Tensor& a, const Tensor& b, bool transpose_b, Tensor& out) override;
  void attention(const Tensor& q, const Tensor& k, const Tensor& v, const OmniMask& mask, float scale,
                 Tensor& out) override;
  void conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& p, Tensor& out) override;
  void conv3d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv3dParams& p, Tensor& out) override;
  void conv3d_fused(const Tensor& x, const ConvFusion& f, const Tensor& weight, const Tensor& bias,
                    const Conv3dParams& p, Tensor& out) override;
  void rms_norm(const Tensor& x, const Tensor& weight, float eps, Tensor& out) override;
  void layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps, Tensor& out) override;
  void rope(Tensor& x, const RopeTable& table, int64_t position_offset) override;
  void silu(const Tensor& x, Tensor& out) override;
  void gelu(const Tensor& x, GeluApproximation approximation, Tensor& out) override;
  void softmax(const Tensor& x, Tensor& out) override;
  void embedding(const Tensor& ids, const Tensor& table, Tensor& out) override;
  void add(const Tensor& a, const Tensor& b, Tensor& out) override;
  void mul(const Tensor& a, const Tensor& b, Tensor& out) override;
  void scale(const Tensor& x, float alpha, float beta, Tensor& out) override;
  void clamp(const Tensor& x, float lo, float hi, Tensor& out) override;
  void copy(const Tensor& src, Tensor& dst) override;
  void channel_rms_norm(const Tensor& x, const Tensor& gamma, Tensor& out) override;
  void channel_rms_norm_silu(const Tensor& x, const Tensor& gamma, Tensor& out) override;
  void swiglu(const Tensor& gate, const Tensor& up, Tensor& out) override;
  void modulate(const Tensor& x, const Tensor& shift, const Tensor& scale, const Tensor& row_group,
                Tensor& out) override;
  void gated_residual(Tensor& h, const Tensor& y, const Tensor& gate, const Tensor& row_group) override;
  void flow_euler_update(Tensor& x, const Tensor& v_cond, const Tensor& v_uncond, float guidance, float dt) override;
  void upsample_nearest2x(const Tensor& x, Tensor& out) override;

  // The most device bytes this backend's tensors held at once since construction or the last reset (pool blocks
  // in use, by size class; weights included). For benchmarks' peak-memory figures.
  size_t peak_pool_bytes() const;
  void reset_peak_pool_bytes();

  cudaStream_t stream() const;
  int device_index() const;
  DType weight_dtype() const;

  // Shared by the files that define this class's members (cuda_backend.cu owns it).
  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  void channel_rms_norm_impl(const Tensor& x, const Tensor& gamma, Tensor& out, bool silu_after);
  std::unique_ptr<Impl> impl_;
};

}  // namespace showo2::cuda
