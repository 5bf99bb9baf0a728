/* gguf.c — GGUF v2/v3 reader, safe on hostile files.
 *
 * Every read goes through a bounded cursor (never past len), every size is
 * computed with overflow checks, every count has a named limit, and every
 * count is also checked against the bytes left in the file *before* memory
 * is allocated for it, so the reader's memory use is O(file header size)
 * whatever the counts say. Byte layout and all rules: docs/gguf.md.
 *
 * What the reader keeps (all allocated once at open, immutable after):
 *   - an arena of NUL-terminated copies of every key, string value, string
 *     array element and tensor name (offsets, not pointers, while parsing,
 *     because the arena grows by realloc);
 *   - per string array, n+1 arena offsets, so element i is O(1);
 *   - numeric arrays as a pointer to their little-endian bytes in the file;
 *   - open-addressing hash indexes of keys and tensor names (FNV-1a).
 */
#include "qeil/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/util.h"

/* ------------------------------------------------------------------------ */
/* Limits and constants                                                      */
/* ------------------------------------------------------------------------ */

#define GGUF_HEADER_BYTES 24 /* magic u32, version u32, two u64 counts */

/* The GGUF spec caps keys at 2^16 - 1 bytes. We apply the same cap to tensor
 * names (ggml itself caps them at 63, but a longer name is not unsafe). */
#define GGUF_MAX_NAME_LEN 65535u

/* The smallest possible encodings, used to refuse a count before allocating
 * for it: a count that could not fit in the bytes left is a lie.
 *   KV pair:     key length u64 + 1 key byte + value type u32 + 1 value byte
 *   tensor info: name length u64 + 1 name byte + n_dims u32 + 1 dim u64
 *                + type u32 + offset u64 */
#define GGUF_MIN_KV_BYTES (8u + 1u + 4u + 1u)
#define GGUF_MIN_TENSOR_BYTES (8u + 1u + 4u + 8u + 4u + 8u)

/* Tensor dims are int64 in ggml: keep every dim and their product there, so
 * consumers can use signed arithmetic on them without another check. */
#define GGUF_MAX_NE ((uint64_t)INT64_MAX)

#define GGUF_VTYPE_COUNT 13 /* value types 0..12 in the spec */

/* ------------------------------------------------------------------------ */
/* Reader state                                                              */
/* ------------------------------------------------------------------------ */

typedef struct {
    size_t off; /* arena offset of the NUL-terminated copy */
    size_t len; /* bytes, without the NUL */
} gguf_name;

typedef union {
    uint64_t u; /* unsigned integers and bool */
    int64_t i;  /* signed integers */
    double f;   /* float32 and float64 */
} gguf_scalar;

typedef struct {
    uint32_t type;      /* qeil_gguf_vtype */
    uint32_t elem_type; /* arrays: element type */
    uint64_t n;         /* arrays: element count */
    gguf_scalar v;      /* scalar values, decoded */
    gguf_name str;      /* string values */
    const uint8_t *raw; /* numeric arrays: first element in the file */
    size_t *str_offs;   /* string arrays: n + 1 arena offsets */
} gguf_kv;

/* Open-addressing hash index; slot holds entry index + 1, 0 when empty. */
typedef struct {
    uint32_t *slots;
    size_t mask;
} gguf_index;

struct qeil_gguf {
    qeil_ctx *ctx; /* allocator; must outlive the reader */
    const uint8_t *data;
    size_t len;
    void *map; /* non-NULL when we own an mmap of len bytes */
    uint32_t version;
    uint32_t alignment;
    size_t data_start; /* file offset of the data section */

    size_t n_kv;
    gguf_kv *kv;
    gguf_name *kv_names; /* kv_names[i] is the key of kv[i] */
    gguf_index kv_index;

    size_t n_tensors;
    qeil_gguf_tensor *tensors;
    gguf_name *tensor_names;
    gguf_index tensor_index;

    char *arena;
    size_t arena_len, arena_cap;
};

/* The bounded cursor plus what to name in an error message. */
typedef struct {
    qeil_gguf *g;
    qeil_ctx *ctx;
    const uint8_t *p;
    size_t len;
    size_t pos;
    char where[128]; /* "metadata pair 3 'general.name'", "tensor 'x'", ... */
} gguf_parser;

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

/* "gguf: WHERE: MESSAGE (at byte AT)"; at = SIZE_MAX leaves the byte out. */
static qeil_status fail_at(gguf_parser *ps, size_t at, const char *fmt, ...) QEIL_PRINTF(3, 4);

static qeil_status fail_at(gguf_parser *ps, size_t at, const char *fmt, ...)
{
    char msg[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *sep = ps->where[0] ? ": " : "";
    if (at == SIZE_MAX)
        return qeil_ctx_fail(ps->ctx, QEIL_ERR_FORMAT, "gguf: %s%s%s", ps->where, sep, msg);
    return qeil_ctx_fail(ps->ctx, QEIL_ERR_FORMAT, "gguf: %s%s%s (at byte %zu)", ps->where,
                         sep, msg, at);
}

/* Name what is being parsed: PREFIX 'NAME', with NAME cut to 80 bytes and
 * control bytes shown as \xNN, so a hostile name cannot put terminal escape
 * sequences into a message the CLI prints. */
static void set_where(gguf_parser *ps, const char *prefix, const char *name)
{
    size_t n = (size_t)snprintf(ps->where, sizeof ps->where, "%s '", prefix);
    for (size_t i = 0; name[i] && i < 80 && n + 6 < sizeof ps->where; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f) n += (size_t)snprintf(ps->where + n, 5, "\\x%02x", c);
        else ps->where[n++] = (char)c;
    }
    snprintf(ps->where + n, sizeof ps->where - n, "'");
}

