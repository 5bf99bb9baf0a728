/* probe_svg.c — `qeil probe --svg`: roofline pictures of a platform's units
 * (probe_svg.h; docs/probe.md, "Roofline picture"). */
#include "probe_svg.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "svg.h"
#include "qeil/energy.h"
#include "qeil/workload.h"

/* ---- the model's points -------------------------------------------------- */

/* Defaults that do not fit a small model's context C shrink to fit, as in
 * `qeil plan`: P = 4/5 of C, N = what is left; given values never change
 * (one that does not fit is the workload's error, naming it). */
static void fit_defaults(qeil_workload_params *wp, int p_given, int n_given, uint32_t C)
{
    if (C < 2 || wp->prompt_tokens + wp->gen_tokens <= C) return;
    if (!p_given) {
        uint32_t p = n_given ? (wp->gen_tokens < C ? C - wp->gen_tokens : 1)
                             : (uint32_t)((uint64_t)C * 4 / 5);
        if (p < 1) p = 1;
        if (p < wp->prompt_tokens) wp->prompt_tokens = p;
    }
    if (!n_given && wp->prompt_tokens < C && wp->prompt_tokens + wp->gen_tokens > C)
        wp->gen_tokens = C - wp->prompt_tokens;
}

static int load_model(const char *cmd, qeil_ctx *ctx, probe_svg *s)
{
    qeil_model_desc *md = qeil_malloc(ctx, sizeof *md);
    qeil_workload *wl = qeil_malloc(ctx, sizeof *wl);
    int rc = CLI_OK;
    if (!md || !wl) {
        rc = cli_fail(cmd, "out of memory");
        goto out;
    }
    if (qeil_model_load(ctx, s->model, md) != QEIL_OK) {
        rc = cli_fail(cmd, "%s", qeil_ctx_errmsg(ctx));
        goto out;
    }
    qeil_workload_params wp = qeil_workload_default_params();
    if (s->p_given) wp.prompt_tokens = s->prompt_tokens;
    if (s->n_given) wp.gen_tokens = s->gen_tokens;
    fit_defaults(&wp, s->p_given, s->n_given, md->ctx_max);
    if (qeil_workload_build(ctx, md, &wp, wl) != QEIL_OK) {
        rc = cli_usage_error(cmd, "%s", qeil_ctx_errmsg(ctx));
        goto out;
    }
    /* Bytes as the energy model counts them (src/energy/eval.c): a unit's
     * prefill moves its weights, K/V written and read, and activations; a
     * decode step of one sequence the same at batch 1. */
    double big = -1;
    for (uint32_t w = 0; w < wl->n_units; w++) {
        const qeil_unit_work *u = &wl->u[w];
        s->pf_bytes += u->pf_weight_B + u->pf_kv_write_B + u->pf_kv_read_B + u->pf_act_B;
        s->dc_bytes += u->dc_weight_B + u->dc_kv_read_B + u->dc_kv_write_B + u->dc_act_B;
        if (u->pf_flops > big) big = u->pf_flops, s->dtype = wl->dtype[w];
    }
    s->pf_flops = qeil_workload_prefill_flops(wl);
    s->dc_flops = qeil_workload_decode_flops_per_token(wl);
    snprintf(s->model_name, sizeof s->model_name, "%s", md->name);
    s->P = wl->prompt_tokens;
    s->N = wl->gen_tokens;
    s->mean_ctx = wl->mean_ctx;
    s->have_model = 1;
out:
    qeil_free(ctx, wl);
    qeil_free(ctx, md);
    return rc;
}

/* The type a unit computes the model's work in: the model's if the unit
 * has it, else the next wider one (int4 -> int8 -> f16 -> f32), as the
 * energy model does (docs/energy-model.md §1.2); -1 if none. */
static int effective_dtype(const qeil_unit *u, int dt)
{
    static const int wider[QEIL_DT_COUNT] = {[QEIL_DT_INT4] = QEIL_DT_INT8,
                                             [QEIL_DT_INT8] = QEIL_DT_F16,
                                             [QEIL_DT_F16] = QEIL_DT_F32,
                                             [QEIL_DT_F32] = -1};
    for (int t = dt; t >= 0; t = wider[t])
        if (u->peak_ops[t] > 0) return t;
    return -1;
}

/* "302 Tops/s", "91.5 Gops/s": three significant digits. */
static const char *fmt_ops(char *buf, size_t n, double v)
{
    if (v >= 1e12) snprintf(buf, n, "%.3g Tops/s", v / 1e12);
    else if (v >= 1e9) snprintf(buf, n, "%.3g Gops/s", v / 1e9);
    else snprintf(buf, n, "%.3g Mops/s", v / 1e6);
    return buf;
}

