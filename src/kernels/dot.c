/*
 * dot.c — scalar reference dot products (weights · activations), the
 * per-type table, and the run-time choice of SIMD level.
 *
 * The references are the definition the SIMD kernels are tested against:
 * f32/f16/bf16 accumulate in double (a more accurate yardstick than any
 * vector order); block formats sum integer products exactly within a block
 * and combine the block scales in float, in block order.
 */
#include "kernels/quant.h"

#include "core/cpu.h"

#include <stdlib.h>
#include <string.h>

static float load_f16(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, sizeof h);
    return qeil_f16_to_f32_fast(h);
}

/* ======================================================================== */
/* Float formats: activations stay f32                                       */
/* ======================================================================== */

/* Four double partial sums (element i goes to sum i % 4), added at the
 * end: the reference's definition, and four independent add chains. */
#define FLOAT_DOT(load_w)                                                   \
    do {                                                                    \
        const uint8_t *pw = w, *px = x;                                     \
        double acc[4] = {0.0, 0.0, 0.0, 0.0};                               \
        for (int64_t i = 0; i < n; i++) {                                   \
            float b;                                                        \
            memcpy(&b, px + 4 * i, sizeof b);                               \
            acc[i & 3] += (double)(load_w) * (double)b;                     \
        }                                                                   \
        *s = (float)((acc[0] + acc[1]) + (acc[2] + acc[3]));                \
    } while (0)

static float load_f32(const uint8_t *p)
{
    float f;
    memcpy(&f, p, sizeof f);
    return f;
}

static float load_bf16(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, sizeof h);
    return qeil_bf16_to_f32(h);
}

void qeil_vec_dot_f32_ref(int64_t n, float *s, const void *w, const void *x)
{
    FLOAT_DOT(load_f32(pw + 4 * i));
}

void qeil_vec_dot_f16_ref(int64_t n, float *s, const void *w, const void *x)
{
    FLOAT_DOT(load_f16(pw + 2 * i));
}

void qeil_vec_dot_bf16_ref(int64_t n, float *s, const void *w, const void *x)
{
    FLOAT_DOT(load_bf16(pw + 2 * i));
}

/* ======================================================================== */
/* Q8_0 and Q4_0 weights · Q8_0 activations                                  */
/* ======================================================================== */

void qeil_vec_dot_q8_0_ref(int64_t n, float *s, const void *w, const void *x)
{
    const uint8_t *bw = w, *bx = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QEIL_QK8_0; i++, bw += QEIL_Q8_0_BYTES, bx += QEIL_Q8_0_BYTES) {
        const int8_t *qw = (const int8_t *)(bw + 2), *qx = (const int8_t *)(bx + 2);
        int32_t isum = 0;
        for (int j = 0; j < QEIL_QK8_0; j++) isum += qw[j] * qx[j];
        sum += load_f16(bw) * load_f16(bx) * (float)isum;
    }
    *s = sum;
}

void qeil_vec_dot_q4_0_ref(int64_t n, float *s, const void *w, const void *x)
{
    const uint8_t *bw = w, *bx = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QEIL_QK4_0; i++, bw += QEIL_Q4_0_BYTES, bx += QEIL_Q8_0_BYTES) {
        const uint8_t *qw = bw + 2;
        const int8_t *qx = (const int8_t *)(bx + 2);
        int32_t isum = 0;
        for (int j = 0; j < QEIL_QK4_0 / 2; j++) {
            isum += ((qw[j] & 0x0f) - 8) * qx[j];
            isum += ((qw[j] >> 4) - 8) * qx[j + 16];
        }
        sum += load_f16(bw) * load_f16(bx) * (float)isum;
    }
    *s = sum;
}

/* ======================================================================== */
/* Q5_0 · Q8_0, Q4_1 / Q5_1 · Q8_1 (ggml's definitions)                      */
/* ======================================================================== */

/* The 5-bit code of element j of a Q5_0 / Q5_1 block (qh: the 4 high-bit
 * bytes, qs: the 16 nibble bytes). */
