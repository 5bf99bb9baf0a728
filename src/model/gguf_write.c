/* gguf_write.c — GGUF v3 writer (little-endian).
 *
 * The writer copies everything it is given. Each metadata value is encoded
 * to its exact on-disk bytes when it is set, so writing is a straight walk:
 * header, KV pairs, tensor infos, padding, tensor data (each padded to the
 * alignment). The same walk runs three ways: counting bytes, filling a
 * buffer (to_memory) and streaming to a file (write), so the two outputs
 * cannot differ. Layout: docs/gguf.md.
 *
 * It refuses anything the reader would refuse (limits, duplicate names,
 * shapes that are not whole blocks), so every file it writes reads back.
 */
#include "qeil/gguf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <fcntl.h>

/* ggml's GGML_MAX_NAME is 64 including the NUL: longer tensor names would
 * give files llama.cpp cannot load, so the writer stops at 63 bytes. */
#define GGUF_W_MAX_TENSOR_NAME 63u
/* The GGUF spec caps keys at 2^16 - 1 bytes. */
#define GGUF_W_MAX_KEY 65535u
/* No file needs alignment beyond a large page fraction; a bigger value would
 * only bloat the padding. */
#define GGUF_W_MAX_ALIGNMENT 65536u

typedef struct {
    char *key;
    uint32_t type; /* qeil_gguf_vtype */
    uint8_t *val;  /* the value exactly as it follows the type field on disk */
    size_t val_len;
} wkv;

typedef struct {
    char *name;
    int type;
    uint32_t n_dims;
    uint64_t ne[QEIL_GGUF_MAX_DIMS];
    size_t nbytes;
    uint8_t *data;
} wtensor;

struct qeil_gguf_writer {
    qeil_ctx *ctx;
    uint32_t alignment;
    wkv *kv;
    size_t n_kv, cap_kv;
    wtensor *t;
    size_t n_t, cap_t;
};

/* ------------------------------------------------------------------------ */
/* Little-endian encoding                                                    */
/* ------------------------------------------------------------------------ */

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* ------------------------------------------------------------------------ */
/* Create / free                                                             */
/* ------------------------------------------------------------------------ */

qeil_gguf_writer *qeil_gguf_writer_create(qeil_ctx *ctx)
{
    qeil_gguf_writer *w = qeil_calloc(ctx, 1, sizeof *w);
    if (!w) return NULL;
    w->ctx = ctx;
    w->alignment = QEIL_GGUF_DEFAULT_ALIGNMENT;
    return w;
}

void qeil_gguf_writer_free(qeil_gguf_writer *w)
{
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        qeil_free(w->ctx, w->kv[i].key);
        qeil_free(w->ctx, w->kv[i].val);
    }
    for (size_t i = 0; i < w->n_t; i++) {
        qeil_free(w->ctx, w->t[i].name);
        qeil_free(w->ctx, w->t[i].data);
    }
    qeil_free(w->ctx, w->kv);
    qeil_free(w->ctx, w->t);
    qeil_free(w->ctx, w);
}

