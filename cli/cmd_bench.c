/* cmd_bench.c — `qeil bench`: prefill and decode speed of a GGUF model with
 * repetitions, set against the machine's roofline: the decode bound implied
 * by the measured memory bandwidth (bytes per decode token from the workload
 * model) and the prefill FLOP rate against the probed compute peak. */
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
#include "qeil/engine.h"
#include "qeil/sampler.h"
#include "qeil/sampler.h"
#include "qeil/sense.h"
#include "qeil/workload.h"

#define CMD "bench"
#define MAX_TOKENS 65536u
#define MAX_REPS 1000u
#define LIVE_WS_B ((size_t)256 << 20) /* qeil probe's default largest set */
#define LIVE_TIME_S 0.2               /* per stream and measurement */

typedef struct {
    const char *model, *profile, *sensors_root, *placement, *plan;
    uint64_t n_prompt, n_gen, threads, reps;
    double bw_GBps;
    int live;
    cli_output out_fmt;
} bench_opts;

#define T bench_opts
static const cli_optdef bench_table[] = {
    {CLI_STR("--model", "-m", "FILE", "GGUF model", T, model)},
    {CLI_U64("--n-prompt", "-p", "P", "prompt tokens (default 128; 1..65536)", T, n_prompt, 1,
             MAX_TOKENS)},
    {CLI_U64("--n-gen", "-n", "N", "decode tokens (default 64; 1..65536)", T, n_gen, 1,
             MAX_TOKENS)},
    {CLI_U64("--threads", "-t", "N", "worker threads (default 0 = all online CPUs)", T, threads,
             0, QEIL_ENGINE_MAX_THREADS)},
    {CLI_U64("--repetitions", "-r", "R",
             "measured repetitions after one warm-up (default 3; 1..1000)", T, reps, 1,
             MAX_REPS)},
    {CLI_F64("--bw", NULL, "GBPS", "memory bandwidth in GB/s (1e9 B/s) for the decode bound", T,
             bw_GBps, 1e-3, 1e5)},
    {CLI_STR("--profile", NULL, "FILE",
             "platform profile JSON from `qeil probe -o FILE`: bandwidth\n"
             "and compute peak of its first CPU unit, or of the unit\n"
             "standing for the device --placement puts the blocks on\n"
             "(neither: the probe runs first with -t threads, ~12 s)",
             T, profile)},
    {CLI_FLAG("--bw-live", NULL,
              "also measure the probe's read-only and triad streams\n"
              "(256 MiB, 0.2 s each, -t threads; 0 = every CPU this\n"
              "process may use) right before and after each\n"
              "repetition's decode, and set each decode against the\n"
              "bandwidth of its own minute (for machines whose memory\n"
              "is shared: a profile from minutes ago may not hold)",
              T, live)},
    {CLI_STR("--sensors-root", NULL, "DIR",
             "read energy sensors under DIR instead of / (fixture trees)", T, sensors_root)},
    {CLI_STR("--placement", NULL, "SPEC",
             "where the work units run, e.g. all:vk0 or\n"
             "emb..b7:cpu,b8..head:vk0 (default all:cpu; devices:\n"
             "qeil devices; the roofline stays the CPU's), or per\n"
             "phase prefill=SPEC;decode=SPEC",
             T, placement)},
    {CLI_STR("--plan", NULL, "FILE|auto",
             "run a plan's prefill and decode maps (its platform:\n"
             "--profile; auto without --profile plans on a quick\n"
             "probe); not with --placement. Transfers between devices\n"
             "are reported (docs/cli.md \"Running a plan\")",
             T, plan)},
    {CLI_OUTPUT("table|json (default table)", T, out_fmt, "table|json")},
};
#undef T

static const cli_command bench_cmd = {
    CMD,
    "usage: qeil bench -m FILE [options]\n\n"
    "Measure prefill (a P-token prompt) and decode (N tokens, one at a time) speed\n"
    "with repetitions (mean +/- sd), and compare with this machine's roofline:\n"
    "  decode bound  = bandwidth / (weight bytes + KV bytes read and written per token)\n"
    "  prefill rate  = FLOPs of the P-token prefill / time, against the probed peak\n"
    "Bytes and FLOPs come from the workload model (docs/workload.md).\n",
    bench_table,
    CLI_NOPTS(bench_table),
    "examples:\n"
    "  qeil bench -m model.gguf -t 2\n"
    "  qeil probe -o probe.json && qeil bench -m model.gguf --profile probe.json\n"
    "  qeil bench -m model.gguf -t 2 --profile probe.json --bw-live --output json\n",
    NULL,
};

/* VmRSS, RssAnon and RssFile of this process in bytes, from one read of
 * /proc/self/status (0 when /proc is unavailable). */
static void proc_rss(double *rss, double *anon, double *file)
{
    *rss = *anon = *file = 0;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) *rss = 1024.0 * strtod(line + 6, NULL);
        else if (strncmp(line, "RssAnon:", 8) == 0) *anon = 1024.0 * strtod(line + 8, NULL);
        else if (strncmp(line, "RssFile:", 8) == 0) *file = 1024.0 * strtod(line + 8, NULL);
    }
    fclose(f);
}

