#!/usr/bin/env bash
# xrt_swap.sh: R12 with two fine-tuned XR-Transformer versions: xmcd + xmc_stage.so on the embedded Kafka swap
# between two versions whose encoders were fine-tuned apart (bert-random-h16, a few steps each, other seeds) while
# records flow, and lose nothing. bench/xmcd_load is the independent checker: every record sent has an output
# (accounted), none is dead-lettered (failed), every output names one version and no partition goes back to an
# older one (versions). Each swap names a new hard-linked copy of v1 or v2, so the checker tells them apart.
set -u
BUILD=${BUILD:-build}
XMC=${XMC_BIN:-$PWD/$BUILD/xmc}
XMCD=${XMCD_BIN:-$PWD/$BUILD/xmcd}
PLUGIN=${XMC_PLUGIN:-$PWD/$BUILD/xmc_stage.so}
LOAD=$PWD/$BUILD/bench/xmcd_load
D=$PWD/tests/data
for f in "$XMC" "$XMCD" "$PLUGIN" "$LOAD"; do [ -e "$f" ] || { echo "FAIL: $f not built"; exit 1; }; done
T=$(mktemp -d /tmp/xrt-swap-XXXXXX)
MOCK=; PID=
cleanup() {
  [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null
  [ -n "$MOCK" ] && kill "$MOCK" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$T/xmcd.log" ] && grep -v "event=stats" "$T/xmcd.log" | tail -15; exit 1; }
export OPENBLAS_NUM_THREADS=1

# ---- two fine-tuned versions -----------------------------------------------------------------------------------
mkdir "$T/enc"; cp "$D/bert-random-h16/config.json" "$D/bert-random-h16/model.safetensors" "$T/enc/"
cp "$D/bert-vocab/vocab.txt" "$T/enc/vocab.txt"
for v in 1 2; do
  "$XMC" train --quiet --train "$D/reuters-sample/train.tsv" --xr-transformer --encoder "$T/enc" --max-length 32 \
    --xrt-nr-splits 4 --xrt-max-leaf-size 8 --xrt-batch 16 --xrt-epochs 1 --xrt-lr 1e-3 --seed "$v" \
    --model "$T/repo" --version "v$v" --xrt-dir "$T/w$v" > /dev/null 2> "$T/train$v.log" || { cat "$T/train$v.log"; fail "training v$v"; }
done
cmp -s "$T/repo/v1/encoder/model.safetensors" "$T/repo/v2/encoder/model.safetensors" && fail "the two fine-tuned encoders are equal"
cmp -s "$T/repo/v1/encoder/model.safetensors" "$T/enc/model.safetensors" && fail "fine-tuning changed nothing"
echo v1 > "$T/repo/.CURRENT.tmp" && mv "$T/repo/.CURRENT.tmp" "$T/repo/CURRENT"
SWAPS=6
names=()
for i in $(seq 1 $SWAPS); do
  src=v$((i % 2 + 1)); cp -al "$T/repo/$src" "$T/repo/s$i"; names+=("s$i")
done

# ---- the embedded Kafka and xmcd -------------------------------------------------------------------------------
"$XMCD" --mock-only --bootstrap-file "$T/bs" --topic products:4 --topic labeled:4 --topic dlq:1 2> "$T/mock.log" &
MOCK=$!
for _ in $(seq 200); do [ -s "$T/bs" ] && break; sleep 0.05; done
[ -s "$T/bs" ] || fail "the mock cluster did not start"
BS=$(cat "$T/bs")
cat > "$T/xmcd.conf" <<CONF
brokers = "$BS";
group_id = "xrt-swap";
topics = { in = "products"; out = "labeled"; dlq = "dlq"; };
batch = { max_records = 32; max_wait_ms = 20; };
plugin = { path = "$PLUGIN"; config = { model_repo = "$T/repo"; topk = 3; }; };
reload = { poll_ms = 50; };
stats = { interval_ms = 1000; };
kafka_consumer = [ "session.timeout.ms=6000", "heartbeat.interval.ms=500", "fetch.wait.max.ms=5" ];
CONF
"$XMCD" -c "$T/xmcd.conf" 2> "$T/xmcd.log" &
PID=$!
echo "$PID" > "$T/pid"
for _ in $(seq 400); do grep -q "event=assigned" "$T/xmcd.log" && break; sleep 0.05; done
grep -q "event=assigned" "$T/xmcd.log" || fail "xmcd got no assignment"

# ---- swaps under load ------------------------------------------------------------------------------------------
"$LOAD" -b "$BS" --texts "$D/reuters-sample/test.tsv" --rate 200 --tick-ms 100 --seconds 8 --repo "$T/repo" \
  --swaps $SWAPS --swap-every 1 --swap-first 1.5 --swap-versions "$(IFS=,; echo "${names[*]}")" --pid-file "$T/pid" \
  --group xrt-swap --drain 60 --check accounted,failed,versions > "$T/load.out" 2> "$T/load.err"
rc=$?
kill -TERM "$PID"; xrc=0; wait "$PID" || xrc=$?; PID=
[ $rc -eq 0 ] || { cat "$T/load.out"; grep -v '^%' "$T/load.err" | tail -5; fail "xmcd_load checks (exit $rc)"; }
[ $xrc -eq 0 ] || fail "xmcd exit $xrc after SIGTERM"
n=$(grep -c "event=model_swap " "$T/xmcd.log")
[ "$n" -eq $SWAPS ] || fail "xmcd logged $n model swaps, expected $SWAPS"
grep -E "^(accounted|failed|versions)" "$T/load.out"
echo "ok: $SWAPS swaps between two fine-tuned versions under load, nothing lost"
