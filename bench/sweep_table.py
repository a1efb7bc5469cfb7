#!/usr/bin/python3
"""sweep_table.py: bench/sweep.sh's raw rows (TSV) -> the sweep table and the rule's choice per parameter.

Usage: sweep_table.py SWEEP.tsv [MARGIN]. The rule (bench/sweep.sh's header says it in words): within one
parameter, the value with the highest mean P@1 over the datasets it ran on replaces the default only if that
mean beats the default's on the same datasets by at least MARGIN, it is no more than 0.5 P@1 below the default on
any dataset, and its summed training time is at most twice the default's."""
import csv
import sys

rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
margin = float(sys.argv[2]) if len(sys.argv) > 2 else 0.10
datasets = list(dict.fromkeys(r["dataset"] for r in rows))
# the order of bench/sweep.sh's list: that of the dataset that ran the most settings, then any others
by_set = {d: [(r["param"], r["value"]) for r in rows if r["dataset"] == d] for d in datasets}
settings = list(dict.fromkeys(sum(sorted(by_set.values(), key=len, reverse=True), [])))
res = {(r["dataset"], r["param"], r["value"]): r for r in rows}


def p1(d, s):
    r = res.get((d, *s))
    return float(r["P@1"]) if r else None


# rank of each setting's P@1 within a dataset (1 = best; ties share the better rank)
rank = {}
for d in datasets:
    vals = [(p1(d, s), s) for s in settings if p1(d, s) is not None]
    for v, s in vals:
        rank[(d, s)] = 1 + sum(1 for w, _ in vals if w > v)

default = settings[0]
head = "| parameter | value |" + "".join(f" {d} P@1 | P@5 | train cpu s |" for d in datasets)
head += " mean P@1 | vs default | mean rank |"
print(head)
print("|" + "---|" * (head.count("|") - 1))
summary = {}
for s in settings:
    ran = [d for d in datasets if (d, *s) in res]
    cells = []
    for d in datasets:
        r = res.get((d, *s))
        cells.append(f" {r['P@1']} | {r['P@5']} | {r['train_s']} |" if r else " - | - | - |")
    mean = sum(p1(d, s) for d in ran) / len(ran)
    dmean = sum(p1(d, default) for d in ran) / len(ran)
    mrank = sum(rank[(d, s)] for d in ran) / len(ran)
    worst = min(p1(d, s) - p1(d, default) for d in ran)
    secs = sum(float(res[(d, *s)]["train_s"]) for d in ran)
    dsecs = sum(float(res[(d, *default)]["train_s"]) for d in ran)
    kb = [float(res[(d, *s)].get("model_kb") or 0) / float(res[(d, *default)].get("model_kb") or 1) for d in ran]
    summary[s] = (mean - dmean, worst, secs / dsecs if dsecs > 0 else 1.0, mrank, sum(kb) / len(kb))
    label = "defaults" if s == default else s[0]
    value = "" if s == default else s[1]
    print(f"| {label} | {value} |" + "".join(cells) + f" {mean:.2f} | {mean - dmean:+.2f} | {mrank:.1f} |")

print()
print(f"The rule, per parameter (margin {margin:.2f} P@1; at most -0.5 on any dataset; at most 2x the training time):")
for param in dict.fromkeys(p for p, _ in settings[1:]):
    vals = [s for s in settings[1:] if s[0] == param]
    best = max(vals, key=lambda s: summary[s][0])
    gain, worst, tratio, _, kbratio = summary[best]
    ok = gain >= margin and worst >= -0.5 and tratio <= 2.0
    why = (f"best other value {best[1]}: mean {gain:+.2f} P@1, worst dataset {worst:+.2f}, "
           f"training time x{tratio:.2f}, model size x{kbratio:.2f} (mean over datasets)")
    print(f"  {param}: {'CHANGE to ' + best[1] if ok else 'keep the default'} ({why})")
