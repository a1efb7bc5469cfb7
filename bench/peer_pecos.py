#!/usr/bin/python3
"""peer_pecos.py: PECOS's own XR-Linear text pipeline on a labels<TAB>text TSV pair, for bench/peers_pecos.sh.

The pipeline is the one ../shared/PEERS.md describes (what xmc is measured against): Tfidf word 1-2 grams,
sublinear tf, min_df_cnt 2, l2; PIFA label embedding; hierarchical k-means (nr_splits 16, max_leaf_size 100,
seed 0); XLinearModel.train with its defaults; predict with beam 10, top 10. Prints `key<TAB>value` lines:
P@1, P@3, P@5 (a test label the model does not know counts as a miss, as in `xmc eval`), features, and the
in-process seconds of each phase. PECOS is used from a source build (PYTHONPATH=$PECOS_SRC).

--export DIR also writes PECOS's vocabulary and feature rows in bench/tfidf_export's layout (vocab.tsv:
ngram<TAB>idf in feature-id order, the n-gram's tokens joined by one space; train.svm, test.svm: labels<TAB>id:value
...), so the two featurizers can be compared row by row. --nxc DIR writes the same features as napkinXC input
(label ids, then id:value pairs) with the test labels mapped to the training label ids (unknown ones dropped:
they are misses either way). --score-nxc TEST.txt PRED prints P@1/3/5 of napkinXC's predictions (one line per
document, label:score pairs best first) against those test labels. --batch-bench N times in-process prediction,
text in (Tfidf.predict then XLinearModel.predict of the model saved and loaded predict-only, one thread), of the first N test texts in calls of 1 and of 256
texts, and prints the best of 3 passes as CPU microseconds per document (pecos_batch1_us, pecos_batch256_us), the
measure bench/batch_bench prints for xmc, and as wall microseconds (pecos_batch1_wall_us, ...).
--xc takes TRAIN and TEST as feature files instead of text (`l1,l2 f:v f:v ...`, features indexed from 1, as
napkinXC's and the Yeast data's): no Tfidf, the rows as given go to PIFA and XLinearModel (what a text-less data
set allows), and --batch-bench times XLinearModel.predict alone on those rows.
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np
import scipy.sparse as smat


def read_tsv(path):
    labels, texts = [], []
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            line = line.rstrip("\n")
            lab, _, text = line.partition("\t")
            labels.append([x for x in lab.split(",") if x])
            texts.append(text)
    return labels, texts


def read_xc(path):
    """An --xc file: labels (as strings) and the feature rows as (row, col, value) lists, features from 1."""
    labels, rows, cols, vals = [], [], [], []
    with open(path) as f:
        for r, line in enumerate(f):
            parts = line.split()
            if parts and ":" not in parts[0]:
                labels.append([x for x in parts[0].split(",") if x])
                parts = parts[1:]
            else:
                labels.append([])
            for p in parts:
                c, v = p.split(":")
                rows.append(r)
                cols.append(int(c) - 1)
                vals.append(float(v))
    return labels, (rows, cols, vals)


def xc_matrix(triples, n, ncol):
    r, c, v = triples
    keep = [i for i in range(len(c)) if 0 <= c[i] < ncol]
    return smat.csr_matrix((np.asarray([v[i] for i in keep], dtype=np.float32),
                            ([r[i] for i in keep], [c[i] for i in keep])), shape=(n, ncol))


def label_matrix(labels, index, grow):
    rows, cols = [], []
    for i, labs in enumerate(labels):
        for lab in labs:
            if lab not in index:
                if not grow:
                    continue
                index[lab] = len(index)
            rows.append(i)
            cols.append(index[lab])
    return rows, cols


def precision(pred, labels, index, ks=(1, 3, 5)):
    """pred: csr of scores (top 10 per row). Returns {k: P@k} in percent."""
    hits = {k: 0 for k in ks}
    pred = pred.tocsr()
    for i, labs in enumerate(labels):
        truth = {index[x] for x in labs if x in index}
        lo, hi = pred.indptr[i], pred.indptr[i + 1]
        order = np.argsort(-pred.data[lo:hi], kind="stable")
        top = pred.indices[lo:hi][order]
        for k in ks:
            hits[k] += sum(1 for j in top[:k] if j in truth)
    n = len(labels)
    return {k: 100.0 * hits[k] / (n * k) for k in ks}


def write_svm(path, X, labels):
    X = X.tocsr()
    with open(path, "w", encoding="utf-8", errors="surrogateescape") as f:
        for i in range(X.shape[0]):
            lo, hi = X.indptr[i], X.indptr[i + 1]
            order = np.argsort(X.indices[lo:hi])
            feats = " ".join("%d:%.6g" % (X.indices[lo + j], X.data[lo + j]) for j in order)
            f.write("%s\t%s\n" % (labels[i], feats))


def export_vocab(tfidf, path):
    """Reads PECOS's saved model (tokenizer vocab.txt, tfidf-model.txt) and writes ngram<TAB>idf per feature."""
    with tempfile.TemporaryDirectory() as tmp:
        tfidf.save(tmp)
        base = os.path.join(tmp, "0.base")  # the first (only) base vectorizer
        tokens = {}
        with open(os.path.join(base, "tokenizer", "vocab.txt"), encoding="utf-8", errors="surrogateescape") as f:
            next(f)
            for line in f:
                idx, _, tok = line.rstrip("\n").partition("\t")
                tokens[int(idx)] = tok
        feats = {}
        with open(os.path.join(base, "vectorizer", "tfidf-model.txt"), encoding="utf-8") as f:
            next(f)
            for line in f:
                parts = line.split()
                fid, idf, n = int(parts[0]), float(parts[1]), int(parts[2])
                feats[fid] = (" ".join(tokens[int(t)] for t in parts[3:3 + n]), idf)
    with open(path, "w", encoding="utf-8", errors="surrogateescape") as f:
        for fid in range(len(feats)):
            f.write("%s\t%.6g\n" % feats[fid])


