// Image and video generation; see generation.h for the pipeline and the prefix-caching argument.
//
// Reading order: request validation, unpatchify, the per-generation state (GenerationRun: prefix caches, one guided
// velocity evaluation in the reusing and in the plain form), then the two entry points.
#include "generation.h"

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "model_ops.h"
#include "error.h"
#include "flow_head.h"
#include "kv_cache.h"
#include "noise.h"

namespace showo2 {

namespace {

// ---- request validation ------------------------------------------------------------------------------------------

// The facts of a validated request.
struct Plan {
  int64_t B = 0, z = 0, T = 0, h = 0, w = 0;
  int64_t n_vis = 0;                              // visual tokens: T * (h/p) * (w/p)
  bool cfg = false;                               // guidance_scale > 0: rows B..2B-1 are the uncond branch
  std::vector<const GenerationSequence*> rows;    // cond 0..B-1, then (cfg) the uncond sequence B times
  int64_t sample(int64_t row) const { return row % B; }
  int64_t num_rows() const { return static_cast<int64_t>(rows.size()); }
};

std::string sequence_name(bool cond, size_t index) {
  return cond ? "cond[" + std::to_string(index) + "]" : std::string("uncond");
}

void check_sequence(const GenerationSequence& s, const std::string& name, int64_t n_vis, int64_t vocab,
                    int64_t context) {
  const int64_t L = static_cast<int64_t>(s.ids.size());
  const int64_t off = s.block_offset;
  if (off < 0)
    fail(ErrorCode::InvalidArgument, "generate: ", name, ".block_offset: expected >= 0 but got ", off);
  if (off + n_vis + 1 > L)
    fail(ErrorCode::InvalidArgument, "generate: ", name, ".ids: the block [", off, ", ", off + n_vis + 1,
         ") of N_vis + 1 = ", n_vis + 1, " positions (for the latent shape) does not fit in ", L, " ids");
  for (int64_t i = 0; i < L; ++i) {
    const int32_t id = s.ids[static_cast<size_t>(i)];
    if (id < 0 || id >= vocab)
      fail(ErrorCode::InvalidArgument, "generate: ", name, ".ids: id ", id, " at position ", i,
           " is outside the vocabulary [0, ", vocab, ")");
  }
  // The placeholder run from block_offset must be exactly N_vis + 1 long: a different count means the ids were built
  // for another latent shape (or block_offset points at the wrong position).
  const int32_t placeholder = s.ids[static_cast<size_t>(off)];
  int64_t run_end = off;
  while (run_end < L && s.ids[static_cast<size_t>(run_end)] == placeholder) ++run_end;
  const bool starts_run = off == 0 || s.ids[static_cast<size_t>(off - 1)] != placeholder;
  if (run_end - off != n_vis + 1 || !starts_run) {
    int64_t run_begin = off;
    while (run_begin > 0 && s.ids[static_cast<size_t>(run_begin - 1)] == placeholder) --run_begin;
    fail(ErrorCode::InvalidArgument, "generate: ", name, ".ids: expected N_vis + 1 = ", n_vis + 1,
         " placeholder ids starting at block_offset ", off, " (for the latent shape) but the run of id ", placeholder,
         " covers positions [", run_begin, ", ", run_end, ")");
  }
  if (L > context)
    fail(ErrorCode::InvalidArgument, "generate: ", name, ".ids: the sequence is ", L,
         " positions long, longer than the model's context of ", context, " positions");
}

Plan validate_request(const Showo2Model& model, const GenerationRequest& r) {
  const Showo2Config& config = model.config();
  r.sampler.validate();
  if (r.cond.empty()) fail(ErrorCode::InvalidArgument, "generate: cond: expected at least one prompt sequence");
  const Shape& s = r.latent_shape;
  if (s.size() != 5)
    fail(ErrorCode::InvalidArgument, "generate: latent_shape: expected [B, z, T, h, w] but got ", shape_to_string(s));
  Plan p;
  p.B = s[0], p.z = s[1], p.T = s[2], p.h = s[3], p.w = s[4];
  const int64_t patch = config.patch_size;
  if (p.B != static_cast<int64_t>(r.cond.size()))
    fail(ErrorCode::InvalidArgument, "generate: latent_shape: batch ", p.B, " differs from the ", r.cond.size(),
         " cond sequences");
  if (p.z != config.image_latent_dim)
    fail(ErrorCode::InvalidArgument, "generate: latent_shape: expected ", config.image_latent_dim,
         " latent channels but got ", p.z);
  if (p.T < 1) fail(ErrorCode::InvalidArgument, "generate: latent_shape: expected T >= 1 frames but got ", p.T);
  if (p.h <= 0 || p.w <= 0 || p.h % patch != 0 || p.w % patch != 0)
    fail(ErrorCode::InvalidArgument, "generate: latent_shape: latent height and width must be positive multiples of ",
         "the patch size ", patch, " but got ", p.h, "x", p.w);
  p.n_vis = p.T * (p.h / patch) * (p.w / patch);

  if (r.initial_latents.defined() &&
      (r.initial_latents.dtype() != DType::F32 || r.initial_latents.shape() != s))
    fail(ErrorCode::ShapeMismatch, "generate: initial_latents: expected ", shape_to_string(s), " F32 but got ",
         r.initial_latents.shape_string(), " ", dtype_name(r.initial_latents.dtype()));
  if (r.first_frame.defined()) {
    const Shape want = {p.B, p.z, 1, p.h, p.w};
    if (r.first_frame.dtype() != DType::F32 || r.first_frame.shape() != want)
      fail(ErrorCode::ShapeMismatch, "generate: first_frame: expected ", shape_to_string(want), " F32 but got ",
           r.first_frame.shape_string(), " ", dtype_name(r.first_frame.dtype()));
    if (p.T < 2)
      fail(ErrorCode::InvalidArgument, "generate: first_frame: image-to-video needs a video latent (T >= 2) but ",
           "latent_shape has T = ", p.T);
  }

  const int64_t vocab = config.llm.vocab_size;
  const int64_t context = std::min(config.llm.max_position_embeddings, config.diffusion_head.max_position_embeddings);
  for (size_t i = 0; i < r.cond.size(); ++i) {
    const GenerationSequence& c = r.cond[i];
    check_sequence(c, sequence_name(true, i), p.n_vis, vocab, context);
    if (!c.has_cached_prefix()) continue;
    const std::string name = sequence_name(true, i);
    const CachedPrefix& pre = c.cached_prefix;
    if (!r.reuse_prefix)
      fail(ErrorCode::InvalidArgument, "generate: ", name, ".cached_prefix: a computed prefix needs reuse_prefix");
    if (pre.head == nullptr || pre.llm->batch() != 1 || pre.head->batch() != 1)
      fail(ErrorCode::InvalidArgument, "generate: ", name, ".cached_prefix: expected an LLM and a flow-head cache of ",
           "batch 1");
    if (pre.llm->length() != c.block_offset || pre.head->length() != c.block_offset)
      fail(ErrorCode::InvalidArgument, "generate: ", name, ".cached_prefix: the caches hold ", pre.llm->length(),
           " (LLM) and ", pre.head->length(), " (flow head) positions but the block starts at ", c.block_offset);
  }
  p.cfg = r.sampler.guidance_scale > 0.0f;
  if (p.cfg) {
    check_sequence(r.uncond, sequence_name(false, 0), p.n_vis, vocab, context);
    if (r.uncond.has_cached_prefix())
      fail(ErrorCode::InvalidArgument, "generate: uncond.cached_prefix: only cond sequences may continue a computed prefix");
  }

  for (const GenerationSequence& c : r.cond) p.rows.push_back(&c);
  if (p.cfg)
    for (int64_t b = 0; b < p.B; ++b) p.rows.push_back(&r.uncond);
  return p;
}


}  // namespace

// ---- unpatchify --------------------------------------------------------------------------------------------------

void unpatchify(Backend& backend, const Tensor& tokens, Tensor& out) {
  SHOWO2_CHECK(out.dim() == 4 && tokens.dim() == 2, ShapeMismatch, "unpatchify: expected tokens [N, p*p*z] and out ",
               "[z, T, h, w] but got ", tokens.shape_string(), " and ", out.shape_string());
  const int64_t z = out.size(0), T = out.size(1), h = out.size(2), w = out.size(3);
  SHOWO2_CHECK(tokens.numel() == z * T * h * w && tokens.size(1) % z == 0, ShapeMismatch, "unpatchify: tokens ",
               tokens.shape_string(), " do not hold the ", z * T * h * w, " values of out ", out.shape_string());
  SHOWO2_CHECK(tokens.is_contiguous(), ShapeMismatch, "unpatchify: tokens must be contiguous");
  // The reference reshapes (N, h', w', p, p, z) -> (N, H*W, z) -> transpose -> (N, z, H, W): each frame's buffer of
  // h'*w'*p*p*z values IS a channels-last (H*W, z) raster (spec §6.2), read here as [T, H*W, z] -> [z, T, H*W].
  const Tensor src = tokens.reshape({T, h * w, z}).transpose(1, 2).transpose(0, 1);  // [z, T, h*w] (strided)
  SHOWO2_CHECK(out.stride(3) == 1 && out.stride(2) == w, ShapeMismatch,
               "unpatchify: out must have contiguous rows of width w");
  // out [z, T, h, w] as [z, T, h*w]: the (h, w) dims are contiguous in every view generation passes.
  Tensor dst = Tensor::view_of(out.storage(), DType::F32, {z, T, h * w}, {out.stride(0), out.stride(1), 1},
                               out.byte_offset());
  backend.copy(src, dst);
}

namespace {

// ---- one generation ------------------------------------------------------------------------------------------------

// The state of one generate_latents / guided_velocity call: the validated plan, the flow head, and (reuse_prefix) the
// cached prefixes of every row group.
class GenerationRun {
 public:
  GenerationRun(Showo2Model& model, const GenerationRequest& request, Plan plan,
                const std::function<bool()>& should_cancel)
      : model_(model),
        request_(request),
        plan_(std::move(plan)),
        backend_(model.backend()),
        head_(model.flow_head_weights(), model.backend()),
        should_cancel_(should_cancel) {
    if (request_.reuse_prefix) prepare_prefixes();
  }

