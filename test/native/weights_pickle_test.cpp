// The restricted unpickler (native/core/weights/pickle.h) against real torch pickles and hostile ones.
#include <random>
#include <string>

#include "test_util.h"
#include "weights/pickle.h"
#include "weights/torch_zip.h"
#include "weights_test_util.h"

using namespace showo2;
using namespace showo2::weights;
using showo2::test::weights_fixture;

static PickleValuePtr run(const std::string& bytes) {
  return unpickle(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "test.pkl");
}
// String literals keep their embedded NUL bytes (a const char* would stop at the first one).
template <size_t N>
static PickleValuePtr run(const char (&literal)[N]) {
  return run(std::string(literal, N - 1));
}

static std::string real_pickle(const char* fixture) {
  TorchZipArchive zip(MappedFile::open(weights_fixture(fixture)));
  const ZipEntry* e = zip.find("data.pkl");
  const uint8_t* p = zip.stored_data(*e);
  return std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(e->size));
}

SHOWO2_TEST(real_torch_pickles_unpickle_to_a_dict_of_tensors) {
  PickleValuePtr root = run(real_pickle("tiny_model.bin"));  // protocol 2
  CHECK(root->kind == PickleValue::Kind::Dict && root->ordered_dict);
  const PickleValue* embed = root->find("embed_tokens.weight");
  CHECK(embed && embed->kind == PickleValue::Kind::Tensor);
  CHECK_EQ(embed->tensor->dtype.name, std::string("torch.FloatStorage"));
  CHECK(embed->tensor->size == Shape({16, 8}));
  CHECK(root->find("lm_head.weight")->tensor->storage->key == embed->tensor->storage->key);
  CHECK_EQ(root->find("q_proj.weight")->tensor->dtype.dtype, DType::BF16);
  CHECK_EQ(root->find("extra.slice")->tensor->storage_offset, int64_t{8});

  PickleValuePtr archive = run(real_pickle("tiny_params_archive.pth"));  // protocol 4, Parameters
  CHECK(archive->find("step")->kind == PickleValue::Kind::Int && archive->find("step")->i == 7);
  CHECK_EQ(archive->find("note")->str, std::string("training checkpoint"));
  CHECK(archive->find("state_dict")->find("norm.weight")->kind == PickleValue::Kind::Tensor);
}

SHOWO2_TEST(forbidden_globals_are_refused_by_name) {
  // GLOBAL 'os system' + REDUCE: the classic payload. Refused at the GLOBAL, before any REDUCE.
  CHECK_THROWS_MESSAGE(run("\x80\x02" "cos\nsystem\n" "X\x02\x00\x00\x00id" "\x85R."), UnsafePickle, "test.pkl",
                       "'os.system'");
  // The same through STACK_GLOBAL (protocol 4).
  CHECK_THROWS_MESSAGE(run("\x80\x04\x8c\x08" "builtins" "\x8c\x04" "eval" "\x93."), UnsafePickle, "'builtins.eval'");
  // Near misses of allow-listed names are not allowed.
  CHECK_THROWS_MESSAGE(run("\x80\x02" "ctorch._utils\n_rebuild_tensor\n."), UnsafePickle,
                       "'torch._utils._rebuild_tensor'");
  CHECK_THROWS_MESSAGE(run("\x80\x02" "ctorch\nload\n."), UnsafePickle, "'torch.load'");
  CHECK_THROWS_MESSAGE(run("\x80\x02" "ccollections\ndefaultdict\n."), UnsafePickle, "'collections.defaultdict'");
  CHECK_THROWS_MESSAGE(run("\x80\x02" "cnumpy.core.multiarray\n_reconstruct\n."), UnsafePickle, "numpy");
  // Allowed classes may not be called in ways torch.save never uses.
  CHECK_THROWS_MESSAGE(run("\x80\x02" "ctorch\nFloatStorage\n)R."), UnsafePickle, "torch.FloatStorage");
  // Object-constructing opcodes are refused outright.
  CHECK_THROWS_MESSAGE(run("\x80\x02(ios\nsystem\n."), UnsafePickle, "arbitrary object");       // INST
  CHECK_THROWS_MESSAGE(run("\x80\x02" "ccollections\nOrderedDict\n)\x81."), UnsafePickle, "0x81");  // NEWOBJ
  CHECK_THROWS_MESSAGE(run("\x80\x02(ccollections\nOrderedDict\no."), UnsafePickle, "arbitrary object");  // OBJ
  CHECK_THROWS_MESSAGE(run("\x80\x02\x82\x01."), UnsafePickle, "arbitrary object");              // EXT1
  // BUILD only on an OrderedDict.
  CHECK_THROWS_MESSAGE(run("\x80\x02}}b."), UnsafePickle, "sets the state of a dict");
  CHECK(run("\x80\x02" "ccollections\nOrderedDict\n)R}b.")->ordered_dict);
}

