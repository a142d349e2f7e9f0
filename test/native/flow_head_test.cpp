// FlowHead (native/core/flow_head.cpp) on the CPU backend against a plain double-precision implementation written
// here from spec §6.2 (loops only: diff_proj, adaLN chunks in the order shift_msa, scale_msa, gate_msa, shift_mlp,
// scale_mlp, gate_mlp, modulation inside the block only, RMSNorm, per-head q/k RMSNorm before the Llama-3-scaled
// rotate-half RoPE, GQA attention under the omni mask, SwiGLU, the final layer), with random weights whose adaLN
// linears are far from zero. Also: prefix + block through the KV cache equals one call over the whole sequence, a
// head whose width equals the LLM's has no diff_proj (spec §14), positions before the block do not depend on c
// (identity modulation), and the typed errors.
//
// Tolerance: the port runs float32 with float32 accumulation against a float64 reference on the same weights; the
// outputs are O(1) after 2 blocks of width 32, so float32 rounding gives ~1e-6 relative. We require
// |out - ref| <= 1e-4 * max|ref| (a wrong chunk order, eps or RoPE offset moves outputs by >= 1e-2 relative).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "cpu/cpu_backend.h"
#include "flow_head.h"
#include "kv_cache.h"
#include "rope.h"
#include "showo2.h"
#include "showo2_random_model.h"
#include "test_util.h"
#include "weight_binder.h"

using namespace showo2;

namespace {

constexpr double kRelToMax = 1e-4;

FlowHeadConfig tiny_head_config() {
  FlowHeadConfig c;
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  c.max_position_embeddings = 4096;
  return c;
}

// Random head weights (diff_proj when llm_hidden != head width) loaded through the binder.
struct Head {
  cpu::CpuBackend backend{2};
  FlowHeadConfig config;
  int64_t llm_hidden;
  test::InMemoryWeights file;
  std::unique_ptr<FlowHeadWeights> weights;
  std::unique_ptr<FlowHead> head;

  Head(int64_t llm_hidden_size, uint32_t seed) : config(tiny_head_config()), llm_hidden(llm_hidden_size) {
    Showo2Config sc;
    sc.llm.hidden_size = llm_hidden;
    sc.hidden_size = llm_hidden;
    sc.diffusion_head = config;
    std::mt19937 rng(seed);
    for (const test::KeySpec& k : test::showo2_checkpoint_keys(sc))
      if (k.name.rfind("diff_proj", 0) == 0 || k.name.rfind("diffusion_head_", 0) == 0)
        file.add(k.name, test::random_init(k, rng));
    weights = std::make_unique<FlowHeadWeights>(config, llm_hidden, 64);
    WeightBinder binder;
    weights->bind_weights(binder);
    binder.load_all(file, backend, "FlowHead", "diffusion_head_config");
    head = std::make_unique<FlowHead>(*weights, backend);
  }
  std::vector<double> w(const std::string& key) const {
    const auto v = file.load(key).to_f32_vector();
    return std::vector<double>(v.begin(), v.end());
  }
};

// ---- the double-precision reference ----------------------------------------------------------------------------

using Mat = std::vector<double>;  // row-major [rows, cols]

Mat matmul_t(const Mat& x, int64_t rows, int64_t in, const Mat& weight, int64_t out, const Mat* bias) {
  Mat y(static_cast<size_t>(rows * out));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double s = bias ? (*bias)[static_cast<size_t>(o)] : 0.0;
      for (int64_t i = 0; i < in; ++i) s += x[static_cast<size_t>(r * in + i)] * weight[static_cast<size_t>(o * in + i)];
      y[static_cast<size_t>(r * out + o)] = s;
    }
  return y;
}

void rms_norm_rows(Mat& x, int64_t rows, int64_t n, const Mat& weight, double eps) {
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (int64_t i = 0; i < n; ++i) ss += x[static_cast<size_t>(r * n + i)] * x[static_cast<size_t>(r * n + i)];
    const double inv = 1.0 / std::sqrt(ss / n + eps);
    for (int64_t i = 0; i < n; ++i) x[static_cast<size_t>(r * n + i)] *= inv * weight[static_cast<size_t>(i)];
  }
}

double silu(double v) { return v / (1.0 + std::exp(-v)); }

