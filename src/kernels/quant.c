/*
 * quant.c — scalar reference for the engine's element formats: f16/bf16
 * conversion, and dequantize / quantize of one row for every type the
 * engine computes with. Layouts: docs/kernels.md (ggml's, byte for byte).
 */
#include "kernels/quant.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* ======================================================================== */
/* f16 / bf16 <-> f32                                                        */
/* ======================================================================== */

static float bits_to_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t f32_to_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

float qeil_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu;
    uint32_t m = h & 0x3ffu;
    uint32_t bits;
    if (e == 0) {
        if (m == 0) {
            bits = sign; /* signed zero */
        } else {
            /* Subnormal m * 2^-24: shift the leading 1 up to the implicit
             * bit position, lowering the exponent once per shift. Biased
             * binary32 exponent of 2^-14 is 113. */
            e = 113;
            while (!(m & 0x400u)) {
                m <<= 1;
                e--;
            }
            bits = sign | (e << 23) | ((m & 0x3ffu) << 13);
        }
    } else if (e == 31) {
        /* inf, or NaN made quiet (bit 22) the way F16C's VCVTPH2PS does */
        bits = sign | 0x7f800000u | (m << 13) | (m ? 0x00400000u : 0);
    } else {
        bits = sign | ((e + 112) << 23) | (m << 13); /* rebias 15 -> 127 */
    }
    return bits_to_f32(bits);
}

uint16_t qeil_f32_to_f16(float f)
{
    uint32_t x = f32_to_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) /* NaN: quiet, top 9 payload bits kept */
        return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
    /* 65520 = 65504 + half an ulp: ties go to the even neighbour 65536,
     * which does not exist, so 65520 and above become inf. */
    if (ax >= 0x477ff000u)
        return (uint16_t)(sign | 0x7c00u);
    if (ax < 0x38800000u) { /* below 2^-14: f16 subnormal or zero */
        if (ax < 0x33000000u) /* below 2^-25 (half the smallest subnormal) */
            return sign;
        uint32_t e = ax >> 23;                    /* 102..112 */
        uint32_t m = (ax & 0x7fffffu) | 0x800000u; /* value = m 2^(e-150) */
        uint32_t shift = 126 - e;                 /* 14..24: to units of 2^-24 */
        uint32_t q = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1);
        uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1u))) q++; /* may carry into 0x400: smallest normal */
        return (uint16_t)(sign | q);
    }
    /* Normal: rebias (127 -> 15) and round the 13 dropped bits to nearest
     * even; a carry out of the mantissa correctly bumps the exponent. */
    uint32_t r = ax - (112u << 23);
    r += 0xfffu + ((r >> 13) & 1u);
    return (uint16_t)(sign | (r >> 13));
}

float qeil_bf16_to_f32(uint16_t h)
{
    return bits_to_f32((uint32_t)h << 16);
}

uint16_t qeil_f32_to_bf16(float f)
{
    uint32_t x = f32_to_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((x >> 16) | 0x40u); /* NaN stays NaN (quiet) */
    x += 0x7fffu + ((x >> 16) & 1u);          /* round to nearest even */
    return (uint16_t)(x >> 16);
}

/* ======================================================================== */
/* Helpers                                                                   */
/* ======================================================================== */

static float load_f16(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, sizeof h);
    return qeil_f16_to_f32_fast(h);
}

static void store_f16(uint8_t *p, float v)
{
    uint16_t h = qeil_f32_to_f16(v);
    memcpy(p, &h, sizeof h);
}

/* Round to nearest (halves away from zero, like roundf) and clamp to
 * [lo, hi]. Clamping happens in float first so the int conversion is always
 * defined; NaN gives lo. */
static int round_clamp(float v, int lo, int hi)
{
    if (!(v > (float)lo)) return lo;
    if (!(v < (float)hi)) return hi;
    return (int)roundf(v);
}

/* ======================================================================== */
/* F32, F16, BF16                                                            */
/* ======================================================================== */

void qeil_dequantize_row_f32(const void *src, float *dst, int64_t n)
{
    memcpy(dst, src, (size_t)n * sizeof(float));
}

void qeil_quantize_row_f32(const float *src, void *dst, int64_t n)
{
    memcpy(dst, src, (size_t)n * sizeof(float));
}

void qeil_dequantize_row_f16(const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++) dst[i] = load_f16(p + 2 * i);
}

void qeil_quantize_row_f16(const float *src, void *dst, int64_t n)
{
    uint8_t *p = dst;
    for (int64_t i = 0; i < n; i++) store_f16(p + 2 * i, src[i]);
}

