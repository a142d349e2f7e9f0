// Qwen2Model (native/core/qwen2.cpp) on the CPU backend against transformers' Qwen2ForCausalLM in fp32
// (tools/fixtures/make_qwen2_fixtures.py): two tiny random-weight models with BF16 weights and the HF key layout, one
// tied with head_dim = hidden / heads and one untied with head_dim 32 != 64 / 4. Checked: the final-normed hidden
// states and logits of a batch of 2, the omni mask (one bidirectional block per sample), KV-cached decoding (prefill
// then token by token, prefill in chunks, a block fed in its own chunk) against the full forward, greedy decoding
// against transformers' full-recompute loop, truncate() and cancellation rollback, and the typed errors.
//
// Tolerance. Both sides use the same BF16-rounded weights, the port upcast in registers and transformers upcast
// once; both compute in fp32. transformers' own fp32 logits differ from its float64 run by ~6e-7 of max |logit|
// (printed by the generator), and the port's summation order differs from PyTorch's, so we expect errors of the same
// order. We require (the brief's bound, ~100x the fp32 noise, yet 1e4 below the 1e-2..4 changes the omni blocks make):
//   * every element |out - ref| <= 1e-4 * max|ref|, and
//   * relative L2 error ||out - ref|| / ||ref|| <= 1e-4.
// Measured at the time of writing: 6e-7..1.6e-6 of max|ref| and relative L2 <= 1e-6 on every comparison (printed).
// Cached vs uncached runs of the port itself differ only by summation order (GEMV vs packed GEMM, attention tiles):
// required <= 1e-5 of max|ref|, measured ~8e-7.
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "config_json.h"
#include "cpu/cpu_backend.h"
#include "qwen2.h"
#include "tensor.h"
#include "test_util.h"
#include "text_sampler.h"
#include "weight_binder.h"
#include "weights/weight_file.h"

using namespace showo2;