static char *dup_str(qeil_ctx *ctx, const char *s, size_t n)
{
    char *d = qeil_malloc(ctx, n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* Grow *arr (of elem-sized items) so it holds at least n + 1 items. */
static int grow(qeil_ctx *ctx, void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap) return 1;
    size_t c = *cap ? *cap * 2 : 16;
    if (c > SIZE_MAX / elem) return 0;
    void *a = qeil_realloc(ctx, *arr, c * elem);
    if (!a) return 0;
    *arr = a;
    *cap = c;
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Metadata                                                                  */
/* ------------------------------------------------------------------------ */

static qeil_status check_key(qeil_gguf_writer *w, const char *key)
{
    if (!key || !*key)
        return qeil_ctx_fail(w->ctx, QEIL_ERR_INVALID, "gguf writer: empty or NULL key");
    if (strlen(key) > GGUF_W_MAX_KEY)
        return qeil_ctx_fail(w->ctx, QEIL_ERR_RANGE, "gguf writer: key '%.40s...' is %zu bytes "
                             "(allowed 1..%u)", key, strlen(key), GGUF_W_MAX_KEY);
    for (size_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->kv[i].key, key) == 0)
            return qeil_ctx_fail(w->ctx, QEIL_ERR_INVALID, "gguf writer: key '%s' already set",
                                 key);
    if (w->n_kv >= QEIL_GGUF_MAX_KV)
        return qeil_ctx_fail(w->ctx, QEIL_ERR_RANGE, "gguf writer: more than %d keys",
                             QEIL_GGUF_MAX_KV);
    return QEIL_OK;
}

/* Take ownership of val (already encoded) and add the pair; frees val on
 * failure. */
static qeil_status add_kv(qeil_gguf_writer *w, const char *key, uint32_t type, uint8_t *val,
                          size_t val_len)
{
    qeil_status st = check_key(w, key);
    if (st != QEIL_OK) {
        qeil_free(w->ctx, val);
        return st;
    }
    char *k = dup_str(w->ctx, key, strlen(key));
    if (!k || !grow(w->ctx, (void **)&w->kv, &w->cap_kv, w->n_kv, sizeof *w->kv)) {
        qeil_free(w->ctx, k);
        qeil_free(w->ctx, val);
        return qeil_ctx_fail(w->ctx, QEIL_ERR_NOMEM, "gguf writer: out of memory for key '%s'",
                             key);
    }
    w->kv[w->n_kv++] = (wkv){k, type, val, val_len};
    return QEIL_OK;
}

static qeil_status add_scalar(qeil_gguf_writer *w, const char *key, uint32_t type,
                              const uint8_t *bytes, size_t n)
{
    if (!w) return QEIL_ERR_INVALID;
    uint8_t *val = qeil_malloc(w->ctx, n);
    if (!val) return qeil_ctx_fail(w->ctx, QEIL_ERR_NOMEM, "gguf writer: out of memory");
    memcpy(val, bytes, n);
    return add_kv(w, key, type, val, n);
}

/* general.alignment is special: it sets the alignment the writer uses, so it
 * must be a uint32 power of two (as the reader requires). */
static int is_alignment_key(const char *key)
{
    return key && strcmp(key, "general.alignment") == 0;
}

static qeil_status refuse_alignment_type(qeil_gguf_writer *w, const char *key)
{
    if (!w) return QEIL_ERR_INVALID;
    if (!is_alignment_key(key)) return QEIL_OK;
    return qeil_ctx_fail(w->ctx, QEIL_ERR_INVALID,
                         "gguf writer: general.alignment must be set with set_u32");
}

qeil_status qeil_gguf_writer_set_u32(qeil_gguf_writer *w, const char *key, uint32_t v)
{
    if (!w) return QEIL_ERR_INVALID;
    if (is_alignment_key(key) && (v == 0 || (v & (v - 1)) != 0 || v > GGUF_W_MAX_ALIGNMENT))
        return qeil_ctx_fail(w->ctx, QEIL_ERR_RANGE,
                             "gguf writer: general.alignment = %u (allowed: a power of two in "
                             "1..%u)", v, GGUF_W_MAX_ALIGNMENT);
    uint8_t b[4];
    put_le32(b, v);
    qeil_status st = add_scalar(w, key, QEIL_GGUF_UINT32, b, 4);
    if (st == QEIL_OK && is_alignment_key(key)) w->alignment = v;
    return st;
}

qeil_status qeil_gguf_writer_set_i32(qeil_gguf_writer *w, const char *key, int32_t v)
{
    qeil_status st = refuse_alignment_type(w, key);
    if (st != QEIL_OK) return st;
    uint8_t b[4];
    put_le32(b, (uint32_t)v);
    return add_scalar(w, key, QEIL_GGUF_INT32, b, 4);
}

qeil_status qeil_gguf_writer_set_u64(qeil_gguf_writer *w, const char *key, uint64_t v)
{
    qeil_status st = refuse_alignment_type(w, key);
    if (st != QEIL_OK) return st;
    uint8_t b[8];
    put_le64(b, v);
    return add_scalar(w, key, QEIL_GGUF_UINT64, b, 8);
}

qeil_status qeil_gguf_writer_set_f32(qeil_gguf_writer *w, const char *key, float v)
{
    qeil_status st = refuse_alignment_type(w, key);
    if (st != QEIL_OK) return st;
    uint8_t b[4];
    put_le32(b, f32_bits(v));
    return add_scalar(w, key, QEIL_GGUF_FLOAT32, b, 4);
}

qeil_status qeil_gguf_writer_set_bool(qeil_gguf_writer *w, const char *key, int v)
{
    qeil_status st = refuse_alignment_type(w, key);
    if (st != QEIL_OK) return st;
    uint8_t b = v ? 1 : 0;
    return add_scalar(w, key, QEIL_GGUF_BOOL, &b, 1);
}

static qeil_status check_string(qeil_gguf_writer *w, const char *key, const char *s, size_t *n)
{
    if (!s)
        return qeil_ctx_fail(w->ctx, QEIL_ERR_INVALID, "gguf writer: key '%s': NULL string",
                             key ? key : "");
    *n = strlen(s);
    if (*n > QEIL_GGUF_MAX_STRING)
        return qeil_ctx_fail(w->ctx, QEIL_ERR_RANGE,
                             "gguf writer: key '%s': string of %zu bytes (allowed 0..%u)",
                             key ? key : "", *n, QEIL_GGUF_MAX_STRING);
    return QEIL_OK;
}

qeil_status qeil_gguf_writer_set_str(qeil_gguf_writer *w, const char *key, const char *v)
{
    qeil_status st = refuse_alignment_type(w, key);
    size_t n = 0;
    if (st == QEIL_OK) st = check_string(w, key, v, &n);
    if (st != QEIL_OK) return st;
    uint8_t *val = qeil_malloc(w->ctx, 8 + n);
    if (!val) return qeil_ctx_fail(w->ctx, QEIL_ERR_NOMEM, "gguf writer: out of memory");
    put_le64(val, n);
    memcpy(val + 8, v, n);
    return add_kv(w, key, QEIL_GGUF_STRING, val, 8 + n);
}

static qeil_status check_array(qeil_gguf_writer *w, const char *key, const void *v, size_t n)
{
    qeil_status st = refuse_alignment_type(w, key);
    if (st != QEIL_OK) return st;
    if (!v && n > 0)
        return qeil_ctx_fail(w->ctx, QEIL_ERR_INVALID, "gguf writer: key '%s': NULL array",
                             key ? key : "");
    if (n > QEIL_GGUF_MAX_ARRAY)
        return qeil_ctx_fail(w->ctx, QEIL_ERR_RANGE,
                             "gguf writer: key '%s': array of %zu elements (allowed 0..%u)",
                             key ? key : "", n, QEIL_GGUF_MAX_ARRAY);
    return QEIL_OK;
}

/* Array header: element type u32, count u64. */
static uint8_t *alloc_array(qeil_gguf_writer *w, uint32_t elem_type, size_t n, size_t body)
{
    uint8_t *val = qeil_malloc(w->ctx, 12 + body);
    if (!val) return NULL;
    put_le32(val, elem_type);
    put_le64(val + 4, n);
    return val;
}

qeil_status qeil_gguf_writer_set_arr_str(qeil_gguf_writer *w, const char *key,
                                         const char *const *v, size_t n)
{
    qeil_status st = check_array(w, key, v, n);
    if (st != QEIL_OK) return st;
    /* n <= 2^24 strings of <= 2^24 bytes each: the total fits 64 bits, and
     * on a 32-bit size_t we check as we go */
    size_t body = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        if ((st = check_string(w, key, v[i], &len)) != QEIL_OK) return st;
        if (len + 8 > SIZE_MAX - 12 - body)
            return qeil_ctx_fail(w->ctx, QEIL_ERR_RANGE, "gguf writer: key '%s': array too large",
                                 key);
        body += 8 + len;
    }
    uint8_t *val = alloc_array(w, QEIL_GGUF_STRING, n, body);
    if (!val) return qeil_ctx_fail(w->ctx, QEIL_ERR_NOMEM, "gguf writer: out of memory");
    uint8_t *p = val + 12;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(v[i]);
        put_le64(p, len);
        memcpy(p + 8, v[i], len);
        p += 8 + len;
    }
    return add_kv(w, key, QEIL_GGUF_ARRAY, val, 12 + body);
}

