#!/usr/bin/env bash
# The Debian package as an operator gets it (CTest: deploy_deb_package):
#   1. `cpack -G DEB` in the build directory;
#   2. its metadata (`dpkg-deb -f`/`-I`): name, version, the runtime
#      libraries in Depends, /etc/vectord/vectord.properties as a conffile;
#   3. its file list: both programs, man pages, the unit, the conffile;
#   4. installed with dpkg into a throwaway root (`dpkg --root`, maintainer
#      scripts outside a chroot with DPKG_ROOT set, which makes them do
#      nothing); dpkg then lists the conffile as registered;
#   5. the installed programs: --version, no RUNPATH into the build tree,
#      the installed properties file loads, and the embedded smoke
#      (tests/integration/embedded_smoke.sh) run with the installed vectord
#      and vectorctl.
# Nothing is installed into the real system.
#   deb_package.sh SOURCE_DIR BUILD_DIR GEN_VECS
set -euo pipefail
src=$(realpath "$1") build=$(realpath "$2") gen=$(realpath "$3")
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build/CMakeCache.txt")
work=$(mktemp -d "${TMPDIR:-/tmp}/vectord-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "==> $*"; }
for tool in cpack dpkg dpkg-deb dpkg-shlibdeps; do
  command -v $tool >/dev/null || fail "$tool not found"
done

step "cpack -G DEB"
(cd "$build" && cpack -G DEB -B "$work/out") >"$work/cpack.log" 2>&1 || { cat "$work/cpack.log"; fail cpack; }
deb=$(find "$work/out" -maxdepth 1 -name 'vectord_*.deb')
[[ $(wc -l <<<"$deb") -eq 1 && -f $deb ]] || fail "expected one vectord_*.deb, got: $(ls "$work/out")"
echo "$(basename "$deb"): $(stat -c %s "$deb") bytes"

step "metadata"
[[ $(dpkg-deb -f "$deb" Package) == vectord ]] || fail "Package"
[[ $(dpkg-deb -f "$deb" Version) == "$version-1" ]] || fail "Version $(dpkg-deb -f "$deb" Version) != $version-1"
depends=$(dpkg-deb -f "$deb" Depends)
echo "Depends: $depends"
for lib in librdkafka1 libmsgpackc2 libcurl4 libhiredis0.14 libjansson4 libmicrohttpd12 libc6; do
  # msgpack-c is header-only in what vectord uses: no libmsgpackc2 if nothing links it.
  if [[ $lib == libmsgpackc2 ]] && ! readelf -d "$build/vectord" | grep -q 'NEEDED.*libmsgpackc'; then continue; fi
  grep -qE "(^|, )$lib( |,|$)" <<<"$depends" || fail "Depends lacks $lib"
done
conffiles=$(dpkg-deb -I "$deb" conffiles)
[[ $conffiles == /etc/vectord/vectord.properties ]] || fail "conffiles: $conffiles"
for script in postinst prerm postrm triggers; do
  dpkg-deb -I "$deb" $script >/dev/null || fail "no $script in the control archive"
done

step "file list"
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' >"$work/files.txt"
for f in /usr/bin/vectord /usr/bin/vectorctl /usr/share/man/man1/vectord.1 \
  /usr/share/man/man1/vectorctl.1 /usr/lib/systemd/system/vectord.service \
  /etc/vectord/vectord.properties /usr/share/bash-completion/completions/vectorctl \
  /usr/lib/libvectord.so.0 /usr/include/vectord/index.h /usr/lib/pkgconfig/vectord.pc; do
  grep -qx "$f" "$work/files.txt" || fail "$f not in the package"
done
grep -v '/$' "$work/files.txt" | grep -vE '^/(usr|etc/vectord)/' && fail "files outside /usr and /etc/vectord"

step "dpkg --root (throwaway root)"
root=$work/root
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
: >"$root/var/lib/dpkg/status"
# --force-depends: the throwaway root has no libraries registered (they are
# on the host); --force-script-chrootless: no shell inside the root.
dpkg --root="$root" --log=/dev/null --force-depends --force-script-chrootless \
  --no-triggers -i "$deb" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -i"; }
[[ $(dpkg --root="$root" -s vectord | sed -n 's/^Status: //p') == "install ok installed" ]] ||
  fail "dpkg status: $(dpkg --root="$root" -s vectord)"
dpkg --root="$root" -s vectord | grep -A1 '^Conffiles:' | grep -q '/etc/vectord/vectord.properties [0-9a-f]\{32\}' ||
  fail "conffile not registered: $(dpkg --root="$root" -s vectord)"
cmp "$root/usr/lib/systemd/system/vectord.service" "$src/deploy/systemd/vectord.service" || fail "unit differs"
cmp "$root/etc/vectord/vectord.properties" "$src/deploy/systemd/vectord.properties" || fail "properties differ"

step "installed programs"
vd=$root/usr/bin/vectord ctl=$root/usr/bin/vectorctl
[[ $("$vd" --version) == "vectord $version" ]] || fail "vectord --version: $("$vd" --version)"
[[ $("$ctl" --version) == "vectorctl $version" ]] || fail "vectorctl --version: $("$ctl" --version)"
for p in "$vd" "$ctl"; do
  readelf -d "$p" | grep -qE 'R(UN)?PATH' && fail "$p has an RPATH: $(readelf -d "$p" | grep PATH)"
  ldd "$p" | grep -q 'not found' && fail "$p: $(ldd "$p" | grep 'not found')"
  ldd "$p" | grep -q "$build" && fail "$p loads from the build tree"
done
dump=$(env -i PATH="$PATH" "$vd" -c "$root/etc/vectord/vectord.properties" --dump-config) ||
  fail "installed vectord -c installed properties"
grep -qx 'store.url=/var/lib/vectord' <<<"$dump" || fail "installed properties: store.url"

step "embedded smoke from the installed paths"
"$src/tests/integration/embedded_smoke.sh" "$vd" "$ctl" "$gen" "$work/smoke"
echo "deploy_deb_package: passed"
