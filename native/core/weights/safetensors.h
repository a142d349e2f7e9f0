// safetensors: reader and writer for the single-file format (https://github.com/huggingface/safetensors, format
// section of its README). Sharded checkpoints (`model.safetensors.index.json`) are handled by sharded_index.h.
//
// Layout: [u64 little-endian N][N bytes of JSON header][data section]. The header maps each tensor name to
// {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]} with offsets relative to the data section, plus an
// optional "__metadata__" object of string -> string.
//
// Reading validates, before any tensor is handed out: N <= 100 MB and N <= file size - 8; the header is strict JSON
// (json.h); every dtype is known; shapes are non-negative and their byte size does not overflow; end >= begin; end
// lies inside the file; end - begin == numel * dtype size; no two tensors overlap; "__metadata__" maps strings to
// strings. Tensors are zero-copy views into the mapping when their bytes are aligned to the element size (the
// reference writer guarantees this), and copies otherwise.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "mapped_file.h"
#include "weight_file.h"

namespace showo2::weights {

// The reference implementation refuses headers above 100 MB; so do we (a header is ~100 bytes per tensor).
constexpr uint64_t kSafetensorsMaxHeaderBytes = 100u << 20;

class SafetensorsFile : public WeightFile {
 public:
  // Maps and validates `path`. Throws ERR_FILE_NOT_FOUND, ERR_FILE_READ, ERR_CORRUPT_FILE or ERR_UNSUPPORTED_DTYPE.
  static std::unique_ptr<SafetensorsFile> open(const std::string& path);
  static std::unique_ptr<SafetensorsFile> open(std::shared_ptr<const MappedFile> file);

  const std::string& path() const override { return file_->path(); }
  std::string format() const override { return "safetensors"; }
  const std::vector<TensorRecord>& tensors() const override { return records_; }
  const std::map<std::string, std::string>& metadata() const override { return metadata_; }
  Tensor load(const std::string& name) const override;

  const MappedFile& mapping() const { return *file_; }

 private:
  struct Span {
    uint64_t begin = 0;  // absolute file offsets of the tensor's bytes, [begin, end)
    uint64_t end = 0;
  };
  explicit SafetensorsFile(std::shared_ptr<const MappedFile> file) : file_(std::move(file)) {}
  void parse_header();

  std::shared_ptr<const MappedFile> file_;
  std::vector<TensorRecord> records_;                 // sorted by name
  std::unordered_map<std::string, size_t> index_;     // name -> position in records_ / spans_
  std::vector<Span> spans_;
  std::map<std::string, std::string> metadata_;
};

// One tensor of a safetensors file being written: its header entry. The bytes come from a callback so that a
// conversion can stream one tensor at a time instead of holding a whole checkpoint in memory.
struct SafetensorsEntry {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
};

// Writes `entries` to `path` atomically (temporary file in the same folder, then rename). produce(i) returns tensor
// i in any layout; its dtype and shape must match entries[i] (ERR_SHAPE_MISMATCH / ERR_UNSUPPORTED_DTYPE naming it).
// The header lists tensors in the given order; the data section stores them by decreasing element size (stable),
// as the reference writer does, so every tensor starts aligned to its element size without gaps.
void write_safetensors(const std::string& path, const std::vector<SafetensorsEntry>& entries,
                       const std::map<std::string, std::string>& metadata,
                       const std::function<Tensor(size_t index)>& produce);

}  // namespace showo2::weights
