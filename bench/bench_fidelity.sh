#!/bin/sh
# bench_fidelity.sh — the fidelity of the latency model on this machine:
# `qeil calibrate` on mkmodel models of several preset sizes, each printing
# predicted vs measured prefill and decode time before and after
# calibration, on the fit points and on held-out points (docs/cli.md
# "qeil calibrate"). Results: docs/benchmarks.md, with the command.
#
# usage: sh bench/bench_fidelity.sh [QEIL]
# environment:
#   PRESETS="gpt2-125m qwen2-0.5b llama-3.2-1b"  TYPE=q4_0  THREADS=2  REPS=3
#   PLATFORM=qeil-laptop (or a `qeil probe -o FILE` profile of this machine)
#   QUICK=1 for the small test grid
# The models are written to a temporary directory and removed at the end.
# Needs python3 (to summarise the JSON).
set -eu

Q=${1:-build/qeil}
PRESETS=${PRESETS:-"gpt2-125m qwen2-0.5b llama-3.2-1b"}
TYPE=${TYPE:-q4_0}
THREADS=${THREADS:-2}
REPS=${REPS:-3}
PLATFORM=${PLATFORM:-qeil-laptop}
QUICK=${QUICK:-0}
[ -x "$Q" ] || { echo "bench_fidelity: $Q is not an executable" >&2; exit 2; }
command -v python3 >/dev/null || { echo "bench_fidelity: needs python3" >&2; exit 1; }
quick=""
[ "$QUICK" = 1 ] && quick="--quick"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/qeil-fidelity-XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

echo "bench_fidelity: $Q, presets: $PRESETS ($TYPE), -t $THREADS -r $REPS, platform $PLATFORM"
for p in $PRESETS; do
    m="$tmp/$p-$TYPE.gguf"
    "$Q" mkmodel --preset "$p" --type "$TYPE" -o "$m" >/dev/null 2>&1
    echo
    echo "== $p ($TYPE)"
    "$Q" calibrate -m "$m" --platform "$PLATFORM" -o "$tmp/cal-$p.json" -t "$THREADS" \
        -r "$REPS" $quick 2>/dev/null
    "$Q" calibrate -m "$m" --platform "$PLATFORM" -o "$tmp/cal-$p.json" -t "$THREADS" \
        -r "$REPS" $quick --output json 2>/dev/null >"$tmp/$p.json"
done
echo
echo "held-out median |error| (second run of each model; a fraction):"
for p in $PRESETS; do
    python3 - "$tmp/$p.json" "$p" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
h = d["fidelity"]["held_out"]
u = d["unit"]
def g(w, ph):
    return h[w]["units"][u][ph]["median_abs_error"]
print("  %-14s prefill %.3f -> %.3f   decode %.3f -> %.3f   all %.3f -> %.3f" % (
    sys.argv[2], g("before", "prefill"), g("after", "prefill"),
    g("before", "decode"), g("after", "decode"),
    h["before"]["median_abs_error"], h["after"]["median_abs_error"]))
PY
done