  // The guided velocity v(x, t) [B, z, T, h, w] (spec §7.2) as its cond and uncond halves, with the I2V zeroing of
  // frame 0 (zero in both halves makes the combined v zero there too: 0 + g (0 - 0)). The combine itself happens in
  // the integrator's fused Euler step.
  GuidedVelocity velocity(const Tensor& x, double t) {
    const Plan& p = plan_;
    const Tensor vis = model_.visual_tokens(x, should_cancel_);  // [B, N_vis, hidden], shared by both branches
    const float tf = static_cast<float>(t);
    const Tensor time_token = model_.time_tokens({tf});  // [1, hidden]
    const Tensor c = model_.time_condition({tf});         // [1, head hidden] (adaLN conditioning, not projected)
    Tensor v_rows = new_f32(backend_, {p.num_rows(), p.z, p.T, p.h, p.w});  // [R, z, T, h, w]
    if (request_.reuse_prefix) block_rows(vis, time_token, c, v_rows);
    else full_rows(vis, time_token, c, v_rows);

    if (request_.first_frame.defined()) {  // I2V: frame 0 stays the clean conditioning latent (spec §14)
      Tensor frame0 = v_rows.slice(2, 0, 1);  // [R, z, 1, h, w]
      backend_.copy(backend_.to_device(Tensor::zeros(frame0.shape(), DType::F32)), frame0);
    }
    if (!p.cfg) return GuidedVelocity{v_rows, Tensor(), 0.0f};  // g = 0: no uncond row was computed
    return GuidedVelocity{v_rows.slice(0, 0, p.B), v_rows.slice(0, p.B, 2 * p.B),
                          request_.sampler.guidance_scale};  // v_u + g (v_c - v_u), combined by the integrator
  }

