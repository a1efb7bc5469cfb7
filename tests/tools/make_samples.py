#!/usr/bin/python3
"""Make tests/data/reuters-sample/ and tests/data/yeast-sample/ from the full sets, and print the numbers
that tests/test_dataset.c and tests/test_tfidf.c expect of them.

Usage (from the repository root):
    /usr/bin/python3 tests/tools/make_samples.py REUTERS_DIR YEAST_DIR [OUT_DATA_DIR]
REUTERS_DIR holds train.tsv and test.tsv (Reuters-21578 ModApte-90, see tests/data/README.md), YEAST_DIR
holds yeast_train.txt (napkinXC's copy); OUT_DATA_DIR defaults to tests/data. Deterministic: the samples are
the first lines of each file. Needs only the Python standard library.

The TF-IDF feature counts are what scikit-learn's TfidfVectorizer(ngram_range=(1, 2), min_df=2) keeps: its
analyzer lower-cases the text (str.lower), takes the tokens that its token_pattern finds (default
(?u)\\b\\w\\w+\\b, i.e. words of 2+ characters), adds the space-joined pairs of consecutive tokens, and keeps
the terms found in at least 2 documents. The same counting on the full train.tsv gives 110263, the figure
scikit-learn 1.2.1 reported there (printed below as a check of this re-implementation).
"""
import os
import re
import sys

REUTERS_TRAIN_DOCS = 300  # tests/cli/encoder_featurizer.sh trains on these
REUTERS_TEST_DOCS = 100
YEAST_ROWS = 100


def sklearn_vocab_size(texts, pattern, min_df=2):
    token_re = re.compile(pattern)
    df = {}
    for text in texts:
        tokens = token_re.findall(text.lower())
        terms = set(tokens)
        terms.update(" ".join(tokens[i:i + 2]) for i in range(len(tokens) - 1))
        for t in terms:
            df[t] = df.get(t, 0) + 1
    return sum(1 for n in df.values() if n >= min_df)


def read_tsv(path, limit=None):
    rows = []
    with open(path, encoding="utf-8", newline="\n") as f:
        for line in f:
            if limit is not None and len(rows) == limit:
                break
            labels, text = line.rstrip("\n").split("\t", 1)
            rows.append((line, labels.split(","), text))
    return rows


def main(reuters, yeast, out):
    full = read_tsv(os.path.join(reuters, "train.tsv"))
    full_count = sklearn_vocab_size([t for _, _, t in full], r"(?u)\b\w\w+\b")
    print("check: full train.tsv, %d docs: sklearn word 1-2 min_df 2 keeps %d features (110263 expected)"
          % (len(full), full_count))
    assert full_count == 110263, full_count

    train = full[:REUTERS_TRAIN_DOCS]
    test = read_tsv(os.path.join(reuters, "test.tsv"), REUTERS_TEST_DOCS)
    d = os.path.join(out, "reuters-sample")
    os.makedirs(d, exist_ok=True)
    for name, rows in (("train.tsv", train), ("test.tsv", test)):
        with open(os.path.join(d, name), "w", encoding="utf-8", newline="\n") as f:
            f.writelines(line for line, _, _ in rows)
    names = []
    for _, labels, _ in train:
        names.extend(l for l in labels if l not in names)
    known = set(names)
    unknown = sum(1 for _, labels, _ in test for l in labels if l not in known)
    unknown_docs = sum(1 for _, labels, _ in test if any(l not in known for l in labels))
    texts = [t for _, _, t in train]
    print("reuters-sample/train.tsv: %d docs, %d labels, %d label entries, first label %s"
          % (len(train), len(names), sum(len(l) for _, l, _ in train), names[0]))
    print("reuters-sample/test.tsv: %d docs, %d unknown label occurrences in %d docs"
          % (len(test), unknown, unknown_docs))
    print("reuters-sample/train.tsv: sklearn word 1-2 min_df 2 keeps %d features; with token_pattern"
          " (?u)\\b\\w+\\b %d" % (sklearn_vocab_size(texts, r"(?u)\b\w\w+\b"), sklearn_vocab_size(texts, r"(?u)\b\w+\b")))

    d = os.path.join(out, "yeast-sample")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(yeast, "yeast_train.txt"), encoding="ascii", newline="\n") as f:
        rows = [next(f) for _ in range(YEAST_ROWS)]
    with open(os.path.join(d, "yeast_train.txt"), "w", encoding="ascii", newline="\n") as f:
        f.writelines(rows)
    labels = set()
    feats = 0
    max_feat = 0
    for r in rows:
        parts = r.split()
        labels.update(int(x) for x in parts[0].split(","))
        idx = [int(p.split(":")[0]) for p in parts[1:]]
        feats += len(idx)
        max_feat = max(max_feat, max(idx))
    print("yeast-sample/yeast_train.txt: %d rows, %d features (1-based max), labels %d..%d (%d distinct), %d entries"
          % (len(rows), max_feat, min(labels), max(labels), len(labels), feats))


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) == 4 else os.path.join("tests", "data"))
