/*
 * plan_exec.c — plans as placements for the commands that run a model
 * (docs/cli.md "Running a plan"):
 *   cli_plan_read: a `qeil plan --output json` file on a given platform
 *     (serve prices with it; the others run it);
 *   cli_plan_spec: --plan FILE|auto -> "prefill=SPEC;decode=SPEC" for the
 *     runtime's / engine's placement, and where it came from.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "qeil/device.h"
#include "qeil/engine.h"
#include "qeil/model.h"
#include "qeil/plan.h"
#include "qeil/workload.h"

#define PLAN_FILE_MAX (1u << 22)

/* The JSON document in `path`; NULL with the error printed. */
static cJSON *read_doc(const char *cmd, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        cli_fail(cmd, "--plan: cannot open '%s' (want auto or a `qeil plan --output json` file)",
                 path);
        return NULL;
    }
    char *buf = malloc(PLAN_FILE_MAX);
    size_t n = buf ? fread(buf, 1, PLAN_FILE_MAX - 1, f) : 0;
    int big = buf && n == PLAN_FILE_MAX - 1 && fgetc(f) != EOF;
    fclose(f);
    if (!buf || big) {
        free(buf);
        cli_fail(cmd, "--plan: %s: %s", path, buf ? "over 4 MiB" : "out of memory");
        return NULL;
    }
    buf[n] = '\0';
    cJSON *doc = cJSON_ParseWithLength(buf, n);
    free(buf);
    if (!doc) cli_fail(cmd, "--plan: %s is not JSON", path);
    return doc;
}

/* The plan object of doc on platform pf: the document's recommended front
 * plan (front[recommended]), or one plan object of it (with "units",
 * "devices", "batch"). Its platform must be pf and its work units the
 * model's; devices are matched by name, DVFS points by frequency. Prints
 * the error and returns -1 on failure. */
static int plan_from_doc(const char *cmd, const char *path, const cJSON *doc,
                         const qeil_platform *pf, uint32_t n_units, qeil_assignment *a)
{
    const cJSON *p = doc, *front = cJSON_GetObjectItemCaseSensitive(doc, "front");
    const cJSON *rec = cJSON_GetObjectItemCaseSensitive(doc, "recommended");
    const cJSON *pfn = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(doc, "platform"), "name");
    if (cJSON_IsString(pfn) && strcmp(pfn->valuestring, pf->name) != 0) {
        cli_fail(cmd, "--plan: %s was made for platform '%s'; this run uses '%s' "
                      "(give --platform %s)",
                 path, pfn->valuestring, pf->name, pfn->valuestring);
        return -1;
    }
    if (cJSON_IsArray(front) && cJSON_IsNumber(rec)) p = cJSON_GetArrayItem(front, rec->valueint);
    const cJSON *units = cJSON_GetObjectItemCaseSensitive(p, "units");
    const cJSON *devs = cJSON_GetObjectItemCaseSensitive(p, "devices");
    const cJSON *batch = cJSON_GetObjectItemCaseSensitive(p, "batch");
    if (!cJSON_IsArray(units) || !cJSON_IsArray(devs) || !cJSON_IsNumber(batch)) {
        cli_fail(cmd, "--plan: %s: no plan (want the JSON of `qeil plan --output json`: "
                      "front[recommended] with units, devices, batch)",
                 path);
        return -1;
    }
    if ((uint32_t)cJSON_GetArraySize(units) != n_units) {
        cli_fail(cmd, "--plan: %s: %d work units, the model has %u (plan it with -m MODEL)", path,
                 cJSON_GetArraySize(units), n_units);
        return -1;
    }
    memset(a, 0, sizeof *a);
    for (int d = 0; d < pf->n_units; d++) a->dvfs[d] = (uint8_t)pf->units[d].dvfs_nominal;
    for (uint32_t w = 0; w < n_units; w++) {
        const cJSON *u = cJSON_GetArrayItem(units, (int)w);
        for (int ph = 0; ph < 2; ph++) {
            const cJSON *dn =
                cJSON_GetObjectItemCaseSensitive(u, ph ? "decode_device" : "prefill_device");
            int found = -1;
            for (int d = 0; cJSON_IsString(dn) && d < pf->n_units; d++)
                if (strcmp(pf->units[d].name, dn->valuestring) == 0) found = d;
            if (found < 0) {
                cli_fail(cmd, "--plan: %s: units[%u].%s: not a unit of platform '%s'", path, w,
                         ph ? "decode_device" : "prefill_device", pf->name);
                return -1;
            }
            (ph ? a->dc_unit : a->pf_unit)[w] = (uint8_t)found;
        }
    }
    const cJSON *dv;
    cJSON_ArrayForEach(dv, devs) {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(dv, "name");
        const cJSON *fq = cJSON_GetObjectItemCaseSensitive(dv, "freq_Hz");
        for (int d = 0; cJSON_IsString(nm) && cJSON_IsNumber(fq) && d < pf->n_units; d++) {
            if (strcmp(pf->units[d].name, nm->valuestring) != 0) continue;
            int k = 0;
            while (k < pf->units[d].n_dvfs &&
                   fabs(pf->units[d].dvfs[k].freq_Hz - fq->valuedouble) > 0.5)
                k++;
            if (k == pf->units[d].n_dvfs) {
                cli_fail(cmd, "--plan: %s: device '%s' at %.0f Hz: no such DVFS point", path,
                         nm->valuestring, fq->valuedouble);
                return -1;
            }
            a->dvfs[d] = (uint8_t)k;
        }
    }
    if (batch->valuedouble < 1 || batch->valuedouble > 65535 ||
        batch->valuedouble != (double)(int)batch->valuedouble) {
        cli_fail(cmd, "--plan: %s: batch %g (allowed 1..65535)", path, batch->valuedouble);
        return -1;
    }
    a->batch = (uint16_t)batch->valuedouble;
    return 0;
}

