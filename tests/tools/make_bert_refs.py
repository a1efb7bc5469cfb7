#!/usr/bin/python3
"""Regenerate tests/data/bert-random-h16/: a random-init BERT with the real bert-base-uncased
vocab, and tokenizer + forward references for texts that exercise the BERT tokenizer.

Usage (from the repository root):  /usr/bin/python3 tests/tools/make_bert_refs.py
        or with explicit paths:    make_bert_refs.py [--hidden H --heads A --intermediate I --layers L] [VOCAB_TXT OUT_DIR]
Defaults: hidden 16, 2 heads, intermediate 64, 2 layers; VOCAB_TXT = ../data/bert-vocab/vocab.txt,
OUT_DIR = ../data/bert-random-h16 (relative to this script). `--hidden 128 --intermediate 512` with
OUT_DIR bert-random-l2 re-creates the 18 MB model of ../shared/data bit for bit (dense weight std
0.08 * sqrt(128 / H) keeps the activation scale of that model at any H).
Needs /usr/bin/python3 with python3-numpy and python3-torch. Deterministic: weights
come from numpy's legacy RandomState (a stream numpy keeps stable across versions), seed below;
model.safetensors is the authoritative copy (its md5 is printed and stored in refs.json).
"""
import argparse
import hashlib
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
import bert_ref as br  # noqa: E402

SEED = 20261124
MAX_LEN = 128
CONFIG = {
    "architectures": ["BertModel"],
    "model_type": "bert",
    "vocab_size": 30522,
    "hidden_size": 16,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-12,
    "pad_token_id": 0,
    "position_embedding_type": "absolute",
}

LONG_TEXT = (
    "Heavy duty stainless steel kitchen sink organizer rack with adjustable telescopic arms, "
    "removable drain tray, non-slip silicone feet and rust resistant coating. Fits most single "
    "and double bowl sinks from 24 to 35 inches wide; holds dishes, cutting boards, sponges, "
    "brushes, soap dispensers and drying towels. Easy to assemble without tools in under five "
    "minutes, dishwasher safe parts, backed by a two year manufacturer warranty. Package includes "
    "one rack, one drain tray, four replacement feet, two hooks and an illustrated instruction "
    "manual in English, Spanish, French and German. Dimensions: 24.5 x 11.8 x 3.2 in; weight 4.4 "
    "lbs. Colour: brushed nickel / matte black. Model number KS-2024-XL, compatible with the KS "
    "accessory line (sold separately)."
)

