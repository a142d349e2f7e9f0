#include "AddonWanVae.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "AddonData.h"
#include "AddonErrors.h"
#include "AddonPromiseWorker.h"
#include "AddonTensor.h"
#include "AddonBackend.h"
#include "error.h"
#include "wan_vae.h"
#include "weights/weight_file.h"

namespace showo2::binding {

namespace {

// A VAE loaded on its own (WanVae.load). Member order matters: the WanVae keeps a pointer to the backend, so the
// backend is declared first (destroyed last).
struct StandaloneVae {
  std::unique_ptr<Backend> backend;  // CPU or CUDA (AddonBackend.h)
  std::unique_ptr<WanVae> vae;
  std::mutex mutex;
};

// ---- arguments ---------------------------------------------------------------------------------------------------

// Cheap re-checks of what lib/vae.ts validates first: a Float32Array, a rank-5 shape of positive integers, and
// a length equal to the product of the shape.
FloatInput RequireFloatInput(const Napi::CallbackInfo& info, size_t data_index, const char* what) {
  Napi::Env env = info.Env();
  return ReadFloatInput(env, info.Length() > data_index ? info[data_index] : env.Undefined(),
                        info.Length() > data_index + 1 ? info[data_index + 1] : env.Undefined(), 5, what);
}

template <typename T>
Napi::Array VectorToJs(Napi::Env env, const std::vector<T>& values) {
  Napi::Array out = Napi::Array::New(env, values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    if constexpr (std::is_same_v<T, bool>) {
      out.Set(static_cast<uint32_t>(i), Napi::Boolean::New(env, values[i]));
    } else {
      out.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(values[i])));
    }
  }
  return out;
}

// ---- workers -----------------------------------------------------------------------------------------------------

class LoadWorker : public AddonPromiseWorker {
 public:
  LoadWorker(Napi::Env env, std::string path, bool has_config, std::string config_json, BackendOptions backend)
      : AddonPromiseWorker(env, "showo2:WanVae.load"),
        path_(std::move(path)),
        has_config_(has_config),
        config_json_(std::move(config_json)),
        backend_(std::move(backend)) {}

 protected:
  void Run() override {
    WanVaeConfig config = has_config_ ? WanVaeConfig::from_json(config_json_, "config") : WanVaeConfig{};
    config.validate();
    std::unique_ptr<weights::WeightFile> file = weights::open_weight_file(path_);
    auto owned = std::make_shared<StandaloneVae>();
    owned->backend = CreateBackend(backend_);
    // The loaded tensors keep the file's mapping alive, so the WeightFile itself can go when this returns.
    owned->vae = std::make_unique<WanVae>(*file, config, *owned->backend);
    auto model = std::make_shared<WanVaeModel>();
    model->vae = owned->vae.get();
    model->mutex = &owned->mutex;
    model->backend = owned->backend.get();
    model->host_bytes = CheckpointBytes(file->tensors());
    model->owner = std::move(owned);
    model_ = std::move(model);
  }
  Napi::Value Result(Napi::Env env) override { return AddonWanVae::Wrap(env, std::move(model_)); }

 private:
  std::string path_;
  bool has_config_;
  std::string config_json_;
  BackendOptions backend_;
  std::shared_ptr<WanVaeModel> model_;
};

class EncodeWorker : public AddonPromiseWorker {
 public:
  EncodeWorker(Napi::Env env, std::shared_ptr<WanVaeModel> model, FloatInput input, bool sample, uint64_t seed)
      : AddonPromiseWorker(env, "showo2:WanVae.encode"),
        model_(std::move(model)),
        input_(std::move(input)),
        sample_(sample),
        seed_(seed) {}

 protected:
  void Run() override {
    Tensor video = CopyFloatInput(input_);
    {
      std::lock_guard<std::mutex> lock(*model_->mutex);
      Tensor latent = sample_ ? model_->vae->encode_sample(video, seed_) : model_->vae->encode(video);
      result_ = CopyTensorBytes(latent.dtype() == DType::F32 ? latent : latent.to(DType::F32));
    }
    model_.reset();
  }
  Napi::Value Result(Napi::Env env) override { return FloatResultToJs(env, result_); }

 private:
  std::shared_ptr<WanVaeModel> model_;
  FloatInput input_;  // the Reference is released on the JS thread when the worker is deleted
  bool sample_;
  uint64_t seed_;
  TensorBytes result_;
};

