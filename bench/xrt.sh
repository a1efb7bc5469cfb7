#!/bin/bash
# bench/xrt.sh: XR-Transformer beside TF-IDF XR-Linear, side by side in one run, on Reuters-21578 ($DATA/reuters)
# and on a synthetic catalog (`xmc gen`, >= 10^4 labels). The encoder starts from random weights (no pretrained
# weights reach this machine): $DATA/bert-random-l2 (hidden 128, 2 layers) with the bert-base-uncased vocabulary.
# Rows: tfidf (XR-Linear on TF-IDF), tfidf+encoder with the random encoder as it is (what fine-tuning starts from),
# and xr-transformer (fine-tuned level by level, then rankers on [tfidf ; emb]). Per fine-tuned level: clusters,
# steps, first and last epoch's loss, tokens/s and seconds, read off the training log.
#
# Environment: BUILD, DATA (../shared/data), XRT_EPOCHS (per level, default 3), XRT_LR (default 5e-4), XRT_WARMUP
# (0), XRT_POOLING (cls), XRT_ALPHA (select: the embedding's weight beside TF-IDF chosen on a validation split of
# the training records, never on the test records: every 10th training record is held out, the encoder is
# fine-tuned on the other 90 %, rankers on [tfidf ; alpha emb] of that encoder are trained on the 90 % for each of
# XRT_ALPHAS ("0.1 0.3 1") and scored on the held-out 10 %, and the best P@1 (the first in the list on a tie)
# is the alpha of every row after; a number fixes it instead), XRT_REUTERS_MAXLEN (128), XRT_BATCH (32), XRT_LABELS (catalog labels asked, 13000; the
# labels that occur are fewer: 11,413 at 30,000 docs), XRT_DOCS (catalog training docs, 30000), XRT_TEST (3000), XRT_SETS ("reuters
# catalog"), XRT_NEGATIVES (tfn; "tfn tfn+man" gives one xr-transformer row per mode, side by side), XRT_MAN_TOPK
# (20), XRT_SEEDS ("0 1 2": the label tree's seed, `--seed`; every row is the mean over them, its P@1 per seed
# beside it: on the 10^4-label catalog the tree's seed alone moves P@1 by up to 0.9, more than the differences
# this table is about; the encoder is fine-tuned once, with the first seed, and its rankers retrained for the
# others; alpha is selected on the mean too), XRT_DROPOUT (the encoder's hidden dropout while fine-tuning, 0),
# XRT_BOOTSTRAP (the head of a level below the top: inherit, or linear), XRT_ENCODER_ROWS (1: two more rows, XR-Linear
# on the embedding alone, `--featurizer encoder`, of the random encoder and of the fine-tuned one: what the training
# itself taught the encoder, with TF-IDF out of the way; 0 leaves them out), XRT_HEAD_LR (the head's learning
# rate, `--xrt-head-lr`; unset: the encoder's), OPENBLAS_NUM_THREADS (2).
set -u -o pipefail
{ # one compound command: bash parses it all before running, so editing the script mid-run is safe
BUILD=${BUILD:-build}
DATA=${DATA:-../shared/data}
EPOCHS=${XRT_EPOCHS:-3}
LR=${XRT_LR:-5e-4}
WARMUP=${XRT_WARMUP:-0}
POOLING=${XRT_POOLING:-cls}
ALPHA_SET=${XRT_ALPHA:-select}
ALPHAS=${XRT_ALPHAS:-0.1 0.3 1}
RMAXLEN=${XRT_REUTERS_MAXLEN:-128}
BATCH=${XRT_BATCH:-32}
LABELS=${XRT_LABELS:-13000}
DOCS=${XRT_DOCS:-30000}
NTEST=${XRT_TEST:-3000}
NEGATIVES=${XRT_NEGATIVES:-tfn}
MAN_TOPK=${XRT_MAN_TOPK:-20}
SEEDS=${XRT_SEEDS:-0 1 2}
DROPOUT=${XRT_DROPOUT:-0}
BOOTSTRAP=${XRT_BOOTSTRAP:-inherit}
ENCODER_ROWS=${XRT_ENCODER_ROWS:-1}
HEAD_LR=${XRT_HEAD_LR:-}
SEED0=${SEEDS%% *}
XMC=$(readlink -f "$BUILD/xmc")
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-2}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/xmc-xrt.XXXXXX") || exit 1
trap 'rm -rf "$WORK"' EXIT
mkdir "$WORK/enc"
cp "$DATA/bert-random-l2/config.json" "$DATA/bert-random-l2/model.safetensors" "$WORK/enc/" || exit 1
cp "$DATA/bert-vocab/vocab.txt" "$WORK/enc/" || exit 1

