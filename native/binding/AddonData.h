// Per-environment state of the addon.
//
// Node may load the addon into several environments at once (the main thread and each worker_thread). Anything that
// holds a JS value (constructor references) therefore lives here, attached with env.SetInstanceData(), and never in
// a static: a static Napi::FunctionReference would be shared across isolates and crash the second one to use it.
#pragma once

#include "AddonNapi.h"

namespace showo2::binding {

struct AddonData {
  Napi::FunctionReference weight_file_constructor;  // AddonWeightFile's class, for WeightFile.open()
  Napi::FunctionReference wan_vae_constructor;      // AddonWanVae's class, for WanVae.load()
  Napi::FunctionReference showo2_model_constructor; // AddonShowo2Model's class, for Showo2Model.load()
  Napi::FunctionReference session_constructor;      // AddonUnderstandingSession's class, for createSession()
  Napi::FunctionReference cancel_token_constructor; // AddonCancelToken's class, to recognise tokens passed in
};

inline AddonData& addon_data(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

}  // namespace showo2::binding
