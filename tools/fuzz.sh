#!/usr/bin/env bash
# Builds and runs the libFuzzer harnesses of the native parsers (test/fuzz/*_fuzz.cpp, one per parser).
#
#   tools/fuzz.sh build                       configure (clang, -DSHOWO2_FUZZ=ON, CPU only) and build into build-fuzz/
#   tools/fuzz.sh corpus                      (re)make the seed corpora build-fuzz/seeds/<harness>/ from the fixtures
#   tools/fuzz.sh run [RUNS] [harness...]     build, seed, then run each harness for RUNS executions (default 1000000)
#   tools/fuzz.sh time SECONDS [harness...]   the same for SECONDS each
#   tools/fuzz.sh smoke                       the CI run: SHOWO2_FUZZ_SMOKE_SECONDS (default 8) per harness
#   tools/fuzz.sh list                        the harness names
#
#   tools/fuzz.sh js run [RUNS] [target...]   the JavaScript/WebAssembly parsers (test/fuzz/js/: image_decode,
#   tools/fuzz.sh js time SECONDS [target...] visual_input, tokenizer) with the mutation fuzzer in
#   tools/fuzz.sh js smoke                    test/fuzz/js/run.ts; needs `npm ci` (it builds dist/ and build-test/)
#
# Harnesses run one at a time. Each keeps its grown corpus in build-fuzz/corpus/<harness>/ (reused by later runs) and
# reads build-fuzz/seeds/<harness>/ plus its dictionary (test/fuzz/*.dict). A crash, a sanitizer report, a leak, an
# input slower than -timeout (a hang) or a run over -rss_limit_mb / -malloc_limit_mb (a memory blow-up) is a finding:
# libFuzzer saves the input to build-fuzz/findings/<harness>/ and the script exits non-zero after the remaining
# harnesses, with a table of executions and exec/s per harness. Reproduce a finding with
#   build-fuzz/<harness> build-fuzz/findings/<harness>/<file>
# and fix it with a regression test in the matching test/native/*_test.cpp.
#
# Needs clang and libFuzzer with the ASan/UBSan runtimes (Debian/Ubuntu: clang libclang-rt-<version>-dev), CMake,
# and python3 (the seed corpora take headers and data.pkl out of the fixtures). On a shared machine run it under
# `nice -n 19`; CMAKE_BUILD_PARALLEL_LEVEL sets the build's jobs, SHOWO2_FUZZ_BUILD_DIR another folder than build-fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir="${SHOWO2_FUZZ_BUILD_DIR:-build-fuzz}"
harnesses=(json safetensors sharded_index torch_zip pickle torch_checkpoint config)

# Largest input per harness: above what the seeds need, small enough to keep executions fast.
max_len_of() {
  case "$1" in
    config | sharded_index) echo 16384 ;;
    *) echo 65536 ;;
  esac
}
# Dictionaries per harness (concatenated into build-fuzz/dicts/<harness>.dict).
dicts_of() {
  case "$1" in
    json) echo json ;;
    safetensors) echo "safetensors json" ;;
    sharded_index) echo "sharded_index json" ;;
    config) echo "config json" ;;
    pickle) echo pickle ;;
    torch_zip) echo zip ;;
    torch_checkpoint) echo "zip pickle" ;;
  esac
}

