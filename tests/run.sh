#!/usr/bin/env bash
# Runs every CUnit suite in $BUILD/tests and every shell test in tests/cli, then prints one summary line
# "N passed, N failed". A suite that crashes counts as one failure. Run one suite: build/tests/test_smat.
set -u
BUILD=${BUILD:-build}
export XMC_BIN="$PWD/$BUILD/xmc" XMCD_BIN="$PWD/$BUILD/xmcd" XMC_PLUGIN="$PWD/$BUILD/xmc_stage.so"
pass=0; fail=0; failed_names=()
for t in "$BUILD"/tests/test_*; do
  [ -x "$t" ] || continue
  name=$(basename "$t")
  case " ${SKIP:-} " in *" $name "*) echo "skip $name"; continue;; esac
  out=$(${VALGRIND:-} "$t" 2>&1); rc=$?
  line=$(printf '%s\n' "$out" | grep '^XMC-SUITE-RESULT' | tail -1)
  if [ -n "$line" ]; then
    set -- $line; p=$2; f=$3
  else
    p=0; f=1
  fi
  if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  pass=$((pass + p)); fail=$((fail + f))
  if [ "$f" -ne 0 ]; then
    failed_names+=("$name"); printf '%s\n' "$out" | tail -40; echo "FAIL $name (rc=$rc)"
  else
    echo "ok   $name ($p tests)"
  fi
done
for t in $([ -z "${NO_CLI:-}" ] && ls tests/cli/*.sh); do
  [ -f "$t" ] || continue
  name=$(basename "$t" .sh)
  out=$(BUILD="$BUILD" bash "$t" 2>&1); rc=$?
  if [ $rc -eq 0 ]; then pass=$((pass + 1)); echo "ok   cli/$name"
  else fail=$((fail + 1)); failed_names+=("cli/$name"); printf '%s\n' "$out" | tail -40; echo "FAIL cli/$name"; fi
done
[ ${#failed_names[@]} -gt 0 ] && echo "failed: ${failed_names[*]}"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
