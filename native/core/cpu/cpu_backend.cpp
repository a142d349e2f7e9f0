#include "cpu_backend.h"

#include <initializer_list>

#include "ops.h"

namespace showo2::cpu {

namespace {

// Every tensor an op touches must be host memory (undefined optional operands are fine).
void require_host(const char* op, std::initializer_list<const Tensor*> tensors) {
  for (const Tensor* t : tensors)
    if (t->defined() && t->device() != Device::Cpu)
      fail(ErrorCode::InvalidArgument, op, ": the CPU backend got a tensor in ", device_name(t->device()),
           " memory; move it with Backend::to_host (or run the model on the backend that made it)");
}

}  // namespace

CpuBackend::CpuBackend(int num_threads) : pool_(std::make_unique<ThreadPool>(num_threads)) {}

void CpuBackend::linear(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& out) {
  require_host("linear", {&x, &weight, &bias, &out});
  cpu::linear(x, weight, bias, out, pool_.get());
}
void CpuBackend::matmul(const Tensor& a, const Tensor& b, bool transpose_b, Tensor& out) {
  require_host("matmul", {&a, &b, &out});
  cpu::matmul(a, b, transpose_b, out, pool_.get());
}
void CpuBackend::attention(const Tensor& q, const Tensor& k, const Tensor& v, const OmniMask& mask, float scale,
                           Tensor& out) {
  require_host("attention", {&q, &k, &v, &out});
  cpu::attention(q, k, v, mask, scale, out, pool_.get());
}
void CpuBackend::conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& p,
                        Tensor& out) {
  require_host("conv2d", {&x, &weight, &bias, &out});
  cpu::conv2d(x, weight, bias, p, out, pool_.get());
}
void CpuBackend::conv3d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv3dParams& p,
                        Tensor& out) {
  require_host("conv3d", {&x, &weight, &bias, &out});
  cpu::conv3d(x, weight, bias, p, out, pool_.get());
}
void CpuBackend::rms_norm(const Tensor& x, const Tensor& weight, float eps, Tensor& out) {
  require_host("rms_norm", {&x, &weight, &out});
  cpu::rms_norm(x, weight, eps, out, pool_.get());
}
void CpuBackend::layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps, Tensor& out) {
  require_host("layer_norm", {&x, &weight, &bias, &out});
  cpu::layer_norm(x, weight, bias, eps, out, pool_.get());
}
void CpuBackend::rope(Tensor& x, const RopeTable& table, int64_t position_offset) {
  require_host("rope", {&x, &table.cos, &table.sin});
  cpu::rope(x, table, position_offset, pool_.get());
}
void CpuBackend::silu(const Tensor& x, Tensor& out) {
  require_host("silu", {&x, &out});
  cpu::silu(x, out, pool_.get());
}
void CpuBackend::gelu(const Tensor& x, GeluApproximation approximation, Tensor& out) {
  require_host("gelu", {&x, &out});
  cpu::gelu(x, approximation, out, pool_.get());
}
void CpuBackend::softmax(const Tensor& x, Tensor& out) {
  require_host("softmax", {&x, &out});
  cpu::softmax(x, out, pool_.get());
}
void CpuBackend::embedding(const Tensor& ids, const Tensor& table, Tensor& out) {
  require_host("embedding", {&ids, &table, &out});
  cpu::embedding(ids, table, out, pool_.get());
}
void CpuBackend::add(const Tensor& a, const Tensor& b, Tensor& out) {
  require_host("add", {&a, &b, &out});
  cpu::add(a, b, out, pool_.get());
}
void CpuBackend::mul(const Tensor& a, const Tensor& b, Tensor& out) {
  require_host("mul", {&a, &b, &out});
  cpu::mul(a, b, out, pool_.get());
}
void CpuBackend::scale(const Tensor& x, float alpha, float beta, Tensor& out) {
  require_host("scale", {&x, &out});
  cpu::scale(x, alpha, beta, out, pool_.get());
}
void CpuBackend::clamp(const Tensor& x, float lo, float hi, Tensor& out) {
  require_host("clamp", {&x, &out});
  cpu::clamp(x, lo, hi, out, pool_.get());
}
void CpuBackend::copy(const Tensor& src, Tensor& dst) {
  require_host("copy", {&src, &dst});
  cpu::copy(src, dst, pool_.get());
}
void CpuBackend::channel_rms_norm(const Tensor& x, const Tensor& gamma, Tensor& out) {
  require_host("channel_rms_norm", {&x, &gamma, &out});
  cpu::channel_rms_norm(x, gamma, out, pool_.get());
}
void CpuBackend::swiglu(const Tensor& gate, const Tensor& up, Tensor& out) {
  require_host("swiglu", {&gate, &up, &out});
  cpu::swiglu(gate, up, out, pool_.get());
}
void CpuBackend::modulate(const Tensor& x, const Tensor& shift, const Tensor& scale, const Tensor& row_group,
                          Tensor& out) {
  require_host("modulate", {&x, &shift, &scale, &row_group, &out});
  cpu::modulate(x, shift, scale, row_group, out, pool_.get());
}
void CpuBackend::gated_residual(Tensor& h, const Tensor& y, const Tensor& gate, const Tensor& row_group) {
  require_host("gated_residual", {&h, &y, &gate, &row_group});
  cpu::gated_residual(h, y, gate, row_group, pool_.get());
}
void CpuBackend::flow_euler_update(Tensor& x, const Tensor& v_cond, const Tensor& v_uncond, float guidance,
                                   float dt) {
  require_host("flow_euler_update", {&x, &v_cond, &v_uncond});
  cpu::flow_euler_update(x, v_cond, v_uncond, guidance, dt, pool_.get());
}
void CpuBackend::upsample_nearest2x(const Tensor& x, Tensor& out) {
  require_host("upsample_nearest2x", {&x, &out});
  cpu::upsample_nearest2x(x, out, pool_.get());
}

}  // namespace showo2::cpu
