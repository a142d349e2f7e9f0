// linear and matmul on the CPU: argument checks and layout flattening around gemm (gemm.h), which does the work.
//
//   linear:  out[..., N] = x[..., K] · weight[N, K]^T (+ bias[N])       one GEMM, NT form, leading dims flattened
//   matmul:  out[b] = a[b] · (transpose_b ? b[b]^T : b[b])              one GEMM per batch entry
//
// Layouts: x/out (and a/b/out of matmul) need a contiguous last dimension, and their leading dimensions must flatten
// to evenly strided rows (true for contiguous tensors and for slices along the last dim such as a fused-QKV view);
// anything else is ERR_SHAPE_MISMATCH, so a caller never gets a silent copy. BF16/F16 weights and biases are widened
// in registers (precision contract in backend.h).
#include <algorithm>
#include <vector>

#include "gemm.h"
#include "ops.h"

namespace showo2::cpu {

namespace {

// The rows of a tensor whose last dimension is the row: how many, and the element stride between consecutive rows.
struct Rows {
  int64_t count = 1;
  int64_t stride = 0;
};

// Flattens all but the last dimension of t into rows, or throws when they are not evenly strided.
Rows flatten_rows(const Tensor& t, const char* what) {
  Rows rows;
  const int64_t width = t.size(-1);
  rows.stride = width;  // what a single row or an empty tensor reports; gemm only needs stride >= width
  int64_t expected = -1;    // stride the next-outer dimension must have to continue the row sequence
  for (int64_t d = t.dim() - 2; d >= 0; --d) {
    const int64_t size = t.size(d);
    rows.count *= size;
    if (size == 1) continue;  // a size-1 dim's stride is never used
    if (expected < 0) {
      rows.stride = t.stride(d);
    } else if (t.stride(d) != expected) {
      fail(ErrorCode::ShapeMismatch, what, ": leading dimensions of shape ", t.shape_string(),
           " do not flatten to evenly strided rows (strides ", shape_to_string(t.strides()), ")");
    }
    expected = t.stride(d) * size;
  }
  if (rows.count > 1 && rows.stride < width)
    fail(ErrorCode::ShapeMismatch, what, ": rows overlap (row stride ", rows.stride, " < row length ", width, ")");
  return rows;
}

// Byte range [first, last) a tensor's elements can touch.
struct ByteExtent {
  size_t first = 0, last = 0;
};

ByteExtent byte_extent(const Tensor& t) {
  size_t span = 1;
  for (int64_t d = 0; d < t.dim(); ++d) {
    if (t.size(d) == 0) return {t.byte_offset(), t.byte_offset()};
    span += static_cast<size_t>((t.size(d) - 1) * t.stride(d));
  }
  return {t.byte_offset(), t.byte_offset() + span * dtype_size(t.dtype())};
}

// gemm reads its inputs block by block while writing C, so an output sharing memory with an input would read
// half-written results. (Conservative: two interleaved but disjoint views also count as overlapping.)
void check_no_overlap(const Tensor& out, const Tensor& in, const char* what) {
  if (!in.defined() || out.storage() != in.storage()) return;
  ByteExtent o = byte_extent(out), i = byte_extent(in);
  if (o.first < i.last && i.first < o.last) fail(ErrorCode::InvalidArgument, what, ": output overlaps an input");
}

// Row stride of a 2-D matrix view [rows, width] inside a 3-D tensor (dimension 1 holds the rows).
int64_t matrix_row_stride(const Tensor& t, int64_t width, const char* what) {
  if (t.size(1) <= 1) return width;
  if (t.stride(1) < width)
    fail(ErrorCode::ShapeMismatch, what, ": rows overlap (row stride ", t.stride(1), " < row length ", width, ")");
  return t.stride(1);
}

}  // namespace

void linear(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& out, ThreadPool* pool) {
  check_dtype(x, DType::F32, "linear: x");
  if (x.dim() < 1) fail(ErrorCode::ShapeMismatch, "linear: x: expected at least 1 dimension but got a scalar");
  check_last_dim_contiguous(x, "linear: x");
  const int64_t K = x.size(-1);

  check_float(weight, "linear: weight");
  check_dim(weight, 2, "linear: weight");
  const int64_t N = weight.size(0);
  check_shape(weight, {N, K}, "linear: weight");
  check_last_dim_contiguous(weight, "linear: weight");
  const int64_t ldw = N > 1 ? weight.stride(0) : K;
  if (ldw < K)
    fail(ErrorCode::ShapeMismatch, "linear: weight: rows overlap (row stride ", ldw, " < K = ", K, ")");

  if (bias.defined()) {
    check_float(bias, "linear: bias");
    check_shape(bias, {N}, "linear: bias");
  }

  check_dtype(out, DType::F32, "linear: out");
  check_writable(out, "linear: out");
  Shape out_shape = x.shape();
  out_shape.back() = N;
  check_shape(out, out_shape, "linear: out");
  check_last_dim_contiguous(out, "linear: out");
  check_no_overlap(out, x, "linear: out");
  check_no_overlap(out, weight, "linear: out");
  check_no_overlap(out, bias, "linear: out");

  const Rows x_rows = flatten_rows(x, "linear: x");
  const Rows out_rows = flatten_rows(out, "linear: out");
  if (x_rows.count == 0 || N == 0) return;

  // gemm takes an F32 bias with unit stride; anything else is widened once here (N floats, negligible).
  std::vector<float> bias_f32;
  const float* bias_ptr = nullptr;
  if (bias.defined()) {
    if (bias.dtype() == DType::F32 && (N <= 1 || bias.stride(0) == 1)) {
      bias_ptr = bias.data<float>();
    } else {
      bias_f32 = bias.to_f32_vector();
      bias_ptr = bias_f32.data();
    }
  }

  GemmArgs args;
  args.M = x_rows.count;
  args.N = N;
  args.K = K;
  args.A = x.data<float>();
  args.lda = x_rows.stride;
  args.B = weight.raw();
  args.b_dtype = weight.dtype();
  args.ldb = ldw;
  args.b_transposed = true;
  args.C = out.mutable_data<float>();
  args.ldc = out_rows.stride;
  args.bias = bias_ptr;
  gemm(args, pool);
}

void matmul(const Tensor& a, const Tensor& b, bool transpose_b, Tensor& out, ThreadPool* pool) {
  check_dtype(a, DType::F32, "matmul: a");
  check_dim(a, 3, "matmul: a");
  check_last_dim_contiguous(a, "matmul: a");
  const int64_t batch = a.size(0), M = a.size(1), K = a.size(2);

  check_dtype(b, DType::F32, "matmul: b");
  check_dim(b, 3, "matmul: b");
  check_last_dim_contiguous(b, "matmul: b");
  const int64_t b_batch = b.size(0);
  if (b_batch != batch && b_batch != 1)
    fail(ErrorCode::ShapeMismatch, "matmul: b: batch size ", b_batch, " must be 1 or match a's ", batch, " (a is ",
         a.shape_string(), ", b is ", b.shape_string(), ")");
  const int64_t N = transpose_b ? b.size(1) : b.size(2);
  check_shape(b, transpose_b ? Shape{b_batch, N, K} : Shape{b_batch, K, N}, "matmul: b");

  check_dtype(out, DType::F32, "matmul: out");
  check_writable(out, "matmul: out");
  check_shape(out, {batch, M, N}, "matmul: out");
  check_last_dim_contiguous(out, "matmul: out");
  check_no_overlap(out, a, "matmul: out");
  check_no_overlap(out, b, "matmul: out");

  const int64_t lda = matrix_row_stride(a, K, "matmul: a");
  const int64_t ldb = matrix_row_stride(b, transpose_b ? K : N, "matmul: b");
  const int64_t ldc = matrix_row_stride(out, N, "matmul: out");
  if (batch == 0 || M == 0 || N == 0) return;

  const float* a_data = a.data<float>();
  const float* b_data = b.data<float>();
  float* out_data = out.mutable_data<float>();
  const int64_t b_batch_stride = b_batch == 1 ? 0 : b.stride(0);
  auto run_batch = [&](int64_t i, ThreadPool* gemm_pool) {
    GemmArgs args;
    args.M = M;
    args.N = N;
    args.K = K;
    args.A = a_data + i * a.stride(0);
    args.lda = lda;
    args.B = b_data + i * b_batch_stride;
    args.b_dtype = DType::F32;
    args.ldb = ldb;
    args.b_transposed = transpose_b;
    args.C = out_data + i * out.stride(0);
    args.ldc = ldc;
    gemm(args, gemm_pool);
  };

  // Many small products (attention heads, per-frame convs) parallelise better across the batch than inside each
  // GEMM, where splitting a tiny C costs more in synchronisation and re-packing than it saves.
  const int threads = pool ? pool->num_threads() : 1;
  constexpr int64_t kSmallProduct = int64_t{1} << 21;  // multiply-adds
  if (threads > 1 && batch >= threads && M * N * K < kSmallProduct) {
    pool->parallel_for(batch, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) run_batch(i, nullptr);
    });
    return;
  }
  for (int64_t i = 0; i < batch; ++i) run_batch(i, pool);
}

}  // namespace showo2::cpu
