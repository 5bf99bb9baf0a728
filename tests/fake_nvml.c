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

int nvmlInit_v2(void) { return (int)env_u("FAKE_NVML_INIT", 0); }
int nvmlShutdown(void) { return NVML_SUCCESS; }

const char *nvmlErrorString(int r)
{
    switch (r) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
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
