/* cmd_probe.c — `qeil probe`: measure this machine's CPU and write a
 * one-unit platform profile (method: docs/probe.md). */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "opt.h"
#include "qeil/device.h"

#define CMD "probe"
#define MIB ((size_t)1 << 20)

/* CPUs the scheduler lets us use (what the library probes with 0 = all). */
static int usable_cpus(void)
{
#ifdef __linux__
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)(n < QEIL_PROBE_MAX_THREADS ? n : QEIL_PROBE_MAX_THREADS) : 1;
}

/* ------------------------------------------------------------------------ */
/* Progress (stderr)                                                         */
/* ------------------------------------------------------------------------ */

typedef struct {
    int tty;
    char last[96];
} progress_state;

static void on_progress(void *user, const char *what, double frac)
{
    progress_state *ps = user;
    int pct = (int)(frac * 100.0 + 0.5);
    if (ps->tty) {
        if (strcmp(what, "done") == 0) fprintf(stderr, "\r%-60s\r", "");
        else fprintf(stderr, "\rqeil probe: [%3d%%] %-40s", pct, what);
        fflush(stderr);
        return;
    }
    /* a log: one line per new measurement, not one per repetition */
    if (strcmp(ps->last, what) == 0) return;
    snprintf(ps->last, sizeof ps->last, "%s", what);
    fprintf(stderr, "qeil probe: [%3d%%] %s\n", pct, what);
}

/* ------------------------------------------------------------------------ */
/* Formatting                                                                */
/* ------------------------------------------------------------------------ */

/* Sweep sizes are a few bytes under the nominal power of two (whole
 * elements per thread): round so that 1048560 B prints as "1 MiB". */
static const char *fmt_bytes(char *buf, size_t n, double b)
{
    if (b >= 0.999 * 1024.0 * 1024 * 1024) snprintf(buf, n, "%.1f GiB", b / (1024.0 * 1024 * 1024));
    else if (b >= 0.999 * 1024.0 * 1024) snprintf(buf, n, "%.0f MiB", b / (1024.0 * 1024));
    else snprintf(buf, n, "%.0f KiB", b / 1024.0);
    return buf;
}

/* Which level serves a working set, by the plateau rule of docs/probe.md:
 * level L when agg[L-1] < ws <= agg[L] / 2, DRAM when ws >= 4 x the last
 * level, "-" in between (a transition); each boundary 1 % wide. */
static const char *level_of(const qeil_probe_result *r, size_t ws_B, char *buf, size_t n)
{
    const double slack = 1.01; /* boundaries 1 % wide, as in the library */
    double ws = (double)ws_B, below = 0;
    int last = -1;
    for (int L = 0; L < 4; L++) {
        double agg = (double)r->cache_agg_B[L];
        if (agg == 0) continue;
        if (ws > below * slack && ws <= agg / 2 * slack) {
            snprintf(buf, n, "L%d", L + 1);
            return buf;
        }
        below = agg;
        last = L;
    }
    if (last < 0) return "";
    return ws * slack >= 4.0 * (double)r->cache_agg_B[last] ? "DRAM" : "-";
}

/* JSON number, or null for the unknown / non-finite. */
static void json_num(FILE *f, double v, int zero_is_null)
{
    if (!isfinite(v) || (zero_is_null && v == 0)) fputs("null", f);
    else fprintf(f, "%.6g", v);
}

