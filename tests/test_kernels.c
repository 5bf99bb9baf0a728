/*
 * test_kernels.c — the engine's numeric kernels: f16/bf16 conversion,
 * block layouts (hand-built blocks), quantization error bounds, AVX2 vs
 * scalar reference dots, quantized vs dequantized dots, thread pool, and
 * matmul (thread-count determinism, agreement with a naive f32 matmul).
 *
 * Tolerances are stated where they are checked; docs/kernels.md derives
 * the quantization bounds.
 */
#include "kernels/matmul.h"
#include "kernels/pack.h"
#include "kernels/quant.h"
#include "core/threadpool.h"
#include "qeil/qeil.h"
#include "test.h"

#include <stdatomic.h>
#include <stdint.h>

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */
/* ------------------------------------------------------------------------ */

static uint32_t fbits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float bitsf(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Random test data: uniform in [-1, 1) times a per-32-block scale 2^k,
 * k in [-6, 3], so blocks of very different magnitude sit side by side; a
 * few blocks are all zero or constant (the quantizers' d == 0 and
 * zero-range paths). */
static void fill_random(qeil_rng *r, float *x, int64_t n)
{
    for (int64_t b = 0; b < n; b += 32) {
        int kind = (int)qeil_rng_below(r, 16);
        float scale = ldexpf(1.0f, (int)qeil_rng_below(r, 10) - 6);
        float c = (float)(2.0 * qeil_rng_uniform(r) - 1.0) * scale;
        for (int64_t j = b; j < b + 32 && j < n; j++) {
            if (kind == 0) x[j] = 0.0f;
            else if (kind == 1) x[j] = c;
            else x[j] = (float)(2.0 * qeil_rng_uniform(r) - 1.0) * scale;
        }
    }
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

static int have_avx2(void)
{
    return qeil_simd_best() == QEIL_SIMD_AVX2;
}

static const char *self_path; /* argv[0], for the QEIL_NO_SIMD re-run */

#define SKIP_WITHOUT_AVX2()                                                  \
    do {                                                                     \
        if (!QEIL_HAVE_X86_SIMD) SKIP("not an x86 build: no AVX2 kernels");  \
        if (!have_avx2()) SKIP("CPU lacks AVX2+FMA+F16C");                   \
    } while (0)

/* ------------------------------------------------------------------------ */
/* f16 / bf16                                                                */
/* ------------------------------------------------------------------------ */

/* Second way to decode binary16: from the definition with ldexp. */
static double f16_ref(uint16_t h)
{
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v;
    if (e == 0) v = ldexp((double)m, -24);            /* subnormal: m 2^-24 */
    else if (e == 31) v = m ? NAN : INFINITY;
    else v = ldexp((double)(1024 + m), e - 25);       /* (1 + m/1024) 2^(e-15) */
    return s ? -v : v;
}

TEST(f16_to_f32_exhaustive)
{
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float got = qeil_f16_to_f32((uint16_t)h);
        double want = f16_ref((uint16_t)h);
        if (isnan(want)) {
            /* NaN: payload kept, quiet bit set */
            uint32_t g = fbits(got);
            if (!isnan(got) || ((g >> 13) & 0x3ff) != ((h & 0x3ff) | 0x200) || (g >> 31) != (h >> 15))
                bad++;
        } else if ((double)got != want || !signbit(got) != !signbit(want)) {
            if (bad++ < 5) TEST_FAIL_("h=0x%04x: got %a want %a", h, (double)got, want);
        }
    }
    CHECK_EQ_INT(bad, 0);
}

/* Second way to encode: binary search among all finite f16 values (as
 * doubles) for the nearest, ties to the even code. */
static double g_f16_pos[0x7c00];

static uint16_t f32_to_f16_ref(float f)
{
    if (isnan(f)) return 0x7e00;
    uint16_t sign = signbit(f) ? 0x8000 : 0;
    double a = fabs((double)f);
    if (a >= 65520.0) return sign | 0x7c00; /* 65504 + half ulp ties to 65536 = inf */
    int lo = 0, hi = 0x7bff;
    while (lo < hi) { /* largest code with value <= a */
        int mid = (lo + hi + 1) / 2;
        if (g_f16_pos[mid] <= a) lo = mid;
        else hi = mid - 1;
    }
    int h = lo;
    if (g_f16_pos[h] != a && h < 0x7bff) {
        double dlo = a - g_f16_pos[h], dhi = g_f16_pos[h + 1] - a;
        if (dhi < dlo || (dhi == dlo && (h & 1))) h++;
    }
    return (uint16_t)(sign | h);
}

TEST(f32_to_f16_rounding)
{
    for (int h = 0; h < 0x7c00; h++) g_f16_pos[h] = f16_ref((uint16_t)h);
    int bad = 0;
    /* every f16 round-trips */
    for (uint32_t h = 0; h < 65536; h++) {
        uint16_t back = qeil_f32_to_f16(qeil_f16_to_f32((uint16_t)h));
        int nan = ((h >> 10) & 31) == 31 && (h & 1023);
        if (nan ? !(((back >> 10) & 31) == 31 && (back & 1023)) : back != h) {
            if (bad++ < 5) TEST_FAIL_("roundtrip 0x%04x -> 0x%04x", h, back);
        }
    }
    /* midpoints between neighbours (exact in f32) tie to even, and one f32
     * ulp either side goes to the nearer one */
    for (int h = 0; h < 0x7bff; h++) {
        float mid = (float)((g_f16_pos[h] + g_f16_pos[h + 1]) / 2);
        float below = nextafterf(mid, 0.0f), above = nextafterf(mid, INFINITY);
        uint16_t even = (uint16_t)((h & 1) ? h + 1 : h);
        if (qeil_f32_to_f16(mid) != even || qeil_f32_to_f16(-mid) != (0x8000 | even) ||
            qeil_f32_to_f16(below) != h || qeil_f32_to_f16(above) != h + 1) {
            if (bad++ < 5) TEST_FAIL_("midpoint after 0x%04x: %a", h, (double)mid);
        }
    }
    /* f32 patterns across the whole range vs the search reference */
    qeil_rng r;
    qeil_rng_seed(&r, 16);
    for (uint32_t hi = 0; hi < 65536; hi++) {
        uint32_t lows[4] = {0, 0x1000, 0xffff, (uint32_t)qeil_rng_u64(&r) & 0xffff};
        for (int k = 0; k < 4; k++) {
            float f = bitsf(hi << 16 | lows[k]);
            uint16_t got = qeil_f32_to_f16(f), want = f32_to_f16_ref(f);
            if (isnan(f)) {
                if (((got >> 10) & 31) != 31 || !(got & 0x200)) bad++;
            } else if (got != want) {
                if (bad++ < 5) TEST_FAIL_("f=%a got 0x%04x want 0x%04x", (double)f, got, want);
            }
        }
    }
    CHECK_EQ_INT(qeil_f32_to_f16(65519.99f), 0x7bff);
    CHECK_EQ_INT(qeil_f32_to_f16(65520.0f), 0x7c00);
    CHECK_EQ_INT(qeil_f32_to_f16(1e10f), 0x7c00);
    CHECK_EQ_INT(qeil_f32_to_f16(-INFINITY), 0xfc00);
    CHECK_EQ_INT(qeil_f32_to_f16(ldexpf(1.0f, -24)), 0x0001);  /* smallest subnormal */
    CHECK_EQ_INT(qeil_f32_to_f16(ldexpf(1.0f, -25)), 0x0000);  /* tie -> even (0) */
    CHECK_EQ_INT(qeil_f32_to_f16(ldexpf(3.0f, -26)), 0x0001);  /* 0.75 ulp -> 1 */
    CHECK_EQ_INT(qeil_f32_to_f16(-0.0f), 0x8000);
    CHECK_EQ_INT(bad, 0);
}

TEST(f16c_matches_portable)
{
    SKIP_WITHOUT_AVX2();
#if QEIL_HAVE_X86_SIMD
    uint16_t *h = xmalloc(65536 * sizeof *h);
    float *f = xmalloc(65536 * sizeof *f);
    for (uint32_t i = 0; i < 65536; i++) h[i] = (uint16_t)i;
    qeil_f16_to_f32_row_avx2(h, f, 65536);
    int bad = 0;
    for (uint32_t i = 0; i < 65536; i++)
        if (fbits(f[i]) != fbits(qeil_f16_to_f32((uint16_t)i)) && bad++ < 5)
            TEST_FAIL_("f16 0x%04x: f16c %08x portable %08x", i, fbits(f[i]),
                       fbits(qeil_f16_to_f32((uint16_t)i)));
    /* f32 -> f16 over every exponent/high-mantissa pattern, 3 low patterns */
    const uint32_t lows[3] = {0x0000, 0x1000, 0x1fff};
    for (int k = 0; k < 3; k++) {
        for (uint32_t i = 0; i < 65536; i++) f[i] = bitsf(i << 16 | lows[k]);
        qeil_f32_to_f16_row_avx2(f, h, 65535); /* odd length: scalar tail too */
        for (uint32_t i = 0; i < 65535; i++)
            if (h[i] != qeil_f32_to_f16(f[i]) && bad++ < 5)
                TEST_FAIL_("f32 %08x: f16c 0x%04x portable 0x%04x", fbits(f[i]), h[i],
                           qeil_f32_to_f16(f[i]));
    }
    CHECK_EQ_INT(bad, 0);
    free(h);
    free(f);
#endif
}

TEST(f16_rows_dispatch)
{
    /* whatever converter the CPU gets, rows equal the portable scalars */
    uint16_t *h = xmalloc(65536 * sizeof *h), *h2 = xmalloc(65536 * sizeof *h2);
    float *f = xmalloc(65536 * sizeof *f);
    for (uint32_t i = 0; i < 65536; i++) h[i] = (uint16_t)i;
    qeil_f16_to_f32_row(h, f, 65536);
    int bad = 0;
    for (uint32_t i = 0; i < 65536; i++)
        if (fbits(f[i]) != fbits(qeil_f16_to_f32((uint16_t)i))) bad++;
    for (uint32_t i = 0; i < 65536; i++) f[i] = bitsf(i << 16 | 0x1234);
    qeil_f32_to_f16_row(f, h2, 65533);
    for (uint32_t i = 0; i < 65533; i++)
        if (h2[i] != qeil_f32_to_f16(f[i])) bad++;
    CHECK_EQ_INT(bad, 0);
    free(h);
    free(h2);
    free(f);
}

TEST(bf16_exhaustive)
{
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float got = qeil_bf16_to_f32((uint16_t)h);
        /* second way: sign, 8-bit exponent, 7-bit mantissa via ldexp */
        int s = h >> 15, e = (h >> 7) & 255, m = h & 127;
        double want = e == 0 ? ldexp(m, -133) : e == 255 ? (m ? NAN : INFINITY)
                                                         : ldexp(128 + m, e - 134);
        if (s) want = -want;
        if (isnan(want)) {
            if (!isnan(got)) bad++;
            if (!(qeil_f32_to_bf16(got) & 0x7f)) bad++; /* stays NaN */
        } else {
            if ((double)got != want || !signbit(got) != !signbit(want)) bad++;
            if (qeil_f32_to_bf16(got) != h) bad++;     /* round trip */
        }
    }
    CHECK_EQ_INT(bad, 0);
    /* ties to even on the dropped 16 bits */
    CHECK_EQ_INT(qeil_f32_to_bf16(bitsf(0x3f808000u)), 0x3f80); /* tie, even stays */
    CHECK_EQ_INT(qeil_f32_to_bf16(bitsf(0x3f818000u)), 0x3f82); /* tie, odd rounds up */
    CHECK_EQ_INT(qeil_f32_to_bf16(bitsf(0x3f808001u)), 0x3f81);
    CHECK_EQ_INT(qeil_f32_to_bf16(bitsf(0x3f807fffu)), 0x3f80);
    CHECK_EQ_INT(qeil_f32_to_bf16(bitsf(0x7f7fffffu)), 0x7f80); /* FLT_MAX -> inf */
}

/* ------------------------------------------------------------------------ */
/* Hand-built blocks: each pins the byte layout of one type                  */
/* ------------------------------------------------------------------------ */

TEST(layout_float_rows)
{
    /* f16: 0x3c00 = 1, 0xc000 = -2, 0x0001 = 2^-24, 0x7c00 = inf */
    const uint8_t h[8] = {0x00, 0x3c, 0x00, 0xc0, 0x01, 0x00, 0x00, 0x7c};
    float y[4];
    qeil_dequantize_row_f16(h, y, 4);
    CHECK(y[0] == 1.0f && y[1] == -2.0f && y[2] == ldexpf(1.0f, -24) && isinf(y[3]));
    /* bf16: 0x3f80 = 1, 0xc000 = -2, 0x4049 = 3.140625, 0x0001 = 2^-133 */
    const uint8_t b[8] = {0x80, 0x3f, 0x00, 0xc0, 0x49, 0x40, 0x01, 0x00};
    qeil_dequantize_row_bf16(b, y, 4);
    CHECK(y[0] == 1.0f && y[1] == -2.0f && y[2] == 3.140625f && y[3] == ldexpf(1.0f, -133));
    uint8_t out[8];
    qeil_quantize_row_f16(y, out, 2);
    CHECK(out[0] == 0x00 && out[1] == 0x3c && out[2] == 0x00 && out[3] == 0xc0);
}

TEST(layout_q8_0)
{
    /* d = 0x3800 = 0.5 (bytes 0-1, little endian), qs[j] = j - 16 */
    uint8_t blk[1 + 34]; /* +1: the block at an odd address */
    uint8_t *p = blk + 1;
    p[0] = 0x00;
    p[1] = 0x38;
    for (int j = 0; j < 32; j++) p[2 + j] = (uint8_t)(int8_t)(j - 16);
    float y[32];
    qeil_dequantize_row_q8_0(p, y, 32);
    CHECK_EQ_INT(y[0] == -8.0f, 1);   /* -16 * 0.5 */
    CHECK_EQ_INT(y[1] == -7.5f, 1);
    CHECK_EQ_INT(y[16] == 0.0f, 1);
    CHECK_EQ_INT(y[17] == 0.5f, 1);
    CHECK_EQ_INT(y[31] == 7.5f, 1);   /* 15 * 0.5 */
    /* and the quantizer writes the same bytes back: amax 8 -> d = 8/127 */
    uint8_t q[34];
    qeil_quantize_row_q8_0(y, q, 32);
    CHECK_EQ_INT((int8_t)q[2], -127);  /* -8 / (8/127) */
    CHECK_EQ_INT((int8_t)q[2 + 17], 8); /* round(0.5 * 127 / 8) = round(7.94) */
    uint16_t d;
    memcpy(&d, q, 2);
    CHECK_EQ_INT(d, qeil_f32_to_f16(8.0f / 127.0f));
}

TEST(layout_q4_0)
{
    /* d = 0x4000 = 2.0; qs[j] = j | (15 - j) << 4:
     *   x[j] = (j - 8) * 2, x[j + 16] = (7 - j) * 2 */
    uint8_t blk[1 + 18];
    uint8_t *p = blk + 1;
    p[0] = 0x00;
    p[1] = 0x40;
    for (int j = 0; j < 16; j++) p[2 + j] = (uint8_t)(j | (15 - j) << 4);
    float y[32];
    qeil_dequantize_row_q4_0(p, y, 32);
    const float want[32] = {-16, -14, -12, -10, -8, -6, -4, -2, 0, 2, 4, 6, 8, 10, 12, 14,
                            14,  12,  10,  8,   6,  4,  2,  0,  -2, -4, -6, -8, -10, -12, -14, -16};
    for (int j = 0; j < 32; j++) CHECK_NEAR(y[j], want[j], 0, 0);
    /* ggml's rule: largest magnitude -16 maps to q = 0, d = -16 / -8 = 2 */
    uint8_t q[18];
    qeil_quantize_row_q4_0(y, q, 32);
    CHECK_EQ_INT(memcmp(q, p, 18), 0);
}

TEST(layout_q4_k)
{
    /* d = 1.0 (0x3c00), dmin = 0.5 (0x3800)
     * sc = {1, 2, 3, 4, 17, 33, 48, 63}, m = {0, 1, 2, 3, 20, 4, 49, 46}
     * packed by hand:
     *   bytes 0-3 : sc[j] | (sc[j+4] >> 4) << 6  = 41 82 c3 c4
     *   bytes 4-7 : m[j]  | (m[j+4]  >> 4) << 6  = 40 01 c2 83
     *   bytes 8-11: (sc[j+4] & 15) | (m[j+4] & 15) << 4 = 41 41 10 ef
     * qs[32c + l] = (l % 16) | (15 - l % 16) << 4 */
    uint8_t blk[1 + 144];
    uint8_t *p = blk + 1;
    const uint8_t head[16] = {0x00, 0x3c, 0x00, 0x38, 0x41, 0x82, 0xc3, 0xc4,
                              0x40, 0x01, 0xc2, 0x83, 0x41, 0x41, 0x10, 0xef};
    memcpy(p, head, 16);
    for (int i = 0; i < 128; i++) p[16 + i] = (uint8_t)((i % 16) | (15 - i % 16) << 4);

    uint8_t sc[8], m[8];
    qeil_q4_k_get_scale_min(p + 4, sc, m);
    const uint8_t want_sc[8] = {1, 2, 3, 4, 17, 33, 48, 63}, want_m[8] = {0, 1, 2, 3, 20, 4, 49, 46};
    CHECK_EQ_INT(memcmp(sc, want_sc, 8), 0);
    CHECK_EQ_INT(memcmp(m, want_m, 8), 0);
    uint8_t repacked[12];
    qeil_q4_k_set_scale_min(repacked, want_sc, want_m);
    CHECK_EQ_INT(memcmp(repacked, head + 4, 12), 0);

    float y[256];
    qeil_dequantize_row_q4_k(p, y, 256);
    /* x = d sc[s] q - dmin m[s]; element 64c + l is the low nibble of
     * qs[32c + l] (sub-block 2c), 64c + 32 + l the high nibble (2c + 1) */
    CHECK_NEAR(y[0], 0.0, 0, 0);          /* s0: 1*0 - 0 */
    CHECK_NEAR(y[5], 5.0, 0, 0);          /* s0: 1*5 */
    CHECK_NEAR(y[32], 29.5, 0, 0);        /* s1: hi(qs[0]) = 15: 2*15 - 0.5*1 */
    CHECK_NEAR(y[67], 8.0, 0, 0);         /* s2: lo(qs[35]) = 3: 3*3 - 0.5*2 */
    CHECK_NEAR(y[113], 54.5, 0, 0);       /* s3: hi(qs[49]) = 14: 4*14 - 1.5 */
    CHECK_NEAR(y[128], -10.0, 0, 0);      /* s4: 17*0 - 0.5*20 */
    CHECK_NEAR(y[135], 109.0, 0, 0);      /* s4: 17*7 - 10 */
    CHECK_NEAR(y[160], 493.0, 0, 0);      /* s5: hi(qs[64]) = 15: 33*15 - 0.5*4 */
    CHECK_NEAR(y[223], 695.5, 0, 0);      /* s6: lo(qs[127]) = 15: 48*15 - 24.5 */
    CHECK_NEAR(y[224], 922.0, 0, 0);      /* s7: hi(qs[96]) = 15: 63*15 - 0.5*46 */
    CHECK_NEAR(y[255], -23.0, 0, 0);      /* s7: hi(qs[127]) = 0: -0.5*46 */
}

