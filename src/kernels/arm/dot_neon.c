/*
 * dot_neon.c — AArch64 Advanced SIMD (NEON) dot kernels, and the ARMv8.2
 * dot-product (SDOT) variants of the integer ones, chosen at run time by
 * qeil_vec_dot_for() (src/kernels/dot.c) from the CPU's HWCAP bits.
 *
 * Every kernel here returns exactly the reference's bits (dot.c):
 *  - f32 / f16: the reference sums element i into double partial sum i % 4
 *    and adds (s0 + s1) + (s2 + s3); here s0, s1 are the lanes of one
 *    float64x2 and s2, s3 of another, each lane adding the same exact
 *    double products in the same order;
 *  - q8_0 / q4_0: the integer block sums are exact in any order; the float
 *    combination d_w * d_x * isum is done per block in block order, as the
 *    reference does it.
 * The base build stays ARMv8.0: SDOT is one inline-assembly instruction
 * (dot16_sdot) and those kernels run only when HWCAP_ASIMDDP says so.
 */
#include "kernels/quant.h"

#if QEIL_HAVE_ARM_SIMD

#include <arm_neon.h>
#include <string.h>


static float load_f16_scalar(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, sizeof h);
    return qeil_f16_to_f32_fast(h);
}

/* acc01 += w[0..1] * x[0..1], acc23 += w[2..3] * x[2..3], in double. */
static inline void acc4(float32x4_t w, float32x4_t x, float64x2_t *acc01, float64x2_t *acc23)
{
    *acc01 = vaddq_f64(*acc01, vmulq_f64(vcvt_f64_f32(vget_low_f32(w)),
                                         vcvt_f64_f32(vget_low_f32(x))));
    *acc23 = vaddq_f64(*acc23, vmulq_f64(vcvt_high_f64_f32(w), vcvt_high_f64_f32(x)));
}

/* weight formats of the float kernels */
enum { W_F32, W_F16, W_BF16 };

static float finish4(float64x2_t acc01, float64x2_t acc23, int64_t i, int64_t n,
                     const uint8_t *pw, const uint8_t *px, int wfmt)
{
    double acc[4] = {vgetq_lane_f64(acc01, 0), vgetq_lane_f64(acc01, 1),
                     vgetq_lane_f64(acc23, 0), vgetq_lane_f64(acc23, 1)};
    for (; i < n; i++) {
        float a, b;
        if (wfmt == W_F16) {
            a = load_f16_scalar(pw + 2 * i);
        } else if (wfmt == W_BF16) {
            uint16_t h;
            memcpy(&h, pw + 2 * i, sizeof h);
            a = qeil_bf16_to_f32(h);
        } else {
            memcpy(&a, pw + 4 * i, sizeof a);
        }
        memcpy(&b, px + 4 * i, sizeof b);
        acc[i & 3] += (double)a * (double)b;
    }
    return (float)((acc[0] + acc[1]) + (acc[2] + acc[3]));
}

void qeil_vec_dot_f32_neon(int64_t n, float *s, const void *w, const void *x)
{
    const uint8_t *pw = w, *px = x;
    float64x2_t acc01 = vdupq_n_f64(0.0), acc23 = vdupq_n_f64(0.0);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        acc4(vld1q_f32((const float *)(const void *)(pw + 4 * i)),
             vld1q_f32((const float *)(const void *)(px + 4 * i)), &acc01, &acc23);
    *s = finish4(acc01, acc23, i, n, pw, px, W_F32);
}

void qeil_vec_dot_f16_neon(int64_t n, float *s, const void *w, const void *x)
{
    const uint8_t *pw = w, *px = x;
    float64x2_t acc01 = vdupq_n_f64(0.0), acc23 = vdupq_n_f64(0.0);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        uint16x4_t h = vld1_u16((const uint16_t *)(const void *)(pw + 2 * i));
        acc4(vcvt_f32_f16(vreinterpret_f16_u16(h)),
             vld1q_f32((const float *)(const void *)(px + 4 * i)), &acc01, &acc23);
    }
    *s = finish4(acc01, acc23, i, n, pw, px, W_F16);
}

