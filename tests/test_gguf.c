/* test_gguf.c — GGUF reader and writer: type table, round trips, a
 * llama-shaped file through the mmap path, truncation at every byte, a table
 * of corrupted fields with the message each must give, getters, atomic
 * writes, allocation failure at every allocation, and the fuzz corpus.
 *
 * Run from the repository root (the corpus is read from
 * tests/fuzz/corpus/gguf). `test_gguf --write-corpus DIR` writes the seed
 * corpus (valid files from the writer, every corrupted case below) to DIR.
 */
#include "qeil/gguf.h"
#include "test.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* A byte builder for hand-made (often hostile) files                        */
/* ------------------------------------------------------------------------ */

typedef struct {
    uint8_t *p;
    size_t n, cap;
} tb;

static void tb_raw(tb *b, const void *src, size_t n)
{
    if (b->n + n > b->cap) {
        size_t c = b->cap ? b->cap : 256;
        while (c < b->n + n) c *= 2;
        b->p = realloc(b->p, c);
        if (!b->p) abort();
        b->cap = c;
    }
    if (n) memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void tb_u8(tb *b, uint8_t v) { tb_raw(b, &v, 1); }

static void tb_u32(tb *b, uint32_t v)
{
    uint8_t x[4];
    for (int i = 0; i < 4; i++) x[i] = (uint8_t)(v >> (8 * i));
    tb_raw(b, x, 4);
}

static void tb_u64(tb *b, uint64_t v)
{
    uint8_t x[8];
    for (int i = 0; i < 8; i++) x[i] = (uint8_t)(v >> (8 * i));
    tb_raw(b, x, 8);
}

static void tb_put_u32(tb *b, size_t at, uint32_t v)
{
    for (int i = 0; i < 4; i++) b->p[at + i] = (uint8_t)(v >> (8 * i));
}

static void tb_put_u64(tb *b, size_t at, uint64_t v)
{
    for (int i = 0; i < 8; i++) b->p[at + i] = (uint8_t)(v >> (8 * i));
}

static void tb_strn(tb *b, const char *s, size_t n)
{
    tb_u64(b, n);
    tb_raw(b, s, n);
}

static void tb_str(tb *b, const char *s) { tb_strn(b, s, strlen(s)); }

static void tb_zeros(tb *b, size_t n)
{
    for (size_t i = 0; i < n; i++) tb_u8(b, 0);
}

static void tb_pad(tb *b, size_t align)
{
    while (b->n % align) tb_u8(b, 0);
}

static void hdr(tb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    tb_raw(b, "GGUF", 4);
    tb_u32(b, version);
    tb_u64(b, n_tensors);
    tb_u64(b, n_kv);
}

static void kv_head(tb *b, const char *key, uint32_t type)
{
    tb_str(b, key);
    tb_u32(b, type);
}

static void kv_str(tb *b, const char *key, const char *v)
{
    kv_head(b, key, QEIL_GGUF_STRING);
    tb_str(b, v);
}

static void kv_u32(tb *b, const char *key, uint32_t v)
{
    kv_head(b, key, QEIL_GGUF_UINT32);
    tb_u32(b, v);
}

static void tinfo(tb *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                  uint64_t offset)
{
    tb_str(b, name);
    tb_u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++) tb_u64(b, ne[d]);
    tb_u32(b, type);
    tb_u64(b, offset);
}

/* The smallest valid file we mutate: one string KV, one f32[8] tensor. */
static void mini(tb *b)
{
    static const uint64_t ne[1] = {8};
    hdr(b, 3, 1, 1);
    kv_str(b, "general.architecture", "llama");
    tinfo(b, "w", 1, ne, QEIL_GGML_F32, 0);
    tb_pad(b, 32);
    tb_zeros(b, 32);
}

/* A file with one tensor of the given shape/type/offset and 64 data bytes. */
static void one_tensor(tb *b, const char *name, uint32_t n_dims, const uint64_t *ne,
                       uint32_t type, uint64_t offset)
{
    hdr(b, 3, 1, 0);
    tinfo(b, name, n_dims, ne, type, offset);
    tb_pad(b, 32);
    tb_zeros(b, 64);
}

/* ------------------------------------------------------------------------ */
/* Shared helpers                                                            */
/* ------------------------------------------------------------------------ */

/* Parse a private copy of exactly len bytes, so ASan flags any over-read.
 * On success the caller frees the reader, then *copy. */
static qeil_status parse_copy(qeil_ctx *ctx, const void *data, size_t len, qeil_gguf **out,
                              void **copy)
{
    *copy = malloc(len ? len : 1);
    if (!*copy) abort();
    if (len) memcpy(*copy, data, len);
    qeil_status st = qeil_gguf_from_memory(ctx, *copy, len, out);
    if (st != QEIL_OK) {
        free(*copy);
        *copy = NULL;
    }
    return st;
}

/* Whole file into malloc'd memory; NULL on error. */
static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    uint8_t *p = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? 2 * cap : 4096;
            uint8_t *q = realloc(p, cap);
            if (!q) abort();
            p = q;
        }
        size_t r = fread(p + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    fclose(f);
    *len = n;
    return p;
}

/* Touch everything a consumer could touch: every getter on every key, every
 * array element (capped), every tensor's first and last data byte. */
static unsigned walk(qeil_ctx *ctx, const qeil_gguf *g)
{
    unsigned acc = 0;
    for (size_t i = 0; i < qeil_gguf_n_kv(g); i++) {
        const char *key = qeil_gguf_key_at(g, i);
        acc += (unsigned)qeil_gguf_find_key(g, key) == i;
        uint64_t u;
        int64_t s;
        double f;
        int b;
        acc += qeil_gguf_get_u64(ctx, g, key, &u) == QEIL_OK;
        acc += qeil_gguf_get_i64(ctx, g, key, &s) == QEIL_OK;
        acc += qeil_gguf_get_f64(ctx, g, key, &f) == QEIL_OK;
        acc += qeil_gguf_get_bool(ctx, g, key, &b) == QEIL_OK;
        const char *str = qeil_gguf_get_str(g, key);
        if (str) acc += (unsigned)strlen(str);
        qeil_gguf_vtype et;
        uint64_t n;
        if (qeil_gguf_get_arr(ctx, g, key, &et, &n) != QEIL_OK) continue;
        for (uint64_t k = 0; k < n && k < 4096; k++) {
            size_t len;
            const char *e = qeil_gguf_arr_str(g, (int64_t)i, k, &len);
            if (e) acc += (unsigned)len + (unsigned char)e[len];
            else acc += qeil_gguf_arr_f64(g, (int64_t)i, k) > 0;
        }
    }
    for (size_t i = 0; i < qeil_gguf_n_tensors(g); i++) {
        const qeil_gguf_tensor *t = qeil_gguf_tensor_at(g, i);
        acc += qeil_gguf_find_tensor(g, t->name) == (int64_t)i;
        const uint8_t *d = qeil_gguf_tensor_data(g, t);
        acc += d[0] + d[t->nbytes - 1];
    }
    return acc;
}

static qeil_ctx *new_ctx(void)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    if (!ctx) abort();
    return ctx;
}

/* Fill n bytes deterministically (a tiny LCG; content only has to differ). */
static void fill(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (uint8_t)(seed >> 24);
    }
}

/* ------------------------------------------------------------------------ */
/* Type table                                                                */
/* ------------------------------------------------------------------------ */

TEST(type_table_matches_ggml)
{
    /* Block sizes from ggml-common.h static_asserts (QK_K = 256). */
    static const struct {
        int type;
        const char *name;
        uint32_t elems, bytes;
    } want[] = {
        {QEIL_GGML_F32, "f32", 1, 4},      {QEIL_GGML_F16, "f16", 1, 2},
        {QEIL_GGML_BF16, "bf16", 1, 2},    {QEIL_GGML_Q4_0, "q4_0", 32, 18},
        {QEIL_GGML_Q4_1, "q4_1", 32, 20},  {QEIL_GGML_Q5_0, "q5_0", 32, 22},
        {QEIL_GGML_Q5_1, "q5_1", 32, 24},  {QEIL_GGML_Q8_0, "q8_0", 32, 34},
        {QEIL_GGML_Q8_1, "q8_1", 32, 36},  {QEIL_GGML_Q2_K, "q2_k", 256, 84},
        {QEIL_GGML_Q3_K, "q3_k", 256, 110}, {QEIL_GGML_Q4_K, "q4_k", 256, 144},
        {QEIL_GGML_Q5_K, "q5_k", 256, 176}, {QEIL_GGML_Q6_K, "q6_k", 256, 210},
        {QEIL_GGML_Q8_K, "q8_k", 256, 292}, {QEIL_GGML_IQ4_NL, "iq4_nl", 32, 18},
        {QEIL_GGML_IQ4_XS, "iq4_xs", 256, 136},
    };
    int known = 0;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        CHECK_EQ_STR(qeil_ggml_type_name(want[i].type), want[i].name);
        CHECK_EQ_INT(qeil_ggml_block_elems(want[i].type), want[i].elems);
        CHECK_EQ_INT(qeil_ggml_block_bytes(want[i].type), want[i].bytes);
        CHECK_EQ_INT(qeil_ggml_type_from_name(want[i].name), want[i].type);
    }
    for (int t = -3; t < QEIL_GGML_TYPE_LIMIT + 3; t++) known += qeil_ggml_type_name(t) != NULL;
    CHECK_EQ_INT(known, 17); /* nothing else claims to be known */
    CHECK(qeil_ggml_type_name(4) == NULL); /* Q4_2, removed from ggml */
    CHECK_EQ_INT(qeil_ggml_block_bytes(16), 0);
    CHECK_EQ_INT(qeil_ggml_type_from_name("Q4_K"), QEIL_GGML_Q4_K);
    CHECK_EQ_INT(qeil_ggml_type_from_name("BF16"), QEIL_GGML_BF16);
    CHECK_EQ_INT(qeil_ggml_type_from_name("q4_k_m"), -1);
    CHECK_EQ_INT(qeil_ggml_type_from_name("q4"), -1);
    CHECK_EQ_INT(qeil_ggml_type_from_name(""), -1);
    CHECK_EQ_INT(qeil_ggml_type_from_name(NULL), -1);
}

TEST(nbytes_checks_multiple_and_overflow)
{
    int ok = 0;
    CHECK_EQ_INT(qeil_ggml_nbytes(QEIL_GGML_Q4_K, 4096 * 256, &ok), 4096 * 144);
    CHECK_EQ_INT(ok, 1);
    CHECK_EQ_INT(qeil_ggml_nbytes(QEIL_GGML_F32, 0, &ok), 0);
    CHECK_EQ_INT(ok, 1);
    CHECK_EQ_INT(qeil_ggml_nbytes(QEIL_GGML_Q8_0, 33, &ok), 0);
    CHECK_EQ_INT(ok, 0);
    CHECK_EQ_INT(qeil_ggml_nbytes(QEIL_GGML_F32, UINT64_MAX / 2, &ok), 0);
    CHECK_EQ_INT(ok, 0);
    CHECK_EQ_INT(qeil_ggml_nbytes(5, 32, &ok), 0);
    CHECK_EQ_INT(ok, 0);
    CHECK_EQ_INT(qeil_ggml_nbytes(QEIL_GGML_F16, 10, NULL), 20);
}

