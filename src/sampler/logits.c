/* logits.c — the sampler's whole-vocabulary passes: maximum, search, and
 * Σ exp. Definitions and why: logits.h. */
#include "sampler/logits.h"

#include <math.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* The exponential                                                           */
/* ------------------------------------------------------------------------ */

/* Below this e^x < 2^-126: the reduction's 2^n would leave the normal
 * range, and such a term is < 1e-38 of the row's largest (which is 1). */
#define EXP_LO (-87.0f)
#define EXP_LOG2E 1.44269504088896341f
/* 1.5 · 2^23: adding it rounds a float of magnitude < 2^22 to an integer
 * (round to nearest even, the default mode), subtracting it gives that
 * integer back exactly. */
#define EXP_MAGIC 12582912.0f
/* ln 2 split so that n · LN2_HI is exact for |n| < 2^15 (Cody–Waite). */
#define EXP_LN2_HI 0.693359375f
#define EXP_LN2_LO (-2.12194440e-4f)
/* Cephes expf (Moshier), e^r ≈ 1 + r + r²·P(r) on |r| ≤ ln2/2. */
#define EXP_P0 1.9875691500e-4f
#define EXP_P1 1.3981999507e-3f
#define EXP_P2 8.3334519073e-3f
#define EXP_P3 4.1665795894e-2f
#define EXP_P4 1.6666665459e-1f
#define EXP_P5 5.0000001201e-1f

float qeil_logits_exp(float x)
{
    if (!(x >= EXP_LO)) return 0.0f; /* also −inf */
    float t = x * EXP_LOG2E;
    t = t + EXP_MAGIC;
    float nf = t - EXP_MAGIC; /* n = round(x / ln 2), in [−126, 0] */
    float r = x - nf * EXP_LN2_HI;
    r = r - nf * EXP_LN2_LO;
    float z = r * r;
    float p = EXP_P0 * r + EXP_P1;
    p = p * r + EXP_P2;
    p = p * r + EXP_P3;
    p = p * r + EXP_P4;
    p = p * r + EXP_P5;
    p = p * z + r;
    p = p + 1.0f;
    uint32_t bits = (uint32_t)((int32_t)nf + 127) << 23; /* 2^n, a normal float */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* ------------------------------------------------------------------------ */
/* Portable definitions                                                      */
/* ------------------------------------------------------------------------ */

static int max_ref(const float *l, uint32_t from, uint32_t n, float *max)
{
    float m = *max;
    for (uint32_t i = from; i < n; i++) {
        float x = l[i];
        if (isnan(x) || x == INFINITY) return 0;
        if (x > m) m = x;
    }
    *max = m;
    return 1;
}

static uint32_t find_ref(const float *l, uint32_t from, uint32_t n, float v, int gt)
{
    for (uint32_t i = from; i < n; i++)
        if (gt ? l[i] > v : l[i] == v) return i;
    return n;
}

#define SUM_LANES 16

static void sum_exp_ref(const float *l, uint32_t from, uint32_t n, float shift,
                        double acc[SUM_LANES])
{
    for (uint32_t i = from; i < n; i++) acc[i % SUM_LANES] += (double)qeil_logits_exp(l[i] - shift);
}

static double sum_lanes(const double acc[SUM_LANES])
{
    double s = 0.0;
    for (int j = 0; j < SUM_LANES; j++) s += acc[j];
    return s;
}

/* ------------------------------------------------------------------------ */
/* AVX2: the same operations, eight at a time                                */
/* ------------------------------------------------------------------------ */

#if QEIL_HAVE_X86_SIMD
#include <immintrin.h>

/* avx2 only, not fma: the exponential must be the portable one's mul/add
 * sequence (and the build has -ffp-contract=off). */
#define LOGITS_AVX2 __attribute__((target("avx2")))

LOGITS_AVX2 static inline __m256 exp8(__m256 x)
{
    __m256 ok = _mm256_cmp_ps(x, _mm256_set1_ps(EXP_LO), _CMP_GE_OQ);
    __m256 t = _mm256_mul_ps(x, _mm256_set1_ps(EXP_LOG2E));
    t = _mm256_add_ps(t, _mm256_set1_ps(EXP_MAGIC));
    __m256 nf = _mm256_sub_ps(t, _mm256_set1_ps(EXP_MAGIC));
    __m256 r = _mm256_sub_ps(x, _mm256_mul_ps(nf, _mm256_set1_ps(EXP_LN2_HI)));
    r = _mm256_sub_ps(r, _mm256_mul_ps(nf, _mm256_set1_ps(EXP_LN2_LO)));
    __m256 z = _mm256_mul_ps(r, r);
    __m256 p = _mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(EXP_P0), r), _mm256_set1_ps(EXP_P1));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(EXP_P2));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(EXP_P3));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(EXP_P4));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(EXP_P5));
    p = _mm256_add_ps(_mm256_mul_ps(p, z), r);
    p = _mm256_add_ps(p, _mm256_set1_ps(1.0f));
    /* lanes below EXP_LO may hold garbage up to here; the mask zeroes them */
    __m256i n = _mm256_cvttps_epi32(nf);
    __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(n, _mm256_set1_epi32(127)), 23);
    return _mm256_and_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(bits)), ok);
}