static qeil_status fail_nomem(gguf_parser *ps, const char *what)
{
    return qeil_ctx_fail(ps->ctx, QEIL_ERR_NOMEM, "gguf: out of memory for %s", what);
}

static const char *vtype_name(uint32_t t)
{
    static const char *const names[GGUF_VTYPE_COUNT] = {
        "uint8", "int8",   "uint16", "int16", "uint32", "int32",  "float32",
        "bool",  "string", "array",  "uint64", "int64", "float64"};
    return t < GGUF_VTYPE_COUNT ? names[t] : "unknown";
}

/* Bytes of one scalar of type t; 0 for string, array and unknown types. */
static size_t vtype_size(uint32_t t)
{
    switch (t) {
    case QEIL_GGUF_UINT8: case QEIL_GGUF_INT8: case QEIL_GGUF_BOOL: return 1;
    case QEIL_GGUF_UINT16: case QEIL_GGUF_INT16: return 2;
    case QEIL_GGUF_UINT32: case QEIL_GGUF_INT32: case QEIL_GGUF_FLOAT32: return 4;
    case QEIL_GGUF_UINT64: case QEIL_GGUF_INT64: case QEIL_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

static int vtype_is_unsigned(uint32_t t)
{
    return t == QEIL_GGUF_UINT8 || t == QEIL_GGUF_UINT16 || t == QEIL_GGUF_UINT32 ||
           t == QEIL_GGUF_UINT64;
}

static int vtype_is_signed(uint32_t t)
{
    return t == QEIL_GGUF_INT8 || t == QEIL_GGUF_INT16 || t == QEIL_GGUF_INT32 ||
           t == QEIL_GGUF_INT64;
}

static int vtype_is_float(uint32_t t)
{
    return t == QEIL_GGUF_FLOAT32 || t == QEIL_GGUF_FLOAT64;
}

/* ------------------------------------------------------------------------ */
/* Little-endian decoding (explicit, so the reader also works on BE hosts)   */
/* ------------------------------------------------------------------------ */

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | ((uint64_t)le32(p + 4) << 32); }

/* Decode one scalar of a fixed-size type t (vtype_size(t) > 0) at p. */
static gguf_scalar decode_scalar(uint32_t t, const uint8_t *p)
{
    gguf_scalar v;
    v.u = 0;
    switch (t) {
    case QEIL_GGUF_UINT8: case QEIL_GGUF_BOOL: v.u = p[0]; break;
    case QEIL_GGUF_INT8: v.i = (int8_t)p[0]; break;
    case QEIL_GGUF_UINT16: v.u = le16(p); break;
    case QEIL_GGUF_INT16: v.i = (int16_t)le16(p); break;
    case QEIL_GGUF_UINT32: v.u = le32(p); break;
    case QEIL_GGUF_INT32: v.i = (int32_t)le32(p); break;
    case QEIL_GGUF_UINT64: v.u = le64(p); break;
    case QEIL_GGUF_INT64: v.i = (int64_t)le64(p); break;
    case QEIL_GGUF_FLOAT32: {
        uint32_t bits = le32(p);
        float f;
        memcpy(&f, &bits, sizeof f);
        v.f = f;
        break;
    }
    case QEIL_GGUF_FLOAT64: {
        uint64_t bits = le64(p);
        memcpy(&v.f, &bits, sizeof v.f);
        break;
    }
    default: break;
    }
    return v;
}

/* ------------------------------------------------------------------------ */
/* Bounded cursor                                                            */
/* ------------------------------------------------------------------------ */

static qeil_status need(gguf_parser *ps, uint64_t n, const char *what)
{
    size_t left = ps->len - ps->pos;
    if (n <= left) return QEIL_OK;
    return fail_at(ps, ps->pos, "truncated %s: needs %llu bytes, %zu left (file size %zu)", what,
                   (unsigned long long)n, left, ps->len);
}

static qeil_status rd_u32(gguf_parser *ps, const char *what, uint32_t *out)
{
    *out = 0;
    qeil_status st = need(ps, 4, what);
    if (st != QEIL_OK) return st;
    *out = le32(ps->p + ps->pos);
    ps->pos += 4;
    return QEIL_OK;
}

static qeil_status rd_u64(gguf_parser *ps, const char *what, uint64_t *out)
{
    *out = 0;
    qeil_status st = need(ps, 8, what);
    if (st != QEIL_OK) return st;
    *out = le64(ps->p + ps->pos);
    ps->pos += 8;
    return QEIL_OK;
}

/* A GGUF string: u64 length, then that many bytes (no NUL). Returns a
 * pointer into the file; max_len is the caller's limit for this string. */
static qeil_status rd_string(gguf_parser *ps, const char *what, uint64_t max_len,
                             const uint8_t **s, size_t *n)
{
    *s = NULL;
    *n = 0;
    size_t at = ps->pos;
    uint64_t len;
    qeil_status st = rd_u64(ps, what, &len);
    if (st != QEIL_OK) return st;
    if (len > max_len)
        return fail_at(ps, at, "%s length %llu exceeds the limit %llu", what,
                       (unsigned long long)len, (unsigned long long)max_len);
    st = need(ps, len, what);
    if (st != QEIL_OK) return st;
    *s = ps->p + ps->pos;
    *n = (size_t)len;
    ps->pos += (size_t)len;
    return QEIL_OK;
}

/* ------------------------------------------------------------------------ */
/* String arena                                                              */
/* ------------------------------------------------------------------------ */

/* Append a NUL-terminated copy of s[0..n) and return its offset. */
static qeil_status arena_add(gguf_parser *ps, const uint8_t *s, size_t n, size_t *off)
{
    qeil_gguf *g = ps->g;
    if (n >= SIZE_MAX - g->arena_len) return fail_nomem(ps, "strings");
    size_t want = g->arena_len + n + 1;
    if (want > g->arena_cap) {
        size_t cap = g->arena_cap ? g->arena_cap : 4096;
        while (cap < want) cap = cap > SIZE_MAX / 2 ? want : cap * 2;
        char *a = qeil_realloc(g->ctx, g->arena, cap);
        if (!a) return fail_nomem(ps, "strings");
        g->arena = a;
        g->arena_cap = cap;
    }
    if (n) memcpy(g->arena + g->arena_len, s, n);
    g->arena[g->arena_len + n] = '\0';
    *off = g->arena_len;
    g->arena_len = want;
    return QEIL_OK;
}

/* ------------------------------------------------------------------------ */
/* Hash index of names (keys, tensor names)                                  */
/* ------------------------------------------------------------------------ */

static uint64_t hash_name(const char *s, size_t n) { return qeil_fnv1a(s, n); }

/* Room for n entries at load factor <= 1/2, so probes stay short. */
static qeil_status index_init(gguf_parser *ps, gguf_index *ix, size_t n)
{
    size_t cap = 8;
    while (cap < 2 * n) cap *= 2;
    ix->slots = qeil_calloc(ps->g->ctx, cap, sizeof *ix->slots);
    if (!ix->slots) return fail_nomem(ps, "the name index");
    ix->mask = cap - 1;
    return QEIL_OK;
}

/* Index of the entry named s[0..n) among names[], or -1. */
static int64_t index_find(const gguf_index *ix, const gguf_name *names, const char *arena,
                          const char *s, size_t n)
{
    if (!ix->slots) return -1;
    for (size_t h = (size_t)hash_name(s, n) & ix->mask;; h = (h + 1) & ix->mask) {
        uint32_t e = ix->slots[h];
        if (e == 0) return -1;
        const gguf_name *nm = &names[e - 1];
        if (nm->len == n && memcmp(arena + nm->off, s, n) == 0) return (int64_t)(e - 1);
    }
}

/* Insert entry i (names[i] already filled); 0 if the name was already there. */
static int index_insert(gguf_index *ix, const gguf_name *names, const char *arena, size_t i)
{
    const char *s = arena + names[i].off;
    size_t n = names[i].len;
    size_t h = (size_t)hash_name(s, n) & ix->mask;
    for (;; h = (h + 1) & ix->mask) {
        uint32_t e = ix->slots[h];
        if (e == 0) break;
        if (names[e - 1].len == n && memcmp(arena + names[e - 1].off, s, n) == 0) return 0;
    }
    ix->slots[h] = (uint32_t)(i + 1);
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Header                                                                    */
/* ------------------------------------------------------------------------ */

static qeil_status parse_version(gguf_parser *ps, uint32_t version)
{
    size_t at = 4;
    if (version == 2 || version == 3) return QEIL_OK;
    if (version == 1)
        return fail_at(ps, at, "version 1 is not supported (GGUF v1 used 32-bit counts; "
                               "re-convert the model; supported versions 2..3)");
    /* A big-endian file stores 2 or 3 byte-swapped; say so instead of
     * "version 50331648". */
    if (version == 0x02000000u || version == 0x03000000u)
        return fail_at(ps, at, "big-endian GGUF files are not supported (little-endian only)");
    return fail_at(ps, at, "version %u is not supported (supported versions 2..3)", version);
}

/* Refuse a count larger than its limit, or one whose smallest encoding
 * would not fit in the bytes left. */
static qeil_status check_count(gguf_parser *ps, size_t at, const char *field, uint64_t count,
                               uint64_t limit, uint64_t min_bytes, uint64_t left)
{
    if (count > limit)
        return fail_at(ps, at, "%s %llu exceeds the limit %llu", field,
                       (unsigned long long)count, (unsigned long long)limit);
    if (count * min_bytes > left)
        return fail_at(ps, at, "%s %llu needs at least %llu bytes, only %llu left", field,
                       (unsigned long long)count, (unsigned long long)(count * min_bytes),
                       (unsigned long long)left);
    return QEIL_OK;
}

static qeil_status parse_header(gguf_parser *ps, uint64_t *n_tensors, uint64_t *n_kv)
{
    if (ps->len < GGUF_HEADER_BYTES)
        return fail_at(ps, SIZE_MAX, "file too small (%zu bytes; the header alone is %d)",
                       ps->len, GGUF_HEADER_BYTES);
    if (memcmp(ps->p, "GGUF", 4) != 0)
        return fail_at(ps, 0, "bad magic %02x %02x %02x %02x (expected \"GGUF\" = 47 47 55 46)",
                       ps->p[0], ps->p[1], ps->p[2], ps->p[3]);
    ps->pos = 4;
    uint32_t version = 0;
    qeil_status st = rd_u32(ps, "version", &version);
    if (st == QEIL_OK) st = parse_version(ps, version);
    if (st == QEIL_OK) st = rd_u64(ps, "tensor_count", n_tensors);
    if (st == QEIL_OK) st = rd_u64(ps, "metadata_kv_count", n_kv);
    if (st != QEIL_OK) return st;
    ps->g->version = version;

    /* Both limits are <= 2^16 and the minimum sizes < 64, so the products
     * below cannot overflow once each count has passed its limit check. */
    uint64_t left = ps->len - ps->pos;
    st = check_count(ps, 8, "tensor_count", *n_tensors, QEIL_GGUF_MAX_TENSORS,
                     GGUF_MIN_TENSOR_BYTES, left);
    if (st != QEIL_OK) return st;
    st = check_count(ps, 16, "metadata_kv_count", *n_kv, QEIL_GGUF_MAX_KV, GGUF_MIN_KV_BYTES,
                     left);
    if (st != QEIL_OK) return st;
    if (*n_tensors * GGUF_MIN_TENSOR_BYTES + *n_kv * GGUF_MIN_KV_BYTES > left)
        return fail_at(ps, 8, "tensor_count %llu and metadata_kv_count %llu need more bytes "
                              "than the %llu left",
                       (unsigned long long)*n_tensors, (unsigned long long)*n_kv,
                       (unsigned long long)left);
    return QEIL_OK;
}

/* ------------------------------------------------------------------------ */
/* Metadata values                                                           */
/* ------------------------------------------------------------------------ */

/* Keys and tensor names: non-empty, no embedded NUL (a C caller could never
 * look such a name up, and two names differing after the NUL would print
 * the same), at most GGUF_MAX_NAME_LEN bytes. */
static qeil_status rd_name(gguf_parser *ps, const char *what, gguf_name *out)
{
    size_t at = ps->pos;
    const uint8_t *s = NULL;
    size_t n = 0;
    qeil_status st = rd_string(ps, what, GGUF_MAX_NAME_LEN, &s, &n);
    if (st != QEIL_OK) return st;
    if (n == 0) return fail_at(ps, at, "empty %s", what);
    if (memchr(s, 0, n)) return fail_at(ps, at, "%s contains a NUL byte", what);
    out->len = n;
    return arena_add(ps, s, n, &out->off);
}

/* A bool is one byte; anything but 0 or 1 is a corrupt file, not "true". */
static qeil_status check_bools(gguf_parser *ps, const uint8_t *p, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        if (p[i] > 1)
            return fail_at(ps, (size_t)(p + i - ps->p), "bool value %u is not 0 or 1", p[i]);
    return QEIL_OK;
}

static qeil_status read_scalar(gguf_parser *ps, gguf_kv *kv)
{
    size_t size = vtype_size(kv->type);
    qeil_status st = need(ps, size, "value");
    if (st != QEIL_OK) return st;
    const uint8_t *p = ps->p + ps->pos;
    if (kv->type == QEIL_GGUF_BOOL && (st = check_bools(ps, p, 1)) != QEIL_OK) return st;
    kv->v = decode_scalar(kv->type, p);
    ps->pos += size;
    return QEIL_OK;
}

static qeil_status read_string_value(gguf_parser *ps, gguf_kv *kv)
{
    const uint8_t *s = NULL;
    size_t n = 0;
    qeil_status st = rd_string(ps, "string value", QEIL_GGUF_MAX_STRING, &s, &n);
    if (st != QEIL_OK) return st;
    kv->str.len = n;
    return arena_add(ps, s, n, &kv->str.off);
}

/* Array of n strings: copy each into the arena, contiguously, and keep n+1
 * offsets so element i is arena[offs[i] .. offs[i+1]-1) in O(1). */
static qeil_status read_string_array(gguf_parser *ps, gguf_kv *kv)
{
    /* every element has at least its u64 length: refuse before allocating */
    size_t at = ps->pos;
    if (kv->n > (ps->len - ps->pos) / 8)
        return fail_at(ps, at, "array of %llu strings needs at least %llu bytes, only %zu left",
                       (unsigned long long)kv->n, (unsigned long long)kv->n * 8,
                       ps->len - ps->pos);
    kv->str_offs = qeil_malloc(ps->g->ctx, ((size_t)kv->n + 1) * sizeof *kv->str_offs);
    if (!kv->str_offs) return fail_nomem(ps, "a string array");
    for (uint64_t i = 0; i < kv->n; i++) {
        const uint8_t *s = NULL;
        size_t n = 0;
        qeil_status st = rd_string(ps, "array string", QEIL_GGUF_MAX_STRING, &s, &n);
        if (st == QEIL_OK) st = arena_add(ps, s, n, &kv->str_offs[i]);
        if (st != QEIL_OK) return st;
    }
    kv->str_offs[kv->n] = ps->g->arena_len;
    return QEIL_OK;
}

static qeil_status read_array(gguf_parser *ps, gguf_kv *kv)
{
    size_t at = ps->pos;
    qeil_status st = rd_u32(ps, "array element type", &kv->elem_type);
    if (st != QEIL_OK) return st;
    /* ggml's own reader refuses nested arrays too; no model uses them. */
    if (kv->elem_type == QEIL_GGUF_ARRAY)
        return fail_at(ps, at, "nested arrays (array of array) are not supported");
    if (kv->elem_type >= GGUF_VTYPE_COUNT)
        return fail_at(ps, at, "unknown array element type %u (known 0..12)", kv->elem_type);
    at = ps->pos;
    if ((st = rd_u64(ps, "array length", &kv->n)) != QEIL_OK) return st;
    if (kv->n > QEIL_GGUF_MAX_ARRAY)
        return fail_at(ps, at, "array length %llu exceeds the limit %u",
                       (unsigned long long)kv->n, QEIL_GGUF_MAX_ARRAY);
    if (kv->elem_type == QEIL_GGUF_STRING) return read_string_array(ps, kv);

    /* n <= 2^24 and size <= 8: the product fits easily */
    uint64_t bytes = kv->n * vtype_size(kv->elem_type);
    if ((st = need(ps, bytes, "array data")) != QEIL_OK) return st;
    kv->raw = ps->p + ps->pos;
    if (kv->elem_type == QEIL_GGUF_BOOL && (st = check_bools(ps, kv->raw, kv->n)) != QEIL_OK)
        return st;
    ps->pos += (size_t)bytes;
    return QEIL_OK;
}

static qeil_status read_value(gguf_parser *ps, gguf_kv *kv)
{
    switch (kv->type) {
    case QEIL_GGUF_STRING: return read_string_value(ps, kv);
    case QEIL_GGUF_ARRAY: return read_array(ps, kv);
    default: return read_scalar(ps, kv);
    }
}

static qeil_status parse_kv(gguf_parser *ps, size_t i)
{
    qeil_gguf *g = ps->g;
    gguf_kv *kv = &g->kv[i];
    snprintf(ps->where, sizeof ps->where, "metadata pair %zu", i);
    size_t at = ps->pos;
    qeil_status st = rd_name(ps, "key", &g->kv_names[i]);
    if (st != QEIL_OK) return st;
    set_where(ps, "key", g->arena + g->kv_names[i].off);
    if (!index_insert(&g->kv_index, g->kv_names, g->arena, i))
        return fail_at(ps, at, "duplicate key");
    at = ps->pos;
    if ((st = rd_u32(ps, "value type", &kv->type)) != QEIL_OK) return st;
    if (kv->type >= GGUF_VTYPE_COUNT)
        return fail_at(ps, at, "unknown value type %u (known 0..12)", kv->type);
    return read_value(ps, kv);
}

/* general.alignment: a uint32 power of two, as the spec requires. Tensor
 * offsets and the data section start are multiples of it. */
static qeil_status parse_alignment(gguf_parser *ps)
{
    qeil_gguf *g = ps->g;
    g->alignment = QEIL_GGUF_DEFAULT_ALIGNMENT;
    int64_t i = qeil_gguf_find_key(g, "general.alignment");
    if (i < 0) return QEIL_OK;
    set_where(ps, "key", "general.alignment");
    const gguf_kv *kv = &g->kv[i];
    if (kv->type != QEIL_GGUF_UINT32)
        return fail_at(ps, SIZE_MAX, "has type %s, must be uint32", vtype_name(kv->type));
    uint64_t a = kv->v.u;
    if (a == 0 || (a & (a - 1)) != 0)
        return fail_at(ps, SIZE_MAX, "value %llu is not a power of two > 0",
                       (unsigned long long)a);
    g->alignment = (uint32_t)a;
    return QEIL_OK;
}

/* ------------------------------------------------------------------------ */
/* Tensor infos                                                              */
/* ------------------------------------------------------------------------ */

static qeil_status read_tensor_name(gguf_parser *ps, size_t i)
{
    qeil_gguf *g = ps->g;
    snprintf(ps->where, sizeof ps->where, "tensor %zu", i);
    size_t at = ps->pos;
    qeil_status st = rd_name(ps, "tensor name", &g->tensor_names[i]);
    if (st != QEIL_OK) return st;
    set_where(ps, "tensor", g->arena + g->tensor_names[i].off);
    if (!index_insert(&g->tensor_index, g->tensor_names, g->arena, i))
        return fail_at(ps, at, "duplicate tensor name");
    return QEIL_OK;
}

/* n_dims in 1..MAX_DIMS, every dim >= 1, their product <= INT64_MAX. */
static qeil_status read_tensor_dims(gguf_parser *ps, qeil_gguf_tensor *t)
{
    size_t at = ps->pos;
    qeil_status st = rd_u32(ps, "n_dims", &t->n_dims);
    if (st != QEIL_OK) return st;
    if (t->n_dims < 1 || t->n_dims > QEIL_GGUF_MAX_DIMS)
        return fail_at(ps, at, "n_dims %u is outside 1..%d", t->n_dims, QEIL_GGUF_MAX_DIMS);
    uint64_t n = 1;
    for (uint32_t d = 0; d < QEIL_GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        at = ps->pos;
        if ((st = rd_u64(ps, "dim", &t->ne[d])) != QEIL_OK) return st;
        if (t->ne[d] == 0) return fail_at(ps, at, "ne[%u] = 0 (dims must be >= 1)", d);
        if (t->ne[d] > GGUF_MAX_NE / n)
            return fail_at(ps, at, "element count overflows: ne[%u] = %llu times %llu > 2^63-1", d,
                           (unsigned long long)t->ne[d], (unsigned long long)n);
        n *= t->ne[d];
    }
    t->n_elems = n;
    return QEIL_OK;
}

/* A known type, rows made of whole blocks, size in bytes without overflow. */
static qeil_status read_tensor_type(gguf_parser *ps, qeil_gguf_tensor *t)
{
    size_t at = ps->pos;
    uint32_t type = 0;
    qeil_status st = rd_u32(ps, "tensor type", &type);
    if (st != QEIL_OK) return st;
    if (type >= QEIL_GGML_TYPE_LIMIT || !qeil_ggml_type_name((int)type))
        return fail_at(ps, at, "unknown tensor type %u", type);
    t->type = (int)type;
    uint32_t blk = qeil_ggml_block_elems(t->type);
    if (t->ne[0] % blk != 0)
        return fail_at(ps, at, "ne[0] = %llu is not a multiple of the %s block size %u",
                       (unsigned long long)t->ne[0], qeil_ggml_type_name(t->type), blk);
    int ok;
    t->nbytes = qeil_ggml_nbytes(t->type, t->n_elems, &ok);
    if (!ok)
        return fail_at(ps, at, "size of %llu %s elements overflows",
                       (unsigned long long)t->n_elems, qeil_ggml_type_name(t->type));
    return QEIL_OK;
}

static qeil_status read_tensor_offset(gguf_parser *ps, qeil_gguf_tensor *t)
{
    size_t at = ps->pos;
    qeil_status st = rd_u64(ps, "data offset", &t->offset);
    if (st != QEIL_OK) return st;
    if (t->offset % ps->g->alignment != 0)
        return fail_at(ps, at, "data offset %llu is not a multiple of the alignment %u",
                       (unsigned long long)t->offset, ps->g->alignment);
    return QEIL_OK;
}

static qeil_status parse_tensor_info(gguf_parser *ps, size_t i)
{
    qeil_gguf_tensor *t = &ps->g->tensors[i];
    qeil_status st = read_tensor_name(ps, i);
    if (st == QEIL_OK) st = read_tensor_dims(ps, t);
    if (st == QEIL_OK) st = read_tensor_type(ps, t);
    if (st == QEIL_OK) st = read_tensor_offset(ps, t);
    return st;
}

/* Every tensor's bytes lie inside the file. Overlap between tensors is not
 * checked: it is odd but cannot make a read go out of bounds. */
static qeil_status check_tensor_data(gguf_parser *ps, size_t i)
{
    qeil_gguf *g = ps->g;
    const qeil_gguf_tensor *t = &g->tensors[i];
    set_where(ps, "tensor", g->arena + g->tensor_names[i].off);
    uint64_t start = (uint64_t)g->data_start;
    if (t->offset > UINT64_MAX - start || t->nbytes > UINT64_MAX - start - t->offset)
        return fail_at(ps, SIZE_MAX, "data offset %llu + size %llu overflows",
                       (unsigned long long)t->offset, (unsigned long long)t->nbytes);
    uint64_t begin = start + t->offset, end = begin + t->nbytes;
    if (end > (uint64_t)g->len)
        return fail_at(ps, SIZE_MAX, "data [%llu, %llu) extends past end of file (size %zu)",
                       (unsigned long long)begin, (unsigned long long)end, g->len);
    return QEIL_OK;
}

/* ------------------------------------------------------------------------ */
/* Whole file                                                                */
/* ------------------------------------------------------------------------ */

static qeil_status alloc_tables(gguf_parser *ps, size_t n_kv, size_t n_tensors)
{
    qeil_gguf *g = ps->g;
    g->kv = qeil_calloc(g->ctx, n_kv, sizeof *g->kv);
    g->kv_names = qeil_calloc(g->ctx, n_kv, sizeof *g->kv_names);
    g->tensors = qeil_calloc(g->ctx, n_tensors, sizeof *g->tensors);
    g->tensor_names = qeil_calloc(g->ctx, n_tensors, sizeof *g->tensor_names);
    if (!g->kv || !g->kv_names || !g->tensors || !g->tensor_names)
        return fail_nomem(ps, "the metadata tables");
    /* counts of allocated entries; lookups only see entries already indexed */
    g->n_kv = n_kv;
    g->n_tensors = n_tensors;
    qeil_status st = index_init(ps, &g->kv_index, n_kv);
    if (st == QEIL_OK) st = index_init(ps, &g->tensor_index, n_tensors);
    return st;
}

/* The data section starts at the first multiple of the alignment at or
 * after the end of the tensor infos. A file without tensors may end before
 * that padding; one with tensors must not. */
static qeil_status locate_data(gguf_parser *ps)
{
    qeil_gguf *g = ps->g;
    uint64_t a = g->alignment;
    uint64_t start = ((uint64_t)ps->pos + a - 1) / a * a; /* pos < 2^63, a < 2^32 */
    if (start > g->len && g->n_tensors > 0) {
        ps->where[0] = '\0';
        return fail_at(ps, SIZE_MAX,
                       "data section would start at byte %llu, past end of file (size %zu)",
                       (unsigned long long)start, g->len);
    }
    g->data_start = start > g->len ? g->len : (size_t)start;
    return QEIL_OK;
}

static qeil_status parse_all(gguf_parser *ps)
{
    qeil_gguf *g = ps->g;
    uint64_t n_tensors = 0, n_kv = 0;
    qeil_status st = parse_header(ps, &n_tensors, &n_kv);
    if (st == QEIL_OK) st = alloc_tables(ps, (size_t)n_kv, (size_t)n_tensors);
    for (size_t i = 0; st == QEIL_OK && i < g->n_kv; i++) st = parse_kv(ps, i);
    if (st == QEIL_OK) st = parse_alignment(ps);
    for (size_t i = 0; st == QEIL_OK && i < g->n_tensors; i++) st = parse_tensor_info(ps, i);
    if (st == QEIL_OK) st = locate_data(ps);
    for (size_t i = 0; st == QEIL_OK && i < g->n_tensors; i++) st = check_tensor_data(ps, i);
    if (st != QEIL_OK) return st;
    for (size_t i = 0; i < g->n_tensors; i++)
        g->tensors[i].name = g->arena + g->tensor_names[i].off;
    return QEIL_OK;
}

/* ------------------------------------------------------------------------ */
/* Open / free                                                               */
/* ------------------------------------------------------------------------ */

void qeil_gguf_free(qeil_gguf *g)
{
    if (!g) return;
    qeil_ctx *ctx = g->ctx;
    for (size_t i = 0; g->kv && i < g->n_kv; i++) qeil_free(ctx, g->kv[i].str_offs);
    qeil_free(ctx, g->kv);
    qeil_free(ctx, g->kv_names);
    qeil_free(ctx, g->kv_index.slots);
    qeil_free(ctx, g->tensors);
    qeil_free(ctx, g->tensor_names);
    qeil_free(ctx, g->tensor_index.slots);
    qeil_free(ctx, g->arena);
    if (g->map) munmap(g->map, g->len);
    qeil_free(ctx, g);
}

qeil_status qeil_gguf_from_memory(qeil_ctx *ctx, const void *data, size_t len, qeil_gguf **out)
{
    if (!out || (!data && len > 0))
        return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "gguf: from_memory: NULL %s",
                             out ? "data" : "out");
    *out = NULL;
    qeil_gguf *g = qeil_calloc(ctx, 1, sizeof *g);
    if (!g) return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "gguf: out of memory");
    g->ctx = ctx;
    g->data = data;
    g->len = len;
    gguf_parser ps;
    memset(&ps, 0, sizeof ps);
    ps.g = g;
    ps.ctx = ctx;
    ps.p = data;
    ps.len = len;
    qeil_status st = parse_all(&ps);
    if (st != QEIL_OK) {
        qeil_gguf_free(g);
        return st;
    }
    *out = g;
    return QEIL_OK;
}

