#!/usr/bin/env bash
# retrain_kill.sh: kill -9 of `xmc retrain` at random points, in a loop, on the embedded Kafka (xmcd --mock-only,
# a process of its own, so it outlives every kill). Curated records flow into the curated topic the whole time:
# new products, then the same products with changed label sets, some removed (an empty label set), then back. Each
# round starts the retrainer and kills it with SIGKILL at one of four kinds of point, in turn:
#   window    at a random time while records are consumed and appended to the window (synced every 250 ms, so
#             that most kills find records consumed but not yet durable);
#   training  a training asked for by SIGUSR1, the parent killed at a random time into it (its child dies with
#             it: PR_SET_PDEATHSIG; the test checks that it does);
#   child     the training child killed at a random time, the parent (which logs the failure) a little later;
#   startup   within 0.4 s of the start: replaying the log, seeding a new window, joining the group.
# After each kill, with the retrainer down, it checks:
#   (a) `xmc retrain --dump-window` (read-only) exits 0: the window is whole or has a torn tail, never damaged,
#       and the group committed no offset past the window's; every record below the group's committed offset
#       of its partition is in the window with the label set it was sent with, or with a later one (the
#       producer's order is known), a removed one absent; the whole seed is in, or nothing at all is;
#   (b) CURRENT names a version that opens with its checksums and canaries (`xmc inspect`), the first one
#       or one whose gate.txt says passed=1;
#   (c) every version in the repository is whole (`xmc model list` reports none damaged), and none that the
#       gate refused, or that a killed training left without a verdict, is CURRENT.
# At the end the retrainer runs until it has consumed everything (a second one started on the same window meanwhile
# must refuse to), trains (the gate passes), and stops on SIGTERM: the window then holds exactly the last label set
# of every product sent, and nothing a killed training left remains. XMC_RETRAIN_KILLS (default 5) sets the
# number of kills (make test-reliability: 24); XMC_RETRAIN_KILL_SEED the random seed (printed). Needs kcat.
set -euo pipefail
BUILD=${BUILD:-build}
XMC=${XMC_BIN:-$PWD/$BUILD/xmc}
XMCD=${XMCD_BIN:-$PWD/$BUILD/xmcd}
KILLS=${XMC_RETRAIN_KILLS:-5}
SEED=${XMC_RETRAIN_KILL_SEED:-$$}
RANDOM=$SEED
command -v kcat >/dev/null || { echo "skip: kcat not installed"; exit 0; }
T=$(mktemp -d /tmp/xmc-retrain-kill-XXXXXX)
MOCK= RT= PROD=
cleanup() { for p in $RT $PROD $MOCK; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$T"; }
trap cleanup EXIT
LOG=
fail() { echo "FAIL (seed $SEED, round ${round:-end}, ${kind:-}): $*"
         [ -n "$LOG" ] && { echo "--- $LOG"; grep -v event=stats "$LOG" | tail -25; }; exit 1; }
wait_log() { # FILE PATTERN TRIES(0.05 s)
  for _ in $(seq "$3"); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done; return 1
}
rnd_ms() { echo $(( $1 + RANDOM % ($2 - $1 + 1) )); } # a random number of ms in [$1, $2]
sleep_ms() { sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"; }

# ---- data: a seed for the window and a pool of curated products --------------------------------------------
# (big enough for a training to take a few tenths of a second here, so that kills land inside it)
"$XMC" gen --labels 200 --docs 12000 --seed 11 --zipf 0.6 --out "$T/catalog.tsv" 2>/dev/null
awk 'NR <= 8000' "$T/catalog.tsv" > "$T/seed.tsv"
awk 'NR > 8000' "$T/catalog.tsv" > "$T/pool.tsv" # 4000 products, sent in chunks of 50
V1=$("$XMC" train --train "$T/seed.tsv" --model "$T/repo" --quiet)
[ -n "$V1" ] || fail "no first version"

"$XMCD" --mock-only --bootstrap-file "$T/bs" --brokers 1 --topic curated:2 2> "$T/mock.log" &
MOCK=$!
for _ in $(seq 100); do [ -s "$T/bs" ] && break; sleep 0.1; done
BS=$(cat "$T/bs")
[ -n "$BS" ] || fail "no embedded Kafka"

# The producer: passes over the pool, chunk by chunk, each product keyed by its id (one partition per id, so a
# product's records keep their order). Odd passes send the pool's label sets; even passes send them with a
# label "revised" added, except every 7th product, which is removed. sent.tsv gets "id TAB labels" in the order
# sent, before the chunk is produced. It runs until $T/stop exists, then finishes its chunk.
producer() {
  local pass=1 c n
  n=$(wc -l < "$T/pool.tsv")
  while [ ! -e "$T/stop" ]; do
    for ((c = 0; c * 50 < n; c++)); do
      [ -e "$T/stop" ] && break
      awk -v from=$((c * 50 + 1)) -v to=$((c * 50 + 50)) -v pass=$pass -F'\t' -v OFS='\t' 'NR >= from && NR <= to {
            if (pass % 2 == 0) { if ((NR - from) % 7 == 3) $1 = ""; else $1 = $1 ",revised" }
            print }' "$T/pool.tsv" > "$T/chunk.tsv"
      awk -v p="r$c-" -F'\t' '{ printf "%s%06d\t%s\n", p, NR - 1, $1 }' "$T/chunk.tsv" >> "$T/sent.tsv"
      "$XMCD" --encode-products "$T/chunk.tsv" --id-prefix "r$c-" --known-labels |
        kcat -b "$BS" -P -t curated -D '|~REC~|' -K '|~KEY~|' 2>> "$T/producer.err"
      sleep 0.1
    done
    pass=$((pass + 1))
  done
}

cat > "$T/retrain.conf" <<CONF
topic = "curated";
group_id = "retrain-kill";
window = { dir = "$T/window"; seed_tsv = "$T/seed.tsv"; sync_ms = 250; max_records = 100000; };
model = { repo = "$T/repo"; };
retrain = { interval_s = 0; min_changes = 2000; min_records = 20; threads = 1; nice = 10; };
gate = { heldout_pct = 15; margin = 0.5; };
stats = { interval_ms = 0; };
kafka_consumer = [ "session.timeout.ms=4000", "heartbeat.interval.ms=300" ];
CONF

# The checks of (a), (b) and (c) above, with the retrainer down.
check() {
  local dump_rc=0 committed cur
  "$XMC" retrain -c "$T/retrain.conf" --bootstrap-file "$T/bs" --dump-window > "$T/window.tsv" 2> "$T/dump.log" ||
    dump_rc=$?
  if [ "$dump_rc" -ne 0 ]; then
    # a retrainer killed before it created its window has none: nothing may have been committed then
    grep -q "event=window_failed.*No such file" "$T/dump.log" && [ ! -e "$T/window/window.log" ] ||
      fail "--dump-window exit $dump_rc: $(cat "$T/dump.log")"
    : > "$T/window.tsv"
    committed=""
  else
    grep -q 'event=window_dump .*state=\(ok\|torn\) ' "$T/dump.log" || fail "window: $(cat "$T/dump.log")"
    grep -q "state=torn" "$T/dump.log" && torn_seen=$((torn_seen + 1))
    committed=$(sed -n 's/.* committed=\([^ ]*\) .*/\1/p' "$T/dump.log" | tr -d '"')
  fi
  kcat -b "$BS" -C -t curated -e -q -f '%p\t%o\t%k\n' > "$T/topic.tsv" 2>/dev/null || fail "kcat cannot read the topic"
  # every record below its partition's committed offset, with its label set or a later one; the seed whole or absent
  awk -F'\t' -v committed="$committed" '
    FILENAME == ARGV[1] { n[$1]++; sent[$1, n[$1]] = $2; next }            # sent.tsv: id, labels, in order
    FILENAME == ARGV[2] { occ[$3]++; if ($2 < upto[$1]) need[$3] = occ[$3]; next } # topic: partition, offset, id
    FILENAME == ARGV[3] { have[$1] = $2; nwin++; next }                     # the window: id, labels
    FILENAME == ARGV[4] { if ($1 != "") { seeds++; if (have["seed:" FNR] == $1) seeds_in++ } next }
    BEGIN { k = split(committed, pairs, ","); for (i = 1; i <= k; i++) { split(pairs[i], pc, ":"); upto[pc[1]] = pc[2] } }
    END {
      for (id in need) {
        ok = 0
        for (s = need[id]; s <= n[id] && !ok; s++) ok = (sent[id, s] == "" && !(id in have)) || have[id] == sent[id, s]
        if (!ok) { printf "committed record %s (send %d of %d: \"%s\") not in the window (has \"%s\")\n", id, need[id],
                          n[id], sent[id, need[id]], have[id]; bad++ }
        checked++
      }
      if (nwin && seeds_in != seeds) { printf "seed: %d of %d records in the window\n", seeds_in, seeds; bad++ }
      printf "checked %d committed products, window %d records\n", checked, nwin > "/dev/stderr"
      exit bad ? 1 : 0
    }' "$T/sent.tsv" "$T/topic.tsv" "$T/window.tsv" "$T/seed.tsv" > "$T/check.out" 2> "$T/check.err" ||
    fail "window check: $(head -5 "$T/check.out")"
  checked_total=$((checked_total + $(sed -n 's/^checked \([0-9]*\) .*/\1/p' "$T/check.err")))
  # (b) CURRENT opens verified and is the first version or a passed one
  cur=$(cat "$T/repo/CURRENT")
  "$XMC" inspect --model "$T/repo" > /dev/null 2> "$T/inspect.err" || fail "CURRENT ($cur) does not open: $(cat "$T/inspect.err")"
  [ "$cur" = "$V1" ] || grep -q "^passed=1" "$T/repo/$cur/gate.txt" 2>/dev/null || fail "CURRENT $cur has no passed gate"
  # (c) every version whole
  "$XMC" model list "$T/repo" > "$T/list" 2>&1 || fail "model list: $(cat "$T/list")"
  ! grep -q "damaged" "$T/list" || fail "a damaged version: $(grep damaged "$T/list")"
}

start_rt() { # starts the retrainer, its log in $LOG
  LOG="$T/rt-$round.log"
  "$XMC" retrain -c "$T/retrain.conf" --bootstrap-file "$T/bs" 2> "$LOG" &
  RT=$!
}
child_of() { sed -n 's/.*event=training_spawned pid=\([0-9]*\) .*/\1/p' "$LOG" | tail -1; }
wait_child_gone() { # PID: the training child must not outlive its parent
  for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.02; done
  fail "training child $1 outlived the killed retrainer"
}
kill_rt() {
  kill -9 "$RT" 2>/dev/null || true
  wait "$RT" 2>/dev/null || true
  RT=
}

: > "$T/sent.tsv"
producer & PROD=$!
torn_seen=0 checked_total=0 train_ms=1000
declare -A kinds=()
t0=$SECONDS
for ((round = 0; round < KILLS; round++)); do
  kind=$(echo startup window training child | cut -d' ' -f$((round % 4 + 1)))
  start_rt
  at=""
  case $kind in
  startup)
    at=$(rnd_ms 0 400)
    sleep_ms "$at"
    at="$at ms after the start"
    ;;
  window)
    wait_log "$LOG" "event=assigned" 600 || fail "never assigned"
    at=$(rnd_ms 100 1500)
    sleep_ms "$at"
    at="$at ms after the assignment"
    ;;
  training | child)
    wait_log "$LOG" "event=assigned" 600 || fail "never assigned"
    sleep_ms "$(rnd_ms 50 300)"
    kill -USR1 "$RT"
    # a training the change count started at the assignment runs first, and the signal's waits for its end: up
    # to a minute (seen under ASan: more than 10 s)
    wait_log "$LOG" "event=training_spawned.*trigger=signal" 1200 || fail "SIGUSR1 spawned no training"
    at=$(rnd_ms 0 "$train_ms")
    sleep_ms "$at"
    at="$at ms into a training"
    if [ "$kind" = child ]; then
      pid=$(child_of)
      kill -9 "$pid" 2>/dev/null || true
      for _ in $(seq 100); do # the parent collects its child: every training spawned has its end logged
        [ "$(grep -c "event=gate_passed\|event=gate_refused\|event=training_failed" "$LOG")" -ge \
          "$(grep -c "event=training_spawned" "$LOG")" ] && break; sleep 0.05
      done
      grep -q "event=training_failed.*signal 9" "$LOG" && kinds[child_mid_training]=$(( ${kinds[child_mid_training]:-0} + 1 ))
      ms=$(rnd_ms 50 400)
      sleep_ms "$ms"
      at="child $at, parent $ms ms later"
    fi
    ;;
  esac
  pid=$(child_of)
  training=0
  # a child that finished is reaped by its parent at once; one alive (not a zombie) is training now
  [ -n "$pid" ] && [ "$(ps -o stat= -p "$pid" 2>/dev/null | cut -c1)" != "" ] &&
    [ "$(ps -o stat= -p "$pid" | cut -c1)" != Z ] && training=1
  kill_rt
  [ -n "$pid" ] && wait_child_gone "$pid"
  ! grep -q "event=window_damaged" "$LOG" || fail "the window was found damaged after a kill"
  # the time a training takes here, for the next random points
  ms=$(sed -n 's/.*event=gate_[a-z]*.* train_s=\([0-9.]*\) gate_s=\([0-9.]*\).*/\1 \2/p' "$LOG" | tail -1 |
       awk '{ printf "%d", ($1 + $2) * 1000 }')
  [ -n "$ms" ] && [ "$ms" -gt 20 ] && train_ms=$ms
  check
  echo "kill $((round + 1)) ($kind): $at$([ $training -eq 1 ] && echo ", a training running"); window" \
       "$(sed -n 's/.* state=\([a-z]*\) .* records=\([0-9]*\) .*/\1, \2 records/p' "$T/dump.log")"
  kinds[$kind]=$(( ${kinds[$kind]:-0} + 1 ))
  [ $training -eq 1 ] && kinds[during_training]=$(( ${kinds[during_training]:-0} + 1 ))
