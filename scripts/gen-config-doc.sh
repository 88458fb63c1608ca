#!/usr/bin/env bash
# Regenerates the "Keys and defaults" block of docs/configuration.md from
# `vectord --dump-config` with nothing set (the "# from:" lines and the
# header dropped), so the page always matches the table in src/config/config.c.
#   scripts/gen-config-doc.sh [PATH/TO/vectord]     (default: build/vectord)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
vectord=$(realpath "${1:-$repo/build/vectord}")
doc=$repo/docs/configuration.md
dump=$(cd / && env -i PATH="$PATH" "$vectord" --dump-config | sed '/^# from: /d;1d')
python3 - "$doc" "$dump" <<'PY'
import sys
path, dump = sys.argv[1], sys.argv[2]
text = open(path).read()
start = text.index("```properties\n") + len("```properties\n")
end = text.index("```", start)
open(path, "w").write(text[:start] + dump + "\n" + text[end:])
PY
echo "gen-config-doc: $doc updated"
