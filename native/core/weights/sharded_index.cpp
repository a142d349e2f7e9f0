#include "sharded_index.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "json.h"
#include "mapped_file.h"

namespace showo2::weights {

namespace {

// A WeightFile that routes each tensor to the shard that holds it.
class ShardedCheckpoint : public WeightFile {
 public:
  ShardedCheckpoint(std::string index_path, std::string format, std::vector<std::unique_ptr<WeightFile>> shards,
                    std::vector<TensorRecord> records, std::unordered_map<std::string, const WeightFile*> owner,
                    std::map<std::string, std::string> metadata)
      : path_(std::move(index_path)),
        format_(std::move(format)),
        shards_(std::move(shards)),
        records_(std::move(records)),
        owner_(std::move(owner)),
        metadata_(std::move(metadata)) {}

  const std::string& path() const override { return path_; }
  std::string format() const override { return format_; }
  const std::vector<TensorRecord>& tensors() const override { return records_; }
  const std::map<std::string, std::string>& metadata() const override { return metadata_; }

  Tensor load(const std::string& name) const override {
    auto it = owner_.find(name);
    if (it == owner_.end()) fail(ErrorCode::TensorNotFound, path_, ": no tensor named '", name, "'");
    return it->second->load(name);
  }

 private:
  std::string path_;
  std::string format_;
  std::vector<std::unique_ptr<WeightFile>> shards_;
  std::vector<TensorRecord> records_;  // sorted by name
  std::unordered_map<std::string, const WeightFile*> owner_;
  std::map<std::string, std::string> metadata_;
};

std::string parent_folder(const std::string& path) {
  size_t slash = path.find_last_of("/\\");
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Index metadata is free-form JSON ("total_size" is a number); scalars are kept as strings, nested values dropped.
std::map<std::string, std::string> scalar_metadata(const JsonValue* metadata) {
  std::map<std::string, std::string> out;
  if (!metadata || !metadata->is_object()) return out;
  for (const auto& [key, value] : metadata->members()) {
    if (value.is_string()) out[key] = value.as_string();
    else if (value.is_int()) out[key] = std::to_string(value.as_int());
    else if (value.is_bool()) out[key] = value.as_bool() ? "true" : "false";
  }
  return out;
}

}  // namespace

std::string resolve_shard_path(const std::string& index_path, const std::string& shard_name) {
  auto reject = [&](const char* why) {
    fail(ErrorCode::CorruptFile, index_path, ": shard path \"", shard_name, "\" ", why,
         " (shards must be files next to the index)");
  };
  if (shard_name.empty()) reject("is empty");
  if (shard_name.find('\0') != std::string::npos) reject("contains a NUL byte");
  if (shard_name[0] == '/' || shard_name[0] == '\\') reject("is absolute");
  if (shard_name.size() >= 2 && shard_name[1] == ':') reject("has a drive letter");
  size_t start = 0;
  while (start <= shard_name.size()) {
    size_t sep = shard_name.find_first_of("/\\", start);
    if (sep == std::string::npos) sep = shard_name.size();
    if (shard_name.compare(start, sep - start, "..") == 0 && sep - start == 2) reject("escapes the index folder");
    start = sep + 1;
  }
  return parent_folder(index_path) + "/" + shard_name;
}

std::unique_ptr<WeightFile> open_sharded_checkpoint(const std::string& index_path, const ShardOpener& open_shard) {
  return open_sharded_checkpoint(*MappedFile::open(index_path), open_shard);
}

std::unique_ptr<WeightFile> open_sharded_checkpoint(const MappedFile& file, const ShardOpener& open_shard) {
  const std::string& index_path = file.path();
  JsonValue index = parse_json(std::string_view(reinterpret_cast<const char*>(file.data()), file.size()),
                               index_path);
  const JsonValue* weight_map = index.is_object() ? index.find("weight_map") : nullptr;
  if (!weight_map || !weight_map->is_object())
    fail(ErrorCode::CorruptFile, index_path, ": a shard index needs a \"weight_map\" object of tensor -> shard file");

  std::vector<std::unique_ptr<WeightFile>> shards;
  std::unordered_map<std::string, WeightFile*> shard_by_name;
  std::unordered_map<std::string, const WeightFile*> owner;
  std::vector<TensorRecord> records;
  std::string format;
  for (const auto& [tensor, shard_v] : weight_map->members()) {
    if (!shard_v.is_string())
      fail(ErrorCode::CorruptFile, index_path, ": weight_map entry for '", tensor, "' must be a file name string");
    const std::string& shard_name = shard_v.as_string();
    auto it = shard_by_name.find(shard_name);
    if (it == shard_by_name.end()) {
      std::unique_ptr<WeightFile> shard;
      try {
        shard = open_shard(resolve_shard_path(index_path, shard_name));
      } catch (const Error& e) {
        if (e.code() == ErrorCode::CorruptFile && std::string(e.what()).rfind(index_path, 0) == 0) throw;
        // Keep the shard's own error and code, and say which index sent us there.
        throw Error(e.code(), std::string(e.what()) + " (shard listed in " + index_path + ")");
      }
      if (format.empty()) format = shard->format();
      if (shard->format() != format)
        fail(ErrorCode::CorruptFile, index_path, ": shard \"", shard_name, "\" is ", shard->format(),
             " but earlier shards are ", format);
      it = shard_by_name.emplace(shard_name, shard.get()).first;
      shards.push_back(std::move(shard));
    }
    WeightFile* shard = it->second;
    if (!shard->contains(tensor))
      fail(ErrorCode::CorruptFile, index_path, ": tensor '", tensor, "' is listed in shard \"", shard_name,
           "\" but ", shard->path(), " does not hold it");
    owner.emplace(tensor, shard);
    records.push_back(shard->record(tensor));
  }
  for (const auto& shard : shards)
    for (const TensorRecord& rec : shard->tensors())
      if (auto o = owner.find(rec.name); o == owner.end() || o->second != shard.get())
        fail(ErrorCode::CorruptFile, index_path, ": shard ", shard->path(), " holds tensor '", rec.name,
             "' that the index does not list for it");
  std::sort(records.begin(), records.end(),
            [](const TensorRecord& a, const TensorRecord& b) { return a.name < b.name; });
  if (format.empty()) {  // an empty weight_map: name the format after the index file
    bool torch_index = index_path.size() >= 15 && index_path.compare(index_path.size() - 15, 15, ".bin.index.json") == 0;
    format = torch_index ? "torch" : "safetensors";
  }
  return std::make_unique<ShardedCheckpoint>(index_path, format, std::move(shards),
                                             std::move(records), std::move(owner),
                                             scalar_metadata(index.find("metadata")));
}

}  // namespace showo2::weights
