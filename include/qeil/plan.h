/*
 * plan.h — search for assignments: PGSAM (Pareto-Guided Simulated Annealing
 * with Momentum) and the baselines (standard, greedy, random, exhaustive),
 * the Pareto archive and the exact 3-objective hypervolume.
 *
 * Usage:
 *
 *     qeil_plan_params pp = qeil_plan_default_params();
 *     pp.seed = 42;
 *     qeil_front *front = NULL;
 *     if (qeil_plan_search(ctx, &pf, &wl, &pp, &front) != QEIL_OK) { ...errmsg... }
 *     size_t k = qeil_front_knee(front);
 *     const qeil_eval *ev = qeil_front_eval(front, k);
 *     printf("%.1f J, %.2f s\n", ev->energy_J, ev->latency_s);
 *     qeil_front_free(front);
 *
 * Determinism: the same platform, workload, params and seed give the same
 * front, bit for bit. Algorithm and cooling schedule: docs/planner.md.
 * Thread-safety: a search uses only its own state; fronts are immutable.
 */
#ifndef QEIL_PLAN_H
#define QEIL_PLAN_H

#include "qeil/energy.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    QEIL_METHOD_PGSAM = 0,
    QEIL_METHOD_GREEDY,     /* prefill -> highest-FLOP unit, decode -> best bandwidth per watt */
    QEIL_METHOD_STANDARD,   /* everything on the single fastest unit */
    QEIL_METHOD_EXHAUSTIVE, /* every plan (tiny) or every contiguous-segment plan */
    QEIL_METHOD_RANDOM      /* uniform random plans, same evaluation budget (a bench baseline) */
} qeil_plan_method;

QEIL_API const char *qeil_plan_method_name(qeil_plan_method m);
QEIL_API int qeil_plan_method_from_name(const char *name); /* -1 if unknown */

#define QEIL_ARCHIVE_MAX 256
#define QEIL_MAX_ITERS 10000000u

typedef struct {
    qeil_plan_method method;
    uint64_t seed;          /* default 42 */
    uint32_t iters;         /* PGSAM/random evaluation budget, 1..QEIL_MAX_ITERS; default 20000 */
    uint32_t archive_max;   /* 2..QEIL_ARCHIVE_MAX; default 128 */
    double t0;              /* initial temperature (normalised objective units); default 0.5 */
    double t_end;           /* final temperature; default 1e-3 (geometric cooling t0 -> t_end) */
    double momentum;        /* β of the move-preference EWMA, [0, 1); default 0.8 */
    uint32_t restart_every; /* iterations without archive change before a restart; default 2000 */
    qeil_energy_params energy;
    /* Exhaustive: full enumeration when (#units)^(2·#work units) × #dvfs ×
     * #batches is at most this; contiguous-segment plans otherwise. */
    uint64_t exhaustive_full_max; /* default 2,000,000 */
    /* PGSAM warm start (a re-plan between requests, docs/planner.md): the
     * plans it starts from instead of its own seeds (each unit alone, the
     * greedy plan, the memory split), e.g. the previous front's plans.
     * Borrowed for the call; each must be well formed for the platform and
     * workload (QEIL_ERR_RANGE naming start[i] otherwise); plans that use a
     * failed unit are allowed (the walk leaves them). NULL/0 = the seeds;
     * n_start 0..QEIL_PLAN_MAX_START; default NULL, 0. */
    const qeil_assignment *start;
    uint32_t n_start;
    /* Progress of a long search (the exhaustive one: every 2^18 plans and
     * once at the end, done == total then; other methods take milliseconds
     * and do not call it). Called on the searching thread; may be NULL
     * (default). */
    void (*progress)(void *user, uint64_t done, uint64_t total);
    void *progress_user;
} qeil_plan_params;

#define QEIL_PLAN_MAX_START QEIL_ARCHIVE_MAX

QEIL_API qeil_plan_params qeil_plan_default_params(void);

typedef struct qeil_front qeil_front;

/* Run the chosen method. *out holds the feasible non-dominated plans found
 * (a single plan for standard/greedy). QEIL_ERR_INFEASIBLE when no feasible
 * plan exists (the message says which constraint binds). The front is
 * allocated from ctx, which must outlive it (qeil_front_free uses it). */
QEIL_API qeil_status qeil_plan_search(qeil_ctx *ctx, const qeil_platform *pf, const qeil_workload *wl,
                                      const qeil_plan_params *pp, qeil_front **out);
QEIL_API void qeil_front_free(qeil_front *f);

/* How many plans qeil_plan_search would evaluate with these inputs, into
 * *n_plans: the enumeration size for the exhaustive method (after its
 * restriction, docs/planner.md), iters for PGSAM and random, 1 for standard
 * and greedy. For a caller that wants to refuse or warn before a long
 * search. Errors as qeil_plan_search's input checks. */
QEIL_API qeil_status qeil_plan_count(qeil_ctx *ctx, const qeil_platform *pf, const qeil_workload *wl,
                                     const qeil_plan_params *pp, double *n_plans);

QEIL_API size_t qeil_front_size(const qeil_front *f);
QEIL_API const qeil_assignment *qeil_front_plan(const qeil_front *f, size_t i);
QEIL_API const qeil_eval *qeil_front_eval(const qeil_front *f, size_t i);
QEIL_API uint64_t qeil_front_evaluations(const qeil_front *f); /* evaluations spent */
/* Plans sorted by energy ascending (the order of qeil_front_plan indices). */

/* Knee point: among the plans no other plan beats in both energy and
 * latency, the one closest to the ideal (min energy, min latency) after
 * normalising both to [0, 1]. Underutilization only breaks exact ties. */
QEIL_API size_t qeil_front_knee(const qeil_front *f);
/* Lowest-energy plan with latency <= max_latency_s and energy <= max_energy_J
 * (either may be INFINITY); SIZE_MAX when none qualifies. */
QEIL_API size_t qeil_front_best_under(const qeil_front *f, double max_latency_s, double max_energy_J);

/* Exact hypervolume of points (energy, latency, underutil) dominated with
 * respect to ref (minimisation); points not strictly better than ref in
 * every objective contribute nothing. O(n) scratch from ctx's allocator
 * (ctx may be NULL: the C library); NaN only when that fails (the message
 * on ctx). qeil_front_hypervolume uses the front's ctx. */
QEIL_API double qeil_hypervolume3(qeil_ctx *ctx, const double (*pts)[3], size_t n, const double ref[3]);
QEIL_API double qeil_front_hypervolume(const qeil_front *f, const double ref[3]);

#ifdef __cplusplus
}
#endif

#endif /* QEIL_PLAN_H */