/* ------------------------------------------------------------------------ */
/* Round trips                                                               */
/* ------------------------------------------------------------------------ */

static const int rt_types[] = {QEIL_GGML_F32,  QEIL_GGML_F16,  QEIL_GGML_BF16, QEIL_GGML_Q4_0,
                               QEIL_GGML_Q5_1, QEIL_GGML_Q8_0, QEIL_GGML_Q8_1, QEIL_GGML_Q2_K,
                               QEIL_GGML_Q3_K, QEIL_GGML_Q4_K, QEIL_GGML_Q5_K, QEIL_GGML_Q6_K,
                               QEIL_GGML_Q8_K};
#define N_RT_TYPES (sizeof rt_types / sizeof rt_types[0])

/* A writer with every writer KV type and one tensor of each type above. */
static qeil_gguf_writer *make_roundtrip_writer(qeil_ctx *ctx, uint8_t **datas)
{
    qeil_gguf_writer *w = qeil_gguf_writer_create(ctx);
    if (!w) return NULL;
    static const char *const toks[] = {"<s>", "", "hello", "\xe2\x96\x81world"};
    static const float fs[] = {0.5f, -1.25f, 3e38f};
    static const int32_t is[] = {-7, 0, INT32_MAX};
    if (qeil_gguf_writer_set_str(w, "general.architecture", "llama") != QEIL_OK ||
        qeil_gguf_writer_set_u32(w, "u32", 4000000000u) != QEIL_OK ||
        qeil_gguf_writer_set_i32(w, "i32", -123456) != QEIL_OK ||
        qeil_gguf_writer_set_u64(w, "u64", UINT64_MAX) != QEIL_OK ||
        qeil_gguf_writer_set_f32(w, "f32", 1e-5f) != QEIL_OK ||
        qeil_gguf_writer_set_bool(w, "bool", 1) != QEIL_OK ||
        qeil_gguf_writer_set_str(w, "empty", "") != QEIL_OK ||
        qeil_gguf_writer_set_arr_str(w, "toks", toks, 4) != QEIL_OK ||
        qeil_gguf_writer_set_arr_f32(w, "fs", fs, 3) != QEIL_OK ||
        qeil_gguf_writer_set_arr_i32(w, "is", is, 3) != QEIL_OK ||
        qeil_gguf_writer_set_arr_i32(w, "none", NULL, 0) != QEIL_OK) {
        qeil_gguf_writer_free(w);
        return NULL;
    }
    for (size_t i = 0; i < N_RT_TYPES; i++) {
        uint32_t blk = qeil_ggml_block_elems(rt_types[i]);
        uint64_t ne[2] = {2 * (uint64_t)blk, 3};
        uint64_t nbytes = qeil_ggml_nbytes(rt_types[i], ne[0] * ne[1], NULL);
        datas[i] = malloc((size_t)nbytes);
        fill(datas[i], (size_t)nbytes, (uint32_t)i + 1);
        char name[32];
        snprintf(name, sizeof name, "t.%s", qeil_ggml_type_name(rt_types[i]));
        if (qeil_gguf_writer_add_tensor(w, name, rt_types[i], 2, ne, datas[i]) != QEIL_OK) {
            qeil_gguf_writer_free(w);
            return NULL;
        }
    }
    return w;
}

TEST(writer_reader_roundtrip)
{
    qeil_ctx *ctx = new_ctx();
    uint8_t *datas[N_RT_TYPES] = {0};
    qeil_gguf_writer *w = make_roundtrip_writer(ctx, datas);
    CHECK(w != NULL);
    if (!w) return;
    void *buf = NULL;
    size_t len = 0;
    CHECK_EQ_INT(qeil_gguf_writer_to_memory(w, &buf, &len), QEIL_OK);
    CHECK_EQ_INT(len % 32, 0);
    qeil_gguf *g = NULL;
    CHECK_EQ_INT(qeil_gguf_from_memory(ctx, buf, len, &g), QEIL_OK);
    if (!g) return;
    CHECK_EQ_INT(qeil_gguf_version(g), 3);
    CHECK_EQ_INT(qeil_gguf_alignment(g), 32);
    CHECK_EQ_INT(qeil_gguf_file_size(g), len);
    CHECK_EQ_INT(qeil_gguf_n_kv(g), 11);
    CHECK_EQ_STR(qeil_gguf_key_at(g, 0), "general.architecture");
    CHECK_EQ_STR(qeil_gguf_get_str(g, "general.architecture"), "llama");
    CHECK_EQ_STR(qeil_gguf_get_str(g, "empty"), "");

    uint64_t u = 0;
    int64_t s = 0;
    double f = 0;
    int b = 0;
    CHECK_EQ_INT(qeil_gguf_get_u64(ctx, g, "u32", &u), QEIL_OK);
    CHECK_EQ_INT(u, 4000000000u);
    CHECK_EQ_INT(qeil_gguf_kv_type(g, (size_t)qeil_gguf_find_key(g, "u32")), QEIL_GGUF_UINT32);
    CHECK_EQ_INT(qeil_gguf_get_i64(ctx, g, "i32", &s), QEIL_OK);
    CHECK_EQ_INT(s, -123456);
    CHECK_EQ_INT(qeil_gguf_get_u64(ctx, g, "u64", &u), QEIL_OK);
    CHECK(u == UINT64_MAX);
    CHECK_EQ_INT(qeil_gguf_get_f64(ctx, g, "f32", &f), QEIL_OK);
    CHECK(f == (double)1e-5f);
    CHECK_EQ_INT(qeil_gguf_get_f64(ctx, g, "i32", &f), QEIL_OK);
    CHECK(f == -123456.0);
    CHECK_EQ_INT(qeil_gguf_get_bool(ctx, g, "bool", &b), QEIL_OK);
    CHECK_EQ_INT(b, 1);

    qeil_gguf_vtype et;
    uint64_t n = 0;
    int64_t k = qeil_gguf_find_key(g, "toks");
    CHECK_EQ_INT(qeil_gguf_get_arr(ctx, g, "toks", &et, &n), QEIL_OK);
    CHECK_EQ_INT(et, QEIL_GGUF_STRING);
    CHECK_EQ_INT(n, 4);
    size_t sl = 99;
    CHECK_EQ_STR(qeil_gguf_arr_str(g, k, 0, &sl), "<s>");
    CHECK_EQ_INT(sl, 3);
    CHECK_EQ_STR(qeil_gguf_arr_str(g, k, 1, &sl), "");
    CHECK_EQ_INT(sl, 0);
    CHECK_EQ_STR(qeil_gguf_arr_str(g, k, 3, &sl), "\xe2\x96\x81world");
    CHECK_EQ_INT(sl, 8);
    k = qeil_gguf_find_key(g, "fs");
    CHECK(qeil_gguf_arr_f64(g, k, 1) == -1.25);
    CHECK(qeil_gguf_arr_f64(g, k, 2) == (double)3e38f);
    k = qeil_gguf_find_key(g, "is");
    CHECK(qeil_gguf_arr_f64(g, k, 0) == -7.0);
    CHECK(qeil_gguf_arr_f64(g, k, 2) == (double)INT32_MAX);
    CHECK_EQ_INT(qeil_gguf_get_arr(ctx, g, "none", &et, &n), QEIL_OK);
    CHECK_EQ_INT(n, 0);
    CHECK_EQ_INT(et, QEIL_GGUF_INT32);

    CHECK_EQ_INT(qeil_gguf_n_tensors(g), N_RT_TYPES);
    uint64_t expect_off = 0;
    for (size_t i = 0; i < N_RT_TYPES; i++) {
        char name[32];
        snprintf(name, sizeof name, "t.%s", qeil_ggml_type_name(rt_types[i]));
        int64_t ti = qeil_gguf_find_tensor(g, name);
        CHECK_EQ_INT(ti, (int64_t)i);
        const qeil_gguf_tensor *t = qeil_gguf_tensor_at(g, (size_t)ti);
        uint32_t blk = qeil_ggml_block_elems(rt_types[i]);
        CHECK_EQ_STR(t->name, name);
        CHECK_EQ_INT(t->type, rt_types[i]);
        CHECK_EQ_INT(t->n_dims, 2);
        CHECK_EQ_INT(t->ne[0], 2 * blk);
        CHECK_EQ_INT(t->ne[1], 3);
        CHECK_EQ_INT(t->ne[2], 1);
        CHECK_EQ_INT(t->ne[3], 1);
        CHECK_EQ_INT(t->n_elems, 6 * blk);
        CHECK_EQ_INT(t->nbytes, 6 * (uint64_t)qeil_ggml_block_bytes(rt_types[i]));
        CHECK_EQ_INT(t->offset, expect_off);
        expect_off += (t->nbytes + 31) / 32 * 32;
        const uint8_t *d = qeil_gguf_tensor_data(g, t);
        CHECK(d && memcmp(d, datas[i], (size_t)t->nbytes) == 0);
        CHECK_EQ_INT(((uintptr_t)d - (uintptr_t)buf) % 32, 0);
    }
    CHECK(qeil_gguf_tensor_at(g, N_RT_TYPES) == NULL);
    CHECK_EQ_INT(qeil_gguf_find_tensor(g, "t.q9_9"), -1);
    qeil_gguf_tensor foreign = *qeil_gguf_tensor_at(g, 0);
    CHECK(qeil_gguf_tensor_data(g, &foreign) == NULL);
    qeil_gguf_free(g);
    qeil_free(ctx, buf);
    qeil_gguf_writer_free(w);
    for (size_t i = 0; i < N_RT_TYPES; i++) free(datas[i]);
    qeil_ctx_free(ctx);
}

/* Every value type of the spec, scalar and array, hand-encoded (the writer
 * only emits a subset). */
