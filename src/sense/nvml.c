/* nvml.c — NVIDIA GPUs through NVML, loaded with dlopen at run time: no
 * link-time dependency, and a machine without the driver only loses the
 * GPU sensors. Declarations written from NVML's documented C API (nvml.h):
 * every call returns nvmlReturn_t (0 = NVML_SUCCESS), a device is an
 * opaque pointer, and values come back through out-parameters in the
 * units the API reference names (power mW, energy mJ, temperature °C,
 * clocks MHz). */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "sense/sense_internal.h"

typedef int nvml_ret;       /* nvmlReturn_t */
typedef void *nvml_dev;     /* nvmlDevice_t */
#define NVML_SUCCESS 0
#define NVML_ERROR_NOT_SUPPORTED 3
#define NVML_ERROR_FUNCTION_NOT_FOUND 13
#define NVML_TEMPERATURE_GPU 0
#define NVML_CLOCK_SM 1
#define NVML_DEVICE_NAME_V2_BUFFER_SIZE 96
#define NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE 80

struct sense_nvml {
    void *lib;
    nvml_ret (*shutdown)(void);
    const char *(*error_string)(nvml_ret);
    nvml_ret (*power)(nvml_dev, unsigned *);                 /* mW */
    nvml_ret (*energy)(nvml_dev, unsigned long long *);      /* mJ */
    nvml_ret (*temperature)(nvml_dev, int, unsigned *);      /* °C */
    nvml_ret (*clock)(nvml_dev, int, unsigned *);            /* MHz */
    nvml_ret (*reasons)(nvml_dev, unsigned long long *);     /* bitmask */
    unsigned n;
    nvml_dev dev[SENSE_MAX_NVML_GPUS];
};

/* dlsym's object pointer to a function pointer, as POSIX permits (a
 * direct cast is not ISO C). Returns 1 when found. */
static int sym(void *lib, const char *name, void *fp_out, size_t fp_size)
{
    void *p = dlsym(lib, name);
    if (!p || fp_size != sizeof p) return 0;
    memcpy(fp_out, &p, sizeof p);
    return 1;
}
#define SYM(lib, name, fp) sym((lib), (name), &(fp), sizeof(fp))

static const char *nvml_errstr(const sense_nvml *nv, nvml_ret r, char *buf, size_t n)
{
    const char *t = nv && nv->error_string ? nv->error_string(r) : NULL;
    if (t && t[0]) snprintf(buf, n, "%s (NVML error %d)", t, r);
    else snprintf(buf, n, "NVML error %d", r);
    return buf;
}

static nvml_ret query(const sense_nvml *nv, int gpu, nvml_query q, uint64_t *u)
{
    nvml_dev d = nv->dev[gpu];
    unsigned x = 0;
    unsigned long long y = 0;
    nvml_ret r;
    switch (q) {
    case NVML_Q_ENERGY:
        if (!nv->energy) return NVML_ERROR_FUNCTION_NOT_FOUND;
        r = nv->energy(d, &y);
        *u = y;
        return r;
    case NVML_Q_POWER:
        if (!nv->power) return NVML_ERROR_FUNCTION_NOT_FOUND;
        r = nv->power(d, &x);
        break;
    case NVML_Q_TEMP:
        if (!nv->temperature) return NVML_ERROR_FUNCTION_NOT_FOUND;
        r = nv->temperature(d, NVML_TEMPERATURE_GPU, &x);
        break;
    case NVML_Q_SM_CLOCK:
        if (!nv->clock) return NVML_ERROR_FUNCTION_NOT_FOUND;
        r = nv->clock(d, NVML_CLOCK_SM, &x);
        break;
    case NVML_Q_REASONS:
        if (!nv->reasons) return NVML_ERROR_FUNCTION_NOT_FOUND;
        r = nv->reasons(d, &y);
        *u = y;
        return r;
    default:
        return NVML_ERROR_FUNCTION_NOT_FOUND;
    }
    *u = x;
    return r;
}