LOGITS_AVX2 static int max_avx2(const float *l, uint32_t n, float *max)
{
    uint32_t i = 0;
    float m = l[0];
    if (n >= 8) {
        __m256 vm = _mm256_loadu_ps(l), bad = _mm256_setzero_ps();
        const __m256 inf = _mm256_set1_ps(INFINITY);
        for (; i + 8 <= n; i += 8) {
            __m256 x = _mm256_loadu_ps(l + i);
            bad = _mm256_or_ps(bad, _mm256_cmp_ps(x, inf, _CMP_EQ_UQ)); /* NaN or +inf */
            vm = _mm256_max_ps(vm, x);
        }
        if (_mm256_movemask_ps(bad)) return 0;
        float lanes[8];
        _mm256_storeu_ps(lanes, vm);
        for (int j = 0; j < 8; j++)
            if (lanes[j] > m) m = lanes[j];
    }
    *max = m;
    return max_ref(l, i, n, max);
}

LOGITS_AVX2 static uint32_t find_avx2(const float *l, uint32_t from, uint32_t n, float v, int gt)
{
    uint32_t i = from;
    const __m256 vv = _mm256_set1_ps(v);
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_loadu_ps(l + i);
        int mask = _mm256_movemask_ps(gt ? _mm256_cmp_ps(x, vv, _CMP_GT_OQ)
                                         : _mm256_cmp_ps(x, vv, _CMP_EQ_OQ));
        if (mask) return i + (uint32_t)__builtin_ctz((unsigned)mask);
    }
    return find_ref(l, i, n, v, gt);
}

LOGITS_AVX2 static double sum_exp_avx2(const float *l, uint32_t n, float shift)
{
    __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0; /* lanes 0-3 ... 12-15 */
    const __m256 sh = _mm256_set1_ps(shift);
    uint32_t i = 0;
    for (; i + SUM_LANES <= n; i += SUM_LANES) {
        __m256 e0 = exp8(_mm256_sub_ps(_mm256_loadu_ps(l + i), sh));
        __m256 e1 = exp8(_mm256_sub_ps(_mm256_loadu_ps(l + i + 8), sh));
        a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(_mm256_castps256_ps128(e0)));
        a1 = _mm256_add_pd(a1, _mm256_cvtps_pd(_mm256_extractf128_ps(e0, 1)));
        a2 = _mm256_add_pd(a2, _mm256_cvtps_pd(_mm256_castps256_ps128(e1)));
        a3 = _mm256_add_pd(a3, _mm256_cvtps_pd(_mm256_extractf128_ps(e1, 1)));
    }
    double acc[SUM_LANES];
    _mm256_storeu_pd(acc, a0);
    _mm256_storeu_pd(acc + 4, a1);
    _mm256_storeu_pd(acc + 8, a2);
    _mm256_storeu_pd(acc + 12, a3);
    sum_exp_ref(l, i, n, shift, acc); /* i is a multiple of 16: lanes line up */
    return sum_lanes(acc);
}
#endif

/* ------------------------------------------------------------------------ */
/* Dispatch                                                                  */
/* ------------------------------------------------------------------------ */

static int use_avx2(qeil_simd simd)
{
    return simd == QEIL_SIMD_AVX2 && qeil_simd_best() >= QEIL_SIMD_AVX2;
}

int qeil_logits_max(qeil_simd simd, const float *l, uint32_t n, float *max)
{
#if QEIL_HAVE_X86_SIMD
    if (use_avx2(simd)) return max_avx2(l, n, max);
#endif
    (void)simd;
    *max = l[0];
    return max_ref(l, 0, n, max);
}

uint32_t qeil_logits_find(qeil_simd simd, const float *l, uint32_t from, uint32_t n, float v,
                          int gt)
{
#if QEIL_HAVE_X86_SIMD
    if (use_avx2(simd)) return find_avx2(l, from, n, v, gt);
#endif
    (void)simd;
    return find_ref(l, from, n, v, gt);
}

double qeil_logits_sum_exp(qeil_simd simd, const float *l, uint32_t n, float shift)
{
#if QEIL_HAVE_X86_SIMD
    if (use_avx2(simd)) return sum_exp_avx2(l, n, shift);
#endif
    (void)simd;
    double acc[SUM_LANES] = {0};
    sum_exp_ref(l, 0, n, shift, acc);
    return sum_lanes(acc);
}
