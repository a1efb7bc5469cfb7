#!/bin/bash
# bench/peers_table.sh: README's peers table in one run (make bench section 13; issue 12, "What it must show"):
# xmc defaults beside PECOS, napkinXC and scikit-learn on Reuters, Yeast and two taxonomy catalogs, one markdown
# table with P@1/3/5, train s at 1 and 2 threads, peak RSS of the 1-thread training process and in-process
# prediction µs/doc at batch 1 and 256 (xmc and PECOS, one thread, on the same test sets), then the issue's aims
# checked against that table.
#
# Data: Reuters ModApte-90 ($DATA/reuters, text); Yeast ($DATA/yeast, 103 dense features, no text: every tool runs
# on its features as given, the TF-IDF peers too, and its µs/doc is features in); a product catalog from the Shopify
# taxonomy (`xmc gen --taxonomy $DATA/taxonomy/categories.tsv --docs PEERS_DOCS+10000 --seed 1`, the last 10,000
# held out), once with its leaf labels and once with every path prefix of them as labels (as bench/peers_pecos.sh).
#
# Tools, each as its own process under /usr/bin/time -v:
#   xmc defaults: `xmc train --threads 1` and `--threads 2`; P@k from `xmc eval --threads 1` of the 1-thread model;
#     µs/doc from build/bench/batch_bench (xmc_classify_batch in calls of 1 and of 256 texts; Yeast:
#     xmc_classify_features one row at a time, there being no batched call for feature input);
#   PECOS (PECOS_SRC, ../shared/PEERS.md): bench/peer_pecos.py, its own Tfidf pipeline (Yeast: --xc, its features),
#     at 1 thread (P@k, RSS) and at 2 threads with --batch-bench (its predict-only model, Tfidf.predict + predict);
#   napkinXC PLT (NXC_BIN): fed PECOS's TF-IDF rows of the same text (exported by the 1-thread PECOS run), so its
#     row is the learner on ready features; on Yeast the feature file itself;
#   scikit-learn one-vs-rest LinearSVC C=1 (bench/peer_sklearn.py, TfidfVectorizer word 1-2 grams; Yeast: features)
#     with --jobs 1 and --jobs 2, each under a time cap (TABLE_SK_CAP seconds): a run past it prints "timed out
#     after N s" in its cells.
# train s: in-process training time with featurizing for xmc (the sum of `xmc train`'s phases), PECOS (train_s) and
# scikit-learn (fit_s); napkinXC: its whole train process on ready features. A peer that is not there gets a row
# saying so and how to build it.
#
# Environment: BUILD (default build), DATA (default ../shared/data), PECOS_SRC (default /tmp/pecos-src), NXC_BIN
# (default /tmp/nxc/build/nxc), PEERS_DOCS (catalog training titles, default 50000), TABLE_N (test texts timed for
# µs/doc, default 3000), TABLE_SK_CAP (scikit-learn's time cap per training process, s, default 600), BENCH_TMP.
set -u -o pipefail
{ # one compound command: bash parses it all before running it
BUILD=${BUILD:-build}
DATA=${DATA:-../shared/data}
PECOS_SRC=${PECOS_SRC:-/tmp/pecos-src}
NXC_BIN=${NXC_BIN:-/tmp/nxc/build/nxc}
DOCS=${PEERS_DOCS:-50000}
N=${TABLE_N:-3000}
CAP=${TABLE_SK_CAP:-600}
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
XMC=$(readlink -f "$BUILD/xmc")
BB=$(readlink -f "$BUILD/bench/batch_bench")
if [ ! -x "$XMC" ] || [ ! -x "$BB" ]; then echo "peers_table: $BUILD/xmc or $BUILD/bench/batch_bench not built (run make)" >&2; exit 1; fi
WORK=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/xmc-table.XXXXXX") || exit 1
trap 'rm -rf "$WORK"' EXIT
export OPENBLAS_NUM_THREADS=1   # "1 thread" means one (numpy/scipy's BLAS); the tools take their thread counts as options

have_pecos=0
PYTHONPATH=$PECOS_SRC $PY -c 'from pecos.xmc.xlinear.model import XLinearModel' 2>/dev/null && have_pecos=1
have_nxc=0; [ -x "$NXC_BIN" ] && have_nxc=1
have_sk=0; $PY -c 'import sklearn, numpy, scipy' 2>/dev/null && have_sk=1
PECOS_HOW="not built here: clone github:amzn/pecos to PECOS_SRC=$PECOS_SRC and compile pecos/core/libpecos.cpp (../shared/PEERS.md)"
NXC_HOW="not built here: clone github:mwydmuch/napkinXC, checkout 0.7.2, cmake build; NXC_BIN=$NXC_BIN (../shared/PEERS.md)"
SK_HOW="not installed here: apt-get install python3-sklearn (bench/install-deps.sh)"

# timed NAME CMD...: stdout -> NAME.out, stderr -> NAME.err, /usr/bin/time -v -> NAME.time; returns CMD's status
timed() {
    local name=$1; shift
    /usr/bin/time -v -o "$WORK/$name.time" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"
    local rc=$?
    [ $rc = 0 ] || { echo "peers_table: FAILED ($rc): $*" >&2; tail -3 "$WORK/$name.err" >&2; }
    return $rc
}
wall() { awk -F': ' '/Elapsed \(wall clock\)/{n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; printf "%.2f", s}' "$WORK/$1.time"; }
rss() { awk -F': ' '/Maximum resident set size/{printf "%.0f", $2/1024}' "$WORK/$1.time"; }
kv() { awk -F'\t' -v k="$2" '$1==k{print $2; exit}' "$WORK/$1.out"; }
phases() {  # the "(F s features, T s tree, R s rankers, W s write)" of `xmc train` -> their sum
    sed -n 's/.*(\([0-9.]*\) s features, \([0-9.]*\) s tree, \([0-9.]*\) s rankers, \([0-9.]*\) s write).*/\1 \2 \3 \4/p' \
        "$WORK/$1.err" | tail -1 | awk '{printf "%.2f", $1 + $2 + $3 + $4}'
}
bbget() { tr ' ' '\n' <<<"$1" | sed -n "/^$2\$/{n;p}"; }   # the value after KEY in batch_bench's line
num() { [[ "$1" =~ ^[0-9]+([.][0-9]+)?$ ]]; }

ROWS=()                  # the table's rows, in order
declare -A P1 T1 T2      # "set|tool" -> P@1, train s at 1 and 2 threads (numbers only)
SETS=()                  # "set|label"
fmt='| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |'
row() { ROWS+=("$(printf "$fmt" "$@")"); }
note() { ROWS+=("$(printf '| %s | %s: %s | | | | | | | | |' "$1" "$2" "$3")"); }

# one_set NAME LABEL KIND(tsv|xc) TRAIN TEST
one_set() {
    local n=$1 label=$2 kind=$3 tr=$4 te=$5 shown
    SETS+=("$n|$label")
    shown=$label
    local xin=(--train "$tr") xte=(--test "$te") bbx=() pxc=()
    if [ "$kind" = xc ]; then
        xin=(--xc "$tr" --xc-feature-base 1 --xc-label-base 0); xte=(--xc "$te" --xc-feature-base 1 --xc-label-base 0)
        bbx=(--xc 1); pxc=(--xc)
    fi
    echo "peers_table: $n: xmc" >&2
    # ---- xmc defaults
    if timed "$n.x1" "$XMC" train "${xin[@]}" --model "$WORK/$n.x1" --threads 1 &&
       timed "$n.x2" "$XMC" train "${xin[@]}" --model "$WORK/$n.x2" --threads 2 &&
       timed "$n.xe" "$XMC" eval --model "$WORK/$n.x1" "${xte[@]}" --threads 1; then
        local bb b1 b256
        bb=$("$BB" "${bbx[@]}" "$WORK/$n.x1" "$te" "$N" 256 3) || { echo "peers_table: batch_bench on $n: $bb" >&2; bb=""; }
        b1=$(bbget "$bb" batch1_us_per_doc); b256=$(bbget "$bb" batch256_us_per_doc)
        [ "$kind" = xc ] && b256="– (no batched call for features)"
        P1[$n|xmc]=$(kv "$n.xe" P@1); T1[$n|xmc]=$(phases "$n.x1"); T2[$n|xmc]=$(phases "$n.x2")
        row "$shown" "**xmc defaults**" "$(kv "$n.xe" P@1)" "$(kv "$n.xe" P@3)" "$(kv "$n.xe" P@5)" "${T1[$n|xmc]}" \
            "${T2[$n|xmc]}" "$(rss "$n.x1")" "${b1:-failed}" "${b256:-failed}"
    else
        row "$shown" "**xmc defaults**" "failed (see stderr)" "" "" "" "" "" "" ""
    fi
    rm -rf "$WORK/$n.x1" "$WORK/$n.x2"
    shown=""

    # ---- PECOS (and the TF-IDF rows napkinXC learns from)
    local nxc_dir="$WORK/$n.nxc" nxc=()
    [ $have_nxc = 1 ] && [ "$kind" = tsv ] && nxc=(--nxc "$nxc_dir")
    if [ $have_pecos = 1 ]; then
        echo "peers_table: $n: PECOS" >&2
        if timed "$n.p1" env PYTHONPATH="$PECOS_SRC" $PY "$HERE/peer_pecos.py" "$tr" "$te" --threads 1 "${pxc[@]}" "${nxc[@]}" &&
           timed "$n.p2" env PYTHONPATH="$PECOS_SRC" $PY "$HERE/peer_pecos.py" "$tr" "$te" --threads 2 "${pxc[@]}" \
                 --batch-bench "$N"; then
            P1[$n|PECOS]=$(kv "$n.p1" P@1); T1[$n|PECOS]=$(kv "$n.p1" train_s); T2[$n|PECOS]=$(kv "$n.p2" train_s)
            row "" "PECOS $PECOS_VER XR-Linear$([ "$kind" = xc ] && echo ' (on the features)')" "$(kv "$n.p1" P@1)" \
                "$(kv "$n.p1" P@3)" "$(kv "$n.p1" P@5)" "${T1[$n|PECOS]}" "${T2[$n|PECOS]}" "$(rss "$n.p1")" \
                "$(kv "$n.p2" pecos_batch1_us)" "$(kv "$n.p2" pecos_batch256_us)"
        else
            row "" "PECOS" "failed (see stderr)" "" "" "" "" "" "" ""
        fi
    else
        note "" "PECOS" "$PECOS_HOW"
    fi

    # ---- napkinXC PLT
    local ntr=$tr nte=$te
    [ "$kind" = tsv ] && ntr=$nxc_dir/train.txt nte=$nxc_dir/test.txt
    if [ $have_nxc = 0 ]; then
        note "" "napkinXC PLT" "$NXC_HOW"
    elif [ ! -f "$ntr" ]; then
        note "" "napkinXC PLT" "not run: it learns from PECOS's TF-IDF rows, which this run lacks (PECOS absent or failed)"
    else
        echo "peers_table: $n: napkinXC" >&2
        mkdir -p "$nxc_dir"
        if timed "$n.n1" "$NXC_BIN" train -i "$ntr" -o "$nxc_dir/m1" -m plt -t 1 &&
           timed "$n.n2" "$NXC_BIN" train -i "$ntr" -o "$nxc_dir/m2" -m plt -t 2 &&
           timed "$n.np" "$NXC_BIN" predict -i "$nte" -o "$nxc_dir/m1" --topK 5 -t 1 &&
           $PY "$HERE/peer_pecos.py" --score-nxc "$nte" "$WORK/$n.np.out" >"$WORK/$n.ns.out"; then
            P1[$n|napkinXC]=$(kv "$n.ns" P@1); T1[$n|napkinXC]=$(wall "$n.n1"); T2[$n|napkinXC]=$(wall "$n.n2")
            row "" "napkinXC $NXC_VER PLT ($([ "$kind" = xc ] && echo 'the features' || echo "PECOS's TF-IDF rows"))" \
                "$(kv "$n.ns" P@1)" "$(kv "$n.ns" P@3)" "$(kv "$n.ns" P@5)" "${T1[$n|napkinXC]}" "${T2[$n|napkinXC]}" \
                "$(rss "$n.n1")" "–" "–"
        else
            row "" "napkinXC PLT" "failed (see stderr)" "" "" "" "" "" "" ""
        fi
    fi
    rm -rf "$nxc_dir"

    # ---- scikit-learn one-vs-rest LinearSVC, each training process under the cap
    if [ $have_sk = 0 ]; then
        note "" "scikit-learn LinearSVC" "$SK_HOW"
        return 0
    fi
    echo "peers_table: $n: scikit-learn (cap $CAP s per training)" >&2
    local j c=() st=() r1="" pkl=""
    for j in 1 2; do
        timed "$n.s$j" timeout -k 10 "$CAP" $PY "$HERE/peer_sklearn.py" train "$kind" "$tr" "$WORK/$n.s$j.pkl" --jobs "$j"
        case $? in
            0) st[j]=$(printf %.2f "$(kv "$n.s$j" fit_s)"); [ -n "$pkl" ] || pkl=$WORK/$n.s$j.pkl
               [ "$j" = 1 ] && r1=$(rss "$n.s1") ;;
            124|137) st[j]="timed out after $CAP s" ;;
            *) st[j]="failed" ;;
        esac
    done
    num "${st[1]}" && T1[$n|sklearn]=${st[1]}
    num "${st[2]}" && T2[$n|sklearn]=${st[2]}
    if [ -n "$pkl" ] && timed "$n.sp" $PY "$HERE/peer_sklearn.py" predict "$kind" "$te" "$pkl"; then
        c=("$(kv "$n.sp" P@1)" "$(kv "$n.sp" P@3)" "$(kv "$n.sp" P@5)")
        P1[$n|sklearn]=${c[0]}
    elif [ -n "$pkl" ]; then
        c=("predict failed" "" "")
    else
        c=("${st[1]}" "${st[1]}" "${st[1]}")
    fi
    local from=""   # the P@k are of the 1-process model, or of the 2-process one when only that finished
    [ -n "$pkl" ] && [ "$pkl" = "$WORK/$n.s2.pkl" ] && from=", P@k of the --jobs 2 model"
    row "" "scikit-learn $SK_VER LinearSVC$([ "$kind" = xc ] && echo ' (on the features)')$from" "${c[@]}" "${st[1]}" "${st[2]}" \
        "${r1:-${st[1]}}" "–" "–"
    rm -f "$WORK/$n".s?.pkl
}

