/* workload.c — per-unit FLOPs, bytes moved and resident bytes of one request:
 * prefill of P prompt tokens, then N decode steps per sequence at mean
 * context c̄ = P + (N-1)/2. Every formula, constant and assumption is derived
 * in docs/workload.md; the comments here only say why a number is what it is.
 *
 * Notation (as in docs/workload.md): d = d_model, H = n_heads, hd = head_dim,
 * q = H·hd, kv = n_kv_heads·hd, F = d_ff, V = vocab, A = 4 B (f32
 * activations), s_kv = bytes of K and V of one token in one layer. */
#include "qeil/workload.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Constants (docs/workload.md, "Elementwise operations")                    */
/* ------------------------------------------------------------------------ */

/* FLOPs per element of the elementwise operations. Transcendentals (exp,
 * tanh, rsqrt) count as one FLOP each, the usual convention; these terms are
 * well under 1 % of a block's FLOPs at any realistic width. */
#define FLOP_RMSNORM 4.0 /* x², accumulate, ×rsqrt, ×weight */
#define FLOP_LAYERNORM 7.0 /* mean, −mean, square, accumulate, ×rsqrt, ×weight, +bias */
#define FLOP_ROPE 3.0    /* per rotated element: 2 mul + 1 add (pairwise rotation) */
#define FLOP_SOFTMAX 5.0 /* per score: scale, max, −max, exp, ×1/sum (sum folded in) */
#define FLOP_SWIGLU 5.0  /* per element of F: silu = x·sigmoid(x) (4) + ×up (1) */
#define FLOP_GELU 8.0    /* per element of F: tanh form 0.5x(1+tanh(√(2/π)(x+0.044715x³))) */

#define ACT_B 4.0 /* f32 activations, as llama.cpp keeps its hidden state */

/* Prefill attention reads the KV of the causal prefix once per block of
 * QBLOCK queries (flash-attention-style tiling: a query tile stays on chip
 * while K/V stream past it; all query heads of a KV group share the read). */
#define QBLOCK 64.0

qeil_workload_params qeil_workload_default_params(void)
{
    qeil_workload_params p;
    p.prompt_tokens = 512;
    p.gen_tokens = 128;
    p.samples = 1;
    return p;
}

/* Token-positions of K/V streamed by a tiled causal prefill of P queries:
 * query block j (B queries) reads the first min(P, B(j+1)) positions, so
 * Σ_{j<n−1} B(j+1) + P = B(n−1)n/2 + P with n = ceil(P/B). */
static double prefill_kv_tokens_read(double P)
{
    double n = ceil(P / QBLOCK);
    return QBLOCK * (n - 1) * n / 2 + P;
}

/* Bytes of `elems` elements of ggml type `type` (validated: divisible). */
static double type_bytes(int type, double elems)
{
    return elems * (double)qeil_ggml_block_bytes(type) / (double)qeil_ggml_block_elems(type);
}

/* ------------------------------------------------------------------------ */
/* Blocks                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct {
    double ops;             /* backend calls per forward step (docs/workload.md) */
    double fixed_flops;     /* per token, independent of context */
    double attn_flops_ctx;  /* per token per attended position */
    double act_elems;       /* activation elements read + written per token */
    double scratch_elems;   /* live activation elements per token at the peak */
} block_cost;