// out [L, 64] of one row: llm_hidden [L, Hl], c [H], modulated span [s0, s1), omni block [b0, b0 + bl).
Mat reference_head(const Head& hd, const Mat& llm_hidden, int64_t L, const Mat& c, int64_t s0, int64_t s1,
                   int64_t b0, int64_t bl) {
  const FlowHeadConfig& cfg = hd.config;
  const int64_t H = cfg.hidden_size, Hq = cfg.num_attention_heads, Hkv = cfg.num_key_value_heads, D = cfg.head_dim;
  const int64_t I = cfg.intermediate_size, Hl = hd.llm_hidden;
  Mat h = llm_hidden;
  if (Hl != H) {
    const Mat b0w = hd.w("diff_proj.0.bias"), b2 = hd.w("diff_proj.2.bias");
    Mat a = matmul_t(llm_hidden, L, Hl, hd.w("diff_proj.0.weight"), H, &b0w);
    for (double& v : a) v = 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));  // GELU, exact erf
    h = matmul_t(a, L, H, hd.w("diff_proj.2.weight"), H, &b2);
  }
  Mat silu_c(c.size());
  for (size_t i = 0; i < c.size(); ++i) silu_c[i] = silu(c[i]);
  auto in_span = [&](int64_t l) { return l >= s0 && l < s1; };
  auto modulate = [&](Mat& x, const Mat& ada, int shift, int scale) {
    for (int64_t l = 0; l < L; ++l)
      if (in_span(l))
        for (int64_t i = 0; i < H; ++i) {
          double& v = x[static_cast<size_t>(l * H + i)];
          v = v * (1.0 + ada[static_cast<size_t>(scale * H + i)]) + ada[static_cast<size_t>(shift * H + i)];
        }
  };
  auto gate_add = [&](Mat& hs, const Mat& y, const Mat& ada, int gate) {
    for (int64_t l = 0; l < L; ++l)
      for (int64_t i = 0; i < H; ++i)
        hs[static_cast<size_t>(l * H + i)] +=
            (in_span(l) ? ada[static_cast<size_t>(gate * H + i)] : 1.0) * y[static_cast<size_t>(l * H + i)];
  };
  const std::vector<double> inv_freq = rope_inverse_frequencies(D, cfg.rope_theta, cfg.rope_scaling);
  auto rope = [&](Mat& x, int64_t heads) {
    for (int64_t l = 0; l < L; ++l)
      for (int64_t hh = 0; hh < heads; ++hh)
        for (int64_t i = 0; i < D / 2; ++i) {
          double& a = x[static_cast<size_t>((l * heads + hh) * D + i)];
          double& b = x[static_cast<size_t>((l * heads + hh) * D + i + D / 2)];
          const double ang = static_cast<double>(l) * inv_freq[static_cast<size_t>(i)];
          const double na = a * std::cos(ang) - b * std::sin(ang), nb = b * std::cos(ang) + a * std::sin(ang);
          a = na;
          b = nb;
        }
  };
  auto allowed = [&](int64_t q, int64_t k) {
    return k <= q || (q >= b0 && q < b0 + bl && k >= b0 && k < b0 + bl);  // spec §5.1
  };
  for (int64_t k = 0; k < cfg.num_hidden_layers; ++k) {
    const std::string p = "diffusion_head_a." + std::to_string(k) + ".";
    const Mat ada_b = hd.w(p + "adaLN_modulation.1.bias");
    const Mat ada = matmul_t(silu_c, 1, H, hd.w(p + "adaLN_modulation.1.weight"), 6 * H, &ada_b);
    Mat n = h;
    rms_norm_rows(n, L, H, hd.w(p + "input_layernorm.weight"), cfg.rms_norm_eps);
    modulate(n, ada, 0, 1);
    Mat q = matmul_t(n, L, H, hd.w(p + "self_attn.q_proj.weight"), Hq * D, nullptr);
    Mat kk = matmul_t(n, L, H, hd.w(p + "self_attn.k_proj.weight"), Hkv * D, nullptr);
    Mat v = matmul_t(n, L, H, hd.w(p + "self_attn.v_proj.weight"), Hkv * D, nullptr);
    rms_norm_rows(q, L * Hq, D, hd.w(p + "self_attn.q_norm.weight"), cfg.qk_norm_eps);
    rms_norm_rows(kk, L * Hkv, D, hd.w(p + "self_attn.k_norm.weight"), cfg.qk_norm_eps);
    rope(q, Hq);
    rope(kk, Hkv);
    Mat att(static_cast<size_t>(L * Hq * D), 0.0);
    for (int64_t hh = 0; hh < Hq; ++hh) {
      const int64_t kvh = hh / (Hq / Hkv);
      for (int64_t qi = 0; qi < L; ++qi) {
        std::vector<double> s(static_cast<size_t>(L), -INFINITY);
        double mx = -INFINITY;
        for (int64_t ki = 0; ki < L; ++ki) {
          if (!allowed(qi, ki)) continue;
          double d = 0;
          for (int64_t i = 0; i < D; ++i)
            d += q[static_cast<size_t>((qi * Hq + hh) * D + i)] * kk[static_cast<size_t>((ki * Hkv + kvh) * D + i)];
          s[static_cast<size_t>(ki)] = d / std::sqrt(static_cast<double>(D));
          mx = std::max(mx, s[static_cast<size_t>(ki)]);
        }
        double den = 0;
        for (double& e : s) den += (e = std::isinf(e) ? 0.0 : std::exp(e - mx));
        for (int64_t ki = 0; ki < L; ++ki)
          for (int64_t i = 0; i < D; ++i)
            att[static_cast<size_t>((qi * Hq + hh) * D + i)] +=
                s[static_cast<size_t>(ki)] / den * v[static_cast<size_t>((ki * Hkv + kvh) * D + i)];
      }
    }
    const Mat o = matmul_t(att, L, Hq * D, hd.w(p + "self_attn.o_proj.weight"), H, nullptr);
    gate_add(h, o, ada, 2);
    Mat n2 = h;
    rms_norm_rows(n2, L, H, hd.w(p + "post_attention_layernorm.weight"), cfg.rms_norm_eps);
    modulate(n2, ada, 3, 4);
    Mat g = matmul_t(n2, L, H, hd.w(p + "mlp.gate_proj.weight"), I, nullptr);
    const Mat u = matmul_t(n2, L, H, hd.w(p + "mlp.up_proj.weight"), I, nullptr);
    for (size_t i = 0; i < g.size(); ++i) g[i] = silu(g[i]) * u[i];
    const Mat m = matmul_t(g, L, I, hd.w(p + "mlp.down_proj.weight"), H, nullptr);
    gate_add(h, m, ada, 5);
  }
  const Mat fb = hd.w("diffusion_head_b.adaLN_modulation.1.bias");
  const Mat ada = matmul_t(silu_c, 1, H, hd.w("diffusion_head_b.adaLN_modulation.1.weight"), 2 * H, &fb);
  rms_norm_rows(h, L, H, hd.w("diffusion_head_b.norm_final.weight"), cfg.final_norm_eps);
  modulate(h, ada, 0, 1);
  const Mat lb = hd.w("diffusion_head_b.linear.bias");
  return matmul_t(h, L, H, hd.w("diffusion_head_b.linear.weight"), 64, &lb);
}

