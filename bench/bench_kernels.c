/*
 * bench_kernels.c — matmul throughput of the engine's kernels: GB/s of
 * weight bytes streamed by y = W x (one f32 vector, the decode case), per
 * weight type, scalar reference vs AVX2, 1 and 2 threads. Prints a markdown
 * table for docs/benchmarks.md.
 *
 *     build/bench/bench_kernels              # 4096 x 4096
 *     build/bench/bench_kernels 8192 2048    # rows cols: Llama-3.2-1B FFN up/gate
 *
 * Decode streams every weight from DRAM once per token, so before every
 * timed run the benchmark reads a 256 MiB buffer (four times the L3 that
 * two cores of a chiplet CPU can use), evicting the matrix: each run streams
 * it from DRAM. Each cell is the best of REPS runs in each of ROUNDS sweeps
 * of the whole table: on a shared machine the best run is the one least
 * disturbed by other tenants, and sweeping the table spreads every cell's
 * samples over the whole benchmark. The load average before and after is
 * printed so a table taken on a busy machine can be recognised. Bytes
 * counted are the weight matrix only (the activation vector is small).
 * On AVX-512 VNNI CPUs the x8 columns time the layout the engine actually
 * decodes with for Q4_0, Q8_0 and Q4_K (rows interleaved 8 at a time at
 * load, pack.h); the avx2 columns are the per-row kernels on GGUF rows.
 * A second table times the batch tiles in cache: one x8 group per call
 * against two (what matmul uses for 8 or more vectors). A third times the
 * per-row tiled kernels (qeil_gemm_for) of every block type in cache, one
 * core, with ratios to Q4_0 and Q4_K measured in the same rounds:
 *
 *     build/bench/bench_kernels --in-cache   # only that table (seconds)
 */
#include "kernels/matmul.h"
#include "kernels/pack.h"
#include "kernels/quant.h"
#include "core/threadpool.h"
#include "qeil/qeil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "core/util.h"

static void cpu_name(char *buf, size_t n)
{
    snprintf(buf, n, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            const char *c = strchr(line, ':');
            if (c) {
                snprintf(buf, n, "%s", c + 2);
                buf[strcspn(buf, "\n")] = '\0';
            }
            break;
        }
    }
    fclose(f);
}

#define FLUSH_BYTES ((size_t)256 << 20)
#define ROUNDS 8
#define REPS 3
#define N_TYPES 13

/* 1-minute load average (-1 when unreadable): other tenants' processes
 * count here even when they are invisible to ps. */
static double load_avg(void)
{
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f) return -1;
    if (fscanf(f, "%lf", &l) != 1) l = -1;
    fclose(f);
    return l;
}

/* Read every cache line of the flush buffer; the sums keep the loads. The
 * flush runs on the pool that is about to be timed, so its workers are
 * awake (spinning) when the matmul is dispatched, as in back-to-back decode
 * matmuls, instead of asleep after an idle flush. */
static volatile uint64_t g_sink;

static void flush_range(void *p, int64_t b, int64_t e)
{
    const uint64_t *buf = p;
    uint64_t sum = 0;
    for (int64_t i = b; i < e; i++) sum += buf[8 * i]; /* one word per 64-byte line */
    g_sink += sum;
}

static void flush_caches(qeil_tpool *pool, const uint64_t *buf)
{
    qeil_tpool_parallel_for(pool, (int64_t)(FLUSH_BYTES / 64), flush_range, (void *)(uintptr_t)buf);
}

/* Best seconds per matmul over REPS cold runs. */
static double time_matmul(qeil_tpool *pool, qeil_simd simd, const qeil_matmul_weight *w,
                          const float *x, float *y, void *work, size_t ws, const uint64_t *flush)
{
    double best = 1e30;
    for (int rep = 0; rep < REPS; rep++) {
        flush_caches(pool, flush);
        double t0 = qeil_clock_s();
        if (qeil_matmul(NULL, pool, simd, w, x, 1, y, work, ws) != QEIL_OK) return -1;
        double dt = qeil_clock_s() - t0;
        if (dt < best) best = dt;
    }
    return best;
}

