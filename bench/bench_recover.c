/*
 * bench_recover.c — recovery from a failed unit, measured (docs/runtime.md,
 * docs/benchmarks.md "Recovery from a failed unit"):
 *
 *  1. the sweep of tests/test_recover.c: a fault (error / oom, on the CPU
 *     units a hang every third op) injected at every op, on each of two units, of a
 *     short generation and a short eval request (K = 2 decoded together),
 *     for cpu + cpu1 and cpu + vk0 (when there is a Vulkan device), with the
 *     KV rebuilt from the host copy and by recomputing the prefix: faults
 *     injected, recovered, identical outputs, median and max recovery time
 *     and the median of each step;
 *  2. host copy against recompute on a longer request (mkmodel's tiny-llama
 *     shape, a P-token prompt, G generated tokens, the fault in the last
 *     decode step of the block unit that fails): the KV rebuild time of each,
 *     and what the host copy costs every step while nothing fails (decode
 *     ms/token with and without it, median of R runs).
 *
 *  3. the planner against the survivor rule: the sweep of 1. (errors and
 *     out-of-memory only, a 2 s watchdog, so that no step waits a hang) on
 *     the catalog platform (the survivor rule) and on the hand-written
 *     profiles of tests/data/recover/ whose units name cpu and cpu1 (and
 *     vk0): each recovery's method, the median of each step and the
 *     re-plan's evaluations (docs/benchmarks.md "Recovery through the
 *     planner").
 *
 *     build/bench/bench_recover              # P = 256, G = 32, R = 5
 *     build/bench/bench_recover 512 64 5
 *     BENCH_PLANNER_ONLY=1 build/bench/bench_recover   # 3. only
 *
 * Run from the repository root (3. reads tests/data/recover/).
 *
 * Prints markdown tables. Wall times on this machine (2 shared cores).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "qeil/runtime.h"
#include "core/util.h"

#define MAX_RUNS 4096
#define HANG_EVERY 3 /* with the CPU units' 2 ms watchdog */

static qeil_ctx *ctx;
static char model_tiny[256], model_long[256];
static const qeil_platform *g_pf; /* the runtimes' platform; NULL: the catalog default */

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
    if (!n) return 0;
    qsort(v, n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double maxd(const double *v, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) m = v[i] > m ? v[i] : m;
    return m;
}

static qeil_runtime *mk(const char *model, const char *placement, uint32_t batch, uint32_t gen,
                        uint32_t n_ctx, int kv, double wd, float temp)
{
    qeil_runtime_params rp = qeil_runtime_default_params();
    rp.model_path = model;
    rp.n_threads = 1;
    rp.n_ctx = n_ctx;
    rp.samples = batch ? batch : 1;
    rp.batch = batch;
    rp.max_tokens = gen;
    rp.sensors = 0;
    rp.placement = placement;
    rp.kv_rebuild = kv;
    rp.watchdog_s = wd;
    rp.platform = g_pf;
    qeil_runtime *rt = NULL;
    if (qeil_runtime_create(ctx, &rp, &rt) != QEIL_OK) return NULL;
    qeil_sampler_params sp = qeil_sampler_default_params();
    sp.seed = 11;
    sp.temp = temp;
    if (qeil_runtime_set_sampler(rt, &sp) != QEIL_OK) {
        qeil_runtime_free(rt);
        return NULL;
    }
    if (batch) {
        qeil_runtime_config cc = qeil_runtime_default_config();
        cc.plan_method = QEIL_METHOD_STANDARD;
        cc.select = QEIL_SELECT_MAJORITY;
        qeil_workload_params wp = qeil_runtime_planning_workload(rt, 5);
        uint32_t ci;
        if (qeil_runtime_add_config(rt, &cc, &wp, &ci) != QEIL_OK) {
            qeil_runtime_free(rt);
            return NULL;
        }
    }
    return rt;
}

/* ---- 1. the sweep ---- */

typedef struct {
    uint32_t injected, recovered, identical;
    double total[MAX_RUNS], detect[MAX_RUNS], replan[MAX_RUNS], move[MAX_RUNS], kv[MAX_RUNS];
    double evals[MAX_RUNS];
    uint32_t planner; /* recoveries placed by the planner */
    size_t n;
} stats;

static const int32_t k_prompt[] = {1, 17, 42, 99, 7};