static void all_value_types(tb *b)
{
    hdr(b, 2, 0, 24);
    kv_head(b, "u8", QEIL_GGUF_UINT8); tb_u8(b, 200);
    kv_head(b, "i8", QEIL_GGUF_INT8); tb_u8(b, 0x80);
    kv_head(b, "u16", QEIL_GGUF_UINT16); tb_u8(b, 0xff); tb_u8(b, 0xff);
    kv_head(b, "i16", QEIL_GGUF_INT16); tb_u8(b, 0x00); tb_u8(b, 0x80);
    kv_head(b, "u32", QEIL_GGUF_UINT32); tb_u32(b, 0xffffffffu);
    kv_head(b, "i32", QEIL_GGUF_INT32); tb_u32(b, 0x80000000u);
    kv_head(b, "f32", QEIL_GGUF_FLOAT32); tb_u32(b, 0x3fc00000u); /* 1.5 */
    kv_head(b, "bool", QEIL_GGUF_BOOL); tb_u8(b, 0);
    kv_str(b, "str", "text");
    kv_head(b, "u64", QEIL_GGUF_UINT64); tb_u64(b, UINT64_MAX);
    kv_head(b, "i64", QEIL_GGUF_INT64); tb_u64(b, 0x8000000000000000ull);
    kv_head(b, "f64", QEIL_GGUF_FLOAT64); tb_u64(b, 0xc004000000000000ull); /* -2.5 */
    /* arrays of every element type but array */
    static const uint32_t et[] = {QEIL_GGUF_UINT8,  QEIL_GGUF_INT8,   QEIL_GGUF_UINT16,
                                  QEIL_GGUF_INT16,  QEIL_GGUF_UINT32, QEIL_GGUF_INT32,
                                  QEIL_GGUF_FLOAT32, QEIL_GGUF_BOOL,  QEIL_GGUF_UINT64,
                                  QEIL_GGUF_INT64,  QEIL_GGUF_FLOAT64};
    static const unsigned size[] = {1, 1, 2, 2, 4, 4, 4, 1, 8, 8, 8};
    for (int i = 0; i < 11; i++) {
        char key[16];
        snprintf(key, sizeof key, "a%u", et[i]);
        kv_head(b, key, QEIL_GGUF_ARRAY);
        tb_u32(b, et[i]);
        tb_u64(b, 2);
        tb_zeros(b, size[i]); /* element 0 = 0 */
        /* element 1 = 1 in the element's own encoding */
        if (et[i] == QEIL_GGUF_FLOAT32) tb_u32(b, 0x3f800000u);
        else if (et[i] == QEIL_GGUF_FLOAT64) tb_u64(b, 0x3ff0000000000000ull);
        else { tb_u8(b, 1); tb_zeros(b, size[i] - 1); }
    }
    /* a string array with an embedded NUL in one element */
    kv_head(b, "astr", QEIL_GGUF_ARRAY);
    tb_u32(b, QEIL_GGUF_STRING);
    tb_u64(b, 3);
    tb_str(b, "a");
    tb_strn(b, "b\0c", 3);
    tb_str(b, "");
}

TEST(reader_decodes_every_value_type)
{
    qeil_ctx *ctx = new_ctx();
    tb b = {0};
    all_value_types(&b);
    qeil_gguf *g = NULL;
    CHECK_EQ_INT(qeil_gguf_from_memory(ctx, b.p, b.n, &g), QEIL_OK);
    if (!g) { puts(qeil_ctx_errmsg(ctx)); return; }
    CHECK_EQ_INT(qeil_gguf_version(g), 2);
    CHECK_EQ_INT(qeil_gguf_n_kv(g), 24);
    uint64_t u;
    int64_t s;
    double f;
    int bo;
    CHECK_EQ_INT(qeil_gguf_get_u64(ctx, g, "u8", &u), QEIL_OK); CHECK_EQ_INT(u, 200);
    CHECK_EQ_INT(qeil_gguf_get_i64(ctx, g, "i8", &s), QEIL_OK); CHECK_EQ_INT(s, -128);
    CHECK_EQ_INT(qeil_gguf_get_u64(ctx, g, "u16", &u), QEIL_OK); CHECK_EQ_INT(u, 65535);
    CHECK_EQ_INT(qeil_gguf_get_i64(ctx, g, "i16", &s), QEIL_OK); CHECK_EQ_INT(s, -32768);
    CHECK_EQ_INT(qeil_gguf_get_u64(ctx, g, "u32", &u), QEIL_OK); CHECK_EQ_INT(u, 0xffffffffu);
    CHECK_EQ_INT(qeil_gguf_get_i64(ctx, g, "i32", &s), QEIL_OK); CHECK_EQ_INT(s, INT32_MIN);
    CHECK_EQ_INT(qeil_gguf_get_f64(ctx, g, "f32", &f), QEIL_OK); CHECK(f == 1.5);
    CHECK_EQ_INT(qeil_gguf_get_bool(ctx, g, "bool", &bo), QEIL_OK); CHECK_EQ_INT(bo, 0);
    CHECK_EQ_STR(qeil_gguf_get_str(g, "str"), "text");
    CHECK_EQ_INT(qeil_gguf_get_u64(ctx, g, "u64", &u), QEIL_OK); CHECK(u == UINT64_MAX);
    CHECK_EQ_INT(qeil_gguf_get_i64(ctx, g, "i64", &s), QEIL_OK); CHECK(s == INT64_MIN);
    CHECK_EQ_INT(qeil_gguf_get_f64(ctx, g, "f64", &f), QEIL_OK); CHECK(f == -2.5);
    /* integer getters accept any integer type whose value fits */
    CHECK_EQ_INT(qeil_gguf_get_i64(ctx, g, "u8", &s), QEIL_OK); CHECK_EQ_INT(s, 200);
    CHECK_EQ_INT(qeil_gguf_get_u64(ctx, g, "i8", &u), QEIL_ERR_FORMAT);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "key 'i8' = -128 (int8) does not fit uint64");
    CHECK_EQ_INT(qeil_gguf_get_i64(ctx, g, "u64", &s), QEIL_ERR_FORMAT);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "does not fit int64");
    for (uint32_t t = 0; t <= 12; t++) {
        if (t == QEIL_GGUF_STRING || t == QEIL_GGUF_ARRAY) continue;
        char key[16];
        snprintf(key, sizeof key, "a%u", t);
        int64_t k = qeil_gguf_find_key(g, key);
        qeil_gguf_vtype et;
        uint64_t n;
        CHECK(k >= 0);
        CHECK_EQ_INT(qeil_gguf_kv_type(g, (size_t)k), QEIL_GGUF_ARRAY);
        CHECK_EQ_INT(qeil_gguf_get_arr(ctx, g, key, &et, &n), QEIL_OK);
        CHECK_EQ_INT(et, t);
        CHECK_EQ_INT(n, 2);
        CHECK(qeil_gguf_arr_f64(g, k, 0) == 0.0);
        CHECK(qeil_gguf_arr_f64(g, k, 1) == 1.0);
        CHECK(isnan(qeil_gguf_arr_f64(g, k, 2))); /* past the end */
        CHECK(qeil_gguf_arr_str(g, k, 0, NULL) == NULL); /* not strings */
    }
    int64_t k = qeil_gguf_find_key(g, "astr");
    size_t len = 0;
    const char *e = qeil_gguf_arr_str(g, k, 1, &len);
    CHECK_EQ_INT(len, 3);
    CHECK(e && memcmp(e, "b\0c", 4) == 0); /* NUL-terminated copy, length kept */
    CHECK_EQ_STR(qeil_gguf_arr_str(g, k, 2, &len), "");
    CHECK(qeil_gguf_arr_str(g, k, 3, &len) == NULL);
    CHECK_EQ_INT(len, 0);
    CHECK(isnan(qeil_gguf_arr_f64(g, k, 0)));
    CHECK(qeil_gguf_arr_str(g, -1, 0, &len) == NULL);
    CHECK(qeil_gguf_arr_str(g, 99, 0, &len) == NULL);
    CHECK(qeil_gguf_key_at(g, 24) == NULL);
    CHECK(isnan(qeil_gguf_arr_f64(g, qeil_gguf_find_key(g, "u8"), 0))); /* not an array */
    qeil_gguf_free(g);
    free(b.p);
    qeil_ctx_free(ctx);
}

TEST(non_default_alignment_roundtrip)
{
    qeil_ctx *ctx = new_ctx();
    qeil_gguf_writer *w = qeil_gguf_writer_create(ctx);
    uint8_t d[40 * 4];
    fill(d, sizeof d, 9);
    uint64_t ne1[1] = {3}, ne2[1] = {40};
    CHECK_EQ_INT(qeil_gguf_writer_add_tensor(w, "a", QEIL_GGML_F32, 1, ne1, d), QEIL_OK);
    CHECK_EQ_INT(qeil_gguf_writer_set_u32(w, "general.alignment", 64), QEIL_OK);
    CHECK_EQ_INT(qeil_gguf_writer_add_tensor(w, "b", QEIL_GGML_F32, 1, ne2, d), QEIL_OK);
    void *buf;
    size_t len;
    CHECK_EQ_INT(qeil_gguf_writer_to_memory(w, &buf, &len), QEIL_OK);
    qeil_gguf *g = NULL;
    CHECK_EQ_INT(qeil_gguf_from_memory(ctx, buf, len, &g), QEIL_OK);
    if (g) {
        CHECK_EQ_INT(qeil_gguf_alignment(g), 64);
        const qeil_gguf_tensor *t = qeil_gguf_tensor_at(g, 1);
        CHECK_EQ_INT(t->offset, 64);
        const uint8_t *p = qeil_gguf_tensor_data(g, t);
        CHECK_EQ_INT(((uintptr_t)p - (uintptr_t)buf) % 64, 0);
        CHECK(memcmp(p, d, 160) == 0);
    }
    qeil_gguf_free(g);
    qeil_free(ctx, buf);
    qeil_gguf_writer_free(w);
    qeil_ctx_free(ctx);
}

/* ------------------------------------------------------------------------ */
/* A llama-shaped file through the mmap path                                 */
/* ------------------------------------------------------------------------ */

#define LL_EMBD 256
#define LL_FF 512
#define LL_VOCAB 1000
#define LL_BLOCKS 3

static qeil_status add_zeros_tensor(qeil_gguf_writer *w, const char *name, int type, uint64_t ne0,
                                    uint64_t ne1, uint32_t seed)
{
    uint64_t ne[2] = {ne0, ne1};
    size_t nbytes = (size_t)qeil_ggml_nbytes(type, ne0 * ne1, NULL);
    uint8_t *d = malloc(nbytes);
    if (!d) abort();
    fill(d, nbytes, seed);
    qeil_status st = qeil_gguf_writer_add_tensor(w, name, type, ne1 > 1 ? 2 : 1, ne, d);
    free(d);
    return st;
}

