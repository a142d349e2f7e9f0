// 2-D and 3-D convolutions on the CPU, lowered to GEMM (backend.h; the Wan VAE's convs, spec §3.1; patch embeds §3.3).
//
//   out[n, o, t, h, w] = bias[o] + sum_{c, i, j, k} weight[o, c, i, j, k] * xpad[n, c, t*st + i, h*sh + j, w*sw + k]
//   x [N, C, T, H, W] F32 contiguous; weight [O, C, KT, KH, KW] F32/BF16/F16 contiguous; bias [O] or undefined;
//   out [N, O, To, Ho, Wo] F32 contiguous, To = (T + pad_front + pad_back - KT) / st + 1 (likewise Ho, Wo).
//   xpad is x with zero padding per side (Conv3dParams). conv2d is the same with T = KT = 1.
// Precision: fp32 activations, weights widened to fp32 once per call, fp32 accumulation inside the GEMM.
//
// Lowering. The weight is rearranged once per call to channels-last, w_r[o][tap][c] with tap = (i*KH + j)*KW + k, so
// the weights of any run of consecutive taps form an [O, taps*C] row-major matrix: the GEMM's A operand. The output is
// cut into tiles of pixels within one output frame (the unit of work a thread takes), and each tile is produced by
// GEMMs accumulating into it: C[O, pixels] += w_r[:, taps] · B[taps*C, pixels]. Two ways to form B:
//   * Window (unit spatial stride): for tap (j, k), B[c, p] is the input window shifted by j rows and k columns. With
//     the window stored zero-padded to width Wp = W + pad_left + pad_right, and the tile's pixels indexed with that
//     same row pitch (p = row*Wp + col, the Wp - Wo columns at each row end being discarded), every tap's B is a plain
//     pointer offset into the window: no im2col at all, one GEMM per tap with K = C. The window is copied only when
//     there is spatial padding; otherwise B points into x itself. With KW == 1 there are no discarded columns and the
//     GEMM accumulates straight into out.
//   * Gather (any stride): the tile's im2col rows for a group of taps are gathered into a per-thread buffer, enough
//     taps per group that K = taps*C is a healthy GEMM depth (small C, e.g. the RGB input conv, would otherwise give
//     K = 3), then one GEMM per group writes straight into out.
// Taps that would read only padding frames in time are skipped, not multiplied by zeros: the VAE's causal conv
// (pad_front 2, pad_back 0) sees 1, 2, 3 of its 3 time taps for its first output frames, so a 3-frame chunk costs 2/3
// of a dense conv. (A NaN/inf in the weights of a skipped tap therefore does not poison the output, unlike a dense
// reference; the weights are finite in every checkpoint.)
// Threading: tiles are sorted by cost (largest first, as the causal taps make costs uneven) and spread over the
// pool; the GEMMs inside run single-threaded there (gemm.h). A call with a single tile lets the GEMM thread itself.
//
// Variants: conv_internal.h picks the lowering, the GEMM (portable, AVX2 or the reference loop) and the tile size;
// conv_test.cpp checks every combination against a direct double-precision loop, and bench/native/conv_bench.cpp
// times the VAE's 384-channel conv (`conv_bench [--threads N] [--json]`).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "../backend_checks.h"
#include "conv_internal.h"
#include "ops.h"
#include "thread_pool.h"

namespace showo2::cpu {

namespace {

// Tiling constants (see the lowering notes above).
struct ConvTraits {
  // Output pixels per tile. Each tile re-packs the GEMM's A operand (O x C per tap), so tiles must be wide enough to
  // amortise that, but the GEMM's packed B block (kc x tile) must stay in L2: on a Zen 3 core (512 KiB L2) 384-1024
  // pixels run at the same speed and 1536 is ~20% slower (conv_bench --tile).
  static constexpr int64_t kDefaultTilePixels = 768;
  // The Window lowering runs one GEMM per tap with K = C; below this many channels Gather's grouped taps win.
  static constexpr int64_t kWindowMinChannels = 32;
  // Gather groups ceil(kGatherTargetK / C) taps per GEMM.
  static constexpr int64_t kGatherTargetK = 256;
  // Aim for at least this many tiles per thread, so uneven tiles (causal time taps) and busy cores still balance.
  static constexpr int64_t kTilesPerThread = 3;
  static_assert(kDefaultTilePixels > 0 && kWindowMinChannels > 0 && kGatherTargetK > 0, "positive tiling constants");
};

// The geometry of one convolution (backend_checks.h), with what the tiling derives from it.
struct ConvGeometry : ConvShape {
  explicit ConvGeometry(const ConvShape& s) : ConvShape(s) {}

