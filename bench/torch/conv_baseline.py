#!/usr/bin/env python3
"""PyTorch baseline for bench/native/conv_bench.cpp: the same cases, names, thread count and JSON lines.

    python3 bench/torch/conv_baseline.py [--threads N] [--json]

Each case times torch.nn.functional.conv3d / conv2d in f32 (oneDNN on x86) with the native bench's method: warm-up,
then at least 5 iterations and at least 1 s, reporting the median. The Wan VAE's causal time padding (front 2, back 0;
spec §3.1) is applied once with F.pad before timing, as the reference CausalConv3d does before its conv, so the timed
call is the dense conv over the pre-padded input; the spatial padding 1 is the conv's own. GFLOP/s count the dense
conv (2*O*C*KT*KH*KW per output element) for both implementations, so the two columns compare like for like.
"""
import argparse
import os

import torch
import torch.nn.functional as F
from common import median_ms, report

# (name, C, O, T, H, W). T = 0 marks a conv2d case. Keep in sync with kCases in bench/native/conv_bench.cpp.
CASES = [
    ("conv3d_C384_O384_k3_T3_54x54", 384, 384, 3, 54, 54),
    ("conv2d_C384_O384_k3_54x54", 384, 384, 0, 54, 54),
]

def time_case(c, o, t, h, w):
    gen = torch.Generator().manual_seed(1234)
    k = 3
    bias = torch.randn(o, generator=gen)
    if t:
        x = torch.randn(1, c, t, h, w, generator=gen)
        weight = torch.randn(o, c, k, k, k, generator=gen) * (1.0 / (c * k**3) ** 0.5)
        x = F.pad(x, (0, 0, 0, 0, 2, 0))  # (w_left, w_right, h_top, h_bottom, t_front, t_back): causal, outside timing

        def run():
            return F.conv3d(x, weight, bias, padding=(0, 1, 1))

        flops = 2.0 * o * c * k**3 * t * h * w
    else:
        x = torch.randn(1, c, h, w, generator=gen)
        weight = torch.randn(o, c, k, k, generator=gen) * (1.0 / (c * k**2) ** 0.5)

        def run():
            return F.conv2d(x, weight, bias, padding=1)

        flops = 2.0 * o * c * k**2 * h * w

    ms = median_ms(run, warmup=2, min_iters=5, min_seconds=1.0)
    return ms, flops / (ms * 1e-3) / 1e9


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads (default: all)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per case")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    for name, c, o, t, h, w in CASES:
        ms, gflops = time_case(c, o, t, h, w)
        report(args.json, name, ms, gflops)


if __name__ == "__main__":
    main()
