/*
 * backend_cpu.c — the "cpu" backend: weights used in place in the mmapped
 * file, matmul from matmul.h on a persistent thread pool (best SIMD level
 * from CPUID), the other ops from ops.c.
 *
 * Parallel where it pays: matmul (rows of W) and attention (query rows x
 * heads, each with its own score buffer). Norms, RoPE and activations are
 * O(rows x width) and run on the calling thread. Every output element is
 * computed by one thread with the same code whatever the thread count, so
 * results are bit-identical for any n_threads.
 */
#include <stdint.h>
#include <string.h>

#include "engine/backend.h"
#include "kernels/matmul.h"
#include "kernels/pack.h"
#include "kernels/ops.h"
#include "kernels/quant.h"
#include "core/threadpool.h"

/* Query heads sharing a KV head that one attention item computes
 * together (att_task). */
#define ATT_MAX_CHUNK 4

typedef struct {
    qeil_ctx *ctx;
    qeil_tpool *pool;
    qeil_simd simd;
    uint32_t max_rows, max_ctx;
    int n_threads;
    void *work;          /* matmul activation quantization, grown at prepare time */
    size_t work_size;
    float *scores;       /* n_threads x ATT_MAX_CHUNK x max_ctx attention scores */
    float *rowbuf;       /* one dequantized row of the widest weight (get_rows) */
    int64_t rowbuf_len;
} cpu_state;

static void cpu_destroy(void *p)
{
    cpu_state *s = p;
    if (!s) return;
    qeil_ctx *ctx = s->ctx;
    qeil_tpool_free(s->pool);
    qeil_free(ctx, s->work);
    qeil_free(ctx, s->scores);
    qeil_free(ctx, s->rowbuf);
    qeil_free(ctx, s);
}

static qeil_status cpu_create(const qeil_backend_config *cfg, void **out)
{
    qeil_ctx *ctx = cfg->ctx;
    *out = NULL;
    if (cfg->n_threads < 1 || cfg->n_threads > QEIL_TPOOL_MAX_THREADS || cfg->max_rows < 1 ||
        cfg->max_ctx < 1)
        return qeil_ctx_fail(ctx, QEIL_ERR_INVALID,
                             "cpu backend: n_threads %d (allowed 1..%d), max_rows %u, max_ctx %u "
                             "(allowed >= 1)",
                             cfg->n_threads, QEIL_TPOOL_MAX_THREADS, cfg->max_rows, cfg->max_ctx);
    cpu_state *s = qeil_calloc(ctx, 1, sizeof *s);
    if (!s) return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "cpu backend: out of memory");
    s->ctx = ctx;
    s->simd = qeil_simd_best();
    s->max_rows = cfg->max_rows;
    s->max_ctx = cfg->max_ctx;
    s->n_threads = cfg->n_threads;
    qeil_status st = cfg->cpus ? qeil_tpool_create_pinned(ctx, cfg->n_threads, cfg->cpus,
                                                          cfg->n_cpus, &s->pool)
                               : qeil_tpool_create(ctx, cfg->n_threads, &s->pool);
    if (st != QEIL_OK) {
        cpu_destroy(s);
        return st;
    }
    s->scores = qeil_calloc(ctx, (size_t)cfg->n_threads * ATT_MAX_CHUNK * cfg->max_ctx, sizeof(float));
    if (!s->scores) {
        cpu_destroy(s);
        return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM,
                             "cpu backend: out of memory for attention scores (%d threads x %d heads x %u)",
                             cfg->n_threads, ATT_MAX_CHUNK, cfg->max_ctx);
    }
    *out = s;
    return QEIL_OK;
}

static void *cpu_alloc(void *p, size_t bytes)
{
    cpu_state *s = p;
    void *b = qeil_calloc(s->ctx, 1, bytes ? bytes : 1);
    if (!b) qeil_ctx_fail(s->ctx, QEIL_ERR_NOMEM, "cpu backend: out of memory for %zu bytes", bytes);
    return b;
}

static void cpu_release(void *p, void *buf)
{
    cpu_state *s = p;
    qeil_free(s->ctx, buf);
}

static void cpu_memcpy(void *p, void *dst, const void *src, size_t bytes)
{
    (void)p;
    if (bytes) memmove(dst, src, bytes);
}

