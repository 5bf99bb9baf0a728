/*
 * ops.c — scalar reference of the transformer's non-matmul ops (ops.h).
 *
 * Kept deliberately plain: a fixed evaluation order per call, so the same
 * inputs give the same bits on every thread count; accumulations whose
 * length grows with the model width (norm statistics, the softmax sum) run
 * in double so their rounding error stays far below the test tolerances.
 */
#include "kernels/ops.h"

#include <math.h>
#include <string.h>

#include "core/cpu.h"
#include "kernels/arm/ops_neon.h"
#include "kernels/quant.h" /* qeil_simd_best, QEIL_HAVE_X86_SIMD, QEIL_HAVE_ARM_SIMD */

/* exp(x) for the activations and the softmax, one recipe in scalar and AVX2
 * form so both give the same bits (explicit fmaf, rintf = round to nearest
 * even, the same clamp): x = n ln2 + r with n = rint(x log2 e), r by a
 * two-constant Cody-Waite reduction (|r| <= 0.35), exp(r) by its degree-7
 * Taylor polynomial in Horner form (truncation < 6e-9 relative), times 2^n
 * built in the exponent bits. x is clamped to [-87, 88] so 2^n stays a
 * normal float: exp(-87) = 1.6e-38 stands for anything smaller, exp(88) =
 * 1.7e38 for anything larger (silu and softmax only divide by or sum
 * these). Within 2 ulp of expf on [-87, 88] (test ops_exp). NaN stays NaN. */
#define EXP_LO QEIL_OP_EXP_LO
#define EXP_HI QEIL_OP_EXP_HI
#define EXP_LOG2E QEIL_OP_EXP_LOG2E
#define EXP_LN2_HI QEIL_OP_EXP_LN2_HI /* few mantissa bits: n * it is exact */
#define EXP_LN2_LO QEIL_OP_EXP_LN2_LO

float qeil_op_exp(float x)
{
    if (isnan(x)) return x;
    x = x < EXP_LO ? EXP_LO : (x > EXP_HI ? EXP_HI : x);
    const float n = rintf(x * EXP_LOG2E);
    float r = fmaf(n, -EXP_LN2_HI, x);
    r = fmaf(n, -EXP_LN2_LO, r);
    float p = fmaf(1.0f / 5040.0f, r, 1.0f / 720.0f);
    p = fmaf(p, r, 1.0f / 120.0f);
    p = fmaf(p, r, 1.0f / 24.0f);
    p = fmaf(p, r, 1.0f / 6.0f);
    p = fmaf(p, r, 0.5f);
    p = fmaf(p, r, 1.0f);
    p = fmaf(p, r, 1.0f);
    const uint32_t bits = (uint32_t)((int32_t)n + 127) << 23;
    float sc;
    memcpy(&sc, &bits, sizeof sc);
    return p * sc;
}

#if QEIL_HAVE_X86_SIMD
#include <immintrin.h>

#define OPS_AVX2 __attribute__((target("avx2,fma")))

OPS_AVX2 static inline __m256 exp8(__m256 x0)
{
    __m256 x = _mm256_min_ps(_mm256_max_ps(x0, _mm256_set1_ps(EXP_LO)), _mm256_set1_ps(EXP_HI));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(EXP_LOG2E)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fmadd_ps(n, _mm256_set1_ps(-EXP_LN2_HI), x);
    r = _mm256_fmadd_ps(n, _mm256_set1_ps(-EXP_LN2_LO), r);
    __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(1.0f / 5040.0f), r, _mm256_set1_ps(1.0f / 720.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    const __m256i bits =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    const __m256 y = _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
    return _mm256_blendv_ps(y, x0, _mm256_cmp_ps(x0, x0, _CMP_UNORD_Q)); /* NaN stays */
}

/* The first n - n % 8 elements; the caller finishes with the scalar code. */
OPS_AVX2 static size_t silu_mul_avx2(float *g, const float *u, size_t n)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(g + i);
        const __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), x));
        _mm256_storeu_ps(g + i, _mm256_mul_ps(_mm256_div_ps(x, _mm256_add_ps(one, e)),
                                              _mm256_loadu_ps(u + i)));
    }
    return i;
}

OPS_AVX2 static uint32_t exp_sub_avx2(float *x, uint32_t n, float mx)
{
    const __m256 m = _mm256_set1_ps(mx);
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), m)));
    return i;
}
#endif

