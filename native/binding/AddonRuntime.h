// runtimeInfo() -> Promise<{cpuFeatures, defaultThreadCount, cuda}>: what this build of the addon can use.
// Asynchronous because the CUDA query initialises the CUDA runtime, which can take a noticeable time.
#pragma once

#include "AddonNapi.h"

namespace showo2::binding {

Napi::Value RuntimeInfo(const Napi::CallbackInfo& info);

}  // namespace showo2::binding