/* Append " (file 'PATH')" to the message a parse failure left on ctx. */
static qeil_status fail_with_path(qeil_ctx *ctx, qeil_status st, const char *path)
{
    char msg[400];
    snprintf(msg, sizeof msg, "%s", qeil_ctx_errmsg(ctx));
    return qeil_ctx_fail(ctx, st, "%s (file '%s')", msg, path);
}

qeil_status qeil_gguf_open(qeil_ctx *ctx, const char *path, qeil_gguf **out)
{
    if (!path || !out)
        return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "gguf: open: NULL %s", path ? "out" : "path");
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return qeil_ctx_fail(ctx, QEIL_ERR_IO, "gguf: cannot open '%s': %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return qeil_ctx_fail(ctx, QEIL_ERR_IO, "gguf: cannot stat '%s': %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return qeil_ctx_fail(ctx, QEIL_ERR_IO, "gguf: '%s' is not a regular file", path);
    }
    if (sb.st_size < GGUF_HEADER_BYTES) {
        close(fd);
        return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT,
                             "gguf: '%s' is too small to be a GGUF file (%lld bytes; the header "
                             "alone is %d)",
                             path, (long long)sb.st_size, GGUF_HEADER_BYTES);
    }
    if ((uint64_t)sb.st_size > (uint64_t)SIZE_MAX) {
        close(fd);
        return qeil_ctx_fail(ctx, QEIL_ERR_UNSUPPORTED,
                             "gguf: '%s' (%lld bytes) is too large to map on this machine", path,
                             (long long)sb.st_size);
    }
    size_t len = (size_t)sb.st_size;
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    int map_errno = errno;
    close(fd); /* the mapping keeps the file open */
    if (map == MAP_FAILED)
        return qeil_ctx_fail(ctx, QEIL_ERR_IO, "gguf: cannot map '%s': %s", path,
                             strerror(map_errno));
    qeil_gguf *g = NULL;
    qeil_status st = qeil_gguf_from_memory(ctx, map, len, &g);
    if (st != QEIL_OK) {
        munmap(map, len);
        return fail_with_path(ctx, st, path);
    }
    g->map = map;
    *out = g;
    return QEIL_OK;
}

