/* probe.c — `qeil probe`: measure this machine's CPU (f32 FMA and int8 dot
 * throughput for 1..N threads, a STREAM-triad bandwidth sweep over working
 * sets from L1 to DRAM) and turn the result into a one-unit platform.
 * Method, operation counting and every default: docs/probe.md.
 *
 * Timing: a team of pinned threads meets at a barrier, each runs short
 * chunks of its kernel until the main thread (asleep for min_time_s) raises
 * a stop flag, then all meet again. Rate = total work / (last end - first
 * start); best of 3 repetitions. The main thread sleeps rather than spins so
 * that it does not steal a core from the measurement. */
#define _GNU_SOURCE /* sched_getaffinity, pthread_setaffinity_np, CPU_SET */
#include "qeil/device.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/cpu.h"
#include "device/cpu_clusters.h"
#include "device/probe_gpu.h"
#include "device/probe_kernels.h"
#include "core/util.h"

#define KIB ((size_t)1024)
#define MIB (KIB * 1024)
#define GIB (MIB * 1024)

#define REPS 3                      /* best of 3 repetitions per measurement */
#define MIN_TIME_MAX_S 60.0         /* per measurement */
#define WS_MIN ((size_t)16 * KIB)   /* first point of the sweep */
#define MAX_WS_MIN ((size_t)64 * KIB)
/* 1 TiB (a quarter of the address space on 32-bit targets) */
#define MAX_WS_MAX (SIZE_MAX / 4 < 1099511627776ULL ? SIZE_MAX / 4 : (size_t)1099511627776ULL)
#define DRAM_FACTOR 4               /* a working set >= 4x the last cache level is DRAM */
/* Sweep sizes fall a few bytes short of their nominal power of two (whole
 * elements per thread), so every boundary of the plateau rule is 1 % wide. */
#define WS_SLACK 1.01
#define MAX_CPUS QEIL_PROBE_MAX_THREADS
#define TRIAD_CHUNK ((size_t)32768) /* elements per chunk: 768 KiB moved, ~0.1 ms */

/* ------------------------------------------------------------------------ */
/* Small helpers                                                             */
/* ------------------------------------------------------------------------ */

static void sleep_s(double s)
{
    struct timespec ts;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* First line of a small text file, without the newline. 0 on success. */
static int read_line(const char *path, char *buf, size_t n)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char *ok = fgets(buf, (int)n, f);
    fclose(f);
    if (!ok) return -1;
    buf[strcspn(buf, "\n")] = '\0';
    return 0;
}

static int read_long(const char *path, long *out)
{
    char buf[64], *end;
    if (read_line(path, buf, sizeof buf) != 0) return -1;
    errno = 0;
    long v = strtol(buf, &end, 10);
    if (end == buf || errno) return -1;
    *out = v;
    return 0;
}

/* sysfs cache sizes: "32K", "1024K", "32768K" (also accept M, G, plain bytes). */
static size_t parse_size(const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || errno) return 0;
    switch (*end) {
    case 'K': case 'k': return (size_t)v * KIB;
    case 'M': case 'm': return (size_t)v * MIB;
    case 'G': case 'g': return (size_t)v * GIB;
    case '\0': return (size_t)v;
    default: return 0;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    if (n <= 0) return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Keep printable ASCII only (profile descriptions must be clean UTF-8
 * without control characters; /proc text is not trusted). */
static void sanitize_text(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f) *s = ' ';
}

/* ------------------------------------------------------------------------ */
/* What the machine is                                                       */
/* ------------------------------------------------------------------------ */

typedef struct {
    int n_cpus;          /* CPUs this process may run on */
    int cpus[MAX_CPUS];  /* the first MAX_CPUS of them, one per physical core first */
    int first_of_core[MAX_CPUS]; /* 1 where cpus[i] is the first CPU seen of its core */
} cpu_set_info;

/* CPUs of the affinity mask (what the scheduler lets us use: containers and
 * taskset shrink it below the online count), else all online CPUs. */
static void list_cpus(cpu_set_info *ci)
{
    ci->n_cpus = 0;
#ifdef __linux__
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        for (int c = 0; c < CPU_SETSIZE; c++) {
            if (!CPU_ISSET(c, &set)) continue;
            if (ci->n_cpus < MAX_CPUS) ci->cpus[ci->n_cpus] = c;
            ci->n_cpus++;
        }
    }
#endif
    if (ci->n_cpus == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        ci->n_cpus = n > 0 ? (int)(n < 1 << 20 ? n : 1 << 20) : 1;
        for (int c = 0; c < ci->n_cpus && c < MAX_CPUS; c++) ci->cpus[c] = c;
    }
}

/* Order the CPUs one per physical core first, then the SMT siblings, so that
 * T threads land on T different cores while T <= cores. Core identity is
 * (physical_package_id, core_id) from sysfs topology; where unreadable, each
 * CPU counts as its own core (documented). */
static void order_by_core(cpu_set_info *ci)
{
    int n = ci->n_cpus < MAX_CPUS ? ci->n_cpus : MAX_CPUS;
    long pkg[MAX_CPUS], core[MAX_CPUS];
    int rank[MAX_CPUS], known = 1;
    for (int i = 0; i < n; i++) {
        char path[128];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/physical_package_id",
                 ci->cpus[i]);
        if (read_long(path, &pkg[i]) != 0) known = 0;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/core_id", ci->cpus[i]);
        if (read_long(path, &core[i]) != 0) known = 0;
    }
    for (int i = 0; i < n; i++) {
        rank[i] = 0;
        if (known)
            for (int j = 0; j < i; j++) rank[i] += pkg[j] == pkg[i] && core[j] == core[i];
    }
    /* stable reorder by rank */
    int out[MAX_CPUS], first[MAX_CPUS], k = 0;
    for (int r = 0; k < n; r++)
        for (int i = 0; i < n; i++)
            if (rank[i] == r) {
                first[k] = r == 0;
                out[k++] = ci->cpus[i];
            }
    memcpy(ci->cpus, out, (size_t)n * sizeof out[0]);
    memcpy(ci->first_of_core, first, (size_t)n * sizeof first[0]);
}

/* Max clock of one CPU in Hz: cpufreq's cpuinfo_max_freq (kHz), the
 * hardware limit including boost. 0 if absent (VMs, some ARM boards). */
/* The CPUs this process may use, one per physical core first; returns how
 * many of them a team may take (at most MAX_CPUS). */
static int usable_cpus(cpu_set_info *ci)
{
    memset(ci, 0, sizeof *ci);
    list_cpus(ci);
    order_by_core(ci);
    return ci->n_cpus < MAX_CPUS ? ci->n_cpus : MAX_CPUS;
}

static double cpufreq_max_Hz(int cpu)
{
    char path[128];
    long khz;
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/cpufreq/cpuinfo_max_freq", cpu);
    return read_long(path, &khz) == 0 && khz > 0 ? (double)khz * 1e3 : 0.0;
}

/* Fallback: the highest "cpu MHz" in /proc/cpuinfo (the current clock; under
 * a hypervisor usually the nominal clock). Also fills the model name. */
