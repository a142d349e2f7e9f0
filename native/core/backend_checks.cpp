// The Backend operations' argument contracts (backend_checks.h). The order of the checks is part of the contract:
// when several arguments are wrong, the first check that fails names the error.
#include "backend_checks.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace showo2 {

namespace {

// The row-wise kernels walk at most 16 dimensions (cpu/rows.h RowLayout).
void check_row_rank(const Tensor& t, const char* what) {
  if (t.dim() > 16) fail(ErrorCode::ShapeMismatch, what, ": at most 16 dimensions are supported, got ", t.dim());
}

RowShape rows_of(const Tensor& t) {
  RowShape s;
  s.rows = 1;
  for (int64_t d = 0; d + 1 < t.dim(); ++d) s.rows *= t.size(d);
  s.cols = t.dim() == 0 ? 1 : t.size(-1);
  return s;
}

// Whether two tensors share memory: same storage and overlapping spans from their first to their last element.
bool storage_ranges_overlap(const Tensor& a, const Tensor& b) {
  if (a.storage() != b.storage() || a.numel() == 0 || b.numel() == 0) return false;
  auto extent_bytes = [](const Tensor& t) {
    int64_t last = 0;
    for (int64_t d = 0; d < t.dim(); ++d) last += (t.size(d) - 1) * t.stride(d);
    return static_cast<size_t>(last + 1) * dtype_size(t.dtype());
  };
  const size_t a0 = a.byte_offset(), a1 = a0 + extent_bytes(a);
  const size_t b0 = b.byte_offset(), b1 = b0 + extent_bytes(b);
  return a0 < b1 && b0 < a1;
}

// x and out of a row-wise op (norms, activations, softmax): F32, last dim contiguous, same shape, out writable.
void check_row_io(const Tensor& x, const Tensor& out, const std::string& op) {
  check_dtype(x, DType::F32, (op + ": x").c_str());
  check_row_rank(x, (op + ": x").c_str());
  check_last_dim_contiguous(x, (op + ": x").c_str());
  check_dtype(out, DType::F32, (op + ": out").c_str());
  check_last_dim_contiguous(out, (op + ": out").c_str());
  check_writable(out, (op + ": out").c_str());
  check_shape(out, x.shape(), (op + ": out").c_str());
}

// An optional [C] norm parameter (weight, bias, gamma): F32/BF16/F16.
void check_norm_param(const Tensor& t, int64_t C, const std::string& what) {
  if (!t.defined()) return;
  check_float(t, what.c_str());
  check_shape(t, {C}, what.c_str());
}

RowShape check_norm_io(const Tensor& x, const Tensor& out, float eps, const std::string& op) {
  check_row_io(x, out, op);
  if (x.dim() == 0) fail(ErrorCode::ShapeMismatch, op, ": x: expected at least one dimension");
  if (!(eps >= 0.0f) || !std::isfinite(eps))
    fail(ErrorCode::InvalidArgument, op, ": eps: expected a finite value >= 0 but got ", eps);
  return rows_of(x);
}

// ---- convolutions ----

int64_t conv_output_size(int64_t in, int64_t pad_a, int64_t pad_b, int64_t k, int64_t stride, const char* op,
                         const char* axis) {
  const int64_t padded = in + pad_a + pad_b;
  if (padded < k)
    fail(ErrorCode::ShapeMismatch, op, ": x: padded ", axis, " size ", padded, " is smaller than the kernel's ", k);
  return (padded - k) / stride + 1;
}

// `input` is the shape the conv reads: x's own, or for conv3d_fused the logical [N, C, history + T, H', W'].
// Which memory layout a conv's activations (x, out) use. Contiguous wins when both fit (size-1 dims make a tensor
// both); channels-last only where the op allows it. ERR_SHAPE_MISMATCH naming the tensor otherwise (as
// check_contiguous).
bool conv_activations_channels_last(const Tensor& x, const Tensor& out, bool allow_channels_last,
                                    const std::string& name) {
  if (x.is_contiguous() && out.is_contiguous()) return false;
  if (allow_channels_last && x.is_channels_last() && out.is_channels_last()) return true;
  const char* layouts = allow_channels_last ? "both contiguous or both channels-last" : "contiguous";
  const Tensor& bad = !x.is_contiguous() && !(allow_channels_last && x.is_channels_last()) ? x : out;
  fail(ErrorCode::ShapeMismatch, name, ": ", &bad == &x ? "x" : "out", ": expected x and out ", layouts,
       " but got strides ", shape_to_string(bad.strides()), " for shape ", bad.shape_string());
}

ConvShape check_conv_args(const Tensor& x, const Shape& input, const Tensor& weight, const Tensor& bias,
                          const Conv3dParams& p, const Tensor& out, int spatial_dims, const char* op,
                          bool allow_channels_last = false) {
  const std::string name = op;
  const int64_t rank = spatial_dims + 2;
  // Activations: F32, or (conv3d_fused only) BF16, with out in x's dtype.
  if (allow_channels_last)
    check_activation_dtype(x, (name + ": x").c_str());
  else
    check_dtype(x, DType::F32, (name + ": x").c_str());
  check_dim(x, rank, (name + ": x").c_str());
  check_float(weight, (name + ": weight").c_str());
  check_dim(weight, rank, (name + ": weight").c_str());
  const bool weight_channels_last = allow_channels_last && !weight.is_contiguous() && weight.is_channels_last();
  if (!weight_channels_last && !weight.is_contiguous())
    fail(ErrorCode::ShapeMismatch, name, ": weight: expected ",
         allow_channels_last ? "a contiguous or channels-last" : "a contiguous", " tensor but got strides ",
         shape_to_string(weight.strides()), " for shape ", weight.shape_string());

  const int64_t strides[3] = {p.stride_t, p.stride_h, p.stride_w};
  const char* stride_names[3] = {"stride_t", "stride_h", "stride_w"};
  for (int i = 3 - spatial_dims; i < 3; ++i)
    if (strides[i] < 1)
      fail(ErrorCode::InvalidArgument, op, ": params.", stride_names[i], ": expected >= 1 but got ", strides[i]);
  const int64_t pads[6] = {p.pad_front, p.pad_back, p.pad_top, p.pad_bottom, p.pad_left, p.pad_right};
  const char* pad_names[6] = {"pad_front", "pad_back", "pad_top", "pad_bottom", "pad_left", "pad_right"};
  for (int i = 0; i < 6; ++i)
    if (pads[i] < 0)
      fail(ErrorCode::InvalidArgument, op, ": params.", pad_names[i], ": expected >= 0 but got ", pads[i]);

  ConvShape s;
  s.p = p;
  s.N = input[0];
  s.C = input[1];
  s.T = spatial_dims == 3 ? input[2] : 1;
  s.H = input[input.size() - 2];
  s.W = input[input.size() - 1];
  s.O = weight.size(0);
  s.KT = spatial_dims == 3 ? weight.size(2) : 1;
  s.KH = weight.size(-2);
  s.KW = weight.size(-1);
  if (weight.size(1) != s.C)
    fail(ErrorCode::ShapeMismatch, op, ": weight: expected ", s.C, " input channels (x ", shape_to_string(input),
         ") but weight ", weight.shape_string(), " has ", weight.size(1));
  if (s.O < 1 || s.KT < 1 || s.KH < 1 || s.KW < 1 || s.C < 1)
    fail(ErrorCode::ShapeMismatch, op, ": weight: every dimension must be >= 1 but got ", weight.shape_string());
  if (bias.defined()) {
    check_float(bias, (name + ": bias").c_str());
    check_shape(bias, {s.O}, (name + ": bias").c_str());
    check_contiguous(bias, (name + ": bias").c_str());
  }
  s.To = conv_output_size(s.T, p.pad_front, p.pad_back, s.KT, p.stride_t, op, "time");
  s.Ho = conv_output_size(s.H, p.pad_top, p.pad_bottom, s.KH, p.stride_h, op, "height");
  s.Wo = conv_output_size(s.W, p.pad_left, p.pad_right, s.KW, p.stride_w, op, "width");

  check_dtype(out, x.dtype(), (name + ": out").c_str());
  s.activation_dtype = x.dtype();
  const Shape expected = spatial_dims == 3 ? Shape{s.N, s.O, s.To, s.Ho, s.Wo} : Shape{s.N, s.O, s.Ho, s.Wo};
  check_shape(out, expected, (name + ": out").c_str());
  s.channels_last = conv_activations_channels_last(x, out, allow_channels_last, name);
  s.weight_channels_last = weight_channels_last;
  check_writable(out, (name + ": out").c_str());
  // Both are dense here (contiguous or channels-last), and out is empty only when x is (N == 0), so this is a
  // byte-range test.
  if (storage_ranges_overlap(out, x)) fail(ErrorCode::InvalidArgument, op, ": out: must not overlap x");
  return s;
}

// ---- elementwise ----

// An elementwise operand: F32, a rank the row walkers handle, last dim contiguous.
void check_pointwise_operand(const Tensor& t, const char* what) {
  check_dtype(t, DType::F32, what);
  check_row_rank(t, what);
  check_last_dim_contiguous(t, what);
}

// True when b's shape is the last b.dim() dimensions of a's shape.
bool is_suffix_shape(const Shape& a, const Shape& b) {
  if (b.size() > a.size()) return false;
  return std::equal(b.begin(), b.end(), a.end() - static_cast<std::ptrdiff_t>(b.size()));
}

// ---- adaLN ----

// An [R, C] F32 operand with a contiguous last dim.
void check_rows(const Tensor& t, int64_t R, int64_t C, const std::string& what) {
  check_dtype(t, DType::F32, what.c_str());
  check_dim(t, 2, what.c_str());
  check_last_dim_contiguous(t, what.c_str());
  if (t.size(0) != R || t.size(1) != C)
    fail(ErrorCode::ShapeMismatch, what, ": expected shape [", R, ", ", C, "] but got ", t.shape_string());
}

// A [G, C] F32 condition (shift, scale, gate) with a contiguous last dim.
void check_condition(const Tensor& t, int64_t C, const std::string& what) {
  check_dtype(t, DType::F32, what.c_str());
  check_dim(t, 2, what.c_str());
  check_last_dim_contiguous(t, what.c_str());
  if (t.size(1) != C) fail(ErrorCode::ShapeMismatch, what, ": expected [G, ", C, "] but got ", t.shape_string());
}

// row_group [R] I32 contiguous; on the host also every value in [-1, G) (device values are the kernel's to trust).
void check_row_groups(const Tensor& row_group, int64_t R, int64_t G, const std::string& op) {
  const std::string what = op + ": row_group";
  check_dtype(row_group, DType::I32, what.c_str());
  check_shape(row_group, {R}, what.c_str());
  check_contiguous(row_group, what.c_str());
  if (row_group.device() != Device::Cpu) return;
  const int32_t* g = row_group.data<int32_t>();
  for (int64_t r = 0; r < R; ++r)
    if (g[r] < -1 || g[r] >= G)
      fail(ErrorCode::InvalidArgument, what, ": value ", g[r], " at row ", r, " is outside [-1, ", G, ")");
}

}  // namespace

