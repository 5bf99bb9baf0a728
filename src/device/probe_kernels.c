/* probe_kernels.c — measurement kernels of the CPU probe (see
 * probe_kernels.h for the contract and docs/probe.md for the method).
 *
 * Each kernel exists as portable C and, on x86 with GCC or Clang, as SIMD
 * functions compiled with __attribute__((target(...))) so that one binary
 * built for baseline x86-64 still measures the AVX2 / VNNI units of the CPU
 * it runs on. What the CPU has comes from src/core/cpu.c, the module the
 * engine's kernel dispatch asks too. */
#include "device/probe_kernels.h"

#include "core/cpu.h"

/* PK_CPUID: we can ask the CPU what it has (x86, GCC or Clang).
 * PK_X86: and the SIMD kernels are built (-DQEIL_NO_SIMD builds the
 * portable kernels only, to test that path on any machine). */
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define PK_CPUID 1
#ifndef QEIL_NO_SIMD
#define PK_X86 1
#include <immintrin.h>
/* AVX-VNNI (VEX vpdpbusd) intrinsics: GCC 11, Clang 12. */
#if (defined(__clang__) && __clang_major__ >= 12) || (!defined(__clang__) && __GNUC__ >= 11)
#define PK_AVXVNNI 1
#endif
#endif
#endif

/* PK_ARM: the AArch64 NEON kernels are built (base ARMv8.0; SDOT by its
 * encoding, as in src/kernels/arm/dot_neon.c). */
#if defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(QEIL_NO_SIMD)
#define PK_ARM 1
#include <arm_neon.h>
#endif

/* An empty asm that claims to change v: the compiler must assume a new value
 * each time, so it cannot hoist or merge the loop-invariant arithmetic that
 * consumes v. It emits no instruction. */
#define PK_OPAQUE(v) __asm__("" : "+x"(v))

/* ------------------------------------------------------------------------ */
/* What the CPU has                                                          */
/* ------------------------------------------------------------------------ */

#ifdef PK_CPUID
enum {
    HAS_AVX = QEIL_CPU_AVX,
    HAS_AVX2 = QEIL_CPU_AVX2,
    HAS_FMA = QEIL_CPU_FMA,
    HAS_AVX512VNNI_VL = QEIL_CPU_AVX512VNNI | QEIL_CPU_AVX512VL,
    HAS_AVXVNNI = QEIL_CPU_AVXVNNI
};
static int cpu_has(unsigned features)
{
    return (qeil_cpu_features() & features) == features;
}
#endif

void qeil_pk_cpu_rates(double *f32_per_cycle, double *int8_per_cycle)
{
    *f32_per_cycle = 0;
    *int8_per_cycle = 0;
#ifdef PK_CPUID
    if (cpu_has(HAS_AVX2) && cpu_has(HAS_FMA)) *f32_per_cycle = 32; /* 2 FMA pipes x 8 x 2 */
    else if (cpu_has(HAS_AVX)) *f32_per_cycle = 16; /* 8-wide mul + 8-wide add pipe */
    else *f32_per_cycle = 8;                        /* SSE: 4-wide mul + 4-wide add */
    if (cpu_has(HAS_AVX512VNNI_VL | QEIL_CPU_AVX512F))
        *int8_per_cycle = 256; /* 2 vpdpbusd zmm per cycle x 64 MACs x 2 (full-width
                                  512-bit units: Zen 5, Intel server cores) */
    else if (cpu_has(HAS_AVXVNNI))
        *int8_per_cycle = 128; /* 2 vpdpbusd ymm per cycle x 32 MACs x 2 */
    else if (cpu_has(HAS_AVX2))
        *int8_per_cycle = 64;  /* vpmaddubsw + vpmaddwd on 2 pipes: 32 MACs/cycle x 2 */
#elif defined(__aarch64__)
    /* The 128-bit ASIMD cores of the catalog (Cortex-A76/A78/X, Apple
     * M-class have 4 pipes: an underestimate there): 2 FMLA pipes x 4
     * lanes x 2; int8 2 SDOT pipes x 16 MACs x 2, or without SDOT the
     * SMULL + SADALP pair, 8 MACs per pipe-cycle: the forms the NEON
     * probe kernels below run. */
    const unsigned f = qeil_cpu_features();
    if (f & QEIL_CPU_ASIMD) {
        *f32_per_cycle = 16;
        *int8_per_cycle = (f & QEIL_CPU_ASIMDDP) ? 64 : 16;
    }
#endif
}