void qeil_op_rmsnorm(const float *x, const float *w, float *y, uint32_t d, float eps)
{
    double ss = 0.0;
    for (uint32_t i = 0; i < d; i++) ss += (double)x[i] * (double)x[i];
    const float r = (float)(1.0 / sqrt(ss / (double)d + (double)eps));
    for (uint32_t i = 0; i < d; i++) y[i] = x[i] * r * w[i];
}

void qeil_op_layernorm(const float *x, const float *w, const float *b, float *y, uint32_t d,
                       float eps)
{
    double s = 0.0;
    for (uint32_t i = 0; i < d; i++) s += (double)x[i];
    const double mean = s / (double)d;
    double ss = 0.0;
    for (uint32_t i = 0; i < d; i++) {
        double c = (double)x[i] - mean;
        ss += c * c;
    }
    const double r = 1.0 / sqrt(ss / (double)d + (double)eps);
    for (uint32_t i = 0; i < d; i++)
        y[i] = (float)(((double)x[i] - mean) * r) * w[i] + (b ? b[i] : 0.0f);
}

void qeil_op_rope(float *x, uint32_t n_heads, uint32_t head_dim, uint32_t n_rot, const float *cs,
                  const float *sn, int neox)
{
    const uint32_t half = n_rot / 2;
    for (uint32_t h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * head_dim;
        for (uint32_t i = 0; i < half; i++) {
            /* neox pairs dim i with i + n_rot/2; normal pairs 2i with 2i+1 */
            const uint32_t i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
            const float a = v[i0], b = v[i1];
            v[i0] = a * cs[i] - b * sn[i];
            v[i1] = a * sn[i] + b * cs[i];
        }
    }
}

void qeil_op_softmax(float *x, uint32_t n)
{
    float mx = x[0];
    for (uint32_t i = 1; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    uint32_t i0 = 0;
#if QEIL_HAVE_X86_SIMD
    if (qeil_simd_best() >= QEIL_SIMD_AVX2) i0 = exp_sub_avx2(x, n, mx);
#elif QEIL_HAVE_ARM_SIMD
    if (qeil_simd_best() == QEIL_SIMD_NEON) i0 = qeil_exp_sub_neon(x, n, mx);
#endif
    for (uint32_t i = i0; i < n; i++) x[i] = qeil_op_exp(x[i] - mx);
    double sum = 0.0;
    for (uint32_t i = 0; i < n; i++) sum += (double)x[i];
    /* sum >= 1 (the maximum contributes exp(0)): no division by zero */
    const float inv = (float)(1.0 / sum);
    for (uint32_t i = 0; i < n; i++) x[i] *= inv;
}

float qeil_op_silu(float x) { return x / (1.0f + qeil_op_exp(-x)); }

float qeil_op_gelu(float x)
{
    /* sqrt(2/pi) */
    const float c = 0.79788456080286535588f;
    return 0.5f * x * (1.0f + tanhf(c * (x + 0.044715f * x * x * x)));
}

void qeil_op_silu_mul(float *g, const float *u, size_t n)
{
    size_t i0 = 0;
#if QEIL_HAVE_X86_SIMD
    if (qeil_simd_best() >= QEIL_SIMD_AVX2) i0 = silu_mul_avx2(g, u, n);
#elif QEIL_HAVE_ARM_SIMD
    if (qeil_simd_best() == QEIL_SIMD_NEON) i0 = qeil_silu_mul_neon(g, u, n);
#endif
    for (size_t i = i0; i < n; i++) g[i] = qeil_op_silu(g[i]) * u[i];
}

void qeil_op_gelu_vec(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] = qeil_op_gelu(x[i]);
}

