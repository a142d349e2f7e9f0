#include "AddonShowo2Model.h"

#include <cmath>
#include <string>
#include <utility>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <vector>

#include "AddonCancelToken.h"
#include "AddonData.h"
#include "AddonErrors.h"
#include "AddonPromiseWorker.h"
#include "AddonTensor.h"
#include "AddonUnderstandingSession.h"
#include "AddonWanVae.h"
#include "AddonBackend.h"
#include "error.h"
#include "generation.h"
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
  BackendOptions backend;
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
    handle->backend = CreateBackend(args_.backend);
    // Loaded tensors keep their file mappings alive, so the WeightFiles can go when this returns.
    handle->model = std::make_unique<Showo2Model>(config, *weights, *vae, *handle->backend);
    handle->parameter_counts = count_parameters(config, weights->tensors(), vae->tensors());
    handle->host_bytes = CheckpointBytes(weights->tensors()) + CheckpointBytes(vae->tensors());
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

// ---- generation --------------------------------------------------------------------------------------------------

int64_t ReadInteger(Napi::Env env, const Napi::Value& v, const std::string& what, double min, double max) {
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : std::nan("");
  if (!(d >= min && d <= max) || d != std::floor(d))
    throw MakeError(env, kErrInvalidArgument, "Expected an integer in [" + std::to_string(static_cast<int64_t>(min)) +
                                                  ", " + std::to_string(static_cast<int64_t>(max)) + "] for " + what);
  return static_cast<int64_t>(d);
}

double ReadNumber(Napi::Env env, const Napi::Object& obj, const char* key, double fallback, const std::string& what) {
  Napi::Value v = obj.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsNumber() || !std::isfinite(v.As<Napi::Number>().DoubleValue()))
    throw MakeError(env, kErrInvalidArgument, "Expected a finite number for " + what + "." + key);
  return v.As<Napi::Number>().DoubleValue();
}

