// The base of every asynchronous addon call: a Napi::AsyncWorker that settles a Promise.
//
// Run() executes on a libuv pool thread and must not touch JS; it throws showo2::Error (or anything else) on
// failure. Result() runs back on the JS thread and builds the resolved value. Failures reject the promise with an
// Error whose `code` is the core's error code (see AddonErrors.h), so the event loop never blocks on file I/O or
// model work and a failure never aborts the process.
#pragma once

#include "AddonNapi.h"

#include <string>

#include "AddonErrors.h"

namespace showo2::binding {

class AddonPromiseWorker : public Napi::AsyncWorker {
 public:
  // Queues the worker and returns its promise. The worker deletes itself after settling (AsyncWorker's default).
  static Napi::Promise Start(AddonPromiseWorker* worker) {
    Napi::Promise promise = worker->deferred_.Promise();
    worker->Queue();
    return promise;
  }

 protected:
  AddonPromiseWorker(Napi::Env env, const char* resource_name)
      : Napi::AsyncWorker(env, resource_name), deferred_(Napi::Promise::Deferred::New(env)) {}

  virtual void Run() = 0;                         // worker thread
  virtual Napi::Value Result(Napi::Env env) = 0;  // JS thread, only after Run() succeeded

 private:
  void Execute() final {
    try {
      Run();
    } catch (...) {
      std::string message;
      DescribeCurrentException(&code_, &message);
      SetError(message);
    }
  }

  void OnOK() final {
    Napi::Env env = Env();
    try {
      deferred_.Resolve(Result(env));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    } catch (...) {
      std::string code, message;
      DescribeCurrentException(&code, &message);
      deferred_.Reject(MakeError(env, code, message).Value());
    }
  }

  void OnError(const Napi::Error& error) final { deferred_.Reject(MakeError(Env(), code_, error.Message()).Value()); }

  Napi::Promise::Deferred deferred_;
  std::string code_ = kErrInternal;
};

}  // namespace showo2::binding
