/* cmd_plan.c — `qeil plan`: search allocations of a model's work across a
 * platform's compute units and report the Pareto front, the recommended
 * plan, and how it compares with the standard and greedy baselines. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "opt.h"
#include "svg.h"
#include "qeil/plan.h"

#define CMD "plan"
#define TABLE_ROWS 16
/* An exhaustive search above this many plans needs --force: at the
 * measured ~4 µs per evaluation on this 2-core machine (docs/planner.md)
 * 1e7 plans is ~40 s; the default instance's 4.8e7 took 195 s. */
#define EXHAUSTIVE_LIMIT 1e7

typedef struct {
    const char *platform, *model;
    qeil_workload_params wp;
    qeil_plan_params pp;
    double max_latency_s, max_energy_J;
    cli_output out;
    const char *fail[QEIL_MAX_UNITS];
    int n_fail;
    int force;
    int p_given, n_given; /* --prompt-tokens / --gen-tokens given */
    const char *svg;      /* --svg FILE */
    int fitted;           /* the defaults were shrunk to the model's context */
} plan_opts;

/* ---- options ------------------------------------------------------------ */

#define T plan_opts
static const cli_optdef plan_table[] = {
    {CLI_STR("--platform", NULL, "NAME|FILE",
             "catalog platform or JSON profile (default " QEIL_DEFAULT_PLATFORM ")", T, platform)},
    {CLI_STR("--model", "-m", "NAME|FILE",
             "built-in model or GGUF file (default " QEIL_DEFAULT_MODEL ")", T, model)},
    {CLI_U64("--prompt-tokens", NULL, "N",
             "prompt length P (default 512, or 4/5 of a smaller\nmodel context)", T,
             wp.prompt_tokens, 1, 1u << 20),
     .given = CLI_GIVEN(T, p_given)},
    {CLI_U64("--gen-tokens", NULL, "N",
             "tokens generated per sample N (default 128, or what\nthe context leaves after P)",
             T, wp.gen_tokens, 1, 1u << 20),
     .given = CLI_GIVEN(T, n_given)},
    {CLI_U64("--samples", NULL, "K", "repeated samples k (default 1)", T, wp.samples, 1,
             QEIL_MAX_SAMPLES)},
    /* the names in qeil_plan_method's order */
    {CLI_ENUM("--method", NULL, "M", "pgsam|greedy|standard|exhaustive|random (default pgsam)",
              T, pp.method, "pgsam|greedy|standard|exhaustive|random")},
    {CLI_U64("--seed", NULL, "S", "search seed (default 42)", T, pp.seed, 0, UINT64_MAX)},
    {CLI_U64("--iters", NULL, "N", "evaluation budget for pgsam/random (default 20000)", T,
             pp.iters, 1, QEIL_MAX_ITERS)},
    {CLI_F64("--max-latency", NULL, "S", "recommend the lowest-energy plan with latency <= S", T,
             max_latency_s, 1e-9, 1e9)},
    {CLI_F64("--max-energy", NULL, "J", "... and energy <= J", T, max_energy_J, 1e-9, 1e12)},
    {CLI_F64("--throttle-frac", NULL, "F", "junction limit as a fraction of T_max (default 0.85)",
             T, pp.energy.throttle_frac, 0.1, 1.0)},
    {CLI_LIST("--fail", NULL, "UNIT", "treat compute unit UNIT as failed (repeatable)", T, fail,
              n_fail, "units")},
    {CLI_FLAG("--force", NULL, "run an exhaustive search above 1e7 plans", T, force)},
    {CLI_OUTPUT("table|json|csv (default table)", T, out, "table|json|csv")},
    {CLI_STR("--svg", NULL, "FILE", "also draw the front and the recommended plan (SVG)", T, svg)},
};
#undef T

static const cli_command plan_cmd = {
    CMD,
    "usage: qeil plan [options]\n\n"
    "Search allocations of a transformer's work (embedding, each block, LM head;\n"
    "prefill and decode) across a platform's compute units, with DVFS points and\n"
    "the decode batch, minimising energy, latency and underutilization.\n"
    "All figures are modeled (energy model on profile coefficients), never measured.\n",
    plan_table,
    CLI_NOPTS(plan_table),
    "examples:\n"
    "  qeil plan\n"
    "  qeil plan --platform jetson-orin-nano-super-15w --model llama-3.2-1b --samples 8\n"
    "  qeil plan --platform probe.json -m model.gguf --output json\n",
    NULL,
};

/* ---- formatting helpers ----------------------------------------------- */

/* Work-unit label: "emb", "b0".."bN-1", "head". */
static void wunit_label(const qeil_workload *wl, uint32_t w, char *buf, size_t n)
{
    if (w == 0) snprintf(buf, n, "emb");
    else if (w + 1 == wl->n_units) snprintf(buf, n, "head");
    else snprintf(buf, n, "b%u", w - 1);
}

