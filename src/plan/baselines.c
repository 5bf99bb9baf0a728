/* baselines.c — the plans PGSAM is measured against: standard (the whole
 * model on the single fastest unit), greedy (the first QEIL version's rule),
 * uniform random search, and exhaustive enumeration (ground truth on small
 * instances). Definitions and search-space sizes: docs/planner.md. */
#include "plan/archive.h"

#include <math.h>
#include <string.h>

/* Beyond this many contiguous-segment evaluations the exhaustive search
 * restricts itself (docs/planner.md, "Exhaustive"): at a few µs per
 * evaluation 5e7 is minutes of CPU, the most a ground truth should cost. */
#define EXH_SEGMENT_BUDGET 5e7

void qeil_plan_fill_uniform(qeil_assignment *a, const qeil_platform *pf, const qeil_workload *wl,
                            int d, int batch)
{
    memset(a, 0, sizeof *a);
    for (uint32_t w = 0; w < wl->n_units; w++) a->pf_unit[w] = a->dc_unit[w] = (uint8_t)d;
    for (int u = 0; u < pf->n_units; u++) a->dvfs[u] = (uint8_t)pf->units[u].dvfs_nominal;
    a->batch = (uint16_t)batch;
}

/* Sustained bandwidth per watt while streaming: B / (P_const + P_leak,ref +
 * ε_byte·B), the decode figure of merit the first QEIL version used. */
static double bw_per_watt(const qeil_unit *u)
{
    double w = u->p_const_W + u->p_leak_ref_W + u->e_byte_J * u->mem_bw_Bps;
    return w > 0.0 ? u->mem_bw_Bps / w : u->mem_bw_Bps;
}

void qeil_plan_fill_greedy(qeil_assignment *a, const qeil_plan_job *job)
{
    const qeil_platform *pf = job->pf;
    const qeil_workload *wl = job->wl;
    qeil_plan_fill_uniform(a, pf, wl, job->cand[0], (int)wl->samples);
    for (uint32_t w = 0; w < wl->n_units; w++) {
        qeil_dtype dt = wl->dtype[w];
        int bp = -1, bd = -1;
        for (int i = 0; i < job->n_cand; i++) {
            int d = job->cand[i];
            const qeil_unit *u = &pf->units[d];
            if (u->peak_ops[dt] <= 0.0) continue; /* cannot run this type */
            if (bp < 0 || u->peak_ops[dt] > pf->units[bp].peak_ops[dt]) bp = d;
            if (bd < 0 || bw_per_watt(u) > bw_per_watt(&pf->units[bd])) bd = d;
        }
        /* No healthy unit supports the type: leave it on the first one and
         * let the energy model report the dtype violation. */
        a->pf_unit[w] = (uint8_t)(bp >= 0 ? bp : job->cand[0]);
        a->dc_unit[w] = (uint8_t)(bd >= 0 ? bd : job->cand[0]);
    }
}

void qeil_plan_fill_memsplit(qeil_assignment *a, const qeil_plan_job *job)
{
    const qeil_platform *pf = job->pf;
    const qeil_workload *wl = job->wl;
    qeil_plan_fill_uniform(a, pf, wl, job->cand[0], (int)wl->samples);
    /* Each healthy unit's share: its pool's capacity divided among the
     * healthy units on that pool. */
    double share[QEIL_MAX_UNITS], total_share = 0.0, total_w = 0.0;
    for (int i = 0; i < job->n_cand; i++) {
        int d = job->cand[i], on_pool = 0;
        for (int k = 0; k < job->n_cand; k++)
            if (pf->units[job->cand[k]].pool == pf->units[d].pool) on_pool++;
        share[i] = pf->pools[pf->units[d].pool].capacity_B / on_pool;
        total_share += share[i];
    }
    for (uint32_t w = 0; w < wl->n_units; w++) total_w += wl->u[w].weight_res_B;
    if (!(total_share > 0.0) || !(total_w > 0.0)) return;
    double cum_w = 0.0, cum_share = share[0];
    int i = 0;
    for (uint32_t w = 0; w < wl->n_units; w++) {
        /* move to the next unit once this one's share of the weights is used */
        double mid = cum_w + 0.5 * wl->u[w].weight_res_B;
        while (i + 1 < job->n_cand && mid > total_w * cum_share / total_share) {
            i++;
            cum_share += share[i];
        }
        a->pf_unit[w] = a->dc_unit[w] = job->cand[i];
        cum_w += wl->u[w].weight_res_B;
    }
}