/* ------------------------------------------------------------------------ */
/* File-level getters                                                        */
/* ------------------------------------------------------------------------ */

uint32_t qeil_gguf_version(const qeil_gguf *g) { return g ? g->version : 0; }
uint32_t qeil_gguf_alignment(const qeil_gguf *g) { return g ? g->alignment : 0; }
size_t qeil_gguf_file_size(const qeil_gguf *g) { return g ? g->len : 0; }

/* ------------------------------------------------------------------------ */
/* Metadata getters                                                          */
/* ------------------------------------------------------------------------ */

size_t qeil_gguf_n_kv(const qeil_gguf *g) { return g ? g->n_kv : 0; }

int64_t qeil_gguf_find_key(const qeil_gguf *g, const char *key)
{
    if (!g || !key) return -1;
    return index_find(&g->kv_index, g->kv_names, g->arena, key, strlen(key));
}

const char *qeil_gguf_key_at(const qeil_gguf *g, size_t i)
{
    if (!g || i >= g->n_kv) return NULL;
    return g->arena + g->kv_names[i].off;
}

qeil_gguf_vtype qeil_gguf_kv_type(const qeil_gguf *g, size_t i)
{
    if (!g || i >= g->n_kv) return (qeil_gguf_vtype)-1;
    return (qeil_gguf_vtype)g->kv[i].type;
}

