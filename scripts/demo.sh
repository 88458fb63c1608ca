#!/usr/bin/env bash
# Builds vectord and runs its index on a generated dataset: build, recall and
# QPS per ef, a 10% delete, an LHV1 save and a reload. Until the Kafka worker
# lands, this is the way to see the engine run; it needs nothing but the
# Debian packages scripts/setup-deps.sh installs.
#   scripts/demo.sh [n=50000] [dim=96] [metric=cosine]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-50000} dim=${2:-96} metric=${3:-cosine}
scripts/setup-deps.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j "$(nproc)"
data=var/demo/$metric-$n-$dim
mkdir -p "$data"
[[ -f $data/truth.ivecs ]] || build/release/tests/gen_vecs "$data" "$n" 500 "$dim" "$metric" 1
args=(--queries "$data/query.fvecs" --truth "$data/truth.ivecs" --metric "$metric"
      --ef 10,20,40,80,160 --k 10)
echo "== build from $data/base.fvecs, then delete 10%"
build/release/bench/vectord-bench --base "$data/base.fvecs" --save "$data/index.lhv1" \
  --delete-frac 0.1 "${args[@]}"
echo "== reload $data/index.lhv1"
build/release/bench/vectord-bench --load "$data/index.lhv1" "${args[@]}"
