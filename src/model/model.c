/* model.c — model descriptions: the built-in catalog (real published shapes),
 * the description a GGUF file gives of itself, validation, and the weight
 * bytes per unit (embedding, blocks, head) following the GGUF block layouts.
 *
 * Both the catalog and the GGUF path feed (name, type, shape) of every tensor
 * through the same accounting (acc_add), so a GGUF written with the tensors
 * a config implies gives the same description as the config. Sources of
 * every shape and the quantization rule: docs/models.md. */
#include "qeil/model.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Limits (docs/models.md, "Validation")                                     */
/* ------------------------------------------------------------------------ */

#define MAX_D_MODEL 65536u
#define MAX_HEADS 1024u
#define MAX_HEAD_DIM 1024u
#define MAX_D_FF (1u << 20)
#define MAX_VOCAB QEIL_GGUF_MAX_ARRAY
#define MAX_CTX (1u << 24)
#define MAX_UNIT_BYTES 1e15 /* 1 PB: far above any model, catches garbage */

const char *qeil_arch_name(qeil_arch a)
{
    switch (a) {
    case QEIL_ARCH_LLAMA: return "llama";
    case QEIL_ARCH_QWEN2: return "qwen2";
    case QEIL_ARCH_GPT2: return "gpt2";
    case QEIL_ARCH_GRANITE: return "granite";
    case QEIL_ARCH_LFM2: return "lfm2";
    }
    return "unknown";
}

/* ------------------------------------------------------------------------ */
/* Per-unit accounting shared by the catalog and the GGUF reader             */
/* ------------------------------------------------------------------------ */

/* Compute classes a tensor type maps to (see unit_dtype in model.h). */
enum { CLS_F32 = 0, CLS_F16, CLS_INT8, CLS_N };

static int type_class(int type)
{
    if (type == QEIL_GGML_F32) return CLS_F32;
    if (type == QEIL_GGML_F16 || type == QEIL_GGML_BF16) return CLS_F16;
    return CLS_INT8; /* any block-quantized type: int8 dot products */
}

typedef struct {
    uint32_t n_units;
    uint64_t unit_B[QEIL_MAX_WUNITS];
    /* elements of matrices (2-D and up) per unit and class: picks unit_dtype */
    uint64_t cls_elems[QEIL_MAX_WUNITS][CLS_N];
    uint64_t unit_tensors[QEIL_MAX_WUNITS];
    /* elements of matrices per ggml type: picks weight_type */
    uint64_t type_elems[QEIL_GGML_TYPE_LIMIT];
    uint64_t token_embd_B;
    uint64_t token_embd_elems;
    int token_embd_type; /* -1 until seen */
    int has_output;
} acc_t;

static void acc_init(acc_t *a, uint32_t n_layers)
{
    memset(a, 0, sizeof *a);
    a->n_units = n_layers + 2;
    a->token_embd_type = -1;
}

/* Add one tensor of `nbytes` bytes and `n_elems` elements to `unit`.
 * Returns 0, or -1 on uint64 overflow of a sum. */
static int acc_add(acc_t *a, uint32_t unit, int type, int is_matrix, uint64_t n_elems,
                   uint64_t nbytes)
{
    if (a->unit_B[unit] > UINT64_MAX - nbytes) return -1;
    a->unit_B[unit] += nbytes;
    a->unit_tensors[unit]++;
    if (is_matrix) {
        uint64_t *c = &a->cls_elems[unit][type_class(type)];
        if (*c > UINT64_MAX - n_elems) return -1;
        *c += n_elems;
        if (type >= 0 && type < QEIL_GGML_TYPE_LIMIT) {
            if (a->type_elems[type] > UINT64_MAX - n_elems) return -1;
            a->type_elems[type] += n_elems;
        }
    }
    return 0;
}

static qeil_dtype class_dtype(const uint64_t *cls)
{
    int best = CLS_F32;
    for (int c = 1; c < CLS_N; c++)
        if (cls[c] > cls[best]) best = c;
    switch (best) {
    case CLS_F16: return QEIL_DT_F16;
    case CLS_INT8: return QEIL_DT_INT8;
    default: return QEIL_DT_F32;
    }
}

/* Turn the accumulated tensors into the byte/dtype fields of *md. A tied head
 * reads the embedding table: its bytes go into the head's unit bytes too
 * (traffic where the head runs), and qeil_model_weight_bytes removes the
 * duplicate from the total. */
static void acc_finish(acc_t *a, qeil_model_desc *md)
{
    uint32_t head = a->n_units - 1;
    md->tied_embeddings = !a->has_output;
    if (md->tied_embeddings && a->token_embd_type >= 0) {
        a->unit_B[head] += a->token_embd_B;
        a->cls_elems[head][type_class(a->token_embd_type)] += a->token_embd_elems;
    }
    for (uint32_t u = 0; u < a->n_units; u++) {
        md->unit_weight_B[u] = (double)a->unit_B[u];
        md->unit_dtype[u] = class_dtype(a->cls_elems[u]);
    }
    int wt = QEIL_GGML_F32;
    for (int t = 0; t < QEIL_GGML_TYPE_LIMIT; t++)
        if (a->type_elems[t] > a->type_elems[wt]) wt = t;
    md->weight_type = wt;
    md->token_embd_B = (double)a->token_embd_B;
}

/* ------------------------------------------------------------------------ */
/* Built-in catalog                                                          */
/* ------------------------------------------------------------------------ */

typedef enum {
    POL_F16 = 0, /* llama.cpp convert --outtype f16: matrices F16, 1-D tensors F32 */
    POL_Q4_K_M   /* llama-quantize Q4_K_M (rule in q4_k_m_type) */
} type_policy;

typedef struct {
    const char *name;
    const char *description;
    qeil_arch arch;
    uint32_t n_layers, d_model, n_heads, n_kv_heads, head_dim, d_ff, vocab, ctx_max;
    int tied;
    type_policy policy;
    /* lfm2: bit l set = layer l is an attention block (the others are
     * short-convolution blocks of kernel conv_L); 0 for the other archs */
    uint64_t attn_mask;
    uint32_t conv_L;
} model_spec;

