#!/usr/bin/env bash
# Writes a man page (section 1) for vectord or vectorctl from the program's
# own --help, so the installed page says what the binary says. The build runs
# it (CMakeLists.txt, target `man`); help2man is not needed.
#   scripts/gen-man.sh PATH/TO/PROGRAM VERSION OUT.1
# --help's layout: a "usage:" line and its indented continuation lines (the
# SYNOPSIS), then the options and commands, indented by two (OPTIONS), then
# column-0 "title: text" lines such as "exit status: ..." (a section each).
set -euo pipefail
prog=$1 version=$2 out=$3
name=$(basename "$prog")
case $name in
vectord) what="Kafka vector-search worker (HNSW indexes, LHV1 checkpoints)" see=vectorctl ;;
vectorctl) what="command-line client of vectord" see=vectord ;;
*) echo "gen-man: no description for $name" >&2; exit 2 ;;
esac
help=$(env -i PATH="$PATH" ASAN_OPTIONS="${ASAN_OPTIONS:-}" "$prog" --help)
[[ $help == usage:* ]] || { echo "gen-man: $name --help does not start with usage:" >&2; exit 1; }

{
  printf '.TH %s 1 "" "vectord %s" "User Commands"\n' "$(tr a-z A-Z <<<"$name")" "$version"
  printf '.SH NAME\n%s \\- %s\n' "$name" "$what"
  awk -v name="$name" '
    # roff: backslashes, hyphens, and lines that would start a request
    function text(s) {
      gsub(/\\/, "\\e", s); gsub(/-/, "\\-", s)
      if (s ~ /^[.\047]/) s = "\\&" s
      print s
    }
    function section(t) { if (open) print ".fi"; print ".SH " t; print ".nf"; open = 1 }
    NR == 1 {
      section("SYNOPSIS"); sub(/^usage: /, ""); text($0); state = "synopsis"; next
    }
    state == "synopsis" && /^   / { sub(/^       /, ""); text($0); next }
    state == "synopsis" {
      if (open) print ".fi"
      print ".SH DESCRIPTION"
      print "The sections below are the output of"
      print ".BR \"" name " \\-\\-help\" ."
      print "More in the source tree: README.md, docs/ and schemas/."
      open = 0; section("OPTIONS"); state = "options"
    }
    /^[a-z][a-z ]*: / {
      t = $0; sub(/:.*/, "", t); rest = $0; sub(/^[^:]*: /, "", rest)
      section(toupper(t)); text(rest); next
    }
    { sub(/^  /, ""); text($0) }
    END { if (open) print ".fi" }' <<<"$help"
  printf '.SH SEE ALSO\n.BR %s (1)\n' "$see"
} >"$out.tmp"
mv "$out.tmp" "$out"
