#!/usr/bin/env bash
# Smoke test of deploy/s3/s3proxy.sh (CTest: s3proxy_smoke): start a private
# s3proxy with a bucket, then with curl's SigV4 signing: PUT (unsigned
# payload), GET, ListObjectsV2 with paging and encoding-type=url, keys with
# '%', space, '+' and unicode, DELETE; env prints what AWS clients need.
# What this relies on is written up in deploy/s3/README.md.
#   s3proxy_smoke.sh WORKDIR
set -euo pipefail
work=${1:?usage: s3proxy_smoke.sh WORKDIR}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
s3=$repo/deploy/s3/s3proxy.sh
rm -rf "$work"; mkdir -p "$work"; cd "$work"
trap '"$s3" stop --dir "$work/s3" >/dev/null 2>&1 || true' EXIT
fail() { echo "FAIL: $*"; tail -20 "$work/s3/logs/s3proxy.out" 2>/dev/null; exit 1; }

PROG=s3proxy_smoke
# shellcheck source=../../deploy/lib.sh
source "$repo/deploy/lib.sh"   # free_port
port=$(free_port)
"$s3" start --dir "$work/s3" --port "$port" --bucket smoke >start.out 2>&1 || fail "start: $(cat start.out)"
eval "$("$s3" env --dir "$work/s3")"
[[ $AWS_ENDPOINT_URL_S3 == "http://127.0.0.1:$port" && -n $AWS_ACCESS_KEY_ID && -n $AWS_SECRET_ACCESS_KEY ]] ||
  fail "env: $("$s3" env --dir "$work/s3")"

# Every request: SigV4 by curl, x-amz-content-sha256 by us (curl 7.88 does
# not add it, and s3proxy answers 500 without it). The query must already be
# canonical: curl signs it as given.
s3curl() {
  curl -sS --aws-sigv4 "aws:amz:$AWS_REGION:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
    -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$@"
}
enc() { python3 -c 'import sys, urllib.parse as u; print(u.quote(sys.argv[1], safe=sys.argv[2] if len(sys.argv) > 2 else "-_.~"))' "$@"; }
list_keys() {  # QUERY (canonical) -> keys, one a line, then "truncated=..." and "next=..."
  s3curl "$AWS_ENDPOINT_URL_S3/smoke?$1" | python3 -c '
import html, re, sys, urllib.parse as u
t = sys.stdin.read()
assert "<ListBucketResult" in t, t
url = "<EncodingType>url</EncodingType>" in t
for k in re.findall(r"<Key>(.*?)</Key>", t):
    k = html.unescape(k)
    print(u.unquote(k) if url else k)
print("truncated=" + re.search(r"<IsTruncated>(.*?)</", t).group(1))
m = re.search(r"<NextContinuationToken>(.*?)</", t)
print("next=" + (m.group(1) if m else ""))'
}

head -c $((3 << 20)) /dev/urandom >obj.bin
keys=("_vectors/docs%2Feu.lhv1" "_manifests/vectord.commands/0.json" "sp ace/x" "1+1=2" "é/😀")
for k in "${keys[@]}"; do
  code=$(s3curl -o /dev/null -w '%{http_code}' -T obj.bin "$AWS_ENDPOINT_URL_S3/smoke/$(enc "$k" '-_.~/')")
  [[ $code == 200 ]] || fail "PUT '$k': HTTP $code"
  s3curl -f -o got.bin "$AWS_ENDPOINT_URL_S3/smoke/$(enc "$k" '-_.~/')" || fail "GET '$k'"
  cmp -s obj.bin got.bin || fail "GET '$k': other bytes"
done
echo "ok - PUT/GET of 5 keys ('%', space, '+', unicode)"

# Paging (max-keys=2) with continuation tokens, keys XML-decoded. Not with
# encoding-type=url: s3proxy then url-encodes NextContinuationToken too (AWS
# does not), and sending it back skips or repeats keys. s3proxy's
# filesystem backend also lists directories as "dir/" entries: skip keys
# ending in '/'.
: >all.txt
token=""
for _ in $(seq 20); do
  q="${token:+continuation-token=$(enc "$token")&}list-type=2&max-keys=2"
  list_keys "$q" >page.txt || fail "list ($q)"
  grep -v -e '^truncated=' -e '^next=' page.txt | grep -v '/$' >>all.txt || true
  token=$(sed -n 's/^next=//p' page.txt)
  grep -q '^truncated=true' page.txt || break
done
python3 - "${keys[@]}" <<'EOF' || fail "listing: $(cat all.txt)"
import sys
got = open("all.txt", encoding="utf-8").read().splitlines()
assert got == sorted(sys.argv[1:], key=lambda k: k.encode()), got
EOF
echo "ok - ListObjectsV2 paging, bytewise order"

# encoding-type=url: keys come back percent-encoded (one page, no token).
# (Outputs are captured before grep -q: with pipefail, a writer killed by
# SIGPIPE would fail the pipeline.)
out=$(s3curl "$AWS_ENDPOINT_URL_S3/smoke?encoding-type=url&list-type=2&prefix=$(enc 'sp ace/')")
grep -q '<Key>sp%20ace/x</Key>' <<<"$out" || fail "encoding-type=url: key not encoded: $out"
out=$(list_keys "encoding-type=url&list-type=2&prefix=$(enc 'é/')")
grep -qx 'é/😀' <<<"$out" || fail "encoding-type=url decode: $out"
# start-after pages by key, whatever the encoding.
[[ $(list_keys "list-type=2&max-keys=1&start-after=$(enc '_vectors/docs%2Feu.lhv1')" | head -1) == "sp ace/" ]] ||
  fail "start-after"
echo "ok - encoding-type=url, start-after"

out=$(list_keys "list-type=2&prefix=$(enc 'sp ace/')")
grep -qx 'sp ace/x' <<<"$out" || fail "prefix with a space: $out"
code=$(curl -s -o /dev/null -w '%{http_code}' "$AWS_ENDPOINT_URL_S3/smoke/$(enc "${keys[1]}" '-_.~/')")
[[ $code == 403 ]] || fail "unsigned GET: HTTP $code, want 403"
code=$(s3curl -o /dev/null -w '%{http_code}' --user "$AWS_ACCESS_KEY_ID:wrong" "$AWS_ENDPOINT_URL_S3/smoke/$(enc "${keys[1]}" '-_.~/')")
[[ $code == 403 ]] || fail "GET with a wrong secret: HTTP $code, want 403"
for k in "${keys[@]}"; do
  code=$(s3curl -o /dev/null -w '%{http_code}' -X DELETE "$AWS_ENDPOINT_URL_S3/smoke/$(enc "$k" '-_.~/')")
  [[ $code == 204 ]] || fail "DELETE '$k': HTTP $code"
done
code=$(s3curl -o /dev/null -w '%{http_code}' "$AWS_ENDPOINT_URL_S3/smoke/$(enc "${keys[0]}" '-_.~/')")
[[ $code == 404 ]] || fail "GET after DELETE: HTTP $code"
echo "ok - prefix, unsigned and wrongly signed requests refused, DELETE, 404"

"$s3" stop --dir "$work/s3" >/dev/null 2>&1
"$s3" status --dir "$work/s3" >/dev/null && fail "still running after stop"
echo "s3proxy smoke: all passed"
