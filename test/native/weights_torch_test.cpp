// torch.save checkpoints: the zip container, state-dict discovery, tied storages, strided views, sharding, and the
// conversion to safetensors (native/core/weights/{torch_zip,torch_checkpoint}.h, weight_file.h).
// Fixtures: tools/fixtures/make_weight_fixtures.py.
#include <cstring>
#include <random>

#include "test_util.h"
#include "weights/safetensors.h"
#include "weights/torch_checkpoint.h"
#include "weights_test_util.h"

using namespace showo2;
using namespace showo2::weights;
using showo2::test::scratch_dir;
using showo2::test::weights_fixture;

// ---- good files -----------------------------------------------------------------------------------------------------

SHOWO2_TEST(torch_fixtures_load_with_expected_values) {
  for (const char* rel : {"tiny_model.bin", "tiny_model_zip64.bin", "tiny_model_unaligned.bin",
                          "tiny_params_archive.pth", "sharded_torch/pytorch_model.bin.index.json"}) {
    auto wf = open_weight_file(weights_fixture(rel));
    CHECK_EQ(wf->format(), std::string("torch"));
    test::check_matches_expected(*wf, rel);
  }
}

SHOWO2_TEST(archive_prefix_is_read_from_the_file) {
  auto named = TorchCheckpoint::open(weights_fixture("tiny_model.bin"));
  CHECK_EQ(TorchZipArchive(MappedFile::open(weights_fixture("tiny_model.bin"))).prefix(), std::string("tiny_model"));
  // Saved to a file object: torch names the folder "archive".
  CHECK_EQ(TorchZipArchive(MappedFile::open(weights_fixture("tiny_params_archive.pth"))).prefix(),
           std::string("archive"));
}

SHOWO2_TEST(tied_weights_share_one_storage) {
  for (const char* rel : {"tiny_model.bin", "tiny_model_unaligned.bin", "sharded_torch/pytorch_model.bin.index.json"}) {
    auto wf = open_weight_file(weights_fixture(rel));
    for (const auto& pair : test::expected_for(rel).find("shared")->items()) {
      Tensor a = wf->load(pair.items()[0].as_string());
      Tensor b = wf->load(pair.items()[1].as_string());
      CHECK(a.storage().get() == b.storage().get());  // one Storage: the bytes are loaded (or copied) once
    }
    Tensor embed = wf->load("embed_tokens.weight");
    Tensor head = wf->load("lm_head.weight");
    CHECK(embed.raw() == head.raw());
    // Loading again hands out the same storage, not a second copy.
    CHECK(wf->load("embed_tokens.weight").storage().get() == embed.storage().get());
  }
  auto ckpt = TorchCheckpoint::open(weights_fixture("tiny_model.bin"));
  CHECK_EQ(ckpt->storage_key("embed_tokens.weight"), ckpt->storage_key("lm_head.weight"));
  CHECK(ckpt->storage_key("embed_tokens.weight") != ckpt->storage_key("norm.weight"));
}

SHOWO2_TEST(aligned_storages_are_zero_copy_views_into_the_mapping) {
  auto ckpt = TorchCheckpoint::open(weights_fixture("tiny_model.bin"));
  const uint8_t* begin = ckpt->mapping().data();
  const uint8_t* end = begin + ckpt->mapping().size();
  for (const TensorRecord& rec : ckpt->tensors()) {
    Tensor t = ckpt->load(rec.name);
    const uint8_t* p = static_cast<const uint8_t*>(t.raw());
    CHECK(t.read_only());
    CHECK(p >= begin && p < end);
    CHECK(t.storage()->data() + t.storage()->nbytes() <= end);
    CHECK_EQ(reinterpret_cast<uintptr_t>(t.storage()->data()) % 64, uintptr_t{0});  // torch aligns storages to 64
  }
}

