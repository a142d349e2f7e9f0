"""Shared timing and reporting for the PyTorch CPU baselines (bench/torch/*_baseline.py).

Same method as bench/native/bench_util.h: warm-up calls, then at least `min_iters` calls and at least `min_seconds`,
reporting the median; one JSON object per case with --json (read by bench/cpu_vs_torch.py).
"""
import json
import statistics
import time

import torch


def median_ms(fn, warmup=3, min_iters=10, min_seconds=1.0):
    with torch.inference_mode():
        for _ in range(warmup):
            fn()
        times = []
        start = time.perf_counter()
        while len(times) < min_iters or time.perf_counter() - start < min_seconds:
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def report(as_json, name, ms, gflops):
    if as_json:
        print(json.dumps({"case": name, "ms": round(ms, 4), "gflops": round(gflops, 2)}), flush=True)
    else:
        print(f"{name:<40} {ms:10.3f} ms {gflops:9.2f} GFLOP/s (torch, {torch.get_num_threads()} threads)",
              flush=True)
