#!/usr/bin/env python3
"""serve_test.py — `qeil serve` end to end (issue #19), run by
tests/serve_test.sh with the qeil binary of a build directory.

Against 127.0.0.1 only, on a port the server picks (--port 0, read from its
stderr); bounded: every request has a timeout, every server a deadline. A
tiny random-weight model (`qeil mkmodel`) and the committed demo model
(models/qeil-demo.gguf, for the cascade) serve the requests.

  options      --help, bad options exit 2 naming the option
  shapes       /health, /v1/models, /v1/completions, /v1/chat/completions in
               OpenAI's shapes (python3 http.client, and curl when present);
               usage carries energy_J, avg_power_W, provenance, placement
  stream       stream: true parsed as server-sent events: role, deltas,
               running energy, finish, usage, [DONE]; the streamed text equals
               the whole response's (greedy)
  concurrent   6 clients at once (--parallel 4) get the outputs of 6
               sequential requests (greedy), and decode steps held several
               sequences (the batch)
  cascade      n samples with "selection": "cascade": the selected answer,
               samples drawn below n, energy saved > 0
  hostile      malformed JSON, wrong types (400 naming the field), unknown
               fields ignored, body over the limit (413, by Content-Length
               and chunked), 404, 405, a prompt over the context, API key
               (401 missing/wrong, 200 right), 429 with Retry-After, a client
               that disconnects mid-stream (generation stops: the disconnect
               counter, nothing running after), a slow client (closed after
               --timeout while others are served); the server stays up
  metrics      the Prometheus names and HELP lines
  page         / in headless Chromium: one message sent, a streamed answer
               with its energy shown (SKIP without chromium)
  shutdown     SIGTERM: exit 0; no sanitizer report in any server's stderr
"""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/qeil")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(ROOT, "models", "qeil-demo.gguf")
SANITIZED = os.path.basename(os.path.dirname(BIN)).startswith("build-asan")
T_REQ = 120 if SANITIZED else 60  # seconds per request at most

results = {"pass": 0, "fail": 0}
tmp = tempfile.mkdtemp(prefix="qeil-serve-")
servers = []


def report(name, ok, why=""):
    if ok is None:
        print("SKIP %s: %s" % (name, why))
    elif ok:
        print("PASS %s" % name)
        results["pass"] += 1
    else:
        print("FAIL %s: %s" % (name, why))
        results["fail"] += 1
    sys.stdout.flush()


class Check(Exception):
    pass


def check(cond, why):
    if not cond:
        raise Check(why)


def run_test(name, fn):
    try:
        r = fn()
        if isinstance(r, str):
            report(name, None, r)
        else:
            report(name, True)
    except Check as e:
        report(name, False, str(e))
    except Exception as e:  # a crash of the test is a failure too
        report(name, False, "%s: %s" % (type(e).__name__, e))


# ---------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------


class Server:
    def __init__(self, model, *args, env=None):
        self.err = []
        cmd = [BIN, "serve", "-m", model, "--port", "0", "-t", "2"] + list(args)
        e = dict(os.environ)
        e.update(env or {})
        self.p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True, errors="replace", env=e)
        servers.append(self)
        self.port = None
        deadline = time.time() + T_REQ
        while time.time() < deadline:
            line = self.p.stderr.readline()
            if not line:
                break
            self.err.append(line)
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)/", line)
            if m:
                self.port = int(m.group(1))
                break
        if self.port is None:
            self.p.kill()
            raise Check("server did not start: %s" % "".join(self.err))
        self.t = threading.Thread(target=self._drain, daemon=True)
        self.t.start()

    def _drain(self):
        for line in self.p.stderr:
            self.err.append(line)

    def conn(self, timeout=T_REQ):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, raw=None):
        c = self.conn()
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        text = r.read().decode("utf-8")
        c.close()
        try:
            j = json.loads(text)
        except ValueError:
            j = None
        return r.status, j, text, r

    def post(self, path, body, **kw):
        return self.request("POST", path, body, **kw)

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=T_REQ)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
                return -1
        self.t.join(timeout=5)
        return self.p.returncode

    def sanitizer_report(self):
        e = "".join(self.err)
        return "Sanitizer" in e or "runtime error:" in e


def sse_events(resp):
    """The data: payloads of a text/event-stream response, in order."""
    events, buf = [], b""
    while True:
        chunk = resp.read1(4096) if hasattr(resp, "read1") else resp.read(4096)
        if not chunk:
            break
        buf += chunk
        while b"\n\n" in buf:
            ev, buf = buf.split(b"\n\n", 1)
            for line in ev.decode("utf-8").split("\n"):
                if line.startswith("data: "):
                    events.append(line[6:])
    return events


def stream(srv, path, body):
    c = srv.conn()
    c.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
    r = c.getresponse()
    check(r.status == 200, "stream: status %d" % r.status)
    check(r.getheader("Content-Type", "").startswith("text/event-stream"),
          "stream: Content-Type %s" % r.getheader("Content-Type"))
    ev = sse_events(r)
    c.close()
    return ev


