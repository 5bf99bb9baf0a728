/* test_recover.c — recovery from a failed unit (docs/runtime.md): a fault
 * injected at EVERY op of a short generation and of a short eval request,
 * on each of two units (two CPU units, "cpu" and "cpu1"; two CPU core
 * sets, cpu-a and cpu-b bound to CPUs 0 and 1; the CPU and the Vulkan
 * device, SKIP without one), with the KV rebuilt from the host
 * copy and by recomputing the prefix: every fault recovered, the tokens
 * (and each sample's text and log-likelihood) identical to the fault-free
 * run. Also: the last unit failing ends the request with a clear error,
 * the watchdog catches a hang, QEIL_FAULT's parser is strict. The model is
 * a tiny random-weight llama the test writes (qeil_mkmodel_write). */
#define _GNU_SOURCE /* sched_getaffinity, CPU_ISSET */
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "qeil/runtime.h"
#include "test.h"

static char tmpdir[] = "/tmp/qeil-recover-XXXXXX";
static char model[4200];
static qeil_ctx *ctx;

#define N_GEN 5      /* tokens per generation at most */
#define MAX_OPS 4000 /* a sweep larger than this is a test bug */
static uint32_t g_gen = N_GEN; /* tokens per generation and per sample */
static int g_exact = 1;        /* 1: log-probabilities bit for bit; 0: tokens and texts only */

/* Under an emulator (QEIL_TEST_RUNNER: qemu-user in make test-arm, where
 * every op costs 10-30x and the whole sweep would run past 10 minutes) a
 * sweep fails every EMU_STRIDE-th op (1, 1 + EMU_STRIDE, ...) and the last
 * one: EMU_STRIDE is coprime with 2 and 3, so the ops taken still cycle
 * through every fault kind (error, out-of-memory, hang), spread over the
 * prefill and the decode steps; main() prints the rule, each report says
 * how many ops. */
#define EMU_STRIDE 7
static uint64_t g_stride = 1; /* every op natively */

static int op_taken(uint64_t n, uint64_t ops) { return (n - 1) % g_stride == 0 || n == ops; }

static const int32_t k_prompt[] = {1, 17, 42, 99, 7};
#define N_PROMPT ((uint32_t)(sizeof k_prompt / sizeof k_prompt[0]))

/* A runtime over the tiny model; NULL (SKIP reason in *why) when the
 * placement cannot run here (no Vulkan device). */
static qeil_runtime *mk(const char *placement, uint32_t batch, int kv_rebuild, double watchdog_s,
                        float temp, const char **why)
{
    qeil_runtime_params rp = qeil_runtime_default_params();
    rp.model_path = model;
    rp.n_threads = 1;
    rp.n_ctx = 64;
    rp.samples = batch ? batch : 1;
    rp.batch = batch;
    rp.max_tokens = g_gen;
    rp.sensors = 0;
    rp.placement = placement;
    rp.kv_rebuild = kv_rebuild;
    rp.watchdog_s = watchdog_s;
    qeil_runtime *rt = NULL;
    qeil_status st = qeil_runtime_create(ctx, &rp, &rt);
    if (st != QEIL_OK) {
        if (why && strstr(qeil_ctx_errmsg(ctx), "vulkan")) {
            *why = "no Vulkan device";
            return NULL;
        }
        TEST_FAIL_("create (%s): %s", placement, qeil_ctx_errmsg(ctx));
        return NULL;
    }
    qeil_sampler_params sp = qeil_sampler_default_params();
    sp.seed = 11;
    sp.temp = temp;
    if (qeil_runtime_set_sampler(rt, &sp) != QEIL_OK) TEST_FAIL_("sampler: %s", qeil_ctx_errmsg(ctx));
    return rt;
}

static const char *kind_cause(qeil_fault_kind k)
{
    return k == QEIL_FAULT_OOM ? "oom" : k == QEIL_FAULT_HANG ? "hang" : "error";
}

typedef struct {
    uint32_t injected, recovered, identical;
    double total_max_s;
    struct timespec t0;
} sweep_stats;

/* One request with fault f armed (f->kind NONE: the reference run): the
 * generated tokens and log-probabilities into tok/lp. */
