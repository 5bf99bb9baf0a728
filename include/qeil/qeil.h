/*
 * qeil.h — umbrella header: status codes, the context object, strict number
 * parsing and the deterministic RNG shared by every module.
 *
 * Usage:
 *
 *     #include <qeil/qeil.h>
 *
 *     qeil_ctx *ctx = qeil_ctx_create(NULL);
 *     uint64_t n;
 *     if (qeil_parse_u64(ctx, "--iters", "4000", 1, 1000000, &n) != QEIL_OK)
 *         fprintf(stderr, "%s\n", qeil_ctx_errmsg(ctx));
 *     qeil_ctx_free(ctx);
 *
 * Threading: a qeil_ctx is not thread-safe; use one per thread. Everything
 * else in this header is reentrant.
 */
#ifndef QEIL_QEIL_H
#define QEIL_QEIL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QEIL_VERSION_MAJOR 0
#define QEIL_VERSION_MINOR 1
#define QEIL_VERSION_PATCH 0
#define QEIL_VERSION_STRING "0.1.0"

/* QEIL_API marks each function of the public API. The library is built
 * with -fvisibility=hidden, so libqeil.so exports these and nothing else
 * (tests/install_test.sh checks both ways with nm -D). */
#if defined(__GNUC__) || defined(__clang__)
#define QEIL_API __attribute__((visibility("default")))
#else
#define QEIL_API
#endif

/* printf-style format checking where the compiler supports it */
#if defined(__GNUC__) || defined(__clang__)
#define QEIL_PRINTF(fmt_idx, arg_idx) __attribute__((format(printf, fmt_idx, arg_idx)))
#else
#define QEIL_PRINTF(fmt_idx, arg_idx)
#endif

/* ------------------------------------------------------------------------ */
/* Status                                                                    */
/* ------------------------------------------------------------------------ */

typedef enum {
    QEIL_OK = 0,
    QEIL_ERR_NOMEM,       /* allocation failed */
    QEIL_ERR_IO,          /* open/read/write/mmap failed */
    QEIL_ERR_FORMAT,      /* malformed file or text */
    QEIL_ERR_RANGE,       /* a value outside its allowed range */
    QEIL_ERR_UNSUPPORTED, /* valid, but not supported by this build/device */
    QEIL_ERR_INFEASIBLE,  /* no plan satisfies the constraints */
    QEIL_ERR_INVALID,     /* bad argument from the caller (NULL, bad enum) */
    QEIL_ERR_NOTFOUND,    /* a named thing (platform, model, key) not found */
    QEIL_ERR_INTERNAL,    /* broken invariant; a bug in qeil */
    QEIL_ERR_DEVICE       /* a compute device failed: an op error, a lost or hung device */
} qeil_status;

/* Static English name of a status ("ok", "out of memory", ...). Never NULL. */
QEIL_API const char *qeil_status_str(qeil_status s);

/* Library version, e.g. "0.1.0". */
QEIL_API const char *qeil_version(void);

/* ------------------------------------------------------------------------ */
/* Names and data types shared by every module                               */
/* ------------------------------------------------------------------------ */

#define QEIL_NAME_MAX 64  /* names (units, pools, models) include the NUL */
#define QEIL_DESC_MAX 256 /* one-line descriptions include the NUL */

/* Compute data types: what a compute unit supports (device.h) and what a
 * work unit computes in (model.h, workload.h). Peak rates of the integer
 * types are in OP/s (one multiply-add = 2 ops, as FLOP/s counts an FMA as
 * 2 FLOPs). */
typedef enum {
    QEIL_DT_F32 = 0,
    QEIL_DT_F16, /* f16 and bf16 share one rate on every unit we model */
    QEIL_DT_INT8,
    QEIL_DT_INT4,
    QEIL_DT_COUNT
} qeil_dtype;

QEIL_API const char *qeil_dtype_name(qeil_dtype t); /* "f32", "f16", "int8", "int4" */

/* ------------------------------------------------------------------------ */
/* Context: error detail, log hook, allocator hook                           */
/* ------------------------------------------------------------------------ */

typedef enum {
    QEIL_LOG_ERROR = 0,
    QEIL_LOG_WARN = 1,
    QEIL_LOG_INFO = 2,
    QEIL_LOG_DEBUG = 3
} qeil_log_level;

typedef void (*qeil_log_fn)(void *user, qeil_log_level level, const char *msg);

/* Allocator hook (Lua-style): realloc semantics; size 0 frees. */
typedef void *(*qeil_realloc_fn)(void *user, void *ptr, size_t size);

typedef struct {
    qeil_log_fn log;          /* NULL: silent (the default) */
    void *log_user;
    qeil_log_level log_level; /* messages above this level are dropped */
    qeil_realloc_fn realloc;  /* NULL: the C library's realloc/free */
    void *alloc_user;
} qeil_ctx_params;

QEIL_API qeil_ctx_params qeil_ctx_default_params(void);

typedef struct qeil_ctx qeil_ctx;

/* Create a context. params may be NULL (defaults). Returns NULL only when
 * memory is exhausted. Free with qeil_ctx_free (NULL is a no-op). */
