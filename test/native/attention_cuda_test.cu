// cuda/attention.cu (both variants) against the CPU backend (cpu::CpuBackend::attention) on device copies of the same
// seeded random inputs, over Show-o2's masks and shapes (spec §5, §12): causal, omni masks with one and several
// blocks and per-sample blocks, KV-cache decoding through query_offset, full attention, GQA 12/2, 32/8, 28/4,
// SigLIP's 16 heads of 72, the VAE's single 384-wide head, odd head dims, the generic path past 512, lengths that are
// not multiples of any tile, strided views into fused projections and caches, and BF16 inputs.
//
// Tolerance. Inputs are N(0, 1) with scale 1/sqrt(D), so scores are O(1) and each output is a convex combination of
// v values (|v| < ~5). The CPU backend and both GPU kernels compute in F32 with F32 accumulation; they differ only
// in summation order and in exp2 (the GPU's exp2f is within 2 ulp, the CPU's std::exp2 within 1), so each lies within
// ~1e-6 of the exact result on these shapes (the CPU's own test measures ~1e-6 against a double reference, and so
// does PyTorch's F32 SDPA). We allow |gpu - cpu| <= 2e-5 + 2e-5 |cpu|: 10x that margin twice over, still 100x below
// what PyTorch's bf16 path is off by (2e-3 to 1e-2) and far below what a real bug does (a wrongly masked key, a
// missed rescale or a wrong kv head moves outputs by 1e-2 and more). BF16 inputs are compared against the CPU run on
// the same bf16-rounded values widened to F32, so the same tolerance applies.
//
// The split-KV decoding path (cuda/attention_decode.cu) is the tiled computation in F32 split into key chunks and
// recombined: the F32 tolerance applies to it, with explicit chunk counts and through Auto's dispatch.
//
// v3 (the BF16 tensor-core kernel, cuda/attention_mma.cu) runs on every case with BF16 inputs and max(D, Dv) <= 128.
// It rounds the softmax probabilities to BF16 before P·V (as FlashAttention does) and normalises by the sum of the
// rounded values, so each output is a convex combination of v rows whose weights are off by at most 2^-9 relative:
// |err| <= 2^-9 max_j |v_j - out| <= 2^-9 * 2 * 5 ~ 0.02 on these inputs, and far less on average (the rounding
// errors are independent and the weights sum to 1). It must stay within that bound everywhere (kTensorCoreMaxError)
// and within 1e-3 on average (kTensorCoreMeanError); a wrongly masked key, a missed rescale or a wrong kv head moves
// the average by 1e-2 and more.
//
// Without a CUDA device every case that launches a kernel is reported as skipped with the reason; the host-side mask
// packing test runs everywhere.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "attention.h"
#include "attention_decode.h"
#include "attention_mma.h"
#include "cpu/cpu_backend.h"
#include "cuda_test_util.h"
#include "test_util.h"

using namespace showo2;
using showo2::cuda::AttentionMask;
using showo2::cuda::AttentionParams;
using showo2::cuda::AttentionVariant;

namespace {

constexpr double kTolerance = 2e-5;  // atol and rtol; see the top of the file
constexpr double kTensorCoreMaxError = 2e-2;   // v3, every element; see the top of the file
constexpr double kTensorCoreMeanError = 1e-3;  // v3, mean |err| over the output

cpu::CpuBackend& cpu_backend() {
  static cpu::CpuBackend backend;
  return backend;
}

Tensor random_tensor(const Shape& shape, uint32_t seed) {
  return Tensor::from_f32(shape, test::random_normal(static_cast<size_t>(shape_numel(shape)), seed));
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  float m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::fmax(m, std::fabs(a[i] - b[i]));
  return m;
}

double mean_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) sum += std::fabs(static_cast<double>(a[i]) - b[i]);
  return a.empty() ? 0.0 : sum / static_cast<double>(a.size());
}

