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


/* A block's f16 scale by the FPU: LDR h + FCVT s, h (ARMv8.0). Exact for
 * every non-NaN value, as qeil_f16_to_f32_fast, whose integer fast path
 * cost 8 instructions and a branch per scale (docs/benchmarks-history.md,
 * "Performance on paper"); a NaN stays a NaN (FCVT quiets a signalling
 * one, as F16C and the portable conversion do: f16c_matches_portable). */
static inline float load_f16_scalar(const uint8_t *p)
{
    __fp16 h;
    memcpy(&h, p, sizeof h);
    return (float)h;
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

/* The register numbers of the operands, for the instructions emitted by
 * their encoding below: .L_qeil_v<n> = n, for every vector register
 * (`.set` may be repeated, so every asm statement can carry it). */
#define QEIL_VREG_NUMBERS                                                                         \
    ".irp b,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n" \
    ".set .L_qeil_v\\b, \\b\n"                                                                      \
    ".endr\n"

/* SDOT Vd.4s, Vn.16b, Vm.16b (ARMv8.2 FEAT_DotProd), by its encoding
 * (0x4e809400 | Rd | Rn << 5 | Rm << 16), in whatever registers the
 * compiler picks: gcc 12 refuses to inline vdotq_s32 into a function with
 * a plain "+dotprod" target, clang 14's arm_neon.h declares it only when
 * the whole file is built with dotprod, and neither assembler takes the
 * mnemonic in a v8.0 file; the base build must stay ARMv8.0. (Fixed
 * registers v0-v2, as this was first written, cost a MOV per operand and
 * starved the tiles of registers.) Only reached when HWCAP_ASIMDDP is set
 * (qeil_cpu_has_arm_dotprod). */
static inline int32x4_t dot16_sdot(int32x4_t acc, int8x16_t a, int8x16_t b)
{
    __asm__(QEIL_VREG_NUMBERS ".inst 0x4e809400 | .L_qeil_%0 | (.L_qeil_%1 << 5) | (.L_qeil_%2 << 16)"
            : "+w"(acc)
            : "w"(a), "w"(b));
    return acc;
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

/* ---- the other block formats ------------------------------------------ */

/* Every kernel below is written once, as an always-inline body taking the
 * dot flavour as a constant (0: plain ASIMD, 1: SDOT), and instantiated
 * twice; the compiler folds the flag. Integer sums are exact in any order
 * (the reference's bounds, dot.c), so only the float combination has to
 * follow the reference, and it is copied from there verbatim. */
#define QEIL_NEON_INLINE static inline __attribute__((always_inline))

QEIL_NEON_INLINE int32x4_t dotq(int32x4_t acc, int8x16_t a, int8x16_t b, const int sdot)
{
    return sdot ? dot16_sdot(acc, a, b) : dot16(acc, a, b);
}

/* lane i of the result: 0x10 where bit i of the 16-bit word h is set */
QEIL_NEON_INLINE uint8x16_t bits16_to_0x10(uint32_t h)
{
    static const uint8_t k_bit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    const uint8x16_t b = vcombine_u8(vdup_n_u8((uint8_t)(h & 0xff)), vdup_n_u8((uint8_t)(h >> 8 & 0xff)));
    return vandq_u8(vtstq_u8(b, vld1q_u8(k_bit)), vdupq_n_u8(0x10));
}

/* The 32 five-bit codes of a Q5_0 / Q5_1 block (qh: 4 high-bit bytes, qs:
 * 16 nibble bytes), elements 0..15 in lo, 16..31 in hi. */
QEIL_NEON_INLINE void q5_unpack(const uint8_t *qh, const uint8_t *qs, uint8x16_t *lo, uint8x16_t *hi)
{
    uint32_t h;
    memcpy(&h, qh, sizeof h);
    const uint8x16_t v = vld1q_u8(qs);
    *lo = vorrq_u8(vandq_u8(v, vdupq_n_u8(0x0f)), bits16_to_0x10(h & 0xffff));
    *hi = vorrq_u8(vshrq_n_u8(v, 4), bits16_to_0x10(h >> 16));
}

QEIL_NEON_INLINE void q4_1_body(int64_t n, float *s, const void *w, const void *x, const int sdot)
{
    const uint8_t *bw = w, *bx = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QEIL_QK5; i++, bw += QEIL_Q4_1_BYTES, bx += QEIL_Q8_1_BYTES) {
        const int8_t *qx = (const int8_t *)(bx + 4);
        const uint8x16_t v = vld1q_u8(bw + 4);
        int32x4_t acc = vdupq_n_s32(0);
        acc = dotq(acc, vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0x0f))), vld1q_s8(qx), sdot);
        acc = dotq(acc, vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), vld1q_s8(qx + 16), sdot);
        const int32_t isum = vaddvq_s32(acc);
        sum += load_f16_scalar(bw) * load_f16_scalar(bx) * (float)isum +
               load_f16_scalar(bw + 2) * load_f16_scalar(bx + 2);
    }
    *s = sum;
}

QEIL_NEON_INLINE void q5_0_body(int64_t n, float *s, const void *w, const void *x, const int sdot)
{
    const uint8_t *bw = w, *bx = x;
    float sum = 0.0f;
    const int8x16_t sixteen = vdupq_n_s8(16);
    for (int64_t i = 0; i < n / QEIL_QK5; i++, bw += QEIL_Q5_0_BYTES, bx += QEIL_Q8_0_BYTES) {
        const int8_t *qx = (const int8_t *)(bx + 2);
        uint8x16_t lo, hi;
        q5_unpack(bw + 2, bw + 6, &lo, &hi);
        int32x4_t acc = vdupq_n_s32(0);
        acc = dotq(acc, vsubq_s8(vreinterpretq_s8_u8(lo), sixteen), vld1q_s8(qx), sdot);
        acc = dotq(acc, vsubq_s8(vreinterpretq_s8_u8(hi), sixteen), vld1q_s8(qx + 16), sdot);
        const int32_t isum = vaddvq_s32(acc);
        sum += load_f16_scalar(bw) * load_f16_scalar(bx) * (float)isum;
    }
    *s = sum;
}

QEIL_NEON_INLINE void q5_1_body(int64_t n, float *s, const void *w, const void *x, const int sdot)
{
    const uint8_t *bw = w, *bx = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QEIL_QK5; i++, bw += QEIL_Q5_1_BYTES, bx += QEIL_Q8_1_BYTES) {
        const int8_t *qx = (const int8_t *)(bx + 4);
        uint8x16_t lo, hi;
        q5_unpack(bw + 4, bw + 8, &lo, &hi);
        int32x4_t acc = vdupq_n_s32(0);
        acc = dotq(acc, vreinterpretq_s8_u8(lo), vld1q_s8(qx), sdot);
        acc = dotq(acc, vreinterpretq_s8_u8(hi), vld1q_s8(qx + 16), sdot);
        const int32_t isum = vaddvq_s32(acc);
        sum += load_f16_scalar(bw) * load_f16_scalar(bx) * (float)isum +
               load_f16_scalar(bw + 2) * load_f16_scalar(bx + 2);
    }
    *s = sum;
}