TEST(layout_q6_k)
{
    /* d = 0.25 (0x3400, bytes 208-209); scales[s] = s - 8;
     * ql[i] = i; qh[i] = 0xe4 (bits 2c..2c+1 = c), except qh[5] = 0x00 and
     * qh[54] = 0xff. Element e = 128h + 32c + l has
     *   q = nibble(ql[64h + 32(c%2) + l], low if c < 2) | ((qh[32h + l] >> 2c) & 3) << 4
     *   x = d * scales[e / 16] * (q - 32) */
    uint8_t blk[1 + 210];
    uint8_t *p = blk + 1;
    for (int i = 0; i < 128; i++) p[i] = (uint8_t)i;
    for (int i = 0; i < 64; i++) p[128 + i] = 0xe4;
    p[128 + 5] = 0x00;
    p[128 + 54] = 0xff;
    for (int s = 0; s < 16; s++) p[192 + s] = (uint8_t)(int8_t)(s - 8);
    p[208] = 0x00;
    p[209] = 0x34;
    float y[256];
    qeil_dequantize_row_q6_k(p, y, 256);
    CHECK_NEAR(y[0], 64.0, 0, 0);    /* ql[0]=0, hi 0: q=0: .25 * -8 * -32 */
    CHECK_NEAR(y[5], 54.0, 0, 0);    /* q=5: .25 * -8 * -27 */
    CHECK_NEAR(y[33], 22.5, 0, 0);   /* c=1: lo(ql[33])=1, hi 1: q=17: .25 * -6 * -15 */
    CHECK_NEAR(y[37], 40.5, 0, 0);   /* c=1, l=5: qh[5]=0: q=5: .25 * -6 * -27 */
    CHECK_NEAR(y[95], -0.75, 0, 0);  /* c=2: hi(ql[31])=1, hi 2: q=33: .25 * -3 * 1 */
    CHECK_NEAR(y[127], -4.75, 0, 0); /* c=3: hi(ql[63])=3, hi 3: q=51: .25 * -1 * 19 */
    CHECK_NEAR(y[150], 5.5, 0, 0);   /* h=1, c=0, l=22: lo(ql[86])=6, qh[54]=ff: q=54: .25*1*22 */
    CHECK_NEAR(y[200], 4.0, 0, 0);   /* h=1, c=2, l=8: hi(ql[72])=4, hi 2: q=36: .25*4*4 */
    CHECK_NEAR(y[255], 40.25, 0, 0); /* h=1, c=3, l=31: hi(ql[127])=7, hi 3: q=55: .25*7*23 */
}

TEST(layout_q5_0)
{
    /* d = 1.0 (0x3c00), q_j = j: x_j = j - 16. Nibbles: qs[j] = j | j << 4
     * (element j + 16 has low bits j too); 5th bits: elements 16..31, so
     * qh = 0xffff0000, bytes 00 00 ff ff. */
    uint8_t blk[1 + 22];
    uint8_t *p = blk + 1;
    p[0] = 0x00;
    p[1] = 0x3c;
    p[2] = 0x00;
    p[3] = 0x00;
    p[4] = 0xff;
    p[5] = 0xff;
    for (int j = 0; j < 16; j++) p[6 + j] = (uint8_t)(j | j << 4);
    float y[32];
    qeil_dequantize_row_q5_0(p, y, 32);
    for (int j = 0; j < 32; j++) CHECK_NEAR(y[j], j - 16, 0, 0);
    /* ggml's rule: -16 has the largest magnitude, d = -16 / -16 = 1,
     * q = floor(x + 16.5) = x + 16: the same bytes */
    uint8_t q[22];
    qeil_quantize_row_q5_0(y, q, 32);
    CHECK_EQ_INT(memcmp(q, p, 22), 0);
}

TEST(layout_q4_1)
{
    /* d = 0.5 (0x3800), m = -2 (0xc000), qs[j] = j | (15 - j) << 4:
     * x_j = 0.5 j - 2, x_(j+16) = 0.5 (15 - j) - 2 */
    uint8_t blk[1 + 20];
    uint8_t *p = blk + 1;
    p[0] = 0x00;
    p[1] = 0x38;
    p[2] = 0x00;
    p[3] = 0xc0;
    for (int j = 0; j < 16; j++) p[4 + j] = (uint8_t)(j | (15 - j) << 4);
    float y[32];
    qeil_dequantize_row_q4_1(p, y, 32);
    for (int j = 0; j < 16; j++) {
        CHECK_NEAR(y[j], 0.5 * j - 2, 0, 0);
        CHECK_NEAR(y[j + 16], 0.5 * (15 - j) - 2, 0, 0);
    }
    /* min -2, max 5.5: d = 7.5 / 15 = 0.5, q = floor((x + 2) / 0.5 + 0.5) */
    uint8_t q[20];
    qeil_quantize_row_q4_1(y, q, 32);
    CHECK_EQ_INT(memcmp(q, p, 20), 0);
}

TEST(layout_q5_1)
{
    /* d = 0.25 (0x3400), m = 1 (0x3c00), q_j = 31 - j: x_j = 0.25 (31 - j) + 1.
     * Elements 0..15 have q 31..16 (5th bit set: qh bytes ff ff 00 00, low
     * bits 15 - j); elements 16..31 have q 15 - (j - 16), the same low
     * bits: qs[j] = (15 - j) * 0x11. */
    uint8_t blk[1 + 24];
    uint8_t *p = blk + 1;
    p[0] = 0x00;
    p[1] = 0x34;
    p[2] = 0x00;
    p[3] = 0x3c;
    p[4] = 0xff;
    p[5] = 0xff;
    p[6] = 0x00;
    p[7] = 0x00;
    for (int j = 0; j < 16; j++) p[8 + j] = (uint8_t)((15 - j) * 0x11);
    float y[32];
    qeil_dequantize_row_q5_1(p, y, 32);
    for (int j = 0; j < 32; j++) CHECK_NEAR(y[j], 0.25 * (31 - j) + 1, 0, 0);
    /* min 1, max 8.75: d = 7.75 / 31 = 0.25 exactly */
    uint8_t q[24];
    qeil_quantize_row_q5_1(y, q, 32);
    CHECK_EQ_INT(memcmp(q, p, 24), 0);
}

TEST(layout_q8_1)
{
    /* x = 1 (16 times) then -0.5 (16 times): d = 1/127, q = 127 and
     * round(-63.5) = -64 (halves away from zero), s = d * (16 * 127 - 16 * 64) */
    float x[32];
    for (int j = 0; j < 32; j++) x[j] = j < 16 ? 1.0f : -0.5f;
    uint8_t blk[1 + 36];
    uint8_t *p = blk + 1;
    qeil_quantize_row_q8_1(x, p, 32);
    uint16_t h;
    memcpy(&h, p, 2);
    CHECK_EQ_INT(h, qeil_f32_to_f16(1.0f / 127.0f));
    memcpy(&h, p + 2, 2);
    CHECK_EQ_INT(h, qeil_f32_to_f16(1008.0f * (1.0f / 127.0f)));
    CHECK_EQ_INT((int8_t)p[4], 127);
    CHECK_EQ_INT((int8_t)p[4 + 16], -64);
    float y[32];
    qeil_dequantize_row_q8_1(p, y, 32);
    CHECK_NEAR(y[0], 127 * qeil_f16_to_f32(qeil_f32_to_f16(1.0f / 127.0f)), 0, 0);
}

TEST(layout_q5_k)
{
    /* d = 1 (0x3c00), dmin = 0.5 (0x3800); scales as Q4_K's with
     * sc = {1, 2, 3, 4, 5, 6, 7, 8}, m = {0, 1, 2, 3, 4, 5, 6, 7}.
     * Every q is 0 except: qs[32 + 3] = 0x5a, qh[3] = 0x04 (bit 2):
     *   element 67 (c = 1, low nibble, sub-block 2): q = 0xa | 1 << 4 = 26,
     *     x = 1 * 3 * 26 - 0.5 * 2 = 77;
     *   element 99 (c = 1, high nibble, sub-block 3, qh bit 3 clear): q = 5,
     *     x = 4 * 5 - 0.5 * 3 = 18.5;
     * any other element of sub-block s: x = -0.5 m[s]. */
    uint8_t blk[1 + 176];
    uint8_t *p = blk + 1;
    memset(p, 0, 176);
    p[1] = 0x3c;
    p[3] = 0x38;
    const uint8_t sc[8] = {1, 2, 3, 4, 5, 6, 7, 8}, m[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    qeil_q4_k_set_scale_min(p + 4, sc, m);
    p[16 + 3] = 0x04;
    p[48 + 32 + 3] = 0x5a;
    float y[256];
    qeil_dequantize_row_q5_k(p, y, 256);
    CHECK_NEAR(y[67], 77, 0, 0);
    CHECK_NEAR(y[99], 18.5, 0, 0);
    CHECK_NEAR(y[0], 0, 0, 0);
    CHECK_NEAR(y[66], -1.0, 0, 0);
    CHECK_NEAR(y[255], -3.5, 0, 0);
    /* qh bit 7 of byte 31: element 224 + 31 = 255 gets q = 16 */
    p[16 + 31] = 0x80;
    qeil_dequantize_row_q5_k(p, y, 256);
    CHECK_NEAR(y[255], 8 * 16 - 3.5, 0, 0);
}

TEST(layout_iq4_nl)
{
    /* d = 1.0 (0x3c00), qs[j] = j | (15 - j) << 4: x_j = kvalues[j],
     * x_(j+16) = kvalues[15 - j], kvalues = ggml's kvalues_iq4nl */
    static const int8_t kv[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                  1,    13,   25,  38,  53,  69,  89,  113};
    uint8_t blk[1 + 18];
    uint8_t *p = blk + 1;
    p[0] = 0x00;
    p[1] = 0x3c;
    for (int j = 0; j < 16; j++) p[2 + j] = (uint8_t)(j | (15 - j) << 4);
    float y[32];
    qeil_dequantize_row_iq4_nl(p, y, 32);
    for (int j = 0; j < 16; j++) {
        CHECK_NEAR(y[j], kv[j], 0, 0);
        CHECK_NEAR(y[j + 16], kv[15 - j], 0, 0);
    }
    /* -127 has the largest magnitude: d = -127 / -127 = 1, every x a level */
    uint8_t q[18];
    qeil_quantize_row_iq4_nl(y, q, 32);
    CHECK_EQ_INT(memcmp(q, p, 18), 0);
    /* d = 1 again (-127 the largest magnitude); 7, halfway between levels
     * 1 and 13, goes up (ggml's tie rule); 6.9 down; 120 to the top level */
    float z[32] = {-127.0f, 7.0f, 6.9f, 120.0f};
    qeil_quantize_row_iq4_nl(z, q, 32);
    CHECK_EQ_INT(q[2 + 0] & 0x0f, 0);  /* -127 */
    CHECK_EQ_INT(q[2 + 1] & 0x0f, 9);  /* 7 -> 13 */
    CHECK_EQ_INT(q[2 + 2] & 0x0f, 8);  /* 6.9 -> 1 */
    CHECK_EQ_INT(q[2 + 3] & 0x0f, 15); /* 120 -> 113 */
}

TEST(layout_iq4_xs)
{
    /* d = 0.5 (0x3800); ls = 32 + (ib - 3) for sub-block ib, i.e. ls - 32 =
     * -3..4: ls = 29, 30, 31, 32, 33, 34, 35, 36 = 0x1d..0x24;
     *   scales_l[k] = low nibble ls[2k] | low nibble ls[2k+1] << 4
     *               = 0xed, 0x0f, 0x21, 0x43
     *   scales_h bits 2ib..2ib+1 = ls >> 4 = 1, 1, 1, 2, 2, 2, 2, 2
     *               = 0b10 10 10 10 10 01 01 01 = 0xaa95
     * qs: sub-block ib byte j = (j | (15 - j) << 4): element 32 ib + j has
     * level kvalues[j], element 32 ib + j + 16 level kvalues[15 - j]. */
    static const int8_t kv[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                  1,    13,   25,  38,  53,  69,  89,  113};
    uint8_t blk[1 + 136];
    uint8_t *p = blk + 1;
    p[0] = 0x00;
    p[1] = 0x38;
    p[2] = 0x95;
    p[3] = 0xaa;
    p[4] = 0xed;
    p[5] = 0x0f;
    p[6] = 0x21;
    p[7] = 0x43;
    for (int ib = 0; ib < 8; ib++)
        for (int j = 0; j < 16; j++) p[8 + 16 * ib + j] = (uint8_t)(j | (15 - j) << 4);
    int sc[8];
    qeil_iq4_xs_scales(p, sc);
    for (int ib = 0; ib < 8; ib++) CHECK_EQ_INT(sc[ib], ib - 3);
    float y[256];
    qeil_dequantize_row_iq4_xs(p, y, 256);
    for (int ib = 0; ib < 8; ib++)
        for (int j = 0; j < 16; j++) {
            CHECK_NEAR(y[32 * ib + j], 0.5 * (ib - 3) * kv[j], 0, 0);
            CHECK_NEAR(y[32 * ib + j + 16], 0.5 * (ib - 3) * kv[15 - j], 0, 0);
        }
}

TEST(layout_q8_k)
{
    /* d = 0.5 as f32 at bytes 0-3; qs[j] = j - 128 at bytes 4..259; bsums
     * (int16) at 260..291 */
    float x[256];
    for (int j = 0; j < 256; j++) x[j] = (float)(j - 128) * 0.5f;
    uint8_t blk[1 + 292];
    uint8_t *p = blk + 1;
    qeil_quantize_row_q8_k(x, p, 256); /* amax 64 -> d = 64/127 */
    float d;
    memcpy(&d, p, 4);
    CHECK_NEAR(d, 64.0 / 127.0, 1e-7, 0);
    CHECK_EQ_INT((int8_t)p[4 + 0], -127);
    CHECK_EQ_INT((int8_t)p[4 + 128], 0);
    CHECK_EQ_INT((int8_t)p[4 + 255], 126); /* round(63.5 * 127 / 64) = round(126.02) */
    int16_t bs[16];
    memcpy(bs, p + 260, sizeof bs);
    for (int g = 0; g < 16; g++) {
        int sum = 0;
        for (int l = 0; l < 16; l++) sum += (int8_t)p[4 + 16 * g + l];
        CHECK_EQ_INT(bs[g], sum);
    }
    /* hand-built: d = 0.5, qs[j] = j - 128 */
    d = 0.5f;
    memcpy(p, &d, 4);
    for (int j = 0; j < 256; j++) p[4 + j] = (uint8_t)(int8_t)(j - 128);
    float y[256];
    qeil_dequantize_row_q8_k(p, y, 256);
    CHECK_NEAR(y[0], -64.0, 0, 0);
    CHECK_NEAR(y[255], 63.5, 0, 0);
}

/* ------------------------------------------------------------------------ */
/* Quantization error bounds                                                 */
/* ------------------------------------------------------------------------ */

#define NQ 8192

static float f16_at(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return qeil_f16_to_f32(h);
}

/* relative RMS error of the reconstruction */
static double rel_rms(const float *x, const float *y, int64_t n)
{
    double e = 0, s = 0;
    for (int64_t i = 0; i < n; i++) {
        e += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
        s += (double)x[i] * x[i];
    }
    return s > 0 ? sqrt(e / s) : 0.0;
}

TEST(quant_error_float_types)
{
    qeil_rng r;
    qeil_rng_seed(&r, 1);
    float *x = xmalloc(NQ * 4), *y = xmalloc(NQ * 4);
    uint8_t *q = xmalloc(NQ * 4);
    fill_random(&r, x, NQ);
    qeil_quantize_row_f32(x, q, NQ);
    qeil_dequantize_row_f32(q, y, NQ);
    CHECK_EQ_INT(memcmp(x, y, NQ * 4), 0); /* exact */
    int bad = 0;
    /* f16: |err| <= 2^-11 |x| for normal results, 2^-25 absolute below 2^-14 */
    qeil_quantize_row_f16(x, q, NQ);
    qeil_dequantize_row_f16(q, y, NQ);
    for (int i = 0; i < NQ; i++)
        if (fabsf(x[i] - y[i]) > ldexpf(fabsf(x[i]), -11) + ldexpf(1.0f, -25)) bad++;
    /* bf16: |err| <= 2^-8 |x| */
    qeil_quantize_row_bf16(x, q, NQ);
    qeil_dequantize_row_bf16(q, y, NQ);
    for (int i = 0; i < NQ; i++)
        if (fabsf(x[i] - y[i]) > ldexpf(fabsf(x[i]), -8)) bad++;
    CHECK_EQ_INT(bad, 0);
    free(x);
    free(y);
    free(q);
}

TEST(quant_error_q8_0)
{
    /* q = round(x / d), d = amax / 127 stored as f16 (relative error
     * <= 2^-11): |x - q d16| <= d/2 + 127 |d - d16| <= d (1/2 + 127 * 2^-11) */
    qeil_rng r;
    qeil_rng_seed(&r, 2);
    float *x = xmalloc(NQ * 4), *y = xmalloc(NQ * 4);
    uint8_t *q = xmalloc(NQ / 32 * 34 + 1);
    fill_random(&r, x, NQ);
    qeil_quantize_row_q8_0(x, q + 1, NQ);
    qeil_dequantize_row_q8_0(q + 1, y, NQ);
    int bad = 0;
    for (int b = 0; b < NQ / 32; b++) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[32 * b + j]));
        double bound = amax / 127.0 * (0.5 + 127.0 / 2048) * (1 + 1e-6);
        for (int j = 0; j < 32; j++)
            if (fabs((double)x[32 * b + j] - y[32 * b + j]) > bound && bad++ < 3)
                TEST_FAIL_("block %d elem %d: %g vs %g (bound %g)", b, j, x[32 * b + j],
                           y[32 * b + j], bound);
    }
    CHECK_EQ_INT(bad, 0);
    /* uniform data: step ~ amax/127, RMS ~ step/sqrt(12) ~ 0.4% of rms(x) */
    CHECK(rel_rms(x, y, NQ) < 0.006);
    free(x);
    free(y);
    free(q);
}

