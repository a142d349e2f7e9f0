"""PyTorch baseline for bench/native/attention_bench.cpp: same case names, same output format.

    python3 bench/torch/attention_baseline.py [--threads N] [--json] [--repeats R]

Each case runs torch.nn.functional.scaled_dot_product_attention on [B, H, L, D] f32 tensors (the layout SDPA wants;
12 kv heads = 12 query heads, so no GQA): is_causal=True for the causal case, a boolean attn_mask [B, 1, L, L]
built from the same bidirectional blocks as the native bench for the omni case (True = may attend, spec §5.1),
and no mask for the full case. Times are the median of R timed runs after warm-up.

GFLOP/s counts only the unmasked work, exactly as the native bench does: 4 * D flops (q·k and p·v, a multiply and an
add each) per allowed (query, key) pair, so the three cases are comparable with each other and with ours.
"""
import argparse

import torch
import torch.nn.functional as F
from common import median_ms, report

B, H, L, D = 2, 12, 1024, 128
# Per sample: a causal text prefix then one bidirectional block (offset, length), as in the native bench.
OMNI_BLOCKS = [(100, 730), (150, 730)]


def key_end(q, blocks):
    """One past the last key row q may see (omni_mask.h key_end), for an allowed-pair count."""
    for off, length in blocks:
        if off <= q < off + length:
            return off + length
    return q + 1


def allowed_pairs(kind):
    if kind == "full":
        return B * L * L
    if kind == "causal":
        return B * L * (L + 1) // 2
    return sum(key_end(q, [blk]) for blk in OMNI_BLOCKS for q in range(L))


def omni_bool_mask():
    idx = torch.arange(L)
    masks = []
    for off, length in OMNI_BLOCKS:
        allowed = idx[None, :] <= idx[:, None]  # k <= q
        in_block = (idx >= off) & (idx < off + length)
        allowed |= in_block[:, None] & in_block[None, :]
        masks.append(allowed)
    return torch.stack(masks)[:, None]  # [B, 1, L, L]


def run_case(kind, repeats, warmup):
    g = torch.Generator().manual_seed(1234)
    q = torch.randn(B, H, L, D, generator=g)
    k = torch.randn(B, H, L, D, generator=g)
    v = torch.randn(B, H, L, D, generator=g)
    mask = omni_bool_mask() if kind == "omni" else None
    causal = kind == "causal"

    def call():
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)

    ms = median_ms(call, warmup=warmup, min_iters=repeats, min_seconds=0.0)
    gflops = allowed_pairs(kind) * H * 4 * D / (ms * 1e-3) / 1e9
    return ms, gflops


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (default: torch's own default)")
    ap.add_argument("--json", action="store_true", help="one JSON object per line")
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--warmup", type=int, default=2)
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    for kind in ("causal", "omni", "full"):
        name = f"attention_{kind}_B{B}_H{H}_L{L}_D{D}"
        ms, gflops = run_case(kind, args.repeats, args.warmup)
        report(args.json, name, ms, gflops)


if __name__ == "__main__":
    main()
