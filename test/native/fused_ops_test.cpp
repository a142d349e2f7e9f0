// The fused ops of backend.h on the CPU: cpu::swiglu (activation.cpp), cpu::modulate / cpu::gated_residual
// (adaln_modulate.cpp) and cpu::flow_euler_update (flow_ode.cpp), against plain loops; aliasing, identity rows,
// strided condition chunks, threads; argument errors; and the CPU backend's refusal of device tensors.
//
// Exactness: modulate, gated_residual and flow_euler_update round every product and sum on their own, in the order of
// the loops below, so they must match bit for bit (==). swiglu's silu uses the run-time-selected row kernel (AVX2 exp
// where available), so against the <cmath> loop it is held to the activation family's bound (activation_test.cpp),
// and against cpu::silu followed by cpu::mul (the unfused sequence the model code used) it must be identical.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cpu/cpu_backend.h"
#include "cpu/ops.h"
#include "cpu/thread_pool.h"
#include "tensor.h"
#include "test_util.h"

using namespace showo2;
using showo2::test::random_vector;

namespace {

Tensor i32(const std::vector<int32_t>& values) {
  Tensor t = Tensor::empty({static_cast<int64_t>(values.size())}, DType::I32);
  std::copy(values.begin(), values.end(), t.mutable_data<int32_t>());
  return t;
}

}  // namespace

SHOWO2_TEST(swiglu_matches_silu_times_up) {
  cpu::ThreadPool pool(2);
  const int64_t R = 37, C = 1000;  // C not a multiple of the 256-float block or of 8 lanes
  const std::vector<float> gv = random_vector(static_cast<size_t>(R * C), 11, -8.0f, 8.0f);
  const std::vector<float> uv = random_vector(static_cast<size_t>(R * C), 12);
  const Tensor gate = Tensor::from_f32({R, C}, gv), up = Tensor::from_f32({R, C}, uv);
  Tensor out = Tensor::empty({R, C}, DType::F32);
  cpu::swiglu(gate, up, out, &pool);
  std::vector<float> ref(gv.size());
  for (size_t i = 0; i < gv.size(); ++i) ref[i] = gv[i] / (1.0f + std::exp(-gv[i])) * uv[i];
  // 1e-6 relative: the vectorised exp's few-ulp error (activation_test.cpp measures the silu bound) plus one rounding.
  EXPECT_CLOSE(out.data<float>(), ref.data(), ref.size(), 1e-7, 1e-6, "swiglu vs <cmath> loop");

  Tensor unfused = Tensor::empty({R, C}, DType::F32);
  cpu::silu(gate, unfused, &pool);
  cpu::mul(unfused, up, unfused, &pool);
  CHECK(out.to_f32_vector() == unfused.to_f32_vector());

  // out aliasing up, and out aliasing gate: the same values.
  Tensor up_copy = Tensor::from_f32({R, C}, uv), gate_copy = Tensor::from_f32({R, C}, gv);
  cpu::swiglu(gate, up_copy, up_copy, &pool);
  cpu::swiglu(gate_copy, up, gate_copy, &pool);
  CHECK(up_copy.to_f32_vector() == out.to_f32_vector());
  CHECK(gate_copy.to_f32_vector() == out.to_f32_vector());
}

SHOWO2_TEST(swiglu_errors) {
  Tensor a = Tensor::zeros({2, 3}, DType::F32), b = Tensor::zeros({2, 4}, DType::F32), out = Tensor::zeros({2, 3}, DType::F32);
  CHECK_THROWS_CODE(cpu::swiglu(a, b, out, nullptr), ShapeMismatch);
  CHECK_THROWS_CODE(cpu::swiglu(a, a, b, nullptr), ShapeMismatch);
  CHECK_THROWS_CODE(cpu::swiglu(Tensor::zeros({2, 3}, DType::BF16), a, out, nullptr), UnsupportedDtype);
}

