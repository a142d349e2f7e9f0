// Image and video generation (spec §8.1, §8.5): the flow-matching ODE (flow_sampler.h) driven by the whole Show-o2
// model, from noise (t = 0) to a clean normalised VAE latent (t = 1) that the caller decodes with the VAE.
//
// One velocity evaluation at state x [B, z, T, h, w] and time t (spec §8.1):
//   vis = visual_tokens(x)                       [B, N_vis, hidden]   once, shared by the cond and uncond branches
//   E   = embed(ids); E[off] = TIME(t); E[off+1 .. off+N_vis] = vis[b]    per branch row (spec §4)
//   Hs  = Qwen2.5(E, omni mask with block [off, off+N_vis+1), positions 0..L-1), final-normed      (spec §2.1, §5)
//   out = FlowHead(Hs, c = time_embed(t), same mask, modulation inside the block only)  [L, p*p*z] (spec §6.2)
//   v   = unpatchify(out[off+1 .. off+N_vis])    channels-last reinterpretation, per frame (spec §6.2)
//   v   = v_u + g (v_c - v_u)                    CFG with the empty-prompt sequence (spec §7.2)
//   I2V: frame 0 of the state is the clean first_frame latent and its velocity is zeroed (spec §6.2, §14).
//
// Exact speed-ups (spec §12), on by default (reuse_prefix):
//   * the positions before the block ([bos] text [boi]) attend only causally to themselves, so their LLM and flow-head
//     K/V are computed once per generation and per distinct prefix (the uncond prefix once for all B samples); every
//     evaluation then runs only the N_vis + 1 block positions against the cached prefixes;
//   * the positions after the block ([eoi] [eos] pads) never influence it and are skipped; lm_head is never computed;
//   * all rows (B cond prompts and B uncond copies) go through the linear layers in one batch although their prefix
//     lengths differ (Qwen2Model::forward_rows, FlowHead::forward with one cache group per prefix).
// With reuse_prefix = false every evaluation runs the whole sequences (suffix and pads included) from scratch, the
// reference's computation, for tests and benchmarks. The two agree to float rounding (generation_test.cpp).
//
// Precision: weights as stored (the kernels widen BF16), activations and the ODE state F32. The reference demo runs
// the model in bf16 (x rounded to bf16 at the model input, CFG in bf16); this port keeps fp32 throughout.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "flow_sampler.h"
#include "kv_cache.h"
#include "showo2.h"
#include "tensor.h"

namespace showo2 {

// Positions [0, length) already run through the LLM and the flow head elsewhere: a conversation that decided to draw
// (mixed-modality generation, spec §8.4; understanding_session.h). Both caches have batch 1 and the same length, and
// hold the K/V of exactly the sequence's ids before its block (history images included, with their own TIME and
// modulation). Generation appends the block to them at every evaluation and cuts them back to `length` afterwards
// (and on any error), so they end unchanged; nothing else may use them meanwhile.
struct CachedPrefix {
  KvCache* llm = nullptr;
  KvCache* head = nullptr;
};

struct GenerationSequence {  // one branch's token sequence exactly as the reference builds it (spec §2.3)
  // [bos] text [boi or bov] [img_pad/vid_pad]*(N_vis+1) [eoi or eov] [eos] [PAD]*: the placeholder run must hold
  // exactly N_vis + 1 equal ids starting at block_offset (their embeddings are overwritten).
  std::vector<int32_t> ids;
  int64_t block_offset = 0;  // position of the TIME token; the block is [block_offset, block_offset + N_vis + 1)
  // Optional: the prefix [0, block_offset) is already computed (the ids before the block then only describe it).
  // Needs reuse_prefix; a cond sequence only.
  CachedPrefix cached_prefix;
  bool has_cached_prefix() const { return cached_prefix.llm != nullptr; }
};

struct GenerationRequest {
  std::vector<GenerationSequence> cond;  // B prompts (B >= 1)
  GenerationSequence uncond;             // the empty-prompt sequence, used when guidance_scale > 0 (shared by all B)
  Shape latent_shape;                    // [B, z, T, h, w]: T = 1 for images; h, w multiples of patch_size
  Tensor initial_latents;                // optional [B, z, T, h, w] F32: the starting noise; else gaussian_noise
  uint64_t seed = 0;                     //   (latent_shape, seed) (noise.h)
  // optional (image-to-video) [B, z, 1, h, w] F32 normalised clean latent: frame 0 of the state is set to it and its
  // velocity is zeroed at every evaluation (spec §6.2, §14); needs T >= 2.
  Tensor first_frame;
  FlowSamplerConfig sampler;
  bool reuse_prefix = true;  // false: the plain computation (whole sequence incl. suffix, every evaluation)
};

struct GenerationStep {            // passed to the callback after each ODE interval
  int64_t step;                    // 1-based interval index
  int64_t total_steps;             // N - 1
  int64_t model_evaluations;       // so far (CFG pair = 1 evaluation; Heun makes 2 per interval)
  double t;                        // time reached (tau_{step})
  const Tensor& latents;           // current state [B, z, T, h, w] F32
  const Tensor& predicted_clean;   // x + (1 - t_prev) * v at the interval's start: the cheap preview of the result
};
using GenerationStepCallback = std::function<void(const GenerationStep&)>;

// Runs the whole ODE from tau = 0 to 1 and returns the final latent [B, z, T, h, w] F32 (to be VAE-decoded by the
// caller). should_cancel is polled before every model evaluation and between the layers of every component
// (ERR_CANCELLED; everything allocated is freed, the model is unchanged). Every request error is reported before any
// model work: ERR_INVALID_ARGUMENT naming the field (sampler fields, latent_shape, a sequence's ids/block_offset
// that disagree with the latent's token count, a sequence longer than the LLM's or the head's context, an id outside
// the vocabulary, first_frame without a video), ERR_SHAPE_MISMATCH for initial_latents / first_frame of the wrong
// shape or dtype.
Tensor generate_latents(Showo2Model& model, const GenerationRequest& request,
                        const GenerationStepCallback& on_step = {}, const std::function<bool()>& should_cancel = {});

// One guided velocity evaluation at state x [B, z, T, h, w] and time t (what each Euler step uses, I2V zeroing
// included), exposed for tests and benchmarks. Validates like generate_latents; with reuse_prefix the prefixes are
// computed inside this call.
Tensor guided_velocity(Showo2Model& model, const GenerationRequest& request, const Tensor& x, double t,
                       const std::function<bool()>& should_cancel = {});

// The channels-last unpatchify of spec §6.2 for one row: `tokens` [T * gh * gw, p * p * z] (frame-major head outputs
// of one sample) -> `out` [z, T, h, w] with out[c, f, y, x] = tokens_of_frame_f_flat[(y * w + x) * z + c]. Exposed for
// tests; `out` may be a view (e.g. one sample of a [B, z, T, h, w] tensor).
void unpatchify(Backend& backend, const Tensor& tokens, Tensor& out);

}  // namespace showo2
