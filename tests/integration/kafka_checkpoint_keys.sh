#!/usr/bin/env bash
# Checkpoint keys against a real Kafka (CTest: kafka_checkpoint_keys):
#   - one index name on two partitions (a producer with another
#     partitioner, no Redis): two independent, durable indexes (before: one
#     shared file, each partition replaying against the other's offsets);
#   - the longest legal names checkpoint (before: 240 ASCII characters, or a
#     249-byte UTF-8 name, exceeded the file name limit and every checkpoint
#     of the partition failed);
#   - checkpoints of the older layouts load and move to the current one:
#     the single manifest key `_manifests/<topic>/<p>.json` with files at
#     `_vectors/<topic>/<p>/<name>.lhv1` or at the Go service's
#     `_vectors/<name>.lhv1`;
#   - a file whose envelope names another partition is not installed,
#     logged and counted; the index is replayed from the log instead.
#   kafka_checkpoint_keys.sh VECTORD VECTORCTL WORKDIR
set -euo pipefail
vectord=$1 vectorctl=$2 work=$3
source "$(dirname "$0")/lib.sh"
pid=""
stop_workers() { [[ -n $pid ]] && kill -9 $pid 2>/dev/null || true; }

kafka_up
topic vectord.commands --partitions 3
topic vectord.search --partitions 3
topic vectord.commands.dlq --partitions 1
topic vectord.replies --partitions 1

start() {
  : >vectord.log
  "$vectord" -X kafka.bootstrap.servers="$bootstrap" -X store.url="file://$work/store" \
    -X http.listen=127.0.0.1:0 -X group.instance.id=k1 -X checkpoint.interval.ms=300 \
    >vectord.out 2>vectord.log &
  pid=$!
}
stop() { kill -TERM $pid; wait $pid || fail "SIGTERM exit status"; pid=""; }
ctl() { "$vectorctl" -b "$bootstrap" --timeout 20000 "$@" 2>>ctl.err; }
json() { printf '%s' "$2" | ctl produce "$1" dup --partition "$q" --header content-type=application/json "${@:3}"; }
# info of dup on partition q, through the search topic, by correlation id.
info_q() {
  json vectord.search '{"op":"info","index":"dup"}' --header reply-to=vectord.replies \
    --header "correlation-id=$1"
  for _ in $(seq 50); do
    ctl --timeout 3000 consume vectord.replies >replies.jsonl || true
    grep -q "\"correlation-id\":\"$1\"" replies.jsonl && break
  done
  grep "\"correlation-id\":\"$1\"" replies.jsonl
}
metrics() {
  local port
  port=$(sed -n 's/.*event=http .*port=\([0-9]*\).*/\1/p' vectord.log | tail -1)
  curl -fsS "http://127.0.0.1:$port/metrics"
}

start
ctl --json create dup --dim 2 --distance euclidean >create.json || fail "create"
p=$(sed -n 's/.*"partition":\([0-9]*\).*/\1/p' create.json)
q=$(((p + 1) % 3))
printf '{"id":"p1","vector":[1,1]}\n' | ctl add dup - >/dev/null || fail "add on $p"
# The same name on partition q, as a producer with another partitioner sends it.
json vectord.commands '{"op":"create","index":"dup","dimension":2,"distance":"euclidean"}'
json vectord.commands '{"op":"add","index":"dup","items":[{"id":"q1","vector":[1,2]},{"id":"q2","vector":[2,2]},{"id":"q3","vector":[3,2]}]}'
info_q q-1 | grep -q 'length[^0-9]*3,' || fail "dup on partition $q: $(info_q q-1)"
# The longest legal names.
ascii=$(head -c 240 /dev/zero | tr '\0' 'n')
utf8=$(for _ in $(seq 83); do printf '\xe6\x97\xa5'; done)
for name in "$ascii" "$utf8"; do
  ctl create "$name" --dim 2 --distance euclidean >/dev/null || fail "create a long name"
  printf '{"id":"l","vector":[5,5]}\n' | ctl add "$name" - >/dev/null || fail "add to a long name"
done
stop
! grep -q 'event=checkpoint_failed' vectord.log || fail "a checkpoint failed: $(grep checkpoint_failed vectord.log | head -2)"
# The newest file of dup in partition $1, and the newest manifest.
file_of() { find "store/_vectors/vectord.commands/$1" -maxdepth 1 -name 'dup@*.lhv1' | sort | tail -1; }
manifest_of() { find "store/_manifests/vectord.commands/$1" -maxdepth 1 -name '*.json' | sort | tail -1; }
[[ -n $(file_of $p) && -n $(file_of $q) ]] ||
  fail "one file per partition expected: $(find store/_vectors -name 'dup*')"
# Superseded files and manifests are deleted: one of each is left.
[[ $(find "store/_vectors/vectord.commands/$p" -name 'dup@*' | wc -l) == 1 &&
   $(find "store/_manifests/vectord.commands/$p" -name '*.json' | wc -l) == 1 ]] ||
  fail "garbage left: $(find store -type f)"

start
ctl --json info dup | grep -q '"length":1,' || fail "dup on partition $p after restart: $(ctl --json info dup)"
info_q q-2 | grep -q 'length[^0-9]*3,' || fail "dup on partition $q after restart: $(info_q q-2)"
for name in "$ascii" "$utf8"; do
  ctl --json info "$name" | grep -q '"length":1,' || fail "a long name after restart"
done
stop

# Migration from the two older layouts: partition p as the release before
# offsets were in the keys wrote it (one manifest key, the file at its
# unversioned key), with dup's file at the Go service's key.
f=$(file_of $p) m=$(manifest_of $p)
mv "$m" "store/_manifests/vectord.commands/$p.json"
mv "$f" store/_vectors/dup.lhv1
for g in "store/_vectors/vectord.commands/$p"/*@*.lhv1; do
  [[ -e $g ]] && mv "$g" "${g%@*}.lhv1"
done
start
ctl --json info dup | grep -q '"length":1,' || fail "migrated dup: $(ctl --json info dup)"
grep -q "event=checkpoint_migrated partition=$p index=dup" vectord.log || fail "no checkpoint_migrated"
for _ in $(seq 100); do
  [[ -n $(file_of $p) && ! -e store/_vectors/dup.lhv1 && ! -e store/_manifests/vectord.commands/$p.json ]] && break
  sleep 0.1
done
[[ -n $(file_of $p) && -n $(manifest_of $p) && ! -e store/_vectors/dup.lhv1 &&
   ! -e store/_manifests/vectord.commands/$p.json &&
   -z $(find "store/_vectors/vectord.commands/$p" -name '*.lhv1' ! -name '*@*') ]] ||
  fail "not moved to the current layout: $(find store -type f)"
stop

# A file whose envelope names partition q, at partition p's key.
cp "$(file_of $q)" "$(file_of $p)"
start
ctl --json info dup | grep -q '"length":1,' || fail "dup on $p with a foreign file: $(ctl --json info dup)"
grep -q "event=checkpoint_foreign partition=$p index=dup" vectord.log || fail "no checkpoint_foreign"
metrics | grep '^vectord_checkpoint_foreign_total 1' >/dev/null || fail "foreign file not counted"
info_q q-3 | grep -q 'length[^0-9]*3,' || fail "dup on partition $q: $(info_q q-3)"
stop
echo "kafka_checkpoint_keys: 1 passed, 0 failed"
