/* profile_json.c — platform profiles as JSON (format: docs/profiles.md).
 *
 * Reading is strict: every key is known, present when required, of the
 * right JSON type, each object key appears once; then qeil_platform_validate
 * does the numeric range checks. Nothing is clamped or repaired. Writing
 * builds a cJSON tree in a fixed key order and prints it with cJSON's
 * formatted layout, every double as the shortest of %.15g/%.16g/%.17g that
 * reads back bit-exactly (a raw item: cJSON's own number printing is not
 * exact), so to_json -> parse is the identity. */
#include "qeil/device.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PROFILE_VERSION 1
#define PROFILE_MAX_B (1u << 20) /* 1 MiB: a real profile is a few KiB */

/* ------------------------------------------------------------------------ */
/* Reading                                                                   */
/* ------------------------------------------------------------------------ */

/* cJSON's allocations go through the parsing ctx's allocator. cJSON's hooks
 * (cJSON_InitHooks) are process-global and take no user pointer, while a
 * qeil allocator belongs to a ctx; so the hooks are installed once, at the
 * first parse, and route by a thread-local pointer: to the ctx of the parse
 * running on this thread, and elsewhere to malloc/free, cJSON's defaults,
 * so the process's other cJSON use is unchanged. The cost of the choice:
 * hooks an application installs itself are replaced at the first profile
 * parse, and hooks it installs later take the parser's allocations too
 * (docs/profiles.md, "Memory"). */
static _Thread_local qeil_ctx *json_ctx;
static _Thread_local int json_oom; /* an allocation failed in this parse */

static void *json_malloc(size_t n)
{
    void *p = qeil_malloc(json_ctx, n);
    if (!p) json_oom = 1;
    return p;
}

static void json_free(void *p) { qeil_free(json_ctx, p); }

static pthread_once_t json_hooks_once = PTHREAD_ONCE_INIT;

static void json_hooks_install(void)
{
    cJSON_Hooks h = {json_malloc, json_free};
    cJSON_InitHooks(&h);
}

static const char *json_type_name(const cJSON *j)
{
    if (!j) return "nothing";
    if (cJSON_IsNumber(j)) return "a number";
    if (cJSON_IsString(j)) return "a string";
    if (cJSON_IsBool(j)) return "a boolean";
    if (cJSON_IsNull(j)) return "null";
    if (cJSON_IsArray(j)) return "an array";
    if (cJSON_IsObject(j)) return "an object";
    return "an invalid value";
}

/* Unknown and duplicate keys are errors: a typo ("etamem") must not
 * silently fall back to nothing. `keys` is NULL-terminated. */
static qeil_status check_keys(qeil_ctx *ctx, const char *path, const cJSON *obj,
                              const char *const *keys)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, obj)
    {
        int known = 0;
        for (const char *const *k = keys; *k; k++)
            if (strcmp(c->string, *k) == 0) known = 1;
        if (!known) {
            char allowed[400];
            size_t used = 0;
            allowed[0] = '\0';
            for (const char *const *k = keys; *k; k++) {
                int w = snprintf(allowed + used, sizeof allowed - used, "%s%s",
                                 k == keys ? "" : ", ", *k);
                if (w < 0 || (size_t)w >= sizeof allowed - used) break;
                used += (size_t)w;
            }
            return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "%s%s%.64s: unknown key (allowed keys: %s)",
                                 path, *path ? "." : "", c->string, allowed);
        }
        for (const cJSON *d = obj->child; d != c; d = d->next)
            if (strcmp(d->string, c->string) == 0)
                return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "%s%s%.64s: duplicate key", path,
                                     *path ? "." : "", c->string);
    }
    return QEIL_OK;
}

static void join(char *buf, size_t n, const char *path, const char *key)
{
    snprintf(buf, n, "%s%s%s", path, *path ? "." : "", key);
}

/* Required member of the wanted JSON type (one of the cJSON_* type bits). */
static qeil_status get(qeil_ctx *ctx, const char *path, const cJSON *obj, const char *key,
                       int type, const cJSON **out)
{
    char f[128];
    join(f, sizeof f, path, key);
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!j) return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "%s: missing (required)", f);
    if ((j->type & 0xff) != type) {
        const char *want = type == cJSON_Number ? "a number"
                         : type == cJSON_String ? "a string"
                         : type == cJSON_Array  ? "an array"
                                                : "an object";
        return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "%s: expected %s, found %s", f, want,
                             json_type_name(j));
    }
    *out = j;
    return QEIL_OK;
}