namespace {

constexpr double kRelToMax = 1e-4;       // vs transformers (see the header)
constexpr double kMaxRelL2 = 1e-4;       // vs transformers
constexpr double kCachedRelToMax = 1e-5;  // cached vs uncached port

std::string fixture(const std::string& name) { return std::string(SHOWO2_FIXTURES_DIR) + "/qwen2/" + name; }

void require_fixtures(const std::string& model) {
  for (const std::string& f : {model + ".safetensors", model + "_config.json", model + "_io.safetensors"})
    if (!std::ifstream(fixture(f)).good())
      test::skip_test("test/fixtures/qwen2/" + f + " not present (tools/fixtures/make_qwen2_fixtures.py)");
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

Qwen2Config fixture_config(const std::string& model) {
  const std::string name = model + "_config.json";
  const weights::JsonValue root = parse_config_json(read_text(fixture(name)), name);
  return Qwen2Config::from_config(ConfigReader(root, name));
}

// A model loaded from a weight file, as Showo2 will do it: bind, load_all (checks every key first), finish_loading.
struct LoadedModel {
  cpu::CpuBackend backend{2};
  std::unique_ptr<Qwen2Model> model;
  LoadedModel(const Qwen2Config& config, const std::string& weights_path, const std::string& prefix = "") {
    model = std::make_unique<Qwen2Model>(config, backend);
    WeightBinder binder;
    model->bind_weights(binder, prefix);
    binder.load_all(*weights::open_weight_file(weights_path), backend, "Qwen2", "hidden_size, num_hidden_layers, ...");
    model->finish_loading();
  }
};

struct Io {
  std::unique_ptr<weights::WeightFile> file;
  explicit Io(const std::string& model) : file(weights::open_weight_file(fixture(model + "_io.safetensors"))) {}
  Tensor get(const std::string& name) const { return file->load(name).contiguous(); }
};

// Logits [B*L, V] of positions [begin, end) of `ids` [B, L], fed after whatever the cache holds.
Tensor run_chunk(Qwen2Model& m, const Tensor& ids, int64_t begin, int64_t end, Qwen2KvCache& cache,
                 const std::vector<std::vector<BidirectionalBlock>>& blocks = {}) {
  Tensor hidden = m.forward(m.embed_tokens(ids.slice(1, begin, end)), blocks, cache);  // [B, n, H]
  return m.lm_head(hidden.reshape({hidden.size(0) * hidden.size(1), hidden.size(2)}));  // [B*n, V]
}

// ref[b, begin:end, :] of a [B, L, V] tensor, flattened like run_chunk's output.
std::vector<float> ref_rows(const Tensor& ref, int64_t begin, int64_t end) {
  return ref.slice(1, begin, end).to_f32_vector();
}

// Prints and checks |out - ref| <= rel_to_max * max|ref| elementwise and, when max_rel_l2 > 0, the relative L2 error.
void expect_matches(const std::vector<float>& out, const std::vector<float>& ref, const std::string& what,
                    double rel_to_max, double max_rel_l2) {
  if (out.size() != ref.size())
    test::fail_at(__FILE__, __LINE__, what + ": " + std::to_string(out.size()) + " values vs reference " +
                                          std::to_string(ref.size()));
  double max_ref = 0, max_err = 0, num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    max_ref = std::max(max_ref, std::fabs(static_cast<double>(ref[i])));
    const double d = static_cast<double>(out[i]) - ref[i];
    max_err = std::max(max_err, std::fabs(d));
    num += d * d;
    den += static_cast<double>(ref[i]) * ref[i];
  }
  const double rel_l2 = std::sqrt(num / std::max(den, 1e-300));
  std::printf("    %s: max |err| %.3g = %.3g of max|ref| %.3g (bound %.0e); relative L2 %.3g\n", what.c_str(), max_err,
              max_err / max_ref, max_ref, rel_to_max, rel_l2);
  if (max_rel_l2 > 0 && !(rel_l2 <= max_rel_l2))
    test::fail_at(__FILE__, __LINE__, what + ": relative L2 error above the bound");
  EXPECT_CLOSE(out.data(), ref.data(), ref.size(), rel_to_max * max_ref, 0.0, what);
}

void expect_matches_reference(const std::vector<float>& out, const std::vector<float>& ref, const std::string& what) {
  expect_matches(out, ref, what, kRelToMax, kMaxRelL2);
}

std::vector<std::vector<BidirectionalBlock>> fixture_blocks(const Io& io) {
  Tensor b = io.get("omni_blocks");  // [B, 2] I64 (offset, length)
  std::vector<std::vector<BidirectionalBlock>> blocks;
  for (int64_t i = 0; i < b.size(0); ++i) blocks.push_back({{b.data<int64_t>()[i * 2], b.data<int64_t>()[i * 2 + 1]}});
  return blocks;
}

std::string temp_path(const std::string& name) {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/showo2_qwen2_test_" + name;
}

void full_forward_matches(const std::string& name) {
  require_fixtures(name);
  Io io(name);
  LoadedModel lm(fixture_config(name), fixture(name + ".safetensors"));
  Tensor ids = io.get("ids");
  Qwen2KvCache cache(lm.model->config(), ids.size(0));
  Tensor hidden = lm.model->forward(lm.model->embed_tokens(ids), {}, cache);
  CHECK_EQ(cache.length(), ids.size(1));
  expect_matches_reference(hidden.to_f32_vector(), io.get("hidden").to_f32_vector(), name + " hidden (final norm)");
  Tensor logits = lm.model->lm_head(hidden.reshape({-1, hidden.size(2)}));
  CHECK(logits.shape() == Shape({ids.size(0) * ids.size(1), lm.model->config().vocab_size}));
  expect_matches_reference(logits.to_f32_vector(), io.get("logits").to_f32_vector(), name + " logits");
}

}  // namespace