/* Run-length device map: "emb..b12:gpu b13..head:cpu". */
static void device_map(const qeil_platform *pf, const qeil_workload *wl, const uint8_t *dev,
                       char *buf, size_t n)
{
    size_t len = 0;
    buf[0] = '\0';
    for (uint32_t w = 0; w < wl->n_units;) {
        uint32_t e = w;
        while (e + 1 < wl->n_units && dev[e + 1] == dev[w]) e++;
        char a[16], b[16];
        wunit_label(wl, w, a, sizeof a);
        wunit_label(wl, e, b, sizeof b);
        int k = e == w ? snprintf(buf + len, n - len, "%s%s:%s", len ? " " : "", a,
                                  pf->units[dev[w]].name)
                       : snprintf(buf + len, n - len, "%s%s..%s:%s", len ? " " : "", a, b,
                                  pf->units[dev[w]].name);
        if (k < 0 || (size_t)k >= n - len) break; /* truncated: the JSON has the full map */
        len += (size_t)k;
        w = e + 1;
    }
}

static void dvfs_desc(const qeil_platform *pf, const qeil_eval *ev, const qeil_assignment *a,
                      char *buf, size_t n)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int d = 0; d < pf->n_units; d++) {
        if (!ev->powered[d]) continue;
        int k = snprintf(buf + len, n - len, "%s%s@%.0fMHz", len ? " " : "", pf->units[d].name,
                         pf->units[d].dvfs[a->dvfs[d]].freq_Hz / 1e6);
        if (k < 0 || (size_t)k >= n - len) break;
        len += (size_t)k;
    }
}

static double pct_change(double now, double base) { return base > 0 ? 100.0 * (now - base) / base : 0; }

/* ---- JSON --------------------------------------------------------------- */

static cJSON *plan_json(const qeil_platform *pf, const qeil_workload *wl, const qeil_assignment *a,
                        const qeil_eval *ev)
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddNumberToObject(p, "energy_J", ev->energy_J);
    cJSON_AddNumberToObject(p, "latency_s", ev->latency_s);
    cJSON_AddNumberToObject(p, "underutilization", ev->underutil);
    cJSON_AddNumberToObject(p, "peak_temp_C", ev->peak_temp_C);
    cJSON_AddNumberToObject(p, "avg_power_W", ev->avg_power_W);
    cJSON_AddNumberToObject(p, "energy_per_token_J",
                            ev->energy_J / ((double)wl->gen_tokens * wl->samples));
    cJSON_AddNumberToObject(p, "prefill_s", ev->prefill_s);
    cJSON_AddNumberToObject(p, "decode_s", ev->decode_s);
    cJSON_AddNumberToObject(p, "transfer_s", ev->transfer_s);
    cJSON_AddNumberToObject(p, "energy_dynamic_J", ev->energy_dyn_J);
    cJSON_AddNumberToObject(p, "energy_static_J", ev->energy_static_J);
    cJSON_AddNumberToObject(p, "energy_link_J", ev->energy_link_J);
    cJSON_AddNumberToObject(p, "batch", a->batch);
    cJSON_AddBoolToObject(p, "feasible", ev->feasible);
    cJSON_AddStringToObject(p, "provenance", "modeled");

    char buf[4096];
    device_map(pf, wl, a->pf_unit, buf, sizeof buf);
    cJSON_AddStringToObject(p, "prefill_map", buf);
    device_map(pf, wl, a->dc_unit, buf, sizeof buf);
    cJSON_AddStringToObject(p, "decode_map", buf);

    cJSON *devs = cJSON_AddArrayToObject(p, "devices");
    for (int d = 0; d < pf->n_units; d++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", pf->units[d].name);
        cJSON_AddBoolToObject(o, "powered", ev->powered[d]);
        cJSON_AddNumberToObject(o, "freq_Hz", pf->units[d].dvfs[a->dvfs[d]].freq_Hz);
        cJSON_AddNumberToObject(o, "busy_s", ev->busy_s[d]);
        cJSON_AddNumberToObject(o, "energy_J", ev->dev_energy_J[d]);
        cJSON_AddNumberToObject(o, "peak_temp_C", ev->dev_temp_C[d]);
        cJSON_AddNumberToObject(o, "phi", ev->dev_phi[d]);
        cJSON_AddItemToArray(devs, o);
    }
    cJSON *pools = cJSON_AddArrayToObject(p, "pools");
    for (int q = 0; q < pf->n_pools; q++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", pf->pools[q].name);
        cJSON_AddNumberToObject(o, "rho", ev->pool_rho[q]);
        cJSON_AddNumberToObject(o, "cpq", ev->pool_cpq[q]);
        cJSON_AddItemToArray(pools, o);
    }
    cJSON *units = cJSON_AddArrayToObject(p, "units");
    for (uint32_t w = 0; w < wl->n_units; w++) {
        cJSON *o = cJSON_CreateObject();
        char lbl[16];
        wunit_label(wl, w, lbl, sizeof lbl);
        int dp = a->pf_unit[w], dd = a->dc_unit[w];
        cJSON_AddStringToObject(o, "unit", lbl);
        cJSON_AddStringToObject(o, "prefill_device", pf->units[dp].name);
        cJSON_AddStringToObject(o, "decode_device", pf->units[dd].name);
        cJSON_AddNumberToObject(o, "prefill_s", ev->pf_time_s[w]);
        cJSON_AddNumberToObject(o, "decode_s", ev->dc_time_s[w]);
        cJSON_AddNumberToObject(o, "prefill_dasi", ev->pf_dasi[w]);
        cJSON_AddNumberToObject(o, "decode_dasi", ev->dc_dasi[w]);
        cJSON_AddNumberToObject(o, "prefill_cpq", ev->pool_cpq[pf->units[dp].pool]);
        cJSON_AddNumberToObject(o, "decode_cpq", ev->pool_cpq[pf->units[dd].pool]);
        cJSON_AddNumberToObject(o, "prefill_phi", ev->dev_phi[dp]);
        cJSON_AddNumberToObject(o, "decode_phi", ev->dev_phi[dd]);
        cJSON_AddItemToArray(units, o);
    }
    return p;
}

