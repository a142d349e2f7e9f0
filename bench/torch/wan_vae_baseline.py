#!/usr/bin/env python3
"""PyTorch baseline for bench/native/wan_vae_bench.cpp: the same cases, names, thread count and JSON lines.

    python3 bench/torch/wan_vae_baseline.py [--device cpu|cuda] [--dtype fp32|bf16] [--[no-]channels-last]
                                            [--threads N] [--json] [--case SUBSTRING] [--iters N]

Runs the independent reference tools/reference/wan_vae.py as it is, on its chunked path (the reference behaviour:
frame 0 alone then chunks of 4 frames to encode, one latent frame at a time to decode), under torch.inference_mode,
with the full-size Wan2.1 config (dim 96) and random weights of the native bench's scale (conv weights
N(0, 1/fan_in), biases N(0, 0.02^2), gammas 1; the values differ, the work does not). On the CPU in float32 by
default; with --device cuda in bf16 with channels_last_3d weights and inputs and cudnn.benchmark on (issue
[cuda-vae]'s named baseline), with the peak of torch.cuda.max_memory_allocated per case. The 81-frame 832x480
cases run only on cuda (or when named by --case); an out-of-memory case is reported, not fatal.

Method: 1 warm-up call, then --iters calls (default 3), median (synchronised on the GPU); --iters 1 means one cold
call. JSON lines carry "ns_per_pixel" = ms * 1e6 / (frames * H * W) (input frames for encode, decoded frames for
decode), "peak_gib" and "gflops": 0 (the native bench's dense-conv count is the one bench/cpu_vs_torch.py prints).

What the reference costs beyond the algorithm: its causal conv pads the missing history with zero frames and runs
the dense k=3 Conv3d over them (F.pad, as Wan's own CausalConv3d), so a 1-frame chunk (the whole image cases, and the
first chunk of each video) does 3x the FMAs that reach real data; every cached conv also torch.cat's its history in
front of the chunk (a copy). The Python-level overhead (a few hundred module calls per chunk) is negligible next to
the convs. The extra cases *_image_432_2d time the reference's own 2-D image path (encode_image_2d /
decode_image_2d: the last kernel slice as a Conv2d), which is what an honest single-image torch port would run.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools", "reference"))
import wan_vae as ref  # noqa: E402  (tools/reference/wan_vae.py)

# (name, mode, frames, height, width, gpu_only). Keep in sync with kCases in bench/native/wan_vae_bench.cpp; the *_2d
# cases are torch-only; gpu_only cases run with --device cuda (or when named by --case).
CASES = [
    ("wan_vae_encode_image_432", "encode", 1, 432, 432, False),
    ("wan_vae_decode_image_432", "decode", 1, 432, 432, False),
    ("wan_vae_encode_video_17x432", "encode", 17, 432, 432, False),
    ("wan_vae_decode_video_17x432", "decode", 17, 432, 432, False),
    ("wan_vae_encode_video_81x832x480", "encode", 81, 480, 832, True),
    ("wan_vae_decode_video_81x832x480", "decode", 81, 480, 832, True),
    ("wan_vae_encode_image_432_2d", "encode_2d", 1, 432, 432, False),
    ("wan_vae_decode_image_432_2d", "decode_2d", 1, 432, 432, False),
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


def median_ms(fn, iters, device):
    """1 warm-up call (none when iters == 1), then `iters` calls; the median in ms (synchronised on the GPU)."""
    def call():
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
    with torch.inference_mode():
        if iters > 1:
            call()
        times = []
        for _ in range(iters):
            t0 = time.perf_counter()
            call()
            times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def make_run(vae, mode, frames, height, width, device, dtype, channels_last):
    gen = torch.Generator().manual_seed(1)
    latent_frames = 1 + (frames - 1) // 4
    if mode.startswith("encode"):
        x = torch.rand(1, 3, frames, height, width, generator=gen) * 2 - 1  # pixels in [-1, 1]
    else:
        x = torch.randn(1, 16, latent_frames, height // 8, width // 8, generator=gen)
    x = x.to(device=device, dtype=dtype)
    if channels_last and x.dim() == 5:
        x = x.contiguous(memory_format=torch.channels_last_3d)
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
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--dtype", default=None, choices=["fp32", "bf16"],
                        help="weights and activations (default: fp32 on cpu, bf16 on cuda)")
    parser.add_argument("--channels-last", dest="channels_last", default=None, action=argparse.BooleanOptionalAction,
                        help="channels_last_3d weights and inputs (default: on for cuda)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dtype_name = args.dtype or ("bf16" if args.device == "cuda" else "fp32")
    dtype = torch.bfloat16 if dtype_name == "bf16" else torch.float32
    channels_last = args.channels_last if args.channels_last is not None else args.device == "cuda"
    if args.device == "cuda":
        torch.backends.cudnn.benchmark = True

    vae = random_vae().to(device=args.device, dtype=dtype)
    if channels_last:  # the 5-D conv weights (gammas and 2-D convs keep their layout)
        with torch.no_grad():
            for param in vae.parameters():
                if param.dim() == 5:
                    param.data = param.data.contiguous(memory_format=torch.channels_last_3d)
    label = f"{args.device} {dtype_name}{' channels_last_3d' if channels_last else ''}"
    for name, mode, frames, height, width, gpu_only in CASES:
        if args.case not in name or (gpu_only and args.device != "cuda" and not args.case):
            continue
        run = make_run(vae, mode, frames, height, width, args.device, dtype, channels_last)
        if args.device == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        try:
            ms = median_ms(run, max(1, args.iters), args.device)
        except torch.OutOfMemoryError as e:  # reported as a result: the native side may fit where torch does not
            print(f'{{"case": "{name}", "error": "out of memory", "detail": {json.dumps(str(e)[:200])}}}' if args.json
                  else f"{name:<34} out of memory ({label})", flush=True)
            continue
        peak_gib = torch.cuda.max_memory_allocated() / 2**30 if args.device == "cuda" else 0.0
        ns_per_pixel = ms * 1e6 / (frames * height * width)
        if args.json:
            print(f'{{"case": "{name}", "backend": "torch {label}", "ms": {ms:.2f}, "gflops": 0, '
                  f'"ns_per_pixel": {ns_per_pixel:.2f}, "peak_gib": {peak_gib:.3f}}}', flush=True)
        else:
            peak = f", peak {peak_gib:.2f} GiB" if args.device == "cuda" else ""
            print(f"{name:<34} {ms:10.1f} ms {ns_per_pixel:9.2f} ns/pixel (torch {torch.__version__}, {label}, "
                  f"{torch.get_num_threads()} threads{peak})", flush=True)


if __name__ == "__main__":
    main()
