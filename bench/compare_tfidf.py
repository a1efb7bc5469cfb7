#!/usr/bin/python3
"""compare_tfidf.py: compares two featurizers' exports (bench/tfidf_export, bench/peer_pecos.py --export).

usage: compare_tfidf.py A_DIR B_DIR [N]   each DIR holds vocab.tsv (ngram<TAB>idf) and train.svm
Prints the vocabulary sizes, n-grams in one and not the other (counts and examples, by kind: unigram/bigram,
with upper case, with non-alphanumerics, with digits, one character), idf differences on the shared n-grams,
and for the first N (default 2000) training rows the mean and largest difference of the values of shared n-grams
and the mass (sum of squared values) each row puts on n-grams the other lacks.
"""
import sys


def vocab(d):
    names, idf = [], {}
    with open(d + "/vocab.tsv", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            g, _, v = line.rstrip("\n").rpartition("\t")
            names.append(g)
            idf[g] = float(v)
    return names, idf


def rows(d, names, n):
    out = []
    with open(d + "/train.svm", encoding="utf-8", errors="surrogateescape") as f:
        for i, line in enumerate(f):
            if i >= n:
                break
            feats = line.rstrip("\n").partition("\t")[2]
            r = {}
            for kv in feats.split():
                k, _, v = kv.rpartition(":")
                r[names[int(k)]] = float(v)
            out.append(r)
    return out


def kind(g):
    k = ["bigram" if " " in g else "unigram"]
    if any(c.isupper() for c in g): k.append("upper")
    if any(not (c.isalnum() or c == " ") for c in g): k.append("punct")
    if any(c.isdigit() for c in g): k.append("digit")
    if any(len(w) == 1 for w in g.split(" ")): k.append("1char")
    if any(ord(c) > 127 for c in g): k.append("nonascii")
    return "+".join(k)


def main():
    a, b = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
    an, ai = vocab(a)
    bn, bi = vocab(b)
    print("vocabulary: A %d, B %d, shared %d" % (len(ai), len(bi), len(set(ai) & set(bi))))
    for x, xi, yi in (("A", ai, bi), ("B", bi, ai)):
        only = [g for g in xi if g not in yi]
        by = {}
        for g in only:
            by.setdefault(kind(g), []).append(g)
        print("only in %s: %d" % (x, len(only)))
        for k, gs in sorted(by.items(), key=lambda kv: -len(kv[1]))[:12]:
            print("  %-28s %7d  e.g. %s" % (k, len(gs), " | ".join(gs[:6])))
    shared = set(ai) & set(bi)
    d = [abs(ai[g] - bi[g]) for g in shared]
    if d:
        worst = max(shared, key=lambda g: abs(ai[g] - bi[g]))
        print("idf on shared n-grams: max |A-B| %.3g (%r: %.4g vs %.4g), mean %.3g"
              % (max(d), worst, ai[worst], bi[worst], sum(d) / len(d)))
    ra, rb = rows(a, an, n), rows(b, bn, n)
    maxd, sumd, cnt, ma, mb = 0.0, 0.0, 0, 0.0, 0.0
    for x, y in zip(ra, rb):
        for g in set(x) & set(y):
            dd = abs(x[g] - y[g])
            maxd, sumd, cnt = max(maxd, dd), sumd + dd, cnt + 1
        ma += sum(v * v for g, v in x.items() if g not in y)
        mb += sum(v * v for g, v in y.items() if g not in x)
    m = len(ra)
    print("rows 0..%d: values of shared n-grams |A-B| max %.3g mean %.3g; mass on n-grams the other row lacks: "
          "A %.3f, B %.3f (mean per row, of 1)" % (m - 1, maxd, sumd / max(cnt, 1), ma / max(m, 1), mb / max(m, 1)))


if __name__ == "__main__":
    main()
