/* cmd_thermal_sim.c — `qeil thermal-sim`: a sustained generation workload
 * on a simulated platform whose temperatures follow the RC thermal model,
 * with and without the thermal guard (qeil/guard.h, docs/guard.md). Every
 * figure is modeled. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "opt.h"
#include "qeil/guard.h"
#include "qeil/model.h"

#define CMD "thermal-sim"


typedef struct {
    const char *platform, *model;
    qeil_thermal_sim_params sp;
    cli_output out;
    int no_guard;
} sim_opts;

#define T sim_opts
static const cli_optdef sim_table[] = {
    {CLI_STR("--platform", NULL, "NAME|FILE",
             "catalog platform or JSON profile (default " QEIL_DEFAULT_PLATFORM ")", T, platform)},
    {CLI_STR("--model", "-m", "NAME|FILE",
             "built-in model or GGUF file (default " QEIL_DEFAULT_MODEL ")", T, model)},
    {CLI_F64_OPEN("--minutes", NULL, "M", "simulated minutes, (0, 1440] (default 30)", T,
                  sp.minutes, 0, 1440, CLI_OPT_LO_OPEN, "(0, 1440]")},
    {CLI_FLAG("--no-guard", NULL, "run without the guard", T, no_guard)},
    {CLI_F64_OPEN("--overshoot", NULL, "K",
                  "the unguarded plan's steady state above the throttle\n"
                  "point, kelvin, (0, 100] (default 6)",
                  T, sp.overshoot_K, 0, 100, CLI_OPT_LO_OPEN, "(0, 100]")},
    {CLI_U64("--seed", NULL, "S", "plan search seed (default 42)", T, sp.plan.seed, 0,
             UINT64_MAX)},
    {CLI_OUTPUT("table|json (default table)", T, out, "table|json")},
};
#undef T

static const cli_command sim_cmd = {
    CMD,
    "usage: qeil thermal-sim [options]\n\n"
    "Simulate a sustained generation workload (requests back to back) on the plan\n"
    "the planner picks, on a platform whose junction temperatures follow the RC\n"
    "thermal model at an ambient hot enough that the plan, left alone, crosses the\n"
    "throttle point (throttle-frac x T_max); crossing it throttles the unit to its\n"
    "lowest DVFS point, as hardware does. With the guard (the default) the guard\n"
    "fits the RC model to the simulated readings, predicts ahead and lowers DVFS\n"
    "points or moves work before the crossing. Time is simulated (30 minutes take\n"
    "well under a second). Every figure is modeled.\n",
    sim_table,
    CLI_NOPTS(sim_table),
    "examples:\n"
    "  qeil thermal-sim --platform jetson-orin-nano-super-15w\n"
    "  qeil thermal-sim --platform qeil-laptop --no-guard --output json\n",
    NULL,
};

/* "from → to" of an action as text: DVFS points as frequencies, a
 * migration as the work units (embedding, blocks, head; prefill and decode
 * counted apart) on the unit before and after. */
static void action_fromto(const qeil_platform *pf, const qeil_guard_action *a, char *from,
                          char *to, size_t n)
{
    const qeil_unit *u = &pf->units[a->unit];
    switch (a->kind) {
    case QEIL_GUARD_DVFS_DOWN:
    case QEIL_GUARD_DVFS_UP:
    case QEIL_GUARD_RESTORE_PLAN:
        snprintf(from, n, "%.0f MHz", u->dvfs[a->from].freq_Hz / 1e6);
        snprintf(to, n, "%.0f MHz", u->dvfs[a->to].freq_Hz / 1e6);
        if (a->kind == QEIL_GUARD_RESTORE_PLAN) snprintf(from, n, "migrated");
        return;
    case QEIL_GUARD_MIGRATE:
        snprintf(from, n, "%d work units", a->from);
        snprintf(to, n, "%d work units", a->to);
        return;
    }
    snprintf(from, n, "?");
    snprintf(to, n, "?");
}