#define TRY(expr)                          \
    do {                                   \
        qeil_status st_ = (expr);          \
        if (st_ != QEIL_OK) return st_;    \
    } while (0)

static qeil_status get_num(qeil_ctx *ctx, const char *path, const cJSON *obj, const char *key,
                           double *out)
{
    const cJSON *j;
    TRY(get(ctx, path, obj, key, cJSON_Number, &j));
    *out = j->valuedouble; /* range checks (incl. inf from 1e999) are validate's job */
    return QEIL_OK;
}

/* An integer-valued number in [lo, hi]. */
static qeil_status get_int(qeil_ctx *ctx, const char *path, const cJSON *obj, const char *key,
                           int lo, int hi, int *out)
{
    double v;
    TRY(get_num(ctx, path, obj, key, &v));
    if (!(v >= lo && v <= hi) || v != floor(v)) {
        char f[128];
        join(f, sizeof f, path, key);
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                             "%s: %.17g is out of range (allowed an integer %d..%d)", f, v, lo, hi);
    }
    *out = (int)v;
    return QEIL_OK;
}

static qeil_status get_str(qeil_ctx *ctx, const char *path, const cJSON *obj, const char *key,
                           char *dst, size_t cap)
{
    const cJSON *j;
    TRY(get(ctx, path, obj, key, cJSON_String, &j));
    size_t n = strlen(j->valuestring);
    if (n >= cap) {
        char f[128];
        join(f, sizeof f, path, key);
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "%s: %zu bytes long (allowed at most %zu)", f, n,
                             cap - 1);
    }
    memcpy(dst, j->valuestring, n + 1);
    return QEIL_OK;
}

/* A string naming one of `n` choices; its index in *out. */
static qeil_status get_enum(qeil_ctx *ctx, const char *path, const cJSON *obj, const char *key,
                            const char *const *names, int n, int *out)
{
    const cJSON *j;
    TRY(get(ctx, path, obj, key, cJSON_String, &j));
    char allowed[128];
    size_t used = 0;
    allowed[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (strcmp(j->valuestring, names[i]) == 0) {
            *out = i;
            return QEIL_OK;
        }
        int w = snprintf(allowed + used, sizeof allowed - used, "%s%s", i ? ", " : "", names[i]);
        if (w > 0 && (size_t)w < sizeof allowed - used) used += (size_t)w;
    }
    char f[128];
    join(f, sizeof f, path, key);
    return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "%s: '%.64s' is not one of %s", f, j->valuestring,
                         allowed);
}

/* A pool name -> its index. */
static qeil_status get_pool_ref(qeil_ctx *ctx, const char *path, const cJSON *obj, const char *key,
                                const qeil_platform *pf, int *out)
{
    char name[QEIL_NAME_MAX];
    TRY(get_str(ctx, path, obj, key, name, sizeof name));
    for (int i = 0; i < pf->n_pools; i++)
        if (strcmp(pf->pools[i].name, name) == 0) {
            *out = i;
            return QEIL_OK;
        }
    char pools[QEIL_MAX_POOLS * (QEIL_NAME_MAX + 2)];
    size_t used = 0;
    pools[0] = '\0';
    for (int i = 0; i < pf->n_pools; i++) {
        int w = snprintf(pools + used, sizeof pools - used, "%s%s", i ? ", " : "",
                         pf->pools[i].name);
        if (w > 0 && (size_t)w < sizeof pools - used) used += (size_t)w;
    }
    char f[128];
    join(f, sizeof f, path, key);
    return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "%s: '%s' is not a pool of this profile (pools: %s)",
                         f, name, pools);
}