static qeil_gguf_writer *make_llama_writer(qeil_ctx *ctx)
{
    qeil_gguf_writer *w = qeil_gguf_writer_create(ctx);
    if (!w) return NULL;
    static char tokbuf[LL_VOCAB][16];
    static const char *toks[LL_VOCAB];
    static float scores[LL_VOCAB];
    static int32_t ttype[LL_VOCAB];
    for (int i = 0; i < LL_VOCAB; i++) {
        snprintf(tokbuf[i], sizeof tokbuf[i], "tok%d", i);
        toks[i] = tokbuf[i];
        scores[i] = -(float)i;
        ttype[i] = i < 3 ? 3 : 1;
    }
    qeil_status st = QEIL_OK;
#define W(call) if (st == QEIL_OK) st = (call)
    W(qeil_gguf_writer_set_str(w, "general.architecture", "llama"));
    W(qeil_gguf_writer_set_str(w, "general.name", "tiny-llama-test"));
    W(qeil_gguf_writer_set_u32(w, "general.file_type", 15)); /* MOSTLY_Q4_K_M */
    W(qeil_gguf_writer_set_u32(w, "llama.block_count", LL_BLOCKS));
    W(qeil_gguf_writer_set_u32(w, "llama.context_length", 2048));
    W(qeil_gguf_writer_set_u32(w, "llama.embedding_length", LL_EMBD));
    W(qeil_gguf_writer_set_u32(w, "llama.feed_forward_length", LL_FF));
    W(qeil_gguf_writer_set_u32(w, "llama.attention.head_count", 8));
    W(qeil_gguf_writer_set_u32(w, "llama.attention.head_count_kv", 4));
    W(qeil_gguf_writer_set_f32(w, "llama.rope.freq_base", 10000.0f));
    W(qeil_gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f));
    W(qeil_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama"));
    W(qeil_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, LL_VOCAB));
    W(qeil_gguf_writer_set_arr_f32(w, "tokenizer.ggml.scores", scores, LL_VOCAB));
    W(qeil_gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", ttype, LL_VOCAB));
    W(qeil_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1));
    W(qeil_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", 1));
    W(add_zeros_tensor(w, "token_embd.weight", QEIL_GGML_Q4_K, LL_EMBD, LL_VOCAB, 1));
    for (int l = 0; l < LL_BLOCKS; l++) {
        static const struct {
            const char *n;
            int type;
            uint64_t ne0, ne1;
        } bt[] = {
            {"attn_norm.weight", QEIL_GGML_F32, LL_EMBD, 1},
            {"attn_q.weight", QEIL_GGML_Q4_K, LL_EMBD, LL_EMBD},
            {"attn_k.weight", QEIL_GGML_Q4_K, LL_EMBD, LL_EMBD / 2},
            {"attn_v.weight", QEIL_GGML_Q6_K, LL_EMBD, LL_EMBD / 2},
            {"attn_output.weight", QEIL_GGML_Q4_K, LL_EMBD, LL_EMBD},
            {"ffn_norm.weight", QEIL_GGML_F32, LL_EMBD, 1},
            {"ffn_gate.weight", QEIL_GGML_Q4_K, LL_EMBD, LL_FF},
            {"ffn_up.weight", QEIL_GGML_Q4_K, LL_EMBD, LL_FF},
            {"ffn_down.weight", QEIL_GGML_Q6_K, LL_FF, LL_EMBD},
        };
        for (size_t j = 0; j < sizeof bt / sizeof bt[0]; j++) {
            char name[64];
            snprintf(name, sizeof name, "blk.%d.%s", l, bt[j].n);
            W(add_zeros_tensor(w, name, bt[j].type, bt[j].ne0, bt[j].ne1, (uint32_t)(l * 16 + j)));
        }
    }
    W(add_zeros_tensor(w, "output_norm.weight", QEIL_GGML_F32, LL_EMBD, 1, 77));
    W(add_zeros_tensor(w, "output.weight", QEIL_GGML_Q6_K, LL_EMBD, LL_VOCAB, 78));
#undef W
    if (st != QEIL_OK) {
        qeil_gguf_writer_free(w);
        return NULL;
    }
    return w;
}

static char tmpdir[64];

static const char *tmp_path(const char *name)
{
    static char buf[160];
    snprintf(buf, sizeof buf, "%s/%s", tmpdir, name);
    return buf;
}

/* Number of entries in tmpdir whose name contains ".tmp-" (stray temps). */
static int count_temps(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d));) n += strstr(e->d_name, ".tmp-") != NULL;
    closedir(d);
    return n;
}

TEST(llama_shaped_file_via_mmap)
{
    qeil_ctx *ctx = new_ctx();
    qeil_gguf_writer *w = make_llama_writer(ctx);
    CHECK(w != NULL);
    if (!w) return;
    char path[160];
    snprintf(path, sizeof path, "%s", tmp_path("llama.gguf"));
    CHECK_EQ_INT(qeil_gguf_writer_write(w, path), QEIL_OK);
    CHECK_EQ_INT(count_temps(tmpdir), 0);
    struct stat sb;
    CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0644);

    qeil_gguf *g = NULL;
    CHECK_EQ_INT(qeil_gguf_open(ctx, path, &g), QEIL_OK);
    if (!g) { puts(qeil_ctx_errmsg(ctx)); qeil_gguf_writer_free(w); return; }
    CHECK_EQ_INT(qeil_gguf_file_size(g), (size_t)sb.st_size);
    /* the file on disk is byte-identical to the in-memory serialization */
    void *buf;
    size_t len;
    CHECK_EQ_INT(qeil_gguf_writer_to_memory(w, &buf, &len), QEIL_OK);
    CHECK_EQ_INT(len, (size_t)sb.st_size);
    size_t flen = 0;
    uint8_t *fbytes = slurp(path, &flen);
    CHECK(fbytes && flen == len && memcmp(fbytes, buf, len) == 0);
    free(fbytes);
    CHECK_EQ_STR(qeil_gguf_get_str(g, "general.architecture"), "llama");
    uint64_t u;
    CHECK_EQ_INT(qeil_gguf_get_u64(ctx, g, "llama.block_count", &u), QEIL_OK);
    CHECK_EQ_INT(u, LL_BLOCKS);
    double eps;
    CHECK_EQ_INT(qeil_gguf_get_f64(ctx, g, "llama.attention.layer_norm_rms_epsilon", &eps), QEIL_OK);
    CHECK_NEAR(eps, 1e-5, 1e-6, 0);
    int64_t k = qeil_gguf_find_key(g, "tokenizer.ggml.tokens");
    uint64_t n;
    qeil_gguf_vtype et;
    CHECK_EQ_INT(qeil_gguf_get_arr(ctx, g, "tokenizer.ggml.tokens", &et, &n), QEIL_OK);
    CHECK_EQ_INT(n, LL_VOCAB);
    CHECK_EQ_STR(qeil_gguf_arr_str(g, k, 999, NULL), "tok999");
    CHECK(qeil_gguf_arr_f64(g, qeil_gguf_find_key(g, "tokenizer.ggml.scores"), 500) == -500.0);
    CHECK_EQ_INT(qeil_gguf_n_tensors(g), 3 + 9 * LL_BLOCKS);
    int64_t ti = qeil_gguf_find_tensor(g, "blk.2.ffn_down.weight");
    CHECK(ti >= 0);
    if (ti >= 0) {
        const qeil_gguf_tensor *t = qeil_gguf_tensor_at(g, (size_t)ti);
        CHECK_EQ_INT(t->type, QEIL_GGML_Q6_K);
        CHECK_EQ_INT(t->ne[0], LL_FF);
        CHECK_EQ_INT(t->ne[1], LL_EMBD);
        CHECK_EQ_INT(t->nbytes, (uint64_t)LL_FF / 256 * 210 * LL_EMBD);
        uint8_t *want = malloc((size_t)t->nbytes);
        fill(want, (size_t)t->nbytes, 2 * 16 + 8);
        CHECK(memcmp(qeil_gguf_tensor_data(g, t), want, (size_t)t->nbytes) == 0);
        free(want);
    }
    /* every tensor is found by its name and aligned */
    for (size_t i = 0; i < qeil_gguf_n_tensors(g); i++) {
        const qeil_gguf_tensor *t = qeil_gguf_tensor_at(g, i);
        const uint8_t *d = qeil_gguf_tensor_data(g, t);
        CHECK(d != NULL);
        CHECK_EQ_INT(t->offset % 32, 0);
        CHECK_EQ_INT(qeil_gguf_find_tensor(g, t->name), (int64_t)i);
    }
    qeil_gguf_free(g);
    qeil_free(ctx, buf);
    qeil_gguf_writer_free(w);
    unlink(path);
    qeil_ctx_free(ctx);
}

