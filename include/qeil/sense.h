/*
 * sense.h — sensors: energy, power, temperature, frequency and throttle
 * readings from the kernel's documented interfaces (powercap RAPL, hwmon,
 * thermal zones, cpufreq) and from NVML, loaded with dlopen at run time.
 * Layouts, units, wrap-around and permissions: docs/sense.md.
 *
 * Usage:
 *
 *     #include <qeil/sense.h>
 *
 *     qeil_ctx *ctx = qeil_ctx_create(NULL);
 *     qeil_sense_params p = qeil_sense_default_params(); // root "/", NVML on
 *     qeil_sense *s = NULL;
 *     if (qeil_sense_create(ctx, &p, &s) != QEIL_OK) {
 *         fprintf(stderr, "%s\n", qeil_ctx_errmsg(ctx));
 *         return 1;
 *     }
 *     qeil_sense_sample *a = qeil_sense_sample_create(ctx, s);
 *     qeil_sense_sample *b = qeil_sense_sample_create(ctx, s);
 *     qeil_sense_read(s, a);
 *     run_the_work();
 *     qeil_sense_read(s, b);
 *     for (size_t i = 0; i < qeil_sense_count(s); i++) {
 *         qeil_sense_energy e;
 *         if (qeil_sense_meter(ctx, s, a, b, i, &e) == QEIL_OK)
 *             printf("%s: %.3f J over %.3f s\n", e.provenance, e.energy_J, e.t_s);
 *     }
 *     qeil_sense_sample_free(b);
 *     qeil_sense_sample_free(a);
 *     qeil_sense_free(s);
 *     qeil_ctx_free(ctx);
 *
 * Every reader works under a root directory ("/" on a live system, a
 * fixture tree in tests), so /sys/class/powercap becomes
 * ROOT/sys/class/powercap. Values are SI: J, W, °C, Hz, V, A.
 *
 * Threading: a qeil_sense is read-only after qeil_sense_create; several
 * threads may call qeil_sense_read at once, each with its own sample.
 * create/free are not thread-safe with respect to the same object.
 */
#ifndef QEIL_SENSE_H
#define QEIL_SENSE_H

#include <stddef.h>
#include <stdint.h>

#include "qeil/qeil.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Where a sensor's value comes from. */
typedef enum {
    QEIL_SENSE_SRC_RAPL = 0, /* /sys/class/powercap/intel-rapl:* (Intel and AMD) */
    QEIL_SENSE_SRC_HWMON,    /* /sys/class/hwmon/hwmon* */
    QEIL_SENSE_SRC_THERMAL,  /* /sys/class/thermal/thermal_zone* */
    QEIL_SENSE_SRC_CPUFREQ,  /* /sys/devices/system/cpu/cpu* (cpufreq, thermal_throttle) */
    QEIL_SENSE_SRC_NVML      /* libnvidia-ml.so.1 */
} qeil_sense_source;

/* What a sensor measures, and the unit of its value. */
typedef enum {
    QEIL_SENSE_ENERGY = 0,       /* J, a cumulative counter */
    QEIL_SENSE_POWER,            /* W */
    QEIL_SENSE_TEMP,             /* °C */
    QEIL_SENSE_FREQ,             /* Hz */
    QEIL_SENSE_THROTTLE_COUNT,   /* events since boot, a cumulative counter */
    QEIL_SENSE_THROTTLE_REASONS, /* a bitmask (NVML clocks-event reasons) */
    QEIL_SENSE_ALARM,            /* 0 or 1 (hwmon temp*_crit_alarm) */
    QEIL_SENSE_VOLTAGE,          /* V */
    QEIL_SENSE_CURRENT           /* A */
} qeil_sense_quantity;

/* Static names: "rapl", "hwmon", "thermal", "cpufreq", "nvml";
 * "energy", "power", "temperature", "frequency", "throttle-count",
 * "throttle-reasons", "alarm", "voltage", "current"; units "J", "W", "C",
 * "Hz", "count", "mask", "bool", "V", "A". Never NULL ("?" when out of
 * range). Reentrant. */
QEIL_API const char *qeil_sense_source_name(qeil_sense_source s);
QEIL_API const char *qeil_sense_quantity_name(qeil_sense_quantity q);
QEIL_API const char *qeil_sense_unit(qeil_sense_quantity q);

/* One discovered sensor. Strings are owned by the qeil_sense and live
 * until qeil_sense_free. */
