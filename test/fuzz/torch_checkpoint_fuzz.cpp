// Fuzzes the whole single-file checkpoint path a user's file takes: format detection (open_weight_file), then the
// torch.save reader (native/core/weights/torch_checkpoint.h: zip container, restricted unpickler over data.pkl,
// state-dict discovery, every tensor record checked against its storage entry). Seeds are torch files, so most
// inputs take that path; the safetensors and legacy branches of the detection come along.
//
// Contract: open ends in ERR_CORRUPT_FILE / ERR_UNSUPPORTED_FORMAT / ERR_UNSAFE_PICKLE / ERR_UNSUPPORTED_DTYPE, or
// a file whose every tensor loads without any error (open validated everything). Invariants: records sorted and
// unique; a loaded tensor has its record's dtype and shape, and every element it addresses (first and last, or all
// when small) lies inside its storage; tensors that share a storage key (and element size) share bytes.
#include <map>
#include <string>

#include "fuzz_util.h"
#include "weights/mapped_file.h"
#include "weights/torch_checkpoint.h"
#include "weights/weight_file.h"

using showo2::ErrorCode;
using showo2::Tensor;
using namespace showo2::weights;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::unique_ptr<WeightFile> file;
  try {
    file = open_weight_file(MappedFile::from_bytes("fuzz.bin", data, size));
  } catch (const showo2::Error& e) {
    showo2::fuzz::expect_code(e, {ErrorCode::CorruptFile, ErrorCode::UnsupportedFormat, ErrorCode::UnsafePickle,
                                  ErrorCode::UnsupportedDtype});
    return 0;
  }
  const auto* torch = dynamic_cast<const TorchCheckpoint*>(file.get());
  const std::vector<TensorRecord>& records = file->tensors();
  for (size_t i = 1; i < records.size(); ++i) FUZZ_CHECK(records[i - 1].name < records[i].name);

  std::map<std::string, const showo2::Storage*> storage_of_key;
  for (const TensorRecord& rec : records) {
    const Tensor t = file->load(rec.name);
    FUZZ_CHECK(t.dtype() == rec.dtype && t.shape() == rec.shape);
    showo2::fuzz::touch_tensor(t);
    if (torch) {
      // Same key and element size: same alignment, so the same borrowed (or copied-once) storage.
      const std::string key = torch->storage_key(rec.name) + "/" + std::to_string(showo2::dtype_size(rec.dtype));
      const auto [it, inserted] = storage_of_key.emplace(key, t.storage().get());
      FUZZ_CHECK(inserted || it->second == t.storage().get());
    }
  }
  return 0;
}
