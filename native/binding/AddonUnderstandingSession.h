// The raw `UnderstandingSession` class of the addon (wrapped by lib/model.ts): one conversation's sequence and KV
// cache (native/core/understanding_session.h).
//
//   .evaluate(chunk, {sample?, returnLogits?}) -> Promise<{token?: number, logits?: Float32Array}>
//        chunk = {ids: Int32Array, times: [{position, t}], blocks: [{offset, length}],
//                 images: [{data: Float32Array, shape: [F, 3, 1, H, W], position, poolTo?: [h, w]}]}
//        Encodes the images (VAE mean -> fused visual tokens; F frames each encoded alone, tokens frame-major,
//        optionally each frame's token grid bilinearly resized to poolTo), appends the chunk, and samples the next
//        token from the last position's logits when `sample` is set.
//        chunk.latents = [{data: Float32Array, shape: [1, z, 1, h, w], position}]: an image given by its normalised
//        VAE latent (e.g. one just generated in place, spec §8.4): its fused visual tokens go at `position`.
//        options.ban (Int32Array): token ids the sample may not pick (this call only).
//   .setSampling({temperature, topK, topP, repetitionPenalty, seed, logitBias?: [id, bias][]})   a new sampling run
//   A session made by model.createSession({flowHeadContext: true}) also keeps what the flow head needs to draw images
//   inside the conversation: model.generate({session, ...}) continues it (mixed modality, spec §8.4).
//   .cancel()            makes the evaluate in flight (if any) stop at the next layer with ERR_CANCELLED; the session
//                        is left as it was before that evaluate
//   .truncate(length)    forgets positions >= length (sync; not while an evaluate is in flight)
//   .length              positions in the cache
//   .dispose()           idempotent; later use throws ERR_DISPOSED
// One evaluate at a time per session (a second one while busy is ERR_INVALID_ARGUMENT); evaluates of different
// sessions of one model queue on the model's mutex.
#pragma once

#include "AddonNapi.h"

#include <atomic>
#include <memory>
#include <string>

#include "understanding_session.h"

namespace showo2::binding {

struct Showo2ModelHandle;

struct SessionState {
  std::shared_ptr<Showo2ModelHandle> model;
  std::unique_ptr<UnderstandingSession> session;
  std::atomic<bool> cancel{false};
  std::atomic<bool> busy{false};   // an evaluate, or a generate continuing this session, is in flight
  std::atomic<int64_t> length{0};  // mirrored after each evaluate so the getter never races a worker
};

class AddonUnderstandingSession : public Napi::ObjectWrap<AddonUnderstandingSession> {
 public:
  static Napi::Function Init(Napi::Env env);
  static Napi::Object Wrap(Napi::Env env, std::shared_ptr<Showo2ModelHandle> model, bool flow_head_context);
  // The state behind a JS session object (ERR_INVALID_ARGUMENT naming `what` if it is not one, ERR_DISPOSED if
  // disposed).
  static std::shared_ptr<SessionState> StateOf(Napi::Env env, const Napi::Value& value, const std::string& what);
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