static double scan_cpuinfo(char *model, size_t model_n)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    double mhz = 0;
    char line[512];
    int have_model = 0;
    if (!f) return 0;
    while (fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (!colon) continue;
        char *val = colon + 1;
        while (*val == ' ' || *val == '\t') val++;
        val[strcspn(val, "\n")] = '\0';
        if (strncmp(line, "cpu MHz", 7) == 0) {
            double v = strtod(val, NULL);
            if (isfinite(v) && v > mhz) mhz = v;
        } else if (!have_model && *val &&
                   (strncmp(line, "model name", 10) == 0 || strncmp(line, "Hardware", 8) == 0 ||
                    strncmp(line, "cpu model", 9) == 0)) {
            snprintf(model, model_n, "%s", val);
            have_model = 1;
        }
    }
    fclose(f);
    return mhz * 1e6;
}

static double read_mem_total_B(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    double b = 0;
    if (!f) return 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long long kb;
        if (sscanf(line, "MemTotal: %llu kB", &kb) == 1) {
            b = (double)kb * 1024.0;
            break;
        }
    }
    fclose(f);
    return b;
}

/* Size of cpu's data or unified cache at `level`, and the lowest CPU that
 * shares it (an instance identifier). 0 / -1 when unreadable. */
static size_t cache_of(int cpu, int level, int *instance)
{
    *instance = -1;
    for (int idx = 0; idx < 16; idx++) {
        char path[160], buf[256];
        long lv;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/cache/index%d/level", cpu, idx);
        if (read_long(path, &lv) != 0) continue;
        if (lv != level) continue;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/cache/index%d/type", cpu, idx);
        if (read_line(path, buf, sizeof buf) != 0 || strcmp(buf, "Instruction") == 0) continue;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/cache/index%d/size", cpu, idx);
        if (read_line(path, buf, sizeof buf) != 0) return 0;
        size_t size = parse_size(buf);
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/cache/index%d/shared_cpu_list",
                 cpu, idx);
        if (read_line(path, buf, sizeof buf) == 0) *instance = (int)strtol(buf, NULL, 10);
        return size;
    }
    return 0;
}

/* Per level: the size of one instance (as seen from cpus[0]) and the
 * capacity of all instances the first n CPUs use (private L1/L2 add up over
 * cores, a shared L3 counts once). Unknown instance ids: one per CPU for L1
 * and L2, one in all for L3+ (the common layouts). */
static void read_caches(const cpu_set_info *ci, int n, qeil_probe_result *r)
{
    for (int level = 1; level <= 4; level++) {
        int inst0;
        size_t size = cache_of(ci->cpus[0], level, &inst0);
        r->cache_size_B[level - 1] = size;
        r->cache_agg_B[level - 1] = 0;
        if (size == 0) continue;
        int seen[MAX_CPUS], n_seen = 0, unknown = 0;
        for (int i = 0; i < n; i++) {
            int inst;
            cache_of(ci->cpus[i], level, &inst);
            if (inst < 0) {
                unknown = 1;
                break;
            }
            int dup = 0;
            for (int k = 0; k < n_seen; k++) dup |= seen[k] == inst;
            if (!dup) seen[n_seen++] = inst;
        }
        if (unknown) n_seen = level <= 2 ? n : 1;
        r->cache_agg_B[level - 1] = size * (size_t)n_seen;
    }
}

/* ------------------------------------------------------------------------ */
/* Thread team                                                               */
/* ------------------------------------------------------------------------ */

typedef enum { JOB_F32, JOB_INT8, JOB_TRIAD, JOB_READ } job_kind;

typedef struct probe_team probe_team;

typedef struct {
    probe_team *team;
    int cpu; /* pinned to this CPU (best effort) */
    pthread_t th;
    int started;
    double *a, *b, *c; /* triad slice, n_max elements each, 64-byte aligned */
    void *raw;
    size_t n_max;
    size_t pos;  /* next element of a large slice */
    int touched; /* slice written once by this thread (first touch: local NUMA node) */
    unsigned char scratch[2 * QEIL_PK_INT8_SCRATCH];
    double work, t0, t1; /* last measurement: FLOPs/OPs/bytes, start and end (s) */
    double sink;         /* results consumed here so no kernel can be dropped */
} probe_worker;

struct probe_team {
    int n;
    probe_worker *w;
    pthread_barrier_t bar; /* n workers + the main thread */
    int bar_ok;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int gate; /* 0: wait, 1: run, -1: quit before starting */
    atomic_int stop;
    int quit;
    job_kind job;
    size_t n_elem; /* triad elements per thread for this job */
    int warm;      /* one untimed pass before timing (new working set) */
    qeil_pk_isa isa_f32, isa_int8, isa_triad;
};

static void pin_self(int cpu)
{
#ifdef __linux__
    cpu_set_t set;
    if (cpu < 0 || cpu >= CPU_SETSIZE) return;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    (void)pthread_setaffinity_np(pthread_self(), sizeof set, &set); /* failure: run unpinned */
#else
    (void)cpu;
#endif
}

/* Work per chunk: ~10-50 µs, short against min_time_s so stopping overshoots
 * little, long against the relaxed load of the stop flag. */
static double run_chunk(probe_team *t, probe_worker *w)
{
    switch (t->job) {
    case JOB_F32: {
        float s;
        double ops = qeil_pk_f32_fma(t->isa_f32, 4096, &s);
        w->sink += s;
        return ops;
    }
    case JOB_INT8: {
        int32_t s;
        double ops = qeil_pk_int8_dot(t->isa_int8, t->isa_int8 == QEIL_PK_SCALAR ? 8 : 2048,
                                      w->scratch, &s);
        w->sink += s;
        return ops;
    }
    case JOB_TRIAD: {
        size_t n = t->n_elem;
        double bytes = 0;
        if (n <= TRIAD_CHUNK) {
            /* small sets: whole passes, at least ~64 KiB moved per chunk */
            size_t passes = 1 + (64 * KIB) / (24 * n);
            for (size_t p = 0; p < passes; p++)
                bytes += qeil_pk_triad(t->isa_triad, w->a, w->b, w->c, 3.0, n);
        } else {
            /* large sets: the slice in pieces, wrapping around, so that all
             * threads stop within a piece of each other */
            size_t m = n - w->pos < TRIAD_CHUNK ? n - w->pos : TRIAD_CHUNK;
            bytes = qeil_pk_triad(t->isa_triad, w->a + w->pos, w->b + w->pos, w->c + w->pos, 3.0, m);
            w->pos = w->pos + m == n ? 0 : w->pos + m;
        }
        w->sink += w->a[n / 2];
        return bytes;
    }
    case JOB_READ: {
        /* the triad's chunking, reading the same slice without writing */
        size_t n = t->n_elem;
        double bytes = 0, s = 0;
        if (n <= TRIAD_CHUNK) {
            size_t passes = 1 + (64 * KIB) / (24 * n);
            for (size_t p = 0; p < passes; p++) {
                bytes += qeil_pk_read(t->isa_triad, w->a, w->b, w->c, n, &s);
                w->sink += s;
            }
        } else {
            size_t m = n - w->pos < TRIAD_CHUNK ? n - w->pos : TRIAD_CHUNK;
            bytes = qeil_pk_read(t->isa_triad, w->a + w->pos, w->b + w->pos, w->c + w->pos, m, &s);
            w->sink += s;
            w->pos = w->pos + m == n ? 0 : w->pos + m;
        }
        return bytes;
    }
    }
    return 0;
}