static qeil_status run_gen(qeil_runtime *rt, const qeil_fault *f, int32_t *tok,
                           qeil_sampler_logprob *lp, uint32_t *n_gen)
{
    qeil_status st = qeil_runtime_set_fault(rt, f);
    if (st != QEIL_OK) return st;
    qeil_runtime_gen_result g;
    st = qeil_runtime_generate(rt, k_prompt, N_PROMPT, g_gen, tok, lp, NULL, NULL, &g);
    *n_gen = g.n_gen;
    return st;
}

/* The fault's kind for op n: errors and out-of-memory alternate, a hang
 * every hang_every-th op (0: none) — each costs the watchdog's wait. */
static qeil_fault_kind kind_for(uint64_t n, uint32_t hang_every)
{
    if (hang_every && n % hang_every == 0) return QEIL_FAULT_HANG;
    return n % 2 ? QEIL_FAULT_ERROR : QEIL_FAULT_OOM;
}

static void check_recovery(qeil_runtime *rt, uint8_t dev, uint64_t n, qeil_fault_kind kind,
                           double watchdog_s, sweep_stats *s)
{
    qeil_runtime_recovery rec[QEIL_RUNTIME_MAX_RECOVERIES];
    uint32_t nr = qeil_runtime_recoveries(rt, rec, QEIL_RUNTIME_MAX_RECOVERIES);
    if (nr != 1) {
        TEST_FAIL_("op %llu on %s: %u recoveries (want 1)", (unsigned long long)n,
                   qeil_engine_device_name(dev), nr);
        return;
    }
    s->recovered++;
    CHECK_EQ_STR(rec[0].device, qeil_engine_device_name(dev));
    CHECK_EQ_INT(rec[0].op, n);
    CHECK_EQ_STR(rec[0].cause, kind_cause(kind));
    CHECK(rec[0].units_moved >= 1);
    /* the default platform (a catalog one) names no local device */
    CHECK_EQ_STR(rec[0].method, "survivor");
    CHECK_CONTAINS(rec[0].fallback, "names no local device");
    CHECK_EQ_INT(rec[0].evaluations, 0);
    CHECK(rec[0].total_s >= rec[0].move_s && rec[0].total_s >= rec[0].detect_s);
    if (kind == QEIL_FAULT_HANG) CHECK(rec[0].detect_s >= watchdog_s * 0.99);
    if (rec[0].total_s > s->total_max_s) s->total_max_s = rec[0].total_s;
}

/* Fault at every op of a generation on device dev. */
static void sweep_gen(qeil_runtime *rt, uint8_t dev, uint32_t hang_every, double watchdog_s,
                      sweep_stats *s)
{
    int32_t ref[N_GEN], got[N_GEN];
    qeil_sampler_logprob rlp[N_GEN], glp[N_GEN];
    uint32_t nref = 0, ngot = 0;
    qeil_fault f = {dev, QEIL_FAULT_NONE, 0};
    CHECK_EQ_INT(run_gen(rt, &f, ref, rlp, &nref), QEIL_OK);
    const uint64_t ops = qeil_runtime_fault_ops(rt);
    CHECK(nref == g_gen);
    CHECK(ops > 10 && ops < MAX_OPS);
    for (uint64_t n = 1; n <= ops && !test_failed_; n++) {
        if (!op_taken(n, ops)) continue;
        f.kind = kind_for(n, hang_every);
        f.op = n;
        s->injected++;
        qeil_status st = run_gen(rt, &f, got, glp, &ngot);
        if (st != QEIL_OK) {
            TEST_FAIL_("op %llu (%s) on %s: %s", (unsigned long long)n, qeil_fault_kind_name(f.kind),
                       qeil_engine_device_name(dev), qeil_ctx_errmsg(ctx));
            break;
        }
        check_recovery(rt, dev, n, f.kind, watchdog_s, s);
        int same = ngot == nref && memcmp(got, ref, sizeof *ref * nref) == 0;
        for (uint32_t i = 0; same && g_exact && i < nref; i++) same = glp[i].raw == rlp[i].raw;
        if (same) s->identical++;
        else TEST_FAIL_("op %llu on %s: the tokens differ from the fault-free run", (unsigned long long)n,
                        qeil_engine_device_name(dev));
    }
}