def check_usage(u, what):
    for k in ("prompt_tokens", "completion_tokens", "total_tokens", "energy_J", "avg_power_W",
              "energy_provenance", "power_provenance", "placement"):
        check(k in u, "%s: usage has no '%s': %s" % (what, k, u))
    check(u["energy_provenance"] in ("modeled", "measured"), "%s: provenance %s" %
          (what, u["energy_provenance"]))
    check(isinstance(u["energy_J"], float) and u["energy_J"] > 0, "%s: energy_J %s" %
          (what, u["energy_J"]))
    check(u["avg_power_W"] > 0, "%s: avg_power_W %s" % (what, u["avg_power_W"]))
    p = u["placement"]
    for k in ("ran_on", "platform", "plan", "prefill", "decode"):
        check(k in p, "%s: placement has no '%s'" % (what, k))
    check(u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"], "%s: totals" % what)


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------

TINY = os.path.join(tmp, "tiny.gguf")
LONG = os.path.join(tmp, "long.gguf")


def t_options():
    r = subprocess.run([BIN, "serve", "--help"], capture_output=True, text=True, timeout=30)
    check(r.returncode == 0 and "usage: qeil serve" in r.stdout, "--help: %d %s" %
          (r.returncode, r.stdout[:200]))
    for args, say in ((["-m", TINY, "--parallel", "0"], "--parallel"),
                      (["-m", TINY, "--port", "70000"], "--port"),
                      (["-m", TINY, "--plan", "magic"], "--plan"),
                      (["-m", TINY, "--max-body", "0"], "--max-body"),
                      (["-m", TINY, "--queue", "x"], "--queue"),
                      (["-m", TINY, "--api-key", ""], "--api-key"),
                      (["--port", "1"], "-m FILE is required"),
                      (["-m", TINY, "--frob"], "--frob")):
        r = subprocess.run([BIN, "serve"] + args, capture_output=True, text=True, timeout=30)
        check(r.returncode == 2 and say in r.stderr, "%s: exit %d, stderr %s" %
              (args, r.returncode, r.stderr))
    r = subprocess.run([BIN, "serve", "-m", os.path.join(tmp, "missing.gguf"), "--port", "0"],
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 1 and "missing.gguf" in r.stderr, "missing model: %d %s" %
          (r.returncode, r.stderr))


def t_shapes(srv):
    st, j, _, _ = srv.request("GET", "/health")
    check(st == 200 and j["status"] == "ok", "health: %d %s" % (st, j))
    st, j, _, _ = srv.request("GET", "/v1/models")
    check(st == 200 and j["object"] == "list" and j["data"][0]["id"] == "tiny.gguf",
          "models: %d %s" % (st, j))
    st, j, text, _ = srv.post("/v1/completions", {"model": "tiny.gguf", "prompt": "Hello",
                                                  "max_tokens": 6, "temperature": 0})
    check(st == 200, "completions: %d %s" % (st, text))
    check(j["object"] == "text_completion" and j["id"].startswith("cmpl-"), "object: %s" % j)
    ch = j["choices"][0]
    check(isinstance(ch["text"], str) and ch["finish_reason"] in ("stop", "length"),
          "choice: %s" % ch)
    check_usage(j["usage"], "completions")
    check(j["usage"]["completion_tokens"] <= 6, "max_tokens: %s" % j["usage"])
    st, j, text, _ = srv.post("/v1/chat/completions", {
        "model": "tiny.gguf", "max_tokens": 5, "temperature": 0,
        "messages": [{"role": "system", "content": "Be brief."},
                     {"role": "user", "content": [{"type": "text", "text": "Hi"}]}]})
    check(st == 200, "chat: %d %s" % (st, text))
    check(j["object"] == "chat.completion", "chat object: %s" % j)
    m = j["choices"][0]["message"]
    check(m["role"] == "assistant" and isinstance(m["content"], str), "message: %s" % m)
    check(j["qeil"]["prompt_format"] == "fallback", "prompt_format: %s" % j.get("qeil"))
    check_usage(j["usage"], "chat")
    # the fallback format: "system: Be brief.\nuser: Hi\nassistant:" is 38 bytes
    check(j["usage"]["prompt_tokens"] >= 2, "chat prompt tokens: %s" % j["usage"])
    if shutil.which("curl"):
        r = subprocess.run(["curl", "-s", "-S", "--max-time", str(T_REQ),
                            "http://127.0.0.1:%d/v1/completions" % srv.port,
                            "-H", "Content-Type: application/json",
                            "-d", json.dumps({"prompt": "Hello", "max_tokens": 6,
                                              "temperature": 0})],
                           capture_output=True, text=True, timeout=T_REQ + 10)
        cj = json.loads(r.stdout)
        # greedy: curl gets what http.client got
        st2, j2, _, _ = srv.post("/v1/completions", {"prompt": "Hello", "max_tokens": 6,
                                                     "temperature": 0})
        check(cj["choices"][0]["text"] == j2["choices"][0]["text"], "curl: %s vs %s" %
              (cj["choices"][0], j2["choices"][0]))


def t_stream(srv):
    for path, body, key in (
            ("/v1/completions", {"prompt": "Hello", "max_tokens": 8, "temperature": 0}, "text"),
            ("/v1/chat/completions", {"messages": [{"role": "user", "content": "Hello"}],
                                      "max_tokens": 8, "temperature": 0}, "content")):
        st, whole, text, _ = srv.post(path, body)
        check(st == 200, "%s: %d %s" % (path, st, text))
        b = dict(body, stream=True)
        ev = stream(srv, path, b)
        check(ev and ev[-1] == "[DONE]", "%s: last event %s" % (path, ev[-1:] if ev else ev))
        chunks = [json.loads(e) for e in ev[:-1]]
        got, energies, finish, usage = "", [], None, None
        for c in chunks:
            if c.get("usage"):
                usage = c["usage"]
                check(c["choices"] == [], "usage chunk has choices: %s" % c)
                continue
            ch = c["choices"][0]
            if key == "text":
                got += ch["text"]
            else:
                got += ch["delta"].get("content", "")
            if ch["finish_reason"]:
                finish = ch["finish_reason"]
            if "qeil" in c:
                energies.append(c["qeil"]["energy_J"])
        if key == "content":
            check(chunks[0]["choices"][0]["delta"].get("role") == "assistant",
                  "first chat chunk: %s" % chunks[0])
            check(chunks[0]["object"] == "chat.completion.chunk", "object %s" % chunks[0])
            want = whole["choices"][0]["message"]["content"]
        else:
            want = whole["choices"][0]["text"]
        check(got == want, "%s: streamed %r, whole %r" % (path, got, want))
        check(finish == whole["choices"][0]["finish_reason"], "finish %s" % finish)
        check(usage is not None, "%s: no usage chunk" % path)
        check_usage(usage, path + " stream")
        check(energies and all(b >= a for a, b in zip(energies, energies[1:])),
              "running energy not rising: %s" % energies)
        check(abs(usage["energy_J"] - whole["usage"]["energy_J"]) <= 1e-9 * whole["usage"]["energy_J"]
              or usage["energy_provenance"] == "measured",
              "stream energy %s, whole %s" % (usage["energy_J"], whole["usage"]["energy_J"]))


PROMPTS = ["Hello", "The cat", "Once upon a time", "1 2 3", "qeil serves", "A B C D E"]


def metric(text, name):
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    return float(m.group(1)) if m else None


def t_concurrent(srv):
    body = lambda p: {"prompt": p, "max_tokens": 12, "temperature": 0}
    seq, seq_e, par_u = {}, {}, {}
    for p in PROMPTS:
        st, j, text, _ = srv.post("/v1/completions", body(p))
        check(st == 200, "sequential %r: %d %s" % (p, st, text))
        seq[p] = j["choices"][0]["text"]
        seq_e[p] = j["usage"]["energy_J"]
    _, _, m0, _ = srv.request("GET", "/metrics")
    par, errs = {}, []

    def client(p):
        try:
            st, j, text, _ = srv.post("/v1/completions", body(p))
            if st != 200:
                errs.append("%r: %d %s" % (p, st, text))
            else:
                par[p] = j["choices"][0]["text"]
                par_u[p] = j["usage"]
        except Exception as e:
            errs.append("%r: %s" % (p, e))

    ts = [threading.Thread(target=client, args=(p,)) for p in PROMPTS]
    for t in ts:
        t.start()
    for t in ts:
        t.join(T_REQ)
    check(not errs, "concurrent: %s" % errs)
    for p in PROMPTS:
        check(par.get(p) == seq[p], "%r: concurrent %r, sequential %r" % (p, par.get(p), seq[p]))
    _, _, m1, _ = srv.request("GET", "/metrics")
    steps = metric(m1, "qeil_decode_steps_total") - metric(m0, "qeil_decode_steps_total")
    seqs = (metric(m1, "qeil_decode_step_sequences_total")
            - metric(m0, "qeil_decode_step_sequences_total"))
    # 6 requests of 11 decode steps each: alone that is 66 steps of one sequence
    check(steps > 0 and seqs / steps > 1.0, "no batching: %s sequences in %s steps" %
          (seqs, steps))
    # batched answers are priced as their share of the batch (weights read
    # once per step): cheaper than the same answer alone, never dearer
    batched = [p for p in PROMPTS if par_u[p]["decode_batch_mean"] > 1.5]
    check(batched, "no request decoded in a batch: %s" % [par_u[p]["decode_batch_mean"]
                                                          for p in PROMPTS])
    for p in PROMPTS:
        check(par_u[p]["energy_J"] <= seq_e[p] * (1 + 1e-12),
              "%r: batched %s J > alone %s J" % (p, par_u[p]["energy_J"], seq_e[p]))
    check(any(par_u[p]["energy_J"] < seq_e[p] for p in batched), "batching saved nothing")
    # the decode batch is a PGSAM decision per load: the loads this run went
    # through (its requests joined and left one by one) were planned, each
    # plan's batch within 1..load, and every answer says which plan it ran on
    replans = metric(m1, "qeil_plan_replans_total")
    check(replans is not None and replans >= 1, "no load re-plan: %s" % replans)
    planned = re.findall(r'^qeil_planned_decode_batch\{load="(\d+)"\} (\d+)$', m1, re.M)
    check(len(planned) >= 2, "planned loads: %s" % planned)
    for load, b in planned:
        check(1 <= int(b) <= int(load), "load %s planned batch %s" % (load, b))
    check(metric(m1, "qeil_plan_replan_seconds_total") > 0, "re-plan time")
    for p in PROMPTS:
        pl = par_u[p]["placement"]
        check(pl["batch_source"] in ("the PGSAM plan for this load",
                                     "the start plan (this load not planned yet)")
              and 1 <= pl["plan_batch"] <= 4 and pl["decode_load_mean"] >= 1,
              "%r placement: %s" % (p, pl))


def t_cascade(srv):
    q = "Q: Ola buys 9 bags of 8 marbles and 37 more marbles. How many marbles in all?\nA:"
    st, j, text, _ = srv.post("/v1/completions", {"prompt": q, "max_tokens": 128, "n": 8,
                                                  "selection": "cascade", "seed": 1,
                                                  "temperature": 0.8})
    check(st == 200, "cascade: %d %s" % (st, text))
    u = j["usage"]
    check_usage(u, "cascade")
    s = u["selection"]
    check(s["method"] == "cascade" and s["samples_requested"] == 8, "selection: %s" % s)
    check(1 <= s["samples_drawn"] < 8, "samples drawn: %s" % s)
    check(s["answer"] == "109", "answer: %s" % s)
    check("#### 109" in j["choices"][0]["text"], "text: %r" % j["choices"][0]["text"])
    check(s["energy_saved_J"] > 0 and s["energy_all_n_modeled_J"] > u["energy_J"],
          "energy saved: %s (used %s)" % (s, u["energy_J"]))
    # repeated sampling cannot stream: the answer is known at the end
    st, j, _, _ = srv.post("/v1/completions", {"prompt": q, "n": 4, "stream": True})
    check(st == 400 and j["error"]["param"] == "stream", "n + stream: %d %s" % (st, j))
    st, j, _, _ = srv.post("/v1/completions", {"prompt": q, "n": 2, "selection": "vote"})
    check(st == 400 and j["error"]["param"] == "selection", "bad selection: %d %s" % (st, j))
    _, _, m, _ = srv.request("GET", "/metrics")
    check(metric(m, "qeil_cascade_samples_saved_total") >= 8 - s["samples_drawn"],
          "samples saved metric")


def t_hostile(srv):
    P = "/v1/completions"
    cases = [
        (None, "{not json", None),
        (None, "[1, 2]", None),
        (None, "", None),
        ({"prompt": 5}, None, "prompt"),
        ({}, None, "prompt"),
        ({"prompt": "x", "max_tokens": "12"}, None, "max_tokens"),
        ({"prompt": "x", "max_tokens": 0}, None, "max_tokens"),
        ({"prompt": "x", "max_tokens": 1.5}, None, "max_tokens"),
        ({"prompt": "x", "temperature": -1}, None, "temperature"),
        ({"prompt": "x", "top_p": 0}, None, "top_p"),
        ({"prompt": "x", "stream": "yes"}, None, "stream"),
        ({"prompt": "x", "seed": -3}, None, "seed"),
        ({"prompt": "x", "n": 1000}, None, "n"),
        ({"prompt": "x", "stop": [1]}, None, "stop[0]"),
        ({"prompt": "x", "stop": ["a", "b", "c", "d", "e"]}, None, "stop"),
        ({"prompt": "x", "model": 3}, None, "model"),
        ({"prompt": "x", "top_k": 100000}, None, "top_k"),
    ]
    for body, raw, param in cases:
        st, j, text, _ = srv.post(P, body, raw=raw)
        check(st == 400 and j and "error" in j, "%s: %d %s" % (body or raw, st, text))
        if param:
            check(j["error"]["param"] == param and param.split("[")[0] in j["error"]["message"],
                  "%s: param %s" % (body, j["error"]))
    C = "/v1/chat/completions"
    for body, param in (({"messages": "hi"}, "messages"),
                        ({"messages": []}, "messages"),
                        ({"messages": [5]}, "messages[0]"),
                        ({"messages": [{"role": 5, "content": "x"}]}, "messages[0].role"),
                        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
                        ({"messages": [{"role": "user"}]}, "messages[0].content"),
                        ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
                         "messages[0].content")):
        st, j, text, _ = srv.post(C, body)
        check(st == 400 and j["error"]["param"] == param, "%s: %d %s" % (body, st, text))
    # unknown fields are ignored
    st, j, text, _ = srv.post(P, {"prompt": "x", "max_tokens": 2, "frobnicate": {"a": [1]},
                                  "logit_bias": {}, "user": "u"})
    check(st == 200, "unknown fields: %d %s" % (st, text))
    # a prompt over the context (-c 64 on this server)
    st, j, text, _ = srv.post(P, {"prompt": "word " * 200, "max_tokens": 2})
    check(st == 400 and j["error"]["param"] == "prompt" and "context" in j["error"]["message"],
          "long prompt: %d %s" % (st, text))
    # routing
    st, j, _, _ = srv.request("GET", "/v2/nothing")
    check(st == 404, "404: %d" % st)
    st, j, _, r = srv.request("GET", P)
    check(st == 405 and r.getheader("Allow") == "POST", "405: %d" % st)
    st, j, _, _ = srv.request("DELETE", "/health")
    check(st == 405, "405 health: %d" % st)
    # bodies over --max-body 2000: by Content-Length, and chunked
    big = json.dumps({"prompt": "x" * 5000})
    st, j, text, _ = srv.post(P, None, raw=big)
    check(st == 413 and "--max-body" in j["error"]["message"], "413: %d %s" % (st, text))
    c = srv.conn()
    c.putrequest("POST", P)
    c.putheader("Content-Type", "application/json")
    c.putheader("Transfer-Encoding", "chunked")
    c.endheaders()
    for k in range(0, len(big), 1000):
        part = big[k:k + 1000].encode()
        c.send(b"%x\r\n%s\r\n" % (len(part), part))
    c.send(b"0\r\n\r\n")
    r = c.getresponse()
    r.read()
    check(r.status == 413, "chunked 413: %d" % r.status)
    c.close()
    # invalid UTF-8 and control bytes in the prompt: an answer, valid JSON
    st, j, text, _ = srv.post(P, None, raw=b'{"prompt": "\xff\xfe\x01 ok", "max_tokens": 3}')
    check(st == 200 and j is not None, "bytes: %d %s" % (st, text))
    st, j, _, _ = srv.request("GET", "/health")
    check(st == 200, "alive after the hostile requests")


