/* pgsam.c — the planner's entry point (parameter checks, dispatch) and PGSAM,
 * Pareto-Guided Simulated Annealing with Momentum.
 *
 * The algorithm, its cooling schedule and the reasons behind every constant
 * are in docs/planner.md (with pseudo-code); this file follows it section by
 * section. All randomness goes through the qeil_rng in the search state and
 * everything is allocated before the annealing loop starts. */
#include "plan/archive.h"

#include <math.h>
#include <string.h>

qeil_plan_params qeil_plan_default_params(void)
{
    qeil_plan_params p;
    memset(&p, 0, sizeof p);
    p.method = QEIL_METHOD_PGSAM;
    p.seed = 42;
    p.iters = 20000;
    p.archive_max = 128;
    p.t0 = 0.5;
    p.t_end = 1e-3;
    p.momentum = 0.8;
    p.restart_every = 2000;
    p.energy = qeil_energy_default_params();
    p.exhaustive_full_max = 2000000;
    return p;
}

/* ------------------------------------------------------------------------ */
/* Evaluation wrapper                                                        */
/* ------------------------------------------------------------------------ */

int qeil_plan_eval(qeil_plan_job *job, const qeil_assignment *a, double f[QEIL_NOBJ])
{
    qeil_eval *ev = job->ev;
    if (qeil_energy_eval(job->pf, job->wl, a, &job->pp->energy, ev) != QEIL_OK) return -1;
    job->evals++;
    f[0] = ev->energy_J;
    f[1] = ev->latency_s;
    f[2] = ev->underutil;
    if (!ev->feasible || ev->infeas) {
        job->n_infeasible++;
        for (int b = 0; b < QEIL_N_INFEAS; b++)
            if (ev->infeas & (1u << b)) job->infeas_count[b]++;
        return 0;
    }
    if (!isfinite(f[0]) || !isfinite(f[1]) || !isfinite(f[2])) {
        job->n_nonfinite++;
        return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------------ */
/* PGSAM                                                                     */
/* ------------------------------------------------------------------------ */

enum {
    MV_PF_ONE = 0, /* reassign one work unit's prefill unit */
    MV_DC_ONE,     /* reassign one work unit's decode unit */
    MV_BOUNDARY,   /* move a contiguous segment boundary (directional momentum) */
    MV_SEGMENT,    /* give a whole segment another unit, or swap two segments' units */
    MV_DVFS,       /* change one compute unit's DVFS point */
    MV_BATCH,      /* change the decode batch */
    MV_SYNC,       /* copy a segment's placement from one phase to the other */
    MV_COUNT
};

/* Every applicable move type keeps at least this share of the probability
 * mass in total (split evenly), so a type that failed lately still gets
 * tried: with 7 types each keeps >= 3.6 %. */
#define MV_FLOOR_MASS 0.25
/* Probability that a boundary move reuses the last successful boundary and
 * direction (directional momentum) when one is remembered. */
#define P_DIRECTIONAL 0.75
/* Augmented Tchebycheff: the small weighted sum breaks ties between points
 * with the same max term so weakly-dominated moves are not free (Steuer &
 * Choo 1983; 0.05 is a common choice). */
#define TCH_RHO 0.05
/* Restarts pick uniformly among this many sparsest archive members, so
 * repeated restarts do not all go to the same isolated point. */
#define RESTART_TOPK 3
/* Share of the budget (after the seeds) spent on the final Pareto local
 * search. Measured on the benchmark instances (docs/planner.md): 0 gives
 * 0.989–0.995 of the exhaustive hypervolume on 32 blocks × 2 units, 0.15–0.5
 * all give 0.999; 0.3 sits in the middle of that plateau. */
#define POLISH_FRAC 0.3
/* Seeds: one per healthy unit + greedy + memory split. */
#define MAX_SEEDS (QEIL_MAX_UNITS + 2)

typedef struct {
    qeil_plan_job *job;
    qeil_archive *ar;
    qeil_rng rng;
    uint32_t n; /* work units */
    int U;      /* compute units */

    qeil_assignment cur, cand;
    double fcur[QEIL_NOBJ];
    int cur_feasible;
    double vcur; /* constraint violation of an infeasible current plan */

    /* Normalisation: min/max of each objective over feasible plans seen. */
    double fmin[QEIL_NOBJ], fmax[QEIL_NOBJ];
    int have_range;
    double w[QEIL_NOBJ]; /* the chain's Tchebycheff weights (sum 1) */

    /* Move-type momentum: EWMA of success per type. */
    double score[MV_COUNT];
    int applicable[MV_COUNT];
    int n_applicable;

    /* Directional momentum of boundary moves, per phase (0 pf, 1 dc). */
    int dir_has[2], dir_pos[2], dir_dir[2];
    /* What the last boundary move did (to update the above). */
    int last_phase, last_pos, last_dir, last_momentum;

    uint32_t *scratch; /* [n + 1] boundary / segment lists */
    uint32_t *scratch2;
    double nn[QEIL_ARCHIVE_MAX + 1]; /* restart: nearest-neighbour distances */
    size_t nn_idx[QEIL_ARCHIVE_MAX + 1], nn_tmp[QEIL_ARCHIVE_MAX + 1];
} pgsam_state;

/* Draw weights uniformly from the simplex (Dirichlet(1,1,1): normalised
 * exponentials). 1 − U keeps the logarithm finite. */
static void draw_weights(pgsam_state *s)
{
    double sum = 0.0;
    for (int j = 0; j < QEIL_NOBJ; j++) {
        s->w[j] = -log(1.0 - qeil_rng_uniform(&s->rng));
        sum += s->w[j];
    }
    for (int j = 0; j < QEIL_NOBJ; j++) s->w[j] = sum > 0 ? s->w[j] / sum : 1.0 / QEIL_NOBJ;
}

static void update_range(pgsam_state *s, const double f[QEIL_NOBJ])
{
    for (int j = 0; j < QEIL_NOBJ; j++) {
        if (!s->have_range || f[j] < s->fmin[j]) s->fmin[j] = f[j];
        if (!s->have_range || f[j] > s->fmax[j]) s->fmax[j] = f[j];
    }
    s->have_range = 1;
}

/* Scale of objective j: the range seen so far; before two distinct values
 * were seen, the magnitude of the value (or 1 for an objective stuck at 0). */
static double obj_scale(const pgsam_state *s, int j)
{
    double r = s->fmax[j] - s->fmin[j];
    if (r > 0.0) return r;
    double m = fabs(s->fmax[j]);
    return m > 0.0 ? m : 1.0;
}

/* Augmented weighted Tchebycheff distance to the ideal point seen so far,
 * in normalised units. */
static double scalarise(const pgsam_state *s, const double f[QEIL_NOBJ])
{
    double mx = 0.0, sum = 0.0;
    for (int j = 0; j < QEIL_NOBJ; j++) {
        double t = s->w[j] * (f[j] - s->fmin[j]) / obj_scale(s, j);
        if (t > mx) mx = t;
        sum += t;
    }
    return mx + TCH_RHO * sum;
}

/* Violation of an infeasible plan, so the feasibility-first phase has a
 * gradient to follow: every work-unit placement and transfer that breaks
 * the health, dtype or link constraint (qeil_eval.n_violations: moving one
 * block off a unit without its type lowers it by one), plus one per
 * memory or thermal class and how far memory and temperature are past
 * their limits (relative). */
static double violation(const qeil_plan_job *job)
{
    const qeil_eval *ev = job->ev;
    double v = (double)ev->n_violations;
    if (ev->infeas & QEIL_INFEAS_MEMORY) v += 1.0;
    if (ev->infeas & QEIL_INFEAS_THERMAL) v += 1.0;
    if (!ev->infeas) v += 1.0; /* feasible by bits but non-finite objectives */
    for (int p = 0; p < job->pf->n_pools; p++) {
        double over = ev->pool_rho[p] - job->pf->rho_max;
        if (over > 0.0) v += isfinite(over) ? over : 1e3;
    }
    for (int d = 0; d < job->pf->n_units; d++) {
        double lim = job->pp->energy.throttle_frac * job->pf->units[d].t_max_C;
        double over = ev->dev_temp_C[d] - lim;
        if (over > 0.0 && lim > 0.0) v += isfinite(over) ? over / lim : 1e3;
    }
    return v;
}

/* ---- move generators: each returns 1 when it changed s->cand ---- */

static uint8_t *phase_units(qeil_assignment *a, int phase)
{
    return phase ? a->dc_unit : a->pf_unit;
}

/* A healthy unit other than `cur` (uniform); `cur` itself when none. */
static uint8_t other_unit(pgsam_state *s, uint8_t cur)
{
    const qeil_plan_job *job = s->job;
    int in = 0;
    for (int i = 0; i < job->n_cand; i++)
        if (job->cand[i] == cur) in = 1;
    int n_other = job->n_cand - in;
    if (n_other <= 0) return cur;
    uint64_t k = qeil_rng_below(&s->rng, (uint64_t)n_other);
    for (int i = 0; i < job->n_cand; i++) {
        if (job->cand[i] == cur) continue;
        if (k-- == 0) return job->cand[i];
    }
    return cur;
}

static int mv_one(pgsam_state *s, int phase)
{
    uint8_t *ua = phase_units(&s->cand, phase);
    uint32_t w = (uint32_t)qeil_rng_below(&s->rng, s->n);
    uint8_t d = other_unit(s, ua[w]);
    if (d == ua[w]) return 0;
    ua[w] = d;
    return 1;
}

/* Step length of a boundary move: 1, 2, 4, ... with probability 1/2, 1/4,
 * ...: mostly fine steps, occasionally a long jump across many blocks. */
static uint32_t boundary_step(pgsam_state *s)
{
    uint32_t step = 1;
    while (step < s->n && qeil_rng_uniform(&s->rng) < 0.5) step *= 2;
    return step;
}

static int mv_boundary(pgsam_state *s)
{
    if (s->n < 2) return 0;
    int phase = (int)qeil_rng_below(&s->rng, 2);
    uint8_t *ua = phase_units(&s->cand, phase);
    uint32_t nb = 0;
    for (uint32_t i = 1; i < s->n; i++)
        if (ua[i] != ua[i - 1]) s->scratch[nb++] = i;
    s->last_phase = phase;
    s->last_momentum = 0;
    if (nb == 0) {
        /* No boundary yet: create one (split head or tail off to another unit). */
        uint32_t b = 1 + (uint32_t)qeil_rng_below(&s->rng, s->n - 1);
        uint8_t d = other_unit(s, ua[0]);
        if (d == ua[0]) return 0;
        int tail = qeil_rng_uniform(&s->rng) < 0.5;
        for (uint32_t i = tail ? b : 0; i < (tail ? s->n : b); i++) ua[i] = d;
        s->last_pos = (int)b;
        s->last_dir = 0; /* a split carries no direction */
        return 1;
    }
    uint32_t b;
    int dir;
    if (s->dir_has[phase] && qeil_rng_uniform(&s->rng) < P_DIRECTIONAL) {
        /* keep pushing the boundary that moved last, the same way */
        b = s->scratch[0];
        uint32_t best = UINT32_MAX;
        for (uint32_t k = 0; k < nb; k++) {
            uint32_t dist = s->scratch[k] > (uint32_t)s->dir_pos[phase]
                                ? s->scratch[k] - (uint32_t)s->dir_pos[phase]
                                : (uint32_t)s->dir_pos[phase] - s->scratch[k];
            if (dist < best) {
                best = dist;
                b = s->scratch[k];
            }
        }
        dir = s->dir_dir[phase];
        s->last_momentum = 1;
    } else {
        b = s->scratch[qeil_rng_below(&s->rng, nb)];
        dir = qeil_rng_uniform(&s->rng) < 0.5 ? -1 : 1;
    }
    uint32_t step = boundary_step(s);
    if (dir > 0) {
        uint32_t end = b + step < s->n ? b + step : s->n;
        for (uint32_t i = b; i < end; i++) ua[i] = ua[b - 1];
        s->last_pos = (int)end;
    } else {
        uint32_t start = b > step ? b - step : 0;
        for (uint32_t i = start; i < b; i++) ua[i] = ua[b];
        s->last_pos = (int)start;
    }
    s->last_dir = dir;
    return 1;
}

static int mv_segment(pgsam_state *s)
{
    int phase = (int)qeil_rng_below(&s->rng, 2);
    uint8_t *ua = phase_units(&s->cand, phase);
    /* segment starts; scratch[ns] = n closes the last one */
    uint32_t ns = 0;
    for (uint32_t i = 0; i < s->n; i++)
        if (i == 0 || ua[i] != ua[i - 1]) s->scratch[ns++] = i;
    s->scratch[ns] = s->n;
    uint32_t k = (uint32_t)qeil_rng_below(&s->rng, ns);
    uint32_t l = s->scratch[k], r = s->scratch[k + 1];
    uint8_t du = ua[l];
    if (qeil_rng_uniform(&s->rng) < 0.5) {
        /* swap with another segment on a different unit */
        uint32_t no = 0;
        for (uint32_t j = 0; j < ns; j++)
            if (ua[s->scratch[j]] != du) s->scratch2[no++] = j;
        if (no > 0) {
            uint32_t j = s->scratch2[qeil_rng_below(&s->rng, no)];
            uint32_t l2 = s->scratch[j], r2 = s->scratch[j + 1];
            uint8_t d2 = ua[l2];
            for (uint32_t i = l; i < r; i++) ua[i] = d2;
            for (uint32_t i = l2; i < r2; i++) ua[i] = du;
            return 1;
        }
    }
    uint8_t d = other_unit(s, du);
    if (d == du) return 0;
    for (uint32_t i = l; i < r; i++) ua[i] = d;
    return 1;
}

static int mv_dvfs(pgsam_state *s)
{
    const qeil_platform *pf = s->job->pf;
    int used[QEIL_MAX_UNITS] = {0};
    for (uint32_t w = 0; w < s->n; w++) {
        used[s->cand.pf_unit[w]] = 1;
        used[s->cand.dc_unit[w]] = 1;
    }
    int list[QEIL_MAX_UNITS], nl = 0;
    for (int d = 0; d < s->U; d++)
        if (used[d] && pf->units[d].n_dvfs > 1) list[nl++] = d;
    if (nl == 0) /* no used unit has a choice: an unused one may matter for idle power */
        for (int d = 0; d < s->U; d++)
            if (pf->units[d].n_dvfs > 1) list[nl++] = d;
    if (nl == 0) return 0;
    int d = list[qeil_rng_below(&s->rng, (uint64_t)nl)];
    int nd = pf->units[d].n_dvfs, k = s->cand.dvfs[d], k2;
    if (qeil_rng_uniform(&s->rng) < 0.25) {
        k2 = (int)qeil_rng_below(&s->rng, (uint64_t)(nd - 1));
        if (k2 >= k) k2++;
    } else {
        k2 = k + (qeil_rng_uniform(&s->rng) < 0.5 ? -1 : 1);
        if (k2 < 0) k2 = 1;
        if (k2 >= nd) k2 = nd - 2;
    }
    s->cand.dvfs[d] = (uint8_t)k2;
    return 1;
}

static int mv_batch(pgsam_state *s)
{
    int S = (int)s->job->wl->samples, b = s->cand.batch, b2;
    if (S < 2) return 0;
    switch (qeil_rng_below(&s->rng, 3)) {
    case 0: /* neighbour */
        b2 = b + (qeil_rng_uniform(&s->rng) < 0.5 ? -1 : 1);
        if (b2 < 1) b2 = 2;
        if (b2 > S) b2 = S - 1;
        break;
    case 1: /* double or halve: batch effects are roughly multiplicative */
        b2 = qeil_rng_uniform(&s->rng) < 0.5 ? b / 2 : b * 2;
        if (b2 < 1) b2 = 1;
        if (b2 > S) b2 = S;
        if (b2 == b) b2 = b > 1 ? b - 1 : b + 1;
        break;
    default: /* anywhere */
        b2 = 1 + (int)qeil_rng_below(&s->rng, (uint64_t)(S - 1));
        if (b2 >= b) b2++;
        break;
    }
    s->cand.batch = (uint16_t)b2;
    return 1;
}

static int mv_sync(pgsam_state *s)
{
    int src_phase = (int)qeil_rng_below(&s->rng, 2);
    uint8_t *src = phase_units(&s->cand, src_phase), *dst = phase_units(&s->cand, !src_phase);
    if (memcmp(src, dst, s->n) == 0) return 0;
    uint32_t ns = 0;
    for (uint32_t i = 0; i < s->n; i++)
        if (i == 0 || src[i] != src[i - 1]) s->scratch[ns++] = i;
    s->scratch[ns] = s->n;
    uint32_t k = (uint32_t)qeil_rng_below(&s->rng, ns);
    uint32_t l = s->scratch[k], r = s->scratch[k + 1];
    if (memcmp(src + l, dst + l, r - l) == 0) {
        l = 0; /* that segment already agrees: align the whole phase */
        r = s->n;
    }
    memcpy(dst + l, src + l, r - l);
    return 1;
}

static int apply_move(pgsam_state *s, int type)
{
    switch (type) {
    case MV_PF_ONE: return mv_one(s, 0);
    case MV_DC_ONE: return mv_one(s, 1);
    case MV_BOUNDARY: return mv_boundary(s);
    case MV_SEGMENT: return mv_segment(s);
    case MV_DVFS: return mv_dvfs(s);
    case MV_BATCH: return mv_batch(s);
    case MV_SYNC: return mv_sync(s);
    default: return 0;
    }
}

/* Momentum-biased choice: p_k = floor + (1 − K·floor) · score_k / Σ score. */
static int choose_move(pgsam_state *s)
{
    double floor_p = MV_FLOOR_MASS / s->n_applicable, sum = 0.0;
    for (int k = 0; k < MV_COUNT; k++)
        if (s->applicable[k]) sum += s->score[k];
    double u = qeil_rng_uniform(&s->rng), acc = 0.0;
    int last = -1;
    for (int k = 0; k < MV_COUNT; k++) {
        if (!s->applicable[k]) continue;
        double share = sum > 0.0 ? s->score[k] / sum : 1.0 / s->n_applicable;
        acc += floor_p + (1.0 - MV_FLOOR_MASS) * share;
        last = k;
        if (u < acc) return k;
    }
    return last; /* rounding left u just above the total */
}

/* Restart from the member bordering the largest gap: the one whose nearest
 * neighbour (normalised by the archive's range) is farthest, picked at
 * random among the RESTART_TOPK sparsest. */
static void restart(pgsam_state *s)
{
    qeil_archive *ar = s->ar;
    draw_weights(s);
    s->dir_has[0] = s->dir_has[1] = 0;
    if (ar->n == 0) return; /* keep walking the infeasible region */
    double sc[QEIL_NOBJ];
    for (int j = 0; j < QEIL_NOBJ; j++) {
        double mn = ar->m[0].f[j], mx = mn;
        for (size_t i = 1; i < ar->n; i++) {
            mn = fmin(mn, ar->m[i].f[j]);
            mx = fmax(mx, ar->m[i].f[j]);
        }
        sc[j] = mx > mn ? mx - mn : 1.0;
    }
    for (size_t i = 0; i < ar->n; i++) {
        double best = INFINITY;
        for (size_t k = 0; k < ar->n; k++) {
            if (k == i) continue;
            double d2 = 0.0;
            for (int j = 0; j < QEIL_NOBJ; j++) {
                double t = (ar->m[i].f[j] - ar->m[k].f[j]) / sc[j];
                d2 += t * t;
            }
            if (d2 < best) best = d2;
        }
        s->nn[i] = -best; /* sort ascending = sparsest first */
        s->nn_idx[i] = i;
    }
    qeil_sort_idx(s->nn_idx, s->nn_tmp, ar->n, s->nn);
    size_t top = ar->n < RESTART_TOPK ? ar->n : RESTART_TOPK;
    size_t pick = s->nn_idx[qeil_rng_below(&s->rng, top)];
    s->cur = ar->m[pick].a;
    memcpy(s->fcur, ar->m[pick].f, sizeof s->fcur);
    s->cur_feasible = 1;
}

/* Thermal repair. A plan whose only violation is temperature (a junction
 * over the throttle limit, or leakage runaway) is usually one DVFS step away
 * from feasible, but reaching it takes two coordinated changes (move the
 * work, slow the unit) that single moves would have to make through an
 * infeasible plan. So: lower every over-limit unit by one DVFS point and
 * re-evaluate, up to REPAIR_STEPS times. Every re-evaluation counts against
 * the budget. Returns the last evaluation's result (1 feasible, 0 not, -1
 * malformed); *a is left repaired (or as far as it got). */
#define REPAIR_STEPS 3
static int thermal_repair(pgsam_state *s, qeil_assignment *a, double f[QEIL_NOBJ], int r)
{
    qeil_plan_job *job = s->job;
    for (int step = 0; step < REPAIR_STEPS && r == 0 && job->evals < job->pp->iters; step++) {
        const qeil_eval *ev = job->ev;
        if (ev->infeas != QEIL_INFEAS_THERMAL) break; /* other causes: not ours to fix */
        int lowered = 0;
        for (int d = 0; d < s->U; d++) {
            double lim = job->pp->energy.throttle_frac * job->pf->units[d].t_max_C;
            if (ev->powered[d] && !(ev->dev_temp_C[d] <= lim) && a->dvfs[d] > 0) {
                a->dvfs[d]--;
                lowered = 1;
            }
        }
        if (!lowered) break;
        r = qeil_plan_eval(job, a, f);
    }
    return r;
}

static int seed_plans(const qeil_plan_job *job, qeil_assignment *seeds)
{
    int ns = 0;
    if (job->pp->n_start > 0) { /* warm start: the caller's plans instead */
        for (uint32_t i = 0; i < job->pp->n_start; i++) seeds[ns++] = job->pp->start[i];
        return ns;
    }
    for (int i = 0; i < job->n_cand; i++)
        qeil_plan_fill_uniform(&seeds[ns++], job->pf, job->wl, job->cand[i], (int)job->wl->samples);
    qeil_plan_fill_greedy(&seeds[ns++], job);
    if (job->n_cand > 1) qeil_plan_fill_memsplit(&seeds[ns++], job);
    return ns;
}

qeil_status qeil_plan_run_pgsam(qeil_plan_job *job, qeil_archive *ar)
{
    qeil_ctx *ctx = job->ctx;
    const qeil_plan_params *pp = job->pp;
    pgsam_state *s = qeil_calloc(ctx, 1, sizeof *s);
    if (!s) return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "pgsam: out of memory for the search state");
    qeil_status st = QEIL_OK;
    s->job = job;
    s->ar = ar;
    s->n = job->wl->n_units;
    s->U = job->pf->n_units;
    s->scratch = qeil_calloc(ctx, (size_t)s->n + 1, sizeof *s->scratch);
    s->scratch2 = qeil_calloc(ctx, (size_t)s->n + 1, sizeof *s->scratch2);
    const size_t max_seeds = pp->n_start > MAX_SEEDS ? pp->n_start : MAX_SEEDS;
    qeil_assignment *seeds = qeil_calloc(ctx, max_seeds, sizeof *seeds);
    double (*fseed)[QEIL_NOBJ] = qeil_calloc(ctx, max_seeds, sizeof *fseed);
    double *vseed = qeil_calloc(ctx, max_seeds, sizeof *vseed);
    int *feas_seed = qeil_calloc(ctx, max_seeds, sizeof *feas_seed);
    if (!s->scratch || !s->scratch2 || !seeds || !fseed || !vseed || !feas_seed) {
        st = qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "pgsam: out of memory for the search state");
        goto done;
    }
    qeil_rng_seed(&s->rng, pp->seed);

    /* Which move types can change anything on this instance. */
    int any_dvfs = 0;
    for (int d = 0; d < s->U; d++)
        if (job->pf->units[d].n_dvfs > 1) any_dvfs = 1;
    int multi = job->n_cand > 1;
    s->applicable[MV_PF_ONE] = s->applicable[MV_DC_ONE] = s->applicable[MV_SEGMENT] = multi;
    s->applicable[MV_SYNC] = multi;
    s->applicable[MV_BOUNDARY] = multi && s->n > 1;
    s->applicable[MV_DVFS] = any_dvfs;
    s->applicable[MV_BATCH] = job->wl->samples > 1;
    for (int k = 0; k < MV_COUNT; k++) {
        s->n_applicable += s->applicable[k];
        s->score[k] = 0.5; /* neutral prior: all types equally likely at first */
    }

    /* 1. Seeds. */
    draw_weights(s);
    int ns = seed_plans(job, seeds);
    double best_g = INFINITY, best_v = INFINITY;
    int best_seed = -1, best_feasible = 0;
    int n_done = 0;
    for (int i = 0; i < ns && job->evals < pp->iters; i++, n_done++) {
        int r = qeil_plan_eval(job, &seeds[i], fseed[i]);
        if (r == 0) r = thermal_repair(s, &seeds[i], fseed[i], r);
        if (r < 0) {
            st = qeil_ctx_fail(ctx, QEIL_ERR_INTERNAL, "pgsam: energy model rejected seed plan %d", i);
            goto done;
        }
        feas_seed[i] = r;
        vseed[i] = r ? 0.0 : violation(job);
        if (r) {
            update_range(s, fseed[i]);
            if (qeil_archive_insert(ar, fseed[i], &seeds[i]) < 0) {
                st = qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "pgsam: archive insertion failed");
                goto done;
            }
        }
    }
    for (int i = 0; i < n_done; i++) {
        if (feas_seed[i]) {
            double g = scalarise(s, fseed[i]);
            if (!best_feasible || g < best_g) {
                best_g = g;
                best_seed = i;
                best_feasible = 1;
            }
        } else if (!best_feasible && vseed[i] < best_v) {
            best_v = vseed[i];
            best_seed = i;
        }
    }
    if (best_seed < 0) goto done; /* budget smaller than one evaluation: cannot happen (iters >= 1) */
    s->cur = seeds[best_seed];
    memcpy(s->fcur, fseed[best_seed], sizeof s->fcur);
    s->cur_feasible = best_feasible;
    s->vcur = best_feasible ? 0.0 : vseed[best_seed];
    if (s->n_applicable == 0) goto done; /* a single plan exists */

    /* 2. Anneal. T = t0 · (t_end/t0)^(e / (L−1)) where e counts the
     * evaluations since the seeds and L = those left for the loop (repairs
     * spend evaluations too, so the schedule runs on evaluations). */
    const uint64_t e0 = job->evals, left = pp->iters - job->evals;
    const double log_ratio = log(pp->t_end / pp->t0);
    double T = pp->t0;
    uint32_t stagnant = 0;
    double fc[QEIL_NOBJ];
    const double beta = pp->momentum;
    /* 3. The last POLISH_FRAC of the budget is Pareto local search: each
     * iteration starts from a random archive member (see docs/planner.md). */
    const uint64_t polish_start = pp->iters - (uint64_t)(POLISH_FRAC * (double)left);
    while (job->evals < pp->iters) {
        int type = -1, changed = 0;
        const int polish = job->evals >= polish_start && ar->n > 0;
        if (polish) {
            size_t m = (size_t)qeil_rng_below(&s->rng, ar->n);
            s->cur = ar->m[m].a;
            memcpy(s->fcur, ar->m[m].f, sizeof s->fcur);
            s->cur_feasible = 1;
        }
        for (int tries = 0; tries < 8 && !changed; tries++) {
            s->cand = s->cur;
            type = choose_move(s);
            changed = apply_move(s, type);
            /* a type that cannot change this plan (SYNC on identical phases)
             * counts as a failure, so its momentum fades */
            if (!changed) s->score[type] *= beta;
        }
        /* Fallback: the first type, in fixed order, that changes the plan.
         * PF_ONE (>= 2 healthy units), DVFS (some unit with >= 2 points) and
         * BATCH (k >= 2) always change it when applicable, so this ends. */
        for (int k = 0; k < MV_COUNT && !changed; k++) {
            if (!s->applicable[k]) continue;
            s->cand = s->cur;
            type = k;
            changed = apply_move(s, k);
        }
        if (!changed) break; /* unreachable: n_applicable > 0 */

        int feas = qeil_plan_eval(job, &s->cand, fc);
        /* not after a DVFS move: repairing it would mostly undo it */
        if (feas == 0 && type != MV_DVFS) feas = thermal_repair(s, &s->cand, fc, feas);
        if (feas < 0) {
            st = qeil_ctx_fail(ctx, QEIL_ERR_INTERNAL, "pgsam: energy model rejected a move of type %d", type);
            goto done;
        }
        int accept = 0, success = 0, entered = 0;
        if (feas) {
            update_range(s, fc);
            entered = qeil_archive_insert(ar, fc, &s->cand) > 0;
            if (!s->cur_feasible) {
                accept = success = 1; /* first feasible plan of this walk */
            } else {
                double delta = scalarise(s, fc) - scalarise(s, s->fcur);
                accept = entered || delta <= 0.0 || qeil_rng_uniform(&s->rng) < exp(-delta / T);
                success = accept && (entered || delta < 0.0);
            }
        } else if (!s->cur_feasible) {
            /* feasibility-first walk: follow decreasing violation */
            double v = violation(job), dv = v - s->vcur;
            accept = dv <= 0.0 || qeil_rng_uniform(&s->rng) < exp(-dv / T);
            success = accept && dv < 0.0;
            if (accept) s->vcur = v;
        } /* else: infeasible candidates are rejected once the walk is feasible */

        s->score[type] = beta * s->score[type] + (1.0 - beta) * (double)success;
        if (type == MV_BOUNDARY && s->last_dir != 0) {
            int ph = s->last_phase;
            if (success) {
                s->dir_has[ph] = 1;
                s->dir_pos[ph] = s->last_pos;
                s->dir_dir[ph] = s->last_dir;
            } else if (s->last_momentum) {
                s->dir_has[ph] = 0; /* that direction stopped paying */
            }
        }
        if (accept) {
            s->cur = s->cand;
            memcpy(s->fcur, fc, sizeof s->fcur);
            if (feas) s->cur_feasible = 1;
        }
        T = left > 1 ? pp->t0 * exp(log_ratio * (double)(job->evals - e0) / (double)(left - 1)) : pp->t_end;
        if (T < pp->t_end) T = pp->t_end;
        if (entered || polish) {
            stagnant = 0;
        } else if (++stagnant >= pp->restart_every) {
            stagnant = 0;
            restart(s);
        }
    }