static int q5_code(const uint8_t *qh, const uint8_t *qs, int j)
{
    uint32_t h;
    memcpy(&h, qh, sizeof h);
    int lo = j < 16 ? (qs[j] & 0x0f) : (qs[j - 16] >> 4);
    return lo | (int)((h >> j) & 1u) << 4;
}

void qeil_vec_dot_q5_0_ref(int64_t n, float *s, const void *w, const void *x)
{
    const uint8_t *bw = w, *bx = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QEIL_QK5; i++, bw += QEIL_Q5_0_BYTES, bx += QEIL_Q8_0_BYTES) {
        const int8_t *qx = (const int8_t *)(bx + 2);
        int32_t isum = 0;
        for (int j = 0; j < QEIL_QK5; j++) isum += (q5_code(bw + 2, bw + 6, j) - 16) * qx[j];
        sum += load_f16(bw) * load_f16(bx) * (float)isum;
    }
    *s = sum;
}

void qeil_vec_dot_iq4_nl_ref(int64_t n, float *s, const void *w, const void *x)
{
    const uint8_t *bw = w, *bx = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QEIL_QK5; i++, bw += QEIL_IQ4_NL_BYTES, bx += QEIL_Q8_0_BYTES) {
        const uint8_t *qw = bw + 2;
        const int8_t *qx = (const int8_t *)(bx + 2);
        int32_t isum = 0;
        for (int j = 0; j < QEIL_QK5 / 2; j++) {
            isum += qeil_kvalues_iq4nl[qw[j] & 0x0f] * qx[j];
            isum += qeil_kvalues_iq4nl[qw[j] >> 4] * qx[j + 16];
        }
        sum += load_f16(bw) * load_f16(bx) * (float)isum;
    }
    *s = sum;
}

/* Per super-block d_x d sum_ib (ls_ib - 32) sum_j kvalues[q] y, the
 * integer sum exact (|.| <= 8 * 32 * 32 * 127 * 127 < 2^31), combined as
 * the K-quants are (so the SIMD kernels return these bits). */
void qeil_vec_dot_iq4_xs_ref(int64_t n, float *s, const void *w, const void *x)
{
    const uint8_t *bw = w, *bx = x;
    double sum = 0.0;
    for (int64_t i = 0; i < n / QEIL_QK_K; i++, bw += QEIL_IQ4_XS_BYTES, bx += QEIL_Q8_K_BYTES) {
        float dx;
        memcpy(&dx, bx, sizeof dx);
        const float d = dx * load_f16(bw);
        int sc[8];
        qeil_iq4_xs_scales(bw, sc);
        const int8_t *qy = (const int8_t *)(bx + 4);
        int32_t isum = 0;
        for (int ib = 0; ib < 8; ib++) {
            const uint8_t *qs = bw + 8 + 16 * ib;
            int32_t part = 0;
            for (int j = 0; j < 16; j++) {
                part += qeil_kvalues_iq4nl[qs[j] & 0x0f] * qy[32 * ib + j];
                part += qeil_kvalues_iq4nl[qs[j] >> 4] * qy[32 * ib + j + 16];
            }
            isum += sc[ib] * part;
        }
        sum += (double)d * (float)isum;
    }
    *s = (float)sum;
}

/* Per block d_w d_x sum q y + m_w s_x, where s_x = d_x sum y (stored f16):
 * the min term costs one product per block. */
void qeil_vec_dot_q4_1_ref(int64_t n, float *s, const void *w, const void *x)
{
    const uint8_t *bw = w, *bx = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QEIL_QK5; i++, bw += QEIL_Q4_1_BYTES, bx += QEIL_Q8_1_BYTES) {
        const uint8_t *qw = bw + 4;
        const int8_t *qx = (const int8_t *)(bx + 4);
        int32_t isum = 0;
        for (int j = 0; j < QEIL_QK5 / 2; j++) {
            isum += (qw[j] & 0x0f) * qx[j];
            isum += (qw[j] >> 4) * qx[j + 16];
        }
        sum += load_f16(bw) * load_f16(bx) * (float)isum + load_f16(bw + 2) * load_f16(bx + 2);
    }
    *s = sum;
}

