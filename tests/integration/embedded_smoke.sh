#!/usr/bin/env bash
# End-to-end check of the embedded mode (CTest: embedded_smoke):
# vectord on its in-process mock cluster and a file store, driven by
# vectorctl through every op; SIGTERM must checkpoint; a restart (a new
# mock cluster, so an empty log) must come back with the indexes.
#   embedded_smoke.sh VECTORD VECTORCTL GEN_VECS WORKDIR
set -euo pipefail
vectord=$1 vectorctl=$2 gen=$3 work=$4
rm -rf "$work"; mkdir -p "$work"; cd "$work"
fail() { echo "FAIL: $*"; [[ -f vectord.log ]] && tail -20 vectord.log; exit 1; }
# A failed run must not leave its worker writing into the next run's directory.
pid=""
trap '[[ -n $pid ]] && kill -9 $pid 2>/dev/null; true' EXIT

start() {
  # The files exist before the loop below reads them: the background
  # child opens its redirections only when it gets to run.
  : >vectord.out
  : >>vectord.log
  "$vectord" -X store.url="file://$work/store" -X checkpoint.interval.ms=1000 \
    -X embedded.partitions=2 -X http.listen=127.0.0.1:0 >vectord.out 2>>vectord.log &
  pid=$!
  for _ in $(seq 100); do
    bootstrap=$(sed -n 's/.*mock cluster at \([^ ]*\).*/\1/p' vectord.out)
    [[ -n $bootstrap ]] && return 0
    kill -0 $pid 2>/dev/null || fail "vectord exited: $(cat vectord.log)"
    sleep 0.1
  done
  fail "vectord printed no bootstrap address"
}
ctl() { "$vectorctl" -b "$bootstrap" --timeout 20000 "$@"; }

"$gen" "$work" 2000 5 16 cosine 3 >/dev/null
start
# /metrics, /healthz, /readyz on the port the worker logged.
port=$(sed -n 's/.*event=http .*port=\([0-9]*\).*/\1/p' vectord.log | tail -1)
get() { python3 -c 'import sys,urllib.request
try: r = urllib.request.urlopen(sys.argv[1]); print(r.status); print(r.read().decode())
except urllib.error.HTTPError as e: print(e.code); print(e.read().decode())' "http://127.0.0.1:$port$1"; }
status() { get "$1" >http.txt; head -1 http.txt; }
# Fresh partitions have nothing pending (before: a fresh load queued the
# delete of a manifest that does not exist, and showed 1 pending forever).
for _ in $(seq 100); do [[ $(status /readyz) == 200 ]] && break; sleep 0.1; done
get /metrics >metrics0.txt
[[ $(grep -c '^vectord_partition_pending{partition="[01]"} 0$' metrics0.txt) == 2 ]] ||
  fail "fresh partitions pending: $(grep partition_pending metrics0.txt)"
ctl create docs --dim 16 --distance cosine >create.json || fail "create"
grep -q '"created":true' create.json || fail "create ack: $(cat create.json)"
ctl create docs --dim 16 --distance cosine >/dev/null 2>err.txt && fail "duplicate create accepted"
grep -q already_exists err.txt || fail "duplicate create: $(cat err.txt)"
ctl create docs --dim 16 --distance cosine --if-not-exists >/dev/null || fail "if_not_exists"
ctl add docs "$work/base.fvecs" --batch 300 >add.txt || fail "add: $(cat add.txt)"
grep -q "added 2000 items" add.txt || fail "add: $(cat add.txt)"
printf '{"id":"a","vector":[%s],"metadata":{"lang":"en","n":1}}\n' \
  "$(seq -s, 1 16)" >one.ndjson
ctl add docs one.ndjson >/dev/null || fail "add ndjson"
ctl --json search docs --vector "[$(seq -s, 1 16)]" --k 3 >hit.json || fail "search"
grep -q '"id":"a"' hit.json || fail "search did not find the stored vector: $(cat hit.json)"
grep -q '"lang":"en"' hit.json || fail "metadata not returned: $(cat hit.json)"
ctl --json info docs >info.json || fail "info"
grep -q '"length":2001' info.json || fail "info: $(cat info.json)"
ctl delete docs a nope >del.json || fail "delete"
grep -q '"deleted":1' del.json && grep -q '"unknown":1' del.json || fail "delete: $(cat del.json)"
ctl search docs --vector "[1,2]" >/dev/null 2>err.txt && fail "bad dimension accepted"
grep -q invalid_vector err.txt || fail "dimension error: $(cat err.txt)"
ctl info nope >/dev/null 2>err.txt && fail "info of a missing index"
grep -q not_found err.txt || fail "not_found: $(cat err.txt)"
ctl create tmp --dim 4 >/dev/null && ctl drop tmp >/dev/null || fail "create/drop"
ctl info tmp >/dev/null 2>&1 && fail "dropped index still answers"

# /metrics, /healthz, /readyz.
[[ $(status /healthz) == 200 ]] || fail "/healthz"
[[ $(status /readyz) == 200 ]] || fail "/readyz: $(cat http.txt)"
get /metrics >metrics.txt
grep -q '^vectord_commands_applied_total [1-9]' metrics.txt || fail "metrics: $(head -30 metrics.txt)"
grep -q 'vectord_commands_rejected_by_code_total{code="already_exists"} 1' metrics.txt ||
  fail "rejected by code: $(grep rejected metrics.txt)"
grep -q 'vectord_index_items{index="docs",partition="[0-9]"} 2000' metrics.txt ||
  fail "index gauge: $(grep index_items metrics.txt)"
grep -q 'vectord_partition_state{partition="[0-9]",state="ready"} 1' metrics.txt ||
  fail "partition state: $(grep partition_state metrics.txt)"
[[ $(status /nope) == 404 ]] || fail "/nope"

kill -TERM $pid; wait $pid || fail "vectord exited non-zero on SIGTERM"
grep -q 'event=checkpoint' vectord.log || fail "no checkpoint on shutdown"
docs_file=$(find store/_vectors -path '*/vectord.commands/*/docs@*.lhv1' | sort | tail -1)
[[ -n $docs_file ]] || fail "no checkpoint file"
ctl_inspect=$("$vectorctl" inspect "$docs_file") || fail "inspect"
grep -q '"count": 2000' <<<"$ctl_inspect" || fail "inspect: $ctl_inspect"
[[ -z $(find store/_vectors -name 'tmp@*.lhv1') ]] || fail "dropped index left its checkpoint"

: >vectord.out
start
ctl --json info docs >info2.json || fail "info after restart"
grep -q '"length":2000' info2.json || fail "after restart: $(cat info2.json)"
ctl --json search docs --queries "$work/query.fvecs" --k 5 >q.json || fail "query file"
[[ $(grep -c '"hits"' q.json) -eq 5 ]] || fail "query file answers: $(cat q.json)"
kill -TERM $pid; wait $pid || fail "second shutdown"; pid=""
echo "embedded_smoke: 1 passed, 0 failed"
