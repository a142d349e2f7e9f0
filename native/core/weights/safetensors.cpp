#include "safetensors.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <numeric>

#include "json.h"

#ifdef _WIN32
#include <io.h>
#include <process.h>
#else
#include <unistd.h>
#endif

namespace showo2::weights {

// ---- reader ---------------------------------------------------------------------------------------------------------

std::unique_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) { return open(MappedFile::open(path)); }

std::unique_ptr<SafetensorsFile> SafetensorsFile::open(std::shared_ptr<const MappedFile> file) {
  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile(std::move(file)));
  f->parse_header();
  return f;
}

// Reads a JSON integer that must be >= 0; `what` names the field for the error message.
static uint64_t non_negative_int(const JsonValue& v, const std::string& path, const std::string& tensor,
                                 const char* what) {
  if (!v.is_int() || v.as_int() < 0)
    fail(ErrorCode::CorruptFile, path, ": tensor '", tensor, "': ", what, " must be a non-negative integer (got ",
         v.is_number() ? "a non-integer or out-of-range number" : v.kind_name(), ")");
  return static_cast<uint64_t>(v.as_int());
}

void SafetensorsFile::parse_header() {
  const std::string& path = file_->path();
  if (file_->size() < 8)
    fail(ErrorCode::CorruptFile, path, ": too small to be a safetensors file (", file_->size(), " bytes)");
  uint64_t header_len = file_->u64(0, "header length");
  if (header_len > kSafetensorsMaxHeaderBytes)
    fail(ErrorCode::CorruptFile, path, ": header length ", header_len, " exceeds the ", kSafetensorsMaxHeaderBytes,
         "-byte limit (corrupt file or not safetensors)");
  if (header_len > file_->size() - 8)
    fail(ErrorCode::CorruptFile, path, ": header length ", header_len, " exceeds the file size of ", file_->size(),
         " bytes (truncated file?)");
  const char* header_text = reinterpret_cast<const char*>(file_->span(8, header_len, "header"));
  JsonValue header = parse_json(std::string_view(header_text, header_len), path + " (safetensors header)");
  if (!header.is_object()) fail(ErrorCode::CorruptFile, path, ": the header is a JSON ", header.kind_name(),
                                ", expected an object");

  const uint64_t data_start = 8 + header_len;
  const uint64_t data_size = file_->size() - data_start;

  struct Parsed {
    TensorRecord record;
    Span span;
  };
  std::vector<Parsed> parsed;
  parsed.reserve(header.members().size());
  for (const auto& [name, info] : header.members()) {
    if (name == "__metadata__") {
      if (!info.is_object()) fail(ErrorCode::CorruptFile, path, ": __metadata__ must be an object of strings");
      for (const auto& [key, value] : info.members()) {
        if (!value.is_string())
          fail(ErrorCode::CorruptFile, path, ": __metadata__ value for '", key, "' is not a string (got ",
               value.kind_name(), "); safetensors metadata maps strings to strings");
        metadata_[key] = value.as_string();
      }
      continue;
    }
    if (!info.is_object()) fail(ErrorCode::CorruptFile, path, ": tensor '", name, "': entry must be an object");
    const JsonValue* dtype_v = info.find("dtype");
    const JsonValue* shape_v = info.find("shape");
    const JsonValue* offsets_v = info.find("data_offsets");
    if (!dtype_v || !shape_v || !offsets_v)
      fail(ErrorCode::CorruptFile, path, ": tensor '", name, "': entry needs \"dtype\", \"shape\" and \"data_offsets\"");
    Parsed p;
    p.record.name = name;
    p.record.file = path;
    if (!dtype_v->is_string()) fail(ErrorCode::CorruptFile, path, ": tensor '", name, "': dtype must be a string");
    if (!dtype_from_name(dtype_v->as_string(), &p.record.dtype))
      fail(ErrorCode::UnsupportedDtype, path, ": tensor '", name, "' has dtype \"", dtype_v->as_string(),
           "\", which showo2 does not read (supported: F32 BF16 F16 F64 I64 I32 I16 I8 U8 BOOL)");
    if (!shape_v->is_array()) fail(ErrorCode::CorruptFile, path, ": tensor '", name, "': shape must be an array");
    // numel with overflow checks on every partial product (as shape_numel does): a header can claim any dimensions.
    uint64_t numel = 1;
    bool overflow = false;
    for (const JsonValue& d : shape_v->items()) {
      uint64_t dim = non_negative_int(d, path, name, "every shape dimension");
      p.record.shape.push_back(static_cast<int64_t>(dim));
      if (dim != 0 && numel > static_cast<uint64_t>(INT64_MAX) / dim) overflow = true;
      numel *= dim;
    }
    uint64_t esize = dtype_size(p.record.dtype);
    if (overflow || numel > static_cast<uint64_t>(INT64_MAX) / esize)
      fail(ErrorCode::CorruptFile, path, ": tensor '", name, "': shape ", shape_to_string(p.record.shape),
           " overflows the addressable size");
    uint64_t nbytes = numel * esize;
    if (!offsets_v->is_array() || offsets_v->items().size() != 2)
      fail(ErrorCode::CorruptFile, path, ": tensor '", name, "': data_offsets must be an array [begin, end]");
    uint64_t begin = non_negative_int(offsets_v->items()[0], path, name, "data_offsets[0]");
    uint64_t end = non_negative_int(offsets_v->items()[1], path, name, "data_offsets[1]");
    if (end < begin)
      fail(ErrorCode::CorruptFile, path, ": tensor '", name, "': data_offsets [", begin, ", ", end, "] end before begin");
    if (end > data_size)
      fail(ErrorCode::CorruptFile, path, ": tensor '", name, "': data_offsets [", begin, ", ", end,
           "] run past the end of the file (data section is ", data_size, " bytes; truncated file?)");
    if (end - begin != nbytes)
      fail(ErrorCode::CorruptFile, path, ": tensor '", name, "': data_offsets [", begin, ", ", end, "] hold ",
           end - begin, " bytes but shape ", shape_to_string(p.record.shape), " ", dtype_name(p.record.dtype),
           " needs ", nbytes);
    p.span.begin = data_start + begin;
    p.span.end = data_start + end;
    parsed.push_back(std::move(p));
  }

  // No two tensors may share bytes: sort by start and compare neighbours (empty tensors occupy nothing).
  std::vector<const Parsed*> by_offset;
  for (const Parsed& p : parsed)
    if (p.span.end > p.span.begin) by_offset.push_back(&p);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const Parsed* a, const Parsed* b) { return a->span.begin < b->span.begin; });
  for (size_t i = 1; i < by_offset.size(); ++i)
    if (by_offset[i]->span.begin < by_offset[i - 1]->span.end)
      fail(ErrorCode::CorruptFile, path, ": tensors '", by_offset[i - 1]->record.name, "' and '",
           by_offset[i]->record.name, "' overlap in the data section");

  std::sort(parsed.begin(), parsed.end(),
            [](const Parsed& a, const Parsed& b) { return a.record.name < b.record.name; });
  records_.reserve(parsed.size());
  spans_.reserve(parsed.size());
  for (Parsed& p : parsed) {
    index_.emplace(p.record.name, records_.size());
    records_.push_back(std::move(p.record));
    spans_.push_back(p.span);
  }
}