PECOS_VER=$(git -C "$PECOS_SRC" describe --tags --always 2>/dev/null || echo '?')
NXC_VER=$(git -C "$(dirname "$(dirname "$NXC_BIN")")" describe --tags --always 2>/dev/null || echo '?')
SK_VER=$($PY -c 'import sklearn; print(sklearn.__version__)' 2>/dev/null || echo '?')

echo "## 13. The peers table: xmc defaults vs PECOS vs napkinXC vs scikit-learn (bench/peers_table.sh)"
echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), xmc $(git -C "$HERE/.." describe --always --dirty 2>/dev/null || echo '?'), $(nproc --all) cores (shared: compare rows within one run)."
echo "PECOS: $([ $have_pecos = 1 ] && echo "$PECOS_SRC ($PECOS_VER)" || echo "absent ($PECOS_HOW)")."
echo "napkinXC: $([ $have_nxc = 1 ] && echo "$NXC_BIN ($NXC_VER)" || echo "absent ($NXC_HOW)")."
echo "scikit-learn: $([ $have_sk = 1 ] && echo "$SK_VER" || echo "absent ($SK_HOW)")."
echo

R=$DATA/reuters Y=$DATA/yeast T=$DATA/taxonomy/categories.tsv
if [ -f "$R/train.tsv" ] && [ -f "$R/test.tsv" ]; then
    one_set reuters "Reuters ModApte-90 ($(wc -l <"$R/train.tsv") train / $(wc -l <"$R/test.tsv") test, 90 labels)" tsv "$R/train.tsv" "$R/test.tsv"
