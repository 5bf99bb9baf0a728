/* guard_report.c — the thermal guard's report in `generate` and `eval`
 * output (docs/cli.md "Thermal guard"): whether it ran and on which
 * sensors, its actions, and the throttle events the kernel's and driver's
 * counters recorded (null where no counter exists: unknown, not zero). */
#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>

#include "cli.h"
#include "qeil/runtime.h"

void cli_guard_acc_init(cli_guard_acc *a)
{
    memset(a, 0, sizeof *a);
    a->max_temp_C = NAN;
    a->reason = "guard off";
    a->actions = cJSON_CreateArray();
}

void cli_guard_acc_free(cli_guard_acc *a)
{
    cJSON_Delete(a->actions);
    a->actions = NULL;
}

void cli_guard_acc_add(cli_guard_acc *a, const qeil_runtime *rt, long request)
{
    qeil_runtime_guard_report g;
    qeil_runtime_guard_report_get(rt, &g);
    const qeil_platform *pf = qeil_runtime_platform(rt);
    a->requests++;
    a->active = g.active;
    a->reason = g.reason;
    a->readings += g.readings;
    if (!(g.max_temp_C <= a->max_temp_C) && isfinite(g.max_temp_C)) a->max_temp_C = g.max_temp_C;
    if (g.throttle_known) {
        a->throttle_known = 1;
        a->throttle_events += g.throttle_events;
    }
    for (size_t i = 0; i < g.n_actions; i++) {
        const qeil_guard_action *x = &g.actions[i];
        a->n_actions++;
        if (!a->actions) continue;
        const qeil_unit *u = &pf->units[x->unit];
        cJSON *j = cJSON_CreateObject();
        if (request >= 0) cJSON_AddNumberToObject(j, "request", (double)request);
        /* seconds since the request began */
        cJSON_AddNumberToObject(j, "t_s", isfinite(g.t0_s) ? x->t_s - g.t0_s : x->t_s);
        cJSON_AddStringToObject(j, "unit", u->name);
        cJSON_AddStringToObject(j, "kind", qeil_guard_action_name(x->kind));
        char from[48], to[48];
        if (x->kind == QEIL_GUARD_DVFS_DOWN || x->kind == QEIL_GUARD_DVFS_UP) {
            snprintf(from, sizeof from, "%.0f MHz", u->dvfs[x->from].freq_Hz / 1e6);
            snprintf(to, sizeof to, "%.0f MHz", u->dvfs[x->to].freq_Hz / 1e6);
        } else if (x->kind == QEIL_GUARD_MIGRATE && x->ok) { /* work units on the unit */
            snprintf(from, sizeof from, "%d units", x->from);
            snprintf(to, sizeof to, "%d units", x->to);
        } else {
            snprintf(from, sizeof from, "plan");
            snprintf(to, sizeof to, "%s", x->kind == QEIL_GUARD_MIGRATE ? "re-plan" : "original plan");
        }
        cJSON_AddStringToObject(j, "from", from);
        cJSON_AddStringToObject(j, "to", to);
        cJSON_AddNumberToObject(j, "temp_C", x->temp_C);
        if (isfinite(x->predicted_C)) cJSON_AddNumberToObject(j, "predicted_C", x->predicted_C);
        else cJSON_AddNullToObject(j, "predicted_C");
        cJSON_AddBoolToObject(j, "ok", x->ok != 0);
        cJSON_AddNumberToObject(j, "apply_s", x->apply_s);
        cJSON_AddItemToArray(a->actions, j);
    }
}

void cli_guard_json(cJSON *parent, cli_guard_acc *a)
{
    cJSON *g = cJSON_AddObjectToObject(parent, "guard");
    if (!g) return;
    cJSON_AddBoolToObject(g, "active", a->active != 0);
    cJSON_AddStringToObject(g, "reason", a->reason ? a->reason : "");
    cJSON_AddNumberToObject(g, "readings", a->readings);
    if (isfinite(a->max_temp_C)) cJSON_AddNumberToObject(g, "max_temp_C", a->max_temp_C);
    else cJSON_AddNullToObject(g, "max_temp_C");
    if (a->actions) {
        cJSON_AddItemToObject(g, "actions", a->actions);
        a->actions = NULL; /* the document owns it now */
    } else {
        cJSON_AddArrayToObject(g, "actions");
    }
    if (a->throttle_known) cJSON_AddNumberToObject(g, "throttle_events", (double)a->throttle_events);
    else cJSON_AddNullToObject(g, "throttle_events");
    cJSON_AddStringToObject(g, "throttle_provenance",
                            a->throttle_known ? "measured: kernel/driver throttle counters"
                                              : "n/a: no throttle counter on this machine");
}

void cli_guard_text(FILE *f, const cli_guard_acc *a)
{
    char thr[64];
    if (a->throttle_known)
        snprintf(thr, sizeof thr, "%llu", (unsigned long long)a->throttle_events);
    else
        snprintf(thr, sizeof thr, "n/a (no counter)");
    fprintf(f, "guard: %s (%s), %llu action%s, throttle events %s\n",
            a->active ? "active" : "inactive", cli_term(a->reason ? a->reason : ""),
            (unsigned long long)a->n_actions, a->n_actions == 1 ? "" : "s", thr);
}
