#!/bin/bash
# bench/sweep.sh: the defaults sweep (make bench section 10). Each setting that matters is moved one at a time
# away from xmc's defaults, everything else left at its default (not a full grid: 1 + 21 runs per dataset, not
# the product of the value lists), on Reuters, Yeast and two taxonomy catalogs (leaf labels; every path prefix of
# them as labels). Per dataset P@1, P@5 and the training process's CPU seconds (user + sys, one thread: wall clock on
# a shared machine moves with the others' load, CPU time much less); then, across the datasets,
# the mean P@1, the mean of each setting's P@1 rank and the rule's choice per parameter (below).
#
# The rule, stated once: within one parameter (its default and the values tried), the value with the highest
# mean P@1 over the datasets it applies to (TF-IDF settings do not apply to Yeast's dense features); it replaces
# the default only if that mean is at least SWEEP_MARGIN (0.10) P@1 above the default's, it loses no more than
# 0.5 P@1 on any one dataset, and its training takes at most 2x the default's summed time. Otherwise the
# default stays (a value within the margin is noise on these test sets, 3,019 to 10,000 documents).
#
# Catalogs: `xmc gen --taxonomy $DATA/taxonomy/categories.tsv --docs N+10000 --seed 1 --zipf 0.5`, first N for
# training, last 10,000 held out (SWEEP_DOCS = N, default 50,000: a moderate size, since this machine is shared;
# Zipf 0.5 so that most of the taxonomy's 8,516 leaves occur; the prefix catalog then has over 10^4 labels).
# Training runs with --threads 1 (times comparable across settings), evaluation with --threads 1.
#
# Environment: BUILD, DATA (as run.sh), SWEEP_DOCS (catalog training titles), SWEEP_SETS (which datasets, default
# "reuters yeast leaf prefix"), SWEEP_MARGIN, SWEEP_SETTINGS=FILE (lines "parameter|value|train options|eval
# options" in place of the list below, the first being the baseline: how the confirmation run in bench/SWEEP.md
# was made). Output: the table on stdout; SWEEP_TSV=FILE keeps the raw rows.
set -u -o pipefail
{ # parsed whole before it runs (safe to edit mid-run)

BUILD=${BUILD:-build}
DATA=${DATA:-../shared/data}
DOCS=${SWEEP_DOCS:-50000}
SETS=${SWEEP_SETS:-"reuters yeast leaf prefix"}
MARGIN=${SWEEP_MARGIN:-0.10}
HERE=$(cd "$(dirname "$0")" && pwd)
XMC=$(readlink -f "$BUILD/xmc")
TIMEV=/usr/bin/time
[ -x "$XMC" ] || { echo "sweep: $BUILD/xmc not built (run make)" >&2; exit 1; }
[ -x "$TIMEV" ] || { echo "sweep: $TIMEV missing (apt-get install time)" >&2; exit 1; }
WORK=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/xmc-sweep.XXXXXX") || exit 1
trap 'rm -rf "$WORK"' EXIT

# parameter|value shown|train options|eval options. The first row is the defaults; every other row changes one
# setting. A row without train options (beam, post: prediction settings) evaluates the default model with its
# eval options, and its training time is the default's.
SETTINGS=(
    "default|defaults (threshold 0.05, Cp 1, word:1 min_df 2, dual, beam 10, post l3-hinge, nr_splits 16, max_leaf 100, disentangle 1)||"
    "threshold|0.2|--threshold 0.2|"
    "threshold|0.1|--threshold 0.1|"
    "threshold|0.01|--threshold 0.01|"
    "cp|0.5|--cp 0.5|"
    "cp|2|--cp 2|"
    "cp|4|--cp 4|"
    "tfidf|word:1-2|--tfidf word:1-2,min_df=2|"
    "tfidf|word:1-3|--tfidf word:1-3,min_df=2|"
    "tfidf|word:1-2 min_df 1|--tfidf word:1-2,min_df=1|"
    "tfidf|word:1-2 + char_wb:3-5|--tfidf word:1-2,char_wb:3-5,min_df=2|"
    "solver|primal|--solver primal|"
    "beam|5||--beam 5"
    "beam|20||--beam 20"
    "post|l2-hinge||--post l2-hinge"
    "post|sigmoid||--post sigmoid"
    "nr_splits|4|--nr-splits 4|"
    "nr_splits|32|--nr-splits 32|"
    "max_leaf|20|--max-leaf-size 20|"
    "max_leaf|50|--max-leaf-size 50|"
    "max_leaf|200|--max-leaf-size 200|"
    "disentangle|2|--disentangle 2|"
)

if [ -n "${SWEEP_SETTINGS:-}" ]; then mapfile -t SETTINGS < <(grep -v '^#' "$SWEEP_SETTINGS" | grep .); fi

# the catalogs, made once
T=$DATA/taxonomy/categories.tsv
case " $SETS " in *" leaf "*|*" prefix "*)
    if [ -f "$T" ]; then
        "$XMC" gen --taxonomy "$T" --docs $((DOCS + 10000)) --seed 1 --zipf 0.5 --out "$WORK/cat.tsv" &&
        head -n "$DOCS" "$WORK/cat.tsv" >"$WORK/leaf.train" && tail -n 10000 "$WORK/cat.tsv" >"$WORK/leaf.test" &&
        for s in train test; do   # every path prefix of every label ("A > B > C" -> A, A > B, A > B > C)
            awk -F'\t' 'BEGIN{OFS="\t"} {n=split($1,L,","); out=""; delete seen
                for(i=1;i<=n;i++){m=split(L[i],P," > "); p=""
                    for(j=1;j<=m;j++){p=(j==1?P[1]:p " > " P[j]); if(!(p in seen)){seen[p]=1; out=out (out==""?"":",") p}}}
                print out, $2}' "$WORK/leaf.$s" >"$WORK/prefix.$s"
        done || { echo "sweep: catalog generation failed" >&2; exit 1; }
    else
        echo "sweep: $T absent, catalog datasets skipped"
        SETS=$(echo " $SETS " | sed 's/ leaf / /; s/ prefix / /')
    fi;;