/* Interleaving over the pool: groups of 8 rows [b, e) each (page faults
 * on the file and on the new buffer dominate; two threads halve them). */
typedef struct {
    int type;
    const uint8_t *src;
    size_t row_bytes, group_bytes;
    int64_t n_cols, n_rows;
    uint8_t *dst;
} x8_args;

static void x8_range(void *p, int64_t b, int64_t e)
{
    const x8_args *a = p;
    const int64_t r0 = 8 * b, r1 = 8 * e < a->n_rows ? 8 * e : a->n_rows;
    if (r1 <= r0) return;
#if QEIL_HAVE_X86_SIMD
    qeil_x8_repack_vnni(a->type, a->src + (size_t)r0 * a->row_bytes, a->row_bytes, a->n_cols,
                        r1 - r0, a->dst + (size_t)b * a->group_bytes);
#else
    qeil_x8_repack(a->type, a->src + (size_t)r0 * a->row_bytes, a->row_bytes, a->n_cols, r1 - r0,
                   a->dst + (size_t)b * a->group_bytes);
#endif
}

static qeil_status cpu_weight_prepare(void *p, int type, int64_t n_cols, int64_t n_rows,
                                      const void *host_data, unsigned use, qeil_bweight *out)
{
    cpu_state *s = p;
    qeil_matmul_weight mw;
    qeil_status st = qeil_matmul_weight_init(s->ctx, &mw, type, n_cols, n_rows, host_data);
    if (st != QEIL_OK) return st;
    size_t need = qeil_matmul_work_size(type, n_cols, s->max_rows, s->n_threads);
    if (need > s->work_size) {
        void *w = qeil_realloc(s->ctx, s->work, need);
        if (!w)
            return qeil_ctx_fail(s->ctx, QEIL_ERR_NOMEM,
                                 "cpu backend: out of memory for %zu bytes of matmul work", need);
        s->work = w;
        s->work_size = need;
    }
    if (n_cols > s->rowbuf_len) {
        float *r = qeil_realloc(s->ctx, s->rowbuf, (size_t)n_cols * sizeof(float));
        if (!r)
            return qeil_ctx_fail(s->ctx, QEIL_ERR_NOMEM,
                                 "cpu backend: out of memory for a %lld-float row",
                                 (long long)n_cols);
        s->rowbuf = r;
        s->rowbuf_len = n_cols;
    }
    out->type = type;
    out->n_cols = n_cols;
    out->n_rows = n_rows;
    out->row_bytes = mw.row_bytes;
    out->data = host_data; /* borrowed: the mmapped file */
    out->owned = NULL;
    out->layout = QEIL_MATMUL_ROWS;
    /* Q4_0/Q8_0/Q4_K matrices on a VNNI CPU: interleave 8 rows at a time,
     * once (pack.h, "x8 layout"); every matmul then runs the row-per-lane
     * kernel without repacking, decode included. A copy of the same size
     * (Q4_K: +2.8 %); the engine drops the file pages it no longer reads. */
    if ((use & QEIL_BWEIGHT_MATMUL) && n_rows > 1 && qeil_x8_type_ok(type) &&
        s->simd == QEIL_SIMD_AVX2 && qeil_cpu_has_avx512_vnni()) {
        const size_t bytes = qeil_x8_bytes(type, n_cols, n_rows);
        uint8_t *buf = qeil_malloc_big(s->ctx, bytes); /* streamed every token */
        if (!buf)
            return qeil_ctx_fail(s->ctx, QEIL_ERR_NOMEM,
                                 "cpu backend: out of memory for %zu bytes of interleaved weights", bytes);
        x8_args xa = {type, host_data, mw.row_bytes, qeil_x8_group_bytes(type, n_cols),
                      n_cols, n_rows, buf};
        qeil_tpool_parallel_for(s->pool, (n_rows + 7) / 8, x8_range, &xa);
        out->data = buf;
        out->owned = buf;
        out->layout = QEIL_MATMUL_X8;
    }
    return QEIL_OK;
}

static void cpu_weight_release(void *p, qeil_bweight *w)
{
    cpu_state *s = p;
    if (!w) return;
    qeil_free_big(s->ctx, w->owned);
    memset(w, 0, sizeof *w);
}

