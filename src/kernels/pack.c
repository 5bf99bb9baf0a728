/*
 * pack.c — row-interleaved int8 matmul for batches (see pack.h): the
 * portable reference (packing, arithmetic), the activation format, and the
 * AVX-512-VNNI packer and kernel.
 */
#include "kernels/pack.h"

#include <math.h>
#include <string.h>

int qeil_pack_type_ok(int type)
{
    return type == QEIL_GGML_Q4_0 || type == QEIL_GGML_Q8_0 || type == QEIL_GGML_Q4_K;
}

int qeil_pack_type_has_min(int type)
{
    return type == QEIL_GGML_Q4_K;
}

size_t qeil_pack_group_bytes(int64_t n_cols)
{
    return (size_t)(n_cols / QEIL_PACK_BLOCK) * sizeof(qeil_pack_block);
}

/* Vector layout: u[n] bytes, then dx[n / 32] and sx[n / 32] floats. */
size_t qeil_pack_act_stride(int64_t n_cols)
{
    const size_t b = (size_t)n_cols + (size_t)(n_cols / QEIL_PACK_BLOCK) * 2 * sizeof(float);
    return (b + 63) & ~(size_t)63;
}

static float f16_at(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, sizeof h);
    return qeil_f16_to_f32_fast(h);
}

int qeil_pack_act_type(int type)
{
    return type == QEIL_GGML_Q4_K ? QEIL_GGML_Q8_K : QEIL_GGML_Q8_0;
}

void qeil_pack_act(const float *x, int64_t n, int act_type, uint8_t *dst, uint8_t *tmp)
{
    const int64_t nb = n / QEIL_PACK_BLOCK;
    float *dx = (float *)(void *)(dst + n), *sx = dx + nb;
    qeil_act_quantize_for(act_type, qeil_simd_best())(x, tmp, n);
    for (int64_t b = 0; b < nb; b++) {
        const int8_t *q;
        float d;
        if (act_type == QEIL_GGML_Q8_K) { /* sub-block b % 8 of super-block b / 8 */
            const uint8_t *blk = tmp + (b / 8) * QEIL_Q8_K_BYTES;
            memcpy(&d, blk, sizeof d);
            q = (const int8_t *)(blk + 4 + 32 * (b % 8));
        } else {
            const uint8_t *blk = tmp + b * QEIL_Q8_0_BYTES;
            d = f16_at(blk);
            q = (const int8_t *)(blk + 2);
        }
        uint8_t *u = dst + b * QEIL_PACK_BLOCK;
        int32_t s = 0;
        for (int i = 0; i < QEIL_PACK_BLOCK; i++) {
            u[i] = (uint8_t)(q[i] + 128);
            s += q[i];
        }
        const float v = d * (float)s; /* |s| <= 32 * 127: exact as a float */
        memcpy(&dx[b], &d, sizeof d);
        memcpy(&sx[b], &v, sizeof v);
    }
}

/* The 32 int8 weights, scale and min term of 32-element block b of a row. */
static void row_block(int type, const uint8_t *row, int64_t b, int8_t e[32], float *dw, float *mn)
{
    *mn = 0.0f;
    if (type == QEIL_GGML_Q4_0) {
        const uint8_t *blk = row + b * QEIL_Q4_0_BYTES;
        *dw = f16_at(blk);
        for (int j = 0; j < 16; j++) {
            e[j] = (int8_t)((blk[2 + j] & 0x0f) - 8);
            e[j + 16] = (int8_t)((blk[2 + j] >> 4) - 8);
        }
    } else if (type == QEIL_GGML_Q8_0) {
        const uint8_t *blk = row + b * QEIL_Q8_0_BYTES;
        *dw = f16_at(blk);
        memcpy(e, blk + 2, 32);
    } else { /* Q4_K: sub-block j of super-block b / 8 */
        const uint8_t *blk = row + (b / 8) * QEIL_Q4_K_BYTES;
        const int j = (int)(b % 8);
        uint8_t sc[8], m[8];
        qeil_q4_k_get_scale_min(blk + 4, sc, m);
        *dw = f16_at(blk) * (float)sc[j];
        *mn = f16_at(blk + 2) * (float)m[j];
        const uint8_t *qs = blk + 16 + 32 * (j / 2);
        for (int l = 0; l < 32; l++) e[l] = (int8_t)(j % 2 ? qs[l] >> 4 : qs[l] & 0x0f);
    }
}

void qeil_pack_rows_ref(int type, const uint8_t *w, size_t ws, int nr, int64_t n_cols,
                        qeil_pack_block *dst)
{
    const int64_t nb = n_cols / QEIL_PACK_BLOCK;
    for (int64_t b = 0; b < nb; b++) {
        qeil_pack_block *pb = &dst[b];
        memset(pb, 0, sizeof *pb);
        for (int r = 0; r < nr; r++) {
            int8_t e[32];
            row_block(type, w + (size_t)r * ws, b, e, &pb->dw[r], &pb->mn[r]);
            int32_t s = 0;
            for (int i = 0; i < 32; i++) {
                pb->qs[i / 4][r][i % 4] = e[i];
                s += e[i];
            }
            pb->corr[r] = -128 * s;
        }
    }
}

void qeil_pack_gemm_ref(const qeil_pack_block *g, int nr, int64_t n_cols, int has_min,
                        const uint8_t *act, size_t as, int nc, float *y, size_t ys)
{
    const int64_t nb = n_cols / QEIL_PACK_BLOCK;
    for (int c = 0; c < nc; c++) {
        const uint8_t *u = act + (size_t)c * as;
        const float *dx = (const float *)(const void *)(u + n_cols), *sx = dx + nb;
        for (int r = 0; r < nr; r++) {
            float acc = 0.0f;
            for (int64_t b = 0; b < nb; b++) {
                const qeil_pack_block *pb = &g[b];
                int32_t isum = 0;
                for (int i = 0; i < 32; i++)
                    isum += pb->qs[i / 4][r][i % 4] * ((int32_t)u[b * 32 + i] - 128);
                const float s = pb->dw[r] * dx[b];
                acc = fmaf((float)isum, s, acc);
                if (has_min) acc = fmaf(-pb->mn[r], sx[b], acc);
            }
            y[(size_t)c * ys + (size_t)r] = acc;
        }
    }
}

/* ---- x8 layout ----------------------------------------------------------- */

int qeil_x8_type_ok(int type)
{
    return type == QEIL_GGML_Q4_0 || type == QEIL_GGML_Q8_0 || type == QEIL_GGML_Q4_K;
}

/* Q4_K record: one super-block of 8 rows. */
#define X8K_QS 1024                    /* qs[c][k][r][4], c < 4, k < 8 */
#define X8K_SC X8K_QS                  /* sc[j][r] uint8 */
#define X8K_M (X8K_SC + 64)            /* m[j][r] uint8 */
#define X8K_D (X8K_M + 64)             /* d[r] f16 */
#define X8K_DMIN (X8K_D + 16)          /* dmin[r] f16 */
#define X8K_REC (X8K_DMIN + 16)        /* 1184 bytes (8 x 144 in the file) */
/* One-vector Q4_K kernel: prefetch the record this many ahead. A record
 * is ~260 instructions, so the out-of-order window sees little more than
 * one and the hardware prefetcher alone left DRAM streaming at ~70 % of
 * the read-only rate (docs/kernels.md, "Streaming from DRAM"); 0 = off. */
