/* platform.c — names of the device enums, range checks on a platform struct
 * (the single place where profile ranges live: the JSON parser calls it, so
 * a hand-built platform and a parsed one get the same checks), link lookup,
 * and loading a platform by catalog name or file path.
 *
 * Every range below is documented in docs/profiles.md ("Allowed ranges");
 * keep the two in step. */
#include "qeil/device.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Enum names                                                                */
/* ------------------------------------------------------------------------ */

const char *qeil_unit_kind_name(qeil_unit_kind k)
{
    switch (k) {
    case QEIL_UNIT_CPU: return "cpu";
    case QEIL_UNIT_GPU: return "gpu";
    case QEIL_UNIT_IGPU: return "igpu";
    case QEIL_UNIT_NPU: return "npu";
    }
    return "?";
}

const char *qeil_dtype_name(qeil_dtype t)
{
    switch (t) {
    case QEIL_DT_F32: return "f32";
    case QEIL_DT_F16: return "f16";
    case QEIL_DT_INT8: return "int8";
    case QEIL_DT_INT4: return "int4";
    case QEIL_DT_COUNT: break;
    }
    return "?";
}

const char *qeil_source_name(qeil_source s)
{
    switch (s) {
    case QEIL_SRC_DATASHEET: return "datasheet";
    case QEIL_SRC_MEASURED: return "measured";
    case QEIL_SRC_DEFAULT: return "default";
    }
    return "?";
}

/* ------------------------------------------------------------------------ */
/* Range checks                                                              */
/* ------------------------------------------------------------------------ */

/* Shortest "%.Ng" that reads back as the same double, so a message shows
 * exactly the value that was given (1.5, not 1.5000000000000000). */
static void fmt_value(char *buf, size_t n, double v)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        if (!isfinite(v) || strtod(buf, NULL) == v) return;
    }
}

/* lo_open/hi_open: exclusive bound. The test is written so NaN fails. */
static qeil_status check_range(qeil_ctx *ctx, const char *path, double v, double lo, int lo_open,
                               double hi, int hi_open)
{
    int ok = lo_open ? v > lo : v >= lo;
    ok = ok && (hi_open ? v < hi : v <= hi);
    if (ok) return QEIL_OK;
    char val[40];
    fmt_value(val, sizeof val, v);
    return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "%s: %s is out of range (allowed %c%g, %g%c)", path,
                         val, lo_open ? '(' : '[', lo, hi, hi_open ? ')' : ']');
}

#define CHECK(expr)                          \
    do {                                     \
        qeil_status st_ = (expr);            \
        if (st_ != QEIL_OK) return st_;      \
    } while (0)

/* Names are identifiers people type on the command line (qeil plan --fail
 * NAME) and that JSON profiles use as references: 1..QEIL_NAME_MAX-1
 * printable ASCII characters other than space, '"' and '\'. */
static qeil_status check_name(qeil_ctx *ctx, const char *path, const char *name)
{
    const char *nul = memchr(name, '\0', QEIL_NAME_MAX);
    if (!nul)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "%s: not NUL-terminated within %d bytes", path,
                             QEIL_NAME_MAX);
    size_t len = (size_t)(nul - name);
    if (len == 0)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "%s: empty name (allowed 1..%d characters)",
                             path, QEIL_NAME_MAX - 1);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\')
            return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                                 "%s: '%s' has a character (byte 0x%02x at %zu) outside the allowed "
                                 "set (printable ASCII except space, '\"' and '\\')",
                                 path, name, c, i);
    }
    return QEIL_OK;
}

/* The description is free text, but must be valid UTF-8 without control
 * characters so that it prints and serialises safely. */
