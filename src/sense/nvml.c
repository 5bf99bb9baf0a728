/* nvml.c — NVIDIA GPUs through NVML, loaded with dlopen at run time: no
 * link-time dependency, and a machine without the driver only loses the
 * GPU sensors. Declarations written from NVML's documented C API (nvml.h):
 * every call returns nvmlReturn_t (0 = NVML_SUCCESS), a device is an
 * opaque pointer, and values come back through out-parameters in the
 * units the API reference names (power mW, energy mJ, temperature °C,
 * clocks MHz). */
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sense/sense_internal.h"

typedef int nvml_ret;       /* nvmlReturn_t */
typedef void *nvml_dev;     /* nvmlDevice_t */
#define NVML_SUCCESS 0
#define NVML_ERROR_NOT_SUPPORTED 3
#define NVML_ERROR_FUNCTION_NOT_FOUND 13
#define NVML_TEMPERATURE_GPU 0
#define NVML_CLOCK_GRAPHICS 0
#define NVML_CLOCK_SM 1
#define NVML_CLOCK_MEM 2
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
    /* actuators */
    nvml_ret (*app_clock)(nvml_dev, int, unsigned *);        /* MHz */
    nvml_ret (*set_app_clocks)(nvml_dev, unsigned, unsigned); /* mem, graphics MHz */
    nvml_ret (*supported_gr)(nvml_dev, unsigned, unsigned *, unsigned *);
    nvml_ret (*pl_get)(nvml_dev, unsigned *);                /* mW */
    nvml_ret (*pl_set)(nvml_dev, unsigned);                  /* mW */
    nvml_ret (*pl_range)(nvml_dev, unsigned *, unsigned *);  /* mW */
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
    SYM(h, "nvmlDeviceGetApplicationsClock", nv->app_clock);
    SYM(h, "nvmlDeviceSetApplicationsClocks", nv->set_app_clocks);
    SYM(h, "nvmlDeviceGetSupportedGraphicsClocks", nv->supported_gr);
    SYM(h, "nvmlDeviceGetPowerManagementLimit", nv->pl_get);
    SYM(h, "nvmlDeviceSetPowerManagementLimit", nv->pl_set);
    SYM(h, "nvmlDeviceGetPowerManagementLimitConstraints", nv->pl_range);

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

/* ------------------------------------------------------------------------ */
/* Actuators: application clocks and power limit                             */
/* ------------------------------------------------------------------------ */

#define NVML_MAX_CLOCKS 128

/* The GPU's graphics clocks supported with its current memory application
 * clock (MHz → Hz into the levels) and the power-limit range. A GPU whose
 * driver does not support a setting (GeForce boards refuse application
 * clocks) gets no actuator for it. */
