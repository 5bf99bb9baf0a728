/* bench_plan.c — planner benchmark (a program, not a test).
 *
 * For 8-, 16- and 32-block models on 2-, 3- and 4-unit platforms (built by
 * hand below so the numbers do not move when the catalog changes), prints a
 * markdown table: PGSAM wall-clock time with the default parameters (median
 * of RUNS runs), front size, the hypervolume ratio against uniform random
 * search at the same evaluation count, and against exhaustive search where
 * that is affordable. Hypervolumes of two fronts use one reference point,
 * 1.1 × the nadir of their union. Results: docs/benchmarks.md.
 *
 *     make bench            # or: build/bench/bench_plan [--quick]
 *
 * Exhaustive runs above 1e7 evaluations are skipped (2e5 with --quick; with
 * --full none are, which takes a few minutes). "ceiling" is the hypervolume
 * ratio of the exhaustive front itself truncated to archive_max plans by the
 * archive's crowding rule: what a perfect search with a bounded archive
 * would score.
 */
#include "qeil/plan.h"
/* internal: the archive, to truncate the exhaustive front to archive_max
 * with the planner's own crowding rule (the best a bounded archive can do) */
#include "plan/archive.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/util.h"

#define RUNS 5

/* ------------------------------------------------------------------------ */
/* Hand-built platforms (datasheet-like round numbers, see the comments)    */
/* ------------------------------------------------------------------------ */

static qeil_unit mk_unit(const char *name, qeil_unit_kind kind, int pool, double peak_int8,
                         double bw_Bps, double e_op_J, double e_byte_J, double p_const_W,
                         double p_leak_W, double r_th_KpW, double f_nom_Hz)
{
    qeil_unit u;
    memset(&u, 0, sizeof u);
    snprintf(u.name, sizeof u.name, "%s", name);
    u.kind = kind;
    u.pool = pool;
    u.peak_ops[QEIL_DT_F32] = peak_int8 / 4;
    u.peak_ops[QEIL_DT_F16] = peak_int8 / 2;
    u.peak_ops[QEIL_DT_INT8] = peak_int8;
    u.mem_bw_Bps = bw_Bps;
    u.eta_compute = 0.6;
    u.eta_mem = 0.8;
    u.e_op_J[QEIL_DT_F32] = e_op_J * 4;
    u.e_op_J[QEIL_DT_F16] = e_op_J * 2;
    u.e_op_J[QEIL_DT_INT8] = e_op_J;
    u.e_byte_J = e_byte_J;
    u.p_const_W = p_const_W;
    u.p_leak_ref_W = p_leak_W;
    u.t_leak_ref_C = 25;
    u.leak_kappa_perK = 0.0693; /* ln 2 / 10 K */
    u.r_th_KpW = r_th_KpW;
    u.c_th_JpK = 30;
    u.t_amb_C = 25;
    u.t_max_C = 100;
    /* three points: 60 % / 0.80 V, 80 % / 0.90 V, 100 % / 1.00 V (nominal) */
    static const double fr[3] = {0.6, 0.8, 1.0}, vr[3] = {0.8, 0.9, 1.0};
    u.n_dvfs = 3;
    for (int k = 0; k < 3; k++) {
        u.dvfs[k].freq_Hz = f_nom_Hz * fr[k];
        u.dvfs[k].volt_V = vr[k];
    }
    u.dvfs_nominal = 2;
    u.src_compute = u.src_power = u.src_thermal = QEIL_SRC_DEFAULT;
    return u;
}

static void add_pool(qeil_platform *pf, const char *name, double cap_B, double bw_Bps)
{
    qeil_pool *p = &pf->pools[pf->n_pools++];
    snprintf(p->name, sizeof p->name, "%s", name);
    p->capacity_B = cap_B;
    p->bw_Bps = bw_Bps;
}

/* 2 units: desktop CPU (DDR5) + discrete GPU (GDDR, 12 GB) over PCIe 4 x16.
 * 3 units: SoC CPU + iGPU + NPU sharing 16 GB LPDDR5X.
 * 4 units: the 3-unit SoC + a discrete GPU (8 GB) on PCIe: the QEIL paper's
 *          laptop shape (CPU + NPU + iGPU + dGPU). */