/* 16 IQ4 nibble bytes -> the codebook values of elements 0..15 (low
 * nibbles) and 16..31 (high nibbles), by a 16-entry table lookup (TBL) */
QEIL_NEON_INLINE void iq4_unpack(const uint8_t *qs, int8x16_t tbl, int8x16_t *lo, int8x16_t *hi)
{
    const uint8x16_t v = vld1q_u8(qs);
    *lo = vqtbl1q_s8(tbl, vandq_u8(v, vdupq_n_u8(0x0f)));
    *hi = vqtbl1q_s8(tbl, vshrq_n_u8(v, 4));
}

QEIL_NEON_INLINE void iq4_nl_body(int64_t n, float *s, const void *w, const void *x, const int sdot)
{
    const uint8_t *bw = w, *bx = x;
    const int8x16_t tbl = vld1q_s8(qeil_kvalues_iq4nl);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QEIL_QK5; i++, bw += QEIL_IQ4_NL_BYTES, bx += QEIL_Q8_0_BYTES) {
        const int8_t *qx = (const int8_t *)(bx + 2);
        int8x16_t lo, hi;
        iq4_unpack(bw + 2, tbl, &lo, &hi);
        int32x4_t acc = vdupq_n_s32(0);
        acc = dotq(acc, lo, vld1q_s8(qx), sdot);
        acc = dotq(acc, hi, vld1q_s8(qx + 16), sdot);
        const int32_t isum = vaddvq_s32(acc);
        sum += load_f16_scalar(bw) * load_f16_scalar(bx) * (float)isum;
    }
    *s = sum;
}

QEIL_NEON_INLINE void iq4_xs_body(int64_t n, float *s, const void *w, const void *x, const int sdot)
{
    const uint8_t *bw = w, *bx = x;
    const int8x16_t tbl = vld1q_s8(qeil_kvalues_iq4nl);
    double sum = 0.0;
    for (int64_t i = 0; i < n / QEIL_QK_K; i++, bw += QEIL_IQ4_XS_BYTES, bx += QEIL_Q8_K_BYTES) {
        float dx;
        memcpy(&dx, bx, sizeof dx);
        const float d = dx * load_f16_scalar(bw);
        int sc[8];
        qeil_iq4_xs_scales(bw, sc);
        const int8_t *qy = (const int8_t *)(bx + 4);
        int32x4_t isumv = vdupq_n_s32(0);
        for (int ib = 0; ib < 8; ib++) {
            int8x16_t lo, hi;
            iq4_unpack(bw + 8 + 16 * ib, tbl, &lo, &hi);
            int32x4_t part = dotq(vdupq_n_s32(0), lo, vld1q_s8(qy + 32 * ib), sdot);
            part = dotq(part, hi, vld1q_s8(qy + 32 * ib + 16), sdot);
            isumv = vmlaq_n_s32(isumv, part, sc[ib]);
        }
        const int32_t isum = vaddvq_s32(isumv);
        sum += (double)d * (float)isum;
    }
    *s = (float)sum;
}

/* sum_j m[j] * (bsums[2j] + bsums[2j+1]) of a Q8_K block (bsums at +260) */
QEIL_NEON_INLINE int32_t k_summin(const uint8_t *bx, const uint8_t m[8])
{
    const int16x8_t b0 = vld1q_s16((const int16_t *)(const void *)(bx + 260));
    const int16x8_t b1 = vld1q_s16((const int16_t *)(const void *)(bx + 276));
    const int16x8_t pairs = vpaddq_s16(b0, b1); /* bsums[2j] + bsums[2j+1], |.| <= 8128 */
    const int16x8_t mv = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(m)));
    int32x4_t acc = vmull_s16(vget_low_s16(pairs), vget_low_s16(mv));
    acc = vmlal_high_s16(acc, pairs, mv);
    return vaddvq_s32(acc);
}

/* Q4_K / Q5_K: 8 sub-blocks of 32; `hb` adds each element's fifth bit
 * (Q5_K) or nothing (Q4_K, qh NULL). */
QEIL_NEON_INLINE void qk45_body(int64_t n, float *s, const void *w, const void *x, const int five,
                                const int sdot)
{
    const uint8_t *bw = w, *bx = x;
    const size_t bytes = five ? QEIL_Q5_K_BYTES : QEIL_Q4_K_BYTES;
    double sum = 0.0;
    for (int64_t i = 0; i < n / QEIL_QK_K; i++, bw += bytes, bx += QEIL_Q8_K_BYTES) {
        float dx;
        memcpy(&dx, bx, sizeof dx);
        const float d = dx * load_f16_scalar(bw);
        const float dmin = dx * load_f16_scalar(bw + 2);
        uint32_t scw[4]; /* sc[0..7] then m[0..7], bytes (little-endian) */
        qeil_q4_k_unpack_scales(bw + 4, scw);
        uint8_t sc[8], m[8];
        memcpy(sc, scw, sizeof sc);
        memcpy(m, scw + 2, sizeof m);
        const uint8_t *qs = five ? bw + 48 : bw + 16;
        const int8_t *qy = (const int8_t *)(bx + 4);
        uint8x16_t qh0 = vdupq_n_u8(0), qh1 = vdupq_n_u8(0);
        if (five) {
            qh0 = vld1q_u8(bw + 16);
            qh1 = vld1q_u8(bw + 32);
        }
        const int32_t summin = k_summin(bx, m);
        int32x4_t isumv = vdupq_n_s32(0);
        for (int c = 0; c < 4; c++) {
            const uint8x16_t v0 = vld1q_u8(qs + 32 * c), v1 = vld1q_u8(qs + 32 * c + 16);
            uint8x16_t a0 = vandq_u8(v0, vdupq_n_u8(0x0f)), a1 = vandq_u8(v1, vdupq_n_u8(0x0f));
            uint8x16_t b0 = vshrq_n_u8(v0, 4), b1 = vshrq_n_u8(v1, 4);
            if (five) {
                const uint8x16_t m1 = vdupq_n_u8((uint8_t)(1u << (2 * c)));
                const uint8x16_t m2 = vdupq_n_u8((uint8_t)(2u << (2 * c)));
                const uint8x16_t x10 = vdupq_n_u8(0x10);
                a0 = vorrq_u8(a0, vandq_u8(vtstq_u8(qh0, m1), x10));
                a1 = vorrq_u8(a1, vandq_u8(vtstq_u8(qh1, m1), x10));
                b0 = vorrq_u8(b0, vandq_u8(vtstq_u8(qh0, m2), x10));
                b1 = vorrq_u8(b1, vandq_u8(vtstq_u8(qh1, m2), x10));
            }
            const int8_t *y = qy + 64 * c;
            int32x4_t s1 = dotq(vdupq_n_s32(0), vreinterpretq_s8_u8(a0), vld1q_s8(y), sdot);
            s1 = dotq(s1, vreinterpretq_s8_u8(a1), vld1q_s8(y + 16), sdot);
            int32x4_t s2 = dotq(vdupq_n_s32(0), vreinterpretq_s8_u8(b0), vld1q_s8(y + 32), sdot);
            s2 = dotq(s2, vreinterpretq_s8_u8(b1), vld1q_s8(y + 48), sdot);
            isumv = vmlaq_n_s32(isumv, s1, sc[2 * c]);
            isumv = vmlaq_n_s32(isumv, s2, sc[2 * c + 1]);
        }
        const int32_t isum = vaddvq_s32(isumv);
        sum += (double)d * (float)isum - (double)dmin * (float)summin;
    }
    *s = (float)sum;
}

