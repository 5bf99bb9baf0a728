/*
 * matmul.c — y = W x: quantize x once, then per-row dot products split
 * across the thread pool in static chunks (see matmul.h).
 */
#include "kernels/matmul.h"

#include "kernels/pack.h"

#include <stdatomic.h>
#include <stdint.h>

qeil_status qeil_matmul_weight_init(qeil_ctx *ctx, qeil_matmul_weight *w, int type,
                                    int64_t n_cols, int64_t n_rows, const void *data)
{
    if (!w || !data) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "matmul: weight or data is NULL");
    const qeil_quant_traits *t = qeil_quant_traits_of(type);
    if (!t || !t->vec_dot)
        return qeil_ctx_fail(ctx, QEIL_ERR_UNSUPPORTED,
                             "weight type: %d has no engine kernel (allowed f32 0, f16 1, bf16 30, "
                             "q8_0 8, q4_0 2, q4_1 3, q5_0 6, q5_1 7, iq4_nl 20, iq4_xs 23, "
                             "q4_k 12, q5_k 13, q6_k 14)",
                             type);
    if (n_cols < 1 || n_cols > QEIL_MATMUL_MAX_COLS)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "weight columns: %lld (allowed 1..%d)",
                             (long long)n_cols, QEIL_MATMUL_MAX_COLS);
    if (n_rows < 1 || n_rows > QEIL_MATMUL_MAX_ROWS)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "weight rows: %lld (allowed 1..%d)",
                             (long long)n_rows, QEIL_MATMUL_MAX_ROWS);
    if (n_cols % t->blck_elems != 0)
        return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT,
                             "weight columns: %lld is not a multiple of the %s block (%u)",
                             (long long)n_cols, t->name, t->blck_elems);
    w->type = type;
    w->n_cols = n_cols;
    w->n_rows = n_rows;
    /* <= 2^24 / 1 * 4 bytes: no overflow */
    w->row_bytes = (size_t)(n_cols / t->blck_elems) * t->blck_bytes;
    w->data = data;
    w->layout = QEIL_MATMUL_ROWS;
    return QEIL_OK;
}

/* Activation traits of a weight type, or NULL when x stays f32. */
static const qeil_quant_traits *act_traits(const qeil_quant_traits *t)
{
    return t->vec_type == QEIL_GGML_F32 ? NULL : qeil_quant_traits_of(t->vec_type);
}

/* The packed (row-interleaved) path of pack.h: batches of at least
 * QEIL_MATMUL_PACK_MIN_VEC vectors against Q4_0, Q8_0 or Q4_K weights, on
 * a CPU with AVX-512 VNNI. */
static int pack_eligible(int type, int64_t n_vec)
{
    return n_vec >= QEIL_MATMUL_PACK_MIN_VEC && qeil_pack_type_ok(type);
}

/* Work of the packed path: 64 bytes of alignment slack, n_vec packed
 * activations, one packed row group per thread. */
static size_t pack_work_size(int64_t n_cols, int64_t n_vec, int n_threads)
{
    return 64 + (size_t)n_vec * qeil_pack_act_stride(n_cols) +
           (size_t)n_threads * qeil_pack_group_bytes(n_cols);
}

/* Work of x8 weights: alignment slack, n_vec activations, the quantizer's scratch. */
static size_t x8_work_size(int64_t n_cols, int64_t n_vec)
{
    return 64 + (size_t)n_vec * qeil_pack_act_stride(n_cols) + QEIL_PACK_ACT_TMP(n_cols);
}

size_t qeil_matmul_work_size(int type, int64_t n_cols, int64_t n_vec, int n_threads)
{
    const qeil_quant_traits *t = qeil_quant_traits_of(type);
    if (!t || !t->vec_dot || n_cols < 1 || n_cols > QEIL_MATMUL_MAX_COLS || n_vec < 1 ||
        n_vec > QEIL_MATMUL_MAX_VEC || n_threads < 1 || n_threads > QEIL_TPOOL_MAX_THREADS)
        return 0;
    const qeil_quant_traits *a = act_traits(t);
    if (!a) return 0;
    /* <= 2^12 * (2^24 / 32) * 34 < 2^36: fits size_t on 64-bit */
    size_t need = (size_t)n_vec * (size_t)((n_cols + a->blck_elems - 1) / a->blck_elems) * a->blck_bytes;
    /* < 2^12 * 2^25 + 2^8 * 2^19 * 352: fits size_t on 64-bit */
    if (pack_eligible(type, n_vec)) {
        size_t p = pack_work_size(n_cols, n_vec, n_threads);
        if (p > need) need = p;
    }
    if (qeil_x8_type_ok(type)) { /* x8 weights: activations and a quantizer scratch */
        size_t p = x8_work_size(n_cols, n_vec);
        if (p > need) need = p;
    }
    return need;
}

