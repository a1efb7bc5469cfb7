#!/usr/bin/env bash
# embed.sh: `xmc embed` end to end: the 7 bert-tiny-pecos texts give the reference cls/mean/pooler vectors
# (1e-5), --normalize gives unit vectors, and bad options or directories exit non-zero with a message.
set -u
XMC=${XMC_BIN:-build/xmc}
D=$(dirname "$0")/../data
[ -d "$D/bert-tiny-pecos" ] || { echo "$D/bert-tiny-pecos missing"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
# texts from texts.inc (plain ASCII there): one C literal per line
sed -n 's/^"\(.*\)",.*/\1/p' "$D/bert-tiny-pecos/texts.inc" > "$tmp/texts.txt"
[ "$(wc -l < "$tmp/texts.txt")" -eq 7 ] || { echo "could not read texts.inc"; exit 1; }
for p in cls mean pooler; do
  "$XMC" embed --encoder "$D/bert-tiny-pecos" --pooling $p --batch 3 < "$tmp/texts.txt" > "$tmp/$p.out" || { echo "embed --pooling $p failed"; fail=1; continue; }
  tail -n +2 "$D/bert-tiny-pecos/$p.txt" > "$tmp/$p.ref"
  d=$(paste -d' ' "$tmp/$p.out" "$tmp/$p.ref" | awk '{ if (NF != 16) { print "bad"; exit } for (i = 1; i <= 8; i++) { x = $i - $(i+8); if (x < 0) x = -x; if (x > m) m = x } } END { if (NR != 7) print "bad"; else printf "%.3g\n", m }')
  echo "$p: max |diff| $d"
  awk -v d="$d" 'BEGIN { exit !(d != "bad" && d + 0 < 1e-5) }' || fail=1
done
"$XMC" embed --encoder "$D/bert-tiny-pecos" --pooling mean --normalize < "$tmp/texts.txt" |
  awk '{ s = 0; for (i = 1; i <= NF; i++) s += $i * $i; if (s < 0.9999 || s > 1.0001) bad = 1 } END { exit bad }' || { echo "--normalize not unit"; fail=1; }
expect_fail() { # expected-exit-code message-substring args...
  local code=$1 msg=$2; shift 2
  "$XMC" embed "$@" < "$tmp/texts.txt" > /dev/null 2> "$tmp/err"; rc=$?
  if [ $rc -ne "$code" ] || ! grep -q -- "$msg" "$tmp/err"; then echo "embed $*: rc=$rc, stderr: $(cat "$tmp/err")"; fail=1; fi
}
expect_fail 2 "required"
expect_fail 2 "unknown pooling" --encoder "$D/bert-tiny-pecos" --pooling max
expect_fail 2 "max-length" --encoder "$D/bert-tiny-pecos" --max-length 1000
expect_fail 2 "batch" --encoder "$D/bert-tiny-pecos" --batch 0
expect_fail 1 "config.json" --encoder "$tmp/nowhere"
"$XMC" embed --help | grep -q -- "--pooling" || { echo "--help"; fail=1; }
exit $fail
