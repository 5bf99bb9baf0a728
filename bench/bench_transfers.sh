#!/bin/sh
# bench_transfers.sh — transfers at unit boundaries of split placements,
# measured by the engine (qeil bench --output json: "transfers") against
# the planner's link model (src/energy/eval.c link_add and
# src/workload: a hidden state of d_model f32 per token per boundary; the
# prompt's K/V, P x 2 x kv_dim x 4 B per block, moved once to where the
# block decodes; each transfer pays bytes / link bw + the link's latency).
# The link is the profile's (PROFILE, default profiles/example-dgpu.json:
# ddr5 <-> vram, 25 GB/s, 10 us) between the pools of its two units, which
# the script names cpu (unit 0) and vk0 (unit 1).
#
# Bytes: the engine's count and the model's must agree exactly. Seconds:
# on Mesa lavapipe (Vulkan on the CPU, host-visible memory) a "transfer" is
# a memcpy through the host stage, so measured seconds say nothing about a
# PCIe link: the comparison is of the accounting, and of the order of
# magnitude only. Results: docs/benchmarks.md ("Transfers at unit
# boundaries").
#
# usage: sh bench/bench_transfers.sh [QEIL]
# environment: P=64 N=32 R=3 THREADS=2 PROFILE=profiles/example-dgpu.json
#   LAYERS=4 DIM=256 (mkmodel llama, f32, heads 8/4, ff 4 x DIM)
# Needs python3 and a Vulkan device (vk0).
set -eu

Q=${1:-build/qeil}
P=${P:-64}
N=${N:-32}
R=${R:-3}
THREADS=${THREADS:-2}
PROFILE=${PROFILE:-profiles/example-dgpu.json}
LAYERS=${LAYERS:-4}
DIM=${DIM:-256}
[ -x "$Q" ] || { echo "bench_transfers: $Q is not an executable" >&2; exit 2; }
command -v python3 >/dev/null || { echo "bench_transfers: needs python3" >&2; exit 1; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
"$Q" mkmodel --arch llama --layers "$LAYERS" --dim "$DIM" --heads 8 --kv-heads 4 \
    --ff $((4 * DIM)) --type f32 -o "$T/m.gguf" >/dev/null

exec python3 - "$Q" "$T/m.gguf" "$P" "$N" "$R" "$THREADS" "$PROFILE" "$LAYERS" "$DIM" <<'EOF'
import json, subprocess, sys

Q, M, P, N, R, TH, PROF, L, D = sys.argv[1:10]
P, N, R, L, D = int(P), int(N), int(R), int(L), int(D)
prof = json.load(open(PROF))
pool = {u['name']: u['pool'] for u in prof['units']}
u0, u1 = prof['units'][0]['name'], prof['units'][1]['name']
link = next(k for k in prof['links'] if {k['a'], k['b']} == {pool[u0], pool[u1]})
bw, lat = link['bw_Bps'], link['latency_s']
kv_dim = (D // 8) * 4            # head_dim x kv heads
hid = D * 4                      # f32 hidden state per token

def spec(pf, dc):
    f = lambda m: ','.join(f"{'emb' if u == 0 else 'head' if u == L + 1 else 'b%d' % (u - 1)}:{m[u]}" for u in range(L + 2))
    return f"prefill={f(pf)};decode={f(dc)}"

alt = ['cpu' if u % 2 == 0 else 'vk0' for u in range(L + 2)]
cases = [
    ('alternating units (both phases)', alt, alt),
    ('prefill vk0, decode cpu', ['vk0'] * (L + 2), ['cpu'] * (L + 2)),
    ('prefill cpu, decode vk0', ['cpu'] * (L + 2), ['vk0'] * (L + 2)),
]
print(f"model: llama f32, {L} blocks, d_model {D}, kv_dim {kv_dim}; P={P} N={N} R={R}; "
      f"link {link['a']}<->{link['b']} {bw/1e9:g} GB/s, {lat*1e6:g} us ({PROF})")
print("| placement | act B/decode token: engine | model | act ms/decode token: engine | model "
      "| KV B per request: engine | model | KV ms per request: engine | model |")
print("|---|---|---|---|---|---|---|---|---|")
for name, pf, dc in cases:
    out = subprocess.run([Q, 'bench', '-m', M, '-p', str(P), '-n', str(N), '-r', str(R), '-t', TH,
                          '--bw', '10', '--output', 'json', '--placement', spec(pf, dc)],
                         capture_output=True, text=True, check=True).stdout
    x = json.loads(out)['transfers']
    dcx = x['decode']
    # the planner: boundaries where consecutive units differ; each decode
    # step hands one hidden state over each (dc_out_B), one transfer each
    nb = sum(1 for u in range(1, L + 2) if dc[u] != dc[u - 1])
    m_act_B = nb * hid
    m_act_s = nb * (hid / bw + lat)
    # the prompt's KV of every block that decodes elsewhere, once per request
    nkv = sum(1 for u in range(1, L + 1) if pf[u] != dc[u])
    m_kv_B = nkv * P * 2 * kv_dim * 4
    m_kv_s = nkv * (P * 2 * kv_dim * 4 / bw + lat)
    # engine: R measured requests; decode rows = N per request
    e_act_B = dcx['act_B'] / max(dcx['rows'], 1)
    e_act_ms = 1e3 * dcx['act_s'] / max(dcx['rows'], 1)
    e_kv_B = x['kv_B'] / R
    e_kv_ms = 1e3 * x['kv_s'] / R
    print(f"| {name} | {e_act_B:g} | {m_act_B:g} | {e_act_ms:.4f} | {1e3*m_act_s:.4f} "
          f"| {e_kv_B:g} | {m_kv_B:g} | {e_kv_ms:.4f} | {1e3*m_kv_s:.4f} |")
EOF