/* One dispatch computes up to QEIL_MATMUL_MAX_MULTI weights against the
 * same quantized x (qeil_matmul is the case nw = 1). Work items are chunks
 * of rows; item c belongs to the first weight j with c < item_end[j]. */
typedef struct {
    int nw;
    const qeil_matmul_weight *w[QEIL_MATMUL_MAX_MULTI];
    qeil_vec_dot_fn dot[QEIL_MATMUL_MAX_MULTI];
    qeil_gemm_fn gemm[QEIL_MATMUL_MAX_MULTI]; /* tiled kernel, or NULL: one dot per element */
    float *y[QEIL_MATMUL_MAX_MULTI];
    int64_t chunk_rows[QEIL_MATMUL_MAX_MULTI]; /* rows per work item of the dynamic split */
    int64_t item_end[QEIL_MATMUL_MAX_MULTI];   /* cumulative work items */
    const uint8_t *xq;  /* n_vec activations, xq_stride bytes apart */
    size_t xq_stride;
    int x8;             /* weights in the x8 layout: groups of 8 rows, qeil_x8_gemm_vnni */
    uint8_t *pack;      /* packed path: one row group per thread, pack_stride apart; else NULL */
    size_t pack_stride;
    int64_t n_vec;
    atomic_llong next;  /* next work item to hand out */
} mm_args;

/* Rows per tile for batches: a tile of weight rows (16 x a few KiB) stays
 * in L2 while every activation vector passes over it, and each activation
 * (a few KiB) stays in L1 across the tile's rows. With one vector this is
 * plain row order. The tile size changes only the order in which y's
 * elements are computed, never how: results do not depend on it. */
#define MM_ROW_TILE 16

/* Least weight bytes x vectors per work item of the threaded split. */
#define MM_MIN_CHUNK_B ((uint64_t)32 << 10)

/* Rows [b, e) of weight j. With a tiled kernel, blocks of up to
 * QEIL_GEMM_MAX_ROWS rows x QEIL_GEMM_MAX_VEC vectors: each weight block is
 * unpacked once per tile instead of once per vector. */