void qeil_dequantize_row_bf16(const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, sizeof h);
        dst[i] = qeil_bf16_to_f32(h);
    }
}

void qeil_quantize_row_bf16(const float *src, void *dst, int64_t n)
{
    uint8_t *p = dst;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = qeil_f32_to_bf16(src[i]);
        memcpy(p + 2 * i, &h, sizeof h);
    }
}

/* ======================================================================== */
/* Q8_0: {f16 d; int8 qs[32]}, x = qs * d                                    */
/* ======================================================================== */

void qeil_dequantize_row_q8_0(const void *src, float *dst, int64_t n)
{
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / QEIL_QK8_0; i++, b += QEIL_Q8_0_BYTES) {
        float d = load_f16(b);
        const int8_t *qs = (const int8_t *)(b + 2);
        for (int j = 0; j < QEIL_QK8_0; j++) dst[i * QEIL_QK8_0 + j] = (float)qs[j] * d;
    }
}

/* ggml's reference rule: d = amax / 127, q = round(x / d) in [-127, 127]. */
void qeil_quantize_row_q8_0(const float *src, void *dst, int64_t n)
{
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / QEIL_QK8_0; i++, b += QEIL_Q8_0_BYTES) {
        const float *x = src + i * QEIL_QK8_0;
        float amax = 0.0f;
        for (int j = 0; j < QEIL_QK8_0; j++) amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        store_f16(b, d);
        int8_t *qs = (int8_t *)(b + 2);
        for (int j = 0; j < QEIL_QK8_0; j++) qs[j] = (int8_t)round_clamp(x[j] * id, -127, 127);
    }
}

/* ======================================================================== */
/* Q4_0: {f16 d; uint8 qs[16]}, x[j] = (lo(qs[j]) - 8) d, x[j+16] = hi      */
/* ======================================================================== */

void qeil_dequantize_row_q4_0(const void *src, float *dst, int64_t n)
{
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / QEIL_QK4_0; i++, b += QEIL_Q4_0_BYTES) {
        float d = load_f16(b);
        const uint8_t *qs = b + 2;
        float *y = dst + i * QEIL_QK4_0;
        for (int j = 0; j < QEIL_QK4_0 / 2; j++) {
            y[j] = (float)((int)(qs[j] & 0x0f) - 8) * d;
            y[j + 16] = (float)((int)(qs[j] >> 4) - 8) * d;
        }
    }
}

/* ggml's reference rule: the element of largest magnitude, with its sign,
 * maps to -8 (d = max / -8); q = floor(x / d + 8.5) clipped to 15, so the
 * opposite extreme (+8) saturates at 7. */
void qeil_quantize_row_q4_0(const float *src, void *dst, int64_t n)
{
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / QEIL_QK4_0; i++, b += QEIL_Q4_0_BYTES) {
        const float *x = src + i * QEIL_QK4_0;
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QEIL_QK4_0; j++) {
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        }
        float d = max / -8.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        store_f16(b, d);
        uint8_t *qs = b + 2;
        for (int j = 0; j < QEIL_QK4_0 / 2; j++) {
            float t0 = x[j] * id + 8.5f, t1 = x[j + 16] * id + 8.5f;
            /* t >= 0 up to rounding; (int) truncation is floor there */
            int q0 = !(t0 > 0.0f) ? 0 : t0 >= 15.0f ? 15 : (int)t0;
            int q1 = !(t1 > 0.0f) ? 0 : t1 >= 15.0f ? 15 : (int)t1;
            qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

/* ======================================================================== */
/* Q4_1, Q5_0, Q5_1 and Q8_1: 32-element blocks (ggml's reference rules)     */
/* ======================================================================== */

/* floor(t) for t in [0, hi] as ggml's (int8_t)(t) / (uint8_t)(t) casts
 * give it for its in-range inputs; below 0 (and NaN) 0, above hi hi: the
 * C conversion is then always defined. */
static int floor_clamp(float t, int hi)
{
    if (!(t > 0.0f)) return 0;
    if (t >= (float)hi) return hi;
    return (int)t;
}

/* min / max of a block as ggml's loop finds them (NaN never wins). */
static void block_min_max(const float *x, int n, float *mn, float *mx)
{
    float lo = FLT_MAX, hi = -FLT_MAX;
    for (int j = 0; j < n; j++) {
        if (x[j] < lo) lo = x[j];
        if (x[j] > hi) hi = x[j];
    }
    *mn = lo;
    *mx = hi;
}

/* The 5th bit of element j (0..31) of a Q5_0 / Q5_1 block. */
static int q5_high_bit(const uint8_t qh[4], int j)
{
    uint32_t h;
    memcpy(&h, qh, sizeof h);
    return (int)((h >> j) & 1u);
}

void qeil_dequantize_row_q4_1(const void *src, float *dst, int64_t n)
{
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / QEIL_QK5; i++, b += QEIL_Q4_1_BYTES) {
        const float d = load_f16(b), m = load_f16(b + 2);
        const uint8_t *qs = b + 4;
        float *y = dst + i * QEIL_QK5;
        for (int j = 0; j < QEIL_QK5 / 2; j++) {
            y[j] = (float)(qs[j] & 0x0f) * d + m;
            y[j + 16] = (float)(qs[j] >> 4) * d + m;
        }
    }
}