static qeil_status check_text(qeil_ctx *ctx, const char *path, const char *s, size_t cap)
{
    const char *nul = memchr(s, '\0', cap);
    if (!nul)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "%s: not NUL-terminated within %zu bytes", path,
                             cap);
    const unsigned char *p = (const unsigned char *)s, *end = (const unsigned char *)nul;
    while (p < end) {
        unsigned c = *p;
        size_t n;
        if (c < 0x20 || c == 0x7f)
            return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                                 "%s: control character 0x%02x at byte %zu (not allowed)", path, c,
                                 (size_t)(p - (const unsigned char *)s));
        if (c < 0x80) n = 1;
        else if (c >= 0xc2 && c <= 0xdf) n = 2;
        else if (c >= 0xe0 && c <= 0xef) n = 3;
        else if (c >= 0xf0 && c <= 0xf4) n = 4;
        else n = 0;
        if (n == 0 || (size_t)(end - p) < n) goto bad;
        for (size_t k = 1; k < n; k++)
            if ((p[k] & 0xc0) != 0x80) goto bad;
        /* overlong 3/4-byte forms, surrogates, and code points above U+10FFFF */
        if (n == 3 && ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0))) goto bad;
        if (n == 4 && ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] >= 0x90))) goto bad;
        p += n;
        continue;
    bad:
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "%s: invalid UTF-8 at byte %zu", path,
                             (size_t)(p - (const unsigned char *)s));
    }
    return QEIL_OK;
}

static qeil_status check_count(qeil_ctx *ctx, const char *path, int n, int lo, int hi)
{
    if (n >= lo && n <= hi) return QEIL_OK;
    return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "%s: %d entries (allowed %d..%d)", path, n, lo, hi);
}

/* Allowed ranges (docs/profiles.md). Wide enough for anything from a
 * microcontroller-class NPU to a datacenter GPU; narrow enough to catch unit
 * mistakes (GB/s written as B/s, mJ written as J, Kelvin written as °C). */
#define BW_MIN 1e6              /* B/s */
#define BW_MAX 1e14             /* B/s: 100 TB/s */
#define CAP_MIN 1e6             /* B */
#define CAP_MAX 1e15            /* B: 1 PB */
#define PEAK_MAX 1e17           /* OP/s */
#define E_OP_MIN 1e-16          /* J/op where supported: 0.1 fJ */
#define E_MAX 1e-6              /* J per op or byte: 1 µJ */
#define E_BYTE_MIN 1e-14        /* J/B: 0.01 pJ/B */
#define P_MAX 1e4               /* W */
#define T_MIN -40.0             /* °C */
#define T_MAX 150.0             /* °C */
#define KAPPA_MAX 0.5           /* 1/K */
#define RTH_MAX 1e3             /* K/W */
#define CTH_MAX 1e6             /* J/K */
#define FREQ_MIN 1e6            /* Hz */
#define FREQ_MAX 1e11           /* Hz */
#define VOLT_MIN 0.1            /* V */
#define VOLT_MAX 5.0            /* V */
#define LAT_MAX 1.0             /* s */