SHOWO2_TEST(unaligned_storages_are_copied_once) {
  auto ckpt = TorchCheckpoint::open(weights_fixture("tiny_model_unaligned.bin"));
  Tensor embed = ckpt->load("embed_tokens.weight");
  CHECK(!embed.read_only());  // an owned copy
  CHECK_EQ(reinterpret_cast<uintptr_t>(embed.raw()) % 4, uintptr_t{0});
  CHECK(ckpt->load("lm_head.weight").storage().get() == embed.storage().get());
}

SHOWO2_TEST(views_keep_their_storage_offset_and_strides) {
  auto wf = open_weight_file(weights_fixture("tiny_model.bin"));
  Tensor slice = wf->load("extra.slice");         // base[2:5] of a [6, 4] tensor
  Tensor transposed = wf->load("extra.transposed");  // base.t()
  CHECK(slice.shape() == Shape({3, 4}));
  CHECK(slice.strides() == Shape({4, 1}));
  CHECK_EQ(slice.byte_offset(), size_t{8 * 4});
  CHECK(transposed.shape() == Shape({4, 6}));
  CHECK(transposed.strides() == Shape({1, 4}));
  CHECK(!transposed.is_contiguous());
  CHECK_EQ(slice.storage()->nbytes(), size_t{24 * 4});
  CHECK(slice.to_f32_vector()[0] == 1.0f);              // base[2][0] = 8 / 8
  CHECK(transposed.contiguous().to_f32_vector()[1] == 0.5f);  // base[1][0] = 4 / 8
}

SHOWO2_TEST(tensors_outlive_the_checkpoint) {
  Tensor t;
  {
    auto wf = open_weight_file(weights_fixture("tiny_model.bin"));
    t = wf->load("norm.weight");
  }
  CHECK_EQ(t.to_f32_vector().size(), size_t{8});
}

// ---- conversion -------------------------------------------------------------------------------------------------------

SHOWO2_TEST(convert_to_safetensors_round_trips) {
  std::string src = weights_fixture("tiny_model.bin");
  std::string dst = scratch_dir() + "/tiny_model.safetensors";  // SHOWO2_KEEP_TEST_FILES=1 keeps it for Python
  auto in = open_weight_file(src);
  CHECK_EQ(convert_to_safetensors(src, dst), in->tensors().size());
  auto out = SafetensorsFile::open(dst);
  CHECK_EQ(out->metadata().at("format"), std::string("pt"));  // transformers requires it
  test::check_matches_expected(*out, "tiny_model.bin");
  // Tied tensors are written once per name (safetensors has no aliasing) and still read back equal.
  CHECK(out->load("embed_tokens.weight").raw() != out->load("lm_head.weight").raw());
  for (const TensorRecord& rec : out->tensors()) CHECK(out->load(rec.name).read_only());  // aligned: zero-copy
}

SHOWO2_TEST(convert_to_safetensors_casts_float_tensors_only) {
  std::string src = weights_fixture("sharded_torch/pytorch_model.bin.index.json");
  std::string dst = scratch_dir() + "/tiny_model_bf16.safetensors";
  DType bf16 = DType::BF16;
  ConvertOptions options;
  options.dtype = &bf16;
  convert_to_safetensors(src, dst, options);
  auto in = open_weight_file(src);
  auto out = open_weight_file(dst);
  CHECK_EQ(out->tensors().size(), in->tensors().size());
  for (const TensorRecord& rec : in->tensors()) {
    Tensor original = in->load(rec.name);
    Tensor converted = out->load(rec.name);
    CHECK(converted.shape() == original.shape());
    if (is_float_dtype(rec.dtype)) {
      CHECK_EQ(converted.dtype(), DType::BF16);
      CHECK(converted.to_f32_vector() == original.to(DType::BF16).to_f32_vector());
    } else {
      CHECK_EQ(converted.dtype(), rec.dtype);  // I64, BOOL and F64 stay as stored
      CHECK(test::tensor_values(converted) == test::tensor_values(original));
    }
  }
  DType i64 = DType::I64;
  options.dtype = &i64;
  CHECK_THROWS_CODE(convert_to_safetensors(src, dst, options), InvalidArgument);
}

// ---- bad files --------------------------------------------------------------------------------------------------------

