/* actuate.c — actuators under the sensors' root directory: cpufreq's
 * scaling_max_freq (and scaling_setspeed under the userspace governor),
 * devfreq's max_freq (the GPU clock cap Jetson's nvpmodel power modes
 * set), and, through nvml.c, NVML application clocks and power limit; plus
 * the throttle ground truth read from the sensors' samples. Layouts:
 * Documentation/admin-guide/pm/cpufreq.rst, Documentation/ABI/testing/
 * sysfs-class-devfreq; docs/sense.md "Actuators". */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sense/sense_internal.h"

const char *qeil_actuator_kind_name(qeil_actuator_kind k)
{
    switch (k) {
    case QEIL_ACT_CPUFREQ_MAX: return "cpufreq-max";
    case QEIL_ACT_CPUFREQ_SPEED: return "cpufreq-speed";
    case QEIL_ACT_DEVFREQ_MAX: return "devfreq-max";
    case QEIL_ACT_NVML_CLOCKS: return "nvml-clocks";
    case QEIL_ACT_NVML_POWER: return "nvml-power-limit";
    }
    return "?";
}

sense_actuator *sense_act_add(qeil_sense *s)
{
    if (s->n_acts >= SENSE_MAX_ACTUATORS) return NULL;
    if (s->n_acts == s->cap_acts) {
        size_t cap = s->cap_acts ? 2 * s->cap_acts : 16;
        sense_actuator *v = qeil_realloc(s->ctx, s->acts, cap * sizeof *v);
        if (!v) return NULL;
        s->acts = v;
        s->cap_acts = cap;
    }
    sense_actuator *a = &s->acts[s->n_acts++];
    memset(a, 0, sizeof *a);
    a->info.min = a->info.max = a->info.initial = NAN;
    a->info.note = "";
    a->scale = 1;
    return a;
}

/* ------------------------------------------------------------------------ */
/* Small file helpers                                                        */
/* ------------------------------------------------------------------------ */

static int path_fmt(char *buf, const char *fmt, ...) QEIL_PRINTF(2, 3);
static int path_fmt(char *buf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, SENSE_PATH_MAX, fmt, ap);
    va_end(ap);
    return n > 0 && n < SENSE_PATH_MAX;
}

/* A text attribute, newline cut; 0 or an errno value. */
static int read_line(const char *path, char *buf, size_t n)
{
    FILE *f = fopen(path, "re");
    if (!f) return errno;
    size_t got = fread(buf, 1, n - 1, f);
    int e = ferror(f) ? EIO : 0;
    fclose(f);
    buf[got] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    return e;
}

/* One integer attribute × scale, NAN when absent or junk. */
static double read_num(const char *path, double scale)
{
    int64_t v;
    uint64_t u;
    return sense_read_int(path, &v, &u) == 0 && v >= 0 ? (double)v * scale : NAN;
}