/* ggml's reference rule: d = (max - min) / 15, m = min (both stored as f16,
 * the codes computed against the f32 values), q = floor((x - min) / d + 0.5)
 * clipped to 15. */
void qeil_quantize_row_q4_1(const float *src, void *dst, int64_t n)
{
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / QEIL_QK5; i++, b += QEIL_Q4_1_BYTES) {
        const float *x = src + i * QEIL_QK5;
        float mn, mx;
        block_min_max(x, QEIL_QK5, &mn, &mx);
        const float d = (mx - mn) / 15.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        store_f16(b, d);
        store_f16(b + 2, mn);
        uint8_t *qs = b + 4;
        for (int j = 0; j < QEIL_QK5 / 2; j++) {
            int q0 = floor_clamp((x[j] - mn) * id + 0.5f, 15);
            int q1 = floor_clamp((x[j + 16] - mn) * id + 0.5f, 15);
            qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

void qeil_dequantize_row_q5_0(const void *src, float *dst, int64_t n)
{
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / QEIL_QK5; i++, b += QEIL_Q5_0_BYTES) {
        const float d = load_f16(b);
        const uint8_t *qh = b + 2, *qs = b + 6;
        float *y = dst + i * QEIL_QK5;
        for (int j = 0; j < QEIL_QK5 / 2; j++) {
            int q0 = (qs[j] & 0x0f) | q5_high_bit(qh, j) << 4;
            int q1 = (qs[j] >> 4) | q5_high_bit(qh, j + 16) << 4;
            y[j] = (float)(q0 - 16) * d;
            y[j + 16] = (float)(q1 - 16) * d;
        }
    }
}

/* Pack 32 five-bit codes q[0..31] into qs (low nibbles: elements 0..15,
 * high: 16..31) and the 32-bit qh word. */
static void q5_pack(const int q[QEIL_QK5], uint8_t *qh, uint8_t *qs)
{
    uint32_t h = 0;
    for (int j = 0; j < QEIL_QK5 / 2; j++) {
        qs[j] = (uint8_t)((q[j] & 0x0f) | ((q[j + 16] & 0x0f) << 4));
        h |= (uint32_t)((q[j] >> 4) & 1) << j;
        h |= (uint32_t)((q[j + 16] >> 4) & 1) << (j + 16);
    }
    memcpy(qh, &h, sizeof h);
}

/* ggml's reference rule: as Q4_0 with 32 levels, the element of largest
 * magnitude, with its sign, maps to -16 (d = max / -16); q = floor(x / d +
 * 16.5) clipped to 31. */
void qeil_quantize_row_q5_0(const float *src, void *dst, int64_t n)
{
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / QEIL_QK5; i++, b += QEIL_Q5_0_BYTES) {
        const float *x = src + i * QEIL_QK5;
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QEIL_QK5; j++) {
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        }
        const float d = max / -16.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        store_f16(b, d);
        int q[QEIL_QK5];
        for (int j = 0; j < QEIL_QK5; j++) q[j] = floor_clamp(x[j] * id + 16.5f, 31);
        q5_pack(q, b + 2, b + 6);
    }
}

void qeil_dequantize_row_q5_1(const void *src, float *dst, int64_t n)
{
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / QEIL_QK5; i++, b += QEIL_Q5_1_BYTES) {
        const float d = load_f16(b), m = load_f16(b + 2);
        const uint8_t *qh = b + 4, *qs = b + 8;
        float *y = dst + i * QEIL_QK5;
        for (int j = 0; j < QEIL_QK5 / 2; j++) {
            int q0 = (qs[j] & 0x0f) | q5_high_bit(qh, j) << 4;
            int q1 = (qs[j] >> 4) | q5_high_bit(qh, j + 16) << 4;
            y[j] = (float)q0 * d + m;
            y[j + 16] = (float)q1 * d + m;
        }
    }
}