void qeil_vec_dot_q5_1_ref(int64_t n, float *s, const void *w, const void *x)
{
    const uint8_t *bw = w, *bx = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QEIL_QK5; i++, bw += QEIL_Q5_1_BYTES, bx += QEIL_Q8_1_BYTES) {
        const int8_t *qx = (const int8_t *)(bx + 4);
        int32_t isum = 0;
        for (int j = 0; j < QEIL_QK5; j++) isum += q5_code(bw + 4, bw + 8, j) * qx[j];
        sum += load_f16(bw) * load_f16(bx) * (float)isum + load_f16(bw + 2) * load_f16(bx + 2);
    }
    *s = sum;
}

/* ======================================================================== */
/* K-quants · Q8_K                                                           */
/* ======================================================================== */

/* Per super-block:  d_x d sum_s sc[s] sum_l q y  -  d_x dmin sum_s m[s] sum_l y
 * where sum_l y over a 32-element sub-block is bsums[2s] + bsums[2s+1]. Both
 * integer sums are exact (|.| < 256 * 15 * 127 * 63 < 2^31). The AVX2 kernel
 * repeats the combination verbatim and gets the same bits, whatever the
 * compiler's FP contraction: each product is float x float (the int sums
 * rounded to float first), exact in double, so fusing it into an FMA
 * changes nothing; the super-block terms are summed in double. */
void qeil_vec_dot_q4_k_ref(int64_t n, float *s, const void *w, const void *x)
{
    const uint8_t *bw = w, *bx = x;
    double sum = 0.0;
    for (int64_t i = 0; i < n / QEIL_QK_K; i++, bw += QEIL_Q4_K_BYTES, bx += QEIL_Q8_K_BYTES) {
        float dx;
        memcpy(&dx, bx, sizeof dx);
        const float d = dx * load_f16(bw);
        const float dmin = dx * load_f16(bw + 2);
        uint8_t sc[8], m[8];
        qeil_q4_k_get_scale_min(bw + 4, sc, m);
        const uint8_t *qs = bw + 16;
        const int8_t *qy = (const int8_t *)(bx + 4);
        int16_t bsums[16];
        memcpy(bsums, bx + 260, sizeof bsums);

        int32_t summin = 0;
        for (int j = 0; j < 8; j++) summin += m[j] * (bsums[2 * j] + bsums[2 * j + 1]);
        int32_t isum = 0;
        for (int c = 0; c < 4; c++) {
            int32_t s1 = 0, s2 = 0;
            for (int l = 0; l < 32; l++) {
                s1 += (qs[32 * c + l] & 0x0f) * qy[64 * c + l];
                s2 += (qs[32 * c + l] >> 4) * qy[64 * c + 32 + l];
            }
            isum += sc[2 * c] * s1 + sc[2 * c + 1] * s2;
        }
        sum += (double)d * (float)isum - (double)dmin * (float)summin;
    }
    *s = (float)sum;
}

