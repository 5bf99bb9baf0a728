/* sense.c — the sensor list: discovery (delegated to sysfs.c and nvml.c),
 * samples, and the energy meter with counter wrap-around (docs/sense.md). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "sense/sense_internal.h"
#include "core/util.h"

/* ------------------------------------------------------------------------ */
/* Names                                                                     */
/* ------------------------------------------------------------------------ */

const char *qeil_sense_source_name(qeil_sense_source src)
{
    static const char *const names[] = {"rapl", "hwmon", "thermal", "cpufreq", "nvml"};
    return (unsigned)src < sizeof names / sizeof *names ? names[src] : "?";
}

const char *qeil_sense_quantity_name(qeil_sense_quantity q)
{
    static const char *const names[] = {"energy",          "power",            "temperature",
                                        "frequency",       "throttle-count",   "throttle-reasons",
                                        "alarm",           "voltage",          "current"};
    return (unsigned)q < sizeof names / sizeof *names ? names[q] : "?";
}

const char *qeil_sense_unit(qeil_sense_quantity q)
{
    static const char *const units[] = {"J", "W", "C", "Hz", "count", "mask", "bool", "V", "A"};
    return (unsigned)q < sizeof units / sizeof *units ? units[q] : "?";
}

/* ------------------------------------------------------------------------ */
/* Owned strings and the sensor array                                        */
/* ------------------------------------------------------------------------ */

const char *sense_str(qeil_sense *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return NULL;
    if (s->n_strs == s->cap_strs) {
        size_t cap = s->cap_strs ? 2 * s->cap_strs : 64;
        char **v = qeil_realloc(s->ctx, s->strs, cap * sizeof *v);
        if (!v) return NULL;
        s->strs = v;
        s->cap_strs = cap;
    }
    char *p = qeil_malloc(s->ctx, (size_t)n + 1);
    if (!p) return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    s->strs[s->n_strs++] = p;
    return p;
}

sense_sensor *sense_add(qeil_sense *s)
{
    if (s->n >= SENSE_MAX_SENSORS) return NULL;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 32;
        sense_sensor *v = qeil_realloc(s->ctx, s->v, cap * sizeof *v);
        if (!v) return NULL;
        s->v = v;
        s->cap = cap;
    }
    sense_sensor *e = &s->v[s->n++];
    memset(e, 0, sizeof *e);
    e->info.id = e->info.name = e->info.device = e->info.path = e->info.note = "";
    e->info.readable = 1;
    e->info.crit_C = e->info.throttle_C = NAN;
    e->info.min_Hz = e->info.max_Hz = e->info.cap_Hz = NAN;
    e->scale = 1.0;
    return e;
}

/* Two sensors with one id (two nvme drives, two ina3221 chips) get "#2",
 * "#3", ... in discovery order, which is sorted, hence stable. */
static qeil_status make_ids_unique(qeil_sense *s)
{
    for (size_t i = 1; i < s->n; i++) {
        int k = 1;
        for (size_t j = 0; j < i; j++)
            if (strcmp(s->v[j].info.id, s->v[i].info.id) == 0) k++;
        if (k == 1) continue;
        const char *id = sense_str(s, "%s#%d", s->v[i].info.id, k);
        if (!id) return QEIL_ERR_NOMEM;
        s->v[i].info.id = id;
    }
    return QEIL_OK;
}

/* ------------------------------------------------------------------------ */
/* Create / free / queries                                                   */
/* ------------------------------------------------------------------------ */

qeil_sense_params qeil_sense_default_params(void)
{
    qeil_sense_params p;
    memset(&p, 0, sizeof p);
    p.root = "/";
    p.nvml = 1;
    return p;
}

void qeil_sense_free(qeil_sense *s)
{
    if (!s) return;
    sense_nvml_close(s);
    for (size_t i = 0; i < s->n_strs; i++) qeil_free(s->ctx, s->strs[i]);
    qeil_free(s->ctx, s->strs);
    qeil_free(s->ctx, s->v);
    qeil_free(s->ctx, s->acts);
    qeil_free(s->ctx, s->root);
    qeil_free(s->ctx, s);
}