static void print_table(const qeil_probe_result *r, const char *out_path)
{
    char b1[32], b2[32], lv[8];
    int T = r->n_threads;
    printf("qeil probe %s on %s: %d CPUs, %d threads on %d physical cores, %s RAM\n",
           qeil_version(), r->cpu_model, r->n_cpus, T, r->n_cores,
           fmt_bytes(b1, sizeof b1, r->mem_total_B));
    printf("cpu features: %s\n", r->cpu_features);
    printf("kernels: f32 %s, int8 %s, triad %s; %.3g s per measurement, best of 3\n\n",
           r->kernel_f32, r->kernel_int8, r->kernel_triad, r->min_time_s);

    printf("compute (register-resident kernels; FMA = 2 FLOPs, int8 multiply-add = 2 OPs)\n");
    printf("%7s  %12s  %12s\n", "threads", "f32 GFLOP/s", "int8 GOP/s");
    for (int i = 0; i < T; i++)
        printf("%7d  %12.1f  %12.1f\n", i + 1, r->f32_flops[i] / 1e9, r->int8_ops[i] / 1e9);

    if (r->n_clusters >= 2) {
        printf("\ncore clusters (by %s; each alone, one thread per core; read = read-only "
               "stream at the largest set)\n",
               r->cluster_source);
        printf("%-8s  %-12s  %5s  %8s  %8s  %12s  %12s  %9s\n", "cluster", "cpus", "cores",
               "capacity", "max GHz", "f32 GFLOP/s", "int8 GOP/s", "read GB/s");
        for (int k = 0; k < r->n_clusters && k < QEIL_PROBE_MAX_CLUSTERS; k++) {
            const qeil_probe_cluster *c = &r->clusters[k];
            printf("%-8s  %-12s  %5d  %8ld  %8.2f  %12.1f  %12.1f  %9.1f\n", c->name, c->cpus,
                   c->n_cores, c->capacity, c->freq_Hz / 1e9, c->f32_flops / 1e9,
                   c->int8_ops / 1e9, c->read_bw_Bps / 1e9);
        }
    }

    printf("\nbandwidth: triad a[i] = b[i] + s*c[i] on doubles, %d thread%s, 24 B per "
           "iteration (STREAM convention)\n",
           T, T > 1 ? "s" : "");
    printf("%11s  %9s  %s\n", "working set", "GB/s", "level");
    for (int i = 0; i < r->n_points; i++)
        printf("%11s  %9.1f  %s\n", fmt_bytes(b1, sizeof b1, (double)r->ws_B[i]),
               r->bw_Bps[i] / 1e9, level_of(r, r->ws_B[i], lv, sizeof lv));

    printf("\nplateaus (median of the sweep points each level serves)\n");
    int last = -1;
    for (int L = 0; L < 4; L++) {
        if (!r->cache_size_B[L]) continue;
        last = L;
        char total[48];
        snprintf(total, sizeof total, "%s x %zu", fmt_bytes(b1, sizeof b1, (double)r->cache_size_B[L]),
                 r->cache_agg_B[L] / r->cache_size_B[L]);
        if (r->cache_bw_Bps[L] > 0)
            printf("  L%d    %-16s %9.1f GB/s\n", L + 1, total, r->cache_bw_Bps[L] / 1e9);
        else
            printf("  L%d    %-16s %9s (no sweep point fits)\n", L + 1, total, "-");
    }
    if (last < 0) printf("  caches: sizes unknown (no sysfs cache information)\n");
    if (r->dram_n_points > 0)
        printf("  DRAM  %-16s %9.1f GB/s (%d point%s)\n", ">= 4 x LLC", r->dram_bw_Bps / 1e9,
               r->dram_n_points, r->dram_n_points > 1 ? "s" : "");
    else
        printf("  DRAM  not reached: %9.1f GB/s is the median of the largest sets (up to %s), "
               "a cache rate;\n        raise --max-ws to >= %s for a DRAM figure\n",
               r->dram_bw_Bps / 1e9,
               fmt_bytes(b1, sizeof b1, r->n_points ? (double)r->ws_B[r->n_points - 1] : 0),
               last >= 0 ? fmt_bytes(b2, sizeof b2, 4.0 * (double)r->cache_agg_B[last]) : "1 GiB");
    if (r->read_bw_Bps > 0)
        printf("  read  %-16s %9.1f GB/s (read-only stream, %s; triad/read = %.2f)\n",
               fmt_bytes(b1, sizeof b1, r->n_points ? (double)r->ws_B[r->n_points - 1] : 0),
               r->read_bw_Bps / 1e9, r->dram_n_points > 0 ? "DRAM" : "a cache rate",
               r->dram_bw_Bps / r->read_bw_Bps);

    double f32 = r->f32_flops[T - 1], int8 = r->int8_ops[T - 1];
    printf("\nmeasured vs theoretical peak (%d thread%s)\n", T, T > 1 ? "s" : "");
    if (r->f32_peak_theory > 0) {
        printf("  theory: %d core%s x %.3f GHz (%s) x %g FLOP/cycle f32, %g OP/cycle int8\n",
               r->n_cores, r->n_cores > 1 ? "s" : "", r->freq_Hz / 1e9, r->freq_source,
               r->f32_flop_per_cycle, r->int8_op_per_cycle);
        printf("  f32   %10.1f / %10.1f GFLOP/s = %.2f\n", f32 / 1e9, r->f32_peak_theory / 1e9,
               f32 / r->f32_peak_theory);
        if (r->int8_peak_theory > 0)
            printf("  int8  %10.1f / %10.1f GOP/s   = %.2f\n", int8 / 1e9,
                   r->int8_peak_theory / 1e9, int8 / r->int8_peak_theory);
        else
            printf("  int8  %10.1f GOP/s / unknown (no per-cycle rate for this ISA)\n", int8 / 1e9);
        double implied = r->f32_flops[0] / r->f32_flop_per_cycle;
        if (f32 > 1.05 * r->f32_peak_theory)
            printf("  (above 1: the cores run faster than the clock read from %s, e.g. boost;\n"
                   "   1-thread f32 implies %.2f GHz)\n",
                   r->freq_source, implied / 1e9);
    } else {
        printf("  f32   %10.1f GFLOP/s / unknown (%s)\n", f32 / 1e9,
               r->freq_Hz > 0 ? "no per-cycle rate for this ISA" : "clock unknown");
        printf("  int8  %10.1f GOP/s / unknown\n", int8 / 1e9);
    }

    printf("\nprofile: 1 cpu unit; peak_ops f32 = f16 = %.1f GFLOP/s, int8 = %.1f GOP/s, "
           "mem_bw = %.1f GB/s (measured);\n         power and thermal fields are defaults "
           "(docs/probe.md)\n",
           f32 / 1e9, int8 / 1e9, r->dram_bw_Bps / 1e9);
    if (out_path)
        printf("profile written to %s (use: qeil plan --platform %s)\n", cli_term(out_path),
               cli_term(out_path));
    else
        printf("profile not saved: run 'qeil probe -o probe.json', then 'qeil plan --platform "
               "probe.json'\n");
}

