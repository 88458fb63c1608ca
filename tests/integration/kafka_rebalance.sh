#!/usr/bin/env bash
# Rebalances and zombies against a real Kafka (CTest: kafka_rebalance).
# One command log (4 indexes over 3 partitions, 20,000 inserts, upserts,
# deletes) in three topic sets:
#   A  one worker, undisturbed: the reference;
#   B  two workers, a third joins mid-ingest, then one stops; a probe search
#      runs throughout and must get the right answer or `unavailable` /
#      `timeout`, never a wrong one;
#   C  a worker is SIGSTOPped past the session timeout so another takes over
#      and checkpoints, then SIGCONTed (a zombie); then every worker is
#      SIGKILLed and one restarts.
# The LHV1 payloads of every index must be byte-identical to A's.
#   kafka_rebalance.sh VECTORD VECTORCTL GEN_VECS WORKDIR
set -euo pipefail
vectord=$1 vectorctl=$2 gen=$3 work=$4
source "$(dirname "$0")/lib.sh"
declare -A pids=()
stop_workers() {
  for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null; kill -9 "$p" 2>/dev/null; done || true
}

kafka_up
for set in a b c; do topic_set "rb.$set"; done
topic vectord.replies --partitions 1

"$gen" "$work" 5000 5 16 euclidean 13 >/dev/null
indexes=(alpha bravo charlie delta)
produce() { # set
  local c=("$vectorctl" -b "$bootstrap" --timeout 60000 --no-wait -X "topic.commands=rb.$1.commands")
  "${c[@]}" create probe --dim 16 --distance euclidean >/dev/null
  printf '{"id":"p","vector":[%s]}\n' "$(seq -s, 1 16)" >probe.ndjson
  "${c[@]}" add probe probe.ndjson >/dev/null
  for ix in "${indexes[@]}"; do "${c[@]}" create "$ix" --dim 16 --distance euclidean >/dev/null; done
  for ix in "${indexes[@]}"; do "${c[@]}" add "$ix" "$work/base.fvecs" --batch 100 >/dev/null; done
  for ix in "${indexes[@]}"; do "${c[@]}" delete "$ix" $(seq 3 3 600) >/dev/null; done
}
for set in a b c; do produce $set; done
want=$((5000 - 200))

worker() { # name set
  "$vectord" -X kafka.bootstrap.servers="$bootstrap" -X store.url="file://$work/store-$2" \
    -X group.id="rb-$2" -X group.instance.id="$1" -X kafka.consumer.session.timeout.ms=6000 \
    -X kafka.consumer.heartbeat.interval.ms=500 -X http.listen=127.0.0.1:0 \
    -X topic.commands="rb.$2.commands" -X topic.search="rb.$2.search" -X topic.dlq="rb.$2.dlq" \
    -X checkpoint.max.pending=5 -X checkpoint.interval.ms=1000 -X search.ready.timeout.ms=3000 \
    >>"w-$1.out" 2>>"w-$1.log" &
  pids[$1]=$!
}
ctl() { local set=$1; shift; "$vectorctl" -b "$bootstrap" --timeout 20000 -X "topic.search=rb.$set.search" "$@"; }
wait_done() { # set
  for _ in $(seq 600); do
    local n=0
    for ix in "${indexes[@]}"; do
      ctl "$1" --json info "$ix" 2>/dev/null | grep -q "\"length\":$want," && n=$((n + 1))
    done
    [[ $n -eq ${#indexes[@]} ]] && return 0
    sleep 0.5
  done
  fail "set $1 never reached the final lengths"
}
stop() { kill -TERM "${pids[$1]}"; wait "${pids[$1]}" || fail "$1 exit status"; unset "pids[$1]"; }

# A: the reference.
worker a1 a; wait_done a; stop a1

# B: 2 workers, a third joins, one leaves, with a probe search running.
probe_loop() {
  local ok=0 unavailable=0 wrong=0
  while [[ ! -e probe.stop ]]; do
    if out=$(ctl b --json search probe --vector "[$(seq -s, 1 16)]" --k 1 2>probe.err); then
      if grep -q '"id":"p","distance":0' <<<"$out"; then ok=$((ok + 1)); else wrong=$((wrong + 1)); echo "$out" >>probe.wrong; fi
    elif grep -Eq 'unavailable|timeout' probe.err; then unavailable=$((unavailable + 1))
    else wrong=$((wrong + 1)); cat probe.err >>probe.wrong; fi
  done
  echo "$ok $unavailable $wrong" >probe.result
}
worker b1 b; worker b2 b
probe_loop & probe_pid=$!
sleep 4; worker b3 b
sleep 4; stop b1
wait_done b
touch probe.stop; wait $probe_pid
read -r p_ok p_unavail p_wrong <probe.result
stop b2; stop b3
[[ $p_wrong -eq 0 ]] || fail "probe searches got $p_wrong wrong answers: $(head -5 probe.wrong)"
[[ $p_ok -gt 0 ]] || fail "no probe search succeeded"

# C: a zombie, then everyone crashes.
worker c1 c; worker c2 c
sleep 3
kill -STOP "${pids[c1]}"
sleep 10                       # past the 6 s session timeout: c2 takes everything
kill -CONT "${pids[c1]}"       # c1 wakes up believing it still owns its partitions
sleep 4
kill -9 "${pids[c1]}" "${pids[c2]}"; wait "${pids[c1]}" "${pids[c2]}" 2>/dev/null || true
unset "pids[c1]" "pids[c2]"
worker c3 c; wait_done c; stop c3
fenced=$(grep -c 'event=fenced\|lost=1\|assignment lost' w-c1.log || true)

python3 - "$work" "${indexes[@]}" <<'PY' || fail "payloads differ"
import json, struct, sys
w, names = sys.argv[1], sys.argv[2:]
def find(store, name):  # _vectors/<topic>/<partition>/<name>@<offset>.lhv1, the newest
    import glob
    return sorted(glob.glob(f"{store}/_vectors/*/*/{name}@*.lhv1"))[-1]
def split(path):
    b = open(path, "rb").read()
    n = struct.unpack(">I", b[4:8])[0]
    return json.loads(b[8:8 + n]), b[8 + n:]
bad = 0
for name in names + ["probe"]:
    ea, pa = split(find(f"{w}/store-a", name))
    for s in "bc":
        e, p = split(find(f"{w}/store-{s}", name))
        if p != pa or e["count"] != ea["count"]:
            print(f"{name}: set {s} differs from a ({e['count']} vs {ea['count']} items)")
            bad += 1
print(f"{len(names) + 1} indexes compared across 3 sets")
sys.exit(bad)
PY
echo "probe searches during rebalances: $p_ok answered, $p_unavail unavailable, $p_wrong wrong"
echo "zombie c1: $fenced fencing/lost-assignment events logged"
echo "kafka_rebalance: 1 passed, 0 failed"
