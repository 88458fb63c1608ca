#!/usr/bin/env bash
# vectorctl import against a real Kafka and a vectord worker (CTest:
# kafka_import). The files are written by the real coder/hnsw v0.6.1
# (tests/gofixtures/gen):
#   - --dry-run lists index, items, dim, distance and bytes and sends nothing;
#   - an import killed (SIGKILL) after 8,000 of 20,000 items, then rerun:
#     the index holds exactly the file's 20,000 live ids (adds are upserts:
#     nothing duplicated, nothing lost), and searching rows of the file by
#     their vectors finds their ids at distance 0;
#   - a whole prefix `_vectors/` of the reference storaged, the objects PUT
#     as the Go service stored them (`_vectors/<escaped name>.lhv1`): every
#     file becomes its index (names unescaped), metadata comes along, the
#     worker's own checkpoint files deeper under `_vectors/` are skipped;
#   - an index that exists with other params is refused, exit 1, naming it.
# Skips (77) when `go` is missing, like gofixtures_import.
#   kafka_import.sh VECTORD VECTORCTL GEN_VECS WORKDIR
set -euo pipefail
vectord=$1 vectorctl=$2 gen=$3 work=$4
if ! command -v go >/dev/null; then
  echo "SKIP: 'go' not found: the fixtures are written by the real coder/hnsw (Go >= 1.22)"
  exit 77
fi
source "$(dirname "$0")/lib.sh"
pid="" spid=""
stop_workers() {
  [[ -n $pid ]] && kill -9 $pid 2>/dev/null || true
  [[ -n $spid ]] && kill $spid 2>/dev/null || true
}

# The fixtures (about 15 s).
(cd "$repo/tests/gofixtures/gen" && go build -trimpath -o "$work/gofixtures" .)
mkdir -p data
"$gen" data 20500 10 128 euclidean 7 >/dev/null
fix() { # name n delete metric out
  "$work/gofixtures" -base data/base.fvecs -n "$2" -delete "$3" -metric "$4" -name "$1" \
    -out "$5" >>gofixtures.log
}
fix big 20500 500 euclidean big.golhv1
fix "docs/fr" 300 30 cosine small.golhv1
fix other 50 0 euclidean other.golhv1

kafka_up
topic vectord.commands --partitions 3
topic vectord.search --partitions 3
topic vectord.commands.dlq --partitions 1
topic vectord.replies --partitions 1
"$vectord" -X kafka.bootstrap.servers="$bootstrap" -X store.url="file://$work/store" \
  -X http.listen=127.0.0.1:0 -X group.instance.id=i1 >vectord.out 2>vectord.log &
pid=$!
ctl() { "$vectorctl" -b "$bootstrap" --timeout 30000 "$@" 2>>ctl.log; }
length() { ctl --json info "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["length"])'; }

# --dry-run: nothing sent, no broker needed.
"$vectorctl" -b 127.0.0.1:1 import --dry-run big.golhv1 >dry.txt || fail "dry-run: $(cat dry.txt)"
grep -Eq '^big +20000 +128 euclidean +[0-9]+ +big.golhv1$' dry.txt || fail "dry-run: $(cat dry.txt)"

# Interrupted after 8,000 items, then rerun.
set +e
VECTORCTL_IMPORT_KILL_AFTER=8000 ctl import big.golhv1 >import1.out
rc=$?
set -e
[[ $rc == 137 ]] || fail "the interrupted import exited $rc, not 137 (SIGKILL)"
n=$(length big)
((n >= 1 && n < 20000)) || fail "after the interruption: length $n"
echo "interrupted: $n of 20000 items in"
ctl import big.golhv1 >import2.out || fail "rerun: $(cat import2.out)"
cat import2.out
n=$(length big)
[[ $n == 20000 ]] || fail "after the rerun: length $n, want the file's 20000 live items"
# Rows of the file, searched by their vectors: each live row's id first, at
# distance 0 (the 500 deleted rows are random; of 200 rows a few are gone).
head -c $((200 * (4 + 128 * 4))) data/base.fvecs >rows.fvecs
ctl --json search big --queries rows.fvecs --k 1 --ef 400 >hits.jsonl || fail "search rows"
python3 - hits.jsonl <<'EOF' || fail "rows searched by their vectors"
import json, sys
found = 0
for i, line in enumerate(open(sys.argv[1])):
    hit = json.loads(line)["hits"][0]
    want = f"文档/{i}" if i % 7 == 3 else f"doc-{i}"
    if hit["id"] == want:
        assert hit["distance"] == 0, (i, hit)
        found += 1
print(f"{found} of 200 rows found by their own vector at distance 0")
assert found >= 185, found
EOF

# A whole prefix of the reference storaged.
sport=$(free_port)
python3 "$repo/tests/storaged/storaged.py" --root "$work/storaged" --bind 127.0.0.1 \
  --port "$sport" >>storaged.log 2>&1 &
spid=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$sport/storage?prefix=x" && break; sleep 0.1; done
# The key as one escaped path segment (schemas/storaged.md), as the Go service sent it.
put() {
  local seg
  seg=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$2")
  curl -fsS -X PUT --data-binary "@$1" "http://127.0.0.1:$sport/storage/$seg"
}
put small.golhv1 '_vectors/docs%2Ffr.lhv1'
put other.golhv1 '_vectors/other.lhv1'
put /dev/null '_vectors/vectord.commands/0/x@00000000000000000000.lhv1' # not a Go file
ctl import --store "http://127.0.0.1:$sport" --dry-run _vectors/ >dry2.txt
[[ $(grep -c lhv1 dry2.txt) == 2 ]] || fail "prefix dry-run: $(cat dry2.txt)"
ctl import --store "http://127.0.0.1:$sport" _vectors/ >prefix.out || fail "prefix: $(cat prefix.out)"
cat prefix.out
[[ $(length docs/fr) == 270 && $(length other) == 50 ]] ||
  fail "prefix: docs/fr $(length docs/fr), other $(length other)"
# Metadata came along: row 1 of small (not deleted: then its hit is another id).
head -c $((2 * (4 + 128 * 4))) data/base.fvecs | tail -c $((4 + 128 * 4)) >row1.fvecs
ctl --json search docs/fr --queries row1.fvecs --k 1 >meta.json
python3 - meta.json <<'EOF' || fail "metadata: $(cat meta.json)"
import json, sys
hit = json.loads(open(sys.argv[1]).read())["hits"][0]
if hit["id"] == "doc-1":
    m = hit["metadata"]
    assert m["doc"] == 1 and m["title"] == "Document 1 – <b>é</b>" and m["nested"]["y"] == [1.5, -2, "z"], m
    print("metadata ok")
else:
    print("row 1 was deleted in the fixture; metadata not checked")
EOF

# An index that exists with other params.
ctl create clash --dim 3 >/dev/null
set +e
"$vectorctl" -b "$bootstrap" import --index clash other.golhv1 >clash.out 2>clash.err
rc=$?
set -e
cat clash.err >>ctl.log
[[ $rc == 1 ]] && grep -q 'cannot create "clash"' clash.err && grep -q -- '--index NEWNAME' clash.err ||
  fail "a clash of params: exit $rc: $(cat clash.err)"
echo "kafka_import: ok"
