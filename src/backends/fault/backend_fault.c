/*
 * backend_fault.c — fault injection: a backend that wraps another
 * backend's instance and fails op #n (fault.h). Used by the engine for
 * qeil_engine_set_fault and QEIL_FAULT=DEVICE:KIND:N (docs/runtime.md,
 * "Recovery from a failed unit"), so every recovery path runs in tests
 * without hardware that fails on demand.
 */
#include "backends/fault/fault.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "core/util.h"

struct fault_wrap {
    qeil_backend table;        /* inner's props, this file's functions */
    const qeil_backend *be;    /* the wrapped backend and its instance */
    void *st;
    qeil_ctx *ctx;
    char device[16];
    qeil_fault_kind kind;
    uint64_t at, ops;          /* fire at op #at (1-based); ops counted so far */
    int dead;                  /* the fault fired: nothing is forwarded any more */
    uint64_t fired_op;
    const char *fired_name;
    double fired_t;
    qeil_status err;           /* what status-returning ops and sync report */
};

/* Count one op; 1 when it must not run (this op fired the fault, or an
 * earlier one did). */
static int fault_op(fault_wrap *w, const char *name)
{
    if (w->dead) return 1;
    w->ops++;
    if (w->kind == QEIL_FAULT_NONE || w->ops != w->at) return 0;
    w->dead = 1;
    w->fired_op = w->ops;
    w->fired_name = name;
    w->fired_t = qeil_clock_s();
    switch (w->kind) {
    case QEIL_FAULT_OOM:
        w->err = qeil_ctx_fail(w->ctx, QEIL_ERR_NOMEM,
                               "%s: out of device memory (injected fault at op %llu, %s)", w->device,
                               (unsigned long long)w->ops, name);
        break;
    case QEIL_FAULT_HANG:
        w->err = QEIL_OK; /* queued: reported by the watchdog at sync */
        break;
    default:
        w->err = qeil_ctx_fail(w->ctx, QEIL_ERR_DEVICE,
                               "%s: device lost (injected fault at op %llu, %s)", w->device,
                               (unsigned long long)w->ops, name);
        break;
    }
    return 1;
}

/* ---- lifecycle: forwarded, not counted ---- */

static qeil_status f_create(const qeil_backend_config *cfg, void **state)
{
    (void)state;
    return qeil_ctx_fail(cfg->ctx, QEIL_ERR_INTERNAL, "fault backend: wraps an instance, not created");
}

static void f_destroy(void *p)
{
    fault_wrap *w = p;
    void *inner = NULL;
    const qeil_backend *be = w->be;
    qeil_fault_wrap_unwrap(w, &inner);
    be->destroy(inner);
}

static void *f_alloc(void *p, size_t bytes)
{
    fault_wrap *w = p;
    return w->be->alloc(w->st, bytes);
}

static void f_release(void *p, void *buf)
{
    fault_wrap *w = p;
    w->be->release(w->st, buf);
}

static qeil_status f_weight_prepare(void *p, int type, int64_t n_cols, int64_t n_rows,
                                    const void *host_data, unsigned use, qeil_bweight *out)
{
    fault_wrap *w = p;
    return w->be->weight_prepare(w->st, type, n_cols, n_rows, host_data, use, out);
}

static void f_weight_release(void *p, qeil_bweight *wt)
{
    fault_wrap *w = p;
    w->be->weight_release(w->st, wt);
}

static size_t f_scratch_bytes(const void *p)
{
    const fault_wrap *w = p;
    return w->be->scratch_bytes(w->st);
}

/* ---- counted ops ---- */

static void f_to_backend(void *p, void *dst, const void *src, size_t bytes)
{
    fault_wrap *w = p;
    if (!fault_op(w, "to_backend")) w->be->to_backend(w->st, dst, src, bytes);
}

static void f_to_host(void *p, void *dst, const void *src, size_t bytes)
{
    fault_wrap *w = p;
    if (!fault_op(w, "to_host")) w->be->to_host(w->st, dst, src, bytes);
}

static void f_copy(void *p, void *dst, const void *src, size_t bytes)
{
    fault_wrap *w = p;
    if (!fault_op(w, "copy")) w->be->copy(w->st, dst, src, bytes);
}

static qeil_status f_matmul(void *p, const qeil_bweight *wt, const float *x, uint32_t n, float *y)
{
    fault_wrap *w = p;
    if (fault_op(w, "matmul")) return w->err;
    return w->be->matmul(w->st, wt, x, n, y);
}

