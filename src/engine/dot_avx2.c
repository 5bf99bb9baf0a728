/*
 * dot_avx2.c — AVX2 + FMA + F16C dot products. Every function carries its
 * own target attribute, so this file builds with the project's default
 * flags and the library still runs on a CPU without AVX2: qeil_vec_dot_for()
 * hands these out only after CPUID says yes.
 *
 * All loads are unaligned (_mm*_loadu_*, memcpy for scalars): quantized
 * blocks of 18, 34 and 210 bytes sit at arbitrary addresses.
 *
 * Integer trick used throughout: _mm256_maddubs_epi16 multiplies unsigned
 * by signed bytes and adds adjacent pairs into int16. Operands are chosen so
 * that a pair never exceeds 2 * 128 * 127 = 32512 < 32767 (no saturation,
 * so the integer sums equal the scalar reference's exactly).
 */
#include "engine/quant.h"

#if QEIL_HAVE_X86_SIMD

#include <immintrin.h>
#include <string.h>

#define AVX2_FN __attribute__((target("avx2,fma,f16c")))

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */
/* ------------------------------------------------------------------------ */

AVX2_FN static inline float hsum_ps(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2_FN static inline int32_t hsum_epi32(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

AVX2_FN static inline float f16_at(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, sizeof h);
    return _cvtsh_ss(h);
}

/* 8 int32 partial sums of x[i] * y[i] over 32 signed bytes. The sign of x
 * is moved onto y so maddubs sees |x| as unsigned: |x| <= 128, |y| <= 127
 * (activations are quantized symmetric), pairs <= 32512. */
AVX2_FN static inline __m256i dot_i8_epi32(__m256i x, __m256i y)
{
    const __m256i ax = _mm256_sign_epi8(x, x);
    const __m256i sy = _mm256_sign_epi8(y, x);
    const __m256i p16 = _mm256_maddubs_epi16(ax, sy);
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

/* ------------------------------------------------------------------------ */
/* Float formats                                                             */
/* ------------------------------------------------------------------------ */

/* Four independent accumulators hide the FMA latency (4 cycles, 2 ports). */
AVX2_FN void qeil_vec_dot_f32_avx2(int64_t n, float *s, const void *w, const void *x)
{
    const float *a = w, *b = x;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
        acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), acc2);
        acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), acc3);
    }
    for (; i + 8 <= n; i += 8)
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    float sum = hsum_ps(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
    for (; i < n; i++) {
        float p, q;
        memcpy(&p, a + i, sizeof p);
        memcpy(&q, b + i, sizeof q);
        sum += p * q;
    }
    *s = sum;
}

AVX2_FN static inline __m256 load8_f16(const uint8_t *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)p));
}

