/* recover.c — QEIL_FAULT and the recoveries of a request in the output of
 * generate and eval (docs/cli.md "Faults and recovery"). */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "qeil/runtime.h"

int cli_fault_env(const char *cmd, qeil_ctx *ctx, qeil_fault *f, int *set)
{
    *set = 0;
    const char *v = getenv("QEIL_FAULT");
    if (!v || !*v) return CLI_OK;
    if (qeil_fault_parse(ctx, v, f) != QEIL_OK)
        return cli_usage_error(cmd, "QEIL_FAULT='%s': %s", cli_term(v), qeil_ctx_errmsg(ctx));
    *set = 1;
    return CLI_OK;
}

void cli_recoveries_json(cJSON *parent, const qeil_runtime_recovery *r, uint32_t n)
{
    cJSON *arr = cJSON_AddArrayToObject(parent, "recoveries");
    for (uint32_t i = 0; arr && i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "device", r[i].device);
        cJSON_AddNumberToObject(o, "op", (double)r[i].op);
        cJSON_AddStringToObject(o, "op_name", r[i].op_name);
        cJSON_AddStringToObject(o, "cause", r[i].cause);
        cJSON_AddNumberToObject(o, "unit", r[i].unit);
        cJSON_AddNumberToObject(o, "units_moved", r[i].units_moved);
        cJSON_AddStringToObject(o, "kv", r[i].kv_recomputed ? "recomputed" : "host copy");
        cJSON_AddNumberToObject(o, "detect_s", r[i].detect_s);
        cJSON_AddNumberToObject(o, "replan_s", r[i].replan_s);
        cJSON_AddNumberToObject(o, "move_s", r[i].move_s);
        cJSON_AddNumberToObject(o, "kv_s", r[i].kv_s);
        cJSON_AddNumberToObject(o, "total_s", r[i].total_s);
        cJSON_AddStringToObject(o, "method", r[i].method);
        if (r[i].fallback[0]) cJSON_AddStringToObject(o, "fallback", r[i].fallback);
        else cJSON_AddNullToObject(o, "fallback");
        cJSON_AddNumberToObject(o, "evaluations", (double)r[i].evaluations);
        cJSON *pl = cJSON_AddArrayToObject(o, "placement"); /* device of each work unit */
        for (uint32_t u = 0; pl && u < r[i].n_units; u++)
            cJSON_AddItemToArray(pl, cJSON_CreateString(qeil_engine_device_name(r[i].placement[u])));
        cJSON_AddItemToArray(arr, o);
    }
}

void cli_recoveries_text(FILE *f, const char *prefix, const qeil_runtime_recovery *r, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        char how[200];
        if (strcmp(r[i].method, "planner") == 0)
            snprintf(how, sizeof how, "re-planned (%llu evaluations)",
                     (unsigned long long)r[i].evaluations);
        else
            snprintf(how, sizeof how, "survivor rule (%s)", r[i].fallback);
        fprintf(f,
                "%srecovered: %s %s at op %llu (%s, unit %u): %u units moved by %s, KV %s; detect "
                "%.2f ms, replan %.2f ms, move %.2f ms, kv %.2f ms, total %.2f ms\n",
                prefix, r[i].device, r[i].cause, (unsigned long long)r[i].op,
                r[i].op_name[0] ? r[i].op_name : "?", r[i].unit, r[i].units_moved, cli_term(how),
                r[i].kv_recomputed ? "recomputed" : "from the host copy", 1e3 * r[i].detect_s,
                1e3 * r[i].replan_s, 1e3 * r[i].move_s, 1e3 * r[i].kv_s, 1e3 * r[i].total_s);
    }
}