TEST(thousand_tensors_found_by_name)
{
    qeil_ctx *ctx = new_ctx();
    qeil_gguf_writer *w = qeil_gguf_writer_create(ctx);
    float v[1] = {0};
    uint64_t ne[1] = {1};
    for (int i = 0; i < 1000; i++) {
        char name[32];
        snprintf(name, sizeof name, "blk.%d.w", i);
        v[0] = (float)i;
        CHECK_EQ_INT(qeil_gguf_writer_add_tensor(w, name, QEIL_GGML_F32, 1, ne, v), QEIL_OK);
    }
    void *buf;
    size_t len;
    CHECK_EQ_INT(qeil_gguf_writer_to_memory(w, &buf, &len), QEIL_OK);
    qeil_gguf *g = NULL;
    CHECK_EQ_INT(qeil_gguf_from_memory(ctx, buf, len, &g), QEIL_OK);
    int bad = 0;
    for (int i = 0; g && i < 1000; i++) {
        char name[32];
        snprintf(name, sizeof name, "blk.%d.w", i);
        int64_t ti = qeil_gguf_find_tensor(g, name);
        float got = -1;
        if (ti == i) memcpy(&got, qeil_gguf_tensor_data(g, qeil_gguf_tensor_at(g, (size_t)ti)), 4);
        bad += ti != i || got != (float)i;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(qeil_gguf_find_tensor(g, "blk.1000.w"), -1);
    CHECK_EQ_INT(qeil_gguf_find_tensor(g, "blk.1.w "), -1);
    qeil_gguf_free(g);
    qeil_free(ctx, buf);
    qeil_gguf_writer_free(w);
    qeil_ctx_free(ctx);
}

/* ------------------------------------------------------------------------ */
/* Truncation at every byte                                                  */
/* ------------------------------------------------------------------------ */

TEST(truncation_at_every_byte_fails_cleanly)
{
    qeil_ctx *ctx = new_ctx();
    qeil_gguf_writer *w = qeil_gguf_writer_create(ctx);
    static const char *const toks[] = {"a", "bb", "ccc"};
    static const float fs[] = {1, 2};
    uint8_t d[2 * 144];
    fill(d, sizeof d, 3);
    uint64_t ne_f[1] = {5}, ne_q[2] = {256, 2};
    qeil_gguf_writer_set_str(w, "general.architecture", "llama");
    qeil_gguf_writer_set_u32(w, "n", 7);
    qeil_gguf_writer_set_bool(w, "b", 1);
    qeil_gguf_writer_set_arr_str(w, "toks", toks, 3);
    qeil_gguf_writer_set_arr_f32(w, "fs", fs, 2);
    qeil_gguf_writer_add_tensor(w, "norm", QEIL_GGML_F32, 1, ne_f, d);
    qeil_gguf_writer_add_tensor(w, "q", QEIL_GGML_Q4_K, 2, ne_q, d);
    void *buf;
    size_t len;
    CHECK_EQ_INT(qeil_gguf_writer_to_memory(w, &buf, &len), QEIL_OK);

    /* The last tensor's bytes end at `need`; the writer pads after it, so
     * prefixes that only cut that padding are still complete files. */
    qeil_gguf *g = NULL;
    CHECK_EQ_INT(qeil_gguf_from_memory(ctx, buf, len, &g), QEIL_OK);
    if (!g) return;
    const qeil_gguf_tensor *last = qeil_gguf_tensor_at(g, 1);
    size_t need = (size_t)((const uint8_t *)qeil_gguf_tensor_data(g, last) - (const uint8_t *)buf +
                           last->nbytes);
    qeil_gguf_free(g);
    int wrong = 0;
    for (size_t cut = 0; cut <= len; cut++) {
        void *copy = NULL;
        qeil_status st = parse_copy(ctx, buf, cut, &g, &copy);
        int want_ok = cut >= need;
        if ((st == QEIL_OK) != want_ok || (st != QEIL_OK && st != QEIL_ERR_FORMAT)) {
            if (wrong++ < 5) printf("  cut %zu: status %d: %s\n", cut, st, qeil_ctx_errmsg(ctx));
        }
        if (g) {
            walk(ctx, g);
            qeil_gguf_free(g);
            free(copy);
            g = NULL;
        }
    }
    CHECK_EQ_INT(wrong, 0);
    qeil_free(ctx, buf);
    qeil_gguf_writer_free(w);
    qeil_ctx_free(ctx);
}

/* ------------------------------------------------------------------------ */
/* Corrupted fields: each case, the message it must give                     */
/* ------------------------------------------------------------------------ */

/* Header layout: magic @0, version @4, tensor_count @8, metadata_kv_count @16. */
static void c_too_small(tb *b) { tb_raw(b, "GGUF\3\0\0\0\0\0", 10); }
static void c_bad_magic(tb *b) { mini(b); b->p[3] = 'X'; }
static void c_version1(tb *b) { mini(b); tb_put_u32(b, 4, 1); }
static void c_version4(tb *b) { mini(b); tb_put_u32(b, 4, 4); }
static void c_big_endian(tb *b) { mini(b); tb_put_u32(b, 4, 0x03000000u); }
static void c_huge_tensor_count(tb *b) { mini(b); tb_put_u64(b, 8, 1ull << 40); }
static void c_tensor_count_vs_size(tb *b) { mini(b); tb_put_u64(b, 8, 60000); }
static void c_huge_kv_count(tb *b) { mini(b); tb_put_u64(b, 16, UINT64_MAX); }
static void c_kv_count_vs_size(tb *b) { mini(b); tb_put_u64(b, 16, 1000); }

static void c_huge_key_len(tb *b)
{
    hdr(b, 3, 0, 1);
    tb_u64(b, 1ull << 40);
    tb_zeros(b, 16);
}

static void c_empty_key(tb *b)
{
    hdr(b, 3, 0, 1);
    kv_u32(b, "", 1);
}

static void c_key_nul(tb *b)
{
    hdr(b, 3, 0, 1);
    tb_strn(b, "a\0b", 3);
    tb_u32(b, QEIL_GGUF_UINT32);
    tb_u32(b, 1);
}

static void c_dup_key(tb *b)
{
    hdr(b, 3, 0, 2);
    kv_str(b, "general.architecture", "llama");
    kv_u32(b, "general.architecture", 1);
}

/* control bytes in a name are escaped in the message */
static void c_dup_key_escape(tb *b)
{
    hdr(b, 3, 0, 2);
    kv_u32(b, "\x1b[31mred", 1);
    kv_u32(b, "\x1b[31mred", 2);
}

static void c_bad_vtype(tb *b)
{
    hdr(b, 3, 0, 1);
    kv_head(b, "k", 13);
    tb_u32(b, 0);
}

static void c_huge_string(tb *b)
{
    hdr(b, 3, 0, 1);
    kv_head(b, "k", QEIL_GGUF_STRING);
    tb_u64(b, 1ull << 30);
    tb_zeros(b, 16);
}

static void c_string_past_end(tb *b)
{
    hdr(b, 3, 0, 1);
    kv_head(b, "k", QEIL_GGUF_STRING);
    tb_u64(b, 100);
    tb_raw(b, "short", 5);
}

static void c_bool2(tb *b)
{
    hdr(b, 3, 0, 1);
    kv_head(b, "k", QEIL_GGUF_BOOL);
    tb_u8(b, 2);
}

static void c_huge_array(tb *b)
{
    hdr(b, 3, 0, 1);
    kv_head(b, "k", QEIL_GGUF_ARRAY);
    tb_u32(b, QEIL_GGUF_UINT32);
    tb_u64(b, 1ull << 32);
    tb_zeros(b, 16);
}

static void c_array_past_end(tb *b)
{
    hdr(b, 3, 0, 1);
    kv_head(b, "k", QEIL_GGUF_ARRAY);
    tb_u32(b, QEIL_GGUF_UINT32);
    tb_u64(b, 1000);
    tb_zeros(b, 16);
}

static void c_string_array_lie(tb *b)
{
    hdr(b, 3, 0, 1);
    kv_head(b, "tokenizer.ggml.tokens", QEIL_GGUF_ARRAY);
    tb_u32(b, QEIL_GGUF_STRING);
    tb_u64(b, 1u << 20);
    tb_str(b, "a");
    tb_str(b, "b");
}

static void c_nested_array(tb *b)
{
    hdr(b, 3, 0, 1);
    kv_head(b, "k", QEIL_GGUF_ARRAY);
    tb_u32(b, QEIL_GGUF_ARRAY);
    tb_u64(b, 1);
    tb_u32(b, QEIL_GGUF_UINT8);
    tb_u64(b, 1);
    tb_u8(b, 0);
}

static void c_bad_elem_type(tb *b)
{
    hdr(b, 3, 0, 1);
    kv_head(b, "k", QEIL_GGUF_ARRAY);
    tb_u32(b, 99);
    tb_u64(b, 1);
    tb_u8(b, 0);
}

static void c_bool_array(tb *b)
{
    hdr(b, 3, 0, 1);
    kv_head(b, "k", QEIL_GGUF_ARRAY);
    tb_u32(b, QEIL_GGUF_BOOL);
    tb_u64(b, 3);
    tb_u8(b, 1);
    tb_u8(b, 0);
    tb_u8(b, 255);
}

static void alignment_case(tb *b, uint32_t type, uint64_t v)
{
    static const uint64_t ne[1] = {8};
    hdr(b, 3, 1, 1);
    kv_head(b, "general.alignment", type);
    if (type == QEIL_GGUF_UINT64) tb_u64(b, v);
    else tb_u32(b, (uint32_t)v);
    tinfo(b, "w", 1, ne, QEIL_GGML_F32, 0);
    tb_pad(b, 32);
    tb_zeros(b, 32);
}

static void c_align0(tb *b) { alignment_case(b, QEIL_GGUF_UINT32, 0); }
static void c_align3(tb *b) { alignment_case(b, QEIL_GGUF_UINT32, 3); }
static void c_align_u64(tb *b) { alignment_case(b, QEIL_GGUF_UINT64, 32); }

static void c_tensor_name_nul(tb *b)
{
    hdr(b, 3, 1, 0);
    tb_strn(b, "w\0x", 3);
    tb_u32(b, 1);
    tb_u64(b, 8);
    tb_u32(b, QEIL_GGML_F32);
    tb_u64(b, 0);
    tb_pad(b, 32);
    tb_zeros(b, 32);
}

static void c_dup_tensor(tb *b)
{
    static const uint64_t ne[1] = {8};
    hdr(b, 3, 2, 0);
    tinfo(b, "w", 1, ne, QEIL_GGML_F32, 0);
    tinfo(b, "w", 1, ne, QEIL_GGML_F32, 32);
    tb_pad(b, 32);
    tb_zeros(b, 64);
}

static void c_ndims0(tb *b) { static const uint64_t ne[1] = {8}; one_tensor(b, "w", 0, ne, QEIL_GGML_F32, 0); }

static void c_ndims5(tb *b)
{
    static const uint64_t ne[5] = {8, 1, 1, 1, 1};
    one_tensor(b, "w", 5, ne, QEIL_GGML_F32, 0);
}

static void c_dim0(tb *b)
{
    static const uint64_t ne[2] = {8, 0};
    one_tensor(b, "blk.0.attn_q.weight", 2, ne, QEIL_GGML_F32, 0);
}

static void c_ne_overflow(tb *b)
{
    static const uint64_t ne[3] = {1ull << 32, 1ull << 32, 4};
    one_tensor(b, "w", 3, ne, QEIL_GGML_F32, 0);
}

static void c_nbytes_overflow(tb *b)
{
    static const uint64_t ne[1] = {1ull << 62};
    one_tensor(b, "w", 1, ne, QEIL_GGML_F32, 0);
}

static void c_unknown_type(tb *b) { static const uint64_t ne[1] = {32}; one_tensor(b, "w", 1, ne, 5, 0); }
static void c_unknown_type_big(tb *b) { static const uint64_t ne[1] = {32}; one_tensor(b, "w", 1, ne, 1000, 0); }

static void c_not_block_multiple(tb *b)
{
    static const uint64_t ne[2] = {16, 2};
    one_tensor(b, "w", 2, ne, QEIL_GGML_Q4_0, 0);
}

static void c_misaligned(tb *b) { static const uint64_t ne[1] = {8}; one_tensor(b, "w", 1, ne, QEIL_GGML_F32, 4); }
static void c_out_of_bounds(tb *b) { static const uint64_t ne[1] = {8}; one_tensor(b, "blk.0.attn_q.weight", 1, ne, QEIL_GGML_F32, 64); }

static void c_offset_overflow(tb *b)
{
    static const uint64_t ne[1] = {8};
    one_tensor(b, "w", 1, ne, QEIL_GGML_F32, UINT64_MAX - 31);
}

static void c_no_data_section(tb *b)
{
    static const uint64_t ne[1] = {8};
    hdr(b, 3, 1, 0);
    tinfo(b, "w", 1, ne, QEIL_GGML_F32, 0);
}

typedef struct {
    const char *name;
    void (*build)(tb *b);
    const char *want; /* substring of the error message */
} corrupt_case;

static const corrupt_case corrupt_cases[] = {
    {"too_small", c_too_small, "file too small (10 bytes"},
    {"bad_magic", c_bad_magic, "bad magic 47 47 55 58"},
    {"version1", c_version1, "version 1 is not supported"},
    {"version4", c_version4, "version 4 is not supported (supported versions 2..3) (at byte 4)"},
    {"big_endian", c_big_endian, "big-endian GGUF files are not supported"},
    {"huge_tensor_count", c_huge_tensor_count, "tensor_count 1099511627776 exceeds the limit 65536 (at byte 8)"},
    {"tensor_count_vs_size", c_tensor_count_vs_size, "tensor_count 60000 needs at least"},
    {"huge_kv_count", c_huge_kv_count, "metadata_kv_count 18446744073709551615 exceeds the limit 65536 (at byte 16)"},
    {"kv_count_vs_size", c_kv_count_vs_size, "metadata_kv_count 1000 needs at least 14000 bytes"},
    {"huge_key_len", c_huge_key_len, "metadata pair 0: key length 1099511627776 exceeds the limit 65535 (at byte 24)"},
    {"empty_key", c_empty_key, "metadata pair 0: empty key"},
    {"key_nul", c_key_nul, "key contains a NUL byte"},
    {"dup_key", c_dup_key, "key 'general.architecture': duplicate key"},
    {"dup_key_escape", c_dup_key_escape, "gguf: key '\\x1b[31mred': duplicate key (at byte 48)"},
    {"bad_vtype", c_bad_vtype, "key 'k': unknown value type 13"},
    {"huge_string", c_huge_string, "key 'k': string value length 1073741824 exceeds the limit 16777216"},
    {"string_past_end", c_string_past_end, "key 'k': truncated string value: needs 100 bytes, 5 left"},
    {"bool2", c_bool2, "key 'k': bool value 2 is not 0 or 1"},
    {"huge_array", c_huge_array, "key 'k': array length 4294967296 exceeds the limit 16777216"},
    {"array_past_end", c_array_past_end, "key 'k': truncated array data: needs 4000 bytes"},
    {"string_array_lie", c_string_array_lie, "key 'tokenizer.ggml.tokens': array of 1048576 strings needs at least"},
    {"nested_array", c_nested_array, "nested arrays (array of array) are not supported"},
    {"bad_elem_type", c_bad_elem_type, "unknown array element type 99"},
    {"bool_array", c_bool_array, "bool value 255 is not 0 or 1"},
    {"align0", c_align0, "key 'general.alignment': value 0 is not a power of two"},
    {"align3", c_align3, "key 'general.alignment': value 3 is not a power of two"},
    {"align_u64", c_align_u64, "key 'general.alignment': has type uint64, must be uint32"},
    {"tensor_name_nul", c_tensor_name_nul, "tensor 0: tensor name contains a NUL byte"},
    {"dup_tensor", c_dup_tensor, "tensor 'w': duplicate tensor name"},
    {"ndims0", c_ndims0, "tensor 'w': n_dims 0 is outside 1..4"},
    {"ndims5", c_ndims5, "tensor 'w': n_dims 5 is outside 1..4"},
    {"dim0", c_dim0, "tensor 'blk.0.attn_q.weight': ne[1] = 0 (dims must be >= 1)"},
    {"ne_overflow", c_ne_overflow, "tensor 'w': element count overflows"},
    {"nbytes_overflow", c_nbytes_overflow, "tensor 'w': size of 4611686018427387904 f32 elements overflows"},
    {"unknown_type", c_unknown_type, "tensor 'w': unknown tensor type 5"},
    {"unknown_type_big", c_unknown_type_big, "tensor 'w': unknown tensor type 1000"},
    {"not_block_multiple", c_not_block_multiple, "tensor 'w': ne[0] = 16 is not a multiple of the q4_0 block size 32"},
    {"misaligned", c_misaligned, "tensor 'w': data offset 4 is not a multiple of the alignment 32"},
    {"out_of_bounds", c_out_of_bounds, "tensor 'blk.0.attn_q.weight': data [160, 192) extends past end of file (size 160)"},
    {"offset_overflow", c_offset_overflow, "tensor 'w': data offset 18446744073709551584 + size 32 overflows"},
    {"no_data_section", c_no_data_section, "data section would start at byte 64, past end of file (size 57)"},
};
#define N_CORRUPT (sizeof corrupt_cases / sizeof corrupt_cases[0])

TEST(corrupted_fields_rejected_with_message)
{
    qeil_ctx *ctx = new_ctx();
    for (size_t i = 0; i < N_CORRUPT; i++) {
        tb b = {0};
        corrupt_cases[i].build(&b);
        qeil_gguf *g = NULL;
        void *copy = NULL;
        qeil_status st = parse_copy(ctx, b.p, b.n, &g, &copy);
        if (st != QEIL_ERR_FORMAT)
            printf("  case %s: status %d, want QEIL_ERR_FORMAT\n", corrupt_cases[i].name, st);
        CHECK_EQ_INT(st, QEIL_ERR_FORMAT);
        CHECK(g == NULL);
        const char *msg = qeil_ctx_errmsg(ctx);
        if (!strstr(msg, corrupt_cases[i].want)) printf("  case %s:\n", corrupt_cases[i].name);
        CHECK_CONTAINS(msg, corrupt_cases[i].want);
        CHECK(strncmp(msg, "gguf: ", 6) == 0);
        if (g) { qeil_gguf_free(g); free(copy); }
        free(b.p);
    }
    qeil_ctx_free(ctx);
}

/* The base file the cases mutate must itself be valid, or the cases prove
 * nothing. */
TEST(corrupt_case_bases_are_valid)
{
    qeil_ctx *ctx = new_ctx();
    tb b = {0};
    mini(&b);
    qeil_gguf *g = NULL;
    CHECK_EQ_INT(qeil_gguf_from_memory(ctx, b.p, b.n, &g), QEIL_OK);
    qeil_gguf_free(g);
    free(b.p);
    b = (tb){0};
    alignment_case(&b, QEIL_GGUF_UINT32, 16);
    CHECK_EQ_INT(qeil_gguf_from_memory(ctx, b.p, b.n, &g), QEIL_OK);
    CHECK_EQ_INT(qeil_gguf_alignment(g), 16);
    qeil_gguf_free(g);
    free(b.p);
    b = (tb){0};
    static const uint64_t ne[2] = {32, 2};
    one_tensor(&b, "w", 2, ne, QEIL_GGML_Q4_0, 0);
    CHECK_EQ_INT(qeil_gguf_from_memory(ctx, b.p, b.n, &g), QEIL_OK);
    qeil_gguf_free(g);
    free(b.p);
    /* no tensors: the file may stop before the data-section padding */
    b = (tb){0};
    hdr(&b, 3, 0, 1);
    kv_u32(&b, "k", 5);
    CHECK_EQ_INT(qeil_gguf_from_memory(ctx, b.p, b.n, &g), QEIL_OK);
    CHECK_EQ_INT(qeil_gguf_n_tensors(g), 0);
    qeil_gguf_free(g);
    free(b.p);
    qeil_ctx_free(ctx);
}

/* ------------------------------------------------------------------------ */
/* Getters: wrong type, absent key                                           */
/* ------------------------------------------------------------------------ */

TEST(getter_type_errors)
{
    qeil_ctx *ctx = new_ctx();
    qeil_gguf_writer *w = qeil_gguf_writer_create(ctx);
    static const float fs[] = {1};
    qeil_gguf_writer_set_str(w, "s", "x");
    qeil_gguf_writer_set_i32(w, "neg", -1);
    qeil_gguf_writer_set_u32(w, "u", 3);
    qeil_gguf_writer_set_f32(w, "f", 0.5f);
    qeil_gguf_writer_set_bool(w, "b", 0);
    qeil_gguf_writer_set_arr_f32(w, "a", fs, 1);
    void *buf;
    size_t len;
    CHECK_EQ_INT(qeil_gguf_writer_to_memory(w, &buf, &len), QEIL_OK);
    qeil_gguf *g = NULL;
    CHECK_EQ_INT(qeil_gguf_from_memory(ctx, buf, len, &g), QEIL_OK);
    if (!g) return;
    uint64_t u = 42;
    int64_t s;
    double f;
    int b;
    qeil_gguf_vtype et;
    uint64_t n;
    static const struct {
        int which; /* 0 u64, 1 i64, 2 f64, 3 bool, 4 arr */
        const char *key;
        qeil_status st;
        const char *want;
    } cases[] = {
        {0, "s", QEIL_ERR_FORMAT, "key 's' has type string, wanted an integer (uint64)"},
        {0, "f", QEIL_ERR_FORMAT, "key 'f' has type float32, wanted an integer (uint64)"},
        {0, "b", QEIL_ERR_FORMAT, "key 'b' has type bool, wanted an integer (uint64)"},
        {0, "neg", QEIL_ERR_FORMAT, "key 'neg' = -1 (int32) does not fit uint64"},
        {1, "a", QEIL_ERR_FORMAT, "key 'a' has type array, wanted an integer (int64)"},
        {2, "s", QEIL_ERR_FORMAT, "key 's' has type string, wanted a number (float64)"},
        {3, "u", QEIL_ERR_FORMAT, "key 'u' has type uint32, wanted bool"},
        {4, "u", QEIL_ERR_FORMAT, "key 'u' has type uint32, wanted array"},
        {0, "missing", QEIL_ERR_NOTFOUND, "key 'missing' not found"},
        {2, "missing", QEIL_ERR_NOTFOUND, "key 'missing' not found"},
        {4, "missing", QEIL_ERR_NOTFOUND, "key 'missing' not found"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        qeil_status st = QEIL_OK;
        switch (cases[i].which) {
        case 0: st = qeil_gguf_get_u64(ctx, g, cases[i].key, &u); break;
        case 1: st = qeil_gguf_get_i64(ctx, g, cases[i].key, &s); break;
        case 2: st = qeil_gguf_get_f64(ctx, g, cases[i].key, &f); break;
        case 3: st = qeil_gguf_get_bool(ctx, g, cases[i].key, &b); break;
        default: st = qeil_gguf_get_arr(ctx, g, cases[i].key, &et, &n); break;
        }
        CHECK_EQ_INT(st, cases[i].st);
        CHECK_CONTAINS(qeil_ctx_errmsg(ctx), cases[i].want);
    }
    CHECK_EQ_INT(u, 42); /* untouched on failure */
    CHECK(qeil_gguf_get_str(g, "u") == NULL);
    CHECK(qeil_gguf_get_str(g, "missing") == NULL);
    CHECK_EQ_INT(qeil_gguf_find_key(g, "missing"), -1);
    CHECK_EQ_INT(qeil_gguf_find_key(g, NULL), -1);
    CHECK(qeil_gguf_kv_type(g, 99) != QEIL_GGUF_UINT8);
    CHECK_EQ_INT(qeil_gguf_get_f64(ctx, g, "u", &f), QEIL_OK);
    CHECK(f == 3.0);
    qeil_gguf_free(g);
    qeil_free(ctx, buf);
    qeil_gguf_writer_free(w);
    qeil_ctx_free(ctx);
}

TEST(null_handles_are_harmless)
{
    qeil_gguf_free(NULL);
    qeil_gguf_writer_free(NULL);
    CHECK_EQ_INT(qeil_gguf_n_kv(NULL), 0);
    CHECK_EQ_INT(qeil_gguf_n_tensors(NULL), 0);
    CHECK(qeil_gguf_tensor_at(NULL, 0) == NULL);
    CHECK_EQ_INT(qeil_gguf_find_tensor(NULL, "x"), -1);
    CHECK(qeil_gguf_get_str(NULL, "x") == NULL);
    qeil_ctx *ctx = new_ctx();
    qeil_gguf *g = (qeil_gguf *)&g;
    CHECK_EQ_INT(qeil_gguf_from_memory(ctx, NULL, 0, &g), QEIL_ERR_FORMAT);
    CHECK(g == NULL);
    CHECK_EQ_INT(qeil_gguf_from_memory(ctx, NULL, 5, &g), QEIL_ERR_INVALID);
    uint64_t u;
    CHECK_EQ_INT(qeil_gguf_get_u64(ctx, NULL, "x", &u), QEIL_ERR_INVALID);
    qeil_ctx_free(ctx);
}

/* ------------------------------------------------------------------------ */
/* Opening files                                                             */
/* ------------------------------------------------------------------------ */

static int write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(p, 1, n, f);
    return fclose(f) == 0 && w == n ? 0 : -1;
}

TEST(open_errors_name_the_path)
{
    qeil_ctx *ctx = new_ctx();
    qeil_gguf *g = NULL;
    char path[160];
    snprintf(path, sizeof path, "%s", tmp_path("missing.gguf"));
    CHECK_EQ_INT(qeil_gguf_open(ctx, path, &g), QEIL_ERR_IO);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "cannot open");
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), path);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), strerror(ENOENT));

    CHECK_EQ_INT(qeil_gguf_open(ctx, tmpdir, &g), QEIL_ERR_IO);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "is not a regular file");

    snprintf(path, sizeof path, "%s", tmp_path("small.gguf"));
    CHECK(write_bytes(path, "GGUF\3\0\0\0", 8) == 0);
    CHECK_EQ_INT(qeil_gguf_open(ctx, path, &g), QEIL_ERR_FORMAT);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "too small to be a GGUF file (8 bytes");
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), path);
    unlink(path);

    snprintf(path, sizeof path, "%s", tmp_path("empty.gguf"));
    CHECK(write_bytes(path, "", 0) == 0);
    CHECK_EQ_INT(qeil_gguf_open(ctx, path, &g), QEIL_ERR_FORMAT);
    unlink(path);

    tb b = {0};
    c_misaligned(&b);
    snprintf(path, sizeof path, "%s", tmp_path("bad.gguf"));
    CHECK(write_bytes(path, b.p, b.n) == 0);
    CHECK_EQ_INT(qeil_gguf_open(ctx, path, &g), QEIL_ERR_FORMAT);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "gguf: tensor 'w': data offset 4 is not a multiple");
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), path);
    CHECK(g == NULL);
    unlink(path);
    free(b.p);
    qeil_ctx_free(ctx);
}

