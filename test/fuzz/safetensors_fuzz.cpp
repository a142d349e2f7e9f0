// Fuzzes the safetensors reader (native/core/weights/safetensors.h): the 8-byte length, the JSON header and every
// check of it against the file, then load() of every tensor.
//
// Contract: open() ends in ERR_CORRUPT_FILE / ERR_UNSUPPORTED_DTYPE or a file whose every tensor loads (no error at
// all: open validated everything). Invariants: records are sorted and unique; each loaded tensor has its record's
// dtype and shape, is contiguous, holds numel x element-size bytes, and when it is a view into the file (not a copy)
// lies inside the file after the header; no two non-empty views share bytes.
#include <algorithm>
#include <utility>
#include <vector>

#include "fuzz_util.h"
#include "weights/safetensors.h"

using showo2::ErrorCode;
using showo2::Tensor;
using namespace showo2::weights;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::unique_ptr<SafetensorsFile> file;
  try {
    file = SafetensorsFile::open(MappedFile::from_bytes("fuzz.safetensors", data, size));
  } catch (const showo2::Error& e) {
    showo2::fuzz::expect_code(e, {ErrorCode::CorruptFile, ErrorCode::UnsupportedDtype});
    return 0;
  }
  const MappedFile& mapping = file->mapping();
  const uint8_t* file_begin = mapping.data();
  const uint8_t* file_end = file_begin + mapping.size();
  const uint8_t* data_begin = file_begin + 8 + mapping.u64(0, "header length");

  const std::vector<TensorRecord>& records = file->tensors();
  for (size_t i = 1; i < records.size(); ++i) FUZZ_CHECK(records[i - 1].name < records[i].name);

  std::vector<std::pair<const uint8_t*, const uint8_t*>> views;
  for (const TensorRecord& rec : records) {
    FUZZ_CHECK(rec.name != "__metadata__");
    const Tensor t = file->load(rec.name);
    FUZZ_CHECK(t.dtype() == rec.dtype);
    FUZZ_CHECK(t.shape() == rec.shape);
    FUZZ_CHECK(t.is_contiguous());
    FUZZ_CHECK(t.nbytes() == static_cast<size_t>(showo2::shape_numel(rec.shape)) * showo2::dtype_size(rec.dtype));
    showo2::fuzz::touch_tensor(t);
    if (t.numel() == 0) continue;
    const uint8_t* p = static_cast<const uint8_t*>(t.raw());
    if (t.read_only()) {  // a view into the file
      FUZZ_CHECK(p >= data_begin && p <= file_end && t.nbytes() <= static_cast<size_t>(file_end - p));
      views.emplace_back(p, p + t.nbytes());
    }
  }
  std::sort(views.begin(), views.end());
  for (size_t i = 1; i < views.size(); ++i) FUZZ_CHECK(views[i].first >= views[i - 1].second);
  return 0;
}
