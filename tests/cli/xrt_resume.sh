#!/usr/bin/env bash
# XR-Transformer fine-tuning (--xr-transformer): a run killed with SIGKILL mid-way and continued with --resume ends
# with an encoder equal bit for bit to an uninterrupted run's, and with the same model P@1 (also with matcher-aware
# negatives and with dropout and the linear bootstrap); the checkpoint refuses another run's options and a restart without --resume. bert-random-h16 weights, bert-base-uncased vocabulary,
# 300 Reuters documents.
set -u
XMC=${XMC_BIN:-build/xmc}
D=$(dirname "$0")/../data
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
mkdir "$T/enc"; cp "$D/bert-random-h16/config.json" "$D/bert-random-h16/model.safetensors" "$T/enc/"
cp "$D/bert-vocab/vocab.txt" "$T/enc/vocab.txt"
# 3 levels (4, 16, 56 clusters), 19 steps per epoch
OPTS=(--train "$D/reuters-sample/train.tsv" --xr-transformer --encoder "$T/enc" --max-length 32 --xrt-nr-splits 4
      --xrt-max-leaf-size 8 --xrt-batch 16 --xrt-epochs 8 --xrt-lr 1e-3 --xrt-warmup 10 --xrt-save-steps 7 --seed 3)
export OPENBLAS_NUM_THREADS=2

V=$($XMC train --quiet "${OPTS[@]}" --model "$T/repo-a" --xrt-dir "$T/a") || fail "uninterrupted run"
[ -s "$T/a/encoder/model.safetensors" ] || fail "no fine-tuned encoder"
cmp -s "$T/a/encoder/model.safetensors" "$T/enc/model.safetensors" && fail "fine-tuning changed nothing"
p_a=$($XMC eval --model "$T/repo-a" --test "$D/reuters-sample/test.tsv" 2>/dev/null | awk '$1=="P@1"{print $2}')

# the same run, killed as soon as its first checkpoint is written
$XMC train --quiet "${OPTS[@]}" --model "$T/repo-b" --xrt-dir "$T/b" > /dev/null 2>&1 &
pid=$!
for _ in $(seq 1 2000); do [ -f "$T/b/checkpoint.bin" ] && break; sleep 0.005; done
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
[ -f "$T/b/checkpoint.bin" ] || fail "no checkpoint before the kill"
[ -f "$T/b/encoder/model.safetensors" ] && fail "the run finished before it was killed: make it longer"

# a checkpoint is not silently replaced, nor resumed by a run of other options
$XMC train --quiet "${OPTS[@]}" --model "$T/repo-b" --xrt-dir "$T/b" > /dev/null 2> "$T/err" && fail "restart over a checkpoint"
grep -q "holds a checkpoint" "$T/err" || { cat "$T/err"; fail "no message for a checkpoint without --resume"; }
$XMC train --quiet "${OPTS[@]}" --xrt-lr 2e-3 --resume --model "$T/repo-b" --xrt-dir "$T/b" > /dev/null 2> "$T/err" &&
  fail "resumed with another learning rate"
grep -q "another run" "$T/err" || { cat "$T/err"; fail "no message for another run's checkpoint"; }

$XMC train "${OPTS[@]}" --resume --model "$T/repo-b" --xrt-dir "$T/b" > /dev/null 2> "$T/log" || { cat "$T/log"; fail "resume"; }
grep -q "resuming at level 1 step 7" "$T/log" || { grep resum "$T/log"; fail "did not resume at the first checkpoint"; }
cmp "$T/a/encoder/model.safetensors" "$T/b/encoder/model.safetensors" || fail "resumed encoder differs from the uninterrupted one"
p_b=$($XMC eval --model "$T/repo-b" --test "$D/reuters-sample/test.tsv" 2>/dev/null | awk '$1=="P@1"{print $2}')
[ "$p_a" = "$p_b" ] || fail "P@1 $p_a uninterrupted, $p_b resumed"
echo "P@1 $p_a both ways"