#ifndef X8K_PF
#define X8K_PF 2
#endif

static size_t x8_qs_bytes(int type)
{
    return type == QEIL_GGML_Q4_0 ? 128 : 256;
}

size_t qeil_x8_group_bytes(int type, int64_t n_cols)
{
    if (type == QEIL_GGML_Q4_K) return (size_t)(n_cols / QEIL_QK_K) * X8K_REC;
    return (size_t)(n_cols / QEIL_PACK_BLOCK) * (x8_qs_bytes(type) + 16);
}

size_t qeil_x8_bytes(int type, int64_t n_cols, int64_t n_rows)
{
    return (size_t)((n_rows + 7) / 8) * qeil_x8_group_bytes(type, n_cols);
}

/* Q4_K: super-block sb of rows [8g, 8g + 8) into record o. */
static void x8k_record(const uint8_t *src, size_t row_bytes, int64_t n_rows, int64_t g, int64_t sb,
                       uint8_t *o)
{
    memset(o, 0, X8K_REC);
    for (int r = 0; r < 8; r++) {
        const int64_t row = 8 * g + r;
        if (row >= n_rows) continue;
        const uint8_t *blk = src + (size_t)row * row_bytes + (size_t)sb * QEIL_Q4_K_BYTES;
        uint8_t sc[8], m[8];
        qeil_q4_k_get_scale_min(blk + 4, sc, m);
        for (int j = 0; j < 8; j++) {
            o[X8K_SC + 8 * j + r] = sc[j];
            o[X8K_M + 8 * j + r] = m[j];
        }
        memcpy(o + X8K_D + 2 * r, blk, 2);
        memcpy(o + X8K_DMIN + 2 * r, blk + 2, 2);
        for (int c = 0; c < 4; c++)
            for (int k = 0; k < 8; k++) memcpy(o + 256 * c + 32 * k + 4 * r, blk + 16 + 32 * c + 4 * k, 4);
    }
}

void qeil_x8_repack(int type, const uint8_t *src, size_t row_bytes, int64_t n_cols,
                    int64_t n_rows, uint8_t *dst)
{
    if (type == QEIL_GGML_Q4_K) {
        const int64_t ns = n_cols / QEIL_QK_K;
        for (int64_t g = 0; g < (n_rows + 7) / 8; g++)
            for (int64_t sb = 0; sb < ns; sb++)
                x8k_record(src, row_bytes, n_rows, g, sb, dst + ((size_t)g * (size_t)ns + (size_t)sb) * X8K_REC);
        return;
    }
    const int64_t nb = n_cols / QEIL_PACK_BLOCK;
    const size_t qsb = x8_qs_bytes(type), rec = qsb + 16;
    const size_t bb = type == QEIL_GGML_Q4_0 ? QEIL_Q4_0_BYTES : QEIL_Q8_0_BYTES;
    const int nk = (int)(qsb / 32);
    for (int64_t g = 0; g < (n_rows + 7) / 8; g++) {
        uint8_t *gd = dst + (size_t)g * (size_t)nb * rec;
        for (int64_t b = 0; b < nb; b++) {
            uint8_t *o = gd + (size_t)b * rec;
            for (int r = 0; r < 8; r++) {
                const int64_t row = 8 * g + r;
                if (row >= n_rows) {
                    for (int k = 0; k < nk; k++) memset(o + 32 * k + 4 * r, 0, 4);
                    memset(o + qsb + 2 * r, 0, 2);
                    continue;
                }
                const uint8_t *blk = src + (size_t)row * row_bytes + (size_t)b * bb;
                memcpy(o + qsb + 2 * r, blk, 2);
                for (int k = 0; k < nk; k++) {
                    uint8_t *q = o + 32 * k + 4 * r;
                    memcpy(q, blk + 2 + 4 * k, 4);
                    if (type == QEIL_GGML_Q8_0)
                        for (int i = 0; i < 4; i++) q[i] ^= 0x80;
                }
            }
        }
    }
}

void qeil_x8_get_row(int type, const uint8_t *x8, int64_t n_cols, int64_t r, float *dst)
{
    if (type == QEIL_GGML_Q4_K) {
        const int64_t ns = n_cols / QEIL_QK_K;
        const int lane = (int)(r % 8);
        uint8_t blk[QEIL_Q4_K_BYTES];
        for (int64_t sb = 0; sb < ns; sb++) {
            const uint8_t *o = x8 + ((size_t)(r / 8) * (size_t)ns + (size_t)sb) * X8K_REC;
            uint8_t sc[8], m[8];
            for (int j = 0; j < 8; j++) {
                sc[j] = o[X8K_SC + 8 * j + lane];
                m[j] = o[X8K_M + 8 * j + lane];
            }
            memcpy(blk, o + X8K_D + 2 * lane, 2);
            memcpy(blk + 2, o + X8K_DMIN + 2 * lane, 2);
            qeil_q4_k_set_scale_min(blk + 4, sc, m);
            for (int c = 0; c < 4; c++)
                for (int k = 0; k < 8; k++) memcpy(blk + 16 + 32 * c + 4 * k, o + 256 * c + 32 * k + 4 * lane, 4);
            qeil_dequantize_row_q4_k(blk, dst + sb * QEIL_QK_K, QEIL_QK_K);
        }
        return;
    }
    const int64_t nb = n_cols / QEIL_PACK_BLOCK;
    const size_t qsb = x8_qs_bytes(type), rec = qsb + 16;
    const int nk = (int)(qsb / 32), lane = (int)(r % 8);
    const uint8_t *g = x8 + (size_t)(r / 8) * (size_t)nb * rec;
    const qeil_quant_traits *t = qeil_quant_traits_of(type);
    uint8_t blk[QEIL_Q8_0_BYTES];
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *o = g + (size_t)b * rec;
        memcpy(blk, o + qsb + 2 * lane, 2);
        for (int k = 0; k < nk; k++) {
            memcpy(blk + 2 + 4 * k, o + 32 * k + 4 * lane, 4);
            if (type == QEIL_GGML_Q8_0)
                for (int i = 0; i < 4; i++) blk[2 + 4 * k + i] ^= 0x80;
        }
        t->dequantize(blk, dst + b * QEIL_PACK_BLOCK, QEIL_PACK_BLOCK);
    }
}

