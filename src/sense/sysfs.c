/* sysfs.c — discovery of the kernel's sensor files under a root directory:
 * powercap RAPL zones, hwmon chips, thermal zones, cpufreq and the x86
 * thermal throttle counters. Layouts and units: docs/sense.md, from the
 * kernel's Documentation/ABI/testing/sysfs-class-powercap,
 * Documentation/hwmon/sysfs-interface.rst, sysfs-class-thermal and
 * Documentation/admin-guide/pm/cpufreq.rst.
 *
 * On a live system the /sys/class entries are symbolic links into
 * /sys/devices; nothing here looks at d_type or lstat, so links and the
 * plain directories of the test fixtures read the same. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sense/sense_internal.h"

/* ------------------------------------------------------------------------ */
/* Reading files                                                             */
/* ------------------------------------------------------------------------ */

/* Up to n-1 bytes of a file, NUL-terminated. sysfs attributes are one
 * page at most and ours a few bytes; the file is opened afresh each time
 * because sysfs generates the text at open/read. 0 or an errno value. */
static int read_small(const char *path, char *buf, size_t n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return errno;
    struct stat st;
    int e = 0;
    if (fstat(fd, &st) != 0) e = errno;
    else if (S_ISDIR(st.st_mode)) e = EISDIR;
    else if (!S_ISREG(st.st_mode)) e = EINVAL; /* a FIFO or device node is no attribute */
    if (e) {
        close(fd);
        return e;
    }
    size_t got = 0;
    while (got + 1 < n) {
        ssize_t r = read(fd, buf + got, n - 1 - got);
        if (r < 0) {
            if (errno == EINTR) continue;
            e = errno;
            close(fd);
            return e;
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    return 0;
}

int sense_read_int(const char *path, int64_t *v, uint64_t *u)
{
    char buf[64];
    int rc = read_small(path, buf, sizeof buf);
    if (rc) return rc;
    const char *p = buf;
    int neg = 0;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    if (!isdigit((unsigned char)*p)) return EINVAL;
    uint64_t x = 0;
    for (; isdigit((unsigned char)*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        if (x > (UINT64_MAX - d) / 10) return EINVAL; /* overflow */
        x = x * 10 + d;
    }
    while (*p == '\n' || *p == ' ' || *p == '\t' || *p == '\r') p++;
    if (*p) return EINVAL;
    if (neg && x > (uint64_t)INT64_MAX) return EINVAL;
    *u = neg ? 0 : x;
    *v = neg ? -(int64_t)x : (x > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)x);
    return 0;
}

/* A one-line text attribute (name, label, type) with the newline and
 * trailing blanks cut. 0 or an errno value. */
static int read_text(const char *path, char *buf, size_t n)
{
    int rc = read_small(path, buf, n);
    if (rc) return rc;
    size_t len = strcspn(buf, "\n");
    while (len > 0 && isspace((unsigned char)buf[len - 1])) len--;
    buf[len] = '\0';
    return len ? 0 : EINVAL;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

void sense_unreadable_note(char *buf, size_t n, const char *path, int err)
{
    size_t len = strlen(path);
    int rapl = len >= 9 && strcmp(path + len - 9, "energy_uj") == 0;
    if ((err == EACCES || err == EPERM) && rapl)
        snprintf(buf, n,
                 "cannot read %s: %s; energy_uj is readable by root only since Linux 5.10 "
                 "(CVE-2020-8694): run as root, or allow reading with 'sudo chmod a+r "
                 "/sys/class/powercap/intel-rapl:*/energy_uj' (until reboot) or a udev rule "
                 "(docs/sense.md); energy stays modeled until then",
                 path, strerror(err));
    else if (err == EACCES || err == EPERM)
        snprintf(buf, n,
                 "cannot read %s: %s; run as root, or allow reading with chmod or a udev rule "
                 "(docs/sense.md)",
                 path, strerror(err));
    else
        snprintf(buf, n, "cannot read %s: %s", path,
                 err == EINVAL ? "not a decimal integer attribute" : strerror(err));
}

/* ------------------------------------------------------------------------ */
/* Directory listings, in natural order (hwmon2 before hwmon10)              */
/* ------------------------------------------------------------------------ */

static int natural_cmp(const char *a, const char *b)
{
    while (*a && *b) {
        if (isdigit((unsigned char)*a) && isdigit((unsigned char)*b)) {
            while (*a == '0') a++;
            while (*b == '0') b++;
            size_t la = 0, lb = 0;
            while (isdigit((unsigned char)a[la])) la++;
            while (isdigit((unsigned char)b[lb])) lb++;
            if (la != lb) return la < lb ? -1 : 1;
            int c = strncmp(a, b, la);
            if (c) return c;
            a += la;
            b += lb;
            continue;
        }
        if (*a != *b) return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
        a++;
        b++;
    }
    return *a ? 1 : *b ? -1 : 0;
}

static int cmp_names(const void *x, const void *y)
{
    return natural_cmp(*(char *const *)x, *(char *const *)y);
}

typedef struct {
    char **v;
    size_t n;
} name_list;

static void list_free(qeil_sense *s, name_list *l)
{
    for (size_t i = 0; i < l->n; i++) qeil_free(s->ctx, l->v[i]);
    qeil_free(s->ctx, l->v);
    l->v = NULL;
    l->n = 0;
}

/* Entries of dir accepted by keep(), sorted. A missing directory is an
 * empty list (that subsystem is absent), not an error. */
static qeil_status list_dir(qeil_sense *s, const char *dir, int (*keep)(const char *),
                            name_list *out)
{
    out->v = NULL;
    out->n = 0;
    DIR *d = opendir(dir);
    if (!d) return QEIL_OK;
    size_t cap = 0;
    struct dirent *de;
    qeil_status st = QEIL_OK;
    while ((de = readdir(d)) != NULL && out->n < SENSE_MAX_DIR_ENTRIES) {
        if (!keep(de->d_name)) continue;
        if (out->n == cap) {
            size_t nc = cap ? 2 * cap : 16;
            char **v = qeil_realloc(s->ctx, out->v, nc * sizeof *v);
            if (!v) {
                st = QEIL_ERR_NOMEM;
                break;
            }
            out->v = v;
            cap = nc;
        }
        size_t len = strlen(de->d_name);
        char *copy = qeil_malloc(s->ctx, len + 1);
        if (!copy) {
            st = QEIL_ERR_NOMEM;
            break;
        }
        memcpy(copy, de->d_name, len + 1);
        out->v[out->n++] = copy;
    }
    closedir(d);
    if (st != QEIL_OK) {
        list_free(s, out);
        return st;
    }
    if (out->n > 1) qsort(out->v, out->n, sizeof *out->v, cmp_names);
    return QEIL_OK;
}

/* name == prefix followed by one or more digits, then `tail` ("" = end).
 * The number is stored in *num (may be NULL). */
static int match_num(const char *name, const char *prefix, const char *tail, long *num)
{
    size_t lp = strlen(prefix);
    if (strncmp(name, prefix, lp) != 0) return 0;
    const char *p = name + lp;
    if (!isdigit((unsigned char)*p)) return 0;
    long x = 0;
    for (; isdigit((unsigned char)*p); p++) {
        if (x > 100000000) return 0; /* no sysfs index is that large */
        x = x * 10 + (*p - '0');
    }
    if (strcmp(p, tail) != 0) return 0;
    if (num) *num = x;
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Adding a file sensor                                                      */
/* ------------------------------------------------------------------------ */

/* Add a sensor read from `path`; its first read decides `readable`. A file
 * that does not exist adds nothing (*out NULL, QEIL_OK). */
static qeil_status add_file(qeil_sense *s, const char *path, qeil_sense_source src,
                            qeil_sense_quantity q, double scale, int counter,
                            sense_sensor **out)
{
    *out = NULL;
    int64_t v;
    uint64_t u;
    int rc = sense_read_int(path, &v, &u);
    if (rc == ENOENT) return QEIL_OK;
    sense_sensor *e = sense_add(s);
    if (!e) return s->n >= SENSE_MAX_SENSORS ? QEIL_OK : QEIL_ERR_NOMEM;
    e->info.source = src;
    e->info.quantity = q;
    e->kind = READ_FILE;
    e->scale = scale;
    e->counter = counter;
    if (!(e->info.path = sense_str(s, "%s", path))) return QEIL_ERR_NOMEM;
    if (rc) {
        char note[SENSE_ERR_MAX * 2];
        sense_unreadable_note(note, sizeof note, path, rc);
        e->info.readable = 0;
        if (!(e->info.note = sense_str(s, "%s", note))) return QEIL_ERR_NOMEM;
    }
    *out = e;
    return QEIL_OK;
}

/* Set id, name and device, each from a format; QEIL_ERR_NOMEM on failure. */
static qeil_status label(qeil_sense *s, sense_sensor *e, const char *id, const char *name,
                         const char *device)
{
    if (!(e->info.id = sense_str(s, "%s", id))) return QEIL_ERR_NOMEM;
    if (!(e->info.name = sense_str(s, "%s", name))) return QEIL_ERR_NOMEM;
    if (!(e->info.device = sense_str(s, "%s", device))) return QEIL_ERR_NOMEM;
    return QEIL_OK;
}

static int path_fmt(char *buf, const char *fmt, ...) QEIL_PRINTF(2, 3);
static int path_fmt(char *buf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, SENSE_PATH_MAX, fmt, ap);
    va_end(ap);
    return n > 0 && n < SENSE_PATH_MAX; /* 0: truncated, skip the entry */
}

/* A millidegree attribute as °C, NAN when absent or unreadable. */
static double read_mC(const char *path)
{
    int64_t v;
    uint64_t u;
    return sense_read_int(path, &v, &u) == 0 ? (double)v * 1e-3 : NAN;
}

/* ------------------------------------------------------------------------ */
/* powercap RAPL                                                             */
/* ------------------------------------------------------------------------ */

/* "intel-rapl:N" and "intel-rapl:N:M"; not the control type directory
 * "intel-rapl", and not "intel-rapl-mmio:N", which on client parts is a
 * second view of the same package counter (reading both double counts). */
static int keep_rapl(const char *name)
{
    if (strncmp(name, "intel-rapl:", 11) != 0) return 0;
    const char *p = name + 11;
    int colons = 0;
    if (!isdigit((unsigned char)*p)) return 0;
    for (; *p; p++) {
        if (*p == ':') {
            if (++colons > 1 || !isdigit((unsigned char)p[1])) return 0;
        } else if (!isdigit((unsigned char)*p)) {
            return 0;
        }
    }
    return 1;
}

/* Zone name → (domain, device). "package-0" is socket 0's package;
 * "package-1-die-0" a die of socket 1 (multi-die parts). */
static void rapl_domain(const char *zone, char *dom, size_t n_dom, char *dev, size_t n_dev,
                        char *tag, size_t n_tag)
{
    tag[0] = '\0';
    if (strncmp(zone, "package-", 8) == 0) {
        snprintf(dom, n_dom, "package");
        if (strcmp(zone + 8, "0") != 0) snprintf(tag, n_tag, "%s", zone + 8);
        snprintf(dev, n_dev, "cpu-package");
        return;
    }
    snprintf(dom, n_dom, "%s", zone);
    if (strcmp(zone, "core") == 0) snprintf(dev, n_dev, "cpu-cores");
    else if (strcmp(zone, "psys") == 0) snprintf(dev, n_dev, "platform");
    else snprintf(dev, n_dev, "%s", zone); /* uncore (client iGPU), dram */
}

qeil_status sense_discover_rapl(qeil_sense *s)
{
    char dir[SENSE_PATH_MAX], path[SENSE_PATH_MAX];
    if (!path_fmt(dir, "%s/sys/class/powercap", s->root)) return QEIL_OK;
    name_list l;
    qeil_status st = list_dir(s, dir, keep_rapl, &l);
    if (st != QEIL_OK) return st;
    for (size_t i = 0; i < l.n && st == QEIL_OK; i++) {
        char zone[64], dom[64], dev[64], tag[64], ptag[64] = "";
        if (!path_fmt(path, "%s/%s/name", dir, l.v[i]) || read_text(path, zone, sizeof zone))
            continue;
        rapl_domain(zone, dom, sizeof dom, dev, sizeof dev, tag, sizeof tag);
        /* A subzone belongs to its parent's socket: intel-rapl:1:0 is the
         * core of package-1 (psys, when present, is a top-level zone too,
         * so the parent's index is not the socket number). */
        const char *second = strchr(l.v[i] + 11, ':');
        if (second) {
            char parent[64], pzone[64], pdom[64], pdev[64];
            size_t plen = (size_t)(second - l.v[i]);
            if (plen >= sizeof parent) continue;
            memcpy(parent, l.v[i], plen);
            parent[plen] = '\0';
            if (path_fmt(path, "%s/%s/name", dir, parent) && !read_text(path, pzone, sizeof pzone))
                rapl_domain(pzone, pdom, sizeof pdom, pdev, sizeof pdev, ptag, sizeof ptag);
            snprintf(tag, sizeof tag, "%s", ptag);
        }
        if (!path_fmt(path, "%s/%s/energy_uj", dir, l.v[i])) continue;
        sense_sensor *e;
        st = add_file(s, path, QEIL_SENSE_SRC_RAPL, QEIL_SENSE_ENERGY, 1e-6, 1, &e);
        if (st != QEIL_OK || !e) continue;
        char id[160], device[160];
        snprintf(id, sizeof id, "rapl-%s%s%s", dom, tag[0] ? "-" : "", tag);
        snprintf(device, sizeof device, "%s%s", dev, tag);
        st = label(s, e, id, zone, device);
        int64_t v;
        uint64_t u;
        if (st == QEIL_OK && path_fmt(path, "%s/%s/max_energy_range_uj", dir, l.v[i]) &&
            sense_read_int(path, &v, &u) == 0 && v > 0) {
            e->range_raw = u;
            e->info.range = (double)u * 1e-6;
        }
    }
    list_free(s, &l);
    return st;
}

/* ------------------------------------------------------------------------ */
/* hwmon                                                                     */
/* ------------------------------------------------------------------------ */

static int keep_hwmon(const char *name) { return match_num(name, "hwmon", "", NULL); }

/* Attribute names this reader samples: TYPEN_input (and power average,
 * temp crit alarm). */
static int keep_attr(const char *name)
{
    static const char *const types[] = {"temp", "in", "curr", "power", "energy", "freq"};
    for (size_t k = 0; k < sizeof types / sizeof *types; k++)
        if (match_num(name, types[k], "_input", NULL)) return 1;
    return match_num(name, "power", "_average", NULL) ||
           match_num(name, "temp", "_crit_alarm", NULL);
}

/* What a chip belongs to, by driver name. */
static const char *hwmon_device(const char *chip)
{
    static const char *const cpu[] = {"coretemp", "k10temp", "zenpower", "cpu_thermal"};
    static const char *const gpu[] = {"amdgpu", "i915", "xe", "nouveau", "radeon"};
    for (size_t k = 0; k < sizeof cpu / sizeof *cpu; k++)
        if (strcmp(chip, cpu[k]) == 0) return "cpu";
    for (size_t k = 0; k < sizeof gpu / sizeof *gpu; k++)
        if (strcmp(chip, gpu[k]) == 0) return "gpu";
    if (strcmp(chip, "acpitz") == 0) return "platform";
    return chip;
}

static qeil_status hwmon_chip(qeil_sense *s, const char *cdir, const char *hw)
{
    char path[SENSE_PATH_MAX], chip[64], lab[96];
    if (!path_fmt(path, "%s/name", cdir) || read_text(path, chip, sizeof chip))
        snprintf(chip, sizeof chip, "%s", hw); /* name is mandatory; be lenient */
    int ina = strcmp(chip, "ina3221") == 0;
    name_list l;
    qeil_status st = list_dir(s, cdir, keep_attr, &l);
    if (st != QEIL_OK) return st;
    for (size_t i = 0; i < l.n && st == QEIL_OK; i++) {
        const char *a = l.v[i];
        long num = 0;
        const char *type;
        qeil_sense_quantity q;
        double scale;
        int counter = 0, alarm = 0;
        if (match_num(a, "temp", "_crit_alarm", &num)) {
            type = "temp", q = QEIL_SENSE_ALARM, scale = 1, alarm = 1;
        } else if (match_num(a, "temp", "_input", &num)) {
            type = "temp", q = QEIL_SENSE_TEMP, scale = 1e-3; /* m°C */
        } else if (match_num(a, "in", "_input", &num)) {
            type = "in", q = QEIL_SENSE_VOLTAGE, scale = 1e-3; /* mV */
        } else if (match_num(a, "curr", "_input", &num)) {
            type = "curr", q = QEIL_SENSE_CURRENT, scale = 1e-3; /* mA */
        } else if (match_num(a, "power", "_average", &num)) {
            type = "power", q = QEIL_SENSE_POWER, scale = 1e-6; /* µW */
        } else if (match_num(a, "power", "_input", &num)) {
            /* one power sensor per channel: the average when both exist */
            if (!path_fmt(path, "%s/power%ld_average", cdir, num) || exists(path)) continue;
            type = "power", q = QEIL_SENSE_POWER, scale = 1e-6;
        } else if (match_num(a, "energy", "_input", &num)) {
            type = "energy", q = QEIL_SENSE_ENERGY, scale = 1e-6, counter = 1; /* µJ */
        } else if (match_num(a, "freq", "_input", &num)) {
            type = "freq", q = QEIL_SENSE_FREQ, scale = 1; /* Hz */
        } else {
            continue;
        }
        /* The channel's label: TYPEN_label; INA3221 labels its rails on
         * the bus-voltage channel (inN_label) only. */
        lab[0] = '\0';
        if (path_fmt(path, "%s/%s%ld_label", cdir, type, num)) read_text(path, lab, sizeof lab);
        if (!lab[0] && ina && path_fmt(path, "%s/in%ld_label", cdir, num))
            read_text(path, lab, sizeof lab);
        if (ina && strcmp(lab, "NC") == 0) continue; /* channel not connected */
        char stem[32];
        snprintf(stem, sizeof stem, "%s%ld", type, num);
        const char *name = lab[0] ? lab : stem;
        const char *device = ina && lab[0] ? lab : hwmon_device(chip);
        if (!path_fmt(path, "%s/%s", cdir, a)) continue;
        sense_sensor *e;
        st = add_file(s, path, QEIL_SENSE_SRC_HWMON, q, scale, counter, &e);
        if (st != QEIL_OK || !e) continue;
        char id[256];
        const char *suffix = alarm                     ? ":crit_alarm"
                             : q == QEIL_SENSE_VOLTAGE ? ":voltage"
                             : q == QEIL_SENSE_CURRENT ? ":current"
                                                       : "";
        snprintf(id, sizeof id, "hwmon:%s:%s%s", chip, name, suffix);
        if ((st = label(s, e, id, name, device)) != QEIL_OK) break;
        if (q == QEIL_SENSE_TEMP) {
            if (path_fmt(path, "%s/temp%ld_crit", cdir, num)) e->info.crit_C = read_mC(path);
            if (path_fmt(path, "%s/temp%ld_max", cdir, num)) e->info.throttle_C = read_mC(path);
        }
        /* INA3221 rails: the chip measures bus voltage and current, not
         * power; the rail's power is their product, read together. */
        if (ina && q == QEIL_SENSE_CURRENT && lab[0]) {
            char vpath[SENSE_PATH_MAX];
            if (!path_fmt(vpath, "%s/in%ld_input", cdir, num) || !exists(vpath)) continue;
            const char *cpath = e->info.path; /* e moves with sense_add's realloc */
            int ok = e->info.readable;
            sense_sensor *p = sense_add(s);
            if (!p) {
                st = s->n >= SENSE_MAX_SENSORS ? QEIL_OK : QEIL_ERR_NOMEM;
                break;
            }
            p->info.source = QEIL_SENSE_SRC_HWMON;
            p->info.quantity = QEIL_SENSE_POWER;
            p->kind = READ_VI;
            p->path2 = cpath;
            if (!(p->info.path = sense_str(s, "%s", vpath))) st = QEIL_ERR_NOMEM;
            snprintf(id, sizeof id, "hwmon:%s:%s", chip, lab);
            if (st == QEIL_OK) st = label(s, p, id, lab, lab);
            int64_t v;
            uint64_t u;
            int rc = sense_read_int(vpath, &v, &u);
            if (st == QEIL_OK && (rc || !ok)) {
                char note[SENSE_ERR_MAX * 2];
                sense_unreadable_note(note, sizeof note, rc ? vpath : cpath, rc ? rc : EACCES);
                p->info.readable = 0;
                if (!(p->info.note = sense_str(s, "%s", note))) st = QEIL_ERR_NOMEM;
            }
        }
    }
    list_free(s, &l);
    return st;
}

qeil_status sense_discover_hwmon(qeil_sense *s)
{
    char dir[SENSE_PATH_MAX], cdir[SENSE_PATH_MAX];
    if (!path_fmt(dir, "%s/sys/class/hwmon", s->root)) return QEIL_OK;
    name_list l;
    qeil_status st = list_dir(s, dir, keep_hwmon, &l);
    for (size_t i = 0; i < l.n && st == QEIL_OK; i++)
        if (path_fmt(cdir, "%s/%s", dir, l.v[i])) st = hwmon_chip(s, cdir, l.v[i]);
    list_free(s, &l);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Thermal zones                                                             */
/* ------------------------------------------------------------------------ */

static int keep_zone(const char *name) { return match_num(name, "thermal_zone", "", NULL); }

static const char *zone_device(const char *type)
{
    if (strstr(type, "cpu") || strcmp(type, "x86_pkg_temp") == 0) return "cpu";
    if (strstr(type, "gpu")) return "gpu";
    if (strcmp(type, "acpitz") == 0) return "platform";
    return type;
}

/* Trip points are numbered from 0 without gaps; more than this is junk. */
#define SENSE_MAX_TRIPS 64

qeil_status sense_discover_thermal(qeil_sense *s)
{
    char dir[SENSE_PATH_MAX], path[SENSE_PATH_MAX];
    if (!path_fmt(dir, "%s/sys/class/thermal", s->root)) return QEIL_OK;
    name_list l;
    qeil_status st = list_dir(s, dir, keep_zone, &l);
    for (size_t i = 0; i < l.n && st == QEIL_OK; i++) {
        char type[64], id[128];
        if (!path_fmt(path, "%s/%s/type", dir, l.v[i]) || read_text(path, type, sizeof type))
            snprintf(type, sizeof type, "%s", l.v[i]);
        if (!path_fmt(path, "%s/%s/temp", dir, l.v[i])) continue;
        sense_sensor *e;
        st = add_file(s, path, QEIL_SENSE_SRC_THERMAL, QEIL_SENSE_TEMP, 1e-3, 0, &e);
        if (st != QEIL_OK || !e) continue;
        snprintf(id, sizeof id, "thermal:%s", type);
        if ((st = label(s, e, id, type, zone_device(type))) != QEIL_OK) break;
        for (int k = 0; k < SENSE_MAX_TRIPS; k++) {
            char ttype[32];
            if (!path_fmt(path, "%s/%s/trip_point_%d_type", dir, l.v[i], k) ||
                read_text(path, ttype, sizeof ttype))
                break;
            if (!path_fmt(path, "%s/%s/trip_point_%d_temp", dir, l.v[i], k)) break;
            double t = read_mC(path);
            if (!(t > 0)) continue; /* 0: a trip left unset (x86_pkg_temp's are writable) */
            if (strcmp(ttype, "critical") == 0 && isnan(e->info.crit_C)) e->info.crit_C = t;
            if (strcmp(ttype, "passive") == 0 && isnan(e->info.throttle_C)) e->info.throttle_C = t;
        }
    }
    list_free(s, &l);
    return st;
}

/* ------------------------------------------------------------------------ */
/* cpufreq and the x86 thermal throttle counters                             */
/* ------------------------------------------------------------------------ */

static int keep_cpu(const char *name) { return match_num(name, "cpu", "", NULL); }

/* A kHz attribute as Hz, NAN when absent. */
static double read_kHz(const char *path)
{
    int64_t v;
    uint64_t u;
    return sense_read_int(path, &v, &u) == 0 && v >= 0 ? (double)v * 1e3 : NAN;
}

qeil_status sense_discover_cpufreq(qeil_sense *s)
{
    char dir[SENSE_PATH_MAX], path[SENSE_PATH_MAX];
    if (!path_fmt(dir, "%s/sys/devices/system/cpu", s->root)) return QEIL_OK;
    name_list l;
    qeil_status st = list_dir(s, dir, keep_cpu, &l);
    for (size_t i = 0; i < l.n && st == QEIL_OK; i++) {
        const char *cpu = l.v[i];
        char id[96];
        sense_sensor *e;
        if (path_fmt(path, "%s/%s/cpufreq/scaling_cur_freq", dir, cpu)) {
            st = add_file(s, path, QEIL_SENSE_SRC_CPUFREQ, QEIL_SENSE_FREQ, 1e3, 0, &e);
            if (st != QEIL_OK) break;
            if (e) {
                snprintf(id, sizeof id, "cpufreq:%s", cpu);
                if ((st = label(s, e, id, "scaling_cur_freq", cpu)) != QEIL_OK) break;
                if (path_fmt(path, "%s/%s/cpufreq/cpuinfo_min_freq", dir, cpu))
                    e->info.min_Hz = read_kHz(path);
                if (path_fmt(path, "%s/%s/cpufreq/cpuinfo_max_freq", dir, cpu))
                    e->info.max_Hz = read_kHz(path);
                if (path_fmt(path, "%s/%s/cpufreq/scaling_max_freq", dir, cpu))
                    e->info.cap_Hz = read_kHz(path);
            }
        }
        static const char *const which[] = {"core", "package"};
        for (int k = 0; k < 2 && st == QEIL_OK; k++) {
            if (!path_fmt(path, "%s/%s/thermal_throttle/%s_throttle_count", dir, cpu, which[k]))
                continue;
            st = add_file(s, path, QEIL_SENSE_SRC_CPUFREQ, QEIL_SENSE_THROTTLE_COUNT, 1, 1, &e);
            if (st != QEIL_OK || !e) continue;
            char name[48];
            snprintf(id, sizeof id, "throttle:%s:%s", cpu, which[k]);
            snprintf(name, sizeof name, "%s_throttle_count", which[k]);
            st = label(s, e, id, name, cpu);
        }
    }
    list_free(s, &l);
    return st;
}
