#!/usr/bin/env bash
# example.sh: examples/classify_stdin.c, written against include/xmc/ alone, classifies stdin in threaded
# batches exactly as `xmc predict` does: same labels, same scores, same order, on more lines than a batch.
set -u
B=${BUILD:-build}
XMC=${XMC_BIN:-$B/xmc}
EX=$B/examples/classify_stdin
[ -x "$EX" ] || { echo "FAIL: $EX not built"; exit 1; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
$XMC gen --labels 200 --docs 2300 --seed 5 > "$T/all.tsv" || fail "gen"
head -1500 "$T/all.tsv" > "$T/train.tsv"
tail -800 "$T/all.tsv" | cut -f2 > "$T/texts.txt"   # 800 lines: two batches of 512 and a short one
sed 's/^/\t/' "$T/texts.txt" > "$T/test.tsv"
$XMC train --quiet --train "$T/train.tsv" --model "$T/repo" --nr-splits 4 --max-leaf-size 8 > /dev/null || fail "train"
$XMC predict --model "$T/repo" --test "$T/test.tsv" --threads 3 > "$T/want" || fail "predict"
"$EX" "$T/repo" 3 < "$T/texts.txt" > "$T/got" || fail "classify_stdin exited $?"
[ "$(wc -l < "$T/got")" -eq 800 ] || fail "classify_stdin: $(wc -l < "$T/got") lines for 800"
cmp -s "$T/want" "$T/got" || { diff "$T/want" "$T/got" | head -5; fail "classify_stdin differs from xmc predict"; }
"$EX" "$T/repo" 1 < /dev/null > "$T/empty" || fail "empty input"
[ ! -s "$T/empty" ] || fail "empty input gave output"
"$EX" "$T/nowhere" 2>"$T/err" && fail "a missing model exited 0"
grep -q "XMC_ERR_NOTFOUND\|XMC_ERR_IO" "$T/err" || fail "missing model: $(cat "$T/err")"
exit 0
