#!/usr/bin/env bash
# predict_stream.sh: `xmc predict` streams a TSV in blocks of 4,096 records (up to 4 threads): the same lines as `xmc eval`'s
# whole-file path would give (checked against classify_stdin, the public-API example, and across block
# boundaries), from a file or from stdin (`--test -`), with CRLF lines and a byte order mark taken as the TSV
# reader takes them, --format matrix's header counting every row, and a line without a tab refused with its
# line number, after the blocks before its own were written; the matrix body spooled in $TMPDIR; a line longer
# than memory allows refused as out of memory (getline fails without the stream's error flag: it had ended the
# input there, exit 0, the records after it lost).
set -u
B=${BUILD:-build}
XMC=${XMC_BIN:-$B/xmc}
EX=$B/examples/classify_stdin
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
$XMC gen --labels 100 --docs 11000 --seed 9 > "$T/all.tsv" || fail "gen"
head -2000 "$T/all.tsv" > "$T/train.tsv"
tail -9000 "$T/all.tsv" > "$T/test.tsv"          # three blocks: 4096 + 4096 + 808
$XMC train --quiet --train "$T/train.tsv" --model "$T/repo" --nr-splits 4 --max-leaf-size 8 > /dev/null || fail "train"
$XMC predict --model "$T/repo" --test "$T/test.tsv" --threads 3 > "$T/file" || fail "predict file"
[ "$(wc -l < "$T/file")" -eq 9000 ] || fail "$(wc -l < "$T/file") lines for 9000 records"
if [ -x "$EX" ]; then
  cut -f2 "$T/test.tsv" | "$EX" "$T/repo" 1 > "$T/example" || fail "classify_stdin"
  cmp -s "$T/file" "$T/example" || fail "predict differs from the one-block-at-a-time example: $(diff "$T/file" "$T/example" | head -3)"
fi
$XMC predict --model "$T/repo" --test - --threads 2 < "$T/test.tsv" > "$T/stdin" || fail "predict stdin"
cmp -s "$T/file" "$T/stdin" || fail "stdin differs from the file"
cat "$T/test.tsv" | $XMC predict --model "$T/repo" --test - --threads 1 > "$T/pipe" || fail "predict pipe"
cmp -s "$T/file" "$T/pipe" || fail "a pipe differs from the file"
{ printf '\xef\xbb\xbf'; sed 's/$/\r/' "$T/test.tsv"; } > "$T/crlf.tsv"
$XMC predict --model "$T/repo" --test "$T/crlf.tsv" > "$T/crlf" || fail "predict crlf"
cmp -s "$T/file" "$T/crlf" || fail "CRLF lines or a BOM changed the predictions"
$XMC predict --model "$T/repo" --test - --format matrix < "$T/test.tsv" > "$T/matrix" || fail "matrix"
[ "$(head -1 "$T/matrix" | cut -d' ' -f1)" = 9000 ] || fail "matrix header: $(head -1 "$T/matrix")"
[ "$(wc -l < "$T/matrix")" -eq 9001 ] || fail "matrix: $(wc -l < "$T/matrix") lines"
mkdir "$T/tmp"
TMPDIR="$T/tmp" $XMC predict --model "$T/repo" --test "$T/test.tsv" --format matrix > "$T/matrix2" || fail "matrix in TMPDIR"
cmp -s "$T/matrix" "$T/matrix2" || fail "matrix in TMPDIR differs"
[ -z "$(ls -A "$T/tmp")" ] || fail "the spool file was left in TMPDIR: $(ls "$T/tmp")"
TMPDIR="$T/nowhere" $XMC predict --model "$T/repo" --test "$T/test.tsv" --format matrix > /dev/null 2> "$T/err" &&
  fail "matrix with TMPDIR missing exited 0"
grep -q "temporary file for the matrix in $T/nowhere" "$T/err" || fail "TMPDIR missing: $(cat "$T/err")"
# 700 MB in one line under a 600 MB address-space limit: refused, nothing written after it (not under ASan, whose
# shadow memory needs terabytes of address space)
if ! ldd "$XMC" 2>/dev/null | grep -q libasan; then
( ulimit -v 600000
  { head -10 "$T/test.tsv"; printf 'x\t'; head -c 700M /dev/zero | tr '\0' a; echo; tail -10 "$T/test.tsv"; } |
    $XMC predict --model "$T/repo" --test - --threads 1 > "$T/longout" 2> "$T/err" ) && fail "a line beyond memory exited 0"
grep -q "stdin:11: Cannot allocate memory (XMC_ERR_NOMEM)" "$T/err" || fail "a line beyond memory: $(cat "$T/err")"
fi
{ head -5000 "$T/test.tsv"; echo "no tab here"; tail -5 "$T/test.tsv"; } > "$T/bad.tsv"
$XMC predict --model "$T/repo" --test "$T/bad.tsv" > "$T/badout" 2> "$T/err" && fail "a line without a tab exited 0"
grep -q "bad.tsv:5001: no tab" "$T/err" || fail "error: $(cat "$T/err")"
[ "$(wc -l < "$T/badout")" -eq 4096 ] || fail "the block before the bad line: $(wc -l < "$T/badout") lines, want 4096"
: | $XMC predict --model "$T/repo" --test - > /dev/null 2> "$T/err" && fail "empty input exited 0"
grep -q "stdin: no records" "$T/err" || fail "empty input: $(cat "$T/err")"
$XMC predict --model "$T/repo" --test "$T/nowhere.tsv" > /dev/null 2> "$T/err" && fail "missing file exited 0"
grep -q "nowhere.tsv: No such file" "$T/err" || fail "missing file: $(cat "$T/err")"
printf '0 1:1 2:0.5\n1 2:1 3:0.2\n0,1 1:0.3 3:1\n' > "$T/m.xc"
$XMC train --quiet --xc "$T/m.xc" --model "$T/mrepo" > /dev/null || fail "matrix model"
$XMC predict --model "$T/mrepo" --test - < "$T/test.tsv" > /dev/null 2> "$T/err" && fail "text to a matrix model exited 0"
grep -q "trained on feature vectors: give -x or --xc" "$T/err" || fail "matrix model: $(cat "$T/err")"
if [ -w /dev/full ]; then
  $XMC predict --model "$T/repo" --test "$T/test.tsv" > /dev/full 2> "$T/err" && fail "a full disk exited 0"
  [ "$(grep -c error "$T/err")" -eq 1 ] || fail "a full disk: $(cat "$T/err")"
fi
echo "ok: 9000 records in 3 blocks equal the example's; stdin, pipe, CRLF+BOM, matrix, TMPDIR, a line beyond memory, a bad line at 5001, empty and missing input, a matrix model, a full disk"