/* One eval request (K = 2 samples decoded together) with fault f armed. */
typedef struct {
    char text[2][512];
    uint32_t n_tokens[2];
    double lp[2];
    qeil_runtime_result res;
} eval_out;

static qeil_status run_eval(qeil_runtime *rt, const qeil_fault *f, eval_out *o)
{
    memset(o, 0, sizeof *o);
    qeil_status st = qeil_runtime_set_fault(rt, f);
    if (st != QEIL_OK) return st;
    qeil_runtime_request rq = {k_prompt, N_PROMPT, QEIL_ANSWER_NUMERIC, 3, NULL};
    if ((st = qeil_runtime_begin(rt, &rq)) != QEIL_OK) return st;
    if ((st = qeil_runtime_select(rt, 0, &o->res)) != QEIL_OK) return st;
    for (uint32_t k = 0; k < 2; k++) {
        const char *t = qeil_runtime_sample(rt, k, &o->n_tokens[k], &o->lp[k]);
        if (!t) return QEIL_ERR_INTERNAL;
        snprintf(o->text[k], sizeof o->text[k], "%s", t);
    }
    return QEIL_OK;
}

static void sweep_eval(qeil_runtime *rt, uint8_t dev, uint32_t hang_every, double watchdog_s,
                       sweep_stats *s)
{
    qeil_runtime_config cc = qeil_runtime_default_config();
    cc.plan_method = QEIL_METHOD_STANDARD;
    cc.select = QEIL_SELECT_MAJORITY; /* the whole budget: both samples drawn */
    qeil_workload_params wp = qeil_runtime_planning_workload(rt, N_PROMPT);
    uint32_t ci;
    if (qeil_runtime_add_config(rt, &cc, &wp, &ci) != QEIL_OK) {
        TEST_FAIL_("add_config: %s", qeil_ctx_errmsg(ctx));
        return;
    }
    static eval_out ref, got;
    qeil_fault f = {dev, QEIL_FAULT_NONE, 0};
    CHECK_EQ_INT(run_eval(rt, &f, &ref), QEIL_OK);
    const uint64_t ops = qeil_runtime_fault_ops(rt);
    CHECK(ops > 10 && ops < MAX_OPS);
    CHECK(ref.n_tokens[0] > 0 && ref.n_tokens[1] > 0);
    for (uint64_t n = 1; n <= ops && !test_failed_; n++) {
        if (!op_taken(n, ops)) continue;
        f.kind = kind_for(n, hang_every);
        f.op = n;
        s->injected++;
        qeil_status st = run_eval(rt, &f, &got);
        if (st != QEIL_OK) {
            TEST_FAIL_("eval, op %llu (%s) on %s: %s", (unsigned long long)n,
                       qeil_fault_kind_name(f.kind), qeil_engine_device_name(dev), qeil_ctx_errmsg(ctx));
            break;
        }
        check_recovery(rt, dev, n, f.kind, watchdog_s, s);
        int same = got.res.n_tokens == ref.res.n_tokens && got.res.n_samples == ref.res.n_samples;
        for (uint32_t k = 0; same && k < 2; k++)
            same = strcmp(got.text[k], ref.text[k]) == 0 && got.n_tokens[k] == ref.n_tokens[k] &&
                   (!g_exact || got.lp[k] == ref.lp[k]);
        if (same) s->identical++;
        else TEST_FAIL_("eval, op %llu on %s: the samples differ from the fault-free run",
                        (unsigned long long)n, qeil_engine_device_name(dev));
    }
}

static void report(const char *what, const sweep_stats *s)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    char taken[64] = "";
    if (g_stride > 1)
        snprintf(taken, sizeof taken, " (every %lluth op and the last)", (unsigned long long)g_stride);
    printf("  %s: %u faults injected%s, %u recovered, %u identical, slowest recovery %.3g ms "
           "(sweep %.1f s)\n",
           what, s->injected, taken, s->recovered, s->identical, 1e3 * s->total_max_s,
           (double)(t1.tv_sec - s->t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - s->t0.tv_nsec));
    CHECK(s->injected > 0);
    CHECK_EQ_INT(s->recovered, s->injected);
    CHECK_EQ_INT(s->identical, s->injected);
}

