#!/usr/bin/env bash
# Featurisers encoder and tfidf+encoder (bert-random-h16 weights, bert-base-uncased vocabulary): train, predict,
# the manifest's featurizer and the encoder files copied into the version; a version copied elsewhere with the
# original encoder deleted classifies identically; a flipped byte in its copied weights is refused as corrupt.
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
  for c in config.json model.safetensors vocab.txt; do
    cmp -s "$T/repo-$f/$V/encoder/$c" "$T/enc/$c" || fail "$f: encoder/$c not copied into the version"
    grep -q "file = \"encoder/$c\"" "$T/repo-$f/$V/manifest.cfg" || fail "$f: manifest does not list encoder/$c"
  done
  grep -q "format_version = 2" "$T/repo-$f/$V/manifest.cfg" || fail "$f: a version with copied files is not format 2"
  $XMC predict --model "$T/repo-$f" --test "$T/train.tsv" -k 3 > "$T/pred" || fail "predict $f"
  [ "$(wc -l < "$T/pred")" -eq 300 ] || fail "$f: want 300 prediction lines"
  p1=$($XMC eval --model "$T/repo-$f" --test "$T/train.tsv" | awk '$1=="P@1"{print $2}')
  echo "$f: training-set P@1 $p1"
  # random weights: the embedding alone is weak, but must beat chance (90 labels); with TF-IDF it must fit
  want=20; [ "$f" = tfidf+encoder ] && want=90
  awk -v p="$p1" -v w="$want" 'BEGIN{exit !(p > w)}' || fail "$f: P@1 $p1 on its own training data (want > $want)"
done
# with OpenBLAS at one thread the training texts are embedded on --threads threads, chunk by chunk (300 texts:
# chunks of 256 and 44): 1 and 2 threads give the same model, so the same predictions and scores
for t in 1 2; do
  OPENBLAS_NUM_THREADS=1 $XMC train --quiet --train "$T/train.tsv" --model "$T/repo-t$t" --featurizer tfidf+encoder \
    --encoder "$T/enc" --pooling mean --threads $t > /dev/null || fail "train --threads $t with OpenBLAS at 1"
  $XMC predict --model "$T/repo-t$t" --test "$T/train.tsv" -k 5 > "$T/pred-t$t" || fail "predict t$t"
done
cmp -s "$T/pred-t1" "$T/pred-t2" || fail "embedding on 2 threads trained another model than on 1"
# the version is one directory: copied elsewhere, with the encoder it was trained from gone, it classifies the same
for f in encoder tfidf+encoder; do
  $XMC predict --model "$T/repo-$f" --test "$T/train.tsv" -k 5 > "$T/before-$f" || fail "predict $f"
done
V=$(cat "$T/repo-tfidf+encoder/CURRENT")
cp -r "$T/repo-tfidf+encoder/$V" "$T/moved"
rm -rf "$T/enc" "$T/repo-tfidf+encoder"
$XMC predict --model "$T/moved" --test "$T/train.tsv" -k 5 > "$T/after" || fail "the moved version does not open"
cmp -s "$T/before-tfidf+encoder" "$T/after" || fail "the moved version classifies differently"
# one flipped byte in the copied weights: refused as corrupt, naming the file
printf '\x01' | dd of="$T/moved/encoder/model.safetensors" bs=1 seek=1000 conv=notrunc 2>/dev/null
$XMC predict --model "$T/moved" --test "$T/train.tsv" > /dev/null 2> "$T/err" && fail "damaged encoder weights accepted"
grep -q "encoder/model.safetensors: checksum .* (file damaged)" "$T/err" || { cat "$T/err"; fail "no checksum message"; }
echo ok
