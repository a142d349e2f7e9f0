#!/usr/bin/env python3
"""Trains the bundled demo model (issue 10) from scratch on procedural scenes (tools/demo/scenes.py).

    python3 tools/demo/train.py                       the full run (writes models/demo/, logs to stdout)
    python3 tools/demo/train.py --smoke --out DIR     a few minutes, same code path (for checking the pipeline)
    python3 tools/demo/train.py --probe               time one step of each stage at the configured sizes

One command, seeded (--seed), CPU, in these stages. --threads (torch.set_num_threads) defaults to 1: on the shared
2-core machine a 2-thread run was up to 25x slower per step than a 1-thread run whenever other processes kept the
cores busy (OpenMP threads waiting at barriers for a descheduled partner). On an idle machine 2 threads are 1.6x
faster, and the committed run used them (--threads 2).
The stages:
  0. tokenizer: a byte-level BPE (Python `tokenizers`) trained on captions, questions, answers and the chat
     template text; Show-o2's role tokens are its first ids. -> tokenizer.json
  1. VAE: a small Wan-style VAE (tools/reference/wan_vae.py, same key layout as Wan2.1_VAE.pth; --vae-stride 4
     drops its last stage, so a 64x64 scene is a 16x16 latent instead of 8x8) trained as a deterministic
     autoencoder on 64x64 scenes: L1 + MSE reconstruction on the posterior mean, plus a small L2 penalty on the raw
     latent (in place of the KL term: the latent is then normalised by the per-channel mean/std measured on training scenes, written as vae_config.latents_mean/std, so the flow model sees
     ~unit-variance latents as with Wan2.1). The decoder also sees the latent with a little Gaussian noise, so that it
     stays smooth around the latents the flow model will produce. Images are single frames, so the network is run
     through its exact single-frame 2-D form (causal 3x3x3 convs reduce to their last kernel slice, spec §3.1);
     the check in stage 1 asserts this equals the reference's chunked 3-D path. -> vae.safetensors
  2. Show-o2 (tools/reference/showo2.py, Showo2Qwen2_5 unchanged) with the VAE frozen, generation and understanding
     trained jointly in every batch:
       generation: the §2.3 sequence [<|im_start|>] caption [<|vision_start|>] TIME + visual [<|vision_end|>]
         [<|im_end|>] (the trailing [PAD]s of the SDK's sequence cannot influence the block, §12, and are left
         out), 10% of captions replaced by "" (CFG), flow matching exactly as §7.1: x_t = t x1 + (1 - t) x0,
         target x1 - x0, t = sigmoid(N(0,1)) shifted with mu(seq_len = tokens + 1), squared error over the visual
         outputs read through the reference's unpatchify (the channels-last reinterpretation of §6.2), with the
         latent pixels an object covers weighted 1 + --object-loss-weight (mean-normalised);
       understanding: the SDK's default "demo" layout (§2.3, §5.3: block = visual + <|vision_end|>, TIME(1.0)
         causal), clean posterior-mean latents, next-token loss on the answer and its closing <|im_end|>.
     Loss = L_flow + L_ntp (stage-2 coefficients of §7.1). AdamW, warm-up then cosine decay. -> model.safetensors
     (bf16, the reference's state-dict names, lm_head left out because it is tied to embed_tokens)

Everything lands in --out: config.json, tokenizer.json, model.safetensors, vae.safetensors (and a summary and a
PyTorch-side sample sheet in --work). --reuse-vae skips stage 1 and loads --out's VAE; --init starts stage 2 from
a model.safetensors (a continuation; the tokenizer, VAE and scene bank are rebuilt identically from --seed).

To reproduce the committed weights (about 16 + 97 minutes on the idle 2-core machine; the defaults are their
recipe: patch 1, answer-balanced next-token loss, object weight 4, fused attention, 9000 steps of 32 + 20):
    python3 tools/demo/train.py --threads 2
They were produced in two runs (logs in tools/demo/): train-vae.log (stages 0-1; its stage 2 was stopped early)
and train.log (--reuse-vae: stage 2 with these defaults). Stage 1 and stage 2 draw from separate seeded streams, so
the one command's stages equal those runs up to float rounding (two threads). The weights before them (patch 2,
plain flow loss, token-weighted next-token loss, 7000 + 1200 steps) are logged in previous-train*.log.

Options for the experiments in models/demo/README.md ("What was tried"): --vae-stride 4 (16x16 latents),
--patch-size 2 (the published checkpoints' patch; the unpatchify of spec §6.2 then sends token k's outputs to 4
raster-consecutive latent pixels, not the 2x2 its input came from), --ntp-weighting token, --object-loss-weight 0
(plain MSE), --low-t-fraction F (that share of generation samples at t ~ U(0, --low-t-max), where only the caption
says what the image becomes), --no-fused-attention (the reference's own attention instead of PyTorch's fused CPU
kernel: the same function up to float rounding, twice the step time at 256 tokens).
"""
import argparse
import json
import math
import os
import random
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools", "reference"))
sys.path.insert(0, HERE)

