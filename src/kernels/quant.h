/*
 * quant.h — tensor element formats of the inference engine (internal).
 *
 * Block layouts are byte-for-byte those of ggml/GGUF, so tensors written by
 * llama.cpp load unchanged; docs/kernels.md draws each one. All functions
 * read and write blocks through byte pointers (memcpy for the multi-byte
 * scalars, unaligned SIMD loads), so a block may sit at any address: blocks
 * of 18, 34 and 210 bytes are unaligned inside a file.
 *
 *     // quantize a row of 4096 floats to Q4_K and dot it with an activation
 *     const qeil_quant_traits *t = qeil_quant_traits_of(QEIL_GGML_Q4_K);
 *     uint8_t w[16 * QEIL_Q4_K_BYTES], a[16 * QEIL_Q8_K_BYTES];
 *     t->quantize(wf, w, 4096);                 // weights, round-to-nearest
 *     qeil_quantize_row_q8_k(xf, a, 4096);      // activation (t->vec_type)
 *     float s;
 *     qeil_vec_dot_for(QEIL_GGML_Q4_K, qeil_simd_best())(4096, &s, w, a);
 *
 * Thread-safety: every function here is reentrant (no state at all).
 * Lengths n are element counts; for block formats n must be a multiple of
 * the block size (the callers — matmul, the loader — check this; the kernels
 * do not, they process n / block_elems whole blocks).
 */
#ifndef QEIL_ENGINE_QUANT_H
#define QEIL_ENGINE_QUANT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "qeil/gguf.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "qeil kernels read little-endian GGUF blocks with memcpy: big-endian hosts need byte swaps"
#endif

/* x86 SIMD kernels are built (per-function target attributes) with GCC and
 * clang on x86; elsewhere only the portable reference exists. */
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define QEIL_HAVE_X86_SIMD 1
#else
#define QEIL_HAVE_X86_SIMD 0
#endif
/* AArch64 NEON kernels (src/kernels/arm/, ASIMD is part of ARMv8.0; the
 * SDOT ones carry their own target attribute), Linux only: the run-time
 * choice reads getauxval(AT_HWCAP). */
#if defined(__aarch64__) && defined(__linux__) && (defined(__GNUC__) || defined(__clang__))
#define QEIL_HAVE_ARM_SIMD 1
#else
#define QEIL_HAVE_ARM_SIMD 0
#endif

/* ------------------------------------------------------------------------ */
/* Block formats (ggml's, see docs/kernels.md)                               */
/* ------------------------------------------------------------------------ */

#define QEIL_QK8_0 32   /* elements per Q8_0 block */
#define QEIL_QK4_0 32   /* elements per Q4_0 block */
#define QEIL_QK5 32     /* elements per Q4_1, Q5_0, Q5_1 and Q8_1 block */
#define QEIL_QK_K 256   /* elements per K-quant super-block */
#define QEIL_K_SCALE_SIZE 12

#define QEIL_Q8_0_BYTES 34
#define QEIL_Q4_0_BYTES 18
#define QEIL_Q4_K_BYTES 144
#define QEIL_Q6_K_BYTES 210
#define QEIL_Q8_K_BYTES 292
#define QEIL_Q4_1_BYTES 20
#define QEIL_Q5_0_BYTES 22
#define QEIL_Q5_1_BYTES 24
#define QEIL_Q8_1_BYTES 36
#define QEIL_Q5_K_BYTES 176
#define QEIL_IQ4_NL_BYTES 18
#define QEIL_IQ4_XS_BYTES 136

/* IQ4_NL's 16 levels (ggml's kvalues_iq4nl): x = d * kvalues[4-bit index];
 * layout otherwise Q4_0's (f16 d, 16 bytes of nibbles). */
extern const int8_t qeil_kvalues_iq4nl[16];

/* f16 fields are raw IEEE binary16 bit patterns. */
typedef struct {
    uint16_t d;              /* scale (f16) */
    int8_t qs[QEIL_QK8_0];   /* x[j] = qs[j] * d */
} qeil_block_q8_0;