/* ------------------------------------------------------------------------ */
/* Dispatch                                                                  */
/* ------------------------------------------------------------------------ */

const char *qeil_pk_name(qeil_pk_isa isa, int f32)
{
    switch (isa) {
    case QEIL_PK_SCALAR: return "scalar";
    case QEIL_PK_AVX2: return f32 ? "avx2+fma" : "avx2";
    case QEIL_PK_AVXVNNI: return "avx-vnni";
    case QEIL_PK_AVX512VNNI: return "avx512-vnni";
    case QEIL_PK_AVX512VNNI_ZMM: return "avx512-vnni-zmm";
    case QEIL_PK_NEON: return "neon";
    case QEIL_PK_NEON_SDOT: return "neon-sdot";
    case QEIL_PK_COUNT: break;
    }
    return "?";
}

int qeil_pk_have_f32(qeil_pk_isa isa)
{
    if (isa == QEIL_PK_SCALAR) return 1;
#ifdef PK_ARM
    if (isa == QEIL_PK_NEON) return (qeil_cpu_features() & QEIL_CPU_ASIMD) != 0;
#endif
#ifdef PK_X86
    if (isa == QEIL_PK_AVX2) return cpu_has(HAS_AVX2) && cpu_has(HAS_FMA);
#endif
    return 0;
}

int qeil_pk_have_int8(qeil_pk_isa isa)
{
    if (isa == QEIL_PK_SCALAR) return 1;
#ifdef PK_ARM
    if (isa == QEIL_PK_NEON) return (qeil_cpu_features() & QEIL_CPU_ASIMD) != 0;
    if (isa == QEIL_PK_NEON_SDOT) return (qeil_cpu_features() & QEIL_CPU_ASIMDDP) != 0;
#endif
#ifdef PK_X86
    if (isa == QEIL_PK_AVX2) return cpu_has(HAS_AVX2);
#ifdef PK_AVXVNNI
    if (isa == QEIL_PK_AVXVNNI) return cpu_has(HAS_AVXVNNI);
#endif
    if (isa == QEIL_PK_AVX512VNNI) return cpu_has(HAS_AVX512VNNI_VL);
    if (isa == QEIL_PK_AVX512VNNI_ZMM) return cpu_has(HAS_AVX512VNNI_VL | QEIL_CPU_AVX512F);
#endif
    return 0;
}

int qeil_pk_have_triad(qeil_pk_isa isa)
{
    if (isa == QEIL_PK_SCALAR) return 1;
#ifdef PK_X86
    if (isa == QEIL_PK_AVX2) return cpu_has(HAS_AVX2);
#endif
    return 0;
}

qeil_pk_isa qeil_pk_best_f32(void)
{
    if (qeil_pk_have_f32(QEIL_PK_NEON)) return QEIL_PK_NEON;
    return qeil_pk_have_f32(QEIL_PK_AVX2) ? QEIL_PK_AVX2 : QEIL_PK_SCALAR;
}

qeil_pk_isa qeil_pk_best_int8(void)
{
    /* The forms the engine runs: its VNNI kernels use the EVEX vpdpbusd
     * whenever the CPU has AVX512-VNNI + VL (qeil_cpu_has_avx512_vnni), and
     * only there: on ymm in the tiles (kernels/x86/dot_avx2.c) and decode,
     * on zmm in the batch kernels of the x8 layout (kernels/pack.c,
     * prefill), so the peak is the zmm form's. The two encodings do not
     * run at the same rate everywhere: on Zen 5 the VEX (AVX-VNNI) form
     * measured ~1.8x slower, and a peak taken from it put the engine's
     * prefill at 222 % of "peak". VEX only where EVEX is absent (Alder
     * Lake and later client cores: the engine then runs AVX2 maddubs, so
     * the AVX-VNNI figure is an upper bound for it). */
    /* AArch64: SDOT where the engine's kernels use it (HWCAP_ASIMDDP) */
    if (qeil_pk_have_int8(QEIL_PK_NEON_SDOT)) return QEIL_PK_NEON_SDOT;
    if (qeil_pk_have_int8(QEIL_PK_NEON)) return QEIL_PK_NEON;
    if (qeil_pk_have_int8(QEIL_PK_AVX512VNNI_ZMM)) return QEIL_PK_AVX512VNNI_ZMM;
    if (qeil_pk_have_int8(QEIL_PK_AVX512VNNI)) return QEIL_PK_AVX512VNNI;
    if (qeil_pk_have_int8(QEIL_PK_AVXVNNI)) return QEIL_PK_AVXVNNI;
    if (qeil_pk_have_int8(QEIL_PK_AVX2)) return QEIL_PK_AVX2;
    return QEIL_PK_SCALAR;
}