else
    ROWS+=("| Reuters: $R absent | | | | | | | | | |")
fi
if [ -f "$Y/yeast_train.txt" ] && [ -f "$Y/yeast_test.txt" ]; then
    one_set yeast "Yeast ($(wc -l <"$Y/yeast_train.txt") / $(wc -l <"$Y/yeast_test.txt"), 14 labels, 103 features, no text)" xc "$Y/yeast_train.txt" "$Y/yeast_test.txt"
else
    ROWS+=("| Yeast: $Y absent | | | | | | | | | |")
fi
if [ -f "$T" ] && "$XMC" gen --taxonomy "$T" --docs $((DOCS + 10000)) --seed 1 --out "$WORK/cat.tsv" 2>"$WORK/gen.err"; then
    head -n "$DOCS" "$WORK/cat.tsv" >"$WORK/leaf.train" && tail -n 10000 "$WORK/cat.tsv" >"$WORK/leaf.test"
    for s in train test; do   # every path prefix of every label ("A > B > C" -> A, A > B, A > B > C)
        awk -F'\t' 'BEGIN{OFS="\t"} {n=split($1,L,","); out=""; delete seen
            for(i=1;i<=n;i++){m=split(L[i],P," > "); p=""
                for(j=1;j<=m;j++){p=(j==1?P[1]:p " > " P[j]); if(!(p in seen)){seen[p]=1; out=out (out==""?"":",") p}}}
            print out, $2}' "$WORK/leaf.$s" >"$WORK/prefix.$s"
    done
    rm -f "$WORK/cat.tsv"
    one_set leaf "catalog, $DOCS titles, $(cut -f1 "$WORK/leaf.train" | tr , '\n' | sort -u | wc -l) leaf labels" tsv \
        "$WORK/leaf.train" "$WORK/leaf.test"
    one_set prefix "same, $(cut -f1 "$WORK/prefix.train" | tr , '\n' | sort -u | wc -l) path-prefix labels" tsv \
        "$WORK/prefix.train" "$WORK/prefix.test"