typedef struct {
    uint16_t d;                /* scale (f16) */
    uint8_t qs[QEIL_QK4_0 / 2]; /* x[j] = (lo(qs[j]) - 8) d, x[j+16] = (hi(qs[j]) - 8) d */
} qeil_block_q4_0;

typedef struct {
    uint16_t d;                       /* f16 scale of the 6-bit sub-block scales */
    uint16_t dmin;                    /* f16 scale of the 6-bit sub-block mins */
    uint8_t scales[QEIL_K_SCALE_SIZE]; /* 8 scales + 8 mins, 6 bits each, packed */
    uint8_t qs[QEIL_QK_K / 2];        /* 4-bit quants, see docs/kernels.md */
} qeil_block_q4_k;

typedef struct {
    uint8_t ql[QEIL_QK_K / 2];     /* low 4 bits of the 6-bit quants */
    uint8_t qh[QEIL_QK_K / 4];     /* high 2 bits, four quants per byte */
    int8_t scales[QEIL_QK_K / 16]; /* 16 signed 8-bit sub-block scales */
    uint16_t d;                    /* f16 super-block scale */
} qeil_block_q6_k;

typedef struct {
    uint16_t d;                 /* scale (f16) */
    uint16_t m;                 /* min (f16) */
    uint8_t qs[QEIL_QK5 / 2];   /* x[j] = lo(qs[j]) d + m, x[j+16] = hi(qs[j]) d + m */
} qeil_block_q4_1;

/* Q5_0 / Q5_1: the 5th bit of element j is bit j of qh (a little-endian
 * 32-bit word stored as 4 bytes). */
typedef struct {
    uint16_t d;                 /* scale (f16) */
    uint8_t qh[4];              /* high bits */
    uint8_t qs[QEIL_QK5 / 2];   /* x[j] = (q_j - 16) d, q_j = lo(qs[j]) | bit j of qh << 4 */
} qeil_block_q5_0;

typedef struct {
    uint16_t d;                 /* scale (f16) */
    uint16_t m;                 /* min (f16) */
    uint8_t qh[4];              /* high bits */
    uint8_t qs[QEIL_QK5 / 2];   /* x[j] = q_j d + m, q_j 0..31 as in Q5_0 */
} qeil_block_q5_1;

/* Activation format of Q4_1 / Q5_1 dot products (never stored in files):
 * Q8_0 plus s = d * sum(qs), so the weights' min term costs one multiply. */
typedef struct {
    uint16_t d;                /* scale (f16) */
    uint16_t s;                /* d * sum of qs (f16) */
    int8_t qs[QEIL_QK5];       /* x[j] = qs[j] * d */
} qeil_block_q8_1;

typedef struct {
    uint16_t d;                        /* f16 scale of the 6-bit sub-block scales */
    uint16_t dmin;                     /* f16 scale of the 6-bit sub-block mins */
    uint8_t scales[QEIL_K_SCALE_SIZE]; /* packed as Q4_K's */
    uint8_t qh[QEIL_QK_K / 8];         /* 5th bits, see docs/kernels.md */
    uint8_t qs[QEIL_QK_K / 2];         /* low 4 bits, laid out as Q4_K's */
} qeil_block_q5_k;

/* Activation format of the K-quant dot products (never stored in files). */
typedef struct {
    float d;                         /* scale (f32) */
    int8_t qs[QEIL_QK_K];            /* x[j] = qs[j] * d */
    int16_t bsums[QEIL_QK_K / 16];   /* sum of qs over each 16 elements */
} qeil_block_q8_k;

