#!/bin/bash
# bench/stream.sh: xmcd + xmc_stage.so on the embedded Kafka with a 10^4-label model: the stream section of
# `make bench` and the stream reliability runs (R12, R20) of `make test-reliability`. See bench/README.md.
#
#   bash bench/stream.sh bench        model; (a) throughput on a backlog with xmcd's per-stage histograms, (b) the
#                                     classifier alone on the same texts, (c) R12: 20 model swaps at a fixed rate,
#                                     (d) the soak (SOAK_SECS, 0 skips it). Prints PASS/FAIL lines, exits 0.
#   bash bench/stream.sh reliability  R12 (longer) and R20 (soak with kills and swaps); exits 1 if a check fails.
#   bash bench/stream.sh r12 | r20    one of the two, exit status as above.
#   bash bench/stream.sh throughput   (a) and (b) only (e.g. at several STREAM_BATCH, with STREAM_ENCODER).
#   bash bench/stream.sh brokers      (a) and (c) on the mock, on one real Apache Kafka broker and on three (RF 3,
#                                     min.insync.replicas 2), same model and load, then one table of the three.
#
# STREAM_KAFKA=mock (default) | 1 | 3 picks the cluster of every run: the mock, or that many real Apache Kafka 2.4.1
# brokers started from KAFKA_LIBS (the Makefile's default: ../shared/kafka-broker/libs) by tests/kafka/cluster.sh, fresh for each run, topics
# created with the same partitions (replication 3 and min.insync.replicas 2 on three brokers; xmcd's idempotent
# producer writes with acks=all). Needs Java and build/tests/kafka/kafka_check (make test-kafka builds it).
#
# Every run starts its own mock cluster (`xmcd --mock-only`, 3 brokers; topics products:8, labeled:8, dlq:1) and
# runs xmcd under a small supervisor loop that restarts it when it dies (R20 kills it with SIGKILL); any exit other
# than those kills and the final SIGTERM (exit 0) fails the run. The load generator and checker is
# build/bench/xmcd_load (bench/xmcd_load.c): it produces the records, renames CURRENT for the swaps, sends the
# kills, samples xmcd's RSS and reads the output and dead-letter topics back.
#
# Environment (defaults in brackets; the reliability mode's are in the second bracket where they differ):
#   BUILD [build]                      STREAM_LABELS [10000] labels asked of `xmc gen` (Zipf 0.5, as bench section 3)
#   STREAM_TRAIN_DOCS [100000]         training records; 10,000 more are the texts streamed and classified
#   STREAM_RECORDS [100000]            (a) backlog size        STREAM_RATE [2000] records/s of (c) and (d)
#   STREAM_BATCH [256] STREAM_MAX_WAIT_MS [20]  xmcd's batch.max_records / batch.max_wait_ms (conf/xmcd.conf's)
#   STREAM_FETCH_WAIT_MS [5]           xmcd's consumer fetch.wait.max.ms (librdkafka's default is 500: the mock
#                                      holds an empty fetch that long even when data arrives meanwhile)
#   STREAM_TICK_MS [100]               the fixed-rate runs produce the records due every 100 ms together (200 at
#                                      2,000/s): the mock returns one message set per partition per fetch and finds
#                                      it by a linear scan of the log, so small message sets starve the consumers
#                                      (bench/README.md: what the embedded Kafka distorts)
#   R12_SWAPS [20]  R12_SWAP_EVERY [2.5] [5] s  R12_FIRST [10] [15] s (first swap; steady RSS sampled then)
#   R12_WINDOW_MS [1000]               records sent this long after a rename of CURRENT are "in a swap window"
#   RELOAD_POLL_MS [100]               xmcd's reload.poll_ms (how soon it sees a new CURRENT)
#   SOAK_SECS [600] [240]              soak length; 0 skips it (make bench passes BENCH_SOAK_SECS here)
#   SOAK_RATE [$STREAM_RATE]  SOAK_SWAP_EVERY [120] [30] s  SOAK_KILL_EVERY [0] [80] s (kill -9 + restart; 0: none)
#   SOAK_WARMUP [60] [20] s            RSS drift of each xmcd process is measured from this long after it started
#                                      (at most a quarter of SOAK_SECS unless given)
#   SOAK_RSS_EVERY [10] [5] s          RSS sample period
#   STREAM_INJECT                      passed to xmcd_load --inject (lose=K, poison=K, stale): a deliberately
#                                      wrong run, to see the checks fail
#   BENCH_TMP [$TMPDIR or /tmp]        scratch directory parent (about 60 MB)
#   STREAM_EVAL [1]                    0 skips (b)
#   STREAM_ENCODER                     an encoder directory (config.json, model.safetensors, vocab.txt): the two
#                                      versions are tfidf+encoder models (--pooling mean), each holding a copy of it
set -u -o pipefail
{ # one compound command: bash reads it all before running, so editing the file mid-run is safe

MODE=${1:-bench}
case $MODE in bench|reliability|r12|r20|throughput|brokers) ;; *) echo "usage: bench/stream.sh bench|reliability|r12|r20|throughput|brokers" >&2; exit 2;; esac
REL=0; [ "$MODE" != bench ] && [ "$MODE" != brokers ] && REL=1
KAFKA=${STREAM_KAFKA:-mock}
case $KAFKA in mock|1|3) ;; *) echo "stream: STREAM_KAFKA is mock, 1 or 3" >&2; exit 2;; esac
BUILD=${BUILD:-build}
XMC=$(readlink -f "$BUILD/xmc"); XMCD=$(readlink -f "$BUILD/xmcd"); LOAD=$(readlink -f "$BUILD/bench/xmcd_load")
PLUGIN=$(readlink -f "$BUILD/xmc_stage.so")
for f in "$XMC" "$XMCD" "$LOAD" "$PLUGIN"; do
    [ -x "$f" ] || [ -f "$f" ] || { echo "stream: $f not built (run make)" >&2; exit 2; }