// Runs one variant on device copies of q, k, v (views keep their strides) into a strided out: out is a view of a
// [B, Lq, Hq, Dv + 3] buffer filled with a sentinel, and the padding columns must come back untouched.
// splits > 0 runs the split-KV decoding path with that many key chunks (launch_attention_split, its workspace
// filled with NaN first so a partial result that is not written shows); splits < 0 runs launch_attention with Auto
// and a workspace, so the dispatcher decides.
std::vector<float> run_gpu(const Tensor& q, const Tensor& k, const Tensor& v, const OmniMask& mask, float scale,
                           AttentionVariant variant, int splits = 0) {
  const int64_t B = q.size(0), Lq = q.size(1), Hq = q.size(2), Dv = v.size(3);
  constexpr float kSentinel = 7.25f;
  Tensor backing = Tensor::from_f32({B, Lq, Hq, Dv + 3},
                                    std::vector<float>(static_cast<size_t>(B * Lq * Hq * (Dv + 3)), kSentinel));
  Tensor out = backing.slice(3, 0, Dv);
  test::DeviceMirror dq(q), dk(k), dv(v), dout(out);

  AttentionParams p;
  p.q = dq.ptr();
  p.k = dk.ptr();
  p.v = dv.ptr();
  p.out = dout.f32();
  p.input_type = q.dtype() == DType::BF16 ? cuda::AttentionInputType::BF16 : cuda::AttentionInputType::F32;
  p.q_batch_stride = q.stride(0), p.q_row_stride = q.stride(1), p.q_head_stride = q.stride(2);
  p.k_batch_stride = k.stride(0), p.k_row_stride = k.stride(1), p.k_head_stride = k.stride(2);
  p.v_batch_stride = v.stride(0), p.v_row_stride = v.stride(1), p.v_head_stride = v.stride(2);
  p.out_batch_stride = out.stride(0), p.out_row_stride = out.stride(1), p.out_head_stride = out.stride(2);
  p.batch = static_cast<int32_t>(B);
  p.num_queries = static_cast<int32_t>(Lq);
  p.num_keys = static_cast<int32_t>(k.size(1));
  p.num_heads = static_cast<int32_t>(Hq);
  p.num_kv_heads = static_cast<int32_t>(k.size(2));
  p.head_dim = static_cast<int32_t>(q.size(3));
  p.value_dim = static_cast<int32_t>(Dv);
  p.scale = scale;
  p.variant = variant;
  CHECK_EQ(cuda::fill_attention_mask(mask, 0, B, &p.mask), B);  // every test batch fits one launch
  if (splits == 0) {
    SHOWO2_CUDA_CHECK(cuda::launch_attention(p, nullptr));
  } else {
    const int chunks = splits > 0 ? splits : std::max(1, cuda::attention_split_count(p));
    const size_t floats = cuda::attention_split_workspace_floats(p, chunks);
    test::DeviceMirror workspace(Tensor::from_f32({static_cast<int64_t>(floats)},
                                                  std::vector<float>(floats, std::nanf(""))));
    p.split_workspace = workspace.f32();
    p.split_workspace_floats = floats;
    SHOWO2_CUDA_CHECK(splits > 0 ? cuda::launch_attention_split(p, splits, nullptr) : cuda::launch_attention(p, nullptr));
    test::sync_and_check();
  }
  test::sync_and_check();

  Tensor got_backing = dout.download();
  std::vector<float> all = Tensor::view_of(got_backing.storage(), DType::F32, backing.shape(), backing.strides(), 0)
                               .to_f32_vector();
  for (size_t i = 0; i < all.size(); ++i)
    if (static_cast<int64_t>(i) % (Dv + 3) >= Dv && all[i] != kSentinel)
      test::fail_at(__FILE__, __LINE__, "attention wrote outside out's view at flat index " + std::to_string(i));
  return got_backing.to_f32_vector();  // got_backing is the out view
}

