#!/usr/bin/env bash
# vectorctl's command line (CTest: vectorctl_args), no broker needed: a
# usage error exits 2 with a message naming the argument before anything
# connects; a good command line gets as far as connecting (to a closed port:
# exit 4, "cannot reach Kafka"); --help per command; the bash completion.
#   vectorctl_args.sh VECTORCTL COMPLETION_FILE
set -uo pipefail
ctl=$(realpath "$1") completion=$(realpath "$2")
work=$(mktemp -d "${TMPDIR:-/tmp}/vectorctl-args.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work" # no ./var/vectord/bootstrap here
unset VECTORD_BROKERS VECTORD_DIRECTORY_REDIS_URL
# Under the sanitizers: exit() from a usage error leaves the config to the OS.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
closed=127.0.0.1:1
failures=0 cases=0
bad() { echo "FAIL: $*"; failures=$((failures + 1)); }

# usage 'expected message' ARGS...: exit 2, the message on stderr, stdout empty.
usage() {
  local want=$1 rc; shift
  cases=$((cases + 1))
  "$ctl" "$@" >out.txt 2>err.txt; rc=$?
  [[ $rc -eq 2 ]] || { bad "vectorctl $*: exit $rc, want 2 ($(cat err.txt))"; return; }
  grep -qF -- "$want" err.txt || bad "vectorctl $*: stderr '$(cat err.txt)', want '$want'"
  [[ ! -s out.txt ]] || bad "vectorctl $*: wrote to stdout: $(cat out.txt)"
}
# parses ARGS...: a good command line; it fails on the closed port (exit 4).
parses() {
  local rc; cases=$((cases + 1))
  "$ctl" -b $closed --timeout 300 "$@" >out.txt 2>err.txt </dev/null; rc=$?
  [[ $rc -eq 4 ]] && grep -q "cannot reach Kafka" err.txt ||
    bad "vectorctl $*: exit $rc, want 4 and a connection error: $(grep -v '^%' err.txt)"
}

printf '{"id":"a","vector":[1,2,3]}\n' >v.ndjson
# The examples of issue 14.
usage "vectorctl: create: unknown option '--distnce'" create x --dim 3 --distnce l2
usage "vectorctl: search: --k: '10x' is not an integer" search x --vector '[1]' --k 10x
usage "search: unknown option '--filter'" search x --vector '[1]' --filter '{}'
# Unknown options, globally and per command; options of another command.
usage "vectorctl: unknown option '--frobnicate'" --frobnicate info x
usage "vectorctl: unknown option '-z'" -z info x
usage "info: unknown option '--k'" info x --k 3
usage "add: unknown option '--dim'" add x v.ndjson --dim 3
usage "unknown option '--json' (a global option: put it before the command)" info x --json
usage "create: ambiguous option '--ef'" create x --dim 3 --ef 10
usage "create: option '--if-not-exists' takes no value" create x --dim 3 --if-not-exists=yes
usage "vectorctl: option '--json' takes no value" --json=1 info x
usage "vectorctl: unknown command 'crate'" crate x --dim 3
usage "vectorctl: no command" -b $closed
# Missing values.
usage "create: option '--dim' needs a value" create x --dim
usage "search: option '--k' needs a value" search x --vector '[1]' --k
usage "vectorctl: option '--timeout' needs a value" --timeout
usage "vectorctl: option '-b' needs a value" -b
usage "create: --dim N is required" create x
usage "search: one of --vector" search x
usage "search: one of --vector" search x --vector '[1]' --queries v.ndjson
# Missing and stray positional arguments.
usage "info: missing INDEX" info
usage "add: missing FILE" add x
usage "produce: missing KEY" produce t
usage "delete: missing ID..." delete x
usage "info: unexpected argument 'y'" info x y
usage "create: unexpected argument 'extra'" create x extra --dim 3
usage "add: unexpected argument 'w.ndjson'" add x v.ndjson w.ndjson
usage "drop: unexpected argument 'if-exists'" drop x if-exists
usage "ls: unexpected argument 'x'" ls x
usage "info: unexpected argument '--weird'" info x -- --weird
# Numbers that are not numbers.
usage "search: --k: '10x' is not an integer" search x --vector '[1]' --k 10x
usage "search: --k: '' is not an integer" search x --vector '[1]' --k ''
usage "search: --k: ' 10' is not an integer" search x --vector '[1]' --k ' 10'
usage "search: --ef: '1.5' is not an integer" search x --vector '[1]' --ef 1.5
usage "create: --dim: 'three' is not an integer" create x --dim three
usage "add: --batch: '5e2' is not an integer" add x v.ndjson --batch 5e2
usage "produce: --partition: '0x1' is not an integer" produce t k --partition 0x1
usage "vectorctl: --timeout: '5s' is not an integer" --timeout 5s info x
# Numbers out of range.
usage "search: --k: 0 is out of range (1..2147483647)" search x --vector '[1]' --k 0
usage "search: --k: 2147483648 is out of range" search x --vector '[1]' --k 2147483648
usage "search: --k: 99999999999999999999 is out of range" search x --vector '[1]' --k 99999999999999999999
usage "search: --min-offset: -1 is out of range" search x --vector '[1]' --min-offset -1
usage "create: --dim: -3 is out of range" create x --dim -3
usage "add: --max-in-flight: 0 is out of range (1..1024)" add x v.ndjson --max-in-flight 0
usage "add: --batch: 0 is out of range" add x v.ndjson --batch 0
usage "produce: --partition: -1 is out of range" produce t k --partition -1
usage "consume: --count: 0 is out of range" consume t --count 0
usage "vectorctl: --timeout: 0 is out of range" --timeout 0 info x
# Values checked before connecting.
usage "create: --distance: 'l3' is not one of cosine, euclidean, dot" create x --dim 3 --distance l3
usage "search: --vector: '[1' is not a JSON array" search x --vector '[1'
usage "search: --vector: '{}' is not a JSON array" search x --vector '{}'
usage "produce: --header: 'novalue' is not NAME=VALUE" produce t k --header novalue
usage "cannot open nope.ndjson" add x nope.ndjson
# import: checked, and its files read, before anything connects.
usage "import: missing SOURCE" import
usage "import: unknown option '--dim'" import f.lhv1 --dim 3
usage "import: --batch: 0 is out of range" import f.lhv1 --batch 0
usage "import: --index renames one file" import a.lhv1 b.lhv1 --index x
usage "import: --index renames one file" import --store "file://$work" _vectors/ --index x
usage "import: --index renames one file" import . --index x
usage "import: cannot open nope.lhv1" import nope.lhv1
usage "import: --store nope://x" import --store nope://x _vectors/

# Good command lines get as far as Kafka.
parses create x --dim 3
parses create x --dim 3 --m 8 --ef-construction 100 --ef-search 32 --distance l2 --if-not-exists
parses create x --distance=dot --dim=3 # --name=value, options before the index
parses --json --timeout 300 -X topic.commands=c create x --dim 3
parses add x v.ndjson --batch 10 --max-in-flight 2
parses add x - --batch 10
parses --no-wait add x v.ndjson
parses delete x a b -- -c
parses drop x --if-exists
parses info x
parses search x --vector '[1,2,3]' --k 5 --ef 20 --min-offset 0
parses search x --queries v.ndjson --k 1
parses --json search x --vector '[1e-3, -2, 3.5]'
parses produce t k --header a=b --header c= --partition 2 --count 3
parses consume t --count 1
parses --reply-topic r info x
cases=$((cases + 2))
"$ctl" --redis redis://127.0.0.1:1 --timeout 300 ls >out.txt 2>err.txt
[[ $? -eq 4 ]] || bad "ls against a closed Redis port: want exit 4: $(cat err.txt)"
cases=$((cases + 2))
"$ctl" -b $closed import v.ndjson >out.txt 2>err.txt
[[ $? -eq 1 ]] && grep -q "v.ndjson: not imported" err.txt || bad "import of a non-Go file: $(cat err.txt)"
"$ctl" -b $closed import --dry-run . >out.txt 2>err.txt
[[ $? -eq 1 ]] && grep -q "no file <name>.lhv1" err.txt || bad "import of an empty directory: $(cat err.txt)"
"$ctl" inspect nope.lhv1 >out.txt 2>err.txt
[[ $? -eq 2 ]] && grep -q "cannot open nope.lhv1" err.txt || bad "inspect of a missing file: $(cat err.txt)"

# --help: the whole list, and each command's options, exit 0, stdout only.
commands="create add delete drop search info inspect import produce consume ls status"
cases=$((cases + 1))
"$ctl" --help >help.txt 2>err.txt && [[ ! -s err.txt ]] || bad "vectorctl --help"
head -1 help.txt | grep -q '^usage: vectorctl' || bad "vectorctl --help: $(head -1 help.txt)"
for c in $commands; do
  grep -q "^  $c " help.txt || grep -q "^  $c\$" help.txt || bad "vectorctl --help does not list $c"
done
[[ $("$ctl" --version) =~ ^vectorctl\ [0-9]+\.[0-9]+\.[0-9]+$ ]] || bad "--version: $("$ctl" --version)"
for c in $commands; do
  for h in --help -h; do
    cases=$((cases + 1))
    "$ctl" "$c" $h >help.txt 2>err.txt || bad "vectorctl $c $h: exit $?"
    [[ ! -s err.txt ]] || bad "vectorctl $c $h wrote to stderr: $(cat err.txt)"
    head -1 help.txt | grep -q "^usage: vectorctl \[GLOBAL OPTIONS\] $c" ||
      bad "vectorctl $c $h: $(head -1 help.txt)"
  done
  # Help wins over a bad line: vectorctl search --k x --help is still help.
  "$ctl" "$c" --help --bogus >/dev/null 2>&1 || bad "vectorctl $c --help --bogus"
done

# The bash completion: commands, global options, a command's options, values.
complete_line() { # WORDS...: the last word is the one being completed
  bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"
           _vectorctl; printf "%s\n" "${COMPREPLY[@]}"' _ "$completion" "$@"
}
expect_completion() { # want WORDS...
  local want=$1 got; shift; cases=$((cases + 1))
  got=$(complete_line "$@" | sort | tr '\n' ' ')
  [[ $got == "$want " ]] || bad "completion of '$*': '$got', want '$want'"
}
expect_completion "create" vectorctl cr
expect_completion "consume create" vectorctl c
expect_completion "search status" vectorctl -b h:1 --timeout 5 s
expect_completion "--distance" vectorctl create x --dist
expect_completion "--ef-construction --ef-search" vectorctl create x --ef
expect_completion "cosine dot euclidean" vectorctl create x --distance ''
expect_completion "--max-in-flight" vectorctl add x f --max
expect_completion "--dry-run" vectorctl import f --dr
expect_completion "" vectorctl import --store ''
expect_completion "--json" vectorctl --js
expect_completion "--k" vectorctl --json search x --k
expect_completion "" vectorctl search x --k ''
# Every option a command's --help names, the completion offers (and no other).
for c in $commands; do
  cases=$((cases + 1))
  want=$("$ctl" "$c" --help | grep -E '^  -' | grep -o -E -- '--[a-z][a-z-]*' | sort -u | tr '\n' ' ')
  got=$(complete_line vectorctl "$c" x -- | sort -u | tr '\n' ' ')
  [[ $got == "$want" ]] || bad "completion of $c options: '$got', --help names '$want'"
done
cases=$((cases + 1))
want=$("$ctl" --help | sed '/^commands:/,$d' | grep -E '^  -' | grep -o -E -- '(^|[ ,])--?[a-zA-Z][a-z-]*' | tr -d ' ,' | sort -u | tr '\n' ' ')
got=$(complete_line vectorctl - | sort -u | tr '\n' ' ')
[[ $got == "$want" ]] || bad "completion of global options: '$got', --help names '$want'"

echo "vectorctl_args: $cases cases, $failures failures"
[[ $failures -eq 0 ]]
