/* rt_recover.h — re-planning a running request's placement with the
 * planner (recover.c): after a failed unit (recovery) and when the thermal
 * guard moves work off a hot unit (migration). Internal to the runtime;
 * docs/runtime.md "Recovery from a failed unit", docs/guard.md "In the
 * runtime". */
#ifndef QEIL_RT_RECOVER_H
#define QEIL_RT_RECOVER_H

#include "qeil/runtime.h"

/* The unit of pf that stands for engine backend id (qeil_unit.device ==
 * qeil_engine_device_name(id)); -1 when none does. */
int rt_unit_of_device(const qeil_platform *pf, size_t id);

/* 1 when the planner can re-place this engine's work on pf: some unit
 * names a local device and every device of the placement place[0..nu)
 * stands for a unit. 0 otherwise, with the reason in why[cap]. */
int rt_profile_maps(const qeil_platform *pf, const uint8_t *place, uint32_t nu, char *why,
                    size_t cap);

typedef struct {
    qeil_ctx *ctx;
    const qeil_platform *pf;       /* the planning view: the runtime's platform, or the
                                      guard's fitted one (borrowed) */
    const qeil_workload *wl;       /* the planning workload (configuration 0's, or one
                                      built for the request) */
    const uint8_t *place;          /* the current placement [wl->n_units] */
    const qeil_assignment *base;   /* DVFS points and batch of the current placement's
                                      plan (configuration 0's plan); NULL: nominal, 1 */
    const qeil_assignment *front;  /* further warm-start plans (NULL/0: none) */
    uint32_t n_front;
    uint8_t leave[QEIL_MAX_UNITS]; /* 1: the plan puts no work on this unit (failed, hot) */
    uint32_t iters;                /* PGSAM evaluations */
    uint64_t seed;
    double max_latency_s;          /* > 0: the lowest-energy plan within it, else the knee */
    int phase;                     /* the plan's phase mapped to the placement (0, 1) */
} rt_replan_in;

typedef struct {
    uint8_t place[QEIL_MAX_WUNITS]; /* the new placement (backend ids) */
    qeil_assignment plan;           /* the plan chosen */
    qeil_eval ev;                   /* its evaluation on in->pf */
    uint64_t evaluations;
    qeil_assignment *front;         /* the new front's plans, from ctx's allocator (the
                                       caller frees them: the next re-plan's warm start) */
    uint32_t n_front;
} rt_replan_out;

/* PGSAM on in->pf with every unit in->leave marks, or that stands for no
 * local device, unhealthy (the planner's health constraint; `qeil plan
 * --fail`), warm-started from the current placement as a plan and
 * in->front; the knee (or the bound's best), mapped to a placement through
 * the units' devices (qeil_plan_placement). QEIL_ERR_INFEASIBLE when no
 * unit is left or no plan is feasible; the planner's and the mapping's
 * errors otherwise; the message on in->ctx. *out's front is NULL on error. */
qeil_status rt_replan_placement(const rt_replan_in *in, rt_replan_out *out);

/* "emb..b0:cpu,b1..head:vk0" (qeil_placement_parse's form) into buf[cap],
 * cut with "..." when it does not fit. */
void rt_placement_text(const uint8_t *place, uint32_t nu, char *buf, size_t cap);

#endif /* QEIL_RT_RECOVER_H */
