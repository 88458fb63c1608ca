# deploy/lib.sh - helpers shared by the deploy scripts (kafka.sh, s3proxy.sh,
# redis.sh) and the tests. Source it after setting PROG, the name messages
# start with.

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }

now_ms() { date +%s%3N; }
elapsed() { local t=$(( $(now_ms) - $1 )); printf '%d.%03ds' $((t / 1000)) $((t % 1000)); }

need_cmd() {
  command -v "$1" >/dev/null 2>&1 || die "'$1' not found on PATH. $2"
}

# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

valid_port() {
  [[ $1 =~ ^[0-9]+$ ]] && (( $1 > 0 && $1 < 65536 )) || die "bad port '$1'"
}

# free_port [N]: print N (default 1) distinct loopback TCP ports, one a
# line, that nothing is bound to now, chosen outside the kernel's ephemeral range (net.ipv4.ip_local_port_range). The
# kernel hands ephemeral ports to every bind(0) and to the source side of
# every outgoing connection, so a server stopped and restarted on an
# ephemeral port can find it taken in between by any process on the machine;
# a port outside the range is only ever taken by someone asking for it.
free_port() {
  python3 - "${1:-1}" <<'PY'
import random, socket, sys
want = int(sys.argv[1])
try:
    lo, hi = map(int, open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
except OSError:
    lo, hi = 32768, 60999
# Prefer 20000..lo; if the ephemeral range starts too low for that, use the
# ports above it instead.
pools = [(20000, lo)] if lo - 20000 >= 1000 else []
pools += [(hi + 1, 65536)] if 65535 - hi >= 1000 else []
if not pools:
    pools = [(1024, 65536)]
found = []
for _ in range(500):
    a, b = random.choice(pools)
    port = random.randrange(a, b)
    if port in found:
        continue
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    found.append(port)
    if len(found) == want:
        break
else:
    raise SystemExit("free_port: no free port found")
print("\n".join(map(str, found)))
PY
}

# pid_of PIDFILE MARK: print the pid in PIDFILE when that process is alive
# and its command line contains MARK (a recycled pid is someone else's).
pid_of() {
  local pid
  [[ -f $1 ]] || return 1
  pid="$(cat "$1")"
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$2" || return 1
  printf '%s\n' "$pid"
}

# terminate PID NAME SECONDS: SIGTERM, wait up to SECONDS, then SIGKILL and
# wait for the exit. Returns 0 when SIGTERM did it, 1 when SIGKILL was needed.
terminate() {
  local pid=$1 name=$2 secs=$3
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$(( $(date +%s) + secs ))
  while kill -0 "$pid" 2>/dev/null && (( $(date +%s) < deadline )); do
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null || return 0
  log "$name pid $pid ignored SIGTERM for ${secs}s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  return 1
}