qeil_status qeil_sense_create(qeil_ctx *ctx, const qeil_sense_params *params, qeil_sense **out)
{
    if (!out) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "qeil_sense_create: out is NULL");
    *out = NULL;
    qeil_sense_params p = params ? *params : qeil_sense_default_params();
    const char *root = p.root && p.root[0] ? p.root : "/";
    struct stat st;
    if (stat(root, &st) != 0)
        return qeil_ctx_fail(ctx, QEIL_ERR_NOTFOUND, "sensor root '%s': %s", root, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return qeil_ctx_fail(ctx, QEIL_ERR_NOTFOUND, "sensor root '%s': not a directory", root);
    qeil_sense *s = qeil_calloc(ctx, 1, sizeof *s);
    if (!s) return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "sensors: out of memory");
    s->ctx = ctx;
    size_t len = strlen(root);
    while (len > 0 && root[len - 1] == '/') len--; /* "/" becomes "" */
    s->root = qeil_malloc(ctx, len + 1);
    if (!s->root) {
        qeil_sense_free(s);
        return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "sensors: out of memory");
    }
    memcpy(s->root, root, len);
    s->root[len] = '\0';

    qeil_status st_ = QEIL_OK;
    if (st_ == QEIL_OK) st_ = sense_discover_rapl(s);
    if (st_ == QEIL_OK) st_ = sense_discover_hwmon(s);
    if (st_ == QEIL_OK) st_ = sense_discover_thermal(s);
    if (st_ == QEIL_OK) st_ = sense_discover_cpufreq(s);
    if (st_ == QEIL_OK) {
        if (p.nvml) {
            const char *lib = p.nvml_lib;
            if (!lib || !lib[0]) lib = getenv("QEIL_NVML_LIB");
            if (!lib || !lib[0]) lib = "libnvidia-ml.so.1";
            st_ = sense_nvml_open(s, lib);
        } else {
            snprintf(s->nvml_msg, sizeof s->nvml_msg, "not loaded (disabled by the caller)");
        }
    }
    if (st_ == QEIL_OK) st_ = sense_discover_actuators(s);
    if (st_ == QEIL_OK && s->nvml) st_ = sense_nvml_actuators(s);
    if (st_ == QEIL_OK) st_ = make_ids_unique(s);
    if (st_ != QEIL_OK) {
        qeil_sense_free(s);
        return qeil_ctx_fail(ctx, st_, "sensors: %s during discovery", qeil_status_str(st_));
    }
    *out = s;
    return QEIL_OK;
}

size_t qeil_sense_count(const qeil_sense *s) { return s ? s->n : 0; }

const qeil_sensor_info *qeil_sense_info(const qeil_sense *s, size_t i)
{
    return s && i < s->n ? &s->v[i].info : NULL;
}

long qeil_sense_find(const qeil_sense *s, const char *id)
{
    if (!s || !id) return -1;
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i].info.id, id) == 0) return (long)i;
    return -1;
}

int qeil_sense_nvml_available(const qeil_sense *s, const char **msg)
{
    if (msg) *msg = s ? s->nvml_msg : "";
    return s && s->nvml != NULL;
}

/* ------------------------------------------------------------------------ */
/* Samples                                                                   */
/* ------------------------------------------------------------------------ */

struct qeil_sense_sample {
    qeil_ctx *ctx;
    size_t n;
    double t_s;
    qeil_sense_reading *r;
    char (*err)[SENSE_ERR_MAX];
};

qeil_sense_sample *qeil_sense_sample_create(qeil_ctx *ctx, const qeil_sense *s)
{
    if (!s) return NULL;
    qeil_sense_sample *a = qeil_calloc(ctx, 1, sizeof *a);
    if (!a) return NULL;
    a->ctx = ctx;
    a->n = s->n;
    a->t_s = NAN;
    a->r = qeil_calloc(ctx, s->n, sizeof *a->r);
    a->err = qeil_calloc(ctx, s->n, sizeof *a->err);
    if (!a->r || !a->err) {
        qeil_sense_sample_free(a);
        return NULL;
    }
    for (size_t i = 0; i < a->n; i++) {
        a->r[i].status = QEIL_ERR_INVALID; /* not read yet */
        a->r[i].value = NAN;
        a->r[i].error = "not read yet";
    }
    return a;
}

void qeil_sense_sample_free(qeil_sense_sample *a)
{
    if (!a) return;
    qeil_free(a->ctx, a->r);
    qeil_free(a->ctx, a->err);
    qeil_free(a->ctx, a);
}

const qeil_sense_reading *qeil_sense_sample_get(const qeil_sense_sample *a, size_t i)
{
    return a && i < a->n ? &a->r[i] : NULL;
}

double qeil_sense_sample_time_s(const qeil_sense_sample *a) { return a ? a->t_s : NAN; }

static void read_one(const qeil_sense *s, const sense_sensor *e, qeil_sense_reading *r,
                     char *err)
{
    int64_t v = 0, v2 = 0;
    uint64_t u = 0, u2 = 0;
    int rc;
    err[0] = '\0';
    r->value = NAN;
    r->raw = 0;
    switch (e->kind) {
    case READ_FILE:
        rc = sense_read_int(e->info.path, &v, &u);
        if (rc) {
            r->status = rc == EINVAL ? QEIL_ERR_FORMAT : QEIL_ERR_IO;
            snprintf(err, SENSE_ERR_MAX, "%s: %s", e->info.path,
                     rc == EINVAL ? "not a decimal integer attribute" : strerror(rc));
            return;
        }
        if (e->counter) {
            if (v < 0) {
                r->status = QEIL_ERR_FORMAT;
                snprintf(err, SENSE_ERR_MAX, "%s: negative counter", e->info.path);
                return;
            }
            r->raw = u;
            r->value = (double)u * e->scale;
        } else {
            r->value = (double)v * e->scale;
        }
        break;
    case READ_VI:
        rc = sense_read_int(e->info.path, &v, &u);
        const char *bad = e->info.path;
        if (!rc) {
            rc = sense_read_int(e->path2, &v2, &u2);
            bad = e->path2;
        }
        if (rc) {
            r->status = rc == EINVAL ? QEIL_ERR_FORMAT : QEIL_ERR_IO;
            snprintf(err, SENSE_ERR_MAX, "%s: %s", bad,
                     rc == EINVAL ? "not a decimal integer attribute" : strerror(rc));
            return;
        }
        r->value = ((double)v * 1e-3) * ((double)v2 * 1e-3); /* mV × mA → W */
        break;
    case READ_NVML:
        rc = sense_nvml_read(s, e->gpu, e->query, &u, err, SENSE_ERR_MAX);
        if (rc) {
            r->status = QEIL_ERR_IO;
            return;
        }
        r->raw = e->counter ? u : 0;
        r->value = (double)u * e->scale;
        break;
    }
    r->status = QEIL_OK;
}

