#!/usr/bin/env bash
# One full build-test-bench cycle on the lent GPU machine (see /work/.library/device), in one command:
#
#   bash tools/device/gpu_cycle.sh [all|test|bench|vae]   (from the repository root, on the device; logs in $OUT)
#
# A device call runs at most 10 minutes, so the cycle also comes in stages that each fit one call on a warm machine
# (build-gpu/ stays between calls while the machine is held): `test` (configure, build, ctest, memcheck, the ava
# suite), `bench` (the kernel benchmarks and PyTorch's baselines, racecheck), `vae` (the VAE end to end). `all` (the
# default) runs the three in order. Each stage builds first if build-gpu/ is missing or stale (ninja: a no-op else).
#
# Steps: find cuBLASLt (headers for the build, libcublasLt.so.13 for run time: the device has no network, so they come
# from a pip-installed nvidia-cublas / torch on the machine, or headers carried in .devcarry/cublas/include); configure
# and build the core with CUDA for Hopper; run every C++ test (ctest, the *_cuda_test ones included, which skip only
# without a GPU); compute-sanitizer (memcheck) over each CUDA test; the ava suite on the CUDA backend (SHOWO2_DEVICE=cuda)
# when a carried Node is present (.devcarry/, see tools/device/node_suite.sh); then the benchmarks: PyTorch's baselines,
# racecheck over the attention test, and showo2's own GPU kernel benchmarks (build-gpu/*_cuda_bench).
# Last, the Wan VAE end to end (issue [cuda-vae]): bench/native/wan_vae_bench --backend cuda against
# bench/torch/wan_vae_baseline.py --device cuda (bf16, channels_last_3d, cuDNN), with peak memory, and one per-op breakdown.
# To carry the headers from the developer machine:  mkdir -p .devcarry && cp -r build/_deps/cublas .devcarry/cublas
# (the addon build fetches them there), and name .devcarry in the device call's carry list.
set -uo pipefail
STAGE=${1:-all}
case "$STAGE" in all|test|bench|vae) ;; *) echo "usage: $0 [all|test|bench|vae]" >&2; exit 2 ;; esac
runs() { [ "$STAGE" = all ] || [ "$STAGE" = "$1" ]; }
OUT=${OUT:-/tmp/showo2-out}
mkdir -p "$OUT"
BUILD=build-gpu
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
# cuBLASLt: the first pip-installed copy (nvidia-cublas wheel, torch's dependency) for both headers and library.
find_cublas() {
  python3 - <<'PY'
import glob, site, sys
roots = site.getsitepackages() + [site.getusersitepackages()] + sys.path
inc = lib = "-"
for r in roots:
    for h in glob.glob(r + "/nvidia/*/include/cublasLt.h"):
        inc = inc if inc != "-" else h.rsplit("/", 1)[0]
    for l in glob.glob(r + "/nvidia/*/lib/libcublasLt.so.13"):
        lib = lib if lib != "-" else l
print(inc, lib)
PY
}
read -r CUBLAS_INCLUDE CUBLAS_LIB <<< "$(find_cublas 2>/dev/null || echo '- -')"
if [ "$CUBLAS_INCLUDE" = "-" ] && [ -f .devcarry/cublas/include/cublasLt.h ]; then CUBLAS_INCLUDE=$PWD/.devcarry/cublas/include; fi
if [ "$CUBLAS_LIB" != "-" ]; then export SHOWO2_CUBLASLT_PATH=$CUBLAS_LIB; fi
echo "cuBLASLt headers: $CUBLAS_INCLUDE; library: ${SHOWO2_CUBLASLT_PATH:-found by the dynamic loader (libcublasLt.so.13)}" | tee "$OUT/cublas.txt"
CUBLAS_ARGS=(-DSHOWO2_FETCH_CUBLAS_HEADERS=OFF)
if [ "$CUBLAS_INCLUDE" != "-" ]; then CUBLAS_ARGS+=(-DSHOWO2_CUBLAS_INCLUDE_DIR="$CUBLAS_INCLUDE"); fi
cmake -S . -B "$BUILD" -G Ninja -DSHOWO2_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a "${CUBLAS_ARGS[@]}" \
  > "$OUT/configure.log" 2>&1 || { tail -50 "$OUT/configure.log"; exit 1; }
