/* probe_kernels.h — internal: the CPU probe's measurement kernels (f32 FMA
 * throughput, int8 dot throughput, STREAM triad), each as a portable C
 * version that always builds and runs, plus x86 SIMD versions chosen at run
 * time (CPUID via __builtin_cpu_supports). Used by probe.c and, for the
 * reference-vs-SIMD checks, by tests/test_probe.c. Method: docs/probe.md.
 *
 * Operation counting (the same for every variant of a kernel):
 *   f32:  one FMA (or one multiply + one add) = 2 FLOPs;
 *   int8: one u8 x s8 multiply-add           = 2 OPs;
 *   triad a[i] = b[i] + s*c[i]               = 24 bytes (STREAM convention:
 *         read b and c, write a; write-allocate traffic is not counted).
 * All functions are reentrant and allocation-free. */
#ifndef QEIL_DEVICE_PROBE_KERNELS_H
#define QEIL_DEVICE_PROBE_KERNELS_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    QEIL_PK_SCALAR = 0, /* portable C (whatever the compiler makes of it) */
    QEIL_PK_AVX2,       /* AVX2 (+FMA for the f32 kernel): maddubs/madd for int8 */
    QEIL_PK_AVXVNNI,    /* AVX-VNNI vpdpbusd on ymm (int8 only) */
    QEIL_PK_AVX512VNNI, /* AVX512-VNNI + VL vpdpbusd on ymm (int8 only) */
    QEIL_PK_AVX512VNNI_ZMM, /* the same on zmm: the engine's batch kernels (int8 only) */
    QEIL_PK_NEON,       /* AArch64 ASIMD: FMLA; int8 SMULL/SADALP (the engine's plain path) */
    QEIL_PK_NEON_SDOT,  /* AArch64 SDOT (int8 only) */
    QEIL_PK_COUNT
} qeil_pk_isa;

/* "scalar", "avx2+fma", "avx2", "avx-vnni", "avx512-vnni", "avx512-vnni-zmm",
 * "neon", "neon-sdot". */
const char *qeil_pk_name(qeil_pk_isa isa, int f32);

/* Does this build contain the variant and does this CPU (and OS) run it?
 * For QEIL_PK_AVX2, f32 != 0 also requires FMA. Scalar: always 1. */
int qeil_pk_have_f32(qeil_pk_isa isa);
int qeil_pk_have_int8(qeil_pk_isa isa);
int qeil_pk_have_triad(qeil_pk_isa isa); /* scalar and AVX2 only */

/* Per-cycle rates of one core of this CPU for the theoretical peak, from
 * its ISA (docs/probe.md, "Theoretical peak"; 256-bit figures): f32 32 with
 * AVX2+FMA, 16 with AVX, 8 with SSE; int8 256 with AVX512-VNNI (zmm),
 * 128 with AVX-VNNI, 64 with AVX2; AArch64: f32 16, int8 64 with SDOT,
 * 16 without.
 * 0 where unknown (non-x86, or int8 without AVX2). Independent of which
 * kernels this build contains. */
void qeil_pk_cpu_rates(double *f32_per_cycle, double *int8_per_cycle);

/* The best variant this CPU runs. */
qeil_pk_isa qeil_pk_best_f32(void);
qeil_pk_isa qeil_pk_best_int8(void);
qeil_pk_isa qeil_pk_best_triad(void);

/* Throughput kernels: register-resident work (no memory traffic) repeated
 * `iters` times with enough independent accumulators to hide latency. They
 * return the number of FLOPs / OPs performed and store a value derived from
 * every accumulator in *sink (so the compiler cannot drop the work). An isa
 * the CPU lacks falls back to scalar (check qeil_pk_have_* first). */
double qeil_pk_f32_fma(qeil_pk_isa isa, uint64_t iters, float *sink);
/* scratch: 2 * QEIL_PK_INT8_SCRATCH bytes, used by the scalar variant only
 * (its data lives in L1 because a portable kernel cannot pin registers). */
#define QEIL_PK_INT8_SCRATCH 4096
double qeil_pk_int8_dot(qeil_pk_isa isa, uint64_t iters, unsigned char *scratch, int32_t *sink);

/* Memory dot product sum_i a[i] * b[i] over n pairs, the building block of
 * the int8 kernels. Precondition (what llama.cpp's q8 formats guarantee):
 * a[i] <= 127, so the AVX2 pairwise 16-bit sums (vpmaddubsw saturates at
 * +-32767) never saturate: 2 * 127 * 128 = 32512; and n <= 131072 so the
 * 32-bit sum cannot overflow (131072 * 127 * 128 < 2^31). Under those
 * preconditions every variant returns the same value. */
int32_t qeil_pk_dot_u8s8(qeil_pk_isa isa, const uint8_t *a, const int8_t *b, size_t n);

/* STREAM triad a[i] = b[i] + s * c[i], i < n, multiply then add (no FMA
 * contraction), so every variant gives bit-identical results. Returns the
 * bytes counted: 24 * n. */
double qeil_pk_triad(qeil_pk_isa isa, double *a, const double *b, const double *c, double s,
                     size_t n);

/* Read-only stream: sum of a[i] + b[i] + c[i], i < n, into *sum (the
 * order of the additions differs between variants: only the rate
 * matters). Returns the bytes read: 24 * n. Nothing is written, so unlike
 * the triad there is no write-allocate traffic: this is the rate a
 * weight-streaming matvec (LLM decode) can reach. */
double qeil_pk_read(qeil_pk_isa isa, const double *a, const double *b, const double *c, size_t n,
                    double *sum);

#endif /* QEIL_DEVICE_PROBE_KERNELS_H */
