// cuda/elementwise.cu (add and mul with suffix broadcasting, scale, clamp) against the CPU backend
// (native/core/cpu/elementwise.cpp) on the same seeded inputs: odd sizes, every broadcast form (same shape, a
// suffix, [C], a 0-D value), strided views, in place, NaN through clamp. Skipped without a CUDA device, except the
// argument checks.
//
// Tolerance: none. Each output is one IEEE operation on both sides (add, mul, a compare) or two separately rounded
// ones in the same order (scale: the kernel's __fmul_rn/__fadd_rn, the CPU's uncontracted a * alpha + beta), so the
// GPU must reproduce the CPU bit for bit (atol 0, rtol 0; EXPECT_CLOSE also accepts equal infinities).
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "../../cuda/elementwise.h"
#include "cpu/cpu_backend.h"
#include "cuda_test_util.h"
#include "tensor.h"
#include "test_util.h"

using namespace showo2;
using showo2::test::DeviceMirror;
using showo2::test::random_normal;

namespace {

cuda::ElementwiseParams params_for(const Tensor& a, const DeviceMirror& da, const Tensor& out,
                                   const DeviceMirror& dout) {
  cuda::ElementwiseParams p;
  p.a = da.f32();
  p.a_rows = test::row_map_of(a);
  p.out = dout.f32();
  p.out_rows = test::row_map_of(out);
  p.rows = test::rows_of(a);
  p.cols = a.dim() == 0 ? 1 : a.size(-1);
  return p;
}

void run_binary(cuda::ElementwiseOp op, const Tensor& a, const Tensor& b, const std::string& what) {
  cpu::CpuBackend cpu(2);
  Tensor ref = Tensor::empty(a.shape(), DType::F32);
  if (op == cuda::ElementwiseOp::Add) cpu.add(a, b, ref);
  else cpu.mul(a, b, ref);
  DeviceMirror da(a), db(b);
  Tensor out = Tensor::zeros(a.shape(), DType::F32);
  DeviceMirror dout(out);
  cuda::ElementwiseParams p = params_for(a, da, out, dout);
  p.op = op;
  p.b = db.f32();
  p.b_scalar = b.dim() == 0;
  p.b_rows = cuda::dense_rows(p.b_scalar ? 1 : b.numel() / p.cols, p.cols);
  cuda::launch_elementwise(p, 0);
  const std::vector<float> got = dout.download_f32(), want = ref.to_f32_vector();
  EXPECT_CLOSE(got.data(), want.data(), want.size(), 0.0, 0.0, what);
}

}  // namespace

SHOWO2_TEST(add_and_mul_match_cpu_with_every_broadcast) {
  test::require_cuda_device();
  uint32_t seed = 400;
  const std::vector<Shape> a_shapes = {{1}, {7}, {3, 1153}, {2, 5, 72}, {4, 2, 3, 1536}};
  for (const Shape& as : a_shapes) {
    std::vector<Shape> b_shapes = {as, Shape{}, Shape{as.back()}};
    if (as.size() >= 2) b_shapes.push_back(Shape(as.end() - 2, as.end()));
    for (const Shape& bs : b_shapes)
      for (cuda::ElementwiseOp op : {cuda::ElementwiseOp::Add, cuda::ElementwiseOp::Mul}) {
        Tensor a = Tensor::from_f32(as, random_normal(static_cast<size_t>(shape_numel(as)), seed++));
        Tensor b = Tensor::from_f32(bs, random_normal(static_cast<size_t>(shape_numel(bs)), seed++));
        run_binary(op, a, b, std::string(op == cuda::ElementwiseOp::Add ? "add " : "mul ") + a.shape_string() + " " +
                                 b.shape_string());
      }
  }
  // a as a strided view (every other row of a bigger tensor), b a suffix.
  Tensor big = Tensor::from_f32({6, 1153}, random_normal(6 * 1153, seed++));
  Tensor rows = big.reshape({3, 2, 1153}).select(1, 1);  // [3, 1153] with row stride 2306
  Tensor b = Tensor::from_f32({1153}, random_normal(1153, seed++));
  run_binary(cuda::ElementwiseOp::Add, rows, b, "add on a strided view");
}

SHOWO2_TEST(scale_and_clamp_match_cpu) {
  test::require_cuda_device();
  cpu::CpuBackend cpu(2);
  uint32_t seed = 500;
  for (const Shape& shape : {Shape{1}, Shape{7}, Shape{3, 1153}, Shape{2, 4304}, Shape{2, 3, 4, 5}}) {
    std::vector<float> v = random_normal(static_cast<size_t>(shape_numel(shape)), seed++, 3.0f);
    v[0] = NAN;  // clamp must pass it through
    if (v.size() > 2) v[1] = INFINITY, v[2] = -INFINITY;
    Tensor x = Tensor::from_f32(shape, v);

    Tensor ref = Tensor::empty(shape, DType::F32);
    cpu.scale(x, 0.18215f, -0.37f, ref);
    {
      DeviceMirror dx(x);
      cuda::ElementwiseParams p = params_for(x, dx, x, dx);  // in place
      p.op = cuda::ElementwiseOp::Scale;
      p.alpha = 0.18215f;
      p.beta = -0.37f;
      cuda::launch_elementwise(p, 0);
      const std::vector<float> got = dx.download_f32(), want = ref.to_f32_vector();
      // NaN never compares equal, so the NaN element is checked on its own and the rest exactly.
      CHECK(std::isnan(got[0]));
      EXPECT_CLOSE(got.data() + 1, want.data() + 1, want.size() - 1, 0.0, 0.0, "scale " + x.shape_string());
    }
    cpu.clamp(x, -1.5f, 2.0f, ref);
    {
      DeviceMirror dx(x);
      Tensor out = Tensor::zeros(shape, DType::F32);
      DeviceMirror dout(out);
      cuda::ElementwiseParams p = params_for(x, dx, out, dout);
      p.op = cuda::ElementwiseOp::Clamp;
      p.lo = -1.5f;
      p.hi = 2.0f;
      cuda::launch_elementwise(p, 0);
      const std::vector<float> got = dout.download_f32(), want = ref.to_f32_vector();
      CHECK(std::isnan(got[0]));
      EXPECT_CLOSE(got.data() + 1, want.data() + 1, want.size() - 1, 0.0, 0.0, "clamp " + x.shape_string());
    }
  }
}

SHOWO2_TEST(elementwise_launcher_rejects_bad_arguments) {
  float dummy[4] = {};
  cuda::ElementwiseParams p;
  p.rows = 1;
  p.cols = 4;
  p.a = dummy;
  p.out = dummy;
  p.op = cuda::ElementwiseOp::Add;
  CHECK_THROWS_CODE(cuda::launch_elementwise(p, 0), InvalidArgument);  // add without b
  p.op = cuda::ElementwiseOp::Clamp;
  p.lo = 1.0f;
  p.hi = 0.0f;
  CHECK_THROWS_CODE(cuda::launch_elementwise(p, 0), InvalidArgument);  // lo > hi
  p.lo = NAN;
  CHECK_THROWS_CODE(cuda::launch_elementwise(p, 0), InvalidArgument);
}

SHOWO2_TEST_MAIN()
