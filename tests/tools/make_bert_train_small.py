#!/usr/bin/python3
"""Regenerate tests/data/bert-train-small/: a small random BERT (made here, hidden 16, 2 layers, 2 heads) and
the reference data for a C backward pass and one training step of an XR-Transformer-style XMC head on it.
A copy of shared/tools/make_bert_train_refs.py adapted to a model small enough to commit: the model is drawn
from a fixed seed instead of read from bert-random-l2, the four token sequences are fixed here, the forward
sanity check compares with bert_ref.bert_forward_nn (torch.nn layers) instead of per-case refs, and the
finite-difference entries fit the smaller shapes. Everything else (loss, active sets, steps, files) is as there.

Usage (from the repository root):  /usr/bin/python3 tests/tools/make_bert_train_small.py [OUT_DIR]
Default OUT_DIR (relative to this script): ../data/bert-train-small.
Needs /usr/bin/python3 with python3-numpy and python3-torch (no `transformers`). Deterministic: one CPU
thread, fixed seeds, fixed formats; a second run gives byte-identical files (checked by the author with md5sum).

What is computed (all with dropout off, GELU erf form, LayerNorm eps from config.json; see the README):
  batch of 4 texts (token ids reused from bert-random-l2/refs.json), padded to the longest, attention mask;
  pooled = one of  cls: h[:,0] | pooler: tanh(h[:,0] Wp^T + bp) (PECOS BertForXMC) | mean: masked mean;
  scores = pooled W^T + b  (W: 64 x 128, b: 64; "head.weight", "head.bias");
  loss = PECOS HingeLoss(margin 1, power 2) over each row's active clusters padded to a common width A,
         mean over the width (padding included, each pad entry adds the constant 1), then mean over rows.
Reference values are computed in float64 from the float32 parameters and stored rounded to float32.
"""
import hashlib
import json
import math
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
import bert_ref as br  # noqa: E402

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

# the small model: vocab, shapes and the seed of its weights
SMALL_CFG = {"architectures": ["BertModel"], "model_type": "bert", "vocab_size": 64, "hidden_size": 16,
             "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 32, "hidden_act": "gelu",
             "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 16,
             "type_vocab_size": 2, "initializer_range": 0.25, "layer_norm_eps": 1e-12, "pad_token_id": 0,
             "position_embedding_type": "absolute"}
MODEL_SEED = 20261204
# four sequences: [CLS] = 2 ... [SEP] = 3, lengths 9, 14, 6 and 2 (an empty text)
CASE_IDS = [[2, 17, 44, 9, 33, 61, 5, 28, 3], [2, 50, 12, 12, 39, 7, 58, 21, 44, 30, 63, 8, 19, 3],
            [2, 26, 35, 47, 10, 3], [2, 3]]
CASE_NAMES = ["nine_tokens", "fourteen_tokens", "six_tokens", "empty"]
N_CLUSTERS = 64
HEAD_SEED = 20261127
HEAD_W_STD = 0.3                # PECOS random_init uses 0.02 and b = 0; larger here so that margins are crossed
HEAD_B_STD = 0.5
FANOUT = 8                      # toy tree: cluster c has parent c // 8 (8 parents x 8 children)
# positives per row (1-3), their label values for the weighted variant (counts, as Y*C gives at cluster levels)
POSITIVES = [[3, 17], [40], [5, 22, 61], [9, 10]]
POS_VALUES_WEIGHTED = [[2.0, 1.0], [3.0], [1.0, 2.0, 1.0], [1.0, 4.0]]
# "matcher-aware" parents per row (as if the previous level's beam had predicted them), tfn+man
MAN_PARENTS = [[2, 6], [5, 1], [2], [3, 4]]
PAD_ID = 0
LR, BETA1, BETA2, EPS, WD = 1e-4, 0.9, 0.999, 1e-8, 0.01
MAX_GRAD_NORM = 1.0
N_FD = 20
FD_H = 1e-6
FD_SEED = 20261128


def md5(path):
    with open(path, "rb") as f:
        return hashlib.md5(f.read()).hexdigest()


def f17(v):
    return float("%.17g" % float(v))


def write_int_txt(path, m):
    m = np.asarray(m)
    with open(path, "w", newline="\n") as f:
        f.write("%d %d\n" % m.shape)
        for r in m:
            f.write(" ".join("%d" % int(x) for x in r) + "\n")