/* Attainable ops/s at intensity ai on unit u computing in type t. */
static double attainable(const qeil_unit *u, int t, double ai)
{
    return fmin(u->peak_ops[t], ai * u->mem_bw_Bps);
}

/* ---- options of the measurement refused with --platform ------------------ */

/* Every option but the drawing's (--svg, --platform, -m/--model,
 * --prompt-tokens, --gen-tokens, each with its value, or as --name=VALUE) is
 * an option of the measurement: with --platform nothing is measured, so it
 * would be ignored; refuse it by name instead. The option table has
 * checked every value already. */
static int refuse_measurement_options(const char *cmd, int argc, char **argv)
{
    static const char *const ours[] = {"--svg", "--platform", "--model", "-m", "--prompt-tokens",
                                       "--gen-tokens"};
    for (int i = 1; i < argc; i++) {
        int mine = 0;
        for (size_t k = 0; k < sizeof ours / sizeof *ours && !mine; k++) {
            size_t n = strlen(ours[k]);
            if (strcmp(argv[i], ours[k]) == 0) mine = 2; /* the value follows */
            else if (strncmp(argv[i], ours[k], n) == 0 && argv[i][n] == '=') mine = 1;
        }
        if (!mine)
            return cli_usage_error(cmd,
                                   "--platform draws an existing profile and measures nothing: "
                                   "'%s' does not apply (drop --platform to measure)",
                                   argv[i]);
        if (mine == 2) i++;
    }
    return CLI_OK;
}

/* ---- the picture ---------------------------------------------------------- */

static const char *dtype_colour(int t)
{
    /* f32, f16, int8, int4: Okabe–Ito, fixed per type across panels */
    static const char *const c[QEIL_DT_COUNT] = {"#0072B2", "#009E73", "#E69F00", "#CC79A7"};
    return c[t];
}

static void marker(FILE *fp, double x, double y, int decode, const char *fill)
{
    if (decode)
        fprintf(fp, "<path d=\"M%.1f %.1f L%.1f %.1f L%.1f %.1f Z\" fill=\"%s\" stroke=\"#000\"/>\n", x,
                y - 7, x + 7, y + 6, x - 7, y + 6, fill);
    else
        fprintf(fp, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"6\" fill=\"%s\" stroke=\"#000\"/>\n", x, y, fill);
}

/* One panel: unit u's roofs over the shared axis ranges (x in ops/byte, y
 * in ops/s), the model's points on the roof of the type it runs in. */
