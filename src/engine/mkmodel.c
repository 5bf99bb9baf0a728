/*
 * mkmodel.c — random-weight GGUF models for tests and benchmarks
 * (qeil mkmodel). The file is self-contained and one llama.cpp loads: the
 * metadata keys, value types and tensor names llama.cpp's converter writes
 * (docs/gguf.md, checked by tests/test_mkmodel.c), a small tokenizer
 * vocabulary (SentencePiece-style with <0xNN> byte fallback for llama;
 * byte-level BPE with GPT-2's byte alphabet and a few merges for gpt2 and
 * qwen2), weights drawn from a seeded RNG and quantized with the engine's
 * own quantizers. Layout: docs/engine.md.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kernels/quant.h"
#include "qeil/chat.h"
#include "qeil/engine.h"

/* ------------------------------------------------------------------------ */
/* Parameters and presets                                                    */
/* ------------------------------------------------------------------------ */

#define MK_MAX_D (1u << 16)
#define MK_MAX_FF (1u << 20)
#define MK_MAX_VOCAB (1u << 20)
#define MK_MAX_CTX (1u << 24)
#define MK_MAX_HEADS 1024u

/* Granite-4.0-350M's multipliers (config.json embedding_multiplier,
 * residual_multiplier, attention_multiplier, logits_scaling; docs/models.md) */
#define GRANITE_EMB 12.0f
#define GRANITE_RES 0.263f
#define GRANITE_ATT 0.015625f
#define GRANITE_LOGIT 4.0f
/* LFM2-350M / 1.2B: attention at blocks 2, 5, 8, 10, 12, 14 of 16
 * (config.json layer_types / full_attn_idxs; docs/models.md) */
#define LFM2_ATTN_16 ((1ull << 2) | (1ull << 5) | (1ull << 8) | (1ull << 10) | (1ull << 12) | (1ull << 14))

qeil_mkmodel_params qeil_mkmodel_default_params(void)
{
    qeil_mkmodel_params p;
    memset(&p, 0, sizeof p);
    p.arch = QEIL_ARCH_LLAMA;
    p.n_layers = 2;
    p.d_model = 128;
    p.n_heads = 4;
    p.n_kv_heads = 2;
    p.d_ff = 256;
    p.vocab = 512;
    p.ctx = 256;
    p.type = QEIL_GGML_F32;
    p.seed = 1;
    p.rope_base = 10000.0f;
    p.rope_scaling_llama3 = 0;
    p.tied = 0;
    p.embedding_scale = GRANITE_EMB;
    p.residual_scale = GRANITE_RES;
    p.attention_scale = GRANITE_ATT;
    p.logit_scale = GRANITE_LOGIT;
    p.conv_L = 3;
    p.attn_layers = 0xAAAAAAAAAAAAAAAAull; /* odd blocks attention */
    return p;
}

typedef struct {
    const char *name;
    qeil_arch arch;
    uint32_t n_layers, d_model, n_heads, n_kv_heads, d_ff, vocab, ctx;
    float rope_base;
    int llama3, tied;
    uint64_t attn_layers; /* lfm2 */
} mk_preset;

/* Shapes from the models' published config.json files (docs/models.md);
 * tiny-* are a few layers wide enough for every block format (d 128). */
static const mk_preset k_presets[] = {
    {"llama-3.2-1b", QEIL_ARCH_LLAMA, 16, 2048, 32, 8, 8192, 128256, 131072, 500000.0f, 1, 1, 0},
    {"qwen2-0.5b", QEIL_ARCH_QWEN2, 24, 896, 14, 2, 4864, 151936, 32768, 1000000.0f, 0, 1, 0},
    {"gpt2-125m", QEIL_ARCH_GPT2, 12, 768, 12, 12, 3072, 50257, 1024, 10000.0f, 0, 1, 0},
    {"tiny-llama", QEIL_ARCH_LLAMA, 2, 128, 4, 2, 256, 512, 256, 10000.0f, 1, 0, 0},
    {"tiny-qwen2", QEIL_ARCH_QWEN2, 2, 128, 4, 2, 256, 512, 256, 1000000.0f, 0, 1, 0},
    {"tiny-gpt2", QEIL_ARCH_GPT2, 2, 128, 4, 4, 512, 512, 256, 10000.0f, 0, 0, 0},
    {"granite-4.0-350m", QEIL_ARCH_GRANITE, 28, 1024, 16, 4, 2048, 100352, 32768, 10000.0f, 0, 1, 0},
    {"lfm2-350m", QEIL_ARCH_LFM2, 16, 1024, 16, 8, 4608, 65536, 128000, 1000000.0f, 0, 1, LFM2_ATTN_16},
    {"tiny-granite", QEIL_ARCH_GRANITE, 2, 128, 4, 2, 256, 512, 256, 10000.0f, 0, 1, 0},
    /* conv, attention, conv, conv: both kinds, and two conv blocks in a row */
    {"tiny-lfm2", QEIL_ARCH_LFM2, 4, 128, 4, 2, 256, 512, 256, 1000000.0f, 0, 1, 1ull << 1},
};
#define N_PRESETS (sizeof k_presets / sizeof k_presets[0])