static cJSON *platform_json(const qeil_platform *pf)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", pf->name);
    cJSON_AddStringToObject(o, "description", pf->description);
    cJSON *us = cJSON_AddArrayToObject(o, "units");
    for (int d = 0; d < pf->n_units; d++) {
        cJSON *u = cJSON_CreateObject();
        cJSON_AddStringToObject(u, "name", pf->units[d].name);
        cJSON_AddStringToObject(u, "kind", qeil_unit_kind_name(pf->units[d].kind));
        cJSON_AddStringToObject(u, "pool", pf->pools[pf->units[d].pool].name);
        cJSON_AddStringToObject(u, "source_compute", qeil_source_name(pf->units[d].src_compute));
        cJSON_AddStringToObject(u, "source_power", qeil_source_name(pf->units[d].src_power));
        cJSON_AddItemToArray(us, u);
    }
    return o;
}

/* ---- the command ------------------------------------------------------ */

/* Defaults that do not fit a small model's context C are shrunk to fit:
 * P = 4/5 of C (the default 512:128 ratio) when not given, N = what is
 * left after P when not given. Given values are never changed: one that
 * does not fit is the workload's error, naming it. */
static void fit_defaults(plan_opts *o, uint32_t C)
{
    if (C < 2 || o->wp.prompt_tokens + o->wp.gen_tokens <= C) return;
    if (!o->p_given) {
        uint32_t p = o->n_given ? (o->wp.gen_tokens < C ? C - o->wp.gen_tokens : 1)
                                : (uint32_t)((uint64_t)C * 4 / 5);
        if (p < 1) p = 1;
        if (p < o->wp.prompt_tokens) {
            o->wp.prompt_tokens = p;
            o->fitted = 1;
        }
    }
    if (!o->n_given && o->wp.prompt_tokens < C && o->wp.prompt_tokens + o->wp.gen_tokens > C) {
        o->wp.gen_tokens = C - o->wp.prompt_tokens;
        o->fitted = 1;
    }
}

typedef struct {
    int tty;
    int last_decile; /* non-tty: the last 10 % step printed */
} progress_state;

/* On a terminal one line redrawn in place; in a log a line per 10 %. */
static void on_progress(void *user, uint64_t done, uint64_t total)
{
    progress_state *ps = user;
    double frac = total > 0 ? (double)done / (double)total : 1.0;
    if (frac > 1.0) frac = 1.0;
    if (ps->tty) {
        fprintf(stderr, "\rqeil plan: exhaustive: %5.1f %% (%.3g of %.3g plans)", 100 * frac,
                (double)done, (double)total);
        if (done >= total) fputc('\n', stderr);
        fflush(stderr);
        return;
    }
    int decile = (int)(frac * 10);
    if (decile == ps->last_decile) return;
    ps->last_decile = decile;
    fprintf(stderr, "qeil plan: exhaustive: %3d %% (%.3g of %.3g plans)\n", decile * 10, (double)done,
            (double)total);
}

typedef struct {
    qeil_assignment a;
    qeil_eval ev;
    int ok;
} baseline;

static void run_baseline(qeil_ctx *ctx, const qeil_platform *pf, const qeil_workload *wl,
                         const qeil_plan_params *pp, qeil_plan_method m, baseline *out)
{
    qeil_plan_params bp = *pp;
    bp.method = m;
    qeil_front *f = NULL;
    out->ok = 0;
    if (qeil_plan_search(ctx, pf, wl, &bp, &f) == QEIL_OK && qeil_front_size(f) > 0) {
        out->a = *qeil_front_plan(f, 0);
        out->ev = *qeil_front_eval(f, 0);
        out->ok = 1;
    }
    qeil_front_free(f);
}

