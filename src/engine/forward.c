/*
 * forward.c — per-unit forward pass for llama, qwen2, gpt2, granite and
 * lfm2 on any backend (forward.h). The architectures differ only in the
 * choices carried by qeil_fwd_hparams (norm, FFN, RoPE, granite's
 * multipliers) and in which optional tensors (biases, fused QKV, QK-norm,
 * short convolution) are present; the sequence of ops is shared:
 *
 *   block:  h  = norm(x)                        attn_norm (+ bias)
 *           q, k, v = Wq h + bq, Wk h + bk, Wv h + bv   (or fused Wqkv)
 *           q, k = rope(q, k, pos)              llama: normal, qwen2: neox
 *           KV[seq][pos] = k, v
 *           a  = softmax(q K^T / sqrt(head_dim)) V   causal, GQA
 *           x += Wo a + bo
 *           h  = norm(x)                        ffn_norm (+ bias)
 *           x += Wdown (silu(Wgate h) * Wup h)  llama, qwen2
 *           x += Wdown gelu(Wup h + bup) + bdown    gpt2
 *   head:   logits = Wout norm(x)
 *
 *   granite: x = E[tok] * s_emb; each residual branch is scaled by s_res
 *            before it is added; scores use s_attn instead of 1/sqrt(hd);
 *            logits / s_logit (llama.cpp src/models/granite.cpp).
 *   lfm2:    attention blocks RMS-normalize every q and k head before RoPE
 *            (neox); short-convolution blocks replace attention by
 *            B | C | x = Win h;  u = B * x;  y = C * conv_L(u);  x += Wout y
 *            (llama.cpp src/models/lfm2.cpp, build_shortconv_block).
 */
#include "engine/forward.h"

#include <math.h>

/* 1-D parameters are f32 vectors in backend memory (checked at open). */
static const float *vec(const qeil_bweight *w) { return (const float *)w->data; }

static void norm_rows(const qeil_backend *be, void *st, const qeil_fwd_hparams *hp,
                      const qeil_bweight *w, const qeil_bweight *b, const float *x, float *y,
                      uint32_t n)
{
    if (hp->norm == QEIL_NORM_LAYER)
        be->layernorm(st, x, vec(w), b->data ? vec(b) : NULL, y, n, hp->d_model, hp->norm_eps);
    else
        be->rmsnorm(st, x, vec(w), y, n, hp->d_model, hp->norm_eps);
}

/* y = W x (+ b): n rows of W->n_rows outputs, contiguous. */
static qeil_status linear(const qeil_backend *be, void *st, const qeil_bweight *w,
                          const qeil_bweight *b, const float *x, uint32_t n, float *y)
{
    qeil_status r = be->matmul(st, w, x, n, y);
    if (r != QEIL_OK) return r;
    if (b->data) be->add_bias(st, y, (size_t)w->n_rows, vec(b), n, (uint32_t)w->n_rows);
    return QEIL_OK;
}

/* y[j] = W[j] x (+ b[j]) for weights that read the same x: one backend
 * call when the backend fuses them, else one matmul each. */
static qeil_status linear_multi(const qeil_backend *be, void *st, const qeil_bweight *const *w,
                                const qeil_bweight *const *b, int nw, const float *x, uint32_t n,
                                float *const *y)
{
    if (!be->matmul_multi) {
        for (int j = 0; j < nw; j++) {
            qeil_status r = linear(be, st, w[j], b[j], x, n, y[j]);
            if (r != QEIL_OK) return r;
        }
        return QEIL_OK;
    }
    qeil_status r = be->matmul_multi(st, w, nw, x, n, y);
    if (r != QEIL_OK) return r;
    for (int j = 0; j < nw; j++)
        if (b[j]->data)
            be->add_bias(st, y[j], (size_t)w[j]->n_rows, vec(b[j]), n, (uint32_t)w[j]->n_rows);
    return QEIL_OK;
}

