#include "pickle.h"

#include <cstring>

#include "../error.h"

namespace showo2::weights {

const char* PickleValue::kind_name() const {
  switch (kind) {
    case Kind::None: return "None";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::BigInt: return "int (beyond 64 bits)";
    case Kind::Float: return "float";
    case Kind::String: return "str";
    case Kind::Bytes: return "bytes";
    case Kind::Tuple: return "tuple";
    case Kind::List: return "list";
    case Kind::Dict: return ordered_dict ? "OrderedDict" : "dict";
    case Kind::Global: return "global";
    case Kind::Dtype: return "torch.dtype";
    case Kind::Storage: return "storage";
    case Kind::Tensor: return "tensor";
  }
  return "?";
}

std::string PickleValue::a_kind() const {
  const char* name = kind_name();
  bool vowel = std::strchr("aeiouAEIOU", name[0]) != nullptr;
  return std::string(vowel ? "an " : "a ") + name;
}

const PickleValue* PickleValue::find(const std::string& key) const {
  if (kind != Kind::Dict) return nullptr;
  auto it = str_keys.find(key);
  return it == str_keys.end() ? nullptr : dict[it->second].second.get();
}

namespace {

// ---- the allow-list -------------------------------------------------------------------------------------------------

struct DtypeName {
  const char* name;
  bool supported;
  DType dtype;
};

// torch.<Name>Storage classes (typed storages; persistent ids of _rebuild_tensor_v2 tensors).
const DtypeName kStorageClasses[] = {
    {"FloatStorage", true, DType::F32},   {"DoubleStorage", true, DType::F64}, {"HalfStorage", true, DType::F16},
    {"BFloat16Storage", true, DType::BF16}, {"LongStorage", true, DType::I64}, {"IntStorage", true, DType::I32},
    {"ShortStorage", true, DType::I16},   {"CharStorage", true, DType::I8},    {"ByteStorage", true, DType::U8},
    {"BoolStorage", true, DType::Bool},
    // Known to torch, not to showo2: tensors on these storages are ERR_UNSUPPORTED_DTYPE, not unsafe.
    {"ComplexFloatStorage", false, DType::F32}, {"ComplexDoubleStorage", false, DType::F32},
    {"QInt8Storage", false, DType::F32},        {"QUInt8Storage", false, DType::F32},
    {"QInt32Storage", false, DType::F32},       {"QUInt4x2Storage", false, DType::F32},
    {"QUInt2x4Storage", false, DType::F32},
};

// torch.<dtype> objects (pickled by name, e.g. GLOBAL 'torch float16').
const DtypeName kDtypes[] = {
    {"float32", true, DType::F32},  {"float", true, DType::F32},   {"float64", true, DType::F64},
    {"double", true, DType::F64},   {"float16", true, DType::F16}, {"half", true, DType::F16},
    {"bfloat16", true, DType::BF16}, {"int64", true, DType::I64},  {"long", true, DType::I64},
    {"int32", true, DType::I32},    {"int", true, DType::I32},     {"int16", true, DType::I16},
    {"short", true, DType::I16},    {"int8", true, DType::I8},     {"uint8", true, DType::U8},
    {"bool", true, DType::Bool},
    {"uint16", false, DType::F32},  {"uint32", false, DType::F32}, {"uint64", false, DType::F32},
    {"complex32", false, DType::F32}, {"chalf", false, DType::F32}, {"complex64", false, DType::F32},
    {"cfloat", false, DType::F32},  {"complex128", false, DType::F32}, {"cdouble", false, DType::F32},
    {"float8_e4m3fn", false, DType::F32}, {"float8_e5m2", false, DType::F32},
    {"float8_e4m3fnuz", false, DType::F32}, {"float8_e5m2fnuz", false, DType::F32},
    {"float8_e8m0fnu", false, DType::F32}, {"float4_e2m1fn_x2", false, DType::F32},
    {"qint8", false, DType::F32},   {"quint8", false, DType::F32}, {"qint32", false, DType::F32},
    {"quint4x2", false, DType::F32}, {"quint2x4", false, DType::F32},
    {"bits1x8", false, DType::F32}, {"bits2x4", false, DType::F32}, {"bits4x2", false, DType::F32},
    {"bits8", false, DType::F32},   {"bits16", false, DType::F32},
    {"int1", false, DType::F32}, {"int2", false, DType::F32}, {"int3", false, DType::F32}, {"int4", false, DType::F32},
    {"int5", false, DType::F32}, {"int6", false, DType::F32}, {"int7", false, DType::F32},
    {"uint1", false, DType::F32}, {"uint2", false, DType::F32}, {"uint3", false, DType::F32},
    {"uint4", false, DType::F32}, {"uint5", false, DType::F32}, {"uint6", false, DType::F32},
    {"uint7", false, DType::F32},
};

const DtypeName* lookup(const DtypeName* table, size_t n, const std::string& name) {
  for (size_t i = 0; i < n; ++i)
    if (name == table[i].name) return &table[i];
  return nullptr;
}

// ---- opcodes (names from CPython's Lib/pickle.py) ---------------------------------------------------------------------

enum Op : uint8_t {
  MARK = '(', STOP = '.', POP = '0', POP_MARK = '1', DUP = '2', FLOAT = 'F', INT = 'I', BININT = 'J',
  BININT1 = 'K', LONG = 'L', BININT2 = 'M', NONE = 'N', PERSID = 'P', BINPERSID = 'Q', REDUCE = 'R',
  STRING = 'S', BINSTRING = 'T', SHORT_BINSTRING = 'U', UNICODE = 'V', BINUNICODE = 'X', APPEND = 'a',
  BUILD = 'b', GLOBAL = 'c', DICT = 'd', EMPTY_DICT = '}', APPENDS = 'e', GET = 'g', BINGET = 'h', INST = 'i',
  LONG_BINGET = 'j', LIST = 'l', EMPTY_LIST = ']', OBJ = 'o', PUT = 'p', BINPUT = 'q', LONG_BINPUT = 'r',
  SETITEM = 's', TUPLE = 't', EMPTY_TUPLE = ')', SETITEMS = 'u', BINFLOAT = 'G',
  PROTO = 0x80, NEWOBJ = 0x81, EXT1 = 0x82, EXT2 = 0x83, EXT4 = 0x84, TUPLE1 = 0x85, TUPLE2 = 0x86,
  TUPLE3 = 0x87, NEWTRUE = 0x88, NEWFALSE = 0x89, LONG1 = 0x8a, LONG4 = 0x8b,
  BINBYTES = 'B', SHORT_BINBYTES = 'C',
  SHORT_BINUNICODE = 0x8c, BINUNICODE8 = 0x8d, BINBYTES8 = 0x8e, EMPTY_SET = 0x8f, ADDITEMS = 0x90,
  FROZENSET = 0x91, NEWOBJ_EX = 0x92, STACK_GLOBAL = 0x93, MEMOIZE = 0x94, FRAME = 0x95,
  BYTEARRAY8 = 0x96, NEXT_BUFFER = 0x97, READONLY_BUFFER = 0x98,
};

constexpr size_t kMaxGlobalLine = 256;  // "module\nname\n" lines of GLOBAL
constexpr size_t kMaxRank = 64;

class Unpickler {
 public:
  Unpickler(const uint8_t* data, size_t size, const std::string& source, const UnpickleLimits& limits)
      : data_(data), size_(size), source_(source), limits_(limits) {}