void qeil_x8_act(const float *x, int64_t n, int type, uint8_t *dst, uint8_t *tmp)
{
    if (type == QEIL_GGML_Q4_K) { /* Q8_K: dx per super-block, xb = sum of q per 32 */
        const int64_t nb = n / QEIL_PACK_BLOCK;
        float *dx = (float *)(void *)(dst + n);
        int32_t *sq = (int32_t *)(void *)(dx + nb);
        qeil_act_quantize_for(QEIL_GGML_Q8_K, qeil_simd_best())(x, tmp, n);
        for (int64_t sb = 0; sb < n / QEIL_QK_K; sb++) {
            const uint8_t *blk = tmp + sb * QEIL_Q8_K_BYTES;
            float d;
            memcpy(&d, blk, sizeof d);
            memcpy(dst + sb * QEIL_QK_K, blk + 4, QEIL_QK_K);
            for (int j = 0; j < 8; j++) {
                int16_t b2[2];
                memcpy(b2, blk + 4 + QEIL_QK_K + 4 * j, sizeof b2);
                const int32_t v = (int32_t)b2[0] + b2[1];
                memcpy(&dx[8 * sb + j], &d, sizeof d);
                memcpy(&sq[8 * sb + j], &v, sizeof v);
            }
        }
        return;
    }
    const int64_t nb = n / QEIL_PACK_BLOCK;
    const int shift = type == QEIL_GGML_Q4_0 ? 3 : 7;
    float *dx = (float *)(void *)(dst + n);
    int32_t *xb = (int32_t *)(void *)(dx + nb);
    qeil_act_quantize_for(QEIL_GGML_Q8_0, qeil_simd_best())(x, tmp, n);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = tmp + b * QEIL_Q8_0_BYTES;
        memcpy(dst + b * QEIL_PACK_BLOCK, blk + 2, QEIL_PACK_BLOCK);
        int32_t sq = 0;
        for (int i = 0; i < QEIL_PACK_BLOCK; i++) sq += (int8_t)blk[2 + i];
        const float d = f16_at(blk);
        const int32_t v = -sq * (1 << shift);
        memcpy(&dx[b], &d, sizeof d);
        memcpy(&xb[b], &v, sizeof v);
    }
}

void qeil_x8_q4k_ref(const uint8_t *g, int nr, int64_t n_cols, const uint8_t *act, size_t as,
                     int nc, float *y, size_t ys)
{
    const int64_t ns = n_cols / QEIL_QK_K, nb = n_cols / QEIL_PACK_BLOCK;
    for (int c = 0; c < nc; c++) {
        const int8_t *q = (const int8_t *)(act + (size_t)c * as);
        const float *dx = (const float *)(const void *)(act + (size_t)c * as + n_cols);
        const int32_t *sq = (const int32_t *)(const void *)(dx + nb);
        for (int r = 0; r < nr; r++) {
            float acc = 0.0f;
            for (int64_t sb = 0; sb < ns; sb++) {
                const uint8_t *o = g + (size_t)sb * X8K_REC;
                int32_t a = 0, mm = 0;
                for (int j = 0; j < 8; j++) {
                    int32_t isum = 0;
                    for (int k = 0; k < 8; k++)
                        for (int i = 0; i < 4; i++) {
                            const uint8_t byte = o[256 * (j / 2) + 32 * k + 4 * r + i];
                            const int w = j % 2 ? byte >> 4 : byte & 0x0f;
                            isum += w * q[sb * QEIL_QK_K + 32 * j + 4 * k + i];
                        }
                    a += isum * o[X8K_SC + 8 * j + r];
                    mm += o[X8K_M + 8 * j + r] * sq[8 * sb + j];
                }
                uint16_t hd, hm;
                memcpy(&hd, o + X8K_D + 2 * r, 2);
                memcpy(&hm, o + X8K_DMIN + 2 * r, 2);
                acc = fmaf((float)a, qeil_f16_to_f32(hd) * dx[8 * sb], acc);
                acc = fmaf(-(float)mm, qeil_f16_to_f32(hm) * dx[8 * sb], acc);
            }
            y[(size_t)c * ys + (size_t)r] = acc;
        }
    }
}

#if QEIL_HAVE_X86_SIMD

#include <immintrin.h>

#define VNNI_FN __attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512vnni")))

/* o[k] lane r = v[r] lane k: 8 x 8 transpose of 32-bit lanes. */
#define UNROLL8 _Pragma("GCC unroll 8")
VNNI_FN static inline __attribute__((always_inline)) void transpose8(const __m256i v[8],
                                                                     __m256i o[8])
{
    __m256i t[8], u[8];
    UNROLL8 for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_epi32(v[2 * i], v[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_epi32(v[2 * i], v[2 * i + 1]);
    }
    UNROLL8 for (int h = 0; h < 2; h++) { /* rows 0-3, 4-7 */
        u[4 * h + 0] = _mm256_unpacklo_epi64(t[4 * h + 0], t[4 * h + 2]);
        u[4 * h + 1] = _mm256_unpackhi_epi64(t[4 * h + 0], t[4 * h + 2]);
        u[4 * h + 2] = _mm256_unpacklo_epi64(t[4 * h + 1], t[4 * h + 3]);
        u[4 * h + 3] = _mm256_unpackhi_epi64(t[4 * h + 1], t[4 * h + 3]);
    }
    UNROLL8 for (int k = 0; k < 4; k++) {
        o[k] = _mm256_permute2x128_si256(u[k], u[4 + k], 0x20);
        o[k + 4] = _mm256_permute2x128_si256(u[k], u[4 + k], 0x31);
    }
}

/* Transposed int8 weights of one block into pb->qs and pb->corr. */
VNNI_FN static inline __attribute__((always_inline)) void store_block(qeil_pack_block *pb,
                                                                      const __m256i v[8])
{
    __m256i o[8];
    transpose8(v, o);
    const __m256i ones = _mm256_set1_epi8(1);
    __m256i s = _mm256_setzero_si256();
    UNROLL8 for (int k = 0; k < 8; k++) {
        _mm256_store_si256((__m256i *)(void *)pb->qs[k], o[k]);
        s = _mm256_dpbusd_epi32(s, ones, o[k]);
    }
    _mm256_store_si256((__m256i *)(void *)pb->corr, _mm256_sub_epi32(_mm256_setzero_si256(),
                                                                     _mm256_slli_epi32(s, 7)));
}

/* The f16 at p + r * ws for r < nr (0 beyond) as 8 floats, with F16C.
 * Inserted in registers: 2-byte stores read back as one 16-byte load
 * would miss store forwarding (a ~20-cycle stall per block). */
VNNI_FN static inline __attribute__((always_inline)) __m256 scales8(const uint8_t *p, size_t ws,
                                                                    int nr)
{
    __m128i h = _mm_setzero_si128();
    uint16_t x;
    /* the lane must be a constant even without optimisation (-O1 builds) */
#define INSERT_F16(R)                                                                              \
    if (nr > (R)) {                                                                                \
        memcpy(&x, p + (size_t)(R) * ws, sizeof x);                                                \
        h = _mm_insert_epi16(h, x, (R));                                                           \
    }
    INSERT_F16(0) INSERT_F16(1) INSERT_F16(2) INSERT_F16(3)
    INSERT_F16(4) INSERT_F16(5) INSERT_F16(6) INSERT_F16(7)
#undef INSERT_F16
    return _mm256_cvtph_ps(h);
}

VNNI_FN void qeil_pack_rows_vnni(int type, const uint8_t *w, size_t ws, int nr, int64_t n_cols,
                                 qeil_pack_block *dst)
{
    const int64_t nb = n_cols / QEIL_PACK_BLOCK;
    const __m256i m4 = _mm256_set1_epi8(0x0f), eight = _mm256_set1_epi8(8);
    const __m256 zero = _mm256_setzero_ps();
    __m256i v[8];
    UNROLL8 for (int r = 0; r < 8; r++) v[r] = _mm256_setzero_si256();
    if (type == QEIL_GGML_Q4_K) {
        for (int64_t sb = 0; sb < nb / 8; sb++) {
            qeil_pack_block *pb = &dst[sb * 8];
            for (int r = 0; r < 8; r++) {
                if (r >= nr) {
                    for (int j = 0; j < 8; j++) pb[j].dw[r] = pb[j].mn[r] = 0.0f;
                    continue;
                }
                const uint8_t *blk = w + (size_t)r * ws + (size_t)sb * QEIL_Q4_K_BYTES;
                uint8_t sc[8], m[8];
                qeil_q4_k_get_scale_min(blk + 4, sc, m);
                const float d = f16_at(blk), dmin = f16_at(blk + 2);
                for (int j = 0; j < 8; j++) {
                    pb[j].dw[r] = d * (float)sc[j];
                    pb[j].mn[r] = dmin * (float)m[j];
                }
            }
            const uint8_t *q = w + (size_t)sb * QEIL_Q4_K_BYTES + 16;
            for (int r = 0; r < nr; r++)
                for (int o = 0; o < QEIL_Q4_K_BYTES; o += 64)
                    __builtin_prefetch(q - 16 + (size_t)r * ws + 2 * QEIL_Q4_K_BYTES + o, 0, 0);
            for (int c = 0; c < 4; c++) {
                __m256i raw[8];
                UNROLL8 for (int r = 0; r < 8; r++)
                    raw[r] = r < nr ? _mm256_loadu_si256((const __m256i *)(const void *)(
                                          q + (size_t)r * ws + 32 * c))
                                    : _mm256_setzero_si256();
                UNROLL8 for (int r = 0; r < 8; r++) v[r] = _mm256_and_si256(raw[r], m4);
                store_block(&pb[2 * c], v);
                UNROLL8 for (int r = 0; r < 8; r++)
                    v[r] = _mm256_and_si256(_mm256_srli_epi16(raw[r], 4), m4);
                store_block(&pb[2 * c + 1], v);
            }
        }
        return;
    }
    const size_t bb = type == QEIL_GGML_Q4_0 ? QEIL_Q4_0_BYTES : QEIL_Q8_0_BYTES;
    for (int64_t b = 0; b < nb; b++) {
        qeil_pack_block *pb = &dst[b];
        const uint8_t *blk = w + (size_t)b * bb;
        /* the rows come from DRAM, 8 short streams: ask ~512 bytes ahead */
        UNROLL8 for (int r = 0; r < 8; r++)
            if (r < nr) __builtin_prefetch(blk + (size_t)r * ws + 1024, 0, 3);
        _mm256_store_ps(pb->dw, scales8(blk, ws, nr));
        _mm256_store_ps(pb->mn, zero);
        if (type == QEIL_GGML_Q4_0) {
            UNROLL8 for (int r = 0; r < 8; r++) {
                if (r >= nr) break;
                const __m128i raw =
                    _mm_loadu_si128((const __m128i *)(const void *)(blk + (size_t)r * ws + 2));
                const __m256i q = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), m4);
                v[r] = _mm256_sub_epi8(q, eight);
            }
        } else {
            UNROLL8 for (int r = 0; r < 8; r++) {
                if (r >= nr) break;
                v[r] = _mm256_loadu_si256((const __m256i *)(const void *)(blk + (size_t)r * ws + 2));
            }
        }
        store_block(pb, v);
    }
}

