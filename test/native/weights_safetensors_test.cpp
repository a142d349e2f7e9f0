// safetensors reading, sharded indexes, writing, and the memory-mapped file underneath
// (native/core/weights/{safetensors,sharded_index,mapped_file}.h). Fixtures: tools/fixtures/make_weight_fixtures.py.
#include <cstring>
#include <filesystem>
#include <random>

#include "test_util.h"
#include "weights/safetensors.h"
#include "weights/sharded_index.h"
#include "weights_test_util.h"

using namespace showo2;
using namespace showo2::weights;
using showo2::test::scratch_dir;
using showo2::test::weights_fixture;

// ---- good files -----------------------------------------------------------------------------------------------------

SHOWO2_TEST(safetensors_fixture_loads_with_expected_values) {
  auto wf = open_weight_file(weights_fixture("tiny.safetensors"));
  CHECK_EQ(wf->format(), std::string("safetensors"));
  test::check_matches_expected(*wf, "tiny.safetensors");
  CHECK_EQ(wf->metadata().at("note"), std::string("showo2 fixture \xc3\xa9\xe4\xb8\xad"));
  // tensors() is sorted by name.
  for (size_t i = 1; i < wf->tensors().size(); ++i) CHECK(wf->tensors()[i - 1].name < wf->tensors()[i].name);
}

SHOWO2_TEST(safetensors_tensors_are_zero_copy_views_into_the_mapping) {
  auto file = SafetensorsFile::open(weights_fixture("tiny.safetensors"));
  const uint8_t* begin = file->mapping().data();
  const uint8_t* end = begin + file->mapping().size();
  for (const TensorRecord& rec : file->tensors()) {
    Tensor t = file->load(rec.name);
    if (t.numel() == 0) continue;
    const uint8_t* p = static_cast<const uint8_t*>(t.raw());
    CHECK(p >= begin && p + t.nbytes() <= end);
    CHECK(t.read_only());
    CHECK(reinterpret_cast<uintptr_t>(p) % dtype_size(t.dtype()) == 0);
  }
}

SHOWO2_TEST(tensors_outlive_their_weight_file) {
  Tensor t;
  std::vector<float> before;
  {
    auto wf = open_weight_file(weights_fixture("tiny.safetensors"));
    t = wf->load("model.embed.weight");
    before = t.to_f32_vector();
  }  // the WeightFile is gone; the tensor's Storage still holds the mapping
  CHECK(t.to_f32_vector() == before);
}

SHOWO2_TEST(sharded_safetensors_load_through_the_index) {
  std::string index = weights_fixture("sharded_safetensors/model.safetensors.index.json");
  auto wf = open_weight_file(index);
  CHECK_EQ(wf->path(), index);
  CHECK_EQ(wf->format(), std::string("safetensors"));
  test::check_matches_expected(*wf, "sharded_safetensors/model.safetensors.index.json");
  CHECK(wf->record("layers.0.weight").file.find("model-00001-of-00002.safetensors") != std::string::npos);
  CHECK(wf->record("head.weight").file.find("model-00002-of-00002.safetensors") != std::string::npos);
}

SHOWO2_TEST(format_is_chosen_by_content_not_name) {
  std::string renamed = scratch_dir() + "/weights.dat";
  std::filesystem::copy_file(weights_fixture("tiny.safetensors"), renamed,
                             std::filesystem::copy_options::overwrite_existing);
  auto wf = open_weight_file(renamed);
  CHECK_EQ(wf->format(), std::string("safetensors"));
  CHECK_EQ(wf->tensors().size(), size_t{8});
}

SHOWO2_TEST(misaligned_safetensors_data_is_copied) {
  // Header of odd length (no padding): the data section starts at an odd offset, so the F32 tensor must be copied.
  std::string header = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  CHECK((8 + header.size()) % 4 != 0);
  std::vector<uint8_t> bytes(8, 0);
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<uint8_t>(header.size() >> (8 * i));
  bytes.insert(bytes.end(), header.begin(), header.end());
  float values[2] = {1.5f, -2.25f};
  const uint8_t* vp = reinterpret_cast<const uint8_t*>(values);
  bytes.insert(bytes.end(), vp, vp + 8);
  std::string path = scratch_dir() + "/misaligned.safetensors";
  test::write_bytes(path, bytes);
  auto wf = open_weight_file(path);
  Tensor t = wf->load("w");
  CHECK(!t.read_only());  // an owned, aligned copy
  CHECK_EQ(reinterpret_cast<uintptr_t>(t.raw()) % 4, uintptr_t{0});
  CHECK(t.to_f32_vector() == std::vector<float>({1.5f, -2.25f}));
}

