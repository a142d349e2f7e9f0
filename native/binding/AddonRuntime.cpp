#include "AddonRuntime.h"

#include <string>
#include <vector>

#include "AddonPromiseWorker.h"
#include "cpu/cpu_features.h"
#include "cpu/thread_pool.h"
#ifdef SHOWO2_WITH_CUDA
#include "device_info.h"
#endif

namespace showo2::binding {

namespace {

// The CUDA part of runtimeInfo(), filled from cuda::query_cuda() in CUDA builds.
struct CudaSummary {
  bool built = false;
  std::string runtime_version;  // "" when not built with CUDA
  std::string driver_version;   // "" when no driver was found
  struct Device {
    int index = 0;
    std::string name;
    std::string compute_capability;  // "9.0"
    double total_memory_bytes = 0;
    int multiprocessors = 0;
    bool supported = false;
  };
  std::vector<Device> devices;
  std::string unavailable_reason;  // "" when a supported device is present
};

CudaSummary QueryCuda() {
  CudaSummary out;
#ifdef SHOWO2_WITH_CUDA
  cuda::CudaInfo info = cuda::query_cuda();
  out.built = true;
  out.runtime_version = cuda::cuda_version_string(info.runtime_version);
  if (info.driver_version != 0) out.driver_version = cuda::cuda_version_string(info.driver_version);
  for (const auto& d : info.devices) {
    out.devices.push_back({d.index, d.name, std::to_string(d.compute_major) + "." + std::to_string(d.compute_minor),
                           static_cast<double>(d.total_memory_bytes), d.multiprocessors, d.supported});
  }
  out.unavailable_reason = info.unavailable_reason;
#else
  // lib/native.ts replaces this with why the CPU build is the one loaded (no driver, SHOWO2_VARIANT=cpu, ...).
  out.unavailable_reason =
      "this build of showo2 has no CUDA backend (it was built with SHOWO2_CUDA=OFF, or nvcc was not found at build "
      "time)";
#endif
  return out;
}

Napi::Value NullIfEmpty(Napi::Env env, const std::string& s) {
  return s.empty() ? env.Null() : Napi::String::New(env, s);
}

class RuntimeInfoWorker : public AddonPromiseWorker {
 public:
  explicit RuntimeInfoWorker(Napi::Env env) : AddonPromiseWorker(env, "showo2:runtimeInfo") {}

 protected:
  void Run() override {
    cpu_features_ = cpu::cpu_features_string();
    default_threads_ = cpu::ThreadPool::default_thread_count();
    cuda_ = QueryCuda();
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object cuda = Napi::Object::New(env);
    cuda.Set("built", cuda_.built);
    cuda.Set("runtimeVersion", NullIfEmpty(env, cuda_.runtime_version));
    cuda.Set("driverVersion", NullIfEmpty(env, cuda_.driver_version));
    Napi::Array devices = Napi::Array::New(env, cuda_.devices.size());
    for (size_t i = 0; i < cuda_.devices.size(); ++i) {
      const auto& d = cuda_.devices[i];
      Napi::Object device = Napi::Object::New(env);
      device.Set("index", d.index);
      device.Set("name", d.name);
      device.Set("computeCapability", d.compute_capability);
      device.Set("totalMemoryBytes", d.total_memory_bytes);
      device.Set("multiprocessors", d.multiprocessors);
      device.Set("supported", d.supported);
      devices.Set(static_cast<uint32_t>(i), device);
    }
    cuda.Set("devices", devices);
    cuda.Set("unavailableReason", NullIfEmpty(env, cuda_.unavailable_reason));

    Napi::Object out = Napi::Object::New(env);
    out.Set("cpuFeatures", cpu_features_);
    out.Set("defaultThreadCount", default_threads_);
    out.Set("cuda", cuda);
    return out;
  }

 private:
  std::string cpu_features_;
  int default_threads_ = 1;
  CudaSummary cuda_;
};

}  // namespace

Napi::Value RuntimeInfo(const Napi::CallbackInfo& info) {
  return AddonPromiseWorker::Start(new RuntimeInfoWorker(info.Env()));
}

}  // namespace showo2::binding