/* Shapes are the published HF config.json values; sources in docs/models.md. */
static const model_spec catalog[] = {
    {"gpt2-125m", "OpenAI GPT-2 small (openai-community/gpt2), 124.4M params, f16",
     QEIL_ARCH_GPT2, 12, 768, 12, 12, 64, 3072, 50257, 1024, 1, POL_F16, 0, 0},
    {"granite-350m",
     "IBM Granite-4.0-350M (ibm-granite/granite-4.0-350m), dense GQA+SwiGLU, 352M params, f16",
     QEIL_ARCH_GRANITE, 28, 1024, 16, 4, 64, 2048, 100352, 32768, 1, POL_F16, 0, 0},
    {"qwen2-0.5b", "Qwen2-0.5B (Qwen/Qwen2-0.5B), QKV biases, 494M params, f16",
     QEIL_ARCH_QWEN2, 24, 896, 14, 2, 64, 4864, 151936, 32768, 1, POL_F16, 0, 0},
    {"llama-3.2-1b", "Meta Llama-3.2-1B (meta-llama/Llama-3.2-1B), 1.24B params, f16",
     QEIL_ARCH_LLAMA, 16, 2048, 32, 8, 64, 8192, 128256, 131072, 1, POL_F16, 0, 0},
    /* 22 conv + 8 attention blocks; which 8 is an assumption (docs/models.md) */
    {"lfm2-2.6b",
     "LiquidAI LFM2-2.6B (LiquidAI/LFM2-2.6B), 22 short-conv + 8 GQA blocks, 2.57B params, f16",
     QEIL_ARCH_LFM2, 30, 2048, 32, 8, 64, 10752, 65536, 32768, 1, POL_F16,
     (1ull << 2) | (1ull << 6) | (1ull << 10) | (1ull << 14) | (1ull << 18) | (1ull << 21) |
         (1ull << 24) | (1ull << 27),
     3},
    {"llama-3.1-8b-f16", "Meta Llama-3.1-8B (meta-llama/Llama-3.1-8B), 8.03B params, f16",
     QEIL_ARCH_LLAMA, 32, 4096, 32, 8, 128, 14336, 128256, 131072, 0, POL_F16, 0, 0},
    {"llama-3.1-8b-q4", "Meta Llama-3.1-8B, Q4_K_M as llama-quantize writes it (~4.9 GB)",
     QEIL_ARCH_LLAMA, 32, 4096, 32, 8, 128, 14336, 128256, 131072, 0, POL_Q4_K_M, 0, 0},
};
#define CATALOG_N (sizeof catalog / sizeof catalog[0])

size_t qeil_model_catalog_count(void) { return CATALOG_N; }

/* llama.cpp's layer selector for "more bits" in Q4_K_M (llama-quant.cpp,
 * use_more_bits): the first and last eighth of the layers and every third
 * layer in between. 16 of Llama-3.1-8B's 32 layers. */
static int use_more_bits(uint32_t i, uint32_t n)
{
    return i < n / 8 || i >= 7 * n / 8 || ((int64_t)i - (int64_t)(n / 8)) % 3 == 2;
}

/* Tensor kinds the Q4_K_M rule distinguishes. */
typedef enum {
    K_OTHER = 0, K_TOKEN_EMBD, K_OUTPUT, K_ATTN_V, K_FFN_DOWN, K_ATTN_QKV,
    K_F32 /* a matrix every file type keeps in f32 (lfm2 shortconv.conv) */
} tensor_kind;

/* Type llama-quantize gives a matrix under Q4_K_M (llama.cpp
 * llama_tensor_get_type, non-MoE, non-Falcon path):
 *   output.weight (or token_embd.weight when there is no output) -> Q6_K
 *     (Q8_0 if its row length is not a multiple of 256);
 *   attn_v.weight, ffn_down.weight -> Q6_K in use_more_bits layers;
 *   attn_qkv.weight (fused, gpt2) -> Q5_K;
 *   everything else, token_embd included -> Q4_K.
 * Rows that do not split into the type's blocks fall back as llama.cpp
 * does: Q4_K->Q5_0, Q5_K->Q5_1, Q6_K->Q8_0, and F16 if still no fit. */
static int q4_k_m_type(tensor_kind k, uint32_t layer, uint32_t n_layers, int has_output,
                       uint64_t ne0)
{
    int t = QEIL_GGML_Q4_K;
    if (k == K_OUTPUT || (k == K_TOKEN_EMBD && !has_output)) {
        return ne0 % 256 ? QEIL_GGML_Q8_0 : QEIL_GGML_Q6_K;
    } else if (k == K_ATTN_V || k == K_FFN_DOWN) {
        if (use_more_bits(layer, n_layers)) t = QEIL_GGML_Q6_K;
    } else if (k == K_ATTN_QKV) {
        t = QEIL_GGML_Q5_K;
    }
    if (ne0 % qeil_ggml_block_elems(t) != 0) {
        t = t == QEIL_GGML_Q4_K ? QEIL_GGML_Q5_0 : t == QEIL_GGML_Q5_K ? QEIL_GGML_Q5_1
                                                                        : QEIL_GGML_Q8_0;
        if (ne0 % qeil_ggml_block_elems(t) != 0) t = QEIL_GGML_F16;
    }
    return t;
}

typedef struct {
    const model_spec *s;
    acc_t acc;
    int bad; /* a byte count did not fit: a catalog bug */
} builder;

/* One tensor of shape [ne0] (ne1 == 0) or [ne0, ne1], as the converter or
 * llama-quantize would store it under the spec's policy. */
