/* test_model.c — model descriptions: the built-in catalog against published
 * parameter counts, the Q4_K_M byte layout, validation messages, and the
 * description a GGUF file (written here with the library's writer) gives of
 * itself, which must equal the hand-computed one, tied or not. Sources:
 * docs/models.md. */
#include <unistd.h>

#include "qeil/workload.h"
#include "test.h"

static uint8_t zeros[1 << 16]; /* tensor payloads: values do not matter here */

/* ---- Catalog ---------------------------------------------------------- */

TEST(catalog_names_and_shapes)
{
    static const char *names[] = {"gpt2-125m",    "granite-350m", "qwen2-0.5b",     "llama-3.2-1b",
                                  "lfm2-2.6b",    "llama-3.1-8b-f16", "llama-3.1-8b-q4"};
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    CHECK_EQ_INT(qeil_model_catalog_count(), 7);
    for (size_t i = 0; i < qeil_model_catalog_count(); i++) {
        qeil_model_desc md;
        CHECK_EQ_INT(qeil_model_catalog_get(ctx, i, &md), QEIL_OK);
        CHECK_EQ_STR(md.name, names[i]);
        CHECK_EQ_INT(qeil_model_validate(ctx, &md), QEIL_OK);
        CHECK_EQ_INT(qeil_model_n_units(&md), md.n_layers + 2);
        /* never INT4 by default: quantized weights run as int8 dot products */
        for (uint32_t u = 0; u < qeil_model_n_units(&md); u++) CHECK(md.unit_dtype[u] != QEIL_DT_INT4);
        qeil_model_desc again;
        CHECK_EQ_INT(qeil_model_load(ctx, names[i], &again), QEIL_OK);
        CHECK(memcmp(&md, &again, sizeof md) == 0);
    }
    qeil_model_desc md;
    CHECK_EQ_INT(qeil_model_catalog_get(ctx, 7, &md), QEIL_ERR_RANGE);
    /* published shapes (HF config.json; docs/models.md) */
    CHECK_EQ_INT(qeil_model_load(ctx, "gpt2-125m", &md), QEIL_OK);
    CHECK_EQ_INT(md.arch, QEIL_ARCH_GPT2);
    CHECK_EQ_INT(md.n_layers, 12);
    CHECK_EQ_INT(md.d_model, 768);
    CHECK_EQ_INT(md.n_heads, 12);
    CHECK_EQ_INT(md.d_ff, 3072);
    CHECK_EQ_INT(md.vocab, 50257);
    CHECK_EQ_INT(md.ctx_max, 1024);
    CHECK_EQ_INT(md.tied_embeddings, 1);
    CHECK_EQ_INT(qeil_model_load(ctx, "qwen2-0.5b", &md), QEIL_OK);
    CHECK_EQ_INT(md.arch, QEIL_ARCH_QWEN2);
    CHECK_EQ_INT(md.n_layers, 24);
    CHECK_EQ_INT(md.d_model, 896);
    CHECK_EQ_INT(md.n_heads, 14);
    CHECK_EQ_INT(md.n_kv_heads, 2);
    CHECK_EQ_INT(md.d_ff, 4864);
    CHECK_EQ_INT(md.vocab, 151936);
    CHECK_EQ_INT(md.tied_embeddings, 1);
    CHECK_EQ_INT(qeil_model_load(ctx, "llama-3.2-1b", &md), QEIL_OK);
    CHECK_EQ_INT(md.n_layers, 16);
    CHECK_EQ_INT(md.d_model, 2048);
    CHECK_EQ_INT(md.n_heads, 32);
    CHECK_EQ_INT(md.n_kv_heads, 8);
    CHECK_EQ_INT(md.d_ff, 8192);
    CHECK_EQ_INT(md.vocab, 128256);
    CHECK_EQ_INT(md.ctx_max, 131072);
    CHECK_EQ_INT(md.tied_embeddings, 1);
    CHECK_EQ_INT(qeil_model_load(ctx, "llama-3.1-8b-f16", &md), QEIL_OK);
    CHECK_EQ_INT(md.n_layers, 32);
    CHECK_EQ_INT(md.d_model, 4096);
    CHECK_EQ_INT(md.n_kv_heads, 8);
    CHECK_EQ_INT(md.d_ff, 14336);
    CHECK_EQ_INT(md.tied_embeddings, 0);
    CHECK_EQ_INT(md.weight_type, QEIL_GGML_F16);
    CHECK_EQ_INT(md.unit_dtype[1], QEIL_DT_F16);
    qeil_ctx_free(ctx);
}

