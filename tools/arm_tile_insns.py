#!/usr/bin/env python3
"""Instructions per super-block of the NEON K-quant tiles, from the disassembly.

    make CROSS=aarch64-linux-gnu- build-aarch64-linux-gnu/src/kernels/arm/dot_neon.o
    python3 tools/arm_tile_insns.py build-aarch64-linux-gnu/src/kernels/arm/dot_neon.o

For each qeil_gemm_{q4_k,q5_k,q6_k,iq4_xs}_{neon,sdot,i8mm}: the first block
loop of the function (the 4 x 4 tile; the 4 x 2 one follows it) and the
group loop nested in it (8 trips per block), counted as
outer + 7 x group instructions per super-block of 4 rows x 4 activations;
"vector ops" are those naming a SIMD/FP register, loads and stores excluded
(docs/benchmarks.md, "ARM: NEON on paper"). Static counts, not a
measurement: taken branches and the common path only.
"""
import re
import subprocess
import sys

BYTES = {"q4_k": 144, "q5_k": 176, "q6_k": 210, "iq4_xs": 136}


def functions(obj):
    out = subprocess.run(["aarch64-linux-gnu-objdump", "-d", "--no-show-raw-insn", obj],
                         capture_output=True, text=True, check=True).stdout
    cur, ins = None, {}
    for line in out.splitlines():
        m = re.match(r"^([0-9a-f]+) <(\w+)>:", line)
        if m:
            cur = m.group(2)
            ins[cur] = []
            continue
        m = re.match(r"^\s+([0-9a-f]+):\s+(\S+)\s*(.*)", line)
        if m and cur:
            ins[cur].append((int(m.group(1), 16), m.group(2), m.group(3)))
    return ins


def loops(body):
    """(first, last) index of every backward branch's range"""
    index = {a: i for i, (a, _, _) in enumerate(body)}
    found = []
    for i, (a, op, arg) in enumerate(body):
        if op.startswith("b") and op not in ("bl", "blr", "br", "bic", "bif", "bit", "bsl"):
            m = re.search(r"\b([0-9a-f]+) <", arg)
            if m and int(m.group(1), 16) <= a and int(m.group(1), 16) in index:
                found.append((index[int(m.group(1), 16)], i))
    return sorted(found)


def vector_op(op, arg):
    return not op.startswith(("ld", "st")) and bool(re.search(r"\b[vqdsh]\d+\b|\bv\d+\.", arg))


def main():
    ins = functions(sys.argv[1])
    print("| function | insns / 4x4 super-block | vector ops | insns / weight byte / activation | calls |")
    for t, nbytes in BYTES.items():
        for mode in ("neon", "sdot", "i8mm"):
            f = "qeil_gemm_%s_%s" % (t, mode)
            body = ins[f]
            lp = loops(body)
            outer = [x for x in lp if x[1] - x[0] > 200][0]
            inner = max((x for x in lp if x != outer and outer[0] <= x[0] and x[1] <= outer[1]),
                        key=lambda x: x[1] - x[0])
            o = body[outer[0]:outer[1] + 1]
            g = body[inner[0]:inner[1] + 1]
            n = len(o) + 7 * len(g)
            v = sum(vector_op(x[1], x[2]) for x in o) + 7 * sum(vector_op(x[1], x[2]) for x in g)
            calls = sum(1 for x in o if x[1] == "bl")
            print("| %s | %d (%d + 7 x %d) | %d | %.2f | %d |" % (f, n, len(o), len(g), v, n / (16 * nbytes), calls))


if __name__ == "__main__":
    main()