_Static_assert(sizeof(qeil_block_q8_0) == QEIL_Q8_0_BYTES, "Q8_0 block is 34 bytes");
_Static_assert(sizeof(qeil_block_q4_0) == QEIL_Q4_0_BYTES, "Q4_0 block is 18 bytes");
_Static_assert(sizeof(qeil_block_q4_k) == QEIL_Q4_K_BYTES, "Q4_K block is 144 bytes");
_Static_assert(sizeof(qeil_block_q6_k) == QEIL_Q6_K_BYTES, "Q6_K block is 210 bytes");
_Static_assert(sizeof(qeil_block_q8_k) == QEIL_Q8_K_BYTES, "Q8_K block is 292 bytes");
_Static_assert(sizeof(qeil_block_q4_1) == QEIL_Q4_1_BYTES, "Q4_1 block is 20 bytes");
_Static_assert(sizeof(qeil_block_q5_0) == QEIL_Q5_0_BYTES, "Q5_0 block is 22 bytes");
_Static_assert(sizeof(qeil_block_q5_1) == QEIL_Q5_1_BYTES, "Q5_1 block is 24 bytes");
_Static_assert(sizeof(qeil_block_q8_1) == QEIL_Q8_1_BYTES, "Q8_1 block is 36 bytes");
_Static_assert(sizeof(qeil_block_q5_k) == QEIL_Q5_K_BYTES, "Q5_K block is 176 bytes");
_Static_assert(offsetof(qeil_block_q5_k, qs) == 48, "Q5_K qs at byte 48");
_Static_assert(offsetof(qeil_block_q4_k, qs) == 16, "Q4_K qs at byte 16");
_Static_assert(offsetof(qeil_block_q6_k, d) == 208, "Q6_K d at byte 208");
_Static_assert(offsetof(qeil_block_q8_k, bsums) == 260, "Q8_K bsums at byte 260");

/* ------------------------------------------------------------------------ */
/* Scalar conversions (portable; exact IEEE semantics)                       */
/* ------------------------------------------------------------------------ */

/* binary16 -> binary32: exact for every finite value including subnormals;
 * inf stays inf; a NaN stays NaN with its payload and the quiet bit set (as
 * x86 F16C does). */
float qeil_f16_to_f32(uint16_t h);
/* binary32 -> binary16, round to nearest, ties to even; overflow gives inf,
 * tiny values round into the subnormals or to a signed zero; NaN gives a
 * quiet NaN keeping the top 9 payload bits (as F16C does). */
uint16_t qeil_f32_to_f16(float f);
/* qeil_f16_to_f32 with the common case (normal numbers) inline: rebias
 * the exponent by adding (127 - 15) << 23 to the shifted bits. */
static inline float qeil_f16_to_f32_fast(uint16_t h)
{
    uint32_t e = h & 0x7c00u;
    if (e == 0 || e == 0x7c00u) return qeil_f16_to_f32(h);
    uint32_t bits = ((uint32_t)(h & 0x8000u) << 16) | (((uint32_t)(h & 0x7fffu) << 13) + 0x38000000u);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}
/* bfloat16 -> binary32: exact (the top 16 bits of a binary32). */
float qeil_bf16_to_f32(uint16_t h);
/* binary32 -> bfloat16, round to nearest, ties to even; NaN stays a quiet NaN. */
uint16_t qeil_f32_to_bf16(float f);

/* ------------------------------------------------------------------------ */
/* Rows: dequantize (blocks -> f32) and quantize (f32 -> blocks)             */
/* ------------------------------------------------------------------------ */

/* Quantizers round to nearest (ggml's reference rule, no search for an
 * optimal scale); docs/kernels.md gives each error bound. Q8_0, Q4_0, Q4_1,
 * Q5_0, Q5_1 and Q8_1 reproduce ggml's reference quantizer byte for byte;
 * Q4_K, Q5_K and Q6_K use a plain min/max fit instead of ggml's iterative
 * scale search, and IQ4_NL / IQ4_XS a nearest-level fit without ggml's search, so
 * their bytes differ from llama-quantize's but decode with the same
 * formula. */
