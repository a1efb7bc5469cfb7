#!/usr/bin/env bash
# featurizers.sh: Reuters-21578 P@k and costs with the three featurisers side by side: tfidf, encoder,
# tfidf+encoder. The encoder is bert-random-l2 (random weights, hidden 128, 2 layers) with the real
# bert-base-uncased vocabulary: with random weights the embedding alone is weak; the table shows that the path
# works end to end and what it costs (train time, docs/s, RSS).
# Usage: bash bench/featurizers.sh   (BUILD, DATA as for make bench)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
DATA=${DATA:-../shared/data}
XMC=$BUILD/xmc
for f in reuters/train.tsv reuters/test.tsv bert-random-l2/model.safetensors bert-vocab/vocab.txt; do
  [ -f "$DATA/$f" ] || { echo "featurizers: $DATA/$f missing, skipped"; exit 0; }
done
tmp=$(mktemp -d /tmp/xmc-feat-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/enc"
ln -s "$(realpath "$DATA/bert-random-l2/config.json")" "$tmp/enc/config.json"
ln -s "$(realpath "$DATA/bert-random-l2/model.safetensors")" "$tmp/enc/model.safetensors"
ln -s "$(realpath "$DATA/bert-vocab/vocab.txt")" "$tmp/enc/vocab.txt"
rss() { sed -n 's/.*Maximum resident set size (kbytes): //p' "$1" | awk '{printf "%.0f", $1/1024}'; }
echo "Reuters-21578 by featuriser (encoder: bert-random-l2, random weights, mean pooling, 128 tokens; threshold 0.01, Cp 2)"
printf '%-15s %6s %6s %6s %7s %8s %10s %12s\n' featurizer P@1 P@3 P@5 nDCG@5 train_s predict/s "RSS MB tr/pr"
for f in tfidf encoder tfidf+encoder; do
  extra=""; [ "$f" != tfidf ] && extra="--encoder $tmp/enc --pooling mean"
  # shellcheck disable=SC2086
  /usr/bin/time -v -o "$tmp/t.train" $XMC train --quiet --train "$DATA/reuters/train.tsv" --model "$tmp/m-$f" \
    --featurizer "$f" --threshold 0.01 --cp 2 $extra > /dev/null
  tr=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$tmp/t.train" | awk -F: '{print ($1*60)+$2}')
  /usr/bin/time -v -o "$tmp/t.eval" $XMC eval --model "$tmp/m-$f" --test "$DATA/reuters/test.tsv" --threads 1 > "$tmp/e"
  g() { awk -v k="$1" '$1==k{print $2}' "$tmp/e"; }
  printf '%-15s %6s %6s %6s %7s %8.1f %10s %12s\n' "$f" "$(g P@1)" "$(g P@3)" "$(g P@5)" "$(g nDCG@5)" "$tr" "$(g docs/s)" \
    "$(rss "$tmp/t.train")/$(rss "$tmp/t.eval")"
done
