/*
 * ops_neon.c — AArch64 NEON forms of the non-matmul ops that matter for
 * speed (ops.c calls them when qeil_simd_best() is QEIL_SIMD_NEON): the exp
 * of SiLU and the softmax, and attention (q·k scores, p·v sum; one head, or
 * up to 4 query heads sharing a KV head).
 *
 * The rule is the x86 one (docs/kernels.md, "AArch64 NEON"): each returns
 * the bits of the portable definition in ops.c, because it runs the same
 * IEEE operations on the same values in the same order per element:
 *  - exp4: qeil_op_exp's recipe lane by lane (FMLA is fmaf, FRINTN is
 *    rintf in the default rounding mode, the same clamp and 2^n);
 *  - attention: lane l of a key's two float32x4 accumulators is the
 *    reference's acc[l] (FMUL then FADD: the build has -ffp-contract=off
 *    and nothing here fuses), reduced as ((a0+a4)+(a1+a5))+((a2+a6)+(a3+a7))
 *    by one FADD and two FADDP; out's elements sum p_j v_j over j in order
 *    from 0, held in registers over all keys.
 * Norms (a serial double sum, the definition) and GELU (libm tanhf) stay
 * portable; their element-wise loops are vectorized by the compiler.
 */
#include "kernels/arm/ops_neon.h"

#if QEIL_HAVE_ARM_SIMD

#include <arm_neon.h>

static inline float32x4_t exp4(float32x4_t x0)
{
    const float32x4_t x =
        vminq_f32(vmaxq_f32(x0, vdupq_n_f32(QEIL_OP_EXP_LO)), vdupq_n_f32(QEIL_OP_EXP_HI));
    const float32x4_t n = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(QEIL_OP_EXP_LOG2E)));
    float32x4_t r = vfmaq_f32(x, n, vdupq_n_f32(-QEIL_OP_EXP_LN2_HI));
    r = vfmaq_f32(r, n, vdupq_n_f32(-QEIL_OP_EXP_LN2_LO));
    float32x4_t p = vfmaq_f32(vdupq_n_f32(1.0f / 720.0f), vdupq_n_f32(1.0f / 5040.0f), r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 120.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 24.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 6.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(0.5f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    /* n is an integer in [-126, 127]: the conversion is exact */
    const int32x4_t bits = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
    const float32x4_t y = vmulq_f32(p, vreinterpretq_f32_s32(bits));
    return vbslq_f32(vceqq_f32(x0, x0), y, x0); /* NaN stays */
}

size_t qeil_silu_mul_neon(float *g, const float *u, size_t n)
{
    const float32x4_t one = vdupq_n_f32(1.0f);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float32x4_t x = vld1q_f32(g + i);
        const float32x4_t e = exp4(vnegq_f32(x));
        vst1q_f32(g + i, vmulq_f32(vdivq_f32(x, vaddq_f32(one, e)), vld1q_f32(u + i)));
    }
    return i;
}

uint32_t qeil_exp_sub_neon(float *x, uint32_t n, float mx)
{
    const float32x4_t m = vdupq_n_f32(mx);
    uint32_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(x + i, exp4(vsubq_f32(vld1q_f32(x + i), m)));
    return i;
}

/* ---- attention ---------------------------------------------------------- */

#define ATT_INLINE static inline __attribute__((always_inline))
#define ATT_UNROLL _Pragma("GCC unroll 16")

/* The 8-lane accumulator (lo = acc[0..3], hi = acc[4..7]) as 4 lanes
 * a0+a4, a1+a5, a2+a6, a3+a7. */
ATT_INLINE float32x4_t att_fold(float32x4_t lo, float32x4_t hi) { return vaddq_f32(lo, hi); }

/* The reference's reduction of one folded accumulator f:
 * (f0 + f1) + (f2 + f3). */
ATT_INLINE float att_reduce1(float32x4_t f)
{
    const float32x4_t h = vpaddq_f32(f, f);
    return vgetq_lane_f32(h, 0) + vgetq_lane_f32(h, 1);
}

/* out[0 .. 8 CN) = sum_j p_j v_j[0 .. 8 CN), j in order from 0, in 2 CN
 * registers over all keys. */
ATT_INLINE void att_pv(const float *v, size_t kv_stride, uint32_t n_pos, const float *p, float *out,
                       const uint32_t CN)
{
    float32x4_t o[16];
    ATT_UNROLL for (uint32_t c = 0; c < 2 * CN; c++) o[c] = vdupq_n_f32(0.0f);
    for (uint32_t j = 0; j < n_pos; j++) {
        const float32x4_t pj = vdupq_n_f32(p[j]);
        const float *vj = v + (size_t)j * kv_stride;
        ATT_UNROLL for (uint32_t c = 0; c < 2 * CN; c++)
            o[c] = vaddq_f32(o[c], vmulq_f32(pj, vld1q_f32(vj + 4 * c)));
    }
    ATT_UNROLL for (uint32_t c = 0; c < 2 * CN; c++) vst1q_f32(out + 4 * c, o[c]);
}

