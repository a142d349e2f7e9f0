#include "AddonBackend.h"

#include <cmath>

#include "AddonErrors.h"
#include "cpu/cpu_backend.h"
#include "error.h"
#ifdef SHOWO2_WITH_CUDA
#include "cuda_backend.h"
#include "device_info.h"
#endif

namespace showo2::binding {

namespace {

std::string ReadChoice(Napi::Env env, const Napi::Object& options, const char* key, const std::string& fallback,
                       std::initializer_list<const char*> allowed) {
  Napi::Value v = options.Get(key);
  if (v.IsUndefined()) return fallback;
  std::string list;
  for (const char* a : allowed) list += std::string(list.empty() ? "" : ", ") + "'" + a + "'";
  if (v.IsString()) {
    const std::string s = v.As<Napi::String>().Utf8Value();
    for (const char* a : allowed)
      if (s == a) return s;
    throw MakeError(env, kErrInvalidArgument,
                    std::string("Expected one of ") + list + " for options." + key + " but received '" + s + "'");
  }
  throw MakeError(env, kErrInvalidArgument, std::string("Expected one of ") + list + " for options." + key);
}

}  // namespace

BackendOptions ReadBackendOptions(Napi::Env env, const Napi::Object& options) {
  BackendOptions out;
  out.device = ReadChoice(env, options, "device", "cpu", {"cpu", "cuda", "auto"});
  out.weight_dtype = ReadChoice(env, options, "weightDtype", "bf16", {"bf16", "fp16"});
  out.conv_dtype = ReadChoice(env, options, "convDtype", "fp32", {"fp32", "bf16"});
  out.activation_dtype = ReadChoice(env, options, "activationDtype", "fp32", {"fp32", "bf16"});
  Napi::Value channels_last = options.Get("channelsLast");
  if (!channels_last.IsUndefined()) {
    if (!channels_last.IsBoolean()) throw MakeError(env, kErrInvalidArgument, "Expected a boolean for options.channelsLast");
    out.channels_last = channels_last.As<Napi::Boolean>().Value();
  }
  Napi::Value threads = options.Get("threads");
  if (!threads.IsUndefined()) {
    double d = threads.IsNumber() ? threads.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0) || d != std::floor(d) || d > 4096)
      throw MakeError(env, kErrInvalidArgument, "Expected a non-negative integer for options.threads");
    out.threads = static_cast<int>(d);
  }
  return out;
}

std::unique_ptr<Backend> CreateBackend(const BackendOptions& options) {
  if (options.device == "cpu") return std::make_unique<cpu::CpuBackend>(options.threads);
#ifdef SHOWO2_WITH_CUDA
  if (options.device == "auto" && !cuda::query_cuda().unavailable_reason.empty())
    return std::make_unique<cpu::CpuBackend>(options.threads);
  cuda::CudaBackendOptions cuda_options;
  cuda_options.weight_dtype = options.weight_dtype == "fp16" ? DType::F16 : DType::BF16;
  cuda_options.conv_dtype = options.conv_dtype == "bf16" ? DType::BF16 : DType::F32;
  cuda_options.channels_last_activations = options.channels_last;
  cuda_options.conv_activation_dtype = options.activation_dtype == "bf16" ? DType::BF16 : DType::F32;
  return std::make_unique<cuda::CudaBackend>(cuda_options);  // ERR_CUDA naming the reason when unusable
#else
  if (options.device == "auto") return std::make_unique<cpu::CpuBackend>(options.threads);
  fail(ErrorCode::Cuda,
       "device 'cuda' is unavailable: this build of showo2 has no CUDA backend (it was built with SHOWO2_CUDA=OFF, or "
       "nvcc was not found at build time): load the CUDA build of the addon (see the README, Install), or use device "
       "'cpu'");
#endif
}

}  // namespace showo2::binding
