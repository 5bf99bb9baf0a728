/* rt_metrics.h — DASI, CPQ and Φ of a request, predicted beside measured
 * (rt_metrics.c; docs/runtime.md "DASI, CPQ and Φ at run time"). Internal
 * to the runtime (and its tests). */
#ifndef QEIL_RT_METRICS_H
#define QEIL_RT_METRICS_H

#include "qeil/runtime.h"

typedef struct {
    const qeil_platform *pf;
    const qeil_workload *wl;  /* the request's work (prompt, samples, tokens) */
    const qeil_assignment *a; /* the plan it is priced on */
    const qeil_eval *ev;      /* a on wl (the predicted side) */
    uint32_t n_units;         /* work units */
    const uint8_t *place;     /* [n_units]: the engine device each ran on (backend id) */
    const double *t_pf;       /* [n_units]: measured prefill time per work unit, s */
    const double *t_dc;       /* [n_units]: measured decode time per work unit, s */
    double dc_tokens;         /* sequence-steps decoded in t_dc */
    const double *temp_C;     /* [pf->n_units]: measured temperature, NAN none */
    double mem_used_B;        /* host memory in use, NAN unknown */
} rt_metrics_in;

/* out[pf->n_units]; NAN where a value cannot be had. Pure. */
void rt_unit_metrics(const rt_metrics_in *in, qeil_runtime_unit_metrics *out);

/* MemTotal − MemAvailable of <root>/proc/meminfo (root NULL or "" = "/"),
 * bytes; NAN when unreadable. */
double rt_meminfo_used_B(const char *root);

#endif /* QEIL_RT_METRICS_H */