static qeil_status f_matmul_multi(void *p, const qeil_bweight *const *wt, int nw, const float *x,
                                  uint32_t n, float *const *y)
{
    fault_wrap *w = p;
    if (fault_op(w, "matmul_multi")) return w->err;
    if (w->be->matmul_multi) return w->be->matmul_multi(w->st, wt, nw, x, n, y);
    for (int j = 0; j < nw; j++) { /* forward.c's fallback, kept one op */
        qeil_status r = w->be->matmul(w->st, wt[j], x, n, y[j]);
        if (r != QEIL_OK) return r;
    }
    return QEIL_OK;
}

static void f_get_rows(void *p, const qeil_bweight *wt, const uint32_t *ids, uint32_t n, float *y,
                       int accumulate)
{
    fault_wrap *w = p;
    if (!fault_op(w, "get_rows")) w->be->get_rows(w->st, wt, ids, n, y, accumulate);
}

static void f_add(void *p, float *y, const float *x, size_t n)
{
    fault_wrap *w = p;
    if (!fault_op(w, "add")) w->be->add(w->st, y, x, n);
}

static void f_add_bias(void *p, float *y, size_t stride, const float *b, uint32_t n_rows, uint32_t d)
{
    fault_wrap *w = p;
    if (!fault_op(w, "add_bias")) w->be->add_bias(w->st, y, stride, b, n_rows, d);
}

static void f_rmsnorm(void *p, const float *x, const float *wt, float *y, uint32_t n_rows, uint32_t d,
                      float eps)
{
    fault_wrap *w = p;
    if (!fault_op(w, "rmsnorm")) w->be->rmsnorm(w->st, x, wt, y, n_rows, d, eps);
}

static void f_layernorm(void *p, const float *x, const float *wt, const float *b, float *y,
                        uint32_t n_rows, uint32_t d, float eps)
{
    fault_wrap *w = p;
    if (!fault_op(w, "layernorm")) w->be->layernorm(w->st, x, wt, b, y, n_rows, d, eps);
}

static void f_rope(void *p, float *x, size_t stride, uint32_t n_rows, const qeil_brow *rows,
                   uint32_t n_heads, uint32_t head_dim, uint32_t n_rot, const float *cs,
                   const float *sn, int neox)
{
    fault_wrap *w = p;
    if (!fault_op(w, "rope"))
        w->be->rope(w->st, x, stride, n_rows, rows, n_heads, head_dim, n_rot, cs, sn, neox);
}

static void f_kv_store(void *p, const qeil_bkv *kv, const float *k, const float *v, size_t stride,
                       uint32_t n_rows, const qeil_brow *rows)
{
    fault_wrap *w = p;
    if (!fault_op(w, "kv_store")) w->be->kv_store(w->st, kv, k, v, stride, n_rows, rows);
}

static void f_attention(void *p, const qeil_bkv *kv, const float *q, size_t q_stride,
                        uint32_t n_rows, const qeil_brow *rows, uint32_t n_heads, float scale,
                        float *out)
{
    fault_wrap *w = p;
    if (!fault_op(w, "attention"))
        w->be->attention(w->st, kv, q, q_stride, n_rows, rows, n_heads, scale, out);
}

static void f_silu_mul(void *p, float *g, const float *u, size_t n)
{
    fault_wrap *w = p;
    if (!fault_op(w, "silu_mul")) w->be->silu_mul(w->st, g, u, n);
}

static void f_scale(void *p, float *x, size_t n, float sc)
{
    fault_wrap *w = p;
    if (!fault_op(w, "scale")) w->be->scale(w->st, x, n, sc);
}

static void f_shortconv(void *p, const qeil_bkv *kv, float *bcx, uint32_t n_rows, const qeil_brow *rows,
                        const float *wt, float *y)
{
    fault_wrap *w = p;
    if (!fault_op(w, "shortconv")) w->be->shortconv(w->st, kv, bcx, n_rows, rows, wt, y);
}

static void f_gelu(void *p, float *x, size_t n)
{
    fault_wrap *w = p;
    if (!fault_op(w, "gelu")) w->be->gelu(w->st, x, n);
}

/* timing, counters and caps: forwarded, not counted (not ops of a step) */
static int f_timer_mark(void *p)
{
    fault_wrap *w = p;
    return w->be->timer_mark(w->st);
}

