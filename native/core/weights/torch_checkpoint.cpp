#include "torch_checkpoint.h"

#include <algorithm>
#include <cstring>

namespace showo2::weights {

bool looks_like_legacy_torch(const MappedFile& file) {
  const uint8_t* p = file.data();
  // The legacy format starts with the pickled magic number 0x1950a86a20f9469cfc6c: PROTO 2, LONG1 of 10 bytes.
  static const uint8_t kLegacyPickle[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8};
  if (file.size() >= sizeof(kLegacyPickle) && std::memcmp(p, kLegacyPickle, sizeof(kLegacyPickle)) == 0) return true;
  // The even older tar format ("ustar" magic at offset 257).
  return file.size() >= 262 && std::memcmp(p + 257, "ustar", 5) == 0;
}

void fail_legacy_torch(const std::string& path) {
  fail(ErrorCode::UnsupportedFormat, path,
       ": legacy (pre-1.6) torch.save format, which showo2 does not read. Re-save it with a current torch: "
       "python -c \"import torch; torch.save(torch.load('in.bin', weights_only=True), 'out.bin')\"");
}

std::unique_ptr<TorchCheckpoint> TorchCheckpoint::open(const std::string& path) { return open(MappedFile::open(path)); }

std::unique_ptr<TorchCheckpoint> TorchCheckpoint::open(std::shared_ptr<const MappedFile> file) {
  if (!looks_like_zip(*file)) {
    if (looks_like_legacy_torch(*file)) fail_legacy_torch(file->path());
    fail(ErrorCode::CorruptFile, file->path(), ": not a torch.save checkpoint (no zip signature at the start)");
  }
  std::unique_ptr<TorchCheckpoint> ckpt(new TorchCheckpoint(std::move(file)));
  ckpt->read_state_dict();
  return ckpt;
}

namespace {

bool is_container(const PickleValue& v) {
  using K = PickleValue::Kind;
  return v.kind == K::Dict || v.kind == K::List || v.kind == K::Tuple;
}

// A dict of tensors: string keys, at least one tensor, no container values (see torch_checkpoint.h).
bool is_tensor_dict(const PickleValue& v) {
  if (v.kind != PickleValue::Kind::Dict) return false;
  bool any_tensor = false;
  for (const auto& [key, value] : v.dict) {
    if (key->kind != PickleValue::Kind::String || is_container(*value)) return false;
    any_tensor = any_tensor || value->kind == PickleValue::Kind::Tensor;
  }
  return any_tensor;
}

std::string describe_top_level(const PickleValue& v) {
  std::string s = v.a_kind();
  if (v.kind == PickleValue::Kind::Dict) {
    s += " with keys {";
    size_t shown = 0;
    for (const auto& [key, value] : v.dict) {
      if (shown == 8) { s += ", ..."; break; }
      s += shown++ ? ", " : "";
      s += key->kind == PickleValue::Kind::String ? "'" + key->str + "'" : std::string(key->kind_name());
      s += std::string(": ") + value->kind_name();
    }
    s += "}";
  }
  return s;
}

}  // namespace

void TorchCheckpoint::read_state_dict() {
  const ZipEntry* pkl = archive_.find("data.pkl");
  std::string source = path() + " (" + pkl->name + ")";
  const uint8_t* bytes = archive_.stored_data(*pkl, /*verify_crc=*/true);
  PickleValuePtr root = unpickle(bytes, static_cast<size_t>(pkl->size), source);

  const PickleValue* state_dict = nullptr;
  if (is_tensor_dict(*root) || (root->kind == PickleValue::Kind::Dict && root->dict.empty())) {
    state_dict = root.get();
  } else if (root->kind == PickleValue::Kind::Dict) {
    int found = 0;
    for (const char* key : {"state_dict", "model", "module"}) {
      const PickleValue* v = root->find(key);
      if (v && is_tensor_dict(*v)) {
        state_dict = v;
        ++found;
      }
    }
    if (found > 1) state_dict = nullptr;
  }
  if (!state_dict)
    fail(ErrorCode::UnsupportedFormat, path(), ": no state dict found: the checkpoint holds ", describe_top_level(*root),
         " (expected a dict of tensors, or one under \"state_dict\", \"model\" or \"module\")");

  for (const auto& [key, value] : state_dict->dict)
    if (value->kind == PickleValue::Kind::Tensor) add_tensor(key->str, value->tensor);
  std::sort(records_.begin(), records_.end(),
            [](const TensorRecord& a, const TensorRecord& b) { return a.name < b.name; });
}

void TorchCheckpoint::add_tensor(const std::string& name, const std::shared_ptr<const TensorRef>& ref) {
  const StorageRef& storage = *ref->storage;
  if (!ref->dtype.supported)
    fail(ErrorCode::UnsupportedDtype, path(), ": tensor '", name, "' has dtype ", ref->dtype.name,
         ", which showo2 does not read");
  const uint64_t esize = dtype_size(ref->dtype.dtype);

  const ZipEntry* entry = archive_.find("data/" + storage.key);
  if (!entry)
    fail(ErrorCode::CorruptFile, path(), ": tensor '", name, "': storage '", storage.key, "' is missing (no entry ",
         archive_.prefix(), "/data/", storage.key, ")");
  // A compressed or encrypted entry is ERR_UNSUPPORTED_FORMAT naming it, here rather than at load() (found with
  // torch_checkpoint_fuzz: an encrypted storage passed this check, then load() threw, or handed out the ciphertext
  // as tensor bytes when the entry was aligned).
  archive_.stored_data(*entry);

  // Storage size in bytes: typed storages count elements of their own dtype, untyped ones count bytes.
  uint64_t storage_bytes;
  uint64_t storage_esize = storage.untyped ? 1 : dtype_size(storage.dtype.dtype);
  if (!storage.untyped && !storage.dtype.supported)
    fail(ErrorCode::UnsupportedDtype, path(), ": tensor '", name, "' uses a ", storage.dtype.name,
         ", which showo2 does not read");
  if (__builtin_mul_overflow(static_cast<uint64_t>(storage.numel), storage_esize, &storage_bytes) ||
      storage_bytes != entry->size)
    fail(ErrorCode::CorruptFile, path(), ": tensor '", name, "': storage '", storage.key, "' declares ", storage.numel,
         storage.untyped ? " bytes" : " elements", " but its entry holds ", entry->size, " bytes");

  // Extent check in elements of the tensor's dtype, with overflow checks (the pickle can claim anything).
  auto bad = [&](const char* why) {
    fail(ErrorCode::CorruptFile, path(), ": tensor '", name, "' (size ", shape_to_string(ref->size), ", stride ",
         shape_to_string(ref->stride), ", storage_offset ", ref->storage_offset, "): ", why);
  };
  if (ref->storage_offset < 0) bad("negative storage offset");
  uint64_t numel = 1, last = static_cast<uint64_t>(ref->storage_offset);
  bool empty = false;
  for (size_t d = 0; d < ref->size.size(); ++d) {
    if (ref->size[d] < 0) bad("negative size");
    if (ref->stride[d] < 0) bad("negative stride");
    if (ref->size[d] == 0) empty = true;
  }
  for (size_t d = 0; d < ref->size.size() && !empty; ++d) {
    uint64_t n = static_cast<uint64_t>(ref->size[d]), st = static_cast<uint64_t>(ref->stride[d]), span;
    if (__builtin_mul_overflow(numel, n, &numel) || __builtin_mul_overflow(n - 1, st, &span) ||
        __builtin_add_overflow(last, span, &last))
      bad("extent overflows");
  }
  if (numel > static_cast<uint64_t>(INT64_MAX)) bad("too many elements");  // possible with zero strides
  if (storage_bytes % esize != 0) bad("storage size is not a multiple of the element size");
  uint64_t storage_elements = storage_bytes / esize;
  // Even an empty tensor must start inside (or at the end of) its storage: its data pointer is still computed.
  if (static_cast<uint64_t>(ref->storage_offset) > storage_elements) bad("storage offset past the end of its storage");
  if (!empty && last >= storage_elements)
    bad((std::string("does not fit in its storage of ") + std::to_string(storage_elements) + " elements").c_str());

  TensorRecord rec;
  rec.name = name;
  rec.dtype = ref->dtype.dtype;
  rec.shape = ref->size;
  rec.file = path();
  records_.push_back(std::move(rec));
  entries_[name] = Entry{ref, entry};
}

std::shared_ptr<Storage> TorchCheckpoint::storage_for(const Entry& entry, size_t element_size) const {
  const std::string& key = entry.ref->storage->key;
  const ZipEntry& zip_entry = *entry.storage_entry;
  // The mapping starts page-aligned, so the file offset decides the pointer's alignment.
  bool aligned = zip_entry.data_offset % element_size == 0;
  std::lock_guard<std::mutex> lock(storages_mutex_);
  auto& cache = aligned ? borrowed_ : copied_;
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  std::shared_ptr<Storage> storage;
  if (aligned) {
    storage = archive_.file().borrow(zip_entry.data_offset, zip_entry.size, "storage data");
  } else {
    storage = Storage::allocate(static_cast<size_t>(zip_entry.size));
    if (zip_entry.size)
      std::memcpy(storage->mutable_data(), archive_.stored_data(zip_entry), static_cast<size_t>(zip_entry.size));
  }
  cache.emplace(key, storage);
  return storage;
}

Tensor TorchCheckpoint::load(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) fail(ErrorCode::TensorNotFound, path(), ": no tensor named '", name, "'");
  const TensorRef& ref = *it->second.ref;
  size_t esize = dtype_size(ref.dtype.dtype);
  return Tensor::view_of(storage_for(it->second, esize), ref.dtype.dtype, ref.size, ref.stride,
                         static_cast<size_t>(ref.storage_offset) * esize);
}

const std::string& TorchCheckpoint::storage_key(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) fail(ErrorCode::TensorNotFound, path(), ": no tensor named '", name, "'");
  return it->second.ref->storage->key;
}

}  // namespace showo2::weights
