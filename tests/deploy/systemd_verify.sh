#!/usr/bin/env bash
# deploy/systemd/ checked offline (CTest: deploy_systemd_verify):
#   1. `systemd-analyze verify` on the unit, its ExecStart pointed at the
#      built vectord (verify needs the binary to exist) and its man pages on
#      MANPATH: exit 0 and not one warning (unknown keys and bad values are
#      only warnings to systemd, so any output fails);
#   2. `systemd-analyze security --offline`: exposure at most 2.0;
#   3. the restart story's settings are there (SIGTERM, a long stop timeout);
#   4. vectord --version, --help and a bad argument (exit 2, no leak under
#      ASan);
#   5. the default properties file loads, points the store at the state
#      directory, and each commented default equals the built-in one.
# The checker is first run on a unit with a misspelt key, which must fail.
#   systemd_verify.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$(realpath "$1") build=$(realpath "$2")
unit=$src/deploy/systemd/vectord.service props=$src/deploy/systemd/vectord.properties
work=$(mktemp -d "${TMPDIR:-/tmp}/vectord-systemd.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v systemd-analyze >/dev/null || fail "systemd-analyze not found (apt-get install systemd)"

mkdir -p "$work/man/man1" "$work/units"
cp "$build"/man/vectord.1 "$build"/man/vectorctl.1 "$work/man/man1/"
# verify UNIT_FILE: exit 0 and silent.
verify() {
  local out
  out=$(MANPATH=$work/man systemd-analyze verify "$1" 2>&1) || { echo "$out"; return 1; }
  [[ -z $out ]] || { echo "$out"; return 1; }
}
local_unit() { sed "s|^ExecStart=/usr/bin/vectord |ExecStart=$build/vectord |" "$unit"; }

local_unit | sed 's/^ProtectSystem=/ProtectSytem=/' >"$work/units/vectord.service"
verify "$work/units/vectord.service" >/dev/null && fail "a misspelt key passed the check"

local_unit >"$work/units/vectord.service"
grep -q "^ExecStart=$build/vectord -c /etc/vectord/vectord.properties\$" "$work/units/vectord.service" ||
  fail "ExecStart is not /usr/bin/vectord -c /etc/vectord/vectord.properties"
verify "$work/units/vectord.service" || fail "systemd-analyze verify"
echo "systemd-analyze verify: clean"

# Exposure is scored 0..100 internally (shown /10): 20 is 2.0.
systemd-analyze security --offline=yes --threshold=20 "$work/units/vectord.service" >"$work/security.txt" 2>&1 ||
  fail "exposure above 2.0: $(grep -E 'Overall|✗' "$work/security.txt")"
grep 'Overall exposure' "$work/security.txt"

for want in KillSignal=SIGTERM StateDirectory=vectord DynamicUser=yes ProtectSystem=strict \
  NoNewPrivileges=yes ProtectHome=yes PrivateTmp=yes; do
  grep -qx "$want" "$unit" || fail "$want missing"
done
# The stop timeout must exceed the worst single-request store time (60 s x 4).
stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)min$/\1/p' "$unit")
[[ -n $stop && $stop -ge 5 ]] || fail "TimeoutStopSec must be at least 5min"

# What the unit and an operator run first: --version, --help, a bad argument
# (exit 2); under ASan these must not leak either.
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build/CMakeCache.txt")
[[ $("$build/vectord" --version) == "vectord $version" ]] || fail "vectord --version"
"$build/vectord" --help >/dev/null || fail "vectord --help exited $?"
rc=0; "$build/vectord" --bogus >/dev/null 2>"$work/bogus.err" || rc=$?
[[ $rc -eq 2 ]] || fail "vectord --bogus exited $rc, want 2: $(head -5 "$work/bogus.err")"

# The properties file: it loads, and the store is the state directory.
dump=$(cd "$work" && env -i PATH="$PATH" "$build/vectord" -c "$props" --dump-config) ||
  fail "vectord -c vectord.properties"
grep -qx 'store.url=/var/lib/vectord' <<<"$dump" || fail "store.url is not /var/lib/vectord"
grep -qx 'embedded.bootstrap.file=/var/lib/vectord/bootstrap' <<<"$dump" || fail "bootstrap file"
# Every "#key=value" line after the defaults marker is the built-in default.
defaults=$(cd "$work" && env -i PATH="$PATH" "$build/vectord" --dump-config | grep -v '^#' | grep =)
n=0
while IFS= read -r line; do
  kv=${line#\#}
  grep -qxF -- "$kv" <<<"$defaults" || fail "properties file: \"$line\" is not the built-in default"
  n=$((n + 1))
done < <(sed -n '/^## Every key/,$p' "$props" | grep -E '^#[a-z][a-z0-9_.]*=')
[[ $n -eq $(grep -c . <<<"$defaults") ]] || fail "properties file lists $n defaults, vectord has $(grep -c . <<<"$defaults")"
echo "properties: $n commented defaults match vectord --dump-config"
echo "deploy_systemd_verify: passed"
