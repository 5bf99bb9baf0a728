/*
 * threadpool.h — a persistent pthread pool for the engine's kernels
 * (internal). Workers are created once and wait between dispatches (a short
 * spin, then a condition variable), so a dispatch allocates nothing and
 * costs a wake-up, not a thread creation.
 *
 *     qeil_tpool *pool = NULL;
 *     if (qeil_tpool_create(ctx, 4, &pool) != QEIL_OK) { ...errmsg... }
 *     qeil_tpool_parallel_for(pool, n_rows, do_rows, &args); // do_rows(&args, b, e)
 *     qeil_tpool_free(pool);
 *
 * Work split: static and contiguous — of n items and T threads, thread t
 * gets [t*n/T, (t+1)*n/T) (the first n % T threads one item more), so a
 * given item always runs the same code whatever T is; results that depend
 * only on the item are identical for every thread count.
 *
 * Thread-safety: one thread at a time may dispatch on a pool (the engine's
 * driver thread); dispatches do not nest. The calling thread takes part as
 * thread 0, so a pool of 1 thread starts no threads at all (a pinned pool,
 * below, is the exception).
 */
#ifndef QEIL_ENGINE_THREADPOOL_H
#define QEIL_ENGINE_THREADPOOL_H

#include <stdint.h>

#include "qeil/qeil.h"

#define QEIL_TPOOL_MAX_THREADS 256

typedef struct qeil_tpool qeil_tpool;

/* Body run by every thread: ith in [0, nth). */
typedef void (*qeil_tpool_task)(void *arg, int ith, int nth);
/* Body of a parallel-for: handle items [begin, end) (never empty). */
typedef void (*qeil_tpool_range)(void *arg, int64_t begin, int64_t end);

/* Create a pool of n_threads (1..QEIL_TPOOL_MAX_THREADS) counting the
 * caller; n_threads - 1 workers are started. ctx (may be NULL) supplies the
 * allocator and receives the error; it must outlive the pool. */
qeil_status qeil_tpool_create(qeil_ctx *ctx, int n_threads, qeil_tpool **out);
/* A pool whose n_threads threads are all workers bound to the CPUs
 * cpus[0..n_cpus) (each may run on any of them: pthread affinity, Linux),
 * for a CPU device on one core cluster (docs/engine.md, "CPU clusters").
 * The dispatching thread does not compute (its own affinity is left
 * alone): it publishes the task and waits, so a pool of 1 thread starts
 * one worker. QEIL_ERR_UNSUPPORTED where the kernel refuses the binding
 * (a CPU outside the process's cpuset) or off Linux. */
qeil_status qeil_tpool_create_pinned(qeil_ctx *ctx, int n_threads, const int *cpus, int n_cpus,
                                     qeil_tpool **out);
/* 1 for a pool from qeil_tpool_create_pinned. */
int qeil_tpool_pinned(const qeil_tpool *pool);
/* Stop and join the workers. NULL is a no-op. Not during a dispatch. */
void qeil_tpool_free(qeil_tpool *pool);
int qeil_tpool_n_threads(const qeil_tpool *pool);

/* Run task(arg, ith, nth) on all threads; return when all have finished
 * (the return is a full barrier: their writes are visible to the caller).
 * pool NULL: task(arg, 0, 1) on the caller. */
void qeil_tpool_run(qeil_tpool *pool, qeil_tpool_task task, void *arg);
/* Inside a task: wait until all nth threads of the pool reach this call.
 * Every thread must call it the same number of times. */
void qeil_tpool_barrier(qeil_tpool *pool);
/* Split [0, n) into nth static contiguous chunks (see above) and run
 * range(arg, begin, end) on each non-empty one. n <= 0 does nothing.
 * pool may be NULL: then the caller runs range(arg, 0, n) itself. */
void qeil_tpool_parallel_for(qeil_tpool *pool, int64_t n, qeil_tpool_range range, void *arg);
/* The chunk of thread ith (what parallel_for uses). */
void qeil_tpool_chunk(int64_t n, int ith, int nth, int64_t *begin, int64_t *end);

#endif /* QEIL_ENGINE_THREADPOOL_H */