static inline int32_t ld32(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* C vectors (1..8, a constant after inlining) against one packed group:
 * out[c * 8 + r]. Registers: C int32 + C float accumulators, one weight
 * vector, broadcasts folded into vpdpbusd ({1to8}). */
VNNI_FN static inline __attribute__((always_inline)) void tile(const qeil_pack_block *g,
                                                               int64_t nb, int64_t n,
                                                               const int has_min,
                                                               const uint8_t *act, size_t as,
                                                               float *out, const int C)
{
    const uint8_t *u[QEIL_PACK_VEC];
    const float *dx[QEIL_PACK_VEC], *sx[QEIL_PACK_VEC];
    __m256 f[QEIL_PACK_VEC];
    _Pragma("GCC unroll 8") for (int c = 0; c < C; c++) {
        u[c] = act + (size_t)c * as;
        dx[c] = (const float *)(const void *)(u[c] + n);
        sx[c] = dx[c] + nb;
        f[c] = _mm256_setzero_ps();
    }
    for (int64_t b = 0; b < nb; b++) {
        const qeil_pack_block *pb = &g[b];
        const __m256i corr = _mm256_load_si256((const __m256i *)(const void *)pb->corr);
        __m256i a[QEIL_PACK_VEC];
        _Pragma("GCC unroll 8") for (int c = 0; c < C; c++) a[c] = corr;
        _Pragma("GCC unroll 8") for (int k = 0; k < 8; k++) {
            const __m256i wk = _mm256_load_si256((const __m256i *)(const void *)pb->qs[k]);
            _Pragma("GCC unroll 8") for (int c = 0; c < C; c++)
                a[c] = _mm256_dpbusd_epi32(a[c], _mm256_set1_epi32(ld32(u[c] + b * 32 + 4 * k)), wk);
        }
        const __m256 dw = _mm256_load_ps(pb->dw);
        _Pragma("GCC unroll 8") for (int c = 0; c < C; c++)
            f[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(a[c]), _mm256_mul_ps(dw, _mm256_set1_ps(dx[c][b])),
                                   f[c]);
        if (has_min) {
            const __m256 mn = _mm256_load_ps(pb->mn);
            _Pragma("GCC unroll 8") for (int c = 0; c < C; c++) f[c] = _mm256_fnmadd_ps(mn, _mm256_set1_ps(sx[c][b]), f[c]);
        }
    }
    _Pragma("GCC unroll 8") for (int c = 0; c < C; c++) _mm256_storeu_ps(out + 8 * c, f[c]);
}

#define TILE_FN(NAME, HM, C)                                                                       \
    VNNI_FN static void NAME(const qeil_pack_block *g, int64_t nb, int64_t n, const uint8_t *act,  \
                             size_t as, float *out)                                                \
    {                                                                                              \
        tile(g, nb, n, HM, act, as, out, C);                                                       \
    }
TILE_FN(tile8, 0, 8)
TILE_FN(tile4, 0, 4)
TILE_FN(tile2, 0, 2)
TILE_FN(tile1, 0, 1)
TILE_FN(tile8m, 1, 8)
TILE_FN(tile4m, 1, 4)
TILE_FN(tile2m, 1, 2)
TILE_FN(tile1m, 1, 1)

VNNI_FN void qeil_pack_gemm_vnni(const qeil_pack_block *g, int nr, int64_t n_cols, int has_min,
                                 const uint8_t *act, size_t as, int nc, float *y, size_t ys)
{
    const int64_t nb = n_cols / QEIL_PACK_BLOCK;
    float out[QEIL_PACK_VEC * 8];
    for (int c = 0; c < nc;) {
        const int left = nc - c, C = left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
        const uint8_t *a = act + (size_t)c * as;
        switch (C) {
        case 8: (has_min ? tile8m : tile8)(g, nb, n_cols, a, as, out); break;
        case 4: (has_min ? tile4m : tile4)(g, nb, n_cols, a, as, out); break;
        case 2: (has_min ? tile2m : tile2)(g, nb, n_cols, a, as, out); break;
        default: (has_min ? tile1m : tile1)(g, nb, n_cols, a, as, out); break;
        }
        for (int i = 0; i < C; i++) memcpy(y + (size_t)(c + i) * ys, out + 8 * i, (size_t)nr * sizeof(float));
        c += C;
    }
}

/* qeil_x8_repack's bytes with one 8 x 8 transpose of 32-bit lanes per
 * block (~8x faster than its 4-byte copies: the engine repacks GBs at
 * load). */
VNNI_FN void qeil_x8_repack_vnni(int type, const uint8_t *src, size_t row_bytes, int64_t n_cols,
                                 int64_t n_rows, uint8_t *dst)
{
    if (type == QEIL_GGML_Q4_K) {
        const int64_t ns = n_cols / QEIL_QK_K;
        for (int64_t g = 0; g < (n_rows + 7) / 8; g++) {
            const int nr = (int)(n_rows - 8 * g < 8 ? n_rows - 8 * g : 8);
            for (int64_t sb = 0; sb < ns; sb++) {
                uint8_t *o = dst + ((size_t)g * (size_t)ns + (size_t)sb) * X8K_REC;
                memset(o + X8K_SC, 0, X8K_REC - X8K_SC);
                for (int r = 0; r < nr; r++) {
                    const uint8_t *blk = src + (size_t)(8 * g + r) * row_bytes + (size_t)sb * QEIL_Q4_K_BYTES;
                    uint8_t sc[8], m[8];
                    qeil_q4_k_get_scale_min(blk + 4, sc, m);
                    for (int j = 0; j < 8; j++) {
                        o[X8K_SC + 8 * j + r] = sc[j];
                        o[X8K_M + 8 * j + r] = m[j];
                    }
                    memcpy(o + X8K_D + 2 * r, blk, 2);
                    memcpy(o + X8K_DMIN + 2 * r, blk + 2, 2);
                }
                for (int c = 0; c < 4; c++) {
                    __m256i v[8], t[8];
                    UNROLL8 for (int r = 0; r < 8; r++)
                        v[r] = r < nr ? _mm256_loadu_si256((const __m256i *)(const void *)(
                                            src + (size_t)(8 * g + r) * row_bytes +
                                            (size_t)sb * QEIL_Q4_K_BYTES + 16 + 32 * c))
                                      : _mm256_setzero_si256();
                    transpose8(v, t);
                    UNROLL8 for (int k = 0; k < 8; k++)
                        _mm256_storeu_si256((__m256i *)(void *)(o + 256 * c + 32 * k), t[k]);
                }
            }
        }
        return;
    }
    const int64_t nb = n_cols / QEIL_PACK_BLOCK;
    const int q4 = type == QEIL_GGML_Q4_0;
    const size_t qsb = q4 ? 128 : 256, rec = qsb + 16;
    const size_t bb = q4 ? QEIL_Q4_0_BYTES : QEIL_Q8_0_BYTES;
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    for (int64_t g = 0; g < (n_rows + 7) / 8; g++) {
        const int nr = (int)(n_rows - 8 * g < 8 ? n_rows - 8 * g : 8);
        const uint8_t *rows = src + (size_t)(8 * g) * row_bytes;
        uint8_t *gd = dst + (size_t)g * (size_t)nb * rec;
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *blk = rows + (size_t)b * bb;
            uint8_t *o = gd + (size_t)b * rec;
            __m256i v[8], t[8];
            uint16_t d[8];
            UNROLL8 for (int r = 0; r < 8; r++) {
                if (r < nr) {
                    const uint8_t *p = blk + (size_t)r * row_bytes;
                    memcpy(&d[r], p, 2);
                    v[r] = q4 ? _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)(p + 2)))
                              : _mm256_loadu_si256((const __m256i *)(const void *)(p + 2));
                    if (q4) v[r] = _mm256_inserti128_si256(v[r], _mm_setzero_si128(), 1);
                } else {
                    d[r] = 0;
                    v[r] = q4 ? _mm256_setzero_si256() : flip; /* XOR below makes it 0 */
                }
            }
            transpose8(v, t);
            if (q4) {
                UNROLL8 for (int k = 0; k < 4; k++) _mm256_storeu_si256((__m256i *)(void *)(o + 32 * k), t[k]);
            } else {
                UNROLL8 for (int k = 0; k < 8; k++)
                    _mm256_storeu_si256((__m256i *)(void *)(o + 32 * k), _mm256_xor_si256(t[k], flip));
            }
            memcpy(o + qsb, d, sizeof d);
        }
    }
}

