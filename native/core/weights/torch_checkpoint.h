// TorchCheckpoint: a WeightFile over a torch.save zip archive (pytorch_model.bin, Wan2.1_VAE.pth), read without
// running any pickled code (pickle.h) and without copying tensor bytes.
//
// Opening runs the restricted unpickler over data.pkl, finds the state dict, and validates every tensor against its
// storage entry: the dtype is one showo2 reads, the entry "data/<key>" exists, is STORED and holds exactly
// numel x element-size bytes, and the strided extent (storage_offset + sum((size_i - 1) * stride_i)) fits in it.
//
// Which dict is the state dict (torch itself never flattens nested dicts, so neither do we):
//   1. the top-level object, when it is a dict of tensors (the norm: torch.save(model.state_dict()));
//   2. otherwise, when the top level is a dict with exactly one of "state_dict", "model", "module" holding a dict of
//      tensors, that dict (training checkpoints: {"model": ..., "optimizer": ..., "epoch": ...}).
// "A dict of tensors" has string keys, at least one tensor value, and no container values; scalar values (an int
// step counter, None) are skipped. Anything else is ERR_UNSUPPORTED_FORMAT describing what the top level holds.
//
// load() returns a view with the stored size and strides (a saved slice or transpose stays strided; call
// .contiguous() when a dense copy is needed). Storages are shared: tensors with the same storage key (tied weights
// such as embed_tokens / lm_head) get the same Storage and the same bytes. A storage whose bytes sit at a file offset
// aligned to the element size (torch aligns to 64) is borrowed from the mapping; otherwise it is copied once.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "pickle.h"
#include "torch_zip.h"
#include "weight_file.h"

namespace showo2::weights {

class TorchCheckpoint : public WeightFile {
 public:
  // Throws ERR_FILE_NOT_FOUND, ERR_FILE_READ, ERR_CORRUPT_FILE, ERR_UNSAFE_PICKLE, ERR_UNSUPPORTED_DTYPE or
  // ERR_UNSUPPORTED_FORMAT (a legacy pre-1.6 torch file, or a pickle that holds no state dict).
  static std::unique_ptr<TorchCheckpoint> open(const std::string& path);
  static std::unique_ptr<TorchCheckpoint> open(std::shared_ptr<const MappedFile> file);

  const std::string& path() const override { return archive_.path(); }
  std::string format() const override { return "torch"; }
  const std::vector<TensorRecord>& tensors() const override { return records_; }
  const std::map<std::string, std::string>& metadata() const override { return metadata_; }
  Tensor load(const std::string& name) const override;

  const MappedFile& mapping() const { return archive_.file(); }
  // The storage key of a tensor (tied weights share one); ERR_TENSOR_NOT_FOUND.
  const std::string& storage_key(const std::string& name) const;

 private:
  struct Entry {
    std::shared_ptr<const TensorRef> ref;
    const ZipEntry* storage_entry = nullptr;
  };
  explicit TorchCheckpoint(std::shared_ptr<const MappedFile> file) : archive_(std::move(file)) {}
  void read_state_dict();
  void add_tensor(const std::string& name, const std::shared_ptr<const TensorRef>& ref);
  std::shared_ptr<Storage> storage_for(const Entry& entry, size_t element_size) const;

  TorchZipArchive archive_;
  std::vector<TensorRecord> records_;  // sorted by name
  std::unordered_map<std::string, Entry> entries_;
  std::map<std::string, std::string> metadata_;  // always empty: torch files carry no string metadata

  // Storages handed out so far, by key, so that tied tensors share bytes (and a misaligned storage is copied once).
  mutable std::mutex storages_mutex_;
  mutable std::unordered_map<std::string, std::shared_ptr<Storage>> borrowed_;
  mutable std::unordered_map<std::string, std::shared_ptr<Storage>> copied_;
};

// True for a pre-1.6 torch.save file (a bare pickle stream or a tar archive), which this reader does not accept.
bool looks_like_legacy_torch(const MappedFile& file);

// The ERR_UNSUPPORTED_FORMAT message for legacy files: how to re-save them with a current torch.
[[noreturn]] void fail_legacy_torch(const std::string& path);

}  // namespace showo2::weights
