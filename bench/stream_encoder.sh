#!/bin/bash
# bench/stream_encoder.sh: xmcd + xmc_stage.so on the embedded Kafka with XR-Transformer versions (issue 10's stream
# figures). Two versions are fine-tuned apart (`xmc train --xr-transformer`, seeds 0 and 1) from $DATA/bert-random-l2
# (hidden 128, 2 layers, random weights) on an `xmc gen` catalog; each holds its own encoder.
#   (a) for each micro-batch in STREAM_BATCHES: a backlog of STREAM_RECORDS records in the input topic, then xmcd
#       started; records/s from the first output to the last, and xmcd's consumed -> acknowledged p50/p99;
#   (b) the same model and texts through `xmc eval` alone (in-process, no Kafka), --threads 1 and 2;
#   (c) R12: STREAM_SWAPS swaps between the two fine-tuned versions at STREAM_RATE records/s (micro-batch 32):
#       nothing lost, none dead-lettered, versions never go back, swap-window p99 against steady p99.
# bench/xmcd_load.c produces the records and checks every output by its key (see the comment at its top).
# bench/stream.sh is the same harness for TF-IDF models; this script is its encoder counterpart, kept apart.
#
# Environment: BUILD [build], DATA [../shared/data], STREAM_LABELS [1000], STREAM_TRAIN_DOCS [5000],
#   STREAM_RECORDS [10000], STREAM_BATCHES ["1 32 256"], STREAM_RATE [200], STREAM_SWAPS [10], STREAM_SWAP_EVERY [2],
#   XRT_EPOCHS [1], XRT_MAXLEN [32], OPENBLAS_NUM_THREADS [2], BENCH_TMP [$TMPDIR or /tmp]
set -u -o pipefail
{ # one compound command: bash reads it all before running, so editing the file mid-run is safe

BUILD=${BUILD:-build}
DATA=${DATA:-../shared/data}
XMC=$(readlink -f "$BUILD/xmc"); XMCD=$(readlink -f "$BUILD/xmcd"); LOAD=$(readlink -f "$BUILD/bench/xmcd_load")
PLUGIN=$(readlink -f "$BUILD/xmc_stage.so")
for f in "$XMC" "$XMCD" "$LOAD" "$PLUGIN"; do [ -e "$f" ] || { echo "stream_encoder: $f not built (run make)" >&2; exit 2; }; done
LABELS=${STREAM_LABELS:-1000}
TRAIN_DOCS=${STREAM_TRAIN_DOCS:-5000}
RECORDS=${STREAM_RECORDS:-10000}
BATCHES=${STREAM_BATCHES:-1 32 256}
RATE=${STREAM_RATE:-200}
SWAPS=${STREAM_SWAPS:-10}
SWAP_EVERY=${STREAM_SWAP_EVERY:-2}
EPOCHS=${XRT_EPOCHS:-1}
MAXLEN=${XRT_MAXLEN:-32}
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-2}
W=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/xmc-stream-enc.XXXXXX") || exit 2
MOCK=; PID=
cleanup() {
    [ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null
    [ -n "$MOCK" ] && kill "$MOCK" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$W"
}
trap cleanup EXIT
trap "exit 130" INT TERM

logfield() { grep "event=$2 " "$1" | tail -n 1 | tr ' ' '\n' | sed -n "s/^$3=//p"; }
start_mock() {
    rm -f "$W/bs"
    "$XMCD" --mock-only --bootstrap-file "$W/bs" --topic products:8 --topic labeled:8 --topic dlq:1 2>"$W/mock.log" &
    MOCK=$!
    for _ in $(seq 200); do [ -s "$W/bs" ] && break; sleep 0.05; done
    [ -s "$W/bs" ] || { echo "stream_encoder: the mock cluster did not start"; exit 2; }
    BS=$(cat "$W/bs")
}
stop_mock() { kill "$MOCK" 2>/dev/null; wait "$MOCK" 2>/dev/null; MOCK=; }
start_xmcd() {   # $1 log, $2 group, $3 micro-batch
    cat >"$W/xmcd.conf" <<CONF
brokers = "$BS";
group_id = "$2";
topics = { in = "products"; out = "labeled"; dlq = "dlq"; };
batch = { max_records = $3; max_wait_ms = 20; };
plugin = { path = "$PLUGIN"; config = { model_repo = "$W/repo"; topk = 5; }; };
reload = { poll_ms = 100; };
stats = { interval_ms = 2000; };
kafka_consumer = [ "session.timeout.ms=6000", "heartbeat.interval.ms=500", "fetch.wait.max.ms=5" ];
CONF
    "$XMCD" -c "$W/xmcd.conf" 2>"$1" &
    PID=$!
    echo "$PID" >"$W/pid"
}
stop_xmcd() {   # SIGTERM: xmcd drains, commits and exits 0 (its last stats line is then in the log)
    kill -TERM "$PID"; local rc=0; wait "$PID" || rc=$?; PID=
    [ $rc = 0 ] || echo "xmcd exit $rc after SIGTERM [FAIL]"
}

echo "== Stream with XR-Transformer versions: xmcd + xmc_stage.so on the embedded Kafka (3 brokers, 8 partitions) =="
echo "xmc $(git -C "$(dirname "$0")/.." describe --always --dirty 2>/dev/null || echo '?'), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, OPENBLAS_NUM_THREADS=$OPENBLAS_NUM_THREADS, load $(cut -d' ' -f1-3 /proc/loadavg)"
"$XMC" gen --labels "$LABELS" --docs $((TRAIN_DOCS + 2000)) --seed 1 --zipf 0.5 --out "$W/gen.tsv" 2>/dev/null || exit 2
head -n "$TRAIN_DOCS" "$W/gen.tsv" >"$W/train.tsv"; tail -n 2000 "$W/gen.tsv" >"$W/texts.tsv"
mkdir "$W/enc"
cp "$DATA/bert-random-l2/config.json" "$DATA/bert-random-l2/model.safetensors" "$DATA/bert-vocab/vocab.txt" "$W/enc/" || exit 2
for s in 0 1; do
    t0=$(date +%s.%N)
    "$XMC" train --train "$W/train.tsv" --model "$W/repo" --version "m$s" --seed "$s" --threads 2 --xr-transformer \
        --encoder "$W/enc" --pooling mean --max-length "$MAXLEN" --alpha 0.3 --xrt-dir "$W/xrt$s" --xrt-epochs "$EPOCHS" \
        --xrt-lr 5e-4 >/dev/null 2>"$W/train$s.log" || { echo "stream_encoder: training failed"; tail -3 "$W/train$s.log"; exit 2; }
    echo "version m$s: fine-tuned with seed $s in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.0f", b-a}') s" \
         "($(grep -c 'level [0-9]*/[0-9]* done' "$W/train$s.log") levels, $EPOCHS epoch each, max-length $MAXLEN, mean pooling, alpha 0.3)"
