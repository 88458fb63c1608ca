#!/usr/bin/env bash
# Ingest and checkpoints through each store backend, side by side in one run
# (bench/README.md, "Store benchmarks"): for file://, storaged (the reference
# server tests/storaged/storaged.py) and S3 (s3proxy, filesystem backend), in
# turn, round after round:
#   ingest      vectord-kbench ingest (the Kafka ingest benchmark of
#               bench/kafka_run.sh): vectors/s producer -> worker, acked,
#               with checkpoint.interval.ms=CKPT_MS (default 2000), so the
#               growing index is checkpointed every 2 s while it ingests
#   checkpoint  every checkpoint of the run from the worker's `event=checkpoint`
#               log lines (serialising the LHV1 file + the PUTs + the
#               manifest): count, MB, seconds, MB/s over all of them, and the
#               last one, of the whole index, on its own
#   load        a restart: seconds from exec to /readyz, the index loaded
#               from that backend
# Ratios are against the file backend of the same round.
# Usage: bench/store_run.sh [DATASET_DIR] [ROUNDS]
#   (default bench/data/sift128-euclidean, 2 rounds)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
data=${1:-$repo/bench/data/sift128-euclidean}
rounds=${2:-2}
ckpt_ms=${CKPT_MS:-2000}
build=${BUILD:-$repo/build}
out=$repo/bench/results/store-$(date +%Y%m%d-%H%M%S)
work=$(mktemp -d /tmp/vectord-sbench.XXXXXX)
mkdir -p "$out"
[[ -f $data/base.fvecs ]] || { echo "no $data/base.fvecs: run bench/datasets.py"; exit 2; }
[[ -x $build/vectord && -x $build/bench/vectord-kbench ]] ||
  { cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build "$build"; }
kafka=$repo/deploy/kafka/kafka.sh s3proxy=$repo/deploy/s3/s3proxy.sh
pid="" spid=""
cleanup() {
  [[ -n $pid ]] && kill -9 $pid 2>/dev/null || true
  [[ -n $spid ]] && kill $spid 2>/dev/null || true
  "$s3proxy" stop --dir "$work/s3" >/dev/null 2>&1 || true
  "$kafka" stop --dir "$work/kafka" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
PROG=$(basename "$0")
source "$repo/deploy/lib.sh"   # free_port

mapfile -t kports < <(free_port 2)
VECTORD_KAFKA_JVM_OPTS=${VECTORD_KAFKA_JVM_OPTS:--Xmx1g} \
  "$kafka" start --dir "$work/kafka" --port "${kports[0]}" --controller-port "${kports[1]}" >/dev/null
bs=$(cat "$work/kafka/bootstrap")
"$kafka" topic create vectord.replies --partitions 1 --dir "$work/kafka" >/dev/null
python3 "$repo/tests/storaged/storaged.py" --root "$work/storaged" --port 0 \
  --port-file "$work/storaged.port" >"$out/storaged.log" 2>&1 &
spid=$!
"$s3proxy" start --dir "$work/s3" --port "$(free_port)" --bucket vectord-bench >/dev/null
eval "$("$s3proxy" env --dir "$work/s3")"
for _ in $(seq 100); do [[ -s $work/storaged.port ]] && break; sleep 0.1; done

url() { # backend round
  case $1 in
  file) echo "file://$work/file-$2" ;;
  storaged) echo "http://127.0.0.1:$(cat "$work/storaged.port")/" ;;
  s3) echo "s3://vectord-bench/round-$2" ;;
  esac
}
start_worker() { # backend round
  local t=sb.$1.$2
  "$build/vectord" -X kafka.bootstrap.servers="$bs" -X store.url="$(url "$1" "$2")" \
    -X topic.commands=$t.commands -X topic.search=$t.search -X topic.dlq=$t.dlq \
    -X group.id="sb-$1-$2" -X group.instance.id="sb-$1-$2" -X http.listen=127.0.0.1:0 \
    -X checkpoint.interval.ms="$ckpt_ms" \
    >>"$out/vectord-$1-$2.out" 2>>"$out/vectord-$1-$2.log" &
  pid=$!
}
http_port() { sed -n 's/.*event=http .*port=\([0-9]*\).*/\1/p' "$1" | tail -1; }