done
LABELS=${STREAM_LABELS:-10000}
TRAIN_DOCS=${STREAM_TRAIN_DOCS:-100000}
RECORDS=${STREAM_RECORDS:-100000}
RATE=${STREAM_RATE:-2000}
BATCH=${STREAM_BATCH:-256}
MAX_WAIT=${STREAM_MAX_WAIT_MS:-20}
TICK=${STREAM_TICK_MS:-100}
FETCH_WAIT=${STREAM_FETCH_WAIT_MS:-5}
R12_SWAPS=${R12_SWAPS:-20}
R12_WINDOW_MS=${R12_WINDOW_MS:-1000}
POLL_MS=${RELOAD_POLL_MS:-100}
WARMUP_GIVEN=${SOAK_WARMUP:-}
if [ $REL = 1 ]; then
    R12_EVERY=${R12_SWAP_EVERY:-5}; R12_FIRST=${R12_FIRST:-15}
    SOAK_SECS=${SOAK_SECS:-240}; SOAK_SWAP=${SOAK_SWAP_EVERY:-30}; SOAK_KILL=${SOAK_KILL_EVERY:-80}
    SOAK_WARMUP=${SOAK_WARMUP:-20}; SOAK_RSS=${SOAK_RSS_EVERY:-5}
else
    R12_EVERY=${R12_SWAP_EVERY:-2.5}; R12_FIRST=${R12_FIRST:-10}
    SOAK_SECS=${SOAK_SECS:-${BENCH_SOAK_SECS:-600}}; SOAK_SWAP=${SOAK_SWAP_EVERY:-120}; SOAK_KILL=${SOAK_KILL_EVERY:-0}
    SOAK_WARMUP=${SOAK_WARMUP:-60}; SOAK_RSS=${SOAK_RSS_EVERY:-10}