/* ggml's reference rule: d = (max - min) / 31, m = min, q = floor((x -
 * min) / d + 0.5). ggml does not clip (its codes never exceed 31 for finite
 * input: (max - min) / d rounds to at most 31 + 2^-19); the clip here only
 * keeps non-finite input defined. */
void qeil_quantize_row_q5_1(const float *src, void *dst, int64_t n)
{
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / QEIL_QK5; i++, b += QEIL_Q5_1_BYTES) {
        const float *x = src + i * QEIL_QK5;
        float mn, mx;
        block_min_max(x, QEIL_QK5, &mn, &mx);
        const float d = (mx - mn) / 31.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        store_f16(b, d);
        store_f16(b + 2, mn);
        int q[QEIL_QK5];
        for (int j = 0; j < QEIL_QK5; j++) q[j] = floor_clamp((x[j] - mn) * id + 0.5f, 31);
        q5_pack(q, b + 4, b + 8);
    }
}

void qeil_dequantize_row_q8_1(const void *src, float *dst, int64_t n)
{
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / QEIL_QK5; i++, b += QEIL_Q8_1_BYTES) {
        const float d = load_f16(b);
        const int8_t *qs = (const int8_t *)(b + 4);
        for (int j = 0; j < QEIL_QK5; j++) dst[i * QEIL_QK5 + j] = (float)qs[j] * d;
    }
}

/* ggml's reference rule: Q8_0's codes (d = amax / 127, q = round(x / d)),
 * and s = f16(d * sum q) with d the f32 value before its f16 rounding. */
void qeil_quantize_row_q8_1(const float *src, void *dst, int64_t n)
{
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / QEIL_QK5; i++, b += QEIL_Q8_1_BYTES) {
        const float *x = src + i * QEIL_QK5;
        float amax = 0.0f;
        for (int j = 0; j < QEIL_QK5; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        store_f16(b, d);
        int8_t *qs = (int8_t *)(b + 4);
        int sum = 0;
        for (int j = 0; j < QEIL_QK5; j++) {
            qs[j] = (int8_t)round_clamp(x[j] * id, -127, 127);
            sum += qs[j];
        }
        store_f16(b + 2, (float)sum * d);
    }
}

/* ======================================================================== */
/* Q4_K: 256-element super-block of 8 sub-blocks of 32                       */
/*   x = d * sc[s] * q - dmin * m[s],  q in 0..15, sc and m 6-bit            */
/* ======================================================================== */

/* The 12 bytes hold 8 six-bit scales sc[] and 8 six-bit mins m[]:
 *   bytes 0..3 : sc[0..3] in bits 0-5, bits 6-7 = bits 4-5 of sc[4..7]
 *   bytes 4..7 : m[0..3]  in bits 0-5, bits 6-7 = bits 4-5 of m[4..7]
 *   bytes 8..11: low nibble = bits 0-3 of sc[4..7], high = bits 0-3 of m[4..7] */
void qeil_q4_k_get_scale_min(const uint8_t p[QEIL_K_SCALE_SIZE], uint8_t sc[8], uint8_t m[8])
{
    uint32_t out[4];
    qeil_q4_k_unpack_scales(p, out);
    memcpy(sc, out, 8);
    memcpy(m, out + 2, 8);
}

