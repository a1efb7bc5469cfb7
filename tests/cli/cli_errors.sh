#!/usr/bin/env bash
# The xmc command on bad input: a clear message naming the file and line, a non-zero exit, nothing
# half-written; and the edge cases that must work (empty text, unlabelled records, labels without records).
set -u
XMC=${XMC_BIN:-build/xmc}
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
expect_fail() { # expect_fail "what" "needle" cmd...
  local what=$1 needle=$2; shift 2
  "$@" >"$T/out" 2>"$T/err"; local rc=$?
  [ $rc -ne 0 ] || fail "$what: exit 0"
  grep -qF -- "$needle" "$T/err" || { cat "$T/err"; fail "$what: message lacks '$needle'"; }
}

# training data: 6 labels, with an unlabelled record and an empty text
{
  for i in $(seq 1 40); do
    l=$((i % 6)); printf 'lab %d,extra: %d\tword%da word%db common%d\n' $l $((l % 2)) $l $l $((i % 3))
  done
  printf '\tno label at all here\n'
  printf 'lab 1\t\n'
} > "$T/train.tsv"
V=$($XMC train --quiet --train "$T/train.tsv" --model "$T/repo" --max-leaf-size 2 --nr-splits 2 --threshold 0.01) || fail "train"
[ -f "$T/repo/CURRENT" ] || fail "no CURRENT"
[ "$(cat "$T/repo/CURRENT")" = "$V" ] || fail "CURRENT is not the new version"

# predict: text format, label names with spaces and colons, sorted scores; empty text gives a line
printf 'x\tword3a word3b\nx\t\n' > "$T/test.tsv"
$XMC predict --model "$T/repo" --test "$T/test.tsv" -k 3 > "$T/pred" || fail "predict"
[ "$(wc -l < "$T/pred")" -eq 2 ] || fail "predict: want 2 lines"
head -1 "$T/pred" | cut -f1,2 | tr '\t' '\n' | grep -q '^lab 3:' || fail "predict: 'lab 3' not in the top 2 for word3: $(head -1 "$T/pred")"
head -1 "$T/pred" | tr '\t' '\n' | sed 's/.*://' | sort -gr -c || fail "predict: scores not descending"
$XMC predict --model "$T/repo" --test "$T/test.tsv" -k 2 --format matrix | head -1 | grep -q '^2 ' || fail "matrix header"

# eval prints the figures, one per line
$XMC eval --model "$T/repo" --test "$T/train.tsv" > "$T/eval" 2>/dev/null || fail "eval"
for m in P@1 P@3 P@5 nDCG@1 nDCG@3 nDCG@5 PSP@1 PSP@3 PSP@5 docs/s; do grep -q "^$m	" "$T/eval" || fail "eval lacks $m"; done

# a label with no positive record (smat input) and unknown test labels are accepted
printf '3 4\n0:1 1:0.5\n2:1\n3:1\n' > "$T/X.txt"
printf '3 5\n0:1\n1:1\n0:1\n' > "$T/Y.txt"
$XMC train --quiet -x "$T/X.txt" -y "$T/Y.txt" --model "$T/mrepo" --threshold 0 >/dev/null || fail "train with an empty label"
$XMC predict --model "$T/mrepo" -x "$T/X.txt" --format matrix > /dev/null || fail "predict on matrix model"