TEST(quant_error_q4_0)
{
    /* d = max/-8 (|d| = amax/8): unclamped |err| <= |d|/2; the side opposite
     * the max saturates at +7 (x/d in [7.5, 8]): |err| <= |d|; f16 rounding
     * of d adds <= 8 |d| 2^-11. Bound: (amax/8)(1 + 8 * 2^-11). */
    qeil_rng r;
    qeil_rng_seed(&r, 3);
    float *x = xmalloc(NQ * 4), *y = xmalloc(NQ * 4);
    uint8_t *q = xmalloc(NQ / 32 * 18 + 1);
    fill_random(&r, x, NQ);
    qeil_quantize_row_q4_0(x, q + 1, NQ);
    qeil_dequantize_row_q4_0(q + 1, y, NQ);
    int bad = 0;
    for (int b = 0; b < NQ / 32; b++) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[32 * b + j]));
        double bound = amax / 8.0 * (1 + 8.0 / 2048) * (1 + 1e-6);
        for (int j = 0; j < 32; j++)
            if (fabs((double)x[32 * b + j] - y[32 * b + j]) > bound && bad++ < 3)
                TEST_FAIL_("block %d elem %d: %g vs %g (bound %g)", b, j, x[32 * b + j],
                           y[32 * b + j], bound);
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(rel_rms(x, y, NQ) < 0.08); /* step amax/8: ~6% of rms(x) */
    free(x);
    free(y);
    free(q);
}

TEST(quant_error_q4_k)
{
    /* Per sub-block s with effective scale de = d sc[s] and min dm = dmin m[s]
     * (docs/kernels.md): inside the grid |err| <= de/2; above it (the 6-bit
     * scale rounded down by up to d/2, times 15 levels, plus the min rounded
     * by up to dmin/2) |err| <= 7.5 d + dmin/2; below it <= dmin/2. */
    qeil_rng r;
    qeil_rng_seed(&r, 4);
    float *x = xmalloc(NQ * 4), *y = xmalloc(NQ * 4);
    uint8_t *q = xmalloc(NQ / 256 * 144 + 1);
    fill_random(&r, x, NQ);
    qeil_quantize_row_q4_k(x, q + 1, NQ);
    qeil_dequantize_row_q4_k(q + 1, y, NQ);
    int bad = 0;
    for (int b = 0; b < NQ / 256; b++) {
        const uint8_t *blk = q + 1 + 144 * b;
        float d = f16_at(blk), dmin = f16_at(blk + 2);
        uint8_t sc[8], m[8];
        qeil_q4_k_get_scale_min(blk + 4, sc, m);
        for (int s = 0; s < 8; s++) {
            double bound = fmax(d * sc[s] / 2.0, 7.5 * d + dmin / 2.0) * (1 + 1e-5) + 1e-9;
            for (int l = 0; l < 32; l++) {
                int e = 256 * b + 32 * s + l;
                if (fabs((double)x[e] - y[e]) > bound && bad++ < 3)
                    TEST_FAIL_("elem %d: %g vs %g (bound %g)", e, x[e], y[e], bound);
            }
        }
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(rel_rms(x, y, NQ) < 0.08); /* step ~ range/15: ~7% of rms(x) */
    free(x);
    free(y);
    free(q);
}

/* 32-element formats with a min (Q4_1, Q5_1): d = (max - min) / levels and
 * m = min as f16; the codes come from the f32 values, so |err| <= d/2 (+
 * f32 rounding) + levels |d - d16| + |min - m16| <= d/2 + levels d 2^-11 +
 * |min| 2^-11. */
static void check_quant_error_min(const qeil_quant_traits *t, int levels, double max_rel_rms)
{
    qeil_rng r;
    qeil_rng_seed(&r, 40 + (uint64_t)levels);
    float *x = xmalloc(NQ * 4), *y = xmalloc(NQ * 4);
    uint8_t *q = xmalloc(NQ / 32 * t->blck_bytes + 1);
    fill_random(&r, x, NQ);
    t->quantize(x, q + 1, NQ);
    t->dequantize(q + 1, y, NQ);
    int bad = 0;
    for (int b = 0; b < NQ / 32; b++) {
        float mn = x[32 * b], mx = x[32 * b];
        for (int j = 0; j < 32; j++) {
            mn = fminf(mn, x[32 * b + j]);
            mx = fmaxf(mx, x[32 * b + j]);
        }
        const double d = ((double)mx - mn) / levels;
        const double bound = (d / 2 + levels * d / 2048 + fabs(mn) / 2048) * (1 + 1e-5);
        for (int j = 0; j < 32; j++)
            if (fabs((double)x[32 * b + j] - y[32 * b + j]) > bound && bad++ < 3)
                TEST_FAIL_("%s block %d elem %d: %g vs %g (bound %g)", t->name, b, j,
                           x[32 * b + j], y[32 * b + j], bound);
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(rel_rms(x, y, NQ) < max_rel_rms);
    free(x);
    free(y);
    free(q);
}

TEST(quant_error_q4_1_q5_1)
{
    /* uniform data: step range/15 gives rms err / rms x ~ 1/15, range/31 ~ 1/31 */
    check_quant_error_min(qeil_quant_traits_of(QEIL_GGML_Q4_1), 15, 0.08);
    check_quant_error_min(qeil_quant_traits_of(QEIL_GGML_Q5_1), 31, 0.04);
}

TEST(quant_error_q5_0)
{
    /* Q4_0's rule with 32 levels: d = max / -16, the side opposite the max
     * saturates at +15 (x/d in [15.5, 16]): |err| <= |d|; f16 rounding of d
     * adds <= 16 |d| 2^-11. Bound: (amax/16)(1 + 16 * 2^-11). */
    qeil_rng r;
    qeil_rng_seed(&r, 45);
    float *x = xmalloc(NQ * 4), *y = xmalloc(NQ * 4);
    uint8_t *q = xmalloc(NQ / 32 * 22 + 1);
    fill_random(&r, x, NQ);
    qeil_quantize_row_q5_0(x, q + 1, NQ);
    qeil_dequantize_row_q5_0(q + 1, y, NQ);
    int bad = 0;
    for (int b = 0; b < NQ / 32; b++) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[32 * b + j]));
        double bound = amax / 16.0 * (1 + 16.0 / 2048) * (1 + 1e-6);
        for (int j = 0; j < 32; j++)
            if (fabs((double)x[32 * b + j] - y[32 * b + j]) > bound && bad++ < 3)
                TEST_FAIL_("block %d elem %d: %g vs %g (bound %g)", b, j, x[32 * b + j],
                           y[32 * b + j], bound);
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(rel_rms(x, y, NQ) < 0.04); /* step amax/16: ~3% of rms(x) */
    free(x);
    free(y);
    free(q);
}

TEST(quant_error_q8_1)
{
    /* Q8_0's codes and bound; s = f16(d * sum q) with the f32 d */
    qeil_rng r;
    qeil_rng_seed(&r, 46);
    float *x = xmalloc(NQ * 4), *y = xmalloc(NQ * 4);
    uint8_t *q = xmalloc(NQ / 32 * 36 + 1), *q0 = xmalloc(NQ / 32 * 34);
    fill_random(&r, x, NQ);
    qeil_quantize_row_q8_1(x, q + 1, NQ);
    qeil_quantize_row_q8_0(x, q0, NQ);
    qeil_dequantize_row_q8_1(q + 1, y, NQ);
    int bad = 0;
    for (int b = 0; b < NQ / 32; b++) {
        const uint8_t *b1 = q + 1 + 36 * b, *b0 = q0 + 34 * b;
        if ((memcmp(b1, b0, 2) != 0 || memcmp(b1 + 4, b0 + 2, 32) != 0) && bad++ < 3)
            TEST_FAIL_("block %d: codes differ from Q8_0's", b);
        float amax = 0;
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            amax = fmaxf(amax, fabsf(x[32 * b + j]));
            sum += (int8_t)b1[4 + j];
        }
        uint16_t s;
        memcpy(&s, b1 + 2, 2);
        if (s != qeil_f32_to_f16((float)sum * (amax / 127.0f)) && bad++ < 3)
            TEST_FAIL_("block %d: s = %04x", b, s);
        double bound = amax / 127.0 * (0.5 + 127.0 / 2048) * (1 + 1e-6);
        for (int j = 0; j < 32; j++)
            if (fabs((double)x[32 * b + j] - y[32 * b + j]) > bound && bad++ < 3)
                TEST_FAIL_("block %d elem %d: %g vs %g", b, j, x[32 * b + j], y[32 * b + j]);
    }
    CHECK_EQ_INT(bad, 0);
    free(x);
    free(y);
    free(q);
    free(q0);
}

TEST(quant_error_q5_k)
{
    /* Q4_K's bound with 31 levels: inside the grid |err| <= de/2; above it
     * (the 6-bit scale rounded down by up to d/2, times 31 levels, plus the
     * min rounded by up to dmin/2) <= 15.5 d + dmin/2; below it <= dmin/2. */
    qeil_rng r;
    qeil_rng_seed(&r, 47);
    float *x = xmalloc(NQ * 4), *y = xmalloc(NQ * 4);
    uint8_t *q = xmalloc(NQ / 256 * 176 + 1);
    fill_random(&r, x, NQ);
    qeil_quantize_row_q5_k(x, q + 1, NQ);
    qeil_dequantize_row_q5_k(q + 1, y, NQ);
    int bad = 0;
    for (int b = 0; b < NQ / 256; b++) {
        const uint8_t *blk = q + 1 + 176 * b;
        float d = f16_at(blk), dmin = f16_at(blk + 2);
        uint8_t sc[8], m[8];
        qeil_q4_k_get_scale_min(blk + 4, sc, m);
        for (int s = 0; s < 8; s++) {
            double bound = fmax(d * sc[s] / 2.0, 15.5 * d + dmin / 2.0) * (1 + 1e-5) + 1e-9;
            for (int l = 0; l < 32; l++) {
                int e = 256 * b + 32 * s + l;
                if (fabs((double)x[e] - y[e]) > bound && bad++ < 3)
                    TEST_FAIL_("elem %d: %g vs %g (bound %g)", e, x[e], y[e], bound);
            }
        }
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(rel_rms(x, y, NQ) < 0.05); /* step ~ range/31 plus 6-bit scale rounding */
    free(x);
    free(y);
    free(q);
}

TEST(quant_error_iq4_nl)
{
    /* d = max/-127 (|d| = amax/127); inside the levels the largest gap is
     * 24 (89..113): |err| <= 12 |d|; above the top level 113 (x/d up to
     * 127) <= 14 |d|; f16 rounding of d adds <= 127 |d| 2^-11. */
    qeil_rng r;
    qeil_rng_seed(&r, 48);
    float *x = xmalloc(NQ * 4), *y = xmalloc(NQ * 4);
    uint8_t *q = xmalloc(NQ / 32 * 18 + 1);
    fill_random(&r, x, NQ);
    qeil_quantize_row_iq4_nl(x, q + 1, NQ);
    qeil_dequantize_row_iq4_nl(q + 1, y, NQ);
    int bad = 0;
    for (int b = 0; b < NQ / 32; b++) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[32 * b + j]));
        double bound = amax / 127.0 * (14 + 127.0 / 2048) * (1 + 1e-5);
        for (int j = 0; j < 32; j++)
            if (fabs((double)x[32 * b + j] - y[32 * b + j]) > bound && bad++ < 3)
                TEST_FAIL_("block %d elem %d: %g vs %g (bound %g)", b, j, x[32 * b + j],
                           y[32 * b + j], bound);
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(rel_rms(x, y, NQ) < 0.09); /* mean gap ~16 |d| */
    free(x);
    free(y);
    free(q);
}