static block_cost block_costs(const qeil_model_desc *md, uint32_t l)
{
    double d = md->d_model, H = md->n_heads, hd = md->head_dim, F = md->d_ff;
    double q = H * hd, kv = (double)md->n_kv_heads * hd;
    block_cost c;
    if (md->layer_kind[l] == QEIL_LAYER_CONV) {
        /* lfm2 short convolution: in_proj d -> 3d, u = B x, L taps per
         * channel, y = C conv(u), out_proj d -> d; no attention, so nothing
         * grows with the context */
        const double L = md->conv_L;
        c.attn_flops_ctx = 0.0;
        c.fixed_flops = 2.0 * (3.0 * d * d + d * d + 3.0 * d * F) /* in_proj out_proj gate up down */
                        + 2.0 * FLOP_RMSNORM * d                 /* operator_norm, ffn_norm */
                        + (2.0 * L + 2.0) * d                    /* L MACs, B x, C y */
                        + FLOP_SWIGLU * F + 2.0 * d;             /* SwiGLU, residuals */
        /* norm 2d; in_proj d in, 3d out; B x 2d in, d out; conv reads L
         * taps and C, writes y (L + 2) d; out_proj 2d; residual 3d; norm
         * 2d; gate/up 2d in, 2F out; SwiGLU 3F; down F + d; residual 3d */
        c.act_elems = (24.0 + L) * d + 6.0 * F;
        /* residual + normed input + the wider of B|C|x and y, and the FFN */
        c.scratch_elems = 2.0 * d + fmax(4.0 * d, 3.0 * F);
        /* norm, in_proj, shortconv, out_proj, residual add; norm, gate|up,
         * silu·mul, down, residual add */
        c.ops = 10.0;
        return c;
    }
    /* QK^T and the weighted sum of V: 2 MACs per head per position per
     * head-dim element, 2 FLOPs per MAC; plus the softmax per score. */
    c.attn_flops_ctx = 2.0 * 2.0 * hd * H + FLOP_SOFTMAX * H;
    if (md->arch == QEIL_ARCH_GPT2) {
        double qkv = q + 2 * kv;
        c.fixed_flops = 2.0 * (d * qkv + q * d + 2.0 * d * F) /* c_attn, c_proj, fc, proj */
                        + qkv + d + F + d                     /* their four bias adds */
                        + 2.0 * FLOP_LAYERNORM * d            /* ln_1, ln_2 */
                        + FLOP_GELU * F + 2.0 * d;            /* GELU, two residual adds */
        /* ln_1 2d; c_attn d+qkv; bias 2qkv; attention q in, q out; c_proj q+d;
         * bias 2d; residual 3d; ln_2 2d; fc d+F; bias 2F; GELU 2F; proj F+d;
         * bias 2d; residual 3d; K,V read for the cache store 2kv */
        c.act_elems = 18.0 * d + 3.0 * qkv + 3.0 * q + 2.0 * kv + 6.0 * F;
        /* residual + normed input + the wider of attention (q,k,v,o) and MLP (fc, gelu) */
        c.scratch_elems = 2.0 * d + fmax(2.0 * q + 2.0 * kv, 2.0 * F);
        /* ln_1, c_attn + bias, KV store, attention, c_proj + bias, residual;
         * ln_2, fc + bias, GELU, proj + bias, residual */
        c.ops = 15.0;
    } else {
        c.fixed_flops = 2.0 * (d * q + 2.0 * d * kv + q * d + 3.0 * d * F) /* wq wk wv wo gate up down */
                        + 2.0 * FLOP_RMSNORM * d                          /* attn_norm, ffn_norm */
                        + FLOP_ROPE * (q + kv)                            /* RoPE on q and k */
                        + FLOP_SWIGLU * F + 2.0 * d;                      /* SwiGLU, residuals */
        /* norm 2d; q,k,v matmuls 3d in, q+2kv out; RoPE 2q+2kv; cache store
         * reads 2kv; attention q in, q out; wo q+d; residual 3d; norm 2d;
         * gate/up 2d in, 2F out; SwiGLU 3F; down F+d; residual 3d */
        c.act_elems = 17.0 * d + 6.0 * q + 6.0 * kv + 6.0 * F;
        if (md->arch == QEIL_ARCH_QWEN2) {
            c.fixed_flops += q + 2.0 * kv;      /* QKV bias adds */
            c.act_elems += 2.0 * (q + 2.0 * kv); /* each bias add reads and writes */
        }
        if (md->arch == QEIL_ARCH_LFM2) {
            c.fixed_flops += FLOP_RMSNORM * (q + kv); /* QK-norm of every head */
            c.act_elems += 2.0 * (q + kv);
        }
        if (md->arch == QEIL_ARCH_GRANITE) {
            c.fixed_flops += 2.0 * d; /* both residual branches times residual_scale */
            c.act_elems += 4.0 * d;
        }
        /* residual + normed input + the wider of attention (q,k,v,o) and FFN (gate, up, product) */
        c.scratch_elems = 2.0 * d + fmax(2.0 * q + 2.0 * kv, 3.0 * F);
        /* norm, q|k|v, RoPE on q and on k, KV store, attention, wo, residual;
         * norm, gate|up, silu·mul, down, residual */
        c.ops = 13.0;
        if (md->arch == QEIL_ARCH_QWEN2) c.ops += 3.0;   /* q, k, v bias adds */
        if (md->arch == QEIL_ARCH_LFM2) c.ops += 2.0;    /* QK-norm of q and of k */
        if (md->arch == QEIL_ARCH_GRANITE) c.ops += 2.0; /* the two residual scales */
    }
    return c;
}