/* Q4_K's definition with 5-bit q (|isum| < 256 * 31 * 127 * 63 < 2^31). */
void qeil_vec_dot_q5_k_ref(int64_t n, float *s, const void *w, const void *x)
{
    const uint8_t *bw = w, *bx = x;
    double sum = 0.0;
    for (int64_t i = 0; i < n / QEIL_QK_K; i++, bw += QEIL_Q5_K_BYTES, bx += QEIL_Q8_K_BYTES) {
        float dx;
        memcpy(&dx, bx, sizeof dx);
        const float d = dx * load_f16(bw);
        const float dmin = dx * load_f16(bw + 2);
        uint8_t sc[8], m[8];
        qeil_q4_k_get_scale_min(bw + 4, sc, m);
        const uint8_t *qh = bw + 16, *qs = bw + 48;
        const int8_t *qy = (const int8_t *)(bx + 4);
        int16_t bsums[16];
        memcpy(bsums, bx + 260, sizeof bsums);

        int32_t summin = 0;
        for (int j = 0; j < 8; j++) summin += m[j] * (bsums[2 * j] + bsums[2 * j + 1]);
        int32_t isum = 0;
        for (int c = 0; c < 4; c++) {
            int32_t s1 = 0, s2 = 0;
            for (int l = 0; l < 32; l++) {
                const int q1 = (qs[32 * c + l] & 0x0f) | ((qh[l] >> (2 * c)) & 1) << 4;
                const int q2 = (qs[32 * c + l] >> 4) | ((qh[l] >> (2 * c + 1)) & 1) << 4;
                s1 += q1 * qy[64 * c + l];
                s2 += q2 * qy[64 * c + 32 + l];
            }
            isum += sc[2 * c] * s1 + sc[2 * c + 1] * s2;
        }
        sum += (double)d * (float)isum - (double)dmin * (float)summin;
    }
    *s = (float)sum;
}

/* Per super-block: d_x d sum_s scales[s] sum_l (q - 32) y; the integer sum
 * is exact (|.| < 256 * 32 * 127 * 128 < 2^31). */
void qeil_vec_dot_q6_k_ref(int64_t n, float *s, const void *w, const void *x)
{
    const uint8_t *bw = w, *bx = x;
    double sum = 0.0;
    for (int64_t i = 0; i < n / QEIL_QK_K; i++, bw += QEIL_Q6_K_BYTES, bx += QEIL_Q8_K_BYTES) {
        float dx;
        memcpy(&dx, bx, sizeof dx);
        const float d = dx * load_f16(bw + 208);
        const uint8_t *ql = bw, *qh = bw + 128;
        const int8_t *scales = (const int8_t *)(bw + 192);
        const int8_t *qy = (const int8_t *)(bx + 4);
        int32_t isum = 0;
        for (int h = 0; h < 2; h++) {
            for (int c = 0; c < 4; c++) {
                /* elements 128h + 32c + l: low 4 bits from ql (low nibble
                 * for c < 2), high 2 bits from bits 2c..2c+1 of qh[32h + l];
                 * l < 16 is sub-block 8h + 2c, l >= 16 the next one */
                const uint8_t *lo = ql + 64 * h + 32 * (c % 2), *hi = qh + 32 * h;
                const int8_t *y = qy + 128 * h + 32 * c;
                const int lshift = c < 2 ? 0 : 4, hshift = 2 * c;
                for (int half = 0; half < 2; half++) {
                    int32_t part = 0;
                    for (int l = 16 * half; l < 16 * half + 16; l++) {
                        int q = ((lo[l] >> lshift) & 0x0f) | (((hi[l] >> hshift) & 3) << 4);
                        part += (q - 32) * y[l];
                    }
                    isum += scales[8 * h + 2 * c + half] * part;
                }
            }
        }
        sum += (double)d * (float)isum;
    }
    *s = (float)sum;
}

/* ======================================================================== */
/* Table and dispatch                                                        */
/* ======================================================================== */

