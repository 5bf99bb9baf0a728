/* guard.c — the thermal guard (qeil/guard.h, docs/guard.md): an online fit
 * of each unit's RC model, a forward prediction, and the act-before-the-
 * crossing controller. Pure arithmetic on the caller's readings: the
 * caller owns sensors, actuators and re-planning. */
#include <math.h>
#include <string.h>

#include "qeil/energy.h"
#include "qeil/guard.h"

/* Bounds a fit must meet to replace the prior: a fitted R or C more than
 * this factor away from the profile's is a fit to noise (a step too short,
 * a constant power), not a property of the package. */
#define FIT_MAX_FACTOR 20.0
#define FIT_T_AMB_MIN_C (-50.0)

typedef struct {
    /* exponentially forgotten normal equations of the regression
     * y = a P − b T̄ + c, x = (P, −T̄, 1) */
    double S[3][3], v[3], w_sum;
    uint32_t n;
    double th0[3]; /* the prior (a, b, c) from the profile */
    /* the current model */
    double r, c, t_amb;
    int fitted;
    /* the last reading */
    double t, temp, power;
    int have;
    /* control state */
    int dvfs, top;       /* set point now; the plan's point (restore target) */
    int dvfs_ok;         /* 0 once the DVFS actuator refused */
    int migrated;        /* work moved off by a MIGRATE */
    double migrate_t;    /* when (or when it was last refused) */
    double p_other_at[QEIL_MAX_DVFS]; /* non-leakage power last seen at each point */
    double restore_p;    /* non-leakage power at the top point before migrating */
    int restore_dvfs;
    double settle_t;     /* decisions wait for a reading after this time */
    double cool_since;   /* NAN when not cool */
} unit_state;

struct qeil_guard {
    qeil_ctx *ctx;
    qeil_guard_params p;
    qeil_platform pf;
    unit_state u[QEIL_MAX_UNITS];
    qeil_guard_action log[QEIL_GUARD_LOG_MAX];
    size_t n_log;
    uint64_t n_total;
};

qeil_guard_params qeil_guard_default_params(void)
{
    qeil_guard_params p;
    p.limit_frac = 0.85;
    p.horizon_s = 30;
    p.margin_K = 1;
    p.hyst_K = 5;
    p.hold_s = 20;
    p.min_period_s = 0.25;
    p.forget = 0.995;
    p.prior_weight = 1e-3;
    p.min_samples = 8;
    p.prior_weight_c = 1.0;
    return p;
}

const char *qeil_guard_action_name(qeil_guard_action_kind k)
{
    switch (k) {
    case QEIL_GUARD_DVFS_DOWN: return "dvfs-down";
    case QEIL_GUARD_DVFS_UP: return "dvfs-up";
    case QEIL_GUARD_MIGRATE: return "migrate";
    case QEIL_GUARD_RESTORE_PLAN: return "restore-plan";
    }
    return "?";
}

static qeil_status check_range(qeil_ctx *ctx, const char *field, double v, double lo, int lo_open,
                               double hi)
{
    int ok = lo_open ? v > lo : v >= lo;
    if (ok && v <= hi) return QEIL_OK;
    return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "guard %s: %g is out of range (want %c%g, %g])",
                         field, v, lo_open ? '(' : '[', lo, hi);
}

static qeil_status validate(qeil_ctx *ctx, const qeil_guard_params *p)
{
    qeil_status st;
    if ((st = check_range(ctx, "limit_frac", p->limit_frac, 0, 1, 1)) ||
        (st = check_range(ctx, "horizon_s", p->horizon_s, 0, 1, 3600)) ||
        (st = check_range(ctx, "margin_K", p->margin_K, 0, 0, 50)) ||
        (st = check_range(ctx, "hyst_K", p->hyst_K, 0, 0, 50)) ||
        (st = check_range(ctx, "hold_s", p->hold_s, 0, 0, 3600)) ||
        (st = check_range(ctx, "min_period_s", p->min_period_s, 0, 0, 60)) ||
        (st = check_range(ctx, "forget", p->forget, 0, 1, 1)) ||
        (st = check_range(ctx, "prior_weight", p->prior_weight, 0, 1, 1e6)) ||
        (st = check_range(ctx, "min_samples", p->min_samples, 3, 0, 1e6)) ||
        (st = check_range(ctx, "prior_weight_c", p->prior_weight_c, 0, 1, 1e6)))
        return st;
    return QEIL_OK;
}