TEST(params_match_published_counts)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_model_desc md;
    /* Llama-3.2-1B: 1.24 B on its model card; the safetensors hold
     * 1,235,814,400 = 128256·2048 + 16·60,821,504 + 2048. */
    CHECK_EQ_INT(qeil_model_load(ctx, "llama-3.2-1b", &md), QEIL_OK);
    CHECK_NEAR(qeil_model_params(&md), 1.24e9, 0.005, 0);
    CHECK_NEAR(qeil_model_params(&md), 1235814400.0, 0, 0);
    /* Llama-3.1-8B: 8.03 B (8,030,261,248, two 128256×4096 tables) */
    CHECK_EQ_INT(qeil_model_load(ctx, "llama-3.1-8b-q4", &md), QEIL_OK);
    CHECK_NEAR(qeil_model_params(&md), 8.03e9, 0.005, 0);
    CHECK_NEAR(qeil_model_params(&md), 8030261248.0, 0, 0);
    /* Qwen2-0.5B: 0.49 B in the Qwen2 report; 494,032,768 exactly */
    CHECK_EQ_INT(qeil_model_load(ctx, "qwen2-0.5b", &md), QEIL_OK);
    CHECK_NEAR(qeil_model_params(&md), 0.49e9, 0.01, 0);
    CHECK_NEAR(qeil_model_params(&md), 494032768.0, 0, 0);
    /* GPT-2 small: 124,439,808 with the tied table counted once */
    CHECK_EQ_INT(qeil_model_load(ctx, "gpt2-125m", &md), QEIL_OK);
    CHECK_NEAR(qeil_model_params(&md), 124439808.0, 0, 0);
    /* Granite-4.0-350M: 100352·1024 + 28·8,914,944 + 1024 = 352,379,904 */
    CHECK_EQ_INT(qeil_model_load(ctx, "granite-350m", &md), QEIL_OK);
    CHECK_NEAR(qeil_model_params(&md), 352379904.0, 0, 0);
    /* LFM2-2.6B: 2,569,272,320 on its model card, exactly (22 conv + 8
     * attention blocks, docs/models.md); the blocks differ in bytes: a conv
     * block holds 4 d² + 3 d matrix weights, an attention block 2.5 d² */
    CHECK_EQ_INT(qeil_model_load(ctx, "lfm2-2.6b", &md), QEIL_OK);
    CHECK_NEAR(qeil_model_params(&md), 2569272320.0, 0, 0);
    CHECK_EQ_INT(md.arch, QEIL_ARCH_LFM2);
    CHECK_EQ_INT(md.conv_L, 3);
    {
        int n_attn = 0;
        for (uint32_t l = 0; l < md.n_layers; l++) n_attn += md.layer_kind[l] == QEIL_LAYER_ATTN;
        CHECK_EQ_INT(n_attn, 8);
        /* f16: conv block 2 (4·2048² + 3·10752·2048) + 4 (2·2048) + 4·3·2048
         * (f32 kernel); attention block 2 (2.5·2048² + 3·10752·2048) + 4 (2·2048 + 2·64) */
        CHECK_NEAR(md.unit_weight_B[1 + 0], 2.0 * (4.0 * 2048 * 2048 + 3.0 * 10752 * 2048) + 4.0 * 2 * 2048 + 4.0 * 3 * 2048, 0, 0);
        CHECK_NEAR(md.unit_weight_B[1 + 2], 2.0 * (2.5 * 2048 * 2048 + 3.0 * 10752 * 2048) + 4.0 * (2 * 2048 + 2 * 64), 0, 0);
    }
    CHECK_EQ_INT(qeil_model_load(ctx, "granite-350m", &md), QEIL_OK);
    CHECK_EQ_INT(md.arch, QEIL_ARCH_GRANITE);
    qeil_ctx_free(ctx);
}

