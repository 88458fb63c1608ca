#!/usr/bin/env bash
# Replies and the DLQ against a real Kafka whose broker auto-creates topics
# (CTest: kafka_replies):
#   - a DLQ record is never lost: with the DLQ topic missing the partition
#     does not commit past the rejected command; once the topic exists the
#     record arrives and the commit moves on;
#   - a DLQ record too large for the DLQ topic arrives without its value,
#     with a value-omitted header;
#   - replies never go to the worker's own topics, and only to topics under
#     reply.topics.allow;
#   - the producer never creates a topic;
#   - reply topics that do not exist do not delay other acks;
#   - a reply too large for its topic becomes a reply_too_large error;
#   - a producer message.max.bytes below the accepted message size is
#     refused at start.
#   kafka_replies.sh VECTORD VECTORCTL WORKDIR
set -euo pipefail
vectord=$1 vectorctl=$2 work=$3
source "$(dirname "$0")/lib.sh"
pid=""
stop_workers() { [[ -n $pid ]] && kill -9 $pid 2>/dev/null || true; }

AUTO_CREATE=true kafka_up
topic vectord.commands --partitions 1
topic vectord.search --partitions 1
topic vectord.replies --partitions 1
topic other.replies --partitions 1

common=(-X kafka.bootstrap.servers="$bootstrap" -X store.url="file://$work/store"
        -X http.listen=127.0.0.1:0 -X group.instance.id=r1 -X limits.max.message.bytes=4096
        -X reply.topics.allow=vectord.replies -X checkpoint.interval.ms=200
        -X checkpoint.retry.backoff.max.ms=1000
        -X kafka.producer.topic.metadata.propagation.max.ms=1500)

# The producer limit must leave room for the DLQ copy of an accepted message.
if "$vectord" "${common[@]}" -X kafka.producer.message.max.bytes=5000 >limit.out 2>&1; then
  fail "started with kafka.producer.message.max.bytes below limits.max.message.bytes"
fi
grep -q 'kafka.producer.message.max.bytes (5000) must be at least limits.max.message.bytes' limit.out ||
  fail "producer limit message: $(cat limit.out)"

"$vectord" "${common[@]}" >vectord.out 2>vectord.log &
pid=$!
ctl() { "$vectorctl" -b "$bootstrap" --timeout 20000 "$@" 2>>ctl.err; }
end_offset() { # TOPIC: the end offset of its partition 0
  "$kafka" run org.apache.kafka.tools.GetOffsetShell --bootstrap-server "$bootstrap" \
    --topic "$1" 2>/dev/null | sed -n "s/^$1:0://p"
}
metrics() {
  local port
  port=$(sed -n 's/.*event=http .*port=\([0-9]*\).*/\1/p' vectord.log | tail -1)
  curl -fsS "http://127.0.0.1:$port/metrics"
}
committed() { metrics | sed -n 's/^vectord_partition_committed_offset{partition="0"} //p'; }

ctl create items --dim 2 --distance euclidean >/dev/null || fail "create"

# 1. No DLQ topic: the rejected command's record cannot be delivered; the
#    commit must not pass it (before: committed anyway, record lost).
printf 'not a body' | ctl produce vectord.commands items
printf '{"id":"a","vector":[1,2]}\n' | ctl add items - >/dev/null || fail "add after the bad command"
sleep 4
grep -q 'event=dlq_failed' vectord.log || fail "no dlq_failed logged"
c=$(committed)
[[ -n $c && $c -le 1 ]] || fail "committed offset $c passed the rejected command at offset 1"
metrics | grep '^vectord_dlq_failures_total [1-9]' >/dev/null || fail "dlq failures not counted"
# The DLQ topic appears (small records only): the record arrives, the commit moves.
topic vectord.commands.dlq --partitions 1 --config max.message.bytes=2000
for _ in $(seq 100); do [[ $(committed) -ge 3 ]] && break; sleep 0.2; done
[[ $(committed) -ge 3 ]] || fail "commit did not move once the DLQ topic existed: $(committed)"
ctl --timeout 5000 consume vectord.commands.dlq >dlq.jsonl || true
grep -q '"error-code":"decode_error"' dlq.jsonl || fail "DLQ record missing: $(cat dlq.jsonl)"

# 2. Too large for the DLQ topic (3000 bytes > its 2000): it arrives
#    without its value (before: lost, and committed past).
head -c 3000 /dev/zero | tr '\0' 'x' | ctl produce vectord.commands items
for _ in $(seq 100); do
  ctl --timeout 3000 consume vectord.commands.dlq >dlq.jsonl || true
  grep -q 'value-omitted' dlq.jsonl && break
  sleep 0.2