QEIL_NEON_INLINE void q6_k_body(int64_t n, float *s, const void *w, const void *x, const int sdot)
{
    const uint8_t *bw = w, *bx = x;
    const int8x16_t k32 = vdupq_n_s8(32);
    const uint8x16_t k0f = vdupq_n_u8(0x0f), k30 = vdupq_n_u8(0x30);
    double sum = 0.0;
    for (int64_t i = 0; i < n / QEIL_QK_K; i++, bw += QEIL_Q6_K_BYTES, bx += QEIL_Q8_K_BYTES) {
        float dx;
        memcpy(&dx, bx, sizeof dx);
        const float d = dx * load_f16_scalar(bw + 208);
        const int8_t *scales = (const int8_t *)(bw + 192);
        const int8_t *qy = (const int8_t *)(bx + 4);
        int32x4_t isumv = vdupq_n_s32(0);
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = bw + 64 * h, *qh = bw + 128 + 32 * h;
            const uint8x16_t l0 = vld1q_u8(ql), l1 = vld1q_u8(ql + 16);
            const uint8x16_t l2 = vld1q_u8(ql + 32), l3 = vld1q_u8(ql + 48);
            const uint8x16_t h0 = vld1q_u8(qh), h1 = vld1q_u8(qh + 16);
            /* chunk c, half k: low nibbles of ql[32(c%2) + 16k ..] (high
             * nibbles for c >= 2), top bits 2c..2c+1 of qh[16k ..] */
            uint8x16_t q[8];
            q[0] = vorrq_u8(vandq_u8(l0, k0f), vandq_u8(vshlq_n_u8(h0, 4), k30));
            q[1] = vorrq_u8(vandq_u8(l1, k0f), vandq_u8(vshlq_n_u8(h1, 4), k30));
            q[2] = vorrq_u8(vandq_u8(l2, k0f), vandq_u8(vshlq_n_u8(h0, 2), k30));
            q[3] = vorrq_u8(vandq_u8(l3, k0f), vandq_u8(vshlq_n_u8(h1, 2), k30));
            q[4] = vorrq_u8(vshrq_n_u8(l0, 4), vandq_u8(h0, k30));
            q[5] = vorrq_u8(vshrq_n_u8(l1, 4), vandq_u8(h1, k30));
            q[6] = vorrq_u8(vshrq_n_u8(l2, 4), vandq_u8(vshrq_n_u8(h0, 2), k30));
            q[7] = vorrq_u8(vshrq_n_u8(l3, 4), vandq_u8(vshrq_n_u8(h1, 2), k30));
            for (int k = 0; k < 8; k++) {
                const int8x16_t qs = vsubq_s8(vreinterpretq_s8_u8(q[k]), k32);
                const int32x4_t part = dotq(vdupq_n_s32(0), qs, vld1q_s8(qy + 128 * h + 16 * k), sdot);
                isumv = vmlaq_n_s32(isumv, part, scales[8 * h + k]);
            }
        }
        const int32_t isum = vaddvq_s32(isumv);
        sum += (double)d * (float)isum;
    }
    *s = (float)sum;
}

#define NEON_PAIR(NAME, BODY)                                                          \
    void qeil_vec_dot_##NAME##_neon(int64_t n, float *s, const void *w, const void *x) \
    {                                                                                  \
        BODY(n, s, w, x, 0);                                                           \
    }                                                                                  \
    void qeil_vec_dot_##NAME##_sdot(int64_t n, float *s, const void *w, const void *x) \
    {                                                                                  \
        BODY(n, s, w, x, 1);                                                           \
    }

#define Q4_K_BODY(n, s, w, x, sdot) qk45_body(n, s, w, x, 0, sdot)
#define Q5_K_BODY(n, s, w, x, sdot) qk45_body(n, s, w, x, 1, sdot)

NEON_PAIR(q4_1, q4_1_body)
NEON_PAIR(q5_0, q5_0_body)
NEON_PAIR(q5_1, q5_1_body)
NEON_PAIR(iq4_nl, iq4_nl_body)
NEON_PAIR(iq4_xs, iq4_xs_body)
NEON_PAIR(q4_k, Q4_K_BODY)
NEON_PAIR(q5_k, Q5_K_BODY)
NEON_PAIR(q6_k, q6_k_body)

/* ---- tiles: up to 4 weight rows x 4 activations (qeil_gemm_fn) -------- */

/* SMMLA Vd.4s, Vn.16b, Vm.16b (ARMv8.6 FEAT_I8MM), by its encoding
 * (0x4e80a400 | Rd | Rn << 5 | Rm << 16) as SDOT above: Vd += (2x8 int8
 * matrix Vn) x (2x8 int8 matrix Vm)^T, i.e. lanes {a0.b0, a0.b1, a1.b0,
 * a1.b1} over 8 bytes each. Only reached when HWCAP2_I8MM is set
 * (qeil_cpu_has_arm_i8mm). */
static inline int32x4_t mmla(int32x4_t acc, int8x16_t a, int8x16_t b)
{
    __asm__(QEIL_VREG_NUMBERS ".inst 0x4e80a400 | .L_qeil_%0 | (.L_qeil_%1 << 5) | (.L_qeil_%2 << 16)"
            : "+w"(acc)
            : "w"(a), "w"(b));
    return acc;
}

/* weight block formats of the tiles: 32 elements against Q8_0 */
enum { T_Q8_0, T_Q4_0, T_Q5_0, T_IQ4_NL };

/* The 32 weights of one block as int8 (elements 0..15, 16..31), exactly
 * the values the dot kernels above multiply. */
QEIL_NEON_INLINE void tile_unpack(const int fmt, const uint8_t *b, int8x16_t *lo, int8x16_t *hi)
{
    if (fmt == T_Q8_0) {
        *lo = vld1q_s8((const int8_t *)(b + 2));
        *hi = vld1q_s8((const int8_t *)(b + 18));
    } else if (fmt == T_Q4_0) {
        q4_0_unpack(b + 2, lo, hi);
    } else if (fmt == T_Q5_0) {
        uint8x16_t l, h;
        q5_unpack(b + 2, b + 6, &l, &h);
        *lo = vsubq_s8(vreinterpretq_s8_u8(l), vdupq_n_s8(16));
        *hi = vsubq_s8(vreinterpretq_s8_u8(h), vdupq_n_s8(16));
    } else {
        iq4_unpack(b + 2, vld1q_s8(qeil_kvalues_iq4nl), lo, hi);
    }
}

/* One tile. mode 0: plain ASIMD, 1: SDOT, 2: SMMLA. Per block: the nr x nc
 * integer sums (exact), then per activation c the four rows' running sums
 * as one float32x4: sum[r] += (d_w[r] * d_x[c]) * (float)isum[r][c], lane
 * by lane the dot kernels' scalar operations (no contraction: the build
 * has -ffp-contract=off), so every element has qeil_vec_dot's bits. */
