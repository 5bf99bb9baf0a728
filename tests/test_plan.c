/* test_plan.c — hypervolume, Pareto archive, PGSAM and the baselines.
 *
 * Platforms and workloads are built by hand here (no catalog, no GGUF), so
 * the planner is tested on instances whose every number is on this page.
 * Hypervolume and archive tests use no energy model at all. */
#include "plan/archive.h"
#include "qeil/plan.h"
#include "test.h"

#include <stdint.h>

/* ------------------------------------------------------------------------ */
/* Hand-built platforms and workloads                                       */
/* ------------------------------------------------------------------------ */

/* One compute unit; peak in FLOP/s (f16 and int8 both supported, int8 at
 * twice the f16 rate as on most NPUs/GPUs), bandwidth in B/s, DVFS points
 * at 60 %, 80 % and 100 % of f_nom (n_dvfs of them from the top). */
static qeil_unit mk_unit(const char *name, qeil_unit_kind kind, int pool, double peak_f16,
                         double bw_Bps, double e_op_J, double e_byte_J, double p_const_W,
                         double p_leak_W, double r_th_KpW, int n_dvfs)
{
    qeil_unit u;
    memset(&u, 0, sizeof u);
    snprintf(u.name, sizeof u.name, "%s", name);
    u.kind = kind;
    u.pool = pool;
    u.peak_ops[QEIL_DT_F32] = peak_f16 / 2;
    u.peak_ops[QEIL_DT_F16] = peak_f16;
    u.peak_ops[QEIL_DT_INT8] = peak_f16 * 2;
    u.peak_ops[QEIL_DT_INT4] = 0;
    u.mem_bw_Bps = bw_Bps;
    u.eta_compute = 0.6;
    u.eta_mem = 0.8;
    u.e_op_J[QEIL_DT_F32] = e_op_J * 2;
    u.e_op_J[QEIL_DT_F16] = e_op_J;
    u.e_op_J[QEIL_DT_INT8] = e_op_J / 2;
    u.e_byte_J = e_byte_J;
    u.p_const_W = p_const_W;
    u.p_leak_ref_W = p_leak_W;
    u.t_leak_ref_C = 25;
    u.leak_kappa_perK = 0.0693;
    u.r_th_KpW = r_th_KpW;
    u.c_th_JpK = 20;
    u.t_amb_C = 25;
    u.t_max_C = 100;
    static const double fr[3] = {0.6, 0.8, 1.0}, vr[3] = {0.8, 0.9, 1.0};
    u.n_dvfs = n_dvfs;
    for (int k = 0; k < n_dvfs; k++) {
        u.dvfs[k].freq_Hz = 2e9 * fr[3 - n_dvfs + k];
        u.dvfs[k].volt_V = 1.0 * vr[3 - n_dvfs + k];
    }
    u.dvfs_nominal = n_dvfs - 1;
    u.src_compute = u.src_power = u.src_thermal = QEIL_SRC_DEFAULT;
    return u;
}

static qeil_pool mk_pool(const char *name, double cap_B, double bw_Bps)
{
    qeil_pool p;
    memset(&p, 0, sizeof p);
    snprintf(p.name, sizeof p.name, "%s", name);
    p.capacity_B = cap_B;
    p.bw_Bps = bw_Bps;
    return p;
}

/* Phone/laptop-style SoC: CPU + iGPU (+ NPU) sharing one LPDDR pool. */
static qeil_platform soc(int n_units, int n_dvfs, double cap_B)
{
    qeil_platform pf;
    memset(&pf, 0, sizeof pf);
    snprintf(pf.name, sizeof pf.name, "test-soc%d", n_units);
    pf.n_pools = 1;
    pf.pools[0] = mk_pool("lpddr5", cap_B, 100e9);
    pf.units[0] = mk_unit("cpu", QEIL_UNIT_CPU, 0, 1.0e12, 60e9, 8e-12, 40e-12, 4.0, 0.10, 2.0, n_dvfs);
    pf.units[1] = mk_unit("igpu", QEIL_UNIT_IGPU, 0, 8.0e12, 90e9, 2e-12, 30e-12, 3.0, 0.10, 2.5, n_dvfs);
    if (n_units > 2)
        pf.units[2] = mk_unit("npu", QEIL_UNIT_NPU, 0, 12.0e12, 70e9, 0.6e-12, 25e-12, 1.0, 0.03, 4.0, n_dvfs);
    if (n_units > 3)
        pf.units[3] = mk_unit("dsp", QEIL_UNIT_NPU, 0, 3.0e12, 50e9, 1.0e-12, 20e-12, 0.5, 0.02, 5.0, n_dvfs);
    pf.n_units = n_units;
    pf.rho_max = 0.9;
    return pf;
}

/* Desktop: CPU on DDR5 (pool 0) + discrete GPU on GDDR (pool 1), PCIe link. */
static qeil_platform dgpu(int n_dvfs, double gpu_cap_B)
{
    qeil_platform pf;
    memset(&pf, 0, sizeof pf);
    snprintf(pf.name, sizeof pf.name, "test-dgpu");
    pf.n_pools = 2;
    pf.pools[0] = mk_pool("ddr5", 32e9, 80e9);
    pf.pools[1] = mk_pool("gddr7", gpu_cap_B, 900e9);
    pf.units[0] = mk_unit("cpu", QEIL_UNIT_CPU, 0, 1.5e12, 70e9, 8e-12, 40e-12, 10.0, 0.3, 0.5, n_dvfs);
    pf.units[1] = mk_unit("gpu", QEIL_UNIT_GPU, 1, 80e12, 850e9, 0.5e-12, 8e-12, 40.0, 1.0, 0.25, n_dvfs);
    pf.n_units = 2;
    pf.n_links = 1;
    pf.links[0].pool_a = 0;
    pf.links[0].pool_b = 1;
    pf.links[0].bw_Bps = 25e9;
    pf.links[0].e_byte_J = 60e-12;
    pf.links[0].latency_s = 10e-6;
    pf.rho_max = 0.9;
    return pf;
}

/* A small int8 decoder: n_blocks blocks of `bp` parameters (1 byte each),
 * an embedding/LM head of vocab × d parameters, P-token prompt, N generated
 * tokens, k samples. FLOPs: 2 per weight per token; KV: kvb bytes per token
 * per block (K and V). */
