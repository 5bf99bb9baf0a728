/*
 * placement.c — placement strings ("all:vk0", "emb..b7:cpu,b8..head:vk0")
 * to a backend id per work unit (qeil/engine.h, qeil_placement_parse), and
 * QEIL_FAULT's "DEVICE:KIND:N" (qeil_fault_parse).
 *
 *   spec   := item ("," item)*
 *   item   := range ":" device
 *   range  := "all" | unit | unit ".." unit        (inclusive, in order)
 *   unit   := "emb" | "head" | "b" N               (blocks b0..b<n_layers-1>)
 *   device := "cpu" | "vk0" | "cpu1" | "cpu-" NAME  (vk0: the vulkan backend; cpu1:
 *                                                   the cpu backend as a second unit;
 *                                                   cpu-NAME: a core cluster, engine.md)
 *
 * Every unit must be named exactly once: a gap or an overlap is an error,
 * as is an unknown device or a block past the model's last.
 *
 * Per phase (qeil_placement_parse_phases):
 *
 *   phases := "prefill=" spec ";decode=" spec | "decode=" spec ";prefill=" spec
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "qeil/engine.h"

/* Unit index of "emb", "head" or "bN" in s[0..n); -1 with an error in *st. */
static int64_t parse_unit(qeil_ctx *ctx, const char *s, size_t n, uint32_t n_layers,
                          qeil_status *st)
{
    if (n == 3 && memcmp(s, "emb", 3) == 0) return 0;
    if (n == 4 && memcmp(s, "head", 4) == 0) return (int64_t)n_layers + 1;
    if (n >= 2 && n <= 11 && s[0] == 'b') {
        uint64_t v = 0;
        size_t i = 1;
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) v = v * 10 + (uint64_t)(s[i] - '0');
        if (i == n && !(n > 2 && s[1] == '0')) {
            if (v < n_layers) return (int64_t)v + 1;
            *st = qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                                "placement: block '%.*s' is out of range (the model has b0..b%u)",
                                (int)n, s, n_layers - 1);
            return -1;
        }
    }
    *st = qeil_ctx_fail(ctx, QEIL_ERR_FORMAT,
                        "placement: unit '%.*s' is not one of emb, head, b0..b%u (or 'all')",
                        (int)n, s, n_layers - 1);
    return -1;
}

/* Backend id of device name s[0..n) (qeil_engine_device_name); -1 with
 * an error naming `what`. */
static int parse_device_as(qeil_ctx *ctx, const char *what, const char *s, size_t n)
{
    char known[192] = "";
    for (size_t id = 0; id < qeil_engine_n_backends(); id++) {
        const char *d = qeil_engine_device_name(id);
        if (!d) break;
        if (strlen(d) == n && memcmp(s, d, n) == 0) return (int)id;
        size_t k = strlen(known);
        snprintf(known + k, sizeof known - k, "%s%s", id ? ", " : "", d);
    }
    /* a core-cluster device ("cpu-NAME") exists where the machine or
     * QEIL_CPU_CLUSTERS has clusters (docs/engine.md, "CPU clusters") */
    const char *hint = n > 4 && memcmp(s, "cpu-", 4) == 0
                           ? "; CPU cluster devices come from the machine's core clusters or "
                             "QEIL_CPU_CLUSTERS, e.g. QEIL_CPU_CLUSTERS=a=0,b=1"
                           : "";
    qeil_ctx_fail(ctx, QEIL_ERR_NOTFOUND, "%s: unknown device '%.*s' (known: %s%s)", what, (int)n, s,
                  known, hint);
    return -1;
}

static int parse_device(qeil_ctx *ctx, const char *s, size_t n)
{
    return parse_device_as(ctx, "placement", s, n);
}

static const char *unit_name(uint32_t u, uint32_t n_layers, char *buf, size_t cap)
{
    if (u == 0) return "emb";
    if (u == n_layers + 1) return "head";
    snprintf(buf, cap, "b%u", u - 1);
    return buf;
}