: >"$out/runs.jsonl"
for r in $(seq "$rounds"); do
  for b in file storaged s3; do
    t=sb.$b.$r log=$out/vectord-$b-$r.log
    for s in commands search dlq; do
      "$kafka" topic create "$t.$s" --partitions 1 --dir "$work/kafka" >/dev/null
    done
    echo "== round $r: $b ($(url "$b" "$r"))"
    start_worker "$b" "$r"
    ingest=$("$build/bench/vectord-kbench" -b "$bs" ingest --base "$data/base.fvecs" \
      --index "bench" --topic "$t.commands" --metric euclidean --batch 1000)
    echo "$ingest"
    kill -TERM $pid; wait $pid || { echo "worker exit status"; exit 1; }; pid=""
    # Load: exec to /readyz with the index in the store.
    lines=$(wc -l <"$log")
    t0=$(date +%s.%N); start_worker "$b" "$r"
    until p=$(tail -n +$((lines + 1)) "$log" | sed -n 's/.*event=http .*port=\([0-9]*\).*/\1/p') &&
      [[ -n $p ]] && python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$p/readyz')" 2>/dev/null; do
      sleep 0.02
    done
    t1=$(date +%s.%N)
    kill -TERM $pid; wait $pid || true; pid=""
    python3 - "$b" "$r" "$log" "$ingest" "$t0" "$t1" >>"$out/runs.jsonl" <<'PY'
import json, re, sys
b, r, log, ingest, t0, t1 = sys.argv[1:]
cps = [dict(re.findall(r'(\w+)=("[^"]*"|\S+)', l)) for l in open(log) if "event=checkpoint " in l]
cps = [c for c in cps if int(c["files"]) > 0]
# The last checkpoint wrote the whole index: at SIGTERM, or the interval one
# in flight then (SIGTERM waits for it and finds nothing left to write).
final = cps[-1]
during = cps[:-1]
ing = json.loads(ingest)
print(json.dumps({"backend": b, "round": int(r), "vectors_per_s": ing["vectors_per_s"],
  "checkpoint_bytes": int(final["bytes"]), "checkpoint_s": float(final["seconds"]),
  "during_ingest": len(during), "during_ingest_s": sum(float(c["seconds"]) for c in during),
  "during_ingest_bytes": sum(int(c["bytes"]) for c in during),
  "load_to_ready_s": round(float(t1) - float(t0), 3)}))
PY
    tail -1 "$out/runs.jsonl"
  done
done

python3 - "$out/runs.jsonl" <<'PY' | tee "$out/tables.md"
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
print(f"# Ingest and checkpoints by store backend ({len(runs) // 3} rounds; ratios vs file in the same round)\n")
print("| round | backend | ingest vectors/s | ratio | checkpoints | MB | seconds | MB/s | ratio | final: MB | s | MB/s | exec -> /readyz s |")
print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
def agg(x):
    b = x["during_ingest_bytes"] + x["checkpoint_bytes"]
    t = x["during_ingest_s"] + x["checkpoint_s"]
    return b, t, b / 1e6 / t
for r in sorted({x["round"] for x in runs}):
    f = [x for x in runs if x["round"] == r and x["backend"] == "file"][0]
    for x in [y for y in runs if y["round"] == r]:
        b, t, mbs = agg(x)
        print(f"| {r} | {x['backend']} | {x['vectors_per_s']:,} | {x['vectors_per_s'] / f['vectors_per_s']:.2f} "
              f"| {x['during_ingest'] + 1} | {b / 1e6:.0f} | {t:.2f} | {mbs:,.0f} | {mbs / agg(f)[2]:.2f} "
              f"| {x['checkpoint_bytes'] / 1e6:.1f} | {x['checkpoint_s']:.3f} "
              f"| {x['checkpoint_bytes'] / 1e6 / x['checkpoint_s']:,.0f} | {x['load_to_ready_s']} |")
PY
echo "results in $out"