SHOWO2_TEST(config_presets_and_json) {
  Qwen2Config small = Qwen2Config::preset("Qwen/Qwen2.5-1.5B-Instruct");
  CHECK_EQ(small.hidden_size, int64_t{1536});
  CHECK_EQ(small.vocab_size, int64_t{151669});
  CHECK_EQ(small.resolved_head_dim(), int64_t{128});
  CHECK(small.tie_word_embeddings);
  Qwen2Config big = Qwen2Config::preset("Qwen/Qwen2.5-7B-Instruct");
  CHECK_EQ(big.hidden_size, int64_t{3584});
  CHECK_EQ(big.intermediate_size, int64_t{18944});
  CHECK_EQ(big.num_attention_heads, int64_t{28});
  CHECK_EQ(big.num_key_value_heads, int64_t{4});
  CHECK_EQ(big.resolved_head_dim(), int64_t{128});
  CHECK(!big.tie_word_embeddings);
  CHECK_EQ(big.vocab_size, int64_t{151669});
  CHECK_THROWS_CODE(Qwen2Config::preset("microsoft/phi-1_5"), InvalidArgument);

  auto parse = [](const std::string& text, Qwen2Config base = Qwen2Config()) {
    const weights::JsonValue root = parse_config_json(text, "inline");
    return Qwen2Config::from_config(ConfigReader(root, "inline"), base);
  };
  // Both rope_theta layouts; fields absent keep the base.
  CHECK_EQ(parse(R"({"rope_theta": 10000.0})").rope_theta, 10000.0);
  CHECK_EQ(parse(R"({"rope_parameters": {"rope_theta": 5000.0, "rope_type": "default"}})").rope_theta, 5000.0);
  CHECK_EQ(parse(R"({"hidden_size": 3584})", big).intermediate_size, int64_t{18944});
  CHECK_EQ(parse(R"({"rope_scaling": null, "use_sliding_window": false})").rope_theta, 1e6);
  // The fixtures' two config layouts.
  require_fixtures("tied");
  require_fixtures("untied");
  Qwen2Config tied = fixture_config("tied"), untied = fixture_config("untied");
  CHECK(tied.tie_word_embeddings && !untied.tie_word_embeddings);
  CHECK_EQ(tied.resolved_head_dim(), int64_t{16});
  CHECK_EQ(untied.resolved_head_dim(), int64_t{32});
  CHECK_EQ(untied.rope_theta, 1e6);
  CHECK_EQ(untied.vocab_size, int64_t{512});

  CHECK_THROWS_CODE(parse(R"({"hidden_act": "gelu"})"), InvalidArgument);
  CHECK_THROWS_CODE(parse(R"({"rope_scaling": {"rope_type": "yarn", "factor": 4.0}})"), InvalidArgument);
  CHECK_THROWS_CODE(parse(R"({"use_sliding_window": true})"), InvalidArgument);
  CHECK_THROWS_CODE(parse(R"({"num_key_value_heads": 5})"), InvalidArgument);
  CHECK_THROWS_CODE(parse(R"({"head_dim": 15})"), InvalidArgument);
  CHECK_THROWS_CODE(parse(R"({"hidden_size": "wide"})"), InvalidArgument);
  CHECK_THROWS_CODE(parse(R"({"rms_norm_eps": 0})"), InvalidArgument);
  Qwen2Config c;
  c.vocab_size = 0;
  CHECK_THROWS_CODE(c.validate("test"), InvalidArgument);
}

SHOWO2_TEST(tied_logits_match_transformers) { full_forward_matches("tied"); }

SHOWO2_TEST(untied_head_dim_32_logits_match_transformers) { full_forward_matches("untied"); }

SHOWO2_TEST(omni_mask_logits_match_transformers_4d_mask) {
  for (const std::string name : {"tied", "untied"}) {
    require_fixtures(name);
    Io io(name);
    LoadedModel lm(fixture_config(name), fixture(name + ".safetensors"));
    Tensor ids = io.get("ids");
    Qwen2KvCache cache(lm.model->config(), ids.size(0));
    Tensor logits = run_chunk(*lm.model, ids, 0, ids.size(1), cache, fixture_blocks(io));
    expect_matches_reference(logits.to_f32_vector(), io.get("omni_logits").to_f32_vector(), name + " omni logits");
  }
}