static size_t cpu_scratch_bytes(const void *p)
{
    const cpu_state *s = p;
    return s->work_size + (size_t)s->n_threads * ATT_MAX_CHUNK * s->max_ctx * sizeof(float) +
           (size_t)s->rowbuf_len * sizeof(float);
}

/* ---- ops ---------------------------------------------------------------- */

static qeil_status cpu_matmul(void *p, const qeil_bweight *w, const float *x, uint32_t n, float *y)
{
    cpu_state *s = p;
    qeil_matmul_weight mw = {w->type, w->n_cols, w->n_rows, w->row_bytes, w->data, w->layout};
    return qeil_matmul(s->ctx, s->pool, s->simd, &mw, x, (int64_t)n, y, s->work, s->work_size);
}

static qeil_status cpu_matmul_multi(void *p, const qeil_bweight *const *w, int nw,
                                    const float *x, uint32_t n, float *const *y)
{
    cpu_state *s = p;
    if (nw < 1 || nw > QEIL_MATMUL_MAX_MULTI)
        return qeil_ctx_fail(s->ctx, QEIL_ERR_RANGE, "matmul weights: %d (allowed 1..%d)", nw,
                             QEIL_MATMUL_MAX_MULTI);
    qeil_matmul_weight mw[QEIL_MATMUL_MAX_MULTI];
    const qeil_matmul_weight *pw[QEIL_MATMUL_MAX_MULTI];
    for (int j = 0; j < nw; j++) {
        mw[j] = (qeil_matmul_weight){w[j]->type, w[j]->n_cols, w[j]->n_rows, w[j]->row_bytes,
                                     w[j]->data, w[j]->layout};
        pw[j] = &mw[j];
    }
    return qeil_matmul_multi(s->ctx, s->pool, s->simd, pw, nw, x, (int64_t)n, y, s->work,
                             s->work_size);
}

static void cpu_get_rows(void *p, const qeil_bweight *w, const uint32_t *ids, uint32_t n,
                         float *y, int accumulate)
{
    cpu_state *s = p;
    const qeil_quant_traits *t = qeil_quant_traits_of(w->type);
    const uint8_t *base = w->data;
    const int64_t d = w->n_cols;
    for (uint32_t i = 0; i < n; i++) {
        float *yi = y + (size_t)i * (size_t)d;
        if (w->layout == QEIL_MATMUL_X8) {
            float *dst = accumulate ? s->rowbuf : yi;
            qeil_x8_get_row(w->type, base, d, ids[i], dst);
            if (accumulate)
                for (int64_t c = 0; c < d; c++) yi[c] += s->rowbuf[c];
            continue;
        }
        const void *row = base + (size_t)ids[i] * w->row_bytes;
        if (!accumulate) {
            t->dequantize(row, yi, d);
            continue;
        }
        /* rowbuf holds the widest prepared row; dequantize copies f32 rows
         * with memcpy, so unaligned tensors are fine */
        t->dequantize(row, s->rowbuf, d);
        for (int64_t c = 0; c < d; c++) yi[c] += s->rowbuf[c];
    }
}

static void cpu_add(void *p, float *y, const float *x, size_t n)
{
    (void)p;
    qeil_op_add(y, x, n);
}

static void cpu_add_bias(void *p, float *y, size_t stride, const float *b, uint32_t n_rows,
                         uint32_t d)
{
    (void)p;
    for (uint32_t r = 0; r < n_rows; r++) qeil_op_add(y + (size_t)r * stride, b, d);
}

static void cpu_rmsnorm(void *p, const float *x, const float *w, float *y, uint32_t n_rows,
                        uint32_t d, float eps)
{
    (void)p;
    for (uint32_t r = 0; r < n_rows; r++)
        qeil_op_rmsnorm(x + (size_t)r * d, w, y + (size_t)r * d, d, eps);
}

static void cpu_layernorm(void *p, const float *x, const float *w, const float *b, float *y,
                          uint32_t n_rows, uint32_t d, float eps)
{
    (void)p;
    for (uint32_t r = 0; r < n_rows; r++)
        qeil_op_layernorm(x + (size_t)r * d, w, b, y + (size_t)r * d, d, eps);
}

