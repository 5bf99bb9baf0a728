/*
 * fault.h — the fault-injection wrapper backend (internal): wraps one
 * instance of a real backend (its table and state) and forwards every call,
 * counting the ops a forward step issues; op #n (1-based, counted from
 * wrapping) and every op after it then fail the way the kind says:
 *
 *   QEIL_FAULT_ERROR  the op is not run; the device is failed: ops that
 *                     return a status return QEIL_ERR_DEVICE, sync too
 *                     ("device lost")
 *   QEIL_FAULT_OOM    the same with QEIL_ERR_NOMEM (out of device memory)
 *   QEIL_FAULT_HANG   the op never completes: nothing runs any more, ops
 *                     still return QEIL_OK (queued), and sync waits its whole
 *                     timeout (the engine's watchdog) before it returns
 *                     QEIL_ERR_DEVICE
 *   QEIL_FAULT_NONE   count only (a sweep's fault-free run)
 *
 *     fault_wrap *w = NULL;
 *     qeil_fault_wrap_create(ctx, inner_be, inner_st, "vk0", QEIL_FAULT_ERROR, 120, &w);
 *     const qeil_backend *be = qeil_fault_wrap_backend(w);  // same props as inner_be
 *     void *st = w;                                          // the state its ops take
 *     ...
 *     qeil_fault_wrap_unwrap(w);  // frees the wrapper, not the inner instance
 *
 * Counted ops: matmul, matmul_multi, get_rows, add, add_bias, rmsnorm,
 * layernorm, rope, kv_store, attention, silu_mul, gelu, to_host,
 * to_backend, copy and sync. Lifecycle calls (alloc, release,
 * weight_prepare, weight_release, destroy) are forwarded uncounted, so
 * recovery can release the failed instance's resources. destroy destroys
 * the inner instance too, then the wrapper.
 */
#ifndef QEIL_BACKENDS_FAULT_H
#define QEIL_BACKENDS_FAULT_H

#include <stdint.h>

#include "engine/backend.h"
#include "qeil/engine.h"

typedef struct fault_wrap fault_wrap;

qeil_status qeil_fault_wrap_create(qeil_ctx *ctx, const qeil_backend *inner, void *inner_st,
                                   const char *device, qeil_fault_kind kind, uint64_t at_op,
                                   fault_wrap **out);
const qeil_backend *qeil_fault_wrap_backend(const fault_wrap *w);
/* Free the wrapper and hand back the inner instance (*inner_st). */
void qeil_fault_wrap_unwrap(fault_wrap *w, void **inner_st);

/* Ops counted so far; whether the fault fired, on which op (index and
 * name) and when (CLOCK_MONOTONIC seconds). */
uint64_t qeil_fault_wrap_ops(const fault_wrap *w);
int qeil_fault_wrap_fired(const fault_wrap *w, uint64_t *op, const char **op_name, double *t_s);
qeil_fault_kind qeil_fault_wrap_kind(const fault_wrap *w);

#endif /* QEIL_BACKENDS_FAULT_H */
