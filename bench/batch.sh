#!/bin/bash
# bench/batch.sh: in-process prediction µs/doc at batch 1 and batch 256, text in, one thread, xmc beside PECOS.
# Cases: Reuters ModApte-90 ($DATA/reuters) and two `xmc gen` catalogs (10^4 labels asked, 60k docs; 10^5 labels
# asked, 150k docs; the last 10k of each held out). For each: xmc trains with its defaults (2 threads), then
# build/bench/batch_bench times the first N held-out texts at batch 1 and 256 (best of 3, CPU and wall) and checks
# that both give the same hits; PECOS (its own pipeline, bench/peer_pecos.py --batch-bench N) does the same when
# PECOS_SRC holds a build (../shared/PEERS.md), and the script says so when it does not. Where perf runs, a second
# table splits each case's µs/doc into what it does (bench/batch_profile.sh) at both sizes and gives the bound on
# batching: batch 1's cost over the per-document work both paths do alike (selection, featurization).
# Environment: BUILD (default build), DATA (default ../shared/data), PECOS_SRC (default /tmp/pecos-src),
# BATCH_N (texts timed, default 3000), BENCH_TMP (scratch parent). See bench/README.md, "Batched inference".
set -u -o pipefail
BUILD=${BUILD:-build}
DATA=${DATA:-../shared/data}
PECOS_SRC=${PECOS_SRC:-/tmp/pecos-src}
N=${BATCH_N:-3000}
HERE=$(cd "$(dirname "$0")" && pwd)
XMC=$(readlink -f "$BUILD/xmc")
BB=$(readlink -f "$BUILD/bench/batch_bench")
[ -x "$XMC" ] && [ -x "$BB" ] || { echo "batch.sh: $BUILD/xmc or $BUILD/bench/batch_bench not built (run make)" >&2; exit 1; }
WORK=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/xmc-batch.XXXXXX") || exit 1
trap 'rm -rf "$WORK"' EXIT
export OPENBLAS_NUM_THREADS=1
have_perf=0 profiled=()
command -v perf >/dev/null && perf record -q -o "$WORK/perf.probe" true >/dev/null 2>&1 && have_perf=1
have_pecos=0
ls "$PECOS_SRC"/pecos/core/libpecos_float32*.so >/dev/null 2>&1 && have_pecos=1
[ $have_pecos = 1 ] || echo "batch.sh: no PECOS build in $PECOS_SRC (../shared/PEERS.md): its columns stay empty"

cases=()
if [ -f "$DATA/reuters/train.tsv" ]; then
    cases+=("reuters:$DATA/reuters/train.tsv:$DATA/reuters/test.tsv")
else
    echo "batch.sh: $DATA/reuters absent: Reuters skipped"
fi
for spec in 10000:60000:1 100000:150000:2; do
    IFS=: read -r labels docs seed <<<"$spec"
    "$XMC" gen --labels "$labels" --docs "$docs" --seed "$seed" --out "$WORK/gen$labels.tsv" || exit 1
    head -n $((docs - 10000)) "$WORK/gen$labels.tsv" >"$WORK/gen$labels.train"
    tail -n 10000 "$WORK/gen$labels.tsv" >"$WORK/gen$labels.test"
    cases+=("gen$labels:$WORK/gen$labels.train:$WORK/gen$labels.test")
done