class DecodeWorker : public AddonPromiseWorker {
 public:
  DecodeWorker(Napi::Env env, std::shared_ptr<WanVaeModel> model, FloatInput input, WanVaeDecodeOptions options)
      : AddonPromiseWorker(env, "showo2:WanVae.decode"),
        model_(std::move(model)),
        input_(std::move(input)),
        options_(options) {}

 protected:
  void Run() override {
    Tensor latent = CopyFloatInput(input_);
    {
      std::lock_guard<std::mutex> lock(*model_->mutex);
      Tensor frames = model_->vae->decode(latent, options_);
      result_ = CopyTensorBytes(frames.dtype() == DType::F32 ? frames : frames.to(DType::F32));
    }
    model_.reset();
  }
  Napi::Value Result(Napi::Env env) override { return FloatResultToJs(env, result_); }

 private:
  std::shared_ptr<WanVaeModel> model_;
  FloatInput input_;
  WanVaeDecodeOptions options_;
  TensorBytes result_;
};

// Reads {tiling?: 'auto'|'on'|'off', tileLatent?, overlapLatent?} (already validated in lib/vae.ts; re-checked here
// cheaply, and WanVaeDecodeOptions::validate() checks the ranges).
WanVaeDecodeOptions ReadDecodeOptions(Napi::Env env, const Napi::Value& value) {
  WanVaeDecodeOptions options;
  if (value.IsUndefined() || value.IsNull()) return options;
  if (!value.IsObject()) throw MakeError(env, kErrInvalidArgument, "Expected an object for decode options");
  Napi::Object obj = value.As<Napi::Object>();
  Napi::Value tiling = obj.Get("tiling");
  if (!tiling.IsUndefined()) {
    std::string t = tiling.IsString() ? tiling.As<Napi::String>().Utf8Value() : "";
    if (t == "auto") options.tiling = WanVaeDecodeOptions::Tiling::Auto;
    else if (t == "on") options.tiling = WanVaeDecodeOptions::Tiling::On;
    else if (t == "off") options.tiling = WanVaeDecodeOptions::Tiling::Off;
    else throw MakeError(env, kErrInvalidArgument, "Expected one of 'auto', 'on', 'off' for options.tiling");
  }
  auto read_int = [&](const char* key, int64_t* out) {
    Napi::Value v = obj.Get(key);
    if (v.IsUndefined()) return;
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0) || d != std::floor(d) || d > 1e9)
      throw MakeError(env, kErrInvalidArgument, std::string("Expected a non-negative integer for options.") + key);
    *out = static_cast<int64_t>(d);
  };
  read_int("tileLatent", &options.tile_latent);
  read_int("overlapLatent", &options.overlap_latent);
  try {
    options.validate();
  } catch (const showo2::Error& e) {
    throw MakeError(env, e.code_str(), e.what());
  }
  return options;
}

}  // namespace

Napi::Function AddonWanVae::Init(Napi::Env env) {
  Napi::Function constructor = DefineClass(env, "WanVae",
                                           {
                                               StaticMethod<&AddonWanVae::Load>("load"),
                                               InstanceAccessor<&AddonWanVae::GetConfig>("config"),
                                               InstanceAccessor<&AddonWanVae::GetDisposed>("disposed"),
                                               InstanceAccessor<&AddonWanVae::GetDevice>("device"),
                                               InstanceMethod<&AddonWanVae::Encode>("encode"),
                                               InstanceMethod<&AddonWanVae::Decode>("decode"),
                                               InstanceMethod<&AddonWanVae::Dispose>("dispose"),
                                           });
  addon_data(env).wan_vae_constructor = Napi::Persistent(constructor);
  return constructor;
}

Napi::Object AddonWanVae::Wrap(Napi::Env env, std::shared_ptr<WanVaeModel> model) {
  // As AddonWeightFile::Wrap: the External lives only for this synchronous call and the constructor copies it out.
  auto external = Napi::External<std::shared_ptr<WanVaeModel>>::New(env, &model);
  return addon_data(env).wan_vae_constructor.New({external});
}

