// The argument contract of each Backend operation (backend.h), checked in one place for every backend.
//
// Each function validates dtypes, ranks, shapes, layouts, writability and scalar arguments exactly as backend.h
// documents them, throws showo2::Error (ERR_INVALID_ARGUMENT / ERR_UNSUPPORTED_DTYPE / ERR_SHAPE_MISMATCH) with a
// message naming the op and the operand ("attention: q: ..."), and returns the sizes the implementations derive from
// the shapes. The CPU ops (native/core/cpu/<family>.cpp) and the CUDA backend (cuda/cuda_backend_*.cu) both call
// them, so the two backends accept the same arguments and fail with the same errors.
//
// What stays with each backend:
//   * the device rule: every backend first checks that the operands are in its own memory (CpuBackend's
//     require_host, CudaBackend's require_device_operands); nothing here looks at where a tensor lives, except the
//     value checks that need to read host memory (row groups, embedding ids), which run only on host tensors;
//   * limits of one implementation, e.g. the CUDA kernels' 32-bit sizes or contiguous norm weights, checked after
//     the shared contract.
// Nothing here dereferences a device tensor.
#pragma once

#include <cstdint>

#include "backend.h"
#include "omni_mask.h"
#include "rope.h"
#include "tensor.h"

namespace showo2 {

// A [..., C] tensor seen as rows of C elements (a 0-D tensor is one row of one element). The row-wise kernels
// (norms, activations, softmax, elementwise) work on these.
struct RowShape {
  int64_t rows = 0;  // product of the leading dimensions
  int64_t cols = 0;  // C, the last dimension
};

// ---- attention ------------------------------------------------------------------------------------------------------

struct AttentionShape {
  int64_t B = 0, Lq = 0, Lk = 0;  // batch, query rows, keys
  int64_t Hq = 0, Hkv = 0;        // query heads, kv heads (Hq % Hkv == 0)
  int64_t D = 0, Dv = 0;          // head dim of q/k, head dim of v/out
};

// The dtypes a backend accepts for q, k and v (out is always F32).
enum class AttentionInputs {
  F32,        // the contract (CPU)
  F32OrBF16,  // F32, or BF16 for all three alike (CUDA)
};

// q [B, Lq, Hq, D], k [B, Lk, Hkv, D], v [B, Lk, Hkv, Dv], out [B, Lq, Hq, Dv]; last dims contiguous; out writable
// and sharing no memory with q, k or v; the mask valid for B samples; scale finite.
AttentionShape check_attention_args(const Tensor& q, const Tensor& k, const Tensor& v, const OmniMask& mask,
                                    float scale, const Tensor& out, AttentionInputs inputs = AttentionInputs::F32);

// An activation a device backend may store in BF16 (backend.h preferred_conv_activation_dtype): F32 or BF16, else
// ERR_UNSUPPORTED_DTYPE naming `what`.
void check_activation_dtype(const Tensor& t, const char* what);

// ---- convolutions ---------------------------------------------------------------------------------------------------

// The geometry of one convolution; a conv2d is T = KT = 1 with no time padding or stride.
struct ConvShape {
  int64_t N = 0, C = 0, T = 0, H = 0, W = 0;  // input
  int64_t O = 0, KT = 0, KH = 0, KW = 0;      // weight
  int64_t To = 0, Ho = 0, Wo = 0;             // output
  Conv3dParams p;                             // strides and padding (a conv2d's in 3-D form)
  // Layouts (conv3d_fused only; conv2d/conv3d take contiguous tensors): x, out, residual and history frames
  // channels-last (memory [N, T, H, W, C], Tensor::is_channels_last), and the weight's memory [O, KT, KH, KW, C].
  bool channels_last = false;
  bool weight_channels_last = false;
  DType activation_dtype = DType::F32;  // x, out, residual, history: F32, or BF16 (conv3d_fused only)
};

// x [N, C, H, W] F32, weight [O, C, kh, kw] F32/BF16/F16, bias [O] or undefined, out [N, O, Ho, Wo] F32; all
// contiguous; strides >= 1, padding >= 0; out writable and not overlapping x.
ConvShape check_conv2d_args(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& p,
                            const Tensor& out);
// The same with a time axis: x [N, C, T, H, W], weight [O, C, kt, kh, kw], out [N, O, To, Ho, Wo].
ConvShape check_conv3d_args(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv3dParams& p,
                            const Tensor& out);

// conv3d_fused (backend.h ConvFusion): x [N, C, T, H, W] F32 or BF16 (history, residual and out in x's dtype) and
// out both contiguous or both channels-last; weight
// contiguous or channels-last; 0 to 2 history frames [N, C, 1, H, W] F32, each frame dense in x's layout (any batch
// stride), not overlapping out; upsample2x only without history; the conv3d checks on the logical input
// [N, C, history + T, H (x2), W (x2)]; residual, when defined, out's shape and layout, F32, not overlapping out.
// The returned shape is the logical input's, with the layouts.
ConvShape check_conv3d_fused_args(const Tensor& x, const ConvFusion& f, const Tensor& weight, const Tensor& bias,
                                  const Conv3dParams& p, const Tensor& out);

// ---- normalisations -------------------------------------------------------------------------------------------------

// x, out [..., C] F32 (at least 1-D), last dim contiguous, same shape, out writable; eps finite and >= 0;
// weight (and bias) [C] F32/BF16/F16 or undefined.
RowShape check_rms_norm_args(const Tensor& x, const Tensor& weight, float eps, const Tensor& out);
RowShape check_layer_norm_args(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps,
                               const Tensor& out);

struct ChannelNormShape {
  int64_t N = 0, C = 0;  // batch, channels (the normalised axis)
  int64_t S = 0;         // positions per (n, c): the product of the trailing dims (0 when N * C == 0)
  // Memory [N, S..., C] (x and out channels-last): element (n, c, s) at (n * S + s) * C + c instead of
  // (n * C + c) * S + s.
  bool channels_last = false;
};

// x, out [N, C, ...] F32 or BF16 (the same), same shape, both contiguous or both channels-last, out writable; gamma
// [C] F32/BF16/F16
// (required).
ChannelNormShape check_channel_rms_norm_args(const Tensor& x, const Tensor& gamma, const Tensor& out);

// ---- RoPE -----------------------------------------------------------------------------------------------------------

struct RopeShape {
  int64_t B = 0, L = 0, H = 0, D = 0;  // x [B, L, H, D]
};

// x [B, L, H, D] F32, last dim contiguous, writable, D even; the table built for head_dim D with contiguous F32
// cos/sin [max_positions, D/2] covering positions [position_offset, position_offset + L).
RopeShape check_rope_args(const Tensor& x, const RopeTable& table, int64_t position_offset);

// ---- activations ----------------------------------------------------------------------------------------------------

// silu / gelu (`op` names it): x, out [..., C] F32, last dim contiguous, same shape, out writable.
RowShape check_activation_args(const Tensor& x, const Tensor& out, const char* op);
// softmax: as the activations, and x at least 1-D.
RowShape check_softmax_args(const Tensor& x, const Tensor& out);
// swiglu: gate, up, out same shape [..., C] F32, last dim contiguous, out writable.
RowShape check_swiglu_args(const Tensor& gate, const Tensor& up, const Tensor& out);

// ---- embedding ------------------------------------------------------------------------------------------------------

struct EmbeddingShape {
  int64_t num_ids = 0;  // N: ids.numel()
  int64_t vocab = 0;    // V: rows of the table
  int64_t cols = 0;     // C: embedding width
};

// ids I32/I64 contiguous (any shape S), table [V, C] F32/BF16/F16 with last dim contiguous, out S + [C] F32 with last
// dim contiguous, writable. The ids' values are checked separately (check_embedding_ids), on the host.
EmbeddingShape check_embedding_args(const Tensor& ids, const Tensor& table, const Tensor& out);
// Every id of a host array of num_ids I32/I64 ids lies in [0, vocab); else fail_embedding_id for the first bad one.
void check_embedding_ids(const void* ids, DType ids_dtype, int64_t num_ids, int64_t vocab);
// The contract's ERR_INVALID_ARGUMENT for the id at `position` (also for bad ids found on a device).
[[noreturn]] void fail_embedding_id(int64_t position, int64_t id, int64_t vocab);

// ---- elementwise ----------------------------------------------------------------------------------------------------

// A binary op's rows: b is a's shape or a suffix of it, read with row-major broadcasting.
struct BinaryShape {
  int64_t rows = 0, cols = 0;  // a (and out) as rows x C
  int64_t b_rows = 1;          // rows of b (b's row r % b_rows pairs with a's row r)
  bool b_scalar = false;       // b is 0-D: one value broadcast over everything
};

// add / mul (`op` names it): a, out [..., C] F32, last dim contiguous, same shape, out writable; b F32 with a's shape
// or a suffix of it, contiguous when a is not empty.
BinaryShape check_binary_args(const Tensor& a, const Tensor& b, const Tensor& out, const char* op);
// scale: x, out [..., C] F32, last dim contiguous, same shape, out writable (`op` names the op).
RowShape check_unary_args(const Tensor& x, const Tensor& out, const char* op);
// clamp: lo <= hi, then as check_unary_args.
RowShape check_clamp_args(const Tensor& x, float lo, float hi, const Tensor& out);

// ---- layout ---------------------------------------------------------------------------------------------------------

// copy: src, dst F32 of the same shape, any strides, dst writable, and not overlapping unless they are the same view.
// Returns false when there is nothing to move (no elements, or src and dst are the same view).
bool check_copy_args(const Tensor& src, const Tensor& dst);
// upsample_nearest2x: x [N, C, H, W] or [N, C, T, H, W] F32 contiguous, out [..., 2H, 2W] F32 contiguous, writable.
void check_upsample_nearest2x_args(const Tensor& x, const Tensor& out);

// ---- fused adaLN and flow-ODE ops -----------------------------------------------------------------------------------

struct AdaLNShape {
  int64_t R = 0, C = 0;  // rows, channels
  int64_t G = 0;         // condition groups
};

// modulate: x, out [R, C] F32 (last dim contiguous, out writable); shift, scale [G, C] F32 (last dim contiguous);
// row_group I32 [R] contiguous, values in [-1, G) (checked when row_group is in host memory).
AdaLNShape check_modulate_args(const Tensor& x, const Tensor& shift, const Tensor& scale, const Tensor& row_group,
                               const Tensor& out);
// gated_residual: h (writable), y [R, C] F32; gate [G, C] F32; row_group as for modulate.
AdaLNShape check_gated_residual_args(const Tensor& h, const Tensor& y, const Tensor& gate, const Tensor& row_group);
// flow_euler_update: x (writable), v_cond and v_uncond (if defined) F32 contiguous of the same shape.
void check_flow_euler_update_args(const Tensor& x, const Tensor& v_cond, const Tensor& v_uncond);

}  // namespace showo2