SHOWO2_TEST(modulate_row_groups_match_plain_loop) {
  cpu::ThreadPool pool(2);
  const int64_t R = 90, C = 257, G = 3;
  const std::vector<float> xv = random_vector(static_cast<size_t>(R * C), 21);
  // shift and scale as chunks 0 and 1 of one adaLN output [G, 3C] (row stride 3C), as the flow head passes them.
  const std::vector<float> adav = random_vector(static_cast<size_t>(G * 3 * C), 22);
  const Tensor ada = Tensor::from_f32({G, 3 * C}, adav);
  const Tensor shift = ada.slice(1, 0, C), scale = ada.slice(1, C, 2 * C);
  std::vector<int32_t> groups(static_cast<size_t>(R));
  for (int64_t r = 0; r < R; ++r) groups[static_cast<size_t>(r)] = static_cast<int32_t>(r % (G + 1)) - 1;  // -1..G-1
  const Tensor row_group = i32(groups);

  const Tensor x = Tensor::from_f32({R, C}, xv);
  Tensor out = Tensor::empty({R, C}, DType::F32);
  cpu::modulate(x, shift, scale, row_group, out, &pool);
  std::vector<float> ref(xv.size());
  for (int64_t r = 0; r < R; ++r)
    for (int64_t i = 0; i < C; ++i) {
      const int32_t g = groups[static_cast<size_t>(r)];
      const float v = xv[static_cast<size_t>(r * C + i)];
      if (g < 0) {
        ref[static_cast<size_t>(r * C + i)] = v;
        continue;
      }
      const float one_plus_scale = 1.0f + adav[static_cast<size_t>(g * 3 * C + C + i)];
      const float scaled = v * one_plus_scale;
      ref[static_cast<size_t>(r * C + i)] = scaled + adav[static_cast<size_t>(g * 3 * C + i)];
    }
  CHECK(out.to_f32_vector() == ref);

  Tensor in_place = Tensor::from_f32({R, C}, xv);
  cpu::modulate(in_place, shift, scale, row_group, in_place, &pool);
  CHECK(in_place.to_f32_vector() == ref);
}

SHOWO2_TEST(gated_residual_matches_plain_loop) {
  cpu::ThreadPool pool(2);
  const int64_t R = 75, C = 130, G = 2;
  const std::vector<float> hv = random_vector(static_cast<size_t>(R * C), 31);
  const std::vector<float> yv = random_vector(static_cast<size_t>(R * C), 32);
  const std::vector<float> adav = random_vector(static_cast<size_t>(G * 2 * C), 33);
  const Tensor gate = Tensor::from_f32({G, 2 * C}, adav).slice(1, C, 2 * C);  // chunk 1, row stride 2C
  std::vector<int32_t> groups(static_cast<size_t>(R));
  for (int64_t r = 0; r < R; ++r) groups[static_cast<size_t>(r)] = r < 5 ? -1 : static_cast<int32_t>(r % G);
  Tensor h = Tensor::from_f32({R, C}, hv);
  cpu::gated_residual(h, Tensor::from_f32({R, C}, yv), gate, i32(groups), &pool);
  std::vector<float> ref(hv.size());
  for (int64_t r = 0; r < R; ++r)
    for (int64_t i = 0; i < C; ++i) {
      const size_t k = static_cast<size_t>(r * C + i);
      const int32_t g = groups[static_cast<size_t>(r)];
      const float gated = g < 0 ? yv[k] : adav[static_cast<size_t>(g * 2 * C + C + i)] * yv[k];
      ref[k] = hv[k] + gated;
    }
  CHECK(h.to_f32_vector() == ref);
}

SHOWO2_TEST(modulate_and_gate_errors) {
  const Tensor x = Tensor::zeros({4, 8}, DType::F32), cond = Tensor::zeros({2, 8}, DType::F32);
  Tensor out = Tensor::zeros({4, 8}, DType::F32);
  CHECK_THROWS_CODE(cpu::modulate(x, cond, cond, i32({0, 1, 2, -1}), out, nullptr), InvalidArgument);  // 2 >= G
  CHECK_THROWS_CODE(cpu::modulate(x, cond, cond, i32({0, 1, -2, -1}), out, nullptr), InvalidArgument);
  CHECK_THROWS_CODE(cpu::modulate(x, cond, cond, i32({0, 1, 0}), out, nullptr), ShapeMismatch);
  CHECK_THROWS_CODE(cpu::modulate(x, cond, Tensor::zeros({2, 7}, DType::F32), i32({0, 0, 0, 0}), out, nullptr),
                    ShapeMismatch);
  Tensor h = Tensor::zeros({4, 8}, DType::F32);
  CHECK_THROWS_CODE(cpu::gated_residual(h, Tensor::zeros({4, 7}, DType::F32), cond, i32({0, 0, 0, 0}), nullptr),
                    ShapeMismatch);
  CHECK_THROWS_CODE(cpu::gated_residual(h, x, cond, Tensor::zeros({4}, DType::F32), nullptr), UnsupportedDtype);
}

