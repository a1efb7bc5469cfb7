#!/usr/bin/python3
"""bert_train_torch.py: the PyTorch side of bench/bert_train.sh: one training step of the encoder per (seq, batch).

  bert_train_torch.py DIR OUT    DIR as made by bert_torch.py gen; writes "seq batch tokens_per_s" lines and
                                 "rss_kb N" to OUT

A step is what bert_train_bench.c times: the forward of bert_torch.Bert (HF BertModel's functional calls, mean
pooling, or the first token's hidden state with BENCH_POOLING=cls: every token of every layer computed either
way, as HF's BertModel does) with every weight a leaf that requires grad, loss = sum(pooled * r) with the same fixed r, backward,
torch.optim.AdamW (lr 1e-4, wd 0.01, foreach=False) over the encoder. BENCH_RECIPE=pecos: PECOS's step instead,
torch.nn.utils.clip_grad_norm_ to 1 (the torch-1.13 function PECOS ships a copy of) then AdamW without weight
decay (transformers.AdamW, PECOS's, differs only in where eps goes: the same work). Threads: OpenBLAS from
OPENBLAS_NUM_THREADS, torch intra-op threads from TORCH_THREADS. Steps until BENCH_MIN_TIME seconds (default
2), at least 2, after one warm-up step.
"""
import json
import os
import resource
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bert_torch  # noqa: E402

POINTS = [(32, 32), (128, 32)]


def steps_per_s(model, opt, ids, mask, pooling, r, min_time, clip=None):
    """Training steps per second: one warm-up step, then steps until min_time seconds and at least 2. clip: the
    leaves to clip to global norm 1 before each step (PECOS's recipe), or None."""
    n, t0 = -1, 0.0
    while True:
        if n == 0:
            t0 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        loss = (model(ids, mask, pooling) * r).sum()
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(clip, 1.0)
        opt.step()
        n += 1
        if n >= 2 and time.perf_counter() - t0 >= min_time:
            break
    return n / (time.perf_counter() - t0)


def main(d, out):
    torch.set_num_threads(int(os.environ.get("TORCH_THREADS", "1")))
    W, _ = bert_torch.bert_ref.load_safetensors(os.path.join(d, "model.safetensors"))
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    all_ids = np.fromfile(os.path.join(d, "ids.bin"), dtype="<i4").reshape(bert_torch.MAX_B, bert_torch.MAX_T)
    model = bert_torch.Bert(W, cfg)
    leaves = [t.requires_grad_(True) for k, t in model.W.items() if not k.startswith("pooler.")]
    pecos = os.environ.get("BENCH_RECIPE", "torch") == "pecos"
    opt = torch.optim.AdamW(leaves, lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0 if pecos else 0.01,
                            foreach=False)
    clip = leaves if pecos else None
    H = cfg["hidden_size"]
    idx = np.arange(bert_torch.MAX_B * H, dtype=np.int64)
    r_all = torch.from_numpy((((idx * 7919) % 2001 - 1000) * 1e-6).astype(np.float32)).reshape(bert_torch.MAX_B, H)
    min_time = float(os.environ.get("BENCH_MIN_TIME", "2.0"))
    pooling = os.environ.get("BENCH_POOLING", "mean")
    lines = []
    for T, B in POINTS:
        ids, mask = bert_torch.batch_ids(all_ids, T, B)
        lines.append("%d %d %.1f" % (T, B, steps_per_s(model, opt, ids, mask, pooling, r_all[:B], min_time, clip) * B * T))
    # catalog titles (DIR/title_ids.bin, title_lens.bin, written by bert_train.sh): padded to max_length as PECOS's
    # tokenizer does (padding="max_length", 128) and, as a dynamic-padding pipeline would, to the batch's longest
    tl_path = os.path.join(d, "title_lens.bin")
    if os.path.exists(tl_path):
        tlens = np.fromfile(tl_path, dtype="<i4")
        tids = np.fromfile(os.path.join(d, "title_ids.bin"), dtype="<i4").reshape(len(tlens), bert_torch.MAX_T)
        B = len(tlens)
        r = r_all[:B]
        for name, T in (("titles_pad128", bert_torch.MAX_T), ("titles_padlongest", int(tlens.max()))):
            ids = torch.from_numpy(tids[:, :T].astype(np.int64).copy())
            mask = (torch.arange(T)[None, :] < torch.from_numpy(tlens.astype(np.int64))[:, None]).long()
            lines.append("%s %d %.1f %d" % (name, B, steps_per_s(model, opt, ids, mask, pooling, r, min_time, clip) * B,
                                            int(tlens.sum())))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\nrss_kb %d\n" % rss)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