qeil_status qeil_placement_parse(qeil_ctx *ctx, const char *spec, uint32_t n_layers,
                                 uint8_t *backend, uint32_t n_units)
{
    if (!spec || !backend) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "placement: NULL argument");
    if (n_layers < 1 || n_units != n_layers + 2)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                             "placement: %u units for %u blocks (the model has n_layers + 2)",
                             n_units, n_layers);
    uint8_t *seen = qeil_calloc(ctx, n_units, 1);
    if (!seen) return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "placement: out of memory");
    qeil_status st = QEIL_OK;
    const char *p = spec;
    if (!*p) st = qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "placement: empty (e.g. all:vk0)");
    else if (strchr(p, ';') || strchr(p, '='))
        st = qeil_ctx_fail(ctx, QEIL_ERR_FORMAT,
                           "placement: '%.80s' has phases (prefill=SPEC;decode=SPEC: "
                           "qeil_placement_parse_phases)",
                           spec);
    while (st == QEIL_OK && *p) {
        const char *end = strchr(p, ',');
        const size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *colon = memchr(p, ':', len);
        if (!colon || colon == p || colon + 1 == p + len) {
            st = qeil_ctx_fail(ctx, QEIL_ERR_FORMAT,
                               "placement: '%.*s' is not RANGE:DEVICE (e.g. b0..b7:vk0)", (int)len, p);
            break;
        }
        const int dev = parse_device(ctx, colon + 1, (size_t)(p + len - colon - 1));
        if (dev < 0) {
            st = QEIL_ERR_NOTFOUND;
            break;
        }
        const size_t rlen = (size_t)(colon - p);
        int64_t lo, hi;
        const char *dots = NULL;
        for (size_t i = 0; i + 1 < rlen; i++)
            if (p[i] == '.' && p[i + 1] == '.') {
                dots = p + i;
                break;
            }
        if (rlen == 3 && memcmp(p, "all", 3) == 0) {
            lo = 0;
            hi = (int64_t)n_units - 1;
        } else if (dots) {
            lo = parse_unit(ctx, p, (size_t)(dots - p), n_layers, &st);
            hi = lo < 0 ? -1 : parse_unit(ctx, dots + 2, (size_t)(colon - dots - 2), n_layers, &st);
        } else {
            lo = hi = parse_unit(ctx, p, rlen, n_layers, &st);
        }
        if (lo < 0 || hi < 0) break;
        if (lo > hi) {
            st = qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "placement: range '%.*s' runs backwards",
                               (int)rlen, p);
            break;
        }
        for (int64_t u = lo; u <= hi && st == QEIL_OK; u++) {
            if (seen[u]) {
                char b[16];
                st = qeil_ctx_fail(ctx, QEIL_ERR_INVALID,
                                   "placement: unit %s is placed twice ('%.*s' overlaps an earlier range)",
                                   unit_name((uint32_t)u, n_layers, b, sizeof b), (int)len, p);
            }
            seen[u] = 1;
            backend[u] = (uint8_t)dev;
        }
        p = end ? end + 1 : p + len;
        if (end && !*p) st = qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "placement: trailing ','");
    }
    for (uint32_t u = 0; u < n_units && st == QEIL_OK; u++)
        if (!seen[u]) {
            char b[16];
            st = qeil_ctx_fail(ctx, QEIL_ERR_INVALID,
                               "placement: unit %s is not placed (name every unit: emb, b0..b%u, head)",
                               unit_name(u, n_layers, b, sizeof b), n_layers - 1);
        }
    qeil_free(ctx, seen);
    return st;
}

/* ---- prefill=SPEC;decode=SPEC ---- */

qeil_status qeil_placement_parse_phases(qeil_ctx *ctx, const char *spec, uint32_t n_layers,
                                        uint8_t *prefill, uint8_t *decode, uint32_t n_units)
{
    if (!spec || !prefill || !decode)
        return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "placement: NULL argument");
    if (!strchr(spec, ';') && !strchr(spec, '=')) {
        qeil_status st = qeil_placement_parse(ctx, spec, n_layers, prefill, n_units);
        if (st == QEIL_OK) memcpy(decode, prefill, n_units);
        return st;
    }
    int have[2] = {0, 0};
    char buf[4096];
    const char *p = spec;
    for (;;) {
        const char *end = strchr(p, ';');
        const size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        int ph = -1;
        if (eq && (size_t)(eq - p) == 7 && memcmp(p, "prefill", 7) == 0) ph = 0;
        else if (eq && (size_t)(eq - p) == 6 && memcmp(p, "decode", 6) == 0) ph = 1;
        if (ph < 0)
            return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT,
                                 "placement: '%.*s' is not prefill=SPEC or decode=SPEC "
                                 "(e.g. prefill=all:vk0;decode=all:cpu)",
                                 (int)(len > 80 ? 80 : len), p);
        const char *phase = ph ? "decode" : "prefill";
        if (have[ph])
            return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "placement: phase '%s' is given twice", phase);
        have[ph] = 1;
        const size_t sl = (size_t)(p + len - eq - 1);
        if (sl == 0)
            return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "placement: %s= is empty (e.g. %s=all:vk0)",
                                 phase, phase);
        if (sl >= sizeof buf)
            return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "placement: %s= is over %zu characters",
                                 phase, sizeof buf - 1);
        memcpy(buf, eq + 1, sl);
        buf[sl] = '\0';
        if (strchr(buf, '='))
            return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT,
                                 "placement: %s='%.80s' holds another '=' (separate phases with ';')",
                                 phase, buf);
        qeil_status st = qeil_placement_parse(ctx, buf, n_layers, ph ? decode : prefill, n_units);
        if (st != QEIL_OK) {
            char msg[400];
            const char *m = qeil_ctx_errmsg(ctx);
            if (strncmp(m, "placement: ", 11) == 0) m += 11;
            snprintf(msg, sizeof msg, "%s", m);
            return qeil_ctx_fail(ctx, st, "placement: %s: %s", phase, msg);
        }
        if (!end) break;
        p = end + 1;
    }
    if (!have[0] || !have[1])
        return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT,
                             "placement: %s= is missing (give both: prefill=SPEC;decode=SPEC)",
                             have[0] ? "decode" : "prefill");
    return QEIL_OK;
}