QEIL_NEON_INLINE void q0_tile(const int fmt, const size_t bbytes, int64_t nb, int nr, int nc,
                              const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, float *y,
                              size_t ys, const int mode)
{
    float32x4_t sum[QEIL_GEMM_MAX_VEC];
    for (int c = 0; c < QEIL_GEMM_MAX_VEC; c++) sum[c] = vdupq_n_f32(0.0f);
    for (int64_t i = 0; i < nb; i++) {
        int8x16_t wl[4], wh[4], xl[4], xh[4];
        float dw[4] = {0, 0, 0, 0};
        for (int r = 0; r < 4; r++) {
            if (r < nr) {
                const uint8_t *b = w + (size_t)r * ws + (size_t)i * bbytes;
                tile_unpack(fmt, b, &wl[r], &wh[r]);
                dw[r] = load_f16_scalar(b);
            } else {
                wl[r] = wh[r] = vdupq_n_s8(0);
            }
        }
        float dx[4] = {0, 0, 0, 0};
        for (int c = 0; c < 4; c++) {
            if (c < nc) {
                const uint8_t *b = x + (size_t)c * xs + (size_t)i * QEIL_Q8_0_BYTES;
                xl[c] = vld1q_s8((const int8_t *)(b + 2));
                xh[c] = vld1q_s8((const int8_t *)(b + 18));
                dx[c] = load_f16_scalar(b);
            } else {
                xl[c] = xh[c] = vdupq_n_s8(0);
            }
        }
        int32x4_t isum[4]; /* isum[c] lane r */
        if (mode == 2) {
            /* row pairs x column pairs: 8-byte chunks interleaved two by two */
            int32_t m[4][4];
            for (int r = 0; r < nr; r += 2)
                for (int c = 0; c < nc; c += 2) {
                    const int64x2_t a0 = vreinterpretq_s64_s8(wl[r]), a1 = vreinterpretq_s64_s8(wl[r + 1]);
                    const int64x2_t a2 = vreinterpretq_s64_s8(wh[r]), a3 = vreinterpretq_s64_s8(wh[r + 1]);
                    const int64x2_t b0 = vreinterpretq_s64_s8(xl[c]), b1 = vreinterpretq_s64_s8(xl[c + 1]);
                    const int64x2_t b2 = vreinterpretq_s64_s8(xh[c]), b3 = vreinterpretq_s64_s8(xh[c + 1]);
                    int32x4_t acc = vdupq_n_s32(0);
                    acc = mmla(acc, vreinterpretq_s8_s64(vzip1q_s64(a0, a1)), vreinterpretq_s8_s64(vzip1q_s64(b0, b1)));
                    acc = mmla(acc, vreinterpretq_s8_s64(vzip2q_s64(a0, a1)), vreinterpretq_s8_s64(vzip2q_s64(b0, b1)));
                    acc = mmla(acc, vreinterpretq_s8_s64(vzip1q_s64(a2, a3)), vreinterpretq_s8_s64(vzip1q_s64(b2, b3)));
                    acc = mmla(acc, vreinterpretq_s8_s64(vzip2q_s64(a2, a3)), vreinterpretq_s8_s64(vzip2q_s64(b2, b3)));
                    m[c][r] = vgetq_lane_s32(acc, 0);
                    m[c + 1][r] = vgetq_lane_s32(acc, 1);
                    m[c][r + 1] = vgetq_lane_s32(acc, 2);
                    m[c + 1][r + 1] = vgetq_lane_s32(acc, 3);
                }
            for (int c = 0; c < nc; c++) {
                for (int r = nr; r < 4; r++) m[c][r] = 0;
                isum[c] = vld1q_s32(m[c]);
            }
        } else {
            for (int c = 0; c < nc; c++) {
                int32x4_t a[4];
                for (int r = 0; r < 4; r++) {
                    a[r] = vdupq_n_s32(0);
                    if (r < nr) {
                        a[r] = dotq(a[r], wl[r], xl[c], mode);
                        a[r] = dotq(a[r], wh[r], xh[c], mode);
                    }
                }
                isum[c] = vpaddq_s32(vpaddq_s32(a[0], a[1]), vpaddq_s32(a[2], a[3]));
            }
        }
        const float32x4_t dwv = vld1q_f32(dw);
        for (int c = 0; c < nc; c++)
            sum[c] = vaddq_f32(sum[c], vmulq_f32(vmulq_n_f32(dwv, dx[c]), vcvtq_f32_s32(isum[c])));
    }
    for (int c = 0; c < nc; c++) {
        float out[4];
        vst1q_f32(out, sum[c]);
        for (int r = 0; r < nr; r++) y[(size_t)c * ys + (size_t)r] = out[r];
    }
}

/* One activation (nc == 1: every decode step) goes to the dot kernel row
 * by row: the same bits (each tile element is the dot kernel's, test
 * gemm_neon_tiles_vs_dot), at about a third of the instructions. The tile
 * body keeps its rows and activations in arrays indexed by the run-time
 * nr and nc, so gcc 12 leaves its loops rolled and the arrays on the
 * stack: for 4 rows x 1 activation of Q4_0 the SDOT tile ran ~250
 * instructions per block of the 4 rows (3.4 per weight byte) against 4 x
 * 22 for the dot kernel (1.2; aarch64-linux-gnu-objdump -d of this file,
 * docs/benchmarks.md, "ARM vs x86 decode kernels"). I8MM implies SDOT on
 * every core (FEAT_I8MM is Armv8.6, FEAT_DotProd mandatory from 8.4), but
 * the HWCAP is asked, not assumed. */
#define NEON_GEMM(NAME, FMT, BYTES, MODE, T)                                                   \
    void NAME(int64_t n, int nr, int nc, const void *w, size_t ws, const void *x, size_t xs,   \
              float *y, size_t ys)                                                             \
    {                                                                                          \
        if (nc == 1) {                                                                         \
            const qeil_vec_dot_fn dot = MODE > 0 && qeil_cpu_has_arm_dotprod()                 \
                                            ? qeil_vec_dot_##T##_sdot                          \
                                            : qeil_vec_dot_##T##_neon;                         \
            for (int r = 0; r < nr; r++) dot(n, y + r, (const uint8_t *)w + (size_t)r * ws, x); \
            return;                                                                            \
        }                                                                                      \
        q0_tile(FMT, BYTES, n / 32, nr, nc, w, ws, x, xs, y, ys, MODE);                       \
    }

