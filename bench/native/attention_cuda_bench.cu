// Benchmark for the CUDA attention kernels (cuda/attention.cu, v1 naive and v2 tiled, F32 and BF16 inputs) at the
// attention shapes of bench/gpu/torch_baselines.py, and the direct conv kernel (cuda/conv.cu) at the VAE's conv shapes,
// so one GPU session can print showo2 next to PyTorch's SDPA / FlexAttention / cuDNN conv rows (bench/RESULTS.md).
//
//   attention_cuda_bench [--json] [--only attention,decode,conv] [--variants v1,v2,v3,v3cl] [--dtypes f32,bf16]
//                        [--iters N]
// (v3, the BF16 tensor-core attention, runs on bf16 inputs only; decode rows also time the split-KV path with v2.
// v3cl is conv only: the tensor-core conv on channels-last activations and weights, the layout torch's rows use.)
//
// Case names: attn_<torch case>_showo2_<variant>_<dtype> (torch rows: attn_<torch case>_sdpa_<backend>, _flex) and
// conv{2,3}d_<torch case>_showo2_<variant> (torch rows: conv{2,3}d_<torch case>).
// TFLOP/s for attention counts only allowed (query, key) pairs, 4 * D flops each per query head (q·k and p·v), as
// torch_baselines.py does, so masked cases compare fairly. TFLOP/s for conv counts the dense conv torch runs
// (2 * N * O * C * taps * To * Ho * Wo, all 27 taps even where showo2 skips the causal padding frames), so the
// ms ratio and the TFLOP/s ratio agree.
// Timing: CUDA events around each call, warm-up calls first, the median of --iters calls (fewer for v1, which is
// slow by design).
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "attention.h"
#include "attention_decode.h"
#include "attention_mma.h"
#include "bench_util.h"
#include "conv.h"
#include "conv_mma.h"
#include "cuda_test_util.h"
#include "device_info.h"

using namespace showo2;

namespace {

struct Options {
  bool json = false;
  std::string only = "attention,decode,conv";
  std::string variants = "v1,v2,v3,v3cl";
  std::string dtypes = "f32,bf16";
  int iters = 20;
};

[[noreturn]] void usage(const std::string& message) {
  std::fprintf(stderr,
               "attention_cuda_bench: %s\nusage: attention_cuda_bench [--json] [--only attention,decode,conv] "
               "[--variants v1,v2,v3,v3cl] [--dtypes f32,bf16] [--iters N]\n",
               message.c_str());
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage("missing value after " + a);
      return argv[++i];
    };
    if (a == "--json") o.json = true;
    else if (a == "--only") o.only = value();
    else if (a == "--variants") o.variants = value();
    else if (a == "--dtypes") o.dtypes = value();
    else if (a == "--iters") o.iters = std::max(1, std::atoi(value().c_str()));
    else usage("unknown option " + a);
  }
  return o;
}

bool listed(const std::string& list, const std::string& item) {
  return ("," + list + ",").find("," + item + ",") != std::string::npos;
}

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    std::fprintf(stderr, "attention_cuda_bench: %s: %s\n", what, cudaGetErrorString(err));
    std::exit(1);
  }
}