typedef struct {
    const char *id;     /* unique provenance: "rapl-package", "rapl-dram",
                           "hwmon:k10temp:Tctl", "thermal:cpu-thermal",
                           "cpufreq:cpu0", "throttle:cpu0:core", "nvml:gpu0", ... */
    qeil_sense_source source;
    qeil_sense_quantity quantity;
    const char *name;   /* the kernel's own name: zone name, *_label, zone type */
    const char *device; /* what it belongs to: "cpu-package", "cpu-cores",
                           "uncore", "dram", "platform", "cpu", "gpu", "gpu0",
                           "cpu3", a rail ("VDD_IN"), ... */
    const char *path;   /* the file read (under root), or "nvml:<index>" */
    int readable;       /* 1: read at discovery; 0: found but unreadable */
    const char *note;   /* why unreadable and how to fix it; "" when readable */
    double range;       /* energy: the counter's wrap range in J (RAPL
                           max_energy_range_uj); 0 when none is documented */
    double crit_C;      /* temperature: critical trip / temp*_crit, NAN unknown */
    double throttle_C;  /* temperature: passive trip point, NAN unknown */
    double min_Hz;      /* frequency: cpuinfo_min_freq, NAN unknown */
    double max_Hz;      /* frequency: cpuinfo_max_freq, NAN unknown */
    double cap_Hz;      /* frequency: scaling_max_freq at discovery, NAN unknown */
} qeil_sensor_info;

typedef struct {
    const char *root;     /* directory that stands for "/"; NULL or "" = "/" */
    int nvml;             /* 1 (default): try NVML; 0: do not load it */
    const char *nvml_lib; /* NULL: $QEIL_NVML_LIB, else "libnvidia-ml.so.1" */
} qeil_sense_params;

/* root "/", nvml 1, nvml_lib NULL. */
QEIL_API qeil_sense_params qeil_sense_default_params(void);

typedef struct qeil_sense qeil_sense;

/* Discover every sensor under params->root (params may be NULL: the
 * defaults). A missing subsystem (no powercap, no NVML) is not an error;
 * a sensor that exists but cannot be read (energy_uj is root-only since
 * Linux 5.10) is listed with readable = 0 and a note naming the file and
 * the fix. Fails (QEIL_ERR_NOTFOUND) only when root is not a directory,
 * QEIL_ERR_NOMEM when memory runs out, QEIL_ERR_INVALID on NULL out.
 * ctx may be NULL (the C allocator); otherwise it must outlive *out,
 * whose memory comes from and returns to its allocator hook. On success
 * *out owns everything; free with qeil_sense_free (NULL is a no-op). */
QEIL_API qeil_status qeil_sense_create(qeil_ctx *ctx, const qeil_sense_params *params, qeil_sense **out);
QEIL_API void qeil_sense_free(qeil_sense *s);

/* Number of sensors (0 for NULL), and sensor i (NULL when i >= count);
 * the info is owned by s. Sensors are in discovery order: RAPL, hwmon,
 * thermal, cpufreq, NVML, each sorted naturally. Reentrant. */
QEIL_API size_t qeil_sense_count(const qeil_sense *s);
QEIL_API const qeil_sensor_info *qeil_sense_info(const qeil_sense *s, size_t i);
/* Index of the sensor with this id (exact match), or -1. Reentrant. */
QEIL_API long qeil_sense_find(const qeil_sense *s, const char *id);

/* NVML state: 1 when loaded and initialised. *msg (msg may be NULL) gets
 * a sentence owned by s, valid until qeil_sense_free: "driver 550.54.15,
 * 1 GPU (libnvidia-ml.so.1)", "not available: libnvidia-ml.so.1: cannot
 * open shared object file: ...", "not loaded (disabled by the caller)".
 * Reentrant. */
QEIL_API int qeil_sense_nvml_available(const qeil_sense *s, const char **msg);

/* ------------------------------------------------------------------------ */
/* Samples                                                                   */
/* ------------------------------------------------------------------------ */

/* One reading of one sensor. */
typedef struct {
    qeil_status status; /* QEIL_OK, or why this sensor failed this time:
                           QEIL_ERR_IO (vanished, permission, read error),
                           QEIL_ERR_FORMAT (unparsable text) */
    double value;       /* in qeil_sense_unit(quantity); NAN on failure */
    uint64_t raw;       /* counters: the raw count (µJ RAPL/hwmon, mJ NVML,
                           events); 0 otherwise */
    const char *error;  /* "" on success, else the file and the reason;
                           owned by the sample, valid until its next read */
} qeil_sense_reading;

