/*
 * matmul.h — y = W x for a weight matrix in any engine type (internal).
 *
 * W has n_rows rows of n_cols elements (GGUF's ne[0] = n_cols, ne[1] =
 * n_rows), stored row after row in its GGUF type. x is a batch of n_vec f32
 * vectors of n_cols; y gets n_vec f32 vectors of n_rows:
 *
 *     y[v * n_rows + r] = sum_c W[r][c] * x[v * n_cols + c]
 *
 * x is first quantized into the activation format of W's type (Q8_0 for
 * Q8_0/Q4_0, Q8_K for K-quants, kept f32 for f32/f16/bf16) in the caller's
 * work buffer, then the rows are handed out to the pool's threads in
 * chunks (dynamically: a preempted thread's share goes to the others) and
 * computed with the type's tiled kernel (qeil_gemm_for: up to 4 rows x 4
 * vectors per call) or its dot kernel. Each y element is computed by
 * exactly one thread with the same arithmetic whatever the thread or tile,
 * so y is bit-identical for any thread count. Batches of at least
 * QEIL_MATMUL_PACK_MIN_VEC vectors take the packed path (below).
 *
 *     qeil_matmul_weight W;
 *     if (qeil_matmul_weight_init(ctx, &W, t->type, t->ne[0], t->ne[1],
 *                                 qeil_gguf_tensor_data(g, t)) != QEIL_OK) ...
 *     size_t ws = qeil_matmul_work_size(W.type, W.n_cols, 1, 1);
 *     void *work = qeil_malloc(ctx, ws);            // once, at load time
 *     qeil_matmul(ctx, pool, qeil_simd_best(), &W, x, 1, y, work, ws);
 *
 * Thread-safety: W is read-only and may be shared; one matmul at a time per
 * pool and per work buffer.
 */
#ifndef QEIL_ENGINE_MATMUL_H
#define QEIL_ENGINE_MATMUL_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/quant.h"
#include "core/threadpool.h"

/* Largest row length and batch matmul accepts (sizes stay far from overflow). */
#define QEIL_MATMUL_MAX_COLS (1 << 24)
#define QEIL_MATMUL_MAX_ROWS (1 << 24)
#define QEIL_MATMUL_MAX_VEC 4096

typedef struct {
    int type;           /* qeil_ggml_type */
    int64_t n_cols;     /* elements per row (ne[0]) */
    int64_t n_rows;     /* rows (ne[1]) */
    size_t row_bytes;   /* n_cols / blck_elems * blck_bytes */
    const void *data;   /* n_rows * row_bytes bytes, any alignment; not owned */
    int layout;         /* QEIL_MATMUL_ROWS, or QEIL_MATMUL_X8 (data: qeil_x8_bytes, pack.h) */
} qeil_matmul_weight;

/* Layouts of a weight's data: GGUF rows as in the file, or Q4_0/Q8_0/Q4_K rows
 * interleaved 8 at a time (pack.h, "x8 layout"; computed with AVX-512
 * VNNI, so only a backend on such a CPU makes them). */
#define QEIL_MATMUL_ROWS 0
#define QEIL_MATMUL_X8 1

/* Describe a weight matrix: checks that the type has a dot kernel, the
 * shape is within limits, and n_cols is a multiple of the type's block. */
qeil_status qeil_matmul_weight_init(qeil_ctx *ctx, qeil_matmul_weight *w, int type,
                                    int64_t n_cols, int64_t n_rows, const void *data);

/* Batches of at least this many vectors against Q4_0, Q8_0 or Q4_K weights
 * take the packed path (pack.h) on CPUs with AVX-512 VNNI: 8 rows at a time
 * are repacked so that a register lane holds a row, and the per-block float
 * rescale is paid once per 8 rows. Its results differ from the per-row
 * kernels' in rounding only (pack.h states the arithmetic); they are still
 * the same for any thread count. Decode (one vector per sequence) and
 * small batches keep the per-row kernels. Weights in the x8 layout
 * (QEIL_MATMUL_X8, below) use their own kernel for every batch size. */
#define QEIL_MATMUL_PACK_MIN_VEC 8

/* Bytes of work buffer matmul needs for n_vec vectors of n_cols against a
 * weight of `type` on a pool of n_threads (0 when x is used as is, or when
 * the arguments are out of range — qeil_matmul then reports the error). */
size_t qeil_matmul_work_size(int type, int64_t n_cols, int64_t n_vec, int n_threads);

/* y = W x as described above. pool may be NULL (caller's thread only).
 * simd: qeil_simd_best() or QEIL_SIMD_SCALAR (benchmarks, tests); a level
 * this CPU lacks is QEIL_ERR_UNSUPPORTED. x and y must not overlap. */
qeil_status qeil_matmul(qeil_ctx *ctx, qeil_tpool *pool, qeil_simd simd,
                        const qeil_matmul_weight *w, const float *x, int64_t n_vec,
                        float *y, void *work, size_t work_size);

/* Most weights qeil_matmul_multi fuses into one dispatch. */
#define QEIL_MATMUL_MAX_MULTI 4

/* y[j] = W[j] x for nw (1..QEIL_MATMUL_MAX_MULTI) weights of the same n_cols
 * that read the same x — Q/K/V, gate/up. When every weight takes x in the
 * same activation format, x is quantized once and the rows of all weights
 * go to the pool in one dispatch (one synchronisation instead of nw);
 * otherwise each weight runs as qeil_matmul. Either way y[j] is
 * bit-identical to qeil_matmul(W[j]). The work buffer must hold
 * qeil_matmul_work_size of the largest need among the weights. */
qeil_status qeil_matmul_multi(qeil_ctx *ctx, qeil_tpool *pool, qeil_simd simd,
                              const qeil_matmul_weight *const *w, int nw, const float *x,
                              int64_t n_vec, float *const *y, void *work, size_t work_size);

#endif /* QEIL_ENGINE_MATMUL_H */
