/*
 * model.h — what the planner needs to know about a transformer: shapes and
 * the bytes of every unit's weights, from a built-in config or a GGUF file.
 *
 * Usage:
 *
 *     qeil_model_desc md;
 *     if (qeil_model_load(ctx, "llama-3.1-8b-q4", &md) != QEIL_OK)   // or FILE.gguf
 *         fprintf(stderr, "%s\n", qeil_ctx_errmsg(ctx));
 *     printf("%s: %u blocks, %.2f GB of weights\n", md.name, md.n_layers,
 *            qeil_model_weight_bytes(&md) / 1e9);
 *
 * The model is cut into units: unit 0 = token embedding, units 1..n_layers =
 * transformer blocks, unit n_layers+1 = final norm + LM head. A qeil_model_desc
 * is a plain value. Thread-safety: reentrant.
 */
#ifndef QEIL_MODEL_H
#define QEIL_MODEL_H

#include "qeil/gguf.h"
#include "qeil/qeil.h"

#ifdef __cplusplus
extern "C" {
#endif

#define QEIL_MAX_LAYERS 256
#define QEIL_MAX_WUNITS (QEIL_MAX_LAYERS + 2) /* embedding + blocks + head */

typedef enum {
    QEIL_ARCH_LLAMA = 0, /* RMSNorm, RoPE, GQA, SwiGLU */
    QEIL_ARCH_QWEN2,     /* llama + QKV biases */
    QEIL_ARCH_GPT2,      /* LayerNorm, learned positions, GELU MLP, fused QKV */
    QEIL_ARCH_GRANITE,   /* llama + scalar multipliers on embeddings, residuals,
                            attention scores and logits (IBM Granite) */
    QEIL_ARCH_LFM2       /* hybrid: gated short-convolution blocks and GQA
                            attention blocks with QK-norm (Liquid LFM2) */
} qeil_arch;
#define QEIL_ARCH_COUNT 5

/* "llama", "qwen2", "gpt2", "granite", "lfm2" (the GGUF general.architecture) */
QEIL_API const char *qeil_arch_name(qeil_arch a);

/* Kind of block (qeil_model_desc.layer_kind). */
typedef enum {
    QEIL_LAYER_ATTN = 0, /* attention + FFN: K/V cached per position */
    QEIL_LAYER_CONV      /* LFM2 short convolution + FFN: a fixed state of
                            conv_L - 1 positions per sequence, no KV cache */
} qeil_layer_kind;

typedef struct {
    char name[QEIL_NAME_MAX];
    char description[QEIL_DESC_MAX];
    qeil_arch arch;
    uint32_t n_layers;   /* 1..QEIL_MAX_LAYERS */
    uint32_t d_model;    /* embedding width */
    uint32_t n_heads;
    uint32_t n_kv_heads; /* divides n_heads */
    uint32_t head_dim;   /* usually d_model / n_heads */
    uint32_t d_ff;       /* FFN hidden width */
    uint32_t vocab;
    uint32_t ctx_max;    /* trained context length */
    int tied_embeddings; /* LM head reuses the embedding matrix */

    /* Weight bytes per unit as stored (quantized sizes follow the GGUF block
     * layouts), index 0..n_layers+1 as above. */
    double unit_weight_B[QEIL_MAX_WUNITS];
    /* Data type the unit's matrix products run in on a unit that supports it
     * (f16 weights -> f16; q8_0/q4_* -> int8 dot products; f32 -> f32). */
    qeil_dtype unit_dtype[QEIL_MAX_WUNITS];
    int kv_type;          /* qeil_ggml_type of the KV cache (F16 by default) */
    int weight_type;      /* dominant tensor type, for display */
    /* Bytes of the token-embedding table alone (token_embd.weight; part of
     * unit 0). When tied_embeddings, the head's unit_weight_B includes these
     * same bytes (it reads the table) and qeil_model_weight_bytes counts them
     * once. 0 = not given: derived from unit 0 assuming it holds only the
     * token (and, for gpt2, position) table in one type. */
    double token_embd_B;
    /* Block kinds (lfm2; all QEIL_LAYER_ATTN otherwise, which a zeroed
     * description gives) and the short-convolution kernel length (lfm2:
     * <arch>.shortconv.l_cache, 2..QEIL_MAX_CONV_L; 0 when there are no
     * conv blocks). */
    uint8_t layer_kind[QEIL_MAX_LAYERS];
    uint32_t conv_L;
} qeil_model_desc;
#define QEIL_MAX_CONV_L 64

/* Built-in configs (qeil models). */
QEIL_API size_t qeil_model_catalog_count(void);
/* Fill *out with the i-th built-in config; QEIL_ERR_RANGE if i >= count. */
QEIL_API qeil_status qeil_model_catalog_get(qeil_ctx *ctx, size_t i, qeil_model_desc *out);
#define QEIL_DEFAULT_MODEL "llama-3.1-8b-q4"

/* The description a GGUF file gives of itself (metadata + tensor types). */
QEIL_API qeil_status qeil_model_from_gguf(qeil_ctx *ctx, const qeil_gguf *g, qeil_model_desc *out);

/* Catalog name, or a path to a .gguf file. */
QEIL_API qeil_status qeil_model_load(qeil_ctx *ctx, const char *name_or_path, qeil_model_desc *out);

/* Check shapes and ranges (names the field, value and range on failure). */
QEIL_API qeil_status qeil_model_validate(qeil_ctx *ctx, const qeil_model_desc *md);

static inline uint32_t qeil_model_n_units(const qeil_model_desc *md) { return md->n_layers + 2; }
QEIL_API double qeil_model_weight_bytes(const qeil_model_desc *md);
QEIL_API double qeil_model_params(const qeil_model_desc *md); /* parameter count */

#ifdef __cplusplus
}
#endif

#endif /* QEIL_MODEL_H */
