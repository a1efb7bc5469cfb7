#!/usr/bin/env bash
# blas_kernels.sh: `xmc --version` names OpenBLAS's kernel set; on a CPU with AVX2, the commands that run the
# encoder warn when OpenBLAS runs an older set (forced here with OPENBLAS_CORETYPE=Prescott, what its detection
# falls back to on a CPU it does not know) and name the OPENBLAS_CORETYPE value that fixes it; with that value
# set, and for a TF-IDF model, they say nothing; xmcd logs event=blas_kernels at start.
set -u
XMC=${XMC_BIN:-build/xmc}
D=$(dirname "$0")/../data
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
OPENBLAS_CORETYPE=Prescott "$XMC" --version > "$tmp/out" 2> "$tmp/err" || { echo "--version failed"; fail=1; }
grep -q '^blas OpenBLAS .*; kernels Prescott; cpu ' "$tmp/out" || { echo "no kernels line: $(cat "$tmp/out")"; fail=1; }
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null)
has() { [[ " $flags " == *" $1 "* ]]; }
if has avx2 && has fma; then
  want=Haswell
  if has avx512f && has avx512cd && has avx512bw && has avx512dq && has avx512vl; then want=SkylakeX; fi
  grep -q "warning: OpenBLAS runs its Prescott kernels.*OPENBLAS_CORETYPE=$want" "$tmp/err" ||
    { echo "no advice for Prescott kernels (want $want): $(cat "$tmp/err")"; fail=1; }
  sed -n 's/^"\(.*\)",.*/\1/p' "$D/bert-tiny-pecos/texts.inc" > "$tmp/texts.txt"
  OPENBLAS_CORETYPE=Prescott "$XMC" embed --encoder "$D/bert-tiny-pecos" < "$tmp/texts.txt" > /dev/null 2> "$tmp/err" ||
    { echo "embed failed: $(cat "$tmp/err")"; fail=1; }
  grep -q "OPENBLAS_CORETYPE=$want" "$tmp/err" || { echo "embed: no advice: $(cat "$tmp/err")"; fail=1; }
  printf 'a\talpha beta\nb\tgamma delta\na\talpha gamma\n' > "$tmp/train.tsv"
  OPENBLAS_CORETYPE=Prescott "$XMC" train --quiet --train "$tmp/train.tsv" --model "$tmp/repo" > /dev/null 2> "$tmp/err" ||
    { echo "train failed: $(cat "$tmp/err")"; fail=1; }
  ! grep -q OPENBLAS_CORETYPE "$tmp/err" || { echo "a TF-IDF model warned: $(cat "$tmp/err")"; fail=1; }
  # xmcd says it at start, as a warning event (its run needs no Kafka traffic: it is stopped once started)
  XMCD=${XMCD_BIN:-build/xmcd}
  PLUGIN=${XMC_PLUGIN:-build/xmc_stage.so}
  if [ -x "$XMCD" ] && [ -f "$PLUGIN" ]; then
    cat > "$tmp/xmcd.conf" <<CONF
group_id = "blas"; topics = { in = "in"; out = "out"; dlq = "dlq"; };
plugin = { path = "$PLUGIN"; config = { model_repo = "$tmp/repo"; }; };
CONF
    OPENBLAS_CORETYPE=Prescott "$XMCD" -c "$tmp/xmcd.conf" --embedded-kafka 2> "$tmp/xmcd.log" & pid=$!
    for _ in $(seq 300); do grep -q "event=start\|event=stopped" "$tmp/xmcd.log" && break; sleep 0.1; done
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    grep -q "event=blas_kernels kernels=Prescott .*advised=OPENBLAS_CORETYPE=$want" "$tmp/xmcd.log" ||
      { echo "xmcd: no blas_kernels event: $(grep -v event=stats "$tmp/xmcd.log" | tail -5)"; fail=1; }
  else
    echo "xmcd or the stage plugin not built: xmcd's event not checked"
  fi
  OPENBLAS_CORETYPE=$want "$XMC" --version > "$tmp/out" 2> "$tmp/err"
  grep -q "; kernels $want; " "$tmp/out" || { echo "OPENBLAS_CORETYPE=$want not taken: $(cat "$tmp/out")"; fail=1; }
  [ ! -s "$tmp/err" ] || { echo "advice with the advised kernels: $(cat "$tmp/err")"; fail=1; }
else
  echo "this CPU has no AVX2: only the kernels line is checked"
  [ ! -s "$tmp/err" ] || { echo "advice on a CPU without AVX2: $(cat "$tmp/err")"; fail=1; }
fi
exit $fail