/* The pair named key, or NOTFOUND with a message. */
static qeil_status kv_lookup(qeil_ctx *ctx, const qeil_gguf *g, const char *key,
                             const gguf_kv **out)
{
    if (!g || !key) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "gguf: NULL reader or key");
    int64_t i = qeil_gguf_find_key(g, key);
    if (i < 0) return qeil_ctx_fail(ctx, QEIL_ERR_NOTFOUND, "gguf: key '%s' not found", key);
    *out = &g->kv[i];
    return QEIL_OK;
}

static qeil_status type_mismatch(qeil_ctx *ctx, const char *key, uint32_t found,
                                 const char *wanted)
{
    return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "gguf: key '%s' has type %s, wanted %s", key,
                         vtype_name(found), wanted);
}

qeil_status qeil_gguf_get_u64(qeil_ctx *ctx, const qeil_gguf *g, const char *key, uint64_t *out)
{
    const gguf_kv *kv = NULL;
    qeil_status st = kv_lookup(ctx, g, key, &kv);
    if (st != QEIL_OK) return st;
    if (vtype_is_unsigned(kv->type)) {
        *out = kv->v.u;
        return QEIL_OK;
    }
    if (!vtype_is_signed(kv->type)) return type_mismatch(ctx, key, kv->type, "an integer (uint64)");
    if (kv->v.i < 0)
        return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "gguf: key '%s' = %lld (%s) does not fit uint64",
                             key, (long long)kv->v.i, vtype_name(kv->type));
    *out = (uint64_t)kv->v.i;
    return QEIL_OK;
}