size_t qeil_sense_read(const qeil_sense *s, qeil_sense_sample *a)
{
    if (!s || !a) return 0;
    size_t n = a->n < s->n ? a->n : s->n, failed = 0;
    a->t_s = qeil_clock_s();
    for (size_t i = 0; i < n; i++) {
        read_one(s, &s->v[i], &a->r[i], a->err[i]);
        a->r[i].error = a->err[i];
        if (a->r[i].status != QEIL_OK) failed++;
    }
    return failed;
}

/* ------------------------------------------------------------------------ */
/* Energy meter                                                              */
/* ------------------------------------------------------------------------ */

int qeil_sense_counter_delta(uint64_t c0, uint64_t c1, uint64_t range, uint64_t *delta)
{
    if (range && (c0 > range || c1 > range)) return 0;
    if (c1 >= c0) {
        *delta = c1 - c0;
        return 1;
    }
    if (!range) return 0;
    /* The counter ran up to `range` and restarted from 0 (powercap's
     * max_energy_range_uj is the largest value energy_uj shows). One wrap
     * only: two are indistinguishable from one, so intervals must stay
     * below range / peak power (docs/sense.md). */
    *delta = (range - c0) + c1;
    return 1;
}

qeil_status qeil_sense_meter(qeil_ctx *ctx, const qeil_sense *s, const qeil_sense_sample *a,
                             const qeil_sense_sample *b, size_t i, qeil_sense_energy *out)
{
    if (!s || !a || !b || !out)
        return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "qeil_sense_meter: NULL argument");
    if (i >= s->n || i >= a->n || i >= b->n)
        return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "qeil_sense_meter: sensor %zu of %zu", i,
                             s->n);
    const sense_sensor *e = &s->v[i];
    const qeil_sense_reading *ra = &a->r[i], *rb = &b->r[i];
    if (e->info.quantity != QEIL_SENSE_ENERGY && e->info.quantity != QEIL_SENSE_POWER)
        return qeil_ctx_fail(ctx, QEIL_ERR_UNSUPPORTED, "%s: measures %s, not energy or power",
                             e->info.id, qeil_sense_quantity_name(e->info.quantity));
    if (ra->status != QEIL_OK)
        return qeil_ctx_fail(ctx, ra->status, "%s: first sample: %s", e->info.id, ra->error);
    if (rb->status != QEIL_OK)
        return qeil_ctx_fail(ctx, rb->status, "%s: second sample: %s", e->info.id, rb->error);
    double dt = b->t_s - a->t_s;
    if (!(dt > 0))
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                             "%s: the second sample is not later than the first (%.9g s)",
                             e->info.id, dt);
    qeil_sense_energy r;
    memset(&r, 0, sizeof r);
    r.provenance = e->info.id;
    r.t_s = dt;
    if (e->info.quantity == QEIL_SENSE_ENERGY) {
        uint64_t d;
        if (!qeil_sense_counter_delta(ra->raw, rb->raw, e->range_raw, &d)) {
            if (e->range_raw)
                return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                                     "%s: counter %llu or %llu exceeds its range %llu",
                                     e->info.id, (unsigned long long)ra->raw,
                                     (unsigned long long)rb->raw,
                                     (unsigned long long)e->range_raw);
            return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                                 "%s: counter went backwards (%llu then %llu) and has no "
                                 "documented wrap range: it was reset (driver reload?)",
                                 e->info.id, (unsigned long long)ra->raw,
                                 (unsigned long long)rb->raw);
        }
        r.method = QEIL_SENSE_METER_COUNTER;
        r.wrapped = rb->raw < ra->raw;
        r.energy_J = (double)d * e->scale;
    } else {
        r.method = QEIL_SENSE_METER_POWER_MEAN;
        double pa = ra->value, pb = rb->value;
        if (!(pa >= 0) || !(pb >= 0) || !isfinite(pa) || !isfinite(pb))
            return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "%s: power %g W then %g W", e->info.id,
                                 pa, pb);
        r.energy_J = 0.5 * (pa + pb) * dt;
    }
    r.power_W = r.energy_J / dt;
    *out = r;
    return QEIL_OK;
}
