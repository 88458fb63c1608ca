#!/usr/bin/env bash
# deploy/kafka/kafka.sh — a real single-node Apache Kafka broker for tests and
# development: KRaft mode, one JVM acting as broker + controller, listening on
# 127.0.0.1 only, built from the Kafka jars on Maven Central (no tarball).
#
#   kafka.sh fetch                      resolve the jars with Maven into the cache
#   kafka.sh start  [--dir D] [--port P] [--controller-port C] [--partitions N]
#                   [--cluster-id ID] [--fresh] [--timeout S]
#   kafka.sh stop   [--dir D] [--timeout S]
#   kafka.sh status [--dir D]           exit 0 running, 3 stopped
#   kafka.sh topic create NAME [--partitions N] [--config k=v ...] [--dir D]
#   kafka.sh topic delete NAME [--dir D]
#   kafka.sh topic list [--dir D]
#   kafka.sh topic describe [NAME] [--dir D]
#   kafka.sh run MAIN_CLASS [ARGS...]   any Kafka CLI main class on the classpath
#
# Cache: ${VECTORD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vectord}/kafka-<version>/libs
# State: <dir> (default <repo>/var/kafka-test, or $VECTORD_KAFKA_DIR) holds
#        server.properties, data/, logs/, kafka.pid, bootstrap, cluster.id.
# Ports: 39092 (clients), 39093 (controller), far from a developer's 9092/9093.
# AUTO_CREATE=true in the environment of `start`: the broker creates topics
# on first use (auto.create.topics.enable; off by default, as tests create
# their topics explicitly).
#
# Needs java (17) and mvn. If Maven cannot resolve the jars, `fetch` and
# `start` fail loudly: a caller must NOT fall back to a mock broker.
# See deploy/kafka/README.md.

set -euo pipefail

# Newest 3.x on Maven Central. Not 4.x: Kafka 4 removed old protocol versions
# and the clients we test with are Debian's librdkafka 2.0.2 (README.md).
KAFKA_VERSION="${VECTORD_KAFKA_VERSION:-3.9.2}"

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
CACHE_ROOT="${VECTORD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vectord}"
KAFKA_HOME="$CACHE_ROOT/kafka-$KAFKA_VERSION"
LIBS="$KAFKA_HOME/libs"
STAMP="$KAFKA_HOME/.fetched"

DEFAULT_DIR="${VECTORD_KAFKA_DIR:-$REPO_ROOT/var/kafka-test}"
DEFAULT_PORT=39092
DEFAULT_CONTROLLER_PORT=39093

# Broker JVM: small heap (it shares a 2-core machine with the tests), C1 only
# and class-data sharing for a quick start. Override with VECTORD_KAFKA_JVM_OPTS.
BROKER_JVM_OPTS="${VECTORD_KAFKA_JVM_OPTS:--Xms128m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:TieredStopAtLevel=1 -Xshare:auto -XX:-UsePerfData}"
# CLI tools: short-lived, so the cheapest JVM there is.
TOOLS_JVM_OPTS="${VECTORD_KAFKA_TOOLS_JVM_OPTS:--Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto -XX:-UsePerfData}"

# ---------------------------------------------------------------- helpers --

PROG="kafka.sh"
# log die now_ms elapsed need_cmd port_open valid_port
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../lib.sh"

# Kafka cluster ids are 16 random bytes, base64url without padding (22 chars),
# and Kafka never hands out one that starts with '-' (it looks like an option).
new_cluster_id() {
  local id
  while :; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    [[ $id == -* ]] || break
  done
  printf '%s\n' "$id"
}