/* An array of 0..max entries. */
static qeil_status get_array(qeil_ctx *ctx, const char *path, const cJSON *obj, const char *key,
                             int min, int max, const cJSON **out, int *n)
{
    TRY(get(ctx, path, obj, key, cJSON_Array, out));
    int cnt = cJSON_GetArraySize(*out);
    if (cnt < min || cnt > max) {
        char f[128];
        join(f, sizeof f, path, key);
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "%s: %d entries (allowed %d..%d)", f, cnt, min,
                             max);
    }
    *n = cnt;
    return QEIL_OK;
}

static qeil_status expect_object(qeil_ctx *ctx, const char *path, const cJSON *j)
{
    if (cJSON_IsObject(j)) return QEIL_OK;
    return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "%s: expected an object, found %s", path,
                         json_type_name(j));
}

/* {"f32": x, "f16": x, "int8": x, "int4": x}; an omitted type is 0. */
static qeil_status get_per_dtype(qeil_ctx *ctx, const char *path, const cJSON *obj,
                                 const char *key, double out[QEIL_DT_COUNT])
{
    static const char *const keys[] = {"f32", "f16", "int8", "int4", NULL};
    const cJSON *o;
    char f[128];
    join(f, sizeof f, path, key);
    TRY(get(ctx, path, obj, key, cJSON_Object, &o));
    TRY(check_keys(ctx, f, o, keys));
    for (int t = 0; t < QEIL_DT_COUNT; t++) {
        out[t] = 0;
        if (cJSON_GetObjectItemCaseSensitive(o, keys[t])) TRY(get_num(ctx, f, o, keys[t], &out[t]));
    }
    return QEIL_OK;
}

static const char *const kind_names[] = {"cpu", "gpu", "igpu", "npu"};
static const char *const source_names[] = {"datasheet", "measured", "default"};

