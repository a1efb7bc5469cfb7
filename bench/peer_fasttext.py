#!/usr/bin/python3
"""Helpers for the fastText peer of `make bench` (the Debian `fasttext` command does the training and prediction).

  peer_fasttext.py prep IN.tsv OUT.txt      labels<TAB>text -> `__label__a __label__b text` (lower-cased,
                                            non-alphanumerics turned into spaces)
  peer_fasttext.py score GOLD.tsv PRED.txt  P@1/3/5 and nDCG@1/3/5 (same definitions as `xmc eval`) of the
                                            output of `fasttext predict MODEL TEST 5`, one line per document
"""
import math
import re
import sys

NONWORD = re.compile(r"[^0-9a-z]+")


def prep(src, dst):
    with open(src, encoding="utf-8") as f, open(dst, "w", encoding="utf-8") as g:
        for line in f:
            lab, _, text = line.rstrip("\n").partition("\t")
            labs = " ".join("__label__" + l for l in lab.split(",") if l)
            g.write(labs + " " + NONWORD.sub(" ", text.lower()).strip() + "\n")


def score(gold_path, pred_path, kmax=5):
    with open(gold_path, encoding="utf-8") as f:
        gold = [set(l for l in line.split("\t", 1)[0].split(",") if l) for line in f]
    with open(pred_path, encoding="utf-8") as f:
        pred = [[p[len("__label__"):] for p in line.split()] for line in f]
    if len(gold) != len(pred):
        sys.exit(f"peer_fasttext.py: {len(gold)} test documents but {len(pred)} prediction lines")
    n = len(gold)
    prec = [0.0] * (kmax + 1)
    ndcg = [0.0] * (kmax + 1)
    for g, p in zip(gold, pred):
        hits = dcg = idcg = 0.0
        for k in range(1, kmax + 1):
            if k <= len(p) and p[k - 1] in g:
                hits += 1
                dcg += 1.0 / math.log2(k + 1)
            if k <= len(g):
                idcg += 1.0 / math.log2(k + 1)
            prec[k] += hits / k
            ndcg[k] += dcg / idcg if idcg > 0 else 0.0
    for k in (1, 3, 5):
        print(f"P@{k}\t{100.0 * prec[k] / n:.2f}")
    for k in (1, 3, 5):
        print(f"nDCG@{k}\t{100.0 * ndcg[k] / n:.2f}")
    print(f"docs\t{n}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "prep":
        prep(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "score":
        score(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
