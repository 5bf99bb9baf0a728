/* cmd_probe.c — `qeil probe`: measure this machine's CPU and Vulkan
 * devices and write a platform profile, one unit per device (method:
 * docs/probe.md). */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "opt.h"
#include "probe_svg.h"
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

/* The profile unit standing for local device `dev`, or NULL. */
static const qeil_unit *unit_of(const qeil_platform *pf, const char *dev)
{
    for (int u = 0; u < pf->n_units; u++)
        if (strcmp(pf->units[u].device, dev) == 0) return &pf->units[u];
    return NULL;
}

/* The Vulkan devices: what each measured, with which shaders, and the
 * profile unit it became. */
static void print_gpus(const qeil_probe_result *r, const qeil_platform *pf)
{
    char b1[32];
    if (r->gpu_status[0]) {
        printf("\nVulkan devices: not measured: %s\n", cli_term(r->gpu_status));
        return;
    }
    printf("\nVulkan devices (register-resident multiply-add chains, fma = 2 FLOPs; copy between "
           "two device-local\nbuffers, read + write bytes; host clock from submit to fence, "
           "best of 3; 0 = unsupported)\n");
    printf("%-6s  %-10s  %11s  %11s  %10s  %9s  %-13s  %s\n", "device", "type", "f32 GFLOP/s",
           "f16 GFLOP/s", "int8 GOP/s", "copy GB/s", "buffers", "profile unit");
    for (int i = 0; i < r->n_gpus && i < QEIL_PROBE_MAX_GPUS; i++) {
        const qeil_probe_gpu *g = &r->gpus[i];
        if (g->error[0]) {
            printf("%-6s  %-10s  not measured: %s\n", g->device, g->type, cli_term(g->error));
            continue;
        }
        const qeil_unit *u = unit_of(pf, g->device);
        char bufs[32], unit[QEIL_NAME_MAX + 48];
        snprintf(bufs, sizeof bufs, "2 x %s", fmt_bytes(b1, sizeof b1, (double)g->bw_ws_B));
        if (u)
            snprintf(unit, sizeof unit, "%s (%s, pool %s)", u->name, qeil_unit_kind_name(u->kind),
                     pf->pools[u->pool].name);
        else
            snprintf(unit, sizeof unit, "none (beyond the profile's %d units / %d pools, or "
                     "its ranges)", QEIL_MAX_UNITS, QEIL_MAX_POOLS);
        printf("%-6s  %-10s  %11.1f  %11.1f  %10.1f  %9.2f  %-13s  %s\n", g->device, g->type,
               g->f32_flops / 1e9, g->f16_flops / 1e9, g->int8_ops / 1e9, g->bw_Bps / 1e9, bufs,
               unit);
    }
    for (int i = 0; i < r->n_gpus && i < QEIL_PROBE_MAX_GPUS; i++) {
        const qeil_probe_gpu *g = &r->gpus[i];
        printf("  %s: %s, Vulkan %s, %s memory", g->device, cli_term(g->name), g->api,
               g->unified_memory ? "host-visible device-local (unified)" : "device-local");
        if (g->heap_B > 0) printf(" %s", fmt_bytes(b1, sizeof b1, g->heap_B));
        printf("\n");
        if (g->error[0]) continue;
        printf("    shaders: %s; %s; %s; %s; %d workgroups of 64\n", g->form_f32,
               g->form_f16[0] ? g->form_f16 : "f16: no shaderFloat16",
               g->form_int8[0] ? g->form_int8 : "int8: no shaderInt8", g->form_bw, g->n_groups);
        const qeil_unit *u = unit_of(pf, g->device);
        if (g->link_bw_Bps > 0)
            printf("    host-to-device copy: %.2f GB/s (host-visible memory read over the bus; "
                   "the profile's link)\n",
                   g->link_bw_Bps / 1e9);
        else if (u && u->pool != 0)
            printf("    host-to-device copy: not measured (no host-visible memory type apart); "
                   "the profile's link is a default, 25 GB/s\n");
        if (strcmp(g->type, "cpu") == 0)
            printf("    a CPU implementation: it runs on the same cores as the cpu unit, so the "
                   "two are not\n    independent (docs/probe.md)\n");
    }
}