static void mm_rows(const mm_args *a, int j, int64_t b, int64_t e, int ith)
{
    const qeil_matmul_weight *w = a->w[j];
    const uint8_t *wd = w->data;
    const int64_t n_rows = w->n_rows, n_cols = w->n_cols;
    const size_t rb = w->row_bytes;
    const qeil_gemm_fn gemm = a->gemm[j];
    float *y = a->y[j];
#if QEIL_HAVE_X86_SIMD
    if (a->x8) {
        const size_t gb = qeil_x8_group_bytes(w->type, n_cols);
        /* b is a multiple of 8: batches take pairs of full groups (16
         * rows per activation broadcast), then single groups. Decode keeps
         * one group at a time: reading two groups' records side by side is
         * two DRAM streams, which measured half the streaming rate of one
         * for a single vector (docs/kernels.md). */
        int64_t r0 = b;
        if (a->n_vec == 1 && e - r0 >= QEIL_PACK_ROWS) { /* decode: the full groups in one call */
            const int64_t ng = (e - r0) / QEIL_PACK_ROWS;
            qeil_x8_gemv_vnni(w->type, wd + (size_t)(r0 / QEIL_PACK_ROWS) * gb, gb, ng, n_cols, a->xq,
                              y + r0);
            r0 += ng * QEIL_PACK_ROWS;
        }
        if (a->n_vec >= QEIL_MATMUL_PACK_MIN_VEC)
            for (; e - r0 >= 2 * QEIL_PACK_ROWS; r0 += 2 * QEIL_PACK_ROWS)
                qeil_x8_gemm2_vnni(w->type, wd + (size_t)(r0 / QEIL_PACK_ROWS) * gb, gb, n_cols, a->xq,
                                   a->xq_stride, (int)a->n_vec, y + r0, (size_t)n_rows);
        for (; r0 < e; r0 += QEIL_PACK_ROWS) {
            const int nr = (int)(e - r0 < QEIL_PACK_ROWS ? e - r0 : QEIL_PACK_ROWS);
            qeil_x8_gemm_vnni(w->type, wd + (size_t)(r0 / QEIL_PACK_ROWS) * gb, nr, n_cols, a->xq,
                              a->xq_stride, (int)a->n_vec, y + r0, (size_t)n_rows);
        }
        return;
    }
    if (a->pack) {
        /* groups of 8 rows: repack into this thread's scratch (L1/L2), then
         * every vector of the batch against it */
        qeil_pack_block *g = (qeil_pack_block *)(void *)(a->pack + (size_t)ith * a->pack_stride);
        const int has_min = qeil_pack_type_has_min(w->type);
        for (int64_t r0 = b; r0 < e; r0 += QEIL_PACK_ROWS) {
            const int nr = (int)(e - r0 < QEIL_PACK_ROWS ? e - r0 : QEIL_PACK_ROWS);
            qeil_pack_rows_vnni(w->type, wd + (size_t)r0 * rb, rb, nr, n_cols, g);
            qeil_pack_gemm_vnni(g, nr, n_cols, has_min, a->xq, a->xq_stride, (int)a->n_vec, y + r0,
                                (size_t)n_rows);
        }
        return;
    }
#else
    (void)ith;
#endif
    for (int64_t r0 = b; r0 < e; r0 += MM_ROW_TILE) {
        const int64_t r1 = r0 + MM_ROW_TILE < e ? r0 + MM_ROW_TILE : e;
        if (gemm) {
            for (int64_t v = 0; v < a->n_vec; v += QEIL_GEMM_MAX_VEC) {
                const int nc = (int)(a->n_vec - v < QEIL_GEMM_MAX_VEC ? a->n_vec - v : QEIL_GEMM_MAX_VEC);
                for (int64_t r = r0; r < r1; r += QEIL_GEMM_MAX_ROWS) {
                    const int nr = (int)(r1 - r < QEIL_GEMM_MAX_ROWS ? r1 - r : QEIL_GEMM_MAX_ROWS);
                    gemm(n_cols, nr, nc, wd + (size_t)r * rb, rb,
                         a->xq + (size_t)v * a->xq_stride, a->xq_stride, y + v * n_rows + r,
                         (size_t)n_rows);
                }
            }
            continue;
        }
        for (int64_t v = 0; v < a->n_vec; v++) {
            const uint8_t *xv = a->xq + (size_t)v * a->xq_stride;
            float *yv = y + v * n_rows;
            for (int64_t r = r0; r < r1; r++)
                a->dot[j](n_cols, &yv[r], wd + (size_t)r * rb, xv);
        }
    }
}

/* Dynamic split: each thread takes the next chunk of rows until none is
 * left. On a shared machine a thread that the OS preempts no longer holds
 * back a fixed half of the rows; the others take over its share. Which
 * thread computes a row does not change how it is computed (one kernel,
 * fixed summation order per element), so y stays bit-identical for any
 * thread count and any interleaving. */
static void mm_task(void *p, int ith, int nth)
{
    (void)nth;
    mm_args *a = p;
    const int64_t n_items = a->item_end[a->nw - 1];
    for (;;) {
        const int64_t c = atomic_fetch_add_explicit(&a->next, 1, memory_order_relaxed);
        if (c >= n_items) break;
        int j = 0;
        while (c >= a->item_end[j]) j++;
        const int64_t b = (c - (j ? a->item_end[j - 1] : 0)) * a->chunk_rows[j];
        const int64_t n_rows = a->w[j]->n_rows;
        mm_rows(a, j, b, b + a->chunk_rows[j] < n_rows ? b + a->chunk_rows[j] : n_rows, ith);
    }
}

/* Checks shared by qeil_matmul and qeil_matmul_multi; the dot kernel. */
static qeil_status mm_check(qeil_ctx *ctx, qeil_simd simd, const qeil_matmul_weight *w,
                            int64_t n_vec, qeil_vec_dot_fn *dot)
{
    if (!w || !w->data)
        return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "matmul: weight, x or y is NULL");
    if (n_vec < 1 || n_vec > QEIL_MATMUL_MAX_VEC)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "matmul vectors: %lld (allowed 1..%d)",
                             (long long)n_vec, QEIL_MATMUL_MAX_VEC);
    const qeil_quant_traits *t = qeil_quant_traits_of(w->type);
    if (!t || !t->vec_dot || w->n_cols < 1 || w->n_cols % t->blck_elems != 0 || w->n_rows < 1)
        return qeil_ctx_fail(ctx, QEIL_ERR_INVALID,
                             "matmul: weight not set up by qeil_matmul_weight_init");
    *dot = qeil_vec_dot_for(w->type, simd);
    if (!*dot)
        return qeil_ctx_fail(ctx, QEIL_ERR_UNSUPPORTED, "simd: %s is not available on this CPU",
                             qeil_simd_name(simd));
    return QEIL_OK;
}