// Median milliseconds of `iters` calls of fn (which launches on the default stream), after `warmup` calls.
template <typename Fn>
double median_ms(Fn&& fn, int warmup, int iters) {
  for (int i = 0; i < warmup; ++i) fn();
  check(cudaDeviceSynchronize(), "warm-up");
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start), "cudaEventCreate");
  check(cudaEventCreate(&stop), "cudaEventCreate");
  std::vector<double> times;
  for (int i = 0; i < iters; ++i) {
    check(cudaEventRecord(start), "cudaEventRecord");
    fn();
    check(cudaEventRecord(stop), "cudaEventRecord");
    check(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
    times.push_back(ms);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

void report(bool json, const std::string& name, double ms, double flops, const char* note) {
  const double tflops = flops / (ms * 1e9);
  if (json)
    std::printf("{\"case\": \"%s\", \"ms\": %.4f, \"tflops\": %.3f, \"note\": \"%s\"}\n", name.c_str(), ms, tflops,
                note);
  else
    std::printf("%-58s %9.3f ms %8.2f TFLOP/s  %s\n", name.c_str(), ms, tflops, note);
  std::fflush(stdout);
}

// ---- attention ----------------------------------------------------------------------------------------------------

struct AttentionCase {
  const char* name;
  int B, Hq, Hkv, D, L;
  std::vector<std::vector<BidirectionalBlock>> blocks;  // empty: full attention
};

void attention_cases(const Options& opt) {
  // The cases of bench/gpu/torch_baselines.py attention_cases(), same shapes and masks.
  const std::vector<AttentionCase> cases = {
      {"llm1.5b_t2i_cfg", 2, 12, 2, 128, 1024, {{{12, 730}}, {{2, 730}}}},
      {"head_t2i_cfg", 2, 32, 8, 64, 1024, {{{12, 730}}, {{2, 730}}}},
      {"llm1.5b_t2i_1024px", 2, 12, 2, 128, 4352, {{{100, 4097}}, {{2, 4097}}}},
      {"llm7b_t2i_cfg", 2, 28, 4, 128, 1024, {{{12, 730}}, {{2, 730}}}},
      {"siglip_full", 2, 16, 16, 72, 729, {}},
      {"vae_mid_attn_54x54", 1, 1, 1, 384, 2916, {}},
  };
  for (const AttentionCase& c : cases) {
    const OmniMask mask = c.blocks.empty() ? OmniMask::full() : OmniMask::omni(c.blocks);
    double allowed_pairs = 0;
    for (int b = 0; b < c.B; ++b)
      for (int i = 0; i < c.L; ++i) allowed_pairs += static_cast<double>(mask.key_end(b, i, c.L));
    const double flops = 4.0 * c.Hq * c.D * allowed_pairs;

    const Tensor q32 = bench::random_normal_tensor({c.B, c.L, c.Hq, c.D}, 1.0f, 1);
    const Tensor k32 = bench::random_normal_tensor({c.B, c.L, c.Hkv, c.D}, 1.0f, 2);
    const Tensor v32 = bench::random_normal_tensor({c.B, c.L, c.Hkv, c.D}, 1.0f, 3);
    test::DeviceMirror out(Tensor::empty({c.B, c.L, c.Hq, c.D}, DType::F32));
    for (const char* dtype : {"f32", "bf16"}) {
      if (!listed(opt.dtypes, dtype)) continue;
      const bool bf16 = std::string(dtype) == "bf16";
      test::DeviceMirror q(bf16 ? q32.to(DType::BF16) : q32), k(bf16 ? k32.to(DType::BF16) : k32),
          v(bf16 ? v32.to(DType::BF16) : v32);
      cuda::AttentionParams p;
      p.q = q.ptr(), p.k = k.ptr(), p.v = v.ptr(), p.out = out.f32();
      p.input_type = bf16 ? cuda::AttentionInputType::BF16 : cuda::AttentionInputType::F32;
      p.q_row_stride = int64_t{c.Hq} * c.D, p.q_head_stride = c.D, p.q_batch_stride = p.q_row_stride * c.L;
      p.k_row_stride = int64_t{c.Hkv} * c.D, p.k_head_stride = c.D, p.k_batch_stride = p.k_row_stride * c.L;
      p.v_row_stride = p.k_row_stride, p.v_head_stride = c.D, p.v_batch_stride = p.k_batch_stride;
      p.out_row_stride = p.q_row_stride, p.out_head_stride = c.D, p.out_batch_stride = p.q_batch_stride;
      p.batch = c.B, p.num_queries = c.L, p.num_keys = c.L, p.num_heads = c.Hq, p.num_kv_heads = c.Hkv;
      p.head_dim = c.D, p.value_dim = c.D;
      p.scale = 1.0f / std::sqrt(static_cast<float>(c.D));
      cuda::fill_attention_mask(mask, 0, c.B, &p.mask);
      for (const char* variant : {"v1", "v2", "v3"}) {
        if (!listed(opt.variants, variant)) continue;
        const bool naive = std::string(variant) == "v1", tensor_cores = std::string(variant) == "v3";
        if (tensor_cores && !bf16) continue;  // v3 takes BF16 only
        p.variant = naive ? cuda::AttentionVariant::Naive
                          : tensor_cores ? cuda::AttentionVariant::TensorCore : cuda::AttentionVariant::Tiled;
        if (tensor_cores && !cuda::attention_mma_supported(p)) continue;  // head dim past 128: v3 would run v2
        const double ms = median_ms([&] { check(cuda::launch_attention(p, nullptr), "launch_attention"); },
                                    naive ? 1 : 3, naive ? std::max(3, opt.iters / 5) : opt.iters);
        report(opt.json, std::string("attn_") + c.name + "_showo2_" + variant + "_" + dtype, ms, flops,
               "flops of allowed pairs only");
      }
    }
  }
}

// ---- decoding --------------------------------------------------------------------------------------------------------

struct DecodeCase {
  const char* name;
  int B, Hq, Hkv, D, Lq, Lk;
};

// One token (or a group of 4) over a long KV cache: bound by reading the cache, so the figure is GB/s of K and V
// read once (2 * B * Lk * Hkv * D elements) against the H100's 3.35 TB/s. Variants: "split" (Auto with a workspace:
// split-KV), v2 and v3 (no workspace: one pass per query head, what runs without the split path).
void decode_cases(const Options& opt) {
  const std::vector<DecodeCase> cases = {
      {"decode_llm1.5b_4k", 1, 12, 2, 128, 1, 4096},   {"decode_llm1.5b_16k", 1, 12, 2, 128, 1, 16384},
      {"decode_llm7b_16k", 1, 28, 4, 128, 1, 16384},   {"decode_llm1.5b_b2_video_6k", 2, 12, 2, 128, 1, 6272},
      {"decode_group4_llm1.5b_8k", 1, 12, 2, 128, 4, 8192},
  };
  for (const DecodeCase& c : cases) {
    for (const char* dtype : {"f32", "bf16"}) {
      if (!listed(opt.dtypes, dtype)) continue;
      const bool bf16 = std::string(dtype) == "bf16";
      const Tensor q32 = bench::random_normal_tensor({c.B, c.Lq, c.Hq, c.D}, 1.0f, 21);
      const Tensor k32 = bench::random_normal_tensor({c.B, c.Lk, c.Hkv, c.D}, 1.0f, 22);
      const Tensor v32 = bench::random_normal_tensor({c.B, c.Lk, c.Hkv, c.D}, 1.0f, 23);
      test::DeviceMirror q(bf16 ? q32.to(DType::BF16) : q32), k(bf16 ? k32.to(DType::BF16) : k32),
          v(bf16 ? v32.to(DType::BF16) : v32);
      test::DeviceMirror out(Tensor::empty({c.B, c.Lq, c.Hq, c.D}, DType::F32));
      cuda::AttentionParams p;
      p.q = q.ptr(), p.k = k.ptr(), p.v = v.ptr(), p.out = out.f32();
      p.input_type = bf16 ? cuda::AttentionInputType::BF16 : cuda::AttentionInputType::F32;
      p.q_row_stride = int64_t{c.Hq} * c.D, p.q_head_stride = c.D, p.q_batch_stride = p.q_row_stride * c.Lq;
      p.k_row_stride = int64_t{c.Hkv} * c.D, p.k_head_stride = c.D, p.k_batch_stride = p.k_row_stride * c.Lk;
      p.v_row_stride = p.k_row_stride, p.v_head_stride = c.D, p.v_batch_stride = p.k_batch_stride;
      p.out_row_stride = p.q_row_stride, p.out_head_stride = c.D, p.out_batch_stride = p.q_batch_stride;
      p.batch = c.B, p.num_queries = c.Lq, p.num_keys = c.Lk, p.num_heads = c.Hq, p.num_kv_heads = c.Hkv;
      p.head_dim = c.D, p.value_dim = c.D;
      p.scale = 1.0f / std::sqrt(static_cast<float>(c.D));
      cuda::fill_attention_mask(OmniMask::causal(c.Lk - c.Lq), 0, c.B, &p.mask);
      const double bytes = 2.0 * c.B * c.Lk * c.Hkv * c.D * (bf16 ? 2 : 4);
      const int splits = cuda::attention_split_count(p);
      const size_t floats = cuda::attention_split_workspace_floats(p, splits);
      test::DeviceMirror workspace(Tensor::empty({static_cast<int64_t>(floats)}, DType::F32));
      for (const char* variant : {"split", "v2", "v3"}) {
        if (!listed(opt.variants, variant) && !(std::string(variant) == "split" && listed(opt.variants, "v2"))) continue;
        const std::string v_name = variant;
        if (v_name == "v3" && (!bf16 || !cuda::attention_mma_supported(p))) continue;
        cuda::AttentionParams run = p;
        run.variant = v_name == "v2" ? cuda::AttentionVariant::Tiled
                                     : v_name == "v3" ? cuda::AttentionVariant::TensorCore : cuda::AttentionVariant::Auto;
        if (v_name == "split") run.split_workspace = workspace.f32(), run.split_workspace_floats = floats;
        const double ms = median_ms([&] { check(cuda::launch_attention(run, nullptr), "launch_attention"); }, 3, opt.iters);
        const double gbps = bytes / (ms * 1e6);
        const std::string name = std::string("attn_") + c.name + "_showo2_" + variant + "_" + dtype;
        if (opt.json)
          std::printf("{\"case\": \"%s\", \"ms\": %.4f, \"gbps\": %.1f, \"splits\": %d, \"note\": \"K and V bytes read once\"}\n",
                      name.c_str(), ms, gbps, v_name == "split" ? splits : 1);
        else
          std::printf("%-58s %9.3f ms %8.1f GB/s (%.0f%% of 3.35 TB/s)  %d split(s)\n", name.c_str(), ms, gbps,
                      100.0 * gbps / 3350.0, v_name == "split" ? splits : 1);
        std::fflush(stdout);
      }
    }
  }
}

// ---- convolution ----------------------------------------------------------------------------------------------------

struct ConvCase {
  const char* name;
  int N, C, O, T, H, W;
};

void conv_cases(const Options& opt) {
  // The cases of bench/gpu/torch_baselines.py conv_cases(): the VAE's causal 3x3x3 conv (bf16 weights, F32
  // activations here), and for one frame the equivalent 2-D conv with the last time slice. The decoder's largest is
  // vae_up_96_432x432.
  const std::vector<ConvCase> cases = {
      {"vae_mid_384_54x54_T1", 1, 384, 384, 1, 54, 54},
      {"vae_mid_384_54x54_T5", 1, 384, 384, 5, 54, 54},
      {"vae_up_192_216x216_T1", 1, 192, 192, 1, 216, 216},
      {"vae_up_96_432x432_T1", 1, 96, 96, 1, 432, 432},
  };
  for (const ConvCase& c : cases) {
    for (int dims : {3, 2}) {
      if (dims == 2 && c.T != 1) continue;
      const int KT = dims == 3 ? 3 : 1;
      const Tensor x = bench::random_normal_tensor({c.N, c.C, c.T, c.H, c.W}, 1.0f, 11);
      const Tensor w = bench::random_normal_tensor({c.O, c.C, KT, 3, 3}, 0.05f, 12).to(DType::BF16);
      const Tensor b = bench::random_normal_tensor({c.O}, 0.02f, 13).to(DType::BF16);
      test::DeviceMirror dx(x), dw(w), db(b), dout(Tensor::empty({c.N, c.O, c.T, c.H, c.W}, DType::F32));
      // The channels-last operands: memory [N, T, H, W, C] and [O, KT, 3, 3, C] (random: the values do not matter).
      const Tensor x_cl = bench::random_normal_tensor({c.N, c.T, c.H, c.W, c.C}, 1.0f, 14);
      const Tensor w_cl = bench::random_normal_tensor({c.O, KT, 3, 3, c.C}, 0.05f, 15).to(DType::BF16);
      test::DeviceMirror dx_cl(x_cl), dw_cl(w_cl);
      cuda::ConvParams p;
      p.x = dx.f32(), p.weight = dw.ptr(), p.bias = db.ptr(), p.out = dout.f32();
      p.weight_type = p.bias_type = cuda::ConvWeightType::BF16;
      p.N = c.N, p.C = c.C, p.T = c.T, p.H = c.H, p.W = c.W, p.O = c.O, p.KT = KT, p.KH = 3, p.KW = 3;
      p.To = c.T, p.Ho = c.H, p.Wo = c.W;
      p.pad_front = KT == 3 ? 2 : 0, p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = 1;
      const double flops = 2.0 * c.N * c.O * c.C * KT * 9 * c.T * c.H * c.W;
      for (const char* variant : {"v1", "v2", "v3", "v3cl"}) {
        if (!listed(opt.variants, variant)) continue;
        const bool naive = std::string(variant) == "v1", channels_last = std::string(variant) == "v3cl";
        const bool tensor_cores = std::string(variant) == "v3" || channels_last;
        if (tensor_cores && !cuda::conv_mma_supported()) continue;
        p.variant = naive ? cuda::ConvVariant::Naive
                          : tensor_cores ? cuda::ConvVariant::TensorCore : cuda::ConvVariant::Tiled;
        p.channels_last = p.weight_channels_last = channels_last;
        p.x = channels_last ? dx_cl.f32() : dx.f32();
        p.weight = channels_last ? dw_cl.ptr() : dw.ptr();
        const double ms = median_ms([&] { check(cuda::launch_conv(p, nullptr), "launch_conv"); }, naive ? 1 : 3,
                                    naive ? std::max(3, opt.iters / 5) : opt.iters);
        report(opt.json, std::string(dims == 3 ? "conv3d_" : "conv2d_") + c.name + "_showo2_" + variant, ms, flops,
               "dense flops as torch counts them; f32 activations, bf16 weights");
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const Options opt = parse(argc, argv);
  const cuda::CudaInfo info = cuda::query_cuda();
  if (!info.unavailable_reason.empty()) {
    std::printf("no usable CUDA device (%s): nothing to measure\n", info.unavailable_reason.c_str());
    return 0;
  }
  if (!opt.json)
    std::printf("# showo2 CUDA attention/conv kernels on %s (sm_%d%d), CUDA runtime %s\n",
                info.devices[0].name.c_str(), info.devices[0].compute_major, info.devices[0].compute_minor,
                cuda::cuda_version_string(info.runtime_version).c_str());
  try {
    if (listed(opt.only, "attention")) attention_cases(opt);
    if (listed(opt.only, "decode")) decode_cases(opt);
    if (listed(opt.only, "conv")) conv_cases(opt);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "attention_cuda_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