static void print_table(const qeil_probe_result *r, const char *out_path, const qeil_platform *pf)
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

    print_gpus(r, pf);

    printf("\nprofile: %d unit%s; cpu: peak_ops f32 = f16 = %.1f GFLOP/s, int8 = %.1f GOP/s, "
           "mem_bw = %.1f GB/s (measured);\n",
           pf->n_units, pf->n_units > 1 ? "s" : "", f32 / 1e9, int8 / 1e9, r->dram_bw_Bps / 1e9);
    for (int u = 0; u < pf->n_units; u++)
        if (strncmp(pf->units[u].device, "vk", 2) == 0)
            printf("         %s on %s (%s): f32 %.1f, f16 %.1f GFLOP/s, int8 %.1f GOP/s, mem_bw "
                   "%.2f GB/s (measured);\n",
                   pf->units[u].name, pf->units[u].device, qeil_unit_kind_name(pf->units[u].kind),
                   pf->units[u].peak_ops[QEIL_DT_F32] / 1e9,
                   pf->units[u].peak_ops[QEIL_DT_F16] / 1e9,
                   pf->units[u].peak_ops[QEIL_DT_INT8] / 1e9, pf->units[u].mem_bw_Bps / 1e9);
    printf("         power and thermal fields are defaults (docs/probe.md)\n");
    if (out_path)
        printf("profile written to %s (use: qeil plan --platform %s)\n", cli_term(out_path),
               cli_term(out_path));
    else
        printf("profile not saved: run 'qeil probe -o probe.json', then 'qeil plan --platform "
               "probe.json'\n");
}

/* ------------------------------------------------------------------------ */
/* JSON (cJSON; numbers to 6 significant digits, null for the unknown)       */
/* ------------------------------------------------------------------------ */

/* A number rounded to 6 significant digits (what "%.6g" printed before
 * cJSON wrote this output), or null for the non-finite and, with
 * zero_is_null, for 0 (unknown / not measured). */
static cJSON *jnum(double v, int zero_is_null)
{
    if (!isfinite(v) || (zero_is_null && v == 0)) return cJSON_CreateNull();
    char buf[40];
    snprintf(buf, sizeof buf, "%.6g", v);
    return cJSON_CreateNumber(strtod(buf, NULL));
}

static cJSON *jstr_or_null(const char *s)
{
    return s && s[0] ? cJSON_CreateString(s) : cJSON_CreateNull();
}

static void add(cJSON *o, const char *k, cJSON *v) { cJSON_AddItemToObject(o, k, v); }

static void add_int(cJSON *o, const char *k, double v) { cJSON_AddNumberToObject(o, k, v); }

static cJSON *str_array(const char *const *v, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
    return a;
}

static cJSON *gpus_json(const qeil_probe_result *r, const qeil_platform *pf)
{
    cJSON *o = cJSON_CreateObject();
    add(o, "status", jstr_or_null(r->gpu_status));
    add(o, "timing", cJSON_CreateString("host monotonic clock from vkQueueSubmit to the fence, "
                                        "best of 3"));
    cJSON *list = cJSON_CreateArray();
    for (int i = 0; i < r->n_gpus && i < QEIL_PROBE_MAX_GPUS; i++) {
        const qeil_probe_gpu *g = &r->gpus[i];
        const qeil_unit *u = unit_of(pf, g->device);
        cJSON *d = cJSON_CreateObject();
        add(d, "device", cJSON_CreateString(g->device));
        add(d, "name", cJSON_CreateString(g->name));
        add(d, "type", cJSON_CreateString(g->type));
        add_int(d, "vendor_id", g->vendor_id);
        add_int(d, "device_id", g->device_id);
        add(d, "api", cJSON_CreateString(g->api));
        add(d, "unified_memory", cJSON_CreateBool(g->unified_memory));
        add(d, "heap_B", jnum(g->heap_B, 1));
        add(d, "f32_flops", jnum(g->f32_flops, 1));
        add(d, "f16_flops", jnum(g->f16_flops, 1));
        add(d, "int8_ops", jnum(g->int8_ops, 1));
        add(d, "bw_Bps", jnum(g->bw_Bps, 1));
        add_int(d, "bw_ws_B", (double)g->bw_ws_B);
        add(d, "link_bw_Bps", jnum(g->link_bw_Bps, 1));
        add_int(d, "n_groups", g->n_groups);
        cJSON *f = cJSON_CreateObject();
        add(f, "f32", jstr_or_null(g->form_f32));
        add(f, "f16", jstr_or_null(g->form_f16));
        add(f, "int8", jstr_or_null(g->form_int8));
        add(f, "bw", jstr_or_null(g->form_bw));
        add(d, "shaders", f);
        add(d, "timing", jstr_or_null(g->timing));
        add(d, "unit", u ? cJSON_CreateString(u->name) : cJSON_CreateNull());
        add(d, "unit_kind", u ? cJSON_CreateString(qeil_unit_kind_name(u->kind)) : cJSON_CreateNull());
        add(d, "pool", u ? cJSON_CreateString(pf->pools[u->pool].name) : cJSON_CreateNull());
        add(d, "error", jstr_or_null(g->error));
        cJSON_AddItemToArray(list, d);
    }
    add(o, "devices", list);
    return o;
}