def t_api_key():
    srv = Server(TINY, "--api-key", "s3cret-key")
    try:
        api_key_checks(srv)
    finally:
        check(srv.stop() == 0, "exit")
        check(not srv.sanitizer_report(), "sanitizer: %s" % "".join(srv.err))
    # the same key from the environment (kept out of the process list)
    os.environ["QEIL_API_KEY"] = "s3cret-key"
    try:
        srv = Server(TINY)
    finally:
        del os.environ["QEIL_API_KEY"]
    try:
        api_key_checks(srv)
    finally:
        check(srv.stop() == 0, "exit")


def api_key_checks(srv):
    if True:
        body = {"prompt": "x", "max_tokens": 2}
        st, j, _, r = srv.post("/v1/completions", body)
        check(st == 401 and r.getheader("WWW-Authenticate") == "Bearer", "missing: %d" % st)
        for h in ("Bearer s3cret-kex", "Bearer s3cret-key2", "Bearer s3cret", "s3cret-key",
                  "Bearer "):
            st, j, _, _ = srv.post("/v1/completions", body, headers={"Authorization": h})
            check(st == 401 and j["error"]["type"] == "authentication_error", "%r: %d" % (h, st))
        st, j, text, _ = srv.post("/v1/completions", body,
                                  headers={"Authorization": "Bearer s3cret-key"})
        check(st == 200, "right key: %d %s" % (st, text))
        st, _, _, _ = srv.request("GET", "/metrics")
        check(st == 401, "metrics without key: %d" % st)
        st, _, _, _ = srv.request("GET", "/health")
        check(st == 200, "health is open: %d" % st)


