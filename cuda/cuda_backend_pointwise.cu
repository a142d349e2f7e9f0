// CudaBackend's operations between the GEMMs: norms, softmax, RoPE, activations, embedding, elementwise, layout and
// the fused adaLN / flow-ODE ops. Each one runs the CPU backend's argument checks (native/core/cpu/<family>.cpp) on
// Device::Cuda tensors, fills its family's params struct and queues the launcher of cuda/<family>.cu on stream().
// Nothing here synchronises except where the contract needs a value from the device (an embedding with device ids).
//
// Host-side inputs accepted beside device tensors, because the model code builds them on the host:
//   * rope: a RopeTable whose cos/sin are host tensors (make_rope_table). The rows the call needs are uploaded per
//     call (to_device, a small pageable copy); a table uploaded once with to_device skips that and is the fast path.
//   * embedding ids and modulate/gated_residual row_group on the host are validated there (the CPU's exact errors)
//     and uploaded; on the device they are used as they are (see embedding.h and adaln_modulate.h).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "activation.h"
#include "adaln_modulate.h"
#include "cuda_backend.h"
#include "cuda_check.h"
#include "elementwise.h"
#include "embedding.h"
#include "flow_ode.h"
#include "layout.h"
#include "norm.h"
#include "rope.h"                  // this directory's: launch_rope
#include "../native/core/rope.h"  // RopeTable (the two rope.h share a name: spell the core one's path)

