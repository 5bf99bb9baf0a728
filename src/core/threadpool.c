/*
 * threadpool.c — persistent pthread pool: generation counter to publish a
 * task, spin-then-sleep waits on both sides, a sense-reversing barrier.
 *
 * Why spin first: a decode step issues ~7 matmuls per layer back to back;
 * a condition-variable wake-up costs tens of microseconds, a spinning worker
 * sees the new generation within a few hundred nanoseconds. The spin is
 * bounded (QEIL_TPOOL_SPIN) so idle workers go to sleep and leave the cores
 * to other processes.
 */
#define _GNU_SOURCE /* pthread_attr_setaffinity_np, cpu_set_t */
#include "core/threadpool.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

/* Pause-loop iterations before sleeping (~50-100 us on current x86). */
#define QEIL_TPOOL_SPIN 2048

struct qeil_tpool {
    qeil_ctx *ctx;
    int n_threads;
    int pinned;         /* 1: every thread is a worker bound to a CPU set; the caller waits */
    int n_workers;      /* n_threads - 1, or n_threads when pinned */
    pthread_t *workers; /* n_workers */
    int n_started;

    pthread_mutex_t mu;
    pthread_cond_t cv_work; /* generation changed, or stop */
    pthread_cond_t cv_done; /* pending reached 0 */

    atomic_uint generation; /* bumped once per dispatch */
    atomic_int pending;     /* workers still running the current task */
    atomic_int stop;
    qeil_tpool_task task;   /* published before generation is bumped */
    void *arg;

    atomic_int bar_count;   /* threads arrived at the current barrier */
    atomic_uint bar_phase;  /* bumped when the last one arrives */
};

typedef struct {
    qeil_tpool *pool;
    int ith;
} worker_arg;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void *worker_main(void *p)
{
    worker_arg wa = *(worker_arg *)p;
    qeil_tpool *pool = wa.pool;
    unsigned seen = 0;
    for (;;) {
        unsigned gen = atomic_load(&pool->generation);
        for (int spin = 0; gen == seen && spin < QEIL_TPOOL_SPIN; spin++) {
            cpu_relax();
            gen = atomic_load(&pool->generation);
        }
        if (gen == seen) {
            pthread_mutex_lock(&pool->mu);
            while ((gen = atomic_load(&pool->generation)) == seen && !atomic_load(&pool->stop))
                pthread_cond_wait(&pool->cv_work, &pool->mu);
            pthread_mutex_unlock(&pool->mu);
        }
        if (atomic_load(&pool->stop)) break;
        seen = gen;
        pool->task(pool->arg, wa.ith, pool->n_threads);
        if (atomic_fetch_sub(&pool->pending, 1) == 1) {
            pthread_mutex_lock(&pool->mu);
            pthread_cond_signal(&pool->cv_done);
            pthread_mutex_unlock(&pool->mu);
        }
    }
    return NULL;
}

/* Worker i's argument lives just after the pthread_t array. */
static worker_arg *worker_args(qeil_tpool *pool)
{
    return (worker_arg *)(void *)(pool->workers + pool->n_workers);
}

static void stop_workers(qeil_tpool *pool)
{
    pthread_mutex_lock(&pool->mu);
    atomic_store(&pool->stop, 1);
    pthread_cond_broadcast(&pool->cv_work);
    pthread_mutex_unlock(&pool->mu);
    for (int i = 0; i < pool->n_started; i++) pthread_join(pool->workers[i], NULL);
    pool->n_started = 0;
}

static qeil_status pool_create(qeil_ctx *ctx, int n_threads, const int *cpus, int n_cpus,
                               qeil_tpool **out)
{
    if (!out) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "tpool: out is NULL");
    *out = NULL;
    if (n_threads < 1 || n_threads > QEIL_TPOOL_MAX_THREADS)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "threads: %d (allowed 1..%d)", n_threads,
                             QEIL_TPOOL_MAX_THREADS);
    pthread_attr_t attr;
    pthread_attr_t *pattr = NULL;
    if (cpus) {
#ifdef __linux__
        if (n_cpus < 1)
            return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "tpool: %d CPUs to bind to (allowed >= 1)",
                                 n_cpus);
        cpu_set_t set;
        CPU_ZERO(&set);
        for (int i = 0; i < n_cpus; i++) {
            if (cpus[i] < 0 || cpus[i] >= CPU_SETSIZE)
                return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "tpool: cpu %d (allowed 0..%d)", cpus[i],
                                     CPU_SETSIZE - 1);
            CPU_SET(cpus[i], &set);
        }
        if (pthread_attr_init(&attr) != 0)
            return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "tpool: out of memory");
        pattr = &attr;
        if (pthread_attr_setaffinity_np(pattr, sizeof set, &set) != 0) {
            pthread_attr_destroy(pattr);
            return qeil_ctx_fail(ctx, QEIL_ERR_UNSUPPORTED, "tpool: cannot bind threads to CPUs");
        }
#else
        (void)n_cpus;
        return qeil_ctx_fail(ctx, QEIL_ERR_UNSUPPORTED,
                             "tpool: binding threads to CPUs needs Linux (sched_setaffinity)");
