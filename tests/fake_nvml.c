/* fake_nvml.c — a stand-in for libnvidia-ml.so.1 that test_sense loads
 * through the real dlopen path (QEIL_NVML_LIB / params.nvml_lib). The
 * Makefile builds it as BUILD/tests/libnvidia-ml.so.1. Values are scripted
 * through the environment and read at every call, so a test can change
 * them between two samples:
 *
 *   FAKE_NVML_INIT        NVML return code of nvmlInit_v2 (default 0)
 *   FAKE_NVML_COUNT       number of GPUs (default 1, at most 4)
 *   FAKE_NVML_NAME        device name (default "NVIDIA GeForce RTX 4070 Laptop GPU")
 *   FAKE_NVML_POWER_MW    power, mW (default 35000)
 *   FAKE_NVML_ENERGY_MJ   total energy, mJ (default 1000000); "unsupported" → NOT_SUPPORTED
 *   FAKE_NVML_TEMP_C      temperature, °C (default 55)
 *   FAKE_NVML_SM_MHZ      SM clock, MHz (default 1800)
 *   FAKE_NVML_REASONS     clocks-event reasons bitmask (default 0)
 *   FAKE_NVML_LOST        GPU index that is lost: every query returns
 *                         NVML_ERROR_GPU_IS_LOST (15)
 *   FAKE_NVML_NO_PERMISSION  1: the setters return NVML_ERROR_NO_PERMISSION (4)
 *   FAKE_NVML_WRITE_LOG   a file each successful setter appends a line to:
 *                         "app-clocks gpuG mem=M graphics=G" (MHz) or
 *                         "power-limit gpuG mW=X", so a test sees the writes
 *
 * Settings (application clocks, power limit) are kept per GPU in the
 * library's memory: the getters return what the setters stored. Supported
 * graphics clocks: 2100, 1800, 1500, 1200, 900, 600 MHz (descending, as
 * NVML lists them) with the 8001 MHz memory clock; power limit 10..115 W,
 * default 80 W.
 *
 * GPU g reports g × 1000 more mW and mJ than GPU 0, so tests can tell the
 * GPUs apart. Not thread-safe (getenv), which the tests never need.
 *
 * Built with -DFAKE_NVML_OLD (BUILD/tests/old/libnvidia-ml.so.1) it is a
 * pre-535 driver's library: nvmlInit, nvmlDeviceGetCount and
 * nvmlDeviceGetHandleByIndex without _v2, and
 * nvmlDeviceGetCurrentClocksThrottleReasons instead of ...EventReasons. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define API __attribute__((visibility("default")))
#define NVML_SUCCESS 0
#define NVML_ERROR_INVALID_ARGUMENT 2
#define NVML_ERROR_NOT_SUPPORTED 3
#define NVML_ERROR_GPU_IS_LOST 15

typedef struct {
    int index;
} fake_dev;
static fake_dev devs[4] = {{0}, {1}, {2}, {3}};

static unsigned long long env_u(const char *name, unsigned long long dflt)
{
    const char *v = getenv(name);
    if (!v || !*v) return dflt;
    char *end;
    unsigned long long x = strtoull(v, &end, 10);
    return *end ? dflt : x;
}

static int dev_index(const void *d)
{
    for (int i = 0; i < 4; i++)
        if (d == &devs[i]) return i;
    return -1;
}

/* Prototypes (the library's own header is not available here). */
#ifdef FAKE_NVML_OLD
#define nvmlInit_v2 nvmlInit
#define nvmlDeviceGetCount_v2 nvmlDeviceGetCount
#define nvmlDeviceGetHandleByIndex_v2 nvmlDeviceGetHandleByIndex
#define nvmlDeviceGetCurrentClocksEventReasons nvmlDeviceGetCurrentClocksThrottleReasons
#endif
API int nvmlInit_v2(void);
API int nvmlShutdown(void);
API const char *nvmlErrorString(int r);
API int nvmlSystemGetDriverVersion(char *v, unsigned n);
API int nvmlDeviceGetCount_v2(unsigned *n);
API int nvmlDeviceGetHandleByIndex_v2(unsigned i, void **d);
API int nvmlDeviceGetName(void *d, char *name, unsigned n);
API int nvmlDeviceGetPowerUsage(void *d, unsigned *mw);
API int nvmlDeviceGetTotalEnergyConsumption(void *d, unsigned long long *mj);
API int nvmlDeviceGetTemperature(void *d, int sensor, unsigned *c);
API int nvmlDeviceGetClockInfo(void *d, int type, unsigned *mhz);
API int nvmlDeviceGetCurrentClocksEventReasons(void *d, unsigned long long *r);
API int nvmlDeviceGetApplicationsClock(void *d, int type, unsigned *mhz);
API int nvmlDeviceSetApplicationsClocks(void *d, unsigned mem, unsigned gr);
API int nvmlDeviceGetSupportedGraphicsClocks(void *d, unsigned mem, unsigned *count, unsigned *mhz);
API int nvmlDeviceGetPowerManagementLimit(void *d, unsigned *mw);
API int nvmlDeviceSetPowerManagementLimit(void *d, unsigned mw);
API int nvmlDeviceGetPowerManagementLimitConstraints(void *d, unsigned *lo, unsigned *hi);