GenerationSequence ReadSequence(Napi::Env env, const Napi::Value& value, const std::string& what) {
  if (!value.IsObject()) throw MakeError(env, kErrInvalidArgument, "Expected an object {ids, blockOffset} for " + what);
  Napi::Object obj = value.As<Napi::Object>();
  Napi::Value ids = obj.Get("ids");
  if (!ids.IsTypedArray() || ids.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw MakeError(env, kErrInvalidArgument, "Expected an Int32Array for " + what + ".ids");
  Napi::Int32Array array = ids.As<Napi::Int32Array>();
  GenerationSequence seq;
  seq.ids.assign(array.Data(), array.Data() + array.ElementLength());
  seq.block_offset = ReadInteger(env, obj.Get("blockOffset"), what + ".blockOffset", 0, 1e12);
  return seq;
}

// Counts step reports queued vs delivered, so the worker can wait until JS has seen every step before the promise
// resolves (a thread-safe function's calls may otherwise arrive after the completion callback).
struct DeliveryCounter {
  std::mutex mutex;
  std::condition_variable cv;
  int64_t queued = 0, delivered = 0;
  void mark_delivered() {
    std::lock_guard<std::mutex> lock(mutex);
    ++delivered;
    cv.notify_all();
  }
};

// One step's report, copied on the worker thread and delivered to JS through the thread-safe function.
struct StepReport {
  std::shared_ptr<DeliveryCounter> counter;
  int64_t step = 0, total_steps = 0, model_evaluations = 0;
  double t = 0, elapsed_ms = 0;
  std::vector<float> preview;  // predicted clean latent, when asked for
  Shape preview_shape;
};

class GenerateWorker : public AddonPromiseWorker {
 public:
  GenerateWorker(Napi::Env env, std::shared_ptr<Showo2ModelHandle> handle, GenerationRequest request,
                 FloatInput initial, FloatInput first_frame, bool preview, Napi::Function on_step,
                 std::shared_ptr<std::atomic<bool>> cancel, std::shared_ptr<SessionState> session)
      : AddonPromiseWorker(env, "showo2:Showo2Model.generate"),
        handle_(std::move(handle)),
        request_(std::move(request)),
        initial_(std::move(initial)),
        first_frame_(std::move(first_frame)),
        preview_(preview),
        cancel_(std::move(cancel)),
        session_(std::move(session)) {
    if (!on_step.IsEmpty()) {
      on_step_ = Napi::ThreadSafeFunction::New(env, on_step, "showo2:generate.onStep", 0, 1);
      has_on_step_ = true;
    }
  }

  ~GenerateWorker() override {
    if (has_on_step_) on_step_.Release();
    if (session_) session_->busy.store(false);
  }

 protected:
  void Run() override {
    if (initial_.data) request_.initial_latents = CopyFloatInput(initial_);
    if (first_frame_.data) request_.first_frame = CopyFloatInput(first_frame_);
    const auto start = std::chrono::steady_clock::now();
    std::atomic<bool>* cancel = cancel_.get();
    auto should_cancel = [cancel] { return cancel && cancel->load(std::memory_order_relaxed); };
    GenerationStepCallback on_step;
    if (has_on_step_) {
      on_step = [&](const GenerationStep& s) {
        auto* report = new StepReport();
        report->counter = counter_;
        report->step = s.step;
        report->total_steps = s.total_steps;
        report->model_evaluations = s.model_evaluations;
        report->t = s.t;
        report->elapsed_ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
        if (preview_) {
          report->preview = handle_->model->backend().to_host(s.predicted_clean).to_f32_vector();
          report->preview_shape = s.predicted_clean.shape();
        }
        // Non-blocking: a slow JS callback never stalls the model; the queue is unbounded (one report per step).
        {
          std::lock_guard<std::mutex> counter_lock(counter_->mutex);
          ++counter_->queued;
        }
        if (on_step_.NonBlockingCall(report, DeliverStep) != napi_ok) {
          delete report;
          counter_->mark_delivered();
        }
      };
    }
    {
      std::lock_guard<std::mutex> lock(handle_->mutex);
      if (session_) {
        // Mixed modality (spec §8.4): the cond branch continues the conversation. request_.cond[0] holds only the ids
        // from the block on (placeholders and suffix), relative to the session's end.
        UnderstandingSession& session = *session_->session;
        GenerationSequence& cond = request_.cond[0];
        cond.cached_prefix = session.generation_prefix(should_cancel);
        std::vector<int32_t> ids = session.ids();
        ids.insert(ids.end(), cond.ids.begin(), cond.ids.end());
        cond.ids = std::move(ids);
        cond.block_offset += session.length();
      }
      Tensor latents = generate_latents(*handle_->model, request_, on_step, should_cancel);
      result_ = CopyTensorBytes(latents);
    }
    // Let every step report reach JS before the promise settles (bounded, in case the environment is going away).
    std::unique_lock<std::mutex> counter_lock(counter_->mutex);
    counter_->cv.wait_for(counter_lock, std::chrono::seconds(10),
                          [this] { return counter_->delivered >= counter_->queued; });
  }

  Napi::Value Result(Napi::Env env) override { return FloatResultToJs(env, result_); }

 private:
  static void DeliverStep(Napi::Env env, Napi::Function callback, StepReport* report) {
    std::unique_ptr<StepReport> owned(report);
    struct MarkDelivered {
      DeliveryCounter* counter;
      ~MarkDelivered() { counter->mark_delivered(); }
    } mark{report->counter.get()};
    if (env == nullptr || callback.IsEmpty()) return;
    Napi::Object info = Napi::Object::New(env);
    info.Set("step", Napi::Number::New(env, static_cast<double>(report->step)));
    info.Set("totalSteps", Napi::Number::New(env, static_cast<double>(report->total_steps)));
    info.Set("modelEvaluations", Napi::Number::New(env, static_cast<double>(report->model_evaluations)));
    info.Set("t", Napi::Number::New(env, report->t));
    info.Set("elapsedMs", Napi::Number::New(env, report->elapsed_ms));
    if (!report->preview_shape.empty()) {
      Napi::Float32Array data = Napi::Float32Array::New(env, report->preview.size());
      std::memcpy(data.Data(), report->preview.data(), report->preview.size() * sizeof(float));
      Napi::Object preview = Napi::Object::New(env);
      preview.Set("data", data);
      preview.Set("shape", ShapeToJs(env, report->preview_shape));
      info.Set("preview", preview);
    }
    // An exception thrown by the user's callback must not abort the process; it is reported on the next tick.
    try {
      callback.Call({info});
    } catch (const Napi::Error& e) {
      (void)e;
    }
  }

  std::shared_ptr<Showo2ModelHandle> handle_;
  GenerationRequest request_;
  FloatInput initial_;
  FloatInput first_frame_;
  bool preview_;
  std::shared_ptr<std::atomic<bool>> cancel_;
  std::shared_ptr<SessionState> session_;  // set: the cond branch continues this conversation (busy while we run)
  Napi::ThreadSafeFunction on_step_;
  bool has_on_step_ = false;
  std::shared_ptr<DeliveryCounter> counter_ = std::make_shared<DeliveryCounter>();
  TensorBytes result_;
};

class EncodeImagesWorker : public AddonPromiseWorker {
 public:
  EncodeImagesWorker(Napi::Env env, std::shared_ptr<Showo2ModelHandle> handle, FloatInput pixels)
      : AddonPromiseWorker(env, "showo2:Showo2Model.encodeImages"), handle_(std::move(handle)), pixels_(std::move(pixels)) {}

 protected:
  void Run() override {
    Tensor pixels = CopyFloatInput(pixels_);
    std::lock_guard<std::mutex> lock(handle_->mutex);
    result_ = CopyTensorBytes(handle_->model->vae().encode(pixels));
  }
  Napi::Value Result(Napi::Env env) override { return FloatResultToJs(env, result_); }

 private:
  std::shared_ptr<Showo2ModelHandle> handle_;
  FloatInput pixels_;
  TensorBytes result_;
};

class DecodeLatentsWorker : public AddonPromiseWorker {
 public:
  DecodeLatentsWorker(Napi::Env env, std::shared_ptr<Showo2ModelHandle> handle, FloatInput latents,
                      WanVaeDecodeOptions options)
      : AddonPromiseWorker(env, "showo2:Showo2Model.decodeLatents"),
        handle_(std::move(handle)),
        latents_(std::move(latents)),
        options_(options) {}

 protected:
  void Run() override {
    Tensor latents = CopyFloatInput(latents_);
    std::lock_guard<std::mutex> lock(handle_->mutex);
    result_ = CopyTensorBytes(handle_->model->vae().decode(latents, options_));
  }
  Napi::Value Result(Napi::Env env) override { return FloatResultToJs(env, result_); }

 private:
  std::shared_ptr<Showo2ModelHandle> handle_;
  FloatInput latents_;
  WanVaeDecodeOptions options_;
  TensorBytes result_;
};

}  // namespace