static int cmp_dbl(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

/* A space-separated list of integers × scale into the levels, sorted and
 * deduplicated; junk ends the list. */
static void read_levels(const char *path, double scale, qeil_actuator_info *info)
{
    char buf[2048];
    info->n_levels = 0;
    if (read_line(path, buf, sizeof buf)) return;
    const char *p = buf;
    while (*p && info->n_levels < QEIL_ACT_MAX_LEVELS) {
        while (*p == ' ' || *p == '\t') p++;
        if (!isdigit((unsigned char)*p)) break;
        char *end;
        unsigned long long x = strtoull(p, &end, 10);
        info->levels[info->n_levels++] = (double)x * scale;
        p = end;
    }
    qsort(info->levels, info->n_levels, sizeof info->levels[0], cmp_dbl);
    size_t w = 0;
    for (size_t i = 0; i < info->n_levels; i++)
        if (w == 0 || info->levels[i] != info->levels[w - 1]) info->levels[w++] = info->levels[i];
    info->n_levels = w;
}

static void writable_note(qeil_sense *s, sense_actuator *a)
{
    if (access(a->info.path, W_OK) == 0) {
        a->info.writable = 1;
        return;
    }
    int e = errno;
    a->info.writable = 0;
    const char *n = sense_str(s, "cannot write %s: %s%s", a->info.path, strerror(e),
                              e == EACCES || e == EPERM || e == EROFS
                                  ? "; run as root (or grant write access with a udev rule, "
                                    "docs/sense.md); the guard falls back to moving work"
                                  : "");
    a->info.note = n ? n : "";
}

/* ------------------------------------------------------------------------ */
/* Discovery                                                                 */
/* ------------------------------------------------------------------------ */

static int is_cpu_dir(const char *name, long *num)
{
    if (strncmp(name, "cpu", 3) != 0 || !isdigit((unsigned char)name[3])) return 0;
    char *end;
    long v = strtol(name + 3, &end, 10);
    if (*end) return 0;
    *num = v;
    return 1;
}

static int cmp_long(const void *x, const void *y)
{
    long a = *(const long *)x, b = *(const long *)y;
    return a < b ? -1 : a > b;
}

/* The cpufreq knobs of cpuN (its policy's first CPU only: every CPU of a
 * policy links to the same policy directory on a live system). */
static qeil_status cpufreq_knobs(qeil_sense *s, const char *dir, long cpu)
{
    char base[SENSE_PATH_MAX], path[SENSE_PATH_MAX], buf[256];
    if (!path_fmt(base, "%s/cpu%ld/cpufreq", dir, cpu)) return QEIL_OK;
    if (!path_fmt(path, "%s/scaling_max_freq", base) || access(path, F_OK) != 0) return QEIL_OK;
    if (path_fmt(path, "%s/related_cpus", base) && read_line(path, buf, sizeof buf) == 0) {
        char *end;
        long first = strtol(buf, &end, 10);
        if (end != buf && first != cpu) return QEIL_OK;
    }
    double lo = NAN, hi = NAN;
    if (path_fmt(path, "%s/cpuinfo_min_freq", base)) lo = read_num(path, 1e3);
    if (path_fmt(path, "%s/cpuinfo_max_freq", base)) hi = read_num(path, 1e3);
    char gov[64] = "";
    if (path_fmt(path, "%s/scaling_governor", base)) read_line(path, gov, sizeof gov);
    for (int k = 0; k < 2; k++) {
        const char *file = k == 0 ? "scaling_max_freq" : "scaling_setspeed";
        if (k == 1 && strcmp(gov, "userspace") != 0) break; /* setspeed only applies there */
        if (!path_fmt(path, "%s/%s", base, file) || access(path, F_OK) != 0) continue;
        sense_actuator *a = sense_act_add(s);
        if (!a) return s->n_acts >= SENSE_MAX_ACTUATORS ? QEIL_OK : QEIL_ERR_NOMEM;
        a->info.kind = k == 0 ? QEIL_ACT_CPUFREQ_MAX : QEIL_ACT_CPUFREQ_SPEED;
        a->info.id = sense_str(s, "cpufreq:cpu%ld%s", cpu, k ? ":setspeed" : "");
        a->info.device = sense_str(s, "cpu%ld", cpu);
        a->info.path = sense_str(s, "%s", path);
        a->info.unit = "Hz";
        if (!a->info.id || !a->info.device || !a->info.path) return QEIL_ERR_NOMEM;
        a->scale = 1e-3; /* the files hold kHz */
        a->info.min = lo;
        a->info.max = hi;
        char lv[SENSE_PATH_MAX];
        if (path_fmt(lv, "%s/scaling_available_frequencies", base)) read_levels(lv, 1e3, &a->info);
        if (a->info.n_levels && isnan(a->info.min)) a->info.min = a->info.levels[0];
        if (a->info.n_levels && isnan(a->info.max))
            a->info.max = a->info.levels[a->info.n_levels - 1];
        a->info.initial = read_num(path, 1e3);
        writable_note(s, a);
    }
    return QEIL_OK;
}

static qeil_status discover_cpufreq(qeil_sense *s)
{
    char dir[SENSE_PATH_MAX];
    if (!path_fmt(dir, "%s/sys/devices/system/cpu", s->root)) return QEIL_OK;
    DIR *d = opendir(dir);
    if (!d) return QEIL_OK;
    long cpus[SENSE_MAX_DIR_ENTRIES];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < SENSE_MAX_DIR_ENTRIES) {
        long c;
        if (is_cpu_dir(e->d_name, &c)) cpus[n++] = c;
    }
    closedir(d);
    qsort(cpus, n, sizeof cpus[0], cmp_long);
    qeil_status st = QEIL_OK;
    for (size_t i = 0; i < n && st == QEIL_OK; i++) st = cpufreq_knobs(s, dir, cpus[i]);
    return st;
}

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

