#!/usr/bin/env python3
"""PyTorch baseline for bench/native/wan_vae_bench.cpp: the same cases, names, thread count and JSON lines.

    python3 bench/torch/wan_vae_baseline.py [--threads N] [--json] [--case SUBSTRING] [--iters N]

Runs the independent reference tools/reference/wan_vae.py as it is, on its chunked path (the reference behaviour:
frame 0 alone then chunks of 4 frames to encode, one latent frame at a time to decode), in float32 under
torch.inference_mode, with the full-size Wan2.1 config (dim 96) and random weights of the native bench's scale
(conv weights N(0, 1/fan_in), biases N(0, 0.02^2), gammas 1; the values differ, the work does not).

Method: 1 warm-up call, then --iters calls (default 3), median; --iters 1 means one cold call. JSON lines carry
"ns_per_pixel" = ms * 1e6 / (frames * 432 * 432) (input frames for encode, decoded frames for decode) and
"gflops": 0 (the native bench's dense-conv count is the one bench/cpu_vs_torch.py prints).

What the reference costs beyond the algorithm: its causal conv pads the missing history with zero frames and runs
the dense k=3 Conv3d over them (F.pad, as Wan's own CausalConv3d), so a 1-frame chunk (the whole image cases, and the
first chunk of each video) does 3x the FMAs that reach real data; every cached conv also torch.cat's its history in
front of the chunk (a copy). The Python-level overhead (a few hundred module calls per chunk) is negligible next to
the convs. The extra cases *_image_432_2d time the reference's own 2-D image path (encode_image_2d /
decode_image_2d: the last kernel slice as a Conv2d), which is what an honest single-image torch port would run.
"""
import argparse
import os
import statistics
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools", "reference"))
import wan_vae as ref  # noqa: E402  (tools/reference/wan_vae.py)

PIXELS = 432  # H = W

# (name, mode, frames). Keep in sync with kCases in bench/native/wan_vae_bench.cpp; the *_2d cases are torch-only.
CASES = [
    ("wan_vae_encode_image_432", "encode", 1),
    ("wan_vae_decode_image_432", "decode", 1),
    ("wan_vae_encode_video_17x432", "encode", 17),
    ("wan_vae_decode_video_17x432", "decode", 17),
    ("wan_vae_encode_image_432_2d", "encode_2d", 1),
    ("wan_vae_decode_image_432_2d", "decode_2d", 1),
]


@torch.no_grad()
def random_vae(seed=0):
    """The full-size VAE with weights of the native bench's scale (random_init_'s, with gammas exactly 1)."""
    vae = ref.WanVAE(ref.WanVaeConfig()).float().eval()
    gen = torch.Generator().manual_seed(seed)
    for name, p in vae.named_parameters():
        if name.endswith("gamma"):
            p.fill_(1.0)
        elif name.endswith("bias"):
            p.copy_(0.02 * torch.randn(p.shape, generator=gen))
        else:
            p.copy_(torch.randn(p.shape, generator=gen) / p[0].numel() ** 0.5)
    return vae


def median_ms(fn, iters):
    """1 warm-up call (none when iters == 1), then `iters` calls; the median in ms."""
    with torch.inference_mode():
        if iters > 1:
            fn()
        times = []
        for _ in range(iters):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def make_run(vae, mode, frames):
    gen = torch.Generator().manual_seed(1)
    latent = PIXELS // 8
    latent_frames = 1 + (frames - 1) // 4
    if mode.startswith("encode"):
        x = torch.rand(1, 3, frames, PIXELS, PIXELS, generator=gen) * 2 - 1  # pixels in [-1, 1]
    else:
        x = torch.randn(1, 16, latent_frames, latent, latent, generator=gen)
    if mode == "encode":
        return lambda: vae.encode(x)
    if mode == "decode":
        return lambda: vae.decode(x)
    if mode == "encode_2d":
        return lambda: ref.encode_image_2d(vae, x[:, :, 0])
    return lambda: ref.decode_image_2d(vae, x[:, :, 0])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads (default: all)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per case")
    parser.add_argument("--case", default="", help="run only cases whose name contains this")
    parser.add_argument("--iters", type=int, default=3, help="timed calls per case (default 3)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    vae = random_vae()
    for name, mode, frames in CASES:
        if args.case not in name:
            continue
        ms = median_ms(make_run(vae, mode, frames), max(1, args.iters))
        ns_per_pixel = ms * 1e6 / (frames * PIXELS * PIXELS)
        if args.json:
            print(f'{{"case": "{name}", "ms": {ms:.2f}, "gflops": 0, "ns_per_pixel": {ns_per_pixel:.1f}}}', flush=True)
        else:
            print(f"{name:<32} {ms:10.1f} ms {ns_per_pixel:9.1f} ns/pixel (torch {torch.__version__}, "
                  f"{torch.get_num_threads()} threads)", flush=True)


if __name__ == "__main__":
    main()