static qeil_workload mk_workload(uint32_t n_blocks, double bp, uint32_t P, uint32_t N, uint32_t k)
{
    const double d = 2048, vocab = 32000, kvb = 2 * 256 * 2;
    qeil_workload wl;
    memset(&wl, 0, sizeof wl);
    snprintf(wl.model_name, sizeof wl.model_name, "test-%ublk", (unsigned)n_blocks);
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
            /* a gather: P rows read, no multiply-adds */
            u->pf_weight_B = P * d;
            u->dc_weight_B = d;
        } else {
            u->pf_flops = 2 * params * (head ? 1 : P); /* the head runs on the last prompt token */
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
            u->pf_flops += 2.0 * P * P * 512; /* attention scores + values, causal */
            u->dc_flops += 4.0 * wl.mean_ctx * 512;
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
/* Hypervolume                                                               */
/* ------------------------------------------------------------------------ */

TEST(hv_one_box)
{
    const double p[1][3] = {{1, 2, 3}}, ref[3] = {4, 4, 4};
    /* (4-1)(4-2)(4-3) = 6 */
    CHECK_NEAR(qeil_hypervolume3(NULL, p, 1, ref), 6.0, 0, 1e-12);
    CHECK_NEAR(qeil_hypervolume3(NULL, p, 0, ref), 0.0, 0, 0);
}

TEST(hv_two_overlapping_boxes)
{
    const double p[2][3] = {{1, 2, 3}, {2, 1, 2}}, ref[3] = {4, 4, 4};
    /* 3·2·1 + 2·3·2 − overlap [2,4]×[2,4]×[3,4] (2·2·1) = 6 + 12 − 4 = 14 */
    CHECK_NEAR(qeil_hypervolume3(NULL, p, 2, ref), 14.0, 0, 1e-12);
}

TEST(hv_three_points_on_a_plane)
{
    /* x + y + z = 3, ref (3,3,3): each box 3·2·1 = 6 (18 in all); each pair
     * overlaps in a 2·1·1 box (−6); all three in [2,3]^3 (+1): 13. */
    const double p[3][3] = {{0, 1, 2}, {1, 2, 0}, {2, 0, 1}}, ref[3] = {3, 3, 3};
    CHECK_NEAR(qeil_hypervolume3(NULL, p, 3, ref), 13.0, 0, 1e-12);
}

TEST(hv_ignores_points_not_better_than_ref)
{
    const double ref[3] = {4, 4, 4};
    const double p[4][3] = {{1, 2, 3}, {4, 0, 0}, {0, 0, 5}, {NAN, 0, 0}};
    CHECK_NEAR(qeil_hypervolume3(NULL, p, 4, ref), 6.0, 0, 1e-12);
    /* a dominated point and a duplicate add nothing */
    const double q[3][3] = {{1, 2, 3}, {2, 3, 3.5}, {1, 2, 3}};
    CHECK_NEAR(qeil_hypervolume3(NULL, q, 3, ref), 6.0, 0, 1e-12);
}

/* Exact reference by brute force on the grid of all coordinates: a cell is
 * dominated when its lower corner is weakly dominated by some point. */
static double hv_grid(const double (*p)[3], size_t n, const double ref[3])
{
    double c[3][64];
    size_t m[3];
    for (int j = 0; j < 3; j++) {
        m[j] = 0;
        for (size_t i = 0; i < n; i++) c[j][m[j]++] = p[i][j];
        c[j][m[j]++] = ref[j];
        for (size_t a = 0; a < m[j]; a++) /* insertion sort */
            for (size_t b = a; b > 0 && c[j][b - 1] > c[j][b]; b--) {
                double t = c[j][b];
                c[j][b] = c[j][b - 1];
                c[j][b - 1] = t;
            }
    }
    double vol = 0;
    for (size_t x = 0; x + 1 < m[0]; x++)
        for (size_t y = 0; y + 1 < m[1]; y++)
            for (size_t z = 0; z + 1 < m[2]; z++) {
                int dom = 0;
                for (size_t i = 0; i < n && !dom; i++)
                    dom = p[i][0] <= c[0][x] && p[i][1] <= c[1][y] && p[i][2] <= c[2][z];
                if (dom) vol += (c[0][x + 1] - c[0][x]) * (c[1][y + 1] - c[1][y]) * (c[2][z + 1] - c[2][z]);
            }
    return vol;
}

/* Random front: points on the positive octant of the unit sphere around
 * (1,1,1) seen from the origin side (mutually non-dominated), plus some
 * interior (dominated) points. */
static size_t random_front(qeil_rng *r, double (*p)[3], size_t n)
{
    for (size_t i = 0; i < n; i++) {
        double v[3], s = 0;
        for (int j = 0; j < 3; j++) {
            v[j] = qeil_rng_uniform(r) + 1e-3;
            s += v[j] * v[j];
        }
        s = sqrt(s);
        double shrink = i % 4 == 3 ? 0.7 : 1.0; /* every 4th point is dominated */
        for (int j = 0; j < 3; j++) p[i][j] = 1.0 - shrink * v[j] / s;
    }
    return n;
}

TEST(hv_matches_grid_and_monte_carlo_on_random_fronts)
{
    qeil_rng r;
    qeil_rng_seed(&r, 7);
    const double ref[3] = {1.1, 1.1, 1.1};
    for (int trial = 0; trial < 5; trial++) {
        double p[40][3];
        size_t n = random_front(&r, p, 12 + (size_t)trial * 7);
        double hv = qeil_hypervolume3(NULL, (const double(*)[3])p, n, ref);
        /* exact, by an independent O(n^4) method */
        CHECK_NEAR(hv, hv_grid((const double(*)[3])p, n, ref), 1e-12, 1e-12);
        /* Monte Carlo over the box [min, ref]: standard error
         * sqrt(q(1-q)/S)·V_box with q the dominated fraction; 5 σ. */
        const int S = 200000;
        double lo[3] = {INFINITY, INFINITY, INFINITY};
        for (size_t i = 0; i < n; i++)
            for (int j = 0; j < 3; j++) lo[j] = fmin(lo[j], p[i][j]);
        double vbox = (ref[0] - lo[0]) * (ref[1] - lo[1]) * (ref[2] - lo[2]);
        int hit = 0;
        for (int s = 0; s < S; s++) {
            double x[3];
            for (int j = 0; j < 3; j++) x[j] = lo[j] + qeil_rng_uniform(&r) * (ref[j] - lo[j]);
            for (size_t i = 0; i < n; i++)
                if (p[i][0] <= x[0] && p[i][1] <= x[1] && p[i][2] <= x[2]) {
                    hit++;
                    break;
                }
        }
        double q = (double)hit / S, mc = q * vbox;
        double se = sqrt(q * (1 - q) / S) * vbox;
        CHECK_NEAR(hv, mc, 0, 5 * se + 1e-12);
    }
}

/* ------------------------------------------------------------------------ */
/* Archive                                                                   */
/* ------------------------------------------------------------------------ */

static void check_archive_valid(const qeil_archive *ar)
{
    for (size_t i = 0; i < ar->n; i++)
        for (size_t k = 0; k < ar->n; k++) {
            if (i == k) continue;
            if (qeil_dominates(ar->m[i].f, ar->m[k].f)) TEST_FAIL_("member %zu dominates member %zu", i, k);
            if (memcmp(ar->m[i].f, ar->m[k].f, sizeof ar->m[i].f) == 0)
                TEST_FAIL_("members %zu and %zu are duplicates", i, k);
        }
}

TEST(archive_rejects_dominated_and_duplicates)
{
    qeil_archive ar;
    CHECK_EQ_INT(qeil_archive_init(NULL, &ar, 8), QEIL_OK);
    qeil_assignment a;
    memset(&a, 0, sizeof a);
    const double p1[3] = {2, 2, 2}, p2[3] = {3, 3, 3}, p3[3] = {1, 3, 2}, p4[3] = {1, 1, 1};
    const double nan3[3] = {NAN, 0, 0};
    CHECK_EQ_INT(qeil_archive_insert(&ar, p1, &a), 1);
    CHECK_EQ_INT(qeil_archive_insert(&ar, p1, &a), 0); /* duplicate */
    CHECK_EQ_INT(qeil_archive_insert(&ar, p2, &a), 0); /* dominated */
    CHECK_EQ_INT(qeil_archive_insert(&ar, nan3, &a), 0);
    CHECK_EQ_INT(qeil_archive_insert(&ar, p3, &a), 1); /* trade-off */
    CHECK_EQ_INT((int)ar.n, 2);
    CHECK_EQ_INT(qeil_archive_insert(&ar, p4, &a), 1); /* dominates both */
    CHECK_EQ_INT((int)ar.n, 1);
    CHECK(memcmp(ar.m[0].f, p4, sizeof p4) == 0);
    qeil_archive_free(&ar);
}

TEST(archive_bounded_nondominated_keeps_extremes)
{
    const size_t cap = 10;
    qeil_archive ar;
    CHECK_EQ_INT(qeil_archive_init(NULL, &ar, cap), QEIL_OK);
    qeil_rng r;
    qeil_rng_seed(&r, 3);
    qeil_assignment a;
    memset(&a, 0, sizeof a);
    double best[3] = {INFINITY, INFINITY, INFINITY};
    for (int i = 0; i < 500; i++) {
        /* points on the plane x + y + z = 1 (mutually non-dominated) */
        double u = qeil_rng_uniform(&r), v = qeil_rng_uniform(&r);
        if (u + v > 1) {
            u = 1 - u;
            v = 1 - v;
        }
        double f[3] = {u, v, 1 - u - v};
        a.batch = (uint16_t)i;
        qeil_archive_insert(&ar, f, &a);
        for (int j = 0; j < 3; j++) best[j] = fmin(best[j], f[j]);
        CHECK(ar.n <= cap);
        check_archive_valid(&ar);
        /* the best point of every objective so far is still there */
        for (int j = 0; j < 3; j++) {
            int found = 0;
            for (size_t k = 0; k < ar.n; k++) found |= ar.m[k].f[j] == best[j];
            if (!found) TEST_FAIL_("insertion %d lost the extreme of objective %d (%g)", i, j, best[j]);
        }
        if (test_failed_) break;
    }
    CHECK_EQ_INT((int)ar.n, (int)cap);
    /* and random (mostly dominated) points keep the invariants too */
    for (int i = 0; i < 2000; i++) {
        double f[3] = {qeil_rng_uniform(&r), qeil_rng_uniform(&r), qeil_rng_uniform(&r)};
        qeil_archive_insert(&ar, f, &a);
        CHECK(ar.n <= cap && ar.n >= 1);
    }
    check_archive_valid(&ar);
    qeil_archive_free(&ar);
}

TEST(archive_is_deterministic)
{
    qeil_archive x, y;
    CHECK_EQ_INT(qeil_archive_init(NULL, &x, 16), QEIL_OK);
    CHECK_EQ_INT(qeil_archive_init(NULL, &y, 16), QEIL_OK);
    qeil_rng r1, r2;
    qeil_rng_seed(&r1, 11);
    qeil_rng_seed(&r2, 11);
    qeil_assignment a;
    memset(&a, 0, sizeof a);
    for (int i = 0; i < 1000; i++) {
        double f[3], g[3];
        for (int j = 0; j < 3; j++) {
            f[j] = qeil_rng_uniform(&r1);
            g[j] = qeil_rng_uniform(&r2);
        }
        a.batch = (uint16_t)(i + 1);
        CHECK_EQ_INT(qeil_archive_insert(&x, f, &a), qeil_archive_insert(&y, g, &a));
    }
    CHECK_EQ_INT((int)x.n, (int)y.n);
    CHECK(memcmp(x.m, y.m, x.n * sizeof *x.m) == 0);
    qeil_archive_free(&x);
    qeil_archive_free(&y);
}

TEST(archive_unbounded_grows)
{
    qeil_archive ar;
    CHECK_EQ_INT(qeil_archive_init(NULL, &ar, 0), QEIL_OK);
    qeil_assignment a;
    memset(&a, 0, sizeof a);
    for (int i = 0; i < 300; i++) {
        double f[3] = {i, 300 - i, 0};
        CHECK_EQ_INT(qeil_archive_insert(&ar, f, &a), 1);
    }
    CHECK_EQ_INT((int)ar.n, 300);
    check_archive_valid(&ar);
    qeil_archive_free(&ar);
}

TEST(sort_idx_is_stable)
{
    const double key[6] = {3, 1, 2, 1, 3, 0};
    size_t idx[6] = {0, 1, 2, 3, 4, 5}, tmp[6];
    qeil_sort_idx(idx, tmp, 6, key);
    const size_t want[6] = {5, 1, 3, 2, 0, 4};
    for (int i = 0; i < 6; i++) CHECK_EQ_INT((int)idx[i], (int)want[i]);
}

/* ------------------------------------------------------------------------ */
/* Parameters and names                                                      */
/* ------------------------------------------------------------------------ */

TEST(method_names_round_trip)
{
    for (int m = QEIL_METHOD_PGSAM; m <= QEIL_METHOD_RANDOM; m++)
        CHECK_EQ_INT(qeil_plan_method_from_name(qeil_plan_method_name((qeil_plan_method)m)), m);
    CHECK_EQ_STR(qeil_plan_method_name(QEIL_METHOD_PGSAM), "pgsam");
    CHECK_EQ_STR(qeil_plan_method_name(QEIL_METHOD_EXHAUSTIVE), "exhaustive");
    CHECK_EQ_INT(qeil_plan_method_from_name("annealing"), -1);
    CHECK_EQ_INT(qeil_plan_method_from_name(NULL), -1);
}

TEST(default_params)
{
    qeil_plan_params pp = qeil_plan_default_params();
    CHECK_EQ_INT(pp.method, QEIL_METHOD_PGSAM);
    CHECK_EQ_INT((long long)pp.seed, 42);
    CHECK(pp.iters >= 1 && pp.iters <= QEIL_MAX_ITERS);
    CHECK_EQ_INT(pp.archive_max, 128);
    CHECK(pp.t_end > 0 && pp.t_end < pp.t0);
    CHECK(pp.momentum >= 0 && pp.momentum < 1);
    CHECK_EQ_INT((long long)pp.exhaustive_full_max, 2000000);
}

TEST(bad_params_are_rejected_naming_the_field)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_platform pf = soc(2, 2, 8e9);
    qeil_workload wl = mk_workload(2, 20e6, 64, 16, 2);
    qeil_front *f = (qeil_front *)&pf; /* must be reset to NULL */
    qeil_plan_params pp = qeil_plan_default_params();

    pp.iters = 0;
    CHECK_EQ_INT(qeil_plan_search(ctx, &pf, &wl, &pp, &f), QEIL_ERR_RANGE);
    CHECK(f == NULL);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "iters: 0");
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "1..10000000");

    pp = qeil_plan_default_params();
    pp.archive_max = 1;
    CHECK_EQ_INT(qeil_plan_search(ctx, &pf, &wl, &pp, &f), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "archive_max: 1");
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "2..256");

    pp = qeil_plan_default_params();
    pp.momentum = 1.0;
    CHECK_EQ_INT(qeil_plan_search(ctx, &pf, &wl, &pp, &f), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "momentum: 1");
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "[0, 1)");

    pp = qeil_plan_default_params();
    pp.t_end = 2.0;
    CHECK_EQ_INT(qeil_plan_search(ctx, &pf, &wl, &pp, &f), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "t_end: 2");
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "t0 = 0.5");

    pp = qeil_plan_default_params();
    pp.t0 = NAN;
    CHECK_EQ_INT(qeil_plan_search(ctx, &pf, &wl, &pp, &f), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "t0: nan");

    pp = qeil_plan_default_params();
    pp.method = (qeil_plan_method)9;
    CHECK_EQ_INT(qeil_plan_search(ctx, &pf, &wl, &pp, &f), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "method: 9");

    pp = qeil_plan_default_params();
    pp.restart_every = 0;
    CHECK_EQ_INT(qeil_plan_search(ctx, &pf, &wl, &pp, &f), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "restart_every: 0");

    pp = qeil_plan_default_params();
    CHECK_EQ_INT(qeil_plan_search(ctx, NULL, &wl, &pp, &f), QEIL_ERR_INVALID);
    CHECK_EQ_INT(qeil_plan_search(ctx, &pf, &wl, &pp, NULL), QEIL_ERR_INVALID);
    qeil_ctx_free(ctx);
}