 private:
  // Rows sharing one prefix and one block offset; with reuse_prefix their caches hold the prefix (owned copies, or a
  // caller's CachedPrefix used in place).
  struct RowGroup {
    int64_t row_begin = 0, row_end = 0;
    int64_t prefix = 0;  // block_offset: cached positions
    KvCache* llm_cache = nullptr;
    KvCache* head_cache = nullptr;
    std::unique_ptr<KvCache> owned_llm, owned_head;
  };

  bool cancelled() const { return should_cancel_ && should_cancel_(); }

  // Writes TIME(t) and the sample's visual tokens into rows' embeddings at `block_start` (spec §4).
  void place_block(Tensor& embeds_row /*[L, hidden]*/, int64_t block_start, const Tensor& time_token,
                   const Tensor& vis, int64_t sample) {
    Tensor t_dst = embeds_row.slice(0, block_start, block_start + 1);
    backend_.copy(time_token, t_dst);
    Tensor v_dst = embeds_row.slice(0, block_start + 1, block_start + 1 + plan_.n_vis);
    backend_.copy(vis.select(0, sample), v_dst);
  }

  // The prefix [0, block_offset) of each distinct prefix runs once through the LLM and the head (causal, no block, so
  // identity modulation and no dependence on x or t); every row group then gets its own copy, with room for the block.
  void prepare_prefixes() {
    const Plan& p = plan_;
    struct Prefix {
      std::unique_ptr<KvCache> llm, head;
    };
    std::map<std::vector<int32_t>, Prefix> computed;
    for (int64_t r = 0; r < p.num_rows();) {
      const GenerationSequence& s = *p.rows[static_cast<size_t>(r)];
      if (s.has_cached_prefix()) {  // a conversation's K/V (spec §8.4): used in place, one row
        RowGroup g;
        g.row_begin = r;
        g.row_end = r + 1;
        g.prefix = s.block_offset;
        g.llm_cache = s.cached_prefix.llm;
        g.head_cache = s.cached_prefix.head;
        groups_.push_back(std::move(g));
        r += 1;
        continue;
      }
      const std::vector<int32_t> prefix(s.ids.begin(), s.ids.begin() + s.block_offset);
      int64_t end = r + 1;
      while (end < p.num_rows() && !p.rows[static_cast<size_t>(end)]->has_cached_prefix() &&
             p.rows[static_cast<size_t>(end)]->block_offset == s.block_offset &&
             std::equal(prefix.begin(), prefix.end(), p.rows[static_cast<size_t>(end)]->ids.begin()))
        ++end;
      auto it = computed.find(prefix);
      if (it == computed.end()) {
        Prefix pre;
        pre.llm = std::make_unique<Qwen2KvCache>(model_.config().llm, 1);
        pre.head = std::make_unique<KvCache>(head_.make_cache(1));
        if (!prefix.empty()) {
          const int64_t P = static_cast<int64_t>(prefix.size());
          Tensor ids = Tensor::empty({1, P}, DType::I32);
          std::copy(prefix.begin(), prefix.end(), ids.mutable_data<int32_t>());
          Tensor embeds = model_.llm().embed_tokens(ids);                                        // [1, P, hidden]
          Tensor states = model_.llm().forward(embeds, {}, *pre.llm, should_cancel_);            // [1, P, hidden]
          head_.forward(states, Tensor(), {}, {CacheRows{0, 1, pre.head.get(), {}}}, should_cancel_);  // K/V only
        }
        it = computed.emplace(prefix, std::move(pre)).first;
      }
      RowGroup g;
      g.row_begin = r;
      g.row_end = end;
      g.prefix = s.block_offset;
      g.owned_llm = std::make_unique<KvCache>(it->second.llm->replicate(0, end - r, p.n_vis + 1, backend_));
      g.owned_head = std::make_unique<KvCache>(it->second.head->replicate(0, end - r, p.n_vis + 1, backend_));
      g.llm_cache = g.owned_llm.get();
      g.head_cache = g.owned_head.get();
      groups_.push_back(std::move(g));
      r = end;
    }
  }

