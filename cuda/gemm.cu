// GEMM on the GPU through cuBLASLt (loaded at run time; see gemm.h): the Backend's linear and matmul.
//
//   linear: out[..., N] = x[..., K] . W[N, K]^T (+ bias[N])          (every projection of the model)
//   matmul: out[b] = a[b] . (transpose_b ? b[b]^T : b[b])             a [B, M, K], b [B or 1, K, N | N, K]
// Layouts: row-major with a free row stride (the leading dims of x/out must fold into one stride, otherwise the
// operand goes through a contiguous copy first); cuBLASLt is column-major, so a row-major D = A . op(B) is computed as
// the column-major D^T = op(B)^T . A^T (no data moves).
// Precision (spec §12): BF16 (or F16) weights from upload_weight; the F32 activations are rounded to the weight dtype
// (round-to-nearest-even, convert_rows_f32) because cuBLASLt multiplies like types; fp32 accumulation; F32 output;
// the bias added in fp32 in the fused epilogue. F32 weights (and matmul, whose operands are activations) run in
// plain fp32 (CUBLAS_COMPUTE_32F, no TF32), the path the fp32 equivalence tests use.
// Variants: one (cuBLASLt's heuristic choice, cached per problem shape). Check: test/native/gemm_cuda_test.cu.
#include "gemm.h"

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <dlfcn.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include "cuda_backend_impl.h"
#include "cuda_check.h"

namespace showo2::cuda {

// ---- device code ------------------------------------------------------------------------------------------------------

namespace {

template <typename T>
__device__ T from_float(float v);
template <>
__device__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <>
__device__ __half from_float<__half>(float v) { return __float2half_rn(v); }

template <typename T>
__global__ void convert_rows_kernel(const float* __restrict__ x, int64_t rows, int64_t cols, int64_t ld_x,
                                    T* __restrict__ out) {
  const int64_t n = rows * cols;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / cols, c = i - r * cols;
    out[i] = from_float<T>(x[r * ld_x + c]);
  }
}

}  // namespace

// ---- launchers --------------------------------------------------------------------------------------------------------

void convert_rows_f32(const float* x, int64_t rows, int64_t cols, int64_t ld_x, void* out, DType dtype,
                      cudaStream_t stream) {
  const int64_t n = rows * cols;
  if (n == 0) return;
  const int threads = 256;
  const int blocks = static_cast<int>(std::min<int64_t>((n + threads - 1) / threads, 65535));
  if (dtype == DType::BF16)
    convert_rows_kernel<<<blocks, threads, 0, stream>>>(x, rows, cols, ld_x, static_cast<__nv_bfloat16*>(out));
  else if (dtype == DType::F16)
    convert_rows_kernel<<<blocks, threads, 0, stream>>>(x, rows, cols, ld_x, static_cast<__half*>(out));
  else
    fail(ErrorCode::UnsupportedDtype, "convert_rows_f32: target dtype ", dtype_name(dtype));
  SHOWO2_CUDA_CHECK_LAUNCH();
}

// ---- loading cuBLASLt -----------------------------------------------------------------------------------------------