/* Q4_K_M of Llama-3.1-8B as llama-quantize lays it out (Q4_K: 144 B per 256
 * weights, Q6_K: 210 B per 256, norms F32):
 *   wq, wo 4096² → 9,437,184 B each (Q4_K); wk 4096×1024 → 2,359,296 (Q4_K);
 *   wv 2,359,296 (Q4_K) or 3,440,640 (Q6_K); gate, up 4096×14336 →
 *   33,030,144 each; down 33,030,144 (Q4_K) or 48,168,960 (Q6_K); norms 32,768
 *   "more bits" layer: 138,936,320 B; other layer: 122,716,160 B
 *   use_more_bits(i, 32): i < 4, i >= 28, (i − 4) % 3 == 2 → 16 layers each
 *   token_embd 128256×4096 Q4_K = 295,501,824; output Q6_K = 430,940,160
 *   total 16×(138,936,320 + 122,716,160) + 295,501,824 + 430,940,160 + 16,384
 *         = 4,912,898,048 B (Q4_K_M files of this model are ≈ 4.92 GB). */
TEST(q4_k_m_bytes)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_model_desc md;
    CHECK_EQ_INT(qeil_model_load(ctx, "llama-3.1-8b-q4", &md), QEIL_OK);
    double wb = qeil_model_weight_bytes(&md);
    CHECK(wb > 4.5e9 && wb < 5.0e9);
    CHECK_NEAR(wb, 4912898048.0, 0, 0);
    CHECK_NEAR(md.unit_weight_B[0], 295501824.0, 0, 0);
    CHECK_NEAR(md.unit_weight_B[1 + 0], 138936320.0, 0, 0); /* layer 0: more bits */
    CHECK_NEAR(md.unit_weight_B[1 + 4], 122716160.0, 0, 0); /* layer 4 */
    CHECK_NEAR(md.unit_weight_B[1 + 6], 138936320.0, 0, 0); /* (6 − 4) % 3 == 2 */
    CHECK_NEAR(md.unit_weight_B[1 + 27], 138936320.0, 0, 0);
    CHECK_NEAR(md.unit_weight_B[1 + 26], 122716160.0, 0, 0);
    CHECK_NEAR(md.unit_weight_B[1 + 31], 138936320.0, 0, 0);
    CHECK_NEAR(md.unit_weight_B[33], 430940160.0 + 16384.0, 0, 0);
    CHECK_EQ_INT(md.weight_type, QEIL_GGML_Q4_K);
    for (uint32_t u = 0; u < qeil_model_n_units(&md); u++) CHECK_EQ_INT(md.unit_dtype[u], QEIL_DT_INT8);
    /* f16: every matrix 2 B per weight, 266,240 norm weights at 4 B:
     * (8,030,261,248 − 266,240)×2 + 266,240×4 = 16,061,054,976 */
    CHECK_EQ_INT(qeil_model_load(ctx, "llama-3.1-8b-f16", &md), QEIL_OK);
    CHECK_NEAR(qeil_model_weight_bytes(&md), 16061054976.0, 0, 0);
    qeil_ctx_free(ctx);
}

TEST(tied_table_counted_once)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_model_desc md;
    CHECK_EQ_INT(qeil_model_load(ctx, "qwen2-0.5b", &md), QEIL_OK);
    double table = 151936.0 * 896 * 2;
    CHECK_NEAR(md.token_embd_B, table, 0, 0);
    CHECK_NEAR(md.unit_weight_B[0], table, 0, 0);
    CHECK_NEAR(md.unit_weight_B[25], table + 896 * 4, 0, 0); /* output_norm + the table */
    double sum = 0;
    for (uint32_t u = 0; u < qeil_model_n_units(&md); u++) sum += md.unit_weight_B[u];
    CHECK_NEAR(qeil_model_weight_bytes(&md), sum - table, 0, 0);
    qeil_ctx_free(ctx);
}

TEST(load_unknown_name)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_model_desc md;
    CHECK_EQ_INT(qeil_model_load(ctx, "no-such-model", &md), QEIL_ERR_NOTFOUND);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "no-such-model");
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "llama-3.1-8b-q4");
    CHECK(qeil_model_load(ctx, "/nonexistent/dir/m.gguf", &md) != QEIL_OK);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "/nonexistent/dir/m.gguf");
    CHECK_EQ_STR(qeil_arch_name(QEIL_ARCH_LLAMA), "llama");
    CHECK_EQ_STR(qeil_arch_name(QEIL_ARCH_QWEN2), "qwen2");
    CHECK_EQ_STR(qeil_arch_name(QEIL_ARCH_GPT2), "gpt2");
    qeil_ctx_free(ctx);
}

TEST(validate_names_the_field)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_model_desc good, md;
    CHECK_EQ_INT(qeil_model_load(ctx, "llama-3.2-1b", &good), QEIL_OK);