Napi::Function AddonShowo2Model::Init(Napi::Env env) {
  Napi::Function constructor = DefineClass(env, "Showo2Model",
                                           {
                                               StaticMethod<&AddonShowo2Model::Load>("load"),
                                               InstanceAccessor<&AddonShowo2Model::GetConfig>("config"),
                                               InstanceAccessor<&AddonShowo2Model::GetDisposed>("disposed"),
                                               InstanceAccessor<&AddonShowo2Model::GetDevice>("device"),
                                               InstanceMethod<&AddonShowo2Model::CreateSession>("createSession"),
                                               InstanceMethod<&AddonShowo2Model::Generate>("generate"),
                                               InstanceMethod<&AddonShowo2Model::EncodeImages>("encodeImages"),
                                               InstanceMethod<&AddonShowo2Model::DecodeLatents>("decodeLatents"),
                                               InstanceAccessor<&AddonShowo2Model::GetParameterCounts>("parameterCounts"),
                                               InstanceMethod<&AddonShowo2Model::Vae>("vae"),
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
  external_.Report(info.Env(), handle_->host_bytes);
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
  args.backend = ReadBackendOptions(env, options);
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

Napi::Value AddonShowo2Model::GetDevice(const Napi::CallbackInfo& info) {
  // The backend's device ("cpu" or "cuda"); kept readable after dispose (null then).
  if (!handle_ || !handle_->backend) return info.Env().Null();
  return Napi::String::New(info.Env(), device_name(handle_->backend->device()));
}

Napi::Value AddonShowo2Model::GetDisposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), handle_ == nullptr);
}

Napi::Value AddonShowo2Model::CreateSession(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool flow_head_context = false;
  if (info.Length() > 0 && !info[0].IsUndefined()) {
    if (!info[0].IsObject()) throw MakeError(env, kErrInvalidArgument, "Expected an object for options");
    Napi::Value v = info[0].As<Napi::Object>().Get("flowHeadContext");
    if (!v.IsUndefined()) {
      if (!v.IsBoolean()) throw MakeError(env, kErrInvalidArgument, "Expected a boolean for options.flowHeadContext");
      flow_head_context = v.As<Napi::Boolean>().Value();
    }
  }
  return AddonUnderstandingSession::Wrap(env, Handle(env, "create a session"), flow_head_context);
}

