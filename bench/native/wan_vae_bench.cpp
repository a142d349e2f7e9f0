// Times the full-size Wan2.1 VAE (WanVaeConfig defaults: dim 96, dim_mult [1, 2, 4, 4], z_dim 16) on the CPU or the
// CUDA backend, encoding and decoding through the chunked causal path, for comparison with
// bench/torch/wan_vae_baseline.py (the same case names on tools/reference/wan_vae.py; on the GPU in bf16
// channels_last_3d, --device cuda).
//
//   wan_vae_bench [--backend cpu|cuda] [--conv f32|bf16] [--layout contiguous|channels-last] [--activations f32|bf16]
//                 [--threads N] [--json] [--case SUBSTRING] [--iters N] [--verbose]
//
//   --backend   cpu (default) or cuda (builds with the CUDA backend; F32 activations, BF16 weights)
//   --conv      cuda: f32 (default; conv v2 on CUDA cores) or bf16 (conv v3 on tensor cores, CudaBackendOptions::conv_dtype)
//   --layout    the VAE's activations: contiguous (default, as PyTorch's default) or channels-last (memory
//               [N, T, H, W, C], conv weights [O, kt, kh, kw, C]: WanVaeLayout::ChannelsLast, the layout the torch
//               baseline runs in; CudaBackendOptions::channels_last_activations)
//   --activations cuda: what the VAE stores its activations in, f32 (default) or bf16 (half the memory and traffic;
//               the convs then run on tensor cores; CudaBackendOptions::conv_activation_dtype)
//   --threads   CPU pool size (default: all hardware threads)
//   --json      one {"case", "backend", "ms", "gflops", "ns_per_pixel", "peak_gib"} object per line
//   --iters     timed calls per case (default 3, after 1 warm-up call; --iters 1 means one cold call, no warm-up)
//   --verbose   print where the time went: per backend op kind, and per layer shape (sorted, with dense GFLOP/s),
//               from a timing wrapper around the backend (on the GPU from one extra call with a sync after every op)
//
// Cases (spec §3.1 shapes); the 81-frame ones only with --backend cuda unless named by --case:
//   wan_vae_encode_image_432          pixels [1, 3, 1, 432, 432]    -> latent [1, 16, 1, 54, 54]
//   wan_vae_decode_image_432          latent [1, 16, 1, 54, 54]     -> pixels [1, 3, 1, 432, 432]
//   wan_vae_encode_video_17x432       pixels [1, 3, 17, 432, 432]   -> latent [1, 16, 5, 54, 54]
//   wan_vae_decode_video_17x432       latent [1, 16, 5, 54, 54]     -> pixels [1, 3, 17, 432, 432]
//   wan_vae_encode_video_81x832x480   pixels [1, 3, 81, 480, 832]   -> latent [1, 16, 21, 60, 104]
//   wan_vae_decode_video_81x832x480   latent [1, 16, 21, 60, 104]   -> pixels [1, 3, 81, 480, 832]
// ns_per_pixel = ms * 1e6 / (frames * H * W), counting the input frames for encode and the decoded frames for decode
// (issue [cuda-vae]'s goal: <= 50 ns per output pixel on an H100). peak_gib (GPU): the most bytes the backend's pool
// held at once during the case (weights included), to set against torch.cuda.max_memory_allocated. GFLOP/s count every
// conv the backend is asked to run as dense (2 * O * C * kt * kh * kw per output element, causal zero-padding taps
// included, which the kernels skip), so it is a rate of the model's nominal work, not of the FMAs executed; attention
// and elementwise ops are not counted. Decode uses WanVae's default options (Auto tiling: untiled at these sizes
// unless the device is short of memory).
//
// Weights: random, in memory, for every key the loader expects (asked of WanVae itself, wan_vae_random_weights.h), with the
// scale of tools/reference/wan_vae.py's random_init_: conv weights N(0, 1/fan_in), biases N(0, 0.02^2), gammas
// exactly 1 (random_init_ jitters them), so activations stay O(1) through the whole network. Fixed seeds.
// Inputs: pixels uniform in [-1, 1], latents N(0, 1).
// Method: 1 warm-up call, then 3 calls, median (these calls take seconds to minutes each); --iters 1 for one cold call.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "bench_util.h"
#include "cpu/cpu_backend.h"
#include "cpu/cpu_features.h"
#include "error.h"
#include "tensor.h"
#include "wan_vae.h"
#include "wan_vae_random_weights.h"
#ifdef SHOWO2_WITH_CUDA
#include "../../cuda/cuda_backend.h"
#endif
#include "weights/weight_file.h"