#if QEIL_HAVE_X86_SIMD
/* The batch tiles in cache, one core: 8 vectors against the first 64 rows
 * of an x8 matrix (L2-resident), as 8 one-group calls (qeil_x8_gemm_vnni)
 * or 4 two-group calls (qeil_x8_gemm2_vnni; what matmul uses for >= 8
 * vectors). Same bits; GMAC/s = 64 x cols x 8 / best time. */
static void batch_tiles(int type, const char *name, const uint8_t *x8, int64_t cols, const float *x)
{
    enum { NV = 8, ROWS = 64, ITERS = 200, ROUNDS_B = 9 };
    const size_t as = qeil_pack_act_stride(cols), gb = qeil_x8_group_bytes(type, cols);
    uint8_t *act = malloc(NV * as), *tmp = malloc(QEIL_PACK_ACT_TMP(cols));
    float *y = malloc(NV * ROWS * sizeof *y);
    if (!act || !tmp || !y) {
        fprintf(stderr, "bench_kernels: out of memory\n");
        exit(1);
    }
    for (int v = 0; v < NV; v++) qeil_x8_act(x, cols, type, act + v * as, tmp);
    double best[2] = {1e30, 1e30};
    for (int round = 0; round < ROUNDS_B; round++)
        for (int k = 0; k < 2; k++) { /* alternated, so both see the same machine */
            double t0 = qeil_clock_s();
            for (int it = 0; it < ITERS; it++)
                for (int g = 0; g < ROWS / 8; g += 1 + k) {
                    if (k) qeil_x8_gemm2_vnni(type, x8 + g * gb, gb, cols, act, as, NV, y + 8 * g, ROWS);
                    else qeil_x8_gemm_vnni(type, x8 + g * gb, 8, cols, act, as, NV, y + 8 * g, ROWS);
                }
            double dt = (qeil_clock_s() - t0) / ITERS;
            if (dt < best[k]) best[k] = dt;
        }
    const double mac = (double)ROWS * (double)cols * NV;
    printf("| %s | %.1f | %.1f |\n", name, mac / best[0] / 1e9, mac / best[1] / 1e9);
    free(act);
    free(tmp);
    free(y);
}
#endif

#if QEIL_HAVE_X86_SIMD
/* The per-row tiled kernels in cache, one core: for every block type, 64
 * rows x cols (at most ~300 KB: L2) against 1 vector (decode: 4 x 1 tiles
 * as matmul calls them) and 4 vectors (4 x 4), ITERS passes, best of
 * ROUNDS_C rounds; the types alternate inside each round so that a noisy
 * neighbour hits all of them alike. Prints GMAC/s and the ratio of each
 * type's time per MAC to Q4_0's and Q4_K's. */
