// Telling V8 how much native memory a JS object keeps alive, so that the garbage collector weighs a dropped model by
// its weights (hundreds of MB to GB) rather than by its few-byte wrapper, and collects it (running its finalizer)
// under memory pressure. The amount is reported when the wrapper is made and given back exactly once: on dispose()
// or, for an object dropped without dispose(), in its finalizer. process.memoryUsage().external shows it.
#pragma once

#include "AddonNapi.h"

#include <cstdint>
#include <vector>

#include "dtype.h"
#include "weights/weight_file.h"

namespace showo2::binding {

// The bytes of every tensor a checkpoint lists: what a loaded model keeps in host memory (mapped or copied).
inline int64_t CheckpointBytes(const std::vector<weights::TensorRecord>& tensors) {
  int64_t bytes = 0;
  for (const weights::TensorRecord& t : tensors) {
    int64_t n = static_cast<int64_t>(dtype_size(t.dtype));
    for (int64_t d : t.shape) n *= d;
    bytes += n;
  }
  return bytes;
}

// One object's share of V8's external memory count. Call Report on the JS thread, once; Release (or the destructor,
// which runs in the wrapper's finalizer on the JS thread) gives it back.
class ExternalMemory {
 public:
  ExternalMemory() = default;
  ExternalMemory(const ExternalMemory&) = delete;
  ExternalMemory& operator=(const ExternalMemory&) = delete;
  ~ExternalMemory() { Release(); }

  void Report(Napi::Env env, int64_t bytes) {
    Release();
    if (bytes <= 0) return;
    env_ = env;
    bytes_ = bytes;
    Napi::MemoryManagement::AdjustExternalMemory(env, bytes);
  }

  void Release() {
    if (bytes_ == 0) return;
    Napi::MemoryManagement::AdjustExternalMemory(env_, -bytes_);
    bytes_ = 0;
  }

 private:
  napi_env env_ = nullptr;
  int64_t bytes_ = 0;
};

}  // namespace showo2::binding