SHOWO2_TEST(flow_euler_update_matches_unfused_steps) {
  cpu::ThreadPool pool(2);
  const int64_t n = 3 * 16 * 2 * 9 * 11 + 5;  // several 4096-element chunks and a tail
  const std::vector<float> xv = random_vector(static_cast<size_t>(n), 41, -3.0f, 3.0f);
  const std::vector<float> cv = random_vector(static_cast<size_t>(n), 42, -3.0f, 3.0f);
  const std::vector<float> uv = random_vector(static_cast<size_t>(n), 43, -3.0f, 3.0f);
  const float g = 5.0f, dt = 0.0625f * 1.37f;
  Tensor x = Tensor::from_f32({n}, xv);
  cpu::flow_euler_update(x, Tensor::from_f32({n}, cv), Tensor::from_f32({n}, uv), g, dt, &pool);
  std::vector<float> ref(xv.size());
  for (size_t i = 0; i < xv.size(); ++i) {
    const float diff = cv[i] - uv[i];
    const float guided = g * diff;
    const float v = uv[i] + guided;
    const float step = dt * v;
    ref[i] = xv[i] + step;
  }
  CHECK(x.to_f32_vector() == ref);

  // No guidance branch: x += dt * v_cond.
  Tensor x2 = Tensor::from_f32({n}, xv);
  cpu::flow_euler_update(x2, Tensor::from_f32({n}, cv), Tensor(), 0.0f, dt, &pool);
  for (size_t i = 0; i < xv.size(); ++i) {
    const float step = dt * cv[i];
    ref[i] = xv[i] + step;
  }
  CHECK(x2.to_f32_vector() == ref);

  Tensor bad = Tensor::zeros({n + 1}, DType::F32);
  CHECK_THROWS_CODE(cpu::flow_euler_update(bad, x, Tensor(), 0.0f, dt, nullptr), ShapeMismatch);
}

SHOWO2_TEST(cpu_backend_rejects_device_tensors) {
  // A storage that claims to be CUDA memory; its address is never dereferenced (that is the point of the test).
  static float fake_device_memory[16];
  int releases = 0;
  {
    Tensor on_device = Tensor::view_of(
        Storage::wrap_device(Device::Cuda, fake_device_memory, sizeof(fake_device_memory), [&](void*) { ++releases; }),
        DType::F32, {4, 4}, {4, 1}, 0);
    CHECK(on_device.device() == Device::Cuda);
    CHECK(on_device.slice(0, 1, 3).transpose(0, 1).device() == Device::Cuda);  // views keep the device
    CHECK(on_device.device_raw() == fake_device_memory);
    CHECK_THROWS_CODE(on_device.raw(), InvalidArgument);
    CHECK_THROWS_CODE(on_device.data<float>(), InvalidArgument);
    CHECK_THROWS_CODE(on_device.to_f32_vector(), InvalidArgument);
    CHECK_THROWS_CODE(on_device.to(DType::BF16), InvalidArgument);
    CHECK_THROWS_CODE(on_device.transpose(0, 1).contiguous(), InvalidArgument);
    CHECK(on_device.contiguous().device_raw() == on_device.device_raw());  // already contiguous: no copy, no access

    cpu::CpuBackend backend(1);
    Tensor host = Tensor::zeros({4, 4}, DType::F32);
    CHECK_THROWS_CODE(backend.add(host, on_device, host), InvalidArgument);
    CHECK_THROWS_CODE(backend.swiglu(on_device, host, host), InvalidArgument);
    CHECK_THROWS_CODE(backend.linear(host, on_device, Tensor(), host), InvalidArgument);
    CHECK_THROWS_CODE(backend.flow_euler_update(host, on_device, Tensor(), 1.0f, 1.0f), InvalidArgument);
    CHECK_EQ(releases, 0);
  }
  CHECK_EQ(releases, 1);  // the release callback runs once, when the last view is gone
}

SHOWO2_TEST(cpu_backend_memory_api_is_identity) {
  cpu::CpuBackend backend(1);
  const Tensor host = Tensor::from_f32({2, 2}, {1, 2, 3, 4});
  CHECK(backend.device() == Device::Cpu);
  CHECK(backend.upload_weight(host).raw() == host.raw());
  CHECK(backend.to_device(host).raw() == host.raw());
  CHECK(backend.to_host(host).raw() == host.raw());
  const Tensor e = backend.empty({3, 5}, DType::F32);
  CHECK(e.device() == Device::Cpu && e.shape() == (Shape{3, 5}) && e.is_contiguous());
  backend.synchronize();
}

SHOWO2_TEST_MAIN()
