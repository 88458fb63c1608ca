#!/usr/bin/env bash
# Self-test of the reference storaged server (CTest: storaged_selftest),
# driven with curl as an independent client: round trips (empty, small,
# 256 MiB), awkward keys, listing with prefix/after/limit, invalid keys,
# auth, fault injection, atomic replace under concurrent readers, aborted
# uploads, 100-continue, keep-alive, --base, bounded memory, SIGTERM.
#   selftest.sh [WORKDIR]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=${1:-${TMPDIR:-/tmp}/storaged-selftest.$$}
rm -rf "$work"; mkdir -p "$work"; cd "$work"

srv_pid=""
stop_srv() {
  [[ -n $srv_pid ]] || return 0
  kill -TERM "$srv_pid" 2>/dev/null || true
  wait "$srv_pid" 2>/dev/null || true
  srv_pid=""
}
trap stop_srv EXIT
fail() { echo "FAIL: $*"; [[ -f server.log ]] && tail -20 server.log; exit 1; }
ok() { echo "ok - $*"; }

# start [ARGS...]: a server on a free port over ./root; sets $url (…/storage).
start() {
  rm -f port
  python3 "$here/storaged.py" --root "$work/root" --port 0 --port-file "$work/port" \
    --fail-file "$work/fail" ${base:+--base "$base"} "$@" 2>>server.log &
  srv_pid=$!
  for _ in $(seq 400); do [[ -s port ]] && break; sleep 0.05; done
  [[ -s port ]] || fail "server wrote no port file"
  port=$(cat port)
  url="http://127.0.0.1:$port${base:-}/storage"
}
# Escapes a key like Go's url.PathEscape (what vectord's clients do).
esc() {
  python3 -c 'import sys; print("".join(chr(c) if chr(c).isascii() and (chr(c).isalnum() or chr(c) in "-_.~$&+,:;=@") else "%%%02X" % c for c in sys.argv[1].encode()))' "$1"
}
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
expect_code() {  # WANT WHAT CURL-ARGS...
  local want=$1 what=$2 got
  shift 2
  got=$(code "$@")
  [[ $got == "$want" ]] || fail "$what: HTTP $got, want $want"
}
# keys_of [QUERY]: the listing's keys, one per line (also checks the JSON).
keys_of() {
  curl -sf "$url${1:+?$1}" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert isinstance(d["keys"], list) and isinstance(d["truncated"], bool), d
print("\n".join(d["keys"]))'
}

start
# ---------------------------------------------------------- round trips --
: >empty.bin
echo "hello storaged" >small.bin
head -c $((256 << 20)) /dev/urandom >big.bin
for f in empty small big; do
  k="rt/$f.bin"
  curl -sf -T $f.bin -o /dev/null -D put.h -v "$url/$(esc "$k")" 2>put.v || fail "PUT $k"
  grep -q '^HTTP/1.1 204' put.h || fail "PUT $k: $(head -1 put.h)"
  curl -sf -D get.h -o got.bin "$url/$(esc "$k")" || fail "GET $k"
  cmp -s $f.bin got.bin || fail "GET $k returned other bytes"
  grep -qi "^content-length: $(stat -c %s $f.bin)"$'\r' get.h || fail "GET $k: Content-Length: $(grep -i content-length get.h)"
done
grep -q '^< HTTP/1.1 100 Continue' put.v || fail "big PUT: curl got no 100 Continue: $(grep '^[<>]' put.v | head)"
ok "round trip of empty, small and 256 MiB objects (100-continue answered)"
hwm=$(awk '/VmHWM/ {print $2}' /proc/$srv_pid/status)
(( hwm < 100000 )) || fail "server peak RSS ${hwm} kB after 256 MiB transfers: bodies are buffered"
ok "server peak RSS ${hwm} kB (bodies are streamed)"

# Keep-alive: two requests on one connection.
curl -sv -o /dev/null "$url/$(esc rt/small.bin)" -o /dev/null "$url/$(esc rt/small.bin)" 2>ka.v
grep -q 'Re-using existing connection' ka.v || fail "no keep-alive: $(grep -E '^[*<>]' ka.v | head -20)"
ok "keep-alive"

# ---------------------------------------------------------- awkward keys --
long=$(printf 'L%.0s' $(seq 700))
keys=("a/b/c" "a b" "100%" "a/100%25/x" "+plus" "é/ü.json" "😀" "zz~" "Z" "_vectors/my%2Fidx.lhv1"
      "_manifests/vectord.commands/3.json" "seg/$long.lhv1" "x")
for k in "${keys[@]}"; do
  printf '%s' "$k" >v.bin
  expect_code 204 "PUT '$k'" -T v.bin "$url/$(esc "$k")"