void expect_matches(const std::vector<float>& out, const Mat& ref, const std::string& what,
                    double rel = kRelToMax) {
  CHECK_EQ(out.size(), ref.size());
  double max_ref = 0, max_err = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    max_ref = std::max(max_ref, std::fabs(ref[i]));
    max_err = std::max(max_err, std::fabs(out[i] - ref[i]));
  }
  std::printf("    %s: max |err| %.3g = %.3g of max|ref| %.3g (bound %.0e)\n", what.c_str(), max_err, max_err / max_ref,
              max_ref, rel);
  const std::vector<float> ref_f(ref.begin(), ref.end());
  EXPECT_CLOSE(out.data(), ref_f.data(), ref_f.size(), rel * max_ref, 0.0, what);
}

// A Show-o2-like layout: 5 text positions, a block of 9 (TIME + 8 visual) at offset 5, 3 suffix positions.
constexpr int64_t kL = 17, kOffset = 5, kBlock = 9;

void head_matches_reference(int64_t llm_hidden) {
  Head hd(llm_hidden, 77);
  CHECK_EQ(hd.weights->has_diff_proj(), llm_hidden != hd.config.hidden_size);
  const std::vector<float> x = test::random_normal(static_cast<size_t>(kL * llm_hidden), 5);
  const std::vector<float> c = test::random_normal(static_cast<size_t>(hd.config.hidden_size), 6);
  const Tensor xt = Tensor::from_f32({1, kL, llm_hidden}, x), ct = Tensor::from_f32({1, hd.config.hidden_size}, c);
  const std::vector<std::vector<BidirectionalBlock>> blocks = {{BidirectionalBlock{kOffset, kBlock}}};
  KvCache cache = hd.head->make_cache(1);
  const Tensor out = hd.head->forward(xt, ct, {ModulatedSpan{kOffset, kOffset + kBlock}}, {CacheRows{0, 1, &cache, blocks}});
  CHECK(out.shape() == Shape({1, kL, 64}));
  CHECK_EQ(cache.length(), kL);
  const Mat ref = reference_head(hd, Mat(x.begin(), x.end()), kL, Mat(c.begin(), c.end()), kOffset, kOffset + kBlock,
                                 kOffset, kBlock);
  expect_matches(out.to_f32_vector(), ref, "head (llm hidden " + std::to_string(llm_hidden) + ") vs float64 reference");

  // The same through the cache: the prefix (identity modulation, no c), then block + suffix with the span relative to
  // the new positions.
  KvCache cached = hd.head->make_cache(1);
  const Tensor pre = hd.head->forward(xt.slice(1, 0, kOffset).contiguous(), Tensor(), {}, {CacheRows{0, 1, &cached, {}}});
  const Tensor rest = hd.head->forward(xt.slice(1, kOffset, kL).contiguous(), ct, {ModulatedSpan{0, kBlock}},
                                       {CacheRows{0, 1, &cached, blocks}});
  expect_matches(pre.to_f32_vector(), Mat(ref.begin(), ref.begin() + kOffset * 64), "prefix via cache");
  expect_matches(rest.to_f32_vector(), Mat(ref.begin() + kOffset * 64, ref.end()), "block + suffix via cache");
}

}  // namespace