static qeil_status check_unit(qeil_ctx *ctx, const qeil_platform *pf, int i)
{
    const qeil_unit *u = &pf->units[i];
    char path[96];
#define P(field) (snprintf(path, sizeof path, "units[%d].%s", i, field), path)

    CHECK(check_name(ctx, P("name"), u->name));
    for (int j = 0; j < i; j++)
        if (strcmp(pf->units[j].name, u->name) == 0)
            return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                                 "units[%d].name: '%s' is already the name of units[%d] (names must "
                                 "be unique)",
                                 i, u->name, j);
    if (u->device[0] || !memchr(u->device, '\0', QEIL_NAME_MAX)) {
        CHECK(check_name(ctx, P("device"), u->device));
        for (int j = 0; j < i; j++)
            if (strcmp(pf->units[j].device, u->device) == 0)
                return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                                     "units[%d].device: '%s' is already the device of units[%d] (one "
                                     "unit per local device)",
                                     i, u->device, j);
    }
    if ((int)u->kind < QEIL_UNIT_CPU || (int)u->kind > QEIL_UNIT_NPU)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                             "units[%d].kind: %d is not a unit kind (allowed cpu, gpu, igpu, npu)",
                             i, (int)u->kind);
    if (u->pool < 0 || u->pool >= pf->n_pools)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "units[%d].pool: %d is out of range (allowed 0..%d)",
                             i, u->pool, pf->n_pools - 1);

    int supported = 0;
    for (int t = 0; t < QEIL_DT_COUNT; t++) {
        char f[32];
        snprintf(f, sizeof f, "peak_ops.%s", qeil_dtype_name((qeil_dtype)t));
        CHECK(check_range(ctx, P(f), u->peak_ops[t], 0, 0, PEAK_MAX, 0));
        supported += u->peak_ops[t] > 0;
    }
    if (!supported)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                             "units[%d].peak_ops: every data type is 0 (a unit must support at least "
                             "one of f32, f16, int8, int4)",
                             i);
    CHECK(check_range(ctx, P("mem_bw_Bps"), u->mem_bw_Bps, BW_MIN, 0, BW_MAX, 0));
    const qeil_pool *pool = &pf->pools[u->pool];
    if (u->mem_bw_Bps > pool->bw_Bps) {
        char a[40], b[40];
        fmt_value(a, sizeof a, u->mem_bw_Bps);
        fmt_value(b, sizeof b, pool->bw_Bps);
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                             "units[%d].mem_bw_Bps: %s is above the bw_Bps of its pool '%s' (%s); a "
                             "unit cannot move data faster than its pool",
                             i, a, pool->name, b);
    }
    CHECK(check_range(ctx, P("eta_compute"), u->eta_compute, 0, 1, 1, 0));
    CHECK(check_range(ctx, P("eta_mem"), u->eta_mem, 0, 1, 1, 0));
    CHECK(check_range(ctx, P("step_s"), u->step_s, 0, 0, 1, 0));
    CHECK(check_range(ctx, P("op_s"), u->op_s, 0, 0, 1, 0));
    CHECK(check_range(ctx, P("attn_pf_flop_s"), u->attn_pf_flop_s, 0, 0, 1e-6, 0));
    CHECK(check_range(ctx, P("attn_dc_flop_s"), u->attn_dc_flop_s, 0, 0, 1e-6, 0));

    for (int t = 0; t < QEIL_DT_COUNT; t++) {
        const char *dn = qeil_dtype_name((qeil_dtype)t);
        char f[32];
        snprintf(f, sizeof f, "e_op_J.%s", dn);
        if (u->peak_ops[t] > 0) {
            if (u->e_op_J[t] == 0)
                return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                                     "units[%d].e_op_J.%s: 0 but peak_ops.%s is supported (allowed "
                                     "[%g, %g] where peak_ops > 0)",
                                     i, dn, dn, E_OP_MIN, E_MAX);
            CHECK(check_range(ctx, P(f), u->e_op_J[t], E_OP_MIN, 0, E_MAX, 0));
        } else if (u->e_op_J[t] != 0) {
            char v[40];
            fmt_value(v, sizeof v, u->e_op_J[t]);
            return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                                 "units[%d].e_op_J.%s: %s but peak_ops.%s is 0 (allowed 0 where the "
                                 "type is unsupported)",
                                 i, dn, v, dn);
        }
    }
    CHECK(check_range(ctx, P("e_byte_J"), u->e_byte_J, E_BYTE_MIN, 0, E_MAX, 0));
    CHECK(check_range(ctx, P("p_const_W"), u->p_const_W, 0, 0, P_MAX, 0));
    CHECK(check_range(ctx, P("p_leak_ref_W"), u->p_leak_ref_W, 0, 0, P_MAX, 0));
    CHECK(check_range(ctx, P("t_leak_ref_C"), u->t_leak_ref_C, T_MIN, 0, T_MAX, 0));
    CHECK(check_range(ctx, P("leak_kappa_perK"), u->leak_kappa_perK, 0, 0, KAPPA_MAX, 0));
    CHECK(check_range(ctx, P("r_th_KpW"), u->r_th_KpW, 0, 1, RTH_MAX, 0));
    CHECK(check_range(ctx, P("c_th_JpK"), u->c_th_JpK, 0, 1, CTH_MAX, 0));
    CHECK(check_range(ctx, P("t_amb_C"), u->t_amb_C, T_MIN, 0, T_MAX, 0));
    CHECK(check_range(ctx, P("t_max_C"), u->t_max_C, T_MIN, 0, T_MAX, 0));
    if (!(u->t_amb_C < u->t_max_C)) {
        char a[40], b[40];
        fmt_value(a, sizeof a, u->t_amb_C);
        fmt_value(b, sizeof b, u->t_max_C);
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                             "units[%d].t_amb_C: %s is not below t_max_C %s (allowed t_amb_C < "
                             "t_max_C)",
                             i, a, b);
    }

    CHECK(check_count(ctx, P("dvfs"), u->n_dvfs, 1, QEIL_MAX_DVFS));
    for (int k = 0; k < u->n_dvfs; k++) {
        char f[48];
        snprintf(f, sizeof f, "dvfs[%d].freq_Hz", k);
        CHECK(check_range(ctx, P(f), u->dvfs[k].freq_Hz, FREQ_MIN, 0, FREQ_MAX, 0));
        snprintf(f, sizeof f, "dvfs[%d].volt_V", k);
        CHECK(check_range(ctx, P(f), u->dvfs[k].volt_V, VOLT_MIN, 0, VOLT_MAX, 0));
        if (k == 0) continue;
        if (!(u->dvfs[k].freq_Hz > u->dvfs[k - 1].freq_Hz)) {
            char a[40], b[40];
            fmt_value(a, sizeof a, u->dvfs[k].freq_Hz);
            fmt_value(b, sizeof b, u->dvfs[k - 1].freq_Hz);
            return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                                 "units[%d].dvfs[%d].freq_Hz: %s is not above dvfs[%d].freq_Hz %s "
                                 "(points must be in strictly ascending frequency)",
                                 i, k, a, k - 1, b);
        }
        /* A higher clock never runs at a lower voltage on a real V/f curve. */
        if (u->dvfs[k].volt_V < u->dvfs[k - 1].volt_V) {
            char a[40], b[40];
            fmt_value(a, sizeof a, u->dvfs[k].volt_V);
            fmt_value(b, sizeof b, u->dvfs[k - 1].volt_V);
            return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                                 "units[%d].dvfs[%d].volt_V: %s is below dvfs[%d].volt_V %s "
                                 "(voltage must not decrease as frequency rises)",
                                 i, k, a, k - 1, b);
        }
    }
    if (u->dvfs_nominal < 0 || u->dvfs_nominal >= u->n_dvfs)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                             "units[%d].dvfs_nominal: %d is out of range (allowed 0..%d)", i,
                             u->dvfs_nominal, u->n_dvfs - 1);

    const qeil_source src[3] = {u->src_compute, u->src_power, u->src_thermal};
    static const char *const src_field[3] = {"source.compute", "source.power", "source.thermal"};
    for (int k = 0; k < 3; k++)
        if ((int)src[k] < QEIL_SRC_DATASHEET || (int)src[k] > QEIL_SRC_DEFAULT)
            return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                                 "units[%d].%s: %d is not a source (allowed datasheet, measured, "
                                 "default)",
                                 i, src_field[k], (int)src[k]);
