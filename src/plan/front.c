/* front.c — the result of a search: plans sorted by energy, their full
 * evaluations, the knee, constrained picks, hypervolume, method names and
 * the infeasibility report. A front is allocated from the search's ctx,
 * which it keeps for qeil_front_free and qeil_front_hypervolume (so the ctx
 * must outlive it), and is immutable once built. */
#include "plan/archive.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct qeil_front {
    qeil_ctx *ctx; /* allocator of the front and of its scratch */
    size_t n;
    qeil_assignment *plans; /* [n] */
    qeil_eval *evals;       /* [n] */
    uint64_t evaluations;
};

static const char *const method_names[] = {"pgsam", "greedy", "standard", "exhaustive", "random"};

const char *qeil_plan_method_name(qeil_plan_method m)
{
    if ((unsigned)m >= sizeof method_names / sizeof method_names[0]) return "unknown";
    return method_names[m];
}

int qeil_plan_method_from_name(const char *name)
{
    if (!name) return -1;
    for (size_t i = 0; i < sizeof method_names / sizeof method_names[0]; i++)
        if (strcmp(name, method_names[i]) == 0) return (int)i;
    return -1;
}

/* Total order on entries: energy, latency, underutil, then the plan bytes,
 * so the front's order never depends on the archive's internal order. */
static int cmp_entry(const void *pa, const void *pb)
{
    const qeil_archive_entry *a = pa, *b = pb;
    for (int j = 0; j < QEIL_NOBJ; j++)
        if (a->f[j] != b->f[j]) return a->f[j] < b->f[j] ? -1 : 1;
    return memcmp(&a->a, &b->a, sizeof a->a);
}

qeil_status qeil_front_build(qeil_plan_job *job, const qeil_archive_entry *m, size_t n,
                             qeil_front **out)
{
    *out = NULL;
    qeil_ctx *ctx = job->ctx;
    qeil_front *f = qeil_calloc(ctx, 1, sizeof *f);
    qeil_archive_entry *tmp = qeil_calloc(ctx, n ? n : 1, sizeof *tmp);
    if (f) {
        f->ctx = ctx;
        f->plans = qeil_calloc(ctx, n ? n : 1, sizeof *f->plans);
        f->evals = qeil_calloc(ctx, n ? n : 1, sizeof *f->evals);
    }
    if (!f || !tmp || !f->plans || !f->evals) {
        qeil_free(ctx, tmp);
        qeil_front_free(f);
        return qeil_ctx_fail(job->ctx, QEIL_ERR_NOMEM, "plan: out of memory for a front of %zu plans", n);
    }
    memcpy(tmp, m, n * sizeof *tmp);
    qsort(tmp, n, sizeof *tmp, cmp_entry);
    /* Re-evaluate for the full breakdown (the archive keeps only the
     * objectives); bookkeeping, not search, so not counted in evaluations. */
    for (size_t i = 0; i < n; i++) {
        f->plans[i] = tmp[i].a;
        if (qeil_energy_eval(job->pf, job->wl, &f->plans[i], &job->pp->energy, &f->evals[i]) != QEIL_OK) {
            qeil_free(ctx, tmp);
            qeil_front_free(f);
            return qeil_ctx_fail(job->ctx, QEIL_ERR_INTERNAL, "plan: energy model rejected a front plan");
        }
    }
    qeil_free(ctx, tmp);
    f->n = n;
    f->evaluations = job->evals;
    *out = f;
    return QEIL_OK;
}

void qeil_front_free(qeil_front *f)
{
    if (!f) return;
    qeil_free(f->ctx, f->plans);
    qeil_free(f->ctx, f->evals);
    qeil_free(f->ctx, f);
}

size_t qeil_front_size(const qeil_front *f) { return f ? f->n : 0; }

const qeil_assignment *qeil_front_plan(const qeil_front *f, size_t i)
{
    return f && i < f->n ? &f->plans[i] : NULL;
}

const qeil_eval *qeil_front_eval(const qeil_front *f, size_t i)
{
    return f && i < f->n ? &f->evals[i] : NULL;
}

uint64_t qeil_front_evaluations(const qeil_front *f) { return f ? f->evaluations : 0; }

static double objective(const qeil_eval *ev, int j)
{
    return j == 0 ? ev->energy_J : j == 1 ? ev->latency_s : ev->underutil;
}

/* A plan whose energy and latency another plan matches or beats (one of
 * them strictly, or both equal with lower underutilization). */
static int el_dominated(const qeil_front *f, size_t i)
{
    const qeil_eval *a = &f->evals[i];
    for (size_t j = 0; j < f->n; j++) {
        const qeil_eval *b = &f->evals[j];
        if (j == i || b->energy_J > a->energy_J || b->latency_s > a->latency_s) continue;
        if (b->energy_J < a->energy_J || b->latency_s < a->latency_s) return 1;
        if (b->underutil < a->underutil) return 1;
    }
    return 0;
}