/* One request (generate when batch is 0, else begin + select) with f
 * armed; its output as a string of token ids / sample texts in out. */
static qeil_status request(qeil_runtime *rt, uint32_t batch, uint32_t gen, const qeil_fault *f,
                           char *out, size_t cap)
{
    qeil_status st = qeil_runtime_set_fault(rt, f);
    if (st != QEIL_OK) return st;
    out[0] = '\0';
    size_t k = 0;
    if (!batch) {
        int32_t tok[64];
        qeil_runtime_gen_result g;
        st = qeil_runtime_generate(rt, k_prompt, 5, gen, tok, NULL, NULL, NULL, &g);
        for (uint32_t i = 0; st == QEIL_OK && i < g.n_gen && k + 16 < cap; i++)
            k += (size_t)snprintf(out + k, cap - k, "%d ", tok[i]);
        return st;
    }
    qeil_runtime_request rq = {k_prompt, 5, QEIL_ANSWER_NUMERIC, 3, NULL};
    qeil_runtime_result res;
    if ((st = qeil_runtime_begin(rt, &rq)) != QEIL_OK) return st;
    if ((st = qeil_runtime_select(rt, 0, &res)) != QEIL_OK) return st;
    for (uint32_t s = 0; s < batch; s++) {
        const char *t = qeil_runtime_sample(rt, s, NULL, NULL);
        k += (size_t)snprintf(out + k, cap - k, "%s|", t ? t : "?");
        if (k >= cap) break;
    }
    return QEIL_OK;
}

static void sweep(qeil_runtime *rt, uint8_t dev, uint32_t batch, uint32_t gen, double wd, stats *s)
{
    char ref[4096], got[4096];
    qeil_fault f = {dev, QEIL_FAULT_NONE, 0};
    if (request(rt, batch, gen, &f, ref, sizeof ref) != QEIL_OK) {
        fprintf(stderr, "reference run: %s\n", qeil_ctx_errmsg(ctx));
        return;
    }
    const uint64_t ops = qeil_runtime_fault_ops(rt);
    for (uint64_t n = 1; n <= ops && s->n < MAX_RUNS; n++) {
        f.kind = wd < 0.1 && n % HANG_EVERY == 0 ? QEIL_FAULT_HANG
                 : n % 2                         ? QEIL_FAULT_ERROR
                                                 : QEIL_FAULT_OOM;
        f.op = n;
        s->injected++;
        if (request(rt, batch, gen, &f, got, sizeof got) != QEIL_OK) {
            fprintf(stderr, "op %llu on %s: %s\n", (unsigned long long)n,
                    qeil_engine_device_name(dev), qeil_ctx_errmsg(ctx));
            continue;
        }
        qeil_runtime_recovery r[QEIL_RUNTIME_MAX_RECOVERIES];
        const uint32_t nr = qeil_runtime_recoveries(rt, r, QEIL_RUNTIME_MAX_RECOVERIES);
        if (nr != 1) {
            fprintf(stderr, "op %llu on %s: %u recoveries\n", (unsigned long long)n,
                    qeil_engine_device_name(dev), nr);
            continue;
        }
        s->recovered++;
        s->identical += strcmp(got, ref) == 0;
        s->total[s->n] = r[0].total_s;
        s->detect[s->n] = r[0].detect_s;
        s->replan[s->n] = r[0].replan_s;
        s->move[s->n] = r[0].move_s;
        s->kv[s->n] = r[0].kv_s;
        s->evals[s->n] = (double)r[0].evaluations;
        s->planner += strcmp(r[0].method, "planner") == 0;
        s->n++;
    }
}

static void sweep_row(const char *label, const char *place, const uint8_t devs[2], double wd,
                      float temp, int kv, uint32_t gen)
{
    static stats s;
    memset(&s, 0, sizeof s);
    double t0 = qeil_clock_s();
    for (int d = 0; d < 2; d++)
        for (uint32_t batch = 0; batch <= 2; batch += 2) {
            qeil_runtime *rt = mk(model_tiny, place, batch, gen, 64, kv, wd, temp);
            if (!rt) {
                printf("| %s | %s | n/a: %s |||||||||\n", label, kv ? "recompute" : "host copy",
                       qeil_ctx_errmsg(ctx));
                return;
            }
            sweep(rt, devs[d], batch, gen, wd, &s);
            qeil_runtime_free(rt);
        }
    const double wall = qeil_clock_s() - t0;
    /* hangs wait the watchdog: the other steps' medians are over all faults */
    printf("| %s | %s | %u | %u | %u | %.3f | %.1f | %.3f | %.4f | %.3f | %.3f | %.0f |\n", label,
           kv ? "recompute" : "host copy", s.injected, s.recovered, s.identical,
           1e3 * median(s.total, s.n), 1e3 * maxd(s.total, s.n), 1e3 * median(s.detect, s.n),
           1e3 * median(s.replan, s.n), 1e3 * median(s.move, s.n), 1e3 * median(s.kv, s.n), wall);
}

