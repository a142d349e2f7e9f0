#!/usr/bin/env bash
# One full build-test-bench cycle on the lent GPU machine (see /work/.library/device): configure and build the core
# with CUDA for Hopper, run every C++ test, run compute-sanitizer over the CUDA tests, then the benchmarks.
# Everything lands in $OUT (logs + JSON). Usage on the device:  bash tools/device/gpu_cycle.sh
set -uo pipefail
OUT=${OUT:-/tmp/showo2-out}
mkdir -p "$OUT"
BUILD=build-gpu
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
cmake -S . -B "$BUILD" -G Ninja -DSHOWO2_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a > "$OUT/configure.log" 2>&1 \
  || { tail -50 "$OUT/configure.log"; exit 1; }
cmake --build "$BUILD" -j "$(nproc)" > "$OUT/build.log" 2>&1 || { tail -80 "$OUT/build.log"; exit 1; }
echo "== ctest"
ctest --test-dir "$BUILD" --output-on-failure -j 4 2>&1 | tee "$OUT/ctest.log" | tail -25
echo "== compute-sanitizer (memcheck) over the CUDA tests"
for t in "$BUILD"/*_cuda_test; do
  [ -x "$t" ] || continue
  compute-sanitizer --tool memcheck --error-exitcode 3 "$t" > "$OUT/sanitizer_$(basename "$t").log" 2>&1
  echo "$(basename "$t"): exit $? ($(grep -c 'ERROR SUMMARY: 0 errors' "$OUT/sanitizer_$(basename "$t").log") clean summaries)"
done
echo "== CPU kernels vs torch at the machine's thread count"
python3 bench/cpu_vs_torch.py --build "$BUILD" --threads "$(nproc)" --json "$OUT/cpu_vs_torch.jsonl" 2>&1 | tail -15
echo "== GPU torch baselines"
PYTHONUNBUFFERED=1 python3 bench/gpu/torch_baselines.py --json "$OUT/torch_baselines.jsonl" 2>&1 | tee "$OUT/baselines.log"
