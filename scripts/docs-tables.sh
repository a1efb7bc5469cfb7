#!/usr/bin/env bash
# docs-tables.sh [--check] PROGRAM DOC [NAME]: the blocks of DOC generated from a program's own tables, rewritten
# in place (or, with --check, compared: exit 1 and a diff when DOC and the tables differ). A block is the lines
#   <!-- begin: NAME --OPTION ... -->   and   <!-- end: NAME --OPTION -->
# (NAME: "xmcd" unless given, e.g. "xmc retrain"; PROGRAM is split into words, e.g. "build/xmc retrain")
# and holds what `PROGRAM --OPTION` prints (--config-keys: the config key table; --metrics: the counters and
# gauges). `make docs` runs it; tests/cli/xmcd_docs_tables.sh checks it, so the docs cannot drift.
set -euo pipefail
check=0
[ "${1:-}" = --check ] && { check=1; shift; }
XMCD=$1 DOC=$2 NAME=${3:-xmcd}
T=$(mktemp -d /tmp/docs-tables-XXXXXX)
trap 'rm -rf "$T"' EXIT
cp "$DOC" "$T/doc"
for opt in config-keys metrics; do
  grep -q -- "^<!-- begin: $NAME --$opt " "$T/doc" || { echo "$DOC: no block for $NAME --$opt"; exit 1; }
  # shellcheck disable=SC2086 # PROGRAM may be a command and its subcommand
  $XMCD --$opt > "$T/table"
  awk -v opt="$opt" -v name="$NAME" -v table="$T/table" '
    index($0, "<!-- begin: " name " --" opt " ") == 1 { print; while ((getline l < table) > 0) print l; skip = 1; next }
    index($0, "<!-- end: " name " --" opt " ") == 1 { skip = 0 }
    !skip { print }' "$T/doc" > "$T/next"
  mv "$T/next" "$T/doc"
done
if [ $check = 1 ]; then
  diff -u "$DOC" "$T/doc" || { echo "$DOC differs from $NAME's tables: run make docs"; exit 1; }
else
  cmp -s "$DOC" "$T/doc" || cp "$T/doc" "$DOC"
fi
