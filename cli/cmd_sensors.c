/* cmd_sensors.c — `qeil sensors`: list the energy, power, temperature,
 * frequency and throttle sensors this machine exposes (docs/sense.md), with
 * current readings and, with --interval, power measured over an interval. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "opt.h"
#include "qeil/sense.h"

#define CMD "sensors"

typedef struct {
    cli_output out;
    const char *root, *nvml_lib;
    int no_nvml;
    double interval_s;
} sensors_opts;

#define T sensors_opts
static const cli_optdef sensors_table[] = {
    {CLI_STR("--root", NULL, "DIR", "read DIR/sys instead of /sys (fixture trees, containers)", T,
             root),
     .flags = CLI_OPT_NONEMPTY},
    {CLI_F64("--interval", NULL, "S",
             "also measure energy and power over S seconds\n"
             "(0.01..3600): energy counters are differenced (with\n"
             "wrap-around), power sensors averaged",
             T, interval_s, 0.01, 3600)},
    {CLI_FLAG("--no-nvml", NULL, "do not load NVML", T, no_nvml)},
    {CLI_STR("--nvml-lib", NULL, "PATH",
             "the NVML library (default: $QEIL_NVML_LIB, else\nlibnvidia-ml.so.1)", T, nvml_lib),
     .flags = CLI_OPT_NONEMPTY},
    {CLI_OUTPUT("table (default) or json", T, out, "table|json")},
};
#undef T

static const cli_command sensors_cmd = {
    CMD,
    "usage: qeil sensors [options]\n\n"
    "List the sensors found on this machine — powercap RAPL energy counters (Intel\n"
    "and AMD), hwmon chips (temperatures, power, energy, INA3221 rails), thermal\n"
    "zones, cpufreq clocks and throttle counters, NVIDIA GPUs through NVML — with\n"
    "their current readings. Every value printed is measured (read from the sensor\n"
    "its id names); a sensor found but unreadable is listed with the fix.\n",
    sensors_table,
    CLI_NOPTS(sensors_table),
    "Layouts read, units, permissions and provenance ids: docs/sense.md.\n",
    NULL,
};

/* A reading for the table: value with its unit, scaled for reading. */
static const char *fmt_value(char *buf, size_t n, const qeil_sensor_info *i,
                             const qeil_sense_reading *r)
{
    qeil_sense_quantity q = i->quantity;
    if (r->status != QEIL_OK) {
        snprintf(buf, n, "(%s)", i->readable ? qeil_status_str(r->status) : "unreadable");
        return buf;
    }
    double v = r->value;
    switch (q) {
    case QEIL_SENSE_ENERGY: snprintf(buf, n, "%.6f J (counter)", v); break;
    case QEIL_SENSE_POWER: snprintf(buf, n, "%.3f W", v); break;
    case QEIL_SENSE_TEMP: snprintf(buf, n, "%.1f C", v); break;
    case QEIL_SENSE_FREQ: snprintf(buf, n, "%.0f MHz", v / 1e6); break;
    case QEIL_SENSE_THROTTLE_COUNT: snprintf(buf, n, "%llu", (unsigned long long)r->raw); break;
    case QEIL_SENSE_THROTTLE_REASONS: snprintf(buf, n, "0x%llx", (unsigned long long)v); break;
    case QEIL_SENSE_ALARM: snprintf(buf, n, "%s", v != 0 ? "ALARM" : "ok"); break;
    case QEIL_SENSE_VOLTAGE: snprintf(buf, n, "%.3f V", v); break;
    case QEIL_SENSE_CURRENT: snprintf(buf, n, "%.3f A", v); break;
    }
    return buf;
}

/* Limits worth a glance, for the table's last column. */
static const char *fmt_limits(char *buf, size_t n, const qeil_sensor_info *i)
{
    buf[0] = '\0';
    size_t len = 0;
#define ADD(...)                                                                             \
    do {                                                                                     \
        if (len < n) len += (size_t)snprintf(buf + len, n - len, __VA_ARGS__);               \
    } while (0)
    if (i->range > 0) ADD("wraps at %.0f J ", i->range);
    if (!isnan(i->throttle_C)) ADD("passive/max %.1f C ", i->throttle_C);
    if (!isnan(i->crit_C)) ADD("crit %.1f C ", i->crit_C);
    if (!isnan(i->min_Hz) && !isnan(i->max_Hz)) ADD("%.0f-%.0f MHz ", i->min_Hz / 1e6, i->max_Hz / 1e6);
    if (!isnan(i->cap_Hz)) ADD("cap %.0f MHz ", i->cap_Hz / 1e6);
#undef ADD
    if (len && len < n) buf[len - 1] = '\0';
    return buf;
}