TEST(quant_error_iq4_xs)
{
    /* Each element is the level nearest x / dl of its sub-block (dl = d (ls -
     * 32) as stored): |err| <= 12 |dl| inside the levels' span (largest gap
     * 24), else the distance to the end level; plus float rounding. */
    qeil_rng r;
    qeil_rng_seed(&r, 49);
    float *x = xmalloc(NQ * 4), *y = xmalloc(NQ * 4);
    uint8_t *q = xmalloc(NQ / 256 * 136 + 1);
    fill_random(&r, x, NQ);
    qeil_quantize_row_iq4_xs(x, q + 1, NQ);
    qeil_dequantize_row_iq4_xs(q + 1, y, NQ);
    int bad = 0;
    for (int b = 0; b < NQ / 256; b++) {
        const uint8_t *blk = q + 1 + 136 * b;
        int sc[8];
        qeil_iq4_xs_scales(blk, sc);
        const double d = f16_at(blk);
        for (int ib = 0; ib < 8; ib++) {
            const double dl = d * sc[ib];
            for (int j = 0; j < 32; j++) {
                const int e = 256 * b + 32 * ib + j;
                const double t = dl != 0 ? x[e] / dl : 0;
                double bound = 12 * fabs(dl);
                if (t > 113) bound = fmax(bound, (t - 113) * fabs(dl));
                if (t < -127) bound = fmax(bound, (-127 - t) * fabs(dl));
                if (dl == 0) bound = fabs(x[e]);
                bound = bound * (1 + 1e-5) + 1e-9;
                if (fabs((double)x[e] - y[e]) > bound && bad++ < 3)
                    TEST_FAIL_("elem %d: %g vs %g (bound %g)", e, x[e], y[e], bound);
            }
        }
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(rel_rms(x, y, NQ) < 0.09); /* as IQ4_NL, plus the 6-bit sub-block scales */
    free(x);
    free(y);
    free(q);
}

TEST(quant_error_q6_k)
{
    /* Per sub-block with effective scale de = d scales[s]: inside [-32, 31]
     * |err| <= |de|/2; the int8 scale is off by <= 1.06 |d| (rounding, and
     * the +128 -> 127 clamp), so clamped elements err by <= |de| + 34 |d|. */
    qeil_rng r;
    qeil_rng_seed(&r, 5);
    float *x = xmalloc(NQ * 4), *y = xmalloc(NQ * 4);
    uint8_t *q = xmalloc(NQ / 256 * 210 + 1);
    fill_random(&r, x, NQ);
    qeil_quantize_row_q6_k(x, q + 1, NQ);
    qeil_dequantize_row_q6_k(q + 1, y, NQ);
    int bad = 0;
    for (int b = 0; b < NQ / 256; b++) {
        const uint8_t *blk = q + 1 + 210 * b;
        float d = fabsf(f16_at(blk + 208));
        for (int s = 0; s < 16; s++) {
            float de = fabsf(d * (float)(int8_t)blk[192 + s]);
            double bound = (de + 34.0 * d) * (1 + 1e-5) + 1e-9;
            for (int l = 0; l < 16; l++) {
                int e = 256 * b + 16 * s + l;
                if (fabs((double)x[e] - y[e]) > bound && bad++ < 3)
                    TEST_FAIL_("elem %d: %g vs %g (bound %g)", e, x[e], y[e], bound);
            }
        }
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(rel_rms(x, y, NQ) < 0.02); /* step amax/32: ~1.5% of rms(x) */
    free(x);
    free(y);
    free(q);
}

/* The AVX2 activation quantizers write exactly the scalar ones' bytes:
 * blocks whose amax is 127 (so d = 1 and q = round(x)) filled with every
 * half-integer and its float neighbours, blocks with NaN, infinities,
 * zeros and subnormals, and random rows over six decades of scale. */
TEST(quantize_q8_0_q8_k_avx2_match_scalar)
{
    /* the CPU's level: AVX2 or NEON (Q8_0 and Q8_K) */
    const qeil_simd best = qeil_simd_best();
    qeil_quantize_fn fast = qeil_act_quantize_for(QEIL_GGML_Q8_0, best);
    if (best == QEIL_SIMD_SCALAR || fast == qeil_quantize_row_q8_0)
        SKIP("no SIMD quantizer on this CPU");
    printf("  level %s\n", qeil_simd_name(best));
    enum { NB = 4096 };
    float *x = xmalloc(NB * 32 * sizeof *x);
    uint8_t *a = xmalloc(NB * 34), *b = xmalloc(NB * 34);
    int n = 0;
    /* halves k + 0.5 for k in -128..127 and their neighbours, 31 per block
     * next to one 127 */
    float vals[256 * 3];
    int nv = 0;
    for (int k = -128; k < 127; k++) {
        float h = (float)k + 0.5f;
        vals[nv++] = h;
        vals[nv++] = nextafterf(h, 0.0f);
        vals[nv++] = nextafterf(h, h > 0 ? 1000.0f : -1000.0f);
    }
    for (int i = 0; i < nv; i += 31, n++)
        for (int j = 0; j < 32; j++) x[n * 32 + j] = j == 0 ? 127.0f : (i + j - 1 < nv ? vals[i + j - 1] : 0.0f);
    const float special[] = {NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 1e-40f, -1e-40f, 1e30f, -3.0f, 0.5f};
    for (int i = 0; i < 10; i++, n++)
        for (int j = 0; j < 32; j++)
            x[n * 32 + j] = (j % 3 == 0) ? special[(i + j) % 10] : (i < 3 ? special[i] : (float)j * 0.37f);
    for (int j = 0; j < 32; j++) x[n * 32 + j] = 0.0f; /* all zero: d = 0 */
    n++;
    qeil_rng r;
    qeil_rng_seed(&r, 12);
    for (; n < NB; n++) {
        float scale = powf(10.0f, (float)(n % 7) - 3.0f);
        for (int j = 0; j < 32; j++)
            x[n * 32 + j] = scale * (float)(2.0 * qeil_rng_uniform(&r) - 1.0);
    }
    qeil_quantize_row_q8_0(x, a, NB * 32);
    fast(x, b, NB * 32);
    int bad = 0;
    for (int i = 0; i < NB && bad < 3; i++)
        if (memcmp(a + i * 34, b + i * 34, 34) != 0) {
            bad++;
            TEST_FAIL_("block %d differs (first value %g)", i, (double)x[i * 32]);
        }
    CHECK_EQ_INT(bad, 0);
    /* Q8_K on the same rows (256-element blocks: amax, d and id differ,
     * the rounding and the bsums must still match) */
    qeil_quantize_fn fast_k = qeil_act_quantize_for(QEIL_GGML_Q8_K, best);
    CHECK(fast_k != qeil_quantize_row_q8_k); /* AVX2 and NEON both have one */
    uint8_t *ka = xmalloc(NB / 8 * 292), *kb = xmalloc(NB / 8 * 292);
    for (int half = 0; half < 2; half++) { /* as is, then every block at amax 127 exactly */
        if (half)
            for (int i = 0; i < NB / 8; i++) x[i * 256 + 5] = 127.0f, x[i * 256 + 6] = -126.5f;
        qeil_quantize_row_q8_k(x, ka, NB * 32);
        fast_k(x, kb, NB * 32);
        bad = 0;
        for (int i = 0; i < NB / 8 && bad < 3; i++)
            if (memcmp(ka + i * 292, kb + i * 292, 292) != 0) {
                bad++;
                TEST_FAIL_("q8_k block %d differs", i);
            }
        CHECK_EQ_INT(bad, 0);
    }
    free(ka);
    free(kb);
    /* Q8_1 (Q4_1 / Q5_1 activations: Q8_0's codes plus s = f16(d sum q))
     * on the same rows; NEON has one, AVX2 takes the reference */
    qeil_quantize_fn fast_1 = qeil_act_quantize_for(QEIL_GGML_Q8_1, best);
    if (best == QEIL_SIMD_NEON) CHECK(fast_1 != qeil_quantize_row_q8_1);
    if (fast_1 != qeil_quantize_row_q8_1) {
        uint8_t *c1 = xmalloc(NB * 36), *c2 = xmalloc(NB * 36);
        qeil_quantize_row_q8_1(x, c1, NB * 32);
        fast_1(x, c2, NB * 32);
        bad = 0;
        for (int i = 0; i < NB && bad < 3; i++)
            if (memcmp(c1 + i * 36, c2 + i * 36, 36) != 0) {
                bad++;
                TEST_FAIL_("q8_1 block %d differs (first value %g)", i, (double)x[i * 32]);
            }
        CHECK_EQ_INT(bad, 0);
        free(c1);
        free(c2);
    }
    free(x);
    free(a);
    free(b);
}

TEST(quant_error_q8_k)
{
    /* d = amax/127 kept as f32: |err| <= d/2 (+ f32 rounding) */
    qeil_rng r;
    qeil_rng_seed(&r, 6);
    float *x = xmalloc(NQ * 4), *y = xmalloc(NQ * 4);
    uint8_t *q = xmalloc(NQ / 256 * 292 + 1);
    fill_random(&r, x, NQ);
    qeil_quantize_row_q8_k(x, q + 1, NQ);
    qeil_dequantize_row_q8_k(q + 1, y, NQ);
    int bad = 0;
    for (int b = 0; b < NQ / 256; b++) {
        float amax = 0;
        for (int j = 0; j < 256; j++) amax = fmaxf(amax, fabsf(x[256 * b + j]));
        double bound = amax / 127.0 * 0.5 * (1 + 1e-5);
        for (int j = 0; j < 256; j++)
            if (fabs((double)x[256 * b + j] - y[256 * b + j]) > bound) bad++;
    }
    CHECK_EQ_INT(bad, 0);
    free(x);
    free(y);
    free(q);
}

/* ------------------------------------------------------------------------ */
/* Dot products                                                              */
/* ------------------------------------------------------------------------ */

static const int k_dot_types[] = {QEIL_GGML_F32,  QEIL_GGML_F16,  QEIL_GGML_BF16, QEIL_GGML_Q8_0,
                                  QEIL_GGML_Q4_0, QEIL_GGML_Q4_K, QEIL_GGML_Q6_K, QEIL_GGML_Q4_1,
                                  QEIL_GGML_Q5_0, QEIL_GGML_Q5_1, QEIL_GGML_Q5_K, QEIL_GGML_IQ4_NL,
                                  QEIL_GGML_IQ4_XS};
#define N_DOT_TYPES ((int)(sizeof k_dot_types / sizeof k_dot_types[0]))

/* Quantized operands of one test dot, plus their dequantized values. */
typedef struct {
    int64_t n;
    uint8_t *wq, *xq; /* at odd addresses (alloc + 1) unless f32 */
    uint8_t *wq_alloc, *xq_alloc;
    float *w, *x;     /* original f32 */
    float *wd, *xd;   /* dequantized */
} dot_case;

static void dot_case_make(dot_case *c, const qeil_quant_traits *t, int64_t n, qeil_rng *r)
{
    const qeil_quant_traits *a = t->vec_type == QEIL_GGML_F32 ? NULL : qeil_quant_traits_of(t->vec_type);
    c->n = n;
    c->w = xmalloc((size_t)n * 4);
    c->x = xmalloc((size_t)n * 4);
    c->wd = xmalloc((size_t)n * 4);
    c->xd = xmalloc((size_t)n * 4);
    fill_random(r, c->w, n);
    fill_random(r, c->x, n);
    size_t wb = (size_t)(n / t->blck_elems) * t->blck_bytes;
    c->wq_alloc = xmalloc(wb + 8);
    /* f32 rows come 4-byte aligned from GGUF; everything else odd */
    c->wq = c->wq_alloc + (t->type == QEIL_GGML_F32 ? 0 : 1);
    t->quantize(c->w, c->wq, n);
    t->dequantize(c->wq, c->wd, n);
    if (a) {
        size_t xb = (size_t)(n / a->blck_elems) * a->blck_bytes;
        c->xq_alloc = xmalloc(xb + 8);
        c->xq = c->xq_alloc + 1;
        a->quantize(c->x, c->xq, n);
        a->dequantize(c->xq, c->xd, n);
    } else {
        c->xq_alloc = NULL;
        c->xq = (uint8_t *)c->x;
        memcpy(c->xd, c->x, (size_t)n * 4);
    }
}

static void dot_case_free(dot_case *c)
{
    free(c->w);
    free(c->x);
    free(c->wd);
    free(c->xd);
    free(c->wq_alloc);
    free(c->xq_alloc);
}

/* Lengths: every multiple of the block up to 8 blocks, then a spread up to
 * 8192 (32..8192 for 32-blocks, 256..8192 for K-quants); the float types
 * also get lengths that are not multiples of 8 (scalar tails). */
static int dot_lengths(const qeil_quant_traits *t, int64_t *out)
{
    int k = 0;
    int64_t blk = t->blck_elems == 1 ? 32 : t->blck_elems;
    for (int i = 1; i <= 8; i++) out[k++] = blk * i;
    const int64_t more[] = {8192, 4096, 1184, 2048, 3072, 8160, 5120, 7936};
    for (size_t i = 0; i < sizeof more / sizeof more[0]; i++)
        if (more[i] % blk == 0 && more[i] > 8 * blk) out[k++] = more[i];
    if (t->blck_elems == 1) {
        const int64_t odd[] = {1, 7, 9, 33, 1001, 4097};
        for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) out[k++] = odd[i];
    }
    return k;
}

TEST(dot_avx2_vs_scalar)
{
    SKIP_WITHOUT_AVX2();
    /* Tolerance: K-quants bit-exact (same integer sums, same float ops);
     * f32/f16/bf16 and Q8_0/Q4_0: |avx2 - ref| <= 1e-5 * sum|w_i x_i| (the
     * vector kernels sum in a different order, in float). */
    qeil_rng r;
    qeil_rng_seed(&r, 7);
    for (int ti = 0; ti < N_DOT_TYPES; ti++) {
        const qeil_quant_traits *t = qeil_quant_traits_of(k_dot_types[ti]);
        qeil_vec_dot_fn ref = qeil_vec_dot_for(t->type, QEIL_SIMD_SCALAR);
        qeil_vec_dot_fn avx = qeil_vec_dot_for(t->type, QEIL_SIMD_AVX2);
        CHECK(ref != NULL && avx != NULL);
        if (!ref || !avx) continue;
        int exact = t->type == QEIL_GGML_Q4_K || t->type == QEIL_GGML_Q5_K ||
                    t->type == QEIL_GGML_Q6_K || t->type == QEIL_GGML_IQ4_XS;
        int64_t lens[32];
        int nl = dot_lengths(t, lens);
        for (int li = 0; li < nl; li++) {
            for (int rep = 0; rep < 3; rep++) {
                dot_case c;
                dot_case_make(&c, t, lens[li], &r);
                float s_ref = NAN, s_avx = NAN;
                ref(c.n, &s_ref, c.wq, c.xq);
                avx(c.n, &s_avx, c.wq, c.xq);
                double mag = 0;
                for (int64_t i = 0; i < c.n; i++) mag += fabs((double)c.wd[i] * c.xd[i]);
                if (exact) {
                    if (fbits(s_ref) != fbits(s_avx))
                        TEST_FAIL_("%s n=%lld: avx2 %.9g != ref %.9g (bitwise)", t->name,
                                   (long long)c.n, s_avx, s_ref);
                } else if (!(fabs((double)s_avx - s_ref) <= 1e-5 * mag + 1e-30)) {
                    TEST_FAIL_("%s n=%lld: avx2 %.9g vs ref %.9g (tol %g)", t->name,
                               (long long)c.n, s_avx, s_ref, 1e-5 * mag);
                }
                dot_case_free(&c);
            }
        }
    }
}

/* Q4_1 / Q5_1 against Q8_1: the dot uses each activation block's stored
 * s = f16(d * sum q) (ggml's format: d before its own f16 rounding) where
 * the dequantized operands give d_f16 * sum q; the difference, times the
 * weight block's min, is part of the format, not kernel error. 0 for
 * every other type. */
static double q8_1_s_slack(const qeil_quant_traits *t, const uint8_t *wq, const uint8_t *xq,
                           int64_t n)
{
    if (t->vec_type != QEIL_GGML_Q8_1) return 0.0;
    double slack = 0.0;
    for (int64_t b = 0; b < n / 32; b++) {
        const uint8_t *bx = xq + b * QEIL_Q8_1_BYTES;
        int sum = 0;
        for (int j = 0; j < 32; j++) sum += (int8_t)bx[4 + j];
        const double m = f16_at(wq + b * t->blck_bytes + 2);
        slack += fabs(m) * fabs((double)f16_at(bx + 2) - (double)f16_at(bx) * sum);
    }
    return slack * 1.001;
}

static void check_dot_vs_dequantized(qeil_simd simd)
{
    /* (1) The quantized dot equals sum wd_i xd_i of the dequantized operands
     *     up to float rounding: |s - sum| <= 1e-5 sum|wd_i xd_i|.
     * (2) Against the unquantized f32 dot the error is bounded by the
     *     quantization errors: |s - sum w_i x_i| <= sum |w_i - wd_i||xd_i|
     *     + sum |w_i||x_i - xd_i| (+ the rounding slack of (1)). */
    qeil_rng r;
    qeil_rng_seed(&r, 8);
    for (int ti = 0; ti < N_DOT_TYPES; ti++) {
        const qeil_quant_traits *t = qeil_quant_traits_of(k_dot_types[ti]);
        qeil_vec_dot_fn dot = qeil_vec_dot_for(t->type, simd);
        CHECK(dot != NULL);
        if (!dot) continue;
        const int64_t lens[] = {256, 1024, 4096, 8192};
        for (int li = 0; li < 4; li++) {
            dot_case c;
            dot_case_make(&c, t, lens[li], &r);
            float s = NAN;
            dot(c.n, &s, c.wq, c.xq);
            double deq = 0, mag = 0, exact = 0, qerr = 0;
            for (int64_t i = 0; i < c.n; i++) {
                deq += (double)c.wd[i] * c.xd[i];
                mag += fabs((double)c.wd[i] * c.xd[i]);
                exact += (double)c.w[i] * c.x[i];
                qerr += fabs((double)c.w[i] - c.wd[i]) * fabs(c.xd[i]) +
                        fabs((double)c.w[i]) * fabs((double)c.x[i] - c.xd[i]);
            }
            const double slack = q8_1_s_slack(t, c.wq, c.xq, c.n);
            if (!(fabs(s - deq) <= 1e-5 * mag + slack + 1e-30))
                TEST_FAIL_("%s/%s n=%lld: dot %.9g vs dequantized %.9g (tol %g)", t->name,
                           qeil_simd_name(simd), (long long)c.n, s, deq, 1e-5 * mag + slack);
            if (!(fabs(s - exact) <= qerr + 1e-5 * mag + slack + 1e-30))
                TEST_FAIL_("%s/%s n=%lld: dot %.9g vs f32 %.9g (bound %g)", t->name,
                           qeil_simd_name(simd), (long long)c.n, s, exact, qerr + 1e-5 * mag);
            dot_case_free(&c);
        }
    }
}

TEST(dot_scalar_vs_dequantized)
{
    check_dot_vs_dequantized(QEIL_SIMD_SCALAR);
}

TEST(dot_avx2_vs_dequantized)
{
    SKIP_WITHOUT_AVX2();
    check_dot_vs_dequantized(QEIL_SIMD_AVX2);
}

/* The NEON level (AArch64): every kernel it returns, plain ASIMD and SDOT,
 * gives the reference's bits (arm/dot_neon.c says why), at every length
 * the AVX2 test uses. make test-arm runs this under qemu with SDOT on
 * (-cpu max) and off (-cpu cortex-a53). */
TEST(dot_neon_vs_scalar)
{
    if (!QEIL_HAVE_ARM_SIMD) SKIP("not an AArch64 build: no NEON kernels");
    if (qeil_simd_best() != QEIL_SIMD_NEON) SKIP("no ASIMD, or QEIL_NO_SIMD set");
#if QEIL_HAVE_ARM_SIMD
    const int sdot = qeil_cpu_has_arm_dotprod();
    printf("  neon: sdot %s\n", sdot ? "on" : "off");
    CHECK(qeil_vec_dot_for(QEIL_GGML_Q8_0, QEIL_SIMD_NEON) ==
          (sdot ? qeil_vec_dot_q8_0_sdot : qeil_vec_dot_q8_0_neon));
    CHECK(qeil_vec_dot_for(QEIL_GGML_Q4_0, QEIL_SIMD_NEON) ==
          (sdot ? qeil_vec_dot_q4_0_sdot : qeil_vec_dot_q4_0_neon));
    CHECK(qeil_vec_dot_for(QEIL_GGML_F32, QEIL_SIMD_NEON) == qeil_vec_dot_f32_neon);
    CHECK(qeil_vec_dot_for(QEIL_GGML_BF16, QEIL_SIMD_NEON) == qeil_vec_dot_bf16_neon);
    /* each integer type: its plain ASIMD and SDOT kernels (both tested
     * below whichever the CPU gets) */
    static const struct {
        int type;
        qeil_vec_dot_fn neon, sdot;
    } k_int[] = {
        {QEIL_GGML_Q8_0, qeil_vec_dot_q8_0_neon, qeil_vec_dot_q8_0_sdot},
        {QEIL_GGML_Q4_0, qeil_vec_dot_q4_0_neon, qeil_vec_dot_q4_0_sdot},
        {QEIL_GGML_Q4_1, qeil_vec_dot_q4_1_neon, qeil_vec_dot_q4_1_sdot},
        {QEIL_GGML_Q5_0, qeil_vec_dot_q5_0_neon, qeil_vec_dot_q5_0_sdot},
        {QEIL_GGML_Q5_1, qeil_vec_dot_q5_1_neon, qeil_vec_dot_q5_1_sdot},
        {QEIL_GGML_IQ4_NL, qeil_vec_dot_iq4_nl_neon, qeil_vec_dot_iq4_nl_sdot},
        {QEIL_GGML_IQ4_XS, qeil_vec_dot_iq4_xs_neon, qeil_vec_dot_iq4_xs_sdot},
        {QEIL_GGML_Q4_K, qeil_vec_dot_q4_k_neon, qeil_vec_dot_q4_k_sdot},
        {QEIL_GGML_Q5_K, qeil_vec_dot_q5_k_neon, qeil_vec_dot_q5_k_sdot},
        {QEIL_GGML_Q6_K, qeil_vec_dot_q6_k_neon, qeil_vec_dot_q6_k_sdot},
    };
    const int n_int = (int)(sizeof k_int / sizeof k_int[0]);
    for (int k = 0; k < n_int; k++)
        CHECK(qeil_vec_dot_for(k_int[k].type, QEIL_SIMD_NEON) == (sdot ? k_int[k].sdot : k_int[k].neon));
    /* the block scales go through the FPU (FCVT): every f16 pattern as d_w
     * (zero, subnormal, inf, NaN included), d_x = 1, isum = 1, gives the
     * reference's bits */
    {
        uint8_t wb[QEIL_Q8_0_BYTES] = {0}, xb[QEIL_Q8_0_BYTES] = {0};
        const uint16_t one = 0x3c00;
        memcpy(xb, &one, 2);
        wb[2] = 1;
        xb[2] = 1;
        int bad = 0;
        for (uint32_t h = 0; h < 65536; h++) {
            const uint16_t hv = (uint16_t)h;
            memcpy(wb, &hv, 2);
            float s_ref = 0, s_n = 0, s_s = 0;
            qeil_vec_dot_q8_0_ref(QEIL_QK8_0, &s_ref, wb, xb);
            qeil_vec_dot_q8_0_neon(QEIL_QK8_0, &s_n, wb, xb);
            if (sdot) qeil_vec_dot_q8_0_sdot(QEIL_QK8_0, &s_s, wb, xb);
            else s_s = s_n;
            if ((fbits(s_n) != fbits(s_ref) || fbits(s_s) != fbits(s_ref)) && bad++ < 5)
                TEST_FAIL_("f16 scale 0x%04x: neon %08x sdot %08x ref %08x", h, fbits(s_n),
                           fbits(s_s), fbits(s_ref));
        }
        CHECK_EQ_INT(bad, 0);
    }
    qeil_rng r;
    qeil_rng_seed(&r, 17);
    for (int ti = 0; ti < N_DOT_TYPES; ti++) {
        const qeil_quant_traits *t = qeil_quant_traits_of(k_dot_types[ti]);
        qeil_vec_dot_fn ref = qeil_vec_dot_for(t->type, QEIL_SIMD_SCALAR);
        qeil_vec_dot_fn fn[2] = {qeil_vec_dot_for(t->type, QEIL_SIMD_NEON), NULL};
        CHECK(ref != NULL && fn[0] != NULL);
        if (!ref || !fn[0]) continue;
        /* every type the NEON level takes has a NEON kernel, not the reference */
        if (fn[0] == ref) TEST_FAIL_("%s: the NEON level returns the scalar reference", t->name);
        /* the plain ASIMD integer kernels run too where SDOT is picked */
        for (int k = 0; k < n_int; k++)
            if (k_int[k].type == t->type && sdot) fn[1] = k_int[k].neon;
        int64_t lens[32];
        int nl = dot_lengths(t, lens);
        for (int li = 0; li < nl; li++) {
            for (int rep = 0; rep < 3; rep++) {
                dot_case c;
                dot_case_make(&c, t, lens[li], &r);
                float s_ref = NAN;
                ref(c.n, &s_ref, c.wq, c.xq);
                for (int k = 0; k < 2 && fn[k]; k++) {
                    float s_neon = NAN;
                    fn[k](c.n, &s_neon, c.wq, c.xq);
                    if (fbits(s_ref) != fbits(s_neon))
                        TEST_FAIL_("%s n=%lld: neon%s %.9g != ref %.9g (bitwise)", t->name,
                                   (long long)c.n, k ? " (no sdot)" : "", s_neon, s_ref);
                }
                dot_case_free(&c);
            }
        }
    }
#endif
}

TEST(dot_neon_vs_dequantized)
{
    if (qeil_simd_best() != QEIL_SIMD_NEON) SKIP("no NEON level (not AArch64, or QEIL_NO_SIMD)");
    check_dot_vs_dequantized(QEIL_SIMD_NEON);
}

/* QEIL_NO_SIMD=1 makes qeil_simd_best() say scalar (read once per process:
 * this binary runs itself again with it set, through QEIL_TEST_RUNNER
 * under an emulator); unset, the level is this process's. */
static int run_self_level(const char *env, char *out, size_t cap)
{
    const char *runner = getenv("QEIL_TEST_RUNNER");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s %s %s --simd-level", env, runner ? runner : "", self_path);
    FILE *p = popen(cmd, "r");
    if (!p) return 0;
    out[0] = '\0';
    if (!fgets(out, (int)cap, p)) out[0] = '\0';
    out[strcspn(out, "\n")] = '\0';
    return pclose(p) == 0;
}

TEST(no_simd_env_forces_scalar)
{
    char level[64];
    CHECK(run_self_level("QEIL_NO_SIMD=1", level, sizeof level));
    CHECK_EQ_STR(level, "scalar");
    CHECK(run_self_level("QEIL_NO_SIMD=0", level, sizeof level));
    const char *e = getenv("QEIL_NO_SIMD");
    if (!e || !e[0] || strcmp(e, "0") == 0) CHECK_EQ_STR(level, qeil_simd_name(qeil_simd_best()));
    printf("  simd level: %s; with QEIL_NO_SIMD=1: scalar\n", qeil_simd_name(qeil_simd_best()));
}

TEST(dot_dispatch)
{
    CHECK(qeil_quant_traits_of(QEIL_GGML_Q2_K) == NULL);
    CHECK(qeil_vec_dot_for(QEIL_GGML_Q8_1, QEIL_SIMD_SCALAR) == NULL); /* activations only */
    CHECK(qeil_vec_dot_for(QEIL_GGML_Q5_0, QEIL_SIMD_SCALAR) == qeil_vec_dot_q5_0_ref);
    CHECK_EQ_INT(qeil_quant_traits_of(QEIL_GGML_Q4_1)->vec_type, QEIL_GGML_Q8_1);
    CHECK_EQ_INT(qeil_quant_traits_of(QEIL_GGML_Q5_1)->vec_type, QEIL_GGML_Q8_1);
    CHECK_EQ_INT(qeil_quant_traits_of(QEIL_GGML_Q5_0)->vec_type, QEIL_GGML_Q8_0);
    CHECK_EQ_INT(qeil_quant_traits_of(QEIL_GGML_Q5_K)->vec_type, QEIL_GGML_Q8_K);
    CHECK_EQ_INT(qeil_quant_traits_of(QEIL_GGML_IQ4_NL)->vec_type, QEIL_GGML_Q8_0);
    CHECK(qeil_vec_dot_for(QEIL_GGML_Q8_K, QEIL_SIMD_SCALAR) == NULL); /* activations only */
    CHECK(qeil_vec_dot_for(QEIL_GGML_Q4_K, QEIL_SIMD_SCALAR) == qeil_vec_dot_q4_k_ref);
    if (!have_avx2()) CHECK(qeil_vec_dot_for(QEIL_GGML_Q4_K, QEIL_SIMD_AVX2) == NULL);
    CHECK_EQ_STR(qeil_simd_name(QEIL_SIMD_AVX2), "avx2");
    CHECK_EQ_STR(qeil_simd_name(QEIL_SIMD_NEON), "neon");
    if (qeil_simd_best() != QEIL_SIMD_NEON) CHECK(qeil_vec_dot_for(QEIL_GGML_Q8_0, QEIL_SIMD_NEON) == NULL);
}

/* ------------------------------------------------------------------------ */
/* Thread pool                                                               */
/* ------------------------------------------------------------------------ */

typedef struct {
    atomic_int *hits;
} cover_args;

static void cover_range(void *p, int64_t b, int64_t e)
{
    cover_args *a = p;
    for (int64_t i = b; i < e; i++) atomic_fetch_add(&a->hits[i], 1);
}

TEST(tpool_parallel_for_covers_once)
{
    for (int nth = 1; nth <= 4; nth++) {
        qeil_tpool *pool = NULL;
        CHECK_EQ_INT(qeil_tpool_create(NULL, nth, &pool), QEIL_OK);
        if (!pool) continue;
        CHECK_EQ_INT(qeil_tpool_n_threads(pool), nth);
        const int64_t ns[] = {0, 1, 2, 3, 5, 100, 1001};
        for (int k = 0; k < 7; k++) {
            for (int rep = 0; rep < 50; rep++) {
                atomic_int hits[1001];
                for (int i = 0; i < 1001; i++) atomic_init(&hits[i], 0);
                cover_args a = {hits};
                qeil_tpool_parallel_for(pool, ns[k], cover_range, &a);
                for (int64_t i = 0; i < 1001; i++)
                    if (atomic_load(&hits[i]) != (i < ns[k] ? 1 : 0)) {
                        TEST_FAIL_("nth %d n %lld: item %lld ran %d times", nth, (long long)ns[k],
                                   (long long)i, atomic_load(&hits[i]));
                        break;
                    }
            }
        }
        qeil_tpool_free(pool);
    }
    /* chunks: 10 items over 3 threads = [0,4) [4,7) [7,10) */
    int64_t b, e;
    qeil_tpool_chunk(10, 0, 3, &b, &e);
    CHECK(b == 0 && e == 4);
    qeil_tpool_chunk(10, 2, 3, &b, &e);
    CHECK(b == 7 && e == 10);
    qeil_tpool *pool = NULL;
    CHECK_EQ_INT(qeil_tpool_create(NULL, 0, &pool), QEIL_ERR_RANGE);
    CHECK_EQ_INT(qeil_tpool_create(NULL, QEIL_TPOOL_MAX_THREADS + 1, &pool), QEIL_ERR_RANGE);
    qeil_tpool_free(NULL);
}

typedef struct {
    qeil_tpool *pool;
    int *slot;     /* one per thread */
    int rounds;
    atomic_int errors;
} barrier_args;

/* Each round every thread writes its slot, waits at the barrier, checks
 * every other slot holds this round's value, and waits again before the
 * next round's writes. A broken barrier shows up as a stale slot. */
static void barrier_task(void *p, int ith, int nth)
{
    barrier_args *a = p;
    for (int round = 1; round <= a->rounds; round++) {
        __atomic_store_n(&a->slot[ith], round, __ATOMIC_RELAXED);
        qeil_tpool_barrier(a->pool);
        for (int t = 0; t < nth; t++)
            if (__atomic_load_n(&a->slot[t], __ATOMIC_RELAXED) != round) atomic_fetch_add(&a->errors, 1);
        qeil_tpool_barrier(a->pool);
    }
}

TEST(tpool_barrier)
{
    for (int nth = 1; nth <= 3; nth++) {
        qeil_tpool *pool = NULL;
        CHECK_EQ_INT(qeil_tpool_create(NULL, nth, &pool), QEIL_OK);
        if (!pool) continue;
        int slot[3] = {0, 0, 0};
        barrier_args a = {pool, slot, 200, 0};
        atomic_init(&a.errors, 0);
        for (int rep = 0; rep < 5; rep++) {
            memset(slot, 0, sizeof slot);
            qeil_tpool_run(pool, barrier_task, &a);
        }
        CHECK_EQ_INT(atomic_load(&a.errors), 0);
        qeil_tpool_free(pool);
    }
}

/* ------------------------------------------------------------------------ */
/* Tiled kernels: every shape nr x nc (1..4 each), every element bitwise
 * equal to the same level's dot kernel (the definition matmul's
 * determinism rests on), the AVX2 and VNNI variants bitwise equal to each
 * other, and within 1e-5 sum|w x| of the scalar reference. */
static void check_gemm_kernel(qeil_simd simd, const qeil_quant_traits *t, qeil_gemm_fn gemm,
                              const char *what, qeil_rng *r)
{
    const qeil_quant_traits *a = qeil_quant_traits_of(t->vec_type);
    qeil_vec_dot_fn dot = qeil_vec_dot_for(t->type, simd);
    qeil_vec_dot_fn ref = qeil_vec_dot_for(t->type, QEIL_SIMD_SCALAR);
    const int64_t lens[] = {(int64_t)t->blck_elems, 3 * (int64_t)t->blck_elems, 2048};
    for (int li = 0; li < 3; li++) {
        const int64_t n = lens[li];
        const size_t wrb = (size_t)(n / t->blck_elems) * t->blck_bytes;
        const size_t xrb = (size_t)(n / a->blck_elems) * a->blck_bytes;
        float *wf = xmalloc((size_t)n * 4 * 4), *xf = xmalloc((size_t)n * 4 * 4);
        uint8_t *wq = xmalloc(4 * wrb + 1), *xq = xmalloc(4 * xrb + 1);
        fill_random(r, wf, 4 * n);
        fill_random(r, xf, 4 * n);
        /* odd addresses: blocks are unaligned in files */
        for (int k = 0; k < 4; k++) {
            t->quantize(wf + k * n, wq + 1 + k * wrb, n);
            a->quantize(xf + k * n, xq + 1 + k * xrb, n);
        }
        for (int nr = 1; nr <= QEIL_GEMM_MAX_ROWS; nr++)
            for (int nc = 1; nc <= QEIL_GEMM_MAX_VEC; nc++) {
                float y[QEIL_GEMM_MAX_VEC * (QEIL_GEMM_MAX_ROWS + 3)];
                memset(y, 0xff, sizeof y);
                gemm(n, nr, nc, wq + 1, wrb, xq + 1, xrb, y, (size_t)nr + 3);
                for (int c = 0; c < nc; c++)
                    for (int k = 0; k < nr; k++) {
                        float s_dot = NAN, s_ref = NAN;
                        dot(n, &s_dot, wq + 1 + k * wrb, xq + 1 + c * xrb);
                        ref(n, &s_ref, wq + 1 + k * wrb, xq + 1 + c * xrb);
                        const float g = y[c * (nr + 3) + k];
                        double mag = 0;
                        for (int64_t i = 0; i < n; i++)
                            mag += fabs((double)wf[k * n + i] * xf[c * n + i]) * 1.1;
                        if (fbits(g) != fbits(s_dot))
                            TEST_FAIL_("%s %s n=%lld %dx%d [%d,%d]: %.9g != dot %.9g (bitwise)", t->name,
                                       what, (long long)n, nr, nc, k, c, g, s_dot);
                        else if (!(fabs((double)g - s_ref) <= 1e-5 * mag + 1e-30))
                            TEST_FAIL_("%s %s n=%lld: %.9g vs ref %.9g", t->name, what, (long long)n,
                                       g, s_ref);
                    }
            }
        free(wf);
        free(xf);
        free(wq);
        free(xq);
    }
}

TEST(gemm_tiles_vs_dot)
{
    SKIP_WITHOUT_AVX2();
    qeil_rng r;
    qeil_rng_seed(&r, 11);
    int n_kernels = 0;
    for (int ti = 0; ti < N_DOT_TYPES; ti++) {
        const qeil_quant_traits *t = qeil_quant_traits_of(k_dot_types[ti]);
        CHECK(qeil_gemm_for(t->type, QEIL_SIMD_SCALAR) == NULL);
        qeil_gemm_fn best = qeil_gemm_for(t->type, QEIL_SIMD_AVX2);
        if (!best) continue;
        n_kernels++;
        check_gemm_kernel(QEIL_SIMD_AVX2, t, best, "best", &r);
    }
    CHECK(n_kernels >= 10); /* Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, IQ4_XS, Q4_K, Q5_K, Q6_K */
#if QEIL_HAVE_X86_SIMD
    check_gemm_kernel(QEIL_SIMD_AVX2, qeil_quant_traits_of(QEIL_GGML_Q8_0), qeil_gemm_q8_0_avx2, "avx2", &r);
    check_gemm_kernel(QEIL_SIMD_AVX2, qeil_quant_traits_of(QEIL_GGML_Q4_0), qeil_gemm_q4_0_avx2, "avx2", &r);
    check_gemm_kernel(QEIL_SIMD_AVX2, qeil_quant_traits_of(QEIL_GGML_Q4_K), qeil_gemm_q4_k_avx2, "avx2", &r);
    check_gemm_kernel(QEIL_SIMD_AVX2, qeil_quant_traits_of(QEIL_GGML_Q6_K), qeil_gemm_q6_k_avx2, "avx2", &r);
    check_gemm_kernel(QEIL_SIMD_AVX2, qeil_quant_traits_of(QEIL_GGML_Q4_1), qeil_gemm_q4_1_avx2, "avx2", &r);
    check_gemm_kernel(QEIL_SIMD_AVX2, qeil_quant_traits_of(QEIL_GGML_Q5_0), qeil_gemm_q5_0_avx2, "avx2", &r);
    check_gemm_kernel(QEIL_SIMD_AVX2, qeil_quant_traits_of(QEIL_GGML_Q5_1), qeil_gemm_q5_1_avx2, "avx2", &r);
    check_gemm_kernel(QEIL_SIMD_AVX2, qeil_quant_traits_of(QEIL_GGML_Q5_K), qeil_gemm_q5_k_avx2, "avx2", &r);
    check_gemm_kernel(QEIL_SIMD_AVX2, qeil_quant_traits_of(QEIL_GGML_IQ4_NL), qeil_gemm_iq4_nl_avx2, "avx2", &r);
    check_gemm_kernel(QEIL_SIMD_AVX2, qeil_quant_traits_of(QEIL_GGML_IQ4_XS), qeil_gemm_iq4_xs_avx2, "avx2", &r);
    if (qeil_cpu_has_avx512_vnni()) {
        check_gemm_kernel(QEIL_SIMD_AVX2, qeil_quant_traits_of(QEIL_GGML_Q8_0), qeil_gemm_q8_0_vnni, "vnni", &r);
        check_gemm_kernel(QEIL_SIMD_AVX2, qeil_quant_traits_of(QEIL_GGML_Q4_0), qeil_gemm_q4_0_vnni, "vnni", &r);
        check_gemm_kernel(QEIL_SIMD_AVX2, qeil_quant_traits_of(QEIL_GGML_Q4_K), qeil_gemm_q4_k_vnni, "vnni", &r);
        check_gemm_kernel(QEIL_SIMD_AVX2, qeil_quant_traits_of(QEIL_GGML_Q6_K), qeil_gemm_q6_k_vnni, "vnni", &r);
        check_gemm_kernel(QEIL_SIMD_AVX2, qeil_quant_traits_of(QEIL_GGML_Q4_1), qeil_gemm_q4_1_vnni, "vnni", &r);
        check_gemm_kernel(QEIL_SIMD_AVX2, qeil_quant_traits_of(QEIL_GGML_Q5_0), qeil_gemm_q5_0_vnni, "vnni", &r);
        check_gemm_kernel(QEIL_SIMD_AVX2, qeil_quant_traits_of(QEIL_GGML_Q5_1), qeil_gemm_q5_1_vnni, "vnni", &r);
        check_gemm_kernel(QEIL_SIMD_AVX2, qeil_quant_traits_of(QEIL_GGML_Q5_K), qeil_gemm_q5_k_vnni, "vnni", &r);
        check_gemm_kernel(QEIL_SIMD_AVX2, qeil_quant_traits_of(QEIL_GGML_IQ4_NL), qeil_gemm_iq4_nl_vnni, "vnni", &r);
        check_gemm_kernel(QEIL_SIMD_AVX2, qeil_quant_traits_of(QEIL_GGML_IQ4_XS), qeil_gemm_iq4_xs_vnni, "vnni", &r);
    }
#endif
}

/* The NEON tiles (Q8_0, Q4_0, Q5_0, IQ4_NL; Q4_K, Q5_K, Q6_K, IQ4_XS
 * against Q8_K): the level's choice (SMMLA,
 * SDOT or plain ASIMD by HWCAP) and every variant this CPU runs, each
 * element bitwise equal to the NEON dot kernel. make test-arm runs it with
 * I8MM and SDOT (-cpu max) and without either (-cpu cortex-a53). */
TEST(gemm_neon_tiles_vs_dot)
{
    if (!QEIL_HAVE_ARM_SIMD) SKIP("not an AArch64 build: no NEON tiles");
    if (qeil_simd_best() != QEIL_SIMD_NEON) SKIP("no ASIMD, or QEIL_NO_SIMD set");
#if QEIL_HAVE_ARM_SIMD
    const int sdot = qeil_cpu_has_arm_dotprod(), i8mm = qeil_cpu_has_arm_i8mm();
    printf("  neon tiles: sdot %s, i8mm %s\n", sdot ? "on" : "off", i8mm ? "on" : "off");
    static const struct {
        int type;
        qeil_gemm_fn neon, sdot, i8mm;
    } k_tiles[] = {
        {QEIL_GGML_Q8_0, qeil_gemm_q8_0_neon, qeil_gemm_q8_0_sdot, qeil_gemm_q8_0_i8mm},
        {QEIL_GGML_Q4_0, qeil_gemm_q4_0_neon, qeil_gemm_q4_0_sdot, qeil_gemm_q4_0_i8mm},
        {QEIL_GGML_Q5_0, qeil_gemm_q5_0_neon, qeil_gemm_q5_0_sdot, qeil_gemm_q5_0_i8mm},
        {QEIL_GGML_IQ4_NL, qeil_gemm_iq4_nl_neon, qeil_gemm_iq4_nl_sdot, qeil_gemm_iq4_nl_i8mm},
        {QEIL_GGML_Q4_K, qeil_gemm_q4_k_neon, qeil_gemm_q4_k_sdot, qeil_gemm_q4_k_i8mm},
        {QEIL_GGML_Q5_K, qeil_gemm_q5_k_neon, qeil_gemm_q5_k_sdot, qeil_gemm_q5_k_i8mm},
        {QEIL_GGML_Q6_K, qeil_gemm_q6_k_neon, qeil_gemm_q6_k_sdot, qeil_gemm_q6_k_i8mm},
        {QEIL_GGML_IQ4_XS, qeil_gemm_iq4_xs_neon, qeil_gemm_iq4_xs_sdot, qeil_gemm_iq4_xs_i8mm},
    };
    qeil_rng r;
    qeil_rng_seed(&r, 23);
    for (size_t k = 0; k < sizeof k_tiles / sizeof k_tiles[0]; k++) {
        const qeil_quant_traits *t = qeil_quant_traits_of(k_tiles[k].type);
        CHECK(qeil_gemm_for(t->type, QEIL_SIMD_SCALAR) == NULL);
        CHECK(qeil_gemm_for(t->type, QEIL_SIMD_NEON) ==
              (i8mm ? k_tiles[k].i8mm : sdot ? k_tiles[k].sdot : k_tiles[k].neon));
        check_gemm_kernel(QEIL_SIMD_NEON, t, k_tiles[k].neon, "neon", &r);
        if (sdot) check_gemm_kernel(QEIL_SIMD_NEON, t, k_tiles[k].sdot, "sdot", &r);
        if (i8mm) check_gemm_kernel(QEIL_SIMD_NEON, t, k_tiles[k].i8mm, "i8mm", &r);
    }
    /* the others (the float types, Q4_1 and Q5_1 with their Q8_1
     * activations) have no NEON tile: matmul loops over the dot */
    for (int ti = 0; ti < N_DOT_TYPES; ti++) {
        int tiled = 0;
        for (size_t k = 0; k < sizeof k_tiles / sizeof k_tiles[0]; k++) tiled |= k_tiles[k].type == k_dot_types[ti];
        if (!tiled) CHECK(qeil_gemm_for(k_dot_types[ti], QEIL_SIMD_NEON) == NULL);
    }
#endif
}

/* ------------------------------------------------------------------------ */
/* Matmul                                                                    */
/* ------------------------------------------------------------------------ */

#define MM_ROWS 67 /* not a multiple of any thread count tried */
#define MM_COLS 512
#define MM_VEC 6 /* more than one tile of vectors */

TEST(matmul_threads_bit_identical)
{
    qeil_rng r;
    qeil_rng_seed(&r, 9);
    qeil_tpool *pools[3] = {NULL, NULL, NULL};
    for (int i = 0; i < 3; i++) CHECK_EQ_INT(qeil_tpool_create(NULL, i + 1, &pools[i]), QEIL_OK);
    if (!pools[0] || !pools[1] || !pools[2]) goto out;
    float *wf = xmalloc(MM_ROWS * MM_COLS * 4), *x = xmalloc(MM_VEC * MM_COLS * 4);
    uint8_t *wq = xmalloc(MM_ROWS * MM_COLS * 4 + 1);
    fill_random(&r, wf, MM_ROWS * MM_COLS);
    fill_random(&r, x, MM_VEC * MM_COLS);
    float y[3][MM_VEC * MM_ROWS];
    for (int ti = 0; ti < N_DOT_TYPES; ti++) {
        const qeil_quant_traits *t = qeil_quant_traits_of(k_dot_types[ti]);
        uint8_t *wp = wq + (t->type == QEIL_GGML_F32 ? 0 : 1);
        for (int row = 0; row < MM_ROWS; row++)
            t->quantize(wf + row * MM_COLS, wp + (size_t)row * (MM_COLS / t->blck_elems) * t->blck_bytes,
                        MM_COLS);
        qeil_matmul_weight W;
        CHECK_EQ_INT(qeil_matmul_weight_init(NULL, &W, t->type, MM_COLS, MM_ROWS, wp), QEIL_OK);
        size_t ws = qeil_matmul_work_size(t->type, MM_COLS, MM_VEC, 3);
        void *work = xmalloc(ws + 1);
        /* scalar, then this CPU's level (levels are per architecture) */
        for (int simd = 0; simd >= 0;
             simd = simd != (int)qeil_simd_best() ? (int)qeil_simd_best() : -1) {
            for (int nv = 1; nv <= MM_VEC; nv += 2) {
                for (int i = 0; i < 3; i++) {
                    memset(y[i], 0xff, sizeof y[i]);
                    CHECK_EQ_INT(qeil_matmul(NULL, pools[i], (qeil_simd)simd, &W, x, nv, y[i], work, ws),
                                 QEIL_OK);
                }
                if (memcmp(y[0], y[1], (size_t)nv * MM_ROWS * 4) != 0 ||
                    memcmp(y[0], y[2], (size_t)nv * MM_ROWS * 4) != 0)
                    TEST_FAIL_("%s/%s n_vec %d: results differ between 1, 2, 3 threads", t->name,
                               qeil_simd_name((qeil_simd)simd), nv);
            }
        }
        free(work);
    }
    free(wf);
    free(x);
    free(wq);
out:
    for (int i = 0; i < 3; i++) qeil_tpool_free(pools[i]);
}

/* qeil_matmul at this CPU's level gives, element by element, the bits of
 * that level's dot kernel: over MM_ROWS = 67 rows (a last tile of 3) and
 * 1..MM_VEC activations (a last tile of 1, 2 or 3), so the edge tiles of
 * the tiled kernels (qeil_gemm_for) are checked inside a real matmul. */
TEST(matmul_equals_level_dot)
{
    qeil_rng r;
    qeil_rng_seed(&r, 12);
    qeil_tpool *pool = NULL;
    CHECK_EQ_INT(qeil_tpool_create(NULL, 2, &pool), QEIL_OK);
    float *wf = xmalloc(MM_ROWS * MM_COLS * 4), *x = xmalloc(MM_VEC * MM_COLS * 4);
    uint8_t *wq = xmalloc(MM_ROWS * MM_COLS * 4 + 1);
    uint8_t *xq = xmalloc(MM_VEC * MM_COLS * 4);
    float y[MM_VEC * MM_ROWS];
    fill_random(&r, wf, MM_ROWS * MM_COLS);
    fill_random(&r, x, MM_VEC * MM_COLS);
    const qeil_simd simd = qeil_simd_best();
    int n_tiled = 0;
    for (int ti = 0; ti < N_DOT_TYPES; ti++) {
        const qeil_quant_traits *t = qeil_quant_traits_of(k_dot_types[ti]);
        const qeil_quant_traits *a = qeil_quant_traits_of(t->vec_type);
        const size_t rb = (size_t)(MM_COLS / t->blck_elems) * t->blck_bytes;
        const size_t xb = (size_t)(MM_COLS / a->blck_elems) * a->blck_bytes;
        uint8_t *wp = wq + (t->type == QEIL_GGML_F32 ? 0 : 1);
        for (int row = 0; row < MM_ROWS; row++) t->quantize(wf + row * MM_COLS, wp + row * rb, MM_COLS);
        for (int v = 0; v < MM_VEC; v++) a->quantize(x + v * MM_COLS, xq + v * xb, MM_COLS);
        const qeil_vec_dot_fn dot = qeil_vec_dot_for(t->type, simd);
        n_tiled += qeil_gemm_for(t->type, simd) != NULL;
        qeil_matmul_weight W;
        CHECK_EQ_INT(qeil_matmul_weight_init(NULL, &W, t->type, MM_COLS, MM_ROWS, wp), QEIL_OK);
        const size_t ws = qeil_matmul_work_size(t->type, MM_COLS, MM_VEC, 2);
        void *work = xmalloc(ws + 1);
        for (int nv = 1; nv <= MM_VEC; nv++) {
            memset(y, 0xff, sizeof y);
            CHECK_EQ_INT(qeil_matmul(NULL, pool, simd, &W, x, nv, y, work, ws), QEIL_OK);
            int bad = 0;
            for (int v = 0; v < nv; v++)
                for (int row = 0; row < MM_ROWS; row++) {
                    float s = NAN;
                    dot(MM_COLS, &s, wp + row * rb, xq + v * xb);
                    if (fbits(s) != fbits(y[v * MM_ROWS + row]) && bad++ < 3)
                        TEST_FAIL_("%s/%s n_vec %d, v %d row %d: %.9g != dot %.9g (bitwise)", t->name,
                                   qeil_simd_name(simd), nv, v, row, y[v * MM_ROWS + row], s);
                }
        }
        free(work);
    }
    printf("  level %s: %d types with a tiled kernel\n", qeil_simd_name(simd), n_tiled);
    free(wf);
    free(x);
    free(wq);
    free(xq);
    qeil_tpool_free(pool);
}

TEST(matmul_matches_naive)
{
    /* y vs a naive f32 matmul of the dequantized weights and dequantized
     * activations: |y - ref| <= 1e-5 sum_c |wd xd| per element. */
    qeil_rng r;
    qeil_rng_seed(&r, 10);
    qeil_tpool *pool = NULL;
    CHECK_EQ_INT(qeil_tpool_create(NULL, 2, &pool), QEIL_OK);
    float *wf = xmalloc(MM_ROWS * MM_COLS * 4), *wd = xmalloc(MM_ROWS * MM_COLS * 4);
    float *x = xmalloc(MM_VEC * MM_COLS * 4), *xd = xmalloc(MM_VEC * MM_COLS * 4);
    uint8_t *wq = xmalloc(MM_ROWS * MM_COLS * 4 + 1);
    /* fits Q8_0, Q8_1 or Q8_K */
    uint8_t xq[MM_VEC][MM_COLS / 32 * 36 + MM_COLS / 256 * 292];
    float y[MM_VEC * MM_ROWS];
    fill_random(&r, wf, MM_ROWS * MM_COLS);
    fill_random(&r, x, MM_VEC * MM_COLS);
    for (int ti = 0; ti < N_DOT_TYPES; ti++) {
        const qeil_quant_traits *t = qeil_quant_traits_of(k_dot_types[ti]);
        const qeil_quant_traits *a = t->vec_type == QEIL_GGML_F32 ? NULL : qeil_quant_traits_of(t->vec_type);
        size_t rb = (size_t)(MM_COLS / t->blck_elems) * t->blck_bytes;
        uint8_t *wp = wq + (t->type == QEIL_GGML_F32 ? 0 : 1);
        for (int row = 0; row < MM_ROWS; row++) {
            t->quantize(wf + row * MM_COLS, wp + row * rb, MM_COLS);
            t->dequantize(wp + row * rb, wd + row * MM_COLS, MM_COLS);
        }
        for (int v = 0; v < MM_VEC; v++) {
            if (a) {
                a->quantize(x + v * MM_COLS, xq[v], MM_COLS);
                a->dequantize(xq[v], xd + v * MM_COLS, MM_COLS);
            } else {
                memcpy(xd + v * MM_COLS, x + v * MM_COLS, MM_COLS * 4);
            }
        }
        qeil_matmul_weight W;
        CHECK_EQ_INT(qeil_matmul_weight_init(NULL, &W, t->type, MM_COLS, MM_ROWS, wp), QEIL_OK);
        size_t ws = qeil_matmul_work_size(t->type, MM_COLS, MM_VEC, 3);
        void *work = xmalloc(ws + 1);
        CHECK_EQ_INT(qeil_matmul(NULL, pool, qeil_simd_best(), &W, x, MM_VEC, y, work, ws), QEIL_OK);
        int bad = 0;
        for (int v = 0; v < MM_VEC; v++)
            for (int row = 0; row < MM_ROWS; row++) {
                double ref = 0, mag = 0;
                for (int c = 0; c < MM_COLS; c++) {
                    ref += (double)wd[row * MM_COLS + c] * xd[v * MM_COLS + c];
                    mag += fabs((double)wd[row * MM_COLS + c] * xd[v * MM_COLS + c]);
                }
                const double slack = q8_1_s_slack(t, wp + row * rb, xq[v], MM_COLS);
                if (!(fabs(y[v * MM_ROWS + row] - ref) <= 1e-5 * mag + slack + 1e-30) && bad++ < 3)
                    TEST_FAIL_("%s v %d row %d: %.9g vs %.9g", t->name, v, row, y[v * MM_ROWS + row], ref);
            }
        free(work);
    }
    free(wf);
    free(wd);
    free(x);
    free(xd);
    free(wq);
    qeil_tpool_free(pool);
}

/* qeil_matmul_multi gives each weight exactly qeil_matmul's bits: fused
 * (same activation format: Q4_0 + Q8_0, Q4_K + Q6_K, F16 + F32 + BF16) or
 * not (Q8_0 + Q4_K), with row counts that split unevenly over 2 threads. */
TEST(matmul_multi_equals_single)
{
    static const int groups[][3] = {
        {QEIL_GGML_Q4_0, QEIL_GGML_Q8_0, QEIL_GGML_Q4_0},
        {QEIL_GGML_Q4_K, QEIL_GGML_Q6_K, QEIL_GGML_Q4_K},
        {QEIL_GGML_F16, QEIL_GGML_F32, QEIL_GGML_BF16},
        {QEIL_GGML_Q8_0, QEIL_GGML_Q4_K, QEIL_GGML_Q8_0},
    };
    static const int rows[3] = {67, 35, 16};
    qeil_rng r;
    qeil_rng_seed(&r, 11);
    qeil_tpool *pool = NULL;
    CHECK_EQ_INT(qeil_tpool_create(NULL, 2, &pool), QEIL_OK);
    float *wf = xmalloc(MM_ROWS * MM_COLS * 4), *x = xmalloc(MM_VEC * MM_COLS * 4);
    fill_random(&r, wf, MM_ROWS * MM_COLS);
    fill_random(&r, x, MM_VEC * MM_COLS);
    uint8_t *wq[3];
    float *ys[3], *yr = xmalloc(MM_VEC * MM_ROWS * 4);
    for (int j = 0; j < 3; j++) {
        wq[j] = xmalloc(MM_ROWS * MM_COLS * 4);
        ys[j] = xmalloc(MM_VEC * MM_ROWS * 4);
    }
    size_t ws = 0;
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++)
        for (int j = 0; j < 3; j++) {
            size_t n = qeil_matmul_work_size(groups[g][j], MM_COLS, MM_VEC, 3);
            if (n > ws) ws = n;
        }
    void *work = xmalloc(ws + 1);
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
        qeil_matmul_weight W[3];
        const qeil_matmul_weight *pw[3];
        for (int j = 0; j < 3; j++) {
            const qeil_quant_traits *t = qeil_quant_traits_of(groups[g][j]);
            size_t rb = (size_t)(MM_COLS / t->blck_elems) * t->blck_bytes;
            for (int row = 0; row < rows[j]; row++)
                t->quantize(wf + (row + 7 * j) % MM_ROWS * MM_COLS, wq[j] + row * rb, MM_COLS);
            CHECK_EQ_INT(qeil_matmul_weight_init(NULL, &W[j], t->type, MM_COLS, rows[j], wq[j]),
                         QEIL_OK);
            pw[j] = &W[j];
        }
        for (int nv = 1; nv <= MM_VEC; nv += MM_VEC - 1) {
            for (int j = 0; j < 3; j++) memset(ys[j], 0xff, MM_VEC * MM_ROWS * 4);
            CHECK_EQ_INT(qeil_matmul_multi(NULL, pool, qeil_simd_best(), pw, 3, x, nv, ys, work, ws),
                         QEIL_OK);
            for (int j = 0; j < 3; j++) {
                memset(yr, 0, MM_VEC * MM_ROWS * 4);
                CHECK_EQ_INT(qeil_matmul(NULL, pool, qeil_simd_best(), &W[j], x, nv, yr, work, ws),
                             QEIL_OK);
                if (memcmp(yr, ys[j], (size_t)nv * rows[j] * 4) != 0)
                    TEST_FAIL_("group %zu weight %d (%s) n_vec %d: fused result differs", g, j,
                               qeil_quant_traits_of(groups[g][j])->name, nv);
            }
        }
    }
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_matmul_weight W0;
    CHECK_EQ_INT(qeil_matmul_weight_init(NULL, &W0, QEIL_GGML_F32, MM_COLS, 1, wf), QEIL_OK);
    const qeil_matmul_weight *five[5] = {&W0, &W0, &W0, &W0, &W0};
    CHECK_EQ_INT(qeil_matmul_multi(ctx, pool, QEIL_SIMD_SCALAR, five, 5, x, 1, ys, work, ws),
                 QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "allowed 1..4");
    CHECK_EQ_INT(qeil_matmul_multi(ctx, pool, QEIL_SIMD_SCALAR, five, 0, x, 1, ys, work, ws),
                 QEIL_ERR_RANGE);
    qeil_ctx_free(ctx);
    for (int j = 0; j < 3; j++) {
        free(wq[j]);
        free(ys[j]);
    }
    free(yr);
    free(work);
    free(wf);
    free(x);
    qeil_tpool_free(pool);
}