  // reuse_prefix: only the N_vis + 1 block positions of every row, against the cached prefixes. The caches are cut
  // back to the prefix afterwards (and on any error), so the next evaluation starts from the same state.
  void block_rows(const Tensor& vis, const Tensor& time_token, const Tensor& c, Tensor& v_rows) {
    const Plan& p = plan_;
    const int64_t hidden = model_.config().hidden_size, Lb = p.n_vis + 1, R = p.num_rows();
    Tensor embeds = new_f32(backend_, {R, Lb, hidden});  // [R, N_vis+1, hidden]: TIME(t), then the sample's visual tokens
    for (int64_t r = 0; r < R; ++r) {
      Tensor row = embeds.select(0, r);
      place_block(row, 0, time_token, vis, p.sample(r));
    }
    std::vector<CacheRows> llm_groups, head_groups;
    for (RowGroup& g : groups_) {
      const std::vector<std::vector<BidirectionalBlock>> blocks = {{BidirectionalBlock{g.prefix, Lb}}};
      llm_groups.push_back(CacheRows{g.row_begin, g.row_end, g.llm_cache, blocks});
      head_groups.push_back(CacheRows{g.row_begin, g.row_end, g.head_cache, blocks});
    }
    struct Rewind {  // the block never stays in a cache
      std::vector<RowGroup>& groups;
      ~Rewind() {
        for (RowGroup& g : groups) {
          if (g.llm_cache->length() > g.prefix) g.llm_cache->truncate(g.prefix);
          if (g.head_cache->length() > g.prefix) g.head_cache->truncate(g.prefix);
        }
      }
    } rewind{groups_};
    Tensor states = model_.llm().forward_rows(embeds, llm_groups, should_cancel_);  // [R, N_vis+1, hidden]
    const std::vector<ModulatedSpan> spans(static_cast<size_t>(R), ModulatedSpan{0, Lb});
    Tensor out = head_.forward(states, c, spans, head_groups, should_cancel_);  // [R, N_vis+1, p*p*z]
    for (int64_t r = 0; r < R; ++r) {
      Tensor dst = v_rows.select(0, r);  // [z, T, h, w]
      unpatchify(backend_, out.select(0, r).slice(0, 1, Lb), dst);  // drop the TIME position
    }
  }

