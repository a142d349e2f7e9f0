// Backend::conv3d_fused (backend.h ConvFusion) on the CPU backend, whose default implementation composes the unfused
// ops: against a conv3d over an input assembled here element by element (history frames from a ring in wrapped
// order, nearest-exact 2x upsampling) and a residual added here, bit for bit (the same conv3d runs on the same
// values); channels-last operands (activations and weights) against the contiguous call, bit for bit; and its
// argument contract: every bad fusion or layout is a typed error naming the field.
// The CUDA kernels' fusions are checked against this in test/native/conv_fused_cuda_test.cu.
#include <cstdio>
#include <string>
#include <vector>

#include "backend.h"
#include "cpu/cpu_backend.h"
#include "tensor.h"
#include "test_util.h"

using namespace showo2;
using showo2::test::random_vector;

namespace {

cpu::CpuBackend& backend() {
  static cpu::CpuBackend b(2);
  return b;
}

Tensor random_tensor(const Shape& shape, uint32_t seed) {
  return Tensor::from_f32(shape, random_vector(static_cast<size_t>(shape_numel(shape)), seed));
}

Conv3dParams causal_pads(int64_t front) {
  Conv3dParams p;
  p.pad_front = front;
  p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = 1;
  return p;
}

// Element idx of a contiguous host tensor's values.
float at(const Tensor& t, const std::vector<int64_t>& idx) {
  const float* data = t.data<float>();
  int64_t offset = 0;
  for (size_t d = 0; d < idx.size(); ++d) offset = offset * t.size(static_cast<int64_t>(d)) + idx[d];
  return data[offset];
}

Shape conv_out_shape(const Shape& input, const Tensor& weight, const Conv3dParams& p) {
  return {input[0], weight.size(0), (input[2] + p.pad_front + p.pad_back - weight.size(2)) / p.stride_t + 1,
          (input[3] + p.pad_top + p.pad_bottom - weight.size(3)) / p.stride_h + 1,
          (input[4] + p.pad_left + p.pad_right - weight.size(4)) / p.stride_w + 1};
}

// A channels-last copy of a host tensor [N, C, S...] (memory [N, S..., C]), and an uninitialised one.
Tensor channels_last_copy(const Tensor& t) {
  return t.permute(channels_last_to_memory_order(t.dim())).contiguous().permute(memory_order_to_channels_last(t.dim()));
}
Tensor channels_last_empty(const Shape& shape) {
  Shape memory;
  for (int64_t d : channels_last_to_memory_order(static_cast<int64_t>(shape.size())))
    memory.push_back(shape[static_cast<size_t>(d)]);
  return Tensor::empty(memory, DType::F32).permute(memory_order_to_channels_last(static_cast<int64_t>(shape.size())));
}

}  // namespace

SHOWO2_TEST(history_frames_read_in_ring_order) {
  const int64_t N = 2, C = 3, T = 2, H = 5, W = 6, O = 4;
  const Tensor x = random_tensor({N, C, T, H, W}, 1);
  const Tensor ring = random_tensor({N, C, 2, H, W}, 2);  // slot 1 holds the older frame (a wrapped ring)
  const Tensor weight = random_tensor({O, C, 3, 3, 3}, 3), bias = random_tensor({O}, 4);
  for (int count : {1, 2}) {
    ConvFusion f;
    f.history_count = count;
    f.history[0] = ring.slice(2, 1, 2);
    f.history[1] = ring.slice(2, 0, 1);
    const Conv3dParams p = causal_pads(2 - count);
    // torch.cat([history..., x], dim=2), assembled element by element.
    std::vector<float> values;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t t = 0; t < count + T; ++t)
          for (int64_t h = 0; h < H; ++h)
            for (int64_t w = 0; w < W; ++w) {
              const int64_t slot = t < count ? (t == 0 ? 1 : 0) : -1;
              values.push_back(slot >= 0 ? at(ring, {n, c, slot, h, w}) : at(x, {n, c, t - count, h, w}));
            }
    const Tensor input = Tensor::from_f32({N, C, count + T, H, W}, values);
    Tensor expected = Tensor::empty(conv_out_shape(input.shape(), weight, p), DType::F32);
    backend().conv3d(input, weight, bias, p, expected);
    Tensor got = Tensor::empty(expected.shape(), DType::F32);
    backend().conv3d_fused(x, f, weight, bias, p, got);
    CHECK(got.to_f32_vector() == expected.to_f32_vector());
  }
}

