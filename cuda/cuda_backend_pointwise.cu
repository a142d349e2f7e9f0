// CudaBackend's operations between the GEMMs: norms, softmax, RoPE, activations, embedding, elementwise, layout and
// the fused adaLN / flow-ODE ops. Each one checks that its operands are in device memory, runs the op's argument
// contract shared with the CPU backend (native/core/backend_checks.h), fills its family's params struct and queues the
// launcher of cuda/<family>.cu on stream(). Nothing here synchronises except where the contract needs a value from the
// device (an embedding with device ids).
//
// Host-side inputs accepted beside device tensors, because the model code builds them on the host:
//   * rope: a RopeTable whose cos/sin are host tensors (make_rope_table). The rows the call needs are uploaded per
//     call (to_device, a small pageable copy); a table uploaded once with to_device skips that and is the fast path.
//   * embedding ids and modulate/gated_residual row_group on the host are validated there (the CPU's exact errors)
//     and uploaded; on the device they are used as they are (see embedding.h and adaln_modulate.h).
// Beyond the shared contract, the norm kernels read weight, bias and gamma as contiguous vectors.
#include <cstdint>
#include <string>

#include "activation.h"
#include "adaln_modulate.h"
#include "backend_checks.h"
#include "cuda_backend.h"
#include "cuda_backend_impl.h"
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

// Where the rows of a [..., C] tensor start (a 0-D or 1-D tensor is one dense row).
RowMap rows_of(const Tensor& t, const std::string& what) {
  if (t.dim() <= 1) return RowMap{};
  return make_row_map(t.shape().data(), t.strides().data(), static_cast<int>(t.dim() - 1), what.c_str());
}

// The norm kernels read an optional [C] parameter as a dense vector.
void check_param_contiguous(const Tensor& t, const char* what) {
  if (t.defined()) check_contiguous(t, what);
}

NormParams norm_params(const Tensor& x, Tensor& out, const RowShape& s, const std::string& op) {
  NormParams p;
  p.x = f32_in(x);
  p.x_rows = rows_of(x, op + ": x");
  p.out = f32_out(out);
  p.out_rows = rows_of(out, op + ": out");
  p.rows = s.rows;
  p.cols = s.cols;
  return p;
}

void set_weight(NormParams& p, const Tensor& weight) {
  if (!weight.defined()) return;
  p.weight = weight.device_raw();
  p.weight_dtype = weight.dtype();
}

ActivationParams activation_params(const Tensor& x, Tensor& out, const RowShape& s, const std::string& op) {
  ActivationParams p;
  p.x = f32_in(x);
  p.x_rows = rows_of(x, op + ": x");
  p.out = f32_out(out);
  p.out_rows = rows_of(out, op + ": out");
  p.rows = s.rows;
  p.cols = s.cols;
  return p;
}

ElementwiseParams unary_params(const Tensor& x, Tensor& out, const RowShape& s, const std::string& op) {
  ElementwiseParams p;
  p.a = f32_in(x);
  p.a_rows = rows_of(x, op + ": x");
  p.out = f32_out(out);
  p.out_rows = rows_of(out, op + ": out");
  p.rows = s.rows;
  p.cols = s.cols;
  return p;
}

ElementwiseParams binary_params(const Tensor& a, const Tensor& b, Tensor& out, const BinaryShape& s,
                                const std::string& op) {
  ElementwiseParams p = unary_params(a, out, RowShape{s.rows, s.cols}, op);
  p.b = f32_in(b);
  p.b_scalar = s.b_scalar;
  p.b_rows = dense_rows(s.b_rows, s.cols);
  return p;
}

// A checked row_group [R] I32 (check_modulate_args / check_gated_residual_args): used as is on the device, uploaded
// into *holder from the host.
const int32_t* device_row_groups(CudaBackend& backend, const Tensor& row_group, Tensor* holder) {
  if (row_group.device() == Device::Cuda) return static_cast<const int32_t*>(row_group.device_raw());
  *holder = backend.to_device(row_group);
  return static_cast<const int32_t*>(holder->device_raw());
}

}  // namespace

// ---- normalisations -------------------------------------------------------------------------------------------------

void CudaBackend::rms_norm(const Tensor& x, const Tensor& weight, float eps, Tensor& out) {
  require_device_operands({{&x, "rms_norm: x"}, {&weight, "rms_norm: weight"}, {&out, "rms_norm: out"}});
  const RowShape s = check_rms_norm_args(x, weight, eps, out);
  check_param_contiguous(weight, "rms_norm: weight");
  NormParams p = norm_params(x, out, s, "rms_norm");
  set_weight(p, weight);
  p.eps = eps;
  launch_rms_norm(p, stream());
}