p() { awk -F'\t' -v k="$2" '$1==k{print $2; exit}' "$1"; }
row() { printf "| %-10s | %-16s | %8s | %6s | %6s | %6s | %-22s |\n" "$@"; }
# mean_of K FILES...: the mean of metric K over eval outputs, two decimals
mean_of() { local k=$1; shift; for f in "$@"; do p "$f" "$k"; done | awk '{s += $1; n++} END {if (n) printf "%.2f", s / n}'; }

# xrt_args NEGATIVES DIR: the fine-tuning options of every xr-transformer row
xrt_args() {
    echo --xr-transformer --encoder "$WORK/enc" --pooling "$POOLING" --xrt-dir "$2" --xrt-epochs "$EPOCHS" \
        --xrt-lr "$LR" --xrt-warmup "$WARMUP" --xrt-batch "$BATCH" --xrt-negatives "$1" --xrt-man-topk "$MAN_TOPK" \
        --xrt-dropout "$DROPOUT" --xrt-bootstrap "$BOOTSTRAP" ${HEAD_LR:+--xrt-head-lr "$HEAD_LR"}
}

# select_alpha NAME TRAIN MAXLEN: sets ALPHA from a validation split of TRAIN (see the header); prints its table
select_alpha() {
    local name=$1 train=$2 maxlen=$3 neg=${NEGATIVES%% *} a best="" bestp=-1 v pr
    awk 'NR % 10 != 1' "$train" > "$WORK/$name.fit"; awk 'NR % 10 == 1' "$train" > "$WORK/$name.val"
    # shellcheck disable=SC2046
    if ! "$XMC" train --train "$WORK/$name.fit" --model "$WORK/$name-sel" --max-length "$maxlen" --quiet \
        --seed "$SEED0" $(xrt_args "$neg" "$WORK/$name-sel-xrt") > "$WORK/$name-sel.version" 2> "$WORK/$name-sel.log"; then
        echo "alpha selection: fine-tuning failed:"; tail -3 "$WORK/$name-sel.log"; ALPHA=0.3; return
    fi
    v=$(cat "$WORK/$name-sel.version")
    echo "alpha chosen on a validation split: encoder fine-tuned on $(wc -l < "$WORK/$name.fit") training records, rankers" \
         "scored on the other $(wc -l < "$WORK/$name.val") (every 10th), never on the test records:"
    for a in $ALPHAS; do
        local sd evals=() ok=1
        for sd in $SEEDS; do
            rm -rf "$WORK/$name-sel-$a"
            "$XMC" train --train "$WORK/$name.fit" --model "$WORK/$name-sel-$a" --max-length "$maxlen" --alpha "$a" \
                --seed "$sd" --featurizer tfidf+encoder --encoder "$WORK/$name-sel/$v/encoder" --pooling "$POOLING" \
                >/dev/null 2>&1 &&
                "$XMC" eval --model "$WORK/$name-sel-$a" --test "$WORK/$name.val" > "$WORK/$name-sel-$a.$sd.eval" \
                2>/dev/null || { ok=0; break; }
            evals+=("$WORK/$name-sel-$a.$sd.eval")
        done
        [ $ok = 1 ] || { echo "    alpha $a: failed"; continue; }
        pr=$(mean_of P@1 "${evals[@]}")
        echo "    alpha $a: validation P@1 $pr (mean over seeds $SEEDS: $(for e in "${evals[@]}"; do p "$e" P@1; done | tr '\n' ' '))"
        if awk -v x="$pr" -v y="$bestp" 'BEGIN{exit !(x > y)}'; then best=$a; bestp=$pr; fi
        rm -rf "$WORK/$name-sel-$a"
    done
    ALPHA=${best:-0.3}
    echo "    -> alpha $ALPHA"
    rm -rf "$WORK/$name-sel" "$WORK/$name-sel-xrt"
    echo
}

