// GEMMs of the CUDA backend through cuBLASLt, loaded at run time (gemm.cu).
//
// The build needs only cuBLASLt's headers (the toolkit's, or those of the nvidia-cublas wheel: CMake option
// SHOWO2_CUBLAS_INCLUDE_DIR); the library itself is dlopen'ed on the first GEMM, so the addon loads and runs on CPU
// on machines without it. Where it looks, in order:
//   1. $SHOWO2_CUBLASLT_PATH: the library file itself, or a directory holding libcublasLt.so.13
//      (e.g. <site-packages>/nvidia/cu13/lib after `pip install nvidia-cublas`);
//   2. the standard loader search for libcublasLt.so.13, then libcublasLt.so (LD_LIBRARY_PATH, rpath, ld.so.cache);
//   3. $CUDA_HOME/lib64 and /usr/local/cuda/lib64.
// Failing all of them is ERR_CUDA listing every attempt and how to install the library.
#pragma once

#include <cuda_runtime.h>

#include <memory>
#include <string>

#include "tensor.h"

namespace showo2::cuda {

class DevicePool;

// The cuBLASLt handle, a workspace and the heuristic cache of one CudaBackend (one stream).
class GemmRunner {
 public:
  // Loads libcublasLt (ERR_CUDA with every place tried when it cannot) and creates a handle.
  GemmRunner(cudaStream_t stream, std::shared_ptr<DevicePool> pool);
  ~GemmRunner();
  GemmRunner(const GemmRunner&) = delete;
  GemmRunner& operator=(const GemmRunner&) = delete;

  // D[b] (m x n, row-major, ldd) = A[b] (m x k, row-major, lda) . op(B[b]) (+ bias[n]), fp32 accumulation.
  //   b_transposed: B is stored [n, k] (row-major, ldb) and used transposed (a linear's weight); else [k, n].
  //   a_type / b_type: CUDA_R_32F, CUDA_R_16BF or CUDA_R_16F, equal (cuBLASLt multiplies like types); D is F32.
  //   bias: F32 [n] or null (fused epilogue). Strides in elements; batch strides may be 0 (broadcast).
  struct Problem {
    int64_t m = 0, n = 0, k = 0, batch = 1;
    const void* a = nullptr;
    int64_t lda = 0, batch_stride_a = 0;
    const void* b = nullptr;
    int64_t ldb = 0, batch_stride_b = 0;
    bool b_transposed = true;
    float* d = nullptr;
    int64_t ldd = 0, batch_stride_d = 0;
    const float* bias = nullptr;
    cudaDataType_t ab_type = CUDA_R_32F;
  };
  void run(const Problem& p);

  // Where the library was loaded from (for runtimeInfo and error messages).
  const std::string& library_path() const;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

// out[r, :] = (dtype) x[r, :] for rows of x [R, C] F32 with row stride `ld_x` into contiguous out [R, C] (BF16 or
// F16, round-to-nearest-even like dtype.h): the activation side of a bf16/fp16 GEMM.
void convert_rows_f32(const float* x, int64_t rows, int64_t cols, int64_t ld_x, void* out, DType dtype,
                      cudaStream_t stream);

}  // namespace showo2::cuda