fi
# a short soak (BENCH_SOAK_SECS=60 to try it out) gets a quarter of its length as warm-up unless one is given
if [ -z "$WARMUP_GIVEN" ] && awk -v s="$SOAK_SECS" -v w="$SOAK_WARMUP" 'BEGIN{exit !(w > s / 4)}'; then
    SOAK_WARMUP=$(awk -v s="$SOAK_SECS" 'BEGIN{print int(s / 4)}')
fi
SOAK_RATE=${SOAK_RATE:-$RATE}
INJECT=()
[ -n "${STREAM_INJECT:-}" ] && INJECT=(--inject "$STREAM_INJECT")

W=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/xmc-stream.XXXXXX") || exit 2
MOCK=; SUP=
cleanup() {
    if [ -n "$SUP" ]; then touch "$W/stop"; [ -s "$W/pid" ] && kill -TERM "$(cat "$W/pid")" 2>/dev/null; wait "$SUP" 2>/dev/null; fi
    [ -n "$MOCK" ] && { kill "$MOCK" 2>/dev/null; wait "$MOCK" 2>/dev/null; }
    [ -d "$W/kc" ] && bash "$CLUSTER" stop "$W/kc" 2>/dev/null
    [ -n "${KEEP_TMP:-}" ] && echo "stream: kept $W" >&2 || rm -rf "$W"
}
trap cleanup EXIT
trap "exit 130" INT TERM
FAILED=0

# ---- helpers --------------------------------------------------------------------------------------------------
# a `key=value` field of the last line of the xmcd log matching event=$2
logfield() { grep "event=$2 " "$1" | tail -n 1 | tr ' ' '\n' | sed -n "s/^$3=//p"; }

CLUSTER=$(cd "$(dirname "$0")/.." && pwd)/tests/kafka/cluster.sh
KCHECK=$(readlink -f "$BUILD/tests/kafka/kafka_check")
kafka_name() { case $1 in mock) echo "embedded (mock, 3 brokers)";; 1) echo "Apache Kafka 2.4.1, 1 broker";; *) echo "Apache Kafka 2.4.1, $1 brokers (RF 3, min.isr 2)";; esac; }
start_mock() {   # a fresh cluster for each run: empty topics, nothing left from the previous run
    rm -f "$W/bs"
    if [ "$KAFKA" != mock ]; then
        bash "$CLUSTER" stop "$W/kc" 2>/dev/null; rm -rf "$W/kc"
        BS=$(bash "$CLUSTER" start "$W/kc" "$KAFKA" 2>"$W/cluster.err") || { echo "stream: the brokers did not start: $(tail -2 "$W/cluster.err")"; exit 2; }
        local rf=1; [ "$KAFKA" -ge 3 ] && rf=3
        "$KCHECK" create "$BS" products 8 $rf && "$KCHECK" create "$BS" labeled 8 $rf && "$KCHECK" create "$BS" dlq 1 $rf ||
            { echo "stream: could not create the topics"; exit 2; }
        return
    fi
    "$XMCD" --mock-only --bootstrap-file "$W/bs" --topic products:8 --topic labeled:8 --topic dlq:1 2>"$W/mock.log" &
    MOCK=$!
    for _ in $(seq 200); do [ -s "$W/bs" ] && break; sleep 0.05; done
    [ -s "$W/bs" ] || { echo "stream: the mock cluster did not start"; cat "$W/mock.log"; exit 2; }
    BS=$(cat "$W/bs")
}
stop_mock() {   # prints the cluster's CPU time (the mock is one thread for all brokers and can be the bottleneck)
    local tck; tck=$(getconf CLK_TCK)
    if [ "$KAFKA" != mock ]; then
        local f
        for f in "$W"/kc/b*/pid; do
            awk -v t="$tck" -v up="$(cut -d' ' -f1 /proc/uptime)" -v b="$(basename "$(dirname "$f")")" '{printf "broker %s (JVM): %.1f s CPU over %.0f s (%.0f %% of a core)\n", b, ($14+$15)/t, up-$22/t, 100*($14+$15)/t/(up-$22/t)}' "/proc/$(cat "$f")/stat"
        done
        bash "$CLUSTER" stop "$W/kc"; rm -rf "$W/kc"
        return
    fi
    awk -v t="$tck" -v up="$(cut -d' ' -f1 /proc/uptime)" '{printf "mock cluster process: %.1f s CPU over %.0f s (%.0f %% of a core)\n", ($14+$15)/t, up-$22/t, 100*($14+$15)/t/(up-$22/t)}' "/proc/$MOCK/stat"
    kill "$MOCK" 2>/dev/null; wait "$MOCK" 2>/dev/null; MOCK=
}