void qeil_q4_k_set_scale_min(uint8_t p[QEIL_K_SCALE_SIZE], const uint8_t sc[8], const uint8_t m[8])
{
    for (int j = 0; j < 4; j++) {
        p[j] = (uint8_t)((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
        p[j + 4] = (uint8_t)((m[j] & 63) | ((m[j + 4] >> 4) << 6));
        p[j + 8] = (uint8_t)((sc[j + 4] & 0x0f) | ((m[j + 4] & 0x0f) << 4));
    }
}

void qeil_dequantize_row_q4_k(const void *src, float *dst, int64_t n)
{
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / QEIL_QK_K; i++, b += QEIL_Q4_K_BYTES) {
        float d = load_f16(b), dmin = load_f16(b + 2);
        uint8_t sc[8], m[8];
        qeil_q4_k_get_scale_min(b + 4, sc, m);
        const uint8_t *qs = b + 16;
        float *y = dst + i * QEIL_QK_K;
        /* 64 elements per 32 bytes of qs: low nibbles are sub-block 2c,
         * high nibbles sub-block 2c+1 */
        for (int c = 0; c < 4; c++) {
            float d1 = d * sc[2 * c], m1 = dmin * m[2 * c];
            float d2 = d * sc[2 * c + 1], m2 = dmin * m[2 * c + 1];
            for (int l = 0; l < 32; l++) {
                y[64 * c + l] = d1 * (float)(qs[32 * c + l] & 0x0f) - m1;
                y[64 * c + 32 + l] = d2 * (float)(qs[32 * c + l] >> 4) - m2;
            }
        }
    }
}

/* Round-to-nearest fit: each sub-block's range [min(0, min x), max x] is
 * covered by 16 levels (scale = range / 15, min = -min(0, min x)); the 8
 * scales and 8 mins are then rounded to 6 bits against the f16 super-block
 * factors d = max scale / 63 and dmin = max min / 63, and finally each x is
 * rounded against its sub-block's effective scale and min. */
/* The K-quant super-block header both Q4_K (levels 15) and Q5_K (31)
 * write: per sub-block of 32, scale = range / levels and min = -min(0,
 * min x); d = max scale / 63 and dmin = max min / 63 stored as f16 at b[0..3];
 * the 6-bit codes sc, m rounded against the f16 values actually stored, and
 * packed at b + 4. Returns the stored d and dmin. */
static void kquant_fit_header(const float *x, float levels, uint8_t *b, uint8_t sc[8],
                              uint8_t m[8], float *d_out, float *dmin_out)
{
    float scale[8], min[8], max_scale = 0.0f, max_min = 0.0f;
    for (int s = 0; s < 8; s++) {
        float lo = 0.0f, hi = x[32 * s];
        for (int l = 0; l < 32; l++) {
            lo = fminf(lo, x[32 * s + l]);
            hi = fmaxf(hi, x[32 * s + l]);
        }
        scale[s] = (hi - lo) / levels;
        min[s] = -lo;
        max_scale = fmaxf(max_scale, scale[s]);
        max_min = fmaxf(max_min, min[s]);
    }
    store_f16(b, max_scale / 63.0f);
    store_f16(b + 2, max_min / 63.0f);
    const float d = load_f16(b), dmin = load_f16(b + 2);
    for (int s = 0; s < 8; s++) {
        sc[s] = (uint8_t)(d > 0.0f ? round_clamp(scale[s] / d, 0, 63) : 0);
        m[s] = (uint8_t)(dmin > 0.0f ? round_clamp(min[s] / dmin, 0, 63) : 0);
    }
    qeil_q4_k_set_scale_min(b + 4, sc, m);
    *d_out = d;
    *dmin_out = dmin;
}

void qeil_quantize_row_q4_k(const float *src, void *dst, int64_t n)
{
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / QEIL_QK_K; i++, b += QEIL_Q4_K_BYTES) {
        const float *x = src + i * QEIL_QK_K;
        uint8_t sc[8], m[8];
        float d, dmin;
        kquant_fit_header(x, 15.0f, b, sc, m, &d, &dmin);
        uint8_t *qs = b + 16;
        memset(qs, 0, QEIL_QK_K / 2);
        for (int s = 0; s < 8; s++) {
            float de = d * sc[s], dm = dmin * m[s];
            for (int l = 0; l < 32; l++) {
                int q = de > 0.0f ? round_clamp((x[32 * s + l] + dm) / de, 0, 15) : 0;
                /* sub-block s: byte 32*(s/2) + l, nibble s%2 */
                qs[32 * (s / 2) + l] |= (uint8_t)(q << (4 * (s % 2)));
            }
        }
    }
}

/* ======================================================================== */
/* IQ4_NL: Q4_0's layout, non-uniform levels                                 */
/* ======================================================================== */

const int8_t qeil_kvalues_iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                       1,    13,   25,  38,  53,  69,  89,  113};

void qeil_dequantize_row_iq4_nl(const void *src, float *dst, int64_t n)
{
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / QEIL_QK5; i++, b += QEIL_IQ4_NL_BYTES) {
        const float d = load_f16(b);
        const uint8_t *qs = b + 2;
        float *y = dst + i * QEIL_QK5;
        for (int j = 0; j < QEIL_QK5 / 2; j++) {
            y[j] = d * (float)qeil_kvalues_iq4nl[qs[j] & 0x0f];
            y[j + 16] = d * (float)qeil_kvalues_iq4nl[qs[j] >> 4];
        }
    }
}

/* Index of the level nearest v (levels ascending; a tie goes up, as ggml's
 * best_index_int8; NaN gives 0). */