static qeil_status parse_unit(qeil_ctx *ctx, const char *path, const cJSON *j, qeil_platform *pf,
                              qeil_unit *u)
{
    static const char *const keys[] = {
        "name",         "kind",         "pool",        "peak_ops",        "mem_bw_Bps",
        "eta_compute",  "eta_mem",      "e_op_J",      "e_byte_J",        "p_const_W",
        "p_leak_ref_W", "t_leak_ref_C", "leak_kappa_perK", "r_th_KpW",    "c_th_JpK",
        "t_amb_C",      "t_max_C",      "dvfs",        "dvfs_nominal",    "source",
        "step_s",       "device",       "op_s",        "attn_pf_flop_s",  "attn_dc_flop_s",
        NULL};
    TRY(expect_object(ctx, path, j));
    TRY(check_keys(ctx, path, j, keys));
    int k;
    TRY(get_str(ctx, path, j, "name", u->name, sizeof u->name));
    TRY(get_enum(ctx, path, j, "kind", kind_names, 4, &k));
    u->kind = (qeil_unit_kind)k;
    TRY(get_pool_ref(ctx, path, j, "pool", pf, &u->pool));
    TRY(get_per_dtype(ctx, path, j, "peak_ops", u->peak_ops));
    TRY(get_num(ctx, path, j, "mem_bw_Bps", &u->mem_bw_Bps));
    TRY(get_num(ctx, path, j, "eta_compute", &u->eta_compute));
    TRY(get_num(ctx, path, j, "eta_mem", &u->eta_mem));
    TRY(get_per_dtype(ctx, path, j, "e_op_J", u->e_op_J));
    TRY(get_num(ctx, path, j, "e_byte_J", &u->e_byte_J));
    TRY(get_num(ctx, path, j, "p_const_W", &u->p_const_W));
    TRY(get_num(ctx, path, j, "p_leak_ref_W", &u->p_leak_ref_W));
    TRY(get_num(ctx, path, j, "t_leak_ref_C", &u->t_leak_ref_C));
    TRY(get_num(ctx, path, j, "leak_kappa_perK", &u->leak_kappa_perK));
    TRY(get_num(ctx, path, j, "r_th_KpW", &u->r_th_KpW));
    TRY(get_num(ctx, path, j, "c_th_JpK", &u->c_th_JpK));
    TRY(get_num(ctx, path, j, "t_amb_C", &u->t_amb_C));
    TRY(get_num(ctx, path, j, "t_max_C", &u->t_max_C));
    u->step_s = 0; /* optional: written by `qeil calibrate` */
    if (cJSON_GetObjectItemCaseSensitive(j, "step_s"))
        TRY(get_num(ctx, path, j, "step_s", &u->step_s));
    u->op_s = 0; /* optional: written by `qeil calibrate` */
    if (cJSON_GetObjectItemCaseSensitive(j, "op_s")) TRY(get_num(ctx, path, j, "op_s", &u->op_s));
    u->attn_pf_flop_s = u->attn_dc_flop_s = 0; /* optional: written by `qeil calibrate` */
    if (cJSON_GetObjectItemCaseSensitive(j, "attn_pf_flop_s"))
        TRY(get_num(ctx, path, j, "attn_pf_flop_s", &u->attn_pf_flop_s));
    if (cJSON_GetObjectItemCaseSensitive(j, "attn_dc_flop_s"))
        TRY(get_num(ctx, path, j, "attn_dc_flop_s", &u->attn_dc_flop_s));
    u->device[0] = '\0'; /* optional: the local device (`qeil probe` writes it) */
    if (cJSON_GetObjectItemCaseSensitive(j, "device"))
        TRY(get_str(ctx, path, j, "device", u->device, sizeof u->device));

    const cJSON *arr, *e;
    TRY(get_array(ctx, path, j, "dvfs", 1, QEIL_MAX_DVFS, &arr, &u->n_dvfs));
    static const char *const pt_keys[] = {"freq_Hz", "volt_V", NULL};
    int i = 0;
    cJSON_ArrayForEach(e, arr)
    {
        char p[128];
        snprintf(p, sizeof p, "%s.dvfs[%d]", path, i);
        TRY(expect_object(ctx, p, e));
        TRY(check_keys(ctx, p, e, pt_keys));
        TRY(get_num(ctx, p, e, "freq_Hz", &u->dvfs[i].freq_Hz));
        TRY(get_num(ctx, p, e, "volt_V", &u->dvfs[i].volt_V));
        i++;
    }
    TRY(get_int(ctx, path, j, "dvfs_nominal", 0, u->n_dvfs - 1, &u->dvfs_nominal));

    static const char *const src_keys[] = {"compute", "power", "thermal", NULL};
    const cJSON *src;
    char sp[128];
    join(sp, sizeof sp, path, "source");
    TRY(get(ctx, path, j, "source", cJSON_Object, &src));
    TRY(check_keys(ctx, sp, src, src_keys));
    TRY(get_enum(ctx, sp, src, "compute", source_names, 3, &k));
    u->src_compute = (qeil_source)k;
    TRY(get_enum(ctx, sp, src, "power", source_names, 3, &k));
    u->src_power = (qeil_source)k;
    TRY(get_enum(ctx, sp, src, "thermal", source_names, 3, &k));
    u->src_thermal = (qeil_source)k;
    return QEIL_OK;
}