/* ------------------------------------------------------------------------ */
/* Search                                                                    */
/* ------------------------------------------------------------------------ */

static qeil_front *run(qeil_ctx *ctx, const qeil_platform *pf, const qeil_workload *wl,
                       qeil_plan_method m, uint64_t seed, uint32_t iters)
{
    qeil_plan_params pp = qeil_plan_default_params();
    pp.method = m;
    pp.seed = seed;
    if (iters) pp.iters = iters;
    qeil_front *f = NULL;
    qeil_status st = qeil_plan_search(ctx, pf, wl, &pp, &f);
    if (st != QEIL_OK) {
        TEST_FAIL_("%s: %s: %s", qeil_plan_method_name(m), qeil_status_str(st), qeil_ctx_errmsg(ctx));
        return NULL;
    }
    return f;
}

/* A front is valid when every plan is feasible, re-evaluates to the same
 * objectives, none dominates another, and energy is ascending. */
static void check_front_valid(const qeil_platform *pf, const qeil_workload *wl, const qeil_front *f)
{
    qeil_energy_params ep = qeil_energy_default_params();
    size_t n = qeil_front_size(f);
    CHECK(n >= 1);
    for (size_t i = 0; i < n; i++) {
        const qeil_eval *e = qeil_front_eval(f, i);
        qeil_eval ev;
        CHECK_EQ_INT(qeil_energy_eval(pf, wl, qeil_front_plan(f, i), &ep, &ev), QEIL_OK);
        CHECK(ev.feasible && e->feasible);
        CHECK(ev.energy_J == e->energy_J && ev.latency_s == e->latency_s && ev.underutil == e->underutil);
        if (i > 0) CHECK(qeil_front_eval(f, i - 1)->energy_J <= e->energy_J);
        double a[3] = {e->energy_J, e->latency_s, e->underutil};
        for (size_t k = 0; k < n; k++) {
            const qeil_eval *o = qeil_front_eval(f, k);
            double b[3] = {o->energy_J, o->latency_s, o->underutil};
            if (k != i && qeil_dominates(b, a)) TEST_FAIL_("front plan %zu dominates plan %zu", k, i);
        }
    }
    CHECK(qeil_front_plan(f, n) == NULL && qeil_front_eval(f, n) == NULL);
}