qeil_status qeil_mkmodel_preset(qeil_ctx *ctx, const char *name, qeil_mkmodel_params *out)
{
    if (!name || !out) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "mkmodel preset: NULL argument");
    for (size_t i = 0; i < N_PRESETS; i++) {
        const mk_preset *k = &k_presets[i];
        if (strcmp(k->name, name) != 0) continue;
        qeil_mkmodel_params p = qeil_mkmodel_default_params();
        p.arch = k->arch;
        p.n_layers = k->n_layers;
        p.d_model = k->d_model;
        p.n_heads = k->n_heads;
        p.n_kv_heads = k->n_kv_heads;
        p.d_ff = k->d_ff;
        p.vocab = k->vocab;
        p.ctx = k->ctx;
        p.rope_base = k->rope_base;
        p.rope_scaling_llama3 = k->llama3;
        p.tied = k->tied;
        if (k->arch == QEIL_ARCH_LFM2) p.attn_layers = k->attn_layers;
        *out = p;
        return QEIL_OK;
    }
    char known[256];
    size_t n = 0;
    known[0] = '\0';
    for (size_t i = 0; i < N_PRESETS; i++) {
        int w = snprintf(known + n, sizeof known - n, "%s%s", i ? ", " : "", k_presets[i].name);
        if (w < 0 || (size_t)w >= sizeof known - n) break;
        n += (size_t)w;
    }
    return qeil_ctx_fail(ctx, QEIL_ERR_NOTFOUND, "preset: '%.64s' is not known (known: %s)", name, known);
}

/* ------------------------------------------------------------------------ */
/* Vocabulary                                                                */
/* ------------------------------------------------------------------------ */

#define TOK_MAX_LEN 32

/* SentencePiece pieces (U+2581 = "\342\226\201", octal escapes, marks a word start), in
 * priority order: score = -index. */
static const char *const k_spm_pieces[] = {
    "\342\226\201", "e", "t", "a", "o", "i", "n", "s", "h", "r", "d", "l", "u", "c", "m", "w",
    "f", "g", "y", "p", "b", ",", ".",
    "\342\226\201t", "he", "in", "er", "an", "\342\226\201a", "on", "re", "\342\226\201s",
    "at", "en", "or", "\342\226\201w", "ou", "\342\226\201o", "ed", "is", "it", "\342\226\201c",
    "\342\226\201b", "ll", "\342\226\201f", "\342\226\201h", "ing", "\342\226\201m",
    "\342\226\201p", "nd", "\342\226\201the", "\342\226\201and", "\342\226\201of", "\342\226\201in",
    "\342\226\201to", "\342\226\201he", "llo", "\342\226\201hello", "\342\226\201wor", "ld", "\342\226\201world",
};
#define N_SPM_PIECES (sizeof k_spm_pieces / sizeof k_spm_pieces[0])
#define SPM_FIRST_PIECE (3 + 256)

/* Byte-level BPE merges (U+0120 = "\304\240" is GPT-2's space byte), in rank
 * order; each part is a byte token or the result of an earlier merge. */
static const char *const k_bpe_merges[] = {
    "\304\240 t", "h e", "i n", "\304\240 a", "e r", "o n", "\304\240t he", "r e", "\304\240 s",
    "a t", "e n", "o r", "\304\240 w", "o u", "\304\240 o", "e d", "i s", "i t", "\304\240 c",
    "\304\240 b", "l l", "\304\240 f", "\304\240 h", "in g", "\304\240 m", "\304\240 p", "a n",
    "n d", "\304\240a nd", "\304\240o f", "\304\240 in", "\304\240t o", "e s", "a r", "l e",
    "\304\240 is", "\304\240h e", "ll o", "\304\240he llo", "\304\240w or", "l d", "\304\240wor ld",
};
#define N_BPE_MERGES (sizeof k_bpe_merges / sizeof k_bpe_merges[0])

