// A WeightFile over tensors held in memory, so a model loads through the same binder (WeightBinder: every key
// checked, then uploaded) as from a checkpoint, without writing random weights to disk and mapping them back. Used by
// the random-weight tests and benchmarks (showo2_random_model.h, wan_vae_random_weights.h, qwen2_bench).
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "error.h"
#include "tensor.h"
#include "weights/weight_file.h"

namespace showo2::test {

class InMemoryWeights final : public weights::WeightFile {
 public:
  InMemoryWeights() = default;
  explicit InMemoryWeights(std::map<std::string, Tensor> tensors) {
    for (auto& [name, t] : tensors) add(name, std::move(t));
  }

  // Adds (or replaces) a tensor.
  void add(const std::string& name, Tensor t) {
    weights::TensorRecord r;
    r.name = name;
    r.dtype = t.dtype();
    r.shape = t.shape();
    r.file = path_;
    tensors_[name] = std::move(t);
    records_[name] = r;
    sorted_.clear();
  }
  const std::string& path() const override { return path_; }
  std::string format() const override { return "memory"; }
  const std::vector<weights::TensorRecord>& tensors() const override {
    if (sorted_.empty())
      for (const auto& kv : records_) sorted_.push_back(kv.second);  // std::map: sorted by name, as promised
    return sorted_;
  }
  const std::map<std::string, std::string>& metadata() const override { return metadata_; }
  Tensor load(const std::string& name) const override {
    auto it = tensors_.find(name);
    if (it == tensors_.end()) fail(ErrorCode::TensorNotFound, "no tensor ", name, " in ", path_);
    return it->second;
  }
  const std::map<std::string, Tensor>& all() const { return tensors_; }

 private:
  std::string path_ = "<weights in memory>";
  std::map<std::string, Tensor> tensors_;
  std::map<std::string, weights::TensorRecord> records_;
  mutable std::vector<weights::TensorRecord> sorted_;  // tensors(), built on first use after a change
  std::map<std::string, std::string> metadata_;
};

}  // namespace showo2::test