SHOWO2_TEST(upsampled_input_is_nearest_exact_2x) {
  const int64_t N = 1, C = 5, T = 2, H = 3, W = 4, O = 6;
  const Tensor x = random_tensor({N, C, T, H, W}, 5);
  const Tensor weight = random_tensor({O, C, 1, 3, 3}, 6), bias = random_tensor({O}, 7);
  std::vector<float> values;  // out[h, w] = x[h / 2, w / 2]
  for (int64_t c = 0; c < C; ++c)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < 2 * H; ++h)
        for (int64_t w = 0; w < 2 * W; ++w) values.push_back(at(x, {0, c, t, h / 2, w / 2}));
  const Tensor input = Tensor::from_f32({N, C, T, 2 * H, 2 * W}, values);
  const Conv3dParams p = causal_pads(0);
  Tensor expected = Tensor::empty(conv_out_shape(input.shape(), weight, p), DType::F32);
  backend().conv3d(input, weight, bias, p, expected);
  ConvFusion f;
  f.upsample2x = true;
  Tensor got = Tensor::empty(expected.shape(), DType::F32);
  backend().conv3d_fused(x, f, weight, bias, p, got);
  CHECK_EQ(got.shape(), (Shape{N, O, T, 2 * H, 2 * W}));
  CHECK(got.to_f32_vector() == expected.to_f32_vector());
}

SHOWO2_TEST(residual_is_added_after_the_bias) {
  const Tensor x = random_tensor({1, 4, 1, 6, 7}, 8);
  const Tensor weight = random_tensor({4, 4, 3, 3, 3}, 9), bias = random_tensor({4}, 10);
  const Conv3dParams p = causal_pads(2);
  Tensor conv = Tensor::empty({1, 4, 1, 6, 7}, DType::F32);
  backend().conv3d(x, weight, bias, p, conv);
  ConvFusion f;
  f.residual = random_tensor({1, 4, 1, 6, 7}, 11);
  Tensor got = Tensor::empty({1, 4, 1, 6, 7}, DType::F32);
  backend().conv3d_fused(x, f, weight, bias, p, got);
  const std::vector<float> c = conv.to_f32_vector(), r = f.residual.to_f32_vector(), g = got.to_f32_vector();
  for (size_t i = 0; i < g.size(); ++i)
    if (g[i] != c[i] + r[i]) test::fail_at(__FILE__, __LINE__, "residual not added at " + std::to_string(i));
}

