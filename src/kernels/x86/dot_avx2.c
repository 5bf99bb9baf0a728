/*
 * dot_avx2.c — AVX2 + FMA + F16C dot products and register-tiled matmul
 * kernels (several rows x several activations per call), the tiled ones
 * also in an AVX-512-VNNI variant (256-bit vpdpbusd / vpdpwssd). Every
 * function carries its own target attribute, so this file builds with the
 * project's default flags and the library still runs on a CPU without
 * AVX2: qeil_vec_dot_for() / qeil_gemm_for() hand these out only after
 * CPUID says yes.
 *
 * All loads are unaligned (_mm*_loadu_*, memcpy for scalars): quantized
 * blocks of 18, 34 and 210 bytes sit at arbitrary addresses.
 *
 * Integer trick used throughout: _mm256_maddubs_epi16 multiplies unsigned
 * by signed bytes and adds adjacent pairs into int16. Operands are chosen so
 * that a pair never exceeds 2 * 128 * 127 = 32512 < 32767 (no saturation,
 * so the integer sums equal the scalar reference's exactly).
 */
#include "kernels/quant.h"

#if QEIL_HAVE_X86_SIMD

#include <immintrin.h>
#include <string.h>

#define AVX2_FN __attribute__((target("avx2,fma,f16c")))
/* AVX2 plus the 256-bit forms of AVX-512 VNNI (vpdpbusd on ymm, EVEX). */
#define VNNI_FN __attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512vnni")))

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
/* Q8_0 / Q4_0 · Q8_0: register-tiled kernels                                */
/* ------------------------------------------------------------------------ */

/* One definition per output element, shared by every tile shape and by the
 * AVX2 and AVX-512-VNNI variants, so a result never depends on which tile
 * (or thread) computed it:
 *
 *     acc0, acc1 (8 float lanes each) = 0
 *     for each block i:  acc_(i%2) = fma(splat(d_w,i * d_x,i), float(isum8_i), acc_(i%2))
 *     y = hsum_ps(acc0 + acc1)
 *
 * where isum8_i lane j is the exact integer sum of w*x over the block's
 * elements 4j..4j+3. d_w * d_x is a product of two f16 values, exact in
 * float. AVX2 gets isum8 from maddubs + madd, VNNI from one vpdpbusd; both
 * are exact integer sums of the same four products, so the two variants
 * return the same bits (and the same as the one-row kernel of earlier
 * versions, which used this definition). The float order differs from the
 * scalar reference's (which sums one float per block): tolerance, not bits.
 *
 * Signs: maddubs/vpdpbusd multiply an unsigned byte by a signed one.
 * Q4_0: u = nibble (0..15), s = x, and sum (u - 8) x = sum u x - 8 sum x;
 * "base" holds -8 sum x per lane (once per activation block). Q8_0 on AVX2:
 * u = |w|, s = sign(x, w) (pairs <= 2 * 128 * 127, no saturation). Q8_0 on
 * VNNI: u = w + 128 (w ^ 0x80), base = -128 sum x (int32 lanes, no
 * saturation in vpdpbusd). Q5_0: u = 5-bit code (0..31, pairs <= 2 * 31 *
 * 127), base = -16 sum x. IQ4_NL: the nibbles index its 16 levels with one
 * VPSHUFB (|level| <= 127), then exactly Q8_0's scheme. Q4_1 / Q5_1: u =
 * code, no base; their min term goes to a float sum of its own (below). */

/* A tile reads R rows side by side: R short streams where row-by-row code
 * read one long one, and the hardware prefetchers lose most of their
 * lead (Q4_0 decode from DRAM fell from 8.9 to 7.5 GB/s per core without
 * this). Rows of a matrix are contiguous, so while a tile works on rows
 * [r, r + R) it prefetches the next R rows linearly, at the pace it
 * consumes its own: one tile of lead. Prefetches never fault, so running
 * past the end of the matrix is harmless. */
static inline __attribute__((always_inline)) void prefetch_span(const uint8_t *p, size_t bytes)
{
    for (size_t o = 0; o < bytes; o += 64) __builtin_prefetch(p + o, 0, 3);
}