AddonWanVae::AddonWanVae(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AddonWanVae>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw MakeError(info.Env(), kErrInvalidArgument, "WanVae cannot be constructed directly: use WanVae.load(path)");
  }
  model_ = *info[0].As<Napi::External<std::shared_ptr<WanVaeModel>>>().Data();
  external_.Report(info.Env(), model_->host_bytes);
}

Napi::Value AddonWanVae::Load(const Napi::CallbackInfo& info) {
  std::string path = RequireString(info, 0, "path");
  bool has_config = info.Length() > 1 && !info[1].IsUndefined() && !info[1].IsNull();
  std::string config_json = has_config ? RequireString(info, 1, "configJson") : std::string();
  BackendOptions backend;
  if (info.Length() > 2 && !info[2].IsUndefined()) {
    if (!info[2].IsObject()) throw MakeError(info.Env(), kErrInvalidArgument, "Expected an object for options");
    backend = ReadBackendOptions(info.Env(), info[2].As<Napi::Object>());
  }
  return AddonPromiseWorker::Start(
      new LoadWorker(info.Env(), std::move(path), has_config, std::move(config_json), std::move(backend)));
}

const std::shared_ptr<WanVaeModel>& AddonWanVae::Model(Napi::Env env, const char* operation) const {
  if (!model_) throw MakeError(env, kErrDisposed, std::string("Cannot ") + operation + ": the WanVae has been disposed");
  return model_;
}

Napi::Value AddonWanVae::GetConfig(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const WanVaeConfig& c = Model(env, "read config")->vae->config();
  Napi::Object out = Napi::Object::New(env);
  out.Set("dim", Napi::Number::New(env, static_cast<double>(c.dim)));
  out.Set("z_dim", Napi::Number::New(env, static_cast<double>(c.z_dim)));
  out.Set("dim_mult", VectorToJs(env, c.dim_mult));
  out.Set("num_res_blocks", Napi::Number::New(env, static_cast<double>(c.num_res_blocks)));
  out.Set("attn_scales", VectorToJs(env, c.attn_scales));
  out.Set("temperal_downsample", VectorToJs(env, c.temperal_downsample));
  out.Set("latents_mean", VectorToJs(env, c.latents_mean));
  out.Set("latents_std", VectorToJs(env, c.latents_std));
  return out;
}

Napi::Value AddonWanVae::GetDevice(const Napi::CallbackInfo& info) {
  if (!model_ || !model_->backend) return info.Env().Null();
  return Napi::String::New(info.Env(), device_name(model_->backend->device()));
}

Napi::Value AddonWanVae::GetDisposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), model_ == nullptr);
}

Napi::Value AddonWanVae::Encode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<WanVaeModel> model = Model(env, "encode");
  FloatInput input = RequireFloatInput(info, 0, "video");
  bool sample = false;
  uint64_t seed = 0;
  if (info.Length() > 2 && !info[2].IsUndefined()) {
    if (!info[2].IsObject()) throw MakeError(env, kErrInvalidArgument, "Expected an object for options");
    Napi::Object options = info[2].As<Napi::Object>();
    Napi::Value s = options.Get("sample");
    if (!s.IsUndefined()) {
      if (!s.IsBoolean()) throw MakeError(env, kErrInvalidArgument, "Expected a boolean for options.sample");
      sample = s.As<Napi::Boolean>().Value();
    }
    Napi::Value sd = options.Get("seed");
    if (!sd.IsUndefined()) {
      double d = sd.IsNumber() ? sd.As<Napi::Number>().DoubleValue() : -1;
      if (!(d >= 0) || d != std::floor(d) || d > 9007199254740991.0) {
        throw MakeError(env, kErrInvalidArgument, "Expected a non-negative safe integer for options.seed");
      }
      seed = static_cast<uint64_t>(d);
    }
  }
  return AddonPromiseWorker::Start(new EncodeWorker(env, std::move(model), std::move(input), sample, seed));
}

Napi::Value AddonWanVae::Decode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<WanVaeModel> model = Model(env, "decode");
  FloatInput input = RequireFloatInput(info, 0, "latent");
  WanVaeDecodeOptions options = ReadDecodeOptions(env, info[2]);
  return AddonPromiseWorker::Start(new DecodeWorker(env, std::move(model), std::move(input), options));
}

Napi::Value AddonWanVae::Dispose(const Napi::CallbackInfo& info) {
  model_.reset();
  external_.Release();
  return info.Env().Undefined();
}

}  // namespace showo2::binding