using namespace showo2;

namespace {

struct BenchCase {
  const char* name;
  bool encode;
  int64_t frames;     // pixel frames: input for encode, output for decode
  int64_t height, width;
  bool gpu_only;      // minutes to hours on a CPU: run only with --backend cuda (or when named by --case)
};

// Keep in sync with CASES in bench/torch/wan_vae_baseline.py.
const BenchCase kCases[] = {
    {"wan_vae_encode_image_432", true, 1, 432, 432, false},
    {"wan_vae_decode_image_432", false, 1, 432, 432, false},
    {"wan_vae_encode_video_17x432", true, 17, 432, 432, false},
    {"wan_vae_decode_video_17x432", false, 17, 432, 432, false},
    {"wan_vae_encode_video_81x832x480", true, 81, 480, 832, true},
    {"wan_vae_decode_video_81x832x480", false, 81, 480, 832, true},
};

// ---- random weights -------------------------------------------------------------------------------------------------

// Random weights of the documented scale (test/native/wan_vae_random_weights.h), F32, fixed seed.
std::map<std::string, Tensor> random_weights(const WanVaeConfig& config) {
  return test::random_wan_vae_weights(config, 1000);
}

Tensor random_uniform_pixels(const Shape& shape, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> values(static_cast<size_t>(shape_numel(shape)));
  for (auto& v : values) v = dist(rng);
  return Tensor::from_f32(shape, values);
}

// ---- where the time goes (FLOP count, --verbose) --------------------------------------------------------------------

// Forwards every op to the CPU backend and adds up its wall time under a label: the op name, and for convs the
// weight shape, stride and input size, so one line is one kind of layer. Ops run synchronously on the pool, so the
// wall time of a call is the op's time. Also counts the dense conv FLOPs for the GFLOP/s column.
class TimingBackend final : public Backend {
 public:
  // sync_each_op: wait for the device after every op so its wall time is the op's (a GPU backend runs
  // asynchronously); costs a stall per op, so only for --verbose breakdowns.
  explicit TimingBackend(Backend& inner, bool sync_each_op = false) : inner_(inner), sync_each_op_(sync_each_op) {}

  struct Entry {
    int calls = 0;
    double ms = 0;
    double flops = 0;
  };
  const std::map<std::string, Entry>& entries() const { return entries_; }
  double total_flops() const {
    double f = 0;
    for (const auto& [label, e] : entries_) f += e.flops;
    return f;
  }
  void reset() { entries_.clear(); }

