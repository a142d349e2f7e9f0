// Internals of the CPU activation family (activation.cpp, activation_avx2.cpp), shared with its test.
//
// Split of work:
//   activation.cpp       validates arguments, walks the rows on the thread pool, and holds the portable row kernels
//                        (the literal PyTorch formulas with <cmath> erf/tanh/exp).
//   activation_avx2.cpp  the same row kernels with AVX2/FMA and vectorised exp/erf; chosen at run time
//                        (cpu_features.h).
//
// Only plain declarations here, no inline functions: activation_avx2.cpp is compiled with -mavx2, and an inline
// function instantiated there could be the copy the linker keeps for every other file.
#pragma once

#include <cstdint>

namespace showo2 {
class Tensor;
enum class GeluApproximation;  // backend.h
}  // namespace showo2

namespace showo2::cpu {

class ThreadPool;

// One row kernel per operation: y[0:n] = f(x[0:n]); y may equal x (in place).
struct ActivationKernels {
  const char* name;
  void (*silu)(const float* x, float* y, int64_t n);
  void (*gelu_erf)(const float* x, float* y, int64_t n);
  void (*gelu_tanh)(const float* x, float* y, int64_t n);
  void (*softmax)(const float* x, float* y, int64_t n);  // over the whole row
};

const ActivationKernels& activation_kernels_portable();
#if defined(SHOWO2_HAVE_AVX2_KERNELS)
// Only call when cpu_features().use_avx2.
const ActivationKernels& activation_kernels_avx2();
#endif

enum class ActivationKernel { Portable, Avx2 };

// Whether `kernel` can run here (Avx2 needs the AVX2 build and an AVX2/FMA CPU).
bool activation_kernel_available(ActivationKernel kernel);

// cpu::silu / gelu / softmax with an explicit kernel instead of the run-time choice; for tests and benchmarks. Throws
// ERR_INVALID_ARGUMENT when the kernel is not available.
void silu_with_kernel(const Tensor& x, Tensor& out, ThreadPool* pool, ActivationKernel kernel);
void gelu_with_kernel(const Tensor& x, GeluApproximation approximation, Tensor& out, ThreadPool* pool,
                      ActivationKernel kernel);
void softmax_with_kernel(const Tensor& x, Tensor& out, ThreadPool* pool, ActivationKernel kernel);

}  // namespace showo2::cpu