// The CPU backend's answer, then each GPU variant against it. `bf16` rounds q, k, v to bf16 first; q, k, v that are
// BF16 already (strided BF16 views) are used as they are. Both sides see the same values: the GPU reads BF16, the
// CPU the same values widened to F32. BF16 inputs with max(D, Dv) <= 128 also run v3, which must really be the
// tensor-core kernel on the device under test (compute capability 8.0 and newer), not its v2 fallback.
void check_attention(const std::string& what, const Tensor& q, const Tensor& k, const Tensor& v, const OmniMask& mask,
                     float scale, double tolerance = kTolerance, bool bf16 = false) {
  test::require_cuda_device();
  Tensor q_in = bf16 ? q.to(DType::BF16) : q, k_in = bf16 ? k.to(DType::BF16) : k, v_in = bf16 ? v.to(DType::BF16) : v;
  const bool bf16_in = q_in.dtype() == DType::BF16;
  Tensor q_ref = bf16_in ? q_in.to(DType::F32) : q, k_ref = bf16_in ? k_in.to(DType::F32) : k,
         v_ref = bf16_in ? v_in.to(DType::F32) : v;
  Tensor ref_out = Tensor::empty({q.size(0), q.size(1), q.size(2), v.size(3)}, DType::F32);
  cpu_backend().attention(q_ref, k_ref, v_ref, mask, scale, ref_out);
  const std::vector<float> ref = ref_out.to_f32_vector();
  for (AttentionVariant variant : {AttentionVariant::Naive, AttentionVariant::Tiled}) {
    const std::vector<float> got = run_gpu(q_in, k_in, v_in, mask, scale, variant);
    const std::string label = what + (variant == AttentionVariant::Naive ? " [v1 naive]" : " [v2 tiled]");
    std::printf("    %-64s max |err| %.2e\n", label.c_str(), static_cast<double>(max_abs_diff(got, ref)));
    EXPECT_CLOSE(got.data(), ref.data(), ref.size(), tolerance, tolerance, label);
  }
  if (bf16_in && std::max(q.size(3), v.size(3)) <= cuda::kAttentionMmaMaxHeadDim) {
    const std::string label = what + " [v3 tensor cores]";
    AttentionParams probe;
    probe.input_type = cuda::AttentionInputType::BF16;
    probe.head_dim = static_cast<int32_t>(q.size(3));
    probe.value_dim = static_cast<int32_t>(v.size(3));
    if (!cuda::attention_mma_supported(probe))
      test::fail_at(__FILE__, __LINE__, label + ": the device cannot run v3 (compute capability below 8.0?)");
    const std::vector<float> got = run_gpu(q_in, k_in, v_in, mask, scale, AttentionVariant::TensorCore);
    const double mean = mean_abs_diff(got, ref);
    std::printf("    %-64s max |err| %.2e, mean %.2e\n", label.c_str(), static_cast<double>(max_abs_diff(got, ref)),
                mean);
    EXPECT_CLOSE(got.data(), ref.data(), ref.size(), kTensorCoreMaxError, 0.0, label);
    if (!(mean <= kTensorCoreMeanError))
      test::fail_at(__FILE__, __LINE__, label + ": mean |err| " + std::to_string(mean) + " > " +
                                            std::to_string(kTensorCoreMeanError));
  }
}

// Self-attention over contiguous [B, L, H*, D] random tensors with scale 1/sqrt(D).
void check_self_attention(const std::string& what, int64_t B, int64_t L, int64_t Hq, int64_t Hkv, int64_t D,
                          const OmniMask& mask, uint32_t seed, int64_t Dv = -1, bool bf16 = false) {
  if (Dv < 0) Dv = D;
  Tensor q = random_tensor({B, L, Hq, D}, seed);
  Tensor k = random_tensor({B, L, Hkv, D}, seed + 1);
  Tensor v = random_tensor({B, L, Hkv, Dv}, seed + 2);
  check_attention(what, q, k, v, mask, 1.0f / std::sqrt(static_cast<float>(D)), kTolerance, bf16);
}

}  // namespace

// ---- the mask as kernel data (host only: runs without a GPU) ------------------------------------------------------

SHOWO2_TEST(packed_mask_key_end_matches_omni_mask) {
  const std::vector<OmniMask> masks = {
      OmniMask::causal(), OmniMask::causal(37), OmniMask::full(),
      OmniMask::omni({{{12, 730}}, {{2, 730}}}),
      OmniMask::omni({{{5, 20}, {40, 100}, {300, 300}, {650, 1}}, {{0, 50}, {200, 400}}}),
      OmniMask::omni({{{37, 730}}}, 37), OmniMask::omni({{{100, 29}, {150, 50}}}, 120)};
  const int64_t B = 2, Lq = 800, Lk = 900;
  for (size_t m = 0; m < masks.size(); ++m) {
    AttentionMask packed;
    CHECK_EQ(cuda::fill_attention_mask(masks[m], 0, B, &packed), B);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t i = 0; i < Lq; ++i) {
        const int64_t want = masks[m].key_end(b, i, Lk);
        const int got = cuda::attention_key_end(packed, static_cast<int>(b), i, static_cast<int>(Lk));
        if (got != want)
          test::fail_at(__FILE__, __LINE__, "mask " + std::to_string(m) + " sample " + std::to_string(b) + " row " +
                                                std::to_string(i) + ": key_end " + std::to_string(got) +
                                                " != OmniMask's " + std::to_string(want));
      }
  }
}