/* ------------------------------------------------------------------------ */
/* Packed (row-interleaved) batch path, pack.h                               */
/* ------------------------------------------------------------------------ */

#define PK_ROWS 13 /* one full group of 8 and a partial one */
#define PK_COLS 512
#define PK_VEC 11  /* a tile of 8 and the 2 + 1 remainder tiles */

static const int k_pack_types[] = {QEIL_GGML_Q4_0, QEIL_GGML_Q8_0, QEIL_GGML_Q4_K};

#define SKIP_WITHOUT_VNNI()                                                        \
    do {                                                                           \
        SKIP_WITHOUT_AVX2();                                                       \
        if (!qeil_cpu_has_avx512_vnni()) SKIP("CPU lacks AVX-512 VNNI");           \
    } while (0)

/* PK_ROWS quantized random rows of `type`; returns the row stride. */
static size_t pack_weights(qeil_rng *r, int type, uint8_t *wq, float *wd)
{
    const qeil_quant_traits *t = qeil_quant_traits_of(type);
    const size_t rb = (size_t)(PK_COLS / t->blck_elems) * t->blck_bytes;
    float wf[PK_COLS];
    for (int row = 0; row < PK_ROWS; row++) {
        fill_random(r, wf, PK_COLS);
        t->quantize(wf, wq + row * rb, PK_COLS);
        if (wd) t->dequantize(wq + row * rb, wd + row * PK_COLS, PK_COLS);
    }
    return rb;
}