static void print_table(const plan_opts *o, const qeil_platform *pf, const qeil_model_desc *md,
                        const qeil_workload *wl, const qeil_front *f, size_t rec,
                        const baseline *std_b, const baseline *greedy_b, double search_s)
{
    printf("qeil plan: %s on %s (%d units), P=%u N=%u k=%u, method %s, seed %llu\n", cli_term(md->name),
           pf->name, pf->n_units, wl->prompt_tokens, wl->gen_tokens, wl->samples,
           qeil_plan_method_name(o->pp.method), (unsigned long long)o->pp.seed);
    if (o->fitted)
        printf("P and N: defaults shrunk to fit the model's context of %u tokens "
               "(--prompt-tokens, --gen-tokens to choose)\n",
               md->ctx_max);
    printf("all figures are MODELED (energy model on profile coefficients; see docs/energy-model.md)\n");
    printf("searched %llu plans in %.1f ms\n", (unsigned long long)qeil_front_evaluations(f),
           search_s * 1e3);
    int n_healthy = 0;
    for (int d = 0; d < pf->n_units; d++) n_healthy += o->pp.energy.healthy[d] != 0;
    if (o->n_fail > 0) {
        printf("failed units (--fail), given no work:");
        for (int d = 0; d < pf->n_units; d++)
            if (!o->pp.energy.healthy[d]) printf(" %s", pf->units[d].name);
        printf("\n");
    }
    if (n_healthy == 1) {
        const char *only = "";
        for (int d = 0; d < pf->n_units; d++)
            if (o->pp.energy.healthy[d]) only = pf->units[d].name;
        printf("note: one compute unit (%s) %s, so there is no placement to choose: the\n"
               "plans differ only in its DVFS point and the decode batch. A profile with more\n"
               "units (a GPU or NPU: qeil devices, qeil probe) gives the planner a choice.\n",
               only, o->n_fail > 0 ? "is left to place work on" : "is all this platform has");
    }
    printf("\n");

    /* The front is 3-objective; the table lists the plans that trade energy
     * against latency (non-dominated in those two), at most TABLE_ROWS of
     * them spread evenly, plus the recommended one. JSON/CSV list all. */
    size_t n = qeil_front_size(f), shown[TABLE_ROWS + 1], n2 = 0, n_el = 0;
    size_t el[QEIL_ARCHIVE_MAX];
    for (size_t i = 0; i < n && n_el < QEIL_ARCHIVE_MAX; i++) {
        const qeil_eval *a = qeil_front_eval(f, i);
        int dominated = 0;
        for (size_t j = 0; j < n && !dominated; j++) {
            const qeil_eval *b = qeil_front_eval(f, j);
            dominated = b->energy_J <= a->energy_J && b->latency_s <= a->latency_s &&
                        (b->energy_J < a->energy_J || b->latency_s < a->latency_s);
        }
        if (!dominated) el[n_el++] = i;
    }
    for (size_t k = 0; k < TABLE_ROWS && k < n_el; k++) {
        size_t i = n_el <= TABLE_ROWS ? el[k] : el[k * (n_el - 1) / (TABLE_ROWS - 1)];
        if (n2 == 0 || shown[n2 - 1] != i) shown[n2++] = i;
    }
    int rec_shown = 0;
    for (size_t k = 0; k < n2; k++) rec_shown |= shown[k] == rec;
    if (!rec_shown) shown[n2++] = rec;
    printf("Pareto front: %zu plans over (energy, latency, underutilization); %zu trade energy\n"
           "against latency, %zu of them shown (--output json lists every plan):\n",
           n, n_el, n2 - (size_t)!rec_shown);
    printf("  %3s  %10s  %10s  %9s  %8s  %8s  %5s\n", "#", "energy_J", "latency_s", "underutil",
           "peak_C", "power_W", "batch");
    for (size_t k = 0; k < n2; k++) {
        size_t i = shown[k];
        const qeil_eval *ev = qeil_front_eval(f, i);
        printf("  %3zu  %10.4g  %10.4g  %9.3f  %8.1f  %8.4g  %5u%s\n", i, ev->energy_J,
               ev->latency_s, ev->underutil, ev->peak_temp_C, ev->avg_power_W,
               qeil_front_plan(f, i)->batch, i == rec ? "  <- recommended" : "");
    }

    const qeil_assignment *a = qeil_front_plan(f, rec);
    const qeil_eval *ev = qeil_front_eval(f, rec);
    char buf[4096];
    printf("\nRecommended plan #%zu (%s):\n", rec,
           (isfinite(o->max_latency_s) || isfinite(o->max_energy_J)) ? "lowest energy within limits"
                                                                      : "knee of the front");
    device_map(pf, wl, a->pf_unit, buf, sizeof buf);
    printf("  prefill  %s\n", buf);
    device_map(pf, wl, a->dc_unit, buf, sizeof buf);
    printf("  decode   %s\n", buf);
    dvfs_desc(pf, ev, a, buf, sizeof buf);
    printf("  clocks   %s; decode batch %u\n", buf, a->batch);
    printf("  energy   %.4g J (%.4g J/token), latency %.4g s (prefill %.4g, decode %.4g, "
           "transfers %.4g)\n",
           ev->energy_J, ev->energy_J / ((double)wl->gen_tokens * wl->samples), ev->latency_s,
           ev->prefill_s, ev->decode_s, ev->transfer_s);
    printf("  power    %.4g W average; peak junction %.1f C\n", ev->avg_power_W, ev->peak_temp_C);
    printf("  devices ");
    for (int d = 0; d < pf->n_units; d++)
        if (ev->powered[d])
            printf(" %s: %.4g J, %.0f C, phi %.2f;", pf->units[d].name, ev->dev_energy_J[d],
                   ev->dev_temp_C[d], ev->dev_phi[d]);
    printf("\n  pools   ");
    for (int q = 0; q < pf->n_pools; q++)
        printf(" %s: rho %.2f, CPQ %.3f;", pf->pools[q].name, ev->pool_rho[q], ev->pool_cpq[q]);
    printf("\n\nAgainst the baselines (same energy model):\n");
    const baseline *bs[2] = {std_b, greedy_b};
    const char *names[2] = {"standard", "greedy"};
    for (int k = 0; k < 2; k++) {
        if (!bs[k]->ok) {
            printf("  %-9s no feasible plan\n", names[k]);
            continue;
        }
        printf("  %-9s %10.4g J  %8.4g s   -> recommended: energy %+.1f %%, latency %+.1f %%\n",
               names[k], bs[k]->ev.energy_J, bs[k]->ev.latency_s,
               pct_change(ev->energy_J, bs[k]->ev.energy_J),
               pct_change(ev->latency_s, bs[k]->ev.latency_s));
    }
    printf("\nterms: underutil = share of the powered units' capacity idle or starved over the\n"
           "request (0 = all busy; docs/energy-model.md); phi (Φ) = thermal yield, dynamic /\n"
           "(dynamic + leakage) power; rho = a memory pool's fill, CPQ = capacity pressure\n"
           "rho / (1 - rho); DASI (per unit in --output json) = the share of a unit's peak the\n"
           "work can use (roofline). J/token counts every generated token of every sample.\n");
}