done
loop_s=$((SECONDS - t0))

# ---- the end: everything sent is consumed, trained on, and the window holds each product's last label set ---
touch "$T/stop"
wait "$PROD" || true
PROD=
round=end kind=final
start_rt
wait_log "$LOG" "event=start " 300 || fail "no start"
# one owner per window: a second retrainer on it refuses to start
rc=0; "$XMC" retrain -c "$T/retrain.conf" --bootstrap-file "$T/bs" 2> "$T/second.log" || rc=$?
[ "$rc" -ne 0 ] && grep -q "event=window_failed.*in use by another process" "$T/second.log" ||
  fail "a second retrainer on the same window: exit $rc, $(cat "$T/second.log")"
want=$(awk '{ n++ } END { print n }' "$T/sent.tsv")
for _ in $(seq 600); do
  kcat -b "$BS" -C -t curated -e -q -f '%p\t%o\t%k\n' > "$T/topic.tsv" 2>/dev/null || true
  [ "$(wc -l < "$T/topic.tsv")" -eq "$want" ] && break; sleep 0.1
done
[ "$(wc -l < "$T/topic.tsv")" -eq "$want" ] || fail "the topic holds $(wc -l < "$T/topic.tsv") of $want records sent"
ends=$(awk -F'\t' '{ if ($2 + 1 > e[$1]) e[$1] = $2 + 1 } END { for (p in e) printf "%s%s:%s", s++ ? "," : "", p, e[p] }' \
       "$T/topic.tsv" | tr ',' '\n' | sort -n | paste -sd,)