#undef P
    return QEIL_OK;
}

qeil_status qeil_platform_validate(qeil_ctx *ctx, const qeil_platform *pf)
{
    if (!pf) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "qeil_platform_validate: platform is NULL");
    char path[64];

    CHECK(check_name(ctx, "name", pf->name));
    CHECK(check_text(ctx, "description", pf->description, QEIL_DESC_MAX));
    CHECK(check_range(ctx, "rho_max", pf->rho_max, 0, 1, 1, 1));
    CHECK(check_count(ctx, "pools", pf->n_pools, 1, QEIL_MAX_POOLS));
    CHECK(check_count(ctx, "links", pf->n_links, 0, QEIL_MAX_LINKS));
    CHECK(check_count(ctx, "units", pf->n_units, 1, QEIL_MAX_UNITS));

    for (int i = 0; i < pf->n_pools; i++) {
        const qeil_pool *p = &pf->pools[i];
        snprintf(path, sizeof path, "pools[%d].name", i);
        CHECK(check_name(ctx, path, p->name));
        for (int j = 0; j < i; j++)
            if (strcmp(pf->pools[j].name, p->name) == 0)
                return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                                     "pools[%d].name: '%s' is already the name of pools[%d] (names "
                                     "must be unique)",
                                     i, p->name, j);
        snprintf(path, sizeof path, "pools[%d].capacity_B", i);
        CHECK(check_range(ctx, path, p->capacity_B, CAP_MIN, 0, CAP_MAX, 0));
        snprintf(path, sizeof path, "pools[%d].bw_Bps", i);
        CHECK(check_range(ctx, path, p->bw_Bps, BW_MIN, 0, BW_MAX, 0));
    }

    for (int i = 0; i < pf->n_links; i++) {
        const qeil_link *l = &pf->links[i];
        if (l->pool_a < 0 || l->pool_a >= pf->n_pools)
            return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                                 "links[%d].a: pool %d is out of range (allowed 0..%d)", i,
                                 l->pool_a, pf->n_pools - 1);
        if (l->pool_b < 0 || l->pool_b >= pf->n_pools)
            return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                                 "links[%d].b: pool %d is out of range (allowed 0..%d)", i,
                                 l->pool_b, pf->n_pools - 1);
        if (l->pool_a == l->pool_b)
            return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                                 "links[%d].b: '%s' is also links[%d].a (a link joins two different "
                                 "pools)",
                                 i, pf->pools[l->pool_b].name, i);
        for (int j = 0; j < i; j++) {
            const qeil_link *m = &pf->links[j];
            if ((m->pool_a == l->pool_a && m->pool_b == l->pool_b) ||
                (m->pool_a == l->pool_b && m->pool_b == l->pool_a))
                return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                                     "links[%d]: '%s'-'%s' is already joined by links[%d] (at most "
                                     "one link per pair of pools)",
                                     i, pf->pools[l->pool_a].name, pf->pools[l->pool_b].name, j);
        }
        snprintf(path, sizeof path, "links[%d].bw_Bps", i);
        CHECK(check_range(ctx, path, l->bw_Bps, BW_MIN, 0, BW_MAX, 0));
        snprintf(path, sizeof path, "links[%d].e_byte_J", i);
        CHECK(check_range(ctx, path, l->e_byte_J, 0, 0, E_MAX, 0));
        snprintf(path, sizeof path, "links[%d].latency_s", i);
        CHECK(check_range(ctx, path, l->latency_s, 0, 0, LAT_MAX, 0));
    }

    for (int i = 0; i < pf->n_units; i++) CHECK(check_unit(ctx, pf, i));
    return QEIL_OK;
}