/* ---- SVG: the front and the recommended plan's device map --------------- */

static void svg_marker(FILE *fp, double x, double y, int shape, const char *fill)
{
    if (shape == 1) /* square */
        fprintf(fp, "<rect x=\"%.1f\" y=\"%.1f\" width=\"10\" height=\"10\" fill=\"%s\" stroke=\"#000\"/>\n",
                x - 5, y - 5, fill);
    else if (shape == 2) /* triangle */
        fprintf(fp, "<path d=\"M%.1f %.1f L%.1f %.1f L%.1f %.1f Z\" fill=\"%s\" stroke=\"#000\"/>\n", x,
                y - 6, x + 6, y + 5, x - 6, y + 5, fill);
    else
        fprintf(fp, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\" stroke=\"#333\" "
                    "stroke-width=\"0.5\"/>\n", x, y, fill);
}

static int write_svg(const char *path, const plan_opts *o, const qeil_platform *pf,
                     const qeil_model_desc *md, const qeil_workload *wl, const qeil_front *f,
                     size_t rec, const baseline *std_b, const baseline *greedy_b)
{
    FILE *fp = fopen(path, "w");
    if (!fp) return -1;
    const uint32_t n = wl->n_units;
    const int W = 980, plot_h = 330, map_top = 500, row_h = 16;
    const int H = map_top + 2 * pf->n_units * row_h + 70;
    char title[512];
    snprintf(title, sizeof title, "qeil plan: %s on %s", md->name, pf->name);
    svg_begin(fp, W, H, title);
    svg_text(fp, 20, 24, "start", 15, "%s", title);
    svg_text(fp, 20, 42, "start", 11,
             "P=%u N=%u k=%u, %s seed %llu, %zu plans on the front; all figures MODELED", wl->prompt_tokens,
             wl->gen_tokens, wl->samples, qeil_plan_method_name(o->pp.method),
             (unsigned long long)o->pp.seed, qeil_front_size(f));

    /* front: energy (x) vs latency (y), underutilization as colour */
    double e_lo = INFINITY, e_hi = -INFINITY, l_lo = INFINITY, l_hi = -INFINITY;
    const baseline *bs[2] = {std_b, greedy_b};
    for (size_t i = 0; i < qeil_front_size(f); i++) {
        const qeil_eval *ev = qeil_front_eval(f, i);
        e_lo = fmin(e_lo, ev->energy_J), e_hi = fmax(e_hi, ev->energy_J);
        l_lo = fmin(l_lo, ev->latency_s), l_hi = fmax(l_hi, ev->latency_s);
    }
    for (int k = 0; k < 2; k++)
        if (bs[k]->ok) {
            e_lo = fmin(e_lo, bs[k]->ev.energy_J), e_hi = fmax(e_hi, bs[k]->ev.energy_J);
            l_lo = fmin(l_lo, bs[k]->ev.latency_s), l_hi = fmax(l_hi, bs[k]->ev.latency_s);
        }
    svg_axis ax = svg_axis_fit(e_lo, e_hi, 90, 640);
    svg_axis ay = svg_axis_fit(l_lo, l_hi, 70 + plot_h, 70);
    svg_axes(fp, &ax, &ay, "energy per request, J", "latency, s");
    char col[8];
    for (size_t i = 0; i < qeil_front_size(f); i++) {
        const qeil_eval *ev = qeil_front_eval(f, i);
        svg_ramp(ev->underutil, col);
        svg_marker(fp, svg_map(&ax, ev->energy_J), svg_map(&ay, ev->latency_s), 0, col);
    }
    const qeil_eval *rev = qeil_front_eval(f, rec);
    double rx = svg_map(&ax, rev->energy_J), ry = svg_map(&ay, rev->latency_s);
    fprintf(fp, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"9\" fill=\"none\" stroke=\"#d00\" stroke-width=\"2\"/>\n",
            rx, ry);
    svg_text(fp, rx + 10, ry - 12, "start", 11, "recommended #%zu", rec);
    static const char *const bname[2] = {"standard", "greedy"};
    for (int k = 0; k < 2; k++) {
        if (!bs[k]->ok) continue;
        double x = svg_map(&ax, bs[k]->ev.energy_J), y = svg_map(&ay, bs[k]->ev.latency_s);
        svg_marker(fp, x, y, k + 1, "#ffffff");
        svg_text(fp, x + 9, y + 14, "start", 11, "%s", bname[k]);
    }
    /* colour bar */
    for (int i = 0; i < 50; i++) {
        svg_ramp(1.0 - i / 49.0, col);
        fprintf(fp, "<rect x=\"680\" y=\"%.1f\" width=\"14\" height=\"%.2f\" fill=\"%s\"/>\n",
                70 + i * plot_h / 50.0, plot_h / 50.0 + 0.3, col);
    }
    svg_text(fp, 700, 78, "start", 10, "1");
    svg_text(fp, 700, 70 + plot_h, "start", 10, "0");
    svg_text(fp, 680, 60, "start", 11, "underutilization");
    /* legend */
    svg_marker(fp, 760, 90, 0, "#21918c");
    svg_text(fp, 772, 94, "start", 11, "front plan");
    svg_marker(fp, 760, 112, 1, "#ffffff");
    svg_text(fp, 772, 116, "start", 11, "standard baseline");
    svg_marker(fp, 760, 134, 2, "#ffffff");
    svg_text(fp, 772, 138, "start", 11, "greedy baseline");
    fprintf(fp, "<circle cx=\"760\" cy=\"156\" r=\"7\" fill=\"none\" stroke=\"#d00\" stroke-width=\"2\"/>\n");
    svg_text(fp, 772, 160, "start", 11, "recommended (%s)",
             (isfinite(o->max_latency_s) || isfinite(o->max_energy_J)) ? "within limits" : "knee");
    svg_text(fp, 740, 190, "start", 11, "energy %.4g J", rev->energy_J);
    svg_text(fp, 740, 206, "start", 11, "latency %.4g s", rev->latency_s);
    svg_text(fp, 740, 222, "start", 11, "%.4g J/token", rev->energy_J / ((double)wl->gen_tokens * wl->samples));
    svg_text(fp, 740, 238, "start", 11, "peak junction %.3g C", rev->peak_temp_C);

    /* the recommended plan's device map: units x work units, per phase */
    const qeil_assignment *a = qeil_front_plan(f, rec);
    svg_text(fp, 20, map_top - 24, "start", 13, "Recommended plan #%zu: which unit runs each work unit", rec);
    const double x0 = 170, cw = fmin(22.0, (W - 30 - x0) / (double)n);
    int row = 0;
    for (int ph = 0; ph < 2; ph++) {
        const uint8_t *dev = ph ? a->dc_unit : a->pf_unit;
        for (int d = 0; d < pf->n_units; d++, row++) {
            double y = map_top + row * row_h;
            svg_text(fp, x0 - 6, y + 12, "end", 11, "%s %s%s", ph ? "decode" : "prefill", pf->units[d].name,
                     o->pp.energy.healthy[d] ? "" : " (failed)");
            fprintf(fp, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>\n", x0, y,
                    cw * n, row_h - 2, row % 2 ? "#fafafa" : "#f0f0f0");
            for (uint32_t w = 0; w < n; w++)
                if (dev[w] == d)
                    fprintf(fp, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>\n",
                            x0 + w * cw, y, cw > 2 ? cw - 1 : cw, row_h - 2, svg_category(d));
        }
    }
    double yl = map_top + row * row_h + 14;
    svg_text(fp, x0, yl, "start", 10, "emb");
    svg_text(fp, x0 + cw * n, yl, "end", 10, "head");
    svg_text(fp, x0 + cw * n / 2, yl, "middle", 10, "blocks 0..%u", n > 2 ? n - 3 : 0);
    svg_text(fp, 20, yl + 22, "start", 10,
             "qeil %s; modeled by the energy model on profile coefficients (docs/energy-model.md)",
             qeil_version());
    svg_end(fp);
    int bad = ferror(fp);
    if (fclose(fp) != 0) bad = 1;
    return bad ? -1 : 0;
}

