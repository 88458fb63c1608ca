#!/usr/bin/env bash
# Exactly-once under SIGKILL against a real Kafka (CTest: kafka_exactly_once).
# The same command log (2 indexes, 50,000 vector inserts in 250-item
# batches, upserts and deletes) is written to two topic sets. Worker A
# applies set A undisturbed; worker B applies set B while being SIGKILLed at
# KILLS (default 10) random moments, restarted each time. Both finish with a
# SIGTERM; the LHV1 payloads of each index must be byte-identical, and the
# envelopes must agree on count and deleted.
#
# STORE s3 (CTest: kafka_exactly_once_s3) keeps the checkpoints in a real S3
# server (s3proxy, filesystem backend, so objects survive its restarts) and
# adds store outages to the kills: every third run of worker B starts while
# S3 is down (its loads fail and are retried), and every third run loses S3
# in the middle (its checkpoints fail and are retried, offsets stay put).
#   kafka_exactly_once.sh VECTORD VECTORCTL GEN_VECS WORKDIR [KILLS] [file|s3]
set -euo pipefail
vectord=$1 vectorctl=$2 gen=$3 work=$4 kills=${5:-10} store=${6:-file}
source "$(dirname "$0")/lib.sh"
pid=""
s3proxy=$repo/deploy/s3/s3proxy.sh
stop_workers() {
  [[ -n $pid ]] && kill -9 $pid 2>/dev/null || true
  [[ $store == s3 ]] && "$s3proxy" stop --dir "$work/s3" >/dev/null 2>&1 || true
}
s3_up() {
  "$s3proxy" start --dir "$work/s3" --port "$s3port" --bucket eo-test >>s3proxy.out 2>&1 ||
    fail "s3proxy did not start"
}
s3_down() { "$s3proxy" stop --dir "$work/s3" >>s3proxy.out 2>&1; }
store_url() { # set
  if [[ $store == s3 ]]; then echo "s3://eo-test/store-$1"; else echo "file://$work/store-$1"; fi
}
if [[ $store == s3 ]]; then
  s3port=$(free_port)
  s3_up
  eval "$("$s3proxy" env --dir "$work/s3")"
  s3_get() { # key file
    curl -sf -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' --aws-sigv4 "aws:amz:$AWS_REGION:s3" \
      --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" "$AWS_ENDPOINT_URL_S3/eo-test/$1" -o "$2"
  }
  s3_newest() { # prefix: the last key under it (keys end in zero-padded offsets)
    local q
    q=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1")
    curl -sf -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' --aws-sigv4 "aws:amz:$AWS_REGION:s3" \
      --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" "$AWS_ENDPOINT_URL_S3/eo-test?list-type=2&prefix=$q" |
      grep -o '<Key>[^<]*</Key>' | sed 's/<[^>]*>//g' | sort | tail -1
  }
fi

kafka_up
for set in a b; do topic_set "eo.$set"; done
topic vectord.replies --partitions 1

"$gen" "$work" 25000 5 24 euclidean 11 >/dev/null
# Rows 0..24999 split in 5 files; the last one doubles as an upsert batch.
python3 - "$work" <<'PY'
import struct, sys
w = sys.argv[1]
raw = open(f"{w}/base.fvecs", "rb").read()
row = 4 + 24 * 4
for i in range(5):
    open(f"{w}/part{i}.fvecs", "wb").write(raw[i * 5000 * row:(i + 1) * 5000 * row])
PY
produce() { # topic set
  local c=("$vectorctl" -b "$bootstrap" --timeout 60000 --no-wait -X "topic.commands=eo.$1.commands")
  "${c[@]}" create e1 --dim 24 --distance euclidean >/dev/null
  "${c[@]}" create e2 --dim 24 --distance cosine >/dev/null
  for i in 0 1 2 3 4; do
    "${c[@]}" add e1 "$work/part$i.fvecs" --batch 250 >/dev/null
    "${c[@]}" add e2 "$work/part$i.fvecs" --batch 250 >/dev/null
  done
  # Row numbers restart per file: part4 rows 0..4999 upsert e1's ids 0..4999.
  "${c[@]}" add e1 "$work/part4.fvecs" --batch 250 >/dev/null
  "${c[@]}" delete e1 $(seq 10 10 1500) >/dev/null
  "${c[@]}" delete e2 $(seq 7 7 700) nope >/dev/null
  "${c[@]}" drop nope >/dev/null  # rejected: a DLQ record in the middle
  "${c[@]}" add e2 "$work/part0.fvecs" --batch 250 >/dev/null
}
produce a
produce b
# e1: 5000 ids, 150 deleted; e2: 5000 ids (re-added after the deletes).
want_e1=4850 want_e2=5000