AVX2_FN static inline __m256i udot_avx2(__m256i base, __m256i u, __m256i s)
{
    return _mm256_add_epi32(base, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
}

VNNI_FN static inline __m256i udot_vnni(__m256i base, __m256i u, __m256i s)
{
    return _mm256_dpbusd_epi32(base, u, s);
}

#define QK_Q4_0 0
#define QK_Q8_0 1
#define QK_Q5_0 2 /* u = 5-bit code, base = -16 sum x */
#define QK_Q4_1 3 /* u = nibble, no base; + m_w s_x per block (Q8_1 activations) */
#define QK_Q5_1 4 /* u = 5-bit code, no base; + m_w s_x per block (Q8_1 activations) */
#define QK_IQ4_NL 5 /* levels looked up (VPSHUFB) from the nibbles, then as Q8_0 */

/* Q4_1 / Q5_1 add, per block and in block order, the float product of the
 * weight's min and the activation's s = d_x sum x to a separate float sum,
 * which joins the vector sum at the end:
 *
 *     y = hsum_ps(acc0 + acc1) + sum_i m_w,i * s_x,i
 *
 * (the same for every tile shape and both variants). */
#define Q0_HAS_MIN(kind) ((kind) == QK_Q4_1 || (kind) == QK_Q5_1)
/* Activations: Q8_1 (36 bytes, q at 4) for the kinds with a min, else Q8_0. */
#define Q0_XB(kind) (Q0_HAS_MIN(kind) ? QEIL_Q8_1_BYTES : QEIL_Q8_0_BYTES)
#define Q0_XQ(kind) (Q0_HAS_MIN(kind) ? 4 : 2)
/* Weights: block bytes, offset of the 16 nibble bytes, of the qh word. */
#define Q0_WB(kind)                                                                               \
    ((kind) == QK_Q4_0 ? QEIL_Q4_0_BYTES : (kind) == QK_Q8_0 ? QEIL_Q8_0_BYTES                   \
     : (kind) == QK_Q5_0 ? QEIL_Q5_0_BYTES : (kind) == QK_Q4_1 ? QEIL_Q4_1_BYTES                 \
     : (kind) == QK_IQ4_NL ? QEIL_IQ4_NL_BYTES : QEIL_Q5_1_BYTES)
/* Weights as signed bytes (Q8_0, and IQ4_NL after the lookup). */
#define Q0_SIGNED(kind) ((kind) == QK_Q8_0 || (kind) == QK_IQ4_NL)
#define Q0_QS(kind) ((kind) == QK_Q5_0 ? 6 : (kind) == QK_Q5_1 ? 8 : (kind) == QK_Q4_1 ? 4 : 2)
#define Q0_QH(kind) ((kind) == QK_Q5_0 ? 2 : 4)

/* The 32 bits at p as 32 bytes: byte j = 0x10 when bit j is set, else 0
 * (each byte picks its word byte j / 8, then tests bit j % 8). */
AVX2_FN static inline __m256i q5_high_bits(const uint8_t *p)
{
    uint32_t h;
    memcpy(&h, p, sizeof h);
    const __m256i sel = _mm256_setr_epi64x(0, 0x0101010101010101LL, 0x0202020202020202LL,
                                           0x0303030303030303LL);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    const __m256i v = _mm256_and_si256(_mm256_shuffle_epi8(_mm256_set1_epi32((int)h), sel), bit);
    return _mm256_and_si256(_mm256_cmpeq_epi8(v, bit), _mm256_set1_epi8(0x10));
}

/* R x C tile: y[c * ys + r] = dot(row r, activation c); R, C <= 4 are
 * constants after inlining, so acc[][] lives in registers. */
/* One block into accumulators A (acc0 for even blocks, acc1 for odd). */
#define Q0_BLOCK(A, IDX, UDOT, VNNI)                                                                        \
    do {                                                                                          \
        const int64_t bi = (IDX);                                                                 \
        __m256i xq[4], xb[4], u[4], sw[4];                                                        \
        __m256 dx[4], dw[4];                                                                      \
        float sx[4], mw[4];                                                                       \
        _Pragma("GCC unroll 4") for (int c = 0; c < C; c++)                                       \
        {                                                                                         \
            const uint8_t *px = x + (size_t)c * xs + (size_t)bi * Q0_XB(kind);                    \
            dx[c] = _mm256_set1_ps(f16_at(px));                                                   \
            if (Q0_HAS_MIN(kind)) sx[c] = f16_at(px + 2);                                         \
            xq[c] = _mm256_loadu_si256((const __m256i *)(const void *)(px + Q0_XQ(kind)));        \
            if (kind == QK_Q4_0 || kind == QK_Q5_0)                                               \
                xb[c] = _mm256_sub_epi32(_mm256_setzero_si256(),                                  \
                                         _mm256_slli_epi32(UDOT(_mm256_setzero_si256(), ones, xq[c]), \
                                                           kind == QK_Q4_0 ? 3 : 4));             \
            else if (Q0_SIGNED(kind) && VNNI)                                                     \
                xb[c] = _mm256_sub_epi32(_mm256_setzero_si256(),                                  \
                                         _mm256_slli_epi32(UDOT(_mm256_setzero_si256(), ones, xq[c]), 7)); \
            else                                                                                  \
                xb[c] = _mm256_setzero_si256();                                                   \
        }                                                                                         \
        _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                                       \
        {                                                                                         \
            const uint8_t *pw = w + (size_t)r * ws + (size_t)bi * wb;                             \
            dw[r] = _mm256_set1_ps(f16_at(pw));                                                   \
            if (Q0_HAS_MIN(kind)) mw[r] = f16_at(pw + 2);                                         \
            if (kind == QK_IQ4_NL) {                                                              \
                const __m128i raw = _mm_loadu_si128((const __m128i *)(const void *)(pw + 2));     \
                sw[r] = _mm256_shuffle_epi8(                                                      \
                    kv, _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), m4));     \
                u[r] = VNNI ? _mm256_xor_si256(sw[r], flip) : _mm256_sign_epi8(sw[r], sw[r]);     \
            } else if (kind != QK_Q8_0) {                                                         \
                const __m128i raw = _mm_loadu_si128((const __m128i *)(const void *)(pw + Q0_QS(kind))); \
                u[r] = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), m4);       \
                if (kind == QK_Q5_0 || kind == QK_Q5_1)                                           \
                    u[r] = _mm256_or_si256(u[r], q5_high_bits(pw + Q0_QH(kind)));                 \
                sw[r] = u[r];                                                                     \
            } else {                                                                              \
                sw[r] = _mm256_loadu_si256((const __m256i *)(const void *)(pw + 2));              \
                u[r] = VNNI ? _mm256_xor_si256(sw[r], flip) : _mm256_sign_epi8(sw[r], sw[r]);     \
            }                                                                                     \
        }                                                                                         \
        _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                                       \
            _Pragma("GCC unroll 4") for (int c = 0; c < C; c++)                                   \
        {                                                                                         \
            const __m256i s = (Q0_SIGNED(kind) && !VNNI) ? _mm256_sign_epi8(xq[c], sw[r]) : xq[c]; \
            const __m256i isum = UDOT(xb[c], u[r], s);                                            \
            A[r][c] = _mm256_fmadd_ps(_mm256_mul_ps(dw[r], dx[c]), _mm256_cvtepi32_ps(isum), A[r][c]); \
            if (Q0_HAS_MIN(kind)) msum[r][c] += mw[r] * sx[c];                                    \
        }                                                                                         \
    } while (0)