# (short name, text). Keep the order stable: the index is the case id in every output file.
TEXTS = [
    ("product_title_iphone", "Apple iPhone 11 Pro Max Case \u2013 Shockproof, 6.5\""),
    ("product_title_galaxy", "Samsung Galaxy S10+ Screen Protector (2-Pack) Tempered Glass"),
    ("product_title_shoes", "Nike Air Max 270 React ENG \u2013 Men's Running Shoes, Size 10.5 US"),
    ("accents_lower", "Caf\u00e9 cr\u00e8me br\u00fbl\u00e9e, na\u00efve r\u00e9sum\u00e9 fa\u00e7ade \u00c5ngstr\u00f6m"),
    ("accents_upper_eszett", "\u00c9COLE Stra\u00dfe \u00c0\u00c9\u00ce\u00d5\u00dc \u0130stanbul"),
    ("combining_marks", "cafe\u0301 nai\u0308ve"),
    ("cjk_chinese", "Xiaomi \u5c0f\u7c73 Redmi Note 9 \u624b\u673a\u58f3 \u4fdd\u62a4\u5957"),
    ("japanese_kana", "iPhone \u30b1\u30fc\u30b9 \u624b\u5e33\u578b \u304b\u308f\u3044\u3044"),
    ("korean_hangul", "\uc0bc\uc131 \uac24\ub7ed\uc2dc \ucf00\uc774\uc2a4"),
    ("greek_cyrillic", "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac \u0420\u0443\u0441\u0441\u043a\u0438\u0439 \u0442\u0435\u043a\u0441\u0442"),
    ("control_whitespace", "USB-C\tcable\n2m\r\nfast\u00a0charging\u200b\u0000 soft\u00adhyphen\u007f\ufffd end\u3000wide\u2003space"),
    ("numbers", "1234567890 3.14159 1,000,000 $19.99 50% off 2nd 4K 1080p 0.5mm"),
    ("long_word_101", "ok " + "a" * 101 + " ok"),
    ("word_exactly_100", "x" + "ab" * 49 + "y" + " done"),
    ("unknown_subwords", "qwxzjv zzyzx flibbertigibbet unbelievably UNAFFORDABLE preprocessing tokenization"),
    ("emoji_symbols", "Great phone \U0001F600\U0001F44D!!! \u2122 \u00ae \u00a9 \u20ac5 \u2605\u2605\u2605\u2605\u2606"),
    ("punctuation", "Hello,world!!! (test) [brackets] {braces} <tags> @user #hashtag a/b\\c ~`^_| \u00bfqu\u00e9? \u00a1s\u00ed!"),
    ("quotes_dashes", "Don't stop \u2014 it's the kids' \u201cbest\u201d toy's \u2018edition\u2019 \u2026"),
    ("html_entities", "Men&#39;s T-Shirt &amp; Shorts <b>Sale</b>"),
    ("math_units", "x\u00b2 + y\u00b3 = z\u00bd \u00b15\u00b0 \u00b5m 10\u00d710"),
    ("fullwidth_ligature", "\uff21\uff22\uff23\uff11\uff12\uff13 \ufb01nance \ufb02ower"),
    ("camera_model", "Canon EOS R5 45MP 8K RAW f/2.8-4.0 24-105mm Lens Kit"),
    ("empty", ""),
    ("whitespace_only", "   \t\n  \u00a0 "),
    ("long_truncated", LONG_TEXT),
]
FULL_HIDDEN = ["product_title_iphone", "cjk_chinese", "long_truncated"]


def dense_std(cfg):
    # 0.08 at hidden 128 (the shared bert-random-l2); scaled so that x W^T keeps its size at any hidden
    return 0.08 * (128.0 / cfg["hidden_size"]) ** 0.5


def random_weights(cfg, seed):
    rs = np.random.RandomState(seed)
    H, I, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    ws = dense_std(cfg)

    def normal(shape, std, mean=0.0):
        return (mean + std * rs.standard_normal(size=shape)).astype(np.float32)

    t = []
    t.append(("embeddings.word_embeddings.weight", normal((V, H), 0.5)))
    t.append(("embeddings.position_embeddings.weight", normal((cfg["max_position_embeddings"], H), 0.5)))
    t.append(("embeddings.token_type_embeddings.weight", normal((cfg["type_vocab_size"], H), 0.5)))
    t.append(("embeddings.LayerNorm.weight", normal((H,), 0.1, 1.0)))
    t.append(("embeddings.LayerNorm.bias", normal((H,), 0.05)))
    for l in range(cfg["num_hidden_layers"]):
        L = "encoder.layer.%d." % l
        for n in ("query", "key", "value"):
            t.append((L + "attention.self.%s.weight" % n, normal((H, H), ws)))
            t.append((L + "attention.self.%s.bias" % n, normal((H,), 0.05)))
        t.append((L + "attention.output.dense.weight", normal((H, H), ws)))
        t.append((L + "attention.output.dense.bias", normal((H,), 0.05)))
        t.append((L + "attention.output.LayerNorm.weight", normal((H,), 0.1, 1.0)))
        t.append((L + "attention.output.LayerNorm.bias", normal((H,), 0.05)))
        t.append((L + "intermediate.dense.weight", normal((I, H), ws)))
        t.append((L + "intermediate.dense.bias", normal((I,), 0.05)))
        t.append((L + "output.dense.weight", normal((H, I), ws)))
        t.append((L + "output.dense.bias", normal((H,), 0.05)))
        t.append((L + "output.LayerNorm.weight", normal((H,), 0.1, 1.0)))
        t.append((L + "output.LayerNorm.bias", normal((H,), 0.05)))
    t.append(("pooler.dense.weight", normal((H, H), ws)))
    t.append(("pooler.dense.bias", normal((H,), 0.05)))
    return t


