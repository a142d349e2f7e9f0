#!/usr/bin/env python3
"""PyTorch baseline for bench/native/linear_bench.cpp: the same cases, names, thread count and JSON lines.

    python3 bench/torch/linear_baseline.py [--threads N] [--json]

Each case times torch.nn.functional.linear in f32 (MKL/oneDNN sgemm on x86) with the same methodology as the native
bench: warm-up, then at least 10 iterations and at least 1 s, reporting the median.
"""
import argparse
import os

import torch
import torch.nn.functional as F
from common import median_ms, report

# (name, M, K, N, weight dtype). Keep in sync with kCases in bench/native/linear_bench.cpp.
CASES = [
    ("linear_f32_M512_K1536_N1536", 512, 1536, 1536, "f32"),
    ("linear_f32_M512_K1536_N8960", 512, 1536, 8960, "f32"),
    ("linear_f32_M1_K1536_N8960", 1, 1536, 8960, "f32"),
    ("linear_bf16w_M512_K1536_N1536", 512, 1536, 1536, "bf16"),
]

def time_case(m, k, n, weight_dtype):
    gen = torch.Generator().manual_seed(1234)
    x = torch.randn(m, k, generator=gen, dtype=torch.float32)
    weight = torch.randn(n, k, generator=gen, dtype=torch.float32) * (1.0 / k**0.5)
    if weight_dtype == "bf16":
        # The bf16-weight baseline: round the weight to bf16 (what the checkpoint holds), then upcast it to f32 once,
        # outside the timed loop, so torch runs its best f32 path (MKL sgemm). torch has no faster f32-x/bf16-w path.
        weight = weight.to(torch.bfloat16).to(torch.float32)
    bias = torch.randn(n, generator=gen, dtype=torch.float32)

    def run_linear():
        return F.linear(x, weight, bias)

    return median_ms(run_linear, warmup=3, min_iters=10, min_seconds=1.0)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads (default: all)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per case")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    for name, m, k, n, weight_dtype in CASES:
        ms = time_case(m, k, n, weight_dtype)
        gflops = 2.0 * m * n * k / (ms * 1e-3) / 1e9
        report(args.json, name, ms, gflops)


if __name__ == "__main__":
    main()