def t_cascade_beside_streams():
    """A cascade request decodes its samples in the slots the running
    streams leave free, in the same engine steps: a stream that runs
    alongside gets the text it gets alone, with a mean decode batch above
    one (only the cascade's samples can have joined it), and the cascade
    selects what it selects alone."""
    srv = Server(LONG, "--parallel", "4", "-c", "2048")
    try:
        sbody = {"prompt": "Hello", "max_tokens": 600, "temperature": 0}
        cbody = {"prompt": "Q: 2 + 2?\nA:", "max_tokens": 8, "n": 4, "selection": "cascade",
                 "seed": 3, "temperature": 0.9}
        st, j, text, _ = srv.post("/v1/completions", sbody)
        check(st == 200, "stream alone: %d %s" % (st, text))
        s_alone = j["choices"][0]["text"]
        st, j, text, _ = srv.post("/v1/completions", cbody)
        check(st == 200, "cascade alone: %d %s" % (st, text))
        c_alone = (j["choices"][0]["text"], j["usage"]["selection"]["samples_drawn"])
        # the stream first (read until it has begun), then the cascade
        c = srv.conn()
        sb = dict(sbody)
        sb["stream"] = True
        c.request("POST", "/v1/completions", body=json.dumps(sb),
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        check(r.status == 200, "stream: %d" % r.status)
        buf = r.read1(100) if hasattr(r, "read1") else r.read(100)
        st, j, text, _ = srv.post("/v1/completions", cbody)
        check(st == 200, "cascade beside the stream: %d %s" % (st, text))
        check((j["choices"][0]["text"], j["usage"]["selection"]["samples_drawn"]) == c_alone,
              "cascade beside the stream %r, alone %r" %
              ((j["choices"][0]["text"], j["usage"]["selection"]["samples_drawn"]), c_alone))
        buf += r.read()
        c.close()
        pieces, usage = [], None
        for line in buf.decode("utf-8").split("\n"):
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            ev = json.loads(line[6:])
            if ev.get("choices"):
                pieces.append(ev["choices"][0].get("text", ""))
            if ev.get("usage"):
                usage = ev["usage"]
        check("".join(pieces) == s_alone, "stream beside the cascade differs from alone")
        check(usage is not None and usage["decode_batch_mean"] > 1.0,
              "the stream shared no step with the cascade: %s" %
              (usage and usage["decode_batch_mean"]))
    finally:
        check(srv.stop() == 0, "exit")


def t_busy_disconnect_slow():
    # a context of 8192: 5000 tokens take seconds, the client leaves before
    srv = Server(LONG, "--parallel", "1", "--queue", "0", "--timeout", "2", "-c", "8192")
    try:
        # a long stream holds the one sequence; read a little, then the 429
        c = srv.conn()
        c.request("POST", "/v1/completions",
                  body=json.dumps({"prompt": "Hello", "max_tokens": 5000, "stream": True,
                                   "temperature": 0}),
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        check(r.status == 200, "long stream: %d" % r.status)
        first = r.read1(200) if hasattr(r, "read1") else r.read(200)
        check(first.startswith(b"data: "), "first bytes %r" % first)
        st, j, _, r2 = srv.post("/v1/completions", {"prompt": "x", "max_tokens": 2})
        check(st == 429 and r2.getheader("Retry-After", "").isdigit(),
              "429: %d %s" % (st, r2.getheader("Retry-After")))
        # the client goes away mid-stream: generation stops
        c.sock.shutdown(socket.SHUT_RDWR)
        c.close()
        deadline = time.time() + T_REQ
        while time.time() < deadline:
            _, h, _, _ = srv.request("GET", "/health")
            if h["running"] == 0:
                break
            time.sleep(0.1)
        check(h["running"] == 0, "still running after the disconnect: %s" % h)
        _, _, m, _ = srv.request("GET", "/metrics")
        check(metric(m, "qeil_client_disconnects_total") == 1, "disconnects: %s" %
              metric(m, "qeil_client_disconnects_total"))
        gen = metric(m, "qeil_generated_tokens_total")
        check(gen < 5000, "generated %s tokens: did not stop" % gen)
        # the same for a whole (non-stream) response
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=T_REQ)
        # greedy: no EOS on these weights (a random draw could end it early)
        b = json.dumps({"prompt": "Hello", "max_tokens": 5000, "temperature": 0}).encode()
        s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                  b"\r\nContent-Length: %d\r\n\r\n%s" % (len(b), b))
        time.sleep(0.3)
        s.close()
        deadline = time.time() + T_REQ
        while time.time() < deadline:
            _, _, m, _ = srv.request("GET", "/metrics")
            if metric(m, "qeil_client_disconnects_total") == 2:
                break
            time.sleep(0.1)
        check(metric(m, "qeil_client_disconnects_total") == 2, "whole-response disconnect")
        check(metric(m, "qeil_generated_tokens_total") < 10000, "did not stop: %s tokens" %
              metric(m, "qeil_generated_tokens_total"))
        # a slow client: half a request line, then nothing; closed after --timeout 2
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=T_REQ)
        s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Le")
        t0 = time.time()
        st, _, _, _ = srv.post("/v1/completions", {"prompt": "x", "max_tokens": 2})
        check(st == 200, "served while a slow client waits: %d" % st)
        s.settimeout(T_REQ)
        got = s.recv(100)
        waited = time.time() - t0
        s.close()
        check(got == b"" and 1.0 <= waited < 30, "slow client: %r after %.1f s" % (got, waited))
        st, _, _, _ = srv.request("GET", "/health")
        check(st == 200, "alive")
    finally:
        check(srv.stop() == 0, "exit")
        check(not srv.sanitizer_report(), "sanitizer: %s" % "".join(srv.err))


