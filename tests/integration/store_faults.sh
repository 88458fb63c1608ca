#!/usr/bin/env bash
# The store failing under a running worker, against a real Kafka and the
# reference storaged server (CTest: store_faults). Phases:
#   1. storaged answers 500 (its --fail-file): the worker keeps applying
#      commands and answering searches, logs checkpoint_failed naming the key
#      and the status, counts the failures, and does not commit;
#      storaged recovers -> the checkpoint lands and the commit moves.
#   2. storaged is killed (connection refused): the same; restarted on the
#      same port -> the commit moves.
#   3. the worker is SIGKILLed and restarted while storaged answers 500: the
#      partition stays loading (searches get `unavailable`), logs
#      partition_load_failed, and loads by itself once storaged recovers,
#      with every command applied exactly once.
#   store_faults.sh VECTORD VECTORCTL WORKDIR
set -euo pipefail
vectord=$1 vectorctl=$2 work=$3
source "$(dirname "$0")/lib.sh"
pid="" spid=""
stop_workers() {
  [[ -n $pid ]] && kill -9 $pid 2>/dev/null || true
  [[ -n $spid ]] && kill $spid 2>/dev/null || true
}

kafka_up
topic f.commands --partitions 1
topic f.search --partitions 1
topic f.dlq --partitions 1
topic vectord.replies --partitions 1
topics=(-X topic.commands=f.commands -X topic.search=f.search -X topic.dlq=f.dlq)
token=t0k3n-$RANDOM$RANDOM
sport=$(free_port)
storaged_up() {
  python3 "$repo/tests/storaged/storaged.py" --root "$work/storaged" --bind 127.0.0.1 \
    --port "$sport" --token "$token" --fail-file "$work/fail" >>storaged.log 2>&1 &
  spid=$!
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$sport/storage?prefix=x" && return 0
    sleep 0.1
  done
  fail "storaged did not start"
}
start() {
  VECTORD_STORE_TOKEN=$token "$vectord" -X kafka.bootstrap.servers="$bootstrap" \
    -X store.url="http://127.0.0.1:$sport" "${topics[@]}" -X group.instance.id=f1 \
    -X http.listen=127.0.0.1:0 -X checkpoint.interval.ms=500 -X checkpoint.max.pending=1000000 \
    -X checkpoint.retry.backoff.ms=200 -X checkpoint.retry.backoff.max.ms=1000 \
    -X store.retries=1 -X store.retry.backoff.ms=20 -X search.ready.timeout.ms=1500 \
    >>vectord.out 2>>vectord.log &
  pid=$!
  port=""
  for _ in $(seq 100); do
    port=$(tail -n +$((log_from + 1)) vectord.log | sed -n 's/.*event=http .*port=\([0-9]*\).*/\1/p')
    [[ -n $port ]] && return 0
    sleep 0.1
  done
  fail "worker did not start"
}
log_from=0
ctl() { "$vectorctl" -b "$bootstrap" --timeout 30000 "${topics[@]}" "$@"; }
metric() { # name -> value for partition 0
  curl -s "http://127.0.0.1:$port/metrics" | sed -n "s/^$1{partition=\"0\"} //p;s/^$1 //p" | head -1
}
items() { # from to
  for i in $(seq "$1" "$2"); do printf '{"id":"v%d","vector":[%d,1,2,3]}\n' "$i" "$i"; done
}
length() { ctl --json info f | sed -n 's/.*"length":\([0-9]*\).*/\1/p'; }
wait_for() { # seconds command... : until the command succeeds
  local t=$1; shift
  for _ in $(seq $((t * 10))); do "$@" && return 0; sleep 0.1; done
  return 1
}
committed_is() { [[ $(metric vectord_partition_committed_offset) == "$1" ]]; }
length_is() { [[ $(length) == "$1" ]]; }