  PickleValuePtr run() {
    for (;;) {
      op_pos_ = pos_;
      if (pos_ >= size_) corrupt("truncated: the pickle ends without a STOP opcode");
      uint8_t op = data_[pos_++];
      if (op == STOP) {
        if (!marks_.empty()) corrupt("STOP inside an unclosed MARK");
        if (stack_.size() != 1) corrupt("STOP with ", stack_.size(), " values on the stack (expected 1)");
        return stack_.back();
      }
      step(op);
    }
  }

 private:
  // ---- errors ----
  template <typename... Parts>
  [[noreturn]] void corrupt(const Parts&... parts) const {
    fail(ErrorCode::CorruptFile, source_, ": corrupt pickle at byte ", op_pos_, ": ", parts...);
  }
  template <typename... Parts>
  [[noreturn]] void unsupported(const Parts&... parts) const {
    fail(ErrorCode::UnsupportedFormat, source_, ": pickle at byte ", op_pos_, ": ", parts...,
         " (a state dict never needs this)");
  }
  template <typename... Parts>
  [[noreturn]] void unsafe(const Parts&... parts) const {
    fail(ErrorCode::UnsafePickle, source_, ": ", parts...,
         "; refusing to load (showo2 reads only tensors and plain containers and never runs pickled code)");
  }