SHOWO2_TEST(kv_cached_decoding_equals_full_forward) {
  for (const std::string name : {"tied", "untied"}) {
    require_fixtures(name);
    Io io(name);
    LoadedModel lm(fixture_config(name), fixture(name + ".safetensors"));
    Qwen2Model& m = *lm.model;
    Tensor ids = io.get("ids"), ref = io.get("logits");
    const int64_t B = ids.size(0), L = ids.size(1);

    Qwen2KvCache full_cache(m.config(), B);
    const std::vector<float> full = run_chunk(m, ids, 0, L, full_cache).to_f32_vector();  // [B*L, V]
    const int64_t V = m.config().vocab_size;

    // Prefill 7, then one token at a time (the decode loop's shape: Lq = 1 over a growing cache).
    Qwen2KvCache cache(m.config(), B);
    std::vector<float> stepped(static_cast<size_t>(B * L * V));
    auto place = [&](const Tensor& chunk_logits, int64_t begin, int64_t end) {  // [B*(end-begin), V] into [B, L, V]
      std::vector<float> v = chunk_logits.to_f32_vector();
      for (int64_t b = 0; b < B; ++b)
        for (int64_t l = begin; l < end; ++l)
          std::copy_n(v.begin() + ((b * (end - begin) + (l - begin)) * V), V, stepped.begin() + (b * L + l) * V);
    };
    place(run_chunk(m, ids, 0, 7, cache), 0, 7);
    for (int64_t l = 7; l < L; ++l) {
      place(run_chunk(m, ids, l, l + 1, cache), l, l + 1);
      CHECK_EQ(cache.length(), l + 1);
    }
    expect_matches(stepped, full, name + " prefill 7 + 5 single steps vs full (port)", kCachedRelToMax, 0);
    expect_matches_reference(stepped, ref.to_f32_vector(), name + " prefill 7 + 5 single steps vs transformers");

    // Prefill in two chunks.
    cache.clear();
    CHECK_EQ(cache.length(), int64_t{0});
    place(run_chunk(m, ids, 0, 5, cache), 0, 5);
    place(run_chunk(m, ids, 5, L, cache), 5, L);
    expect_matches(stepped, full, name + " chunks 5 + 7 vs full (port)", kCachedRelToMax, 0);
  }
}

SHOWO2_TEST(cache_growth_keeps_the_cached_entries) {
  // The fixture context (64) never outgrows the first allocation; with a longer context the cache grows from 256 to
  // 512 positions here, moving every layer's entries, and the continuation must not notice.
  require_fixtures("tied");
  Qwen2Config config = fixture_config("tied");
  config.max_position_embeddings = 600;
  LoadedModel lm(config, fixture("tied.safetensors"));
  Tensor inputs = Tensor::from_f32({1, 300, 64}, test::random_normal(300 * 64, 7));
  Qwen2KvCache full_cache(config, 1), cache(config, 1);
  std::vector<float> full = lm.model->forward(inputs, {}, full_cache).slice(1, 200, 300).to_f32_vector();
  lm.model->forward(inputs.slice(1, 0, 200), {}, cache);
  CHECK_EQ(cache.capacity(), int64_t{256});
  std::vector<float> tail = lm.model->forward(inputs.slice(1, 200, 300), {}, cache).to_f32_vector();
  CHECK_EQ(cache.capacity(), int64_t{512});
  expect_matches(tail, full, "tied hidden 200..299 after growing the cache vs one call", kCachedRelToMax, 0);
}