// ---- attention ------------------------------------------------------------------------------------------------------

AttentionShape check_attention_args(const Tensor& q, const Tensor& k, const Tensor& v, const OmniMask& mask,
                                    float scale, const Tensor& out, AttentionInputs inputs) {
  if (inputs == AttentionInputs::F32OrBF16)
    SHOWO2_CHECK(q.dtype() == DType::F32 || q.dtype() == DType::BF16, UnsupportedDtype,
                 "attention: q: expected F32 or BF16 but got ", dtype_name(q.dtype()));
  else
    check_dtype(q, DType::F32, "attention: q");
  check_dtype(k, q.dtype(), "attention: k");
  check_dtype(v, q.dtype(), "attention: v");
  check_dtype(out, DType::F32, "attention: out");
  check_dim(q, 4, "attention: q");
  check_dim(k, 4, "attention: k");
  check_dim(v, 4, "attention: v");
  check_dim(out, 4, "attention: out");
  check_last_dim_contiguous(q, "attention: q");
  check_last_dim_contiguous(k, "attention: k");
  check_last_dim_contiguous(v, "attention: v");
  check_last_dim_contiguous(out, "attention: out");
  check_writable(out, "attention: out");

  AttentionShape s;
  s.B = q.size(0), s.Lq = q.size(1), s.Hq = q.size(2), s.D = q.size(3);
  s.Lk = k.size(1), s.Hkv = k.size(2), s.Dv = v.size(3);
  SHOWO2_CHECK(k.size(0) == s.B, ShapeMismatch, "attention: k has batch size ", k.size(0), " but q has ", s.B,
               " (q ", q.shape_string(), ", k ", k.shape_string(), ")");
  SHOWO2_CHECK(k.size(3) == s.D, ShapeMismatch, "attention: k head dim ", k.size(3), " must equal q head dim ", s.D,
               " (q ", q.shape_string(), ", k ", k.shape_string(), ")");
  SHOWO2_CHECK(v.size(0) == s.B && v.size(1) == s.Lk && v.size(2) == s.Hkv, ShapeMismatch,
               "attention: v has shape ", v.shape_string(), " but must be [B, Lk, Hkv, Dv] = [", s.B, ", ", s.Lk,
               ", ", s.Hkv, ", Dv] to match k ", k.shape_string());
  SHOWO2_CHECK(s.Hkv > 0 && s.Hq % s.Hkv == 0, ShapeMismatch, "attention: q has ", s.Hq,
               " heads, which is not a multiple of k's ", s.Hkv,
               " kv heads (grouped-query attention needs Hq % Hkv == 0)");
  SHOWO2_CHECK(s.D > 0, ShapeMismatch, "attention: q head dim must be positive but q has shape ", q.shape_string());
  check_shape(out, {s.B, s.Lq, s.Hq, s.Dv}, "attention: out");
  mask.validate(s.B);
  SHOWO2_CHECK(mask.query_offset() >= 0, InvalidArgument, "attention: mask query_offset must be >= 0 but is ",
               mask.query_offset());
  SHOWO2_CHECK(std::isfinite(scale), InvalidArgument, "attention: scale must be finite but is ", scale);
  // Workers write their output rows while others still read q/k/v, so out may not share memory with them.
  SHOWO2_CHECK(!storage_ranges_overlap(out, q), InvalidArgument, "attention: out overlaps q in memory");
  SHOWO2_CHECK(!storage_ranges_overlap(out, k), InvalidArgument, "attention: out overlaps k in memory");
  SHOWO2_CHECK(!storage_ranges_overlap(out, v), InvalidArgument, "attention: out overlaps v in memory");
  return s;
}