static cJSON *num_or_null(double v) { return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull(); }

static const char *method_name(qeil_sense_meter_method m)
{
    return m == QEIL_SENSE_METER_COUNTER ? "energy-counter" : "power-mean";
}

typedef struct {
    qeil_status st;
    qeil_sense_energy e;
    char err[512];
} meter_row;

static int print_json(const char *root, const qeil_sense *s, const qeil_sense_sample *a,
                      double interval_s, const meter_row *rows)
{
    cJSON *j = cJSON_CreateObject();
    if (!j) return cli_fail(CMD, "out of memory");
    cJSON_AddStringToObject(j, "version", qeil_version());
    cJSON_AddStringToObject(j, "command", CMD);
    cJSON_AddStringToObject(j, "root", root);
    cJSON_AddStringToObject(j, "provenance", "measured");
    cJSON *u = cJSON_AddObjectToObject(j, "units");
    for (int q = QEIL_SENSE_ENERGY; q <= QEIL_SENSE_CURRENT; q++)
        cJSON_AddStringToObject(u, qeil_sense_quantity_name((qeil_sense_quantity)q),
                                qeil_sense_unit((qeil_sense_quantity)q));
    const char *msg;
    int nv = qeil_sense_nvml_available(s, &msg);
    cJSON *nj = cJSON_AddObjectToObject(j, "nvml");
    cJSON_AddBoolToObject(nj, "available", nv);
    cJSON_AddStringToObject(nj, "message", msg);
    cJSON *arr = cJSON_AddArrayToObject(j, "sensors");
    size_t n = qeil_sense_count(s);
    for (size_t k = 0; k < n; k++) {
        const qeil_sensor_info *i = qeil_sense_info(s, k);
        const qeil_sense_reading *r = qeil_sense_sample_get(a, k);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(arr, o);
        cJSON_AddStringToObject(o, "id", i->id);
        cJSON_AddStringToObject(o, "source", qeil_sense_source_name(i->source));
        cJSON_AddStringToObject(o, "quantity", qeil_sense_quantity_name(i->quantity));
        cJSON_AddStringToObject(o, "unit", qeil_sense_unit(i->quantity));
        cJSON_AddStringToObject(o, "name", i->name);
        cJSON_AddStringToObject(o, "device", i->device);
        cJSON_AddStringToObject(o, "path", i->path);
        cJSON_AddBoolToObject(o, "readable", i->readable);
        if (!i->readable) cJSON_AddStringToObject(o, "note", i->note);
        cJSON_AddStringToObject(o, "status", r->status == QEIL_OK ? "ok" : qeil_status_str(r->status));
        if (r->status != QEIL_OK) cJSON_AddStringToObject(o, "error", r->error);
        cJSON_AddItemToObject(o, "value", num_or_null(r->value));
        if (i->quantity == QEIL_SENSE_ENERGY || i->quantity == QEIL_SENSE_THROTTLE_COUNT) {
            char raw[32]; /* a 64-bit counter does not fit a JSON double: a string */
            snprintf(raw, sizeof raw, "%llu", (unsigned long long)r->raw);
            cJSON_AddStringToObject(o, "raw", r->status == QEIL_OK ? raw : "");
        }
        if (i->range > 0) cJSON_AddNumberToObject(o, "range_J", i->range);
        if (!isnan(i->crit_C)) cJSON_AddNumberToObject(o, "crit_C", i->crit_C);
        if (!isnan(i->throttle_C)) cJSON_AddNumberToObject(o, "throttle_C", i->throttle_C);
        if (!isnan(i->min_Hz)) cJSON_AddNumberToObject(o, "min_Hz", i->min_Hz);
        if (!isnan(i->max_Hz)) cJSON_AddNumberToObject(o, "max_Hz", i->max_Hz);
        if (!isnan(i->cap_Hz)) cJSON_AddNumberToObject(o, "cap_Hz", i->cap_Hz);
    }
    if (rows) {
        cJSON *iv = cJSON_AddObjectToObject(j, "interval");
        cJSON_AddNumberToObject(iv, "requested_s", interval_s);
        cJSON *res = cJSON_AddArrayToObject(iv, "measured");
        for (size_t k = 0; k < n; k++) {
            const qeil_sensor_info *i = qeil_sense_info(s, k);
            if (i->quantity != QEIL_SENSE_ENERGY && i->quantity != QEIL_SENSE_POWER) continue;
            cJSON *o = cJSON_CreateObject();
            cJSON_AddItemToArray(res, o);
            cJSON_AddStringToObject(o, "id", i->id);
            cJSON_AddStringToObject(o, "device", i->device);
            if (rows[k].st != QEIL_OK) {
                cJSON_AddStringToObject(o, "status", qeil_status_str(rows[k].st));
                cJSON_AddStringToObject(o, "error", rows[k].err);
                continue;
            }
            cJSON_AddStringToObject(o, "status", "ok");
            cJSON_AddStringToObject(o, "method", method_name(rows[k].e.method));
            cJSON_AddNumberToObject(o, "t_s", rows[k].e.t_s);
            cJSON_AddNumberToObject(o, "energy_J", rows[k].e.energy_J);
            cJSON_AddNumberToObject(o, "power_W", rows[k].e.power_W);
            cJSON_AddBoolToObject(o, "wrapped", rows[k].e.wrapped);
        }
    }
    int rc = cli_json_print(j) == 0 ? CLI_OK : cli_fail(CMD, "out of memory");
    cJSON_Delete(j);
    return rc;
}

