#!/usr/bin/python3
"""make_pecos_tfidf_ref.py: PECOS's own Tfidf on a labels<TAB>text TSV, sampled into the reference that
tests/test_tfidf_pecos.c compares xmc's TF-IDF (split=space, casefold=0) against.

Usage: PYTHONPATH=$PECOS_SRC /usr/bin/python3 tests/tools/make_pecos_tfidf_ref.py \
           tests/data/reuters-sample/train.tsv > tests/data/pecos-tfidf/reuters_sample.tsv
PECOS from a source build (../shared/PEERS.md; v1.2.7 = amzn/pecos @ 7b989e0). Config as PEERS.md gives PECOS's
pipeline: word 1-2 grams, sublinear tf, min_df_cnt 2, l2. Output lines (tab-separated):
  dim   <PECOS's feature count>
  idf   <n-gram>   <idf>          every 16th feature in PECOS's numbering and the 20 most frequent (PECOS saves
                                  idf with 6 decimals)
  row   <r>   <n-gram>   <value>  every feature of training rows 0, 1, 50, 150, 250, 299 (%.6g)
n-grams are PECOS's tokens joined by one space.
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
from peer_pecos import export_vocab, read_tsv  # noqa: E402
from pecos.utils.featurization.text.vectorizers import Tfidf  # noqa: E402

ROWS = (0, 1, 50, 150, 250, 299)


def main():
    path = sys.argv[1]
    _, texts = read_tsv(path)
    tfidf = Tfidf.train(texts, {"ngram_range": (1, 2), "sublinear_tf": True, "min_df_cnt": 2, "norm": "l2",
                                "threads": 1})
    X = tfidf.predict(texts).tocsr()
    with tempfile.TemporaryDirectory() as tmp:
        vp = os.path.join(tmp, "vocab.tsv")
        export_vocab(tfidf, vp)
        with open(vp, encoding="utf-8", errors="surrogateescape") as f:
            vocab = [line.rstrip("\n").rsplit("\t", 1) for line in f]
    out = sys.stdout
    out.write("# PECOS v1.2.7 Tfidf on %s (%d texts), {ngram_range (1, 2), sublinear_tf True, min_df_cnt 2, "
              "norm l2}\n# made by tests/tools/make_pecos_tfidf_ref.py\n" % (os.path.basename(path), len(texts)))
    out.write("dim\t%d\n" % len(vocab))
    by_idf = sorted(range(len(vocab)), key=lambda i: (float(vocab[i][1]), i))[:20]
    for i in sorted(set(range(0, len(vocab), 16)) | set(by_idf)):
        out.write("idf\t%s\t%s\n" % (vocab[i][0], vocab[i][1]))
    for r in ROWS:
        if r >= X.shape[0]:
            continue
        lo, hi = X.indptr[r], X.indptr[r + 1]
        for j in range(lo, hi):
            out.write("row\t%d\t%s\t%.6g\n" % (r, vocab[X.indices[j]][0], X.data[j]))


if __name__ == "__main__":
    main()
