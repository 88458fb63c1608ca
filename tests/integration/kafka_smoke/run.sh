#!/usr/bin/env bash
# Kafka smoke test: Debian's librdkafka against a real single-node Kafka
# broker started with deploy/kafka/kafka.sh (see deploy/kafka/README.md).
#
#   tests/integration/kafka_smoke/run.sh [--cold] [--count N]
#
#   --cold     simulate a fresh machine: empty jar cache and empty Maven
#              repository (temporary, removed afterwards), i.e. a full download
#   --count N  messages to produce/consume (default 1000)
#
# Steps: compile smoke.c; start Kafka in a temporary dir on free ports; create
# a 3-partition topic; run smoke (produce with murmur2_random, consume in a
# range-assigned group, commit); cross-check the committed offsets with Kafka's
# own ConsumerGroupCommand; stop; start again in the same dir and check the
# topic and the offsets survived; stop twice (idempotent).
# Needs: cc, pkg-config, librdkafka-dev, java 17, mvn. Exits non-zero on failure;
# the last line is "kafka_smoke: N passed, N failed".
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
KAFKA="$REPO/deploy/kafka/kafka.sh"

COUNT=1000
COLD=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --cold) COLD=1; shift ;;
    --count) COUNT="$2"; shift 2 ;;
    *) echo "usage: $0 [--cold] [--count N]" >&2; exit 2 ;;
  esac
done

passed=0 failed=0
ok()   { passed=$((passed + 1)); echo "ok  : $*"; }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }
ms()   { date +%s%3N; }
secs() { local t=$(( $(ms) - $1 )); printf '%d.%03ds' $((t / 1000)) $((t % 1000)); }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/kafka_smoke.XXXXXX")"
KDIR="$WORK/kafka"
cleanup() {
  local rc=$?
  "$KAFKA" stop --dir "$KDIR" >/dev/null 2>&1 || true
  if (( rc != 0 || failed > 0 )); then
    echo "kafka_smoke: broker logs kept in $KDIR/logs" >&2
    rm -rf "$WORK/cache" "$WORK/m2"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

if (( COLD )); then
  export VECTORD_CACHE="$WORK/cache" VECTORD_MAVEN_REPO="$WORK/m2"
  t=$(ms)
  "$KAFKA" fetch
  echo "cold fetch (empty jar cache and Maven repository): $(secs "$t")"
fi

# Two free loopback ports below the ephemeral range: the broker is stopped
# and started again on them, and an ephemeral port could be taken in between
# by any connection on the machine (that failed a CI run).
PROG=kafka_smoke
# shellcheck source=../../../deploy/lib.sh
source "$HERE/../../../deploy/lib.sh"   # free_port
{ read -r PORT; read -r CPORT; } < <(free_port 2)

# shellcheck disable=SC2046
cc -std=c11 -O2 -Wall -Wextra -Werror -o "$WORK/smoke" "$HERE/smoke.c" \
  $(pkg-config --cflags --libs rdkafka)

TOPIC=vectord.smoke
GROUP=vectord-smoke

t=$(ms)
out="$("$KAFKA" start --dir "$KDIR" --port "$PORT" --controller-port "$CPORT")"
echo "$out"
BOOTSTRAP="${out#bootstrap=}"
[[ $BOOTSTRAP == "127.0.0.1:$PORT" ]] && ok "kafka.sh start in $(secs "$t") -> $BOOTSTRAP" ||
  { fail "kafka.sh start printed '$out'"; exit 1; }

"$KAFKA" topic create "$TOPIC" --partitions 3 --dir "$KDIR"
"$KAFKA" topic describe "$TOPIC" --dir "$KDIR"

# The C side: produce, consume, commit, resume.
if "$WORK/smoke" "$BOOTSTRAP" "$TOPIC" "$GROUP" "$COUNT"; then
  ok "smoke ($COUNT messages through librdkafka $(pkg-config --modversion rdkafka))"
else
  fail "smoke"
fi

# Kafka's own view of the group's committed offsets.
group_offsets() {
  "$KAFKA" run org.apache.kafka.tools.consumer.group.ConsumerGroupCommand \
    --bootstrap-server "$BOOTSTRAP" --describe --group "$GROUP" 2>/dev/null |
    awk -v t="$TOPIC" '$2 == t && $4 ~ /^[0-9]+$/ { s += $4 } END { print s + 0 }'
}
n="$(group_offsets)"
[[ $n == "$COUNT" ]] && ok "ConsumerGroupCommand sees committed offsets summing to $n" ||
  fail "ConsumerGroupCommand sees committed offsets summing to '$n', want $COUNT"

# Stop, then start again in the same dir: data and offsets survive.
t=$(ms)
"$KAFKA" stop --dir "$KDIR"
"$KAFKA" status --dir "$KDIR" >/dev/null && fail "status says running after stop" ||
  ok "stop in $(secs "$t"), status says stopped"
t=$(ms)
out="$("$KAFKA" start --dir "$KDIR" --port "$PORT" --controller-port "$CPORT")"
[[ $out == "bootstrap=$BOOTSTRAP" ]] && ok "second start in the same dir in $(secs "$t")" ||
  fail "second start printed '$out'"
"$KAFKA" topic list --dir "$KDIR" | grep -qx "$TOPIC" && ok "topic $TOPIC survived the restart" ||
  fail "topic $TOPIC missing after restart"
n="$(group_offsets)"
[[ $n == "$COUNT" ]] && ok "committed offsets survived the restart ($n)" ||
  fail "committed offsets after restart: '$n', want $COUNT"

"$KAFKA" topic delete "$TOPIC" --dir "$KDIR"
"$KAFKA" stop --dir "$KDIR"
"$KAFKA" stop --dir "$KDIR" && ok "second stop is a no-op" || fail "second stop failed"

echo "kafka_smoke: $passed passed, $failed failed"
(( failed == 0 ))
