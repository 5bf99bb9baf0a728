/* cmd_calibrate.c — `qeil calibrate`: run prefill and decode of a model on
 * this machine's CPU over a small grid, fit the CPU unit's η_c, η_m and
 * per-step and per-dispatch overheads (qeil_calib_fit_unit,
 * docs/energy-model.md §10) to the phase times and the engine's per-unit
 * times (the head apart from the rest), write
 * the calibrated profile and print the fidelity table: predicted vs
 * measured, before and after, on the fit points and on held-out points. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "opt.h"
#include "qeil/device.h"
#include "qeil/energy.h"
#include "qeil/engine.h"
#include "qeil/sense.h"
#include "qeil/workload.h"

#define CMD "calibrate"
#define MAX_REPS 100u
#define MAX_PTS 16 /* grid points: fit and held-out (P, N) pairs */

typedef struct {
    const char *model, *platform, *out_path, *sensors_root;
    uint64_t threads, reps;
    int quick;
    int clock; /* 0 wall, 1 cpu */
    cli_output out_fmt;
} calibrate_opts;

#define T calibrate_opts
static const cli_optdef calibrate_table[] = {
    {CLI_STR("--model", "-m", "FILE", "GGUF model", T, model)},
    {CLI_STR("--out", "-o", "FILE", "calibrated profile (JSON), checked before any work", T,
             out_path)},
    {CLI_STR("--platform", NULL, "FILE|NAME",
             "profile to start from (default " QEIL_DEFAULT_PLATFORM "; e.g. from\n"
             "`qeil probe -o FILE`); its first CPU unit is calibrated",
             T, platform)},
    {CLI_U64("--threads", "-t", "N", "worker threads (default 0 = all online CPUs)", T, threads,
             0, QEIL_ENGINE_MAX_THREADS)},
    {CLI_U64("--repetitions", "-r", "R",
             "timed repetitions per point, the fastest taken (default 3; 1..100)", T, reps, 1,
             MAX_REPS)},
    {CLI_FLAG("--quick", NULL,
              "small grid for tests: fit P in {8,32}, held out P = 16, N in\n"
              "{4,8} (default: fit P in {16,64,256,640} x N in {24,48}, held\n"
              "out P in {32,128,512} x N in {16,64}; P + N within the\n"
              "model's context)",
              T, quick)},
    {CLI_ENUM("--clock", NULL, "CLK",
              "wall|cpu (default wall): what a phase's time is; cpu = this\n"
              "process's CPU time over the worker threads, which other\n"
              "processes' load does not inflate (docs/cli.md)",
              T, clock, "wall|cpu")},
    {CLI_STR("--sensors-root", NULL, "DIR", "read energy sensors under DIR instead of /", T,
             sensors_root)},
    {CLI_OUTPUT("table|json (default table)", T, out_fmt, "table|json")},
};
#undef T

static const cli_command calibrate_cmd = {
    CMD,
    "usage: qeil calibrate -m MODEL -o FILE [options]\n\n"
    "Run prefill and decode of MODEL on this machine's CPU over a small grid of\n"
    "prompt lengths P and decode lengths N, fit the CPU unit's achieved fractions of\n"
    "peak (eta_compute from prefill, eta_mem from decode) and its dispatch overheads\n"
    "(step_s per step, op_s per backend call), write the calibrated platform profile\n"
    "to FILE, and print\n"
    "predicted vs measured time per phase before and after calibration, on the fit\n"
    "points and on held-out points (a grid between the fit's, not used for the fit).\n",
    calibrate_table,
    CLI_NOPTS(calibrate_table),
    "example:\n"
    "  qeil probe -o host.json && qeil calibrate -m model.gguf --platform host.json -o cal.json\n",
    NULL,
};