static void mean_sd(const double *x, uint32_t n, double *mean, double *sd)
{
    double s = 0, s2 = 0;
    for (uint32_t i = 0; i < n; i++) s += x[i];
    *mean = s / n;
    for (uint32_t i = 0; i < n; i++) s2 += (x[i] - *mean) * (x[i] - *mean);
    *sd = n > 1 ? sqrt(s2 / (n - 1)) : 0; /* sample standard deviation */
}

typedef struct {
    int tty;
    char last[96];
} progress_state;

/* On a terminal one line redrawn in place; in a log one line per new
 * measurement (as qeil probe does), not carriage returns. */
static void progress(void *user, const char *what, double frac)
{
    progress_state *ps = user;
    if (ps->tty) {
        fprintf(stderr, "\rqeil bench: probing %-40.40s %3.0f%%", what, 100 * frac);
        if (strcmp(what, "done") == 0) fprintf(stderr, "\n");
        fflush(stderr);
        return;
    }
    if (strcmp(ps->last, what) == 0) return;
    snprintf(ps->last, sizeof ps->last, "%s", what);
    fprintf(stderr, "qeil bench: probing %s (%.0f%%)\n", what, 100 * frac);
}

typedef struct {
    double bw_Bps;              /* bandwidth for the decode bound */
    double peak_ops;            /* compute peak of the prefill's dtype, 0 = unknown */
    const char *peak_dtype;     /* "int8", "f32", ... */
    char source[300];           /* where both came from */
} roofline;

/* The device every block of one phase runs on ("cpu", "vk0", ...; place:
 * engine device ids of the work units, blocks 1..n_layers), or NULL when
 * the blocks are split over devices (or there is no placement: the CPU). */
static const char *phase_device(const uint8_t *place, uint32_t n_layers)
{
    if (!place || n_layers == 0) return NULL;
    for (uint32_t l = 2; l <= n_layers; l++)
        if (place[l] != place[1]) return NULL;
    return qeil_engine_device_name(place[1]);
}

static int is_vulkan_device(const char *dev) { return dev && strncmp(dev, "vk", 2) == 0; }

/* The profile unit that stands for device dev: the one naming it
 * (qeil_unit.device); for the CPU (dev NULL, "cpu" or a core set) a unit
 * naming no device counts too, the first CPU unit (profiles written before
 * units named devices). -1: none. */
static int unit_for_device(const qeil_platform *pf, const char *dev)
{
    for (int i = 0; dev && i < pf->n_units; i++)
        if (strcmp(pf->units[i].device, dev) == 0) return i;
    if (is_vulkan_device(dev)) return -1;
    for (int i = 0; i < pf->n_units; i++)
        if (pf->units[i].kind == QEIL_UNIT_CPU) return i;
    return -1;
}

/* The peak of dtype dt among a unit's or device's rates: int8/int4 on the
 * int8 rate, f16 on the f16 rate, else f32; a rate it lacks (0) falls back
 * to f32, and the dtype named says which was taken. */
static double pick_peak(qeil_dtype dt, double f32, double f16, double int8, const char **name)
{
    *name = qeil_dtype_name(QEIL_DT_F32);
    if ((dt == QEIL_DT_INT8 || dt == QEIL_DT_INT4) && int8 > 0) {
        *name = qeil_dtype_name(QEIL_DT_INT8);
        return int8;
    }
    if (dt == QEIL_DT_F16 && f16 > 0) {
        *name = qeil_dtype_name(QEIL_DT_F16);
        return f16;
    }
    return f32;
}

/* Bandwidth and peak from a profile or, with neither a profile nor --bw, a
 * probe run now; --bw sets the bandwidth (overriding a profile's). The
 * bandwidth is the decode device's (dc_dev), the peak the prefill
 * device's (pf_dev): a Vulkan device's own unit (or its probe), the CPU's
 * where the phase runs on the CPU or is split over devices (NULL). */