SHOWO2_TEST(head_with_diff_proj_matches_float64_reference) { head_matches_reference(64); }

SHOWO2_TEST(head_without_diff_proj_matches_float64_reference) { head_matches_reference(32); }

SHOWO2_TEST(identity_modulation_outside_the_block) {
  Head hd(64, 78);
  const Tensor x = Tensor::from_f32({1, kL, 64}, test::random_normal(kL * 64, 8));
  const std::vector<std::vector<BidirectionalBlock>> blocks = {{BidirectionalBlock{kOffset, kBlock}}};
  auto run = [&](uint32_t c_seed) {
    KvCache cache = hd.head->make_cache(1);
    const Tensor c = Tensor::from_f32({1, 32}, test::random_normal(32, c_seed));
    return hd.head->forward(x, c, {ModulatedSpan{kOffset, kOffset + kBlock}}, {CacheRows{0, 1, &cache, blocks}})
        .to_f32_vector();
  };
  const auto a = run(1), b = run(2);
  // Text positions before the block: bit-identical whatever c is; block positions: clearly different.
  for (int64_t i = 0; i < kOffset * 64; ++i) CHECK_EQ(a[static_cast<size_t>(i)], b[static_cast<size_t>(i)]);
  double block_diff = 0;
  for (int64_t i = kOffset * 64; i < (kOffset + kBlock) * 64; ++i)
    block_diff = std::max(block_diff, static_cast<double>(std::fabs(a[static_cast<size_t>(i)] - b[static_cast<size_t>(i)])));
  std::printf("    block outputs move by up to %.3g when c changes\n", block_diff);
  CHECK(block_diff > 1e-2);
  // No span at all = identity everywhere, so c is not needed (equal up to the GEMM's row blocking: 5 rows vs 17).
  KvCache cache = hd.head->make_cache(1);
  const auto plain = hd.head->forward(x.slice(1, 0, kOffset).contiguous(), Tensor(), {}, {CacheRows{0, 1, &cache, {}}})
                         .to_f32_vector();
  expect_matches(plain, Mat(a.begin(), a.begin() + kOffset * 64), "text positions without c", 1e-6);
}

