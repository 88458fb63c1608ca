#!/usr/bin/env bash
# libvectord as a user gets it: `cmake --install` the build tree into a
# temporary prefix, then, in a temporary directory outside the source tree,
# build tests/install/consumer.c against the installed files only and run it:
#   1. with `pkg-config --cflags --libs vectord` (shared library, rpath);
#   2. with `pkg-config --static` against a copy of the prefix without the
#      shared library (so the archive and Libs.private are what links);
#   3. as a CMake project, find_package(vectord), vectord::vectord and
#      vectord::vectord_static.
# Also checks the installed tree: headers (none of the service's), the shared
# library exporting exactly the functions the headers declare, the programs,
# their man pages and vectorctl's bash completion.
#   run.sh BUILD_DIR CC [EXTRA_CFLAGS]
# EXTRA_CFLAGS: what the library was instrumented with (-fsanitize=...), so
# the consumer links the same runtimes.
set -euo pipefail
build=$(realpath "$1") cc=$2 extra=${3:-}
src=$(cd "$(dirname "$0")" && pwd)
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build/CMakeCache.txt")
[[ -n $version ]] || { echo "no project version in $build/CMakeCache.txt" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/vectord-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
fail() { echo "install test: $*" >&2; exit 1; }
# Whether program's dynamic section lists a NEEDED library matching pattern
# (output captured first: grep -q in a pipe would SIGPIPE the writer).
needs() { local d; d=$(readelf -d "$1"); grep -q "NEEDED.*\[$2" <<<"$d"; }
step() { echo "==> $*"; }

step "cmake --install into $prefix"
cmake --install "$build" --prefix "$prefix" >"$work/install.log"

pc=$(find "$prefix" -name vectord.pc -path '*/pkgconfig/*')
[[ -n $pc ]] || fail "no vectord.pc installed"
pcdir=$(dirname "$pc")
pkgconf() { PKG_CONFIG_PATH=$pcdir pkg-config "$@"; }
libdir=$(realpath "$(pkgconf --variable=libdir vectord)")
includedir=$(realpath "$(pkgconf --variable=includedir vectord)")
[[ $(pkgconf --modversion vectord) == "$version" ]] || fail "vectord.pc has version $(pkgconf --modversion vectord), want $version"

step "installed files"
for f in "$includedir"/vectord/{api,error,index,lhv1,version}.h \
  "$libdir"/libvectord.a "$libdir"/libvectord.so "$libdir"/libvectord.so."$version" \
  "$libdir"/cmake/vectord/vectordConfig.cmake "$libdir"/cmake/vectord/vectordConfigVersion.cmake \
  "$prefix"/bin/vectord "$prefix"/bin/vectorctl \
  "$prefix"/share/man/man1/vectord.1 "$prefix"/share/man/man1/vectorctl.1 \
  "$prefix"/share/bash-completion/completions/vectorctl; do
  [[ -e $f ]] || fail "missing ${f#"$prefix"/}"
done
headers=$(cd "$includedir/vectord" && echo *)
[[ $headers == "api.h error.h index.h lhv1.h version.h" ]] || fail "unexpected headers: $headers"
# The public headers are the library's: no Kafka position, no service codes.
if grep -n -i -E 'kafka|VD_ERR_(DECODE|INVALID_REQUEST|UNKNOWN_OP|KEY_MISMATCH|WRONG_PARTITION|TIMEOUT|UNAVAILABLE|CONFIG|ALREADY_EXISTS)\b' \
  "$includedir"/vectord/*.h; then
  fail "the installed headers name the service's Kafka position or error codes (above)"
fi
grep -q "^#define VECTORD_VERSION *\"$version\"" "$includedir/vectord/version.h" ||
  fail "version.h does not define VECTORD_VERSION \"$version\""

step "the shared library exports exactly the declared functions"
soname=$(readelf -d "$libdir/libvectord.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[[ $soname == libvectord.so.* ]] || fail "SONAME is '$soname'"
printf '#include <vectord/%s>\n' $headers >"$work/all.c"
declared=$("$cc" -E -P -I"$includedir" "$work/all.c" | grep -o '\bvd_[a-z0-9_]*[[:space:]]*(' |
  tr -d '( \t' | sort -u)
exported=$(nm -D --defined-only "$libdir/libvectord.so" | awk '{print $3}' |
  grep -v -x -E '_init|_fini' | sort -u)
[[ -n $declared ]] || fail "found no declarations in the headers"
if [[ $declared != "$exported" ]]; then
  diff <(echo "$declared") <(echo "$exported") | sed 's/^/  /' >&2 || true
  fail "exported symbols (>) differ from declared functions (<)"
fi

cd "$work"
cp "$src/consumer.c" .
cflags=(-std=c11 -Wall -Wextra -Wpedantic -Werror $extra)

step "pkg-config --cflags --libs vectord (shared)"
# shellcheck disable=SC2046
"$cc" "${cflags[@]}" consumer.c -o consumer-shared $(pkgconf --cflags --libs vectord) \
  -Wl,-rpath,"$libdir"
needs consumer-shared "$soname\]" || fail "consumer-shared does not use $soname"
./consumer-shared "$work"
loaded=$(ldd consumer-shared)
grep -q "$soname => $libdir/" <<<"$loaded" || fail "consumer-shared loads another libvectord: $loaded"

step "pkg-config --static (the archive and Libs.private)"
cp -a "$prefix" static-prefix
rm -f static-prefix/"${libdir#"$prefix"/}"/libvectord.so*
# shellcheck disable=SC2046
"$cc" "${cflags[@]}" consumer.c -o consumer-static \
  $(PKG_CONFIG_PATH=$work/static-prefix/${pcdir#"$prefix"/} pkg-config --static --cflags --libs vectord)
if needs consumer-static libvectord; then fail "consumer-static needs libvectord.so"; fi
./consumer-static "$work"

step "CMake: find_package(vectord)"
mkdir cmake-project
cat >cmake-project/CMakeLists.txt <<CMAKE
cmake_minimum_required(VERSION 3.22)
project(consumer LANGUAGES C)
find_package(vectord $version REQUIRED)
add_executable(consumer-cmake-shared ../consumer.c)
target_link_libraries(consumer-cmake-shared PRIVATE vectord::vectord)
add_executable(consumer-cmake-static ../consumer.c)
target_link_libraries(consumer-cmake-static PRIVATE vectord::vectord_static)
CMAKE
cmake -S cmake-project -B cmake-build -G Ninja -DCMAKE_C_COMPILER="$cc" \
  -DCMAKE_C_FLAGS="$extra" -DCMAKE_PREFIX_PATH="$prefix" >cmake.log ||
  { cat cmake.log >&2; fail "configuring the CMake consumer"; }
cmake --build cmake-build >>cmake.log || { cat cmake.log >&2; fail "building the CMake consumer"; }
cmake-build/consumer-cmake-shared "$work"
cmake-build/consumer-cmake-static "$work"
if needs cmake-build/consumer-cmake-static libvectord; then
  fail "vectord::vectord_static links the shared library"
fi
# A version with another minor number is not compatible (0.x).
mkdir cmake-version
cat >cmake-version/CMakeLists.txt <<'CMAKE'
cmake_minimum_required(VERSION 3.22)
project(version_check LANGUAGES C)
find_package(vectord 0.99 QUIET)
if(vectord_FOUND)
  message(FATAL_ERROR "find_package(vectord 0.99) found ${vectord_VERSION}")
endif()
CMAKE
cmake -S cmake-version -B cmake-version/build -G Ninja -DCMAKE_PREFIX_PATH="$prefix" >>cmake.log 2>&1 ||
  { tail -5 cmake.log >&2; fail "find_package(vectord 0.99) accepted $version"; }

step "the installed programs and man pages"
# The programs leak their configuration on --help/--version (freed by exit).
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
[[ $("$prefix/bin/vectord" --version) == "vectord $version" ]] || fail "vectord --version"
[[ $("$prefix/bin/vectorctl" --version) == "vectorctl $version" ]] || fail "vectorctl --version"
"$prefix/bin/vectorctl" --help >vectorctl.help || fail "vectorctl --help"
for prog in vectord vectorctl; do
  page=$prefix/share/man/man1/$prog.1
  grep -q "^\.TH $(tr a-z A-Z <<<"$prog") 1 .*vectord $version" "$page" || fail "$prog.1: no .TH line"
  # Every option of --help is on the page.
  for opt in $("$prefix/bin/$prog" --help | grep -o -E -- '--[a-z-]+' | sort -u); do
    grep -q -- "$(sed 's/-/\\\\-/g' <<<"$opt")" "$page" || fail "$prog.1 lacks $opt"
  done
done
echo "install test: ok"