/* The reference arithmetic is the dot product it claims: against f64 sums
 * of the dequantized weights times the dequantized activations (Q8_0, or
 * Q8_K for Q4_K),
 * |y - ref| <= 1e-5 sum |w x| (this one runs on any CPU). */
TEST(pack_reference_matches_naive)
{
    qeil_rng r;
    qeil_rng_seed(&r, 21);
    const size_t as = qeil_pack_act_stride(PK_COLS);
    uint8_t *wq = xmalloc(PK_ROWS * PK_COLS * 2), *act = xmalloc(PK_VEC * as);
    uint8_t tmp[QEIL_PACK_ACT_TMP(PK_COLS)];
    float *wd = xmalloc(PK_ROWS * PK_COLS * 4), *xd = xmalloc(PK_VEC * PK_COLS * 4);
    float *x = xmalloc(PK_VEC * PK_COLS * 4), y[PK_VEC * 8];
    qeil_pack_block *g = xmalloc(qeil_pack_group_bytes(PK_COLS));
    fill_random(&r, x, PK_VEC * PK_COLS);
    for (size_t ti = 0; ti < sizeof k_pack_types / sizeof k_pack_types[0]; ti++) {
        const int type = k_pack_types[ti], at = qeil_pack_act_type(type);
        for (int v = 0; v < PK_VEC; v++) { /* tmp keeps the Q8_0 / Q8_K form */
            qeil_pack_act(x + v * PK_COLS, PK_COLS, at, act + v * as, tmp);
            qeil_quant_traits_of(at)->dequantize(tmp, xd + v * PK_COLS, PK_COLS);
        }
        const size_t rb = pack_weights(&r, type, wq, wd);
        int bad = 0;
        for (int r0 = 0; r0 < PK_ROWS; r0 += 8) {
            const int nr = PK_ROWS - r0 < 8 ? PK_ROWS - r0 : 8;
            qeil_pack_rows_ref(type, wq + r0 * rb, rb, nr, PK_COLS, g);
            qeil_pack_gemm_ref(g, nr, PK_COLS, qeil_pack_type_has_min(type), act, as, PK_VEC, y, 8);
            for (int v = 0; v < PK_VEC; v++)
                for (int i = 0; i < nr; i++) {
                    double ref = 0, mag = 0;
                    for (int c = 0; c < PK_COLS; c++) {
                        const double p = (double)wd[(r0 + i) * PK_COLS + c] * xd[v * PK_COLS + c];
                        ref += p;
                        mag += fabs(p);
                    }
                    if (!(fabs(y[v * 8 + i] - ref) <= 1e-5 * mag + 1e-30) && bad++ < 3)
                        TEST_FAIL_("%s row %d vec %d: %.9g vs %.9g", qeil_ggml_type_name(type),
                                   r0 + i, v, y[v * 8 + i], ref);
                }
        }
    }
    free(wq);
    free(act);
    free(wd);
    free(xd);
    free(x);
    free(g);
}

