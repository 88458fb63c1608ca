#!/usr/bin/env bash
# deploy/redis/redis.sh - a private redis-server for tests and development:
# listens on 127.0.0.1 only, keeps nothing on disk (no RDB, no AOF), its own
# directory for the config, log, pidfile and the URL to give vectord.
#
#   redis.sh start  [--dir D] [--port P] [--password PW] [--timeout S]
#   redis.sh stop   [--dir D] [--timeout S]
#   redis.sh status [--dir D]        exit 0 running, 3 stopped
#   redis.sh url    [--dir D]        the directory.redis_url of the server
#   redis.sh cli    [--dir D] ARGS   redis-cli against it (-a from the dir)
#
# Dir: default <repo>/var/redis-test (or $VECTORD_REDIS_DIR). Port: --port,
# else the one the dir used last (so a restart keeps its URL), else 36379;
# --port 0 picks a free one. Needs redis-server and redis-cli (Debian:
# redis-server, redis-tools; scripts/setup-deps.sh installs them).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
PROG=redis.sh
source "$SCRIPT_DIR/../lib.sh"

cmd=${1:-}; [[ $# -gt 0 ]] && shift
dir=${VECTORD_REDIS_DIR:-$REPO_ROOT/var/redis-test} port="" password="" timeout=10
rest=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --dir) dir=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    --password) password=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    *) rest+=("$1"); shift ;;
  esac
done

pid_alive() { [[ -f $dir/redis.pid ]] && kill -0 "$(cat "$dir/redis.pid")" 2>/dev/null; }
cli() {
  local a=(-h 127.0.0.1 -p "$(cat "$dir/port")")
  [[ -s $dir/password ]] && a+=(--no-auth-warning -a "$(cat "$dir/password")")
  redis-cli "${a[@]}" "$@"
}

case $cmd in
start)
  command -v redis-server >/dev/null || die "redis-server not found (apt-get install redis-server)"
  command -v redis-cli >/dev/null || die "redis-cli not found (apt-get install redis-tools)"
  mkdir -p "$dir"; dir=$(cd "$dir" && pwd)
  pid_alive && die "already running in $dir (pid $(cat "$dir/redis.pid"))"
  if [[ -z $port ]]; then port=$(cat "$dir/port" 2>/dev/null || echo 36379); fi
  [[ $port == 0 ]] && port=$(free_port)
  echo "$port" >"$dir/port"
  if [[ -n $password ]]; then (umask 077; printf '%s' "$password" >"$dir/password"); else rm -f "$dir/password"; fi
  (umask 077; cat >"$dir/redis.conf" <<CONF
bind 127.0.0.1
port $port
protected-mode yes
daemonize yes
pidfile $dir/redis.pid
logfile $dir/redis.log
dir $dir
save ""
appendonly no
databases 16
$( [[ -n $password ]] && echo "requirepass $password" )
CONF
  )
  rm -f "$dir/redis.pid"
  redis-server "$dir/redis.conf" || die "redis-server did not start: $(tail -5 "$dir/redis.log" 2>/dev/null)"
  for ((i = 0; i < timeout * 10; i++)); do
    if [[ $(cli ping 2>/dev/null) == PONG ]]; then
      auth=""; [[ -n $password ]] && auth=":$password@"
      echo "redis://${auth}127.0.0.1:$port" >"$dir/url"; chmod 600 "$dir/url"
      log "redis-server up on 127.0.0.1:$port (pid $(cat "$dir/redis.pid"), dir $dir)"
      exit 0
    fi
    sleep 0.1
  done
  die "redis-server did not answer within ${timeout}s: $(tail -5 "$dir/redis.log" 2>/dev/null)"
  ;;
stop)
  pid_alive || { log "not running in $dir"; exit 0; }
  pid=$(cat "$dir/redis.pid")
  if terminate "$pid" redis-server "$timeout"; then
    log "stopped (pid $pid)"
  else
    log "killed (pid $pid) after ${timeout}s"
  fi
  rm -f "$dir/redis.pid"
  ;;
status)
  if pid_alive; then echo "running: pid $(cat "$dir/redis.pid"), port $(cat "$dir/port")"; exit 0; fi
  echo "stopped"; exit 3
  ;;
url)
  [[ -f $dir/url ]] || die "no server was started in $dir"
  cat "$dir/url"
  ;;
cli)
  [[ -f $dir/port ]] || die "no server was started in $dir"
  cli "${rest[@]}"
  ;;
*)
  sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
  [[ -z $cmd || $cmd == -h || $cmd == --help ]] || exit 2
  ;;
esac
