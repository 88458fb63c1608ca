#!/usr/bin/env bash
# A zombie's store write lands after the new owner's checkpoint, against a
# real Kafka and the reference storaged (CTest: kafka_zombie_write).
#
#   1. Worker z1 owns the only commands partition. storaged holds z1's next
#      manifest PUT (its --stall-file), and z1 is SIGSTOPped with the PUT in
#      flight: it has passed its assignment_lost check.
#   2. z2 takes the partition over (z1's session times out), loads the last
#      durable checkpoint, applies more commands - among them the drop of an
#      index - and checkpoints: its manifest, then the dropped index's file
#      is deleted.
#   3. storaged lets z1's PUT through and z1 wakes up: a zombie's write, older
#      than what z2 wrote. z2 is SIGKILLed (no shutdown checkpoint to paper
#      over it), z1 too.
#   4. A third worker loads the partition: it must not be refused (before:
#      z1's manifest had replaced z2's and named the dropped index, whose
#      file z2 had deleted: "loading checkpoints: not found") and must hold
#      every command exactly once.
#   kafka_zombie_write.sh VECTORD VECTORCTL WORKDIR
set -euo pipefail
vectord=$1 vectorctl=$2 work=$3
source "$(dirname "$0")/lib.sh"
declare -A pids=()
spid=""
stop_workers() {
  for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null; kill -9 "$p" 2>/dev/null; done || true
  [[ -n $spid ]] && kill "$spid" 2>/dev/null || true
}

kafka_up
topic z.commands --partitions 1
topic z.search --partitions 1
topic z.dlq --partitions 1
topic vectord.replies --partitions 1
topics=(-X topic.commands=z.commands -X topic.search=z.search -X topic.dlq=z.dlq)
sport=$(free_port)
python3 "$repo/tests/storaged/storaged.py" --root "$work/storaged" --bind 127.0.0.1 \
  --port "$sport" --stall-file "$work/stall" >>storaged.log 2>&1 &
spid=$!
for _ in $(seq 100); do
  curl -s -o /dev/null "http://127.0.0.1:$sport/storage?prefix=x" && break
  sleep 0.1
done

worker() { # instance
  : >>"w-$1.log"
  "$vectord" -X kafka.bootstrap.servers="$bootstrap" -X store.url="http://127.0.0.1:$sport" \
    "${topics[@]}" -X group.id=zombie -X group.instance.id="$1" \
    -X kafka.consumer.session.timeout.ms=6000 -X kafka.consumer.heartbeat.interval.ms=500 \
    -X http.listen=127.0.0.1:0 -X checkpoint.interval.ms=300 -X checkpoint.max.pending=1000000 \
    -X search.ready.timeout.ms=3000 >>"w-$1.out" 2>>"w-$1.log" &
  pids[$1]=$!
}
ctl() { "$vectorctl" -b "$bootstrap" --timeout 30000 "${topics[@]}" "$@"; }
items() { # prefix from to
  for i in $(seq "$2" "$3"); do printf '{"id":"%s%d","vector":[%d,1,2,3]}\n' "$1" "$i" "$i"; done
}
length() { ctl --json info "$1" 2>/dev/null | sed -n 's/.*"length":\([0-9]*\).*/\1/p'; }
wait_for() { # seconds command...
  local t=$1; shift
  for _ in $(seq $((t * 10))); do "$@" && return 0; sleep 0.1; done
  return 1
}
length_is() { [[ $(length "$1") == "$2" ]]; }
logged() { grep -- "$2" "w-$1.log" >/dev/null; }
manifests() { find "$work/storaged/d_manifests" -name 'o*.json' 2>/dev/null | wc -l; }

# 1. z1 applies and checkpoints; then its next manifest PUT is held.
worker z1
wait_for 60 logged z1 'event=assigned partition=0' || fail "z1 not assigned"
ctl create keep --dim 4 --distance euclidean >/dev/null || fail "create keep"
ctl create gone --dim 4 --distance euclidean >/dev/null || fail "create gone"
items k 1 50 | ctl add keep - >/dev/null || fail "add keep"
items g 1 10 | ctl add gone - >/dev/null || fail "add gone"
wait_for 20 logged z1 'event=checkpoint partition=0' || fail "z1 did not checkpoint"
echo "_manifests/" >"$work/stall"
items k 51 60 | ctl add keep - >/dev/null || fail "add keep 51..60"
wait_for 20 test -f "$work/stall.held" || fail "z1's manifest PUT was not held"
kill -STOP "${pids[z1]}"
echo "held: $(cat "$work/stall.held")"

# 2. z2 takes over, drops gone, adds more, checkpoints.
worker z2
wait_for 60 logged z2 'event=assigned partition=0' || fail "z2 was not assigned the partition"
ctl drop gone >/dev/null || fail "drop gone"
items k 61 100 | ctl add keep - >/dev/null || fail "add keep 61..100"
wait_for 20 length_is keep 100 || fail "z2: keep has $(length keep) items, want 100"
wait_for 20 logged z2 'event=checkpoint partition=0' || fail "z2 did not checkpoint"
sleep 1 # its garbage deletes, after the manifest

# 3. The zombie's write lands; z1 wakes up; both die without a goodbye.
rm "$work/stall.held"
kill -CONT "${pids[z1]}"
sleep 3
kill -9 "${pids[z1]}" "${pids[z2]}"
wait "${pids[z1]}" "${pids[z2]}" 2>/dev/null || true
pids=()
echo "manifests in the store: $(manifests)"

# 4. A new worker: the partition loads, nothing lost, nothing twice.
worker z3
wait_for 60 logged z3 'event=assigned partition=0' || {
  grep 'partition_refused\|partition_load_failed' w-z3.log | head -3
  fail "z3: partition 0 not assigned/ready: $(grep -o 'reason=.*' w-z3.log | head -1)"
}
! logged z3 'event=partition_refused' || fail "z3 refused the partition: $(grep partition_refused w-z3.log)"
wait_for 20 length_is keep 100 || fail "z3: keep has $(length keep) items, want 100"
if ctl --json info gone >gone.json 2>&1; then fail "z3: the dropped index is back: $(cat gone.json)"; fi
grep -q not_found gone.json || fail "z3: info gone: $(cat gone.json)"
# Searches for the last item added find it (nothing applied twice: lengths
# are counts of live ids, so check the stored count too).
ctl --json search keep --vector '[100,1,2,3]' --k 1 | grep -q '"k100"' || fail "z3: k100 not found"
kill -TERM "${pids[z3]}"; wait "${pids[z3]}" || fail "z3 exit status"
unset "pids[z3]"
python3 - "$work/storaged" <<'PY' || fail "final checkpoint"
import glob, json, struct, sys
root = sys.argv[1]
files = sorted(glob.glob(root + "/**/okeep@*.lhv1", recursive=True))
b = open(files[-1], "rb").read()
env = json.loads(b[8:8 + struct.unpack(">I", b[4:8])[0]])
assert env["count"] == 100, env["count"]
assert not glob.glob(root + "/**/ogone@*.lhv1", recursive=True), "gone's files left"
PY
echo "kafka_zombie_write: 1 passed, 0 failed"