/* p·v of one head of nb 8-float blocks, up to 8 blocks (64 floats, 16
 * registers) per pass over V. */
static void att_pv_head(const float *v, size_t kv_stride, uint32_t n_pos, const float *p, float *out,
                        uint32_t nb)
{
    for (uint32_t c0 = 0; c0 < nb; c0 += 8) {
        const float *vc = v + 8 * (size_t)c0;
        float *oc = out + 8 * (size_t)c0;
        switch (nb - c0 < 8 ? nb - c0 : 8) { /* constant counts: o[] in registers */
        case 8: att_pv(vc, kv_stride, n_pos, p, oc, 8); break;
        case 7: att_pv(vc, kv_stride, n_pos, p, oc, 7); break;
        case 6: att_pv(vc, kv_stride, n_pos, p, oc, 6); break;
        case 5: att_pv(vc, kv_stride, n_pos, p, oc, 5); break;
        case 4: att_pv(vc, kv_stride, n_pos, p, oc, 4); break;
        case 3: att_pv(vc, kv_stride, n_pos, p, oc, 3); break;
        case 2: att_pv(vc, kv_stride, n_pos, p, oc, 2); break;
        default: att_pv(vc, kv_stride, n_pos, p, oc, 1); break;
        }
    }
}

/* scores[j] = scale · q·k_j for one head, four keys per pass (8
 * independent accumulator registers). */
static void att_qk_head(const float *q, const float *k, size_t kv_stride, uint32_t n_pos, uint32_t nb,
                        float scale, float *scores)
{
    const float32x4_t vs = vdupq_n_f32(scale);
    uint32_t j = 0;
    for (; j + 4 <= n_pos; j += 4) {
        const float *k0 = k + (size_t)j * kv_stride;
        float32x4_t lo[4], hi[4];
        ATT_UNROLL for (int t = 0; t < 4; t++) lo[t] = hi[t] = vdupq_n_f32(0.0f);
        for (uint32_t b = 0; b < nb; b++) {
            const float32x4_t q0 = vld1q_f32(q + 8 * b), q1 = vld1q_f32(q + 8 * b + 4);
            ATT_UNROLL for (int t = 0; t < 4; t++) {
                const float *kt = k0 + (size_t)t * kv_stride + 8 * b;
                lo[t] = vaddq_f32(lo[t], vmulq_f32(q0, vld1q_f32(kt)));
                hi[t] = vaddq_f32(hi[t], vmulq_f32(q1, vld1q_f32(kt + 4)));
            }
        }
        /* lane t: (f_t0 + f_t1) + (f_t2 + f_t3) */
        const float32x4_t s =
            vpaddq_f32(vpaddq_f32(att_fold(lo[0], hi[0]), att_fold(lo[1], hi[1])),
                       vpaddq_f32(att_fold(lo[2], hi[2]), att_fold(lo[3], hi[3])));
        vst1q_f32(scores + j, vmulq_f32(s, vs));
    }
    for (; j < n_pos; j++) {
        const float *kj = k + (size_t)j * kv_stride;
        float32x4_t lo = vdupq_n_f32(0.0f), hi = lo;
        for (uint32_t b = 0; b < nb; b++) {
            lo = vaddq_f32(lo, vmulq_f32(vld1q_f32(q + 8 * b), vld1q_f32(kj + 8 * b)));
            hi = vaddq_f32(hi, vmulq_f32(vld1q_f32(q + 8 * b + 4), vld1q_f32(kj + 8 * b + 4)));
        }
        scores[j] = att_reduce1(att_fold(lo, hi)) * scale;
    }
}

void qeil_attention_neon(const float *restrict q, const float *restrict k, const float *restrict v,
                         size_t kv_stride, uint32_t n_pos, uint32_t head_dim, float scale,
                         float *restrict scores, float *restrict out)
{
    att_qk_head(q, k, kv_stride, n_pos, head_dim / 8, scale, scores);
    qeil_op_softmax(scores, n_pos);
    att_pv_head(v, kv_stride, n_pos, scores, out, head_dim / 8);
}

/* q·k for G (2..4) heads sharing a KV head: two keys × G heads per pass
 * (4G accumulator registers, <= 16), each K row loaded once for all of
 * them; every score reduced exactly as att_qk_head reduces it. */