static void cpu_rope(void *p, float *x, size_t stride, uint32_t n_rows, const qeil_brow *rows,
                     uint32_t n_heads, uint32_t head_dim, uint32_t n_rot, const float *cs,
                     const float *sn, int neox)
{
    (void)p;
    const size_t half = n_rot / 2;
    for (uint32_t r = 0; r < n_rows; r++)
        qeil_op_rope(x + (size_t)r * stride, n_heads, head_dim, n_rot, cs + rows[r].pos * half,
                     sn + rows[r].pos * half, neox);
}

static void cpu_kv_store(void *p, const qeil_bkv *kv, const float *k, const float *v,
                         size_t stride, uint32_t n_rows, const qeil_brow *rows)
{
    (void)p;
    const size_t hd = kv->head_dim;
    for (uint32_t r = 0; r < n_rows; r++)
        for (uint32_t h = 0; h < kv->n_kv_heads; h++) {
            const size_t off = (((size_t)rows[r].seq * kv->n_kv_heads + h) * kv->n_ctx + rows[r].pos) * hd;
            memcpy(kv->k + off, k + (size_t)r * stride + h * hd, hd * sizeof(float));
            memcpy(kv->v + off, v + (size_t)r * stride + h * hd, hd * sizeof(float));
        }
}

typedef struct {
    cpu_state *s;
    const qeil_bkv *kv;
    const float *q;
    size_t q_stride;
    uint32_t n_rows, n_heads;
    const qeil_brow *rows;
    float scale;
    float *out;
} att_args;

/* Items are (row, KV head, chunk of up to `chunk` of the query heads that
 * share it) triples; thread ith takes every nth item (with its own score
 * buffer of ATT_MAX_CHUNK rows). The heads of a chunk load each K and V
 * row once (qeil_op_attention_heads); chunks shrink when there would be
 * fewer than two items per thread (decode on many threads). Causal rows
 * cost their position: contiguous chunks gave the last thread of a
 * 128-token prefill three quarters of the work; taken in turn, every
 * thread gets early and late rows alike. */
static void att_task(void *p, int ith, int nth)
{
    const att_args *a = p;
    const qeil_bkv *kv = a->kv;
    const uint32_t hd = kv->head_dim, group = a->n_heads / kv->n_kv_heads;
    uint32_t chunk = ATT_MAX_CHUNK;
    while (chunk > 1 && (uint64_t)a->n_rows * kv->n_kv_heads * ((group + chunk - 1) / chunk) < 2u * (uint64_t)nth)
        chunk /= 2;
    const uint32_t n_chunks = (group + chunk - 1) / chunk;
    const int64_t per_row = (int64_t)kv->n_kv_heads * n_chunks;
    const int64_t n_items = (int64_t)a->n_rows * per_row;
    float *scores = a->s->scores + (size_t)ith * ATT_MAX_CHUNK * a->s->max_ctx;
    for (int64_t it = ith; it < n_items; it += nth) {
        const uint32_t r = (uint32_t)(it / per_row), rem = (uint32_t)(it % per_row);
        const uint32_t kvh = rem / n_chunks, h0 = kvh * group + (rem % n_chunks) * chunk;
        const uint32_t nh = (kvh + 1) * group - h0 < chunk ? (kvh + 1) * group - h0 : chunk;
        const size_t base = ((size_t)a->rows[r].seq * kv->n_kv_heads + kvh) * kv->n_ctx * hd;
        qeil_op_attention_heads(a->q + (size_t)r * a->q_stride + (size_t)h0 * hd, hd, nh, kv->k + base,
                                kv->v + base, hd, a->rows[r].pos + 1, hd, a->scale, scores,
                                a->s->max_ctx, a->out + ((size_t)r * a->n_heads + h0) * hd, hd);
    }
}

static void cpu_attention(void *p, const qeil_bkv *kv, const float *q, size_t q_stride,
                          uint32_t n_rows, const qeil_brow *rows, uint32_t n_heads, float scale,
                          float *out)
{
    cpu_state *s = p;
    att_args a = {s, kv, q, q_stride, n_rows, n_heads, rows, scale, out};
    qeil_tpool_run(s->pool, att_task, &a);
}

/* Element-wise activations over the pool once they are long enough to pay
 * for a dispatch (a prefill chunk: n rows x d_ff; expf/tanhf per element
 * made them ~5 % of prefill time on one thread while the others waited).
 * Element-wise, so the split never changes a result. */