/* The fused core: every weight shares n_cols and the activation format. */
static qeil_status mm_run(qeil_ctx *ctx, qeil_tpool *pool, qeil_simd simd,
                          const qeil_matmul_weight *const *w, int nw, const float *x,
                          int64_t n_vec, float *const *y, void *work, size_t work_size)
{
    if (!x) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "matmul: weight, x or y is NULL");
    mm_args a;
    a.nw = nw;
    for (int j = 0; j < nw; j++) {
        qeil_status st = mm_check(ctx, simd, w[j], n_vec, &a.dot[j]);
        if (st != QEIL_OK) return st;
        if (!y[j]) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "matmul: weight, x or y is NULL");
        a.w[j] = w[j];
        a.gemm[j] = qeil_gemm_for(w[j]->type, simd);
        a.y[j] = y[j];
    }
    const int64_t n_cols = w[0]->n_cols;
    const int nth = qeil_tpool_n_threads(pool);
    a.xq = (const uint8_t *)x;
    a.xq_stride = (size_t)n_cols * sizeof(float);
    a.n_vec = n_vec;
    a.pack = NULL;
    a.pack_stride = 0;
    /* qeil_matmul_multi fuses only weights of one layout (and, for x8, one
     * type), so w[0]'s is every weight's */
    a.x8 = w[0]->layout == QEIL_MATMUL_X8;
    if (a.x8) {
#if QEIL_HAVE_X86_SIMD
        if (simd != QEIL_SIMD_AVX2 || !qeil_cpu_has_avx512_vnni())
            return qeil_ctx_fail(ctx, QEIL_ERR_UNSUPPORTED,
                                 "matmul: x8 weights need AVX-512 VNNI (simd %s)", qeil_simd_name(simd));
        const size_t need = x8_work_size(n_cols, n_vec);
        if (!work || work_size < need)
            return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "matmul work buffer: %zu bytes (need %zu)",
                                 work_size, need);
        uint8_t *base = (uint8_t *)(((uintptr_t)work + 63) & ~(uintptr_t)63);
        a.xq_stride = qeil_pack_act_stride(n_cols);
        uint8_t *tmp = base + (size_t)n_vec * a.xq_stride;
        for (int64_t v = 0; v < n_vec; v++)
            qeil_x8_act(x + v * n_cols, n_cols, w[0]->type, base + (size_t)v * a.xq_stride, tmp);
        a.xq = base;
#else
        return qeil_ctx_fail(ctx, QEIL_ERR_UNSUPPORTED, "matmul: x8 weights need AVX-512 VNNI");
#endif
    }
    /* qeil_matmul_multi fuses only weights of one activation format, so
     * w[0]'s is every weight's */
    int packed = !a.x8 && simd == QEIL_SIMD_AVX2 && qeil_cpu_has_avx512_vnni();
    for (int j = 0; j < nw && packed; j++) packed = pack_eligible(w[j]->type, n_vec);
    if (packed) {
#if QEIL_HAVE_X86_SIMD
        const size_t need = pack_work_size(n_cols, n_vec, nth);
        if (!work || work_size < need)
            return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "matmul work buffer: %zu bytes (need %zu)",
                                 work_size, need);
        uint8_t *base = (uint8_t *)(((uintptr_t)work + 63) & ~(uintptr_t)63);
        a.xq_stride = qeil_pack_act_stride(n_cols);
        a.pack = base + (size_t)n_vec * a.xq_stride;
        a.pack_stride = qeil_pack_group_bytes(n_cols);
        /* thread 0's group scratch (11 bytes per element) is free until the rows start */
        const int act_type = qeil_pack_act_type(w[0]->type);
        for (int64_t v = 0; v < n_vec; v++)
            qeil_pack_act(x + v * n_cols, n_cols, act_type, base + (size_t)v * a.xq_stride,
                          a.pack);
        a.xq = base;