static void print_table(const char *root, const qeil_sense *s, const qeil_sense_sample *a,
                        const meter_row *rows)
{
    size_t n = qeil_sense_count(s), unreadable = 0, w_id = 2, w_dev = 6;
    for (size_t k = 0; k < n; k++) {
        const qeil_sensor_info *i = qeil_sense_info(s, k);
        if (!i->readable) unreadable++;
        size_t l = strlen(cli_term(i->id));
        if (l > w_id) w_id = l;
        l = strlen(cli_term(i->device));
        if (l > w_dev) w_dev = l;
    }
    if (w_id > 48) w_id = 48;
    if (w_dev > 24) w_dev = 24;
    const char *msg;
    qeil_sense_nvml_available(s, &msg);
    printf("qeil sensors %s: %zu sensor%s under %s (%zu unreadable); NVML: %s\n", qeil_version(), n,
           n == 1 ? "" : "s", cli_term(root), unreadable, cli_term(msg));
    if (n == 0) {
        printf("no sensors found: energy, power and temperature figures elsewhere in qeil are "
               "modeled on this machine\n");
        return;
    }
    printf("every value is measured: read from the sensor its id names (docs/sense.md)\n\n");
    printf("%-*s  %-16s  %-*s  %-22s  %s\n", (int)w_id, "id", "measures", (int)w_dev, "device",
           "value", "limits");
    for (size_t k = 0; k < n; k++) {
        const qeil_sensor_info *i = qeil_sense_info(s, k);
        char v[64], lim[160];
        fmt_limits(lim, sizeof lim, i);
        printf("%-*s  %-16s  %-*s  %-*s%s%s\n", (int)w_id, cli_term(i->id),
               qeil_sense_quantity_name(i->quantity), (int)w_dev, cli_term(i->device),
               lim[0] ? 22 : 0, fmt_value(v, sizeof v, i, qeil_sense_sample_get(a, k)),
               lim[0] ? "  " : "", lim);
    }
    if (!rows) return;
    size_t measured = 0;
    for (size_t k = 0; k < n; k++) measured += rows[k].st == QEIL_OK;
    printf("\nmeasured over the interval (energy-counter: counter difference, wrap-around "
           "handled; power-mean: mean of two power readings x interval)\n");
    if (!measured) {
        printf("no readable energy or power sensor: energy figures elsewhere in qeil stay "
               "modeled on this machine\n");
        return;
    }
    printf("%-*s  %-*s  %10s  %10s  %9s  %s\n", (int)w_id, "id", (int)w_dev, "device", "energy J",
           "power W", "t s", "method");
    int rapl = 0;
    for (size_t k = 0; k < n; k++) {
        if (rows[k].st != QEIL_OK) continue;
        const qeil_sensor_info *i = qeil_sense_info(s, k);
        rapl += i->source == QEIL_SENSE_SRC_RAPL;
        const qeil_sense_energy *e = &rows[k].e;
        printf("%-*s  %-*s  %10.4f  %10.3f  %9.4f  %s%s\n", (int)w_id, cli_term(i->id), (int)w_dev,
               cli_term(i->device), e->energy_J, e->power_W, e->t_s, method_name(e->method),
               e->wrapped ? " (wrapped once)" : "");
    }
    if (rapl > 1)
        printf("(RAPL zones nest: package includes core and uncore; psys includes package; do "
               "not add them)\n");
}