#define DEFINE_Q0_TILE(NAME, ATTR, UDOT, VNNI)                                                    \
    ATTR static inline __attribute__((always_inline)) void NAME(                                  \
        int kind, int64_t nb, const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, float *y,  \
        size_t ys, const int R, const int C)                                                      \
    {                                                                                             \
        const size_t wb = Q0_WB(kind);                                                            \
        const __m256i m4 = _mm256_set1_epi8(0x0f), ones = _mm256_set1_epi8(1);                    \
        const __m256i flip = _mm256_set1_epi8((char)0x80);                                         \
        const __m256i kv = _mm256_broadcastsi128_si256(                                           \
            _mm_loadu_si128((const __m128i *)(const void *)qeil_kvalues_iq4nl));                  \
        __m256 acc0[4][4], acc1[4][4];                                                            \
        float msum[4][4];                                                                         \
        _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                                       \
            _Pragma("GCC unroll 4") for (int c = 0; c < C; c++)                                   \
        {                                                                                         \
            acc0[r][c] = acc1[r][c] = _mm256_setzero_ps();                                        \
            msum[r][c] = 0.0f;                                                                    \
        }                                                                                         \
        int64_t i = 0;                                                                            \
        for (; i + 2 <= nb; i += 2) {                                                             \
            prefetch_span(w + (size_t)R * ws + (size_t)i * R * wb, 2 * (size_t)R * wb);           \
            Q0_BLOCK(acc0, i, UDOT, VNNI);                                                                    \
            Q0_BLOCK(acc1, i + 1, UDOT, VNNI);                                                                \
        }                                                                                         \
        if (i < nb) Q0_BLOCK(acc0, i, UDOT, VNNI);                                                            \
        _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                                       \
            _Pragma("GCC unroll 4") for (int c = 0; c < C; c++)                                   \
        {                                                                                         \
            const float v = hsum_ps(_mm256_add_ps(acc0[r][c], acc1[r][c]));                       \
            y[(size_t)c * ys + r] = Q0_HAS_MIN(kind) ? v + msum[r][c] : v;                        \
        }                                                                                         \
    }

DEFINE_Q0_TILE(q0_tile_avx2, AVX2_FN, udot_avx2, 0)
DEFINE_Q0_TILE(q0_tile_vnni, VNNI_FN, udot_vnni, 1)

/* Any nr, nc in 1..4 from the fixed shapes 4x4, 4x1, 1x4, 1x1 (every
 * element is computed the same way in each, see above). */
#define DEFINE_Q0_GEMM(NAME, ATTR, TILE, KIND, RT, CT)                                            \
    ATTR void NAME(int64_t n, int nr, int nc, const void *w, size_t ws, const void *x, size_t xs, \
                   float *y, size_t ys)                                                          \
    {                                                                                            \
        const int64_t nb = n / QEIL_QK8_0;                                                       \
        const uint8_t *bw = w, *bx = x;                                                          \
        int r = 0;                                                                               \
        for (; r + RT <= nr; r += RT) {                                                          \
            int c = 0;                                                                           \
            for (; c + CT <= nc; c += CT)                                                        \
                TILE(KIND, nb, bw + r * ws, ws, bx + c * xs, xs, y + c * ys + r, ys, RT, CT);     \
            for (; c < nc; c++)                                                                  \
                TILE(KIND, nb, bw + r * ws, ws, bx + c * xs, xs, y + c * ys + r, ys, RT, 1);      \
        }                                                                                        \
        for (; r < nr; r++) {                                                                    \
            int c = 0;                                                                           \
            for (; c + CT <= nc; c += CT)                                                        \
                TILE(KIND, nb, bw + r * ws, ws, bx + c * xs, xs, y + c * ys + r, ys, 1, CT);      \
            for (; c < nc; c++)                                                                  \
                TILE(KIND, nb, bw + r * ws, ws, bx + c * xs, xs, y + c * ys + r, ys, 1, 1);       \
        }                                                                                        \
    }

/* Two accumulators per element: AVX2 (16 ymm registers) 2 x 2 tiles;
 * AVX-512VL (32) 4 x 2. */
DEFINE_Q0_GEMM(qeil_gemm_q4_0_avx2, AVX2_FN, q0_tile_avx2, QK_Q4_0, 2, 2)
DEFINE_Q0_GEMM(qeil_gemm_q8_0_avx2, AVX2_FN, q0_tile_avx2, QK_Q8_0, 2, 2)
DEFINE_Q0_GEMM(qeil_gemm_q4_0_vnni, VNNI_FN, q0_tile_vnni, QK_Q4_0, 4, 2)
DEFINE_Q0_GEMM(qeil_gemm_q8_0_vnni, VNNI_FN, q0_tile_vnni, QK_Q8_0, 4, 2)
DEFINE_Q0_GEMM(qeil_gemm_q5_0_avx2, AVX2_FN, q0_tile_avx2, QK_Q5_0, 2, 2)
DEFINE_Q0_GEMM(qeil_gemm_q4_1_avx2, AVX2_FN, q0_tile_avx2, QK_Q4_1, 2, 2)
DEFINE_Q0_GEMM(qeil_gemm_q5_1_avx2, AVX2_FN, q0_tile_avx2, QK_Q5_1, 2, 2)
DEFINE_Q0_GEMM(qeil_gemm_q5_0_vnni, VNNI_FN, q0_tile_vnni, QK_Q5_0, 4, 2)
DEFINE_Q0_GEMM(qeil_gemm_q4_1_vnni, VNNI_FN, q0_tile_vnni, QK_Q4_1, 4, 2)
DEFINE_Q0_GEMM(qeil_gemm_q5_1_vnni, VNNI_FN, q0_tile_vnni, QK_Q5_1, 4, 2)
DEFINE_Q0_GEMM(qeil_gemm_iq4_nl_avx2, AVX2_FN, q0_tile_avx2, QK_IQ4_NL, 2, 2)
DEFINE_Q0_GEMM(qeil_gemm_iq4_nl_vnni, VNNI_FN, q0_tile_vnni, QK_IQ4_NL, 4, 2)