SHOWO2_TEST(bad_torch_files_give_typed_errors_naming_the_file) {
  auto open = [](const char* rel) { return open_weight_file(weights_fixture(rel)); };
  // The pickle asks for posix.system (os.system on Linux): refused before anything could be called.
  CHECK_THROWS_MESSAGE(open("bad/forbidden_global.bin"), UnsafePickle, "bad/forbidden_global.bin",
                       "forbidden_global/data.pkl", "'posix.system'");
  CHECK_THROWS_MESSAGE(open("bad/entry_outside_file.bin"), CorruptFile, "bad/entry_outside_file.bin",
                       "'tiny_model/data/0'", "points outside the file");
  CHECK_THROWS_MESSAGE(open("bad/entry_overlaps_cd.bin"), CorruptFile, "bad/entry_overlaps_cd.bin",
                       "'tiny_model/data/0'", "overlaps the central directory");
  CHECK_THROWS_MESSAGE(open("bad/truncated.bin"), CorruptFile, "bad/truncated.bin", "end-of-central-directory");
  CHECK_THROWS_MESSAGE(open("bad/compressed.bin"), UnsupportedFormat, "bad/compressed.bin",
                       "entry 'compressed/", "compression method 8");
  CHECK_THROWS_MESSAGE(open("bad/storage_size_mismatch.bin"), CorruptFile, "bad/storage_size_mismatch.bin",
                       "tensor 'embed_tokens.weight'", "declares 129 elements", "holds 512 bytes");
  CHECK_THROWS_MESSAGE(open("bad/tensor_out_of_bounds.bin"), CorruptFile, "bad/tensor_out_of_bounds.bin",
                       "tensor 'extra.slice'", "storage_offset 20", "does not fit in its storage of 24 elements");
  CHECK_THROWS_MESSAGE(open("bad/legacy_format.bin"), UnsupportedFormat, "bad/legacy_format.bin", "legacy",
                       "Re-save");
  CHECK_THROWS_MESSAGE(open("bad/not_a_state_dict.bin"), UnsupportedFormat, "bad/not_a_state_dict.bin",
                       "no state dict", "a list");
  // Named like a torch file but holding neither a zip nor safetensors.
  std::string fake = scratch_dir() + "/fake.bin";
  test::write_bytes(fake, {'n', 'o', 't', ' ', 'a', ' ', 'z', 'i', 'p'});
  CHECK_THROWS_MESSAGE(open_weight_file(fake), CorruptFile, fake, "zip signature");
  CHECK_THROWS_MESSAGE(TorchCheckpoint::open(weights_fixture("tiny.safetensors")), CorruptFile, "zip signature");
}

// Found with test/fuzz/torch_checkpoint_fuzz.cpp: a storage entry flagged as encrypted passed open(); load() then
// threw ERR_UNSUPPORTED_FORMAT (an unaligned storage, copied through stored_data) or returned the encrypted bytes as
// the tensor (an aligned one, borrowed from the mapping). open() now refuses it, naming the entry.
SHOWO2_TEST(encrypted_storage_entries_are_refused_at_open) {
  for (const char* fixture : {"tiny_model.bin", "tiny_model_unaligned.bin"}) {
    std::vector<uint8_t> bytes = test::read_bytes(weights_fixture(fixture));
    TorchZipArchive zip(MappedFile::open(weights_fixture(fixture)));
    const std::string name = zip.prefix() + "/data/0";
    // Set bit 0 (encrypted) of the general-purpose flags (offset 8) in the entry's central directory record.
    size_t flags_at = 0;
    for (size_t i = 0; i + 46 + name.size() <= bytes.size(); ++i)
      if (load_le32(&bytes[i]) == 0x02014b50 && load_le16(&bytes[i + 28]) == name.size() &&
          std::memcmp(&bytes[i + 46], name.data(), name.size()) == 0)
        flags_at = i + 8;
    CHECK(flags_at != 0);
    bytes[flags_at] |= 1;
    const std::string path = scratch_dir() + "/encrypted_" + fixture;
    test::write_bytes(path, bytes);
    CHECK_THROWS_MESSAGE(open_weight_file(path), UnsupportedFormat, path, "'" + name + "' is encrypted");
  }
}

