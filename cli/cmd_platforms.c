/* cmd_platforms.c — `qeil platforms`: list the built-in catalog, or show one
 * platform (catalog name or JSON profile) with every field, its value and
 * its source. Format of the profiles: docs/profiles.md. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "opt.h"
#include "qeil/device.h"

#define CMD "platforms"

typedef struct {
    cli_output out;
    const char *name; /* NAME|FILE.json, or NULL: the catalog */
} platforms_opts;

static int one_platform(const char *cmd, const char *arg, void *vo)
{
    platforms_opts *o = vo;
    if (o->name)
        return cli_usage_error(cmd, "one platform at a time ('%s' and '%s' given)", o->name, arg);
    o->name = arg;
    return 0;
}

static const cli_optdef platforms_table[] = {
    {CLI_OUTPUT("table (default) or json; json prints the profile(s) in the\n"
                "format qeil plan --platform FILE.json reads",
                platforms_opts, out, "table|json")},
};

static const cli_command platforms_cmd = {
    CMD,
    "usage: qeil platforms [NAME|FILE.json] [--output table|json]\n"
    "\n"
    "Without NAME, list the built-in platform catalog: each platform's memory pools,\n"
    "links and compute units (kind, pool, peak f16 TFLOP/s, int8 TOP/s, bandwidth).\n"
    "With NAME (a catalog platform, or a JSON profile: a path containing '/' or\n"
    "ending in .json), show every field of that platform with its value, unit and\n"
    "source (datasheet, measured, default).\n",
    platforms_table,
    CLI_NOPTS(platforms_table),
    "Profile format and the sources of every catalog number: docs/profiles.md\n",
    one_platform,
};

/* Shortest %.Ng that reads back as exactly v (full precision, no noise). */
static const char *num(char *buf, size_t n, double v)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    return buf;
}

/* ---- list ---- */

static void print_list_table(void)
{
    for (size_t i = 0; i < qeil_catalog_count(); i++) {
        const qeil_platform *pf = qeil_catalog_get(i);
        printf("%s%s\n  %s\n", i ? "\n" : "", pf->name, pf->description);
        printf("  pools:");
        for (int p = 0; p < pf->n_pools; p++)
            printf("%s %s %.1f GiB %.1f GB/s", p ? ";" : "", pf->pools[p].name,
                   pf->pools[p].capacity_B / 1073741824.0, pf->pools[p].bw_Bps / 1e9);
        for (int l = 0; l < pf->n_links; l++)
            printf("; link %s<->%s %.1f GB/s", pf->pools[pf->links[l].pool_a].name,
                   pf->pools[pf->links[l].pool_b].name, pf->links[l].bw_Bps / 1e9);
        printf("\n  %-14s %-5s %-11s %12s %11s %9s\n", "UNIT", "KIND", "POOL", "F16 TFLOP/S",
               "INT8 TOP/S", "GB/S");
        for (int k = 0; k < pf->n_units; k++) {
            const qeil_unit *u = &pf->units[k];
            char f16[24], i8[24];
            if (u->peak_ops[QEIL_DT_F16] > 0)
                snprintf(f16, sizeof f16, "%.2f", u->peak_ops[QEIL_DT_F16] / 1e12);
            else
                snprintf(f16, sizeof f16, "-");
            if (u->peak_ops[QEIL_DT_INT8] > 0)
                snprintf(i8, sizeof i8, "%.2f", u->peak_ops[QEIL_DT_INT8] / 1e12);
            else
                snprintf(i8, sizeof i8, "-");
            printf("  %-14s %-5s %-11s %12s %11s %9.1f\n", u->name, qeil_unit_kind_name(u->kind),
                   pf->pools[u->pool].name, f16, i8, u->mem_bw_Bps / 1e9);
        }
    }
}

/* {"version", "platforms": [profile, ...]}: each profile is the library's
 * text as a raw item, so its numbers stay those that read back bit-exactly
 * (cJSON would reprint them with its own, inexact, %1.15g). */
