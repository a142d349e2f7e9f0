#include "cpu_backend.h"

#include "ops.h"

namespace showo2::cpu {

CpuBackend::CpuBackend(int num_threads) : pool_(std::make_unique<ThreadPool>(num_threads)) {}

void CpuBackend::linear(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& out) {
  cpu::linear(x, weight, bias, out, pool_.get());
}
void CpuBackend::matmul(const Tensor& a, const Tensor& b, bool transpose_b, Tensor& out) {
  cpu::matmul(a, b, transpose_b, out, pool_.get());
}
void CpuBackend::attention(const Tensor& q, const Tensor& k, const Tensor& v, const OmniMask& mask, float scale,
                           Tensor& out) {
  cpu::attention(q, k, v, mask, scale, out, pool_.get());
}
void CpuBackend::conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& p,
                        Tensor& out) {
  cpu::conv2d(x, weight, bias, p, out, pool_.get());
}
void CpuBackend::conv3d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv3dParams& p,
                        Tensor& out) {
  cpu::conv3d(x, weight, bias, p, out, pool_.get());
}
void CpuBackend::rms_norm(const Tensor& x, const Tensor& weight, float eps, Tensor& out) {
  cpu::rms_norm(x, weight, eps, out, pool_.get());
}
void CpuBackend::layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps, Tensor& out) {
  cpu::layer_norm(x, weight, bias, eps, out, pool_.get());
}
void CpuBackend::rope(Tensor& x, const RopeTable& table, int64_t position_offset) {
  cpu::rope(x, table, position_offset, pool_.get());
}
void CpuBackend::silu(const Tensor& x, Tensor& out) { cpu::silu(x, out, pool_.get()); }
void CpuBackend::gelu(const Tensor& x, GeluApproximation approximation, Tensor& out) {
  cpu::gelu(x, approximation, out, pool_.get());
}
void CpuBackend::softmax(const Tensor& x, Tensor& out) { cpu::softmax(x, out, pool_.get()); }
void CpuBackend::embedding(const Tensor& ids, const Tensor& table, Tensor& out) {
  cpu::embedding(ids, table, out, pool_.get());
}
void CpuBackend::add(const Tensor& a, const Tensor& b, Tensor& out) { cpu::add(a, b, out, pool_.get()); }
void CpuBackend::mul(const Tensor& a, const Tensor& b, Tensor& out) { cpu::mul(a, b, out, pool_.get()); }
void CpuBackend::scale(const Tensor& x, float alpha, float beta, Tensor& out) {
  cpu::scale(x, alpha, beta, out, pool_.get());
}
void CpuBackend::clamp(const Tensor& x, float lo, float hi, Tensor& out) { cpu::clamp(x, lo, hi, out, pool_.get()); }
void CpuBackend::copy(const Tensor& src, Tensor& dst) { cpu::copy(src, dst, pool_.get()); }
void CpuBackend::channel_rms_norm(const Tensor& x, const Tensor& gamma, Tensor& out) {
  cpu::channel_rms_norm(x, gamma, out, pool_.get());
}
void CpuBackend::upsample_nearest2x(const Tensor& x, Tensor& out) { cpu::upsample_nearest2x(x, out, pool_.get()); }

}  // namespace showo2::cpu