static int iq4_nearest(float v)
{
    if (!(v > (float)qeil_kvalues_iq4nl[0])) return 0;
    int k = 0;
    while (k < 15 && v >= (float)qeil_kvalues_iq4nl[k + 1]) k++;
    if (k == 15) return 15;
    return v - (float)qeil_kvalues_iq4nl[k] < (float)qeil_kvalues_iq4nl[k + 1] - v ? k : k + 1;
}

/* Nearest-level fit (ggml's starting point, without its scale search): the
 * element of largest magnitude, with its sign, maps to the level -127
 * (d = max / -127); every x to the level nearest x / d (d as stored). */
void qeil_quantize_row_iq4_nl(const float *src, void *dst, int64_t n)
{
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / QEIL_QK5; i++, b += QEIL_IQ4_NL_BYTES) {
        const float *x = src + i * QEIL_QK5;
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QEIL_QK5; j++) {
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        }
        store_f16(b, max / -127.0f);
        const float d = load_f16(b);
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        uint8_t *qs = b + 2;
        for (int j = 0; j < QEIL_QK5 / 2; j++) {
            /* id == 0 (an all-zero block): index 8 (level 1) times d = 0 */
            const int q0 = id != 0.0f ? iq4_nearest(x[j] * id) : 8;
            const int q1 = id != 0.0f ? iq4_nearest(x[j + 16] * id) : 8;
            qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

/* ======================================================================== */
/* IQ4_XS: 256 elements, 8 sub-blocks of 32 with 6-bit scales, IQ4_NL levels */
/*   {f16 d; u16 scales_h; u8 scales_l[4]; u8 qs[128]}                        */
/*   x = d * (ls - 32) * kvalues[nibble]                                     */
/* ======================================================================== */

/* ls of sub-block ib: low 4 bits in nibble ib % 2 of scales_l[ib / 2],
 * high 2 bits in bits 2ib..2ib+1 of scales_h. */
void qeil_iq4_xs_scales(const uint8_t *b, int sc[8])
{
    uint16_t h;
    memcpy(&h, b + 2, sizeof h);
    for (int ib = 0; ib < 8; ib++)
        sc[ib] = (((b[4 + ib / 2] >> (4 * (ib % 2))) & 0x0f) | (((h >> (2 * ib)) & 3) << 4)) - 32;
}

void qeil_dequantize_row_iq4_xs(const void *src, float *dst, int64_t n)
{
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / QEIL_QK_K; i++, b += QEIL_IQ4_XS_BYTES) {
        const float d = load_f16(b);
        int sc[8];
        qeil_iq4_xs_scales(b, sc);
        float *y = dst + i * QEIL_QK_K;
        for (int ib = 0; ib < 8; ib++) {
            const float dl = d * (float)sc[ib];
            const uint8_t *qs = b + 8 + 16 * ib;
            for (int j = 0; j < 16; j++) {
                y[32 * ib + j] = dl * (float)qeil_kvalues_iq4nl[qs[j] & 0x0f];
                y[32 * ib + j + 16] = dl * (float)qeil_kvalues_iq4nl[qs[j] >> 4];
            }
        }
    }
}

/* Nearest-level fit: each sub-block's signed largest-magnitude element v
 * gives scale = v / -127 (v on the level -127); d = f16(S / -32) with S
 * the scale of largest magnitude (its code is -32, ls = 0); ls - 32 =
 * clamp(round(scale / d), -32, 31); each x to the level nearest x / dl,
 * dl = d (ls - 32) as stored. */
void qeil_quantize_row_iq4_xs(const float *src, void *dst, int64_t n)
{
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / QEIL_QK_K; i++, b += QEIL_IQ4_XS_BYTES) {
        const float *x = src + i * QEIL_QK_K;
        float scale[8], amax_s = 0.0f, max_s = 0.0f;
        for (int ib = 0; ib < 8; ib++) {
            float amax = 0.0f, max = 0.0f;
            for (int j = 0; j < 32; j++) {
                if (fabsf(x[32 * ib + j]) > amax) {
                    amax = fabsf(x[32 * ib + j]);
                    max = x[32 * ib + j];
                }
            }
            scale[ib] = max / -127.0f;
            if (fabsf(scale[ib]) > amax_s) {
                amax_s = fabsf(scale[ib]);
                max_s = scale[ib];
            }
        }
        memset(b, 0, QEIL_IQ4_XS_BYTES);
        store_f16(b, max_s / -32.0f);
        const float d = load_f16(b);
        uint16_t h = 0;
        for (int ib = 0; ib < 8; ib++) {
            const int l = (d != 0.0f ? round_clamp(scale[ib] / d, -32, 31) : 0) + 32;
            b[4 + ib / 2] |= (uint8_t)((l & 0x0f) << (4 * (ib % 2)));
            h |= (uint16_t)((l >> 4) << (2 * ib));
            const float dl = d * (float)(l - 32);
            const float id = dl != 0.0f ? 1.0f / dl : 0.0f;
            uint8_t *qs = b + 8 + 16 * ib;
            for (int j = 0; j < 16; j++) {
                const int q0 = id != 0.0f ? iq4_nearest(x[32 * ib + j] * id) : 8;
                const int q1 = id != 0.0f ? iq4_nearest(x[32 * ib + j + 16] * id) : 8;
                qs[j] = (uint8_t)(q0 | (q1 << 4));
            }
        }
        memcpy(b + 2, &h, sizeof h);
    }
}