namespace {

// Every entry point we call, typed from the real declarations in cublasLt.h.
struct CublasLtApi {
  void* library = nullptr;
  std::string path;
#define SHOWO2_LT_FN(name) decltype(&::name) name = nullptr;
  SHOWO2_LT_FN(cublasLtCreate)
  SHOWO2_LT_FN(cublasLtDestroy)
  SHOWO2_LT_FN(cublasLtGetVersion)
  SHOWO2_LT_FN(cublasLtGetStatusString)
  SHOWO2_LT_FN(cublasLtMatmul)
  SHOWO2_LT_FN(cublasLtMatmulDescCreate)
  SHOWO2_LT_FN(cublasLtMatmulDescDestroy)
  SHOWO2_LT_FN(cublasLtMatmulDescSetAttribute)
  SHOWO2_LT_FN(cublasLtMatrixLayoutCreate)
  SHOWO2_LT_FN(cublasLtMatrixLayoutDestroy)
  SHOWO2_LT_FN(cublasLtMatrixLayoutSetAttribute)
  SHOWO2_LT_FN(cublasLtMatmulPreferenceCreate)
  SHOWO2_LT_FN(cublasLtMatmulPreferenceDestroy)
  SHOWO2_LT_FN(cublasLtMatmulPreferenceSetAttribute)
  SHOWO2_LT_FN(cublasLtMatmulAlgoGetHeuristic)
#undef SHOWO2_LT_FN
};

// Tries each candidate; returns the loaded API, or throws ERR_CUDA listing every attempt. Loaded once per process
// (the outcome, success or the error message, is cached).
const CublasLtApi& cublaslt() {
  static std::once_flag once;
  static CublasLtApi api;
  static std::string error;
  std::call_once(once, [] {
    std::vector<std::string> candidates;
    if (const char* env = std::getenv("SHOWO2_CUBLASLT_PATH"); env && *env) {
      std::string p = env;
      const bool is_file = p.size() > 3 && p.find(".so") != std::string::npos;
      candidates.push_back(is_file ? p : p + "/libcublasLt.so.13");
    }
    candidates.push_back("libcublasLt.so.13");
    candidates.push_back("libcublasLt.so");
    if (const char* home = std::getenv("CUDA_HOME"); home && *home)
      candidates.push_back(std::string(home) + "/lib64/libcublasLt.so.13");
    candidates.push_back("/usr/local/cuda/lib64/libcublasLt.so.13");
    std::string tried;
    for (const std::string& c : candidates) {
      void* h = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (!h) {
        const char* why = dlerror();
        tried += "\n    " + c + ": " + (why ? why : "not found");
        continue;
      }
      CublasLtApi a;
      a.library = h;
      a.path = c;
      std::string missing;
#define SHOWO2_LT_LOAD(name)                                                     \
  a.name = reinterpret_cast<decltype(a.name)>(dlsym(h, #name));                  \
  if (!a.name) missing += std::string(missing.empty() ? "" : ", ") + #name;
      SHOWO2_LT_LOAD(cublasLtCreate)
      SHOWO2_LT_LOAD(cublasLtDestroy)
      SHOWO2_LT_LOAD(cublasLtGetVersion)
      SHOWO2_LT_LOAD(cublasLtGetStatusString)
      SHOWO2_LT_LOAD(cublasLtMatmul)
      SHOWO2_LT_LOAD(cublasLtMatmulDescCreate)
      SHOWO2_LT_LOAD(cublasLtMatmulDescDestroy)
      SHOWO2_LT_LOAD(cublasLtMatmulDescSetAttribute)
      SHOWO2_LT_LOAD(cublasLtMatrixLayoutCreate)
      SHOWO2_LT_LOAD(cublasLtMatrixLayoutDestroy)
      SHOWO2_LT_LOAD(cublasLtMatrixLayoutSetAttribute)
      SHOWO2_LT_LOAD(cublasLtMatmulPreferenceCreate)
      SHOWO2_LT_LOAD(cublasLtMatmulPreferenceDestroy)
      SHOWO2_LT_LOAD(cublasLtMatmulPreferenceSetAttribute)
      SHOWO2_LT_LOAD(cublasLtMatmulAlgoGetHeuristic)
#undef SHOWO2_LT_LOAD
      if (!missing.empty()) {
        tried += "\n    " + c + ": loaded but lacks " + missing + " (a cuBLASLt older than CUDA 13?)";
        dlclose(h);
        continue;
      }
      api = a;
      return;
    }
    error = "the CUDA backend needs cuBLASLt 13 (libcublasLt.so.13) and could not load it; tried:" + tried +
            "\n  Install it with `pip install nvidia-cublas` and set SHOWO2_CUBLASLT_PATH to the wheel's "
            "<site-packages>/nvidia/cu13/lib directory, or install the CUDA 13 toolkit's cuBLAS (e.g. the "
            "libcublas-13-0 package) so the loader finds it, or add its directory to LD_LIBRARY_PATH.";
  });
  if (!api.library) fail(ErrorCode::Cuda, error);
  return api;
}

void check_lt(cublasStatus_t status, const char* call, const char* file, int line) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  const CublasLtApi& api = cublaslt();
  fail(ErrorCode::Cuda, call, " failed at ", file, ":", line, ": ",
       api.cublasLtGetStatusString ? api.cublasLtGetStatusString(status) : "cuBLAS error", " (",
       static_cast<int>(status), ")");
}

#define SHOWO2_LT_CHECK(call) check_lt((call), #call, __FILE__, __LINE__)

// The largest power of two (<= 256) dividing the address: what cuBLASLt's heuristic must assume.
uint32_t alignment_of(const void* p) {
  uint32_t a = 256;
  while (a > 1 && reinterpret_cast<uintptr_t>(p) % a != 0) a >>= 1;
  return a;
}

}  // namespace

// ---- GemmRunner -----------------------------------------------------------------------------------------------------

struct GemmRunner::State {
  const CublasLtApi* api = nullptr;
  cublasLtHandle_t handle = nullptr;
  cudaStream_t stream = nullptr;
  std::shared_ptr<DevicePool> pool;
  void* workspace = nullptr;
  size_t workspace_bytes = 0, workspace_class = 0;
  using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                         bool, int, bool, uint32_t, uint32_t, uint32_t, uint32_t>;
  std::map<Key, cublasLtMatmulAlgo_t> algos;  // heuristic choice per problem shape and alignment
};

GemmRunner::GemmRunner(cudaStream_t stream, std::shared_ptr<DevicePool> pool) : s_(std::make_unique<State>()) {
  s_->api = &cublaslt();
  s_->stream = stream;
  s_->pool = std::move(pool);
  SHOWO2_LT_CHECK(s_->api->cublasLtCreate(&s_->handle));
  // 32 MiB: what cuBLAS recommends for Hopper's split-K and stream-K kernels.
  s_->workspace_bytes = size_t{32} << 20;
  s_->workspace = s_->pool->allocate(s_->workspace_bytes, &s_->workspace_class);
}

GemmRunner::~GemmRunner() {
  if (s_->handle) s_->api->cublasLtDestroy(s_->handle);
  if (s_->workspace) s_->pool->release(s_->workspace, s_->workspace_class);
}

const std::string& GemmRunner::library_path() const { return s_->api->path; }

void GemmRunner::run(const Problem& p) {
  const CublasLtApi& lt = *s_->api;
  // A small RAII set so every descriptor is destroyed on every path (errors included).
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, ld = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  struct Cleanup {
    const CublasLtApi& lt;
    cublasLtMatmulDesc_t& op;
    cublasLtMatrixLayout_t &la, &lb, &ld;
    cublasLtMatmulPreference_t& pref;
    ~Cleanup() {
      if (pref) lt.cublasLtMatmulPreferenceDestroy(pref);
      if (ld) lt.cublasLtMatrixLayoutDestroy(ld);
      if (lb) lt.cublasLtMatrixLayoutDestroy(lb);
      if (la) lt.cublasLtMatrixLayoutDestroy(la);
      if (op) lt.cublasLtMatmulDescDestroy(op);
    }
  } cleanup{lt, op, la, lb, ld, pref};

  SHOWO2_LT_CHECK(lt.cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  // Column-major D^T (n x m) = op(B storage) (n x k) . A storage (k x m).
  const cublasOperation_t op_first = p.b_transposed ? CUBLAS_OP_T : CUBLAS_OP_N, op_second = CUBLAS_OP_N;
  SHOWO2_LT_CHECK(lt.cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &op_first, sizeof(op_first)));
  SHOWO2_LT_CHECK(lt.cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &op_second, sizeof(op_second)));
  if (p.bias) {
    const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
    SHOWO2_LT_CHECK(lt.cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue)));
    SHOWO2_LT_CHECK(lt.cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &p.bias, sizeof(p.bias)));
    const cudaDataType_t bias_type = CUDA_R_32F;
    SHOWO2_LT_CHECK(
        lt.cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type, sizeof(bias_type)));
  }
  // First operand: B storage; [n, k] row-major is k x n column-major (used transposed), [k, n] is n x k.
  if (p.b_transposed) SHOWO2_LT_CHECK(lt.cublasLtMatrixLayoutCreate(&la, p.ab_type, p.k, p.n, p.ldb));
  else SHOWO2_LT_CHECK(lt.cublasLtMatrixLayoutCreate(&la, p.ab_type, p.n, p.k, p.ldb));
  SHOWO2_LT_CHECK(lt.cublasLtMatrixLayoutCreate(&lb, p.ab_type, p.k, p.m, p.lda));  // A storage: k x m column-major
  SHOWO2_LT_CHECK(lt.cublasLtMatrixLayoutCreate(&ld, CUDA_R_32F, p.n, p.m, p.ldd));  // D: n x m column-major
  if (p.batch > 1) {
    const int32_t count = static_cast<int32_t>(p.batch);
    for (auto [layout, stride] : {std::pair{la, p.batch_stride_b}, std::pair{lb, p.batch_stride_a},
                                  std::pair{ld, p.batch_stride_d}}) {
      SHOWO2_LT_CHECK(
          lt.cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)));
      SHOWO2_LT_CHECK(lt.cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                                          &stride, sizeof(stride)));
    }
  }

  const uint32_t align_a = alignment_of(p.b), align_b = alignment_of(p.a), align_d = alignment_of(p.d),
                 align_bias = p.bias ? alignment_of(p.bias) : 256;
  const State::Key key{p.m,  p.n,  p.k, p.batch, p.lda, p.ldb, p.ldd, p.batch_stride_a, p.batch_stride_b,
                       p.batch_stride_d, p.b_transposed, static_cast<int>(p.ab_type), p.bias != nullptr,
                       align_a, align_b, align_d, align_bias};
  auto it = s_->algos.find(key);
  if (it == s_->algos.end()) {
    SHOWO2_LT_CHECK(lt.cublasLtMatmulPreferenceCreate(&pref));
    const uint64_t ws = s_->workspace_bytes;
    SHOWO2_LT_CHECK(
        lt.cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
    SHOWO2_LT_CHECK(lt.cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &align_a,
                                                            sizeof(align_a)));
    SHOWO2_LT_CHECK(lt.cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &align_b,
                                                            sizeof(align_b)));
    SHOWO2_LT_CHECK(lt.cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &align_d,
                                                            sizeof(align_d)));
    SHOWO2_LT_CHECK(lt.cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &align_d,
                                                            sizeof(align_d)));
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    SHOWO2_LT_CHECK(lt.cublasLtMatmulAlgoGetHeuristic(s_->handle, op, la, lb, ld, ld, pref, 1, &result, &found));
    if (found == 0)
      fail(ErrorCode::Cuda, "cuBLASLt has no algorithm for the GEMM m=", p.m, " n=", p.n, " k=", p.k,
           " batch=", p.batch, " (operand alignment ", align_a, "/", align_b, "/", align_d, " bytes)");
    it = s_->algos.emplace(key, result.algo).first;
  }
  const float alpha = 1.0f, beta = 0.0f;
  SHOWO2_LT_CHECK(lt.cublasLtMatmul(s_->handle, op, &alpha, p.b, la, p.a, lb, &beta, p.d, ld, p.d, ld, &it->second,
                                    s_->workspace, s_->workspace_bytes, s_->stream));
}