static const char *const k_qwen2_specials[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
static const char *const k_gpt2_specials[] = {"<|endoftext|>"};

typedef struct {
    size_t n;
    char (*text)[TOK_MAX_LEN];
    float *score;
    int32_t *type;
    const char **ptr; /* into text, for the writer */
} vocab_t;

static size_t utf8_put(char *s, uint32_t cp)
{
    if (cp < 0x80) {
        s[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        s[0] = (char)(0xc0 | (cp >> 6));
        s[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    s[0] = (char)(0xe0 | (cp >> 12));
    s[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    s[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
}

static size_t vocab_min(qeil_arch arch)
{
    if (arch == QEIL_ARCH_LLAMA) return SPM_FIRST_PIECE + N_SPM_PIECES;
    return 256 + N_BPE_MERGES + (arch == QEIL_ARCH_QWEN2 ? 3 : 1);
}

static void vocab_add(vocab_t *v, const char *text, float score, int32_t type)
{
    snprintf(v->text[v->n], TOK_MAX_LEN, "%s", text);
    v->score[v->n] = score;
    v->type[v->n] = type;
    v->n++;
}

/* Fill v with exactly `size` tokens (size >= vocab_min). Returns the ids of
 * BOS/EOS/UNK through the pointers (-1 when none). */
static void vocab_build(vocab_t *v, qeil_arch arch, size_t size, int32_t *bos, int32_t *eos,
                        int32_t *unk)
{
    char buf[TOK_MAX_LEN];
    v->n = 0;
    if (arch == QEIL_ARCH_LLAMA) {
        vocab_add(v, "<unk>", 0.0f, QEIL_TOKTYPE_UNKNOWN);
        vocab_add(v, "<s>", 0.0f, QEIL_TOKTYPE_CONTROL);
        vocab_add(v, "</s>", 0.0f, QEIL_TOKTYPE_CONTROL);
        for (int b = 0; b < 256; b++) {
            snprintf(buf, sizeof buf, "<0x%02X>", b);
            vocab_add(v, buf, 0.0f, QEIL_TOKTYPE_BYTE);
        }
        for (size_t i = 0; i < N_SPM_PIECES; i++)
            vocab_add(v, k_spm_pieces[i], -(float)i, QEIL_TOKTYPE_NORMAL);
        *unk = 0;
        *bos = 1;
        *eos = 2;
    } else {
        /* GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for
         * themselves, the other 68 map to U+0100.. in byte order; token ids
         * follow the printable ranges first, as GPT-2's vocab.json does */
        int order[256], n = 0;
        for (int b = 0; b < 256; b++)
            if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) order[n++] = b;
        for (int b = 0; b < 256; b++)
            if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)))
                order[n++] = b;
        for (int i = 0; i < 256; i++) {
            int b = order[i];
            uint32_t cp = i < 188 ? (uint32_t)b : 256u + (uint32_t)(i - 188);
            size_t k = utf8_put(buf, cp);
            buf[k] = '\0';
            vocab_add(v, buf, 0.0f, QEIL_TOKTYPE_NORMAL);
        }
        for (size_t i = 0; i < N_BPE_MERGES; i++) {
            /* the merged token is the two parts without the separating space */
            const char *m = k_bpe_merges[i], *sp = strchr(m, ' ');
            size_t a = (size_t)(sp - m);
            memcpy(buf, m, a);
            snprintf(buf + a, sizeof buf - a, "%s", sp + 1);
            vocab_add(v, buf, 0.0f, QEIL_TOKTYPE_NORMAL);
        }
        const char *const *sp = arch == QEIL_ARCH_QWEN2 ? k_qwen2_specials : k_gpt2_specials;
        size_t ns = arch == QEIL_ARCH_QWEN2 ? 3 : 1;
        *bos = *eos = (int32_t)v->n;
        *unk = -1;
        for (size_t i = 0; i < ns; i++) vocab_add(v, sp[i], 0.0f, QEIL_TOKTYPE_CONTROL);
    }
    /* pad to the embedding rows, as converted files with padded vocabularies do */
    while (v->n < size) {
        snprintf(buf, sizeof buf, "[PAD%zu]", v->n);
        vocab_add(v, buf, 0.0f, QEIL_TOKTYPE_UNUSED);
    }
    for (size_t i = 0; i < v->n; i++) v->ptr[i] = v->text[i];
}

/* Whether the base vocabulary of arch already spells token `text`. */
static int vocab_base_has(qeil_arch arch, const char *text)
{
    if (arch == QEIL_ARCH_LLAMA) return !strcmp(text, "<s>") || !strcmp(text, "</s>") || !strcmp(text, "<unk>");
    if (arch == QEIL_ARCH_QWEN2)
        for (size_t i = 0; i < sizeof k_qwen2_specials / sizeof k_qwen2_specials[0]; i++)
            if (!strcmp(text, k_qwen2_specials[i])) return 1;
    return !strcmp(text, "<|endoftext|>");
}

/* Special tokens of chat template ct that the base vocabulary lacks. */
static size_t chat_specials_new(qeil_arch arch, qeil_chat_template ct)
{
    size_t n = 0;
    for (const char *const *s = qeil_chat_special_tokens(ct); *s; s++) n += !vocab_base_has(arch, *s);
    return n;
}

/* Put the special tokens of chat template ct that v lacks into its first
 * padding slots (vocab_build pads after the base vocabulary; check_mk made
 * sure there is room), as CONTROL tokens, as converted instruct models
 * carry them. */
static void vocab_add_chat(vocab_t *v, qeil_arch arch, qeil_chat_template ct)
{
    size_t at = 0;
    while (at < v->n && v->type[at] != QEIL_TOKTYPE_UNUSED) at++;
    for (const char *const *s = qeil_chat_special_tokens(ct); *s && at < v->n; s++) {
        if (vocab_base_has(arch, *s)) continue;
        snprintf(v->text[at], TOK_MAX_LEN, "%s", *s);
        v->score[at] = 0.0f;
        v->type[at] = QEIL_TOKTYPE_CONTROL;
        at++;
    }
}

/* ------------------------------------------------------------------------ */
/* Validation                                                                */
/* ------------------------------------------------------------------------ */

/* Type a matrix with rows of ne0 elements gets: the requested type when
 * its block divides ne0, else llama.cpp's fallback (llama-quant.cpp,
 * llama_tensor_get_type: Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, each a
 * 32-element format), then f16. */
static int matrix_type(int type, uint64_t ne0)
{
    if (ne0 % qeil_ggml_block_elems(type) == 0) return type;
    int fb = type == QEIL_GGML_Q4_K   ? QEIL_GGML_Q5_0
             : type == QEIL_GGML_Q5_K ? QEIL_GGML_Q5_1
             : type == QEIL_GGML_Q6_K ? QEIL_GGML_Q8_0
                                      : QEIL_GGML_F16;
    if (fb != QEIL_GGML_F16 && ne0 % QEIL_QK5 == 0) return fb;
    return QEIL_GGML_F16;
}

static qeil_status check_mk(qeil_ctx *ctx, const qeil_mkmodel_params *p)
{
    if ((int)p->arch < 0 || (int)p->arch >= QEIL_ARCH_COUNT)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "arch: %d (allowed llama, qwen2, gpt2, granite, lfm2)",
                             (int)p->arch);
#define RANGE_U32(field, lo, hi)                                                                   \
    if (p->field < (lo) || p->field > (hi))                                                        \
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, #field ": %u (allowed %u..%u)", p->field,          \
                             (unsigned)(lo), (unsigned)(hi));
    RANGE_U32(n_layers, 1u, (unsigned)QEIL_MAX_LAYERS)
    RANGE_U32(d_model, 2u, MK_MAX_D)
    RANGE_U32(n_heads, 1u, MK_MAX_HEADS)
    RANGE_U32(n_kv_heads, 1u, p->n_heads)
    RANGE_U32(d_ff, 1u, MK_MAX_FF)
    RANGE_U32(vocab, (unsigned)vocab_min(p->arch), MK_MAX_VOCAB)
    RANGE_U32(ctx, 2u, MK_MAX_CTX)
#undef RANGE_U32
    if (p->chat_template) {
        qeil_chat_template ct = qeil_chat_template_from_name(p->chat_template);
        if (ct == QEIL_CHAT_UNKNOWN || !qeil_chat_template_source(ct))
            return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                                 "chat_template: '%.64s' (allowed llama3, chatml, granite, lfm2, gemma, "
                                 "mistral-v7)", p->chat_template);
        size_t need = vocab_min(p->arch) + chat_specials_new(p->arch, ct);
        if (p->vocab < need)
            return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                                 "vocab: %u (allowed %zu..%u with chat template %s: its special tokens "
                                 "need room)", p->vocab, need, MK_MAX_VOCAB, p->chat_template);
    }
    if (p->d_model % p->n_heads != 0)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "heads: %u does not divide d_model %u", p->n_heads,
                             p->d_model);
    if ((p->d_model / p->n_heads) % 2 != 0)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                             "heads: head_dim d_model/heads = %u must be even (RoPE rotates pairs)",
                             p->d_model / p->n_heads);
    if (p->n_heads % p->n_kv_heads != 0)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "kv_heads: %u does not divide heads %u", p->n_kv_heads,
                             p->n_heads);
    if (p->arch == QEIL_ARCH_GPT2 && p->n_kv_heads != p->n_heads)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "kv_heads: %u (gpt2 has no grouped-query attention: "
                             "allowed %u = heads)", p->n_kv_heads, p->n_heads);
    const qeil_quant_traits *t = qeil_quant_traits_of(p->type);
    if (!t || !t->vec_dot) {
        const char *n = qeil_ggml_type_name(p->type);
        return qeil_ctx_fail(ctx, QEIL_ERR_UNSUPPORTED,
                             "type: %s is not supported (allowed f32, f16, bf16, q8_0, q4_0, q4_1, "
                             "q5_0, q5_1, iq4_nl, iq4_xs, q4_k, q5_k, q6_k)",
                             n ? n : "unknown");
    }
    if (p->arch != QEIL_ARCH_GPT2 && !(p->rope_base > 1.0f && p->rope_base <= 1e12f))
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "rope_base: %g (allowed > 1 .. 1e12)",
                             (double)p->rope_base);
    if (p->rope_scaling_llama3 && p->arch != QEIL_ARCH_LLAMA)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "rope_scaling_llama3: only for arch llama");
    if (p->arch == QEIL_ARCH_GRANITE) {
        const float sc[4] = {p->embedding_scale, p->residual_scale, p->attention_scale, p->logit_scale};
        static const char *const nm[4] = {"embedding_scale", "residual_scale", "attention_scale",
                                          "logit_scale"};
        for (int i = 0; i < 4; i++)
            if (!(sc[i] >= 1e-6f && sc[i] <= 1e6f))
                return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "%s: %g (allowed 1e-6..1e6)", nm[i], (double)sc[i]);
    }
    if (p->arch == QEIL_ARCH_LFM2) {
        if (p->n_layers > 64)
            return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                                 "n_layers: %u (allowed 1..64 for lfm2: attn_layers is a 64-bit mask)",
                                 p->n_layers);
        if (p->conv_L < 2 || p->conv_L > QEIL_MAX_CONV_L)
            return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "conv_L: %u (allowed 2..%d)", p->conv_L, QEIL_MAX_CONV_L);
    }
    return QEIL_OK;
}