void qeil_dequantize_row_f32(const void *src, float *dst, int64_t n);
void qeil_dequantize_row_f16(const void *src, float *dst, int64_t n);
void qeil_dequantize_row_bf16(const void *src, float *dst, int64_t n);
void qeil_dequantize_row_q8_0(const void *src, float *dst, int64_t n);
void qeil_dequantize_row_q4_0(const void *src, float *dst, int64_t n);
void qeil_dequantize_row_q4_k(const void *src, float *dst, int64_t n);
void qeil_dequantize_row_q6_k(const void *src, float *dst, int64_t n);
void qeil_dequantize_row_q8_k(const void *src, float *dst, int64_t n);
void qeil_dequantize_row_q4_1(const void *src, float *dst, int64_t n);
void qeil_dequantize_row_q5_0(const void *src, float *dst, int64_t n);
void qeil_dequantize_row_q5_1(const void *src, float *dst, int64_t n);
void qeil_dequantize_row_q8_1(const void *src, float *dst, int64_t n);
void qeil_dequantize_row_q5_k(const void *src, float *dst, int64_t n);
void qeil_dequantize_row_iq4_nl(const void *src, float *dst, int64_t n);
void qeil_dequantize_row_iq4_xs(const void *src, float *dst, int64_t n);

void qeil_quantize_row_f32(const float *src, void *dst, int64_t n);
void qeil_quantize_row_f16(const float *src, void *dst, int64_t n);
void qeil_quantize_row_bf16(const float *src, void *dst, int64_t n);
void qeil_quantize_row_q8_0(const float *src, void *dst, int64_t n);
void qeil_quantize_row_q4_0(const float *src, void *dst, int64_t n);
void qeil_quantize_row_q4_k(const float *src, void *dst, int64_t n);
void qeil_quantize_row_q6_k(const float *src, void *dst, int64_t n);
void qeil_quantize_row_q8_k(const float *src, void *dst, int64_t n);
void qeil_quantize_row_q4_1(const float *src, void *dst, int64_t n);
void qeil_quantize_row_q5_0(const float *src, void *dst, int64_t n);
void qeil_quantize_row_q5_1(const float *src, void *dst, int64_t n);
void qeil_quantize_row_q8_1(const float *src, void *dst, int64_t n);
void qeil_quantize_row_q5_k(const float *src, void *dst, int64_t n);
void qeil_quantize_row_iq4_nl(const float *src, void *dst, int64_t n);
void qeil_quantize_row_iq4_xs(const float *src, void *dst, int64_t n);
/* IQ4_XS's eight 6-bit sub-block scales as signed values ls - 32. */
void qeil_iq4_xs_scales(const uint8_t *block, int sc[8]);

/* Q4_K's 12-byte scale field: unpack / pack eight 6-bit scales and mins. */
void qeil_q4_k_get_scale_min(const uint8_t packed[QEIL_K_SCALE_SIZE],
                             uint8_t sc[8], uint8_t m[8]);
void qeil_q4_k_set_scale_min(uint8_t packed[QEIL_K_SCALE_SIZE],
                             const uint8_t sc[8], const uint8_t m[8]);

/* The unpacking rules of docs/kernels.md applied four bytes at a time:
 * with w0, w1, w2 = bytes 0-3, 4-7, 8-11 as little-endian words, out holds
 * sc[0..7] then m[0..7] as bytes. Inline: both dot kernels use it per
 * super-block. */
static inline void qeil_q4_k_unpack_scales(const uint8_t *p, uint32_t out[4])
{
    uint32_t w0, w1, w2;
    memcpy(&w0, p, 4);
    memcpy(&w1, p + 4, 4);
    memcpy(&w2, p + 8, 4);
    out[0] = w0 & 0x3f3f3f3fu;                                            /* sc[0..3] */
    out[1] = (w2 & 0x0f0f0f0fu) | (((w0 >> 6) & 0x03030303u) << 4);       /* sc[4..7] */
    out[2] = w1 & 0x3f3f3f3fu;                                            /* m[0..3] */
    out[3] = ((w2 >> 4) & 0x0f0f0f0fu) | (((w1 >> 6) & 0x03030303u) << 4); /* m[4..7] */
}