NEON_GEMM(qeil_gemm_q8_0_neon, T_Q8_0, QEIL_Q8_0_BYTES, 0, q8_0)
NEON_GEMM(qeil_gemm_q8_0_sdot, T_Q8_0, QEIL_Q8_0_BYTES, 1, q8_0)
NEON_GEMM(qeil_gemm_q8_0_i8mm, T_Q8_0, QEIL_Q8_0_BYTES, 2, q8_0)
NEON_GEMM(qeil_gemm_q4_0_neon, T_Q4_0, QEIL_Q4_0_BYTES, 0, q4_0)
NEON_GEMM(qeil_gemm_q4_0_sdot, T_Q4_0, QEIL_Q4_0_BYTES, 1, q4_0)
NEON_GEMM(qeil_gemm_q4_0_i8mm, T_Q4_0, QEIL_Q4_0_BYTES, 2, q4_0)
NEON_GEMM(qeil_gemm_q5_0_neon, T_Q5_0, QEIL_Q5_0_BYTES, 0, q5_0)
NEON_GEMM(qeil_gemm_q5_0_sdot, T_Q5_0, QEIL_Q5_0_BYTES, 1, q5_0)
NEON_GEMM(qeil_gemm_q5_0_i8mm, T_Q5_0, QEIL_Q5_0_BYTES, 2, q5_0)
NEON_GEMM(qeil_gemm_iq4_nl_neon, T_IQ4_NL, QEIL_IQ4_NL_BYTES, 0, iq4_nl)
NEON_GEMM(qeil_gemm_iq4_nl_sdot, T_IQ4_NL, QEIL_IQ4_NL_BYTES, 1, iq4_nl)
NEON_GEMM(qeil_gemm_iq4_nl_i8mm, T_IQ4_NL, QEIL_IQ4_NL_BYTES, 2, iq4_nl)

/* ---- K-quant tiles: Q4_K, Q5_K, Q6_K, IQ4_XS weights x Q8_K activations */

enum { K_Q4_K, K_Q5_K, K_Q6_K, K_IQ4_XS };

/* One row's super-block constants: the integer scales of its 32-element
 * groups (sc[q] lane j: scale 4q + j; scales 2g and 2g + 1 are those of
 * group g's two 16-element halves, equal but for Q6_K), the mins m (Q4_K,
 * Q5_K), the f16 d and dmin. */
typedef struct {
    int32x4_t sc[4];
    int16x8_t m;
    float d, dmin;
} k_row;

QEIL_NEON_INLINE void k_row_load(const int fmt, const uint8_t *bw, k_row *k)
{
    if (fmt == K_Q4_K || fmt == K_Q5_K) {
        uint32_t scw[4]; /* sc[0..7] then m[0..7], bytes (little-endian) */
        qeil_q4_k_unpack_scales(bw + 4, scw);
        const uint16x8_t sc = vmovl_u8(vld1_u8((const uint8_t *)scw));
        const uint16x8_t scd = vzip1q_u16(sc, sc), sch = vzip2q_u16(sc, sc); /* each twice */
        k->sc[0] = vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(scd)));
        k->sc[1] = vreinterpretq_s32_u32(vmovl_high_u16(scd));
        k->sc[2] = vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(sch)));
        k->sc[3] = vreinterpretq_s32_u32(vmovl_high_u16(sch));
        k->m = vreinterpretq_s16_u16(vmovl_u8(vld1_u8((const uint8_t *)(scw + 2))));
        k->d = load_f16_scalar(bw);
        k->dmin = load_f16_scalar(bw + 2);
    } else if (fmt == K_Q6_K) {
        const int8x16_t sc = vld1q_s8((const int8_t *)(bw + 192));
        const int16x8_t lo = vmovl_s8(vget_low_s8(sc)), hi = vmovl_high_s8(sc);
        k->sc[0] = vmovl_s16(vget_low_s16(lo));
        k->sc[1] = vmovl_high_s16(lo);
        k->sc[2] = vmovl_s16(vget_low_s16(hi));
        k->sc[3] = vmovl_high_s16(hi);
        k->d = load_f16_scalar(bw + 208);
    } else {
        int sc[8];
        qeil_iq4_xs_scales(bw, sc);
        const int32x4_t a = vld1q_s32(sc), b = vld1q_s32(sc + 4);
        k->sc[0] = vzip1q_s32(a, a);
        k->sc[1] = vzip2q_s32(a, a);
        k->sc[2] = vzip1q_s32(b, b);
        k->sc[3] = vzip2q_s32(b, b);
        k->d = load_f16_scalar(bw);
    }
}

/* acc + t * lane `lane` of v, `lane` a constant once inlined (MLA by element) */
QEIL_NEON_INLINE int32x4_t mla_lane(int32x4_t acc, int32x4_t t, int32x4_t v, const int lane)
{
    switch (lane) {
    case 0: return vmlaq_laneq_s32(acc, t, v, 0);
    case 1: return vmlaq_laneq_s32(acc, t, v, 1);
    case 2: return vmlaq_laneq_s32(acc, t, v, 2);
    default: return vmlaq_laneq_s32(acc, t, v, 3);
    }
}

/* Elements 32g .. 32g + 15 (lo) and 32g + 16 .. 32g + 31 (hi) of a
 * super-block as int8: the values the dot kernels above multiply. */
QEIL_NEON_INLINE void k_unpack(const int fmt, const uint8_t *bw, const int g, int8x16_t *lo, int8x16_t *hi)
{
    const uint8x16_t k0f = vdupq_n_u8(0x0f);
    if (fmt == K_Q4_K || fmt == K_Q5_K) {
        /* group g: nibbles (low for even g) of qs[32 (g / 2) ..], by a
         * shift of 0 or -4 (USHL: g is a loop counter, not a constant) */
        const uint8_t *qs = (fmt == K_Q5_K ? bw + 48 : bw + 16) + 32 * (g / 2);
        const int8x16_t sh = vdupq_n_s8((int8_t)(-4 * (g % 2)));
        uint8x16_t a0 = vandq_u8(vshlq_u8(vld1q_u8(qs), sh), k0f);
        uint8x16_t a1 = vandq_u8(vshlq_u8(vld1q_u8(qs + 16), sh), k0f);
        if (fmt == K_Q5_K) { /* bit g of qh[l] is element l's fifth bit */
            const uint8x16_t bit = vdupq_n_u8((uint8_t)(1u << g)), x10 = vdupq_n_u8(0x10);
            a0 = vorrq_u8(a0, vandq_u8(vtstq_u8(vld1q_u8(bw + 16), bit), x10));
            a1 = vorrq_u8(a1, vandq_u8(vtstq_u8(vld1q_u8(bw + 32), bit), x10));
        }
        *lo = vreinterpretq_s8_u8(a0);
        *hi = vreinterpretq_s8_u8(a1);
    } else if (fmt == K_Q6_K) {
        /* group g = 4h + c: low 4 bits from ql[64h + 32 (c % 2) ..] (low
         * nibbles for c < 2), bits 2c, 2c + 1 of qh[32h ..] moved to bits
         * 4, 5 (shift by 4 - 2c) */
        const int h = g / 4, c = g % 4;
        const uint8_t *ql = bw + 64 * h + 32 * (c % 2), *qh = bw + 128 + 32 * h;
        const int8x16_t ls = vdupq_n_s8((int8_t)(c < 2 ? 0 : -4)), hs = vdupq_n_s8((int8_t)(4 - 2 * c));
        const uint8x16_t k30 = vdupq_n_u8(0x30);
        const uint8x16_t q0 = vorrq_u8(vandq_u8(vshlq_u8(vld1q_u8(ql), ls), k0f),
                                       vandq_u8(vshlq_u8(vld1q_u8(qh), hs), k30));
        const uint8x16_t q1 = vorrq_u8(vandq_u8(vshlq_u8(vld1q_u8(ql + 16), ls), k0f),
                                       vandq_u8(vshlq_u8(vld1q_u8(qh + 16), hs), k30));
        *lo = vsubq_s8(vreinterpretq_s8_u8(q0), vdupq_n_s8(32));
        *hi = vsubq_s8(vreinterpretq_s8_u8(q1), vdupq_n_s8(32));
    } else {
        iq4_unpack(bw + 8 + 16 * g, vld1q_s8(qeil_kvalues_iq4nl), lo, hi);
    }
}