/* This process's CPU time, s (all threads: user + system). */
static double cpu_now_s(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) return NAN;
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of v[0..n) (sorts v); NAN when n is 0. */
static double median(double *v, size_t n)
{
    if (!n) return NAN;
    qsort(v, n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Work-unit groups reported apart: the embedding, the blocks, the head. */
enum { G_EMB, G_BLOCKS, G_HEAD, N_GROUPS };
static const char *const GROUP[N_GROUPS] = {"embedding", "blocks", "head"};

typedef struct {
    uint32_t P, N;
    int held_out;
    qeil_workload wl;
    double meas[2];            /* [phase] fastest wall time over the repetitions, s */
    double meas_g[2][N_GROUPS]; /* [phase][group] the engine's unit times in that repetition */
    double pred[2][2];         /* [before/after][phase], s */
    double pred_g[2][2][N_GROUPS]; /* [before/after][phase][group], s */
    qeil_sense_measure em[2];  /* [phase] measured energy over all repetitions */
} point;

/* Sum of t[w] over the work units of group g (n units: 0, 1..n-2, n-1). */
static double group_sum(const double *t, uint32_t n, int g)
{
    uint32_t lo = g == G_EMB ? 0 : g == G_BLOCKS ? 1 : n - 1;
    uint32_t hi = g == G_EMB ? 1 : g == G_BLOCKS ? n - 1 : n;
    double s = 0;
    for (uint32_t w = lo; w < hi; w++) s += t[w];
    return s;
}

/* The type a unit computes the model's blocks in: the work's type, else
 * the next wider supported one (as the energy model does, §1.2). */
static int effective_dtype(const qeil_unit *u, int dt)
{
    static const int wider[QEIL_DT_COUNT] = {[QEIL_DT_INT4] = QEIL_DT_INT8,
                                             [QEIL_DT_INT8] = QEIL_DT_F16,
                                             [QEIL_DT_F16] = QEIL_DT_F32, [QEIL_DT_F32] = -1};
    for (int t = dt; t >= 0; t = wider[t])
        if (u->peak_ops[t] > 0) return t;
    return -1;
}

static int predict(const qeil_platform *pf, int cpu, point *p, int which)
{
    qeil_assignment a;
    qeil_assignment_uniform(&a, pf, &p->wl, cpu, 1);
    qeil_energy_params ep = qeil_energy_default_params();
    qeil_eval ev;
    if (qeil_energy_eval(pf, &p->wl, &a, &ep, &ev) != QEIL_OK || !isfinite(ev.prefill_s) ||
        !isfinite(ev.decode_s))
        return -1;
    p->pred[which][0] = ev.prefill_s;
    p->pred[which][1] = ev.decode_s;
    for (int g = 0; g < N_GROUPS; g++) {
        p->pred_g[which][0][g] = group_sum(ev.pf_time_s, p->wl.n_units, g);
        p->pred_g[which][1][g] = group_sum(ev.dc_time_s, p->wl.n_units, g);
    }
    return 0;
}

/* Median |pred/meas − 1| over the points of a set (held 0/1) and phase
 * (0, 1, or -1 = both) under `which` (0 before, 1 after). */
static double med_err(const point *pts, int n, int held, int phase, int which)
{
    double v[2 * MAX_PTS];
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        if (pts[i].held_out != held) continue;
        for (int ph = 0; ph < 2; ph++)
            if (phase < 0 || phase == ph)
                v[k++] = fabs(pts[i].pred[which][ph] / pts[i].meas[ph] - 1);
    }
    return median(v, k);
}

static void num_or_null(cJSON *o, const char *k, double v)
{
    if (isfinite(v)) cJSON_AddNumberToObject(o, k, v);
    else cJSON_AddNullToObject(o, k);
}

static const char *const PHASE[2] = {"prefill", "decode"};
static const char *const SET[2] = {"fit", "held_out"};
static const char *const WHEN[2] = {"before", "after"};

int cmd_calibrate(int argc, char **argv)
{
    calibrate_opts opts = {.platform = QEIL_DEFAULT_PLATFORM, .reps = 3, .out_fmt = CLI_OUT_TABLE};
    int prc = cli_opt_parse(&calibrate_cmd, argc, argv, &opts);
    if (prc != CLI_OK) return prc == CLI_OPT_HELP ? CLI_OK : prc;
    const char *model = opts.model, *platform = opts.platform, *out_path = opts.out_path;
    const char *sensors_root = opts.sensors_root;
    const uint64_t threads = opts.threads, reps = opts.reps;
    const int quick = opts.quick, use_cpu = opts.clock == 1;
    const cli_output out_fmt = opts.out_fmt;
    if (!model) return cli_usage_error(CMD, "-m FILE is required");
    if (!out_path) return cli_usage_error(CMD, "-o FILE is required (the calibrated profile)");
    if (out_path[0] == '-')
        return cli_usage_error(CMD, "--out: '%s' looks like an option, not a file name", out_path);

    int rc = CLI_FAIL;
    char *target = NULL;
    qeil_engine *e = NULL;
    int32_t *toks = NULL;
    float *logits = NULL;
    qeil_sense_cpu_meter *em = NULL;
    qeil_ctx *ctx = cli_ctx_create();
    if (!ctx) return cli_fail(CMD, "out of memory");
    /* the output is checked before minutes of measuring */
    if (cli_out_path(CMD, "--out", out_path, &target) != CLI_OK) goto out;

    qeil_platform pf, cal;
    if (qeil_platform_load(ctx, platform, &pf) != QEIL_OK) {
        cli_fail(CMD, "--platform: %s", qeil_ctx_errmsg(ctx));
        goto out;
    }
    int cpu = -1;
    for (int u = 0; u < pf.n_units && cpu < 0; u++)
        if (pf.units[u].kind == QEIL_UNIT_CPU) cpu = u;
    if (cpu < 0) {
        cli_fail(CMD, "--platform %s: no CPU unit in platform '%s' (calibrate runs on this "
                      "machine's CPU)",
                 platform, pf.name);
        goto out;
    }
    qeil_model_desc md;
    if (qeil_model_load(ctx, model, &md) != QEIL_OK) {
        cli_fail(CMD, "%s", qeil_ctx_errmsg(ctx));
        goto out;
    }

    /* ---- the grid: the held-out points are the issue's grid, P ∈ {32,
     * 128, 512} × N ∈ {16, 64}; the fit points lie around them (P ∈ {16,
     * 64, 256, 640} × N ∈ {24, 48}), so no held-out prefill is one the fit
     * has seen and the fit's P span the held-out ones. Points with P + N
     * past the model's context are skipped. ---- */
    static const uint32_t Pf_full[] = {16, 64, 256, 640}, Nf_full[] = {24, 48};
    static const uint32_t Ph_full[] = {32, 128, 512}, Nh_full[] = {16, 64};
    static const uint32_t Pf_quick[] = {8, 32}, Nf_quick[] = {4, 8};
    static const uint32_t Ph_quick[] = {16}, Nh_quick[] = {4, 8};
    const struct {
        const uint32_t *P, *N;
        int nP, nN;
    } grid[2] = {
        {quick ? Pf_quick : Pf_full, quick ? Nf_quick : Nf_full, quick ? 2 : 4, 2},
        {quick ? Ph_quick : Ph_full, quick ? Nh_quick : Nh_full, quick ? 1 : 3, 2},
    };
    point pts[MAX_PTS];
    memset(pts, 0, sizeof pts);
    int n = 0, nPfit = 0;
    uint32_t maxP = 0, maxN = 0;
    for (int set = 0; set < 2; set++)
        for (int i = 0; i < grid[set].nP; i++) {
            int any = 0;
            for (int j = 0; j < grid[set].nN; j++) {
                const uint32_t P = grid[set].P[i], N = grid[set].N[j];
                if ((uint64_t)P + N > md.ctx_max) {
                    fprintf(stderr, "qeil calibrate: P = %u, N = %u skipped: P + N exceeds the "
                                    "model's context of %u\n", P, N, md.ctx_max);
                    continue;
                }
                pts[n].P = P;
                pts[n].N = N;
                pts[n].held_out = set;
                n++;
                any = 1;
                if (P > maxP) maxP = P;
                if (N > maxN) maxN = N;
            }
            nPfit += any && set == 0;
        }
    if (nPfit < 2) {
        cli_fail(CMD, "the model's context of %u tokens holds fewer than two of the fit's prompt "
                      "lengths (need P + N tokens, P from %u)", md.ctx_max, grid[0].P[1]);
        goto out;
    }

    qeil_engine_params ep = qeil_engine_default_params();
    ep.n_threads = (int)threads;
    ep.n_ctx = maxP + maxN;
    ep.n_seq = 1;
    if (qeil_engine_open(ctx, model, &ep, &e) != QEIL_OK) {
        cli_fail(CMD, "%s", qeil_ctx_errmsg(ctx));
        goto out;
    }
    md = *qeil_engine_desc(e);
    const uint32_t n_vocab = qeil_engine_n_vocab(e);
    toks = qeil_malloc(ctx, sizeof *toks * (maxP + maxN));
    logits = qeil_malloc(ctx, sizeof *logits * n_vocab);
    if (!toks || !logits) {
        cli_fail(CMD, "out of memory");
        goto out;
    }
    qeil_sense_meter_params emp = qeil_sense_meter_default_params();
    emp.root = sensors_root;
    if (qeil_sense_cpu_meter_create(ctx, &emp, &em) != QEIL_OK) {
        cli_fail(CMD, "sensors: %s", qeil_ctx_errmsg(ctx));
        goto out;
    }
    /* fixed pseudo-random ids: speed does not depend on which */
    qeil_rng rng;
    qeil_rng_seed(&rng, 42);
    for (uint32_t i = 0; i < maxP + maxN; i++) toks[i] = (int32_t)qeil_rng_below(&rng, n_vocab);

    /* warm-up: touch every weight page, start the workers */
    qeil_engine_seq_reset(e, 0);
    if (qeil_engine_eval(e, 0, toks, 8, logits, 0) != QEIL_OK ||
        qeil_engine_eval(e, 0, toks + 8, 1, logits, 0) != QEIL_OK) {
        cli_fail(CMD, "warm-up: %s", qeil_ctx_errmsg(ctx));
        goto out;
    }

    /* ---- measure: repetitions outside, points inside, so a burst of load
     * from other processes spreads over the points instead of landing on
     * one; each phase keeps its fastest repetition (load only adds time)
     * and the engine's per-unit times of that repetition ---- */
    for (int i = 0; i < n; i++) {
        pts[i].em[0] = pts[i].em[1] = (qeil_sense_measure){1, 0, 0, 0};
        pts[i].meas[0] = pts[i].meas[1] = INFINITY;
    }
    const uint32_t nu = md.n_layers + 2;
    double ut[QEIL_MAX_WUNITS];
    /* --clock cpu: a phase's CPU time over the workers; the engine's
     * per-unit (wall) times are scaled by the phase's CPU/wall ratio */
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    const double n_workers = threads ? (double)threads : online > 0 ? (double)online : 1.0;
    for (uint32_t r = 0; r < reps; r++) {
        for (int i = 0; i < n; i++) {
            point *p = &pts[i];
            qeil_sense_measure ms;
            qeil_engine_seq_reset(e, 0);
            qeil_engine_unit_times_reset(e);
            qeil_sense_cpu_meter_start(em);
            double c0 = use_cpu ? cpu_now_s() : 0, t0 = cli_now_s();
            /* the prompt in chunks of the engine's batch, as generation does */
            for (uint32_t at = 0; at < p->P;) {
                uint32_t c = p->P - at < ep.n_batch ? p->P - at : ep.n_batch;
                if (qeil_engine_eval(e, 0, toks + at, c, at + c == p->P ? logits : NULL, 0) !=
                    QEIL_OK) {
                    cli_fail(CMD, "prefill: %s", qeil_ctx_errmsg(ctx));
                    goto out;
                }
                at += c;
            }
            double t1 = cli_now_s(), c1 = use_cpu ? cpu_now_s() : 0;
            qeil_sense_cpu_meter_stop(em, &ms);
            p->em[0] = qeil_sense_measure_add(p->em[0], ms);
            double m = use_cpu ? (c1 - c0) / n_workers : t1 - t0;
            if (m < p->meas[0]) {
                p->meas[0] = m;
                qeil_engine_unit_times(e, ut, nu);
                for (int g = 0; g < N_GROUPS; g++) p->meas_g[0][g] = group_sum(ut, nu, g) * m / (t1 - t0);
            }
            qeil_engine_unit_times_reset(e);
            qeil_sense_cpu_meter_start(em);
            double c2 = use_cpu ? cpu_now_s() : 0, t2 = cli_now_s();
            for (uint32_t k = 0; k < p->N; k++)
                if (qeil_engine_eval(e, 0, toks + p->P + k, 1, logits, 0) != QEIL_OK) {
                    cli_fail(CMD, "decode: %s", qeil_ctx_errmsg(ctx));
                    goto out;
                }
            double t3 = cli_now_s(), c3 = use_cpu ? cpu_now_s() : 0;
            qeil_sense_cpu_meter_stop(em, &ms);
            p->em[1] = qeil_sense_measure_add(p->em[1], ms);
            m = use_cpu ? (c3 - c2) / n_workers : t3 - t2;
            if (m < p->meas[1]) {
                p->meas[1] = m;
                qeil_engine_unit_times(e, ut, nu);
                for (int g = 0; g < N_GROUPS; g++) p->meas_g[1][g] = group_sum(ut, nu, g) * m / (t3 - t2);
            }
        }
    }
    /* a prefill does not depend on N: the points of one set with the same
     * P share their fastest prefill (twice the repetitions) */
    for (int i = 0; i < n; i++)
        for (int k = 0; k < n; k++)
            if (pts[k].P == pts[i].P && pts[k].held_out == pts[i].held_out &&
                pts[k].meas[0] < pts[i].meas[0]) {
                pts[i].meas[0] = pts[k].meas[0];
                memcpy(pts[i].meas_g[0], pts[k].meas_g[0], sizeof pts[i].meas_g[0]);
            }
    for (int i = 0; i < n; i++) {
        point *p = &pts[i];
        fprintf(stderr, "qeil calibrate: P=%u N=%u: prefill %.4f s, decode %.4f s (fastest of %u)\n",
                p->P, p->N, p->meas[0], p->meas[1], (unsigned)reps);
        qeil_workload_params wp = qeil_workload_default_params();
        wp.prompt_tokens = p->P;
        wp.gen_tokens = p->N;
        wp.samples = 1;
        if (qeil_workload_build(ctx, &md, &wp, &p->wl) != QEIL_OK) {
            cli_fail(CMD, "workload: %s", qeil_ctx_errmsg(ctx));
            goto out;
        }
        if (predict(&pf, cpu, p, 0) != 0) {
            cli_fail(CMD, "platform '%s' cannot run this model on unit '%s' (the energy model "
                          "finds the plan infeasible or unreachable)",
                     pf.name, pf.units[cpu].name);
            goto out;
        }
    }

    /* ---- fit on the fit points ---- */
    /* per fit point and phase: the whole phase (wall time, all units) and
     * the head alone (the engine's time): one large matrix against a dozen
     * small calls per block, which separates the overheads from η_m */
    qeil_calib_point cp[4 * MAX_PTS];
    size_t ncp = 0;
    for (int i = 0; i < n; i++)
        if (!pts[i].held_out)
            for (int ph = 0; ph < 2; ph++) {
                cp[ncp++] = (qeil_calib_point){&pts[i].wl, ph, pts[i].meas[ph], 0, 0};
                if (pts[i].meas_g[ph][G_HEAD] > 0)
                    cp[ncp++] = (qeil_calib_point){&pts[i].wl, ph, pts[i].meas_g[ph][G_HEAD],
                                                   nu - 1, 1};
            }
    qeil_calib_fit fit;
    if (qeil_calib_fit_unit(&pf.units[cpu], cp, ncp, &fit) != QEIL_OK) {
        cli_fail(CMD, "fit: the measured times do not determine the coefficients");
        goto out;
    }
    cal = pf;
    qeil_unit *cu = &cal.units[cpu];
    const qeil_unit *bu = &pf.units[cpu];
    char note[512] = "";
    size_t nl = 0;
    /* η above 1: the unit ran beyond its profile's peak; the peak (of the
     * model's type) or the bandwidth is raised instead, and said so */
    if (fit.fit_compute) {
        int t = effective_dtype(cu, md.unit_dtype[md.n_layers > 0 ? 1 : 0]);
        if (fit.eta_compute > 1 && t >= 0) {
            cu->peak_ops[t] *= fit.eta_compute / cu->eta_compute;
            cu->eta_compute = 1;
            nl += (size_t)snprintf(note + nl, sizeof note - nl,
                                   "prefill ran at %.2fx the profile's %s peak: peak raised, "
                                   "eta_compute 1. ",
                                   fit.eta_compute, qeil_dtype_name((qeil_dtype)t));
        } else {
            cu->eta_compute = fit.eta_compute;
        }
    }
    if (fit.fit_mem) {
        if (fit.eta_mem > 1) {
            cu->mem_bw_Bps *= fit.eta_mem / cu->eta_mem;
            cu->eta_mem = 1;
            if (cal.pools[cu->pool].bw_Bps < cu->mem_bw_Bps) cal.pools[cu->pool].bw_Bps = cu->mem_bw_Bps;
            if (nl < sizeof note)
                nl += (size_t)snprintf(note + nl, sizeof note - nl,
                                       "decode ran at %.2fx the profile's bandwidth: bandwidth "
                                       "raised, eta_mem 1. ",
                                       fit.eta_mem);
        } else {
            cu->eta_mem = fit.eta_mem;
        }
    }
    if (fit.fit_step) cu->step_s = fit.step_s;
    if (fit.fit_op) cu->op_s = fit.op_s;
    if (fit.fit_attn_pf) cu->attn_pf_flop_s = fit.attn_pf_flop_s;
    if (fit.fit_attn_dc) cu->attn_dc_flop_s = fit.attn_dc_flop_s;
    cu->src_compute = QEIL_SRC_MEASURED;
    if (qeil_platform_validate(ctx, &cal) != QEIL_OK) {
        cli_fail(CMD, "calibrated profile: %s", qeil_ctx_errmsg(ctx));
        goto out;
    }
    for (int i = 0; i < n; i++)
        if (predict(&cal, cpu, &pts[i], 1) != 0) {
            cli_fail(CMD, "the calibrated profile cannot run this model");
            goto out;
        }
    if (qeil_platform_write_file(ctx, &cal, target) != QEIL_OK) {
        cli_fail(CMD, "--out: %s", qeil_ctx_errmsg(ctx));
        goto out;
    }

    /* ---- report ---- */
    const char *mprov = qeil_sense_cpu_meter_provenance(em), *mcov = qeil_sense_cpu_meter_covers(em);
    if (out_fmt == CLI_OUT_JSON) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "version", qeil_version());
        cJSON_AddStringToObject(j, "model", model);
        cJSON_AddStringToObject(j, "platform", pf.name);
        cJSON_AddStringToObject(j, "unit", bu->name);
        cJSON_AddStringToObject(j, "out", out_path);
        cJSON_AddNumberToObject(j, "threads", (double)threads);
        cJSON_AddNumberToObject(j, "repetitions", (double)reps);
        cJSON_AddStringToObject(j, "clock", use_cpu ? "cpu" : "wall");
        cJSON_AddBoolToObject(j, "quick", quick);
        cJSON *co = cJSON_AddObjectToObject(j, "coefficients");
        for (int w = 0; w < 2; w++) {
            const qeil_unit *u = w ? cu : bu;
            cJSON *c = cJSON_AddObjectToObject(co, WHEN[w]);
            cJSON_AddNumberToObject(c, "eta_compute", u->eta_compute);
            cJSON_AddNumberToObject(c, "eta_mem", u->eta_mem);
            cJSON_AddNumberToObject(c, "step_s", u->step_s);
            cJSON_AddNumberToObject(c, "op_s", u->op_s);
            cJSON_AddNumberToObject(c, "attn_pf_flop_s", u->attn_pf_flop_s);
            cJSON_AddNumberToObject(c, "attn_dc_flop_s", u->attn_dc_flop_s);
            cJSON_AddNumberToObject(c, "mem_bw_Bps", u->mem_bw_Bps);
        }
        cJSON *fj = cJSON_AddObjectToObject(co, "fit");
        cJSON_AddNumberToObject(fj, "eta_compute", fit.eta_compute);
        cJSON_AddNumberToObject(fj, "eta_mem", fit.eta_mem);
        cJSON_AddNumberToObject(fj, "step_s", fit.step_s);
        cJSON_AddBoolToObject(fj, "fit_compute", fit.fit_compute);
        cJSON_AddBoolToObject(fj, "fit_mem", fit.fit_mem);
        cJSON_AddBoolToObject(fj, "fit_step", fit.fit_step);
        cJSON_AddNumberToObject(fj, "op_s", fit.op_s);
        cJSON_AddBoolToObject(fj, "fit_op", fit.fit_op);
        cJSON_AddNumberToObject(fj, "attn_pf_flop_s", fit.attn_pf_flop_s);
        cJSON_AddNumberToObject(fj, "attn_dc_flop_s", fit.attn_dc_flop_s);
        cJSON_AddBoolToObject(fj, "fit_attn_pf", fit.fit_attn_pf);
        cJSON_AddBoolToObject(fj, "fit_attn_dc", fit.fit_attn_dc);
        cJSON_AddNumberToObject(fj, "rms_rel_error", fit.rms_rel_error);
        cJSON_AddStringToObject(fj, "note", note);
        cJSON *pa = cJSON_AddArrayToObject(j, "points");
        for (int i = 0; i < n; i++) {
            for (int ph = 0; ph < 2; ph++) {
                const point *p = &pts[i];
                cJSON *o = cJSON_CreateObject();
                cJSON_AddNumberToObject(o, "P", p->P);
                cJSON_AddNumberToObject(o, "N", p->N);
                cJSON_AddStringToObject(o, "set", SET[p->held_out]);
                cJSON_AddStringToObject(o, "unit", bu->name);
                cJSON_AddStringToObject(o, "phase", PHASE[ph]);
                cJSON_AddNumberToObject(o, "measured_s", p->meas[ph]);
                cJSON_AddNumberToObject(o, "before_s", p->pred[0][ph]);
                cJSON_AddNumberToObject(o, "after_s", p->pred[1][ph]);
                cJSON_AddNumberToObject(o, "before_error", p->pred[0][ph] / p->meas[ph] - 1);
                cJSON_AddNumberToObject(o, "after_error", p->pred[1][ph] / p->meas[ph] - 1);
                /* the engine's per-unit times against the model's */
                cJSON *gj = cJSON_AddObjectToObject(o, "work_units");
                for (int g = 0; g < N_GROUPS; g++) {
                    cJSON *x = cJSON_AddObjectToObject(gj, GROUP[g]);
                    cJSON_AddNumberToObject(x, "measured_s", p->meas_g[ph][g]);
                    cJSON_AddNumberToObject(x, "before_s", p->pred_g[0][ph][g]);
                    cJSON_AddNumberToObject(x, "after_s", p->pred_g[1][ph][g]);
                }
                cli_meas_json(o, "measured_energy", p->em[ph].valid, p->em[ph].energy_J,
                              p->em[ph].t_s, (uint64_t)(ph ? p->N : p->P) * reps, mprov, mcov);
                cJSON_AddItemToArray(pa, o);
            }
        }
        cJSON *fd = cJSON_AddObjectToObject(j, "fidelity");
        for (int s = 0; s < 2; s++) {
            cJSON *sj = cJSON_AddObjectToObject(fd, SET[s]);
            for (int w = 0; w < 2; w++) {
                cJSON *wj = cJSON_AddObjectToObject(sj, WHEN[w]);
                num_or_null(wj, "median_abs_error", med_err(pts, n, s, -1, w));
                cJSON *uj = cJSON_AddObjectToObject(cJSON_AddObjectToObject(wj, "units"), bu->name);
                num_or_null(uj, "median_abs_error", med_err(pts, n, s, -1, w));
                for (int ph = 0; ph < 2; ph++)
                    num_or_null(cJSON_AddObjectToObject(uj, PHASE[ph]), "median_abs_error",
                                med_err(pts, n, s, ph, w));
            }
        }
        if (cli_json_print(j) != 0) fputs("qeil: out of memory printing JSON\n", stderr);
        cJSON_Delete(j);
    } else {
        printf("calibrated unit '%s' of platform '%s' on %s (%u repetitions, fastest, %s clock)\n",
               bu->name, pf.name, cli_term(model), (unsigned)reps, use_cpu ? "cpu" : "wall");
        printf("  eta_compute %.4g -> %.4g%s, eta_mem %.4g -> %.4g%s\n", bu->eta_compute,
               cu->eta_compute, fit.fit_compute ? "" : " (not constrained)", bu->eta_mem,
               cu->eta_mem, fit.fit_mem ? "" : " (not constrained)");
        printf("  step_s %.3g -> %.3g s%s, op_s %.3g -> %.3g s%s\n", bu->step_s, cu->step_s,
               fit.fit_step ? "" : " (not constrained)", bu->op_s, cu->op_s,
               fit.fit_op ? "" : " (not constrained)");
        printf("  attn_pf_flop_s %.3g -> %.3g s%s, attn_dc_flop_s %.3g -> %.3g s%s\n",
               bu->attn_pf_flop_s, cu->attn_pf_flop_s, fit.fit_attn_pf ? "" : " (not constrained)",
               bu->attn_dc_flop_s, cu->attn_dc_flop_s, fit.fit_attn_dc ? "" : " (not constrained)");
        if (note[0]) printf("  note: %s\n", note);
        printf("\n  %-5s %-5s %-8s %-4s %-8s %11s %11s %8s %11s %8s\n", "P", "N", "set", "unit",
               "phase", "measured s", "before s", "err %", "after s", "err %");
        for (int i = 0; i < n; i++)
            for (int ph = 0; ph < 2; ph++) {
                const point *p = &pts[i];
                printf("  %-5u %-5u %-8s %-4s %-8s %11.5f %11.5f %+8.1f %11.5f %+8.1f\n", p->P,
                       p->N, SET[p->held_out], bu->name, PHASE[ph], p->meas[ph], p->pred[0][ph],
                       100 * (p->pred[0][ph] / p->meas[ph] - 1), p->pred[1][ph],
                       100 * (p->pred[1][ph] / p->meas[ph] - 1));
            }
        printf("\n  median |error|        %10s %10s %10s %10s\n", "fit before", "fit after",
               "held before", "held after");
        for (int ph = -1; ph < 2; ph++) {
            printf("  %-20s", ph < 0 ? "all phases" : PHASE[ph]);
            for (int s = 0; s < 2; s++)
                for (int w = 0; w < 2; w++) {
                    double v = med_err(pts, n, s, ph, w);
                    if (isfinite(v)) printf(" %9.1f%%", 100 * v);
                    else printf(" %10s", "-");
                }
            printf("\n");
        }
        printf("\n  per work unit (the engine's times), after calibration:\n");
        printf("  %-5s %-5s %-8s %-8s %-10s %11s %11s %8s\n", "P", "N", "set", "phase", "units",
               "measured s", "after s", "err %");
        for (int i = 0; i < n; i++)
            for (int ph = 0; ph < 2; ph++)
                for (int g = 0; g < N_GROUPS; g++) {
                    const point *p = &pts[i];
                    printf("  %-5u %-5u %-8s %-8s %-10s %11.5f %11.5f %+8.1f\n", p->P, p->N,
                           SET[p->held_out], PHASE[ph], GROUP[g], p->meas_g[ph][g],
                           p->pred_g[1][ph][g], 100 * (p->pred_g[1][ph][g] / p->meas_g[ph][g] - 1));
                }
        if (mprov) printf("\n  energy meter: %s covers %s\n", mprov, mcov);
        else printf("\n  measured energy: n/a (%s)\n", mcov);
        printf("\n  wrote %s\n", out_path);
    }
    rc = CLI_OK;
out:
    free(target);
    qeil_sense_cpu_meter_free(em);
    qeil_free(ctx, toks);
    qeil_free(ctx, logits);
    qeil_engine_free(e);
    qeil_ctx_free(ctx);
    return rc;
}
