/* meter.c — the CPU meter (include/qeil/sense.h, docs/sense.md): picks the
 * energy counters that cover the CPU package and measures intervals of
 * work with them. The runtime reads it around each request's prefill and
 * decode; `qeil bench` around its phases. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "qeil/sense.h"

#define METER_MAX 16 /* counters summed: sockets of a large server */

struct qeil_sense_cpu_meter {
    qeil_ctx *ctx;
    qeil_sense_meter_params p;
    qeil_sense *s;
    qeil_sense_sample *a, *b;
    size_t idx[METER_MAX];
    size_t n;
    int started;
    char prov[256];
    char covers[512];
};

qeil_sense_meter_params qeil_sense_meter_default_params(void)
{
    qeil_sense_meter_params p;
    memset(&p, 0, sizeof p);
    return p;
}

void qeil_sense_cpu_meter_free(qeil_sense_cpu_meter *m)
{
    if (!m) return;
    qeil_sense_sample_free(m->a);
    qeil_sense_sample_free(m->b);
    qeil_sense_free(m->s);
    qeil_free(m->ctx, m);
}

/* Pick class: 0 = RAPL package, 1 = RAPL psys, 2 = hwmon energy of the CPU;
 * -1 = not a CPU energy counter. */
static int pick_class(const qeil_sensor_info *in)
{
    if (in->quantity != QEIL_SENSE_ENERGY) return -1;
    if (in->source == QEIL_SENSE_SRC_RAPL && strncmp(in->device, "cpu-package", 11) == 0) return 0;
    if (in->source == QEIL_SENSE_SRC_RAPL && strcmp(in->device, "platform") == 0) return 1;
    if (in->source == QEIL_SENSE_SRC_HWMON && strcmp(in->device, "cpu") == 0) return 2;
    return -1;
}

static const char *const COVERS[3] = {
    "the whole CPU package (all cores, uncore and caches; other processes' work included)",
    "the whole platform (CPU package, memory and board; other processes' work included)",
    "the CPU as its hwmon driver reports it (other processes' work included)",
};

qeil_status qeil_sense_cpu_meter_create(qeil_ctx *ctx, const qeil_sense_meter_params *pp,
                                        qeil_sense_cpu_meter **out)
{
    if (!out) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "cpu meter: out is NULL");
    *out = NULL;
    if (!ctx) return QEIL_ERR_INVALID;
    qeil_sense_cpu_meter *m = qeil_calloc(ctx, 1, sizeof *m);
    if (!m) return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "out of memory");
    m->ctx = ctx;
    m->p = pp ? *pp : qeil_sense_meter_default_params();
    qeil_sense_params sp = qeil_sense_default_params();
    sp.root = m->p.root;
    sp.nvml = m->p.nvml;
    sp.nvml_lib = m->p.nvml_lib;
    qeil_status st = qeil_sense_create(ctx, &sp, &m->s);
    if (st != QEIL_OK) {
        qeil_sense_cpu_meter_free(m);
        return st;
    }
    /* the best class with a readable counter; an unreadable one of a better
     * class is named (root-only energy_uj: the fix is in its note) */
    int best = 3;
    const qeil_sensor_info *blocked = NULL;
    for (size_t i = 0; i < qeil_sense_count(m->s); i++) {
        const qeil_sensor_info *in = qeil_sense_info(m->s, i);
        int c = pick_class(in);
        if (c < 0) continue;
        if (!in->readable) {
            if (!blocked) blocked = in;
            continue;
        }
        if (c < best) {
            best = c;
            m->n = 0;
        }
        if (c == best && m->n < METER_MAX) m->idx[m->n++] = i;
    }
    if (m->n) {
        size_t len = 0;
        for (size_t k = 0; k < m->n && len < sizeof m->prov; k++)
            len += (size_t)snprintf(m->prov + len, sizeof m->prov - len, "%s%s", k ? "+" : "",
                                    qeil_sense_info(m->s, m->idx[k])->id);
        snprintf(m->covers, sizeof m->covers, "%s", COVERS[best]);
        m->a = qeil_sense_sample_create(ctx, m->s);
        m->b = qeil_sense_sample_create(ctx, m->s);
        if (!m->a || !m->b) {
            qeil_sense_cpu_meter_free(m);
            return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "out of memory");
        }
    } else if (blocked) {
        snprintf(m->covers, sizeof m->covers, "no readable sensor: %s: %s", blocked->id,
                 blocked->note);
    } else {
        snprintf(m->covers, sizeof m->covers, "no sensor");
    }
    *out = m;
    return QEIL_OK;
}

const char *qeil_sense_cpu_meter_provenance(const qeil_sense_cpu_meter *m)
{
    return m && m->n ? m->prov : NULL;
}

const char *qeil_sense_cpu_meter_covers(const qeil_sense_cpu_meter *m)
{
    return m ? m->covers : "no sensor";
}

size_t qeil_sense_cpu_meter_start(qeil_sense_cpu_meter *m)
{
    if (!m || !m->n) return 0;
    if (m->p.hook) m->p.hook(m->p.hook_user);
    qeil_sense_read(m->s, m->a);
    m->started = 1;
    size_t bad = 0;
    for (size_t k = 0; k < m->n; k++)
        if (qeil_sense_sample_get(m->a, m->idx[k])->status != QEIL_OK) bad++;
    return bad;
}

void qeil_sense_cpu_meter_stop(qeil_sense_cpu_meter *m, qeil_sense_measure *out)
{
    out->valid = 0;
    out->energy_J = NAN;
    out->power_W = NAN;
    out->t_s = 0;
    if (!m || !m->n || !m->started) return;
    m->started = 0;
    if (m->p.hook) m->p.hook(m->p.hook_user);
    qeil_sense_read(m->s, m->b);
    out->t_s = qeil_sense_sample_time_s(m->b) - qeil_sense_sample_time_s(m->a);
    double e = 0;
    for (size_t k = 0; k < m->n; k++) {
        qeil_sense_energy se;
        /* ctx NULL: a failed or reset counter makes the interval invalid;
         * it is not the caller's error */
        if (qeil_sense_meter(NULL, m->s, m->a, m->b, m->idx[k], &se) != QEIL_OK) return;
        e += se.energy_J;
    }
    out->valid = 1;
    out->energy_J = e;
    out->power_W = out->t_s > 0 ? e / out->t_s : NAN;
}

qeil_sense_measure qeil_sense_measure_add(qeil_sense_measure a, qeil_sense_measure b)
{
    qeil_sense_measure r;
    r.t_s = a.t_s + b.t_s;
    r.valid = a.valid && b.valid;
    r.energy_J = r.valid ? a.energy_J + b.energy_J : NAN;
    r.power_W = r.valid && r.t_s > 0 ? r.energy_J / r.t_s : NAN;
    return r;
}