AVX2_FN void qeil_vec_dot_q8_0_avx2(int64_t n, float *s, const void *w, const void *x)
{
    q0_tile_avx2(QK_Q8_0, n / QEIL_QK8_0, w, 0, x, 0, s, 0, 1, 1);
}

AVX2_FN void qeil_vec_dot_q4_0_avx2(int64_t n, float *s, const void *w, const void *x)
{
    q0_tile_avx2(QK_Q4_0, n / QEIL_QK4_0, w, 0, x, 0, s, 0, 1, 1);
}

AVX2_FN void qeil_vec_dot_q5_0_avx2(int64_t n, float *s, const void *w, const void *x)
{
    q0_tile_avx2(QK_Q5_0, n / QEIL_QK5, w, 0, x, 0, s, 0, 1, 1);
}

AVX2_FN void qeil_vec_dot_iq4_nl_avx2(int64_t n, float *s, const void *w, const void *x)
{
    q0_tile_avx2(QK_IQ4_NL, n / QEIL_QK5, w, 0, x, 0, s, 0, 1, 1);
}

AVX2_FN void qeil_vec_dot_q4_1_avx2(int64_t n, float *s, const void *w, const void *x)
{
    q0_tile_avx2(QK_Q4_1, n / QEIL_QK5, w, 0, x, 0, s, 0, 1, 1);
}

AVX2_FN void qeil_vec_dot_q5_1_avx2(int64_t n, float *s, const void *w, const void *x)
{
    q0_tile_avx2(QK_Q5_1, n / QEIL_QK5, w, 0, x, 0, s, 0, 1, 1);
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

/* ------------------------------------------------------------------------ */
/* Q4_K · Q8_K: register-tiled kernels                                       */
/* ------------------------------------------------------------------------ */

/* Per element the reference's definition (exact integer sums per
 * super-block, then its double expression), so every tile shape, both
 * variants and the scalar reference agree bit for bit. A tile unpacks a
 * row's scales and nibbles once for all its activations and loads each
 * activation chunk once for all its rows. VNNI: vpdpwssd fuses the
 * scale multiply (madd) with the accumulate. */
AVX2_FN static inline __m256i madd_acc_avx2(__m256i acc, __m256i p16, __m256i s16)
{
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p16, s16));
}

VNNI_FN static inline __m256i madd_acc_vnni(__m256i acc, __m256i p16, __m256i s16)
{
    return _mm256_dpwssd_epi32(acc, p16, s16);
}

