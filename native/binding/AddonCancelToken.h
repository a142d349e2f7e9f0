// The raw `CancelToken` class of the addon: a flag JS sets and a running native call polls (between layers, ODE steps
// or tokens), so an AbortSignal can stop model work promptly without tearing anything down.
//
//   new CancelToken()     a fresh, unset token
//   .cancel()             sets it (idempotent)
//   .cancelled            whether it is set
// Native calls that take a token keep a shared reference to its flag, so the token may be garbage-collected while
// they run.
#pragma once

#include "AddonNapi.h"

#include <atomic>
#include <memory>

namespace showo2::binding {

class AddonCancelToken : public Napi::ObjectWrap<AddonCancelToken> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit AddonCancelToken(const Napi::CallbackInfo& info);

  // The flag of a CancelToken passed from JS; nullptr for undefined/null; ERR_INVALID_ARGUMENT for anything else.
  static std::shared_ptr<std::atomic<bool>> FlagOf(Napi::Env env, const Napi::Value& value, const char* what);

 private:
  Napi::Value Cancel(const Napi::CallbackInfo& info);
  Napi::Value GetCancelled(const Napi::CallbackInfo& info);

  std::shared_ptr<std::atomic<bool>> flag_ = std::make_shared<std::atomic<bool>>(false);
};

}  // namespace showo2::binding
