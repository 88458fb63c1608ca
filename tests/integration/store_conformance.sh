#!/usr/bin/env bash
# Runs the store conformance cases (tests/unit/test_store.c) against a real
# remote backend that this script starts on 127.0.0.1 (CTest:
# store_conformance_storaged, store_conformance_s3):
#   storaged  the reference server tests/storaged/storaged.py, with a bearer
#             token and fault injection (--fail-file)
#   s3        s3proxy (deploy/s3/s3proxy.sh), a real S3 API server, SigV4
#             (credentials from a profile of a shared credentials file), with
#             its transient backend: its filesystem backend fails the torn-read
#             case (a GET racing a PUT gets the old length, new bytes)
#   store_conformance.sh storaged|s3 TEST_STORE WORKDIR
set -euo pipefail
backend=$1 test_store=$2 work=$3
repo=$(cd "$(dirname "$0")/../.." && pwd)
rm -rf "$work"; mkdir -p "$work"; cd "$work"
spid=""
cleanup() {
  [[ -n $spid ]] && kill "$spid" 2>/dev/null || true
  [[ $backend == s3 ]] && "$repo/deploy/s3/s3proxy.sh" stop --dir "$work/s3" >/dev/null 2>&1 || true
}
trap cleanup EXIT
PROG=store_conformance
# shellcheck source=../../deploy/lib.sh
source "$repo/deploy/lib.sh"   # free_port

case $backend in
storaged)
  token=conf-$RANDOM$RANDOM
  python3 "$repo/tests/storaged/storaged.py" --root "$work/root" --bind 127.0.0.1 --port 0 \
    --port-file "$work/port" --token "$token" --fail-file "$work/fail" >storaged.log 2>&1 &
  spid=$!
  for _ in $(seq 100); do [[ -s $work/port ]] && break; sleep 0.1; done
  [[ -s $work/port ]] || { echo "FAIL: storaged did not start"; cat storaged.log; exit 1; }
  export VD_STORE_URL="http://127.0.0.1:$(cat "$work/port")/"
  export VD_STORE_TOKEN=$token VD_STORAGED_FAIL_FILE=$work/fail
  ;;
s3)
  "$repo/deploy/s3/s3proxy.sh" start --dir "$work/s3" --port "$(free_port)" --bucket vectord-test --backend transient \
    >s3proxy.out || { echo "FAIL: s3proxy did not start"; cat s3proxy.out; exit 1; }
  eval "$("$repo/deploy/s3/s3proxy.sh" env --dir "$work/s3")"
  # The credentials go through a shared credentials file and a named
  # profile, and the region through the config file: the environment
  # variables are covered by the exactly-once test and test_curl.
  (umask 077; printf '[conformance]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
    "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >"$work/aws-credentials")
  printf '[profile conformance]\nregion = %s\n' "$AWS_REGION" >"$work/aws-config"
  unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION
  export AWS_SHARED_CREDENTIALS_FILE=$work/aws-credentials AWS_CONFIG_FILE=$work/aws-config
  export AWS_PROFILE=conformance
  export VD_STORE_URL=s3://vectord-test/conformance/run-$RANDOM
  ;;
*) echo "usage: $0 storaged|s3 TEST_STORE WORKDIR" >&2; exit 2 ;;
esac
echo "backend $backend: $VD_STORE_URL"
"$test_store"
