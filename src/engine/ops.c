/*
 * ops.c — scalar reference of the transformer's non-matmul ops (ops.h).
 *
 * Kept deliberately plain: a fixed evaluation order per call, so the same
 * inputs give the same bits on every thread count; accumulations whose
 * length grows with the model width (norm statistics, the softmax sum) run
 * in double so their rounding error stays far below the test tolerances.
 */
#include "engine/ops.h"

#include <math.h>

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
    for (uint32_t i = 0; i < d; i++) y[i] = (float)(((double)x[i] - mean) * r) * w[i] + b[i];
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
    double sum = 0.0;
    for (uint32_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += (double)x[i];
    }
    /* sum >= 1 (the maximum contributes exp(0)): no division by zero */
    const float inv = (float)(1.0 / sum);
    for (uint32_t i = 0; i < n; i++) x[i] *= inv;
}

float qeil_op_silu(float x) { return x / (1.0f + expf(-x)); }

float qeil_op_gelu(float x)
{
    /* sqrt(2/pi) */
    const float c = 0.79788456080286535588f;
    return 0.5f * x * (1.0f + tanhf(c * (x + 0.044715f * x * x * x)));
}

void qeil_op_silu_mul(float *g, const float *u, size_t n)
{
    for (size_t i = 0; i < n; i++) g[i] = qeil_op_silu(g[i]) * u[i];
}

void qeil_op_gelu_vec(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] = qeil_op_gelu(x[i]);
}

void qeil_op_add(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

void qeil_op_attention(const float *restrict q, const float *restrict k,
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