AVX2_FN void qeil_vec_dot_f16_avx2(int64_t n, float *s, const void *w, const void *x)
{
    const uint8_t *a = w;
    const float *b = x;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm256_fmadd_ps(load8_f16(a + 2 * i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(load8_f16(a + 2 * i + 16), _mm256_loadu_ps(b + i + 8), acc1);
        acc2 = _mm256_fmadd_ps(load8_f16(a + 2 * i + 32), _mm256_loadu_ps(b + i + 16), acc2);
        acc3 = _mm256_fmadd_ps(load8_f16(a + 2 * i + 48), _mm256_loadu_ps(b + i + 24), acc3);
    }
    for (; i + 8 <= n; i += 8)
        acc0 = _mm256_fmadd_ps(load8_f16(a + 2 * i), _mm256_loadu_ps(b + i), acc0);
    float sum = hsum_ps(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
    for (; i < n; i++) {
        float q;
        memcpy(&q, b + i, sizeof q);
        sum += f16_at(a + 2 * i) * q;
    }
    *s = sum;
}

/* bf16 is the top half of an f32: widen to 32 bits and shift up. */
AVX2_FN static inline __m256 load8_bf16(const uint8_t *p)
{
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

AVX2_FN void qeil_vec_dot_bf16_avx2(int64_t n, float *s, const void *w, const void *x)
{
    const uint8_t *a = w;
    const float *b = x;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm256_fmadd_ps(load8_bf16(a + 2 * i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(load8_bf16(a + 2 * i + 16), _mm256_loadu_ps(b + i + 8), acc1);
        acc2 = _mm256_fmadd_ps(load8_bf16(a + 2 * i + 32), _mm256_loadu_ps(b + i + 16), acc2);
        acc3 = _mm256_fmadd_ps(load8_bf16(a + 2 * i + 48), _mm256_loadu_ps(b + i + 24), acc3);
    }
    for (; i + 8 <= n; i += 8)
        acc0 = _mm256_fmadd_ps(load8_bf16(a + 2 * i), _mm256_loadu_ps(b + i), acc0);
    float sum = hsum_ps(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
    for (; i < n; i++) {
        uint16_t h;
        float q;
        memcpy(&h, a + 2 * i, sizeof h);
        memcpy(&q, b + i, sizeof q);
        sum += qeil_bf16_to_f32(h) * q;
    }
    *s = sum;
}

/* ------------------------------------------------------------------------ */
/* Q8_0 / Q4_0 · Q8_0                                                        */
/* ------------------------------------------------------------------------ */

/* Per 32-element block: 8 int32 partial sums, converted to float and scaled
 * by d_w d_x into a vector accumulator (two, alternating, for latency). The
 * float summation order differs from the reference's: tolerance, not bits. */
AVX2_FN void qeil_vec_dot_q8_0_avx2(int64_t n, float *s, const void *w, const void *x)
{
    const uint8_t *bw = w, *bx = x;
    const int64_t nb = n / QEIL_QK8_0;
    __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t i = 0; i < nb; i++, bw += QEIL_Q8_0_BYTES, bx += QEIL_Q8_0_BYTES) {
        const __m256 d = _mm256_set1_ps(f16_at(bw) * f16_at(bx));
        const __m256i qw = _mm256_loadu_si256((const __m256i *)(const void *)(bw + 2));
        const __m256i qx = _mm256_loadu_si256((const __m256i *)(const void *)(bx + 2));
        const __m256 p = _mm256_cvtepi32_ps(dot_i8_epi32(qw, qx));
        acc[i & 1] = _mm256_fmadd_ps(d, p, acc[i & 1]);
    }
    *s = hsum_ps(_mm256_add_ps(acc[0], acc[1]));
}

AVX2_FN void qeil_vec_dot_q4_0_avx2(int64_t n, float *s, const void *w, const void *x)
{
    const uint8_t *bw = w, *bx = x;
    const int64_t nb = n / QEIL_QK4_0;
    const __m128i m4 = _mm_set1_epi8(0x0f);
    const __m256i off = _mm256_set1_epi8(8);
    __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t i = 0; i < nb; i++, bw += QEIL_Q4_0_BYTES, bx += QEIL_Q8_0_BYTES) {
        const __m256 d = _mm256_set1_ps(f16_at(bw) * f16_at(bx));
        const __m128i raw = _mm_loadu_si128((const __m128i *)(const void *)(bw + 2));
        /* low nibbles are elements 0..15, high nibbles 16..31 */
        const __m128i lo = _mm_and_si128(raw, m4);
        const __m128i hi = _mm_and_si128(_mm_srli_epi16(raw, 4), m4);
        const __m256i qw = _mm256_sub_epi8(_mm256_set_m128i(hi, lo), off); /* -8..7 */
        const __m256i qx = _mm256_loadu_si256((const __m256i *)(const void *)(bx + 2));
        const __m256 p = _mm256_cvtepi32_ps(dot_i8_epi32(qw, qx));
        acc[i & 1] = _mm256_fmadd_ps(d, p, acc[i & 1]);
    }
    *s = hsum_ps(_mm256_add_ps(acc[0], acc[1]));
}

/* ------------------------------------------------------------------------ */
/* K-quants · Q8_K: exact integer sum per super-block, then the reference's  */
/* expression verbatim (exact products in double, immune to FMA contraction), */
/* so the result has the reference's bits.                                    */
/* ------------------------------------------------------------------------ */

/* Word k (0..7) of each 128-bit lane broadcast to the whole lane. */
AVX2_FN static inline __m256i pick_epi16(__m256i v, int k)
{
    return _mm256_shuffle_epi8(v, _mm256_set1_epi16((short)(0x0100 + 0x0202 * k)));
}

/* Low lane gets word k, high lane word k + 1 (each broadcast in its lane). */
AVX2_FN static inline __m256i pick2_epi16(__m256i v, int k)
{
    return _mm256_shuffle_epi8(v, _mm256_set_m128i(_mm_set1_epi16((short)(0x0100 + 0x0202 * (k + 1))),
                                                   _mm_set1_epi16((short)(0x0100 + 0x0202 * k))));
}

AVX2_FN static inline int32_t hsum128_epi32(__m128i s)
{
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

AVX2_FN void qeil_vec_dot_q4_k_avx2(int64_t n, float *s, const void *w, const void *x)
{
    const uint8_t *bw = w, *bx = x;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    double sum = 0.0;
    for (int64_t i = 0; i < n / QEIL_QK_K; i++, bw += QEIL_Q4_K_BYTES, bx += QEIL_Q8_K_BYTES) {
        float dx;
        memcpy(&dx, bx, sizeof dx);
        const float d = dx * f16_at(bw);
        const float dmin = dx * f16_at(bw + 2);
        uint32_t sm[4];
        qeil_q4_k_unpack_scales(bw + 4, sm); /* bytes: sc[0..7], m[0..7] */
        const __m128i sm8 = _mm_loadu_si128((const __m128i *)(const void *)sm);
        const __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm8));
        const __m128i m16 = _mm_cvtepu8_epi16(_mm_srli_si128(sm8, 8));

        /* sum_s m[s] (bsums[2s] + bsums[2s+1]); pair sums <= 2 * 16 * 127 fit int16 */
        const __m128i b0 = _mm_loadu_si128((const __m128i *)(const void *)(bx + 260));
        const __m128i b1 = _mm_loadu_si128((const __m128i *)(const void *)(bx + 276));
        const int32_t summin = hsum128_epi32(_mm_madd_epi16(_mm_hadd_epi16(b0, b1), m16));

        const uint8_t *qs = bw + 16;
        const uint8_t *qy = bx + 4;
        __m256i acc = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            const __m256i q4 = _mm256_loadu_si256((const __m256i *)(const void *)(qs + 32 * c));
            const __m256i lo = _mm256_and_si256(q4, m4);                       /* 0..15 */
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q4, 4), m4); /* 0..15 */
            const __m256i y0 = _mm256_loadu_si256((const __m256i *)(const void *)(qy + 64 * c));
            const __m256i y1 = _mm256_loadu_si256((const __m256i *)(const void *)(qy + 64 * c + 32));
            /* pairs <= 2 * 15 * 127: no saturation */
            const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, y0), pick_epi16(sc16, 2 * c));
            const __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, y1), pick_epi16(sc16, 2 * c + 1));
            acc = _mm256_add_epi32(acc, _mm256_add_epi32(p0, p1));
        }
        const int32_t isum = hsum_epi32(acc);
        sum += (double)d * (float)isum - (double)dmin * (float)summin;
    }
    *s = (float)sum;
}