else
    ROWS+=("| taxonomy catalogs: $T absent or xmc gen failed | | | | | | | | | |")
fi

echo "| data | tool | P@1 | P@3 | P@5 | train s, 1 thr | train s, 2 thr | peak RSS MB | µs/doc batch 1 | µs/doc batch 256 |"
echo "|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
echo
echo "P@k: a test label the model lacks is a miss (xmc eval's definition, the peers' scripts the same). train s:"
echo "in-process, featurizing included (xmc: the sum of xmc train's phases; PECOS: Tfidf + PIFA + tree + rankers;"
echo "scikit-learn: TfidfVectorizer + fit, 2 thr = 2 worker processes), napkinXC: its whole train process on ready"
echo "features. Peak RSS: the 1-thread training process (PECOS's also predicts the test set in it; napkinXC's without"
echo "featurizing). µs/doc: CPU µs per document of one thread, best of 3 passes over the first $N test rows,"
echo "in-process, text in (TF-IDF included) for xmc (build/bench/batch_bench) and PECOS (its predict-only model,"
echo "peer_pecos.py --batch-bench); on Yeast features in. napkinXC (a CLI) and scikit-learn have no such path here: –."
[ -f "$WORK/leaf.test" ] && echo "Catalogs: xmc gen --taxonomy $T --docs $((DOCS + 10000)) --seed 1, the first $DOCS to train, the last 10,000 to test."
echo
echo "Against the issue's aims (computed from the table above):"
for s in "${SETS[@]}"; do
    n=${s%%|*} label=${s#*|}
    xp=${P1[$n|xmc]:-} line="  $label: "
    if ! num "$xp"; then echo "${line}xmc has no result"; continue; fi
    best="" bestp=""
    for tool in PECOS napkinXC sklearn; do
        p=${P1[$n|$tool]:-}; num "$p" || continue
        if [ -z "$bestp" ] || awk -v a="$p" -v b="$bestp" 'BEGIN{exit !(a > b)}'; then best=$tool bestp=$p; fi
    done
    if [ -n "$best" ]; then
        line="${line}xmc P@1 $xp >= every peer's: $(awk -v a="$xp" -v b="$bestp" 'BEGIN{print (a >= b) ? "yes" : "no"}') (best peer $best $bestp)"
    else
        line="${line}xmc P@1 $xp: no peer result to compare"
    fi
    for th in 1 2; do
        fast="" fastt=""
        for tool in PECOS napkinXC sklearn; do
            if [ $th = 1 ]; then pt=${T1[$n|$tool]:-}; else pt=${T2[$n|$tool]:-}; fi
            num "$pt" || continue
            if [ -z "$fastt" ] || awk -v a="$pt" -v b="$fastt" 'BEGIN{exit !(a < b)}'; then fast=$tool fastt=$pt; fi
        done
        if [ $th = 1 ]; then xt=${T1[$n|xmc]:-}; else xt=${T2[$n|xmc]:-}; fi
        if [ -n "$fast" ] && num "$xt"; then
            line="$line; train $th thr: xmc $xt s / fastest peer ($fast) $fastt s = $(awk -v a="$xt" -v b="$fastt" 'BEGIN{printf "%.2f", (b > 0) ? a / b : 0}')"
        else
            line="$line; train $th thr: no peer time"
        fi
    done
    echo "$line"
done
echo "(aims: xmc's P@1 at or above every peer's on every row; training at most 0.5x the fastest peer's time;"
echo " a peer that timed out or failed has no number and is left out of these checks)"
exit 0
}
