#!/usr/bin/python3
"""bert_torch.py: the PyTorch side of bench/bert_bench.sh, and the generator of its model.

  bert_torch.py gen DIR          random MiniLM-L6-H384-shaped BERT (fixed seed) -> DIR/config.json,
                                 DIR/model.safetensors, DIR/ids.bin (32 x 128 int32 token ids)
  bert_torch.py titles DIR TSV VOCAB
                                 the first 32 texts of TSV (labels<TAB>text) as WordPiece ids of VOCAB (max 128,
                                 [CLS] ... [SEP], 0 past the end) -> DIR/title_ids.bin (32 x 128 int32) and
                                 DIR/title_lens.bin (32 int32), for bench/bert_train.sh's catalog-title point
  bert_torch.py bench DIR OUT    times the PyTorch forward + mean pooling on CPU at every (seq, batch) point
                                 of POINTS, writes "seq batch tokens_per_s seqs_per_s" lines to OUT, and
                                 checks its pooled vectors against DIR/c_mean.txt when the C driver left one

The forward is HF BertModel's (F.linear, post-LN, erf GELU, additive mask), checked once against the plain
reference forward of ../shared/tools/bert_ref.py. Threads: OpenBLAS from OPENBLAS_NUM_THREADS (set by the
script), torch intra-op threads from TORCH_THREADS; run under torch.inference_mode().
"""
import json
import math
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
# bert_ref.py: the repository's copy (tests/tools), so that a clone with nothing beside it runs this too
sys.path.insert(0, os.path.join(HERE, "..", "tests", "tools"))
if os.environ.get("XMC_TOOLS"):
    sys.path.insert(0, os.environ["XMC_TOOLS"])
import bert_ref  # noqa: E402

CONFIG = {
    "architectures": ["BertModel"], "model_type": "bert", "vocab_size": 30522, "hidden_size": 384,
    "num_hidden_layers": 6, "num_attention_heads": 12, "intermediate_size": 1536, "hidden_act": "gelu",
    "max_position_embeddings": 512, "type_vocab_size": 2, "layer_norm_eps": 1e-12, "pad_token_id": 0,
    "position_embedding_type": "absolute",
}
POINTS = [(32, 1), (32, 32), (128, 1), (128, 32)]  # (sequence length, batch)
MAX_B, MAX_T = 32, 128
SEED = 20261126


def gen(d):
    os.makedirs(d, exist_ok=True)
    rs = np.random.RandomState(SEED)
    H, Fd, V = CONFIG["hidden_size"], CONFIG["intermediate_size"], CONFIG["vocab_size"]
    t = []

    def add(name, shape, kind):
        if kind == "ln_w":
            a = 1.0 + 0.1 * rs.standard_normal(shape)
        elif kind == "emb":
            a = 0.5 * rs.standard_normal(shape)
        elif kind == "w":
            a = rs.standard_normal(shape) / math.sqrt(shape[1])
        else:
            a = 0.05 * rs.standard_normal(shape)
        t.append((name, a.astype(np.float32)))

    add("embeddings.word_embeddings.weight", (V, H), "emb")
    add("embeddings.position_embeddings.weight", (CONFIG["max_position_embeddings"], H), "emb")
    add("embeddings.token_type_embeddings.weight", (2, H), "emb")
    add("embeddings.LayerNorm.weight", (H,), "ln_w")
    add("embeddings.LayerNorm.bias", (H,), "b")
    for l in range(CONFIG["num_hidden_layers"]):
        L = "encoder.layer.%d." % l
        for n in ("query", "key", "value"):
            add(L + "attention.self.%s.weight" % n, (H, H), "w")
            add(L + "attention.self.%s.bias" % n, (H,), "b")
        add(L + "attention.output.dense.weight", (H, H), "w")
        add(L + "attention.output.dense.bias", (H,), "b")
        add(L + "attention.output.LayerNorm.weight", (H,), "ln_w")
        add(L + "attention.output.LayerNorm.bias", (H,), "b")
        add(L + "intermediate.dense.weight", (Fd, H), "w")
        add(L + "intermediate.dense.bias", (Fd,), "b")
        add(L + "output.dense.weight", (H, Fd), "w")
        add(L + "output.dense.bias", (H,), "b")
        add(L + "output.LayerNorm.weight", (H,), "ln_w")
        add(L + "output.LayerNorm.bias", (H,), "b")
    add("pooler.dense.weight", (H, H), "w")
    add("pooler.dense.bias", (H,), "b")
    bert_ref.save_safetensors(os.path.join(d, "model.safetensors"), t, {"seed": SEED, "shape": "MiniLM-L6-H384"})
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=2)
    ids = rs.randint(1000, V, size=(MAX_B, MAX_T)).astype("<i4")
    ids.tofile(os.path.join(d, "ids.bin"))


