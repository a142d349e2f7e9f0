#include "AddonCancelToken.h"

#include <string>

#include "AddonData.h"
#include "AddonErrors.h"

namespace showo2::binding {

Napi::Function AddonCancelToken::Init(Napi::Env env) {
  Napi::Function constructor = DefineClass(env, "CancelToken",
                                           {
                                               InstanceMethod<&AddonCancelToken::Cancel>("cancel"),
                                               InstanceAccessor<&AddonCancelToken::GetCancelled>("cancelled"),
                                           });
  addon_data(env).cancel_token_constructor = Napi::Persistent(constructor);
  return constructor;
}

AddonCancelToken::AddonCancelToken(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AddonCancelToken>(info) {}

std::shared_ptr<std::atomic<bool>> AddonCancelToken::FlagOf(Napi::Env env, const Napi::Value& value, const char* what) {
  if (value.IsUndefined() || value.IsNull()) return nullptr;
  if (!value.IsObject() || !value.As<Napi::Object>().InstanceOf(addon_data(env).cancel_token_constructor.Value()))
    throw MakeError(env, kErrInvalidArgument, std::string("Expected a CancelToken for ") + what);
  return Unwrap(value.As<Napi::Object>())->flag_;
}

Napi::Value AddonCancelToken::Cancel(const Napi::CallbackInfo& info) {
  flag_->store(true);
  return info.Env().Undefined();
}

Napi::Value AddonCancelToken::GetCancelled(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), flag_->load());
}

}  // namespace showo2::binding
