#!/usr/bin/env bash
# Side-by-side ANN benchmark: vectord-bench vs hnswlib vs coder/hnsw.
#
#   bench/run.sh [--quick] [extra bench/compare.py options]
#
# Builds what is missing (vectord-bench via CMake if CMakeLists.txt exists,
# the coder/hnsw Go program), generates the datasets (bench/datasets.py,
# first run ~10-15 min), then runs bench/compare.py, which runs the engines
# one after another, prints markdown tables and saves everything under
# bench/results/<timestamp>/.  --quick uses the first 20,000 base vectors.
set -euo pipefail
cd "$(dirname "$0")/.."

VECTORD_BENCH="${VECTORD_BENCH:-build/bench/vectord-bench}"
export VECTORD_BENCH

if [[ ! -x "$VECTORD_BENCH" && -f CMakeLists.txt ]]; then
    echo "== building vectord-bench (Release)" >&2
    { cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release && cmake --build build; } >&2 ||
        echo "warning: vectord build failed; vectord columns will show '-'" >&2
fi
[[ -x "$VECTORD_BENCH" ]] || echo "note: $VECTORD_BENCH not found; vectord columns will show '-'" >&2

echo "== building bench/coder-hnsw" >&2
(cd bench/coder-hnsw && go build -trimpath -o coder-hnsw .)

echo "== datasets" >&2
python3 bench/datasets.py >&2

echo "== running engines" >&2
exec python3 bench/compare.py "$@"