SHOWO2_TEST(packed_mask_splits_batches_that_do_not_fit_one_launch) {
  // 70 per-sample lists: the first launch takes AttentionMask::kMaxLists samples, the second the rest, and sample
  // b0 + i of the batch is list i of its launch.
  std::vector<std::vector<BidirectionalBlock>> lists;
  for (int64_t b = 0; b < 70; ++b) lists.push_back({{b, 10}, {100 + b, 5}});
  OmniMask mask = OmniMask::omni(lists);
  AttentionMask packed;
  CHECK_EQ(cuda::fill_attention_mask(mask, 0, 70, &packed), int64_t{AttentionMask::kMaxLists});
  CHECK_EQ(cuda::fill_attention_mask(mask, AttentionMask::kMaxLists, 70, &packed), int64_t{70 - 64});
  for (int64_t i = 0; i < 6; ++i)
    for (int64_t row = 0; row < 200; ++row)
      CHECK_EQ(int64_t{cuda::attention_key_end(packed, static_cast<int>(i), row, 500)}, mask.key_end(64 + i, row, 500));
  // Lists of 100 blocks: two fit the 256-block capacity, so launches take two samples at a time.
  std::vector<std::vector<BidirectionalBlock>> big(5);
  for (auto& l : big)
    for (int64_t j = 0; j < 100; ++j) l.push_back({3 * j, 2});
  CHECK_EQ(cuda::fill_attention_mask(OmniMask::omni(big), 0, 5, &packed), int64_t{2});
  // A shared list covers any batch in one launch.
  CHECK_EQ(cuda::fill_attention_mask(OmniMask::omni({{{4, 8}}}), 0, 1000, &packed), int64_t{1000});
}

// ---- masks --------------------------------------------------------------------------------------------------------

SHOWO2_TEST(causal_matches_cpu) {
  check_self_attention("causal B2 L7 H2 D64", 2, 7, 2, 2, 64, OmniMask::causal(), 11);
  check_self_attention("causal B1 L1 H3 D64", 1, 1, 3, 3, 64, OmniMask::causal(), 12);
  check_self_attention("causal GQA 12/2 D128 (LLM 1.5B) B2 L1000", 2, 1000, 12, 2, 128, OmniMask::causal(), 13);
}

SHOWO2_TEST(full_matches_cpu) {
  check_self_attention("full SigLIP 16/16 D72 B2 L729", 2, 729, 16, 16, 72, OmniMask::full(), 21);
  check_self_attention("full VAE 1 head D384 L300", 1, 300, 1, 1, 384, OmniMask::full(), 22);
  check_self_attention("full VAE 1 head D384 L2916 (54x54)", 1, 2916, 1, 1, 384, OmniMask::full(), 23);
}

SHOWO2_TEST(omni_one_and_several_blocks_per_sample) {
  // Several blocks in sample 0, different ones in sample 1; blocks start and end mid-tile, one is a single token.
  OmniMask per_sample = OmniMask::omni({{{5, 20}, {40, 100}, {300, 300}, {650, 1}}, {{0, 50}, {200, 400}}});
  check_self_attention("omni per-sample blocks B2 L730 H2 D72", 2, 730, 2, 2, 72, per_sample, 31);
  OmniMask shared = OmniMask::omni({{{100, 29}, {150, 50}}});  // shared list; a block reaches the end
  check_self_attention("omni shared blocks B2 L200 H2 D64", 2, 200, 2, 2, 64, shared, 32);
  // The T2I CFG layout (bench/gpu/torch_baselines.py): cond block after 12 prompt tokens, uncond after 2.
  OmniMask cfg = OmniMask::omni({{{12, 730}}, {{2, 730}}});
  check_self_attention("omni CFG GQA 32/8 D64 (flow head) B2 L1030", 2, 1030, 32, 8, 64, cfg, 33);
  check_self_attention("omni CFG GQA 12/2 D128 (LLM 1.5B) B2 L1030", 2, 1030, 12, 2, 128, cfg, 34);
  check_self_attention("omni GQA 28/4 D128 (LLM 7B) B1 L57", 1, 57, 28, 4, 128, OmniMask::omni({{{20, 30}}}), 35);
}