usage() {
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

check_harnesses() {
  local h known
  for h in "$@"; do
    known=0
    for k in "${harnesses[@]}"; do [ "$h" = "$k" ] && known=1; done
    if [ "$known" = 0 ]; then echo "fuzz: unknown harness '$h' (known: ${harnesses[*]})" >&2; exit 2; fi
  done
}

build() {
  local cxx="${CXX_FUZZ:-}" cc
  if [ -z "$cxx" ]; then
    for candidate in clang++ clang++-19 clang++-18 clang++-17 clang++-16 clang++-15 clang++-14; do
      if command -v "$candidate" >/dev/null 2>&1; then cxx=$candidate; break; fi
    done
  fi
  if [ -z "$cxx" ]; then
    echo "fuzz: no clang++ found (install clang and libclang-rt-<version>-dev, or set CXX_FUZZ)" >&2
    exit 1
  fi
  cc="${cxx/clang++/clang}"
  local generator=()
  if [ -z "${CMAKE_GENERATOR:-}" ] && command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi
  # -O1 and line tables: fast enough to fuzz, stacks that name the line. CPU only: nvcc cannot take libFuzzer flags.
  cmake -S . -B "$build_dir" "${generator[@]}" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" \
    -DSHOWO2_FUZZ=ON -DSHOWO2_CUDA=OFF -DSHOWO2_BUILD_TESTS=OFF -DSHOWO2_BUILD_BENCH=OFF >/dev/null
  local targets=()
  for h in "${harnesses[@]}"; do targets+=("${h}_fuzz"); done
  cmake --build "$build_dir" --target "${targets[@]}"
}

# Seed corpora: the real fixtures (whole when small; big safetensors cut down to their first tensors with the header
# rewritten to match; data.pkl taken out of every torch file, gzipped or not), plus the hand-made seeds committed in
# test/fuzz/seeds/<harness>/. Nothing generated is committed.
corpus() {
  rm -rf "$build_dir/seeds" "$build_dir/dicts"
  mkdir -p "$build_dir/dicts"
  for h in "${harnesses[@]}"; do
    mkdir -p "$build_dir/seeds/$h"
    if [ -d "test/fuzz/seeds/$h" ]; then cp test/fuzz/seeds/"$h"/* "$build_dir/seeds/$h/"; fi
    : >"$build_dir/dicts/$h.dict"
    for d in $(dicts_of "$h"); do cat "test/fuzz/$d.dict" >>"$build_dir/dicts/$h.dict"; done
  done
  python3 - "$build_dir/seeds" <<'EOF'
import gzip, io, json, os, pathlib, struct, sys, zipfile

out = pathlib.Path(sys.argv[1])
small = 64 * 1024
fixtures = pathlib.Path("test/fixtures")
files = sorted(p for p in list(fixtures.rglob("*")) + list(pathlib.Path("models").rglob("*")) if p.is_file())

def put(harness, source, data):
    name = str(source).replace("/", "_")
    (out / harness / name).write_bytes(data)

def is_zip(data):
    return data[:4] == b"PK\x03\x04"

for path in files:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
        path = path.with_suffix("")
    if path.suffix == ".json":
        if len(data) <= small:
            put("json", path, data)
        if path.name == "config.json" or path.name.endswith("_config.json"):
            put("config", path, data)
        if path.name.endswith(".index.json"):
            put("sharded_index", path, data)
    elif path.suffix == ".safetensors" and len(data) >= 8:
        n = struct.unpack("<Q", data[:8])[0]
        header = data[8:8 + n]
        put("json", str(path) + ".header.json", header)
        if len(data) <= small:
            put("safetensors", path, data)
            continue
        # A big file: keep the tensors whose bytes lie in the first 16 KiB of data, same offsets, header rewritten.
        try:
            doc = json.loads(header)
        except ValueError:
            continue
        keep = {k: v for k, v in doc.items() if k == "__metadata__" or v["data_offsets"][1] <= 16384}
        end = max([v["data_offsets"][1] for k, v in keep.items() if k != "__metadata__"] or [0])
        text = json.dumps(keep, separators=(",", ":")).encode()
        text += b" " * (-(8 + len(text)) % 8)
        put("safetensors", str(path) + ".trimmed", struct.pack("<Q", len(text)) + text + data[8 + n:8 + n + end])
    elif is_zip(data):
        if len(data) <= small:
            put("torch_zip", path, data)
            put("torch_checkpoint", path, data)
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                for name in z.namelist():
                    if name.endswith("/data.pkl"):
                        put("pickle", str(path) + ".data.pkl", z.read(name))
        except (zipfile.BadZipFile, NotImplementedError, ValueError, OSError):
            pass  # the deliberately damaged fixtures
    elif path.suffix in (".bin", ".pth") and len(data) <= small:
        put("torch_checkpoint", path, data)  # legacy and not-a-zip files: the format detection's other branches
EOF
  for h in "${harnesses[@]}"; do
    echo "fuzz: $h: $(find "$build_dir/seeds/$h" -type f | wc -l) seeds"
  done
}

# run_all MODE VALUE [harness...]: MODE is runs or time.
run_all() {
  local mode=$1 value=$2
  shift 2
  local selected=("$@")
  if ((${#selected[@]} == 0)); then selected=("${harnesses[@]}"); fi
  check_harnesses "${selected[@]}"
  build
  corpus
  # Leak checking on; UBSan stops at the first report (the build also compiles with -fno-sanitize-recover).
  export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
  local limit
  if [ "$mode" = runs ]; then limit="-runs=$value"; else limit="-max_total_time=$value"; fi

  local failed=() rows=()
  for h in "${selected[@]}"; do
    local corpus_dir="$build_dir/corpus/$h" findings="$build_dir/findings/$h" log="$build_dir/logs/$h.log"
    mkdir -p "$corpus_dir" "$findings" "$build_dir/logs"
    echo "fuzz: $h ($limit)"
    local start=$SECONDS rc=0
    # -timeout: one input slower than 10 s is a hang. -rss_limit_mb / -malloc_limit_mb: memory blow-ups (inputs are
    # at most 64 KiB; ASan's own overhead fits well under the limit).
    "$build_dir/${h}_fuzz" "$limit" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
      -max_len="$(max_len_of "$h")" -dict="$build_dir/dicts/$h.dict" -artifact_prefix="$findings/" \
      -print_final_stats=1 "$corpus_dir" "$build_dir/seeds/$h" >"$log" 2>&1 || rc=$?
    local execs rate rss units seconds=$((SECONDS - start))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -n1)
    units=$(find "$corpus_dir" -type f | wc -l)
    local result=ok
    if [ "$rc" != 0 ] || [ -n "$(ls -A "$findings")" ]; then
      result="FINDING (exit $rc; $findings/)"
      failed+=("$h")
      grep -E "ERROR|SUMMARY|fuzz invariant|unexpected error code|runtime error|deadly signal|terminate" "$log" |
        head -n 20 >&2 || true
      echo "fuzz: $h: full log in $log" >&2
    fi
    rows+=("$(printf '%-17s %12s %9s %8s %9s %7s  %s' "$h" "${execs:-?}" "${rate:-?}" "${rss:-?}" "$units" \
      "${seconds}s" "$result")")
  done

  echo
  printf '%-17s %12s %9s %8s %9s %7s  %s\n' harness executions exec/s rss_mb corpus time result
  printf '%s\n' "${rows[@]}"
  if ((${#failed[@]})); then
    echo "fuzz: findings in: ${failed[*]}" >&2
    exit 1
  fi
}

# The JavaScript side: compile the package and the fuzzer, then run.js (its own watchdog, corpus in
# build-fuzz/js-corpus/, findings in build-fuzz/js-findings/, reproduce with run.js --reproduce FILE TARGET).
js() {
  local sub="${1:-}" args=()
  [ $# -gt 0 ] && shift
  case "$sub" in
    run)
      local runs=1000000
      if [ $# -gt 0 ] && [[ "$1" =~ ^[0-9]+$ ]]; then runs=$1; shift; fi
      args=(--runs "$runs" "$@")
      ;;
    time)
      [ $# -gt 0 ] && [[ "$1" =~ ^[0-9]+$ ]] || usage
      args=(--seconds "$1")
      shift
      args+=("$@")
      ;;
    smoke) args=(--seconds "${SHOWO2_FUZZ_SMOKE_SECONDS:-8}") ;;
    *) usage ;;
  esac
  npx tsc -p tsconfig.json
  npx tsc -p tsconfig.test.json
  SHOWO2_FUZZ_BUILD_DIR="$build_dir" node build-test/fuzz/js/run.js "${args[@]}"
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
  js) js "$@" ;;
  build) build ;;
  corpus) corpus ;;
  list) printf '%s\n' "${harnesses[@]}" ;;
  run)
    runs=1000000
    if [ $# -gt 0 ] && [[ "$1" =~ ^[0-9]+$ ]]; then runs=$1; shift; fi
    run_all runs "$runs" "$@"
    ;;
  time)
    [ $# -gt 0 ] && [[ "$1" =~ ^[0-9]+$ ]] || usage
    seconds=$1
    shift
    run_all time "$seconds" "$@"
    ;;
  smoke) run_all time "${SHOWO2_FUZZ_SMOKE_SECONDS:-8}" ;;
  *) usage ;;
esac