static void print_csv(const qeil_platform *pf, const qeil_workload *wl, const qeil_front *f,
                      size_t rec)
{
    printf("index,energy_J,latency_s,underutilization,peak_temp_C,avg_power_W,batch,"
           "recommended,provenance,prefill_map,decode_map\n");
    char pm[4096], dm[4096];
    for (size_t i = 0; i < qeil_front_size(f); i++) {
        const qeil_eval *ev = qeil_front_eval(f, i);
        const qeil_assignment *a = qeil_front_plan(f, i);
        device_map(pf, wl, a->pf_unit, pm, sizeof pm);
        device_map(pf, wl, a->dc_unit, dm, sizeof dm);
        printf("%zu,%.17g,%.17g,%.17g,%.17g,%.17g,%u,%d,modeled,\"%s\",\"%s\"\n", i, ev->energy_J,
               ev->latency_s, ev->underutil, ev->peak_temp_C, ev->avg_power_W, a->batch,
               i == rec, pm, dm);
    }
}

static void print_json(const plan_opts *o, const qeil_platform *pf, const qeil_model_desc *md,
                       const qeil_workload *wl, const qeil_front *f, size_t rec,
                       const baseline *std_b, const baseline *greedy_b, double search_s)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "version", qeil_version());
    cJSON_AddStringToObject(root, "command", "plan");
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->pp.seed);
    cJSON_AddStringToObject(root, "seed", seed); /* string: a u64 does not fit a double */
    cJSON_AddStringToObject(root, "method", qeil_plan_method_name(o->pp.method));
    cJSON_AddNumberToObject(root, "iters", o->pp.iters);
    cJSON_AddStringToObject(root, "provenance", "modeled");
    cJSON_AddItemToObject(root, "platform", platform_json(pf));
    cJSON *m = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(m, "name", md->name);
    cJSON_AddStringToObject(m, "arch", qeil_arch_name(md->arch));
    cJSON_AddNumberToObject(m, "blocks", md->n_layers);
    cJSON_AddNumberToObject(m, "weight_B", qeil_model_weight_bytes(md));
    cJSON *w = cJSON_AddObjectToObject(root, "workload");
    cJSON_AddNumberToObject(w, "prompt_tokens", wl->prompt_tokens);
    cJSON_AddNumberToObject(w, "gen_tokens", wl->gen_tokens);
    cJSON_AddNumberToObject(w, "samples", wl->samples);
    cJSON_AddBoolToObject(w, "fitted_to_context", o->fitted);
    cJSON *units = cJSON_AddObjectToObject(root, "units");
    cJSON_AddStringToObject(units, "energy", "J");
    cJSON_AddStringToObject(units, "latency", "s");
    cJSON_AddStringToObject(units, "temperature", "C");
    cJSON_AddStringToObject(units, "power", "W");
    cJSON_AddNumberToObject(root, "evaluations", (double)qeil_front_evaluations(f));
    cJSON_AddNumberToObject(root, "search_time_s", search_s);
    cJSON_AddNumberToObject(root, "recommended", (double)rec);
    cJSON *failed = cJSON_AddArrayToObject(root, "failed_units");
    for (int d = 0; d < pf->n_units; d++)
        if (!o->pp.energy.healthy[d]) cJSON_AddItemToArray(failed, cJSON_CreateString(pf->units[d].name));
    cJSON *front = cJSON_AddArrayToObject(root, "front");
    for (size_t i = 0; i < qeil_front_size(f); i++)
        cJSON_AddItemToArray(front, plan_json(pf, wl, qeil_front_plan(f, i), qeil_front_eval(f, i)));
    cJSON *bl = cJSON_AddObjectToObject(root, "baselines");
    if (std_b->ok) cJSON_AddItemToObject(bl, "standard", plan_json(pf, wl, &std_b->a, &std_b->ev));
    if (greedy_b->ok) cJSON_AddItemToObject(bl, "greedy", plan_json(pf, wl, &greedy_b->a, &greedy_b->ev));
    if (cli_json_print(root) != 0) fputs("qeil: out of memory printing JSON\n", stderr);
    cJSON_Delete(root);
}

