#!/bin/sh
# bench_serve.sh — `qeil serve` under load: throughput (answers/s, generated
# tokens/s) and latency percentiles at 1, 2, 4 and 8 concurrent clients,
# against one `qeil generate` at a time (a process per answer, the way a
# script without a server runs), with the energy per answer and its
# provenance (modeled here; measured where a CPU energy counter exists) and
# the mean decode batch the server ran (from /metrics). Greedy decoding, the
# same prompts in every row. Results: docs/benchmarks.md ("Serving").
#
# usage: sh bench/bench_serve.sh [QEIL]
# environment:
#   MODEL=models/qeil-demo.gguf  N_REQ=16 (answers per row)  MAX_TOKENS=48
#   THREADS=2  CLIENTS="1 2 4 8"  PARALLEL=8 (the server's --parallel)
# Needs python3. The server listens on 127.0.0.1, on a free port.
set -eu

Q=${1:-build/qeil}
MODEL=${MODEL:-models/qeil-demo.gguf}
N_REQ=${N_REQ:-16}
MAX_TOKENS=${MAX_TOKENS:-48}
THREADS=${THREADS:-2}
CLIENTS=${CLIENTS:-"1 2 4 8"}
PARALLEL=${PARALLEL:-8}
[ -x "$Q" ] || { echo "bench_serve: $Q is not an executable" >&2; exit 2; }
command -v python3 >/dev/null || { echo "bench_serve: needs python3" >&2; exit 1; }

exec python3 - "$Q" "$MODEL" "$N_REQ" "$MAX_TOKENS" "$THREADS" "$CLIENTS" "$PARALLEL" <<'EOF'
import http.client, json, os, re, signal, subprocess, sys, threading, time

Q, MODEL, N, MAXT, THREADS, CLIENTS, PARALLEL = sys.argv[1:8]
N, MAXT, PARALLEL = int(N), int(MAXT), int(PARALLEL)
CLIENTS = [int(c) for c in CLIENTS.split()]
QUESTIONS = []
with open("data/tasks/arith.jsonl") as f:
    for line in f:
        QUESTIONS.append("Q: " + json.loads(line)["question"] + "\nA:")
        if len(QUESTIONS) == N:
            break

def pct(xs, p):
    xs = sorted(xs)
    k = (len(xs) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)

rows = []

# ---- one `qeil generate` at a time: a process per answer ----
lat, toks = [], 0
t0 = time.time()
for q in QUESTIONS:
    a = time.time()
    r = subprocess.run([Q, "generate", "-m", MODEL, "-p", q, "-n", str(MAXT), "--temp", "0",
                        "-t", THREADS, "--output", "json"], capture_output=True, text=True)
    lat.append(time.time() - a)
    if r.returncode != 0:
        sys.exit("generate failed: " + r.stderr)
    toks += len(json.loads(r.stdout)["tokens"])
wall = time.time() - t0
rows.append(("generate, one at a time", 1, N, wall, toks, lat, None, None, "-"))

# ---- the server ----
p = subprocess.Popen([Q, "serve", "-m", MODEL, "--port", "0", "-t", THREADS,
                      "--parallel", str(PARALLEL), "--queue", str(4 * N)],
                     stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
port = None
for line in p.stderr:
    m = re.search(r"listening on http://127\.0\.0\.1:(\d+)/", line)
    if m:
        port = int(m.group(1))
        break
if not port:
    p.kill()
    sys.exit("the server did not start")
threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()

def req(method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    c.request(method, path, body=json.dumps(body) if body else None,
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    d = r.read().decode()
    c.close()
    return r.status, d

def metric(name):
    _, m = req("GET", "/metrics")
    x = re.search(r"^%s (\S+)$" % name, m, re.M)
    return float(x.group(1))

req("POST", "/v1/completions", {"prompt": "warm up", "max_tokens": 4, "temperature": 0})
for c in CLIENTS:
    todo = list(QUESTIONS)
    lock = threading.Lock()
    lat, toks, energy, prov = [], [0], [], set()
    def client():
        while True:
            with lock:
                if not todo:
                    return
                q = todo.pop(0)
            a = time.time()
            st, d = req("POST", "/v1/completions", {"prompt": q, "max_tokens": MAXT,
                                                    "temperature": 0})
            dt = time.time() - a
            if st != 200:
                sys.exit("request failed: %d %s" % (st, d))
            u = json.loads(d)["usage"]
            with lock:
                lat.append(dt)
                toks[0] += u["completion_tokens"]
                energy.append(u["energy_J"])
                prov.add(u["energy_provenance"])
    s0, q0 = metric("qeil_decode_steps_total"), metric("qeil_decode_step_sequences_total")
    t0 = time.time()
    ts = [threading.Thread(target=client) for _ in range(c)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    wall = time.time() - t0
    s1, q1 = metric("qeil_decode_steps_total"), metric("qeil_decode_step_sequences_total")
    batch = (q1 - q0) / (s1 - s0) if s1 > s0 else 0
    rows.append(("serve", c, N, wall, toks[0], lat, sum(energy) / len(energy),
                 "/".join(sorted(prov)), "%.2f" % batch))
# the generate row's answers are the same greedy tokens as serve's 1-client
# row, priced alone: the same modeled energy (generate reports no modeled J)
if len(rows) > 1 and rows[1][1] == 1:
    r0 = rows[0]
    rows[0] = r0[:6] + (rows[1][6], rows[1][7] + ", as serve alone", r0[8])
p.send_signal(signal.SIGTERM)
p.wait(timeout=60)

print("model %s, %d answers per row, max_tokens %d, greedy, -t %s, serve --parallel %d"
      % (os.path.basename(MODEL), N, MAXT, THREADS, PARALLEL))
print()
print("| mode | clients | answers/s | gen tok/s | p50 s | p90 s | p99 s | mean batch | energy/answer J |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
for name, c, n, wall, toks, lat, e, prov, batch in rows:
    es = "%.4g (%s)" % (e, prov) if e is not None else "-"
    print("| %s | %d | %.2f | %.1f | %.3f | %.3f | %.3f | %s | %s |"
          % (name, c, n / wall, toks / wall, pct(lat, 50), pct(lat, 90), pct(lat, 99), batch, es))
EOF