// ---- CudaBackend::linear / matmul -----------------------------------------------------------------------------------

namespace {

// Rows of t [..., C] (last dim contiguous) as (rows, row stride) when every leading dim folds into one stride.
bool uniform_rows(const Tensor& t, int64_t* rows, int64_t* ld) {
  const int64_t C = t.dim() == 0 ? 1 : t.size(-1);
  int64_t r = 1, stride = C, expected = -1;
  for (int64_t d = t.dim() - 2; d >= 0; --d) {
    r *= t.size(d);
    if (t.size(d) == 1) continue;
    if (expected < 0) {
      stride = t.stride(d);
      expected = stride * t.size(d);
    } else {
      if (t.stride(d) != expected) return false;
      expected *= t.size(d);
    }
  }
  if (t.dim() >= 1 && t.size(-1) > 1 && t.stride(-1) != 1) return false;
  *rows = r;
  *ld = std::max<int64_t>(stride, std::max<int64_t>(C, 1));
  return true;
}

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::F32: return CUDA_R_32F;
    case DType::BF16: return CUDA_R_16BF;
    case DType::F16: return CUDA_R_16F;
    default: fail(ErrorCode::UnsupportedDtype, "GEMM: unsupported dtype ", dtype_name(t));
  }
}

void require_cuda(const Tensor& t, const char* what) {
  if (t.defined() && t.device() != Device::Cuda)
    fail(ErrorCode::InvalidArgument, what, ": expected a tensor in cuda memory but got one in ",
         device_name(t.device()), " memory (weights go through Backend::upload_weight, inputs through to_device)");
}