/* ------------------------------------------------------------------------ */
/* standard, greedy                                                          */
/* ------------------------------------------------------------------------ */

int qeil_plan_run_standard(qeil_plan_job *job, qeil_assignment *out)
{
    qeil_assignment a;
    double f[QEIL_NOBJ], best[QEIL_NOBJ] = {0};
    int found = 0;
    for (int i = 0; i < job->n_cand; i++) {
        qeil_plan_fill_uniform(&a, job->pf, job->wl, job->cand[i], (int)job->wl->samples);
        int r = qeil_plan_eval(job, &a, f);
        if (r < 0) return -1;
        if (!r) continue;
        /* fastest; equal latency -> lower energy; then the lower index */
        if (!found || f[1] < best[1] || (f[1] == best[1] && f[0] < best[0])) {
            *out = a;
            memcpy(best, f, sizeof best);
            found = 1;
        }
    }
    return found;
}

int qeil_plan_run_greedy(qeil_plan_job *job, qeil_assignment *out)
{
    double f[QEIL_NOBJ];
    qeil_plan_fill_greedy(out, job);
    return qeil_plan_eval(job, out, f);
}

/* ------------------------------------------------------------------------ */
/* random                                                                    */
/* ------------------------------------------------------------------------ */

qeil_status qeil_plan_run_random(qeil_plan_job *job, qeil_archive *ar)
{
    const qeil_platform *pf = job->pf;
    const qeil_workload *wl = job->wl;
    qeil_rng rng;
    qeil_rng_seed(&rng, job->pp->seed);
    qeil_assignment a;
    memset(&a, 0, sizeof a);
    double f[QEIL_NOBJ];
    while (job->evals < job->pp->iters) {
        for (uint32_t w = 0; w < wl->n_units; w++) {
            a.pf_unit[w] = job->cand[qeil_rng_below(&rng, (uint64_t)job->n_cand)];
            a.dc_unit[w] = job->cand[qeil_rng_below(&rng, (uint64_t)job->n_cand)];
        }
        for (int d = 0; d < pf->n_units; d++)
            a.dvfs[d] = (uint8_t)qeil_rng_below(&rng, (uint64_t)pf->units[d].n_dvfs);
        a.batch = (uint16_t)(1 + qeil_rng_below(&rng, wl->samples));
        int r = qeil_plan_eval(job, &a, f);
        if (r < 0) return qeil_ctx_fail(job->ctx, QEIL_ERR_INTERNAL, "random: energy model rejected a plan");
        if (r && qeil_archive_insert(ar, f, &a) < 0)
            return qeil_ctx_fail(job->ctx, QEIL_ERR_NOMEM, "random: archive insertion failed");
    }
    return QEIL_OK;
}

/* ------------------------------------------------------------------------ */
/* exhaustive                                                                */
/* ------------------------------------------------------------------------ */

typedef struct {
    qeil_plan_job *job;
    qeil_archive *ar;
    qeil_assignment a;
    uint32_t n;
    int mirror;      /* decode placement = prefill placement */
    int max_seg;     /* most segments per phase */
    int n_choice[QEIL_MAX_UNITS];             /* DVFS choices of a unit that holds work */
    uint8_t choice[QEIL_MAX_UNITS][QEIL_MAX_DVFS];
    int n_batch;
    uint16_t batches[QEIL_MAX_SAMPLES];
    unsigned mask0;  /* units used by the prefill placement */
    qeil_status st;
    double total;    /* plans this search evaluates (for progress) */
} exh;

/* Report progress every this many evaluations (a few seconds' worth at
 * most; a power of two so the test is a mask). */
#define EXH_PROGRESS_EVERY (1u << 18)