SHOWO2_TEST(kv_cache_query_offset) {
  // Keys and values live in a cache of capacity 1100 ([B, cap, Hkv, D]); the valid prefix is a strided view of it.
  const int64_t B = 2, Hq = 12, Hkv = 2, D = 128, cap = 1100;
  Tensor k_cache = random_tensor({B, cap, Hkv, D}, 41), v_cache = random_tensor({B, cap, Hkv, D}, 42);
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  {
    // Decoding one token after an 800-token prefix: the query is position 800 and sees all 801 keys.
    const int64_t prefix = 800, Lk = prefix + 1;
    Tensor q = random_tensor({B, 1, Hq, D}, 43);
    check_attention("decode Lq1 after 800 cached (causal)", q, k_cache.slice(1, 0, Lk), v_cache.slice(1, 0, Lk),
                    OmniMask::causal(prefix), scale);
    // The same after an image block that ended before the query: the block changes nothing for it.
    check_attention("decode Lq1 after a finished block", q, k_cache.slice(1, 0, Lk), v_cache.slice(1, 0, Lk),
                    OmniMask::omni({{{100, 600}}}, prefix), scale);
  }
  {
    // A 730-token bidirectional block after a 37-token cached prefix (spec §12 prefix caching): rows see the prefix
    // and the whole block.
    const int64_t prefix = 37, Lq = 730, Lk = prefix + Lq;
    Tensor q = random_tensor({B, Lq, Hq, D}, 44);
    check_attention("block of 730 after 37 cached", q, k_cache.slice(1, 0, Lk), v_cache.slice(1, 0, Lk),
                    OmniMask::omni({{{prefix, Lq}}}, prefix), scale);
  }
  {
    // A small group of query tokens (speculative / multi-token decode) at per-sample block offsets.
    const int64_t prefix = 1000, Lq = 5, Lk = prefix + Lq;
    Tensor q = random_tensor({B, Lq, Hq, D}, 45);
    check_attention("group of 5 queries after 1000 cached", q, k_cache.slice(1, 0, Lk), v_cache.slice(1, 0, Lk),
                    OmniMask::omni({{{10, 700}}, {{998, 4}}}, prefix), scale);
  }
}

// ---- layouts and shapes ---------------------------------------------------------------------------------------------

SHOWO2_TEST(strided_views_into_fused_qkv) {
  // q, k, v as head slices of one fused projection [B, L, Hq + 2 Hkv, D], as the LLM produces them.
  const int64_t B = 2, L = 300, Hq = 12, Hkv = 2, D = 128;
  Tensor qkv = random_tensor({B, L, Hq + 2 * Hkv, D}, 51);
  Tensor q = qkv.slice(2, 0, Hq), k = qkv.slice(2, Hq, Hq + Hkv), v = qkv.slice(2, Hq + Hkv, Hq + 2 * Hkv);
  check_attention("fused qkv views GQA 12/2 D128 omni", q, k, v, OmniMask::omni({{{12, 200}}, {{2, 250}}}),
                  1.0f / std::sqrt(static_cast<float>(D)));
  // Batch-major strides other than the packed ones: every other sample of a larger batch.
  Tensor wide = random_tensor({4, 65, 3, 64}, 52);
  Tensor sel = wide.reshape({2, 2, 65, 3, 64}).select(1, 1);  // samples 1 and 3
  check_attention("every other sample (batch stride 2x)", sel, sel, sel, OmniMask::causal(), 0.125f);
}

SHOWO2_TEST(awkward_head_dims) {
  check_self_attention("D 7, Dv 13 causal L70 GQA 2/1", 2, 70, 2, 1, 7, OmniMask::causal(), 61, 13);
  check_self_attention("D 20, Dv 8 full L65", 1, 65, 1, 1, 20, OmniMask::full(), 62, 8);
  check_self_attention("D 1, Dv 1 causal L9", 1, 9, 1, 1, 1, OmniMask::causal(), 63, 1);
  check_self_attention("D 200 (384 bucket) omni L150", 1, 150, 2, 2, 200, OmniMask::omni({{{30, 70}}}), 64);
  check_self_attention("D 450 (512 bucket) full L97", 1, 97, 2, 1, 450, OmniMask::full(), 65);
  check_self_attention("D 600, Dv 520 (generic path) causal L40", 1, 40, 1, 1, 600, OmniMask::causal(), 66, 520);
}