write_conf() {   # $1 conf path, $2 group; stats every 5 s; conf/xmcd.conf's defaults for everything not named
    cat >"$1" <<CONF
brokers = "$BS";
group_id = "$2";
topics = { in = "products"; out = "labeled"; dlq = "dlq"; };
batch = { max_records = $BATCH; max_wait_ms = $MAX_WAIT; };
plugin = { path = "$PLUGIN"; config = { model_repo = "$W/repo"; topk = 5; }; };
reload = { poll_ms = $POLL_MS; };
stats = { interval_ms = 5000; };
# fetch.wait.max.ms (5 unless STREAM_FETCH_WAIT_MS): the mock holds a fetch that finds nothing for the whole wait (a real broker answers as soon
# as data arrives), so librdkafka's 500 ms default would show up as latency that a real cluster does not have
kafka_consumer = [ "session.timeout.ms=6000", "heartbeat.interval.ms=500", "fetch.wait.max.ms=$FETCH_WAIT" ];
CONF
}

# xmcd under a supervisor loop: restarted whenever it exits until $W/stop exists; its pid in $W/pid, every exit
# status in $W/exits, all processes' stderr appended to $1
start_xmcd() {
    rm -f "$W/stop" "$W/pid" "$W/exits"
    : >"$W/exits"
    local conf=$2 log=$1
    (
        while :; do
            "$XMCD" -c "$conf" 2>>"$log" &
            p=$!
            echo "$p" >"$W/pid.tmp" && mv "$W/pid.tmp" "$W/pid"
            wait "$p"
            echo "$?" >>"$W/exits"
            [ -e "$W/stop" ] && break
        done
    ) 2>/dev/null &
    SUP=$!
}
wait_assigned() {   # until the first xmcd has its partitions (the mock's first group join takes about 3 s)
    for _ in $(seq 400); do grep -q "event=assigned" "$1" && return 0; sleep 0.05; done
    echo "stream: xmcd got no assignment:"; grep -v "event=stats" "$1" | tail -5; return 1
}
stop_xmcd() {   # SIGTERM (drain, commit, exit 0); $1 = kills the load generator made. Sets EXITS_OK.
    touch "$W/stop"
    [ -s "$W/pid" ] && kill -TERM "$(cat "$W/pid")" 2>/dev/null
    wait "$SUP" 2>/dev/null; SUP=
    local kills=$1 n137 others last
    n137=$(grep -c '^137$' "$W/exits"); last=$(tail -n 1 "$W/exits")
    others=$(grep -v '^137$' "$W/exits" | head -n -1 | tr '\n' ' ')
    EXITS_OK=0
    if [ "$n137" = "$kills" ] && [ "$last" = 0 ] && [ -z "$others" ]; then
        EXITS_OK=1
        EXITS_LINE="xmcd exits: $kills killed with SIGKILL by the load generator, the last one 0 after SIGTERM  [PASS]"
    else
        EXITS_LINE="xmcd exits: $(tr '\n' ' ' <"$W/exits")(expected $kills x 137 then 0): it died by itself  [FAIL]"
    fi
}
model_swaps() {   # swap events in an xmcd log: count and load_ms min/median/max
    grep "event=model_swap " "$1" | sed -n 's/.*load_ms=\([0-9.]*\).*/\1/p' | sort -n |
        awk '{v[NR]=$1} END{if (NR) printf "%d swaps logged by xmcd, load_ms min %.1f / median %.1f / max %.1f", NR, v[1], v[int((NR+1)/2)], v[NR]; else printf "0 swaps logged by xmcd"}'
}
stage_line() {   # xmcd's own per-stage histograms and the plugin's per-record costs from the last stats lines
    local log=$1
    echo "xmcd's histograms (this process, whole run; log-linear buckets, about 12 %): batch $(logfield "$log" stats batch_size_avg) records avg"
    printf '  %-8s %10s %10s\n' stage p50_ms p99_ms
    for s in wait plugin ack e2e; do
        printf '  %-8s %10s %10s\n' "$s" "$(logfield "$log" stats ${s}_p50_ms)" "$(logfield "$log" stats ${s}_p99_ms)"
    done
    echo "  (wait: first record of a batch -> plugin call; plugin: process() per batch; ack: produce -> broker"
    echo "  acknowledgement; e2e: consumed -> acknowledged, i.e. without the time in the input topic)"
    echo "plugin per record (in-process): decode $(logfield "$log" stage_stats decode_us_per_record) us," \
         "classify $(logfield "$log" stage_stats classify_us_per_record) us, encode $(logfield "$log" stage_stats encode_us_per_record) us"
}
aliases() {   # $1 prefix, $2 count: hard-linked copies of m1/m2 (same bytes, a new version name each) -> names
    local names=() i src
    for i in $(seq 1 "$2"); do
        if [ $((i % 2)) = 1 ]; then src=m2; else src=m1; fi
        cp -al "$W/repo/$src" "$W/repo/$1$(printf %02d "$i")"
        names+=("$1$(printf %02d "$i")")
    done
    (IFS=,; echo "${names[*]}")
}
result() {   # $1 = exit status of xmcd_load; $2 = exits check
    if [ "$1" != 0 ] || [ "$2" != 1 ]; then FAILED=1; echo "RESULT: FAIL"; else echo "RESULT: PASS"; fi
}

