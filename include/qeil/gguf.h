/*
 * gguf.h — GGUF (v2/v3) reader and writer. The reader is safe on hostile
 * files: every read is bounded, every size product checked, every count
 * limited; a bad file gives QEIL_ERR_FORMAT with the offset and field.
 *
 * Usage:
 *
 *     qeil_gguf *g = NULL;
 *     if (qeil_gguf_open(ctx, "model.gguf", &g) != QEIL_OK) { ...errmsg... }
 *     const char *arch = qeil_gguf_get_str(g, "general.architecture");
 *     int64_t i = qeil_gguf_find_tensor(g, "token_embd.weight");
 *     const qeil_gguf_tensor *t = qeil_gguf_tensor_at(g, (size_t)i);
 *     const void *w = qeil_gguf_tensor_data(g, t);   // nbytes = t->nbytes
 *     qeil_gguf_free(g);
 *
 * Byte layout: docs/gguf.md. Thread-safety: a reader is immutable after open
 * and may be shared between threads; a writer is single-threaded.
 * Ownership: readers and writers allocate through the ctx they were created
 * with and keep a pointer to it, so that ctx must outlive them.
 */
#ifndef QEIL_GGUF_H
#define QEIL_GGUF_H

#include "qeil/qeil.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Limits on hostile input. */
#define QEIL_GGUF_MAX_KV 65536          /* metadata pairs */
#define QEIL_GGUF_MAX_TENSORS 65536
#define QEIL_GGUF_MAX_STRING (1u << 24)  /* bytes in one string */
#define QEIL_GGUF_MAX_ARRAY (1u << 24)   /* elements in one array */
#define QEIL_GGUF_MAX_DIMS 4
#define QEIL_GGUF_DEFAULT_ALIGNMENT 32

/* Metadata value types, numbered as in the GGUF specification. */
typedef enum {
    QEIL_GGUF_UINT8 = 0,
    QEIL_GGUF_INT8 = 1,
    QEIL_GGUF_UINT16 = 2,
    QEIL_GGUF_INT16 = 3,
    QEIL_GGUF_UINT32 = 4,
    QEIL_GGUF_INT32 = 5,
    QEIL_GGUF_FLOAT32 = 6,
    QEIL_GGUF_BOOL = 7,
    QEIL_GGUF_STRING = 8,
    QEIL_GGUF_ARRAY = 9,
    QEIL_GGUF_UINT64 = 10,
    QEIL_GGUF_INT64 = 11,
    QEIL_GGUF_FLOAT64 = 12
} qeil_gguf_vtype;

/* Tensor types, numbered as ggml numbers them in GGUF files. */
typedef enum {
    QEIL_GGML_F32 = 0,
    QEIL_GGML_F16 = 1,
    QEIL_GGML_Q4_0 = 2,
    QEIL_GGML_Q4_1 = 3,
    QEIL_GGML_Q5_0 = 6,
    QEIL_GGML_Q5_1 = 7,
    QEIL_GGML_Q8_0 = 8,
    QEIL_GGML_Q8_1 = 9,
    QEIL_GGML_Q2_K = 10,
    QEIL_GGML_Q3_K = 11,
    QEIL_GGML_Q4_K = 12,
    QEIL_GGML_Q5_K = 13,
    QEIL_GGML_Q6_K = 14,
    QEIL_GGML_Q8_K = 15,
    QEIL_GGML_IQ4_NL = 20,
    QEIL_GGML_IQ4_XS = 23,
    QEIL_GGML_BF16 = 30,
    QEIL_GGML_TYPE_LIMIT = 64 /* values at or above are rejected */
} qeil_ggml_type;

/* Name ("q4_k"), elements per block and bytes per block of a tensor type;
 * 0/NULL for types this build does not know. */
const char *qeil_ggml_type_name(int type);
uint32_t qeil_ggml_block_elems(int type);
uint32_t qeil_ggml_block_bytes(int type);
/* Parse a name ("q8_0", "F16", ...) case-insensitively; -1 if unknown. */
int qeil_ggml_type_from_name(const char *name);
/* Bytes of n elements of type (n must be a multiple of the block size);
 * returns 0 and sets *ok = 0 on overflow or bad multiple. */
uint64_t qeil_ggml_nbytes(int type, uint64_t n, int *ok);

typedef struct {
    const char *name;      /* NUL-terminated copy owned by the reader */
    uint32_t n_dims;       /* 1..QEIL_GGUF_MAX_DIMS */
    uint64_t ne[QEIL_GGUF_MAX_DIMS]; /* dims, ne[0] fastest-varying; unused = 1 */
    int type;              /* qeil_ggml_type */
    uint64_t offset;       /* from the start of the data section */
    uint64_t n_elems;
    uint64_t nbytes;
} qeil_gguf_tensor;

typedef struct qeil_gguf qeil_gguf;

/* Open and validate a file (mmap, read-only). On success *out owns the map. */
qeil_status qeil_gguf_open(qeil_ctx *ctx, const char *path, qeil_gguf **out);
/* Parse a caller-owned buffer that must outlive the reader (fuzzing, tests). */
qeil_status qeil_gguf_from_memory(qeil_ctx *ctx, const void *data, size_t len, qeil_gguf **out);
void qeil_gguf_free(qeil_gguf *g);