static int f_timer_read(void *p, double *dt_s, uint32_t n_marks)
{
    fault_wrap *w = p;
    return w->be->timer_read(w->st, dt_s, n_marks);
}

static uint64_t f_submits(const void *p)
{
    const fault_wrap *w = p;
    return w->be->submits(w->st);
}

static uint32_t f_inst_caps(const void *p)
{
    const fault_wrap *w = p;
    return w->be->inst_caps(w->st);
}

static qeil_status f_sync(void *p, double timeout_s)
{
    fault_wrap *w = p;
    const int was_dead = w->dead;
    if (!fault_op(w, "sync")) return w->be->sync(w->st, timeout_s);
    if (w->kind != QEIL_FAULT_HANG) return w->err;
    if (was_dead && w->err != QEIL_OK) return w->err; /* the watchdog already fired */
    /* hung: the work never finishes; the watchdog waits its whole bound */
    double left = timeout_s > 0 ? timeout_s : 0;
    struct timespec ts = {(time_t)left, (long)((left - (double)(time_t)left) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    w->err = qeil_ctx_fail(w->ctx, QEIL_ERR_DEVICE,
                           "%s: work did not finish within %.3g s (watchdog): device hung "
                           "(injected fault at op %llu, %s)",
                           w->device, timeout_s, (unsigned long long)w->fired_op, w->fired_name);
    return w->err;
}

/* ------------------------------------------------------------------------ */

qeil_status qeil_fault_wrap_create(qeil_ctx *ctx, const qeil_backend *inner, void *inner_st,
                                   const char *device, qeil_fault_kind kind, uint64_t at_op,
                                   fault_wrap **out)
{
    *out = NULL;
    fault_wrap *w = qeil_calloc(ctx, 1, sizeof *w);
    if (!w) return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "fault: out of memory");
    w->be = inner;
    w->st = inner_st;
    w->ctx = ctx;
    snprintf(w->device, sizeof w->device, "%s", device);
    w->kind = kind;
    w->at = at_op;
    w->table = (qeil_backend){
        .props = inner->props,
        .create = f_create,
        .destroy = f_destroy,
        .alloc = f_alloc,
        .release = f_release,
        .to_backend = f_to_backend,
        .to_host = f_to_host,
        .copy = f_copy,
        .weight_prepare = f_weight_prepare,
        .weight_release = f_weight_release,
        .scratch_bytes = f_scratch_bytes,
        .matmul = f_matmul,
        /* one op whether or not the inner backend fuses: the count of a
         * step is then the same as the forward pass's calls */
        .matmul_multi = inner->matmul_multi ? f_matmul_multi : NULL,
        .get_rows = f_get_rows,
        .add = f_add,
        .add_bias = f_add_bias,
        .rmsnorm = f_rmsnorm,
        .layernorm = f_layernorm,
        .rope = f_rope,
        .kv_store = f_kv_store,
        .attention = f_attention,
        .silu_mul = f_silu_mul,
        .gelu = f_gelu,
        .sync = f_sync,
        .timer_mark = inner->timer_mark ? f_timer_mark : NULL,
        .timer_read = inner->timer_read ? f_timer_read : NULL,
        .submits = inner->submits ? f_submits : NULL,
        .inst_caps = inner->inst_caps ? f_inst_caps : NULL,
        /* architecture-only ops: wrapped where the inner backend has them */
        .scale = inner->scale ? f_scale : NULL,
        .shortconv = inner->shortconv ? f_shortconv : NULL,
    };
    *out = w;
    return QEIL_OK;
}

const qeil_backend *qeil_fault_wrap_backend(const fault_wrap *w) { return &w->table; }

void qeil_fault_wrap_unwrap(fault_wrap *w, void **inner_st)
{
    if (!w) return;
    if (inner_st) *inner_st = w->st;
    qeil_free(w->ctx, w);
}

uint64_t qeil_fault_wrap_ops(const fault_wrap *w) { return w ? w->ops : 0; }

int qeil_fault_wrap_fired(const fault_wrap *w, uint64_t *op, const char **op_name, double *t_s)
{
    if (!w || !w->dead) return 0;
    if (op) *op = w->fired_op;
    if (op_name) *op_name = w->fired_name;
    if (t_s) *t_s = w->fired_t;
    return 1;
}

qeil_fault_kind qeil_fault_wrap_kind(const fault_wrap *w) { return w ? w->kind : QEIL_FAULT_NONE; }
