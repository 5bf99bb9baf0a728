/*
 * ops.h — the transformer's non-matmul operations (internal): normalization,
 * rotary position embedding, softmax, activations, attention over a KV
 * cache. Plain scalar C, one vector (or one head) per call; they are the
 * reference and also what the CPU backend runs (it parallelizes across
 * rows and heads, never inside one call, so results do not depend on the
 * thread count).
 *
 *     float y[4096];
 *     qeil_op_rmsnorm(x, w, y, 4096, 1e-5f);        // y = x / rms(x) * w
 *     qeil_op_rope(q, 32, 64, 64, cos_p, sin_p, 0); // rotate 32 heads at pos p
 *
 * Numerics (docs/engine.md, "Ops"): sums of squares, means and the softmax
 * normalizer accumulate in double; everything else is float. Thread-safety:
 * all functions are reentrant (no state).
 */
#ifndef QEIL_ENGINE_OPS_H
#define QEIL_ENGINE_OPS_H

#include <stddef.h>
#include <stdint.h>

/* y = x / sqrt(mean(x^2) + eps) * w  (RMSNorm, Zhang & Sennrich 2019).
 * y may equal x. */
void qeil_op_rmsnorm(const float *x, const float *w, float *y, uint32_t d, float eps);

/* y = (x - mean(x)) / sqrt(var(x) + eps) * w + b  (LayerNorm, Ba et al. 2016;
 * biased variance, as GPT-2 and ggml use). y may equal x. */
void qeil_op_layernorm(const float *x, const float *w, const float *b, float *y, uint32_t d,
                       float eps);

/* Rotate the first n_rot dims of each of n_heads heads (head_dim apart) by
 * the angles whose cosines and sines are cs[i], sn[i], i < n_rot / 2:
 *   neox == 0 ("normal", llama in llama.cpp's GGUF layout): pairs (2i, 2i+1)
 *   neox == 1 (GPT-NeoX, qwen2):                           pairs (i, i + n_rot/2)
 *   (a, b) -> (a cos - b sin, a sin + b cos). Dims >= n_rot pass unchanged. */
void qeil_op_rope(float *x, uint32_t n_heads, uint32_t head_dim, uint32_t n_rot, const float *cs,
                  const float *sn, int neox);

/* The constants of qeil_op_exp's recipe (ops.c), shared by its SIMD forms. */
#define QEIL_OP_EXP_LO (-87.0f)
#define QEIL_OP_EXP_HI 88.0f
#define QEIL_OP_EXP_LOG2E 1.44269504088896341f
#define QEIL_OP_EXP_LN2_HI 0.693359375f      /* few mantissa bits: n * it is exact */
#define QEIL_OP_EXP_LN2_LO (-2.12194440e-4f) /* ln 2 - QEIL_OP_EXP_LN2_HI */

/* In place: x = exp(x - max x) / sum. n >= 1. */
void qeil_op_softmax(float *x, uint32_t n);

/* exp(x) as the activations and the softmax compute it (scalar and AVX2
 * give the same bits): within 2 ulp of expf for x in [-87, 88], clamped to
 * exp(-87) / exp(88) outside, NaN for NaN. */
float qeil_op_exp(float x);

/* silu(x) = x / (1 + exp(-x)) with qeil_op_exp; gelu: GPT-2's tanh approximation
 * 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (Hendrycks & Gimpel 2016). */
float qeil_op_silu(float x);
float qeil_op_gelu(float x);

/* g[i] = silu(g[i]) * u[i]  (SwiGLU, Shazeer 2020). */
void qeil_op_silu_mul(float *g, const float *u, size_t n);
/* x[i] = gelu(x[i]). */
void qeil_op_gelu_vec(float *x, size_t n);
/* y[i] += x[i]. */
void qeil_op_add(float *y, const float *x, size_t n);

/* One attention head for one query: positions 0..n_pos-1 of a KV cache whose
 * rows (one per position) start kv_stride floats apart:
 *   s_j = scale * q . k_j,  p = softmax(s),  out = sum_j p_j v_j
 * scores: n_pos floats of scratch. q, k, v, out: head_dim floats. n_pos >= 1.
 * scores and out overlap nothing else (restrict). With AVX2 or NEON and
 * head_dim a multiple of 8 a vectorized version, the same bits as
 * qeil_op_attention_ref (the portable definition). */
void qeil_op_attention(const float *restrict q, const float *restrict k,
                       const float *restrict v, size_t kv_stride, uint32_t n_pos,
                       uint32_t head_dim, float scale, float *restrict scores,
                       float *restrict out);
void qeil_op_attention_ref(const float *restrict q, const float *restrict k,
                           const float *restrict v, size_t kv_stride, uint32_t n_pos,
                           uint32_t head_dim, float scale, float *restrict scores,
                           float *restrict out);
/* n_heads (>= 1) heads that share one KV head (grouped-query attention),
 * one query each: head h's query at q + h * q_stride, its scores at
 * scores + h * s_stride (s_stride >= n_pos), its output at out +
 * h * out_stride; every head gets qeil_op_attention_ref's bits. With AVX2
 * or NEON and head_dim a multiple of 8, up to 4 heads at a time load each K
 * row once (and each V row too with AVX-512). Buffers do not overlap. */
void qeil_op_attention_heads(const float *q, size_t q_stride, uint32_t n_heads, const float *k,
                             const float *v, size_t kv_stride, uint32_t n_pos, uint32_t head_dim,
                             float scale, float *scores, size_t s_stride, float *out,
                             size_t out_stride);

#endif /* QEIL_ENGINE_OPS_H */