static void panel(FILE *fp, const qeil_platform *pf, int d, const probe_svg *s, double x0,
                  double y0, double w, double h, double ai_lo, double ai_hi, double op_lo,
                  double op_hi)
{
    const qeil_unit *u = &pf->units[d];
    svg_axis ax = svg_axis_fit(ai_lo, ai_hi, x0 + 60, x0 + w - 10);
    svg_axis ay = svg_axis_fit(op_lo, op_hi, y0 + h - 56, y0 + 24);
    /* always log-log, over exactly the shared range */
    ax.log = ay.log = 1;
    ax.lo = ai_lo, ax.hi = ai_hi;
    ay.lo = op_lo, ay.hi = op_hi;
    svg_text(fp, x0 + 60, y0 + 14, "start", 13, "%s (%s, pool %s; compute figures: %s)", u->name,
             qeil_unit_kind_name(u->kind), pf->pools[u->pool].name,
             qeil_source_name(u->src_compute));
    svg_axes(fp, &ax, &ay, "arithmetic intensity, ops/byte", "attainable ops/s");
    /* the bandwidth slope over the whole range, dashed; each roof on top */
    double bw = u->mem_bw_Bps;
    double xa = ai_lo, xb = fmin(ai_hi, op_hi / bw);
    fprintf(fp, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#999\" "
                "stroke-dasharray=\"4 3\"/>\n",
            svg_map(&ax, xa), svg_map(&ay, xa * bw), svg_map(&ax, xb), svg_map(&ay, xb * bw));
    double lx = fmax(ai_lo * 1.5, op_lo * 2 / bw); /* where the slope is inside the box */
    fprintf(fp, "<g transform=\"translate(%.1f %.1f) rotate(%.1f)\">", svg_map(&ax, lx),
            svg_map(&ay, lx * bw) - 5,
            -atan2(svg_map(&ay, ai_lo * bw) - svg_map(&ay, ai_hi * bw),
                   svg_map(&ax, ai_hi) - svg_map(&ax, ai_lo)) * 180.0 / M_PI);
    svg_text(fp, 0, 0, "start", 10, "%.4g GB/s", bw / 1e9);
    fputs("</g>\n", fp);
    /* roofs from the highest down; types with the same peak share a line
     * and a label, and labels keep 11 px apart */
    double last_y = -INFINITY;
    int seen[QEIL_DT_COUNT] = {0};
    for (;;) {
        int t = -1;
        for (int k = 0; k < QEIL_DT_COUNT; k++)
            if (!seen[k] && u->peak_ops[k] > 0 && (t < 0 || u->peak_ops[k] > u->peak_ops[t])) t = k;
        if (t < 0) break;
        double peak = u->peak_ops[t];
        char names[64] = "";
        for (int k = 0; k < QEIL_DT_COUNT; k++)
            if (!seen[k] && u->peak_ops[k] == peak) {
                seen[k] = 1;
                size_t l = strlen(names);
                snprintf(names + l, sizeof names - l, "%s%s", l ? ", " : "", qeil_dtype_name((qeil_dtype)k));
            }
        double xr = fmax(ai_lo, fmin(ai_hi, qeil_ridge_point(u, (qeil_dtype)t)));
        double yp = svg_map(&ay, peak);
        fprintf(fp, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"%.1f,%.1f %.1f,%.1f %.1f,%.1f\"/>\n",
                dtype_colour(t), svg_map(&ax, ai_lo), svg_map(&ay, attainable(u, t, ai_lo)),
                svg_map(&ax, xr), svg_map(&ay, attainable(u, t, xr)), svg_map(&ax, ai_hi), yp);
        double ly = fmax(yp - 3, last_y + 11);
        char b[32];
        svg_text(fp, x0 + w - 12, ly, "end", 10, "%s %s", names, fmt_ops(b, sizeof b, peak));
        last_y = ly;
    }
    if (!s->have_model) return;
    int e = effective_dtype(u, (int)s->dtype);
    if (e < 0) {
        svg_text(fp, x0 + 60, y0 + h - 8, "start", 11, "no data type for %s: the model cannot run here",
                 qeil_dtype_name(s->dtype));
        return;
    }
    const double ai[2] = {s->pf_flops / s->pf_bytes, s->dc_flops / s->dc_bytes};
    double a[2];
    for (int ph = 0; ph < 2; ph++) {
        a[ph] = attainable(u, e, ai[ph]);
        double x = svg_map(&ax, ai[ph]), y = svg_map(&ay, a[ph]);
        marker(fp, x, y, ph, dtype_colour(e));
        if (ph) svg_text(fp, x + 9, y + 15, "start", 10, "decode");
        else svg_text(fp, x - 9, y - 8, "end", 10, "prefill"); /* clear of the roof labels */
    }
    char b0[32], b1[32];
    svg_text(fp, x0 + 60, y0 + h - 8, "start", 10, "in %s: prefill %s (%s-bound), decode %s (%s-bound)",
             qeil_dtype_name((qeil_dtype)e), fmt_ops(b0, sizeof b0, a[0]),
             ai[0] < u->peak_ops[e] / bw ? "memory" : "compute", fmt_ops(b1, sizeof b1, a[1]),
             ai[1] < u->peak_ops[e] / bw ? "memory" : "compute");
}

