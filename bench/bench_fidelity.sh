#!/bin/sh
# bench_fidelity.sh — the fidelity of the latency model on this machine:
# `qeil calibrate` on mkmodel models of several preset sizes, each printing
# predicted vs measured prefill and decode time before and after
# calibration, on the fit points and on held-out points (docs/cli.md
# "qeil calibrate"). Results: docs/benchmarks.md, with the command.
#
# usage: sh bench/bench_fidelity.sh [QEIL]
# environment:
#   PRESETS="gpt2-125m qwen2-0.5b llama-3.2-1b"  TYPE=q4_0  THREADS=1  REPS=3
#   CLOCK=cpu (wall|cpu: `qeil calibrate --clock`; cpu holds on a loaded machine)
#   PLATFORM=qeil-laptop (or a `qeil probe -o FILE` profile of this machine)
#   QUICK=1 for the small test grid
# The models are written to a temporary directory and removed at the end.
# Needs python3 (to print the JSON).
set -eu

Q=${1:-build/qeil}
PRESETS=${PRESETS:-"gpt2-125m qwen2-0.5b llama-3.2-1b"}
TYPE=${TYPE:-q4_0}
THREADS=${THREADS:-1}
REPS=${REPS:-3}
CLOCK=${CLOCK:-cpu}
PLATFORM=${PLATFORM:-qeil-laptop}
QUICK=${QUICK:-0}
[ -x "$Q" ] || { echo "bench_fidelity: $Q is not an executable" >&2; exit 2; }
command -v python3 >/dev/null || { echo "bench_fidelity: needs python3" >&2; exit 1; }
quick=""
[ "$QUICK" = 1 ] && quick="--quick"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/qeil-fidelity-XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

echo "bench_fidelity: $Q, presets: $PRESETS ($TYPE), -t $THREADS -r $REPS --clock $CLOCK, platform $PLATFORM"
for p in $PRESETS; do
    m="$tmp/$p-$TYPE.gguf"
    "$Q" mkmodel --preset "$p" --type "$TYPE" -o "$m" >/dev/null 2>&1
    echo
    echo "== $p ($TYPE), load average before: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo n/a)"
    "$Q" calibrate -m "$m" --platform "$PLATFORM" -o "$tmp/cal-$p.json" -t "$THREADS" \
        -r "$REPS" --clock "$CLOCK" $quick --output json 2>/dev/null >"$tmp/$p.json"
    echo "   load average after: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo n/a)"
    python3 - "$tmp/$p.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
a = d["coefficients"]["after"]
print("   eta_compute %.4g  eta_mem %.4g  step_s %.3g s  op_s %.3g s  attn_pf_flop_s %.3g s"
      "  attn_dc_flop_s %.3g s" % (a["eta_compute"], a["eta_mem"], a["step_s"], a["op_s"],
                                    a["attn_pf_flop_s"], a["attn_dc_flop_s"]))
print("   %-5s %-4s %-8s %-8s %11s %11s %8s" % ("P", "N", "set", "phase", "measured s", "after s", "err %"))
for p in d["points"]:
    print("   %-5d %-4d %-8s %-8s %11.5f %11.5f %+8.1f" % (p["P"], p["N"], p["set"], p["phase"],
          p["measured_s"], p["after_s"], 100 * p["after_error"]))
PY
    cp "$tmp/$p.json" "${FIDELITY_KEEP:-$tmp}/fidelity-$p.json" 2>/dev/null || true
done
echo
echo "held-out median |error| (a fraction, before -> after calibration):"
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