static void front_points(const qeil_front *f, double (*p)[3])
{
    for (size_t i = 0; i < qeil_front_size(f); i++) {
        const qeil_eval *e = qeil_front_eval(f, i);
        p[i][0] = e->energy_J;
        p[i][1] = e->latency_s;
        p[i][2] = e->underutil;
    }
}

/* HV of PGSAM's front over HV of the exhaustive front, reference point
 * 1.1 × the nadir of the union of both fronts. */
static double hv_ratio(const qeil_front *pg, const qeil_front *ex)
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
    for (int j = 0; j < 3; j++) ref[j] = ref[j] > 0 ? 1.1 * ref[j] : 0.1; /* underutil may be 0 */
    return qeil_front_hypervolume(pg, ref) / qeil_front_hypervolume(ex, ref);
}

TEST(same_seed_gives_identical_front)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_platform pf = soc(3, 3, 8e9);
    qeil_workload wl = mk_workload(8, 50e6, 256, 64, 4);
    qeil_front *a = run(ctx, &pf, &wl, QEIL_METHOD_PGSAM, 1234, 3000);
    qeil_front *b = run(ctx, &pf, &wl, QEIL_METHOD_PGSAM, 1234, 3000);
    if (a && b) {
        CHECK_EQ_INT((int)qeil_front_size(a), (int)qeil_front_size(b));
        CHECK_EQ_INT((long long)qeil_front_evaluations(a), 3000);
        for (size_t i = 0; i < qeil_front_size(a) && i < qeil_front_size(b); i++) {
            CHECK(memcmp(qeil_front_plan(a, i), qeil_front_plan(b, i), sizeof(qeil_assignment)) == 0);
            const qeil_eval *x = qeil_front_eval(a, i), *y = qeil_front_eval(b, i);
            CHECK(memcmp(&x->energy_J, &y->energy_J, sizeof(double)) == 0);
            CHECK(memcmp(&x->latency_s, &y->latency_s, sizeof(double)) == 0);
            CHECK(memcmp(&x->underutil, &y->underutil, sizeof(double)) == 0);
        }
        check_front_valid(&pf, &wl, a);
    }
    qeil_front_free(a);
    qeil_front_free(b);
    /* other seeds: different walks, still valid fronts */
    for (uint64_t seed = 1; seed <= 3; seed++) {
        qeil_front *c = run(ctx, &pf, &wl, QEIL_METHOD_PGSAM, seed, 2000);
        if (c) check_front_valid(&pf, &wl, c);
        qeil_front_free(c);
    }
    qeil_ctx_free(ctx);
}