/* vpdpbusd chains per vector in the x8 kernels when a tile has 1 vector */
#define X8_NA 4

/* Q4_K x8 kernel: C vectors against one group of super-block records.
 * Per sub-block j the 8 rows' integer dot products (8 vpdpbusd per
 * vector from 0), times the rows' 6-bit scales (vpmulld), summed over the
 * super-block in int32; the mins' term sum_j m_j * sum(q_j) likewise; two
 * FMAs per super-block and vector (qeil_x8_q4k_ref's arithmetic). */
VNNI_FN static inline __attribute__((always_inline)) void x8k_tile(const uint8_t *g, int64_t ns,
                                                                   int64_t n, const uint8_t *act,
                                                                   size_t as, float *out, const int C)
{
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const int64_t nb = n / QEIL_PACK_BLOCK;
    const uint8_t *q[QEIL_PACK_VEC];
    const float *dx[QEIL_PACK_VEC];
    const int32_t *sq[QEIL_PACK_VEC];
    __m256 f[QEIL_PACK_VEC];
    UNROLL8 for (int c = 0; c < C; c++) {
        q[c] = act + (size_t)c * as;
        dx[c] = (const float *)(const void *)(q[c] + n);
        sq[c] = (const int32_t *)(const void *)(dx[c] + nb);
        f[c] = _mm256_setzero_ps();
    }
    for (int64_t sb = 0; sb < ns; sb++) {
        const uint8_t *o = g + (size_t)sb * X8K_REC;
        __m256i A[QEIL_PACK_VEC];
        UNROLL8 for (int c = 0; c < C; c++) A[c] = _mm256_setzero_si256();
        /* sub-blocks 2p (low nibbles) and 2p + 1 (high) from one load of
         * each 32-byte lane group; two chains per vector for one vector
         * (a vpdpbusd chain is latency-bound); integer sums, so the split
         * never changes a bit */
        for (int p = 0; p < 4; p++) {
            const uint8_t *qs = o + 256 * p;
            const int NH = C == 1 ? 2 : 1;
            if (C == 1 && X8K_PF > 0) /* 5 lines per p: the 1184-byte record in 4 steps */
                UNROLL8 for (int l = 0; l < 5; l++)
                    /* integer arithmetic: near the end of the matrix the
                     * address lies past it (a prefetch never faults) */
                    __builtin_prefetch((const void *)((uintptr_t)o + X8K_PF * X8K_REC + 320 * p + 64 * l), 0, 3);
            __m256i lo[QEIL_PACK_VEC][2], hi[QEIL_PACK_VEC][2];
            UNROLL8 for (int c = 0; c < C; c++)
                UNROLL8 for (int h = 0; h < NH; h++) lo[c][h] = hi[c][h] = _mm256_setzero_si256();
            UNROLL8 for (int k = 0; k < 8; k++) {
                const __m256i raw = _mm256_loadu_si256((const __m256i *)(const void *)(qs + 32 * k));
                const __m256i ul = _mm256_and_si256(raw, m4);
                const __m256i uh = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
                const int h = NH == 2 ? k % 2 : 0;
                UNROLL8 for (int c = 0; c < C; c++) {
                    const uint8_t *qc = q[c] + sb * QEIL_QK_K + 64 * p + 4 * k;
                    lo[c][h] = _mm256_dpbusd_epi32(lo[c][h], ul, _mm256_set1_epi32(ld32(qc)));
                    hi[c][h] = _mm256_dpbusd_epi32(hi[c][h], uh, _mm256_set1_epi32(ld32(qc + 32)));
                }
            }
            const __m256i sl = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(o + X8K_SC + 16 * p)));
            const __m256i sh = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(o + X8K_SC + 16 * p + 8)));
            UNROLL8 for (int c = 0; c < C; c++) {
                if (NH == 2) {
                    lo[c][0] = _mm256_add_epi32(lo[c][0], lo[c][1]);
                    hi[c][0] = _mm256_add_epi32(hi[c][0], hi[c][1]);
                }
                A[c] = _mm256_add_epi32(A[c], _mm256_add_epi32(_mm256_mullo_epi32(lo[c][0], sl),
                                                               _mm256_mullo_epi32(hi[c][0], sh)));
            }
        }
        __m256i M[QEIL_PACK_VEC];
        UNROLL8 for (int c = 0; c < C; c++) M[c] = _mm256_setzero_si256();
        UNROLL8 for (int j = 0; j < 8; j++) {
            const __m256i mj = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(o + X8K_M + 8 * j)));
            UNROLL8 for (int c = 0; c < C; c++)
                M[c] = _mm256_add_epi32(M[c], _mm256_mullo_epi32(mj, _mm256_set1_epi32(sq[c][8 * sb + j])));
        }
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(o + X8K_D)));
        const __m256 dm = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(o + X8K_DMIN)));
        UNROLL8 for (int c = 0; c < C; c++) {
            const __m256 vx = _mm256_set1_ps(dx[c][8 * sb]);
            f[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(A[c]), _mm256_mul_ps(d, vx), f[c]);
            f[c] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(M[c]), _mm256_mul_ps(dm, vx), f[c]);
        }
    }
    UNROLL8 for (int c = 0; c < C; c++) _mm256_storeu_ps(out + 8 * c, f[c]);
}