Napi::Value AddonShowo2Model::Generate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<Showo2ModelHandle> handle = Handle(env, "generate");
  if (info.Length() < 1 || !info[0].IsObject()) throw MakeError(env, kErrInvalidArgument, "Expected a request object");
  Napi::Object r = info[0].As<Napi::Object>();
  GenerationRequest request;
  Napi::Value cond = r.Get("cond");
  if (!cond.IsArray() || cond.As<Napi::Array>().Length() == 0)
    throw MakeError(env, kErrInvalidArgument, "Expected a non-empty array for request.cond");
  Napi::Array cond_array = cond.As<Napi::Array>();
  for (uint32_t i = 0; i < cond_array.Length(); ++i)
    request.cond.push_back(ReadSequence(env, cond_array.Get(i), "request.cond[" + std::to_string(i) + "]"));
  Napi::Value uncond = r.Get("uncond");
  if (!uncond.IsUndefined() && !uncond.IsNull()) request.uncond = ReadSequence(env, uncond, "request.uncond");
  Napi::Value shape = r.Get("latentShape");
  if (!shape.IsArray() || shape.As<Napi::Array>().Length() != 5)
    throw MakeError(env, kErrInvalidArgument, "Expected [B, z, T, h, w] for request.latentShape");
  for (uint32_t i = 0; i < 5; ++i)
    request.latent_shape.push_back(
        ReadInteger(env, shape.As<Napi::Array>().Get(i), "request.latentShape[" + std::to_string(i) + "]", 1, 1e6));
  request.seed = static_cast<uint64_t>(ReadInteger(env, r.Get("seed"), "request.seed", 0, 9007199254740991.0));
  request.sampler.num_inference_steps = ReadInteger(env, r.Get("steps"), "request.steps", 0, 1e6);
  request.sampler.time_shift = ReadNumber(env, r, "shift", 3.0, "request");
  request.sampler.guidance_scale = static_cast<float>(ReadNumber(env, r, "guidanceScale", 5.0, "request"));
  Napi::Value solver = r.Get("solver");
  if (!solver.IsUndefined()) {
    const std::string name = solver.IsString() ? solver.As<Napi::String>().Utf8Value() : "";
    if (name == "euler") request.sampler.solver = OdeSolver::Euler;
    else if (name == "heun") request.sampler.solver = OdeSolver::Heun;
    else throw MakeError(env, kErrInvalidArgument, "Expected 'euler' or 'heun' for request.solver");
  }
  Napi::Value reuse = r.Get("reusePrefix");
  if (!reuse.IsUndefined()) {
    if (!reuse.IsBoolean()) throw MakeError(env, kErrInvalidArgument, "Expected a boolean for request.reusePrefix");
    request.reuse_prefix = reuse.As<Napi::Boolean>().Value();
  }
  bool preview = false;
  Napi::Value pv = r.Get("preview");
  if (!pv.IsUndefined()) {
    if (!pv.IsBoolean()) throw MakeError(env, kErrInvalidArgument, "Expected a boolean for request.preview");
    preview = pv.As<Napi::Boolean>().Value();
  }
  FloatInput initial, first_frame;
  Napi::Value init = r.Get("initialLatents");
  if (!init.IsUndefined() && !init.IsNull()) {
    if (!init.IsObject()) throw MakeError(env, kErrInvalidArgument, "Expected {data, shape} for request.initialLatents");
    initial = ReadFloatInput(env, init.As<Napi::Object>().Get("data"), init.As<Napi::Object>().Get("shape"), 5,
                             "request.initialLatents");
  }
  Napi::Value ff = r.Get("firstFrame");
  if (!ff.IsUndefined() && !ff.IsNull()) {
    if (!ff.IsObject()) throw MakeError(env, kErrInvalidArgument, "Expected {data, shape} for request.firstFrame");
    first_frame = ReadFloatInput(env, ff.As<Napi::Object>().Get("data"), ff.As<Napi::Object>().Get("shape"), 5,
                                 "request.firstFrame");
  }
  try {
    request.sampler.validate();
  } catch (const showo2::Error& e) {
    throw MakeError(env, e.code_str(), e.what());
  }
  Napi::Function on_step;
  if (info.Length() > 1 && !info[1].IsUndefined() && !info[1].IsNull()) {
    if (!info[1].IsFunction()) throw MakeError(env, kErrInvalidArgument, "Expected a function for onStep");
    on_step = info[1].As<Napi::Function>();
  }
  auto cancel = AddonCancelToken::FlagOf(env, info.Length() > 2 ? info[2] : env.Undefined(), "cancelToken");
  std::shared_ptr<SessionState> session;
  Napi::Value session_value = r.Get("session");
  if (!session_value.IsUndefined() && !session_value.IsNull()) {
    session = AddonUnderstandingSession::StateOf(env, session_value, "request.session");
    if (session->model != handle)
      throw MakeError(env, kErrInvalidArgument, "request.session belongs to another model");
    if (request.cond.size() != 1 || request.latent_shape[0] != 1)
      throw MakeError(env, kErrInvalidArgument,
                      "A generation that continues request.session has exactly one cond sequence and batch 1");
    if (session->busy.exchange(true))
      throw MakeError(env, kErrInvalidArgument, "Cannot generate: request.session is busy (one call at a time)");
  }
  return AddonPromiseWorker::Start(new GenerateWorker(env, std::move(handle), std::move(request), std::move(initial),
                                                      std::move(first_frame), preview, on_step, std::move(cancel),
                                                      std::move(session)));
}

