#!/usr/bin/env bash
# demo-retrain.sh: the last act of `make demo`: continuous retraining. The demo's models never saw one category
# (scripts/demo.sh kept its products aside). On an embedded Kafka, xmcd serves the demo's repository and
# `xmc retrain` keeps a training window seeded with what the serving version was trained on. A few products of
# the new category go through xmcd first (labelled with other categories: the model does not know it); then
# curated records, the new category's among them, arrive on the curated topic; the retrainer trains, gates the
# new version against the serving one on a held-out slice (its P@1, P@5, R@10 printed), publishes it; xmcd swaps
# it in; and the same products sent again come out labelled with the new category.
# Usage: scripts/demo-retrain.sh [OUT] (OUT from scripts/demo.sh). Everything it writes goes to OUT/retrain/.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-demo-out}
OUT_ABS=$(cd "$OUT" && pwd)
XMC=build/xmc
XMCD=build/xmcd
R=$OUT/retrain
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
command -v kcat >/dev/null || { echo "kcat is not installed: skipping the retraining demo"; exit 0; }
[ -x "$XMCD" ] && [ -f build/xmc_stage.so ] || { echo "build/xmcd or build/xmc_stage.so missing: make first"; exit 1; }
[ -s "$OUT/new_category.tsv" ] || { echo "$OUT/new_category.tsv missing: run scripts/demo.sh"; exit 1; }
rm -rf "$R"; mkdir -p "$R"
MOCK= DAEMON= RT=
cleanup() { for p in $RT $DAEMON $MOCK; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
wait_log() { # FILE PATTERN TRIES(0.1 s)
  for _ in $(seq "$3"); do grep -q "$2" "$1" && return 0; sleep 0.1; done; return 1
}
NEW=$(cat "$OUT/new_category.txt")
# the window's seed: what the serving version was trained on (the stream act's retraining set, else train.tsv)
SEED=$OUT_ABS/stream/retrain.tsv
[ -f "$SEED" ] || SEED=$OUT_ABS/train.tsv
n_new=$(wc -l < "$OUT/new_category.tsv")
head -n $((n_new - 10)) "$OUT/new_category.tsv" > "$R/new_curated.tsv"
tail -n 10 "$OUT/new_category.tsv" > "$R/probe.tsv" # never curated: the model meets them only in the stream
{ cat "$R/new_curated.tsv"; tail -n 1000 "$OUT/test.tsv"; } > "$R/curated.tsv"
n_cur=$(wc -l < "$R/curated.tsv")
SERVING=$(cat "$OUT/models/CURRENT")

say "retraining: the category \"$NEW\" is new to the serving model $SERVING"
"$XMCD" --mock-only --bootstrap-file "$R/bootstrap" --brokers 1 --topic products:2 --topic products.labeled:2 \
  --topic products.dlq:1 --topic curated:2 2> "$R/mock.log" &
MOCK=$!
for _ in $(seq 100); do [ -s "$R/bootstrap" ] && break; sleep 0.1; done
BS=$(cat "$R/bootstrap")
cat > "$R/xmcd.conf" <<CONF
brokers = "$BS";
group_id = "xmcd-demo";
topics = { in = "products"; out = "products.labeled"; dlq = "products.dlq"; };
batch = { max_records = 64; max_wait_ms = 5; };
plugin = { path = "$PWD/build/xmc_stage.so"; config = { model_repo = "$OUT_ABS/models"; topk = 3; }; };
reload = { poll_ms = 200; };
kafka_consumer = [ "session.timeout.ms=6000", "heartbeat.interval.ms=500" ];
CONF
cat > "$R/retrain.conf" <<CONF
topic = "curated";
group_id = "retrain-demo";
window = { dir = "$OUT_ABS/retrain/window"; seed_tsv = "$SEED"; sync_ms = 200; };
model = { repo = "$OUT_ABS/models"; };
retrain = { interval_s = 0; min_changes = $n_cur; min_records = 20; threads = 1; nice = 10; };
train = { threshold = 0.01; };
gate = { heldout_pct = 10; margin = 0.02; };
stats = { interval_ms = 0; };
kafka_consumer = [ "session.timeout.ms=6000", "heartbeat.interval.ms=500" ];
CONF
"$XMCD" -c "$R/xmcd.conf" 2> "$R/xmcd.log" &
DAEMON=$!
"$XMC" retrain -c "$R/retrain.conf" --bootstrap-file "$R/bootstrap" 2> "$R/retrain.log" &
RT=$!
wait_log "$R/xmcd.log" "event=assigned" 300 || { echo "xmcd did not start:"; tail -5 "$R/xmcd.log"; exit 1; }
wait_log "$R/retrain.log" "event=assigned" 300 || { echo "xmc retrain did not start:"; tail -5 "$R/retrain.log"; exit 1; }
echo "  xmcd serves $OUT/models; xmc retrain -c $R/retrain.conf (logs in $R/)"
grep -o "event=window_seeded.*" "$R/retrain.log" | sed 's/^/  /'

# send PREFIX: the 10 probe products through xmcd; show PREFIX: their outputs, the new category marked
send() {
  "$XMCD" --encode-products "$R/probe.tsv" --id-prefix "$1" | kcat -b "$BS" -P -t products -D '|~REC~|' -K '|~KEY~|'
  for _ in $(seq 300); do
    [ "$(kcat -b "$BS" -C -t products.labeled -e -q -f '%k\n' 2>/dev/null | grep -c "^$1")" -ge 10 ] && return 0
    sleep 0.1
  done
  echo "  (not all outputs arrived)"
}
show() { # PREFIX HOW_MANY
  kcat -b "$BS" -C -t products.labeled -e -q -f '%k|~KEY~|%s|~REC~|' | "$XMCD" --decode-labeled | sort |
    awk -F'\t' -v p="$1" -v many="$2" -v c="$NEW" -v probe="$R/probe.tsv" '
      BEGIN { while ((getline line < probe) > 0) { split(line, f, "\t"); title[sprintf("%s%06d", p, i++)] = f[2] } }
      index($1, p) == 1 {
        hit = 0
        for (i = 3; i <= NF; i++) { l = $i; sub(/:[^:]*$/, "", l); if (l == c) hit = i - 2 }
        hits += hit > 0; top1 += hit == 1; n++
        if (shown++ < many) {
          printf "  \"%s\"  (model %s)\n", title[$1], $2
          for (i = 3; i <= NF; i++) { l = $i; s = l; sub(/:[^:]*$/, "", l); sub(/.*:/, "", s)
                                      printf "      %.4f  %s%s\n", s, l, l == c ? "   <- the new category" : "" }
        }
      }
      END { printf "  %d of %d products have \"%s\" in their top 3 (%d first)\n", hits, n, c, top1 }'
}

say "before: 10 products of \"$NEW\" through xmcd (the model does not know the category)"
send b
show b 2

say "curated records arrive on the topic \"curated\": $((n_new - 10)) of \"$NEW\", 1000 others"
"$XMCD" --encode-products "$R/curated.tsv" --id-prefix c --known-labels |
  kcat -b "$BS" -P -t curated -D '|~REC~|' -K '|~KEY~|'
echo "  retrain.min_changes = $n_cur: the last of them starts a training (in a child process at nice 10)"
wait_log "$R/retrain.log" "event=gate_passed\|event=gate_refused\|event=training_failed" 1800 ||
  { echo "no training finished:"; tail -5 "$R/retrain.log"; exit 1; }
grep -o "event=training_spawned.*" "$R/retrain.log" | head -1 | sed 's/^/  /'
line=$(grep "event=gate_passed\|event=gate_refused\|event=training_failed" "$R/retrain.log" | head -1)
case $line in *event=training_failed*) echo "  the training failed: $line"; exit 1 ;; esac
V=$(sed -n 's/.* version=\([^ ]*\) .*/\1/p' <<< "$line")
kv() { sed -n "s/.* $1=\\([^ ]*\\).*/\\1/p" <<< "$line"; }