#endif
    }
    qeil_tpool *pool = qeil_calloc(ctx, 1, sizeof *pool);
    if (!pool) {
        if (pattr) pthread_attr_destroy(pattr);
        return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "tpool: out of memory");
    }
    pool->ctx = ctx;
    pool->n_threads = n_threads;
    pool->pinned = cpus != NULL;
    pool->n_workers = pool->pinned ? n_threads : n_threads - 1;
    size_t nw = (size_t)pool->n_workers;
    /* one allocation: pthread_t[nw] then worker_arg[nw]; pthread_t's
     * alignment (8 on Linux) also suits worker_arg */
    pool->workers = qeil_calloc(ctx, 1, nw * (sizeof(pthread_t) + sizeof(worker_arg)) + 1);
    if (!pool->workers) {
        qeil_free(ctx, pool);
        if (pattr) pthread_attr_destroy(pattr);
        return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "tpool: out of memory");
    }
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->cv_work, NULL);
    pthread_cond_init(&pool->cv_done, NULL);
    atomic_init(&pool->generation, 0);
    atomic_init(&pool->pending, 0);
    atomic_init(&pool->stop, 0);
    atomic_init(&pool->bar_count, 0);
    atomic_init(&pool->bar_phase, 0);
    worker_arg *wa = worker_args(pool);
    for (size_t i = 0; i < nw; i++) {
        wa[i].pool = pool;
        wa[i].ith = pool->pinned ? (int)i : (int)i + 1;
        const int rc = pthread_create(&pool->workers[i], pattr, worker_main, &wa[i]);
        if (rc != 0) {
            qeil_tpool_free(pool);
            if (pattr) pthread_attr_destroy(pattr);
            if (pattr && rc == EINVAL)
                return qeil_ctx_fail(ctx, QEIL_ERR_UNSUPPORTED,
                                     "threads: the kernel refused to bind a worker to its CPUs "
                                     "(none of them is allowed to this process?)");
            return qeil_ctx_fail(ctx, QEIL_ERR_UNSUPPORTED,
                                 "threads: %d (could start only %zu worker threads)", n_threads, i);
        }
        pool->n_started++;
    }
    if (pattr) pthread_attr_destroy(pattr);
    *out = pool;
    return QEIL_OK;
}

qeil_status qeil_tpool_create(qeil_ctx *ctx, int n_threads, qeil_tpool **out)
{
    return pool_create(ctx, n_threads, NULL, 0, out);
}

qeil_status qeil_tpool_create_pinned(qeil_ctx *ctx, int n_threads, const int *cpus, int n_cpus,
                                     qeil_tpool **out)
{
    if (!cpus) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "tpool: cpus is NULL");
    return pool_create(ctx, n_threads, cpus, n_cpus, out);
}

int qeil_tpool_pinned(const qeil_tpool *pool) { return pool ? pool->pinned : 0; }

void qeil_tpool_free(qeil_tpool *pool)
{
    if (!pool) return;
    stop_workers(pool);
    pthread_cond_destroy(&pool->cv_done);
    pthread_cond_destroy(&pool->cv_work);
    pthread_mutex_destroy(&pool->mu);
    qeil_ctx *ctx = pool->ctx;
    qeil_free(ctx, pool->workers);
    qeil_free(ctx, pool);
}

int qeil_tpool_n_threads(const qeil_tpool *pool)
{
    return pool ? pool->n_threads : 1;
}

void qeil_tpool_run(qeil_tpool *pool, qeil_tpool_task task, void *arg)
{
    if (!pool || (pool->n_threads == 1 && !pool->pinned)) {
        task(arg, 0, 1);
        return;
    }
    pool->task = task;
    pool->arg = arg;
    atomic_store(&pool->pending, pool->n_workers);
    /* bump under the mutex so a worker about to sleep cannot miss it */
    pthread_mutex_lock(&pool->mu);
    atomic_fetch_add(&pool->generation, 1);
    pthread_cond_broadcast(&pool->cv_work);
    pthread_mutex_unlock(&pool->mu);

    if (!pool->pinned) task(arg, 0, pool->n_threads); /* pinned: only its workers run */

    for (int spin = 0; atomic_load(&pool->pending) != 0 && spin < QEIL_TPOOL_SPIN; spin++)
        cpu_relax();
    if (atomic_load(&pool->pending) != 0) {
        pthread_mutex_lock(&pool->mu);
        while (atomic_load(&pool->pending) != 0) pthread_cond_wait(&pool->cv_done, &pool->mu);
        pthread_mutex_unlock(&pool->mu);
    }
}

void qeil_tpool_barrier(qeil_tpool *pool)
{
    if (!pool || pool->n_threads == 1) return;
    unsigned phase = atomic_load(&pool->bar_phase);
    if (atomic_fetch_add(&pool->bar_count, 1) == pool->n_threads - 1) {
        atomic_store(&pool->bar_count, 0);
        atomic_fetch_add(&pool->bar_phase, 1);
        return;
    }
    for (unsigned spin = 0; atomic_load(&pool->bar_phase) == phase; spin++) {
        if (spin < QEIL_TPOOL_SPIN) cpu_relax();
        else sched_yield(); /* oversubscribed machine: let the others run */
    }
}

void qeil_tpool_chunk(int64_t n, int ith, int nth, int64_t *begin, int64_t *end)
{
    int64_t q = n / nth, r = n % nth;
    *begin = q * ith + (ith < r ? ith : r);
    *end = *begin + q + (ith < r ? 1 : 0);
}

typedef struct {
    qeil_tpool_range range;
    void *arg;
    int64_t n;
} pfor_args;

static void pfor_task(void *p, int ith, int nth)
{
    const pfor_args *a = p;
    int64_t b, e;
    qeil_tpool_chunk(a->n, ith, nth, &b, &e);
    if (b < e) a->range(a->arg, b, e);
}

void qeil_tpool_parallel_for(qeil_tpool *pool, int64_t n, qeil_tpool_range range, void *arg)
{
    if (n <= 0) return;
    if (!pool || (pool->n_threads == 1 && !pool->pinned)) {
        range(arg, 0, n);
        return;
    }
    pfor_args a = {range, arg, n};
    qeil_tpool_run(pool, pfor_task, &a);
}