#define DEFINE_Q4K_TILE(NAME, ATTR, MADD_ACC, FIVE)                                               \
    ATTR static inline __attribute__((always_inline)) void NAME(                                  \
        int64_t nb, const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, float *y, size_t ys, \
        const int R, const int C)                                                                 \
    {                                                                                             \
        const __m256i m4 = _mm256_set1_epi8(0x0f);                                                \
        const __m256i h1 = _mm256_set1_epi8(0x01), h2 = _mm256_set1_epi8(0x02);                   \
        const size_t BB = FIVE ? QEIL_Q5_K_BYTES : QEIL_Q4_K_BYTES;                               \
        double sum[4][4];                                                                         \
        _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                                       \
            _Pragma("GCC unroll 4") for (int c = 0; c < C; c++) sum[r][c] = 0.0;                  \
        for (int64_t i = 0; i < nb; i++) {                                                        \
            prefetch_span(w + (size_t)R * ws + (size_t)i * R * BB, (size_t)R * BB); \
            float dx[4], dw[4], dmw[4];                                                           \
            __m128i bp[4], m16[4];                                                                \
            __m256i sc16[4], acc[4][4], qh[4];                                                    \
            _Pragma("GCC unroll 4") for (int c = 0; c < C; c++)                                   \
            {                                                                                     \
                const uint8_t *bx = x + (size_t)c * xs + (size_t)i * QEIL_Q8_K_BYTES;             \
                memcpy(&dx[c], bx, sizeof dx[c]);                                                 \
                const __m128i b0 = _mm_loadu_si128((const __m128i *)(const void *)(bx + 260));    \
                const __m128i b1 = _mm_loadu_si128((const __m128i *)(const void *)(bx + 276));    \
                bp[c] = _mm_hadd_epi16(b0, b1); /* pair sums <= 2 * 16 * 127 fit int16 */         \
            }                                                                                     \
            _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                                   \
            {                                                                                     \
                const uint8_t *bw = w + (size_t)r * ws + (size_t)i * BB;             \
                dw[r] = f16_at(bw);                                                               \
                dmw[r] = f16_at(bw + 2);                                                          \
                uint32_t sm[4];                                                                   \
                qeil_q4_k_unpack_scales(bw + 4, sm); /* bytes: sc[0..7], m[0..7] */               \
                const __m128i sm8 = _mm_loadu_si128((const __m128i *)(const void *)sm);           \
                sc16[r] = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm8));                    \
                m16[r] = _mm_cvtepu8_epi16(_mm_srli_si128(sm8, 8));                               \
                if (FIVE) qh[r] = _mm256_loadu_si256((const __m256i *)(const void *)(bw + 16));   \
                _Pragma("GCC unroll 4") for (int c = 0; c < C; c++) acc[r][c] =                   \
                    _mm256_setzero_si256();                                                       \
            }                                                                                     \
            _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++)                                   \
            {                                                                                     \
                __m256i lo[4], hi[4], s0[4], s1[4], y0[4], y1[4];                                 \
                _Pragma("GCC unroll 4") for (int c = 0; c < C; c++)                               \
                {                                                                                 \
                    const uint8_t *qy = x + (size_t)c * xs + (size_t)i * QEIL_Q8_K_BYTES + 4;     \
                    y0[c] = _mm256_loadu_si256((const __m256i *)(const void *)(qy + 64 * k));     \
                    y1[c] = _mm256_loadu_si256((const __m256i *)(const void *)(qy + 64 * k + 32)); \
                }                                                                                 \
                _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                               \
                {                                                                                 \
                    const uint8_t *qs = w + (size_t)r * ws + (size_t)i * BB + (FIVE ? 48 : 16);    \
                    const __m256i q4 = _mm256_loadu_si256((const __m256i *)(const void *)(qs + 32 * k)); \
                    lo[r] = _mm256_and_si256(q4, m4);                                             \
                    hi[r] = _mm256_and_si256(_mm256_srli_epi16(q4, 4), m4);                       \
                    if (FIVE) { /* bits 2k, 2k+1 of qh: 16-bit shifts, bits 0-1 stay the byte's */ \
                        lo[r] = _mm256_or_si256(lo[r], _mm256_slli_epi16(_mm256_and_si256(qh[r], h1), 4)); \
                        hi[r] = _mm256_or_si256(hi[r], _mm256_slli_epi16(_mm256_and_si256(qh[r], h2), 3)); \
                        qh[r] = _mm256_srli_epi16(qh[r], 2);                                      \
                    }                                                                             \
                    s0[r] = pick_epi16(sc16[r], 2 * k);                                           \
                    s1[r] = pick_epi16(sc16[r], 2 * k + 1);                                       \
                }                                                                                 \
                _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                               \
                    _Pragma("GCC unroll 4") for (int c = 0; c < C; c++)                           \
                {                                                                                 \
                    /* pairs <= 2 * 31 * 127: no saturation */                                    \
                    acc[r][c] = MADD_ACC(acc[r][c], _mm256_maddubs_epi16(lo[r], y0[c]), s0[r]);   \
                    acc[r][c] = MADD_ACC(acc[r][c], _mm256_maddubs_epi16(hi[r], y1[c]), s1[r]);   \
                }                                                                                 \
            }                                                                                     \
            _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                                   \
                _Pragma("GCC unroll 4") for (int c = 0; c < C; c++)                               \
            {                                                                                     \
                const int32_t isum = hsum_epi32(acc[r][c]);                                       \
                const int32_t summin = hsum128_epi32(_mm_madd_epi16(bp[c], m16[r]));              \
                const float d = dx[c] * dw[r], dmin = dx[c] * dmw[r];                             \
                sum[r][c] += (double)d * (float)isum - (double)dmin * (float)summin;              \
            }                                                                                     \
        }                                                                                         \
        _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                                       \
            _Pragma("GCC unroll 4") for (int c = 0; c < C; c++) y[(size_t)c * ys + r] =           \
                (float)sum[r][c];                                                                 \
    }

DEFINE_Q4K_TILE(q4k_tile_avx2, AVX2_FN, madd_acc_avx2, 0)
DEFINE_Q4K_TILE(q4k_tile_vnni, VNNI_FN, madd_acc_vnni, 0)
/* Q5_K: the same with the 5th bits of qh[l] (bit 2k + h for chunk k, half
 * h) or-ed in as bit 4. */
DEFINE_Q4K_TILE(q5k_tile_avx2, AVX2_FN, madd_acc_avx2, 1)
DEFINE_Q4K_TILE(q5k_tile_vnni, VNNI_FN, madd_acc_vnni, 1)

/* Any nr, nc in 1..4: RT x CT tiles, then RT x 1 (the one-vector case of
 * decode), then single rows. */
#define DEFINE_GEMM(NAME, ATTR, TILE, BLK, RT, CT)                                                 \
    ATTR void NAME(int64_t n, int nr, int nc, const void *w, size_t ws, const void *x, size_t xs,  \
                   float *y, size_t ys)                                                           \
    {                                                                                             \
        const int64_t nb = n / (BLK);                                                             \
        const uint8_t *bw = w, *bx = x;                                                           \
        int r = 0;                                                                                \
        for (; r + RT <= nr; r += RT) {                                                           \
            int c = 0;                                                                            \
            for (; c + CT <= nc; c += CT)                                                         \
                TILE(nb, bw + r * ws, ws, bx + c * xs, xs, y + c * ys + r, ys, RT, CT);           \
            for (; c < nc; c++) TILE(nb, bw + r * ws, ws, bx + c * xs, xs, y + c * ys + r, ys, RT, 1); \
        }                                                                                         \
        for (; r < nr; r++) {                                                                     \
            int c = 0;                                                                            \
            for (; c + CT <= nc; c += CT)                                                         \
                TILE(nb, bw + r * ws, ws, bx + c * xs, xs, y + c * ys + r, ys, 1, CT);            \
            for (; c < nc; c++) TILE(nb, bw + r * ws, ws, bx + c * xs, xs, y + c * ys + r, ys, 1, 1); \
        }                                                                                         \
    }

