/*
 * cpu_clusters.c — core clusters from sysfs (see cpu_clusters.h).
 */
#include "device/cpu_clusters.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One line of a small sysfs file, trailing newline dropped; -1 if absent. */
static int read_text(const char *root, const char *path, char *buf, size_t n)
{
    char full[512];
    snprintf(full, sizeof full, "%s%s", root, path);
    FILE *f = fopen(full, "r");
    if (!f) return -1;
    const int ok = fgets(buf, (int)n, f) != NULL;
    fclose(f);
    if (!ok) return -1;
    buf[strcspn(buf, "\n")] = '\0';
    return 0;
}

/* A non-negative decimal integer, the whole string; -1 otherwise. */
static long parse_count(const char *s)
{
    char *end;
    if (*s < '0' || *s > '9') return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || v > 1ull << 40) return -1;
    return (long)v;
}

static long read_count(const char *root, const char *path)
{
    char buf[64];
    return read_text(root, path, buf, sizeof buf) == 0 ? parse_count(buf) : -1;
}

/* Is cpu in the kernel's CPU list "0-7,16,18-19"? -1 when the list is
 * malformed. */
static int in_cpu_list(const char *list, int cpu)
{
    const char *p = list;
    while (*p) {
        char *end;
        if (*p < '0' || *p > '9') return -1;
        long a = strtol(p, &end, 10), b = a;
        if (*end == '-') {
            if (end[1] < '0' || end[1] > '9') return -1;
            b = strtol(end + 1, &end, 10);
        }
        if (b < a || (*end && *end != ',')) return -1;
        if (cpu >= a && cpu <= b) return 1;
        p = *end ? end + 1 : end;
    }
    return 0;
}

static int cmp_int(const void *a, const void *b)
{
    const int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

void qeil_cpu_list_format(const int *cpus, int n_cpus, char *buf, size_t n)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < n_cpus;) {
        int j = i;
        while (j + 1 < n_cpus && cpus[j + 1] == cpus[j] + 1) j++;
        char part[32];
        if (j > i) snprintf(part, sizeof part, "%s%d-%d", len ? "," : "", cpus[i], cpus[j]);
        else snprintf(part, sizeof part, "%s%d", len ? "," : "", cpus[i]);
        const size_t pl = strlen(part);
        if (len + pl + 1 > n) break;
        memcpy(buf + len, part, pl + 1);
        len += pl;
        i = j + 1;
    }
}

/* Cluster key of each CPU by one property; returns 0 when every CPU has it. */
static int keys_capacity(const char *root, const int *cpus, int n, double *key)
{
    for (int i = 0; i < n; i++) {
        char path[128];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/cpu_capacity", cpus[i]);
        const long v = read_count(root, path);
        if (v <= 0) return -1;
        key[i] = (double)v;
    }
    return 0;
}

static int keys_freq(const char *root, const int *cpus, int n, double *key)
{
    for (int i = 0; i < n; i++) {
        char path[128];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/cpufreq/cpuinfo_max_freq",
                 cpus[i]);
        const long v = read_count(root, path);
        if (v <= 0) return -1;
        key[i] = (double)v * 1e3; /* kHz */
    }
    return 0;
}

/* x86 hybrid: 2 for cpu_core, 1 for cpu_atom. */
static int keys_type(const char *root, const int *cpus, int n, double *key)
{
    char core[4096], atom[4096];
    if (read_text(root, "/sys/devices/cpu_core/cpus", core, sizeof core) != 0 ||
        read_text(root, "/sys/devices/cpu_atom/cpus", atom, sizeof atom) != 0)
        return -1;
    for (int i = 0; i < n; i++) {
        const int c = in_cpu_list(core, cpus[i]), a = in_cpu_list(atom, cpus[i]);
        if (c < 0 || a < 0 || c == a) return -1; /* malformed, or in neither / both */
        key[i] = c ? 2 : 1;
    }
    return 0;
}

/* Fold cpu's capacity and top clock into its cluster's. */
static void add_props(const char *root, qeil_cpu_cluster *c, int cpu)
{
    char path[128];
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/cpu_capacity", cpu);
    const long cap = read_count(root, path);
    if (cap > c->capacity) c->capacity = cap;
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/cpufreq/cpuinfo_max_freq", cpu);
    const long khz = read_count(root, path);
    if (khz > 0 && (double)khz * 1e3 > c->max_freq_Hz) c->max_freq_Hz = (double)khz * 1e3;
}