/* x8k_tile over two full groups (16 rows, 512-bit registers; lanes 0-7
 * group A, 8-15 group B): each lane does x8k_tile's operations, so the
 * same bits (see x8_tile2). */
VNNI_FN static inline __attribute__((always_inline)) __m512i x8k_bytes2(const uint8_t *a,
                                                                        const uint8_t *b)
{
    return _mm512_cvtepu8_epi32(_mm_unpacklo_epi64(_mm_loadl_epi64((const __m128i *)(const void *)a),
                                                   _mm_loadl_epi64((const __m128i *)(const void *)b)));
}

VNNI_FN static inline __attribute__((always_inline)) __m512 x8k_f16x2(const uint8_t *a, const uint8_t *b)
{
    return _mm512_cvtph_ps(_mm256_inserti128_si256(
        _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)a)),
        _mm_loadu_si128((const __m128i *)(const void *)b), 1));
}

VNNI_FN static inline __attribute__((always_inline)) void x8k_tile2(const uint8_t *ga, const uint8_t *gbp,
                                                                    int64_t ns, int64_t n,
                                                                    const uint8_t *act, size_t as,
                                                                    float *out, const int C)
{
    const __m512i m4 = _mm512_set1_epi32(0x0f0f0f0f);
    const int64_t nb = n / QEIL_PACK_BLOCK;
    const uint8_t *q[QEIL_PACK_VEC];
    const float *dx[QEIL_PACK_VEC];
    const int32_t *sq[QEIL_PACK_VEC];
    __m512 f[QEIL_PACK_VEC];
    UNROLL8 for (int c = 0; c < C; c++) {
        q[c] = act + (size_t)c * as;
        dx[c] = (const float *)(const void *)(q[c] + n);
        sq[c] = (const int32_t *)(const void *)(dx[c] + nb);
        f[c] = _mm512_setzero_ps();
    }
    for (int64_t sb = 0; sb < ns; sb++) {
        const uint8_t *oa = ga + (size_t)sb * X8K_REC, *ob = gbp + (size_t)sb * X8K_REC;
        __m512i A[QEIL_PACK_VEC];
        UNROLL8 for (int c = 0; c < C; c++) A[c] = _mm512_setzero_si512();
        for (int p = 0; p < 4; p++) {
            const int NH = C == 1 ? 2 : 1;
            __m512i lo[QEIL_PACK_VEC][2], hi[QEIL_PACK_VEC][2];
            UNROLL8 for (int c = 0; c < C; c++)
                UNROLL8 for (int h = 0; h < NH; h++) lo[c][h] = hi[c][h] = _mm512_setzero_si512();
            UNROLL8 for (int k = 0; k < 8; k++) {
                const __m512i raw = _mm512_inserti64x4(
                    _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(const void *)(oa + 256 * p + 32 * k))),
                    _mm256_loadu_si256((const __m256i *)(const void *)(ob + 256 * p + 32 * k)), 1);
                const __m512i ul = _mm512_and_si512(raw, m4);
                const __m512i uh = _mm512_and_si512(_mm512_srli_epi32(raw, 4), m4);
                const int h = NH == 2 ? k % 2 : 0;
                UNROLL8 for (int c = 0; c < C; c++) {
                    const uint8_t *qc = q[c] + sb * QEIL_QK_K + 64 * p + 4 * k;
                    lo[c][h] = _mm512_dpbusd_epi32(lo[c][h], ul, _mm512_set1_epi32(ld32(qc)));
                    hi[c][h] = _mm512_dpbusd_epi32(hi[c][h], uh, _mm512_set1_epi32(ld32(qc + 32)));
                }
            }
            const __m512i sl = x8k_bytes2(oa + X8K_SC + 16 * p, ob + X8K_SC + 16 * p);
            const __m512i sh = x8k_bytes2(oa + X8K_SC + 16 * p + 8, ob + X8K_SC + 16 * p + 8);
            UNROLL8 for (int c = 0; c < C; c++) {
                if (NH == 2) {
                    lo[c][0] = _mm512_add_epi32(lo[c][0], lo[c][1]);
                    hi[c][0] = _mm512_add_epi32(hi[c][0], hi[c][1]);
                }
                A[c] = _mm512_add_epi32(A[c], _mm512_add_epi32(_mm512_mullo_epi32(lo[c][0], sl),
                                                               _mm512_mullo_epi32(hi[c][0], sh)));
            }
        }
        __m512i M[QEIL_PACK_VEC];
        UNROLL8 for (int c = 0; c < C; c++) M[c] = _mm512_setzero_si512();
        UNROLL8 for (int j = 0; j < 8; j++) {
            const __m512i mj = x8k_bytes2(oa + X8K_M + 8 * j, ob + X8K_M + 8 * j);
            UNROLL8 for (int c = 0; c < C; c++)
                M[c] = _mm512_add_epi32(M[c], _mm512_mullo_epi32(mj, _mm512_set1_epi32(sq[c][8 * sb + j])));
        }
        const __m512 d = x8k_f16x2(oa + X8K_D, ob + X8K_D);
        const __m512 dm = x8k_f16x2(oa + X8K_DMIN, ob + X8K_DMIN);
        UNROLL8 for (int c = 0; c < C; c++) {
            const __m512 vx = _mm512_set1_ps(dx[c][8 * sb]);
            f[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(A[c]), _mm512_mul_ps(d, vx), f[c]);
            f[c] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(M[c]), _mm512_mul_ps(dm, vx), f[c]);
        }
    }
    UNROLL8 for (int c = 0; c < C; c++) _mm512_storeu_ps(out + 16 * c, f[c]);
}