qeil_status qeil_gguf_get_i64(qeil_ctx *ctx, const qeil_gguf *g, const char *key, int64_t *out)
{
    const gguf_kv *kv = NULL;
    qeil_status st = kv_lookup(ctx, g, key, &kv);
    if (st != QEIL_OK) return st;
    if (vtype_is_signed(kv->type)) {
        *out = kv->v.i;
        return QEIL_OK;
    }
    if (!vtype_is_unsigned(kv->type)) return type_mismatch(ctx, key, kv->type, "an integer (int64)");
    if (kv->v.u > (uint64_t)INT64_MAX)
        return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "gguf: key '%s' = %llu (%s) does not fit int64",
                             key, (unsigned long long)kv->v.u, vtype_name(kv->type));
    *out = (int64_t)kv->v.u;
    return QEIL_OK;
}

qeil_status qeil_gguf_get_f64(qeil_ctx *ctx, const qeil_gguf *g, const char *key, double *out)
{
    const gguf_kv *kv = NULL;
    qeil_status st = kv_lookup(ctx, g, key, &kv);
    if (st != QEIL_OK) return st;
    if (vtype_is_float(kv->type)) *out = kv->v.f;
    else if (vtype_is_unsigned(kv->type)) *out = (double)kv->v.u;
    else if (vtype_is_signed(kv->type)) *out = (double)kv->v.i;
    else return type_mismatch(ctx, key, kv->type, "a number (float64)");
    return QEIL_OK;
}