SHOWO2_TEST(omni_block_fed_in_its_own_chunk_after_a_cached_prefix) {
  // Sample 0 alone: causal prefix [0, 3), the block [3, 8) in one call (its queries see the cached prefix and the
  // whole block), then [8, 12) causally: the mask's query_offset and the cache together must give the full answer.
  require_fixtures("untied");
  Io io("untied");
  LoadedModel lm(fixture_config("untied"), fixture("untied.safetensors"));
  Tensor ids = io.get("ids").slice(0, 0, 1).contiguous();
  const auto blocks = fixture_blocks(io);
  CHECK_EQ(blocks[0][0].offset, int64_t{3});
  Qwen2KvCache cache(lm.model->config(), 1);
  std::vector<float> out;
  for (auto [begin, end] : {std::pair<int64_t, int64_t>{0, 3}, {3, 8}, {8, 12}}) {
    std::vector<float> v = run_chunk(*lm.model, ids, begin, end, cache, {blocks[0]}).to_f32_vector();
    out.insert(out.end(), v.begin(), v.end());
  }
  expect_matches_reference(out, io.get("omni_logits").slice(0, 0, 1).to_f32_vector(),
                           "untied sample 0, chunks [0,3) [3,8) [8,12) vs transformers omni");
}

SHOWO2_TEST(greedy_decoding_matches_transformers) {
  for (const std::string name : {"tied", "untied"}) {
    require_fixtures(name);
    Io io(name);
    LoadedModel lm(fixture_config(name), fixture(name + ".safetensors"));
    Qwen2Model& m = *lm.model;
    Tensor prompt = io.get("ids").slice(0, 0, 1).contiguous();  // [1, 12]
    Tensor want = io.get("greedy_tokens"), want_logits = io.get("greedy_logits");
    const int64_t V = m.config().vocab_size, steps = want.size(0);

    TextSampler sampler(SamplingParams{});  // greedy
    Qwen2KvCache cache(m.config(), 1);
    Tensor hidden = m.forward(m.embed_tokens(prompt), {}, cache);  // [1, 12, H]
    std::vector<int32_t> history;
    for (int64_t l = 0; l < prompt.size(1); ++l) history.push_back(static_cast<int32_t>(prompt.data<int64_t>()[l]));
    std::vector<float> got_logits;
    std::vector<int64_t> got;
    for (int64_t s = 0; s < steps; ++s) {
      Tensor last = hidden.slice(1, hidden.size(1) - 1, hidden.size(1)).reshape({1, hidden.size(2)});
      Tensor logits = m.lm_head(last);  // [1, V]
      std::vector<float> v = logits.to_f32_vector();
      got_logits.insert(got_logits.end(), v.begin(), v.end());
      const int32_t token = sampler.sample(v.data(), V, history);
      got.push_back(token);
      history.push_back(token);
      Tensor next = Tensor::empty({1, 1}, DType::I32);
      next.mutable_data<int32_t>()[0] = token;
      hidden = m.forward(m.embed_tokens(next), {}, cache);  // [1, 1, H]
    }
    std::vector<int64_t> expected(want.data<int64_t>(), want.data<int64_t>() + steps);
    CHECK_EQ(got, expected);
    expect_matches_reference(got_logits, want_logits.to_f32_vector(), name + " greedy step logits (cached)");
  }
}

SHOWO2_TEST(truncate_rolls_back_and_recomputes) {
  require_fixtures("tied");
  Io io("tied");
  LoadedModel lm(fixture_config("tied"), fixture("tied.safetensors"));
  Tensor ids = io.get("ids"), ref = io.get("logits");
  Qwen2KvCache cache(lm.model->config(), 2);
  Tensor other = Tensor::zeros({2, 12}, DType::I64);  // a different continuation that truncate must forget
  run_chunk(*lm.model, ids, 0, 7, cache);
  run_chunk(*lm.model, other, 0, 5, cache);
  CHECK_EQ(cache.length(), int64_t{12});
  cache.truncate(7);
  CHECK_EQ(cache.length(), int64_t{7});
  std::vector<float> tail = run_chunk(*lm.model, ids, 7, 12, cache).to_f32_vector();
  expect_matches_reference(tail, ref_rows(ref, 7, 12), "tied positions 7..11 after truncate(7)");
  CHECK_THROWS_CODE(cache.truncate(13), InvalidArgument);
  CHECK_THROWS_CODE(cache.truncate(-1), InvalidArgument);
  cache.truncate(0);
  CHECK_EQ(cache.length(), int64_t{0});
}

