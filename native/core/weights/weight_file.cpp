#include "weight_file.h"

#include <algorithm>

#include "mapped_file.h"
#include "safetensors.h"
#include "sharded_index.h"
#include "torch_checkpoint.h"
#include "torch_zip.h"

namespace showo2::weights {

// ---- WeightFile lookups (tensors() is sorted by name) -----------------------------------------------------------------

static const TensorRecord* find_record(const std::vector<TensorRecord>& records, const std::string& name) {
  auto it = std::lower_bound(records.begin(), records.end(), name,
                             [](const TensorRecord& r, const std::string& n) { return r.name < n; });
  return it != records.end() && it->name == name ? &*it : nullptr;
}

bool WeightFile::contains(const std::string& name) const { return find_record(tensors(), name) != nullptr; }

const TensorRecord& WeightFile::record(const std::string& name) const {
  const TensorRecord* r = find_record(tensors(), name);
  if (!r) fail(ErrorCode::TensorNotFound, path(), ": no tensor named '", name, "'");
  return *r;
}

// ---- opening ----------------------------------------------------------------------------------------------------------

static bool ends_with(const std::string& s, const char* suffix) {
  size_t n = std::char_traits<char>::length(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

// One file (not an index): the content decides, the extension only refines the error for unrecognised bytes.
std::unique_ptr<WeightFile> open_weight_file(std::shared_ptr<const MappedFile> file) {
  const std::string path = file->path();  // a copy: `file` moves into the reader
  if (looks_like_zip(*file)) return TorchCheckpoint::open(std::move(file));
  if (looks_like_legacy_torch(*file)) fail_legacy_torch(path);
  // safetensors: an 8-byte header length, then a JSON object.
  bool safetensors_content = file->size() >= 9 && file->data()[8] == '{';
  if (safetensors_content || ends_with(path, ".safetensors")) return SafetensorsFile::open(std::move(file));
  if (ends_with(path, ".bin") || ends_with(path, ".pth") || ends_with(path, ".pt") || ends_with(path, ".ckpt"))
    fail(ErrorCode::CorruptFile, path, ": not a torch.save checkpoint (no zip signature at the start)");
  fail(ErrorCode::UnsupportedFormat, path,
       ": unrecognised weight file format (expected safetensors, a torch.save zip, or a *.index.json shard index)");
}

static std::unique_ptr<WeightFile> open_single_file(const std::string& path) {
  return open_weight_file(MappedFile::open(path));
}

std::unique_ptr<WeightFile> open_weight_file(const std::string& path) {
  if (ends_with(path, ".index.json")) return open_sharded_checkpoint(path, open_single_file);
  return open_single_file(path);
}

// ---- conversion -------------------------------------------------------------------------------------------------------

size_t convert_to_safetensors(const std::string& src, const std::string& dst, const ConvertOptions& options) {
  if (options.dtype && !is_float_dtype(*options.dtype))
    fail(ErrorCode::InvalidArgument, "convert_to_safetensors: dtype must be F32, BF16 or F16, got ",
         dtype_name(*options.dtype));
  std::unique_ptr<WeightFile> in = open_weight_file(src);
  const std::vector<TensorRecord>& records = in->tensors();
  auto target_dtype = [&](DType stored) { return options.dtype && is_float_dtype(stored) ? *options.dtype : stored; };

  std::vector<SafetensorsEntry> entries;
  entries.reserve(records.size());
  for (const TensorRecord& r : records) entries.push_back({r.name, target_dtype(r.dtype), r.shape});
  std::map<std::string, std::string> metadata = in->metadata();
  metadata.erase("total_size");  // a shard index's byte count; it does not describe the converted file
  // transformers refuses safetensors files without a "format" entry; "pt" is what torch-saved weights declare.
  metadata.emplace("format", "pt");

  // One tensor at a time: views into the source mapping, cast only when asked.
  write_safetensors(dst, entries, metadata, [&](size_t i) {
    Tensor t = in->load(records[i].name);
    return t.dtype() == entries[i].dtype ? t : t.to(entries[i].dtype);
  });
  return records.size();
}

}  // namespace showo2::weights