static void b_tensor(builder *b, uint32_t unit, tensor_kind k, uint32_t layer, uint64_t ne0,
                     uint64_t ne1)
{
    const model_spec *s = b->s;
    int matrix = ne1 > 0;
    uint64_t rows = matrix ? ne1 : 1;
    int type = QEIL_GGML_F32; /* 1-D tensors (norms, biases) stay F32 in every file type */
    if (matrix && k != K_F32)
        type = s->policy == POL_Q4_K_M
                   ? q4_k_m_type(k, layer, s->n_layers, !s->tied, ne0)
                   : QEIL_GGML_F16;
    int ok = 0;
    uint64_t row_B = qeil_ggml_nbytes(type, ne0, &ok);
    if (!ok || (row_B && rows > UINT64_MAX / row_B)) {
        b->bad = 1;
        return;
    }
    if (acc_add(&b->acc, unit, type, matrix, ne0 * rows, row_B * rows) != 0) b->bad = 1;
    if (k == K_TOKEN_EMBD) {
        b->acc.token_embd_B = row_B * rows;
        b->acc.token_embd_elems = ne0 * rows;
        b->acc.token_embd_type = type;
    }
    if (k == K_OUTPUT) b->acc.has_output = 1;
}

/* The tensors llama.cpp's converters write for the architecture, in units. */
static void b_model(builder *b)
{
    const model_spec *s = b->s;
    uint64_t d = s->d_model, q = (uint64_t)s->n_heads * s->head_dim,
             kv = (uint64_t)s->n_kv_heads * s->head_dim, ff = s->d_ff;
    uint32_t head = s->n_layers + 1;

    b->acc.has_output = !s->tied; /* the Q4_K_M rule needs it before token_embd */
    b_tensor(b, 0, K_TOKEN_EMBD, 0, d, s->vocab);
    if (s->arch == QEIL_ARCH_GPT2) b_tensor(b, 0, K_OTHER, 0, d, s->ctx_max); /* position_embd */

    for (uint32_t l = 0; l < s->n_layers; l++) {
        uint32_t u = l + 1;
        if (s->arch == QEIL_ARCH_LFM2) {
            /* llama-model.cpp load_tensors LLM_ARCH_LFM2 */
            b_tensor(b, u, K_OTHER, l, d, 0);               /* attn_norm.weight */
            if (!((s->attn_mask >> l) & 1)) {
                b_tensor(b, u, K_F32, l, s->conv_L, d);     /* shortconv.conv.weight */
                b_tensor(b, u, K_OTHER, l, d, 3 * d);       /* shortconv.in_proj.weight */
                b_tensor(b, u, K_OTHER, l, d, d);           /* shortconv.out_proj.weight */
            } else {
                b_tensor(b, u, K_OTHER, l, s->head_dim, 0); /* attn_q_norm.weight */
                b_tensor(b, u, K_OTHER, l, s->head_dim, 0); /* attn_k_norm.weight */
                b_tensor(b, u, K_OTHER, l, d, q);           /* attn_q.weight */
                b_tensor(b, u, K_OTHER, l, d, kv);          /* attn_k.weight */
                b_tensor(b, u, K_ATTN_V, l, d, kv);         /* attn_v.weight */
                b_tensor(b, u, K_OTHER, l, q, d);           /* attn_output.weight */
            }
            b_tensor(b, u, K_OTHER, l, d, 0);               /* ffn_norm.weight */
            b_tensor(b, u, K_OTHER, l, d, ff);              /* ffn_gate.weight */
            b_tensor(b, u, K_OTHER, l, d, ff);              /* ffn_up.weight */
            b_tensor(b, u, K_FFN_DOWN, l, ff, d);           /* ffn_down.weight */
        } else if (s->arch == QEIL_ARCH_GPT2) {
            b_tensor(b, u, K_OTHER, l, d, 0);               /* attn_norm.weight */
            b_tensor(b, u, K_OTHER, l, d, 0);               /* attn_norm.bias */
            b_tensor(b, u, K_ATTN_QKV, l, d, q + 2 * kv);   /* attn_qkv.weight */
            b_tensor(b, u, K_OTHER, l, q + 2 * kv, 0);      /* attn_qkv.bias */
            b_tensor(b, u, K_OTHER, l, q, d);               /* attn_output.weight */
            b_tensor(b, u, K_OTHER, l, d, 0);               /* attn_output.bias */
            b_tensor(b, u, K_OTHER, l, d, 0);               /* ffn_norm.weight */
            b_tensor(b, u, K_OTHER, l, d, 0);               /* ffn_norm.bias */
            b_tensor(b, u, K_OTHER, l, d, ff);              /* ffn_up.weight */
            b_tensor(b, u, K_OTHER, l, ff, 0);              /* ffn_up.bias */
            b_tensor(b, u, K_FFN_DOWN, l, ff, d);           /* ffn_down.weight */
            b_tensor(b, u, K_OTHER, l, d, 0);               /* ffn_down.bias */
        } else {
            b_tensor(b, u, K_OTHER, l, d, 0);               /* attn_norm.weight */
            b_tensor(b, u, K_OTHER, l, d, q);               /* attn_q.weight */
            b_tensor(b, u, K_OTHER, l, d, kv);              /* attn_k.weight */
            b_tensor(b, u, K_ATTN_V, l, d, kv);             /* attn_v.weight */
            if (s->arch == QEIL_ARCH_QWEN2) {
                b_tensor(b, u, K_OTHER, l, q, 0);           /* attn_q.bias */
                b_tensor(b, u, K_OTHER, l, kv, 0);          /* attn_k.bias */
                b_tensor(b, u, K_OTHER, l, kv, 0);          /* attn_v.bias */
            }
            b_tensor(b, u, K_OTHER, l, q, d);               /* attn_output.weight */
            b_tensor(b, u, K_OTHER, l, d, 0);               /* ffn_norm.weight */
            b_tensor(b, u, K_OTHER, l, d, ff);              /* ffn_gate.weight */
            b_tensor(b, u, K_OTHER, l, d, ff);              /* ffn_up.weight */
            b_tensor(b, u, K_FFN_DOWN, l, ff, d);           /* ffn_down.weight */
        }
    }

    b_tensor(b, head, K_OTHER, 0, d, 0); /* output_norm.weight (lfm2: token_embd_norm.weight) */
    if (s->arch == QEIL_ARCH_GPT2) b_tensor(b, head, K_OTHER, 0, d, 0); /* output_norm.bias */
    if (!s->tied) b_tensor(b, head, K_OUTPUT, 0, d, s->vocab);      /* output.weight */
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap) n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

