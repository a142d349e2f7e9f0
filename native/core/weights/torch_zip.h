// The zip container of torch.save (PyTorch >= 1.6, "_use_new_zipfile_serialization"), read from a MappedFile.
//
// torch.save writes an uncompressed (STORED) zip with one folder, named after the file stem or "archive":
//
//   <prefix>/data.pkl          the pickled object (a state dict), see pickle.h
//   <prefix>/data/<key>        the raw little-endian bytes of storage <key>, 64-byte aligned in the file
//   <prefix>/byteorder         "little" (absent in files from torch < 1.10, which are little-endian)
//   <prefix>/version, .format_version, .storage_alignment, .data/serialization_id
//
// Checkpoints above 4 GB (show-o2-7B's 11+ GB .bin) use Zip64: the EOCD fields hold 0xFFFF/0xFFFFFFFF and the real
// values sit in the Zip64 end-of-central-directory record (found through its locator) and in each entry's Zip64
// extra field. Local headers carry zero sizes (torch streams entries with a data descriptor), so sizes always come
// from the central directory; the local header only gives the name and extra lengths that locate the data.
//
// Every offset and size is checked against the file: an entry whose data lies outside the file or runs into the
// central directory, overlapping entries, a local header whose name differs from the central directory's, or
// duplicate names are ERR_CORRUPT_FILE naming the entry. Only STORED entries can be read (ERR_UNSUPPORTED_FORMAT
// names the entry otherwise); torch never compresses.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "mapped_file.h"

namespace showo2::weights {

struct ZipEntry {
  std::string name;               // full name inside the archive, e.g. "archive/data/0"
  uint16_t flags = 0;             // general-purpose flags (bit 0: encrypted)
  uint16_t method = 0;            // 0 = STORED
  uint32_t crc32 = 0;
  uint64_t compressed_size = 0;
  uint64_t size = 0;              // uncompressed size
  uint64_t local_header_offset = 0;
  uint64_t data_offset = 0;       // absolute file offset of the entry's (stored) bytes
};

class TorchZipArchive {
 public:
  // Parses and validates the zip structure of `file`. Throws ERR_CORRUPT_FILE for a damaged or truncated zip and
  // ERR_UNSUPPORTED_FORMAT for a zip that is not a torch.save archive (no "<prefix>/data.pkl"), a multi-disk zip,
  // or a big-endian checkpoint.
  explicit TorchZipArchive(std::shared_ptr<const MappedFile> file);

  const MappedFile& file() const { return *file_; }
  const std::shared_ptr<const MappedFile>& file_ptr() const { return file_; }
  const std::string& path() const { return file_->path(); }
  // The archive's top folder ("archive", or the stem of the file name torch.save was given).
  const std::string& prefix() const { return prefix_; }
  const std::vector<ZipEntry>& entries() const { return entries_; }

  // Looks up "<prefix>/<relative>" (e.g. "data.pkl", "data/0"); nullptr when absent.
  const ZipEntry* find(const std::string& relative) const;

  // The bytes of a STORED entry (bounds were validated at open). ERR_UNSUPPORTED_FORMAT for a compressed or
  // encrypted entry. With verify_crc the CRC-32 is checked too (for small entries such as data.pkl; never for
  // multi-gigabyte tensor data).
  const uint8_t* stored_data(const ZipEntry& entry, bool verify_crc = false) const;

 private:
  void read_central_directory();
  void find_prefix();

  std::shared_ptr<const MappedFile> file_;
  std::vector<ZipEntry> entries_;
  std::unordered_map<std::string, size_t> by_name_;
  std::string prefix_;
};

// True when the file starts with a zip local-file-header signature ("PK\3\4").
bool looks_like_zip(const MappedFile& file);

// CRC-32 (IEEE 802.3, as zip uses).
uint32_t crc32_ieee(const uint8_t* data, size_t size);

}  // namespace showo2::weights