/* ------------------------------------------------------------------------ */
/* Writing                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct {
    qeil_ctx *ctx;
    qeil_gguf_writer *w;
    qeil_rng rng;
    float *row;       /* one row of f32 values */
    size_t row_cap;
} mk_state;

/* uniform in [lo, hi) */
static float urand(qeil_rng *r, float lo, float hi)
{
    return lo + (hi - lo) * (float)qeil_rng_uniform(r);
}

/* Add a tensor [ne0, ne1] of `type` (n_dims 1 when ne1 == 0) with values
 * uniform in [lo, hi), quantized row by row. */
static qeil_status add_random(mk_state *m, const char *name, int type, uint64_t ne0, uint64_t ne1,
                              float lo, float hi)
{
    const uint32_t n_dims = ne1 ? 2 : 1;
    const uint64_t rows = ne1 ? ne1 : 1;
    int ok = 1;
    const uint64_t row_b = qeil_ggml_nbytes(type, ne0, &ok);
    if (!ok || rows > SIZE_MAX / row_b)
        return qeil_ctx_fail(m->ctx, QEIL_ERR_RANGE, "mkmodel: tensor '%s' is too large", name);
    uint8_t *data = qeil_malloc(m->ctx, (size_t)(rows * row_b));
    if (!data)
        return qeil_ctx_fail(m->ctx, QEIL_ERR_NOMEM, "mkmodel: out of memory for tensor '%s' (%llu bytes)",
                             name, (unsigned long long)(rows * row_b));
    const qeil_quant_traits *t = qeil_quant_traits_of(type);
    for (uint64_t r = 0; r < rows; r++) {
        for (uint64_t i = 0; i < ne0; i++) m->row[i] = urand(&m->rng, lo, hi);
        t->quantize(m->row, data + r * row_b, (int64_t)ne0);
    }
    uint64_t ne[2] = {ne0, rows};
    qeil_status st = qeil_gguf_writer_add_tensor(m->w, name, type, n_dims, ne, data);
    qeil_free(m->ctx, data);
    return st;
}