#define BAD(stmt, needle)                                                    \
    do {                                                                     \
        md = good;                                                           \
        qeil_ctx_clear(ctx);                                                 \
        stmt;                                                                \
        CHECK(qeil_model_validate(ctx, &md) != QEIL_OK);                     \
        CHECK_CONTAINS(qeil_ctx_errmsg(ctx), needle);                        \
    } while (0)
    BAD(md.n_layers = 0, "n_layers: 0");
    BAD(md.n_layers = QEIL_MAX_LAYERS + 1, "n_layers: 257");
    BAD(md.d_model = 0, "d_model");
    BAD(md.n_kv_heads = 5, "n_kv_heads");
    BAD(md.n_kv_heads = 64, "n_kv_heads: 64");
    BAD(md.head_dim = 0, "head_dim");
    BAD(md.vocab = 0, "vocab");
    BAD(md.ctx_max = 1, "ctx_max: 1");
    BAD(md.tied_embeddings = 2, "tied_embeddings");
    BAD(md.unit_weight_B[3] = -1, "unit_weight_B[3]");
    BAD(md.unit_weight_B[17] = INFINITY, "unit_weight_B[17]");
    BAD(md.unit_dtype[0] = (qeil_dtype)9, "unit_dtype[0]");
    BAD(md.kv_type = 4, "kv_type");
    BAD(md.weight_type = 63, "weight_type");
    BAD(md.name[0] = '\0', "name");
    BAD(md.arch = (qeil_arch)7, "arch");
    BAD(md.token_embd_B = md.unit_weight_B[0] * 2, "token_embd_B");
    BAD(md.arch = QEIL_ARCH_GPT2, "head_dim"); /* 8 KV heads: gpt2 has no GQA */
#undef BAD
    qeil_ctx_free(ctx);
}

/* ---- From GGUF -------------------------------------------------------- */

typedef struct {
    const char *arch;
    uint32_t L, d, H, Hkv, F, V, ctx;
    int tied;
    int mtype;          /* matrix type: QEIL_GGML_F16 or QEIL_GGML_Q8_0 */
    int extra_block;    /* add a tensor for block L (out of range) */
    const char *skip;   /* metadata suffix not to write */
    int kv_array;       /* head_count_kv as a per-layer array: 1 uniform, 2 varying */
    int bad_q_shape;    /* attn_q with a wrong shape */
    uint32_t n_tokens;  /* tokenizer.ggml.tokens length (0 = none) */
    uint32_t vocab_key; /* <arch>.vocab_size value (0 = none) */
} tiny_spec;

static int add_t(qeil_gguf_writer *w, const char *name, int type, uint64_t ne0, uint64_t ne1)
{
    uint64_t ne[2] = {ne0, ne1};
    return qeil_gguf_writer_add_tensor(w, name, ne1 ? type : QEIL_GGML_F32, ne1 ? 2 : 1, ne, zeros) !=
           QEIL_OK;
}

