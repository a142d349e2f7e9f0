#!/usr/bin/env bash
# Builds the native code with sanitizers (CPU backend only) and runs tests on it.
#
#   tools/sanitize.sh [address|thread] [extra ctest arguments...]
#   tools/sanitize.sh ava [extra ava arguments...]
#
#   address (default): AddressSanitizer + UndefinedBehaviorSanitizer (leak checking on) into build-asan/: the core and
#                      every C++ test, run with ctest.
#   thread:            ThreadSanitizer into build-tsan/, only the tests that run work on the CPU backend's thread pool
#                      (tsan_tests below: the pool itself, and kernels, models and the generation loop on it).
#   ava:               the Node addon with AddressSanitizer + UndefinedBehaviorSanitizer (cmake-js, SHOWO2_CUDA=OFF) into
#                      build-asan-addon/RelWithDebInfo/showo2.node, dist/ and build-test/ (npm run build:ts, build:test),
#                      then the ava suite on that addon (SHOWO2_BINARY) with the ASan runtime preloaded into node
#                      (LD_PRELOAD: node itself is not instrumented; child processes inherit it). Leak checking is off
#                      (detect_leaks=0: V8 and Node keep memory at exit; leaks are the C++ run's LSan and
#                      bench/leaks.mjs's job); any other report aborts the test process, which fails its file.
#                      A few test files and tests are left out (ava_skip_files, ava_skip_titles below, each with its
#                      reason), and the tests' own time limits are stretched (SHOWO2_TEST_TIME_SCALE, default 4).
#                      SHOWO2_SANITIZE_AVA_FILES="a.test.js b.test.js" runs only those files of build-test/unit/ (the
#                      exclusions still apply); ava arguments such as --match pick tests. Needs GCC (its libasan.so).
#
# Any sanitizer report fails the test that triggered it (halt_on_error / -fno-sanitize-recover), so a green run means
# no report. Builds use -O1 -g (readable stacks, tests still fast). CMAKE_BUILD_PARALLEL_LEVEL sets the build's jobs.
# docs/RELIABILITY.md ("Native code under sanitizers") says what runs where and the last results.
set -euo pipefail
cd "$(dirname "$0")/.."

kind="${1:-address}"
[ $# -gt 0 ] && shift
# The tests TSan runs: the pool itself, and kernels, models and the generation loop that fan out onto it.
tsan_tests=(thread_pool_test gemm_test attention_test conv_test linear_test norm_test qwen2_test generation_test wan_vae_test)
case "$kind" in
  address) dir=build-asan ;;
  thread) dir=build-tsan ;;
  ava) dir=build-asan-addon ;;
  *) echo "usage: tools/sanitize.sh [address|thread] [ctest arguments...] | tools/sanitize.sh ava [ava arguments...]" >&2; exit 2 ;;
esac

