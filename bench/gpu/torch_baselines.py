"""PyTorch baselines on the GPU for the shapes Show-o2 runs, measured with CUDA events (median of many runs).

These are the named baselines the showo2 CUDA kernels are compared against (issues [attn], [cuda], [cuda-vae]); each
showo2 GPU benchmark re-runs the relevant subset in the same call, so ratios always come from one run on one GPU.

Usage: python3 bench/gpu/torch_baselines.py [--json out.jsonl]
Prints a table with ms, TFLOP/s (or GB/s) and the fraction of the H100's 989 TFLOP/s bf16 / 3.35 TB/s peaks.
"""
import argparse
import json
import sys

import torch
import torch.nn.functional as F

PEAK_TFLOPS = 989.0
PEAK_TBPS = 3.35


def time_ms(fn, warmup=10, iters=50):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    times.sort()
    return times[len(times) // 2]


RESULTS = []


def report(case, ms, flops=None, nbytes=None, note=""):
    row = {"case": case, "ms": ms}
    extra = ""
    if flops is not None:
        tf = flops / ms / 1e9
        row["tflops"] = tf
        extra = f"{tf:8.1f} TFLOP/s ({100 * tf / PEAK_TFLOPS:5.1f}% of peak)"
    if nbytes is not None:
        tb = nbytes / ms / 1e9
        row["tbps"] = tb
        extra = f"{tb:8.2f} TB/s ({100 * tb / PEAK_TBPS:5.1f}% of peak)"
    row["note"] = note
    RESULTS.append(row)
    print(f"{case:58s} {ms:9.3f} ms  {extra} {note}", flush=True)


def ceilings():
    n = 1 << 28  # 512 MiB of bf16
    src = torch.randn(n, device="cuda", dtype=torch.bfloat16)
    dst = torch.empty_like(src)
    ms = time_ms(lambda: dst.copy_(src))
    report("ceiling_copy_512MiB", ms, nbytes=2 * src.numel() * 2)
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    ms = time_ms(lambda: a @ b)
    report("ceiling_matmul_bf16_8192", ms, flops=2 * 8192**3)


def omni_block_mask(L, blocks, device):
    """Dense boolean mask (True = attend) for one sample: causal plus bidirectional blocks (spec §5.1)."""
    q = torch.arange(L, device=device)[:, None]
    k = torch.arange(L, device=device)[None, :]
    allowed = k <= q
    for off, length in blocks:
        inb_q = (q >= off) & (q < off + length)
        inb_k = (k >= off) & (k < off + length)
        allowed = allowed | (inb_q & inb_k)
    return allowed


def attention_cases():
    from torch.nn.attention import SDPBackend, sdpa_kernel

    try:
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention

        flex = torch.compile(flex_attention, dynamic=False)
    except Exception as e:  # noqa: BLE001
        flex = None
        print("flex attention unavailable:", e)

    # (name, B, Hq, Hkv, D, L, blocks per sample)
    cases = [
        ("llm1.5b_t2i_cfg", 2, 12, 2, 128, 1024, [[(12, 730)], [(2, 730)]]),
        ("head_t2i_cfg", 2, 32, 8, 64, 1024, [[(12, 730)], [(2, 730)]]),
        ("llm1.5b_t2i_1024px", 2, 12, 2, 128, 4352, [[(100, 4097)], [(2, 4097)]]),
        ("llm7b_t2i_cfg", 2, 28, 4, 128, 1024, [[(12, 730)], [(2, 730)]]),
        ("siglip_full", 2, 16, 16, 72, 729, None),
        ("vae_mid_attn_54x54", 1, 1, 1, 384, 2916, None),
    ]
    for name, B, Hq, Hkv, D, L, blocks in cases:
        q = torch.randn(B, Hq, L, D, device="cuda", dtype=torch.bfloat16)
        k = torch.randn(B, Hkv, L, D, device="cuda", dtype=torch.bfloat16)
        v = torch.randn(B, Hkv, L, D, device="cuda", dtype=torch.bfloat16)
        if blocks is None:
            mask = None
            allowed_pairs = B * L * L
        else:
            mask = torch.stack([omni_block_mask(L, blocks[b], "cuda") for b in range(B)])[:, None]
            allowed_pairs = mask.sum().item()
        flops = 4.0 * Hq * D * allowed_pairs
        gqa = Hq != Hkv
        for backend_name, backend in [("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION),
                                      ("efficient", SDPBackend.EFFICIENT_ATTENTION), ("math", SDPBackend.MATH)]:
            def run(backend=backend):
                with sdpa_kernel(backend):
                    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=gqa)
            try:
                ms = time_ms(run, warmup=3, iters=20 if backend_name == "math" else 50)
                report(f"attn_{name}_sdpa_{backend_name}", ms, flops=flops)
            except Exception as e:  # noqa: BLE001
                print(f"attn_{name}_sdpa_{backend_name}: unsupported ({str(e).splitlines()[0][:80]})")
        if flex is not None:
            try:
                if blocks is None:
                    bm = None
                else:
                    starts = torch.tensor([[o for o, _ in blocks[b]] for b in range(B)], device="cuda")
                    ends = torch.tensor([[o + n for o, n in blocks[b]] for b in range(B)], device="cuda")

                    def mask_mod(b, h, qi, ki):
                        inq = (qi >= starts[b, 0]) & (qi < ends[b, 0])
                        ink = (ki >= starts[b, 0]) & (ki < ends[b, 0])
                        return (ki <= qi) | (inq & ink)

                    bm = create_block_mask(mask_mod, B, None, L, L, device="cuda")
                ms = time_ms(lambda: flex(q, k, v, block_mask=bm, enable_gqa=gqa), warmup=5)
                report(f"attn_{name}_flex", ms, flops=flops)
            except Exception as e:  # noqa: BLE001
                print(f"attn_{name}_flex: unsupported ({str(e).splitlines()[0][:100]})")


def decode_cases():
    """One token (or a group of 4) over a long KV cache, the shapes of attention_cuda_bench's decode rows: SDPA's
    backends on bf16, bytes = K and V read once (the bound of decoding)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    # (name, B, Hq, Hkv, D, Lq, Lk)
    cases = [
        ("decode_llm1.5b_4k", 1, 12, 2, 128, 1, 4096),
        ("decode_llm1.5b_16k", 1, 12, 2, 128, 1, 16384),
        ("decode_llm7b_16k", 1, 28, 4, 128, 1, 16384),
        ("decode_llm1.5b_b2_video_6k", 2, 12, 2, 128, 1, 6272),
        ("decode_group4_llm1.5b_8k", 1, 12, 2, 128, 4, 8192),
    ]
    for name, B, Hq, Hkv, D, Lq, Lk in cases:
        q = torch.randn(B, Hq, Lq, D, device="cuda", dtype=torch.bfloat16)
        k = torch.randn(B, Hkv, Lk, D, device="cuda", dtype=torch.bfloat16)
        v = torch.randn(B, Hkv, Lk, D, device="cuda", dtype=torch.bfloat16)
        # causal with the queries at the end of the cache: query i sees keys < Lk - Lq + i + 1
        mask = None
        if Lq > 1:
            qi = torch.arange(Lq, device="cuda")[:, None] + (Lk - Lq)
            mask = torch.arange(Lk, device="cuda")[None, :] <= qi
        nbytes = 2 * B * Lk * Hkv * D * 2
        for backend_name, backend in [("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION),
                                      ("efficient", SDPBackend.EFFICIENT_ATTENTION)]:
            def run(backend=backend):
                with sdpa_kernel(backend):
                    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=Hq != Hkv)
            try:
                ms = time_ms(run, warmup=5, iters=50)
                report(f"attn_{name}_sdpa_{backend_name}", ms, nbytes=nbytes, note="K and V bytes read once")
            except Exception as e:  # noqa: BLE001
                print(f"attn_{name}_sdpa_{backend_name}: unsupported ({str(e).splitlines()[0][:80]})")


def matmul_cases():
    # Token-major linear layers of one CFG Euler step (2 x 730 block tokens) and of understanding decode (M=1).
    cases = [
        ("qkv1.5b", 1460, 1536, 2048),
        ("mlp_up1.5b", 1460, 1536, 17920),
        ("mlp_down1.5b", 1460, 8960, 1536),
        ("head_mlp_up", 1460, 2048, 16384),
        ("mlp_up7b", 1460, 3584, 37888),
        ("decode_mlp_up1.5b", 1, 1536, 17920),
        ("lm_head1.5b_decode", 1, 1536, 151669),
    ]
    for name, M, K, N in cases:
        x = torch.randn(M, K, device="cuda", dtype=torch.bfloat16)
        w = torch.randn(N, K, device="cuda", dtype=torch.bfloat16)
        ms = time_ms(lambda: F.linear(x, w))
        note = ""
        if M == 1:
            report(f"linear_{name}_M{M}_K{K}_N{N}", ms, nbytes=N * K * 2, note="(weight-read bound)")
        else:
            report(f"linear_{name}_M{M}_K{K}_N{N}", ms, flops=2.0 * M * K * N, note=note)


def conv_cases():
    # Wan VAE convolutions (spec §3.1) in bf16 channels_last_3d; causal time padding applied beforehand.
    cases = [
        ("vae_mid_384_54x54_T1", 1, 384, 384, 1, 54, 54),
        ("vae_mid_384_54x54_T5", 1, 384, 384, 5, 54, 54),
        ("vae_up_192_216x216_T1", 1, 192, 192, 1, 216, 216),
        ("vae_up_96_432x432_T1", 1, 96, 96, 1, 432, 432),
    ]
    for name, N, C, O, T, H, W in cases:
        x = torch.randn(N, C, T + 2, H + 2, W + 2, device="cuda", dtype=torch.bfloat16)
        x = x.contiguous(memory_format=torch.channels_last_3d)
        w = torch.randn(O, C, 3, 3, 3, device="cuda", dtype=torch.bfloat16).contiguous(
            memory_format=torch.channels_last_3d)
        b = torch.randn(O, device="cuda", dtype=torch.bfloat16)
        ms = time_ms(lambda: F.conv3d(x, w, b))
        report(f"conv3d_{name}", ms, flops=2.0 * N * O * C * 27 * T * H * W)
        if T == 1:
            # Single-frame causal conv == 2-D conv with the last temporal kernel slice (spec §3.1).
            x2 = torch.randn(N, C, H, W, device="cuda", dtype=torch.bfloat16).contiguous(
                memory_format=torch.channels_last)
            w2 = w[:, :, 2].contiguous(memory_format=torch.channels_last)
            ms = time_ms(lambda: F.conv2d(x2, w2, b, padding=1))
            report(f"conv2d_{name}", ms, flops=2.0 * N * O * C * 9 * H * W)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", help="also write one JSON object per case to this file")
    ap.add_argument("--only", default="ceilings,attention,decode,matmul,conv")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to measure")
        return 0
    print(f"device: {torch.cuda.get_device_name()}  torch {torch.__version__}  cuda {torch.version.cuda}")
    torch.backends.cuda.matmul.allow_tf32 = False
    parts = args.only.split(",")
    if "ceilings" in parts:
        ceilings()
    if "matmul" in parts:
        matmul_cases()
    if "attention" in parts:
        attention_cases()
    if "decode" in parts:
        decode_cases()
    if "conv" in parts:
        conv_cases()
    if args.json:
        with open(args.json, "w") as f:
            for r in RESULTS:
                f.write(json.dumps(r) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
