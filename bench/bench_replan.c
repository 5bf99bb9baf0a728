/* bench_replan.c — how fast and how good a warm-started re-plan is (a
 * program, not a test; docs/benchmarks.md "Re-planning").
 *
 * The runtime re-plans between requests when measured times drift from the
 * model or a unit fails (docs/runtime.md). The goal: a re-plan of
 * 32 blocks × 4 units in ≤ 10 ms. Instance: llama-3.1-8b-q4 (32 blocks) on
 * the catalog's qeil-laptop (cpu, igpu, npu, rtx-pro-5000), P=512 N=128 k=4.
 *
 * 1. cold: PGSAM from its seeds, default budget (20,000 evaluations) →
 *    front F0 (the plan in use).
 * 2. the world changes: (a) the GPU runs at half the modeled speed (η_c and
 *    η_m halved: what drift detection measures), (b) the GPU fails.
 * 3. re-plan on the changed instance: cold (seeds, 20,000) against warm
 *    (start = F0's plans, 500 / 1,000 / 1,500 / 2,000 evaluations): wall time
 *    (median of RUNS) and the hypervolume of the warm front as a fraction of
 *    the cold one (one reference point, 1.1 × the nadir of their union),
 *    and the knee's energy and latency against the cold knee's.
 *
 *     make bench && build/bench/bench_replan
 */
#include "qeil/plan.h"
#include "qeil/workload.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/util.h"

#define RUNS 7
#define BUDGETS 4

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median wall time of RUNS searches; *out keeps the last front. */
static double timed_search(qeil_ctx *ctx, const qeil_platform *pf, const qeil_workload *wl,
                           const qeil_plan_params *pp, qeil_front **out)
{
    double t[RUNS];
    for (int r = 0; r < RUNS; r++) {
        qeil_front *f = NULL;
        double t0 = qeil_clock_s();
        if (qeil_plan_search(ctx, pf, wl, pp, &f) != QEIL_OK) {
            fprintf(stderr, "bench_replan: %s\n", qeil_ctx_errmsg(ctx));
            exit(1);
        }
        t[r] = qeil_clock_s() - t0;
        if (r + 1 < RUNS) qeil_front_free(f);
        else *out = f;
    }
    qsort(t, RUNS, sizeof t[0], cmp_d);
    return t[RUNS / 2];
}

static void hv_ratio(const qeil_front *a, const qeil_front *b, double *ha, double *hb)
{
    double ref[3] = {0, 0, 0};
    const qeil_front *fs[2] = {a, b};
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < qeil_front_size(fs[k]); i++) {
            const qeil_eval *ev = qeil_front_eval(fs[k], i);
            ref[0] = fmax(ref[0], ev->energy_J);
            ref[1] = fmax(ref[1], ev->latency_s);
            ref[2] = fmax(ref[2], ev->underutil);
        }
    for (int j = 0; j < 3; j++) ref[j] *= 1.1;
    *ha = qeil_front_hypervolume(a, ref);
    *hb = qeil_front_hypervolume(b, ref);
}

int main(void)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_platform pf;
    qeil_model_desc md;
    qeil_workload wl;
    qeil_workload_params wp = qeil_workload_default_params();
    wp.samples = 4;
    if (!ctx || qeil_platform_load(ctx, "qeil-laptop", &pf) != QEIL_OK ||
        qeil_model_load(ctx, "llama-3.1-8b-q4", &md) != QEIL_OK ||
        qeil_workload_build(ctx, &md, &wp, &wl) != QEIL_OK) {
        fprintf(stderr, "bench_replan: %s\n", ctx ? qeil_ctx_errmsg(ctx) : "out of memory");
        return 1;
    }
    int gpu = -1;
    for (int d = 0; d < pf.n_units; d++)
        if (strcmp(pf.units[d].name, "rtx-pro-5000") == 0) gpu = d;
    if (gpu < 0) {
        fprintf(stderr, "bench_replan: qeil-laptop has no rtx-pro-5000 unit\n");
        return 1;
    }
    qeil_plan_params pp = qeil_plan_default_params();
    qeil_front *f0 = NULL;
    double t_cold0 = timed_search(ctx, &pf, &wl, &pp, &f0);
    size_t n0 = qeil_front_size(f0);
    qeil_assignment *start = malloc(n0 * sizeof *start);
    for (size_t i = 0; i < n0; i++) start[i] = *qeil_front_plan(f0, i);

    printf("instance: %s (%u blocks) on %s (%d units), P=%u N=%u k=%u; initial cold search "
           "%.1f ms, %zu plans on the front\n\n",
           md.name, md.n_layers, pf.name, pf.n_units, wl.prompt_tokens, wl.gen_tokens, wl.samples,
           t_cold0 * 1e3, n0);
    printf("| change | re-plan | evaluations | time (ms, median of %d) | HV / cold | knee energy vs cold | "
           "knee latency vs cold |\n|---|---|---:|---:|---:|---:|---:|\n", RUNS);

    for (int scenario = 0; scenario < 2; scenario++) {
        qeil_platform p2 = pf;
        qeil_plan_params base = qeil_plan_default_params();
        const char *what;
        if (scenario == 0) {
            p2.units[gpu].eta_compute *= 0.5;
            p2.units[gpu].eta_mem *= 0.5;
            what = "GPU at half speed (drift)";
        } else {
            base.energy.healthy[gpu] = 0;
            what = "GPU failed";
        }
        qeil_front *fc = NULL;
        double tc = timed_search(ctx, &p2, &wl, &base, &fc);
        const qeil_eval *kc = qeil_front_eval(fc, qeil_front_knee(fc));
        printf("| %s | cold (seeds) | %u | %.2f | 1.000 | — | — |\n", what, base.iters, tc * 1e3);
        static const uint32_t budgets[BUDGETS] = {500, 1000, 1500, 2000};
        for (int b = 0; b < BUDGETS; b++) {
            qeil_plan_params wpp = base;
            wpp.iters = budgets[b];
            wpp.start = start;
            wpp.n_start = (uint32_t)n0;
            qeil_front *fw = NULL;
            double tw = timed_search(ctx, &p2, &wl, &wpp, &fw);
            double hw, hc;
            hv_ratio(fw, fc, &hw, &hc);
            const qeil_eval *kw = qeil_front_eval(fw, qeil_front_knee(fw));
            printf("| %s | warm (F0's %zu plans) | %u | %.2f | %.3f | %+.1f %% | %+.1f %% |\n", what, n0,
                   wpp.iters, tw * 1e3, hc > 0 ? hw / hc : 0.0,
                   100.0 * (kw->energy_J / kc->energy_J - 1.0),
                   100.0 * (kw->latency_s / kc->latency_s - 1.0));
            qeil_front_free(fw);
        }
        qeil_front_free(fc);
    }
    free(start);
    qeil_front_free(f0);
    qeil_ctx_free(ctx);
    return 0;
}