qeil_status qeil_model_catalog_get(qeil_ctx *ctx, size_t i, qeil_model_desc *out)
{
    if (!out) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "qeil_model_catalog_get: out is NULL");
    if (i >= CATALOG_N)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "model catalog index: %zu is out of range (allowed 0..%zu)",
                             i, CATALOG_N - 1);
    const model_spec *s = &catalog[i];
    /* about 11 KB: keep it off the stack of callers that nest deeply */
    builder *b = qeil_malloc(ctx, sizeof *b);
    if (!b) return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "model %s: out of memory", s->name);
    memset(b, 0, sizeof *b);
    b->s = s;
    acc_init(&b->acc, s->n_layers);
    b_model(b);

    qeil_model_desc md;
    memset(&md, 0, sizeof md);
    copy_str(md.name, sizeof md.name, s->name);
    copy_str(md.description, sizeof md.description, s->description);
    md.arch = s->arch;
    md.n_layers = s->n_layers;
    md.d_model = s->d_model;
    md.n_heads = s->n_heads;
    md.n_kv_heads = s->n_kv_heads;
    md.head_dim = s->head_dim;
    md.d_ff = s->d_ff;
    md.vocab = s->vocab;
    md.ctx_max = s->ctx_max;
    md.kv_type = QEIL_GGML_F16;
    if (s->arch == QEIL_ARCH_LFM2) {
        md.conv_L = s->conv_L;
        for (uint32_t l = 0; l < s->n_layers; l++)
            md.layer_kind[l] = ((s->attn_mask >> l) & 1) ? QEIL_LAYER_ATTN : QEIL_LAYER_CONV;
    }
    acc_finish(&b->acc, &md);
    int bad = b->bad;
    qeil_free(ctx, b);
    if (bad)
        return qeil_ctx_fail(ctx, QEIL_ERR_INTERNAL, "model %s: tensor byte count does not fit (catalog bug)",
                             s->name);
    qeil_status st = qeil_model_validate(ctx, &md);
    if (st != QEIL_OK) return st;
    *out = md;
    return QEIL_OK;
}

/* ------------------------------------------------------------------------ */
/* Totals                                                                    */
/* ------------------------------------------------------------------------ */

/* Bytes of the token-embedding table: the field, or (0 = not given) derived
 * from unit 0 assuming it holds only the token table (and for gpt2 the
 * position table, ctx_max rows in the same type). */
static double token_table_B(const qeil_model_desc *md)
{
    if (md->token_embd_B > 0) return md->token_embd_B;
    double rows = (double)md->vocab;
    double all = rows + (md->arch == QEIL_ARCH_GPT2 ? (double)md->ctx_max : 0.0);
    return all > 0 ? md->unit_weight_B[0] * rows / all : 0.0;
}

double qeil_model_weight_bytes(const qeil_model_desc *md)
{
    if (!md || md->n_layers < 1 || md->n_layers > QEIL_MAX_LAYERS) return 0.0;
    double sum = 0.0;
    for (uint32_t u = 0; u < md->n_layers + 2; u++) sum += md->unit_weight_B[u];
    if (md->tied_embeddings) sum -= token_table_B(md); /* held once, read by two units */
    return sum;
}

double qeil_model_params(const qeil_model_desc *md)
{
    if (!md) return 0.0;
    double d = md->d_model, V = md->vocab, F = md->d_ff, L = md->n_layers;
    double q = (double)md->n_heads * md->head_dim, kv = (double)md->n_kv_heads * md->head_dim;
    double emb = V * d, block, head;
    if (md->arch == QEIL_ARCH_GPT2) {
        emb += (double)md->ctx_max * d;            /* learned positions */
        block = 4 * d                              /* ln_1, ln_2: weight + bias */
                + d * (q + 2 * kv) + (q + 2 * kv)  /* c_attn */
                + q * d + d                        /* c_proj */
                + d * F + F                        /* mlp.c_fc */
                + F * d + d;                       /* mlp.c_proj */
        head = 2 * d;                              /* ln_f */
    } else if (md->arch == QEIL_ARCH_LFM2) {
        /* per layer: attention (2.5 d² at GQA 4:1 and q = d) or short conv
         * (4 d² + the d × L kernel); every layer has norms and a SwiGLU FFN */
        double hd = md->head_dim, blocks = 0.0;
        for (uint32_t l = 0; l < md->n_layers; l++) {
            blocks += 2 * d + 3 * d * F;
            if (md->layer_kind[l] == QEIL_LAYER_CONV)
                blocks += 3 * d * d + d * d + d * (double)md->conv_L; /* in_proj, out_proj, conv */
            else
                blocks += d * q + 2 * d * kv + q * d + 2 * hd;        /* wq wk wv wo, q/k norms */
        }
        head = d;                                  /* token_embd_norm (the final norm) */
        if (!md->tied_embeddings) head += V * d;
        return emb + blocks + head;
    } else {
        block = 2 * d                              /* attn_norm, ffn_norm */
                + d * q + 2 * d * kv + q * d       /* wq, wk, wv, wo */
                + 3 * d * F;                       /* w_gate, w_up, w_down */
        if (md->arch == QEIL_ARCH_QWEN2) block += q + 2 * kv; /* QKV biases */
        head = d;                                  /* output_norm */
    }
    if (!md->tied_embeddings) head += V * d;
    return emb + L * block + head;
}

/* ------------------------------------------------------------------------ */
/* Validation                                                                */
/* ------------------------------------------------------------------------ */

static qeil_status check_u32(qeil_ctx *ctx, const char *field, uint32_t v, uint32_t lo, uint32_t hi)
{
    if (v < lo || v > hi)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "%s: %u is out of range (allowed %u..%u)", field,
                             v, lo, hi);
    return QEIL_OK;
}

