/* rt_guard.c — the thermal guard inside the runtime (docs/guard.md "In the
 * runtime"): this machine's temperature sensors, mapped to the platform's
 * units by what they belong to (a CPU unit reads a "cpu" sensor, a GPU unit
 * a "gpu"/"gpuN" one), feed a qeil_guard every min_period_s of the
 * generation loop; a DVFS action is written to the unit's actuators
 * (cpufreq scaling_max_freq for a CPU; devfreq or NVML clocks for a GPU) at
 * the highest allowed value not above the profile's point; a migration
 * moves the running request's blocks off the unit between two decode steps
 * through the runtime's mover (a re-plan on the guard's fitted view) and a
 * restore moves them back, each timed (apply_s); without a mover, or when
 * the platform's units name no local device, it is reported refused. The
 * throttle counters are read at a request's begin and end: the ground
 * truth of what happened. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "runtime/rt_guard.h"
#include "core/util.h"

#define RT_GUARD_REASON_MAX 512

struct rt_guard {
    qeil_ctx *ctx;
    qeil_runtime_params p;
    qeil_platform pf;
    qeil_sense *s;
    qeil_sense_sample *now, *first;
    qeil_guard *g;
    long temp_sensor[QEIL_MAX_UNITS]; /* sensor index per unit, -1: none */
    double power_W[QEIL_MAX_UNITS];
    uint8_t *written;                 /* [actuators]: 1 once the guard wrote it */
    char reason[RT_GUARD_REASON_MAX];
    int active;
    double last_t;
    size_t log_begin;                 /* guard log length at the request's begin */
    qeil_sense_throttle thr;
    rt_guard_mover mover;
    void *mover_user;
    int have_first;
    int now_read;                     /* 1 once `now` holds a reading */
    double max_temp_C;
    uint32_t readings;
    double t0;
};

/* Does a sensor or actuator of `device` belong to unit u? */
static int belongs(const qeil_unit *u, const char *device)
{
    if (!device) return 0;
    if (u->kind == QEIL_UNIT_CPU)
        return strcmp(device, "cpu") == 0 || strcmp(device, "cpu-package") == 0 ||
               (strncmp(device, "cpu", 3) == 0 && device[3] >= '0' && device[3] <= '9');
    if (u->kind == QEIL_UNIT_GPU || u->kind == QEIL_UNIT_IGPU)
        return strncmp(device, "gpu", 3) == 0;
    return 0;
}

static void reason_add(rt_guard *g, const char *fmt, const char *a, const char *b)
{
    size_t len = strlen(g->reason);
    if (len + 3 >= sizeof g->reason) return;
    if (len) {
        snprintf(g->reason + len, sizeof g->reason - len, "; ");
        len += 2;
    }
    snprintf(g->reason + len, sizeof g->reason - len, fmt, a, b);
}

qeil_status rt_guard_create(qeil_ctx *ctx, const qeil_runtime_params *p, const qeil_platform *pf,
                            rt_guard **out)
{
    *out = NULL;
    if (!p->guard || !p->sensors) return QEIL_OK;
    rt_guard *g = qeil_calloc(ctx, 1, sizeof *g);
    if (!g) return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "guard: out of memory");
    g->ctx = ctx;
    g->p = *p;
    g->pf = *pf;
    g->last_t = -INFINITY;
    g->max_temp_C = NAN;
    qeil_sense_params sp = qeil_sense_default_params();
    sp.root = p->meter.root;
    sp.nvml = p->meter.nvml;
    sp.nvml_lib = p->meter.nvml_lib;
    qeil_status st = qeil_sense_create(ctx, &sp, &g->s);
    if (st != QEIL_OK) {
        rt_guard_free(g);
        return st;
    }
    g->now = qeil_sense_sample_create(ctx, g->s);
    g->first = qeil_sense_sample_create(ctx, g->s);
    size_t n_act = qeil_sense_actuator_count(g->s);
    g->written = qeil_calloc(ctx, n_act ? n_act : 1, 1);
    if (!g->now || !g->first || !g->written) {
        rt_guard_free(g);
        return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "guard: out of memory");
    }
    /* map: the first readable temperature sensor of each unit */
    for (int d = 0; d < pf->n_units; d++) {
        g->temp_sensor[d] = -1;
        g->power_W[d] = pf->units[d].p_const_W;
        for (size_t i = 0; i < qeil_sense_count(g->s); i++) {
            const qeil_sensor_info *in = qeil_sense_info(g->s, i);
            if (in->quantity != QEIL_SENSE_TEMP || !in->readable || !belongs(&pf->units[d], in->device))
                continue;
            g->temp_sensor[d] = (long)i;
            g->active = 1;
            reason_add(g, "%s <- %s", pf->units[d].name, in->id);
            break;
        }
    }
    if (!g->active) {
        const char *root = p->meter.root && p->meter.root[0] ? p->meter.root : "/";
        size_t n_temp = 0;
        for (size_t i = 0; i < qeil_sense_count(g->s); i++)
            n_temp += qeil_sense_info(g->s, i)->quantity == QEIL_SENSE_TEMP;
        if (n_temp == 0)
            snprintf(g->reason, sizeof g->reason, "no temperature sensor under %s", root);
        else
            snprintf(g->reason, sizeof g->reason,
                     "no readable temperature sensor of a unit of %s under %s (%zu found, none "
                     "for its units)",
                     pf->name, root, n_temp);
        return *out = g, QEIL_OK;
    }
    if ((st = qeil_guard_create(ctx, &p->guard_params, pf, NULL, &g->g)) != QEIL_OK) {
        rt_guard_free(g);
        return st;
    }
    *out = g;
    return QEIL_OK;
}

