#!/usr/bin/env bash
# retrain_e2e.sh: `xmc retrain` end to end on the embedded Kafka (xmcd --mock-only) beside xmcd serving the same
# repository. A first version is trained on a catalog without one category (NEW); curated records, NEW's among
# them, arrive on the curated topic; the change count triggers a training; the gate passes it (its figures in the
# log and gate.txt), CURRENT moves, xmcd swaps to it, and products of NEW streamed through xmcd come out labelled
# NEW. Then the test-only shuffled-labels key is switched on by SIGHUP and SIGUSR1 asks for a training: the gate
# refuses it, CURRENT stays, the refusal is in the log and /metrics. SIGTERM exits 0. Needs kcat and curl.
set -euo pipefail
BUILD=${BUILD:-build}
XMC=${XMC_BIN:-$PWD/$BUILD/xmc}
XMCD=${XMCD_BIN:-$PWD/$BUILD/xmcd}
PLUGIN=${XMC_PLUGIN:-$PWD/$BUILD/xmc_stage.so}
command -v kcat >/dev/null || { echo "skip: kcat not installed"; exit 0; }
command -v curl >/dev/null || { echo "skip: curl not installed"; exit 0; }
T=$(mktemp -d /tmp/xmc-retrain-XXXXXX)
MOCK= DAEMON= RT=
cleanup() { for p in $RT $DAEMON $MOCK; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$T"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- retrain.log"; grep -v event=stats "$T/retrain.log" | tail -25; echo "--- xmcd.log";
         grep -v event=stats "$T/xmcd.log" | tail -10; exit 1; }
wait_log() { # FILE PATTERN TRIES(0.1 s)
  for _ in $(seq "$3"); do grep -q "$2" "$1" && return 0; sleep 0.1; done; return 1
}

# ---- data: NEW is a category the first version never saw ----------------------------------------------------
"$XMC" gen --labels 30 --docs 3000 --seed 5 --zipf 0.6 --out "$T/catalog.tsv" 2>/dev/null
# NEW: the sixth most frequent category (enough records to learn it, and not one the others depend on)
NEW=$(cut -f1 "$T/catalog.tsv" | sort | uniq -c | sort -k1,1nr -k2 | awk 'NR == 6 { print $2 }')
awk -v n="$NEW" 'index($0, n) == 0 && c < 1500 { print; c++ }' "$T/catalog.tsv" > "$T/seed.tsv" # (no head: SIGPIPE under pipefail)
grep "^$NEW	" "$T/catalog.tsv" > "$T/new_all.tsv"
n_new=$(wc -l < "$T/new_all.tsv")
[ "$n_new" -ge 60 ] || fail "only $n_new records of $NEW in the catalog"
head -n $((n_new - 20)) "$T/new_all.tsv" > "$T/new_curated.tsv"
tail -n 20 "$T/new_all.tsv" > "$T/new_probe.tsv"
{ cat "$T/new_curated.tsv"; grep -v "$NEW" "$T/catalog.tsv" | tail -n 300; } > "$T/curated.tsv"
n_cur=$(wc -l < "$T/curated.tsv")
V1=$("$XMC" train --train "$T/seed.tsv" --model "$T/repo" --quiet)
[ -n "$V1" ] || fail "no first version"

# ---- the embedded Kafka, xmcd, the retrainer ---------------------------------------------------------------
"$XMCD" --mock-only --bootstrap-file "$T/bs" --brokers 1 --topic products:1 --topic products.labeled:1 \
  --topic products.dlq:1 --topic curated:2 2> "$T/mock.log" &
MOCK=$!
for _ in $(seq 100); do [ -s "$T/bs" ] && break; sleep 0.1; done
BS=$(cat "$T/bs")
cat > "$T/xmcd.conf" <<CONF
brokers = "$BS";
group_id = "e2e";
topics = { in = "products"; out = "products.labeled"; dlq = "products.dlq"; };
batch = { max_records = 64; max_wait_ms = 5; };
plugin = { path = "$PLUGIN"; config = { model_repo = "$T/repo"; topk = 3; }; };
reload = { poll_ms = 200; };
kafka_consumer = [ "session.timeout.ms=6000", "heartbeat.interval.ms=500" ];
CONF
"$XMCD" -c "$T/xmcd.conf" 2> "$T/xmcd.log" &
DAEMON=$!
PORT=$((20000 + RANDOM % 12000))
cat > "$T/retrain.conf" <<CONF
topic = "curated";
group_id = "retrain-e2e";
window = { dir = "$T/window"; seed_tsv = "$T/seed.tsv"; sync_ms = 50; };
model = { repo = "$T/repo"; };
retrain = { interval_s = 0; min_changes = $n_cur; min_records = 20; threads = 1; nice = 10; };
gate = { heldout_pct = 15; margin = 0.05; };
test = { shuffle_labels = 0; };
stats = { interval_ms = 1000; http_port = $PORT; };
kafka_consumer = [ "session.timeout.ms=6000", "heartbeat.interval.ms=500" ];
CONF
"$XMC" retrain -c "$T/retrain.conf" --check-config >/dev/null || fail "config refused"
"$XMC" retrain -c "$T/retrain.conf" --bootstrap-file "$T/bs" 2> "$T/retrain.log" &
RT=$!
wait_log "$T/retrain.log" "event=assigned" 300 || fail "retrainer never assigned"
wait_log "$T/xmcd.log" "event=assigned" 300 || fail "xmcd never assigned"
grep -q "event=window_seeded.*records=1500" "$T/retrain.log" || fail "seed not loaded"

