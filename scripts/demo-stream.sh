#!/usr/bin/env bash
# demo-stream.sh: the streaming stage of `make demo`: an embedded Kafka (`xmcd --mock-only`), xmcd with the
# xmc stage plugin on the demo model, records in and out with kcat. Usage: scripts/demo-stream.sh [OUT [VERSION]]
# (OUT holds models/ and test.tsv from scripts/demo.sh). Everything it writes goes to OUT/stream/.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-demo-out}
OUT_ABS=$(cd "$OUT" && pwd)
XMCD=build/xmcd
S=$OUT/stream
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
command -v kcat >/dev/null || { echo "kcat is not installed: skipping the streaming demo"; exit 0; }
[ -x "$XMCD" ] && [ -f build/xmc_stage.so ] || { echo "build/xmcd or build/xmc_stage.so missing: make first"; exit 1; }
rm -rf "$S"; mkdir -p "$S"
DAEMON=; MOCK=
cleanup() { [ -n "$DAEMON" ] && kill "$DAEMON" 2>/dev/null; [ -n "$MOCK" ] && kill "$MOCK" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

say "embedded Kafka: librdkafka's mock cluster in its own process (xmcd --mock-only)"
"$XMCD" --mock-only --bootstrap-file "$S/bootstrap" --topic products:4 --topic products.labeled:4 \
  --topic products.dlq:1 2> "$S/mock.log" &
MOCK=$!
for _ in $(seq 100); do [ -s "$S/bootstrap" ] && break; sleep 0.1; done
BS=$(cat "$S/bootstrap"); echo "  bootstrap: $BS"

cat > "$S/xmcd.conf" <<CONF
brokers = "$BS";
group_id = "xmcd-demo";
topics = { in = "products"; out = "products.labeled"; dlq = "products.dlq"; };
batch = { max_records = 256; max_wait_ms = 10; };
plugin = { path = "$PWD/build/xmc_stage.so";
           config = { model_repo = "$OUT_ABS/models"; topk = 3; max_record_bytes = 65536; }; };
reload = { poll_ms = 1000; };
stats = { interval_ms = 2000; };
kafka_consumer = [ "session.timeout.ms=6000", "heartbeat.interval.ms=500" ];
CONF
say "xmcd -c $S/xmcd.conf (logs in $S/xmcd.log)"
"$XMCD" -c "$S/xmcd.conf" 2> "$S/xmcd.log" &
DAEMON=$!
for _ in $(seq 300); do
  grep -q "event=assigned" "$S/xmcd.log" && break
  kill -0 "$DAEMON" 2>/dev/null || { echo "xmcd exited:"; cat "$S/xmcd.log"; exit 1; }
  sleep 0.1
done
grep "event=start" "$S/xmcd.log" | sed 's/^/  /' | cut -c1-200

N=$(wc -l < "$OUT/test.tsv"); H=$((N / 2))
head -n "$H" "$OUT/test.tsv" > "$S/part1.tsv"
tail -n +$((H + 1)) "$OUT/test.tsv" > "$S/part2.tsv"
count() { kcat -b "$BS" -C -t "$1" -e -q -f '.\n' 2>/dev/null | wc -l; }
wait_for() { # wait until outputs + dead letters reach $1
  for _ in $(seq 600); do
    got=$(count products.labeled); dlq=$(count products.dlq)
    [ $((got + dlq)) -ge "$1" ] && return 0; sleep 0.1
  done
  return 1
}
# show VERSION PART.tsv: a few outputs of that model version, each with the title it was given
show() {
  kcat -b "$BS" -C -t products.labeled -e -q -f '%k|~KEY~|%s|~REC~|' | "$XMCD" --decode-labeled | \
    awk -F'\t' -v v="$1" -v part="$2" '
      BEGIN { while ((getline line < part) > 0) { n = split(line, f, "\t"); title[sprintf("p%06d", i++)] = f[2] } }
      $2 == v && shown < 4 { shown++; printf "  %s  \"%s\"\n      model %s\n", $1, title[$1], $2;
                             for (i = 3; i <= NF; i++) printf "      %s\n", $i }' || true
}

say "producing $H held-out products with kcat (xmc.v1.Product protobuf, keyed by id)"
start=$(date +%s.%N)
"$XMCD" --encode-products "$S/part1.tsv" | kcat -b "$BS" -P -t products -D '|~REC~|' -K '|~KEY~|'
wait_for "$H" || echo "  (not all outputs arrived)"
end=$(date +%s.%N)
echo "  $got outputs, $dlq dead letters; $(awk -v n="$got" -v a="$start" -v b="$end" 'BEGIN{printf "%.0f records/s end to end (kcat in, classify, kcat count out)", n/(b-a)}')"
V1=$(cat "$OUT/models/CURRENT")
say "kcat reads the outputs (xmc.v1.LabeledProduct: key, title given, model version, top 3 label:score)"
show "$V1" "$S/part1.tsv"

say "retraining on the training set plus the first 2,000 held-out products, publishing a new version mid-stream"
cat "$OUT/train.tsv" > "$S/retrain.tsv"; head -n 2000 "$S/part1.tsv" >> "$S/retrain.tsv"
V2=$(build/xmc train --quiet --train "$S/retrain.tsv" --model "$OUT/models" --threshold 0.01)
echo "  new version $V2 written, CURRENT now names it; xmcd polls CURRENT every second"
for _ in $(seq 100); do grep -q "event=model_swap version=\"*$V2" "$S/xmcd.log" && break; sleep 0.1; done
grep "event=model_swap" "$S/xmcd.log" | tail -n 1 | cut -c1-200 | sed 's/^/  /'

say "producing the other $((N - H)) products: their outputs carry the new version"
"$XMCD" --encode-products "$S/part2.tsv" | kcat -b "$BS" -P -t products -D '|~REC~|' -K '|~KEY~|'
wait_for "$N" || echo "  (not all outputs arrived)"
echo "  $got outputs in all, $dlq dead letters; by model version:"
kcat -b "$BS" -C -t products.labeled -e -q -f '%k|~KEY~|%s|~REC~|' | "$XMCD" --decode-labeled | cut -f2 | sort | uniq -c | \
  sed 's/^/   /'
show "$V2" "$S/part2.tsv"

kill -TERM "$DAEMON"; wait "$DAEMON" || true; DAEMON=
say "xmcd's last stats line (SIGTERM: drained, committed, exit 0)"
grep "event=stats" "$S/xmcd.log" | tail -n 1 | tr ' ' '\n' | grep -E "^(consumed|outputs|dead_letters|batches|batch_size_avg|plugin_p|e2e_p|model_version|swaps|refusals)" | sed 's/^/  /'