#define X8K_FN2(NAME, C)                                                                           \
    VNNI_FN static void NAME(const uint8_t *ga, const uint8_t *gbp, int64_t ns, int64_t n,        \
                             const uint8_t *act, size_t as, float *out)                            \
    {                                                                                              \
        x8k_tile2(ga, gbp, ns, n, act, as, out, C);                                                \
    }
X8K_FN2(x8kx2_8, 8)
X8K_FN2(x8kx2_4, 4)
X8K_FN2(x8kx2_2, 2)
X8K_FN2(x8kx2_1, 1)

#define X8K_FN(NAME, C)                                                                            \
    VNNI_FN static void NAME(const uint8_t *g, int64_t ns, int64_t n, const uint8_t *act,         \
                             size_t as, float *out)                                                \
    {                                                                                              \
        x8k_tile(g, ns, n, act, as, out, C);                                                       \
    }
X8K_FN(x8k_8, 8)
X8K_FN(x8k_4, 4)
X8K_FN(x8k_2, 2)
X8K_FN(x8k_1, 1)

/* x8 kernel: C vectors (a constant after inlining) against one group.
 * Per block: the 8 rows' weights unpacked once (8 ymm), then per vector 8
 * vpdpbusd from xb and one FMA for the 8 rows. */
VNNI_FN static inline __attribute__((always_inline)) void x8_tile(const int q4, const uint8_t *g,
                                                                  int64_t nb, int64_t n,
                                                                  const uint8_t *act, size_t as,
                                                                  float *out, const int C)
{
    const size_t qsb = q4 ? 128 : 256, rec = qsb + 16;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const int8_t *q[QEIL_PACK_VEC];
    const float *dx[QEIL_PACK_VEC];
    const int32_t *xb[QEIL_PACK_VEC];
    __m256 f[QEIL_PACK_VEC];
    UNROLL8 for (int c = 0; c < C; c++) {
        q[c] = (const int8_t *)(act + (size_t)c * as);
        dx[c] = (const float *)(const void *)(act + (size_t)c * as + n);
        xb[c] = (const int32_t *)(const void *)(dx[c] + nb);
        f[c] = _mm256_setzero_ps();
    }
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *o = g + (size_t)b * rec;
        __m256i u[8];
        int off[8];
        if (q4) {
            UNROLL8 for (int k = 0; k < 4; k++) {
                const __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(o + 32 * k));
                u[k] = _mm256_and_si256(v, m4);
                u[k + 4] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
                off[k] = 4 * k;
                off[k + 4] = 16 + 4 * k;
            }
        } else {
            UNROLL8 for (int k = 0; k < 8; k++) {
                u[k] = _mm256_loadu_si256((const __m256i *)(const void *)(o + 32 * k));
                off[k] = 4 * k;
            }
        }
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(o + qsb)));
        /* independent vpdpbusd chains when there are few vectors (see
         * x8k_tile); integer sums: the split never changes a bit */
        __m256i a[QEIL_PACK_VEC][X8_NA];
        UNROLL8 for (int c = 0; c < C; c++) {
            a[c][0] = _mm256_set1_epi32(xb[c][b]);
            UNROLL8 for (int h = 1; h < X8_NA; h++) a[c][h] = _mm256_setzero_si256();
        }
        UNROLL8 for (int k = 0; k < 8; k++)
            UNROLL8 for (int c = 0; c < C; c++) {
                const int h = k % (C >= 4 ? 1 : C == 2 ? 2 : X8_NA);
                a[c][h] = _mm256_dpbusd_epi32(a[c][h], u[k],
                                              _mm256_set1_epi32(ld32((const uint8_t *)q[c] + b * 32 + off[k])));
            }
        UNROLL8 for (int c = 0; c < C; c++) {
            UNROLL8 for (int h = 1; h < X8_NA; h++) a[c][0] = _mm256_add_epi32(a[c][0], a[c][h]);
            f[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(a[c][0]), _mm256_mul_ps(dw, _mm256_set1_ps(dx[c][b])),
                                   f[c]);
        }
    }
    UNROLL8 for (int c = 0; c < C; c++) _mm256_storeu_ps(out + 8 * c, f[c]);
}

#define X8_FN(NAME, Q4, C)                                                                         \
    VNNI_FN static void NAME(const uint8_t *g, int64_t nb, int64_t n, const uint8_t *act,         \
                             size_t as, float *out)                                                \
    {                                                                                              \
        x8_tile(Q4, g, nb, n, act, as, out, C);                                                    \
    }
X8_FN(x8q4_8, 1, 8)
X8_FN(x8q4_4, 1, 4)
X8_FN(x8q4_2, 1, 2)
X8_FN(x8q4_1, 1, 1)
X8_FN(x8q8_8, 0, 8)
X8_FN(x8q8_4, 0, 4)
X8_FN(x8q8_2, 0, 2)
X8_FN(x8q8_1, 0, 1)

/* x8_tile over two full groups at once (16 rows) in 512-bit registers:
 * lanes 0-7 are group A's rows, 8-15 group B's. One activation broadcast
 * then feeds 16 rows instead of 8, which halves the broadcasts per
 * vpdpbusd; in cache 25-35 % more MAC/s than two x8_tile calls on Zen 4
 * (one vector too, but streamed from DRAM two groups side by side ran at
 * half speed: matmul uses it for batches only; docs/kernels.md). Each lane does
 * exactly x8_tile's integer and float operations, so the results are the
 * same bits. Only AVX-512F/VL/VNNI instructions (no BW: the nibble shift
 * is on 32-bit lanes, the mask removes what crosses a byte). */
