#!/usr/bin/env bash
# xmcd_docs_tables.sh: docs/xmcd.md's config key and metric lists are what `xmcd --config-keys` and
# `xmcd --metrics` print from the tables in src/xmcd/config.c and stats.c (scripts/docs-tables.sh --check; `make
# docs` rewrites them), and conf/xmcd.conf passes --check-config.
set -euo pipefail
BUILD=${BUILD:-build}
XMCD=${XMCD_BIN:-$PWD/$BUILD/xmcd}
bash scripts/docs-tables.sh --check "$XMCD" docs/xmcd.md
# --check-config loads the plugin the file names (build/xmc_stage.so): a copy names this build's
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
PLUGIN=${XMC_PLUGIN:-$PWD/$BUILD/xmc_stage.so}
sed "s#\"build/xmc_stage.so\"#\"$PLUGIN\"#" conf/xmcd.conf > "$T/xmcd.conf"
grep -qF "\"$PLUGIN\"" "$T/xmcd.conf" || { echo "FAIL: conf/xmcd.conf names no build/xmc_stage.so"; exit 1; }
out=$("$XMCD" -c "$T/xmcd.conf" --check-config)
[ "$out" = "$T/xmcd.conf: ok" ] || { echo "FAIL: conf/xmcd.conf: $out"; exit 1; }
echo "ok: docs/xmcd.md lists the tables as xmcd prints them; conf/xmcd.conf valid"
XMC=${XMC_BIN:-$PWD/$BUILD/xmc}
bash scripts/docs-tables.sh --check "$XMC retrain" docs/retrain.md "xmc retrain"
out=$("$XMC" retrain -c conf/retrain.conf --check-config)
[ "$out" = "conf/retrain.conf: ok" ] || { echo "FAIL: conf/retrain.conf: $out"; exit 1; }
echo "ok: docs/retrain.md lists xmc retrain's tables; conf/retrain.conf valid"