uint32_t qeil_gguf_version(const qeil_gguf *g);
uint32_t qeil_gguf_alignment(const qeil_gguf *g);
size_t qeil_gguf_file_size(const qeil_gguf *g);

/* Metadata. Keys are looked up by exact name; -1 when absent. */
size_t qeil_gguf_n_kv(const qeil_gguf *g);
int64_t qeil_gguf_find_key(const qeil_gguf *g, const char *key);
const char *qeil_gguf_key_at(const qeil_gguf *g, size_t i);
qeil_gguf_vtype qeil_gguf_kv_type(const qeil_gguf *g, size_t i);
/* Typed getters: QEIL_ERR_NOTFOUND if absent, QEIL_ERR_FORMAT (message names
 * the key, the type found and the type wanted) if the type does not fit.
 * Integer getters accept any integer type whose value fits the target. */
qeil_status qeil_gguf_get_u64(qeil_ctx *ctx, const qeil_gguf *g, const char *key, uint64_t *out);
qeil_status qeil_gguf_get_i64(qeil_ctx *ctx, const qeil_gguf *g, const char *key, int64_t *out);
qeil_status qeil_gguf_get_f64(qeil_ctx *ctx, const qeil_gguf *g, const char *key, double *out); /* f32/f64/ints */
qeil_status qeil_gguf_get_bool(qeil_ctx *ctx, const qeil_gguf *g, const char *key, int *out);
/* String value (NUL-terminated copy owned by g), or NULL if absent/not a string. */
const char *qeil_gguf_get_str(const qeil_gguf *g, const char *key);
/* Arrays: element type and length; QEIL_ERR_NOTFOUND / QEIL_ERR_FORMAT as above. */
qeil_status qeil_gguf_get_arr(qeil_ctx *ctx, const qeil_gguf *g, const char *key,
                              qeil_gguf_vtype *elem_type, uint64_t *n);
/* Element i of a numeric array as double / of a string array (owned by g). */
double qeil_gguf_arr_f64(const qeil_gguf *g, int64_t key_index, uint64_t i);
const char *qeil_gguf_arr_str(const qeil_gguf *g, int64_t key_index, uint64_t i, size_t *len);

/* Tensors. Data offsets and sizes are checked against the file at open. */
size_t qeil_gguf_n_tensors(const qeil_gguf *g);
const qeil_gguf_tensor *qeil_gguf_tensor_at(const qeil_gguf *g, size_t i);
int64_t qeil_gguf_find_tensor(const qeil_gguf *g, const char *name);
const void *qeil_gguf_tensor_data(const qeil_gguf *g, const qeil_gguf_tensor *t);
/* Tell the OS that t's data pages are not needed now (a caller that has
 * made its own copy, e.g. interleaved weights): for a reader opened from a
 * file, the whole pages inside t's bytes leave the process's resident set
 * (madvise MADV_DONTNEED on the read-only private mapping); reading them
 * again faults them back in from the file, unchanged. No-op for a reader
 * over caller memory. */
void qeil_gguf_tensor_drop_pages(const qeil_gguf *g, const qeil_gguf_tensor *t);

/* ---- Writer (mkmodel, tests, the demo model exporter) ---- */

typedef struct qeil_gguf_writer qeil_gguf_writer;

qeil_gguf_writer *qeil_gguf_writer_create(qeil_ctx *ctx);
void qeil_gguf_writer_free(qeil_gguf_writer *w);
qeil_status qeil_gguf_writer_set_u32(qeil_gguf_writer *w, const char *key, uint32_t v);
qeil_status qeil_gguf_writer_set_i32(qeil_gguf_writer *w, const char *key, int32_t v);
qeil_status qeil_gguf_writer_set_u64(qeil_gguf_writer *w, const char *key, uint64_t v);
qeil_status qeil_gguf_writer_set_f32(qeil_gguf_writer *w, const char *key, float v);
qeil_status qeil_gguf_writer_set_bool(qeil_gguf_writer *w, const char *key, int v);
qeil_status qeil_gguf_writer_set_str(qeil_gguf_writer *w, const char *key, const char *v);
/* Arrays are copied. */
qeil_status qeil_gguf_writer_set_arr_str(qeil_gguf_writer *w, const char *key,
                                         const char *const *v, size_t n);
qeil_status qeil_gguf_writer_set_arr_f32(qeil_gguf_writer *w, const char *key,
                                         const float *v, size_t n);
qeil_status qeil_gguf_writer_set_arr_i32(qeil_gguf_writer *w, const char *key,
                                         const int32_t *v, size_t n);
/* Add a tensor; data (nbytes as type and dims imply) is copied. */
qeil_status qeil_gguf_writer_add_tensor(qeil_gguf_writer *w, const char *name, int type,
                                        uint32_t n_dims, const uint64_t *ne, const void *data);
/* Write version 3, alignment 32, atomically (temp file + rename). An
 * existing file at path must be a regular file: a symbolic link, device
 * node, FIFO or directory is refused (QEIL_ERR_IO), never replaced. */
qeil_status qeil_gguf_writer_write(qeil_gguf_writer *w, const char *path);
/* Or to memory: *out allocated with qeil_malloc(ctx). */
qeil_status qeil_gguf_writer_to_memory(qeil_gguf_writer *w, void **out, size_t *len);

#ifdef __cplusplus
}
#endif

#endif /* QEIL_GGUF_H */