/* ------------------------------------------------------------------------ */

TEST(make_tiny_model)
{
    qeil_mkmodel_params p = qeil_mkmodel_default_params();
    p.arch = QEIL_ARCH_LLAMA;
    p.n_layers = 2;
    p.d_model = 64;
    p.n_heads = 4;
    p.n_kv_heads = 2;
    p.d_ff = 96;
    p.vocab = 320;
    p.ctx = 128;
    p.type = QEIL_GGML_Q8_0;
    p.seed = 3;
    snprintf(model, sizeof model, "%s/tiny.gguf", tmpdir);
    CHECK_EQ_INT(qeil_mkmodel_write(ctx, &p, model), QEIL_OK);
    if (test_failed_) model[0] = '\0';
}

/* Two CPU units: "cpu" and "cpu1" (the cpu backend under a second name). */
static void two_cpu_units(int kv_rebuild, const char *label)
{
    if (!model[0]) SKIP("no model");
    const double wd = 0.002; /* the cpu backend finishes every op before sync */
    static const char *place = "emb..b0:cpu,b1..head:cpu1";
    sweep_stats s;
    memset(&s, 0, sizeof s);
    clock_gettime(CLOCK_MONOTONIC, &s.t0);
    for (uint8_t dev = 0; dev < 3; dev += 2) { /* cpu, cpu1 */
        qeil_runtime *rt = mk(place, 0, kv_rebuild, wd, 0.9f, NULL);
        if (rt) sweep_gen(rt, dev, 3, wd, &s);
        qeil_runtime_free(rt);
        rt = mk(place, 2, kv_rebuild, wd, 0.9f, NULL);
        if (rt) sweep_eval(rt, dev, 3, wd, &s);
        qeil_runtime_free(rt);
    }
    report(label, &s);
}

/* Two sequences through the step API (what `qeil serve` drives): prompts
 * prefilled, then greedy decode steps of both together; the argmax tokens
 * of every step into tok[2 × steps]. */
static qeil_status run_steps(qeil_runtime *rt, const qeil_fault *f, uint32_t steps, int32_t *tok)
{
    qeil_status st = qeil_runtime_set_fault(rt, f);
    if (st != QEIL_OK) return st;
    const uint32_t nv = qeil_runtime_n_vocab(rt);
    float *lg = malloc(sizeof(float) * 2 * nv);
    if (!lg) return QEIL_ERR_NOMEM;
    const uint32_t seqs[2] = {1, 2};
    int32_t cur[2];
    for (uint32_t q = 0; q < 2 && st == QEIL_OK; q++) {
        st = qeil_runtime_seq_prefill(rt, seqs[q], k_prompt + q, N_PROMPT - q, lg + q * nv);
    }
    for (uint32_t t = 0; t < steps && st == QEIL_OK; t++) {
        for (uint32_t q = 0; q < 2; q++) {
            const float *row = lg + q * nv;
            uint32_t best = 0;
            for (uint32_t v = 1; v < nv; v++)
                if (row[v] > row[best]) best = v;
            cur[q] = (int32_t)best;
            tok[2 * t + q] = cur[q];
        }
        st = qeil_runtime_decode_step(rt, seqs, cur, 2, lg);
    }
    free(lg);
    return st;
}

/* The step API recovers like a request does: every op of two sequences'
 * prefill and decode steps on two CPU units, failing, gives the tokens of
 * the fault-free run (the KV from the host copy). With recompute, which
 * needs a request's prefix, the failure is a clear error. */