/* One map as ranges of equal device into buf at *len; 0 when it fits. */
static int format_map(const uint8_t *b, uint32_t n_units, char *buf, size_t cap, size_t *len)
{
    const uint32_t n_layers = n_units - 2;
    for (uint32_t w = 0; w < n_units;) {
        uint32_t x = w;
        while (x + 1 < n_units && b[x + 1] == b[w]) x++;
        char a[16], z[16];
        const char *dn = qeil_engine_device_name(b[w]);
        int k;
        if (w == 0 && x == n_units - 1)
            k = snprintf(buf + *len, cap - *len, "all:%s", dn);
        else if (x == w)
            k = snprintf(buf + *len, cap - *len, "%s%s:%s", w ? "," : "",
                         unit_name(w, n_layers, a, sizeof a), dn);
        else
            k = snprintf(buf + *len, cap - *len, "%s%s..%s:%s", w ? "," : "",
                         unit_name(w, n_layers, a, sizeof a), unit_name(x, n_layers, z, sizeof z), dn);
        if (k < 0 || (size_t)k >= cap - *len) return -1;
        *len += (size_t)k;
        w = x + 1;
    }
    return 0;
}

qeil_status qeil_placement_format(const uint8_t *prefill, const uint8_t *decode, uint32_t n_units,
                                  char *buf, size_t cap)
{
    if (!prefill || !buf || cap == 0 || n_units < 3) return QEIL_ERR_INVALID;
    buf[0] = '\0';
    for (uint32_t u = 0; u < n_units; u++)
        if (!qeil_engine_device_name(prefill[u]) || (decode && !qeil_engine_device_name(decode[u])))
            return QEIL_ERR_INVALID;
    size_t len = 0;
    const int split = decode && memcmp(prefill, decode, n_units) != 0;
    int bad = 0;
    if (split) {
        bad = snprintf(buf, cap, "prefill=") >= (int)cap;
        len = bad ? 0 : 8;
    }
    bad = bad || format_map(prefill, n_units, buf, cap, &len) != 0;
    if (split && !bad) {
        int k = snprintf(buf + len, cap - len, ";decode=");
        bad = k < 0 || (size_t)k >= cap - len;
        if (!bad) len += (size_t)k;
        bad = bad || format_map(decode, n_units, buf, cap, &len) != 0;
    }
    if (bad) {
        buf[0] = '\0';
        return QEIL_ERR_RANGE;
    }
    return QEIL_OK;
}

/* ---- QEIL_FAULT=DEVICE:KIND:N ---- */

qeil_status qeil_fault_parse(qeil_ctx *ctx, const char *spec, qeil_fault *out)
{
    if (!spec || !out) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "fault: NULL argument");
    const char *c1 = strchr(spec, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c1 || !c2 || strchr(c2 + 1, ':'))
        return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT,
                             "fault: '%.80s' is not DEVICE:KIND:N (e.g. vk0:error:120)", spec);
    const int dev = parse_device_as(ctx, "fault", spec, (size_t)(c1 - spec));
    if (dev < 0) return QEIL_ERR_NOTFOUND;
    const char *k = c1 + 1;
    const size_t kn = (size_t)(c2 - k);
    qeil_fault f;
    memset(&f, 0, sizeof f);
    f.device = (uint8_t)dev;
    if (kn == 5 && memcmp(k, "error", 5) == 0) f.kind = QEIL_FAULT_ERROR;
    else if (kn == 4 && memcmp(k, "hang", 4) == 0) f.kind = QEIL_FAULT_HANG;
    else if (kn == 3 && memcmp(k, "oom", 3) == 0) f.kind = QEIL_FAULT_OOM;
    else
        return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT,
                             "fault: kind '%.*s' is not one of error, hang, oom", (int)kn, k);
    qeil_status st = qeil_parse_u64(ctx, "fault: op N", c2 + 1, 1, UINT64_C(1) << 63, &f.op);
    if (st != QEIL_OK) return st;
    *out = f;
    return QEIL_OK;
}