// ---- writing ----------------------------------------------------------------------------------------------------------

SHOWO2_TEST(save_safetensors_round_trips_every_dtype_and_layout) {
  Tensor base = Tensor::from_f32({3, 4}, test::random_vector(12, 7));
  Tensor transposed = base.transpose(0, 1);  // non-contiguous: written densely in logical order
  Tensor bf16 = Tensor::from_f32({3}, {1.0f, -2.0f, 0.5f}).to(DType::BF16);  // 6 bytes: odd count of 2-byte words
  Tensor f16 = Tensor::from_f32({2, 1}, {0.25f, 3.0f}).to(DType::F16);
  Tensor ids = Tensor::empty({3}, DType::I64);
  int64_t id_values[3] = {-1, 0, int64_t{1} << 40};
  std::memcpy(ids.mutable_raw(), id_values, sizeof(id_values));
  Tensor flags = Tensor::empty({2}, DType::Bool);
  uint8_t flag_values[2] = {1, 0};
  std::memcpy(flags.mutable_raw(), flag_values, 2);
  Tensor scalar = Tensor::from_f32({}, {4.0f});
  Tensor empty = Tensor::empty({0, 5}, DType::F32);

  std::string path = scratch_dir() + "/roundtrip.safetensors";
  std::vector<std::pair<std::string, Tensor>> tensors = {
      {"bf16", bf16}, {"t", transposed}, {"f16", f16}, {"ids", ids}, {"flags", flags}, {"scalar", scalar},
      {"empty", empty}};
  save_safetensors(path, tensors, {{"format", "pt"}, {"quote\"key", "line\nvalue"}});

  auto wf = SafetensorsFile::open(path);
  CHECK_EQ(wf->tensors().size(), tensors.size());
  CHECK_EQ(wf->metadata().at("quote\"key"), std::string("line\nvalue"));
  for (const auto& [name, t] : tensors) {
    Tensor back = wf->load(name);
    CHECK_EQ(back.dtype(), t.dtype());
    CHECK(back.shape() == t.shape());
    CHECK(test::tensor_values(back) == test::tensor_values(t));
    // Every tensor starts aligned to its element size, so every load is zero-copy.
    if (back.numel() > 0) CHECK(back.read_only());
  }
  // The data section starts 8-byte aligned (header padded with spaces).
  std::vector<uint8_t> bytes = test::read_bytes(path);
  uint64_t n = load_le64(bytes.data());
  CHECK_EQ((8 + n) % 8, uint64_t{0});
  CHECK_EQ(bytes[8 + n - 1] == ' ' || bytes[8 + n - 1] == '}', true);
}

SHOWO2_TEST(save_safetensors_is_atomic_and_validates_names) {
  std::string dir = scratch_dir() + "/atomic";
  std::filesystem::create_directories(dir);
  Tensor a = Tensor::from_f32({2}, {1, 2});
  CHECK_THROWS_MESSAGE(save_safetensors(dir + "/dup.safetensors", {{"a", a}, {"a", a}}), InvalidArgument,
                       "'a' appears twice");
  CHECK_THROWS_MESSAGE(save_safetensors(dir + "/meta.safetensors", {{"__metadata__", a}}), InvalidArgument,
                       "reserved");
  CHECK_THROWS_MESSAGE(save_safetensors(dir + "/undef.safetensors", {{"u", Tensor()}}), InvalidArgument, "'u'");
  CHECK_THROWS_CODE(save_safetensors(dir + "/no/such/folder/x.safetensors", {{"a", a}}), FileRead);

  // A producer that fails midway leaves neither the destination nor a temporary file behind.
  std::string target = dir + "/partial.safetensors";
  CHECK_THROWS_CODE(write_safetensors(target, {{"a", DType::F32, {2}}, {"b", DType::F32, {2}}}, {},
                                      [&](size_t i) -> Tensor {
                                        if (i == 1) fail(ErrorCode::Cancelled, "stop");
                                        return a;
                                      }),
                    Cancelled);
  // And a producer returning the wrong shape is caught, naming the tensor.
  CHECK_THROWS_MESSAGE(write_safetensors(target, {{"a", DType::F32, {3}}}, {}, [&](size_t) { return a; }),
                       ShapeMismatch, "'a'");
  CHECK(std::filesystem::is_empty(dir));

  // Overwriting an existing file replaces it whole.
  save_safetensors(target, {{"a", a}});
  save_safetensors(target, {{"b", a}});
  auto wf = SafetensorsFile::open(target);
  CHECK(wf->contains("b") && !wf->contains("a"));
}

