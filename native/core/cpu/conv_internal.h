// Internals of the CPU convolution family (conv.cpp), shared with its test and benchmark.
//
// conv.cpp lowers every convolution to GEMM calls (gemm.h), one output tile at a time; its speed is the GEMM's. These
// knobs let the test drive each lowering on the same shapes, with small tiles so edges and tails are exercised, and
// with a chosen GEMM (the portable kernels, the AVX2 ones, or the reference loop).
#pragma once

#include <cstdint>

#include "../backend.h"
#include "gemm.h"

namespace showo2::cpu {

class ThreadPool;

// How conv.cpp turns a convolution into GEMMs (both are described at the top of conv.cpp).
enum class ConvLowering {
  Auto,    // Window when it applies (unit spatial stride, and enough input channels per tap), else Gather
  Window,  // unit spatial stride only: one GEMM per kernel tap straight over a zero-padded input window
  Gather,  // any stride: im2col of a tile of output pixels for a group of taps, then one GEMM per group
};

using GemmFn = void (*)(const GemmArgs& args, ThreadPool* pool);

struct ConvOptions {
  ConvLowering lowering = ConvLowering::Auto;
  GemmFn gemm = nullptr;       // null: cpu::gemm
  int64_t tile_pixels = 0;     // target output pixels per tile (one thread task); 0: the built-in default
};

// cpu::conv3d / conv2d with explicit options. Forcing Window on a strided convolution is ERR_INVALID_ARGUMENT.
void conv3d_with_options(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv3dParams& p,
                         Tensor& out, ThreadPool* pool, const ConvOptions& options);
void conv2d_with_options(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& p,
                         Tensor& out, ThreadPool* pool, const ConvOptions& options);

}  // namespace showo2::cpu
