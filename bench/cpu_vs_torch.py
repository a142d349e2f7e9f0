"""CPU benchmarks: showo2's kernels against PyTorch on the same machine and thread count, printed as ratios.

Runs each C++ benchmark (bench/native/<family>_bench, built by plain CMake) and its PyTorch twin
(bench/torch/<family>_baseline.py) with the same --threads, joins the JSON lines by case name and prints
  case, showo2 ms, torch ms, speed ratio (torch_ms / showo2_ms: >1 means showo2 is faster), GFLOP/s.
The goal recorded in bench/RESULTS.md is a ratio >= 0.8 for every case.

Usage:
  cmake -S . -B build-native -G Ninja && cmake --build build-native
  python3 bench/cpu_vs_torch.py --build build-native --threads 2 [--families linear,attention,conv]
Needs torch (never needed by CI or the tests).
"""
import argparse
import json
import os
import platform
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


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
        theirs = json_lines([sys.executable, os.path.join(HERE, "torch", f"{family}_baseline.py"),
                             "--threads", str(args.threads), "--json"])
        for case, row in ours.items():
            base = theirs.get(case)
            ratio = base["ms"] / row["ms"] if base else None
            joined.append({"case": case, "showo2_ms": row["ms"], "torch_ms": base["ms"] if base else None,
                           "ratio": ratio, "gflops": row.get("gflops")})
    print(f"{'case':44s} {'showo2 ms':>10s} {'torch ms':>10s} {'ratio':>7s} {'GFLOP/s':>8s}")
    worst = None
    for r in joined:
        ratio = f"{r['ratio']:.2f}x" if r["ratio"] else "n/a"
        torch_ms = f"{r['torch_ms']:.2f}" if r["torch_ms"] else "n/a"
        gf = f"{r['gflops']:.1f}" if r.get("gflops") else ""
        print(f"{r['case']:44s} {r['showo2_ms']:10.2f} {torch_ms:>10s} {ratio:>7s} {gf:>8s}")
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
