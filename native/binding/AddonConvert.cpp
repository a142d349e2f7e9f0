#include "AddonConvert.h"

#include <optional>
#include <string>
#include <utility>

#include "AddonErrors.h"
#include "AddonPromiseWorker.h"
#include "weights/weight_file.h"

namespace showo2::binding {

namespace {

class ConvertWorker : public AddonPromiseWorker {
 public:
  ConvertWorker(Napi::Env env, std::string src, std::string dst, std::optional<DType> dtype)
      : AddonPromiseWorker(env, "showo2:convertToSafetensors"),
        src_(std::move(src)),
        dst_(std::move(dst)),
        dtype_(dtype) {}

 protected:
  void Run() override {
    weights::ConvertOptions options;
    if (dtype_) options.dtype = &*dtype_;
    written_ = weights::convert_to_safetensors(src_, dst_, options);
  }
  Napi::Value Result(Napi::Env env) override { return Napi::Number::New(env, static_cast<double>(written_)); }

 private:
  std::string src_, dst_;
  std::optional<DType> dtype_;
  size_t written_ = 0;
};

// options.dtype: undefined keeps each tensor's dtype; otherwise one of the float dtypes the core can cast to.
std::optional<DType> ParseDtypeOption(const Napi::CallbackInfo& info) {
  if (info.Length() < 3 || info[2].IsUndefined()) return std::nullopt;
  if (!info[2].IsObject()) throw MakeError(info.Env(), kErrInvalidArgument, "Expected an object for options");
  Napi::Value value = info[2].As<Napi::Object>().Get("dtype");
  if (value.IsUndefined()) return std::nullopt;
  DType dtype;
  if (!value.IsString() || !dtype_from_name(value.As<Napi::String>().Utf8Value(), &dtype) || !is_float_dtype(dtype)) {
    throw MakeError(info.Env(), kErrInvalidArgument, "Expected one of F32, BF16, F16 for options.dtype");
  }
  return dtype;
}

}  // namespace

Napi::Value ConvertToSafetensors(const Napi::CallbackInfo& info) {
  std::string src = RequireString(info, 0, "src");
  std::string dst = RequireString(info, 1, "dst");
  std::optional<DType> dtype = ParseDtypeOption(info);
  return AddonPromiseWorker::Start(new ConvertWorker(info.Env(), std::move(src), std::move(dst), dtype));
}

}  // namespace showo2::binding
