#!/usr/bin/env bash
# run.sh SECONDS: builds the libFuzzer targets with clang (ASan+UBSan) and runs each for SECONDS, after replaying
# the kept crash inputs of tests/fuzz/crashes/<target>/ as regressions. A finding fails the run and its input is
# left in build-fuzz/findings/<target>/ to be kept under tests/fuzz/crashes/ once fixed.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-30}
command -v clang >/dev/null || { echo "fuzz: clang is needed (apt-get install clang)"; exit 1; }
make -s CC=clang MODE=fuzz BUILD=build-fuzz build-fuzz/libxmc.a build-fuzz/src/xmcd/config.o build-fuzz/src/xmcd/log.o \
  build-fuzz/plugin/xmc_stage.o build-fuzz/proto/xmc.pb-c.o
CFLAGS=$(make -s CC=clang MODE=fuzz BUILD=build-fuzz --eval 'pc: ; @echo "$(CFLAGS)"' pc)
LIBS=$(make -s CC=clang MODE=fuzz BUILD=build-fuzz --eval 'pl: ; @echo "$(LDLIBS)"' pl)
export LSAN_OPTIONS="suppressions=$PWD/tests/fuzz/lsan.supp:print_suppressions=0"
fail=0
for src in tests/fuzz/fuzz_*.c; do
  t=$(basename "$src" .c)
  extra=""
  [ "$t" = fuzz_config ] && extra="build-fuzz/src/xmcd/config.o build-fuzz/src/xmcd/log.o"
  [ "$t" = fuzz_record ] && extra="build-fuzz/plugin/xmc_stage.o build-fuzz/proto/xmc.pb-c.o"
  # shellcheck disable=SC2086
  clang $CFLAGS -fsanitize=fuzzer -Isrc/lib -Isrc/xmcd -o "build-fuzz/$t" "$src" $extra build-fuzz/libxmc.a $LIBS
  mkdir -p "build-fuzz/corpus/$t" "build-fuzz/findings/$t"
  if [ -d "tests/fuzz/crashes/$t" ] && ls "tests/fuzz/crashes/$t"/* >/dev/null 2>&1; then
    "build-fuzz/$t" "tests/fuzz/crashes/$t"/* > "build-fuzz/$t.replay.log" 2>&1 || { echo "FAIL $t: a kept crash input fails again"; fail=1; }
  fi
  if "build-fuzz/$t" -max_total_time="$SECS" -max_len=4096 -print_final_stats=1 -artifact_prefix="build-fuzz/findings/$t/" \
       "build-fuzz/corpus/$t" > "build-fuzz/$t.log" 2>&1; then
    echo "ok   $t: $(grep -o 'stat::number_of_executed_units: [0-9]*' "build-fuzz/$t.log" | tail -1 | awk '{print $2}') runs, ${SECS}s, no finding"
  else
    echo "FAIL $t: see build-fuzz/$t.log and build-fuzz/findings/$t/"; grep -m3 -E "ERROR|SUMMARY" "build-fuzz/$t.log" || true; fail=1
  fi
done
exit $fail