static const qeil_quant_traits k_traits[] = {
    {QEIL_GGML_F32, "f32", 1, 4, QEIL_GGML_F32, qeil_dequantize_row_f32,
     qeil_quantize_row_f32, qeil_vec_dot_f32_ref},
    {QEIL_GGML_F16, "f16", 1, 2, QEIL_GGML_F32, qeil_dequantize_row_f16,
     qeil_quantize_row_f16, qeil_vec_dot_f16_ref},
    {QEIL_GGML_BF16, "bf16", 1, 2, QEIL_GGML_F32, qeil_dequantize_row_bf16,
     qeil_quantize_row_bf16, qeil_vec_dot_bf16_ref},
    {QEIL_GGML_Q8_0, "q8_0", QEIL_QK8_0, QEIL_Q8_0_BYTES, QEIL_GGML_Q8_0,
     qeil_dequantize_row_q8_0, qeil_quantize_row_q8_0, qeil_vec_dot_q8_0_ref},
    {QEIL_GGML_Q4_0, "q4_0", QEIL_QK4_0, QEIL_Q4_0_BYTES, QEIL_GGML_Q8_0,
     qeil_dequantize_row_q4_0, qeil_quantize_row_q4_0, qeil_vec_dot_q4_0_ref},
    {QEIL_GGML_Q4_1, "q4_1", QEIL_QK5, QEIL_Q4_1_BYTES, QEIL_GGML_Q8_1,
     qeil_dequantize_row_q4_1, qeil_quantize_row_q4_1, qeil_vec_dot_q4_1_ref},
    {QEIL_GGML_Q5_0, "q5_0", QEIL_QK5, QEIL_Q5_0_BYTES, QEIL_GGML_Q8_0,
     qeil_dequantize_row_q5_0, qeil_quantize_row_q5_0, qeil_vec_dot_q5_0_ref},
    {QEIL_GGML_Q5_1, "q5_1", QEIL_QK5, QEIL_Q5_1_BYTES, QEIL_GGML_Q8_1,
     qeil_dequantize_row_q5_1, qeil_quantize_row_q5_1, qeil_vec_dot_q5_1_ref},
    {QEIL_GGML_IQ4_NL, "iq4_nl", QEIL_QK5, QEIL_IQ4_NL_BYTES, QEIL_GGML_Q8_0,
     qeil_dequantize_row_iq4_nl, qeil_quantize_row_iq4_nl, qeil_vec_dot_iq4_nl_ref},
    {QEIL_GGML_IQ4_XS, "iq4_xs", QEIL_QK_K, QEIL_IQ4_XS_BYTES, QEIL_GGML_Q8_K,
     qeil_dequantize_row_iq4_xs, qeil_quantize_row_iq4_xs, qeil_vec_dot_iq4_xs_ref},
    {QEIL_GGML_Q4_K, "q4_k", QEIL_QK_K, QEIL_Q4_K_BYTES, QEIL_GGML_Q8_K,
     qeil_dequantize_row_q4_k, qeil_quantize_row_q4_k, qeil_vec_dot_q4_k_ref},
    {QEIL_GGML_Q5_K, "q5_k", QEIL_QK_K, QEIL_Q5_K_BYTES, QEIL_GGML_Q8_K,
     qeil_dequantize_row_q5_k, qeil_quantize_row_q5_k, qeil_vec_dot_q5_k_ref},
    {QEIL_GGML_Q6_K, "q6_k", QEIL_QK_K, QEIL_Q6_K_BYTES, QEIL_GGML_Q8_K,
     qeil_dequantize_row_q6_k, qeil_quantize_row_q6_k, qeil_vec_dot_q6_k_ref},
    {QEIL_GGML_Q8_K, "q8_k", QEIL_QK_K, QEIL_Q8_K_BYTES, QEIL_GGML_Q8_K,
     qeil_dequantize_row_q8_k, qeil_quantize_row_q8_k, NULL},
    {QEIL_GGML_Q8_1, "q8_1", QEIL_QK5, QEIL_Q8_1_BYTES, QEIL_GGML_Q8_1,
     qeil_dequantize_row_q8_1, qeil_quantize_row_q8_1, NULL},
};

const qeil_quant_traits *qeil_quant_traits_of(int type)
{
    for (size_t i = 0; i < sizeof k_traits / sizeof k_traits[0]; i++)
        if (k_traits[i].type == type) return &k_traits[i];
    return NULL;
}

/* The levels from the one CPU-feature module (src/core/cpu.c), which the
 * probe uses too; QEIL_NO_SIMD (qeil_cpu_simd_disabled) turns them off. */
#define X86_AVX2_LEVEL (QEIL_CPU_AVX2 | QEIL_CPU_FMA | QEIL_CPU_F16C)
#define X86_EVEX_VNNI (QEIL_CPU_AVX512F | QEIL_CPU_AVX512VL | QEIL_CPU_AVX512VNNI)