import scenes  # noqa: E402
import showo2 as ref  # noqa: E402
import wan_vae  # noqa: E402

def fused_attention(query_states, key_states, value_states, attention_mask):
    """The reference's attention (softmax(q k^T / sqrt(d) + mask) v with GQA) through PyTorch's fused CPU kernel: the
    same function, about half the step time of the reference's explicit matmul-softmax-matmul at 256 visual tokens.
    Used for training only; fixtures keep the reference's own."""
    return F.scaled_dot_product_attention(query_states, key_states, value_states, attn_mask=attention_mask,
                                          enable_gqa=query_states.shape[1] != key_states.shape[1])


ROLE_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
               "<|video_pad|>", "[PAD]", "<image>", "<|vid_start|>", "<|vid_end|>"]
SYSTEM_PROMPT = "You are a helpful assistant."

# ---------------------------------------------------------------------------------------------------------------
# Sizes
# ---------------------------------------------------------------------------------------------------------------

def vae_config_for(stride):
    """The demo VAE's architecture: Wan2.1's layout at dim 16 with one res block per stage; the spatial stride is
    2^(stages - 1), so stride 8 is Wan2.1's [1, 2, 4, 4] and stride 4 drops the last stage (spec §3.1)."""
    stages = {8: ([1, 2, 4, 4], [False, True, True]), 4: ([1, 2, 4], [False, True])}[stride]
    return dict(dim=16, z_dim=16, dim_mult=stages[0], num_res_blocks=1, attn_scales=[], temperal_downsample=stages[1])


def model_config(vocab_size, vae_config, patch_size):
    stride = 2 ** (len(vae_config["dim_mult"]) - 1)
    grid = scenes.RESOLUTION // (stride * patch_size)  # e.g. 64 px, stride 4, patch 1 -> 16x16 visual tokens
    return {
        "_class_name": "Showo2Qwen2_5",
        "add_qk_norm": True,
        "add_time_embeds": True,
        "clip_latent_dim": 64,
        "clip_pretrained_model_path": "google/siglip-so400m-patch14-384",
        "hidden_size": 128,
        "image_latent_dim": 16,
        "image_latent_height": grid,
        "image_latent_width": grid,
        "llm_model_path": "Qwen/Qwen2.5-1.5B-Instruct",
        "llm_vocab_size": vocab_size,
        "load_from_showo": True,
        "num_diffusion_layers": 3,
        "patch_size": patch_size,
        "video_latent_height": grid,
        "video_latent_width": grid,
        "llm_config": {"vocab_size": vocab_size, "hidden_size": 128, "intermediate_size": 256,
                       "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 32,
                       "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "max_position_embeddings": 4096,
                       "tie_word_embeddings": True, "hidden_act": "silu"},
        "und_trans_config": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                             "num_attention_heads": 4, "layer_norm_eps": 1e-6, "hidden_act": "gelu_pytorch_tanh"},
        "diffusion_head_config": {"hidden_size": 96, "intermediate_size": 256, "num_attention_heads": 4,
                                  "num_key_value_heads": 2, "head_dim": 24, "rms_norm_eps": 1e-5,
                                  "rope_theta": 500000.0,
                                  "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                                                   "high_freq_factor": 4.0,
                                                   "original_max_position_embeddings": 8192},
                                  "max_position_embeddings": 4096, "frequency_embedding_size": 256},
        "vae_config": vae_config,
    }


class Log:
    def __init__(self):
        self.start = time.time()

    def __call__(self, *parts):
        print(f"[{time.time() - self.start:7.1f}s]", *parts, flush=True)


log = Log()

# ---------------------------------------------------------------------------------------------------------------
# Stage 0: tokenizer
# ---------------------------------------------------------------------------------------------------------------


def train_tokenizer(vocab_size, seed):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=ROLE_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(scenes.tokenizer_corpus(seed=seed), trainer)
    for text in ["system\nYou are a helpful assistant.<|im_end|>", "\n<|im_start|>assistant\n", "héllo, wörld ✓ 42\t\n"]:
        assert tokenizer.decode(tokenizer.encode(text).ids, skip_special_tokens=False) == text, text
    return tokenizer