# ---- curated records arrive; the change count triggers a training that the gate passes -----------------------
"$XMCD" --encode-products "$T/curated.tsv" --id-prefix c --known-labels |
  kcat -b "$BS" -P -t curated -D '|~REC~|' -K '|~KEY~|'
wait_log "$T/retrain.log" "event=gate_passed\|event=gate_refused\|event=training_failed" 1200 || fail "no training"
grep -q "event=training_spawned.*trigger=changes" "$T/retrain.log" || fail "not triggered by the change count"
grep -q "event=gate_passed" "$T/retrain.log" || fail "the gate did not pass the new version"
V2=$(cat "$T/repo/CURRENT")
[ "$V2" != "$V1" ] || fail "CURRENT did not move"
grep -q "event=gate_passed version=$V2 serving=$V1 " "$T/retrain.log" || fail "gate line does not name both versions"
grep -q "^passed=1" "$T/repo/$V2/gate.txt" || fail "gate.txt: $(cat "$T/repo/$V2/gate.txt")"
# the training process's peak RSS (wait4 of the child) in the log line and /metrics: more than the window's text
grep -q "event=gate_passed version=$V2 .* max_rss_kb=[1-9][0-9][0-9][0-9]" "$T/retrain.log" || fail "no max_rss_kb in the gate line"
"$XMC" model list "$T/repo" > "$T/list" 2>&1 || true
grep -q "$V2" "$T/list" || fail "xmc model list does not show $V2"
echo "gate: $(grep -o 'new_p1=[^ ]* .*serving_r10=[^ ]*' "$T/retrain.log" | head -1)"

# ---- xmcd swaps to it; products of NEW come out labelled NEW -------------------------------------------------
wait_log "$T/xmcd.log" "event=model_swap.*$V2" 100 || fail "xmcd did not swap to $V2"
"$XMCD" --encode-products "$T/new_probe.tsv" --id-prefix q | kcat -b "$BS" -P -t products -D '|~REC~|' -K '|~KEY~|'
for _ in $(seq 200); do
  n=$(kcat -b "$BS" -C -t products.labeled -e -q -f '.\n' 2>/dev/null | wc -l); [ "$n" -ge 20 ] && break; sleep 0.1
done
kcat -b "$BS" -C -t products.labeled -e -q -f '%k|~KEY~|%s|~REC~|' | "$XMCD" --decode-labeled > "$T/out"
hits=$(awk -F'\t' -v v="$V2" -v l="$NEW" '$2 == v && index($3, l ":") == 1' "$T/out" | wc -l)
[ "$hits" -ge 15 ] || fail "only $hits of 20 products of $NEW classified into it by $V2: $(head -3 "$T/out")"
echo "new category: $hits of 20 probe products classified into $NEW by $V2"

# ---- a worse model (shuffled labels, test-only key) is refused --------------------------------------------------
sed -i 's/shuffle_labels = 0/shuffle_labels = 1/' "$T/retrain.conf"
echo 'log = { kafka_level = 5; };' >> "$T/retrain.conf"   # restart-only: named with both values, not applied
echo 'brokers = "localhost:1";' >> "$T/retrain.conf"     # ignored beside --bootstrap-file: no change to name
kill -HUP "$RT"
wait_log "$T/retrain.log" "event=config_change key=test.shuffle_labels old=0 new=1" 50 || fail "SIGHUP did not apply the key"
grep -q "event=config_restart_needed key=log.kafka_level running=4 file=5" "$T/retrain.log" ||
  fail "restart-only change not named with its values: $(grep config_restart "$T/retrain.log")"
grep -q "event=config_restart_needed key=brokers" "$T/retrain.log" &&
  fail "brokers named as changed, though --bootstrap-file's are what runs: $(grep key=brokers "$T/retrain.log")"
kill -USR1 "$RT"
wait_log "$T/retrain.log" "event=gate_refused" 1200 || fail "the shuffled model was not refused"
grep -q "event=training_spawned.*trigger=signal" "$T/retrain.log" || fail "SIGUSR1 did not trigger"
[ "$(cat "$T/repo/CURRENT")" = "$V2" ] || fail "CURRENT moved to a refused version"
V3=$(grep -o 'event=gate_refused version=[^ ]*' "$T/retrain.log" | head -1 | cut -d= -f3)
[ -d "$T/repo/$V3" ] && grep -q "^passed=0" "$T/repo/$V3/gate.txt" || fail "refused version not kept aside with gate.txt"
curl -sf "http://127.0.0.1:$PORT/metrics" > "$T/metrics" || fail "no /metrics"
grep -q '^xmc_retrain_refused_total 1$' "$T/metrics" || fail "metrics: $(grep refused "$T/metrics")"
grep -q '^xmc_retrain_published_total 1$' "$T/metrics" || fail "metrics: $(grep published "$T/metrics")"
grep -q '^xmc_retrain_last_train_max_rss_kb [1-9][0-9][0-9][0-9]' "$T/metrics" || fail "metrics: $(grep rss "$T/metrics")"
grep -q "xmc_retrain_gate_passed{version=\"$V3\"} 0" "$T/metrics" || fail "gate gauges missing"
echo "refused: $(grep -o 'reason=.*' <(grep event=gate_refused "$T/retrain.log") | head -1)"

kill -TERM "$RT"
rc=0; wait "$RT" || rc=$?
RT=
[ "$rc" -eq 0 ] || fail "retrain exit $rc after SIGTERM"
grep -q "event=stopped rc=0" "$T/retrain.log" || fail "no clean stop"
echo "ok: published $V2 (new category served by xmcd), refused the shuffled $V3, clean SIGTERM"
