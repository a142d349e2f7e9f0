#!/usr/bin/env bash
# Builds the native core and its C++ tests with sanitizers (CPU backend only) and runs them with ctest.
#
#   tools/sanitize.sh [address|thread] [extra ctest arguments...]
#
#   address (default): AddressSanitizer + UndefinedBehaviorSanitizer (leak checking on) into build-asan/, every test.
#   thread:            ThreadSanitizer into build-tsan/, only the tests that run work on the CPU backend's thread pool
#                      (tsan_tests below: the pool itself, and kernels, models and the generation loop on it).
#
# Any sanitizer report fails the test that triggered it (halt_on_error / -fno-sanitize-recover), so a green run means
# no report. Builds use -O1 -g (readable stacks, tests still fast). CMAKE_BUILD_PARALLEL_LEVEL sets the build's jobs.
set -euo pipefail
cd "$(dirname "$0")/.."

kind="${1:-address}"
[ $# -gt 0 ] && shift
# The tests TSan runs: the pool itself, and kernels, models and the generation loop that fan out onto it.
tsan_tests=(thread_pool_test gemm_test attention_test conv_test linear_test norm_test qwen2_test generation_test wan_vae_test)
case "$kind" in
  address) dir=build-asan ;;
  thread) dir=build-tsan ;;
  *) echo "usage: tools/sanitize.sh [address|thread] [ctest arguments...]" >&2; exit 2 ;;
esac

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

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}"
# Several pool threads even on a one-core runner, so TSan sees real concurrency.
export SHOWO2_NUM_THREADS="${SHOWO2_NUM_THREADS:-4}"

if [ "$kind" = thread ]; then
  pattern="^($(IFS='|'; echo "${tsan_tests[*]}"))\$"
  ctest --test-dir "$dir" --output-on-failure -R "$pattern" "$@"
else
  ctest --test-dir "$dir" --output-on-failure "$@"
fi