# ---- the model ------------------------------------------------------------------------------------------------
if [ "$KAFKA" != mock ] || [ "$MODE" = brokers ]; then
    [ -x "$KCHECK" ] || { echo "stream: real brokers need $BUILD/tests/kafka/kafka_check (make test-kafka or make bench builds it)" >&2; exit 2; }
fi
if [ "$MODE" = brokers ]; then
    echo "== 5b. Stream on real brokers: xmcd + xmc_stage.so on the embedded Kafka, one Apache Kafka broker and three, same model and load =="
elif [ "$MODE" = bench ]; then
    echo "== 5. Stream: xmcd + xmc_stage.so on the $(kafka_name "$KAFKA") cluster (8 partitions) =="
else
    echo "== Stream reliability ($MODE): xmcd + xmc_stage.so on the embedded Kafka (mock cluster in its own process) =="
fi
echo "xmc $(git -C "$(dirname "$0")/.." describe --always --dirty 2>/dev/null || echo '?'), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores (shared: compare figures within a run)"
"$XMC" gen --labels "$LABELS" --docs $((TRAIN_DOCS + 10000)) --seed 1 --zipf 0.5 --out "$W/gen.tsv" 2>/dev/null || exit 2
head -n "$TRAIN_DOCS" "$W/gen.tsv" >"$W/train.tsv"; tail -n 10000 "$W/gen.tsv" >"$W/texts.tsv"; rm -f "$W/gen.tsv"
t0=$(date +%s.%N)
FEAT=()
[ -n "${STREAM_ENCODER:-}" ] && FEAT=(--featurizer tfidf+encoder --encoder "$(readlink -f "$STREAM_ENCODER")" --pooling mean)
"$XMC" train --train "$W/train.tsv" --model "$W/repo" --version m1 --seed 0 --threads 2 "${FEAT[@]}" 2>"$W/train1.log" >/dev/null &&
    "$XMC" train --train "$W/train.tsv" --model "$W/repo" --version m2 --seed 1 --threads 2 "${FEAT[@]}" 2>"$W/train2.log" >/dev/null ||
    { echo "stream: training failed"; tail -3 "$W/train1.log" "$W/train2.log"; exit 2; }