namespace showo2::cuda {

namespace {

const float* f32_in(const Tensor& t) { return static_cast<const float*>(t.device_raw()); }
float* f32_out(Tensor& t) { return static_cast<float*>(t.mutable_device_raw()); }

// Rows of a [..., C] tensor: a 0-D tensor is one row of one element (as the CPU's RowLayout).
int64_t row_length(const Tensor& t) { return t.dim() == 0 ? 1 : t.size(-1); }
int64_t row_count(const Tensor& t) {
  int64_t rows = 1;
  for (int64_t d = 0; d + 1 < t.dim(); ++d) rows *= t.size(d);
  return rows;
}
RowMap rows_of(const Tensor& t, const std::string& what) {
  if (t.dim() <= 1) return RowMap{};
  return make_row_map(t.shape().data(), t.strides().data(), static_cast<int>(t.dim() - 1), what.c_str());
}

// An F32 row operand on the device: dtype, device, last dim contiguous.
void check_row_operand(const Tensor& t, const std::string& what) {
  check_device(t, Device::Cuda, what.c_str());
  check_dtype(t, DType::F32, what.c_str());
  check_last_dim_contiguous(t, what.c_str());
}

void check_row_output(const Tensor& out, const Tensor& like, const std::string& what) {
  check_row_operand(out, what);
  check_writable(out, what.c_str());
  check_shape(out, like.shape(), what.c_str());
}

// An optional [C] parameter on the device (F32/BF16/F16).
void check_param(const Tensor& t, int64_t C, const std::string& what) {
  if (!t.defined()) return;
  check_device(t, Device::Cuda, what.c_str());
  check_float(t, what.c_str());
  check_shape(t, {C}, what.c_str());
  check_contiguous(t, what.c_str());
}

void check_eps(float eps, const char* op) {
  if (!(eps >= 0.0f) || !std::isfinite(eps))
    fail(ErrorCode::InvalidArgument, op, ": eps: expected a finite value >= 0 but got ", eps);
}

NormParams row_norm_params(const Tensor& x, Tensor& out, const std::string& op) {
  check_row_operand(x, op + ": x");
  check_row_output(out, x, op + ": out");
  if (x.dim() == 0) fail(ErrorCode::ShapeMismatch, op, ": x: expected at least one dimension");
  NormParams p;
  p.x = f32_in(x);
  p.x_rows = rows_of(x, op + ": x");
  p.out = f32_out(out);
  p.out_rows = rows_of(out, op + ": out");
  p.rows = row_count(x);
  p.cols = row_length(x);
  return p;
}

void set_weight(NormParams& p, const Tensor& weight) {
  if (!weight.defined()) return;
  p.weight = weight.device_raw();
  p.weight_dtype = weight.dtype();
}

ActivationParams activation_params(const Tensor& x, Tensor& out, const std::string& op) {
  check_row_operand(x, op + ": x");
  check_row_output(out, x, op + ": out");
  ActivationParams p;
  p.x = f32_in(x);
  p.x_rows = rows_of(x, op + ": x");
  p.out = f32_out(out);
  p.out_rows = rows_of(out, op + ": out");
  p.rows = row_count(x);
  p.cols = row_length(x);
  return p;
}

ElementwiseParams unary_params(const Tensor& x, Tensor& out, const std::string& op) {
  check_row_operand(x, op + ": x");
  check_row_output(out, x, op + ": out");
  ElementwiseParams p;
  p.a = f32_in(x);
  p.a_rows = rows_of(x, op + ": x");
  p.out = f32_out(out);
  p.out_rows = rows_of(out, op + ": out");
  p.rows = row_count(x);
  p.cols = row_length(x);
  return p;
}

bool is_suffix_shape(const Shape& a, const Shape& b) {
  if (b.size() > a.size()) return false;
  return std::equal(b.begin(), b.end(), a.end() - static_cast<std::ptrdiff_t>(b.size()));
}

ElementwiseParams binary_params(const Tensor& a, const Tensor& b, Tensor& out, const std::string& op) {
  ElementwiseParams p = unary_params(a, out, op);
  check_row_operand(b, op + ": b");
  if (!is_suffix_shape(a.shape(), b.shape()))
    fail(ErrorCode::ShapeMismatch, op, ": b: expected a's shape ", a.shape_string(), " or a suffix of it but got ",
         b.shape_string());
  // b is read with row-major broadcasting, so it must be contiguous (a bias-like operand, rarely a view).
  if (a.numel() > 0) check_contiguous(b, (op + ": b").c_str());
  p.b = f32_in(b);
  p.b_scalar = b.dim() == 0;
  p.b_rows = dense_rows(p.b_scalar || p.cols == 0 ? 1 : b.numel() / p.cols, p.cols);
  return p;
}

// row_group [R] I32: validated on the host when it lives there (then uploaded into *holder), used as is on the device.
const int32_t* device_row_groups(CudaBackend& backend, const Tensor& row_group, int64_t R, int64_t G,
                                 const std::string& op, Tensor* holder) {
  const std::string what = op + ": row_group";
  check_dtype(row_group, DType::I32, what.c_str());
  check_shape(row_group, {R}, what.c_str());
  check_contiguous(row_group, what.c_str());
  if (row_group.device() == Device::Cuda) return static_cast<const int32_t*>(row_group.device_raw());
  const int32_t* g = row_group.data<int32_t>();
  for (int64_t r = 0; r < R; ++r)
    if (g[r] < -1 || g[r] >= G)
      fail(ErrorCode::InvalidArgument, what, ": value ", g[r], " at row ", r, " is outside [-1, ", G, ")");
  *holder = backend.to_device(row_group);
  return static_cast<const int32_t*>(holder->device_raw());
}

// An [R, C] F32 operand with contiguous rows (adaLN x, out, h, y) or a [G, C] condition.
void check_matrix(const Tensor& t, int64_t R, int64_t C, const std::string& what) {
  check_row_operand(t, what);
  check_dim(t, 2, what.c_str());
  if ((R >= 0 && t.size(0) != R) || t.size(1) != C)
    fail(ErrorCode::ShapeMismatch, what, ": expected shape [", R >= 0 ? std::to_string(R) : std::string("G"), ", ",
         C, "] but got ", t.shape_string());
}

}  // namespace

// ---- normalisations -------------------------------------------------------------------------------------------------

void CudaBackend::rms_norm(const Tensor& x, const Tensor& weight, float eps, Tensor& out) {
  NormParams p = row_norm_params(x, out, "rms_norm");
  check_eps(eps, "rms_norm");
  check_param(weight, p.cols, "rms_norm: weight");
  set_weight(p, weight);
  p.eps = eps;
  launch_rms_norm(p, stream());
}

void CudaBackend::layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps, Tensor& out) {
  NormParams p = row_norm_params(x, out, "layer_norm");
  check_eps(eps, "layer_norm");
  check_param(weight, p.cols, "layer_norm: weight");
  check_param(bias, p.cols, "layer_norm: bias");
  set_weight(p, weight);
  if (bias.defined()) {
    p.bias = bias.device_raw();
    p.bias_dtype = bias.dtype();
  }
  p.eps = eps;
  launch_layer_norm(p, stream());
}