qeil_status qeil_fwd_run_embed(const qeil_backend *be, void *st, const qeil_fwd_hparams *hp,
                           const qeil_fwd_embd *w, const uint32_t *tok, const uint32_t *pos,
                           uint32_t n, qeil_fwd_scratch *s)
{
    be->get_rows(st, &w->tok_embd, tok, n, s->x, 0);
    if (w->pos_embd.data) be->get_rows(st, &w->pos_embd, pos, n, s->x, 1);
    if (hp->emb_scale != 1.0f) be->scale(st, s->x, (size_t)n * hp->d_model, hp->emb_scale);
    return QEIL_OK;
}

/* x += res_scale * y (y is scratch: scaled in place) */
static void residual(const qeil_backend *be, void *st, const qeil_fwd_hparams *hp, float *x,
                     float *y, size_t n_elems)
{
    if (hp->res_scale != 1.0f) be->scale(st, y, n_elems, hp->res_scale);
    be->add(st, x, y, n_elems);
}

const char *qeil_fwd_missing_op(const qeil_backend *be, const qeil_fwd_hparams *hp, uint32_t u,
                                const qeil_fwd_layer *w)
{
    const int scaled = hp->emb_scale != 1.0f || hp->res_scale != 1.0f || hp->logit_scale != 1.0f;
    if (scaled && !be->scale) return "scale";
    if (u >= 1 && u <= hp->n_layers && w && w->conv_in.data && !be->shortconv) return "shortconv";
    return NULL;
}

/* lfm2: x += Wout (C * conv(B * x)), B | C | x = Win norm(x) */
static qeil_status conv_branch(const qeil_backend *be, void *st, const qeil_fwd_hparams *hp,
                               const qeil_fwd_layer *w, const qeil_bkv *kv, const qeil_brow *rows,
                               uint32_t n, qeil_fwd_scratch *s)
{
    qeil_status r;
    norm_rows(be, st, hp, &w->attn_norm, &w->attn_norm_b, s->x, s->xn, n);
    /* s->q holds n rows of B | C | x (sized 3 d for lfm2), s->att the gated conv output */
    if ((r = linear(be, st, &w->conv_in, &w->bq, s->xn, n, s->q)) != QEIL_OK) return r;
    be->shortconv(st, kv, s->q, n, rows, vec(&w->conv_w), s->att);
    if ((r = linear(be, st, &w->conv_out, &w->bo, s->att, n, s->xn)) != QEIL_OK) return r;
    residual(be, st, hp, s->x, s->xn, (size_t)n * hp->d_model);
    return QEIL_OK;
}

/* x += Wo attention(norm(x)) + bo, writing the rows' K/V into kv */
static qeil_status attn_branch(const qeil_backend *be, void *st, const qeil_fwd_hparams *hp,
                               const qeil_fwd_layer *w, const qeil_bkv *kv, const qeil_brow *rows,
                               uint32_t n, qeil_fwd_scratch *s)
{
    const uint32_t qd = hp->q_dim, kvd = hp->kv_dim;
    qeil_status r;
    norm_rows(be, st, hp, &w->attn_norm, &w->attn_norm_b, s->x, s->xn, n);
    float *q, *k, *v;
    size_t q_stride, kv_stride;
    if (w->wqkv.data) {
        /* fused: each output row is q | k | v */
        if ((r = linear(be, st, &w->wqkv, &w->bqkv, s->xn, n, s->q)) != QEIL_OK) return r;
        q = s->q;
        k = s->q + qd;
        v = s->q + qd + kvd;
        q_stride = kv_stride = (size_t)qd + 2 * (size_t)kvd;
    } else {
        const qeil_bweight *ws[3] = {&w->wq, &w->wk, &w->wv}, *bs[3] = {&w->bq, &w->bk, &w->bv};
        float *const ys[3] = {s->q, s->k, s->v};
        if ((r = linear_multi(be, st, ws, bs, 3, s->xn, n, ys)) != QEIL_OK) return r;
        q = s->q;
        k = s->k;
        v = s->v;
        q_stride = qd;
        kv_stride = kvd;
    }
    if (w->q_norm.data) {
        /* lfm2 QK-norm: every head is a row of head_dim (separate
         * projections: q and k rows are contiguous) */
        be->rmsnorm(st, q, vec(&w->q_norm), q, n * hp->n_heads, hp->head_dim, hp->norm_eps);
        be->rmsnorm(st, k, vec(&w->k_norm), k, n * hp->n_kv_heads, hp->head_dim, hp->norm_eps);
    }
    if (hp->rope != QEIL_ROPE_NONE) {
        const int neox = hp->rope == QEIL_ROPE_NEOX;
        be->rope(st, q, q_stride, n, rows, hp->n_heads, hp->head_dim, hp->n_rot, s->rope_cos,
                 s->rope_sin, neox);
        be->rope(st, k, kv_stride, n, rows, hp->n_kv_heads, hp->head_dim, hp->n_rot, s->rope_cos,
                 s->rope_sin, neox);
    }
    /* all rows' K/V first: row i of a prefill chunk attends to rows <= i */
    be->kv_store(st, kv, k, v, kv_stride, n, rows);
    be->attention(st, kv, q, q_stride, n, rows, hp->n_heads, hp->attn_scale, s->att);
    if ((r = linear(be, st, &w->wo, &w->bo, s->att, n, s->xn)) != QEIL_OK) return r;
    residual(be, st, hp, s->x, s->xn, (size_t)n * hp->d_model);
    return QEIL_OK;
}