  int64_t taps() const { return KT * KH * KW; }
  int64_t out_frame() const { return Ho * Wo; }       // output pixels per frame (and per channel)
  int64_t padded_width() const { return W + p.pad_left + p.pad_right; }
  bool spatially_padded() const { return p.pad_top || p.pad_bottom || p.pad_left || p.pad_right; }
  // Time taps of output frame `to` that land on real input frames: [first, last).
  void valid_time_taps(int64_t to, int64_t* first, int64_t* last) const {
    const int64_t t0 = to * p.stride_t - p.pad_front;  // input frame of tap 0
    *first = std::max<int64_t>(0, -t0);
    *last = std::min<int64_t>(KT, T - t0);
    if (*last < *first) *last = *first;
  }
};

// One unit of thread work: output pixels [begin, end) of frame (n, to). For Window, begin/end are output rows.
struct ConvTile {
  int64_t n = 0, to = 0, begin = 0, end = 0;
  int64_t cost = 0;  // valid taps x pixels, for ordering
};

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }  // b > 0
int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }                       // b > 0

// ---- weights ------------------------------------------------------------------------------------------------------------

// Widens one weight element to f32.
float weight_at(const void* w, DType dtype, int64_t i) {
  switch (dtype) {
    case DType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(w)[i]);
    case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(w)[i]);
    default: return static_cast<const float*>(w)[i];
  }
}

// w_r[o][tap][c] = weight[o][c][tap] in f32 (see the lowering notes).
void rearrange_weight(const Tensor& weight, const ConvGeometry& s, float* w_r, ThreadPool* pool) {
  const int64_t taps = s.taps(), C = s.C;
  const void* w = weight.raw();
  const DType dtype = weight.dtype();
  auto rows = [&](int64_t o_begin, int64_t o_end) {
    for (int64_t o = o_begin; o < o_end; ++o)
      for (int64_t c = 0; c < C; ++c) {
        const int64_t src = (o * C + c) * taps;
        float* dst = w_r + o * taps * C + c;
        for (int64_t t = 0; t < taps; ++t) dst[t * C] = weight_at(w, dtype, src + t);
      }
  };
  if (pool)
    pool->parallel_for(s.O, 8, rows);
  else
    rows(0, s.O);
}

// ---- per-thread scratch ---------------------------------------------------------------------------------------------------

// A grow-only float buffer (uninitialised). One per pool thread and role, kept across calls, so steady-state convs
// allocate nothing and never page-fault fresh megabytes in.
class ScratchBuffer {
 public:
  float* get(size_t floats) {
    if (floats > capacity_) {
      data_.reset(new float[floats]);
      capacity_ = floats;
    }
    return data_.get();
  }

 private:
  std::unique_ptr<float[]> data_;
  size_t capacity_ = 0;
};

thread_local ScratchBuffer t_window_scratch;  // Window: the padded input window; Gather: the im2col rows
thread_local ScratchBuffer t_acc_scratch;     // Window with KW > 1: the accumulator with the discarded columns

// ---- per-tile lowerings ---------------------------------------------------------------------------------------------------

struct ConvRun {
  const ConvGeometry& s;
  const float* x;
  const float* w_r;    // [O][taps][C]
  const float* bias;   // [O] or null
  float* out;
  GemmFn gemm;
  ThreadPool* pool;

  const float* x_frame(int64_t n, int64_t c, int64_t ti) const { return x + ((n * s.C + c) * s.T + ti) * s.H * s.W; }
  float* out_frame(int64_t n, int64_t to) const { return out + (n * s.O * s.To + to) * s.out_frame(); }
  int64_t out_channel_stride() const { return s.To * s.out_frame(); }

  // Sets C[o, 0:cols] = bias[o] (or 0) for every o, the starting value the tap GEMMs accumulate onto (beta = 1).
  void init_accumulator(float* c, int64_t ldc, int64_t cols) const {
    for (int64_t o = 0; o < s.O; ++o) std::fill(c + o * ldc, c + o * ldc + cols, bias ? bias[o] : 0.0f);
  }

  // C[O, n] += w_r[:, tap0 : tap0 + ntaps] · B[ntaps*C, n]
  void accumulate(int64_t tap0, int64_t ntaps, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t n) const {
    GemmArgs g;
    g.M = s.O;
    g.N = n;
    g.K = ntaps * s.C;
    g.A = w_r + tap0 * s.C;
    g.lda = s.taps() * s.C;
    g.B = b;
    g.b_dtype = DType::F32;
    g.ldb = ldb;
    g.C = c;
    g.ldc = ldc;
    g.beta = 1.0f;
    gemm(g, pool);
  }