#define ELTWISE_PAR_MIN 16384 /* elements; below this the calling thread does it */
#define ELTWISE_CHUNK 4096

typedef struct {
    float *g;
    const float *u;
    size_t n;
} eltwise_args;

static void silu_mul_range(void *p, int64_t b, int64_t e)
{
    const eltwise_args *a = p;
    const size_t lo = (size_t)b * ELTWISE_CHUNK;
    const size_t hi = (size_t)e * ELTWISE_CHUNK < a->n ? (size_t)e * ELTWISE_CHUNK : a->n;
    qeil_op_silu_mul(a->g + lo, a->u + lo, hi - lo);
}

static void gelu_range(void *p, int64_t b, int64_t e)
{
    const eltwise_args *a = p;
    const size_t lo = (size_t)b * ELTWISE_CHUNK;
    const size_t hi = (size_t)e * ELTWISE_CHUNK < a->n ? (size_t)e * ELTWISE_CHUNK : a->n;
    qeil_op_gelu_vec(a->g + lo, hi - lo);
}

static void cpu_silu_mul(void *p, float *g, const float *u, size_t n)
{
    cpu_state *s = p;
    if (n < ELTWISE_PAR_MIN) {
        qeil_op_silu_mul(g, u, n);
        return;
    }
    eltwise_args a = {g, u, n};
    qeil_tpool_parallel_for(s->pool, (int64_t)((n + ELTWISE_CHUNK - 1) / ELTWISE_CHUNK),
                            silu_mul_range, &a);
}

static void cpu_scale(void *p, float *x, size_t n, float sc)
{
    (void)p;
    for (size_t i = 0; i < n; i++) x[i] *= sc;
}

/* lfm2 gated short convolution (backend.h). O(rows x d x L) on the calling
 * thread: at d 2048 and L 3 that is 12 kFLOP per row, next to the 50 MFLOP
 * of the block's in_proj alone. Two passes: outputs first (they read the
 * state as it was before this batch), then the state update. */
static void cpu_shortconv(void *p, const qeil_bkv *kv, float *bcx, uint32_t n_rows,
                          const qeil_brow *rows, const float *w, float *y)
{
    (void)p;
    const size_t d = kv->conv_d, ns = kv->conv_n_state, L = ns + 1, rs = 3 * d;
    /* u = B * x, into the B slot of each row */
    for (uint32_t r = 0; r < n_rows; r++) {
        float *b = bcx + r * rs;
        const float *x = b + 2 * d;
        for (size_t c = 0; c < d; c++) b[c] *= x[c];
    }
    uint32_t r0 = 0; /* first row of the current run of one sequence */
    for (uint32_t r = 0; r < n_rows; r++) {
        if (r == 0 || rows[r].seq != rows[r - 1].seq || rows[r].pos != rows[r - 1].pos + 1) r0 = r;
        const uint32_t seq = rows[r].seq, p0 = rows[r0].pos;
        const int64_t pos = rows[r].pos;
        const float *C = bcx + r * rs + d;
        float *yr = y + (size_t)r * d;
        for (size_t c = 0; c < d; c++) yr[c] = 0.0f;
        for (size_t k = 0; k < L; k++) {
            const int64_t q = pos - (int64_t)ns + (int64_t)k;
            if (q < 0) continue;
            const float *u;
            if (q >= (int64_t)p0) /* in this batch */
                u = bcx + (size_t)(r0 + (uint32_t)(q - (int64_t)p0)) * rs;
            else /* state slot j holds position p0 - ns + j */
                u = kv->conv + ((size_t)seq * ns + (size_t)(q - ((int64_t)p0 - (int64_t)ns))) * d;
            for (size_t c = 0; c < d; c++) yr[c] += w[c * L + k] * u[c];
        }
        for (size_t c = 0; c < d; c++) yr[c] *= C[c];
    }
    /* state: at the last row of each run, keep the run's last ns inputs,
     * shifting older ones down when the run is shorter than ns */
    for (uint32_t r = 0; r < n_rows; r++) {
        if (r == 0 || rows[r].seq != rows[r - 1].seq || rows[r].pos != rows[r - 1].pos + 1) r0 = r;
        if (r + 1 < n_rows && rows[r + 1].seq == rows[r].seq && rows[r + 1].pos == rows[r].pos + 1)
            continue;
        const size_t m = (size_t)(r - r0) + 1; /* rows of this run */
        float *stt = kv->conv + (size_t)rows[r].seq * ns * d;
        for (size_t j = 0; j < ns; j++) {
            /* new slot j = position pos_last - ns + 1 + j: old slot j + m, or batch row */
            if (j + m < ns)
                memmove(stt + j * d, stt + (j + m) * d, d * sizeof(float));
            else
                memcpy(stt + j * d, bcx + (size_t)(r0 + (j + m - ns)) * rs, d * sizeof(float));
        }
    }
}