/* Sum of each of 4 vectors' lanes: lane c = sum of v[c]'s (ADDP tree) */
QEIL_NEON_INLINE int32x4_t hsum4(int32x4_t v0, int32x4_t v1, int32x4_t v2, int32x4_t v3)
{
    return vpaddq_s32(vpaddq_s32(v0, v1), vpaddq_s32(v2, v3));
}

/* One K tile: 4 weight rows (wr) x C activations (xc, C = 2 or 4), mode 0
 * plain ASIMD, 1 SDOT, 2 SMMLA; rows and activations past the caller's
 * nr, nc are copies of the last real one, computed and not stored. The
 * accumulators are one int32x4 per row, lane c = activation c: per group
 * the row's C dots are reduced to one vector (ADDP) and scaled by one MLA
 * (4 accumulators, not 16, so nothing is spilled). Per super-block each
 * element's integer sums (exact in any order, dot.c's bounds) and then,
 * lane by lane in double, the dot kernel's
 *     sum += (double)(dx * d) * (float)isum - (double)(dx * dmin) * (float)summin
 * (IEEE multiplication commutes; no contraction: -ffp-contract=off), so
 * every element has the dot kernel's bits. */
QEIL_NEON_INLINE void k_tile(const int fmt, const size_t bbytes, int64_t nb, const uint8_t *const wr[4],
                             const uint8_t *const xc[4], const int C, const int mode, int nr, int nc,
                             float *y, size_t ys)
{
    const int has_min = fmt == K_Q4_K || fmt == K_Q5_K;
    const int split = fmt == K_Q6_K; /* a scale per 16 elements */
    float64x2_t s01[4], s23[4];      /* running sums of row r, activations 0-1 and 2-3 */
    _Pragma("GCC unroll 4") for (int r = 0; r < 4; r++) s01[r] = s23[r] = vdupq_n_f64(0.0);
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *bw[4], *bx[4];
        k_row k[4];
        _Pragma("GCC unroll 4") for (int r = 0; r < 4; r++)
        {
            bw[r] = wr[r] + (size_t)i * bbytes;
            k_row_load(fmt, bw[r], &k[r]);
        }
        /* scT[s]: scale s of the 4 rows, one vector (VST4 transposes) */
        int32_t scT[16][4];
        _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++)
        {
            const int32x4x4_t t = {{k[0].sc[q], k[1].sc[q], k[2].sc[q], k[3].sc[q]}};
            vst4q_s32(scT[4 * q], t);
        }
        float dx[4] = {0, 0, 0, 0};
        _Pragma("GCC unroll 4") for (int c = 0; c < C; c++)
        {
            bx[c] = xc[c] + (size_t)i * QEIL_Q8_K_BYTES;
            memcpy(&dx[c], bx[c], sizeof dx[c]);
        }
        /* mode 0/1: acc[r] lane c; mode 2: acc[2p + q] = the 2 x 2 block of
         * row pair p, activation pair q, lanes {r0c0, r0c1, r1c0, r1c1} */
        int32x4_t acc[4];
        _Pragma("GCC unroll 4") for (int r = 0; r < 4; r++) acc[r] = vdupq_n_s32(0);
        /* the groups in a rolled loop: unrolled, gcc 12 hoists the loads of
         * all 8 and spills */
        _Pragma("GCC unroll 1") for (int g = 0; g < 8; g++)
        {
            const int32x4_t s_lo = vld1q_s32(scT[2 * g]), s_hi = vld1q_s32(scT[2 * g + 1]);
            int8x16_t xl[4], xh[4];
            _Pragma("GCC unroll 4") for (int c = 0; c < C; c++)
            {
                xl[c] = vld1q_s8((const int8_t *)(bx[c] + 4 + 32 * g));
                xh[c] = vld1q_s8((const int8_t *)(bx[c] + 4 + 32 * g + 16));
            }
            if (mode == 2) {
                /* 8-byte chunks of activation pairs and row pairs, interleaved */
                int8x16_t xz[2][4];
                _Pragma("GCC unroll 2") for (int q = 0; q < C / 2; q++)
                {
                    const int64x2_t b0 = vreinterpretq_s64_s8(xl[2 * q]), b1 = vreinterpretq_s64_s8(xl[2 * q + 1]);
                    const int64x2_t b2 = vreinterpretq_s64_s8(xh[2 * q]), b3 = vreinterpretq_s64_s8(xh[2 * q + 1]);
                    xz[q][0] = vreinterpretq_s8_s64(vzip1q_s64(b0, b1));
                    xz[q][1] = vreinterpretq_s8_s64(vzip2q_s64(b0, b1));
                    xz[q][2] = vreinterpretq_s8_s64(vzip1q_s64(b2, b3));
                    xz[q][3] = vreinterpretq_s8_s64(vzip2q_s64(b2, b3));
                }
                _Pragma("GCC unroll 2") for (int p = 0; p < 2; p++)
                {
                    int8x16_t l0, h0, l1, h1;
                    k_unpack(fmt, bw[2 * p], g, &l0, &h0);
                    k_unpack(fmt, bw[2 * p + 1], g, &l1, &h1);
                    const int64x2_t a0 = vreinterpretq_s64_s8(l0), a1 = vreinterpretq_s64_s8(l1);
                    const int64x2_t a2 = vreinterpretq_s64_s8(h0), a3 = vreinterpretq_s64_s8(h1);
                    const int8x16_t wz0 = vreinterpretq_s8_s64(vzip1q_s64(a0, a1));
                    const int8x16_t wz1 = vreinterpretq_s8_s64(vzip2q_s64(a0, a1));
                    const int8x16_t wz2 = vreinterpretq_s8_s64(vzip1q_s64(a2, a3));
                    const int8x16_t wz3 = vreinterpretq_s8_s64(vzip2q_s64(a2, a3));
                    /* lanes {r0, r0, r1, r1} of the pair: MMLA's row order */
                    const int32x4_t sl = p ? vzip2q_s32(s_lo, s_lo) : vzip1q_s32(s_lo, s_lo);
                    const int32x4_t sh = !split ? sl : p ? vzip2q_s32(s_hi, s_hi) : vzip1q_s32(s_hi, s_hi);
                    _Pragma("GCC unroll 2") for (int q = 0; q < C / 2; q++)
                    {
                        int32x4_t t = mmla(vdupq_n_s32(0), wz0, xz[q][0]);
                        t = mmla(t, wz1, xz[q][1]);
                        if (split) {
                            int32x4_t u = mmla(vdupq_n_s32(0), wz2, xz[q][2]);
                            u = mmla(u, wz3, xz[q][3]);
                            acc[2 * p + q] = vmlaq_s32(vmlaq_s32(acc[2 * p + q], t, sl), u, sh);
                        } else {
                            t = mmla(t, wz2, xz[q][2]);
                            t = mmla(t, wz3, xz[q][3]);
                            acc[2 * p + q] = vmlaq_s32(acc[2 * p + q], t, sl);
                        }
                    }
                }
            } else {
                _Pragma("GCC unroll 4") for (int r = 0; r < 4; r++)
                {
                    int8x16_t wl, wh;
                    k_unpack(fmt, bw[r], g, &wl, &wh);
                    int32x4_t t[4], u[4];
                    _Pragma("GCC unroll 4") for (int c = 0; c < 4; c++)
                    {
                        if (c >= C) { /* C == 2: lanes 2, 3 unused */
                            t[c] = t[c - 2];
                            u[c] = u[c - 2];
                            continue;
                        }
                        t[c] = dotq(vdupq_n_s32(0), wl, xl[c], mode);
                        if (split) {
                            u[c] = dotq(vdupq_n_s32(0), wh, xh[c], mode);
                        } else {
                            t[c] = dotq(t[c], wh, xh[c], mode);
                            u[c] = t[c];
                        }
                    }
                    acc[r] = mla_lane(acc[r], hsum4(t[0], t[1], t[2], t[3]), s_lo, r);
                    if (split) acc[r] = mla_lane(acc[r], hsum4(u[0], u[1], u[2], u[3]), s_hi, r);
                }
            }
        }
        /* per row: the C activations' isum (and summin) as the lanes of one vector */
        int32x4_t isum[4], smin[4];
        _Pragma("GCC unroll 4") for (int r = 0; r < 4; r++)
        {
            if (mode == 2) /* rows 2p, 2p + 1: the low and high halves of the pair's blocks */
                isum[r] = vreinterpretq_s32_s64(
                    r % 2 ? vzip2q_s64(vreinterpretq_s64_s32(acc[r - 1]), vreinterpretq_s64_s32(acc[r - 1 + (C > 2)]))
                          : vzip1q_s64(vreinterpretq_s64_s32(acc[r]), vreinterpretq_s64_s32(acc[r + (C > 2)])));
            else
                isum[r] = acc[r];
        }
        if (has_min) {
            /* sum_j m[j] * (bsums[2j] + bsums[2j+1]), as k_summin */
            int16x8_t pairs[4];
            _Pragma("GCC unroll 4") for (int c = 0; c < 4; c++)
            {
                if (c >= C) {
                    pairs[c] = pairs[c - 2];
                    continue;
                }
                const int16x8_t b0 = vld1q_s16((const int16_t *)(const void *)(bx[c] + 260));
                const int16x8_t b1 = vld1q_s16((const int16_t *)(const void *)(bx[c] + 276));
                pairs[c] = vpaddq_s16(b0, b1);
            }
            _Pragma("GCC unroll 4") for (int r = 0; r < 4; r++)
            {
                int32x4_t t[4];
                _Pragma("GCC unroll 4") for (int c = 0; c < 4; c++)
                    t[c] = vmlal_high_s16(vmull_s16(vget_low_s16(pairs[c]), vget_low_s16(k[r].m)), pairs[c], k[r].m);
                smin[r] = hsum4(t[0], t[1], t[2], t[3]);
            }
        }
        const float32x4_t dxv = vld1q_f32(dx);
        _Pragma("GCC unroll 4") for (int r = 0; r < 4; r++)
        {
            const float32x4_t d = vmulq_n_f32(dxv, k[r].d), fi = vcvtq_f32_s32(isum[r]);
            float64x2_t t01 = vmulq_f64(vcvt_f64_f32(vget_low_f32(d)), vcvt_f64_f32(vget_low_f32(fi)));
            float64x2_t t23 = vmulq_f64(vcvt_high_f64_f32(d), vcvt_high_f64_f32(fi));
            if (has_min) {
                const float32x4_t dmin = vmulq_n_f32(dxv, k[r].dmin), fm = vcvtq_f32_s32(smin[r]);
                t01 = vsubq_f64(t01, vmulq_f64(vcvt_f64_f32(vget_low_f32(dmin)), vcvt_f64_f32(vget_low_f32(fm))));
                t23 = vsubq_f64(t23, vmulq_f64(vcvt_high_f64_f32(dmin), vcvt_high_f64_f32(fm)));
            }
            s01[r] = vaddq_f64(s01[r], t01);
            s23[r] = vaddq_f64(s23[r], t23);
        }
    }
    _Pragma("GCC unroll 4") for (int r = 0; r < 4; r++)
    {
        if (r >= nr) break;
        const double s[4] = {vgetq_lane_f64(s01[r], 0), vgetq_lane_f64(s01[r], 1),
                             vgetq_lane_f64(s23[r], 0), vgetq_lane_f64(s23[r], 1)};
        for (int c = 0; c < nc; c++) y[(size_t)c * ys + (size_t)r] = (float)s[c];
    }
}