int sense_nvml_read(const qeil_sense *s, int gpu, nvml_query q, uint64_t *u, char *err,
                    size_t n_err)
{
    const sense_nvml *nv = s->nvml;
    if (!nv || gpu < 0 || (unsigned)gpu >= nv->n) {
        snprintf(err, n_err, "nvml:%d: NVML is not loaded", gpu);
        return NVML_ERROR_FUNCTION_NOT_FOUND;
    }
    nvml_ret r = query(nv, gpu, q, u);
    if (r != NVML_SUCCESS) {
        char b[160];
        snprintf(err, n_err, "nvml:gpu%d: %s", gpu, nvml_errstr(nv, r, b, sizeof b));
    }
    return r;
}

void sense_nvml_close(qeil_sense *s)
{
    sense_nvml *nv = s->nvml;
    if (!nv) return;
    if (nv->shutdown) nv->shutdown();
    dlclose(nv->lib);
    qeil_free(s->ctx, nv);
    s->nvml = NULL;
}

/* The sensors of one GPU: those its driver supports (a query answering
 * NOT_SUPPORTED, e.g. total energy before Volta, adds nothing). */
static qeil_status add_gpu(qeil_sense *s, unsigned g, const char *gpu_name)
{
    static const struct {
        nvml_query q;
        qeil_sense_quantity quantity;
        const char *suffix;
        double scale;
        int counter;
    } qs[] = {
        {NVML_Q_ENERGY, QEIL_SENSE_ENERGY, "", 1e-3, 1},                   /* mJ */
        {NVML_Q_POWER, QEIL_SENSE_POWER, ":power", 1e-3, 0},               /* mW */
        {NVML_Q_TEMP, QEIL_SENSE_TEMP, ":temp", 1, 0},                     /* °C */
        {NVML_Q_SM_CLOCK, QEIL_SENSE_FREQ, ":sm-clock", 1e6, 0},           /* MHz */
        {NVML_Q_REASONS, QEIL_SENSE_THROTTLE_REASONS, ":clocks-event-reasons", 1, 0},
    };
    for (size_t k = 0; k < sizeof qs / sizeof *qs; k++) {
        uint64_t u;
        nvml_ret r = query(s->nvml, (int)g, qs[k].q, &u);
        if (r == NVML_ERROR_NOT_SUPPORTED || r == NVML_ERROR_FUNCTION_NOT_FOUND) continue;
        sense_sensor *e = sense_add(s);
        if (!e) return s->n >= SENSE_MAX_SENSORS ? QEIL_OK : QEIL_ERR_NOMEM;
        e->info.source = QEIL_SENSE_SRC_NVML;
        e->info.quantity = qs[k].quantity;
        e->kind = READ_NVML;
        e->gpu = (int)g;
        e->query = qs[k].q;
        e->scale = qs[k].scale;
        e->counter = qs[k].counter;
        /* The energy counter is 64-bit mJ since the driver loaded: no
         * documented wrap, and a decrease means the driver was reloaded. */
        e->info.id = sense_str(s, "nvml:gpu%u%s", g, qs[k].suffix);
        e->info.name = sense_str(s, "%s", gpu_name);
        e->info.device = sense_str(s, "gpu%u", g);
        e->info.path = sense_str(s, "nvml:%u", g);
        if (!e->info.id || !e->info.name || !e->info.device || !e->info.path)
            return QEIL_ERR_NOMEM;
        if (r != NVML_SUCCESS) {
            char b[160];
            e->info.readable = 0;
            e->info.note = sense_str(s, "cannot read %s on gpu%u: %s", e->info.id, g,
                                     nvml_errstr(s->nvml, r, b, sizeof b));
            if (!e->info.note) return QEIL_ERR_NOMEM;
        }
    }
    return QEIL_OK;
}