if [ "$kind" = ava ]; then
  # Test files of build-test/unit/ that do not run under the ASan addon, and why:
  ava_skip_files=(
    # Packs the package and installs the tarball, with its prebuilt (uninstrumented) binaries, into fresh projects:
    # a test of packaging that runs npm, tsc and the installed package's own addon, not ours.
    package-consumer.test.js
    # Reads build/Release/showo2.node's glibc imports with tools/check-glibc.mjs; loads no addon at all.
    check-glibc.test.js
  )
  # Single tests left out (ava --match '!title'), and why:
  ava_skip_titles=(
    # Measures RSS growth over load/dispose cycles: ASan's quarantine holds freed memory back (up to 256 MB) and its
    # shadow memory grows with use, so RSS says nothing about our leaks here. The same file's tests of V8's external
    # memory count and of a dropped model's finalizer do run.
    '*RSS stays flat after warm-up*'
  )

  # The addon: cmake-js (as npm run build:native, which also defines CMAKE_JS_INC so CMakeLists.txt builds the addon)
  # into its own directory; `build`, not `compile`, so a failed build is not redone from scratch.
  node node_modules/cmake-js/bin/cmake-js build --directory . --out "$dir" --config RelWithDebInfo \
    --CDSHOWO2_CUDA=OFF --CDSHOWO2_SANITIZE=address "--CDCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g"
  binary="$PWD/$dir/RelWithDebInfo/showo2.node"
  [ -f "$binary" ] || { echo "sanitize: $binary was not built" >&2; exit 1; }
  npm run build:ts
  npm run build:test
  echo "sanitize: builds took $SECONDS s"

  # The ASan runtime of the compiler that built the addon (the one in its CMake cache): it must be the first library
  # in the process, before node's own malloc is used.
  cxx=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$dir/CMakeCache.txt")
  libasan=$("${cxx:-c++}" -print-file-name=libasan.so)
  # (GCC: libasan.so. Clang links its ASan runtime statically unless told -shared-libasan, and names it differently.)
  [ -f "$libasan" ] || { echo "sanitize: no libasan.so for ${cxx:-c++} ($libasan): the ava kind needs GCC" >&2; exit 1; }

  files=()
  if [ -n "${SHOWO2_SANITIZE_AVA_FILES:-}" ]; then
    for f in $SHOWO2_SANITIZE_AVA_FILES; do files+=("build-test/unit/$f"); done
  else
    files=(build-test/unit/*.test.js)
  fi
  selected=()
  for f in "${files[@]}"; do
    skip=0
    for s in "${ava_skip_files[@]}"; do [ "$(basename "$f")" = "$s" ] && skip=1; done
    [ "$skip" = 1 ] || selected+=("$f")
  done
  match=()
  for t in "${ava_skip_titles[@]}"; do match+=(--match "!$t"); done

  export SHOWO2_BINARY="$binary"
  # The tests' own watchdogs and "not as long as the work" bounds (test/helpers.ts, timeScale) stretch by this much:
  # under ASan on a busy 2-core machine the concurrency scenario takes 2 to 3 minutes, against a 2-minute watchdog.
  export SHOWO2_TEST_TIME_SCALE="${SHOWO2_TEST_TIME_SCALE:-4}"
  export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1}"
  # abort_on_error for UBSan too: a report is then a SIGABRT, never an exit code 1 that a test expecting a failing
  # child process (the CLI's errors) could take for the expected one.
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:abort_on_error=1}"
  echo "sanitize: ava on $SHOWO2_BINARY, ${#selected[@]} files; ASAN_OPTIONS=$ASAN_OPTIONS"
  # The tests run several times slower under ASan: a longer inactivity timeout than package.json's 2 minutes.
  started=$SECONDS
  status=0
  LD_PRELOAD="$libasan${LD_PRELOAD:+ $LD_PRELOAD}" \
    node node_modules/ava/entrypoints/cli.mjs --timeout 10m "${match[@]}" "$@" "${selected[@]}" || status=$?
  echo "sanitize: ava took $((SECONDS - started)) s (exit code $status)"
  exit "$status"
fi

generator=()
if [ -z "${CMAKE_GENERATOR:-}" ] && command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi
cmake -S . -B "$dir" "${generator[@]}" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
  -DSHOWO2_CUDA=OFF -DSHOWO2_BUILD_BENCH=OFF -DSHOWO2_SANITIZE="$kind"
if [ "$kind" = thread ]; then
  cmake --build "$dir" --target "${tsan_tests[@]}"
else
  cmake --build "$dir"
fi
echo "sanitize: build took $SECONDS s"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}"
# Several pool threads even on a one-core runner, so TSan sees real concurrency.
export SHOWO2_NUM_THREADS="${SHOWO2_NUM_THREADS:-4}"

started=$SECONDS
status=0
if [ "$kind" = thread ]; then
  pattern="^($(IFS='|'; echo "${tsan_tests[*]}"))\$"
  ctest --test-dir "$dir" --output-on-failure -R "$pattern" "$@" || status=$?
else
  ctest --test-dir "$dir" --output-on-failure "$@" || status=$?
fi
echo "sanitize: ctest took $((SECONDS - started)) s (exit code $status)"
exit "$status"
