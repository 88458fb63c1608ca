#!/usr/bin/env bash
# Regenerates the "Keys and defaults" block of docs/configuration.md from
# `vectord --dump-config` with nothing set (the "# from:" lines and the
# header dropped), so the page always matches the table in src/config/config.c;
# also the commented defaults ending deploy/systemd/vectord.properties (CTest
# deploy_systemd_verify checks them).
#   scripts/gen-config-doc.sh [PATH/TO/vectord]     (default: build/vectord)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
vectord=$(realpath "${1:-$repo/build/vectord}")
doc=$repo/docs/configuration.md
dump=$(cd / && env -i PATH="$PATH" "$vectord" --dump-config | sed '/^# from: /d;1d')
props=$repo/deploy/systemd/vectord.properties
python3 - "$doc" "$props" "$dump" <<'PY'
import sys
path, props, dump = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(path).read()
start = text.index("```properties\n") + len("```properties\n")
end = text.index("```", start)
open(path, "w").write(text[:start] + dump + "\n" + text[end:])
# The properties file: its header kept up to the marker's two lines, then
# every key commented out with its default.
lines = open(props).read().split("\n")
mark = next(i for i, l in enumerate(lines) if l.startswith("## Every key"))
body = ["#" + l if l and not l.startswith("#") else l for l in dump.strip("\n").split("\n")]
open(props, "w").write("\n".join(lines[:mark + 2] + body) + "\n")
PY
echo "gen-config-doc: $doc and $props updated"