done
cmp -s "$W/repo/m0/encoder/model.safetensors" "$W/repo/m1/encoder/model.safetensors" && { echo "stream_encoder: the two encoders are equal"; exit 2; }
echo m0 >"$W/repo/.CURRENT.tmp" && mv "$W/repo/.CURRENT.tmp" "$W/repo/CURRENT"
echo "model: $LABELS labels asked of xmc gen (--zipf 0.5 --seed 1), $TRAIN_DOCS training records, $(du -sh "$W/repo/m0" | cut -f1) per version" \
     "(encoder included); texts: the 2,000 held-out generated records, cycled; topk 5"
echo

echo "-- (a) xmcd: a backlog of $RECORDS records, then xmcd started; records/s first output -> last; xmcd's histograms --"
printf '| %10s | %9s | %14s | %14s | %22s |\n' micro-batch records/s "e2e p50 ms" "e2e p99 ms" "plugin classify us/rec"
echo "|-----------:|----------:|---------------:|---------------:|-----------------------:|"
for b in $BATCHES; do
    start_mock
    "$LOAD" -b "$BS" --texts "$W/texts.tsv" --rate 0 --records "$RECORDS" --ready-file "$W/ready" --drain 300 \
        --check accounted,failed >"$W/a$b.out" 2>"$W/a$b.err" &
    lp=$!
    for _ in $(seq 1200); do [ -e "$W/ready" ] && break; kill -0 $lp 2>/dev/null || break; sleep 0.05; done
    start_xmcd "$W/a$b.log" "enc-a$b" "$b"
    wait $lp; rc=$?
    stop_xmcd
    rm -f "$W/ready"
    rps=$(sed -n 's/^throughput: .* = \([0-9]*\) records\/s.*/\1/p' "$W/a$b.out")
    printf '| %10s | %9s | %14s | %14s | %22s |%s\n' "$b" "${rps:-?}" "$(logfield "$W/a$b.log" stats e2e_p50_ms)" \
        "$(logfield "$W/a$b.log" stats e2e_p99_ms)" "$(logfield "$W/a$b.log" stage_stats classify_us_per_record)" \
        "$([ $rc = 0 ] || echo " checks FAILED: $(grep FAIL "$W/a$b.out" | head -2)")"
    stop_mock
