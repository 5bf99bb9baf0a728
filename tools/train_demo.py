#!/usr/bin/python3
"""train_demo.py — seeded CPU training of qeil's demo model (docs/demo-model.md).

A llama-architecture transformer (RMSNorm, RoPE with llama.cpp's "normal"
adjacent-pair rotation on the weights as stored, SwiGLU, tied embeddings)
over a character-level SentencePiece-style vocabulary, trained on the text
tools/gen_tasks.py writes. Runs on --threads threads (default 1: torch.set_num_threads(1)).

    /usr/bin/python3 tools/train_demo.py --data /tmp/demo/train.jsonl --out /tmp/demo

writes to --out:
    weights.f32    every tensor, raw little-endian float32, in manifest order
    manifest.txt   "name ne0 ne1" per tensor (ne1 = 0 for 1-D), GGUF order
                   and shapes (ne0 = elements per row), after a header of
                   "key value" hyperparameter lines and a "tensors" line
    vocab.txt      one token per line: "<type> <score> <hex of the UTF-8 text>"
    check.txt      prompts with their token ids and the greedy continuation of
                   the model with Q8_0-rounded weights (for tools/check_demo)
Subcommands --eval-only reload weights.pt to redo the dumps.
"""
import argparse
import json
import math
import os
import random
import struct
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


# ---------------------------------------------------------------------------
# Vocabulary: <unk> <s> </s>, the 256 byte tokens <0xNN>, then "▁" (U+2581,
# SentencePiece's space) and the 94 printable ASCII characters '!'..'~'.
# With no multi-character piece the SPM encoder can never merge, so a text
# (no dummy prefix: tokenizer.ggml.add_space_prefix = false) encodes as: BOS,
# then per character ' ' -> "▁", printable ASCII -> its piece, anything
# else -> its UTF-8 bytes as <0xNN> (newline -> <0x0A>).
# ---------------------------------------------------------------------------
TT_NORMAL, TT_UNKNOWN, TT_CONTROL, TT_BYTE = 1, 2, 3, 6
SPACE = "\u2581"


def build_vocab():
    toks = [("<unk>", TT_UNKNOWN), ("<s>", TT_CONTROL), ("</s>", TT_CONTROL)]
    toks += [("<0x%02X>" % b, TT_BYTE) for b in range(256)]
    toks += [(SPACE, TT_NORMAL)]
    toks += [(chr(c), TT_NORMAL) for c in range(33, 127)]
    return toks


VOCAB = build_vocab()
UNK, BOS, EOS = 0, 1, 2
PIECE = {t: i for i, (t, ty) in enumerate(VOCAB) if ty == TT_NORMAL}


def encode(text, bos=True):
    ids = [BOS] if bos else []
    for ch in text:
        if ch == " ":
            ids.append(PIECE[SPACE])
        elif ch in PIECE:
            ids.append(PIECE[ch])
        else:
            ids.extend(3 + b for b in ch.encode("utf-8"))
    return ids


def decode(ids):
    out = bytearray()
    for i in ids:
        t, ty = VOCAB[i]
        if ty == TT_BYTE:
            out.append(int(t[3:5], 16))
        elif ty == TT_NORMAL:
            out += t.replace(SPACE, " ").encode("utf-8")
    return out.decode("utf-8", "replace")


# ---------------------------------------------------------------------------
# Model: the engine's llama forward pass (docs/engine.md), in PyTorch.
# ---------------------------------------------------------------------------
class Cfg:
    def __init__(self, **kw):
        self.n_layers = 4
        self.d = 128
        self.heads = 4
        self.ff = 384
        self.ctx = 256
        self.rope_base = 10000.0
        self.eps = 1e-5
        self.vocab = len(VOCAB)
        self.__dict__.update(kw)