qeil_status qeil_gguf_writer_set_arr_f32(qeil_gguf_writer *w, const char *key, const float *v,
                                         size_t n)
{
    qeil_status st = check_array(w, key, v, n);
    if (st != QEIL_OK) return st;
    uint8_t *val = alloc_array(w, QEIL_GGUF_FLOAT32, n, 4 * n);
    if (!val) return qeil_ctx_fail(w->ctx, QEIL_ERR_NOMEM, "gguf writer: out of memory");
    for (size_t i = 0; i < n; i++) put_le32(val + 12 + 4 * i, f32_bits(v[i]));
    return add_kv(w, key, QEIL_GGUF_ARRAY, val, 12 + 4 * n);
}

qeil_status qeil_gguf_writer_set_arr_i32(qeil_gguf_writer *w, const char *key, const int32_t *v,
                                         size_t n)
{
    qeil_status st = check_array(w, key, v, n);
    if (st != QEIL_OK) return st;
    uint8_t *val = alloc_array(w, QEIL_GGUF_INT32, n, 4 * n);
    if (!val) return qeil_ctx_fail(w->ctx, QEIL_ERR_NOMEM, "gguf writer: out of memory");
    for (size_t i = 0; i < n; i++) put_le32(val + 12 + 4 * i, (uint32_t)v[i]);
    return add_kv(w, key, QEIL_GGUF_ARRAY, val, 12 + 4 * n);
}

