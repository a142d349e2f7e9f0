// Fuzzes the shard index reader (native/core/weights/sharded_index.h): model.safetensors.index.json and
// pytorch_model.bin.index.json, whose shard names are untrusted paths.
//
// The input is the index; it sits in a virtual folder "index-dir/" that holds the real fixture shards (safetensors
// and torch, read once into memory), so the cross-checks between index and shards run on real files. Contract: a
// WeightFile, or ERR_CORRUPT_FILE / ERR_FILE_NOT_FOUND (a shard that is not there) / the codes of the shard readers.
// Invariants: every path handed to the shard opener stays inside index-dir/ (no absolute path, no ".." component);
// records are sorted and unique, each one comes from a shard and loads.
#include <map>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "weights/mapped_file.h"
#include "weights/sharded_index.h"

using showo2::ErrorCode;
using namespace showo2::weights;

namespace {

const std::string kFolder = "index-dir";

// Shard name -> bytes: the fixture shards under the names their indexes use, plus two single files.
const std::map<std::string, std::vector<uint8_t>>& shards() {
  static const std::map<std::string, std::vector<uint8_t>> files = [] {
    std::map<std::string, std::vector<uint8_t>> m;
    for (const char* name : {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"})
      m[name] = showo2::fuzz::read_fixture(std::string("weights/sharded_safetensors/") + name);
    for (const char* name : {"pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin"})
      m[name] = showo2::fuzz::read_fixture(std::string("weights/sharded_torch/") + name);
    m["tiny.safetensors"] = showo2::fuzz::read_fixture("weights/tiny.safetensors");
    m["tiny_model.bin"] = showo2::fuzz::read_fixture("weights/tiny_model.bin");
    return m;
  }();
  return files;
}

bool has_dotdot_component(const std::string& path) {
  size_t start = 0;
  while (start <= path.size()) {
    size_t sep = path.find_first_of("/\\", start);
    if (sep == std::string::npos) sep = path.size();
    if (sep - start == 2 && path.compare(start, 2, "..") == 0) return true;
    start = sep + 1;
  }
  return false;
}

std::unique_ptr<WeightFile> open_shard(const std::string& path) {
  FUZZ_CHECK(path.rfind(kFolder + "/", 0) == 0);
  FUZZ_CHECK(!has_dotdot_component(path));
  auto it = shards().find(path.substr(kFolder.size() + 1));
  if (it == shards().end()) showo2::fail(ErrorCode::FileNotFound, path, ": no such file");
  return open_weight_file(MappedFile::from_bytes(path, it->second.data(), it->second.size()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  shards();  // read before the first input, not inside one
  std::unique_ptr<WeightFile> file;
  try {
    const auto index = MappedFile::from_bytes(kFolder + "/model.safetensors.index.json", data, size);
    file = open_sharded_checkpoint(*index, open_shard);
  } catch (const showo2::Error& e) {
    showo2::fuzz::expect_code(e, {ErrorCode::CorruptFile, ErrorCode::FileNotFound, ErrorCode::UnsupportedFormat});
    return 0;
  }
  FUZZ_CHECK(file->format() == "safetensors" || file->format() == "torch");
  const std::vector<TensorRecord>& records = file->tensors();
  for (size_t i = 1; i < records.size(); ++i) FUZZ_CHECK(records[i - 1].name < records[i].name);
  for (const TensorRecord& rec : records) {
    FUZZ_CHECK(rec.file.rfind(kFolder + "/", 0) == 0);
    const showo2::Tensor t = file->load(rec.name);
    FUZZ_CHECK(t.dtype() == rec.dtype && t.shape() == rec.shape);
    showo2::fuzz::touch_tensor(t);
  }
  return 0;
}