/* bf16 -> f32 is the 16 bits moved to the top (exact, NaNs included) */
void qeil_vec_dot_bf16_neon(int64_t n, float *s, const void *w, const void *x)
{
    const uint8_t *pw = w, *px = x;
    float64x2_t acc01 = vdupq_n_f64(0.0), acc23 = vdupq_n_f64(0.0);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        uint16x4_t h = vld1_u16((const uint16_t *)(const void *)(pw + 2 * i));
        acc4(vreinterpretq_f32_u32(vshll_n_u16(h, 16)),
             vld1q_f32((const float *)(const void *)(px + 4 * i)), &acc01, &acc23);
    }
    *s = finish4(acc01, acc23, i, n, pw, px, W_BF16);
}

/* ---- Q8_0 / Q4_0 weights · Q8_0 activations ---------------------------- */

/* sum of a[j] * b[j] over 16 int8 pairs, plain ASIMD (ARMv8.0) */
static inline int32x4_t dot16(int32x4_t acc, int8x16_t a, int8x16_t b)
{
    int16x8_t lo = vmull_s8(vget_low_s8(a), vget_low_s8(b));
    int16x8_t hi = vmull_high_s8(a, b);
    return vpadalq_s16(vpadalq_s16(acc, lo), hi);
}

/* SDOT v0.4s, v1.16b, v2.16b (ARMv8.2 FEAT_DotProd), by its encoding, in
 * fixed registers: gcc 12 refuses to inline vdotq_s32 into a function
 * with a plain "+dotprod" target, clang 14's arm_neon.h declares it only
 * when the whole file is built with dotprod, and neither assembler takes
 * the mnemonic in a v8.0 file; the base build must stay ARMv8.0. Only
 * reached when HWCAP_ASIMDDP is set (qeil_cpu_has_arm_dotprod). */
static inline int32x4_t dot16_sdot(int32x4_t acc, int8x16_t a, int8x16_t b)
{
    register int32x4_t r0 __asm__("v0") = acc;
    register int8x16_t r1 __asm__("v1") = a;
    register int8x16_t r2 __asm__("v2") = b;
    __asm__(".inst 0x4e829420 /* sdot v0.4s, v1.16b, v2.16b */" : "+w"(r0) : "w"(r1), "w"(r2));
    return r0;
}

/* The 32 weights of a Q4_0 block as int8 (nibble - 8): low nibbles are
 * elements 0..15, high nibbles 16..31. */
static inline void q4_0_unpack(const uint8_t *q, int8x16_t *lo, int8x16_t *hi)
{
    const uint8x16_t v = vld1q_u8(q);
    const int8x16_t eight = vdupq_n_s8(8);
    *lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0x0f))), eight);
    *hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), eight);
}

#define Q8_0_LOOP(DOT16)                                                              \
    do {                                                                              \
        const uint8_t *bw = w, *bx = x;                                               \
        float sum = 0.0f;                                                             \
        for (int64_t i = 0; i < n / QEIL_QK8_0;                                       \
             i++, bw += QEIL_Q8_0_BYTES, bx += QEIL_Q8_0_BYTES) {                     \
            const int8_t *qw = (const int8_t *)(bw + 2), *qx = (const int8_t *)(bx + 2); \
            int32x4_t acc = vdupq_n_s32(0);                                           \
            acc = DOT16(acc, vld1q_s8(qw), vld1q_s8(qx));                             \
            acc = DOT16(acc, vld1q_s8(qw + 16), vld1q_s8(qx + 16));                   \
            const int32_t isum = vaddvq_s32(acc);                                     \
            sum += load_f16_scalar(bw) * load_f16_scalar(bx) * (float)isum;           \
        }                                                                             \
        *s = sum;                                                                     \
    } while (0)