static int draw(const char *path, const probe_svg *s, const qeil_platform *pf, int measured)
{
    FILE *fp = fopen(path, "w");
    if (!fp) return -1;
    const int n = pf->n_units, cols = n > 1 ? 2 : 1;
    const int rows = (n + cols - 1) / cols;
    const double W = 980, pw = (W - 20) / cols, ph = 350, top = 78;
    const double H = top + rows * ph + 40;

    /* shared ranges: every roof's ridge and the model's points inside, a
     * decade of slope below the lowest ridge */
    double ridge_lo = INFINITY, ridge_hi = 0, op_lo = INFINITY, op_hi = 0;
    for (int d = 0; d < n; d++) {
        const qeil_unit *u = &pf->units[d];
        for (int t = 0; t < QEIL_DT_COUNT; t++) {
            if (!(u->peak_ops[t] > 0)) continue;
            ridge_lo = fmin(ridge_lo, qeil_ridge_point(u, (qeil_dtype)t));
            ridge_hi = fmax(ridge_hi, qeil_ridge_point(u, (qeil_dtype)t));
            op_hi = fmax(op_hi, u->peak_ops[t]);
        }
    }
    double ai_lo = ridge_lo / 30, ai_hi = ridge_hi * 10;
    if (s->have_model) {
        double a_pf = s->pf_flops / s->pf_bytes, a_dc = s->dc_flops / s->dc_bytes;
        ai_lo = fmin(ai_lo, fmin(a_pf, a_dc) / 3);
        ai_hi = fmax(ai_hi, fmax(a_pf, a_dc) * 3);
    }
    /* ticks at powers of ten: start and end on them */
    ai_lo = pow(10, floor(log10(ai_lo)));
    ai_hi = pow(10, ceil(log10(ai_hi)));
    for (int d = 0; d < n; d++) op_lo = fmin(op_lo, ai_lo * pf->units[d].mem_bw_Bps);
    op_hi *= 1.5; /* room for the roof labels */
    op_lo = pow(10, floor(log10(op_lo)));
    op_hi = pow(10, ceil(log10(op_hi)));

    char title[512];
    snprintf(title, sizeof title, "qeil probe: roofline of %s", pf->name);
    svg_begin(fp, (int)W, (int)H, title);
    svg_text(fp, 20, 24, "start", 15, "%s", title);
    if (s->have_model)
        svg_text(fp, 20, 42, "start", 11,
                 "%s, %s: prefill of P=%u tokens (%.3g ops/byte) and one decode step, batch 1, at "
                 "context %.0f (%.3g ops/byte); model computes in %s",
                 s->model_name, measured ? "measured profile" : "profile", s->P, s->pf_flops / s->pf_bytes,
                 s->mean_ctx, s->dc_flops / s->dc_bytes, qeil_dtype_name(s->dtype));
    else
        svg_text(fp, 20, 42, "start", 11, "%s; -m MODEL adds a model's prefill and decode points",
                 measured ? "measured on this machine" : "from the profile");
    /* legend: types, then the markers */
    double lx = 20;
    for (int t = 0; t < QEIL_DT_COUNT; t++) {
        fprintf(fp, "<line x1=\"%.1f\" y1=\"60\" x2=\"%.1f\" y2=\"60\" stroke=\"%s\" stroke-width=\"2\"/>\n",
                lx, lx + 18, dtype_colour(t));
        svg_text(fp, lx + 22, 64, "start", 11, "%s roof", qeil_dtype_name((qeil_dtype)t));
        lx += 90;
    }
    fprintf(fp, "<line x1=\"%.1f\" y1=\"60\" x2=\"%.1f\" y2=\"60\" stroke=\"#999\" stroke-dasharray=\"4 3\"/>\n",
            lx, lx + 18);
    svg_text(fp, lx + 22, 64, "start", 11, "bandwidth");
    lx += 100;
    if (s->have_model) {
        marker(fp, lx + 6, 60, 0, "#fff");
        svg_text(fp, lx + 16, 64, "start", 11, "prefill");
        marker(fp, lx + 76, 60, 1, "#fff");
        svg_text(fp, lx + 86, 64, "start", 11, "decode (on the roof of the type the unit computes it in)");
    }
    for (int d = 0; d < n; d++)
        panel(fp, pf, d, s, 10 + (d % cols) * pw, top + (d / cols) * ph, pw, ph, ai_lo, ai_hi, op_lo,
              op_hi);
    svg_text(fp, 20, H - 14, "start", 10,
             "qeil %s; roofs at the profile's peak_ops and mem_bw_Bps (Williams et al. 2009); the "
             "planner scales them by eta_compute, eta_mem (docs/energy-model.md)",
             qeil_version());
    svg_end(fp);
    int bad = ferror(fp);
    if (fclose(fp) != 0) bad = 1;
    return bad ? -1 : 0;
}

int probe_svg_write(const char *cmd, const probe_svg *s, const qeil_platform *pf)
{
    if (!s->svg) return CLI_OK;
    if (draw(s->target[0] ? s->target : s->svg, s, pf, !s->platform) != 0)
        return cli_fail(cmd, "--svg: cannot write '%s': %s", s->svg, strerror(errno));
    fprintf(stderr, "qeil %s: roofline of %s (%d unit%s) drawn to %s\n", cmd, pf->name, pf->n_units,
            pf->n_units > 1 ? "s" : "", cli_term(s->svg));
    return CLI_OK;
}

/* The table --platform prints: each roof, then where the model's points
 * land. */
