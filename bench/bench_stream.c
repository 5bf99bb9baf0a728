/*
 * bench_stream.c — how close the engine's decode matmul streams to the
 * machine's read bandwidth: y = W x (one vector) over 700 MiB of x8
 * weights (qeil_matmul, the engine's call, 2 threads: as many 8192 x 2048
 * matrices as fit — 77 at Q4_0, 75 at Q4_K, 41 at Q8_0 — the shape of
 * Llama-3.2-1B's FFN weights and about its size),
 * timed alternately with `qeil probe`'s read-only stream
 * (qeil_probe_meter_run, 256 MiB, the same thread count) so that both see
 * the same minute of a shared machine's memory. Each round: meter, matmul
 * pass on huge pages, matmul pass on 4 KiB pages, meter; a round's ratio =
 * matmul GB/s ÷ the mean of its two meter readings. Prints a markdown
 * table (medians over the rounds) for docs/benchmarks.md.
 *
 *     build/bench/bench_stream            # 12 rounds, 2 threads
 *     build/bench/bench_stream 24 1       # rounds, threads
 *
 * Needs AVX-512 VNNI (the x8 layout); elsewhere it says so and exits 0.
 * Bytes counted are the weights only (the activation vector is 2 KiB).
 */
#include "kernels/matmul.h"
#include "kernels/pack.h"
#include "kernels/quant.h"
#include "core/threadpool.h"
#include "qeil/device.h"
#include "qeil/qeil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include "core/util.h"

#define ROWS 8192
#define COLS 2048
#define TARGET_B ((size_t)700 << 20) /* ~ Llama-3.2-1B Q4_0's weights */
#define PASS_MIN_S 0.3               /* each timed matmul pass at least this long */
#define METER_S 0.2

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* GB/s of whole passes over the n_mat matrices at base, mat_b bytes apart. */
static double pass_rate(qeil_tpool *pool, const qeil_matmul_weight *w0, const uint8_t *base,
                        size_t mat_b, int n_mat, const float *x, float *y, void *work, size_t ws)
{
    double t0 = qeil_clock_s(), t;
    long passes = 0;
    do {
        for (int m = 0; m < n_mat; m++) {
            qeil_matmul_weight w = *w0;
            w.data = base + (size_t)m * mat_b;
            if (qeil_matmul(NULL, pool, QEIL_SIMD_AVX2, &w, x, 1, y, work, ws) != QEIL_OK) return -1;
        }
        passes++;
        t = qeil_clock_s() - t0;
    } while (t < PASS_MIN_S);
    return (double)passes * (double)n_mat * (double)mat_b / t / 1e9;
}

/* The kernel's transparent-huge-page mode ("always", "madvise", "never"). */
static void thp_mode(char *buf, size_t n)
{
    snprintf(buf, n, "unknown");
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (!f) return;
    char line[128];
    if (fgets(line, sizeof line, f)) {
        const char *a = strchr(line, '['), *b = a ? strchr(a, ']') : NULL;
        if (a && b && b - a - 1 < (long)n) snprintf(buf, n, "%.*s", (int)(b - a - 1), a + 1);
    }
    fclose(f);
}