TEST(step_api_recovers)
{
    if (!model[0]) SKIP("no model");
    const double wd = 0.002;
    const uint32_t steps = 6;
    static const char *place = "emb..b0:cpu,b1..head:cpu1";
    qeil_runtime *rt = mk(place, 2, QEIL_KV_REBUILD_HOST_COPY, wd, 0.0f, NULL);
    if (!rt) return;
    int32_t want[12], got[12];
    qeil_fault f = {2, QEIL_FAULT_NONE, 0}; /* cpu1 */
    CHECK_EQ_INT(run_steps(rt, &f, steps, want), QEIL_OK);
    const uint64_t ops = qeil_runtime_fault_ops(rt);
    CHECK(ops > 10);
    uint32_t recovered = 0, tried = 0;
    /* every other op (under an emulator every 2 * EMU_STRIDE-th: still
     * errors and out-of-memory in turn) */
    for (uint64_t n = 1; n <= ops; n += 2 * g_stride) {
        f.kind = n % 4 == 1 ? QEIL_FAULT_ERROR : QEIL_FAULT_OOM;
        f.op = n;
        tried++;
        memset(got, 0, sizeof got);
        qeil_status st = run_steps(rt, &f, steps, got);
        if (st != QEIL_OK) {
            TEST_FAIL_("op %llu: %s", (unsigned long long)n, qeil_ctx_errmsg(ctx));
            continue;
        }
        if (qeil_runtime_recoveries(rt, NULL, 0) != 1)
            TEST_FAIL_("op %llu: %u recoveries", (unsigned long long)n,
                       qeil_runtime_recoveries(rt, NULL, 0));
        else if (memcmp(got, want, sizeof want) != 0)
            TEST_FAIL_("op %llu: tokens differ from the fault-free run", (unsigned long long)n);
        else recovered++;
    }
    char every[32] = "every other op";
    if (g_stride > 1) snprintf(every, sizeof every, "every %lluth op", (unsigned long long)(2 * g_stride));
    printf("  step API: %u faults injected (%s), %u recovered with identical tokens\n", tried, every,
           recovered);
    CHECK(tried > 0);
    qeil_runtime_free(rt);
    rt = mk(place, 2, QEIL_KV_REBUILD_RECOMPUTE, wd, 0.0f, NULL);
    if (!rt) return;
    f.kind = QEIL_FAULT_NONE;
    CHECK_EQ_INT(run_steps(rt, &f, steps, got), QEIL_OK);
    const uint64_t ops_rc = qeil_runtime_fault_ops(rt); /* no host copies: fewer ops */
    f.kind = QEIL_FAULT_ERROR;
    f.op = ops_rc - 2; /* in the last decode step: the moved block has KV */
    CHECK_EQ_INT(run_steps(rt, &f, steps, got), QEIL_ERR_DEVICE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "has no host copy");
    qeil_runtime_free(rt);
}

TEST(every_op_two_cpu_units_host_copy) { two_cpu_units(QEIL_KV_REBUILD_HOST_COPY, "cpu+cpu1, KV from the host copy"); }
TEST(every_op_two_cpu_units_recompute) { two_cpu_units(QEIL_KV_REBUILD_RECOMPUTE, "cpu+cpu1, KV recomputed"); }

/* Two CPU core sets: CPUs 0 and 1 as the clusters "a" and "b"
 * (QEIL_CPU_CLUSTERS), the devices cpu-a and cpu-b, each a thread pool
 * bound to its CPU: every op of a generation and an eval fails in turn on
 * each, recovered with the fault-free tokens. SKIP where this process may
 * not run on both CPUs 0 and 1. */