// ---- convolutions ---------------------------------------------------------------------------------------------------

ConvShape check_conv2d_args(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& p2,
                            const Tensor& out) {
  Conv3dParams p;
  p.stride_h = p2.stride_h;
  p.stride_w = p2.stride_w;
  p.pad_top = p2.pad_top;
  p.pad_bottom = p2.pad_bottom;
  p.pad_left = p2.pad_left;
  p.pad_right = p2.pad_right;
  return check_conv_args(x, x.shape(), weight, bias, p, out, 2, "conv2d");
}

ConvShape check_conv3d_args(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv3dParams& p,
                            const Tensor& out) {
  return check_conv_args(x, x.shape(), weight, bias, p, out, 3, "conv3d");
}

ConvShape check_conv3d_fused_args(const Tensor& x, const ConvFusion& f, const Tensor& weight, const Tensor& bias,
                                  const Conv3dParams& p, const Tensor& out) {
  const char* op = "conv3d_fused";
  check_activation_dtype(x, "conv3d_fused: x");
  check_dim(x, 5, "conv3d_fused: x");
  if (f.history_count < 0 || f.history_count > ConvFusion::kMaxHistory)
    fail(ErrorCode::InvalidArgument, op, ": fusion.history_count: expected 0 to ", ConvFusion::kMaxHistory,
         " but got ", f.history_count);
  if (f.upsample2x && f.history_count > 0)
    fail(ErrorCode::InvalidArgument, op, ": fusion: upsample2x cannot be combined with history frames");
  Shape input = x.shape();  // the logical input the conv reads
  input[2] += f.history_count;
  if (f.upsample2x) {
    input[3] *= 2;
    input[4] *= 2;
  }
  const ConvShape s = check_conv_args(x, input, weight, bias, p, out, 3, op, /*allow_channels_last=*/true);
  const Shape frame = {x.size(0), x.size(1), 1, x.size(3), x.size(4)};
  for (int i = 0; i < f.history_count; ++i) {
    const Tensor& h = f.history[i];
    const std::string what = std::string(op) + ": fusion.history[" + std::to_string(i) + "]";
    if (!h.defined()) fail(ErrorCode::InvalidArgument, what, ": expected a tensor (history_count is ", f.history_count, ")");
    check_dtype(h, x.dtype(), what.c_str());
    check_shape(h, frame, what.c_str());
    // The kernels walk a frame as one dense run: channel planes of H x W (contiguous layout) or pixels of C
    // channels (channels-last); the distance between batch items is free (a frame of a ring).
    const int64_t C = h.size(1), H = h.size(3), W = h.size(4);
    const bool dense_frame = s.channels_last
                                 ? (C == 1 || h.stride(1) == 1) && (W == 1 || h.stride(4) == C) &&
                                       (H == 1 || h.stride(3) == W * C)
                                 : (W == 1 || h.stride(4) == 1) && (H == 1 || h.stride(3) == W);
    if (!dense_frame)
      fail(ErrorCode::InvalidArgument, what, ": expected each frame ",
           s.channels_last ? "channels-last (a dense H x W x C block, as x)" : "with contiguous H x W planes",
           " but got strides ", shape_to_string(h.strides()));
    if (storage_ranges_overlap(out, h)) fail(ErrorCode::InvalidArgument, what, ": must not overlap out");
  }
  if (f.residual.defined()) {
    check_dtype(f.residual, x.dtype(), "conv3d_fused: fusion.residual");
    check_shape(f.residual, out.shape(), "conv3d_fused: fusion.residual");
    const bool same_layout = s.channels_last ? f.residual.is_channels_last() : f.residual.is_contiguous();
    if (!same_layout)
      fail(ErrorCode::ShapeMismatch, op, ": fusion.residual: expected out's layout (",
           s.channels_last ? "channels-last" : "contiguous", ") but got strides ",
           shape_to_string(f.residual.strides()));
    if (storage_ranges_overlap(out, f.residual))
      fail(ErrorCode::InvalidArgument, op, ": fusion.residual: must not overlap out");
  }
  return s;
}

