/*
 * archive.h — planner internals shared by the src/plan sources (not installed).
 *
 * The Pareto archive: a set of feasible, mutually non-dominated plans
 * (objective vectors minimised). Bounded archives (PGSAM, random) hold at
 * most `cap` members and, when a newcomer would overflow them, drop the
 * member with the smallest crowding distance; unbounded archives (the
 * exhaustive ground truth) grow. Every operation is deterministic: the same
 * sequence of insertions gives the same members in the same order.
 *
 * Also here: the evaluation wrapper that counts infeasibility causes, the
 * seed-plan constructors and the per-method entry points, so that pgsam.c,
 * baselines.c and front.c share one definition of each.
 */
#ifndef QEIL_PLAN_ARCHIVE_H
#define QEIL_PLAN_ARCHIVE_H

#include "qeil/plan.h"

#define QEIL_NOBJ 3 /* energy_J, latency_s, underutil */

typedef struct {
    double f[QEIL_NOBJ];
    qeil_assignment a;
} qeil_archive_entry;

typedef struct {
    qeil_ctx *ctx;         /* allocator for growth (unbounded archives) */
    size_t n;              /* members */
    size_t cap;            /* most members; 0 = unbounded */
    size_t slots;          /* allocated entries (cap + 1 when bounded) */
    qeil_archive_entry *m; /* [slots] */
    double *crowd;         /* [slots] crowding distance of each member (scratch) */
    double *key;           /* [slots] sort key scratch */
    size_t *order, *tmp;   /* [slots] sort scratch */
} qeil_archive;

/* cap 0 = unbounded (grows by doubling through ctx's allocator). */
qeil_status qeil_archive_init(qeil_ctx *ctx, qeil_archive *ar, size_t cap);
void qeil_archive_free(qeil_archive *ar);

/* 1 when a dominates b (a <= b everywhere, < somewhere). */
int qeil_dominates(const double a[QEIL_NOBJ], const double b[QEIL_NOBJ]);

/* Offer a plan. Returns 1 when it entered (the archive changed), 0 when it
 * was rejected (weakly dominated by a member: dominated or an equal
 * objective vector; non-finite objectives; or the most crowded member of a
 * full archive), -1 when an unbounded archive could not grow. */
int qeil_archive_insert(qeil_archive *ar, const double f[QEIL_NOBJ], const qeil_assignment *a);

/* Crowding distance (NSGA-II, Deb et al. 2002) of every member in objective
 * space normalised by the archive's own range: boundary members of each
 * objective get INFINITY. Result in ar->crowd[0..n-1]. */
void qeil_archive_crowding(qeil_archive *ar);

/* Stable merge sort of idx[0..n) by key[idx[i]] ascending (ties keep their
 * order); tmp is scratch of n entries. No allocation. */
void qeil_sort_idx(size_t *idx, size_t *tmp, size_t n, const double *key);

/* ---- Evaluation bookkeeping shared by every method ---- */

#define QEIL_N_INFEAS 5 /* memory, thermal, health, dtype, link */

typedef struct {
    qeil_ctx *ctx;
    const qeil_platform *pf;
    const qeil_workload *wl;
    const qeil_plan_params *pp;
    qeil_eval *ev;              /* scratch of the last evaluation */
    uint64_t evals;             /* evaluations spent */
    uint64_t n_infeasible;      /* of which infeasible */
    uint64_t n_nonfinite;       /* feasible but with a non-finite objective */
    uint64_t infeas_count[QEIL_N_INFEAS]; /* per QEIL_INFEAS_* bit */
    int n_cand;                 /* healthy units, the only targets of moves */
    uint8_t cand[QEIL_MAX_UNITS];
} qeil_plan_job;

/* Evaluate a into job->ev; fills f. Returns 1 feasible with finite
 * objectives, 0 otherwise (causes counted), -1 when the energy model
 * rejected the assignment as malformed (a bug in the planner). */
int qeil_plan_eval(qeil_plan_job *job, const qeil_assignment *a, double f[QEIL_NOBJ]);

/* Everything on unit d, nominal DVFS everywhere, decode batch b. */
void qeil_plan_fill_uniform(qeil_assignment *a, const qeil_platform *pf, const qeil_workload *wl,
                            int d, int batch);
/* Greedy (first-QEIL) plan: see docs/planner.md. */
void qeil_plan_fill_greedy(qeil_assignment *a, const qeil_plan_job *job);
/* Contiguous split of the work units over the healthy units in proportion
 * to the capacity of each unit's pool (what --tensor-split does). */
void qeil_plan_fill_memsplit(qeil_assignment *a, const qeil_plan_job *job);

/* QEIL_ERR_INFEASIBLE with a message naming the binding constraints. */
qeil_status qeil_plan_fail_infeasible(qeil_plan_job *job, const char *method);

/* Methods: fill the archive (or, for standard/greedy, *single). */
qeil_status qeil_plan_run_pgsam(qeil_plan_job *job, qeil_archive *ar);
qeil_status qeil_plan_run_random(qeil_plan_job *job, qeil_archive *ar);
qeil_status qeil_plan_run_exhaustive(qeil_plan_job *job, qeil_archive *ar);
/* Plans the exhaustive search would evaluate on job's instance. */
double qeil_plan_exhaustive_size(const qeil_plan_job *job);
/* Returns 1 and fills *out when a feasible plan was found, else 0. */
int qeil_plan_run_standard(qeil_plan_job *job, qeil_assignment *out);
int qeil_plan_run_greedy(qeil_plan_job *job, qeil_assignment *out);

/* Build a front from the archive members (re-evaluated for the full
 * breakdown, sorted by energy ascending). */
qeil_status qeil_front_build(qeil_plan_job *job, const qeil_archive_entry *m, size_t n,
                             qeil_front **out);

#endif /* QEIL_PLAN_ARCHIVE_H */
