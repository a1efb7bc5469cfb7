#!/usr/bin/python3
"""scikit-learn one-vs-rest peer for `make bench` (run with /usr/bin/python3; Debian python3-sklearn).

Two steps, each its own process so that the caller can measure each one's whole-process wall time and peak RSS
(/usr/bin/time -v):

  peer_sklearn.py train tsv|xc TRAIN_FILE MODEL.pkl [--model svc|lr] [--C C] [--jobs N]
  peer_sklearn.py predict tsv|xc TEST_FILE MODEL.pkl

tsv: `labels<TAB>text` lines; features are TfidfVectorizer(ngram_range=(1,2), sublinear_tf=True, min_df=2).
xc:  multi-label libsvm lines without header (`l1,l2 f:v f:v ...`), used as given (yeast: labels 0-based, features
     1-based).
The classifier is OneVsRestClassifier(LinearSVC(C)) (or LogisticRegression), ranking labels by decision_function;
--jobs N fits the labels' classifiers in N processes (OneVsRestClassifier's n_jobs; default 1).
Each step prints `key<TAB>value` lines: train prints the in-process fit seconds (featurising included); predict
prints P@1/3/5, nDCG@1/3/5 (same definitions as `xmc eval`) and the in-process seconds and docs/s of featurising
plus scoring the whole test set.
"""
import math
import pickle
import sys
import time
import warnings

import numpy as np
import scipy.sparse as sp


def read_tsv(path):
    labels, texts = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            lab, _, text = line.partition("\t")
            labels.append([l for l in lab.split(",") if l])
            texts.append(text)
    return labels, texts


def read_xc(path):
    labels, rows, cols, vals = [], [], [], []
    ncol = 0
    with open(path) as f:
        for r, line in enumerate(f):
            parts = line.split()
            if parts and ":" not in parts[0]:
                labels.append([l for l in parts[0].split(",") if l])
                parts = parts[1:]
            else:
                labels.append([])
            for p in parts:
                c, v = p.split(":")
                c = int(c)
                rows.append(r)
                cols.append(c)
                vals.append(float(v))
                ncol = max(ncol, c + 1)
    x = sp.csr_matrix((vals, (rows, cols)), shape=(len(labels), ncol), dtype=np.float64)
    return labels, x


def metrics(scores, classes, gold, kmax=5):
    """P@k, nDCG@k over all test rows (labels unknown to the model count as misses, as in xmc eval)."""
    n = scores.shape[0]
    top = np.argsort(-scores, axis=1, kind="stable")[:, :kmax]
    prec = [0.0] * (kmax + 1)
    ndcg = [0.0] * (kmax + 1)
    for r in range(n):
        g = set(gold[r])
        hits = dcg = idcg = 0.0
        for k in range(1, kmax + 1):
            if classes[top[r, k - 1]] in g:
                hits += 1
                dcg += 1.0 / math.log2(k + 1)
            if k <= len(g):
                idcg += 1.0 / math.log2(k + 1)
            prec[k] += hits / k
            ndcg[k] += dcg / idcg if idcg > 0 else 0.0
    return [100.0 * p / n for p in prec], [100.0 * d / n for d in ndcg]


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    step, fmt, path, model_path = sys.argv[1:5]
    opts = dict(zip(sys.argv[5::2], sys.argv[6::2]))
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import MultiLabelBinarizer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.svm import LinearSVC
    from sklearn.linear_model import LogisticRegression

    warnings.filterwarnings("ignore")
    if step == "train":
        c = float(opts.get("--C", "1"))
        kind = opts.get("--model", "svc")
        t0 = time.perf_counter()
        if fmt == "tsv":
            labels, texts = read_tsv(path)
            vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2, dtype=np.float64)
            x = vec.fit_transform(texts)
        else:
            labels, x = read_xc(path)
            vec = None
        t_read = time.perf_counter()
        mlb = MultiLabelBinarizer(sparse_output=True)
        y = mlb.fit_transform(labels)
        base = LinearSVC(C=c) if kind == "svc" else LogisticRegression(C=c, solver="liblinear")
        clf = OneVsRestClassifier(base, n_jobs=int(opts.get("--jobs", "1"))).fit(x, y)
        t1 = time.perf_counter()
        with open(model_path, "wb") as f:
            pickle.dump((fmt, vec, x.shape[1], mlb, clf), f, protocol=pickle.HIGHEST_PROTOCOL)
        print(f"model\tOneVsRest({base.__class__.__name__}(C={c}))")
        print(f"features\t{x.shape[1]}")
        print(f"labels\t{len(mlb.classes_)}")
        print(f"featurise_s\t{t_read - t0:.3f}")
        print(f"fit_s\t{t1 - t0:.3f}")
    elif step == "predict":
        with open(model_path, "rb") as f:
            fmt, vec, nfeat, mlb, clf = pickle.load(f)
        t0 = time.perf_counter()
        if fmt == "tsv":
            gold, texts = read_tsv(path)
            x = vec.transform(texts)
        else:
            gold, x = read_xc(path)
            if x.shape[1] < nfeat:
                x = sp.hstack([x, sp.csr_matrix((x.shape[0], nfeat - x.shape[1]))]).tocsr()
            x = x[:, :nfeat]
        scores = clf.decision_function(x)
        if scores.ndim == 1:
            scores = scores[:, None]
        t1 = time.perf_counter()
        prec, ndcg = metrics(np.asarray(scores), list(mlb.classes_), gold)
        for k in (1, 3, 5):
            print(f"P@{k}\t{prec[k]:.2f}")
        for k in (1, 3, 5):
            print(f"nDCG@{k}\t{ndcg[k]:.2f}")
        print(f"docs\t{x.shape[0]}")
        print(f"predict_s\t{t1 - t0:.3f}")
        print(f"docs/s\t{x.shape[0] / (t1 - t0):.0f}")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
