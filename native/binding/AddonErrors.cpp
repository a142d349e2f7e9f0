#include "AddonErrors.h"

#include <exception>
#include <new>

#include "error.h"

namespace showo2::binding {

Napi::Error MakeError(Napi::Env env, const std::string& code, const std::string& message) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  return error;
}

void DescribeCurrentException(std::string* code, std::string* message) {
  try {
    throw;
  } catch (const showo2::Error& e) {
    *code = e.code_str();
    *message = e.what();
  } catch (const std::bad_alloc&) {
    *code = showo2::code_name(showo2::ErrorCode::OutOfMemory);
    *message = "out of memory";
  } catch (const std::exception& e) {
    *code = kErrInternal;
    *message = std::string("internal error (please report): ") + e.what();
  } catch (...) {
    *code = kErrInternal;
    *message = "internal error (please report): unknown exception";
  }
}

std::string RequireString(const Napi::CallbackInfo& info, size_t index, const char* what) {
  if (info.Length() <= index || !info[index].IsString()) {
    throw MakeError(info.Env(), kErrInvalidArgument, std::string("Expected a string for ") + what);
  }
  return info[index].As<Napi::String>().Utf8Value();
}

}  // namespace showo2::binding