# bad input
printf 'lab 1\tok\nno tab on this line\n' > "$T/bad.tsv"
expect_fail "malformed TSV" "bad.tsv:2" $XMC train --train "$T/bad.tsv" --model "$T/r2"
[ ! -e "$T/r2/CURRENT" ] || fail "a failed train left CURRENT"
printf '2 4\n0:1 9:1\n\n' > "$T/badx.txt"
expect_fail "bad smat index" "badx.txt:2" $XMC train -x "$T/badx.txt" -y "$T/Y.txt" --model "$T/r3"
expect_fail "unknown option" "unrecognized option" $XMC train --train "$T/train.tsv" --model "$T/r4" --bogus 1
expect_fail "bad option value" "--nr-splits" $XMC train --train "$T/train.tsv" --model "$T/r4" --nr-splits x
expect_fail "unknown command" "unknown command" $XMC frobnicate
expect_fail "missing model" "no such model" $XMC predict --model "$T/nothing" --test "$T/test.tsv"
printf 'nr_splits = 4;\nbogus_key = 1;\n' > "$T/bad.cfg"
expect_fail "config with an unknown key" "bad.cfg:2" $XMC train --train "$T/train.tsv" --model "$T/r5" --config "$T/bad.cfg"
printf 'nr_splits = ;\n' > "$T/syntax.cfg"
expect_fail "config syntax error" "syntax.cfg:1" $XMC train --train "$T/train.tsv" --model "$T/r5" --config "$T/syntax.cfg"

# input a model could not hold, and settings that are not numbers: refused before CURRENT moves
printf 'x\0y\tfoo bar\nx\0z\tbaz qux\n' > "$T/nul.tsv"
expect_fail "NUL in a label" "nul.tsv:1: a NUL byte in the labels" $XMC train --train "$T/nul.tsv" --model "$T/repo"
printf '0,1 0:1 0:2\n1 1:1\n' > "$T/dup.xc"
expect_fail "a feature twice in an XC row" "dup.xc:1: feature 0 appears twice" $XMC train --xc "$T/dup.xc" --model "$T/repo"
printf '2 3\n0:1 1:1 0:2\n1:1\n' > "$T/dup.smat"
expect_fail "a column twice in an smat row" "dup.smat:2: column 0 appears twice" $XMC train -x "$T/dup.smat" -y "$T/Y.txt" --model "$T/repo"
for o in cp cn threshold bias eps; do
  expect_fail "--$o nan" "--$o: 'nan' is not a number" $XMC train --train "$T/train.tsv" --model "$T/repo" --$o nan
done
expect_fail "--psp-a inf" "--psp-a: 'inf' is not a number" $XMC eval --model "$T/repo" --test "$T/train.tsv" --psp-a inf
expect_fail "version named CURRENT" "bad version name 'CURRENT'" $XMC train --train "$T/train.tsv" --model "$T/repo" --version CURRENT
expect_fail "version named like a lease" "bad version name 'serving.12'" $XMC train --train "$T/train.tsv" --model "$T/repo" --version serving.12
[ "$(cat "$T/repo/CURRENT")" = "$V" ] || fail "a refused training moved CURRENT"
printf 'no_current = 0;\n' > "$T/flag.cfg"
expect_fail "a switch given 0" "flag.cfg:1: 'no_current' is a switch" $XMC train --train "$T/train.tsv" --model "$T/repo" --config "$T/flag.cfg"
# two config files: each one's settings stay valid (the first file's strings once pointed into freed memory)
printf 'train = "%s";\nmodel = "%s";\n' "$T/train.tsv" "$T/two" > "$T/a.cfg"
printf 'nr_splits = 2;\nmax_leaf_size = 2;\nquiet = true;\n' > "$T/b.cfg"
$XMC train --config "$T/a.cfg" --config "$T/b.cfg" > /dev/null || fail "two --config files"
[ -f "$T/two/CURRENT" ] || fail "two --config files: no model"
# an output that cannot be written is an error
if [ -w /dev/full ]; then
  $XMC eval --model "$T/repo" --test "$T/train.tsv" > /dev/full 2> "$T/err" && fail "eval to a full disk: exit 0"
  grep -q "cannot write the output" "$T/err" || fail "eval to a full disk: $(cat "$T/err")"
fi
printf 'id\tparent_id\tdepth\tis_leaf\tname\tlabel\tfull_path\nx\t\t1\t1\tX\t\t\n' > "$T/tx.tsv"
expect_fail "taxonomy leaf without a label" "tx.tsv:2: a leaf category with an empty label" $XMC gen --taxonomy "$T/tx.tsv" --docs 5
printf '\tno label\n\tnone either\n' > "$T/nolab.tsv"
expect_fail "eval without labels" "nothing to evaluate" $XMC eval --model "$T/repo" --test "$T/nolab.tsv"