run() { # set, extra -X...
  local set=$1; shift
  "$vectord" -X kafka.bootstrap.servers="$bootstrap" -X store.url="$(store_url "$set")" \
    -X store.retries=1 -X checkpoint.retry.backoff.max.ms=2000 \
    -X group.id="eo-$set" -X group.instance.id="eo-$set-w" -X kafka.consumer.session.timeout.ms=6000 -X http.listen=127.0.0.1:0 \
    -X topic.commands="eo.$set.commands" -X topic.search="eo.$set.search" \
    -X topic.dlq="eo.$set.dlq" -X checkpoint.max.pending=7 -X checkpoint.interval.ms=1500 \
    "$@" >>"vectord-$set.out" 2>>"vectord-$set.log" &
  pid=$!
}
wait_done() { # set
  local c=("$vectorctl" -b "$bootstrap" --timeout 20000 -X "topic.search=eo.$1.search" --json)
  for _ in $(seq 600); do
    if "${c[@]}" info e1 2>/dev/null | grep -q "\"length\":$want_e1," &&
       "${c[@]}" info e2 2>/dev/null | grep -q "\"length\":$want_e2,"; then return 0; fi
    kill -0 $pid 2>/dev/null || fail "worker $1 died"
    sleep 0.5
  done
  fail "set $1 never reached the final lengths"
}

run a; wait_done a; kill -TERM $pid; wait $pid || fail "worker a exit status"; pid=""

pause() { sleep "$(python3 -c "import random; print(round(random.uniform($1, $2), 2))")"; }
for k in $(seq "$kills"); do
  if [[ $store == s3 && $((k % 3)) == 1 ]]; then
    s3_down; run b; pause 1.0 2.0; s3_up; pause 0.5 1.5   # starts while S3 is down
  elif [[ $store == s3 && $((k % 3)) == 2 ]]; then
    run b; pause 1.0 2.0; s3_down; pause 1.0 2.0; s3_up   # loses S3 in the middle
  else
    run b; pause 0.7 2.0
  fi
  kill -9 $pid; wait $pid 2>/dev/null || true; pid=""
done
run b; wait_done b; kill -TERM $pid; wait $pid || fail "worker b exit status"; pid=""
if [[ $store == s3 ]]; then
  for set in a b; do
    mkdir -p "$work/store-$set/_vectors"
    for name in e1 e2; do
      got=""
      for part in 0 1 2; do  # _vectors/<topic>/<partition>/<name>@<offset>.lhv1
        key=$(s3_newest "store-$set/_vectors/eo.$set.commands/$part/$name@") || true
        [[ -n $key ]] && s3_get "$key" "$work/store-$set/_vectors/$name.lhv1" && { got=1; break; }
      done
      [[ -n $got ]] || fail "s3: cannot read $name.lhv1 of set $set"
    done
  done
  loadfails=$(grep -c 'event=partition_load_failed' vectord-b.log || true)
  ckfails=$(grep -c 'event=checkpoint_failed' vectord-b.log || true)
  echo "store outages: partition_load_failed=$loadfails checkpoint_failed=$ckfails"
  [[ $loadfails -gt 0 && $ckfails -gt 0 ]] || fail "the outages were not felt (loads $loadfails, checkpoints $ckfails)"
  ! grep -qF "$AWS_SECRET_ACCESS_KEY" vectord-*.log vectord-*.out || fail "the S3 secret key is in a log"
fi
replays=$(grep -c 'event=partition_loaded' vectord-b.log || true)
checkpoints=$(grep -c 'event=checkpoint ' vectord-b.log || true)

python3 - "$work" <<'PY' || fail "payloads differ"
import json, struct, sys
w = sys.argv[1]
def find(store, name):
    # _vectors/<topic>/<partition>/<name>@<offset>.lhv1, the newest; the S3
    # files were copied flat.
    import glob, os
    flat = f"{store}/_vectors/{name}.lhv1"
    return flat if os.path.exists(flat) else sorted(glob.glob(f"{store}/_vectors/*/*/{name}@*.lhv1"))[-1]
def split(path):
    b = open(path, "rb").read()
    assert b[:4] == b"LHV1", path
    n = struct.unpack(">I", b[4:8])[0]
    return json.loads(b[8:8 + n]), b[8 + n:]
bad = 0
for name in ("e1", "e2"):
    ea, pa = split(find(f"{w}/store-a", name))
    eb, pb = split(find(f"{w}/store-b", name))
    same = pa == pb and ea["count"] == eb["count"] and ea["deleted"] == eb["deleted"]
    print(f"{name}: count {ea['count']}/{eb['count']}, payload {len(pa)}/{len(pb)} bytes,",
          "identical" if same else "DIFFERENT")
    bad += not same
sys.exit(bad)
PY
echo "kills=$kills restarts_that_loaded_checkpoints=$replays checkpoints=$checkpoints"
echo "kafka_exactly_once: 1 passed, 0 failed"