say "the gate: both versions classify the held-out slice ($(kv held_out) curated records, by a hash of the id)"
printf '  %-34s %8s %8s %8s\n' "" "P@1" "P@5" "R@10"
printf '  %-34s %8s %8s %8s\n' "new     $V" "$(kv new_p1)" "$(kv new_p5)" "$(kv new_r10)"
printf '  %-34s %8s %8s %8s\n' "serving $SERVING" "$(kv serving_p1)" "$(kv serving_p5)" "$(kv serving_r10)"
case $line in
*event=gate_passed*) echo "  passed (no figure more than $(kv margin) below the serving version's): published, CURRENT -> $V" ;;
*) echo "  refused: $(sed -n 's/.* reason=//p' <<< "$line")"; exit 1 ;;
esac

say "xmcd swaps the new version in (it polls CURRENT)"
wait_log "$R/xmcd.log" "event=model_swap.*$V" 100 || { echo "  no swap"; exit 1; }
grep "event=model_swap.*$V" "$R/xmcd.log" | head -1 | cut -c1-200 | sed 's/^/  /'

say "after: the same 10 products through xmcd again"
send a
show a 4

kill -TERM "$RT" "$DAEMON"; wait "$RT" "$DAEMON" 2>/dev/null || true; RT= DAEMON=
say "the repository now ($XMC model list $OUT/models)"
"$XMC" model list "$OUT/models" | sed 's/^/  /'