static void *worker_main(void *arg)
{
    probe_worker *w = arg;
    probe_team *t = w->team;
    pin_self(w->cpu);
    pthread_mutex_lock(&t->mu);
    while (t->gate == 0) pthread_cond_wait(&t->cv, &t->mu);
    int go = t->gate;
    pthread_mutex_unlock(&t->mu);
    if (go < 0) return NULL;

    /* int8 scratch for the portable kernel: a in 0..127, b in -64..63 */
    for (int i = 0; i < QEIL_PK_INT8_SCRATCH; i++) {
        w->scratch[i] = (unsigned char)(i * 7 % 128);
        w->scratch[QEIL_PK_INT8_SCRATCH + i] = (unsigned char)(i * 13 % 128);
    }
    for (;;) {
        pthread_barrier_wait(&t->bar); /* A: the job is posted */
        if (t->quit) break;
        if (t->job == JOB_TRIAD || t->job == JOB_READ) {
            if (!w->touched) {
                for (size_t i = 0; i < w->n_max; i++) {
                    w->a[i] = 0.0;
                    w->b[i] = 1.0;
                    w->c[i] = 2.0;
                }
                w->touched = 1;
            }
            /* untimed warm pass (caches, TLBs); a triad for the read job
             * too: it touches the same three arrays */
            if (t->warm) qeil_pk_triad(t->isa_triad, w->a, w->b, w->c, 3.0, t->n_elem);
        }
        pthread_barrier_wait(&t->bar); /* W: everyone warm */
        double work = 0;
        w->pos = 0;
        w->t0 = qeil_clock_s();
        do work += run_chunk(t, w);
        while (!atomic_load_explicit(&t->stop, memory_order_relaxed));
        w->t1 = qeil_clock_s();
        w->work = work;
        pthread_barrier_wait(&t->bar); /* B: results ready */
    }
    return NULL;
}

static void team_stop(qeil_ctx *ctx, probe_team *t)
{
    int running = 0;
    for (int i = 0; i < t->n; i++) running += t->w[i].started;
    if (running == t->n && t->gate == 1) {
        t->quit = 1;
        pthread_barrier_wait(&t->bar);
    } else {
        pthread_mutex_lock(&t->mu);
        t->gate = -1;
        pthread_cond_broadcast(&t->cv);
        pthread_mutex_unlock(&t->mu);
    }
    for (int i = 0; i < t->n; i++)
        if (t->w[i].started) pthread_join(t->w[i].th, NULL);
    for (int i = 0; i < t->n; i++) qeil_free_big(ctx, t->w[i].raw);
    if (t->bar_ok) pthread_barrier_destroy(&t->bar);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    qeil_free(ctx, t->w);
    t->w = NULL;
}

/* Start n workers pinned to cpus[0..n-1], each with a triad slice of n_max
 * doubles per array (0: none). */
static qeil_status team_start(qeil_ctx *ctx, probe_team *t, int n, const int *cpus, size_t n_max)
{
    memset(t, 0, sizeof *t);
    t->n = n;
    atomic_init(&t->stop, 0);
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    t->w = qeil_calloc(ctx, (size_t)n, sizeof *t->w);
    if (!t->w) {
        t->n = 0;
        team_stop(ctx, t);
        return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "probe: out of memory for %d threads", n);
    }
    for (int i = 0; i < n; i++) {
        probe_worker *w = &t->w[i];
        w->team = t;
        w->cpu = cpus[i];
        w->n_max = n_max;
        if (n_max == 0) continue;
        /* malloc, not calloc: the owning thread touches the pages first */
        size_t bytes = 3 * n_max * sizeof(double) + 3 * 64;
        w->raw = qeil_malloc_big(ctx, bytes);
        if (!w->raw) {
            team_stop(ctx, t);
            return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM,
                                 "probe: out of memory for the bandwidth sweep (%zu bytes per "
                                 "thread; lower max_ws_B)",
                                 bytes);
        }
        uintptr_t p = ((uintptr_t)w->raw + 63) & ~(uintptr_t)63;
        size_t stride = (n_max * sizeof(double) + 63) & ~(size_t)63;
        w->a = (double *)p;
        w->b = (double *)(p + stride);
        w->c = (double *)(p + 2 * stride);
    }
    if (pthread_barrier_init(&t->bar, NULL, (unsigned)n + 1) != 0) {
        team_stop(ctx, t);
        return qeil_ctx_fail(ctx, QEIL_ERR_INTERNAL, "probe: pthread_barrier_init failed");
    }
    t->bar_ok = 1;
    for (int i = 0; i < n; i++) {
        int e = pthread_create(&t->w[i].th, NULL, worker_main, &t->w[i]);
        if (e != 0) {
            team_stop(ctx, t);
            return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "probe: cannot start thread %d of %d: %s",
                                 i + 1, n, strerror(e));
        }
        t->w[i].started = 1;
    }
    pthread_mutex_lock(&t->mu);
    t->gate = 1;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    return QEIL_OK;
}

/* One timed run of the posted job; returns the aggregate rate (work/s). */
static double team_measure(probe_team *t, job_kind job, size_t n_elem, int warm, double min_time_s)
{
    t->job = job;
    t->n_elem = n_elem;
    t->warm = warm;
    pthread_barrier_wait(&t->bar); /* A */
    pthread_barrier_wait(&t->bar); /* W */
    sleep_s(min_time_s);
    atomic_store(&t->stop, 1);
    pthread_barrier_wait(&t->bar); /* B */
    atomic_store(&t->stop, 0);
    double t0 = t->w[0].t0, t1 = t->w[0].t1, work = 0;
    for (int i = 0; i < t->n; i++) {
        if (t->w[i].t0 < t0) t0 = t->w[i].t0;
        if (t->w[i].t1 > t1) t1 = t->w[i].t1;
        work += t->w[i].work;
    }
    return t1 > t0 ? work / (t1 - t0) : 0.0;
}

/* ------------------------------------------------------------------------ */
/* Parameters                                                                */
/* ------------------------------------------------------------------------ */

qeil_probe_params qeil_probe_default_params(void)
{
    qeil_probe_params p;
    memset(&p, 0, sizeof p);
    p.max_threads = 0;
    p.min_time_s = 0.2;
    p.max_ws_B = 256 * MIB;
    p.gpus = 1;
    return p;
}

/* Largest working set allowed: half of MemTotal (when known), within
 * MAX_WS_MIN..MAX_WS_MAX. */
static size_t ws_limit_B(double mem_total_B)
{
    size_t hi = MAX_WS_MAX;
    if (mem_total_B > 0 && mem_total_B / 2 < (double)hi) hi = (size_t)(mem_total_B / 2);
    return hi < MAX_WS_MIN ? MAX_WS_MIN : hi;
}