qeil_status qeil_model_validate(qeil_ctx *ctx, const qeil_model_desc *md)
{
    if (!md) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "model: NULL description");
    if (!memchr(md->name, '\0', sizeof md->name) || md->name[0] == '\0')
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "name: empty or not NUL-terminated (allowed 1..%d bytes)",
                             QEIL_NAME_MAX - 1);
    if (!memchr(md->description, '\0', sizeof md->description))
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "description: not NUL-terminated (allowed 0..%d bytes)",
                             QEIL_DESC_MAX - 1);
    if ((int)md->arch < QEIL_ARCH_LLAMA || (int)md->arch >= QEIL_ARCH_COUNT)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                             "arch: %d is out of range (allowed 0..%d: llama, qwen2, gpt2, granite, lfm2)",
                             (int)md->arch, QEIL_ARCH_COUNT - 1);
    qeil_status st;
    if ((st = check_u32(ctx, "n_layers", md->n_layers, 1, QEIL_MAX_LAYERS)) != QEIL_OK) return st;
    if ((st = check_u32(ctx, "d_model", md->d_model, 1, MAX_D_MODEL)) != QEIL_OK) return st;
    if ((st = check_u32(ctx, "n_heads", md->n_heads, 1, MAX_HEADS)) != QEIL_OK) return st;
    if ((st = check_u32(ctx, "n_kv_heads", md->n_kv_heads, 1, md->n_heads)) != QEIL_OK) return st;
    if (md->n_heads % md->n_kv_heads != 0)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "n_kv_heads: %u does not divide n_heads %u",
                             md->n_kv_heads, md->n_heads);
    if ((st = check_u32(ctx, "head_dim", md->head_dim, 1, MAX_HEAD_DIM)) != QEIL_OK) return st;
    if (md->arch == QEIL_ARCH_GPT2 &&
        ((uint64_t)md->n_heads * md->head_dim != md->d_model || md->n_kv_heads != md->n_heads))
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                             "head_dim: gpt2 needs n_heads x head_dim = d_model and n_kv_heads = n_heads "
                             "(got %u x %u vs %u, kv %u)",
                             md->n_heads, md->head_dim, md->d_model, md->n_kv_heads);
    if ((st = check_u32(ctx, "d_ff", md->d_ff, 1, MAX_D_FF)) != QEIL_OK) return st;
    if ((st = check_u32(ctx, "vocab", md->vocab, 1, MAX_VOCAB)) != QEIL_OK) return st;
    if ((st = check_u32(ctx, "ctx_max", md->ctx_max, 2, MAX_CTX)) != QEIL_OK) return st;
    uint32_t n_conv = 0;
    for (uint32_t l = 0; l < md->n_layers; l++) {
        if (md->layer_kind[l] != QEIL_LAYER_ATTN && md->layer_kind[l] != QEIL_LAYER_CONV)
            return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "layer_kind[%u]: %u is out of range (allowed 0 attn, 1 conv)",
                                 l, md->layer_kind[l]);
        n_conv += md->layer_kind[l] == QEIL_LAYER_CONV;
    }
    if (n_conv && md->arch != QEIL_ARCH_LFM2)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "layer_kind: %u conv blocks, but only lfm2 has them (arch %s)",
                             n_conv, qeil_arch_name(md->arch));
    if (n_conv && (md->conv_L < 2 || md->conv_L > QEIL_MAX_CONV_L))
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "conv_L: %u is out of range (allowed 2..%d with conv blocks)",
                             md->conv_L, QEIL_MAX_CONV_L);
    if (md->tied_embeddings != 0 && md->tied_embeddings != 1)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "tied_embeddings: %d is out of range (allowed 0 or 1)",
                             md->tied_embeddings);
    for (uint32_t u = 0; u < md->n_layers + 2; u++) {
        double b = md->unit_weight_B[u];
        if (!(b > 0 && b <= MAX_UNIT_BYTES))
            return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                                 "unit_weight_B[%u]: %g is out of range (allowed (0, %g] bytes)", u, b,
                                 MAX_UNIT_BYTES);
        if ((int)md->unit_dtype[u] < 0 || (int)md->unit_dtype[u] >= QEIL_DT_COUNT)
            return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "unit_dtype[%u]: %d is out of range (allowed 0..%d)", u,
                                 (int)md->unit_dtype[u], QEIL_DT_COUNT - 1);
    }
    uint32_t kv_be = md->kv_type >= 0 ? qeil_ggml_block_elems(md->kv_type) : 0;
    if (kv_be == 0)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "kv_type: %d is not a known ggml type", md->kv_type);
    if (((uint64_t)md->n_kv_heads * md->head_dim) % kv_be != 0)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                             "kv_type: %s needs rows of a multiple of %u elements (n_kv_heads x head_dim = %llu)",
                             qeil_ggml_type_name(md->kv_type), kv_be,
                             (unsigned long long)md->n_kv_heads * md->head_dim);
    if (md->weight_type < 0 || qeil_ggml_block_elems(md->weight_type) == 0)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "weight_type: %d is not a known ggml type", md->weight_type);
    double te = md->token_embd_B;
    if (!(te >= 0 && te <= md->unit_weight_B[0]))
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                             "token_embd_B: %g is out of range (allowed 0..unit_weight_B[0] = %g)", te,
                             md->unit_weight_B[0]);
    if (md->tied_embeddings && token_table_B(md) > md->unit_weight_B[md->n_layers + 1])
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                             "unit_weight_B[%u]: %g is below the tied embedding table it reads (%g bytes)",
                             md->n_layers + 1, md->unit_weight_B[md->n_layers + 1], token_table_B(md));
    return QEIL_OK;
}

/* ------------------------------------------------------------------------ */
/* From a GGUF file                                                          */
/* ------------------------------------------------------------------------ */

