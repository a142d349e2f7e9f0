// cuda/layout.cu (strided copy, nearest 2x upsampling) against the CPU backend (native/core/cpu/layout.cpp): the Wan
// VAE's layout changes (NCTHW <-> token-major transposes, a frame slice written into a larger tensor), rank 6 views,
// misaligned outputs, odd sizes. Skipped without a CUDA device, except the argument checks (overlap, rank).
//
// Tolerance: none. Both ops move bits, so the GPU must equal the CPU exactly (atol 0, rtol 0).
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "../../cuda/layout.h"
#include "cpu/cpu_backend.h"
#include "cuda_backend.h"
#include "cuda_test_util.h"
#include "tensor.h"
#include "test_util.h"

using namespace showo2;
using showo2::test::DeviceMirror;
using showo2::test::random_normal;

namespace {

cuda::LayoutParams copy_params(const Tensor& src, const DeviceMirror& dsrc, const Tensor& dst,
                               const DeviceMirror& ddst) {
  cuda::LayoutParams p;
  p.src = dsrc.f32();
  p.dst = ddst.f32();
  p.rank = static_cast<int>(src.dim());
  for (int d = 0; d < p.rank; ++d) {
    p.size[d] = src.size(d);
    p.src_stride[d] = src.stride(d);
    p.dst_stride[d] = dst.stride(d);
  }
  return p;
}

// Copies src into dst on both backends (dst's surrounding storage starts as the same random values) and compares
// dst's whole storage.
void check_copy(const Tensor& src, const Tensor& dst_template, const std::string& what) {
  cpu::CpuBackend cpu(2);
  std::shared_ptr<Storage> cpu_storage = Storage::allocate(dst_template.storage()->nbytes());
  std::memcpy(cpu_storage->mutable_data(), dst_template.storage()->data(), dst_template.storage()->nbytes());
  Tensor cpu_dst = Tensor::view_of(cpu_storage, DType::F32, dst_template.shape(), dst_template.strides(),
                                   dst_template.byte_offset());
  cpu.copy(src, cpu_dst);

  DeviceMirror dsrc(src), ddst(dst_template);
  cuda::launch_copy(copy_params(src, dsrc, dst_template, ddst), 0);
  const Tensor got = ddst.download();
  const size_t n = dst_template.storage()->nbytes() / sizeof(float);
  EXPECT_CLOSE(reinterpret_cast<const float*>(got.storage()->data()),
               reinterpret_cast<const float*>(cpu_storage->data()), n, 0.0, 0.0, what);
}

Tensor random(const Shape& shape, uint32_t seed) {
  return Tensor::from_f32(shape, random_normal(static_cast<size_t>(shape_numel(shape)), seed));
}

}  // namespace

SHOWO2_TEST(copy_matches_cpu_on_vae_layouts) {
  test::require_cuda_device();
  // Contiguous to contiguous (the memcpy path), odd size.
  check_copy(random({1153}, 600), random({1153}, 601), "copy dense");
  // NCTHW -> token-major [N, T, H, W, C] (dst written through a permuted view), and back.
  const Shape ncthw = {1, 96, 3, 5, 7};
  Tensor token_major = random({1, 3, 5, 7, 96}, 602);
  Tensor dst_view = token_major.transpose(1, 4).transpose(2, 4).transpose(3, 4);  // [1, 96, 3, 5, 7] view
  check_copy(random(ncthw, 603), dst_view, "copy NCTHW -> token-major");
  check_copy(random({1, 3, 5, 7, 96}, 604).transpose(1, 4).transpose(2, 4).transpose(3, 4), random(ncthw, 605),
             "copy token-major -> NCTHW");
  // A chunk written into frames [2, 4) of a larger [N, C, T, H, W] cache (the causal frame cache / concatenation).
  Tensor cache = random({2, 16, 6, 9, 11}, 606);
  check_copy(random({2, 16, 2, 9, 11}, 607), cache.slice(2, 2, 4), "copy into a T slice");
  // Rank 6 with nothing foldable: a permuted source.
  Tensor six = random({2, 3, 4, 5, 3, 2}, 608);
  Tensor permuted = six.transpose(0, 5).transpose(1, 3);  // [2, 5, 4, 3, 3, 2] with scrambled strides
  check_copy(permuted, random(permuted.shape(), 609), "copy rank 6 permuted");
  // A 0-D copy (one element) and size-1 dims everywhere.
  check_copy(random({1, 1, 1}, 610), random({1, 1, 1}, 611), "copy of one element");
}