class Text:
    """Token ids of the pieces the SDK builds (lib/prompt.ts), with this tokenizer."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        tid = tokenizer.token_to_id
        self.bos, self.eos, self.boi, self.eoi = tid("<|im_start|>"), tid("<|im_end|>"), tid("<|vision_start|>"), \
            tid("<|vision_end|>")
        self.img_pad, self.pad = tid("<|image_pad|>"), tid("[PAD]")
        self.system = [self.bos] + self.tok(f"system\n{SYSTEM_PROMPT}<|im_end|>") + self.tok("\n<|im_start|>user\n")
        self.role_b = self.tok("\n<|im_start|>assistant\n")
        self._cache = {}

    def tok(self, text):
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def cached(self, text):
        ids = self._cache.get(text)
        if ids is None:
            ids = self._cache[text] = self.tok(text) if text else []
        return ids

    def generation(self, caption, num_visual):
        """[bos] text [boi] [pad]*(N+1) [eoi] [eos]; block (len(text)+2, N+1) (§2.3)."""
        text = self.cached(caption)
        ids = [self.bos] + text + [self.boi] + [self.img_pad] * (num_visual + 1) + [self.eoi, self.eos]
        return ids, (len(text) + 2, num_visual + 1)

    def understanding(self, question, answer, num_visual):
        """Demo layout: system, user, [boi] TIME vis [eoi] question role_b | answer <|im_end|>.
        Returns ids, time position, block, and the first position whose NEXT token is supervised."""
        prefix = self.system
        time_pos = len(prefix) + 1
        ids = prefix + [self.boi] + [self.img_pad] * (num_visual + 1) + [self.eoi] + self.cached(question) + \
            self.role_b
        first_label = len(ids)
        ids = ids + self.cached(answer) + [self.eos]
        return ids, time_pos, (time_pos + 1, num_visual + 1), first_label


# ---------------------------------------------------------------------------------------------------------------
# Stage 1: VAE
# ---------------------------------------------------------------------------------------------------------------

def conv_last_slice(conv, x):
    """A causal 3-D conv on one frame = 2-D conv with the last temporal kernel slice (spec §3.1)."""
    return F.conv2d(x, conv.weight[:, :, -1], conv.bias, padding=(conv.spatial_pad[2], conv.spatial_pad[0]))


def norm2d(norm, x):
    return F.normalize(x, dim=1, eps=1e-12) * norm.scale * norm.gamma.reshape(-1, 1, 1)


def layer2d(layer, x):
    if isinstance(layer, wan_vae.WanResidualBlock):
        residual = x if isinstance(layer.shortcut, nn.Identity) else conv_last_slice(layer.shortcut, x)
        h = conv_last_slice(layer.residual[2], F.silu(norm2d(layer.residual[0], x)))
        h = conv_last_slice(layer.residual[6], F.silu(norm2d(layer.residual[3], h)))
        return h + residual
    if isinstance(layer, wan_vae.WanAttentionBlock):
        return layer(x.unsqueeze(2)).squeeze(2)
    if isinstance(layer, wan_vae.WanResample):
        return layer.resample(x)
    raise TypeError(type(layer))


def vae_encode_raw(vae, image):
    """[B,3,H,W] in [-1,1] -> raw posterior mean [B,16,H/s,W/s] (trainable single-frame path)."""
    enc = vae.encoder
    x = conv_last_slice(enc.conv1, image)
    for layer in list(enc.downsamples) + list(enc.middle):
        x = layer2d(layer, x)
    x = conv_last_slice(enc.head[2], F.silu(norm2d(enc.head[0], x)))
    return conv_last_slice(vae.conv1, x)[:, :vae.config.z_dim]


def vae_decode_raw(vae, mu):
    """raw latent [B,16,h,w] -> pixels [B,3,sh,sw] (not clamped)."""
    dec = vae.decoder
    x = conv_last_slice(dec.conv1, conv_last_slice(vae.conv2, mu))
    for layer in list(dec.middle) + list(dec.upsamples):
        x = layer2d(layer, x)
    return conv_last_slice(dec.head[2], F.silu(norm2d(dec.head[0], x)))


def to_tensor(images):
    """PIL images -> [B,3,H,W] in [-1,1] (ToTensor + Normalize(0.5, 0.5), §3.1)."""
    import numpy as np
    arr = np.stack([np.asarray(im, dtype=np.float32) for im in images])  # [B,H,W,3]
    return torch.from_numpy(arr).permute(0, 3, 1, 2) / 127.5 - 1.0


def render_batch(rng, n):
    batch = [scenes.sample_scene(rng) for _ in range(n)]
    return batch, to_tensor([scenes.render(s) for s in batch])


def psnr_uint8(pixels, target):
    """PSNR in dB of the uint8 images (as the SDK writes them: rounded) against the uint8 targets."""
    a = ((pixels.clamp(-1, 1) + 1) * 127.5).round()
    b = ((target + 1) * 127.5).round()
    mse = ((a - b) ** 2).flatten(1).mean(1)
    return (10 * torch.log10(255.0 ** 2 / mse.clamp_min(1e-10)))


def lr_at(step, total, peak, warmup):
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


def train_vae(args):
    torch.manual_seed(args.seed)
    config = wan_vae.WanVaeConfig(**vae_config_for(args.vae_stride))
    vae = wan_vae.WanVAE(config)
    wan_vae.random_init_(vae, torch.Generator().manual_seed(args.seed))
    vae = vae.float()
    params = [p for n, p in vae.named_parameters() if "time_conv" not in n]  # time_conv: video only, never used
    opt = torch.optim.AdamW(params, lr=args.vae_lr, betas=(0.9, 0.99), weight_decay=0.0)
    rng = random.Random(args.seed + 1)
    log(f"stage 1 VAE: {sum(p.numel() for p in vae.parameters()) / 1e6:.2f} M parameters, {args.vae_steps} steps "
        f"of {args.vae_batch}")
    t0 = time.time()
    for step in range(args.vae_steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args.vae_steps, args.vae_lr, 100)
        _, x = render_batch(rng, args.vae_batch)
        if step < args.vae_steps * 0.85:  # random 32x32 crops (latent-aligned) for most steps: 4x cheaper
            oy, ox = 8 * rng.randrange(5), 8 * rng.randrange(5)  # multiples of 8: latent-aligned at either stride
            x = x[:, :, oy:oy + 32, ox:ox + 32]
        mu = vae_encode_raw(vae, x)
        noise_scale = 0.02 * mu.detach().flatten(2).std(-1).mean()  # small relative noise on the latent
        recon = vae_decode_raw(vae, mu + noise_scale * torch.randn_like(mu))
        l1 = (recon - x).abs().mean()
        mse = ((recon - x) ** 2).mean()
        reg = 1e-4 * (mu ** 2).mean()
        loss = l1 + mse + reg
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % 100 == 0 or step == args.vae_steps - 1:
            with torch.no_grad():
                p = psnr_uint8(recon, x).mean().item()
            log(f"vae step {step:5d} loss {loss.item():.4f} l1 {l1.item():.4f} psnr(train batch) {p:.2f} dB "
                f"{(time.time() - t0) / (step + 1):.3f} s/step")
    vae.eval()
    return vae


@torch.no_grad()
def latent_statistics(vae, seed, n=1024):
    rng = random.Random(seed)
    mus = []
    for _ in range(n // 64):
        _, x = render_batch(rng, 64)
        mus.append(vae_encode_raw(vae, x))
    mu = torch.cat(mus)                                   # [N,16,h,w]
    mean = mu.mean(dim=(0, 2, 3))
    std = mu.std(dim=(0, 2, 3))
    return [round(v, 6) for v in mean.tolist()], [round(v, 6) for v in std.tolist()]


def bf16_round_(module):
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(p.to(torch.bfloat16).float())


@torch.no_grad()
def check_vae(vae, seed, n=64):
    """Held-out PSNR through the reference's own (chunked 3-D) encode/decode, and the 2-D path's agreement."""
    rng = random.Random(scenes.EVAL_SEED_BASE + seed)
    batch = [scenes.sample_scene(rng, held_out=True) for _ in range(n)]
    x = to_tensor([scenes.render(s) for s in batch])
    z = vae.encode(x.unsqueeze(2))                          # normalised, reference path
    recon = vae.decode(z)[:, :, 0]
    mu2d = vae_encode_raw(vae, x)
    err = (vae.normalize(mu2d.unsqueeze(2)) - z).abs().max().item()
    assert err < 1e-3, f"2-D training path != reference encode ({err})"
    return psnr_uint8(recon, x)


# ---------------------------------------------------------------------------------------------------------------
# Stage 2: Show-o2
# ---------------------------------------------------------------------------------------------------------------

def time_shift_mu(seq_len):
    return 0.5 + (1.15 - 0.5) * (seq_len - 256) / (4096 - 256)


def sample_t(n, seq_len, generator):
    """§7.1: t = sigmoid(N(0,1)) (lognorm), then t <- 1 - e^mu / (e^mu + (1/(1-t) - 1))."""
    t = torch.sigmoid(torch.randn(n, generator=generator))
    mu = time_shift_mu(seq_len)
    t = t.clamp(1e-5, 1 - 1e-5)
    return 1 - math.exp(mu) / (math.exp(mu) + (1 / (1 - t) - 1))


class SceneBank:
    """Training scenes with their normalised VAE latents (computed once with the frozen VAE)."""

    def __init__(self, vae, n, seed):
        rng = random.Random(seed)
        self.scenes, latents, footprints = [], [], []
        with torch.no_grad():
            for start in range(0, n, 128):
                batch, x = render_batch(rng, min(128, n - start))
                self.scenes += batch
                latents.append(vae.normalize(vae_encode_raw(vae, x).unsqueeze(2))[:, :, 0])
                footprints.append(object_footprint(batch, x, latents[-1].shape[-1]))
        self.latents = torch.cat(latents)  # [N,16,h,w]
        self.footprints = torch.cat(footprints)  # [N,h,w]: 1 where a latent pixel sees part of an object


def object_footprint(batch, x, latent_size):
    """[B,h,w] float: 1 on the latent pixels whose image block holds any object pixel, 0 on pure background.

    The pictures are flat colours, so an object pixel is one that differs from the scene's background colour."""
    background = torch.tensor([scenes.BACKGROUND_COLOURS[s.background] for s in batch], dtype=torch.float32)
    background = (background / 127.5 - 1.0).view(-1, 3, 1, 1)
    on_object = ((x - background).abs().amax(dim=1, keepdim=True) > 0.02).float()
    stride = x.shape[-1] // latent_size
    return (F.max_pool2d(on_object, stride) > 0).float()[:, 0]


