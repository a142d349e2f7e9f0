// The raw `WanVae` class of the addon (wrapped by lib/vae.ts): the Wan2.1 VAE on the CPU or CUDA backend. An object
// of this class is either a standalone VAE (WanVae.load) or a view of a loaded Show-o2 model's own VAE (the model's
// `vae` accessor, AddonShowo2Model.h): both run through the same workers.
//
//   WanVae.load(weightsPath, configJson?) -> Promise<WanVae>   opens the checkpoint and builds the model off-thread
//   .config                                                    the resolved WanVaeConfig (plain object)
//   .encode(data, shape, {sample?, seed?}) -> Promise<{data: Float32Array, shape}>   normalised latent (mean or a
//                                                                                    seeded posterior sample)
//   .decode(data, shape) -> Promise<{data: Float32Array, shape}>                     pixels in [-1, 1]
//   .dispose()                                                 idempotent; any later use throws ERR_DISPOSED
//
// The model is held by shared_ptr: a call in flight keeps its own reference, so dispose() during a decode frees the
// model only after that decode has finished. Calls on one model run one at a time (a mutex inside the model).
// Input arrays are read on the worker thread (as sharp does with input buffers): the worker holds a reference to the
// typed array so it stays alive, and the caller must not modify it until the promise settles.
#pragma once

#include "AddonExternalMemory.h"
#include "AddonNapi.h"

#include <cstdint>
#include <memory>
#include <mutex>

namespace showo2 {
class Backend;
class WanVae;
}  // namespace showo2

namespace showo2::binding {

// What the workers need: the VAE, the mutex that serialises calls on it (the backend's thread pool and scratch are
// not reentrant), its backend, and the owner that keeps all three alive: the standalone VAE's own storage, or the
// Show-o2 model handle whose VAE it is (so a view keeps the model's memory alive only while the view is alive).
struct WanVaeModel {
  std::shared_ptr<void> owner;
  WanVae* vae = nullptr;
  std::mutex* mutex = nullptr;
  const Backend* backend = nullptr;
  int64_t host_bytes = 0;  // a standalone VAE's tensors (reported to V8); 0 for a view (the model reports them)
};

class AddonWanVae : public Napi::ObjectWrap<AddonWanVae> {
 public:
  static Napi::Function Init(Napi::Env env);
  // Wraps a built model (called from the load worker; JS code cannot construct one directly).
  static Napi::Object Wrap(Napi::Env env, std::shared_ptr<WanVaeModel> model);

  explicit AddonWanVae(const Napi::CallbackInfo& info);

 private:
  static Napi::Value Load(const Napi::CallbackInfo& info);

  Napi::Value GetConfig(const Napi::CallbackInfo& info);
  Napi::Value GetDisposed(const Napi::CallbackInfo& info);
  Napi::Value GetDevice(const Napi::CallbackInfo& info);
  Napi::Value Encode(const Napi::CallbackInfo& info);
  Napi::Value Decode(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);

  // The model, or a thrown ERR_DISPOSED naming `operation`.
  const std::shared_ptr<WanVaeModel>& Model(Napi::Env env, const char* operation) const;

  std::shared_ptr<WanVaeModel> model_;
  ExternalMemory external_;  // model_->host_bytes while this wrapper holds the model
};

}  // namespace showo2::binding