static int get_roofline(qeil_ctx *ctx, double bw_GBps, const char *profile, int threads,
                        qeil_dtype dt, const char *pf_dev, const char *dc_dev, roofline *r)
{
    memset(r, 0, sizeof *r);
    r->peak_dtype = qeil_dtype_name(dt);
    if (profile) {
        qeil_platform pf;
        if (qeil_platform_read_file(ctx, profile, &pf) != QEIL_OK)
            return cli_fail(CMD, "--profile: %s", qeil_ctx_errmsg(ctx));
        const int ub = unit_for_device(&pf, dc_dev), up = unit_for_device(&pf, pf_dev);
        if (ub < 0 || up < 0)
            return cli_fail(CMD, "--profile %s: no unit of platform '%s' stands for device %s "
                                 "(the %s runs there; `qeil probe -o FILE` writes one per device)",
                            profile, pf.name, ub < 0 ? dc_dev : pf_dev, ub < 0 ? "decode" : "prefill");
        r->bw_Bps = pf.units[ub].mem_bw_Bps;
        r->peak_ops = pf.units[up].peak_ops[dt];
        if (r->peak_ops <= 0) { /* type unsupported there: compare with f32 */
            r->peak_ops = pf.units[up].peak_ops[QEIL_DT_F32];
            r->peak_dtype = qeil_dtype_name(QEIL_DT_F32);
        }
        if (ub == up)
            snprintf(r->source, sizeof r->source, "profile %.200s (unit %s)", profile,
                     pf.units[ub].name);
        else
            snprintf(r->source, sizeof r->source, "profile %.160s (bandwidth: unit %s; peak: unit %s)",
                     profile, pf.units[ub].name, pf.units[up].name);
    } else if (bw_GBps <= 0) {
        qeil_probe_params pp = qeil_probe_default_params();
        pp.max_threads = threads;
        pp.gpus = 0; /* the CPU's figures, unless a phase runs on a Vulkan device */
        /* the probe's default 0.2 s per measurement: at 50 ms this machine's
         * int8 peak read half and its bandwidth 50 % high (clock ramp-up,
         * too little time at the largest working sets) */
        progress_state ps = {isatty(2), ""};
        pp.progress = progress;
        pp.progress_user = &ps;
        static qeil_probe_result pr; /* large: not on the stack */
        memset(&pr, 0, sizeof pr);
        const int gpu_bw = is_vulkan_device(dc_dev), gpu_peak = is_vulkan_device(pf_dev);
        qeil_status st = QEIL_OK;
        if (!gpu_bw || !gpu_peak) st = qeil_probe_run(ctx, &pp, &pr);
        if (st == QEIL_OK && (gpu_bw || gpu_peak)) {
            pp.gpus = 1;
            st = qeil_probe_gpus(ctx, &pp, &pr);
        }
        if (st != QEIL_OK) {
            if (ps.tty) fputc('\n', stderr); /* end the progress line */
            return cli_fail(CMD, "probe: %s", qeil_ctx_errmsg(ctx));
        }
        const qeil_probe_gpu *gb = NULL, *gp = NULL;
        for (int i = 0; i < pr.n_gpus; i++) {
            if (gpu_bw && strcmp(pr.gpus[i].device, dc_dev) == 0) gb = &pr.gpus[i];
            if (gpu_peak && strcmp(pr.gpus[i].device, pf_dev) == 0) gp = &pr.gpus[i];
        }
        if ((gpu_bw && (!gb || gb->error[0])) || (gpu_peak && (!gp || gp->error[0]))) {
            const qeil_probe_gpu *g = gpu_bw && (!gb || gb->error[0]) ? gb : gp;
            const char *dev = gpu_bw && (!gb || gb->error[0]) ? dc_dev : pf_dev;
            return cli_fail(CMD, "probe: device %s not measured: %s", dev,
                            g ? g->error : pr.gpu_status[0] ? pr.gpu_status : "no such device");
        }
        const int t = pr.n_threads - 1;
        if (gb) r->bw_Bps = gb->bw_Bps;
        else r->bw_Bps = pr.dram_bw_Bps;
        if (gp) {
            r->peak_ops = pick_peak(dt, gp->f32_flops, gp->f16_flops, gp->int8_ops, &r->peak_dtype);
        } else {
            r->peak_ops = dt == QEIL_DT_INT8 || dt == QEIL_DT_INT4 ? pr.int8_ops[t] : pr.f32_flops[t];
            if (dt == QEIL_DT_INT4) r->peak_dtype = qeil_dtype_name(QEIL_DT_INT8);
            if (dt == QEIL_DT_F16) r->peak_dtype = qeil_dtype_name(QEIL_DT_F32);
        }
        if (gb || gp)
            snprintf(r->source, sizeof r->source, "probe run now (bandwidth: %s; peak: %s)",
                     gb ? gb->device : "cpu", gp ? gp->device : "cpu");
        else
            snprintf(r->source, sizeof r->source, "probe run now (%d threads%s)", pr.n_threads,
                     pr.dram_n_points > 0 ? "" : "; DRAM not reached: a cache rate");
    }
    if (bw_GBps > 0) {
        r->bw_Bps = bw_GBps * 1e9;
        size_t len = strlen(r->source);
        snprintf(r->source + len, sizeof r->source - len, "%s--bw %g GB/s", len ? "; bandwidth " : "",
                 bw_GBps);
    }
    return CLI_OK;
}