void CudaBackend::layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps, Tensor& out) {
  require_device_operands({{&x, "layer_norm: x"}, {&weight, "layer_norm: weight"}, {&bias, "layer_norm: bias"},
                           {&out, "layer_norm: out"}});
  const RowShape s = check_layer_norm_args(x, weight, bias, eps, out);
  check_param_contiguous(weight, "layer_norm: weight");
  check_param_contiguous(bias, "layer_norm: bias");
  NormParams p = norm_params(x, out, s, "layer_norm");
  set_weight(p, weight);
  if (bias.defined()) {
    p.bias = bias.device_raw();
    p.bias_dtype = bias.dtype();
  }
  p.eps = eps;
  launch_layer_norm(p, stream());
}

void CudaBackend::softmax(const Tensor& x, Tensor& out) {
  require_device_operands({{&x, "softmax: x"}, {&out, "softmax: out"}});
  const NormParams p = norm_params(x, out, check_softmax_args(x, out), "softmax");
  launch_softmax(p, stream());
}

void CudaBackend::channel_rms_norm(const Tensor& x, const Tensor& gamma, Tensor& out) {
  channel_rms_norm_impl(x, gamma, out, false);
}

void CudaBackend::channel_rms_norm_silu(const Tensor& x, const Tensor& gamma, Tensor& out) {
  channel_rms_norm_impl(x, gamma, out, true);
}

void CudaBackend::channel_rms_norm_impl(const Tensor& x, const Tensor& gamma, Tensor& out, bool silu_after) {
  // The argument checks name the public op (the fused one is the same op with SiLU after it).
  require_device_operands(
      {{&x, "channel_rms_norm: x"}, {&gamma, "channel_rms_norm: gamma"}, {&out, "channel_rms_norm: out"}});
  const ChannelNormShape s = check_channel_rms_norm_args(x, gamma, out);
  check_param_contiguous(gamma, "channel_rms_norm: gamma");
  NormParams p;
  p.x = f32_in(x);
  p.out = f32_out(out);
  p.rows = s.N;
  p.cols = s.C;
  p.positions = s.S;
  p.silu_after = silu_after;
  p.channels_last = s.channels_last;
  p.io_dtype = x.dtype();  // F32 or BF16 (checked); the kernels reinterpret the pointers for BF16
  set_weight(p, gamma);
  launch_channel_rms_norm(p, stream());
}

// ---- RoPE -----------------------------------------------------------------------------------------------------------

void CudaBackend::rope(Tensor& x, const RopeTable& table, int64_t position_offset) {
  require_device_operands({{&x, "rope: x"}});  // the table may be on either side (see the top of this file)
  const RopeShape s = check_rope_args(x, table, position_offset);
  if (x.numel() == 0) return;

  RopeParams p;
  p.x = f32_out(x);
  p.batch = s.B;
  p.seq_len = s.L;
  p.heads = s.H;
  p.head_dim = s.D;
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
    cos_rows = to_device(table.cos.slice(0, position_offset, position_offset + s.L).contiguous());
    sin_rows = to_device(table.sin.slice(0, position_offset, position_offset + s.L).contiguous());
    p.cos = f32_in(cos_rows);
    p.sin = f32_in(sin_rows);
    p.table_positions = s.L;
    p.position_offset = 0;
  }
  launch_rope(p, stream());
}

// ---- activations ----------------------------------------------------------------------------------------------------

void CudaBackend::silu(const Tensor& x, Tensor& out) {
  require_device_operands({{&x, "silu: x"}, {&out, "silu: out"}});
  ActivationParams p = activation_params(x, out, check_activation_args(x, out, "silu"), "silu");
  p.kind = ActivationKind::Silu;
  launch_activation(p, stream());
}

void CudaBackend::gelu(const Tensor& x, GeluApproximation approximation, Tensor& out) {
  require_device_operands({{&x, "gelu: x"}, {&out, "gelu: out"}});
  ActivationParams p = activation_params(x, out, check_activation_args(x, out, "gelu"), "gelu");
  switch (approximation) {
    case GeluApproximation::None: p.kind = ActivationKind::GeluErf; break;
    case GeluApproximation::Tanh: p.kind = ActivationKind::GeluTanh; break;
    default: fail(ErrorCode::InvalidArgument, "gelu: approximation: unknown value ", static_cast<int>(approximation));
  }
  launch_activation(p, stream());
}

void CudaBackend::swiglu(const Tensor& gate, const Tensor& up, Tensor& out) {
  require_device_operands({{&gate, "swiglu: gate"}, {&up, "swiglu: up"}, {&out, "swiglu: out"}});
  ActivationParams p = activation_params(gate, out, check_swiglu_args(gate, up, out), "swiglu");
  p.up = f32_in(up);
  p.up_rows = rows_of(up, "swiglu: up");
  launch_swiglu(p, stream());
}

// ---- embedding ------------------------------------------------------------------------------------------------------