/* ---- 2. host copy against recompute on a longer request ---- */

static void kv_compare(uint32_t P, uint32_t G, uint32_t R)
{
    int32_t *prompt = malloc(sizeof *prompt * P), *tok = malloc(sizeof *tok * G);
    if (!prompt || !tok) return;
    for (uint32_t i = 0; i < P; i++) prompt[i] = (int32_t)(1 + (i * 37) % 500);
    printf("\n| KV rebuild | prefix (tokens) | KV rebuild ms (median) | move ms | decode ms/token, no "
           "fault (median) |\n|---|---|---|---|---|\n");
    for (int kv = 0; kv < 2; kv++) {
        qeil_runtime *rt = mk(model_long, "emb..b0:cpu,b1..head:cpu1", 0, G, P + G + 8, kv, 0.25, 0.0f);
        if (!rt) {
            printf("| n/a: %s |\n", qeil_ctx_errmsg(ctx));
            break;
        }
        double kvs[64], mv[64], dec[64];
        uint32_t nk = 0;
        qeil_fault f = {2, QEIL_FAULT_NONE, 0};
        for (uint32_t r = 0; r < R && r < 64; r++) {
            qeil_runtime_gen_result g;
            qeil_runtime_set_fault(rt, &f);
            if (qeil_runtime_generate(rt, prompt, P, G, tok, NULL, NULL, NULL, &g) != QEIL_OK) break;
            dec[r] = 1e3 * g.decode_s / (g.n_decode ? g.n_decode : 1);
            /* the fault in the last decode step: the longest prefix */
            const uint64_t ops = qeil_runtime_fault_ops(rt);
            qeil_fault ff = {2, QEIL_FAULT_ERROR, ops - 3};
            qeil_runtime_set_fault(rt, &ff);
            if (qeil_runtime_generate(rt, prompt, P, G, tok, NULL, NULL, NULL, &g) != QEIL_OK) break;
            qeil_runtime_recovery rec;
            if (qeil_runtime_recoveries(rt, &rec, 1) == 1) {
                kvs[nk] = 1e3 * rec.kv_s;
                mv[nk] = 1e3 * rec.move_s;
                nk++;
            }
        }
        printf("| %s | %u | %.3f | %.3f | %.3f |\n", kv ? "recompute the prefix" : "host copy",
               P + G - 1, median(kvs, nk), median(mv, nk), median(dec, nk));
        qeil_runtime_free(rt);
    }
    free(prompt);
    free(tok);
}

/* ---- 3. the planner against the survivor rule ---- */

static void method_row(const char *label, const char *profile, const char *place,
                       const uint8_t devs[2], float temp, uint32_t gen)
{
    static stats s;
    static qeil_platform pf;
    memset(&s, 0, sizeof s);
    g_pf = NULL;
    if (profile && qeil_platform_load(ctx, profile, &pf) != QEIL_OK) {
        printf("| %s | n/a: %s |\n", label, qeil_ctx_errmsg(ctx));
        return;
    }
    if (profile) g_pf = &pf;
    for (int d = 0; d < 2; d++)
        for (uint32_t batch = 0; batch <= 2; batch += 2) {
            qeil_runtime *rt = mk(model_tiny, place, batch, gen, 64, 0, 2.0, temp);
            if (!rt) {
                printf("| %s | n/a: %s |\n", label, qeil_ctx_errmsg(ctx));
                g_pf = NULL;
                return;
            }
            sweep(rt, devs[d], batch, gen, 2.0, &s);
            qeil_runtime_free(rt);
        }
    g_pf = NULL;
    printf("| %s | %u | %u | %u | %u | %.3f | %.1f | %.3f | %.3f | %.3f | %.3f | %.0f |\n", label,
           s.injected, s.recovered, s.planner, s.identical, 1e3 * median(s.total, s.n),
           1e3 * maxd(s.total, s.n), 1e3 * median(s.detect, s.n), 1e3 * median(s.replan, s.n),
           1e3 * median(s.move, s.n), 1e3 * median(s.kv, s.n), median(s.evals, s.n));
}