void rt_guard_set_mover(rt_guard *g, rt_guard_mover fn, void *user)
{
    if (!g) return;
    g->mover = fn;
    g->mover_user = user;
}

void rt_guard_free(rt_guard *g)
{
    if (!g) return;
    /* leave the machine as it was found */
    for (size_t i = 0; g->written && i < qeil_sense_actuator_count(g->s); i++) {
        const qeil_actuator_info *in = qeil_sense_actuator_info(g->s, i);
        if (g->written[i] && isfinite(in->initial)) qeil_sense_actuate(NULL, g->s, i, in->initial);
    }
    qeil_guard_free(g->g);
    qeil_sense_sample_free(g->now);
    qeil_sense_sample_free(g->first);
    qeil_sense_free(g->s);
    qeil_free(g->ctx, g->written);
    qeil_free(g->ctx, g);
}

/* Read every sensor (the test hook first, as the CPU meter does with its
 * own). */
static void read_now(rt_guard *g, qeil_sense_sample *into)
{
    if (g->p.guard_hook) g->p.guard_hook(g->p.guard_hook_user);
    qeil_sense_read(g->s, into);
    if (into == g->now) g->now_read = 1;
}

void rt_guard_begin(rt_guard *g, const qeil_eval *ev)
{
    if (!g) return;
    for (int d = 0; d < g->pf.n_units; d++) {
        double w = ev && ev->latency_s > 0 ? ev->dev_energy_J[d] / ev->latency_s : NAN;
        g->power_W[d] = isfinite(w) && w >= 0 ? w : g->pf.units[d].p_const_W;
    }
    g->t0 = qeil_clock_s();
    read_now(g, g->first);
    g->have_first = 1;
    memset(&g->thr, 0, sizeof g->thr);
    g->max_temp_C = NAN;
    g->readings = 0;
    g->log_begin = qeil_guard_log(g->g, NULL);
    g->last_t = -INFINITY;
    rt_guard_poll(g);
}

/* Write DVFS point k of unit d to every actuator of the unit; 1 when at
 * least one exists and every write succeeded. */
static int apply_dvfs(rt_guard *g, int d, int k)
{
    const qeil_unit *u = &g->pf.units[d];
    int n = 0, ok = 1;
    for (size_t i = 0; i < qeil_sense_actuator_count(g->s); i++) {
        const qeil_actuator_info *in = qeil_sense_actuator_info(g->s, i);
        if (!belongs(u, in->device) || strcmp(in->unit, "Hz") != 0 ||
            in->kind == QEIL_ACT_CPUFREQ_SPEED)
            continue;
        n++;
        double f = qeil_sense_actuator_floor(g->s, i, u->dvfs[k].freq_Hz);
        if (qeil_sense_actuate(g->ctx, g->s, i, f) == QEIL_OK) {
            g->written[i] = 1;
        } else {
            ok = 0;
            qeil_ctx_log(g->ctx, QEIL_LOG_WARN, "guard: %s", qeil_ctx_errmsg(g->ctx));
            qeil_ctx_clear(g->ctx);
        }
    }
    return n > 0 && ok;
}

/* A migration or a restore, timed. When done, the power per unit is the
 * new plan's and dv gets the DVFS points for qeil_guard_set_plan: what the
 * guard set, but a restored unit's pre-migration point, written again. */