printf '| data | labels | xmc batch 1 µs/doc | xmc batch 256 µs/doc | xmc 1/256 | PECOS batch 1 µs/doc | PECOS batch 256 µs/doc | PECOS 256 / xmc 256 |\n'
printf '|---|---|---|---|---|---|---|---|\n'
for c in "${cases[@]}"; do
    IFS=: read -r name train test <<<"$c"
    "$XMC" train --train "$train" --model "$WORK/m_$name" --threads 2 >/dev/null 2>"$WORK/train_$name.log" ||
        { echo "batch.sh: training on $name failed:"; tail -3 "$WORK/train_$name.log"; exit 1; }
    out=$("$BB" "$WORK/m_$name" "$test" "$N" 256 3) || { echo "batch.sh: batch_bench on $name: $out"; exit 1; }
    echo "  $name: $out" >&2
    get() { tr ' ' '\n' <<<"$out" | sed -n "/^$1\$/{n;p}"; }
    x1=$(get batch1_us_per_doc) x256=$(get batch256_us_per_doc) labs=$(get labels)
    p1='' p256='' ratio=''
    if [ $have_pecos = 1 ]; then
        pout=$(PYTHONPATH="$PECOS_SRC" /usr/bin/python3 "$HERE/peer_pecos.py" "$train" "$test" --threads 1 \
               --batch-bench "$N" 2>"$WORK/pecos_$name.log")
        p1=$(sed -n 's/^pecos_batch1_us\t//p' <<<"$pout")
        p256=$(sed -n 's/^pecos_batch256_us\t//p' <<<"$pout")
        echo "  $name: PECOS $(grep wall <<<"$pout" | tr '\n\t' '  ')" >&2
        [ -n "$p256" ] && ratio=$(awk -v a="$p256" -v b="$x256" 'BEGIN { printf "%.1f", a / b }')
    fi
    # where the time goes at batch 1 and 256 (perf; bench/batch_profile.sh), for the bound below the table
    if [ $have_perf = 1 ]; then
        for b in 1 256; do
            BUILD="$(dirname "$(dirname "$BB")")" bash "$HERE/batch_profile.sh" "$WORK/m_$name" "$test" "$b" "$N" 5 >"$WORK/prof_${name}_$b" 2>&1 ||
                echo "batch.sh: batch_profile.sh on $name at batch $b failed: $(tail -1 "$WORK/prof_${name}_$b")" >&2
        done
        profiled+=("$name")
    fi
    printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$labs" "$x1" "$x256" \
        "$(awk -v a="$x1" -v b="$x256" 'BEGIN { printf "%.2f", a / b }')" "$p1" "$p256" "$ratio"
done
echo "(CPU µs per document of one thread, best of 3 passes over the first $N held-out texts, featurization included;"
echo " xmc's batch 256 gives the same hits as its batch 1 in every case, or batch_bench fails)"

# The bound on batching: selection (each document's top lists, through the same select_children in both paths)
# and featurization are per document and the same work in both paths, so batch 1's µs/doc over their cost is
# the most batch 256 could gain were its scoring and all else free (each taken at the lower of its two figures).
[ $have_perf = 1 ] || { echo "(perf is not installed: no profile of where the time goes, no bound on batching)"; exit 0; }
echo
echo "Where one thread's time goes, µs/doc (bench/batch_profile.sh: perf record of batch_bench's passes of that batch"
echo "alone, best of 5, functions summed by what they do; its own runs, so totals differ a little from the table):"
echo
printf '| data | batch | total | weight scoring | selection | featurization | other | bound on 1/256 |\n'
printf '|---|---|---|---|---|---|---|---|\n'
for name in "${profiled[@]}"; do
    f1="$WORK/prof_${name}_1" f256="$WORK/prof_${name}_256"
    [ -s "$f1" ] && [ -s "$f256" ] || continue
    awk -v name="$name" '
        FNR == 1 { file++ }
        $1 == "docs" { for (i = 1; i < NF; i++) if ($i ~ /^batch[0-9]+_us_per_doc$/) tot[file] = $(i + 1) }
        /us\/doc$/ { k = $1 == "weight" ? "scoring" : $1; us[file, k] = $(NF - 1) }
        END {
            sel = us[1, "selection"] < us[2, "selection"] ? us[1, "selection"] : us[2, "selection"]
            feat = us[1, "featurization"] < us[2, "featurization"] ? us[1, "featurization"] : us[2, "featurization"]
            shared = sel + feat
            for (f = 1; f <= 2; f++)
                printf "| %s | %s | %.2f | %.2f | %.2f | %.2f | %.2f | %s |\n", f == 1 ? name : "", f == 1 ? 1 : 256, tot[f],
                       us[f, "scoring"], us[f, "selection"], us[f, "featurization"], us[f, "other"],
                       f == 1 ? "" : (shared > 0 ? sprintf("%.2f", tot[1] / shared) : "-")
        }' "$f1" "$f256"
done
echo "(bound on 1/256: batch 1's total over the selection and featurization per document, each the lower of its"
echo " two figures: the work both paths do alike, one document at a time; what batch 256 would gain were its"
echo " scoring and all else free)"