qeil_pk_isa qeil_pk_best_triad(void)
{
    return qeil_pk_have_triad(QEIL_PK_AVX2) ? QEIL_PK_AVX2 : QEIL_PK_SCALAR;
}

/* ------------------------------------------------------------------------ */
/* f32 FMA throughput                                                        */
/* ------------------------------------------------------------------------ */

/* acc = acc * M + A converges to A / (1 - M) = 1: no overflow, no denormals
 * (denormal operands would slow some CPUs down by 100x). */
#define F32_M 0.999f
#define F32_A 0.001f
#define F32_SCALAR_ACC 32 /* independent chains; 8 SSE vectors if vectorised */

static float f32_scalar(uint64_t iters)
{
    float acc[F32_SCALAR_ACC];
    for (int j = 0; j < F32_SCALAR_ACC; j++) acc[j] = 0.01f * (float)j;
    for (uint64_t it = 0; it < iters; it++)
        for (int j = 0; j < F32_SCALAR_ACC; j++) acc[j] = acc[j] * F32_M + F32_A;
    float s = 0;
    for (int j = 0; j < F32_SCALAR_ACC; j++) s += acc[j];
    return s;
}

#ifdef PK_X86
/* 12 independent ymm accumulators: FMA latency 4 cycles x 2 pipes needs at
 * least 8 chains in flight (Haswell..Lion Cove, Zen 2..5); 12 leaves margin
 * for 5-cycle parts, and 12 + 2 constants fit the 16 ymm registers. */
__attribute__((target("avx2,fma"))) static float f32_avx2(uint64_t iters)
{
    const __m256 m = _mm256_set1_ps(F32_M), a = _mm256_set1_ps(F32_A);
    __m256 c0 = _mm256_set1_ps(0.00f), c1 = _mm256_set1_ps(0.01f), c2 = _mm256_set1_ps(0.02f);
    __m256 c3 = _mm256_set1_ps(0.03f), c4 = _mm256_set1_ps(0.04f), c5 = _mm256_set1_ps(0.05f);
    __m256 c6 = _mm256_set1_ps(0.06f), c7 = _mm256_set1_ps(0.07f), c8 = _mm256_set1_ps(0.08f);
    __m256 c9 = _mm256_set1_ps(0.09f), c10 = _mm256_set1_ps(0.10f), c11 = _mm256_set1_ps(0.11f);
    for (uint64_t it = 0; it < iters; it++) {
        c0 = _mm256_fmadd_ps(c0, m, a);
        c1 = _mm256_fmadd_ps(c1, m, a);
        c2 = _mm256_fmadd_ps(c2, m, a);
        c3 = _mm256_fmadd_ps(c3, m, a);
        c4 = _mm256_fmadd_ps(c4, m, a);
        c5 = _mm256_fmadd_ps(c5, m, a);
        c6 = _mm256_fmadd_ps(c6, m, a);
        c7 = _mm256_fmadd_ps(c7, m, a);
        c8 = _mm256_fmadd_ps(c8, m, a);
        c9 = _mm256_fmadd_ps(c9, m, a);
        c10 = _mm256_fmadd_ps(c10, m, a);
        c11 = _mm256_fmadd_ps(c11, m, a);
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3)),
                             _mm256_add_ps(_mm256_add_ps(c4, c5), _mm256_add_ps(c6, c7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(c8, c9), _mm256_add_ps(c10, c11)));
    float lane[8];
    _mm256_storeu_ps(lane, s);
    float t = 0;
    for (int k = 0; k < 8; k++) t += lane[k];
    return t;
}
#endif

#ifdef PK_ARM
/* 12 independent float32x4 FMLA chains: latency 4 x 2 pipes (Cortex-A76,
 * A78, X1; Neoverse N1) needs 8; 4-pipe cores (X2+, Apple) need 16, so
 * this is a floor there. */
static float f32_neon(uint64_t iters)
{
    const float32x4_t m = vdupq_n_f32(F32_M), a = vdupq_n_f32(F32_A);
    float32x4_t c[12];
    for (int k = 0; k < 12; k++) c[k] = vdupq_n_f32(0.01f * (float)k);
    for (uint64_t it = 0; it < iters; it++)
        for (int k = 0; k < 12; k++) c[k] = vfmaq_f32(a, c[k], m);
    float32x4_t s = c[0];
    for (int k = 1; k < 12; k++) s = vaddq_f32(s, c[k]);
    return vaddvq_f32(s);
}
#endif