  // Window lowering for output rows [tile.begin, tile.end) of frame (tile.n, tile.to). `window` holds
  // window_floats(rows) floats (unused without spatial padding) and `acc` O * window_pixels(rows) (unused when
  // KW == 1).
  int64_t window_rows(int64_t rows) const { return rows + s.KH - 1; }
  int64_t window_floats(int64_t rows) const { return s.C * window_rows(rows) * s.padded_width(); }
  int64_t window_pixels(int64_t rows) const { return (rows - 1) * s.padded_width() + s.Wo; }

  void run_window_tile(const ConvTile& tile, float* window, float* acc) const {
    const int64_t Wp = s.padded_width();
    const int64_t rows = tile.end - tile.begin;
    const int64_t np = window_pixels(rows);
    const bool direct_out = s.KW == 1;  // Wp == Wo: no discarded columns, accumulate straight into out
    float* c = direct_out ? out_frame(tile.n, tile.to) + tile.begin * s.Wo : acc;
    const int64_t ldc = direct_out ? out_channel_stride() : np;
    init_accumulator(c, ldc, np);

    int64_t kt_first, kt_last;
    s.valid_time_taps(tile.to, &kt_first, &kt_last);
    for (int64_t kt = kt_first; kt < kt_last; ++kt) {
      const int64_t ti = tile.to * s.p.stride_t - s.p.pad_front + kt;
      const float* src;
      int64_t ldb;
      if (s.spatially_padded()) {
        fill_window(tile.n, ti, tile.begin - s.p.pad_top, window_rows(rows), window);
        src = window;
        ldb = window_rows(rows) * Wp;
      } else {  // Wp == W: x itself is the window
        src = x_frame(tile.n, 0, ti) + tile.begin * s.W;
        ldb = s.T * s.H * s.W;
      }
      for (int64_t kh = 0; kh < s.KH; ++kh)
        for (int64_t kw = 0; kw < s.KW; ++kw)
          accumulate((kt * s.KH + kh) * s.KW + kw, 1, src + kh * Wp + kw, ldb, c, ldc, np);
    }

    if (!direct_out) {
      float* dst = out_frame(tile.n, tile.to);
      for (int64_t o = 0; o < s.O; ++o)
        for (int64_t r = 0; r < rows; ++r)
          std::memcpy(dst + o * out_channel_stride() + (tile.begin + r) * s.Wo, acc + o * np + r * Wp,
                      static_cast<size_t>(s.Wo) * sizeof(float));
    }
  }

  // window[c][j][col] = xpad[n, c, ti, first_row + j, col] for j < nrows, col < Wp (zero outside x).
  void fill_window(int64_t n, int64_t ti, int64_t first_row, int64_t nrows, float* window) const {
    const int64_t Wp = s.padded_width();
    for (int64_t c = 0; c < s.C; ++c) {
      const float* plane = x_frame(n, c, ti);
      for (int64_t j = 0; j < nrows; ++j) {
        float* dst = window + (c * nrows + j) * Wp;
        const int64_t hi = first_row + j;
        if (hi < 0 || hi >= s.H) {
          std::fill(dst, dst + Wp, 0.0f);
          continue;
        }
        std::fill(dst, dst + s.p.pad_left, 0.0f);
        std::memcpy(dst + s.p.pad_left, plane + hi * s.W, static_cast<size_t>(s.W) * sizeof(float));
        std::fill(dst + s.p.pad_left + s.W, dst + Wp, 0.0f);
      }
    }
  }

  // Gather lowering for output pixels [tile.begin, tile.end) of frame (tile.n, tile.to). `col` holds
  // gather_group() * C * (tile.end - tile.begin) floats.
  int64_t gather_group() const {
    return std::max<int64_t>(1, std::min(s.taps(), (ConvTraits::kGatherTargetK + s.C - 1) / s.C));
  }

  void run_gather_tile(const ConvTile& tile, float* col) const {
    const int64_t np = tile.end - tile.begin;
    float* c = out_frame(tile.n, tile.to) + tile.begin;
    const int64_t ldc = out_channel_stride();
    init_accumulator(c, ldc, np);

    int64_t kt_first, kt_last;
    s.valid_time_taps(tile.to, &kt_first, &kt_last);
    const int64_t tap_first = kt_first * s.KH * s.KW, tap_last = kt_last * s.KH * s.KW;
    const int64_t group = gather_group();
    for (int64_t tap0 = tap_first; tap0 < tap_last; tap0 += group) {
      const int64_t ntaps = std::min(group, tap_last - tap0);
      for (int64_t t = 0; t < ntaps; ++t)
        for (int64_t ch = 0; ch < s.C; ++ch) gather_row(tile, tap0 + t, ch, col + (t * s.C + ch) * np);
      accumulate(tap0, ntaps, col, np, c, ldc, np);
    }
  }