static qeil_status check_params(qeil_ctx *ctx, const qeil_probe_params *p, int n_usable,
                                double mem_total_B)
{
    if (p->max_threads < 0 || p->max_threads > n_usable)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                             "max_threads: %d is out of range (allowed 0..%d: 0 = all CPUs this "
                             "process may run on, at most %d)",
                             p->max_threads, n_usable, QEIL_PROBE_MAX_THREADS);
    if (!(p->min_time_s > 0 && p->min_time_s <= MIN_TIME_MAX_S))
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                             "min_time_s: %g is out of range (allowed (0, %g] seconds)",
                             p->min_time_s, MIN_TIME_MAX_S);
    const size_t hi = ws_limit_B(mem_total_B);
    if (p->max_ws_B < MAX_WS_MIN || p->max_ws_B > hi)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                             "max_ws_B: %zu is out of range (allowed %zu..%zu bytes%s)", p->max_ws_B,
                             MAX_WS_MIN, hi, hi < MAX_WS_MAX ? ": at most half of MemTotal" : "");
    return QEIL_OK;
}

/* ------------------------------------------------------------------------ */
/* The probe                                                                 */
/* ------------------------------------------------------------------------ */

typedef struct {
    const qeil_probe_params *p;
    int done, total;
} progress_state;

static void progress(progress_state *ps, const char *what)
{
    if (ps->p->progress)
        ps->p->progress(ps->p->progress_user, what, ps->total ? (double)ps->done / ps->total : 0.0);
}

/* The Vulkan part's steps (qeil_probe_gpus), counted as GPU_STEPS of the
 * total whatever the number of devices: the fraction stays below 1 until
 * "done". */
#define GPU_STEPS 8
static void gpu_progress(void *user, const char *what, double frac)
{
    (void)frac;
    progress_state *ps = user;
    if (ps->done < ps->total - 1) ps->done++;
    progress(ps, what);
}

/* Best of REPS runs of one job on a team. */
static double best_of(probe_team *t, job_kind job, size_t n_elem, const qeil_probe_params *p,
                      progress_state *ps, const char *what)
{
    double best = 0;
    for (int rep = 0; rep < REPS; rep++) {
        progress(ps, what);
        double r = team_measure(t, job, n_elem, rep == 0, p->min_time_s);
        if (r > best) best = r;
        ps->done++;
    }
    return best;
}

/* Plateau of level L: median of the sweep points that overflow the level
 * below (ws > agg[L-1]) but use at most half of this level's capacity (the
 * other half leaves room for conflict misses, page tables and whatever else
 * runs); DRAM: points at least DRAM_FACTOR x the last level, else the
 * largest three points. Boundaries WS_SLACK wide. */
static void analyse_sweep(qeil_probe_result *r)
{
    double v[QEIL_PROBE_MAX_POINTS];
    double below = 0;
    int last = -1;
    for (int L = 0; L < 4; L++) {
        r->cache_bw_Bps[L] = 0;
        double agg = (double)r->cache_agg_B[L];
        if (agg == 0) continue;
        int n = 0;
        for (int i = 0; i < r->n_points; i++) {
            double ws = (double)r->ws_B[i];
            if (ws > below * WS_SLACK && ws <= agg / 2 * WS_SLACK) v[n++] = r->bw_Bps[i];
        }
        r->cache_bw_Bps[L] = median(v, n);
        below = agg;
        last = L;
    }
    int n = 0;
    if (last >= 0) {
        double lim = (double)DRAM_FACTOR * (double)r->cache_agg_B[last];
        for (int i = 0; i < r->n_points; i++)
            if ((double)r->ws_B[i] * WS_SLACK >= lim) v[n++] = r->bw_Bps[i];
    }
    r->dram_n_points = n;
    if (n == 0)
        for (int i = r->n_points - 3 < 0 ? 0 : r->n_points - 3; i < r->n_points; i++)
            v[n++] = r->bw_Bps[i];
    r->dram_bw_Bps = median(v, n);
}

