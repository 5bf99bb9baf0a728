/* test_probe.c — the CPU probe: SIMD kernels against the portable ones on
 * fixed inputs, parameter checks, a quick real probe whose numbers must be
 * finite, consistent and physically plausible, the documented plateau rule,
 * and the platform built from the result. Kept to well under a second of
 * measuring (tiny min_time, 4 MiB sweep, at most 2 threads). */
#include <unistd.h>

#include "core/cpu.h"
#include "device/cpu_clusters.h"
#include "device/probe_kernels.h"
#include "kernels/quant.h"
#include "qeil/device.h"
#include "test.h"

static qeil_ctx *ctx;

/* Small deterministic generator for kernel inputs. */
static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* ------------------------------------------------------------------------ */
/* Kernels                                                                   */
/* ------------------------------------------------------------------------ */

TEST(dot_scalar_hand_computed)
{
    const uint8_t a[5] = {1, 2, 3, 127, 0};
    const int8_t b[5] = {4, -5, 6, -128, 127};
    /* 1*4 + 2*(-5) + 3*6 + 127*(-128) + 0*127 = 4 - 10 + 18 - 16256 = -16244 */
    CHECK_EQ_INT(qeil_pk_dot_u8s8(QEIL_PK_SCALAR, a, b, 5), -16244);
    CHECK_EQ_INT(qeil_pk_dot_u8s8(QEIL_PK_SCALAR, a, b, 0), 0);
}

TEST(simd_dot_matches_scalar)
{
    enum { N = 4099 };
    static uint8_t a[N];
    static int8_t b[N];
    uint32_t s = 12345;
    /* within the documented precondition: a <= 127; b spans all of int8 */
    for (int i = 0; i < N; i++) {
        a[i] = (uint8_t)(lcg(&s) % 128);
        b[i] = (int8_t)(int)(lcg(&s) % 256 - 128);
    }
    /* the extreme pairs that would saturate vpmaddubsw if a could exceed 127 */
    for (int i = 0; i < 64; i++) {
        a[i] = 127;
        b[i] = -128;
    }
    static const size_t lens[] = {0, 1, 31, 32, 33, 63, 64, 65, 1000, 4096, N};
    int tested = 0;
    for (int isa = QEIL_PK_AVX2; isa < QEIL_PK_COUNT; isa++) {
        if (!qeil_pk_have_int8((qeil_pk_isa)isa)) continue;
        tested++;
        for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
            int32_t want = qeil_pk_dot_u8s8(QEIL_PK_SCALAR, a, b, lens[k]);
            int32_t got = qeil_pk_dot_u8s8((qeil_pk_isa)isa, a, b, lens[k]);
            if (got != want)
                printf("  %s n=%zu: %d != scalar %d\n", qeil_pk_name((qeil_pk_isa)isa, 0),
                       lens[k], (int)got, (int)want);
            CHECK_EQ_INT(got, want);
        }
        /* unaligned start */
        CHECK_EQ_INT(qeil_pk_dot_u8s8((qeil_pk_isa)isa, a + 3, b + 5, 999),
                     qeil_pk_dot_u8s8(QEIL_PK_SCALAR, a + 3, b + 5, 999));
    }
    if (!tested) SKIP("no SIMD int8 kernel on this CPU/build");
}

TEST(simd_triad_matches_scalar)
{
    if (!qeil_pk_have_triad(QEIL_PK_AVX2)) SKIP("no AVX2 on this CPU/build");
    enum { N = 1037 };
    static double a1[N], a2[N], b[N], c[N];
    uint32_t s = 99;
    for (int i = 0; i < N; i++) {
        b[i] = (double)lcg(&s) / 16777216.0 - 0.5;
        c[i] = (double)lcg(&s) / 4096.0 - 2048.0;
    }
    for (size_t n = 0; n <= N; n += (n < 20 ? 1 : 97)) {
        for (int i = 0; i < N; i++) a1[i] = a2[i] = -1.0;
        CHECK_NEAR(qeil_pk_triad(QEIL_PK_SCALAR, a1, b, c, 3.1, n), 24.0 * (double)n, 0, 0);
        CHECK_NEAR(qeil_pk_triad(QEIL_PK_AVX2, a2, b, c, 3.1, n), 24.0 * (double)n, 0, 0);
        /* no FMA contraction in either: bit-identical, and nothing past n written */
        CHECK(memcmp(a1, a2, sizeof a1) == 0);
        if (n < N) CHECK(a2[n] == -1.0);
    }
}

/* The read-only stream: both variants count 24 B per element and sum the
 * same values (small integers: exact in any order). */
TEST(read_stream_counts_and_sums)
{
    enum { N = 1037 };
    static double a[N], b[N], c[N];
    for (int i = 0; i < N; i++) {
        a[i] = i % 7;
        b[i] = (i * 3) % 11;
        c[i] = -(double)(i % 5);
    }
    for (size_t n = 0; n <= N; n += (n < 20 ? 1 : 97)) {
        double want = 0, s1 = -1, s2 = -1;
        for (size_t i = 0; i < n; i++) want += a[i] + b[i] + c[i];
        CHECK_NEAR(qeil_pk_read(QEIL_PK_SCALAR, a, b, c, n, &s1), 24.0 * (double)n, 0, 0);
        CHECK_NEAR(s1, want, 0, 0);
        if (qeil_pk_have_triad(QEIL_PK_AVX2)) {
            CHECK_NEAR(qeil_pk_read(QEIL_PK_AVX2, a, b, c, n, &s2), 24.0 * (double)n, 0, 0);
            CHECK_NEAR(s2, want, 0, 0);
        }
    }
}

