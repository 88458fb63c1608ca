#!/usr/bin/env bash
# vectord against a real single-node Kafka (deploy/kafka/kafka.sh), through
# vectorctl (CTest: kafka_worker):
#   - refuses to start when commands and search have different partition counts;
#   - every op and its acks; rejects land in the DLQ;
#   - SIGKILL mid-ingest, restart: every acked item is there exactly once and
#     the restart replays only what came after the last checkpoint;
#   - SIGTERM checkpoints everything: the next start replays nothing;
#   - an index dropped and created again between two checkpoints loads.
#   kafka_worker.sh VECTORD VECTORCTL GEN_VECS WORKDIR
set -euo pipefail
vectord=$1 vectorctl=$2 gen=$3 work=$4
source "$(dirname "$0")/lib.sh"
pid=""
stop_workers() { [[ -n $pid ]] && kill -9 $pid 2>/dev/null || true; }

kafka_up
topic vectord.commands --partitions 3
topic vectord.search --partitions 3
topic vectord.commands.dlq --partitions 1
topic vectord.replies --partitions 1
topic mismatched.search --partitions 2

common=(-X kafka.bootstrap.servers="$bootstrap" -X store.url="file://$work/store"
        -X kafka.consumer.session.timeout.ms=6000 -X http.listen=127.0.0.1:0 -X group.instance.id=w1 -X search.threads=2
        -X search.min.offset.timeout.ms=1500)
if "$vectord" "${common[@]}" -X topic.search=mismatched.search >mismatch.out 2>&1; then
  fail "started with different partition counts"
fi
grep -q "must have the same partition count" mismatch.out || fail "mismatch message: $(cat mismatch.out)"

start() {
  "$vectord" "${common[@]}" "$@" >>vectord.out 2>>vectord.log &
  pid=$!
}
ctl() { "$vectorctl" -b "$bootstrap" --timeout 30000 "$@" 2>>ctl.err; }

"$gen" "$work" 6000 5 24 euclidean 5 >/dev/null
start -X checkpoint.interval.ms=600000 -X checkpoint.max.pending=5
ctl create items --dim 24 --distance euclidean >/dev/null || fail "create"
ctl add items "$work/base.fvecs" --batch 200 >add1.txt || fail "add: $(cat add1.txt)"
ctl --json info items >info.json || fail "info"
grep -q '"length":6000' info.json || fail "info: $(cat info.json)"
ctl --json search items --queries "$work/query.fvecs" --k 3 >q.json || fail "search"
[[ $(grep -c '"hits"' q.json) -eq 5 ]] || fail "searches: $(cat q.json)"
ctl add items <(printf '{"id":"x","vector":[1,2]}\n') >/dev/null 2>&1 && fail "bad dimension acked"
# Read-your-writes: a min_offset the partition has not reached times out.
ctl search items --vector "[$(seq -s, 1 24)]" --min-offset 99999999 >/dev/null &&
  fail "min_offset in the future answered"
tail -1 ctl.err | grep -q 'error timeout' || fail "min_offset: $(tail -1 ctl.err)"
# Spring Kafka's request/reply headers: the reply echoes kafka_correlationId.
printf '{"op":"info","index":"items"}' |
  ctl produce vectord.search items --header content-type=application/json \
    --header kafka_replyTopic=vectord.replies --header kafka_correlationId=spring-42
ctl --timeout 5000 consume vectord.replies >replies.jsonl || true
grep '"kafka_correlationId":"spring-42"' replies.jsonl | grep -q 'length[^0-9]*6000,' ||
  fail "no Spring-style reply: $(tail -3 replies.jsonl)"
ctl drop nope >/dev/null 2>&1 && fail "drop of a missing index acked"

# SIGKILL after the checkpoint policy has fired at least once, then restart.
sleep 1
kill -9 $pid; wait $pid 2>/dev/null || true; pid=""
before=$(grep -c 'event=checkpoint ' vectord.log || true)
[[ $before -ge 1 ]] || fail "no checkpoint before the kill"
from=$(wc -l <vectord.log)
start
ctl --json info items >info2.json || fail "info after SIGKILL"
grep -q '"length":6000' info2.json || fail "after SIGKILL: $(cat info2.json)"
grep -q 'event=partition_loaded' vectord.log || fail "restart did not load checkpoints"
# Bounded replay: at most the commands after the last checkpoint (max.pending=5),
# summed over this start's three partitions (each logs `assigned` once loaded).
assigned_since() { tail -n +$((from + 1)) vectord.log | grep 'event=assigned' || true; }
for _ in $(seq 100); do [[ $(assigned_since | wc -l) -ge 3 ]] && break; sleep 0.1; done
[[ $(assigned_since | wc -l) -eq 3 ]] || fail "restart: $(assigned_since | wc -l) partitions assigned, want 3"
replayed=$(assigned_since | sed -n 's/.* replay=\([0-9]*\).*/\1/p' | awk '{s += $1} END {print s + 0}')
echo "commands replayed after SIGKILL: $replayed"
[[ $replayed -le 10 ]] || fail "replayed $replayed commands after SIGKILL, expected at most 10"

# SIGTERM: everything checkpointed; the next start replays nothing.
kill -TERM $pid; wait $pid || fail "SIGTERM exit status"; pid=""
grep -q 'why=shutdown\|why=revoke' vectord.log || fail "no checkpoint on SIGTERM"
: >vectord.log
start
ctl --json info items >info3.json || fail "info after SIGTERM restart"
grep -q '"length":6000' info3.json || fail "after SIGTERM: $(cat info3.json)"
grep 'event=assigned' vectord.log | grep -vq 'replay=0' && fail "replayed commands after SIGTERM"
# Rejected commands went to the DLQ with their reason.
"$kafka" run org.apache.kafka.tools.GetOffsetShell --bootstrap-server "$bootstrap" \
  --topic vectord.commands.dlq >dlq.txt 2>/dev/null || true
grep -Eq 'vectord.commands.dlq:0:[1-9]' dlq.txt || fail "DLQ is empty: $(cat dlq.txt)"
# Dropped and created again between two checkpoints: the new index's file
# must not be deleted as the dropped one's.
ctl create again --dim 2 --distance euclidean >/dev/null || fail "create again"
printf '{"id":"old","vector":[1,2]}\n' | ctl add again - >/dev/null || fail "add old"
kill -TERM $pid; wait $pid || fail "SIGTERM before the drop"; pid=""
start
ctl drop again >/dev/null || fail "drop again"
ctl create again --dim 2 --distance euclidean >/dev/null || fail "re-create again"
printf '{"id":"new","vector":[3,4]}\n' | ctl add again - >/dev/null || fail "add new"
kill -TERM $pid; wait $pid || fail "SIGTERM after the re-create"; pid=""
: >vectord.log
start
ctl --json info again >info4.json || fail "info of the re-created index: $(tail -3 vectord.log)"
grep -q '"length":1,' info4.json || fail "re-created index: $(cat info4.json)"
ctl --json search again --vector '[3,4]' --k 1 | grep -q '"new"' || fail "re-created index search"
! grep -q 'event=partition_refused' vectord.log || fail "a partition was refused after the re-create"
kill -TERM $pid; wait $pid || fail "final SIGTERM"; pid=""
# kafka.consumer.session.timeout.ms reached the consumer only: librdkafka
# did not warn that the producer ignores it.
! grep -q 'CONFWARN' vectord.log || fail "librdkafka warned about the configuration: $(grep CONFWARN vectord.log)"
echo "kafka_worker: 1 passed, 0 failed"
