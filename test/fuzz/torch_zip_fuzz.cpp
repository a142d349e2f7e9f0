// Fuzzes the zip container reader of torch.save files (native/core/weights/torch_zip.h): end-of-central-directory
// search, Zip64 records, central directory entries, local headers, extra fields.
//
// Contract: ERR_CORRUPT_FILE / ERR_UNSUPPORTED_FORMAT, or an archive whose entries all lie inside the file, before
// the central directory, without overlapping, with unique names and exactly one <prefix>/data.pkl. Reading an entry
// may only fail with ERR_UNSUPPORTED_FORMAT (compressed or encrypted) or ERR_CORRUPT_FILE (a CRC mismatch).
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "weights/torch_zip.h"

using showo2::ErrorCode;
using namespace showo2::weights;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::unique_ptr<TorchZipArchive> archive;
  try {
    archive = std::make_unique<TorchZipArchive>(MappedFile::from_bytes("fuzz.bin", data, size));
  } catch (const showo2::Error& e) {
    showo2::fuzz::expect_code(e, {ErrorCode::CorruptFile, ErrorCode::UnsupportedFormat});
    return 0;
  }
  const uint64_t file_size = archive->file().size();
  FUZZ_CHECK(archive->find("data.pkl") != nullptr);
  FUZZ_CHECK(archive->prefix().find('/') == std::string::npos);

  std::set<std::string> names;
  std::vector<const ZipEntry*> order;
  for (const ZipEntry& e : archive->entries()) {
    FUZZ_CHECK(names.insert(e.name).second);
    FUZZ_CHECK(e.data_offset >= e.local_header_offset + 30 + e.name.size());
    FUZZ_CHECK(e.data_offset <= file_size && e.compressed_size <= file_size - e.data_offset);
    order.push_back(&e);
    try {
      const uint8_t* bytes = archive->stored_data(e, /*verify_crc=*/true);
      FUZZ_CHECK(bytes >= archive->file().data() && bytes + e.size <= archive->file().data() + file_size);
    } catch (const showo2::Error& err) {
      showo2::fuzz::expect_code(err, {ErrorCode::CorruptFile, ErrorCode::UnsupportedFormat});
    }
  }
  std::sort(order.begin(), order.end(),
            [](const ZipEntry* a, const ZipEntry* b) { return a->local_header_offset < b->local_header_offset; });
  for (size_t i = 1; i < order.size(); ++i)
    FUZZ_CHECK(order[i]->local_header_offset >= order[i - 1]->data_offset + order[i - 1]->compressed_size);
  return 0;
}