static void sleep_s(double s)
{
    struct timespec ts;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int cmd_sensors(int argc, char **argv)
{
    sensors_opts o = {.out = CLI_OUT_TABLE, .root = "/"};
    int prc = cli_opt_parse(&sensors_cmd, argc, argv, &o);
    if (prc != CLI_OK) return prc == CLI_OPT_HELP ? CLI_OK : prc;
    const cli_output out = o.out;
    const double interval_s = o.interval_s;

    qeil_ctx *ctx = cli_ctx_create();
    if (!ctx) return cli_fail(CMD, "out of memory");
    qeil_sense_params p = qeil_sense_default_params();
    p.root = o.root;
    p.nvml = !o.no_nvml;
    p.nvml_lib = o.nvml_lib;
    qeil_sense *s = NULL;
    if (qeil_sense_create(ctx, &p, &s) != QEIL_OK) {
        int rc = cli_fail(CMD, "%s", qeil_ctx_errmsg(ctx));
        qeil_ctx_free(ctx);
        return rc;
    }
    size_t n = qeil_sense_count(s);
    qeil_sense_sample *a = qeil_sense_sample_create(ctx, s);
    qeil_sense_sample *b = interval_s > 0 ? qeil_sense_sample_create(ctx, s) : NULL;
    meter_row *rows = interval_s > 0 ? calloc(n ? n : 1, sizeof *rows) : NULL;
    int rc = CLI_OK;
    if (!a || (interval_s > 0 && (!b || !rows))) {
        rc = cli_fail(CMD, "out of memory");
        goto done;
    }
    for (size_t k = 0; k < n; k++) {
        const qeil_sensor_info *i = qeil_sense_info(s, k);
        if (!i->readable) fprintf(stderr, "qeil %s: warning: %s: %s\n", CMD, cli_term(i->id), cli_term(i->note));
    }
    qeil_sense_read(s, a);
    if (interval_s > 0) {
        sleep_s(interval_s);
        qeil_sense_read(s, b);
        for (size_t k = 0; k < n; k++) {
            const qeil_sensor_info *i = qeil_sense_info(s, k);
            rows[k].st = QEIL_ERR_UNSUPPORTED;
            if (i->quantity != QEIL_SENSE_ENERGY && i->quantity != QEIL_SENSE_POWER) continue;
            rows[k].st = qeil_sense_meter(ctx, s, a, b, k, &rows[k].e);
            if (rows[k].st != QEIL_OK)
                snprintf(rows[k].err, sizeof rows[k].err, "%s", qeil_ctx_errmsg(ctx));
        }
    }
    /* A sensor that fails now but was readable at discovery: a warning
     * (it vanished, or its device fell off the bus), not a failure. */
    const qeil_sense_sample *last = b ? b : a;
    for (size_t k = 0; k < n; k++) {
        const qeil_sensor_info *i = qeil_sense_info(s, k);
        const qeil_sense_reading *r = qeil_sense_sample_get(last, k);
        if (i->readable && r->status != QEIL_OK)
            fprintf(stderr, "qeil %s: warning: %s: %s\n", CMD, cli_term(i->id), cli_term(r->error));
    }
    if (out == CLI_OUT_JSON) rc = print_json(o.root, s, a, interval_s, rows);
    else print_table(o.root, s, a, rows);
done:
    free(rows);
    qeil_sense_sample_free(b);
    qeil_sense_sample_free(a);
    qeil_sense_free(s);
    qeil_ctx_free(ctx);
    return rc;
}
