/* ctx.c — the context object: last-error detail, log hook, allocator hook.
 * Nothing here is global: every piece of state lives in the qeil_ctx. */
#include "qeil/qeil.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <sys/mman.h> /* madvise */
#endif

#define QEIL_ERRMSG_MAX 512

struct qeil_ctx {
    qeil_ctx_params p;
    qeil_status last;
    char errmsg[QEIL_ERRMSG_MAX];
};

qeil_ctx_params qeil_ctx_default_params(void)
{
    qeil_ctx_params p;
    memset(&p, 0, sizeof p);
    p.log_level = QEIL_LOG_INFO;
    return p;
}

qeil_ctx *qeil_ctx_create(const qeil_ctx_params *params)
{
    qeil_ctx_params p = params ? *params : qeil_ctx_default_params();
    qeil_ctx *ctx = p.realloc ? p.realloc(p.alloc_user, NULL, sizeof *ctx)
                              : malloc(sizeof *ctx);
    if (!ctx) return NULL;
    memset(ctx, 0, sizeof *ctx);
    ctx->p = p;
    return ctx;
}

void qeil_ctx_free(qeil_ctx *ctx)
{
    if (!ctx) return;
    if (ctx->p.realloc) ctx->p.realloc(ctx->p.alloc_user, ctx, 0);
    else free(ctx);
}

const char *qeil_ctx_errmsg(const qeil_ctx *ctx) { return ctx ? ctx->errmsg : ""; }

void qeil_ctx_clear(qeil_ctx *ctx)
{
    if (!ctx) return;
    ctx->last = QEIL_OK;
    ctx->errmsg[0] = '\0';
}

qeil_status qeil_ctx_fail(qeil_ctx *ctx, qeil_status st, const char *fmt, ...)
{
    if (!ctx) return st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->errmsg, sizeof ctx->errmsg, fmt, ap);
    va_end(ap);
    ctx->last = st;
    if (ctx->p.log && ctx->p.log_level >= QEIL_LOG_ERROR)
        ctx->p.log(ctx->p.log_user, QEIL_LOG_ERROR, ctx->errmsg);
    return st;
}

void qeil_ctx_log(qeil_ctx *ctx, qeil_log_level level, const char *fmt, ...)
{
    if (!ctx || !ctx->p.log || level > ctx->p.log_level) return;
    char buf[QEIL_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    ctx->p.log(ctx->p.log_user, level, buf);
}

void *qeil_realloc(qeil_ctx *ctx, void *ptr, size_t size)
{
    if (ctx && ctx->p.realloc) return ctx->p.realloc(ctx->p.alloc_user, ptr, size);
    if (size == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, size);
}

void *qeil_malloc(qeil_ctx *ctx, size_t size)
{
    if (size == 0) size = 1; /* a unique pointer, never NULL-as-success */
    return qeil_realloc(ctx, NULL, size);
}

void *qeil_calloc(qeil_ctx *ctx, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size) return NULL;
    size_t bytes = n * size;
    void *p = qeil_malloc(ctx, bytes);
    if (p && bytes) memset(p, 0, bytes);
    return p;
}

void qeil_free(qeil_ctx *ctx, void *ptr)
{
    if (ptr) qeil_realloc(ctx, ptr, 0);
}

/* The hook's pointer is kept in the 16 bytes below the aligned one. */
void *qeil_malloc_big(qeil_ctx *ctx, size_t size)
{
    const size_t align = size >= QEIL_BIG_PAGE ? QEIL_BIG_PAGE : 64;
    if (size > SIZE_MAX - align - 16) return NULL;
    uint8_t *raw = qeil_malloc(ctx, size + align + 16);
    if (!raw) return NULL;
    uintptr_t a = ((uintptr_t)raw + 16 + align - 1) & ~(uintptr_t)(align - 1);
    uint8_t *p = (uint8_t *)a;
    memcpy(p - 16, &raw, sizeof raw);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    const size_t whole = size & ~(QEIL_BIG_PAGE - 1);
    if (align == QEIL_BIG_PAGE && whole) (void)madvise(p, whole, MADV_HUGEPAGE); /* advice */
#endif
    return p;
}

void qeil_free_big(qeil_ctx *ctx, void *ptr)
{
    if (!ptr) return;
    uint8_t *raw;
    memcpy(&raw, (uint8_t *)ptr - 16, sizeof raw);
    qeil_free(ctx, raw);
}