// ---- normalisations -------------------------------------------------------------------------------------------------

RowShape check_rms_norm_args(const Tensor& x, const Tensor& weight, float eps, const Tensor& out) {
  const RowShape s = check_norm_io(x, out, eps, "rms_norm");
  check_norm_param(weight, s.cols, "rms_norm: weight");
  return s;
}

RowShape check_layer_norm_args(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps,
                               const Tensor& out) {
  const RowShape s = check_norm_io(x, out, eps, "layer_norm");
  check_norm_param(weight, s.cols, "layer_norm: weight");
  check_norm_param(bias, s.cols, "layer_norm: bias");
  return s;
}

ChannelNormShape check_channel_rms_norm_args(const Tensor& x, const Tensor& gamma, const Tensor& out) {
  check_activation_dtype(x, "channel_rms_norm: x");
  check_dtype(out, x.dtype(), "channel_rms_norm: out");
  if (x.dim() < 2)
    fail(ErrorCode::ShapeMismatch, "channel_rms_norm: x: expected [N, C, ...] but got ", x.shape_string());
  check_writable(out, "channel_rms_norm: out");
  check_shape(out, x.shape(), "channel_rms_norm: out");
  ChannelNormShape s;
  if (!(x.is_contiguous() && out.is_contiguous())) {
    if (!(x.is_channels_last() && out.is_channels_last()))
      fail(ErrorCode::ShapeMismatch, "channel_rms_norm: expected x and out both contiguous or both channels-last ",
           "but got strides ", shape_to_string(x.strides()), " and ", shape_to_string(out.strides()));
    s.channels_last = true;
  }
  s.N = x.size(0), s.C = x.size(1);
  check_norm_param(gamma, s.C, "channel_rms_norm: gamma");
  if (!gamma.defined()) fail(ErrorCode::InvalidArgument, "channel_rms_norm: gamma: expected a [", s.C, "] tensor");
  s.S = s.N * s.C == 0 ? 0 : x.numel() / (s.N * s.C);
  return s;
}