/* full: the exhaustive search enumerates every plan (a true ground truth),
 * so no PGSAM plan may dominate one of its plans and the ratio is <= 1. */
static void pgsam_vs_exhaustive(const qeil_platform *pf, const qeil_workload *wl, const char *what,
                                int full)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_front *ex = run(ctx, pf, wl, QEIL_METHOD_EXHAUSTIVE, 0, 0);
    qeil_front *pg = run(ctx, pf, wl, QEIL_METHOD_PGSAM, 42, 0);
    if (ex && pg) {
        check_front_valid(pf, wl, ex);
        check_front_valid(pf, wl, pg);
        double r = hv_ratio(pg, ex);
        printf("  %s: exhaustive %zu plans (%llu evaluated), pgsam %zu plans, HV ratio %.5f\n", what,
               qeil_front_size(ex), (unsigned long long)qeil_front_evaluations(ex), qeil_front_size(pg), r);
        CHECK(r >= 0.99);
        if (full) {
            CHECK(r <= 1.0 + 1e-12);
            for (size_t i = 0; i < qeil_front_size(ex); i++) {
                const qeil_eval *e = qeil_front_eval(ex, i);
                double a[3] = {e->energy_J, e->latency_s, e->underutil}, b[3];
                for (size_t k = 0; k < qeil_front_size(pg); k++) {
                    const qeil_eval *o = qeil_front_eval(pg, k);
                    b[0] = o->energy_J;
                    b[1] = o->latency_s;
                    b[2] = o->underutil;
                    if (qeil_dominates(b, a))
                        TEST_FAIL_("%s: pgsam plan %zu dominates ground-truth plan %zu", what, k, i);
                }
            }
        }
    }
    qeil_front_free(ex);
    qeil_front_free(pg);
    qeil_ctx_free(ctx);
}

TEST(pgsam_matches_exhaustive_two_units)
{
    /* 2 blocks + embedding + head on CPU + iGPU, 2 DVFS points, batch {1,2}:
     * full enumeration, 2^8 · 2·2 · 2 = 2048 plans. */
    qeil_platform pf = soc(2, 2, 8e9);
    qeil_workload wl = mk_workload(2, 50e6, 256, 64, 2);
    pgsam_vs_exhaustive(&pf, &wl, "soc2 x 4 units", 1);
    /* the full enumeration really is 2^8 · 2·2 · 2 = 2048 plans */
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_front *ex = run(ctx, &pf, &wl, QEIL_METHOD_EXHAUSTIVE, 0, 0);
    CHECK_EQ_INT((long long)qeil_front_evaluations(ex), 2048);
    qeil_front_free(ex);
    qeil_ctx_free(ctx);
}

TEST(pgsam_matches_exhaustive_three_unit_soc)
{
    /* 4 blocks on CPU + iGPU + NPU, 2 DVFS points, batch 1..3:
     * 3^12 · 2^3 · 3 > 2e6, so contiguous-segment plans. */
    qeil_platform pf = soc(3, 2, 8e9);
    qeil_workload wl = mk_workload(4, 50e6, 256, 64, 3);
    pgsam_vs_exhaustive(&pf, &wl, "soc3 x 6 units", 0);
}

TEST(pgsam_matches_exhaustive_two_pools_with_link)
{
    /* CPU + discrete GPU whose 0.6 GB cannot hold all 6 blocks + embedding
     * + head (≈0.53 GB + 2·65 MB), so the memory ceiling binds. */
    qeil_platform pf = dgpu(3, 0.6e9);
    qeil_workload wl = mk_workload(6, 90e6, 256, 64, 4);
    pgsam_vs_exhaustive(&pf, &wl, "dgpu x 8 units", 0);
}