// ---- bad files --------------------------------------------------------------------------------------------------------

SHOWO2_TEST(bad_safetensors_files_give_typed_errors_naming_the_file) {
  auto open = [](const char* rel) { return open_weight_file(weights_fixture(rel)); };
  CHECK_THROWS_MESSAGE(open("bad/truncated.safetensors"), CorruptFile, "bad/truncated.safetensors");
  CHECK_THROWS_MESSAGE(open("bad/offsets_past_eof.safetensors"), CorruptFile, "bad/offsets_past_eof.safetensors",
                       "tensor 'w'", "past the end of the file");
  CHECK_THROWS_MESSAGE(open("bad/size_mismatch.safetensors"), CorruptFile, "bad/size_mismatch.safetensors",
                       "tensor 'w'", "hold 24 bytes", "needs 16");
  CHECK_THROWS_MESSAGE(open("bad/overlap.safetensors"), CorruptFile, "bad/overlap.safetensors", "'a' and 'b' overlap");
  CHECK_THROWS_MESSAGE(open("bad/huge_header.safetensors"), CorruptFile, "bad/huge_header.safetensors",
                       "header length 1099511627776");
  CHECK_THROWS_MESSAGE(open("bad/metadata_not_string.safetensors"), CorruptFile,
                       "bad/metadata_not_string.safetensors", "'step'");
  CHECK_THROWS_MESSAGE(open("bad/unknown_dtype.safetensors"), UnsupportedDtype, "bad/unknown_dtype.safetensors",
                       "tensor 'w'", "F8_E4M3");
}

SHOWO2_TEST(hostile_safetensors_headers_are_rejected) {
  auto make = [](const std::string& header, size_t data_bytes) {
    std::vector<uint8_t> bytes(8);
    for (int i = 0; i < 8; ++i) bytes[i] = static_cast<uint8_t>(header.size() >> (8 * i));
    bytes.insert(bytes.end(), header.begin(), header.end());
    bytes.resize(bytes.size() + data_bytes, 0);
    std::string path = scratch_dir() + "/hostile.safetensors";
    test::write_bytes(path, bytes);
    return path;
  };
  const char* f32_6 = R"({"w":{"dtype":"F32","shape":[6],"data_offsets":[0,24]}})";
  CHECK(SafetensorsFile::open(make(f32_6, 24))->contains("w"));
  CHECK_THROWS_MESSAGE(SafetensorsFile::open(make(R"({"w":{"dtype":"F32","shape":[6],"data_offsets":[8,4]}})", 24)),
                       CorruptFile, "end before begin");
  CHECK_THROWS_MESSAGE(SafetensorsFile::open(make(R"({"w":{"dtype":"F32","shape":[-6],"data_offsets":[0,24]}})", 24)),
                       CorruptFile, "non-negative");
  CHECK_THROWS_MESSAGE(
      SafetensorsFile::open(make(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,24]}})", 24)),
      CorruptFile, "overflows");
  CHECK_THROWS_MESSAGE(
      SafetensorsFile::open(make(R"({"w":{"dtype":"F32","shape":[6],"data_offsets":[0,18446744073709551640]}})", 24)),
      CorruptFile, "data_offsets[1]");
  CHECK_THROWS_MESSAGE(SafetensorsFile::open(make(R"({"w":{"dtype":"F32","shape":[6]}})", 24)), CorruptFile,
                       "data_offsets");
  CHECK_THROWS_MESSAGE(SafetensorsFile::open(make(R"({"w":{"dtype":"F32","shape":[6],"data_offsets":[0]}})", 24)),
                       CorruptFile, "[begin, end]");
  CHECK_THROWS_MESSAGE(SafetensorsFile::open(make(R"([1,2])", 0)), CorruptFile, "expected an object");
  CHECK_THROWS_MESSAGE(SafetensorsFile::open(make(R"({"w":{"dtype":"F32","shape":[6],"data_offsets":[0,24]},)"
                                                  R"("w":{"dtype":"F32","shape":[6],"data_offsets":[0,24]}})", 24)),
                       CorruptFile, "duplicate key \"w\"");
  CHECK_THROWS_MESSAGE(SafetensorsFile::open(make("{\"w\":1", 0)), CorruptFile, "invalid JSON at byte");
  // Overlap detection is by byte ranges, not by header order.
  CHECK_THROWS_MESSAGE(SafetensorsFile::open(make(R"({"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},)"
                                                  R"("a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 16)),
                       CorruptFile, "overlap");
  // Empty tensors occupy no bytes and never overlap.
  CHECK(SafetensorsFile::open(make(R"({"e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},)"
                                   R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8))->contains("e"));
}