void CudaBackend::softmax(const Tensor& x, Tensor& out) {
  const NormParams p = row_norm_params(x, out, "softmax");
  launch_softmax(p, stream());
}

void CudaBackend::channel_rms_norm(const Tensor& x, const Tensor& gamma, Tensor& out) {
  check_device(x, Device::Cuda, "channel_rms_norm: x");
  check_dtype(x, DType::F32, "channel_rms_norm: x");
  check_device(out, Device::Cuda, "channel_rms_norm: out");
  check_dtype(out, DType::F32, "channel_rms_norm: out");
  if (x.dim() < 2)
    fail(ErrorCode::ShapeMismatch, "channel_rms_norm: x: expected [N, C, ...] but got ", x.shape_string());
  check_contiguous(x, "channel_rms_norm: x");
  check_contiguous(out, "channel_rms_norm: out");
  check_writable(out, "channel_rms_norm: out");
  check_shape(out, x.shape(), "channel_rms_norm: out");
  const int64_t N = x.size(0), C = x.size(1);
  if (!gamma.defined()) fail(ErrorCode::InvalidArgument, "channel_rms_norm: gamma: expected a [", C, "] tensor");
  check_param(gamma, C, "channel_rms_norm: gamma");
  NormParams p;
  p.x = f32_in(x);
  p.out = f32_out(out);
  p.rows = N;
  p.cols = C;
  p.positions = N * C == 0 ? 0 : x.numel() / (N * C);
  set_weight(p, gamma);
  launch_channel_rms_norm(p, stream());
}

// ---- RoPE -----------------------------------------------------------------------------------------------------------

void CudaBackend::rope(Tensor& x, const RopeTable& table, int64_t position_offset) {
  check_device(x, Device::Cuda, "rope: x");
  check_dtype(x, DType::F32, "rope: x");
  check_dim(x, 4, "rope: x");
  check_last_dim_contiguous(x, "rope: x");
  check_writable(x, "rope: x");
  const int64_t L = x.size(1), D = x.size(3);
  if (D % 2 != 0) fail(ErrorCode::ShapeMismatch, "rope: x: head_dim (last dimension) must be even but got ", D);
  if (table.head_dim != D)
    fail(ErrorCode::ShapeMismatch, "rope: table: built for head_dim ", table.head_dim, " but x has head_dim ", D);
  const int64_t half = D / 2;
  check_dtype(table.cos, DType::F32, "rope: table.cos");
  check_dtype(table.sin, DType::F32, "rope: table.sin");
  check_shape(table.cos, {table.max_positions, half}, "rope: table.cos");
  check_shape(table.sin, {table.max_positions, half}, "rope: table.sin");
  check_contiguous(table.cos, "rope: table.cos");
  check_contiguous(table.sin, "rope: table.sin");
  if (position_offset < 0 || position_offset > table.max_positions - L)
    fail(ErrorCode::InvalidArgument, "rope: position_offset: positions [", position_offset, ", ",
         position_offset + L, ") are outside the table's [0, ", table.max_positions, ")");
  if (x.numel() == 0) return;

  RopeParams p;
  p.x = f32_out(x);
  p.batch = x.size(0);
  p.seq_len = L;
  p.heads = x.size(2);
  p.head_dim = D;
  p.stride_b = x.stride(0);
  p.stride_l = x.stride(1);
  p.stride_h = x.stride(2);
  // Host tables: upload just the L rows this call reads (the tensors stay referenced until the end of this function;
  // the pool hands a block to later work on the same stream only, so the queued kernel still sees them).
  Tensor cos_rows, sin_rows;
  if (table.cos.device() == Device::Cuda && table.sin.device() == Device::Cuda) {
    p.cos = f32_in(table.cos);
    p.sin = f32_in(table.sin);
    p.table_positions = table.max_positions;
    p.position_offset = position_offset;
  } else {
    cos_rows = to_device(table.cos.slice(0, position_offset, position_offset + L).contiguous());
    sin_rows = to_device(table.sin.slice(0, position_offset, position_offset + L).contiguous());
    p.cos = f32_in(cos_rows);
    p.sin = f32_in(sin_rows);
    p.table_positions = L;
    p.position_offset = 0;
  }
  launch_rope(p, stream());
}

