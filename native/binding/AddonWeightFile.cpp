#include "AddonWeightFile.h"

#include <string>
#include <utility>

#include "AddonData.h"
#include "AddonErrors.h"
#include "AddonPromiseWorker.h"
#include "AddonTensor.h"

namespace showo2::binding {

namespace {

class OpenWorker : public AddonPromiseWorker {
 public:
  OpenWorker(Napi::Env env, std::string path)
      : AddonPromiseWorker(env, "showo2:WeightFile.open"), path_(std::move(path)) {}

 protected:
  void Run() override { file_ = weights::open_weight_file(path_); }
  Napi::Value Result(Napi::Env env) override { return AddonWeightFile::Wrap(env, std::move(file_)); }

 private:
  std::string path_;
  std::shared_ptr<const weights::WeightFile> file_;
};

class ReadWorker : public AddonPromiseWorker {
 public:
  ReadWorker(Napi::Env env, std::shared_ptr<const weights::WeightFile> file, std::string name)
      : AddonPromiseWorker(env, "showo2:WeightFile.read"), file_(std::move(file)), name_(std::move(name)) {}

 protected:
  void Run() override {
    // A copy, not a view of the mapping: the ArrayBuffer outlives close() and JS may write into it.
    tensor_ = CopyTensorBytes(file_->load(name_));
    file_.reset();
  }
  Napi::Value Result(Napi::Env env) override { return tensor_.ToJs(env); }

 private:
  std::shared_ptr<const weights::WeightFile> file_;
  std::string name_;
  TensorBytes tensor_;
};

}  // namespace

Napi::Function AddonWeightFile::Init(Napi::Env env) {
  Napi::Function constructor = DefineClass(
      env, "WeightFile",
      {
          StaticMethod<&AddonWeightFile::Open>("open"),
          InstanceAccessor<&AddonWeightFile::GetPath>("path"),
          InstanceAccessor<&AddonWeightFile::GetFormat>("format"),
          InstanceAccessor<&AddonWeightFile::GetTensors>("tensors"),
          InstanceAccessor<&AddonWeightFile::GetMetadata>("metadata"),
          InstanceAccessor<&AddonWeightFile::GetClosed>("closed"),
          InstanceMethod<&AddonWeightFile::Read>("read"),
          InstanceMethod<&AddonWeightFile::Close>("close"),
      });
  addon_data(env).weight_file_constructor = Napi::Persistent(constructor);
  return constructor;
}

Napi::Object AddonWeightFile::Wrap(Napi::Env env, std::shared_ptr<const weights::WeightFile> file) {
  // The constructor receives the file through an External that lives only for this synchronous call; it copies
  // the shared_ptr out before returning, so the External never dangles in a way anyone can observe.
  auto external = Napi::External<std::shared_ptr<const weights::WeightFile>>::New(env, &file);
  return addon_data(env).weight_file_constructor.New({external});
}

AddonWeightFile::AddonWeightFile(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AddonWeightFile>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw MakeError(info.Env(), kErrInvalidArgument, "WeightFile cannot be constructed directly: use WeightFile.open(path)");
  }
  file_ = *info[0].As<Napi::External<std::shared_ptr<const weights::WeightFile>>>().Data();
}

Napi::Value AddonWeightFile::Open(const Napi::CallbackInfo& info) {
  std::string path = RequireString(info, 0, "path");
  return AddonPromiseWorker::Start(new OpenWorker(info.Env(), std::move(path)));
}

const std::shared_ptr<const weights::WeightFile>& AddonWeightFile::OpenFile(Napi::Env env,
                                                                             const char* operation) const {
  if (!file_) {
    throw MakeError(env, kErrDisposed, std::string("Cannot ") + operation + ": the WeightFile has been disposed");
  }
  return file_;
}

Napi::Value AddonWeightFile::GetPath(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), OpenFile(info.Env(), "read path")->path());
}

Napi::Value AddonWeightFile::GetFormat(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), OpenFile(info.Env(), "read format")->format());
}

Napi::Value AddonWeightFile::GetTensors(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto& records = OpenFile(env, "list tensors")->tensors();
  Napi::Array out = Napi::Array::New(env, records.size());
  for (size_t i = 0; i < records.size(); ++i) {
    Napi::Object record = Napi::Object::New(env);
    record.Set("name", records[i].name);
    record.Set("dtype", dtype_name(records[i].dtype));
    record.Set("shape", ShapeToJs(env, records[i].shape));
    out.Set(static_cast<uint32_t>(i), record);
  }
  return out;
}

Napi::Value AddonWeightFile::GetMetadata(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  for (const auto& [key, value] : OpenFile(env, "read metadata")->metadata()) out.Set(key, value);
  return out;
}

Napi::Value AddonWeightFile::GetClosed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), file_ == nullptr);
}

Napi::Value AddonWeightFile::Read(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<const weights::WeightFile> file = OpenFile(env, "read a tensor");
  std::string name = RequireString(info, 0, "name");
  return AddonPromiseWorker::Start(new ReadWorker(env, std::move(file), std::move(name)));
}

Napi::Value AddonWeightFile::Close(const Napi::CallbackInfo& info) {
  file_.reset();
  return info.Env().Undefined();
}

}  // namespace showo2::binding