/* Operations per iteration of each throughput kernel (probe_kernels.c). */
static double f32_per_iter(int isa)
{
    return isa == QEIL_PK_SCALAR ? 32 * 2 : isa == QEIL_PK_NEON ? 12 * 4 * 2 : 12 * 8 * 2;
}
static double int8_per_iter(int isa)
{
    switch (isa) {
    case QEIL_PK_SCALAR: return QEIL_PK_INT8_SCRATCH * 2;
    case QEIL_PK_AVX2: return 8 * 32 * 2;
    case QEIL_PK_AVX512VNNI_ZMM: return 12 * 64 * 2;
    case QEIL_PK_NEON: return 8 * 16 * 2;
    case QEIL_PK_NEON_SDOT: return 12 * 16 * 2;
    default: return 12 * 32 * 2; /* the ymm VNNI forms */
    }
}

TEST(throughput_kernels_count_and_converge)
{
    static unsigned char scratch[2 * QEIL_PK_INT8_SCRATCH];
    for (int i = 0; i < 2 * QEIL_PK_INT8_SCRATCH; i++) scratch[i] = (unsigned char)(i % 100);
    for (int isa = 0; isa < QEIL_PK_COUNT; isa++) {
        if (qeil_pk_have_f32((qeil_pk_isa)isa)) {
            float sink = -1;
            double flops = qeil_pk_f32_fma((qeil_pk_isa)isa, 1000, &sink);
            /* scalar: 32 chains x 2 FLOPs; AVX2: 12 FMAs x 8 lanes x 2 FLOPs;
             * NEON: 12 FMLA x 4 lanes x 2 */
            CHECK_NEAR(flops, 1000.0 * f32_per_iter(isa), 0, 0);
            /* every chain converges to A / (1 - M) = 1: the sum of the chains
             * (32 scalar, 96 / 48 lanes) lies near the count, never NaN */
            double chains = f32_per_iter(isa) / 2;
            CHECK(sink > 0.3 * chains && sink < 1.2 * chains);
        }
        if (qeil_pk_have_int8((qeil_pk_isa)isa)) {
            int32_t sink = 0;
            double ops = qeil_pk_int8_dot((qeil_pk_isa)isa, 10, scratch, &sink);
            double want = 10.0 * int8_per_iter(isa);
            CHECK_NEAR(ops, want, 0, 0);
        }
    }
    /* the SIMD int8 register kernels: 3 x (-2 or 5) per byte pair, 4 pairs
     * per int32 lane. AVX2: per iteration each of 4 accumulators gets one
     * step with y=-2 and one with y=5: 8 lanes x 4 x 3 x (-2 + 5) = 288 per
     * accumulator, 1152 per iteration. */
    if (qeil_pk_have_int8(QEIL_PK_AVX2)) {
        int32_t sink = 0;
        qeil_pk_int8_dot(QEIL_PK_AVX2, 7, scratch, &sink);
        CHECK_EQ_INT(sink, 7 * 1152);
    }
    /* VNNI: 12 accumulators starting at 0..11 per lane (sum 66 x 8 lanes =
     * 528), 6 get y=-2 (-24 per lane per step) and 6 get y=5 (+60):
     * per iteration 8 lanes x (6 x -24 + 6 x 60) = 1728. */
    for (int isa = QEIL_PK_AVXVNNI; isa <= QEIL_PK_AVX512VNNI; isa++) {
        if (!qeil_pk_have_int8((qeil_pk_isa)isa)) continue;
        int32_t sink = 0;
        qeil_pk_int8_dot((qeil_pk_isa)isa, 7, scratch, &sink);
        CHECK_EQ_INT(sink, 528 + 7 * 1728);
    }
    /* NEON: 8 accumulators from 0..7 per lane (28 x 4 lanes = 112), 4 get
     * y=-2 (-24 per lane per step), 4 y=5 (+60): 4 x (4 x 36) = 576 per
     * iteration; SDOT: 12 from 0..11 (264), 6 and 6: 4 x 6 x 36 = 864 */
    if (qeil_pk_have_int8(QEIL_PK_NEON)) {
        int32_t sink = 0;
        qeil_pk_int8_dot(QEIL_PK_NEON, 7, scratch, &sink);
        CHECK_EQ_INT(sink, 112 + 7 * 576);
    }
    if (qeil_pk_have_int8(QEIL_PK_NEON_SDOT)) {
        int32_t sink = 0;
        qeil_pk_int8_dot(QEIL_PK_NEON_SDOT, 7, scratch, &sink);
        CHECK_EQ_INT(sink, 264 + 7 * 864);
    }
    /* zmm: the same per lane, 16 lanes */
    if (qeil_pk_have_int8(QEIL_PK_AVX512VNNI_ZMM)) {
        int32_t sink = 0;
        qeil_pk_int8_dot(QEIL_PK_AVX512VNNI_ZMM, 7, scratch, &sink);
        CHECK_EQ_INT(sink, 2 * (528 + 7 * 1728));
    }
}