  std::string name() const override { return "timing(" + inner_.name() + ")"; }
  Device device() const override { return inner_.device(); }
  Tensor empty(const Shape& shape, DType dtype) override { return inner_.empty(shape, dtype); }
  Tensor upload_weight(const Tensor& host) override { return inner_.upload_weight(host); }
  Tensor to_device(const Tensor& host) override { return inner_.to_device(host); }
  Tensor to_host(const Tensor& t) override { return inner_.to_host(t); }
  void synchronize() override { inner_.synchronize(); }
  int64_t available_memory_bytes() override { return inner_.available_memory_bytes(); }
  bool prefers_channels_last_activations() const override { return inner_.prefers_channels_last_activations(); }
  DType preferred_conv_activation_dtype() const override { return inner_.preferred_conv_activation_dtype(); }
  void conv3d_fused(const Tensor& x, const ConvFusion& f, const Tensor& weight, const Tensor& bias,
                    const Conv3dParams& p, Tensor& out) override {
    const double flops = 2.0 * static_cast<double>(out.numel()) * static_cast<double>(weight.numel() / weight.size(0));
    std::string label = "conv3d " + shape_to_string(weight.shape());
    if (p.stride_h > 1 || p.stride_t > 1)
      label += " s" + std::to_string(p.stride_t) + "," + std::to_string(p.stride_h);
    label += " on T" + std::to_string(x.size(2) + f.history_count) + " " +
             std::to_string(x.size(3) * (f.upsample2x ? 2 : 1)) + "x" + std::to_string(x.size(4) * (f.upsample2x ? 2 : 1));
    timed(label, flops, [&] { inner_.conv3d_fused(x, f, weight, bias, p, out); });
  }
  void channel_rms_norm_silu(const Tensor& x, const Tensor& gamma, Tensor& out) override {
    timed("channel_rms_norm_silu", 0, [&] { inner_.channel_rms_norm_silu(x, gamma, out); });
  }
  void linear(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& out) override {
    const double flops = 2.0 * static_cast<double>(out.numel()) * static_cast<double>(weight.size(1));
    timed("linear " + shape_to_string(weight.shape()), flops, [&] { inner_.linear(x, weight, bias, out); });
  }
  void matmul(const Tensor& a, const Tensor& b, bool transpose_b, Tensor& out) override {
    timed("matmul", 0, [&] { inner_.matmul(a, b, transpose_b, out); });
  }
  void attention(const Tensor& q, const Tensor& k, const Tensor& v, const OmniMask& mask, float scale,
                 Tensor& out) override {
    const double flops = 4.0 * static_cast<double>(q.size(0) * q.size(1) * q.size(2)) *
                         static_cast<double>(k.size(1) * q.size(3));
    timed("attention L" + std::to_string(q.size(1)) + " D" + std::to_string(q.size(3)), flops,
          [&] { inner_.attention(q, k, v, mask, scale, out); });
  }
  void conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& p, Tensor& out) override {
    const double flops = 2.0 * static_cast<double>(out.numel()) * static_cast<double>(weight.numel() / weight.size(0));
    timed("conv2d " + shape_to_string(weight.shape()) + " on " + shape_to_string(x.shape()), flops,
          [&] { inner_.conv2d(x, weight, bias, p, out); });
  }
  void conv3d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv3dParams& p, Tensor& out) override {
    const double flops = 2.0 * static_cast<double>(out.numel()) * static_cast<double>(weight.numel() / weight.size(0));
    std::string label = "conv3d " + shape_to_string(weight.shape());
    if (p.stride_h > 1 || p.stride_t > 1)
      label += " s" + std::to_string(p.stride_t) + "," + std::to_string(p.stride_h);
    label += " on T" + std::to_string(x.size(2)) + " " + std::to_string(x.size(3)) + "x" + std::to_string(x.size(4));
    timed(label, flops, [&] { inner_.conv3d(x, weight, bias, p, out); });
  }
  void rms_norm(const Tensor& x, const Tensor& weight, float eps, Tensor& out) override {
    timed("rms_norm", 0, [&] { inner_.rms_norm(x, weight, eps, out); });
  }
  void layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps, Tensor& out) override {
    timed("layer_norm", 0, [&] { inner_.layer_norm(x, weight, bias, eps, out); });
  }
  void rope(Tensor& x, const RopeTable& table, int64_t position_offset) override {
    timed("rope", 0, [&] { inner_.rope(x, table, position_offset); });
  }
  void silu(const Tensor& x, Tensor& out) override { timed("silu", 0, [&] { inner_.silu(x, out); }); }
  void gelu(const Tensor& x, GeluApproximation approximation, Tensor& out) override {
    timed("gelu", 0, [&] { inner_.gelu(x, approximation, out); });
  }
  void softmax(const Tensor& x, Tensor& out) override { timed("softmax", 0, [&] { inner_.softmax(x, out); }); }
  void embedding(const Tensor& ids, const Tensor& table, Tensor& out) override {
    timed("embedding", 0, [&] { inner_.embedding(ids, table, out); });
  }
  void add(const Tensor& a, const Tensor& b, Tensor& out) override { timed("add", 0, [&] { inner_.add(a, b, out); }); }
  void mul(const Tensor& a, const Tensor& b, Tensor& out) override { timed("mul", 0, [&] { inner_.mul(a, b, out); }); }
  void scale(const Tensor& x, float alpha, float beta, Tensor& out) override {
    timed("scale", 0, [&] { inner_.scale(x, alpha, beta, out); });
  }
  void clamp(const Tensor& x, float lo, float hi, Tensor& out) override {
    timed("clamp", 0, [&] { inner_.clamp(x, lo, hi, out); });
  }
  void copy(const Tensor& src, Tensor& dst) override { timed("copy", 0, [&] { inner_.copy(src, dst); }); }
  void channel_rms_norm(const Tensor& x, const Tensor& gamma, Tensor& out) override {
    timed("channel_rms_norm", 0, [&] { inner_.channel_rms_norm(x, gamma, out); });
  }
  void swiglu(const Tensor& gate, const Tensor& up, Tensor& out) override {
    timed("swiglu", 0, [&] { inner_.swiglu(gate, up, out); });
  }
  void modulate(const Tensor& x, const Tensor& shift, const Tensor& scale, const Tensor& row_group,
                Tensor& out) override {
    timed("modulate", 0, [&] { inner_.modulate(x, shift, scale, row_group, out); });
  }
  void gated_residual(Tensor& h, const Tensor& y, const Tensor& gate, const Tensor& row_group) override {
    timed("gated_residual", 0, [&] { inner_.gated_residual(h, y, gate, row_group); });
  }
  void flow_euler_update(Tensor& x, const Tensor& v_cond, const Tensor& v_uncond, float guidance, float dt) override {
    timed("flow_euler_update", 0, [&] { inner_.flow_euler_update(x, v_cond, v_uncond, guidance, dt); });
  }
  void upsample_nearest2x(const Tensor& x, Tensor& out) override {
    timed("upsample_nearest2x", 0, [&] { inner_.upsample_nearest2x(x, out); });
  }

 private:
  template <typename Fn>
  void timed(const std::string& label, double flops, Fn&& fn) {
    auto t0 = std::chrono::steady_clock::now();
    fn();
    if (sync_each_op_) inner_.synchronize();
    Entry& e = entries_[label];
    e.calls += 1;
    e.ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    e.flops += flops;
  }

  Backend& inner_;
  bool sync_each_op_ = false;
  std::map<std::string, Entry> entries_;
};

