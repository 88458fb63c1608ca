#!/usr/bin/env python3
"""Run vectord-bench, hnswlib and coder/hnsw on the same datasets and tabulate.

For each dataset the three engines run one after another (never concurrently),
single-threaded, with the same files and parameters; then vectord-bench runs
once more with --delete-frac.  Raw JSON lines, stderr logs and the markdown
tables go to bench/results/<timestamp>/.  An engine whose program is missing
or fails shows '-' in the tables.

usage: bench/compare.py [--quick] [--datasets a,b] [--engines vectord,hnswlib,coder-hnsw]
       bench/compare.py --render bench/results/<timestamp>   (re-print saved tables)
Normally started by bench/run.sh, which builds the programs and the data first.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyenv  # noqa: E402

pyenv.ensure()

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import vecio  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATASETS = {"sift128-euclidean": "euclidean", "minilm384-cosine": "cosine"}
ENGINES = ["vectord", "hnswlib", "coder-hnsw"]
QUICK_N = 20_000
TARGET_MIN_RECALL = 0.90   # target is checked where hnswlib reaches this recall
TARGET_RECALL_SLACK = 0.005
TARGET_QPS_RATIO = 1.2


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def engine_cmd(engine, args):
    if engine == "vectord":
        path = Path(os.environ.get("VECTORD_BENCH", "build/bench/vectord-bench"))
        path = path if path.is_absolute() else REPO / path
        return [str(path)] if path.exists() else None
    if engine == "hnswlib":
        return [sys.executable, str(HERE / "hnswlib_bench.py")]
    path = Path(args.coder_bin)
    return [str(path)] if path.exists() else None


def quick_subset(data_dir, name, metric):
    """First QUICK_N base vectors of a dataset, with exact truth recomputed for them."""
    src, dst = data_dir / name, data_dir / f"quick-{QUICK_N}" / name
    if not (dst / "truth.ivecs").exists():
        dst.mkdir(parents=True, exist_ok=True)
        base = vecio.read_vecs(str(src / "base.fvecs"), QUICK_N)
        query = vecio.read_vecs(str(src / "query.fvecs"))
        vecio.write_vecs(str(dst / "base.fvecs"), base)
        vecio.write_vecs(str(dst / "query.fvecs"), query)
        vecio.write_vecs(str(dst / "truth.ivecs"), vecio.exact_knn(base, query, 100, metric))
        log(f"wrote quick subset {dst} ({len(base)} base vectors, truth recomputed)")
    return dst


def run_engine(engine, cmd, files, metric, args, out_dir, tag, extra=()):
    argv = cmd + ["--base", str(files / "base.fvecs"), "--queries", str(files / "query.fvecs"),
                  "--truth", str(files / "truth.ivecs"), "--metric", metric, "--m", str(args.m),
                  "--ef-construction", str(args.ef_construction), "--ef", args.ef, "--k", str(args.k),
                  "--threads", "1", *extra]
    log(f"[{time.strftime('%H:%M:%S')}] {tag}: {' '.join(argv)}")
    if engine == "coder-hnsw" and not args.quick:
        log("    (coder/hnsw builds slowly at 100k vectors: expect several minutes)")
    t = time.time()
    with open(out_dir / f"{tag}.stderr", "w") as err:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=err, text=True, cwd=REPO)
    (out_dir / f"{tag}.jsonl").write_text(p.stdout)
    rows = []
    for line in p.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                log(f"    unparsable line: {line}")
    log(f"    exit {p.returncode}, {time.time() - t:.0f}s, {len(rows)} JSON lines")
    if p.returncode != 0:
        log(f"    FAILED: see {out_dir / (tag + '.stderr')}")
    return {"argv": argv, "exit": p.returncode, "wall_s": round(time.time() - t, 1), "rows": rows}


def merge_repeats(reps):
    """Best of several runs: min build_s and mem_mb, max qps, mean recall per ef."""
    ok = [r for r in reps if r["exit"] == 0]
    if len(reps) == 1 or not ok:
        return reps[0]
    builds = [build_row(r) for r in ok]
    build = dict(builds[0])
    for key in ("build_s", "mem_mb"):
        vals = [b[key] for b in builds if b.get(key) is not None]
        if vals:
            build[key] = min(vals)
    rows = [build]
    for ef in ef_rows(ok[0]):
        per = [ef_rows(r).get(ef) for r in ok]
        per = [x for x in per if x]
        rows.append({"ef": ef, "recall": round(sum(x["recall"] for x in per) / len(per), 4),
                     "qps": max(x["qps"] for x in per)})
    return {"argv": ok[0]["argv"], "exit": 0, "wall_s": sum(r["wall_s"] for r in reps), "rows": rows,
            "repeats": len(ok)}


# ---------------------------------------------------------------- tables
def fmt(x, spec):
    return "-" if x is None else format(x, spec)


def ratio(a, b):
    return None if a is None or b in (None, 0) else a / b


def build_row(run):
    if not run or run.get("exit") != 0:
        return {}
    for r in run["rows"]:
        if "build_s" in r and "phase" not in r:
            return r
    return {}


def ef_rows(run, phase=None):
    if not run or run.get("exit") != 0:
        return {}
    return {r["ef"]: r for r in run["rows"] if "ef" in r and r.get("phase") == phase}


def render(summary):
    out = []
    p = summary["params"]
    out.append(f"# ANN benchmark {summary['started']}{' (quick)' if p['quick'] else ''}\n")
    out.append(f"Machine: {summary['machine']}. Load average at start: {summary['loadavg']}"
               f"{' -- machine was busy, QPS are noisy' if summary['busy'] else ''}.")
    best_of = f", best of {p['repeat']} runs" if p.get("repeat", 1) > 1 else ""
    out.append(f"Parameters: M={p['m']}, ef_construction={p['ef_construction']}, k={p['k']}, 1 thread, "
               f"engines run one after another{best_of}. QPS ratios > 1 mean vectord is faster; target: where hnswlib "
               f"recall >= {TARGET_MIN_RECALL}, vectord recall >= hnswlib - {TARGET_RECALL_SLACK} and "
               f"vectord QPS >= {TARGET_QPS_RATIO}x hnswlib.\n")
    for name, ds in summary["datasets"].items():
        runs = ds["runs"]
        out.append(f"## {name} (n={ds['n']}, dim={ds['dim']}, {ds['metric']}, {ds['n_query']} queries)\n")
        efs = [int(x) for x in p["ef"].split(",")]
        per = {e: ef_rows(runs.get(e)) for e in ENGINES}
        out.append("| ef | vectord recall | vectord QPS | hnswlib recall | hnswlib QPS | coder-hnsw recall "
                   "| coder-hnsw QPS | vectord/hnswlib QPS | vectord/coder-hnsw QPS | target |")
        out.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|")
        verdicts = []
        for ef in efs:
            v, h, c = (per[e].get(ef, {}) for e in ENGINES)
            vr, vq, hr, hq, cr, cq = (v.get("recall"), v.get("qps"), h.get("recall"), h.get("qps"),
                                      c.get("recall"), c.get("qps"))
            if hr is None or hr < TARGET_MIN_RECALL:
                target = "n/a"
            elif vr is None:
                target = "-"
            else:
                ok = vr >= hr - TARGET_RECALL_SLACK and vq >= TARGET_QPS_RATIO * hq
                verdicts.append(ok)
                target = "yes" if ok else "**NO**"
            out.append(f"| {ef} | {fmt(vr, '.4f')} | {fmt(vq, ',.0f')} | {fmt(hr, '.4f')} | {fmt(hq, ',.0f')} | "
                       f"{fmt(cr, '.4f')} | {fmt(cq, ',.0f')} | {fmt(ratio(vq, hq), '.2f')} | "
                       f"{fmt(ratio(vq, cq), '.2f')} | {target} |")
        ds["target_met"] = (all(verdicts) if verdicts else None)
        out.append(f"\nTarget met at every ef where hnswlib recall >= {TARGET_MIN_RECALL}: "
                   f"{ {True: 'yes', False: 'NO', None: '- (not measured)'}[ds['target_met']] }\n")

        b = {e: build_row(runs.get(e)) for e in ENGINES}
        n = ds["n"]
        bpv = {e: (b[e]["mem_mb"] * 2**20 / n if b[e].get("mem_mb") is not None else None) for e in ENGINES}
        out.append("| build | vectord | hnswlib | coder-hnsw | vectord/hnswlib | vectord/coder-hnsw |")
        out.append("|---|---:|---:|---:|---:|---:|")
        for label, key, spec in (("build_s", "build_s", ".1f"), ("mem_mb", "mem_mb", ".1f")):
            vals = [b[e].get(key) for e in ENGINES]
            out.append(f"| {label} | " + " | ".join(fmt(x, spec) for x in vals) +
                       f" | {fmt(ratio(vals[0], vals[1]), '.2f')} | {fmt(ratio(vals[0], vals[2]), '.2f')} |")
        vals = [bpv[e] for e in ENGINES]
        out.append("| bytes/vector | " + " | ".join(fmt(x, ",.0f") for x in vals) +
                   f" | {fmt(ratio(vals[0], vals[1]), '.2f')} | {fmt(ratio(vals[0], vals[2]), '.2f')} |")
        out.append(f"\n(raw float32 vector = {4 * ds['dim']} bytes; bytes/vector = mem_mb * 2^20 / n)\n")
        for e in ENGINES:
            r = runs.get(e)
            if r is None:
                out.append(f"- {e}: not run (program missing)")
            elif r["exit"] != 0:
                out.append(f"- {e}: FAILED (exit {r['exit']}), see {name}-{e}*.stderr")
        d = runs.get("vectord-delete")
        out.append(f"\n### {name}: vectord-bench --delete-frac {p['delete_frac']}\n")
        if not d or d["exit"] != 0:
            out.append("- (not run)" if not d else f"- FAILED (exit {d['exit']}), see {name}-vectord-delete.stderr")
        else:
            out.append("| phase | ef | recall | QPS | deleted_returned |")
            out.append("|---|---:|---:|---:|---:|")
            for r in d["rows"]:
                if r.get("phase") == "deleted" and "ef" in r:
                    out.append(f"| deleted | {r['ef']} | {fmt(r.get('recall'), '.4f')} | {fmt(r.get('qps'), ',.0f')} "
                               f"| {r.get('deleted_returned', '-')} |")
            for r in d["rows"]:
                if r.get("phase") == "rebuilt" and "ef" in r:
                    out.append(f"| rebuilt | {r['ef']} | {fmt(r.get('recall'), '.4f')} | {fmt(r.get('qps'), ',.0f')} | |")
            rb = [r for r in d["rows"] if r.get("phase") == "rebuilt" and "build_s" in r]
            if rb:
                out.append(f"\nRebuild of the remaining vectors: build_s {rb[0]['build_s']}")
        out.append("")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help=f"first {QUICK_N} base vectors only")
    ap.add_argument("--data-dir", default=str(HERE / "data"))
    ap.add_argument("--results-dir", default=str(HERE / "results"))
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--engines", default=",".join(ENGINES))
    ap.add_argument("--coder-bin", default=str(HERE / "coder-hnsw" / "coder-hnsw"))
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=200)
    ap.add_argument("--ef", default="10,20,40,80,160,320")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--delete-frac", default="0.1")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run each engine N times; tables show min build_s/mem_mb, max qps, mean recall")
    ap.add_argument("--render", metavar="RESULTS_DIR", help="only re-print the tables of a finished run")
    args = ap.parse_args()

    if args.render:
        summary = json.loads((Path(args.render) / "summary.json").read_text())
        print(render(summary))
        return

    started = time.strftime("%Y%m%d-%H%M%S")
    out_dir = Path(args.results_dir) / (started + ("-quick" if args.quick else ""))
    out_dir.mkdir(parents=True, exist_ok=True)
    load1 = os.getloadavg()[0]
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    summary = {"started": started, "machine": f"{cpu}, {os.cpu_count()} cores, {platform.platform()}",
               "loadavg": f"{load1:.2f}", "busy": load1 > 0.5,
               "params": {"quick": args.quick, "m": args.m, "ef_construction": args.ef_construction,
                          "ef": args.ef, "k": args.k, "delete_frac": args.delete_frac,
                          "repeat": args.repeat}, "datasets": {}}
    if load1 > 0.5:
        log(f"warning: load average {load1:.2f} -- other processes compete for the 2 cores; QPS will be noisy")
    engines = [e for e in args.engines.split(",") if e]
    for name in [d for d in args.datasets.split(",") if d]:
        metric = DATASETS[name]
        files = Path(args.data_dir) / name
        if not (files / "base.fvecs").exists():
            sys.exit(f"{files}/base.fvecs missing: run bench/datasets.py first")
        if args.quick:
            files = quick_subset(Path(args.data_dir), name, metric)
        base_n = os.path.getsize(files / "base.fvecs")
        dim = vecio.read_vecs(str(files / "query.fvecs")).shape[1]
        n_query = len(vecio.read_vecs(str(files / "query.fvecs")))
        ds = {"metric": metric, "files": str(files), "n": base_n // (4 + 4 * dim), "dim": dim,
              "n_query": n_query, "runs": {}}
        for engine in engines:
            cmd = engine_cmd(engine, args)
            if cmd is None:
                log(f"{name}-{engine}: program not found, skipped")
                continue
            reps = [run_engine(engine, cmd, files, metric, args, out_dir,
                               f"{name}-{engine}" + (f"-r{i + 1}" if args.repeat > 1 else ""))
                    for i in range(args.repeat)]
            ds["runs"][engine] = merge_repeats(reps)
        if "vectord" in engines and engine_cmd("vectord", args):
            ds["runs"]["vectord-delete"] = run_engine("vectord", engine_cmd("vectord", args), files, metric, args,
                                                      out_dir, f"{name}-vectord-delete",
                                                      ["--delete-frac", args.delete_frac])
        summary["datasets"][name] = ds
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    text = render(summary)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    (out_dir / "tables.md").write_text(text + "\n")
    print(text)
    log(f"results saved in {out_dir}")


if __name__ == "__main__":
    main()