# --- Class-data sharing (AppCDS) ---
# Loading Kafka's and Scala's classes dominates JVM start. The first run of
# the broker / of each CLI main class records the classes it loaded into an archive
# (-XX:ArchiveClassesAtExit); later runs map it (-XX:SharedArchiveFile), which
# roughly halves their start-up. Archives live next to the jars, are keyed by
# the JVM build, and are dropped on refetch. A stale or broken archive is
# ignored by the JVM (-Xshare:auto). VECTORD_KAFKA_CDS=0 turns this off.
CDS_DIR="$KAFKA_HOME/cds"
CDS_OPTS=()     # set by cds_setup: JVM options for this run
CDS_PENDING=""  # set by cds_setup when this run records a new archive

cds_archive() {  # path of the archive for $1 (broker or a main class) on this JVM
  local java_bin jvm key
  java_bin="$(readlink -f "$(command -v java)")"
  jvm="$(dirname "$(dirname "$java_bin")")/lib/server/libjvm.so"
  [[ -f $jvm ]] || jvm="$java_bin"
  key="$(stat -L -c '%s-%Y' "$jvm")"
  printf '%s/%s-%s.jsa\n' "$CDS_DIR" "$1" "$key"
}

# Sets CDS_OPTS (and CDS_PENDING when recording) for archive $1.
cds_setup() {
  CDS_OPTS=() CDS_PENDING=""
  [[ ${VECTORD_KAFKA_CDS:-1} != 0 ]] || return 0
  local a
  a="$(cds_archive "$1")"
  # JVM warnings to stderr, and none about CDS (keeps tool stdout clean).
  CDS_OPTS=(-Xlog:disable -Xlog:all=warning:stderr '-Xlog:cds*=off:stderr')
  if [[ -s $a ]]; then
    CDS_OPTS+=("-XX:SharedArchiveFile=$a")
  else
    mkdir -p "$CDS_DIR"
    find "$CDS_DIR" -name '*.tmp.*' -mmin +10 -delete 2>/dev/null || true
    CDS_PENDING="$a.tmp.$$.$RANDOM"
    CDS_OPTS+=("-XX:ArchiveClassesAtExit=$CDS_PENDING")
  fi
}

# Publishes a recorded archive ($1 = pending path) once its JVM has exited
# normally; $2 = 0 for a normal exit.
cds_publish() {
  [[ -n $1 ]] || return 0
  if [[ $2 == 0 && -s $1 ]]; then mv -f "$1" "${1%.tmp.*}"; else rm -f "$1"; fi
}

# Run a Kafka CLI main class on the cached classpath (optionally under
# `timeout SECS` when KAFKA_JAVA_TIMEOUT is set).
kafka_java() {
  local -a pre=()
  local rc=0
  [[ -n ${KAFKA_JAVA_TIMEOUT:-} ]] && pre=(timeout "$KAFKA_JAVA_TIMEOUT")
  cds_setup "$1"
  # shellcheck disable=SC2086  # JVM options are a word list on purpose
  "${pre[@]}" java $TOOLS_JVM_OPTS "${CDS_OPTS[@]}" \
    -Dlog4j.configuration="file:$SCRIPT_DIR/tools-log4j.properties" \
    -cp "$LIBS/*" "$@" || rc=$?
  cds_publish "$CDS_PENDING" "$rc"
  return "$rc"
}

# ------------------------------------------------------------------ fetch --

fetch_key() {
  # What the cached libs were resolved from: a pom or version change refetches.
  printf 'kafka %s\n' "$KAFKA_VERSION"
  sha256sum < "$SCRIPT_DIR/pom.xml" | cut -d' ' -f1
}

libs_ready() {
  [[ -f $STAMP && -d $LIBS ]] && [[ "$(cat "$STAMP")" == "$(fetch_key)" ]]
}