# tfn+man: killed inside a level that has matcher-aware negatives, resumed with the negatives that level started
# with (negatives.bin), ends with the uninterrupted run's encoder
MAN=(--xrt-negatives tfn+man --xrt-man-topk 2)
$XMC train --quiet "${OPTS[@]}" "${MAN[@]}" --model "$T/repo-c" --xrt-dir "$T/c" > /dev/null || fail "uninterrupted tfn+man run"
cmp -s "$T/a/encoder/model.safetensors" "$T/c/encoder/model.safetensors" && fail "tfn+man trained the same encoder as tfn"
$XMC train --quiet "${OPTS[@]}" "${MAN[@]}" --model "$T/repo-d" --xrt-dir "$T/d" > /dev/null 2>&1 &
pid=$!
# wait for the first checkpoint written after the negatives of level 2 (a level resumed mid-way reads them back)
for _ in $(seq 1 4000); do [ -f "$T/d/negatives.bin" ] && [ "$T/d/checkpoint.bin" -nt "$T/d/negatives.bin" ] && break; sleep 0.002; done
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
[ -f "$T/d/negatives.bin" ] || fail "no negatives.bin before the kill"
[ -f "$T/d/encoder/model.safetensors" ] && fail "the tfn+man run finished before it was killed: make it longer"
$XMC train "${OPTS[@]}" "${MAN[@]}" --resume --model "$T/repo-d" --xrt-dir "$T/d" > /dev/null 2> "$T/log" || { cat "$T/log"; fail "tfn+man resume"; }
grep -o "resuming at level [0-9]* step [0-9]*" "$T/log"
grep -q "resuming at level [23] step [1-9]" "$T/log" || { grep resum "$T/log"; fail "not resumed inside a level with negatives"; }
cmp "$T/c/encoder/model.safetensors" "$T/d/encoder/model.safetensors" || fail "resumed tfn+man encoder differs"
# the negatives a resumed level needs are checked like the checkpoint
$XMC train --quiet "${OPTS[@]}" "${MAN[@]}" --xrt-man-topk 3 --resume --model "$T/repo-d" --xrt-dir "$T/d" > /dev/null 2> "$T/err" &&
  fail "resumed with another man top-k"
grep -q "another run" "$T/err" || { cat "$T/err"; fail "no message for another top-k"; }

# dropout: its masks are a function of (seed, level, step), so a run killed and resumed draws the ones it would
# have drawn and ends with the uninterrupted run's encoder; another rate is another run. With the linear bootstrap:
# the levels after the resume fit their heads on the resumed encoder's embeddings, as the uninterrupted run did
DROP=(--xrt-dropout 0.1 --xrt-bootstrap linear)
$XMC train --quiet "${OPTS[@]}" "${DROP[@]}" --model "$T/repo-e" --xrt-dir "$T/e" > /dev/null || fail "uninterrupted dropout run"
cmp -s "$T/a/encoder/model.safetensors" "$T/e/encoder/model.safetensors" && fail "dropout trained the same encoder"
$XMC train --quiet "${OPTS[@]}" "${DROP[@]}" --model "$T/repo-f" --xrt-dir "$T/f" > /dev/null 2>&1 &
pid=$!
for _ in $(seq 1 2000); do [ -f "$T/f/checkpoint.bin" ] && break; sleep 0.005; done
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
[ -f "$T/f/encoder/model.safetensors" ] && fail "the dropout run finished before it was killed: make it longer"
$XMC train --quiet "${OPTS[@]}" --xrt-dropout 0.2 --resume --model "$T/repo-f" --xrt-dir "$T/f" > /dev/null 2> "$T/err" &&
  fail "resumed with another dropout"
grep -q "another run" "$T/err" || { cat "$T/err"; fail "no message for another dropout"; }
$XMC train --quiet "${OPTS[@]}" "${DROP[@]}" --resume --model "$T/repo-f" --xrt-dir "$T/f" > /dev/null 2> "$T/log" ||
  { cat "$T/log"; fail "dropout resume"; }
cmp "$T/e/encoder/model.safetensors" "$T/f/encoder/model.safetensors" || fail "resumed dropout encoder differs"

# a damaged checkpoint is refused, not used
printf '\x01' | dd of="$T/b/checkpoint.bin" bs=1 seek=1000 conv=notrunc 2>/dev/null
$XMC train --quiet "${OPTS[@]}" --resume --model "$T/repo-b" --xrt-dir "$T/b" > /dev/null 2> "$T/err" && fail "damaged checkpoint used"
grep -q "checksum" "$T/err" || { cat "$T/err"; fail "no checksum message"; }
echo ok