qeil_simd qeil_simd_best(void)
{
    if (qeil_cpu_simd_disabled()) return QEIL_SIMD_SCALAR;
    const unsigned f = qeil_cpu_features();
#if QEIL_HAVE_X86_SIMD
    if ((f & X86_AVX2_LEVEL) == X86_AVX2_LEVEL) return QEIL_SIMD_AVX2;
#elif QEIL_HAVE_ARM_SIMD
    if (f & QEIL_CPU_ASIMD) return QEIL_SIMD_NEON;
#else
    (void)f;
#endif
    return QEIL_SIMD_SCALAR;
}

int qeil_cpu_has_avx512_vnni(void)
{
#if QEIL_HAVE_X86_SIMD
    return qeil_simd_best() == QEIL_SIMD_AVX2 &&
           (qeil_cpu_features() & X86_EVEX_VNNI) == X86_EVEX_VNNI;
#else
    return 0;
#endif
}

int qeil_cpu_has_arm_dotprod(void)
{
#if QEIL_HAVE_ARM_SIMD
    return qeil_simd_best() == QEIL_SIMD_NEON && (qeil_cpu_features() & QEIL_CPU_ASIMDDP) != 0;
#else
    return 0;
#endif
}

int qeil_cpu_has_arm_i8mm(void)
{
#if QEIL_HAVE_ARM_SIMD
    return qeil_simd_best() == QEIL_SIMD_NEON && (qeil_cpu_features() & QEIL_CPU_I8MM) != 0;
#else
    return 0;
#endif
}

const char *qeil_simd_name(qeil_simd simd)
{
    switch (simd) {
    case QEIL_SIMD_SCALAR: return "scalar";
    case QEIL_SIMD_AVX2: return "avx2";
    case QEIL_SIMD_NEON: return "neon";
    }
    return "unknown";
}

#if QEIL_HAVE_X86_SIMD
static qeil_vec_dot_fn avx2_dot(int type)
{
    switch (type) {
    case QEIL_GGML_F32: return qeil_vec_dot_f32_avx2;
    case QEIL_GGML_F16: return qeil_vec_dot_f16_avx2;
    case QEIL_GGML_BF16: return qeil_vec_dot_bf16_avx2;
    case QEIL_GGML_Q8_0: return qeil_vec_dot_q8_0_avx2;
    case QEIL_GGML_Q4_0: return qeil_vec_dot_q4_0_avx2;
    case QEIL_GGML_Q4_K: return qeil_vec_dot_q4_k_avx2;
    case QEIL_GGML_Q6_K: return qeil_vec_dot_q6_k_avx2;
    case QEIL_GGML_Q4_1: return qeil_vec_dot_q4_1_avx2;
    case QEIL_GGML_Q5_0: return qeil_vec_dot_q5_0_avx2;
    case QEIL_GGML_Q5_1: return qeil_vec_dot_q5_1_avx2;
    case QEIL_GGML_Q5_K: return qeil_vec_dot_q5_k_avx2;
    case QEIL_GGML_IQ4_NL: return qeil_vec_dot_iq4_nl_avx2;
    case QEIL_GGML_IQ4_XS: return qeil_vec_dot_iq4_xs_avx2;
    default: return NULL;
    }
}
#endif

#if QEIL_HAVE_ARM_SIMD
/* NEON kernel of `type`, or the reference where there is none yet (the
 * level covers every type, as the engine asks one level for all). */