/* The recommendation trades the two objectives a user pays for — energy and
 * latency. Underutilization keeps the search honest about idle powered
 * capacity, but a plan can be on the 3-objective front only for being less
 * idle while costing more joules and seconds than another; recommending it
 * would be perverse. So the knee is taken on the energy–latency sub-front:
 * the plan nearest the ideal point, each objective measured as log(f / min)
 * normalised by its log range — ratios, because "twice the energy" should
 * weigh the same whether the front spans 40–60 J or 0.8–15 s. */
size_t qeil_front_knee(const qeil_front *f)
{
    if (!f || f->n == 0) return SIZE_MAX;
    double lo[2] = {INFINITY, INFINITY}, hi[2] = {-INFINITY, -INFINITY};
    for (size_t i = 0; i < f->n; i++) {
        if (el_dominated(f, i)) continue;
        for (int j = 0; j < 2; j++) {
            lo[j] = fmin(lo[j], log(objective(&f->evals[i], j)));
            hi[j] = fmax(hi[j], log(objective(&f->evals[i], j)));
        }
    }
    size_t best = 0;
    double best_d2 = INFINITY;
    for (size_t i = 0; i < f->n; i++) {
        if (el_dominated(f, i)) continue;
        double d2 = 0.0;
        for (int j = 0; j < 2; j++) {
            double r = hi[j] - lo[j];
            if (!(r > 0.0)) continue; /* all candidates equal here: no preference */
            double t = (log(objective(&f->evals[i], j)) - lo[j]) / r;
            d2 += t * t;
        }
        if (d2 < best_d2) { /* strict: the lowest-energy plan wins ties */
            best_d2 = d2;
            best = i;
        }
    }
    return best;
}

size_t qeil_front_best_under(const qeil_front *f, double max_latency_s, double max_energy_J)
{
    if (!f) return SIZE_MAX;
    /* sorted by energy ascending: the first that qualifies is the answer */
    for (size_t i = 0; i < f->n; i++)
        if (f->evals[i].latency_s <= max_latency_s && f->evals[i].energy_J <= max_energy_J) return i;
    return SIZE_MAX;
}

double qeil_front_hypervolume(const qeil_front *f, const double ref[3])
{
    if (!f || f->n == 0) return 0.0;
    double(*pts)[3] = qeil_calloc(f->ctx, f->n, sizeof *pts);
    if (!pts) {
        qeil_ctx_fail(f->ctx, QEIL_ERR_NOMEM, "hypervolume: out of memory for %zu points", f->n);
        return NAN;
    }
    for (size_t i = 0; i < f->n; i++) {
        pts[i][0] = f->evals[i].energy_J;
        pts[i][1] = f->evals[i].latency_s;
        pts[i][2] = f->evals[i].underutil;
    }
    double hv = qeil_hypervolume3(f->ctx, (const double(*)[3])pts, f->n, ref);
    qeil_free(f->ctx, pts);
    return hv;
}

/* ------------------------------------------------------------------------ */
/* No feasible plan: say which constraints bind                              */
/* ------------------------------------------------------------------------ */

qeil_status qeil_plan_fail_infeasible(qeil_plan_job *job, const char *method)
{
    static const char *const what[QEIL_N_INFEAS] = {
        "memory (resident bytes above rho_max of a pool)",
        "thermal (junction above the throttle limit, or runaway)",
        "health (work on a failed unit)",
        "dtype (a unit without the data type)",
        "link (consecutive work on pools with no link)",
    };
    char buf[400];
    size_t len = 0;
    int used[QEIL_N_INFEAS] = {0}, listed = 0;
    buf[0] = '\0';
    /* most frequent cause first */
    for (;;) {
        int best = -1;
        for (int b = 0; b < QEIL_N_INFEAS; b++)
            if (!used[b] && job->infeas_count[b] > 0 &&
                (best < 0 || job->infeas_count[b] > job->infeas_count[best]))
                best = b;
        if (best < 0) break;
        used[best] = 1;
        int w = snprintf(buf + len, sizeof buf - len, "%s%s in %llu", listed ? "; " : "", what[best],
                         (unsigned long long)job->infeas_count[best]);
        if (w < 0 || (size_t)w >= sizeof buf - len) break;
        len += (size_t)w;
        listed++;
    }
    if (job->n_nonfinite > 0 && len < sizeof buf) {
        int w = snprintf(buf + len, sizeof buf - len, "%snon-finite objectives in %llu", listed ? "; " : "",
                         (unsigned long long)job->n_nonfinite);
        if (w > 0) listed++;
    }
    return qeil_ctx_fail(job->ctx, QEIL_ERR_INFEASIBLE,
                         "%s: no feasible plan among %llu evaluated; binding constraint%s: %s", method,
                         (unsigned long long)job->evals, listed == 1 ? "" : "s", listed ? buf : "none recorded");
}