QEIL_API qeil_ctx *qeil_ctx_create(const qeil_ctx_params *params);
QEIL_API void qeil_ctx_free(qeil_ctx *ctx);

/* Detail of the last failure recorded on ctx ("" when none). The string is
 * owned by ctx and valid until the next call that fails on it. */
QEIL_API const char *qeil_ctx_errmsg(const qeil_ctx *ctx);

/* Record a failure on ctx (ctx may be NULL: then only the status returns).
 * Returns st, so callers can write `return qeil_ctx_fail(ctx, ...)`. The
 * message is also sent to the log hook at QEIL_LOG_ERROR. */
QEIL_API qeil_status qeil_ctx_fail(qeil_ctx *ctx, qeil_status st, const char *fmt, ...) QEIL_PRINTF(3, 4);
QEIL_API void qeil_ctx_clear(qeil_ctx *ctx);

/* Log through the context's hook (no-op when ctx or its hook is NULL). */
QEIL_API void qeil_ctx_log(qeil_ctx *ctx, qeil_log_level level, const char *fmt, ...) QEIL_PRINTF(3, 4);

/* Allocation through the context's hook. ctx may be NULL (C library).
 * qeil_calloc checks n*size for overflow and zero-fills. */
QEIL_API void *qeil_malloc(qeil_ctx *ctx, size_t size);
QEIL_API void *qeil_calloc(qeil_ctx *ctx, size_t n, size_t size);
QEIL_API void *qeil_realloc(qeil_ctx *ctx, void *ptr, size_t size);
QEIL_API void qeil_free(qeil_ctx *ctx, void *ptr);

/* Large buffers that are streamed (interleaved weights, the bandwidth
 * probe's arrays). Through the same hook, but a buffer of QEIL_BIG_PAGE
 * bytes or more starts on a QEIL_BIG_PAGE boundary (QEIL_BIG_PAGE more
 * bytes are requested from the hook; the slack is never touched) and its
 * whole big pages are advised for transparent huge pages (Linux
 * madvise(MADV_HUGEPAGE); advice only, ignored where the kernel refuses it
 * or THP is off). Streaming a 4 KiB-page buffer takes a TLB miss every 64
 * cache lines; docs/kernels.md has the measured difference. Smaller
 * buffers are 64-byte aligned. Not zero-filled. NULL when the hook fails
 * or size overflows. Free with qeil_free_big (NULL is a no-op), never
 * qeil_free. */
#define QEIL_BIG_PAGE ((size_t)2 << 20)
QEIL_API void *qeil_malloc_big(qeil_ctx *ctx, size_t size);
QEIL_API void qeil_free_big(qeil_ctx *ctx, void *ptr);

/* ------------------------------------------------------------------------ */
/* Strict parsing of numbers from text (CLI flags, JSON strings)             */
/* ------------------------------------------------------------------------ */

/* Parse all of `text` as a base-10 unsigned integer in [min, max]. On any
 * junk, overflow or range violation returns QEIL_ERR_RANGE (or
 * QEIL_ERR_FORMAT) and records "FIELD: 'TEXT' is ... (allowed MIN..MAX)". */
QEIL_API qeil_status qeil_parse_u64(qeil_ctx *ctx, const char *field, const char *text,
                                    uint64_t min, uint64_t max, uint64_t *out);

/* Parse all of `text` as a decimal number in [min, max]: an optional '-',
 * digits with an optional '.', an optional exponent; no leading '+' or
 * blank, no hex, no "inf"/"nan" (QEIL_ERR_FORMAT). A value that overflows,
 * or a nonzero one too small for a double (below DBL_MIN), is
 * QEIL_ERR_RANGE; every message quotes `text` as given. */
QEIL_API qeil_status qeil_parse_f64(qeil_ctx *ctx, const char *field, const char *text,
                                    double min, double max, double *out);

/* Offset in json[0..len) of the first \u0000 escape inside a string
 * literal (key or value), or len when there is none. cJSON hands strings
 * back as C strings, so such a string would be cut at the NUL without a
 * word ("exa\u0000mple" read as "exa"): readers of profile JSON and task
 * JSONL reject it. Any text is safe to scan (bounded by len). */
QEIL_API size_t qeil_json_find_nul(const char *json, size_t len);

/* ------------------------------------------------------------------------ */
/* Deterministic RNG (xoshiro256**, seeded through splitmix64)               */
/* ------------------------------------------------------------------------ */

typedef struct {
    uint64_t s[4];
} qeil_rng;

QEIL_API void qeil_rng_seed(qeil_rng *r, uint64_t seed);
QEIL_API uint64_t qeil_rng_u64(qeil_rng *r);
/* Uniform double in [0, 1) with 53 random bits. */
QEIL_API double qeil_rng_uniform(qeil_rng *r);
/* Uniform integer in [0, n); n must be > 0 (returns 0 for n == 0). Unbiased. */
QEIL_API uint64_t qeil_rng_below(qeil_rng *r, uint64_t n);

#ifdef __cplusplus
}
#endif

#endif /* QEIL_QEIL_H */