cmake --build "$BUILD" -j "$(nproc)" > "$OUT/build.log" 2>&1 || { tail -80 "$OUT/build.log"; exit 1; }
if runs test; then
echo "== ctest"
ctest --test-dir "$BUILD" --output-on-failure -j 4 2>&1 | tee "$OUT/ctest.log" | tail -25
echo "== compute-sanitizer (memcheck) over the CUDA tests"
# 60 s per test at most (memcheck slows kernels by 10-100x; the full-size VAE cases would take minutes): exit 124
# means cut off, and the log still holds the clean or failing summaries of what ran.
for t in "$BUILD"/*_cuda_test; do
  [ -x "$t" ] || continue
  timeout 60 compute-sanitizer --tool memcheck --error-exitcode 3 "$t" > "$OUT/sanitizer_$(basename "$t").log" 2>&1
  echo "$(basename "$t"): exit $? ($(grep -c 'ERROR SUMMARY: 0 errors' "$OUT/sanitizer_$(basename "$t").log") clean summaries)"
done
if [ -f .devcarry/node.xz ]; then
  echo "== ava suite on the CUDA backend (SHOWO2_DEVICE=cuda)"
  SHOWO2_DEVICE=cuda bash tools/device/node_suite.sh 2>&1 | tee "$OUT/ava_cuda.log" | tail -40
else
  echo "== ava suite skipped: no carried Node (.devcarry/node.xz; see tools/device/node_suite.sh)"
fi
fi
if runs bench; then
echo "== CPU kernels vs torch at the machine's thread count"
python3 bench/cpu_vs_torch.py --build "$BUILD" --threads "$(nproc)" --json "$OUT/cpu_vs_torch.jsonl" 2>&1 | tail -15
echo "== GPU torch baselines"
PYTHONUNBUFFERED=1 python3 bench/gpu/torch_baselines.py --json "$OUT/torch_baselines.jsonl" 2>&1 | tee "$OUT/baselines.log"
echo "== compute-sanitizer (racecheck) over the attention kernels (shared-memory tiles: v2, v3, split-KV)"
timeout 240 compute-sanitizer --tool racecheck --error-exitcode 3 "$BUILD/attention_cuda_test" > "$OUT/racecheck_attention.log" 2>&1
echo "attention_cuda_test racecheck (240 s at most; exit 124 = cut off): exit $? ($(grep -c 'RACECHECK SUMMARY: 0 hazards' "$OUT/racecheck_attention.log") clean summaries)"
echo "== showo2 GPU kernels (same case names as the torch rows: compare attn_<case>_showo2_* with attn_<case>_sdpa_*)"
for b in "$BUILD"/*_cuda_bench; do
  [ -x "$b" ] || continue
  "$b" 2>&1 | tee "$OUT/$(basename "$b").log"
  "$b" --json > "$OUT/$(basename "$b").jsonl" 2>/dev/null
done
fi
if runs vae; then
echo "== the Wan VAE end to end: showo2 (CUDA backend) against the PyTorch reference (bf16, channels_last_3d, cuDNN)"
# The fast configuration (BF16 tensor-core convs on channels-last BF16 activations: the precision, layout and memory
# of torch's bf16 channels_last_3d run) on every case; F32 activations, the contiguous layout and F32 convs on the
# 432 cases for the comparison.
"$BUILD/wan_vae_bench" --backend cuda --conv bf16 --layout channels-last --activations bf16 --iters 2 2>&1 | tee "$OUT/wan_vae_bench_cuda.log"
"$BUILD/wan_vae_bench" --backend cuda --conv bf16 --layout channels-last --case 432 --iters 2 2>&1 | tee "$OUT/wan_vae_bench_cuda_f32act.log"
"$BUILD/wan_vae_bench" --backend cuda --conv bf16 --case 432 --iters 2 2>&1 | tee "$OUT/wan_vae_bench_cuda_bf16conv_contiguous.log"
"$BUILD/wan_vae_bench" --backend cuda --conv f32 --case 432 --iters 2 2>&1 | tee "$OUT/wan_vae_bench_cuda_f32conv_contiguous.log"
PYTHONUNBUFFERED=1 python3 bench/torch/wan_vae_baseline.py --device cuda --iters 2 2>&1 | tee "$OUT/wan_vae_torch_cuda.log"
"$BUILD/wan_vae_bench" --backend cuda --conv bf16 --layout channels-last --activations bf16 --iters 1 --case decode_video_17x432 --verbose 2>&1 | tail -40 > "$OUT/wan_vae_bench_cuda_breakdown.log"
fi
