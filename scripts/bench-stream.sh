#!/usr/bin/env bash
# bench-stream.sh: end-to-end throughput and latency of xmcd + xmc_stage.so on the embedded Kafka.
# Usage: scripts/bench-stream.sh MODEL_REPO FILE.tsv [N]
# N products (title = the TSV text, cycling through the file) are produced first with kcat into a standalone
# mock cluster; then xmcd starts and the clock runs from its partition assignment to the stats line that shows
# all N acknowledged (stats every 100 ms). Prints records/s and the per-stage p50/p99 from xmcd's own
# histograms (plugin = decode + classify + encode per batch; e2e = consumed -> output acknowledged).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(cd "$1" && pwd); TSV=$2; N=${3:-40000}
XMCD=build/xmcd
T=$(mktemp -d /tmp/xmcd-bench-XXXXXX)
MOCK=; DAEMON=
cleanup() { [ -n "$DAEMON" ] && kill "$DAEMON" 2>/dev/null; [ -n "$MOCK" ] && kill "$MOCK" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$T"; }
trap cleanup EXIT
[ -n "${KEEP:-}" ] && trap - EXIT
"$XMCD" --mock-only --bootstrap-file "$T/bs" --topic products:8 --topic labeled:8 --topic dlq:1 2> "$T/mock.log" &
MOCK=$!
for _ in $(seq 100); do [ -s "$T/bs" ] && break; sleep 0.1; done
BS=$(cat "$T/bs")
awk -v n="$N" '{ line[NR] = $0 } END { for (i = 0; i < n; i++) print line[i % NR + 1] }' "$TSV" > "$T/in.tsv"
"$XMCD" --encode-products "$T/in.tsv" | kcat -b "$BS" -P -t products -D '|~REC~|' -K '|~KEY~|'
cat > "$T/xmcd.conf" <<CONF
brokers = "$BS";
group_id = "bench";
topics = { in = "products"; out = "labeled"; dlq = "dlq"; };
batch = { max_records = ${BATCH:-256}; max_wait_ms = 5; };
plugin = { path = "$PWD/build/xmc_stage.so"; config = { model_repo = "$REPO"; topk = 5; }; };
stats = { interval_ms = 100; };
kafka_consumer = [ "session.timeout.ms=6000", "heartbeat.interval.ms=500" ];
CONF
"$XMCD" -c "$T/xmcd.conf" 2> "$T/xmcd.log" &
DAEMON=$!
for _ in $(seq 1200); do
  grep -q "outputs=$N " "$T/xmcd.log" && break
  kill -0 "$DAEMON" 2>/dev/null || { echo "xmcd exited:"; grep -v event=stats "$T/xmcd.log" | tail -5; exit 1; }
  sleep 0.1
done
kill -TERM "$DAEMON"; wait "$DAEMON" || true; DAEMON=
grep "event=stage_stats" "$T/xmcd.log" | tail -n 1 | sed 's/^.*event=stage_stats //'
ms() { sed -E 's/^ts=[0-9-]+T([0-9]+):([0-9]+):([0-9.]+)Z.*/\1 \2 \3/' | awk '{ printf "%.3f\n", ($1 * 3600 + $2 * 60 + $3) * 1000 }'; }
t0=$(grep -m1 "event=assigned" "$T/xmcd.log" | ms)
t1=$(grep -m1 "outputs=$N " "$T/xmcd.log" | ms)
last=$(grep -m1 "outputs=$N " "$T/xmcd.log")
field() { printf '%s\n' "$last" | tr ' ' '\n' | grep "^$1=" | cut -d= -f2; }
echo "records=$N seconds=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", (b-a)/1000}') records_per_s=$(awk -v n="$N" -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f", n*1000/(b-a)}') batch_size_avg=$(field batch_size_avg) plugin_p50_ms=$(field plugin_p50_ms) plugin_p99_ms=$(field plugin_p99_ms) e2e_p50_ms=$(field e2e_p50_ms) e2e_p99_ms=$(field e2e_p99_ms) (stats resolution 100 ms)"
