// Weight files: one read-only interface over every checkpoint format Show-o2 ships in.
//
//   * safetensors, single file (`model.safetensors`) or sharded (`*.safetensors.index.json`);
//   * PyTorch checkpoints exactly as published (`pytorch_model.bin`, `Wan2.1_VAE.pth`: the torch zip format),
//     single or sharded (`pytorch_model.bin.index.json`), read through a restricted unpickler (pickle.h) that never
//     executes code.
//
// Opening a file validates everything up front: every header field, offset, shape and dtype is checked against the
// file size before a tensor is handed out, so a corrupt, truncated or malicious file is an ERR_CORRUPT_FILE /
// ERR_UNSAFE_PICKLE error naming the file and the tensor, never a crash or an out-of-bounds read.
// Files are memory-mapped; load() returns a zero-copy view whenever the stored bytes are already contiguous and
// aligned, and a copy otherwise. Tensors that share one storage (tied weights) map to the same bytes.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "../tensor.h"

namespace showo2::weights {

struct TensorRecord {
  std::string name;   // checkpoint key, e.g. "showo.model.layers.0.self_attn.q_proj.weight"
  DType dtype = DType::F32;
  Shape shape;
  std::string file;   // the file that holds the bytes (a shard for sharded checkpoints)
};

class WeightFile {
 public:
  virtual ~WeightFile() = default;

  // The path that was opened (the index file for sharded checkpoints).
  virtual const std::string& path() const = 0;
  // "safetensors" or "torch". Sharded checkpoints report the format of their shards.
  virtual std::string format() const = 0;
  // Every tensor, sorted by name.
  virtual const std::vector<TensorRecord>& tensors() const = 0;
  // Free-form string metadata (safetensors "__metadata__"; empty for torch).
  virtual const std::map<std::string, std::string>& metadata() const = 0;

  // The tensor's bytes as stored (same dtype and shape). Throws ERR_TENSOR_NOT_FOUND naming the key.
  // The result may be strided: a torch checkpoint can hold views (a slice keeps its storage offset, a transpose its
  // strides), which load() keeps as they are; call .contiguous() for a dense copy. Safe to call from several threads
  // at once, and the returned tensor stays valid after the WeightFile is destroyed (it keeps the mapping alive).
  virtual Tensor load(const std::string& name) const = 0;

  bool contains(const std::string& name) const;
  const TensorRecord& record(const std::string& name) const;  // ERR_TENSOR_NOT_FOUND
};

// Opens a checkpoint, choosing the reader by content (zip magic, safetensors header) and by name (*.index.json).
// Throws ERR_FILE_NOT_FOUND, ERR_FILE_READ, ERR_UNSUPPORTED_FORMAT, ERR_CORRUPT_FILE or ERR_UNSAFE_PICKLE.
std::unique_ptr<WeightFile> open_weight_file(const std::string& path);

class MappedFile;
// The same choice for one file that is already mapped or in memory (MappedFile::from_bytes): safetensors or a torch
// zip by content; the file's name only refines the error for bytes that are neither. Not for *.index.json (a shard
// index names other files: open it by path).
std::unique_ptr<WeightFile> open_weight_file(std::shared_ptr<const MappedFile> file);

// Writes a single-file safetensors checkpoint (tensors in the given order, 8-byte aligned data, header padded with
// spaces as the reference implementation does). Any dtype. Writes to a temporary file and renames on success, so a
// failure never leaves a half-written file behind.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

struct ConvertOptions {
  // Cast float tensors to this dtype; F32/BF16/F16. Unset (nullptr) keeps each tensor's stored dtype.
  const DType* dtype = nullptr;
};

// Converts any readable checkpoint (typically a torch .bin/.pth) into one safetensors file. Tied tensors are
// written once per name (safetensors has no aliasing). Returns the number of tensors written.
size_t convert_to_safetensors(const std::string& src, const std::string& dst, const ConvertOptions& options = {});

}  // namespace showo2::weights
