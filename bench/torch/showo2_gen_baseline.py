#!/usr/bin/env python3
"""PyTorch baseline for the C++ generation bench: the reference's PLAIN generation computation, timed on CPU.

    python3 bench/torch/showo2_gen_baseline.py [--threads N] [--json] [--case SUBSTRING] [--iters 1]

Runs tools/reference/showo2.py section 9 as it is: every evaluation runs the FULL sequences (bos, prompt, block,
suffix and pads) through the LLM and the flow head under the omni mask, cond and uncond batched (B = 2: one prompt
with CFG), no prefix caching. Only the "_full" rows exist here; the C++ bench's "_reuse" rows (prefix caching,
suffix dropped, §12) are compared against these by the lead. Cases, under torch.inference_mode:
  gen_step_tiny_full      the committed tiny model (test/fixtures/showo2/tiny-model, float32, as the fixtures),
                          64x64 (latent 16x8x8, 16 visual tokens), one guided Euler step at tau = 0:
                          x + dt * (v_u + 5 (v_c - v_u)); warm-up 3, median of >= 10 calls and >= 1 s
                          (bench/torch/common.py median_ms)
  gen_generate_tiny_full  the same, the whole N = 5 generation (4 guided evaluations, shift 3), latent only
  gen_step_1p5b_full      the published 1.5B shapes (Showo2Config() defaults: Qwen2.5-1.5B LLM, 28 layers of 1536,
                          vocab 151669 tied; 26 SigLIP layers of 1152; the 10-layer 2048 flow head), random weights in
                          bf16 and bf16 compute (the demo's precision: norms, softmax and modulate in fp32, ODE state
                          fp32), a 256x256 image (latent 16x32x32, 16x16 = 256 visual tokens; the 27x27 position table
                          resized bicubically), one guided Euler step. --iters calls (default 1, no warm-up: a cold
                          single call), median. Weights ~5.7 GB.
Shared by all cases (the C++ twin must use the same to be comparable): prompt ids (i * 7919 + 13) % 151669 for
i < 12 (12 tokens), max_text_len 16, so max_seq_len = N_vis + 1 + 4 + 16 = 37 (tiny) and 277 (1.5B, 4 trailing
pads); noise torch.randn(seed 0) of the latent shape; guidance 5.0; shift 3.0.

JSON lines {"case", "ms", "gflops"}: gflops = the plain computation's dense FLOP count / time. The count (per
evaluation, times the batch of 2) takes 2 FLOPs per multiply-add of every Linear/Conv over every token, plus the
attention's QK^T and PV over the full L x L (the plain reference computes masked entries too), for the semantic
layers, fusion, LLM (without lm_head, which generation does not call), diff_proj, the head blocks, their adaLN
linears and the final layer; norms, softmax, RoPE and the VAE are not counted (the VAE is not run).

Measured on the dev container (AMD EPYC without AVX-512, 2 threads, torch 2.13 CPU): gen_step_tiny_full 5.1 ms,
gen_generate_tiny_full 20.3 ms, gen_step_1p5b_full 141 s (18.5 GFLOP/s; 2.6 TFLOP per guided step; peak RSS 6.3 GB;
~3 minutes in all with the 22 s model build). bf16 matmuls run at ~20 GFLOP/s on that CPU against ~160 GFLOP/s in
fp32, but fp32 weights (~11 GB) would exceed this bench's 10 GB budget.
"""
import argparse
import gzip
import io
import os
import statistics
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tools", "reference"))
from common import median_ms, report  # noqa: E402  (bench/torch/common.py)
import showo2 as ref  # noqa: E402  (tools/reference/showo2.py)

TINY_MODEL = os.path.join(ROOT, "test", "fixtures", "showo2", "tiny-model")
PROMPT_TOKENS = 12
MAX_TEXT_LEN = 16
GUIDANCE = 5.0
SHIFT = 3.0
STEPS = 5


def prompt_ids(vocab):
    return [(i * 7919 + 13) % vocab for i in range(PROMPT_TOKENS)]


def tiny_model():
    config = ref.Showo2Config.from_pretrained(TINY_MODEL)
    with open(os.path.join(TINY_MODEL, "pytorch_model.bin.gz"), "rb") as f:
        state = torch.load(io.BytesIO(gzip.decompress(f.read())), weights_only=True)
    model = ref.Showo2Qwen2_5(config).float().eval()
    ref.load_checkpoint(model, {k: v.float() for k, v in state.items()})
    return model


