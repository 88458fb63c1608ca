#!/usr/bin/env bash
# The store failing under a running worker, against a real Kafka and the
# reference storaged server (CTest: store_faults). Phases:
#   1. storaged answers 500 (its --fail-file): the worker keeps applying
#      commands and answering searches, logs checkpoint_failed naming the key
#      and the status, counts the failures, and does not commit;
#      storaged recovers -> the checkpoint lands and the commit moves.
#   2. storaged is killed (connection refused): the same; restarted on the
#      same port -> the commit moves.
#   2b. storaged hangs (SIGSTOP) with a checkpoint in flight: applying and
#      searches go on; SIGCONT -> the commit moves.
#   3. the worker is SIGKILLed and restarted while storaged answers 503: the
#      partition stays loading, paused (searches get `unavailable`), logs
#      partition_load_failed; storaged recovers and, before the worker's next
#      attempt, a second worker joins: the rebalance hands the partition back
#      and it must load and be fetched (a pause outlives a revoke in
#      librdkafka), with every command applied exactly once.
#   4. two partitions, one unreadable: storaged fails only partition 1's
#      manifest at a restart; partition 0 loads and answers while partition 1
#      stays loading (its searches get `unavailable`, commands for it wait);
#      storaged recovers -> partition 1 loads and applies what waited.
#   store_faults.sh VECTORD VECTORCTL WORKDIR
set -euo pipefail
vectord=$1 vectorctl=$2 work=$3
source "$(dirname "$0")/lib.sh"
pid="" spid="" pid2="" gpid=""
stop_workers() {
  [[ -n $pid ]] && kill -9 $pid 2>/dev/null || true
  [[ -n $gpid ]] && kill -9 $gpid 2>/dev/null || true
  [[ -n $pid2 ]] && kill -9 $pid2 2>/dev/null || true
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
worker() { # instance, extra -X...
  local id=$1; shift
  : >>"vectord-$id.log" # exists before http_port reads it
  VECTORD_STORE_TOKEN=$token "$vectord" -X kafka.bootstrap.servers="$bootstrap" \
    -X store.url="http://127.0.0.1:$sport" "${topics[@]}" -X group.instance.id=$id \
    -X http.listen=127.0.0.1:0 -X checkpoint.interval.ms=500 -X checkpoint.max.pending=1000000 \
    -X checkpoint.retry.backoff.ms=200 -X checkpoint.retry.backoff.max.ms=1000 \
    -X store.retries=1 -X store.retry.backoff.ms=20 -X search.ready.timeout.ms=1500 \
    "$@" >>vectord-$id.out 2>>vectord-$id.log &
}
# http_port INSTANCE: the HTTP port the worker logged after line $log_from.
http_port() {
  port=""
  for _ in $(seq 100); do
    port=$(tail -n +$((log_from + 1)) vectord-$1.log | sed -n 's/.*event=http .*port=\([0-9]*\).*/\1/p')
    [[ -n $port ]] && return 0
    sleep 0.1
  done
  fail "worker $1 did not start"
}
start() { # extra -X...
  log_from=0; [[ -f vectord-f1.log ]] && log_from=$(wc -l <vectord-f1.log)
  worker f1 "$@"
  pid=$!
  http_port f1
}
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
logged() { # instance pattern: the worker logged it since its (re)start
  # grep reads everything (no -q): with pipefail, tail must not die of
  # SIGPIPE when the match comes early.
  tail -n +$((log_from + 1)) "vectord-$1.log" | grep -- "$2" >/dev/null
}
committed_is() { [[ $(metric vectord_partition_committed_offset) == "$1" ]]; }
length_is() { [[ $(length) == "$1" ]]; }

storaged_up
# Store timeouts that cannot end within max.poll.interval.ms (the checkpoint
# at a revoke waits for the store in the rebalance callback) are refused.
if timeout 30 "$vectord" -X kafka.bootstrap.servers="$bootstrap" -X store.url="http://127.0.0.1:$sport" \
  -X store.request.timeout.ms=100000 >/dev/null 2>refused.log; then
  fail "started with store calls longer than max.poll.interval.ms"
fi
grep -q 'startup_failed .*store.request.timeout.ms.*kafka.max.poll.interval.ms (300000 ms)' refused.log ||
  fail "the refusal does not name both keys: $(cat refused.log)"
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
grep 'event=checkpoint_failed' vectord-f1.log | grep 'HTTP 500' >/dev/null ||
  fail "500s: checkpoint_failed does not name the status"
grep 'event=checkpoint_failed' vectord-f1.log | grep '_vectors/.*/f@[0-9]*\.lhv1' >/dev/null ||
  fail "500s: checkpoint_failed does not name the key"
! grep -q "$token" vectord-f1.log vectord-f1.out || fail "the token appears in the logs"
rm "$work/fail"
wait_for 20 committed_is 5 || fail "500s: commit did not move after recovery"

# 2. storaged unreachable.
kill $spid; wait $spid 2>/dev/null || true; spid=""
outage "unreachable" 201 300 5
grep 'event=checkpoint_failed' vectord-f1.log | grep "connect" >/dev/null ||
  fail "unreachable: checkpoint_failed does not say so"
storaged_up
wait_for 20 committed_is 7 || fail "unreachable: commit did not move after recovery"

# 2b. storaged hangs (SIGSTOP: connections are accepted, nothing answers):
# the checkpoint in flight waits on the store thread while the worker goes
# on applying and answering; SIGCONT and the commit moves.
kill -STOP $spid
items 301 310 >h1.ndjson
ctl add f h1.ndjson --batch 10 >/dev/null || fail "hang: add"
sleep 1.5   # a checkpoint is now stuck in a PUT
items 311 320 >h2.ndjson
ctl add f h2.ndjson --batch 10 >/dev/null || fail "hang: add while a checkpoint is stuck"
wait_for 10 length_is 320 || fail "hang: commands not applied while the store hangs"
ctl --json search f --vector '[320,1,2,3]' --k 1 | grep -q '"v320"' ||
  fail "hang: search not answered while the store hangs"
committed_is 7 || fail "hang: committed while the store hangs"
kill -CONT $spid
wait_for 20 committed_is 9 || fail "hang: commit did not move after the store answered"

# 3. A restart while the store fails: loading waits for it, paused; a
# rebalance while it waits must not leave the partition paused.
items 321 350 >c.ndjson
ctl add f c.ndjson --batch 50 >/dev/null || fail "add before the kill"
wait_for 20 length_is 350 || fail "not applied before the kill"
kill -9 $pid; wait $pid 2>/dev/null || true; pid=""
echo 503 >"$work/fail"
start -X checkpoint.retry.backoff.ms=30000 -X checkpoint.retry.backoff.max.ms=30000
wait_for 20 logged f1 'event=partition_load_failed' ||
  fail "restart: no partition_load_failed"
if ctl search f --vector '[1,1,2,3]' >/dev/null 2>err.txt; then fail "restart: answered before loading"; fi
grep -q unavailable err.txt || fail "restart: search error: $(cat err.txt)"
rm "$work/fail"
worker f2; pid2=$!   # its join revokes and reassigns before f1's next attempt (30 s)
wait_for 25 length_is 350 || fail "restart: not loaded and fetched after the rebalance"
logged f1 'event=revoked' || fail "restart: no rebalance seen"
ctl --json search f --vector '[350,1,2,3]' --k 1 | grep -q '"v350"' || fail "restart: search"
items 351 360 >d.ndjson
ctl add f d.ndjson --batch 10 >/dev/null || fail "add after the rebalance"
wait_for 20 length_is 360 || fail "restart: not fetching after the rebalance"
kill -TERM $pid2; wait $pid2 || fail "SIGTERM f2"; pid2=""
kill -TERM $pid; wait $pid || fail "SIGTERM"; pid=""
# Durable state: exactly 360 items, manifest at the last offset (10).
python3 - "$work/storaged" <<'PY' || fail "final checkpoint"
import glob, json, os, struct, sys
root = sys.argv[1]
path = [p for p in glob.glob(root + "/**", recursive=True) if "/of@" in p and p.endswith(".lhv1")]
assert len(path) == 1, path  # older files are swept
b = open(path[0], "rb").read()
env = json.loads(b[8:8 + struct.unpack(">I", b[4:8])[0]])
assert env["count"] == 360, env["count"]
man = [p for p in glob.glob(root + "/**", recursive=True) if p.endswith(".json")]
assert len(man) == 1, man  # older manifests are swept
assert json.load(open(man[0]))["offset"] == 10, open(man[0]).read()
PY

# 4. Two partitions, partition 1's manifest unreadable at a restart.
topic g.commands --partitions 2
topic g.search --partitions 2
topic g.dlq --partitions 1
gtopics=(-X topic.commands=g.commands -X topic.search=g.search -X topic.dlq=g.dlq)
gctl() { "$vectorctl" -b "$bootstrap" --timeout 30000 "${gtopics[@]}" "$@"; }
gstart() { # extra -X...
  log_from=0; [[ -f vectord-g1.log ]] && log_from=$(wc -l <vectord-g1.log)
  worker g1 "${gtopics[@]}" -X group.id=store-faults-g "$@"
  gpid=$!
  http_port g1
}
glength() { gctl --json info "$1" 2>/dev/null | sed -n 's/.*"length":\([0-9]*\).*/\1/p'; }
glength_is() { [[ $(glength "$1") == "$2" ]]; }
gstart
for i in 0 1 2 3 4 5 6 7; do
  gctl create "n$i" --dim 4 --distance euclidean >/dev/null || fail "partitions: create n$i"
  printf '{"id":"a","vector":[%d,1,2,3]}\n' "$i" | gctl add "n$i" - >/dev/null || fail "partitions: add n$i"
done
for i in 0 1 2 3 4 5 6 7; do wait_for 20 glength_is "n$i" 1 || fail "partitions: n$i not applied"; done
kill -TERM $gpid; wait $gpid || fail "partitions: SIGTERM"; gpid=""
# An index of each partition, from its manifest (the shutdown checkpoint).
first_index() { # partition
  python3 -c 'import glob, json, sys
newest = sorted(glob.glob(sys.argv[1] + "/d_manifests/dg.commands/d" + sys.argv[2] + "/o*.json"))[-1]
print(min(json.load(open(newest))["indexes"]))' "$work/storaged" "$1"
}
p0=$(first_index 0) p1=$(first_index 1)
[[ -n $p0 && -n $p1 ]] || fail "partitions: the 8 indexes are not on both partitions"
echo "503 _manifests/g.commands/1/" >"$work/fail"
gstart -X checkpoint.retry.backoff.ms=300 -X checkpoint.retry.backoff.max.ms=300
wait_for 20 logged g1 'event=partition_load_failed partition=1' ||
  fail "partitions: no partition_load_failed for partition 1"
gctl --json search "$p0" --vector '[0,1,2,3]' --k 1 | grep -q '"a"' ||
  fail "partitions: partition 0 does not answer while partition 1 cannot load"
if gctl search "$p1" --vector '[0,1,2,3]' >/dev/null 2>err.txt; then
  fail "partitions: partition 1 answered before loading"
fi
grep -q unavailable err.txt || fail "partitions: partition 1's search error: $(cat err.txt)"
# The add to partition 1 waits for its ack (in the background) until the
# partition loads; the one to partition 0 is applied at once.
printf '{"id":"b","vector":[9,9,9,9]}\n' | gctl add "$p1" - >add1.out 2>&1 &
add1=$!
printf '{"id":"b","vector":[9,9,9,9]}\n' | gctl add "$p0" - >/dev/null || fail "partitions: add to $p0"
wait_for 10 glength_is "$p0" 2 || fail "partitions: partition 0 not applying while partition 1 waits"
sleep 1   # several load attempts of partition 1
kill -0 $add1 2>/dev/null || fail "partitions: the add to $p1 was acked before its partition loaded"
rm "$work/fail"
wait $add1 || fail "partitions: the add to $p1: $(cat add1.out)"
glength_is "$p1" 2 || fail "partitions: partition 1 did not load and apply after the store recovered"
gctl --json search "$p1" --vector '[9,9,9,9]' --k 1 | grep -q '"b"' || fail "partitions: search after loading"
kill -TERM $gpid; wait $gpid || fail "partitions: SIGTERM"; gpid=""

echo "store_faults: 1 passed, 0 failed"
