#!/usr/bin/env bash
# Retention (invariant 5) against a real Kafka (CTest: kafka_retention):
# a worker checkpoints, dies before its next checkpoint, and retention then
# deletes the commands that checkpoint needs. On restart the partition must
# be refused — error log, vectord_partition_refused 1, searches answered
# `unavailable`, /readyz 503 — and never silently skip ahead.
#   kafka_retention.sh VECTORD VECTORCTL WORKDIR
set -euo pipefail
vectord=$1 vectorctl=$2 work=$3
source "$(dirname "$0")/lib.sh"
pid=""
stop_workers() { [[ -n $pid ]] && kill -9 $pid 2>/dev/null || true; }

kafka_up
k() { topic "$@"; }
# Retention is turned down to 3 s only after the first checkpoint: before
# that, a slow first join (seen: 3 s) let retention delete the create.
k r.commands --partitions 1 --config segment.bytes=16384
k r.search --partitions 1
k r.dlq --partitions 1
k vectord.replies --partitions 1
topics=(-X topic.commands=r.commands -X topic.search=r.search -X topic.dlq=r.dlq)
start() {
  "$vectord" -X kafka.bootstrap.servers="$bootstrap" -X store.url="file://$work/store" \
    "${topics[@]}" -X group.instance.id=r1 -X http.listen=127.0.0.1:0 \
    -X checkpoint.interval.ms=600000 -X checkpoint.max.pending=1000000 \
    -X search.ready.timeout.ms=2000 >>vectord.out 2>>vectord.log &
  pid=$!
}
ctl() { "$vectorctl" -b "$bootstrap" --timeout 30000 "${topics[@]}" "$@"; }

start
ctl create r --dim 8 --distance euclidean >/dev/null || fail "create"
kill -TERM $pid; wait $pid || fail "SIGTERM"; pid=""   # checkpoint through offset 0
"$kafka" run kafka.admin.ConfigCommand --bootstrap-server "$bootstrap" --alter --entity-type topics \
  --entity-name r.commands --add-config retention.ms=3000 >config.out 2>&1 ||
  fail "retention.ms: $(cat config.out)"
start
for i in $(seq 30); do
  printf '{"id":"v%d","vector":[%d,1,2,3,4,5,6,7],"metadata":"%0100d"}\n' "$i" "$i" 0
done >items.ndjson
ctl add r items.ndjson --batch 1 >/dev/null || fail "add"
kill -9 $pid; wait $pid 2>/dev/null || true; pid=""    # dies before its next checkpoint

# Wait until retention has removed offset 1 (the first add after the checkpoint).
for _ in $(seq 60); do
  lo=$("$kafka" run org.apache.kafka.tools.GetOffsetShell --bootstrap-server "$bootstrap" \
        --topic r.commands --time -2 2>/dev/null | sed -n 's/^r.commands:0://p' || true)
  [[ -n $lo && $lo -gt 1 ]] && break
  # Retention only deletes closed segments: keep rolling new ones.
  ctl --no-wait add r items.ndjson --batch 10 >/dev/null 2>&1 || true
  sleep 1
done
[[ -n $lo && $lo -gt 1 ]] || fail "retention never removed offset 1 (log start ${lo:-?})"

start
for _ in $(seq 100); do grep -q 'event=partition_refused' vectord.log && break; sleep 0.2; done
grep 'event=partition_refused' vectord.log | grep -q 'offset 1 is no longer in the log' ||
  fail "no refusal logged"
port=$(sed -n 's/.*event=http .*port=\([0-9]*\).*/\1/p' vectord.log | tail -1)
python3 - "$port" <<'PY' || fail "metrics/readyz"
import sys, urllib.request, urllib.error
base = f"http://127.0.0.1:{sys.argv[1]}"
m = urllib.request.urlopen(base + "/metrics").read().decode()
assert 'vectord_partition_refused{partition="0"} 1' in m, m
try:
    urllib.request.urlopen(base + "/readyz")
    raise SystemExit("readyz answered 200")
except urllib.error.HTTPError as e:
    assert e.code == 503 and "refused" in e.read().decode()
PY
if ctl search r --vector '[1,1,2,3,4,5,6,7]' >/dev/null 2>err.txt; then fail "refused partition answered"; fi
grep -q unavailable err.txt || fail "search error: $(cat err.txt)"
kill -TERM $pid; wait $pid || true; pid=""
# Nothing past the checkpoint was applied behind our back: the manifest did not move.
python3 - "$work/store/_manifests/r.commands/0" <<'PY' || fail "manifest moved"
import glob, json, sys
newest = sorted(glob.glob(sys.argv[1] + "/*.json"))[-1]
assert json.load(open(newest))["offset"] == 0
PY
echo "kafka_retention: 1 passed, 0 failed"
