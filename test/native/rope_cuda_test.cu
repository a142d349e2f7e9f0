// cuda/rope.cu against the CPU backend (native/core/cpu/rope.cpp) with both Show-o2 tables (Qwen2.5: D 128, theta
// 1e6; flow head: D 64, theta 5e5 with the Llama-3 remap), SigLIP-sized D 72, odd half sizes (D 6, 2), position
// offsets, and q/k views of a fused projection. Skipped without a CUDA device, except the argument checks.
//
// Tolerance: both sides round each product and each sum separately in the same order (the kernel uses __fmul_rn /
// __fadd_rn, the CPU's baseline build does not contract), so the results should be bitwise equal; atol 0 with
// rtol 2.4e-7 (2^-22, two ulp) leaves room only for a host compiler that contracts into an fma anyway.
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "../../cuda/rope.h"
#include "../../native/core/rope.h"
#include "cpu/cpu_backend.h"
#include "cuda_test_util.h"
#include "tensor.h"
#include "test_util.h"

using namespace showo2;
using showo2::test::DeviceMirror;
using showo2::test::random_normal;

namespace {

constexpr double kRtol = 2.4e-7;

void check_rope(const Tensor& x_host, const RopeTable& table, int64_t offset, const std::string& what) {
  cpu::CpuBackend cpu(2);
  Tensor ref = x_host.contiguous();
  // The CPU rotates in place; rotate a copy of the same view (the base storage is copied so strides match).
  std::shared_ptr<Storage> copy = Storage::allocate(x_host.storage()->nbytes());
  std::memcpy(copy->mutable_data(), x_host.storage()->data(), x_host.storage()->nbytes());
  Tensor cpu_view = Tensor::view_of(copy, DType::F32, x_host.shape(), x_host.strides(), x_host.byte_offset());
  cpu.rope(cpu_view, table, offset);

  DeviceMirror dx(x_host), dcos(table.cos), dsin(table.sin);
  cuda::RopeParams p;
  p.x = dx.f32();
  p.batch = x_host.size(0);
  p.seq_len = x_host.size(1);
  p.heads = x_host.size(2);
  p.head_dim = x_host.size(3);
  p.stride_b = x_host.stride(0);
  p.stride_l = x_host.stride(1);
  p.stride_h = x_host.stride(2);
  p.cos = dcos.f32();
  p.sin = dsin.f32();
  p.table_positions = table.max_positions;
  p.position_offset = offset;
  cuda::launch_rope(p, 0);
  // Compare the whole storage: the rotated view and everything around it (which must be untouched).
  const Tensor got_storage = dx.download();
  const size_t n = x_host.storage()->nbytes() / sizeof(float);
  const float* got = reinterpret_cast<const float*>(got_storage.storage()->data());
  const float* want = reinterpret_cast<const float*>(copy->data());
  EXPECT_CLOSE(got, want, n, 0.0, kRtol, what);
}

}  // namespace

SHOWO2_TEST(rope_matches_cpu_on_both_tables) {
  test::require_cuda_device();
  const RopeTable llm = make_rope_table(128, 2048, 1e6);
  const RopeTable head = make_rope_table(64, 2048, 5e5, Llama3RopeScaling{});
  const RopeTable siglip_sized = make_rope_table(72, 64, 1e4);
  const RopeTable tiny = make_rope_table(6, 64, 1e4);  // half 3: scalar path
  const RopeTable minimal = make_rope_table(2, 16, 1e4);
  uint32_t seed = 70;
  struct Case { const RopeTable* table; Shape shape; int64_t offset; };
  const Case cases[] = {
      {&llm, {2, 73, 12, 128}, 0},     {&llm, {1, 1, 2, 128}, 1999},  // decode step at a late position
      {&head, {2, 37, 32, 64}, 5},     {&siglip_sized, {1, 7, 3, 72}, 11},
      {&tiny, {3, 5, 1, 6}, 2},        {&minimal, {1, 16, 1, 2}, 0},
  };
  for (const Case& c : cases) {
    Tensor x = Tensor::from_f32(c.shape, random_normal(static_cast<size_t>(shape_numel(c.shape)), seed++));
    check_rope(x, *c.table, c.offset, "rope " + x.shape_string() + " offset " + std::to_string(c.offset));
  }
}

SHOWO2_TEST(rope_on_qk_views_of_a_fused_projection) {
  test::require_cuda_device();
  // qkv [B, L, (Hq + 2 Hkv) * D]: q and k are views with the fused row stride; the v part must stay untouched.
  const RopeTable llm = make_rope_table(128, 512, 1e6);
  const int64_t B = 2, L = 9, Hq = 12, Hkv = 2, D = 128;
  Tensor qkv = Tensor::from_f32({B, L, (Hq + 2 * Hkv) * D},
                                random_normal(static_cast<size_t>(B * L * (Hq + 2 * Hkv) * D), 80));
  Tensor heads = qkv.reshape({B, L, Hq + 2 * Hkv, D});
  check_rope(heads.slice(2, 0, Hq), llm, 3, "rope on the q view");
  check_rope(heads.slice(2, Hq, Hq + Hkv), llm, 3, "rope on the k view");
  // An odd-float offset view (misaligned for float4): the scalar path must take over.
  Tensor odd = Tensor::from_f32({1 + 2 * 3 * 4 * 64}, random_normal(1 + 2 * 3 * 4 * 64, 81));
  Tensor odd_view = Tensor::view_of(odd.storage(), DType::F32, {2, 3, 4, 64}, contiguous_strides({2, 3, 4, 64}), 4);
  check_rope(odd_view, make_rope_table(64, 16, 5e5, Llama3RopeScaling{}), 1, "rope on a misaligned view");
}

SHOWO2_TEST(rope_launcher_rejects_bad_arguments) {
  float dummy[8] = {};
  cuda::RopeParams p;
  p.x = dummy;
  p.cos = dummy;
  p.sin = dummy;
  p.batch = p.seq_len = p.heads = 1;
  p.head_dim = 3;
  p.stride_b = p.stride_l = p.stride_h = 3;
  p.table_positions = 4;
  CHECK_THROWS_CODE(cuda::launch_rope(p, 0), ShapeMismatch);  // odd head_dim
  p.head_dim = 4;
  p.position_offset = 4;  // positions [4, 5) outside [0, 4)
  CHECK_THROWS_CODE(cuda::launch_rope(p, 0), InvalidArgument);
  p.position_offset = -1;
  CHECK_THROWS_CODE(cuda::launch_rope(p, 0), InvalidArgument);
}

SHOWO2_TEST_MAIN()
