#!/usr/bin/env python3
"""ref_forward.py - an independent reference forward pass for qeil's engine.

Reads a GGUF file on its own (its own parser and dequantizers; nothing from
the C library), runs llama / qwen2 / gpt2 in float64 with PyTorch over the
whole token sequence at once (full causal mask), and writes the logits of
every position as raw little-endian float64, n_tokens x vocab, row-major.

    python3 tests/ref/ref_forward.py MODEL.gguf 1,2,3,4 OUT.f64 [MODEL TOKENS OUT ...]
    python3 tests/ref/ref_forward.py --no-act-quant MODEL.gguf 1,2,3 OUT.f64

Several (model, tokens, out) triples may follow one another so that the
tests pay for one interpreter start only.

Activation quantization: qeil's matmul quantizes the input vector x of a
product with a quantized weight (Q8_0 blocks of 32 for q8_0/q4_0/q5_0
weights and iq4_nl, Q8_1 for q4_1/q5_1, Q8_K blocks of 256 for q4_k/q5_k/q6_k/iq4_xs), as
llama.cpp does. By default this
reference applies the same rounding to x (in float32, as the engine does)
and then multiplies dequantized weights and dequantized activations in
float64; --no-act-quant skips it (pure dequantized-weight reference).

Conventions (docs/engine.md):
  llama: RMSNorm, RoPE on adjacent pairs (x[2i], x[2i+1]) applied to Q/K as
         stored in the GGUF (llama.cpp's permuted layout), GQA, SwiGLU,
         optional Llama-3 rope scaling or rope_freqs.weight factors.
  qwen2: llama + Q/K/V biases, NeoX RoPE on pairs (x[i], x[i + n_rot/2]).
  gpt2:  learned positions, LayerNorm with bias, fused QKV with bias,
         GELU (tanh approximation), biases on every projection.
  granite: llama with four multipliers (granite.embedding_scale,
         residual_scale, attention.scale, logit_scale): x = E[tok] * s_emb,
         x += s_res * branch, scores q.k * s_attn, logits / s_logit.
  lfm2:  per block either attention (q and k heads RMS-normalized with
         attn_q_norm / attn_k_norm before NeoX RoPE) or a gated short
         convolution (head_count_kv[l] == 0): B | C | x = in_proj h,
         y_t = C_t * sum_k w[:, k] * (B*x)_{t-L+1+k} (zero before the start),
         out_proj y; SwiGLU FFN everywhere; final norm token_embd_norm.
"""
import math
import struct
import sys

import numpy as np
import torch

torch.set_num_threads(2)

# --------------------------------------------------------------------------
# GGUF parsing (spec: github.com/ggml-org/ggml docs/gguf.md)
# --------------------------------------------------------------------------

GGML_F32, GGML_F16, GGML_Q4_0, GGML_Q8_0, GGML_Q4_K, GGML_Q6_K, GGML_BF16 = 0, 1, 2, 8, 12, 14, 30
GGML_Q4_1, GGML_Q5_0, GGML_Q5_1, GGML_Q5_K, GGML_IQ4_NL, GGML_IQ4_XS = 3, 6, 7, 13, 20, 23
KVALUES_IQ4NL = np.array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113],
                         dtype=np.float64)
TYPE_NAMES = {0: "f32", 1: "f16", 2: "q4_0", 3: "q4_1", 6: "q5_0", 7: "q5_1", 8: "q8_0",
              12: "q4_k", 13: "q5_k", 14: "q6_k", 20: "iq4_nl", 23: "iq4_xs",
              30: "bf16"}
# (elements per block, bytes per block)
BLOCK = {GGML_F32: (1, 4), GGML_F16: (1, 2), GGML_BF16: (1, 2), GGML_Q8_0: (32, 34),
         GGML_Q4_0: (32, 18), GGML_Q4_K: (256, 144), GGML_Q6_K: (256, 210),
         GGML_Q4_1: (32, 20), GGML_Q5_0: (32, 22), GGML_Q5_1: (32, 24), GGML_Q5_K: (256, 176),
         GGML_IQ4_NL: (32, 18), GGML_IQ4_XS: (256, 136)}


