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

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
kafka_up() {
  "$kafka" start --dir "$work/kafka" --port "$(free_port)" --controller-port "$(free_port)" \
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