SHOWO2_TEST(malformed_pickles_are_corrupt_not_crashes) {
  CHECK_THROWS_MESSAGE(run(""), CorruptFile, "test.pkl", "truncated");
  CHECK_THROWS_MESSAGE(run("\x80\x02}"), CorruptFile, "without a STOP");
  CHECK_THROWS_MESSAGE(run("\x80\x02R."), CorruptFile, "stack underflow", "at byte 2");
  CHECK_THROWS_MESSAGE(run("\x80\x02."), CorruptFile, "0 values on the stack");
  CHECK_THROWS_MESSAGE(run("\x80\x02NN."), CorruptFile, "2 values on the stack");
  CHECK_THROWS_MESSAGE(run("\x80\x02h\x05."), CorruptFile, "memo index 5");
  CHECK_THROWS_MESSAGE(run("\x80\x02j\xff\xff\xff\xff."), CorruptFile, "memo index 4294967295");
  CHECK_THROWS_MESSAGE(run("\x80\x02\xff."), CorruptFile, "unknown opcode 0xff");
  CHECK_THROWS_MESSAGE(run("\x80\x02X\xff\xff\xff\x7f" "abc."), CorruptFile, "truncated");
  CHECK_THROWS_MESSAGE(run("\x80\x02\x8d\xff\xff\xff\xff\xff\xff\xff\xff."), CorruptFile, "truncated");
  CHECK_THROWS_MESSAGE(run("\x80\x02(N."), CorruptFile, "unclosed MARK");
  CHECK_THROWS_MESSAGE(run("\x80\x02" "1."), CorruptFile, "no MARK");
  CHECK_THROWS_MESSAGE(run("\x80\x02q\x00."), CorruptFile, "stack underflow");  // BINPUT on an empty stack
  // POP removes the MARK once its frame is empty (as CPython does); one more POP underflows.
  CHECK_THROWS_MESSAGE(run("\x80\x02(N" "0" "0" "0."), CorruptFile, "stack underflow", "at byte 6");
  CHECK_THROWS_MESSAGE(run("\x80\x02NNNs."), CorruptFile, "SETITEM on a None");
  CHECK_THROWS_MESSAGE(run("\x80\x02}(Nu."), CorruptFile, "odd number");
  CHECK_THROWS_MESSAGE(run("\x80\x02NNa."), CorruptFile, "APPEND on a None");
  CHECK_THROWS_MESSAGE(run("\x80\x02N)R."), CorruptFile, "not callable");
  CHECK_THROWS_MESSAGE(run("\x80\x02" "ccollections\nOrderedDict\nNR."), CorruptFile, "expected a tuple");
  CHECK_THROWS_MESSAGE(run("\x80\x02" "cos\nsys"), CorruptFile, "without a newline");
  CHECK_THROWS_MESSAGE(run("\x80\x02\x95\xff\x00\x00\x00\x00\x00\x00\x00N."), CorruptFile, "frame");
  CHECK_THROWS_MESSAGE(run("\x80\x02\x8b\xff\xff\xff\xff."), CorruptFile, "negative LONG4");
  CHECK_THROWS_MESSAGE(run("\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n)R."), CorruptFile, "0 arguments");
  CHECK_THROWS_MESSAGE(run("\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n(NNNNNNtR."), CorruptFile, "argument 0");
  CHECK_THROWS_MESSAGE(run("\x80\x02NQ."), CorruptFile, "persistent id");
  CHECK_THROWS_MESSAGE(run("\x80\x02(X\x07\x00\x00\x00storageNNNNtQ."), CorruptFile, "storage class");
  // Valid pickle that no state dict contains.
  CHECK_THROWS_MESSAGE(run("\x80\x02I1\n."), UnsupportedFormat, "protocol-0");
  CHECK_THROWS_MESSAGE(run("\x80\x04\x8f."), UnsupportedFormat, "a set");
  CHECK_THROWS_MESSAGE(run("\x80\x05\x97."), UnsupportedFormat, "out-of-band");
  CHECK_THROWS_MESSAGE(run("\x80\x06N."), UnsupportedFormat, "protocol 6");
  CHECK_THROWS_MESSAGE(run("\x80\x02(X\x03\x00\x00\x00keyNNNNtQ."), UnsupportedFormat, "'key'");
}