def t_plan_file():
    plan = os.path.join(tmp, "plan.json")
    with open(plan, "w") as f:
        r = subprocess.run([BIN, "plan", "-m", TINY, "--prompt-tokens", "16", "--output", "json"],
                           stdout=f, stderr=subprocess.PIPE, text=True, timeout=120)
    check(r.returncode == 0, "qeil plan: %s" % r.stderr)
    doc = json.load(open(plan))
    want = doc["front"][doc["recommended"]]
    srv = Server(TINY, "--plan", plan)
    try:
        st, j, text, _ = srv.post("/v1/completions", {"prompt": "Hi", "max_tokens": 3})
        check(st == 200, "with --plan FILE: %d %s" % (st, text))
        pl = j["usage"]["placement"]
        check(pl["plan"] == plan and pl["prefill"] == want["prefill_map"].replace(" ", ",") and
              pl["decode"] == want["decode_map"].replace(" ", ","),
              "placement %s, file %s / %s" % (pl, want["prefill_map"], want["decode_map"]))
    finally:
        check(srv.stop() == 0, "exit")
    # a plan whose decode batch is 2 caps every step at 2 sequences: four
    # concurrent requests decode in calls of at most 2, with the texts they
    # get alone
    doc["front"][doc["recommended"]]["batch"] = 2
    plan2 = os.path.join(tmp, "plan-b2.json")
    with open(plan2, "w") as f:
        json.dump(doc, f)
    srv = Server(TINY, "--plan", plan2, "--parallel", "4")
    try:
        body = lambda p: {"prompt": p, "max_tokens": 10, "temperature": 0}
        alone = {}
        for p in PROMPTS[:4]:
            st, j, text, _ = srv.post("/v1/completions", body(p))
            check(st == 200, "alone %r: %d %s" % (p, st, text))
            alone[p] = j["choices"][0]["text"] if st == 200 else None
        _, _, m0, _ = srv.request("GET", "/metrics")
        got, errs = {}, []

        def client(p):
            try:
                st, j, text, _ = srv.post("/v1/completions", body(p))
                if st == 200:
                    got[p] = j["choices"][0]["text"]
                else:
                    errs.append("%r: %d %s" % (p, st, text))
            except Exception as e:
                errs.append("%r: %s" % (p, e))

        ts = [threading.Thread(target=client, args=(p,)) for p in PROMPTS[:4]]
        for t in ts:
            t.start()
        for t in ts:
            t.join(T_REQ)
        check(not errs, "batch-2 plan: %s" % errs)
        for p in PROMPTS[:4]:
            check(got.get(p) == alone[p], "%r: batch-2 %r, alone %r" % (p, got.get(p), alone[p]))
        _, _, m1, _ = srv.request("GET", "/metrics")
        steps = metric(m1, "qeil_decode_steps_total") - metric(m0, "qeil_decode_steps_total")
        seqs = (metric(m1, "qeil_decode_step_sequences_total")
                - metric(m0, "qeil_decode_step_sequences_total"))
        check(steps > 0 and 1.0 < seqs / steps <= 2.0, "batch-2 plan: %s sequences in %s steps"
              % (seqs, steps))
        check(re.search(r'^qeil_planned_decode_batch\{load="any"\} 2$', m1, re.M),
              "planned batch line")
        check(metric(m1, "qeil_plan_replans_total") == 0, "a file plan is not re-planned")
    finally:
        check(srv.stop() == 0, "exit")
    r = subprocess.run([BIN, "serve", "-m", TINY, "--port", "0", "--plan", plan, "--platform",
                        "jetson-orin-nano-super-15w"], capture_output=True, text=True, timeout=60)
    check(r.returncode == 1 and "made for platform" in r.stderr, "other platform: %d %s" %
          (r.returncode, r.stderr))