qeil_status qeil_probe_run(qeil_ctx *ctx, const qeil_probe_params *params, qeil_probe_result *out)
{
    if (!out) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "qeil_probe_run: result is NULL");
    qeil_probe_params p = params ? *params : qeil_probe_default_params();
    memset(out, 0, sizeof *out);

    cpu_set_info ci;
    const int n_usable = usable_cpus(&ci);
    out->mem_total_B = read_mem_total_B();
    qeil_status st = check_params(ctx, &p, n_usable, out->mem_total_B);
    if (st != QEIL_OK) return st;

    int T = p.max_threads ? p.max_threads : n_usable;
    out->n_threads = T;
    out->n_cpus = ci.n_cpus;
    out->min_time_s = p.min_time_s;
    snprintf(out->cpu_model, sizeof out->cpu_model, "unknown CPU");
    double cpuinfo_Hz = scan_cpuinfo(out->cpu_model, sizeof out->cpu_model);
    sanitize_text(out->cpu_model);

    /* cores and clock of the CPUs used; per-core clocks summed so a hybrid
     * part with slower E-cores is not credited at the P-core clock */
    double sum_Hz = 0;
    int freq_known = 1;
    for (int i = 0; i < T; i++) {
        if (!ci.first_of_core[i]) continue;
        out->n_cores++;
        double f = cpufreq_max_Hz(ci.cpus[i]);
        if (f <= 0) freq_known = 0;
        sum_Hz += f;
        if (f > out->freq_Hz) out->freq_Hz = f;
    }
    if (freq_known) {
        snprintf(out->freq_source, sizeof out->freq_source, "cpufreq");
    } else if (cpuinfo_Hz > 0) {
        out->freq_Hz = cpuinfo_Hz;
        sum_Hz = cpuinfo_Hz * out->n_cores;
        snprintf(out->freq_source, sizeof out->freq_source, "/proc/cpuinfo");
    } else {
        out->freq_Hz = 0;
        sum_Hz = 0;
        snprintf(out->freq_source, sizeof out->freq_source, "unknown");
    }
    qeil_pk_cpu_rates(&out->f32_flop_per_cycle, &out->int8_op_per_cycle);
    out->f32_peak_theory = out->f32_flop_per_cycle * sum_Hz;
    out->int8_peak_theory = out->int8_op_per_cycle * sum_Hz;

    read_caches(&ci, T, out);

    /* sweep points: 16 KiB x 2^k up to max_ws_B, plus max_ws_B itself; each
     * thread gets an equal slice of ws / 24 B elements */
    size_t ws_nominal[QEIL_PROBE_MAX_POINTS];
    int np = 0;
    for (size_t ws = WS_MIN; ws <= p.max_ws_B && np < QEIL_PROBE_MAX_POINTS; ws *= 2)
        ws_nominal[np++] = ws;
    if (np < QEIL_PROBE_MAX_POINTS && (np == 0 || ws_nominal[np - 1] < p.max_ws_B))
        ws_nominal[np++] = p.max_ws_B;
    size_t n_max = 0;
    for (int i = 0; i < np; i++) {
        size_t n = ws_nominal[i] / (24 * (size_t)T);
        if (n < 4) continue; /* too small to split over T threads */
        out->ws_B[out->n_points] = 24 * n * (size_t)T;
        out->n_points++;
        if (n > n_max) n_max = n;
    }

    qeil_cpu_features_str(qeil_cpu_features(), out->cpu_features, sizeof out->cpu_features);
    qeil_pk_isa isa_f32 = qeil_pk_best_f32(), isa_int8 = qeil_pk_best_int8(),
                isa_triad = qeil_pk_best_triad();
    snprintf(out->kernel_f32, sizeof out->kernel_f32, "%s", qeil_pk_name(isa_f32, 1));
    snprintf(out->kernel_int8, sizeof out->kernel_int8, "%s", qeil_pk_name(isa_int8, 0));
    snprintf(out->kernel_triad, sizeof out->kernel_triad, "%s", qeil_pk_name(isa_triad, 0));

    /* core clusters of every usable CPU (or QEIL_CPU_CLUSTERS'); measured
     * apart only when there are several (docs/probe.md, "Core clusters") */
    qeil_cpu_clusters cl;
    if ((st = qeil_cpu_clusters_detect(ctx, p.sysfs_root, ci.cpus, n_usable, &cl)) != QEIL_OK)
        return st;
    out->n_clusters = cl.n;
    snprintf(out->cluster_source, sizeof out->cluster_source, "%s", cl.source);
    for (int k = 0; k < cl.n; k++) {
        qeil_probe_cluster *pc = &out->clusters[k];
        snprintf(pc->name, sizeof pc->name, "%s", cl.c[k].name);
        qeil_cpu_list_format(cl.c[k].cpus, cl.c[k].n_cpus, pc->cpus, sizeof pc->cpus);
        pc->n_cpus = cl.c[k].n_cpus;
        pc->capacity = cl.c[k].capacity;
        pc->freq_Hz = cl.c[k].max_freq_Hz;
        if (cl.n == 1) pc->n_cores = out->n_cores; /* not measured apart */
    }
    const int per_cluster = cl.n >= 2 ? REPS * (2 + (out->n_points > 0)) : 0;

    progress_state ps = {&p, 0,
                         REPS * (2 * T + out->n_points + (out->n_points > 0)) + cl.n * per_cluster +
                             (p.gpus ? GPU_STEPS : 0)};
    char what[96];

    /* compute: one team per thread count */
    for (int n = 1; n <= T; n++) {
        probe_team team;
        st = team_start(ctx, &team, n, ci.cpus, 0);
        if (st != QEIL_OK) return st;
        team.isa_f32 = isa_f32;
        team.isa_int8 = isa_int8;
        team.isa_triad = isa_triad;
        snprintf(what, sizeof what, "f32 FMA, %d thread%s", n, n > 1 ? "s" : "");
        out->f32_flops[n - 1] = best_of(&team, JOB_F32, 0, &p, &ps, what);
        snprintf(what, sizeof what, "int8 dot, %d thread%s", n, n > 1 ? "s" : "");
        out->int8_ops[n - 1] = best_of(&team, JOB_INT8, 0, &p, &ps, what);
        team_stop(ctx, &team);
    }

    /* bandwidth: one team of T threads over growing working sets */
    if (out->n_points > 0) {
        probe_team team;
        st = team_start(ctx, &team, T, ci.cpus, n_max);
        if (st != QEIL_OK) return st;
        team.isa_f32 = isa_f32;
        team.isa_int8 = isa_int8;
        team.isa_triad = isa_triad;
        for (int i = 0; i < out->n_points; i++) {
            size_t n = out->ws_B[i] / (24 * (size_t)T);
            double ws = (double)out->ws_B[i];
            if (ws >= 0.999 * (double)MIB) snprintf(what, sizeof what, "triad bandwidth, %.0f MiB", ws / MIB);
            else snprintf(what, sizeof what, "triad bandwidth, %.0f KiB", ws / KIB);
            out->bw_Bps[i] = best_of(&team, JOB_TRIAD, n, &p, &ps, what);
        }
        /* read-only at the largest set (DRAM when the sweep reached it) */
        const size_t n_last = out->ws_B[out->n_points - 1] / (24 * (size_t)T);
        const double ws = (double)out->ws_B[out->n_points - 1];
        snprintf(what, sizeof what, "read bandwidth, %.0f MiB", ws / MIB);
        out->read_bw_Bps = best_of(&team, JOB_READ, n_last, &p, &ps, what);
        team_stop(ctx, &team);
    }

    /* each cluster alone: one thread per physical core of it, compute and
     * the read-only stream at the sweep's largest set */
    for (int k = 0; k < cl.n && cl.n >= 2; k++) {
        qeil_probe_cluster *pc = &out->clusters[k];
        int cc[MAX_CPUS], nc = 0;
        for (int i = 0; i < n_usable; i++) {
            if (!ci.first_of_core[i]) continue;
            for (int j = 0; j < cl.c[k].n_cpus; j++)
                if (cl.c[k].cpus[j] == ci.cpus[i]) cc[nc++] = ci.cpus[i];
        }
        if (nc == 0) /* siblings only (not a real topology): one per CPU */
            for (int j = 0; j < cl.c[k].n_cpus && j < MAX_CPUS; j++) cc[nc++] = cl.c[k].cpus[j];
        pc->n_cores = nc;
        const size_t n_read =
            out->n_points > 0 ? out->ws_B[out->n_points - 1] / (24 * (size_t)nc) : 0;
        probe_team team;
        st = team_start(ctx, &team, nc, cc, n_read);
        if (st != QEIL_OK) return st;
        team.isa_f32 = isa_f32;
        team.isa_int8 = isa_int8;
        team.isa_triad = isa_triad;
        snprintf(what, sizeof what, "cluster %s: f32 FMA, %d thread%s", pc->name, nc, nc > 1 ? "s" : "");
        pc->f32_flops = best_of(&team, JOB_F32, 0, &p, &ps, what);
        snprintf(what, sizeof what, "cluster %s: int8 dot", pc->name);
        pc->int8_ops = best_of(&team, JOB_INT8, 0, &p, &ps, what);
        if (n_read >= 4) {
            snprintf(what, sizeof what, "cluster %s: read bandwidth", pc->name);
            pc->read_bw_Bps = best_of(&team, JOB_READ, n_read, &p, &ps, what);
        }
        team_stop(ctx, &team);
    }
    analyse_sweep(out);
    if (p.gpus) {
        qeil_probe_params gp = p;
        gp.progress = p.progress ? gpu_progress : NULL;
        gp.progress_user = &ps;
        if ((st = qeil_probe_gpus(ctx, &gp, out)) != QEIL_OK) return st;
    } else {
        snprintf(out->gpu_status, sizeof out->gpu_status, "not asked (gpus = 0)");
    }
    ps.done = ps.total;
    progress(&ps, "done");
    return QEIL_OK;
}

/* ------------------------------------------------------------------------ */
/* Bandwidth meter                                                           */
/* ------------------------------------------------------------------------ */

struct qeil_probe_meter {
    qeil_ctx *ctx;
    probe_team team;
    int n_threads;
    size_t n_elem; /* per thread */
    int warm;      /* 1 until the first measurement has touched the set */
};

int qeil_probe_cpu_count(void)
{
    cpu_set_info ci;
    return usable_cpus(&ci);
}

int qeil_probe_meter_threads(const qeil_probe_meter *m)
{
    return m ? m->n_threads : 0;
}