SHOWO2_TEST(scalars_and_containers_decode) {
  static const char kList[] =
      "\x80\x02(J\xfe\xff\xff\xff" "K\x07" "M\x00\x01" "\x8a\x01\xff" "\x8a\x00"
      "\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01" "\x8a\x09\xff\xff\xff\xff\xff\xff\xff\xff\xff"
      "G\x3f\xf8\x00\x00\x00\x00\x00\x00" "\x88\x89N" "C\x02hi" "U\x01s" "l.";
  PickleValuePtr v = run(kList);
  CHECK(v->kind == PickleValue::Kind::List);
  CHECK_EQ(v->items.size(), size_t{13});
  CHECK_EQ(v->items[0]->i, int64_t{-2});
  CHECK_EQ(v->items[1]->i, int64_t{7});
  CHECK_EQ(v->items[2]->i, int64_t{256});
  CHECK_EQ(v->items[3]->i, int64_t{-1});
  CHECK_EQ(v->items[4]->i, int64_t{0});
  CHECK(v->items[5]->kind == PickleValue::Kind::BigInt);  // 2^64
  CHECK(v->items[6]->kind == PickleValue::Kind::Int && v->items[6]->i == -1);  // 9-byte sign extension of -1
  CHECK_EQ(v->items[7]->f, 1.5);
  CHECK(v->items[8]->b && !v->items[9]->b);
  CHECK(v->items[10]->kind == PickleValue::Kind::None);
  CHECK(v->items[11]->kind == PickleValue::Kind::Bytes && v->items[11]->str == "hi");
  CHECK_EQ(v->items[12]->str, std::string("s"));
  // _codecs.encode(str, 'latin1') is how protocol 2 stores bytes.
  PickleValuePtr b = run("\x80\x02" "c_codecs\nencode\nX\x03\x00\x00\x00\xc3\xbf" "aX\x06\x00\x00\x00latin1\x86R.");
  CHECK(b->kind == PickleValue::Kind::Bytes && b->str == std::string("\xff" "a"));
  // Dict assignment to an existing key replaces the value, as in Python.
  PickleValuePtr d = run("\x80\x02}(X\x01\x00\x00\x00kK\x01X\x01\x00\x00\x00kK\x02u.");
  CHECK_EQ(d->dict.size(), size_t{1});
  CHECK_EQ(d->find("k")->i, int64_t{2});
}

SHOWO2_TEST(cycles_and_deep_nesting_are_refused) {
  // A list appended to itself (pickle's encoding of l = []; l.append(l)).
  CHECK_THROWS_MESSAGE(run("\x80\x02]q\x00h\x00" "a."), UnsupportedFormat, "inside itself");
  // A list mutated after being placed in a tuple: the only other way pickle closes a cycle.
  CHECK_THROWS_MESSAGE(run("\x80\x02]q\x00h\x00\x85q\x01" "0h\x00h\x01" "a."), UnsupportedFormat, "modified after");
  // 200 nested lists exceed the depth cap of 128.
  std::string deep = "\x80\x02";
  for (int i = 0; i < 200; ++i) deep += "]";
  for (int i = 0; i < 199; ++i) deep += "a";
  deep += ".";
  CHECK_THROWS_MESSAGE(run(deep), CorruptFile, "nested deeper than 128");
  CHECK_THROWS_MESSAGE(run("\x80\x02" + std::string(2000, '(')), CorruptFile, "nested MARKs");
  UnpickleLimits small;
  small.max_stack = 10;
  small.max_memo = 2;
  std::string many = "\x80\x02" + std::string(11, 'N');
  CHECK_THROWS_MESSAGE(unpickle(reinterpret_cast<const uint8_t*>(many.data()), many.size(), "t", small), CorruptFile,
                       "more than 10 values");
  std::string memo("\x80\x02Nq\x00q\x01q\x02.", 10);
  CHECK_THROWS_MESSAGE(unpickle(reinterpret_cast<const uint8_t*>(memo.data()), memo.size(), "t", small), CorruptFile,
                       "more than 2 memo entries");
  // Lists of lists grow the value count, not the stack: the value budget bounds them.
  small.max_values = 100;
  std::string lists = "\x80\x02]";
  for (int i = 0; i < 200; ++i) lists += "]a";
  lists += ".";
  CHECK_THROWS_MESSAGE(unpickle(reinterpret_cast<const uint8_t*>(lists.data()), lists.size(), "t", small),
                       CorruptFile, "more than 100 values");
}

