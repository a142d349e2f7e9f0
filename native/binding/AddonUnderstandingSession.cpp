#include "AddonUnderstandingSession.h"

#include <atomic>
#include <cmath>
#include <cstring>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "AddonData.h"
#include "AddonErrors.h"
#include "AddonPromiseWorker.h"
#include "AddonShowo2Model.h"
#include "AddonTensor.h"
#include "cpu/cpu_backend.h"
#include "error.h"
#include "grid_resize.h"
#include "showo2.h"
#include "understanding_session.h"

namespace showo2::binding {

namespace {

using Int32Vector = std::vector<int32_t>;

struct ImageInput {
  FloatInput pixels;      // [F, 3, 1, H, W] in [-1, 1]
  int64_t position = 0;   // first visual position
  int64_t pool_h = 0, pool_w = 0;  // 0: no pooling
};

struct LatentInput {
  FloatInput latent;     // [1, z, 1, h, w] normalised VAE latent
  int64_t position = 0;  // first visual position
};

struct ChunkInput {
  std::vector<int32_t> ids;
  std::vector<TimeInsert> times;
  std::vector<BidirectionalBlock> blocks;
  std::vector<ImageInput> images;
  std::vector<LatentInput> latents;
};

// ---- argument readers (lib/model.ts validates first; these are the cheap re-checks) -----------------------------

int64_t ReadInt(Napi::Env env, const Napi::Value& v, const std::string& what, double min, double max) {
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : std::nan("");
  if (!(d >= min && d <= max) || d != std::floor(d))
    throw MakeError(env, kErrInvalidArgument, "Expected an integer in [" + std::to_string(static_cast<int64_t>(min)) +
                                                  ", " + std::to_string(static_cast<int64_t>(max)) + "] for " + what);
  return static_cast<int64_t>(d);
}

Napi::Array RequireArray(Napi::Env env, const Napi::Object& obj, const char* key, const std::string& what) {
  Napi::Value v = obj.Get(key);
  if (v.IsUndefined()) return Napi::Array::New(env, 0);
  if (!v.IsArray()) throw MakeError(env, kErrInvalidArgument, "Expected an array for " + what + "." + key);
  return v.As<Napi::Array>();
}

ChunkInput ReadChunk(Napi::Env env, const Napi::Value& value) {
  if (!value.IsObject()) throw MakeError(env, kErrInvalidArgument, "Expected an object for chunk");
  Napi::Object obj = value.As<Napi::Object>();
  ChunkInput chunk;
  Napi::Value ids = obj.Get("ids");
  if (!ids.IsTypedArray() || ids.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw MakeError(env, kErrInvalidArgument, "Expected an Int32Array for chunk.ids");
  Napi::Int32Array ids_array = ids.As<Napi::Int32Array>();
  chunk.ids.assign(ids_array.Data(), ids_array.Data() + ids_array.ElementLength());
  constexpr double kMaxPos = 1e12;
  Napi::Array times = RequireArray(env, obj, "times", "chunk");
  for (uint32_t i = 0; i < times.Length(); ++i) {
    const std::string what = "chunk.times[" + std::to_string(i) + "]";
    Napi::Value item = times.Get(i);
    if (!item.IsObject()) throw MakeError(env, kErrInvalidArgument, "Expected an object for " + what);
    Napi::Object t = item.As<Napi::Object>();
    TimeInsert insert;
    insert.position = ReadInt(env, t.Get("position"), what + ".position", 0, kMaxPos);
    Napi::Value tv = t.Get("t");
    double d = tv.IsNumber() ? tv.As<Napi::Number>().DoubleValue() : std::nan("");
    if (!(d >= 0.0 && d <= 1.0)) throw MakeError(env, kErrInvalidArgument, "Expected a number in [0, 1] for " + what + ".t");
    insert.t = static_cast<float>(d);
    chunk.times.push_back(insert);
  }
  Napi::Array blocks = RequireArray(env, obj, "blocks", "chunk");
  for (uint32_t i = 0; i < blocks.Length(); ++i) {
    const std::string what = "chunk.blocks[" + std::to_string(i) + "]";
    Napi::Value item = blocks.Get(i);
    if (!item.IsObject()) throw MakeError(env, kErrInvalidArgument, "Expected an object for " + what);
    Napi::Object b = item.As<Napi::Object>();
    BidirectionalBlock block;
    block.offset = ReadInt(env, b.Get("offset"), what + ".offset", 0, kMaxPos);
    block.length = ReadInt(env, b.Get("length"), what + ".length", 0, kMaxPos);
    chunk.blocks.push_back(block);
  }
  Napi::Array images = RequireArray(env, obj, "images", "chunk");
  for (uint32_t i = 0; i < images.Length(); ++i) {
    const std::string what = "chunk.images[" + std::to_string(i) + "]";
    Napi::Value item = images.Get(i);
    if (!item.IsObject()) throw MakeError(env, kErrInvalidArgument, "Expected an object for " + what);
    Napi::Object im = item.As<Napi::Object>();
    ImageInput input;
    input.pixels = ReadFloatInput(env, im.Get("data"), im.Get("shape"), 5, what);
    input.position = ReadInt(env, im.Get("position"), what + ".position", 0, kMaxPos);
    Napi::Value pool = im.Get("poolTo");
    if (!pool.IsUndefined() && !pool.IsNull()) {
      if (!pool.IsArray() || pool.As<Napi::Array>().Length() != 2)
        throw MakeError(env, kErrInvalidArgument, "Expected [height, width] for " + what + ".poolTo");
      Napi::Array p = pool.As<Napi::Array>();
      input.pool_h = ReadInt(env, p.Get(0u), what + ".poolTo[0]", 1, 1e6);
      input.pool_w = ReadInt(env, p.Get(1u), what + ".poolTo[1]", 1, 1e6);
    }
    chunk.images.push_back(std::move(input));
  }
  Napi::Array latents = RequireArray(env, obj, "latents", "chunk");
  for (uint32_t i = 0; i < latents.Length(); ++i) {
    const std::string what = "chunk.latents[" + std::to_string(i) + "]";
    Napi::Value item = latents.Get(i);
    if (!item.IsObject()) throw MakeError(env, kErrInvalidArgument, "Expected an object for " + what);
    Napi::Object l = item.As<Napi::Object>();
    LatentInput input;
    input.latent = ReadFloatInput(env, l.Get("data"), l.Get("shape"), 5, what);
    input.position = ReadInt(env, l.Get("position"), what + ".position", 0, kMaxPos);
    chunk.latents.push_back(std::move(input));
  }
  return chunk;
}

Int32Vector ReadIdList(Napi::Env env, const Napi::Object& obj, const char* key, const std::string& what) {
  Napi::Value v = obj.Get(key);
  if (v.IsUndefined()) return {};
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw MakeError(env, kErrInvalidArgument, "Expected an Int32Array for " + what + "." + key);
  Napi::Int32Array a = v.As<Napi::Int32Array>();
  return Int32Vector(a.Data(), a.Data() + a.ElementLength());
}

// Fused visual tokens [gh*gw, hidden] of one image given by its latent [1, z, 1, h, w].
Tensor LatentTokens(Showo2Model& model, const LatentInput& input, const std::function<bool()>& should_cancel) {
  Tensor latent = CopyFloatInput(input.latent);
  const int64_t z = model.config().image_latent_dim, p = model.config().patch_size;
  if (latent.size(0) != 1 || latent.size(1) != z || latent.size(2) != 1 || latent.size(3) % p != 0 ||
      latent.size(4) % p != 0)
    fail(ErrorCode::ShapeMismatch, "evaluate: a latent insert must be [1, ", z, ", 1, h, w] with h, w multiples of ",
         p, " but got ", latent.shape_string());
  Tensor tokens = model.visual_tokens(model.backend().to_device(latent), should_cancel);  // [1, gh*gw, hidden]
  return model.backend().to_host(tokens).reshape({tokens.size(1), tokens.size(2)});
}

// Per-frame visual tokens of one image input, flattened to [frames * tokens_per_frame, hidden].
Tensor EncodeImage(Showo2Model& model, const ImageInput& image, const std::function<bool()>& should_cancel) {
  Tensor pixels = CopyFloatInput(image.pixels);                               // [F, 3, 1, H, W]
  if (pixels.size(2) != 1)
    fail(ErrorCode::InvalidArgument, "evaluate: images are encoded one frame at a time (spec §8.3); expected shape ",
         "[F, 3, 1, H, W] but got ", pixels.shape_string());
  Tensor latent = model.vae().encode(pixels);                                 // [F, z, 1, H/8, W/8]
  if (should_cancel && should_cancel()) fail(ErrorCode::Cancelled, "evaluate: cancelled");
  Tensor tokens = model.visual_tokens(latent, should_cancel);                 // [F, gh*gw, hidden]
  const int64_t F = tokens.size(0), hidden = tokens.size(2);
  if (image.pool_h == 0) return tokens.reshape({F * tokens.size(1), hidden});
  const int64_t p = model.config().patch_size;
  const int64_t gh = latent.size(3) / p, gw = latent.size(4) / p;
  const int64_t per = image.pool_h * image.pool_w;
  Tensor pooled = Tensor::empty({F * per, hidden}, DType::F32);               // [F * ph*pw, hidden]
  for (int64_t f = 0; f < F; ++f) {
    Tensor grid = tokens.select(0, f).reshape({gh, gw, hidden});
    Tensor frame = resize_grid_bilinear(grid, image.pool_h, image.pool_w);    // [ph, pw, hidden]
    std::memcpy(pooled.mutable_data<float>() + f * per * hidden, frame.contiguous().data<float>(),
                static_cast<size_t>(per * hidden) * sizeof(float));
  }
  return pooled;
}

class EvaluateWorker : public AddonPromiseWorker {
 public:
  EvaluateWorker(Napi::Env env, std::shared_ptr<SessionState> state, ChunkInput chunk, bool sample, bool return_logits,
                 Int32Vector ban)
      : AddonPromiseWorker(env, "showo2:UnderstandingSession.evaluate"),
        state_(std::move(state)),
        chunk_(std::move(chunk)),
        sample_(sample),
        return_logits_(return_logits),
        ban_(std::move(ban)) {}

 protected:
  void Run() override {
    struct ClearBusy {
      SessionState* s;
      ~ClearBusy() { s->busy.store(false); }
    } clear_busy{state_.get()};
    std::lock_guard<std::mutex> lock(state_->model->mutex);
    SessionState* state = state_.get();
    auto should_cancel = [state] { return state->cancel.load(std::memory_order_relaxed); };
    Showo2Model& model = *state_->model->model;

    SequenceChunk chunk;
    chunk.ids = std::move(chunk_.ids);
    chunk.times = std::move(chunk_.times);
    chunk.blocks = std::move(chunk_.blocks);
    for (const ImageInput& image : chunk_.images) chunk.visuals.push_back({image.position, EncodeImage(model, image, should_cancel)});
    for (const LatentInput& latent : chunk_.latents)
      chunk.visuals.push_back({latent.position, LatentTokens(model, latent, should_cancel)});
    state_->session->append(chunk, should_cancel);
    state_->length.store(state_->session->length());
    if (sample_) token_ = state_->session->sample(ban_);
    if (return_logits_) logits_ = state_->session->last_logits();
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object out = Napi::Object::New(env);
    if (sample_) out.Set("token", Napi::Number::New(env, token_));
    if (return_logits_) {
      Napi::Float32Array logits = Napi::Float32Array::New(env, logits_.size());
      std::memcpy(logits.Data(), logits_.data(), logits_.size() * sizeof(float));
      out.Set("logits", logits);
    }
    return out;
  }

 private:
  std::shared_ptr<SessionState> state_;
  ChunkInput chunk_;  // the image References are released on the JS thread when the worker is deleted
  bool sample_;
  bool return_logits_;
  Int32Vector ban_;
  int32_t token_ = -1;
  std::vector<float> logits_;
};

bool ReadBool(Napi::Env env, const Napi::Object& obj, const char* key, const std::string& what) {
  Napi::Value v = obj.Get(key);
  if (v.IsUndefined()) return false;
  if (!v.IsBoolean()) throw MakeError(env, kErrInvalidArgument, "Expected a boolean for " + what + "." + key);
  return v.As<Napi::Boolean>().Value();
}

}  // namespace

Napi::Function AddonUnderstandingSession::Init(Napi::Env env) {
  Napi::Function constructor =
      DefineClass(env, "UnderstandingSession",
                  {
                      InstanceMethod<&AddonUnderstandingSession::Evaluate>("evaluate"),
                      InstanceMethod<&AddonUnderstandingSession::SetSampling>("setSampling"),
                      InstanceMethod<&AddonUnderstandingSession::Cancel>("cancel"),
                      InstanceMethod<&AddonUnderstandingSession::Truncate>("truncate"),
                      InstanceAccessor<&AddonUnderstandingSession::GetLength>("length"),
                      InstanceAccessor<&AddonUnderstandingSession::GetDisposed>("disposed"),
                      InstanceMethod<&AddonUnderstandingSession::Dispose>("dispose"),
                  });
  addon_data(env).session_constructor = Napi::Persistent(constructor);
  return constructor;
}

Napi::Object AddonUnderstandingSession::Wrap(Napi::Env env, std::shared_ptr<Showo2ModelHandle> model,
                                             bool flow_head_context) {
  auto external = Napi::External<std::shared_ptr<Showo2ModelHandle>>::New(env, &model);
  return addon_data(env).session_constructor.New({external, Napi::Boolean::New(env, flow_head_context)});
}

std::shared_ptr<SessionState> AddonUnderstandingSession::StateOf(Napi::Env env, const Napi::Value& value,
                                                                 const std::string& what) {
  if (!value.IsObject() || !value.As<Napi::Object>().InstanceOf(addon_data(env).session_constructor.Value()))
    throw MakeError(env, kErrInvalidArgument, "Expected a session (model.createSession()) for " + what);
  return Napi::ObjectWrap<AddonUnderstandingSession>::Unwrap(value.As<Napi::Object>())->State(env, "use the session");
}

AddonUnderstandingSession::AddonUnderstandingSession(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<AddonUnderstandingSession>(info) {
  if (info.Length() != 2 || !info[0].IsExternal() || !info[1].IsBoolean())
    throw MakeError(info.Env(), kErrInvalidArgument,
                    "UnderstandingSession cannot be constructed directly: use model.createSession()");
  auto state = std::make_shared<SessionState>();
  state->model = *info[0].As<Napi::External<std::shared_ptr<Showo2ModelHandle>>>().Data();
  state->session = std::make_unique<UnderstandingSession>(*state->model->model, info[1].As<Napi::Boolean>().Value());
  state_ = std::move(state);
}

const std::shared_ptr<SessionState>& AddonUnderstandingSession::State(Napi::Env env, const char* operation) const {
  if (!state_) throw MakeError(env, kErrDisposed, std::string("Cannot ") + operation + ": the session has been disposed");
  return state_;
}

Napi::Value AddonUnderstandingSession::Evaluate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<SessionState> state = State(env, "evaluate");
  ChunkInput chunk = ReadChunk(env, info.Length() > 0 ? info[0] : env.Undefined());
  bool sample = false, return_logits = false;
  Int32Vector ban;
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    if (!info[1].IsObject()) throw MakeError(env, kErrInvalidArgument, "Expected an object for options");
    Napi::Object options = info[1].As<Napi::Object>();
    sample = ReadBool(env, options, "sample", "options");
    return_logits = ReadBool(env, options, "returnLogits", "options");
    ban = ReadIdList(env, options, "ban", "options");
  }
  if (state->busy.exchange(true))
    throw MakeError(env, kErrInvalidArgument, "Cannot evaluate: the session is already evaluating (one call at a time)");
  state->cancel.store(false);  // on the JS thread, before queuing: a cancel() issued after this call is never lost
  return AddonPromiseWorker::Start(
      new EvaluateWorker(env, std::move(state), std::move(chunk), sample, return_logits, std::move(ban)));
}

Napi::Value AddonUnderstandingSession::SetSampling(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::shared_ptr<SessionState>& state = State(env, "set sampling");
  if (info.Length() < 1 || !info[0].IsObject()) throw MakeError(env, kErrInvalidArgument, "Expected a sampling object");
  if (state->busy.load()) throw MakeError(env, kErrInvalidArgument, "Cannot set sampling while the session is evaluating");
  Napi::Object o = info[0].As<Napi::Object>();
  SamplingParams params;
  auto number = [&](const char* key, double fallback) {
    Napi::Value v = o.Get(key);
    if (v.IsUndefined()) return fallback;
    if (!v.IsNumber()) throw MakeError(env, kErrInvalidArgument, std::string("Expected a number for sampling.") + key);
    return v.As<Napi::Number>().DoubleValue();
  };
  params.temperature = static_cast<float>(number("temperature", 0.0));
  const double top_k = number("topK", 0.0);
  if (!(top_k >= 0) || top_k != std::floor(top_k) || top_k > 1e9)
    throw MakeError(env, kErrInvalidArgument, "Expected a non-negative integer for sampling.topK");
  params.top_k = static_cast<int64_t>(top_k);
  params.top_p = static_cast<float>(number("topP", 1.0));
  params.repetition_penalty = static_cast<float>(number("repetitionPenalty", 1.0));
  const double seed = number("seed", 0.0);
  if (!(seed >= 0) || seed != std::floor(seed) || seed > 9007199254740991.0)
    throw MakeError(env, kErrInvalidArgument, "Expected a non-negative safe integer for sampling.seed");
  params.seed = static_cast<uint64_t>(seed);
  Napi::Value bias = o.Get("logitBias");
  if (!bias.IsUndefined()) {
    if (!bias.IsArray()) throw MakeError(env, kErrInvalidArgument, "Expected an array of [id, bias] for sampling.logitBias");
    Napi::Array pairs = bias.As<Napi::Array>();
    for (uint32_t i = 0; i < pairs.Length(); ++i) {
      Napi::Value pair = pairs.Get(i);
      const std::string what = "sampling.logitBias[" + std::to_string(i) + "]";
      if (!pair.IsArray() || pair.As<Napi::Array>().Length() != 2 || !pair.As<Napi::Array>().Get(1u).IsNumber())
        throw MakeError(env, kErrInvalidArgument, "Expected [id, bias] for " + what);
      const int64_t id = ReadInt(env, pair.As<Napi::Array>().Get(0u), what + "[0]", 0, 2147483647.0);
      params.logit_bias.emplace_back(static_cast<int32_t>(id),
                                     static_cast<float>(pair.As<Napi::Array>().Get(1u).As<Napi::Number>().DoubleValue()));
    }
  }
  try {
    state->session->set_sampling(params);
  } catch (const showo2::Error& e) {
    throw MakeError(env, e.code_str(), e.what());
  }
  return env.Undefined();
}

Napi::Value AddonUnderstandingSession::Cancel(const Napi::CallbackInfo& info) {
  if (state_) state_->cancel.store(true);
  return info.Env().Undefined();
}

Napi::Value AddonUnderstandingSession::Truncate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::shared_ptr<SessionState>& state = State(env, "truncate");
  if (state->busy.load()) throw MakeError(env, kErrInvalidArgument, "Cannot truncate while the session is evaluating");
  const int64_t length = ReadInt(env, info.Length() > 0 ? info[0] : env.Undefined(), "length", 0, 1e12);
  try {
    state->session->truncate(length);
  } catch (const showo2::Error& e) {
    throw MakeError(env, e.code_str(), e.what());
  }
  state->length.store(state->session->length());
  return env.Undefined();
}

Napi::Value AddonUnderstandingSession::GetLength(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(State(info.Env(), "read length")->length.load()));
}

Napi::Value AddonUnderstandingSession::GetDisposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), state_ == nullptr);
}

Napi::Value AddonUnderstandingSession::Dispose(const Napi::CallbackInfo& info) {
  if (state_) state_->cancel.store(true);  // a worker in flight stops early; it holds its own reference
  state_.reset();
  return info.Env().Undefined();
}

}  // namespace showo2::binding