done
for k in "${keys[@]}"; do
  curl -sf -o got.bin "$url/$(esc "$k")" || fail "GET '$k'"
  [[ $(cat got.bin) == "$k" ]] || fail "GET '$k' returned '$(cat got.bin)'"
done
# A key's '%' is data: "100%" and "100%25" are different keys.
expect_code 404 "GET '100%25' (not stored)" "$url/$(esc '100%25')"
keys_of >all.txt
python3 - "${keys[@]}" <<'EOF' || fail "listing: $(cat all.txt)"
import sys
want = sorted(sys.argv[1:] + ["rt/empty.bin", "rt/small.bin", "rt/big.bin"], key=lambda k: k.encode())
got = open("all.txt", encoding="utf-8").read().splitlines()
assert got == want, [k[:40] for k in got]
# Bytewise order is code-point order (not UTF-16 order): U+1F600 after é.
assert got.index("😀") > got.index("é/ü.json") > got.index("zz~")
EOF
ok "keys with '/', space, '%', '+', unicode, a 700-byte segment; listing sorted bytewise"

# ------------------------------------------------------------- listing --
[[ $(keys_of "prefix=$(esc a/)") == $'a/100%25/x\na/b/c' ]] || fail "prefix a/: $(keys_of "prefix=a%2F")"
[[ $(keys_of "prefix=$(esc 100%)") == "100%" ]] || fail "prefix 100%"
[[ $(keys_of "prefix=$(esc +)") == "+plus" ]] || fail "prefix + (a literal plus, not a space)"
[[ -z $(keys_of "prefix=nothing") ]] || fail "prefix nothing"
[[ $(keys_of "prefix=rt%2F&after=$(esc rt/big.bin)") == $'rt/empty.bin\nrt/small.bin' ]] || fail "after"
curl -sf "$url?prefix=rt%2F&limit=2" | grep -q '"truncated": true' || fail "limit=2 of 3: not truncated"
curl -sf "$url?prefix=rt%2F&limit=3" | grep -q '"truncated": false' || fail "limit=3 of 3: truncated"
curl -sf "$url?limit=5000" >/dev/null || fail "limit above the maximum"
expect_code 400 "limit=0" "$url?limit=0"
expect_code 400 "limit=abc" "$url?limit=abc"
expect_code 400 "prefix twice" "$url?prefix=a&prefix=b"
# Paging with after=<last key> yields every key exactly once.
after="" : >paged.txt
while :; do
  page=$(curl -sf "$url?limit=4${after:+&after=$(esc "$after")}")
  python3 -c 'import json,sys; print("\n".join(json.loads(sys.argv[1])["keys"]))' "$page" >>paged.txt
  after=$(tail -n 1 paged.txt)
  grep -q '"truncated": true' <<<"$page" || break
done
cmp -s all.txt paged.txt || fail "paging with limit=4: $(diff all.txt paged.txt | head)"
curl -sf -D list.h -o /dev/null "$url"
grep -qi '^content-type: application/json' list.h || fail "list Content-Type"
ok "list: prefix, after, limit, truncated, paging"

# ---------------------------------------------------------- bad requests --
for bad in '' 'a%2F%2Fb' '%2Fa' 'a%2F' '.' '..' 'a%2F..%2Fb' 'a%2F.' 'a%01b' 'a%00b' 'a%7Fb' '%FF' 'a%2' 'a%zz'; do
  expect_code 400 "PUT key '$bad'" --path-as-is -X PUT --data-binary @small.bin "$url/$bad"
done
expect_code 400 "key of two raw segments" "$url/a/b"
expect_code 400 "GET key '..'" "$url/%2E%2E"
expect_code 400 "key of 1025 bytes" "$url/$(printf 'k%.0s' $(seq 1025))"
expect_code 411 "PUT without Content-Length" -X PUT "$url/nolength"
expect_code 411 "chunked PUT" -T - "$url/chunked" <small.bin
expect_code 405 "POST" -X POST -d x "$url/a%2Fb%2Fc"
expect_code 405 "DELETE on the list endpoint" -X DELETE "$url"
expect_code 404 "outside the API" "http://127.0.0.1:$port/other"
expect_code 404 "GET missing" "$url/missing"
expect_code 404 "DELETE missing" -X DELETE "$url/missing"
expect_code 204 "DELETE" -X DELETE "$url/$(esc a/b/c)"
expect_code 404 "GET deleted" "$url/$(esc a/b/c)"
expect_code 200 "GET neighbour of deleted" "$url/$(esc "a/100%25/x")"
# An error answer keeps the connection usable (a small rejected body is drained).
curl -sv -o /dev/null -H "Expect:" -T small.bin "$url/a%2F%2Fb" -o /dev/null "$url/x" 2>ka2.v
grep -q 'Re-using existing connection' ka2.v || fail "connection not reused after a 400"
ok "invalid keys 400, 404/405/411, DELETE"