qeil_status qeil_probe_meter_create(qeil_ctx *ctx, int n_threads, size_t ws_B,
                                    qeil_probe_meter **out)
{
    if (!out) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "qeil_probe_meter_create: out is NULL");
    *out = NULL;
    cpu_set_info ci;
    const int n_usable = usable_cpus(&ci);
    if (n_threads < 0 || n_threads > n_usable)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                             "bandwidth meter: threads %d is out of range (allowed 0..%d: 0 = all "
                             "CPUs this process may run on)",
                             n_threads, n_usable);
    if (n_threads == 0) n_threads = n_usable;
    const size_t hi = ws_limit_B(read_mem_total_B());
    if (ws_B < MAX_WS_MIN || ws_B > hi)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                             "bandwidth meter: working set %zu bytes is out of range (allowed "
                             "%zu..%zu)",
                             ws_B, MAX_WS_MIN, hi);
    qeil_probe_meter *m = qeil_calloc(ctx, 1, sizeof *m);
    if (!m) return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "bandwidth meter: out of memory");
    m->ctx = ctx;
    m->n_threads = n_threads;
    m->n_elem = ws_B / (24 * (size_t)n_threads); /* >= 10: ws_B >= 64 KiB, <= 256 threads */
    m->warm = 1;
    qeil_status st = team_start(ctx, &m->team, n_threads, ci.cpus, m->n_elem);
    if (st != QEIL_OK) {
        qeil_free(ctx, m);
        return st;
    }
    m->team.isa_f32 = qeil_pk_best_f32();
    m->team.isa_int8 = qeil_pk_best_int8();
    m->team.isa_triad = qeil_pk_best_triad();
    *out = m;
    return QEIL_OK;
}

qeil_status qeil_probe_meter_run(qeil_probe_meter *m, double min_time_s, double *read_Bps,
                                 double *triad_Bps)
{
    if (!m) return QEIL_ERR_INVALID;
    if (!read_Bps || !triad_Bps)
        return qeil_ctx_fail(m->ctx, QEIL_ERR_INVALID, "qeil_probe_meter_run: a result pointer is NULL");
    if (!(min_time_s > 0 && min_time_s <= MIN_TIME_MAX_S))
        return qeil_ctx_fail(m->ctx, QEIL_ERR_RANGE,
                             "bandwidth meter: min_time_s %g is out of range (allowed (0, %g] "
                             "seconds)",
                             min_time_s, MIN_TIME_MAX_S);
    *read_Bps = team_measure(&m->team, JOB_READ, m->n_elem, m->warm, min_time_s);
    m->warm = 0;
    *triad_Bps = team_measure(&m->team, JOB_TRIAD, m->n_elem, 0, min_time_s);
    return QEIL_OK;
}

void qeil_probe_meter_free(qeil_probe_meter *m)
{
    if (!m) return;
    team_stop(m->ctx, &m->team);
    qeil_free(m->ctx, m);
}

/* ------------------------------------------------------------------------ */
/* Result -> platform                                                        */
/* ------------------------------------------------------------------------ */

/* Defaults for a client CPU, per physical core (docs/probe.md, "Defaults").
 * An 8-core mobile part at its 28 W base power (AMD Ryzen 7 7840U: default
 * TDP 28 W, 8 cores; Intel Core i7-1360P: base power 28 W) gives ~3.5 W per
 * core: 2.5 W dynamic, 0.5 W constant (uncore), and leakage 0.2 W at 60 °C,
 * doubling every 10 K to 0.8 W at the 80 °C design point (~21 % of the hot
 * core's power). Leakage must stay below P/(κ ΔT) ≈ 26 % of the power at the
 * design point, or the cooler below cannot hold it (R κ P_leak ≥ 1 is
 * thermal runaway; docs/energy-model.md §4.2). */
#define DEF_P_DYN_CORE_W 2.5
#define DEF_P_LEAK_CORE_W 0.2   /* at DEF_T_LEAK_REF_C */
#define DEF_P_CONST_CORE_W 0.5
#define DEF_T_LEAK_REF_C 60.0
#define DEF_KAPPA 0.069314718055994531 /* ln 2 / 10 K: leakage doubles every ~10 K */
#define DEF_E_BYTE_J 48e-12  /* DDR5 ~5 pJ/bit = 40 pJ/B + 8 pJ/B cache path (as the catalog) */
#define DEF_T_AMB_C 25.0
#define DEF_T_MAX_C 100.0    /* client x86 Tjmax: Intel mobile 100 °C, AMD Ryzen 7040 95 °C */
#define DEF_T_DESIGN_C 80.0  /* cooler sized so full load settles here (below the throttle point) */
#define DEF_C_TH_CORE_JPK 7.5 /* 8 cores -> 60 J/K: ~150 g copper x 0.385 J/(g K), as the catalog */
#define DEF_FREQ_HZ 2e9      /* when the clock is unknown (only ratios f/f_nom enter the model) */
#define DEF_VOLT_V 1.0       /* one point: only ratios (V/V_nom)^2 enter the model */
#define DEF_RHO_MAX 0.9      /* the rest of RAM stays with the OS and other programs */

/* Round to 3 / 4 significant digits (the double nearest the decimal). */
static double sig3(double x)
{
    char buf[40];
    snprintf(buf, sizeof buf, "%.3g", x);
    return strtod(buf, NULL);
}

static double sig4(double x)
{
    char buf[40];
    snprintf(buf, sizeof buf, "%.4g", x);
    return strtod(buf, NULL);
}

/* One cpu unit: measured peaks and bandwidth, documented defaults for
 * power and thermal, scaled by its cores. */
static void fill_unit(qeil_unit *u, const char *name, double f32, double int8, double bw, int cores,
                      double freq_Hz)
{
    snprintf(u->name, sizeof u->name, "%s", name);
    u->kind = QEIL_UNIT_CPU;
    u->pool = 0;
    u->peak_ops[QEIL_DT_F32] = f32;
    u->peak_ops[QEIL_DT_F16] = f32; /* AVX2 has no f16 arithmetic: F16C converts, math runs in f32 */
    u->peak_ops[QEIL_DT_INT8] = int8;
    u->peak_ops[QEIL_DT_INT4] = 0;  /* no int4 instructions: unpacked to int8 first */
    u->mem_bw_Bps = bw;
    u->eta_compute = 1.0; /* the peaks are achieved rates already */
    u->eta_mem = 1.0;

    double p_dyn = DEF_P_DYN_CORE_W * cores;
    for (int t = 0; t < QEIL_DT_COUNT; t++)
        u->e_op_J[t] = u->peak_ops[t] > 0 ? sig3(p_dyn / u->peak_ops[t]) : 0.0;
    u->e_byte_J = DEF_E_BYTE_J;
    u->p_const_W = sig3(DEF_P_CONST_CORE_W * cores);
    u->p_leak_ref_W = sig3(DEF_P_LEAK_CORE_W * cores);
    u->t_leak_ref_C = DEF_T_LEAK_REF_C;
    u->leak_kappa_perK = DEF_KAPPA;

    /* full load = every core busy plus memory traffic at the measured
     * bandwidth (the energy model charges e_byte to the unit, so the cooler
     * must carry it too) */
    double leak_design = DEF_P_LEAK_CORE_W * exp(DEF_KAPPA * (DEF_T_DESIGN_C - DEF_T_LEAK_REF_C));
    double p_full = (DEF_P_DYN_CORE_W + leak_design + DEF_P_CONST_CORE_W) * cores +
                    bw * DEF_E_BYTE_J;
    u->r_th_KpW = sig3((DEF_T_DESIGN_C - DEF_T_AMB_C) / p_full);
    u->c_th_JpK = sig3(DEF_C_TH_CORE_JPK * cores);
    u->t_amb_C = DEF_T_AMB_C;
    u->t_max_C = DEF_T_MAX_C;

    u->n_dvfs = 1;
    u->dvfs[0].freq_Hz = freq_Hz > 0 ? freq_Hz : DEF_FREQ_HZ;
    u->dvfs[0].volt_V = DEF_VOLT_V;
    u->dvfs_nominal = 0;

    u->src_compute = QEIL_SRC_MEASURED;
    u->src_power = QEIL_SRC_DEFAULT;
    u->src_thermal = QEIL_SRC_DEFAULT;
}

