// The raw `Showo2Model` class of the addon (wrapped by lib/model.ts): a loaded Show-o2 checkpoint + VAE on the CPU
// backend.
//
//   Showo2Model.load({configJson, configSource, weightsPath, vaePath, threads?}) -> Promise<Showo2Model>
//   .config                     the resolved configuration (plain object, config.json spellings)
//   .createSession()            a new UnderstandingSession (its own KV cache) over this model
//   .generate(request, onStep?, cancelToken?) -> Promise<{data: Float32Array, shape}>
//                               runs the flow-matching ODE (native/core/generation.h) and resolves with the final
//                               latent [B, z, T, h, w]; onStep(info) is called on the JS thread after each step
//   .encodeImages({data, shape: [N, 3, 1, H, W]}) -> Promise<{data, shape}>    VAE posterior mean (normalised)
//   .decodeLatents({data, shape: [N, z, T, h, w]}, {tiling?}) -> Promise<{data, shape}>   pixels in [-1, 1]
//   .parameterCounts            {llm, semantic, flowHead, projections, other, vae, total} from the checkpoints' shapes
//   .vae()                      a WanVae object (AddonWanVae.h) over this model's own VAE: no second copy of the
//                               weights; its calls take the model's mutex; it keeps the model's memory alive until
//                               it is disposed too (lib/model.ts disposes it with the model)
//   .dispose()                  idempotent; later use throws ERR_DISPOSED. Sessions keep the weights alive until
//                               they are disposed too (lib/model.ts disposes them with the model). The weights'
//                               size counts as V8 external memory from load to dispose() (or, for a model dropped
//                               without dispose(), to its finalizer).
//
// Calls on one model (from any of its sessions) run one at a time: the CPU backend's thread pool and scratch memory
// are not reentrant, so every worker takes the model's mutex.
#pragma once

#include "AddonExternalMemory.h"
#include "AddonNapi.h"

#include <memory>
#include <mutex>

#include "showo2.h"  // Showo2ParameterCounts

namespace showo2::binding {

// Member order matters: the model keeps a pointer to the backend, so the backend is declared first (destroyed last).
struct Showo2ModelHandle {
  std::unique_ptr<Backend> backend;  // CPU or CUDA (AddonBackend.h)
  std::unique_ptr<Showo2Model> model;
  std::mutex mutex;
  Showo2ParameterCounts parameter_counts;
  int64_t host_bytes = 0;  // the checkpoint and VAE tensors (reported to V8 as external memory)
  ~Showo2ModelHandle();
};

class AddonShowo2Model : public Napi::ObjectWrap<AddonShowo2Model> {
 public:
  static Napi::Function Init(Napi::Env env);
  static Napi::Object Wrap(Napi::Env env, std::shared_ptr<Showo2ModelHandle> handle);
  explicit AddonShowo2Model(const Napi::CallbackInfo& info);

 private:
  static Napi::Value Load(const Napi::CallbackInfo& info);
  Napi::Value GetConfig(const Napi::CallbackInfo& info);
  Napi::Value GetDisposed(const Napi::CallbackInfo& info);
  Napi::Value GetDevice(const Napi::CallbackInfo& info);
  Napi::Value CreateSession(const Napi::CallbackInfo& info);
  Napi::Value Generate(const Napi::CallbackInfo& info);
  Napi::Value EncodeImages(const Napi::CallbackInfo& info);
  Napi::Value DecodeLatents(const Napi::CallbackInfo& info);
  Napi::Value GetParameterCounts(const Napi::CallbackInfo& info);
  Napi::Value Vae(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);

  const std::shared_ptr<Showo2ModelHandle>& Handle(Napi::Env env, const char* operation) const;
  std::shared_ptr<Showo2ModelHandle> handle_;
  ExternalMemory external_;  // handle_->host_bytes while this wrapper holds the handle
};

}  // namespace showo2::binding
