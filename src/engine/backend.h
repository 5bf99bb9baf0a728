/*
 * backend.h — what the forward pass needs from a compute device (internal).
 *
 * A backend is a table of properties and small operations on buffers that
 * live in the backend's memory (host memory for "cpu"; device memory for a
 * future "cuda"). The model code (forward.c) only passes those buffers from
 * one op to the next and never dereferences them, so a new backend needs a
 * new table, not new model code. Small per-call metadata (token ids, row
 * positions) is always host memory; a device backend copies it itself.
 *
 *     const qeil_backend *be = qeil_backend_get(0);          // "cpu"
 *     qeil_backend_config cfg = {ctx, 4, 512, 4096};
 *     void *st = NULL;
 *     if (be->create(&cfg, &st) != QEIL_OK) ...
 *     qeil_bweight w;
 *     be->weight_prepare(st, type, n_cols, n_rows, mmapped_bytes, QEIL_BWEIGHT_MATMUL, &w);
 *     be->matmul(st, &w, x, n_vec, y);
 *     be->weight_release(st, &w);
 *     be->destroy(st);
 *
 * Lifecycle: create, weight_prepare and alloc run at engine open or
 * placement time and may allocate; every op used by the forward pass runs
 * without allocating. Ops may run asynchronously on a device backend; sync
 * waits for them. The engine syncs a device backend only where it reads
 * results (at a device boundary, before logits and at the end of a step)
 * and times its units with timer_mark/timer_read; the cpu backend it
 * syncs after every unit. Thread-safety: one thread at a time per backend
 * state (the engine's driver thread).
 *
 * docs/engine.md ("Backends") describes how a CUDA backend slots in.
 */
#ifndef QEIL_ENGINE_BACKEND_H
#define QEIL_ENGINE_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "qeil/qeil.h"

/* Most timer marks an instance holds between two syncs (timer_mark). */
#define QEIL_BACKEND_MAX_MARKS 1024u

/* Capability flags (qeil_backend_props.caps). */
enum {
    /* buffers are ordinary host memory: the engine may pass host pointers
     * (the mmapped weights) to weight_prepare without a copy being made */
    QEIL_BACKEND_CAP_HOST_MEMORY = 1u << 0,
    /* the device shares physical memory with the host (SoC): weights need
     * no copy even if buffers are not host pointers */
    QEIL_BACKEND_CAP_UNIFIED_MEMORY = 1u << 1,
    /* matmul reads each weight row once for a batch of vectors */
    QEIL_BACKEND_CAP_BATCHED_MATMUL = 1u << 2
};

typedef struct {
    const char *name;      /* "cpu" */
    uint32_t caps;         /* QEIL_BACKEND_CAP_* */
    uint64_t weight_types; /* bit t set: matmul and get_rows accept qeil_ggml_type t (t < 64) */
    uint64_t param_types;  /* bit t set: 1-D parameters (norms, biases) may be type t */
} qeil_backend_props;

/* Sizes a backend instance is created for; fixed for its lifetime. */
typedef struct {
    qeil_ctx *ctx;      /* errors and allocator; must outlive the instance */
    int n_threads;      /* 1..QEIL_TPOOL_MAX_THREADS (cpu); a hint elsewhere */
    uint32_t max_rows;  /* most vectors in one op (the engine's n_batch) */
    uint32_t max_ctx;   /* most KV positions attention reads (n_ctx) */
    /* cpu: NULL, or the CPUs [0..n_cpus) to bind every worker thread to
     * (a CPU device on one core cluster, docs/engine.md "CPU clusters");
     * bound pools leave the calling thread's affinity alone. Ignored
     * elsewhere. */
    const int *cpus;
    int n_cpus;
} qeil_backend_config;

/* What a prepared weight is used for (weight_prepare's use, bit flags). */
enum { QEIL_BWEIGHT_MATMUL = 1u << 0, QEIL_BWEIGHT_ROWS = 1u << 1 };

/* A weight matrix (or a 1-D parameter as one row) in backend memory. */
typedef struct {
    int type;           /* qeil_ggml_type */
    int64_t n_cols;     /* elements per row (GGUF ne[0]) */
    int64_t n_rows;     /* rows (ne[1]; 1 for a vector) */
    size_t row_bytes;
    const void *data;   /* backend memory: n_rows * row_bytes bytes */
    void *owned;        /* what weight_release frees (NULL: data is borrowed) */
    int layout;         /* backend-private arrangement of data (cpu: QEIL_MATMUL_ROWS or
                           QEIL_MATMUL_X8, engine/matmul.h); 0 = GGUF rows */
} qeil_bweight;

/* Where row i of a batch goes: its sequence and absolute position. */
typedef struct {
    uint32_t seq, pos;
} qeil_brow;