t1=$(date +%s.%N)
echo m1 >"$W/repo/.CURRENT.tmp" && mv "$W/repo/.CURRENT.tmp" "$W/repo/CURRENT"
MODEL_BYTES=$(du -sb "$W/repo/m1" | cut -f1)
echo "model: $(sed -n 's/.* \([0-9]*\) labels.*/\1/p' "$W/train1.log" | tail -1) labels, $(sed -n 's/.* \([0-9]*\) features.*/\1/p' "$W/train1.log" | tail -1) features," \
     "$TRAIN_DOCS training records (xmc gen --labels $LABELS --zipf 0.5 --seed 1), two versions m1/m2 (tree seeds 0/1) of" \
     "$(awk -v b="$MODEL_BYTES" 'BEGIN{printf "%.1f", b/1048576}') MB each, trained in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s"
echo "texts streamed: the 10,000 held-out generated records (cycled); xmcd: batch $BATCH records / $MAX_WAIT ms," \
     "topk 5, beam 10 (the model's), reload.poll_ms $POLL_MS, consumer fetch.wait.max.ms $FETCH_WAIT; fixed-rate runs produce" \
     "the records due every $TICK ms together (see bench/README.md for both)"
rm -f "$W/train.tsv"
echo

# ---- (a) throughput and (b) the classifier alone --------------------------------------------------------------
throughput() {
    echo "-- (a) throughput on $(kafka_name "$KAFKA"): a backlog of $RECORDS records in the input topic, then xmcd started; records/s from the first output to the last --"
    start_mock
    write_conf "$W/a.conf" bench-a
    "$LOAD" -b "$BS" --texts "$W/texts.tsv" --rate 0 --records "$RECORDS" --ready-file "$W/ready" \
        --check accounted,failed "${INJECT[@]}" >"$W/a.out" 2>"$W/a.err" &
    local lp=$!
    for _ in $(seq 1200); do [ -e "$W/ready" ] && break; kill -0 $lp 2>/dev/null || break; sleep 0.05; done
    start_xmcd "$W/a.log" "$W/a.conf"
    wait $lp; local rc=$?
    stop_xmcd 0
    cat "$W/a.out"; grep -v '^%' "$W/a.err" | head -5; echo "$EXITS_LINE"
    RPS=$(sed -n 's/^throughput: .* = \([0-9]*\) records\/s.*/\1/p' "$W/a.out")
    stage_line "$W/a.log"
    stop_mock
    result $rc $EXITS_OK
    echo
    [ "${STREAM_EVAL:-1}" = 0 ] && { echo "-- (b) skipped (STREAM_EVAL=0) --"; return; }
    echo "-- (b) the classifier alone on the same 10,000 texts: xmc eval --threads 1 (featurise + classify, in-process, beam 10) --"
    "$XMC" eval --model "$W/repo" --test "$W/texts.tsv" --threads 1 >"$W/eval.out" 2>/dev/null
    local dps; dps=$(awk -F'\t' '$1=="docs/s"{print $2}' "$W/eval.out")
    local dec cls enc
    dec=$(logfield "$W/a.log" stage_stats decode_us_per_record); cls=$(logfield "$W/a.log" stage_stats classify_us_per_record)
    enc=$(logfield "$W/a.log" stage_stats encode_us_per_record)
    echo "xmc eval: $dps docs/s = $(awk -v d="$dps" 'BEGIN{printf "%.1f", 1e6/d}') us per record; P@1 $(awk -F'\t' '$1=="P@1"{print $2}' "$W/eval.out")"
    if [ -n "$RPS" ] && [ -n "$cls" ]; then
        awk -v r="$RPS" -v d="$dec" -v c="$cls" -v e="$enc" -v x="$dps" 'BEGIN{
            t = 1e6 / r; p = d + c + e
            printf "per record at full speed: %.1f us end to end through Kafka and xmcd (1 / %d records/s, all on the same cores)\n", t, r
            printf "  = %.1f us in the plugin (decode %.1f + classify %.1f + encode %.1f) + %.1f us Kafka and daemon overhead (%.0f %%)\n", p, d, c, e, t - p, 100 * (t - p) / t
            printf "  the classifier alone (xmc eval, batch): %.1f us per record; xmcd reaches %.0f %% of its rate\n", 1e6 / x, 100 * r / x
        }'
    fi
    echo
}