done:
    qeil_free(ctx, seeds);
    qeil_free(ctx, fseed);
    qeil_free(ctx, vseed);
    qeil_free(ctx, feas_seed);
    if (s) {
        qeil_free(ctx, s->scratch);
        qeil_free(ctx, s->scratch2);
        qeil_free(ctx, s);
    }
    return st;
}

/* ------------------------------------------------------------------------ */
/* Entry point                                                               */
/* ------------------------------------------------------------------------ */

static qeil_status check_inputs(qeil_ctx *ctx, const qeil_platform *pf, const qeil_workload *wl,
                                const qeil_plan_params *pp)
{
    if ((unsigned)pp->method > (unsigned)QEIL_METHOD_RANDOM)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                             "method: %d is not a planner method (allowed 0..4: pgsam, greedy, "
                             "standard, exhaustive, random)", (int)pp->method);
    if (pp->iters < 1 || pp->iters > QEIL_MAX_ITERS)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "iters: %u is out of range (allowed 1..%u)",
                             (unsigned)pp->iters, (unsigned)QEIL_MAX_ITERS);
    if (pp->archive_max < 2 || pp->archive_max > QEIL_ARCHIVE_MAX)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "archive_max: %u is out of range (allowed 2..%d)",
                             (unsigned)pp->archive_max, QEIL_ARCHIVE_MAX);
    if (!(pp->t0 > 0.0) || !isfinite(pp->t0))
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "t0: %g is out of range (allowed > 0, finite)", pp->t0);
    if (!(pp->t_end > 0.0) || !(pp->t_end <= pp->t0))
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "t_end: %g is out of range (allowed (0, t0 = %g])",
                             pp->t_end, pp->t0);
    if (!(pp->momentum >= 0.0 && pp->momentum < 1.0))
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "momentum: %g is out of range (allowed [0, 1))",
                             pp->momentum);
    if (pp->restart_every < 1)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "restart_every: %u is out of range (allowed 1..%u)",
                             (unsigned)pp->restart_every, (unsigned)UINT32_MAX);
    if (!(pp->energy.cpq_penalty_coef >= 0.0) || !isfinite(pp->energy.cpq_penalty_coef))
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                             "energy.cpq_penalty_coef: %g is out of range (allowed >= 0, finite)",
                             pp->energy.cpq_penalty_coef);
    if (!(pp->energy.throttle_frac > 0.0 && pp->energy.throttle_frac <= 1.0))
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "energy.throttle_frac: %g is out of range (allowed (0, 1])",
                             pp->energy.throttle_frac);
    /* Structure the search indexes by (the device module validates the
     * physics when a platform is loaded). */
    if (pf->n_units < 1 || pf->n_units > QEIL_MAX_UNITS)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "platform.n_units: %d is out of range (allowed 1..%d)",
                             pf->n_units, QEIL_MAX_UNITS);
    if (pf->n_pools < 1 || pf->n_pools > QEIL_MAX_POOLS)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "platform.n_pools: %d is out of range (allowed 1..%d)",
                             pf->n_pools, QEIL_MAX_POOLS);
    for (int d = 0; d < pf->n_units; d++) {
        const qeil_unit *u = &pf->units[d];
        if (u->n_dvfs < 1 || u->n_dvfs > QEIL_MAX_DVFS)
            return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "units[%d].n_dvfs: %d is out of range (allowed 1..%d)",
                                 d, u->n_dvfs, QEIL_MAX_DVFS);
        if (u->dvfs_nominal < 0 || u->dvfs_nominal >= u->n_dvfs)
            return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                                 "units[%d].dvfs_nominal: %d is out of range (allowed 0..%d)", d,
                                 u->dvfs_nominal, u->n_dvfs - 1);
        if (u->pool < 0 || u->pool >= pf->n_pools)
            return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "units[%d].pool: %d is out of range (allowed 0..%d)",
                                 d, u->pool, pf->n_pools - 1);
    }
    /* at least the embedding and the head */
    if (wl->n_units < 2 || wl->n_units > QEIL_MAX_WUNITS)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "workload.n_units: %u is out of range (allowed 2..%d)",
                             (unsigned)wl->n_units, QEIL_MAX_WUNITS);
    if (wl->samples < 1 || wl->samples > QEIL_MAX_SAMPLES)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "workload.samples: %u is out of range (allowed 1..%d)",
                             (unsigned)wl->samples, QEIL_MAX_SAMPLES);
    for (uint32_t w = 0; w < wl->n_units; w++)
        if ((unsigned)wl->dtype[w] >= (unsigned)QEIL_DT_COUNT)
            return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "workload.dtype[%u]: %d is out of range (allowed 0..%d)",
                                 (unsigned)w, (int)wl->dtype[w], QEIL_DT_COUNT - 1);
    if (pp->n_start > QEIL_PLAN_MAX_START || (pp->n_start > 0 && !pp->start))
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "n_start: %u %s (allowed 0..%d, with start plans)",
                             (unsigned)pp->n_start, pp->start ? "is out of range" : "without start plans",
                             QEIL_PLAN_MAX_START);
    for (uint32_t i = 0; i < pp->n_start; i++) {
        const qeil_assignment *a = &pp->start[i];
        for (int d = 0; d < pf->n_units; d++)
            if (a->dvfs[d] >= pf->units[d].n_dvfs)
                return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                                     "start[%u].dvfs[%d]: %u is out of range (allowed 0..%d)", (unsigned)i,
                                     d, (unsigned)a->dvfs[d], pf->units[d].n_dvfs - 1);
        for (uint32_t w = 0; w < wl->n_units; w++)
            if (a->pf_unit[w] >= pf->n_units || a->dc_unit[w] >= pf->n_units)
                return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                                     "start[%u].%s_unit[%u]: %u is out of range (allowed 0..%d)",
                                     (unsigned)i, a->pf_unit[w] >= pf->n_units ? "pf" : "dc",
                                     (unsigned)w,
                                     (unsigned)(a->pf_unit[w] >= pf->n_units ? a->pf_unit[w] : a->dc_unit[w]),
                                     pf->n_units - 1);
        if (a->batch < 1 || a->batch > wl->samples)
            return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "start[%u].batch: %u is out of range (allowed 1..%u)",
                                 (unsigned)i, (unsigned)a->batch, (unsigned)wl->samples);
    }
    return QEIL_OK;
}