// ---- activations ----------------------------------------------------------------------------------------------------

void CudaBackend::silu(const Tensor& x, Tensor& out) {
  ActivationParams p = activation_params(x, out, "silu");
  p.kind = ActivationKind::Silu;
  launch_activation(p, stream());
}

void CudaBackend::gelu(const Tensor& x, GeluApproximation approximation, Tensor& out) {
  ActivationParams p = activation_params(x, out, "gelu");
  switch (approximation) {
    case GeluApproximation::None: p.kind = ActivationKind::GeluErf; break;
    case GeluApproximation::Tanh: p.kind = ActivationKind::GeluTanh; break;
    default: fail(ErrorCode::InvalidArgument, "gelu: approximation: unknown value ", static_cast<int>(approximation));
  }
  launch_activation(p, stream());
}

void CudaBackend::swiglu(const Tensor& gate, const Tensor& up, Tensor& out) {
  ActivationParams p = activation_params(gate, out, "swiglu");
  check_row_operand(up, "swiglu: up");
  check_shape(up, gate.shape(), "swiglu: up");
  p.up = f32_in(up);
  p.up_rows = rows_of(up, "swiglu: up");
  launch_swiglu(p, stream());
}

// ---- embedding ------------------------------------------------------------------------------------------------------

void CudaBackend::embedding(const Tensor& ids, const Tensor& table, Tensor& out) {
  if (!ids.defined()) fail(ErrorCode::InvalidArgument, "embedding: ids: tensor is undefined");
  if (ids.dtype() != DType::I32 && ids.dtype() != DType::I64)
    fail(ErrorCode::UnsupportedDtype, "embedding: ids: expected I32 or I64 but got ", dtype_name(ids.dtype()));
  check_contiguous(ids, "embedding: ids");
  check_device(table, Device::Cuda, "embedding: table");
  check_float(table, "embedding: table");
  check_dim(table, 2, "embedding: table");
  check_last_dim_contiguous(table, "embedding: table");
  check_row_operand(out, "embedding: out");
  check_writable(out, "embedding: out");
  const int64_t vocab = table.size(0), C = table.size(1);
  Shape expected = ids.shape();
  expected.push_back(C);
  check_shape(out, expected, "embedding: out");
  const int64_t n = ids.numel();
  if (n == 0 || C == 0) return;

  EmbeddingParams p;
  p.ids_dtype = ids.dtype();
  p.num_ids = n;
  p.table = table.device_raw();
  p.table_dtype = table.dtype();
  p.vocab = vocab;
  p.table_row_stride = table.stride(0);
  p.out = f32_out(out);
  p.out_rows = rows_of(out, "embedding: out");
  p.cols = C;

  if (ids.device() == Device::Cpu) {
    // Host ids (prompt tokens): the CPU's check and message, then one small upload.
    check_embedding_ids_on_host(ids.raw(), ids.dtype(), n, vocab);
    const Tensor device_ids = to_device(ids);
    p.ids = device_ids.device_raw();
    launch_embedding(p, stream());
    return;
  }
  // Device ids (sampled on the GPU): the kernel records the first bad position; reading it back is the one
  // synchronisation of this file (a graph-captured decode loop would call the launcher and defer the check).
  p.ids = ids.device_raw();
  Tensor record = empty({1}, DType::I64);
  p.bad_position = static_cast<unsigned long long*>(record.mutable_device_raw());
  SHOWO2_CUDA_CHECK(cudaMemsetAsync(p.bad_position, 0xff, sizeof(unsigned long long), stream()));
  launch_embedding(p, stream());
  unsigned long long bad = kNoBadPosition;
  SHOWO2_CUDA_CHECK(cudaMemcpyAsync(&bad, p.bad_position, sizeof(bad), cudaMemcpyDeviceToHost, stream()));
  SHOWO2_CUDA_CHECK(cudaStreamSynchronize(stream()));
  if (bad == kNoBadPosition) return;
  const int64_t position = static_cast<int64_t>(bad);
  int64_t id = 0;
  if (ids.dtype() == DType::I64) {
    SHOWO2_CUDA_CHECK(cudaMemcpy(&id, static_cast<const int64_t*>(p.ids) + position, sizeof(int64_t),
                                 cudaMemcpyDeviceToHost));
  } else {
    int32_t id32 = 0;
    SHOWO2_CUDA_CHECK(cudaMemcpy(&id32, static_cast<const int32_t*>(p.ids) + position, sizeof(int32_t),
                                 cudaMemcpyDeviceToHost));
    id = id32;
  }
  report_bad_embedding_id(position, id, vocab);
}