# ---- (c) R12: model swaps under load --------------------------------------------------------------------------
r12() {
    local secs names rc
    secs=$(awk -v f="$R12_FIRST" -v n="$R12_SWAPS" -v e="$R12_EVERY" 'BEGIN{print f + n * e}')
    echo "-- (c) R12 on $(kafka_name "$KAFKA"): $R12_SWAPS model swaps under load: $RATE records/s for $secs s, CURRENT renamed every $R12_EVERY s from $R12_FIRST s --"
    echo "(each swap names a new version directory, a hard-linked copy of m1 or m2, so that the checker can tell every"
    echo "swap from the one before; records sent less than ${R12_WINDOW_MS} ms after a rename are the swap windows)"
    names=$(aliases r12- "$R12_SWAPS")
    start_mock
    write_conf "$W/c.conf" bench-c
    start_xmcd "$W/c.log" "$W/c.conf"
    wait_assigned "$W/c.log" || exit 2
    "$LOAD" -b "$BS" --texts "$W/texts.tsv" --rate "$RATE" --tick-ms "$TICK" --seconds "$secs" --repo "$W/repo" --swaps "$R12_SWAPS" \
        --swap-every "$R12_EVERY" --swap-first "$R12_FIRST" --swap-versions "$names" --swap-window "$R12_WINDOW_MS" \
        --pid-file "$W/pid" --group bench-c --warmup 5 --model-bytes "$MODEL_BYTES" \
        --check accounted,failed,versions,swap-p99,swap-rss,lag "${INJECT[@]}" >"$W/c.out" 2>"$W/c.err"
    rc=$?
    stop_xmcd 0
    cat "$W/c.out"; grep -v '^%' "$W/c.err" | head -5; echo "$EXITS_LINE"
    LAT=$(awk '/^  steady \(after/ {print $(NF-2), $(NF-1)}' "$W/c.out")
    echo "$(model_swaps "$W/c.log") (the load runs in xmcd's reload thread, off the record path)"
    stage_line "$W/c.log"
    stop_mock
    echo m1 >"$W/repo/.CURRENT.tmp" && mv "$W/repo/.CURRENT.tmp" "$W/repo/CURRENT"
    rm -rf "$W"/repo/r12-*
    result $rc $EXITS_OK
    echo
}

