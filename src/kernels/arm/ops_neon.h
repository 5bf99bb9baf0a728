/*
 * ops_neon.h — AArch64 NEON forms of ops.c's SiLU, softmax exp and
 * attention (internal; arm/ops_neon.c). Each gives the portable
 * definition's bits (docs/kernels.md, "AArch64 NEON"); ops.c calls them
 * when qeil_simd_best() is QEIL_SIMD_NEON.
 */
#ifndef QEIL_KERNELS_ARM_OPS_NEON_H
#define QEIL_KERNELS_ARM_OPS_NEON_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/ops.h"
#include "kernels/quant.h" /* QEIL_HAVE_ARM_SIMD */

#if QEIL_HAVE_ARM_SIMD
/* g[i] = silu(g[i]) * u[i] for the first n - n % 4 elements; returns that
 * count (the caller finishes the tail with the scalar code). */
size_t qeil_silu_mul_neon(float *g, const float *u, size_t n);
/* x[i] = qeil_op_exp(x[i] - mx) for the first n - n % 4; returns that count. */
uint32_t qeil_exp_sub_neon(float *x, uint32_t n, float mx);
/* qeil_op_attention / qeil_op_attention_heads for head_dim a multiple of 8. */
void qeil_attention_neon(const float *restrict q, const float *restrict k, const float *restrict v,
                         size_t kv_stride, uint32_t n_pos, uint32_t head_dim, float scale,
                         float *restrict scores, float *restrict out);
void qeil_attention_heads_neon(const float *q, size_t q_stride, uint32_t n_heads, const float *k,
                               const float *v, size_t kv_stride, uint32_t n_pos, uint32_t head_dim,
                               float scale, float *scores, size_t s_stride, float *out,
                               size_t out_stride);
#endif

#endif /* QEIL_KERNELS_ARM_OPS_NEON_H */
