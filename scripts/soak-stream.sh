#!/usr/bin/env bash
# soak-stream.sh: xmcd + xmc_stage.so on the embedded Kafka at a steady rate for a while, with model swaps, watching
# memory. Usage: scripts/soak-stream.sh MODEL_REPO FILE.tsv [SECONDS=600] [RATE=2000] [SWAP_EVERY=120]
# MODEL_REPO must hold at least two versions: every SWAP_EVERY seconds CURRENT is pointed at the next one (by
# rename, as `xmc train` does) and xmcd's poller swaps it in under load. Every 10 s it samples xmcd's RSS
# (/proc/PID/status VmRSS); at the end it checks that every record produced came out (outputs + dead letters)
# and prints the RSS series, its drift from the first sample after warm-up, the swaps seen, and the last stats.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(cd "$1" && pwd); TSV=$2; SECS=${3:-600}; RATE=${4:-2000}; SWAP=${5:-120}
XMCD=build/xmcd
T=$(mktemp -d /tmp/xmcd-soak-XXXXXX)
MOCK=; DAEMON=
cleanup() { [ -n "$DAEMON" ] && kill "$DAEMON" 2>/dev/null; [ -n "$MOCK" ] && kill "$MOCK" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$T"; }
trap cleanup EXIT
mapfile -t VERSIONS < <(cd "$REPO" && ls -d */ | tr -d / | sort)
[ ${#VERSIONS[@]} -ge 2 ] || { echo "need two versions in $REPO"; exit 1; }
"$XMCD" --mock-only --bootstrap-file "$T/bs" --topic products:8 --topic labeled:8 --topic dlq:1 2> "$T/mock.log" &
MOCK=$!
for _ in $(seq 100); do [ -s "$T/bs" ] && break; sleep 0.1; done
BS=$(cat "$T/bs")
cat > "$T/xmcd.conf" <<CONF
brokers = "$BS";
group_id = "soak";
topics = { in = "products"; out = "labeled"; dlq = "dlq"; };
batch = { max_records = 256; max_wait_ms = 20; };
plugin = { path = "$PWD/build/xmc_stage.so"; config = { model_repo = "$REPO"; topk = 5; }; };
reload = { poll_ms = 500; };
stats = { interval_ms = 10000; };
kafka_consumer = [ "session.timeout.ms=6000", "heartbeat.interval.ms=500" ];
CONF
"$XMCD" -c "$T/xmcd.conf" 2> "$T/xmcd.log" &
DAEMON=$!
for _ in $(seq 300); do grep -q "event=assigned" "$T/xmcd.log" && break; sleep 0.1; done
# one second's worth of records, encoded once; keys differ per second so every record is its own product
awk -v n="$RATE" '{ line[NR] = $0 } END { for (i = 0; i < n; i++) print line[i % NR + 1] }' "$TSV" > "$T/sec.tsv"
"$XMCD" --encode-products "$T/sec.tsv" > "$T/sec.bin"
produced=0; start=$(date +%s); next_swap=$SWAP; vi=0
echo "t_s rss_kb produced"
while :; do
  now=$(( $(date +%s) - start )); [ "$now" -ge "$SECS" ] && break
  kcat -b "$BS" -P -t products -D '|~REC~|' -K '|~KEY~|' < "$T/sec.bin"
  produced=$((produced + RATE)); echo "$produced" > "$T/produced"
  if [ "$now" -ge "$next_swap" ]; then
    vi=$(( (vi + 1) % ${#VERSIONS[@]} )); echo "${VERSIONS[$vi]}" > "$REPO/.CURRENT.soak"; mv "$REPO/.CURRENT.soak" "$REPO/CURRENT"
    next_swap=$((next_swap + SWAP))
  fi
  if [ $((now % 10)) -eq 0 ]; then echo "$now $(awk '/VmRSS/{print $2}' /proc/$DAEMON/status) $produced"; fi
  sleep_to=$(( start + now + 1 )); while [ "$(date +%s)" -lt "$sleep_to" ]; do sleep 0.05; done
done | tee "$T/rss.txt"
produced=$(cat "$T/produced")
sleep 10   # let the tail drain, then stop cleanly (SIGTERM drains and commits)
kill -TERM "$DAEMON"; wait "$DAEMON" || true; DAEMON=
# counts from xmcd's own last stats line: the mock keeps only 5 MiB per partition, too little to re-read a soak
last=$(grep "event=stats" "$T/xmcd.log" | tail -n 1)
get() { printf '%s\n' "$last" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
echo "produced into Kafka: $produced; xmcd consumed $(get consumed), output $(get outputs), dead-lettered $(get dead_letters)"
[ "$(get consumed)" = "$produced" ] && [ "$(( $(get outputs) + $(get dead_letters) ))" = "$produced" ] \
  && echo "all accounted" || echo "NOT all accounted"
echo "model swaps: $(grep -c 'event=model_swap' "$T/xmcd.log")"
awk 'NR>1 && $1>=60 {if (!b) b=$2; l=$2; if ($2>m) m=$2} END {if (b) printf "RSS after warm-up (60 s): first %d kB, last %d kB, max %d kB, drift %+.1f%%\n", b, l, m, 100*(l-b)/b}' "$T/rss.txt"
printf '%s\n' "$last"