static void unit_reset_fit(unit_state *s, const qeil_unit *u)
{
    memset(s->S, 0, sizeof s->S);
    memset(s->v, 0, sizeof s->v);
    s->w_sum = 0;
    s->n = 0;
    double rc = u->r_th_KpW * u->c_th_JpK;
    s->th0[0] = 1.0 / u->c_th_JpK;
    s->th0[1] = 1.0 / rc;
    s->th0[2] = u->t_amb_C / rc;
    s->r = u->r_th_KpW;
    s->c = u->c_th_JpK;
    s->t_amb = u->t_amb_C;
    s->fitted = 0;
}

qeil_status qeil_guard_create(qeil_ctx *ctx, const qeil_guard_params *p, const qeil_platform *pf,
                              const uint8_t *dvfs, qeil_guard **out)
{
    if (!out || !pf) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "guard: NULL platform or out");
    *out = NULL;
    qeil_guard_params gp = p ? *p : qeil_guard_default_params();
    qeil_status st = validate(ctx, &gp);
    if (st != QEIL_OK) return st;
    if ((st = qeil_platform_validate(ctx, pf)) != QEIL_OK) return st;
    for (int d = 0; dvfs && d < pf->n_units; d++)
        if (dvfs[d] >= pf->units[d].n_dvfs)
            return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                                 "guard dvfs[%d]: %d is out of range (unit %s has points 0..%d)", d,
                                 dvfs[d], pf->units[d].name, pf->units[d].n_dvfs - 1);
    qeil_guard *g = qeil_calloc(ctx, 1, sizeof *g);
    if (!g) return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "guard: out of memory");
    g->ctx = ctx;
    g->p = gp;
    g->pf = *pf;
    for (int d = 0; d < pf->n_units; d++) {
        unit_state *s = &g->u[d];
        unit_reset_fit(s, &pf->units[d]);
        s->temp = s->power = s->t = NAN;
        s->dvfs = s->top = dvfs ? dvfs[d] : pf->units[d].dvfs_nominal;
        s->dvfs_ok = 1;
        s->migrate_t = s->settle_t = s->cool_since = NAN;
        s->restore_p = NAN;
        for (int k = 0; k < QEIL_MAX_DVFS; k++) s->p_other_at[k] = NAN;
    }
    *out = g;
    return QEIL_OK;
}

void qeil_guard_free(qeil_guard *g)
{
    if (g) qeil_free(g->ctx, g);
}

/* ------------------------------------------------------------------------ */
/* The fit                                                                   */
/* ------------------------------------------------------------------------ */

/* Solve the 3×3 system A x = r by Gaussian elimination with partial
 * pivoting. 0 when singular. */
static int solve3(double A[3][3], double r[3], double x[3])
{
    for (int k = 0; k < 3; k++) {
        int piv = k;
        for (int i = k + 1; i < 3; i++)
            if (fabs(A[i][k]) > fabs(A[piv][k])) piv = i;
        if (!(fabs(A[piv][k]) > 0)) return 0;
        if (piv != k) {
            for (int j = 0; j < 3; j++) {
                double t = A[k][j];
                A[k][j] = A[piv][j];
                A[piv][j] = t;
            }
            double t = r[k];
            r[k] = r[piv];
            r[piv] = t;
        }
        for (int i = k + 1; i < 3; i++) {
            double f = A[i][k] / A[k][k];
            for (int j = k; j < 3; j++) A[i][j] -= f * A[k][j];
            r[i] -= f * r[k];
        }
    }
    for (int k = 2; k >= 0; k--) {
        double s = r[k];
        for (int j = k + 1; j < 3; j++) s -= A[k][j] * x[j];
        x[k] = s / A[k][k];
    }
    return isfinite(x[0]) && isfinite(x[1]) && isfinite(x[2]);
}