double qeil_pk_f32_fma(qeil_pk_isa isa, uint64_t iters, float *sink)
{
#ifdef PK_ARM
    if (isa == QEIL_PK_NEON && qeil_pk_have_f32(isa)) {
        *sink = f32_neon(iters);
        return (double)iters * 12 * 4 * 2; /* 12 FMLA x 4 lanes x 2 FLOPs */
    }
#endif
#ifdef PK_X86
    if (isa == QEIL_PK_AVX2 && qeil_pk_have_f32(QEIL_PK_AVX2)) {
        *sink = f32_avx2(iters);
        return (double)iters * 12 * 8 * 2; /* 12 FMAs x 8 lanes x 2 FLOPs */
    }
#endif
    (void)isa;
    *sink = f32_scalar(iters);
    return (double)iters * F32_SCALAR_ACC * 2; /* one multiply + one add each */
}

/* ------------------------------------------------------------------------ */
/* int8 dot products                                                         */
/* ------------------------------------------------------------------------ */

static int32_t dot_scalar(const uint8_t *a, const int8_t *b, size_t n)
{
    int32_t s = 0;
    for (size_t i = 0; i < n; i++) s += (int32_t)a[i] * (int32_t)b[i];
    return s;
}

#ifdef PK_X86
/* Horizontal sum of 8 int32 lanes, wrapping (unsigned) so that an
 * out-of-contract input cannot make C signed overflow. */
static int32_t hsum_epi32(const int32_t lane[8])
{
    uint32_t s = 0;
    for (int k = 0; k < 8; k++) s += (uint32_t)lane[k];
    return (int32_t)s;
}

/* vpmaddubsw: 32 u8 x s8 products summed in pairs to 16 x i16 (saturating);
 * vpmaddwd with ones: pairs of i16 summed to 8 x i32. 32 MACs. */
__attribute__((target("avx2"))) static int32_t dot_avx2(const uint8_t *a, const int8_t *b,
                                                        size_t n)
{
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i acc = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i va = _mm256_loadu_si256((const __m256i *)(const void *)(a + i));
        __m256i vb = _mm256_loadu_si256((const __m256i *)(const void *)(b + i));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(va, vb), ones));
    }
    int32_t lane[8];
    _mm256_storeu_si256((__m256i *)(void *)lane, acc);
    return (int32_t)((uint32_t)hsum_epi32(lane) + (uint32_t)dot_scalar(a + i, b + i, n - i));
}

__attribute__((target("avx512vnni,avx512vl"))) static int32_t dot_avx512vnni(const uint8_t *a,
                                                                            const int8_t *b,
                                                                            size_t n)
{
    __m256i acc = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i va = _mm256_loadu_si256((const __m256i *)(const void *)(a + i));
        __m256i vb = _mm256_loadu_si256((const __m256i *)(const void *)(b + i));
        acc = _mm256_dpbusd_epi32(acc, va, vb);
    }
    int32_t lane[8];
    _mm256_storeu_si256((__m256i *)(void *)lane, acc);
    return (int32_t)((uint32_t)hsum_epi32(lane) + (uint32_t)dot_scalar(a + i, b + i, n - i));
}

#ifdef PK_AVXVNNI
__attribute__((target("avx2,avxvnni"))) static int32_t dot_avxvnni(const uint8_t *a,
                                                                   const int8_t *b, size_t n)
{
    __m256i acc = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i va = _mm256_loadu_si256((const __m256i *)(const void *)(a + i));
        __m256i vb = _mm256_loadu_si256((const __m256i *)(const void *)(b + i));
        acc = _mm256_dpbusd_avx_epi32(acc, va, vb);
    }
    int32_t lane[8];
    _mm256_storeu_si256((__m256i *)(void *)lane, acc);
    return (int32_t)((uint32_t)hsum_epi32(lane) + (uint32_t)dot_scalar(a + i, b + i, n - i));
}
#endif
#endif /* PK_X86 */

