#!/bin/sh
# bench_gpu.sh — issue #11's GPU figure: decode tok/s of a Llama-3.2-1B-
# shaped model on each Vulkan GPU against that GPU's measured bandwidth
# bound (goal >= 0.70), and prefill against its measured matmul peak, for
# Q4_0 and Q8_0. The GPU's figures come from `qeil probe` run first (one
# unit per device, "device": "vkN"), which `qeil bench --placement all:vkN
# --profile` then uses (docs/cli.md "qeil bench", Roofline).
#
# usage: sh bench/bench_gpu.sh [QEIL]
# environment:
#   TYPES="q4_0 q8_0"  PRESET=llama-3.2-1b  P=512  N=64  REPS=3
#   ALLOW_CPU=1: also run on Vulkan devices of type "cpu" (lavapipe: a
#                check of the script, not a GPU figure)
# Prints one line per device and type; the JSON of each run stays in
# $OUT (default: a temporary directory, removed) when OUT is set.
# Needs python3 (to read the JSON). No Vulkan GPU: says so and exits 0.
set -eu

Q=${1:-build/qeil}
TYPES=${TYPES:-"q4_0 q8_0"}
PRESET=${PRESET:-llama-3.2-1b}
P=${P:-512}
N=${N:-64}
REPS=${REPS:-3}
ALLOW_CPU=${ALLOW_CPU:-0}
[ -x "$Q" ] || { echo "bench_gpu: $Q is not an executable" >&2; exit 2; }
command -v python3 >/dev/null || { echo "bench_gpu: needs python3" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/qeil-gpu-XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
keep=${OUT:-}

"$Q" devices --output json >"$tmp/devices.json"
devs=$(python3 - "$tmp/devices.json" "$ALLOW_CPU" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
ok = ("discrete", "integrated", "virtual") + (("cpu",) if sys.argv[2] == "1" else ())
print(" ".join(x["id"] for x in d["devices"]
               if x.get("backend") == "vulkan" and x.get("runs_units") and x.get("type") in ok))
PY
)
if [ -z "$devs" ]; then
    echo "bench_gpu: no Vulkan GPU here (qeil devices: $(python3 -c \
'import json,sys; d=json.load(open(sys.argv[1])); print(d.get("vulkan_unavailable") or ", ".join(x["id"]+" "+x.get("type","") for x in d["devices"]))' \
"$tmp/devices.json")); nothing to measure"
    exit 0
fi

echo "bench_gpu: $Q, devices: $devs; $PRESET ($TYPES), -p $P -n $N -r $REPS"
"$Q" probe -o "$tmp/probe.json" >/dev/null
for t in $TYPES; do
    m="$tmp/$PRESET-$t.gguf"
    "$Q" mkmodel --preset "$PRESET" --type "$t" -o "$m" >/dev/null 2>&1
    for d in $devs; do
        "$Q" bench -m "$m" -p "$P" -n "$N" -r "$REPS" --profile "$tmp/probe.json" \
            --placement "all:$d" --output json 2>/dev/null >"$tmp/$d-$t.json"
        python3 - "$tmp/$d-$t.json" "$d" "$t" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
dc, pf, bw = j["decode"], j["prefill"], j["bandwidth"]
pk = pf.get("peak_frac")
print("  %-5s %-5s decode %8.1f tok/s = %.2f of the %.1f GB/s bound (goal 0.70)   "
      "prefill %8.1f tok/s = %s of %s peak   [%s]" % (
      sys.argv[2], sys.argv[3], dc["tok_per_s"], dc["ratio"], bw["bw_Bps"] / 1e9,
      pf["tok_per_s"], "%.2f" % pk if pk is not None else "n/a", pf.get("peak_dtype", "?"),
      bw["source"]))
PY
    done
done
[ -z "$keep" ] || { mkdir -p "$keep" && cp "$tmp"/*.json "$keep"/; }
