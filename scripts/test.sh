#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this script):
#   1. installs the Debian packages it needs (scripts/setup-deps.sh) and
#      fetches the Kafka and s3proxy jars;
#   2. Release build with warnings as errors, every CTest test;
#   3. Debug build under AddressSanitizer + UndefinedBehaviorSanitizer,
#      every CTest test again but the three longest Kafka scenarios
#      (kafka_exactly_once, kafka_exactly_once_s3, kafka_rebalance).
# The Kafka tests start their own broker (deploy/kafka/kafka.sh; the jars
# come from Maven Central into ~/.cache/vectord) and run one at a time.
# Build trees go to build/ci-release and build/ci-asan (ignored by git).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-deps.sh
# The Kafka and s3proxy jars, once, before any test: on a fresh machine two
# tests would otherwise fetch them at the same moment, and Maven's local
# repository is not safe for two processes at once.
deploy/kafka/kafka.sh fetch
deploy/s3/s3proxy.sh fetch
jobs=$(nproc)

run_suite() { # name, ctest args, cmake args...
  local dir="build/ci-$1" ctest_args=$2; shift 2
  echo "==> configure $dir"
  cmake -S . -B "$dir" -G Ninja -DVD_WERROR=ON "$@" >/dev/null
  echo "==> build $dir"
  cmake --build "$dir" -j "$jobs"
  echo "==> test $dir"
  # shellcheck disable=SC2086
  ctest --test-dir "$dir" --output-on-failure -j "$jobs" $ctest_args
}

run_suite release "" -DCMAKE_BUILD_TYPE=Release
# Under the sanitizers: everything but the three long kill/rebalance scenarios,
# which the Release pass covers and which only re-time the same code paths.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_suite asan "-E kafka_exactly_once|kafka_rebalance" -DCMAKE_BUILD_TYPE=Debug -DVD_SANITIZE=ON
echo "==> all suites passed"
