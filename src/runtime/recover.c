/* recover.c — the planner re-places a running request (rt_recover.h):
 * after a unit failed, PGSAM re-plans without it, warm-started from the
 * placement the request ran on and the runtime's front; when the thermal
 * guard moves work off a hot unit, the same re-plan without that unit on
 * the guard's fitted view. The plan becomes an engine placement through
 * the profile's device names (qeil_plan_placement). docs/runtime.md
 * "Recovery from a failed unit", docs/guard.md "In the runtime". */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "runtime/rt_recover.h"

int rt_unit_of_device(const qeil_platform *pf, size_t id)
{
    const char *name = qeil_engine_device_name(id);
    if (!name) return -1;
    for (int d = 0; d < pf->n_units; d++)
        if (pf->units[d].device[0] && strcmp(pf->units[d].device, name) == 0) return d;
    return -1;
}

/* Does unit d stand for a device this build has a backend for? */
static int unit_local(const qeil_platform *pf, int d)
{
    if (!pf->units[d].device[0]) return 0;
    for (size_t id = 0; id < qeil_engine_n_backends(); id++)
        if (strcmp(qeil_engine_device_name(id), pf->units[d].device) == 0) return 1;
    return 0;
}

int rt_profile_maps(const qeil_platform *pf, const uint8_t *place, uint32_t nu, char *why,
                    size_t cap)
{
    int any = 0;
    for (int d = 0; d < pf->n_units; d++) any |= unit_local(pf, d);
    if (!any) {
        snprintf(why, cap, "platform '%s' names no local device (a profile qeil probe wrote does)",
                 pf->name);
        return 0;
    }
    for (uint32_t u = 0; u < nu; u++)
        if (rt_unit_of_device(pf, place[u]) < 0) {
            snprintf(why, cap, "device %s of the placement is no unit of platform '%s'",
                     qeil_engine_device_name(place[u]), pf->name);
            return 0;
        }
    return 1;
}