class Reader:
    def __init__(self, buf):
        self.buf = buf
        self.pos = 0

    def take(self, fmt):
        v = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return v[0]

    def string(self):
        n = self.take("Q")
        s = bytes(self.buf[self.pos:self.pos + n]).decode("utf-8", errors="replace")
        self.pos += n
        return s

    SCALAR = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}

    def value(self, vtype):
        if vtype in self.SCALAR:
            return self.take(self.SCALAR[vtype])
        if vtype == 8:
            return self.string()
        if vtype == 9:
            et = self.take("I")
            n = self.take("Q")
            return [self.value(et) for _ in range(n)]
        raise ValueError("gguf: unknown value type %d" % vtype)


class Gguf:
    def __init__(self, path):
        with open(path, "rb") as f:
            self.buf = f.read()
        r = Reader(self.buf)
        if bytes(self.buf[:4]) != b"GGUF":
            raise ValueError("not a GGUF file")
        r.pos = 4
        self.version = r.take("I")
        if self.version not in (2, 3):
            raise ValueError("unsupported GGUF version %d" % self.version)
        n_tensors = r.take("Q")
        n_kv = r.take("Q")
        self.kv = {}
        for _ in range(n_kv):
            key = r.string()
            self.kv[key] = r.value(r.take("I"))
        self.tensors = {}
        infos = []
        for _ in range(n_tensors):
            name = r.string()
            n_dims = r.take("I")
            ne = [r.take("Q") for _ in range(n_dims)]
            ttype = r.take("I")
            off = r.take("Q")
            infos.append((name, ne, ttype, off))
        align = self.kv.get("general.alignment", 32)
        start = (r.pos + align - 1) // align * align
        for name, ne, ttype, off in infos:
            self.tensors[name] = (ne, ttype, start + off)

    def has(self, name):
        return name in self.tensors

    def tensor(self, name):
        """float64 numpy array shaped like PyTorch's view: [ne1, ne0] (rows)."""
        ne, ttype, off = self.tensors[name]
        n = 1
        for x in ne:
            n *= x
        if ttype not in BLOCK:
            raise ValueError("tensor %s: type %d not supported by the reference" % (name, ttype))
        be, bb = BLOCK[ttype]
        nbytes = n // be * bb
        raw = np.frombuffer(self.buf, dtype=np.uint8, count=nbytes, offset=off)
        x = dequantize(raw, ttype, n)
        shape = list(reversed(ne))
        if ttype in (GGML_Q4_1, GGML_Q5_1):  # the block mins, for Q8_1's s term
            b = raw.reshape(-1, bb)
            m = f16(b[:, 2:4]).reshape(shape[:-1] + [shape[-1] // 32])
            return x.reshape(shape), ttype, m
        return x.reshape(shape), ttype


# --------------------------------------------------------------------------
# Dequantization (block layouts of ggml; written from the format description)
# --------------------------------------------------------------------------

def f16(raw_u8_pairs):
    return raw_u8_pairs.copy().view(np.float16).astype(np.float64)


def dequantize(raw, ttype, n):
    if ttype == GGML_F32:
        return raw.view(np.float32).astype(np.float64)
    if ttype == GGML_F16:
        return raw.view(np.float16).astype(np.float64)
    if ttype == GGML_BF16:
        u = raw.view(np.uint16).astype(np.uint32) << 16
        return u.view(np.float32).astype(np.float64)
    if ttype == GGML_Q8_0:
        b = raw.reshape(-1, 34)
        d = f16(b[:, 0:2]).reshape(-1, 1)
        q = b[:, 2:34].copy().view(np.int8).astype(np.float64)
        return (q * d).reshape(-1)
    if ttype == GGML_Q4_0:
        b = raw.reshape(-1, 18)
        d = f16(b[:, 0:2]).reshape(-1, 1)
        qs = b[:, 2:18].astype(np.int64)
        lo = (qs & 0x0F) - 8          # elements 0..15
        hi = (qs >> 4) - 8            # elements 16..31
        return (np.concatenate([lo, hi], axis=1) * d).reshape(-1)
    if ttype == GGML_IQ4_NL:  # Q4_0's layout, nibbles index 16 levels
        b = raw.reshape(-1, 18)
        d = f16(b[:, 0:2]).reshape(-1, 1)
        qs = b[:, 2:18].astype(np.int64)
        return (KVALUES_IQ4NL[np.concatenate([qs & 0x0F, qs >> 4], axis=1)] * d).reshape(-1)
    if ttype == GGML_IQ4_XS:  # d f16, scales_h u16, scales_l[4], qs[128]
        b = raw.reshape(-1, 136)
        d = f16(b[:, 0:2]).reshape(-1, 1)
        sh = b[:, 2:4].copy().view(np.uint16).astype(np.int64).reshape(-1, 1)
        sl = b[:, 4:8].astype(np.int64)
        out = np.zeros((b.shape[0], 256), dtype=np.float64)
        for ib in range(8):
            ls = ((sl[:, ib // 2:ib // 2 + 1] >> (4 * (ib % 2))) & 0x0F) | (((sh >> (2 * ib)) & 3) << 4)
            qs = b[:, 8 + 16 * ib:24 + 16 * ib].astype(np.int64)
            lv = KVALUES_IQ4NL[np.concatenate([qs & 0x0F, qs >> 4], axis=1)]
            out[:, 32 * ib:32 * ib + 32] = d * (ls - 32) * lv
        return out.reshape(-1)
    if ttype in (GGML_Q4_1, GGML_Q5_0, GGML_Q5_1):
        # d f16, [m f16], [qh: 32 bits, bit j = 5th bit of element j], qs[16]
        bb = BLOCK[ttype][1]
        b = raw.reshape(-1, bb)
        d = f16(b[:, 0:2]).reshape(-1, 1)
        qs = b[:, bb - 16:bb].astype(np.int64)
        q = np.concatenate([qs & 0x0F, qs >> 4], axis=1)  # elements 0..15, 16..31
        if ttype != GGML_Q4_1:
            o = 2 if ttype == GGML_Q5_0 else 4
            qh = b[:, o:o + 4].copy().view(np.uint32).astype(np.int64).reshape(-1, 1)
            q = q | (((qh >> np.arange(32)) & 1) << 4)
        if ttype == GGML_Q5_0:
            return ((q - 16) * d).reshape(-1)
        m = f16(b[:, 2:4]).reshape(-1, 1)
        return (q * d + m).reshape(-1)
    if ttype in (GGML_Q4_K, GGML_Q5_K):
        five = ttype == GGML_Q5_K
        bb = BLOCK[ttype][1]
        b = raw.reshape(-1, bb)
        d = f16(b[:, 0:2]).reshape(-1, 1)
        dmin = f16(b[:, 2:4]).reshape(-1, 1)
        s = b[:, 4:16].astype(np.int64)
        qs = b[:, bb - 128:bb].astype(np.int64)
        # Q5_K: the 5th bit of element 64c + 32h + l is bit 2c + h of qh[l]
        qh = b[:, 16:48].astype(np.int64) if five else None
        # eight 6-bit scales and mins: j < 4 in the low 6 bits of bytes j and
        # j+4; j >= 4 low nibbles from bytes j+4, top 2 bits from bytes j-4 / j
        sc = np.zeros((b.shape[0], 8), dtype=np.int64)
        mn = np.zeros((b.shape[0], 8), dtype=np.int64)
        for j in range(4):
            sc[:, j] = s[:, j] & 63
            mn[:, j] = s[:, j + 4] & 63
        for j in range(4, 8):
            sc[:, j] = (s[:, j + 4] & 0x0F) | ((s[:, j - 4] >> 6) << 4)
            mn[:, j] = (s[:, j + 4] >> 4) | ((s[:, j] >> 6) << 4)
        out = np.zeros((b.shape[0], 256), dtype=np.float64)
        for c in range(4):  # 32 bytes of qs hold 64 elements: sub-blocks 2c, 2c+1
            q = qs[:, 32 * c:32 * c + 32]
            q1, q2 = q & 0x0F, q >> 4
            if five:
                q1 = q1 | (((qh >> (2 * c)) & 1) << 4)
                q2 = q2 | (((qh >> (2 * c + 1)) & 1) << 4)
            out[:, 64 * c:64 * c + 32] = d * sc[:, 2 * c:2 * c + 1] * q1 - dmin * mn[:, 2 * c:2 * c + 1]
            out[:, 64 * c + 32:64 * c + 64] = d * sc[:, 2 * c + 1:2 * c + 2] * q2 - dmin * mn[:, 2 * c + 1:2 * c + 2]
        return out.reshape(-1)
    if ttype == GGML_Q6_K:
        b = raw.reshape(-1, 210)
        ql = b[:, 0:128].astype(np.int64)
        qh = b[:, 128:192].astype(np.int64)
        sc = b[:, 192:208].copy().view(np.int8).astype(np.float64)
        d = f16(b[:, 208:210]).reshape(-1, 1)
        out = np.zeros((b.shape[0], 256), dtype=np.float64)
        for h in range(2):  # two halves of 128 elements
            L = ql[:, 64 * h:64 * h + 64]
            H = qh[:, 32 * h:32 * h + 32]
            for l in range(32):
                isc = 8 * h + l // 16
                q1 = ((L[:, l] & 0x0F) | (((H[:, l] >> 0) & 3) << 4)) - 32
                q2 = ((L[:, l + 32] & 0x0F) | (((H[:, l] >> 2) & 3) << 4)) - 32
                q3 = ((L[:, l] >> 4) | (((H[:, l] >> 4) & 3) << 4)) - 32
                q4 = ((L[:, l + 32] >> 4) | (((H[:, l] >> 6) & 3) << 4)) - 32
                base = 128 * h
                out[:, base + l] = d[:, 0] * sc[:, isc] * q1
                out[:, base + l + 32] = d[:, 0] * sc[:, isc + 2] * q2
                out[:, base + l + 64] = d[:, 0] * sc[:, isc + 4] * q3
                out[:, base + l + 96] = d[:, 0] * sc[:, isc + 6] * q4
        return out.reshape(-1)
    raise ValueError("type %d" % ttype)


# --------------------------------------------------------------------------
# Activation quantization (what the engine's matmul does to x)
# --------------------------------------------------------------------------

def round_half_away(v):
    """C's roundf on float32 values, evaluated exactly in float64."""
    v = v.astype(np.float64)
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


def act_quant_q8_0(x):
    """Q8_0: per 32: d = amax/127 (f32, stored as f16), q = round(x * (1/d))."""
    x = x.astype(np.float32).reshape(-1, 32)
    amax = np.max(np.abs(x), axis=1, keepdims=True)
    d = (amax / np.float32(127)).astype(np.float32)
    with np.errstate(divide="ignore"):
        idv = np.where(d != 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
    q = np.clip(round_half_away((x * idv).astype(np.float32)), -127, 127)
    d16 = d.astype(np.float16).astype(np.float64)
    return (q * d16).reshape(-1)


def act_quant_q8_1_s(x):
    """Q8_1 = Q8_0 plus s = f16(d * sum q) per 32 (d the f32 value): returns
    the dequantized x and, per block, s - d16 * sum q (what the engine's
    min term m * s adds beyond m * sum of the dequantized x)."""
    x = x.astype(np.float32).reshape(-1, 32)
    amax = np.max(np.abs(x), axis=1, keepdims=True)
    d = (amax / np.float32(127)).astype(np.float32)
    with np.errstate(divide="ignore"):
        idv = np.where(d != 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
    q = np.clip(round_half_away((x * idv).astype(np.float32)), -127, 127)
    d16 = d.astype(np.float16).astype(np.float64)
    sq = q.sum(axis=1, keepdims=True)
    s16 = (sq.astype(np.float32) * d).astype(np.float32).astype(np.float16).astype(np.float64)
    return (q * d16).reshape(-1), (s16 - d16 * sq).reshape(-1)


def act_quant_q8_k(x):
    """Q8_K: per 256: d = amax/127 (f32), q = round(x * (127/amax))."""
    x = x.astype(np.float32).reshape(-1, 256)
    amax = np.max(np.abs(x), axis=1, keepdims=True)
    d = (amax / np.float32(127)).astype(np.float32)
    with np.errstate(divide="ignore"):
        idv = np.where(amax > 0, np.float32(127) / amax, np.float32(0)).astype(np.float32)
    q = np.clip(round_half_away((x * idv).astype(np.float32)), -127, 127)
    return (q * d.astype(np.float64)).reshape(-1)


ACT_QUANT = True


def linear(W, x, bias=None):
    """x: [n, in] float64 torch; W: (weights [out, in] float64 torch, gguf type[,
    mins [out, in / 32] for q4_1 / q5_1])."""
    w, ttype = W[0], W[1]
    corr = None
    if ACT_QUANT and ttype in (GGML_Q4_1, GGML_Q5_1):
        xn = x.numpy()
        pairs = [act_quant_q8_1_s(row) for row in xn]
        x = torch.from_numpy(np.stack([p[0] for p in pairs]))
        ds = torch.from_numpy(np.stack([p[1] for p in pairs]))  # [n, in / 32]
        corr = ds @ W[2].T
    elif ACT_QUANT and ttype in (GGML_Q8_0, GGML_Q4_0, GGML_Q5_0, GGML_IQ4_NL, GGML_Q4_K, GGML_Q5_K,
                                 GGML_Q6_K, GGML_IQ4_XS):
        f = act_quant_q8_0 if ttype in (GGML_Q8_0, GGML_Q4_0, GGML_Q5_0, GGML_IQ4_NL) else act_quant_q8_k
        xn = x.numpy()
        xq = np.stack([f(row) for row in xn])
        x = torch.from_numpy(xq)
    y = x @ w.T
    if corr is not None:
        y = y + corr
    if bias is not None:
        y = y + bias
    return y


# --------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------

def rms_norm(x, w, eps):
    return x / torch.sqrt((x * x).mean(dim=-1, keepdim=True) + eps) * w


def layer_norm(x, w, b, eps):
    mu = x.mean(dim=-1, keepdim=True)
    var = ((x - mu) ** 2).mean(dim=-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w + b


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def silu(x):
    return x / (1.0 + torch.exp(-x))


def llama3_freq(freq, factor, low, high, old_ctx):
    """Meta's apply_scaling (llama-models, Llama 3.1/3.2)."""
    low_wavelen = old_ctx / low
    high_wavelen = old_ctx / high
    wavelen = 2 * math.pi / freq
    if wavelen < high_wavelen:
        return freq
    if wavelen > low_wavelen:
        return freq / factor
    smooth = (old_ctx / wavelen - low) / (high - low)
    return (1 - smooth) * freq / factor + smooth * freq


def rope(x, pos, inv_freq, n_rot, neox):
    """x: [n, heads, head_dim]; rotate the first n_rot dims by pos * inv_freq."""
    x = x.clone()
    half = n_rot // 2
    ang = pos.reshape(-1, 1) * inv_freq.reshape(1, -1)            # [n, half]
    c = torch.cos(ang).unsqueeze(1)
    s = torch.sin(ang).unsqueeze(1)
    if neox:
        i0 = torch.arange(half)
        i1 = i0 + half
    else:
        i0 = torch.arange(half) * 2
        i1 = i0 + 1
    a = x[:, :, i0].clone()
    b = x[:, :, i1].clone()
    x[:, :, i0] = a * c - b * s
    x[:, :, i1] = a * s + b * c
    return x


class Model:
    def __init__(self, path):
        g = self.g = Gguf(path)
        arch = self.arch = g.kv["general.architecture"]
        if arch not in ("llama", "qwen2", "gpt2", "granite", "lfm2"):
            raise ValueError("architecture %s not supported" % arch)
        kv = g.kv
        self.n_layers = kv[arch + ".block_count"]
        self.d = kv[arch + ".embedding_length"]
        self.n_heads = kv[arch + ".attention.head_count"]
        self.n_kv = kv.get(arch + ".attention.head_count_kv", self.n_heads)
        # lfm2: one count per block, 0 = short-convolution block
        self.kv_per_layer = self.n_kv if isinstance(self.n_kv, list) else [self.n_kv] * self.n_layers
        self.n_kv = max(self.kv_per_layer) if max(self.kv_per_layer) > 0 else self.n_heads
        self.conv_L = kv.get(arch + ".shortconv.l_cache", 0)
        self.s_emb = kv.get(arch + ".embedding_scale", 0.0) or 1.0
        self.s_res = kv.get(arch + ".residual_scale", 0.0) or 1.0
        self.s_logit = kv.get(arch + ".logit_scale", 0.0) or 1.0
        self.hd = kv.get(arch + ".attention.key_length", self.d // self.n_heads)
        if arch == "gpt2":
            self.eps = kv[arch + ".attention.layer_norm_epsilon"]
        else:
            self.eps = kv[arch + ".attention.layer_norm_rms_epsilon"]
            self.n_rot = kv.get(arch + ".rope.dimension_count", self.hd)
            base = kv.get(arch + ".rope.freq_base", 10000.0)
            half = self.n_rot // 2
            freqs = [base ** (-(2.0 * i) / self.n_rot) for i in range(half)]
            self.pos_scale = 1.0
            stype = kv.get(arch + ".rope.scaling.type", "none")
            if stype == "linear":
                self.pos_scale = 1.0 / kv[arch + ".rope.scaling.factor"]
            elif stype == "llama3":
                fac = kv[arch + ".rope.scaling.factor"]
                low = kv[arch + ".rope.scaling.low_freq_factor"]
                high = kv[arch + ".rope.scaling.high_freq_factor"]
                old = kv[arch + ".rope.scaling.original_context_length"]
                freqs = [llama3_freq(f, fac, low, high, old) for f in freqs]
            elif stype != "none":
                raise ValueError("rope scaling %s not supported" % stype)
            if g.has("rope_freqs.weight"):
                ff = g.tensor("rope_freqs.weight")[0].reshape(-1)
                freqs = [base ** (-(2.0 * i) / self.n_rot) / ff[i] for i in range(half)]
            self.inv_freq = torch.tensor(freqs, dtype=torch.float64)

    def t(self, name):
        r = self.g.tensor(name)
        return (torch.from_numpy(np.ascontiguousarray(r[0])),) + tuple(
            torch.from_numpy(np.ascontiguousarray(v)) if isinstance(v, np.ndarray) else v
            for v in r[1:])

    def opt(self, name):
        return self.t(name)[0] if self.g.has(name) else None

    def shortconv(self, p, h):
        """lfm2 gated short convolution of the whole sequence h [n, d]."""
        n, d = h.shape
        L = self.conv_L
        bcx = linear(self.t(p + "shortconv.in_proj.weight"), h)
        b, c, xx = bcx[:, :d], bcx[:, d:2 * d], bcx[:, 2 * d:]
        u = b * xx
        w = self.t(p + "shortconv.conv.weight")[0]            # [d, L]
        y = torch.zeros(n, d, dtype=torch.float64)
        for k in range(L):
            shift = L - 1 - k                                  # tap k reads position t - shift
            if shift < n:
                y[shift:, :] += w[:, k].reshape(1, d) * u[:n - shift, :]
        return linear(self.t(p + "shortconv.out_proj.weight"), c * y)

    def norm(self, x, prefix):
        w = self.t(prefix + ".weight")[0]
        if self.arch == "gpt2":
            return layer_norm(x, w, self.t(prefix + ".bias")[0], self.eps)
        return rms_norm(x, w, self.eps)

    def forward(self, tokens):
        n = len(tokens)
        tok = torch.tensor(tokens, dtype=torch.long)
        pos = torch.arange(n, dtype=torch.float64)
        emb = self.t("token_embd.weight")
        x = emb[0][tok] * self.s_emb
        if self.arch == "gpt2":
            x = x + self.t("position_embd.weight")[0][torch.arange(n)]
        H, KV, hd = self.n_heads, self.n_kv, self.hd
        self.s_attn = self.g.kv.get(self.arch + ".attention.scale", 0.0) or 1.0 / math.sqrt(hd)
        group = H // KV
        causal = torch.triu(torch.full((n, n), float("-inf"), dtype=torch.float64), diagonal=1)
        for l in range(self.n_layers):
            p = "blk.%d." % l
            h = self.norm(x, p + "attn_norm")
            if self.arch == "lfm2" and self.kv_per_layer[l] == 0:
                x = x + self.s_res * self.shortconv(p, h)
                x = self.ffn(x, p)
                continue
            if self.arch == "gpt2":
                qkv = linear(self.t(p + "attn_qkv.weight"), h, self.t(p + "attn_qkv.bias")[0])
                q, k, v = qkv[:, :H * hd], qkv[:, H * hd:(H + KV) * hd], qkv[:, (H + KV) * hd:]
            else:
                q = linear(self.t(p + "attn_q.weight"), h, self.opt(p + "attn_q.bias"))
                k = linear(self.t(p + "attn_k.weight"), h, self.opt(p + "attn_k.bias"))
                v = linear(self.t(p + "attn_v.weight"), h, self.opt(p + "attn_v.bias"))
            q = q.reshape(n, H, hd)
            k = k.reshape(n, KV, hd)
            v = v.reshape(n, KV, hd)
            if self.arch == "lfm2":
                q = rms_norm(q, self.t(p + "attn_q_norm.weight")[0], self.eps)
                k = rms_norm(k, self.t(p + "attn_k_norm.weight")[0], self.eps)
            if self.arch != "gpt2":
                neox = self.arch in ("qwen2", "lfm2")
                q = rope(q, pos * self.pos_scale, self.inv_freq, self.n_rot, neox)
                k = rope(k, pos * self.pos_scale, self.inv_freq, self.n_rot, neox)
            att = torch.zeros(n, H, hd, dtype=torch.float64)
            for hh in range(H):
                kh = k[:, hh // group, :]
                vh = v[:, hh // group, :]
                s = (q[:, hh, :] @ kh.T) * self.s_attn + causal
                att[:, hh, :] = torch.softmax(s, dim=-1) @ vh
            x = x + self.s_res * linear(self.t(p + "attn_output.weight"), att.reshape(n, H * hd),
                                        self.opt(p + "attn_output.bias"))
            x = self.ffn(x, p)
        h = self.norm(x, "token_embd_norm" if self.arch == "lfm2" else "output_norm")
        out = self.t("output.weight") if self.g.has("output.weight") else emb
        return linear(out, h) / self.s_logit

    def ffn(self, x, p):
        h = self.norm(x, p + "ffn_norm")
        if self.arch == "gpt2":
            u = gelu_tanh(linear(self.t(p + "ffn_up.weight"), h, self.t(p + "ffn_up.bias")[0]))
            return x + linear(self.t(p + "ffn_down.weight"), u, self.t(p + "ffn_down.bias")[0])
        gte = silu(linear(self.t(p + "ffn_gate.weight"), h))
        up = linear(self.t(p + "ffn_up.weight"), h)
        return x + self.s_res * linear(self.t(p + "ffn_down.weight"), gte * up)


def main(argv):
    global ACT_QUANT
    args = list(argv[1:])
    if args and args[0] == "--no-act-quant":
        ACT_QUANT = False
        args = args[1:]
    if not args or len(args) % 3 != 0:
        sys.stderr.write(__doc__)
        return 2
    for i in range(0, len(args), 3):
        path, toks, out = args[i:i + 3]
        tokens = [int(t) for t in toks.split(",") if t != ""]
        logits = Model(path).forward(tokens)
        arr = logits.numpy().astype("<f8")
        with open(out, "wb") as f:
            f.write(arr.tobytes())
        print("%s: %d tokens x %d logits, max |logit| %.6g" % (path, arr.shape[0], arr.shape[1],
                                                               float(np.abs(arr).max())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