// ---- RoPE -----------------------------------------------------------------------------------------------------------

RopeShape check_rope_args(const Tensor& x, const RopeTable& table, int64_t position_offset) {
  check_dtype(x, DType::F32, "rope: x");
  check_dim(x, 4, "rope: x");
  check_last_dim_contiguous(x, "rope: x");
  check_writable(x, "rope: x");
  RopeShape s;
  s.B = x.size(0), s.L = x.size(1), s.H = x.size(2), s.D = x.size(3);
  if (s.D % 2 != 0) fail(ErrorCode::ShapeMismatch, "rope: x: head_dim (last dimension) must be even but got ", s.D);
  if (table.head_dim != s.D)
    fail(ErrorCode::ShapeMismatch, "rope: table: built for head_dim ", table.head_dim, " but x has head_dim ", s.D);
  const int64_t half = s.D / 2;
  check_dtype(table.cos, DType::F32, "rope: table.cos");
  check_dtype(table.sin, DType::F32, "rope: table.sin");
  check_shape(table.cos, {table.max_positions, half}, "rope: table.cos");
  check_shape(table.sin, {table.max_positions, half}, "rope: table.sin");
  check_contiguous(table.cos, "rope: table.cos");
  check_contiguous(table.sin, "rope: table.sin");
  if (position_offset < 0 || position_offset > table.max_positions - s.L)
    fail(ErrorCode::InvalidArgument, "rope: position_offset: positions [", position_offset, ", ",
         position_offset + s.L, ") are outside the table's [0, ", table.max_positions, ")");
  return s;
}