  // reuse_prefix = false: every row's whole sequence (prefix, block, suffix, pads) from an empty cache, as the
  // reference does. Consecutive rows of equal length run as one batch.
  void full_rows(const Tensor& vis, const Tensor& time_token, const Tensor& c, Tensor& v_rows) {
    const Plan& p = plan_;
    const int64_t Lb = p.n_vis + 1;
    for (int64_t r0 = 0; r0 < p.num_rows();) {
      const int64_t L = static_cast<int64_t>(p.rows[static_cast<size_t>(r0)]->ids.size());
      int64_t r1 = r0 + 1;
      while (r1 < p.num_rows() && static_cast<int64_t>(p.rows[static_cast<size_t>(r1)]->ids.size()) == L) ++r1;
      const int64_t n = r1 - r0;
      Tensor ids = Tensor::empty({n, L}, DType::I32);
      std::vector<std::vector<BidirectionalBlock>> blocks;
      std::vector<ModulatedSpan> spans;
      for (int64_t r = r0; r < r1; ++r) {
        const GenerationSequence& s = *p.rows[static_cast<size_t>(r)];
        std::copy(s.ids.begin(), s.ids.end(), ids.mutable_data<int32_t>() + (r - r0) * L);
        blocks.push_back({BidirectionalBlock{s.block_offset, Lb}});
        spans.push_back(ModulatedSpan{s.block_offset, s.block_offset + Lb});
      }
      Tensor embeds = model_.llm().embed_tokens(ids);  // [n, L, hidden]
      for (int64_t r = r0; r < r1; ++r) {
        Tensor row = embeds.select(0, r - r0);
        place_block(row, p.rows[static_cast<size_t>(r)]->block_offset, time_token, vis, p.sample(r));
      }
      Qwen2KvCache llm_cache(model_.config().llm, n);
      KvCache head_cache = head_.make_cache(n);
      Tensor states = model_.llm().forward(embeds, blocks, llm_cache, should_cancel_);                 // [n, L, hidden]
      Tensor out = head_.forward(states, c, spans, {CacheRows{0, n, &head_cache, blocks}}, should_cancel_);  // [n, L, ppz]
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t off = p.rows[static_cast<size_t>(r)]->block_offset;
        Tensor dst = v_rows.select(0, r);
        unpatchify(backend_, out.select(0, r - r0).slice(0, off + 1, off + Lb), dst);
      }
      r0 = r1;
    }
  }

