#include "mapped_file.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#ifdef _WIN32
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>
#else
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

namespace showo2::weights {

bool read_instead_of_map() {
  static const bool value = [] {
    const char* v = std::getenv("SHOWO2_NO_MMAP");
    return v != nullptr && *v != '\0' && std::strcmp(v, "0") != 0;
  }();
  return value;
}

#ifdef _WIN32

// ---- Windows --------------------------------------------------------------------------------------------------------

static std::wstring widen_utf8(const std::string& s) {
  int n = MultiByteToWideChar(CP_UTF8, 0, s.data(), static_cast<int>(s.size()), nullptr, 0);
  std::wstring w(static_cast<size_t>(n), L'\0');
  if (n > 0) MultiByteToWideChar(CP_UTF8, 0, s.data(), static_cast<int>(s.size()), w.data(), n);
  return w;
}

std::shared_ptr<const MappedFile> MappedFile::open(const std::string& path) {
  std::shared_ptr<MappedFile> file(new MappedFile());
  file->path_ = path;
  std::wstring wpath = widen_utf8(path);
  DWORD attrs = GetFileAttributesW(wpath.c_str());
  if (attrs == INVALID_FILE_ATTRIBUTES) fail(ErrorCode::FileNotFound, path, ": no such file");
  if (attrs & FILE_ATTRIBUTE_DIRECTORY) fail(ErrorCode::FileRead, path, ": is a directory, not a weight file");
  HANDLE fh = CreateFileW(wpath.c_str(), GENERIC_READ, FILE_SHARE_READ, nullptr, OPEN_EXISTING,
                          FILE_ATTRIBUTE_NORMAL, nullptr);
  if (fh == INVALID_HANDLE_VALUE) fail(ErrorCode::FileRead, path, ": cannot open (Windows error ", GetLastError(), ")");
  LARGE_INTEGER size;
  if (!GetFileSizeEx(fh, &size)) {
    CloseHandle(fh);
    fail(ErrorCode::FileRead, path, ": cannot read the file size");
  }
  if (size.QuadPart == 0) {
    CloseHandle(fh);
    fail(ErrorCode::CorruptFile, path, ": file is empty");
  }
  HANDLE mapping = CreateFileMappingW(fh, nullptr, PAGE_READONLY, 0, 0, nullptr);
  CloseHandle(fh);  // the mapping keeps the file open
  if (!mapping) fail(ErrorCode::FileRead, path, ": cannot map (Windows error ", GetLastError(), ")");
  void* view = MapViewOfFile(mapping, FILE_MAP_READ, 0, 0, 0);
  if (!view) {
    CloseHandle(mapping);
    fail(ErrorCode::FileRead, path, ": cannot map (Windows error ", GetLastError(), ")");
  }
  file->data_ = static_cast<const uint8_t*>(view);
  file->size_ = static_cast<uint64_t>(size.QuadPart);
  file->platform_handle_ = mapping;
  return file;
}

MappedFile::~MappedFile() {
  if (owned_) std::free(const_cast<uint8_t*>(data_));
  else if (data_) UnmapViewOfFile(data_);
  if (platform_handle_) CloseHandle(static_cast<HANDLE>(platform_handle_));
}

#else

// ---- POSIX ----------------------------------------------------------------------------------------------------------

std::shared_ptr<const MappedFile> MappedFile::open(const std::string& path) {
  std::shared_ptr<MappedFile> file(new MappedFile());
  file->path_ = path;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT || err == ENOTDIR) fail(ErrorCode::FileNotFound, path, ": no such file");
    fail(ErrorCode::FileRead, path, ": cannot open: ", std::strerror(err));
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    fail(ErrorCode::FileRead, path, ": cannot stat: ", std::strerror(err));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    fail(ErrorCode::FileRead, path, ": is a directory, not a weight file");
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(ErrorCode::FileRead, path, ": not a regular file");
  }
  if (st.st_size == 0) {
    ::close(fd);
    fail(ErrorCode::CorruptFile, path, ": file is empty");
  }
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size > static_cast<uint64_t>(SIZE_MAX)) {
    ::close(fd);
    fail(ErrorCode::FileRead, path, ": file of ", size, " bytes is too large to map on this platform");
  }
  if (read_instead_of_map()) {
    // A private copy: a file truncated or rewritten after this cannot reach the tensors (a mapping would SIGBUS).
    void* buffer = std::malloc(static_cast<size_t>(size));
    if (buffer == nullptr) {
      ::close(fd);
      fail(ErrorCode::OutOfMemory, path, ": cannot allocate ", size, " bytes to read the file into");
    }
    uint64_t done = 0;
    while (done < size) {
      const size_t want = static_cast<size_t>(std::min<uint64_t>(size - done, uint64_t{1} << 30));
      const ssize_t n = ::pread(fd, static_cast<uint8_t*>(buffer) + done, want, static_cast<off_t>(done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const int err = n < 0 ? errno : 0;
        ::close(fd);
        std::free(buffer);
        if (n == 0)
          fail(ErrorCode::CorruptFile, path, ": the file ended after ", done, " of its ", size,
               " bytes (it was truncated while being read)");
        fail(ErrorCode::FileRead, path, ": cannot read: ", std::strerror(err));
      }
      done += static_cast<uint64_t>(n);
    }
    ::close(fd);
    file->data_ = static_cast<const uint8_t*>(buffer);
    file->size_ = size;
    file->owned_ = true;
    return file;
  }
  void* p = mmap(nullptr, static_cast<size_t>(size), PROT_READ, MAP_PRIVATE, fd, 0);
  int err = errno;
  ::close(fd);  // the mapping keeps its own reference to the file
  if (p == MAP_FAILED) fail(ErrorCode::FileRead, path, ": cannot map ", size, " bytes: ", std::strerror(err));
  file->data_ = static_cast<const uint8_t*>(p);
  file->size_ = size;
  return file;
}

