/* thermal_sim.c — the simulated platform of `qeil thermal-sim` (qeil/guard.h,
 * docs/guard.md): a sustained generation workload on the planner's plan,
 * each unit's junction following the RC model (qeil_thermal_step) at an
 * ambient hot enough that the plan, left alone, crosses the throttle
 * point. The simulated sensors are the model's temperatures and powers,
 * the simulated actuators its DVFS points; crossing the throttle point
 * drops the unit to its lowest point until it has cooled, as hardware
 * throttling does. Time is simulated: nothing sleeps. */
#include <math.h>
#include <string.h>

#include "qeil/energy.h"
#include "qeil/guard.h"

qeil_thermal_sim_params qeil_thermal_sim_default_params(void)
{
    qeil_thermal_sim_params p;
    memset(&p, 0, sizeof p);
    p.minutes = 30;
    p.dt_s = 0.5;
    p.guard = 1;
    p.overshoot_K = 6;
    p.throttle_hyst_K = 5;
    p.plan = qeil_plan_default_params();
    p.gp = qeil_guard_default_params();
    return p;
}

/* Power and throughput of an assignment, temperature aside. */
typedef struct {
    double p_other_W[QEIL_MAX_UNITS]; /* dynamic + constant power; 0 when unpowered */
    int powered[QEIL_MAX_UNITS];
    double link_W;   /* link energy per second */
    double tok_per_s;
    int ok;
} sim_rate;

/* The energy model on the platform with leakage switched off gives each
 * unit's dynamic + constant energy per request exactly (leakage depends on
 * the temperature, which the simulation tracks itself). */
static void rate_of(const qeil_platform *pf_noleak, const qeil_workload *wl, const qeil_assignment *a,
                    const qeil_energy_params *ep, sim_rate *r)
{
    memset(r, 0, sizeof *r);
    qeil_eval ev;
    if (qeil_energy_eval(pf_noleak, wl, a, ep, &ev) != QEIL_OK || !(ev.latency_s > 0) ||
        !isfinite(ev.latency_s))
        return;
    for (int d = 0; d < pf_noleak->n_units; d++) {
        r->powered[d] = ev.powered[d];
        r->p_other_W[d] = ev.powered[d] ? ev.dev_energy_J[d] / ev.latency_s : 0;
    }
    r->link_W = ev.energy_link_J / ev.latency_s;
    r->tok_per_s = (double)wl->gen_tokens * wl->samples / ev.latency_s;
    r->ok = 1;
}

static int work_on(const qeil_workload *wl, const qeil_assignment *a, int d)
{
    int n = 0;
    for (uint32_t w = 0; w < wl->n_units; w++) n += (a->pf_unit[w] == d) + (a->dc_unit[w] == d);
    return n;
}

/* Hottest powered unit's steady state at the profile's ambient + rise,
 * minus (throttle point + overshoot): the sign says which side of the
 * target the rise is. Runaway counts as above. */
static double hottest_excess(const qeil_platform *pf, const qeil_assignment *a, const sim_rate *r,
                             const qeil_energy_params *ep, double rise, double overshoot)
{
    double worst = -INFINITY;
    for (int d = 0; d < pf->n_units; d++) {
        if (!r->powered[d]) continue;
        qeil_unit u = pf->units[d];
        u.t_amb_C += rise;
        u.t_max_C = 1000; /* report the fixed point whatever it is */
        double t_ss, leak;
        if (qeil_thermal_steady(&u, a->dvfs[d], r->p_other_W[d], &t_ss, &leak) != QEIL_OK)
            return INFINITY;
        double e = t_ss - (ep->throttle_frac * pf->units[d].t_max_C + overshoot);
        if (e > worst) worst = e;
    }
    return worst;
}

/* The knee of a plan search on pf, or QEIL_ERR_INFEASIBLE. */
static qeil_status plan_knee(qeil_ctx *ctx, const qeil_platform *pf, const qeil_workload *wl,
                             const qeil_plan_params *pp, qeil_assignment *a)
{
    qeil_front *f = NULL;
    qeil_status st = qeil_plan_search(ctx, pf, wl, pp, &f);
    if (st != QEIL_OK) return st;
    if (qeil_front_size(f) == 0) {
        qeil_front_free(f);
        return qeil_ctx_fail(ctx, QEIL_ERR_INFEASIBLE, "thermal-sim: no feasible plan on %s",
                             pf->name);
    }
    *a = *qeil_front_plan(f, qeil_front_knee(f));
    qeil_front_free(f);
    return QEIL_OK;
}