SHOWO2_TEST(missing_torch_tensor_is_reported_by_name) {
  auto wf = open_weight_file(weights_fixture("tiny_model.bin"));
  CHECK_THROWS_MESSAGE(wf->load("model.nope"), TensorNotFound, "'model.nope'", "tiny_model.bin");
}

// Random edits anywhere in a torch zip (central directory, local headers, pickle, data): every outcome is a loaded
// file or a showo2::Error, never a crash or an out-of-bounds read (run under -DSHOWO2_SANITIZE=ON to check).
SHOWO2_TEST(random_zip_mutations_load_or_fail_cleanly) {
  std::vector<uint8_t> good = test::read_bytes(weights_fixture("tiny_model.bin"));
  std::mt19937 rng(99);
  std::string path = scratch_dir() + "/mutated.bin";
  int loaded = 0, rejected = 0;
  for (int iter = 0; iter < test::fuzz_iterations(600); ++iter) {
    std::vector<uint8_t> bytes = good;
    // Half the edits target the last 1 KB (central directory and EOCD), where structure lives.
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      size_t at = rng() % 2 ? bytes.size() - 1 - rng() % std::min<size_t>(1024, bytes.size()) : rng() % bytes.size();
      bytes[at] = static_cast<uint8_t>(rng() % 2 ? rng() : bytes[at] ^ (1u << (rng() % 8)));
    }
    if (rng() % 10 == 0) bytes.resize(rng() % bytes.size());
    if (test::loads_or_is_rejected(path, bytes)) ++loaded;
    else ++rejected;
  }
  std::printf("    %d mutated archives loaded, %d rejected with showo2::Error\n", loaded, rejected);
  CHECK(rejected > 0);
}

// Random edits of data.pkl inside a valid archive (CRC fixed up, so the edits reach the unpickler and the state-dict
// checks: sizes, strides, offsets, storage keys and classes). Same-length edits keep the zip structure intact.
SHOWO2_TEST(random_pickle_edits_inside_a_checkpoint_load_or_fail_cleanly) {
  const std::string fixture = weights_fixture("tiny_model.bin");
  std::vector<uint8_t> good = test::read_bytes(fixture);
  TorchZipArchive zip(MappedFile::open(fixture));
  const ZipEntry& pkl = *zip.find("data.pkl");
  // The central directory record of data.pkl: its CRC field sits 16 bytes in.
  size_t crc_at = 0;
  for (size_t i = 0; i + 46 + pkl.name.size() <= good.size(); ++i)
    if (load_le32(&good[i]) == 0x02014b50 && std::memcmp(&good[i + 46], pkl.name.data(), pkl.name.size()) == 0)
      crc_at = i + 16;
  CHECK(crc_at != 0);
  std::mt19937 rng(7);
  std::string path = scratch_dir() + "/pickle_edit.bin";
  int loaded = 0, rejected = 0;
  for (int iter = 0; iter < test::fuzz_iterations(3000); ++iter) {
    std::vector<uint8_t> bytes = good;
    uint8_t* p = bytes.data() + pkl.data_offset;
    int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits; ++e) {
      size_t at = rng() % pkl.size;
      p[at] = static_cast<uint8_t>(rng() % 3 == 0 ? rng() : p[at] ^ (1u << (rng() % 8)));
    }
    uint32_t crc = crc32_ieee(p, static_cast<size_t>(pkl.size));
    for (int k = 0; k < 4; ++k) bytes[crc_at + k] = static_cast<uint8_t>(crc >> (8 * k));
    if (test::loads_or_is_rejected(path, bytes)) ++loaded;
    else ++rejected;
  }
  std::printf("    %d edited checkpoints loaded, %d rejected with showo2::Error\n", loaded, rejected);
  CHECK(rejected > 0 && loaded > 0);
}

SHOWO2_TEST_MAIN()