/* Ridge towards the prior: (S + Λ) θ = v + Λ θ₀ with Λᵢᵢ = wᵢ·Sᵢᵢ (the
 * data's own scale in each coordinate, so the pull is unit-free; w₀ =
 * prior_weight_c on a = 1/C, prior_weight on b and c). When the
 * power has been constant, a (heat per watt) and c (ambient) are not
 * separable — the data fix only a·P + c — and the prior decides the split;
 * the prediction at that power does not depend on it. */
static void refit(const qeil_guard *g, unit_state *s, const qeil_unit *u)
{
    if (s->n < g->p.min_samples) return;
    double A[3][3], r[3], th[3];
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 3; j++) A[i][j] = s->S[i][j];
        double w = i == 0 ? g->p.prior_weight_c : g->p.prior_weight;
        double lam = w * (s->S[i][i] > 0 ? s->S[i][i] : 1.0);
        A[i][i] += lam;
        r[i] = s->v[i] + lam * s->th0[i];
    }
    if (!solve3(A, r, th)) return;
    double a = th[0], b = th[1], c = th[2];
    if (!(a > 0 && b > 0)) return;
    double C = 1.0 / a, R = a / b, t_amb = c / b;
    if (!(R <= u->r_th_KpW * FIT_MAX_FACTOR && R >= u->r_th_KpW / FIT_MAX_FACTOR &&
          C <= u->c_th_JpK * FIT_MAX_FACTOR && C >= u->c_th_JpK / FIT_MAX_FACTOR &&
          t_amb >= FIT_T_AMB_MIN_C && t_amb <= u->t_max_C))
        return;
    s->r = R;
    s->c = C;
    s->t_amb = t_amb;
    s->fitted = 1;
}

/* The leakage the profile predicts at temperature T and point k. */
static double leak_W(const qeil_unit *u, int k, double temp_C)
{
    double l = qeil_leak_power_W(u, k, temp_C);
    return isfinite(l) && l > 0 ? l : 0;
}

int qeil_guard_observe(qeil_guard *g, int ui, double t_s, double temp_C, double power_W)
{
    if (!g || ui < 0 || ui >= g->pf.n_units) return 0;
    if (!isfinite(t_s) || !isfinite(temp_C) || !isfinite(power_W) || power_W < 0) return 0;
    unit_state *s = &g->u[ui];
    const qeil_unit *u = &g->pf.units[ui];
    if (s->have) {
        double dt = t_s - s->t;
        if (!(dt > 0) || dt < g->p.min_period_s) return 0;
        /* trapezoid: second order in dt, and linear in (a, b, c) */
        double x[3] = {power_W, -0.5 * (s->temp + temp_C), 1.0};
        double y = (temp_C - s->temp) / dt;
        double f = g->p.forget;
        for (int i = 0; i < 3; i++) {
            for (int j = 0; j < 3; j++) s->S[i][j] = f * s->S[i][j] + x[i] * x[j];
            s->v[i] = f * s->v[i] + x[i] * y;
        }
        s->w_sum = f * s->w_sum + 1;
        s->n++;
        refit(g, s, u);
    }
    s->have = 1;
    s->t = t_s;
    s->temp = temp_C;
    s->power = power_W;
    double po = power_W - leak_W(u, s->dvfs, temp_C);
    s->p_other_at[s->dvfs] = po > 0 ? po : 0;
    return 1;
}