static void planner_vs_survivor(void)
{
    printf("\n| platform (placement emb..b0:cpu,b1..head:cpu1, faults on cpu and cpu1) | faults "
           "injected | recovered | by the planner | identical output | median recovery ms | max ms "
           "| detect ms (median) | replan ms | move ms | KV ms | evaluations (median) "
           "|\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    const char *place = "emb..b0:cpu,b1..head:cpu1";
    const uint8_t cc[2] = {0, 2};
    method_row("qeil-laptop (catalog: survivor rule), T = 0.9", NULL, place, cc, 0.9f, 5);
    method_row("local-cpu-cpu1 (planner), T = 0.9", "tests/data/recover/local-cpu-cpu1.json", place,
               cc, 0.9f, 5);
    method_row("qeil-laptop (catalog: survivor rule), greedy", NULL, place, cc, 0.0f, 5);
    method_row("local-cpu-cpu1-vk0 (planner: work moves to vk0), greedy",
               "tests/data/recover/local-cpu-cpu1-vk0.json", place, cc, 0.0f, 5);
}

int main(int argc, char **argv)
{
    uint32_t P = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 256;
    uint32_t G = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 32;
    uint32_t R = argc > 3 ? (uint32_t)strtoul(argv[3], NULL, 10) : 5;
    if (P < 1 || P > 4000 || G < 2 || G > 1000 || R < 1 || R > 64) {
        fprintf(stderr, "usage: bench_recover [P 1..4000] [G 2..1000] [R 1..64]\n");
        return 2;
    }
    ctx = qeil_ctx_create(NULL);
    char dir[] = "/tmp/qeil-bench-recover-XXXXXX";
    if (!ctx || !mkdtemp(dir)) return 1;
    snprintf(model_tiny, sizeof model_tiny, "%s/tiny.gguf", dir);
    snprintf(model_long, sizeof model_long, "%s/tiny-llama.gguf", dir);
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
    if (qeil_mkmodel_write(ctx, &p, model_tiny) != QEIL_OK ||
        qeil_mkmodel_preset(ctx, "tiny-llama", &p) != QEIL_OK) {
        fprintf(stderr, "%s\n", qeil_ctx_errmsg(ctx));
        return 1;
    }
    p.type = QEIL_GGML_Q8_0;
    p.ctx = 8192;
    if (qeil_mkmodel_write(ctx, &p, model_long) != QEIL_OK) {
        fprintf(stderr, "%s\n", qeil_ctx_errmsg(ctx));
        return 1;
    }
    printf("| units | KV rebuild | faults injected | recovered | identical output | median "
           "recovery ms | max ms | detect ms (median) | replan ms | move ms | KV ms | sweep s "
           "|\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    const uint8_t cc[2] = {0, 2}, cv[2] = {0, 1};
    if (getenv("BENCH_PLANNER_ONLY")) {
        planner_vs_survivor();
        return 0;
    }
    if (getenv("BENCH_VK_ONLY")) {
        sweep_row("cpu + vk0", "emb..b0:cpu,b1..head:vk0", cv, 2.0, 0.0f, 0, 2);
        return 0;
    }
    sweep_row("cpu + cpu1", "emb..b0:cpu,b1..head:cpu1", cc, 0.002, 0.9f, 0, 5);
    sweep_row("cpu + cpu1", "emb..b0:cpu,b1..head:cpu1", cc, 0.002, 0.9f, 1, 5);
    /* no hangs on the GPU (the CPU rows time them): a watchdog that no
     * honest lavapipe wait on a loaded machine reaches */
    sweep_row("cpu + vk0", "emb..b0:cpu,b1..head:vk0", cv, 2.0, 0.0f, 0, 2);
    sweep_row("cpu + vk0", "emb..b0:cpu,b1..head:vk0", cv, 2.0, 0.0f, 1, 2);
    kv_compare(P, G, R);
    planner_vs_survivor();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    qeil_ctx_free(ctx);
    return 0;
}