/* The VNNI packer writes the reference's bytes, and the VNNI kernel
 * returns the reference's bits, for every group height 1..8 and every
 * batch width 1..PK_VEC (tiles of 8, 4, 2, 1). */
TEST(pack_vnni_equals_reference)
{
    SKIP_WITHOUT_VNNI();
#if QEIL_HAVE_X86_SIMD
    qeil_rng r;
    qeil_rng_seed(&r, 22);
    const size_t as = qeil_pack_act_stride(PK_COLS), gb = qeil_pack_group_bytes(PK_COLS);
    uint8_t *wq = xmalloc(PK_ROWS * PK_COLS * 2), *act = xmalloc(PK_VEC * as);
    uint8_t tmp[QEIL_PACK_ACT_TMP(PK_COLS)];
    float x[PK_COLS], y0[PK_VEC * 8], y1[PK_VEC * 8];
    qeil_pack_block *g0 = aligned_alloc(64, gb), *g1 = aligned_alloc(64, gb);
    for (size_t ti = 0; ti < sizeof k_pack_types / sizeof k_pack_types[0]; ti++) {
        const int type = k_pack_types[ti], hm = qeil_pack_type_has_min(type);
        for (int v = 0; v < PK_VEC; v++) {
            fill_random(&r, x, PK_COLS);
            qeil_pack_act(x, PK_COLS, qeil_pack_act_type(type), act + v * as, tmp);
        }
        const size_t rb = pack_weights(&r, type, wq, NULL);
        for (int nr = 1; nr <= 8; nr++) {
            memset(g0, 0x5a, gb);
            memset(g1, 0xa5, gb);
            qeil_pack_rows_ref(type, wq + (8 - nr) * rb, rb, nr, PK_COLS, g0);
            qeil_pack_rows_vnni(type, wq + (8 - nr) * rb, rb, nr, PK_COLS, g1);
            if (memcmp(g0, g1, gb) != 0)
                TEST_FAIL_("%s nr %d: packed bytes differ", qeil_ggml_type_name(type), nr);
            for (int nc = 1; nc <= PK_VEC; nc++) {
                qeil_pack_gemm_ref(g0, nr, PK_COLS, hm, act, as, nc, y0, 8);
                memset(y1, 0xff, sizeof y1);
                qeil_pack_gemm_vnni(g1, nr, PK_COLS, hm, act, as, nc, y1, 8);
                for (int v = 0; v < nc; v++)
                    if (memcmp(y0 + v * 8, y1 + v * 8, (size_t)nr * 4) != 0) {
                        TEST_FAIL_("%s nr %d nc %d vec %d: kernel bits differ from the reference",
                                   qeil_ggml_type_name(type), nr, nc, v);
                        break;
                    }
            }
        }
    }
    free(wq);
    free(act);
    free(g0);
    free(g1);
#endif
}

/* qeil_matmul with a batch past QEIL_MATMUL_PACK_MIN_VEC takes the packed
 * path: its y is the reference's per 8-row group, with 1, 2 or 3 threads,
 * and qeil_matmul_multi (Q4_0 + Q8_0 fused in one dispatch, Q4_K alone)
 * gives each weight the same bits. MM_ROWS rows: 8 groups and a partial
 * one. */
TEST(matmul_packed_path)
{
    SKIP_WITHOUT_VNNI();
    enum { NV = QEIL_MATMUL_PACK_MIN_VEC + 3 };
    qeil_rng r;
    qeil_rng_seed(&r, 23);
    qeil_tpool *pools[3] = {NULL, NULL, NULL};
    for (int i = 0; i < 3; i++) CHECK_EQ_INT(qeil_tpool_create(NULL, i + 1, &pools[i]), QEIL_OK);
    const size_t as = qeil_pack_act_stride(MM_COLS), gb = qeil_pack_group_bytes(MM_COLS);
    float *wf = xmalloc(MM_ROWS * MM_COLS * 4), *x = xmalloc(NV * MM_COLS * 4);
    float *yref = xmalloc(3 * NV * MM_ROWS * 4), *y = xmalloc(NV * MM_ROWS * 4);
    uint8_t *wq[3], *act = xmalloc(NV * as), tmp[QEIL_PACK_ACT_TMP(MM_COLS)];
    qeil_pack_block *g = xmalloc(gb);
    float gy[NV * 8];
    qeil_matmul_weight W[3];
    fill_random(&r, x, NV * MM_COLS);
    size_t ws = 0;
    for (int j = 0; j < 3; j++) {
        const qeil_quant_traits *t = qeil_quant_traits_of(k_pack_types[j]);
        for (int v = 0; v < NV; v++)
            qeil_pack_act(x + v * MM_COLS, MM_COLS, qeil_pack_act_type(t->type), act + v * as, tmp);
        const size_t rb = (size_t)(MM_COLS / t->blck_elems) * t->blck_bytes;
        wq[j] = xmalloc(MM_ROWS * rb);
        fill_random(&r, wf, MM_ROWS * MM_COLS);
        for (int row = 0; row < MM_ROWS; row++)
            t->quantize(wf + row * MM_COLS, wq[j] + row * rb, MM_COLS);
        CHECK_EQ_INT(qeil_matmul_weight_init(NULL, &W[j], t->type, MM_COLS, MM_ROWS, wq[j]), QEIL_OK);
        for (int r0 = 0; r0 < MM_ROWS; r0 += 8) {
            const int nr = MM_ROWS - r0 < 8 ? MM_ROWS - r0 : 8;
            qeil_pack_rows_ref(t->type, wq[j] + r0 * rb, rb, nr, MM_COLS, g);
            qeil_pack_gemm_ref(g, nr, MM_COLS, qeil_pack_type_has_min(t->type), act, as, NV, gy, 8);
            for (int v = 0; v < NV; v++)
                memcpy(yref + (size_t)j * NV * MM_ROWS + v * MM_ROWS + r0, gy + v * 8, (size_t)nr * 4);
        }
        size_t n = qeil_matmul_work_size(t->type, MM_COLS, NV, 3);
        CHECK(n >= qeil_matmul_work_size(QEIL_GGML_Q8_0, MM_COLS, NV, 1));
        ws = n > ws ? n : ws;
    }
    void *work = xmalloc(ws);
    for (int i = 0; i < 3 && pools[i]; i++) {
        for (int j = 0; j < 3; j++) {
            memset(y, 0xff, NV * MM_ROWS * 4);
            CHECK_EQ_INT(qeil_matmul(NULL, pools[i], QEIL_SIMD_AVX2, &W[j], x, NV, y, work, ws), QEIL_OK);
            if (memcmp(y, yref + (size_t)j * NV * MM_ROWS, NV * MM_ROWS * 4) != 0)
                TEST_FAIL_("%s, %d thread(s): packed matmul differs from the reference",
                           qeil_ggml_type_name(k_pack_types[j]), i + 1);
        }
        const qeil_matmul_weight *ws3[3] = {&W[0], &W[1], &W[2]};
        float *ym = xmalloc(3 * NV * MM_ROWS * 4);
        float *ys3[3] = {ym, ym + NV * MM_ROWS, ym + 2 * NV * MM_ROWS};
        CHECK_EQ_INT(qeil_matmul_multi(NULL, pools[i], QEIL_SIMD_AVX2, ws3, 3, x, NV, ys3, work, ws),
                     QEIL_OK);
        if (memcmp(ym, yref, 3 * NV * MM_ROWS * 4) != 0)
            TEST_FAIL_("matmul_multi, %d thread(s): differs from the reference", i + 1);
        free(ym);
    }
    /* a work buffer sized for one thread is too small for three */
    {
        size_t one = qeil_matmul_work_size(QEIL_GGML_Q4_0, MM_COLS, NV, 1);
        CHECK(one < qeil_matmul_work_size(QEIL_GGML_Q4_0, MM_COLS, NV, 3));
        if (pools[2])
            CHECK_EQ_INT(qeil_matmul(NULL, pools[2], QEIL_SIMD_AVX2, &W[0], x, NV, y, work, one),
                         QEIL_ERR_RANGE);
    }
    free(work);
    for (int j = 0; j < 3; j++) free(wq[j]);
    free(wf);
    free(x);
    free(yref);
    free(y);
    free(act);
    free(g);
    for (int i = 0; i < 3; i++) qeil_tpool_free(pools[i]);
}


TEST(matmul_rejects_bad_input)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_matmul_weight W;
    float data[512] = {0}, x[512] = {0}, y[4];
    CHECK_EQ_INT(qeil_matmul_weight_init(ctx, &W, QEIL_GGML_Q2_K, 256, 1, data), QEIL_ERR_UNSUPPORTED);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "weight type: 10");
    CHECK_EQ_INT(qeil_matmul_weight_init(ctx, &W, QEIL_GGML_Q4_K, 100, 1, data), QEIL_ERR_FORMAT);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "weight columns: 100");
    CHECK_EQ_INT(qeil_matmul_weight_init(ctx, &W, QEIL_GGML_F32, 0, 1, data), QEIL_ERR_RANGE);
    CHECK_EQ_INT(qeil_matmul_weight_init(ctx, &W, QEIL_GGML_Q8_0, 64, 2, data), QEIL_OK);
    uint8_t work[200];
    /* Q8_0 activations (68 bytes), or x8 ones with alignment slack and
     * the quantizer's scratch, whichever is larger */
    CHECK_EQ_INT(qeil_matmul_work_size(QEIL_GGML_Q8_0, 64, 1, 1),
                 64 + qeil_pack_act_stride(64) + QEIL_PACK_ACT_TMP(64));
    CHECK_EQ_INT(qeil_matmul(ctx, NULL, QEIL_SIMD_SCALAR, &W, x, 1, y, work, 67), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "need 68");
    CHECK_EQ_INT(qeil_matmul(ctx, NULL, QEIL_SIMD_SCALAR, &W, x, 0, y, work, 68), QEIL_ERR_RANGE);
    CHECK_EQ_INT(qeil_matmul(ctx, NULL, QEIL_SIMD_SCALAR, &W, x, 1, y, work, 68), QEIL_OK);
    CHECK(y[0] == 0.0f && y[1] == 0.0f);
    CHECK_EQ_INT(qeil_matmul_work_size(QEIL_GGML_F16, 64, 1, 1), 0); /* x used as is */
    qeil_ctx_free(ctx);
}

/* Row counts that split into pairs of groups and a single one (full or
 * partial) in every way: qeil_matmul on x8 weights (two-group kernel for
 * batches, one call per run of groups for one vector) returns, row by row,
 * the one-group kernel's bits, for 1 and 2 threads and 1..17 vectors. */