done
echo

echo "-- (b) the same model on the same 2,000 texts, xmc eval alone (in-process: featurise + classify, batches of 32) --"
for th in 1 2; do
    "$XMC" eval --model "$W/repo" --test "$W/texts.tsv" --threads "$th" >"$W/eval$th.out" 2>/dev/null
    echo "xmc eval --threads $th: $(awk -F'\t' '$1=="docs/s"{print $2}' "$W/eval$th.out") docs/s, P@1 $(awk -F'\t' '$1=="P@1"{print $2}' "$W/eval$th.out")"
done
echo

secs=$(awk -v n="$SWAPS" -v e="$SWAP_EVERY" 'BEGIN{print 5 + n * e + 3}')
echo "-- (c) R12: $SWAPS swaps between the two fine-tuned versions at $RATE records/s for $secs s, micro-batch 32 --"
names=()
for i in $(seq 1 "$SWAPS"); do
    src=m$((i % 2)); cp -al "$W/repo/$src" "$W/repo/r$i"; names+=("r$i")
done
start_mock
start_xmcd "$W/c.log" enc-c 32
for _ in $(seq 400); do grep -q "event=assigned" "$W/c.log" && break; sleep 0.05; done
"$LOAD" -b "$BS" --texts "$W/texts.tsv" --rate "$RATE" --tick-ms 100 --seconds "$secs" --repo "$W/repo" --swaps "$SWAPS" \
    --swap-every "$SWAP_EVERY" --swap-first 5 --swap-versions "$(IFS=,; echo "${names[*]}")" --pid-file "$W/pid" \
    --group enc-c --warmup 3 --model-bytes "$(du -sb "$W/repo/m0" | cut -f1)" \
    --check accounted,failed,versions,swap-p99,swap-rss,lag >"$W/c.out" 2>"$W/c.err"
rc=$?
stop_xmcd
grep -v '^load:' "$W/c.out"
grep "event=model_swap " "$W/c.log" | sed -n 's/.*load_ms=\([0-9.]*\).*/\1/p' | sort -n |
    awk '{v[NR]=$1} END{if (NR) printf "%d swaps logged by xmcd, load_ms min %.1f / median %.1f / max %.1f\n", NR, v[1], v[int((NR+1)/2)], v[NR]}'
stop_mock
[ $rc = 0 ] && echo "RESULT: PASS" || echo "RESULT: FAIL"
exit 0
}