TEST(every_op_two_cpu_core_sets)
{
    if (!model[0]) SKIP("no model");
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0 || !CPU_ISSET(0, &set) || !CPU_ISSET(1, &set))
        SKIP("this process may not run on both CPUs 0 and 1");
    setenv("QEIL_CPU_CLUSTERS", "a=0,b=1", 1);
    int ida = -1, idb = -1;
    for (size_t id = 0; id < qeil_engine_n_backends(); id++) {
        const char *d = qeil_engine_device_name(id);
        if (d && strcmp(d, "cpu-a") == 0) ida = (int)id;
        if (d && strcmp(d, "cpu-b") == 0) idb = (int)id;
    }
    if (ida < 0 || idb < 0) {
        TEST_FAIL_("no cpu-a/cpu-b devices with QEIL_CPU_CLUSTERS=a=0,b=1");
        unsetenv("QEIL_CPU_CLUSTERS");
        return;
    }
    /* a bound pool hands each op to its worker, and the watchdog waits for
     * it: no hang is injected here, so an emulator (an op 10-30x slower, on
     * a loaded machine) gets a generous one, lest an honest op count as hung */
    const double wd = g_stride > 1 ? 2.0 : 0.05;
    static const char *place = "emb..b0:cpu-a,b1..head:cpu-b";
    sweep_stats s;
    memset(&s, 0, sizeof s);
    clock_gettime(CLOCK_MONOTONIC, &s.t0);
    const uint8_t devs[2] = {(uint8_t)ida, (uint8_t)idb};
    for (int k = 0; k < 2; k++) {
        qeil_runtime *rt = mk(place, 0, QEIL_KV_REBUILD_HOST_COPY, wd, 0.9f, NULL);
        if (rt) sweep_gen(rt, devs[k], 0, wd, &s);
        qeil_runtime_free(rt);
        rt = mk(place, 2, QEIL_KV_REBUILD_HOST_COPY, wd, 0.9f, NULL);
        if (rt) sweep_eval(rt, devs[k], 0, wd, &s);
        qeil_runtime_free(rt);
    }
    report("cpu-a+cpu-b (core sets 0 | 1), host copy", &s);
    unsetenv("QEIL_CPU_CLUSTERS");
}

/* LFM2 (conv blocks beside attention): a conv block's state rolls forward
 * with every step, so unlike a K/V row it must not be advanced twice when
 * a failed step runs again — every op of a generation and an eval on two
 * CPU units, both KV modes, tokens identical. (Before the fix, a fault in
 * a decode step gave other tokens: the unmoved conv block's state was
 * advanced by the failed step and again by its re-run.) */
TEST(every_op_lfm2_conv_state)
{
    if (!model[0]) SKIP("no model");
    char saved[sizeof model];
    memcpy(saved, model, sizeof model);
    qeil_mkmodel_params p = qeil_mkmodel_default_params();
    CHECK_EQ_INT(qeil_mkmodel_preset(ctx, "tiny-lfm2", &p), QEIL_OK);
    p.type = QEIL_GGML_F32;
    p.seed = 5;
    snprintf(model, sizeof model, "%s/tiny-lfm2.gguf", tmpdir);
    CHECK_EQ_INT(qeil_mkmodel_write(ctx, &p, model), QEIL_OK);
    if (!test_failed_) {
        const double wd = 0.002;
        static const char *place = "emb..b1:cpu,b2..head:cpu1"; /* b2 conv, b3 attention on cpu1 */
        for (int mode = 0; mode < 2; mode++) {
            int kvr = mode ? QEIL_KV_REBUILD_RECOMPUTE : QEIL_KV_REBUILD_HOST_COPY;
            sweep_stats s;
            memset(&s, 0, sizeof s);
            clock_gettime(CLOCK_MONOTONIC, &s.t0);
            for (uint8_t dev = 0; dev < 3; dev += 2) {
                qeil_runtime *rt = mk(place, 0, kvr, wd, 0.9f, NULL);
                if (rt) sweep_gen(rt, dev, 3, wd, &s);
                qeil_runtime_free(rt);
                rt = mk(place, 2, kvr, wd, 0.9f, NULL);
                if (rt) sweep_eval(rt, dev, 3, wd, &s);
                qeil_runtime_free(rt);
            }
            report(mode ? "lfm2 cpu+cpu1, KV recomputed" : "lfm2 cpu+cpu1, host copy", &s);
        }
    }
    memcpy(model, saved, sizeof model);
}

