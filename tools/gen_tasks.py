#!/usr/bin/env python3
"""gen_tasks.py — seeded generator of qeil's demo training text and tasks.

Two kinds of problems (docs/demo-model.md):
  numeric  two-step grade-school arithmetic word problems (operands up to 60,
           results up to 150: add/subtract, or a times-table product (2..9 x
           2..12) then add/subtract), a worked solution and a final "#### N" line;
  choice   four-way multiple-choice questions (an arithmetic result or the
           largest / smallest of four numbers) whose solution ends with
           "The answer is X" and a final "#### X" line.

Every sample is rendered as
    "Q: <question>\\nA: <worked solution>\\n#### <answer>\\n"
and the model is trained to stop (EOS) after the final newline.

Usage:
    python3 tools/gen_tasks.py --out data/tasks [--train N] [--heldout N] [--seed S]
writes <out>/arith.jsonl and <out>/choice.jsonl (held-out problems,
{"id","question","answer","kind"}) and, with --train-out FILE, the training
samples (one JSON object per line: {"prompt","completion","kind"}).
Held-out questions never occur in the training set (checked by text).
Standard library only.
"""
import argparse
import json
import random

NAMES = ["Ann", "Ben", "Cara", "Dan", "Eve", "Finn", "Gia", "Hal", "Ivy", "Jon",
         "Kim", "Leo", "Mia", "Ned", "Ola", "Pat", "Rae", "Sam", "Tia", "Uma"]
ITEMS = ["apples", "pens", "books", "stamps", "cards", "eggs", "shells", "marbles",
         "cookies", "stickers", "coins", "toys"]


def arith(rng):
    """One two-step problem: (question, solution lines, answer int)."""
    name = rng.choice(NAMES)
    item = rng.choice(ITEMS)
    t = rng.randrange(5)
    if t == 0:
        a, b = rng.randint(10, 60), rng.randint(2, 40)
        c = rng.randint(1, a + b)
        s = a + b
        q = f"{name} has {a} {item}, gets {b} more and gives away {c}. How many {item} now?"
        sol = [f"{a} + {b} = {s}.", f"{s} - {c} = {s - c}."]
        return q, sol, s - c
    if t == 1:
        a, b, c = rng.randint(2, 9), rng.randint(2, 12), rng.randint(1, 40)
        p = a * b
        q = f"{name} buys {a} bags of {b} {item} and {c} more {item}. How many {item} in all?"
        sol = [f"{a} * {b} = {p}.", f"{p} + {c} = {p + c}."]
        return q, sol, p + c
    if t == 2:
        b, c = rng.randint(2, 40), rng.randint(2, 40)
        a = rng.randint(b + c, 120)
        s = b + c
        q = f"{name} had {a} dollars and spent {b} and {c}. How many dollars are left?"
        sol = [f"{b} + {c} = {s}.", f"{a} - {s} = {a - s}."]
        return q, sol, a - s
    if t == 3:
        a, b = rng.randint(2, 9), rng.randint(2, 12)
        p = a * b
        c = rng.randint(1, p - 1)
        q = f"{a} boxes hold {b} {item} each. {c} are taken out. How many {item} are left?"
        sol = [f"{a} * {b} = {p}.", f"{p} - {c} = {p - c}."]
        return q, sol, p - c
    a, b, c = rng.randint(2, 50), rng.randint(2, 50), rng.randint(2, 50)
    s = a + b
    q = (f"{name} has {a} {item}, {rng.choice(NAMES)} has {b} and "
         f"{rng.choice(NAMES)} has {c}. How many {item} in all?")
    sol = [f"{a} + {b} = {s}.", f"{s} + {c} = {s + c}."]
    return q, sol, s + c


LETTERS = "ABCD"


def choice(rng):
    """One four-way multiple-choice problem: (question, solution, letter)."""
    t = rng.randrange(3)
    if t == 0:
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        op = rng.choice("+-")
        if op == "-" and b > a:
            a, b = b, a
        r = a + b if op == "+" else a - b
        opts = {r}
        while len(opts) < 4:
            d = rng.choice([-10, -1, 1, 10, -2, 2, 11, -11])
            if r + d >= 0:
                opts.add(r + d)
        opts = list(opts)
        rng.shuffle(opts)
        head = f"What is {a} {op} {b}?"
        sol = [f"{a} {op} {b} = {r}."]
    else:
        opts = set()
        while len(opts) < 4:
            opts.add(rng.randint(100, 999))
        opts = list(opts)
        rng.shuffle(opts)
        r = max(opts) if t == 1 else min(opts)
        word = "largest" if t == 1 else "smallest"
        head = f"Which number is the {word}?"
        sol = [f"The {word} number is {r}."]
    letter = LETTERS[opts.index(r)]
    q = head + " " + " ".join(f"{LETTERS[i]}) {o}" for i, o in enumerate(opts))
    sol.append(f"The answer is {letter}.")
    return q, sol, letter


def render(question, sol, answer):
    """prompt and completion strings of one sample (the text the model sees)."""
    prompt = f"Q: {question}\nA:"
    completion = " " + " ".join(sol) + f"\n#### {answer}\n"
    return prompt, completion


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="data/tasks")
    ap.add_argument("--train-out", default=None)
    ap.add_argument("--train", type=int, default=200000)
    ap.add_argument("--heldout", type=int, default=300)
    ap.add_argument("--seed", type=int, default=20261124)
    ap.add_argument("--choice-frac", type=float, default=0.25)
    a = ap.parse_args()

    # held-out problems first, from their own stream, so the task files do
    # not depend on --train
    rng = random.Random(a.seed)
    held = {"arith": [], "choice": []}
    seen = set()
    for kind, fn, pref in (("arith", arith, "arith"), ("choice", choice, "choice")):
        while len(held[kind]) < a.heldout:
            q, sol, ans = fn(rng)
            if q in seen:
                continue
            seen.add(q)
            held[kind].append({"id": f"{pref}-{len(held[kind]):04d}", "question": q,
                               "answer": str(ans),
                               "kind": "numeric" if kind == "arith" else "choice"})
    for kind in held:
        with open(f"{a.out}/{kind}.jsonl", "w") as f:
            for r in held[kind]:
                f.write(json.dumps(r) + "\n")

    if a.train_out:
        rng = random.Random(a.seed + 1)
        n = 0
        with open(a.train_out, "w") as f:
            while n < a.train:
                is_choice = rng.random() < a.choice_frac
                q, sol, ans = (choice if is_choice else arith)(rng)
                if q in seen:
                    continue  # keep the held-out problems unseen
                p, c = render(q, sol, ans)
                f.write(json.dumps({"prompt": p, "completion": c,
                                    "kind": "choice" if is_choice else "numeric"}) + "\n")
                n += 1


if __name__ == "__main__":
    main()