ATT_INLINE void att_qk_group(const float *q, size_t q_stride, const float *k, size_t kv_stride,
                             uint32_t n_pos, uint32_t nb, float scale, float *scores,
                             size_t s_stride, const int G)
{
    const float32x4_t vs = vdupq_n_f32(scale);
    uint32_t j = 0;
    for (; j + 2 <= n_pos; j += 2) {
        const float *k0 = k + (size_t)j * kv_stride, *k1 = k0 + kv_stride;
        float32x4_t lo[4][2], hi[4][2];
        ATT_UNROLL for (int g = 0; g < G; g++) lo[g][0] = lo[g][1] = hi[g][0] = hi[g][1] = vdupq_n_f32(0.0f);
        for (uint32_t b = 0; b < nb; b++) {
            const float32x4_t k00 = vld1q_f32(k0 + 8 * b), k01 = vld1q_f32(k0 + 8 * b + 4);
            const float32x4_t k10 = vld1q_f32(k1 + 8 * b), k11 = vld1q_f32(k1 + 8 * b + 4);
            ATT_UNROLL for (int g = 0; g < G; g++) {
                const float *qg = q + (size_t)g * q_stride + 8 * b;
                const float32x4_t q0 = vld1q_f32(qg), q1 = vld1q_f32(qg + 4);
                lo[g][0] = vaddq_f32(lo[g][0], vmulq_f32(q0, k00));
                hi[g][0] = vaddq_f32(hi[g][0], vmulq_f32(q1, k01));
                lo[g][1] = vaddq_f32(lo[g][1], vmulq_f32(q0, k10));
                hi[g][1] = vaddq_f32(hi[g][1], vmulq_f32(q1, k11));
            }
        }
        ATT_UNROLL for (int g = 0; g < G; g++) {
            /* [(f0+f1)+(f2+f3) of key j, of key j+1, the same again] */
            const float32x4_t t = vpaddq_f32(att_fold(lo[g][0], hi[g][0]), att_fold(lo[g][1], hi[g][1]));
            vst1_f32(scores + (size_t)g * s_stride + j, vget_low_f32(vmulq_f32(vpaddq_f32(t, t), vs)));
        }
    }
    for (; j < n_pos; j++) {
        const float *kj = k + (size_t)j * kv_stride;
        ATT_UNROLL for (int g = 0; g < G; g++) {
            const float *qg = q + (size_t)g * q_stride;
            float32x4_t lo = vdupq_n_f32(0.0f), hi = lo;
            for (uint32_t b = 0; b < nb; b++) {
                lo = vaddq_f32(lo, vmulq_f32(vld1q_f32(qg + 8 * b), vld1q_f32(kj + 8 * b)));
                hi = vaddq_f32(hi, vmulq_f32(vld1q_f32(qg + 8 * b + 4), vld1q_f32(kj + 8 * b + 4)));
            }
            scores[(size_t)g * s_stride + j] = att_reduce1(att_fold(lo, hi)) * scale;
        }
    }
}

#define ATT_GROUP_FN(NAME, G)                                                                      \
    static void NAME(const float *q, size_t q_stride, const float *k, const float *v,              \
                     size_t kv_stride, uint32_t n_pos, uint32_t head_dim, float scale,             \
                     float *scores, size_t s_stride, float *out, size_t out_stride)                \
    {                                                                                              \
        att_qk_group(q, q_stride, k, kv_stride, n_pos, head_dim / 8, scale, scores, s_stride, G); \
        for (int g = 0; g < G; g++) {                                                              \
            qeil_op_softmax(scores + (size_t)g * s_stride, n_pos);                                 \
            att_pv_head(v, kv_stride, n_pos, scores + (size_t)g * s_stride,                        \
                        out + (size_t)g * out_stride, head_dim / 8);                               \
        }                                                                                          \
    }
ATT_GROUP_FN(att_group2, 2)
ATT_GROUP_FN(att_group3, 3)
ATT_GROUP_FN(att_group4, 4)

void qeil_attention_heads_neon(const float *q, size_t q_stride, uint32_t n_heads, const float *k,
                               const float *v, size_t kv_stride, uint32_t n_pos, uint32_t head_dim,
                               float scale, float *scores, size_t s_stride, float *out,
                               size_t out_stride)
{
    for (uint32_t h = 0; h < n_heads;) {
        const uint32_t g = n_heads - h < 4 ? n_heads - h : 4;
        const float *qh = q + (size_t)h * q_stride;
        float *sh = scores + (size_t)h * s_stride, *oh = out + (size_t)h * out_stride;
        switch (g) {
        case 4: att_group4(qh, q_stride, k, v, kv_stride, n_pos, head_dim, scale, sh, s_stride, oh, out_stride); break;
        case 3: att_group3(qh, q_stride, k, v, kv_stride, n_pos, head_dim, scale, sh, s_stride, oh, out_stride); break;
        case 2: att_group2(qh, q_stride, k, v, kv_stride, n_pos, head_dim, scale, sh, s_stride, oh, out_stride); break;
        default: qeil_attention_neon(qh, k, v, kv_stride, n_pos, head_dim, scale, sh, oh); break;
        }
        h += g;
    }
}

#else
/* ISO C forbids an empty translation unit */
typedef int qeil_ops_neon_unused;
#endif