int32_t qeil_pk_dot_u8s8(qeil_pk_isa isa, const uint8_t *a, const int8_t *b, size_t n)
{
#ifdef PK_X86
    if (isa == QEIL_PK_AVX2 && qeil_pk_have_int8(isa)) return dot_avx2(a, b, n);
    if ((isa == QEIL_PK_AVX512VNNI || isa == QEIL_PK_AVX512VNNI_ZMM) && qeil_pk_have_int8(isa))
        return dot_avx512vnni(a, b, n); /* the memory dot has no zmm variant */
#ifdef PK_AVXVNNI
    if (isa == QEIL_PK_AVXVNNI && qeil_pk_have_int8(isa)) return dot_avxvnni(a, b, n);
#endif
#endif
    (void)isa;
    return dot_scalar(a, b, n);
}

/* Throughput versions. The SIMD ones keep both operands in registers, as a
 * register-blocked GEMM micro-kernel does, so they measure the multiply
 * units rather than the load ports (a dot product streaming both operands
 * from L1 needs two loads per 32 MACs and is load-bound). */

/* Portable: a dot product over an L1-resident buffer. Each pass writes one
 * byte of `a` from the previous result, so no pass can be hoisted or
 * skipped. QEIL_PK_INT8_SCRATCH MACs per iteration. */
static int32_t int8_scalar(uint64_t iters, unsigned char *scratch)
{
    uint8_t *a = scratch;
    const int8_t *b = (const int8_t *)(const void *)(scratch + QEIL_PK_INT8_SCRATCH);
    uint32_t acc = 0;
    for (uint64_t it = 0; it < iters; it++) {
        int32_t s = dot_scalar(a, b, QEIL_PK_INT8_SCRATCH);
        acc += (uint32_t)s;
        a[it % QEIL_PK_INT8_SCRATCH] = (uint8_t)(s & 0x7f);
    }
    return (int32_t)acc;
}

#ifdef PK_X86
/* AVX2: the loop-carried dependency is only the vpaddd into each
 * accumulator (1 cycle), so 4 accumulators suffice; 8 steps per iteration,
 * two per accumulator, alternating two weight registers. PK_OPAQUE(x) before
 * each step stops the compiler from computing maddubs(x, y) once. */
#define DOT_STEP(acc, y)                                                            \
    do {                                                                            \
        PK_OPAQUE(x);                                                               \
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(x, y), ones)); \
    } while (0)

__attribute__((target("avx2"))) static int32_t int8_avx2(uint64_t iters)
{
    __m256i x = _mm256_set1_epi8(3);
    const __m256i y0 = _mm256_set1_epi8(-2), y1 = _mm256_set1_epi8(5);
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (uint64_t it = 0; it < iters; it++) {
        DOT_STEP(a0, y0);
        DOT_STEP(a1, y1);
        DOT_STEP(a2, y0);
        DOT_STEP(a3, y1);
        DOT_STEP(a0, y1);
        DOT_STEP(a1, y0);
        DOT_STEP(a2, y1);
        DOT_STEP(a3, y0);
    }
    int32_t lane[8];
    _mm256_storeu_si256((__m256i *)(void *)lane,
                        _mm256_add_epi32(_mm256_add_epi32(a0, a1), _mm256_add_epi32(a2, a3)));
    return hsum_epi32(lane);
}

/* VNNI: vpdpbusd accumulates in place (latency ~4-5 cycles, 2 per cycle on
 * current cores), so 12 independent accumulators, as for the FMA kernel. */
#define VNNI_BODY(DPBUSD)                                                          \
    __m256i x = _mm256_set1_epi8(3);                                               \
    const __m256i y0 = _mm256_set1_epi8(-2), y1 = _mm256_set1_epi8(5);             \
    /* distinct starting values: equal ones would let the compiler merge   \
     * chains that compute the same thing */                               \
    __m256i c0 = _mm256_set1_epi32(0), c1 = _mm256_set1_epi32(1);                  \
    __m256i c2 = _mm256_set1_epi32(2), c3 = _mm256_set1_epi32(3);                  \
    __m256i c4 = _mm256_set1_epi32(4), c5 = _mm256_set1_epi32(5);                  \
    __m256i c6 = _mm256_set1_epi32(6), c7 = _mm256_set1_epi32(7);                  \
    __m256i c8 = _mm256_set1_epi32(8), c9 = _mm256_set1_epi32(9);                  \
    __m256i c10 = _mm256_set1_epi32(10), c11 = _mm256_set1_epi32(11);              \
    for (uint64_t it = 0; it < iters; it++) {                                      \
        c0 = DPBUSD(c0, x, y0);                                                    \
        c1 = DPBUSD(c1, x, y1);                                                    \
        c2 = DPBUSD(c2, x, y0);                                                    \
        c3 = DPBUSD(c3, x, y1);                                                    \
        c4 = DPBUSD(c4, x, y0);                                                    \
        c5 = DPBUSD(c5, x, y1);                                                    \
        c6 = DPBUSD(c6, x, y0);                                                    \
        c7 = DPBUSD(c7, x, y1);                                                    \
        c8 = DPBUSD(c8, x, y0);                                                    \
        c9 = DPBUSD(c9, x, y1);                                                    \
        c10 = DPBUSD(c10, x, y0);                                                  \
        c11 = DPBUSD(c11, x, y1);                                                  \
    }                                                                              \
    __m256i s = _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(c0, c1), _mm256_add_epi32(c2, c3)), \
                                 _mm256_add_epi32(_mm256_add_epi32(c4, c5), _mm256_add_epi32(c6, c7))); \
    s = _mm256_add_epi32(s, _mm256_add_epi32(_mm256_add_epi32(c8, c9), _mm256_add_epi32(c10, c11))); \
    int32_t lane[8];                                                               \
    _mm256_storeu_si256((__m256i *)(void *)lane, s);                               \
    return hsum_epi32(lane)