int qeil_platform_link(const qeil_platform *pf, int pool_a, int pool_b)
{
    if (!pf || pool_a == pool_b) return -1;
    int n = pf->n_links < 0 ? 0 : pf->n_links > QEIL_MAX_LINKS ? QEIL_MAX_LINKS : pf->n_links;
    for (int i = 0; i < n; i++) {
        const qeil_link *l = &pf->links[i];
        if ((l->pool_a == pool_a && l->pool_b == pool_b) ||
            (l->pool_a == pool_b && l->pool_b == pool_a))
            return i;
    }
    return -1;
}

/* ------------------------------------------------------------------------ */
/* Load by name or path                                                      */
/* ------------------------------------------------------------------------ */

static int looks_like_path(const char *s)
{
    size_t n = strlen(s);
    return strchr(s, '/') != NULL || (n >= 5 && strcmp(s + n - 5, ".json") == 0);
}

qeil_status qeil_platform_load(qeil_ctx *ctx, const char *name_or_path, qeil_platform *out)
{
    if (!name_or_path || !out)
        return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "qeil_platform_load: NULL argument");
    if (looks_like_path(name_or_path)) return qeil_platform_read_file(ctx, name_or_path, out);

    const qeil_platform *pf = qeil_catalog_find(name_or_path);
    if (pf) {
        *out = *pf;
        return QEIL_OK;
    }
    /* List the valid names so a typo is a one-step fix. */
    char names[400];
    size_t used = 0;
    names[0] = '\0';
    for (size_t i = 0; i < qeil_catalog_count(); i++) {
        int w = snprintf(names + used, sizeof names - used, "%s%s", i ? ", " : "",
                         qeil_catalog_get(i)->name);
        if (w < 0 || (size_t)w >= sizeof names - used) break;
        used += (size_t)w;
    }
    return qeil_ctx_fail(ctx, QEIL_ERR_NOTFOUND,
                         "platform '%.64s' not found (built-in platforms: %s; or give a JSON profile "
                         "path containing '/' or ending in .json)",
                         name_or_path, names);
}