class Bert(torch.nn.Module):
    """HF BertModel inference, written with the same functional calls HF uses."""

    def __init__(self, W, cfg):
        super().__init__()
        self.W = {k: torch.from_numpy(v) for k, v in W.items()}
        self.cfg = cfg

    def forward(self, ids, mask, pooling="mean"):
        W, c = self.W, self.cfg
        B, T = ids.shape
        H, nh = c["hidden_size"], c["num_attention_heads"]
        hd, eps = H // nh, c["layer_norm_eps"]
        x = F.embedding(ids, W["embeddings.word_embeddings.weight"])
        x = x + F.embedding(torch.zeros_like(ids), W["embeddings.token_type_embeddings.weight"])
        x = x + W["embeddings.position_embeddings.weight"][:T][None]
        x = F.layer_norm(x, (H,), W["embeddings.LayerNorm.weight"], W["embeddings.LayerNorm.bias"], eps)
        add_mask = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        for l in range(c["num_hidden_layers"]):
            L = "encoder.layer.%d." % l

            def lin(v, n):
                return F.linear(v, W[L + n + ".weight"], W[L + n + ".bias"])

            def heads(v):
                return v.view(B, T, nh, hd).permute(0, 2, 1, 3)

            q, k, v = (heads(lin(x, "attention.self." + n)) for n in ("query", "key", "value"))
            s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(hd) + add_mask
            ctx = torch.matmul(torch.softmax(s, dim=-1), v).permute(0, 2, 1, 3).reshape(B, T, H)
            x = F.layer_norm(lin(ctx, "attention.output.dense") + x, (H,), W[L + "attention.output.LayerNorm.weight"],
                             W[L + "attention.output.LayerNorm.bias"], eps)
            h = F.gelu(lin(x, "intermediate.dense"))
            x = F.layer_norm(lin(h, "output.dense") + x, (H,), W[L + "output.LayerNorm.weight"],
                             W[L + "output.LayerNorm.bias"], eps)
        if pooling == "cls":
            return x[:, 0]
        m = mask.to(x.dtype)[..., None]
        return (x * m).sum(1) / m.sum(1)


def batch_ids(all_ids, T, B):
    ids = torch.from_numpy(all_ids[:B, :T].astype(np.int64).copy())
    ids[:, 0], ids[:, T - 1] = 101, 102  # [CLS] ... [SEP]
    return ids, torch.ones(B, T, dtype=torch.long)


def bench(d, out):
    torch.set_num_threads(int(os.environ.get("TORCH_THREADS", "1")))
    W, _ = bert_ref.load_safetensors(os.path.join(d, "model.safetensors"))
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    all_ids = np.fromfile(os.path.join(d, "ids.bin"), dtype="<i4").reshape(MAX_B, MAX_T)
    model = Bert(W, cfg).eval()
    min_time = float(os.environ.get("BENCH_MIN_TIME", "2.0"))
    lines = []
    with torch.inference_mode():
        ids, mask = batch_ids(all_ids, 32, 4)
        mine = model(ids, mask)
        ref_h, _ = bert_ref.bert_forward(W, cfg, ids, mask)
        diff = (mine - bert_ref.mean_pool(ref_h, mask)).abs().max().item()
        print("  torch forward vs bert_ref.py: max |diff| %.3g" % diff, file=sys.stderr)
        c_path = os.path.join(d, "c_mean.txt")
        if os.path.exists(c_path):
            c = np.loadtxt(c_path, skiprows=1, dtype=np.float32).reshape(4, -1)
            print("  C encoder vs torch (mean pooling, 4 x 32 tokens): max |diff| %.3g"
                  % np.abs(c - mine.numpy()).max(), file=sys.stderr)
        for T, B in POINTS:
            ids, mask = batch_ids(all_ids, T, B)
            model(ids, mask)  # warm-up
            n, t0 = 0, time.perf_counter()
            while True:
                model(ids, mask)
                n += 1
                el = time.perf_counter() - t0
                if el >= min_time and n >= 3:
                    break
            lines.append("%d %d %.1f %.2f" % (T, B, n * B * T / el, n * B / el))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\nrss_kb %d\n" % rss)


def titles(d, tsv, vocab_path):
    vocab = bert_ref.load_vocab(vocab_path)
    ids = np.zeros((MAX_B, MAX_T), dtype="<i4")
    lens = np.zeros(MAX_B, dtype="<i4")
    with open(tsv, encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i == MAX_B:
                break
            t = bert_ref.tokenize(line.rstrip("\n").split("\t", 1)[-1], vocab, MAX_T)[2]
            ids[i, : len(t)] = t
            lens[i] = len(t)
    if lens.min() < 1:
        sys.exit("titles: fewer than %d texts in %s" % (MAX_B, tsv))
    ids.tofile(os.path.join(d, "title_ids.bin"))
    lens.tofile(os.path.join(d, "title_lens.bin"))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "gen":
        gen(sys.argv[2])
    elif len(sys.argv) == 5 and sys.argv[1] == "titles":
        titles(sys.argv[2], sys.argv[3], sys.argv[4])
    elif len(sys.argv) == 4 and sys.argv[1] == "bench":
        bench(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