/* The unit with the fitted thermals. */
static qeil_unit fitted_unit(const qeil_guard *g, int ui)
{
    qeil_unit u = g->pf.units[ui];
    u.r_th_KpW = g->u[ui].r;
    u.c_th_JpK = g->u[ui].c;
    u.t_amb_C = g->u[ui].t_amb;
    return u;
}

/* The non-leakage power behind a reading, and the unit to predict with:
 * a reading below the profile's leakage at that temperature is a unit
 * that is power-gated or whose leakage the profile overstates: it is
 * predicted without leakage, its power held. */
static qeil_unit predict_unit(const qeil_guard *g, int ui, double *p_other)
{
    const unit_state *s = &g->u[ui];
    qeil_unit u = fitted_unit(g, ui);
    double leak = leak_W(&u, s->dvfs, s->temp);
    if (s->power >= leak) {
        *p_other = s->power - leak;
    } else {
        u.p_leak_ref_W = 0;
        *p_other = s->power;
    }
    return u;
}

double qeil_guard_predict_C(const qeil_guard *g, int ui, double horizon_s)
{
    if (!g || ui < 0 || ui >= g->pf.n_units || !g->u[ui].have || !(horizon_s >= 0)) return NAN;
    const unit_state *s = &g->u[ui];
    double po;
    qeil_unit u = predict_unit(g, ui, &po);
    double peak = s->temp;
    qeil_thermal_step(&u, s->dvfs, s->temp, po, horizon_s, &peak);
    return peak > s->temp ? peak : s->temp;
}

/* Steady state of unit ui at point k with non-leakage power p_other;
 * INFINITY on runaway or above T_max. */
static double steady_C(const qeil_guard *g, int ui, int k, double p_other)
{
    qeil_unit u = fitted_unit(g, ui);
    double t, leak;
    if (qeil_thermal_steady(&u, k, p_other, &t, &leak) != QEIL_OK) return INFINITY;
    return t;
}

/* ------------------------------------------------------------------------ */
/* The controller                                                            */
/* ------------------------------------------------------------------------ */

size_t qeil_guard_step(qeil_guard *g, double t_s, qeil_guard_action *out, size_t cap)
{
    if (!g || !out) return 0;
    size_t n = 0;
    for (int d = 0; d < g->pf.n_units && n < cap; d++) {
        unit_state *s = &g->u[d];
        if (!s->have) continue;
        if (isfinite(s->settle_t) && !(s->t > s->settle_t)) continue; /* no reading since */
        const double limit = g->p.limit_frac * g->pf.units[d].t_max_C;
        const double pred = qeil_guard_predict_C(g, d, g->p.horizon_s);
        qeil_guard_action a;
        memset(&a, 0, sizeof a);
        a.t_s = t_s;
        a.unit = d;
        a.temp_C = s->temp;
        a.predicted_C = pred;
        a.from = a.to = s->dvfs;
        int act = 0;
        if (!(pred < limit - g->p.margin_K)) {
            s->cool_since = NAN;
            if (s->dvfs_ok && s->dvfs > 0) {
                a.kind = QEIL_GUARD_DVFS_DOWN;
                a.to = s->dvfs - 1;
                act = 1;
            } else if (!(t_s - s->migrate_t < g->p.hold_s)) { /* NAN: never migrated */
                a.kind = QEIL_GUARD_MIGRATE;
                act = 1;
            }
        } else if (s->temp < limit - g->p.hyst_K && pred < limit - g->p.hyst_K) {
            if (!isfinite(s->cool_since)) s->cool_since = t_s;
            if (t_s - s->cool_since >= g->p.hold_s) {
                const double cool = limit - g->p.hyst_K;
                if (s->migrated && isfinite(s->restore_p) &&
                    steady_C(g, d, s->restore_dvfs, s->restore_p) < cool) {
                    a.kind = QEIL_GUARD_RESTORE_PLAN;
                    a.to = s->restore_dvfs;
                    act = 1;
                } else if (!s->migrated && s->dvfs_ok && s->dvfs < s->top &&
                           isfinite(s->p_other_at[s->dvfs + 1]) &&
                           steady_C(g, d, s->dvfs + 1, s->p_other_at[s->dvfs + 1]) < cool) {
                    a.kind = QEIL_GUARD_DVFS_UP;
                    a.to = s->dvfs + 1;
                    act = 1;
                }
            }
        } else {
            s->cool_since = NAN;
        }
        if (act) out[n++] = a;
    }
    return n;
}

