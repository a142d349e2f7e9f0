// MappedFile: a whole file mapped read-only into memory, with bounds-checked access.
//
// Every weight reader works on a MappedFile so that a multi-gigabyte checkpoint costs no copies: tensors are
// Storage::borrow views into the mapping, and each view holds a shared_ptr to the MappedFile, so the mapping lives
// as long as any tensor still points into it (the WeightFile itself may be closed first).
//
// All reads that depend on values found in the file go through span()/u16()/u32()/u64(), which throw
// ERR_CORRUPT_FILE naming the file instead of reading out of bounds. POSIX (Linux, macOS) uses mmap; the Windows
// branch uses CreateFileMapping/MapViewOfFile behind the same interface.
//
// A mapped file that another process truncates while it is mapped makes the next access to a vanished page raise
// SIGBUS, which kills the process (docs/RELIABILITY.md). With the environment variable SHOWO2_NO_MMAP=1 (POSIX) the
// file is read into private memory instead: it costs the file's size in RAM that the OS cannot page back to the file,
// and a file truncated while it is being read is an ERR_CORRUPT_FILE; afterwards the file can change freely.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "../tensor.h"

namespace showo2::weights {

// True when SHOWO2_NO_MMAP is set to a value other than "" or "0" (read once per process).
bool read_instead_of_map();

class MappedFile : public std::enable_shared_from_this<MappedFile> {
 public:
  // Maps `path` read-only. Throws ERR_FILE_NOT_FOUND (missing), ERR_FILE_READ (a directory, no permission, or the
  // OS refused to map it) or ERR_CORRUPT_FILE (an empty file: no weight format is empty).
  static std::shared_ptr<const MappedFile> open(const std::string& path);
  // A private copy of `size` bytes already in memory, read like a file called `name` (which error messages show).
  // For callers that hold the bytes rather than a path: the fuzz harnesses (test/fuzz/) and tests. An empty span is
  // ERR_CORRUPT_FILE, as an empty file is.
  static std::shared_ptr<const MappedFile> from_bytes(const std::string& name, const void* data, size_t size);

  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::string& path() const { return path_; }
  uint64_t size() const { return size_; }
  const uint8_t* data() const { return data_; }

  // True when [offset, offset + length) lies inside the file (overflow-safe).
  bool contains(uint64_t offset, uint64_t length) const { return offset <= size_ && length <= size_ - offset; }

  // Pointer to [offset, offset + length); throws ERR_CORRUPT_FILE "<path>: <what> ... lies outside the file".
  const uint8_t* span(uint64_t offset, uint64_t length, const char* what) const;

  // Little-endian integers at `offset` (bounds-checked like span()).
  uint16_t u16(uint64_t offset, const char* what) const;
  uint32_t u32(uint64_t offset, const char* what) const;
  uint64_t u64(uint64_t offset, const char* what) const;

  // A read-only Storage over [offset, offset + length) that keeps this mapping alive.
  std::shared_ptr<Storage> borrow(uint64_t offset, uint64_t length, const char* what) const;

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  [[maybe_unused]] void* platform_handle_ = nullptr;  // Windows: the file-mapping handle; unused on POSIX
  bool owned_ = false;               // SHOWO2_NO_MMAP or from_bytes: data_ is a malloc'd copy, not a mapping
};

// Little-endian decoding from raw bytes already known to be in bounds (callers check with span()).
inline uint16_t load_le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
inline uint32_t load_le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}
inline uint64_t load_le64(const uint8_t* p) {
  return static_cast<uint64_t>(load_le32(p)) | (static_cast<uint64_t>(load_le32(p + 4)) << 32);
}

}  // namespace showo2::weights