/* Weight matrix [ne0, ne1]: uniform with standard deviation 1/sqrt(ne0)
 * (fan-in), so every projection keeps activations of order one and the
 * attention scores q.k/sqrt(head_dim) have unit spread. */
static qeil_status add_matrix(mk_state *m, const char *name, int type, uint64_t ne0, uint64_t ne1)
{
    const float a = sqrtf(3.0f / (float)ne0);
    return add_random(m, name, matrix_type(type, ne0), ne0, ne1, -a, a);
}

static qeil_status add_norm(mk_state *m, const char *name, uint64_t n)
{
    return add_random(m, name, QEIL_GGML_F32, n, 0, 0.75f, 1.25f);
}

static qeil_status add_bias(mk_state *m, const char *name, uint64_t n)
{
    return add_random(m, name, QEIL_GGML_F32, n, 0, -0.1f, 0.1f);
}

/* llama.cpp's file type (enum llama_ftype, include/llama.h) for the type
 * most matrices get: the converter writes it as general.file_type. q4_k
 * files are all-Q4_K apart from fallbacks, which is Q4_K_S (14), not the
 * Q4_K_M mix. */
static uint32_t llama_ftype_of(int type)
{
    switch (type) {
    case QEIL_GGML_F16: return 1;   /* MOSTLY_F16 */
    case QEIL_GGML_Q4_0: return 2;  /* MOSTLY_Q4_0 */
    case QEIL_GGML_Q8_0: return 7;  /* MOSTLY_Q8_0 */
    case QEIL_GGML_Q4_K: return 14; /* MOSTLY_Q4_K_S */
    case QEIL_GGML_Q4_1: return 3;  /* MOSTLY_Q4_1 */
    case QEIL_GGML_Q5_0: return 8;  /* MOSTLY_Q5_0 */
    case QEIL_GGML_Q5_1: return 9;  /* MOSTLY_Q5_1 */
    case QEIL_GGML_Q5_K: return 16; /* MOSTLY_Q5_K_S: all Q5_K apart from fallbacks */
    case QEIL_GGML_IQ4_NL: return 25; /* MOSTLY_IQ4_NL */
    case QEIL_GGML_IQ4_XS: return 30; /* MOSTLY_IQ4_XS */
    case QEIL_GGML_Q6_K: return 18; /* MOSTLY_Q6_K */
    case QEIL_GGML_BF16: return 32; /* MOSTLY_BF16 */
    default: return 0;              /* ALL_F32 */
    }
}

/* Llama 3's RoPE frequency factors, as llama.cpp's converter computes them
 * (convert_hf_to_gguf.py, LlamaModel.generate_extra_tensors) and stores in
 * rope_freqs.weight: factor i divides frequency base^(-2i/n_rot). From
 * Llama 3.2's config.json rope_scaling: factor 32, low_freq_factor 1,
 * high_freq_factor 4, original_max_position_embeddings 8192. Wavelengths
 * shorter than L/high keep their frequency, longer than L/low are divided
 * by `factor`, in between the inverse of the linear blend. */
#define LLAMA3_FACTOR 32.0
#define LLAMA3_LOW 1.0
#define LLAMA3_HIGH 4.0
#define LLAMA3_ORIG_CTX 8192.0