#define Q4_0_LOOP(DOT16)                                                              \
    do {                                                                              \
        const uint8_t *bw = w, *bx = x;                                               \
        float sum = 0.0f;                                                             \
        for (int64_t i = 0; i < n / QEIL_QK4_0;                                       \
             i++, bw += QEIL_Q4_0_BYTES, bx += QEIL_Q8_0_BYTES) {                     \
            const int8_t *qx = (const int8_t *)(bx + 2);                              \
            int8x16_t lo, hi;                                                         \
            q4_0_unpack(bw + 2, &lo, &hi);                                            \
            int32x4_t acc = vdupq_n_s32(0);                                           \
            acc = DOT16(acc, lo, vld1q_s8(qx));                                       \
            acc = DOT16(acc, hi, vld1q_s8(qx + 16));                                  \
            const int32_t isum = vaddvq_s32(acc);                                     \
            sum += load_f16_scalar(bw) * load_f16_scalar(bx) * (float)isum;           \
        }                                                                             \
        *s = sum;                                                                     \
    } while (0)

void qeil_vec_dot_q8_0_neon(int64_t n, float *s, const void *w, const void *x)
{
    Q8_0_LOOP(dot16);
}

void qeil_vec_dot_q4_0_neon(int64_t n, float *s, const void *w, const void *x)
{
    Q4_0_LOOP(dot16);
}

void qeil_vec_dot_q8_0_sdot(int64_t n, float *s, const void *w, const void *x)
{
    Q8_0_LOOP(dot16_sdot);
}

void qeil_vec_dot_q4_0_sdot(int64_t n, float *s, const void *w, const void *x)
{
    Q4_0_LOOP(dot16_sdot);
}

/* ---- f32 -> Q8_0 activations ------------------------------------------- */

/* qeil_quantize_row_q8_0's bytes: amax by FMAXNM (what fmaxf is on
 * AArch64: a NaN operand is ignored), d and id by the same scalar float
 * operations, then per element the reference's round_clamp: NaN and
 * v <= -127 give -127, v >= 127 gives 127, else FCVTAS (round to nearest,
 * ties away from zero: roundf). */
void qeil_quantize_row_q8_0_neon(const float *src, void *dst, int64_t n)
{
    uint8_t *b = dst;
    const float32x4_t lo = vdupq_n_f32(-127.0f), hi = vdupq_n_f32(127.0f);
    for (int64_t i = 0; i < n / QEIL_QK8_0; i++, b += QEIL_Q8_0_BYTES) {
        const float *x = src + i * QEIL_QK8_0;
        float32x4_t v[8];
        float32x4_t m = vdupq_n_f32(0.0f);
        for (int k = 0; k < 8; k++) {
            v[k] = vld1q_f32(x + 4 * k);
            m = vmaxnmq_f32(m, vabsq_f32(v[k]));
        }
        const float amax = vmaxnmvq_f32(m);
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        const uint16_t h = qeil_f32_to_f16(d);
        memcpy(b, &h, sizeof h);
        const float32x4_t vid = vdupq_n_f32(id);
        int16x8_t q16[4];
        for (int k = 0; k < 8; k += 2) {
            int32x4_t q[2];
            for (int u = 0; u < 2; u++) {
                float32x4_t t = vmulq_f32(v[k + u], vid);
                t = vbslq_f32(vcgtq_f32(t, lo), t, lo); /* NaN fails: -127 */
                t = vbslq_f32(vcltq_f32(t, hi), t, hi);
                q[u] = vcvtaq_s32_f32(t);
            }
            q16[k / 2] = vcombine_s16(vmovn_s32(q[0]), vmovn_s32(q[1]));
        }
        vst1q_s8((int8_t *)(b + 2), vcombine_s8(vmovn_s16(q16[0]), vmovn_s16(q16[1])));
        vst1q_s8((int8_t *)(b + 18), vcombine_s8(vmovn_s16(q16[2]), vmovn_s16(q16[3])));
    }
}

#else
/* ISO C forbids an empty translation unit */
typedef int qeil_dot_neon_unused;
#endif