typedef struct qeil_sense_sample qeil_sense_sample;

/* A sample sized for s (one reading per sensor); NULL when out of memory.
 * The sample must not outlive s. Free with qeil_sense_sample_free (NULL
 * is a no-op). ctx may be NULL (the C allocator), else must outlive the
 * sample. */
QEIL_API qeil_sense_sample *qeil_sense_sample_create(qeil_ctx *ctx, const qeil_sense *s);
QEIL_API void qeil_sense_sample_free(qeil_sense_sample *sample);

/* Read every sensor into sample and stamp it with CLOCK_MONOTONIC.
 * Returns the number of sensors whose read failed this time (0: all
 * read): a failed sensor is a warning for the caller (it vanished, lost
 * permission, its GPU fell off the bus), never a crash or an abort of the
 * others. Thread-safe for distinct samples. */
QEIL_API size_t qeil_sense_read(const qeil_sense *s, qeil_sense_sample *sample);

/* Reading i of a sample (NULL when i is out of range), and its time in
 * seconds on CLOCK_MONOTONIC (NAN before the first read). */
QEIL_API const qeil_sense_reading *qeil_sense_sample_get(const qeil_sense_sample *sample, size_t i);
QEIL_API double qeil_sense_sample_time_s(const qeil_sense_sample *sample);

/* ------------------------------------------------------------------------ */
/* Energy meter                                                              */
/* ------------------------------------------------------------------------ */

typedef enum {
    QEIL_SENSE_METER_COUNTER = 0, /* difference of a cumulative energy counter */
    QEIL_SENSE_METER_POWER_MEAN   /* mean of two power readings × interval */
} qeil_sense_meter_method;

typedef struct {
    const char *provenance; /* the sensor's id, e.g. "rapl-package" */
    qeil_sense_meter_method method;
    double energy_J;        /* >= 0 */
    double t_s;             /* the interval, > 0 */
    double power_W;         /* energy_J / t_s */
    int wrapped;            /* 1: the counter wrapped once at its range */
} qeil_sense_energy;

/* Energy of sensor i between samples a (earlier) and b (later), both read
 * from s. Energy counters: b − a, and when b < a the counter is taken to
 * have wrapped once at its documented range (RAPL max_energy_range_uj):
 * range − a + b. A counter without a documented range that goes backwards
 * was reset (driver reload): QEIL_ERR_RANGE. Power sensors: the mean of
 * the two readings × (t_b − t_a), a rough figure for intervals short
 * against the load's changes. Other quantities: QEIL_ERR_UNSUPPORTED.
 * Either reading failed: its status. t_b <= t_a: QEIL_ERR_RANGE. out is
 * filled only on QEIL_OK; a failure's detail goes to ctx (may be NULL).
 * Reentrant for distinct ctx (it only reads s and the samples). */
QEIL_API qeil_status qeil_sense_meter(qeil_ctx *ctx, const qeil_sense *s, const qeil_sense_sample *a,
                                      const qeil_sense_sample *b, size_t i, qeil_sense_energy *out);

/* The wrap-around rule alone, for callers holding raw counters: energy in
 * counter units from c0 to c1 for a counter that wraps at `range` (0: no
 * documented range). Returns 1 and sets *delta when defined, 0 when c1 <
 * c0 with no range or either count exceeds the range. Reentrant. */
QEIL_API int qeil_sense_counter_delta(uint64_t c0, uint64_t c1, uint64_t range, uint64_t *delta);


/* ------------------------------------------------------------------------ */
/* The CPU meter: measured energy of a phase of work                         */
/* ------------------------------------------------------------------------ */

/* A meter picks the energy counters that cover the CPU the engine runs on
 * and measures intervals with them: start, the work, stop. The pick, in
 * order: every readable RAPL package zone (rapl-package, rapl-package-1,
 * ... summed: each covers one whole CPU package — all cores, the uncore
 * and caches — and so every process's work on it, not qeil's alone);
 * else RAPL psys (the whole platform: package, memory, board); else a
 * hwmon energy counter of the CPU. NVML's GPU counter never covers CPU
 * work and is not picked. No counter: the meter has no provenance and
 * every measure says why (`n/a: no sensor`), so a modeled figure is never
 * printed as measured. */
