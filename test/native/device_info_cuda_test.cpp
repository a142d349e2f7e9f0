// CUDA device discovery. On a machine without a GPU (CI) the query must still succeed and explain why the GPU is
// unavailable; on a GPU machine it must find the device and report sane properties.
#include <cuda_runtime.h>

#include <cstdio>

#include "device_info.h"
#include "test_util.h"

using showo2::cuda::query_cuda;

SHOWO2_TEST(query_never_fails_and_explains) {
  auto info = query_cuda();
  CHECK(info.runtime_version >= 12000);
  std::printf("    runtime %s, driver %s, %zu device(s)%s%s\n",
              showo2::cuda::cuda_version_string(info.runtime_version).c_str(),
              showo2::cuda::cuda_version_string(info.driver_version).c_str(), info.devices.size(),
              info.unavailable_reason.empty() ? "" : ": ", info.unavailable_reason.c_str());
  bool any_supported = false;
  for (const auto& d : info.devices) any_supported = any_supported || d.supported;
  // Exactly one of: a supported device, or a reason why not.
  CHECK(any_supported == info.unavailable_reason.empty());
}

SHOWO2_TEST(device_properties_are_sane) {
  auto info = query_cuda();
  if (info.devices.empty()) showo2::test::skip_test("no CUDA device: " + info.unavailable_reason);
  for (const auto& d : info.devices) {
    std::printf("    device %d: %s, sm_%d%d, %zu MiB, %d SMs\n", d.index, d.name.c_str(), d.compute_major,
                d.compute_minor, d.total_memory_bytes >> 20, d.multiprocessors);
    CHECK(!d.name.empty());
    CHECK(d.compute_major >= 1);
    CHECK(d.total_memory_bytes > 0);
    CHECK(d.multiprocessors > 0);
  }
}

SHOWO2_TEST_MAIN()
