/* sense_internal.h — what the sense module's files share: the sensor
 * record behind qeil_sensor_info, the object, the sysfs helpers, and the
 * NVML binding (dlopen'ed; no link-time dependency). */
#ifndef QEIL_SENSE_INTERNAL_H
#define QEIL_SENSE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "qeil/sense.h"

/* Bounds on what discovery accepts from a tree it does not trust (a fixture
 * or a kernel with thousands of CPUs): beyond them entries are ignored. */
#define SENSE_MAX_SENSORS 8192
#define SENSE_MAX_DIR_ENTRIES 4096
#define SENSE_MAX_NVML_GPUS 64
#define SENSE_PATH_MAX 1024
#define SENSE_ERR_MAX 256

/* How a sensor is read. */
typedef enum {
    READ_FILE = 0, /* one integer file × scale */
    READ_VI,       /* two integer files (mV, mA): V × I (INA3221 rails) */
    READ_NVML      /* an NVML query */
} read_kind;

typedef enum {
    NVML_Q_ENERGY = 0, /* nvmlDeviceGetTotalEnergyConsumption, mJ */
    NVML_Q_POWER,      /* nvmlDeviceGetPowerUsage, mW */
    NVML_Q_TEMP,       /* nvmlDeviceGetTemperature(NVML_TEMPERATURE_GPU), °C */
    NVML_Q_SM_CLOCK,   /* nvmlDeviceGetClockInfo(NVML_CLOCK_SM), MHz */
    NVML_Q_REASONS     /* nvmlDeviceGetCurrentClocks{Event,Throttle}Reasons */
} nvml_query;

typedef struct {
    qeil_sensor_info info; /* strings owned by the sensor (sense_str) */
    read_kind kind;
    const char *path2;     /* READ_VI: the current file */
    double scale;          /* raw integer → SI unit */
    int counter;           /* 1: a cumulative counter (raw is kept) */
    uint64_t range_raw;    /* counter wrap range in raw units, 0: none */
    int gpu;               /* READ_NVML: device index */
    nvml_query query;
} sense_sensor;

typedef struct sense_nvml sense_nvml; /* nvml.c */

/* An actuator (actuate.c): the public info plus how to reach it. */
typedef struct {
    qeil_actuator_info info; /* strings owned by the qeil_sense (sense_str) */
    int gpu;                 /* NVML index */
    double scale;            /* file units per SI unit: 1e-3 for kHz, 1 for Hz */
} sense_actuator;

#define SENSE_MAX_ACTUATORS 1024

struct qeil_sense {
    qeil_ctx *ctx;
    char *root; /* without a trailing '/'; "" for "/" */
    sense_sensor *v;
    size_t n, cap;
    char **strs; /* every string the sensors point to */
    size_t n_strs, cap_strs;
    sense_nvml *nvml;
    char nvml_msg[SENSE_ERR_MAX];
    sense_actuator *acts;
    size_t n_acts, cap_acts;
};

/* sense.c */
/* A copy of printf output owned by s (freed with it); NULL when out of memory. */
const char *sense_str(qeil_sense *s, const char *fmt, ...) QEIL_PRINTF(2, 3);
/* Append a sensor (info strings must come from sense_str); NULL when out
 * of memory or past SENSE_MAX_SENSORS. Numeric limits start as NAN. */
sense_sensor *sense_add(qeil_sense *s);

/* sysfs.c */
/* Read one integer (optionally negative) from a sysfs file. 0 on success;
 * else an errno value (ENOENT vanished, EACCES permission, EINVAL junk). */
int sense_read_int(const char *path, int64_t *v, uint64_t *u);
/* Discovery of each sysfs subsystem under s->root. */
qeil_status sense_discover_rapl(qeil_sense *s);
qeil_status sense_discover_hwmon(qeil_sense *s);
qeil_status sense_discover_thermal(qeil_sense *s);
qeil_status sense_discover_cpufreq(qeil_sense *s);
/* The note for a file that cannot be read (errno err), in buf. */
void sense_unreadable_note(char *buf, size_t n, const char *path, int err);

/* nvml.c */
/* Load and initialise NVML from lib (a path or soname); add its sensors.
 * Failure to load is not an error: s->nvml stays NULL and s->nvml_msg says
 * why. Only QEIL_ERR_NOMEM is returned as a failure. */
qeil_status sense_nvml_open(qeil_sense *s, const char *lib);
void sense_nvml_close(qeil_sense *s);
/* Query q of GPU gpu: 0 on success with *u (integer) set; else an NVML
 * return code, with its text in err. */
int sense_nvml_read(const qeil_sense *s, int gpu, nvml_query q, uint64_t *u, char *err,
                    size_t n_err);

/* actuate.c */
/* Append an actuator (strings from sense_str); NULL when out of memory or
 * past SENSE_MAX_ACTUATORS. min/max/initial start as NAN. */
sense_actuator *sense_act_add(qeil_sense *s);
/* cpufreq policies and devfreq devices under s->root. */
qeil_status sense_discover_actuators(qeil_sense *s);

/* nvml.c: application clocks and power limit of each GPU (after
 * sense_nvml_open); set/get in SI units (Hz, W); 0 or an NVML return code
 * with its text in err. */
qeil_status sense_nvml_actuators(qeil_sense *s);
int sense_nvml_act_set(const qeil_sense *s, const sense_actuator *a, double value, char *err,
                       size_t n_err);
int sense_nvml_act_get(const qeil_sense *s, const sense_actuator *a, double *value, char *err,
                       size_t n_err);
#define SENSE_NVML_NO_PERMISSION 4

#endif /* QEIL_SENSE_INTERNAL_H */