  // dst[j] = the xpad value that tap `tap` of channel ch reads for output pixel tile.begin + j.
  void gather_row(const ConvTile& tile, int64_t tap, int64_t ch, float* dst) const {
    const int64_t kt = tap / (s.KH * s.KW), kh = (tap / s.KW) % s.KH, kw = tap % s.KW;
    const int64_t ti = tile.to * s.p.stride_t - s.p.pad_front + kt;
    const float* plane = x_frame(tile.n, ch, ti);
    const int64_t sw = s.p.stride_w;
    // Output column wo reads input column wo*sw + w_offset; [wo_first, wo_last) are the ones inside [0, W).
    const int64_t w_offset = kw - s.p.pad_left;
    const int64_t wo_first = std::clamp<int64_t>(ceil_div(-w_offset, sw), 0, s.Wo);
    const int64_t wo_last = std::clamp<int64_t>(floor_div(s.W - 1 - w_offset, sw) + 1, wo_first, s.Wo);
    for (int64_t p = tile.begin; p < tile.end;) {
      const int64_t ho = p / s.Wo, wo_begin = p % s.Wo;
      const int64_t wo_end = std::min(s.Wo, wo_begin + (tile.end - p));
      float* d = dst + (p - tile.begin);  // d[i] is pixel (ho, wo_begin + i)
      const int64_t hi = ho * s.p.stride_h - s.p.pad_top + kh;
      if (hi < 0 || hi >= s.H) {
        std::fill(d, d + (wo_end - wo_begin), 0.0f);
      } else {
        const float* row = plane + hi * s.W;
        const int64_t a = std::clamp(wo_first, wo_begin, wo_end), b = std::clamp(wo_last, a, wo_end);
        std::fill(d, d + (a - wo_begin), 0.0f);
        if (sw == 1) {
          if (b > a) std::memcpy(d + (a - wo_begin), row + a + w_offset, static_cast<size_t>(b - a) * sizeof(float));
        } else {
          for (int64_t wo = a; wo < b; ++wo) d[wo - wo_begin] = row[wo * sw + w_offset];
        }
        std::fill(d + (b - wo_begin), d + (wo_end - wo_begin), 0.0f);
      }
      p += wo_end - wo_begin;
    }
  }
};

// Splits each of `frames` output frames into tiles of about `target` units (rows or pixels) and returns the tile extent.
// Tiles are shrunk until every thread gets a few, and their count is rounded to a multiple of the thread count where
// that is cheap, so equal tiles end on all threads at once (the conv2d bench: 6 tiles of 9 rows, not 5 of 11).
int64_t tile_extent(int64_t per_frame, int64_t frames, int64_t target, int threads) {
  int64_t per_frame_tiles = ceil_div(per_frame, std::clamp<int64_t>(target, 1, per_frame));
  const int64_t wanted = static_cast<int64_t>(threads) * ConvTraits::kTilesPerThread;
  if (frames * per_frame_tiles < wanted) per_frame_tiles = std::min(per_frame, ceil_div(wanted, frames));
  for (int64_t extra = 0; extra < threads && per_frame_tiles + extra <= per_frame; ++extra)
    if ((frames * (per_frame_tiles + extra)) % threads == 0) {
      per_frame_tiles += extra;
      break;
    }
  return ceil_div(per_frame, per_frame_tiles);
}