qeil_status rt_replan_placement(const rt_replan_in *in, rt_replan_out *out)
{
    qeil_ctx *ctx = in->ctx;
    const qeil_platform *pf = in->pf;
    const qeil_workload *wl = in->wl;
    memset(out, 0, sizeof *out);
    const uint32_t nu = wl->n_units;
    if (nu < 1 || nu > QEIL_MAX_WUNITS)
        return qeil_ctx_fail(ctx, QEIL_ERR_INTERNAL, "re-plan: %u work units", nu);

    qeil_plan_params pp = qeil_plan_default_params();
    pp.method = QEIL_METHOD_PGSAM;
    pp.seed = in->seed;
    pp.iters = in->iters;
    int left = 0;
    for (int d = 0; d < pf->n_units; d++) {
        pp.energy.healthy[d] = !in->leave[d] && unit_local(pf, d);
        left += pp.energy.healthy[d];
    }
    if (!left)
        return qeil_ctx_fail(ctx, QEIL_ERR_INFEASIBLE,
                             "re-plan: no unit of platform '%s' that stands for a local device is "
                             "left",
                             pf->name);

    /* warm start: the placement the request runs on, as a plan (the walk
     * leaves its unhealthy units), each unit left alone (the plan that
     * survives anything but that unit's loss, as PGSAM's own seeds), then
     * the front */
    const uint32_t n_seed = 1 + (uint32_t)left;
    uint32_t n_front = in->n_front < QEIL_PLAN_MAX_START - n_seed ? in->n_front : QEIL_PLAN_MAX_START - n_seed;
    qeil_assignment *start = qeil_malloc(ctx, (n_seed + (size_t)n_front) * sizeof *start);
    if (!start) return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "re-plan: out of memory");
    qeil_assignment *cur = &start[0];
    memset(cur, 0, sizeof *cur);
    for (uint32_t w = 0; w < nu; w++) {
        int d = rt_unit_of_device(pf, in->place[w]);
        cur->pf_unit[w] = cur->dc_unit[w] = (uint8_t)(d < 0 ? 0 : d);
    }
    for (int d = 0; d < pf->n_units; d++)
        cur->dvfs[d] = in->base ? in->base->dvfs[d] : (uint8_t)pf->units[d].dvfs_nominal;
    cur->batch = in->base ? in->base->batch : 1;
    if (cur->batch < 1) cur->batch = 1;
    if (cur->batch > wl->samples) cur->batch = (uint16_t)wl->samples;
    uint32_t ns = 1;
    for (int d = 0; d < pf->n_units; d++)
        if (pp.energy.healthy[d]) qeil_assignment_uniform(&start[ns++], pf, wl, d, cur->batch);
    if (n_front) memcpy(start + ns, in->front, n_front * sizeof *start);
    pp.start = start;
    pp.n_start = ns + n_front;

    qeil_front *f = NULL;
    qeil_status st = qeil_plan_search(ctx, pf, wl, &pp, &f);
    qeil_free(ctx, start);
    if (st != QEIL_OK) {
        char why[400];
        snprintf(why, sizeof why, "%s", qeil_ctx_errmsg(ctx));
        return qeil_ctx_fail(ctx, st, "re-plan: %s", why);
    }
    size_t k = qeil_front_knee(f);
    if (in->max_latency_s > 0) {
        size_t kb = qeil_front_best_under(f, in->max_latency_s, INFINITY);
        if (kb != SIZE_MAX) k = kb;
    }
    out->plan = *qeil_front_plan(f, k);
    out->ev = *qeil_front_eval(f, k);
    out->evaluations = qeil_front_evaluations(f);
    const uint32_t n = (uint32_t)qeil_front_size(f);
    out->front = qeil_malloc(ctx, (size_t)n * sizeof *out->front);
    if (!out->front) {
        qeil_front_free(f);
        return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "re-plan: out of memory for the front");
    }
    for (uint32_t i = 0; i < n; i++) out->front[i] = *qeil_front_plan(f, i);
    out->n_front = n;
    qeil_front_free(f);
    st = qeil_plan_placement(ctx, pf, &out->plan, in->phase, nu, out->place);
    if (st != QEIL_OK) {
        qeil_free(ctx, out->front);
        out->front = NULL;
        out->n_front = 0;
    }
    return st;
}

/* The name of work unit u of nu: emb, bN, head. */
static void unit_name(uint32_t u, uint32_t nu, char *buf, size_t cap)
{
    if (u == 0) snprintf(buf, cap, "emb");
    else if (u + 1 == nu) snprintf(buf, cap, "head");
    else snprintf(buf, cap, "b%u", u - 1);
}

void rt_placement_text(const uint8_t *place, uint32_t nu, char *buf, size_t cap)
{
    if (!cap) return;
    buf[0] = '\0';
    size_t len = 0;
    for (uint32_t u = 0; u < nu;) {
        uint32_t v = u;
        while (v + 1 < nu && place[v + 1] == place[u]) v++;
        char a[16], b[16], item[48];
        unit_name(u, nu, a, sizeof a);
        unit_name(v, nu, b, sizeof b);
        const char *dev = qeil_engine_device_name(place[u]);
        if (u == 0 && v + 1 == nu) snprintf(item, sizeof item, "all:%s", dev ? dev : "?");
        else if (u == v) snprintf(item, sizeof item, "%s%s:%s", u ? "," : "", a, dev ? dev : "?");
        else snprintf(item, sizeof item, "%s%s..%s:%s", u ? "," : "", a, b, dev ? dev : "?");
        size_t il = strlen(item);
        if (len + il + 4 > cap) { /* room for "..." and the NUL */
            snprintf(buf + len, cap - len, "...");
            return;
        }
        memcpy(buf + len, item, il + 1);
        len += il;
        u = v + 1;
    }
}
