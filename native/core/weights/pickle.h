// A restricted unpickler for the data.pkl of a torch.save archive: a small pickle VM (protocols 2-5) that builds
// plain values and never runs code.
//
// Python's pickle can call any importable function (GLOBAL + REDUCE), so loading an untrusted .bin with torch.load
// (weights_only=False) executes whatever the file says. This VM instead knows a fixed allow-list, which is everything
// torch 2.x emits for a state dict (verified by disassembling torch.save output with pickletools):
//
//   collections.OrderedDict                     the state dict itself (REDUCE with no arguments, then BUILD with
//                                               {"_metadata": ...}, which is ignored)
//   torch._utils._rebuild_tensor_v2             (storage, storage_offset, size, stride, requires_grad, hooks[, meta])
//   torch._utils._rebuild_tensor_v3             (untyped storage, ..., dtype[, meta]); torch uses it only for dtypes
//                                               without a legacy storage class (uint16, float8, ...)
//   torch._utils._rebuild_parameter             (tensor, requires_grad, hooks): an nn.Parameter saved directly
//   torch._utils._rebuild_parameter_with_state  (tensor, requires_grad, hooks, state): state ignored
//   torch.{Float,Double,Half,BFloat16,Long,Int,Short,Char,Byte,Bool}Storage, and the complex/quantized storage
//   classes (recognised so that their tensors fail with ERR_UNSUPPORTED_DTYPE rather than as unsafe)
//   torch.storage.UntypedStorage                the storage class in persistent ids for _rebuild_tensor_v3
//   torch.<dtype> (torch.float16, ...)          dtype objects (v3 tensors, or a dtype stored as a dict value)
//   _codecs.encode                              how protocol 2 pickles a bytes value (only with "latin1")
//
// Any other GLOBAL/STACK_GLOBAL is ERR_UNSAFE_PICKLE naming module.name and the file, before anything is called.
// REDUCE only calls the functions above; INST, OBJ, NEWOBJ, NEWOBJ_EX and the extension-registry opcodes are refused
// outright; BUILD is accepted only on an OrderedDict. Persistent ids must be ('storage', <storage class>, key,
// location, numel) and become StorageRef values (the bytes live in the zip entry "data/<key>").
//
// Malformed input (truncation, stack underflow, an unknown opcode, a bad memo index, a wrong argument type) is
// ERR_CORRUPT_FILE with the byte offset. The stack, the memo, MARK nesting and container nesting are capped, and
// containers cannot be made self-referential (pickle can only build cycles by mutating a container after placing
// it in another; that is refused), so the value tree is always finite and shallow.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../dtype.h"
#include "../tensor.h"

namespace showo2::weights {

// An element type as the pickle names it: a storage class or a torch dtype. `supported` is false for types showo2
// cannot represent (complex, float8, uint16, quantized, ...); `name` is what the error message shows.
struct TorchDtype {
  bool supported = false;
  DType dtype = DType::F32;
  std::string name;  // e.g. "torch.FloatStorage", "torch.float8_e4m3fn"
};

// A persistent id: ('storage', storage_class, key, location, numel).
struct StorageRef {
  TorchDtype dtype;      // element type of a typed storage; unused (supported = false) for UntypedStorage
  bool untyped = false;  // torch.storage.UntypedStorage: numel counts bytes
  std::string key;       // the zip entry is "<prefix>/data/<key>"
  std::string location;  // "cpu", "cuda:0", ... (informational: the bytes are the same)
  int64_t numel = 0;     // elements of `dtype`, or bytes when untyped
};

// The result of _rebuild_tensor_v2/_v3: a strided view of a storage, in elements of `dtype`.
struct TensorRef {
  std::shared_ptr<const StorageRef> storage;
  TorchDtype dtype;
  int64_t storage_offset = 0;
  Shape size;
  Shape stride;
};

struct PickleValue;
using PickleValuePtr = std::shared_ptr<PickleValue>;

struct PickleValue {
  enum class Kind {
    None, Bool, Int, BigInt, Float, String, Bytes, Tuple, List, Dict,
    Global,   // an allow-listed callable or class, see TorchGlobal
    Dtype,    // a torch dtype object
    Storage,  // a persistent-id storage reference
    Tensor,   // a rebuilt tensor
  };
  // The allow-listed globals (GLOBAL/STACK_GLOBAL results).
  enum class Global {
    OrderedDict, RebuildTensorV2, RebuildTensorV3, RebuildParameter, RebuildParameterWithState, CodecsEncode,
    StorageClass,  // torch.FloatStorage etc.: `dtype` says which
    UntypedStorage,
  };

  Kind kind = Kind::None;
  bool b = false;                         // Bool
  int64_t i = 0;                          // Int (BigInt: an integer beyond int64, value not kept)
  double f = 0;                           // Float
  std::string str;                        // String (UTF-8 as pickled) and Bytes
  std::vector<PickleValuePtr> items;      // Tuple, List
  std::vector<std::pair<PickleValuePtr, PickleValuePtr>> dict;  // Dict, insertion order
  bool ordered_dict = false;              // Dict created by collections.OrderedDict (BUILD allowed)
  Global global = Global::OrderedDict;    // Global
  TorchDtype dtype;                       // Global StorageClass, Dtype
  std::shared_ptr<const StorageRef> storage;  // Storage
  std::shared_ptr<const TensorRef> tensor;    // Tensor

  // VM bookkeeping: `frozen` is set once the value is placed inside another container (mutating it afterwards is
  // how pickle builds cycles, and is refused); `depth` is the nesting depth of the value.
  bool frozen = false;
  int depth = 1;
  std::unordered_map<std::string, size_t> str_keys;  // Dict: string key -> position in `dict`
  std::unordered_map<int64_t, size_t> int_keys;      // Dict: int key -> position in `dict`

  const char* kind_name() const;
  std::string a_kind() const;  // kind_name() with its article ("an int", "a tuple"), for error messages
  // Dict lookup by string key; nullptr when absent or not a dict.
  const PickleValue* find(const std::string& key) const;
};

struct UnpickleLimits {
  size_t max_values = 1u << 20;  // values created in all (a 7B state dict needs ~20k; ~300 bytes each)
  size_t max_stack = 1u << 20;   // values on the VM stack
  size_t max_memo = 1u << 20;    // memo entries
  size_t max_marks = 1024;      // nested MARKs
  int max_depth = 128;          // container nesting (a state dict is 2-4 deep)
  // Bytes the VM may copy out of values it already holds (dict keys, storage keys and locations, decoded bytes,
  // tensor sizes and strides), beyond the size of the pickle itself. A memoized value can be referenced again for
  // two bytes, so without a cap memory would grow with the square of the input (a 1 MB pickle could ask for ~64 GB).
  // A state dict copies each of its keys once, plus a few bytes per tensor.
  size_t max_copied_bytes = 64u << 20;
};

// Runs the restricted VM over `data` and returns the unpickled object. `source` names the file and entry in error
// messages (e.g. "model.bin (archive/data.pkl)"). Throws ERR_UNSAFE_PICKLE, ERR_CORRUPT_FILE or
// ERR_UNSUPPORTED_FORMAT (valid pickle that a state dict never contains: protocol-0 text opcodes, sets,
// out-of-band buffers).
PickleValuePtr unpickle(const uint8_t* data, size_t size, const std::string& source, const UnpickleLimits& limits = {});

}  // namespace showo2::weights