qeil_status sense_nvml_actuators(qeil_sense *s)
{
    sense_nvml *nv = s->nvml;
    if (!nv) return QEIL_OK;
    for (unsigned g = 0; g < nv->n; g++) {
        if (!nv->dev[g]) continue;
        unsigned mem = 0, gr = 0;
        if (nv->app_clock && nv->set_app_clocks && nv->supported_gr &&
            nv->app_clock(nv->dev[g], NVML_CLOCK_MEM, &mem) == NVML_SUCCESS &&
            nv->app_clock(nv->dev[g], NVML_CLOCK_GRAPHICS, &gr) == NVML_SUCCESS) {
            unsigned clk[NVML_MAX_CLOCKS], cnt = NVML_MAX_CLOCKS;
            if (nv->supported_gr(nv->dev[g], mem, &cnt, clk) == NVML_SUCCESS && cnt > 0) {
                sense_actuator *a = sense_act_add(s);
                if (!a) return s->n_acts >= SENSE_MAX_ACTUATORS ? QEIL_OK : QEIL_ERR_NOMEM;
                a->info.kind = QEIL_ACT_NVML_CLOCKS;
                a->info.id = sense_str(s, "nvml:gpu%u:clocks", g);
                a->info.device = sense_str(s, "gpu%u", g);
                a->info.path = sense_str(s, "nvml:%u", g);
                if (!a->info.id || !a->info.device || !a->info.path) return QEIL_ERR_NOMEM;
                a->info.unit = "Hz";
                a->gpu = (int)g;
                a->scale = mem; /* the memory clock to pair with, MHz */
                if (cnt > NVML_MAX_CLOCKS) cnt = NVML_MAX_CLOCKS;
                /* levels ascending (NVML lists them descending) */
                size_t n = 0;
                for (unsigned k = cnt; k-- > 0 && n < QEIL_ACT_MAX_LEVELS;)
                    a->info.levels[n++] = clk[k] * 1e6;
                for (size_t i = 1; i < n; i++) /* insertion sort: a few dozen */
                    for (size_t j = i; j > 0 && a->info.levels[j - 1] > a->info.levels[j]; j--) {
                        double t = a->info.levels[j];
                        a->info.levels[j] = a->info.levels[j - 1];
                        a->info.levels[j - 1] = t;
                    }
                a->info.n_levels = n;
                a->info.min = a->info.levels[0];
                a->info.max = a->info.levels[n - 1];
                a->info.initial = gr * 1e6;
                a->info.writable = 1;
            }
        }
        unsigned lo = 0, hi = 0, cur = 0;
        if (nv->pl_get && nv->pl_set && nv->pl_range &&
            nv->pl_range(nv->dev[g], &lo, &hi) == NVML_SUCCESS &&
            nv->pl_get(nv->dev[g], &cur) == NVML_SUCCESS && hi >= lo && hi > 0) {
            sense_actuator *a = sense_act_add(s);
            if (!a) return s->n_acts >= SENSE_MAX_ACTUATORS ? QEIL_OK : QEIL_ERR_NOMEM;
            a->info.kind = QEIL_ACT_NVML_POWER;
            a->info.id = sense_str(s, "nvml:gpu%u:power-limit", g);
            a->info.device = sense_str(s, "gpu%u", g);
            a->info.path = sense_str(s, "nvml:%u", g);
            if (!a->info.id || !a->info.device || !a->info.path) return QEIL_ERR_NOMEM;
            a->info.unit = "W";
            a->gpu = (int)g;
            a->info.min = lo * 1e-3;
            a->info.max = hi * 1e-3;
            a->info.initial = cur * 1e-3;
            a->info.writable = 1;
        }
    }
    return QEIL_OK;
}

int sense_nvml_act_set(const qeil_sense *s, const sense_actuator *a, double value, char *err,
                       size_t n_err)
{
    const sense_nvml *nv = s->nvml;
    if (!nv || a->gpu < 0 || (unsigned)a->gpu >= nv->n) {
        snprintf(err, n_err, "NVML is not loaded");
        return NVML_ERROR_FUNCTION_NOT_FOUND;
    }
    nvml_dev d = nv->dev[a->gpu];
    nvml_ret r;
    const char *call;
    if (a->info.kind == QEIL_ACT_NVML_CLOCKS) {
        call = "nvmlDeviceSetApplicationsClocks";
        r = nv->set_app_clocks(d, (unsigned)a->scale, (unsigned)llround(value * 1e-6));
    } else {
        call = "nvmlDeviceSetPowerManagementLimit";
        r = nv->pl_set(d, (unsigned)llround(value * 1e3));
    }
    if (r != NVML_SUCCESS) {
        char b[160];
        snprintf(err, n_err, "%s on gpu%d: %s", call, a->gpu, nvml_errstr(nv, r, b, sizeof b));
    }
    return r;
}

int sense_nvml_act_get(const qeil_sense *s, const sense_actuator *a, double *value, char *err,
                       size_t n_err)
{
    const sense_nvml *nv = s->nvml;
    if (!nv || a->gpu < 0 || (unsigned)a->gpu >= nv->n) {
        snprintf(err, n_err, "NVML is not loaded");
        return NVML_ERROR_FUNCTION_NOT_FOUND;
    }
    unsigned x = 0;
    nvml_ret r = a->info.kind == QEIL_ACT_NVML_CLOCKS
                     ? nv->app_clock(nv->dev[a->gpu], NVML_CLOCK_GRAPHICS, &x)
                     : nv->pl_get(nv->dev[a->gpu], &x);
    if (r != NVML_SUCCESS) {
        char b[160];
        snprintf(err, n_err, "gpu%d: %s", a->gpu, nvml_errstr(nv, r, b, sizeof b));
        return r;
    }
    *value = a->info.kind == QEIL_ACT_NVML_CLOCKS ? x * 1e6 : x * 1e-3;
    return 0;
}
