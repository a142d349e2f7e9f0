// Device discovery (see device_info.h). Host code only; kept as .cu so it builds with the rest of the CUDA backend
// and links against the same static runtime.
#include "device_info.h"

#include <cuda_runtime.h>

#include <sstream>

namespace showo2::cuda {

std::string cuda_version_string(int version) {
  std::ostringstream os;
  os << version / 1000 << "." << (version % 1000) / 10;
  return os.str();
}

CudaInfo query_cuda() {
  CudaInfo info;
  cudaRuntimeGetVersion(&info.runtime_version);
  if (cudaDriverGetVersion(&info.driver_version) != cudaSuccess) info.driver_version = 0;

  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    // cudaGetDeviceCount leaves a sticky-free error; clear it so later calls start clean.
    cudaGetLastError();
    std::ostringstream os;
    if (info.driver_version == 0) {
      os << "no NVIDIA driver found (" << cudaGetErrorString(err) << ")";
    } else if (err == cudaErrorInsufficientDriver) {
      os << "the NVIDIA driver supports CUDA " << cuda_version_string(info.driver_version)
         << " but showo2 was built with CUDA " << cuda_version_string(info.runtime_version)
         << ": update the driver";
    } else {
      os << "no usable CUDA device (" << cudaGetErrorString(err) << ")";
    }
    info.unavailable_reason = os.str();
    return info;
  }
  if (count == 0) {
    info.unavailable_reason = "no CUDA device present";
    return info;
  }
  bool any_supported = false;
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) {
      cudaGetLastError();
      continue;
    }
    DeviceInfo d;
    d.index = i;
    d.name = prop.name;
    d.compute_major = prop.major;
    d.compute_minor = prop.minor;
    d.total_memory_bytes = prop.totalGlobalMem;
    d.multiprocessors = prop.multiProcessorCount;
    d.supported = prop.major >= kMinComputeMajor;
    any_supported = any_supported || d.supported;
    info.devices.push_back(d);
  }
  if (!any_supported) {
    std::ostringstream os;
    os << "no supported CUDA device: showo2 needs compute capability " << kMinComputeMajor << ".0 or newer, found";
    for (const auto& d : info.devices) os << " " << d.name << " (" << d.compute_major << "." << d.compute_minor << ")";
    if (info.devices.empty()) os << " none readable";
    info.unavailable_reason = os.str();
  }
  return info;
}

}  // namespace showo2::cuda