static qeil_vec_dot_fn neon_dot(int type, qeil_vec_dot_fn ref)
{
    const int sdot = qeil_cpu_has_arm_dotprod();
    switch (type) {
    case QEIL_GGML_F32: return qeil_vec_dot_f32_neon;
    case QEIL_GGML_F16: return qeil_vec_dot_f16_neon;
    case QEIL_GGML_BF16: return qeil_vec_dot_bf16_neon;
    case QEIL_GGML_Q8_0: return sdot ? qeil_vec_dot_q8_0_sdot : qeil_vec_dot_q8_0_neon;
    case QEIL_GGML_Q4_0: return sdot ? qeil_vec_dot_q4_0_sdot : qeil_vec_dot_q4_0_neon;
    case QEIL_GGML_Q4_1: return sdot ? qeil_vec_dot_q4_1_sdot : qeil_vec_dot_q4_1_neon;
    case QEIL_GGML_Q5_0: return sdot ? qeil_vec_dot_q5_0_sdot : qeil_vec_dot_q5_0_neon;
    case QEIL_GGML_Q5_1: return sdot ? qeil_vec_dot_q5_1_sdot : qeil_vec_dot_q5_1_neon;
    case QEIL_GGML_IQ4_NL: return sdot ? qeil_vec_dot_iq4_nl_sdot : qeil_vec_dot_iq4_nl_neon;
    case QEIL_GGML_IQ4_XS: return sdot ? qeil_vec_dot_iq4_xs_sdot : qeil_vec_dot_iq4_xs_neon;
    case QEIL_GGML_Q4_K: return sdot ? qeil_vec_dot_q4_k_sdot : qeil_vec_dot_q4_k_neon;
    case QEIL_GGML_Q5_K: return sdot ? qeil_vec_dot_q5_k_sdot : qeil_vec_dot_q5_k_neon;
    case QEIL_GGML_Q6_K: return sdot ? qeil_vec_dot_q6_k_sdot : qeil_vec_dot_q6_k_neon;
    default: return ref;
    }
}
#endif

qeil_vec_dot_fn qeil_vec_dot_for(int type, qeil_simd simd)
{
    const qeil_quant_traits *t = qeil_quant_traits_of(type);
    if (!t || !t->vec_dot) return NULL;
    switch (simd) {
    case QEIL_SIMD_SCALAR:
        return t->vec_dot;
    case QEIL_SIMD_AVX2:
#if QEIL_HAVE_X86_SIMD
        if (qeil_simd_best() >= QEIL_SIMD_AVX2) return avx2_dot(type);
#endif
        return NULL;
    case QEIL_SIMD_NEON:
#if QEIL_HAVE_ARM_SIMD
        if (qeil_simd_best() == QEIL_SIMD_NEON) return neon_dot(type, t->vec_dot);
#endif
        return NULL;
    }
    return NULL;
}