SHOWO2_TEST(random_header_mutations_load_or_fail_cleanly) {
  std::vector<uint8_t> good = test::read_bytes(weights_fixture("tiny.safetensors"));
  uint64_t header_end = 8 + load_le64(good.data());
  std::mt19937 rng(1234);
  std::string path = scratch_dir() + "/mutated.safetensors";
  int loaded = 0, rejected = 0;
  for (int iter = 0; iter < test::fuzz_iterations(400); ++iter) {
    std::vector<uint8_t> bytes = good;
    int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits; ++e) {
      size_t at = rng() % header_end;  // mostly the length and the JSON header
      bytes[at] = static_cast<uint8_t>(rng() % 2 ? rng() : bytes[at] ^ (1u << (rng() % 8)));
    }
    if (rng() % 8 == 0) bytes.resize(rng() % bytes.size());
    if (test::loads_or_is_rejected(path, bytes)) ++loaded;
    else ++rejected;
  }
  std::printf("    %d mutated files loaded, %d rejected with showo2::Error\n", loaded, rejected);
  CHECK(rejected > 0);
}

// ---- shard indexes ----------------------------------------------------------------------------------------------------

SHOWO2_TEST(bad_shard_indexes_are_rejected) {
  CHECK_THROWS_MESSAGE(open_weight_file(weights_fixture("bad/shard_escape/model.safetensors.index.json")), CorruptFile,
                       "bad/shard_escape/model.safetensors.index.json", "../../tiny.safetensors",
                       "escapes the index folder");
  CHECK_THROWS_MESSAGE(open_weight_file(weights_fixture("bad/shard_missing_tensor/model.safetensors.index.json")),
                       CorruptFile, "model.safetensors.index.json", "tensor 'b'", "does not hold it");

  const std::string index = "/models/x/model.safetensors.index.json";
  CHECK_EQ(resolve_shard_path(index, "model-00001.safetensors"), std::string("/models/x/model-00001.safetensors"));
  CHECK_EQ(resolve_shard_path("model.safetensors.index.json", "a.safetensors"), std::string("./a.safetensors"));
  CHECK_EQ(resolve_shard_path(index, "sub/a..b.safetensors"), std::string("/models/x/sub/a..b.safetensors"));
  CHECK_THROWS_MESSAGE(resolve_shard_path(index, "/etc/passwd"), CorruptFile, index, "absolute");
  CHECK_THROWS_MESSAGE(resolve_shard_path(index, "\\\\server\\share"), CorruptFile, "absolute");
  CHECK_THROWS_MESSAGE(resolve_shard_path(index, "C:\\x.safetensors"), CorruptFile, "drive letter");
  CHECK_THROWS_MESSAGE(resolve_shard_path(index, "sub/../../x"), CorruptFile, "escapes");
  CHECK_THROWS_MESSAGE(resolve_shard_path(index, "sub\\..\\x"), CorruptFile, "escapes");
  CHECK_THROWS_MESSAGE(resolve_shard_path(index, ".."), CorruptFile, "escapes");
  CHECK_THROWS_MESSAGE(resolve_shard_path(index, ""), CorruptFile, "empty");

  std::string dir = scratch_dir() + "/index";
  std::filesystem::create_directories(dir);
  auto write_index = [&](const std::string& text) {
    test::write_bytes(dir + "/model.safetensors.index.json", std::vector<uint8_t>(text.begin(), text.end()));
    return dir + "/model.safetensors.index.json";
  };
  CHECK_THROWS_MESSAGE(open_weight_file(write_index(R"({"metadata":{}})")), CorruptFile, "weight_map");
  CHECK_THROWS_MESSAGE(open_weight_file(write_index(R"({"weight_map":{"a":3}})")), CorruptFile, "'a'");
  CHECK_THROWS_MESSAGE(open_weight_file(write_index(R"({"weight_map":{"a":"missing.safetensors"}})")), FileNotFound,
                       "missing.safetensors", "shard listed in " + dir + "/model.safetensors.index.json");
  // An index may not point at another index (shards are single files).
  std::filesystem::copy_file(weights_fixture("sharded_safetensors/model.safetensors.index.json"),
                             dir + "/inner.index.json");
  CHECK_THROWS_CODE(open_weight_file(write_index(R"({"weight_map":{"a":"inner.index.json"}})")), UnsupportedFormat);
}

