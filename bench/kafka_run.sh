#!/usr/bin/env bash
# vectord over a real Kafka, with its default configuration, side by side with its in-process and no-work
# baselines, in one run (bench/README.md, "Kafka benchmarks"):
#   ingest    vectors/s producer -> worker applied (acked), vs the same file
#             inserted in-process by vectord-bench;          target >= 0.9
#   search    request/reply p50/p99 and rps with 1 and 4 clients, vs a raw
#             echo round trip on the same broker;  target p50 <= echo p50 +
#             2 x the in-process search time
#   recovery  seconds from start to /readyz after SIGKILL with the index
#             checkpointed, vs loading its LHV1 file in-process
# Usage: bench/kafka_run.sh [DATASET_DIR]   (default bench/data/sift128-euclidean;
# run bench/datasets.py first, or pass any dir with base/query/truth files)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
data=${1:-$repo/bench/data/sift128-euclidean}
build=${BUILD:-$repo/build}
out=$repo/bench/results/kafka-$(date +%Y%m%d-%H%M%S)
work=$(mktemp -d /tmp/vectord-kbench.XXXXXX)
mkdir -p "$out"
[[ -f $data/base.fvecs ]] || { echo "no $data/base.fvecs: run bench/datasets.py"; exit 2; }
[[ -x $build/vectord && -x $build/bench/vectord-kbench ]] ||
  { cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build "$build"; }
