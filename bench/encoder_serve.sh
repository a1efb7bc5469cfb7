#!/usr/bin/env bash
# encoder_serve.sh: records/s of a tfidf+encoder model (random MiniLM-L6-H384-shaped encoder, bench/bert_torch.py
# gen) per text vs in batches of 1, 32, 256 (bench/encoder_serve.c), on Reuters headlines (short, ~10-20 tokens,
# like product titles) and whole Reuters texts (cut at 128 tokens). The model is trained on the committed Reuters
# sample (300 documents). OpenBLAS gets THREADS (default 2) threads; best of ROUNDS (default 3) per point.
# Usage: bash bench/encoder_serve.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
export BENCH_MIN_TIME=${BENCH_MIN_TIME:-1}
make -s BUILD="$BUILD" "$BUILD/libxmc.a" "$BUILD/xmc"
CFLAGS_MK=$(make -s BUILD="$BUILD" --eval 'print-cflags: ; @echo "$(CFLAGS)"' print-cflags)
LIBS_MK=$(make -s BUILD="$BUILD" --eval 'print-libs: ; @echo "$(LDFLAGS) $(LDLIBS)"' print-libs)
# shellcheck disable=SC2086
cc $CFLAGS_MK -o "$BUILD/encoder_serve" bench/encoder_serve.c "$BUILD/libxmc.a" $LIBS_MK
tmp=$(mktemp -d /tmp/xmc-encoder-serve-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 bench/bert_torch.py gen "$tmp/enc"
cp tests/data/bert-vocab/vocab.txt "$tmp/enc/vocab.txt"
S=tests/data/reuters-sample
OPENBLAS_NUM_THREADS=$THREADS "$BUILD/xmc" train --quiet --train "$S/train.tsv" --model "$tmp/repo" \
  --featurizer tfidf+encoder --encoder "$tmp/enc" --pooling mean > /dev/null
echo "cpu: $(nproc) cores, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1); OpenBLAS threads $THREADS"
for kind in short long; do
  for r in $(seq 1 "$ROUNDS"); do
    OPENBLAS_NUM_THREADS=$THREADS "$BUILD/encoder_serve" "$tmp/repo" "$S/test.tsv" "$kind" > "$tmp/$kind.$r"
  done
  echo "$kind texts (load average $(cut -d' ' -f1 /proc/loadavg)): records/s, best of $ROUNDS"
  cat "$tmp/$kind".* | awk '{ if (!($1 in b) || $2 > b[$1]) b[$1] = $2; if (!($1 in o)) { o[$1] = ++n; k[n] = $1 } }
    END { for (i = 1; i <= n; i++) printf "  %-9s %9.1f  (%.2fx one text per call)\n", k[i], b[k[i]], b[k[i]] / b["text"] }'
done