static qeil_status discover_devfreq(qeil_sense *s)
{
    char dir[SENSE_PATH_MAX], path[SENSE_PATH_MAX];
    if (!path_fmt(dir, "%s/sys/class/devfreq", s->root)) return QEIL_OK;
    DIR *d = opendir(dir);
    if (!d) return QEIL_OK;
    char names[64][128];
    char *order[64];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 64) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || len >= sizeof names[0]) continue;
        memcpy(names[n], e->d_name, len + 1);
        order[n] = names[n];
        n++;
    }
    closedir(d);
    qsort(order, n, sizeof order[0], cmp_str);
    for (size_t i = 0; i < n; i++) {
        const char *nm = order[i];
        if (!path_fmt(path, "%s/%s/max_freq", dir, nm) || access(path, F_OK) != 0) continue;
        sense_actuator *a = sense_act_add(s);
        if (!a) return s->n_acts >= SENSE_MAX_ACTUATORS ? QEIL_OK : QEIL_ERR_NOMEM;
        a->info.kind = QEIL_ACT_DEVFREQ_MAX;
        a->info.id = sense_str(s, "devfreq:%s", nm);
        a->info.device = strstr(nm, "gpu") || strstr(nm, "ga10b") || strstr(nm, "gv11b") ||
                                 strstr(nm, "gp10b")
                             ? "gpu"
                             : sense_str(s, "%s", nm);
        a->info.path = sense_str(s, "%s", path);
        a->info.unit = "Hz";
        if (!a->info.id || !a->info.device || !a->info.path) return QEIL_ERR_NOMEM;
        a->scale = 1; /* devfreq files hold Hz */
        a->info.initial = read_num(path, 1);
        char lv[SENSE_PATH_MAX];
        if (path_fmt(lv, "%s/%s/available_frequencies", dir, nm)) read_levels(lv, 1, &a->info);
        if (a->info.n_levels) {
            a->info.min = a->info.levels[0];
            a->info.max = a->info.levels[a->info.n_levels - 1];
        } else {
            /* no list: from the floor up to the cap found (the hardware's
             * top is not published) */
            if (path_fmt(lv, "%s/%s/min_freq", dir, nm)) a->info.min = read_num(lv, 1);
            a->info.max = a->info.initial;
        }
        writable_note(s, a);
    }
    return QEIL_OK;
}

qeil_status sense_discover_actuators(qeil_sense *s)
{
    qeil_status st = discover_cpufreq(s);
    if (st == QEIL_OK) st = discover_devfreq(s);
    return st;
}

/* ------------------------------------------------------------------------ */
/* The public API                                                            */
/* ------------------------------------------------------------------------ */

size_t qeil_sense_actuator_count(const qeil_sense *s) { return s ? s->n_acts : 0; }

const qeil_actuator_info *qeil_sense_actuator_info(const qeil_sense *s, size_t i)
{
    return s && i < s->n_acts ? &s->acts[i].info : NULL;
}

long qeil_sense_actuator_find(const qeil_sense *s, const char *id)
{
    if (!s || !id) return -1;
    for (size_t i = 0; i < s->n_acts; i++)
        if (strcmp(s->acts[i].info.id, id) == 0) return (long)i;
    return -1;
}

/* The allowed values as text, for messages: "a..b U" or "{a, b, c} U". */
static void allowed_text(const qeil_actuator_info *in, char *buf, size_t n)
{
    if (!in->n_levels) {
        snprintf(buf, n, "%.10g..%.10g %s", in->min, in->max, in->unit);
        return;
    }
    size_t len = (size_t)snprintf(buf, n, "one of {");
    for (size_t k = 0; k < in->n_levels && len < n; k++)
        len += (size_t)snprintf(buf + len, n - len, "%s%.10g", k ? ", " : "", in->levels[k]);
    if (len < n) snprintf(buf + len, n - len, "} %s", in->unit);
}

static int level_ok(const qeil_actuator_info *in, double v)
{
    if (!(v >= in->min && v <= in->max)) return 0;
    if (!in->n_levels) return 1;
    for (size_t k = 0; k < in->n_levels; k++)
        if (fabs(in->levels[k] - v) <= 1e-9 * in->levels[k] + 0.5) return 1;
    return 0;
}