/* Rows past nr and activations past nc are the last real ones again (so
 * every lane reads valid blocks), 4 x 2 tiles for nc == 2, 4 x 4 for 3
 * and 4; one activation goes to the dot kernel, as NEON_GEMM does. */
#define NEON_GEMM_K(NAME, FMT, BYTES, MODE, T)                                                 \
    void NAME(int64_t n, int nr, int nc, const void *w, size_t ws, const void *x, size_t xs,   \
              float *y, size_t ys)                                                             \
    {                                                                                          \
        if (nc == 1) {                                                                         \
            const qeil_vec_dot_fn dot = MODE > 0 && qeil_cpu_has_arm_dotprod()                 \
                                            ? qeil_vec_dot_##T##_sdot                          \
                                            : qeil_vec_dot_##T##_neon;                         \
            for (int r = 0; r < nr; r++) dot(n, y + r, (const uint8_t *)w + (size_t)r * ws, x); \
            return;                                                                            \
        }                                                                                      \
        const uint8_t *wr[4], *xc[4];                                                          \
        for (int r = 0; r < 4; r++) wr[r] = (const uint8_t *)w + (size_t)(r < nr ? r : nr - 1) * ws; \
        for (int c = 0; c < 4; c++) xc[c] = (const uint8_t *)x + (size_t)(c < nc ? c : nc - 1) * xs; \
        if (nc == 2)                                                                           \
            k_tile(FMT, BYTES, n / QEIL_QK_K, wr, xc, 2, MODE, nr, nc, y, ys);                 \
        else                                                                                   \
            k_tile(FMT, BYTES, n / QEIL_QK_K, wr, xc, 4, MODE, nr, nc, y, ys);                 \
    }