cmd_fetch() {
  [[ $# -eq 0 ]] || die "fetch takes no arguments"
  need_cmd java "Install a Java 17 runtime (Debian: apt-get install openjdk-17-jre-headless)."
  if libs_ready; then
    log "Kafka $KAFKA_VERSION jars already cached in $LIBS"
    return 0
  fi
  need_cmd mvn "Install Maven (Debian: apt-get install maven); it resolves the Kafka jars."
  mkdir -p "$KAFKA_HOME"
  # One fetch at a time per version (parallel test jobs may all call start).
  exec 9>"$KAFKA_HOME/.lock"
  flock 9
  if libs_ready; then
    log "Kafka $KAFKA_VERSION jars already cached in $LIBS"
    exec 9>&-
    return 0
  fi

  local t0 tmp mvn_log
  t0="$(now_ms)"
  rm -rf "$KAFKA_HOME"/libs.tmp.*   # left by an interrupted fetch
  tmp="$(mktemp -d "$KAFKA_HOME/libs.tmp.XXXXXX")"
  mvn_log="$KAFKA_HOME/fetch.log"
  log "resolving Kafka $KAFKA_VERSION with Maven (first time only) ..."
  local -a mvn_args=(-q -B -Dstyle.color=never -f "$SCRIPT_DIR/pom.xml" "-Dkafka.version=$KAFKA_VERSION"
    dependency:copy-dependencies "-DoutputDirectory=$tmp" -DincludeScope=runtime)
  # Optional: a separate Maven local repository (e.g. to measure a cold fetch).
  [[ -n ${VECTORD_MAVEN_REPO:-} ]] && mvn_args=("-Dmaven.repo.local=$VECTORD_MAVEN_REPO" "${mvn_args[@]}")
  if ! mvn "${mvn_args[@]}" >"$mvn_log" 2>&1; then
    rm -rf "$tmp"
    sed 's/\x1b\[[0-9;]*m//g' "$mvn_log" | tail -n 30 >&2 || true
    printf '%s: error: %s\n%s\n' "$PROG" \
      "Maven could not resolve the Kafka $KAFKA_VERSION broker jars (full log: $mvn_log)." \
      "There is NO real Kafka broker available: tests that need one must fail, not fall back to a mock." >&2
    exit 2
  fi
  [[ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ]] ||
    { rm -rf "$tmp"; die "Maven finished but kafka_2.13-$KAFKA_VERSION.jar is missing from the result"; }
  rm -rf "$LIBS" "$CDS_DIR"   # class archives are tied to the exact jars
  mv "$tmp" "$LIBS"
  fetch_key >"$STAMP"
  exec 9>&-
  log "fetched $(find "$LIBS" -name '*.jar' | wc -l) jars ($(du -sh "$LIBS" | cut -f1)) into $LIBS in $(elapsed "$t0")"
}

ensure_libs() {
  libs_ready || cmd_fetch
}

# ------------------------------------------------------------- broker dir --

# Options shared by start/stop/status/topic; sets DIR PORT CPORT PARTITIONS ...
DIR="$DEFAULT_DIR"
PORT=""
CPORT=""
PARTITIONS=""
CLUSTER_ID=""
FRESH=0
TIMEOUT=""
BOOTSTRAP=""
declare -a REST=()
declare -a TOPIC_CONFIGS=()

parse_opts() {
  REST=()
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --dir) DIR="${2:?--dir needs a value}"; shift 2 ;;
      --dir=*) DIR="${1#*=}"; shift ;;
      --port) PORT="${2:?--port needs a value}"; shift 2 ;;
      --port=*) PORT="${1#*=}"; shift ;;
      --controller-port) CPORT="${2:?--controller-port needs a value}"; shift 2 ;;
      --controller-port=*) CPORT="${1#*=}"; shift ;;
      --partitions) PARTITIONS="${2:?--partitions needs a value}"; shift 2 ;;
      --partitions=*) PARTITIONS="${1#*=}"; shift ;;
      --cluster-id) CLUSTER_ID="${2:?--cluster-id needs a value}"; shift 2 ;;
      --fresh) FRESH=1; shift ;;
      --timeout) TIMEOUT="${2:?--timeout needs a value}"; shift 2 ;;
      --bootstrap-server) BOOTSTRAP="${2:?--bootstrap-server needs a value}"; shift 2 ;;
      --config) TOPIC_CONFIGS+=("${2:?--config needs k=v}"); shift 2 ;;
      --config=*) TOPIC_CONFIGS+=("${1#*=}"); shift ;;
      -h|--help) usage; exit 0 ;;
      --) shift; REST+=("$@"); break ;;
      -*) die "unknown option '$1' (see: $PROG help)" ;;
      *) REST+=("$1"); shift ;;
    esac
  done
  [[ -z $PARTITIONS || $PARTITIONS =~ ^[1-9][0-9]*$ ]] || die "bad partition count '$PARTITIONS'"
  DIR="$(realpath -m -- "$DIR")"
}