# damaged model files: truncated, bit-flipped, missing
damage() { rm -rf "$T/d"; cp -r "$T/repo" "$T/d"; }
W=$(ls "$T/repo/$V"/xl.*.ent_w.bin | head -1)
damage; truncate -s 70 "$T/d/$V/$(basename "$W")"
expect_fail "truncated weights" "truncated" $XMC predict --model "$T/d" --test "$T/test.tsv"
damage; printf '\x55' | dd of="$T/d/$V/$(basename "$W")" bs=1 seek=66 conv=notrunc 2>/dev/null
expect_fail "bit-flipped weights" "checksum" $XMC predict --model "$T/d" --test "$T/test.tsv"
damage; rm "$T/d/$V/labels.names.bin"
expect_fail "missing file" "labels.names.bin" $XMC predict --model "$T/d" --test "$T/test.tsv"
damage; echo "nonexistent-version" > "$T/d/CURRENT"
expect_fail "CURRENT names a missing version" "nonexistent-version" $XMC predict --model "$T/d" --test "$T/test.tsv"

# XR-Transformer negatives: an unknown mode, and a man top-k without man (it would do nothing)
expect_fail "unknown negatives" "is not tfn or tfn+man" $XMC train --train "$T/train.tsv" --model "$T/x" --xr-transformer \
  --encoder "$T/enc" --xrt-dir "$T/w" --xrt-negatives man
expect_fail "man top-k without man" "--xrt-man-topk goes with --xrt-negatives tfn+man" $XMC train --train "$T/train.tsv" \
  --model "$T/x" --xr-transformer --encoder "$T/enc" --xrt-dir "$T/w" --xrt-man-topk 5
expect_fail "dropout of 1" "--xrt-dropout: '1' is not a number" $XMC train --train "$T/train.tsv" --model "$T/x" \
  --xr-transformer --encoder "$T/enc" --xrt-dir "$T/w" --xrt-dropout 1
[ -e "$T/x" ] && fail "a refused XR-Transformer run left a repository"

# --help everywhere
for c in train predict eval inspect gen; do $XMC $c --help | grep -q "usage: xmc $c" || fail "$c --help"; done
$XMC inspect --model "$T/repo" --label "lab 3" | grep -q "word3a" || fail "inspect --label shows no top feature"
# an XC file without a header: its label space runs to the largest id, said before the training (a stray id of
# 50,000,000 means 50M labels: minutes and gigabytes)
printf '0,20000 1:1.0 2:0.5\n1 2:1.0 3:0.2\n' > "$T/space.xc"
$XMC train --xc "$T/space.xc" --model "$T/space" > /dev/null 2> "$T/err" || fail "XC with a large id"
awk '/19998 of the 20001 labels \(ids 0..20000/ { note = NR } /^features|^trained/ && !work { work = NR }
     END { exit !(note && note < work) }' "$T/err" || fail "no label-space note before the training: $(head -3 "$T/err")"
# the ids as the file numbers them (base 1: 1..20000), and no "holds every one" where a warm start drops them
printf '1,20000 1:1.0 2:0.5\n2 2:1.0 3:0.2\n' > "$T/space1.xc"
$XMC train --xc "$T/space1.xc" --xc-label-base 1 --model "$T/space1" > /dev/null 2> "$T/err" || fail "XC base 1"
grep -q "19997 of the 20000 labels (ids 1..20000:.*the model holds every one" "$T/err" || fail "base 1 note: $(grep note "$T/err")"
$XMC train --xc "$T/space.xc" --model "$T/space" --warm "$T/space" --solver primal > /dev/null 2> "$T/err" || fail "warm XC"
grep "note: " "$T/err" | grep -q "holds every one" && fail "warm note: $(grep note "$T/err")"
grep -q "note: 19998 of the 20001 labels" "$T/err" || fail "warm: no note: $(head -3 "$T/err")"
echo ok