static void print_roofs(const probe_svg *s, const qeil_platform *pf)
{
    printf("roofline of %s (%d unit%s; profile peaks, before eta)\n", pf->name, pf->n_units,
           pf->n_units > 1 ? "s" : "");
    printf("  %-14s %-5s %-5s %14s %12s %12s\n", "unit", "kind", "type", "peak Gops/s", "bw GB/s",
           "ridge ops/B");
    for (int d = 0; d < pf->n_units; d++) {
        const qeil_unit *u = &pf->units[d];
        for (int t = 0; t < QEIL_DT_COUNT; t++)
            if (u->peak_ops[t] > 0)
                printf("  %-14s %-5s %-5s %14.1f %12.1f %12.4g\n", u->name,
                       qeil_unit_kind_name(u->kind), qeil_dtype_name((qeil_dtype)t),
                       u->peak_ops[t] / 1e9, u->mem_bw_Bps / 1e9, qeil_ridge_point(u, (qeil_dtype)t));
    }
    if (!s->have_model) return;
    double ai[2] = {s->pf_flops / s->pf_bytes, s->dc_flops / s->dc_bytes};
    printf("\n%s (computes in %s): prefill of P=%u tokens %.4g ops/B; decode step (batch 1, "
           "context %.0f) %.4g ops/B\n",
           cli_term(s->model_name), qeil_dtype_name(s->dtype), s->P, ai[0], s->mean_ctx, ai[1]);
    printf("  %-14s %-7s %-5s %17s  %s\n", "unit", "phase", "type", "attainable Gops/s", "bound");
    for (int d = 0; d < pf->n_units; d++) {
        const qeil_unit *u = &pf->units[d];
        int e = effective_dtype(u, (int)s->dtype);
        for (int ph = 0; ph < 2; ph++) {
            if (e < 0) {
                printf("  %-14s %-7s %-5s %17s  %s\n", u->name, ph ? "decode" : "prefill", "-", "-",
                       "no data type the model can run in");
                continue;
            }
            printf("  %-14s %-7s %-5s %17.1f  %s\n", u->name, ph ? "decode" : "prefill",
                   qeil_dtype_name((qeil_dtype)e), attainable(u, e, ai[ph]) / 1e9,
                   ai[ph] < u->peak_ops[e] / u->mem_bw_Bps ? "memory" : "compute");
        }
    }
}

int probe_svg_begin(const char *cmd, int argc, char **argv, probe_svg *s, int *done)
{
    *done = 0;
    if (!s->svg) {
        const char *need = s->platform ? "--platform" : s->model ? "--model"
                         : s->p_given  ? "--prompt-tokens" : s->n_given ? "--gen-tokens" : NULL;
        if (need) return cli_usage_error(cmd, "%s: only with --svg FILE (it sets what is drawn)", need);
        return CLI_OK;
    }
    if ((s->p_given || s->n_given) && !s->model)
        return cli_usage_error(cmd, "%s: only with -m MODEL (the workload of a model)",
                               s->p_given ? "--prompt-tokens" : "--gen-tokens");
    if (s->platform) {
        int rc = refuse_measurement_options(cmd, argc, argv);
        if (rc != CLI_OK) return rc;
    }
    /* the file and the model are checked before minutes of measuring */
    char *target = NULL;
    if (cli_out_path(cmd, "--svg", s->svg, &target) != CLI_OK) return CLI_FAIL;
    snprintf(s->target, sizeof s->target, "%s", target);
    int too_long = strlen(target) >= sizeof s->target;
    free(target);
    if (too_long) return cli_fail(cmd, "--svg: path too long (at most %zu bytes)", sizeof s->target - 1);

    qeil_ctx *ctx = cli_ctx_create();
    if (!ctx) return cli_fail(cmd, "out of memory");
    int rc = s->model ? load_model(cmd, ctx, s) : CLI_OK;
    if (rc == CLI_OK && s->platform) {
        *done = 1;
        qeil_platform *pf = qeil_malloc(ctx, sizeof *pf);
        if (!pf) rc = cli_fail(cmd, "out of memory");
        else if (qeil_platform_load(ctx, s->platform, pf) != QEIL_OK)
            rc = cli_fail(cmd, "--platform: %s", qeil_ctx_errmsg(ctx));
        else {
            print_roofs(s, pf);
            fflush(stdout);
            rc = probe_svg_write(cmd, s, pf);
        }
        qeil_free(ctx, pf);
    }
    qeil_ctx_free(ctx);
    return rc;
}