/* ------------------------------------------------------------------------ */
/* Parameters                                                                */
/* ------------------------------------------------------------------------ */

TEST(default_params)
{
    qeil_probe_params p = qeil_probe_default_params();
    CHECK_EQ_INT(p.max_threads, 0);
    CHECK_NEAR(p.min_time_s, 0.2, 0, 0);
    CHECK_EQ_INT(p.max_ws_B, 256u << 20);
    CHECK_EQ_INT(p.gpus, 1); /* every Vulkan device too */
    CHECK(p.progress == NULL);
}

TEST(rejects_bad_params)
{
    static qeil_probe_result r;
    qeil_probe_params p = qeil_probe_default_params();

    p.min_time_s = 0;
    CHECK_EQ_INT(qeil_probe_run(ctx, &p, &r), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "min_time_s: 0 is out of range");
    p.min_time_s = -1;
    CHECK_EQ_INT(qeil_probe_run(ctx, &p, &r), QEIL_ERR_RANGE);
    p.min_time_s = NAN;
    CHECK_EQ_INT(qeil_probe_run(ctx, &p, &r), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "min_time_s");
    p.min_time_s = 61;
    CHECK_EQ_INT(qeil_probe_run(ctx, &p, &r), QEIL_ERR_RANGE);

    p = qeil_probe_default_params();
    p.max_threads = QEIL_PROBE_MAX_THREADS + 1;
    CHECK_EQ_INT(qeil_probe_run(ctx, &p, &r), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "max_threads: 257 is out of range (allowed 0..");
    p.max_threads = -1;
    CHECK_EQ_INT(qeil_probe_run(ctx, &p, &r), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "max_threads");

    p = qeil_probe_default_params();
    p.max_ws_B = 1000;
    CHECK_EQ_INT(qeil_probe_run(ctx, &p, &r), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "max_ws_B: 1000 is out of range (allowed 65536..");
    p.max_ws_B = (size_t)1 << 62;
    CHECK_EQ_INT(qeil_probe_run(ctx, &p, &r), QEIL_ERR_RANGE);

    CHECK_EQ_INT(qeil_probe_run(ctx, NULL, NULL), QEIL_ERR_INVALID);
}

/* ------------------------------------------------------------------------ */
/* A quick real probe                                                        */
/* ------------------------------------------------------------------------ */

typedef struct {
    int calls, bad;
    double last;
} progress_log;