int cmd_bench(int argc, char **argv)
{
    bench_opts o = {.n_prompt = 128, .n_gen = 64, .reps = 3, .out_fmt = CLI_OUT_TABLE};
    int prc = cli_opt_parse(&bench_cmd, argc, argv, &o);
    if (prc != CLI_OK) return prc == CLI_OPT_HELP ? CLI_OK : prc;
    const char *model = o.model, *profile = o.profile, *sensors_root = o.sensors_root;
    const char *placement = o.placement, *plan = o.plan;
    const uint64_t n_prompt = o.n_prompt, n_gen = o.n_gen, threads = o.threads, reps = o.reps;
    const double bw_GBps = o.bw_GBps;
    const int live = o.live;
    const cli_output out_fmt = o.out_fmt;
    if (!model) return cli_usage_error(CMD, "-m FILE is required");
    if (plan && placement) return cli_usage_error(CMD, "--plan and --placement exclude each other");
    /* the meter's threads are pinned, one per CPU this process may use */
    const int n_cpu = qeil_probe_cpu_count();
    if (live && threads > (uint64_t)n_cpu)
        return cli_usage_error(CMD,
                               "-t: %llu is out of range with --bw-live (allowed 0..%d: the CPUs "
                               "this process may run on)",
                               (unsigned long long)threads, n_cpu);

    int rc = CLI_FAIL;
    qeil_ctx *ctx = cli_ctx_create();
    if (!ctx) return cli_fail(CMD, "out of memory");
    qeil_engine *e = NULL;
    int32_t *toks = NULL;
    float *logits = NULL;
    qeil_sampler *smp = NULL;
    double *smp_s = NULL; /* per repetition: seconds in the sampler during decode */
    /* decode seconds per token in the embedding, all blocks, the output
     * layer (the engine's own clock per unit), mean over repetitions */
    double unit_s[3] = {0, 0, 0};
    double *pf_tps = NULL, *dc_tps = NULL, *pf_s = NULL, *live_rd = NULL, *live_tr = NULL;
    double *live_edge = NULL; /* read before, read after, triad before, triad after: R each */
    qeil_probe_meter *meter = NULL;
    /* measured energy of the measured repetitions, summed per phase */
    qeil_sense_cpu_meter *em = NULL;
    qeil_sense_measure pf_meas = {1, 0, 0, 0}, dc_meas = {1, 0, 0, 0}, ms;

    /* The model's shape first (to size the workload and pick the peak's
     * type) without opening the engine: a probe must run before
     * the weights occupy memory and caches. */
    qeil_model_desc md;
    if (qeil_model_load(ctx, model, &md) != QEIL_OK) {
        cli_fail(CMD, "%s", qeil_ctx_errmsg(ctx));
        goto out;
    }
    const uint32_t P = (uint32_t)n_prompt, N = (uint32_t)n_gen, R = (uint32_t)reps;
    if ((uint64_t)P + N > md.ctx_max) {
        rc = cli_usage_error(CMD, "-p %u + -n %u = %u tokens exceed the model's context of %u", P,
                             N, P + N, md.ctx_max);
        goto out;
    }
    static char plan_spec[2048], plan_src[512];
    if (plan) { /* the plan's platform: --profile (or its catalog name) */
        if ((rc = cli_plan_spec(CMD, ctx, plan, profile, model, plan_spec, sizeof plan_spec, plan_src,
                                sizeof plan_src)) != CLI_OK)
            goto out;
        placement = plan_spec;
        rc = CLI_FAIL;
    }
    const char *pf_dev = NULL, *dc_dev = NULL; /* where the blocks run (NULL: the CPU, or split) */
    if (placement) { /* checked before the probe runs */
        uint8_t place[QEIL_MAX_WUNITS], place_dc[QEIL_MAX_WUNITS];
        if (qeil_placement_parse_phases(ctx, placement, md.n_layers, place, place_dc,
                                        qeil_model_n_units(&md)) != QEIL_OK) {
            rc = cli_usage_error(CMD, "--placement '%s': %s", placement, qeil_ctx_errmsg(ctx));
            goto out;
        }
        pf_dev = phase_device(place, md.n_layers);
        dc_dev = phase_device(place_dc, md.n_layers);
    }
    roofline rl;
    if (get_roofline(ctx, bw_GBps, profile, (int)threads, md.unit_dtype[md.n_layers > 0 ? 1 : 0],
                     pf_dev, dc_dev, &rl) != CLI_OK)
        goto out;

    qeil_engine_params ep = qeil_engine_default_params();
    ep.n_threads = (int)threads;
    ep.n_ctx = P + N;
    ep.n_seq = 1;
    if (P < ep.n_batch) ep.n_batch = P; /* the prompt in one batch when it fits */
    if (qeil_engine_open(ctx, model, &ep, &e) != QEIL_OK) {
        cli_fail(CMD, "%s", qeil_ctx_errmsg(ctx));
        goto out;
    }
    if ((rc = cli_placement(CMD, ctx, e, placement)) != CLI_OK) goto out;
    rc = CLI_FAIL;
    /* the engine's own description (its KV type) for the byte counts */
    md = *qeil_engine_desc(e);
    qeil_workload_params wp = qeil_workload_default_params();
    wp.prompt_tokens = P;
    wp.gen_tokens = N;
    wp.samples = 1;
    qeil_workload wl;
    if (qeil_workload_build(ctx, &md, &wp, &wl) != QEIL_OK) {
        cli_fail(CMD, "workload: %s", qeil_ctx_errmsg(ctx));
        goto out;
    }
    double w_B = 0, kv_B = 0;
    for (uint32_t u = 0; u < wl.n_units; u++) {
        w_B += wl.u[u].dc_weight_B;
        kv_B += wl.u[u].dc_kv_read_B + wl.u[u].dc_kv_write_B;
    }
    double pf_flops = qeil_workload_prefill_flops(&wl);

    /* Tokens: fixed pseudo-random ids (seed 42): speed does not depend on
     * which ids, and a fixed list makes runs comparable. */
    uint32_t n_vocab = qeil_engine_n_vocab(e);
    const uint32_t n_units = md.n_layers + 2;
    toks = qeil_malloc(ctx, sizeof *toks * (P + N));
    logits = qeil_malloc(ctx, sizeof *logits * n_vocab);
    smp_s = qeil_calloc(ctx, R, sizeof *smp_s);
    pf_tps = qeil_calloc(ctx, R, sizeof *pf_tps);
    dc_tps = qeil_calloc(ctx, R, sizeof *dc_tps);
    pf_s = qeil_calloc(ctx, R, sizeof *pf_s);
    live_rd = qeil_calloc(ctx, R, sizeof *live_rd);
    live_tr = qeil_calloc(ctx, R, sizeof *live_tr);
    live_edge = qeil_calloc(ctx, 4 * (size_t)R, sizeof *live_edge);
    if (!toks || !logits || !smp_s || !pf_tps || !dc_tps || !pf_s || !live_rd || !live_tr || !live_edge) {
        cli_fail(CMD, "out of memory");
        goto out;
    }
    qeil_rng rng;
    qeil_rng_seed(&rng, 42);
    for (uint32_t i = 0; i < P + N; i++) toks[i] = (int32_t)qeil_rng_below(&rng, n_vocab);
    /* Every step does what generation does: the last position's logits
     * (the output layer included) and a greedy pick with the raw
     * log-probability, as `qeil generate --temp 0` and the cascade's
     * samples need. The picked token is not fed back: the fixed ids keep
     * runs comparable, and speed does not depend on which ids. */
    qeil_sampler_params sp = qeil_sampler_default_params();
    sp.temp = 0.0f;
    if (qeil_sampler_create(ctx, &sp, n_vocab, &smp) != QEIL_OK) {
        cli_fail(CMD, "sampler: %s", qeil_ctx_errmsg(ctx));
        goto out;
    }

    /* Warm-up: a short prefill and one decode step touch every weight page
     * (the file is mmapped) and start the worker pool. */
    qeil_engine_seq_reset(e, 0);
    if (qeil_engine_eval(e, 0, toks, P < 8 ? P : 8, logits, 0) != QEIL_OK ||
        qeil_engine_eval(e, 0, toks + P, 1, logits, 0) != QEIL_OK) {
        cli_fail(CMD, "warm-up: %s", qeil_ctx_errmsg(ctx));
        goto out;
    }
    if (live) {
        if (qeil_probe_meter_create(ctx, (int)threads, LIVE_WS_B, &meter) != QEIL_OK) {
            cli_fail(CMD, "--bw-live: %s", qeil_ctx_errmsg(ctx));
            goto out;
        }
    }
    qeil_sense_meter_params emp = qeil_sense_meter_default_params();
    emp.root = sensors_root;
    if (qeil_sense_cpu_meter_create(ctx, &emp, &em) != QEIL_OK) {
        cli_fail(CMD, "sensors: %s", qeil_ctx_errmsg(ctx));
        goto out;
    }
    qeil_engine_transfer_stats_reset(e); /* the measured repetitions' only */
    for (uint32_t r = 0; r < R; r++) {
        qeil_engine_seq_reset(e, 0);
        qeil_sense_cpu_meter_start(em);
        double t0 = cli_now_s();
        if (qeil_engine_eval(e, 0, toks, P, logits, 0) != QEIL_OK) {
            cli_fail(CMD, "prefill: %s", qeil_ctx_errmsg(ctx));
            goto out;
        }
        double t1 = cli_now_s();
        qeil_sense_cpu_meter_stop(em, &ms);
        pf_meas = qeil_sense_measure_add(pf_meas, ms);
        /* live bandwidth: the streams right before and right after decode */
        double rd0 = 0, tr0 = 0, rd1 = 0, tr1 = 0;
        if (meter && qeil_probe_meter_run(meter, LIVE_TIME_S, &rd0, &tr0) != QEIL_OK) {
            cli_fail(CMD, "--bw-live: %s", qeil_ctx_errmsg(ctx));
            goto out;
        }
        qeil_engine_unit_times_reset(e);
        qeil_sense_cpu_meter_start(em);
        double td = cli_now_s(), t_smp = 0;
        for (uint32_t k = 0; k < N; k++) {
            if (qeil_engine_eval(e, 0, toks + P + k, 1, logits, 0) != QEIL_OK) {
                cli_fail(CMD, "decode: %s", qeil_ctx_errmsg(ctx));
                goto out;
            }
            double ts = cli_now_s();
            int32_t tok;
            qeil_sampler_logprob lp;
            if (qeil_sampler_sample(smp, logits, n_vocab, NULL, 0, &tok, &lp) != QEIL_OK) {
                cli_fail(CMD, "sampling: %s", qeil_ctx_errmsg(ctx));
                goto out;
            }
            t_smp += cli_now_s() - ts;
        }
        double t2 = cli_now_s();
        qeil_sense_cpu_meter_stop(em, &ms);
        dc_meas = qeil_sense_measure_add(dc_meas, ms);
        smp_s[r] = t_smp;
        double ut[QEIL_MAX_WUNITS];
        qeil_engine_unit_times(e, ut, n_units);
        unit_s[0] += ut[0] / ((double)N * R);
        for (uint32_t u = 1; u + 1 < n_units; u++) unit_s[1] += ut[u] / ((double)N * R);
        unit_s[2] += ut[n_units - 1] / ((double)N * R);
        if (meter && qeil_probe_meter_run(meter, LIVE_TIME_S, &rd1, &tr1) != QEIL_OK) {
            cli_fail(CMD, "--bw-live: %s", qeil_ctx_errmsg(ctx));
            goto out;
        }
        pf_s[r] = t1 - t0;
        pf_tps[r] = P / pf_s[r];
        dc_tps[r] = N / (t2 - td);
        live_rd[r] = (rd0 + rd1) / 2;
        live_tr[r] = (tr0 + tr1) / 2;
        live_edge[r] = rd0;
        live_edge[R + r] = rd1;
        live_edge[2 * R + r] = tr0;
        live_edge[3 * R + r] = tr1;
        if (meter)
            fprintf(stderr,
                    "qeil bench: rep %u/%u: prefill %.2f tok/s, decode %.2f tok/s; live read "
                    "%.1f/%.1f GB/s, triad %.1f/%.1f GB/s (before/after decode)\n",
                    r + 1, R, pf_tps[r], dc_tps[r], rd0 / 1e9, rd1 / 1e9, tr0 / 1e9, tr1 / 1e9);
        else
            fprintf(stderr, "qeil bench: rep %u/%u: prefill %.2f tok/s, decode %.2f tok/s\n",
                    r + 1, R, pf_tps[r], dc_tps[r]);
    }
    /* the meter's 256 MiB is not the engine's: gone before VmRSS is read */
    const int live_threads = qeil_probe_meter_threads(meter);
    qeil_probe_meter_free(meter);
    meter = NULL;

    double pf_m, pf_sd, dc_m, dc_sd, pfs_m, pfs_sd, smp_m, smp_sd;
    /* the sampler's share of decode: each repetition's own, then their
     * mean (the product of the two means is not a share: a loaded
     * repetition's slow sampling times a quiet one's fast decode can pass 1) */
    double smp_frac = 0;
    for (uint32_t r = 0; r < R; r++) {
        smp_s[r] /= N; /* seconds per token */
        smp_frac += smp_s[r] * dc_tps[r] / R;
    }
    mean_sd(smp_s, R, &smp_m, &smp_sd);
    mean_sd(pf_tps, R, &pf_m, &pf_sd);
    mean_sd(dc_tps, R, &dc_m, &dc_sd);
    mean_sd(pf_s, R, &pfs_m, &pfs_sd);
    double bytes_tok = w_B + kv_B;
    double bound = rl.bw_Bps > 0 ? rl.bw_Bps / bytes_tok : 0;
    double ratio = bound > 0 ? dc_m / bound : 0;
    double gflops = pf_flops / pfs_m / 1e9;
    /* live: each repetition's decode against its own bandwidth */
    double lr_run[MAX_REPS], lt_run[MAX_REPS], lr_m = 0, lr_sd = 0, lt_m = 0, lt_sd = 0;
    double lbw_rd = 0, lbw_tr = 0, lbw_sd = 0;
    if (live) {
        for (uint32_t r = 0; r < R; r++) {
            lr_run[r] = live_rd[r] > 0 ? dc_tps[r] * bytes_tok / live_rd[r] : 0;
            lt_run[r] = live_tr[r] > 0 ? dc_tps[r] * bytes_tok / live_tr[r] : 0;
        }
        mean_sd(lr_run, R, &lr_m, &lr_sd);
        mean_sd(lt_run, R, &lt_m, &lt_sd);
        mean_sd(live_rd, R, &lbw_rd, &lbw_sd);
        mean_sd(live_tr, R, &lbw_tr, &lbw_sd);
    }
    double peak_frac = rl.peak_ops > 0 ? gflops * 1e9 / rl.peak_ops : 0;
    qeil_engine_memory mem = qeil_engine_memory_use(e);
    /* VmRSS = anonymous (the engine's copies, KV, scratch) + file pages
     * still mapped (embedding rows looked up in the borrowed map: a page
     * cache with large folios maps up to a folio per row) */
    double rss, rss_anon, rss_file;
    proc_rss(&rss, &rss_anon, &rss_file);
    const char *wtype = qeil_ggml_type_name(md.weight_type);

    if (out_fmt == CLI_OUT_JSON) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "version", qeil_version());
        cJSON *mj = cJSON_AddObjectToObject(j, "model");
        cJSON_AddStringToObject(mj, "path", model);
        cJSON_AddStringToObject(mj, "name", md.name);
        cJSON_AddStringToObject(mj, "arch", qeil_arch_name(md.arch));
        cJSON_AddNumberToObject(mj, "layers", md.n_layers);
        cJSON_AddNumberToObject(mj, "d_model", md.d_model);
        cJSON_AddNumberToObject(mj, "vocab", md.vocab);
        cJSON_AddStringToObject(mj, "weight_type", wtype ? wtype : "?");
        cJSON_AddNumberToObject(mj, "weight_B", qeil_model_weight_bytes(&md));
        cJSON_AddNumberToObject(j, "threads", (double)threads);
        {
            uint8_t mp[QEIL_MAX_WUNITS], mdc[QEIL_MAX_WUNITS];
            const int ok = qeil_engine_get_placements(e, mp, mdc, n_units) == QEIL_OK;
            cli_placement_json(j, placement, plan ? plan_src : NULL, ok ? mp : NULL,
                               ok ? mdc : NULL, n_units);
            qeil_engine_transfers xs;
            qeil_engine_transfer_stats(e, &xs);
            cli_transfers_json(j, &xs);
            cJSON_AddNumberToObject(cJSON_GetObjectItem(j, "transfers"), "repetitions", R);
        }
        cJSON_AddNumberToObject(j, "n_prompt", P);
        cJSON_AddNumberToObject(j, "n_gen", N);
        cJSON_AddNumberToObject(j, "repetitions", R);
        cJSON *pj = cJSON_AddObjectToObject(j, "prefill");
        cJSON_AddNumberToObject(pj, "tok_per_s", pf_m);
        cJSON_AddNumberToObject(pj, "tok_per_s_sd", pf_sd);
        cJSON_AddNumberToObject(pj, "flops", pf_flops);
        cJSON_AddNumberToObject(pj, "gflop_per_s", gflops);
        if (rl.peak_ops > 0) {
            cJSON_AddNumberToObject(pj, "peak_ops", rl.peak_ops);
            cJSON_AddNumberToObject(pj, "peak_frac", peak_frac);
        } else {
            cJSON_AddNullToObject(pj, "peak_ops");
            cJSON_AddNullToObject(pj, "peak_frac");
        }
        cJSON_AddStringToObject(pj, "peak_dtype", rl.peak_dtype);
        cJSON *dj = cJSON_AddObjectToObject(j, "decode");
        cJSON_AddNumberToObject(dj, "tok_per_s", dc_m);
        cJSON_AddNumberToObject(dj, "tok_per_s_sd", dc_sd);
        cJSON_AddNumberToObject(dj, "weight_B_per_token", w_B);
        cJSON_AddNumberToObject(dj, "kv_B_per_token", kv_B);
        cJSON_AddNumberToObject(dj, "bytes_per_token", bytes_tok);
        cJSON_AddNumberToObject(dj, "bound_tok_per_s", bound);
        cJSON_AddNumberToObject(dj, "ratio", ratio);
        cJSON_AddNumberToObject(dj, "sample_s_per_token", smp_m);
        cJSON_AddNumberToObject(dj, "sample_s_per_token_sd", smp_sd);
        cJSON_AddNumberToObject(dj, "sample_frac", smp_frac);
        cJSON *uj = cJSON_AddObjectToObject(dj, "unit_s_per_token");
        cJSON_AddNumberToObject(uj, "embedding", unit_s[0]);
        cJSON_AddNumberToObject(uj, "blocks", unit_s[1]);
        cJSON_AddNumberToObject(uj, "head", unit_s[2]);
        if (live) {
            /* per repetition: ratio = decode tok/s x bytes per token / bandwidth */
            cJSON *lj = cJSON_AddObjectToObject(dj, "live");
            cJSON_AddNumberToObject(lj, "threads", live_threads);
            cJSON_AddNumberToObject(lj, "ws_B", (double)LIVE_WS_B);
            cJSON_AddNumberToObject(lj, "min_time_s", LIVE_TIME_S);
            cJSON_AddNumberToObject(lj, "read_bw_Bps", lbw_rd);
            cJSON_AddNumberToObject(lj, "triad_bw_Bps", lbw_tr);
            cJSON_AddNumberToObject(lj, "ratio_read", lr_m);
            cJSON_AddNumberToObject(lj, "ratio_read_sd", lr_sd);
            cJSON_AddNumberToObject(lj, "ratio_triad", lt_m);
            cJSON_AddNumberToObject(lj, "ratio_triad_sd", lt_sd);
            cJSON_AddItemToObject(lj, "read_bw_Bps_runs", cJSON_CreateDoubleArray(live_rd, (int)R));
            cJSON_AddItemToObject(lj, "triad_bw_Bps_runs", cJSON_CreateDoubleArray(live_tr, (int)R));
            cJSON_AddItemToObject(lj, "read_bw_Bps_before", cJSON_CreateDoubleArray(live_edge, (int)R));
            cJSON_AddItemToObject(lj, "read_bw_Bps_after", cJSON_CreateDoubleArray(live_edge + R, (int)R));
            cJSON_AddItemToObject(lj, "triad_bw_Bps_before",
                                  cJSON_CreateDoubleArray(live_edge + 2 * R, (int)R));
            cJSON_AddItemToObject(lj, "triad_bw_Bps_after",
                                  cJSON_CreateDoubleArray(live_edge + 3 * R, (int)R));
            cJSON_AddItemToObject(lj, "ratio_read_runs", cJSON_CreateDoubleArray(lr_run, (int)R));
            cJSON_AddItemToObject(lj, "ratio_triad_runs", cJSON_CreateDoubleArray(lt_run, (int)R));
        }
        cli_meas_json(pj, "measured", pf_meas.valid, pf_meas.energy_J, pf_meas.t_s,
                      (uint64_t)P * R, qeil_sense_cpu_meter_provenance(em),
                      qeil_sense_cpu_meter_covers(em));
        cli_meas_json(dj, "measured", dc_meas.valid, dc_meas.energy_J, dc_meas.t_s,
                      (uint64_t)N * R, qeil_sense_cpu_meter_provenance(em),
                      qeil_sense_cpu_meter_covers(em));
        cJSON *bj = cJSON_AddObjectToObject(j, "bandwidth");
        cJSON_AddNumberToObject(bj, "bw_Bps", rl.bw_Bps);
        cJSON_AddStringToObject(bj, "source", rl.source);
        cJSON *mm = cJSON_AddObjectToObject(j, "memory");
        cJSON_AddNumberToObject(mm, "weights_B", (double)mem.weights_B);
        cJSON_AddNumberToObject(mm, "kv_B", (double)mem.kv_B);
        cJSON_AddNumberToObject(mm, "scratch_B", (double)mem.scratch_B);
        cJSON_AddNumberToObject(mm, "tokenizer_B", (double)mem.tokenizer_B);
        cJSON_AddNumberToObject(mm, "vm_rss_B", rss);
        cJSON_AddNumberToObject(mm, "rss_anon_B", rss_anon);
        cJSON_AddNumberToObject(mm, "rss_file_B", rss_file);
        cJSON *runs = cJSON_AddObjectToObject(j, "runs");
        cJSON_AddItemToObject(runs, "prefill_tok_per_s", cJSON_CreateDoubleArray(pf_tps, (int)R));
        cJSON_AddItemToObject(runs, "decode_tok_per_s", cJSON_CreateDoubleArray(dc_tps, (int)R));
        if (cli_json_print(j) != 0) fputs("qeil: out of memory printing JSON\n", stderr);
        cJSON_Delete(j);
    } else {
        printf("model      %s: %s, %u layers, d_model %u, vocab %u, %s, %.1f MB of weights\n",
               cli_term(model), qeil_arch_name(md.arch), md.n_layers, md.d_model, md.vocab,
               wtype ? wtype : "?", qeil_model_weight_bytes(&md) / 1e6);
        printf("threads    %llu%s, %u repetitions after a warm-up\n", (unsigned long long)threads,
               threads ? "" : " (all online CPUs)", R);
        printf("roofline   %.2f GB/s", rl.bw_Bps / 1e9);
        if (rl.peak_ops > 0) printf(", %s peak %.1f GOP/s", rl.peak_dtype, rl.peak_ops / 1e9);
        printf(" (%s)\n\n", rl.source);
        printf("%-16s %12s %10s  %s\n", "test", "tok/s", "sd", "roofline");
        printf("prefill p=%-6u %12.2f %10.2f  %.1f GFLOP/s", P, pf_m, pf_sd, gflops);
        if (rl.peak_ops > 0) printf(" = %.1f %% of %s peak\n", 100 * peak_frac, rl.peak_dtype);
        else printf(" (peak unknown: give --profile or no --bw)\n");
        printf("decode  n=%-6u %12.2f %10.2f  bound %.2f tok/s (%.1f MB/token: weights %.1f + KV "
               "%.2f), ratio %.2f\n",
               N, dc_m, dc_sd, bound, bytes_tok / 1e6, w_B / 1e6, kv_B / 1e6, ratio);
        printf("sampling %31s  %.3f +/- %.3f ms/token (greedy, vocab %u) = %.1f %% of decode\n", "",
               1e3 * smp_m, 1e3 * smp_sd, n_vocab, 100 * smp_frac);
        printf("by unit  %31s  embedding %.3f, blocks %.3f, output layer %.3f ms/token\n", "",
               1e3 * unit_s[0], 1e3 * unit_s[1], 1e3 * unit_s[2]);
        if (placement) {
            uint8_t mp[QEIL_MAX_WUNITS], mdc[QEIL_MAX_WUNITS];
            char sp_s[1024];
            if (qeil_engine_get_placements(e, mp, mdc, n_units) == QEIL_OK &&
                qeil_placement_format(mp, mdc, n_units, sp_s, sizeof sp_s) == QEIL_OK)
                printf("placement  %s (%s)\n", sp_s, plan ? plan_src : "--placement");
            qeil_engine_transfers xs;
            qeil_engine_transfer_stats(e, &xs);
            printf("(transfers over %u repetitions)\n", R);
            cli_transfers_text(stdout, &xs);
        }
        if (live)
            printf("decode live %28s  read %.2f GB/s: ratio %.2f +/- %.2f; triad %.2f GB/s: ratio "
                   "%.2f +/- %.2f (each repetition against its own streams)\n",
                   "", lbw_rd / 1e9, lr_m, lr_sd, lbw_tr / 1e9, lt_m, lt_sd);
        cli_meas_text(stdout, "prefill energy", pf_meas.valid, pf_meas.energy_J, pf_meas.t_s,
                      (uint64_t)P * R, qeil_sense_cpu_meter_provenance(em),
                      qeil_sense_cpu_meter_covers(em));
        cli_meas_text(stdout, "decode energy ", dc_meas.valid, dc_meas.energy_J, dc_meas.t_s,
                      (uint64_t)N * R, qeil_sense_cpu_meter_provenance(em),
                      qeil_sense_cpu_meter_covers(em));
        if (qeil_sense_cpu_meter_provenance(em))
            printf("energy meter %s covers %s\n", qeil_sense_cpu_meter_provenance(em),
                   qeil_sense_cpu_meter_covers(em));
        printf("\nmemory     engine %.1f MB (weights %.1f + KV %.1f + scratch %.1f + tokenizer %.1f), "
               "VmRSS %.1f MB (anonymous %.1f + file %.1f)\n",
               (double)(mem.weights_B + mem.kv_B + mem.scratch_B + mem.tokenizer_B) / 1e6,
               mem.weights_B / 1e6, mem.kv_B / 1e6, mem.scratch_B / 1e6, mem.tokenizer_B / 1e6, rss / 1e6,
               rss_anon / 1e6, rss_file / 1e6);
    }
    rc = CLI_OK;

out:
    qeil_sense_cpu_meter_free(em);
    qeil_probe_meter_free(meter);
    qeil_free(ctx, live_rd);
    qeil_free(ctx, live_tr);
    qeil_free(ctx, live_edge);
    qeil_free(ctx, toks);
    qeil_free(ctx, logits);
    qeil_free(ctx, smp_s);
    qeil_sampler_free(smp);
    qeil_free(ctx, pf_tps);
    qeil_free(ctx, dc_tps);
    qeil_free(ctx, pf_s);
    qeil_engine_free(e);
    qeil_ctx_free(ctx);
    return rc;
}