static int popcount(unsigned m)
{
    int c = 0;
    for (; m; m &= m - 1) c++;
    return c;
}

static void exh_leaf(exh *e)
{
    double f[QEIL_NOBJ];
    int r = qeil_plan_eval(e->job, &e->a, f);
    const qeil_plan_params *pp = e->job->pp;
    if (pp->progress && (e->job->evals & (EXH_PROGRESS_EVERY - 1)) == 0)
        pp->progress(pp->progress_user, e->job->evals, (uint64_t)e->total);
    if (r < 0) {
        e->st = qeil_ctx_fail(e->job->ctx, QEIL_ERR_INTERNAL, "exhaustive: energy model rejected a plan");
        return;
    }
    if (r && qeil_archive_insert(e->ar, f, &e->a) < 0)
        e->st = qeil_ctx_fail(e->job->ctx, QEIL_ERR_NOMEM, "exhaustive: out of memory for the front");
}

/* DVFS choices for the units in `used` (others stay nominal), then batches. */
static void exh_dvfs(exh *e, unsigned used, int d)
{
    if (e->st != QEIL_OK) return;
    const qeil_platform *pf = e->job->pf;
    if (d == pf->n_units) {
        for (int b = 0; b < e->n_batch && e->st == QEIL_OK; b++) {
            e->a.batch = e->batches[b];
            exh_leaf(e);
        }
        return;
    }
    if (!(used & (1u << d))) {
        e->a.dvfs[d] = (uint8_t)pf->units[d].dvfs_nominal;
        exh_dvfs(e, used, d + 1);
        return;
    }
    for (int k = 0; k < e->n_choice[d] && e->st == QEIL_OK; k++) {
        e->a.dvfs[d] = e->choice[d][k];
        exh_dvfs(e, used, d + 1);
    }
}

/* Contiguous segments of one phase from position pos on; mask = units used. */
static void exh_segments(exh *e, int phase, uint32_t pos, unsigned mask)
{
    if (e->st != QEIL_OK) return;
    uint8_t *ua = phase ? e->a.dc_unit : e->a.pf_unit;
    if (pos == e->n) {
        if (phase == 0 && e->mirror) {
            memcpy(e->a.dc_unit, e->a.pf_unit, e->n);
            exh_dvfs(e, mask, 0);
        } else if (phase == 0) {
            e->mask0 = mask;
            exh_segments(e, 1, 0, 0);
        } else {
            exh_dvfs(e, e->mask0 | mask, 0);
        }
        return;
    }
    int used = popcount(mask);
    if (used >= e->max_seg) return;
    const qeil_plan_job *job = e->job;
    for (int i = 0; i < job->n_cand; i++) {
        int d = job->cand[i];
        if (mask & (1u << d)) continue;
        /* the last allowed segment must reach the end */
        uint32_t first_end = used + 1 == e->max_seg ? e->n : pos + 1;
        for (uint32_t k = pos; k < first_end; k++) ua[k] = (uint8_t)d;
        for (uint32_t end = first_end; end <= e->n && e->st == QEIL_OK; end++) {
            ua[end - 1] = (uint8_t)d;
            exh_segments(e, phase, end, mask | (1u << d));
        }
    }
}

static double binom(double n, double k)
{
    if (k < 0 || k > n) return 0.0;
    double r = 1.0;
    for (int i = 1; i <= (int)k; i++) r = r * (n - k + i) / i;
    return r;
}

/* Placements of one phase that use exactly the units in S (|S| segments
 * in some order, cut at |S|-1 of the n-1 gaps). */
static double seg_count(const exh *e, unsigned S)
{
    int k = popcount(S);
    if (k == 0 || k > e->max_seg || (uint32_t)k > e->n) return 0.0;
    double fact = 1.0;
    for (int i = 2; i <= k; i++) fact *= i;
    return binom((double)e->n - 1, (double)k - 1) * fact;
}