kafka=$repo/deploy/kafka/kafka.sh
pid="" echo_pid=""
cleanup() {
  [[ -n $pid ]] && kill -9 $pid 2>/dev/null || true
  [[ -n $echo_pid ]] && kill $echo_pid 2>/dev/null || true
  "$kafka" stop --dir "$work/kafka" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
PROG=$(basename "$0")
source "$repo/deploy/lib.sh"   # free_port
json() { python3 -c "import json,sys; d=json.loads(sys.stdin.readline()); print(d['$1'])"; }

mapfile -t kports < <(free_port 2)
VECTORD_KAFKA_JVM_OPTS=${VECTORD_KAFKA_JVM_OPTS:--Xmx1g} \
  "$kafka" start --dir "$work/kafka" --port "${kports[0]}" --controller-port "${kports[1]}" >/dev/null
bs=$(cat "$work/kafka/bootstrap")
for t in vectord.commands:1 vectord.search:1 vectord.commands.dlq:1 vectord.replies:1 vectord.echo:1; do
  "$kafka" topic create "${t%:*}" --partitions "${t#*:}" --dir "$work/kafka" >/dev/null
done
start_worker() {
  "$build/vectord" -X kafka.bootstrap.servers="$bs" -X store.url="file://$work/store" \
    -X http.listen=127.0.0.1:0 -X group.instance.id=kbench-1 \
    >>"$out/vectord.out" 2>>"$out/vectord.log" &
  pid=$!
}
http_port() { sed -n 's/.*event=http .*port=\([0-9]*\).*/\1/p' "$out/vectord.log" | tail -1; }
metric() { python3 -c "import sys,urllib.request
for l in urllib.request.urlopen('http://127.0.0.1:$(http_port)/metrics').read().decode().splitlines():
    if l.startswith('$1'): print(l.split()[-1])"; }

echo "== in-process baselines (vectord-bench)"
"$build/bench/vectord-bench" --base "$data/base.fvecs" --queries "$data/query.fvecs" \
  --truth "$data/truth.ivecs" --metric euclidean --ef 64 --k 10 >"$out/inprocess.jsonl"
cat "$out/inprocess.jsonl"

echo "== ingest through Kafka"
start_worker
"$build/bench/vectord-kbench" -b "$bs" ingest --base "$data/base.fvecs" --index bench \
  --metric euclidean --batch 1000 | tee "$out/ingest.json"

echo "== request/reply latency: echo baseline, then vectord"
"$build/bench/vectord-kbench" -b "$bs" echo-server --topic vectord.echo & echo_pid=$!
sleep 2
for c in 1 4; do
  "$build/bench/vectord-kbench" -b "$bs" echo --clients $c --seconds 10 \
    --queries "$data/query.fvecs" | tee -a "$out/latency.jsonl"
  "$build/bench/vectord-kbench" -b "$bs" search --index bench --clients $c --seconds 10 \
    --queries "$data/query.fvecs" | tee -a "$out/latency.jsonl"
done
kill $echo_pid; echo_pid=""

echo "== recovery after SIGKILL"
# Default policy: the index is checkpointed within checkpoint.interval.ms (60 s).
for _ in $(seq 150); do [[ $(metric 'vectord_partition_pending{partition="0"}') == 0 ]] && break; sleep 0.5; done
kill -9 $pid; wait $pid 2>/dev/null || true; pid=""
t0=$(date +%s.%N); start_worker
until [[ -n $(http_port) ]] && python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$(http_port)/readyz')" 2>/dev/null; do sleep 0.02; done
t1=$(date +%s.%N)
ready_s=$(python3 -c "print(round($t1 - $t0, 3))")
"$build/bench/vectord-bench" --load "$(find "$work/store/_vectors" -name bench.lhv1 | head -1)" --queries "$data/query.fvecs" \
  --truth "$data/truth.ivecs" --metric euclidean --ef 64 --k 10 >"$out/load.jsonl"
head -1 "$out/load.jsonl" >"$out/load.json"
echo "{\"ready_s\":$ready_s}" | tee "$out/recovery.json"; cat "$out/load.json"
kill -TERM $pid; wait $pid || true; pid=""

python3 - "$out" <<'PY' | tee "$out/tables.md"
import json, sys
o = sys.argv[1]
lines = [json.loads(l) for l in open(f"{o}/inprocess.jsonl")]
build = lines[0]; qps = [l for l in lines if "qps" in l][0]
ingest = json.load(open(f"{o}/ingest.json"))
lat = [json.loads(l) for l in open(f"{o}/latency.jsonl")]
rec = json.load(open(f"{o}/recovery.json")); load = json.load(open(f"{o}/load.json"))
inproc_vps = build["n"] / build["build_s"]
t_search_ms = 1000.0 / qps["qps"]
print(f"# vectord over Kafka ({build['n']} x {build['dim']}, 1-partition topics, one worker)\n")
print("| ingest | vectors/s | ratio vs in-process | target |")
print("|---|---:|---:|:---:|")
r = ingest["vectors_per_s"] / inproc_vps
print(f"| in-process (vectord-bench, batches of 1000) | {inproc_vps:,.0f} | 1.00 | |")
print(f"| Kafka producer -> worker, acked (batches of {ingest['batch']}) | {ingest['vectors_per_s']:,.0f} | {r:.2f} | {'yes' if r >= 0.9 else 'no'} |")
print(f"\nIn-process search at ef 64: {qps['qps']:,.0f} qps = {t_search_ms:.3f} ms a query (recall@10 {qps['recall']}).\n")
print("| clients | echo p50 ms | echo p99 ms | echo rps | search p50 ms | search p99 ms | search rps | p50 - echo p50 | target (<= 2 x search time) |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|:---:|")
for c in sorted({l["clients"] for l in lat}):
    e = [l for l in lat if l["clients"] == c and l["mode"] == "echo"][0]
    s = [l for l in lat if l["clients"] == c and l["mode"] == "search"][0]
    d = s["p50_ms"] - e["p50_ms"]
    ok = d <= 2 * t_search_ms
    print(f"| {c} | {e['p50_ms']:.3f} | {e['p99_ms']:.3f} | {e['rps']:,} | {s['p50_ms']:.3f} | {s['p99_ms']:.3f} | {s['rps']:,} | {d:+.3f} | {'yes' if ok else 'no'} |")
print(f"\n| recovery | seconds |\n|---|---:|\n| start -> /readyz after SIGKILL (index checkpointed) | {rec['ready_s']} |\n| vectord-bench --load of the same LHV1 file | {load['load_s']} |\n| ratio | {rec['ready_s'] / load['load_s']:.1f} |")
PY
echo "results in $out"
