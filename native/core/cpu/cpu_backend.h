// The CPU backend: forwards each Backend operation to its kernel family (ops.h) on a thread pool.
// Its memory is host memory, so the Backend memory API keeps its defaults (empty() allocates on the host,
// upload_weight / to_device / to_host return their argument). Every operation first rejects a tensor of another
// device (ERR_INVALID_ARGUMENT naming the operation), so mixing backends fails loudly instead of reading device
// pointers on the host.
#pragma once

#include <memory>

#include "../backend.h"
#include "thread_pool.h"

namespace showo2::cpu {

class CpuBackend : public Backend {  // not final: tests derive backends that differ in one preference
 public:
  // num_threads <= 0: one per hardware thread available to the process.
  explicit CpuBackend(int num_threads = 0);

  std::string name() const override { return "cpu"; }
  int num_threads() const { return pool_->num_threads(); }
  ThreadPool* pool() { return pool_.get(); }

  void linear(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& out) override;
  void matmul(const Tensor& a, const Tensor& b, bool transpose_b, Tensor& out) override;
  void attention(const Tensor& q, const Tensor& k, const Tensor& v, const OmniMask& mask, float scale,
                 Tensor& out) override;
  void conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& p, Tensor& out) override;
  void conv3d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv3dParams& p, Tensor& out) override;
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
  void swiglu(const Tensor& gate, const Tensor& up, Tensor& out) override;
  void modulate(const Tensor& x, const Tensor& shift, const Tensor& scale, const Tensor& row_group,
                Tensor& out) override;
  void gated_residual(Tensor& h, const Tensor& y, const Tensor& gate, const Tensor& row_group) override;
  void flow_euler_update(Tensor& x, const Tensor& v_cond, const Tensor& v_uncond, float guidance, float dt) override;
  void upsample_nearest2x(const Tensor& x, Tensor& out) override;

 private:
  std::unique_ptr<ThreadPool> pool_;
};

}  // namespace showo2::cpu
