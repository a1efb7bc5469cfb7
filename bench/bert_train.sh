#!/usr/bin/env bash
# bert_train.sh: the encoder's training step: the full reference check, arena sizes and a first speed figure.
#
# 1. The full reference set ($DATA/bert-train-refs on $DATA/bert-random-l2: PyTorch's loss, the gradient of every
#    tensor and the parameters after one AdamW and one PECOS-style step, four variants) through the same checks as
#    `make test`'s tests/test_bert_train.c, which runs them on its small committed set; skipped, and said so, when
#    the data is not there.
# 2. Unless BENCH_TRAIN_SPEED=0: one training step (forward + backward + AdamW, mean pooling) of a random
#    MiniLM-L6-H384-shaped BERT (bench/bert_torch.py gen) at batch 32 x seq 32 and 32 x 128, C beside PyTorch on the
#    same ids, the same BLAS (OpenBLAS) and cores (THREADS, default 2: C's own threads with OpenBLAS at one, as
#    `xmc train --xr-transformer` runs, or OpenBLAS's with BENCH_PRODUCTS=openblas; PyTorch's OpenBLAS at THREADS
#    and 1 intra-op thread), with peak RSS and
#    the C arenas; each with mean pooling and with cls pooling (POOLINGS), where C runs the last layer on the first
#    tokens alone, and with cls pooling and PECOS's optimiser step ("cls+pecos": clipping, AdamW without weight
#    decay; C's by rows of the word table, as the product runs it); best of ROUNDS per side, and each round's C/PyTorch ratio (the two run one after the other)
#    with their median. Measuring only: no goal is checked here.
# Usage: bash bench/bert_train.sh   (BUILD, DATA, THREADS, BENCH_MIN_TIME seconds per point, default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
DATA=${DATA:-../shared/data}
THREADS=${THREADS:-2}
PY=/usr/bin/python3

echo "### Encoder training step (backward pass, XMC head loss, AdamW)"
echo
make -s BUILD="$BUILD" "$BUILD/tests/test_bert_train"
if [ -f "$DATA/bert-train-refs/grads_cls.safetensors" ] && [ -f "$DATA/bert-random-l2/model.safetensors" ]; then
    echo "Reference check on $DATA/bert-train-refs (bert-random-l2, float32 C vs PyTorch float64, README tolerances):"
    if out=$(XMC_TRAIN_REFS="$DATA/bert-train-refs" XMC_TRAIN_MODEL="$DATA/bert-random-l2" \
             OPENBLAS_NUM_THREADS=$THREADS "$BUILD/tests/test_bert_train" 2>&1); then status=passed; else status=FAILED; fi
    printf '%s\n' "$out" | grep -E '^  [a-zA-Z]' | grep -v MiniLM || true
    echo "reference check: $status ($(printf '%s\n' "$out" | sed -n 's/^XMC-SUITE-RESULT \([0-9]*\) \([0-9]*\)/\1 checks passed, \2 failed/p'))"
else
    echo "Reference check skipped: $DATA/bert-train-refs or $DATA/bert-random-l2 is not there (make test still checks the small set)."
fi

