#!/usr/bin/env bash
# deploy/s3/s3proxy.sh — a real S3-compatible server on 127.0.0.1 for tests and
# development: s3proxy (one JVM, jar-with-dependencies from Maven Central) with
# its filesystem backend and SigV4 (and V2) authentication, path-style only.
#
#   s3proxy.sh fetch                     resolve the jar with Maven into the cache
#   s3proxy.sh start  [--dir D] [--port P] [--bucket B ...] [--fresh] [--timeout S]
#                     [--backend filesystem|transient]
#       filesystem (default): objects are files under D/data and survive a
#       restart, but a GET racing a PUT of the same key can return the old
#       length filled with the new bytes (s3proxy stats, then opens);
#       transient: objects live in the JVM's memory (gone at stop), and a GET
#       racing a PUT sees one whole version, as on AWS.
#   s3proxy.sh stop   [--dir D] [--timeout S]
#   s3proxy.sh status [--dir D]          exit 0 running, 3 stopped
#   s3proxy.sh env    [--dir D]          export lines for the AWS_* variables
#
# Cache: ${VECTORD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vectord}/s3proxy-<version>/
# State: <dir> (default <repo>/var/s3proxy-test, or $VECTORD_S3PROXY_DIR) holds
#        s3proxy.conf, data/<bucket>/..., logs/, s3proxy.pid, endpoint.
# Port:  39900 by default, far from a developer's 9000.
# Credentials: access key "vectord", secret "vectord-secret" (override at start
#        with VECTORD_S3_ACCESS_KEY / VECTORD_S3_SECRET_KEY); any region.
#
# Needs java (17), mvn (fetch only) and curl >= 7.75 (--aws-sigv4, to create
# buckets). If Maven cannot resolve the jar, `fetch` and `start` fail loudly:
# a caller must NOT fall back to a fake S3. See deploy/s3/README.md.

set -euo pipefail

S3PROXY_VERSION="${VECTORD_S3PROXY_VERSION:-2.6.0}"

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
CACHE_ROOT="${VECTORD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vectord}"
S3PROXY_HOME="$CACHE_ROOT/s3proxy-$S3PROXY_VERSION"
JAR="$S3PROXY_HOME/s3proxy-$S3PROXY_VERSION-jar-with-dependencies.jar"

DEFAULT_DIR="${VECTORD_S3PROXY_DIR:-$REPO_ROOT/var/s3proxy-test}"
DEFAULT_PORT=39900
REGION=us-east-1

# Small heap and C1 only: it shares a 2-core machine with the tests. Objects
# are streamed, so 256 MiB objects do not need a big heap.
JVM_OPTS="${VECTORD_S3PROXY_JVM_OPTS:--Xms64m -Xmx384m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto -XX:-UsePerfData}"

# ---------------------------------------------------------------- helpers --

PROG="s3proxy.sh"
# log die now_ms elapsed need_cmd port_open valid_port
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../lib.sh"

# S3 bucket names: 3-63 of a-z 0-9 . -, starting and ending alphanumeric.
valid_bucket() {
  [[ $1 =~ ^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$ ]] || die "bad bucket name '$1' (3-63 of a-z 0-9 . -)"
}

# ------------------------------------------------------------------ fetch --

jar_ready() { [[ -s $JAR ]]; }

