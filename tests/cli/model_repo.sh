#!/usr/bin/env bash
# model_repo.sh: `xmc model list|rollback|prune` on a repository of three versions trained from the Reuters
# sample: list shows them with CURRENT; rollback goes to the previous version and refuses a damaged one; prune
# keeps the newest N plus CURRENT; usage errors exit 2 with a message.
set -u
XMC=${XMC_BIN:-build/xmc}
D=$(dirname "$0")/../data/reuters-sample
[ -d "$D" ] || { echo "$D missing"; exit 1; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
TRAIN=$(ls "$D"/*train*.tsv 2>/dev/null | head -1)
[ -n "$TRAIN" ] || fail "no training TSV in $D"

for v in a b c; do
  $XMC train --quiet --train "$TRAIN" --model "$T/r" --version "v$v" --max-leaf-size 8 > /dev/null || fail "train v$v"
done
$XMC model list "$T/r" > "$T/list" || fail "model list"
cat "$T/list"
[ "$(grep -c '^v[abc] ' "$T/list")" = 3 ] || fail "list does not show three versions"
grep -q '^vc .* current' "$T/list" || fail "list does not mark vc current"

$XMC model rollback "$T/r" > "$T/out" || fail "rollback"
grep -q 'vc -> vb' "$T/out" || fail "rollback did not go vc -> vb: $(cat "$T/out")"
[ "$(cat "$T/r/CURRENT")" = vb ] || fail "CURRENT is not vb"

# a damaged version is refused and CURRENT stays
f=$(ls "$T/r/va"/*.bin | head -1)
printf 'garbage' | dd of="$f" bs=1 seek=80 conv=notrunc status=none
$XMC model rollback "$T/r" va 2> "$T/err" && fail "damaged va accepted"
grep -q 'va refused' "$T/err" || fail "message lacks the refusal: $(cat "$T/err")"
[ "$(cat "$T/r/CURRENT")" = vb ] || fail "CURRENT moved after a refusal"

$XMC model prune "$T/r" --keep 1 > "$T/out" || fail "prune"
grep -q '1 version removed' "$T/out" || fail "prune: $(cat "$T/out")"
[ -d "$T/r/vb" ] && [ -d "$T/r/vc" ] || fail "prune removed CURRENT or the newest"
[ ! -e "$T/r/va" ] || fail "prune kept va"

# a CURRENT that names no version: prune removes nothing, rollback wants a name and mends it with one
cp "$T/r/CURRENT" "$T/saved"
: > "$T/r/CURRENT"
$XMC model prune "$T/r" --keep 1 2> "$T/err" && fail "prune with an empty CURRENT exited 0"
grep -q 'nothing pruned' "$T/err" || fail "prune with an empty CURRENT: $(cat "$T/err")"
[ -d "$T/r/vb" ] || fail "prune with an empty CURRENT removed vb"
$XMC model rollback "$T/r" 2> "$T/err" && fail "rollback with an empty CURRENT and no name exited 0"
grep -q 'name the version' "$T/err" || fail "rollback with an empty CURRENT: $(cat "$T/err")"
$XMC model rollback "$T/r" vb > /dev/null || fail "rollback to a named version with an empty CURRENT"
[ "$(cat "$T/r/CURRENT")" = vb ] || fail "the named rollback did not set CURRENT"
# a current version that does not open: rollback goes to the newest other good version, whatever its age
$XMC train --quiet --train "$TRAIN" --model "$T/r" --version vd --max-leaf-size 8 > /dev/null || fail "train vd"
printf 'garbage\n' > "$T/r/vd/manifest.cfg"
$XMC model rollback "$T/r" > "$T/out" 2> "$T/err" || fail "rollback from a damaged current: $(cat "$T/err")"
[ "$(cat "$T/r/CURRENT")" = vc ] || fail "rollback from the damaged vd went to $(cat "$T/r/CURRENT"), not vc"

$XMC model prune "$T/r" 2> /dev/null; [ $? = 2 ] || fail "prune without --keep is not a usage error"
$XMC model prune "$T/r" --keep 0 2> /dev/null; [ $? = 2 ] || fail "--keep 0 accepted"
$XMC model frobnicate "$T/r" 2> /dev/null; [ $? = 2 ] || fail "unknown action accepted"
$XMC model list 2> /dev/null; [ $? = 2 ] || fail "list without a repository accepted"
$XMC model list "$T/none" 2> "$T/err"; [ $? = 1 ] || fail "missing repository not an error"
exit 0