__attribute__((target("avx512vnni,avx512vl"))) static int32_t int8_avx512vnni(uint64_t iters)
{
    VNNI_BODY(_mm256_dpbusd_epi32);
}

/* zmm: the VNNI body on 512-bit registers (64 MACs per vpdpbusd). */
__attribute__((target("avx512f,avx512vnni,avx512vl"))) static int32_t int8_avx512vnni_zmm(
    uint64_t iters)
{
    __m512i x = _mm512_set1_epi8(3);
    const __m512i y0 = _mm512_set1_epi8(-2), y1 = _mm512_set1_epi8(5);
    __m512i c[12];
    for (int k = 0; k < 12; k++) c[k] = _mm512_set1_epi32(k);
    for (uint64_t it = 0; it < iters; it++) {
        c[0] = _mm512_dpbusd_epi32(c[0], x, y0);
        c[1] = _mm512_dpbusd_epi32(c[1], x, y1);
        c[2] = _mm512_dpbusd_epi32(c[2], x, y0);
        c[3] = _mm512_dpbusd_epi32(c[3], x, y1);
        c[4] = _mm512_dpbusd_epi32(c[4], x, y0);
        c[5] = _mm512_dpbusd_epi32(c[5], x, y1);
        c[6] = _mm512_dpbusd_epi32(c[6], x, y0);
        c[7] = _mm512_dpbusd_epi32(c[7], x, y1);
        c[8] = _mm512_dpbusd_epi32(c[8], x, y0);
        c[9] = _mm512_dpbusd_epi32(c[9], x, y1);
        c[10] = _mm512_dpbusd_epi32(c[10], x, y0);
        c[11] = _mm512_dpbusd_epi32(c[11], x, y1);
    }
    __m512i s = c[0];
    for (int k = 1; k < 12; k++) s = _mm512_add_epi32(s, c[k]);
    return _mm512_reduce_add_epi32(s);
}

#ifdef PK_AVXVNNI
__attribute__((target("avx2,avxvnni"))) static int32_t int8_avxvnni(uint64_t iters)
{
    VNNI_BODY(_mm256_dpbusd_avx_epi32);
}
#endif
#endif /* PK_X86 */

#ifdef PK_ARM
/* Plain ASIMD: the engine's dot16 (SMULL, SMULL2, two SADALP per 16 MACs)
 * on 8 accumulators; x made opaque before each step so the products are
 * not hoisted out of the loop. */
#define PK_OPAQUE_W(v) __asm__("" : "+w"(v))
static int32_t int8_neon(uint64_t iters)
{
    int8x16_t x = vdupq_n_s8(3);
    const int8x16_t y[2] = {vdupq_n_s8(-2), vdupq_n_s8(5)};
    int32x4_t c[8];
    for (int k = 0; k < 8; k++) c[k] = vdupq_n_s32(k);
    for (uint64_t it = 0; it < iters; it++)
        for (int k = 0; k < 8; k++) {
            PK_OPAQUE_W(x);
            const int16x8_t lo = vmull_s8(vget_low_s8(x), vget_low_s8(y[k & 1]));
            const int16x8_t hi = vmull_high_s8(x, y[k & 1]);
            c[k] = vpadalq_s16(vpadalq_s16(c[k], lo), hi);
        }
    int32x4_t s = c[0];
    for (int k = 1; k < 8; k++) s = vaddq_s32(s, c[k]);
    return vaddvq_s32(s);
}

