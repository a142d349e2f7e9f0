// cuda/adaln_modulate.cu (modulate, gated residual) against the CPU backend (native/core/cpu/adaln_modulate.cpp):
// rows in several groups and identity rows (-1), shift/scale/gate as strided chunks of one [G, 6C] adaLN output,
// odd widths (1, 7, 1153) and the flow head's 2048, in place. Skipped without a CUDA device, except the argument
// checks.
//
// Tolerance: none. Both sides round every product and sum separately in the reference order ((x * (1 + scale)) +
// shift; h + (gate * y)): the kernel through __fmul_rn/__fadd_rn, the CPU through separate statements. Bitwise
// equality is expected (atol 0, rtol 0).
#include <cstdint>
#include <string>
#include <vector>

#include "../../cuda/adaln_modulate.h"
#include "cpu/cpu_backend.h"
#include "cuda_test_util.h"
#include "tensor.h"
#include "test_util.h"

using namespace showo2;
using showo2::test::DeviceMirror;
using showo2::test::random_normal;

namespace {

Tensor make_groups(int64_t R, int64_t G) {
  Tensor g = Tensor::empty({R}, DType::I32);
  for (int64_t r = 0; r < R; ++r) g.mutable_data<int32_t>()[r] = static_cast<int32_t>(r % (G + 1)) - 1;  // -1..G-1
  return g;
}

}  // namespace

SHOWO2_TEST(modulate_and_gated_residual_match_cpu) {
  test::require_cuda_device();
  cpu::CpuBackend cpu(2);
  uint32_t seed = 900;
  const int64_t G = 3;
  for (int64_t C : {int64_t{1}, int64_t{7}, int64_t{1153}, int64_t{2048}})
    for (int64_t R : {int64_t{1}, int64_t{37}}) {
      // ada [G, 6C]: chunk k is columns [kC, (k+1)C), a [G, C] view with row stride 6C (torch's .chunk(6, -1)).
      Tensor ada = Tensor::from_f32({G, 6 * C}, random_normal(static_cast<size_t>(G * 6 * C), seed++, 0.5f));
      Tensor shift = ada.slice(1, 0, C), scale = ada.slice(1, C, 2 * C), gate = ada.slice(1, 2 * C, 3 * C);
      Tensor x = Tensor::from_f32({R, C}, random_normal(static_cast<size_t>(R * C), seed++, 2.0f));
      Tensor row_group = make_groups(R, G);
      DeviceMirror dada(ada), dx(x), dgroups(row_group);

      // modulate, out separate.
      Tensor ref = Tensor::empty({R, C}, DType::F32);
      cpu.modulate(x, shift, scale, row_group, ref);
      Tensor out = Tensor::zeros({R, C}, DType::F32);
      DeviceMirror dout(out);
      cuda::AdaLNParams p;
      p.rows = R;
      p.cols = C;
      p.row_group = static_cast<const int32_t*>(dgroups.ptr());
      p.groups = G;
      p.x = dx.f32();
      p.x_row_stride = C;
      p.out = dout.f32();
      p.out_row_stride = C;
      p.shift = dada.f32();
      p.shift_row_stride = 6 * C;
      p.scale = dada.f32() + C;
      p.scale_row_stride = 6 * C;
      cuda::launch_modulate(p, 0);
      std::vector<float> got = dout.download_f32(), want = ref.to_f32_vector();
      EXPECT_CLOSE(got.data(), want.data(), want.size(), 0.0, 0.0,
                   "modulate C=" + std::to_string(C) + " R=" + std::to_string(R));

      // gated residual: h = x (in place on the mirror), y = the modulate output.
      Tensor h = Tensor::from_f32({R, C}, x.to_f32_vector());
      cpu.gated_residual(h, ref, gate, row_group);
      cuda::AdaLNParams q;
      q.rows = R;
      q.cols = C;
      q.row_group = p.row_group;
      q.groups = G;
      q.x = dout.f32();  // y
      q.x_row_stride = C;
      q.out = dx.f32();  // h
      q.out_row_stride = C;
      q.gate = dada.f32() + 2 * C;
      q.gate_row_stride = 6 * C;
      cuda::launch_gated_residual(q, 0);
      got = dx.download_f32();
      want = h.to_f32_vector();
      EXPECT_CLOSE(got.data(), want.data(), want.size(), 0.0, 0.0,
                   "gated_residual C=" + std::to_string(C) + " R=" + std::to_string(R));

      // modulate in place (out aliases x).
      Tensor x2 = Tensor::from_f32({R, C}, random_normal(static_cast<size_t>(R * C), seed++, 2.0f));
      cpu.modulate(x2, shift, scale, row_group, ref);
      DeviceMirror dx2(x2);
      p.x = dx2.f32();
      p.out = dx2.f32();
      cuda::launch_modulate(p, 0);
      got = dx2.download_f32();
      want = ref.to_f32_vector();
      EXPECT_CLOSE(got.data(), want.data(), want.size(), 0.0, 0.0, "modulate in place C=" + std::to_string(C));
    }
}

SHOWO2_TEST(adaln_launchers_reject_bad_arguments) {
  float dummy[4] = {};
  cuda::AdaLNParams p;
  p.rows = 1;
  p.cols = 4;
  p.groups = 1;
  p.x = dummy;
  p.out = dummy;
  CHECK_THROWS_CODE(cuda::launch_modulate(p, 0), InvalidArgument);  // no row_group, shift, scale
  p.cols = -1;
  CHECK_THROWS_CODE(cuda::launch_gated_residual(p, 0), ShapeMismatch);
}

SHOWO2_TEST_MAIN()
