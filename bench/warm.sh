#!/bin/bash
# bench/warm.sh: section 10 of `make bench`: a warm-started retraining (`xmc train --warm`, docs/repository.md)
# beside a full retraining on the same window. A serving model is trained on a catalog's first records less those
# of NEW held-out labels; the window is those records plus a batch of later records, and brings the held-out
# labels' records back (new labels for the serving model). On the window: a full retrain with the primal solver
# (the warm start's solver, so the comparison is of the start alone), the warm start from the serving version at
# the default tolerance scale (0.3) and at 1 (the cold solver's tolerance), and a full retrain with the default
# dual solver for reference. Columns: process wall time and peak RSS
# (/usr/bin/time -v), xmc's in-process rankers time, the solvers' iterations (Newton steps / dual passes), P@1 and
# P@5 on the held-out test records and P@1 on those of them that carry a new label. Every figure is of this run.
#
# Environment: BUILD (default build), THREADS (training threads, default 2), WARM_BIG (1: also the 10^5-label
# catalog of 10^6 records; default 0, heavy: about 20 minutes on 2 cores), WARM_NEW (held-out labels per
# catalog, default 20 / 200 big), WARM_BATCH (records in the window's batch, default 2000 / 10000 big).
set -u -o pipefail
{
BUILD=${BUILD:-build}
THREADS=${THREADS:-2}
HERE=$(cd "$(dirname "$0")" && pwd)
XMC=$(readlink -f "$BUILD/xmc")
TIMEV=/usr/bin/time
[ -x "$XMC" ] || { echo "warm bench: $BUILD/xmc not built (run make)" >&2; exit 1; }
WORK=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/xmc-warm.XXXXXX") || exit 1
trap 'rm -rf "$WORK"' EXIT

timed() {   # timed NAME CMD...: stdout -> NAME.out, stderr -> NAME.err, /usr/bin/time -v -> NAME.time
    local name=$1; shift
    if ! "$TIMEV" -v -o "$WORK/$name.time" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"; then
        echo "warm bench: FAILED: $*" >&2; tail -3 "$WORK/$name.err" >&2; return 1
    fi
}
wall() { awk -F': ' '/Elapsed \(wall clock\)/{n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; printf "%.1f", s}' "$WORK/$1.time"; }
rss() { awk -F': ' '/Maximum resident set size/{printf "%.0f", $2/1024}' "$WORK/$1.time"; }
kv() { awk -F'\t' -v k="$2" '$1==k{print $2; exit}' "$WORK/$1.out"; }
rankers() { sed -n 's/.*, \([0-9.]*\) s rankers,.*/\1/p' "$WORK/$1.err" | tail -1; }
iters() { sed -n 's/^solver iterations: \([0-9]*\)/\1/p' "$WORK/$1.err" | tail -1; }

# one_case ID NAME CATALOG NSERVE NBATCH NTEST NEW: the catalog's lines [1, NSERVE] less NEW labels' records train the
# serving model; the window is lines [1, NSERVE + NBATCH]; the last NTEST lines are the test set.
one_case() {
    local id0=$1 title=$2 cat=$3 nserve=$4 nbatch=$5 ntest=$6 nnew=$7
    local name=$id0 d="$WORK/$id0"
    mkdir -p "$d"
    head -n $((nserve + nbatch)) "$cat" >"$d/window.tsv"
    tail -n "$ntest" "$cat" >"$d/test.tsv"
    # the held-out labels: spread over the most frequent twentieth of the serving part's labels (every k-th of them),
    # so that the test set has records of them
    head -n "$nserve" "$cat" | cut -f1 | tr ',' '\n' | sort | uniq -c | sort -k1,1nr -k2 |
        awk -v n="$nnew" '{sub(/^ *[0-9]+ /, ""); c[NR] = $0} END {k = int(NR / 20 / (n + 1)); if (k < 1) k = 1; for (i = k; i <= NR && n > 0; i += k) {print c[i]; n--}}' \
        >"$d/new.txt"
    awk -F'\t' 'NR == FNR {nw[$0] = 1; next} {split($1, l, ","); h = 0; for (i in l) if (l[i] in nw) h = 1; if (!h) print}' \
        "$d/new.txt" <(head -n "$nserve" "$cat") >"$d/serve.tsv"
    awk -F'\t' 'NR == FNR {nw[$0] = 1; next} {split($1, l, ","); for (i in l) if (l[i] in nw) {print; next}}' \
        "$d/new.txt" "$d/test.tsv" >"$d/test-new.tsv"
    echo "### $title: serving model on $(wc -l <"$d/serve.tsv") records ($nnew labels held out), window $(wc -l <"$d/window.tsv") records, test $ntest ($(wc -l <"$d/test-new.tsv") with a held-out label)"
    echo
    nice -n 10 "$XMC" train --quiet --train "$d/serve.tsv" --model "$d/repo" --version serving --solver primal \
        --threads "$THREADS" >/dev/null || { echo "serving model failed"; return; }
    echo "| model on the window | train s (process) | rankers s (in-process) | solver iterations | peak RSS MB | P@1 | P@5 | P@1 new-label records |"
    echo "|---|---|---|---|---|---|---|---|"
    local row
    for row in "full retrain, primal|full|--solver primal" \
               "warm start from serving, primal (default --warm-eps-scale 0.3)|warm|--solver primal --warm $d/repo --warm-version serving" \
               "warm start from serving, primal, --warm-eps-scale 1|warm1|--solver primal --warm $d/repo --warm-version serving --warm-eps-scale 1" \
               "full retrain, dual (default solver)|dual|"; do
        IFS='|' read -r label id opts <<<"$row"
        # shellcheck disable=SC2086
        timed "$name.$id" nice -n 10 "$XMC" train --train "$d/window.tsv" --model "$d/repo" --version "$id" --no-current \
            --threads "$THREADS" $opts || { echo "| $label | failed |"; continue; }
        "$XMC" eval --model "$d/repo/$id" --test "$d/test.tsv" >"$WORK/$name.$id.eval.out" 2>/dev/null
        "$XMC" eval --model "$d/repo/$id" --test "$d/test-new.tsv" >"$WORK/$name.$id.evalnew.out" 2>/dev/null
        printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$label" "$(wall "$name.$id")" "$(rankers "$name.$id")" \
            "$(iters "$name.$id")" "$(rss "$name.$id")" "$(kv "$name.$id.eval" P@1)" "$(kv "$name.$id.eval" P@5)" \
            "$(kv "$name.$id.evalnew" P@1)"
    done
    local warm_line
    warm_line=$(grep '^warm start:' "$WORK/$name.warm.err" | tail -1)
    echo
    echo "warm start: ${warm_line#warm start: }"
    echo
    rm -rf "$d"
}

echo "## 11. Warm-started retraining vs a full retrain on the same window"
echo
echo "Trainings run under nice -n 10 with --threads $THREADS. P@k in percent; 'new-label records': test records that"
echo "carry a label the serving model never saw."
echo
"$XMC" gen --taxonomy "$HERE/../data/demo/categories.tsv" --docs 44000 --seed 7 --out "$WORK/demo.tsv" ||
    { echo "gen failed"; exit 1; }
one_case demo "demo catalog (xmc gen --taxonomy data/demo/categories.tsv --docs 44000 --seed 7)" "$WORK/demo.tsv" \
    40000 "${WARM_BATCH:-2000}" 2000 "${WARM_NEW:-20}"
rm -f "$WORK/demo.tsv"
if [ "${WARM_BIG:-0}" = 1 ]; then
    "$XMC" gen --labels 100000 --docs 1020000 --seed 1 --zipf 0.5 --out "$WORK/big.tsv" || { echo "gen failed"; exit 1; }
    one_case big "10^5-label synthetic catalog (xmc gen --labels 100000 --docs 1020000 --seed 1 --zipf 0.5)" "$WORK/big.tsv" \
        1000000 "${WARM_BATCH:-10000}" 10000 "${WARM_NEW:-200}"
else
    echo "(the 10^5-label, 10^6-record case runs with WARM_BIG=1)"
fi
exit 0
}
