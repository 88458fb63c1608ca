#!/usr/bin/env bash
# The Redis fleet directory (docs/directory.md) against a real Kafka and a
# real redis-server (CTest: redis_directory):
#   - a bad directory.redis_url stops vectord at start, naming the key and
#     not showing the password;
#   - heartbeat and index entries appear with the right fields, and
#     `vectorctl ls` / `status` (text and --json) show them;
#   - a command for a pinned index produced to another partition reaches
#     the DLQ as wrong_partition;
#   - Redis stopped while the worker runs: it logs directory_down once,
#     keeps applying commands and answering searches; Redis restarted empty:
#     directory_up, and the heartbeat, entries and pins come back by themselves;
#   - drop removes entry and pin; SIGTERM removes the heartbeat.
#   redis_directory.sh VECTORD VECTORCTL WORKDIR
set -euo pipefail
vectord=$1 vectorctl=$2 work=$3
source "$(dirname "$0")/lib.sh"
redis=$repo/deploy/redis/redis.sh
pid=""
stop_workers() {
  [[ -n $pid ]] && kill -9 $pid 2>/dev/null || true
  "$redis" stop --dir "$work/redis" >/dev/null 2>&1 || true
}

"$redis" start --dir "$work/redis" --port 0 2>redis.out || fail "redis: $(cat redis.out)"
url=$("$redis" url --dir "$work/redis")
rcli() { "$redis" cli --dir "$work/redis" "$@"; }
kafka_up
topic_set rd
topic vectord.replies --partitions 1

group=rdgroup
topics=(-X topic.commands=rd.commands -X topic.search=rd.search -X topic.dlq=rd.dlq -X group.id=$group)
common=(-X kafka.bootstrap.servers="$bootstrap" -X store.url="file://$work/store" "${topics[@]}"
        -X worker.id=w1 -X group.instance.id=w1 -X kafka.consumer.session.timeout.ms=6000
        -X http.listen=127.0.0.1:0 -X directory.redis_url="$url"
        -X directory.heartbeat.interval.ms=300 -X directory.ttl.ms=3000
        -X directory.retry.backoff.max.ms=1000 -X checkpoint.interval.ms=1000)
ctl() { "$vectorctl" -b "$bootstrap" --timeout 30000 "${topics[@]}" --redis "$url" "$@" 2>>ctl.err; }
# wait_for WHAT CMD...: retries CMD for up to 30 s.
wait_for() {
  local what=$1; shift
  for _ in $(seq 150); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  fail "timed out waiting for $what"
}
metrics() { curl -fsS "http://127.0.0.1:$port/metrics"; }

# A bad URL fails fast, names the key, keeps the password to itself.
if "$vectord" "${common[@]}" -X directory.redis_url="redis://:hunter2@127.0.0.1:notaport" \
     >bad.out 2>&1; then
  fail "started with a bad directory.redis_url"
fi
grep -q 'directory.redis_url' bad.out || fail "bad URL message: $(cat bad.out)"
grep -q 'hunter2' bad.out && fail "the password was printed: $(cat bad.out)"

"$vectord" "${common[@]}" >>vectord.out 2>>vectord.log &
pid=$!
wait_for "the worker's HTTP port" grep -q 'event=http ' vectord.log
port=$(sed -n 's/.*event=http .*port=\([0-9]*\).*/\1/p' vectord.log | tail -1)

ctl create docs --dim 4 --distance euclidean >create.json || fail "create docs"
part=$(sed -n 's/.*"partition":\([0-9]*\).*/\1/p' create.json)
[[ -n $part ]] || fail "no partition in the ack: $(cat create.json)"
for i in $(seq 1 20); do printf '{"id":"d%d","vector":[%d,1,2,3]}\n' "$i" "$i"; done >docs.ndjson
ctl add docs docs.ndjson --batch 5 >/dev/null || fail "add docs"
for n in alpha beta gamma; do ctl create $n --dim 2 >/dev/null || fail "create $n"; done

# Index entry and pin.
has_docs_entry() {
  ctl --json ls >ls.json &&
    python3 - "$part" <<'PY'
import json, sys
part = int(sys.argv[1])
ix = {x["name"]: x for x in json.load(open("ls.json"))["indexes"]}
d = ix["docs"]
assert set(ix) == {"docs", "alpha", "beta", "gamma"}, ix.keys()
assert d["partition"] == part and d["pinned_partition"] == part, d
assert d["owner"] == "w1" and d["owner_alive"], d
assert d["dimension"] == 4 and d["distance"] == "euclidean" and d["m"] == 16, d
assert d["length"] == 20 and d["applied_offset"] >= 4, d
assert d["checkpointed_offset"] == d["applied_offset"], d   # checkpoint.interval.ms=1000
assert d["updated_ms"] > 0, d
PY
}
wait_for "the docs entry in the directory" has_docs_entry
[[ $(rcli get "vectord:$group:pin:docs") == "$part" ]] || fail "pin of docs"
[[ $(rcli hget "vectord:$group:index:docs" owner) == w1 ]] || fail "owner field"
ctl ls >ls.txt || fail "ls"
grep -Eq "^docs +$part +w1 +4 +euclidean +20 " ls.txt || fail "ls text: $(cat ls.txt)"

# Heartbeat with a TTL, and status.
rcli hgetall "vectord:$group:worker:w1" >hb.txt
grep -qx 'partition_count' hb.txt && grep -qx '3' hb.txt || fail "heartbeat: $(cat hb.txt)"
grep -Eq '^0:ready:-?[0-9]+:[0-9]+,1:ready:-?[0-9]+:[0-9]+,2:ready:-?[0-9]+:[0-9]+$' hb.txt ||
  fail "heartbeat partitions: $(cat hb.txt)"