static void print_json(const sim_opts *o, const qeil_platform *pf, const qeil_model_desc *md,
                       const qeil_thermal_sim_result *r, const qeil_guard *g)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "version", qeil_version());
    cJSON_AddStringToObject(root, "command", "thermal-sim");
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->sp.plan.seed);
    cJSON_AddStringToObject(root, "seed", seed);
    cJSON_AddStringToObject(root, "provenance", "modeled");
    cJSON_AddStringToObject(root, "platform", pf->name);
    cJSON_AddStringToObject(root, "model", md->name);
    cJSON_AddNumberToObject(root, "minutes", o->sp.minutes);
    cJSON_AddBoolToObject(root, "guard", o->sp.guard != 0);
    cJSON *units = cJSON_AddObjectToObject(root, "units");
    cJSON_AddStringToObject(units, "energy", "J");
    cJSON_AddStringToObject(units, "time", "s");
    cJSON_AddStringToObject(units, "temperature", "C");
    cJSON_AddNumberToObject(root, "ambient_C", r->t_amb_C);
    cJSON_AddNumberToObject(root, "throttle_events", (double)r->throttle_events);
    cJSON_AddNumberToObject(root, "throttled_s", r->throttled_s);
    cJSON_AddNumberToObject(root, "energy_J", r->energy_J);
    cJSON_AddNumberToObject(root, "tokens", r->tokens);
    cJSON_AddNumberToObject(root, "latency_per_token_s", r->latency_per_token_s);
    cJSON_AddNumberToObject(root, "replans", r->replans);
    cJSON_AddNumberToObject(root, "critical_trips", r->critical_trips);
    cJSON *us = cJSON_AddArrayToObject(root, "per_unit");
    for (int d = 0; d < pf->n_units; d++) {
        cJSON *u = cJSON_CreateObject();
        cJSON_AddStringToObject(u, "unit", pf->units[d].name);
        cJSON_AddBoolToObject(u, "powered", r->powered[d] != 0);
        if (isfinite(r->peak_C[d])) cJSON_AddNumberToObject(u, "peak_C", r->peak_C[d]);
        else cJSON_AddNullToObject(u, "peak_C");
        cJSON_AddNumberToObject(u, "throttle_C", r->limit_C[d]);
        cJSON_AddNumberToObject(u, "throttle_events", (double)r->throttle_events_unit[d]);
        cJSON_AddItemToArray(us, u);
    }
    cJSON *acts = cJSON_AddArrayToObject(root, "actions");
    const qeil_guard_action *log = NULL;
    size_t n = qeil_guard_log(g, &log);
    for (size_t i = 0; i < n; i++) {
        const qeil_guard_action *a = &log[i];
        char from[48], to[48];
        action_fromto(pf, a, from, to, sizeof from);
        cJSON *j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "t_s", a->t_s);
        cJSON_AddStringToObject(j, "unit", pf->units[a->unit].name);
        cJSON_AddStringToObject(j, "kind", qeil_guard_action_name(a->kind));
        cJSON_AddStringToObject(j, "from", from);
        cJSON_AddStringToObject(j, "to", to);
        cJSON_AddNumberToObject(j, "temp_C", a->temp_C);
        cJSON_AddNumberToObject(j, "predicted_C", a->predicted_C);
        cJSON_AddBoolToObject(j, "ok", a->ok != 0);
        cJSON_AddItemToArray(acts, j);
    }
    cJSON_AddNumberToObject(root, "actions_total", (double)qeil_guard_log_total(g));
    if (cli_json_print(root) != 0) fputs("qeil: out of memory printing JSON\n", stderr);
    cJSON_Delete(root);
}