def rms(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope_tables(cfg, T):
    hd = cfg.d // cfg.heads
    i = torch.arange(hd // 2, dtype=torch.float64)
    omega = cfg.rope_base ** (-2.0 * i / hd)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * omega[None, :]
    return torch.cos(ang).float(), torch.sin(ang).float()


def rope(x, cos, sin):
    # x: [B, H, T, hd]; llama "normal" pairing (x[2i], x[2i+1]) -> (a c - b s, a s + b c)
    a, b = x[..., 0::2], x[..., 1::2]
    ra = a * cos - b * sin
    rb = a * sin + b * cos
    return torch.stack((ra, rb), dim=-1).flatten(-2)


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, ff = cfg.d, cfg.ff
        self.attn_norm = nn.Parameter(torch.ones(d))
        self.wq = nn.Linear(d, d, bias=False)
        self.wk = nn.Linear(d, d, bias=False)
        self.wv = nn.Linear(d, d, bias=False)
        self.wo = nn.Linear(d, d, bias=False)
        self.ffn_norm = nn.Parameter(torch.ones(d))
        self.gate = nn.Linear(d, ff, bias=False)
        self.up = nn.Linear(d, ff, bias=False)
        self.down = nn.Linear(ff, d, bias=False)
        self.cfg = cfg

    def forward(self, x, cos, sin, mask):
        B, T, d = x.shape
        H = self.cfg.heads
        hd = d // H
        h = rms(x, self.attn_norm, self.cfg.eps)
        q = self.wq(h).view(B, T, H, hd).transpose(1, 2)
        k = self.wk(h).view(B, T, H, hd).transpose(1, 2)
        v = self.wv(h).view(B, T, H, hd).transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(hd) + mask
        a = torch.softmax(att, dim=-1) @ v
        x = x + self.wo(a.transpose(1, 2).reshape(B, T, d))
        h = rms(x, self.ffn_norm, self.cfg.eps)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class Model(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.embd = nn.Embedding(cfg.vocab, cfg.d)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.out_norm = nn.Parameter(torch.ones(cfg.d))
        cos, sin = rope_tables(cfg, cfg.ctx)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        for n, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02
                if n.endswith("wo.weight") or n.endswith("down.weight"):
                    std = 0.02 / math.sqrt(2 * cfg.n_layers)
                nn.init.normal_(p, 0.0, std)

    def forward(self, ids):
        B, T = ids.shape
        x = self.embd(ids)
        mask = torch.full((T, T), float("-inf")).triu(1)
        cos, sin = self.cos[:T], self.sin[:T]
        for b in self.blocks:
            x = b(x, cos, sin, mask)
        return rms(x, self.out_norm, self.cfg.eps) @ self.embd.weight.t()


def gguf_tensors(model):
    """(name, tensor) in GGUF naming; nn.Linear weight [out, in] is GGUF [ne0=in, ne1=out]."""
    out = [("token_embd.weight", model.embd.weight)]
    for l, b in enumerate(model.blocks):
        p = f"blk.{l}."
        out += [(p + "attn_norm.weight", b.attn_norm), (p + "attn_q.weight", b.wq.weight),
                (p + "attn_k.weight", b.wk.weight), (p + "attn_v.weight", b.wv.weight),
                (p + "attn_output.weight", b.wo.weight), (p + "ffn_norm.weight", b.ffn_norm),
                (p + "ffn_gate.weight", b.gate.weight), (p + "ffn_up.weight", b.up.weight),
                (p + "ffn_down.weight", b.down.weight)]
    out.append(("output_norm.weight", model.out_norm))
    return out


def q8_0_roundtrip(w):
    """ggml's Q8_0 round trip of a 2-D tensor (rows split in 32-element
    blocks, d = amax/127 stored as f16, q = round(x/d)); as quant.c does."""
    x = w.detach().reshape(-1, 32).double()
    amax = x.abs().max(dim=1, keepdim=True).values
    d = amax / 127.0
    idv = torch.where(d > 0, 1.0 / d, torch.zeros_like(d))
    q = torch.round((x * idv).float()).double()
    d16 = d.half().double()
    return (q * d16).float().reshape(w.shape)


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------
def load_samples(path):
    S = []
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            p = encode(r["prompt"])
            c = encode(r["completion"], bos=False) + [EOS]
            S.append((p, c))
    return S


def batch_of(samples, idx):
    T = max(len(samples[i][0]) + len(samples[i][1]) for i in idx)
    x = torch.zeros((len(idx), T - 1), dtype=torch.long)
    y = torch.full((len(idx), T - 1), -100, dtype=torch.long)
    for r, i in enumerate(idx):
        p, c = samples[i]
        s = p + c
        x[r, :len(s) - 1] = torch.tensor(s[:-1])
        # loss on the completion only (the question is given at test time)
        y[r, len(p) - 1:len(s) - 1] = torch.tensor(c)
    return x, y


@torch.no_grad()
def greedy(model, ids, n=80):
    ids = list(ids)
    out = []
    for _ in range(n):
        t = int(model(torch.tensor([ids]))[0, -1].argmax())
        if t == EOS:
            break
        out.append(t)
        ids.append(t)
    return out


@torch.no_grad()
def sample(model, ids, temp, gen, n=80):
    ids = list(ids)
    out = []
    for _ in range(n):
        logits = model(torch.tensor([ids]))[0, -1] / temp
        t = int(torch.multinomial(torch.softmax(logits, -1), 1, generator=gen))
        if t == EOS:
            break
        out.append(t)
        ids.append(t)
    return out


def answer_of(text):
    i = text.find("####")
    return text[i + 4:].strip().split("\n")[0].strip() if i >= 0 else None


def dump(model, cfg, out, check_prompts, tok_texts):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "vocab.txt"), "w") as f:
        for t, ty in VOCAB:
            f.write(f"{ty} 0 {t.encode('utf-8').hex()}\n")
    with open(os.path.join(out, "manifest.txt"), "w") as mf, \
            open(os.path.join(out, "weights.f32"), "wb") as wf:
        for k in ("n_layers", "d", "heads", "ff", "ctx", "vocab"):
            mf.write(f"{k} {getattr(cfg, k)}\n")
        mf.write(f"rope_base {cfg.rope_base}\neps {cfg.eps}\ntensors\n")
        for name, t in gguf_tensors(model):
            a = t.detach().float().contiguous()
            ne0 = a.shape[-1]
            ne1 = a.shape[0] if a.dim() == 2 else 0
            mf.write(f"{name} {ne0} {ne1}\n")
            wf.write(a.numpy().astype("<f4").tobytes())
    # token ids of training and held-out texts, for the tokenizer check
    with open(os.path.join(out, "tokcheck.jsonl"), "w") as f:
        for text in tok_texts:
            f.write(json.dumps({"text": text, "ids": encode(text)}) + "\n")
    # greedy continuations of the Q8_0-rounded model, for the engine check
    qm = Model(cfg)
    qm.load_state_dict(model.state_dict())
    with torch.no_grad():
        for n, p in qm.named_parameters():
            if p.dim() == 2:
                p.copy_(q8_0_roundtrip(p))
    qm.eval()
    with open(os.path.join(out, "check.txt"), "w") as f:
        for pr in check_prompts:
            ids = encode(pr)
            g = greedy(qm, ids)
            logits = qm(torch.tensor([ids]))[0, -1]
            top = torch.topk(logits, 5)
            f.write(json.dumps({"prompt": pr, "ids": ids, "greedy": decode(g),
                                "greedy_ids": g,
                                "top_ids": top.indices.tolist(),
                                "top_logits": [round(float(v), 5) for v in top.values]}) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/tmp/demo/train.jsonl")
    ap.add_argument("--out", default="/tmp/demo")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--ff", type=int, default=384)
    ap.add_argument("--bench", type=int, default=0, help="time N steps and exit")
    ap.add_argument("--eval-only", action="store_true")
    ap.add_argument("--eval-n", type=int, default=60)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    random.seed(a.seed)
    cfg = Cfg(d=a.d, n_layers=a.layers, ff=a.ff)
    model = Model(cfg)
    nparam = sum(p.numel() for p in model.parameters())
    print(f"params {nparam} ({nparam / 1e6:.2f} M), vocab {cfg.vocab}", flush=True)
    samples = load_samples(a.data)
    ckpt = os.path.join(a.out, "weights.pt")

    if not a.eval_only:
        opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.98), weight_decay=0.01)
        rng = random.Random(a.seed)
        order = list(range(len(samples)))
        rng.shuffle(order)
        pos = 0
        steps = a.bench or a.steps
        warm = max(1, steps // 30)
        t0 = time.time()
        for step in range(steps):
            lr = a.lr * min(1.0, (step + 1) / warm) * (0.5 * (1 + math.cos(math.pi * step / steps)) * 0.9 + 0.1)
            for g in opt.param_groups:
                g["lr"] = lr
            if pos + a.batch > len(order):
                rng.shuffle(order)
                pos = 0
            x, y = batch_of(samples, order[pos:pos + a.batch])
            pos += a.batch
            logits = model(x)
            loss = F.cross_entropy(logits.reshape(-1, cfg.vocab), y.reshape(-1), ignore_index=-100)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            if step % 50 == 0 or step == steps - 1:
                print(f"step {step} loss {loss.item():.4f} lr {lr:.2e} t {time.time() - t0:.0f}s",
                      flush=True)
        print(f"train_time_s {time.time() - t0:.1f}", flush=True)
        if a.bench:
            return
        os.makedirs(a.out, exist_ok=True)
        torch.save(model.state_dict(), ckpt)
    else:
        model.load_state_dict(torch.load(ckpt))
    model.eval()

    # quick held-out accuracy (greedy and one sample at temp 0.8), PyTorch side
    tasks = [json.loads(l) for l in open("data/tasks/arith.jsonl")]
    tasks += [json.loads(l) for l in open("data/tasks/choice.jsonl")]
    rng = random.Random(a.seed)
    rng.shuffle(tasks)
    gen = torch.Generator().manual_seed(a.seed)
    ok_g = ok_s = 0
    t0 = time.time()
    for t in tasks[:a.eval_n]:
        ids = encode(f"Q: {t['question']}\nA:")
        ok_g += answer_of(decode(greedy(model, ids))) == t["answer"]
        ok_s += answer_of(decode(sample(model, ids, 0.8, gen))) == t["answer"]
    n = min(a.eval_n, len(tasks))
    print(f"pytorch held-out: greedy {ok_g}/{n}, temp0.8 {ok_s}/{n} ({time.time() - t0:.0f}s)", flush=True)

    train_lines = [json.loads(l) for _, l in zip(range(2000), open(a.data))]
    check = [r["prompt"] for r in train_lines[:8]] + [f"Q: {t['question']}\nA:" for t in tasks[:8]]
    tok_texts = [r["prompt"] + r["completion"] for r in train_lines]
    tok_texts += [f"Q: {t['question']}\nA:" for t in tasks]
    dump(model, cfg, a.out, check, tok_texts)
    print("dumped", a.out, flush=True)


if __name__ == "__main__":
    main()
