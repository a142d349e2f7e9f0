// Turning C++ failures into JS errors.
//
// Every error that crosses into JS is a plain Error with a string `code` (the stable codes of native/core/error.h
// plus the binding's own ERR_DISPOSED), so lib/errors.ts can rebuild a ShowO2Error from it without parsing messages.
#pragma once

#include "AddonNapi.h"

#include <string>

namespace showo2::binding {

// The binding's own code (the core never sees a disposed object). Mirrored by ErrorCode in lib/errors.ts.
constexpr const char* kErrDisposed = "ERR_DISPOSED";
constexpr const char* kErrInvalidArgument = "ERR_INVALID_ARGUMENT";
constexpr const char* kErrInternal = "ERR_INTERNAL";

// new Error(message) with error.code = code.
Napi::Error MakeError(Napi::Env env, const std::string& code, const std::string& message);

// Classifies the exception currently being handled (call only inside a catch block): showo2::Error keeps its code,
// std::bad_alloc becomes ERR_OUT_OF_MEMORY, anything else ERR_INTERNAL.
void DescribeCurrentException(std::string* code, std::string* message);

// A JS string argument, or a thrown ERR_INVALID_ARGUMENT naming `what`. lib/ validates first; this is the cheap
// re-check that keeps a direct caller of the raw addon from reaching the core with garbage.
std::string RequireString(const Napi::CallbackInfo& info, size_t index, const char* what);

}  // namespace showo2::binding