static qeil_platform platform(int units)
{
    qeil_platform pf;
    memset(&pf, 0, sizeof pf);
    pf.rho_max = 0.9;
    qeil_unit cpu = mk_unit("cpu", QEIL_UNIT_CPU, 0, 4e12, 90e9, 4e-12, 40e-12, 8, 2, 0.6, 4e9);
    if (units == 2) {
        snprintf(pf.name, sizeof pf.name, "bench-cpu-dgpu");
        add_pool(&pf, "ddr5", 64e9, 90e9);
        add_pool(&pf, "gddr6x", 12e9, 900e9);
        pf.units[pf.n_units++] = cpu;
        pf.units[pf.n_units++] = mk_unit("dgpu", QEIL_UNIT_GPU, 1, 300e12, 850e9, 0.4e-12, 7e-12, 35, 4, 0.15, 2.5e9);
    } else {
        snprintf(pf.name, sizeof pf.name, "bench-soc%d", units);
        add_pool(&pf, "lpddr5x", 16e9, 120e9);
        cpu.mem_bw_Bps = 80e9;
        pf.units[pf.n_units++] = cpu;
        pf.units[pf.n_units++] = mk_unit("igpu", QEIL_UNIT_IGPU, 0, 30e12, 110e9, 1.0e-12, 25e-12, 5, 2, 1.2, 2e9);
        pf.units[pf.n_units++] = mk_unit("npu", QEIL_UNIT_NPU, 0, 40e12, 90e9, 0.3e-12, 20e-12, 1.5, 0.5, 2.0, 1.4e9);
        if (units == 4) {
            add_pool(&pf, "gddr6", 8e9, 450e9);
            pf.units[pf.n_units++] = mk_unit("dgpu", QEIL_UNIT_GPU, 1, 150e12, 420e9, 0.5e-12, 8e-12, 20, 8, 0.3, 2.3e9);
        }
    }
    if (pf.n_pools == 2) {
        pf.n_links = 1;
        pf.links[0].pool_a = 0;
        pf.links[0].pool_b = 1;
        pf.links[0].bw_Bps = 25e9; /* PCIe 4.0 x16, sustained */
        pf.links[0].e_byte_J = 50e-12;
        pf.links[0].latency_s = 5e-6;
    }
    return pf;
}

/* An 8B-class int8 decoder cut to n_blocks blocks (218 M parameters per
 * block, d_model 4096, GQA with 8 KV heads of 128, 128k vocabulary), P = 512
 * prompt tokens, N = 128 generated, k = 4 samples. */
static qeil_workload workload(uint32_t n_blocks)
{
    const double d = 4096, vocab = 128256, bp = 218e6, kvb = 2.0 * 8 * 128 * 2;
    const uint32_t P = 512, N = 128, k = 4;
    qeil_workload wl;
    memset(&wl, 0, sizeof wl);
    snprintf(wl.model_name, sizeof wl.model_name, "bench-%ublk", (unsigned)n_blocks);
    wl.prompt_tokens = P;
    wl.gen_tokens = N;
    wl.samples = k;
    wl.mean_ctx = P + (N - 1) / 2.0;
    wl.n_units = n_blocks + 2;
    for (uint32_t w = 0; w < wl.n_units; w++) {
        qeil_unit_work *u = &wl.u[w];
        wl.dtype[w] = QEIL_DT_INT8;
        int emb = w == 0, head = w == wl.n_units - 1;
        double params = emb || head ? vocab * d : bp;
        u->weight_res_B = params;
        if (emb) {
            u->pf_weight_B = P * d;
            u->dc_weight_B = d;
        } else {
            u->pf_flops = 2 * params * (head ? 1 : P);
            u->pf_weight_B = params;
            u->dc_flops = 2 * params;
            u->dc_weight_B = params;
        }
        if (!emb && !head) {
            u->pf_kv_write_B = P * kvb;
            u->pf_kv_read_B = P * kvb * P / 2;
            u->dc_kv_read_B = wl.mean_ctx * kvb;
            u->dc_kv_write_B = kvb;
            u->kv_res_B = (P + N) * kvb;
            u->pf_flops += 2.0 * P * P * d;
            u->dc_flops += 4.0 * wl.mean_ctx * d;
        }
        u->pf_act_B = 8.0 * P * d;
        u->pf_out_B = head ? 4.0 * vocab : 4.0 * P * d;
        u->dc_act_B = 8.0 * d;
        u->dc_out_B = head ? 4.0 * vocab : 4.0 * d;
        u->scratch_B = 4.0 * P * d;
    }
    return wl;
}