NEON_GEMM_K(qeil_gemm_q4_k_neon, K_Q4_K, QEIL_Q4_K_BYTES, 0, q4_k)
NEON_GEMM_K(qeil_gemm_q4_k_sdot, K_Q4_K, QEIL_Q4_K_BYTES, 1, q4_k)
NEON_GEMM_K(qeil_gemm_q4_k_i8mm, K_Q4_K, QEIL_Q4_K_BYTES, 2, q4_k)
NEON_GEMM_K(qeil_gemm_q5_k_neon, K_Q5_K, QEIL_Q5_K_BYTES, 0, q5_k)
NEON_GEMM_K(qeil_gemm_q5_k_sdot, K_Q5_K, QEIL_Q5_K_BYTES, 1, q5_k)
NEON_GEMM_K(qeil_gemm_q5_k_i8mm, K_Q5_K, QEIL_Q5_K_BYTES, 2, q5_k)
NEON_GEMM_K(qeil_gemm_q6_k_neon, K_Q6_K, QEIL_Q6_K_BYTES, 0, q6_k)
NEON_GEMM_K(qeil_gemm_q6_k_sdot, K_Q6_K, QEIL_Q6_K_BYTES, 1, q6_k)
NEON_GEMM_K(qeil_gemm_q6_k_i8mm, K_Q6_K, QEIL_Q6_K_BYTES, 2, q6_k)
NEON_GEMM_K(qeil_gemm_iq4_xs_neon, K_IQ4_XS, QEIL_IQ4_XS_BYTES, 0, iq4_xs)
NEON_GEMM_K(qeil_gemm_iq4_xs_sdot, K_IQ4_XS, QEIL_IQ4_XS_BYTES, 1, iq4_xs)
NEON_GEMM_K(qeil_gemm_iq4_xs_i8mm, K_IQ4_XS, QEIL_IQ4_XS_BYTES, 2, iq4_xs)

/* ---- f32 -> Q8_0 activations ------------------------------------------- */

/* qeil_quantize_row_q8_0's bytes: amax by FMAXNM (what fmaxf is on
 * AArch64: a NaN operand is ignored), d and id by the same scalar float
 * operations, then per element the reference's round_clamp: NaN and
 * v <= -127 give -127, v >= 127 gives 127, else FCVTAS (round to nearest,
 * ties away from zero: roundf). */
/* 32 values times id, rounded and clamped as the reference's round_clamp,
 * to 32 int8 at q. */
static inline void q8_round32(const float32x4_t v[8], float id, int8_t *q)
{
    const float32x4_t lo = vdupq_n_f32(-127.0f), hi = vdupq_n_f32(127.0f);
    const float32x4_t vid = vdupq_n_f32(id);
    int16x8_t q16[4];
    for (int k = 0; k < 8; k += 2) {
        int32x4_t qi[2];
        for (int u = 0; u < 2; u++) {
            float32x4_t t = vmulq_f32(v[k + u], vid);
            t = vbslq_f32(vcgtq_f32(t, lo), t, lo); /* NaN fails: -127 */
            t = vbslq_f32(vcltq_f32(t, hi), t, hi);
            qi[u] = vcvtaq_s32_f32(t);
        }
        q16[k / 2] = vcombine_s16(vmovn_s32(qi[0]), vmovn_s32(qi[1]));
    }
    vst1q_s8(q, vcombine_s8(vmovn_s16(q16[0]), vmovn_s16(q16[1])));
    vst1q_s8(q + 16, vcombine_s8(vmovn_s16(q16[2]), vmovn_s16(q16[3])));
}

/* The 32 values of a Q8_0 / Q8_1 block at x into v, their scale: amax by
 * FMAXNM, d = amax / 127 and id = 1 / d (0 for d 0) in scalar as the
 * reference does, d written as f16 at dh; returns d (before its rounding). */
static inline float q8_block_scale(const float *x, float32x4_t v[8], uint8_t *dh, float *id)
{
    float32x4_t m = vdupq_n_f32(0.0f);
    for (int k = 0; k < 8; k++) {
        v[k] = vld1q_f32(x + 4 * k);
        m = vmaxnmq_f32(m, vabsq_f32(v[k]));
    }
    const float amax = vmaxnmvq_f32(m);
    const float d = amax / 127.0f;
    *id = d != 0.0f ? 1.0f / d : 0.0f;
    const uint16_t h = qeil_f32_to_f16(d);
    memcpy(dh, &h, sizeof h);
    return d;
}

void qeil_quantize_row_q8_0_neon(const float *src, void *dst, int64_t n)
{
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / QEIL_QK8_0; i++, b += QEIL_Q8_0_BYTES) {
        float32x4_t v[8];
        float id;
        q8_block_scale(src + i * QEIL_QK8_0, v, b, &id);
        q8_round32(v, id, (int8_t *)(b + 2));
    }
}

/* qeil_quantize_row_q8_1's bytes: Q8_0's codes (above) with d stored as
 * f16, and s = f16((float)sum * d), the block's code sum by SADDLV (exact
 * in int16: |sum| <= 32 * 127), d the f32 value before its rounding. */
void qeil_quantize_row_q8_1_neon(const float *src, void *dst, int64_t n)
{
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / QEIL_QK5; i++, b += QEIL_Q8_1_BYTES) {
        float32x4_t v[8];
        float id;
        const float d = q8_block_scale(src + i * QEIL_QK5, v, b, &id);
        int8_t *qs = (int8_t *)(b + 4);
        q8_round32(v, id, qs);
        const int sum = vaddlvq_s8(vld1q_s8(qs)) + vaddlvq_s8(vld1q_s8(qs + 16));
        const uint16_t hs = qeil_f32_to_f16((float)sum * d);
        memcpy(b + 2, &hs, sizeof hs);
    }
}

/* qeil_quantize_row_q8_k's bytes: amax over the 256 values by FMAXNM, d =
 * amax / 127 and id = 127 / amax (0 for amax 0) in scalar as there, each
 * element rounded as above, and the 16 group sums (exact in int16:
 * |.| <= 16 * 127) by SADDLV. */
void qeil_quantize_row_q8_k_neon(const float *src, void *dst, int64_t n)
{
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / QEIL_QK_K; i++, b += QEIL_Q8_K_BYTES) {
        const float *x = src + i * QEIL_QK_K;
        float32x4_t m = vdupq_n_f32(0.0f);
        for (int k = 0; k < QEIL_QK_K / 4; k++) m = vmaxnmq_f32(m, vabsq_f32(vld1q_f32(x + 4 * k)));
        const float amax = vmaxnmvq_f32(m);
        const float d = amax / 127.0f;
        const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
        memcpy(b, &d, sizeof d);
        int8_t *qs = (int8_t *)(b + 4);
        for (int c = 0; c < QEIL_QK_K / 32; c++) {
            float32x4_t v[8];
            for (int k = 0; k < 8; k++) v[k] = vld1q_f32(x + 32 * c + 4 * k);
            q8_round32(v, id, qs + 32 * c);
        }
        for (int g = 0; g < QEIL_QK_K / 16; g++) {
            const int16_t sum = vaddlvq_s8(vld1q_s8(qs + 16 * g));
            memcpy(b + 260 + 2 * g, &sum, sizeof sum);
        }
    }
}

#else
/* ISO C forbids an empty translation unit */
typedef int qeil_dot_neon_unused;
#endif
