/*
 * cpu_devices.h — internal: the CPU devices bound to core clusters, one per
 * cluster, named "cpu-NAME" after the cluster ("cpu-big", "cpu-little" on a
 * big.LITTLE SoC; "cpu-p", "cpu-e" on an x86 hybrid): what placements,
 * faults and profile units (`device`) call them. The engine gives them the
 * backend ids after its fixed ones (engine.c). docs/engine.md, "CPU
 * clusters".
 *
 * The clusters are those of qeil_cpu_clusters_detect over the CPUs the
 * calling thread may run on: $QEIL_CPU_CLUSTERS when set ("a=0,b=1" treats
 * CPUs 0 and 1 of a uniform machine as two clusters), else sysfs, where a
 * machine of one cluster has no cluster devices (only "cpu").
 *
 *     int n = qeil_cpu_devs_count();            // 2 on a 4+4 SoC
 *     const char *name = qeil_cpu_devs_name(0); // "cpu-big"
 *     int cpus[QEIL_PROBE_MAX_THREADS];
 *     int nc = qeil_cpu_devs_cpus(0, cpus, QEIL_PROBE_MAX_THREADS); // 4..7
 *
 * The table is read on first use and again whenever $QEIL_CPU_CLUSTERS or
 * the calling thread's affinity mask changes; a bad override leaves no
 * cluster device and its error for qeil_cpu_devs_check. Names returned
 * stay valid for the process's life (their text follows the table).
 * Thread-safe (a mutex), as far as getenv is.
 */
#ifndef QEIL_ENGINE_CPU_DEVICES_H
#define QEIL_ENGINE_CPU_DEVICES_H

#include "qeil/device.h"

#define QEIL_CPU_DEVS_MAX QEIL_PROBE_MAX_CLUSTERS
/* backend id of cluster device 0 (after cpu, vk0, cpu1: engine.c) */
#define QEIL_CPU_DEVS_FIRST 3

/* Number of cluster devices now (0..QEIL_CPU_DEVS_MAX). */
int qeil_cpu_devs_count(void);
/* "cpu-NAME" of cluster device k, NULL for k past the last. */
const char *qeil_cpu_devs_name(int k);
/* Copy device k's CPUs (ascending) into cpus[0..cap); returns how many
 * it has (0 for no such device). */
int qeil_cpu_devs_cpus(int k, int *cpus, int cap);
/* QEIL_OK, or the error of a bad $QEIL_CPU_CLUSTERS (its status and
 * message, recorded on ctx). */
qeil_status qeil_cpu_devs_check(qeil_ctx *ctx);

#endif /* QEIL_ENGINE_CPU_DEVICES_H */