/* The tensors llama.cpp's converters write, named as they name them. */
static qeil_gguf_writer *tiny_writer(qeil_ctx *ctx, const tiny_spec *s)
{
    qeil_gguf_writer *w = qeil_gguf_writer_create(ctx);
    if (!w) return NULL;
    int bad = 0, gpt2 = strcmp(s->arch, "gpt2") == 0, qwen2 = strcmp(s->arch, "qwen2") == 0;
    uint64_t hd = s->d / s->H, q = s->H * hd, kv = s->Hkv * hd, d = s->d, F = s->F;
    char key[96], n[96];
    bad |= qeil_gguf_writer_set_str(w, "general.architecture", s->arch);
    bad |= qeil_gguf_writer_set_str(w, "general.name", "tiny-from-gguf");
#define KEY(suffix, v)                                                       \
    if (!s->skip || strcmp(s->skip, suffix) != 0) {                          \
        snprintf(key, sizeof key, "%s.%s", s->arch, suffix);                 \
        bad |= qeil_gguf_writer_set_u32(w, key, v);                          \
    }
    KEY("block_count", s->L);
    KEY("embedding_length", s->d);
    KEY("attention.head_count", s->H);
    KEY("feed_forward_length", s->F);
    KEY("context_length", s->ctx);
    if (s->kv_array) {
        int32_t arr[16];
        for (uint32_t l = 0; l < s->L && l < 16; l++) arr[l] = (int32_t)s->Hkv;
        if (s->kv_array == 2) arr[s->L - 1] = (int32_t)(s->Hkv * 2);
        snprintf(key, sizeof key, "%s.attention.head_count_kv", s->arch);
        bad |= qeil_gguf_writer_set_arr_i32(w, key, arr, s->L);
    } else if (s->Hkv != s->H) {
        KEY("attention.head_count_kv", s->Hkv);
    }
    if (s->vocab_key) KEY("vocab_size", s->vocab_key);
#undef KEY
    if (s->n_tokens) {
        const char *toks[64];
        for (uint32_t i = 0; i < s->n_tokens && i < 64; i++) toks[i] = "t";
        bad |= qeil_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, s->n_tokens);
    }
    int mt = s->mtype;
    bad |= add_t(w, "token_embd.weight", mt, d, s->V);
    if (gpt2) bad |= add_t(w, "position_embd.weight", mt, d, s->ctx);
    for (uint32_t l = 0; l < s->L + (s->extra_block ? 1 : 0); l++) {
#define T(suffix, a, b)                                                      \
    snprintf(n, sizeof n, "blk.%u." suffix, l);                              \
    bad |= add_t(w, n, mt, a, b)
        if (gpt2) {
            T("attn_norm.weight", d, 0);
            T("attn_norm.bias", d, 0);
            T("attn_qkv.weight", d, q + 2 * kv);
            T("attn_qkv.bias", q + 2 * kv, 0);
            T("attn_output.weight", q, d);
            T("attn_output.bias", d, 0);
            T("ffn_norm.weight", d, 0);
            T("ffn_norm.bias", d, 0);
            T("ffn_up.weight", d, F);
            T("ffn_up.bias", F, 0);
            T("ffn_down.weight", F, d);
            T("ffn_down.bias", d, 0);
        } else {
            T("attn_norm.weight", d, 0);
            T("attn_q.weight", d, s->bad_q_shape ? q / 2 : q);
            T("attn_k.weight", d, kv);
            T("attn_v.weight", d, kv);
            if (qwen2) {
                T("attn_q.bias", q, 0);
                T("attn_k.bias", kv, 0);
                T("attn_v.bias", kv, 0);
            }
            T("attn_output.weight", q, d);
            T("ffn_norm.weight", d, 0);
            T("ffn_gate.weight", d, F);
            T("ffn_up.weight", d, F);
            T("ffn_down.weight", F, d);
        }
#undef T
    }
    bad |= add_t(w, "output_norm.weight", mt, d, 0);
    if (gpt2) bad |= add_t(w, "output_norm.bias", mt, d, 0);
    if (!s->tied) bad |= add_t(w, "output.weight", mt, d, s->V);
    if (bad) {
        qeil_gguf_writer_free(w);
        return NULL;
    }
    return w;
}

/* Write to memory and describe; *buf must be freed by the caller. */
static qeil_status describe(qeil_ctx *ctx, const tiny_spec *s, qeil_model_desc *md)
{
    qeil_gguf_writer *w = tiny_writer(ctx, s);
    if (!w) return QEIL_ERR_INTERNAL;
    void *buf = NULL;
    size_t len = 0;
    qeil_status st = qeil_gguf_writer_to_memory(w, &buf, &len);
    qeil_gguf_writer_free(w);
    if (st != QEIL_OK) return st;
    qeil_gguf *g = NULL;
    st = qeil_gguf_from_memory(ctx, buf, len, &g);
    if (st == QEIL_OK) st = qeil_model_from_gguf(ctx, g, md);
    qeil_gguf_free(g);
    qeil_free(ctx, buf);
    return st;
}

static const tiny_spec TINY_LLAMA = {"llama", 2, 8, 2, 1, 16, 10, 64, 0, QEIL_GGML_F16, 0, NULL, 0, 0, 0, 0};
static const tiny_spec TINY_QWEN2 = {"qwen2", 2, 8, 2, 1, 16, 10, 64, 1, QEIL_GGML_F16, 0, NULL, 0, 0, 10, 0};
static const tiny_spec TINY_GPT2 = {"gpt2", 2, 8, 2, 2, 32, 10, 16, 1, QEIL_GGML_F16, 0, NULL, 0, 0, 0, 10};

/* The same descriptions test_workload.c computes by hand (bytes derived
 * there): every field but the name and description must match. */