static void cpu_gelu(void *p, float *x, size_t n)
{
    cpu_state *s = p;
    if (n < ELTWISE_PAR_MIN) {
        qeil_op_gelu_vec(x, n);
        return;
    }
    eltwise_args a = {x, NULL, n};
    qeil_tpool_parallel_for(s->pool, (int64_t)((n + ELTWISE_CHUNK - 1) / ELTWISE_CHUNK),
                            gelu_range, &a);
}

static qeil_status cpu_sync(void *p, double timeout_s)
{
    (void)p;
    (void)timeout_s;
    return QEIL_OK; /* every op ran before it returned */
}

#define TYPE_BIT(t) (UINT64_C(1) << (t))

/* one table, two names: "cpu1" is a second CPU unit (backend.h) */
#define CPU_BACKEND_TABLE(NAME) {                                                      \
    .props = {.name = NAME,                                                            \
              .caps = QEIL_BACKEND_CAP_HOST_MEMORY | QEIL_BACKEND_CAP_UNIFIED_MEMORY | \
                      QEIL_BACKEND_CAP_BATCHED_MATMUL,                                 \
              .weight_types = TYPE_BIT(QEIL_GGML_F32) | TYPE_BIT(QEIL_GGML_F16) |      \
                              TYPE_BIT(QEIL_GGML_BF16) | TYPE_BIT(QEIL_GGML_Q8_0) |    \
                              TYPE_BIT(QEIL_GGML_Q4_0) | TYPE_BIT(QEIL_GGML_Q4_K) |    \
                              TYPE_BIT(QEIL_GGML_Q6_K) | TYPE_BIT(QEIL_GGML_Q4_1) |    \
                              TYPE_BIT(QEIL_GGML_Q5_0) | TYPE_BIT(QEIL_GGML_Q5_1) |    \
                              TYPE_BIT(QEIL_GGML_Q5_K) | TYPE_BIT(QEIL_GGML_IQ4_NL) |  \
                              TYPE_BIT(QEIL_GGML_IQ4_XS),                              \
              .param_types = TYPE_BIT(QEIL_GGML_F32)},                                 \
    .create = cpu_create,                                                              \
    .destroy = cpu_destroy,                                                            \
    .alloc = cpu_alloc,                                                                \
    .release = cpu_release,                                                            \
    .to_backend = cpu_memcpy,                                                          \
    .to_host = cpu_memcpy,                                                             \
    .copy = cpu_memcpy,                                                                \
    .weight_prepare = cpu_weight_prepare,                                              \
    .weight_release = cpu_weight_release,                                              \
    .scratch_bytes = cpu_scratch_bytes,                                                \
    .matmul = cpu_matmul,                                                              \
    .matmul_multi = cpu_matmul_multi,                                                  \
    .get_rows = cpu_get_rows,                                                          \
    .add = cpu_add,                                                                    \
    .add_bias = cpu_add_bias,                                                          \
    .rmsnorm = cpu_rmsnorm,                                                            \
    .layernorm = cpu_layernorm,                                                        \
    .rope = cpu_rope,                                                                  \
    .kv_store = cpu_kv_store,                                                          \
    .attention = cpu_attention,                                                        \
    .silu_mul = cpu_silu_mul,                                                          \
    .gelu = cpu_gelu,                                                                  \
    .scale = cpu_scale,                                                                \
    .shortconv = cpu_shortconv,                                                        \
    .sync = cpu_sync,                                                                  \
}

const qeil_backend qeil_backend_cpu = CPU_BACKEND_TABLE("cpu");
const qeil_backend qeil_backend_cpu1 = CPU_BACKEND_TABLE("cpu1");

