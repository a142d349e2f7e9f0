// Binds model members to checkpoint keys, checks them all at once, then loads them.
//
// Every component registers its members with the checkpoint key, the shape the checkpoint must hold and the shape
// the forward code wants (a view of the same elements, e.g. a 1x1 conv weight [O, C, 1, 1] used as a linear [O, C]).
// load_all() first checks every key (presence, shape, float dtype) and every file key against what was bound, and
// reports all missing, unexpected and wrongly shaped keys in one error (STYLE §2 "the loader reports by name");
// only then does it load. Loads are zero-copy views of the memory-mapped file whenever the bytes allow; each loaded
// tensor then goes through Backend::upload_weight once (a device backend keeps its own converted copy; the CPU
// backend uses the host tensor as is), unless it was bound with bind_host (a table the model code reads on the host,
// e.g. the position table that is resized there).
#pragma once

#include <string>
#include <vector>

#include "backend.h"
#include "tensor.h"
#include "weights/weight_file.h"

namespace showo2 {

class WeightBinder {
 public:
  // A required key.
  void bind(Tensor* slot, std::string key, Shape stored, Shape used);
  void bind(Tensor* slot, std::string key, Shape stored);
  // A required key kept channels-last (Tensor::is_channels_last): a conv weight used as [O, C, k...] whose memory is
  // [O, k..., C], what conv3d_fused reads fastest next to channels-last activations. Rearranged once at load.
  void bind_channels_last(Tensor* slot, std::string key, Shape stored, Shape used);
  // A key that may be absent (the slot then stays undefined), e.g. a tied lm_head stored or not.
  void bind_optional(Tensor* slot, std::string key, Shape stored);
  // A required key whose tensor stays on the host (never uploaded).
  void bind_host(Tensor* slot, std::string key, Shape stored);
  // Keys starting with `prefix` are not reported as unexpected (parts of a checkpoint this model does not use).
  void ignore_prefix(std::string prefix);

  // Checks, then loads. Error code: ERR_INVALID_ARGUMENT when keys are missing or unexpected, else
  // ERR_SHAPE_MISMATCH, else ERR_UNSUPPORTED_DTYPE. `what` names the model ("Showo2", "WanVae") and `config_hint`
  // says which config fields decide the expected keys. Every slot not bound with bind_host receives
  // backend.upload_weight(host tensor) (the CPU backend returns the host tensor itself).
  void load_all(const weights::WeightFile& file, Backend& backend, const std::string& what,
                const std::string& config_hint) const;

  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    Tensor* slot;
    std::string key;
    Shape stored, used;
    bool optional;
    bool host = false;           // bind_host: never uploaded
    bool channels_last = false;  // bind_channels_last
  };
  std::vector<Entry> entries_;
  std::vector<std::string> ignored_prefixes_;
};

}  // namespace showo2