static int print_list_json(void)
{
    qeil_ctx *ctx = cli_ctx_create();
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = NULL;
    int rc = CLI_OK;
    if (!ctx || !root || !cJSON_AddStringToObject(root, "version", qeil_version()) ||
        !(arr = cJSON_AddArrayToObject(root, "platforms"))) {
        rc = cli_fail(CMD, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < qeil_catalog_count(); i++) {
        char *json = NULL;
        if (qeil_platform_to_json(ctx, qeil_catalog_get(i), &json) != QEIL_OK) {
            rc = cli_fail(CMD, "%s", qeil_ctx_errmsg(ctx));
            goto out;
        }
        size_t n = strlen(json);
        if (n && json[n - 1] == '\n') json[n - 1] = '\0';
        cJSON *raw = cJSON_CreateRaw(json);
        qeil_free(ctx, json);
        if (!raw || !cJSON_AddItemToArray(arr, raw)) {
            cJSON_Delete(raw);
            rc = cli_fail(CMD, "out of memory");
            goto out;
        }
    }
    if (cli_json_print(root) != 0) rc = cli_fail(CMD, "out of memory printing JSON");
out:
    cJSON_Delete(root);
    qeil_ctx_free(ctx);
    return rc;
}

/* ---- one platform in full ---- */

static void row(const char *field, double v, const char *unit, qeil_source src)
{
    char b[40];
    printf("  %-22s %-24s %-9s %s\n", field, num(b, sizeof b, v), unit, qeil_source_name(src));
}

static void print_unit(const qeil_platform *pf, const qeil_unit *u)
{
    printf("\nunit %s (%s, pool %s, nominal DVFS point %d)\n", u->name,
           qeil_unit_kind_name(u->kind), pf->pools[u->pool].name, u->dvfs_nominal);
    printf("  %-22s %-24s %-9s %s\n", "FIELD", "VALUE", "UNIT", "SOURCE");
    char f[64];
    for (int t = 0; t < QEIL_DT_COUNT; t++) {
        snprintf(f, sizeof f, "peak_ops.%s", qeil_dtype_name((qeil_dtype)t));
        row(f, u->peak_ops[t], t <= QEIL_DT_F16 ? "FLOP/s" : "OP/s", u->src_compute);
    }
    row("mem_bw_Bps", u->mem_bw_Bps, "B/s", u->src_compute);
    row("eta_compute", u->eta_compute, "1", u->src_compute);
    row("eta_mem", u->eta_mem, "1", u->src_compute);
    for (int t = 0; t < QEIL_DT_COUNT; t++) {
        snprintf(f, sizeof f, "e_op_J.%s", qeil_dtype_name((qeil_dtype)t));
        row(f, u->e_op_J[t], t <= QEIL_DT_F16 ? "J/FLOP" : "J/OP", u->src_power);
    }
    row("e_byte_J", u->e_byte_J, "J/B", u->src_power);
    row("p_const_W", u->p_const_W, "W", u->src_power);
    row("p_leak_ref_W", u->p_leak_ref_W, "W", u->src_power);
    row("t_leak_ref_C", u->t_leak_ref_C, "degC", u->src_power);
    row("leak_kappa_perK", u->leak_kappa_perK, "1/K", u->src_power);
    row("r_th_KpW", u->r_th_KpW, "K/W", u->src_thermal);
    row("c_th_JpK", u->c_th_JpK, "J/K", u->src_thermal);
    row("t_amb_C", u->t_amb_C, "degC", u->src_thermal);
    row("t_max_C", u->t_max_C, "degC", u->src_thermal);
    for (int k = 0; k < u->n_dvfs; k++) {
        snprintf(f, sizeof f, "dvfs[%d].freq_Hz%s", k, k == u->dvfs_nominal ? "*" : "");
        row(f, u->dvfs[k].freq_Hz, "Hz", u->src_compute);
        snprintf(f, sizeof f, "dvfs[%d].volt_V%s", k, k == u->dvfs_nominal ? "*" : "");
        row(f, u->dvfs[k].volt_V, "V", u->src_power);
    }
}

static void print_one_table(const qeil_platform *pf, int from_catalog)
{
    char b[40], c[40];
    printf("platform     %s\n", pf->name);
    printf("description  %s\n", pf->description);
    printf("rho_max      %s (a plan above this fraction of any pool is infeasible)\n",
           num(b, sizeof b, pf->rho_max));
    printf("\npools\n  %-12s %-26s %s\n", "NAME", "capacity_B", "bw_Bps");
    for (int p = 0; p < pf->n_pools; p++) {
        const qeil_pool *q = &pf->pools[p];
        char cap[64], bw[64];
        snprintf(cap, sizeof cap, "%s (%.2f GiB)", num(b, sizeof b, q->capacity_B),
                 q->capacity_B / 1073741824.0);
        snprintf(bw, sizeof bw, "%s (%.1f GB/s)", num(c, sizeof c, q->bw_Bps), q->bw_Bps / 1e9);
        printf("  %-12s %-26s %s\n", q->name, cap, bw);
    }
    if (pf->n_links) {
        printf("\nlinks\n  %-24s %-26s %-12s %s\n", "POOLS", "bw_Bps", "e_byte_J", "latency_s");
        for (int l = 0; l < pf->n_links; l++) {
            const qeil_link *k = &pf->links[l];
            char pools[2 * QEIL_NAME_MAX + 8], bw[64], e[40], lat[40];
            snprintf(pools, sizeof pools, "%s <-> %s", pf->pools[k->pool_a].name,
                     pf->pools[k->pool_b].name);
            snprintf(bw, sizeof bw, "%s (%.1f GB/s)", num(b, sizeof b, k->bw_Bps), k->bw_Bps / 1e9);
            printf("  %-24s %-26s %-12s %s\n", pools, bw, num(e, sizeof e, k->e_byte_J),
                   num(lat, sizeof lat, k->latency_s));
        }
    } else {
        printf("\nlinks        none (a single memory pool)\n");
    }
    for (int k = 0; k < pf->n_units; k++) print_unit(pf, &pf->units[k]);
    printf("\n* = nominal DVFS point: peak_ops and e_op_J refer to it.\n");
    /* Sources are recorded per group; say what the group mark hides. */
    if (from_catalog)
        printf("Built-in platform: eta_compute and eta_mem are class defaults whatever the compute\n"
               "source says; derivations and sources of every number: docs/profiles.md.\n");
}

int cmd_platforms(int argc, char **argv)
{
    platforms_opts o = {.out = CLI_OUT_TABLE};
    int rc = cli_opt_parse(&platforms_cmd, argc, argv, &o);
    if (rc != CLI_OK) return rc == CLI_OPT_HELP ? CLI_OK : rc;
    const cli_output out = o.out;
    const char *name = o.name;

    if (!name) {
        if (out == CLI_OUT_JSON) return print_list_json();
        print_list_table();
        return CLI_OK;
    }

    qeil_ctx *ctx = cli_ctx_create();
    if (!ctx) return cli_fail(CMD, "out of memory");
    qeil_platform *pf = qeil_malloc(ctx, sizeof *pf);
    if (!pf) {
        rc = cli_fail(CMD, "out of memory");
    } else if (qeil_platform_load(ctx, name, pf) != QEIL_OK) {
        rc = cli_fail(CMD, "%s", qeil_ctx_errmsg(ctx));
    } else if (out == CLI_OUT_JSON) {
        char *json = NULL;
        if (qeil_platform_to_json(ctx, pf, &json) != QEIL_OK)
            rc = cli_fail(CMD, "%s", qeil_ctx_errmsg(ctx));
        else
            fputs(json, stdout);
        qeil_free(ctx, json);
    } else {
        /* a catalog name (never a path: names have no '/' or .json) */
        print_one_table(pf, qeil_catalog_find(name) != NULL);
    }
    qeil_free(ctx, pf);
    qeil_ctx_free(ctx);
    return rc;
}