static void llama3_rope_factors(float *out, uint32_t n_rot, double base)
{
    const double two_pi = 6.283185307179586476925, L = LLAMA3_ORIG_CTX;
    for (uint32_t i = 0; i < n_rot / 2; i++) {
        const double freq = pow(base, -(2.0 * (double)i) / (double)n_rot);
        const double wavelen = two_pi / freq;
        double f;
        if (wavelen < L / LLAMA3_HIGH) {
            f = 1.0;
        } else if (wavelen > L / LLAMA3_LOW) {
            f = LLAMA3_FACTOR;
        } else {
            const double smooth = (L / wavelen - LLAMA3_LOW) / (LLAMA3_HIGH - LLAMA3_LOW);
            f = 1.0 / ((1.0 - smooth) / LLAMA3_FACTOR + smooth);
        }
        out[i] = (float)f;
    }
}

/* Metadata as llama.cpp's converter writes it for each architecture
 * (docs/gguf.md, "Files llama.cpp loads"; tests/test_mkmodel.c checks every
 * key, value type and value against that table):
 *   all:   TextModel.set_gguf_parameters / GPT2Model.set_gguf_parameters,
 *          prepare_metadata (general.quantization_version, general.file_type)
 *   llama: + vocab_size and rope.dimension_count (LlamaModel)
 *   granite: the llama keys + attention.scale, embedding_scale,
 *          residual_scale, logit_scale (GraniteModel: the config's
 *          *_multiplier and logits_scaling)
 *   lfm2:  the TextModel keys with head_count_kv per block (0 = conv
 *          block), + vocab_size, shortconv.l_cache (LFM2Model)
 *   qwen2: the TextModel keys only
 *   gpt2:  block_count, context_length, embedding_length,
 *          feed_forward_length, head_count, layer_norm_epsilon (no
 *          head_count_kv, no RoPE keys)
 * Llama 3 RoPE scaling is not a key: llama.cpp knows no "llama3" scaling
 * type (llama_rope_scaling_type_from_string), the converter writes the
 * rope_freqs.weight tensor instead (write_tensors). */
