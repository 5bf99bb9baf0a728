/*
 * cpu_devices.c — the table of CPU devices bound to core clusters (see
 * cpu_devices.h): one process-wide snapshot, re-read when its inputs (the
 * override and the affinity mask) change.
 */
#define _GNU_SOURCE /* sched_getaffinity, cpu_set_t */
#include "engine/cpu_devices.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "device/cpu_clusters.h"
#include "qeil/engine.h"

#define ENV_MAX 512

static struct {
    pthread_mutex_t mu;
    int valid;
    char env[ENV_MAX];       /* the override the snapshot was read with ("" = none) */
    int env_long;            /* it was longer than ENV_MAX - 1 (then re-read every time) */
    int allowed[QEIL_PROBE_MAX_THREADS];
    int n_allowed;
    int n;                                 /* cluster devices */
    char names[QEIL_CPU_DEVS_MAX][24];     /* "cpu-NAME"; never freed, text follows the table */
    qeil_cpu_clusters cl;
    qeil_status err;                       /* a bad override's */
    char errmsg[320];
} g = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* CPUs the calling thread may run on, ascending (all online ones where
 * the mask cannot be read). */
static int allowed_cpus(int *cpus)
{
    int n = 0;
#ifdef __linux__
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        for (int c = 0; c < CPU_SETSIZE && n < QEIL_PROBE_MAX_THREADS; c++)
            if (CPU_ISSET(c, &set)) cpus[n++] = c;
#endif
    if (n == 0) {
        long on = sysconf(_SC_NPROCESSORS_ONLN);
        if (on < 1) on = 1;
        for (long c = 0; c < on && n < QEIL_PROBE_MAX_THREADS; c++) cpus[n++] = (int)c;
    }
    return n;
}

/* Bring the snapshot up to date; g.mu held. */
static void refresh(void)
{
    const char *env = getenv("QEIL_CPU_CLUSTERS");
    if (!env) env = "";
    int allowed[QEIL_PROBE_MAX_THREADS];
    const int na = allowed_cpus(allowed);
    const int env_long = strlen(env) >= ENV_MAX;
    if (g.valid && !env_long && !g.env_long && strcmp(env, g.env) == 0 && na == g.n_allowed &&
        memcmp(allowed, g.allowed, (size_t)na * sizeof allowed[0]) == 0)
        return;
    snprintf(g.env, sizeof g.env, "%s", env);
    g.env_long = env_long;
    memcpy(g.allowed, allowed, (size_t)na * sizeof allowed[0]);
    g.n_allowed = na;
    g.valid = 1;
    g.n = 0;
    g.err = QEIL_OK;
    g.errmsg[0] = '\0';
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    if (!ctx) {
        g.err = QEIL_ERR_NOMEM;
        snprintf(g.errmsg, sizeof g.errmsg, "cpu clusters: out of memory");
        g.valid = 0;
        return;
    }
    qeil_status st = qeil_cpu_clusters_detect(ctx, "/", allowed, na, &g.cl);
    if (st != QEIL_OK) {
        g.err = st;
        snprintf(g.errmsg, sizeof g.errmsg, "%s", qeil_ctx_errmsg(ctx));
    } else if (strcmp(g.cl.source, "override") == 0 || g.cl.n >= 2) {
        /* a uniform machine's one cluster is "cpu" itself */
        g.n = g.cl.n;
        for (int k = 0; k < g.n; k++) {
            /* through a local copy: gcc -O1's -Wrestrict sees g on both sides */
            char name[sizeof g.cl.c[k].name];
            memcpy(name, g.cl.c[k].name, sizeof name);
            name[sizeof name - 1] = '\0';
            snprintf(g.names[k], sizeof g.names[k], "cpu-%s", name);
        }
    }
    qeil_ctx_free(ctx);
}

int qeil_cpu_devs_count(void)
{
    pthread_mutex_lock(&g.mu);
    refresh();
    const int n = g.n;
    pthread_mutex_unlock(&g.mu);
    return n;
}

const char *qeil_cpu_devs_name(int k)
{
    pthread_mutex_lock(&g.mu);
    refresh();
    const char *name = k >= 0 && k < g.n ? g.names[k] : NULL;
    pthread_mutex_unlock(&g.mu);
    return name;
}

int qeil_cpu_devs_cpus(int k, int *cpus, int cap)
{
    pthread_mutex_lock(&g.mu);
    refresh();
    int n = 0;
    if (k >= 0 && k < g.n) {
        n = g.cl.c[k].n_cpus;
        for (int i = 0; i < n && i < cap; i++) cpus[i] = g.cl.c[k].cpus[i];
    }
    pthread_mutex_unlock(&g.mu);
    return n;
}

qeil_status qeil_cpu_devs_check(qeil_ctx *ctx)
{
    pthread_mutex_lock(&g.mu);
    refresh();
    const qeil_status st = g.err;
    char msg[sizeof g.errmsg];
    memcpy(msg, g.errmsg, sizeof msg);
    pthread_mutex_unlock(&g.mu);
    return st == QEIL_OK ? QEIL_OK : qeil_ctx_fail(ctx, st, "%s", msg);
}

/* ---- public (qeil/engine.h) ---- */

int qeil_engine_device_cpus(size_t id, char *buf, size_t n)
{
    if (buf && n) buf[0] = '\0';
    if (id < QEIL_CPU_DEVS_FIRST || id >= QEIL_CPU_DEVS_FIRST + QEIL_CPU_DEVS_MAX) return 0;
    pthread_mutex_lock(&g.mu);
    refresh();
    const int k = (int)(id - QEIL_CPU_DEVS_FIRST);
    int nc = 0;
    if (k < g.n) {
        nc = g.cl.c[k].n_cpus;
        if (buf && n) qeil_cpu_list_format(g.cl.c[k].cpus, nc, buf, n);
    }
    pthread_mutex_unlock(&g.mu);
    return nc;
}

qeil_status qeil_engine_cpu_clusters(qeil_ctx *ctx, char *source, size_t n)
{
    pthread_mutex_lock(&g.mu);
    refresh();
    if (source && n) snprintf(source, n, "%s", g.err == QEIL_OK ? g.cl.source : "");
    pthread_mutex_unlock(&g.mu);
    return qeil_cpu_devs_check(ctx);
}
