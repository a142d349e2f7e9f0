#include "torch_zip.h"

#include <algorithm>
#include <cstring>

namespace showo2::weights {

namespace {

// Record signatures and fixed sizes from the zip specification (PKWARE APPNOTE.TXT, sections 4.3.7-4.3.16).
constexpr uint32_t kLocalHeaderSig = 0x04034b50;
constexpr uint32_t kCentralHeaderSig = 0x02014b50;
constexpr uint32_t kEocdSig = 0x06054b50;
constexpr uint32_t kZip64EocdSig = 0x06064b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr uint64_t kLocalHeaderSize = 30;
constexpr uint64_t kCentralHeaderSize = 46;
constexpr uint64_t kEocdSize = 22;
constexpr uint64_t kZip64EocdSize = 56;
constexpr uint64_t kZip64LocatorSize = 20;
constexpr uint64_t kMaxCommentSize = 0xffff;
constexpr uint16_t kZip64ExtraId = 0x0001;

bool add_overflows(uint64_t a, uint64_t b, uint64_t* sum) { return __builtin_add_overflow(a, b, sum); }

}  // namespace

bool looks_like_zip(const MappedFile& file) {
  return file.size() >= 4 && load_le32(file.data()) == kLocalHeaderSig;
}

uint32_t crc32_ieee(const uint8_t* data, size_t size) {
  static const auto table = [] {
    std::vector<uint32_t> t(256);
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t crc = 0xffffffffu;
  for (size_t i = 0; i < size; ++i) crc = table[(crc ^ data[i]) & 0xff] ^ (crc >> 8);
  return crc ^ 0xffffffffu;
}

TorchZipArchive::TorchZipArchive(std::shared_ptr<const MappedFile> file) : file_(std::move(file)) {
  read_central_directory();
  find_prefix();
}

void TorchZipArchive::read_central_directory() {
  const MappedFile& f = *file_;
  const std::string& path = f.path();
  if (f.size() < kEocdSize) fail(ErrorCode::CorruptFile, path, ": too small to be a zip archive (", f.size(), " bytes)");

  // The end-of-central-directory record is the last 22 bytes plus a comment of up to 64 KiB. Search backwards for
  // a signature whose comment reaches exactly to the end of the file; failing that, accept one followed by trailing
  // bytes (miniz, which torch uses, tolerates them too). The central directory checks below catch a false match.
  uint64_t eocd = UINT64_MAX;
  uint64_t lowest = f.size() - kEocdSize > kMaxCommentSize ? f.size() - kEocdSize - kMaxCommentSize : 0;
  for (int pass = 0; pass < 2 && eocd == UINT64_MAX; ++pass) {
    for (uint64_t pos = f.size() - kEocdSize + 1; pos-- > lowest;) {
      uint64_t record_end = pos + kEocdSize + load_le16(f.data() + pos + 20);
      if (load_le32(f.data() + pos) == kEocdSig && (pass == 0 ? record_end == f.size() : record_end <= f.size())) {
        eocd = pos;
        break;
      }
    }
  }
  if (eocd == UINT64_MAX)
    fail(ErrorCode::CorruptFile, path, ": no zip end-of-central-directory record (truncated or damaged file)");

  uint64_t disk = f.u16(eocd + 4, "EOCD");
  uint64_t cd_disk = f.u16(eocd + 6, "EOCD");
  uint64_t count_on_disk = f.u16(eocd + 8, "EOCD");
  uint64_t count = f.u16(eocd + 10, "EOCD");
  uint64_t cd_size = f.u32(eocd + 12, "EOCD");
  uint64_t cd_offset = f.u32(eocd + 16, "EOCD");
  uint64_t cd_limit = eocd;  // the central directory must end before the record(s) that describe it

  bool has_locator = eocd >= kZip64LocatorSize && f.u32(eocd - kZip64LocatorSize, "Zip64 locator") == kZip64LocatorSig;
  bool needs_zip64 = count == 0xffff || count_on_disk == 0xffff || cd_size == 0xffffffff || cd_offset == 0xffffffff;
  if (has_locator) {
    uint64_t locator = eocd - kZip64LocatorSize;
    uint64_t record = f.u64(locator + 8, "Zip64 locator");
    if (f.u32(locator + 16, "Zip64 locator") > 1)
      fail(ErrorCode::UnsupportedFormat, path, ": multi-disk zip archives are not supported");
    uint64_t record_end;
    if (record > locator || locator - record < kZip64EocdSize)
      fail(ErrorCode::CorruptFile, path, ": Zip64 end-of-central-directory offset ", record,
           " is outside the file's tail");
    if (f.u32(record, "Zip64 EOCD") != kZip64EocdSig)
      fail(ErrorCode::CorruptFile, path, ": no Zip64 end-of-central-directory record at offset ", record);
    if (add_overflows(record + 12, f.u64(record + 4, "Zip64 EOCD"), &record_end) || record_end > locator)
      fail(ErrorCode::CorruptFile, path, ": Zip64 end-of-central-directory record runs past its locator");
    disk = f.u32(record + 16, "Zip64 EOCD");
    cd_disk = f.u32(record + 20, "Zip64 EOCD");
    count_on_disk = f.u64(record + 24, "Zip64 EOCD");
    count = f.u64(record + 32, "Zip64 EOCD");
    cd_size = f.u64(record + 40, "Zip64 EOCD");
    cd_offset = f.u64(record + 48, "Zip64 EOCD");
    cd_limit = record;
  } else if (needs_zip64) {
    fail(ErrorCode::CorruptFile, path, ": the end-of-central-directory record needs Zip64 but no Zip64 locator precedes it");
  }
  if (disk != 0 || cd_disk != 0 || count_on_disk != count)
    fail(ErrorCode::UnsupportedFormat, path, ": multi-disk zip archives are not supported");
  uint64_t cd_end;
  if (add_overflows(cd_offset, cd_size, &cd_end) || cd_end > cd_limit)
    fail(ErrorCode::CorruptFile, path, ": central directory (", cd_size, " bytes at offset ", cd_offset,
         ") lies outside the file");
  if (count > cd_size / kCentralHeaderSize)
    fail(ErrorCode::CorruptFile, path, ": ", count, " entries cannot fit in a central directory of ", cd_size, " bytes");

  entries_.reserve(static_cast<size_t>(count));
  uint64_t pos = cd_offset;
  for (uint64_t i = 0; i < count; ++i) {
    if (cd_end - pos < kCentralHeaderSize || f.u32(pos, "central directory") != kCentralHeaderSig)
      fail(ErrorCode::CorruptFile, path, ": central directory entry ", i, " at offset ", pos, " is damaged");
    ZipEntry e;
    e.flags = f.u16(pos + 8, "central directory");
    e.method = f.u16(pos + 10, "central directory");
    e.crc32 = f.u32(pos + 16, "central directory");
    e.compressed_size = f.u32(pos + 20, "central directory");
    e.size = f.u32(pos + 24, "central directory");
    uint64_t name_len = f.u16(pos + 28, "central directory");
    uint64_t extra_len = f.u16(pos + 30, "central directory");
    uint64_t comment_len = f.u16(pos + 32, "central directory");
    uint64_t disk_start = f.u16(pos + 34, "central directory");
    e.local_header_offset = f.u32(pos + 42, "central directory");
    uint64_t entry_len = kCentralHeaderSize + name_len + extra_len + comment_len;
    if (cd_end - pos < entry_len)
      fail(ErrorCode::CorruptFile, path, ": central directory entry ", i, " runs past the central directory");
    e.name.assign(reinterpret_cast<const char*>(f.data() + pos + kCentralHeaderSize), name_len);

    // Zip64 extra field: 8-byte values for exactly those fields that hold 0xFFFFFFFF, in the order uncompressed
    // size, compressed size, local header offset (then a 4-byte disk number when the 16-bit one is 0xFFFF).
    uint64_t x = pos + kCentralHeaderSize + name_len, x_end = x + extra_len;
    while (x_end - x >= 4) {
      uint16_t id = f.u16(x, "extra field");
      uint64_t len = f.u16(x + 2, "extra field");
      if (x_end - x - 4 < len)
        fail(ErrorCode::CorruptFile, path, ": entry '", e.name, "' has a damaged extra field");
      if (id == kZip64ExtraId) {
        uint64_t p = x + 4, p_end = p + len;
        auto take64 = [&](uint64_t* field) {
          if (p_end - p < 8) fail(ErrorCode::CorruptFile, path, ": entry '", e.name, "' has a short Zip64 extra field");
          *field = f.u64(p, "Zip64 extra field");
          p += 8;
        };
        if (e.size == 0xffffffff) take64(&e.size);
        if (e.compressed_size == 0xffffffff) take64(&e.compressed_size);
        if (e.local_header_offset == 0xffffffff) take64(&e.local_header_offset);
        if (disk_start == 0xffff) {
          if (p_end - p < 4) fail(ErrorCode::CorruptFile, path, ": entry '", e.name, "' has a short Zip64 extra field");
          disk_start = f.u32(p, "Zip64 extra field");
        }
      }
      x += 4 + len;
    }
    if (e.size == 0xffffffff || e.compressed_size == 0xffffffff || e.local_header_offset == 0xffffffff)
      fail(ErrorCode::CorruptFile, path, ": entry '", e.name, "' needs a Zip64 extra field but has none");
    if (disk_start != 0) fail(ErrorCode::UnsupportedFormat, path, ": multi-disk zip archives are not supported");

    // The local header repeats the name; its own extra field (torch pads it for 64-byte data alignment) decides
    // where the data starts.
    uint64_t lh = e.local_header_offset;
    uint64_t lh_fixed_end;
    if (add_overflows(lh, kLocalHeaderSize, &lh_fixed_end) || lh_fixed_end > cd_offset)
      fail(ErrorCode::CorruptFile, path, ": entry '", e.name, "' has its local header at offset ", lh,
           ", outside the file's data area");
    if (f.u32(lh, "local header") != kLocalHeaderSig)
      fail(ErrorCode::CorruptFile, path, ": entry '", e.name, "' has no local header at offset ", lh);
    uint64_t lh_name_len = f.u16(lh + 26, "local header");
    uint64_t lh_extra_len = f.u16(lh + 28, "local header");
    e.data_offset = lh_fixed_end + lh_name_len + lh_extra_len;
    if (lh_name_len != name_len || e.data_offset > cd_offset ||
        std::memcmp(f.data() + lh_fixed_end, e.name.data(), name_len) != 0)
      fail(ErrorCode::CorruptFile, path, ": entry '", e.name, "': local header name does not match the central directory");
    uint64_t data_end;
    if (add_overflows(e.data_offset, e.compressed_size, &data_end) || data_end > f.size())
      fail(ErrorCode::CorruptFile, path, ": entry '", e.name, "' (", e.compressed_size, " bytes at offset ",
           e.data_offset, ") points outside the file of ", f.size(), " bytes (truncated file?)");
    if (data_end > cd_offset)
      fail(ErrorCode::CorruptFile, path, ": entry '", e.name, "' (", e.compressed_size, " bytes at offset ",
           e.data_offset, ") overlaps the central directory at offset ", cd_offset);
    if (e.method == 0 && e.compressed_size != e.size)
      fail(ErrorCode::CorruptFile, path, ": stored entry '", e.name, "' has different compressed (",
           e.compressed_size, ") and uncompressed (", e.size, ") sizes");
    if (!by_name_.emplace(e.name, entries_.size()).second)
      fail(ErrorCode::CorruptFile, path, ": entry '", e.name, "' appears twice in the central directory");
    entries_.push_back(std::move(e));
    pos += entry_len;
  }
  if (pos != cd_end)
    fail(ErrorCode::CorruptFile, path, ": central directory holds ", cd_end - pos, " bytes after its last entry");

  // Entries (local header through data) must not share bytes: a hostile archive could otherwise alias one tensor's
  // data as another's header.
  std::vector<const ZipEntry*> order;
  for (const ZipEntry& e : entries_) order.push_back(&e);
  std::sort(order.begin(), order.end(),
            [](const ZipEntry* a, const ZipEntry* b) { return a->local_header_offset < b->local_header_offset; });
  for (size_t i = 1; i < order.size(); ++i)
    if (order[i]->local_header_offset < order[i - 1]->data_offset + order[i - 1]->compressed_size)
      fail(ErrorCode::CorruptFile, path, ": entries '", order[i - 1]->name, "' and '", order[i]->name, "' overlap");
}

void TorchZipArchive::find_prefix() {
  const std::string suffix = "/data.pkl";
  std::vector<std::string> candidates;
  for (const ZipEntry& e : entries_) {
    if (e.name.size() > suffix.size() && e.name.compare(e.name.size() - suffix.size(), suffix.size(), suffix) == 0 &&
        e.name.find('/') == e.name.size() - suffix.size())
      candidates.push_back(e.name.substr(0, e.name.size() - suffix.size()));
  }
  if (candidates.empty())
    fail(ErrorCode::UnsupportedFormat, path(), ": zip archive without a <folder>/data.pkl entry: not a torch.save checkpoint");
  if (candidates.size() > 1)
    fail(ErrorCode::CorruptFile, path(), ": zip archive has several data.pkl entries ('", candidates[0], "/data.pkl', '",
         candidates[1], "/data.pkl')");
  prefix_ = candidates[0];

  // Storages are raw bytes in the writer's byte order. Files without the record predate it and are little-endian.
  if (const ZipEntry* bo = find("byteorder")) {
    const uint8_t* p = stored_data(*bo);
    std::string order(reinterpret_cast<const char*>(p), static_cast<size_t>(std::min<uint64_t>(bo->size, 16)));
    if (order != "little")
      fail(ErrorCode::UnsupportedFormat, path(), ": checkpoint byte order is '", order,
           "'; only little-endian checkpoints are supported");
  }
}

const ZipEntry* TorchZipArchive::find(const std::string& relative) const {
  auto it = by_name_.find(prefix_ + "/" + relative);
  return it == by_name_.end() ? nullptr : &entries_[it->second];
}

const uint8_t* TorchZipArchive::stored_data(const ZipEntry& entry, bool verify_crc) const {
  if (entry.flags & 1)
    fail(ErrorCode::UnsupportedFormat, path(), ": entry '", entry.name, "' is encrypted");
  if (entry.method != 0)
    fail(ErrorCode::UnsupportedFormat, path(), ": entry '", entry.name, "' uses compression method ", entry.method,
         "; torch.save stores entries uncompressed (method 0): re-save the checkpoint with torch.save");
  const uint8_t* p = file_->span(entry.data_offset, entry.size, "zip entry");
  if (verify_crc && crc32_ieee(p, static_cast<size_t>(entry.size)) != entry.crc32)
    fail(ErrorCode::CorruptFile, path(), ": entry '", entry.name, "' fails its CRC-32 check (damaged file)");
  return p;
}

}  // namespace showo2::weights