static int print_json(const qeil_probe_result *r, const char *out_path, const char *profile,
                      const qeil_platform *pf)
{
    char lv[8];
    int T = r->n_threads;
    double f32 = r->f32_flops[T - 1], int8 = r->int8_ops[T - 1];
    cJSON *root = cJSON_CreateObject(), *o;
    add(root, "version", cJSON_CreateString(qeil_version()));
    add(root, "command", cJSON_CreateString("probe"));

    add(root, "cpu", o = cJSON_CreateObject());
    add(o, "model", cJSON_CreateString(r->cpu_model));
    add_int(o, "n_cpus", r->n_cpus);
    add_int(o, "n_cores", r->n_cores);
    add(o, "freq_Hz", jnum(r->freq_Hz, 1));
    add(o, "freq_source", cJSON_CreateString(r->freq_source));
    add(o, "mem_total_B", jnum(r->mem_total_B, 1));
    add(o, "features", cJSON_CreateString(r->cpu_features));

    add(root, "params", o = cJSON_CreateObject());
    add_int(o, "threads", T);
    add(o, "min_time_s", jnum(r->min_time_s, 0));
    add_int(o, "largest_ws_B", r->n_points ? (double)r->ws_B[r->n_points - 1] : 0);
    add_int(o, "repetitions", 3);

    add(root, "kernels", o = cJSON_CreateObject());
    add(o, "f32", cJSON_CreateString(r->kernel_f32));
    add(o, "int8", cJSON_CreateString(r->kernel_int8));
    add(o, "triad", cJSON_CreateString(r->kernel_triad));

    add(root, "units", o = cJSON_CreateObject());
    add(o, "f32_flops", cJSON_CreateString("FLOP/s"));
    add(o, "int8_ops", cJSON_CreateString("OP/s"));
    add(o, "bw_Bps", cJSON_CreateString("B/s"));
    add(o, "ws_B", cJSON_CreateString("B"));
    add(o, "size_B", cJSON_CreateString("B"));
    add(o, "freq_Hz", cJSON_CreateString("Hz"));
    add(o, "f16_flops", cJSON_CreateString("FLOP/s"));

    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < T; i++) {
        cJSON *c = cJSON_CreateObject();
        add_int(c, "threads", i + 1);
        add(c, "f32_flops", jnum(r->f32_flops[i], 0));
        add(c, "int8_ops", jnum(r->int8_ops[i], 0));
        cJSON_AddItemToArray(a, c);
    }
    add(root, "compute", a);

    add(root, "clusters", o = cJSON_CreateObject());
    add(o, "source", cJSON_CreateString(r->cluster_source));
    a = cJSON_CreateArray();
    for (int k = 0; k < r->n_clusters && k < QEIL_PROBE_MAX_CLUSTERS; k++) {
        const qeil_probe_cluster *c = &r->clusters[k];
        cJSON *e = cJSON_CreateObject();
        add(e, "name", cJSON_CreateString(c->name));
        add(e, "cpus", cJSON_CreateString(c->cpus));
        add_int(e, "n_cpus", c->n_cpus);
        add_int(e, "n_cores", c->n_cores);
        add_int(e, "capacity", (double)c->capacity);
        add(e, "freq_Hz", jnum(c->freq_Hz, 1));
        /* measured only when there are several clusters */
        const int m = r->n_clusters >= 2;
        add(e, "f32_flops", jnum(m ? c->f32_flops : 0, 1));
        add(e, "int8_ops", jnum(m ? c->int8_ops : 0, 1));
        add(e, "read_bw_Bps", jnum(m ? c->read_bw_Bps : 0, 1));
        cJSON_AddItemToArray(a, e);
    }
    add(o, "list", a);

    add(root, "bandwidth", o = cJSON_CreateObject());
    add(o, "kernel", cJSON_CreateString("triad"));
    add_int(o, "bytes_per_iteration", 24);
    add_int(o, "threads", T);
    a = cJSON_CreateArray();
    for (int i = 0; i < r->n_points; i++) {
        cJSON *e = cJSON_CreateObject();
        add_int(e, "ws_B", (double)r->ws_B[i]);
        add(e, "bw_Bps", jnum(r->bw_Bps[i], 0));
        add(e, "level", cJSON_CreateString(level_of(r, r->ws_B[i], lv, sizeof lv)));
        cJSON_AddItemToArray(a, e);
    }
    add(o, "points", a);

    a = cJSON_CreateArray();
    for (int L = 0; L < 4; L++) {
        if (!r->cache_size_B[L]) continue;
        cJSON *e = cJSON_CreateObject();
        add_int(e, "level", L + 1);
        add_int(e, "size_B", (double)r->cache_size_B[L]);
        add_int(e, "agg_B", (double)r->cache_agg_B[L]);
        add(e, "bw_Bps", jnum(r->cache_bw_Bps[L], 1));
        cJSON_AddItemToArray(a, e);
    }
    add(root, "caches", a);

    add(root, "dram", o = cJSON_CreateObject());
    add(o, "bw_Bps", jnum(r->dram_bw_Bps, 0));
    add_int(o, "n_points", r->dram_n_points);
    add(o, "reached", cJSON_CreateBool(r->dram_n_points > 0));
    add(o, "read_bw_Bps", jnum(r->read_bw_Bps, 1));

    add(root, "theory", o = cJSON_CreateObject());
    add(o, "f32_flop_per_cycle", jnum(r->f32_flop_per_cycle, 1));
    add(o, "int8_op_per_cycle", jnum(r->int8_op_per_cycle, 1));
    add(o, "f32_flops", jnum(r->f32_peak_theory, 1));
    add(o, "int8_ops", jnum(r->int8_peak_theory, 1));
    add(o, "f32_ratio", jnum(r->f32_peak_theory > 0 ? f32 / r->f32_peak_theory : 0, 1));
    add(o, "int8_ratio", jnum(r->int8_peak_theory > 0 ? int8 / r->int8_peak_theory : 0, 1));

    add(root, "gpus", gpus_json(r, pf));

    static const char *const measured[] = {"peak_ops.f32", "peak_ops.int8", "mem_bw_Bps",
                                           "pools[0].bw_Bps"};
    static const char *const derived[] = {
        "peak_ops.f16 = peak_ops.f32", "peak_ops.int4 = 0",
        "eta_compute = eta_mem = 1 (peaks are achieved rates)",
        "e_op_J = default dynamic power / measured rate"};
    char freq[64];
    snprintf(freq, sizeof freq, "dvfs[0].freq_Hz (%s)",
             r->freq_Hz > 0 ? r->freq_source : "unknown: default 2 GHz");
    const char *const from_os[] = {"pools[0].capacity_B (MemTotal)", freq};
    static const char *const defaults[] = {
        "e_byte_J", "p_const_W", "p_leak_ref_W", "t_leak_ref_C", "leak_kappa_perK", "r_th_KpW",
        "c_th_JpK", "t_amb_C", "t_max_C", "dvfs[0].volt_V", "rho_max", "dvfs[0].freq_Hz"};
    static const char *const vulkan[] = {
        "units on vk<i>: peak_ops.f32/f16/int8 and mem_bw_Bps measured (0 = unsupported)",
        "their power and thermal fields: defaults by device class (docs/probe.md)",
        "own pool (discrete): capacity_B = heap, bw_Bps measured",
        "its link's bw_Bps: host-to-device copy measured, else default 25 GB/s"};
    add(root, "provenance", o = cJSON_CreateObject());
    add(o, "measured", str_array(measured, 4));
    add(o, "derived", str_array(derived, 4));
    add(o, "from_os", str_array(from_os, 2));
    add(o, "default", str_array(defaults, r->freq_Hz > 0 ? 11 : 12));
    add(o, "vulkan", str_array(vulkan, 4));

    add(root, "profile_path", jstr_or_null(out_path));
    cJSON *prof = cJSON_Parse(profile);
    add(root, "profile", prof ? prof : cJSON_CreateNull());
    const int rc = prof ? cli_json_print(root) : -1;
    cJSON_Delete(root);
    return rc;
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
    int have_threads, have_min_time, have_max_ws, quick, cpu_only;
    const char *out_path, *sysfs_root;
    cli_output fmt;
    probe_svg sv; /* --svg and what it draws */
} probe_opts;