cmd_fetch() {
  [[ $# -eq 0 ]] || die "fetch takes no arguments"
  need_cmd java "Install a Java 17 runtime (Debian: apt-get install openjdk-17-jre-headless)."
  if jar_ready; then
    log "s3proxy $S3PROXY_VERSION already cached in $S3PROXY_HOME"
    return 0
  fi
  need_cmd mvn "Install Maven (Debian: apt-get install maven); it resolves the s3proxy jar."
  mkdir -p "$S3PROXY_HOME"
  # One fetch at a time per version (parallel test jobs may all call start).
  exec 9>"$S3PROXY_HOME/.lock"
  flock 9
  if jar_ready; then
    exec 9>&-
    log "s3proxy $S3PROXY_VERSION already cached in $S3PROXY_HOME"
    return 0
  fi

  local t0 tmp mvn_log artifact
  t0="$(now_ms)"
  rm -rf "$S3PROXY_HOME"/jar.tmp.*   # left by an interrupted fetch
  tmp="$(mktemp -d "$S3PROXY_HOME/jar.tmp.XXXXXX")"
  mvn_log="$S3PROXY_HOME/fetch.log"
  artifact="org.gaul:s3proxy:$S3PROXY_VERSION:jar:jar-with-dependencies"
  log "resolving $artifact with Maven (first time only) ..."
  # dependency:get downloads into the local repository (checksums checked);
  # dependency:copy then copies that one file out of it, wherever the local
  # repository is configured to be.
  local -a common=(-q -B -Dstyle.color=never)
  [[ -n ${VECTORD_MAVEN_REPO:-} ]] && common+=("-Dmaven.repo.local=$VECTORD_MAVEN_REPO")
  if ! { mvn "${common[@]}" dependency:get "-Dartifact=$artifact" -Dtransitive=false &&
         mvn "${common[@]}" dependency:copy "-Dartifact=$artifact" "-DoutputDirectory=$tmp" \
           -Dmdep.overWriteReleases=true; } >"$mvn_log" 2>&1; then
    rm -rf "$tmp"
    sed 's/\x1b\[[0-9;]*m//g' "$mvn_log" | tail -n 30 >&2 || true
    printf '%s: error: %s\n%s\n' "$PROG" \
      "Maven could not resolve $artifact (full log: $mvn_log)." \
      "There is NO real S3 server available: tests that need one must fail, not fall back to a fake." >&2
    exit 2
  fi
  local got="$tmp/${JAR##*/}"
  [[ -s $got ]] || { rm -rf "$tmp"; die "Maven finished but ${JAR##*/} is missing from the result"; }
  # A jar that the JVM cannot open is no jar (truncated download).
  if command -v unzip >/dev/null && ! unzip -tq "$got" >/dev/null 2>&1; then
    rm -rf "$tmp"; die "the fetched ${JAR##*/} is corrupt"
  fi
  mv -f "$got" "$JAR"
  rm -rf "$tmp"
  exec 9>&-
  log "fetched ${JAR##*/} ($(du -h "$JAR" | cut -f1)) into $S3PROXY_HOME in $(elapsed "$t0")"
}

ensure_jar() {
  jar_ready || cmd_fetch
}

# ------------------------------------------------------------- server dir --

DIR="$DEFAULT_DIR"
PORT=""
TIMEOUT=""
FRESH=0
BACKEND=filesystem
declare -a BUCKETS=()
declare -a REST=()

parse_opts() {
  REST=()
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --dir) DIR="${2:?--dir needs a value}"; shift 2 ;;
      --dir=*) DIR="${1#*=}"; shift ;;
      --port) PORT="${2:?--port needs a value}"; shift 2 ;;
      --port=*) PORT="${1#*=}"; shift ;;
      --bucket) BUCKETS+=("${2:?--bucket needs a value}"); shift 2 ;;
      --bucket=*) BUCKETS+=("${1#*=}"); shift ;;
      --timeout) TIMEOUT="${2:?--timeout needs a value}"; shift 2 ;;
      --timeout=*) TIMEOUT="${1#*=}"; shift ;;
      --fresh) FRESH=1; shift ;;
      --backend) BACKEND="${2:?--backend needs a value}"; shift 2 ;;
      --backend=*) BACKEND="${1#*=}"; shift ;;
      -h|--help) usage; exit 0 ;;
      --) shift; REST+=("$@"); break ;;
      -*) die "unknown option '$1' (see: $PROG help)" ;;
      *) REST+=("$1"); shift ;;
    esac
  done
  [[ -z $TIMEOUT || $TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "bad timeout '$TIMEOUT'"
  [[ $BACKEND == filesystem || $BACKEND == transient ]] ||
    die "bad backend '$BACKEND' (filesystem or transient)"
  DIR="$(realpath -m -- "$DIR")"
}

pid_file() { printf '%s/s3proxy.pid' "$DIR"; }

# Prints the server's pid if the s3proxy of $DIR is running.
running_pid() { pid_of "$(pid_file)" "--properties $DIR/s3proxy.conf"; }

# Reads key $1 of $DIR/s3proxy.conf.
conf_get() {
  sed -n "s/^$1=//p" "$DIR/s3proxy.conf" | tail -n 1
}

write_conf() {
  local basedir="$DIR/data"
  # The properties file is read by java.util.Properties: escape backslashes.
  cat >"$DIR/s3proxy.conf" <<EOF
# Written by deploy/s3/s3proxy.sh start; rewritten on every start.
s3proxy.endpoint=http://127.0.0.1:$PORT
s3proxy.authorization=aws-v2-or-v4
s3proxy.identity=${VECTORD_S3_ACCESS_KEY:-vectord}
s3proxy.credential=${VECTORD_S3_SECRET_KEY:-vectord-secret}
jclouds.provider=$BACKEND
jclouds.filesystem.basedir=${basedir//\\/\\\\}
EOF
}

# One signed request without a body to the running server: s3_curl METHOD
# PATH (the query, if any, already canonical: sorted, strictly encoded; curl
# signs it verbatim). Prints the HTTP status. s3proxy answers 500 to a SigV4
# request without x-amz-content-sha256, which curl 7.88 does not add itself.
s3_curl() {
  curl -sS -o /dev/null -w '%{http_code}' --max-time 10 -X "$1" \
    --aws-sigv4 "aws:amz:$REGION:s3" --user "$(conf_get s3proxy.identity):$(conf_get s3proxy.credential)" \
    -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "http://127.0.0.1:$PORT$2"
}

create_bucket() {
  local b=$1 code
  valid_bucket "$b"
  # A bucket is a directory under basedir for the filesystem backend, but
  # creating it through the API checks auth end to end as well.
  code="$(s3_curl PUT "/$b")" || start_failed "creating bucket $b: curl failed"
  case "$code" in
    200|409) ;;   # 409 BucketAlreadyOwnedByYou: kept from an earlier start
    *) start_failed "creating bucket $b: HTTP $code" ;;
  esac
  code="$(s3_curl GET "/$b?list-type=2&max-keys=1")" || start_failed "listing bucket $b: curl failed"
  [[ $code == 200 ]] || start_failed "bucket $b was created but a signed listing got HTTP $code"
}