TEST(pgsam_matches_exhaustive_thermal_trap)
{
    /* A leaky GPU (11 W at 25 °C, 0.25 K/W) runs away thermally at its
     * nominal (top) DVFS point but is feasible one point lower, so no plan
     * reaches it by a single move from the CPU: the thermal repair must. */
    qeil_platform pf = dgpu(3, 16e9);
    pf.units[1].p_leak_ref_W = 11;
    pf.units[1].r_th_KpW = 0.25;
    qeil_workload wl = mk_workload(6, 90e6, 256, 64, 4);
    qeil_energy_params ep = qeil_energy_default_params();
    qeil_assignment a;
    qeil_eval ev;
    qeil_assignment_uniform(&a, &pf, &wl, 1, 4);
    CHECK_EQ_INT(qeil_energy_eval(&pf, &wl, &a, &ep, &ev), QEIL_OK);
    CHECK(ev.infeas & QEIL_INFEAS_THERMAL); /* the trap is armed */
    pgsam_vs_exhaustive(&pf, &wl, "thermal trap x 8 units", 0);
}

static char warn_msg[512];
static void capture_warn(void *user, qeil_log_level lvl, const char *msg)
{
    (void)user;
    if (lvl == QEIL_LOG_WARN) snprintf(warn_msg, sizeof warn_msg, "%s", msg);
}

TEST(exhaustive_restricts_large_instances_and_says_so)
{
    /* 5 units, 10 work units, 1 DVFS point, 1 sample: 27 545 contiguous
     * placements per phase, 27 545² ≈ 7.6e8 joint plans > 5e7, so the
     * enumeration falls back to decode = prefill: exactly 27 545 plans. */
    qeil_platform pf = soc(4, 1, 16e9);
    pf.units[4] = pf.units[3];
    snprintf(pf.units[4].name, sizeof pf.units[4].name, "dsp2");
    pf.n_units = 5;
    qeil_workload wl = mk_workload(8, 20e6, 64, 16, 1);
    qeil_ctx_params cp = qeil_ctx_default_params();
    cp.log = capture_warn;
    cp.log_level = QEIL_LOG_WARN;
    qeil_ctx *ctx = qeil_ctx_create(&cp);
    warn_msg[0] = '\0';
    qeil_front *ex = run(ctx, &pf, &wl, QEIL_METHOD_EXHAUSTIVE, 0, 0);
    if (ex) {
        CHECK_EQ_INT((long long)qeil_front_evaluations(ex), 27545);
        check_front_valid(&pf, &wl, ex);
        for (size_t i = 0; i < qeil_front_size(ex); i++) {
            const qeil_assignment *a = qeil_front_plan(ex, i);
            CHECK(memcmp(a->pf_unit, a->dc_unit, wl.n_units) == 0);
        }
    }
    CHECK_CONTAINS(warn_msg, "restricted");
    CHECK_CONTAINS(warn_msg, "decode placement = prefill placement");
    qeil_front_free(ex);
    qeil_ctx_free(ctx);
}

TEST(baselines_are_feasible_single_plans)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_platform pfs[2] = {soc(3, 3, 8e9), dgpu(3, 16e9)};
    qeil_workload wl = mk_workload(8, 50e6, 256, 64, 4);
    qeil_energy_params ep = qeil_energy_default_params();
    for (int k = 0; k < 2; k++) {
        const qeil_platform *pf = &pfs[k];
        qeil_front *st = run(ctx, pf, &wl, QEIL_METHOD_STANDARD, 0, 0);
        qeil_front *gr = run(ctx, pf, &wl, QEIL_METHOD_GREEDY, 0, 0);
        if (!st || !gr) {
            qeil_front_free(st);
            qeil_front_free(gr);
            continue;
        }
        CHECK_EQ_INT((int)qeil_front_size(st), 1);
        CHECK_EQ_INT((int)qeil_front_size(gr), 1);
        check_front_valid(pf, &wl, st);
        check_front_valid(pf, &wl, gr);
        /* standard = the fastest feasible single-unit plan, by hand */
        double fastest = INFINITY;
        for (int d = 0; d < pf->n_units; d++) {
            qeil_assignment a;
            qeil_eval ev;
            qeil_assignment_uniform(&a, pf, &wl, d, (int)wl.samples);
            CHECK_EQ_INT(qeil_energy_eval(pf, &wl, &a, &ep, &ev), QEIL_OK);
            if (ev.feasible) fastest = fmin(fastest, ev.latency_s);
        }
        CHECK(qeil_front_eval(st, 0)->latency_s >= fastest);
        CHECK_NEAR(qeil_front_eval(st, 0)->latency_s, fastest, 1e-12, 0);
        const qeil_assignment *a = qeil_front_plan(st, 0);
        for (uint32_t w = 1; w < wl.n_units; w++) CHECK(a->pf_unit[w] == a->pf_unit[0] && a->dc_unit[w] == a->pf_unit[0]);
        CHECK_EQ_INT(a->batch, (int)wl.samples);
        /* greedy: prefill on the highest-peak unit, nominal DVFS, batch = k */
        const qeil_assignment *g = qeil_front_plan(gr, 0);
        int top = 0;
        for (int d = 1; d < pf->n_units; d++)
            if (pf->units[d].peak_ops[QEIL_DT_INT8] > pf->units[top].peak_ops[QEIL_DT_INT8]) top = d;
        CHECK_EQ_INT(g->pf_unit[1], top);
        CHECK_EQ_INT(g->batch, (int)wl.samples);
        for (int d = 0; d < pf->n_units; d++) CHECK_EQ_INT(g->dvfs[d], pf->units[d].dvfs_nominal);
        qeil_front_free(st);
        qeil_front_free(gr);
    }
    qeil_ctx_free(ctx);
}

TEST(random_baseline_spends_its_budget)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_platform pf = soc(3, 3, 8e9);
    qeil_workload wl = mk_workload(8, 50e6, 256, 64, 4);
    qeil_front *f = run(ctx, &pf, &wl, QEIL_METHOD_RANDOM, 5, 1500);
    if (f) {
        CHECK_EQ_INT((long long)qeil_front_evaluations(f), 1500);
        CHECK(qeil_front_size(f) <= 128);
        check_front_valid(&pf, &wl, f);
    }
    qeil_front_free(f);
    qeil_ctx_free(ctx);
}

