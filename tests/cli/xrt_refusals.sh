#!/usr/bin/env bash
# xrt_refusals.sh: `xmc train --xr-transformer` refuses what would waste a run or publish a broken model, each with
# a message naming the cause, CURRENT left alone: a diverging run (NaN gradients) stops at the step it diverged;
# an encoder with a NaN weight is refused at load (also as a plain tfidf+encoder featurizer); more steps a level
# than a step counter holds, a vocabulary larger than config.json's vocab_size, a work directory that is a file
# or a checkpoint that is a directory are refused before any work; a checkpoint resumed after config.json's
# architecture changed is another run's; a config.json naming fewer layers than the weights hold is refused, and
# so is --featurizer tfidf beside --xr-transformer, and a second run on a work directory one is using. bert-random-h16 weights, bert-base-uncased vocabulary, 300 Reuters docs.
set -u
XMC=${XMC_BIN:-build/xmc}
D=$(dirname "$0")/../data
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
mkdir "$T/enc"; cp "$D/bert-random-h16/config.json" "$D/bert-random-h16/model.safetensors" "$T/enc/"
cp "$D/bert-vocab/vocab.txt" "$T/enc/vocab.txt"
TR=$D/reuters-sample/train.tsv
COMMON=(--train "$TR" --xr-transformer --max-length 16 --xrt-nr-splits 4 --xrt-max-leaf-size 8 --quiet)
export OPENBLAS_NUM_THREADS=1
expect() { # NAME GREP CMD...: exits non-zero with GREP in stderr, and no version became CURRENT
  local name=$1 want=$2; shift 2
  "$@" > /dev/null 2> "$T/err" && fail "$name: exited 0"
  grep -q -- "$want" "$T/err" || fail "$name: want '$want', got: $(cat "$T/err")"
  [ ! -e "$T/repo/CURRENT" ] || fail "$name: CURRENT was written"
}
expect "diverging run" "level 1 step [0-9]* (lr .*not finite" \
  $XMC train "${COMMON[@]}" --encoder "$T/enc" --xrt-lr 1 --xrt-weight-decay 10 --xrt-epochs 4 --model "$T/repo" --xrt-dir "$T/w1"
[ -e "$T/w1/encoder/model.safetensors" ] && fail "diverging run: an encoder was written"
# a NaN in the first float of the weights
cp -r "$T/enc" "$T/enan"
hl=$(od -An -tu4 -N4 "$T/enan/model.safetensors" | tr -d ' ')
printf '\000\000\300\177' | dd of="$T/enan/model.safetensors" bs=1 seek=$((8 + hl)) conv=notrunc 2>/dev/null
expect "NaN weight (xr-transformer)" "holds nan" \
  $XMC train "${COMMON[@]}" --encoder "$T/enan" --model "$T/repo" --xrt-dir "$T/w2"
expect "NaN weight (featurizer)" "holds nan" \
  $XMC train --train "$TR" --featurizer tfidf+encoder --encoder "$T/enan" --max-length 16 --model "$T/repo" --quiet
$XMC gen --labels 30 --docs 2200 --seed 1 > "$T/g.tsv" || fail "gen"   # 2,200 steps an epoch at batch 1
expect "steps overflow" "more than 2147483646" \
  $XMC train "${COMMON[@]}" --train "$T/g.tsv" --encoder "$T/enc" --xrt-batch 1 --xrt-epochs 1000000 --model "$T/repo" \
  --xrt-dir "$T/w3"
cp -r "$T/enc" "$T/ev"; echo "zzzextra" >> "$T/ev/vocab.txt"
expect "vocabulary too large" "more than .*config.json's vocab_size" \
  $XMC train "${COMMON[@]}" --encoder "$T/ev" --model "$T/repo" --xrt-dir "$T/w4"
[ -e "$T/w4/checkpoint.bin" ] && fail "vocabulary: a checkpoint was written before the refusal"
touch "$T/afile"
expect "work dir a file" "afile: not a directory" \
  $XMC train "${COMMON[@]}" --encoder "$T/enc" --model "$T/repo" --xrt-dir "$T/afile"
mkdir -p "$T/w5/checkpoint.bin"
expect "checkpoint a directory" "checkpoint.bin: not a regular file" \
  $XMC train "${COMMON[@]}" --encoder "$T/enc" --model "$T/repo" --xrt-dir "$T/w5" --resume
# a checkpoint, then config.json's activation changed: resuming would train half the run as another network
cp -r "$T/enc" "$T/ea"
$XMC train "${COMMON[@]}" --encoder "$T/ea" --xrt-epochs 1 --xrt-max-steps 3 --model "$T/repo-ok" --xrt-dir "$T/w6" \
  > /dev/null || fail "a short run"
[ -f "$T/w6/checkpoint.bin" ] || fail "no checkpoint from the short run"
rm -rf "$T/w6/encoder"
sed -i 's/"hidden_act": *"gelu"/"hidden_act": "relu"/' "$T/ea/config.json"
grep -q '"relu"' "$T/ea/config.json" || fail "could not change the activation"
expect "architecture changed" "another run" \
  $XMC train "${COMMON[@]}" --encoder "$T/ea" --xrt-epochs 1 --xrt-max-steps 3 --model "$T/repo" --xrt-dir "$T/w6" --resume
# a config.json that names fewer layers than the weights hold would run a cut network
cp -r "$T/enc" "$T/el"
sed -i 's/"num_hidden_layers": *2/"num_hidden_layers": 1/' "$T/el/config.json"
expect "fewer layers than the weights" "has more layers than the 1 config.json names" \
  $XMC train --train "$TR" --featurizer tfidf+encoder --encoder "$T/el" --max-length 16 --model "$T/repo" --quiet
# --xr-transformer ranks on tfidf+encoder: another featurizer named is a contradiction, not silently replaced
expect "featurizer tfidf" "not --featurizer tfidf" \
  $XMC train "${COMMON[@]}" --featurizer tfidf --encoder "$T/enc" --model "$T/repo" --xrt-dir "$T/w7"
# two runs on one work directory: the second is refused while the first holds WORK/lock
$XMC train "${COMMON[@]}" --encoder "$T/enc" --xrt-epochs 200 --model "$T/repo-long" --xrt-dir "$T/w8" > /dev/null 2>&1 &
long=$!
for _ in $(seq 200); do [ -f "$T/w8/lock" ] && break; sleep 0.02; done
sleep 0.2
kill -0 "$long" 2>/dev/null || fail "the first run ended before the second started: make it longer"
expect "a second run on one work directory" "another xr-transformer run is using it" \
  $XMC train "${COMMON[@]}" --encoder "$T/enc" --model "$T/repo" --xrt-dir "$T/w8" --resume
kill -9 "$long" 2>/dev/null; wait "$long" 2>/dev/null
echo "ok: divergence, NaN weights, step overflow, vocabulary, work dir, checkpoint dir, architecture, layer count," \
     "featurizer and a second run on one work directory refused"
