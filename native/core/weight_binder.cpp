#include "weight_binder.h"

#include <set>
#include <sstream>

#include "error.h"

namespace showo2 {

void WeightBinder::bind(Tensor* slot, std::string key, Shape stored, Shape used) {
  entries_.push_back({slot, std::move(key), std::move(stored), std::move(used), false});
}

void WeightBinder::bind(Tensor* slot, std::string key, Shape stored) {
  Shape used = stored;
  bind(slot, std::move(key), std::move(stored), std::move(used));
}

void WeightBinder::bind_channels_last(Tensor* slot, std::string key, Shape stored, Shape used) {
  Entry e{slot, std::move(key), std::move(stored), std::move(used), false};
  e.channels_last = true;
  entries_.push_back(std::move(e));
}

void WeightBinder::bind_optional(Tensor* slot, std::string key, Shape stored) {
  Shape used = stored;
  entries_.push_back({slot, std::move(key), std::move(stored), std::move(used), true});
}

void WeightBinder::bind_host(Tensor* slot, std::string key, Shape stored) {
  Shape used = stored;
  entries_.push_back({slot, std::move(key), std::move(stored), std::move(used), false, true});
}

void WeightBinder::ignore_prefix(std::string prefix) { ignored_prefixes_.push_back(std::move(prefix)); }

void WeightBinder::load_all(const weights::WeightFile& file, Backend& backend, const std::string& what,
                            const std::string& config_hint) const {
  std::vector<std::string> missing, misshaped, bad_dtype, unexpected;
  std::set<std::string> expected;
  for (const Entry& e : entries_) {
    expected.insert(e.key);
    if (!file.contains(e.key)) {
      if (!e.optional) missing.push_back(e.key + " " + shape_to_string(e.stored));
      continue;
    }
    const weights::TensorRecord& r = file.record(e.key);
    if (r.shape != e.stored)
      misshaped.push_back(e.key + " (expected " + shape_to_string(e.stored) + ", found " + shape_to_string(r.shape) +
                          ")");
    if (r.dtype != DType::F32 && r.dtype != DType::BF16 && r.dtype != DType::F16)
      bad_dtype.push_back(e.key + " (" + dtype_name(r.dtype) + ")");
  }
  for (const weights::TensorRecord& r : file.tensors()) {
    if (expected.count(r.name)) continue;
    bool ignored = false;
    for (const auto& p : ignored_prefixes_) ignored = ignored || r.name.compare(0, p.size(), p) == 0;
    if (!ignored) unexpected.push_back(r.name + " " + shape_to_string(r.shape));
  }

  if (!missing.empty() || !unexpected.empty() || !misshaped.empty() || !bad_dtype.empty()) {
    std::ostringstream os;
    os << what << ": " << file.path() << " does not match the config (" << config_hint << "):";
    // Every key is listed, even for an entirely wrong file: the list is what tells a user which config field is off.
    auto list = [&os](const char* title, const std::vector<std::string>& keys) {
      if (keys.empty()) return;
      os << "\n  " << title << " (" << keys.size() << "):";
      for (const auto& k : keys) os << "\n    " << k;
    };
    list("missing keys", missing);
    list("unexpected keys", unexpected);
    list("wrongly shaped keys", misshaped);
    list("keys with a non-float dtype (expected F32/BF16/F16)", bad_dtype);
    const ErrorCode code = !missing.empty() || !unexpected.empty() ? ErrorCode::InvalidArgument
                           : !misshaped.empty()                    ? ErrorCode::ShapeMismatch
                                                                   : ErrorCode::UnsupportedDtype;
    throw Error(code, os.str());
  }
  for (const Entry& e : entries_) {
    if (!file.contains(e.key)) continue;  // an absent optional key
    const Tensor host = file.load(e.key).contiguous().reshape(e.used);
    // Uploaded in the shape the forward code uses, so a device backend decides matrix vs vector from that shape
    // (a conv weight [O, C, 1, 1] used as [O, C] is a matrix; a norm scale stored [C, 1, 1, 1] but used as [C] is not).
    if (e.channels_last) {  // rearranged on the host, uploaded dense, viewed back in the used shape
      const Tensor memory = host.permute(channels_last_to_memory_order(host.dim())).contiguous();
      const Tensor loaded = e.host ? memory : backend.upload_weight(memory);
      *e.slot = loaded.permute(memory_order_to_channels_last(loaded.dim()));
      continue;
    }
    *e.slot = e.host ? host : backend.upload_weight(host);
  }
}

}  // namespace showo2