// Every fusion with channels-last activations (x, a channels-last frame ring, residual, out) and with a
// channels-last weight, in each combination: the same bits as the contiguous call (the default implementation copies
// to contiguous and back, so the arithmetic is identical; the CUDA kernels are held to this in
// conv_fused_cuda_test.cu).
SHOWO2_TEST(channels_last_operands_give_the_same_bits) {
  const int64_t N = 2, C = 4, T = 2, H = 5, W = 6, O = 3;
  const Tensor x = random_tensor({N, C, T, H, W}, 30);
  const Tensor ring = random_tensor({N, C, 2, H, W}, 31);
  const Tensor weight = random_tensor({O, C, 3, 3, 3}, 32).to(DType::BF16), bias = random_tensor({O}, 33);
  const Tensor residual = random_tensor({N, O, T, H, W}, 34);
  const Tensor up_weight = random_tensor({O, C, 1, 3, 3}, 35);
  for (bool activations_cl : {false, true})
    for (bool weight_cl : {false, true}) {
      if (!activations_cl && !weight_cl) continue;
      const std::string what = std::string(activations_cl ? "channels-last activations" : "contiguous activations") +
                               (weight_cl ? ", channels-last weight" : ", contiguous weight");
      auto layout = [&](const Tensor& t) { return activations_cl ? channels_last_copy(t) : t; };
      auto out_like = [&](const Shape& shape) {
        return activations_cl ? channels_last_empty(shape) : Tensor::empty(shape, DType::F32);
      };
      {  // two history frames from a wrapped ring, plus a residual
        ConvFusion f, g;
        f.history_count = g.history_count = 2;
        f.history[0] = ring.slice(2, 1, 2);
        f.history[1] = ring.slice(2, 0, 1);
        f.residual = residual;
        const Tensor ring_l = layout(ring);
        g.history[0] = ring_l.slice(2, 1, 2);
        g.history[1] = ring_l.slice(2, 0, 1);
        g.residual = layout(residual);
        const Conv3dParams p = causal_pads(0);
        Tensor expected = Tensor::empty({N, O, T, H, W}, DType::F32);
        backend().conv3d_fused(x, f, weight, bias, p, expected);
        Tensor got = out_like({N, O, T, H, W});
        backend().conv3d_fused(layout(x), g, weight_cl ? channels_last_copy(weight) : weight, bias, p, got);
        if (got.to_f32_vector() != expected.to_f32_vector())
          test::fail_at(__FILE__, __LINE__, "history + residual, " + what + ": results differ");
      }
      {  // upsampled input
        ConvFusion f;
        f.upsample2x = true;
        const Conv3dParams p = causal_pads(0);
        Tensor expected = Tensor::empty({N, O, T, 2 * H, 2 * W}, DType::F32);
        backend().conv3d_fused(x, f, up_weight, bias, p, expected);
        Tensor got = out_like({N, O, T, 2 * H, 2 * W});
        backend().conv3d_fused(layout(x), f, weight_cl ? channels_last_copy(up_weight) : up_weight, bias, p, got);
        if (got.to_f32_vector() != expected.to_f32_vector())
          test::fail_at(__FILE__, __LINE__, "upsample2x, " + what + ": results differ");
      }
    }
}

SHOWO2_TEST(mixed_layouts_are_typed_errors) {
  const Tensor x = random_tensor({1, 2, 1, 4, 4}, 40), x_cl = channels_last_copy(x);
  const Tensor weight = random_tensor({3, 2, 3, 3, 3}, 41);
  const Conv3dParams p = causal_pads(2);
  Tensor out = Tensor::empty({1, 3, 1, 4, 4}, DType::F32), out_cl = channels_last_empty({1, 3, 1, 4, 4});
  // x channels-last, out contiguous (and the reverse).
  CHECK_THROWS_CODE(backend().conv3d_fused(x_cl, ConvFusion{}, weight, Tensor(), p, out), ShapeMismatch);
  CHECK_THROWS_CODE(backend().conv3d_fused(x, ConvFusion{}, weight, Tensor(), p, out_cl), ShapeMismatch);
  // A residual in the other layout.
  ConvFusion f;
  f.residual = random_tensor({1, 3, 1, 4, 4}, 42);
  CHECK_THROWS_CODE(backend().conv3d_fused(x_cl, f, weight, Tensor(), p, out_cl), ShapeMismatch);
  // A contiguous history frame next to channels-last x.
  ConvFusion h;
  h.history_count = 1;
  h.history[0] = random_tensor({1, 2, 1, 4, 4}, 43);
  CHECK_THROWS_CODE(backend().conv3d_fused(x_cl, h, weight, Tensor(), causal_pads(1), out_cl), InvalidArgument);
  // A weight in neither layout.
  const Tensor odd_weight = random_tensor({3, 2, 3, 3, 3}, 44).transpose(2, 3);
  CHECK_THROWS_CODE(backend().conv3d_fused(x, ConvFusion{}, odd_weight, Tensor(), p, out), ShapeMismatch);
  // Plain conv3d takes contiguous tensors only.
  CHECK_THROWS_CODE(backend().conv3d(x_cl, weight, Tensor(), p, out_cl), ShapeMismatch);
  CHECK_THROWS_CODE(backend().conv3d(x, channels_last_copy(weight), Tensor(), p, out), ShapeMismatch);
  // The consistent channels-last call works.
  backend().conv3d_fused(x_cl, ConvFusion{}, channels_last_copy(weight), Tensor(), p, out_cl);
}