qeil_status sense_nvml_open(qeil_sense *s, const char *lib)
{
    void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *why = dlerror();
        snprintf(s->nvml_msg, sizeof s->nvml_msg, "not available: %s",
                 why ? why : lib);
        return QEIL_OK;
    }
    nvml_ret (*init)(void) = NULL;
    nvml_ret (*count)(unsigned *) = NULL;
    nvml_ret (*handle)(unsigned, nvml_dev *) = NULL;
    nvml_ret (*name)(nvml_dev, char *, unsigned) = NULL;
    nvml_ret (*version)(char *, unsigned) = NULL;
    sense_nvml *nv = qeil_calloc(s->ctx, 1, sizeof *nv);
    if (!nv) {
        dlclose(h);
        return QEIL_ERR_NOMEM;
    }
    nv->lib = h;
    /* The _v2 entry points exist since driver 340 or so; fall back to
     * the originals for older libraries. */
    int ok = (SYM(h, "nvmlInit_v2", init) || SYM(h, "nvmlInit", init)) &&
             (SYM(h, "nvmlDeviceGetCount_v2", count) || SYM(h, "nvmlDeviceGetCount", count)) &&
             (SYM(h, "nvmlDeviceGetHandleByIndex_v2", handle) ||
              SYM(h, "nvmlDeviceGetHandleByIndex", handle)) &&
             SYM(h, "nvmlShutdown", nv->shutdown);
    if (!ok) {
        snprintf(s->nvml_msg, sizeof s->nvml_msg,
                 "not available: %s lacks nvmlInit_v2/nvmlDeviceGetCount_v2/"
                 "nvmlDeviceGetHandleByIndex_v2/nvmlShutdown",
                 lib);
        dlclose(h);
        qeil_free(s->ctx, nv);
        return QEIL_OK;
    }
    SYM(h, "nvmlErrorString", nv->error_string);
    SYM(h, "nvmlDeviceGetName", name);
    SYM(h, "nvmlSystemGetDriverVersion", version);
    SYM(h, "nvmlDeviceGetPowerUsage", nv->power);
    SYM(h, "nvmlDeviceGetTotalEnergyConsumption", nv->energy);
    SYM(h, "nvmlDeviceGetTemperature", nv->temperature);
    SYM(h, "nvmlDeviceGetClockInfo", nv->clock);
    /* "clocks throttle reasons" were renamed "clocks event reasons" in
     * driver 535; the bits are the same. */
    if (!SYM(h, "nvmlDeviceGetCurrentClocksEventReasons", nv->reasons))
        SYM(h, "nvmlDeviceGetCurrentClocksThrottleReasons", nv->reasons);

    char b[160];
    nvml_ret r = init();
    if (r != NVML_SUCCESS) {
        snprintf(s->nvml_msg, sizeof s->nvml_msg, "not available: nvmlInit_v2: %s",
                 nvml_errstr(nv, r, b, sizeof b));
        dlclose(h);
        qeil_free(s->ctx, nv);
        return QEIL_OK;
    }
    s->nvml = nv;
    unsigned n = 0;
    r = count(&n);
    if (r != NVML_SUCCESS) {
        snprintf(s->nvml_msg, sizeof s->nvml_msg, "not available: nvmlDeviceGetCount_v2: %s",
                 nvml_errstr(nv, r, b, sizeof b));
        sense_nvml_close(s);
        return QEIL_OK;
    }
    if (n > SENSE_MAX_NVML_GPUS) n = SENSE_MAX_NVML_GPUS; /* documented bound */
    /* Handles first: a GPU whose handle fails (lost, no permission) is
     * skipped, and later indices keep their NVML numbering. */
    qeil_status st = QEIL_OK;
    unsigned added = 0;
    for (unsigned g = 0; g < n && st == QEIL_OK; g++) {
        if (handle(g, &nv->dev[g]) != NVML_SUCCESS) {
            nv->dev[g] = NULL;
            continue;
        }
        nv->n = g + 1;
        char gname[NVML_DEVICE_NAME_V2_BUFFER_SIZE] = "";
        if (!name || name(nv->dev[g], gname, sizeof gname) != NVML_SUCCESS)
            snprintf(gname, sizeof gname, "NVIDIA GPU %u", g);
        gname[sizeof gname - 1] = '\0';
        st = add_gpu(s, g, gname);
        added++;
    }
    char ver[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE] = "";
    if (!version || version(ver, sizeof ver) != NVML_SUCCESS) snprintf(ver, sizeof ver, "?");
    ver[sizeof ver - 1] = '\0';
    snprintf(s->nvml_msg, sizeof s->nvml_msg, "driver %s, %u GPU%s (%s)", ver, added,
             added == 1 ? "" : "s", lib);
    return st;
}
