#!/bin/bash
# bench/pair_pecos.sh: xmc's training time against PECOS's on the same catalog, in alternation (xmc, PECOS, xmc, ...)
# so that a shared machine's load falls on both sides alike; prints each pair's in-process train seconds, their
# ratio and the load average. bench/peers_pecos.sh runs every tool once after another (P@k, RSS, napkinXC): this
# script is for the time ratio alone.
#
# Data: `xmc gen --taxonomy $DATA/taxonomy/categories.tsv --docs N+10000 --seed 1`, the first N titles to train on,
# the last 10,000 held out (PECOS's pipeline also predicts them, outside its train time), with the leaf labels or
# every path prefix of them (as peers_pecos.sh). xmc's time: the sum of `xmc train`'s phases (featurizing included);
# PECOS's: peer_pecos.py's train_s (its Tfidf fit and transform included).
#
# Environment: BUILD (default build), DATA (default ../shared/data), PECOS_SRC (default /tmp/pecos-src), PAIR_DOCS
# (default 50000), PAIR_THREADS (default "1 2"), PAIR_RUNS (pairs per catalog and thread count, default 5),
# PAIR_LABELS (default "leaf prefix").
set -u -o pipefail
BUILD=${BUILD:-build}
DATA=${DATA:-../shared/data}
PECOS_SRC=${PECOS_SRC:-/tmp/pecos-src}
DOCS=${PAIR_DOCS:-50000}
THREADS=${PAIR_THREADS:-1 2}
RUNS=${PAIR_RUNS:-5}
LABELS=${PAIR_LABELS:-leaf prefix}
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
XMC=$(readlink -f "$BUILD/xmc")
[ -x "$XMC" ] || { echo "pair_pecos: $BUILD/xmc not built (run make)" >&2; exit 1; }
PYTHONPATH=$PECOS_SRC $PY -c 'from pecos.xmc.xlinear.model import XLinearModel' 2>/dev/null ||
    { echo "pair_pecos: no importable PECOS under PECOS_SRC=$PECOS_SRC (../shared/PEERS.md)" >&2; exit 1; }
T=$DATA/taxonomy/categories.tsv
[ -f "$T" ] || { echo "pair_pecos: $T absent" >&2; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/xmc-pair.XXXXXX") || exit 1
trap 'rm -rf "$WORK"' EXIT

"$XMC" gen --taxonomy "$T" --docs $((DOCS + 10000)) --seed 1 --out "$WORK/cat.tsv" || exit 1
head -n "$DOCS" "$WORK/cat.tsv" >"$WORK/leaf.train" && tail -n 10000 "$WORK/cat.tsv" >"$WORK/leaf.test" || exit 1
for s in train test; do   # every path prefix of every label, as peers_pecos.sh
    awk -F'\t' 'BEGIN{OFS="\t"} {n=split($1,L,","); out=""; delete seen
        for(i=1;i<=n;i++){m=split(L[i],P," > "); p=""
            for(j=1;j<=m;j++){p=(j==1?P[1]:p " > " P[j]); if(!(p in seen)){seen[p]=1; out=out (out==""?"":",") p}}}
        print out, $2}' "$WORK/leaf.$s" >"$WORK/prefix.$s" || exit 1
done

echo "xmc $XMC; PECOS $PECOS_SRC ($(git -C "$PECOS_SRC" describe --tags --always 2>/dev/null || echo '?')); $DOCS titles"
printf '%-7s %7s %4s %8s %9s %7s   %s\n' labels threads pair "xmc s" "PECOS s" ratio "load average (1, 5, 15 min)"
for c in $LABELS; do
    for t in $THREADS; do
        for i in $(seq "$RUNS"); do
            xs=$("$XMC" train --train "$WORK/$c.train" --model "$WORK/m" --threads "$t" 2>&1 |
                sed -n 's/.*(\([0-9.]*\) s features, \([0-9.]*\) s tree, \([0-9.]*\) s rankers, \([0-9.]*\) s write).*/\1 \2 \3 \4/p' |
                awk '{printf "%.2f", $1 + $2 + $3 + $4}')
            rm -rf "$WORK/m"
            ps=$(PYTHONPATH=$PECOS_SRC $PY "$HERE/peer_pecos.py" "$WORK/$c.train" "$WORK/$c.test" --threads "$t" 2>/dev/null |
                awk -F'\t' '$1=="train_s"{print $2}')
            if [ -z "$xs" ] || [ -z "$ps" ]; then echo "pair_pecos: a run failed ($c, $t threads)" >&2; exit 1; fi
            printf '%-7s %7s %4s %8s %9s %7s   %s\n' "$c" "$t" "$i" "$xs" "$ps" \
                "$(awk -v a="$xs" -v b="$ps" 'BEGIN{printf "%.3f", a / b}')" "$(cut -d' ' -f1-3 /proc/loadavg)"
        done
    done
done