DEFINE_GEMM(qeil_gemm_q4_k_avx2, AVX2_FN, q4k_tile_avx2, QEIL_QK_K, 2, 2)
DEFINE_GEMM(qeil_gemm_q4_k_vnni, VNNI_FN, q4k_tile_vnni, QEIL_QK_K, 4, 2)
DEFINE_GEMM(qeil_gemm_q5_k_avx2, AVX2_FN, q5k_tile_avx2, QEIL_QK_K, 2, 2)
DEFINE_GEMM(qeil_gemm_q5_k_vnni, VNNI_FN, q5k_tile_vnni, QEIL_QK_K, 4, 2)

/* One row, one vector: the tile's (and the reference's) bits. */
AVX2_FN void qeil_vec_dot_q5_k_avx2(int64_t n, float *s, const void *w, const void *x)
{
    q5k_tile_avx2(n / QEIL_QK_K, w, 0, x, 0, s, 0, 1, 1);
}

/* IQ4_XS · Q8_K tiles: per sub-block the 32 levels (VPSHUFB of the
 * nibbles, low lane elements 0..15, high 16..31, as the activations lie),
 * |level| as the unsigned operand and the sign moved onto y (pairs <= 2 *
 * 127 * 127), VPMADDWD / VPDPWSSD with the broadcast ls - 32; integer sum
 * per super-block, then the reference's double expression: its bits. */
#define DEFINE_IQ4XS_TILE(NAME, ATTR, MADD_ACC)                                                    \
    ATTR static inline __attribute__((always_inline)) void NAME(                                  \
        int64_t nb, const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, float *y, size_t ys, \
        const int R, const int C)                                                                 \
    {                                                                                             \
        const __m256i m4 = _mm256_set1_epi8(0x0f);                                                \
        const __m256i kv = _mm256_broadcastsi128_si256(                                           \
            _mm_loadu_si128((const __m128i *)(const void *)qeil_kvalues_iq4nl));                  \
        double sum[4][4];                                                                         \
        _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                                       \
            _Pragma("GCC unroll 4") for (int c = 0; c < C; c++) sum[r][c] = 0.0;                  \
        for (int64_t i = 0; i < nb; i++) {                                                        \
            prefetch_span(w + (size_t)R * ws + (size_t)i * R * QEIL_IQ4_XS_BYTES, (size_t)R * QEIL_IQ4_XS_BYTES); \
            float dx[4], dw[4];                                                                   \
            int sc[4][8];                                                                         \
            __m256i acc[4][4];                                                                    \
            _Pragma("GCC unroll 4") for (int c = 0; c < C; c++)                                   \
                memcpy(&dx[c], x + (size_t)c * xs + (size_t)i * QEIL_Q8_K_BYTES, sizeof dx[c]);   \
            _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                                   \
            {                                                                                     \
                const uint8_t *bw = w + (size_t)r * ws + (size_t)i * QEIL_IQ4_XS_BYTES;           \
                dw[r] = f16_at(bw);                                                               \
                qeil_iq4_xs_scales(bw, sc[r]);                                                    \
                _Pragma("GCC unroll 4") for (int c = 0; c < C; c++) acc[r][c] = _mm256_setzero_si256(); \
            }                                                                                     \
            for (int ib = 0; ib < 8; ib++) {                                                      \
                __m256i lv[4], s16[4], yk[4];                                                     \
                _Pragma("GCC unroll 4") for (int c = 0; c < C; c++) yk[c] = _mm256_loadu_si256(   \
                    (const __m256i *)(const void *)(x + (size_t)c * xs + (size_t)i * QEIL_Q8_K_BYTES + 4 + 32 * ib)); \
                _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                               \
                {                                                                                 \
                    const __m128i raw = _mm_loadu_si128((const __m128i *)(const void *)(          \
                        w + (size_t)r * ws + (size_t)i * QEIL_IQ4_XS_BYTES + 8 + 16 * ib));       \
                    lv[r] = _mm256_shuffle_epi8(                                                  \
                        kv, _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), m4)); \
                    s16[r] = _mm256_set1_epi16((short)sc[r][ib]);                                 \
                }                                                                                 \
                _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                               \
                    _Pragma("GCC unroll 4") for (int c = 0; c < C; c++)                           \
                        acc[r][c] = MADD_ACC(acc[r][c],                                           \
                                             _mm256_maddubs_epi16(_mm256_sign_epi8(lv[r], lv[r]), \
                                                                  _mm256_sign_epi8(yk[c], lv[r])), \
                                             s16[r]);                                             \
            }                                                                                     \
            _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                                   \
                _Pragma("GCC unroll 4") for (int c = 0; c < C; c++)                               \
            {                                                                                     \
                const float d = dx[c] * dw[r];                                                    \
                sum[r][c] += (double)d * (float)hsum_epi32(acc[r][c]);                            \
            }                                                                                     \
        }                                                                                         \
        _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                                       \
            _Pragma("GCC unroll 4") for (int c = 0; c < C; c++) y[(size_t)c * ys + r] =           \
                (float)sum[r][c];                                                                 \
    }

DEFINE_IQ4XS_TILE(iq4xs_tile_avx2, AVX2_FN, madd_acc_avx2)
DEFINE_IQ4XS_TILE(iq4xs_tile_vnni, VNNI_FN, madd_acc_vnni)
DEFINE_GEMM(qeil_gemm_iq4_xs_avx2, AVX2_FN, iq4xs_tile_avx2, QEIL_QK_K, 2, 2)
DEFINE_GEMM(qeil_gemm_iq4_xs_vnni, VNNI_FN, iq4xs_tile_vnni, QEIL_QK_K, 4, 2)