/* ------------------------------------------------------------------------ */
/* Tensors                                                                   */
/* ------------------------------------------------------------------------ */

static qeil_status check_tensor_name(qeil_gguf_writer *w, const char *name)
{
    if (!name || !*name)
        return qeil_ctx_fail(w->ctx, QEIL_ERR_INVALID, "gguf writer: empty or NULL tensor name");
    if (strlen(name) > GGUF_W_MAX_TENSOR_NAME)
        return qeil_ctx_fail(w->ctx, QEIL_ERR_RANGE,
                             "gguf writer: tensor name '%s' is %zu bytes (allowed 1..%u)", name,
                             strlen(name), GGUF_W_MAX_TENSOR_NAME);
    for (size_t i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return qeil_ctx_fail(w->ctx, QEIL_ERR_INVALID,
                                 "gguf writer: tensor '%s' already added", name);
    if (w->n_t >= QEIL_GGUF_MAX_TENSORS)
        return qeil_ctx_fail(w->ctx, QEIL_ERR_RANGE, "gguf writer: more than %d tensors",
                             QEIL_GGUF_MAX_TENSORS);
    return QEIL_OK;
}

/* Type known, 1..4 dims each >= 1, whole blocks per row, size fits. */
static qeil_status check_tensor_shape(qeil_gguf_writer *w, const char *name, int type,
                                      uint32_t n_dims, const uint64_t *ne, uint64_t *nbytes)
{
    if (!qeil_ggml_type_name(type))
        return qeil_ctx_fail(w->ctx, QEIL_ERR_INVALID, "gguf writer: tensor '%s': unknown type %d",
                             name, type);
    if (n_dims < 1 || n_dims > QEIL_GGUF_MAX_DIMS || !ne)
        return qeil_ctx_fail(w->ctx, QEIL_ERR_RANGE,
                             "gguf writer: tensor '%s': n_dims %u (allowed 1..%d)", name, n_dims,
                             QEIL_GGUF_MAX_DIMS);
    uint64_t n = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] == 0 || ne[d] > (uint64_t)INT64_MAX / n)
            return qeil_ctx_fail(w->ctx, QEIL_ERR_RANGE,
                                 "gguf writer: tensor '%s': ne[%u] = %llu (dims must be >= 1, "
                                 "product <= 2^63-1)",
                                 name, d, (unsigned long long)ne[d]);
        n *= ne[d];
    }
    uint32_t blk = qeil_ggml_block_elems(type);
    if (ne[0] % blk != 0)
        return qeil_ctx_fail(w->ctx, QEIL_ERR_RANGE,
                             "gguf writer: tensor '%s': ne[0] = %llu is not a multiple of the %s "
                             "block size %u",
                             name, (unsigned long long)ne[0], qeil_ggml_type_name(type), blk);
    int ok;
    *nbytes = qeil_ggml_nbytes(type, n, &ok);
    if (!ok || *nbytes > SIZE_MAX)
        return qeil_ctx_fail(w->ctx, QEIL_ERR_RANGE, "gguf writer: tensor '%s': too large", name);
    return QEIL_OK;
}