// ---- elementwise ----------------------------------------------------------------------------------------------------

void CudaBackend::add(const Tensor& a, const Tensor& b, Tensor& out) {
  ElementwiseParams p = binary_params(a, b, out, "add");
  p.op = ElementwiseOp::Add;
  launch_elementwise(p, stream());
}

void CudaBackend::mul(const Tensor& a, const Tensor& b, Tensor& out) {
  ElementwiseParams p = binary_params(a, b, out, "mul");
  p.op = ElementwiseOp::Mul;
  launch_elementwise(p, stream());
}

void CudaBackend::scale(const Tensor& x, float alpha, float beta, Tensor& out) {
  ElementwiseParams p = unary_params(x, out, "scale");
  p.op = ElementwiseOp::Scale;
  p.alpha = alpha;
  p.beta = beta;
  launch_elementwise(p, stream());
}

void CudaBackend::clamp(const Tensor& x, float lo, float hi, Tensor& out) {
  if (!(lo <= hi)) fail(ErrorCode::InvalidArgument, "clamp: expected lo <= hi but got lo=", lo, " hi=", hi);
  ElementwiseParams p = unary_params(x, out, "clamp");
  p.op = ElementwiseOp::Clamp;
  p.lo = lo;
  p.hi = hi;
  launch_elementwise(p, stream());
}

// ---- layout ---------------------------------------------------------------------------------------------------------

void CudaBackend::copy(const Tensor& src, Tensor& dst) {
  check_device(src, Device::Cuda, "copy: src");
  check_device(dst, Device::Cuda, "copy: dst");
  check_dtype(src, DType::F32, "copy: src");
  check_dtype(dst, DType::F32, "copy: dst");
  check_writable(dst, "copy: dst");
  check_shape(dst, src.shape(), "copy: dst");
  if (src.numel() == 0) return;
  // Size-1 dims carry no layout; the launcher folds the rest further.
  LayoutParams p;
  for (int64_t d = 0; d < src.dim(); ++d) {
    if (src.size(d) == 1) continue;
    if (p.rank == kMaxCopyRank)
      fail(ErrorCode::ShapeMismatch, "copy: src: at most ", kMaxCopyRank,
           " dimensions of size > 1 are supported on the GPU, got ", src.shape_string());
    p.size[p.rank] = src.size(d);
    p.src_stride[p.rank] = src.stride(d);
    p.dst_stride[p.rank] = dst.stride(d);
    ++p.rank;
  }
  p.src = f32_in(src);
  p.dst = f32_out(dst);
  launch_copy(p, stream());
}

void CudaBackend::upsample_nearest2x(const Tensor& x, Tensor& out) {
  check_device(x, Device::Cuda, "upsample_nearest2x: x");
  check_device(out, Device::Cuda, "upsample_nearest2x: out");
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
  if (x.numel() == 0) return;
  LayoutParams p;
  p.src = f32_in(x);
  p.dst = f32_out(out);
  p.height = x.size(-2);
  p.width = x.size(-1);
  p.planes = x.numel() / (p.height * p.width);
  launch_upsample_nearest2x(p, stream());
}