// Found while writing test/fuzz/pickle_fuzz.cpp, and confirmed with it: a memoized value referenced again costs two
// bytes, but every dict key, storage key/location, _codecs.encode result and tensor size made a full copy of it, so
// memory grew with the square of the input (a 74 kB pickle allocated 256 MB of copies of one 32 kB dict key; 1 MB
// would ask for ~64 GB). Copies now count against UnpickleLimits::max_copied_bytes beyond the input's own size.
SHOWO2_TEST(copies_of_memoized_values_are_bounded) {
  using namespace std::string_literals;  // "..."s keeps embedded NUL bytes
  auto le32 = [](uint32_t v) { return std::string{char(v), char(v >> 8), char(v >> 16), char(v >> 24)}; };
  const std::string long_string = "X" + le32(32000) + std::string(32000, 'k') + "q\x00"s;  // memo 0
  // Many one-entry dicts whose key is the same memoized 32 kB string: {k: None} for 4 bytes each.
  std::string dicts = "\x80\x02"s + long_string + "(";
  for (int i = 0; i < 3000; ++i) dicts += "}h\x00Ns"s;
  dicts += "l.";
  CHECK_THROWS_MESSAGE(run(dicts), CorruptFile, "dict keys copy more than", "bytes in all");
  // Storage keys: the same memoized persistent id ('storage', FloatStorage, <32 kB key>, 'cpu', 1) loaded again and
  // again.
  std::string storages = "\x80\x02(X\x07\x00\x00\x00storagectorch\nFloatStorage\n"s + long_string +
                         "X\x03\x00\x00\x00"s + "cpuK\x01tq\x01("s;
  for (int i = 0; i < 3000; ++i) storages += "h\x01Q"s;
  storages += "l.";
  CHECK_THROWS_MESSAGE(run(storages), CorruptFile, "storage keys and locations copy more than");
  // _codecs.encode of one memoized string, over and over.
  std::string encodes = "\x80\x02"s + "c_codecs\nencode\nq\x02"s + long_string + "X\x06\x00\x00\x00latin1q\x03("s;
  for (int i = 0; i < 3000; ++i) encodes += "h\x02h\x00h\x03\x86R"s;
  encodes += "l.";
  CHECK_THROWS_MESSAGE(run(encodes), CorruptFile, "_codecs.encode results copy more than");
  // Under the limit the same shapes load: two dicts sharing a 5-byte key copy 10 bytes.
  UnpickleLimits small;
  small.max_copied_bytes = 100;
  const std::string few = "\x80\x02X\x05\x00\x00\x00"s + "abcdeq\x00" "0(}h\x00Ns}h\x00Nsl."s;
  CHECK_EQ(unpickle(reinterpret_cast<const uint8_t*>(few.data()), few.size(), "t", small)->items.size(), size_t{2});
  // A real state dict copies less than its own size, so it loads with no allowance beyond that.
  const std::string real = real_pickle("tiny_model.bin");
  small.max_copied_bytes = 0;
  CHECK(unpickle(reinterpret_cast<const uint8_t*>(real.data()), real.size(), "t", small)->kind ==
        PickleValue::Kind::Dict);
}

// Random byte edits of a real state-dict pickle: every outcome is a value or a showo2::Error (never a crash, hang or
// other exception). Run under -DSHOWO2_SANITIZE=ON to also catch out-of-bounds reads and leaks.
SHOWO2_TEST(random_pickle_mutations_load_or_fail_cleanly) {
  const std::string good = real_pickle("tiny_model.bin");
  const std::string good4 = real_pickle("tiny_params_archive.pth");
  std::mt19937 rng(2024);
  int loaded = 0, rejected = 0;
  for (int iter = 0; iter < test::fuzz_iterations(5000); ++iter) {
    std::string bytes = iter % 2 ? good : good4;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      size_t at = rng() % bytes.size();
      switch (rng() % 4) {
        case 0: bytes[at] = static_cast<char>(rng()); break;                          // overwrite
        case 1: bytes[at] = static_cast<char>(bytes[at] ^ (1 << (rng() % 8))); break;  // bit flip
        case 2: bytes.erase(at, 1 + rng() % 4); break;                                 // delete
        case 3: bytes.insert(at, 1, static_cast<char>(rng())); break;                  // insert
      }
      if (bytes.empty()) bytes = "x";
    }
    if (rng() % 10 == 0) bytes.resize(rng() % bytes.size());
    try {
      run(bytes);
      ++loaded;
    } catch (const Error&) {
      ++rejected;
    }
  }
  std::printf("    %d mutated pickles loaded, %d rejected with showo2::Error\n", loaded, rejected);
  CHECK(rejected > 0);
}

SHOWO2_TEST_MAIN()