def score_nxc(test_path, pred_path, ks=(1, 3, 5)):
    hits, n = {k: 0 for k in ks}, 0
    with open(test_path) as t, open(pred_path) as p:
        for tline, pline in zip(t, p):
            first = tline.split(" ", 1)[0]
            truth = set(first.split(",")) if ":" not in first else set()
            top = [x.split(":")[0] for x in pline.split()]
            for k in ks:
                hits[k] += sum(1 for lab in top[:k] if lab in truth)
            n += 1
    for k in ks:
        print("P@%d\t%.2f" % (k, 100.0 * hits[k] / (max(n, 1) * k)))


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--score-nxc":
        score_nxc(sys.argv[2], sys.argv[3])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("train")
    ap.add_argument("test")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--export", help="write vocab.tsv, train.svm, test.svm here")
    ap.add_argument("--nxc", help="write napkinXC input (train.txt, test.txt) here")
    ap.add_argument("--batch-bench", type=int, default=0, help="time predict at batch 1 and 256 on N test texts")
    ap.add_argument("--xc", action="store_true", help="TRAIN and TEST are feature files (features from 1), not text")
    args = ap.parse_args()

    from pecos.utils.featurization.text.vectorizers import Tfidf
    from pecos.xmc import Indexer, LabelEmbeddingFactory
    from pecos.xmc.xlinear.model import XLinearModel

    if args.xc:
        trn_labels, trn_rows = read_xc(args.train)
        tst_labels, tst_rows = read_xc(args.test)
    else:
        trn_labels, trn_texts = read_tsv(args.train)
        tst_labels, tst_texts = read_tsv(args.test)
    index = {}
    r, c = label_matrix(trn_labels, index, True)
    Y = smat.csr_matrix((np.ones(len(r), dtype=np.float32), (r, c)), shape=(len(trn_labels), len(index)))

    t0 = time.perf_counter()
    if args.xc:
        tfidf = None
        ncol = max(trn_rows[1], default=-1) + 1  # the model's dimension: what training saw
        X = xc_matrix(trn_rows, len(trn_labels), ncol)
    else:
        tfidf = Tfidf.train(trn_texts, {"ngram_range": (1, 2), "sublinear_tf": True, "min_df_cnt": 2, "norm": "l2",
                                        "threads": args.threads})
        X = tfidf.predict(trn_texts, threads=args.threads)
    t1 = time.perf_counter()
    label_feat = LabelEmbeddingFactory.create(Y, X, method="pifa")
    chain = Indexer.gen(label_feat, indexer_type="hierarchicalkmeans", nr_splits=16, max_leaf_size=100, seed=0,
                        threads=args.threads)
    t2 = time.perf_counter()
    model = XLinearModel.train(X, Y, C=chain, threads=args.threads)
    t3 = time.perf_counter()
    Xt = xc_matrix(tst_rows, len(tst_labels), X.shape[1]) if args.xc else tfidf.predict(tst_texts, threads=args.threads)
    pred = model.predict(Xt, beam_size=10, only_topk=10, threads=args.threads)
    t4 = time.perf_counter()
    p = precision(pred, tst_labels, index)

    print("P@1\t%.2f\nP@3\t%.2f\nP@5\t%.2f" % (p[1], p[3], p[5]))
    print("labels\t%d\nfeatures\t%d" % (len(index), X.shape[1]))
    print("features_s\t%.2f\ntree_s\t%.2f\nrankers_s\t%.2f\ntrain_s\t%.2f\npredict_s\t%.2f"
          % (t1 - t0, t2 - t1, t3 - t2, t3 - t0, t4 - t3))
    sys.stdout.flush()

    if args.batch_bench:
        # PECOS's serving path: the model saved and loaded predict-only (into its C++ side, the MSCM chunked
        # weights), which is how it is deployed and much faster per call than the model fresh from training
        with tempfile.TemporaryDirectory() as tmp:
            model.save(tmp)
            model = XLinearModel.load(tmp, is_predict_only=True)
        ndocs = min(args.batch_bench, len(tst_labels))
        texts = None if args.xc else tst_texts[:ndocs]
        rows = Xt[:ndocs].tocsr() if args.xc else None
        for batch in (1, 256):
            best, best_wall = None, None
            for _ in range(3):
                c0, w0 = time.process_time(), time.perf_counter()
                for i in range(0, ndocs, batch):
                    x = rows[i:i + batch] if args.xc else tfidf.predict(texts[i:i + batch], threads=1)
                    model.predict(x, beam_size=10, only_topk=10, threads=1)
                c, w = time.process_time() - c0, time.perf_counter() - w0
                best = c if best is None or c < best else best
                best_wall = w if best_wall is None or w < best_wall else best_wall
            print("pecos_batch%d_us\t%.2f\npecos_batch%d_wall_us\t%.2f"
                  % (batch, best * 1e6 / ndocs, batch, best_wall * 1e6 / ndocs))
        sys.stdout.flush()

    if args.export and not args.xc:
        os.makedirs(args.export, exist_ok=True)
        export_vocab(tfidf, os.path.join(args.export, "vocab.tsv"))
        write_svm(os.path.join(args.export, "train.svm"), X, [",".join(x) for x in trn_labels])
        write_svm(os.path.join(args.export, "test.svm"), Xt, [",".join(x) for x in tst_labels])
    if args.nxc and not args.xc:
        os.makedirs(args.nxc, exist_ok=True)
        for name, M, labs in (("train.txt", X, trn_labels), ("test.txt", Xt, tst_labels)):
            M = M.tocsr()
            with open(os.path.join(args.nxc, name), "w") as f:
                for i in range(M.shape[0]):
                    ids = ",".join(str(index[x]) for x in labs[i] if x in index)
                    lo, hi = M.indptr[i], M.indptr[i + 1]
                    order = np.argsort(M.indices[lo:hi])
                    feats = " ".join("%d:%.6g" % (M.indices[lo + j] + 1, M.data[lo + j]) for j in order)
                    f.write("%s %s\n" % (ids, feats))


if __name__ == "__main__":
    main()