/* A required unsigned metadata value "<arch>.<suffix>" in [lo, hi]. */
static qeil_status gguf_u32(qeil_ctx *ctx, const qeil_gguf *g, const char *arch, const char *suffix,
                            int required, uint32_t lo, uint32_t hi, uint32_t *out)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    int64_t ki = qeil_gguf_find_key(g, key);
    if (ki < 0) {
        if (!required) return QEIL_ERR_NOTFOUND;
        return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "gguf: required key '%s' is missing", key);
    }
    uint64_t v = 0;
    if (qeil_gguf_kv_type(g, (size_t)ki) == QEIL_GGUF_ARRAY) {
        /* per-layer arrays (e.g. head_count_kv): accept them when uniform */
        qeil_gguf_vtype et;
        uint64_t n = 0;
        qeil_status st = qeil_gguf_get_arr(ctx, g, key, &et, &n);
        if (st != QEIL_OK) return st;
        if (n == 0 || et == QEIL_GGUF_STRING || et == QEIL_GGUF_ARRAY)
            return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "gguf: key '%s' is an array that is not numeric", key);
        double v0 = qeil_gguf_arr_f64(g, ki, 0);
        for (uint64_t i = 1; i < n; i++)
            if (qeil_gguf_arr_f64(g, ki, i) != v0)
                return qeil_ctx_fail(ctx, QEIL_ERR_UNSUPPORTED,
                                     "gguf: key '%s' varies per layer (element %llu differs); "
                                     "only uniform layers are supported",
                                     key, (unsigned long long)i);
        if (!(v0 >= 0 && v0 <= 4294967295.0) || v0 != floor(v0))
            return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "gguf: key '%s': %g is not a 32-bit count", key, v0);
        v = (uint64_t)v0;
    } else {
        qeil_status st = qeil_gguf_get_u64(ctx, g, key, &v);
        if (st != QEIL_OK) return st;
    }
    if (v < lo || v > hi)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "gguf: key '%s': %llu is out of range (allowed %u..%u)", key,
                             (unsigned long long)v, lo, hi);
    *out = (uint32_t)v;
    return QEIL_OK;
}

/* lfm2: <arch>.attention.head_count_kv is per layer (convert_hf_to_gguf.py
 * LFM2Model: num_key_value_heads for "full_attention" layers, 0 for conv
 * layers; llama-model.cpp: is_recr(il) = n_head_kv(il) == 0), and
 * <arch>.shortconv.l_cache (required) is the conv kernel length. All
 * attention layers must share one KV head count. */
static qeil_status lfm2_layers(qeil_ctx *ctx, const qeil_gguf *g, qeil_model_desc *md)
{
    const char *key = "lfm2.attention.head_count_kv";
    int64_t ki = qeil_gguf_find_key(g, key);
    if (ki < 0) return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "gguf: required key '%s' is missing", key);
    uint32_t kv = 0, n_conv = 0;
    if (qeil_gguf_kv_type(g, (size_t)ki) == QEIL_GGUF_ARRAY) {
        qeil_gguf_vtype et;
        uint64_t n = 0;
        qeil_status st = qeil_gguf_get_arr(ctx, g, key, &et, &n);
        if (st != QEIL_OK) return st;
        if (et == QEIL_GGUF_STRING || et == QEIL_GGUF_ARRAY || n != md->n_layers)
            return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT,
                                 "gguf: key '%s' must be %u numbers (one per block), got %llu", key,
                                 md->n_layers, (unsigned long long)n);
        for (uint32_t l = 0; l < md->n_layers; l++) {
            double v = qeil_gguf_arr_f64(g, ki, l);
            if (!(v >= 0 && v <= md->n_heads) || v != floor(v))
                return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "gguf: %s[%u] = %g (allowed 0 = conv block, 1..%u)",
                                     key, l, v, md->n_heads);
            if (v == 0) {
                md->layer_kind[l] = QEIL_LAYER_CONV;
                n_conv++;
            } else if (kv == 0) {
                kv = (uint32_t)v;
            } else if ((uint32_t)v != kv) {
                return qeil_ctx_fail(ctx, QEIL_ERR_UNSUPPORTED,
                                     "gguf: %s[%u] = %g differs from the other attention blocks' %u", key, l,
                                     v, kv);
            }
        }
    } else {
        uint64_t v = 0;
        qeil_status st = qeil_gguf_get_u64(ctx, g, key, &v);
        if (st != QEIL_OK) return st;
        if (v < 1 || v > md->n_heads)
            return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "gguf: key '%s': %llu is out of range (allowed 1..%u)", key,
                                 (unsigned long long)v, md->n_heads);
        kv = (uint32_t)v; /* one number: every block is attention */
    }
    /* an all-conv model has no attention: any divisor of n_heads describes it */
    md->n_kv_heads = kv ? kv : md->n_heads;
    qeil_status st = gguf_u32(ctx, g, "lfm2", "shortconv.l_cache", n_conv > 0, 2, QEIL_MAX_CONV_L, &md->conv_L);
    if (st == QEIL_ERR_NOTFOUND) md->conv_L = 0;
    else if (st != QEIL_OK) return st;
    return QEIL_OK;
}

/* "blk.N." prefix: N into *layer, returns 1; 0 when the name has no such
 * prefix; -1 when the digits are malformed or overflow. */
static int parse_blk(const char *name, uint64_t *layer)
{
    if (strncmp(name, "blk.", 4) != 0) return 0;
    const char *p = name + 4;
    if (*p < '0' || *p > '9') return -1;
    uint64_t v = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - 9) / 10) return -1;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (*p != '.') return -1;
    *layer = v;
    return 1;
}

static int has_prefix(const char *s, const char *pre) { return strncmp(s, pre, strlen(pre)) == 0; }

/* The FLOPs come from the metadata shapes and the bytes from the tensors, so
 * the block matrices must have the shapes the metadata implies. Returns 0 or
 * -1 (message recorded) for a block tensor `suffix` (name after "blk.N."). */
