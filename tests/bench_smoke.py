#!/usr/bin/env python3
"""End-to-end check of vectord-bench on generated data (CTest: bench_smoke_*).

Generates a clustered dataset with tests/tools/gen_vecs, runs vectord-bench
with a delete phase and an LHV1 save, then again from the saved file, and
checks what the benchmark reports: recall, no deleted id returned, and
identical recall after the reload. Usage: bench_smoke.py GEN BENCH WORKDIR METRIC
"""
import json
import os
import subprocess
import sys

gen, bench, work, metric = sys.argv[1:5]
os.makedirs(work, exist_ok=True)
subprocess.run([gen, work, "5000", "200", "48", metric, "7"], check=True)
common = ["--queries", f"{work}/query.fvecs", "--truth", f"{work}/truth.ivecs",
          "--metric", metric, "--ef", "16,64,128", "--k", "10"]


def run(args):
    out = subprocess.run([bench] + args + common, check=True, capture_output=True, text=True)
    return [json.loads(line) for line in out.stdout.splitlines()]


lhv1 = f"{work}/smoke.lhv1"
first = run(["--base", f"{work}/base.fvecs", "--save", lhv1, "--delete-frac", "0.1"])
failures = []
plain = {r["ef"]: r for r in first if "ef" in r and "phase" not in r}
if plain[128]["recall"] < 0.95:
    failures.append(f"recall@10 at ef 128 is {plain[128]['recall']}, expected >= 0.95")
for r in first:
    if r.get("deleted_returned", 0):
        failures.append(f"{r['phase']} ef {r['ef']}: {r['deleted_returned']} deleted ids returned")
phase = {(r.get("phase"), r["ef"]): r["recall"] for r in first if "ef" in r}
for ef in (64, 128):
    if phase[("deleted", ef)] < phase[("rebuilt", ef)] - 0.02:
        failures.append(f"recall after deletes at ef {ef} is {phase[('deleted', ef)]}, "
                        f"a fresh build of the rest has {phase[('rebuilt', ef)]}")
loaded = {r["ef"]: r for r in run(["--load", lhv1]) if "ef" in r}
for ef, r in plain.items():
    if loaded[ef]["recall"] != r["recall"]:
        failures.append(f"ef {ef}: recall {loaded[ef]['recall']} after load, {r['recall']} before")
for f in failures:
    print("FAIL:", f)
print(f"bench_smoke {metric}: {len(failures)} failures; recall@10 by ef:",
      {ef: r["recall"] for ef, r in plain.items()})
sys.exit(1 if failures else 0)
