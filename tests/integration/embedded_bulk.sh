#!/usr/bin/env bash
# A first-run bulk load into the embedded mode (CTest: embedded_bulk):
# 100,000 vectors from one .fvecs file in one `vectorctl add`. The mock
# cluster keeps only the last ~5 MiB of a partition (docs/worker.md), so a
# client that sends everything before waiting for acks gets ahead of the
# worker, the mock drops commands not yet applied and the worker refuses the
# partition. vectorctl keeps --max-in-flight batches unacknowledged at most.
# Then the "worker falls behind" message: a mock cluster with no worker
# (vectord --mock-broker) never acks; vectorctl must say how many batches
# are unacknowledged and where they are in the log, and exit 3.
#   embedded_bulk.sh VECTORD VECTORCTL GEN_VECS WORKDIR [N=100000]
set -euo pipefail
vectord=$1 vectorctl=$2 gen=$3 work=$4 n=${5:-100000}
rm -rf "$work"; mkdir -p "$work"; cd "$work"
pid=
trap '[[ -n $pid ]] && kill $pid 2>/dev/null; true' EXIT
fail() { echo "FAIL: $*"; [[ -f vectord.log ]] && grep -v '^%' vectord.log | tail -10; exit 1; }

"$gen" "$work" "$n" 1 16 euclidean 1 >/dev/null
# Created here, not by the background child's redirections, which may not
# have happened yet when the loops below read them.
: >vectord.out
: >>vectord.log
: >mock.out
"$vectord" -X store.url="file://$work/store" -X embedded.partitions=2 -X http.listen=127.0.0.1:0 \
  -X embedded.bootstrap.file= >vectord.out 2>>vectord.log &
pid=$!
for _ in $(seq 100); do
  bootstrap=$(sed -n 's/.*mock cluster at \([^ ]*\).*/\1/p' vectord.out)
  [[ -n $bootstrap ]] && break
  kill -0 $pid 2>/dev/null || fail "vectord exited"
  sleep 0.1
done
[[ -n $bootstrap ]] || fail "vectord printed no bootstrap address"
ctl() { "$vectorctl" -b "$bootstrap" --timeout 30000 "$@"; }

# A small graph (m 8, ef_construction 40): the test is about the flow of
# batches, and the default build costs 3x the CPU on a loaded machine.
ctl create bulk --dim 16 --distance euclidean --m 8 --ef-construction 40 >/dev/null ||
  fail "create"
start=$(date +%s.%N)
ctl add bulk base.fvecs >add.txt 2>add.err || fail "add: $(cat add.txt add.err)"
secs=$(echo "$(date +%s.%N) - $start" | bc)
grep -q "added $n items" add.txt || fail "add: $(cat add.txt add.err)"
ctl --json info bulk >info.json || fail "info: $(cat info.json)"
grep -q "\"length\":$n," info.json || fail "length: $(cat info.json)"
[[ ! -s add.err ]] || fail "add wrote to stderr without a terminal: $(cat add.err)"
! grep -q partition_refused vectord.log || fail "a partition was refused"
echo "embedded_bulk: $n vectors (dim 16) in $secs s: $(cat add.txt)"
# On a terminal (script(1) gives it one), progress and rate on stderr.
head -c $((2000 * 68)) base.fvecs >small.fvecs
script -qec "'$vectorctl' -b $bootstrap add bulk small.fvecs --batch 100 2>&1 >/dev/null" \
  /dev/null >tty.txt || fail "add on a terminal: $(cat tty.txt)"
grep -q "items sent.*acked.*items/s.*in flight" tty.txt || fail "no progress on a terminal: $(cat tty.txt)"
kill -TERM $pid; wait $pid || fail "vectord exited non-zero on SIGTERM"
pid=

# No worker: every batch stays unacknowledged.
"$vectord" --mock-broker -X embedded.partitions=1 >mock.out 2>>vectord.log &
pid=$!
for _ in $(seq 100); do
  bootstrap=$(sed -n 's/^bootstrap=//p' mock.out)
  [[ -n $bootstrap ]] && break
  sleep 0.1
done
[[ -n $bootstrap ]] || fail "the mock broker printed no address"
rc=0
"$vectorctl" -b "$bootstrap" --timeout 3000 add bulk base.fvecs --batch 100 --max-in-flight 4 \
  >behind.txt 2>behind.err || rc=$?
[[ $rc -eq 3 ]] || fail "no worker: exit $rc, want 3: $(cat behind.txt behind.err)"
grep -q "4 batches unacknowledged" behind.err || fail "behind message: $(cat behind.err)"
grep -q "partition 0 offsets 0-3" behind.err || fail "behind offsets: $(cat behind.err)"
echo "embedded_bulk: no worker: $(tail -1 behind.err)"
echo "embedded_bulk: 1 passed, 0 failed"