static qeil_status write_meta(mk_state *m, const qeil_mkmodel_params *p)
{
    qeil_gguf_writer *w = m->w;
    const char *arch = qeil_arch_name(p->arch);
    const uint32_t hd = p->d_model / p->n_heads;
    const int gpt2 = p->arch == QEIL_ARCH_GPT2;
    char key[128], name[128];
    qeil_status st;
#define TRY(x)                              \
    do {                                    \
        if ((st = (x)) != QEIL_OK) return st; \
    } while (0)
#define K(suffix) (snprintf(key, sizeof key, "%s." suffix, arch), key)
    TRY(qeil_gguf_writer_set_str(w, "general.architecture", arch));
    snprintf(name, sizeof name, "qeil-mkmodel %s %uL d%u %s seed %llu", arch, p->n_layers, p->d_model,
             qeil_ggml_type_name(p->type), (unsigned long long)p->seed);
    TRY(qeil_gguf_writer_set_str(w, "general.name", name));
    /* GGML_QNT_VERSION (ggml.h): the block layouts of this ggml */
    TRY(qeil_gguf_writer_set_u32(w, "general.quantization_version", 2));
    TRY(qeil_gguf_writer_set_u32(w, "general.file_type", llama_ftype_of(p->type)));
    TRY(qeil_gguf_writer_set_u32(w, K("block_count"), p->n_layers));
    TRY(qeil_gguf_writer_set_u32(w, K("context_length"), p->ctx));
    TRY(qeil_gguf_writer_set_u32(w, K("embedding_length"), p->d_model));
    TRY(qeil_gguf_writer_set_u32(w, K("feed_forward_length"), p->d_ff));
    TRY(qeil_gguf_writer_set_u32(w, K("attention.head_count"), p->n_heads));
    if (gpt2) {
        TRY(qeil_gguf_writer_set_f32(w, K("attention.layer_norm_epsilon"), 1e-5f));
    } else if (p->arch == QEIL_ARCH_LFM2) {
        /* Python ints: an INT32 array (gguf-py add_array) */
        int32_t kvh[QEIL_MAX_LAYERS];
        for (uint32_t l = 0; l < p->n_layers; l++)
            kvh[l] = (p->attn_layers >> l) & 1 ? (int32_t)p->n_kv_heads : 0;
        TRY(qeil_gguf_writer_set_arr_i32(w, K("attention.head_count_kv"), kvh, p->n_layers));
        TRY(qeil_gguf_writer_set_f32(w, K("rope.freq_base"), p->rope_base));
        /* LFM2 config.json norm_eps 1e-5 */
        TRY(qeil_gguf_writer_set_f32(w, K("attention.layer_norm_rms_epsilon"), 1e-5f));
        TRY(qeil_gguf_writer_set_u32(w, K("vocab_size"), p->vocab));
        TRY(qeil_gguf_writer_set_u32(w, K("shortconv.l_cache"), p->conv_L));
    } else {
        TRY(qeil_gguf_writer_set_u32(w, K("attention.head_count_kv"), p->n_kv_heads));
        TRY(qeil_gguf_writer_set_f32(w, K("rope.freq_base"), p->rope_base));
        /* Llama 3 and Qwen2 configs: rms_norm_eps 1e-5 and 1e-6 */
        TRY(qeil_gguf_writer_set_f32(w, K("attention.layer_norm_rms_epsilon"),
                                     p->arch == QEIL_ARCH_QWEN2 ? 1e-6f : 1e-5f));
    }
    if (p->arch == QEIL_ARCH_LLAMA || p->arch == QEIL_ARCH_GRANITE) {
        TRY(qeil_gguf_writer_set_u32(w, K("vocab_size"), p->vocab));
        TRY(qeil_gguf_writer_set_u32(w, K("rope.dimension_count"), hd));
    }
    if (p->arch == QEIL_ARCH_GRANITE) {
        TRY(qeil_gguf_writer_set_f32(w, K("attention.scale"), p->attention_scale));
        TRY(qeil_gguf_writer_set_f32(w, K("embedding_scale"), p->embedding_scale));
        TRY(qeil_gguf_writer_set_f32(w, K("residual_scale"), p->residual_scale));
        TRY(qeil_gguf_writer_set_f32(w, K("logit_scale"), p->logit_scale));
    }
#undef K

    /* tokenizer */
    vocab_t v;
    memset(&v, 0, sizeof v);
    v.text = qeil_calloc(m->ctx, p->vocab, sizeof *v.text);
    v.score = qeil_calloc(m->ctx, p->vocab, sizeof *v.score);
    v.type = qeil_calloc(m->ctx, p->vocab, sizeof *v.type);
    v.ptr = qeil_calloc(m->ctx, p->vocab, sizeof *v.ptr);
    st = QEIL_OK;
    if (!v.text || !v.score || !v.type || !v.ptr) {
        st = qeil_ctx_fail(m->ctx, QEIL_ERR_NOMEM, "mkmodel: out of memory for the vocabulary");
    } else {
        int32_t bos, eos, unk;
        vocab_build(&v, p->arch, p->vocab, &bos, &eos, &unk);
        qeil_chat_template ct = qeil_chat_template_from_name(p->chat_template);
        if (ct != QEIL_CHAT_UNKNOWN) vocab_add_chat(&v, p->arch, ct);
        const int spm = p->arch == QEIL_ARCH_LLAMA;
        if (st == QEIL_OK) st = qeil_gguf_writer_set_str(w, "tokenizer.ggml.model", spm ? "llama" : "gpt2");
        /* pre-tokenizer names llama.cpp knows (llama-vocab.cpp): the
         * converter writes "default" for SentencePiece vocabularies
         * (_set_vocab_sentencepiece) and the name its hash table gives for
         * BPE ones: "gpt-2" for GPT-2 (not "gpt2"), "qwen2" for Qwen2 */
        const char *pre = spm ? "default" : p->arch == QEIL_ARCH_QWEN2 ? "qwen2" : "gpt-2";
        if (st == QEIL_OK) st = qeil_gguf_writer_set_str(w, "tokenizer.ggml.pre", pre);
        if (st == QEIL_OK) st = qeil_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", v.ptr, v.n);
        if (st == QEIL_OK && spm)
            st = qeil_gguf_writer_set_arr_f32(w, "tokenizer.ggml.scores", v.score, v.n);
        if (st == QEIL_OK) st = qeil_gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", v.type, v.n);
        if (st == QEIL_OK && !spm)
            st = qeil_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", k_bpe_merges, N_BPE_MERGES);
        if (st == QEIL_OK) st = qeil_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)bos);
        if (st == QEIL_OK) st = qeil_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eos);
        if (st == QEIL_OK && unk >= 0)
            st = qeil_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)unk);
        if (st == QEIL_OK) st = qeil_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", spm);
        if (st == QEIL_OK && ct != QEIL_CHAT_UNKNOWN)
            st = qeil_gguf_writer_set_str(w, "tokenizer.chat_template", qeil_chat_template_source(ct));
    }
    qeil_free(m->ctx, v.text);
    qeil_free(m->ctx, v.score);
    qeil_free(m->ctx, v.type);
    qeil_free(m->ctx, v.ptr);
    return st;
#undef TRY
}

