/*
 * device.h — edge platforms: compute units, memory pools, links; the JSON
 * profile format; the built-in catalog; the CPU probe.
 *
 * Usage:
 *
 *     qeil_ctx *ctx = qeil_ctx_create(NULL);
 *     qeil_platform pf;
 *     if (qeil_platform_load(ctx, "jetson-orin-nano-super-25w", &pf) != QEIL_OK)
 *         fprintf(stderr, "%s\n", qeil_ctx_errmsg(ctx));   // name or FILE.json
 *     printf("%s: %d units\n", pf.name, pf.n_units);
 *
 * A qeil_platform is a plain value (no pointers inside): copy it freely.
 * Units everywhere are SI: FLOP/s, B/s, J, W, s, Hz, V; temperatures in °C;
 * thermal resistance in K/W, capacitance in J/K. Thread-safety: all
 * functions are reentrant; a platform is read-only to every other module.
 */
#ifndef QEIL_DEVICE_H
#define QEIL_DEVICE_H

#include "qeil/qeil.h"

#ifdef __cplusplus
extern "C" {
#endif

#define QEIL_MAX_UNITS 8   /* compute units per platform */
#define QEIL_MAX_POOLS 4   /* memory pools per platform */
#define QEIL_MAX_LINKS 12  /* links between pools */
#define QEIL_MAX_DVFS 8    /* DVFS operating points per unit */

typedef enum {
    QEIL_UNIT_CPU = 0,
    QEIL_UNIT_GPU,  /* discrete GPU with its own memory pool */
    QEIL_UNIT_IGPU, /* integrated GPU sharing the SoC pool */
    QEIL_UNIT_NPU
} qeil_unit_kind;

QEIL_API const char *qeil_unit_kind_name(qeil_unit_kind k); /* "cpu", "gpu", ... */

typedef struct {
    double freq_Hz; /* > 0 */
    double volt_V;  /* > 0 */
} qeil_dvfs_point;

/* Where a number came from. Printed with every profile so nobody mistakes a
 * default for a measurement. */
typedef enum {
    QEIL_SRC_DATASHEET = 0, /* vendor datasheet/spec page, or derived from one */
    QEIL_SRC_MEASURED,      /* measured on this machine (qeil probe) */
    QEIL_SRC_DEFAULT        /* documented default for this class of device */
} qeil_source;

QEIL_API const char *qeil_source_name(qeil_source s); /* "datasheet", "measured", "default" */

typedef struct {
    char name[QEIL_NAME_MAX]; /* e.g. "cpu", "npu", "rtx-pro-5000" */
    qeil_unit_kind kind;
    int pool;                 /* index into qeil_platform.pools */

    /* Roofline at the nominal DVFS point (dvfs[dvfs_nominal]). */
    double peak_ops[QEIL_DT_COUNT]; /* FLOP/s or OP/s; 0 = type unsupported */
    double mem_bw_Bps;              /* sustained bandwidth to its pool, > 0 */
    double eta_compute;             /* achieved/peak compute efficiency, (0, 1] */
    double eta_mem;                 /* achieved/peak bandwidth efficiency, (0, 1] */

    /* Energy roofline (Choi et al., IPDPS 2013) at the nominal point. */
    double e_op_J[QEIL_DT_COUNT]; /* J per FLOP/OP; 0 where unsupported */
    double e_byte_J;              /* J per byte moved to/from its pool */
    double p_const_W;             /* constant power while powered (uncore, clocks) */

    /* Leakage: P_leak(T) = p_leak_ref_W * exp(leak_kappa_perK * (T - t_leak_ref_C)) */
    double p_leak_ref_W;
    double t_leak_ref_C;
    double leak_kappa_perK; /* ln 2 / 10 K ≈ 0.0693 is typical */

    /* Thermal RC: C_th dT/dt = P - (T - t_amb_C) / r_th_KpW */
    double r_th_KpW;
    double c_th_JpK;
    double t_amb_C;
    double t_max_C; /* maximum junction temperature (throttle point is a planner fraction of it) */

    /* DVFS operating points, ascending frequency; at least one. */
    int n_dvfs;
    qeil_dvfs_point dvfs[QEIL_MAX_DVFS];
    int dvfs_nominal; /* index of the point the peaks and energies refer to */

    qeil_source src_compute; /* peak_ops, mem_bw_Bps, eta_* */
    qeil_source src_power;   /* e_op_J, e_byte_J, p_const_W, leakage */
    qeil_source src_thermal; /* r_th, c_th, t_amb, t_max */

    /* Per-step dispatch overhead: seconds each forward step of one work
     * unit costs on this unit beyond its roofline time (kernel launches,
     * thread-pool wake-ups, small ops); a prefill is one step per work unit,
     * decode R·N. 0 = none (profiles before `qeil calibrate`); [0, 1].
     * docs/energy-model.md §1.8. */
    double step_s;

    /* The local device this unit stands for, as a placement names it
     * ("cpu", "vk0": qeil_engine_device_name), so a plan over this profile
     * can run (qeil_plan_placement). "" = none: catalog platforms describe
     * machines that are not this one. Written by `qeil probe`; at most one
     * unit per device. */
    char device[QEIL_NAME_MAX];

    /* Per-dispatch overhead: seconds each backend call (kernel dispatch) of
     * a forward step costs beyond the roofline, times the work unit's
     * calls per step (qeil_unit_work.ops): a block of a dozen small calls
     * pays it a dozen times, the head's one large matrix once. Added to
     * step_s. 0 = none (profiles before it existed); [0, 1].
     * docs/energy-model.md §1.8. */
    double op_s;
    /* Attention's cost beyond the roofline: seconds per context-dependent
     * attention FLOP, of a prefill (qeil_unit_work.pf_attn_flops: the P²
     * part) and of a decode step (dc_attn_flops: the context part; the
     * CPU engine's one-query path costs more per FLOP than its prefill
     * tiles), for an attention kernel slower than the matrix products the
     * roofline's η_c describes. 0 = none; [0, 1e-6] each.
     * docs/energy-model.md §1.9. */
    double attn_pf_flop_s, attn_dc_flop_s;
} qeil_unit;

typedef struct {
    char name[QEIL_NAME_MAX]; /* e.g. "lpddr5x", "gddr7" */
    double capacity_B;        /* usable bytes for model data, > 0 */
    double bw_Bps;            /* total sustained pool bandwidth, > 0 */
} qeil_pool;

typedef struct {
    int pool_a, pool_b; /* distinct pool indices; links are bidirectional */
    double bw_Bps;      /* > 0 */
    double e_byte_J;    /* >= 0 */
    double latency_s;   /* per transfer, >= 0 */
} qeil_link;

typedef struct {
    char name[QEIL_NAME_MAX];
    char description[QEIL_DESC_MAX];
    int n_units;
    qeil_unit units[QEIL_MAX_UNITS];
    int n_pools;
    qeil_pool pools[QEIL_MAX_POOLS];
    int n_links;
    qeil_link links[QEIL_MAX_LINKS];
    /* Memory ceiling: a plan whose resident bytes exceed this fraction of any
     * pool is infeasible (see CPQ in docs/energy-model.md). (0, 1). */
    double rho_max;
} qeil_platform;

/* Check every field against its allowed range. On failure returns
 * QEIL_ERR_RANGE / QEIL_ERR_FORMAT with a message naming the field path
 * (e.g. "units[2].mem_bw_Bps"), the value and the allowed range. */
QEIL_API qeil_status qeil_platform_validate(qeil_ctx *ctx, const qeil_platform *pf);

/* Index of the link joining pools a and b, or -1 (a == b needs no link). */
QEIL_API int qeil_platform_link(const qeil_platform *pf, int pool_a, int pool_b);

/* ---- JSON profiles (format: docs/profiles.md) ---- */

/* Parse a JSON profile from memory (len bytes, need not be NUL-terminated)
 * and validate it. Unknown keys are an error (typos must not pass silently). */
QEIL_API qeil_status qeil_platform_parse_json(qeil_ctx *ctx, const char *json, size_t len,
                                              qeil_platform *out);
/* Read and parse FILE (at most 1 MiB). */
QEIL_API qeil_status qeil_platform_read_file(qeil_ctx *ctx, const char *path, qeil_platform *out);
/* Serialise to JSON text; *out is allocated with qeil_malloc(ctx) and must be
 * released with qeil_free(ctx, *out). Round-trips exactly through parse. */
QEIL_API qeil_status qeil_platform_to_json(qeil_ctx *ctx, const qeil_platform *pf, char **out);
/* Write to FILE atomically (temp file + rename): an error leaves FILE as it was.
 * An existing FILE must be a regular file: a symbolic link, device node, FIFO
 * or directory is refused (QEIL_ERR_IO), never replaced by the rename. */
QEIL_API qeil_status qeil_platform_write_file(qeil_ctx *ctx, const qeil_platform *pf, const char *path);

/* ---- Built-in catalog ---- */

QEIL_API size_t qeil_catalog_count(void);
/* The i-th catalog platform (i < count), validated at build time by tests. */
QEIL_API const qeil_platform *qeil_catalog_get(size_t i);
QEIL_API const qeil_platform *qeil_catalog_find(const char *name); /* NULL if absent */
#define QEIL_DEFAULT_PLATFORM "qeil-laptop"

/* Catalog name, or a path to a JSON profile (anything containing '/' or
 * ending in ".json"). */
QEIL_API qeil_status qeil_platform_load(qeil_ctx *ctx, const char *name_or_path, qeil_platform *out);

/* ---- CPU probe (qeil probe) ---- */

typedef struct {
    int max_threads;      /* 0: every CPU this process may run on (its affinity mask) */
    double min_time_s;    /* per measurement, > 0; default 0.2 */
    size_t max_ws_B;      /* largest working set of the bandwidth sweep; default 256 MiB */
    void (*progress)(void *user, const char *what, double frac); /* may be NULL */
    void *progress_user;
    /* Root under which the core clusters are read (sysfs topology,
     * docs/probe.md "Core clusters"); NULL or "/" = this machine. A fixture
     * tree makes the probe treat core sets as clusters (tests). */
    const char *sysfs_root;
    /* 1 (default): qeil_probe_run also measures every Vulkan device
     * (qeil_probe_gpus; docs/probe.md, "Vulkan devices"); 0: the CPU only. */
    int gpus;
} qeil_probe_params;

QEIL_API qeil_probe_params qeil_probe_default_params(void);

#define QEIL_PROBE_MAX_THREADS 256
#define QEIL_PROBE_MAX_POINTS 64
#define QEIL_PROBE_MAX_CLUSTERS 4
#define QEIL_PROBE_MAX_GPUS 4 /* Vulkan devices measured (in the driver's order) */

/* One core cluster (big.LITTLE cluster, x86 P- or E-cores), measured on
 * its own: its cores, one thread each, and nothing else running. */
typedef struct {
    char name[16];       /* "big", "little", "mid", "p", "e", "c<k>" */
    char cpus[64];       /* CPU list, "0-3" */
    int n_cpus;          /* CPUs of the cluster the probe may use */
    int n_cores;         /* physical cores among them (the threads measured) */
    long capacity;       /* sysfs cpu_capacity (0: none) */
    double freq_Hz;      /* highest cpuinfo_max_freq (0: unknown) */
    double f32_flops;    /* measured, n_cores threads */
    double int8_ops;
    double read_bw_Bps;  /* read-only stream at the sweep's largest set (0: no sweep) */
} qeil_probe_cluster;

/* One Vulkan device, measured with qeil's probe shaders (docs/probe.md,
 * "Vulkan devices"). Rates are best of 3, timed by the host's monotonic
 * clock from vkQueueSubmit to the fence (`timing`). */
typedef struct {
    char device[16];       /* placement name: "vk0", "vk1", ... (qeil_engine_device_name) */
    char name[128];        /* VkPhysicalDeviceProperties.deviceName, printable ASCII */
    char type[16];         /* "discrete", "integrated", "virtual", "cpu", "other" */
    uint32_t vendor_id, device_id;
    char api[16];          /* Vulkan version the driver offers, "1.3.230" */
    int unified_memory;    /* a device-local + host-visible memory type: it shares host RAM */
    double heap_B;         /* largest device-local heap, bytes */
    double f32_flops;      /* measured FLOP/s (fma = 2) */
    double f16_flops;      /* measured; 0: no shaderFloat16 */
    double int8_ops;       /* measured OP/s (multiply-add = 2); 0: no shaderInt8 */
    double bw_Bps;         /* copy between two device-local buffers, read + write bytes */
    size_t bw_ws_B;        /* bytes of each of those two buffers */
    double link_bw_Bps;    /* host-visible (not device-local) -> device-local copy, bytes
                              read per second: a discrete device's bus; 0: not measured */
    int n_groups;          /* workgroups of 64 per compute dispatch */
    char form_f32[48];     /* what ran: shader and its loop ("probe_f32: 8 vec4 fma chains") */
    char form_f16[48];     /* "" where unsupported */
    char form_int8[48];
    char form_bw[48];
    char timing[48];       /* "host clock, submit to fence" */
    char error[160];       /* "": measured; else why not (the device is then no unit) */
} qeil_probe_gpu;

typedef struct {
    int n_threads;                                 /* entries below */
    double f32_flops[QEIL_PROBE_MAX_THREADS];      /* measured f32 FMA FLOP/s with i+1 threads */
    double int8_ops[QEIL_PROBE_MAX_THREADS];       /* measured int8 dot OP/s with i+1 threads */
    double f32_peak_theory;                        /* theoretical, all threads (0 if unknown) */
    double int8_peak_theory;
    int n_points;                                  /* bandwidth sweep */
    size_t ws_B[QEIL_PROBE_MAX_POINTS];            /* working-set size */
    double bw_Bps[QEIL_PROBE_MAX_POINTS];          /* triad bandwidth, all threads */
    double dram_bw_Bps;                            /* sustained DRAM bandwidth (largest sets) */
    double cache_bw_Bps[4];                        /* L1..L3 plateau (0 where not found) */
    size_t cache_size_B[4];                        /* from sysfs (0 where unknown) */
    char cpu_model[QEIL_DESC_MAX];
    int n_cpus;
    double mem_total_B;
    /* How the numbers above were obtained (docs/probe.md). */
    int n_cores;                 /* physical cores under the n_threads CPUs (SMT siblings share FMA units) */
    double freq_Hz;              /* highest max clock of those cores, Hz; 0 if unknown */
    char freq_source[32];        /* "cpufreq", "/proc/cpuinfo" or "unknown" */
    double f32_flop_per_cycle;   /* per core, assumed from the ISA; 0 if unknown */
    double int8_op_per_cycle;
    char kernel_f32[16];         /* variant measured: "avx2+fma", "scalar" */
    char kernel_int8[16];        /* "avx512-vnni-zmm", "avx-vnni", "avx2", "scalar" */
    char kernel_triad[16];       /* "avx2", "scalar" */
    double min_time_s;           /* per measurement (best of 3) */
    size_t cache_agg_B[4];       /* L1..L4 capacity of the instances the sweep's threads use */
    int dram_n_points;           /* sweep points >= 4x the last cache level behind dram_bw_Bps;
                                    0: none, dram_bw_Bps is the largest points' median (a cache
                                    rate, an overestimate of DRAM) */
    double read_bw_Bps;          /* read-only streaming (sum of the three arrays, 24 B per
                                    element, nothing written) at the sweep's largest working
                                    set, all threads: the rate LLM decode sees when it streams
                                    weights; DRAM when dram_n_points > 0 */
    char cpu_features[192];      /* what the CPU and OS run, space-separated ("avx2 fma f16c
                                    avx512f ... avx512vnni", "asimd asimddp i8mm"; "none"): the
                                    detection the kernel dispatch uses too */
    /* Core clusters (docs/probe.md, "Core clusters"): 1 on a uniform CPU
     * (clusters[0] then describes all of it, and is not measured apart);
     * >= 2: each measured alone, and qeil_probe_to_platform writes one
     * unit per cluster. */
    int n_clusters;
    char cluster_source[24];     /* "cpu_type", "cpu_capacity", "cpuinfo_max_freq", "uniform" */
    qeil_probe_cluster clusters[QEIL_PROBE_MAX_CLUSTERS];
    /* Vulkan devices (qeil_probe_gpus): gpu_status is "" when Vulkan was
     * probed, else why not ("not asked (gpus = 0)", "vulkan: cannot load
     * libvulkan.so.1 (...)", "vulkan: no Vulkan device ..."). */
    int n_gpus;
    char gpu_status[224];
    qeil_probe_gpu gpus[QEIL_PROBE_MAX_GPUS];
} qeil_probe_result;

/* Measure this machine's CPU, then (p->gpus) its Vulkan devices.
 * Allocates and frees its own buffers. */
QEIL_API qeil_status qeil_probe_run(qeil_ctx *ctx, const qeil_probe_params *p, qeil_probe_result *out);
/* Measure the Vulkan devices only: fills n_gpus, gpu_status and gpus of
 * *out and leaves the CPU fields as they are (min_time_s and max_ws_B of p
 * apply, as in qeil_probe_run; the copy's two buffers share max_ws_B,
 * within the device's maxStorageBufferRange and a quarter of its heap).
 * No Vulkan loader, driver or device is no error: QEIL_OK with n_gpus = 0
 * and gpu_status saying why. A device that fails to measure keeps its
 * error in gpus[i].error. QEIL_ERR_RANGE for bad parameters. p->progress
 * is called before each measurement ("vk0: f32 fma", ...) with the
 * fraction of this call's work done, in [0, 1). */
QEIL_API qeil_status qeil_probe_gpus(qeil_ctx *ctx, const qeil_probe_params *p, qeil_probe_result *out);
/* A platform from a probe result: a cpu unit (or one per core cluster) on
 * the host "dram" pool, and one unit per measured Vulkan device (docs/probe.md,
 * "Vulkan devices in the profile"); compute and bandwidth marked measured,
 * power and thermal marked default (documented in docs/probe.md). */
QEIL_API qeil_status qeil_probe_to_platform(qeil_ctx *ctx, const qeil_probe_result *r, qeil_platform *out);

/* CPUs this process may run on (its affinity mask; else the online CPUs),
 * at most QEIL_PROBE_MAX_THREADS: the probe's and the meter's limit. */
QEIL_API int qeil_probe_cpu_count(void);

/* ---- Bandwidth meter: the probe's DRAM streams, on demand ----
 * To set work against the bandwidth of its own minute on a machine whose
 * memory is shared (qeil bench --bw-live): n_threads pinned threads (one
 * per physical core first, as the probe) over a working set of ws_B bytes
 * (the probe's default 256 MiB: DRAM where the last cache is <= 64 MiB),
 * started once and kept waiting between measurements. Threads
 * 0..qeil_probe_cpu_count() (0 = all of them); ws_B 64 KiB..half of
 * MemTotal. Free with qeil_probe_meter_free (NULL is a no-op). Not
 * thread-safe. */
typedef struct qeil_probe_meter qeil_probe_meter;
QEIL_API qeil_status qeil_probe_meter_create(qeil_ctx *ctx, int n_threads, size_t ws_B,
                                             qeil_probe_meter **out);
/* Threads the meter runs (0 for NULL). */
QEIL_API int qeil_probe_meter_threads(const qeil_probe_meter *m);
/* One measurement: the read-only stream, then the triad, min_time_s each
 * ((0, 60] s; one run each, not a best of 3), in B/s of all threads. The
 * first call is preceded by an untimed pass that touches the set. */
QEIL_API qeil_status qeil_probe_meter_run(qeil_probe_meter *m, double min_time_s, double *read_Bps,
                                          double *triad_Bps);
QEIL_API void qeil_probe_meter_free(qeil_probe_meter *m);

#ifdef __cplusplus
}
#endif

#endif /* QEIL_DEVICE_H */