static int check_block_shape(qeil_ctx *ctx, const qeil_model_desc *md, const qeil_gguf_tensor *t,
                             const char *suffix)
{
    uint64_t d = md->d_model, q = (uint64_t)md->n_heads * md->head_dim,
             kv = (uint64_t)md->n_kv_heads * md->head_dim, ff = md->d_ff;
    static const char *names[] = {"attn_q.weight",      "attn_k.weight",   "attn_v.weight",
                                  "attn_output.weight", "ffn_gate.weight", "ffn_up.weight",
                                  "ffn_down.weight",    "attn_qkv.weight", "shortconv.in_proj.weight",
                                  "shortconv.out_proj.weight", "shortconv.conv.weight"};
    uint64_t want[11][2] = {{d, q},  {d, kv}, {d, kv},     {q, d}, {d, ff},        {d, ff},
                            {ff, d}, {d, q + 2 * kv}, {d, 3 * d}, {d, d}, {md->conv_L, d}};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        if (strcmp(suffix, names[k]) != 0) continue;
        if (t->n_dims != 2 || t->ne[0] != want[k][0] || t->ne[1] != want[k][1]) {
            qeil_ctx_fail(ctx, QEIL_ERR_FORMAT,
                          "gguf: tensor '%.80s' has shape [%llu, %llu], the metadata implies [%llu, %llu]",
                          t->name, (unsigned long long)t->ne[0],
                          (unsigned long long)(t->n_dims >= 2 ? t->ne[1] : 1),
                          (unsigned long long)want[k][0], (unsigned long long)want[k][1]);
            return -1;
        }
    }
    return 0;
}

qeil_status qeil_model_from_gguf(qeil_ctx *ctx, const qeil_gguf *g, qeil_model_desc *out)
{
    if (!g || !out) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "qeil_model_from_gguf: NULL argument");
    const char *arch_s = qeil_gguf_get_str(g, "general.architecture");
    if (!arch_s) return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "gguf: required key 'general.architecture' is missing");
    qeil_model_desc md;
    memset(&md, 0, sizeof md);
    if (strcmp(arch_s, "llama") == 0) md.arch = QEIL_ARCH_LLAMA;
    else if (strcmp(arch_s, "qwen2") == 0) md.arch = QEIL_ARCH_QWEN2;
    else if (strcmp(arch_s, "gpt2") == 0) md.arch = QEIL_ARCH_GPT2;
    else if (strcmp(arch_s, "granite") == 0) md.arch = QEIL_ARCH_GRANITE;
    else if (strcmp(arch_s, "lfm2") == 0) md.arch = QEIL_ARCH_LFM2;
    else
        return qeil_ctx_fail(ctx, QEIL_ERR_UNSUPPORTED,
                             "gguf: general.architecture '%.64s' is not supported (supported: llama, qwen2, "
                             "gpt2, granite, lfm2)",
                             arch_s);

    qeil_status st;
    if ((st = gguf_u32(ctx, g, arch_s, "block_count", 1, 1, QEIL_MAX_LAYERS, &md.n_layers)) != QEIL_OK ||
        (st = gguf_u32(ctx, g, arch_s, "embedding_length", 1, 1, MAX_D_MODEL, &md.d_model)) != QEIL_OK ||
        (st = gguf_u32(ctx, g, arch_s, "attention.head_count", 1, 1, MAX_HEADS, &md.n_heads)) != QEIL_OK ||
        (st = gguf_u32(ctx, g, arch_s, "feed_forward_length", 1, 1, MAX_D_FF, &md.d_ff)) != QEIL_OK ||
        (st = gguf_u32(ctx, g, arch_s, "context_length", 1, 2, MAX_CTX, &md.ctx_max)) != QEIL_OK)
        return st;
    if (md.arch == QEIL_ARCH_LFM2) {
        if ((st = lfm2_layers(ctx, g, &md)) != QEIL_OK) return st;
    } else {
        st = gguf_u32(ctx, g, arch_s, "attention.head_count_kv", 0, 1, md.n_heads, &md.n_kv_heads);
        if (st == QEIL_ERR_NOTFOUND) md.n_kv_heads = md.n_heads; /* no GQA: as many KV heads as heads */
        else if (st != QEIL_OK) return st;
    }
    st = gguf_u32(ctx, g, arch_s, "attention.key_length", 0, 1, MAX_HEAD_DIM, &md.head_dim);
    if (st == QEIL_ERR_NOTFOUND) {
        if (md.d_model % md.n_heads != 0)
            return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT,
                                 "gguf: %s.embedding_length %u is not a multiple of head_count %u "
                                 "(and no attention.key_length)",
                                 arch_s, md.d_model, md.n_heads);
        md.head_dim = md.d_model / md.n_heads;
    } else if (st != QEIL_OK) {
        return st;
    }

    /* Vocabulary: the rows of the embedding table, which is what the head
     * multiplies by; the tokenizer may be shorter (padding rows) but never
     * longer, and <arch>.vocab_size, if present, must agree. */
    int64_t te = qeil_gguf_find_tensor(g, "token_embd.weight");
    if (te < 0) return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "gguf: required tensor 'token_embd.weight' is missing");
    const qeil_gguf_tensor *tet = qeil_gguf_tensor_at(g, (size_t)te);
    if (!tet || tet->n_dims != 2 || tet->ne[0] != md.d_model || tet->ne[1] < 1 || tet->ne[1] > MAX_VOCAB)
        return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT,
                             "gguf: tensor 'token_embd.weight' has shape [%llu, %llu], expected [%u, vocab 1..%u]",
                             tet ? (unsigned long long)tet->ne[0] : 0ULL,
                             tet ? (unsigned long long)tet->ne[1] : 0ULL, md.d_model, MAX_VOCAB);
    md.vocab = (uint32_t)tet->ne[1];
    uint32_t vs = 0;
    st = gguf_u32(ctx, g, arch_s, "vocab_size", 0, 1, MAX_VOCAB, &vs);
    if (st == QEIL_OK && vs != md.vocab)
        return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "gguf: %s.vocab_size %u does not match token_embd.weight rows %u",
                             arch_s, vs, md.vocab);
    if (st != QEIL_OK && st != QEIL_ERR_NOTFOUND) return st;
    if (qeil_gguf_find_key(g, "tokenizer.ggml.tokens") >= 0) {
        qeil_gguf_vtype et;
        uint64_t n = 0;
        if ((st = qeil_gguf_get_arr(ctx, g, "tokenizer.ggml.tokens", &et, &n)) != QEIL_OK) return st;
        if (n > md.vocab)
            return qeil_ctx_fail(ctx, QEIL_ERR_FORMAT,
                                 "gguf: tokenizer.ggml.tokens has %llu tokens but token_embd.weight only %u rows",
                                 (unsigned long long)n, md.vocab);
    }

    acc_t *a = qeil_malloc(ctx, sizeof *a);
    if (!a) return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "gguf: out of memory");
    acc_init(a, md.n_layers);
    uint32_t head = md.n_layers + 1;
    size_t nt = qeil_gguf_n_tensors(g);
    st = QEIL_OK;
    for (size_t i = 0; i < nt && st == QEIL_OK; i++) {
        const qeil_gguf_tensor *t = qeil_gguf_tensor_at(g, i);
        if (!t || !t->name) {
            st = qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "gguf: tensor %zu unreadable", i);
            break;
        }
        uint64_t layer = 0;
        uint32_t unit;
        int blk = parse_blk(t->name, &layer);
        if (blk < 0) {
            st = qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "gguf: tensor '%.80s' has a malformed block number", t->name);
            break;
        } else if (blk == 1) {
            if (layer >= md.n_layers) {
                st = qeil_ctx_fail(ctx, QEIL_ERR_FORMAT,
                                   "gguf: tensor '%.80s' belongs to block %llu but %s.block_count is %u",
                                   t->name, (unsigned long long)layer, arch_s, md.n_layers);
                break;
            }
            unit = (uint32_t)layer + 1;
            if (check_block_shape(ctx, &md, t, strchr(t->name + 4, '.') + 1) != 0) {
                st = QEIL_ERR_FORMAT;
                break;
            }
        } else if (has_prefix(t->name, "output_norm.") || strcmp(t->name, "output.weight") == 0 ||
                   has_prefix(t->name, "output.") ||
                   (md.arch == QEIL_ARCH_LFM2 && strcmp(t->name, "token_embd_norm.weight") == 0)) {
            /* lfm2's final norm is stored as token_embd_norm (llama-arch.cpp
             * LLM_TENSOR_OUTPUT_NORM_LFM2): it normalizes what the head reads */
            unit = head;
            if (strcmp(t->name, "output.weight") == 0) a->has_output = 1;
        } else {
            /* token_embd.*, position_embd.*, and small global tensors such as
             * rope_freqs.weight: the embedding unit holds them */
            unit = 0;
        }
        int matrix = t->n_dims >= 2;
        if (acc_add(a, unit, t->type, matrix, t->n_elems, t->nbytes) != 0) {
            st = qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "gguf: tensor byte total overflows");
            break;
        }
        if ((int64_t)i == te) {
            a->token_embd_B = t->nbytes;
            a->token_embd_elems = t->n_elems;
            a->token_embd_type = t->type;
        }
    }
    for (uint32_t u = 1; u <= md.n_layers && st == QEIL_OK; u++)
        if (a->unit_tensors[u] == 0)
            st = qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "gguf: block %u has no tensors (%s.block_count is %u)",
                               u - 1, arch_s, md.n_layers);
    if (st == QEIL_OK && a->unit_tensors[head] == 0)
        st = qeil_ctx_fail(ctx, QEIL_ERR_FORMAT, "gguf: required tensor 'output_norm.weight' is missing");
    if (st == QEIL_OK) acc_finish(a, &md);
    qeil_free(ctx, a);
    if (st != QEIL_OK) return st;

    md.kv_type = QEIL_GGML_F16; /* a run-time choice, not in the file: llama.cpp's default */
    const char *gname = qeil_gguf_get_str(g, "general.name");
    if (gname && *gname) copy_str(md.name, sizeof md.name, gname);
    else snprintf(md.name, sizeof md.name, "%s-gguf", arch_s);
    const char *wt = qeil_ggml_type_name(md.weight_type);
    snprintf(md.description, sizeof md.description, "GGUF v%u: %s, %u blocks, mostly %s, %zu tensors",
             qeil_gguf_version(g), arch_s, md.n_layers, wt ? wt : "?", nt);
    if ((st = qeil_model_validate(ctx, &md)) != QEIL_OK) return st;
    *out = md;
    return QEIL_OK;
}

