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

N=$(wc -l < "$OUT/test.tsv")
say "producing $N held-out products with kcat (xmc.v1.Product protobuf, keyed by id)"
start=$(date +%s.%N)
"$XMCD" --encode-products "$OUT/test.tsv" | kcat -b "$BS" -P -t products -D '|~REC~|' -K '|~KEY~|'
for _ in $(seq 600); do
  got=$(kcat -b "$BS" -C -t products.labeled -e -q -f '.\n' 2>/dev/null | wc -l)
  dlq=$(kcat -b "$BS" -C -t products.dlq -e -q -f '.\n' 2>/dev/null | wc -l)
  [ $((got + dlq)) -ge "$N" ] && break; sleep 0.1
done
end=$(date +%s.%N)
echo "  $got outputs, $dlq dead letters; $(awk -v n="$got" -v a="$start" -v b="$end" 'BEGIN{printf "%.0f records/s end to end (kcat in, classify, kcat count out)", n/(b-a)}')"

say "kcat reads the outputs (xmc.v1.LabeledProduct: key, model version, top 3 label:score)"
kcat -b "$BS" -C -t products.labeled -e -q -f '%k|~KEY~|%s|~REC~|' | "$XMCD" --decode-labeled | head -n 5 | \
  awk -F'\t' '{printf "  %s  %s\n", $1, $2; for (i = 3; i <= NF; i++) printf "      %s\n", $i}' || true

kill -TERM "$DAEMON"; wait "$DAEMON" || true; DAEMON=
say "xmcd's last stats line (SIGTERM: drained, committed, exit 0)"
grep "event=stats" "$S/xmcd.log" | tail -n 1 | tr ' ' '\n' | grep -E "consumed|produced|dead_lettered|batches|batch_size_avg|plugin_p|e2e_p|model_version" | sed 's/^/  /'
