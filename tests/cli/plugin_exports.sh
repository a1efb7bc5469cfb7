#!/usr/bin/env bash
# plugin_exports.sh: the stage plugin exports xmc_stage_plugin and nothing else (stage.h): its libxmc and
# protobuf copies stay local, so neither xmcd nor anything it loads can interpose or be interposed by them.
set -u
B=${BUILD:-build}
SO=${XMC_PLUGIN:-$B/xmc_stage.so}
[ -f "$SO" ] || { echo "FAIL: $SO not built"; exit 1; }
syms=$(nm -D --defined-only "$SO" | awk '{ print $NF }')
[ "$syms" = "xmc_stage_plugin" ] || { echo "FAIL: $SO exports: $(echo $syms | head -c 300)"; exit 1; }
# xmcd itself exports nothing to plugins (no -rdynamic)
XD=${XMCD_BIN:-$B/xmcd}
if [ -f "$XD" ]; then
  n=$(nm -D --defined-only "$XD" | awk '{ print $NF }' | grep -c '^xmc' || true)
  [ "$n" -eq 0 ] || { echo "FAIL: $XD exports $n xmc symbols"; exit 1; }
fi
exit 0