/* ------------------------------------------------------------------------ */
/* Writer                                                                    */
/* ------------------------------------------------------------------------ */

TEST(writer_rejects_bad_input)
{
    qeil_ctx *ctx = new_ctx();
    qeil_gguf_writer *w = qeil_gguf_writer_create(ctx);
    float d[64] = {0};
    uint64_t ne[2] = {32, 2}, ne0[2] = {0, 2}, ne16[1] = {16};
    CHECK_EQ_INT(qeil_gguf_writer_set_u32(w, "k", 1), QEIL_OK);
    CHECK_EQ_INT(qeil_gguf_writer_set_str(w, "k", "again"), QEIL_ERR_INVALID);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "key 'k' already set");
    CHECK_EQ_INT(qeil_gguf_writer_set_u32(w, "", 1), QEIL_ERR_INVALID);
    CHECK_EQ_INT(qeil_gguf_writer_set_str(w, "s", NULL), QEIL_ERR_INVALID);
    CHECK_EQ_INT(qeil_gguf_writer_set_arr_f32(w, "a", NULL, 3), QEIL_ERR_INVALID);
    static const char *const bad_strs[] = {"a", NULL};
    CHECK_EQ_INT(qeil_gguf_writer_set_arr_str(w, "as", bad_strs, 2), QEIL_ERR_INVALID);
    CHECK_EQ_INT(qeil_gguf_writer_set_u32(w, "general.alignment", 48), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "general.alignment = 48");
    CHECK_EQ_INT(qeil_gguf_writer_set_u32(w, "general.alignment", 0), QEIL_ERR_RANGE);
    CHECK_EQ_INT(qeil_gguf_writer_set_u64(w, "general.alignment", 64), QEIL_ERR_INVALID);
    CHECK_EQ_INT(qeil_gguf_writer_add_tensor(w, "t", QEIL_GGML_F32, 2, ne, d), QEIL_OK);
    CHECK_EQ_INT(qeil_gguf_writer_add_tensor(w, "t", QEIL_GGML_F32, 2, ne, d), QEIL_ERR_INVALID);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "tensor 't' already added");
    CHECK_EQ_INT(qeil_gguf_writer_add_tensor(w, "u", 5, 2, ne, d), QEIL_ERR_INVALID);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "unknown type 5");
    CHECK_EQ_INT(qeil_gguf_writer_add_tensor(w, "u", QEIL_GGML_F32, 0, ne, d), QEIL_ERR_RANGE);
    CHECK_EQ_INT(qeil_gguf_writer_add_tensor(w, "u", QEIL_GGML_F32, 5, ne, d), QEIL_ERR_RANGE);
    CHECK_EQ_INT(qeil_gguf_writer_add_tensor(w, "u", QEIL_GGML_F32, 2, ne0, d), QEIL_ERR_RANGE);
    CHECK_EQ_INT(qeil_gguf_writer_add_tensor(w, "u", QEIL_GGML_Q8_0, 1, ne16, d), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "ne[0] = 16 is not a multiple of the q8_0 block size 32");
    CHECK_EQ_INT(qeil_gguf_writer_add_tensor(w, "u", QEIL_GGML_F32, 2, ne, NULL), QEIL_ERR_INVALID);
    CHECK_EQ_INT(qeil_gguf_writer_add_tensor(w, "", QEIL_GGML_F32, 2, ne, d), QEIL_ERR_INVALID);
    char longname[80];
    memset(longname, 'x', 64);
    longname[64] = '\0';
    CHECK_EQ_INT(qeil_gguf_writer_add_tensor(w, longname, QEIL_GGML_F32, 2, ne, d), QEIL_ERR_RANGE);
    longname[63] = '\0';
    CHECK_EQ_INT(qeil_gguf_writer_add_tensor(w, longname, QEIL_GGML_F32, 2, ne, d), QEIL_OK);
    /* what was accepted still writes a valid file */
    void *buf;
    size_t len;
    CHECK_EQ_INT(qeil_gguf_writer_to_memory(w, &buf, &len), QEIL_OK);
    qeil_gguf *g = NULL;
    CHECK_EQ_INT(qeil_gguf_from_memory(ctx, buf, len, &g), QEIL_OK);
    CHECK_EQ_INT(qeil_gguf_n_kv(g), 1);
    CHECK_EQ_INT(qeil_gguf_n_tensors(g), 2);
    qeil_gguf_free(g);
    qeil_free(ctx, buf);
    CHECK_EQ_INT(qeil_gguf_writer_set_u32(NULL, "k", 1), QEIL_ERR_INVALID);
    qeil_gguf_writer_free(w);
    qeil_ctx_free(ctx);
}

