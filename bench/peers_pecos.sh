#!/bin/bash
# bench/peers_pecos.sh: xmc's defaults (and a second xmc row, word bigrams weighted 0.5) beside PECOS's own XR-Linear
# (make bench section 6; ../shared/PEERS.md says how to build both peers from source here).
#
# Data: Reuters ModApte-90 ($DATA/reuters) and a product catalog from the Shopify taxonomy
# (`xmc gen --taxonomy $DATA/taxonomy/categories.tsv --docs N+10000 --seed 1`, the last 10,000 held out), once with
# its leaf labels and once with every path prefix of them as labels. Everything single-threaded. Per row: P@1/3/5 (a
# test label the model lacks is a miss), train s and peak RSS of the whole training process (/usr/bin/time -v;
# PECOS's in one process with its predict, so its RSS is of both; napkinXC's without featurizing, since it is fed
# PECOS's TF-IDF rows, the same for both, so its row compares the learner).
#
# Environment: BUILD (default build), DATA (default ../shared/data), PECOS_SRC (a PECOS source tree with its
# C++ extension built; default /tmp/pecos-src), NXC_BIN (napkinXC's nxc binary; default /tmp/nxc/build/nxc),
# PEERS_DOCS (catalog training docs, default 200000), PEERS_THREADS (the thread counts each tool trains and predicts
# with, default "1"; "1 2" gives a row per tool and count). A peer not found is reported as absent, not skipped
# silently.
set -u -o pipefail
{
BUILD=${BUILD:-build}
DATA=${DATA:-../shared/data}
PECOS_SRC=${PECOS_SRC:-/tmp/pecos-src}
NXC_BIN=${NXC_BIN:-/tmp/nxc/build/nxc}
DOCS=${PEERS_DOCS:-200000}
THREADS=${PEERS_THREADS:-1}
# xmc's second row: unigrams plus word bigrams weighted 0.5 (bench/SWEEP.md, addendum of 2026-12-07), the setting
# that is above PECOS on the 200k path-prefix catalog, at 1.2-1.5x the defaults' training time
BIGRAMS="word:1:min_df=1,word:2:min_df=1:weight=0.5"
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
XMC=$(readlink -f "$BUILD/xmc")
[ -x "$XMC" ] || { echo "peers_pecos: $BUILD/xmc not built (run make)" >&2; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/xmc-peers.XXXXXX") || exit 1
trap 'rm -rf "$WORK"' EXIT

have_pecos=0
PYTHONPATH=$PECOS_SRC $PY -c 'from pecos.xmc.xlinear.model import XLinearModel' 2>/dev/null && have_pecos=1
have_nxc=0; [ -x "$NXC_BIN" ] && have_nxc=1

timed() {   # timed NAME CMD...: stdout -> NAME.out, stderr -> NAME.err, /usr/bin/time -v -> NAME.time
    local name=$1; shift
    if ! /usr/bin/time -v -o "$WORK/$name.time" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"; then
        echo "peers_pecos: FAILED: $*" >&2; tail -5 "$WORK/$name.err" >&2; return 1
    fi
}
wall() { awk -F': ' '/Elapsed \(wall clock\)/{n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; printf "%.2f", s}' "$WORK/$1.time"; }
rss() { awk -F': ' '/Maximum resident set size/{printf "%.0f", $2/1024}' "$WORK/$1.time"; }
kv() { awk -F'\t' -v k="$2" '$1==k{print $2; exit}' "$WORK/$1.out"; }
phases() {  # the "(F s features, T s tree, R s rankers, W s write)" of `xmc train` -> their sum
    sed -n 's/.*(\([0-9.]*\) s features, \([0-9.]*\) s tree, \([0-9.]*\) s rankers, \([0-9.]*\) s write).*/\1 \2 \3 \4/p' \
        "$WORK/$1.err" | tail -1 | awk '{printf "%.2f", $1 + $2 + $3 + $4}'
}
fmt='| %-44s | %-32s | %6s | %6s | %6s | %8s | %9s | %7s |\n'

echo "## 6. xmc defaults beside PECOS and napkinXC (built from source, ../shared/PEERS.md), threads: $THREADS"
echo
if [ $have_pecos = 1 ]; then echo "PECOS: $PECOS_SRC ($(git -C "$PECOS_SRC" describe --tags --always 2>/dev/null || echo '?'))"
else echo "PECOS: absent (no importable pecos with its C++ extension under PECOS_SRC=$PECOS_SRC): its rows are skipped"; fi
if [ $have_nxc = 1 ]; then echo "napkinXC: $NXC_BIN"
else echo "napkinXC: absent (no nxc binary at NXC_BIN=$NXC_BIN): its rows are skipped"; fi
[ $have_nxc = 1 ] && [ $have_pecos = 0 ] && echo "napkinXC is fed PECOS's TF-IDF rows: without PECOS its rows are skipped too"
echo
echo "train s: in-process training, featurizing included (napkinXC: its train process, on ready features);"
echo "process s and RSS: the training process (PECOS's also predicts the test set in that process)."
echo
printf "$fmt" "data" "tool" "P@1" "P@3" "P@5" "train s" "process s" "RSS MB"
printf '|%s|%s|%s|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..46})" "$(printf -- '-%.0s' {1..34})" "--------" "--------" \
    "--------" "----------" "-----------" "---------"

# one_dataset NAME LABEL TRAIN TEST: every tool at each thread count of THREADS
one_dataset() {
    local th
    for th in $THREADS; do one_dataset_threads "$@" "$th"; set -- "$1" "" "$3" "$4"; done
}
# one_dataset_threads NAME LABEL TRAIN TEST THREADS
one_dataset_threads() {
    local n=$1 label=$2 tr=$3 te=$4 t=$5 tt=""
    [ "$THREADS" = 1 ] || tt=", $5 thr"
    local row shown opts
    for row in defaults bigrams; do
        if [ $row = defaults ]; then shown="xmc defaults$tt"; opts=()
        else shown="xmc, bigrams weighted 0.5$tt"; opts=(--tfidf "$BIGRAMS"); fi
        if timed "$n.xtrain" "$XMC" train --train "$tr" --model "$WORK/$n.model" --threads "$t" "${opts[@]}" &&
           timed "$n.xeval" "$XMC" eval --model "$WORK/$n.model" --test "$te" --threads 1; then
            printf "$fmt" "$label" "$shown" "$(kv "$n.xeval" P@1)" "$(kv "$n.xeval" P@3)" "$(kv "$n.xeval" P@5)" \
                "$(phases "$n.xtrain")" "$(wall "$n.xtrain")" "$(rss "$n.xtrain")"
        fi
        rm -rf "$WORK/$n.model"
        label=""
    done
    [ $have_pecos = 1 ] || return 0
    local nxc_dir="$WORK/$n.nxc" nxc=()
    [ $have_nxc = 1 ] && nxc=(--nxc "$nxc_dir")
    if timed "$n.pecos" env PYTHONPATH="$PECOS_SRC" $PY "$HERE/peer_pecos.py" "$tr" "$te" --threads "$t" "${nxc[@]}"; then
        printf "$fmt" "" "PECOS $(git -C "$PECOS_SRC" describe --tags --always 2>/dev/null) XR-Linear$tt" "$(kv "$n.pecos" P@1)" \
            "$(kv "$n.pecos" P@3)" "$(kv "$n.pecos" P@5)" "$(kv "$n.pecos" train_s)" "$(wall "$n.pecos")" "$(rss "$n.pecos")"
    fi
    [ $have_nxc = 1 ] && [ -f "$nxc_dir/train.txt" ] || return 0
    if timed "$n.nxtrain" "$NXC_BIN" train -i "$nxc_dir/train.txt" -o "$nxc_dir/model" -m plt -t "$t" &&
       timed "$n.nxpred" "$NXC_BIN" predict -i "$nxc_dir/test.txt" -o "$nxc_dir/model" --topK 5 -t 1; then
        $PY "$HERE/peer_pecos.py" --score-nxc "$nxc_dir/test.txt" "$WORK/$n.nxpred.out" >"$WORK/$n.nxscore.out" &&
        printf "$fmt" "" "napkinXC PLT (PECOS's features)$tt" "$(kv "$n.nxscore" P@1)" "$(kv "$n.nxscore" P@3)" \
            "$(kv "$n.nxscore" P@5)" "$(wall "$n.nxtrain")" "$(wall "$n.nxtrain")" "$(rss "$n.nxtrain")"
    fi
    rm -rf "$nxc_dir"
}

R=$DATA/reuters
if [ -f "$R/train.tsv" ] && [ -f "$R/test.tsv" ]; then
    one_dataset reuters "Reuters ModApte-90 (90 labels)" "$R/train.tsv" "$R/test.tsv"
else
    echo "Reuters: $R absent, skipped"
fi
T=$DATA/taxonomy/categories.tsv
if [ -f "$T" ]; then
    "$XMC" gen --taxonomy "$T" --docs $((DOCS + 10000)) --seed 1 --out "$WORK/cat.tsv" &&
    head -n "$DOCS" "$WORK/cat.tsv" >"$WORK/leaf.train" && tail -n 10000 "$WORK/cat.tsv" >"$WORK/leaf.test" &&
    for s in train test; do   # every path prefix of every label ("A > B > C" -> A, A > B, A > B > C)
        awk -F'\t' 'BEGIN{OFS="\t"} {n=split($1,L,","); out=""; delete seen
            for(i=1;i<=n;i++){m=split(L[i],P," > "); p=""
                for(j=1;j<=m;j++){p=(j==1?P[1]:p " > " P[j]); if(!(p in seen)){seen[p]=1; out=out (out==""?"":",") p}}}
            print out, $2}' "$WORK/leaf.$s" >"$WORK/prefix.$s"
    done || { echo "catalog generation failed"; exit 0; }
    one_dataset leaf "catalog, $DOCS titles, $(cut -f1 "$WORK/leaf.train" | tr , '\n' | sort -u | wc -l) leaf labels" \
        "$WORK/leaf.train" "$WORK/leaf.test"
    one_dataset prefix "same, $(cut -f1 "$WORK/prefix.train" | tr , '\n' | sort -u | wc -l) path-prefix labels" \
        "$WORK/prefix.train" "$WORK/prefix.test"
else
    echo "taxonomy: $T absent, catalog rows skipped"
fi
exit 0
}