static void check_same(const qeil_model_desc *got, qeil_arch arch, uint32_t ff, uint32_t kvh,
                       uint32_t ctx_max, int tied, const double *unit_B, double table_B)
{
    CHECK_EQ_INT(got->arch, arch);
    CHECK_EQ_INT(got->n_layers, 2);
    CHECK_EQ_INT(got->d_model, 8);
    CHECK_EQ_INT(got->n_heads, 2);
    CHECK_EQ_INT(got->n_kv_heads, kvh);
    CHECK_EQ_INT(got->head_dim, 4);
    CHECK_EQ_INT(got->d_ff, ff);
    CHECK_EQ_INT(got->vocab, 10);
    CHECK_EQ_INT(got->ctx_max, ctx_max);
    CHECK_EQ_INT(got->tied_embeddings, tied);
    for (int u = 0; u < 4; u++) {
        CHECK_NEAR(got->unit_weight_B[u], unit_B[u], 0, 0);
        CHECK_EQ_INT(got->unit_dtype[u], QEIL_DT_F16);
    }
    CHECK_EQ_INT(got->kv_type, QEIL_GGML_F16);
    CHECK_EQ_INT(got->weight_type, QEIL_GGML_F16);
    CHECK_NEAR(got->token_embd_B, table_B, 0, 0);
    CHECK_EQ_STR(got->name, "tiny-from-gguf");
}

TEST(from_gguf_llama_untied)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_model_desc md;
    CHECK_EQ_INT(describe(ctx, &TINY_LLAMA, &md), QEIL_OK);
    if (md.n_layers != 2) TEST_FAIL_("%s", qeil_ctx_errmsg(ctx));
    static const double B[4] = {160, 1216, 1216, 192};
    check_same(&md, QEIL_ARCH_LLAMA, 16, 1, 64, 0, B, 160);
    CHECK_NEAR(qeil_model_weight_bytes(&md), 2784, 0, 0);
    qeil_ctx_free(ctx);
}

TEST(from_gguf_qwen2_tied_biases)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_model_desc md;
    CHECK_EQ_INT(describe(ctx, &TINY_QWEN2, &md), QEIL_OK);
    static const double B[4] = {160, 1280, 1280, 192};
    check_same(&md, QEIL_ARCH_QWEN2, 16, 1, 64, 1, B, 160);
    CHECK_NEAR(qeil_model_weight_bytes(&md), 2752, 0, 0);
    qeil_ctx_free(ctx);
}

TEST(from_gguf_gpt2_positions)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_model_desc md;
    CHECK_EQ_INT(describe(ctx, &TINY_GPT2, &md), QEIL_OK);
    static const double B[4] = {416, 1952, 1952, 224};
    check_same(&md, QEIL_ARCH_GPT2, 32, 2, 16, 1, B, 160);
    CHECK_NEAR(qeil_model_weight_bytes(&md), 4384, 0, 0);
    /* and the workload of the file equals the workload of the config */
    qeil_workload_params wp = qeil_workload_default_params();
    wp.prompt_tokens = 3;
    wp.gen_tokens = 4;
    qeil_workload a;
    CHECK_EQ_INT(qeil_workload_build(ctx, &md, &wp, &a), QEIL_OK);
    CHECK_NEAR(a.u[1].dc_flops, 2181, 0, 0);
    CHECK_NEAR(a.u[0].pf_weight_B, 96, 0, 0);
    CHECK_NEAR(a.tied_B, 160, 0, 0);
    qeil_ctx_free(ctx);
}

/* Block layouts: Q8_0 stores 32 weights in 34 B (fp16 scale + 32 int8).
 * d=32, 4 heads of 8, 2 KV heads (kv = 16), d_ff 64, vocab 12, 1 layer:
 *   token_embd [32, 12]: 12 rows × 34 = 408 B
 *   block: attn_norm 128 + wq 32×34 = 1088 + wk 16×34 = 544 + wv 544 + wo 1088
 *          + ffn_norm 128 + gate 64×34 = 2176 + up 2176 + down 32×2×34 = 2176
 *          = 10,048 B
 *   head: output_norm 128 + output 408 = 536 B */