qeil_status qeil_gguf_writer_add_tensor(qeil_gguf_writer *w, const char *name, int type,
                                        uint32_t n_dims, const uint64_t *ne, const void *data)
{
    if (!w) return QEIL_ERR_INVALID;
    uint64_t nbytes = 0;
    qeil_status st = check_tensor_name(w, name);
    if (st == QEIL_OK) st = check_tensor_shape(w, name, type, n_dims, ne, &nbytes);
    if (st != QEIL_OK) return st;
    if (!data)
        return qeil_ctx_fail(w->ctx, QEIL_ERR_INVALID, "gguf writer: tensor '%s': NULL data",
                             name);
    wtensor t;
    memset(&t, 0, sizeof t);
    t.name = dup_str(w->ctx, name, strlen(name));
    t.data = qeil_malloc(w->ctx, (size_t)nbytes);
    if (!t.name || !t.data || !grow(w->ctx, (void **)&w->t, &w->cap_t, w->n_t, sizeof *w->t)) {
        qeil_free(w->ctx, t.name);
        qeil_free(w->ctx, t.data);
        return qeil_ctx_fail(w->ctx, QEIL_ERR_NOMEM,
                             "gguf writer: out of memory for tensor '%s' (%llu bytes)", name,
                             (unsigned long long)nbytes);
    }
    memcpy(t.data, data, (size_t)nbytes);
    t.type = type;
    t.n_dims = n_dims;
    for (uint32_t d = 0; d < QEIL_GGUF_MAX_DIMS; d++) t.ne[d] = d < n_dims ? ne[d] : 1;
    t.nbytes = (size_t)nbytes;
    w->t[w->n_t++] = t;
    return QEIL_OK;
}

/* ------------------------------------------------------------------------ */
/* Serialization: one walk, three sinks                                      */
/* ------------------------------------------------------------------------ */

typedef struct {
    uint8_t *buf; /* memory sink, or NULL */
    FILE *f;      /* file sink, or NULL; both NULL: count only */
    uint64_t pos; /* bytes emitted so far */
    int err;      /* errno of the first failed write, or -1 for overflow */
} gguf_sink;

static void emit(gguf_sink *s, const void *p, size_t n)
{
    if (s->err || n == 0) return;
    if (n > UINT64_MAX - s->pos || s->pos + n > SIZE_MAX) {
        s->err = -1;
        return;
    }
    if (s->f) {
        if (fwrite(p, 1, n, s->f) != n) s->err = errno ? errno : EIO;
    } else if (s->buf) {
        memcpy(s->buf + s->pos, p, n);
    }
    s->pos += n;
}

static void emit_u32(gguf_sink *s, uint32_t v)
{
    uint8_t b[4];
    put_le32(b, v);
    emit(s, b, 4);
}

static void emit_u64(gguf_sink *s, uint64_t v)
{
    uint8_t b[8];
    put_le64(b, v);
    emit(s, b, 8);
}

static void emit_str(gguf_sink *s, const char *str)
{
    size_t n = strlen(str);
    emit_u64(s, n);
    emit(s, str, n);
}

static void emit_pad(gguf_sink *s, uint32_t alignment)
{
    static const uint8_t zeros[256];
    uint64_t pad = (alignment - s->pos % alignment) % alignment;
    while (pad > 0) {
        size_t n = pad < sizeof zeros ? (size_t)pad : sizeof zeros;
        emit(s, zeros, n);
        pad -= n;
    }
}

static uint64_t padded(uint64_t n, uint32_t alignment)
{
    return (n + alignment - 1) / alignment * alignment;
}

static void emit_file(const qeil_gguf_writer *w, gguf_sink *s)
{
    emit(s, "GGUF", 4);
    emit_u32(s, 3);
    emit_u64(s, w->n_t);
    emit_u64(s, w->n_kv);
    for (size_t i = 0; i < w->n_kv; i++) {
        emit_str(s, w->kv[i].key);
        emit_u32(s, w->kv[i].type);
        emit(s, w->kv[i].val, w->kv[i].val_len);
    }
    /* tensor data are laid out in order, each starting on the alignment;
     * sizes are < SIZE_MAX each and their sum is bounded by memory held */
    uint64_t offset = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        emit_str(s, t->name);
        emit_u32(s, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++) emit_u64(s, t->ne[d]);
        emit_u32(s, (uint32_t)t->type);
        emit_u64(s, offset);
        offset += padded(t->nbytes, w->alignment);
    }
    emit_pad(s, w->alignment);
    for (size_t i = 0; i < w->n_t; i++) {
        emit(s, w->t[i].data, w->t[i].nbytes);
        emit_pad(s, w->alignment);
    }
}

