/*
 * pack.h — row-interleaved int8 matmul for batches (prefill), internal.
 *
 * The tiled kernels of quant.h compute each output as a dot product of one
 * row with one activation: every 32-element block ends in a float rescale
 * of 8 partial integer sums, so three float operations share the work of
 * one vpdpbusd and the int8 units stay mostly idle. Here 8 rows at a time
 * are repacked into a scratch buffer so that one 32-bit lane of a vector
 * holds one row: a block's integer dot products for 8 rows finish in the 8
 * lanes of one register after 8 vpdpbusd, and the float rescale (one FMA
 * for 8 rows) is paid once per block, row group and token.
 *
 * Packed group (8 rows; rows past the matrix's end are zero), one entry per
 * 32-element block b of the rows:
 *
 *     qs[k][r][i]  int8   element 4k+i of block b of row r (k, i < 8, 4)
 *     corr[r]      int32  -128 * sum of the block's 32 int8 weights
 *     dw[r]        f32    the block's weight scale
 *     mn[r]        f32    the block's min term (Q4_K), else 0
 *
 * Weights: Q4_0 as nibble - 8, Q8_0 as stored, Q4_K sub-block j as its
 * 4-bit q with dw = d * sc_j and mn = dmin * m_j (exact products).
 *
 * Activations (qeil_pack_act): each vector quantized exactly as the
 * per-row kernels quantize it (Q8_0 for Q4_0/Q8_0 weights, Q8_K for Q4_K:
 * same d and q), stored as unsigned bytes u = q + 128 (vpdpbusd multiplies
 * unsigned by signed bytes; corr cancels the +128), plus per 32-element
 * block dx (the block's or super-block's d as f32) and sx = dx * sum of
 * the block's q.
 *
 * Arithmetic, per (row, vector), blocks in order from acc = 0:
 *
 *     isum = sum_i w_i q_i                            (exact int32)
 *     acc  = fmaf((float)isum, dw * dx, acc)
 *     acc  = fmaf(-mn, sx, acc)                       (Q4_K only)
 *
 * so a result does not depend on the row's or the vector's position in a
 * tile, the tile sizes, or the thread that computes it. It differs from the
 * per-row kernels' (quant.h) in rounding only: same integers, another
 * order of the float operations.
 * qeil_pack_gemm_ref is the portable statement of this arithmetic; the
 * VNNI kernel returns its bits exactly (tests/test_kernels.c).
 */
#ifndef QEIL_ENGINE_PACK_H
#define QEIL_ENGINE_PACK_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/quant.h"

#define QEIL_PACK_ROWS 8   /* rows per packed group (lanes of a ymm) */
#define QEIL_PACK_BLOCK 32 /* elements per packed block */
#define QEIL_PACK_VEC 8    /* vectors per kernel tile */

typedef struct {
    int8_t qs[QEIL_PACK_BLOCK / 4][QEIL_PACK_ROWS][4];
    int32_t corr[QEIL_PACK_ROWS];
    float dw[QEIL_PACK_ROWS];
    float mn[QEIL_PACK_ROWS];
} qeil_pack_block;

_Static_assert(sizeof(qeil_pack_block) == 352, "packed block is 352 bytes");

/* 1 for the weight types packing supports (Q4_0, Q8_0, Q4_K), else 0. */
int qeil_pack_type_ok(int type);
/* 1 when the type has a min term (Q4_K). */
int qeil_pack_type_has_min(int type);

/* Bytes of one packed group of rows of n_cols (a multiple of 32). */
size_t qeil_pack_group_bytes(int64_t n_cols);
/* Bytes per packed activation vector (a multiple of 64). */
size_t qeil_pack_act_stride(int64_t n_cols);

/* Activation format the packed kernel quantizes into for weight `type`:
 * QEIL_GGML_Q8_K for Q4_K, QEIL_GGML_Q8_0 otherwise. */
int qeil_pack_act_type(int type);

/* Scratch qeil_pack_act needs for n elements (covers Q8_0 and Q8_K). */
#define QEIL_PACK_ACT_TMP(n) ((size_t)(n) / 256 * 292 + (size_t)(n) / 32 * 34 + 292)

/* Quantize n floats (a multiple of 32; of 256 for Q8_K) into act_type
 * (qeil_pack_act_type) and store them as one packed activation vector at
 * dst (qeil_pack_act_stride bytes). tmp: QEIL_PACK_ACT_TMP(n) bytes. */
void qeil_pack_act(const float *x, int64_t n, int act_type, uint8_t *dst, uint8_t *tmp);

/* Pack rows [0, nr) (nr 1..8) of a weight of `type` (rows ws bytes apart,
 * n_cols elements each) into dst (qeil_pack_group_bytes). */
void qeil_pack_rows_ref(int type, const uint8_t *w, size_t ws, int nr, int64_t n_cols,
                        qeil_pack_block *dst);

/* y[c * ys + r] for r < nr, c < nc (nr 1..8, nc >= 1): the packed group g
 * of n_cols against nc packed activations act + c * as. */
void qeil_pack_gemm_ref(const qeil_pack_block *g, int nr, int64_t n_cols, int has_min,
                        const uint8_t *act, size_t as, int nc, float *y, size_t ys);