qeil_status qeil_plan_count(qeil_ctx *ctx, const qeil_platform *pf, const qeil_workload *wl,
                            const qeil_plan_params *pp, double *n_plans)
{
    if (!pf || !wl || !pp || !n_plans)
        return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "qeil_plan_count: NULL %s",
                             !pf ? "platform" : !wl ? "workload" : !pp ? "params" : "n_plans");
    qeil_status st = check_inputs(ctx, pf, wl, pp);
    if (st != QEIL_OK) return st;
    qeil_plan_job job;
    memset(&job, 0, sizeof job);
    job.ctx = ctx;
    job.pf = pf;
    job.wl = wl;
    job.pp = pp;
    for (int d = 0; d < pf->n_units; d++)
        if (pp->energy.healthy[d]) job.cand[job.n_cand++] = (uint8_t)d;
    switch (pp->method) {
    case QEIL_METHOD_EXHAUSTIVE: *n_plans = qeil_plan_exhaustive_size(&job); break;
    case QEIL_METHOD_PGSAM:
    case QEIL_METHOD_RANDOM: *n_plans = (double)pp->iters; break;
    default: *n_plans = 1.0; break;
    }
    return QEIL_OK;
}

qeil_status qeil_plan_search(qeil_ctx *ctx, const qeil_platform *pf, const qeil_workload *wl,
                             const qeil_plan_params *pp, qeil_front **out)
{
    if (out) *out = NULL;
    if (!pf || !wl || !pp || !out)
        return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "qeil_plan_search: NULL %s",
                             !pf ? "platform" : !wl ? "workload" : !pp ? "params" : "out");
    qeil_status st = check_inputs(ctx, pf, wl, pp);
    if (st != QEIL_OK) return st;

    qeil_plan_job job;
    memset(&job, 0, sizeof job);
    job.ctx = ctx;
    job.pf = pf;
    job.wl = wl;
    job.pp = pp;
    for (int d = 0; d < pf->n_units; d++)
        if (pp->energy.healthy[d]) job.cand[job.n_cand++] = (uint8_t)d;
    const char *mname = qeil_plan_method_name(pp->method);
    if (job.n_cand == 0)
        return qeil_ctx_fail(ctx, QEIL_ERR_INFEASIBLE,
                             "%s: no feasible plan: every compute unit is marked failed "
                             "(energy.healthy), binding constraint: health", mname);
    job.ev = qeil_malloc(ctx, sizeof *job.ev);
    if (!job.ev) return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "%s: out of memory", mname);

    qeil_archive ar;
    memset(&ar, 0, sizeof ar);
    qeil_archive_entry single;
    switch (pp->method) {
    case QEIL_METHOD_STANDARD:
    case QEIL_METHOD_GREEDY: {
        int ok = pp->method == QEIL_METHOD_STANDARD ? qeil_plan_run_standard(&job, &single.a)
                                                    : qeil_plan_run_greedy(&job, &single.a);
        if (ok < 0) {
            st = qeil_ctx_fail(ctx, QEIL_ERR_INTERNAL, "%s: energy model rejected the plan", mname);
        } else if (ok == 0) {
            st = qeil_plan_fail_infeasible(&job, mname);
        } else {
            single.f[0] = single.f[1] = single.f[2] = 0.0; /* re-evaluated by qeil_front_build */
            st = qeil_front_build(&job, &single, 1, out);
        }
        break;
    }
    case QEIL_METHOD_PGSAM:
    case QEIL_METHOD_RANDOM:
    case QEIL_METHOD_EXHAUSTIVE:
        /* The exhaustive ground truth keeps every non-dominated plan. */
        st = qeil_archive_init(ctx, &ar, pp->method == QEIL_METHOD_EXHAUSTIVE ? 0 : pp->archive_max);
        if (st != QEIL_OK) break;
        st = pp->method == QEIL_METHOD_PGSAM    ? qeil_plan_run_pgsam(&job, &ar)
             : pp->method == QEIL_METHOD_RANDOM ? qeil_plan_run_random(&job, &ar)
                                                : qeil_plan_run_exhaustive(&job, &ar);
        if (st != QEIL_OK) break;
        if (ar.n == 0) st = qeil_plan_fail_infeasible(&job, mname);
        else st = qeil_front_build(&job, ar.m, ar.n, out);
        break;
    }
    qeil_archive_free(&ar);
    qeil_free(ctx, job.ev);
    return st;
}
