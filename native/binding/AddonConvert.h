// convertToSafetensors(src, dst, {dtype?}) -> Promise<number>: the addon side of lib/convert.ts.
// Runs weights::convert_to_safetensors on a worker thread and resolves with the number of tensors written.
#pragma once

#include "AddonNapi.h"

namespace showo2::binding {

Napi::Value ConvertToSafetensors(const Napi::CallbackInfo& info);

}  // namespace showo2::binding