def main(vocab_path, out, sizes):
    torch.set_grad_enabled(False)
    os.makedirs(out, exist_ok=True)
    cfg = dict(CONFIG)
    cfg.update(sizes)
    vocab = br.load_vocab(vocab_path)
    assert len(vocab) == cfg["vocab_size"], len(vocab)
    # known answers published in the Hugging Face docs / course for bert-base-uncased
    assert br.tokenize("Hello, my dog is cute", vocab)[2] == [101, 7592, 1010, 2026, 3899, 2003, 10140, 102]
    assert br.tokenize("I've been waiting for a HuggingFace course my whole life.", vocab)[2] == [
        101, 1045, 1005, 2310, 2042, 3403, 2005, 1037, 17662, 12172, 2607, 2026, 2878, 2166, 1012, 102]
    with open(os.path.join(out, "config.json"), "w", newline="\n") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    tensors = random_weights(cfg, SEED)
    st_path = os.path.join(out, "model.safetensors")
    br.save_safetensors(st_path, tensors, metadata={
        "format": "pt", "generator": "make_bert_refs.py", "seed": SEED,
        "init": "numpy RandomState normal: embeddings std 0.5; dense weights std %.9g; biases std 0.05; " % dense_std(cfg) +
                "LayerNorm weight 1+N(0,0.1), bias N(0,0.05); drawn in file order"})
    W, _ = br.load_safetensors(st_path)
    for k, v in tensors:
        assert np.array_equal(W[k], v), k
    W = {k: torch.as_tensor(v) for k, v in W.items()}
    md5 = hashlib.md5(open(st_path, "rb").read()).hexdigest()

    cases = []
    d_nn = d_64 = d_pad = 0.0
    for name, text in TEXTS:
        basic, pieces, ids, trunc = br.tokenize(text, vocab, max_len=MAX_LEN)
        n_full = len(br.tokenize(text, vocab, max_len=10**9)[1])
        idt = torch.tensor([ids])
        h, pooled = br.bert_forward(W, cfg, idt)
        h2, p2 = br.bert_forward_nn(W, cfg, idt)
        h3, p3 = br.bert_forward(W, cfg, idt, dtype=torch.float64)
        d_nn = max(d_nn, (h - h2).abs().max().item(), (pooled - p2).abs().max().item())
        d_64 = max(d_64, (h.double() - h3).abs().max().item(), (pooled.double() - p3).abs().max().item())
        mean = br.mean_pool(h, torch.ones(1, len(ids)))[0]
        cases.append(dict(name=name, text=text, basic=basic, pieces=pieces, ids=ids, truncated=trunc,
                          n_full=n_full, h=h[0].numpy(), cls=h[0, 0].numpy(), pooled=pooled[0].numpy(),
                          mean=mean.numpy()))
    # one padded batch (pad to MAX_LEN, attention mask) must give the same values on real tokens
    B = len(cases)
    pad = torch.zeros(B, MAX_LEN, dtype=torch.long)
    mask = torch.zeros(B, MAX_LEN, dtype=torch.long)
    for i, c in enumerate(cases):
        pad[i, : len(c["ids"])] = torch.tensor(c["ids"])
        mask[i, : len(c["ids"])] = 1
    hb, pb = br.bert_forward(W, cfg, pad, mask)
    mb = br.mean_pool(hb, mask)
    for i, c in enumerate(cases):
        n = len(c["ids"])
        d_pad = max(d_pad, float(np.abs(hb[i, :n].numpy() - c["h"]).max()),
                    float(np.abs(pb[i].numpy() - c["pooled"]).max()), float(np.abs(mb[i].numpy() - c["mean"]).max()))

    with open(os.path.join(out, "refs.json"), "w", newline="\n") as f:
        f.write('{"model": "random-init BERT, see config.json; weights model.safetensors md5 %s, seed %d",\n' % (md5, SEED))
        f.write(' "tokenizer": "BERT BasicTokenizer+WordpieceTokenizer, do_lower_case=true, strip accents (NFD, drop Mn), '
                'HF control-char rule (all C* categories except \\\\t\\\\n\\\\r), max_input_chars_per_word 100, '
                'max_len %d = [CLS] + 126 pieces + [SEP], token_type_ids 0, position ids 0..n-1",\n' % MAX_LEN)
        f.write(' "pooling": {"cls": "last_hidden_state[0]", "mean_pooled": "mean of last_hidden_state over all tokens with attention mask 1 ([CLS] and [SEP] included)", '
                '"pooler_output": "tanh(pooler.dense.weight @ cls + pooler.dense.bias)"},\n')
        f.write(' "crosscheck": {"max_abs_diff_vs_torch_nn_TransformerEncoderLayer": %s, "max_abs_diff_vs_float64_forward": %s, '
                '"max_abs_diff_padded_batch_T%d_vs_unpadded": %s},\n' % (br.f9(d_nn), br.f9(d_64), MAX_LEN, br.f9(d_pad)))
        f.write(' "cases": [\n')
        for i, c in enumerate(cases):
            f.write('  {"index": %d, "name": %s, "text": %s,\n' % (i, json.dumps(c["name"]), json.dumps(c["text"])))
            f.write('   "basic_tokens": %s,\n' % json.dumps(c["basic"]))
            f.write('   "tokens": %s,\n' % json.dumps(c["pieces"]))
            f.write('   "ids": %s,\n' % json.dumps(c["ids"]))
            f.write('   "n_tokens": %d, "n_tokens_untruncated": %d, "truncated": %s,\n'
                    % (len(c["ids"]), c["n_full"], "true" if c["truncated"] else "false"))
            f.write('   "cls": %s,\n' % br.vec_json(c["cls"]))
            f.write('   "mean_pooled": %s,\n' % br.vec_json(c["mean"]))
            f.write('   "pooler_output": %s' % br.vec_json(c["pooled"]))
            if c["name"] in FULL_HIDDEN:
                f.write(',\n   "last_hidden_state": %s' % br.mat_json(c["h"]))
            f.write("}%s\n" % ("," if i + 1 < len(cases) else ""))
        f.write(" ]}\n")
    json.load(open(os.path.join(out, "refs.json")))

    br.write_dense_txt(os.path.join(out, "cls.txt"), np.stack([c["cls"] for c in cases]))
    br.write_dense_txt(os.path.join(out, "mean.txt"), np.stack([c["mean"] for c in cases]))
    br.write_dense_txt(os.path.join(out, "pooler.txt"), np.stack([c["pooled"] for c in cases]))
    for i, c in enumerate(cases):
        if c["name"] in FULL_HIDDEN:
            br.write_dense_txt(os.path.join(out, "hidden_%02d_%s.txt" % (i, c["name"])), c["h"])
    with open(os.path.join(out, "tokens.tsv"), "w", newline="\n") as f:
        for i, c in enumerate(cases):
            f.write("%d\t%s\t%s\t%s\n" % (i, c["name"], " ".join(map(str, c["ids"])), " ".join(c["pieces"])))
    with open(os.path.join(out, "texts.inc"), "w", newline="\n") as f:
        f.write("/* generated by make_bert_refs.py: case texts as C string literals (UTF-8), index = case id */\n")
        for i, c in enumerate(cases):
            f.write("%s, /* %d %s */\n" % (br.c_string_literal(c["text"]), i, c["name"]))
    print("cases:", len(cases), " safetensors md5:", md5, " size:", os.path.getsize(st_path))
    print("cross-check max|diff|: vs nn.TransformerEncoderLayer %.3g ; vs float64 %.3g ; padded batch %.3g" % (d_nn, d_64, d_pad))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(usage=__doc__)
    ap.add_argument("--hidden", type=int, default=CONFIG["hidden_size"])
    ap.add_argument("--heads", type=int, default=CONFIG["num_attention_heads"])
    ap.add_argument("--intermediate", type=int, default=CONFIG["intermediate_size"])
    ap.add_argument("--layers", type=int, default=CONFIG["num_hidden_layers"])
    ap.add_argument("paths", nargs="*")
    a = ap.parse_args()
    if len(a.paths) not in (0, 2) or a.hidden % a.heads:
        raise SystemExit(__doc__)
    vocab, out = a.paths or (os.path.join(HERE, "..", "data", "bert-vocab", "vocab.txt"),
                             os.path.join(HERE, "..", "data", "bert-random-h16"))
    main(vocab, out, {"hidden_size": a.hidden, "num_attention_heads": a.heads, "intermediate_size": a.intermediate,
                      "num_hidden_layers": a.layers})
