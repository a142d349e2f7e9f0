// Fuzzes the restricted unpickler (native/core/weights/pickle.h) on bare pickle bytes: the data.pkl of a torch.save
// archive without the zip around it.
//
// Contract: ERR_CORRUPT_FILE / ERR_UNSAFE_PICKLE / ERR_UNSUPPORTED_FORMAT, or a value tree. The unpickler cannot run
// code by construction (it has no way to call anything outside its allow-list), so what the fuzzer can find is memory
// errors, unbounded work or memory, and broken promises about the value it returns. Invariants: the value is a
// finite DAG (no cycles) whose depth fields are right and within the limit; every tensor has a storage and as many
// strides as sizes; storages have a non-negative size.
#include <algorithm>
#include <unordered_map>

#include "fuzz_util.h"
#include "weights/pickle.h"

using showo2::ErrorCode;
using namespace showo2::weights;

namespace {

// Returns the depth of `v` (1 for a leaf) after checking it; memoised, because shared sub-values (the memo lets a
// pickle reference one value many times) would make a plain tree walk exponential. `on_path` catches cycles.
int check_value(const PickleValue* v, std::unordered_map<const PickleValue*, int>& depth_of, int level) {
  FUZZ_CHECK(level <= UnpickleLimits{}.max_depth + 1);
  auto it = depth_of.find(v);
  if (it != depth_of.end()) {
    FUZZ_CHECK(it->second > 0);  // 0 marks a value still being walked: reaching it again is a cycle
    return it->second;
  }
  depth_of[v] = 0;
  int depth = 1;
  auto child = [&](const PickleValuePtr& c) {
    FUZZ_CHECK(c != nullptr);
    depth = std::max(depth, check_value(c.get(), depth_of, level + 1) + 1);
  };
  using K = PickleValue::Kind;
  switch (v->kind) {
    case K::Tuple:
    case K::List:
      for (const auto& item : v->items) child(item);
      break;
    case K::Dict:
      for (const auto& [key, value] : v->dict) {
        child(key);
        child(value);
      }
      FUZZ_CHECK(v->str_keys.size() + v->int_keys.size() == v->dict.size());
      break;
    case K::Storage:
      FUZZ_CHECK(v->storage != nullptr && v->storage->numel >= 0);
      break;
    case K::Tensor:
      FUZZ_CHECK(v->tensor != nullptr && v->tensor->storage != nullptr);
      FUZZ_CHECK(v->tensor->size.size() == v->tensor->stride.size());
      break;
    default:
      break;
  }
  FUZZ_CHECK(depth <= UnpickleLimits{}.max_depth);
  FUZZ_CHECK(v->depth >= depth);  // the VM's own count may only be larger (it counts before deduplication)
  depth_of[v] = depth;
  return depth;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  PickleValuePtr root;
  try {
    root = unpickle(data, size, "fuzz.pkl");
  } catch (const showo2::Error& e) {
    showo2::fuzz::expect_code(e, {ErrorCode::CorruptFile, ErrorCode::UnsafePickle, ErrorCode::UnsupportedFormat});
    return 0;
  }
  FUZZ_CHECK(root != nullptr);
  std::unordered_map<const PickleValue*, int> depth_of;
  check_value(root.get(), depth_of, 1);
  return 0;
}