int main(int argc, char **argv)
{
    uint64_t rounds = 12, threads = 2;
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    if (!ctx) return 1;
    if (argc > 3 || (argc > 1 && qeil_parse_u64(ctx, "ROUNDS", argv[1], 1, 1000, &rounds) != QEIL_OK) ||
        (argc > 2 && qeil_parse_u64(ctx, "THREADS", argv[2], 1, 256, &threads) != QEIL_OK)) {
        if (qeil_ctx_errmsg(ctx)[0]) fprintf(stderr, "bench_stream: %s\n", qeil_ctx_errmsg(ctx));
        fprintf(stderr, "usage: bench_stream [ROUNDS (1..1000, default 12) [THREADS (1..256, default 2)]]\n");
        qeil_ctx_free(ctx);
        return 2;
    }
#if !QEIL_HAVE_X86_SIMD
    printf("bench_stream: the x8 layout needs an x86-64 CPU with AVX-512 VNNI; nothing to time\n");
    qeil_ctx_free(ctx);
    return 0;
#else
    if (qeil_simd_best() < QEIL_SIMD_AVX2 || !qeil_cpu_has_avx512_vnni()) {
        printf("bench_stream: this CPU has no AVX-512 VNNI (the x8 layout); nothing to time\n");
        qeil_ctx_free(ctx);
        return 0;
    }
    qeil_tpool *pool = NULL;
    qeil_probe_meter *meter = NULL;
    if (qeil_tpool_create(ctx, (int)threads, &pool) != QEIL_OK ||
        qeil_probe_meter_create(ctx, (int)threads, (size_t)256 << 20, &meter) != QEIL_OK) {
        fprintf(stderr, "bench_stream: %s\n", qeil_ctx_errmsg(ctx));
        return 1;
    }
    const int types[] = {QEIL_GGML_Q4_0, QEIL_GGML_Q4_K, QEIL_GGML_Q8_0};
    enum { NT = sizeof types / sizeof types[0] };
    float *wf = malloc((size_t)ROWS * COLS * sizeof *wf), *x = malloc(COLS * sizeof *x),
          *y = malloc(ROWS * sizeof *y);
    if (!wf || !x || !y) {
        fprintf(stderr, "bench_stream: out of memory\n");
        return 1;
    }
    qeil_rng r;
    qeil_rng_seed(&r, 1);
    for (size_t i = 0; i < (size_t)ROWS * COLS; i++) wf[i] = (float)(2 * qeil_rng_uniform(&r) - 1) * 0.05f;
    for (int i = 0; i < COLS; i++) x[i] = (float)(2 * qeil_rng_uniform(&r) - 1);

    char thp[32];
    thp_mode(thp, sizeof thp);
    printf("bench_stream: y = W x over ~%zu MB of x8 weights (%d x %d matrices), %llu thread%s, "
           "%llu rounds; read = qeil probe's read-only stream (256 MiB) before and after each "
           "round; transparent huge pages: %s\n\n",
           TARGET_B / 1000000, ROWS, COLS, (unsigned long long)threads, threads > 1 ? "s" : "",
           (unsigned long long)rounds, thp);
    printf("| type | matrices | matmul GB/s, huge pages | matmul GB/s, 4 KiB pages | read GB/s | "
           "huge / read | 4 KiB / read |\n|---|---:|---:|---:|---:|---:|---:|\n");
    for (int ti = 0; ti < NT; ti++) {
        const qeil_quant_traits *t = qeil_quant_traits_of(types[ti]);
        const size_t row_b = (size_t)(COLS / t->blck_elems) * t->blck_bytes;
        const size_t mat_b = qeil_x8_bytes(t->type, COLS, ROWS);
        const int n_mat = (int)(TARGET_B / mat_b);
        uint8_t *wq = malloc(row_b * ROWS);
        uint8_t *huge = qeil_malloc_big(ctx, mat_b * (size_t)n_mat);
        uint8_t *small = malloc(mat_b * (size_t)n_mat);
        const size_t ws = qeil_matmul_work_size(t->type, COLS, 1, (int)threads);
        void *work = malloc(ws);
        qeil_matmul_weight w0;
        if (!wq || !huge || !small || !work ||
            qeil_matmul_weight_init(ctx, &w0, t->type, COLS, ROWS, wq) != QEIL_OK) {
            fprintf(stderr, "bench_stream: out of memory\n");
            return 1;
        }
#ifdef MADV_NOHUGEPAGE
        { /* 4 KiB pages even where THP is "always" (advice, before first touch) */
            uintptr_t a = ((uintptr_t)small + 4095) & ~(uintptr_t)4095;
            uintptr_t e = ((uintptr_t)small + mat_b * (size_t)n_mat) & ~(uintptr_t)4095;
            if (e > a) (void)madvise((void *)a, e - a, MADV_NOHUGEPAGE);
        }
#endif
        for (int row = 0; row < ROWS; row++) t->quantize(wf + (size_t)row * COLS, wq + row * row_b, COLS);
        qeil_x8_repack(t->type, wq, row_b, COLS, ROWS, huge);
        for (int m = 1; m < n_mat; m++) memcpy(huge + (size_t)m * mat_b, huge, mat_b);
        memcpy(small, huge, mat_b * (size_t)n_mat);
        w0.layout = QEIL_MATMUL_X8;

        double *hg = malloc((size_t)rounds * sizeof *hg), *sm = malloc((size_t)rounds * sizeof *sm),
               *rd = malloc((size_t)rounds * sizeof *rd), *rh = malloc((size_t)rounds * sizeof *rh),
               *rs = malloc((size_t)rounds * sizeof *rs);
        if (!hg || !sm || !rd || !rh || !rs) {
            fprintf(stderr, "bench_stream: out of memory\n");
            return 1;
        }
        for (uint64_t k = 0; k < rounds; k++) {
            double r0, r1, tr;
            if (qeil_probe_meter_run(meter, METER_S, &r0, &tr) != QEIL_OK) return 1;
            hg[k] = pass_rate(pool, &w0, huge, mat_b, n_mat, x, y, work, ws);
            sm[k] = pass_rate(pool, &w0, small, mat_b, n_mat, x, y, work, ws);
            if (qeil_probe_meter_run(meter, METER_S, &r1, &tr) != QEIL_OK) return 1;
            if (hg[k] < 0 || sm[k] < 0) {
                fprintf(stderr, "bench_stream: matmul failed\n");
                return 1;
            }
            rd[k] = (r0 + r1) / 2e9;
            rh[k] = hg[k] / rd[k];
            rs[k] = sm[k] / rd[k];
            fprintf(stderr, "bench_stream: %s round %llu/%llu: huge %.1f, 4 KiB %.1f, read %.1f/%.1f GB/s\n",
                    t->name, (unsigned long long)k + 1, (unsigned long long)rounds, hg[k], sm[k], r0 / 1e9, r1 / 1e9);
        }
        printf("| %s | %d | %.1f | %.1f | %.1f | %.0f %% | %.0f %% |\n", t->name, n_mat,
               median(hg, (int)rounds), median(sm, (int)rounds), median(rd, (int)rounds),
               100 * median(rh, (int)rounds), 100 * median(rs, (int)rounds));
        fflush(stdout);
        free(hg);
        free(sm);
        free(rd);
        free(rh);
        free(rs);
        free(work);
        free(small);
        qeil_free_big(ctx, huge);
        free(wq);
    }
    printf("\nMedians over the rounds; ratios are per round (matmul ÷ that round's read), then the median.\n");
    free(wf);
    free(x);
    free(y);
    qeil_probe_meter_free(meter);
    qeil_tpool_free(pool);
    qeil_ctx_free(ctx);
    return 0;
#endif
}