// ---- fused adaLN and flow-ODE ops -----------------------------------------------------------------------------------

void CudaBackend::modulate(const Tensor& x, const Tensor& shift, const Tensor& scale, const Tensor& row_group,
                           Tensor& out) {
  check_row_operand(x, "modulate: x");
  check_dim(x, 2, "modulate: x");
  const int64_t R = x.size(0), C = x.size(1);
  check_matrix(out, R, C, "modulate: out");
  check_writable(out, "modulate: out");
  check_matrix(shift, -1, C, "modulate: shift");
  check_matrix(scale, -1, C, "modulate: scale");
  if (shift.size(0) != scale.size(0))
    fail(ErrorCode::ShapeMismatch, "modulate: shift ", shift.shape_string(), " and scale ", scale.shape_string(),
         " have different numbers of groups");
  Tensor uploaded_groups;
  const int32_t* groups = device_row_groups(*this, row_group, R, shift.size(0), "modulate", &uploaded_groups);
  if (R == 0 || C == 0) return;
  AdaLNParams p;
  p.rows = R;
  p.cols = C;
  p.row_group = groups;
  p.groups = shift.size(0);
  p.x = f32_in(x);
  p.x_row_stride = x.stride(0);
  p.out = f32_out(out);
  p.out_row_stride = out.stride(0);
  p.shift = f32_in(shift);
  p.shift_row_stride = shift.stride(0);
  p.scale = f32_in(scale);
  p.scale_row_stride = scale.stride(0);
  launch_modulate(p, stream());
}

void CudaBackend::gated_residual(Tensor& h, const Tensor& y, const Tensor& gate, const Tensor& row_group) {
  check_row_operand(h, "gated_residual: h");
  check_dim(h, 2, "gated_residual: h");
  const int64_t R = h.size(0), C = h.size(1);
  check_writable(h, "gated_residual: h");
  check_matrix(y, R, C, "gated_residual: y");
  check_matrix(gate, -1, C, "gated_residual: gate");
  Tensor uploaded_groups;
  const int32_t* groups = device_row_groups(*this, row_group, R, gate.size(0), "gated_residual", &uploaded_groups);
  if (R == 0 || C == 0) return;
  AdaLNParams p;
  p.rows = R;
  p.cols = C;
  p.row_group = groups;
  p.groups = gate.size(0);
  p.x = f32_in(y);
  p.x_row_stride = y.stride(0);
  p.out = f32_out(h);
  p.out_row_stride = h.stride(0);
  p.gate = f32_in(gate);
  p.gate_row_stride = gate.stride(0);
  launch_gated_residual(p, stream());
}

void CudaBackend::flow_euler_update(Tensor& x, const Tensor& v_cond, const Tensor& v_uncond, float guidance,
                                    float dt) {
  check_device(x, Device::Cuda, "flow_euler_update: x");
  check_dtype(x, DType::F32, "flow_euler_update: x");
  check_contiguous(x, "flow_euler_update: x");
  check_writable(x, "flow_euler_update: x");
  check_device(v_cond, Device::Cuda, "flow_euler_update: v_cond");
  check_dtype(v_cond, DType::F32, "flow_euler_update: v_cond");
  check_contiguous(v_cond, "flow_euler_update: v_cond");
  check_shape(v_cond, x.shape(), "flow_euler_update: v_cond");
  FlowOdeParams p;
  if (v_uncond.defined()) {
    check_device(v_uncond, Device::Cuda, "flow_euler_update: v_uncond");
    check_dtype(v_uncond, DType::F32, "flow_euler_update: v_uncond");
    check_contiguous(v_uncond, "flow_euler_update: v_uncond");
    check_shape(v_uncond, x.shape(), "flow_euler_update: v_uncond");
    p.v_uncond = f32_in(v_uncond);
  }
  if (x.numel() == 0) return;
  p.x = f32_out(x);
  p.v_cond = f32_in(v_cond);
  p.n = x.numel();
  p.guidance = guidance;
  p.dt = dt;
  launch_flow_euler_update(p, stream());
}

}  // namespace showo2::cuda