/* 1-based line and column of byte offset `off`, for syntax errors. */
static void line_col(const char *s, size_t off, size_t *line, size_t *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off; i++) {
        if (s[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

static qeil_status parse_root(qeil_ctx *ctx, const cJSON *root, qeil_platform *pf)
{
    static const char *const keys[] = {"qeil_profile_version", "name", "description", "rho_max",
                                       "pools", "links", "units", NULL};
    if (!cJSON_IsObject(root))
        return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT,
                             "profile: the top level must be a JSON object, found %s",
                             json_type_name(root));
    TRY(check_keys(ctx, "", root, keys));
    const cJSON *v;
    TRY(get(ctx, "", root, "qeil_profile_version", cJSON_Number, &v));
    double ver = v->valuedouble;
    if (ver != PROFILE_VERSION) {
        /* A later integer version is a file from a newer qeil; anything else
         * is simply wrong. */
        int newer = ver > PROFILE_VERSION && ver <= 1e6 && ver == floor(ver);
        return qeil_ctx_fail(ctx, newer ? QEIL_ERR_UNSUPPORTED : QEIL_ERR_RANGE,
                             "qeil_profile_version: %.17g is not supported (allowed %d)", ver,
                             PROFILE_VERSION);
    }
    TRY(get_str(ctx, "", root, "name", pf->name, sizeof pf->name));
    TRY(get_str(ctx, "", root, "description", pf->description, sizeof pf->description));
    TRY(get_num(ctx, "", root, "rho_max", &pf->rho_max));

    const cJSON *arr, *e;
    int i = 0;
    TRY(get_array(ctx, "", root, "pools", 1, QEIL_MAX_POOLS, &arr, &pf->n_pools));
    static const char *const pool_keys[] = {"name", "capacity_B", "bw_Bps", NULL};
    cJSON_ArrayForEach(e, arr)
    {
        char p[64];
        snprintf(p, sizeof p, "pools[%d]", i);
        qeil_pool *pool = &pf->pools[i];
        TRY(expect_object(ctx, p, e));
        TRY(check_keys(ctx, p, e, pool_keys));
        TRY(get_str(ctx, p, e, "name", pool->name, sizeof pool->name));
        TRY(get_num(ctx, p, e, "capacity_B", &pool->capacity_B));
        TRY(get_num(ctx, p, e, "bw_Bps", &pool->bw_Bps));
        i++;
    }
    /* Pool names must be unique before links and units can refer to them. */
    for (int a = 0; a < pf->n_pools; a++)
        for (int b = 0; b < a; b++)
            if (strcmp(pf->pools[a].name, pf->pools[b].name) == 0)
                return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                                     "pools[%d].name: '%s' is already the name of pools[%d] "
                                     "(names must be unique)",
                                     a, pf->pools[a].name, b);

    i = 0;
    TRY(get_array(ctx, "", root, "links", 0, QEIL_MAX_LINKS, &arr, &pf->n_links));
    static const char *const link_keys[] = {"a", "b", "bw_Bps", "e_byte_J", "latency_s", NULL};
    cJSON_ArrayForEach(e, arr)
    {
        char p[64];
        snprintf(p, sizeof p, "links[%d]", i);
        qeil_link *l = &pf->links[i];
        TRY(expect_object(ctx, p, e));
        TRY(check_keys(ctx, p, e, link_keys));
        TRY(get_pool_ref(ctx, p, e, "a", pf, &l->pool_a));
        TRY(get_pool_ref(ctx, p, e, "b", pf, &l->pool_b));
        TRY(get_num(ctx, p, e, "bw_Bps", &l->bw_Bps));
        TRY(get_num(ctx, p, e, "e_byte_J", &l->e_byte_J));
        TRY(get_num(ctx, p, e, "latency_s", &l->latency_s));
        i++;
    }

    i = 0;
    TRY(get_array(ctx, "", root, "units", 1, QEIL_MAX_UNITS, &arr, &pf->n_units));
    cJSON_ArrayForEach(e, arr)
    {
        char p[64];
        snprintf(p, sizeof p, "units[%d]", i);
        TRY(parse_unit(ctx, p, e, pf, &pf->units[i]));
        i++;
    }
    return QEIL_OK;
}

/* Free a tree parsed with json_ctx = ctx through the same allocator. */
static void json_delete(qeil_ctx *ctx, cJSON *root)
{
    json_ctx = ctx;
    cJSON_Delete(root);
    json_ctx = NULL;
}

qeil_status qeil_platform_parse_json(qeil_ctx *ctx, const char *json, size_t len,
                                     qeil_platform *out)
{
    if (!json || !out)
        return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "qeil_platform_parse_json: NULL argument");
    if (len > PROFILE_MAX_B)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "profile: %zu bytes (allowed at most %u)", len,
                             PROFILE_MAX_B);
    const char *end = NULL;
    pthread_once(&json_hooks_once, json_hooks_install);
    json_ctx = ctx;
    json_oom = 0;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    int oom = json_oom;
    json_ctx = NULL;
    if (!root && oom) return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "profile: out of memory parsing the JSON");
    if (!root) {
        size_t off = end && end >= json && end <= json + len ? (size_t)(end - json) : 0, line, col;
        line_col(json, off, &line, &col);
        return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT,
                             "profile: JSON syntax error at line %zu, column %zu%s", line, col,
                             off + 1 >= len ? " (truncated?)" : "");
    }
    /* cJSON stops after the first value; anything but whitespace after it is
     * an error (two concatenated profiles, a stray brace, a NUL). */
    for (const char *p = end; p && p < json + len; p++) {
        if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') continue;
        size_t line, col;
        line_col(json, (size_t)(p - json), &line, &col);
        json_delete(ctx, root);
        return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT,
                             "profile: unexpected data after the JSON value at line %zu, column %zu",
                             line, col);
    }
    /* a name or text holding \u0000 would be cut there without a word */
    size_t nul = qeil_json_find_nul(json, len);
    if (nul < len) {
        size_t line, col;
        line_col(json, nul, &line, &col);
        cJSON_Delete(root);
        return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT,
                             "profile: a string holds \\u0000 (NUL) at line %zu, column %zu "
                             "(not allowed: names and text would be cut there)",
                             line, col);
    }
    qeil_platform *pf = qeil_calloc(ctx, 1, sizeof *pf);
    if (!pf) {
        json_delete(ctx, root);
        return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "profile: out of memory");
    }
    qeil_status st = parse_root(ctx, root, pf);
    json_delete(ctx, root);
    if (st == QEIL_OK) st = qeil_platform_validate(ctx, pf);
    if (st == QEIL_OK) *out = *pf;
    qeil_free(ctx, pf);
    return st;
}

