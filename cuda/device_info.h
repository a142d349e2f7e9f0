// CUDA device discovery: what the addon reports in runtimeInfo() and uses to explain why the GPU backend is not
// available ("no driver", "driver too old for this runtime", "compute capability 7.5 < 8.0", ...).
// Safe to call on machines without a GPU or a driver: the CUDA runtime is linked statically, so the answer is an
// explanatory `unavailable_reason`, never a load failure or a crash.
#pragma once

#include <string>
#include <vector>

namespace showo2::cuda {

struct DeviceInfo {
  int index = 0;
  std::string name;
  int compute_major = 0, compute_minor = 0;
  size_t total_memory_bytes = 0;
  int multiprocessors = 0;
  bool supported = false;          // compute capability >= kMinComputeMajor.0
};

struct CudaInfo {
  int runtime_version = 0;         // e.g. 13000 for CUDA 13.0 (the runtime this binary was built with)
  int driver_version = 0;          // 0 when no driver is installed
  std::vector<DeviceInfo> devices;
  std::string unavailable_reason;  // empty when at least one supported device is present
};

// The showo2 CUDA kernels target Ampere and newer (bf16 tensor cores).
constexpr int kMinComputeMajor = 8;

CudaInfo query_cuda();

// "major.minor" from CUDA's integer version encoding (13000 -> "13.0").
std::string cuda_version_string(int version);

}  // namespace showo2::cuda