TEST(matmul_x8_pairs_and_singles)
{
    SKIP_WITHOUT_VNNI();
#if QEIL_HAVE_X86_SIMD
    enum { COLS = 512, MAXR = 41, NV = 17 };
    static const int rows[] = {8, 9, 15, 16, 17, 24, 25, 32, 40, 41};
    static const int types[] = {QEIL_GGML_Q4_0, QEIL_GGML_Q8_0, QEIL_GGML_Q4_K};
    qeil_rng r;
    qeil_rng_seed(&r, 77);
    qeil_tpool *pools[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++) CHECK_EQ_INT(qeil_tpool_create(NULL, i + 1, &pools[i]), QEIL_OK);
    float *wf = xmalloc(MAXR * COLS * 4), *x = xmalloc(NV * COLS * 4);
    enum { GUARD = 64 }; /* floats after y's nv * rows that no call may write */
    float *y = xmalloc((NV * MAXR + GUARD) * 4), *yref = xmalloc(NV * MAXR * 4), gy[NV * 8];
    fill_random(&r, wf, MAXR * COLS);
    fill_random(&r, x, NV * COLS);
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const int type = types[ti];
        const qeil_quant_traits *t = qeil_quant_traits_of(type);
        const size_t rb = (size_t)(COLS / t->blck_elems) * t->blck_bytes, gb = qeil_x8_group_bytes(type, COLS);
        const size_t ws = qeil_matmul_work_size(type, COLS, NV, 2);
        const size_t as = qeil_pack_act_stride(COLS);
        uint8_t *wq = xmalloc(MAXR * rb), *x8 = xmalloc(qeil_x8_bytes(type, COLS, MAXR)), *work = xmalloc(ws);
        uint8_t *act = xmalloc(NV * as), tmp[QEIL_PACK_ACT_TMP(COLS)];
        for (int v = 0; v < NV; v++) qeil_x8_act(x + v * COLS, COLS, type, act + v * as, tmp);
        for (int row_i = 0; row_i < MAXR; row_i++) t->quantize(wf + row_i * COLS, wq + row_i * rb, COLS);
        for (size_t ri = 0; ri < sizeof rows / sizeof rows[0]; ri++) {
            const int nr = rows[ri];
            qeil_x8_repack(type, wq, rb, COLS, nr, x8);
            qeil_matmul_weight W;
            CHECK_EQ_INT(qeil_matmul_weight_init(NULL, &W, type, COLS, nr, x8), QEIL_OK);
            W.layout = QEIL_MATMUL_X8;
            for (int nv = 1; nv <= NV; nv++) {
                /* reference: the one-group kernel, group by group */
                CHECK_EQ_INT(qeil_matmul(NULL, pools[0], QEIL_SIMD_AVX2, &W, x, nv, yref, work, ws), QEIL_OK);
                for (int r0 = 0; r0 < nr; r0 += 8) {
                    const int g_rows = nr - r0 < 8 ? nr - r0 : 8;
                    qeil_x8_gemm_vnni(type, x8 + (size_t)(r0 / 8) * gb, g_rows, COLS, act, as, nv, gy, 8);
                    for (int v = 0; v < nv; v++)
                        if (memcmp(gy + v * 8, yref + v * nr + r0, (size_t)g_rows * 4) != 0) {
                            TEST_FAIL_("%s, %d rows, %d vectors: rows %d.. differ from the one-group kernel",
                                       t->name, nr, nv, r0);
                            v = nv;
                            r0 = nr;
                        }
                }
                memset(y, 0xff, (NV * MAXR + GUARD) * 4);
                CHECK_EQ_INT(qeil_matmul(NULL, pools[1], QEIL_SIMD_AVX2, &W, x, nv, y, work, ws), QEIL_OK);
                if (memcmp(y, yref, (size_t)nv * nr * 4) != 0)
                    TEST_FAIL_("%s, %d rows, %d vectors: 2 threads differ from 1", t->name, nr, nv);
                const uint32_t *g32 = (const uint32_t *)(const void *)(y + nv * nr);
                for (int i = 0; i < GUARD; i++)
                    if (g32[i] != 0xffffffffu) {
                        TEST_FAIL_("%s, %d rows, %d vectors: wrote past y (float %d after)", t->name, nr, nv, i);
                        break;
                    }
            }
        }
        free(wq);
        free(x8);
        free(work);
        free(act);
    }
    free(wf);
    free(x);
    free(y);
    free(yref);
    for (int i = 0; i < 2; i++) qeil_tpool_free(pools[i]);
#endif
}

/* The x8 layout (weights interleaved once at load): repacking keeps every
 * row (qeil_x8_get_row returns the type's dequantization bit for bit, rows
 * past a multiple of 8 included), and qeil_matmul on x8 weights returns the
 * packed reference's bits for every batch size 1..15 (decode included) and
 * 1..3 threads; fused Q/K/V-style calls equal single ones; mixing layouts
 * in one fused call is refused. */
TEST(matmul_x8_layout)
{
    SKIP_WITHOUT_VNNI();
    enum { NV = QEIL_MATMUL_PACK_MIN_VEC + 7 }; /* every tile width: 8 + 4 + 2 + 1 */
    qeil_rng r;
    qeil_rng_seed(&r, 24);
    qeil_tpool *pools[3] = {NULL, NULL, NULL};
    for (int i = 0; i < 3; i++) CHECK_EQ_INT(qeil_tpool_create(NULL, i + 1, &pools[i]), QEIL_OK);
    const size_t as = qeil_pack_act_stride(MM_COLS), gb = qeil_pack_group_bytes(MM_COLS);
    float *wf = xmalloc(MM_ROWS * MM_COLS * 4), *x = xmalloc(NV * MM_COLS * 4);
    float *yref = xmalloc(NV * MM_ROWS * 4), *y = xmalloc(NV * MM_ROWS * 4);
    float row[MM_COLS], want[MM_COLS], gy[NV * 8];
    uint8_t *act = xmalloc(NV * as), tmp[QEIL_PACK_ACT_TMP(MM_COLS)];
    qeil_pack_block *g = xmalloc(gb);
    fill_random(&r, x, NV * MM_COLS);
    for (int v = 0; v < NV; v++) qeil_pack_act(x + v * MM_COLS, MM_COLS, QEIL_GGML_Q8_0, act + v * as, tmp);
    uint8_t *wq[2], *x8[2];
    qeil_matmul_weight W[2];
    size_t ws = 0;
    for (int j = 0; j < 2; j++) {
        const int type = j ? QEIL_GGML_Q8_0 : QEIL_GGML_Q4_0;
        const qeil_quant_traits *t = qeil_quant_traits_of(type);
        const size_t rb = (size_t)(MM_COLS / 32) * t->blck_bytes;
        wq[j] = xmalloc(MM_ROWS * rb);
        x8[j] = xmalloc(qeil_x8_bytes(type, MM_COLS, MM_ROWS));
        CHECK_EQ_INT(qeil_x8_bytes(type, MM_COLS, MM_ROWS), ((MM_ROWS + 7) / 8) * 8 * rb);
        fill_random(&r, wf, MM_ROWS * MM_COLS);
        for (int row_i = 0; row_i < MM_ROWS; row_i++) t->quantize(wf + row_i * MM_COLS, wq[j] + row_i * rb, MM_COLS);
        qeil_x8_repack(type, wq[j], rb, MM_COLS, MM_ROWS, x8[j]);
#if QEIL_HAVE_X86_SIMD
        {
            const size_t nbx = qeil_x8_bytes(type, MM_COLS, MM_ROWS);
            uint8_t *x8v = xmalloc(nbx);
            memset(x8v, 0x5a, nbx);
            qeil_x8_repack_vnni(type, wq[j], rb, MM_COLS, MM_ROWS, x8v);
            if (memcmp(x8v, x8[j], nbx) != 0) TEST_FAIL_("%s: AVX2 repack bytes differ", t->name);
            free(x8v);
        }
#endif
        int bad = 0;
        for (int row_i = 0; row_i < MM_ROWS; row_i++) {
            qeil_x8_get_row(type, x8[j], MM_COLS, row_i, row);
            t->dequantize(wq[j] + row_i * rb, want, MM_COLS);
            bad += memcmp(row, want, sizeof row) != 0;
        }
        if (bad) TEST_FAIL_("%s: %d rows differ after the x8 round trip", t->name, bad);
        CHECK_EQ_INT(qeil_matmul_weight_init(NULL, &W[j], type, MM_COLS, MM_ROWS, x8[j]), QEIL_OK);
        W[j].layout = QEIL_MATMUL_X8;
        size_t n = qeil_matmul_work_size(type, MM_COLS, NV, 3);
        ws = n > ws ? n : ws;
    }
    void *work = xmalloc(ws);
    for (int j = 0; j < 2; j++) {
        const int type = W[j].type;
        const size_t rb = (size_t)(MM_COLS / 32) * qeil_quant_traits_of(type)->blck_bytes;
        for (int r0 = 0; r0 < MM_ROWS; r0 += 8) {
            const int nr = MM_ROWS - r0 < 8 ? MM_ROWS - r0 : 8;
            qeil_pack_rows_ref(type, wq[j] + r0 * rb, rb, nr, MM_COLS, g);
            qeil_pack_gemm_ref(g, nr, MM_COLS, 0, act, as, NV, gy, 8);
            for (int v = 0; v < NV; v++) memcpy(yref + v * MM_ROWS + r0, gy + v * 8, (size_t)nr * 4);
        }
        for (int i = 0; i < 3 && pools[i]; i++)
            for (int nv = 1; nv <= NV; nv++) {
                memset(y, 0xff, NV * MM_ROWS * 4);
                CHECK_EQ_INT(qeil_matmul(NULL, pools[i], QEIL_SIMD_AVX2, &W[j], x, nv, y, work, ws), QEIL_OK);
                if (memcmp(y, yref, (size_t)nv * MM_ROWS * 4) != 0) {
                    TEST_FAIL_("%s x8, %d vector(s), %d thread(s): differs from the packed reference",
                               qeil_ggml_type_name(type), nv, i + 1);
                    break;
                }
            }
    }
    if (pools[1]) {
        /* Q/K/V-style: three x8 Q4_0 weights in one dispatch */
        const qeil_matmul_weight *w3[3] = {&W[0], &W[0], &W[0]};
        float *ym = xmalloc(3 * 3 * MM_ROWS * 4);
        float *ys3[3] = {ym, ym + 3 * MM_ROWS, ym + 6 * MM_ROWS};
        CHECK_EQ_INT(qeil_matmul_multi(NULL, pools[1], QEIL_SIMD_AVX2, w3, 3, x, 3, ys3, work, ws), QEIL_OK);
        CHECK_EQ_INT(qeil_matmul(NULL, pools[1], QEIL_SIMD_AVX2, &W[0], x, 3, y, work, ws), QEIL_OK);
        for (int k = 0; k < 3; k++) CHECK(memcmp(ys3[k], y, 3 * MM_ROWS * 4) == 0);
        /* x8 Q4_0 + x8 Q8_0 take different activation offsets: not fused, still right */
        const qeil_matmul_weight *w2[2] = {&W[0], &W[1]};
        CHECK_EQ_INT(qeil_matmul_multi(NULL, pools[1], QEIL_SIMD_AVX2, w2, 2, x, 3, ys3, work, ws), QEIL_OK);
        CHECK(memcmp(ys3[0], y, 3 * MM_ROWS * 4) == 0);
        /* the scalar level cannot run x8 weights */
        CHECK_EQ_INT(qeil_matmul(NULL, pools[1], QEIL_SIMD_SCALAR, &W[0], x, 1, y, work, ws),
                     QEIL_ERR_UNSUPPORTED);
        free(ym);
    }
    free(work);
    for (int j = 0; j < 2; j++) {
        free(wq[j]);
        free(x8[j]);
    }
    free(wf);
    free(x);
    free(yref);
    free(y);
    free(act);
    free(g);
    for (int i = 0; i < 3; i++) qeil_tpool_free(pools[i]);
}

/* Q4_K in the x8 layout: the repack keeps every row (get_row = the type's
 * dequantization), the AVX2 repack writes the portable one's bytes, and
 * matmul returns qeil_x8_q4k_ref's bits for 1..15 vectors and 1..3
 * threads; the reference itself is within 1e-5 sum|w x| of an f64 dot
 * product of the dequantized weights and the Q8_K-dequantized inputs. */
TEST(matmul_x8_q4_k)
{
    SKIP_WITHOUT_VNNI();
#if QEIL_HAVE_X86_SIMD
    enum { NV = QEIL_MATMUL_PACK_MIN_VEC + 7 }; /* every tile width: 8 + 4 + 2 + 1 */
    qeil_rng r;
    qeil_rng_seed(&r, 25);
    qeil_tpool *pools[3] = {NULL, NULL, NULL};
    for (int i = 0; i < 3; i++) CHECK_EQ_INT(qeil_tpool_create(NULL, i + 1, &pools[i]), QEIL_OK);
    const int type = QEIL_GGML_Q4_K;
    const size_t rb = (size_t)(MM_COLS / 256) * QEIL_Q4_K_BYTES, as = qeil_pack_act_stride(MM_COLS);
    const size_t nbx = qeil_x8_bytes(type, MM_COLS, MM_ROWS), gb = qeil_x8_group_bytes(type, MM_COLS);
    float *wf = xmalloc(MM_ROWS * MM_COLS * 4), *wd = xmalloc(MM_ROWS * MM_COLS * 4);
    float *x = xmalloc(NV * MM_COLS * 4), *xd = xmalloc(NV * MM_COLS * 4);
    float *yref = xmalloc(NV * MM_ROWS * 4), *y = xmalloc(NV * MM_ROWS * 4), gy[NV * 8], row[MM_COLS];
    uint8_t *wq = xmalloc(MM_ROWS * rb), *x8 = xmalloc(nbx), *x8v = xmalloc(nbx);
    uint8_t *act = xmalloc(NV * as), tmp[QEIL_PACK_ACT_TMP(MM_COLS)];
    fill_random(&r, wf, MM_ROWS * MM_COLS);
    fill_random(&r, x, NV * MM_COLS);
    for (int i = 0; i < MM_ROWS; i++) {
        qeil_quantize_row_q4_k(wf + i * MM_COLS, wq + i * rb, MM_COLS);
        qeil_dequantize_row_q4_k(wq + i * rb, wd + i * MM_COLS, MM_COLS);
    }
    for (int v = 0; v < NV; v++) {
        qeil_x8_act(x + v * MM_COLS, MM_COLS, type, act + v * as, tmp);
        qeil_dequantize_row_q8_k(tmp, xd + v * MM_COLS, MM_COLS); /* tmp keeps the Q8_K form */
    }
    qeil_x8_repack(type, wq, rb, MM_COLS, MM_ROWS, x8);
    memset(x8v, 0x5a, nbx);
    qeil_x8_repack_vnni(type, wq, rb, MM_COLS, MM_ROWS, x8v);
    CHECK(memcmp(x8, x8v, nbx) == 0);
    int bad = 0;
    for (int i = 0; i < MM_ROWS; i++) {
        qeil_x8_get_row(type, x8, MM_COLS, i, row);
        bad += memcmp(row, wd + i * MM_COLS, sizeof row) != 0;
    }
    CHECK_EQ_INT(bad, 0);
    bad = 0;
    for (int r0 = 0; r0 < MM_ROWS; r0 += 8) {
        const int nr = MM_ROWS - r0 < 8 ? MM_ROWS - r0 : 8;
        qeil_x8_q4k_ref(x8 + (size_t)(r0 / 8) * gb, nr, MM_COLS, act, as, NV, gy, 8);
        for (int v = 0; v < NV; v++)
            for (int i = 0; i < nr; i++) {
                yref[v * MM_ROWS + r0 + i] = gy[v * 8 + i];
                double ref = 0, mag = 0;
                for (int c = 0; c < MM_COLS; c++) {
                    const double p = (double)wd[(r0 + i) * MM_COLS + c] * xd[v * MM_COLS + c];
                    ref += p;
                    mag += fabs(p);
                }
                if (!(fabs(gy[v * 8 + i] - ref) <= 1e-5 * mag + 1e-30) && bad++ < 3)
                    TEST_FAIL_("row %d vec %d: %.9g vs %.9g", r0 + i, v, gy[v * 8 + i], ref);
            }
    }
    qeil_matmul_weight W;
    CHECK_EQ_INT(qeil_matmul_weight_init(NULL, &W, type, MM_COLS, MM_ROWS, x8), QEIL_OK);
    W.layout = QEIL_MATMUL_X8;
    const size_t ws = qeil_matmul_work_size(type, MM_COLS, NV, 3);
    void *work = xmalloc(ws);
    for (int i = 0; i < 3 && pools[i]; i++)
        for (int nv = 1; nv <= NV; nv++) {
            memset(y, 0xff, NV * MM_ROWS * 4);
            CHECK_EQ_INT(qeil_matmul(NULL, pools[i], QEIL_SIMD_AVX2, &W, x, nv, y, work, ws), QEIL_OK);
            if (memcmp(y, yref, (size_t)nv * MM_ROWS * 4) != 0) {
                TEST_FAIL_("q4_k x8, %d vector(s), %d thread(s): differs from the reference", nv, i + 1);
                break;
            }
        }
    free(work);
    free(wf);
    free(wd);
    free(x);
    free(xd);
    free(yref);
    free(y);
    free(wq);
    free(x8);
    free(x8v);
    free(act);
    for (int i = 0; i < 3; i++) qeil_tpool_free(pools[i]);
#endif
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--simd-level") == 0) {
        printf("%s\n", qeil_simd_name(qeil_simd_best()));
        return 0;
    }
    self_path = argv[0];
    printf("  simd level: %s\n", qeil_simd_name(qeil_simd_best()));
    RUN(f16_to_f32_exhaustive);
    RUN(f32_to_f16_rounding);
    RUN(f16c_matches_portable);
    RUN(f16_rows_dispatch);
    RUN(bf16_exhaustive);
    RUN(layout_float_rows);
    RUN(layout_q8_0);
    RUN(layout_q4_0);
    RUN(layout_q4_k);
    RUN(layout_q6_k);
    RUN(layout_q8_k);
    RUN(layout_q5_0);
    RUN(layout_q4_1);
    RUN(layout_q5_1);
    RUN(layout_q8_1);
    RUN(layout_q5_k);
    RUN(layout_iq4_nl);
    RUN(layout_iq4_xs);
    RUN(quant_error_float_types);
    RUN(quant_error_q8_0);
    RUN(quant_error_q4_0);
    RUN(quant_error_q4_k);
    RUN(quant_error_q6_k);
    RUN(quant_error_q8_k);
    RUN(quant_error_q4_1_q5_1);
    RUN(quant_error_q5_0);
    RUN(quant_error_q8_1);
    RUN(quant_error_q5_k);
    RUN(quant_error_iq4_nl);
    RUN(quant_error_iq4_xs);
    RUN(quantize_q8_0_q8_k_avx2_match_scalar);
    RUN(dot_avx2_vs_scalar);
    RUN(dot_scalar_vs_dequantized);
    RUN(dot_avx2_vs_dequantized);
    RUN(dot_neon_vs_scalar);
    RUN(dot_neon_vs_dequantized);
    RUN(no_simd_env_forces_scalar);
    RUN(dot_dispatch);
    RUN(gemm_tiles_vs_dot);
    RUN(gemm_neon_tiles_vs_dot);
    RUN(tpool_parallel_for_covers_once);
    RUN(tpool_barrier);
    RUN(matmul_threads_bit_identical);
    RUN(matmul_equals_level_dot);
    RUN(matmul_matches_naive);
    RUN(matmul_multi_equals_single);
    RUN(matmul_rejects_bad_input);
    RUN(pack_reference_matches_naive);
    RUN(pack_vnni_equals_reference);
    RUN(matmul_packed_path);
    RUN(matmul_x8_layout);
    RUN(matmul_x8_q4_k);
    RUN(matmul_x8_pairs_and_singles);
    return test_summary("kernels");
}