/* Re-record the current message with a "PATH: " prefix. */
static qeil_status prefix_path(qeil_ctx *ctx, qeil_status st, const char *path)
{
    char msg[512];
    snprintf(msg, sizeof msg, "%s", qeil_ctx_errmsg(ctx));
    return qeil_ctx_fail(ctx, st, "%s: %s", path, msg);
}

qeil_status qeil_platform_read_file(qeil_ctx *ctx, const char *path, qeil_platform *out)
{
    if (!path || !out)
        return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "qeil_platform_read_file: NULL argument");
    FILE *f = fopen(path, "rb");
    if (!f) return qeil_ctx_fail(ctx, QEIL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    /* Read at most one byte more than allowed: that byte proves the file is
     * too big without trusting a size from stat (pipes, /proc files). */
    char *buf = qeil_malloc(ctx, PROFILE_MAX_B + 1);
    if (!buf) {
        fclose(f);
        return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t n = fread(buf, 1, PROFILE_MAX_B + 1, f);
    int err = ferror(f);
    int saved = errno;
    fclose(f);
    qeil_status st;
    if (err)
        st = qeil_ctx_fail(ctx, QEIL_ERR_IO, "%s: read error: %s", path, strerror(saved));
    else if (n > PROFILE_MAX_B)
        st = qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "%s: larger than %u bytes (the profile size limit)",
                           path, PROFILE_MAX_B);
    else if ((st = qeil_platform_parse_json(ctx, buf, n, out)) != QEIL_OK)
        st = prefix_path(ctx, st, path);
    qeil_free(ctx, buf);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Writing                                                                   */
/* ------------------------------------------------------------------------ */

/* Shortest %.15g/%.16g/%.17g that reads back as exactly v. printf and
 * strtod agree on the C locale's decimal point; JSON wants '.', so a comma
 * from a caller's setlocale(LC_NUMERIC, ...) is turned back into '.'. */
static void fmt_num(char *buf, size_t n, double v)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    for (char *p = buf; *p; p++)
        if (*p == ',') *p = '.';
}

/* A number member. Not cJSON_AddNumberToObject: cJSON 1.7 prints %1.15g
 * whenever that reads back within DBL_EPSILON relative (compare_double), so
 * 0.30000000000000004 comes back as 0.3, one ulp off, and -0 as 0; the
 * profile's numbers must read back bit for bit. A raw item is printed as
 * given. An allocation failure is seen by json_oom. */
static void add_num(cJSON *obj, const char *key, double v)
{
    char t[40];
    fmt_num(t, sizeof t, v);
    cJSON_AddRawToObject(obj, key, t);
}

static void add_dtypes(cJSON *obj, const char *key, const double v[QEIL_DT_COUNT])
{
    cJSON *o = cJSON_AddObjectToObject(obj, key);
    if (!o) return;
    for (int t = 0; t < QEIL_DT_COUNT; t++) add_num(o, qeil_dtype_name((qeil_dtype)t), v[t]);
}