static int parse_devices(const char *cmd, const char *opt, const char *val, void *vo)
{
    probe_opts *o = vo;
    if (strcmp(val, "all") == 0) o->cpu_only = 0;
    else if (strcmp(val, "cpu") == 0) o->cpu_only = 1;
    else return cli_usage_error(cmd, "%s: '%s' is not a device set (allowed all, cpu)", opt, val);
    return 0;
}

static int parse_svg(const char *cmd, const char *opt, const char *val, void *vo)
{
    if (!val[0]) return cli_usage_error(cmd, "%s: empty file name", opt);
    if (val[0] == '-')
        return cli_usage_error(cmd,
                               "%s: '%s' looks like an option, not a file name (write "
                               "./%s for a file of that name)",
                               opt, val, val);
    ((probe_opts *)vo)->sv.svg = val;
    return 0;
}

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
    {CLI_FN("--devices", NULL, "SET",
            "all (default): the CPU and every Vulkan device (one profile\n"
            "unit each, placement vk0, vk1, ...); cpu: the CPU only",
            parse_devices)},
    {CLI_FN("--out", "-o", "FILE", "write the platform profile (JSON) to FILE", parse_out)},
    {CLI_OUTPUT("table or json (default table)", T, fmt, "table|json")},
    {CLI_FN("--svg", NULL, "FILE",
            "also draw each unit's roofline (SVG): attainable ops/s vs\n"
            "arithmetic intensity, one roof per data type (docs/probe.md,\n"
            "\"Roofline picture\")",
            parse_svg)},
    {CLI_STR("--platform", NULL, "NAME|FILE",
             "draw this catalog platform or profile instead of\n"
             "measuring (needs --svg; no measurement option applies)",
             T, sv.platform)},
    {CLI_STR("--model", "-m", "NAME|FILE", "put the model's prefill and decode points on the roofs",
             T, sv.model)},
    {CLI_U64("--prompt-tokens", NULL, "N",
             "prefill length P (default 512, or 4/5 of a smaller context)", T, sv.prompt_tokens, 1,
             1u << 20),
     .given = CLI_GIVEN(T, sv.p_given)},
    {CLI_U64("--gen-tokens", NULL, "N",
             "tokens generated N; decode is drawn at the mean context\n"
             "P + (N-1)/2 (default 128, or what the context leaves)",
             T, sv.gen_tokens, 1, 1u << 20),
     .given = CLI_GIVEN(T, sv.n_given)},
};
#undef T