storaged_up
start
ctl create f --dim 4 --distance euclidean >/dev/null || fail "create"
items 1 100 >a.ndjson
ctl add f a.ndjson --batch 50 >/dev/null || fail "add"
# create (0) and two batches (1, 2): committed offset 3 once durable.
wait_for 20 committed_is 3 || fail "first checkpoint never committed ($(metric vectord_partition_committed_offset))"

outage() { # phase name; the store is failing when this runs
  local name=$1 before
  before=$(metric vectord_checkpoint_failures_total)
  items "$2" "$3" >b.ndjson
  ctl add f b.ndjson --batch 50 >/dev/null || fail "$name: add while the store fails"
  wait_for 20 length_is "$3" || fail "$name: commands not applied while the store fails"
  ctl --json search f --vector "[$3,1,2,3]" --k 1 | grep -q "\"v$3\"" ||
    fail "$name: search not answered while the store fails"
  sleep 2   # several checkpoint attempts
  [[ $(metric vectord_checkpoint_failures_total) -gt $before ]] ||
    fail "$name: no checkpoint failure counted"
  committed_is "$4" || fail "$name: offset committed while the store fails ($(metric vectord_partition_committed_offset))"
  [[ $(metric vectord_partition_pending) -gt 0 ]] || fail "$name: nothing pending"
}

# 1. storaged answers 500.
echo 500 >"$work/fail"
outage "500s" 101 200 3
grep 'event=checkpoint_failed' vectord.log | grep -q 'HTTP 500' ||
  fail "500s: checkpoint_failed does not name the status"
grep 'event=checkpoint_failed' vectord.log | grep -q '_vectors/f.lhv1' ||
  fail "500s: checkpoint_failed does not name the key"
! grep -q "$token" vectord.log vectord.out || fail "the token appears in the logs"
rm "$work/fail"
wait_for 20 committed_is 5 || fail "500s: commit did not move after recovery"

# 2. storaged unreachable.
kill $spid; wait $spid 2>/dev/null || true; spid=""
outage "unreachable" 201 300 5
grep 'event=checkpoint_failed' vectord.log | grep -q "connect" ||
  fail "unreachable: checkpoint_failed does not say so"
storaged_up
wait_for 20 committed_is 7 || fail "unreachable: commit did not move after recovery"

# 3. A restart while the store fails: loading waits for it.
items 301 350 >c.ndjson
ctl add f c.ndjson --batch 50 >/dev/null || fail "add before the kill"
wait_for 20 length_is 350 || fail "not applied before the kill"
kill -9 $pid; wait $pid 2>/dev/null || true; pid=""
echo 503 >"$work/fail"
log_from=$(wc -l <vectord.log)
start
wait_for 20 grep -q 'event=partition_load_failed' vectord.log ||
  fail "restart: no partition_load_failed"
if ctl search f --vector '[1,1,2,3]' >/dev/null 2>err.txt; then fail "restart: answered before loading"; fi
grep -q unavailable err.txt || fail "restart: search error: $(cat err.txt)"
rm "$work/fail"
wait_for 30 length_is 350 || fail "restart: never loaded after the store recovered"
ctl --json search f --vector '[350,1,2,3]' --k 1 | grep -q '"v350"' || fail "restart: search"
kill -TERM $pid; wait $pid || fail "SIGTERM"; pid=""
# Durable state: exactly 350 items, manifest at the last offset (7).
python3 - "$work/storaged" <<'PY' || fail "final checkpoint"
import glob, json, os, struct, sys
root = sys.argv[1]
path = [p for p in glob.glob(root + "/**", recursive=True) if p.endswith("f.lhv1")]
assert len(path) == 1, path
b = open(path[0], "rb").read()
env = json.loads(b[8:8 + struct.unpack(">I", b[4:8])[0]])
assert env["count"] == 350, env["count"]
man = [p for p in glob.glob(root + "/**", recursive=True) if p.endswith(".json")]
assert json.load(open(man[0]))["offset"] == 7, open(man[0]).read()
PY
echo "store_faults: 1 passed, 0 failed"
