/* fuzz_gguf.c — libFuzzer target for the GGUF reader (and, on inputs that
 * parse, the writer). Build and run: tests/fuzz/build.sh.
 *
 * Properties checked on every input:
 *   - from_memory never reads outside the input (ASan) and never hits UB
 *     (UBSan); it either fails with QEIL_ERR_FORMAT/NOMEM or succeeds;
 *   - on success, every getter on every key and every byte of every
 *     tensor's data can be read;
 *   - on success, re-writing the tensors with the writer and reading the
 *     result gives the same names, types, shapes, sizes and bytes.
 * A violated property calls abort(), which libFuzzer reports as a crash.
 */
#include "qeil/gguf.h"

#include <stdlib.h>
#include <string.h>

static unsigned walk_metadata(qeil_ctx *ctx, const qeil_gguf *g)
{
    unsigned acc = 0;
    for (size_t i = 0; i < qeil_gguf_n_kv(g); i++) {
        const char *key = qeil_gguf_key_at(g, i);
        if (!key || qeil_gguf_find_key(g, key) != (int64_t)i) abort();
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
        for (uint64_t k = 0; k < n; k++) {
            size_t len;
            const char *e = qeil_gguf_arr_str(g, (int64_t)i, k, &len);
            if (e) acc += (unsigned)len + (unsigned char)e[len]; /* e[len] is the NUL */
            else acc += qeil_gguf_arr_f64(g, (int64_t)i, k) > 0;
        }
    }
    return acc;
}

static unsigned walk_tensors(const qeil_gguf *g)
{
    unsigned acc = 0;
    for (size_t i = 0; i < qeil_gguf_n_tensors(g); i++) {
        const qeil_gguf_tensor *t = qeil_gguf_tensor_at(g, i);
        if (qeil_gguf_find_tensor(g, t->name) != (int64_t)i) abort();
        const uint8_t *d = qeil_gguf_tensor_data(g, t);
        for (uint64_t k = 0; k < t->nbytes; k++) acc += d[k];
    }
    return acc;
}

/* Same tensors in both readers, byte for byte. */
static void compare_tensors(const qeil_gguf *a, const qeil_gguf *b)
{
    if (qeil_gguf_n_tensors(a) != qeil_gguf_n_tensors(b)) abort();
    for (size_t i = 0; i < qeil_gguf_n_tensors(a); i++) {
        const qeil_gguf_tensor *x = qeil_gguf_tensor_at(a, i), *y = qeil_gguf_tensor_at(b, i);
        if (strcmp(x->name, y->name) != 0 || x->type != y->type || x->n_dims != y->n_dims ||
            x->nbytes != y->nbytes || x->n_elems != y->n_elems ||
            memcmp(x->ne, y->ne, sizeof x->ne) != 0 ||
            memcmp(qeil_gguf_tensor_data(a, x), qeil_gguf_tensor_data(b, y), x->nbytes) != 0)
            abort();
    }
}

/* Write g's tensors again and read them back; skipped when the writer
 * refuses something the reader accepts (names over 63 bytes). */
static void rewrite_roundtrip(qeil_ctx *ctx, const qeil_gguf *g)
{
    qeil_gguf_writer *w = qeil_gguf_writer_create(ctx);
    if (!w) return;
    for (size_t i = 0; i < qeil_gguf_n_tensors(g); i++) {
        const qeil_gguf_tensor *t = qeil_gguf_tensor_at(g, i);
        if (qeil_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne,
                                        qeil_gguf_tensor_data(g, t)) != QEIL_OK) {
            qeil_gguf_writer_free(w);
            return;
        }
    }
    void *buf = NULL;
    size_t len = 0;
    if (qeil_gguf_writer_to_memory(w, &buf, &len) == QEIL_OK) {
        qeil_gguf *g2 = NULL;
        if (qeil_gguf_from_memory(ctx, buf, len, &g2) != QEIL_OK) abort();
        compare_tensors(g, g2);
        qeil_gguf_free(g2);
        qeil_free(ctx, buf);
    }
    qeil_gguf_writer_free(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static qeil_ctx *ctx; /* libFuzzer runs inputs one at a time */
    if (!ctx && !(ctx = qeil_ctx_create(NULL))) return 0;
    qeil_gguf *g = NULL;
    qeil_status st = qeil_gguf_from_memory(ctx, data, size, &g);
    if (st != QEIL_OK) {
        if (g || (st != QEIL_ERR_FORMAT && st != QEIL_ERR_NOMEM)) abort();
        if (strncmp(qeil_ctx_errmsg(ctx), "gguf: ", 6) != 0) abort();
        return 0;
    }
    volatile unsigned sink = walk_metadata(ctx, g) + walk_tensors(g);
    (void)sink;
    rewrite_roundtrip(ctx, g);
    qeil_gguf_free(g);
    return 0;
}