/* ------------------------------------------------------------------------ */
/* Load by name or path                                                      */
/* ------------------------------------------------------------------------ */

static int looks_like_path(const char *s)
{
    size_t n = strlen(s);
    return strchr(s, '/') != NULL || (n >= 5 && strcmp(s + n - 5, ".gguf") == 0);
}

qeil_status qeil_model_load(qeil_ctx *ctx, const char *name_or_path, qeil_model_desc *out)
{
    if (!name_or_path || !out) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "qeil_model_load: NULL argument");
    if (!looks_like_path(name_or_path)) {
        for (size_t i = 0; i < CATALOG_N; i++)
            if (strcmp(catalog[i].name, name_or_path) == 0) return qeil_model_catalog_get(ctx, i, out);
        char known[512];
        size_t k = 0;
        known[0] = '\0';
        for (size_t i = 0; i < CATALOG_N && k < sizeof known; i++) {
            int w = snprintf(known + k, sizeof known - k, "%s%s", i ? ", " : "", catalog[i].name);
            if (w < 0) break;
            k += (size_t)w;
        }
        return qeil_ctx_fail(ctx, QEIL_ERR_NOTFOUND,
                             "model: '%.100s' is not a built-in model (known: %s) nor a .gguf path",
                             name_or_path, known);
    }
    qeil_gguf *g = NULL;
    qeil_status st = qeil_gguf_open(ctx, name_or_path, &g);
    if (st == QEIL_OK) {
        st = qeil_model_from_gguf(ctx, g, out);
        qeil_gguf_free(g);
    }
    if (st != QEIL_OK) {
        /* name the file in the message unless the reader already did */
        const char *m = qeil_ctx_errmsg(ctx);
        if (ctx && !strstr(m, name_or_path)) {
            char msg[400];
            copy_str(msg, sizeof msg, m);
            qeil_ctx_fail(ctx, st, "%.200s: %s", name_or_path, msg);
        }
    }
    return st;
}