SHOWO2_TEST(no_keys_writes_zeros) {
  Tensor q = random_tensor({1, 3, 2, 64}, 71);
  Tensor k = Tensor::empty({1, 0, 2, 64}, DType::F32), v = Tensor::empty({1, 0, 2, 64}, DType::F32);
  check_attention("Lk 0", q, k, v, OmniMask::full(), 0.125f);
}

SHOWO2_TEST(online_softmax_rescales_across_tiles) {
  // Scores that grow along the keys (to ~190 at the last key) raise the running max on every key tile, so each step
  // must rescale; exp of the raw scores would overflow F32. F32 scores near 190 carry rounding errors near 1e-5 that
  // the softmax weights inherit (PyTorch's F32 SDPA is off by 5e-5 here too), so this case allows 10x the tolerance.
  const int64_t L = 300, D = 64;
  std::vector<float> qv(static_cast<size_t>(L * D), 1.0f), kv = test::random_normal(static_cast<size_t>(L * D), 81);
  for (int64_t j = 0; j < L; ++j)
    for (int64_t d = 0; d < D; ++d) {
      float& x = kv[static_cast<size_t>(j * D + d)];
      x = 0.02f * static_cast<float>(j) + 0.1f * x;
    }
  Tensor q = Tensor::from_f32({1, L, 1, D}, qv), k = Tensor::from_f32({1, L, 1, D}, kv);
  Tensor v = random_tensor({1, L, 1, D}, 82);
  check_attention("rising scores, causal", q, k, v, OmniMask::causal(), 0.5f, 10 * kTolerance);
}

SHOWO2_TEST(bf16_inputs) {
  check_self_attention("bf16 omni CFG GQA 12/2 D128 B2 L300", 2, 300, 12, 2, 128,
                       OmniMask::omni({{{12, 200}}, {{2, 200}}}), 91, -1, true);
  check_self_attention("bf16 full VAE D384 L500", 1, 500, 1, 1, 384, OmniMask::full(), 92, -1, true);
  check_self_attention("bf16 full SigLIP D72 L129", 1, 129, 16, 16, 72, OmniMask::full(), 93, -1, true);
}

SHOWO2_TEST(bf16_tensor_core_shapes) {
  // v3's buckets (64, 80 for D 72, 128), its masks and its staging paths (16-byte vectors; element-wise for head dims
  // that are not multiples of 8 and for strides that are not), at Show-o2's head counts.
  check_self_attention("bf16 causal GQA 32/8 D64 (flow head) B2 L1000", 2, 1000, 32, 8, 64, OmniMask::causal(), 101,
                       -1, true);
  check_self_attention("bf16 causal GQA 12/2 D128 (LLM 1.5B) B1 L777", 1, 777, 12, 2, 128, OmniMask::causal(), 102, -1,
                       true);
  OmniMask per_sample = OmniMask::omni({{{5, 20}, {40, 100}, {300, 300}, {650, 1}}, {{0, 50}, {200, 400}}});
  check_self_attention("bf16 omni per-sample blocks B2 L730 H2 D72", 2, 730, 2, 2, 72, per_sample, 103, -1, true);
  check_self_attention("bf16 omni CFG GQA 32/8 D64 B2 L1030", 2, 1030, 32, 8, 64, OmniMask::omni({{{12, 730}}, {{2, 730}}}),
                       104, -1, true);
  check_self_attention("bf16 D 20, Dv 8 full L65 (element staging)", 1, 65, 1, 1, 20, OmniMask::full(), 105, 8, true);
  check_self_attention("bf16 D 7, Dv 13 causal L70 GQA 2/1", 2, 70, 2, 1, 7, OmniMask::causal(), 106, 13, true);
  check_self_attention("bf16 D 96 causal L129 (128 bucket, padded)", 1, 129, 4, 4, 96, OmniMask::causal(), 107, -1,
                       true);
  check_self_attention("bf16 causal L1 (one row)", 1, 1, 3, 3, 64, OmniMask::causal(), 108, -1, true);

  // Strided BF16 views: heads of one fused qkv projection, and a KV cache read through query_offset.
  const int64_t B = 2, L = 300, Hq = 12, Hkv = 2, D = 128;
  Tensor qkv = random_tensor({B, L, Hq + 2 * Hkv, D}, 109).to(DType::BF16);
  check_attention("bf16 fused qkv views GQA 12/2 D128 omni", qkv.slice(2, 0, Hq), qkv.slice(2, Hq, Hq + Hkv),
                  qkv.slice(2, Hq + Hkv, Hq + 2 * Hkv), OmniMask::omni({{{12, 200}}, {{2, 250}}}),
                  1.0f / std::sqrt(static_cast<float>(D)));
  const int64_t cap = 1100, prefix = 37, Lq = 730, Lk = prefix + Lq;
  Tensor k_cache = random_tensor({B, cap, Hkv, D}, 110).to(DType::BF16);
  Tensor v_cache = random_tensor({B, cap, Hkv, D}, 111).to(DType::BF16);
  Tensor q = random_tensor({B, Lq, Hq, D}, 112).to(DType::BF16);
  check_attention("bf16 block of 730 after 37 cached", q, k_cache.slice(1, 0, Lk), v_cache.slice(1, 0, Lk),
                  OmniMask::omni({{{prefix, Lq}}}, prefix), 1.0f / std::sqrt(static_cast<float>(D)));
  Tensor q1 = random_tensor({B, 1, Hq, D}, 113).to(DType::BF16);
  check_attention("bf16 decode Lq1 after 800 cached", q1, k_cache.slice(1, 0, 801), v_cache.slice(1, 0, 801),
                  OmniMask::causal(800), 1.0f / std::sqrt(static_cast<float>(D)));
  // Rows 68 elements apart starting 2 elements in: neither the stride nor the start allows 16-byte vectors, so
  // q, k and v take the element-wise staging path at D 64.
  Tensor wide = random_tensor({1, 200, 1, 68}, 114).to(DType::BF16);
  Tensor unaligned = wide.slice(3, 2, 66);
  check_attention("bf16 rows of stride 68, 4-byte aligned (element staging)", unaligned, unaligned, unaligned,
                  OmniMask::omni({{{50, 77}}}), 0.125f);
}