/* KV cache of one layer in backend memory, f32, head-major:
 *   k[((seq * n_kv_heads + h) * n_ctx + pos) * head_dim + i], v alike —
 * a KV head's positions are contiguous, so attention streams them (with
 * rows of all heads side by side, a head's keys were 256 B every 2 KB:
 * one head's decode attention at 1000 positions ran 2x slower,
 * bench/bench_attention.c). */
typedef struct {
    float *k, *v;
    uint32_t n_seq, n_ctx, n_kv_heads, head_dim;
    /* The per-sequence memory of a short-convolution block (lfm2) instead
     * of K/V (k, v NULL): the last conv_n_state = L - 1 gated inputs b*x of
     * each sequence, f32, conv[(seq * conv_n_state + j) * conv_d + c], slot
     * j holding position len - conv_n_state + j. A row at position p reads
     * the state only for positions before its batch's first row of that
     * sequence and treats positions < 0 as zero, so a reset sequence needs
     * no clearing. NULL for attention blocks. */
    float *conv;
    uint32_t conv_n_state, conv_d;
} qeil_bkv;

typedef struct qeil_backend {
    qeil_backend_props props;

    /* ---- lifecycle and memory (open / placement time) ---- */
    qeil_status (*create)(const qeil_backend_config *cfg, void **state);
    void (*destroy)(void *state);
    /* zero-filled buffer of `bytes` in backend memory; NULL (and an error on
     * the config's ctx) when memory is exhausted */
    void *(*alloc)(void *state, size_t bytes);
    void (*release)(void *state, void *buf);
    /* copies between host and backend memory, and within the backend;
     * synchronous: when they return, the data is in place */
    void (*to_backend)(void *state, void *dst, const void *host_src, size_t bytes);
    void (*to_host)(void *state, void *host_dst, const void *src, size_t bytes);
    void (*copy)(void *state, void *dst, const void *src, size_t bytes);
    /* Make a weight usable: host_data is the tensor's bytes in the mmapped
     * file (stays valid while the engine lives). use: QEIL_BWEIGHT_MATMUL
     * and/or QEIL_BWEIGHT_ROWS (get_rows), so a backend can choose the
     * layout (the cpu backend interleaves Q4_0/Q8_0/Q4_K matrices that matmul
     * reads on a VNNI CPU and borrows everything else; a device backend
     * copies into device memory). Also sizes the backend's matmul work
     * space for max_rows vectors. Where out->owned is set the engine may
     * tell the OS it no longer needs host_data's pages. */
    qeil_status (*weight_prepare)(void *state, int type, int64_t n_cols, int64_t n_rows,
                                  const void *host_data, unsigned use, qeil_bweight *out);
    void (*weight_release)(void *state, qeil_bweight *w);
    /* bytes of work space and per-thread scratch the instance holds */
    size_t (*scratch_bytes)(const void *state);

    /* ---- ops used by the forward pass (no allocation) ---- */
    /* y[v][r] = sum_c W[r][c] x[v][c] for v < n (x: n x n_cols, y: n x n_rows) */
    qeil_status (*matmul)(void *state, const qeil_bweight *w, const float *x, uint32_t n,
                          float *y);
    /* y[j] = W[j] x for nw (1..4) weights of the same n_cols that read the
     * same x (Q/K/V, gate/up), in one go: the cpu backend quantizes x once
     * and makes one pool dispatch. Optional: NULL means matmul per weight.
     * Must give exactly matmul's results. */
    qeil_status (*matmul_multi)(void *state, const qeil_bweight *const *w, int nw,
                                const float *x, uint32_t n, float *const *y);
    /* y[i] (+)= row ids[i] of W, dequantized to f32 (ids: host memory) */
    void (*get_rows)(void *state, const qeil_bweight *w, const uint32_t *ids, uint32_t n,
                     float *y, int accumulate);
    /* y[i] += x[i], i < n_elems */
    void (*add)(void *state, float *y, const float *x, size_t n_elems);
    /* y[r * stride + i] += b[i], r < n_rows, i < d */
    void (*add_bias)(void *state, float *y, size_t stride, const float *b, uint32_t n_rows,
                     uint32_t d);
    /* row-wise norms: x, y n_rows x d (contiguous); b may be NULL for layernorm */
    void (*rmsnorm)(void *state, const float *x, const float *w, float *y, uint32_t n_rows,
                    uint32_t d, float eps);
    void (*layernorm)(void *state, const float *x, const float *w, const float *b, float *y,
                      uint32_t n_rows, uint32_t d, float eps);
    /* rotate n_heads heads of each row (rows stride floats apart) at
     * rows[r].pos; cs/sn: tables [pos][n_rot/2] in backend memory */
    void (*rope)(void *state, float *x, size_t stride, uint32_t n_rows, const qeil_brow *rows,
                 uint32_t n_heads, uint32_t head_dim, uint32_t n_rot, const float *cs,
                 const float *sn, int neox);
    /* write row r's k and v (n_kv_heads * head_dim floats each, stride apart)
     * to (rows[r].seq, rows[r].pos) of the cache */
    void (*kv_store)(void *state, const qeil_bkv *kv, const float *k, const float *v,
                     size_t stride, uint32_t n_rows, const qeil_brow *rows);
    /* causal attention: row r's query head h attends to positions
     * 0..rows[r].pos of sequence rows[r].seq, KV head h / (n_heads / n_kv_heads);
     * q rows q_stride apart, out rows n_heads * head_dim floats, contiguous */
    void (*attention)(void *state, const qeil_bkv *kv, const float *q, size_t q_stride,
                      uint32_t n_rows, const qeil_brow *rows, uint32_t n_heads, float scale,
                      float *out);
    void (*silu_mul)(void *state, float *g, const float *u, size_t n_elems);
    void (*gelu)(void *state, float *x, size_t n_elems);
    /* Wait for queued work, at most timeout_s seconds (> 0; the engine's
     * watchdog: a hung device). Returns QEIL_OK, or the device's failure
     * since the last sync with its message on the ctx: the status of an op
     * that failed (QEIL_ERR_NOMEM out of device memory, QEIL_ERR_DEVICE
     * device lost), QEIL_ERR_DEVICE when the wait timed out. A failure is
     * sticky: the instance is then only fit for release and destroy. The
     * cpu backend runs every op before returning: always QEIL_OK. */
    qeil_status (*sync)(void *state, double timeout_s);

    /* ---- device timing and counters (optional; NULL on the cpu backend,
     * whose ops finish before they return: the engine syncs it after
     * every unit and times each unit by the host clock) ---- */
    /* Record a timestamp after the work recorded so far, in the device's
     * own order of execution. 1: recorded; 0: the instance cannot (its
     * queue has no timestamps, or QEIL_BACKEND_MAX_MARKS marks are
     * already waiting for a sync): the engine then syncs after every unit
     * (engine.c run_units, docs/engine.md "Syncs and unit times"). */
    int (*timer_mark)(void *state);
    /* After a sync that returned QEIL_OK: the seconds between consecutive
     * marks recorded before it (dt_s[i] from mark i to mark i + 1, i <
     * n_marks - 1), n_marks being how many there were; 1, or 0 where
     * n_marks does not match (nothing is written then). Marks restart at
     * every sync. */
    int (*timer_read)(void *state, double *dt_s, uint32_t n_marks);
    /* Command submissions (queue submits) since create: the count the
     * engine's transfer stats report per device. */
    uint64_t (*submits)(const void *state);
    /* This instance's caps (QEIL_BACKEND_CAP_*): props.caps plus what
     * depends on the device it opened (the vulkan backend's
     * QEIL_BACKEND_CAP_UNIFIED_MEMORY). NULL: props.caps. */
    uint32_t (*inst_caps)(const void *state);

    /* ---- ops of some architectures only; NULL = not implemented: the
     * engine refuses to place a unit that needs it on this backend
     * (qeil_fwd_unit_needs) ---- */
    /* x[i] *= s, i < n_elems (granite's multipliers) */
    void (*scale)(void *state, float *x, size_t n_elems, float s);
    /* lfm2 gated short convolution over n rows. bcx: rows of 3 * kv->conv_d
     * floats, B | C | x as in_proj writes them (overwritten: scratch). For
     * row r (sequence s, position p) and channel c, with u(q) = B x at
     * position q of sequence s (this batch's rows, or kv->conv for
     * positions before them, 0 for q < 0):
     *   y[r][c] = C[r][c] * sum_{k < L} w[c * L + k] u(p - L + 1 + k)[c]
     * (L = conv_n_state + 1, w: [d][L] f32 in backend memory, llama.cpp's
     * ggml_ssm_conv). Rows of one sequence are consecutive positions in
     * order. Afterwards kv->conv holds each sequence's last L - 1 inputs. */
    void (*shortconv)(void *state, const qeil_bkv *kv, float *bcx, uint32_t n_rows,
                      const qeil_brow *rows, const float *w, float *y);
} qeil_backend;

/* Compiled-in backends; index = backend id. */
size_t qeil_backend_count(void);
const qeil_backend *qeil_backend_get(size_t id); /* NULL if id >= count */

/* The cpu backend (backend_cpu.c), and the same backend under a second
 * name, "cpu1": a second CPU unit for placements and recovery (unbound, as
 * "cpu"; the devices bound to core clusters are "cpu-NAME", engine.c and
 * engine/cpu_devices.h). */
extern const qeil_backend qeil_backend_cpu;
extern const qeil_backend qeil_backend_cpu1;
/* The vulkan backend (src/backends/vulkan/): Vulkan device 0 ("vk0"),
 * loaded at run time; create fails with the reason where there is none. */
extern const qeil_backend qeil_backend_vulkan;

#endif /* QEIL_ENGINE_BACKEND_H */