static void print_json(const qeil_probe_result *r, const char *out_path, const char *profile)
{
    char lv[8];
    int T = r->n_threads;
    double f32 = r->f32_flops[T - 1], int8 = r->int8_ops[T - 1];
    printf("{\n  \"version\": ");
    cli_json_str(stdout, qeil_version());
    printf(",\n  \"command\": \"probe\",\n  \"cpu\": {\"model\": ");
    cli_json_str(stdout, r->cpu_model);
    printf(", \"n_cpus\": %d, \"n_cores\": %d, \"freq_Hz\": ", r->n_cpus, r->n_cores);
    json_num(stdout, r->freq_Hz, 1);
    printf(", \"freq_source\": ");
    cli_json_str(stdout, r->freq_source);
    printf(", \"mem_total_B\": ");
    json_num(stdout, r->mem_total_B, 1);
    printf(", \"features\": ");
    cli_json_str(stdout, r->cpu_features);
    printf("},\n  \"params\": {\"threads\": %d, \"min_time_s\": %.6g, \"largest_ws_B\": %zu, "
           "\"repetitions\": 3},\n",
           T, r->min_time_s, r->n_points ? r->ws_B[r->n_points - 1] : (size_t)0);
    printf("  \"kernels\": {\"f32\": \"%s\", \"int8\": \"%s\", \"triad\": \"%s\"},\n", r->kernel_f32,
           r->kernel_int8, r->kernel_triad);
    printf("  \"units\": {\"f32_flops\": \"FLOP/s\", \"int8_ops\": \"OP/s\", \"bw_Bps\": \"B/s\", "
           "\"ws_B\": \"B\", \"size_B\": \"B\", \"freq_Hz\": \"Hz\"},\n");
    printf("  \"compute\": [");
    for (int i = 0; i < T; i++) {
        printf("%s\n    {\"threads\": %d, \"f32_flops\": ", i ? "," : "", i + 1);
        json_num(stdout, r->f32_flops[i], 0);
        printf(", \"int8_ops\": ");
        json_num(stdout, r->int8_ops[i], 0);
        printf("}");
    }
    printf("\n  ],\n  \"clusters\": {\"source\": ");
    cli_json_str(stdout, r->cluster_source);
    printf(", \"list\": [");
    for (int k = 0; k < r->n_clusters && k < QEIL_PROBE_MAX_CLUSTERS; k++) {
        const qeil_probe_cluster *c = &r->clusters[k];
        printf("%s\n    {\"name\": ", k ? "," : "");
        cli_json_str(stdout, c->name);
        printf(", \"cpus\": ");
        cli_json_str(stdout, c->cpus);
        printf(", \"n_cpus\": %d, \"n_cores\": %d, \"capacity\": %ld, \"freq_Hz\": ", c->n_cpus,
               c->n_cores, c->capacity);
        json_num(stdout, c->freq_Hz, 1);
        /* measured only when there are several clusters */
        const int m = r->n_clusters >= 2;
        printf(", \"f32_flops\": ");
        json_num(stdout, m ? c->f32_flops : 0, 1);
        printf(", \"int8_ops\": ");
        json_num(stdout, m ? c->int8_ops : 0, 1);
        printf(", \"read_bw_Bps\": ");
        json_num(stdout, m ? c->read_bw_Bps : 0, 1);
        printf("}");
    }
    printf("\n  ]},\n  \"bandwidth\": {\"kernel\": \"triad\", \"bytes_per_iteration\": 24, "
           "\"threads\": %d, \"points\": [",
           T);
    for (int i = 0; i < r->n_points; i++) {
        printf("%s\n    {\"ws_B\": %zu, \"bw_Bps\": ", i ? "," : "", r->ws_B[i]);
        json_num(stdout, r->bw_Bps[i], 0);
        printf(", \"level\": \"%s\"}", level_of(r, r->ws_B[i], lv, sizeof lv));
    }
    printf("\n  ]},\n  \"caches\": [");
    int first = 1;
    for (int L = 0; L < 4; L++) {
        if (!r->cache_size_B[L]) continue;
        printf("%s\n    {\"level\": %d, \"size_B\": %zu, \"agg_B\": %zu, \"bw_Bps\": ",
               first ? "" : ",", L + 1, r->cache_size_B[L], r->cache_agg_B[L]);
        json_num(stdout, r->cache_bw_Bps[L], 1);
        printf("}");
        first = 0;
    }
    printf("\n  ],\n  \"dram\": {\"bw_Bps\": ");
    json_num(stdout, r->dram_bw_Bps, 0);
    printf(", \"n_points\": %d, \"reached\": %s, \"read_bw_Bps\": ", r->dram_n_points,
           r->dram_n_points > 0 ? "true" : "false");
    json_num(stdout, r->read_bw_Bps, 1);
    printf("},\n");
    printf("  \"theory\": {\"f32_flop_per_cycle\": ");
    json_num(stdout, r->f32_flop_per_cycle, 1);
    printf(", \"int8_op_per_cycle\": ");
    json_num(stdout, r->int8_op_per_cycle, 1);
    printf(", \"f32_flops\": ");
    json_num(stdout, r->f32_peak_theory, 1);
    printf(", \"int8_ops\": ");
    json_num(stdout, r->int8_peak_theory, 1);
    printf(", \"f32_ratio\": ");
    json_num(stdout, r->f32_peak_theory > 0 ? f32 / r->f32_peak_theory : 0, 1);
    printf(", \"int8_ratio\": ");
    json_num(stdout, r->int8_peak_theory > 0 ? int8 / r->int8_peak_theory : 0, 1);
    printf("},\n");
    printf("  \"provenance\": {\n"
           "    \"measured\": [\"peak_ops.f32\", \"peak_ops.int8\", \"mem_bw_Bps\", "
           "\"pools[0].bw_Bps\"],\n"
           "    \"derived\": [\"peak_ops.f16 = peak_ops.f32\", \"peak_ops.int4 = 0\", "
           "\"eta_compute = eta_mem = 1 (peaks are achieved rates)\", \"e_op_J = default "
           "dynamic power / measured rate\"],\n"
           "    \"from_os\": [\"pools[0].capacity_B (MemTotal)\", \"dvfs[0].freq_Hz (%s)\"],\n"
           "    \"default\": [\"e_byte_J\", \"p_const_W\", \"p_leak_ref_W\", \"t_leak_ref_C\", "
           "\"leak_kappa_perK\", \"r_th_KpW\", \"c_th_JpK\", \"t_amb_C\", \"t_max_C\", "
           "\"dvfs[0].volt_V\", \"rho_max\"%s]\n  },\n",
           r->freq_Hz > 0 ? r->freq_source : "unknown: default 2 GHz",
           r->freq_Hz > 0 ? "" : ", \"dvfs[0].freq_Hz\"");
    printf("  \"profile_path\": ");
    if (out_path) cli_json_str(stdout, out_path);
    else fputs("null", stdout);
    printf(",\n  \"profile\": %s\n}\n", profile);
}

