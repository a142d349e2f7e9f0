// The raw `WeightFile` class of the addon (wrapped by lib/weights.ts).
//
//   WeightFile.open(path) -> Promise<WeightFile>     opens and validates on a worker thread
//   .path / .format / .tensors / .metadata           in-memory records, cheap to read on the JS thread
//   .read(name) -> Promise<{dtype, shape, data}>     copies the tensor's bytes into a new ArrayBuffer off-thread
//   .close()                                         idempotent; any later use throws ERR_DISPOSED
//
// The open file is held by shared_ptr: a read() in flight keeps its own reference, so close() during a read releases
// the mapping only after that read has finished copying.
#pragma once

#include "AddonNapi.h"

#include <memory>

#include "weights/weight_file.h"

namespace showo2::binding {

class AddonWeightFile : public Napi::ObjectWrap<AddonWeightFile> {
 public:
  static Napi::Function Init(Napi::Env env);
  // Wraps an opened file (called from the open worker; JS code cannot construct one directly).
  static Napi::Object Wrap(Napi::Env env, std::shared_ptr<const weights::WeightFile> file);

  explicit AddonWeightFile(const Napi::CallbackInfo& info);

 private:
  static Napi::Value Open(const Napi::CallbackInfo& info);

  Napi::Value GetPath(const Napi::CallbackInfo& info);
  Napi::Value GetFormat(const Napi::CallbackInfo& info);
  Napi::Value GetTensors(const Napi::CallbackInfo& info);
  Napi::Value GetMetadata(const Napi::CallbackInfo& info);
  Napi::Value GetClosed(const Napi::CallbackInfo& info);
  Napi::Value Read(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  // The open file, or a thrown ERR_DISPOSED naming `operation`.
  const std::shared_ptr<const weights::WeightFile>& OpenFile(Napi::Env env, const char* operation) const;

  std::shared_ptr<const weights::WeightFile> file_;
};

}  // namespace showo2::binding