Napi::Value AddonShowo2Model::EncodeImages(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<Showo2ModelHandle> handle = Handle(env, "encode images");
  if (info.Length() < 1 || !info[0].IsObject()) throw MakeError(env, kErrInvalidArgument, "Expected {data, shape} for pixels");
  Napi::Object o = info[0].As<Napi::Object>();
  FloatInput pixels = ReadFloatInput(env, o.Get("data"), o.Get("shape"), 5, "pixels");
  return AddonPromiseWorker::Start(new EncodeImagesWorker(env, std::move(handle), std::move(pixels)));
}

Napi::Value AddonShowo2Model::DecodeLatents(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<Showo2ModelHandle> handle = Handle(env, "decode latents");
  if (info.Length() < 1 || !info[0].IsObject()) throw MakeError(env, kErrInvalidArgument, "Expected {data, shape} for latents");
  Napi::Object o = info[0].As<Napi::Object>();
  FloatInput latents = ReadFloatInput(env, o.Get("data"), o.Get("shape"), 5, "latents");
  WanVaeDecodeOptions options;
  if (info.Length() > 1 && info[1].IsObject()) {
    Napi::Value tiling = info[1].As<Napi::Object>().Get("tiling");
    if (!tiling.IsUndefined()) {
      const std::string t = tiling.IsString() ? tiling.As<Napi::String>().Utf8Value() : "";
      if (t == "auto") options.tiling = WanVaeDecodeOptions::Tiling::Auto;
      else if (t == "on") options.tiling = WanVaeDecodeOptions::Tiling::On;
      else if (t == "off") options.tiling = WanVaeDecodeOptions::Tiling::Off;
      else throw MakeError(env, kErrInvalidArgument, "Expected 'auto', 'on' or 'off' for options.tiling");
    }
  }
  return AddonPromiseWorker::Start(new DecodeLatentsWorker(env, std::move(handle), std::move(latents), options));
}

Napi::Value AddonShowo2Model::GetParameterCounts(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Showo2ParameterCounts& n = Handle(env, "read parameterCounts")->parameter_counts;
  Napi::Object out = Napi::Object::New(env);
  out.Set("llm", Num(env, n.llm));
  out.Set("semantic", Num(env, n.semantic));
  out.Set("flowHead", Num(env, n.flow_head));
  out.Set("projections", Num(env, n.projections));
  out.Set("other", Num(env, n.other));
  out.Set("vae", Num(env, n.vae));
  out.Set("total", Num(env, n.total()));
  return out;
}

Napi::Value AddonShowo2Model::Vae(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<Showo2ModelHandle> handle = Handle(env, "get the VAE");
  auto view = std::make_shared<WanVaeModel>();
  view->vae = &handle->model->vae();
  view->mutex = &handle->mutex;
  view->backend = handle->backend.get();
  view->owner = std::move(handle);
  return AddonWanVae::Wrap(env, std::move(view));
}

Napi::Value AddonShowo2Model::Dispose(const Napi::CallbackInfo& info) {
  handle_.reset();
  external_.Release();
  return info.Env().Undefined();
}

}  // namespace showo2::binding