/* SDOT on 12 accumulators pinned to v0..v11 (x in v12, the two y in v13,
 * v14) so that each instruction can be emitted by its encoding: sdot vK.4s,
 * v12.16b, v13.16b (k even) or v14.16b (k odd) = 0x4e8d9580 / 0x4e8e9580
 * | K. Only called when HWCAP_ASIMDDP is set. */
static int32_t int8_sdot(uint64_t iters)
{
    register int32x4_t c0 __asm__("v0") = vdupq_n_s32(0);
    register int32x4_t c1 __asm__("v1") = vdupq_n_s32(1);
    register int32x4_t c2 __asm__("v2") = vdupq_n_s32(2);
    register int32x4_t c3 __asm__("v3") = vdupq_n_s32(3);
    register int32x4_t c4 __asm__("v4") = vdupq_n_s32(4);
    register int32x4_t c5 __asm__("v5") = vdupq_n_s32(5);
    register int32x4_t c6 __asm__("v6") = vdupq_n_s32(6);
    register int32x4_t c7 __asm__("v7") = vdupq_n_s32(7);
    register int32x4_t c8 __asm__("v8") = vdupq_n_s32(8);
    register int32x4_t c9 __asm__("v9") = vdupq_n_s32(9);
    register int32x4_t c10 __asm__("v10") = vdupq_n_s32(10);
    register int32x4_t c11 __asm__("v11") = vdupq_n_s32(11);
    register int8x16_t x __asm__("v12") = vdupq_n_s8(3);
    register int8x16_t y0 __asm__("v13") = vdupq_n_s8(-2);
    register int8x16_t y1 __asm__("v14") = vdupq_n_s8(5);
    for (uint64_t it = 0; it < iters; it++)
        __asm__(".inst 0x4e8d9580\n\t.inst 0x4e8e9581\n\t.inst 0x4e8d9582\n\t"
                ".inst 0x4e8e9583\n\t.inst 0x4e8d9584\n\t.inst 0x4e8e9585\n\t"
                ".inst 0x4e8d9586\n\t.inst 0x4e8e9587\n\t.inst 0x4e8d9588\n\t"
                ".inst 0x4e8e9589\n\t.inst 0x4e8d958a\n\t.inst 0x4e8e958b"
                : "+w"(c0), "+w"(c1), "+w"(c2), "+w"(c3), "+w"(c4), "+w"(c5), "+w"(c6),
                  "+w"(c7), "+w"(c8), "+w"(c9), "+w"(c10), "+w"(c11)
                : "w"(x), "w"(y0), "w"(y1));
    int32x4_t s = vaddq_s32(vaddq_s32(vaddq_s32(c0, c1), vaddq_s32(c2, c3)),
                            vaddq_s32(vaddq_s32(c4, c5), vaddq_s32(c6, c7)));
    s = vaddq_s32(s, vaddq_s32(vaddq_s32(c8, c9), vaddq_s32(c10, c11)));
    return vaddvq_s32(s);
}
#endif

double qeil_pk_int8_dot(qeil_pk_isa isa, uint64_t iters, unsigned char *scratch, int32_t *sink)
{
#ifdef PK_ARM
    if (isa == QEIL_PK_NEON && qeil_pk_have_int8(isa)) {
        *sink = int8_neon(iters);
        return (double)iters * 8 * 16 * 2; /* 8 steps x 16 MACs x 2 OPs */
    }
    if (isa == QEIL_PK_NEON_SDOT && qeil_pk_have_int8(isa)) {
        *sink = int8_sdot(iters);
        return (double)iters * 12 * 16 * 2; /* 12 SDOT x 16 MACs x 2 OPs */
    }
#endif
#ifdef PK_X86
    if (isa == QEIL_PK_AVX2 && qeil_pk_have_int8(isa)) {
        *sink = int8_avx2(iters);
        return (double)iters * 8 * 32 * 2; /* 8 steps x 32 MACs x 2 OPs */
    }
    if (isa == QEIL_PK_AVX512VNNI && qeil_pk_have_int8(isa)) {
        *sink = int8_avx512vnni(iters);
        return (double)iters * 12 * 32 * 2; /* 12 vpdpbusd x 32 MACs x 2 OPs */
    }
    if (isa == QEIL_PK_AVX512VNNI_ZMM && qeil_pk_have_int8(isa)) {
        *sink = int8_avx512vnni_zmm(iters);
        return (double)iters * 12 * 64 * 2;
    }
#ifdef PK_AVXVNNI
    if (isa == QEIL_PK_AVXVNNI && qeil_pk_have_int8(isa)) {
        *sink = int8_avxvnni(iters);
        return (double)iters * 12 * 32 * 2;
    }
#endif
#endif
    (void)isa;
    *sink = int8_scalar(iters, scratch);
    return (double)iters * QEIL_PK_INT8_SCRATCH * 2;
}

