// Launcher for the flow ODE's Euler update with the CFG combine (cuda/flow_ode.cu). Raw device pointers in, work
// queued on `stream`; launch failures throw showo2::Error. Semantics are backend.h's Backend::flow_euler_update; the
// CPU twin is the CPU backend's fused op (and native/core/flow_sampler.cpp's cfg_combine + axpy composition).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace showo2::cuda {

struct FlowOdeParams {
  float* x = nullptr;               // [n] the ODE state (fp32, spec §12), updated in place
  const float* v_cond = nullptr;    // [n] conditional velocity
  const float* v_uncond = nullptr;  // [n] unconditional velocity, or null (no guidance: x += dt * v_cond)
  int64_t n = 0;                    // elements (all three are dense and the same shape)
  float guidance = 1.0f;            // g, the CFG scale
  float dt = 0.0f;                  // the step tau_{i+1} - tau_i (may be negative)
};

// x += dt * (v_uncond + g * (v_cond - v_uncond)), or x += dt * v_cond without v_uncond.
void launch_flow_euler_update(const FlowOdeParams& p, cudaStream_t stream);

}  // namespace showo2::cuda