qeil_status qeil_gguf_writer_to_memory(qeil_gguf_writer *w, void **out, size_t *len)
{
    if (!w) return QEIL_ERR_INVALID;
    if (!out || !len)
        return qeil_ctx_fail(w->ctx, QEIL_ERR_INVALID, "gguf writer: NULL output pointer");
    *out = NULL;
    *len = 0;
    gguf_sink count = {NULL, NULL, 0, 0};
    emit_file(w, &count);
    if (count.err)
        return qeil_ctx_fail(w->ctx, QEIL_ERR_RANGE, "gguf writer: file size overflows");
    gguf_sink mem = {qeil_malloc(w->ctx, (size_t)count.pos), NULL, 0, 0};
    if (!mem.buf)
        return qeil_ctx_fail(w->ctx, QEIL_ERR_NOMEM, "gguf writer: out of memory (%llu bytes)",
                             (unsigned long long)count.pos);
    emit_file(w, &mem);
    *out = mem.buf;
    *len = (size_t)mem.pos;
    return QEIL_OK;
}

/* ------------------------------------------------------------------------ */
/* Atomic file write: temp file in the same directory, fsync, rename         */
/* ------------------------------------------------------------------------ */

/* New files get 0644; a replaced file keeps its permission bits. (umask
 * cannot be read without changing it, which is not thread-safe.) */
static mode_t target_mode(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) return sb.st_mode & 07777;
    return 0644;
}

/* fsync the directory holding path so the rename itself is durable; best
 * effort (some filesystems refuse to fsync a directory). */
static void sync_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else if ((size_t)(slash - path) < sizeof dir) snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    else return;
    int fd = open(dir, O_RDONLY);
    if (fd < 0) return;
    (void)fsync(fd);
    close(fd);
}

/* Write the file into the already-open temp fd; closes fd. */
static qeil_status write_fd(qeil_gguf_writer *w, int fd, const char *path)
{
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        int e = errno;
        close(fd);
        return qeil_ctx_fail(w->ctx, QEIL_ERR_IO, "gguf writer: '%s': %s", path, strerror(e));
    }
    gguf_sink s = {NULL, f, 0, 0};
    errno = 0;
    emit_file(w, &s);
    if (!s.err && fflush(f) != 0) s.err = errno ? errno : EIO;
    if (!s.err && fsync(fileno(f)) != 0) s.err = errno ? errno : EIO;
    if (fclose(f) != 0 && !s.err) s.err = errno ? errno : EIO;
    if (s.err == -1)
        return qeil_ctx_fail(w->ctx, QEIL_ERR_RANGE, "gguf writer: file size overflows");
    if (s.err)
        return qeil_ctx_fail(w->ctx, QEIL_ERR_IO, "gguf writer: writing '%s': %s", path,
                             strerror(s.err));
    return QEIL_OK;
}

qeil_status qeil_gguf_writer_write(qeil_gguf_writer *w, const char *path)
{
    if (!w) return QEIL_ERR_INVALID;
    if (!path || !*path)
        return qeil_ctx_fail(w->ctx, QEIL_ERR_INVALID, "gguf writer: empty or NULL path");
    /* rename() would turn a device node, a FIFO or a symbolic link at path
     * into a regular file: only a regular file (or nothing) is replaced */
    struct stat sb;
    if (lstat(path, &sb) == 0 && !S_ISREG(sb.st_mode))
        return qeil_ctx_fail(w->ctx, QEIL_ERR_IO,
                             "gguf writer: '%s' is not a regular file (a symbolic link, device, "
                             "FIFO or directory); not replacing it",
                             path);
    size_t n = strlen(path);
    static const char suffix[] = ".tmp-XXXXXX";
    char *tmp = qeil_malloc(w->ctx, n + sizeof suffix);
    if (!tmp) return qeil_ctx_fail(w->ctx, QEIL_ERR_NOMEM, "gguf writer: out of memory");
    memcpy(tmp, path, n);
    memcpy(tmp + n, suffix, sizeof suffix);

    int fd = mkstemp(tmp);
    if (fd < 0) {
        qeil_status st = qeil_ctx_fail(w->ctx, QEIL_ERR_IO,
                                       "gguf writer: cannot create a temporary file next to "
                                       "'%s': %s",
                                       path, strerror(errno));
        qeil_free(w->ctx, tmp);
        return st;
    }
    (void)fchmod(fd, target_mode(path));
    qeil_status st = write_fd(w, fd, path);
    if (st == QEIL_OK && rename(tmp, path) != 0)
        st = qeil_ctx_fail(w->ctx, QEIL_ERR_IO, "gguf writer: cannot rename '%s' to '%s': %s",
                           tmp, path, strerror(errno));
    if (st != QEIL_OK) unlink(tmp); /* the old file, if any, is untouched */
    else sync_parent_dir(path);
    qeil_free(w->ctx, tmp);
    return st;
}