/* ------------------------------------------------------------------------ */
/* STREAM triad                                                              */
/* ------------------------------------------------------------------------ */

static void triad_scalar(double *a, const double *b, const double *c, double s, size_t n)
{
    for (size_t i = 0; i < n; i++) a[i] = b[i] + s * c[i];
}

#ifdef PK_X86
/* 256-bit loads and stores (the portable loop is not vectorised at -O2 for
 * an unknown n by GCC 12, and SSE halves the L1 bandwidth). Multiply then
 * add, like the C loop under -std=c11 (no contraction): identical results. */
__attribute__((target("avx2"))) static void triad_avx2(double *a, const double *b,
                                                      const double *c, double s, size_t n)
{
    const __m256d vs = _mm256_set1_pd(s);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256d r0 = _mm256_add_pd(_mm256_loadu_pd(b + i), _mm256_mul_pd(vs, _mm256_loadu_pd(c + i)));
        __m256d r1 =
            _mm256_add_pd(_mm256_loadu_pd(b + i + 4), _mm256_mul_pd(vs, _mm256_loadu_pd(c + i + 4)));
        _mm256_storeu_pd(a + i, r0);
        _mm256_storeu_pd(a + i + 4, r1);
    }
    for (; i < n; i++) a[i] = b[i] + s * c[i];
}
#endif

/* ------------------------------------------------------------------------ */
/* Read-only stream                                                          */
/* ------------------------------------------------------------------------ */

static double read_scalar(const double *a, const double *b, const double *c, size_t n)
{
    double s0 = 0, s1 = 0, s2 = 0; /* three chains: one per array */
    for (size_t i = 0; i < n; i++) {
        s0 += a[i];
        s1 += b[i];
        s2 += c[i];
    }
    return s0 + s1 + s2;
}

#ifdef PK_X86
/* 256-bit loads, six independent accumulators (two per array) so the adds'
 * latency never limits the stream. */
__attribute__((target("avx2"))) static double read_avx2(const double *a, const double *b,
                                                       const double *c, size_t n)
{
    __m256d s0 = _mm256_setzero_pd(), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        s0 = _mm256_add_pd(s0, _mm256_loadu_pd(a + i));
        s1 = _mm256_add_pd(s1, _mm256_loadu_pd(a + i + 4));
        s2 = _mm256_add_pd(s2, _mm256_loadu_pd(b + i));
        s3 = _mm256_add_pd(s3, _mm256_loadu_pd(b + i + 4));
        s4 = _mm256_add_pd(s4, _mm256_loadu_pd(c + i));
        s5 = _mm256_add_pd(s5, _mm256_loadu_pd(c + i + 4));
    }
    __m256d t = _mm256_add_pd(_mm256_add_pd(s0, s1), _mm256_add_pd(_mm256_add_pd(s2, s3),
                                                                   _mm256_add_pd(s4, s5)));
    double lanes[4];
    _mm256_storeu_pd(lanes, t);
    double s = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    for (; i < n; i++) s += a[i] + b[i] + c[i];
    return s;
}
#endif

double qeil_pk_read(qeil_pk_isa isa, const double *a, const double *b, const double *c, size_t n,
                    double *sum)
{
#ifdef PK_X86
    if (isa == QEIL_PK_AVX2 && qeil_pk_have_triad(isa)) {
        *sum = read_avx2(a, b, c, n);
        return 24.0 * (double)n;
    }
#endif
    (void)isa;
    *sum = read_scalar(a, b, c, n);
    return 24.0 * (double)n;
}

double qeil_pk_triad(qeil_pk_isa isa, double *a, const double *b, const double *c, double s,
                     size_t n)
{
#ifdef PK_X86
    if (isa == QEIL_PK_AVX2 && qeil_pk_have_triad(isa)) {
        triad_avx2(a, b, c, s, n);
        return 24.0 * (double)n;
    }
#endif
    (void)isa;
    triad_scalar(a, b, c, s, n);
    return 24.0 * (double)n;
}
