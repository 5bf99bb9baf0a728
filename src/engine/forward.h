/*
 * forward.h — the transformer forward pass, one work unit at a time
 * (internal): token embedding, one block, final norm + LM head. Each unit
 * runs on whatever backend holds its weights; the model code below only
 * chains backend ops on backend buffers (backend.h), so it is the same for
 * every backend.
 *
 *     qeil_fwd_run_embed(be, st, &hp, &embd, tok, pos, n, &scratch);        // x = E[tok] (+ P[pos])
 *     for (l = 0; l < hp.n_layers; l++)
 *         qeil_fwd_run_block(be, st, &hp, &layer[l], &kv[l], rows, n, &scratch);
 *     qeil_fwd_run_head(be, st, &hp, &head, &scratch, n - 1, 1, logits, NULL, NULL); // last row
 *
 * The residual stream x (n rows of d_model floats) lives in the scratch of
 * the unit's backend; the engine copies it when consecutive units sit on
 * different backends. Nothing here allocates.
 */
#ifndef QEIL_ENGINE_FORWARD_H
#define QEIL_ENGINE_FORWARD_H

#include <stdint.h>

#include "engine/backend.h"
#include "qeil/model.h"

typedef enum {
    QEIL_ROPE_NONE = 0, /* gpt2: learned absolute positions */
    QEIL_ROPE_NORMAL,   /* llama (llama.cpp's GGUF layout): pairs (2i, 2i+1) */
    QEIL_ROPE_NEOX      /* qwen2: pairs (i, i + n_rot/2) */
} qeil_rope_mode;

typedef enum {
    QEIL_NORM_RMS = 0,  /* llama, qwen2 */
    QEIL_NORM_LAYER     /* gpt2 (weight + bias) */
} qeil_norm_kind;

typedef enum {
    QEIL_FFN_SWIGLU = 0, /* down(silu(gate x) * up x) */
    QEIL_FFN_GELU        /* down(gelu(up x + b) ) + b */
} qeil_ffn_kind;

typedef struct {
    qeil_arch arch;
    uint32_t n_layers, d_model, n_heads, n_kv_heads, head_dim, d_ff, vocab;
    uint32_t q_dim, kv_dim;   /* n_heads * head_dim, n_kv_heads * head_dim */
    uint32_t n_rot;           /* rotated dims per head (even, <= head_dim) */
    qeil_rope_mode rope;
    qeil_norm_kind norm;
    qeil_ffn_kind ffn;
    float norm_eps;
    uint32_t n_ctx, n_seq, n_batch;
    /* granite's multipliers (llama.cpp hparams f_embedding_scale,
     * f_residual_scale, f_attention_scale, f_logit_scale): x = E[tok] *
     * emb_scale; x += res_scale * block output; scores q.k * attn_scale;
     * logits / logit_scale. Other archs: 1, 1, 1/sqrt(head_dim), 1. */
    float emb_scale, res_scale, attn_scale, logit_scale;
    uint32_t conv_L; /* lfm2 short-convolution kernel length (0: none) */
} qeil_fwd_hparams;

/* Weights in the memory of the backend that runs the unit; absent optional
 * tensors have data == NULL. */
typedef struct {
    qeil_bweight tok_embd; /* [d_model, vocab] */
    qeil_bweight pos_embd; /* [d_model, n_pos] (gpt2) */
} qeil_fwd_embd;

typedef struct {
    qeil_bweight attn_norm, attn_norm_b;
    qeil_bweight wq, wk, wv, bq, bk, bv; /* separate projections (llama, qwen2) */
    qeil_bweight wqkv, bqkv;             /* fused q|k|v rows (gpt2) */
    qeil_bweight wo, bo;
    qeil_bweight ffn_norm, ffn_norm_b;
    qeil_bweight gate, bgate, up, bup, down, bdown;
    /* lfm2: attention blocks normalize each q and k head (RMSNorm over
     * head_dim, weights [head_dim]) before RoPE; short-convolution blocks
     * (conv_in set) have no attention tensors: in_proj [d, 3d], conv
     * [L, d] f32, out_proj [d, d] */
    qeil_bweight q_norm, k_norm;
    qeil_bweight conv_in, conv_w, conv_out;
} qeil_fwd_layer;

typedef struct {
    qeil_bweight norm, norm_b;
    qeil_bweight out; /* output.weight, or token_embd.weight when tied */
} qeil_fwd_head;

/* Activation buffers of one backend, sized for n_batch rows. */
typedef struct {
    float *x;       /* [n_batch][d_model] residual stream */
    float *xn;      /* [n_batch][d_model] normalized x, projection outputs */
    float *q;       /* [n_batch][q_dim + 2 kv_dim]: q (or fused q|k|v) */
    float *k, *v;   /* [n_batch][kv_dim] */
    float *att;     /* [n_batch][q_dim] attention output */
    float *ffa, *ffb; /* [n_batch][d_ff] */
    float *logits;  /* [logit_rows][vocab] */
    uint32_t logit_rows;
    const float *rope_cos, *rope_sin; /* [n_ctx][n_rot / 2] */
} qeil_fwd_scratch;

/* x[i] = tok_embd[tok[i]] (+ pos_embd[pos[i]] for gpt2). Ids are host
 * memory and already range-checked. */
qeil_status qeil_fwd_run_embed(const qeil_backend *be, void *st, const qeil_fwd_hparams *hp,
                           const qeil_fwd_embd *w, const uint32_t *tok, const uint32_t *pos,
                           uint32_t n, qeil_fwd_scratch *s);

/* One transformer block over n rows: writes the rows' K/V into kv, then
 * x += attention(norm(x)); x += ffn(norm(x)). */
qeil_status qeil_fwd_run_block(const qeil_backend *be, void *st, const qeil_fwd_hparams *hp,
                           const qeil_fwd_layer *w, const qeil_bkv *kv, const qeil_brow *rows,
                           uint32_t n, qeil_fwd_scratch *s);

/* The optional backend ops (backend.h) unit u needs for these hparams
 * and weights (u: 0 embedding, 1..n_layers blocks with w, n_layers + 1
 * head); NULL when be has them all, else the name of one it lacks. */
const char *qeil_fwd_missing_op(const qeil_backend *be, const qeil_fwd_hparams *hp, uint32_t u,
                                const qeil_fwd_layer *w);

/* Logits of rows first..first+n-1 of x into host memory (n x vocab floats),
 * in chunks of s->logit_rows. wait (NULL: none) runs before each chunk's
 * logits are read back: the engine's bounded sync of the device (a
 * failure it returns is returned). */
qeil_status qeil_fwd_run_head(const qeil_backend *be, void *st, const qeil_fwd_hparams *hp,
                          const qeil_fwd_head *w, qeil_fwd_scratch *s, uint32_t first, uint32_t n,
                          float *host_logits, qeil_status (*wait)(void *arg), void *wait_arg);

#endif /* QEIL_ENGINE_FORWARD_H */
