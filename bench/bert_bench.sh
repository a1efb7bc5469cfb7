#!/usr/bin/env bash
# bert_bench.sh: C encoder vs PyTorch (CPU) on the same random MiniLM-L6-H384-shaped BERT, same ids, same threads.
#
# Generates the model with a fixed seed into a temp dir (bench/bert_torch.py gen), builds bench/bert_bench.c with
# the Makefile's flags against libxmc.a, then times forward + mean pooling at sequence lengths 32 and 128 and
# batches 1 and 32 in both, and prints tokens/s, sequences/s and peak RSS side by side. Threads: OpenBLAS gets
# THREADS (default 2, every core here) in both runs; PyTorch runs 1 intra-op thread (TORCH_THREADS), so that its
# OpenMP pool does not fight OpenBLAS's. PyTorch must reach OpenBLAS as the system libblas.so.3 (checked below).
# Usage: bash bench/bert_bench.sh   (BENCH_MIN_TIME seconds per point, default 1; ROUNDS, default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
THREADS=${THREADS:-2}
TORCH_THREADS=${TORCH_THREADS:-1}
export BENCH_MIN_TIME=${BENCH_MIN_TIME:-1}
PY=/usr/bin/python3

blas=$(update-alternatives --query libblas.so.3-x86_64-linux-gnu 2>/dev/null | sed -n 's/^Value: //p' || true)
echo "system BLAS (libblas.so.3): ${blas:-unknown}"
case "$blas" in *openblas*) ;; *) echo "warning: PyTorch is not on OpenBLAS; its numbers mean nothing (DESIGN.md section 9)" >&2 ;; esac

make -s BUILD="$BUILD" "$BUILD/libxmc.a"
CFLAGS_MK=$(make -s BUILD="$BUILD" --eval 'print-cflags: ; @echo "$(CFLAGS)"' print-cflags)
LIBS_MK=$(make -s BUILD="$BUILD" --eval 'print-libs: ; @echo "$(LDFLAGS) $(LDLIBS)"' print-libs)
# shellcheck disable=SC2086
cc $CFLAGS_MK -Isrc/lib -o "$BUILD/bert_bench" bench/bert_bench.c "$BUILD/libxmc.a" $LIBS_MK

tmp=$(mktemp -d /tmp/xmc-bert-bench-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
$PY bench/bert_torch.py gen "$tmp"
echo "model: random MiniLM-L6-H384 shape (6 layers, hidden 384, 12 heads, FFN 1536, vocab 30522), $(stat -c %s "$tmp/model.safetensors") bytes"
# shellcheck source=bench/torch_malloc.sh
. bench/torch_malloc.sh
echo "$TORCH_MALLOC_NOTE"
echo "cpu: $(nproc) cores, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1); OpenBLAS threads $THREADS; torch intra-op threads $TORCH_THREADS"
t0=$(date +%s)
# Rounds alternate C and PyTorch and the best of each point is kept: the 2 cores are shared, and a busy
# neighbour during one run should not decide the comparison.
ROUNDS=${ROUNDS:-3}
DATA=${DATA:-../shared/data}
tok_args=()
[ -f "$DATA/bert-vocab/vocab.txt" ] && [ -f "$DATA/reuters/test.tsv" ] && tok_args=("$DATA/bert-vocab/vocab.txt" "$DATA/reuters/test.tsv")
for r in $(seq 1 "$ROUNDS"); do
  OPENBLAS_NUM_THREADS=$THREADS "$BUILD/bert_bench" "$tmp" "$tmp/c.$r" "${tok_args[@]}"
  LD_PRELOAD=$TORCH_PRELOAD OPENBLAS_NUM_THREADS=$THREADS TORCH_THREADS=$TORCH_THREADS \
    $PY bench/bert_torch.py bench "$tmp" "$tmp/torch.$r"
  echo "round $r: load average $(cut -d' ' -f1 /proc/loadavg)"
done
best() { # per point: the highest tokens/s over the rounds; rss: the highest
  cat "$@" | awk '$1 == "rss_kb" { if ($2 > rss) rss = $2; next }
    $1 == "tokenizer" { if (tok_line == "" || $5 < tok_s) { tok_line = $0; tok_s = $5 } next }
    { k = $1 " " $2; if (!(k in tok) || $3 > tok[k]) { tok[k] = $3; seq[k] = $4 } if (!(k in order)) { order[k] = ++n; key[n] = k } }
    END { for (i = 1; i <= n; i++) print key[i], tok[key[i]], seq[key[i]]; print "rss_kb", rss; if (tok_line != "") print tok_line }'
}
best "$tmp"/c.* > "$tmp/c.txt"
best "$tmp"/torch.* > "$tmp/torch.txt"
echo
printf '%-5s %-5s | %12s %10s | %12s %10s | %7s\n' seq batch "C tokens/s" "C seqs/s" "torch tok/s" "torch seq/s" "C/torch"
printf '%s\n' "------------+-------------------------+-------------------------+--------"
paste -d' ' <(grep -v 'rss\|tokenizer' "$tmp/c.txt") <(grep -v 'rss\|tokenizer' "$tmp/torch.txt") |
  awk '{ printf "%-5d %-5d | %12.0f %10.1f | %12.0f %10.1f | %6.2fx\n", $1, $2, $3, $4, $7, $8, $3 / $7 }'
echo
echo "peak RSS: C $(awk '/rss_kb/ { printf "%.0f MB", $2 / 1024 }' "$tmp/c.txt"), PyTorch $(awk '/rss_kb/ { printf "%.0f MB", $2 / 1024 }' "$tmp/torch.txt") (model file $(( $(stat -c %s "$tmp/model.safetensors") / 1048576 )) MB)"
awk '$1 == "tokenizer" { printf "C WordPiece tokenizer (reuters/test.tsv, bert-base-uncased vocab, no truncation): %d texts, %.1f MB, %.0f pieces in %.3f s = %.2f M pieces/s, %.0f MB/s (1 thread)\n", $2, $3 / 1e6, $4, $5, $4 / $5 / 1e6, $3 / $5 / 1e6 }' "$tmp/c.txt"
echo "forward + mean pooling, token ids given (tokenisation not timed); best of $ROUNDS rounds of ${BENCH_MIN_TIME}s per point; total $(( $(date +%s) - t0 ))s"