AVX2_FN void qeil_vec_dot_iq4_xs_avx2(int64_t n, float *s, const void *w, const void *x)
{
    iq4xs_tile_avx2(n / QEIL_QK_K, w, 0, x, 0, s, 0, 1, 1);
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

/* Q6_K · Q8_K tiles: the reference's definition per element (as the Q4_K
 * tiles), the one-row kernel's integer scheme (q in 0..63, -32 * sum of
 * scales * bsums taken out up front). */
#define DEFINE_Q6K_TILE(NAME, ATTR, MADD_ACC)                                                     \
    ATTR static inline __attribute__((always_inline)) void NAME(                                  \
        int64_t nb, const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, float *y, size_t ys, \
        const int R, const int C)                                                                 \
    {                                                                                             \
        const __m256i m4 = _mm256_set1_epi8(0x0f);                                                \
        const __m256i m03 = _mm256_set1_epi8(0x03), m0c = _mm256_set1_epi8(0x0c);                 \
        const __m256i m30 = _mm256_set1_epi8(0x30), mc0 = _mm256_set1_epi8((char)0xc0);           \
        double sum[4][4];                                                                         \
        _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                                       \
            _Pragma("GCC unroll 4") for (int c = 0; c < C; c++) sum[r][c] = 0.0;                  \
        for (int64_t i = 0; i < nb; i++) {                                                        \
            prefetch_span(w + (size_t)R * ws + (size_t)i * R * QEIL_Q6_K_BYTES, (size_t)R * QEIL_Q6_K_BYTES); \
            float dx[4], dw[4];                                                                   \
            __m256i bs[4], scw[4], acc[4][4];                                                     \
            __m128i sc8[4];                                                                       \
            _Pragma("GCC unroll 4") for (int c = 0; c < C; c++)                                   \
            {                                                                                     \
                const uint8_t *bx = x + (size_t)c * xs + (size_t)i * QEIL_Q8_K_BYTES;             \
                memcpy(&dx[c], bx, sizeof dx[c]);                                                 \
                bs[c] = _mm256_loadu_si256((const __m256i *)(const void *)(bx + 260));            \
            }                                                                                     \
            _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                                   \
            {                                                                                     \
                const uint8_t *bw = w + (size_t)r * ws + (size_t)i * QEIL_Q6_K_BYTES;             \
                dw[r] = f16_at(bw + 208);                                                         \
                sc8[r] = _mm_loadu_si128((const __m128i *)(const void *)(bw + 192));              \
                scw[r] = _mm256_cvtepi8_epi16(sc8[r]);                                            \
                _Pragma("GCC unroll 4") for (int c = 0; c < C; c++) acc[r][c] = _mm256_sub_epi32( \
                    _mm256_setzero_si256(), _mm256_slli_epi32(_mm256_madd_epi16(scw[r], bs[c]), 5)); \
            }                                                                                     \
            _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++)                                   \
            {                                                                                     \
                __m256i l0[4], l1[4], hb[4], sc16[4];                                             \
                _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                               \
                {                                                                                 \
                    const uint8_t *bw = w + (size_t)r * ws + (size_t)i * QEIL_Q6_K_BYTES;         \
                    l0[r] = _mm256_loadu_si256((const __m256i *)(const void *)(bw + 64 * h));     \
                    l1[r] = _mm256_loadu_si256((const __m256i *)(const void *)(bw + 64 * h + 32)); \
                    hb[r] = _mm256_loadu_si256((const __m256i *)(const void *)(bw + 128 + 32 * h)); \
                    sc16[r] = _mm256_broadcastsi128_si256(                                        \
                        _mm_cvtepi8_epi16(h ? _mm_srli_si128(sc8[r], 8) : sc8[r]));               \
                }                                                                                 \
                _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++)                               \
                {                                                                                 \
                    __m256i yk[4], q[4], s[4];                                                    \
                    _Pragma("GCC unroll 4") for (int c = 0; c < C; c++) yk[c] = _mm256_loadu_si256( \
                        (const __m256i *)(const void *)(x + (size_t)c * xs + (size_t)i * QEIL_Q8_K_BYTES + \
                                                        4 + 128 * h + 32 * k));                   \
                    _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                           \
                    {                                                                             \
                        /* 16-bit shifts stay inside bytes: crossing bits are masked first */     \
                        if (k == 0)                                                               \
                            q[r] = _mm256_or_si256(_mm256_and_si256(l0[r], m4),                   \
                                                   _mm256_slli_epi16(_mm256_and_si256(hb[r], m03), 4)); \
                        else if (k == 1)                                                          \
                            q[r] = _mm256_or_si256(_mm256_and_si256(l1[r], m4),                   \
                                                   _mm256_slli_epi16(_mm256_and_si256(hb[r], m0c), 2)); \
                        else if (k == 2)                                                          \
                            q[r] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0[r], 4), m4), \
                                                   _mm256_and_si256(hb[r], m30));                 \
                        else                                                                      \
                            q[r] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1[r], 4), m4), \
                                                   _mm256_srli_epi16(_mm256_and_si256(hb[r], mc0), 2)); \
                        s[r] = pick2_epi16(sc16[r], 2 * k);                                       \
                    }                                                                             \
                    _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                           \
                        _Pragma("GCC unroll 4") for (int c = 0; c < C; c++)                       \
                    /* pairs <= 2 * 63 * 127 */                                                   \
                        acc[r][c] = MADD_ACC(acc[r][c], _mm256_maddubs_epi16(q[r], yk[c]), s[r]); \
                }                                                                                 \
            }                                                                                     \
            _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                                   \
                _Pragma("GCC unroll 4") for (int c = 0; c < C; c++)                               \
            {                                                                                     \
                const float d = dx[c] * dw[r];                                                    \
                sum[r][c] += (double)d * (float)hsum_epi32(acc[r][c]);                            \
            }                                                                                     \
        }                                                                                         \
        _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                                       \
            _Pragma("GCC unroll 4") for (int c = 0; c < C; c++) y[(size_t)c * ys + r] =           \
                (float)sum[r][c];                                                                 \
    }