/* Q6_K: maddubs wants an unsigned operand, so use q in 0..63 and subtract
 * 32 * sum(y) per sub-block afterwards: sum (q - 32) y = sum q y - 32 bsum. */
AVX2_FN void qeil_vec_dot_q6_k_avx2(int64_t n, float *s, const void *w, const void *x)
{
    const uint8_t *bw = w, *bx = x;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    /* qh bit pairs 2c..2c+1 of each byte, moved to bits 4-5 */
    const __m256i m03 = _mm256_set1_epi8(0x03), m0c = _mm256_set1_epi8(0x0c);
    const __m256i m30 = _mm256_set1_epi8(0x30), mc0 = _mm256_set1_epi8((char)0xc0);
    double sum = 0.0;
    for (int64_t i = 0; i < n / QEIL_QK_K; i++, bw += QEIL_Q6_K_BYTES, bx += QEIL_Q8_K_BYTES) {
        float dx;
        memcpy(&dx, bx, sizeof dx);
        const float d = dx * f16_at(bw + 208);
        const __m128i sc8 = _mm_loadu_si128((const __m128i *)(const void *)(bw + 192));
        /* 32 * sum_k scales[k] bsums[k], subtracted up front */
        const __m256i bs = _mm256_loadu_si256((const __m256i *)(const void *)(bx + 260));
        const __m256i corr = _mm256_madd_epi16(_mm256_cvtepi8_epi16(sc8), bs);
        __m256i acc = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(corr, 5));

        const uint8_t *qy = bx + 4;
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = bw + 64 * h, *qh = bw + 128 + 32 * h;
            /* scales[8h .. 8h+7] as int16 in both lanes */
            const __m256i sc16 = _mm256_broadcastsi128_si256(
                _mm_cvtepi8_epi16(h ? _mm_srli_si128(sc8, 8) : sc8));
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)(const void *)ql);
            const __m256i l1 = _mm256_loadu_si256((const __m256i *)(const void *)(ql + 32));
            const __m256i hb = _mm256_loadu_si256((const __m256i *)(const void *)qh);
            /* 16-bit shifts keep bits inside their byte because the bits
             * that would cross are masked off first */
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4),
                                   _mm256_slli_epi16(_mm256_and_si256(hb, m03), 4));
            q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                                   _mm256_slli_epi16(_mm256_and_si256(hb, m0c), 2));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                   _mm256_and_si256(hb, m30));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                   _mm256_srli_epi16(_mm256_and_si256(hb, mc0), 2));
            for (int c = 0; c < 4; c++) {
                /* 32 elements = sub-blocks 8h+2c (lanes 0-7) and 8h+2c+1 */
                const __m256i y = _mm256_loadu_si256((const __m256i *)(const void *)(qy + 128 * h + 32 * c));
                const __m256i p = _mm256_maddubs_epi16(q[c], y); /* pairs <= 2*63*127 */
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, pick2_epi16(sc16, 2 * c)));
            }
        }
        const int32_t isum = hsum_epi32(acc);
        sum += (double)d * (float)isum;
    }
    *s = (float)sum;
}

/* ------------------------------------------------------------------------ */
/* F16C row conversions                                                      */
/* ------------------------------------------------------------------------ */

AVX2_FN void qeil_f16_to_f32_row_avx2(const uint16_t *src, float *dst, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(src + i))));
    for (; i < n; i++) dst[i] = _cvtsh_ss(src[i]);
}

AVX2_FN void qeil_f32_to_f16_row_avx2(const float *src, uint16_t *dst, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(void *)(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) dst[i] = _cvtss_sh(src[i], _MM_FROUND_TO_NEAREST_INT);
}

#else /* !QEIL_HAVE_X86_SIMD */

/* ISO C forbids an empty translation unit. */
typedef int qeil_dot_avx2_unused;

#endif
