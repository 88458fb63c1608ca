# lib.sh - shared by the Kafka integration scripts (source it after setting
# $work): a private single-node broker on free ports under $work/kafka,
# torn down on exit together with the script's workers.
#   kafka_up                start the broker; sets $bootstrap
#   topic NAME [args...]    create a topic (kafka.sh topic create arguments)
#   topic_set PREFIX        PREFIX.commands and PREFIX.search (3 partitions each), PREFIX.dlq
#   stop_workers            defined by the script: kill what it started
#   fail MESSAGE            print, show the tails of $work/*.log, exit 1
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
kafka=$repo/deploy/kafka/kafka.sh
rm -rf "$work"; mkdir -p "$work"; cd "$work"

# free_port and the other deploy helpers (log, die, port_open, ...).
PROG=$(basename "$0")
# shellcheck source=../../deploy/lib.sh
source "$repo/deploy/lib.sh"
kafka_up() {
  local ports
  mapfile -t ports < <(free_port 2)
  "$kafka" start --dir "$work/kafka" --port "${ports[0]}" --controller-port "${ports[1]}" \
    >kafka.out || { echo "FAIL: kafka did not start: $(cat kafka.out)"; exit 1; }
  bootstrap=$(cat "$work/kafka/bootstrap")
}
topic() { "$kafka" topic create "$@" --dir "$work/kafka" >/dev/null; }
topic_set() {
  topic "$1.commands" --partitions 3
  topic "$1.search" --partitions 3
  topic "$1.dlq" --partitions 1
}
fail() {
  echo "FAIL: $*"
  for f in "$work"/*.log; do [[ -f $f ]] && { echo "== $f"; grep -v '^%' "$f" | tail -10; }; done
  exit 1
}
_lib_cleanup() {
  declare -F stop_workers >/dev/null && stop_workers
  "$kafka" stop --dir "$work/kafka" >/dev/null 2>&1 || true
}
trap _lib_cleanup EXIT
