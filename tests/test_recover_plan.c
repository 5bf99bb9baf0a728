/* test_recover_plan.c — recovery through the planner (docs/runtime.md
 * "Recovery from a failed unit"): with a hand-written profile whose units
 * name this machine's devices (tests/data/recover/), a failed unit's work
 * goes where PGSAM re-plans it without the unit. A fault at every op of a
 * generation and of an eval request on cpu + cpu1: every fault recovered
 * by the planner, the outputs identical to the fault-free run (bit for bit:
 * the two CPU devices compute the same). With cpu, cpu1 and vk0 (SKIP
 * without a Vulkan device): the new placement is exactly the planner's
 * (recomputed here from the public API with the same inputs) and not the
 * survivor rule's; greedy tokens identical. A re-plan with no feasible
 * plan falls back to the survivor rule and says why; with no survivor
 * either the request ends with a clear error. Run from the repository
 * root. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qeil/runtime.h"
#include "test.h"

static char tmpdir[] = "/tmp/qeil-recplan-XXXXXX";
static char model[4200];
static qeil_ctx *ctx;

#define PF_CPU2 "tests/data/recover/local-cpu-cpu1.json"
#define PF_CPU2_VK "tests/data/recover/local-cpu-cpu1-vk0.json"
#define N_GEN 5
#define MAX_OPS 4000

/* Under an emulator (QEIL_TEST_RUNNER: qemu-user in make test-arm, where
 * every op and every re-plan costs 10-30x) the sweep fails every
 * EMU_STRIDE-th op (1, 1 + EMU_STRIDE, ...) and the last one: EMU_STRIDE
 * is odd, so errors and out-of-memory still alternate; main() prints the
 * rule and the summary line says it. */
#define EMU_STRIDE 7
static uint64_t g_stride = 1; /* every op natively */

static int op_taken(uint64_t n, uint64_t ops) { return (n - 1) % g_stride == 0 || n == ops; }

static const int32_t k_prompt[] = {1, 17, 42, 99, 7};
#define N_PROMPT ((uint32_t)(sizeof k_prompt / sizeof k_prompt[0]))

static size_t dev_id(const char *name)
{
    for (size_t id = 0; id < qeil_engine_n_backends(); id++)
        if (strcmp(qeil_engine_device_name(id), name) == 0) return id;
    return 0;
}

/* A runtime over the tiny model on platform pf; NULL with *skip set when
 * the placement needs a Vulkan device this machine lacks. */