SHOWO2_TEST(cancellation_rolls_back_the_cache) {
  require_fixtures("tied");
  Io io("tied");
  LoadedModel lm(fixture_config("tied"), fixture("tied.safetensors"));
  Qwen2Model& m = *lm.model;
  Tensor ids = io.get("ids"), ref = io.get("logits");
  Qwen2KvCache cache(m.config(), 2);
  run_chunk(m, ids, 0, 5, cache);
  int polls = 0;
  auto cancel_at_second_layer = [&polls] { return ++polls == 2; };
  CHECK_THROWS_CODE(m.forward(m.embed_tokens(ids.slice(1, 5, 12)), {}, cache, cancel_at_second_layer), Cancelled);
  CHECK_EQ(polls, 2);
  CHECK_EQ(cache.length(), int64_t{5});
  // Other errors leave it as well: a block list for 3 samples on a batch of 2.
  CHECK_THROWS_CODE(m.forward(m.embed_tokens(ids.slice(1, 5, 12)), {{}, {}, {}}, cache), InvalidArgument);
  CHECK_EQ(cache.length(), int64_t{5});
  std::vector<float> tail = run_chunk(m, ids, 5, 12, cache).to_f32_vector();
  expect_matches_reference(tail, ref_rows(ref, 5, 12), "tied positions 5..11 after a cancelled call");
}

SHOWO2_TEST(tied_checkpoint_with_stored_lm_head_and_showo_prefix) {
  // A Show-o2 checkpoint holds the LLM under "showo." and may store the tied lm_head (spec §9.1, §13).
  require_fixtures("tied");
  Io io("tied");
  auto src = weights::open_weight_file(fixture("tied.safetensors"));
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const auto& r : src->tensors()) tensors.emplace_back("showo." + r.name, src->load(r.name));
  tensors.emplace_back("showo.lm_head.weight", src->load("model.embed_tokens.weight"));
  const std::string path = temp_path("prefixed.safetensors");
  weights::save_safetensors(path, tensors);
  LoadedModel lm(fixture_config("tied"), path, "showo.");
  Tensor ids = io.get("ids");
  Qwen2KvCache cache(lm.model->config(), 2);
  expect_matches_reference(run_chunk(*lm.model, ids, 0, 12, cache).to_f32_vector(), io.get("logits").to_f32_vector(),
                           "tied, showo. prefix, stored lm_head");
  std::remove(path.c_str());
}

SHOWO2_TEST(weight_errors_list_the_keys) {
  require_fixtures("tied");
  require_fixtures("untied");
  // Wrong shapes: a config whose intermediate_size does not match the checkpoint.
  Qwen2Config wrong = fixture_config("tied");
  wrong.intermediate_size = 128;
  try {
    LoadedModel lm(wrong, fixture("tied.safetensors"));
    test::fail_at(__FILE__, __LINE__, "expected ERR_SHAPE_MISMATCH");
  } catch (const Error& e) {
    std::printf("    (expected error) %s: %s\n", e.code_str(), e.what());
    CHECK(e.code() == ErrorCode::ShapeMismatch);
    const std::string msg = e.what();
    CHECK(msg.find("model.layers.0.mlp.gate_proj.weight (expected [128, 64], found [96, 64])") != std::string::npos);
    CHECK(msg.find("model.layers.1.mlp.down_proj.weight") != std::string::npos);
  }
  // An untied config on a tied checkpoint: lm_head.weight is missing.
  Qwen2Config untied = fixture_config("tied");
  untied.tie_word_embeddings = false;
  try {
    LoadedModel lm(untied, fixture("tied.safetensors"));
    test::fail_at(__FILE__, __LINE__, "expected ERR_INVALID_ARGUMENT");
  } catch (const Error& e) {
    std::printf("    (expected error) %s: %s\n", e.code_str(), e.what());
    CHECK(e.code() == ErrorCode::InvalidArgument);
    CHECK(std::string(e.what()).find("missing keys (1):\n    lm_head.weight [512, 64]") != std::string::npos);
  }
  // One layer too many.
  Qwen2Config deeper = fixture_config("untied");
  deeper.num_hidden_layers = 3;
  CHECK_THROWS_CODE(LoadedModel(deeper, fixture("untied.safetensors")), InvalidArgument);
  // Using a model before loading.
  cpu::CpuBackend backend(1);
  Qwen2Model unloaded(fixture_config("tied"), backend);
  CHECK_THROWS_CODE(unloaded.finish_loading(), InvalidArgument);
  CHECK_THROWS_CODE(unloaded.embed_tokens(Tensor::zeros({1, 1}, DType::I64)), InvalidArgument);
}