// ---- activations ----------------------------------------------------------------------------------------------------

RowShape check_activation_args(const Tensor& x, const Tensor& out, const char* op) {
  check_row_io(x, out, op);
  return rows_of(x);
}

RowShape check_softmax_args(const Tensor& x, const Tensor& out) {
  if (x.defined() && x.dim() == 0) fail(ErrorCode::ShapeMismatch, "softmax: x: expected at least one dimension");
  check_row_io(x, out, "softmax");
  return rows_of(x);
}

RowShape check_swiglu_args(const Tensor& gate, const Tensor& up, const Tensor& out) {
  check_dtype(gate, DType::F32, "swiglu: gate");
  check_row_rank(gate, "swiglu: gate");
  check_last_dim_contiguous(gate, "swiglu: gate");
  check_dtype(up, DType::F32, "swiglu: up");
  check_last_dim_contiguous(up, "swiglu: up");
  check_shape(up, gate.shape(), "swiglu: up");
  check_dtype(out, DType::F32, "swiglu: out");
  check_last_dim_contiguous(out, "swiglu: out");
  check_writable(out, "swiglu: out");
  check_shape(out, gate.shape(), "swiglu: out");
  return rows_of(gate);
}

// ---- embedding ------------------------------------------------------------------------------------------------------

EmbeddingShape check_embedding_args(const Tensor& ids, const Tensor& table, const Tensor& out) {
  if (!ids.defined()) fail(ErrorCode::InvalidArgument, "embedding: ids: tensor is undefined");
  if (ids.dtype() != DType::I32 && ids.dtype() != DType::I64)
    fail(ErrorCode::UnsupportedDtype, "embedding: ids: expected I32 or I64 but got ", dtype_name(ids.dtype()));
  check_contiguous(ids, "embedding: ids");
  check_float(table, "embedding: table");
  check_dim(table, 2, "embedding: table");
  check_last_dim_contiguous(table, "embedding: table");
  check_dtype(out, DType::F32, "embedding: out");
  check_row_rank(out, "embedding: out");
  check_last_dim_contiguous(out, "embedding: out");
  check_writable(out, "embedding: out");
  EmbeddingShape s;
  s.num_ids = ids.numel(), s.vocab = table.size(0), s.cols = table.size(1);
  Shape expected = ids.shape();
  expected.push_back(s.cols);
  check_shape(out, expected, "embedding: out");
  return s;
}