// BF16 activations are for backends that prefer them (Backend::preferred_conv_activation_dtype; the CUDA backend
// on request). The CPU backend's ops take F32 only and say so, naming the operand; mixed dtypes are errors anywhere.
SHOWO2_TEST(bf16_activations_are_typed_errors_on_the_cpu) {
  CHECK(backend().preferred_conv_activation_dtype() == DType::F32);
  const Tensor x = random_tensor({1, 2, 1, 4, 4}, 50).to(DType::BF16);
  const Tensor weight = random_tensor({3, 2, 3, 3, 3}, 51);
  Tensor out = Tensor::empty({1, 3, 1, 4, 4}, DType::BF16), out_f32 = Tensor::empty({1, 3, 1, 4, 4}, DType::F32);
  CHECK_THROWS_CODE(backend().conv3d_fused(x, ConvFusion{}, weight, Tensor(), causal_pads(2), out), UnsupportedDtype);
  CHECK_THROWS_CODE(backend().conv3d_fused(x, ConvFusion{}, weight, Tensor(), causal_pads(2), out_f32),
                    UnsupportedDtype);  // out not in x's dtype
  Tensor normed = Tensor::empty(x.shape(), DType::BF16);
  CHECK_THROWS_CODE(backend().channel_rms_norm(x, Tensor::from_f32({2}, {1, 1}), normed), UnsupportedDtype);
  Tensor copied = Tensor::empty(x.shape(), DType::F32);
  CHECK_THROWS_CODE(backend().copy(x, copied), UnsupportedDtype);
  Tensor f16 = Tensor::empty(x.shape(), DType::F16);
  CHECK_THROWS_CODE(backend().copy(random_tensor(x.shape(), 52), f16), UnsupportedDtype);
}

SHOWO2_TEST(bad_fusions_are_typed_errors) {
  const Tensor x = random_tensor({1, 2, 1, 4, 4}, 12);
  const Tensor weight = random_tensor({3, 2, 3, 3, 3}, 13);
  const Tensor ring = random_tensor({1, 2, 2, 4, 4}, 14);
  Tensor out = Tensor::empty({1, 3, 1, 4, 4}, DType::F32);
  auto run = [&](const ConvFusion& f, const Conv3dParams& p) { backend().conv3d_fused(x, f, weight, Tensor(), p, out); };
  {
    ConvFusion f;
    f.history_count = 3;
    CHECK_THROWS_CODE(run(f, causal_pads(0)), InvalidArgument);
  }
  {
    ConvFusion f;
    f.history_count = 1;  // history[0] left undefined
    CHECK_THROWS_CODE(run(f, causal_pads(1)), InvalidArgument);
  }
  {
    ConvFusion f;
    f.history_count = 1;
    f.history[0] = ring.slice(2, 0, 1);
    f.upsample2x = true;
    CHECK_THROWS_CODE(run(f, causal_pads(1)), InvalidArgument);
  }
  {
    ConvFusion f;
    f.history_count = 1;
    f.history[0] = random_tensor({1, 2, 1, 4, 5}, 15);  // W differs from x's
    CHECK_THROWS_CODE(run(f, causal_pads(1)), ShapeMismatch);
  }
  {
    ConvFusion f;
    f.history_count = 1;
    f.history[0] = random_tensor({1, 2, 1, 4, 4}, 16).transpose(3, 4);  // plane not contiguous
    CHECK_THROWS_CODE(run(f, causal_pads(1)), InvalidArgument);
  }
  {
    ConvFusion f;
    f.residual = random_tensor({1, 3, 1, 4, 5}, 17);
    CHECK_THROWS_CODE(run(f, causal_pads(2)), ShapeMismatch);
  }
  {
    ConvFusion f;
    f.residual = out;  // aliases out
    CHECK_THROWS_CODE(run(f, causal_pads(2)), InvalidArgument);
  }
  {
    ConvFusion f;
    f.history_count = 2;
    f.history[0] = ring.slice(2, 0, 1);
    f.history[1] = ring.slice(2, 1, 2);
    // With 2 history frames the output has 1 + 2 + 0 - 3 + 1 = 1 frame only when pad_front is 0; pad_front 2 makes
    // 3 output frames, which `out` does not have.
    CHECK_THROWS_CODE(run(f, causal_pads(2)), ShapeMismatch);
    run(f, causal_pads(0));  // the consistent call works
  }
}

SHOWO2_TEST_MAIN()