for _ in $(seq 400); do
  "$XMC" retrain -c "$T/retrain.conf" --bootstrap-file "$T/bs" --dump-window > /dev/null 2> "$T/dump.log" || true
  got=$(sed -n 's/.* window_offsets=\([^ ]*\) .*/\1/p' "$T/dump.log" | tr -d '"')
  [ "$got" = "$ends" ] && break; sleep 0.1
done
[ "$got" = "$ends" ] || fail "the window stopped at $got, the topic ends at $ends"
# a training on the whole window (one running now finishes first: the signal waits for it)
kill -USR1 "$RT"
wait_log "$LOG" "event=training_spawned.*trigger=signal" 1200 || fail "SIGUSR1 started no training"
for _ in $(seq 1200); do
  [ "$(grep -c "event=gate_passed\|event=gate_refused\|event=training_failed" "$LOG")" -eq \
    "$(grep -c "event=training_spawned" "$LOG")" ] && break; sleep 0.05
done
last=$(grep "event=gate_passed\|event=gate_refused\|event=training_failed" "$LOG" | tail -1)
case $last in *event=gate_passed*) ;; *) fail "the final training did not pass the gate: $last" ;; esac
kill -TERM "$RT"
rc=0; wait "$RT" || rc=$?
RT=
[ "$rc" -eq 0 ] || fail "exit $rc after SIGTERM"
check
# the window is exactly the last label set of every product sent, and the seed
"$XMC" retrain -c "$T/retrain.conf" --bootstrap-file "$T/bs" --dump-window 2>/dev/null | cut -f1,2 | sort > "$T/final.tsv"
{ awk -F'\t' '{ last[$1] = $2 } END { for (id in last) if (last[id] != "") print id "\t" last[id] }' "$T/sent.tsv"
  awk -F'\t' '$1 != "" { print "seed:" NR "\t" $1 }' "$T/seed.tsv"; } | sort > "$T/expect.tsv"