TEST(from_gguf_q8_0_block_layout)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    tiny_spec s = {"llama", 1, 32, 4, 2, 64, 12, 128, 0, QEIL_GGML_Q8_0, 0, NULL, 1, 0, 12, 12};
    qeil_model_desc md;
    CHECK_EQ_INT(describe(ctx, &s, &md), QEIL_OK);
    CHECK_NEAR(md.unit_weight_B[0], 408, 0, 0);
    CHECK_NEAR(md.unit_weight_B[1], 10048, 0, 0);
    CHECK_NEAR(md.unit_weight_B[2], 536, 0, 0);
    CHECK_EQ_INT(md.n_kv_heads, 2); /* from a uniform per-layer array */
    CHECK_EQ_INT(md.weight_type, QEIL_GGML_Q8_0);
    for (int u = 0; u < 3; u++) CHECK_EQ_INT(md.unit_dtype[u], QEIL_DT_INT8);
    qeil_ctx_free(ctx);
}

TEST(from_gguf_rejects_inconsistent_files)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_model_desc md;
    tiny_spec s = TINY_LLAMA;
    s.arch = "mamba";
    CHECK_EQ_INT(describe(ctx, &s, &md), QEIL_ERR_UNSUPPORTED);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "mamba");
    s = TINY_LLAMA;
    s.skip = "block_count";
    CHECK_EQ_INT(describe(ctx, &s, &md), QEIL_ERR_FORMAT);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "llama.block_count");
    s = TINY_QWEN2;
    s.skip = "context_length";
    CHECK_EQ_INT(describe(ctx, &s, &md), QEIL_ERR_FORMAT);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "qwen2.context_length");
    s = TINY_LLAMA;
    s.extra_block = 1;
    CHECK_EQ_INT(describe(ctx, &s, &md), QEIL_ERR_FORMAT);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "blk.2.");
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "block_count is 2");
    s = TINY_LLAMA;
    s.bad_q_shape = 1;
    CHECK_EQ_INT(describe(ctx, &s, &md), QEIL_ERR_FORMAT);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "attn_q.weight");
    s = TINY_LLAMA;
    s.vocab_key = 11;
    CHECK_EQ_INT(describe(ctx, &s, &md), QEIL_ERR_FORMAT);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "vocab_size");
    s = TINY_LLAMA;
    s.n_tokens = 11;
    CHECK_EQ_INT(describe(ctx, &s, &md), QEIL_ERR_FORMAT);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "tokenizer.ggml.tokens");
    s = TINY_LLAMA;
    s.kv_array = 2;
    CHECK_EQ_INT(describe(ctx, &s, &md), QEIL_ERR_UNSUPPORTED);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "head_count_kv");
    s = TINY_LLAMA;
    s.L = 3; /* metadata says 3 blocks, but blocks 0..2 are all written: fine */
    CHECK_EQ_INT(describe(ctx, &s, &md), QEIL_OK);
    qeil_ctx_free(ctx);
}

TEST(load_gguf_file_by_path)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    char path[] = "/tmp/qeil-model-test-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0) return;
    close(fd);
    qeil_gguf_writer *w = tiny_writer(ctx, &TINY_QWEN2);
    CHECK(w != NULL);
    CHECK_EQ_INT(qeil_gguf_writer_write(w, path), QEIL_OK);
    qeil_gguf_writer_free(w);
    qeil_model_desc md;
    CHECK_EQ_INT(qeil_model_load(ctx, path, &md), QEIL_OK);
    CHECK_EQ_STR(md.name, "tiny-from-gguf");
    CHECK_EQ_INT(md.tied_embeddings, 1);
    CHECK_NEAR(md.unit_weight_B[1], 1280, 0, 0);
    /* a corrupt file fails cleanly, naming the file */
    FILE *f = fopen(path, "r+b");
    CHECK(f != NULL);
    if (f) {
        fputs("XXXX", f);
        fclose(f);
    }
    CHECK(qeil_model_load(ctx, path, &md) != QEIL_OK);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), path);
    unlink(path);
    qeil_ctx_free(ctx);
}

int main(void)
{
    RUN(catalog_names_and_shapes);
    RUN(params_match_published_counts);
    RUN(q4_k_m_bytes);
    RUN(tied_table_counted_once);
    RUN(load_unknown_name);
    RUN(validate_names_the_field);
    RUN(from_gguf_llama_untied);
    RUN(from_gguf_qwen2_tied_biases);
    RUN(from_gguf_gpt2_positions);
    RUN(from_gguf_q8_0_block_layout);
    RUN(from_gguf_rejects_inconsistent_files);
    RUN(load_gguf_file_by_path);
    return test_summary("model");
}