Tensor SafetensorsFile::load(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) fail(ErrorCode::TensorNotFound, path(), ": no tensor named '", name, "'");
  const TensorRecord& rec = records_[it->second];
  const Span& span = spans_[it->second];
  uint64_t nbytes = span.end - span.begin;
  Shape strides = contiguous_strides(rec.shape);
  // The mapping starts page-aligned, so a file offset aligned to the element size gives an aligned pointer.
  if (span.begin % dtype_size(rec.dtype) == 0)
    return Tensor::view_of(file_->borrow(span.begin, nbytes, "tensor data"), rec.dtype, rec.shape, strides, 0);
  Tensor copy = Tensor::empty(rec.shape, rec.dtype);
  if (nbytes) std::memcpy(copy.mutable_raw(), file_->span(span.begin, nbytes, "tensor data"), nbytes);
  return copy;
}

// ---- writer ---------------------------------------------------------------------------------------------------------

namespace {

// A temporary file next to the destination, removed unless commit() renamed it into place.
class AtomicFile {
 public:
  explicit AtomicFile(const std::string& path) : path_(path) {
    static std::atomic<unsigned> counter{0};
#ifdef _WIN32
    long pid = static_cast<long>(_getpid());
#else
    long pid = static_cast<long>(getpid());
#endif
    tmp_path_ = path + ".tmp-" + std::to_string(pid) + "-" + std::to_string(counter++);
    file_ = std::fopen(tmp_path_.c_str(), "wb");
    if (!file_) fail(ErrorCode::FileRead, path, ": cannot create ", tmp_path_, ": ", std::strerror(errno));
  }
  ~AtomicFile() {
    if (file_) std::fclose(file_);
    if (!committed_) std::remove(tmp_path_.c_str());
  }
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t n) {
    if (n && std::fwrite(data, 1, n, file_) != n)
      fail(ErrorCode::FileRead, path_, ": write failed: ", std::strerror(errno));
  }