/* ------------------------------------------------------------------------ */
/* Build                                                                     */
/* ------------------------------------------------------------------------ */

qeil_status qeil_workload_build(qeil_ctx *ctx, const qeil_model_desc *md,
                                const qeil_workload_params *wp, qeil_workload *out)
{
    if (!md || !wp || !out) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "qeil_workload_build: NULL argument");
    qeil_status st = qeil_model_validate(ctx, md);
    if (st != QEIL_OK) return st;
    uint32_t C = md->ctx_max;
    if (wp->prompt_tokens < 1 || wp->prompt_tokens > C - 1)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                             "prompt_tokens: %u is out of range (allowed 1..%u: the model's context is %u "
                             "and at least one token must be generated)",
                             wp->prompt_tokens, C - 1, C);
    if (wp->gen_tokens < 1 || wp->gen_tokens > C - wp->prompt_tokens)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                             "gen_tokens: %u is out of range (allowed 1..%u: prompt_tokens %u + gen_tokens "
                             "must fit the model's context of %u)",
                             wp->gen_tokens, C - wp->prompt_tokens, wp->prompt_tokens, C);
    if (wp->samples < 1 || wp->samples > QEIL_MAX_SAMPLES)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "samples: %u is out of range (allowed 1..%d)", wp->samples,
                             QEIL_MAX_SAMPLES);

    qeil_workload wl;
    memset(&wl, 0, sizeof wl);
    snprintf(wl.model_name, sizeof wl.model_name, "%s", md->name);
    wl.prompt_tokens = wp->prompt_tokens;
    wl.gen_tokens = wp->gen_tokens;
    wl.samples = wp->samples;
    wl.n_units = md->n_layers + 2;
    for (uint32_t u = 0; u < wl.n_units; u++) wl.dtype[u] = md->unit_dtype[u];

    const double P = wp->prompt_tokens, N = wp->gen_tokens;
    const double cbar = P + (N - 1.0) / 2.0;
    wl.mean_ctx = cbar;
    const double d = md->d_model, V = md->vocab;
    const int gpt2 = md->arch == QEIL_ARCH_GPT2, granite = md->arch == QEIL_ARCH_GRANITE;
    const double hidden_B = d * ACT_B; /* hidden state of one token handed on */

    /* Embedding table split: token rows, and gpt2's position rows. */
    double tok_B = md->token_embd_B;
    if (tok_B <= 0) tok_B = md->unit_weight_B[0] * V / (V + (gpt2 ? (double)md->ctx_max : 0.0));
    const double tok_row_B = tok_B / V;
    const double pos_row_B = gpt2 ? (md->unit_weight_B[0] - tok_B) / (double)md->ctx_max : 0.0;
    wl.tied_B = md->tied_embeddings ? tok_B : 0.0;

    /* ---- unit 0: embedding (row gather; gpt2 adds the position row) ---- */
    {
        qeil_unit_work *w = &wl.u[0];
        double rows_B = tok_row_B + pos_row_B;
        /* elements written/read per token: gather writes d; gpt2 also gathers
         * the position row (d) and adds: read 2d, write d */
        double act = gpt2 ? 5.0 * d : granite ? 3.0 * d : d; /* granite: x embedding_scale */
        w->pf_flops = gpt2 || granite ? P * d : 0.0;
        w->pf_weight_B = P * rows_B; /* only the gathered rows are read */
        w->pf_act_B = P * act * ACT_B;
        w->pf_out_B = P * hidden_B;
        w->dc_flops = gpt2 || granite ? d : 0.0;
        w->dc_weight_B = 0.0; /* the gathered row is per sequence: counted in dc_act_B */
        w->dc_act_B = rows_B + act * ACT_B;
        w->dc_out_B = hidden_B;
        w->weight_res_B = md->unit_weight_B[0];
        w->scratch_B = P * (gpt2 ? 2.0 : 1.0) * hidden_B;
        w->ops = 1.0 + (gpt2 ? 1.0 : 0.0) + (granite ? 1.0 : 0.0); /* gather, + positions, x scale */
    }

    /* ---- units 1..L: transformer blocks ---- */
    const double kv_tok_B = 2.0 * type_bytes(md->kv_type, (double)md->n_kv_heads * md->head_dim);
    for (uint32_t l = 0; l < md->n_layers; l++) {
        qeil_unit_work *w = &wl.u[l + 1];
        const block_cost bc = block_costs(md, l);
        double W = md->unit_weight_B[l + 1];
        if (md->layer_kind[l] == QEIL_LAYER_CONV) {
            /* lfm2 conv block: no KV; a state of L - 1 positions x d per
             * sequence (f32, as llama.cpp and qeil keep it), written at the
             * end of prefill, read and rewritten by every decode step,
             * whatever the context */
            const double state_B = ((double)md->conv_L - 1.0) * d * ACT_B;
            w->pf_flops = P * bc.fixed_flops;
            w->pf_weight_B = W;
            w->pf_kv_write_B = state_B;
            w->pf_kv_read_B = 0.0;
            w->pf_act_B = P * bc.act_elems * ACT_B;
            w->pf_out_B = P * hidden_B;
            w->dc_flops = bc.fixed_flops;
            w->dc_weight_B = W;
            w->dc_kv_read_B = state_B;
            w->dc_kv_write_B = state_B;
            w->dc_act_B = bc.act_elems * ACT_B;
            w->dc_out_B = hidden_B;
            w->weight_res_B = W;
            w->kv_res_B = state_B;
            w->scratch_B = P * bc.scratch_elems * ACT_B;
            w->ops = bc.ops;
            continue;
        }
        /* causal prefill: query i (1-based) attends to i positions, Σ = P(P+1)/2 */
        w->pf_attn_flops = bc.attn_flops_ctx * P * (P + 1.0) / 2.0;
        w->pf_flops = P * bc.fixed_flops + w->pf_attn_flops;
        w->pf_weight_B = W;
        w->pf_kv_write_B = P * kv_tok_B;
        w->pf_kv_read_B = prefill_kv_tokens_read(P) * kv_tok_B;
        w->pf_act_B = P * bc.act_elems * ACT_B;
        w->pf_out_B = P * hidden_B;
        /* decode step at context c̄: reads c̄ cached positions, appends one */
        w->dc_attn_flops = bc.attn_flops_ctx * cbar;
        w->dc_flops = bc.fixed_flops + w->dc_attn_flops;
        w->dc_weight_B = W;
        w->dc_kv_read_B = cbar * kv_tok_B;
        w->dc_kv_write_B = kv_tok_B;
        w->dc_act_B = bc.act_elems * ACT_B;
        w->dc_out_B = hidden_B;
        w->weight_res_B = W;
        w->kv_res_B = (P + N) * kv_tok_B;
        w->scratch_B = P * bc.scratch_elems * ACT_B;
        w->ops = bc.ops;
    }

    /* ---- unit L+1: final norm + LM head (logits of one position) ---- */
    {
        qeil_unit_work *w = &wl.u[md->n_layers + 1];
        double W = md->unit_weight_B[md->n_layers + 1];
        double flops = (gpt2 ? FLOP_LAYERNORM : FLOP_RMSNORM) * d + 2.0 * d * V;
        double act = (3.0 * d + V) * ACT_B; /* norm d in, d out; matmul d in, V logits out */
        if (granite) { /* logits / logit_scale */
            flops += V;
            act += 2.0 * V * ACT_B;
        }
        /* prefill: llama.cpp computes logits only for the last prompt position */
        w->pf_flops = flops;
        w->pf_weight_B = W;
        w->pf_act_B = act;
        w->pf_out_B = V * ACT_B; /* f32 logits to the sampler */
        w->dc_flops = flops;
        w->dc_weight_B = W;
        w->dc_act_B = act;
        w->dc_out_B = V * ACT_B;
        w->weight_res_B = W; /* includes the tied table: see tied_B */
        w->scratch_B = (d + V) * ACT_B;
        w->ops = granite ? 4.0 : 3.0; /* norm, matmul, (÷ logit_scale,) logits to the host */
    }

    *out = wl;
    return QEIL_OK;
}

double qeil_workload_prefill_flops(const qeil_workload *wl)
{
    if (!wl) return 0.0;
    double s = 0.0;
    for (uint32_t u = 0; u < wl->n_units && u < QEIL_MAX_WUNITS; u++) s += wl->u[u].pf_flops;
    return s;
}

double qeil_workload_decode_flops_per_token(const qeil_workload *wl)
{
    if (!wl) return 0.0;
    double s = 0.0;
    for (uint32_t u = 0; u < wl->n_units && u < QEIL_MAX_WUNITS; u++) s += wl->u[u].dc_flops;
    return s;
}