void check_embedding_ids(const void* ids, DType ids_dtype, int64_t num_ids, int64_t vocab) {
  for (int64_t i = 0; i < num_ids; ++i) {
    const int64_t id = ids_dtype == DType::I64 ? static_cast<const int64_t*>(ids)[i]
                                               : static_cast<int64_t>(static_cast<const int32_t*>(ids)[i]);
    if (id < 0 || id >= vocab) fail_embedding_id(i, id, vocab);
  }
}

void fail_embedding_id(int64_t position, int64_t id, int64_t vocab) {
  fail(ErrorCode::InvalidArgument, "embedding: ids: id ", id, " at position ", position, " is outside the table's [0, ",
       vocab, ")");
}

// ---- elementwise ----------------------------------------------------------------------------------------------------

BinaryShape check_binary_args(const Tensor& a, const Tensor& b, const Tensor& out, const char* op) {
  const std::string prefix = op;
  check_pointwise_operand(a, (prefix + ": a").c_str());
  check_pointwise_operand(b, (prefix + ": b").c_str());
  check_pointwise_operand(out, (prefix + ": out").c_str());
  check_writable(out, (prefix + ": out").c_str());
  check_shape(out, a.shape(), (prefix + ": out").c_str());
  if (!is_suffix_shape(a.shape(), b.shape()))
    fail(ErrorCode::ShapeMismatch, op, ": b: expected a's shape ", a.shape_string(), " or a suffix of it but got ",
         b.shape_string());
  // b is read with row-major broadcasting, so it must be contiguous (it is a bias-like operand, rarely a view).
  if (a.numel() > 0) check_contiguous(b, (prefix + ": b").c_str());
  const RowShape rows = rows_of(a);
  BinaryShape s;
  s.rows = rows.rows;
  s.cols = rows.cols;
  // A suffix has a's last dim, except the 0-D b, which broadcasts one value over everything.
  s.b_scalar = b.dim() == 0;
  s.b_rows = s.b_scalar || s.cols == 0 ? 1 : b.numel() / s.cols;
  return s;
}

RowShape check_unary_args(const Tensor& x, const Tensor& out, const char* op) {
  const std::string prefix = op;
  check_pointwise_operand(x, (prefix + ": x").c_str());
  check_pointwise_operand(out, (prefix + ": out").c_str());
  check_writable(out, (prefix + ": out").c_str());
  check_shape(out, x.shape(), (prefix + ": out").c_str());
  return rows_of(x);
}

RowShape check_clamp_args(const Tensor& x, float lo, float hi, const Tensor& out) {
  if (!(lo <= hi)) fail(ErrorCode::InvalidArgument, "clamp: expected lo <= hi but got lo=", lo, " hi=", hi);
  return check_unary_args(x, out, "clamp");
}

// ---- layout ---------------------------------------------------------------------------------------------------------

void check_activation_dtype(const Tensor& t, const char* what) {
  if (t.dtype() != DType::F32 && t.dtype() != DType::BF16)
    fail(ErrorCode::UnsupportedDtype, what, ": expected F32 or BF16 but got ", dtype_name(t.dtype()));
}