int cli_plan_read(const char *cmd, const char *path, const qeil_platform *pf, uint32_t n_units,
                  qeil_assignment *a)
{
    cJSON *doc = read_doc(cmd, path);
    if (!doc) return -1;
    int rc = plan_from_doc(cmd, path, doc, pf, n_units, a);
    cJSON_Delete(doc);
    return rc;
}

/* A workload that fits the model's context: qeil plan's defaults shrunk
 * the way it shrinks them (P = 4/5 of the context, N the rest). */
static void fit_workload(qeil_workload_params *wp, uint32_t C)
{
    if (C < 2 || wp->prompt_tokens + wp->gen_tokens <= C) return;
    wp->prompt_tokens = C * 4 / 5 ? C * 4 / 5 : 1;
    wp->gen_tokens = C - wp->prompt_tokens ? C - wp->prompt_tokens : 1;
}

int cli_plan_spec(const char *cmd, qeil_ctx *ctx, const char *plan, const char *platform,
                  const char *model, char *spec, size_t cap, char *source, size_t scap)
{
    qeil_model_desc md;
    if (!model) return cli_usage_error(cmd, "--plan needs -m MODEL");
    if (qeil_model_load(ctx, model, &md) != QEIL_OK)
        return cli_fail(cmd, "--plan: %s", qeil_ctx_errmsg(ctx));
    const uint32_t nu = qeil_model_n_units(&md);
    if (nu > QEIL_MAX_WUNITS) return cli_fail(cmd, "--plan: %u work units is too many", nu);
    static qeil_platform pf; /* large; one per process */
    qeil_assignment a;
    if (strcmp(plan, "auto") == 0) {
        char pname[160];
        if (platform) {
            if (qeil_platform_load(ctx, platform, &pf) != QEIL_OK)
                return cli_usage_error(cmd, "--platform: %s", qeil_ctx_errmsg(ctx));
            snprintf(pname, sizeof pname, "platform '%s'", pf.name);
        } else {
            /* the quick probe of `qeil probe --quick` (tests and CI) */
            static qeil_probe_result r;
            qeil_probe_params pp = qeil_probe_default_params();
            pp.max_threads = 2;
            pp.min_time_s = 0.02;
            pp.max_ws_B = 32u << 20;
            qeil_status st = qeil_probe_run(ctx, &pp, &r);
            if (st == QEIL_ERR_RANGE) { /* a one-CPU machine or cpuset */
                pp.max_threads = 1;
                st = qeil_probe_run(ctx, &pp, &r);
            }
            if (st != QEIL_OK || qeil_probe_to_platform(ctx, &r, &pf) != QEIL_OK)
                return cli_fail(cmd, "--plan auto: the quick probe failed: %s", qeil_ctx_errmsg(ctx));
            fprintf(stderr,
                    "qeil %s: --plan auto: no --platform given: planned on a quick in-process probe "
                    "of this machine (profile '%s', %d unit%s; `qeil probe -o FILE` then "
                    "--platform FILE for a measured one)\n",
                    cmd, pf.name, pf.n_units, pf.n_units == 1 ? "" : "s");
            snprintf(pname, sizeof pname, "a quick in-process probe ('%s')", pf.name);
        }
        qeil_workload_params wp = qeil_workload_default_params();
        fit_workload(&wp, md.ctx_max);
        qeil_workload wl;
        if (qeil_workload_build(ctx, &md, &wp, &wl) != QEIL_OK)
            return cli_fail(cmd, "--plan auto: %s", qeil_ctx_errmsg(ctx));
        qeil_plan_params pp = qeil_plan_default_params();
        qeil_front *f = NULL;
        if (qeil_plan_search(ctx, &pf, &wl, &pp, &f) != QEIL_OK || qeil_front_size(f) == 0) {
            qeil_front_free(f);
            return cli_fail(cmd, "--plan auto: %s", qeil_ctx_errmsg(ctx));
        }
        const size_t rec = qeil_front_knee(f);
        a = *qeil_front_plan(f, rec);
        snprintf(source, scap, "auto: PGSAM (seed %llu) on %s, the knee of %zu plans",
                 (unsigned long long)pp.seed, pname, qeil_front_size(f));
        qeil_front_free(f);
    } else {
        cJSON *doc = read_doc(cmd, plan);
        if (!doc) return CLI_FAIL;
        const cJSON *pfn = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(doc, "platform"), "name");
        int rc = CLI_OK;
        if (platform) {
            if (qeil_platform_load(ctx, platform, &pf) != QEIL_OK)
                rc = cli_usage_error(cmd, "--platform: %s", qeil_ctx_errmsg(ctx));
        } else if (!cJSON_IsString(pfn)) {
            rc = cli_fail(cmd, "--plan: %s names no platform (give --platform FILE)", plan);
        } else if (qeil_catalog_find(pfn->valuestring)) {
            pf = *qeil_catalog_find(pfn->valuestring); /* refused below, naming its unit */
        } else {
            rc = cli_fail(cmd, "--plan: %s was made for platform '%s', which is not in the "
                               "catalog: give --platform FILE (the profile it was planned on)",
                          plan, pfn->valuestring);
        }
        if (rc == CLI_OK && plan_from_doc(cmd, plan, doc, &pf, nu, &a) != 0) rc = CLI_FAIL;
        cJSON_Delete(doc);
        if (rc != CLI_OK) return rc;
        snprintf(source, scap, "plan file %s (platform '%s')", plan, pf.name);
    }
    uint8_t pmap[QEIL_MAX_WUNITS], dmap[QEIL_MAX_WUNITS];
    if (qeil_plan_placement(ctx, &pf, &a, 0, nu, pmap) != QEIL_OK ||
        qeil_plan_placement(ctx, &pf, &a, 1, nu, dmap) != QEIL_OK)
        return cli_fail(cmd, "--plan %s: %s", plan, qeil_ctx_errmsg(ctx));
    if (qeil_placement_format(pmap, dmap, nu, spec, cap) != QEIL_OK)
        return cli_fail(cmd, "--plan %s: the placement does not fit %zu characters", plan, cap);
    return CLI_OK;
}

