#!/usr/bin/env python3
"""hnswlib (C++, via its Python package) with the vectord-bench CLI and output.

Prints one JSON object per line on stdout:
  {"build_s": .., "mem_mb": .., "n": .., "dim": ..}   (or "load_s" with --load)
  {"ef": .., "recall": .., "qps": ..}                  one per --ef value
build_s: init_index + add_items of all base vectors.  mem_mb: growth of this
process's resident set (/proc/self/statm, MiB) across index creation and
adds, measured after the vectors are already loaded.  Queries: one
knn_query() call with the whole query matrix per ef, qps = queries / wall
seconds of that call.  Single thread (num_threads=1) unless --threads.
hnswlib's 'l2' space returns squared L2 distances; only ids are used here.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyenv  # noqa: E402

pyenv.ensure()

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from importlib.metadata import version  # noqa: E402

import hnswlib  # noqa: E402
import numpy as np  # noqa: E402

import vecio  # noqa: E402

SPACES = {"euclidean": "l2", "cosine": "cosine", "dot": "ip"}


def note(*a):
    print("[hnswlib_bench]", *a, file=sys.stderr, flush=True)


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def emit(obj):
    print(json.dumps(obj, separators=(",", ":")), flush=True)


def main():
    ap = argparse.ArgumentParser(description="hnswlib benchmark, vectord-bench compatible")
    ap.add_argument("--base", required=True)
    ap.add_argument("--queries", required=True)
    ap.add_argument("--truth", required=True)
    ap.add_argument("--metric", required=True, choices=sorted(SPACES))
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=200)
    ap.add_argument("--ef", default="10,20,40,80,160")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--limit", type=int)
    ap.add_argument("--save")
    ap.add_argument("--load")
    ap.add_argument("--delete-frac", type=float)
    ap.add_argument("--seed", type=int, default=100, help="hnswlib random_seed (level generation)")
    a = ap.parse_args()
    if a.delete_frac:
        note("--delete-frac is not implemented for hnswlib; ignored")

    base = vecio.read_vecs(a.base, a.limit).astype(np.float32)
    queries = vecio.read_vecs(a.queries).astype(np.float32)
    truth = vecio.read_vecs(a.truth)
    n, dim = base.shape
    if truth.max() >= n or truth.shape[0] != len(queries):
        note(f"truth does not match the first {n} base vectors: recomputing exact top-{a.k} ({a.metric})")
        truth = vecio.exact_knn(base, queries, a.k, a.metric)
    flags = pyenv.hnswlib_build_flags()
    note(f"hnswlib {version('hnswlib')} built with: {flags or 'unknown flags'}; "
         f"space={SPACES[a.metric]} M={a.m} ef_construction={a.ef_construction} threads={a.threads}")

    rss0 = rss_bytes()
    index = hnswlib.Index(space=SPACES[a.metric], dim=dim)
    if a.load:
        t = time.perf_counter()
        index.load_index(a.load, max_elements=n)
        elapsed = time.perf_counter() - t
        emit({"load_s": round(elapsed, 3), "mem_mb": round((rss_bytes() - rss0) / 2**20, 1), "n": n, "dim": dim})
    else:
        t = time.perf_counter()
        index.init_index(max_elements=n, M=a.m, ef_construction=a.ef_construction, random_seed=a.seed)
        index.add_items(base, np.arange(n), num_threads=a.threads)
        elapsed = time.perf_counter() - t
        emit({"build_s": round(elapsed, 3), "mem_mb": round((rss_bytes() - rss0) / 2**20, 1), "n": n, "dim": dim})
    if a.save:
        index.save_index(a.save)

    for ef in [int(x) for x in a.ef.split(",") if x]:
        index.set_ef(ef)
        t = time.perf_counter()
        labels, _ = index.knn_query(queries, k=a.k, num_threads=a.threads)
        elapsed = time.perf_counter() - t
        emit({"ef": ef, "recall": round(vecio.recall_at_k(labels, truth, a.k), 4),
              "qps": round(len(queries) / elapsed, 1)})


if __name__ == "__main__":
    main()