SHOWO2_TEST(bf16_tensor_core_masked_rows) {
  // Rows that see no key at all write zeros, and no key past Lk leaks in: queries after an empty key set, and a
  // mask whose first rows see one key each.
  Tensor q = random_tensor({1, 3, 2, 64}, 121).to(DType::BF16);
  Tensor k = Tensor::empty({1, 0, 2, 64}, DType::BF16), v = Tensor::empty({1, 0, 2, 64}, DType::BF16);
  check_attention("bf16 Lk 0", q, k, v, OmniMask::full(), 0.125f);
  check_self_attention("bf16 causal B3 L65 (one key tile plus one key)", 3, 65, 4, 2, 128, OmniMask::causal(), 122, -1,
                       true);
}

// ---- split-KV decoding (cuda/attention_decode.cu) --------------------------------------------------------------------

// The CPU backend's answer against the split-KV path with each of `split_counts` chunk counts, and against Auto with a
// workspace. Same F32 computation as v2, split into chunks and recombined: the same tolerance.
void check_split(const std::string& what, const Tensor& q, const Tensor& k, const Tensor& v, const OmniMask& mask,
                 float scale, const std::vector<int>& split_counts, bool bf16 = false) {
  test::require_cuda_device();
  Tensor q_in = bf16 ? q.to(DType::BF16) : q, k_in = bf16 ? k.to(DType::BF16) : k, v_in = bf16 ? v.to(DType::BF16) : v;
  Tensor ref_out = Tensor::empty({q.size(0), q.size(1), q.size(2), v.size(3)}, DType::F32);
  cpu_backend().attention(bf16 ? q_in.to(DType::F32) : q, bf16 ? k_in.to(DType::F32) : k,
                          bf16 ? v_in.to(DType::F32) : v, mask, scale, ref_out);
  const std::vector<float> ref = ref_out.to_f32_vector();
  std::vector<int> runs = split_counts;
  runs.push_back(-1);  // Auto
  for (int splits : runs) {
    const std::vector<float> got = run_gpu(q_in, k_in, v_in, mask, scale, AttentionVariant::Auto, splits);
    const std::string label = what + (splits > 0 ? " [split-KV x" + std::to_string(splits) + "]" : " [Auto]");
    std::printf("    %-64s max |err| %.2e\n", label.c_str(), static_cast<double>(max_abs_diff(got, ref)));
    // Auto on BF16 may take v3 when it does not split; its bound is v3's.
    const double tolerance = splits < 0 && bf16 ? kTensorCoreMaxError : kTolerance;
    EXPECT_CLOSE(got.data(), ref.data(), ref.size(), tolerance, splits < 0 && bf16 ? 0.0 : kTolerance, label);
  }
}