static void print_table(const sim_opts *o, const qeil_platform *pf, const qeil_model_desc *md,
                        const qeil_thermal_sim_result *r, const qeil_guard *g)
{
    printf("thermal-sim: %s, %s, %.4g simulated minutes, guard %s (all figures modeled)\n",
           pf->name, md->name, o->sp.minutes, o->sp.guard ? "on" : "off");
    printf("ambient %.1f C (raised so the unguarded plan settles %.3g K past the throttle point)\n\n",
           r->t_amb_C, o->sp.overshoot_K);
    printf("%-20s %-7s %9s %11s %9s\n", "unit", "powered", "peak_C", "throttle_C", "throttles");
    for (int d = 0; d < pf->n_units; d++) {
        char peak[32];
        if (isfinite(r->peak_C[d])) snprintf(peak, sizeof peak, "%.2f", r->peak_C[d]);
        else snprintf(peak, sizeof peak, "-");
        printf("%-20s %-7s %9s %11.2f %9llu\n", cli_term(pf->units[d].name),
               r->powered[d] ? "yes" : "no", peak, r->limit_C[d],
               (unsigned long long)r->throttle_events_unit[d]);
    }
    printf("\n%-24s %14llu\n", "throttle events", (unsigned long long)r->throttle_events);
    printf("%-24s %14.1f\n", "throttled unit-seconds", r->throttled_s);
    printf("%-24s %14u\n", "critical trips (T_max)", r->critical_trips);
    printf("%-24s %14.1f\n", "energy (J)", r->energy_J);
    printf("%-24s %14.1f\n", "tokens", r->tokens);
    printf("%-24s %14.6f\n", "latency per token (s)", r->latency_per_token_s);
    printf("%-24s %14.6f\n", "energy per token (J)", r->tokens > 0 ? r->energy_J / r->tokens : NAN);
    if (!o->sp.guard) return;
    const qeil_guard_action *log = NULL;
    size_t n = qeil_guard_log(g, &log);
    printf("%-24s %14llu\n\n", "guard actions", (unsigned long long)qeil_guard_log_total(g));
    if (n == 0) return;
    printf("%9s  %-16s %-12s %-16s %-16s %8s %8s %s\n", "t_s", "unit", "action", "from", "to",
           "temp_C", "pred_C", "ok");
    for (size_t i = 0; i < n; i++) {
        const qeil_guard_action *a = &log[i];
        char from[48], to[48];
        action_fromto(pf, a, from, to, sizeof from);
        printf("%9.1f  %-16s %-12s %-16s %-16s %8.2f %8.2f %s\n", a->t_s,
               cli_term(pf->units[a->unit].name), qeil_guard_action_name(a->kind), from, to,
               a->temp_C, a->predicted_C, a->ok ? "yes" : "no");
    }
}

int cmd_thermal_sim(int argc, char **argv)
{
    sim_opts o;
    memset(&o, 0, sizeof o);
    o.platform = QEIL_DEFAULT_PLATFORM;
    o.model = QEIL_DEFAULT_MODEL;
    o.sp = qeil_thermal_sim_default_params();
    o.out = CLI_OUT_TABLE;
    int rc = cli_opt_parse(&sim_cmd, argc, argv, &o);
    if (rc != CLI_OK) return rc == CLI_OPT_HELP ? CLI_OK : rc;
    if (o.no_guard) o.sp.guard = 0;

    qeil_ctx *ctx = cli_ctx_create();
    if (!ctx) return cli_fail(CMD, "out of memory");
    qeil_platform pf;
    qeil_model_desc md;
    qeil_workload wl;
    qeil_guard *g = NULL;
    qeil_thermal_sim_result r;
    rc = CLI_FAIL;
    if (qeil_platform_load(ctx, o.platform, &pf) != QEIL_OK ||
        qeil_model_load(ctx, o.model, &md) != QEIL_OK) {
        cli_fail(CMD, "%s", qeil_ctx_errmsg(ctx));
        goto out;
    }
    qeil_workload_params wp = qeil_workload_default_params();
    if (qeil_workload_build(ctx, &md, &wp, &wl) != QEIL_OK) {
        rc = cli_usage_error(CMD, "%s", qeil_ctx_errmsg(ctx));
        goto out;
    }
    if (qeil_thermal_sim_run(ctx, &pf, &wl, &o.sp, &r, &g) != QEIL_OK) {
        cli_fail(CMD, "%s", qeil_ctx_errmsg(ctx));
        goto out;
    }
    if (o.out == CLI_OUT_JSON) print_json(&o, &pf, &md, &r, g);
    else print_table(&o, &pf, &md, &r, g);
    rc = CLI_OK;
out:
    qeil_guard_free(g);
    qeil_ctx_free(ctx);
    return rc;
}
