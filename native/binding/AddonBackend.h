// Which backend a model or VAE runs on: the `device` / `weightDtype` / `threads` load options, read once in the JS
// thread and turned into a Backend on the worker thread (creating a CUDA backend queries the driver).
//
//   device 'cpu'   the CPU backend
//          'cuda'  the CUDA backend; ERR_CUDA with the reason (no driver, no device, compute capability < 8.0, a build
//                  without CUDA) when it cannot be used
//          'auto'  CUDA when this addon was built with it and a supported device is present, else CPU
#pragma once

#include <memory>
#include <string>

#include "AddonNapi.h"
#include "backend.h"

namespace showo2::binding {

struct BackendOptions {
  std::string device = "cpu";        // 'cpu' | 'cuda' | 'auto' (lib/ picks the default; the addon never picks a GPU unasked)
  std::string weight_dtype = "bf16";  // CUDA only: 'bf16' | 'fp16'
  int threads = 0;                    // CPU only: 0 = one per hardware thread
  std::string conv_dtype = "fp32";    // CUDA only: 'fp32' | 'bf16' (CudaBackendOptions::conv_dtype)
  bool channels_last = false;         // CUDA only: CudaBackendOptions::channels_last_activations
  std::string activation_dtype = "fp32";  // CUDA only: 'fp32' | 'bf16' (CudaBackendOptions::conv_activation_dtype)
};

// Reads options.device, options.weightDtype, options.threads, options.convDtype, options.channelsLast and
// options.activationDtype (each optional); ERR_INVALID_ARGUMENT naming the field and what arrived.
BackendOptions ReadBackendOptions(Napi::Env env, const Napi::Object& options);

// Creates the backend (worker thread). Throws showo2::Error (ERR_CUDA for an unusable 'cuda').
std::unique_ptr<Backend> CreateBackend(const BackendOptions& options);

}  // namespace showo2::binding