qeil_status qeil_sense_actuate(qeil_ctx *ctx, const qeil_sense *s, size_t i, double value)
{
    if (!s || i >= s->n_acts)
        return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "actuator %zu: no such actuator", i);
    const sense_actuator *a = &s->acts[i];
    const qeil_actuator_info *in = &a->info;
    if (!isfinite(in->min) || !isfinite(in->max))
        return qeil_ctx_fail(ctx, QEIL_ERR_UNSUPPORTED,
                             "%s: its allowed range is unknown (no cpuinfo_min/max_freq or "
                             "available frequencies under %s): nothing written",
                             in->id, in->path);
    if (!level_ok(in, value)) {
        char allowed[1024];
        allowed_text(in, allowed, sizeof allowed);
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "%s (%s): %.10g %s is out of range (allowed %s)",
                             in->id, in->path, value, in->unit, allowed);
    }
    char err[SENSE_ERR_MAX];
    if (in->kind == QEIL_ACT_NVML_CLOCKS || in->kind == QEIL_ACT_NVML_POWER) {
        int r = sense_nvml_act_set(s, a, value, err, sizeof err);
        if (r == 0) return QEIL_OK;
        return qeil_ctx_fail(ctx, QEIL_ERR_IO, "%s: %s%s", in->id, err,
                             r == SENSE_NVML_NO_PERMISSION
                                 ? "; run as root (NVML clock and power settings need it); "
                                   "the guard falls back to moving work"
                                 : "");
    }
    unsigned long long raw = (unsigned long long)llround(value * a->scale);
    int fd = open(in->path, O_WRONLY | O_TRUNC | O_CLOEXEC);
    int e = 0;
    if (fd < 0) {
        e = errno;
    } else {
        char buf[32];
        int len = snprintf(buf, sizeof buf, "%llu\n", raw);
        ssize_t w = write(fd, buf, (size_t)len);
        if (w != len) e = w < 0 ? errno : EIO;
        if (close(fd) != 0 && !e) e = errno;
    }
    if (!e) return QEIL_OK;
    int perm = e == EACCES || e == EPERM || e == EROFS;
    return qeil_ctx_fail(ctx, QEIL_ERR_IO, "cannot write %s: %s%s", in->path, strerror(e),
                         perm ? "; run as root (or grant write access with a udev rule, "
                                "docs/sense.md); the guard falls back to moving work"
                              : "");
}

qeil_status qeil_sense_actuator_get(qeil_ctx *ctx, const qeil_sense *s, size_t i, double *value)
{
    if (!s || i >= s->n_acts || !value)
        return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "actuator %zu: no such actuator", i);
    const sense_actuator *a = &s->acts[i];
    char err[SENSE_ERR_MAX];
    if (a->info.kind == QEIL_ACT_NVML_CLOCKS || a->info.kind == QEIL_ACT_NVML_POWER) {
        if (sense_nvml_act_get(s, a, value, err, sizeof err) == 0) return QEIL_OK;
        return qeil_ctx_fail(ctx, QEIL_ERR_IO, "%s: %s", a->info.id, err);
    }
    int64_t v;
    uint64_t u;
    int rc = sense_read_int(a->info.path, &v, &u);
    if (rc || v < 0)
        return qeil_ctx_fail(ctx, QEIL_ERR_IO, "cannot read %s: %s", a->info.path,
                             rc ? strerror(rc) : "negative");
    *value = (double)v / a->scale;
    return QEIL_OK;
}

double qeil_sense_actuator_floor(const qeil_sense *s, size_t i, double want)
{
    if (!s || i >= s->n_acts || isnan(want)) return NAN;
    const qeil_actuator_info *in = &s->acts[i].info;
    if (!in->n_levels) {
        double v = want;
        if (v > in->max) v = in->max;
        if (v < in->min) v = in->min;
        return v;
    }
    double best = in->levels[0];
    for (size_t k = 0; k < in->n_levels; k++)
        if (in->levels[k] <= want) best = in->levels[k];
    return best;
}

/* ------------------------------------------------------------------------ */
/* Throttle ground truth                                                     */
/* ------------------------------------------------------------------------ */

void qeil_sense_throttle_between(const qeil_sense *s, const qeil_sense_sample *a,
                                 const qeil_sense_sample *b, qeil_sense_throttle *out)
{
    if (!out) return;
    memset(out, 0, sizeof *out);
    if (!s || !a || !b) return;
    for (size_t i = 0; i < s->n; i++) {
        const qeil_sensor_info *in = &s->v[i].info;
        if (in->quantity != QEIL_SENSE_THROTTLE_COUNT && in->quantity != QEIL_SENSE_THROTTLE_REASONS &&
            in->quantity != QEIL_SENSE_ALARM)
            continue;
        const qeil_sense_reading *ra = qeil_sense_sample_get(a, i), *rb = qeil_sense_sample_get(b, i);
        if (!ra || !rb || ra->status != QEIL_OK || rb->status != QEIL_OK) continue;
        out->available = 1;
        out->sources++;
        if (in->quantity == QEIL_SENSE_THROTTLE_COUNT) {
            if (rb->raw > ra->raw) out->counter_events += rb->raw - ra->raw;
        } else if (in->quantity == QEIL_SENSE_THROTTLE_REASONS) {
            uint64_t ma = (uint64_t)ra->value & QEIL_NVML_REASONS_THROTTLE;
            uint64_t mb = (uint64_t)rb->value & QEIL_NVML_REASONS_THROTTLE;
            if (mb && !ma) out->reason_events++;
        } else {
            if (rb->value >= 0.5 && !(ra->value >= 0.5)) out->alarm_events++;
        }
    }
    out->events = out->counter_events + out->reason_events + out->alarm_events;
}