/* Library messages name the parameter; say which option set it. */
static const char *option_of(const char *msg)
{
    if (strncmp(msg, "max_threads", 11) == 0) return "-t/--threads";
    if (strncmp(msg, "min_time_s", 10) == 0) return "--min-time";
    if (strncmp(msg, "max_ws_B", 8) == 0) return "--max-ws";
    return NULL;
}

typedef struct {
    uint64_t threads, max_ws_mib;
    double min_time;
    int have_threads, have_min_time, have_max_ws, quick;
    const char *out_path, *sysfs_root;
    cli_output fmt;
} probe_opts;

static int parse_threads(const char *cmd, const char *opt, const char *val, void *vo)
{
    probe_opts *o = vo;
    if (cli_u64(cmd, opt, val, 1, QEIL_PROBE_MAX_THREADS, &o->threads)) return CLI_USAGE;
    if (o->threads > (uint64_t)usable_cpus())
        return cli_usage_error(cmd,
                               "%s: %s is out of range (allowed 1..%d: the CPUs this "
                               "process may run on)",
                               opt, val, usable_cpus());
    o->have_threads = 1;
    return 0;
}

static int parse_root(const char *cmd, const char *opt, const char *val, void *vo)
{
    struct stat sb;
    if (stat(val, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return cli_usage_error(cmd, "%s: '%s' is not a directory", opt, val);
    ((probe_opts *)vo)->sysfs_root = val;
    return 0;
}

static int parse_out(const char *cmd, const char *opt, const char *val, void *vo)
{
    if (!val[0]) return cli_usage_error(cmd, "%s: empty file name", opt);
    if (val[0] == '-')
        return cli_usage_error(cmd,
                               "%s: '%s' looks like an option, not a file name (write "
                               "./%s for a file of that name)",
                               opt, val, val);
    ((probe_opts *)vo)->out_path = val;
    return 0;
}

#define T probe_opts
static const cli_optdef probe_table[] = {
    {CLI_FN("--threads", "-t", "N",
            "measure 1..N threads (default: every CPU this process may\n"
            "use; 1..256)",
            parse_threads)},
    {CLI_F64("--min-time", NULL, "S", "seconds per measurement, best of 3 (default 0.2; 0.001..60)",
             T, min_time, 0.001, 60),
     .given = CLI_GIVEN(T, have_min_time)},
    {CLI_U64("--max-ws", NULL, "MiB",
             "largest working set of the sweep (default 256; 1..1048576;\n"
             "at most half of RAM). DRAM needs >= 4x the last-level cache",
             T, max_ws_mib, 1, 1048576),
     .given = CLI_GIVEN(T, have_max_ws)},
    {CLI_FLAG("--quick", NULL,
              "short run for tests and CI: --min-time 0.02, --max-ws 32,\n"
              "at most 2 threads (explicit options win)",
              T, quick)},
    {CLI_FN("--root", NULL, "DIR",
            "read the core clusters under DIR/sys instead of /sys (a\n"
            "fixture tree: treat core sets as clusters; docs/probe.md)",
            parse_root)},
    {CLI_FN("--out", "-o", "FILE", "write the platform profile (JSON) to FILE", parse_out)},
    {CLI_OUTPUT("table or json (default table)", T, fmt, "table|json")},
};
#undef T

static const cli_command probe_cmd = {
    CMD,
    "usage: qeil probe [options]\n\n"
    "Measure this machine's CPU: f32 FMA and int8 dot-product throughput for 1..N\n"
    "threads, STREAM-triad bandwidth over working sets from 16 KiB (L1) to DRAM,\n"
    "and a read-only stream at the largest set (the rate weight streaming sees).\n"
    "Builds a one-unit platform profile for 'qeil plan --platform FILE.json':\n"
    "compute and bandwidth measured, power and thermal documented defaults.\n",
    probe_table,
    CLI_NOPTS(probe_table),
    "Progress goes to stderr. Takes about (6 x N + 3 x (points + 1)) x S seconds.\n"
    "Method, op counting and defaults: docs/probe.md.\n",
    NULL,
};

int cmd_probe(int argc, char **argv)
{
    probe_opts o = {.fmt = CLI_OUT_TABLE};
    int prc = cli_opt_parse(&probe_cmd, argc, argv, &o);
    if (prc != CLI_OK) return prc == CLI_OPT_HELP ? CLI_OK : prc;
    const uint64_t threads = o.threads, max_ws_mib = o.max_ws_mib;
    const double min_time = o.min_time;
    const int have_threads = o.have_threads, have_min_time = o.have_min_time;
    const int have_max_ws = o.have_max_ws, quick = o.quick;
    const char *out_path = o.out_path, *sysfs_root = o.sysfs_root;
    const cli_output fmt = o.fmt;

    /* the output file is checked before the minutes of measuring */
    char *target = NULL;
    if (out_path && cli_out_path(CMD, "--out", out_path, &target) != CLI_OK) return CLI_FAIL;

    qeil_probe_params p = qeil_probe_default_params();
    if (quick) {
        p.min_time_s = 0.02;
        p.max_ws_B = 32 * MIB;
        p.max_threads = usable_cpus() < 2 ? usable_cpus() : 2;
    }
    if (have_threads) p.max_threads = (int)threads;
    if (have_min_time) p.min_time_s = min_time;
    if (have_max_ws) p.max_ws_B = (size_t)max_ws_mib * MIB;
    p.sysfs_root = sysfs_root;
    progress_state ps = {isatty(2), ""};
    p.progress = on_progress;
    p.progress_user = &ps;

    qeil_ctx *ctx = cli_ctx_create();
    qeil_probe_result *r = qeil_calloc(ctx, 1, sizeof *r);
    char *profile = NULL;
    int rc = CLI_OK;
    if (!ctx || !r) {
        rc = cli_fail(CMD, "out of memory");
        goto done;
    }
    qeil_status st = qeil_probe_run(ctx, &p, r);
    if (st != QEIL_OK) {
        const char *msg = qeil_ctx_errmsg(ctx), *opt = option_of(msg);
        rc = st == QEIL_ERR_RANGE && opt ? cli_usage_error(CMD, "%s: %s", opt, msg)
                                         : cli_fail(CMD, "%s", msg);
        goto done;
    }
    qeil_platform pf;
    if (qeil_probe_to_platform(ctx, r, &pf) != QEIL_OK ||
        qeil_platform_to_json(ctx, &pf, &profile) != QEIL_OK) {
        rc = cli_fail(CMD, "cannot build a profile from the measurement: %s", qeil_ctx_errmsg(ctx));
        goto done;
    }
    for (size_t n = strlen(profile); n > 0 && (profile[n - 1] == '\n' || profile[n - 1] == ' ');)
        profile[--n] = '\0';
    /* a failed write still prints the measurement, then exits 1 */
    int written = out_path && qeil_platform_write_file(ctx, &pf, target) == QEIL_OK;
    if (fmt == CLI_OUT_JSON) print_json(r, written ? out_path : NULL, profile);
    else print_table(r, written ? out_path : NULL);
    fflush(stdout);
    if (out_path && !written) rc = cli_fail(CMD, "%s", qeil_ctx_errmsg(ctx));

done:
    free(target);
    if (profile) qeil_free(ctx, profile);
    qeil_free(ctx, r);
    qeil_ctx_free(ctx);
    return rc;
}