int nvmlInit_v2(void) { return (int)env_u("FAKE_NVML_INIT", 0); }
int nvmlShutdown(void) { return NVML_SUCCESS; }

const char *nvmlErrorString(int r)
{
    switch (r) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case 4: return "Insufficient Permissions";
    case 9: return "Driver Not Loaded";
    case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
    default: return "Unknown Error";
    }
}

int nvmlSystemGetDriverVersion(char *v, unsigned n)
{
#ifdef FAKE_NVML_OLD
    snprintf(v, n, "470.00.fake-old");
#else
    snprintf(v, n, "555.42.fake");
#endif
    return NVML_SUCCESS;
}

int nvmlDeviceGetCount_v2(unsigned *n)
{
    unsigned long long c = env_u("FAKE_NVML_COUNT", 1);
    *n = (unsigned)(c > 4 ? 4 : c);
    return NVML_SUCCESS;
}

int nvmlDeviceGetHandleByIndex_v2(unsigned i, void **d)
{
    if (i >= 4) return NVML_ERROR_INVALID_ARGUMENT;
    *d = &devs[i];
    return NVML_SUCCESS;
}

/* Common checks: a valid handle, and the lost GPU. */
static int check(const void *d, int *idx)
{
    *idx = dev_index(d);
    if (*idx < 0) return NVML_ERROR_INVALID_ARGUMENT;
    if (env_u("FAKE_NVML_LOST", 999) == (unsigned long long)*idx) return NVML_ERROR_GPU_IS_LOST;
    return NVML_SUCCESS;
}

int nvmlDeviceGetName(void *d, char *name, unsigned n)
{
    int i, r = check(d, &i);
    if (r) return r;
    const char *v = getenv("FAKE_NVML_NAME");
    snprintf(name, n, "%s", v && *v ? v : "NVIDIA GeForce RTX 4070 Laptop GPU");
    return NVML_SUCCESS;
}

int nvmlDeviceGetPowerUsage(void *d, unsigned *mw)
{
    int i, r = check(d, &i);
    if (r) return r;
    *mw = (unsigned)(env_u("FAKE_NVML_POWER_MW", 35000) + 1000u * (unsigned)i);
    return NVML_SUCCESS;
}

int nvmlDeviceGetTotalEnergyConsumption(void *d, unsigned long long *mj)
{
    int i, r = check(d, &i);
    if (r) return r;
    const char *v = getenv("FAKE_NVML_ENERGY_MJ");
    if (v && strcmp(v, "unsupported") == 0) return NVML_ERROR_NOT_SUPPORTED;
    *mj = env_u("FAKE_NVML_ENERGY_MJ", 1000000) + 1000ull * (unsigned)i;
    return NVML_SUCCESS;
}

int nvmlDeviceGetTemperature(void *d, int sensor, unsigned *c)
{
    int i, r = check(d, &i);
    if (r) return r;
    if (sensor != 0) return NVML_ERROR_INVALID_ARGUMENT; /* only NVML_TEMPERATURE_GPU */
    *c = (unsigned)env_u("FAKE_NVML_TEMP_C", 55);
    return NVML_SUCCESS;
}