  Showo2Model& model_;
  const GenerationRequest& request_;
  Plan plan_;
  Backend& backend_;
  FlowHead head_;
  std::function<bool()> should_cancel_;
  std::vector<RowGroup> groups_;  // reuse_prefix only
};

}  // namespace

// ---- entry points --------------------------------------------------------------------------------------------------

Tensor generate_latents(Showo2Model& model, const GenerationRequest& request, const GenerationStepCallback& on_step,
                        const std::function<bool()>& should_cancel) {
  Plan plan = validate_request(model, request);
  Backend& backend = model.backend();
  if (should_cancel && should_cancel()) fail(ErrorCode::Cancelled, "generate: cancelled before it started");

  // x0: the given noise or seeded Philox noise (noise.h, drawn on the host), moved to the backend, then the clean first
  // frame for I2V.
  Tensor x0 = backend.to_device(request.initial_latents.defined()
                                    ? request.initial_latents.to(DType::F32)  // a copy: never the caller's tensor
                                    : gaussian_noise(request.latent_shape, request.seed));
  if (request.first_frame.defined()) {
    Tensor frame0 = x0.slice(2, 0, 1);  // [B, z, 1, h, w]
    backend.copy(backend.to_device(request.first_frame), frame0);
  }

  GenerationRun run(model, request, std::move(plan), should_cancel);
  std::function<void(const FlowOdeStep&)> report;
  if (on_step) {
    report = [&](const FlowOdeStep& s) {
      // predicted clean latent x1 = x_t + (1 - t) v: the straight-line extrapolation of the flow (spec §7.1), one
      // fused Euler step of length 1 - t from x_prev.
      Tensor preview = new_f32(backend, s.x_prev.shape());
      backend.copy(s.x_prev, preview);
      backend.flow_euler_update(preview, s.v_first.cond, s.v_first.uncond, s.v_first.guidance,
                                static_cast<float>(1.0 - s.t_prev));
      on_step(GenerationStep{s.step, s.total_steps, s.model_evaluations, s.t, s.x, preview});
    };
  }
  const GuidedVelocityFn velocity = [&run](const Tensor& x, double t) { return run.velocity(x, t); };
  return backend.to_host(flow_ode_solve(backend, request.sampler, x0, velocity, report, should_cancel));
}

Tensor guided_velocity(Showo2Model& model, const GenerationRequest& request, const Tensor& x, double t,
                       const std::function<bool()>& should_cancel) {
  Plan plan = validate_request(model, request);
  if (!x.defined() || x.dtype() != DType::F32 || x.shape() != request.latent_shape)
    fail(ErrorCode::ShapeMismatch, "guided_velocity: x: expected ", shape_to_string(request.latent_shape),
         " F32 but got ", x.defined() ? x.shape_string() : std::string("undefined"));
  if (!(t >= 0.0 && t <= 1.0))
    fail(ErrorCode::InvalidArgument, "guided_velocity: t: expected a time in [0, 1] but got ", t);
  GenerationRun run(model, request, std::move(plan), should_cancel);
  Backend& backend = model.backend();
  return backend.to_host(combined_velocity(backend, run.velocity(backend.to_device(x.contiguous()), t)));
}

}  // namespace showo2
