#!/usr/bin/env bash
# Peak resident memory of a worker while it checkpoints a large partition,
# for two builds side by side in one run (issue 9 item 8: a checkpoint's
# extra memory must be about one index, not the whole partition).
#
# One commands partition holds 4 indexes of N/4 vectors each (default
# N=1,000,000, dim 32, synthetic). For each build: a fresh worker (file
# store, checkpoints off by policy) ingests everything through a real
# Kafka broker; then its peak RSS is reset (/proc/PID/clear_refs) and it is
# sent SIGTERM, whose shutdown checkpoint writes all 4 indexes; VmHWM is
# polled until it exits. Reported: RSS before, peak during the checkpoint,
# the difference, and the bytes written.
#
# Usage: bench/checkpoint_rss.sh NEW_BUILD_DIR [OLD_BUILD_DIR]   (N=..., DIM=...)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
new=$1 old=${2:-}
n=${N:-1000000} dim=${DIM:-32}
work=$(mktemp -d /tmp/vectord-ckrss.XXXXXX)
kafka=$repo/deploy/kafka/kafka.sh
pid=""
cleanup() {
  [[ -n $pid ]] && kill -9 $pid 2>/dev/null || true
  "$kafka" stop --dir "$work/kafka" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
PROG=$(basename "$0")
source "$repo/deploy/lib.sh" # free_port
"$new/tests/gen_vecs" "$work" $((n / 4)) 1 "$dim" euclidean 7 >/dev/null
mapfile -t kports < <(free_port 2)
"$kafka" start --dir "$work/kafka" --port "${kports[0]}" --controller-port "${kports[1]}" >/dev/null
bs=$(cat "$work/kafka/bootstrap")
topic() { "$kafka" topic create "$1" --partitions 1 --dir "$work/kafka" >/dev/null; }
topic vectord.replies

run() { # label build
  local label=$1 b=$2 t="ck-$1"
  for s in commands search dlq; do topic "$t.$s"; done
  "$b/vectord" -X kafka.bootstrap.servers="$bs" -X store.url="file://$work/store-$label" \
    -X group.id="$t" -X topic.commands="$t.commands" -X topic.search="$t.search" \
    -X topic.dlq="$t.dlq" -X checkpoint.interval.ms=86400000 -X checkpoint.max.pending=1000000000 \
    >"$work/$label.out" 2>"$work/$label.log" &
  pid=$!
  for ix in a b c d; do
    "$new/bench/vectord-kbench" -b "$bs" ingest --base "$work/base.fvecs" --index "$ix" \
      --topic "$t.commands" --batch 1000 >/dev/null
  done
  local before peak=0 h
  before=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  echo 5 >"/proc/$pid/clear_refs" # VmHWM := VmRSS
  kill -TERM $pid
  while h=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null) && [[ -n $h ]]; do
    ((h > peak)) && peak=$h
    sleep 0.01
  done
  wait $pid || true
  pid=""
  local bytes
  bytes=$(find "$work/store-$label/_vectors" -name '*.lhv1' -printf '%s\n' | awk '{s += $1} END {print s}')
  grep -q 'event=checkpoint ' "$work/$label.log" || { echo "$label: no checkpoint"; tail "$work/$label.log"; exit 1; }
  printf '%-4s rss_before_mb=%d peak_during_checkpoint_mb=%d extra_mb=%d files_mb=%d\n' "$label" \
    $((before / 1024)) $((peak / 1024)) $(((peak - before) / 1024)) $((bytes / 1048576))
}
echo "== $n vectors of dim $dim in one partition, 4 indexes"
[[ -n $old ]] && run old "$old"
run new "$new"