/* ------------------------------------------------------------------------ */
/* Dot products: *s = sum_i w[i] * x[i]                                      */
/* ------------------------------------------------------------------------ */

/* w: n elements of the weight type; x: n elements of that type's activation
 * format (qeil_quant_traits.vec_type). Any alignment. */
typedef void (*qeil_vec_dot_fn)(int64_t n, float *s, const void *w, const void *x);
typedef void (*qeil_dequantize_fn)(const void *src, float *dst, int64_t n);
typedef void (*qeil_quantize_fn)(const float *src, void *dst, int64_t n);

/* Scalar references (dot.c). f32/f16/bf16 accumulate in double; the block
 * formats sum integers exactly per block and combine the scales in float. */
void qeil_vec_dot_f32_ref(int64_t n, float *s, const void *w, const void *x);  /* x f32 */
void qeil_vec_dot_f16_ref(int64_t n, float *s, const void *w, const void *x);  /* x f32 */
void qeil_vec_dot_bf16_ref(int64_t n, float *s, const void *w, const void *x); /* x f32 */
void qeil_vec_dot_q8_0_ref(int64_t n, float *s, const void *w, const void *x); /* x q8_0 */
void qeil_vec_dot_q4_0_ref(int64_t n, float *s, const void *w, const void *x); /* x q8_0 */
void qeil_vec_dot_q4_k_ref(int64_t n, float *s, const void *w, const void *x); /* x q8_k */
void qeil_vec_dot_q6_k_ref(int64_t n, float *s, const void *w, const void *x); /* x q8_k */
void qeil_vec_dot_q4_1_ref(int64_t n, float *s, const void *w, const void *x); /* x q8_1 */
void qeil_vec_dot_q5_0_ref(int64_t n, float *s, const void *w, const void *x); /* x q8_0 */
void qeil_vec_dot_q5_1_ref(int64_t n, float *s, const void *w, const void *x); /* x q8_1 */
void qeil_vec_dot_q5_k_ref(int64_t n, float *s, const void *w, const void *x); /* x q8_k */
void qeil_vec_dot_iq4_nl_ref(int64_t n, float *s, const void *w, const void *x); /* x q8_0 */
void qeil_vec_dot_iq4_xs_ref(int64_t n, float *s, const void *w, const void *x); /* x q8_k */

#if QEIL_HAVE_ARM_SIMD
/* NEON versions (arm/dot_neon.c), all bit-identical to the reference; the
 * _sdot ones need qeil_cpu_has_arm_dotprod(). qeil_vec_dot_for() picks. */
void qeil_vec_dot_f32_neon(int64_t n, float *s, const void *w, const void *x);
void qeil_vec_dot_f16_neon(int64_t n, float *s, const void *w, const void *x);
void qeil_vec_dot_bf16_neon(int64_t n, float *s, const void *w, const void *x);
void qeil_vec_dot_q8_0_neon(int64_t n, float *s, const void *w, const void *x);
void qeil_vec_dot_q4_0_neon(int64_t n, float *s, const void *w, const void *x);
void qeil_vec_dot_q8_0_sdot(int64_t n, float *s, const void *w, const void *x);
void qeil_vec_dot_q4_0_sdot(int64_t n, float *s, const void *w, const void *x);
#define QEIL_DECL_DOT_NEON(T)                                                        \
    void qeil_vec_dot_##T##_neon(int64_t n, float *s, const void *w, const void *x); \
    void qeil_vec_dot_##T##_sdot(int64_t n, float *s, const void *w, const void *x)
QEIL_DECL_DOT_NEON(q4_1);
QEIL_DECL_DOT_NEON(q5_0);
QEIL_DECL_DOT_NEON(q5_1);
QEIL_DECL_DOT_NEON(iq4_nl);
QEIL_DECL_DOT_NEON(iq4_xs);
QEIL_DECL_DOT_NEON(q4_k);
QEIL_DECL_DOT_NEON(q5_k);
QEIL_DECL_DOT_NEON(q6_k);
/* Tiles (qeil_gemm_fn) of the 32-element Q8_0-activation types: plain
 * ASIMD, SDOT (qeil_cpu_has_arm_dotprod) and SMMLA (qeil_cpu_has_arm_i8mm)
 * variants, every element bitwise equal to the NEON dot kernel's. */