def pad_batch(seqs, pad_id):
    length = max(len(s) for s in seqs)
    return torch.tensor([s + [pad_id] * (length - len(s)) for s in seqs]), length


def joint_step(model, text, bank, rng, gen, batch_gen, batch_und, cfg_drop=0.1, ntp_weighting="sample",
               low_t_fraction=0.0, low_t_max=0.3, object_loss_weight=0.0):
    """One batch: batch_gen generation samples + batch_und understanding samples -> (loss_flow, loss_ntp)."""
    cfg = model.config
    n_vis = cfg.image_latent_height * cfg.image_latent_width
    idx = [rng.randrange(len(bank.scenes)) for _ in range(batch_gen + batch_und)]
    x1 = bank.latents[idx]                                        # [B,16,h,w] clean
    b = len(idx)
    # generation: noisy latents at sampled t; understanding: clean latents at t = 1
    t = torch.ones(b)
    t[:batch_gen] = sample_t(batch_gen, n_vis + 1, gen)
    if low_t_fraction > 0:
        # Part of the batch at t ~ U(0, low_t_max), mostly noise: only there does the caption decide what the image
        # becomes. With 256 visual tokens the model reads colour and layout off x_t itself at the spec's usual t
        # (the whole background is one colour over 4096 latent values), so without these it learns to ignore the
        # caption and CFG has nothing to amplify.
        low = torch.rand(batch_gen, generator=gen) < low_t_fraction
        t[:batch_gen] = torch.where(low, low_t_max * torch.rand(batch_gen, generator=gen), t[:batch_gen])
    x0 = torch.randn(x1.shape, generator=gen)
    xt = t.view(-1, 1, 1, 1) * x1 + (1 - t.view(-1, 1, 1, 1)) * x0
    xt[batch_gen:] = x1[batch_gen:]
    seqs, blocks, time_pos, labels = [], [], [], []
    for i, j in enumerate(idx):
        scene = bank.scenes[j]
        if i < batch_gen:
            caption = "" if rng.random() < cfg_drop else scenes.caption(scene, rng)
            ids, block = text.generation(caption, n_vis)
            seqs.append(ids), blocks.append(block), time_pos.append(block[0]), labels.append(None)
        else:
            _, q, a = rng.choice(scenes.qa_pairs(scene))
            ids, tp, block, first = text.understanding(q, a, n_vis)
            seqs.append(ids), blocks.append(block), time_pos.append(tp), labels.append(first)
    input_ids, length = pad_batch(seqs, text.pad)
    fused = model.visual_tokens(xt)["fused"]                     # [B, N, h]
    c, time_tokens = model.time_token(t)                         # [B, Dh], [B, h]
    embeds = model.embed(input_ids)                              # [B, L, h]
    rows = []
    for i in range(b):
        vis_start = time_pos[i] + 1
        rows.append(torch.cat([embeds[i, :time_pos[i]], time_tokens[i:i + 1], fused[i],
                               embeds[i, vis_start + n_vis:]]))
    embeds = torch.stack(rows)
    sample_blocks = [[blk] for blk in blocks]
    hidden = model.llm_batch(embeds, sample_blocks)             # [B, L, h]
    # flow loss on the generation samples
    out = model.flow_head_batch(hidden[:batch_gen], sample_blocks[:batch_gen],
                                [c[i:i + 1] for i in range(batch_gen)])
    p = cfg.patch_size
    v = torch.stack([ref.unpatchify(out[i, blocks[i][0] + 1:blocks[i][0] + blocks[i][1]], cfg.image_latent_height,
                                    cfg.image_latent_width, p, cfg.image_latent_dim) for i in range(batch_gen)])
    squared_error = (v - (x1[:batch_gen] - x0[:batch_gen])) ** 2
    if object_loss_weight > 0:
        # The objects' outlines are a few latent pixels of 64; unweighted, the background's (irreducible) noise
        # drowns the gradient that would teach the shape word. Weight the objects' latent pixels up, then divide by
        # the mean weight so the loss stays on the scale of the plain MSE.
        weight = 1.0 + object_loss_weight * bank.footprints[idx[:batch_gen]].unsqueeze(1)
        loss_flow = (squared_error * weight).mean() / weight.mean()
    else:
        loss_flow = squared_error.mean()
    # next-token loss on the answers (and their <|im_end|>)
    und_hidden, targets = [], []
    for i in range(batch_gen, b):
        first = labels[i]
        n_ans = len(seqs[i]) - first
        und_hidden.append(hidden[i, first - 1:first - 1 + n_ans])
        targets.append(input_ids[i, first:first + n_ans])
    logits = model.lm_head(torch.cat(und_hidden))
    per_token = F.cross_entropy(logits, torch.cat(targets), reduction="none")
    if ntp_weighting == "token":
        loss_ntp = per_token.mean()
    else:  # each answer counts once, so long "Describe the image." answers do not drown the one-word ones
        lengths = [len(tg) for tg in targets]
        loss_ntp = torch.stack([chunk.mean() for chunk in per_token.split(lengths)]).mean()
    return loss_flow, loss_ntp