static void in_cache_tiles(const float *wf, const float *x, int64_t cols)
{
    enum { ROWS = 64, NV = 4, ITERS = 50, ROUNDS_C = 15, NT = 10 };
    /* index 0 is Q4_0 and 5 is Q4_K: the ratios' denominators */
    const int types[NT] = {QEIL_GGML_Q4_0, QEIL_GGML_Q4_1, QEIL_GGML_Q5_0, QEIL_GGML_Q5_1,
                           QEIL_GGML_Q8_0, QEIL_GGML_Q4_K, QEIL_GGML_Q5_K, QEIL_GGML_Q6_K,
                           QEIL_GGML_IQ4_NL, QEIL_GGML_IQ4_XS};
    uint8_t *wq[NT], *xq[NT];
    size_t wrb[NT], xrb[NT];
    qeil_gemm_fn gemm[NT];
    double best[NT][2];
    for (int k = 0; k < NT; k++) {
        const qeil_quant_traits *t = qeil_quant_traits_of(types[k]);
        const qeil_quant_traits *a = qeil_quant_traits_of(t->vec_type);
        wrb[k] = (size_t)(cols / t->blck_elems) * t->blck_bytes;
        xrb[k] = (size_t)(cols / a->blck_elems) * a->blck_bytes;
        wq[k] = malloc(ROWS * wrb[k]);
        xq[k] = malloc(NV * xrb[k]);
        if (!wq[k] || !xq[k]) {
            fprintf(stderr, "bench_kernels: out of memory\n");
            exit(1);
        }
        for (int r = 0; r < ROWS; r++) t->quantize(wf + (size_t)r * cols, wq[k] + r * wrb[k], cols);
        for (int v = 0; v < NV; v++) a->quantize(x, xq[k] + v * xrb[k], cols);
        gemm[k] = qeil_gemm_for(types[k], QEIL_SIMD_AVX2);
        best[k][0] = best[k][1] = 1e30;
    }
    float y[NV * ROWS];
    for (int round = 0; round < ROUNDS_C; round++)
        for (int k = 0; k < NT; k++)
            for (int m = 0; m < 2; m++) {
                if (!gemm[k]) continue;
                const int nc = m ? NV : 1;
                double t0 = qeil_clock_s();
                for (int it = 0; it < ITERS; it++)
                    for (int r = 0; r < ROWS; r += 4)
                        gemm[k](cols, 4, nc, wq[k] + r * wrb[k], wrb[k], xq[k], xrb[k], y + r, ROWS);
                double dt = (qeil_clock_s() - t0) / ITERS / nc;
                if (dt < best[k][m]) best[k][m] = dt;
            }
    const double mac = (double)ROWS * (double)cols;
    printf("\nPer-row tiled kernels in cache (one core, %d rows x %lld, best of %d): GMAC/s, and "
           "time per MAC relative to q4_0 / q4_k\n\n", ROWS, (long long)cols, ROUNDS_C);
    printf("| type | 1 vector | / q4_0 | / q4_k | 4 vectors | / q4_0 | / q4_k |\n"
           "|------|---:|---:|---:|---:|---:|---:|\n");
    for (int k = 0; k < NT; k++) {
        if (!gemm[k]) continue;
        printf("| %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n",
               qeil_quant_traits_of(types[k])->name, mac / best[k][0] / 1e9, best[k][0] / best[0][0],
               best[k][0] / best[5][0], mac / best[k][1] / 1e9, best[k][1] / best[0][1],
               best[k][1] / best[5][1]);
    }
    for (int k = 0; k < NT; k++) {
        free(wq[k]);
        free(xq[k]);
    }
}
#endif