/* ------------------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double ratio(const qeil_front *a, const qeil_front *b)
{
    double ref[3] = {0, 0, 0};
    const qeil_front *fs[2] = {a, b};
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < qeil_front_size(fs[k]); i++) {
            const qeil_eval *e = qeil_front_eval(fs[k], i);
            ref[0] = fmax(ref[0], e->energy_J);
            ref[1] = fmax(ref[1], e->latency_s);
            ref[2] = fmax(ref[2], e->underutil);
        }
    for (int j = 0; j < 3; j++) ref[j] = ref[j] > 0 ? 1.1 * ref[j] : 0.1;
    return qeil_front_hypervolume(a, ref) / qeil_front_hypervolume(b, ref);
}

/* HV of the exhaustive front truncated to cap plans by the archive's
 * crowding rule, over HV of the whole exhaustive front; same reference
 * point as ratio(pg, ex). */
static double ceiling(const qeil_front *ex, const qeil_front *pg, uint32_t cap)
{
    double ref[3] = {0, 0, 0};
    const qeil_front *fs[2] = {pg, ex};
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < qeil_front_size(fs[k]); i++) {
            const qeil_eval *e = qeil_front_eval(fs[k], i);
            ref[0] = fmax(ref[0], e->energy_J);
            ref[1] = fmax(ref[1], e->latency_s);
            ref[2] = fmax(ref[2], e->underutil);
        }
    for (int j = 0; j < 3; j++) ref[j] = ref[j] > 0 ? 1.1 * ref[j] : 0.1;
    qeil_archive ar;
    if (qeil_archive_init(NULL, &ar, cap) != QEIL_OK) return NAN;
    for (size_t i = 0; i < qeil_front_size(ex); i++) {
        const qeil_eval *e = qeil_front_eval(ex, i);
        double f[3] = {e->energy_J, e->latency_s, e->underutil};
        qeil_archive_insert(&ar, f, qeil_front_plan(ex, i));
    }
    double(*p)[3] = malloc((ar.n ? ar.n : 1) * sizeof *p);
    double hv = NAN;
    if (p) {
        for (size_t i = 0; i < ar.n; i++) memcpy(p[i], ar.m[i].f, sizeof p[i]);
        hv = qeil_hypervolume3(NULL, (const double(*)[3])p, ar.n, ref) / qeil_front_hypervolume(ex, ref);
        free(p);
    }
    qeil_archive_free(&ar);
    return hv;
}

/* Contiguous-segment plan count as src/plan/baselines.c computes it, with
 * independent prefill/decode placements (mirror 0) or decode = prefill
 * (mirror 1, the first restriction level); used to skip exhaustive runs
 * that would take too long here. */
static double seg_count(double n, unsigned s)
{
    int k = __builtin_popcount(s);
    if (k > n) return 0;
    double b = 1, f = 1;
    for (int i = 1; i <= k - 1; i++) b = b * (n - 1 - (k - 1) + i) / i;
    for (int i = 2; i <= k; i++) f *= i;
    return b * f;
}

static double segment_plans(const qeil_platform *pf, const qeil_workload *wl, int mirror)
{
    unsigned full = (1u << pf->n_units) - 1;
    double n = wl->n_units, total = 0;
    for (unsigned s1 = 1; s1 <= full; s1++)
        for (unsigned s2 = mirror ? s1 : 1; s2 <= (mirror ? s1 : full); s2++) {
            double c = seg_count(n, s1) * (mirror ? 1 : seg_count(n, s2));
            for (int d = 0; d < pf->n_units; d++)
                if ((s1 | s2) & (1u << d)) c *= pf->units[d].n_dvfs;
            total += c;
        }
    return total * wl->samples;
}

static int restricted;
static void on_log(void *user, qeil_log_level lvl, const char *msg)
{
    (void)user;
    if (lvl == QEIL_LOG_WARN && strstr(msg, "restricted")) restricted = 1;
}