pid_file() { printf '%s/kafka.pid' "$DIR"; }

# Prints the broker's pid if the broker of $DIR is running.
running_pid() { pid_of "$(pid_file)" "kafka.Kafka $DIR/server.properties"; }

bootstrap_of_dir() {
  if [[ -n $BOOTSTRAP ]]; then printf '%s\n' "$BOOTSTRAP"; return; fi
  running_pid >/dev/null && [[ -f $DIR/bootstrap ]] ||
    die "no broker running in $DIR (run: $PROG start --dir $DIR, or pass --bootstrap-server)"
  cat "$DIR/bootstrap"
}

write_server_properties() {
  cat >"$DIR/server.properties" <<EOF
# Written by deploy/kafka/kafka.sh start; rewritten on every start.
# Single node, KRaft, broker + controller in one process, loopback only.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CPORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DIR/data

# One replica of everything.
num.partitions=${PARTITIONS:-1}
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4

# Tests create their topics explicitly (co-partitioning is checked).
auto.create.topics.enable=${AUTO_CREATE:-false}
delete.topic.enable=true

# Fast group joins and short session timeouts for tests.
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=500

# Retention tests: per-topic retention.ms / retention.bytes / segment.bytes /
# segment.ms overrides are honoured, and expired segments go within ~1 s.
log.retention.check.interval.ms=1000
log.initial.task.delay.ms=1000
log.segment.delete.delay.ms=0
log.retention.hours=168
log.segment.bytes=104857600
file.delete.delay.ms=0

# Small footprint (the machine has 2 cores).
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
background.threads=4
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=16777216
EOF
}