def init_model(config, seed):
    torch.manual_seed(seed)
    model = ref.Showo2Qwen2_5(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("weight") and p.dim() >= 2 and "embed_tokens" not in name \
                    and "position_embedding" not in name:
                nn.init.normal_(p, std=0.02) if p.dim() == 2 else nn.init.normal_(p, std=(1.0 / p[0].numel()) ** 0.5)
            elif name.endswith("bias"):
                nn.init.zeros_(p)
        nn.init.normal_(model.showo.model.embed_tokens.weight, std=0.02)
        nn.init.normal_(model.position_embedding.weight, std=0.02)
        # adaLN-Zero (§6.2): the modulation linears and the final linear start at zero
        for block in model.diffusion_head_a:
            nn.init.zeros_(block.adaLN_modulation[1].weight), nn.init.zeros_(block.adaLN_modulation[1].bias)
        nn.init.zeros_(model.diffusion_head_b.adaLN_modulation[1].weight)
        nn.init.zeros_(model.diffusion_head_b.adaLN_modulation[1].bias)
        nn.init.zeros_(model.diffusion_head_b.linear.weight), nn.init.zeros_(model.diffusion_head_b.linear.bias)
    return model


def train_showo2(args, config, text, bank):
    model = init_model(config, args.seed)
    if args.init:  # continue from earlier weights (bf16 file; lm_head is tied to embed_tokens)
        from safetensors.torch import load_file
        ref.load_checkpoint(model, {k: v.float() for k, v in load_file(args.init).items()})
        log(f"stage 2 starts from {args.init}")
    n_params = sum(p.numel() for p in model.parameters())
    log(f"stage 2 Show-o2: {n_params / 1e6:.2f} M parameters, {args.steps} steps of {args.batch_gen} generation + "
        f"{args.batch_und} understanding samples")
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.98))
    rng = random.Random(args.seed + 2)
    gen = torch.Generator().manual_seed(args.seed + 3)
    t0 = time.time()
    ema_f = ema_n = None
    for step in range(args.steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args.steps, args.lr, args.warmup)
        loss_flow, loss_ntp = joint_step(model, text, bank, rng, gen, args.batch_gen, args.batch_und,
                                         ntp_weighting=args.ntp_weighting, low_t_fraction=args.low_t_fraction,
                                         low_t_max=args.low_t_max, object_loss_weight=args.object_loss_weight)
        loss = loss_flow + loss_ntp
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema_f = loss_flow.item() if ema_f is None else 0.98 * ema_f + 0.02 * loss_flow.item()
        ema_n = loss_ntp.item() if ema_n is None else 0.98 * ema_n + 0.02 * loss_ntp.item()
        if step % 100 == 0 or step == args.steps - 1:
            log(f"step {step:5d} flow {ema_f:.4f} ntp {ema_n:.4f} lr {opt.param_groups[0]['lr']:.2e} "
                f"{(time.time() - t0) / (step + 1):.3f} s/step")
        if args.checkpoint_every and step > 0 and step % args.checkpoint_every == 0:
            save_model(model, os.path.join(args.work, "checkpoint.safetensors"))
    model.eval()
    return model