def t_fault_recovered():
    """A device failing mid-answer (QEIL_FAULT on the second CPU unit): its
    units move to the other, the answer is the one a fault-free server gives,
    its usage lists the recovery and /metrics counts it."""
    place = ["--placement", "emb..b0:cpu,b1..head:cpu1"]
    body = {"prompt": "Hello", "max_tokens": 12, "temperature": 0}
    ref = Server(TINY, *place)
    try:
        st, j, text, _ = ref.post("/v1/completions", body)
        check(st == 200, "fault-free: %d %s" % (st, text))
        want = j["choices"][0]["text"]
        check(j["usage"]["recoveries"] == [] and
              j["usage"]["placement"]["ran_on"] == "emb..b0:cpu,b1..head:cpu1",
              "fault-free usage: %s" % j["usage"])
    finally:
        check(ref.stop() == 0, "exit")
    srv = Server(TINY, *place, env={"QEIL_FAULT": "cpu1:error:40"})
    try:
        st, j, text, _ = srv.post("/v1/completions", body)
        check(st == 200, "with a fault: %d %s" % (st, text))
        check(j["choices"][0]["text"] == want, "recovered %r, fault-free %r" %
              (j["choices"][0]["text"], want))
        rec = j["usage"]["recoveries"]
        check(len(rec) == 1 and rec[0]["device"] == "cpu1" and rec[0]["cause"] == "error" and
              rec[0]["op"] == 40 and rec[0]["units_moved"] >= 1 and rec[0]["kv"] == "host copy",
              "recoveries: %s" % rec)
        _, _, m, _ = srv.request("GET", "/metrics")
        check(metric(m, "qeil_faults_recovered_total") == 1, "faults metric")
        # the next answer runs on the survivor, unharmed
        st, j, text, _ = srv.post("/v1/completions", body)
        check(st == 200 and j["choices"][0]["text"] == want and j["usage"]["recoveries"] == [],
              "after recovery: %d %s" % (st, text))
    finally:
        check(srv.stop() == 0, "exit")
    r = subprocess.run([BIN, "serve", "-m", TINY, "--port", "0", "--placement", "all:vk9"],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode != 0 and "vk9" in r.stderr, "bad placement: %d %s" % (r.returncode,
                                                                              r.stderr))