SHOWO2_TEST(split_kv_decoding_matches_cpu) {
  const int64_t B = 2, Hq = 12, Hkv = 2, D = 128, cap = 4200;
  Tensor k_cache = random_tensor({B, cap, Hkv, D}, 131), v_cache = random_tensor({B, cap, Hkv, D}, 132);
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  // One token after 4000 cached (video understanding lengths): chunk counts that divide the keys unevenly, more
  // chunks than tiles of some rows, and one chunk.
  Tensor q1 = random_tensor({B, 1, Hq, D}, 133);
  check_split("decode Lq1 after 4000 cached GQA 12/2 D128", q1, k_cache.slice(1, 0, 4001), v_cache.slice(1, 0, 4001),
              OmniMask::causal(4000), scale, {1, 3, 16, 63});
  check_split("decode Lq1 after 4000 cached, bf16", q1, k_cache.slice(1, 0, 4001), v_cache.slice(1, 0, 4001),
              OmniMask::causal(4000), scale, {7}, true);
  // A group of 5 query rows (a token group, 6 heads per KV head: 30 rows per block) with per-sample blocks around
  // the query positions; sample 1's block makes rows see keys past their own position.
  Tensor q5 = random_tensor({B, 5, Hq, D}, 134);
  check_split("group of 5 after 3000 cached, per-sample blocks", q5, k_cache.slice(1, 0, 3005),
              v_cache.slice(1, 0, 3005), OmniMask::omni({{{10, 700}}, {{2998, 6}}}, 3000), scale, {2, 9});
  // The flow head's shape (32/8 heads of 64: 4 rows per KV head) and the 7B LLM's (28/4: 7 rows), odd key counts.
  Tensor kf = random_tensor({1, 1537, 8, 64}, 135), vf = random_tensor({1, 1537, 8, 64}, 136);
  check_split("decode 32/8 D64 Lk 1537", random_tensor({1, 1, 32, 64}, 137), kf, vf, OmniMask::causal(1536), 0.125f,
              {4, 11});
  Tensor k7 = random_tensor({1, 999, 4, 128}, 138), v7 = random_tensor({1, 999, 4, 128}, 139);
  check_split("decode 28/4 D128 Lk 999, Dv 128", random_tensor({1, 1, 28, 128}, 140), k7, v7, OmniMask::causal(998),
              scale, {3});
  // 64 rows per KV head (the limit: 16 heads x 4 queries, MHA-like groups) and a value dim narrower than the head.
  Tensor k64 = random_tensor({1, 700, 1, 72}, 141), v64 = random_tensor({1, 700, 1, 40}, 142);
  check_split("64 rows per KV head, D72 Dv40", random_tensor({1, 4, 16, 72}, 143), k64, v64, OmniMask::causal(696),
              1.0f / std::sqrt(72.0f), {5});
}

SHOWO2_TEST(split_kv_dispatch) {
  // What Auto does with a workspace: split a single decoding row over a long cache; not a prefill; not past the
  // row and head-dim limits; not without enough keys.
  test::require_cuda_device();
  AttentionParams p;
  p.batch = 1, p.num_queries = 1, p.num_keys = 8000, p.num_heads = 12, p.num_kv_heads = 2, p.head_dim = 128,
  p.value_dim = 128;
  CHECK(cuda::attention_split_count(p) > 1);
  AttentionParams prefill = p;
  prefill.num_queries = 730;
  CHECK_EQ(cuda::attention_split_count(prefill), 1);
  AttentionParams wide = p;
  wide.head_dim = wide.value_dim = 384;
  CHECK_EQ(cuda::attention_split_count(wide), 1);
  AttentionParams short_cache = p;
  short_cache.num_keys = 100;
  CHECK_EQ(cuda::attention_split_count(short_cache), 1);
  // A workspace smaller than the split needs is refused by the split launcher (and Auto then does not split).
  p.split_workspace = reinterpret_cast<float*>(16);
  p.split_workspace_floats = cuda::attention_split_workspace_floats(p, 4) - 1;
  CHECK_EQ(cuda::launch_attention_split(p, 4, nullptr), cudaErrorInvalidValue);
}

SHOWO2_TEST_MAIN()