qeil_status qeil_gguf_get_bool(qeil_ctx *ctx, const qeil_gguf *g, const char *key, int *out)
{
    const gguf_kv *kv = NULL;
    qeil_status st = kv_lookup(ctx, g, key, &kv);
    if (st != QEIL_OK) return st;
    if (kv->type != QEIL_GGUF_BOOL) return type_mismatch(ctx, key, kv->type, "bool");
    *out = kv->v.u != 0;
    return QEIL_OK;
}

const char *qeil_gguf_get_str(const qeil_gguf *g, const char *key)
{
    int64_t i = qeil_gguf_find_key(g, key);
    if (i < 0 || g->kv[i].type != QEIL_GGUF_STRING) return NULL;
    return g->arena + g->kv[i].str.off;
}

qeil_status qeil_gguf_get_arr(qeil_ctx *ctx, const qeil_gguf *g, const char *key,
                              qeil_gguf_vtype *elem_type, uint64_t *n)
{
    const gguf_kv *kv = NULL;
    qeil_status st = kv_lookup(ctx, g, key, &kv);
    if (st != QEIL_OK) return st;
    if (kv->type != QEIL_GGUF_ARRAY) return type_mismatch(ctx, key, kv->type, "array");
    if (elem_type) *elem_type = (qeil_gguf_vtype)kv->elem_type;
    if (n) *n = kv->n;
    return QEIL_OK;
}