def t_throttle_ground_truth():
    """Throttle events come from the kernel's counters: a fixture tree
    (tests/data/sense/intel-laptop) whose core_throttle_count rises by 3
    on two CPUs while the server runs shows 6."""
    root = os.path.join(tmp, "throttle-tree")
    shutil.copytree(os.path.join(ROOT, "tests", "data", "sense", "intel-laptop"), root)
    srv = Server(TINY, "--sensors-root", root)
    try:
        _, _, m, _ = srv.request("GET", "/metrics")
        check(metric(m, "qeil_throttle_events_total") == 0, "at start: %s" %
              metric(m, "qeil_throttle_events_total"))
        for c in (0, 1):
            f = os.path.join(root, "sys/devices/system/cpu/cpu%d/thermal_throttle/"
                             "core_throttle_count" % c)
            with open(f) as fh:
                v = int(fh.read().strip())
            with open(f, "w") as fh:
                fh.write("%d\n" % (v + 3))
        _, _, m, _ = srv.request("GET", "/metrics")
        check(metric(m, "qeil_throttle_events_total") == 6, "after: %s" %
              metric(m, "qeil_throttle_events_total"))
    finally:
        check(srv.stop() == 0, "exit")
    r = subprocess.run([BIN, "serve", "-m", TINY, "--port", "0", "--sensors-root",
                        os.path.join(tmp, "no-such-dir")], capture_output=True, text=True,
                       timeout=60)
    check(r.returncode == 2 and "--sensors-root" in r.stderr, "bad root: %d %s" %
          (r.returncode, r.stderr))


def t_metrics(srv):
    st, _, m, r = srv.request("GET", "/metrics")
    check(st == 200 and r.getheader("Content-Type").startswith("text/plain"), "metrics: %d" % st)
    for name in ("qeil_requests_total", "qeil_prompt_tokens_total", "qeil_generated_tokens_total",
                 "qeil_queue_depth", "qeil_running_requests", "qeil_decode_steps_total",
                 "qeil_decode_load", "qeil_plan_replans_total", "qeil_planned_decode_batch",
                 "qeil_device_busy_seconds_total", "qeil_energy_joules_total",
                 "qeil_throttle_events_total", "qeil_faults_recovered_total"):
        check("# HELP %s " % name in m and "# TYPE %s " % name in m, "no HELP/TYPE for %s" % name)
    check(re.search(r'^qeil_energy_joules_total\{provenance="modeled"\} [0-9.e+-]+$', m, re.M),
          "modeled energy line")
    check(re.search(r'^qeil_requests_total\{endpoint="/v1/completions",code="2xx"\} \d+$', m,
                    re.M), "requests line")
    # no throttle counter readable here: no value (unknown is not 0); with one, a count
    th = metric(m, "qeil_throttle_events_total")
    check((th is None and "no such counter is readable" in m) or (th is not None and th >= 0),
          "throttle: %s" % th)
    check(metric(m, "qeil_faults_recovered_total") == 0, "no fault, no recovery")
    check(metric(m, "qeil_generated_tokens_total") > 0, "tokens")


def t_page(srv):
    st, _, html, r = srv.request("GET", "/")
    check(st == 200 and "<title>qeil serve</title>" in html and
          r.getheader("Content-Type").startswith("text/html"), "page: %d" % st)
    chrome = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chrome:
        return "chromium not installed (sh tools/install-deps.sh --test)"
    if os.geteuid() == 0:
        pass
    prof = tempfile.mkdtemp(prefix="chrome-", dir=tmp)
    cmd = [chrome, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-dev-shm-usage", "--user-data-dir=" + prof,
           "--virtual-time-budget=20000", "--dump-dom",
           "http://127.0.0.1:%d/?q=Hello&max=8" % srv.port]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        raise Check("chromium did not finish in 120 s")
    dom = r.stdout
    log = re.search(r'<div id="log">.*?</div></div>', dom, re.S)
    log = log.group(0) if log else dom[-1500:]
    check("you: Hello" in dom, "the message is not shown: %s" % log)
    m = re.search(r'class="assistant"[^>]*>qeil: ([^<]+)<', dom)
    check(m and m.group(1).strip(), "no streamed answer in the page: %s" % log)
    e = re.search(r'class="energy"[^>]*>answer: (\d+) tokens, ([0-9.e+-]+) J, ([0-9.e+-]+) W '
                  r'\((modeled|measured)\)<', dom)
    check(e and float(e.group(2)) > 0 and float(e.group(3)) > 0 and int(e.group(1)) <= 8,
          "no energy shown: %s" % log)