static qeil_status write_tensors(mk_state *m, const qeil_mkmodel_params *p)
{
    const uint64_t d = p->d_model, hd = p->d_model / p->n_heads, qd = hd * p->n_heads,
                   kvd = hd * p->n_kv_heads, ff = p->d_ff, V = p->vocab;
    const int gpt2 = p->arch == QEIL_ARCH_GPT2, qwen2 = p->arch == QEIL_ARCH_QWEN2,
              lfm2 = p->arch == QEIL_ARCH_LFM2;
    const int type = p->type;
    char nm[96];
    qeil_status st;
#define TRY(x)                              \
    do {                                    \
        if ((st = (x)) != QEIL_OK) return st; \
    } while (0)
    /* Llama 3 RoPE: the converter yields rope_freqs.weight before the
     * model's own tensors (generate_extra_tensors); it draws nothing from
     * the RNG, so the weights are those of the same model without it */
    if (p->rope_scaling_llama3) {
        const uint64_t ne[1] = {hd / 2}; /* hd / 2 < d_model: fits m->row */
        llama3_rope_factors(m->row, (uint32_t)hd, (double)p->rope_base);
        TRY(qeil_gguf_writer_add_tensor(m->w, "rope_freqs.weight", QEIL_GGML_F32, 1, ne, m->row));
    }
    /* embeddings: spread 0.5 per element (tied heads then give logits with
     * a spread of about 0.5 sqrt(d)) */
    const float ea = 0.5f * sqrtf(3.0f);
    TRY(add_random(m, "token_embd.weight", matrix_type(type, d), d, V, -ea, ea));
    if (gpt2) TRY(add_random(m, "position_embd.weight", QEIL_GGML_F32, d, p->ctx, -ea, ea));
    for (uint32_t l = 0; l < p->n_layers; l++) {
#define NM(suffix) (snprintf(nm, sizeof nm, "blk.%u." suffix, l), nm)
        TRY(add_norm(m, NM("attn_norm.weight"), d));
        if (gpt2) TRY(add_bias(m, NM("attn_norm.bias"), d));
        const int conv = lfm2 && !((p->attn_layers >> l) & 1);
        if (conv) {
            /* kernel [L, d], f32 in every file type (the converter forces
             * it; ggml_ssm_conv needs f32): spread 1/sqrt(L) per tap */
            const float a = sqrtf(3.0f / (float)p->conv_L);
            TRY(add_random(m, NM("shortconv.conv.weight"), QEIL_GGML_F32, p->conv_L, d, -a, a));
            TRY(add_matrix(m, NM("shortconv.in_proj.weight"), type, d, 3 * d));
            TRY(add_matrix(m, NM("shortconv.out_proj.weight"), type, d, d));
        } else if (gpt2) {
            TRY(add_matrix(m, NM("attn_qkv.weight"), type, d, qd + 2 * kvd));
            TRY(add_bias(m, NM("attn_qkv.bias"), qd + 2 * kvd));
        } else {
            TRY(add_matrix(m, NM("attn_q.weight"), type, d, qd));
            TRY(add_matrix(m, NM("attn_k.weight"), type, d, kvd));
            TRY(add_matrix(m, NM("attn_v.weight"), type, d, kvd));
            if (qwen2) {
                TRY(add_bias(m, NM("attn_q.bias"), qd));
                TRY(add_bias(m, NM("attn_k.bias"), kvd));
                TRY(add_bias(m, NM("attn_v.bias"), kvd));
            }
            if (lfm2) {
                TRY(add_norm(m, NM("attn_q_norm.weight"), hd));
                TRY(add_norm(m, NM("attn_k_norm.weight"), hd));
            }
        }
        if (!conv) TRY(add_matrix(m, NM("attn_output.weight"), type, qd, d));
        if (gpt2) TRY(add_bias(m, NM("attn_output.bias"), d));
        TRY(add_norm(m, NM("ffn_norm.weight"), d));
        if (gpt2) TRY(add_bias(m, NM("ffn_norm.bias"), d));
        if (!gpt2) TRY(add_matrix(m, NM("ffn_gate.weight"), type, d, ff));
        TRY(add_matrix(m, NM("ffn_up.weight"), type, d, ff));
        if (gpt2) TRY(add_bias(m, NM("ffn_up.bias"), ff));
        TRY(add_matrix(m, NM("ffn_down.weight"), type, ff, d));
        if (gpt2) TRY(add_bias(m, NM("ffn_down.bias"), d));
#undef NM
    }
    /* lfm2 stores its final norm as token_embd_norm (llama-arch.cpp) */
    TRY(add_norm(m, lfm2 ? "token_embd_norm.weight" : "output_norm.weight", d));
    if (gpt2) TRY(add_bias(m, "output_norm.bias", d));
    if (!p->tied) TRY(add_matrix(m, "output.weight", type, d, V));
#undef TRY
    return QEIL_OK;
}

qeil_status qeil_mkmodel_write(qeil_ctx *ctx, const qeil_mkmodel_params *p, const char *path)
{
    if (!p || !path) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "mkmodel: NULL argument");
    qeil_status st = check_mk(ctx, p);
    if (st != QEIL_OK) return st;
    mk_state m;
    memset(&m, 0, sizeof m);
    m.ctx = ctx;
    qeil_rng_seed(&m.rng, p->seed);
    /* the longest row: d_ff, or the fused q|k|v bias (at most 3 d_model) */
    size_t widest = 3 * (size_t)p->d_model > p->d_ff ? 3 * (size_t)p->d_model : p->d_ff;
    m.row = qeil_malloc(ctx, widest * sizeof(float));
    m.w = qeil_gguf_writer_create(ctx);
    if (!m.row || !m.w) {
        st = qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "mkmodel: out of memory");
    } else {
        st = write_meta(&m, p);
        if (st == QEIL_OK) st = write_tensors(&m, p);
        if (st == QEIL_OK) st = qeil_gguf_writer_write(m.w, path);
    }
    qeil_gguf_writer_free(m.w);
    qeil_free(ctx, m.row);
    return st;
}