TEST(infeasible_everywhere_names_memory)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_platform pf = soc(3, 2, 1e6); /* 1 MB of memory for ~0.5 GB of weights */
    qeil_workload wl = mk_workload(4, 50e6, 256, 64, 2);
    for (int m = QEIL_METHOD_PGSAM; m <= QEIL_METHOD_RANDOM; m++) {
        qeil_plan_params pp = qeil_plan_default_params();
        pp.method = (qeil_plan_method)m;
        pp.iters = 500;
        qeil_front *f = NULL;
        CHECK_EQ_INT(qeil_plan_search(ctx, &pf, &wl, &pp, &f), QEIL_ERR_INFEASIBLE);
        CHECK(f == NULL);
        CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "memory");
        CHECK_CONTAINS(qeil_ctx_errmsg(ctx), qeil_plan_method_name((qeil_plan_method)m));
    }
    /* every unit failed: health */
    qeil_plan_params pp = qeil_plan_default_params();
    memset(pp.energy.healthy, 0, sizeof pp.energy.healthy);
    qeil_front *f = NULL;
    pf = soc(3, 2, 8e9);
    CHECK_EQ_INT(qeil_plan_search(ctx, &pf, &wl, &pp, &f), QEIL_ERR_INFEASIBLE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "health");
    qeil_ctx_free(ctx);
}

TEST(failed_unit_is_avoided)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_platform pf = soc(3, 2, 8e9);
    qeil_workload wl = mk_workload(4, 50e6, 256, 64, 2);
    qeil_plan_params pp = qeil_plan_default_params();
    pp.iters = 2000;
    pp.energy.healthy[2] = 0; /* the NPU failed */
    for (int m = QEIL_METHOD_PGSAM; m <= QEIL_METHOD_RANDOM; m++) {
        pp.method = (qeil_plan_method)m;
        qeil_front *f = NULL;
        CHECK_EQ_INT(qeil_plan_search(ctx, &pf, &wl, &pp, &f), QEIL_OK);
        for (size_t i = 0; i < qeil_front_size(f); i++) {
            const qeil_assignment *a = qeil_front_plan(f, i);
            for (uint32_t w = 0; w < wl.n_units; w++) CHECK(a->pf_unit[w] != 2 && a->dc_unit[w] != 2);
        }
        qeil_front_free(f);
    }
    qeil_ctx_free(ctx);
}

TEST(violations_are_counted_per_placement)
{
    /* 4 blocks + embedding + head = 6 work units, f16; the NPU (unit 2) has
     * int8 only. All on the NPU: 6 prefill + 6 decode placements without
     * their type = 12; one block moved to the CPU in both phases = 10. */
    qeil_platform pf = soc(3, 1, 8e9);
    pf.units[2].peak_ops[QEIL_DT_F16] = pf.units[2].peak_ops[QEIL_DT_F32] = 0;
    qeil_workload wl = mk_workload(4, 50e6, 64, 16, 1);
    for (uint32_t w = 0; w < wl.n_units; w++) wl.dtype[w] = QEIL_DT_F16;
    qeil_energy_params ep = qeil_energy_default_params();
    qeil_assignment a;
    qeil_eval ev;
    qeil_assignment_uniform(&a, &pf, &wl, 2, 1);
    CHECK_EQ_INT(qeil_energy_eval(&pf, &wl, &a, &ep, &ev), QEIL_OK);
    CHECK(ev.infeas & QEIL_INFEAS_DTYPE);
    CHECK_EQ_INT((int)ev.n_violations, 12);
    a.pf_unit[1] = a.dc_unit[1] = 0;
    CHECK_EQ_INT(qeil_energy_eval(&pf, &wl, &a, &ep, &ev), QEIL_OK);
    CHECK_EQ_INT((int)ev.n_violations, 10);
    /* health: the CPU failed, block 1 on it in both phases (2), the rest
     * still on the NPU without f16 (10) */
    ep.healthy[0] = 0;
    CHECK_EQ_INT(qeil_energy_eval(&pf, &wl, &a, &ep, &ev), QEIL_OK);
    CHECK_EQ_INT((int)ev.n_violations, 12);
    /* feasible: everything on the CPU, all healthy */
    ep.healthy[0] = 1;
    qeil_assignment_uniform(&a, &pf, &wl, 0, 1);
    CHECK_EQ_INT(qeil_energy_eval(&pf, &wl, &a, &ep, &ev), QEIL_OK);
    CHECK_EQ_INT((int)ev.n_violations, 0);
    /* link: two pools without a link; block 1 on the GPU in both phases:
     * decode hands the hidden state over 2 missing links (in and out);
     * prefill the same; counted where the evaluation sees them */
    qeil_platform pd = dgpu(1, 16e9);
    pd.n_links = 0;
    qeil_workload w8 = mk_workload(4, 50e6, 64, 16, 1);
    qeil_assignment_uniform(&a, &pd, &w8, 0, 1);
    a.pf_unit[1] = a.dc_unit[1] = 1;
    CHECK_EQ_INT(qeil_energy_eval(&pd, &w8, &a, &ep, &ev), QEIL_OK);
    CHECK(ev.infeas & QEIL_INFEAS_NOLINK);
    CHECK(ev.n_violations >= 2);
}