void qeil_guard_applied(qeil_guard *g, const qeil_guard_action *a, int ok)
{
    if (!g || !a || a->unit < 0 || a->unit >= g->pf.n_units) return;
    unit_state *s = &g->u[a->unit];
    const qeil_unit *u = &g->pf.units[a->unit];
    qeil_guard_action rec = *a;
    rec.ok = ok ? 1 : 0;
    if (g->n_log < QEIL_GUARD_LOG_MAX) g->log[g->n_log++] = rec;
    g->n_total++;
    s->cool_since = NAN;
    switch (a->kind) {
    case QEIL_GUARD_DVFS_DOWN:
    case QEIL_GUARD_DVFS_UP:
        if (!ok) {
            s->dvfs_ok = 0; /* the next hot step migrates */
            return;
        }
        if (a->to >= 0 && a->to < u->n_dvfs) s->dvfs = a->to;
        s->settle_t = a->t_s;
        return;
    case QEIL_GUARD_MIGRATE:
        s->migrate_t = a->t_s; /* a refused migration is retried after hold_s too */
        if (!ok) return;
        if (!s->migrated) {
            s->restore_p = s->p_other_at[s->top];
            s->restore_dvfs = s->top;
        }
        s->migrated = 1;
        s->migrate_t = a->t_s;
        s->settle_t = a->t_s;
        return;
    case QEIL_GUARD_RESTORE_PLAN:
        s->settle_t = a->t_s;
        return;
    }
}

void qeil_guard_set_plan(qeil_guard *g, const uint8_t *dvfs, int restored)
{
    if (!g || !dvfs) return;
    for (int d = 0; d < g->pf.n_units; d++) {
        unit_state *s = &g->u[d];
        const qeil_unit *u = &g->pf.units[d];
        int k = dvfs[d] < u->n_dvfs ? dvfs[d] : u->n_dvfs - 1;
        s->dvfs = s->top = k;
        for (int j = 0; j < QEIL_MAX_DVFS; j++) s->p_other_at[j] = NAN;
        if (restored) {
            s->migrated = 0;
            s->restore_p = NAN;
        }
        if (s->have) s->settle_t = s->t;
        s->cool_since = NAN;
    }
}

qeil_guard_model qeil_guard_get_model(const qeil_guard *g, int ui)
{
    qeil_guard_model m;
    memset(&m, 0, sizeof m);
    m.temp_C = m.power_W = m.t_s = m.limit_C = NAN;
    if (!g || ui < 0 || ui >= g->pf.n_units) return m;
    const unit_state *s = &g->u[ui];
    m.r_th_KpW = s->r;
    m.c_th_JpK = s->c;
    m.t_amb_C = s->t_amb;
    m.fitted = s->fitted;
    m.n_samples = s->n;
    m.temp_C = s->temp;
    m.power_W = s->power;
    m.t_s = s->t;
    m.dvfs = s->dvfs;
    m.limit_C = g->p.limit_frac * g->pf.units[ui].t_max_C;
    return m;
}

void qeil_guard_platform(const qeil_guard *g, qeil_platform *out)
{
    if (!g || !out) return;
    *out = g->pf;
    for (int d = 0; d < g->pf.n_units; d++) out->units[d] = fitted_unit(g, d);
}

size_t qeil_guard_log(const qeil_guard *g, const qeil_guard_action **out)
{
    if (out) *out = g ? g->log : NULL;
    return g ? g->n_log : 0;
}

uint64_t qeil_guard_log_total(const qeil_guard *g) { return g ? g->n_total : 0; }