# ---- (d) soak: RSS, accounting, swaps, optional kills (R20) -----------------------------------------------------
soak() {
    local swaps names rc kills
    swaps=$(awk -v s="$SOAK_SECS" -v e="$SOAK_SWAP" 'BEGIN{n = e > 0 ? int((s - 1) / e) : 0; print n < 0 ? 0 : n}')
    echo "-- (d) soak$([ "$SOAK_KILL" != 0 ] && echo " with kills (R20)"): $SOAK_RATE records/s for $SOAK_SECS s, a swap every $SOAK_SWAP s ($swaps)," \
         "$([ "$SOAK_KILL" != 0 ] && echo "kill -9 of xmcd every $SOAK_KILL s (restarted at once)" || echo "no kills (SOAK_KILL_EVERY=0)"); RSS every $SOAK_RSS s --"
    names=m2
    [ "$swaps" -gt 0 ] && names=$(aliases soak- "$swaps")
    start_mock
    write_conf "$W/d.conf" bench-d
    start_xmcd "$W/d.log" "$W/d.conf"
    wait_assigned "$W/d.log" || exit 2
    local swap_args=()
    [ "$swaps" -gt 0 ] && swap_args=(--swaps "$swaps" --swap-every "$SOAK_SWAP" --swap-versions "$names")
    "$LOAD" -b "$BS" --texts "$W/texts.tsv" --rate "$SOAK_RATE" --tick-ms "$TICK" --seconds "$SOAK_SECS" --repo "$W/repo" "${swap_args[@]}" \
        --swap-window 2000 --pid-file "$W/pid" --group bench-d --warmup "$SOAK_WARMUP" --rss-every "$SOAK_RSS" \
        --kill-every "$SOAK_KILL" --drain 120 --check accounted,failed,versions,drift,lag "${INJECT[@]}" \
        >"$W/d.out" 2>"$W/d.err"
    rc=$?
    kills=$(grep -c '^kill [0-9]*: SIGKILL' "$W/d.out")
    stop_xmcd "$kills"
    cat "$W/d.out"; grep -v '^%' "$W/d.err" | head -5; echo "$EXITS_LINE"
    echo "$(model_swaps "$W/d.log"); xmcd started $(grep -c 'event=assigned' "$W/d.log") times (assignments logged)"
    echo "the RSS drift is measured per xmcd process: after a kill the restarted one is compared with its own level"
    echo "$SOAK_WARMUP s after it started, never with the killed one's"
    stop_mock
    echo m1 >"$W/repo/.CURRENT.tmp" && mv "$W/repo/.CURRENT.tmp" "$W/repo/CURRENT"
    rm -rf "$W"/repo/soak-*
    result $rc $EXITS_OK
    echo
}

case $MODE in
    bench)
        throughput
        r12
        if [ "$SOAK_SECS" != 0 ]; then soak; else echo "-- (d) soak: skipped (BENCH_SOAK_SECS=0) --"; fi
        exit 0;;
    throughput) throughput; exit 0;;
    brokers)
        # the same model, backlog and fixed-rate load on each cluster; real brokers only where they can start here
        ROWS=()
        for KAFKA in mock 1 3; do
            if [ "$KAFKA" != mock ] && ! command -v java >/dev/null; then echo "-- $(kafka_name "$KAFKA"): skipped (no Java) --"; continue; fi
            if [ "$KAFKA" != mock ] && [ ! -f "${KAFKA_LIBS:-}/kafka_2.11-2.4.1.jar" ]; then
                echo "-- $(kafka_name "$KAFKA"): skipped (no broker jars: KAFKA_LIBS or ../shared/kafka-broker) --"; continue; fi
            RPS=; LAT=; rm -f "$W/a.log" "$W/c.log"   # each cluster's runs read their own logs
            [ "$KAFKA" != mock ] && STREAM_EVAL=0
            throughput; r12
            ROWS+=("| $(kafka_name "$KAFKA") | ${RPS:-failed} | $(echo "${LAT:-- -}" | cut -d' ' -f1) | $(echo "${LAT:-- -}" | cut -d' ' -f2) |")
        done
        echo "summary: (a) records/s draining $RECORDS records; (c) end-to-end latency (producer send -> output consumed) at $RATE records/s, steady class, ms"
        echo "| cluster | records/s | p50 ms | p99 ms |"
        echo "|---|---|---|---|"
        printf '%s\n' "${ROWS[@]}"
        [ $FAILED = 0 ] && echo "stream brokers: all PASS" || echo "stream brokers: a run FAILED"
        exit $FAILED;;
    reliability) r12; soak;;
    r12) r12;;
    r20) soak;;
esac
[ $FAILED = 0 ] && echo "stream reliability: all PASS" || echo "stream reliability: FAILED"
exit $FAILED
}