// ---- the mapped file --------------------------------------------------------------------------------------------------

SHOWO2_TEST(missing_empty_and_directory_paths_give_clear_errors) {
  std::string dir = scratch_dir();
  CHECK_THROWS_MESSAGE(open_weight_file(dir + "/nope.safetensors"), FileNotFound, dir + "/nope.safetensors");
  CHECK_THROWS_MESSAGE(open_weight_file(dir + "/nope/x.bin"), FileNotFound, "nope/x.bin");
  CHECK_THROWS_MESSAGE(open_weight_file(dir), FileRead, dir, "is a directory");
  std::string empty = dir + "/empty.safetensors";
  test::write_bytes(empty, {});
  CHECK_THROWS_MESSAGE(open_weight_file(empty), CorruptFile, empty, "empty");
  std::string junk = dir + "/junk.weights";
  test::write_bytes(junk, {'h', 'e', 'l', 'l', 'o'});
  CHECK_THROWS_MESSAGE(open_weight_file(junk), UnsupportedFormat, junk, "unrecognised");
  std::string tiny = dir + "/tiny.safetensors";
  test::write_bytes(tiny, {1, 2, 3});
  CHECK_THROWS_MESSAGE(open_weight_file(tiny), CorruptFile, tiny, "too small");
}

SHOWO2_TEST(mapped_file_accessors_are_bounds_checked) {
  auto file = MappedFile::open(weights_fixture("tiny.safetensors"));
  uint64_t size = file->size();
  CHECK(file->contains(0, size) && file->contains(size, 0) && !file->contains(size, 1) && !file->contains(1, size));
  CHECK(!file->contains(UINT64_MAX, 2) && !file->contains(2, UINT64_MAX));
  CHECK_EQ(file->u64(0, "len"), load_le64(file->data()));
  CHECK_THROWS_MESSAGE(file->span(size - 4, 8, "tail"), CorruptFile, "tiny.safetensors", "tail", "outside the file");
  CHECK_THROWS_CODE(file->u32(UINT64_MAX - 1, "x"), CorruptFile);
  CHECK_THROWS_CODE(file->borrow(8, size, "x"), CorruptFile);
  auto storage = file->borrow(8, 16, "x");
  CHECK(storage->read_only() && storage->data() == file->data() + 8 && storage->nbytes() == 16);
}

SHOWO2_TEST(missing_tensors_are_reported_by_name) {
  auto wf = open_weight_file(weights_fixture("tiny.safetensors"));
  CHECK(!wf->contains("nope"));
  CHECK_THROWS_MESSAGE(wf->load("nope"), TensorNotFound, "'nope'", "tiny.safetensors");
  CHECK_THROWS_MESSAGE(wf->record("nope"), TensorNotFound, "'nope'");
  auto sharded = open_weight_file(weights_fixture("sharded_safetensors/model.safetensors.index.json"));
  CHECK_THROWS_MESSAGE(sharded->load("nope"), TensorNotFound, "'nope'", "model.safetensors.index.json");
}

SHOWO2_TEST_MAIN()