void run_conv(const Tensor& x, const Tensor& weight, const Tensor& bias, const ConvGeometry& s, Tensor& out,
              ThreadPool* pool, const ConvOptions& options, const char* op) {
  const bool unit_stride = s.p.stride_h == 1 && s.p.stride_w == 1;
  ConvLowering lowering = options.lowering;
  if (lowering == ConvLowering::Window && !unit_stride)
    fail(ErrorCode::InvalidArgument, op, ": options.lowering: Window needs spatial stride 1 but got stride_h ",
         s.p.stride_h, ", stride_w ", s.p.stride_w);
  if (lowering == ConvLowering::Auto)
    lowering = unit_stride && (s.C >= ConvTraits::kWindowMinChannels || s.KH * s.KW == 1) ? ConvLowering::Window
                                                                                           : ConvLowering::Gather;
  if (out.numel() == 0) return;

  // Weights: channels-last f32 (a plain pointer when they already are, i.e. f32 with a single tap).
  std::vector<float> w_r_storage;
  const float* w_r;
  if (weight.dtype() == DType::F32 && s.taps() == 1) {
    w_r = weight.data<float>();
  } else {
    w_r_storage.resize(static_cast<size_t>(s.O * s.taps() * s.C));
    rearrange_weight(weight, s, w_r_storage.data(), pool);
    w_r = w_r_storage.data();
  }
  std::vector<float> bias_f32;
  if (bias.defined()) bias_f32 = bias.to_f32_vector();

  const ConvRun run{s, x.data<float>(), w_r, bias_f32.empty() ? nullptr : bias_f32.data(), out.mutable_data<float>(),
                    options.gemm ? options.gemm : static_cast<GemmFn>(&gemm), pool};

  // Plan the tiles.
  const int threads = pool ? pool->num_threads() : 1;
  const int64_t target_pixels = options.tile_pixels > 0 ? options.tile_pixels : ConvTraits::kDefaultTilePixels;
  const bool window = lowering == ConvLowering::Window;
  const int64_t per_frame = window ? s.Ho : s.out_frame();
  const int64_t target = window ? std::max<int64_t>(1, target_pixels / s.padded_width()) : target_pixels;
  const int64_t extent = tile_extent(per_frame, s.N * s.To, target, threads);
  std::vector<ConvTile> tiles;
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t to = 0; to < s.To; ++to) {
      int64_t kt_first, kt_last;
      s.valid_time_taps(to, &kt_first, &kt_last);
      for (int64_t b = 0; b < per_frame; b += extent) {
        ConvTile t{n, to, b, std::min(per_frame, b + extent), 0};
        t.cost = (kt_last - kt_first) * (t.end - t.begin);
        tiles.push_back(t);
      }
    }
  std::stable_sort(tiles.begin(), tiles.end(), [](const ConvTile& a, const ConvTile& b) { return a.cost > b.cost; });

  // The tile GEMMs run single-threaded inside the pool's workers anyway; telling them so (pool = null) also stops them
  // from cutting each call into per-thread sub-tiles that would each re-pack A. With a single tile there is nothing
  // for the pool to spread, so the GEMM gets it instead.
  ConvRun tile_run = run;
  if (tiles.size() > 1) tile_run.pool = nullptr;
  auto work = [&](int64_t begin, int64_t end) {
    // Per-thread scratch, sized for the largest tile; every element is written before it is read.
    float* scratch_a = nullptr;
    float* scratch_b = nullptr;
    if (window) {
      if (s.spatially_padded()) scratch_a = t_window_scratch.get(static_cast<size_t>(tile_run.window_floats(extent)));
      if (s.KW != 1) scratch_b = t_acc_scratch.get(static_cast<size_t>(s.O * tile_run.window_pixels(extent)));
    } else {
      scratch_a = t_window_scratch.get(static_cast<size_t>(tile_run.gather_group() * s.C * extent));
    }
    for (int64_t i = begin; i < end; ++i) {
      if (window)
        tile_run.run_window_tile(tiles[static_cast<size_t>(i)], scratch_a, scratch_b);
      else
        tile_run.run_gather_tile(tiles[static_cast<size_t>(i)], scratch_a);
    }
  };
  if (pool && tiles.size() > 1)
    pool->parallel_for(static_cast<int64_t>(tiles.size()), 1, work);
  else
    work(0, static_cast<int64_t>(tiles.size()));
}

}  // namespace

void conv3d_with_options(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv3dParams& p,
                         Tensor& out, ThreadPool* pool, const ConvOptions& options) {
  const ConvGeometry s(check_conv3d_args(x, weight, bias, p, out));
  run_conv(x, weight, bias, s, out, pool, options, "conv3d");
}

void conv2d_with_options(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& p2,
                         Tensor& out, ThreadPool* pool, const ConvOptions& options) {
  const ConvGeometry s(check_conv2d_args(x, weight, bias, p2, out));
  run_conv(x, weight, bias, s, out, pool, options, "conv2d");
}

void conv3d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv3dParams& p, Tensor& out,
            ThreadPool* pool) {
  conv3d_with_options(x, weight, bias, p, out, pool, ConvOptions{});
}

void conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& p, Tensor& out,
            ThreadPool* pool) {
  conv2d_with_options(x, weight, bias, p, out, pool, ConvOptions{});
}

}  // namespace showo2::cpu
