#include "AddonShowo2Model.h"

#include <cmath>
#include <string>
#include <utility>

#include "AddonData.h"
#include "AddonErrors.h"
#include "AddonPromiseWorker.h"
#include "AddonUnderstandingSession.h"
#include "cpu/cpu_backend.h"
#include "error.h"
#include "showo2.h"
#include "weights/weight_file.h"

namespace showo2::binding {

Showo2ModelHandle::~Showo2ModelHandle() {
  model.reset();  // before the backend it points to
  backend.reset();
}

namespace {

struct LoadArgs {
  std::string config_json;
  std::string config_source;
  std::string weights_path;
  std::string vae_path;
  int threads = 0;
};

class LoadWorker : public AddonPromiseWorker {
 public:
  LoadWorker(Napi::Env env, LoadArgs args) : AddonPromiseWorker(env, "showo2:Showo2Model.load"), args_(std::move(args)) {}

 protected:
  void Run() override {
    const Showo2Config config = Showo2Config::from_json(args_.config_json, args_.config_source);
    std::unique_ptr<weights::WeightFile> weights = weights::open_weight_file(args_.weights_path);
    std::unique_ptr<weights::WeightFile> vae = weights::open_weight_file(args_.vae_path);
    auto handle = std::make_shared<Showo2ModelHandle>();
    handle->backend = std::make_unique<cpu::CpuBackend>(args_.threads);
    // Loaded tensors keep their file mappings alive, so the WeightFiles can go when this returns.
    handle->model = std::make_unique<Showo2Model>(config, *weights, *vae, *handle->backend);
    handle_ = std::move(handle);
  }
  Napi::Value Result(Napi::Env env) override { return AddonShowo2Model::Wrap(env, std::move(handle_)); }

 private:
  LoadArgs args_;
  std::shared_ptr<Showo2ModelHandle> handle_;
};

std::string RequireStringMember(Napi::Env env, const Napi::Object& obj, const char* key) {
  Napi::Value v = obj.Get(key);
  if (!v.IsString()) throw MakeError(env, kErrInvalidArgument, std::string("Expected a string for options.") + key);
  return v.As<Napi::String>().Utf8Value();
}

Napi::Value Num(Napi::Env env, int64_t v) { return Napi::Number::New(env, static_cast<double>(v)); }

}  // namespace

Napi::Function AddonShowo2Model::Init(Napi::Env env) {
  Napi::Function constructor = DefineClass(env, "Showo2Model",
                                           {
                                               StaticMethod<&AddonShowo2Model::Load>("load"),
                                               InstanceAccessor<&AddonShowo2Model::GetConfig>("config"),
                                               InstanceAccessor<&AddonShowo2Model::GetDisposed>("disposed"),
                                               InstanceMethod<&AddonShowo2Model::CreateSession>("createSession"),
                                               InstanceMethod<&AddonShowo2Model::Dispose>("dispose"),
                                           });
  addon_data(env).showo2_model_constructor = Napi::Persistent(constructor);
  return constructor;
}

Napi::Object AddonShowo2Model::Wrap(Napi::Env env, std::shared_ptr<Showo2ModelHandle> handle) {
  auto external = Napi::External<std::shared_ptr<Showo2ModelHandle>>::New(env, &handle);
  return addon_data(env).showo2_model_constructor.New({external});
}

AddonShowo2Model::AddonShowo2Model(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AddonShowo2Model>(info) {
  if (info.Length() != 1 || !info[0].IsExternal())
    throw MakeError(info.Env(), kErrInvalidArgument, "Showo2Model cannot be constructed directly: use Showo2Model.load()");
  handle_ = *info[0].As<Napi::External<std::shared_ptr<Showo2ModelHandle>>>().Data();
}

Napi::Value AddonShowo2Model::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw MakeError(env, kErrInvalidArgument, "Expected an options object");
  Napi::Object options = info[0].As<Napi::Object>();
  LoadArgs args;
  args.config_json = RequireStringMember(env, options, "configJson");
  args.config_source = RequireStringMember(env, options, "configSource");
  args.weights_path = RequireStringMember(env, options, "weightsPath");
  args.vae_path = RequireStringMember(env, options, "vaePath");
  Napi::Value threads = options.Get("threads");
  if (!threads.IsUndefined()) {
    double d = threads.IsNumber() ? threads.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0) || d != std::floor(d) || d > 4096)
      throw MakeError(env, kErrInvalidArgument, "Expected a non-negative integer for options.threads");
    args.threads = static_cast<int>(d);
  }
  return AddonPromiseWorker::Start(new LoadWorker(env, std::move(args)));
}

const std::shared_ptr<Showo2ModelHandle>& AddonShowo2Model::Handle(Napi::Env env, const char* operation) const {
  if (!handle_) throw MakeError(env, kErrDisposed, std::string("Cannot ") + operation + ": the model has been disposed");
  return handle_;
}

Napi::Value AddonShowo2Model::GetConfig(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Showo2Config& c = Handle(env, "read config")->model->config();
  Napi::Object out = Napi::Object::New(env);
  out.Set("_class_name", Napi::String::New(env, c.class_name));
  out.Set("llm_model_path", Napi::String::New(env, c.llm_model_path));
  out.Set("hidden_size", Num(env, c.hidden_size));
  out.Set("llm_vocab_size", Num(env, c.llm_vocab_size));
  out.Set("image_latent_dim", Num(env, c.image_latent_dim));
  out.Set("patch_size", Num(env, c.patch_size));
  out.Set("image_latent_height", Num(env, c.image_latent_height));
  out.Set("image_latent_width", Num(env, c.image_latent_width));
  out.Set("clip_latent_dim", Num(env, c.clip_latent_dim));
  out.Set("num_diffusion_layers", Num(env, c.num_diffusion_layers));
  out.Set("max_position_embeddings", Num(env, c.llm.max_position_embeddings));
  out.Set("num_hidden_layers", Num(env, c.llm.num_hidden_layers));
  out.Set("tie_word_embeddings", Napi::Boolean::New(env, c.llm.tie_word_embeddings));
  out.Set("vae_spatial_stride", Num(env, c.vae.spatial_stride()));
  out.Set("vae_temporal_stride", Num(env, c.vae.temporal_stride()));
  out.Set("image_resolution", Num(env, c.image_resolution()));
  return out;
}

Napi::Value AddonShowo2Model::GetDisposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), handle_ == nullptr);
}

Napi::Value AddonShowo2Model::CreateSession(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return AddonUnderstandingSession::Wrap(env, Handle(env, "create a session"));
}

Napi::Value AddonShowo2Model::Dispose(const Napi::CallbackInfo& info) {
  handle_.reset();
  return info.Env().Undefined();
}

}  // namespace showo2::binding