TEST(every_op_cpu_and_vulkan)
{
    if (!model[0]) SKIP("no model");
    /* lavapipe's submissions take milliseconds, and far more on a loaded
     * machine: a generous watchdog so that no honest wait is taken for a
     * hang (that would fail the unit for real), and hangs only once, at
     * the end (the CPU units' sweeps hang every third op). Greedy
     * decoding: units that move from the GPU to the CPU compute within
     * docs/vulkan.md's tolerances, not bit for bit, and a temperature draw
     * can tell the difference; the arg max does not (test_vulkan.c) */
    const double wd = 2.0;
    static const char *place = "emb..b0:cpu,b1..head:vk0";
    /* two tokens (a prefill and a decode step, each sample): lavapipe's
     * submissions make every run ~50 ms; the log-probabilities of units
     * moved off the GPU agree within the tolerance, the tokens exactly */
    g_gen = 2;
    g_exact = 0;
    const char *why = NULL;
    sweep_stats s;
    memset(&s, 0, sizeof s);
    clock_gettime(CLOCK_MONOTONIC, &s.t0);
    for (uint8_t dev = 0; dev < 2 && !why; dev++) { /* cpu, vk0 */
        qeil_runtime *rt = mk(place, 0, QEIL_KV_REBUILD_HOST_COPY, wd, 0.0f, &why);
        if (rt) sweep_gen(rt, dev, 0, wd, &s);
        qeil_runtime_free(rt);
        if (why) break;
        rt = mk(place, 2, QEIL_KV_REBUILD_RECOMPUTE, wd, 0.0f, &why);
        if (rt) sweep_eval(rt, dev, 0, wd, &s);
        qeil_runtime_free(rt);
    }
    /* the watchdog on the GPU: vk0 hangs in the last decode step */
    if (!why) {
        const double wd_hang = 0.5;
        qeil_runtime *rt = mk(place, 0, QEIL_KV_REBUILD_HOST_COPY, wd_hang, 0.0f, &why);
        int32_t ref[N_GEN], got[N_GEN];
        uint32_t nref = 0, ngot = 0;
        qeil_fault f = {1, QEIL_FAULT_NONE, 0};
        if (rt && run_gen(rt, &f, ref, NULL, &nref) == QEIL_OK) {
            f.kind = QEIL_FAULT_HANG;
            f.op = qeil_runtime_fault_ops(rt) - 2;
            s.injected++;
            CHECK_EQ_INT(run_gen(rt, &f, got, NULL, &ngot), QEIL_OK);
            check_recovery(rt, 1, f.op, QEIL_FAULT_HANG, wd_hang, &s);
            if (ngot == nref && memcmp(got, ref, sizeof *ref * nref) == 0) s.identical++;
        }
        qeil_runtime_free(rt);
    }
    g_gen = N_GEN;
    g_exact = 1;
    if (why) SKIP(why);
    report("cpu+vk0", &s);
}

TEST(last_unit_failing_ends_the_request)
{
    if (!model[0]) SKIP("no model");
    qeil_runtime *rt = mk("all:cpu", 0, QEIL_KV_REBUILD_HOST_COPY, 0.01, 0.9f, NULL);
    if (!rt) return;
    int32_t tok[N_GEN];
    uint32_t n = 0;
    qeil_fault f = {0, QEIL_FAULT_ERROR, 40};
    CHECK_EQ_INT(run_gen(rt, &f, tok, NULL, &n), QEIL_ERR_DEVICE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "device cpu failed (error) and no other device of the "
                                         "placement survives: the request ends");
    CHECK_EQ_INT(qeil_runtime_recoveries(rt, NULL, 0), 0);
    /* re-admitted, the same runtime runs again; recovery off: the first failure ends it */
    f.kind = QEIL_FAULT_NONE;
    CHECK_EQ_INT(run_gen(rt, &f, tok, NULL, &n), QEIL_OK);
    CHECK_EQ_INT(n, g_gen);
    qeil_runtime_free(rt);

    qeil_runtime_params rp = qeil_runtime_default_params();
    rp.model_path = model;
    rp.n_threads = 1;
    rp.sensors = 0;
    rp.batch = 0;
    rp.samples = 1;
    rp.placement = "emb..b0:cpu,b1..head:cpu1";
    rp.recover = 0;
    f = (qeil_fault){2, QEIL_FAULT_OOM, 3};
    rp.fault = &f;
    CHECK_EQ_INT(qeil_runtime_create(ctx, &rp, &rt), QEIL_OK);
    qeil_sampler_params sp = qeil_sampler_default_params();
    CHECK_EQ_INT(qeil_runtime_set_sampler(rt, &sp), QEIL_OK);
    qeil_runtime_gen_result g;
    CHECK_EQ_INT(qeil_runtime_generate(rt, k_prompt, N_PROMPT, 3, NULL, NULL, NULL, NULL, &g),
                 QEIL_ERR_DEVICE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "device cpu1 failed (oom): cpu1: out of device memory");
    qeil_runtime_free(rt);
}

