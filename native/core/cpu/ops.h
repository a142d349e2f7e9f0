// The CPU kernel families, one .cpp each (native/core/cpu/<family>.cpp), with AVX2 variants in <family>_avx2.cpp
// chosen at run time (cpu_features.h). Semantics, layouts and aliasing rules are those of the Backend interface
// (backend.h); these free functions are what CpuBackend forwards to, and what tests and benchmarks call directly.
// `pool` may be null (single-threaded).
#pragma once

#include "../backend.h"
#include "../rope.h"
#include "thread_pool.h"

namespace showo2::cpu {

// linear.cpp (on top of gemm.h)
void linear(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& out, ThreadPool* pool);
void matmul(const Tensor& a, const Tensor& b, bool transpose_b, Tensor& out, ThreadPool* pool);

// attention.cpp: blockwise online-softmax attention with the omni mask; never materialises Lq x Lk.
void attention(const Tensor& q, const Tensor& k, const Tensor& v, const OmniMask& mask, float scale, Tensor& out,
               ThreadPool* pool);

// conv.cpp: implicit-GEMM convolutions.
void conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& p, Tensor& out,
            ThreadPool* pool);
void conv3d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv3dParams& p, Tensor& out,
            ThreadPool* pool);

// norm.cpp
void rms_norm(const Tensor& x, const Tensor& weight, float eps, Tensor& out, ThreadPool* pool);
void layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps, Tensor& out, ThreadPool* pool);
void channel_rms_norm(const Tensor& x, const Tensor& gamma, Tensor& out, ThreadPool* pool);

// rope.cpp (table construction lives in native/core/rope.cpp)
void rope(Tensor& x, const RopeTable& table, int64_t position_offset, ThreadPool* pool);

// activation.cpp
void silu(const Tensor& x, Tensor& out, ThreadPool* pool);
void gelu(const Tensor& x, GeluApproximation approximation, Tensor& out, ThreadPool* pool);
void softmax(const Tensor& x, Tensor& out, ThreadPool* pool);
void swiglu(const Tensor& gate, const Tensor& up, Tensor& out, ThreadPool* pool);

// adaln_modulate.cpp: adaLN modulate and gated residual with per-row condition groups (spec §6.2).
void modulate(const Tensor& x, const Tensor& shift, const Tensor& scale, const Tensor& row_group, Tensor& out,
              ThreadPool* pool);
void gated_residual(Tensor& h, const Tensor& y, const Tensor& gate, const Tensor& row_group, ThreadPool* pool);

// flow_ode.cpp: one Euler step with the CFG combine (spec §7.2).
void flow_euler_update(Tensor& x, const Tensor& v_cond, const Tensor& v_uncond, float guidance, float dt,
                       ThreadPool* pool);

// embedding.cpp
void embedding(const Tensor& ids, const Tensor& table, Tensor& out, ThreadPool* pool);

// elementwise.cpp
void add(const Tensor& a, const Tensor& b, Tensor& out, ThreadPool* pool);
void mul(const Tensor& a, const Tensor& b, Tensor& out, ThreadPool* pool);
void scale(const Tensor& x, float alpha, float beta, Tensor& out, ThreadPool* pool);
void clamp(const Tensor& x, float lo, float hi, Tensor& out, ThreadPool* pool);

// layout.cpp: data movement without arithmetic.
void copy(const Tensor& src, Tensor& dst, ThreadPool* pool);
void upsample_nearest2x(const Tensor& x, Tensor& out, ThreadPool* pool);

}  // namespace showo2::cpu
