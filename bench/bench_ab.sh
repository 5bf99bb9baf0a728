#!/bin/sh
# bench_ab.sh — two qeil binaries on the same model files, side by side:
# `qeil bench` with A, then with B, PAIRS times alternated, and per model the
# median of the per-pair ratios B/A of decode and prefill tok/s. On a shared,
# noisy machine only such alternated ratios compare two builds (a minute's
# bandwidth moves by tens of percent; two runs a second apart see the same
# minute). Results: docs/benchmarks.md, with the command.
#
# usage: sh bench/bench_ab.sh QEIL_A QEIL_B MODEL.gguf [MODEL.gguf ...]
# environment:
#   THREADS=2 P=128 N=64 REPS=2 PAIRS=4
# Each bench runs with --bw 1 (the roofline is not the point here; it
# skips the probe). Needs python3 (to read the JSON).
set -eu

[ $# -ge 3 ] || { echo "usage: sh bench/bench_ab.sh QEIL_A QEIL_B MODEL.gguf [MODEL.gguf ...]" >&2; exit 2; }
A=$1
B=$2
shift 2
THREADS=${THREADS:-2}
P=${P:-128}
N=${N:-64}
REPS=${REPS:-2}
PAIRS=${PAIRS:-4}
for q in "$A" "$B"; do
    [ -x "$q" ] || { echo "bench_ab: $q is not an executable" >&2; exit 2; }
done
command -v python3 >/dev/null || { echo "bench_ab: needs python3" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/qeil-bench-ab-XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

echo "bench_ab: A = $A, B = $B; -t $THREADS -p $P -n $N -r $REPS, $PAIRS alternated pairs"
printf '%-40s %10s %10s %8s %10s %10s %8s\n' model "dec A" "dec B" "B/A" "pf A" "pf B" "B/A"
for m in "$@"; do
    [ -f "$m" ] || { echo "bench_ab: no model file $m" >&2; exit 2; }
    i=1
    while [ "$i" -le "$PAIRS" ]; do
        for side in A B; do
            if [ "$side" = A ]; then q=$A; else q=$B; fi
            "$q" bench -m "$m" -t "$THREADS" -p "$P" -n "$N" -r "$REPS" --bw 1 --output json \
                >"$tmp/$side.$i.json" 2>/dev/null
        done
        i=$((i + 1))
    done
    python3 - "$tmp" "$PAIRS" "$m" <<'EOF'
import json, statistics, sys, os
tmp, pairs, model = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def get(side, i):
    with open(f"{tmp}/{side}.{i}.json") as f:
        j = json.load(f)
    return j["decode"]["tok_per_s"], j["prefill"]["tok_per_s"]
a = [get("A", i) for i in range(1, pairs + 1)]
b = [get("B", i) for i in range(1, pairs + 1)]
dr = statistics.median(b[i][0] / a[i][0] for i in range(pairs))
pr = statistics.median(b[i][1] / a[i][1] for i in range(pairs))
da = statistics.median(x[0] for x in a); db = statistics.median(x[0] for x in b)
pa = statistics.median(x[1] for x in a); pb = statistics.median(x[1] for x in b)
print(f"{os.path.basename(model):40s} {da:10.2f} {db:10.2f} {dr:8.3f} {pa:10.2f} {pb:10.2f} {pr:8.3f}")
EOF
done
