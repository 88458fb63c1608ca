#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this script):
#   1. installs the Debian packages it needs (scripts/setup-deps.sh) and
#      fetches the Kafka and s3proxy jars;
#   2. Release build with warnings as errors, every CTest test;
#   3. Debug build under AddressSanitizer + UndefinedBehaviorSanitizer,
#      every CTest test again but those in $asan_skip below;
#   4. RelWithDebInfo build under ThreadSanitizer (VD_TSAN): the unit
#      tests (test_*) and one Kafka scenario, kafka_worker; any race
#      reported fails the suite. Suppressed: librdkafka's internals only
#      (tests/tsan.supp says why).
# The Kafka tests start their own broker (deploy/kafka/kafka.sh; the jars
# come from Maven Central into ~/.cache/vectord) and run one at a time.
# Build trees go to build/ci-release, build/ci-asan and build/ci-tsan
# (ignored by git).
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
# Under the sanitizers, everything but (the Release pass runs them all; the
# whole suite must stay under 15 minutes on 2 cores):
# - the long kill/rebalance/flood scenarios, which re-time code paths the
#   shorter ones cover (kafka_exactly_once, kafka_exactly_once_s3,
#   kafka_rebalance, kafka_search_flood, embedded_bulk, kafka_import);
# - the tests of Python tools and packaging, where no C code of ours is
#   instrumented beyond what others run (storaged_selftest,
#   lhv1_reader_selftest, s3proxy_smoke, deploy_deb_package) and the Go
#   fixtures, whose C reader test_golhv1 and fuzz_replay_golhv1 cover.
asan_skip="kafka_exactly_once|kafka_rebalance|kafka_search_flood|embedded_bulk|kafka_import"
asan_skip+="|storaged_selftest|lhv1_reader_selftest|s3proxy_smoke|deploy_deb_package|gofixtures_import"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_suite asan "-E $asan_skip" -DCMAKE_BUILD_TYPE=Debug -DVD_SANITIZE=ON
# Under ThreadSanitizer: the unit tests, then kafka_worker alone (daemon
# and CLI through starts, SIGKILL, SIGTERM and searches; its 30 s client
# timeouts are too short for an instrumented add beside test_index), about
# 2 minutes in all. A race stops the process that saw it (halt_on_error,
# exit 66); the logs are searched too, for a daemon whose failure a
# scenario expects (the refused start with mismatched topics).
export TSAN_OPTIONS="halt_on_error=1:suppressions=$PWD/tests/tsan.supp"
# Every unit test (test_*: before, a pattern of letters only left out
# test_lhv1, test_index_atomic and test_golhv1) but the one that needs a
# Redis server and the single-threaded JSON cost measurement (16 s under
# TSan, no threads to check).
run_suite tsan "-R ^test_ -E ^test_(directory_redis|json_cost)$" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVD_TSAN=ON
ctest --test-dir build/ci-tsan --output-on-failure -R '^kafka_worker$'
unset TSAN_OPTIONS
if grep -rl --include='*.log' --include='*.out' --include='*.err' --exclude-dir=kafka \
  "WARNING: ThreadSanitizer" build/ci-tsan/tests/kafka-worker; then
  echo "==> ThreadSanitizer reported a race in the files above"
  exit 1
fi
echo "==> all suites passed"