// Copies that convert (BF16 activations, CudaBackendOptions::conv_activation_dtype): F32 -> BF16 rounds to nearest
// even exactly as the host's Tensor::to(BF16) does, BF16 -> F32 is exact, BF16 -> BF16 moves bits; through the
// backend entry point, strided (a channels-last view) and dense (the memcpy path only when the dtypes agree).
SHOWO2_TEST(copy_converts_between_f32_and_bf16) {
  test::require_cuda_device();
  cuda::CudaBackend gpu;
  const Tensor src = random({2, 5, 3, 4, 7}, 620);
  const std::vector<float> rounded = src.to(DType::BF16).to_f32_vector();  // the host's RNE rounding
  // F32 -> BF16, dense and into a channels-last view.
  Tensor dense = gpu.empty(src.shape(), DType::BF16);
  gpu.copy(gpu.to_device(src), dense);
  CHECK(gpu.to_host(dense).to_f32_vector() == rounded);
  Tensor channels_last = gpu.empty({2, 3, 4, 7, 5}, DType::BF16).permute(memory_order_to_channels_last(5));
  gpu.copy(gpu.to_device(src), channels_last);
  CHECK(gpu.to_host(channels_last).to_f32_vector() == rounded);
  // BF16 -> F32 (exact) from the channels-last view, and BF16 -> BF16 back to dense.
  Tensor back = gpu.empty(src.shape(), DType::F32);
  gpu.copy(channels_last, back);
  CHECK(gpu.to_host(back).to_f32_vector() == rounded);
  Tensor again = gpu.empty(src.shape(), DType::BF16);
  gpu.copy(channels_last, again);
  CHECK(gpu.to_host(again).to_f32_vector() == rounded);
  // F16 is not an activation dtype: a typed error.
  Tensor f16 = gpu.empty(src.shape(), DType::F16);
  CHECK_THROWS_CODE(gpu.copy(gpu.to_device(src), f16), UnsupportedDtype);
}

SHOWO2_TEST(upsample_nearest2x_matches_cpu) {
  test::require_cuda_device();
  cpu::CpuBackend cpu(2);
  uint32_t seed = 620;
  for (const Shape& shape : {Shape{1, 3, 5, 7}, Shape{2, 4, 1, 1}, Shape{1, 96, 2, 9, 13}, Shape{1, 1, 27, 27}})
    for (bool misaligned : {false, true}) {
      Tensor x = random(shape, seed++);
      Shape out_shape = shape;
      out_shape[out_shape.size() - 2] *= 2;
      out_shape[out_shape.size() - 1] *= 2;
      Tensor ref = Tensor::empty(out_shape, DType::F32);
      cpu.upsample_nearest2x(x, ref);
      // A misaligned output starts one float into its storage, so the float2 stores are off.
      const int64_t n = shape_numel(out_shape);
      Tensor backing = Tensor::zeros({n + 1}, DType::F32);
      Tensor out = Tensor::view_of(backing.storage(), DType::F32, out_shape, contiguous_strides(out_shape),
                                   misaligned ? sizeof(float) : 0);
      DeviceMirror dx(x), dout(out);
      cuda::LayoutParams p;
      p.src = dx.f32();
      p.dst = dout.f32();
      p.height = shape[shape.size() - 2];
      p.width = shape[shape.size() - 1];
      p.planes = x.numel() / (p.height * p.width);
      cuda::launch_upsample_nearest2x(p, 0);
      const std::vector<float> got = dout.download_f32(), want = ref.to_f32_vector();
      EXPECT_CLOSE(got.data(), want.data(), want.size(), 0.0, 0.0,
                   "upsample_nearest2x " + x.shape_string() + (misaligned ? " misaligned" : ""));
    }
}

SHOWO2_TEST(copy_launcher_rejects_overlap_and_rank) {
  // Pointer arithmetic only: nothing is dereferenced before these throw, so host memory stands in for the device.
  std::vector<float> buffer(64);
  cuda::LayoutParams p;
  p.rank = 1;
  p.size[0] = 16;
  p.src_stride[0] = 1;
  p.dst_stride[0] = 1;
  p.src = buffer.data();
  p.dst = buffer.data() + 8;  // overlaps src's [0, 16)
  CHECK_THROWS_CODE(cuda::launch_copy(p, 0), InvalidArgument);
  p.dst = buffer.data();
  p.dst_stride[0] = 2;  // same start, different strides: overlapping, not the same view
  CHECK_THROWS_CODE(cuda::launch_copy(p, 0), InvalidArgument);
  p.rank = cuda::kMaxCopyRank + 1;
  CHECK_THROWS_CODE(cuda::launch_copy(p, 0), ShapeMismatch);
}

SHOWO2_TEST_MAIN()
