#!/usr/bin/env python3
"""SentencePiece oracle for qeil's SPM tokenizer (tests/test_tokenizer.c).

Trains a small SentencePiece BPE model (byte fallback, identity
normalisation: the setup of Llama-style tokenizer.model files) on text this
script generates from a fixed seed, and writes

  spm_vocab.tsv  one line per piece: id, GGUF token type, score, piece (hex)
  spm_cases.tsv  one line per test string: text (hex), ids sentencepiece
                 encodes it to, and sentencepiece's decoding of those ids (hex)

Before writing, it re-encodes every case with a plain Python version of the
"merge the adjacent pair whose concatenation is a piece with the highest
score, leftmost first" algorithm over the exported vocabulary, and refuses to
write anything if that ever disagrees with sentencepiece: the C tokenizer
implements that algorithm, so the exported scores must drive it to the same
answer.

Usage: python3 tests/ref/spm_oracle.py [--out DIR]   (default: tests/data/tokenizer)
Needs: Debian's python3-sentencepiece (0.1.97 wrote the committed files).
"""
import argparse
import io
import os
import random
import sys

import sentencepiece as spm

SEED = 20240611
VOCAB_SIZE = 500

# GGUF tokenizer.ggml.token_type values (llama.cpp's llama_token_type).
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6

WORDS = """the of and to in is was that for it with as on be at by this had not are
but from or have an they which one you were her all she there would their we him
been has when who will more no if out so said what up its about into than them
can only other new some could time these two may then do first any my now such
like our over man me even most made after also did many before must through back
years where much your way well down should because each just those people how too
little state good very make world still own see men work long get here between
both life being under never day same another know while last might us great old
year off come since against go came right used take three energy token model
device inference planner edge battery thermal power watt joule latency sample""".split()
ACCENTED = "café naïve résumé über señor déjà façade crème jalapeño Zürich".split()
CJK = ["中文", "日本", "東京", "你好", "世界", "学生", "中国", "日本語"]
NAMES = "Alice Bob Carol Dave Eve Mallory Trent Peggy".split()


def training_lines(rng):
    lines = []
    for _ in range(3000):
        n = rng.randint(3, 14)
        words = [rng.choice(WORDS) for _ in range(n)]
        if rng.random() < 0.3:
            words[0] = rng.choice(NAMES)
        else:
            words[0] = words[0].capitalize()
        if rng.random() < 0.25:
            words.insert(rng.randint(0, len(words)), str(rng.randint(0, 99999)))
        if rng.random() < 0.15:
            words.insert(rng.randint(0, len(words)), rng.choice(ACCENTED))
        if rng.random() < 0.08:
            words.insert(rng.randint(0, len(words)), rng.choice(CJK))
        if rng.random() < 0.1:
            words[rng.randint(0, len(words) - 1)] += ","
        lines.append(" ".join(words) + rng.choice([".", ".", ".", "?", "!"]))
    return lines


CASES = [
    "",
    "Hello world",
    "the energy of the model",
    " leading space",
    "  two leading spaces",
    "trailing space ",
    "trailing two  ",
    "multiple   spaces   inside",
    " ",
    "   ",
    "a",
    "A",
    "\n",
    "line one\nline two",
    "\n\nblank lines\n\n",
    "tab\tseparated\twords",
    "windows\r\nline",
    "12345",
    "3.14159",
    "year 2024, day 17",
    "phone 555-0199",
    "café au lait",
    "naïve résumé über",
    "Zürich señor jalapeño",
    "ÀÉÎÕÜ",
    "中文",
    "日本語のテキスト",
    "你好，世界",
    "東京 and 中国",
    "Ελληνικά",
    "русский текст",
    "עברית",
    "हिन्दी",
    "ß∂ƒ©˙∆˚¬",
    "😀",
    "I \u2764 tokens 🎉🎉",
    "Hello, world! How's it going?",
    '"quoted" and (parenthesised)',
    "a-b_c.d/e\\f",
    "The year 1999 was café-time 中文 😀",
    "tokens\u2581with\u2581the\u2581block",
    "~!@#$%^&*()_+`{}|[]:;<>?,./",
    "Alice said: the device is at 45 watt.",
    "inference inference inference",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "no-break\u00a0space",
    "zero\u200bwidth",
    "mixed 中文 and English and café",
    "edge battery thermal power joule latency sample",
    "end with newline\n",
]