static double exh_count(const exh *e)
{
    const qeil_plan_job *job = e->job;
    unsigned full = 0;
    for (int i = 0; i < job->n_cand; i++) full |= 1u << job->cand[i];
    double total = 0.0;
    /* iterate subsets of the healthy units: S1 (prefill), S2 (decode) */
    for (unsigned s1 = full;; s1 = (s1 - 1) & full) {
        if (s1) {
            if (e->mirror) {
                double dv = 1.0;
                for (int d = 0; d < job->pf->n_units; d++)
                    if (s1 & (1u << d)) dv *= e->n_choice[d];
                total += seg_count(e, s1) * dv;
            } else {
                for (unsigned s2 = full;; s2 = (s2 - 1) & full) {
                    if (s2) {
                        double dv = 1.0;
                        for (int d = 0; d < job->pf->n_units; d++)
                            if ((s1 | s2) & (1u << d)) dv *= e->n_choice[d];
                        total += seg_count(e, s1) * seg_count(e, s2) * dv;
                    }
                    if (s2 == 0) break;
                }
            }
        }
        if (s1 == 0) break;
    }
    return total * e->n_batch;
}

static void set_batches(exh *e, int powers_of_two, int only_max)
{
    uint32_t S = e->job->wl->samples;
    e->n_batch = 0;
    for (uint32_t b = 1; b <= S; b++) {
        int pow2 = (b & (b - 1)) == 0;
        if (only_max && b != S) continue;
        if (powers_of_two && !pow2 && b != S) continue;
        e->batches[e->n_batch++] = (uint16_t)b;
    }
}

/* DVFS choices: mode 0 all points, 1 {lowest, nominal, highest}, 2 nominal. */
static void set_dvfs(exh *e, int mode)
{
    const qeil_platform *pf = e->job->pf;
    for (int d = 0; d < pf->n_units; d++) {
        const qeil_unit *u = &pf->units[d];
        int c = 0;
        for (int k = 0; k < u->n_dvfs; k++) {
            int keep = mode == 0 || k == u->dvfs_nominal ||
                       (mode == 1 && (k == 0 || k == u->n_dvfs - 1));
            if (keep) e->choice[d][c++] = (uint8_t)k;
        }
        e->n_choice[d] = c;
    }
}

/* Full enumeration: an odometer over every variable. */
static void exh_full(exh *e)
{
    const qeil_plan_job *job = e->job;
    const qeil_platform *pf = job->pf;
    uint32_t n = e->n;
    uint8_t pi[QEIL_MAX_WUNITS] = {0}, di[QEIL_MAX_WUNITS] = {0}; /* index into job->cand */
    memset(&e->a, 0, sizeof e->a);
    for (uint32_t w = 0; w < n; w++) e->a.pf_unit[w] = e->a.dc_unit[w] = job->cand[0];
    e->a.batch = 1;
    for (;;) {
        exh_leaf(e);
        if (e->st != QEIL_OK) return;
        /* increment: prefill units, decode units, DVFS points, batch */
        uint32_t w;
        for (w = 0; w < n; w++) {
            if (++pi[w] < job->n_cand) break;
            pi[w] = 0;
        }
        for (uint32_t k = 0; k < n; k++) e->a.pf_unit[k] = job->cand[pi[k]];
        if (w < n) continue;
        for (w = 0; w < n; w++) {
            if (++di[w] < job->n_cand) break;
            di[w] = 0;
        }
        for (uint32_t k = 0; k < n; k++) e->a.dc_unit[k] = job->cand[di[k]];
        if (w < n) continue;
        int d;
        for (d = 0; d < pf->n_units; d++) {
            if (++e->a.dvfs[d] < pf->units[d].n_dvfs) break;
            e->a.dvfs[d] = 0;
        }
        if (d < pf->n_units) continue;
        if (++e->a.batch > job->wl->samples) return;
    }
}

/* The exhaustive search's shape for this instance: full enumeration, or
 * contiguous segments restricted step by step until within budget. Sets
 * e's choice tables; returns the number of plans it will evaluate and, in
 * *count0 / *what, the unrestricted segment count and the restriction (NULL
 * for none; *full = 1 for the full enumeration). */