int nvmlDeviceGetClockInfo(void *d, int type, unsigned *mhz)
{
    int i, r = check(d, &i);
    if (r) return r;
    if (type != 1) return NVML_ERROR_INVALID_ARGUMENT; /* the test expects NVML_CLOCK_SM */
    *mhz = (unsigned)env_u("FAKE_NVML_SM_MHZ", 1800);
    return NVML_SUCCESS;
}

int nvmlDeviceGetCurrentClocksEventReasons(void *d, unsigned long long *reasons)
{
    int i, r = check(d, &i);
    if (r) return r;
    *reasons = env_u("FAKE_NVML_REASONS", 0);
    return NVML_SUCCESS;
}

/* ---- settings ---- */
#define NVML_ERROR_NO_PERMISSION 4
#define FAKE_MEM_MHZ 8001u
static const unsigned fake_gr[] = {2100, 1800, 1500, 1200, 900, 600};
static unsigned app_gr[4] = {2100, 2100, 2100, 2100};
static unsigned pl_mw[4] = {80000, 80000, 80000, 80000};

static void write_log(const char *line)
{
    const char *path = getenv("FAKE_NVML_WRITE_LOG");
    if (!path || !*path) return;
    FILE *f = fopen(path, "a");
    if (!f) return;
    fputs(line, f);
    fclose(f);
}

int nvmlDeviceGetApplicationsClock(void *d, int type, unsigned *mhz)
{
    int i, r = check(d, &i);
    if (r) return r;
    if (type == 2) *mhz = FAKE_MEM_MHZ;
    else if (type == 0) *mhz = app_gr[i];
    else return NVML_ERROR_INVALID_ARGUMENT;
    return NVML_SUCCESS;
}

int nvmlDeviceSetApplicationsClocks(void *d, unsigned mem, unsigned gr)
{
    int i, r = check(d, &i);
    if (r) return r;
    if (env_u("FAKE_NVML_NO_PERMISSION", 0)) return NVML_ERROR_NO_PERMISSION;
    if (mem != FAKE_MEM_MHZ) return NVML_ERROR_INVALID_ARGUMENT;
    int ok = 0;
    for (size_t k = 0; k < sizeof fake_gr / sizeof *fake_gr; k++) ok |= fake_gr[k] == gr;
    if (!ok) return NVML_ERROR_INVALID_ARGUMENT;
    app_gr[i] = gr;
    char line[96];
    snprintf(line, sizeof line, "app-clocks gpu%d mem=%u graphics=%u\n", i, mem, gr);
    write_log(line);
    return NVML_SUCCESS;
}

int nvmlDeviceGetSupportedGraphicsClocks(void *d, unsigned mem, unsigned *count, unsigned *mhz)
{
    int i, r = check(d, &i);
    if (r) return r;
    if (mem != FAKE_MEM_MHZ) return NVML_ERROR_INVALID_ARGUMENT;
    unsigned n = (unsigned)(sizeof fake_gr / sizeof *fake_gr);
    if (*count < n) {
        *count = n;
        return 7; /* NVML_ERROR_INSUFFICIENT_SIZE */
    }
    for (unsigned k = 0; k < n; k++) mhz[k] = fake_gr[k];
    *count = n;
    return NVML_SUCCESS;
}

int nvmlDeviceGetPowerManagementLimit(void *d, unsigned *mw)
{
    int i, r = check(d, &i);
    if (r) return r;
    *mw = pl_mw[i];
    return NVML_SUCCESS;
}

int nvmlDeviceSetPowerManagementLimit(void *d, unsigned mw)
{
    int i, r = check(d, &i);
    if (r) return r;
    if (env_u("FAKE_NVML_NO_PERMISSION", 0)) return NVML_ERROR_NO_PERMISSION;
    if (mw < 10000 || mw > 115000) return NVML_ERROR_INVALID_ARGUMENT;
    pl_mw[i] = mw;
    char line[96];
    snprintf(line, sizeof line, "power-limit gpu%d mW=%u\n", i, mw);
    write_log(line);
    return NVML_SUCCESS;
}

int nvmlDeviceGetPowerManagementLimitConstraints(void *d, unsigned *lo, unsigned *hi)
{
    int i, r = check(d, &i);
    if (r) return r;
    *lo = 10000;
    *hi = 115000;
    return NVML_SUCCESS;
}