// Op kind of a label: its first word ("conv3d", "copy", ...).
std::string op_kind(const std::string& label) { return label.substr(0, label.find(' ')); }

void print_breakdown(const TimingBackend& timing, double wall_ms) {
  std::vector<std::pair<std::string, TimingBackend::Entry>> rows(timing.entries().begin(), timing.entries().end());
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.ms > b.second.ms; });
  std::map<std::string, double> per_kind;
  double ops_ms = 0;
  for (const auto& [label, e] : rows) {
    per_kind[op_kind(label)] += e.ms;
    ops_ms += e.ms;
  }
  std::printf("#   one profiled run: %.1f ms wall, %.1f ms inside backend ops\n", wall_ms, ops_ms);
  std::vector<std::pair<std::string, double>> kinds(per_kind.begin(), per_kind.end());
  std::sort(kinds.begin(), kinds.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  for (const auto& [kind, ms] : kinds)
    std::printf("#     %-20s %10.1f ms %5.1f%%\n", kind.c_str(), ms, 100 * ms / wall_ms);
  std::printf("#   by layer shape (calls, ms, %% of wall, dense GFLOP/s):\n");
  for (const auto& [label, e] : rows) {
    if (100 * e.ms / wall_ms < 0.5) continue;
    std::printf("#     %-62s %4d %10.1f ms %5.1f%% %7.1f\n", label.c_str(), e.calls, e.ms, 100 * e.ms / wall_ms,
                e.flops > 0 ? e.flops / (e.ms * 1e-3) / 1e9 : 0.0);
  }
}

int usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s [--backend cpu|cuda] [--conv f32|bf16] [--layout contiguous|channels-last] "
               "[--activations f32|bf16] [--threads N] [--json] [--case SUBSTRING] [--iters N] [--verbose]\n",
               argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 0, iters = 3;
  bool json = false, verbose = false;
  std::string filter, backend_name = "cpu", conv_name = "f32", layout_name = "contiguous", activations_name = "f32";
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    bool has_value = i + 1 < argc;
    if (arg == "--json") json = true;
    else if (arg == "--verbose") verbose = true;
    else if (arg == "--threads" && has_value) threads = std::atoi(argv[++i]);
    else if (arg == "--case" && has_value) filter = argv[++i];
    else if (arg == "--iters" && has_value) iters = std::max(1, std::atoi(argv[++i]));
    else if (arg == "--backend" && has_value) backend_name = argv[++i];
    else if (arg == "--conv" && has_value) conv_name = argv[++i];
    else if (arg == "--layout" && has_value) layout_name = argv[++i];
    else if (arg == "--activations" && has_value) activations_name = argv[++i];
    else return usage(argv[0]);
  }
  if (layout_name != "contiguous" && layout_name != "channels-last") return usage(argv[0]);
  if (activations_name != "f32" && activations_name != "bf16") return usage(argv[0]);
  const bool channels_last = layout_name == "channels-last";
  // One warm-up (first-touch of the activations, weight packing) unless a single cold call was asked for.
  const bench::TimingPolicy timing_policy{iters > 1 ? 1 : 0, iters, 0.0};

  cpu::CpuBackend cpu_backend(threads);
  Backend* inner = &cpu_backend;
#ifdef SHOWO2_WITH_CUDA
  std::unique_ptr<cuda::CudaBackend> cuda_backend;
  if (backend_name == "cuda") {
    try {
      cuda::CudaBackendOptions options;
      if (conv_name != "f32" && conv_name != "bf16") return usage(argv[0]);
      options.conv_dtype = conv_name == "bf16" ? DType::BF16 : DType::F32;
      options.channels_last_activations = channels_last;
      options.conv_activation_dtype = activations_name == "bf16" ? DType::BF16 : DType::F32;
      cuda_backend = std::make_unique<cuda::CudaBackend>(options);
    } catch (const Error& e) {
      std::fprintf(stderr, "wan_vae_bench: %s\n", e.what());
      return 1;
    }
    inner = cuda_backend.get();
  }
