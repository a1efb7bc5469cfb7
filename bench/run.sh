#!/bin/bash
# bench/run.sh: `make bench`. Measures xmc beside the peers that run on this machine and prints labelled tables:
#   1. Reuters-21578 ModApte-90 ($DATA/reuters): xmc settings vs scikit-learn LinearSVC and fastText
#   2. Yeast ($DATA/yeast): xmc vs scikit-learn LinearSVC
#   3. Scale: synthetic catalogs (`xmc gen`) with 10^3 .. 10^6 labels
#   4. Encoder: featurisers on Reuters, the C encoder beside PyTorch
#   5. Stream: xmcd + xmc_stage.so on the embedded Kafka with a 10^4-label model (bench/stream.sh): records/s,
#      latency, per-stage histograms, the classifier's own cost, R12 (20 swaps under load) and the soak; then
#      5b: throughput and latency on one real Apache Kafka broker and on three beside the mock (BENCH_BROKERS=0
#      skips it; says so when Java or ../shared/kafka-broker is absent)
#   6. Peers built from source: xmc defaults beside PECOS and napkinXC on Reuters and two taxonomy catalogs
#      (bench/peers_pecos.sh; says so when PECOS_SRC / NXC_BIN hold no build; BENCH_PEERS=0 skips it)
#   7. Label disentanglement: --disentangle 1, 2, 4 on Reuters and a catalog with planted two-meaning labels
#      (bench/disentangle.sh; BENCH_DISENTANGLE=0 skips it)
#   8. XR-Transformer: fine-tuned random-init encoder vs TF-IDF XR-Linear on Reuters and a 10^4-label catalog
#      (bench/xrt.sh; BENCH_XRT=0 skips it), then xmcd with two fine-tuned versions on the embedded Kafka:
#      records/s and p99 at micro-batches 1/32/256 beside xmc eval, R12 swaps between them (bench/stream_encoder.sh)
#   9. Batched inference: in-process µs/doc at batch 1 and 256, text in, xmc beside PECOS's batched path
#      (bench/batch.sh; BENCH_BATCH=0 skips it)
#  10. The defaults sweep: each setting that matters moved one at a time around the defaults on Reuters, Yeast
#      and two 50k-title taxonomy catalogs (bench/sweep.sh; BENCH_SWEEP=0 skips it, SWEEP_DOCS sizes it)
#  11. Warm-started retraining vs a full retrain on the same window: the demo catalog, and with BENCH_BIG=1 the
#      10^5-label catalog of 10^6 records (bench/warm.sh; BENCH_WARM=0 skips it)
#  12. Continuous retraining end to end: curated records on the embedded Kafka -> xmc retrain (full, warm start) ->
#      gate -> xmcd serving the new version under a steady load: the loop's time, P@1, the trainer's RSS, xmcd's
#      p50/p99 while a training runs; the demo catalog, with BENCH_BIG=1 only the 10^5 x 10^6 catalog
#      (bench/retrain.sh; BENCH_RETRAIN=0 skips it)
#  13. The peers table (README's): xmc defaults vs PECOS vs napkinXC vs scikit-learn on Reuters, Yeast and two
#      50k-title taxonomy catalogs, P@1/3/5, train s at 1 and 2 threads, peak RSS, µs/doc at batch 1 and 256, and the
#      issue-12 aims checked against it (bench/peers_table.sh; BENCH_TABLE=0 skips it, PEERS_DOCS sizes the catalogs,
#      TABLE_SK_CAP caps each scikit-learn training, default 600 s)
# Every figure is measured in this run, except the rows marked "quoted", which are copied at run time from the
# data READMEs (the pip-installed PECOS and napkinXC of section 1; built from source they run in sections 6 and 13). Times are whole-process wall clock from /usr/bin/time -v
# unless a column says "in-process". See bench/README.md.
#
# Environment: BUILD (default build), DATA (default ../shared/data), BENCH_BIG=1 (run only the big cases: section 3's
# 10^5 labels x 10^6 training docs, section 11's and section 12's 10^5 x 10^6 cases), FT_EPOCH (fastText epochs, default 50), BENCH_ZIPF (Zipf exponent of the
# synthetic label frequencies, default 0.5: flat enough that nearly all L labels occur), BENCH_TMP (scratch dir parent,
# default $TMPDIR or /tmp; the big case writes about 1 GB there), BENCH_SCALES (the scale cases as "L:N ...",
# labels asked : training docs), BENCH_ENCODER=0 (skip section 4), BENCH_STREAM=0 (skip section 5),
# BENCH_SOAK_SECS (length of the soak in section 5, default 600; 0 skips the soak; bench/stream.sh lists the
# section's other knobs), BENCH_CORETYPE=keep (leave OpenBLAS's own kernel choice; by default the run sets the
# OPENBLAS_CORETYPE that `xmc --version` advises, for every process alike).
set -u -o pipefail
{ # the whole script is one compound command: bash parses it all before running, so editing it mid-run is safe

BUILD=${BUILD:-build}
DATA=${DATA:-../shared/data}
BENCH_BIG=${BENCH_BIG:-0}
FT_EPOCH=${FT_EPOCH:-50}
ZIPF=${BENCH_ZIPF:-0.5}
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
TIMEV=/usr/bin/time
XMC=$(readlink -f "$BUILD/xmc")

bash "$HERE/install-deps.sh"
[ -x "$XMC" ] || { echo "bench: $BUILD/xmc not built (run make)" >&2; exit 1; }
[ -x "$TIMEV" ] || { echo "bench: $TIMEV missing (apt-get install time)" >&2; exit 1; }
WORK=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/xmc-bench.XXXXXX") || exit 1
trap 'rm -rf "$WORK"' EXIT

have_sk=0; $PY -c 'import sklearn, numpy, scipy' 2>/dev/null && have_sk=1
have_ft=0; command -v fasttext >/dev/null 2>&1 && have_ft=1

# ---- helpers -------------------------------------------------------------------------------------------------
# timed NAME CMD...: runs CMD under /usr/bin/time -v; stdout -> $WORK/NAME.out, stderr -> NAME.err, time -> NAME.time
timed() {
    local name=$1; shift
    if ! "$TIMEV" -v -o "$WORK/$name.time" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"; then
        echo "bench: FAILED: $*" >&2; tail -5 "$WORK/$name.err" >&2; return 1
    fi
}
wall() {   # seconds of wall clock of a timed run
    awk -F': ' '/Elapsed \(wall clock\)/{n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; printf "%.2f", s}' \
        "$WORK/$1.time"
}
rss() {    # peak RSS in MB of a timed run
    awk -F': ' '/Maximum resident set size/{printf "%.0f", $2/1024}' "$WORK/$1.time"
}
kv() {     # value of a `key<TAB>value` line of a timed run's stdout
    awk -F'\t' -v k="$2" '$1==k{print $2; exit}' "$WORK/$1.out"
}
mb() { awk -v b="$1" 'BEGIN{printf "%.1f", b/1048576}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{if (b > 0) printf "%.2f", a/b; else printf "-"}'; }
div() { awk -v a="$1" -v b="$2" 'BEGIN{if (b > 0) printf "%.0f", a/b; else printf "-"}'; }
# the "trained ...: (F s features, T s tree, R s rankers, W s write)" line of `xmc train` -> "F+T+R+W"
phases() {
    sed -n 's/.*(\([0-9.]*\) s features, \([0-9.]*\) s tree, \([0-9.]*\) s rankers, \([0-9.]*\) s write).*/\1 \2 \3 \4/p' \
        "$WORK/$1.err" | tail -1
}
trained_field() {   # N of "N records|labels|features|layers" in the trained line
    sed -n "s/.* \([0-9]*\) $2[,( ].*/\1/p" "$WORK/$1.err" | tail -1
}

echo "xmc benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -m), $(awk '/MemTotal/{printf "%.0f GiB RAM", $2/1048576}' /proc/meminfo)"
echo "CPU: $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1) (family $(sed -n 's/^cpu family[^:]*: //p' /proc/cpuinfo | head -1)); ratios to peers move with it (docs/encoder.md)"
echo "xmc $(git -C "$HERE/.." describe --always --dirty 2>/dev/null || echo '?'), $XMC"
echo "All times: wall clock of the whole process (/usr/bin/time -v) unless marked in-process; RSS: peak resident set."
echo "The machine is shared: times vary run to run; compare rows within one run."
# OpenBLAS picks its kernels when it loads and falls back to its SSE3 set on a CPU it does not know; xmc says
# which set runs and what fixes it (xmc/blas.h). Every process of the run, PyTorch and numpy included, shares
# that OpenBLAS, so the setting applies to all sides alike (BENCH_CORETYPE=keep: leave OpenBLAS's choice).
blas_note=$("$XMC" --version 2>&1 >/dev/null)
[ -z "${OPENBLAS_CORETYPE:-}" ] ||
    echo "OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE comes from the environment: OpenBLAS's own choice is overridden (unset it to compare)."
if [ -n "$blas_note" ] && [ -z "${OPENBLAS_CORETYPE:-}" ] && [ "${BENCH_CORETYPE:-}" != keep ]; then
    export OPENBLAS_CORETYPE=$(printf '%s\n' "$blas_note" | sed -n 's/.*OPENBLAS_CORETYPE=\([A-Za-z0-9]*\).*/\1/p')
    echo "OpenBLAS's own choice: $(printf '%s\n' "$blas_note" | sed 's/^xmc: warning: //')"
    echo "so this run sets OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE for every process (xmc and the peers alike)."
fi
echo "BLAS: $("$XMC" --version 2>/dev/null | sed -n 's/^blas //p')"
echo

if [ "$BENCH_BIG" = 1 ]; then
    SCALES=${BENCH_SCALES:-"100000:1000000"}
else
    SCALES=${BENCH_SCALES:-"1000:10000 10000:100000 100000:500000 1000000:500000"}
fi
R=$DATA/reuters
Y=$DATA/yeast
[ -d "$DATA" ] || { echo "Data dir $DATA absent: only the scale part runs (generated data)."; echo; }

# ---- 1. Reuters ----------------------------------------------------------------------------------------------
# xmc rows: id | label | train options. (b) was chosen by a small search on this split (bench/README.md lists it).
XMC_REUTERS=(
    "a|(a) xmc defaults (flat: 90 labels <= max-leaf-size 100)|"
    "b|(b) xmc best: --threshold 0.01 --cp 2, word 1-2 + char_wb 3-5, min_token_len 2|--threshold 0.01 --cp 2 --tfidf word:1-2,char_wb:3-5,min_df=2,min_token_len=2"
    "bw|(b') xmc best word-only: --threshold 0.01 --cp 2, word 1-2, min_token_len 2|--threshold 0.01 --cp 2 --tfidf word:1-2,min_df=2,min_token_len=2"
    "c|(c) xmc tree: --nr-splits 16 --max-leaf-size 10|--nr-splits 16 --max-leaf-size 10"
    "d|(d) xmc primal solver (PECOS L2R_L2LOSS_SVC_PRIMAL), defaults otherwise|--solver primal"
)
row_fmt='| %-78s | %6s | %6s | %6s | %6s | %8s | %9s | %8s | %9s | %10s | %8s |\n'
reuters_header() {
    printf "$row_fmt" "tool, setting" "P@1" "P@3" "P@5" "nDCG@5" "train s" "train s" "predict" "predict s" "RSS MB" "model MB"
    printf "$row_fmt" "" "" "" "" "" "process" "in-proc" "docs/s" "process" "train/pred" ""
    printf '|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..80})" "--------" "--------" "--------" \
        "--------" "----------" "-----------" "----------" "-----------" "------------" "----------"
}

if [ "$BENCH_BIG" != 1 ] && [ -f "$R/train.tsv" ] && [ -f "$R/test.tsv" ]; then
    echo "== 1. Reuters-21578 ModApte-90: $(wc -l <"$R/train.tsv") train / $(wc -l <"$R/test.tsv") test docs, 90 labels =="
    echo "Everything single-threaded: xmc train --threads 1, xmc eval --threads 1, peers on one core."
    echo "predict docs/s: in-process rate of featurising + scoring the whole test file (xmc eval; the peers' own timer;"
    echo "fastText: test docs / whole predict process). RSS pred: the process that predicts and scores the test file."
    echo
    declare -A TR PH   # train process seconds, train phases per row id
    rows=()
    for spec in "${XMC_REUTERS[@]}"; do
        IFS='|' read -r id label opts <<<"$spec"
        # shellcheck disable=SC2086
        timed "r_$id.train" "$XMC" train --train "$R/train.tsv" --model "$WORK/r_$id" --threads 1 $opts || continue
        timed "r_$id.eval" "$XMC" eval --model "$WORK/r_$id" --test "$R/test.tsv" --threads 1 || continue
        read -r f t k w <<<"$(phases "r_$id.train")"
        TR[$id]=$(wall "r_$id.train")
        rows+=("$(printf "$row_fmt" "$label" "$(kv r_$id.eval P@1)" "$(kv r_$id.eval P@3)" "$(kv r_$id.eval P@5)" \
            "$(kv r_$id.eval nDCG@5)" "${TR[$id]}" "$(awk -v a="$f" -v b="$t" -v c="$k" -v d="$w" 'BEGIN{printf "%.2f", a+b+c+d}')" \
            "$(kv r_$id.eval docs/s)" "$(wall r_$id.eval)" "$(rss r_$id.train)/$(rss r_$id.eval)" \
            "$(mb "$(du -sb "$WORK/r_$id" | cut -f1)")")")
        PH[$id]="features $f s, tree $t s, rankers $k s, write $w s; $(trained_field "r_$id.train" features) features"
    done
    if [ $have_sk = 1 ]; then
        if timed r_sk.train $PY "$HERE/peer_sklearn.py" train tsv "$R/train.tsv" "$WORK/r_sk.pkl" &&
           timed r_sk.pred $PY "$HERE/peer_sklearn.py" predict tsv "$R/test.tsv" "$WORK/r_sk.pkl"; then
            TR[sk]=$(wall r_sk.train)
            rows+=("$(printf "$row_fmt" "scikit-learn $($PY -c 'import sklearn; print(sklearn.__version__)') one-vs-rest LinearSVC C=1, TfidfVectorizer word 1-2" \
                "$(kv r_sk.pred P@1)" "$(kv r_sk.pred P@3)" "$(kv r_sk.pred P@5)" "$(kv r_sk.pred nDCG@5)" "${TR[sk]}" \
                "$(printf %.2f "$(kv r_sk.train fit_s)")" "$(kv r_sk.pred docs/s)" "$(wall r_sk.pred)" "$(rss r_sk.train)/$(rss r_sk.pred)" \
                "$(mb "$(stat -c %s "$WORK/r_sk.pkl")")")")
        fi
    else
        rows+=("$(printf "$row_fmt" "scikit-learn: not installed (python3-sklearn), skipped" - - - - - - - - - -)")
    fi
    if [ $have_ft = 1 ]; then
        $PY "$HERE/peer_fasttext.py" prep "$R/train.tsv" "$WORK/ft.train" && $PY "$HERE/peer_fasttext.py" prep "$R/test.tsv" "$WORK/ft.test"
        if timed r_ft.train fasttext supervised -input "$WORK/ft.train" -output "$WORK/ft" -loss ova -epoch "$FT_EPOCH" \
                 -lr 1.0 -wordNgrams 2 -thread 1 -verbose 0 &&
           timed r_ft.pred fasttext predict "$WORK/ft.bin" "$WORK/ft.test" 5; then
            cp "$WORK/r_ft.pred.out" "$WORK/ft.pred"
            $PY "$HERE/peer_fasttext.py" score "$R/test.tsv" "$WORK/ft.pred" >"$WORK/r_ft.score.out"
            TR[ft]=$(wall r_ft.train)
            ndocs=$(wc -l <"$WORK/ft.test")
            rows+=("$(printf "$row_fmt" "fastText $(dpkg-query -W -f '${Version}' fasttext 2>/dev/null | cut -d+ -f1) -loss ova, epoch $FT_EPOCH, lr 1.0, wordNgrams 2" \
                "$(kv r_ft.score P@1)" "$(kv r_ft.score P@3)" "$(kv r_ft.score P@5)" "$(kv r_ft.score nDCG@5)" "${TR[ft]}" "-" \
                "$(div "$ndocs" "$(wall r_ft.pred)")" "$(wall r_ft.pred)" "$(rss r_ft.train)/$(rss r_ft.pred)" \
                "$(mb "$(stat -c %s "$WORK/ft.bin")")")")
        fi
    else
        rows+=("$(printf "$row_fmt" "fastText: not installed (Debian package fasttext), skipped" - - - - - - - - - -)")
    fi
    reuters_header
    printf '%s\n' "${rows[@]}"
    echo
    echo "xmc train time split (in-process, from xmc train's summary line):"
    for spec in "${XMC_REUTERS[@]}"; do
        IFS='|' read -r id label opts <<<"$spec"
        [ -n "${PH[$id]:-}" ] && echo "  ${label%%)*}): ${PH[$id]}"
    done
    echo
    echo "Train time ratios, xmc / peer (whole process, this run; < 1 means xmc trains faster):"
    for spec in "${XMC_REUTERS[@]}"; do
        IFS='|' read -r id label opts <<<"$spec"
        [ -n "${TR[$id]:-}" ] || continue
        line="  ${label%%)*}) ${TR[$id]} s:"
        [ -n "${TR[sk]:-}" ] && line="$line  / scikit-learn LinearSVC ${TR[sk]} s = $(ratio "${TR[$id]}" "${TR[sk]}")"
        [ -n "${TR[ft]:-}" ] && line="$line;  / fastText ${TR[ft]} s = $(ratio "${TR[$id]}" "${TR[ft]}")"
        echo "$line"
    done
    echo
    echo "Not in this table: PECOS and napkinXC (no PyPI here; built from source they run in sections 6 and 13). Their rows"
    echo "below are quoted from $R/README.md: measured earlier on this machine, NOT in this run (columns: P@1 | P@3 | P@5 |"
    echo "nDCG@5 | train s | predict s whole test set (ms/doc) | peak RSS MB train/predict):"
    grep -E '^\| (napkinXC|PECOS)' "$R/README.md" | sed 's/^/  quoted: /'
    echo
elif [ "$BENCH_BIG" != 1 ]; then
    echo "== 1. Reuters: $R/train.tsv or test.tsv absent: skipped (only the generated-data scale part runs) =="
    echo
fi

# ---- 2. Yeast ------------------------------------------------------------------------------------------------
yrow='| %-52s | %6s | %6s | %6s | %8s | %10s |\n'
if [ "$BENCH_BIG" != 1 ] && [ -f "$Y/yeast_train.txt" ] && [ -f "$Y/yeast_test.txt" ]; then
    echo "== 2. Yeast: $(wc -l <"$Y/yeast_train.txt") train / $(wc -l <"$Y/yeast_test.txt") test rows, 103 dense features, 14 labels =="
    printf "$yrow" "tool, setting" "P@1" "P@3" "P@5" "train s" "predict s"
    printf '|%s|--------|--------|--------|----------|------------|\n' "$(printf -- '-%.0s' {1..54})"
    XC=(--xc-feature-base 1 --xc-label-base 0)
    if timed y_x.train "$XMC" train --xc "$Y/yeast_train.txt" "${XC[@]}" --model "$WORK/y_x" --threads 1 &&
       timed y_x.eval "$XMC" eval --model "$WORK/y_x" --xc "$Y/yeast_test.txt" "${XC[@]}" --threads 1; then
        printf "$yrow" "xmc defaults" "$(kv y_x.eval P@1)" "$(kv y_x.eval P@3)" "$(kv y_x.eval P@5)" \
            "$(wall y_x.train)" "$(wall y_x.eval)"
        yp1=$(kv y_x.eval P@1)
    fi
    if [ $have_sk = 1 ] &&
       timed y_sk.train $PY "$HERE/peer_sklearn.py" train xc "$Y/yeast_train.txt" "$WORK/y_sk.pkl" &&
       timed y_sk.pred $PY "$HERE/peer_sklearn.py" predict xc "$Y/yeast_test.txt" "$WORK/y_sk.pkl"; then
        printf "$yrow" "scikit-learn one-vs-rest LinearSVC C=1" "$(kv y_sk.pred P@1)" "$(kv y_sk.pred P@3)" \
            "$(kv y_sk.pred P@5)" "$(wall y_sk.train)" "$(wall y_sk.pred)"
    fi
    band=$(sed -n 's/^ *SCORE_RANGE = \[\([0-9.]*\), *\([0-9.]*\)\].*/\1 \2/p' "$Y/README.md" | head -1)
    echo
    echo "Quoted from $Y/README.md (measured earlier on this machine, NOT in this run; P@1 | P@3 | P@5 | train s | predict s):"
    grep -E '^\| (napkinXC|PECOS)' "$Y/README.md" | sed 's/^/  quoted: /'
    if [ -n "$band" ] && [ -n "${yp1:-}" ]; then
        read -r lo hi <<<"$band"
        echo "napkinXC's accepted band (quoted from $Y/README.md, its tests, not run here): $lo < P@1 < $hi;" \
             "xmc P@1 $yp1: $(awk -v p="$yp1" -v lo="$lo" -v hi="$hi" 'BEGIN{print (p/100 > lo && p/100 < hi) ? "inside" : "OUTSIDE"}')"
    fi
    echo
elif [ "$BENCH_BIG" != 1 ]; then
    echo "== 2. Yeast: $Y absent: skipped =="
    echo
fi

# ---- 3. Scale ------------------------------------------------------------------------------------------------
NTEST=10000
declare -A SPH SMAX
srow='| %9s | %9s | %9s | %8s | %6s | %8s | %8s | %8s | %8s | %7s | %8s | %8s | %6s |\n'
echo "== 3. Scale: synthetic catalogs, xmc gen --labels L --docs N+$NTEST --seed 1 --zipf $ZIPF (last $NTEST docs = test set) =="
[ "$BENCH_BIG" = 1 ] && echo "BENCH_BIG=1: the big case only."
echo "xmc defaults; train --threads 2 (both cores); eval --threads 1 --beam 10 over the $NTEST test docs (batch);"
echo "ms/doc = 1000 / docs/s. 'labels': labels that occur in the training docs, i.e. the model's labels (gen's"
echo "default Zipf 1.1 would leave many of the L labels unused at these N; see bench/README.md)."
echo
printf "$srow" "L asked" "labels" "train N" "features" "layers" "train s" "train" "model" "predict" "pred RSS" "docs/s" "ms/doc" "P@1"
printf "$srow" "" "" "docs" "" "" "process" "RSS MB" "MB" "RSS MB" "/model" "beam 10" "beam 10" ""
printf '|%s|\n' "-----------|-----------|-----------|----------|--------|----------|----------|----------|----------|---------|----------|----------|--------"
for sc in $SCALES; do
    L=${sc%%:*}; N=${sc##*:}
    g="$WORK/g$L"
    if ! timed "s$L.gen" "$XMC" gen --labels "$L" --docs $((N + NTEST)) --seed 1 --zipf "$ZIPF" --out "$g.tsv"; then continue; fi
    head -n "$N" "$g.tsv" >"$g.train"; tail -n "$NTEST" "$g.tsv" >"$g.test"; rm -f "$g.tsv"
    if timed "s$L.train" "$XMC" train --train "$g.train" --model "$WORK/s$L" --threads 2 &&
       timed "s$L.eval" "$XMC" eval --model "$WORK/s$L" --test "$g.test" --threads 1 --beam 10; then
        msize=$(du -sb "$WORK/s$L" | cut -f1)
        ds=$(kv "s$L.eval" docs/s)
        printf "$srow" "$L" "$(trained_field "s$L.train" labels)" "$N" "$(trained_field "s$L.train" features)" \
            "$(trained_field "s$L.train" layers)" "$(wall "s$L.train")" "$(rss "s$L.train")" "$(mb "$msize")" \
            "$(rss "s$L.eval")" "$(awk -v r="$(rss "s$L.eval")" -v m="$msize" 'BEGIN{printf "%.2f", r*1048576/m}')" \
            "$ds" "$(awk -v d="$ds" 'BEGIN{printf "%.3f", 1000/d}')" "$(kv "s$L.eval" P@1)"
        SPH[$L]="$(phases "s$L.train")"
        SMAX[$L]="$(rss "s$L.train") MB train, $(rss "s$L.eval") MB predict, $(wall "s$L.train") s train"
    fi
    rm -rf "$WORK/s$L" "$g.train" "$g.test"
done
echo
echo "xmc train time split (features / tree / rankers / write, s, in-process):"
for sc in $SCALES; do L=${sc%%:*}; [ -n "${SPH[$L]:-}" ] && echo "  L=$L: ${SPH[$L]}"; done
if [ "$BENCH_BIG" = 1 ]; then
    for sc in $SCALES; do
        L=${sc%%:*}
        [ -n "${SMAX[$L]:-}" ] && echo "Big case L=$L: peak RSS ${SMAX[$L]}; the limit is 24 GiB (24576 MB):" \
            "$(awk -v a="$(rss "s$L.train")" -v b="$(rss "s$L.eval")" 'BEGIN{print (a < 24576 && b < 24576) ? "within" : "OVER"}')"
    done
fi
echo
echo "Goal (DESIGN.md section 9): >= 5,000 docs/s per core at beam 10 on a 10^5-label model."

# ---- 4. Encoder: featurisers on Reuters, and the C encoder beside PyTorch (BENCH_ENCODER=0 skips) ------------
if [ "${BENCH_ENCODER:-1}" = 1 ] && [ "$BENCH_BIG" != 1 ]; then
    echo
    echo "## 4. Transformer encoder"
    echo
    BUILD="$BUILD" DATA="$DATA" bash bench/featurizers.sh || echo "featurizers bench failed"
    echo
    BUILD="$BUILD" bash bench/bert_bench.sh || echo "encoder vs PyTorch bench failed (the lines above say why)"
    echo
    BUILD="$BUILD" DATA="$DATA" bash bench/bert_train.sh || echo "encoder training step bench failed"
fi

# ---- 6. Peers built from source (PECOS, napkinXC), run before the stream section (BENCH_PEERS=0 skips) ------
if [ "${BENCH_PEERS:-1}" = 1 ] && [ "$BENCH_BIG" != 1 ]; then
    echo
    BUILD="$BUILD" DATA="$DATA" bash "$HERE/peers_pecos.sh" || echo "peers bench failed"
fi

# ---- 7. Label disentanglement (BENCH_DISENTANGLE=0 skips) ---------------------------------------------------
if [ "${BENCH_DISENTANGLE:-1}" = 1 ] && [ "$BENCH_BIG" != 1 ]; then
    echo
    BUILD="$BUILD" DATA="$DATA" bash "$HERE/disentangle.sh" || echo "disentangle bench failed"
fi

# ---- 8. XR-Transformer vs TF-IDF (BENCH_XRT=0 skips) --------------------------------------------------------
if [ "${BENCH_XRT:-1}" = 1 ] && [ "$BENCH_BIG" != 1 ]; then
    echo
    echo "== 8. XR-Transformer: fine-tuned random-init encoder vs TF-IDF (bench/xrt.sh), then in the stream (bench/stream_encoder.sh) =="
    BUILD="$BUILD" DATA="$DATA" bash "$HERE/xrt.sh" || echo "xr-transformer bench failed"
    echo
    BUILD="$BUILD" DATA="$DATA" bash "$HERE/stream_encoder.sh" || echo "xr-transformer stream bench failed"
fi

# ---- 9. Batched inference (BENCH_BATCH=0 skips) -------------------------------------------------------------
if [ "${BENCH_BATCH:-1}" = 1 ] && [ "$BENCH_BIG" != 1 ]; then
    echo
    echo "== 9. Batched inference: in-process µs/doc at batch 1 and 256, text in (bench/batch.sh) =="
    BUILD="$BUILD" DATA="$DATA" bash "$HERE/batch.sh" || echo "batched inference bench failed"
fi

# ---- 10. The defaults sweep (BENCH_SWEEP=0 skips; SWEEP_DOCS sets the catalogs' size, default 50000) --------
if [ "${BENCH_SWEEP:-1}" = 1 ] && [ "$BENCH_BIG" != 1 ]; then
    echo
    echo "== 10. Defaults sweep: one setting at a time around the defaults (bench/sweep.sh, bench/SWEEP.md) =="
    BUILD="$BUILD" DATA="$DATA" bash "$HERE/sweep.sh" || echo "sweep bench failed"
fi

# ---- 11. Warm-started retraining (BENCH_WARM=0 skips; BENCH_BIG=1 runs only its 10^5 x 10^6 case besides section 3) --
if [ "${BENCH_WARM:-1}" = 1 ]; then
    echo
    BUILD="$BUILD" WARM_BIG="$BENCH_BIG" bash "$HERE/warm.sh" || echo "warm start bench failed"
fi

# ---- 12. Continuous retraining end to end (BENCH_RETRAIN=0 skips; BENCH_BIG=1 runs only its 10^5 x 10^6 case) ----
if [ "${BENCH_RETRAIN:-1}" = 1 ]; then
    echo
    BUILD="$BUILD" RETRAIN_BIG="$BENCH_BIG" RETRAIN_ONLY_BIG="$BENCH_BIG" bash "$HERE/retrain.sh" || echo "retraining bench failed"
fi

# ---- 13. The peers table (BENCH_TABLE=0 skips; PEERS_DOCS, TABLE_SK_CAP, TABLE_N: see bench/peers_table.sh) ------
if [ "${BENCH_TABLE:-1}" = 1 ] && [ "$BENCH_BIG" != 1 ]; then
    echo
    BUILD="$BUILD" DATA="$DATA" bash "$HERE/peers_table.sh" || echo "peers table bench failed"
fi

# ---- 5. Stream: xmcd on the embedded Kafka (BENCH_STREAM=0 skips; BENCH_SOAK_SECS=0 skips only the soak) --------
if [ "${BENCH_STREAM:-1}" = 1 ] && [ "$BENCH_BIG" != 1 ]; then
    echo
    BUILD="$BUILD" SOAK_SECS="${BENCH_SOAK_SECS:-600}" bash "$HERE/stream.sh" bench || echo "stream bench failed"
    # 5b. the same stream on real Apache Kafka brokers (1, then 3) beside the mock, where Java and the jars are here
    if [ "${BENCH_BROKERS:-1}" = 1 ]; then
        echo
        BUILD="$BUILD" bash "$HERE/stream.sh" brokers || echo "stream bench on real brokers: a run failed"
    fi
fi
exit 0
}
