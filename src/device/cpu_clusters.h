/*
 * cpu_clusters.h — internal: the CPU's core clusters (big.LITTLE on ARM,
 * P- and E-cores on x86 hybrids), read from sysfs under a root directory
 * so tests can hand it a fixture tree (tests/data/sysfs-*). Used by the
 * probe (src/device/probe.c), which measures each cluster and writes one
 * unit per cluster. Method: docs/probe.md, "Core clusters".
 *
 *     qeil_cpu_clusters cl;
 *     int cpus[] = {0, 1, 2, 3, 4, 5, 6, 7};
 *     qeil_cpu_clusters_read("/", cpus, 8, &cl);   // cl.n == 2 on a 4+4 SoC
 *
 * Which property groups the CPUs, the first that every listed CPU has:
 *  1. x86 hybrid core type: <root>/sys/devices/cpu_core/cpus and
 *     .../cpu_atom/cpus (the kernel's hybrid PMUs, CPU lists);
 *  2. <root>/sys/devices/system/cpu/cpuN/cpu_capacity (arm64, riscv: the
 *     scheduler's relative capacity, 1024 for the biggest core): equal
 *     values form one cluster;
 *  3. .../cpuN/cpufreq/cpuinfo_max_freq: values within 10 % of each
 *     other form one cluster (favoured cores of one design boost a few
 *     per cent higher; a different design differs by far more);
 *  4. otherwise one cluster of every CPU.
 * Clusters come biggest first (P-cores, highest capacity, highest clock).
 * Reentrant; reads files only.
 */
#ifndef QEIL_DEVICE_CPU_CLUSTERS_H
#define QEIL_DEVICE_CPU_CLUSTERS_H

#include "qeil/device.h"

typedef struct {
    int n_cpus;
    int cpus[QEIL_PROBE_MAX_THREADS]; /* ascending, a subset of the list given */
    long capacity;                     /* cpu_capacity (0: not read) */
    double max_freq_Hz;                /* highest cpuinfo_max_freq of its CPUs (0: unknown) */
    char name[16];                     /* "p", "e" (x86 hybrid), "big", "little", "mid", or "c<k>" */
} qeil_cpu_cluster;

typedef struct {
    int n;                      /* 1..QEIL_PROBE_MAX_CLUSTERS */
    char source[24];            /* "cpu_type", "cpu_capacity", "cpuinfo_max_freq", "uniform",
                                   "override" (qeil_cpu_clusters_parse) */
    qeil_cpu_cluster c[QEIL_PROBE_MAX_CLUSTERS];
} qeil_cpu_clusters;

/* Group cpus[0..n_cpus) (CPU numbers, any order, 1..QEIL_PROBE_MAX_THREADS
 * of them) into clusters by the rule above, reading under root ("/" or a
 * fixture directory; NULL = "/"). More than QEIL_PROBE_MAX_CLUSTERS groups
 * (no SoC has them) falls back to one uniform cluster. Returns 0, or -1
 * on bad arguments. */
int qeil_cpu_clusters_read(const char *root, const int *cpus, int n_cpus, qeil_cpu_clusters *out);

/* Clusters named by hand: spec "NAME=LIST[,NAME=LIST...]", a LIST being
 * the kernel's CPU-list form ("0-3,6") that runs until the next NAME=, so
 * "p=0-3,e=4-7" and "big=4-5,7,little=0-3" parse. NAME: 1..15 of a-z and
 * 0-9, unique. 1..QEIL_PROBE_MAX_CLUSTERS clusters, in the order given,
 * disjoint. Every CPU must exist (<root>/sys/devices/system/cpu/present
 * when readable) and be one of allowed[0..n_allowed) (the CPUs the process
 * may run on). source = "override". Errors (ctx) start with `what` and name
 * the item: QEIL_ERR_FORMAT (syntax), QEIL_ERR_RANGE (count, a CPU that
 * does not exist or is not allowed), QEIL_ERR_INVALID (duplicate name or
 * CPU). docs/engine.md, "CPU clusters". */
qeil_status qeil_cpu_clusters_parse(qeil_ctx *ctx, const char *what, const char *spec,
                                    const char *root, const int *allowed, int n_allowed,
                                    qeil_cpu_clusters *out);

/* The clusters of cpus[0..n_cpus) as the probe and the engine see them:
 * the override in $QEIL_CPU_CLUSTERS when set and non-empty (parsed as
 * above, against cpus), else qeil_cpu_clusters_read. */
qeil_status qeil_cpu_clusters_detect(qeil_ctx *ctx, const char *root, const int *cpus, int n_cpus,
                                     qeil_cpu_clusters *out);

/* "0-3,6" for an ascending CPU list; writes at most n bytes. */
void qeil_cpu_list_format(const int *cpus, int n_cpus, char *buf, size_t n);

#endif /* QEIL_DEVICE_CPU_CLUSTERS_H */