# --------------------------------------------------------- atomic replace --
head -c $((64 << 20)) /dev/zero | tr '\0' A >A.bin
head -c $((64 << 20)) /dev/zero | tr '\0' B >B.bin
sa=$(sha256sum <A.bin) sb=$(sha256sum <B.bin)
expect_code 204 "PUT A" -T A.bin "$url/$(esc swap/obj)"
( for f in B A B; do curl -sf --limit-rate 40M -T $f.bin "$url/$(esc swap/obj)" || exit 1; done ) &
writer=$!
n=0
while kill -0 $writer 2>/dev/null; do
  curl -sf -o r.bin "$url/$(esc swap/obj)" || fail "GET during PUT"
  s=$(sha256sum <r.bin)
  [[ $s == "$sa" || $s == "$sb" ]] || fail "GET during PUT returned a mix ($(stat -c %s r.bin) bytes)"
  [[ $(keys_of "prefix=swap%2F") == swap/obj ]] || fail "listing during PUT: $(keys_of prefix=swap%2F)"
  n=$((n + 1))
done
wait $writer || fail "PUTs during GETs"
(( n >= 3 )) || fail "only $n reads overlapped the writes"
ok "$n GETs and listings during 3 PUTs of 64 MiB: always a whole old or new object, no temp keys"

# An aborted upload leaves the old object and no temp file.
curl -s -o /dev/null -m 1 --limit-rate 10M -T B.bin "$url/$(esc swap/obj)" || true
# The server notices the abort when its read fails: give it up to 10 s.
for _ in $(seq 100); do [[ -z $(find root -name 't*') ]] && break; sleep 0.1; done
curl -sf -o r.bin "$url/$(esc swap/obj)" && [[ $(sha256sum <r.bin) == "$sb" ]] || fail "object changed by an aborted PUT"
[[ -z $(find root -name 't*') ]] || fail "temp files left: $(find root -name 't*')"
ok "aborted PUT: old object kept, no temp file"

# ------------------------------------------------------- fault injection --
touch fail
expect_code 500 "fail-file (empty)" "$url"
echo 503 >fail
expect_code 503 "fail-file 503" "$url/$(esc swap/obj)"
# A failing big PUT is refused before its body (no 100 Continue).
up=$(curl -s -o /dev/null -w '%{http_code} %{size_upload}' -T big.bin "$url/big2")
[[ ${up% *} == 503 ]] || fail "PUT while failing: $up"
(( ${up#* } < 100 << 20 )) || fail "PUT while failing uploaded ${up#* } bytes"
rm fail
expect_code 200 "fail-file removed" "$url/$(esc swap/obj)"
ok "fail-file: 500, 503, early answer to a big PUT, recovery"

# ------------------------------------------------------- SIGTERM, --base --
kill -TERM "$srv_pid"
for _ in $(seq 50); do kill -0 "$srv_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$srv_pid" 2>/dev/null && fail "server still running 5 s after SIGTERM"
rc=0; wait "$srv_pid" || rc=$?
srv_pid=""
(( rc == 0 )) || fail "server exited with $rc on SIGTERM"
ok "SIGTERM: clean exit"

base=/v1 start
expect_code 200 "--base /v1" "$url/$(esc swap/obj)"
expect_code 404 "without the base" "http://127.0.0.1:$port/storage/swap%2Fobj"
stop_srv
ok "--base"

# ------------------------------------------------------------------ auth --
base="" STORAGED_TOKEN=s3cr3t start
curl -s -D h.txt -o /dev/null "$url/$(esc swap/obj)"
grep -q '^HTTP/1.1 401' h.txt || fail "no token: $(head -1 h.txt)"
grep -qi '^www-authenticate: bearer' h.txt || fail "401 without WWW-Authenticate"
grep -qi '^content-length:' h.txt || fail "401 without Content-Length"
expect_code 401 "wrong token" -H 'Authorization: Bearer nope' "$url/$(esc swap/obj)"
expect_code 401 "list without token" "$url"
expect_code 200 "right token" -H 'Authorization: Bearer s3cr3t' "$url/$(esc swap/obj)"
expect_code 200 "list with token" -H 'Authorization: Bearer s3cr3t' "$url"
up=$(curl -s -o /dev/null -w '%{http_code} %{size_upload}' -T big.bin "$url/big3")
[[ ${up% *} == 401 ]] || fail "PUT without token: $up"
(( ${up#* } < 100 << 20 )) || fail "PUT without token uploaded ${up#* } bytes"
stop_srv
ok "auth: 401 + WWW-Authenticate without/with a wrong token, 200 with it"

cd / && rm -rf "$work"
echo "storaged selftest: all passed"