DEFINE_Q6K_TILE(q6k_tile_avx2, AVX2_FN, madd_acc_avx2)
DEFINE_Q6K_TILE(q6k_tile_vnni, VNNI_FN, madd_acc_vnni)

DEFINE_GEMM(qeil_gemm_q6_k_avx2, AVX2_FN, q6k_tile_avx2, QEIL_QK_K, 2, 2)
DEFINE_GEMM(qeil_gemm_q6_k_vnni, VNNI_FN, q6k_tile_vnni, QEIL_QK_K, 4, 2)

/* ------------------------------------------------------------------------ */
/* F16C row conversions                                                      */
/* Activation quantizer, Q8_0, with exactly qeil_quantize_row_q8_0's
 * results: amax = max |x| ignoring NaN (MAXPS returns its second operand,
 * the running max, when the new value is NaN, as fmaxf ignores it); d and
 * 1/d in scalar float as there; q = clamp(x/d, -127, 127) (MAXPS with the
 * bound second: NaN -> -127, as round_clamp) rounded half away from zero
 * as roundf: trunc(t + copysign(0.49999997, t)). Adding the float just
 * below 0.5 never carries a fraction under one half to the next integer,
 * and a fraction of exactly one half reaches it (at |t| < 1 through the
 * tie 0.99999997 -> 1.0, round-to-even). Checked against the scalar
 * version on halves, their neighbours, NaN, infinities and random rows. */
AVX2_FN void qeil_quantize_row_q8_0_avx2(const float *src, void *dst, int64_t n)
{
    const __m256 sign = _mm256_set1_ps(-0.0f), lo = _mm256_set1_ps(-127.0f);
    const __m256 hi = _mm256_set1_ps(127.0f), half = _mm256_set1_ps(0.49999997f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / QEIL_QK8_0; i++, b += QEIL_Q8_0_BYTES) {
        const float *x = src + i * QEIL_QK8_0;
        __m256 v[4], m = _mm256_setzero_ps();
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(x + 8 * k);
            m = _mm256_max_ps(_mm256_andnot_ps(sign, v[k]), m);
        }
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        const uint16_t h = qeil_f32_to_f16(d);
        memcpy(b, &h, sizeof h);
        const __m256 vid = _mm256_set1_ps(id);
        __m256i q[4];
        for (int k = 0; k < 4; k++) {
            __m256 t = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(v[k], vid), lo), hi);
            t = _mm256_add_ps(t, _mm256_or_ps(_mm256_and_ps(t, sign), half));
            q[k] = _mm256_cvttps_epi32(t);
        }
        /* packs work per 128-bit lane: the bytes come out as 4-element
         * groups q0a q1a q2a q3a q0b q1b q2b q3b; put them back in order */
        const __m256i p16a = _mm256_packs_epi32(q[0], q[1]), p16b = _mm256_packs_epi32(q[2], q[3]);
        const __m256i p8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p16a, p16b), order);
        _mm256_storeu_si256((__m256i *)(void *)(b + 2), p8);
    }
}

/* Q8_K: the scalar quantizer's bytes (amax over 256, d = amax / 127 as
 * f32, id = 127 / amax, the same clamp and rounding as Q8_0 above), and
 * the 16 bsums from the packed bytes (pairs against ones, then 4-lane
 * sums; |sum| <= 16 * 127, exact in int16). */
AVX2_FN void qeil_quantize_row_q8_k_avx2(const float *src, void *dst, int64_t n)
{
    const __m256 sign = _mm256_set1_ps(-0.0f), lo = _mm256_set1_ps(-127.0f);
    const __m256 hi = _mm256_set1_ps(127.0f), half = _mm256_set1_ps(0.49999997f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / QEIL_QK_K; i++, b += QEIL_Q8_K_BYTES) {
        const float *x = src + i * QEIL_QK_K;
        __m256 m = _mm256_setzero_ps();
        for (int k = 0; k < QEIL_QK_K / 8; k++)
            m = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8 * k)), m);
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        const float d = amax / 127.0f;
        const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
        memcpy(b, &d, sizeof d);
        const __m256 vid = _mm256_set1_ps(id);
        int16_t bsums[QEIL_QK_K / 16];
        for (int g = 0; g < QEIL_QK_K / 32; g++) {
            __m256i q[4];
            for (int k = 0; k < 4; k++) {
                __m256 t = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 32 * g + 8 * k), vid), lo), hi);
                t = _mm256_add_ps(t, _mm256_or_ps(_mm256_and_ps(t, sign), half));
                q[k] = _mm256_cvttps_epi32(t);
            }
            const __m256i p16a = _mm256_packs_epi32(q[0], q[1]), p16b = _mm256_packs_epi32(q[2], q[3]);
            const __m256i p8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p16a, p16b), order);
            _mm256_storeu_si256((__m256i *)(void *)(b + 4 + 32 * g), p8);
            /* lane j: bytes 4j..4j+3; lanes 0-3 are sum 2g, 4-7 sum 2g+1 */
            __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, p8), ones16);
            s = _mm256_hadd_epi32(s, s);
            s = _mm256_hadd_epi32(s, s);
            bsums[2 * g] = (int16_t)_mm256_extract_epi32(s, 0);
            bsums[2 * g + 1] = (int16_t)_mm256_extract_epi32(s, 4);
        }
        memcpy(b + 4 + QEIL_QK_K, bsums, sizeof bsums);
    }
}

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