esac

# input options of a dataset's training and test files (empty: dataset absent)
inputs() {
    case $1 in
        reuters) [ -f "$DATA/reuters/train.tsv" ] && echo "--train $DATA/reuters/train.tsv|--test $DATA/reuters/test.tsv";;
        yeast) [ -f "$DATA/yeast/yeast_train.txt" ] &&
               echo "--xc $DATA/yeast/yeast_train.txt --xc-feature-base 1 --xc-label-base 0|--xc $DATA/yeast/yeast_test.txt --xc-feature-base 1 --xc-label-base 0";;
        leaf|prefix) echo "--train $WORK/$1.train|--test $WORK/$1.test";;
    esac
}
describe() {
    case $1 in
        reuters) echo "Reuters-21578 ModApte-90: 7,770 train / 3,019 test docs, 90 labels";;
        yeast) echo "Yeast: 1,500 train / 917 test rows, 103 dense features, 14 labels";;
        leaf|prefix) echo "catalog ($1 labels): $DOCS train / 10,000 test titles, $(cut -f1 "$WORK/$1.train" | tr , '\n' | sort -u | wc -l) labels";;
    esac
}

RES=${SWEEP_TSV:-$WORK/sweep.tsv}
printf 'dataset\tparam\tvalue\tP@1\tP@5\ttrain_s\tmodel_kb\n' >"$RES"
echo "xmc defaults sweep, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, xmc $(git -C "$HERE/.." describe --always --dirty 2>/dev/null || echo '?')"
for d in $SETS; do
    io=$(inputs "$d")
    [ -n "$io" ] || { echo "sweep: $d absent, skipped"; continue; }
    tr_in=${io%%|*}; te_in=${io#*|}
    echo "  $(describe "$d")"
    for s in "${SETTINGS[@]}"; do
        IFS='|' read -r param value topt eopt <<<"$s"
        [ "$d" = yeast ] && [ "$param" = tfidf ] && continue
        m="$WORK/m_$d"
        if [ "$param" != default ] && [ -z "$topt" ]; then   # the default model, another prediction setting
            m="$WORK/m_${d}_default"
            secs=$(awk -F'\t' -v d="$d" '$1==d && $2=="default"{print $6}' "$RES")
            kb=$(du -sk "$m" | cut -f1)
        else
            rm -rf "$m"
            # shellcheck disable=SC2086
            if ! "$TIMEV" -f "%U %S" -o "$WORK/time" "$XMC" train $tr_in --model "$m" --threads 1 $topt >/dev/null 2>"$WORK/err"; then
                echo "sweep: FAILED: $d $param $value" >&2; tail -3 "$WORK/err" >&2; continue
            fi
            secs=$(tail -1 "$WORK/time" | awk '{printf "%.2f", $1 + $2}')
            kb=$(du -sk "$m" | cut -f1)
        fi
        # shellcheck disable=SC2086
        "$XMC" eval --model "$m" $te_in --threads 1 $eopt >"$WORK/eval" 2>&1 || { echo "sweep: eval FAILED: $d $param $value" >&2; continue; }
        p1=$(awk -F'\t' '$1=="P@1"{print $2}' "$WORK/eval"); p5=$(awk -F'\t' '$1=="P@5"{print $2}' "$WORK/eval")
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$d" "$param" "$value" "$p1" "$p5" "$secs" "$kb" >>"$RES"
        [ "$param" = default ] && cp -r "$m" "$WORK/m_${d}_default"
    done
    rm -rf "$WORK/m_${d}_default"
done
echo
/usr/bin/python3 "$HERE/sweep_table.py" "$RES" "$MARGIN"
}