TEST(pgsam_finds_feasible_from_an_infeasible_start_without_seeds)
{
    /* The walk starts from one plan with every placement on a unit without
     * the data type (its seeds removed through the warm start). Counting
     * violations per placement gives it a gradient; counted once per class
     * it wandered a plateau and ended with no feasible plan. */
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_platform pf = soc(4, 2, 16e9);
    for (int d = 1; d < 4; d++) /* only the CPU has f16 (or f32) */
        pf.units[d].peak_ops[QEIL_DT_F16] = pf.units[d].peak_ops[QEIL_DT_F32] = 0;
    qeil_workload wl = mk_workload(32, 50e6, 256, 64, 2);
    for (uint32_t w = 0; w < wl.n_units; w++) wl.dtype[w] = QEIL_DT_F16;
    qeil_assignment start;
    qeil_assignment_uniform(&start, &pf, &wl, 3, 1);
    qeil_plan_params pp = qeil_plan_default_params();
    pp.iters = 3000;
    pp.start = &start;
    pp.n_start = 1;
    for (uint64_t seed = 1; seed <= 3; seed++) {
        pp.seed = seed;
        qeil_front *f = NULL;
        CHECK_EQ_INT(qeil_plan_search(ctx, &pf, &wl, &pp, &f), QEIL_OK);
        CHECK(qeil_front_size(f) > 0);
        qeil_front_free(f);
    }
    /* malformed start plans are refused naming the field */
    start.batch = 9;
    qeil_front *f = NULL;
    CHECK_EQ_INT(qeil_plan_search(ctx, &pf, &wl, &pp, &f), QEIL_ERR_RANGE);
    CHECK(strstr(qeil_ctx_errmsg(ctx), "start[0].batch: 9") != NULL);
    start.batch = 1;
    start.dc_unit[3] = 7;
    CHECK_EQ_INT(qeil_plan_search(ctx, &pf, &wl, &pp, &f), QEIL_ERR_RANGE);
    CHECK(strstr(qeil_ctx_errmsg(ctx), "start[0].dc_unit[3]: 7") != NULL);
    pp.start = NULL;
    CHECK_EQ_INT(qeil_plan_search(ctx, &pf, &wl, &pp, &f), QEIL_ERR_RANGE);
    CHECK(strstr(qeil_ctx_errmsg(ctx), "n_start") != NULL);
    qeil_ctx_free(ctx);
}

TEST(knee_and_best_under)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_platform pf = soc(3, 3, 8e9);
    qeil_workload wl = mk_workload(8, 50e6, 256, 64, 4);
    qeil_front *f = run(ctx, &pf, &wl, QEIL_METHOD_PGSAM, 42, 4000);
    if (f) {
        size_t n = qeil_front_size(f);
        CHECK_EQ_INT((long long)qeil_front_best_under(f, INFINITY, INFINITY), 0);
        double lmin = INFINITY;
        size_t want = SIZE_MAX;
        for (size_t i = 0; i < n; i++)
            if (qeil_front_eval(f, i)->latency_s < lmin) {
                lmin = qeil_front_eval(f, i)->latency_s;
                want = i;
            }
        /* only the fastest plans qualify; the front is sorted by energy, so
         * the first of them (lowest energy) is returned */
        size_t got = qeil_front_best_under(f, lmin, INFINITY);
        CHECK(got <= want);
        CHECK(qeil_front_eval(f, got)->latency_s <= lmin);
        CHECK_EQ_INT((long long)qeil_front_best_under(f, lmin * 0.5, INFINITY), (long long)SIZE_MAX);
        CHECK_EQ_INT((long long)qeil_front_best_under(f, INFINITY, qeil_front_eval(f, 0)->energy_J * 0.5),
                     (long long)SIZE_MAX);
        /* knee by brute force */
        double lo[3], hi[3];
        for (int j = 0; j < 3; j++) {
            lo[j] = INFINITY;
            hi[j] = -INFINITY;
        }
        double (*p)[3] = malloc(n * sizeof *p);
        front_points(f, p);
        for (size_t i = 0; i < n; i++)
            for (int j = 0; j < 3; j++) {
                lo[j] = fmin(lo[j], p[i][j]);
                hi[j] = fmax(hi[j], p[i][j]);
            }
        size_t knee = 0;
        double bd = INFINITY;
        for (size_t i = 0; i < n; i++) {
            double d2 = 0;
            for (int j = 0; j < 3; j++)
                if (hi[j] > lo[j]) d2 += pow((p[i][j] - lo[j]) / (hi[j] - lo[j]), 2);
            if (d2 < bd) {
                bd = d2;
                knee = i;
            }
        }
        CHECK_EQ_INT((long long)qeil_front_knee(f), (long long)knee);
        free(p);
    }
    qeil_front_free(f);
    CHECK_EQ_INT((long long)qeil_front_knee(NULL), (long long)SIZE_MAX);
    CHECK_EQ_INT((long long)qeil_front_size(NULL), 0);
    qeil_front_free(NULL);
    qeil_ctx_free(ctx);
}

TEST(single_unit_platform_and_tiny_budget)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_platform pf = soc(2, 1, 8e9);
    pf.n_units = 1; /* CPU only, one DVFS point: the only freedom is the batch */
    qeil_workload wl = mk_workload(2, 20e6, 64, 16, 3);
    qeil_front *f = run(ctx, &pf, &wl, QEIL_METHOD_PGSAM, 1, 50);
    if (f) check_front_valid(&pf, &wl, f);
    qeil_front_free(f);
    f = run(ctx, &pf, &wl, QEIL_METHOD_PGSAM, 1, 1); /* one evaluation: the first seed */
    if (f) {
        CHECK_EQ_INT((int)qeil_front_size(f), 1);
        CHECK_EQ_INT((long long)qeil_front_evaluations(f), 1);
    }
    qeil_front_free(f);
    qeil_ctx_free(ctx);
}

int main(void)
{
    RUN(hv_one_box);
    RUN(hv_two_overlapping_boxes);
    RUN(hv_three_points_on_a_plane);
    RUN(hv_ignores_points_not_better_than_ref);
    RUN(hv_matches_grid_and_monte_carlo_on_random_fronts);
    RUN(archive_rejects_dominated_and_duplicates);
    RUN(archive_bounded_nondominated_keeps_extremes);
    RUN(archive_is_deterministic);
    RUN(archive_unbounded_grows);
    RUN(sort_idx_is_stable);
    RUN(method_names_round_trip);
    RUN(default_params);
    RUN(bad_params_are_rejected_naming_the_field);
    RUN(same_seed_gives_identical_front);
    RUN(pgsam_matches_exhaustive_two_units);
    RUN(pgsam_matches_exhaustive_three_unit_soc);
    RUN(pgsam_matches_exhaustive_two_pools_with_link);
    RUN(pgsam_matches_exhaustive_thermal_trap);
    RUN(exhaustive_restricts_large_instances_and_says_so);
    RUN(baselines_are_feasible_single_plans);
    RUN(random_baseline_spends_its_budget);
    RUN(infeasible_everywhere_names_memory);
    RUN(failed_unit_is_avoided);
    RUN(violations_are_counted_per_placement);
    RUN(pgsam_finds_feasible_from_an_infeasible_start_without_seeds);
    RUN(knee_and_best_under);
    RUN(single_unit_platform_and_tiny_budget);
    return test_summary("plan");
}