GemmRunner& runner(CudaBackend::Impl& im) {
  if (!im.gemm) im.gemm = std::make_unique<GemmRunner>(im.stream, im.pool);
  return *im.gemm;
}

}  // namespace

void CudaBackend::linear(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& out) {
  Impl& im = *impl_;
  im.activate();
  require_cuda(x, "linear: x");
  require_cuda(weight, "linear: weight");
  require_cuda(bias, "linear: bias");
  require_cuda(out, "linear: out");
  check_dtype(x, DType::F32, "linear: x");
  check_float(weight, "linear: weight");
  check_dim(weight, 2, "linear: weight");
  check_contiguous(weight, "linear: weight");
  check_dtype(out, DType::F32, "linear: out");
  check_writable(out, "linear: out");
  const int64_t N = weight.size(0), K = weight.size(1);
  if (x.dim() < 1 || x.size(-1) != K)
    fail(ErrorCode::ShapeMismatch, "linear: x: expected [..., ", K, "] but got ", x.shape_string());
  Shape out_shape = x.shape();
  out_shape.back() = N;
  check_shape(out, out_shape, "linear: out");
  if (bias.defined()) {
    check_dtype(bias, DType::F32, "linear: bias (upload_weight keeps 1-D weights in F32)");
    check_shape(bias, {N}, "linear: bias");
  }
  if (out.numel() == 0) return;
  SHOWO2_CHECK(K > 0, ShapeMismatch, "linear: K = 0 is not supported by the CUDA backend");

  Tensor xs = x;
  int64_t M = 0, ld_x = 0;
  if (!uniform_rows(xs, &M, &ld_x)) {
    xs = im.empty(x.shape(), DType::F32);
    copy(x, xs);
    uniform_rows(xs, &M, &ld_x);
  }
  Tensor os = out;
  int64_t M_out = 0, ld_out = 0;
  const bool direct_out = uniform_rows(out, &M_out, &ld_out);
  if (!direct_out) {
    os = im.empty(out.shape(), DType::F32);
    uniform_rows(os, &M_out, &ld_out);
  }

  GemmRunner::Problem p;
  p.m = M;
  p.n = N;
  p.k = K;
  p.b = weight.device_raw();
  p.ldb = K;
  p.b_transposed = true;
  p.d = static_cast<float*>(os.mutable_device_raw());
  p.ldd = ld_out;
  p.bias = bias.defined() ? static_cast<const float*>(bias.device_raw()) : nullptr;
  p.ab_type = cuda_type(weight.dtype());
  Tensor x_rounded;  // the activations in the weight dtype (cuBLASLt multiplies like types)
  if (weight.dtype() == DType::F32) {
    p.a = xs.device_raw();
    p.lda = ld_x;
  } else {
    x_rounded = im.empty({M, K}, weight.dtype());
    convert_rows_f32(static_cast<const float*>(xs.device_raw()), M, K, ld_x, x_rounded.mutable_device_raw(),
                     weight.dtype(), im.stream);
    p.a = x_rounded.device_raw();
    p.lda = K;
  }
  runner(im).run(p);
  if (!direct_out) copy(os, out);
}