/* Adds item to array, or frees it when the array is missing (out of memory). */
static cJSON *push(cJSON *arr, cJSON *item)
{
    if (!item) return NULL;
    if (!arr || !cJSON_AddItemToArray(arr, item)) {
        cJSON_Delete(item);
        return NULL;
    }
    return item;
}

/* The profile as a cJSON tree, keys in the order of docs/profiles.md §3;
 * NULL (or a tree missing members, with json_oom set) when out of memory. */
static cJSON *platform_tree(const qeil_platform *pf)
{
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    cJSON_AddNumberToObject(root, "qeil_profile_version", PROFILE_VERSION);
    cJSON_AddStringToObject(root, "name", pf->name);
    cJSON_AddStringToObject(root, "description", pf->description);
    add_num(root, "rho_max", pf->rho_max);

    cJSON *arr = cJSON_AddArrayToObject(root, "pools");
    for (int i = 0; i < pf->n_pools; i++) {
        const qeil_pool *p = &pf->pools[i];
        cJSON *o = push(arr, cJSON_CreateObject());
        if (!o) break;
        cJSON_AddStringToObject(o, "name", p->name);
        add_num(o, "capacity_B", p->capacity_B);
        add_num(o, "bw_Bps", p->bw_Bps);
    }

    arr = cJSON_AddArrayToObject(root, "links");
    for (int i = 0; i < pf->n_links; i++) {
        const qeil_link *l = &pf->links[i];
        cJSON *o = push(arr, cJSON_CreateObject());
        if (!o) break;
        cJSON_AddStringToObject(o, "a", pf->pools[l->pool_a].name);
        cJSON_AddStringToObject(o, "b", pf->pools[l->pool_b].name);
        add_num(o, "bw_Bps", l->bw_Bps);
        add_num(o, "e_byte_J", l->e_byte_J);
        add_num(o, "latency_s", l->latency_s);
    }

    arr = cJSON_AddArrayToObject(root, "units");
    for (int i = 0; i < pf->n_units; i++) {
        const qeil_unit *u = &pf->units[i];
        cJSON *o = push(arr, cJSON_CreateObject());
        if (!o) break;
        cJSON_AddStringToObject(o, "name", u->name);
        if (u->device[0]) cJSON_AddStringToObject(o, "device", u->device);
        cJSON_AddStringToObject(o, "kind", qeil_unit_kind_name(u->kind));
        cJSON_AddStringToObject(o, "pool", pf->pools[u->pool].name);
        add_dtypes(o, "peak_ops", u->peak_ops);
        add_num(o, "mem_bw_Bps", u->mem_bw_Bps);
        add_num(o, "eta_compute", u->eta_compute);
        add_num(o, "eta_mem", u->eta_mem);
        if (u->step_s > 0) add_num(o, "step_s", u->step_s);
        if (u->op_s > 0) add_num(o, "op_s", u->op_s);
        if (u->attn_pf_flop_s > 0) add_num(o, "attn_pf_flop_s", u->attn_pf_flop_s);
        if (u->attn_dc_flop_s > 0) add_num(o, "attn_dc_flop_s", u->attn_dc_flop_s);
        add_dtypes(o, "e_op_J", u->e_op_J);
        add_num(o, "e_byte_J", u->e_byte_J);
        add_num(o, "p_const_W", u->p_const_W);
        add_num(o, "p_leak_ref_W", u->p_leak_ref_W);
        add_num(o, "t_leak_ref_C", u->t_leak_ref_C);
        add_num(o, "leak_kappa_perK", u->leak_kappa_perK);
        add_num(o, "r_th_KpW", u->r_th_KpW);
        add_num(o, "c_th_JpK", u->c_th_JpK);
        add_num(o, "t_amb_C", u->t_amb_C);
        add_num(o, "t_max_C", u->t_max_C);
        cJSON *dv = cJSON_AddArrayToObject(o, "dvfs");
        for (int k = 0; k < u->n_dvfs; k++) {
            cJSON *d = push(dv, cJSON_CreateObject());
            if (!d) break;
            add_num(d, "freq_Hz", u->dvfs[k].freq_Hz);
            add_num(d, "volt_V", u->dvfs[k].volt_V);
        }
        cJSON_AddNumberToObject(o, "dvfs_nominal", u->dvfs_nominal);
        cJSON *src = cJSON_AddObjectToObject(o, "source");
        if (src) {
            cJSON_AddStringToObject(src, "compute", qeil_source_name(u->src_compute));
            cJSON_AddStringToObject(src, "power", qeil_source_name(u->src_power));
            cJSON_AddStringToObject(src, "thermal", qeil_source_name(u->src_thermal));
        }
    }
    return root;
}

