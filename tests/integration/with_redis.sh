#!/usr/bin/env bash
# with_redis.sh WORKDIR CMD [ARGS...] - runs CMD with VD_TEST_REDIS_URL set to
# a private redis-server (deploy/redis/redis.sh, free port, under WORKDIR),
# stopped afterwards whatever CMD did. Exits with CMD's status.
set -euo pipefail
work=$1; shift
redis=$(cd "$(dirname "$0")/../.." && pwd)/deploy/redis/redis.sh
rm -rf "$work"; mkdir -p "$work"
trap '"$redis" stop --dir "$work/redis" >/dev/null 2>&1 || true' EXIT
"$redis" start --dir "$work/redis" --port 0
VD_TEST_REDIS_URL=$("$redis" url --dir "$work/redis") "$@"