# one data set: NAME TRAIN TEST MAXLEN
one() {
    local name=$1 train=$2 test=$3 maxlen=$4 f t0 t1
    if [ "$ALPHA_SET" = select ]; then select_alpha "$name" "$train" "$maxlen"; else ALPHA=$ALPHA_SET; fi
    echo "### $name: $(wc -l < "$train") training, $(wc -l < "$test") test records; max-length $maxlen, $EPOCHS epochs per level, lr $LR, warm-up $WARMUP steps, batch $BATCH, pooling $POOLING, alpha $ALPHA, negatives $NEGATIVES (man top-k $MAN_TOPK), dropout $DROPOUT, bootstrap $BOOTSTRAP, head lr ${HEAD_LR:-$LR}"
    echo
    row "data" "model" "train s" "P@1" "P@3" "P@5" "P@1 per seed"
    echo "|------------|------------------|----------|--------|--------|--------|------------------------|"
    local rows=(tfidf tfidf+encoder) neg
    [ "$ENCODER_ROWS" = 1 ] && rows+=(encoder)
    for neg in $NEGATIVES; do rows+=("xr-transformer/$neg"); [ "$ENCODER_ROWS" = 1 ] && rows+=("encoder/tuned-$neg"); done
    for f in "${rows[@]}"; do
        local args=(--train "$train" --model "$WORK/$name-${f//[+\/]/_}" --max-length "$maxlen" --alpha "$ALPHA")
        case $f in
        tfidf+encoder) args+=(--featurizer tfidf+encoder --encoder "$WORK/enc" --pooling "$POOLING") ;;
        encoder) args+=(--featurizer encoder --encoder "$WORK/enc" --pooling "$POOLING") ;;
        # the encoder the xr-transformer row above fine-tuned, its embedding alone
        encoder/tuned-*) local x="$WORK/$name-xr-transformer_${f#encoder/tuned-}"; x=${x//+/_}
                         [ -s "$x.version" ] || { echo "($f: no fine-tuned encoder)"; continue; }
                         args+=(--featurizer encoder --encoder "$x/$(cat "$x.version")/encoder" --pooling "$POOLING") ;;
        # shellcheck disable=SC2207
        xr-transformer/*) args+=($(xrt_args "${f#*/}" "$WORK/$name-xrt-${f#*/}")) ;;
        esac
        local shown=$f
        f=${f//[+\/]/_}
        t0=$(date +%s.%N)
        if ! "$XMC" train "${args[@]}" --seed "$SEED0" > "$WORK/$name-$f.version" 2> "$WORK/$name-$f.log"; then
            echo "train $f failed:"; tail -3 "$WORK/$name-$f.log"; continue
        fi
        t1=$(date +%s.%N)
        "$XMC" eval --model "$WORK/$name-$f" --test "$test" > "$WORK/$name-$f.$SEED0.eval" 2>/dev/null || { echo "eval $f failed"; continue; }
        # the other seeds: the rankers (and their tree) again; an xr-transformer row keeps its fine-tuned encoder
        local sd evals=("$WORK/$name-$f.$SEED0.eval") more=()
        case $f in
        xr-transformer*) more=(--featurizer tfidf+encoder --encoder "$WORK/$name-$f/$(cat "$WORK/$name-$f.version")/encoder"
                               --pooling "$POOLING") ;;
        esac
        for sd in ${SEEDS#"$SEED0"}; do
            local a2=("${args[@]}")
            case $f in xr-transformer*) a2=(--train "$train" --model "$WORK/$name-$f-s" --max-length "$maxlen" --alpha "$ALPHA" "${more[@]}") ;;
                       *) a2[3]="$WORK/$name-$f-s" ;; esac
            rm -rf "$WORK/$name-$f-s"
            "$XMC" train "${a2[@]}" --seed "$sd" > /dev/null 2>&1 &&
                "$XMC" eval --model "$WORK/$name-$f-s" --test "$test" > "$WORK/$name-$f.$sd.eval" 2>/dev/null ||
                { echo "seed $sd of $f failed"; continue; }
            evals+=("$WORK/$name-$f.$sd.eval")
        done
        rm -rf "$WORK/$name-$f-s"
        row "$name" "$shown" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')" "$(mean_of P@1 "${evals[@]}")" \
            "$(mean_of P@3 "${evals[@]}")" "$(mean_of P@5 "${evals[@]}")" \
            "$(for e in "${evals[@]}"; do p "$e" P@1; done | tr '\n' ' ')"
    done
    echo
    for neg in $NEGATIVES; do
        echo "Fine-tuning, per level ($neg):"
        grep -o 'xr-transformer level [0-9]*/[0-9]* done.*s' "$WORK/$name-xr-transformer_${neg//+/_}.log" | sed 's/^/    /'
        grep 'fine-tuning:' "$WORK/$name-xr-transformer_${neg//+/_}.log" | sed 's/^/    /'
    done
    echo
}

echo "## XR-Transformer vs TF-IDF XR-Linear (random-init encoder $(awk -F': ' '/hidden_size|num_hidden_layers/{gsub(/,/,"",$2); printf "%s ", $2}' "$WORK/enc/config.json")= hidden, layers)"
echo
for set in ${XRT_SETS:-reuters catalog}; do
    case $set in
    reuters) one reuters "$DATA/reuters/train.tsv" "$DATA/reuters/test.tsv" "$RMAXLEN" ;;
    catalog)
        "$XMC" gen --labels "$LABELS" --docs $((DOCS + NTEST)) --seed 1 --zipf 0.5 --out "$WORK/cat.tsv" || exit 1
        head -n "$DOCS" "$WORK/cat.tsv" > "$WORK/cat.train"; tail -n "$NTEST" "$WORK/cat.tsv" > "$WORK/cat.test"
        one catalog "$WORK/cat.train" "$WORK/cat.test" 32 ;;
    esac
done
exit 0
}
