// The raw `UnderstandingSession` class of the addon (wrapped by lib/model.ts): one conversation's sequence and KV
// cache (native/core/understanding_session.h).
//
//   .evaluate(chunk, {sample?, returnLogits?}) -> Promise<{token?: number, logits?: Float32Array}>
//        chunk = {ids: Int32Array, times: [{position, t}], blocks: [{offset, length}],
//                 images: [{data: Float32Array, shape: [F, 3, 1, H, W], position, poolTo?: [h, w]}]}
//        Encodes the images (VAE mean -> fused visual tokens; F frames each encoded alone, tokens frame-major,
//        optionally each frame's token grid bilinearly resized to poolTo), appends the chunk, and samples the next
//        token from the last position's logits when `sample` is set.
//   .setSampling({temperature, topK, topP, repetitionPenalty, seed})   starts a new sampling run (sync)
//   .cancel()            makes the evaluate in flight (if any) stop at the next layer with ERR_CANCELLED; the session
//                        is left as it was before that evaluate
//   .truncate(length)    forgets positions >= length (sync; not while an evaluate is in flight)
//   .length              positions in the cache
//   .dispose()           idempotent; later use throws ERR_DISPOSED
// One evaluate at a time per session (a second one while busy is ERR_INVALID_ARGUMENT); evaluates of different
// sessions of one model queue on the model's mutex.
#pragma once

#include "AddonNapi.h"

#include <memory>

namespace showo2::binding {

struct Showo2ModelHandle;
struct SessionState;  // AddonUnderstandingSession.cpp

class AddonUnderstandingSession : public Napi::ObjectWrap<AddonUnderstandingSession> {
 public:
  static Napi::Function Init(Napi::Env env);
  static Napi::Object Wrap(Napi::Env env, std::shared_ptr<Showo2ModelHandle> model);
  explicit AddonUnderstandingSession(const Napi::CallbackInfo& info);

 private:
  Napi::Value Evaluate(const Napi::CallbackInfo& info);
  Napi::Value SetSampling(const Napi::CallbackInfo& info);
  Napi::Value Cancel(const Napi::CallbackInfo& info);
  Napi::Value Truncate(const Napi::CallbackInfo& info);
  Napi::Value GetLength(const Napi::CallbackInfo& info);
  Napi::Value GetDisposed(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);

  const std::shared_ptr<SessionState>& State(Napi::Env env, const char* operation) const;
  std::shared_ptr<SessionState> state_;
};

}  // namespace showo2::binding
