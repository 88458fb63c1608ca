#!/usr/bin/env bash
# A flood of searches for a partition that cannot load, against a real
# Kafka and the reference storaged (CTest: kafka_search_flood):
#   - the other partition keeps answering within its normal latency (before:
#     every search thread waited up to search.ready.timeout.ms on the
#     loading partition, and the ready partition's searches queued behind);
#   - the worker's resident memory stays flat: the loading partition's queue
#     is bounded (search.queue.max) and the partition paused in the
#     consumer, so the flood waits in Kafka (before: every record was moved
#     into an unbounded queue);
#   - once the partition loads, every flooded search is answered.
#   kafka_search_flood.sh VECTORD VECTORCTL WORKDIR
set -euo pipefail
vectord=$1 vectorctl=$2 work=$3
source "$(dirname "$0")/lib.sh"
pid="" spid=""
stop_workers() {
  [[ -n $pid ]] && kill -9 $pid 2>/dev/null || true
  [[ -n $spid ]] && kill $spid 2>/dev/null || true
}

kafka_up
topic h.commands --partitions 2
topic h.search --partitions 2
topic h.dlq --partitions 1
topic vectord.replies --partitions 1
topics=(-X topic.commands=h.commands -X topic.search=h.search -X topic.dlq=h.dlq)
sport=$(free_port)
python3 "$repo/tests/storaged/storaged.py" --root "$work/storaged" --bind 127.0.0.1 \
  --port "$sport" --fail-file "$work/fail" >>storaged.log 2>&1 &
spid=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$sport/storage?prefix=x" && break; sleep 0.1; done

start() {
  : >vectord.log
  "$vectord" -X kafka.bootstrap.servers="$bootstrap" -X store.url="http://127.0.0.1:$sport" \
    "${topics[@]}" -X group.instance.id=h1 -X http.listen=127.0.0.1:0 -X search.threads=2 \
    ${QUEUE_MAX:+-X search.queue.max=$QUEUE_MAX} -X store.retries=0 \
    -X checkpoint.retry.backoff.ms=300 -X checkpoint.retry.backoff.max.ms=300 \
    >vectord.out 2>vectord.log &
  pid=$!
  for _ in $(seq 100); do grep -q 'event=http' vectord.log && return 0; sleep 0.1; done
  fail "vectord did not start"
}
ctl() { "$vectorctl" -b "$bootstrap" --timeout 30000 "${topics[@]}" "$@" 2>>ctl.err; }
metric() { # name: its first value
  local port
  port=$(sed -n 's/.*event=http .*port=\([0-9]*\).*/\1/p' vectord.log | tail -1)
  curl -s "http://127.0.0.1:$port/metrics" | sed -n "s/^$1 //p" | head -1
}
rss_kb() { awk '/^VmRSS/ {print $2}' /proc/$pid/status; }

start
for i in 0 1 2 3 4 5 6 7; do
  ctl --json create "n$i" --dim 4 --distance euclidean >create.json || fail "create n$i"
  part=$(sed -n 's/.*"partition":\([0-9]*\).*/\1/p' create.json)
  printf '{"id":"a","vector":[%d,1,2,3]}\n' "$i" | ctl add "n$i" - >/dev/null || fail "add n$i"
  [[ $part == 0 ]] && p0="n$i"
  [[ $part == 1 ]] && p1="n$i"
done
[[ -n ${p0:-} && -n ${p1:-} ]] || fail "the indexes are not on both partitions"
kill -TERM $pid; wait $pid || fail "SIGTERM"; pid=""

# Partition 1's manifest cannot be read: it stays loading.
echo "503 _manifests/h.commands/1/" >"$work/fail"
start
for _ in $(seq 200); do grep -q 'event=partition_load_failed partition=1' vectord.log && break; sleep 0.1; done
grep -q 'event=partition_load_failed partition=1' vectord.log || fail "partition 1 did not fail to load"
ctl --json search "$p0" --vector '[0,1,2,3]' --k 1 >/dev/null || fail "partition 0 before the flood"
sleep 1
rss0=$(rss_kb)

# 20,000 searches of 4 KB each (80 MB) for partition 1.
flood=20000
printf '{"op":"search","index":"%s","vector":[1,1,2,3],"k":1}%4000s' "$p1" "" |
  ctl produce h.search "$p1" --count $flood --header content-type=application/json \
    --header reply-to=vectord.replies --header correlation-id=flood || fail "flood"
# Partition 0 answers within its normal latency meanwhile.
worst=0
for i in 1 2 3 4 5; do
  t0=$(date +%s%N)
  ctl --timeout 10000 --json search "$p0" --vector '[0,1,2,3]' --k 1 >/dev/null ||
    fail "partition 0 did not answer during the flood"
  ms=$((($(date +%s%N) - t0) / 1000000))
  [[ $ms -gt $worst ]] && worst=$ms
done
rss1=$(rss_kb)
grown=$(((rss1 - rss0) / 1024))
echo "during the flood: partition 0's slowest search ${worst} ms; RSS ${rss0} kB -> ${rss1} kB (+${grown} MB)"
[[ $worst -lt 2000 ]] || fail "partition 0's searches took up to $worst ms during the flood"
[[ $grown -lt 40 ]] || fail "resident memory grew by $grown MB with the flood queued"
[[ $(metric 'vectord_search_partition_paused{partition="1"}') == 1 ]] ||
  fail "partition 1 not paused with its queue full"

# Partition 1 loads: every flooded search is answered.
rm "$work/fail"
for _ in $(seq 600); do
  [[ $(metric vectord_searches_total) -ge $((flood + 6)) ]] && break
  sleep 0.1
done
[[ $(metric vectord_searches_total) -ge $((flood + 6)) ]] ||
  fail "flooded searches not all answered: $(metric vectord_searches_total)"
grep -q 'event=search_resumed partition=1' vectord.log || fail "partition 1 never resumed"
kill -TERM $pid; wait $pid || fail "final SIGTERM"; pid=""
echo "kafka_search_flood: 1 passed, 0 failed"