VNNI_FN static inline __attribute__((always_inline)) void x8_tile2(const int q4, const uint8_t *ga,
                                                                   const uint8_t *gbp, int64_t nb,
                                                                   int64_t n, const uint8_t *act,
                                                                   size_t as, float *out, const int C)
{
    const size_t qsb = q4 ? 128 : 256, rec = qsb + 16;
    const __m512i m4 = _mm512_set1_epi32(0x0f0f0f0f);
    const int8_t *q[QEIL_PACK_VEC];
    const float *dx[QEIL_PACK_VEC];
    const int32_t *xb[QEIL_PACK_VEC];
    __m512 f[QEIL_PACK_VEC];
    UNROLL8 for (int c = 0; c < C; c++) {
        q[c] = (const int8_t *)(act + (size_t)c * as);
        dx[c] = (const float *)(const void *)(act + (size_t)c * as + n);
        xb[c] = (const int32_t *)(const void *)(dx[c] + nb);
        f[c] = _mm512_setzero_ps();
    }
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *oa = ga + (size_t)b * rec, *ob = gbp + (size_t)b * rec;
        __m512i u[8];
        int off[8];
        if (q4) {
            UNROLL8 for (int k = 0; k < 4; k++) {
                const __m512i v = _mm512_inserti64x4(
                    _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(const void *)(oa + 32 * k))),
                    _mm256_loadu_si256((const __m256i *)(const void *)(ob + 32 * k)), 1);
                u[k] = _mm512_and_si512(v, m4);
                u[k + 4] = _mm512_and_si512(_mm512_srli_epi32(v, 4), m4);
                off[k] = 4 * k;
                off[k + 4] = 16 + 4 * k;
            }
        } else {
            UNROLL8 for (int k = 0; k < 8; k++) {
                u[k] = _mm512_inserti64x4(
                    _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(const void *)(oa + 32 * k))),
                    _mm256_loadu_si256((const __m256i *)(const void *)(ob + 32 * k)), 1);
                off[k] = 4 * k;
            }
        }
        const __m512 dw = _mm512_cvtph_ps(_mm256_inserti128_si256(
            _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)(oa + qsb))),
            _mm_loadu_si128((const __m128i *)(const void *)(ob + qsb)), 1));
        __m512i a[QEIL_PACK_VEC][X8_NA];
        UNROLL8 for (int c = 0; c < C; c++) {
            a[c][0] = _mm512_set1_epi32(xb[c][b]);
            UNROLL8 for (int h = 1; h < X8_NA; h++) a[c][h] = _mm512_setzero_si512();
        }
        UNROLL8 for (int k = 0; k < 8; k++)
            UNROLL8 for (int c = 0; c < C; c++) {
                const int h = k % (C >= 4 ? 1 : C == 2 ? 2 : X8_NA);
                a[c][h] = _mm512_dpbusd_epi32(a[c][h], u[k],
                                              _mm512_set1_epi32(ld32((const uint8_t *)q[c] + b * 32 + off[k])));
            }
        UNROLL8 for (int c = 0; c < C; c++) {
            UNROLL8 for (int h = 1; h < X8_NA; h++) a[c][0] = _mm512_add_epi32(a[c][0], a[c][h]);
            f[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a[c][0]), _mm512_mul_ps(dw, _mm512_set1_ps(dx[c][b])),
                                   f[c]);
        }
    }
    UNROLL8 for (int c = 0; c < C; c++) _mm512_storeu_ps(out + 16 * c, f[c]);
}

#define X8_FN2(NAME, Q4, C)                                                                        \
    VNNI_FN static void NAME(const uint8_t *ga, const uint8_t *gbp, int64_t nb, int64_t n,        \
                             const uint8_t *act, size_t as, float *out)                            \
    {                                                                                              \
        x8_tile2(Q4, ga, gbp, nb, n, act, as, out, C);                                             \
    }
X8_FN2(x8q4x2_8, 1, 8)
X8_FN2(x8q4x2_4, 1, 4)
X8_FN2(x8q4x2_2, 1, 2)
X8_FN2(x8q4x2_1, 1, 1)
X8_FN2(x8q8x2_8, 0, 8)
X8_FN2(x8q8x2_4, 0, 4)
X8_FN2(x8q8x2_2, 0, 2)
X8_FN2(x8q8x2_1, 0, 1)

/* The tiles by type (Q4_0, Q8_0, Q4_K) and width (8, 4, 2, 1 vectors): one
 * group, and two groups side by side. Each takes the count of its type's
 * records per row (32-element blocks; Q4_K: 256-element super-blocks). */
typedef void (*x8_tile_fn)(const uint8_t *g, int64_t nb, int64_t n, const uint8_t *act, size_t as,
                           float *out);
typedef void (*x8_tile2_fn)(const uint8_t *ga, const uint8_t *gbp, int64_t nb, int64_t n,
                            const uint8_t *act, size_t as, float *out);
static const x8_tile_fn k_x8_tile[3][4] = {{x8q4_8, x8q4_4, x8q4_2, x8q4_1},
                                           {x8q8_8, x8q8_4, x8q8_2, x8q8_1},
                                           {x8k_8, x8k_4, x8k_2, x8k_1}};
static const x8_tile2_fn k_x8_tile2[3][4] = {{x8q4x2_8, x8q4x2_4, x8q4x2_2, x8q4x2_1},
                                             {x8q8x2_8, x8q8x2_4, x8q8x2_2, x8q8x2_1},
                                             {x8kx2_8, x8kx2_4, x8kx2_2, x8kx2_1}};

static int x8_type_index(int type)
{
    return type == QEIL_GGML_Q4_0 ? 0 : type == QEIL_GGML_Q8_0 ? 1 : 2;
}

static int64_t x8_records(int type, int64_t n_cols)
{
    return type == QEIL_GGML_Q4_K ? n_cols / QEIL_QK_K : n_cols / QEIL_PACK_BLOCK;
}

/* Widest tile for `left` vectors: index into the tables, width 8 >> index. */
static int x8_width_index(int left)
{
    return left >= 8 ? 0 : left >= 4 ? 1 : left >= 2 ? 2 : 3;
}

VNNI_FN void qeil_x8_gemm2_vnni(int type, const uint8_t *g, size_t gb, int64_t n_cols,
                                const uint8_t *act, size_t as, int nc, float *y, size_t ys)
{
    const x8_tile2_fn *fn = k_x8_tile2[x8_type_index(type)];
    const int64_t nb = x8_records(type, n_cols);
    float out[QEIL_PACK_VEC * 16];
    for (int c = 0; c < nc;) {
        const int w = x8_width_index(nc - c), C = 8 >> w;
        fn[w](g, g + gb, nb, n_cols, act + (size_t)c * as, as, out);
        for (int i = 0; i < C; i++) memcpy(y + (size_t)(c + i) * ys, out + 16 * i, 16 * sizeof(float));
        c += C;
    }
}

VNNI_FN void qeil_x8_gemv_vnni(int type, const uint8_t *g, size_t gb, int64_t n_groups,
                               int64_t n_cols, const uint8_t *act, float *y)
{
    const x8_tile_fn fn = k_x8_tile[x8_type_index(type)][3];
    const int64_t nb = x8_records(type, n_cols);
    for (int64_t i = 0; i < n_groups; i++) fn(g + (size_t)i * gb, nb, n_cols, act, 0, y + 8 * i);
}

VNNI_FN void qeil_x8_gemm_vnni(int type, const uint8_t *g, int nr, int64_t n_cols,
                               const uint8_t *act, size_t as, int nc, float *y, size_t ys)
{
    const x8_tile_fn *fn = k_x8_tile[x8_type_index(type)];
    const int64_t nb = x8_records(type, n_cols);
    float out[QEIL_PACK_VEC * 8];
    for (int c = 0; c < nc;) {
        const int w = x8_width_index(nc - c), C = 8 >> w;
        fn[w](g, nb, n_cols, act + (size_t)c * as, as, out);
        for (int i = 0; i < C; i++) memcpy(y + (size_t)(c + i) * ys, out + 8 * i, (size_t)nr * sizeof(float));
        c += C;
    }
}

#endif /* QEIL_HAVE_X86_SIMD */
