// The addon's entry point: registers the exported class and functions, and nothing else.
//
// Node-API addons are initialised once per environment (main thread and every worker_thread), so all per-addon state
// lives in AddonData (see AddonData.h) and Node frees it when that environment shuts down.
#include "AddonNapi.h"

#include "AddonCancelToken.h"
#include "AddonConvert.h"
#include "AddonData.h"
#include "AddonRuntime.h"
#include "AddonShowo2Model.h"
#include "AddonUnderstandingSession.h"
#include "AddonWanVae.h"
#include "AddonWeightFile.h"

namespace {

using namespace showo2::binding;

// V8's count of external memory in this environment's isolate (the total that napi_adjust_external_memory keeps;
// process.memoryUsage().external shows only ArrayBuffer memory), so tests can see models report and release theirs.
Napi::Value ExternalMemory(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(Napi::MemoryManagement::AdjustExternalMemory(info.Env(), 0)));
}

Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new AddonData());
  exports.Set("WeightFile", AddonWeightFile::Init(env));
  exports.Set("WanVae", AddonWanVae::Init(env));
  exports.Set("Showo2Model", AddonShowo2Model::Init(env));
  exports.Set("UnderstandingSession", AddonUnderstandingSession::Init(env));
  exports.Set("CancelToken", AddonCancelToken::Init(env));
  exports.Set("runtimeInfo", Napi::Function::New<RuntimeInfo>(env, "runtimeInfo"));
  exports.Set("convertToSafetensors", Napi::Function::New<ConvertToSafetensors>(env, "convertToSafetensors"));
  // The loader (lib/native.ts) checks both before using the binary: the package version it was built for, and the
  // variant, "cuda" when the CUDA backend is compiled in, else "cpu".
  exports.Set("version", Napi::String::New(env, SHOWO2_VERSION));
#ifdef SHOWO2_WITH_CUDA
  exports.Set("variant", Napi::String::New(env, "cuda"));
#else
  exports.Set("variant", Napi::String::New(env, "cpu"));
#endif
  exports.Set("externalMemory", Napi::Function::New<ExternalMemory>(env, "externalMemory"));
  return exports;
}

}  // namespace

// The macro pastes the function name into an identifier, hence the unqualified InitAddon.
NODE_API_MODULE(showo2, InitAddon)