static int move(rt_guard *g, qeil_guard_action *a, uint8_t *dv)
{
    const int restore = a->kind == QEIL_GUARD_RESTORE_PLAN;
    qeil_platform view;
    qeil_guard_platform(g->g, &view);
    double pw[QEIL_MAX_UNITS];
    for (int d = 0; d < QEIL_MAX_UNITS; d++) pw[d] = NAN;
    double t0 = qeil_clock_s();
    int ok = restore ? g->mover(g->mover_user, a->unit, 1, &view, NULL, NULL, NULL)
                     : g->mover(g->mover_user, a->unit, 0, &view, &a->from, &a->to, pw);
    for (int d = 0; d < g->pf.n_units; d++) dv[d] = (uint8_t)qeil_guard_get_model(g->g, d).dvfs;
    if (ok && restore && a->to >= 0 && a->to < g->pf.units[a->unit].n_dvfs) {
        apply_dvfs(g, a->unit, a->to); /* a refused write leaves the point where it is */
        dv[a->unit] = (uint8_t)a->to;
    }
    a->apply_s = qeil_clock_s() - t0;
    if (!ok) return 0;
    for (int d = 0; d < g->pf.n_units; d++)
        if (isfinite(pw[d])) g->power_W[d] = pw[d];
    return 1;
}

void rt_guard_poll(rt_guard *g)
{
    if (!g || !g->active) return;
    double t = qeil_clock_s();
    if (t - g->last_t < g->p.guard_params.min_period_s) return;
    g->last_t = t;
    read_now(g, g->now);
    for (int d = 0; d < g->pf.n_units; d++) {
        if (g->temp_sensor[d] < 0) continue;
        const qeil_sense_reading *r = qeil_sense_sample_get(g->now, (size_t)g->temp_sensor[d]);
        if (!r || r->status != QEIL_OK || !isfinite(r->value)) continue;
        g->readings++;
        if (!(r->value <= g->max_temp_C)) g->max_temp_C = r->value;
        qeil_guard_observe(g->g, d, t, r->value, g->power_W[d]);
    }
    qeil_guard_action acts[QEIL_MAX_UNITS];
    size_t n = qeil_guard_step(g->g, t, acts, QEIL_MAX_UNITS);
    for (size_t i = 0; i < n; i++) {
        qeil_guard_action a = acts[i];
        int ok = 0;
        if (a.kind == QEIL_GUARD_DVFS_DOWN || a.kind == QEIL_GUARD_DVFS_UP)
            ok = apply_dvfs(g, a.unit, a.to);
        else if (g->mover) {
            uint8_t dv[QEIL_MAX_UNITS] = {0};
            ok = move(g, &a, dv);
            qeil_guard_applied(g->g, &a, ok); /* first: it keeps the pre-migration point */
            if (ok) qeil_guard_set_plan(g->g, dv, a.kind == QEIL_GUARD_RESTORE_PLAN);
            continue;
        }
        qeil_guard_applied(g->g, &a, ok);
    }
}

void rt_guard_end(rt_guard *g)
{
    if (!g || !g->have_first) return;
    read_now(g, g->now);
    qeil_sense_throttle_between(g->s, g->first, g->now, &g->thr);
}

void rt_guard_report(const rt_guard *g, qeil_runtime_guard_report *out)
{
    memset(out, 0, sizeof *out);
    out->max_temp_C = out->t0_s = NAN;
    if (!g) {
        out->reason = "guard off";
        return;
    }
    out->active = g->active;
    out->reason = g->reason;
    out->throttle_known = g->thr.available;
    out->throttle_events = g->thr.events;
    out->max_temp_C = g->max_temp_C;
    out->readings = g->readings;
    out->t0_s = g->have_first ? g->t0 : NAN;
    const qeil_guard_action *log = NULL;
    size_t n = qeil_guard_log(g->g, &log);
    if (log && n > g->log_begin) {
        out->actions = log + g->log_begin;
        out->n_actions = n - g->log_begin;
    }
}

double rt_guard_unit_temp(const rt_guard *g, int u)
{
    if (!g || !g->active || !g->now_read || u < 0 || u >= g->pf.n_units || g->temp_sensor[u] < 0)
        return NAN;
    const qeil_sense_reading *r = qeil_sense_sample_get(g->now, (size_t)g->temp_sensor[u]);
    return r && r->status == QEIL_OK && isfinite(r->value) ? r->value : NAN;
}