#define QEIL_DECL_GEMM_NEON(T)                                                              \
    void qeil_gemm_##T##_neon(int64_t n, int nr, int nc, const void *w, size_t ws,          \
                              const void *x, size_t xs, float *y, size_t ys);               \
    void qeil_gemm_##T##_sdot(int64_t n, int nr, int nc, const void *w, size_t ws,          \
                              const void *x, size_t xs, float *y, size_t ys);               \
    void qeil_gemm_##T##_i8mm(int64_t n, int nr, int nc, const void *w, size_t ws,          \
                              const void *x, size_t xs, float *y, size_t ys)
QEIL_DECL_GEMM_NEON(q8_0);
QEIL_DECL_GEMM_NEON(q4_0);
QEIL_DECL_GEMM_NEON(q5_0);
QEIL_DECL_GEMM_NEON(iq4_nl);
/* K-quant tiles against Q8_K, the same three variants */
QEIL_DECL_GEMM_NEON(q4_k);
QEIL_DECL_GEMM_NEON(q5_k);
QEIL_DECL_GEMM_NEON(q6_k);
QEIL_DECL_GEMM_NEON(iq4_xs);
/* the bytes of qeil_quantize_row_q8_0 / qeil_quantize_row_q8_k / _q8_1 */
void qeil_quantize_row_q8_0_neon(const float *src, void *dst, int64_t n);
void qeil_quantize_row_q8_k_neon(const float *src, void *dst, int64_t n);
void qeil_quantize_row_q8_1_neon(const float *src, void *dst, int64_t n);
#endif

#if QEIL_HAVE_X86_SIMD
/* AVX2+FMA+F16C versions (dot_avx2.c). Call only when qeil_simd_best()
 * says QEIL_SIMD_AVX2 — qeil_vec_dot_for() does that check for you. The
 * K-quant versions return exactly the reference's bits (same integer sums,
 * same float operations in the same order). */
void qeil_vec_dot_f32_avx2(int64_t n, float *s, const void *w, const void *x);
void qeil_vec_dot_f16_avx2(int64_t n, float *s, const void *w, const void *x);
void qeil_vec_dot_bf16_avx2(int64_t n, float *s, const void *w, const void *x);
void qeil_vec_dot_q8_0_avx2(int64_t n, float *s, const void *w, const void *x);
void qeil_vec_dot_q4_0_avx2(int64_t n, float *s, const void *w, const void *x);
void qeil_vec_dot_q4_k_avx2(int64_t n, float *s, const void *w, const void *x);
void qeil_vec_dot_q6_k_avx2(int64_t n, float *s, const void *w, const void *x);
void qeil_vec_dot_q4_1_avx2(int64_t n, float *s, const void *w, const void *x);
void qeil_vec_dot_q5_0_avx2(int64_t n, float *s, const void *w, const void *x);
void qeil_vec_dot_q5_1_avx2(int64_t n, float *s, const void *w, const void *x);
void qeil_vec_dot_q5_k_avx2(int64_t n, float *s, const void *w, const void *x);
void qeil_vec_dot_iq4_nl_avx2(int64_t n, float *s, const void *w, const void *x);
void qeil_vec_dot_iq4_xs_avx2(int64_t n, float *s, const void *w, const void *x);
/* Tiled kernels (qeil_gemm_fn, below): AVX2 and AVX-512-VNNI (256-bit
 * vpdpbusd) variants; both return the same bits. Call the _vnni ones only
 * when qeil_cpu_has_avx512_vnni(). */
void qeil_gemm_q8_0_avx2(int64_t n, int nr, int nc, const void *w, size_t ws, const void *x,
                         size_t xs, float *y, size_t ys);