void qeil_op_add(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

void qeil_op_attention_ref(const float *restrict q, const float *restrict k,
                           const float *restrict v, size_t kv_stride, uint32_t n_pos,
                           uint32_t head_dim, float scale, float *restrict scores,
                           float *restrict out)
{
    /* q.k in 8 interleaved partial sums, added pairwise at the end: 8
     * independent chains instead of one serial chain of head_dim adds (the
     * compiler may not reorder float adds), and a shape it vectorizes. */
    enum { LANES = 8 };
    const uint32_t hd8 = head_dim - head_dim % LANES;
    for (uint32_t j = 0; j < n_pos; j++) {
        const float *kj = k + (size_t)j * kv_stride;
        float acc[LANES] = {0};
        for (uint32_t i = 0; i < hd8; i += LANES)
            for (int l = 0; l < LANES; l++) acc[l] += q[i + l] * kj[i + l];
        for (uint32_t i = hd8; i < head_dim; i++) acc[i - hd8] += q[i] * kj[i];
        const float s =
            ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
        scores[j] = s * scale;
    }
    qeil_op_softmax(scores, n_pos);
    for (uint32_t i = 0; i < head_dim; i++) out[i] = 0.0f;
    for (uint32_t j = 0; j < n_pos; j++) {
        const float *vj = v + (size_t)j * kv_stride;
        const float p = scores[j];
        /* blocks of LANES with a fixed trip count, which the compiler
         * vectorizes; each out[i] still sums over j in order */
        for (uint32_t i = 0; i < hd8; i += LANES)
            for (int l = 0; l < LANES; l++) out[i + l] += p * vj[i + l];
        for (uint32_t i = hd8; i < head_dim; i++) out[i] += p * vj[i];
    }
}

/* x86-64 only: on i386 the reference may keep x87 excess precision */
#if QEIL_HAVE_X86_SIMD && defined(__x86_64__)
#define OPS_ATT_AVX2 1
#else
#define OPS_ATT_AVX2 0
#endif

#if OPS_ATT_AVX2
/* The reference's arithmetic in 256-bit registers, for head_dim a multiple
 * of 8: lane l of a key's accumulator is the reference's acc[l] (mul, then
 * add: the Makefile builds with -ffp-contract=off, so neither side fuses
 * them), the lanes reduce as
 * ((a0+a4)+(a1+a5))+((a2+a6)+(a3+a7)) (extract/add, then two HADDPS), and
 * out's elements sum p_j v_j over j in order from 0 — the same bits. Four
 * keys at a time for q.k (independent chains), and out's blocks stay in
 * registers over all keys (the reference's loop, compiled for SSE2, kept
 * them in memory). */
#define OPS_UNROLL8 _Pragma("GCC unroll 8") /* keep the accumulator arrays in registers */

OPS_AVX2 static inline __m128 att_lanes(__m256 a)
{
    return _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
}

OPS_AVX2 static inline __attribute__((always_inline)) void att_pv(const float *v, size_t kv_stride,
                                                                  uint32_t n_pos, const float *p,
                                                                  float *out, const uint32_t CN)
{
    __m256 o[8];
    OPS_UNROLL8 for (uint32_t c = 0; c < CN; c++) o[c] = _mm256_setzero_ps();
    for (uint32_t j = 0; j < n_pos; j++) {
        const __m256 pj = _mm256_set1_ps(p[j]);
        const float *vj = v + (size_t)j * kv_stride;
        OPS_UNROLL8 for (uint32_t c = 0; c < CN; c++)
            o[c] = _mm256_add_ps(o[c], _mm256_mul_ps(pj, _mm256_loadu_ps(vj + 8 * c)));
    }
    OPS_UNROLL8 for (uint32_t c = 0; c < CN; c++) _mm256_storeu_ps(out + 8 * c, o[c]);
}

/* out = sum_j p_j v_j for one head of nb 8-float blocks: up to 8 blocks
 * (64 floats) in registers over all keys, one pass per 8 blocks. */
OPS_AVX2 static void att_pv_head(const float *v, size_t kv_stride, uint32_t n_pos, const float *p,
                                 float *out, uint32_t nb)
{
    for (uint32_t c0 = 0; c0 < nb; c0 += 8) {
        const float *vc = v + 8 * (size_t)c0;
        float *oc = out + 8 * (size_t)c0;
        switch (nb - c0 < 8 ? nb - c0 : 8) { /* constant block counts: o[] in registers */
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

OPS_AVX2 static void attention_avx2(const float *restrict q, const float *restrict k,
                                    const float *restrict v, size_t kv_stride, uint32_t n_pos,
                                    uint32_t head_dim, float scale, float *restrict scores,
                                    float *restrict out)
{
    const uint32_t nb = head_dim / 8;
    uint32_t j = 0;
    for (; j + 4 <= n_pos; j += 4) {
        const float *k0 = k + (size_t)j * kv_stride;
        __m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                       _mm256_setzero_ps()};
        for (uint32_t b = 0; b < nb; b++) {
            const __m256 qb = _mm256_loadu_ps(q + 8 * b);
            OPS_UNROLL8 for (int t = 0; t < 4; t++)
                a[t] = _mm256_add_ps(a[t], _mm256_mul_ps(qb, _mm256_loadu_ps(k0 + (size_t)t * kv_stride + 8 * b)));
        }
        const __m128 s = _mm_hadd_ps(_mm_hadd_ps(att_lanes(a[0]), att_lanes(a[1])),
                                     _mm_hadd_ps(att_lanes(a[2]), att_lanes(a[3])));
        _mm_storeu_ps(scores + j, _mm_mul_ps(s, _mm_set1_ps(scale)));
    }
    for (; j < n_pos; j++) {
        const float *kj = k + (size_t)j * kv_stride;
        __m256 a = _mm256_setzero_ps();
        for (uint32_t b = 0; b < nb; b++)
            a = _mm256_add_ps(a, _mm256_mul_ps(_mm256_loadu_ps(q + 8 * b), _mm256_loadu_ps(kj + 8 * b)));
        __m128 h = att_lanes(a);
        h = _mm_hadd_ps(h, h);
        h = _mm_hadd_ps(h, h);
        scores[j] = _mm_cvtss_f32(h) * scale;
    }
    qeil_op_softmax(scores, n_pos);
    att_pv_head(v, kv_stride, n_pos, scores, out, nb);
}

/* 2 to 4 heads that share one KV head (grouped-query attention), each
 * computed exactly as attention_avx2 computes it alone — every score from
 * its own 8-lane accumulator reduced in the same order, every out element
 * summed over j in order — so the same bits; but each K row is loaded
 * once for all G heads instead of once per head (and each V row too on
 * the AVX-512 path below). Alone, a head
 * re-read its KV head's rows from L2 (at 130 positions 66 KB per KV head),
 * and attention ran L2-bound at ~8 GB/s of KV. */
OPS_AVX2 static inline __attribute__((always_inline)) void att_qk_group(
    const float *q, size_t q_stride, const float *k, size_t kv_stride, uint32_t n_pos,
    uint32_t nb, float scale, float *scores, size_t s_stride, const int G)
{
    uint32_t j = 0;
    /* two keys x G heads: 2G accumulators (<= 8) */
    for (; j + 2 <= n_pos; j += 2) {
        const float *k0 = k + (size_t)j * kv_stride, *k1 = k0 + kv_stride;
        __m256 a[4][2];
        OPS_UNROLL8 for (int g = 0; g < G; g++) a[g][0] = a[g][1] = _mm256_setzero_ps();
        for (uint32_t b = 0; b < nb; b++) {
            const __m256 kb0 = _mm256_loadu_ps(k0 + 8 * b), kb1 = _mm256_loadu_ps(k1 + 8 * b);
            OPS_UNROLL8 for (int g = 0; g < G; g++) {
                const __m256 qb = _mm256_loadu_ps(q + (size_t)g * q_stride + 8 * b);
                a[g][0] = _mm256_add_ps(a[g][0], _mm256_mul_ps(qb, kb0));
                a[g][1] = _mm256_add_ps(a[g][1], _mm256_mul_ps(qb, kb1));
            }
        }
        /* [g j, g j+1, g+1 j, g+1 j+1]: hadd(hadd(X0, X1), hadd(X2, X3)) is
         * ((a0+a4)+(a1+a5))+((a2+a6)+(a3+a7)) per accumulator */
        for (int g = 0; g < G; g += 2) {
            const int g1 = g + 1 < G ? g + 1 : g;
            const __m128 r = _mm_mul_ps(
                _mm_hadd_ps(_mm_hadd_ps(att_lanes(a[g][0]), att_lanes(a[g][1])),
                            _mm_hadd_ps(att_lanes(a[g1][0]), att_lanes(a[g1][1]))),
                _mm_set1_ps(scale));
            _mm_storel_pi((__m64 *)(void *)(scores + (size_t)g * s_stride + j), r);
            if (g + 1 < G) _mm_storeh_pi((__m64 *)(void *)(scores + (size_t)g1 * s_stride + j), r);
        }
    }
    for (; j < n_pos; j++) {
        const float *kj = k + (size_t)j * kv_stride;
        OPS_UNROLL8 for (int g = 0; g < G; g++) {
            __m256 a = _mm256_setzero_ps();
            for (uint32_t b = 0; b < nb; b++)
                a = _mm256_add_ps(a, _mm256_mul_ps(_mm256_loadu_ps(q + (size_t)g * q_stride + 8 * b),
                                                   _mm256_loadu_ps(kj + 8 * b)));
            __m128 h = att_lanes(a);
            h = _mm_hadd_ps(h, h);
            h = _mm_hadd_ps(h, h);
            scores[(size_t)g * s_stride + j] = _mm_cvtss_f32(h) * scale;
        }
    }
}

/* AVX2 only: q.k for the G heads together, then p.v one head at a time
 * (att_pv_head: a head's 64 floats in registers, one pass over V). Holding
 * G heads' outputs in 16 ymm registers takes passes of 16 floats over V,
 * which from 512 positions on was slower than one head at a time
 * (bench_attention with the zmm path off: 4398 against 3230 us). */
#define ATT_GROUP_FN(NAME, G)                                                                     \
    OPS_AVX2 static void NAME(const float *q, size_t q_stride, const float *k, const float *v,   \
                              size_t kv_stride, uint32_t n_pos, uint32_t head_dim, float scale,   \
                              float *scores, size_t s_stride, float *out, size_t out_stride)      \
    {                                                                                             \
        att_qk_group(q, q_stride, k, kv_stride, n_pos, head_dim / 8, scale, scores, s_stride, G); \
        for (int g = 0; g < G; g++) {                                                             \
            qeil_op_softmax(scores + (size_t)g * s_stride, n_pos);                                \
            att_pv_head(v, kv_stride, n_pos, scores + (size_t)g * s_stride,                       \
                        out + (size_t)g * out_stride, head_dim / 8);                              \
        }                                                                                         \
    }
ATT_GROUP_FN(att_group2, 2)
ATT_GROUP_FN(att_group3, 3)
ATT_GROUP_FN(att_group4, 4)

/* With AVX-512 F and VL (src/core/cpu.c) and head_dim a multiple of 16,
 * p.v holds G heads x up to 4 zmm (64 floats of each head) in registers,
 * so each V row is read once, in one pass, for all G heads. Element-wise
 * sums, so the lane width changes no bit. */
#define OPS_AVX512 __attribute__((target("avx2,fma,avx512f,avx512vl")))

OPS_AVX512 static inline __attribute__((always_inline)) void att_pv_group16(
    const float *v, size_t kv_stride, uint32_t n_pos, const float *p, size_t p_stride, float *out,
    size_t out_stride, const int G, const int NZ)
{
    __m512 o[4][4];
    OPS_UNROLL8 for (int g = 0; g < G; g++) OPS_UNROLL8 for (int c = 0; c < NZ; c++) o[g][c] = _mm512_setzero_ps();
    for (uint32_t j = 0; j < n_pos; j++) {
        const float *vj = v + (size_t)j * kv_stride;
        __m512 vb[4];
        OPS_UNROLL8 for (int c = 0; c < NZ; c++) vb[c] = _mm512_loadu_ps(vj + 16 * c);
        OPS_UNROLL8 for (int g = 0; g < G; g++) {
            const __m512 pj = _mm512_set1_ps(p[(size_t)g * p_stride + j]);
            OPS_UNROLL8 for (int c = 0; c < NZ; c++) o[g][c] = _mm512_add_ps(o[g][c], _mm512_mul_ps(pj, vb[c]));
        }
    }
    OPS_UNROLL8 for (int g = 0; g < G; g++)
        OPS_UNROLL8 for (int c = 0; c < NZ; c++) _mm512_storeu_ps(out + (size_t)g * out_stride + 16 * c, o[g][c]);
}

#define ATT_GROUP512_FN(NAME, G)                                                                     \
    OPS_AVX512 static void NAME(const float *q, size_t q_stride, const float *k, const float *v,    \
                                size_t kv_stride, uint32_t n_pos, uint32_t head_dim, float scale,    \
                                float *scores, size_t s_stride, float *out, size_t out_stride)       \
    {                                                                                                \
        att_qk_group(q, q_stride, k, kv_stride, n_pos, head_dim / 8, scale, scores, s_stride, G);   \
        for (int g = 0; g < G; g++) qeil_op_softmax(scores + (size_t)g * s_stride, n_pos);          \
        const uint32_t nz = head_dim / 16;                                                           \
        for (uint32_t c = 0; c < nz; c += 4) {                                                       \
            const float *vc = v + 16 * (size_t)c;                                                    \
            float *oc = out + 16 * (size_t)c;                                                        \
            switch (nz - c < 4 ? nz - c : 4) {                                                       \
            case 4: att_pv_group16(vc, kv_stride, n_pos, scores, s_stride, oc, out_stride, G, 4); break; \
            case 3: att_pv_group16(vc, kv_stride, n_pos, scores, s_stride, oc, out_stride, G, 3); break; \
            case 2: att_pv_group16(vc, kv_stride, n_pos, scores, s_stride, oc, out_stride, G, 2); break; \
            default: att_pv_group16(vc, kv_stride, n_pos, scores, s_stride, oc, out_stride, G, 1); break; \
            }                                                                                        \
        }                                                                                            \
    }
ATT_GROUP512_FN(att512_group2, 2)
ATT_GROUP512_FN(att512_group3, 3)
ATT_GROUP512_FN(att512_group4, 4)

typedef void (*att_group_fn)(const float *, size_t, const float *, const float *, size_t, uint32_t,
                             uint32_t, float, float *, size_t, float *, size_t);
/* [zmm p.v][heads - 2]; one head alone is attention_avx2 (4 keys per q.k pass) */
static const att_group_fn k_att_group[2][3] = {{att_group2, att_group3, att_group4},
                                               {att512_group2, att512_group3, att512_group4}};
#endif

void qeil_op_attention(const float *restrict q, const float *restrict k,
                       const float *restrict v, size_t kv_stride, uint32_t n_pos,
                       uint32_t head_dim, float scale, float *restrict scores,
                       float *restrict out)
{
#if OPS_ATT_AVX2
    if (head_dim % 8 == 0 && qeil_simd_best() >= QEIL_SIMD_AVX2) {
        attention_avx2(q, k, v, kv_stride, n_pos, head_dim, scale, scores, out);
        return;
    }
#elif QEIL_HAVE_ARM_SIMD
    if (head_dim % 8 == 0 && qeil_simd_best() == QEIL_SIMD_NEON) {
        qeil_attention_neon(q, k, v, kv_stride, n_pos, head_dim, scale, scores, out);
        return;
    }
#endif
    qeil_op_attention_ref(q, k, v, kv_stride, n_pos, head_dim, scale, scores, out);
}

void qeil_op_attention_heads(const float *q, size_t q_stride, uint32_t n_heads, const float *k,
                             const float *v, size_t kv_stride, uint32_t n_pos, uint32_t head_dim,
                             float scale, float *scores, size_t s_stride, float *out,
                             size_t out_stride)
{
#if OPS_ATT_AVX2
    if (head_dim % 8 == 0 && qeil_simd_best() >= QEIL_SIMD_AVX2) {
        const unsigned fvl = QEIL_CPU_AVX512F | QEIL_CPU_AVX512VL;
        const att_group_fn *fn =
            k_att_group[head_dim % 16 == 0 && (qeil_cpu_features() & fvl) == fvl];
        for (uint32_t h = 0; h < n_heads;) {
            const uint32_t g = n_heads - h < 4 ? n_heads - h : 4;
            if (g == 1)
                attention_avx2(q + (size_t)h * q_stride, k, v, kv_stride, n_pos, head_dim, scale,
                               scores + (size_t)h * s_stride, out + (size_t)h * out_stride);
            else
                fn[g - 2](q + (size_t)h * q_stride, q_stride, k, v, kv_stride, n_pos, head_dim,
                          scale, scores + (size_t)h * s_stride, s_stride,
                          out + (size_t)h * out_stride, out_stride);
            h += g;
        }
        return;
    }
#elif QEIL_HAVE_ARM_SIMD
    if (head_dim % 8 == 0 && qeil_simd_best() == QEIL_SIMD_NEON) {
        qeil_attention_heads_neon(q, q_stride, n_heads, k, v, kv_stride, n_pos, head_dim, scale,
                                  scores, s_stride, out, out_stride);
        return;
    }
#endif
    for (uint32_t h = 0; h < n_heads; h++)
        qeil_op_attention_ref(q + (size_t)h * q_stride, k, v, kv_stride, n_pos, head_dim, scale,
                              scores + (size_t)h * s_stride, out + (size_t)h * out_stride);
}