@torch.no_grad()
def random_bf16_model(config, seed=0):
    """The full-size model with random bf16 weights, built on the meta device and filled in place (no fp32 copy):
    Linear/Conv ~ N(0, 1/fan_in), biases ~ N(0, 0.02^2), norms 1, embeddings ~ N(0, 0.02^2)."""
    with torch.device("meta"):
        model = ref.Showo2Qwen2_5(config)
    model = model.to_empty(device="cpu").to(torch.bfloat16).eval()
    if config.llm_config.tie_word_embeddings:
        model.showo.lm_head.weight = model.showo.model.embed_tokens.weight
    gen = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        if name.endswith(("norm.weight", "layernorm.weight", "norm_final.weight", "layer_norm1.weight",
                          "layer_norm2.weight", "fusion_proj.0.weight")):
            p.fill_(1.0)
        elif name.endswith("bias"):
            p.normal_(0.0, 0.02, generator=gen)
        elif name in ("showo.model.embed_tokens.weight", "position_embedding.weight"):
            p.normal_(0.0, 0.02, generator=gen)
        else:
            p.normal_(0.0, p[0].numel() ** -0.5, generator=gen)
    return model


def evaluation_flops(config, seq_len, num_visual, batch):
    """Dense FLOPs of one model evaluation of `batch` sequences (see the module docstring)."""
    llm, und, head = config.llm_config, config.und_trans_config, config.diffusion_head_config
    h, C, D = config.hidden_size, und.hidden_size, head.hidden_size
    L, n = seq_len, num_visual
    patch = config.patch_size ** 2 * config.image_latent_dim
    q, kv = llm.num_attention_heads * llm.head_dim, llm.num_key_value_heads * llm.head_dim
    hq, hkv = head.num_attention_heads * head.head_dim, head.num_key_value_heads * head.head_dim
    visual = n * (patch * (C + h)                                                          # patch embeds
                  + und.num_hidden_layers * (4 * C * C + 2 * C * und.intermediate_size)    # SigLIP linears
                  + (C + h) * h + h * h)                                                   # fusion
    visual += und.num_hidden_layers * 2 * n * n * C                                        # SigLIP attention
    lm = L * llm.num_hidden_layers * (h * (q + 2 * kv) + q * h + 3 * h * llm.intermediate_size) \
        + llm.num_hidden_layers * 2 * L * L * q
    projections = L * (h * D + D * D) + (D * D + 256 * D + D * h)                          # diff_proj, time
    flow = L * config.num_diffusion_layers * (D * (hq + 2 * hkv) + hq * D + 3 * D * head.intermediate_size) \
        + config.num_diffusion_layers * (2 * L * L * hq + 6 * D * D) + L * D * patch + 2 * D * D
    return 2 * batch * (visual + lm + projections + flow)


def make_case(model, pixels, steps):
    """(fn, flops): one guided Euler step (steps = 1) or the whole `steps`-point generation, one prompt with CFG."""
    config = model.config
    latent_hw = pixels // 8
    num_visual = (latent_hw // config.patch_size) ** 2
    max_seq_len = num_visual + 1 + 4 + MAX_TEXT_LEN
    cond = [ref.gen_sequence_from_ids(prompt_ids(config.llm_vocab_size), num_visual, max_seq_len)]
    uncond = [ref.gen_sequence_from_ids([], num_visual, max_seq_len)]
    noise = torch.randn(1, config.image_latent_dim, latent_hw, latent_hw, generator=torch.Generator().manual_seed(0))
    per_eval = evaluation_flops(config, max_seq_len, num_visual, batch=2)
    if steps == 1:
        grid = ref.time_grid(STEPS, SHIFT, torch.float32)
        x = noise.unsqueeze(2)                                                   # [1, 16, 1, h, w], fp32 state

        def step():
            v, _ = ref.guided_velocity(model, cond, uncond, x, grid[0], GUIDANCE)
            return x + (grid[1] - grid[0]) * v
        return step, per_eval
    return (lambda: ref.generate_latent(model, cond, uncond, noise, GUIDANCE, steps, shift=SHIFT)["latent"],
            per_eval * (steps - 1))


def timed_calls(fn, iters):
    """--iters calls with no warm-up (the 1.5B case: one cold call by default), median ms."""
    times = []
    with torch.inference_mode():
        for _ in range(iters):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads (default: all)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per case")
    parser.add_argument("--case", default="", help="run only cases whose name contains this")
    parser.add_argument("--iters", type=int, default=1, help="timed calls of the 1.5B case (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    if args.case in "gen_step_tiny_full" or args.case in "gen_generate_tiny_full":
        model = tiny_model()
        for name, steps in (("gen_step_tiny_full", 1), ("gen_generate_tiny_full", STEPS)):
            if args.case in name:
                fn, flops = make_case(model, 64, steps)
                ms = median_ms(fn)
                report(args.json, name, ms, flops / (ms * 1e6))
    if args.case in "gen_step_1p5b_full":
        t0 = time.perf_counter()
        model = random_bf16_model(ref.Showo2Config())
        if not args.json:
            print(f"# 1.5B model built in {time.perf_counter() - t0:.1f} s", flush=True)
        fn, flops = make_case(model, 256, 1)
        ms = timed_calls(fn, max(1, args.iters))
        report(args.json, "gen_step_1p5b_full", ms, flops / (ms * 1e6))


if __name__ == "__main__":
    main()