/* ======================================================================== */
/* Q5_K: Q4_K with a 5th bit per element                                    */
/*   x = d * sc[s] * q - dmin * m[s],  q in 0..31                            */
/* ======================================================================== */

/* Element e = 64 c + 32 h + l (c < 4, h < 2, l < 32): low 4 bits in
 * qs[32 c + l] (low nibble for h = 0, high for h = 1), the 5th bit is bit
 * 2c + h of qh[l]; sub-block 2c + h. */
void qeil_dequantize_row_q5_k(const void *src, float *dst, int64_t n)
{
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / QEIL_QK_K; i++, b += QEIL_Q5_K_BYTES) {
        const float d = load_f16(b), dmin = load_f16(b + 2);
        uint8_t sc[8], m[8];
        qeil_q4_k_get_scale_min(b + 4, sc, m);
        const uint8_t *qh = b + 16, *qs = b + 48;
        float *y = dst + i * QEIL_QK_K;
        for (int c = 0; c < 4; c++) {
            const float d1 = d * sc[2 * c], m1 = dmin * m[2 * c];
            const float d2 = d * sc[2 * c + 1], m2 = dmin * m[2 * c + 1];
            for (int l = 0; l < 32; l++) {
                int q1 = (qs[32 * c + l] & 0x0f) | ((qh[l] >> (2 * c)) & 1) << 4;
                int q2 = (qs[32 * c + l] >> 4) | ((qh[l] >> (2 * c + 1)) & 1) << 4;
                y[64 * c + l] = d1 * (float)q1 - m1;
                y[64 * c + 32 + l] = d2 * (float)q2 - m2;
            }
        }
    }
}

/* Q4_K's round-to-nearest fit with 32 levels (scale = range / 31). */
void qeil_quantize_row_q5_k(const float *src, void *dst, int64_t n)
{
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / QEIL_QK_K; i++, b += QEIL_Q5_K_BYTES) {
        const float *x = src + i * QEIL_QK_K;
        uint8_t sc[8], m[8];
        float d, dmin;
        kquant_fit_header(x, 31.0f, b, sc, m, &d, &dmin);
        uint8_t *qh = b + 16, *qs = b + 48;
        memset(qh, 0, QEIL_QK_K / 8 + QEIL_QK_K / 2);
        for (int s = 0; s < 8; s++) {
            const float de = d * sc[s], dm = dmin * m[s];
            for (int l = 0; l < 32; l++) {
                int q = de > 0.0f ? round_clamp((x[32 * s + l] + dm) / de, 0, 31) : 0;
                qs[32 * (s / 2) + l] |= (uint8_t)((q & 0x0f) << (4 * (s % 2)));
                qh[l] |= (uint8_t)((q >> 4) << s);
            }
        }
    }
}

/* ======================================================================== */
/* Q6_K: 256-element super-block of 16 sub-blocks of 16                      */
/*   x = d * scales[s] * (q - 32),  q in 0..63                               */
/* ======================================================================== */

/* Element e of the super-block (e = 128 h + 32 c + l, h in 0..1, c in 0..3,
 * l in 0..31) keeps its low 4 bits in ql[64 h + l + 32 (c % 2)] (low nibble
 * for c < 2, high nibble for c >= 2) and its high 2 bits in bits 2c..2c+1
 * of qh[32 h + l]. */
static int q6_k_get(const uint8_t *ql, const uint8_t *qh, int e)
{
    int h = e / 128, c = (e % 128) / 32, l = e % 32;
    int lo = ql[64 * h + l + 32 * (c % 2)];
    lo = c < 2 ? (lo & 0x0f) : (lo >> 4);
    int hi = (qh[32 * h + l] >> (2 * c)) & 3;
    return lo | (hi << 4);
}