qeil_status qeil_fwd_run_block(const qeil_backend *be, void *st, const qeil_fwd_hparams *hp,
                           const qeil_fwd_layer *w, const qeil_bkv *kv, const qeil_brow *rows,
                           uint32_t n, qeil_fwd_scratch *s)
{
    qeil_status r = w->conv_in.data ? conv_branch(be, st, hp, w, kv, rows, n, s)
                                    : attn_branch(be, st, hp, w, kv, rows, n, s);
    if (r != QEIL_OK) return r;

    /* ---- feed-forward ---- */
    norm_rows(be, st, hp, &w->ffn_norm, &w->ffn_norm_b, s->x, s->xn, n);
    const size_t nff = (size_t)n * hp->d_ff;
    if (hp->ffn == QEIL_FFN_SWIGLU) {
        const qeil_bweight *ws[2] = {&w->gate, &w->up}, *bs[2] = {&w->bgate, &w->bup};
        float *const ys[2] = {s->ffa, s->ffb};
        if ((r = linear_multi(be, st, ws, bs, 2, s->xn, n, ys)) != QEIL_OK) return r;
        be->silu_mul(st, s->ffa, s->ffb, nff);
    } else {
        if ((r = linear(be, st, &w->up, &w->bup, s->xn, n, s->ffa)) != QEIL_OK) return r;
        be->gelu(st, s->ffa, nff);
    }
    if ((r = linear(be, st, &w->down, &w->bdown, s->ffa, n, s->xn)) != QEIL_OK) return r;
    residual(be, st, hp, s->x, s->xn, (size_t)n * hp->d_model);
    return QEIL_OK;
}

qeil_status qeil_fwd_run_head(const qeil_backend *be, void *st, const qeil_fwd_hparams *hp,
                          const qeil_fwd_head *w, qeil_fwd_scratch *s, uint32_t first, uint32_t n,
                          float *host_logits, qeil_status (*wait)(void *arg), void *wait_arg)
{
    const size_t d = hp->d_model, V = hp->vocab;
    for (uint32_t c0 = 0; c0 < n; c0 += s->logit_rows) {
        const uint32_t cn = n - c0 < s->logit_rows ? n - c0 : s->logit_rows;
        norm_rows(be, st, hp, &w->norm, &w->norm_b, s->x + (first + c0) * d, s->xn, cn);
        qeil_status r = be->matmul(st, &w->out, s->xn, cn, s->logits);
        if (r != QEIL_OK) return r;
        if (hp->logit_scale != 1.0f) be->scale(st, s->logits, (size_t)cn * V, 1.0f / hp->logit_scale);
        if (wait && (r = wait(wait_arg)) != QEIL_OK) return r;
        be->to_host(st, host_logits + (size_t)c0 * V, s->logits, (size_t)cn * V * sizeof(float));
    }
    return QEIL_OK;
}