typedef struct {
    const char *root;     /* as qeil_sense_params.root; NULL or "" = "/" */
    int nvml;             /* as qeil_sense_params.nvml; default 0 (a GPU counter
                             never covers the CPU's work) */
    const char *nvml_lib; /* as qeil_sense_params.nvml_lib */
    void (*hook)(void *user); /* called right before each reading (tests advance
                                 a fixture's counter with it); NULL = none */
    void *hook_user;
} qeil_sense_meter_params;

/* root "/", nvml 0, nvml_lib NULL, no hook. */
QEIL_API qeil_sense_meter_params qeil_sense_meter_default_params(void);

typedef struct qeil_sense_cpu_meter qeil_sense_cpu_meter;

/* One measured interval. */
typedef struct {
    int valid;       /* 1: measured; 0: no sensor, or a reading failed (a
                        sensor that vanished mid-run is this, never a crash) */
    double energy_J; /* >= 0 when valid, else NAN */
    double t_s;      /* the interval, s (valid or not: the wall time between
                        start and stop when both were read) */
    double power_W;  /* energy_J / t_s when valid, else NAN */
} qeil_sense_measure;

/* Discover the sensors under p->root (p may be NULL: the defaults) and
 * pick the CPU counters. Having no counter is not an error (see
 * qeil_sense_cpu_meter_provenance). Errors: those of qeil_sense_create
 * (QEIL_ERR_NOTFOUND: root is not a directory), QEIL_ERR_NOMEM. ctx (not
 * NULL) supplies the allocator and must outlive *out. Free with
 * qeil_sense_cpu_meter_free (NULL is a no-op). Not thread-safe: one
 * interval at a time per meter. */
QEIL_API qeil_status qeil_sense_cpu_meter_create(qeil_ctx *ctx, const qeil_sense_meter_params *p,
                                        qeil_sense_cpu_meter **out);
QEIL_API void qeil_sense_cpu_meter_free(qeil_sense_cpu_meter *m);

/* The picked counters' ids joined by '+' ("rapl-package",
 * "rapl-package+rapl-package-1", "rapl-psys"), or NULL when none; owned
 * by m. */
QEIL_API const char *qeil_sense_cpu_meter_provenance(const qeil_sense_cpu_meter *m);
/* What the counters cover, one sentence owned by m ("the whole CPU
 * package (all cores, uncore and caches; other processes' work
 * included)"); when none, why: "no sensor" or the unreadable counter's
 * file and fix. Never NULL. */
QEIL_API const char *qeil_sense_cpu_meter_covers(const qeil_sense_cpu_meter *m);

/* Begin an interval: read the counters now (the hook first). Returns 0,
 * or the number of counters that failed to read (the interval is then
 * invalid). m may be NULL (no meter: a no-op returning 0). */
QEIL_API size_t qeil_sense_cpu_meter_start(qeil_sense_cpu_meter *m);
/* End the interval begun by the last start: read again and fill *out
 * (valid = 0 with NAN energy when there is no counter, a reading failed,
 * a counter went backwards without a documented range, or start was not
 * called). m may be NULL: *out is invalid. */
QEIL_API void qeil_sense_cpu_meter_stop(qeil_sense_cpu_meter *m, qeil_sense_measure *out);

/* Sum of measures: valid only when all of a and b are; t_s adds up. */
QEIL_API qeil_sense_measure qeil_sense_measure_add(qeil_sense_measure a, qeil_sense_measure b);

/* ------------------------------------------------------------------------ */
/* Ground truth for throttling                                               */
/* ------------------------------------------------------------------------ */

/* NVML clocks-event reasons that mean the GPU slowed for heat or power
 * (nvml.h: SW power cap 0x4, HW slowdown 0x8, SW thermal 0x20, HW thermal
 * 0x40, HW power brake 0x80). */
#define QEIL_NVML_REASONS_THROTTLE 0xECull

typedef struct {
    int available;          /* 1: at least one source was readable in both samples */
    uint64_t events;        /* the sum of the three below */
    uint64_t counter_events; /* thermal_throttle/{core,package}_throttle_count increments */
    uint64_t reason_events;  /* NVML: GPUs whose throttle reasons became set (a
                                rising edge between the samples, or set in a
                                and b both: the episode is counted once, in a) */
    uint64_t alarm_events;   /* hwmon temp*_crit_alarm rising edges */
    uint32_t sources;        /* readable sources counted */
} qeil_sense_throttle;