def piece_type(sp, i):
    if sp.IsUnknown(i):
        return UNKNOWN
    if sp.IsControl(i):
        return CONTROL
    if sp.IsUnused(i):
        return UNUSED
    if sp.IsByte(i):
        return BYTE
    return NORMAL


def reference_encode(vocab, text):
    """The algorithm qeil implements, over the exported vocabulary."""
    if not text:
        return []
    piece_id, score = {}, {}
    for i, (t, s, p) in enumerate(vocab):
        if t in (NORMAL, USER_DEFINED, UNUSED) and p not in piece_id:
            piece_id[p] = i
            score[p] = s
    byte_id = {}
    for i, (t, s, p) in enumerate(vocab):
        if t == BYTE:
            byte_id[int(p[3:5], 16)] = i
    syms = list(("\u2581" + text.replace(" ", "\u2581")))
    while True:
        best = None
        for i in range(len(syms) - 1):
            cat = syms[i] + syms[i + 1]
            if cat in piece_id and (best is None or score[cat] > best[0]):
                best = (score[cat], i)
        if best is None:
            break
        i = best[1]
        syms[i:i + 2] = [syms[i] + syms[i + 1]]
    ids = []
    for s in syms:
        if s in piece_id:
            ids.append(piece_id[s])
        else:
            ids.extend(byte_id[b] for b in s.encode("utf-8"))
    return ids


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "data", "tokenizer"))
    args = ap.parse_args()

    rng = random.Random(SEED)
    lines = training_lines(rng)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=model,
        model_type="bpe",
        vocab_size=VOCAB_SIZE,
        byte_fallback=True,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        add_dummy_prefix=True,
        character_coverage=0.9995,
        num_threads=1,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        minloglevel=2,
    )
    sp = spm.SentencePieceProcessor(model_proto=model.getvalue())

    vocab = [(piece_type(sp, i), sp.GetScore(i), sp.IdToPiece(i)) for i in range(sp.GetPieceSize())]
    cases = []
    for text in CASES:
        ids = sp.encode(text)
        ref = reference_encode(vocab, text)
        if ids != ref:
            sys.exit(f"spm_oracle: the merge algorithm disagrees with sentencepiece on {text!r}:\n"
                     f"  sentencepiece {ids}\n  reference     {ref}")
        cases.append((text, ids, sp.decode(ids)))

    os.makedirs(args.out, exist_ok=True)
    meta = (f"#meta sentencepiece={spm.__version__} model_type=bpe vocab_size={VOCAB_SIZE} "
            f"seed={SEED} bos={sp.bos_id()} eos={sp.eos_id()} unk={sp.unk_id()}\n")
    with open(os.path.join(args.out, "spm_vocab.tsv"), "w", encoding="ascii", newline="\n") as f:
        f.write(meta)
        f.write("# id\ttype (GGUF token_type)\tscore\tpiece (UTF-8 bytes, hex)\n")
        for i, (t, s, p) in enumerate(vocab):
            f.write(f"{i}\t{t}\t{s!r}\t{p.encode('utf-8').hex()}\n")
    with open(os.path.join(args.out, "spm_cases.tsv"), "w", encoding="ascii", newline="\n") as f:
        f.write(meta)
        f.write("# text (hex)\tids sentencepiece gives (add_bos off)\tsentencepiece decode (hex)\n")
        for text, ids, dec in cases:
            f.write(f"{text.encode('utf-8').hex()}\t{' '.join(map(str, ids))}\t"
                    f"{dec.encode('utf-8').hex()}\n")


if __name__ == "__main__":
    main()