#endif
  if (backend_name != "cpu" && inner == &cpu_backend) {
    std::fprintf(stderr, "wan_vae_bench: --backend %s is not available in this build\n", backend_name.c_str());
    return 2;
  }
  const bool gpu = inner != &cpu_backend;
  // Every call goes through the timing wrapper: it costs two clock reads per backend op (a few hundred ops per
  // chunk, against seconds of convs), and it gives the FLOP count and the --verbose breakdown of the timed calls.
  // On the GPU the per-op times need a sync per op, so they are only taken with --verbose, on a separate run.
  TimingBackend timing(*inner, false);
  TimingBackend profiled(*inner, true);
  const WanVaeConfig config;  // the released Wan2.1 VAE
  test::InMemoryWeights weights(random_weights(config));
  const WanVaeLayout layout = channels_last ? WanVaeLayout::ChannelsLast : WanVaeLayout::ChannelsFirst;
  WanVae vae(weights, config, timing, layout);
  std::unique_ptr<WanVae> profiled_vae =
      gpu && verbose ? std::make_unique<WanVae>(weights, config, profiled, layout) : nullptr;
  if (!json)
    std::printf("# wan_vae_bench: backend %s, layout %s, activations %s, %zu weight tensors, %d timed calls per case, "
                "cpu threads %d (%s)\n",
                inner->name().c_str(), layout_name.c_str(), activations_name.c_str(), weights.tensors().size(), iters,
                cpu_backend.num_threads(), cpu::cpu_features_string().c_str());

  for (const BenchCase& bc : kCases) {
    if (!filter.empty() && std::string(bc.name).find(filter) == std::string::npos) continue;
    if (bc.gpu_only && !gpu && filter.empty()) continue;
    const int64_t latent_frames = 1 + (bc.frames - 1) / config.temporal_stride();
    const int64_t lh = bc.height / config.spatial_stride(), lw = bc.width / config.spatial_stride();
    Tensor input = bc.encode ? random_uniform_pixels({1, 3, bc.frames, bc.height, bc.width}, 1)
                             : bench::random_normal_tensor({1, config.z_dim, latent_frames, lh, lw}, 1.0f, 2);
    Tensor out;
    double last_ms = 0;
#ifdef SHOWO2_WITH_CUDA
    if (cuda_backend) cuda_backend->reset_peak_pool_bytes();
#endif
    const double ms = bench::median_ms(
        [&] {
          timing.reset();  // keep the last call's counts
          auto t0 = std::chrono::steady_clock::now();
          out = bc.encode ? vae.encode(input) : vae.decode(input);  // results come back to the host: synchronous
          last_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        },
        timing_policy);
    double peak_gib = 0;
#ifdef SHOWO2_WITH_CUDA
    if (cuda_backend) peak_gib = static_cast<double>(cuda_backend->peak_pool_bytes()) / (1 << 30);
#endif
    for (float v : out.to_f32_vector())
      if (!std::isfinite(v)) fail(ErrorCode::Internal, bc.name, ": non-finite output (weight scale?)");
    const double gflops = timing.total_flops() / (ms * 1e-3) / 1e9;
    const double ns_per_pixel = ms * 1e6 / static_cast<double>(bc.frames * bc.height * bc.width);
    if (json)
      std::printf("{\"case\": \"%s\", \"backend\": \"%s%s\", \"ms\": %.2f, \"gflops\": %.2f, \"ns_per_pixel\": %.2f, "
                  "\"peak_gib\": %.3f}\n",
                  bc.name, backend_name.c_str(),
                  ((gpu ? " conv " + conv_name + " activations " + activations_name : std::string()) +
                   (channels_last ? " channels-last" : ""))
                      .c_str(),
                  ms,
                  gflops, ns_per_pixel,
                  peak_gib);
    else
      std::printf("%-34s %10.1f ms %9.2f GFLOP/s (dense conv) %9.2f ns/pixel%s\n", bc.name, ms, gflops, ns_per_pixel,
                  gpu ? (" peak " + std::to_string(peak_gib).substr(0, 6) + " GiB (pool, weights included)").c_str()
                      : "");
    if (verbose) {
      if (profiled_vae) {  // one more call with a sync per op, for the breakdown
        profiled.reset();
        auto t0 = std::chrono::steady_clock::now();
        out = bc.encode ? profiled_vae->encode(input) : profiled_vae->decode(input);
        print_breakdown(profiled, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      } else {
        print_breakdown(timing, last_ms);
      }
    }
    std::fflush(stdout);
  }
  return 0;
}