qeil_gemm_fn qeil_gemm_for(int type, qeil_simd simd)
{
#if QEIL_HAVE_ARM_SIMD
    if (simd != QEIL_SIMD_NEON || qeil_simd_best() != QEIL_SIMD_NEON) return NULL;
    /* SMMLA does 2x2 outputs x 8 products per instruction against SDOT's
     * 4 x 4: twice the MACs, where the CPU has it */
    const int mode = qeil_cpu_has_arm_i8mm() ? 2 : qeil_cpu_has_arm_dotprod() ? 1 : 0;
#define NEON_PICK(T) \
    (mode == 2 ? qeil_gemm_##T##_i8mm : mode == 1 ? qeil_gemm_##T##_sdot : qeil_gemm_##T##_neon)
    switch (type) {
    case QEIL_GGML_Q8_0: return NEON_PICK(q8_0);
    case QEIL_GGML_Q4_0: return NEON_PICK(q4_0);
    case QEIL_GGML_Q5_0: return NEON_PICK(q5_0);
    case QEIL_GGML_IQ4_NL: return NEON_PICK(iq4_nl);
    case QEIL_GGML_IQ4_XS: return NEON_PICK(iq4_xs);
    case QEIL_GGML_Q4_K: return NEON_PICK(q4_k);
    case QEIL_GGML_Q5_K: return NEON_PICK(q5_k);
    case QEIL_GGML_Q6_K: return NEON_PICK(q6_k);
    default: return NULL;
    }
#undef NEON_PICK
#elif QEIL_HAVE_X86_SIMD
    if (simd != QEIL_SIMD_AVX2 || qeil_simd_best() < QEIL_SIMD_AVX2) return NULL;
    const int vnni = qeil_cpu_has_avx512_vnni();
    switch (type) {
    case QEIL_GGML_Q8_0: return vnni ? qeil_gemm_q8_0_vnni : qeil_gemm_q8_0_avx2;
    case QEIL_GGML_Q4_0: return vnni ? qeil_gemm_q4_0_vnni : qeil_gemm_q4_0_avx2;
    case QEIL_GGML_Q4_K: return vnni ? qeil_gemm_q4_k_vnni : qeil_gemm_q4_k_avx2;
    case QEIL_GGML_Q6_K: return vnni ? qeil_gemm_q6_k_vnni : qeil_gemm_q6_k_avx2;
    case QEIL_GGML_Q4_1: return vnni ? qeil_gemm_q4_1_vnni : qeil_gemm_q4_1_avx2;
    case QEIL_GGML_Q5_0: return vnni ? qeil_gemm_q5_0_vnni : qeil_gemm_q5_0_avx2;
    case QEIL_GGML_Q5_1: return vnni ? qeil_gemm_q5_1_vnni : qeil_gemm_q5_1_avx2;
    case QEIL_GGML_Q5_K: return vnni ? qeil_gemm_q5_k_vnni : qeil_gemm_q5_k_avx2;
    case QEIL_GGML_IQ4_NL: return vnni ? qeil_gemm_iq4_nl_vnni : qeil_gemm_iq4_nl_avx2;
    case QEIL_GGML_IQ4_XS: return vnni ? qeil_gemm_iq4_xs_vnni : qeil_gemm_iq4_xs_avx2;
    default: return NULL;
    }
#else
    (void)type;
    (void)simd;
    return NULL;
#endif
}

qeil_quantize_fn qeil_act_quantize_for(int act_type, qeil_simd simd)
{
    const qeil_quant_traits *t = qeil_quant_traits_of(act_type);
    if (!t) return NULL;
#if QEIL_HAVE_X86_SIMD
    if (act_type == QEIL_GGML_Q8_0 && simd == QEIL_SIMD_AVX2 &&
        qeil_simd_best() >= QEIL_SIMD_AVX2)
        return qeil_quantize_row_q8_0_avx2;
    if (act_type == QEIL_GGML_Q8_K && simd == QEIL_SIMD_AVX2 &&
        qeil_simd_best() >= QEIL_SIMD_AVX2)
        return qeil_quantize_row_q8_k_avx2;
#elif QEIL_HAVE_ARM_SIMD
    if (act_type == QEIL_GGML_Q8_0 && simd == QEIL_SIMD_NEON &&
        qeil_simd_best() == QEIL_SIMD_NEON)
        return qeil_quantize_row_q8_0_neon;
    if (act_type == QEIL_GGML_Q8_K && simd == QEIL_SIMD_NEON &&
        qeil_simd_best() == QEIL_SIMD_NEON)
        return qeil_quantize_row_q8_k_neon;
    if (act_type == QEIL_GGML_Q8_1 && simd == QEIL_SIMD_NEON &&
        qeil_simd_best() == QEIL_SIMD_NEON)
        return qeil_quantize_row_q8_1_neon;
#else
    (void)simd;
#endif
    return t->quantize;
}

void qeil_f16_to_f32_row(const uint16_t *src, float *dst, int64_t n)
{
#if QEIL_HAVE_X86_SIMD
    if (qeil_simd_best() >= QEIL_SIMD_AVX2) {
        qeil_f16_to_f32_row_avx2(src, dst, n);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++) dst[i] = qeil_f16_to_f32_fast(src[i]);
}

void qeil_f32_to_f16_row(const float *src, uint16_t *dst, int64_t n)
{
#if QEIL_HAVE_X86_SIMD
    if (qeil_simd_best() >= QEIL_SIMD_AVX2) {
        qeil_f32_to_f16_row_avx2(src, dst, n);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++) dst[i] = qeil_f32_to_f16(src[i]);
}