qeil_status qeil_platform_to_json(qeil_ctx *ctx, const qeil_platform *pf, char **out)
{
    if (!pf || !out)
        return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "qeil_platform_to_json: NULL argument");
    *out = NULL;
    /* Never write a profile that would not read back. */
    qeil_status st = qeil_platform_validate(ctx, pf);
    if (st != QEIL_OK) return st;

    /* the tree and the text through ctx's allocator (the hooks above): the
     * text is the caller's to qeil_free(ctx, ...) */
    pthread_once(&json_hooks_once, json_hooks_install);
    json_ctx = ctx;
    json_oom = 0;
    cJSON *root = platform_tree(pf);
    char *text = root && !json_oom ? cJSON_Print(root) : NULL;
    size_t len = text ? strlen(text) : 0;
    char *s = text ? qeil_realloc(ctx, text, len + 2) : NULL; /* + the final newline */
    if (text && !s) qeil_free(ctx, text);
    cJSON_Delete(root);
    json_ctx = NULL;
    if (!s) return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "profile: out of memory while serialising");
    s[len] = '\n';
    s[len + 1] = '\0';
    *out = s;
    return QEIL_OK;
}

qeil_status qeil_platform_write_file(qeil_ctx *ctx, const qeil_platform *pf, const char *path)
{
    if (!pf || !path)
        return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "qeil_platform_write_file: NULL argument");
    /* rename() would turn a device node, a FIFO or a symbolic link at path
     * into a regular file: only a regular file (or nothing) is replaced */
    struct stat sb;
    if (lstat(path, &sb) == 0 && !S_ISREG(sb.st_mode))
        return qeil_ctx_fail(ctx, QEIL_ERR_IO,
                             "%s: not a regular file (a symbolic link, device, FIFO or "
                             "directory); not replacing it",
                             path);
    char *json = NULL;
    qeil_status st = qeil_platform_to_json(ctx, pf, &json);
    if (st != QEIL_OK) return st;

    /* The temp file lives in the target's directory so rename() is atomic
     * (same filesystem): readers see the old file or the new one, never half. */
    size_t plen = strlen(path);
    char *tmp = qeil_malloc(ctx, plen + 16);
    if (!tmp) {
        qeil_free(ctx, json);
        return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "%s: out of memory", path);
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp.XXXXXX", 12);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        st = qeil_ctx_fail(ctx, QEIL_ERR_IO, "%s: cannot create a temporary file next to it: %s",
                           path, strerror(errno));
        goto out;
    }
    /* mkstemp makes 0600; a profile is not secret. */
    (void)fchmod(fd, 0644);
    size_t len = strlen(json), done = 0;
    while (done < len) {
        ssize_t w = write(fd, json + done, len - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            st = qeil_ctx_fail(ctx, QEIL_ERR_IO, "%s: write failed: %s", path,
                               w < 0 ? strerror(errno) : "no progress");
            break;
        }
        done += (size_t)w;
    }
    if (st == QEIL_OK && fsync(fd) != 0)
        st = qeil_ctx_fail(ctx, QEIL_ERR_IO, "%s: fsync failed: %s", path, strerror(errno));
    if (close(fd) != 0 && st == QEIL_OK)
        st = qeil_ctx_fail(ctx, QEIL_ERR_IO, "%s: close failed: %s", path, strerror(errno));
    if (st == QEIL_OK && rename(tmp, path) != 0)
        st = qeil_ctx_fail(ctx, QEIL_ERR_IO, "%s: cannot replace: %s", path, strerror(errno));
    if (st != QEIL_OK) unlink(tmp);
out:
    qeil_free(ctx, tmp);
    qeil_free(ctx, json);
    return st;
}