#endif
    } else if (!a.x8) {
        const qeil_quant_traits *at = act_traits(qeil_quant_traits_of(w[0]->type));
        if (at) {
            const size_t need = (size_t)n_vec * (size_t)(n_cols / at->blck_elems) * at->blck_bytes;
            if (!work || work_size < need)
                return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "matmul work buffer: %zu bytes (need %zu)",
                                     work_size, need);
            a.xq_stride = need / (size_t)n_vec;
            uint8_t *xq = work;
            const qeil_quantize_fn quantize = qeil_act_quantize_for(at->type, simd);
            for (int64_t v = 0; v < n_vec; v++)
                quantize(x + v * n_cols, xq + (size_t)v * a.xq_stride, n_cols);
            a.xq = xq;
        }
    }
    if (nth == 1) {
        for (int j = 0; j < nw; j++) mm_rows(&a, j, 0, w[j]->n_rows, 0);
        return QEIL_OK;
    }
    /* About 16 work items per thread and weight (one atomic add each, ~0.1
     * us): fine enough to even out a preempted thread, coarse enough that
     * the adds cost nothing next to the rows — but at least
     * MM_MIN_CHUNK_B of weight bytes times vectors per item: a decode
     * matmul of Qwen2-0.5B (896 columns) otherwise handed out 16-row items
     * of 8 KB, ~0.3 us of streaming each, and the hand-out (atomic add,
     * item lookup, per-call setup) took ~5 % of decode. A multiple of the
     * 16-row tile (two x8 groups, qeil_x8_gemm2_vnni). */
    int64_t items = 0;
    for (int j = 0; j < nw; j++) {
        int64_t chunk = w[j]->n_rows / (16 * (int64_t)nth);
        const uint64_t work_row = (uint64_t)w[j]->row_bytes * (uint64_t)n_vec;
        const int64_t min_rows = (int64_t)((MM_MIN_CHUNK_B + work_row - 1) / work_row);
        if (chunk < min_rows) chunk = min_rows;
        chunk = chunk < MM_ROW_TILE ? MM_ROW_TILE : (chunk + MM_ROW_TILE - 1) / MM_ROW_TILE * MM_ROW_TILE;
        a.chunk_rows[j] = chunk;
        items += (w[j]->n_rows + chunk - 1) / chunk;
        a.item_end[j] = items;
    }
    atomic_init(&a.next, 0);
    qeil_tpool_run(pool, mm_task, &a);
    return QEIL_OK;
}

qeil_status qeil_matmul(qeil_ctx *ctx, qeil_tpool *pool, qeil_simd simd,
                        const qeil_matmul_weight *w, const float *x, int64_t n_vec,
                        float *y, void *work, size_t work_size)
{
    return mm_run(ctx, pool, simd, &w, 1, x, n_vec, &y, work, work_size);
}

qeil_status qeil_matmul_multi(qeil_ctx *ctx, qeil_tpool *pool, qeil_simd simd,
                              const qeil_matmul_weight *const *w, int nw, const float *x,
                              int64_t n_vec, float *const *y, void *work, size_t work_size)
{
    if (!w || !y || nw < 1 || nw > QEIL_MATMUL_MAX_MULTI)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "matmul weights: %d (allowed 1..%d)", nw,
                             QEIL_MATMUL_MAX_MULTI);
    for (int j = 0; j < nw; j++)
        if (!w[j]) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "matmul: weight, x or y is NULL");
    /* fuse only what shares x's quantized form; anything else runs alone */
    const qeil_quant_traits *t0 = qeil_quant_traits_of(w[0]->type);
    int same = t0 != NULL;
    for (int j = 1; j < nw && same; j++) {
        const qeil_quant_traits *t = qeil_quant_traits_of(w[j]->type);
        same = t && t->vec_type == t0->vec_type && w[j]->n_cols == w[0]->n_cols &&
               w[j]->layout == w[0]->layout &&
               (w[0]->layout != QEIL_MATMUL_X8 || w[j]->type == w[0]->type);
    }
    if (same) return mm_run(ctx, pool, simd, w, nw, x, n_vec, y, work, work_size);
    for (int j = 0; j < nw; j++) {
        qeil_status st = mm_run(ctx, pool, simd, &w[j], 1, x, n_vec, &y[j], work, work_size);
        if (st != QEIL_OK) return st;
    }
    return QEIL_OK;
}