TEST(empty_writer_gives_valid_file)
{
    qeil_ctx *ctx = new_ctx();
    qeil_gguf_writer *w = qeil_gguf_writer_create(ctx);
    void *buf;
    size_t len;
    CHECK_EQ_INT(qeil_gguf_writer_to_memory(w, &buf, &len), QEIL_OK);
    CHECK_EQ_INT(len, 32); /* 24-byte header padded to 32 */
    qeil_gguf *g = NULL;
    CHECK_EQ_INT(qeil_gguf_from_memory(ctx, buf, len, &g), QEIL_OK);
    CHECK_EQ_INT(qeil_gguf_n_kv(g), 0);
    CHECK_EQ_INT(qeil_gguf_n_tensors(g), 0);
    qeil_gguf_free(g);
    qeil_free(ctx, buf);
    qeil_gguf_writer_free(w);
    qeil_ctx_free(ctx);
}

TEST(atomic_write_replaces_or_leaves_untouched)
{
    qeil_ctx *ctx = new_ctx();
    char path[160];
    snprintf(path, sizeof path, "%s", tmp_path("model.gguf"));
    CHECK(write_bytes(path, "old contents", 12) == 0);
    chmod(path, 0600);
    qeil_gguf_writer *w = qeil_gguf_writer_create(ctx);
    qeil_gguf_writer_set_str(w, "general.architecture", "llama");
    CHECK_EQ_INT(qeil_gguf_writer_write(w, path), QEIL_OK);
    struct stat sb;
    CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600); /* mode kept */
    qeil_gguf *g = NULL;
    CHECK_EQ_INT(qeil_gguf_open(ctx, path, &g), QEIL_OK);
    CHECK_EQ_STR(qeil_gguf_get_str(g, "general.architecture"), "llama");
    qeil_gguf_free(g);

    /* target is a directory: refused, the directory and its content
     * stay, no temp file is left behind */
    char dir[160];
    snprintf(dir, sizeof dir, "%s", tmp_path("adir"));
    CHECK(mkdir(dir, 0755) == 0);
    CHECK_EQ_INT(qeil_gguf_writer_write(w, dir), QEIL_ERR_IO);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "not a regular file");
    CHECK(stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode));
    CHECK_EQ_INT(count_temps(tmpdir), 0);
    rmdir(dir);

    /* a FIFO or a symbolic link is refused too: the rename would have
     * replaced the node or the link with a regular file */
    char fifo[160], link_[160];
    snprintf(fifo, sizeof fifo, "%s", tmp_path("afifo"));
    snprintf(link_, sizeof link_, "%s", tmp_path("alink"));
    CHECK(mkfifo(fifo, 0644) == 0);
    CHECK(symlink(path, link_) == 0);
    CHECK_EQ_INT(qeil_gguf_writer_write(w, fifo), QEIL_ERR_IO);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "not a regular file");
    CHECK(lstat(fifo, &sb) == 0 && S_ISFIFO(sb.st_mode));
    CHECK_EQ_INT(qeil_gguf_writer_write(w, link_), QEIL_ERR_IO);
    CHECK(lstat(link_, &sb) == 0 && S_ISLNK(sb.st_mode));
    CHECK_EQ_INT(count_temps(tmpdir), 0);
    unlink(fifo);
    unlink(link_);

    /* missing directory: cannot even create the temp file */
    char nodir[160];
    snprintf(nodir, sizeof nodir, "%s/no/such/dir/x.gguf", tmpdir);
    CHECK_EQ_INT(qeil_gguf_writer_write(w, nodir), QEIL_ERR_IO);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "cannot create a temporary file next to");
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), nodir);

    /* the good file from before is still intact */
    CHECK_EQ_INT(qeil_gguf_open(ctx, path, &g), QEIL_OK);
    qeil_gguf_free(g);
    unlink(path);
    qeil_gguf_writer_free(w);
    qeil_ctx_free(ctx);
}

