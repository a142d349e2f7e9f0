// The tensor-core primitives the BF16 kernels share (cuda/attention_mma.cu, cuda/conv_mma.cu): one mma.sync tile and
// the 32-bit fragment load. Fragment layouts: PTX ISA, "Matrix Fragments for mma.m16n8k16" (.bf16).
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

namespace showo2::cuda::mma {

// Two consecutive BF16 values as one fragment register (the pointer 4-byte aligned).
__device__ __forceinline__ uint32_t load_u32(const __nv_bfloat16* p) { return *reinterpret_cast<const uint32_t*>(p); }

// d += a · b on the tensor cores: a 16x16 BF16 (row-major), b 16x8 BF16 (column-major), d 16x8 F32. Compute
// capability 8.0 and newer; compiled to nothing below (callers never launch there).
__device__ __forceinline__ void mma_16x8x16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
}

}  // namespace showo2::cuda::mma
