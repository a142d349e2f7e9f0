// Turning CUDA failures into showo2::Error (never an abort): every runtime call and kernel launch in cuda/ goes
// through SHOWO2_CUDA_CHECK, which throws ERR_CUDA naming the call, the file:line and CUDA's message, or
// ERR_OUT_OF_MEMORY for cudaErrorMemoryAllocation (the model stays usable: nothing was half-written).
#pragma once

#include <cuda_runtime.h>

#include "error.h"

namespace showo2::cuda {

[[noreturn]] inline void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line) {
  cudaGetLastError();  // clear a non-sticky error so the next call starts clean
  const ErrorCode code = err == cudaErrorMemoryAllocation ? ErrorCode::OutOfMemory : ErrorCode::Cuda;
  fail(code, call, " failed at ", file, ":", line, ": ", cudaGetErrorString(err), " (", static_cast<int>(err), ")");
}

}  // namespace showo2::cuda

#define SHOWO2_CUDA_CHECK(call)                                                        \
  do {                                                                                 \
    cudaError_t showo2_cuda_err_ = (call);                                             \
    if (showo2_cuda_err_ != cudaSuccess)                                               \
      ::showo2::cuda::throw_cuda_error(showo2_cuda_err_, #call, __FILE__, __LINE__);   \
  } while (0)

// After a kernel launch: reports launch-configuration errors at the launch site.
#define SHOWO2_CUDA_CHECK_LAUNCH() SHOWO2_CUDA_CHECK(cudaGetLastError())