void qeil_gemm_q4_0_avx2(int64_t n, int nr, int nc, const void *w, size_t ws, const void *x,
                         size_t xs, float *y, size_t ys);
void qeil_gemm_q8_0_vnni(int64_t n, int nr, int nc, const void *w, size_t ws, const void *x,
                         size_t xs, float *y, size_t ys);
void qeil_gemm_q4_0_vnni(int64_t n, int nr, int nc, const void *w, size_t ws, const void *x,
                         size_t xs, float *y, size_t ys);
void qeil_gemm_q4_k_avx2(int64_t n, int nr, int nc, const void *w, size_t ws, const void *x,
                         size_t xs, float *y, size_t ys);
void qeil_gemm_q4_k_vnni(int64_t n, int nr, int nc, const void *w, size_t ws, const void *x,
                         size_t xs, float *y, size_t ys);
void qeil_gemm_q6_k_avx2(int64_t n, int nr, int nc, const void *w, size_t ws, const void *x,
                         size_t xs, float *y, size_t ys);
void qeil_gemm_q6_k_vnni(int64_t n, int nr, int nc, const void *w, size_t ws, const void *x,
                         size_t xs, float *y, size_t ys);
#define QEIL_DECL_GEMM(NAME)                                                                   \
    void NAME(int64_t n, int nr, int nc, const void *w, size_t ws, const void *x, size_t xs,   \
              float *y, size_t ys)
QEIL_DECL_GEMM(qeil_gemm_q4_1_avx2);
QEIL_DECL_GEMM(qeil_gemm_q4_1_vnni);
QEIL_DECL_GEMM(qeil_gemm_q5_0_avx2);
QEIL_DECL_GEMM(qeil_gemm_q5_0_vnni);
QEIL_DECL_GEMM(qeil_gemm_q5_1_avx2);
QEIL_DECL_GEMM(qeil_gemm_q5_1_vnni);
QEIL_DECL_GEMM(qeil_gemm_q5_k_avx2);
QEIL_DECL_GEMM(qeil_gemm_q5_k_vnni);
QEIL_DECL_GEMM(qeil_gemm_iq4_nl_avx2);
QEIL_DECL_GEMM(qeil_gemm_iq4_nl_vnni);
QEIL_DECL_GEMM(qeil_gemm_iq4_xs_avx2);
QEIL_DECL_GEMM(qeil_gemm_iq4_xs_vnni);
/* Q8_0 activation quantizer: exactly qeil_quantize_row_q8_0's bytes. */
void qeil_quantize_row_q8_0_avx2(const float *src, void *dst, int64_t n);
/* Q8_K activation quantizer: exactly qeil_quantize_row_q8_k's bytes. */
void qeil_quantize_row_q8_k_avx2(const float *src, void *dst, int64_t n);
/* F16C row conversions (same results as the portable scalar ones). */
void qeil_f16_to_f32_row_avx2(const uint16_t *src, float *dst, int64_t n);
void qeil_f32_to_f16_row_avx2(const float *src, uint16_t *dst, int64_t n);
#endif

/* ------------------------------------------------------------------------ */
/* Per-type table and run-time SIMD choice                                   */
/* ------------------------------------------------------------------------ */

typedef enum {
    QEIL_SIMD_SCALAR = 0, /* portable C, always available */
    QEIL_SIMD_AVX2 = 1,   /* x86 AVX2 + FMA + F16C */
    QEIL_SIMD_NEON = 2    /* AArch64 ASIMD (+ SDOT where HWCAP_ASIMDDP says so) */
} qeil_simd;
/* The levels are per architecture, not ordered across them: compare with
 * ==, or >= QEIL_SIMD_AVX2 only inside #if QEIL_HAVE_X86_SIMD. */

/* Convert rows with the best converter this CPU has (F16C or portable;
 * identical results). src/dst aligned to their element size. */