void CudaBackend::matmul(const Tensor& a, const Tensor& b, bool transpose_b, Tensor& out) {
  Impl& im = *impl_;
  im.activate();
  require_cuda(a, "matmul: a");
  require_cuda(b, "matmul: b");
  require_cuda(out, "matmul: out");
  check_dtype(a, DType::F32, "matmul: a");
  check_dtype(b, DType::F32, "matmul: b");
  check_dtype(out, DType::F32, "matmul: out");
  check_dim(a, 3, "matmul: a");
  check_dim(b, 3, "matmul: b");
  check_writable(out, "matmul: out");
  const int64_t B = a.size(0), M = a.size(1), K = a.size(2);
  const int64_t N = transpose_b ? b.size(1) : b.size(2);
  const int64_t Kb = transpose_b ? b.size(2) : b.size(1);
  if (Kb != K || (b.size(0) != B && b.size(0) != 1))
    fail(ErrorCode::ShapeMismatch, "matmul: b: ", b.shape_string(), " does not fit a ", a.shape_string(),
         transpose_b ? " (b transposed)" : "");
  check_shape(out, {B, M, N}, "matmul: out");
  if (out.numel() == 0) return;
  SHOWO2_CHECK(K > 0, ShapeMismatch, "matmul: K = 0 is not supported by the CUDA backend");
  // Each operand needs a contiguous last dim; anything else is gathered first.
  auto dense_rows = [&](const Tensor& t) {
    if (t.stride(2) == 1 || t.size(2) == 1) return t;
    Tensor c = im.empty(t.shape(), DType::F32);
    copy(t, c);
    return c;
  };
  const Tensor as = dense_rows(a), bs = dense_rows(b);
  Tensor os = out.stride(2) == 1 || out.size(2) == 1 ? out : im.empty(out.shape(), DType::F32);
  GemmRunner::Problem p;
  p.m = M;
  p.n = N;
  p.k = K;
  p.batch = B;
  p.a = as.device_raw();
  p.lda = std::max<int64_t>(as.stride(1), K);
  p.batch_stride_a = as.stride(0);
  p.b = bs.device_raw();
  p.ldb = std::max<int64_t>(bs.stride(1), transpose_b ? K : N);
  p.batch_stride_b = b.size(0) == 1 ? 0 : bs.stride(0);
  p.b_transposed = transpose_b;
  p.d = static_cast<float*>(os.mutable_device_raw());
  p.ldd = std::max<int64_t>(os.stride(1), N);
  p.batch_stride_d = os.stride(0);
  p.ab_type = CUDA_R_32F;
  runner(im).run(p);
  if (os.storage() != out.storage()) copy(os, out);
}

}  // namespace showo2::cuda