static void on_progress(void *user, const char *what, double frac)
{
    progress_log *pl = user;
    if (!what || !what[0] || !(frac >= pl->last) || frac > 1.0) pl->bad++;
    pl->last = frac;
    pl->calls++;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The documented plateau rule (docs/probe.md), written out independently:
 * median of the points with lo < ws <= hi, each boundary 1 % wide. */
static double median_of(const qeil_probe_result *r, double lo_excl, double hi_incl)
{
    double v[QEIL_PROBE_MAX_POINTS];
    int n = 0;
    for (int i = 0; i < r->n_points; i++) {
        double ws = (double)r->ws_B[i];
        if (ws > lo_excl * 1.01 && ws <= hi_incl * 1.01) v[n++] = r->bw_Bps[i];
    }
    if (!n) return 0;
    qsort(v, (size_t)n, sizeof v[0], cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static qeil_probe_result res; /* shared by the tests below */
static int have_res;

TEST(quick_probe_is_consistent)
{
    qeil_probe_params p = qeil_probe_default_params();
    progress_log pl = {0, 0, 0};
    p.max_threads = 2;
    p.min_time_s = 0.01;
    p.max_ws_B = 4u << 20;
    p.gpus = 0; /* the Vulkan part: test_probe_vulkan */
    p.progress = on_progress;
    p.progress_user = &pl;
    qeil_status st = qeil_probe_run(ctx, &p, &res);
    if (st == QEIL_ERR_RANGE && strstr(qeil_ctx_errmsg(ctx), "max_threads")) {
        p.max_threads = 1; /* a one-CPU machine or cpuset */
        st = qeil_probe_run(ctx, &p, &res);
    }
    CHECK_EQ_INT(st, QEIL_OK);
    if (st != QEIL_OK) {
        printf("  %s\n", qeil_ctx_errmsg(ctx));
        return;
    }
    have_res = 1;
    const int T = p.max_threads;

    CHECK_EQ_INT(res.n_threads, T);
    CHECK(res.n_cpus >= T);
    CHECK(res.n_cores >= 1 && res.n_cores <= T);
    CHECK(res.cpu_model[0] != '\0');
    CHECK_NEAR(res.min_time_s, 0.01, 0, 0);
    CHECK(res.kernel_f32[0] && res.kernel_int8[0] && res.kernel_triad[0]);
    CHECK_EQ_INT(res.n_gpus, 0); /* gpus = 0: not asked, and said so */
    CHECK_CONTAINS(res.gpu_status, "not asked");
    CHECK(pl.calls >= 3 * (2 * T + res.n_points));
    CHECK_EQ_INT(pl.bad, 0);
    CHECK_NEAR(pl.last, 1.0, 0, 0);

    for (int i = 0; i < T; i++) {
        CHECK(isfinite(res.f32_flops[i]) && res.f32_flops[i] > 0);
        CHECK(isfinite(res.int8_ops[i]) && res.int8_ops[i] > 0);
        /* honest op counting: no core retires more than its ISA allows at
         * 7 GHz (faster than any shipping CPU); an elided or merged chain
         * shows up as several times the possible rate */
        if (res.f32_flop_per_cycle > 0)
            CHECK(res.f32_flops[i] <= res.f32_flop_per_cycle * 7e9 * (i + 1));
        if (res.int8_op_per_cycle > 0)
            CHECK(res.int8_ops[i] <= res.int8_op_per_cycle * 7e9 * (i + 1));
    }
    /* both kernels run at the same clock, so their ratio cannot beat the
     * ratio of the ISA's per-cycle rates (turbo cancels out) by much: 2.5x
     * leaves room for a loaded VM, where the two kernels, measured at
     * different moments, see different contention (up to 1.8x the ISA
     * ratio seen on the Zen 5 VM with the zmm int8 kernel, 2026-12-07);
     * an elided or merged chain shows as 6x. Under an emulator
     * (QEIL_TEST_RUNNER, e.g. qemu-user in make test-arm) the rates are
     * the emulator's, not the CPU's: the rate checks are skipped there. */
    const char *runner = getenv("QEIL_TEST_RUNNER");
    const int emulated = runner && runner[0];
    if (emulated) printf("  under %s: rate plausibility not checked\n", runner);
    if (!emulated && res.f32_flop_per_cycle > 0 && res.int8_op_per_cycle > 0)
        CHECK(res.int8_ops[0] / res.f32_flops[0] <=
              2.5 * res.int8_op_per_cycle / res.f32_flop_per_cycle);
    if (T >= 2 && !emulated) {
        /* a second thread on its own core cannot halve the throughput */
        CHECK(res.f32_flops[1] >= 0.5 * res.f32_flops[0]);
        CHECK(res.int8_ops[1] >= 0.5 * res.int8_ops[0]);
    }
    if (res.f32_peak_theory > 0) {
        CHECK(res.freq_Hz > 0);
        CHECK_NEAR(res.f32_peak_theory / res.int8_peak_theory,
                   res.f32_flop_per_cycle / res.int8_op_per_cycle, 1e-12, 0);
    } else {
        /* no theory: the clock or the ISA's rate is unknown, and says so */
        CHECK(res.freq_Hz == 0 || res.f32_flop_per_cycle == 0);
        if (res.freq_Hz == 0) CHECK_EQ_STR(res.freq_source, "unknown");
    }

    /* 16, 32, ... 4096 KiB: 9 points; sizes exact multiples of 24 B x T */
    CHECK_EQ_INT(res.n_points, 9);
    for (int i = 0; i < res.n_points; i++) {
        CHECK(res.ws_B[i] % (24 * (size_t)T) == 0);
        CHECK(res.ws_B[i] <= p.max_ws_B);
        CHECK(res.ws_B[i] > ((size_t)16384 << i) - 24 * (size_t)T);
        CHECK(isfinite(res.bw_Bps[i]) && res.bw_Bps[i] > 0);
        if (i) CHECK(res.ws_B[i] > res.ws_B[i - 1]);
    }
    CHECK(isfinite(res.dram_bw_Bps) && res.dram_bw_Bps > 0);
    CHECK(isfinite(res.read_bw_Bps) && res.read_bw_Bps > 0);

    /* the plateau rule, recomputed */
    double below = 0, max_cache = 0;
    int last = -1;
    for (int L = 0; L < 4; L++) {
        if (res.cache_size_B[L] == 0) {
            CHECK_NEAR(res.cache_bw_Bps[L], 0, 0, 0);
            continue;
        }
        CHECK(res.cache_agg_B[L] >= res.cache_size_B[L]);
        CHECK(res.cache_agg_B[L] <= res.cache_size_B[L] * (size_t)T);
        double want = median_of(&res, below, (double)res.cache_agg_B[L] / 2);
        CHECK_NEAR(res.cache_bw_Bps[L], want, 1e-12, 0);
        if (res.cache_bw_Bps[L] > max_cache) max_cache = res.cache_bw_Bps[L];
        below = (double)res.cache_agg_B[L];
        last = L;
    }
    if (last >= 0 && res.dram_n_points > 0)
        CHECK_NEAR(res.dram_bw_Bps,
                   median_of(&res, (4.0 * (double)res.cache_agg_B[last] - 1) / 1.01 / 1.01, 1e300),
                   1e-12, 0);
    if (res.dram_n_points == 0) /* fell back to the largest three points */
        CHECK_NEAR(res.dram_bw_Bps,
                   median_of(&res, (double)res.ws_B[res.n_points - 4] / 1.01, 1e300), 1e-12, 0);
    /* DRAM (or the largest sets) cannot beat the fastest cache by much */
    if (max_cache > 0) CHECK(res.dram_bw_Bps <= 1.5 * max_cache);
    /* caches and memory were read from sysfs/procfs on Linux */
#ifdef __linux__
    CHECK(res.mem_total_B > 0);
    if (access("/sys/devices/system/cpu/cpu0/cache/index0/size", R_OK) == 0)
        CHECK(res.cache_size_B[0] > 0);
#endif
}

TEST(probe_to_platform_validates)
{
    if (!have_res) SKIP("quick probe failed");
    qeil_platform pf;
    CHECK_EQ_INT(qeil_probe_to_platform(ctx, &res, &pf), QEIL_OK);
    CHECK_EQ_INT(qeil_platform_validate(ctx, &pf), QEIL_OK);
    CHECK_EQ_INT(pf.n_units, 1);
    CHECK_EQ_INT(pf.n_pools, 1);
    CHECK_EQ_INT(pf.n_links, 0);
    CHECK(strncmp(pf.name, "probe-", 6) == 0);
    const qeil_unit *u = &pf.units[0];
    CHECK_EQ_INT(u->kind, QEIL_UNIT_CPU);
    CHECK_EQ_STR(u->device, "cpu"); /* the local device a plan on it runs on */
    CHECK_EQ_INT(u->src_compute, QEIL_SRC_MEASURED);
    CHECK_EQ_INT(u->src_power, QEIL_SRC_DEFAULT);
    CHECK_EQ_INT(u->src_thermal, QEIL_SRC_DEFAULT);
    /* measured rates, rounded to 4 significant digits */
    CHECK_NEAR(u->peak_ops[QEIL_DT_F32], res.f32_flops[res.n_threads - 1], 5e-4, 0);
    CHECK_NEAR(u->peak_ops[QEIL_DT_F16], u->peak_ops[QEIL_DT_F32], 0, 0);
    CHECK_NEAR(u->peak_ops[QEIL_DT_INT8], res.int8_ops[res.n_threads - 1], 5e-4, 0);
    CHECK_NEAR(u->peak_ops[QEIL_DT_INT4], 0, 0, 0);
    CHECK_NEAR(u->e_op_J[QEIL_DT_INT4], 0, 0, 0);
    CHECK_NEAR(u->mem_bw_Bps, res.dram_bw_Bps, 5e-4, 0);
    CHECK_NEAR(pf.pools[0].bw_Bps, u->mem_bw_Bps, 0, 0);
    if (res.dram_n_points == 0) CHECK_CONTAINS(pf.description, "DRAM not reached");
    CHECK_NEAR(pf.pools[0].capacity_B, res.mem_total_B, 0, 0);
    CHECK_NEAR(u->eta_compute, 1.0, 0, 0);
    CHECK_NEAR(u->eta_mem, 1.0, 0, 0);
    CHECK_EQ_INT(u->n_dvfs, 1);
    CHECK_NEAR(u->dvfs[0].freq_Hz, res.freq_Hz > 0 ? res.freq_Hz : 2e9, 0, 0);
    /* e_op = 2.5 W dynamic per core / measured rate (3 significant digits) */
    int cores = res.n_cores;
    CHECK_NEAR(u->e_op_J[QEIL_DT_F32], 2.5 * cores / u->peak_ops[QEIL_DT_F32], 0.005, 0);
    CHECK_NEAR(u->e_op_J[QEIL_DT_INT8], 2.5 * cores / u->peak_ops[QEIL_DT_INT8], 0.005, 0);
    /* cooler sized so full load (2.5 W dynamic + 0.5 W constant + leakage
     * 0.2 W at 60 °C doubled twice = 0.8 W at 80 °C, per core, plus memory
     * traffic at the measured bandwidth × 48 pJ/B) settles at 80 °C */
    CHECK_NEAR(u->r_th_KpW, (80.0 - 25.0) / (3.8 * cores + u->mem_bw_Bps * 48e-12), 0.005, 0);
    CHECK_NEAR(u->p_leak_ref_W, 0.2 * cores, 0.005, 0);
    /* and that design point is a stable fixed point: R κ P_leak(80 °C) < 1 */
    CHECK(u->r_th_KpW * u->leak_kappa_perK * 0.8 * cores < 1.0);

    /* the profile survives a JSON round trip */
    char *json = NULL;
    CHECK_EQ_INT(qeil_platform_to_json(ctx, &pf, &json), QEIL_OK);
    if (json) {
        qeil_platform back;
        CHECK_EQ_INT(qeil_platform_parse_json(ctx, json, strlen(json), &back), QEIL_OK);
        CHECK_EQ_STR(back.name, pf.name);
        CHECK_NEAR(back.units[0].peak_ops[QEIL_DT_INT8], u->peak_ops[QEIL_DT_INT8], 0, 0);
        CHECK_EQ_INT(back.units[0].src_compute, QEIL_SRC_MEASURED);
        qeil_free(ctx, json);
    }
}

TEST(to_platform_rejects_bad_results)
{
    static qeil_probe_result r;
    qeil_platform pf;
    memset(&r, 0, sizeof r);
    CHECK_EQ_INT(qeil_probe_to_platform(ctx, &r, &pf), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "n_threads 0");
    r.n_threads = 1;
    r.f32_flops[0] = NAN;
    r.int8_ops[0] = 1e11;
    r.dram_bw_Bps = 1e10;
    r.mem_total_B = 8e9;
    CHECK_EQ_INT(qeil_probe_to_platform(ctx, &r, &pf), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "f32 nan");
    r.f32_flops[0] = 5e10;
    r.mem_total_B = 0; /* /proc/meminfo unreadable: the validator names the field */
    CHECK_EQ_INT(qeil_probe_to_platform(ctx, &r, &pf), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "pools[0].capacity_B");
    r.mem_total_B = 8e9;
    CHECK_EQ_INT(qeil_probe_to_platform(ctx, &r, &pf), QEIL_OK);
    CHECK_EQ_INT(qeil_probe_to_platform(ctx, NULL, &pf), QEIL_ERR_INVALID);
}

/* The bandwidth meter (qeil bench --bw-live): the probe's streams on
 * demand, with the probe's parameter checks. */
TEST(meter_measures_and_rejects_bad_params)
{
    qeil_probe_meter *m = NULL;
    CHECK_EQ_INT(qeil_probe_meter_create(ctx, -1, 1u << 20, &m), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "threads -1 is out of range (allowed 0..");
    CHECK(m == NULL);
    CHECK_EQ_INT(qeil_probe_meter_create(ctx, qeil_probe_cpu_count() + 1, 1u << 20, &m), QEIL_ERR_RANGE);
    CHECK_EQ_INT(qeil_probe_meter_create(ctx, 100000, 1u << 20, &m), QEIL_ERR_RANGE);
    CHECK_EQ_INT(qeil_probe_meter_create(ctx, 1, 1000, &m), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "working set 1000 bytes is out of range (allowed 65536..");
    CHECK_EQ_INT(qeil_probe_meter_create(ctx, 1, (size_t)1 << 62, &m), QEIL_ERR_RANGE);
    CHECK_EQ_INT(qeil_probe_meter_create(ctx, 1, 1u << 20, NULL), QEIL_ERR_INVALID);
    qeil_probe_meter_free(NULL);

    CHECK_EQ_INT(qeil_probe_meter_create(ctx, 1, 4u << 20, &m), QEIL_OK);
    CHECK(m != NULL);
    if (!m) return;
    double rd = -1, tr = -1;
    CHECK_EQ_INT(qeil_probe_meter_run(m, 0, &rd, &tr), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "min_time_s 0 is out of range");
    CHECK_EQ_INT(qeil_probe_meter_run(m, NAN, &rd, &tr), QEIL_ERR_RANGE);
    CHECK_EQ_INT(qeil_probe_meter_run(m, 0.01, NULL, &tr), QEIL_ERR_INVALID);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "result pointer is NULL");
    CHECK_EQ_INT(qeil_probe_meter_threads(m), 1);
    for (int k = 0; k < 2; k++) { /* the first run warms, the second does not */
        rd = tr = -1;
        CHECK_EQ_INT(qeil_probe_meter_run(m, 0.01, &rd, &tr), QEIL_OK);
        /* 4 MiB streams from L2/L3 or DRAM: far above 100 MB/s and far
         * below 10 TB/s on anything that runs this */
        CHECK(rd > 1e8 && rd < 1e13);
        CHECK(tr > 1e8 && tr < 1e13);
    }
    qeil_probe_meter_free(m);
    /* 0: every CPU this process may use */
    CHECK(qeil_probe_cpu_count() >= 1);
    CHECK_EQ_INT(qeil_probe_meter_create(ctx, 0, 1u << 20, &m), QEIL_OK);
    CHECK_EQ_INT(qeil_probe_meter_threads(m), qeil_probe_cpu_count());
    qeil_probe_meter_free(m);
    CHECK_EQ_INT(qeil_probe_meter_threads(NULL), 0);
}

/* The int8 peak is measured with the instruction form the engine's int8
 * kernels run: the EVEX vpdpbusd (zmm, as the batch kernels of pack.c)
 * wherever qeil_cpu_has_avx512_vnni() (the engine's VNNI switch), even
 * when the CPU also has the VEX AVX-VNNI form (Zen 5, Sapphire Rapids: on
 * Zen 5 the VEX form measured 2-3x slower, and the engine showed "222 % of
 * int8 peak"). */
TEST(int8_peak_uses_the_engines_form)
{
    char buf[QEIL_CPU_FEATURES_STR_MAX];
    printf("  cpu: %s; int8 kernel %s\n", qeil_cpu_features_str(qeil_cpu_features(), buf, sizeof buf),
           qeil_pk_name(qeil_pk_best_int8(), 0));
    /* QEIL_NO_SIMD turns the engine's SIMD off (its int8 form is then the
     * scalar code) but not the probe's kernels, which measure the hardware
     * (docs/probe.md): nothing to match */
    if (qeil_cpu_simd_disabled()) SKIP("QEIL_NO_SIMD: the engine runs no int8 SIMD form");
#if QEIL_HAVE_ARM_SIMD
    /* AArch64: SDOT where the engine's kernels use it, else plain ASIMD */
    CHECK_EQ_INT(qeil_pk_best_int8(), qeil_cpu_has_arm_dotprod() ? QEIL_PK_NEON_SDOT : QEIL_PK_NEON);
    CHECK_EQ_INT(qeil_pk_best_f32(), QEIL_PK_NEON);
    return;
#endif
    if (!QEIL_HAVE_X86_SIMD) SKIP("not an x86 or AArch64 build");
    if (!qeil_cpu_has_avx512_vnni()) {
        CHECK(qeil_pk_best_int8() != QEIL_PK_AVX512VNNI_ZMM);
        SKIP("no AVX512-VNNI: the engine's int8 kernels run AVX2 here");
    }
    CHECK_EQ_INT(qeil_pk_best_int8(), QEIL_PK_AVX512VNNI_ZMM);
    CHECK_EQ_STR(qeil_pk_name(qeil_pk_best_int8(), 0), "avx512-vnni-zmm");
}

/* ------------------------------------------------------------------------ */
/* Core clusters (src/device/cpu_clusters.c, fixtures in tests/data/clusters) */
/* ------------------------------------------------------------------------ */

#define CL_DIR "tests/data/clusters/"

TEST(cluster_list_format)
{
    char buf[64];
    const int a[] = {0, 1, 2, 3, 6}, b[] = {5}, c[] = {0, 2, 3, 4, 8, 9};
    qeil_cpu_list_format(a, 5, buf, sizeof buf);
    CHECK_EQ_STR(buf, "0-3,6");
    qeil_cpu_list_format(b, 1, buf, sizeof buf);
    CHECK_EQ_STR(buf, "5");
    qeil_cpu_list_format(c, 6, buf, sizeof buf);
    CHECK_EQ_STR(buf, "0,2-4,8-9");
    char small[6]; /* whole ranges only */
    qeil_cpu_list_format(c, 6, small, sizeof small);
    CHECK_EQ_STR(small, "0,2-4");
}

TEST(clusters_arm_4x4)
{
    if (access(CL_DIR "arm-4x4", R_OK) != 0) SKIP("run from the repository root (fixtures)");
    qeil_cpu_clusters cl;
    const int all[] = {7, 6, 5, 4, 3, 2, 1, 0}; /* any order */
    CHECK_EQ_INT(qeil_cpu_clusters_read(CL_DIR "arm-4x4", all, 8, &cl), 0);
    CHECK_EQ_STR(cl.source, "cpu_capacity");
    CHECK_EQ_INT(cl.n, 2);
    CHECK_EQ_STR(cl.c[0].name, "big");
    CHECK_EQ_INT(cl.c[0].n_cpus, 4);
    CHECK_EQ_INT(cl.c[0].cpus[0], 4);
    CHECK_EQ_INT(cl.c[0].cpus[3], 7);
    CHECK_EQ_INT(cl.c[0].capacity, 1024);
    CHECK_NEAR(cl.c[0].max_freq_Hz, 2.4e9, 0, 0);
    CHECK_EQ_STR(cl.c[1].name, "little");
    CHECK_EQ_INT(cl.c[1].n_cpus, 4);
    CHECK_EQ_INT(cl.c[1].cpus[0], 0);
    CHECK_EQ_INT(cl.c[1].capacity, 414);
    CHECK_NEAR(cl.c[1].max_freq_Hz, 1.8e9, 0, 0);
    /* only the CPUs the process may use (a cpuset of 0, 1 and 5) */
    const int some[] = {5, 0, 1};
    CHECK_EQ_INT(qeil_cpu_clusters_read(CL_DIR "arm-4x4", some, 3, &cl), 0);
    CHECK_EQ_INT(cl.n, 2);
    CHECK_EQ_INT(cl.c[0].n_cpus, 1);
    CHECK_EQ_INT(cl.c[0].cpus[0], 5);
    CHECK_EQ_INT(cl.c[1].n_cpus, 2);
    /* all little: one cluster */
    const int little[] = {0, 1, 2, 3};
    CHECK_EQ_INT(qeil_cpu_clusters_read(CL_DIR "arm-4x4", little, 4, &cl), 0);
    CHECK_EQ_INT(cl.n, 1);
    CHECK_EQ_STR(cl.c[0].name, "all");
}

TEST(clusters_uniform_and_hybrid)
{
    if (access(CL_DIR "uniform", R_OK) != 0) SKIP("run from the repository root (fixtures)");
    qeil_cpu_clusters cl;
    const int four[] = {0, 1, 2, 3};
    /* a favoured core 4 % faster is not a cluster of its own */
    CHECK_EQ_INT(qeil_cpu_clusters_read(CL_DIR "uniform", four, 4, &cl), 0);
    CHECK_EQ_STR(cl.source, "cpuinfo_max_freq");
    CHECK_EQ_INT(cl.n, 1);
    CHECK_EQ_INT(cl.c[0].n_cpus, 4);
    CHECK_NEAR(cl.c[0].max_freq_Hz, 3.64e9, 0, 0);
    /* x86 hybrid: by core type, P-cores first */
    const int eight[] = {0, 1, 2, 3, 4, 5, 6, 7};
    CHECK_EQ_INT(qeil_cpu_clusters_read(CL_DIR "x86-hybrid", eight, 8, &cl), 0);
    CHECK_EQ_STR(cl.source, "cpu_type");
    CHECK_EQ_INT(cl.n, 2);
    CHECK_EQ_STR(cl.c[0].name, "p");
    CHECK_EQ_INT(cl.c[0].cpus[0], 0);
    CHECK_EQ_INT(cl.c[0].n_cpus, 4);
    CHECK_EQ_STR(cl.c[1].name, "e");
    CHECK_EQ_INT(cl.c[1].cpus[0], 4);
    /* a CPU in neither type list: the next rule (clocks 5.4 / 4.6 GHz, 15 % apart) */
    const int nine[] = {0, 1, 2, 3, 4, 5, 6, 7, 8};
    CHECK_EQ_INT(qeil_cpu_clusters_read(CL_DIR "x86-hybrid", nine, 9, &cl), 0);
    CHECK_EQ_STR(cl.source, "uniform"); /* cpu8 has no files at all */
    CHECK_EQ_INT(cl.n, 1);
    /* nothing readable: one uniform cluster; bad arguments */
    CHECK_EQ_INT(qeil_cpu_clusters_read(CL_DIR "no-such-tree", four, 4, &cl), 0);
    CHECK_EQ_STR(cl.source, "uniform");
    CHECK_EQ_INT(cl.n, 1);
    CHECK_EQ_INT(qeil_cpu_clusters_read(NULL, four, 0, &cl), -1);
    CHECK_EQ_INT(qeil_cpu_clusters_read(NULL, NULL, 4, &cl), -1);
}

/* This machine's two CPUs seen as big.LITTLE (tests/data/clusters/two-cpu):
 * the probe measures each cluster alone and writes one unit per cluster. */
TEST(probe_measures_clusters)
{
    if (access(CL_DIR "two-cpu", R_OK) != 0) SKIP("run from the repository root (fixtures)");
    if (qeil_probe_cpu_count() < 2) SKIP("needs 2 CPUs");
    qeil_probe_params p = qeil_probe_default_params();
    p.max_threads = 2;
    p.min_time_s = 0.01;
    p.max_ws_B = 4u << 20;
    p.sysfs_root = CL_DIR "two-cpu";
    p.gpus = 0;
    static qeil_probe_result cres;
    qeil_status st = qeil_probe_run(ctx, &p, &cres);
    CHECK_EQ_INT(st, QEIL_OK);
    if (st != QEIL_OK) {
        printf("  %s\n", qeil_ctx_errmsg(ctx));
        return;
    }
    /* only when cpu0 and cpu1 are the usable ones (a cpuset may differ) */
    if (strcmp(cres.clusters[0].cpus, "0") != 0 && cres.n_clusters == 2)
        SKIP("usable CPUs are not 0 and 1");
    CHECK_EQ_INT(cres.n_clusters, 2);
    CHECK_EQ_STR(cres.cluster_source, "cpu_capacity");
    for (int k = 0; k < 2; k++) {
        const qeil_probe_cluster *c = &cres.clusters[k];
        CHECK_EQ_INT(c->n_cores, 1);
        CHECK(c->f32_flops > 0 && c->int8_ops > 0 && c->read_bw_Bps > 0);
        CHECK(isfinite(c->f32_flops) && isfinite(c->int8_ops) && isfinite(c->read_bw_Bps));
    }
    CHECK_EQ_STR(cres.clusters[0].name, "big");
    CHECK_EQ_INT(cres.clusters[0].capacity, 1024);
    CHECK_EQ_STR(cres.clusters[1].name, "little");
    CHECK_EQ_STR(cres.clusters[1].cpus, "1");

    static qeil_platform cpf;
    CHECK_EQ_INT(qeil_probe_to_platform(ctx, &cres, &cpf), QEIL_OK);
    CHECK_EQ_INT(cpf.n_units, 2);
    CHECK_EQ_STR(cpf.units[0].name, "cpu-big");
    CHECK_EQ_STR(cpf.units[1].name, "cpu-little");
    /* each names the engine device bound to its cores (docs/engine.md) */
    CHECK_EQ_STR(cpf.units[0].device, "cpu-big");
    CHECK_EQ_STR(cpf.units[1].device, "cpu-little");
    CHECK_CONTAINS(cpf.description, "a unit per core cluster");
    for (int k = 0; k < 2; k++) {
        const qeil_unit *u = &cpf.units[k];
        CHECK_NEAR(u->peak_ops[QEIL_DT_F32], cres.clusters[k].f32_flops, 5e-4, 0);
        CHECK_NEAR(u->peak_ops[QEIL_DT_INT8], cres.clusters[k].int8_ops, 5e-4, 0);
        CHECK_EQ_INT(u->pool, 0);
        /* the cluster's share of the DRAM triad rate, by its read stream */
        const double share = cres.clusters[k].read_bw_Bps / cres.read_bw_Bps;
        CHECK_NEAR(u->mem_bw_Bps, cres.dram_bw_Bps * (share < 1 ? share : 1), 1e-3, 0);
        /* power scales with the cluster's cores (1 here) */
        CHECK_NEAR(u->p_const_W, 0.5, 0.005, 0);
    }
    /* a result whose cluster has no measurement is refused, naming it */
    cres.clusters[1].int8_ops = 0;
    CHECK_EQ_INT(qeil_probe_to_platform(ctx, &cres, &cpf), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "cluster 1 (little)");
}

int main(void)
{
    ctx = qeil_ctx_create(NULL);
    if (!ctx) return 1;
    RUN(dot_scalar_hand_computed);
    RUN(simd_dot_matches_scalar);
    RUN(simd_triad_matches_scalar);
    RUN(read_stream_counts_and_sums);
    RUN(throughput_kernels_count_and_converge);
    RUN(int8_peak_uses_the_engines_form);
    RUN(default_params);
    RUN(rejects_bad_params);
    RUN(quick_probe_is_consistent);
    RUN(probe_to_platform_validates);
    RUN(to_platform_rejects_bad_results);
    RUN(meter_measures_and_rejects_bad_params);
    RUN(cluster_list_format);
    RUN(clusters_arm_4x4);
    RUN(clusters_uniform_and_hybrid);
    RUN(probe_measures_clusters);
    qeil_ctx_free(ctx);
    return test_summary("probe");
}