cmd_start() {
  parse_opts "$@"
  [[ ${#REST[@]} -eq 0 ]] || die "start: unexpected argument '${REST[0]}'"
  need_cmd java "Install a Java 17 runtime (Debian: apt-get install openjdk-17-jre-headless)."
  need_cmd curl "Install curl (Debian: apt-get install curl); it creates the buckets."
  local t0 pid b
  t0="$(now_ms)"
  for b in "${BUCKETS[@]}"; do valid_bucket "$b"; done
  ensure_jar

  if pid="$(running_pid)"; then
    local ep
    ep="$(cat "$DIR/endpoint")"
    if [[ -n $PORT && $ep != "http://127.0.0.1:$PORT" ]]; then
      die "an s3proxy is already running in $DIR on $ep (pid $pid); stop it first"
    fi
    PORT="${ep##*:}"
    for b in "${BUCKETS[@]}"; do create_bucket "$b"; done
    log "already running in $DIR (pid $pid)"
    printf 'endpoint=%s\n' "$ep"
    return 0
  fi

  PORT="${PORT:-$DEFAULT_PORT}"
  valid_port "$PORT"
  port_open "$PORT" && die "127.0.0.1:$PORT is already in use. Pick another with --port."

  rm -f "$DIR/s3proxy.pid" "$DIR/endpoint"
  (( FRESH )) && rm -rf "$DIR/data"
  mkdir -p "$DIR/data" "$DIR/logs"
  write_conf

  # Start detached (own session, immune to the caller's Ctrl-C/hangup); the
  # child writes its own pid, then becomes the JVM.
  # The transient backend keeps objects on the heap: the tests store 256 MiB.
  local jvm_opts=$JVM_OPTS
  [[ $BACKEND == transient && -z ${VECTORD_S3PROXY_JVM_OPTS:-} ]] &&
    jvm_opts=${JVM_OPTS/-Xmx384m/-Xmx1536m}
  # shellcheck disable=SC2086  # JVM options are a word list on purpose
  setsid nohup sh -c 'echo $$ >"$0"; exec "$@"' "$DIR/s3proxy.pid" \
    java $jvm_opts -Djava.awt.headless=true -jar "$JAR" --properties "$DIR/s3proxy.conf" \
    >>"$DIR/logs/s3proxy.out" 2>&1 </dev/null &

  local deadline=$(( $(date +%s) + ${TIMEOUT:-60} ))
  while [[ ! -s $DIR/s3proxy.pid ]]; do
    (( $(date +%s) < deadline )) || break
    sleep 0.05
  done
  pid="$(cat "$DIR/s3proxy.pid" 2>/dev/null || true)"
  [[ -n $pid ]] || start_failed "the s3proxy process did not start"
  # Up = answers HTTP (an unsigned request gets 403 AccessDenied).
  local answered=0 code
  while (( $(date +%s) < deadline )); do
    kill -0 "$pid" 2>/dev/null || start_failed "s3proxy exited during startup"
    if port_open "$PORT"; then
      code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$PORT/" || true)"
      if [[ $code =~ ^[2-5][0-9][0-9]$ ]]; then answered=1; break; fi
    fi
    sleep 0.1
  done
  (( answered )) || start_failed "s3proxy did not answer on 127.0.0.1:$PORT within ${TIMEOUT:-60}s"
  for b in "${BUCKETS[@]}"; do create_bucket "$b"; done

  printf 'http://127.0.0.1:%s\n' "$PORT" >"$DIR/endpoint"
  log "s3proxy $S3PROXY_VERSION up in $(elapsed "$t0"): pid $pid, dir $DIR${BUCKETS[*]:+, buckets ${BUCKETS[*]}}"
  printf 'endpoint=http://127.0.0.1:%s\n' "$PORT"
}

start_failed() {
  log "start failed: $1. Last lines of $DIR/logs/s3proxy.out:"
  tail -n 30 "$DIR/logs/s3proxy.out" >&2 2>/dev/null || true
  local pid
  if pid="$(running_pid)"; then
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$DIR/s3proxy.pid" "$DIR/endpoint"
  exit 1
}

# ------------------------------------------------------------ stop/status --

cmd_stop() {
  parse_opts "$@"
  local pid t0
  if ! pid="$(running_pid)"; then
    rm -f "$DIR/s3proxy.pid" "$DIR/endpoint"
    log "not running in $DIR"
    return 0
  fi
  t0="$(now_ms)"
  terminate "$pid" s3proxy "${TIMEOUT:-20}" || true
  rm -f "$DIR/s3proxy.pid" "$DIR/endpoint"
  log "stopped (pid $pid) in $(elapsed "$t0")"
}

cmd_status() {
  parse_opts "$@"
  local pid
  if pid="$(running_pid)"; then
    printf 'running pid=%s endpoint=%s dir=%s s3proxy=%s jar=%s\n' \
      "$pid" "$(cat "$DIR/endpoint" 2>/dev/null || echo '?')" "$DIR" "$S3PROXY_VERSION" "$JAR"
    return 0
  fi
  printf 'stopped dir=%s s3proxy=%s jar=%s%s\n' "$DIR" "$S3PROXY_VERSION" "$JAR" \
    "$(jar_ready && echo '' || echo ' (not fetched)')"
  return 3
}

# Prints shell `export` lines for an AWS client of the server of $DIR.
cmd_env() {
  parse_opts "$@"
  [[ ${#REST[@]} -eq 0 ]] || die "env: unexpected argument '${REST[0]}'"
  running_pid >/dev/null && [[ -f $DIR/endpoint ]] ||
    die "no s3proxy running in $DIR (run: $PROG start --dir $DIR)"
  printf 'export AWS_ACCESS_KEY_ID=%q\n' "$(conf_get s3proxy.identity)"
  printf 'export AWS_SECRET_ACCESS_KEY=%q\n' "$(conf_get s3proxy.credential)"
  printf 'export AWS_REGION=%s\n' "$REGION"
  printf 'export AWS_ENDPOINT_URL_S3=%s\n' "$(cat "$DIR/endpoint")"
}

usage() {
  sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

main() {
  local cmd="${1:-help}"
  [[ $# -gt 0 ]] && shift
  case "$cmd" in
    fetch) cmd_fetch "$@" ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    status) cmd_status "$@" ;;
    env) cmd_env "$@" ;;
    help|-h|--help) usage ;;
    *) die "unknown command '$cmd' (see: $PROG help)" ;;
  esac
}

main "$@"