int main(int argc, char **argv)
{
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    int full = argc > 1 && strcmp(argv[1], "--full") == 0;
    qeil_ctx_params cp = qeil_ctx_default_params();
    cp.log = on_log;
    cp.log_level = QEIL_LOG_WARN;
    qeil_ctx *ctx = qeil_ctx_create(&cp);
    if (!ctx) return 1;
    qeil_plan_params pp = qeil_plan_default_params();
    printf("PGSAM defaults: iters %u, archive %u, t0 %g, t_end %g, momentum %g, restart_every %u, seed %llu\n\n",
           (unsigned)pp.iters, (unsigned)pp.archive_max, pp.t0, pp.t_end, pp.momentum,
           (unsigned)pp.restart_every, (unsigned long long)pp.seed);
    printf("| blocks | units | platform | PGSAM ms (median of %d) | front | HV / random (same evals) "
           "| exhaustive plans evaluated | exhaustive s | HV / exhaustive | ceiling |\n",
           RUNS);
    printf("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|\n");
    static const uint32_t blocks[3] = {8, 16, 32};
    static const int units[3] = {2, 3, 4};
    int rc = 0;
    for (int bi = 0; bi < 3; bi++)
        for (int ui = 0; ui < 3; ui++) {
            qeil_platform pf = platform(units[ui]);
            qeil_workload wl = workload(blocks[bi]);
            double t[RUNS];
            qeil_front *pg = NULL;
            qeil_status st = QEIL_OK;
            for (int r = 0; r < RUNS && st == QEIL_OK; r++) {
                qeil_front_free(pg);
                pg = NULL;
                pp.method = QEIL_METHOD_PGSAM;
                double t0 = qeil_clock_s();
                st = qeil_plan_search(ctx, &pf, &wl, &pp, &pg);
                t[r] = qeil_clock_s() - t0;
            }
            if (st != QEIL_OK) {
                fprintf(stderr, "pgsam on %s: %s\n", pf.name, qeil_ctx_errmsg(ctx));
                rc = 1;
                continue;
            }
            qsort(t, RUNS, sizeof t[0], cmp_double);
            qeil_front *rnd = NULL;
            pp.method = QEIL_METHOD_RANDOM;
            double r_rand = NAN;
            if (qeil_plan_search(ctx, &pf, &wl, &pp, &rnd) == QEIL_OK) r_rand = ratio(pg, rnd);
            else fprintf(stderr, "random on %s: %s\n", pf.name, qeil_ctx_errmsg(ctx));

            char ex_plans[48] = "—", ex_s[32] = "—", ex_ratio[48] = "— (too large)", ceil_s[32] = "—";
            /* what the exhaustive method will enumerate: unrestricted when
             * within its 5e7 budget, else (usually) the first restriction */
            double seg = segment_plans(&pf, &wl, 0);
            if (seg > 5e7) seg = segment_plans(&pf, &wl, 1);
            if (seg <= (quick ? 2e5 : full ? 5e7 : 1e7)) {
                qeil_front *ex = NULL;
                pp.method = QEIL_METHOD_EXHAUSTIVE;
                restricted = 0;
                double t0 = qeil_clock_s();
                if (qeil_plan_search(ctx, &pf, &wl, &pp, &ex) == QEIL_OK) {
                    double dt = qeil_clock_s() - t0;
                    snprintf(ex_plans, sizeof ex_plans, "%llu%s",
                             (unsigned long long)qeil_front_evaluations(ex), restricted ? " (restricted)" : "");
                    snprintf(ex_s, sizeof ex_s, "%.1f", dt);
                    snprintf(ex_ratio, sizeof ex_ratio, "%.4f", ratio(pg, ex));
                    snprintf(ceil_s, sizeof ceil_s, "%.4f", ceiling(ex, pg, pp.archive_max));
                } else {
                    fprintf(stderr, "exhaustive on %s: %s\n", pf.name, qeil_ctx_errmsg(ctx));
                }
                qeil_front_free(ex);
            }
            printf("| %u | %d | %s | %.1f | %zu | %.4f | %s | %s | %s | %s |\n", (unsigned)blocks[bi], units[ui],
                   pf.name, 1e3 * t[RUNS / 2], qeil_front_size(pg), r_rand, ex_plans, ex_s, ex_ratio, ceil_s);
            fflush(stdout);
            qeil_front_free(pg);
            qeil_front_free(rnd);
        }
    qeil_ctx_free(ctx);
    return rc;
}