  // ---- input ----
  const uint8_t* take(uint64_t n) {
    if (size_ - pos_ < n) corrupt("truncated: needs ", n, " more bytes, ", size_ - pos_, " left");
    const uint8_t* p = data_ + pos_;
    pos_ += static_cast<size_t>(n);
    return p;
  }
  uint8_t u8() { return *take(1); }
  uint16_t u16() { const uint8_t* p = take(2); return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
  uint32_t u32() {
    const uint8_t* p = take(4);
    return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
           (static_cast<uint32_t>(p[3]) << 24);
  }
  uint64_t u64() { uint64_t lo = u32(); return lo | (static_cast<uint64_t>(u32()) << 32); }
  std::string bytes(uint64_t n) {
    const uint8_t* p = take(n);
    return std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
  }
  std::string line() {
    size_t start = pos_;
    while (pos_ < size_ && data_[pos_] != '\n') {
      if (pos_ - start >= kMaxGlobalLine) corrupt("GLOBAL name longer than ", kMaxGlobalLine, " bytes");
      ++pos_;
    }
    if (pos_ >= size_) corrupt("truncated: GLOBAL name without a newline");
    std::string s(reinterpret_cast<const char*>(data_ + start), pos_ - start);
    ++pos_;
    return s;
  }

  // ---- values ----
  PickleValuePtr make(PickleValue::Kind kind) {
    // Every opcode creates at most one value, so this bounds the memory a hostile pickle can claim.
    if (++values_created_ > limits_.max_values) corrupt("more than ", limits_.max_values, " values");
    auto v = std::make_shared<PickleValue>();
    v->kind = kind;
    return v;
  }
  PickleValuePtr make_int(int64_t i) {
    auto v = make(PickleValue::Kind::Int);
    v->i = i;
    return v;
  }
  PickleValuePtr make_string(PickleValue::Kind kind, std::string s) {
    auto v = make(kind);
    v->str = std::move(s);
    return v;
  }
  // Accounts for `n` bytes about to be copied out of a value the VM already holds (UnpickleLimits::max_copied_bytes).
  void charge_copy(size_t n, const char* what) {
    copied_bytes_ += n;
    if (copied_bytes_ > size_ + limits_.max_copied_bytes)
      corrupt(what, " copy more than ", size_ + limits_.max_copied_bytes,
              " bytes in all (a memoized value used over and over; a state dict copies each key once)");
  }

  // Records that `child` now lives inside `container`: it may no longer change, and the container's depth grows.
  void adopt(PickleValue& container, const PickleValuePtr& child) {
    if (child.get() == &container) unsupported("a container placed inside itself (self-referential data)");
    child->frozen = true;
    if (child->depth + 1 > limits_.max_depth) corrupt("containers nested deeper than ", limits_.max_depth, " levels");
    container.depth = std::max(container.depth, child->depth + 1);
  }
  void check_mutable(const PickleValue& container) const {
    if (container.frozen)
      unsupported("a container modified after being placed in another (how pickle encodes self-referential data)");
  }

  PickleValuePtr make_tuple(std::vector<PickleValuePtr> items) {
    auto t = make(PickleValue::Kind::Tuple);
    for (const auto& item : items) adopt(*t, item);
    t->items = std::move(items);
    return t;
  }

  void set_item(PickleValue& d, const PickleValuePtr& key, const PickleValuePtr& value) {
    check_mutable(d);
    adopt(d, key);
    adopt(d, value);
    size_t next = d.dict.size();
    size_t slot;
    if (key->kind == PickleValue::Kind::String) {
      auto it = d.str_keys.find(key->str);
      if (it != d.str_keys.end()) {
        slot = it->second;
      } else {
        charge_copy(key->str.size(), "dict keys");
        slot = d.str_keys.emplace(key->str, next).first->second;
      }
    } else if (key->kind == PickleValue::Kind::Int || key->kind == PickleValue::Kind::Bool) {
      int64_t k = key->kind == PickleValue::Kind::Bool ? (key->b ? 1 : 0) : key->i;
      slot = d.int_keys.emplace(k, next).first->second;
    } else {
      unsupported("a dict key of type ", key->kind_name());
    }
    if (slot == next) d.dict.emplace_back(key, value);
    else d.dict[slot].second = value;  // Python semantics: assigning an existing key replaces its value
  }

  // ---- stack ----
  size_t frame_base() const { return marks_.empty() ? 0 : marks_.back(); }
  void push(PickleValuePtr v) {
    if (stack_.size() >= limits_.max_stack) corrupt("more than ", limits_.max_stack, " values on the stack");
    stack_.push_back(std::move(v));
  }
  PickleValuePtr pop() {
    if (stack_.size() <= frame_base()) corrupt("stack underflow");
    PickleValuePtr v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  const PickleValuePtr& top_ptr() {
    if (stack_.size() <= frame_base()) corrupt("stack underflow");
    return stack_.back();
  }
  PickleValue& top() { return *top_ptr(); }
  std::vector<PickleValuePtr> pop_mark() {
    if (marks_.empty()) corrupt("no MARK to pop to");
    size_t base = marks_.back();
    marks_.pop_back();
    std::vector<PickleValuePtr> items(std::make_move_iterator(stack_.begin() + static_cast<std::ptrdiff_t>(base)),
                                      std::make_move_iterator(stack_.end()));
    stack_.resize(base);
    return items;
  }

  void memo_put(uint64_t index, PickleValuePtr v) {
    if (memo_.size() >= limits_.max_memo && memo_.find(index) == memo_.end())
      corrupt("more than ", limits_.max_memo, " memo entries");
    memo_[index] = std::move(v);
  }
  PickleValuePtr memo_get(uint64_t index) {
    auto it = memo_.find(index);
    if (it == memo_.end()) corrupt("memo index ", index, " was never stored");
    return it->second;
  }

  // Two's-complement little-endian integer of n bytes (LONG1/LONG4).
  PickleValuePtr decode_long(uint64_t n) {
    const uint8_t* p = take(n);
    if (n == 0) return make_int(0);
    bool negative = (p[n - 1] & 0x80) != 0;
    uint8_t fill = negative ? 0xff : 0x00;
    // Anything beyond 8 bytes must be pure sign extension for the value to fit in int64.
    bool fits = true;
    for (uint64_t k = 8; k < n; ++k) fits = fits && p[k] == fill;
    if (n > 8 && fits && ((p[7] & 0x80) != 0) != negative) fits = false;
    if (!fits) return make(PickleValue::Kind::BigInt);
    uint64_t u = negative ? ~uint64_t{0} : 0;
    for (uint64_t k = 0; k < std::min<uint64_t>(n, 8); ++k) {
      u &= ~(uint64_t{0xff} << (8 * k));
      u |= static_cast<uint64_t>(p[k]) << (8 * k);
    }
    int64_t i;
    std::memcpy(&i, &u, 8);
    return make_int(i);
  }

  // ---- globals and calls ----
  PickleValuePtr resolve_global(const std::string& module, const std::string& name) {
    auto global = [this](PickleValue::Global g) {
      auto v = make(PickleValue::Kind::Global);
      v->global = g;
      return v;
    };
    if (module == "collections" && name == "OrderedDict") return global(PickleValue::Global::OrderedDict);
    if (module == "torch._utils") {
      if (name == "_rebuild_tensor_v2") return global(PickleValue::Global::RebuildTensorV2);
      if (name == "_rebuild_tensor_v3") return global(PickleValue::Global::RebuildTensorV3);
      if (name == "_rebuild_parameter") return global(PickleValue::Global::RebuildParameter);
      if (name == "_rebuild_parameter_with_state") return global(PickleValue::Global::RebuildParameterWithState);
    }
    if (module == "_codecs" && name == "encode") return global(PickleValue::Global::CodecsEncode);
    if ((module == "torch.storage" || module == "torch") && name == "UntypedStorage")
      return global(PickleValue::Global::UntypedStorage);
    if (module == "torch") {
      if (const DtypeName* s = lookup(kStorageClasses, std::size(kStorageClasses), name)) {
        auto v = global(PickleValue::Global::StorageClass);
        v->dtype = {s->supported, s->dtype, "torch." + name};
        return v;
      }
      if (const DtypeName* d = lookup(kDtypes, std::size(kDtypes), name)) {
        auto v = make(PickleValue::Kind::Dtype);
        v->dtype = {d->supported, d->dtype, "torch." + name};
        return v;
      }
    }
    unsafe("pickle references the global '", module, ".", name, "', which a state dict never needs");
  }

  static const char* global_name(PickleValue::Global g) {
    switch (g) {
      case PickleValue::Global::OrderedDict: return "collections.OrderedDict";
      case PickleValue::Global::RebuildTensorV2: return "torch._utils._rebuild_tensor_v2";
      case PickleValue::Global::RebuildTensorV3: return "torch._utils._rebuild_tensor_v3";
      case PickleValue::Global::RebuildParameter: return "torch._utils._rebuild_parameter";
      case PickleValue::Global::RebuildParameterWithState: return "torch._utils._rebuild_parameter_with_state";
      case PickleValue::Global::CodecsEncode: return "_codecs.encode";
      case PickleValue::Global::StorageClass: return "a torch storage class";
      case PickleValue::Global::UntypedStorage: return "torch.storage.UntypedStorage";
    }
    return "?";
  }

  void expect_arg(const std::vector<PickleValuePtr>& args, size_t i, PickleValue::Kind kind, const char* fn,
                  const char* what) const {
    if (args[i]->kind != kind)
      corrupt("argument ", i, " (", what, ") of ", fn, " is ", args[i]->a_kind());
  }

  Shape int_tuple(const PickleValuePtr& v, const char* fn, const char* what) const {
    if (v->kind != PickleValue::Kind::Tuple) corrupt(what, " of ", fn, " is ", v->a_kind(), ", expected a tuple");
    if (v->items.size() > kMaxRank) corrupt(what, " of ", fn, " has more than ", kMaxRank, " dimensions");
    Shape out;
    for (const auto& item : v->items) {
      if (item->kind != PickleValue::Kind::Int) corrupt(what, " of ", fn, " holds ", item->a_kind());
      out.push_back(item->i);
    }
    return out;
  }

  // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]) and
  // _rebuild_tensor_v3(..., dtype[, metadata]).
  PickleValuePtr rebuild_tensor(const std::vector<PickleValuePtr>& args, bool v3) {
    const char* fn = v3 ? "_rebuild_tensor_v3" : "_rebuild_tensor_v2";
    size_t fixed = v3 ? 7 : 6;
    if (args.size() != fixed && args.size() != fixed + 1)
      corrupt(fn, " called with ", args.size(), " arguments (expected ", fixed, " or ", fixed + 1, ")");
    expect_arg(args, 0, PickleValue::Kind::Storage, fn, "storage");
    expect_arg(args, 1, PickleValue::Kind::Int, fn, "storage_offset");
    auto ref = std::make_shared<TensorRef>();
    ref->storage = args[0]->storage;
    ref->storage_offset = args[1]->i;
    ref->size = int_tuple(args[2], fn, "size");
    ref->stride = int_tuple(args[3], fn, "stride");
    if (ref->size.size() != ref->stride.size())
      corrupt(fn, ": size ", shape_to_string(ref->size), " and stride ", shape_to_string(ref->stride),
              " differ in rank");
    charge_copy(2 * sizeof(int64_t) * ref->size.size(), "tensor sizes and strides");
    if (v3) {
      expect_arg(args, 6, PickleValue::Kind::Dtype, fn, "dtype");
      if (!ref->storage->untyped) corrupt(fn, " expects an UntypedStorage");
      ref->dtype = args[6]->dtype;
    } else {
      if (ref->storage->untyped) corrupt(fn, " expects a typed storage (e.g. torch.FloatStorage)");
      ref->dtype = ref->storage->dtype;
    }
    auto v = make(PickleValue::Kind::Tensor);
    v->tensor = std::move(ref);
    return v;
  }

  // Python's protocol-2 encoding of bytes: _codecs.encode(<str of code points 0-255>, "latin1").
  PickleValuePtr codecs_encode(const std::vector<PickleValuePtr>& args) {
    if (args.size() != 2 || args[0]->kind != PickleValue::Kind::String || args[1]->kind != PickleValue::Kind::String)
      corrupt("_codecs.encode expects (str, encoding)");
    if (args[1]->str != "latin1" && args[1]->str != "latin-1")
      unsupported("_codecs.encode with encoding '", args[1]->str, "'");
    std::string out;
    const std::string& s = args[0]->str;
    charge_copy(s.size(), "_codecs.encode results");
    for (size_t i = 0; i < s.size(); ++i) {
      unsigned char c = static_cast<unsigned char>(s[i]);
      if (c < 0x80) {
        out += static_cast<char>(c);
      } else if ((c == 0xc2 || c == 0xc3) && i + 1 < s.size() && (static_cast<unsigned char>(s[i + 1]) & 0xc0) == 0x80) {
        out += static_cast<char>(((c & 0x03) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3f));
        ++i;
      } else {
        corrupt("_codecs.encode: a character outside latin-1");
      }
    }
    return make_string(PickleValue::Kind::Bytes, std::move(out));
  }

  PickleValuePtr call(const PickleValue& callable, const std::vector<PickleValuePtr>& args) {
    if (callable.kind != PickleValue::Kind::Global) corrupt("REDUCE on ", callable.a_kind(), ", which is not callable");
    switch (callable.global) {
      case PickleValue::Global::OrderedDict: {
        if (!args.empty()) unsupported("collections.OrderedDict called with arguments");
        auto d = make(PickleValue::Kind::Dict);
        d->ordered_dict = true;
        return d;
      }
      case PickleValue::Global::RebuildTensorV2: return rebuild_tensor(args, false);
      case PickleValue::Global::RebuildTensorV3: return rebuild_tensor(args, true);
      case PickleValue::Global::RebuildParameter:
      case PickleValue::Global::RebuildParameterWithState: {
        // (data, requires_grad, backward_hooks[, state]): the Parameter is just its tensor for us.
        size_t expected = callable.global == PickleValue::Global::RebuildParameter ? 3 : 4;
        const char* fn = global_name(callable.global);
        if (args.size() != expected) corrupt(fn, " called with ", args.size(), " arguments (expected ", expected, ")");
        expect_arg(args, 0, PickleValue::Kind::Tensor, fn, "data");
        return args[0];
      }
      case PickleValue::Global::CodecsEncode: return codecs_encode(args);
      case PickleValue::Global::StorageClass:
      case PickleValue::Global::UntypedStorage:
        break;
    }
    unsafe("pickle calls ", callable.global == PickleValue::Global::StorageClass ? callable.dtype.name
                                                                                  : std::string(global_name(callable.global)),
           " directly, which torch.save never does");
  }

  // ('storage', storage_class, key, location, numel) -> Storage.
  PickleValuePtr persistent_load(const PickleValue& pid) {
    if (pid.kind != PickleValue::Kind::Tuple || pid.items.empty() || pid.items[0]->kind != PickleValue::Kind::String)
      corrupt("persistent id is ", pid.a_kind(), ", expected ('storage', class, key, location, numel)");
    if (pid.items[0]->str != "storage") unsupported("persistent id of type '", pid.items[0]->str, "'");
    if (pid.items.size() != 5) corrupt("storage persistent id has ", pid.items.size(), " fields (expected 5)");
    const PickleValue& cls = *pid.items[1];
    const PickleValue& key = *pid.items[2];
    const PickleValue& location = *pid.items[3];
    const PickleValue& numel = *pid.items[4];
    if (cls.kind != PickleValue::Kind::Global ||
        (cls.global != PickleValue::Global::StorageClass && cls.global != PickleValue::Global::UntypedStorage))
      corrupt("storage persistent id names ", cls.a_kind(), " instead of a storage class");
    if (key.kind != PickleValue::Kind::String && key.kind != PickleValue::Kind::Int)
      corrupt("storage key is ", key.a_kind());
    if (location.kind != PickleValue::Kind::String) corrupt("storage location is ", location.a_kind());
    if (numel.kind != PickleValue::Kind::Int || numel.i < 0) corrupt("storage size must be a non-negative int");
    charge_copy(key.str.size() + location.str.size(), "storage keys and locations");
    auto ref = std::make_shared<StorageRef>();
    ref->untyped = cls.global == PickleValue::Global::UntypedStorage;
    if (!ref->untyped) ref->dtype = cls.dtype;
    ref->key = key.kind == PickleValue::Kind::String ? key.str : std::to_string(key.i);
    ref->location = location.str;
    ref->numel = numel.i;
    auto v = make(PickleValue::Kind::Storage);
    v->storage = std::move(ref);
    return v;
  }

  // ---- the VM ----
  void step(uint8_t op) {
    using K = PickleValue::Kind;
    switch (op) {
      case PROTO: {
        uint8_t version = u8();
        if (version > 5) unsupported("pickle protocol ", static_cast<int>(version));
        return;
      }
      case FRAME: {
        uint64_t n = u64();
        if (n > size_ - pos_) corrupt("frame of ", n, " bytes runs past the end of the pickle");
        return;
      }
      case MARK:
        if (marks_.size() >= limits_.max_marks) corrupt("more than ", limits_.max_marks, " nested MARKs");
        marks_.push_back(stack_.size());
        return;
      case POP:
        if (stack_.size() > frame_base()) stack_.pop_back();
        else if (!marks_.empty()) marks_.pop_back();
        else corrupt("stack underflow");
        return;
      case POP_MARK: pop_mark(); return;
      case DUP: push(top_ptr()); return;

      case NONE: push(make(K::None)); return;
      case NEWTRUE:
      case NEWFALSE: {
        auto v = make(K::Bool);
        v->b = op == NEWTRUE;
        push(v);
        return;
      }
      case BININT: { uint32_t u = u32(); int32_t i; std::memcpy(&i, &u, 4); push(make_int(i)); return; }
      case BININT1: push(make_int(u8())); return;
      case BININT2: push(make_int(u16())); return;
      case LONG1: { uint8_t n = u8(); push(decode_long(n)); return; }
      case LONG4: {
        uint32_t u = u32();
        int32_t n;
        std::memcpy(&n, &u, 4);
        if (n < 0) corrupt("negative LONG4 length");
        push(decode_long(static_cast<uint64_t>(n)));
        return;
      }
      case BINFLOAT: {
        const uint8_t* p = take(8);
        uint64_t u = 0;
        for (int k = 0; k < 8; ++k) u = (u << 8) | p[k];  // big-endian
        auto v = make(K::Float);
        std::memcpy(&v->f, &u, 8);
        push(v);
        return;
      }

      case SHORT_BINUNICODE: { uint8_t n = u8(); push(make_string(K::String, bytes(n))); return; }
      case BINUNICODE: { uint32_t n = u32(); push(make_string(K::String, bytes(n))); return; }
      case BINUNICODE8: { uint64_t n = u64(); push(make_string(K::String, bytes(n))); return; }
      case SHORT_BINSTRING: { uint8_t n = u8(); push(make_string(K::String, bytes(n))); return; }
      case BINSTRING: {
        uint32_t u = u32();
        int32_t n;
        std::memcpy(&n, &u, 4);
        if (n < 0) corrupt("negative BINSTRING length");
        push(make_string(K::String, bytes(static_cast<uint64_t>(n))));
        return;
      }
      case SHORT_BINBYTES: { uint8_t n = u8(); push(make_string(K::Bytes, bytes(n))); return; }
      case BINBYTES: { uint32_t n = u32(); push(make_string(K::Bytes, bytes(n))); return; }
      case BINBYTES8:
      case BYTEARRAY8: { uint64_t n = u64(); push(make_string(K::Bytes, bytes(n))); return; }

      case EMPTY_TUPLE: push(make(K::Tuple)); return;
      case TUPLE: push(make_tuple(pop_mark())); return;
      case TUPLE1:
      case TUPLE2:
      case TUPLE3: {
        size_t n = static_cast<size_t>(op - TUPLE1 + 1);
        std::vector<PickleValuePtr> items(n);
        for (size_t k = n; k-- > 0;) items[k] = pop();
        push(make_tuple(std::move(items)));
        return;
      }
      case EMPTY_LIST: push(make(K::List)); return;
      case LIST: {
        auto list = make(K::List);
        for (auto& item : pop_mark()) {
          adopt(*list, item);
          list->items.push_back(std::move(item));
        }
        push(list);
        return;
      }
      case APPEND: {
        PickleValuePtr item = pop();
        append(top(), {item});
        return;
      }
      case APPENDS: {
        std::vector<PickleValuePtr> items = pop_mark();
        append(top(), items);
        return;
      }
      case EMPTY_DICT: push(make(K::Dict)); return;
      case DICT: {
        std::vector<PickleValuePtr> items = pop_mark();
        if (items.size() % 2) corrupt("DICT with an odd number of items");
        auto d = make(K::Dict);
        for (size_t k = 0; k < items.size(); k += 2) set_item(*d, items[k], items[k + 1]);
        push(d);
        return;
      }
      case SETITEM: {
        PickleValuePtr value = pop();
        PickleValuePtr key = pop();
        PickleValue& d = top();
        if (d.kind != K::Dict) corrupt("SETITEM on ", d.a_kind());
        set_item(d, key, value);
        return;
      }
      case SETITEMS: {
        std::vector<PickleValuePtr> items = pop_mark();
        if (items.size() % 2) corrupt("SETITEMS with an odd number of items");
        PickleValue& d = top();
        if (d.kind != K::Dict) corrupt("SETITEMS on ", d.a_kind());
        for (size_t k = 0; k < items.size(); k += 2) set_item(d, items[k], items[k + 1]);
        return;
      }

      case BINPUT: memo_put(u8(), top_ptr()); return;
      case LONG_BINPUT: memo_put(u32(), top_ptr()); return;
      case MEMOIZE: memo_put(memo_.size(), top_ptr()); return;
      case BINGET: push(memo_get(u8())); return;
      case LONG_BINGET: push(memo_get(u32())); return;

      case GLOBAL: {
        std::string module = line();
        std::string name = line();
        push(resolve_global(module, name));
        return;
      }
      case STACK_GLOBAL: {
        PickleValuePtr name = pop();
        PickleValuePtr module = pop();
        if (name->kind != K::String || module->kind != K::String) corrupt("STACK_GLOBAL needs two strings");
        push(resolve_global(module->str, name->str));
        return;
      }
      case REDUCE: {
        PickleValuePtr args = pop();
        PickleValuePtr callable = pop();
        if (args->kind != K::Tuple) corrupt("REDUCE arguments are ", args->a_kind(), ", expected a tuple");
        push(call(*callable, args->items));
        return;
      }
      case BUILD: {
        PickleValuePtr state = pop();
        PickleValue& obj = top();
        // OrderedDict state is the module tree's `_metadata` (versions for _load_from_state_dict): not needed.
        if (obj.kind != K::Dict || !obj.ordered_dict)
          unsafe("pickle sets the state of ", obj.a_kind(), " (BUILD at byte ", op_pos_, ")");
        return;
      }
      case BINPERSID: {
        PickleValuePtr pid = pop();
        push(persistent_load(*pid));
        return;
      }

      case INST: case OBJ: case NEWOBJ: case NEWOBJ_EX: case EXT1: case EXT2: case EXT4:
        unsafe("pickle opcode 0x", hex(op), " at byte ", op_pos_, " constructs an arbitrary object");
      case INT: case LONG: case FLOAT: case STRING: case UNICODE: case PERSID: case GET: case PUT:
        unsupported("protocol-0 text opcode '", static_cast<char>(op), "'");
      case EMPTY_SET: case ADDITEMS: case FROZENSET: unsupported("a set");
      case NEXT_BUFFER: case READONLY_BUFFER: unsupported("an out-of-band buffer");
      default: corrupt("unknown opcode 0x", hex(op));
    }
  }

  static std::string hex(uint8_t op) {
    static const char* digits = "0123456789abcdef";
    return std::string{digits[op >> 4], digits[op & 15]};
  }

  void append(PickleValue& list, const std::vector<PickleValuePtr>& items) {
    if (list.kind != PickleValue::Kind::List) corrupt("APPEND on ", list.a_kind());
    check_mutable(list);
    for (const auto& item : items) {
      adopt(list, item);
      list.items.push_back(item);
    }
  }

  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  size_t op_pos_ = 0;
  const std::string& source_;
  const UnpickleLimits& limits_;
  std::vector<PickleValuePtr> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, PickleValuePtr> memo_;
  size_t values_created_ = 0;
  size_t copied_bytes_ = 0;
};

}  // namespace

PickleValuePtr unpickle(const uint8_t* data, size_t size, const std::string& source, const UnpickleLimits& limits) {
  return Unpickler(data, size, source, limits).run();
}

}  // namespace showo2::weights