ttl=$(rcli pttl "vectord:$group:worker:w1")
[[ $ttl -gt 0 && $ttl -le 3000 ]] || fail "heartbeat TTL $ttl"
ctl status >status.txt || fail "status"
grep -q '1 worker; 3 of 3 partitions owned' status.txt || fail "status: $(cat status.txt)"
grep -Eq "^$part +w1 +ready " status.txt || fail "status partitions: $(cat status.txt)"
ctl --json status >status.json || fail "status --json"
python3 -c '
import json; s = json.load(open("status.json"))
assert [w["id"] for w in s["workers"]] == ["w1"], s
assert s["owned"] == 3 and s["unowned"] == [] and s["partition_count"] == 3, s
assert sorted(w["partition"] for w in s["workers"][0]["partitions"]) == [0, 1, 2], s
' || fail "status json: $(cat status.json)"

# wrong_partition: commands for docs produced straight to another partition.
other=$(( (part + 1) % 3 ))
printf '{"op":"add","index":"docs","items":[{"id":"x","vector":[9,9,9,9]}]}' |
  ctl produce rd.commands docs --partition $other --header content-type=application/json ||
  fail "produce add"
printf '{"op":"create","index":"docs","dimension":4}' |
  ctl produce rd.commands docs --partition $other --header content-type=application/json ||
  fail "produce create"
dlq_has_two() {
  ctl --timeout 3000 consume rd.dlq >dlq.jsonl || true
  [[ $(grep -c '"error-code":"wrong_partition"' dlq.jsonl) -eq 2 ]]
}
wait_for "two wrong_partition records in the DLQ" dlq_has_two
grep '"error-code":"wrong_partition"' dlq.jsonl | grep -q "\"source-partition\":\"$other\"" ||
  fail "DLQ record: $(cat dlq.jsonl)"
metrics >m1.txt || fail "metrics"
grep -q 'vectord_commands_rejected_by_code_total{code="wrong_partition"} 2' m1.txt ||
  fail "wrong_partition metric"
ctl --json info docs | grep -q '"length":20' || fail "the misrouted add was applied"

# Redis stops while the worker runs.
"$redis" stop --dir "$work/redis" 2>/dev/null
wait_for "directory_down in the log" grep -q 'event=directory_down' vectord.log
for i in $(seq 21 40); do printf '{"id":"d%d","vector":[%d,1,2,3]}\n' "$i" "$i"; done >more.ndjson
ctl add docs more.ndjson --batch 5 >/dev/null || fail "add while Redis is down"
ctl create fresh --dim 3 >/dev/null || fail "create while Redis is down"
ctl --json search docs --vector '[30,1,2,3]' --k 1 >hit.json || fail "search while Redis is down"
grep -q '"id":"d30"' hit.json || fail "search result: $(cat hit.json)"
ctl --json info docs | grep -q '"length":40' || fail "length while Redis is down"
ctl ls >/dev/null 2>&1 && fail "ls succeeded without Redis"
ctl ls >/dev/null 2>&1 || [[ $? -eq 4 ]] || fail "ls exit status without Redis"
metrics >m.txt
grep -q '^vectord_directory_up 0' m.txt || fail "directory_up gauge: $(grep directory m.txt)"
grep -q '^vectord_directory_pin_checks_skipped_total [1-9]' m.txt || fail "skipped pin checks"
sleep 2
[[ $(grep -c 'event=directory_down' vectord.log) -eq 1 ]] ||
  fail "directory_down logged $(grep -c 'event=directory_down' vectord.log) times"

# Redis comes back, empty (no persistence): everything is published again.
"$redis" start --dir "$work/redis" 2>/dev/null || fail "redis restart"
up_again() { [[ $(grep -c 'event=directory_up' vectord.log) -ge 2 ]]; }
wait_for "directory_up after the restart" up_again
back() {
  ctl --json ls >ls2.json &&
    python3 - "$part" <<'PY'
import json, sys
ix = {x["name"]: x for x in json.load(open("ls2.json"))["indexes"]}
assert ix["docs"]["length"] == 40 and ix["docs"]["pinned_partition"] == int(sys.argv[1]), ix
assert ix["fresh"]["pinned_partition"] == ix["fresh"]["partition"], ix
assert set(ix) == {"docs", "alpha", "beta", "gamma", "fresh"}, ix.keys()
PY
}
wait_for "entries and pins back after the restart" back
hb_back() { [[ $(rcli exists "vectord:$group:worker:w1") == 1 ]]; }
wait_for "the heartbeat back" hb_back
metrics >m3.txt || fail "metrics"
grep -q '^vectord_directory_up 1' m3.txt || fail "directory_up gauge after the restart"

# drop: entry and pin go.
ctl drop fresh >/dev/null || fail "drop fresh"
dropped() {
  [[ $(rcli exists "vectord:$group:pin:fresh" "vectord:$group:index:fresh") == 0 ]] &&
    ! rcli smembers "vectord:$group:indexes" | grep -qx fresh
}
wait_for "the fresh entry and pin removed" dropped

# SIGTERM: the heartbeat goes, the entries stay with their last offsets.
kill -TERM $pid; wait $pid || fail "SIGTERM exit status"; pid=""
[[ $(rcli exists "vectord:$group:worker:w1") == 0 ]] || fail "heartbeat left after SIGTERM"
ctl status >status2.txt || fail "status after SIGTERM"
grep -q '0 workers; 0 of 0 partitions owned' status2.txt || fail "status: $(cat status2.txt)"
ctl ls >ls3.txt || fail "ls after SIGTERM"
grep -E '^docs ' ls3.txt | grep -q 'owner gone' || fail "ls after SIGTERM: $(cat ls3.txt)"
echo "redis_directory: 1 passed, 0 failed"