/* ---- Vulkan devices in the profile (docs/probe.md) ----
 * Power and thermal defaults by device class, as the CPU's above: a
 * discrete GPU at a mid-range card's ~125 W board power (100 W dynamic,
 * 15 W constant: memory refresh and I/O, bus, clocks; 10 W leakage at
 * 60 °C), GDDR6 at 7.5 pJ/bit + 4 pJ/B on chip, 90 °C limit with its own
 * cooler sized for 75 °C; an integrated GPU at ~12 W (10 W dynamic, 1 W
 * constant, 0.8 W leakage) behind the CPU's memory path (44 pJ/B, as the
 * catalog's igpu); a CPU-type device (lavapipe) runs on the CPU's cores and
 * takes the CPU's per-core defaults. */
#define DGPU_P_DYN_W 100.0
#define DGPU_P_CONST_W 15.0
#define DGPU_P_LEAK_W 10.0
#define DGPU_E_BYTE_J 64e-12
#define DGPU_T_MAX_C 90.0
#define DGPU_T_DESIGN_C 75.0
#define DGPU_C_TH_JPK 80.0  /* ~200 g copper vapour chamber, as the catalog's RTX */
#define IGPU_P_DYN_W 10.0
#define IGPU_P_CONST_W 1.0
#define IGPU_P_LEAK_W 0.8
#define IGPU_E_BYTE_J 44e-12
#define IGPU_C_TH_JPK 30.0
#define GPU_FREQ_HZ 1e9     /* the clock is not read: one point, only ratios enter the model */
/* A discrete device's bus when its copy from host memory was not measured:
 * PCIe 4.0 x16, 16 GT/s x 16 x 128/130 / 8 = 31.5 GB/s raw, ~80 % after
 * packet overhead -> 25 GB/s; SerDes ~6 pJ/bit -> 48 pJ/B; 10 µs per
 * transfer (DMA setup and driver launch), as the catalog's PCIe links. */
#define LINK_BW_DEFAULT_Bps 25e9
#define LINK_E_BYTE_J 48e-12
#define LINK_LATENCY_S 10e-6

/* A device with memory of its own: a discrete GPU (resizable BAR or not),
 * or a virtual/other one with no host-visible device-local memory. */
int probe_gpu_own_memory(const qeil_probe_gpu *g)
{
    if (strcmp(g->type, "discrete") == 0) return 1;
    if (strcmp(g->type, "integrated") == 0 || strcmp(g->type, "cpu") == 0) return 0;
    return !g->unified_memory;
}

/* A measured device the profile can hold (NaN fails every comparison). */
static int gpu_usable(const qeil_probe_gpu *g)
{
    /* the profile's ranges (platform.c): bandwidth 1e6..1e14 B/s, peaks
     * up to 1e17; a device outside them is left out, not the profile failed */
    const double peak_max = 1e17, bw_min = 1e6, bw_max = 1e14;
    return !g->error[0] && g->f32_flops > 0 && g->f32_flops <= peak_max &&
           g->f16_flops >= 0 && g->f16_flops <= peak_max && g->int8_ops >= 0 &&
           g->int8_ops <= peak_max && g->bw_Bps >= bw_min && g->bw_Bps <= bw_max &&
           (g->link_bw_Bps == 0 || (g->link_bw_Bps >= bw_min && g->link_bw_Bps <= bw_max));
}

/* Unit name from the device name: lower case, [a-z0-9-], runs of others one
 * '-', at most 40 characters; "vk<i>" if nothing is left; "-vk<i>"
 * appended when a unit already has the name. */
static void gpu_unit_name(const qeil_platform *pf, const qeil_probe_gpu *g, char *name, size_t n)
{
    size_t k = 0;
    for (const char *c = g->name; *c && k + 1 < n && k < 40; c++) {
        char ch = *c;
        if (ch >= 'A' && ch <= 'Z') ch = (char)(ch - 'A' + 'a');
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'))) {
            if (k == 0 || name[k - 1] == '-') continue;
            ch = '-';
        }
        name[k++] = ch;
    }
    while (k > 0 && name[k - 1] == '-') k--;
    name[k] = '\0';
    if (!k) snprintf(name, n, "%s", g->device);
    for (int u = 0; u < pf->n_units; u++)
        if (strcmp(pf->units[u].name, name) == 0) {
            size_t used = strlen(name);
            snprintf(name + (used + 8 < n ? used : n - 8), 8, "-%.6s", g->device);
            break;
        }
}

static qeil_status add_gpus(qeil_ctx *ctx, const qeil_probe_result *r, qeil_platform *out)
{
    const int cores = r->n_cores > 0 ? r->n_cores : r->n_threads;
    for (int i = 0; i < r->n_gpus && i < QEIL_PROBE_MAX_GPUS; i++) {
        const qeil_probe_gpu *g = &r->gpus[i];
        if (!gpu_usable(g)) continue;
        const int cpu_type = strcmp(g->type, "cpu") == 0;
        const int discrete = probe_gpu_own_memory(g);
        if (out->n_units >= QEIL_MAX_UNITS) break; /* the table says which were left out */
        if (discrete && (out->n_pools >= QEIL_MAX_POOLS || out->n_links >= QEIL_MAX_LINKS ||
                         !(g->heap_B >= 1e6)))
            continue;
        qeil_unit *u = &out->units[out->n_units];
        char name[QEIL_NAME_MAX];
        gpu_unit_name(out, g, name, sizeof name);
        const double f32 = sig4(g->f32_flops), bw = sig4(g->bw_Bps);
        /* a CPU-type device is the CPU's cores: the CPU's defaults */
        fill_unit(u, name, f32, sig4(g->int8_ops), bw, cores, r->freq_Hz);
        u->kind = discrete ? QEIL_UNIT_GPU : QEIL_UNIT_IGPU;
        u->peak_ops[QEIL_DT_F16] = sig4(g->f16_flops);
        snprintf(u->device, sizeof u->device, "%s", g->device);
        double p_dyn = DEF_P_DYN_CORE_W * cores, t_design = DEF_T_DESIGN_C;
        if (!cpu_type) {
            p_dyn = discrete ? DGPU_P_DYN_W : IGPU_P_DYN_W;
            u->p_const_W = discrete ? DGPU_P_CONST_W : IGPU_P_CONST_W;
            u->p_leak_ref_W = discrete ? DGPU_P_LEAK_W : IGPU_P_LEAK_W;
            u->e_byte_J = discrete ? DGPU_E_BYTE_J : IGPU_E_BYTE_J;
            u->t_max_C = discrete ? DGPU_T_MAX_C : DEF_T_MAX_C;
            t_design = discrete ? DGPU_T_DESIGN_C : DEF_T_DESIGN_C;
            u->c_th_JpK = discrete ? DGPU_C_TH_JPK : IGPU_C_TH_JPK;
            u->dvfs[0].freq_Hz = GPU_FREQ_HZ;
            const double leak = u->p_leak_ref_W * exp(DEF_KAPPA * (t_design - DEF_T_LEAK_REF_C));
            u->r_th_KpW =
                sig3((t_design - DEF_T_AMB_C) / (p_dyn + leak + u->p_const_W + bw * u->e_byte_J));
        }
        for (int t = 0; t < QEIL_DT_COUNT; t++)
            u->e_op_J[t] = u->peak_ops[t] > 0 ? sig3(p_dyn / u->peak_ops[t]) : 0.0;
        if (discrete) {
            qeil_pool *pl = &out->pools[out->n_pools];
            snprintf(pl->name, sizeof pl->name, "%s-mem", g->device);
            pl->capacity_B = g->heap_B;
            pl->bw_Bps = bw;
            u->pool = out->n_pools++;
            qeil_link *l = &out->links[out->n_links++];
            l->pool_a = 0;
            l->pool_b = u->pool;
            l->bw_Bps = g->link_bw_Bps > 0 ? sig4(g->link_bw_Bps) : LINK_BW_DEFAULT_Bps;
            l->e_byte_J = LINK_E_BYTE_J;
            l->latency_s = LINK_LATENCY_S;
        } else {
            /* the host's memory: the pool delivers at least what any of its
             * units measured */
            u->pool = 0;
            if (bw > out->pools[0].bw_Bps) out->pools[0].bw_Bps = bw;
        }
        out->n_units++;
    }
    return qeil_platform_validate(ctx, out);
}

