#!/usr/bin/env bash
# Files written by the real github.com/coder/hnsw v0.6.1 (tests/gofixtures/gen, built
# from the Go module proxy like bench/coder-hnsw), imported by vectord and
# checked by check_import (see check_import.c):
#
#   sift-euclidean  20,500 SIFT vectors, 500 deleted -> 20,000; recall@10 of
#                   the imported index at its default ef >= 0.95
#   sift-cosine     3,000 SIFT vectors under cosine, 150 deleted; recall too
#   tiny            60 vectors, 20 deleted: truncated at every field boundary,
#                   every length flipped
#   all-deleted     30 vectors, all deleted: empty layers, no item
#
# The vectors are the real SIFT dataset of bench/datasets.py
# (bench/data/sift128-euclidean, or $VD_BENCH_DATA/sift128-euclidean). When
# it has not been generated, the test says so and uses gen_vecs' clustered
# 128-d vectors instead (recall bound unchanged).
#
# usage: run.sh CHECK_IMPORT GEN_VECS WORKDIR SOURCE_DIR
set -euo pipefail
check=$1 gen=$2 work=$3 src=$4
if ! command -v go >/dev/null; then
  echo "SKIP: 'go' not found: the fixtures are written by the real coder/hnsw (Go >= 1.22)"
  exit 77
fi
mkdir -p "$work"
(cd "$src/tests/gofixtures/gen" && go build -trimpath -o "$work/gofixtures" .)

data=${VD_BENCH_DATA:-$src/bench/data}/sift128-euclidean
if [[ -s $data/base.fvecs && -s $data/query.fvecs ]]; then
  echo "dataset: $data (real SIFT descriptors)"
else
  echo "NOTE: real dataset $data missing (generate it with: bench/datasets.py --only sift);"
  echo "      using gen_vecs' synthetic clustered 128-d vectors instead"
  data=$work/synthetic
  mkdir -p "$data"
  [[ -s $data/base.fvecs ]] || "$gen" "$data" 20500 200 128 euclidean 7 >/dev/null
fi

fix() { # name n delete metric [gofixtures args...]
  local name=$1 n=$2 del=$3 metric=$4; shift 4
  "$work/gofixtures" -base "$data/base.fvecs" -n "$n" -delete "$del" -metric "$metric" \
    -name "$name" -out "$work/$name.golhv1" "$@"
}

fix sift-euclidean 20500 500 euclidean -queries "$data/query.fvecs" -nq 200
"$check" "$work/sift-euclidean.golhv1" euclidean --recall "$data/query.fvecs" 200 0.95 --max-cuts 4
fix sift-cosine 3000 150 cosine -queries "$data/query.fvecs" -nq 200
"$check" "$work/sift-cosine.golhv1" cosine --recall "$data/query.fvecs" 200 0.95 --max-cuts 4
fix tiny 60 20 euclidean
"$check" "$work/tiny.golhv1" euclidean --max-cuts 1000000
fix all-deleted 30 30 cosine
"$check" "$work/all-deleted.golhv1" cosine --max-cuts 1000000
echo "gofixtures: all files imported and checked"
