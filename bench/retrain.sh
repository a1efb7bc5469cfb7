#!/bin/bash
# bench/retrain.sh: section 12 of `make bench`: the continuous-retraining loop timed end to end through
# `xmc retrain` and xmcd on the embedded Kafka (docs/retrain.md). Per run:
#   - a serving version V1 (trained on a catalog's first records less those of NEW held-out labels, primal solver:
#     the solver a warm start continues) in a model repository, xmcd serving it, and a steady load of products
#     through xmcd (build/bench/xmcd_load at RETRAIN_RATE records/s, texts of the test records);
#   - `xmc retrain` on the same repository, its window seeded with V1's training records, retrain.min_changes =
#     the number of curated records, retrain.warm 0 (full retrain) or 1 (warm start from the serving version,
#     rebuild_every 0), at retrain.threads / retrain.nice (RETRAIN_THREADS / RETRAIN_NICE, defaults 1 / 10: the
#     retrainer's own defaults, which are how it keeps off the CPU xmcd needs);
#   - after an idle stretch, the curated records (a batch of later catalog records plus the held-out labels'
#     records: new labels for V1) are produced to the curated topic; the last one completes the change count and
#     triggers the training; the gate passes it; CURRENT moves; xmcd swaps it in.
# Measured: from the last curated record's producer time stamp (its Kafka CreateTime) to xmcd's
# `event=model_swap version=<new>` log line, split into: to the training's start (`training_spawned`), the
# training and gate (to the child's `current_moved`; train_s and gate_s from the `gate_passed` line), to xmcd's
# swap; P@1 / P@5 of the new version on the test records
# and P@1 on the test records that carry a new label (xmc eval); the trainer's peak RSS: the parent (`xmc retrain`,
# VmHWM from /proc before it stops) and the training child (`max_rss_kb` of the gate line: wait4's ru_maxrss);
# xmcd's latency, producer send -> output consumed, p50/p99 of the records sent while the training ran (from
# training_spawned to current_moved) and of those sent while nothing trained (after the load's warm-up and the
# retrainer's start, before the curated records were produced). Every figure is of this run; all log times are the same machine's clock.
#
# Environment: BUILD (default build), RETRAIN_BIG=1 (also the 10^5-label catalog of 10^6 records: heavy, about
# 30 minutes on 2 cores; make bench passes BENCH_BIG), RETRAIN_REPEATS (runs per mode on the demo catalog,
# default 3: the table gives each run and the median), RETRAIN_RATE (xmcd load, records/s, default 1000),
# RETRAIN_THREADS (1), RETRAIN_NICE (10), RETRAIN_IDLE_S (idle seconds measured before the curated records,
# default 10, 30 big), BENCH_TMP (scratch parent; the big case writes about 1.5 GB there), RETRAIN_ONLY_BIG=1
# (skip the demo catalog), RETRAIN_CONTRAST=0 (skip the contrast runs: a full retrain at retrain.threads 2 and
# retrain.nice 0, i.e. both cores at xmcd's priority, to show what the defaults keep from the stage). Needs kcat.
set -u -o pipefail
{ # one compound command: bash reads it all before running, so editing the file mid-run is safe
BUILD=${BUILD:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
XMC=$(readlink -f "$BUILD/xmc"); XMCD=$(readlink -f "$BUILD/xmcd"); LOAD=$(readlink -f "$BUILD/bench/xmcd_load")
PLUGIN=$(readlink -f "$BUILD/xmc_stage.so")
for f in "$XMC" "$XMCD" "$LOAD" "$PLUGIN"; do
    [ -f "$f" ] || { echo "retrain bench: $f not built (run make)" >&2; exit 1; }
done
command -v kcat >/dev/null || { echo "retrain bench: kcat not installed (Debian package kcat): skipped"; exit 0; }
REPEATS=${RETRAIN_REPEATS:-3}
RATE=${RETRAIN_RATE:-1000}
THREADS=${RETRAIN_THREADS:-1}
NICE=${RETRAIN_NICE:-10}
W=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/xmc-retrain.XXXXXX") || exit 1
MOCK= DAEMON= RT= LOADP=
stop_pid() {   # PID: SIGTERM, then SIGKILL if it has not exited within 20 s
    [ -n "$1" ] || return 0
    kill -TERM "$1" 2>/dev/null
    for _ in $(seq 200); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}
stop_all() {   # ends what this script started, by pid; the mock cluster last (the clients close against it)
    local p
    for p in $LOADP $RT $DAEMON; do kill -TERM "$p" 2>/dev/null; done
    for p in $LOADP $RT $DAEMON $MOCK; do stop_pid "$p"; done
    MOCK= DAEMON= RT= LOADP=
}
trap 'stop_all; rm -rf "$W"' EXIT
trap 'exit 130' INT TERM

wait_log() { # FILE PATTERN SECONDS: 0 when PATTERN appears in FILE in time
    local end=$((SECONDS + $3))
    while [ $SECONDS -lt "$end" ]; do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
    return 1
}
field() { grep -m1 "$2" "$1" | tr ' ' '\n' | sed -n "s/^$3=//p" | head -1; }   # FILE PATTERN KEY
unix_of() { date -u -d "$1" +%s.%N; }                                          # log ts= -> Unix seconds
ts_of() { unix_of "$(field "$1" "$2" ts)"; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a - b}'; }
kv() { awk -F'\t' -v k="$2" '$1==k{printf "%.2f", $2; exit}' "$1"; }
pct() {   # LATFILE FROM TO Q: the Q-quantile (nearest rank) of the latencies of the records sent in [FROM, TO)
    awk -v a="$2" -v b="$3" '$1 >= a && $1 < b {print $2}' "$1" | sort -n |
        awk -v q="$4" '{v[NR]=$1} END{if (!NR) {print "-"; exit} i = int(q * (NR - 1) + 0.5) + 1; printf "%.1f", v[i]}'
}
count_in() { awk -v a="$2" -v b="$3" '$1 >= a && $1 < b' "$1" | wc -l; }

# prepare ID CATALOG NSERVE NBATCH NTEST NNEW: V1's records, the curated records, the test records (as warm.sh)
prepare() {
    local id=$1 cat=$2 nserve=$3 nbatch=$4 ntest=$5 nnew=$6 d="$W/$1"
    mkdir -p "$d"
    tail -n "$ntest" "$cat" >"$d/test.tsv"
    # the held-out labels: spread over the most frequent twentieth of the serving part's labels (bench/warm.sh)
    head -n "$nserve" "$cat" | cut -f1 | tr ',' '\n' | sort | uniq -c | sort -k1,1nr -k2 |
        awk -v n="$nnew" '{sub(/^ *[0-9]+ /, ""); c[NR] = $0} END {k = int(NR / 20 / (n + 1)); if (k < 1) k = 1; for (i = k; i <= NR && n > 0; i += k) {print c[i]; n--}}' \
        >"$d/new.txt"
    # V1's records: the first NSERVE less the new labels'; curated: those new labels' records, then the next NBATCH
    awk -F'\t' -v n="$nserve" -v dir="$d" 'NR == FNR {nw[$0] = 1; next}
        FNR > n {print > (dir "/batch.tsv"); next}
        {split($1, l, ","); h = 0; for (i in l) if (l[i] in nw) h = 1; print > (dir (h ? "/held.tsv" : "/serve.tsv"))}' \
        "$d/new.txt" <(head -n $((nserve + nbatch)) "$cat")
    cat "$d/held.tsv" "$d/batch.tsv" >"$d/curated.tsv"
    rm -f "$d/held.tsv" "$d/batch.tsv"
    awk -F'\t' 'NR == FNR {nw[$0] = 1; next} {split($1, l, ","); for (i in l) if (l[i] in nw) {print; next}}' \
        "$d/new.txt" "$d/test.tsv" >"$d/test-new.tsv"
    # V1 is the retrainer's own first version (SIGUSR1 on the seeded window, no serving version yet), so that it
    # was trained without the gate's held-out slice, as every later version is: a version trained outside the
    # retrainer on all the records would be scored by the gate on its own training records
    local t0=$SECONDS r="$d/boot"
    mkdir -p "$r"
    "$XMCD" --mock-only --bootstrap-file "$r/bs" --topic curated:1 2>"$r/mock.log" &
    MOCK=$!
    for _ in $(seq 200); do [ -s "$r/bs" ] && break; sleep 0.05; done
    cat >"$r/retrain.conf" <<CONF
topic = "curated";
window = { dir = "$r/window"; seed_tsv = "$d/serve.tsv"; max_records = 10000000; };
model = { repo = "$d/repo"; };
retrain = { interval_s = 0; min_changes = 0; threads = 2; nice = 10; warm = 1; rebuild_every = 1; };
gate = { heldout_pct = 10; };
CONF
    "$XMC" retrain -c "$r/retrain.conf" --bootstrap-file "$r/bs" 2>"$r/retrain.log" &
    RT=$!
    wait_log "$r/retrain.log" "event=assigned" 900 && kill -USR1 "$RT" &&
        wait_log "$r/retrain.log" "event=gate_passed\|event=training_failed" 3600
    V1=$(field "$r/retrain.log" "event=gate_passed" version)
    stop_all
    [ -n "$V1" ] || { echo "retrain bench: the serving version failed: $(grep -v event=stats "$r/retrain.log" | tail -3)"; return 1; }
    rm -rf "$r"
    "$XMC" eval --model "$d/repo/$V1" --test "$d/test.tsv" >"$d/v1.eval" 2>/dev/null
    "$XMC" eval --model "$d/repo/$V1" --test "$d/test-new.tsv" >"$d/v1.evalnew" 2>/dev/null
    echo "V1 (serving): $(wc -l <"$d/serve.tsv") records ($nnew labels held out), trained in $((SECONDS - t0)) s" \
         "by xmc retrain (retrain.warm 1, rebuild: a full primal training, threads 2, nice 10, 90 % of them); curated: $(wc -l <"$d/curated.tsv") records; test: $ntest records," \
         "$(wc -l <"$d/test-new.tsv") with a new label; V1 on them: P@1 $(kv "$d/v1.eval" P@1), P@5" \
         "$(kv "$d/v1.eval" P@5), P@1 new-label $(kv "$d/v1.evalnew" P@1)"
}

ROWS=()
failed_run() {   # ID MODE RUN WHY: a row saying so, and everything stopped
    ROWS+=("| $1 | $2 | $3 | FAILED: $4 |")
    echo "retrain bench: $1 $2 run $3 failed: $4 (logs in $W while it runs)" >&2
    stop_all
    return 1
}
# run_once ID WARM RUN BIG [THREADS NICE]: one end-to-end run; appends a table row to ROWS and a line to
# $W/ID.results
run_once() {
    local id=$1 warm=$2 run=$3 big=$4 threads=${5:-$THREADS} nice=${6:-$NICE} d="$W/$1" r="$W/$1/run-$2-$3-${5:-d}"
    local idle=${RETRAIN_IDLE_S:-$([ "$big" = 1 ] && echo 30 || echo 10)}
    local warmup=5 maxsecs=$([ "$big" = 1 ] && echo 5400 || echo 900)
    rm -rf "$r"; mkdir -p "$r"
    echo "$V1" >"$d/repo/.CURRENT.tmp" && mv "$d/repo/.CURRENT.tmp" "$d/repo/CURRENT"
    "$XMCD" --mock-only --bootstrap-file "$r/bs" --topic products:4 --topic labeled:4 --topic dlq:1 --topic curated:1 \
        2>"$r/mock.log" &
    MOCK=$!
    for _ in $(seq 200); do [ -s "$r/bs" ] && break; sleep 0.05; done
    local bs; bs=$(cat "$r/bs" 2>/dev/null) || { failed_run "$id" "$warm" "$run" "no mock cluster"; return 1; }
    cat >"$r/xmcd.conf" <<CONF
brokers = "$bs";
group_id = "retrain-bench";
topics = { in = "products"; out = "labeled"; dlq = "dlq"; };
batch = { max_records = 256; max_wait_ms = 20; };
plugin = { path = "$PLUGIN"; config = { model_repo = "$d/repo"; topk = 5; }; };
reload = { poll_ms = 100; };
stats = { interval_ms = 5000; };
kafka_consumer = [ "session.timeout.ms=6000", "heartbeat.interval.ms=500", "fetch.wait.max.ms=5" ];
CONF
    "$XMCD" -c "$r/xmcd.conf" 2>"$r/xmcd.log" &
    DAEMON=$!
    wait_log "$r/xmcd.log" "event=assigned" 60 || { failed_run "$id" "$warm" "$run" "xmcd got no assignment"; return 1; }
    "$LOAD" -b "$bs" --texts "$d/test.tsv" --rate "$RATE" --tick-ms 100 --seconds "$maxsecs" --warmup "$warmup" \
        --stop-file "$r/stop" --latency-out "$r/lat.txt" --drain 60 --check accounted,failed >"$r/load.out" 2>"$r/load.err" &
    LOADP=$!
    local load_t0; load_t0=$(date +%s.%N)
    cat >"$r/retrain.conf" <<CONF
topic = "curated";
group_id = "retrain-bench-trainer";
window = { dir = "$r/window"; seed_tsv = "$d/serve.tsv"; sync_ms = 200; max_records = 10000000; };
model = { repo = "$d/repo"; };
retrain = { interval_s = 0; min_changes = $(wc -l <"$d/curated.tsv"); min_records = 20; threads = $threads; nice = $nice;
            warm = $warm; rebuild_every = 0; };
gate = { heldout_pct = 10; margin = 0.02; };
stats = { interval_ms = 10000; };
kafka_consumer = [ "session.timeout.ms=6000", "heartbeat.interval.ms=500", "fetch.wait.max.ms=5" ];
CONF
    "$XMC" retrain -c "$r/retrain.conf" --bootstrap-file "$r/bs" 2>"$r/retrain.log" &
    RT=$!
    wait_log "$r/retrain.log" "event=assigned" 900 || { failed_run "$id" "$warm" "$run" "the retrainer got no assignment"; return 1; }
    # the idle stretch: IDLE seconds with nothing training, from when both the load's warm-up is over and the
    # retrainer has loaded its window (seeding 10^6 records is work of the parent's, not idle time)
    local idle_from; idle_from=$(awk -v t="$load_t0" -v w="$warmup" -v n="$(date +%s.%N)" 'BEGIN{s = t + w + 1; printf "%.6f", (n > s ? n : s)}')
    while awk -v a="$(date +%s.%N)" -v b="$idle_from" -v i="$idle" 'BEGIN{exit !(a < b + i)}'; do sleep 0.2; done
    local idle_to; idle_to=$(date +%s.%N)
    "$XMCD" --encode-products "$d/curated.tsv" --id-prefix c --known-labels |
        kcat -b "$bs" -P -t curated -D '|~REC~|' -K '|~KEY~|' 2>"$r/kcat.err"
    # the last curated record's producer time stamp (CreateTime: set when kcat produced it, this machine's clock)
    local t_last
    t_last=$(kcat -b "$bs" -C -t curated -e -q -f '%T\n' 2>/dev/null | sort -n | tail -1 | awk '{printf "%.3f", $1 / 1000}')
    wait_log "$r/retrain.log" "event=gate_passed\|event=gate_refused\|event=training_failed" "$maxsecs" ||
        { failed_run "$id" "$warm" "$run" "no training result"; return 1; }
    grep -q "event=gate_passed" "$r/retrain.log" ||
        { failed_run "$id" "$warm" "$run" "not published: $(grep -m1 'event=gate_refused\|event=training_failed' "$r/retrain.log" | cut -c1-300)"; return 1; }
    local v2; v2=$(field "$r/retrain.log" "event=gate_passed" version)
    wait_log "$r/xmcd.log" "event=model_swap version=$v2" 120 || { failed_run "$id" "$warm" "$run" "xmcd did not swap to $v2"; return 1; }
    sleep 3
    local parent_hwm; parent_hwm=$(awk '/^VmHWM/{print $2}' "/proc/$RT/status" 2>/dev/null)
    touch "$r/stop"
    wait "$LOADP"; local lrc=$?; LOADP=
    stop_all
    local t_spawn t_result t_swap
    t_spawn=$(ts_of "$r/retrain.log" "event=training_spawned")
    t_result=$(ts_of "$r/retrain.log" "event=current_moved")
    t_swap=$(ts_of "$r/xmcd.log" "event=model_swap version=$v2")
    local train_s gate_s child_kb wflag
    train_s=$(field "$r/retrain.log" "event=gate_passed" train_s)
    gate_s=$(field "$r/retrain.log" "event=gate_passed" gate_s); child_kb=$(field "$r/retrain.log" "event=gate_passed" max_rss_kb)
    wflag=$(field "$r/retrain.log" "event=gate_passed" warm)
    "$XMC" eval --model "$d/repo/$v2" --test "$d/test.tsv" >"$r/eval" 2>/dev/null
    "$XMC" eval --model "$d/repo/$v2" --test "$d/test-new.tsv" >"$r/evalnew" 2>/dev/null
    local lat="$r/lat.txt" mode; mode=$([ "$warm" = 1 ] && echo "warm start" || echo "full retrain")
    [ -n "${5:-}" ] && mode="$mode, threads $threads, nice $nice"
    [ "$wflag" = "$warm" ] || mode="$mode (warm=$wflag?)"
    local row
    row=$(printf '| %s | %s | %s | %s | %s (%s + %s) | %s | **%s** | %s | %s | %s | %s / %s | %s / %s (%s) | %s / %s (%s) |' \
        "$id" "$mode" "$run" "$(sub "$t_spawn" "$t_last")" "$(sub "$t_result" "$t_spawn")" "$train_s" "$gate_s" \
        "$(sub "$t_swap" "$t_result")" "$(sub "$t_swap" "$t_last")" "$(kv "$r/eval" P@1)" "$(kv "$r/eval" P@5)" \
        "$(kv "$r/evalnew" P@1)" "$(awk -v k="$parent_hwm" 'BEGIN{printf "%.0f", k/1024}')" \
        "$(awk -v k="$child_kb" 'BEGIN{printf "%.0f", k/1024}')" \
        "$(pct "$lat" "$idle_from" "$idle_to" 0.5)" "$(pct "$lat" "$idle_from" "$idle_to" 0.99)" \
        "$(count_in "$lat" "$idle_from" "$idle_to")" \
        "$(pct "$lat" "$t_spawn" "$t_result" 0.5)" "$(pct "$lat" "$t_spawn" "$t_result" 0.99)" \
        "$(count_in "$lat" "$t_spawn" "$t_result")")
    ROWS+=("$row")
    [ "$lrc" = 0 ] || ROWS+=("| | (xmcd_load's checks failed in the run above: $(grep -E '^(accounted|failed) ' "$r/load.out" | tr '\n' ' ' | tr '|' ' ')) |")
    # the figures again, tab-separated, for the medians: mode, to-start, wall, to-swap, total, P@1, P@5, P@1new,
    # parent MB, child MB, idle p50, idle p99, train p50, train p99
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$(sub "$t_spawn" "$t_last")" "$(sub "$t_result" "$t_spawn")" \
        "$(sub "$t_swap" "$t_result")" "$(sub "$t_swap" "$t_last")" "$(kv "$r/eval" P@1)" "$(kv "$r/eval" P@5)" \
        "$(kv "$r/evalnew" P@1)" "$(awk -v k="$parent_hwm" 'BEGIN{printf "%.0f", k/1024}')" \
        "$(awk -v k="$child_kb" 'BEGIN{printf "%.0f", k/1024}')" \
        "$(pct "$lat" "$idle_from" "$idle_to" 0.5)" "$(pct "$lat" "$idle_from" "$idle_to" 0.99)" \
        "$(pct "$lat" "$t_spawn" "$t_result" 0.5)" "$(pct "$lat" "$t_spawn" "$t_result" 0.99)" >>"$W/$id.results"
    rm -rf "$d/repo/$v2" "$r/window"   # the next run starts from V1 alone
}

header() {
    echo "| catalog | mode | run | last record -> training starts, s | training + gate, s (train + gate) | result -> xmcd serving, s | last record -> new version serving, s | P@1 | P@5 | P@1 new-label | trainer peak RSS MB, parent / child | xmcd ms p50 / p99 (records), idle | xmcd ms p50 / p99 (records), while training |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
}
medians() {   # ID: one row per mode, the median of each column over its runs
    local id=$1 m
    for m in "full retrain" "warm start" "full retrain, threads 2, nice 0"; do
        awk -F'\t' -v m="$m" -v id="$id" '$1 == m {n++; for (c = 2; c <= 14; c++) v[c, n] = $c}
            END {
                if (!n) exit
                printf "| %s | %s | median of %d | ", id, m, n
                for (c = 2; c <= 14; c++) {
                    k = 0; for (i = 1; i <= n; i++) if (v[c, i] != "-") a[++k] = v[c, i] + 0
                    for (i = 2; i <= k; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) {t = a[j]; a[j] = a[j - 1]; a[j - 1] = t}
                    med[c] = k ? (k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2) : "-"
                }
                printf "%.2f | %.2f | %.2f | **%.2f** | %.2f | %.2f | %.2f | %.0f / %.0f | %.1f / %.1f | %.1f / %.1f |\n",
                    med[2], med[3], med[4], med[5], med[6], med[7], med[8], med[9], med[10], med[11], med[12], med[13], med[14]
            }' "$W/$id.results"
    done
}

echo "## 12. Continuous retraining end to end: curated records -> xmc retrain -> gate -> xmcd serving the new version"
echo
echo "xmc $(git -C "$HERE/.." describe --always --dirty 2>/dev/null || echo '?'), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores (shared: compare within a run)."
echo "xmc retrain: retrain.threads $THREADS, retrain.nice $NICE (the training child; the retrainer's defaults), gate.heldout_pct 10"
echo "(the new version trains on 90 % of the window), full retrain = retrain.warm 0 (dual solver), warm start ="
echo "retrain.warm 1 (primal, from the serving version). xmcd: batch 256 / 20 ms, reload.poll_ms 100, a steady"
echo "$RATE records/s load (bench/xmcd_load, the test texts); embedded Kafka (mock cluster, its own process)."
echo "Times: the last curated record's producer time stamp (Kafka CreateTime) -> the log lines' times (one clock)."
echo

"$XMC" gen --taxonomy "$HERE/../data/demo/categories.tsv" --docs 44000 --seed 7 --out "$W/demo.tsv" 2>/dev/null ||
    { echo "gen failed"; exit 1; }
if [ "${RETRAIN_ONLY_BIG:-0}" != 1 ]; then
    echo "### demo catalog (xmc gen --taxonomy data/demo/categories.tsv --docs 44000 --seed 7): V1 on lines 1-40000, curated 40001-42000 + the held-out labels' records, test 42001-44000"
    prepare demo "$W/demo.tsv" 40000 2000 2000 20 && {
        header
        for run in $(seq "$REPEATS"); do
            run_once demo 0 "$run" 0
            run_once demo 1 "$run" 0
            # the contrast: the same full retrain at both cores and xmcd's priority (what retrain.threads 1 and
            # retrain.nice 10 keep away from the stage)
            [ "${RETRAIN_CONTRAST:-1}" = 1 ] && run_once demo 0 "$run" 0 2 0
        done
        printf '%s\n' "${ROWS[@]}"
        [ -s "$W/demo.results" ] && medians demo
    }
    echo
fi
rm -f "$W/demo.tsv"
if [ "${RETRAIN_BIG:-0}" = 1 ]; then
    ROWS=()
    echo "### 10^5-label synthetic catalog (xmc gen --labels 100000 --docs 1020000 --seed 1 --zipf 0.5): V1 on lines 1-1000000 less 200 labels' records, curated 1000001-1010000 + those records, test the last 10000"
    "$XMC" gen --labels 100000 --docs 1020000 --seed 1 --zipf 0.5 --out "$W/big.tsv" 2>/dev/null || { echo "gen failed"; exit 1; }
    prepare big "$W/big.tsv" 1000000 10000 10000 200 && {
        rm -f "$W/big.tsv"
        header
        run_once big 0 1 1
        run_once big 1 1 1
        [ "${RETRAIN_CONTRAST:-1}" = 1 ] && run_once big 0 1 1 2 0
        printf '%s\n' "${ROWS[@]}"
    }
else
    echo "(the 10^5-label, 10^6-record case runs with RETRAIN_BIG=1, or BENCH_BIG=1 in make bench)"
fi
echo
echo "Columns: 'last record -> training starts': the retrainer consumes the curated records, syncs its window"
echo "(window.sync_ms 200) and forks the training on the change count; 'training + gate': training_spawned ->"
echo "the child's current_moved (train: window split to version written; gate: both versions scored on the held-out"
echo "slice); 'result -> xmcd serving': current_moved -> xmcd's model_swap (reload poll, load, swap). Peak RSS: the parent's"
echo "VmHWM (it holds the window) and the child's ru_maxrss (pages shared copy-on-write with the parent count in both)."
echo "xmcd latency: producer send -> labelled output consumed; 'idle' = records sent after the load's warm-up and the"
echo "retrainer's start (window loaded), before the curated records; 'while training' = sent between training_spawned and current_moved."
exit 0
}