void qeil_f16_to_f32_row(const uint16_t *src, float *dst, int64_t n);
void qeil_f32_to_f16_row(const float *src, uint16_t *dst, int64_t n);

/* Best level this CPU (and OS) supports, from CPUID or AT_HWCAP (asked
 * once); QEIL_SIMD_SCALAR when the environment variable QEIL_NO_SIMD is
 * set to anything but "" or "0" (every kernel then runs its portable
 * path). */
qeil_simd qeil_simd_best(void);
/* 1 when the NEON level may use the ARMv8.2 dot product (SDOT):
 * HWCAP_ASIMDDP and not QEIL_NO_SIMD. 0 elsewhere. */
int qeil_cpu_has_arm_dotprod(void);
/* 1 when the NEON level may use the ARMv8.6 int8 matrix multiply (SMMLA):
 * HWCAP2_I8MM and not QEIL_NO_SIMD. 0 elsewhere. */
int qeil_cpu_has_arm_i8mm(void);
/* "scalar" / "avx2" / "neon". */
const char *qeil_simd_name(qeil_simd simd);

typedef struct {
    int type;             /* qeil_ggml_type of the weights */
    const char *name;     /* "q4_k" */
    uint32_t blck_elems;  /* elements per block (1 for f32/f16/bf16) */
    uint32_t blck_bytes;  /* bytes per block */
    int vec_type;         /* activation format of vec_dot: F32, Q8_0, Q8_1 or Q8_K */
    qeil_dequantize_fn dequantize;
    qeil_quantize_fn quantize;
    qeil_vec_dot_fn vec_dot; /* scalar reference; NULL for Q8_K (activations only) */
} qeil_quant_traits;

/* Traits of a type the engine computes with (F32, F16, BF16, Q8_0, Q4_0,
 * Q4_1, Q5_0, Q5_1, IQ4_NL, IQ4_XS, Q4_K, Q5_K, Q6_K, and Q8_1 / Q8_K as
 * activation formats); NULL for any other. */
const qeil_quant_traits *qeil_quant_traits_of(int type);

/* Dot kernel of weight type `type` at SIMD level `simd`: NULL when the type
 * has no dot or the level is not built or not supported by this CPU. */
qeil_vec_dot_fn qeil_vec_dot_for(int type, qeil_simd simd);

/* Register-tiled matmul kernel: for r < nr and c < nc (each 1..4)
 *
 *     y[c * ys + r] = dot(n elements of row w + r * ws, activation x + c * xs)
 *
 * (ws, xs in bytes, ys in floats). Each weight block is unpacked once per
 * tile and used against every activation of the tile. Every element is
 * computed by the same arithmetic whatever nr, nc and the position in the
 * tile, and equals what qeil_vec_dot_for(type, simd) returns for it, so a
 * matmul built from tiles is bit-identical for any split into tiles. */
typedef void (*qeil_gemm_fn)(int64_t n, int nr, int nc, const void *w, size_t ws, const void *x,
                             size_t xs, float *y, size_t ys);
#define QEIL_GEMM_MAX_ROWS 4
#define QEIL_GEMM_MAX_VEC 4
/* Tiled kernel of `type` at level `simd` (at QEIL_SIMD_AVX2 the VNNI
 * variant when the CPU has it); NULL when there is none (the caller then
 * loops over qeil_vec_dot_for's kernel). */
qeil_gemm_fn qeil_gemm_for(int type, qeil_simd simd);
/* Quantizer of activation format `act_type` (Q8_0, Q8_K) at level `simd`:
 * a SIMD version where there is one (Q8_0 and Q8_K at AVX2 and NEON), else the
 * traits' scalar one; the bytes are the same either way. NULL for an unknown type. */
qeil_quantize_fn qeil_act_quantize_for(int act_type, qeil_simd simd);
/* CPUID: AVX-512 F + VL + VNNI and the OS saves the AVX-512 state (asked once). */
int qeil_cpu_has_avx512_vnni(void);

#endif /* QEIL_ENGINE_QUANT_H */