bool check_copy_args(const Tensor& src, const Tensor& dst) {
  check_activation_dtype(src, "copy: src");
  check_activation_dtype(dst, "copy: dst");
  check_row_rank(src, "copy: src");
  check_row_rank(dst, "copy: dst");
  check_writable(dst, "copy: dst");
  check_shape(dst, src.shape(), "copy: dst");
  if (src.numel() == 0) return false;
  const bool same_view = src.storage() == dst.storage() && src.byte_offset() == dst.byte_offset() &&
                         src.strides() == dst.strides();
  if (same_view) return false;
  if (src.storage() == dst.storage()) {
    // A conservative test on the address hulls [first element, last element]: interleaved views (e.g. even and odd
    // frames) are rejected too, which no caller needs.
    auto last_byte = [](const Tensor& t) {
      int64_t last = 0;
      for (int64_t d = 0; d < t.dim(); ++d) last += (t.size(d) - 1) * t.stride(d);
      return t.byte_offset() + static_cast<size_t>(last) * dtype_size(t.dtype());
    };
    const size_t slo = src.byte_offset(), shi = last_byte(src);
    const size_t dlo = dst.byte_offset(), dhi = last_byte(dst);
    if (!(shi < dlo || dhi < slo))
      fail(ErrorCode::InvalidArgument, "copy: src and dst overlap in memory (", src.shape_string(), ")");
  }
  return true;
}

void check_upsample_nearest2x_args(const Tensor& x, const Tensor& out) {
  check_dtype(x, DType::F32, "upsample_nearest2x: x");
  check_dtype(out, DType::F32, "upsample_nearest2x: out");
  if (x.dim() != 4 && x.dim() != 5)
    fail(ErrorCode::ShapeMismatch, "upsample_nearest2x: x: expected [N, C, H, W] or [N, C, T, H, W] but got ",
         x.shape_string());
  check_contiguous(x, "upsample_nearest2x: x");
  check_contiguous(out, "upsample_nearest2x: out");
  check_writable(out, "upsample_nearest2x: out");
  Shape expected = x.shape();
  expected[expected.size() - 2] *= 2;
  expected[expected.size() - 1] *= 2;
  check_shape(out, expected, "upsample_nearest2x: out");
}

// ---- fused adaLN and flow-ODE ops -----------------------------------------------------------------------------------

AdaLNShape check_modulate_args(const Tensor& x, const Tensor& shift, const Tensor& scale, const Tensor& row_group,
                               const Tensor& out) {
  check_dtype(x, DType::F32, "modulate: x");
  check_dim(x, 2, "modulate: x");
  AdaLNShape s;
  s.R = x.size(0), s.C = x.size(1);
  check_rows(x, s.R, s.C, "modulate: x");
  check_rows(out, s.R, s.C, "modulate: out");
  check_writable(out, "modulate: out");
  check_condition(shift, s.C, "modulate: shift");
  check_condition(scale, s.C, "modulate: scale");
  if (shift.size(0) != scale.size(0))
    fail(ErrorCode::ShapeMismatch, "modulate: shift ", shift.shape_string(), " and scale ", scale.shape_string(),
         " have different numbers of groups");
  s.G = shift.size(0);
  check_row_groups(row_group, s.R, s.G, "modulate");
  return s;
}

AdaLNShape check_gated_residual_args(const Tensor& h, const Tensor& y, const Tensor& gate, const Tensor& row_group) {
  check_dtype(h, DType::F32, "gated_residual: h");
  check_dim(h, 2, "gated_residual: h");
  AdaLNShape s;
  s.R = h.size(0), s.C = h.size(1);
  check_rows(h, s.R, s.C, "gated_residual: h");
  check_writable(h, "gated_residual: h");
  check_rows(y, s.R, s.C, "gated_residual: y");
  check_condition(gate, s.C, "gated_residual: gate");
  s.G = gate.size(0);
  check_row_groups(row_group, s.R, s.G, "gated_residual");
  return s;
}

void check_flow_euler_update_args(const Tensor& x, const Tensor& v_cond, const Tensor& v_uncond) {
  check_dtype(x, DType::F32, "flow_euler_update: x");
  check_contiguous(x, "flow_euler_update: x");
  check_writable(x, "flow_euler_update: x");
  check_dtype(v_cond, DType::F32, "flow_euler_update: v_cond");
  check_contiguous(v_cond, "flow_euler_update: v_cond");
  check_shape(v_cond, x.shape(), "flow_euler_update: v_cond");
  if (v_uncond.defined()) {
    check_dtype(v_uncond, DType::F32, "flow_euler_update: v_uncond");
    check_contiguous(v_uncond, "flow_euler_update: v_uncond");
    check_shape(v_uncond, x.shape(), "flow_euler_update: v_uncond");
  }
}

}  // namespace showo2