/* The array at key_index, or NULL if the index is not an array. */
static const gguf_kv *array_at(const qeil_gguf *g, int64_t key_index)
{
    if (!g || key_index < 0 || (uint64_t)key_index >= g->n_kv) return NULL;
    const gguf_kv *kv = &g->kv[key_index];
    return kv->type == QEIL_GGUF_ARRAY ? kv : NULL;
}

double qeil_gguf_arr_f64(const qeil_gguf *g, int64_t key_index, uint64_t i)
{
    const gguf_kv *kv = array_at(g, key_index);
    size_t size = kv ? vtype_size(kv->elem_type) : 0;
    if (!kv || size == 0 || i >= kv->n) return NAN;
    gguf_scalar v = decode_scalar(kv->elem_type, kv->raw + i * size);
    if (vtype_is_float(kv->elem_type)) return v.f;
    if (vtype_is_signed(kv->elem_type)) return (double)v.i;
    return (double)v.u; /* unsigned integers and bool */
}

const char *qeil_gguf_arr_str(const qeil_gguf *g, int64_t key_index, uint64_t i, size_t *len)
{
    const gguf_kv *kv = array_at(g, key_index);
    if (len) *len = 0;
    if (!kv || kv->elem_type != QEIL_GGUF_STRING || i >= kv->n) return NULL;
    if (len) *len = kv->str_offs[i + 1] - kv->str_offs[i] - 1;
    return g->arena + kv->str_offs[i];
}

/* ------------------------------------------------------------------------ */
/* Tensors                                                                   */
/* ------------------------------------------------------------------------ */

size_t qeil_gguf_n_tensors(const qeil_gguf *g) { return g ? g->n_tensors : 0; }

const qeil_gguf_tensor *qeil_gguf_tensor_at(const qeil_gguf *g, size_t i)
{
    if (!g || i >= g->n_tensors) return NULL;
    return &g->tensors[i];
}

int64_t qeil_gguf_find_tensor(const qeil_gguf *g, const char *name)
{
    if (!g || !name) return -1;
    return index_find(&g->tensor_index, g->tensor_names, g->arena, name, strlen(name));
}

const void *qeil_gguf_tensor_data(const qeil_gguf *g, const qeil_gguf_tensor *t)
{
    /* only tensors of this reader: their ranges were checked at open */
    if (!g || !t || t < g->tensors || t >= g->tensors + g->n_tensors) return NULL;
    return g->data + g->data_start + t->offset;
}

void qeil_gguf_tensor_drop_pages(const qeil_gguf *g, const qeil_gguf_tensor *t)
{
    const uint8_t *p = qeil_gguf_tensor_data(g, t);
    if (!p || !g->map) return;
    const long pg = sysconf(_SC_PAGESIZE);
    if (pg <= 0) return;
    const uintptr_t a = ((uintptr_t)p + (uintptr_t)pg - 1) & ~((uintptr_t)pg - 1);
    const uintptr_t b = ((uintptr_t)p + (uintptr_t)t->nbytes) & ~((uintptr_t)pg - 1);
    if (b > a) (void)madvise((void *)a, b - a, MADV_DONTNEED); /* advice: failure is harmless */
}
