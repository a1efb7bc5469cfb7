#!/bin/bash
# bench/disentangle.sh: section 7 of `make bench`: label disentanglement (`xmc train --disentangle K`) with
# K = 1, 2, 4 side by side on Reuters and on a synthetic catalog with planted two-meaning labels (`xmc gen
# --plant`): P@1/3/5 and R@10 at the model's beam (10) and at beam 2, training wall time, model size on disk,
# and how many labels took 2 or more leaves. Every figure is measured in this run.
#
# Environment: BUILD (default build), DATA (default ../shared/data), THREADS (training threads, default 2),
# DIS_LABELS / DIS_DOCS / DIS_PLANT (the catalog: default 5000 labels, 60000 records, 250 planted; 80 % train),
# DIS_LEAF (max leaf size for Reuters, default 8: with 90 labels the default 100 makes a one-layer tree, where
# a label has only one leaf to be in), DIS_K (the K values, default "1 2 4").
set -u -o pipefail
{
BUILD=${BUILD:-build}
DATA=${DATA:-../shared/data}
THREADS=${THREADS:-2}
XMC=$(readlink -f "$BUILD/xmc")
[ -x "$XMC" ] || { echo "disentangle bench: $BUILD/xmc not built (run make)" >&2; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/xmc-dis.XXXXXX") || exit 1
trap 'rm -rf "$WORK"' EXIT

kv() { awk -F'\t' -v k="$2" '$1==k{print $2; exit}' "$1"; }

# row NAME TRAIN TEST K [train options...]: one table row
row() {
    local name=$1 train=$2 test=$3 k=$4; shift 4
    local repo="$WORK/$name-k$k" t0 t1
    t0=$(date +%s.%N)
    if ! "$XMC" train --train "$train" --model "$repo" --disentangle "$k" --threads "$THREADS" --quiet "$@" \
        >/dev/null 2>"$WORK/err"; then
        echo "| $name | $k | training failed: $(tail -1 "$WORK/err") |"; return
    fi
    t1=$(date +%s.%N)
    "$XMC" eval --model "$repo" --test "$test" -k 10 >"$WORK/e10" 2>&1
    "$XMC" eval --model "$repo" --test "$test" -k 10 --beam 2 >"$WORK/e2" 2>&1
    local size multi
    size=$(du -sb "$repo" | cut -f1)
    multi=$("$XMC" inspect --model "$repo" | awk '/^  [2-6] leaves/{n+=$3} END{print n+0}')
    printf '| %s | %s | %s | %s | %s | %s | %s / %s | %.2f | %.2f | %s |\n' "$name" "$k" \
        "$(kv "$WORK/e10" P@1)" "$(kv "$WORK/e10" P@3)" "$(kv "$WORK/e10" P@5)" "$(kv "$WORK/e10" R@10)" \
        "$(kv "$WORK/e2" P@1)" "$(kv "$WORK/e2" R@10)" "$(echo "$t1 - $t0" | bc)" "$(echo "$size / 1048576" | bc -l)" \
        "$multi"
}

echo "## 7. Label disentanglement (--disentangle K)"
echo
echo "| data | K | P@1 | P@3 | P@5 | R@10 | beam 2: P@1 / R@10 | train s ($THREADS threads) | model MB | labels in 2+ leaves |"
echo "|---|---|---|---|---|---|---|---|---|---|"
LEAF=${DIS_LEAF:-8}
if [ -f "$DATA/reuters/train.tsv" ]; then
    for k in ${DIS_K:-1 2 4}; do
        row "Reuters (max leaf $LEAF)" "$DATA/reuters/train.tsv" "$DATA/reuters/test.tsv" "$k" --max-leaf-size "$LEAF"
    done
else
    echo "| Reuters | - | not found under $DATA/reuters |"
fi
L=${DIS_LABELS:-5000} N=${DIS_DOCS:-60000} P=${DIS_PLANT:-250}
"$XMC" gen --labels "$L" --docs "$N" --seed 7 --plant "$P" --out "$WORK/cat.tsv"
head -n $((N * 8 / 10)) "$WORK/cat.tsv" >"$WORK/cat-train.tsv"
tail -n +$((N * 8 / 10 + 1)) "$WORK/cat.tsv" >"$WORK/cat-test.tsv"
for k in ${DIS_K:-1 2 4}; do
    row "catalog $L labels, $P planted" "$WORK/cat-train.tsv" "$WORK/cat-test.tsv" "$k"
done
exit 0
}