static const cli_command probe_cmd = {
    CMD,
    "usage: qeil probe [options]\n\n"
    "Measure this machine's CPU: f32 FMA and int8 dot-product throughput for 1..N\n"
    "threads, STREAM-triad bandwidth over working sets from 16 KiB (L1) to DRAM,\n"
    "and a read-only stream at the largest set (the rate weight streaming sees).\n"
    "Then each Vulkan device: f32, f16 and int8 throughput of compute shaders and\n"
    "the bandwidth of a copy between two buffers (--max-ws bytes in all).\n"
    "Builds a platform profile for 'qeil plan --platform FILE.json', one unit per\n"
    "device: compute and bandwidth measured, power and thermal documented defaults.\n",
    probe_table,
    CLI_NOPTS(probe_table),
    "Progress goes to stderr. Takes about (6 x N + 3 x (points + 1)) x S seconds.\n"
    "Method, op counting and defaults: docs/probe.md.\n"
    "example: qeil probe --svg roof.svg --platform probe.json -m model.gguf\n",
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
    const int gpus = !o.cpu_only;
    probe_svg sv = o.sv; /* --svg and what it draws (probe_svg.h) */

    /* --svg's file and model are checked before the measuring; --platform
     * draws a profile and measures nothing */
    int drawn = 0, rc0 = probe_svg_begin(CMD, argc, argv, &sv, &drawn);
    if (rc0 != CLI_OK || drawn) return rc0;

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
    p.gpus = gpus;
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
    if (fmt == CLI_OUT_JSON) {
        if (print_json(r, written ? out_path : NULL, profile, &pf) != 0)
            rc = cli_fail(CMD, "out of memory writing the JSON output");
    } else {
        print_table(r, written ? out_path : NULL, &pf);
    }
    fflush(stdout);
    if (out_path && !written) rc = cli_fail(CMD, "%s", qeil_ctx_errmsg(ctx));
    if (probe_svg_write(CMD, &sv, &pf) != CLI_OK) rc = CLI_FAIL;

done:
    free(target);
    if (profile) qeil_free(ctx, profile);
    qeil_free(ctx, r);
    qeil_ctx_free(ctx);
    return rc;
}