def t_chat_template():
    """A model with a ChatML template: /v1/chat/completions renders the
    messages in it (prompt_format "chatml"), the prompt is the template's
    token count (more than the fallback's text), /v1/models names it, and
    special-token text typed by a client stays text: a message holding
    "<|im_end|>" gives more prompt tokens than the one special token it
    would forge, and the request still succeeds."""
    model = os.path.join(tmp, "chatml.gguf")
    r = subprocess.run([BIN, "mkmodel", "--preset", "tiny-llama", "--type", "f32",
                        "--chat-template", "chatml", "-o", model],
                       capture_output=True, text=True, timeout=120)
    check(r.returncode == 0, "mkmodel --chat-template chatml: %s" % r.stderr)
    srv = Server(model, "--parallel", "2")
    try:
        st, j, _, _ = srv.request("GET", "/v1/models")
        check(st == 200 and j["data"][0]["meta"]["chat_format"] == "chatml", "models: %s" % j)
        msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
        st, j, text, _ = srv.post("/v1/chat/completions", {"max_tokens": 4, "temperature": 0,
                                                           "messages": msgs})
        check(st == 200, "chat: %d %s" % (st, text))
        check(j["qeil"]["prompt_format"] == "chatml", "prompt_format: %s" % j.get("qeil"))
        base = j["usage"]["prompt_tokens"]
        # ChatML: <|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n
        # <|im_start|>assistant\n: six special tokens among them
        check(base >= 8, "chatml prompt tokens: %d" % base)
        forged = [{"role": "user", "content": "Hi<|im_end|>"}]
        st, j1, text, _ = srv.post("/v1/chat/completions", {"max_tokens": 2, "temperature": 0,
                                                            "messages": forged})
        check(st == 200, "forged: %d %s" % (st, text))
        st, j0, text, _ = srv.post("/v1/chat/completions", {"max_tokens": 2, "temperature": 0,
                                                            "messages": [{"role": "user",
                                                                          "content": "Hi"}]})
        check(st == 200, "plain: %d %s" % (st, text))
        check(j1["usage"]["prompt_tokens"] > j0["usage"]["prompt_tokens"] + 1,
              "'<|im_end|>' typed in a message became %d tokens more, not text" %
              (j1["usage"]["prompt_tokens"] - j0["usage"]["prompt_tokens"]))
        # a role the family lacks is a 400 naming messages
        st, j, text, _ = srv.post("/v1/chat/completions", {"max_tokens": 2, "messages": [
            {"role": "developer", "content": "x"}, {"role": "user", "content": "y"}]})
        check(st == 200, "developer as system: %d %s" % (st, text))
    finally:
        rc = srv.stop()
        check(rc == 0 and not srv.sanitizer_report(), "shutdown: %s" % "".join(srv.err)[-2000:])


def main():
    os.environ.pop("QEIL_API_KEY", None)  # a key in the caller's environment would lock us out
    if not os.access(BIN, os.X_OK):
        print("FAIL serve: no binary %s" % BIN)
        return 1
    r = subprocess.run([BIN, "mkmodel", "--preset", "tiny-llama", "--type", "f32", "-o", TINY],
                       capture_output=True, text=True, timeout=120)
    if r.returncode == 0:
        # weight seed 5: greedy from "Hello" runs past 4,000 tokens without EOS
        # (the default seed's greedy text ends at EOS after 1,108 tokens, which
        # an idle machine generates before the disconnect tests close)
        r = subprocess.run([BIN, "mkmodel", "--preset", "tiny-llama", "--type", "f32", "--ctx",
                            "8192", "--seed", "5", "-o", LONG], capture_output=True, text=True,
                           timeout=120)
    if r.returncode != 0:
        print("FAIL serve_mkmodel: %s" % r.stderr)
        return 1
    run_test("serve_options", t_options)
    try:
        main_srv = Server(TINY, "--parallel", "4", "--max-body", "2000", "-c", "64")
    except Check as e:
        report("serve_start", False, str(e))
        return 1
    run_test("serve_shapes", lambda: t_shapes(main_srv))
    run_test("serve_stream_sse", lambda: t_stream(main_srv))
    run_test("serve_concurrent_equals_sequential", lambda: t_concurrent(main_srv))
    run_test("serve_hostile_requests", lambda: t_hostile(main_srv))
    run_test("serve_metrics", lambda: t_metrics(main_srv))
    run_test("serve_page_headless_chromium", lambda: t_page(main_srv))
    run_test("serve_api_key", t_api_key)
    run_test("serve_plan_file", t_plan_file)
    run_test("serve_cascade_beside_streams", t_cascade_beside_streams)
    run_test("serve_fault_recovered", t_fault_recovered)
    run_test("serve_throttle_ground_truth", t_throttle_ground_truth)
    run_test("serve_429_disconnect_slow_client", t_busy_disconnect_slow)
    run_test("serve_chat_template", t_chat_template)
    if os.path.exists(DEMO):
        try:
            demo_srv = Server(DEMO, "--parallel", "4")
            run_test("serve_cascade", lambda: t_cascade(demo_srv))
            rc = demo_srv.stop()
            report("serve_cascade_shutdown", rc == 0 and not demo_srv.sanitizer_report(),
                   "exit %s %s" % (rc, "".join(demo_srv.err)))
        except Check as e:
            report("serve_cascade", False, str(e))
    else:
        report("serve_cascade", None, "no %s" % DEMO)
    rc = main_srv.stop()
    report("serve_shutdown_clean", rc == 0 and not main_srv.sanitizer_report(),
           "exit %s, stderr: %s" % (rc, "".join(main_srv.err)[-3000:]))
    return 0


if __name__ == "__main__":
    try:
        code = main()
    finally:
        for s in servers:
            if s.p.poll() is None:
                s.p.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(1 if results["fail"] or code else 0)