static qeil_runtime *mk(const qeil_platform *pf, const char *placement, uint32_t batch, int kv_rebuild,
                        float temp, int *skip)
{
    qeil_runtime_params rp = qeil_runtime_default_params();
    rp.model_path = model;
    rp.platform = pf;
    rp.n_threads = 1;
    rp.n_ctx = 64;
    rp.samples = batch ? batch : 1;
    rp.batch = batch;
    rp.max_tokens = N_GEN;
    rp.sensors = 0;
    rp.placement = placement;
    rp.kv_rebuild = kv_rebuild;
    /* no hang is injected here: a generous watchdog, so that a loaded
     * machine's stall (or lavapipe's first waits, after a re-plan too) is
     * never taken for a hung device */
    rp.watchdog_s = 2.0;
    qeil_runtime *rt = NULL;
    if (qeil_runtime_create(ctx, &rp, &rt) != QEIL_OK) {
        if (skip && strstr(qeil_ctx_errmsg(ctx), "vulkan")) {
            *skip = 1;
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

static qeil_status run_gen(qeil_runtime *rt, const qeil_fault *f, int32_t *tok,
                           qeil_sampler_logprob *lp, uint32_t *n)
{
    qeil_status st = qeil_runtime_set_fault(rt, f);
    if (st != QEIL_OK) return st;
    qeil_runtime_gen_result g;
    st = qeil_runtime_generate(rt, k_prompt, N_PROMPT, N_GEN, tok, lp, NULL, NULL, &g);
    *n = g.n_gen;
    return st;
}

static int one_recovery(qeil_runtime *rt, qeil_runtime_recovery *r)
{
    uint32_t n = qeil_runtime_recoveries(rt, r, 1);
    if (n != 1) TEST_FAIL_("%u recoveries (want 1)", n);
    return n == 1;
}

/* Every unit of the recovered placement on `survivor`, the planner named
 * as the method, the re-plan timed and counted. */
static void check_planner(const qeil_runtime_recovery *r, uint8_t failed)
{
    CHECK_EQ_STR(r->method, "planner");
    CHECK_EQ_STR(r->fallback, "");
    CHECK(r->evaluations > 0);
    CHECK(r->replan_s > 0);
    CHECK(r->total_s >= r->replan_s);
    CHECK_EQ_INT(r->n_units, 4);
    for (uint32_t u = 0; u < r->n_units; u++) CHECK(r->placement[u] != failed);
}

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

/* cpu + cpu1, a fault at every op of a generation (temperature 0.9) and of
 * an eval request (K = 2 decoded together), both KV modes: 100 %
 * recovered by the planner, tokens and log-probabilities bit for bit. */
TEST(every_op_planner_cpu_cpu1)
{
    if (!model[0]) SKIP("no model");
    qeil_platform pf;
    CHECK_EQ_INT(qeil_platform_load(ctx, PF_CPU2, &pf), QEIL_OK);
    if (test_failed_) return;
    const char *place = "emb..b0:cpu,b1..head:cpu1";
    uint32_t injected = 0, recovered = 0, identical = 0;
    double worst = 0, plan_worst = 0;
    for (int mode = 0; mode < 2 && !test_failed_; mode++)
        for (uint8_t dev = 0; dev < 3 && !test_failed_; dev += 2) { /* cpu, cpu1 */
            qeil_runtime *rt = mk(&pf, place, 0, mode, 0.9f, NULL);
            if (!rt) return;
            int32_t ref[N_GEN], got[N_GEN];
            qeil_sampler_logprob rlp[N_GEN], glp[N_GEN];
            uint32_t nref = 0, ngot = 0;
            qeil_fault f = {dev, QEIL_FAULT_NONE, 0};
            CHECK_EQ_INT(run_gen(rt, &f, ref, rlp, &nref), QEIL_OK);
            const uint64_t ops = qeil_runtime_fault_ops(rt);
            CHECK(ops > 10 && ops < MAX_OPS);
            for (uint64_t n = 1; n <= ops && !test_failed_; n++) {
                if (!op_taken(n, ops)) continue;
                f.kind = n % 2 ? QEIL_FAULT_ERROR : QEIL_FAULT_OOM;
                f.op = n;
                injected++;
                if (run_gen(rt, &f, got, glp, &ngot) != QEIL_OK) {
                    TEST_FAIL_("op %llu on %s: %s", (unsigned long long)n,
                               qeil_engine_device_name(dev), qeil_ctx_errmsg(ctx));
                    break;
                }
                qeil_runtime_recovery r;
                if (!one_recovery(rt, &r)) break;
                recovered++;
                check_planner(&r, dev);
                if (r.total_s > worst) worst = r.total_s;
                if (r.replan_s > plan_worst) plan_worst = r.replan_s;
                int same = ngot == nref && memcmp(got, ref, sizeof *ref * nref) == 0;
                for (uint32_t i = 0; same && i < nref; i++) same = glp[i].raw == rlp[i].raw;
                if (same) identical++;
                else TEST_FAIL_("op %llu on %s: tokens differ", (unsigned long long)n,
                                qeil_engine_device_name(dev));
            }
            qeil_runtime_free(rt);

            /* an eval request: two samples decoded together, a configuration
             * planned on the profile (its front is the re-plan's warm start) */
            rt = mk(&pf, place, 2, mode, 0.9f, NULL);
            if (!rt) return;
            qeil_runtime_config cc = qeil_runtime_default_config();
            cc.select = QEIL_SELECT_MAJORITY;
            qeil_workload_params wp = qeil_runtime_planning_workload(rt, N_PROMPT);
            CHECK_EQ_INT(qeil_runtime_add_config(rt, &cc, &wp, NULL), QEIL_OK);
            char rtext[2][512];
            double rlps[2] = {0, 0};
            qeil_runtime_request rq = {k_prompt, N_PROMPT, QEIL_ANSWER_NUMERIC, 3, NULL};
            qeil_runtime_result res;
            f.kind = QEIL_FAULT_NONE;
            CHECK_EQ_INT(qeil_runtime_set_fault(rt, &f), QEIL_OK);
            CHECK_EQ_INT(qeil_runtime_begin(rt, &rq), QEIL_OK);
            CHECK_EQ_INT(qeil_runtime_select(rt, 0, &res), QEIL_OK);
            for (int k = 0; k < 2; k++)
                snprintf(rtext[k], sizeof rtext[k], "%s", qeil_runtime_sample(rt, (uint32_t)k, NULL, &rlps[k]));
            const uint64_t eops = qeil_runtime_fault_ops(rt);
            for (uint64_t n = 1; n <= eops && !test_failed_; n++) {
                if (!op_taken(n, eops)) continue;
                f.kind = n % 2 ? QEIL_FAULT_ERROR : QEIL_FAULT_OOM;
                f.op = n;
                injected++;
                CHECK_EQ_INT(qeil_runtime_set_fault(rt, &f), QEIL_OK);
                if (qeil_runtime_begin(rt, &rq) != QEIL_OK || qeil_runtime_select(rt, 0, &res) != QEIL_OK) {
                    TEST_FAIL_("eval op %llu on %s: %s", (unsigned long long)n,
                               qeil_engine_device_name(dev), qeil_ctx_errmsg(ctx));
                    break;
                }
                qeil_runtime_recovery r;
                if (!one_recovery(rt, &r)) break;
                recovered++;
                check_planner(&r, dev);
                int same = 1;
                for (int k = 0; k < 2 && same; k++) {
                    double lp = 0;
                    const char *t = qeil_runtime_sample(rt, (uint32_t)k, NULL, &lp);
                    same = t && strcmp(t, rtext[k]) == 0 && lp == rlps[k];
                }
                if (same) identical++;
                else TEST_FAIL_("eval op %llu on %s: samples differ", (unsigned long long)n,
                                qeil_engine_device_name(dev));
            }
            qeil_runtime_free(rt);
        }
    char taken[64] = "";
    if (g_stride > 1)
        snprintf(taken, sizeof taken, " (every %lluth op and the last)", (unsigned long long)g_stride);
    printf("  cpu+cpu1 through the planner: %u faults injected%s, %u recovered, %u identical; slowest "
           "recovery %.3g ms, slowest re-plan %.3g ms\n",
           injected, taken, recovered, identical, 1e3 * worst, 1e3 * plan_worst);
    CHECK(injected > 0);
    CHECK_EQ_INT(recovered, injected);
    CHECK_EQ_INT(identical, injected);
}

/* The placement the planner gives, recomputed from the public API with
 * the runtime's inputs (docs/runtime.md: the request's planning workload,
 * the failed unit unhealthy, units without a local device unhealthy,
 * PGSAM warm-started from the placement as a plan — nominal DVFS, batch
 * 1 — with replan_iters evaluations, seed 0, the knee's decode map). */
static void planner_placement(const qeil_platform *pf, qeil_runtime *rt, const uint8_t *cur, int failed_unit,
                              uint8_t *out)
{
    qeil_workload_params wp = qeil_runtime_planning_workload(rt, N_PROMPT);
    qeil_workload wl;
    CHECK_EQ_INT(qeil_workload_build(ctx, qeil_runtime_model(rt), &wp, &wl), QEIL_OK);
    qeil_plan_params pp = qeil_plan_default_params();
    pp.seed = 0;
    pp.iters = qeil_runtime_get_params(rt)->replan_iters;
    pp.energy.healthy[failed_unit] = 0;
    qeil_assignment a;
    memset(&a, 0, sizeof a);
    for (uint32_t w = 0; w < wl.n_units; w++) {
        int d = 0;
        for (int k = 0; k < pf->n_units; k++)
            if (strcmp(pf->units[k].device, qeil_engine_device_name(cur[w])) == 0) d = k;
        a.pf_unit[w] = a.dc_unit[w] = (uint8_t)d;
    }
    for (int k = 0; k < pf->n_units; k++) a.dvfs[k] = (uint8_t)pf->units[k].dvfs_nominal;
    a.batch = 1;
    qeil_assignment start[QEIL_MAX_UNITS + 1];
    start[0] = a;
    uint32_t ns = 1;
    for (int k = 0; k < pf->n_units; k++)
        if (k != failed_unit) qeil_assignment_uniform(&start[ns++], pf, &wl, k, 1);
    pp.start = start;
    pp.n_start = ns;
    qeil_front *f = NULL;
    CHECK_EQ_INT(qeil_plan_search(ctx, pf, &wl, &pp, &f), QEIL_OK);
    if (!f) return;
    CHECK_EQ_INT(qeil_plan_placement(ctx, pf, qeil_front_plan(f, qeil_front_knee(f)), 1, wl.n_units, out),
                 QEIL_OK);
    qeil_front_free(f);
}

/* cpu, cpu1 and vk0: cpu1 fails; the survivor rule would put its blocks on
 * cpu, the planner (a profile whose GPU is far better) moves work to vk0
 * and may move healthy units too. The placement is exactly the planner's;
 * greedy tokens as the fault-free run's. */
TEST(planner_placement_is_the_plans_cpu_cpu1_vk0)
{
    if (!model[0]) SKIP("no model");
    qeil_platform pf;
    CHECK_EQ_INT(qeil_platform_load(ctx, PF_CPU2_VK, &pf), QEIL_OK);
    if (test_failed_) return;
    int skip = 0;
    const char *place = "emb..b0:cpu,b1..head:cpu1";
    qeil_runtime *rt = mk(&pf, "all:vk0", 0, QEIL_KV_REBUILD_HOST_COPY, 0.0f, &skip);
    qeil_runtime_free(rt); /* only to know whether a Vulkan device is there */
    if (skip) SKIP("no Vulkan device");
    const uint8_t cpu = (uint8_t)dev_id("cpu"), cpu1 = (uint8_t)dev_id("cpu1"), vk = (uint8_t)dev_id("vk0");
    const uint8_t cur[4] = {cpu, cpu, cpu1, cpu1};
    uint8_t want[4] = {0};
    int32_t ref[N_GEN], got[N_GEN];
    uint32_t nref = 0, ngot = 0, n_ok = 0, n_runs = 0;
    for (int mode = 0; mode < 2; mode++) {
        rt = mk(&pf, place, 0, mode, 0.0f, NULL);
        if (!rt) return;
        if (mode == 0) planner_placement(&pf, rt, cur, 1, want);
        int uses_vk = 0;
        for (int u = 0; u < 4; u++) uses_vk |= want[u] == vk;
        CHECK(uses_vk); /* and so not the survivor rule's all:cpu */
        qeil_fault f = {cpu1, QEIL_FAULT_NONE, 0};
        CHECK_EQ_INT(run_gen(rt, &f, ref, NULL, &nref), QEIL_OK);
        const uint64_t ops = qeil_runtime_fault_ops(rt);
        /* a fault in the prefill, in the first decode step and in the last */
        const uint64_t at[3] = {2, ops / 2, ops - 1};
        for (int i = 0; i < 3 && !test_failed_; i++) {
            f.kind = QEIL_FAULT_ERROR;
            f.op = at[i];
            n_runs++;
            CHECK_EQ_INT(run_gen(rt, &f, got, NULL, &ngot), QEIL_OK);
            qeil_runtime_recovery r;
            if (!one_recovery(rt, &r)) break;
            check_planner(&r, cpu1);
            CHECK_EQ_STR(r.device, "cpu1");
            for (int u = 0; u < 4; u++) CHECK_EQ_INT(r.placement[u], want[u]);
            if (ngot == nref && memcmp(got, ref, sizeof *ref * nref) == 0) n_ok++;
            else TEST_FAIL_("op %llu: tokens differ", (unsigned long long)at[i]);
        }
        qeil_runtime_free(rt);
    }
    printf("  cpu+cpu1+vk0: cpu1 failed %u times, every time placed by the planner (%s%s%s%s), "
           "%u identical\n",
           n_runs, qeil_engine_device_name(want[0]), qeil_engine_device_name(want[1]),
           qeil_engine_device_name(want[2]), qeil_engine_device_name(want[3]), n_ok);
    CHECK_EQ_INT(n_ok, n_runs);
}

/* The survivor's pool cannot hold the model in the profile: no feasible
 * plan, so the survivor rule places, and the record says why. A platform
 * whose units name no local device (the catalog's) goes to the survivor
 * rule too. With nothing left at all the request ends with a clear error,
 * and the runtime serves the next request. */
TEST(planner_failure_falls_back_or_ends_clearly)
{
    if (!model[0]) SKIP("no model");
    qeil_platform pf;
    CHECK_EQ_INT(qeil_platform_load(ctx, PF_CPU2, &pf), QEIL_OK);
    if (test_failed_) return;
    pf.pools[1].capacity_B = 4096; /* cpu1's pool: far below the model */
    qeil_runtime *rt = mk(&pf, "emb..b0:cpu,b1..head:cpu1", 0, QEIL_KV_REBUILD_HOST_COPY, 0.9f, NULL);
    if (!rt) return;
    int32_t ref[N_GEN], got[N_GEN];
    uint32_t nref = 0, ngot = 0;
    qeil_fault f = {0, QEIL_FAULT_NONE, 0};
    CHECK_EQ_INT(run_gen(rt, &f, ref, NULL, &nref), QEIL_OK);
    f = (qeil_fault){0, QEIL_FAULT_ERROR, 20};
    if (run_gen(rt, &f, got, NULL, &ngot) != QEIL_OK) TEST_FAIL_("%s", qeil_ctx_errmsg(ctx));
    qeil_runtime_recovery r;
    if (one_recovery(rt, &r)) {
        CHECK_EQ_STR(r.method, "survivor");
        CHECK_CONTAINS(r.fallback, "planner: re-plan: ");
        CHECK_CONTAINS(r.fallback, "feasible");
        CHECK_EQ_INT(r.evaluations, 0);
        for (int u = 0; u < 4; u++) CHECK_EQ_STR(qeil_engine_device_name(r.placement[u]), "cpu1");
    }
    CHECK(ngot == nref && memcmp(got, ref, sizeof *ref * nref) == 0);
    qeil_runtime_free(rt);

    /* the planner may use a device of the profile the placement did not:
     * all on cpu, cpu fails, the plan puts everything on cpu1 */
    CHECK_EQ_INT(qeil_platform_load(ctx, PF_CPU2, &pf), QEIL_OK);
    rt = mk(&pf, "all:cpu", 0, QEIL_KV_REBUILD_HOST_COPY, 0.9f, NULL);
    if (!rt) return;
    f = (qeil_fault){0, QEIL_FAULT_NONE, 0};
    CHECK_EQ_INT(run_gen(rt, &f, ref, NULL, &nref), QEIL_OK);
    f = (qeil_fault){0, QEIL_FAULT_OOM, 30};
    CHECK_EQ_INT(run_gen(rt, &f, got, NULL, &ngot), QEIL_OK);
    if (one_recovery(rt, &r)) {
        check_planner(&r, 0);
        for (int u = 0; u < 4; u++) CHECK_EQ_STR(qeil_engine_device_name(r.placement[u]), "cpu1");
    }
    CHECK(ngot == nref && memcmp(got, ref, sizeof *ref * nref) == 0);
    qeil_runtime_free(rt);

    /* cpu1 names no device: no unit left to plan on, no survivor in the
     * placement: the request ends, the next one runs */
    pf.units[1].device[0] = '\0';
    rt = mk(&pf, "all:cpu", 0, QEIL_KV_REBUILD_HOST_COPY, 0.9f, NULL);
    if (!rt) return;
    f = (qeil_fault){0, QEIL_FAULT_ERROR, 30};
    CHECK_EQ_INT(run_gen(rt, &f, got, NULL, &ngot), QEIL_ERR_DEVICE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "device cpu failed (error) and no other device of the "
                                         "placement survives: the request ends");
    f = (qeil_fault){0, QEIL_FAULT_NONE, 0};
    CHECK_EQ_INT(run_gen(rt, &f, got, NULL, &ngot), QEIL_OK);
    CHECK(ngot == nref && memcmp(got, ref, sizeof *ref * nref) == 0);
    qeil_runtime_free(rt);

    /* a catalog platform: no local device named */
    rt = mk(NULL, "emb..b0:cpu,b1..head:cpu1", 0, QEIL_KV_REBUILD_HOST_COPY, 0.9f, NULL);
    if (!rt) return;
    f = (qeil_fault){2, QEIL_FAULT_ERROR, 10};
    CHECK_EQ_INT(run_gen(rt, &f, got, NULL, &ngot), QEIL_OK);
    if (one_recovery(rt, &r)) {
        CHECK_EQ_STR(r.method, "survivor");
        CHECK_CONTAINS(r.fallback, "names no local device");
    }
    qeil_runtime_free(rt);
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        printf("FAIL setup: no temp dir\n");
        return 1;
    }
    if (access(PF_CPU2, R_OK) != 0) {
        printf("FAIL setup: run from the repository root (no %s)\n", PF_CPU2);
        return 1;
    }
    const char *runner = getenv("QEIL_TEST_RUNNER");
    if (runner && runner[0]) {
        g_stride = EMU_STRIDE;
        printf("# under an emulator (%s): the fault sweep fails every %dth op and the last, "
               "not every op\n", runner, EMU_STRIDE);
    }
    ctx = qeil_ctx_create(NULL);
    RUN(make_tiny_model);
    RUN(planner_failure_falls_back_or_ends_clearly);
    RUN(every_op_planner_cpu_cpu1);
    RUN(planner_placement_is_the_plans_cpu_cpu1_vk0);
    qeil_ctx_free(ctx);
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) printf("# could not remove %s\n", tmpdir);
    return test_summary("recover_plan");
}