/* ---- Interleaved weights (x8 layout), made once at load time ----------
 *
 * The same row-per-lane arithmetic without repacking on every call: a
 * Q4_0 or Q8_0 (Q4_K: below) matrix is stored as groups of 8 rows (the last group padded
 * with zero rows), each group as nb = n_cols / 32 records of
 *
 *     qs[k][r][i]  Q4_0: byte 4k+i of row r's block (low nibble: element
 *                  4k+i, high: 16+4k+i), k < 4      128 bytes
 *                  Q8_0: q_(4k+i) XOR 0x80 (= q + 128), k < 8   256 bytes
 *     d[r]         row r's f16 scale                    16 bytes
 *
 * (144 / 272 bytes: exactly the 8 rows' GGUF bytes, rearranged). Weights
 * enter vpdpbusd as the unsigned operand, activations (Q8_0 q as int8,
 * x8 activation format) as the signed one, and the sum starts from xb =
 * -8 (Q4_0) or -128 (Q8_0) times the activation block's sum of q: the
 * integers, and with `acc = fmaf((float)isum, dw * dx, acc)` the results,
 * are those of qeil_pack_gemm_ref, for any batch size (decode included). */

/* Q4_K x8 (same size as the file plus 32 bytes per super-block and 8
 * rows): per super-block of 8 rows a 1184-byte record — qs[c][k][r][4] =
 * bytes 32c+4k..+3 of row r's 4-bit quants (low nibbles: sub-block 2c,
 * high: 2c+1), the 6-bit scales sc[j][r] and mins m[j][r] unpacked to
 * bytes, d[r] and dmin[r] f16. Activations: Q8_K q as int8, dx (the
 * super-block's d) and xb = sum of q per 32-element block. Arithmetic per
 * (row, vector), super-blocks in order from acc = 0:
 *
 *     A = sum_j sc_j * sum_i q_w q_x,  M = sum_j m_j * sum(q_x over j)  (int32)
 *     acc = fmaf((float)A, d * dx, acc);  acc = fmaf(-(float)M, dmin * dx, acc)
 *
 * (qeil_x8_q4k_ref states it). Not the per-row Q4_K kernel's bits (that
 * one sums in double): the same integers, another rounding. */

/* 1 for the types the x8 layout supports (Q4_0, Q8_0, Q4_K). */
int qeil_x8_type_ok(int type);
/* Bytes of one group (8 rows) of n_cols, and of a matrix of n_rows. */
size_t qeil_x8_group_bytes(int type, int64_t n_cols);
size_t qeil_x8_bytes(int type, int64_t n_cols, int64_t n_rows);
/* Rearrange n_rows GGUF rows (row_bytes apart) into dst (qeil_x8_bytes). */
void qeil_x8_repack(int type, const uint8_t *src, size_t row_bytes, int64_t n_cols,
                    int64_t n_rows, uint8_t *dst);
/* Row r of an x8 matrix as floats (the type's dequantization). */
void qeil_x8_get_row(int type, const uint8_t *x8, int64_t n_cols, int64_t r, float *dst);
/* One vector in the x8 activation format (qeil_pack_act_stride bytes):
 * q[n] int8, dx[n / 32] f32, xb[n / 32] int32 for weights of `type`.
 * tmp: QEIL_PACK_ACT_TMP(n) bytes. */
void qeil_x8_act(const float *x, int64_t n, int type, uint8_t *dst, uint8_t *tmp);

/* Portable statement of the Q4_K x8 arithmetic: y[c * ys + r], r < nr,
 * c < nc, for group g (x8 Q4_K) against x8 activations act + c * as. */
void qeil_x8_q4k_ref(const uint8_t *g, int nr, int64_t n_cols, const uint8_t *act, size_t as,
                     int nc, float *y, size_t ys);

#if QEIL_HAVE_X86_SIMD
/* y[c * ys + r] for r < nr (1..8), c < nc: group g (x8) against nc x8
 * activations act + c * as. AVX-512 VNNI. */
void qeil_x8_gemm_vnni(int type, const uint8_t *g, int nr, int64_t n_cols, const uint8_t *act,
                       size_t as, int nc, float *y, size_t ys);
/* One vector (decode) against n_groups full groups from g, gb bytes apart:
 * y[8 * i + r] — qeil_x8_gemm_vnni's bits, one call for a run of groups
 * (a Qwen2-0.5B group is ~100 ns of work; the per-call setup and copy-out
 * were a few % of decode). */
void qeil_x8_gemv_vnni(int type, const uint8_t *g, size_t gb, int64_t n_groups, int64_t n_cols,
                       const uint8_t *act, float *y);
/* The same for 16 rows: two full groups g and g + gb (gb =
 * qeil_x8_group_bytes), y[c * ys + r] for r < 16 — the bits of two
 * qeil_x8_gemm_vnni calls, faster (one activation broadcast feeds 16
 * rows in 512-bit registers; Q4_K: two qeil_x8_gemm_vnni calls). */
void qeil_x8_gemm2_vnni(int type, const uint8_t *g, size_t gb, int64_t n_cols, const uint8_t *act,
                        size_t as, int nc, float *y, size_t ys);
/* qeil_x8_repack with AVX2 transposes (the same bytes). */
void qeil_x8_repack_vnni(int type, const uint8_t *src, size_t row_bytes, int64_t n_cols,
                         int64_t n_rows, uint8_t *dst);
/* AVX-512 VNNI (256-bit) versions: call only when qeil_cpu_has_avx512_vnni().
 * Same bytes / bits as the _ref functions; dst and g 32-byte aligned. */
void qeil_pack_rows_vnni(int type, const uint8_t *w, size_t ws, int nr, int64_t n_cols,
                         qeil_pack_block *dst);
void qeil_pack_gemm_vnni(const qeil_pack_block *g, int nr, int64_t n_cols, int has_min,
                         const uint8_t *act, size_t as, int nc, float *y, size_t ys);
#endif

#endif /* QEIL_ENGINE_PACK_H */