def save_model(model, path):
    from safetensors.torch import save_file
    state = {k: v.detach().to(torch.bfloat16).contiguous() for k, v in model.state_dict().items()
             if k != "showo.lm_head.weight"}  # tied to embed_tokens (spec §9: treat as one tensor)
    save_file(state, path, metadata={"format": "pt"})


def save_vae(vae, path):
    from safetensors.torch import save_file
    state = {k: v.detach().to(torch.bfloat16).contiguous() for k, v in vae.state_dict().items()}
    save_file(state, path, metadata={"format": "pt"})


# ---------------------------------------------------------------------------------------------------------------
# PyTorch-side sanity evaluation (the committed evaluator, test/demo/, scores the SDK's outputs)
# ---------------------------------------------------------------------------------------------------------------

@torch.no_grad()
def quick_eval(model, vae, text, seed, n_captions=12):
    cfg = model.config
    n_vis = cfg.image_latent_height * cfg.image_latent_width
    data, _ = scenes.evaluation_set()
    items = data["generation"][:n_captions]

    max_text = max(len(text.cached(it["caption"])) for it in items)

    def seq(caption):  # padded with [PAD] after <|im_end|> to one length, as the SDK's sequences are (§2.3)
        ids, block = text.generation(caption, n_vis)
        ids = ids + [text.pad] * (max_text - (block[0] - 2))
        return ref.GenSequence(ids, block, ids[1:block[0] - 1], block[0] - 2, max_text)

    cond = [seq(it["caption"]) for it in items]
    uncond = [seq("") for _ in items]
    noise = torch.randn(len(items), 16, cfg.patch_size * cfg.image_latent_height, cfg.patch_size * cfg.image_latent_width,
                        generator=torch.Generator().manual_seed(seed))
    out = ref.generate_latent(model, cond, uncond, noise, 5.0, 50)
    pixels = vae.decode(out["latent"].unsqueeze(2))[:, :, 0]
    images = ((pixels + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return items, images


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(ROOT, "models", "demo"))
    parser.add_argument("--work", default="/tmp/showo2-demo-work")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--vocab-size", type=int, default=512)
    parser.add_argument("--vae-steps", type=int, default=3000)
    parser.add_argument("--vae-batch", type=int, default=16)
    parser.add_argument("--vae-lr", type=float, default=2e-3)
    parser.add_argument("--vae-stride", type=int, choices=[4, 8], default=8, help="pixels per latent pixel side")
    parser.add_argument("--scenes", type=int, default=12000)
    # The committed weights use patch 2 (Show-o2's) and token weighting; tools/demo/experiment-patch1.log is a run with
    # --patch-size 1 --ntp-weighting sample (see the model card's "What was tried").
    parser.add_argument("--patch-size", type=int, default=1, help="latent pixels per visual token side")
    parser.add_argument("--ntp-weighting", choices=["sample", "token"], default="sample",
                        help="next-token loss: mean over answers (sample) or over all answer tokens (token)")
    parser.add_argument("--fused-attention", action=argparse.BooleanOptionalAction, default=True,
                        help="stage 2 attention through PyTorch's fused kernel (same function, ~2x faster at 256 "
                             "tokens; float rounding differs from the reference's attention, so runs with and "
                             "without it are not bit-identical)")
    parser.add_argument("--low-t-fraction", type=float, default=0.0,
                        help="share of generation samples drawn at t ~ U(0, --low-t-max) instead of the spec's t")
    parser.add_argument("--low-t-max", type=float, default=0.3)
    parser.add_argument("--object-loss-weight", type=float, default=4.0,
                        help="extra flow-loss weight on the latent pixels an object covers (0: plain MSE)")
    parser.add_argument("--steps", type=int, default=9000)
    parser.add_argument("--batch-gen", type=int, default=32)
    parser.add_argument("--batch-und", type=int, default=20)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup", type=int, default=200, help="stage-2 warm-up steps")
    parser.add_argument("--init", help="start stage 2 from this model.safetensors instead of random weights")
    parser.add_argument("--checkpoint-every", type=int, default=500)
    parser.add_argument("--smoke", action="store_true", help="tiny step counts: checks the pipeline end to end")
    parser.add_argument("--probe", action="store_true", help="time a few steps of each stage and exit")
    parser.add_argument("--reuse-vae", action="store_true", help="skip stage 1, load --out/vae.safetensors")
    args = parser.parse_args()
    if args.smoke:
        args.vae_steps, args.scenes, args.steps = 60, 512, 8
    torch.set_num_threads(args.threads)
    if args.fused_attention:  # speed only; equal to the reference's attention up to float rounding
        ref.scaled_dot_product_attention = fused_attention
    random.seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    os.makedirs(args.work, exist_ok=True)
    log(f"args {vars(args)}; torch {torch.__version__}, {torch.get_num_threads()} threads")

    tokenizer = train_tokenizer(args.vocab_size, args.seed)
    vocab = tokenizer.get_vocab_size()
    text = Text(tokenizer)
    log(f"stage 0 tokenizer: {vocab} tokens; demo prompt -> {text.tok('a red circle on a blue background')}")

    if args.probe:
        probe(args, text, vocab)
        return

    if args.reuse_vae:
        from safetensors.torch import load_file
        with open(os.path.join(args.out, "config.json")) as f:
            vae_config = json.load(f)["vae_config"]
        vae = wan_vae.WanVAE(wan_vae.WanVaeConfig(**vae_config)).float()
        vae.load_state_dict({k: v.float() for k, v in load_file(os.path.join(args.out, "vae.safetensors")).items()})
        vae.eval()
    else:
        vae = train_vae(args)
        mean, std = latent_statistics(vae, args.seed + 4)
        vae_config = dict(vae_config_for(args.vae_stride), latents_mean=mean, latents_std=std)
        trained = vae
        vae = wan_vae.WanVAE(wan_vae.WanVaeConfig(**vae_config)).float()
        vae.load_state_dict(trained.state_dict())
        bf16_round_(vae)
        vae.eval()
        save_vae(vae, os.path.join(args.out, "vae.safetensors"))
    psnr = check_vae(vae, args.seed)
    log(f"stage 1 VAE (bf16 weights, reference 3-D path): held-out PSNR mean {psnr.mean():.2f} dB, "
        f"min {psnr.min():.2f} dB")

    config_dict = model_config(vocab, vae_config, args.patch_size)
    config = ref.Showo2Config.from_dict(config_dict)
    tokenizer.save(os.path.join(args.out, "tokenizer.json"))
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config_dict, f, indent=2)
        f.write("\n")

    bank = SceneBank(vae, args.scenes, args.seed + 5)
    log(f"scene bank: {len(bank.scenes)} scenes, latent std {bank.latents.std():.3f}")
    model = train_showo2(args, config, text, bank)
    save_model(model, os.path.join(args.out, "model.safetensors"))
    bf16_round_(model)
    items, images = quick_eval(model, vae, text, args.seed)
    from PIL import Image
    sheet = Image.new("RGB", (64 * len(items), 64))
    for i, im in enumerate(images):
        sheet.paste(Image.fromarray(im), (64 * i, 0))
    sheet.save(os.path.join(args.work, "quick_eval.png"))
    summary = {"vae_heldout_psnr_db": round(psnr.mean().item(), 2), "seconds": round(time.time() - log.start, 1),
               "args": vars(args)}
    with open(os.path.join(args.work, "train_summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    log(f"done: {summary}")


def probe(args, text, vocab):
    vae = wan_vae.WanVAE(wan_vae.WanVaeConfig(**vae_config_for(args.vae_stride))).float()
    rng = random.Random(0)
    opt = torch.optim.AdamW(vae.parameters(), lr=1e-4)
    for bs in (args.vae_batch,):
        times = []
        for _ in range(4):
            t0 = time.time()
            _, x = render_batch(rng, bs)
            t1 = time.time()
            recon = vae_decode_raw(vae, vae_encode_raw(vae, x))
            loss = (recon - x).abs().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            times.append((t1 - t0, time.time() - t1))
        log(f"vae batch {bs}: render {times[-1][0]:.3f}s, step {min(t for _, t in times[1:]):.3f}s; "
            f"{sum(p.numel() for p in vae.parameters()) / 1e6:.2f} M params")
    vae.eval()
    config = ref.Showo2Config.from_dict(model_config(vocab, vae_config_for(args.vae_stride), args.patch_size))
    t0 = time.time()
    bank = SceneBank(vae, 256, 0)
    log(f"scene bank 256: {time.time() - t0:.2f}s")
    model = init_model(config, 0)
    log(f"model {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M params")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    gen = torch.Generator().manual_seed(0)
    times = []
    for _ in range(4):
        t0 = time.time()
        lf, ln = joint_step(model, text, bank, rng, gen, args.batch_gen, args.batch_und)
        (lf + ln).backward()
        opt.step()
        opt.zero_grad()
        times.append(time.time() - t0)
    log(f"joint step {args.batch_gen}+{args.batch_und}: {min(times[1:]):.3f}s (flow {lf.item():.3f} ntp {ln.item():.3f})")


if __name__ == "__main__":
    main()