cmp -s "$T/final.tsv" "$T/expect.tsv" || fail "final window differs from what was sent: $(diff "$T/final.tsv" "$T/expect.tsv" | head -5)"
cur=$(cat "$T/repo/CURRENT")
# what killed trainings left (a version being written, small files being replaced, their markers) was removed
# when the retrainer started again
leftover=$(find "$T/repo" "$T/window" -maxdepth 2 \( -name '.tmp-*' -o -name '.*.tmp-*' -o -name 'train-*.tsv' \
           -o -name 'training.*' \) | wc -l)
[ "$leftover" -eq 0 ] || fail "left behind: $(find "$T/repo" "$T/window" -maxdepth 2 -name '*tmp*' -o -maxdepth 2 -name 'train*')"
stale=$(cat "$T"/rt-*.log | grep -c "event=stale_training_removed" || true)
summary=""
for k in window training child child_mid_training startup during_training; do summary="$summary $k=${kinds[$k]:-0}"; done
echo "ok: $KILLS kills (seed $SEED, ${loop_s}s):$summary; torn tails seen=$torn_seen; committed products checked=$checked_total;" \
     "$want records sent; final window $(wc -l < "$T/final.tsv") records exact; CURRENT $cur opens verified;" \
     "$stale restarts removed what a killed training left"
