#!/usr/bin/env bash
# Featurisers encoder and tfidf+encoder (bert-random-h16 weights, bert-base-uncased vocabulary): train, predict,
# the manifest's featurizer and encoder checksum, and refusal when the encoder changed after training.
set -u
XMC=${XMC_BIN:-build/xmc}
D=$(dirname "$0")/../data
[ -d "$D/bert-random-h16" ] || { echo "$D/bert-random-h16 missing"; exit 1; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
cp "$D/reuters-sample/train.tsv" "$T/train.tsv" # 300 Reuters documents
mkdir "$T/enc"; cp "$D/bert-random-h16/config.json" "$D/bert-random-h16/model.safetensors" "$T/enc/"
cp "$D/bert-vocab/vocab.txt" "$T/enc/vocab.txt"
for f in encoder tfidf+encoder; do
  V=$($XMC train --quiet --train "$T/train.tsv" --model "$T/repo-$f" --featurizer "$f" --encoder "$T/enc" --pooling mean) \
    || fail "train --featurizer $f"
  grep -q "kind = \"$f\"" "$T/repo-$f/$V/manifest.cfg" || fail "$f: manifest lacks featurizer.kind"
  grep -q "weights_xxh64" "$T/repo-$f/$V/manifest.cfg" || fail "$f: manifest lacks the encoder checksum"
  $XMC predict --model "$T/repo-$f" --test "$T/train.tsv" -k 3 > "$T/pred" || fail "predict $f"
  [ "$(wc -l < "$T/pred")" -eq 300 ] || fail "$f: want 300 prediction lines"
  p1=$($XMC eval --model "$T/repo-$f" --test "$T/train.tsv" | awk '$1=="P@1"{print $2}')
  echo "$f: training-set P@1 $p1"
  # random weights: the embedding alone is weak, but must beat chance (90 labels); with TF-IDF it must fit
  want=20; [ "$f" = tfidf+encoder ] && want=90
  awk -v p="$p1" -v w="$want" 'BEGIN{exit !(p > w)}' || fail "$f: P@1 $p1 on its own training data (want > $want)"
done
# the encoder changes after training: the version is refused with a checksum message
printf '\x01' | dd of="$T/enc/model.safetensors" bs=1 seek=100000 conv=notrunc 2>/dev/null
$XMC predict --model "$T/repo-encoder" --test "$T/train.tsv" > /dev/null 2> "$T/err" && fail "changed encoder accepted"
grep -q "changed since training" "$T/err" || { cat "$T/err"; fail "no checksum message"; }
echo ok