static double exh_setup(exh *e, int *full, double *count0, const char **what)
{
    const qeil_platform *pf = e->job->pf;
    *what = NULL;
    *count0 = 0.0;
    /* Full enumeration size: (#healthy units)^(2n) × Π dvfs × #batches. */
    double n_full = pow((double)e->job->n_cand, 2.0 * e->n) * (double)e->job->wl->samples;
    for (int d = 0; d < pf->n_units; d++) n_full *= pf->units[d].n_dvfs;
    *full = n_full <= (double)e->job->pp->exhaustive_full_max;
    if (*full) return n_full;
    static const struct {
        int mirror, batch_pow2, batch_max, dvfs_mode, max_seg;
        const char *what;
    } level[] = {
        {0, 0, 0, 0, QEIL_MAX_UNITS, "none"},
        {1, 0, 0, 0, QEIL_MAX_UNITS, "decode placement = prefill placement"},
        {1, 1, 0, 0, QEIL_MAX_UNITS, "decode = prefill; batch in {powers of 2, samples}"},
        {1, 1, 0, 1, QEIL_MAX_UNITS,
         "decode = prefill; batch in {powers of 2, samples}; DVFS in {lowest, nominal, highest}"},
        {1, 1, 0, 2, QEIL_MAX_UNITS, "decode = prefill; batch in {powers of 2, samples}; nominal DVFS"},
        {1, 1, 0, 2, 2, "decode = prefill; batch in {powers of 2, samples}; nominal DVFS; <= 2 segments"},
        {1, 0, 1, 2, 2, "decode = prefill; batch = samples; nominal DVFS; <= 2 segments"},
    };
    const int n_level = (int)(sizeof level / sizeof level[0]);
    double count = 0.0;
    int L;
    for (L = 0; L < n_level; L++) {
        e->mirror = level[L].mirror;
        e->max_seg = level[L].max_seg;
        set_batches(e, level[L].batch_pow2, level[L].batch_max);
        set_dvfs(e, level[L].dvfs_mode);
        count = exh_count(e);
        if (L == 0) *count0 = count;
        if (count <= EXH_SEGMENT_BUDGET) break;
    }
    if (L == n_level) L = n_level - 1; /* at most U + (n-1)·U(U-1) plans: always small */
    if (L > 0) *what = level[L].what;
    return count;
}

qeil_status qeil_plan_run_exhaustive(qeil_plan_job *job, qeil_archive *ar)
{
    exh *e = qeil_calloc(job->ctx, 1, sizeof *e);
    if (!e) return qeil_ctx_fail(job->ctx, QEIL_ERR_NOMEM, "exhaustive: out of memory");
    e->job = job;
    e->ar = ar;
    e->n = job->wl->n_units;
    e->st = QEIL_OK;
    int full;
    double count0;
    const char *what;
    double count = exh_setup(e, &full, &count0, &what);
    e->total = count;
    if (full) {
        qeil_ctx_log(job->ctx, QEIL_LOG_INFO, "exhaustive: full enumeration of %.0f plans", count);
        exh_full(e);
    } else {
        if (what)
            qeil_ctx_log(job->ctx, QEIL_LOG_WARN,
                         "exhaustive: %.3g contiguous-segment plans exceed the budget of %.0e; "
                         "restricted (%s) to %.3g plans: the result is not a ground truth",
                         count0, EXH_SEGMENT_BUDGET, what, count);
        else
            qeil_ctx_log(job->ctx, QEIL_LOG_INFO, "exhaustive: %.0f contiguous-segment plans", count);
        memset(&e->a, 0, sizeof e->a);
        exh_segments(e, 0, 0, 0);
    }
    if (e->st == QEIL_OK && job->pp->progress)
        job->pp->progress(job->pp->progress_user, job->evals, job->evals);
    qeil_status st = e->st;
    qeil_free(job->ctx, e);
    return st;
}

double qeil_plan_exhaustive_size(const qeil_plan_job *job)
{
    exh e;
    memset(&e, 0, sizeof e);
    e.job = (qeil_plan_job *)job;
    e.n = job->wl->n_units;
    int full;
    double count0;
    const char *what;
    return exh_setup(&e, &full, &count0, &what);
}