SHOWO2_TEST(rows_with_caches_of_different_lengths) {
  // Two rows whose prefixes differ in length, batched through the linears in one call == each row alone.
  Head hd(64, 79);
  const Tensor c = Tensor::from_f32({1, 32}, test::random_normal(32, 9));
  const int64_t Lb = kBlock;
  const Tensor block = Tensor::from_f32({2, Lb, 64}, test::random_normal(2 * Lb * 64, 10));
  const std::vector<int64_t> prefix = {2, 6};
  std::vector<KvCache> alone, batched;
  for (int64_t P : prefix) {
    const Tensor x = Tensor::from_f32({1, P, 64}, test::random_normal(static_cast<size_t>(P * 64), 11 + static_cast<uint32_t>(P)));
    alone.push_back(hd.head->make_cache(1));
    batched.push_back(hd.head->make_cache(1));
    hd.head->forward(x, Tensor(), {}, {CacheRows{0, 1, &alone.back(), {}}});
    hd.head->forward(x, Tensor(), {}, {CacheRows{0, 1, &batched.back(), {}}});
  }
  std::vector<CacheRows> groups;
  for (int64_t r = 0; r < 2; ++r)
    groups.push_back(CacheRows{r, r + 1, &batched[static_cast<size_t>(r)], {{BidirectionalBlock{prefix[static_cast<size_t>(r)], Lb}}}});
  const Tensor out = hd.head->forward(block, c, {ModulatedSpan{0, Lb}, ModulatedSpan{0, Lb}}, groups);
  for (int64_t r = 0; r < 2; ++r) {
    const Tensor one = hd.head->forward(block.slice(0, r, r + 1).contiguous(), c, {ModulatedSpan{0, Lb}},
                                        {CacheRows{0, 1, &alone[static_cast<size_t>(r)], {{BidirectionalBlock{prefix[static_cast<size_t>(r)], Lb}}}}});
    const auto o = out.slice(0, r, r + 1).contiguous().to_f32_vector();
    const auto e = one.to_f32_vector();
    expect_matches(o, Mat(e.begin(), e.end()), "row " + std::to_string(r) + " batched vs alone", 2e-6);
  }
}

SHOWO2_TEST(errors_are_typed_and_leave_the_cache) {
  Head hd(64, 80);
  const Tensor x = Tensor::from_f32({1, 4, 64}, test::random_normal(4 * 64, 12));
  KvCache cache = hd.head->make_cache(1);
  hd.head->forward(x, Tensor(), {}, {CacheRows{0, 1, &cache, {}}});
  CHECK_EQ(cache.length(), int64_t{4});
  const Tensor c = Tensor::from_f32({1, 32}, test::random_normal(32, 13));
  CHECK_THROWS_CODE(hd.head->forward(x, Tensor(), {ModulatedSpan{0, 2}}, {CacheRows{0, 1, &cache, {}}}), ShapeMismatch);
  CHECK_THROWS_CODE(hd.head->forward(x, Tensor::zeros({1, 16}, DType::F32), {ModulatedSpan{0, 2}},
                                     {CacheRows{0, 1, &cache, {}}}),
                    ShapeMismatch);
  CHECK_THROWS_CODE(hd.head->forward(x, c, {ModulatedSpan{2, 9}}, {CacheRows{0, 1, &cache, {}}}), InvalidArgument);
  CHECK_THROWS_CODE(hd.head->forward(Tensor::zeros({1, 4, 32}, DType::F32), c, {}, {CacheRows{0, 1, &cache, {}}}),
                    ShapeMismatch);
  KvCache two = hd.head->make_cache(2);
  CHECK_THROWS_CODE(hd.head->forward(x, c, {}, {CacheRows{0, 1, &two, {}}}), ShapeMismatch);
  CHECK_THROWS_CODE(hd.head->forward(x, c, {ModulatedSpan{0, 4}}, {CacheRows{0, 1, &cache, {}}},
                                     []() { return true; }),
                    Cancelled);
  CHECK_EQ(cache.length(), int64_t{4});  // unchanged by every failed call
  KvCache full(2, 1, 2, 8, 6);           // a 6-position context
  CHECK_THROWS_CODE(hd.head->forward(Tensor::zeros({1, 7, 64}, DType::F32), Tensor(), {}, {CacheRows{0, 1, &full, {}}}),
                    InvalidArgument);
}

SHOWO2_TEST_MAIN()