int qeil_cpu_clusters_read(const char *root, const int *cpus_in, int n_cpus, qeil_cpu_clusters *out)
{
    if (!out || !cpus_in || n_cpus < 1 || n_cpus > QEIL_PROBE_MAX_THREADS) return -1;
    if (!root || !root[0] || strcmp(root, "/") == 0) root = "";
    memset(out, 0, sizeof *out);
    int cpus[QEIL_PROBE_MAX_THREADS];
    memcpy(cpus, cpus_in, (size_t)n_cpus * sizeof cpus[0]);
    qsort(cpus, (size_t)n_cpus, sizeof cpus[0], cmp_int);

    double key[QEIL_PROBE_MAX_THREADS];
    double tol = 0; /* relative: keys within tol of a cluster's largest join it */
    if (keys_type(root, cpus, n_cpus, key) == 0) {
        snprintf(out->source, sizeof out->source, "cpu_type");
    } else if (keys_capacity(root, cpus, n_cpus, key) == 0) {
        snprintf(out->source, sizeof out->source, "cpu_capacity");
    } else if (keys_freq(root, cpus, n_cpus, key) == 0) {
        snprintf(out->source, sizeof out->source, "cpuinfo_max_freq");
        tol = 0.10;
    } else {
        snprintf(out->source, sizeof out->source, "uniform");
        for (int i = 0; i < n_cpus; i++) key[i] = 1;
    }

    /* distinct keys, largest first; a key within tol below the current
     * cluster's top joins it */
    double sorted[QEIL_PROBE_MAX_THREADS];
    memcpy(sorted, key, (size_t)n_cpus * sizeof key[0]);
    int cl_of[QEIL_PROBE_MAX_THREADS];
    int n_cl = 0;
    for (;;) {
        /* the largest key not yet assigned */
        double best = -1;
        for (int i = 0; i < n_cpus; i++)
            if (sorted[i] > best) best = sorted[i];
        if (best < 0) break;
        for (int i = 0; i < n_cpus; i++)
            if (sorted[i] >= 0 && sorted[i] >= best * (1 - tol)) {
                cl_of[i] = n_cl;
                sorted[i] = -1;
            }
        n_cl++;
    }
    if (n_cl > QEIL_PROBE_MAX_CLUSTERS) {
        snprintf(out->source, sizeof out->source, "uniform");
        n_cl = 1;
        for (int i = 0; i < n_cpus; i++) cl_of[i] = 0;
    }
    out->n = n_cl;
    for (int i = 0; i < n_cpus; i++) {
        qeil_cpu_cluster *c = &out->c[cl_of[i]];
        c->cpus[c->n_cpus++] = cpus[i];
        add_props(root, c, cpus[i]);
    }
    static const char *const k_arm2[] = {"big", "little"};
    static const char *const k_arm3[] = {"big", "mid", "little"};
    for (int k = 0; k < n_cl; k++) {
        qeil_cpu_cluster *c = &out->c[k];
        if (n_cl == 1) snprintf(c->name, sizeof c->name, "all");
        else if (strcmp(out->source, "cpu_type") == 0) snprintf(c->name, sizeof c->name, "%s", k ? "e" : "p");
        else if (n_cl == 2) snprintf(c->name, sizeof c->name, "%s", k_arm2[k]);
        else if (n_cl == 3) snprintf(c->name, sizeof c->name, "%s", k_arm3[k]);
        else snprintf(c->name, sizeof c->name, "c%d", k);
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Clusters named by hand (QEIL_CPU_CLUSTERS)                                */
/* ------------------------------------------------------------------------ */

#define CPU_NUM_MAX 65535 /* past any kernel's NR_CPUS */

/* A CPU number s[0..n): digits only, <= CPU_NUM_MAX; -1 otherwise. */
static long parse_cpu(const char *s, size_t n)
{
    if (n == 0 || n > 5) return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v <= CPU_NUM_MAX ? v : -1;
}

static int name_ok(const char *s, size_t n)
{
    if (n < 1 || n > 15) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9'))) return 0;
    return 1;
}

qeil_status qeil_cpu_clusters_parse(qeil_ctx *ctx, const char *what, const char *spec,
                                    const char *root, const int *allowed, int n_allowed,
                                    qeil_cpu_clusters *out)
{
    if (!what) what = "cpu clusters";
    if (!spec || !out || !allowed || n_allowed < 1)
        return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "%s: NULL argument", what);
    if (!root || !root[0] || strcmp(root, "/") == 0) root = "";
    memset(out, 0, sizeof *out);
    snprintf(out->source, sizeof out->source, "override");
    char present[4096];
    const int have_present =
        read_text(root, "/sys/devices/system/cpu/present", present, sizeof present) == 0 &&
        in_cpu_list(present, 0) >= 0;
    char allowed_s[256];
    {
        int sorted[QEIL_PROBE_MAX_THREADS];
        const int na = n_allowed < QEIL_PROBE_MAX_THREADS ? n_allowed : QEIL_PROBE_MAX_THREADS;
        memcpy(sorted, allowed, (size_t)na * sizeof sorted[0]);
        qsort(sorted, (size_t)na, sizeof sorted[0], cmp_int);
        qeil_cpu_list_format(sorted, na, allowed_s, sizeof allowed_s);
    }
    const char *example = "e.g. p=0-3,e=4-7";
    if (!*spec) return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "%s: empty (%s)", what, example);
    qeil_cpu_cluster *cur = NULL;
    const char *p = spec;
    for (;;) {
        const char *end = strchr(p, ',');
        const size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        const char *list = p;
        size_t list_n = len;
        if (eq) {
            const size_t nn = (size_t)(eq - p);
            if (!name_ok(p, nn))
                return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT,
                                     "%s: cluster name '%.*s' (allowed: 1 to 15 of a-z, 0-9; %s)",
                                     what, (int)nn, p, example);
            for (int k = 0; k < out->n; k++)
                if (strlen(out->c[k].name) == nn && memcmp(out->c[k].name, p, nn) == 0)
                    return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "%s: cluster '%.*s' is named twice",
                                         what, (int)nn, p);
            if (out->n == QEIL_PROBE_MAX_CLUSTERS)
                return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "%s: more than %d clusters (allowed 1..%d)",
                                     what, QEIL_PROBE_MAX_CLUSTERS, QEIL_PROBE_MAX_CLUSTERS);
            cur = &out->c[out->n++];
            memcpy(cur->name, p, nn);
            cur->name[nn] = '\0';
            list = eq + 1;
            list_n = len - nn - 1;
        } else if (!cur) {
            return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "%s: '%.*s' comes before any NAME= (%s)",
                                 what, (int)len, p, example);
        }
        /* one item: N or N-M */
        const char *dash = memchr(list, '-', list_n);
        const long a = parse_cpu(list, dash ? (size_t)(dash - list) : list_n);
        const long b = dash ? parse_cpu(dash + 1, list_n - (size_t)(dash + 1 - list)) : a;
        if (a < 0 || b < 0)
            return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT,
                                 "%s: cluster '%s': '%.*s' is not a CPU number or range N-M "
                                 "(CPU numbers 0..%d; %s)",
                                 what, cur->name, (int)list_n, list, CPU_NUM_MAX, example);
        if (b < a)
            return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "%s: cluster '%s': range '%.*s' runs backwards",
                                 what, cur->name, (int)list_n, list);
        for (long cpu = a; cpu <= b; cpu++) {
            if (have_present && in_cpu_list(present, (int)cpu) != 1)
                return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                                     "%s: cluster '%s': cpu %ld does not exist (this machine has "
                                     "cpu %s)",
                                     what, cur->name, cpu, present);
            int ok = 0;
            for (int i = 0; i < n_allowed && !ok; i++) ok = allowed[i] == cpu;
            if (!ok)
                return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                                     "%s: cluster '%s': cpu %ld is outside the CPUs this process "
                                     "may run on (%s)",
                                     what, cur->name, cpu, allowed_s);
            for (int k = 0; k < out->n; k++)
                for (int j = 0; j < out->c[k].n_cpus; j++)
                    if (out->c[k].cpus[j] == cpu)
                        return qeil_ctx_fail(ctx, QEIL_ERR_INVALID,
                                             "%s: cpu %ld is in cluster '%s' and again in '%s' "
                                             "(clusters are disjoint)",
                                             what, cpu, out->c[k].name, cur->name);
            if (cur->n_cpus == QEIL_PROBE_MAX_THREADS)
                return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "%s: cluster '%s': more than %d CPUs",
                                     what, cur->name, QEIL_PROBE_MAX_THREADS);
            cur->cpus[cur->n_cpus++] = (int)cpu;
        }
        if (!end) break;
        p = end + 1;
        if (!*p) return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "%s: trailing ','", what);
    }
    for (int k = 0; k < out->n; k++) {
        qeil_cpu_cluster *c = &out->c[k];
        if (c->n_cpus == 0)
            return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "%s: cluster '%s' has no CPUs (%s)", what,
                                 c->name, example);
        qsort(c->cpus, (size_t)c->n_cpus, sizeof c->cpus[0], cmp_int);
        for (int j = 0; j < c->n_cpus; j++) add_props(root, c, c->cpus[j]);
    }
    return QEIL_OK;
}

qeil_status qeil_cpu_clusters_detect(qeil_ctx *ctx, const char *root, const int *cpus, int n_cpus,
                                     qeil_cpu_clusters *out)
{
    const char *env = getenv("QEIL_CPU_CLUSTERS");
    if (env && env[0])
        return qeil_cpu_clusters_parse(ctx, "QEIL_CPU_CLUSTERS", env, root, cpus, n_cpus, out);
    if (qeil_cpu_clusters_read(root, cpus, n_cpus, out) != 0)
        return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "cpu clusters: %d CPUs (allowed 1..%d)", n_cpus,
                             QEIL_PROBE_MAX_THREADS);
    return QEIL_OK;
}