int cmd_plan(int argc, char **argv)
{
    plan_opts o;
    memset(&o, 0, sizeof o);
    o.platform = QEIL_DEFAULT_PLATFORM;
    o.model = QEIL_DEFAULT_MODEL;
    o.wp = qeil_workload_default_params();
    o.pp = qeil_plan_default_params();
    o.max_latency_s = INFINITY;
    o.max_energy_J = INFINITY;
    o.out = CLI_OUT_TABLE;
    int rc = cli_opt_parse(&plan_cmd, argc, argv, &o);
    if (rc != CLI_OK) return rc == CLI_OPT_HELP ? CLI_OK : rc;

    qeil_ctx *ctx = cli_ctx_create();
    if (!ctx) return cli_fail(CMD, "out of memory");
    qeil_platform pf;
    qeil_model_desc md;
    qeil_workload wl;
    qeil_front *f = NULL;
    rc = CLI_FAIL;
    if (qeil_platform_load(ctx, o.platform, &pf) != QEIL_OK ||
        qeil_model_load(ctx, o.model, &md) != QEIL_OK) {
        cli_fail(CMD, "%s", qeil_ctx_errmsg(ctx));
        goto out;
    }
    for (int k = 0; k < o.n_fail; k++) {
        int found = -1;
        for (int d = 0; d < pf.n_units; d++)
            if (strcmp(pf.units[d].name, o.fail[k]) == 0) found = d;
        if (found < 0) {
            rc = cli_usage_error(CMD, "--fail: platform %s has no unit '%s'", pf.name, o.fail[k]);
            goto out;
        }
        o.pp.energy.healthy[found] = 0;
    }
    fit_defaults(&o, md.ctx_max);
    if (qeil_workload_build(ctx, &md, &o.wp, &wl) != QEIL_OK) {
        rc = cli_usage_error(CMD, "%s", qeil_ctx_errmsg(ctx));
        goto out;
    }
    progress_state ps = {isatty(2), -1};
    if (o.pp.method == QEIL_METHOD_EXHAUSTIVE) {
        double n_plans = 0;
        if (qeil_plan_count(ctx, &pf, &wl, &o.pp, &n_plans) != QEIL_OK) {
            cli_fail(CMD, "%s", qeil_ctx_errmsg(ctx));
            goto out;
        }
        if (n_plans > EXHAUSTIVE_LIMIT && !o.force) {
            rc = cli_usage_error(CMD, "--method exhaustive: %.3g plans to evaluate (minutes at a few "
                                      "us each) is above the limit of %.0e; pass --force to run it, "
                                      "or use pgsam", n_plans, EXHAUSTIVE_LIMIT);
            goto out;
        }
        fprintf(stderr, "qeil plan: exhaustive: evaluating %.3g plans\n", n_plans);
        o.pp.progress = on_progress;
        o.pp.progress_user = &ps;
    }
    double t0 = cli_now_s();
    if (qeil_plan_search(ctx, &pf, &wl, &o.pp, &f) != QEIL_OK) {
        cli_fail(CMD, "%s", qeil_ctx_errmsg(ctx));
        goto out;
    }
    double search_s = cli_now_s() - t0;
    size_t rec = qeil_front_knee(f);
    if (isfinite(o.max_latency_s) || isfinite(o.max_energy_J)) {
        rec = qeil_front_best_under(f, o.max_latency_s, o.max_energy_J);
        if (rec == SIZE_MAX) {
            double fastest = INFINITY;
            for (size_t i = 0; i < qeil_front_size(f); i++)
                fastest = fmin(fastest, qeil_front_eval(f, i)->latency_s);
            cli_fail(CMD, "no plan on the front meets --max-latency %g s / --max-energy %g J "
                          "(fastest %.3f s, cheapest %.2f J)",
                     o.max_latency_s, o.max_energy_J, fastest, qeil_front_eval(f, 0)->energy_J);
            goto out;
        }
    }
    baseline std_b, greedy_b;
    run_baseline(ctx, &pf, &wl, &o.pp, QEIL_METHOD_STANDARD, &std_b);
    run_baseline(ctx, &pf, &wl, &o.pp, QEIL_METHOD_GREEDY, &greedy_b);

    if (o.out == CLI_OUT_JSON)
        print_json(&o, &pf, &md, &wl, f, rec, &std_b, &greedy_b, search_s);
    else if (o.out == CLI_OUT_CSV)
        print_csv(&pf, &wl, f, rec);
    else
        print_table(&o, &pf, &md, &wl, f, rec, &std_b, &greedy_b, search_s);
    if (o.svg && write_svg(o.svg, &o, &pf, &md, &wl, f, rec, &std_b, &greedy_b) != 0) {
        cli_fail(CMD, "--svg: cannot write '%s': %s", o.svg, strerror(errno));
        goto out;
    }
    rc = CLI_OK;
out:
    qeil_front_free(f);
    qeil_ctx_free(ctx);
    return rc;
}