void CudaBackend::embedding(const Tensor& ids, const Tensor& table, Tensor& out) {
  require_device_operands({{&table, "embedding: table"}, {&out, "embedding: out"}});  // ids: either side
  const EmbeddingShape s = check_embedding_args(ids, table, out);
  const int64_t n = s.num_ids, vocab = s.vocab, C = s.cols;
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
    // Host ids (prompt tokens): the contract's check and message, then one small upload.
    check_embedding_ids(ids.raw(), ids.dtype(), n, vocab);
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
  fail_embedding_id(position, id, vocab);
}

// ---- elementwise ----------------------------------------------------------------------------------------------------

void CudaBackend::add(const Tensor& a, const Tensor& b, Tensor& out) {
  require_device_operands({{&a, "add: a"}, {&b, "add: b"}, {&out, "add: out"}});
  ElementwiseParams p = binary_params(a, b, out, check_binary_args(a, b, out, "add"), "add");
  p.op = ElementwiseOp::Add;
  launch_elementwise(p, stream());
}

void CudaBackend::mul(const Tensor& a, const Tensor& b, Tensor& out) {
  require_device_operands({{&a, "mul: a"}, {&b, "mul: b"}, {&out, "mul: out"}});
  ElementwiseParams p = binary_params(a, b, out, check_binary_args(a, b, out, "mul"), "mul");
  p.op = ElementwiseOp::Mul;
  launch_elementwise(p, stream());
}

void CudaBackend::scale(const Tensor& x, float alpha, float beta, Tensor& out) {
  require_device_operands({{&x, "scale: x"}, {&out, "scale: out"}});
  ElementwiseParams p = unary_params(x, out, check_unary_args(x, out, "scale"), "scale");
  p.op = ElementwiseOp::Scale;
  p.alpha = alpha;
  p.beta = beta;
  launch_elementwise(p, stream());
}

void CudaBackend::clamp(const Tensor& x, float lo, float hi, Tensor& out) {
  require_device_operands({{&x, "clamp: x"}, {&out, "clamp: out"}});
  ElementwiseParams p = unary_params(x, out, check_clamp_args(x, lo, hi, out), "clamp");
  p.op = ElementwiseOp::Clamp;
  p.lo = lo;
  p.hi = hi;
  launch_elementwise(p, stream());
}

// ---- layout ---------------------------------------------------------------------------------------------------------

void CudaBackend::copy(const Tensor& src, Tensor& dst) {
  require_device_operands({{&src, "copy: src"}, {&dst, "copy: dst"}});
  if (!check_copy_args(src, dst)) return;  // empty, or src and dst are the same view
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
  // F32 or BF16 on each side (checked); the kernel reinterprets the pointers and converts.
  p.src = static_cast<const float*>(src.device_raw());
  p.dst = static_cast<float*>(dst.mutable_device_raw());
  p.src_dtype = src.dtype();
  p.dst_dtype = dst.dtype();
  launch_copy(p, stream());
}

void CudaBackend::upsample_nearest2x(const Tensor& x, Tensor& out) {
  require_device_operands({{&x, "upsample_nearest2x: x"}, {&out, "upsample_nearest2x: out"}});
  check_upsample_nearest2x_args(x, out);
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
  // row_group may be on either side (see the top of this file).
  require_device_operands(
      {{&x, "modulate: x"}, {&shift, "modulate: shift"}, {&scale, "modulate: scale"}, {&out, "modulate: out"}});
  const AdaLNShape s = check_modulate_args(x, shift, scale, row_group, out);
  Tensor uploaded_groups;
  const int32_t* groups = device_row_groups(*this, row_group, &uploaded_groups);
  if (s.R == 0 || s.C == 0) return;
  AdaLNParams p;
  p.rows = s.R;
  p.cols = s.C;
  p.row_group = groups;
  p.groups = s.G;
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
  require_device_operands({{&h, "gated_residual: h"}, {&y, "gated_residual: y"}, {&gate, "gated_residual: gate"}});
  const AdaLNShape s = check_gated_residual_args(h, y, gate, row_group);
  Tensor uploaded_groups;
  const int32_t* groups = device_row_groups(*this, row_group, &uploaded_groups);
  if (s.R == 0 || s.C == 0) return;
  AdaLNParams p;
  p.rows = s.R;
  p.cols = s.C;
  p.row_group = groups;
  p.groups = s.G;
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
  require_device_operands({{&x, "flow_euler_update: x"}, {&v_cond, "flow_euler_update: v_cond"},
                           {&v_uncond, "flow_euler_update: v_uncond"}});
  check_flow_euler_update_args(x, v_cond, v_uncond);
  if (x.numel() == 0) return;
  FlowOdeParams p;
  p.x = f32_out(x);
  p.v_cond = f32_in(v_cond);
  if (v_uncond.defined()) p.v_uncond = f32_in(v_uncond);
  p.n = x.numel();
  p.guidance = guidance;
  p.dt = dt;
  launch_flow_euler_update(p, stream());
}

}  // namespace showo2::cuda