MappedFile::~MappedFile() {
  if (owned_) std::free(const_cast<uint8_t*>(data_));
  else if (data_) munmap(const_cast<uint8_t*>(data_), static_cast<size_t>(size_));
}

#endif

// ---- bytes already in memory (all platforms) ------------------------------------------------------------------------

std::shared_ptr<const MappedFile> MappedFile::from_bytes(const std::string& name, const void* data, size_t size) {
  if (size == 0) fail(ErrorCode::CorruptFile, name, ": file is empty");
  std::shared_ptr<MappedFile> file(new MappedFile());
  file->path_ = name;
  // An exact-size heap copy: the caller's buffer may go away, and an out-of-bounds read is visible to ASan.
  void* buffer = std::malloc(size);
  if (buffer == nullptr) fail(ErrorCode::OutOfMemory, name, ": cannot allocate ", size, " bytes for its contents");
  std::memcpy(buffer, data, size);
  file->data_ = static_cast<const uint8_t*>(buffer);
  file->size_ = size;
  file->owned_ = true;
  return file;
}

// ---- bounds-checked access (all platforms) --------------------------------------------------------------------------

const uint8_t* MappedFile::span(uint64_t offset, uint64_t length, const char* what) const {
  if (!contains(offset, length))
    fail(ErrorCode::CorruptFile, path_, ": ", what, " (", length, " bytes at offset ", offset,
         ") lies outside the file of ", size_, " bytes (truncated or corrupt file)");
  return data_ + offset;
}

uint16_t MappedFile::u16(uint64_t offset, const char* what) const { return load_le16(span(offset, 2, what)); }
uint32_t MappedFile::u32(uint64_t offset, const char* what) const { return load_le32(span(offset, 4, what)); }
uint64_t MappedFile::u64(uint64_t offset, const char* what) const { return load_le64(span(offset, 8, what)); }

std::shared_ptr<Storage> MappedFile::borrow(uint64_t offset, uint64_t length, const char* what) const {
  const uint8_t* p = span(offset, length, what);
  return Storage::borrow(p, static_cast<size_t>(length), shared_from_this());
}

}  // namespace showo2::weights