static qeil_status sim_range(qeil_ctx *ctx, const char *field, double v, double lo, int lo_open,
                             double hi)
{
    int ok = lo_open ? v > lo : v >= lo;
    if (ok && v <= hi) return QEIL_OK;
    return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "thermal-sim %s: %g is out of range (want %c%g, %g])",
                         field, v, lo_open ? '(' : '[', lo, hi);
}

qeil_status qeil_thermal_sim_run(qeil_ctx *ctx, const qeil_platform *pf, const qeil_workload *wl,
                                 const qeil_thermal_sim_params *p, qeil_thermal_sim_result *out,
                                 qeil_guard **guard_out)
{
    if (guard_out) *guard_out = NULL;
    if (!pf || !wl || !p || !out) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "thermal-sim: NULL argument");
    memset(out, 0, sizeof *out);
    qeil_status st;
    if ((st = sim_range(ctx, "minutes", p->minutes, 0, 1, 1440)) ||
        (st = sim_range(ctx, "dt_s", p->dt_s, 0.01, 0, 10)) ||
        (st = sim_range(ctx, "overshoot_K", p->overshoot_K, 0, 1, 100)) ||
        (st = sim_range(ctx, "throttle_hyst_K", p->throttle_hyst_K, 0, 1, 50)) ||
        (st = sim_range(ctx, "plan.energy.throttle_frac", p->plan.energy.throttle_frac, 0, 1, 1)))
        return st;
    if ((st = qeil_platform_validate(ctx, pf)) != QEIL_OK) return st;
    const int nd = pf->n_units;
    const qeil_energy_params *ep = &p->plan.energy;

    /* ---- the plan, on the profile as the planner sees it ---- */
    qeil_assignment a0;
    if ((st = plan_knee(ctx, pf, wl, &p->plan, &a0)) != QEIL_OK) return st;
    out->plan0 = a0;

    qeil_platform noleak = *pf;
    for (int d = 0; d < nd; d++) noleak.units[d].p_leak_ref_W = 0;
    sim_rate rate;
    rate_of(&noleak, wl, &a0, ep, &rate);
    if (!rate.ok) return qeil_ctx_fail(ctx, QEIL_ERR_INFEASIBLE, "thermal-sim: the plan has no finite latency");

    /* ---- the ambient: the plan's hottest unit settles overshoot_K past
     * its throttle point (the steady state at the profile's ambient, then
     * the ambient raised by the missing margin, then the overshoot) ---- */
    int any = 0;
    for (int d = 0; d < nd; d++) any |= rate.powered[d];
    if (!any) return qeil_ctx_fail(ctx, QEIL_ERR_INFEASIBLE, "thermal-sim: the plan powers no unit");
    /* bisection on the rise: the hottest unit's steady state (leakage
     * included, which grows with the ambient) is monotone in it */
    double lo = 0, hi = 0;
    if (hottest_excess(pf, &a0, &rate, ep, 0, p->overshoot_K) < 0) {
        hi = 1;
        while (hottest_excess(pf, &a0, &rate, ep, hi, p->overshoot_K) < 0 && hi < 512) hi *= 2;
        for (int it = 0; it < 60; it++) {
            double mid = 0.5 * (lo + hi);
            if (hottest_excess(pf, &a0, &rate, ep, mid, p->overshoot_K) < 0) lo = mid;
            else hi = mid;
        }
    }
    double rise = hi; /* 0: the plan already crosses at the profile's ambient */
    /* past the top of the bisection the unit runs away (its leakage grows
     * faster than its cooling) before settling that hot: just past the
     * onset the climb is too slow to ever show, so a third of the
     * overshoot more */
    if (rise > 0 && isinf(hottest_excess(pf, &a0, &rate, ep, rise, p->overshoot_K)))
        rise += p->overshoot_K / 3;
    qeil_platform truth = *pf;
    for (int d = 0; d < nd; d++) {
        truth.units[d].t_amb_C += rise;
        out->limit_C[d] = ep->throttle_frac * pf->units[d].t_max_C;
        out->peak_C[d] = NAN;
    }
    out->t_amb_C = truth.units[0].t_amb_C;

    qeil_guard *g = NULL;
    if (p->guard && (st = qeil_guard_create(ctx, &p->gp, pf, a0.dvfs, &g)) != QEIL_OK) return st;

    /* ---- the run ---- */
    double temp[QEIL_MAX_UNITS];
    int throttled[QEIL_MAX_UNITS] = {0};
    int tripped = 0; /* a unit reached T_max: the critical trip halts the work */
    for (int d = 0; d < nd; d++) temp[d] = truth.units[d].t_amb_C; /* a cold start */
    qeil_assignment cur = a0, eff_prev;
    memset(&eff_prev, 0xff, sizeof eff_prev);
    const double total_s = p->minutes * 60.0;
    const uint64_t steps = (uint64_t)ceil(total_s / p->dt_s - 1e-9);
    double t = 0;
    for (uint64_t k = 0; k < steps; k++) {
        double dt = (k + 1 == steps) ? total_s - t : p->dt_s;
        /* hardware throttling overrides the set point */
        qeil_assignment eff = cur;
        for (int d = 0; d < nd; d++)
            if (throttled[d]) eff.dvfs[d] = 0;
        if (memcmp(&eff, &eff_prev, sizeof eff) != 0) {
            rate_of(&noleak, wl, &eff, ep, &rate);
            if (!rate.ok) {
                qeil_guard_free(g);
                return qeil_ctx_fail(ctx, QEIL_ERR_INTERNAL, "thermal-sim: a plan lost its latency");
            }
            eff_prev = eff;
        }
        double p_mean[QEIL_MAX_UNITS], power = tripped ? 0 : rate.link_W;
        for (int d = 0; d < nd; d++) {
            qeil_unit u = truth.units[d];
            int on = rate.powered[d] && !tripped;
            if (!on) u.p_leak_ref_W = 0; /* power-gated (or halted by the trip) */
            if (rate.powered[d]) out->powered[d] = 1;
            double peak = temp[d];
            double t1 = qeil_thermal_step(&u, eff.dvfs[d], temp[d], on ? rate.p_other_W[d] : 0, dt, &peak);
            if (!(peak < u.t_max_C)) { /* the trip below acts at T_max: never past it */
                peak = u.t_max_C;
                if (!(t1 <= u.t_max_C)) t1 = u.t_max_C;
            }
            double leak = on ? qeil_leak_power_W(&u, eff.dvfs[d], 0.5 * (temp[d] + t1)) : 0;
            p_mean[d] = (on ? rate.p_other_W[d] : 0) + leak;
            power += p_mean[d];
            temp[d] = t1;
            if (rate.powered[d] && !(peak <= out->peak_C[d])) out->peak_C[d] = peak;
            if (!throttled[d] && peak >= out->limit_C[d]) {
                throttled[d] = 1;
                out->throttle_events++;
                out->throttle_events_unit[d]++;
            } else if (throttled[d] && t1 <= out->limit_C[d] - p->throttle_hyst_K) {
                throttled[d] = 0;
            }
            if (throttled[d]) out->throttled_s += dt;
            /* throttling at the lowest point could not hold it (leakage
             * running away): at T_max the critical trip stops the work
             * until the unit is back below its throttle point */
            if (!tripped && peak >= truth.units[d].t_max_C) {
                tripped = 1;
                out->critical_trips++;
            }
        }
        if (tripped) {
            int hot = 0;
            for (int d = 0; d < nd; d++) hot |= rate.powered[d] && temp[d] > out->limit_C[d] - p->throttle_hyst_K;
            if (!hot) tripped = 0;
        }
        out->energy_J += power * dt;
        if (!tripped) out->tokens += rate.tok_per_s * dt;
        t += dt;
        if (!g) continue;

        /* ---- the guard reads the simulated sensors and drives the
         * simulated actuators ---- */
        for (int d = 0; d < nd; d++) qeil_guard_observe(g, d, t, temp[d], p_mean[d]);
        qeil_guard_action acts[QEIL_MAX_UNITS];
        size_t n_act = qeil_guard_step(g, t, acts, QEIL_MAX_UNITS);
        for (size_t i = 0; i < n_act; i++) {
            qeil_guard_action a = acts[i];
            int d = a.unit, ok = 1;
            if (a.kind == QEIL_GUARD_DVFS_DOWN || a.kind == QEIL_GUARD_DVFS_UP) {
                cur.dvfs[d] = (uint8_t)a.to;
                qeil_guard_applied(g, &a, 1);
            } else {
                qeil_assignment next = a0;
                int restored = a.kind == QEIL_GUARD_RESTORE_PLAN;
                if (!restored) {
                    qeil_platform view;
                    qeil_guard_platform(g, &view);
                    qeil_ctx_clear(ctx);
                    ok = plan_knee(ctx, &view, wl, &p->plan, &next) == QEIL_OK;
                    if (!ok) qeil_ctx_clear(ctx); /* no plan fits: keep going, reported */
                }
                a.from = work_on(wl, &cur, d);
                a.to = ok ? work_on(wl, &next, d) : a.from;
                qeil_guard_applied(g, &a, ok);
                if (ok) {
                    cur = next;
                    qeil_guard_set_plan(g, cur.dvfs, restored);
                    out->replans++;
                }
            }
        }
    }
    out->sim_s = t;
    out->latency_per_token_s = out->tokens > 0 ? t / out->tokens : INFINITY;
    if (guard_out) *guard_out = g;
    else qeil_guard_free(g);
    return QEIL_OK;
}
