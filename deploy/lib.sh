# deploy/lib.sh - helpers shared by the deploy scripts (kafka.sh, s3proxy.sh,
# redis.sh). Source it after setting PROG, the name messages start with.

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
