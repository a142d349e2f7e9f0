"""CPU benchmarks: showo2's kernels against PyTorch on the same machine and thread count, printed as ratios.

Runs each C++ benchmark (bench/native/<family>_bench, built by plain CMake) and its PyTorch twin
(bench/torch/<family>_baseline.py) with the same --threads, joins the JSON lines by case name and prints
  case, showo2 ms, torch ms, speed ratio (torch_ms / showo2_ms: >1 means showo2 is faster), GFLOP/s, and ns per
  output pixel for the families that report it (wan_vae).
The goal recorded in bench/RESULTS.md is a ratio >= 0.8 for every case.

Families: linear, attention, conv (the default; a few minutes at 2 threads) and wan_vae (opt-in: the full-size
Wan2.1 VAE encoding/decoding a 432x432 image and a 17-frame 432x432 video through the reference's chunked path,
1 warm-up + 3 timed calls per case on both sides; at 2 threads on the Zen 3 dev machine one video call takes 2-4
minutes, so the family takes about 50 minutes. For one call per case, run the two sides directly:
bench/native/wan_vae_bench --iters 1 and bench/torch/wan_vae_baseline.py --iters 1; see bench/RESULTS.md), and qwen2
(opt-in: the Qwen2.5-1.5B decoder with random bf16 weights, prefill of 128 and 512 tokens and greedy decode, against
transformers' Qwen2ForCausalLM in bf16; about 3 GB of weights per side and ~5 minutes at 2 threads. Its rows without
a torch twin are the machine's memory read bandwidth and the decode step's bandwidth bound, weight bytes / bandwidth;
the goal there is decode >= 1x torch and within 2x of the bound), and generation (opt-in: one guided Euler evaluation
and a whole N = 5 generation of the tiny Show-o2, and one evaluation with the published 1.5B shapes and random bf16
weights, ~5.7 GB per side; bench/native/generation_bench against bench/torch/showo2_gen_baseline.py. The torch side
has only the reference's plain "_full" rows; the C++ "_reuse" rows (prefix caching, spec §12) print with no twin).

Usage:
  cmake -S . -B build-native -G Ninja && cmake --build build-native
  python3 bench/cpu_vs_torch.py --build build-native --threads 2 [--families linear,attention,conv,wan_vae,qwen2,generation]
Needs torch (never needed by CI or the tests).
"""
import argparse
import json
import os
import platform
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# The PyTorch twin of each family is torch/<family>_baseline.py unless named here.
BASELINE_SCRIPTS = {"generation": "showo2_gen_baseline.py"}


def json_lines(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    rows = {}
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("{"):
            row = json.loads(line)
            rows[row["case"]] = row
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build-native", help="plain CMake build directory with the bench binaries")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--families", default="linear,attention,conv")
    ap.add_argument("--json", help="write the joined rows to this file")
    args = ap.parse_args()

    import torch  # noqa: F401  (fail early with a clear message when torch is missing)

    print(f"machine: {platform.machine()} {platform.processor() or ''} cpus={os.cpu_count()} threads={args.threads}"
          f" torch={torch.__version__}")
    joined = []
    for family in args.families.split(","):
        binary = os.path.join(args.build, f"{family}_bench")
        if not os.path.exists(binary):
            print(f"{family}: {binary} not built, skipped")
            continue
        ours = json_lines([binary, "--threads", str(args.threads), "--json"])
        script = BASELINE_SCRIPTS.get(family, f"{family}_baseline.py")
        theirs = json_lines([sys.executable, os.path.join(HERE, "torch", script),
                             "--threads", str(args.threads), "--json"])
        for case, row in ours.items():
            base = theirs.get(case)
            ratio = base["ms"] / row["ms"] if base else None
            joined.append({"case": case, "showo2_ms": row["ms"], "torch_ms": base["ms"] if base else None,
                           "ratio": ratio, "gflops": row.get("gflops"), "ns_per_pixel": row.get("ns_per_pixel"),
                           "tokens_per_s": row.get("tokens_per_s"), "gbps": row.get("gbps")})
    print(f"{'case':44s} {'showo2 ms':>10s} {'torch ms':>10s} {'ratio':>7s} {'GFLOP/s':>8s} {'ns/pixel':>9s}")
    worst = None
    for r in joined:
        ratio = f"{r['ratio']:.2f}x" if r["ratio"] else "n/a"
        torch_ms = f"{r['torch_ms']:.2f}" if r["torch_ms"] else "n/a"
        gf = f"{r['gflops']:.1f}" if r.get("gflops") else ""
        ns = f"{r['ns_per_pixel']:.1f}" if r.get("ns_per_pixel") is not None else ""
        extra = ""
        if r.get("tokens_per_s") is not None:
            extra = f"  {r['tokens_per_s']:.2f} tokens/s"
        if r.get("gbps") is not None:
            extra = f"  {r['gbps']:.1f} GB/s"
        print(f"{r['case']:44s} {r['showo2_ms']:10.2f} {torch_ms:>10s} {ratio:>7s} {gf:>8s} {ns:>9s}{extra}")
        if r["ratio"] is not None:
            worst = r["ratio"] if worst is None else min(worst, r["ratio"])
    if worst is not None:
        print(f"worst ratio {worst:.2f}x (goal >= 0.80x)")
    if args.json:
        with open(args.json, "w") as f:
            for r in joined:
                f.write(json.dumps(r) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