TEST(fault_specs_are_strict)
{
    qeil_fault f;
    CHECK_EQ_INT(qeil_fault_parse(ctx, "vk0:error:120", &f), QEIL_OK);
    CHECK_EQ_STR(qeil_engine_device_name(f.device), "vk0");
    CHECK_EQ_INT(f.kind, QEIL_FAULT_ERROR);
    CHECK_EQ_INT(f.op, 120);
    CHECK_EQ_INT(qeil_fault_parse(ctx, "cpu1:hang:1", &f), QEIL_OK);
    CHECK_EQ_INT(f.kind, QEIL_FAULT_HANG);
    CHECK_EQ_INT(qeil_fault_parse(ctx, "cpu:oom:7", &f), QEIL_OK);
    CHECK_EQ_INT(f.kind, QEIL_FAULT_OOM);
    static const struct {
        const char *spec, *msg;
        qeil_status st;
    } bad[] = {
        {"vk0:error", "is not DEVICE:KIND:N", QEIL_ERR_FORMAT},
        {"vk0:error:1:2", "is not DEVICE:KIND:N", QEIL_ERR_FORMAT},
        {"gpu:error:1", "unknown device 'gpu' (known: cpu, vk0, cpu1)", QEIL_ERR_NOTFOUND},
        {"vk0:crash:1", "kind 'crash' is not one of error, hang, oom", QEIL_ERR_FORMAT},
        {"vk0:error:0", "fault: op N", QEIL_ERR_RANGE},
        {"vk0:error:12x", "fault: op N", QEIL_ERR_FORMAT},
        {"vk0:error:-1", "fault: op N", QEIL_ERR_FORMAT},
        {"", "is not DEVICE:KIND:N", QEIL_ERR_FORMAT},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        qeil_status st = qeil_fault_parse(ctx, bad[i].spec, &f);
        CHECK(st != QEIL_OK);
        CHECK_CONTAINS(qeil_ctx_errmsg(ctx), bad[i].msg);
        if (st != bad[i].st && st != QEIL_ERR_RANGE && st != QEIL_ERR_FORMAT)
            TEST_FAIL_("'%s': status %d", bad[i].spec, (int)st);
    }
    /* arming on a device that runs no unit, or a bad op, is refused */
    if (!model[0]) return;
    qeil_runtime *rt = mk("all:cpu", 0, QEIL_KV_REBUILD_HOST_COPY, 0.01, 0.9f, NULL);
    if (!rt) return;
    f = (qeil_fault){2, QEIL_FAULT_ERROR, 1};
    CHECK_EQ_INT(qeil_runtime_set_fault(rt, &f), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "fault: device cpu1 runs no unit of the placement");
    f = (qeil_fault){0, QEIL_FAULT_ERROR, 0};
    CHECK_EQ_INT(qeil_runtime_set_fault(rt, &f), QEIL_ERR_RANGE);
    qeil_runtime_free(rt);
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        printf("FAIL setup: no temp dir\n");
        return 1;
    }
    const char *runner = getenv("QEIL_TEST_RUNNER");
    if (runner && runner[0]) {
        g_stride = EMU_STRIDE;
        printf("# under an emulator (%s): each fault sweep fails every %dth op and the last, "
               "not every op\n", runner, EMU_STRIDE);
    }
    ctx = qeil_ctx_create(NULL);
    RUN(make_tiny_model);
    RUN(fault_specs_are_strict);
    RUN(last_unit_failing_ends_the_request);
    RUN(step_api_recovers);
    RUN(every_op_two_cpu_units_host_copy);
    RUN(every_op_two_cpu_units_recompute);
    RUN(every_op_two_cpu_core_sets);
    RUN(every_op_lfm2_conv_state);
    RUN(every_op_cpu_and_vulkan);
    qeil_ctx_free(ctx);
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) printf("# could not remove %s\n", tmpdir);
    return test_summary("recover");
}