void qeil_dequantize_row_q6_k(const void *src, float *dst, int64_t n)
{
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / QEIL_QK_K; i++, b += QEIL_Q6_K_BYTES) {
        const uint8_t *ql = b, *qh = b + 128;
        const int8_t *scales = (const int8_t *)(b + 192);
        float d = load_f16(b + 208);
        float *y = dst + i * QEIL_QK_K;
        for (int e = 0; e < QEIL_QK_K; e++)
            y[e] = d * (float)scales[e / 16] * (float)(q6_k_get(ql, qh, e) - 32);
    }
}

/* Round-to-nearest fit (ggml's rule without its scale search): in each
 * sub-block the element of largest magnitude, with its sign, maps to -32
 * (scale = max / -32); the super-block factor is d = (largest-magnitude
 * scale) / -128 so that scale gets the code -128; every scale is rounded to
 * an int8 against the stored f16 d; each x is rounded to [-32, 31]. */
void qeil_quantize_row_q6_k(const float *src, void *dst, int64_t n)
{
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / QEIL_QK_K; i++, b += QEIL_Q6_K_BYTES) {
        const float *x = src + i * QEIL_QK_K;
        float scale[16], max_scale = 0.0f, amax_scale = 0.0f;
        for (int s = 0; s < 16; s++) {
            float amax = 0.0f, max = 0.0f;
            for (int l = 0; l < 16; l++) {
                if (fabsf(x[16 * s + l]) > amax) {
                    amax = fabsf(x[16 * s + l]);
                    max = x[16 * s + l];
                }
            }
            scale[s] = max / -32.0f;
            if (fabsf(scale[s]) > amax_scale) {
                amax_scale = fabsf(scale[s]);
                max_scale = scale[s];
            }
        }
        uint8_t *ql = b, *qh = b + 128;
        int8_t *scales = (int8_t *)(b + 192);
        store_f16(b + 208, max_scale / -128.0f);
        float d = load_f16(b + 208);
        memset(b, 0, 208);
        for (int s = 0; s < 16; s++) {
            int sc = d != 0.0f ? round_clamp(scale[s] / d, -128, 127) : 0;
            scales[s] = (int8_t)sc;
            float de = d * (float)sc;
            for (int l = 0; l < 16; l++) {
                int e = 16 * s + l;
                int q = de != 0.0f ? round_clamp(x[e] / de, -32, 31) + 32 : 32;
                int h = e / 128, c = (e % 128) / 32, ll = e % 32;
                ql[64 * h + ll + 32 * (c % 2)] |= (uint8_t)((q & 0x0f) << (c < 2 ? 0 : 4));
                qh[32 * h + ll] |= (uint8_t)((q >> 4) << (2 * c));
            }
        }
    }
}

/* ======================================================================== */
/* Q8_K: {f32 d; int8 qs[256]; int16 bsums[16]} — activations only          */
/* ======================================================================== */

void qeil_dequantize_row_q8_k(const void *src, float *dst, int64_t n)
{
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / QEIL_QK_K; i++, b += QEIL_Q8_K_BYTES) {
        float d;
        memcpy(&d, b, sizeof d);
        const int8_t *qs = (const int8_t *)(b + 4);
        for (int j = 0; j < QEIL_QK_K; j++) dst[i * QEIL_QK_K + j] = d * (float)qs[j];
    }
}

/* d = amax / 127, q = round(x / d) in [-127, 127]: symmetric, so that the
 * AVX2 kernels' u8 x s8 pair sums (at most 2 * 63 * 127 = 16002 for Q6_K)
 * never saturate int16. bsums let the dots subtract offsets (Q6_K's -32,
 * Q4_K's mins) with 16 multiplies instead of 256. */
void qeil_quantize_row_q8_k(const float *src, void *dst, int64_t n)
{
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / QEIL_QK_K; i++, b += QEIL_Q8_K_BYTES) {
        const float *x = src + i * QEIL_QK_K;
        float amax = 0.0f;
        for (int j = 0; j < QEIL_QK_K; j++) amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.0f;
        float id = amax > 0.0f ? 127.0f / amax : 0.0f;
        memcpy(b, &d, sizeof d);
        int8_t *qs = (int8_t *)(b + 4);
        for (int j = 0; j < QEIL_QK_K; j++) qs[j] = (int8_t)round_clamp(x[j] * id, -127, 127);
        for (int g = 0; g < QEIL_QK_K / 16; g++) {
            int16_t sum = 0;
            for (int l = 0; l < 16; l++) sum = (int16_t)(sum + qs[16 * g + l]);
            memcpy(b + 260 + 2 * g, &sum, sizeof sum);
        }
    }
}
