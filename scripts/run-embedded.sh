#!/usr/bin/env bash
# Sets up and runs vectord on its embedded defaults: an in-process Kafka
# mock cluster (3 partitions per topic), checkpoints under ./var/vectord,
# no Redis. Installs the Debian packages it needs and builds first.
# Extra arguments go to vectord (e.g. -X log.format=json). Ctrl-C stops it
# (after a final checkpoint).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-deps.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j "$(nproc)"
exec build/release/vectord "$@"