qeil_status qeil_probe_to_platform(qeil_ctx *ctx, const qeil_probe_result *r, qeil_platform *out)
{
    if (!r || !out)
        return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "qeil_probe_to_platform: NULL argument");
    if (r->n_threads < 1 || r->n_threads > QEIL_PROBE_MAX_THREADS)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                             "probe result: n_threads %d is out of range (allowed 1..%d)",
                             r->n_threads, QEIL_PROBE_MAX_THREADS);
    /* 4 significant digits: run-to-run noise is percent-level, and the
     * profile stays readable */
    double f32 = sig4(r->f32_flops[r->n_threads - 1]), int8 = sig4(r->int8_ops[r->n_threads - 1]);
    double bw = sig4(r->dram_bw_Bps);
    if (!(isfinite(f32) && f32 > 0) || !(isfinite(int8) && int8 > 0) ||
        !(isfinite(bw) && bw > 0))
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                             "probe result: f32 %g FLOP/s, int8 %g OP/s, DRAM %g B/s (all must be "
                             "finite and > 0)",
                             f32, int8, bw);

    memset(out, 0, sizeof *out);
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0 || !host[0]) snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    snprintf(out->name, sizeof out->name, "probe-%.57s", host);
    for (char *c = out->name; *c; c++)
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f || *c == '"' || *c == '\\')
            *c = '-';
    char model[QEIL_DESC_MAX];
    snprintf(model, sizeof model, "%s", r->cpu_model);
    sanitize_text(model);
    char vk[72] = "";
    for (int i = 0, n = 0; i < r->n_gpus && i < QEIL_PROBE_MAX_GPUS; i++) {
        if (!gpu_usable(&r->gpus[i])) continue;
        size_t used = strlen(vk);
        snprintf(vk + used, sizeof vk - used, "%s%.4s %.10s", n++ ? ", " : "; Vulkan ",
                 r->gpus[i].device, r->gpus[i].type);
    }
    /* at most ~250 bytes with 4 devices and a cluster split; a longer
     * result is cut (it is a description), never an error */
    const int len = snprintf(
        out->description, sizeof out->description,
        "qeil probe %s: %.*s, threads %d, cores %d%s%s; compute and bandwidth measured%s, "
        "power and thermal %s (docs/probe.md)",
        QEIL_VERSION_STRING, vk[0] ? 32 : 60, model, r->n_threads, r->n_cores,
        r->n_clusters >= 2 ? "; a unit per core cluster" : "", vk,
        r->dram_n_points > 0 ? "" : " (DRAM not reached: a cache rate)",
        vk[0] ? "defaults" : "are defaults");
    if (len >= (int)sizeof out->description) out->description[sizeof out->description - 1] = '\0';
    out->rho_max = DEF_RHO_MAX;

    out->n_pools = 1;
    snprintf(out->pools[0].name, sizeof out->pools[0].name, "dram");
    out->pools[0].capacity_B = r->mem_total_B;
    out->pools[0].bw_Bps = bw;

    int cores = r->n_cores > 0 ? r->n_cores : r->n_threads;
    if (r->n_clusters < 2) {
        out->n_units = 1;
        fill_unit(&out->units[0], "cpu", f32, int8, bw, cores, r->freq_Hz);
        snprintf(out->units[0].device, sizeof out->units[0].device, "cpu");
        return add_gpus(ctx, r, out);
    }
    /* one unit per cluster; each cluster's share of the DRAM triad rate
     * follows its read-only stream against the whole machine's */
    if (r->n_clusters > QEIL_PROBE_MAX_CLUSTERS)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                             "probe result: n_clusters %d is out of range (allowed 0..%d)",
                             r->n_clusters, QEIL_PROBE_MAX_CLUSTERS);
    out->n_units = r->n_clusters;
    for (int k = 0; k < r->n_clusters; k++) {
        const qeil_probe_cluster *c = &r->clusters[k];
        double cf32 = sig4(c->f32_flops), ci8 = sig4(c->int8_ops), cbw = bw;
        if (c->read_bw_Bps > 0 && r->read_bw_Bps > 0)
            cbw = sig4(bw * fmin(1.0, c->read_bw_Bps / r->read_bw_Bps));
        if (!(isfinite(cf32) && cf32 > 0) || !(isfinite(ci8) && ci8 > 0) ||
            !(isfinite(cbw) && cbw > 0) || c->n_cores < 1)
            return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                                 "probe result: cluster %d (%s): f32 %g FLOP/s, int8 %g OP/s, "
                                 "bandwidth %g B/s, %d cores (all must be finite and > 0)",
                                 k, c->name, cf32, ci8, cbw, c->n_cores);
        char name[QEIL_NAME_MAX];
        snprintf(name, sizeof name, "cpu-%.15s", c->name);
        for (char *ch = name; *ch; ch++)
            if (!((*ch >= 'a' && *ch <= 'z') || (*ch >= '0' && *ch <= '9') || *ch == '-')) *ch = '-';
        fill_unit(&out->units[k], name, cf32, ci8, cbw, c->n_cores,
                  c->freq_Hz > 0 ? c->freq_Hz : r->freq_Hz);
        /* the engine's device on this cluster's cores: "cpu-" + its name
         * (docs/engine.md, "CPU clusters") */
        snprintf(out->units[k].device, sizeof out->units[k].device, "cpu-%.15s", c->name);
    }
    return add_gpus(ctx, r, out);
}