[ "${BENCH_TRAIN_SPEED:-1}" = 1 ] || exit 0
echo
CFLAGS_MK=$(make -s BUILD="$BUILD" --eval 'print-cflags: ; @echo "$(CFLAGS)"' print-cflags)
LIBS_MK=$(make -s BUILD="$BUILD" --eval 'print-libs: ; @echo "$(LDFLAGS) $(LDLIBS)"' print-libs)
# shellcheck disable=SC2086
cc $CFLAGS_MK -Isrc/lib -o "$BUILD/bert_train_bench" bench/bert_train_bench.c "$BUILD/libxmc.a" $LIBS_MK
tmp=$(mktemp -d /tmp/xmc-bert-train-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
$PY bench/bert_torch.py gen "$tmp"
# catalog titles (the taxonomy generator's, as section 6's catalogs): one more point, where each side runs as its
# pipeline does: C packed, PyTorch padded to max_length 128 (PECOS's tokenizer: padding="max_length") and to the
# batch's longest (a dynamic-padding pipeline)
titles_note="catalog titles skipped: $DATA/taxonomy or $DATA/bert-vocab is not there"
if [ -f "$DATA/taxonomy/categories.tsv" ] && [ -f "$DATA/bert-vocab/vocab.txt" ]; then
    make -s BUILD="$BUILD" "$BUILD/xmc"
    "$BUILD/xmc" gen --taxonomy "$DATA/taxonomy/categories.tsv" --docs 64 --seed 1 --out "$tmp/titles.tsv" 2>/dev/null &&
        $PY bench/bert_torch.py titles "$tmp" "$tmp/titles.tsv" "$DATA/bert-vocab/vocab.txt" &&
        titles_note=$($PY -c 'import numpy as np, sys; l = np.fromfile(sys.argv[1], dtype="<i4"); print("32 titles of `xmc gen --taxonomy` (seed 1), %d to %d WordPiece tokens with [CLS] and [SEP], mean %.1f" % (l.min(), l.max(), l.mean()))' "$tmp/title_lens.bin")
fi
echo "Training step speed: random MiniLM-L6-H384 shape (6 layers, hidden 384, 12 heads, FFN 1536, vocab 30522);"
if [ "${BENCH_PRODUCTS:-}" = openblas ]; then
    echo "OpenBLAS threads $THREADS in both (C's products on OpenBLAS's pool: BENCH_PRODUCTS=openblas), torch intra-op threads 1;"
else
    echo "C: $THREADS threads of the library's own, products included, OpenBLAS at 1; PyTorch: OpenBLAS $THREADS threads, intra-op 1;"
fi
echo "step = forward + pooling (mean; cls: the first token) + backward + AdamW."
# shellcheck source=bench/torch_malloc.sh
. bench/torch_malloc.sh
echo "$TORCH_MALLOC_NOTE"
# Rounds alternate C and PyTorch and the best of each point is kept (as bert_bench.sh): the 2 cores are shared,
# and a busy neighbour during one run should not decide the comparison.
ROUNDS=${ROUNDS:-3}
have_torch=1
$PY -c 'import torch' 2>/dev/null || { have_torch=0; echo "python3-torch is not installed: PyTorch column empty"; }
# POOLINGS: the configurations, a pooling, with "+pecos" for PECOS's optimiser step (both sides) instead of
# torch.optim.AdamW with weight decay 0.01 over every tensor
POOLINGS=${POOLINGS:-mean cls cls+pecos}
for r in $(seq 1 "$ROUNDS"); do
    for p in $POOLINGS; do
        pool=${p%%+*} recipe=torch
        [ "$pool" != "$p" ] && recipe=${p#*+}
        BENCH_POOLING=$pool BENCH_RECIPE=$recipe OPENBLAS_NUM_THREADS=$THREADS "$BUILD/bert_train_bench" "$tmp" "$tmp/c.$p.$r"
        [ $have_torch = 1 ] && BENCH_POOLING=$pool BENCH_RECIPE=$recipe LD_PRELOAD=$TORCH_PRELOAD OPENBLAS_NUM_THREADS=$THREADS \
            TORCH_THREADS=1 $PY bench/bert_train_torch.py "$tmp" "$tmp/torch.$p.$r"
    done
    echo "round $r: load average $(cut -d' ' -f1 /proc/loadavg)"
done
best() { # per point: the line with the highest tokens/s; rss and arenas: the highest
    cat "$@" | awk '$1 == "rss_kb" { if ($2 > rss) rss = $2; next } $1 == "arena_bytes" { arena = $0; next }
      $1 == "sgemm_gflops" { if ($2 > sg) sg = $2; next }
      { k = $1 " " $2; if (!(k in tok) || $3 > tok[k]) { tok[k] = $3; line[k] = $0 } if (!(k in order)) { order[k] = ++n; key[n] = k } }
      END { for (i = 1; i <= n; i++) print line[key[i]]; if (arena != "") print arena; if (sg != "") print "sgemm_gflops", sg
            print "rss_kb", rss }'
}
printf '%-7s %-5s %-5s | %12s %8s %8s %8s | %12s | %7s\n' pooling seq batch "C tokens/s" "fwd s" "bwd s" "adam s" "torch tok/s" "C/torch"
for p in $POOLINGS; do
    best "$tmp"/c.$p.[0-9]* > "$tmp/c.$p.txt"
    if [ $have_torch = 1 ]; then best "$tmp"/torch.$p.[0-9]* > "$tmp/torch.$p.txt"; else : > "$tmp/torch.$p.txt"; fi
    paste -d' ' <(grep -E '^[0-9]' "$tmp/c.$p.txt") <(grep -E '^[0-9]' "$tmp/torch.$p.txt" || true) |
        awk -v p="$p" '{ t = NF >= 9 ? $9 : 0; printf "%-7s %-5d %-5d | %12.0f %8.3f %8.3f %8.3f | %12.0f | %s\n", p, $1, $2, $3, $4, $5, $6, t, (t > 0 ? sprintf("%.2fx", $3 / t) : "-") }'
done
first=${POOLINGS%% *}
awk '$1 == "arena_bytes" { printf "C arenas (batch 32 x 128): parameters %.1f MiB, gradients %.1f MiB, AdamW moments %.1f MiB, activations %.1f MiB, activation gradients %.1f MiB\n", $2/1048576, $3/1048576, $4/1048576, $5/1048576, $6/1048576 }' "$tmp/c.$first.txt"
echo "best of $ROUNDS rounds per point (BENCH_MIN_TIME ${BENCH_MIN_TIME:-2} s each); fwd/bwd/adam: seconds per step of that round"
echo "cls: the first token's hidden state; C then runs the last layer on the first tokens alone (its keys and values on"
echo "every token), PyTorch's BertModel computes every token of it, as HF's (and so PECOS's) training does."
echo "+pecos: PECOS's optimiser step on both sides (clipping to global norm 1, AdamW without weight decay: HF's form in C,"
echo "torch's in PyTorch, the same work), C's as xmc train --xr-transformer runs it (bert_opt.h: the word-embedding table"
echo "zeroed, clipped and stepped only in the rows a batch has reached; the same bits as the whole table); the others:"
echo "torch.optim.AdamW with weight decay 0.01 over every tensor on both sides. The batch is the same every step."
if [ $have_torch = 1 ]; then # the pairs: C and PyTorch of the same round, run one after the other
    for p in $POOLINGS; do
        for r in $(seq 1 "$ROUNDS"); do paste -d' ' <(grep -E '^[0-9]' "$tmp/c.$p.$r") <(grep -E '^[0-9]' "$tmp/torch.$p.$r"); done |
            awk -v p="$p" '{ k = p ", seq x batch " $1 " x " $2; q = $3 / $9; v[k] = v[k] sprintf(" %.2f", q); n[k]++; x[k, n[k]] = q; if (!(k in o)) { o[k] = ++m; key[m] = k } }
              END { for (i = 1; i <= m; i++) { k = key[i]; c = n[k]
                      for (a = 1; a <= c; a++) for (b = a + 1; b <= c; b++) if (x[k, b] < x[k, a]) { t = x[k, a]; x[k, a] = x[k, b]; x[k, b] = t }
                      med = c % 2 ? x[k, (c + 1) / 2] : (x[k, c / 2] + x[k, c / 2 + 1]) / 2
                      printf "C/torch per pair (round by round), %s:%s; median %.2fx\n", k, v[k], med } }'
    done
fi
# The products' work against the machine's sgemm rate (bert_train_bench.c: step_flops, sgemm_rate): how near each
# side runs to what the cores can do, and the most C/torch could be were C's whole step at that rate.
sg=$(cat "$tmp"/c.*.txt | awk '$1 == "sgemm_gflops" && $2 > m { m = $2 } END { print m + 0 }')
echo
echo "The matrix products' work per step (linear layers, attention's two products; 3 x the forward's) against this"
echo "machine's sgemm rate, $sg GFLOP/s ($THREADS threads at once, single-threaded OpenBLAS calls of the FFN's shape"
echo "in its three layouts, best of 5 per round, best round); from the best rounds above:"
printf '%-9s %-5s %-5s | %9s %9s %9s | %9s %9s %9s | %13s\n' pooling seq batch "C GFLOP" "C GFLOP/s" "of rate" \
    "torch GF" "GFLOP/s" "of rate" "C/torch bound"
for p in $POOLINGS; do
    [ -s "$tmp/torch.$p.txt" ] || continue
    awk -v p="$p" -v sg="$sg" 'FNR == 1 { file++ }
        file == 1 && $1 == "flops" { fc[$2 " " $3] = $4; ff[$2 " " $3] = $5; next }
        file == 1 && $1 ~ /^[0-9]/ { c[$1 " " $2] = $3; if (!(($1 " " $2) in o)) { o[$1 " " $2] = ++m; key[m] = $1 " " $2 } next }
        file == 2 && $1 ~ /^[0-9]/ { t[$1 " " $2] = $3 }
        END { for (i = 1; i <= m; i++) { k = key[i]; split(k, a, " "); tok = a[1] * a[2]
                if (!(k in fc) || !(k in t) || sg <= 0) continue
                cg = fc[k] * c[k] / tok / 1e9; tg = ff[k] * t[k] / tok / 1e9
                printf "%-9s %-5d %-5d | %9.1f %9.1f %8.0f%% | %9.1f %9.1f %8.0f%% | %12.2fx\n", p, a[1], a[2], fc[k] / 1e9, cg,
                       100 * cg / sg, ff[k] / 1e9, tg, 100 * tg / sg, sg * 1e9 / fc[k] / (t[k] / tok) } }' \
        "$tmp/c.$p.txt" "$tmp/torch.$p.txt"
done
echo "C/torch bound: PyTorch's step time over C's products alone at the sgemm rate (C's FLOP / rate): what C would"
echo "reach with every product at the rate and nothing else in its step. C counts its own work (cls: the last layer"
echo "on the first tokens), PyTorch's every token's."
echo
echo "One training step on catalog titles: $titles_note."
if [ -f "$tmp/title_lens.bin" ]; then
    echo "C packs the sequences (the tokens it computes are the titles'); PyTorch pads to 128 (PECOS's recipe) or to"
    echo "the batch's longest; best of $ROUNDS rounds, texts/s:"
    printf '%-7s | %10s | %14s %14s | %12s %12s\n' pooling "C packed" "torch pad 128" "torch longest" "C/pad 128" "C/longest"
    for p in $POOLINGS; do
        c=$(awk '$1 == "titles_packed" { print $3 }' "$tmp/c.$p.txt")
        t1=$(awk '$1 == "titles_pad128" { print $3 }' "$tmp/torch.$p.txt")
        t2=$(awk '$1 == "titles_padlongest" { print $3 }' "$tmp/torch.$p.txt")
        awk -v p="$p" -v c="${c:-0}" -v a="${t1:-0}" -v b="${t2:-0}" 'BEGIN { printf "%-7s | %10.1f | %14.1f %14.1f | %12s %12s\n", p, c, a, b,
            (a > 0 ? sprintf("%.2fx", c / a) : "-"), (b > 0 ? sprintf("%.2fx", c / b) : "-") }'
    done
fi
cat "$tmp"/c.*.txt | awk '$1 == "rss_kb" && $2 > m { m = $2 } END { print "rss_kb", m }' > "$tmp/c.txt"
cat "$tmp"/torch.*.txt 2>/dev/null | awk '$1 == "rss_kb" && $2 > m { m = $2 } END { print "rss_kb", m + 0 }' > "$tmp/torch.txt"
echo "peak RSS: C $(awk '/rss_kb/ { printf "%.0f MB", $2 / 1024 }' "$tmp/c.txt"), PyTorch $(awk '/rss_kb/ { printf "%.0f MB", $2 / 1024 }' "$tmp/torch.txt")"