cmd_start() {
  parse_opts "$@"
  [[ ${#REST[@]} -eq 0 ]] || die "start: unexpected argument '${REST[0]}'"
  need_cmd java "Install a Java 17 runtime (Debian: apt-get install openjdk-17-jre-headless)."
  local t0 pid
  t0="$(now_ms)"
  ensure_libs

  if pid="$(running_pid)"; then
    local bs
    bs="$(cat "$DIR/bootstrap")"
    if [[ -n $PORT && $bs != "127.0.0.1:$PORT" ]]; then
      die "a broker is already running in $DIR on $bs (pid $pid); stop it first"
    fi
    log "already running in $DIR (pid $pid)"
    printf 'bootstrap=%s\n' "$bs"
    return 0
  fi

  PORT="${PORT:-$DEFAULT_PORT}"
  CPORT="${CPORT:-$DEFAULT_CONTROLLER_PORT}"
  valid_port "$PORT"; valid_port "$CPORT"
  [[ $PORT != "$CPORT" ]] || die "--port and --controller-port must differ"
  local p
  for p in "$PORT" "$CPORT"; do
    port_open "$p" && die "127.0.0.1:$p is already in use (another Kafka?). Pick others with --port/--controller-port."
  done

  rm -f "$DIR/kafka.pid" "$DIR/bootstrap"
  if (( FRESH )); then
    rm -rf "$DIR/data" "$DIR/logs" "$DIR/cluster.id"
  fi
  mkdir -p "$DIR/data" "$DIR/logs"
  write_server_properties

  # Format the storage once; a later start in the same dir keeps its data.
  if [[ ! -f $DIR/data/meta.properties ]]; then
    [[ -n $CLUSTER_ID ]] || CLUSTER_ID="$(new_cluster_id)"
    kafka_java kafka.tools.StorageTool format --ignore-formatted \
      -t "$CLUSTER_ID" -c "$DIR/server.properties" >"$DIR/logs/format.out" 2>&1 ||
      { cat "$DIR/logs/format.out" >&2; die "formatting the storage in $DIR/data failed"; }
    printf '%s\n' "$CLUSTER_ID" >"$DIR/cluster.id"
  elif [[ -n $CLUSTER_ID && -f $DIR/cluster.id && $CLUSTER_ID != "$(cat "$DIR/cluster.id")" ]]; then
    die "$DIR/data belongs to cluster $(cat "$DIR/cluster.id"); use --fresh to wipe it"
  fi

  # Start detached (own session, immune to the caller's Ctrl-C/hangup); the
  # child writes its own pid, then becomes the JVM.
  cds_setup broker
  printf '%s\n' "$CDS_PENDING" >"$DIR/cds.pending"
  LOG_FROM=$( { wc -l <"$DIR/logs/server.log"; } 2>/dev/null || echo 0)
  # shellcheck disable=SC2086
  setsid nohup sh -c 'echo $$ >"$0"; exec "$@"' "$DIR/kafka.pid" \
    java $BROKER_JVM_OPTS "${CDS_OPTS[@]}" -Djava.awt.headless=true \
      -Dlog4j.configuration="file:$SCRIPT_DIR/log4j.properties" \
      -Dkafka.logs.dir="$DIR/logs" \
      -cp "$LIBS/*" kafka.Kafka "$DIR/server.properties" \
    >>"$DIR/logs/kafka.out" 2>&1 </dev/null &

  local deadline=$(( $(date +%s) + ${TIMEOUT:-90} ))
  # Wait for the pid file, then for the listener, then for a real answer.
  while [[ ! -s $DIR/kafka.pid ]]; do
    (( $(date +%s) < deadline )) || break
    sleep 0.05
  done
  pid="$(cat "$DIR/kafka.pid" 2>/dev/null || true)"
  [[ -n $pid ]] || start_failed "the broker process did not start"
  local answered=0
  while (( $(date +%s) < deadline )); do
    kill -0 "$pid" 2>/dev/null || start_failed "the broker exited during startup"
    if port_open "$PORT" &&
       KAFKA_JAVA_TIMEOUT=30 kafka_java org.apache.kafka.tools.TopicCommand \
         --bootstrap-server "127.0.0.1:$PORT" --list >"$DIR/logs/ready-check.out" 2>&1; then
      answered=1
      break
    fi
    sleep 0.2
  done
  (( answered )) || start_failed "the broker did not answer on 127.0.0.1:$PORT within ${TIMEOUT:-90}s"

  printf '127.0.0.1:%s\n' "$PORT" >"$DIR/bootstrap"
  log "Kafka $KAFKA_VERSION up in $(elapsed "$t0"): pid $(cat "$DIR/kafka.pid"), dir $DIR"
  printf 'bootstrap=127.0.0.1:%s\n' "$PORT"
}

start_failed() {
  log "start failed: $1."
  # The cause is an ERROR line of this start, usually followed by many lines
  # of shutdown.
  local errors
  errors="$(tail -n +$(( ${LOG_FROM:-0} + 1 )) "$DIR/logs/server.log" 2>/dev/null |
    grep -E -A3 '^\[[^]]*\] (ERROR|FATAL) ' | tail -n 30)" || true
  if [[ -n $errors ]]; then
    log "errors in $DIR/logs/server.log:"
    printf '%s\n' "$errors" >&2
  fi
  log "last lines of $DIR/logs/server.log and kafka.out:"
  tail -n 20 "$DIR/logs/server.log" >&2 2>/dev/null || true
  tail -n 20 "$DIR/logs/kafka.out" >&2 2>/dev/null || true
  [[ -s $DIR/logs/ready-check.out ]] && tail -n 10 "$DIR/logs/ready-check.out" >&2
  local pid
  if pid="$(running_pid)"; then
    kill -KILL "$pid" 2>/dev/null || true
  fi
  [[ -f $DIR/cds.pending ]] && cds_publish "$(cat "$DIR/cds.pending")" 1
  rm -f "$DIR/kafka.pid" "$DIR/cds.pending"
  exit 1
}

# ------------------------------------------------------------ stop/status --

cmd_stop() {
  parse_opts "$@"
  local pid t0
  if ! pid="$(running_pid)"; then
    rm -f "$DIR/kafka.pid"
    log "not running in $DIR"
    return 0
  fi
  t0="$(now_ms)"
  local killed=0
  terminate "$pid" broker "${TIMEOUT:-30}" || killed=1
  # A first run recorded its class archive at exit (see AppCDS above).
  [[ -f $DIR/cds.pending ]] && cds_publish "$(cat "$DIR/cds.pending")" "$killed"
  rm -f "$DIR/kafka.pid" "$DIR/cds.pending"
  log "stopped (pid $pid) in $(elapsed "$t0")"
}

cmd_status() {
  parse_opts "$@"
  local pid
  if pid="$(running_pid)"; then
    printf 'running pid=%s bootstrap=%s dir=%s kafka=%s libs=%s\n' \
      "$pid" "$(cat "$DIR/bootstrap" 2>/dev/null || echo '?')" "$DIR" "$KAFKA_VERSION" "$LIBS"
    return 0
  fi
  printf 'stopped dir=%s kafka=%s libs=%s%s\n' "$DIR" "$KAFKA_VERSION" "$LIBS" \
    "$(libs_ready && echo '' || echo ' (not fetched)')"
  return 3
}

# ------------------------------------------------------------------ topic --

cmd_topic() {
  local action="${1:-}"
  [[ -n $action ]] || die "usage: $PROG topic create|delete|list|describe ..."
  shift
  parse_opts "$@"
  ensure_libs
  local bs
  bs="$(bootstrap_of_dir)"
  local -a args=(--bootstrap-server "$bs")
  case "$action" in
    create)
      [[ ${#REST[@]} -eq 1 ]] || die "usage: $PROG topic create NAME [--partitions N] [--config k=v ...]"
      args+=(--create --topic "${REST[0]}" --replication-factor 1)
      [[ -n $PARTITIONS ]] && args+=(--partitions "$PARTITIONS")
      local c
      for c in "${TOPIC_CONFIGS[@]}"; do
        [[ $c == *=* ]] || die "--config wants k=v, got '$c'"
        args+=(--config "$c")
      done
      ;;
    delete)
      [[ ${#REST[@]} -eq 1 ]] || die "usage: $PROG topic delete NAME"
      args+=(--delete --topic "${REST[0]}")
      ;;
    list)
      [[ ${#REST[@]} -eq 0 ]] || die "usage: $PROG topic list"
      args+=(--list)
      ;;
    describe)
      [[ ${#REST[@]} -le 1 ]] || die "usage: $PROG topic describe [NAME]"
      args+=(--describe)
      [[ ${#REST[@]} -eq 1 ]] && args+=(--topic "${REST[0]}")
      ;;
    *) die "unknown topic action '$action' (create, delete, list, describe)" ;;
  esac
  kafka_java org.apache.kafka.tools.TopicCommand "${args[@]}"
}

cmd_run() {
  [[ $# -ge 1 ]] || die "usage: $PROG run MAIN_CLASS [ARGS...]"
  need_cmd java "Install a Java 17 runtime."
  ensure_libs
  kafka_java "$@"
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
    topic) cmd_topic "$@" ;;
    run) cmd_run "$@" ;;
    help|-h|--help) usage ;;
    *) die "unknown command '$cmd' (see: $PROG help)" ;;
  esac
}

main "$@"