int main(int argc, char **argv)
{
    uint64_t rows = 4096, cols = 4096;
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    if (!ctx) return 1;
    if (argc == 2 && strcmp(argv[1], "--in-cache") == 0) {
#if QEIL_HAVE_X86_SIMD
        if (qeil_simd_best() >= QEIL_SIMD_AVX2) {
            float *wf = malloc(64 * 4096 * sizeof *wf), *x = malloc(4096 * sizeof *x);
            if (!wf || !x) return 1;
            qeil_rng r;
            qeil_rng_seed(&r, 1);
            for (size_t i = 0; i < 64 * 4096; i++) wf[i] = (float)(2 * qeil_rng_uniform(&r) - 1) * 0.05f;
            for (size_t i = 0; i < 4096; i++) x[i] = (float)(2 * qeil_rng_uniform(&r) - 1);
            char cpu[128];
            cpu_name(cpu, sizeof cpu);
            printf("bench_kernels --in-cache: %s, %s\n", cpu,
                   qeil_cpu_has_avx512_vnni() ? "AVX-512 VNNI tiles" : "AVX2 tiles");
            const double l0 = load_avg();
            in_cache_tiles(wf, x, 4096);
            printf("\n1-minute load average before / after: %.2f / %.2f\n", l0, load_avg());
            free(wf);
            free(x);
            qeil_ctx_free(ctx);
            return 0;
        }
#endif
        fprintf(stderr, "bench_kernels: --in-cache needs AVX2\n");
        qeil_ctx_free(ctx);
        return 1;
    }
    if (argc == 3) {
        if (qeil_parse_u64(ctx, "rows", argv[1], 1, 65536, &rows) != QEIL_OK ||
            qeil_parse_u64(ctx, "cols", argv[2], 256, 65536, &cols) != QEIL_OK || cols % 256 != 0) {
            fprintf(stderr, "bench_kernels: %s\nusage: bench_kernels [ROWS COLS]  (COLS a multiple of 256)\n",
                    qeil_ctx_errmsg(ctx)[0] ? qeil_ctx_errmsg(ctx) : "cols must be a multiple of 256");
            qeil_ctx_free(ctx);
            return 2;
        }
    } else if (argc != 1) {
        fprintf(stderr, "usage: bench_kernels [ROWS COLS]\n");
        qeil_ctx_free(ctx);
        return 2;
    }

    const int types[] = {QEIL_GGML_F32,  QEIL_GGML_F16,  QEIL_GGML_BF16, QEIL_GGML_Q8_0,
                         QEIL_GGML_Q6_K, QEIL_GGML_Q5_K, QEIL_GGML_Q4_K, QEIL_GGML_Q5_1,
                         QEIL_GGML_Q5_0, QEIL_GGML_Q4_1, QEIL_GGML_IQ4_NL, QEIL_GGML_IQ4_XS,
                         QEIL_GGML_Q4_0};
    _Static_assert(sizeof types / sizeof types[0] == N_TYPES, "N_TYPES");
    size_t n = (size_t)rows * cols;
    float *wf = malloc(n * sizeof *wf);
    float *x = malloc(cols * sizeof *x), *y = malloc(rows * sizeof *y);
    size_t work_bytes = 0;
    for (int ti = 0; ti < N_TYPES; ti++) {
        size_t ws = qeil_matmul_work_size(types[ti], (int64_t)cols, 1, 2);
        if (ws > work_bytes) work_bytes = ws;
    }
    void *work = malloc(work_bytes); /* the largest any type needs, 1 or 2 threads */
    qeil_tpool *pool1 = NULL, *pool2 = NULL;
    if (!wf || !x || !y || !work || qeil_tpool_create(ctx, 1, &pool1) != QEIL_OK ||
        qeil_tpool_create(ctx, 2, &pool2) != QEIL_OK) {
        fprintf(stderr, "bench_kernels: out of memory\n");
        return 1;
    }
    qeil_rng r;
    qeil_rng_seed(&r, 1);
    for (size_t i = 0; i < n; i++) wf[i] = (float)(2 * qeil_rng_uniform(&r) - 1) * 0.05f;
    for (size_t i = 0; i < cols; i++) x[i] = (float)(2 * qeil_rng_uniform(&r) - 1);

    char cpu[128];
    cpu_name(cpu, sizeof cpu);
    qeil_simd best = qeil_simd_best();
    const int has_x8 = best >= QEIL_SIMD_AVX2 && qeil_cpu_has_avx512_vnni();
    printf("bench_kernels: y = W x, W %llu x %llu, one f32 vector; %s; best SIMD %s\n",
           (unsigned long long)rows, (unsigned long long)cols, cpu, qeil_simd_name(best));
    printf("GB/s = weight bytes / best time per matmul (1 GB = 1e9 B); caches flushed before "
           "every run, so the weights stream from DRAM\n\n");

    uint64_t *flush = malloc(FLUSH_BYTES);
    if (!flush) {
        fprintf(stderr, "bench_kernels: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < FLUSH_BYTES / sizeof *flush; i++) flush[i] = i;

    /* Quantize every type first, so the timing rounds can sweep the table. */
    struct {
        const qeil_quant_traits *t;
        uint8_t *wq;
        size_t bytes;
        qeil_matmul_weight w;
        uint8_t *x8;            /* interleaved copy, or NULL */
        qeil_matmul_weight w8;
        double best_s[6];
    } T[N_TYPES];
    for (int ti = 0; ti < N_TYPES; ti++) {
        const qeil_quant_traits *t = qeil_quant_traits_of(types[ti]);
        size_t row_bytes = (size_t)(cols / t->blck_elems) * t->blck_bytes;
        T[ti].t = t;
        T[ti].bytes = row_bytes * rows;
        T[ti].wq = malloc(T[ti].bytes);
        if (!T[ti].wq) {
            fprintf(stderr, "bench_kernels: out of memory\n");
            return 1;
        }
        for (uint64_t row = 0; row < rows; row++)
            t->quantize(wf + row * cols, T[ti].wq + row * row_bytes, (int64_t)cols);
        if (qeil_matmul_weight_init(ctx, &T[ti].w, t->type, (int64_t)cols, (int64_t)rows, T[ti].wq) !=
            QEIL_OK) {
            fprintf(stderr, "bench_kernels: %s\n", qeil_ctx_errmsg(ctx));
            return 1;
        }
        T[ti].x8 = NULL;
        if (has_x8 && qeil_x8_type_ok(t->type)) {
            T[ti].x8 = malloc(qeil_x8_bytes(t->type, (int64_t)cols, (int64_t)rows));
            if (!T[ti].x8) {
                fprintf(stderr, "bench_kernels: out of memory\n");
                return 1;
            }
            qeil_x8_repack(t->type, T[ti].wq, row_bytes, (int64_t)cols, (int64_t)rows, T[ti].x8);
            T[ti].w8 = T[ti].w;
            T[ti].w8.data = T[ti].x8;
            T[ti].w8.layout = QEIL_MATMUL_X8;
        }
        for (int cell = 0; cell < 6; cell++) T[ti].best_s[cell] = 1e30;
    }

    const double load0 = load_avg();
    for (int round = 0; round < ROUNDS; round++) {
        for (int ti = 0; ti < N_TYPES; ti++) {
            size_t ws = qeil_matmul_work_size(T[ti].t->type, (int64_t)cols, 1, 2);
            for (int cell = 0; cell < 6; cell++) {
                int simd = cell / 2, th = cell % 2;
                if (simd >= 1 && best < QEIL_SIMD_AVX2) continue;
                if (simd == 2 && !T[ti].x8) continue;
                double dt = time_matmul(th ? pool2 : pool1, simd ? QEIL_SIMD_AVX2 : QEIL_SIMD_SCALAR,
                                        simd == 2 ? &T[ti].w8 : &T[ti].w, x, y, work, ws, flush);
                if (dt > 0 && dt < T[ti].best_s[cell]) T[ti].best_s[cell] = dt;
            }
        }
    }
    const double load1 = load_avg();

    printf("| type | MiB | scalar 1T | scalar 2T | avx2 1T | avx2 2T | avx2 2T ms | x8 1T | x8 2T |\n");
    printf("|------|----:|----------:|----------:|--------:|--------:|-----------:|------:|------:|\n");
    for (int ti = 0; ti < N_TYPES; ti++) {
        double gbs[6];
        for (int cell = 0; cell < 6; cell++) gbs[cell] = (double)T[ti].bytes / T[ti].best_s[cell] / 1e9;
        printf("| %s | %.1f | %.2f | %.2f | ", T[ti].t->name, (double)T[ti].bytes / (1024.0 * 1024.0),
               gbs[0], gbs[1]);
        if (best >= QEIL_SIMD_AVX2) printf("%.2f | %.2f | %.2f | ", gbs[2], gbs[3], T[ti].best_s[3] * 1e3);
        else printf("n/a | n/a | n/a | ");
        if (T[ti].x8) printf("%.2f | %.2f |\n", gbs[4], gbs[5]);
        else printf("n/a | n/a |\n");
    }
    printf("\n1-minute load average before / after the timing: %.2f / %.2f (%ld CPUs online)\n",
           load0, load1, sysconf(_SC_NPROCESSORS_ONLN));
#if QEIL_HAVE_X86_SIMD
    if (has_x8 && rows >= 64) {
        printf("\nBatch tiles in cache (one core, 8 vectors x 64 rows, best of 9): GMAC/s\n\n");
        printf("| type | one group per call | two groups per call |\n|------|---:|---:|\n");
        for (int ti = 0; ti < N_TYPES; ti++)
            if (T[ti].x8) batch_tiles(T[ti].t->type, T[ti].t->name, T[ti].x8, (int64_t)cols, x);
    }
    if (best >= QEIL_SIMD_AVX2 && rows >= 64) in_cache_tiles(wf, x, (int64_t)cols);
#endif
    for (int ti = 0; ti < N_TYPES; ti++) {
        free(T[ti].wq);
        free(T[ti].x8);
    }
    qeil_tpool_free(pool1);
    qeil_tpool_free(pool2);
    free(flush);
    free(wf);
    free(x);
    free(y);
    free(work);
    qeil_ctx_free(ctx);
    return 0;
}