/* ------------------------------------------------------------------------ */
/* Allocation failure at every allocation (SQLite-style)                     */
/* ------------------------------------------------------------------------ */

typedef struct {
    long budget; /* allocations allowed before failing */
    long used;
} alloc_budget;

static void *budget_realloc(void *user, void *ptr, size_t size)
{
    alloc_budget *a = user;
    if (size == 0) {
        free(ptr);
        return NULL;
    }
    if (a->used >= a->budget) return NULL;
    a->used++;
    return realloc(ptr, size);
}

TEST(out_of_memory_at_every_allocation)
{
    alloc_budget a = {LONG_MAX, 0};
    qeil_ctx_params p = qeil_ctx_default_params();
    p.realloc = budget_realloc;
    p.alloc_user = &a;
    qeil_ctx *ctx = qeil_ctx_create(&p);
    CHECK(ctx != NULL);
    /* a reference file, built with an unlimited budget */
    qeil_ctx *plain = new_ctx();
    qeil_gguf_writer *ref = make_llama_writer(plain);
    void *file = NULL;
    size_t len = 0;
    CHECK_EQ_INT(qeil_gguf_writer_to_memory(ref, &file, &len), QEIL_OK);
    qeil_gguf_writer_free(ref);

    int reader_done = 0, writer_done = 0, bad = 0;
    for (long k = 0; k < 20000 && !(reader_done && writer_done); k++) {
        if (!reader_done) {
            a.used = 0;
            a.budget = k;
            qeil_gguf *g = NULL;
            qeil_status st = qeil_gguf_from_memory(ctx, file, len, &g);
            if (st == QEIL_OK) reader_done = 1;
            else bad += st != QEIL_ERR_NOMEM;
            qeil_gguf_free(g);
        }
        if (!writer_done) {
            a.used = 0;
            a.budget = k;
            qeil_gguf_writer *w = make_llama_writer(ctx);
            void *out = NULL;
            size_t n = 0;
            qeil_status st = w ? qeil_gguf_writer_to_memory(w, &out, &n) : QEIL_ERR_NOMEM;
            if (st == QEIL_OK) {
                writer_done = 1;
                bad += n != len || memcmp(out, file, len) != 0;
            } else {
                bad += st != QEIL_ERR_NOMEM;
            }
            a.budget = LONG_MAX;
            qeil_free(ctx, out);
            qeil_gguf_writer_free(w);
        }
    }
    CHECK(reader_done && writer_done);
    CHECK_EQ_INT(bad, 0);
    a.budget = LONG_MAX;
    qeil_free(plain, file);
    qeil_ctx_free(plain);
    qeil_ctx_free(ctx);
}

/* ------------------------------------------------------------------------ */
/* Fuzz corpus regression run                                                */
/* ------------------------------------------------------------------------ */

#define CORPUS_DIR "tests/fuzz/corpus/gguf"

/* Every corpus file goes through from_memory (exact-size copy) and, when it
 * parses, through every getter. Files named ok-* must parse, bad-* must be
 * rejected; anything else (fuzzer finds) only must not crash. */
TEST(fuzz_corpus_regression)
{
    DIR *d = opendir(CORPUS_DIR);
    if (!d) {
        TEST_FAIL_("cannot open %s (run tests from the repository root)", CORPUS_DIR);
        return;
    }
    qeil_ctx *ctx = new_ctx();
    int files = 0, ok = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", CORPUS_DIR, e->d_name);
        size_t len = 0;
        uint8_t *p = slurp(path, &len);
        if (!p) continue;
        files++;
        qeil_gguf *g = NULL;
        void *copy = NULL;
        qeil_status st = parse_copy(ctx, p, len, &g, &copy);
        if (st == QEIL_OK) {
            ok++;
            walk(ctx, g);
            qeil_gguf_free(g);
            free(copy);
        }
        if (strncmp(e->d_name, "ok-", 3) == 0 && st != QEIL_OK)
            TEST_FAIL_("%s should parse: %s", path, qeil_ctx_errmsg(ctx));
        if (strncmp(e->d_name, "bad-", 4) == 0 && st == QEIL_OK)
            TEST_FAIL_("%s should be rejected", path);
        free(p);
    }
    closedir(d);
    printf("  corpus: %d files, %d valid\n", files, ok);
    CHECK(files >= (int)N_CORRUPT);
    CHECK(ok >= 3);
    qeil_ctx_free(ctx);
}

/* ------------------------------------------------------------------------ */
/* Seed corpus writer: test_gguf --write-corpus DIR                          */
/* ------------------------------------------------------------------------ */

static int write_corpus(const char *dir)
{
    char path[512];
    int n = 0;
    for (size_t i = 0; i < N_CORRUPT; i++) {
        tb b = {0};
        corrupt_cases[i].build(&b);
        snprintf(path, sizeof path, "%s/bad-%s.gguf", dir, corrupt_cases[i].name);
        if (b.n > 4096 || write_bytes(path, b.p, b.n) != 0) return -1;
        free(b.p);
        n++;
    }
    tb b = {0};
    mini(&b);
    snprintf(path, sizeof path, "%s/ok-mini.gguf", dir);
    if (write_bytes(path, b.p, b.n) != 0) return -1;
    free(b.p);
    b = (tb){0};
    all_value_types(&b);
    snprintf(path, sizeof path, "%s/ok-all-value-types.gguf", dir);
    if (write_bytes(path, b.p, b.n) != 0) return -1;
    free(b.p);
    n += 2;

    /* small writer outputs: KV types and a few tensor types */
    qeil_ctx *ctx = new_ctx();
    qeil_gguf_writer *w = qeil_gguf_writer_create(ctx);
    static const char *const toks[] = {"<s>", "</s>", "a", "b"};
    static const float fs[] = {0, -1, -2, -3};
    static const int32_t is[] = {3, 3, 1, 1};
    uint8_t d[2 * 210];
    fill(d, sizeof d, 5);
    uint64_t ne_f[1] = {16}, ne_q8[2] = {32, 2}, ne_q6[1] = {256}, ne_q4[1] = {256};
    qeil_gguf_writer_set_str(w, "general.architecture", "llama");
    qeil_gguf_writer_set_u32(w, "llama.block_count", 1);
    qeil_gguf_writer_set_u64(w, "big", 1ull << 40);
    qeil_gguf_writer_set_i32(w, "neg", -5);
    qeil_gguf_writer_set_f32(w, "llama.rope.freq_base", 10000.0f);
    qeil_gguf_writer_set_bool(w, "flag", 1);
    qeil_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 4);
    qeil_gguf_writer_set_arr_f32(w, "tokenizer.ggml.scores", fs, 4);
    qeil_gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", is, 4);
    qeil_gguf_writer_add_tensor(w, "blk.0.attn_norm.weight", QEIL_GGML_F32, 1, ne_f, d);
    qeil_gguf_writer_add_tensor(w, "blk.0.attn_q.weight", QEIL_GGML_Q8_0, 2, ne_q8, d);
    qeil_gguf_writer_add_tensor(w, "blk.0.ffn_down.weight", QEIL_GGML_Q6_K, 1, ne_q6, d);
    qeil_gguf_writer_add_tensor(w, "output.weight", QEIL_GGML_Q4_K, 1, ne_q4, d);
    void *buf;
    size_t len;
    int rc = -1;
    if (qeil_gguf_writer_to_memory(w, &buf, &len) == QEIL_OK) {
        snprintf(path, sizeof path, "%s/ok-writer-small.gguf", dir);
        rc = len <= 4096 ? write_bytes(path, buf, len) : -1;
        qeil_free(ctx, buf);
        n++;
    }
    qeil_gguf_writer_free(w);
    w = qeil_gguf_writer_create(ctx);
    qeil_gguf_writer_set_u32(w, "general.alignment", 64);
    qeil_gguf_writer_add_tensor(w, "a", QEIL_GGML_F32, 1, ne_f, d);
    qeil_gguf_writer_add_tensor(w, "b", QEIL_GGML_F16, 1, ne_f, d);
    if (rc == 0 && qeil_gguf_writer_to_memory(w, &buf, &len) == QEIL_OK) {
        snprintf(path, sizeof path, "%s/ok-align64.gguf", dir);
        rc = write_bytes(path, buf, len);
        qeil_free(ctx, buf);
        n++;
    }
    qeil_gguf_writer_free(w);
    qeil_ctx_free(ctx);
    if (rc != 0) return -1;
    return n;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--write-corpus") == 0) {
        int n = write_corpus(argv[2]);
        if (n < 0) {
            fprintf(stderr, "test_gguf: cannot write corpus to %s\n", argv[2]);
            return 1;
        }
        printf("wrote %d files to %s\n", n, argv[2]);
        return 0;
    }
    snprintf(tmpdir, sizeof tmpdir, "/tmp/qeil-gguf-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(type_table_matches_ggml);
    RUN(nbytes_checks_multiple_and_overflow);
    RUN(writer_reader_roundtrip);
    RUN(reader_decodes_every_value_type);
    RUN(non_default_alignment_roundtrip);
    RUN(llama_shaped_file_via_mmap);
    RUN(thousand_tensors_found_by_name);
    RUN(truncation_at_every_byte_fails_cleanly);
    RUN(corrupted_fields_rejected_with_message);
    RUN(corrupt_case_bases_are_valid);
    RUN(getter_type_errors);
    RUN(null_handles_are_harmless);
    RUN(open_errors_name_the_path);
    RUN(writer_rejects_bad_input);
    RUN(empty_writer_gives_valid_file);
    RUN(atomic_write_replaces_or_leaves_untouched);
    RUN(out_of_memory_at_every_allocation);
    RUN(fuzz_corpus_regression);
    rmdir(tmpdir);
    return test_summary("gguf");
}