SHOWO2_TEST(input_errors_are_typed) {
  require_fixtures("tied");
  LoadedModel lm(fixture_config("tied"), fixture("tied.safetensors"));
  Qwen2Model& m = *lm.model;
  // Ids outside [0, V), named by position.
  Tensor ids = Tensor::zeros({2, 3}, DType::I32);
  ids.mutable_data<int32_t>()[4] = 512;
  try {
    m.embed_tokens(ids);
    test::fail_at(__FILE__, __LINE__, "expected ERR_INVALID_ARGUMENT");
  } catch (const Error& e) {
    std::printf("    (expected error) %s: %s\n", e.code_str(), e.what());
    CHECK(e.code() == ErrorCode::InvalidArgument);
    CHECK(std::string(e.what()).find("id 512 at position [1, 1]") != std::string::npos);
  }
  ids.mutable_data<int32_t>()[4] = -1;
  CHECK_THROWS_CODE(m.embed_tokens(ids), InvalidArgument);
  CHECK_THROWS_CODE(m.embed_tokens(Tensor::zeros({2, 3}, DType::F32)), UnsupportedDtype);
  CHECK_THROWS_CODE(m.embed_tokens(Tensor::zeros({6}, DType::I64)), ShapeMismatch);

  // Shapes and dtypes of forward's inputs.
  Qwen2KvCache cache(m.config(), 2);
  CHECK_THROWS_CODE(m.forward(Tensor::zeros({2, 3, 32}, DType::F32), {}, cache), ShapeMismatch);
  CHECK_THROWS_CODE(m.forward(Tensor::zeros({1, 3, 64}, DType::F32), {}, cache), ShapeMismatch);  // cache batch 2
  CHECK_THROWS_CODE(m.forward(Tensor::zeros({2, 3, 64}, DType::BF16), {}, cache), UnsupportedDtype);
  CHECK_THROWS_CODE(m.forward(Tensor::zeros({2, 0, 64}, DType::F32), {}, cache), InvalidArgument);
  CHECK_THROWS_CODE(m.lm_head(Tensor::zeros({2, 32}, DType::F32)), ShapeMismatch);
  CHECK_EQ(cache.length(), int64_t{0});
  CHECK_THROWS_CODE(Qwen2KvCache(m.config(), 0), InvalidArgument);

  // Context overflow (max_position_embeddings 64): 60 cached + 5 new.
  Tensor long_input = Tensor::zeros({2, 60, 64}, DType::F32);
  m.forward(long_input, {}, cache);
  CHECK_EQ(cache.length(), int64_t{60});
  try {
    m.forward(Tensor::zeros({2, 5, 64}, DType::F32), {}, cache);
    test::fail_at(__FILE__, __LINE__, "expected ERR_INVALID_ARGUMENT");
  } catch (const Error& e) {
    std::printf("    (expected error) %s: %s\n", e.code_str(), e.what());
    CHECK(e.code() == ErrorCode::InvalidArgument);
    CHECK(std::string(e.what()).find("longer than the model's context of 64 positions") != std::string::npos);
  }
  CHECK_EQ(cache.length(), int64_t{60});
  m.forward(Tensor::zeros({2, 4, 64}, DType::F32), {}, cache);  // exactly fills the context
  CHECK_EQ(cache.length(), int64_t{64});
  CHECK(cache.capacity() <= int64_t{64});  // growth is capped at the context
}

SHOWO2_TEST_MAIN()