def write_smat_txt(path, rows, ncols):
    """rows: list of list of (col, value). smat text (see shared/data/README.md), order kept."""
    with open(path, "w", newline="\n") as f:
        f.write("%d %d\n" % (len(rows), ncols))
        for r in rows:
            f.write(" ".join("%d:%s" % (c, br.f9(np.float32(v))) for c, v in r) + "\n")


def build_active():
    """Active set per row, PECOS order: positives first (Y order), then the other children of the tfn and
    man parents in ascending order. Returns (active lists, values lists for 0/1 and weighted)."""
    act, val01, valw = [], [], []
    for i, pos in enumerate(POSITIVES):
        parents = sorted(set([c // FANOUT for c in pos]) | set(MAN_PARENTS[i]))
        kids = [c for p in parents for c in range(p * FANOUT, (p + 1) * FANOUT)]
        neg = [c for c in kids if c not in pos]
        act.append(list(pos) + neg)
        val01.append([1.0] * len(pos) + [0.0] * len(neg))
        valw.append(list(POS_VALUES_WEIGHTED[i]) + [0.0] * len(neg))
    return act, val01, valw


def pecos_hinge_loss(scores, act_idx, act_val, act_mask, weighted):
    """PECOS network.HingeLoss(margin=1, power=2, cost_weighted=weighted) on the padded active matrix,
    then .mean(1).mean(). scores: [B, N] (all clusters). act_idx: [B, A] long (pad -> any valid index),
    act_val: [B, A] label values (0 for negatives and padding), act_mask: [B, A] 1 real / 0 padding.
    Padding entries have z = 0 (zero head row) and y = 0, i.e. contribute relu(1 - (-1)*0)^2 * 1 = 1."""
    z = torch.gather(scores, 1, act_idx) * act_mask            # pad -> z = 0 exactly, no gradient
    ybin = (act_val > 0).to(scores.dtype)
    ypm = 2.0 * ybin - 1.0
    l = torch.relu(1.0 - ypm * z) ** 2
    w = act_val + (1.0 - ybin) if weighted else ybin + (1.0 - ybin)
    return (l * w).mean(1).mean()


def pool(h, mask, Wt, kind, dtype):
    if kind == "cls":
        return h[:, 0]
    if kind == "pooler":
        return torch.tanh(h[:, 0] @ Wt["pooler.dense.weight"].to(dtype).T + Wt["pooler.dense.bias"].to(dtype))
    if kind == "mean":
        return br.mean_pool(h, mask)
    raise ValueError(kind)


def run(Wt, cfg, ids, mask, act, kind, weighted, dtype):
    """Forward + loss + backward. Wt: dict name -> leaf tensor (requires_grad) of `dtype`.
    Returns dict with loss, scores, pooled, hidden and their grads, and param grads (by name)."""
    for t in Wt.values():
        t.grad = None
    h, _ = br.bert_forward(Wt, cfg, ids, mask, dtype=dtype)
    h.retain_grad()
    pooled = pool(h, mask, Wt, kind, dtype)
    pooled.retain_grad()
    scores = pooled @ Wt["head.weight"].T + Wt["head.bias"]
    scores.retain_grad()
    idx, val01, valw, amask = act
    loss = pecos_hinge_loss(scores, idx, (valw if weighted else val01).to(dtype), amask.to(dtype), weighted)
    loss.backward()
    return {
        "loss": loss.detach(), "scores": scores.detach(), "d_scores": scores.grad.detach(),
        "pooled": pooled.detach(), "d_pooled": pooled.grad.detach(), "hidden": h.detach(),
        "d_hidden": h.grad.detach(), "grads": {n: (t.grad.detach().clone() if t.grad is not None else torch.zeros_like(t.detach()))
                  for n, t in Wt.items()},
    }


def loss_only(Wt, cfg, ids, mask, act, kind, weighted):
    with torch.no_grad():
        h, _ = br.bert_forward(Wt, cfg, ids, mask, dtype=torch.float64)
        pooled = pool(h, mask, Wt, kind, torch.float64)
        scores = pooled @ Wt["head.weight"].T + Wt["head.bias"]
        idx, val01, valw, amask = act
        return float(pecos_hinge_loss(scores, idx, (valw if weighted else val01).double(),
                                      amask.double(), weighted))


def numpy_loss(scores, act_lists, val_lists, width, weighted):
    """Independent float64 numpy evaluation of the same loss from the score matrix."""
    tot = 0.0
    for i, (a, v) in enumerate(zip(act_lists, val_lists)):
        s = 0.0
        for c, y in zip(a, v):
            yp = 1.0 if y > 0 else -1.0
            w = y if (weighted and y > 0) else 1.0
            s += w * max(0.0, 1.0 - yp * scores[i, c]) ** 2
        s += (width - len(a)) * 1.0
        tot += s / width
    return tot / len(act_lists)


def torch_adamw_step(params, grads, wd):
    """One torch.optim.AdamW step (torch 1.13 _single_tensor_adamw, foreach=False) on float32 copies."""
    ps = {n: torch.nn.Parameter(p.detach().clone()) for n, p in params.items()}
    for n, p in ps.items():
        p.grad = grads[n].detach().clone().float()
    opt = torch.optim.AdamW(list(ps.values()), lr=LR, betas=(BETA1, BETA2), eps=EPS, weight_decay=wd,
                            foreach=False)
    opt.step()
    return {n: p.detach() for n, p in ps.items()}


def manual_adamw_f32(p, g, wd):
    """The same step written out (float32 tensor ops in torch's order), to pin the formula down."""
    p = p.clone()
    p.mul_(1 - LR * wd)
    m = torch.zeros_like(p).mul_(BETA1).add_(g, alpha=1 - BETA1)
    v = torch.zeros_like(p).mul_(BETA2).addcmul_(g, g, value=1 - BETA2)
    bc1 = 1 - BETA1 ** 1
    bc2 = 1 - BETA2 ** 1
    denom = (v.sqrt() / math.sqrt(bc2)).add_(EPS)
    p.addcdiv_(m, denom, value=-(LR / bc1))
    return p


def hf_adamw_f32(p, g, wd):
    """transformers.AdamW (4.x, correct_bias=True), step 1, float32, in its order: eps added to sqrt(v)
    before bias correction; weight decay applied after the update. Also = torch.optim.SparseAdam on the
    rows present at step 1 when wd = 0."""
    p = p.clone()
    m = torch.zeros_like(p).mul_(BETA1).add_(g, alpha=1.0 - BETA1)
    v = torch.zeros_like(p).mul_(BETA2).addcmul_(g, g, value=1.0 - BETA2)
    denom = v.sqrt().add_(EPS)
    step_size = LR * math.sqrt(1.0 - BETA2 ** 1) / (1.0 - BETA1 ** 1)
    p.addcdiv_(m, denom, value=-step_size)
    if wd > 0.0:
        p.add_(p, alpha=(-LR * wd))
    return p


def clip_(grads, names, max_norm):
    """torch.nn.utils.clip_grad_norm_ (torch 1.13): total 2-norm over the tensors, coef = max/(norm+1e-6),
    applied only if coef < 1. Returns (total_norm, coef_applied)."""
    total = torch.norm(torch.stack([torch.norm(grads[n].float(), 2.0) for n in names]), 2.0)
    coef = max_norm / (total + 1e-6)
    applied = float(torch.clamp(coef, max=1.0))
    if coef < 1:
        for n in names:
            grads[n] = grads[n].float().mul(coef)
    return float(total), applied


def make_model(out_dir):
    """Writes out_dir/config.json and model.safetensors (HF BertModel names, file order as bert-random-l2):
    weights N(0, 0.25^2), biases N(0, 0.1^2), LayerNorm weights 1 + N(0, 0.1^2), from MODEL_SEED."""
    c = SMALL_CFG
    H, F, V, P = c["hidden_size"], c["intermediate_size"], c["vocab_size"], c["max_position_embeddings"]
    rs = np.random.RandomState(MODEL_SEED)
    std = c["initializer_range"]

    def w(*shape, s=std):
        return (s * rs.standard_normal(shape)).astype(np.float32)

    def lnw(n):
        return (1.0 + 0.1 * rs.standard_normal(n)).astype(np.float32)

    t = [("embeddings.word_embeddings.weight", w(V, H, s=0.5)),
         ("embeddings.position_embeddings.weight", w(P, H, s=0.5)),
         ("embeddings.token_type_embeddings.weight", w(c["type_vocab_size"], H, s=0.5)),
         ("embeddings.LayerNorm.weight", lnw(H)), ("embeddings.LayerNorm.bias", w(H, s=0.1))]
    for l in range(c["num_hidden_layers"]):
        L = "encoder.layer.%d." % l
        for n in ("query", "key", "value"):
            t += [(L + "attention.self.%s.weight" % n, w(H, H)), (L + "attention.self.%s.bias" % n, w(H, s=0.1))]
        t += [(L + "attention.output.dense.weight", w(H, H)), (L + "attention.output.dense.bias", w(H, s=0.1)),
              (L + "attention.output.LayerNorm.weight", lnw(H)), (L + "attention.output.LayerNorm.bias", w(H, s=0.1)),
              (L + "intermediate.dense.weight", w(F, H)), (L + "intermediate.dense.bias", w(F, s=0.1)),
              (L + "output.dense.weight", w(H, F)), (L + "output.dense.bias", w(H, s=0.1)),
              (L + "output.LayerNorm.weight", lnw(H)), (L + "output.LayerNorm.bias", w(H, s=0.1))]
    t += [("pooler.dense.weight", w(H, H)), ("pooler.dense.bias", w(H, s=0.1))]
    with open(os.path.join(out_dir, "config.json"), "w", newline="\n") as f:
        json.dump(c, f, indent=2)
        f.write("\n")
    br.save_safetensors(os.path.join(out_dir, "model.safetensors"), t,
                        {"seed": MODEL_SEED, "init": "see make_bert_train_small.py make_model"})


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "data", "bert-train-small")
    model_dir = out_dir
    os.makedirs(out_dir, exist_ok=True)
    make_model(out_dir)
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    W0, _ = br.load_safetensors(os.path.join(model_dir, "model.safetensors"))
    model_names = list(W0.keys())   # file order
    H = cfg["hidden_size"]

    # ---- inputs
    cases = [{"index": i, "name": nm, "n_tokens": len(ci), "ids": ci}
             for i, (nm, ci) in enumerate(zip(CASE_NAMES, CASE_IDS))]
    lens = [c["n_tokens"] for c in cases]
    T = max(lens)
    B = len(cases)
    ids = np.full((B, T), PAD_ID, dtype=np.int64)
    mask = np.zeros((B, T), dtype=np.int64)
    for b, c in enumerate(cases):
        ids[b, : len(c["ids"])] = c["ids"]
        mask[b, : len(c["ids"])] = 1
    ids_t, mask_t = torch.from_numpy(ids), torch.from_numpy(mask)

    rs = np.random.RandomState(HEAD_SEED)
    head_w = (HEAD_W_STD * rs.standard_normal((N_CLUSTERS, H))).astype(np.float32)
    head_b = (HEAD_B_STD * rs.standard_normal(N_CLUSTERS)).astype(np.float32)
    W0["head.weight"], W0["head.bias"] = head_w, head_b
    all_names = model_names + ["head.weight", "head.bias"]

    act_lists, val01_lists, valw_lists = build_active()
    width = max(len(a) for a in act_lists)
    idx = np.zeros((B, width), dtype=np.int64)       # padding -> index 0 with mask 0 (z forced to 0)
    v01 = np.zeros((B, width), dtype=np.float64)
    vw = np.zeros((B, width), dtype=np.float64)
    am = np.zeros((B, width), dtype=np.float64)
    targets = np.zeros((B, N_CLUSTERS), dtype=np.int64)
    for i, a in enumerate(act_lists):
        idx[i, : len(a)] = a
        v01[i, : len(a)] = val01_lists[i]
        vw[i, : len(a)] = valw_lists[i]
        am[i, : len(a)] = 1.0
        targets[i, POSITIVES[i]] = 1
    act = (torch.from_numpy(idx), torch.from_numpy(v01), torch.from_numpy(vw), torch.from_numpy(am))

    def leaves(dtype):
        return {n: torch.tensor(W0[n], dtype=dtype, requires_grad=True) for n in all_names}

    variants = [("cls", "cls", False), ("pooler", "pooler", False), ("mean", "mean", False),
                ("pooler_weighted", "pooler", True)]
    uniq = sorted(set(int(x) for x in ids.reshape(-1)))
    uniq_t = torch.tensor(uniq, dtype=torch.long)
    WE = "embeddings.word_embeddings.weight"

    cross = {"variants": {}}
    losses = {}
    results = {}
    for vname, kind, weighted in variants:
        r64 = run(leaves(torch.float64), cfg, ids_t, mask_t, act, kind, weighted, torch.float64)
        r32 = run(leaves(torch.float32), cfg, ids_t, mask_t, act, kind, weighted, torch.float32)
        results[vname] = r64
        sc = r64["scores"].numpy()
        npl = numpy_loss(sc, act_lists, valw_lists if weighted else val01_lists, width, weighted)
        n_pad = sum(width - len(a) for a in act_lists)
        pad_const = n_pad / float(B * width)
        # margin statistics over the real active entries
        z = np.array([sc[i, c] for i, a in enumerate(act_lists) for c in a])
        y = np.array([1.0 if v > 0 else -1.0 for vl in val01_lists for v in vl])
        n_zero = int(np.sum(y * z >= 1.0))
        losses[vname] = {
            "pooling": kind, "weighted": weighted,
            "loss_float64": f17(r64["loss"]), "loss_float32": br.f9(np.float32(r32["loss"])),
            "loss_float64_as_float32": br.f9(np.float32(float(r64["loss"]))),
            "padding_constant": f17(pad_const),
            "loss_without_padding_constant_float64": f17(float(r64["loss"]) - pad_const),
            "active_entries": int(len(z)), "active_entries_with_zero_hinge": n_zero,
        }
        g64, g32 = r64["grads"], r32["grads"]
        worst_abs, worst_rel, worst_name = 0.0, 0.0, ""
        per_tensor = {}
        for n in all_names:
            d = (g32[n].double() - g64[n]).abs().max().item()
            scale = g64[n].abs().max().item()
            per_tensor[n] = {"max_abs_grad": f17(scale), "max_abs_diff_f32_vs_f64": f17(d)}
            if d > worst_abs:
                worst_abs = d
            if scale > 0 and d / scale > worst_rel and ".key.bias" not in n:
                worst_rel, worst_name = d / scale, n
        cross["variants"][vname] = {
            "loss_abs_diff_f32_vs_f64": f17(abs(float(r32["loss"]) - float(r64["loss"]))),
            "loss_abs_diff_numpy_vs_torch_f64": f17(abs(npl - float(r64["loss"]))),
            "grad_max_abs_diff_f32_vs_f64": f17(worst_abs),
            "grad_max_rel_diff_f32_vs_f64 (diff / max|g| of the tensor; key.bias excluded)": f17(worst_rel),
            "grad_worst_rel_tensor": worst_name,
            "d_pooled_max_abs_diff_f32_vs_f64": f17((r32["d_pooled"].double() - r64["d_pooled"]).abs().max()),
            "d_hidden_max_abs_diff_f32_vs_f64": f17((r32["d_hidden"].double() - r64["d_hidden"]).abs().max()),
            "per_tensor": per_tensor,
        }
        assert abs(npl - float(r64["loss"])) < 1e-12, (npl, float(r64["loss"]))
        # key bias of every layer: softmax is shift invariant, so its gradient must be ~0
        kb = max(g64["encoder.layer.%d.attention.self.key.bias" % l].abs().max().item()
                 for l in range(cfg["num_hidden_layers"]))
        cross["variants"][vname]["key_bias_grad_max_abs_f64 (exactly 0 in exact arithmetic)"] = f17(kb)
        if vname == "cls":
            g32_cls = g32

    # ---- forward sanity: each case alone through the torch.nn formulation gives the padded batch's rows
    h = results["cls"]["hidden"]
    fwd = 0.0
    for b, c in enumerate(cases):
        xo, po = br.bert_forward_nn(W0, cfg, torch.tensor([c["ids"]], dtype=torch.long))
        n_tok = len(c["ids"])
        fwd = max(fwd, float(np.abs(h[b, :n_tok].numpy() - xo[0].double().numpy()).max()))
        fwd = max(fwd, float(np.abs(results["pooler"]["pooled"][b].numpy() - po[0].double().numpy()).max()))
    cross["forward_vs_torch_nn_layers_max_abs_diff"] = f17(fwd)
    assert fwd < 1e-4, fwd

    # ---- finite differences (float64, central, h = FD_H) on N_FD entries, cls variant + pooler entries
    rs_fd = np.random.RandomState(FD_SEED)
    used_pos = list(range(T))
    picks = []
    fd_names = ["head.weight", "head.bias", WE, "embeddings.position_embeddings.weight",
                "embeddings.token_type_embeddings.weight", "embeddings.LayerNorm.weight",
                "embeddings.LayerNorm.bias", "encoder.layer.0.attention.self.query.weight",
                "encoder.layer.0.attention.self.key.weight", "encoder.layer.0.attention.self.value.bias",
                "encoder.layer.0.attention.output.dense.weight", "encoder.layer.0.attention.output.LayerNorm.weight",
                "encoder.layer.0.intermediate.dense.weight", "encoder.layer.0.output.dense.bias",
                "encoder.layer.1.attention.self.query.bias", "encoder.layer.1.attention.self.value.weight",
                "encoder.layer.1.attention.output.LayerNorm.bias", "encoder.layer.1.intermediate.dense.bias",
                "encoder.layer.1.output.dense.weight", "encoder.layer.1.output.LayerNorm.weight"]
    assert len(fd_names) == N_FD
    for n in fd_names:
        shp = W0[n].shape
        if n == WE:
            pos = (int(uniq[1 + rs_fd.randint(len(uniq) - 1)]), int(rs_fd.randint(shp[1])))
        elif n == "embeddings.position_embeddings.weight":
            pos = (int(used_pos[rs_fd.randint(len(used_pos))]), int(rs_fd.randint(shp[1])))
        elif n == "embeddings.token_type_embeddings.weight":
            pos = (0, int(rs_fd.randint(shp[1])))
        elif n == "head.weight":
            pos = (int(act_lists[0][0]), int(rs_fd.randint(shp[1])))
        elif n == "head.bias":
            pos = (int(act_lists[2][1]),)
        else:
            pos = tuple(int(rs_fd.randint(s)) for s in shp)
        picks.append((n, pos))
    fd_sets = [("cls", "cls", False, picks),
               ("pooler", "pooler", False, [("pooler.dense.weight", (5, 7)), ("pooler.dense.bias", (10,)),
                                            ("encoder.layer.1.output.LayerNorm.bias", (3,)),
                                            ("encoder.layer.0.attention.self.key.bias", (13,))]),
               ("pooler_weighted", "pooler", True, [("head.weight", (int(act_lists[3][1]), 9)),
                                                    ("head.bias", (int(act_lists[0][0]),))])]
    base64 = {n: torch.tensor(W0[n], dtype=torch.float64) for n in all_names}
    fd_rows, fd_worst_abs, fd_worst_rel = [], 0.0, 0.0
    for vname, kind, weighted, pk in fd_sets:
        for n, pos in pk:
            orig = base64[n][pos].item()
            base64[n][pos] = orig + FD_H
            lp = loss_only(base64, cfg, ids_t, mask_t, act, kind, weighted)
            base64[n][pos] = orig - FD_H
            lm = loss_only(base64, cfg, ids_t, mask_t, act, kind, weighted)
            base64[n][pos] = orig
            fd = (lp - lm) / (2 * FD_H)
            ag = results[vname]["grads"][n][pos].item()
            d = abs(fd - ag)
            rel = d / max(abs(ag), 1e-12)
            fd_worst_abs = max(fd_worst_abs, d)
            if abs(ag) > 1e-6:
                fd_worst_rel = max(fd_worst_rel, rel)
            fd_rows.append({"variant": vname, "tensor": n, "index": list(pos), "autograd_f64": f17(ag),
                            "finite_diff_f64": f17(fd), "abs_diff": f17(d)})
    cross["finite_differences"] = {"h": FD_H, "scheme": "central (L(p+h) - L(p-h)) / 2h, float64",
                                   "max_abs_diff": f17(fd_worst_abs),
                                   "max_rel_diff (entries with |g| > 1e-6)": f17(fd_worst_rel),
                                   "entries": fd_rows}
    assert fd_worst_abs < 1e-7, fd_worst_abs

    # ---- one AdamW step (primary: cls variant, torch.optim.AdamW semantics, wd on every tensor)
    p32 = {n: torch.tensor(W0[n], dtype=torch.float32) for n in all_names}
    g_ref = {n: results["cls"]["grads"][n].float() for n in all_names}   # float64 grads rounded to float32
    after = torch_adamw_step(p32, g_ref, WD)
    man_diff = 0
    for n in all_names:
        man = manual_adamw_f32(p32[n], g_ref[n], WD)
        man_diff = max(man_diff, int((man != after[n]).sum()))
    after_f32g = torch_adamw_step(p32, {n: g32_cls[n] for n in all_names}, WD)
    d_after = max((after_f32g[n] - after[n]).abs().max().item() for n in all_names)
    d_after_big = max(((after_f32g[n] - after[n]).abs() * (g_ref[n].abs() >= 1e-6)).max().item()
                      for n in all_names)
    small = {}
    for n in all_names:
        k = int(((g_ref[n].abs() > 0) & (g_ref[n].abs() < 1e-6)).sum())
        if k:
            small[n] = k
    upd = max((after[n] - p32[n]).abs().max().item() for n in all_names)
    cross["adamw_cls"] = {
        "entries_where_manual_formula_differs_from_torch_AdamW": man_diff,
        "max_abs_param_diff_when_stepping_with_float32_autograd_grads": f17(d_after),
        "max_abs_update": f17(upd),
        "same, only entries with |g_ref| >= 1e-6": f17(d_after_big),
        "grad entries with 0 < |g_ref| < 1e-6, per tensor (AdamW step 1 moves them by up to lr whatever "
        "their sign noise: compare these with tolerance lr)": small,
    }
    assert man_diff == 0

    # ---- PECOS-style step (pooler variant): clip encoder and head separately to 1.0, HF AdamW, wd 0
    gp = {n: results["pooler"]["grads"][n].float() for n in all_names}
    enc_norm, enc_coef = clip_(gp, model_names, MAX_GRAD_NORM)
    head_norm, head_coef = clip_(gp, ["head.weight", "head.bias"], MAX_GRAD_NORM)
    pecos_after = {n: hf_adamw_f32(p32[n], gp[n], 0.0) for n in all_names}
    untouched = [r for r in range(W0[WE].shape[0]) if r not in set(uniq)]
    assert bool((pecos_after[WE][untouched] == p32[WE][untouched]).all())
    cross["pecos_step_pooler"] = {"encoder_grad_norm": f17(enc_norm), "encoder_clip_coef": f17(enc_coef),
                                  "head_grad_norm": f17(head_norm), "head_clip_coef": f17(head_coef)}
    for vname in results:
        g = results[vname]["grads"]
        losses[vname]["encoder_grad_norm_f64"] = f17(torch.norm(torch.stack([g[n].norm() for n in model_names])))
        losses[vname]["head_grad_norm_f64"] = f17(torch.norm(torch.stack([g[n].norm() for n in
                                                                         ["head.weight", "head.bias"]])))

    # ---- write files
    def od(name):
        return os.path.join(out_dir, name)

    write_int_txt(od("ids.txt"), ids)
    write_int_txt(od("mask.txt"), mask)
    write_int_txt(od("targets.txt"), targets)
    write_smat_txt(od("active.txt"), [list(zip(a, v)) for a, v in zip(act_lists, val01_lists)], N_CLUSTERS)
    write_smat_txt(od("active_weighted.txt"), [list(zip(a, v)) for a, v in zip(act_lists, valw_lists)],
                   N_CLUSTERS)
    br.save_safetensors(od("head_init.safetensors"), [("head.weight", head_w), ("head.bias", head_b)],
                        {"seed": HEAD_SEED, "init": "numpy RandomState(seed).standard_normal: weight [64,128] "
                         "* %g, then bias [64] * %g, cast to float32" % (HEAD_W_STD, HEAD_B_STD)})
    br.write_dense_txt(od("hidden.txt"), results["cls"]["hidden"].numpy().reshape(B * T, H))
    for vname in results:
        r = results[vname]
        br.write_dense_txt(od("pooled_%s.txt" % vname), r["pooled"].numpy())
        br.write_dense_txt(od("scores_%s.txt" % vname), r["scores"].numpy())
        br.write_dense_txt(od("d_scores_%s.txt" % vname), r["d_scores"].numpy())
        br.write_dense_txt(od("d_pooled_%s.txt" % vname), r["d_pooled"].numpy())
        br.write_dense_txt(od("d_hidden_%s.txt" % vname), r["d_hidden"].numpy().reshape(B * T, H))
        g = r["grads"]
        meta = {"variant": vname, "content": "d loss / d parameter, float64 autograd rounded to float32"}
        if vname == "cls":
            br.save_safetensors(od("grads_cls.safetensors"), [(n, g[n].numpy()) for n in all_names], meta)
        else:
            meta["word_embeddings"] = ("only rows %s of the gradient are stored, as %s.rows [%d,%d] in that "
                                       "order; every other row is exactly 0" % (uniq, WE, len(uniq), H))
            tens = []
            for n in all_names:
                if n == WE:
                    tens.append((WE + ".rows", g[n][uniq_t].numpy()))
                else:
                    tens.append((n, g[n].numpy()))
            br.save_safetensors(od("grads_%s.safetensors" % vname), tens, meta)
    br.save_safetensors(od("params_after_adamw_cls.safetensors"), [(n, after[n].numpy()) for n in all_names],
                        {"content": "parameters after one torch.optim.AdamW step on grads_cls (lr %g, betas "
                         "%g/%g, eps %g, weight_decay %g on every tensor, step 1, no clipping, no warmup)"
                         % (LR, BETA1, BETA2, EPS, WD)})
    tens = []
    for n in all_names:
        tens.append((WE + ".rows", pecos_after[n][uniq_t].numpy()) if n == WE else (n, pecos_after[n].numpy()))
    br.save_safetensors(od("params_after_pecos_step_pooler.safetensors"), tens,
                        {"content": "parameters after one PECOS-style step on the pooler variant: clip encoder "
                         "grads and head grads separately to norm %g, transformers.AdamW formula (eps on "
                         "uncorrected sqrt(v)), lr %g, weight decay 0; word embedding rows %s only (others "
                         "unchanged)" % (MAX_GRAD_NORM, LR, uniq)})

    inputs = {
        "cases": [{"index": c["index"], "name": c["name"], "n_tokens": c["n_tokens"]} for c in cases],
        "batch": B, "seq_len": T, "pad_id": PAD_ID, "ids": ids.tolist(), "mask": mask.tolist(),
        "token_type_ids": "all 0", "position_ids": "0..T-1 for every row",
        "n_clusters": N_CLUSTERS, "toy_tree": "cluster c has parent c // %d" % FANOUT,
        "positives": POSITIVES, "positive_values_weighted": POS_VALUES_WEIGHTED,
        "man_parents": MAN_PARENTS,
        "active": act_lists, "active_values": val01_lists, "active_values_weighted": valw_lists,
        "label_width": width, "unique_ids": uniq,
        "head_init": {"seed": HEAD_SEED, "weight_std": HEAD_W_STD, "bias_std": HEAD_B_STD},
        "adamw": {"lr": LR, "beta1": BETA1, "beta2": BETA2, "eps": EPS, "weight_decay": WD, "step": 1},
        "pecos_step": {"max_grad_norm": MAX_GRAD_NORM, "lr": LR, "weight_decay": 0.0, "eps": EPS},
    }
    with open(od("inputs.json"), "w", newline="\n") as f:
        json.dump(inputs, f, indent=1)
        f.write("\n")
    with open(od("loss.json"), "w", newline="\n") as f:
        json.dump(losses, f, indent=1)
        f.write("\n")
    cross["model_safetensors_md5"] = md5(os.path.join(model_dir, "model.safetensors"))
    cross["torch_version"] = torch.__version__.split("+")[0]
    with open(od("crosscheck.json"), "w", newline="\n") as f:
        json.dump(cross, f, indent=1)
        f.write("\n")

    # summary
    print("T =", T, "width =", width, "unique ids =", len(uniq))
    for vname in losses:
        c = cross["variants"][vname]
        print("%-16s loss %.10f  grad f32-vs-f64 abs %.3g rel %.3g (%s)  d_hidden %.3g" % (
            vname, losses[vname]["loss_float64"], c["grad_max_abs_diff_f32_vs_f64"],
            c["grad_max_rel_diff_f32_vs_f64 (diff / max|g| of the tensor; key.bias excluded)"], c["grad_worst_rel_tensor"],
            c["d_hidden_max_abs_diff_f32_vs_f64"]))
    print("forward vs refs", fwd, "FD max abs", fd_worst_abs, "FD max rel", fd_worst_rel)
    print("adamw", cross["adamw_cls"])
    print("pecos step", cross["pecos_step_pooler"])
    for name in sorted(os.listdir(out_dir)):
        print("%-45s %9d %s" % (name, os.path.getsize(od(name)), md5(od(name))))


if __name__ == "__main__":
    main()