void cli_placement_json(cJSON *parent, const char *spec, const char *source, const uint8_t *pf,
                        const uint8_t *dc, uint32_t n_units)
{
    cJSON *o = cJSON_AddObjectToObject(parent, "placement");
    char buf[1024];
    if (pf && qeil_placement_format(pf, NULL, n_units, buf, sizeof buf) == QEIL_OK)
        cJSON_AddStringToObject(o, "prefill", buf);
    if (dc && qeil_placement_format(dc, NULL, n_units, buf, sizeof buf) == QEIL_OK)
        cJSON_AddStringToObject(o, "decode", buf);
    cJSON_AddStringToObject(o, "spec", spec ? spec : "all:cpu");
    cJSON_AddStringToObject(o, "source", source ? source : spec ? "--placement" : "default");
}

void cli_transfers_json(cJSON *parent, const qeil_engine_transfers *x)
{
    cJSON *o = cJSON_AddObjectToObject(parent, "transfers");
    static const char *ph[2] = {"prefill", "decode"};
    for (int p = 0; p < 2; p++) {
        cJSON *q = cJSON_AddObjectToObject(o, ph[p]);
        cJSON_AddNumberToObject(q, "rows", (double)x->rows[p]);
        cJSON_AddNumberToObject(q, "act_B", (double)x->act_B[p]);
        cJSON_AddNumberToObject(q, "act_copies", (double)x->act_n[p]);
        cJSON_AddNumberToObject(q, "act_s", x->act_s[p]);
        cJSON_AddNumberToObject(q, "act_B_per_token",
                                x->rows[p] ? (double)x->act_B[p] / (double)x->rows[p] : 0.0);
        cJSON_AddNumberToObject(q, "act_s_per_token",
                                x->rows[p] ? x->act_s[p] / (double)x->rows[p] : 0.0);
        cJSON *dv = cJSON_AddObjectToObject(q, "device_s");
        for (size_t d = 0; d < qeil_engine_n_backends() && d < QEIL_ENGINE_MAX_DEVICES; d++)
            if (x->dev_s[p][d] > 0) cJSON_AddNumberToObject(dv, qeil_engine_device_name(d), x->dev_s[p][d]);
    }
    cJSON_AddNumberToObject(o, "kv_B", (double)x->kv_B);
    cJSON_AddNumberToObject(o, "kv_s", x->kv_s);
    cJSON_AddNumberToObject(o, "phase_switches", (double)x->n_switch);
}

void cli_transfers_text(FILE *f, const qeil_engine_transfers *x)
{
    static const char *ph[2] = {"prefill", "decode"};
    for (int p = 0; p < 2; p++) {
        fprintf(f, "transfers %-7s : %llu rows, activations %llu B in %llu copies (%.3g B/token, "
                   "%.3g ms/token)",
                ph[p], (unsigned long long)x->rows[p], (unsigned long long)x->act_B[p],
                (unsigned long long)x->act_n[p],
                x->rows[p] ? (double)x->act_B[p] / (double)x->rows[p] : 0.0,
                x->rows[p] ? 1e3 * x->act_s[p] / (double)x->rows[p] : 0.0);
        for (size_t d = 0; d < qeil_engine_n_backends() && d < QEIL_ENGINE_MAX_DEVICES; d++)
            if (x->dev_s[p][d] > 0)
                fprintf(f, "; %s %.3f s", qeil_engine_device_name(d), x->dev_s[p][d]);
        fprintf(f, "\n");
    }
    fprintf(f, "transfers KV      : %llu B moved at %llu phase switches in %.3f ms\n",
            (unsigned long long)x->kv_B, (unsigned long long)x->n_switch, 1e3 * x->kv_s);
}