/* Throttle events between samples a (earlier) and b (later) of s, from the
 * kernel's and the driver's own counters: a ground truth, not a model.
 * Counters are differenced (a counter that went backwards — a reset — adds
 * nothing); a reason mask or an alarm counts its rising edges only, so an
 * episode that began and ended between two samples is missed (sample
 * often where that matters). available is 0 where no such sensor exists
 * or none read: the caller reports "unknown", never 0. Reentrant. */
QEIL_API void qeil_sense_throttle_between(const qeil_sense *s, const qeil_sense_sample *a,
                                          const qeil_sense_sample *b, qeil_sense_throttle *out);

/* ------------------------------------------------------------------------ */
/* Actuators                                                                 */
/* ------------------------------------------------------------------------ */

/* Knobs that lower a unit's power, discovered with the sensors under the
 * same root: what `qeil_sense_actuate` writes and what it accepts.
 * docs/sense.md "Actuators". */
typedef enum {
    QEIL_ACT_CPUFREQ_MAX = 0, /* cpufreq policy scaling_max_freq (kHz in the file; Hz here) */
    QEIL_ACT_CPUFREQ_SPEED,   /* scaling_setspeed, userspace governor only */
    QEIL_ACT_DEVFREQ_MAX,     /* /sys/class/devfreq/NAME/max_freq (Hz): the GPU clock cap
                                 Jetson's nvpmodel power modes set */
    QEIL_ACT_NVML_CLOCKS,     /* nvmlDeviceSetApplicationsClocks, graphics clock (Hz) */
    QEIL_ACT_NVML_POWER       /* nvmlDeviceSetPowerManagementLimit (W) */
} qeil_actuator_kind;

/* "cpufreq-max", "cpufreq-speed", "devfreq-max", "nvml-clocks",
 * "nvml-power-limit"; "?" out of range. */
QEIL_API const char *qeil_actuator_kind_name(qeil_actuator_kind k);

#define QEIL_ACT_MAX_LEVELS 64

typedef struct {
    const char *id;       /* "cpufreq:policy0", "cpufreq:policy0:setspeed",
                             "devfreq:17000000.gpu", "nvml:gpu0:clocks",
                             "nvml:gpu0:power-limit" */
    qeil_actuator_kind kind;
    const char *device;   /* "cpu0" (the policy's first CPU), "gpu", "gpu0" */
    const char *path;     /* the file written (under root), or "nvml:<index>" */
    const char *unit;     /* "Hz" or "W" */
    int writable;         /* 1: writable at discovery (access W_OK / NVML answered) */
    const char *note;     /* why not writable and what to do; "" when writable */
    double min, max;      /* allowed range, inclusive */
    size_t n_levels;      /* discrete allowed values (ascending), 0: any in [min, max] */
    double levels[QEIL_ACT_MAX_LEVELS];
    double initial;       /* the setting at discovery (restore it when done); NAN unknown */
} qeil_actuator_info;

/* Number of actuators (0 for NULL) and actuator i (NULL past the end);
 * owned by s. Reentrant. */
QEIL_API size_t qeil_sense_actuator_count(const qeil_sense *s);
QEIL_API const qeil_actuator_info *qeil_sense_actuator_info(const qeil_sense *s, size_t i);
/* Index of the actuator with this id, or -1. */
QEIL_API long qeil_sense_actuator_find(const qeil_sense *s, const char *id);

/* Set actuator i to value (its unit: Hz or W). A value outside [min, max],
 * or not one of the levels when there are levels: QEIL_ERR_RANGE naming
 * the actuator, the value and the allowed values; nothing is written.
 * The write refused (EACCES, EPERM, EROFS; NVML NO_PERMISSION): QEIL_ERR_IO
 * with a message naming the file and the fix ("run as root"), never a
 * crash; other write errors QEIL_ERR_IO with the reason. ctx (may be NULL)
 * receives the message. Not thread-safe for the same actuator. */
QEIL_API qeil_status qeil_sense_actuate(qeil_ctx *ctx, const qeil_sense *s, size_t i, double value);
/* The current setting of actuator i read back (Hz or W); QEIL_ERR_IO when
 * it cannot be read. */
QEIL_API qeil_status qeil_sense_actuator_get(qeil_ctx *ctx, const qeil_sense *s, size_t i, double *value);
/* The allowed value nearest to want from below (the highest level <= want;
 * the lowest level when none is; want clamped into [min, max] without
 * levels). NAN for a bad i. A helper for controllers that step down. */
QEIL_API double qeil_sense_actuator_floor(const qeil_sense *s, size_t i, double want);

#ifdef __cplusplus
}
#endif

#endif /* QEIL_SENSE_H */