  void commit() {
    bool ok = std::fflush(file_) == 0;
#ifndef _WIN32
    ok = ok && fsync(fileno(file_)) == 0;  // the data must be on disk before the rename makes it visible
#endif
    ok = std::fclose(file_) == 0 && ok;
    file_ = nullptr;
    if (!ok) fail(ErrorCode::FileRead, path_, ": write failed: ", std::strerror(errno));
#ifdef _WIN32
    std::remove(path_.c_str());  // rename() does not replace an existing file on Windows
#endif
    if (std::rename(tmp_path_.c_str(), path_.c_str()) != 0)
      fail(ErrorCode::FileRead, path_, ": cannot rename ", tmp_path_, " into place: ", std::strerror(errno));
    committed_ = true;
  }

 private:
  std::string path_;
  std::string tmp_path_;
  std::FILE* file_ = nullptr;
  bool committed_ = false;
};

}  // namespace

void write_safetensors(const std::string& path, const std::vector<SafetensorsEntry>& entries,
                       const std::map<std::string, std::string>& metadata,
                       const std::function<Tensor(size_t index)>& produce) {
  // Data order: decreasing element size, stable. Every tensor then starts at a multiple of its element size.
  std::vector<size_t> order(entries.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return dtype_size(entries[a].dtype) > dtype_size(entries[b].dtype);
  });
  std::vector<uint64_t> begin(entries.size()), end(entries.size());
  uint64_t offset = 0;
  for (size_t i : order) {
    const SafetensorsEntry& e = entries[i];
    if (e.name == "__metadata__")
      fail(ErrorCode::InvalidArgument, path, ": \"__metadata__\" is reserved and cannot be a tensor name");
    begin[i] = offset;
    offset += static_cast<uint64_t>(shape_numel(e.shape)) * dtype_size(e.dtype);
    end[i] = offset;
  }

  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [key, value] : metadata) {
      if (!first) header += ',';
      first = false;
      append_json_string(header, key);
      header += ':';
      append_json_string(header, value);
    }
    header += '}';
  }
  std::unordered_map<std::string, size_t> seen;
  for (size_t i = 0; i < entries.size(); ++i) {
    const SafetensorsEntry& e = entries[i];
    if (!seen.emplace(e.name, i).second)
      fail(ErrorCode::InvalidArgument, path, ": tensor name '", e.name, "' appears twice");
    if (header.size() > 1) header += ',';
    append_json_string(header, e.name);
    header += ":{\"dtype\":\"";
    header += dtype_name(e.dtype);
    header += "\",\"shape\":[";
    for (size_t d = 0; d < e.shape.size(); ++d) header += (d ? "," : "") + std::to_string(e.shape[d]);
    header += "],\"data_offsets\":[" + std::to_string(begin[i]) + "," + std::to_string(end[i]) + "]}";
  }
  header += '}';
  // Pad with spaces so the data section starts 8-byte aligned (the reference writer does the same).
  while ((8 + header.size()) % 8 != 0) header += ' ';

  AtomicFile out(path);
  uint8_t len_bytes[8];
  uint64_t header_len = header.size();
  for (int i = 0; i < 8; ++i) len_bytes[i] = static_cast<uint8_t>(header_len >> (8 * i));
  out.write(len_bytes, 8);
  out.write(header.data(), header.size());
  for (size_t i : order) {
    const SafetensorsEntry& e = entries[i];
    Tensor t = produce(i);
    if (!t.defined()) fail(ErrorCode::InvalidArgument, path, ": tensor '", e.name, "' is undefined");
    if (t.dtype() != e.dtype)
      fail(ErrorCode::UnsupportedDtype, path, ": tensor '", e.name, "' has dtype ", dtype_name(t.dtype()),
           " but its header entry says ", dtype_name(e.dtype));
    if (t.shape() != e.shape)
      fail(ErrorCode::ShapeMismatch, path, ": tensor '", e.name, "' has shape ", t.shape_string(),
           " but its header entry says ", shape_to_string(e.shape));
    Tensor c = t.contiguous();
    out.write(c.raw(), c.nbytes());
  }
  out.commit();
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<SafetensorsEntry> entries;
  entries.reserve(tensors.size());
  for (const auto& [name, t] : tensors) {
    if (!t.defined()) fail(ErrorCode::InvalidArgument, path, ": tensor '", name, "' is undefined");
    entries.push_back({name, t.dtype(), t.shape()});
  }
  write_safetensors(path, entries, metadata, [&](size_t i) { return tensors[i].second; });
}

}  // namespace showo2::weights