done
grep 'value-omitted' dlq.jsonl | grep -q '"source-offset":"3"' ||
  fail "oversized DLQ record did not arrive without its value: $(tail -2 dlq.jsonl)"

# 3. reply-to the commands topic: applied, the ack is not produced there
#    (before: the ack landed on the commands topic and was consumed as a command).
before=$(end_offset vectord.commands)
printf '{"op":"add","index":"items","items":[{"id":"b","vector":[3,4]}]}' |
  ctl produce vectord.commands items --header content-type=application/json \
    --header reply-to=vectord.commands --header correlation-id=own-1
ctl --json search items --vector '[3,4]' --k 1 --min-offset "$before" | grep -q '"b"' ||
  fail "the add with reply-to=commands was not applied"
sleep 1
after=$(end_offset vectord.commands)
[[ $after -eq $((before + 1)) ]] || fail "commands topic grew by $((after - before)), want 1"
metrics | grep 'vectord_replies_refused_total{reason="own_topic"} 1' >/dev/null ||
  fail "own-topic refusal not counted: $(metrics | grep refused)"

# 4. Outside reply.topics.allow: nothing is produced to other.replies.
printf '{"op":"info","index":"items"}' |
  ctl produce vectord.search items --header content-type=application/json \
    --header reply-to=other.replies --header correlation-id=other-1
for _ in $(seq 50); do metrics | grep 'refused_total{reason="not_allowed"} 1' >/dev/null && break; sleep 0.1; done
metrics | grep 'vectord_replies_refused_total{reason="not_allowed"} 1' >/dev/null ||
  fail "not_allowed refusal not counted"
[[ $(end_offset other.replies) -eq 0 ]] || fail "a reply reached other.replies"

# 5. A reply to a topic that does not exist does not create it, though the
#    broker would (before: the producer's metadata request created it).
printf '{"op":"info","index":"items"}' |
  ctl produce vectord.search items --header content-type=application/json \
    --header reply-to=vectord.replies.ghost --header correlation-id=ghost-1
sleep 4
"$kafka" topic list --dir "$work/kafka" >topics.txt
! grep -qx 'vectord.replies.ghost' topics.txt || fail "the reply created topic vectord.replies.ghost"

# 6. Commands asking for replies on five topics that do not exist, then one
#    ack: answered at once (the topics are looked up off the poll thread;
#    test_outbox shows the look-up no longer blocks when the broker is slow).
for i in 1 2 3 4 5; do
  printf '{"op":"create","index":"items","dimension":2,"distance":"euclidean","if_not_exists":true}' |
    ctl produce vectord.commands items --header content-type=application/json \
      --header reply-to=vectord.replies.none$i
done
t0=$(date +%s%N)
ctl create items --dim 2 --distance euclidean --if-not-exists >/dev/null || fail "create after ghosts"
ms=$((($(date +%s%N) - t0) / 1000000))
echo "ack after five unknown reply topics: $ms ms"
[[ $ms -lt 3000 ]] || fail "the ack took $ms ms behind five unknown reply topics"

# 7. A reply larger than its topic accepts: a reply_too_large error arrives
#    in its place, with the correlation id (before: nothing arrived).
topic vectord.replies.small --partitions 1 --config max.message.bytes=1000
pad=$(head -c 300 /dev/zero | tr '\0' 'p')
for i in $(seq 10); do printf '{"id":"m%d","vector":[%d,1],"metadata":{"pad":"%s"}}\n' $i $i "$pad"; done |
  ctl add items - --batch 10 >/dev/null || fail "add with metadata"
printf '{"op":"search","index":"items","vector":[1,1],"k":10}' |
  ctl produce vectord.search items --header content-type=application/json \
    --header reply-to=vectord.replies.small --header correlation-id=big-1
for _ in $(seq 50); do
  ctl --timeout 3000 consume vectord.replies.small >small.jsonl || true
  grep -q 'reply_too_large' small.jsonl && break
  sleep 0.2
done
grep 'reply_too_large' small.jsonl | grep -q '"correlation-id":"big-1"' ||
  fail "no reply_too_large error in place of the large reply: $(cat small.jsonl)"
metrics | grep '^vectord_replies_too_large_total 1' >/dev/null || fail "too-large reply not counted"

kill -TERM $pid; wait $pid || fail "SIGTERM exit status"; pid=""
echo "kafka_replies: 1 passed, 0 failed"
