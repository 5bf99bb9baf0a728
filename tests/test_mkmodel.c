/*
 * test_mkmodel.c — every file qeil_mkmodel_write makes is one llama.cpp
 * loads: it holds only the metadata keys (with their value types), values
 * and tensor names that llama.cpp's own converter writes, and every key
 * and tensor llama.cpp's loader requires.
 *
 * The tables below are written from llama.cpp's sources (ggml-org/llama.cpp,
 * read in 2026-12; the row comments name the file and what the row comes
 * from) and are documented in docs/gguf.md ("Files llama.cpp loads"):
 *   convert_hf_to_gguf.py    TextModel / LlamaModel / GPT2Model
 *                            set_gguf_parameters, ModelBase.prepare_metadata,
 *                            _set_vocab_sentencepiece, _set_vocab_gpt2,
 *                            get_vocab_base_pre, LlamaModel.generate_extra_tensors
 *   gguf-py/gguf             gguf_writer.py (add_uint32, add_float32, ...),
 *                            constants.py (Keys, MODEL_TENSORS, GGUFValueType.get_type:
 *                            Python int -> INT32, float -> FLOAT32), vocab.py (SpecialVocab)
 *   src/llama-model-loader.cpp  GKV::get_kv: a key of another type than the
 *                            one asked for is an error ("key %s has wrong type")
 *   src/llama-model.cpp      load_hparams (required keys, the rope scaling
 *                            type assert, "invalid n_rot"), load_tensors
 *                            (required / TENSOR_NOT_REQUIRED tensors)
 *   src/llama-vocab.cpp      tokenizer models, pre-tokenizer names, token
 *                            arrays, special token ids (uint32)
 *   src/llama-arch.cpp       tensor names per architecture
 *
 * Cases: each preset (the three real-model presets shrunk to one layer of
 * width 256: keys, value types and tensor names do not depend on the sizes)
 * and each architecture's defaults, at each of the 7 weight types. Each file
 * is also opened by the engine (qeil reads what llama.cpp reads).
 */
#include <stdint.h>
#include <unistd.h>

#include "mkmodel_cases.h"
#include "qeil/engine.h"
#include "test.h"

static char g_dir[256];

/* ------------------------------------------------------------------------ */
/* The key table                                                             */
/* ------------------------------------------------------------------------ */

enum {
    A_LLAMA = 1, A_QWEN2 = 2, A_GPT2 = 4, A_GRANITE = 8, A_LFM2 = 16, A_ALL = 31,
    A_ROPE = A_LLAMA | A_QWEN2 | A_GRANITE | A_LFM2,
    A_LLAMALIKE = A_LLAMA | A_QWEN2 | A_GRANITE /* every block has attention */
};
#define NO_ELEM (-1)

typedef struct {
    const char *key;  /* "{arch}." stands for "<general.architecture>." */
    int type;         /* qeil_gguf_vtype llama.cpp reads it as */
    int elem;         /* arrays: element type; NO_ELEM otherwise */
    unsigned archs;   /* architectures the converter writes it for */
    unsigned req;     /* architectures whose loader fails without it */
} key_rule;

static const key_rule k_keys[] = {
    /* GGUFWriter(arch=...) writes it; llama-model-loader.cpp: the loader
     * needs it to pick the architecture */
    {"general.architecture", QEIL_GGUF_STRING, NO_ELEM, A_ALL, A_ALL},
    /* prepare_metadata -> Metadata.set_gguf_meta_model (add_name) */
    {"general.name", QEIL_GGUF_STRING, NO_ELEM, A_ALL, 0},
    /* ModelBase.set_type (add_type) */
    {"general.type", QEIL_GGUF_STRING, NO_ELEM, A_ALL, 0},
    /* TextModel / GPT2Model.set_gguf_parameters add_file_type (add_uint32);
     * llama-model-loader.cpp reads LLM_KV_GENERAL_FILE_TYPE as uint32 */
    {"general.file_type", QEIL_GGUF_UINT32, NO_ELEM, A_ALL, 0},
    /* ModelBase.prepare_metadata add_quantization_version (add_uint32) */
    {"general.quantization_version", QEIL_GGUF_UINT32, NO_ELEM, A_ALL, 0},
    /* ggml gguf.cpp reads it with gguf_get_val_u32 (written only when custom) */
    {"general.alignment", QEIL_GGUF_UINT32, NO_ELEM, A_ALL, 0},

    /* TextModel.set_gguf_parameters (GPT2Model writes the same five);
     * llama-model.cpp load_hparams: get_key(LLM_KV_CONTEXT_LENGTH,
     * EMBEDDING_LENGTH, BLOCK_COUNT) required, get_key_or_arr(FEED_FORWARD_
     * LENGTH, ATTENTION_HEAD_COUNT) */
    {"{arch}.block_count", QEIL_GGUF_UINT32, NO_ELEM, A_ALL, A_ALL},
    {"{arch}.context_length", QEIL_GGUF_UINT32, NO_ELEM, A_ALL, A_ALL},
    {"{arch}.embedding_length", QEIL_GGUF_UINT32, NO_ELEM, A_ALL, A_ALL},
    {"{arch}.feed_forward_length", QEIL_GGUF_UINT32, NO_ELEM, A_ALL, A_ALL},
    {"{arch}.attention.head_count", QEIL_GGUF_UINT32, NO_ELEM, A_ALL, A_ALL},
    /* TextModel: num_key_value_heads (GPT2Model does not write it; the
     * loader defaults it to head_count) */
    {"{arch}.attention.head_count_kv", QEIL_GGUF_UINT32, NO_ELEM, A_LLAMALIKE, 0},
    /* LFM2Model.set_gguf_parameters: a list, num_key_value_heads for
     * "full_attention" layers and 0 for conv layers (add_head_count_kv ->
     * add_array of Python ints: INT32); llama-model.cpp get_key_or_arr,
     * lfm2 is_recr(il) = n_head_kv(il) == 0 */
    {"{arch}.attention.head_count_kv", QEIL_GGUF_ARRAY, QEIL_GGUF_INT32, A_LFM2, 0},
    /* TextModel: only when config.json has head_dim (GraniteModel pops it;
     * LFM2 configs have none) */
    {"{arch}.attention.key_length", QEIL_GGUF_UINT32, NO_ELEM, A_LLAMA | A_QWEN2, 0},
    {"{arch}.attention.value_length", QEIL_GGUF_UINT32, NO_ELEM, A_LLAMA | A_QWEN2, 0},
    /* TextModel: rope_theta (add_float32) */
    {"{arch}.rope.freq_base", QEIL_GGUF_FLOAT32, NO_ELEM, A_ROPE, 0},
    /* TextModel: only for linear, yarn and longrope configs (llama3 is
     * "handled in generate_extra_tensors": no key) */
    {"{arch}.rope.scaling.type", QEIL_GGUF_STRING, NO_ELEM, A_ROPE, 0},
    {"{arch}.rope.scaling.factor", QEIL_GGUF_FLOAT32, NO_ELEM, A_ROPE, 0},
    {"{arch}.rope.scaling.original_context_length", QEIL_GGUF_UINT32, NO_ELEM, A_ROPE, 0},
    /* TextModel: rms_norm_eps; load_hparams LLM_ARCH_LLAMA / QWEN2:
     * get_key(LLM_KV_ATTENTION_LAYERNORM_RMS_EPS) required */
    {"{arch}.attention.layer_norm_rms_epsilon", QEIL_GGUF_FLOAT32, NO_ELEM, A_ROPE, A_ROPE},
    /* GraniteModel.set_gguf_parameters: attention_multiplier,
     * embedding_multiplier, residual_multiplier, logits_scaling
     * (add_float32); src/models/granite.cpp load_arch_hparams: logit_scale
     * required, the other three optional */
    {"{arch}.attention.scale", QEIL_GGUF_FLOAT32, NO_ELEM, A_GRANITE, 0},
    {"{arch}.embedding_scale", QEIL_GGUF_FLOAT32, NO_ELEM, A_GRANITE, 0},
    {"{arch}.residual_scale", QEIL_GGUF_FLOAT32, NO_ELEM, A_GRANITE, 0},
    {"{arch}.logit_scale", QEIL_GGUF_FLOAT32, NO_ELEM, A_GRANITE, A_GRANITE},
    /* GraniteHybridModel (Granite 4.0 files, also the all-attention ones it
     * rewrites to "granite"): add_rope_scaling_finetuned (add_bool) */
    {"{arch}.rope.scaling.finetuned", QEIL_GGUF_BOOL, NO_ELEM, A_GRANITE, 0},
    /* LFM2Model: add_shortconv_l_cache (conv_L_cache); lfm2.cpp
     * load_arch_hparams: get_key(LLM_KV_SHORTCONV_L_CACHE) required */
    {"{arch}.shortconv.l_cache", QEIL_GGUF_UINT32, NO_ELEM, A_LFM2, A_LFM2},
    /* GPT2Model: layer_norm_epsilon; load_hparams LLM_ARCH_GPT2:
     * get_key(LLM_KV_ATTENTION_LAYERNORM_EPS) required */
    {"{arch}.attention.layer_norm_epsilon", QEIL_GGUF_FLOAT32, NO_ELEM, A_GPT2, A_GPT2},
    /* LlamaModel.set_gguf_parameters (GraniteModel inherits it):
     * add_vocab_size, add_rope_dimension_count (head_dim); LFM2Model
     * add_vocab_size only; Qwen2Model and GPT2Model write neither */
    {"{arch}.vocab_size", QEIL_GGUF_UINT32, NO_ELEM, A_LLAMA | A_GRANITE | A_LFM2, 0},
    {"{arch}.rope.dimension_count", QEIL_GGUF_UINT32, NO_ELEM, A_LLAMA | A_GRANITE, 0},

    /* _set_vocab_sentencepiece / _set_vocab_gpt2; llama-vocab.cpp load():
     * get_key(LLM_KV_TOKENIZER_MODEL) required, the token list required */
    {"tokenizer.ggml.model", QEIL_GGUF_STRING, NO_ELEM, A_ALL, A_ALL},
    {"tokenizer.ggml.pre", QEIL_GGUF_STRING, NO_ELEM, A_ALL, 0},
    {"tokenizer.ggml.tokens", QEIL_GGUF_ARRAY, QEIL_GGUF_STRING, A_ALL, A_ALL},
    /* add_token_scores (floats -> FLOAT32): SentencePiece only */
    {"tokenizer.ggml.scores", QEIL_GGUF_ARRAY, QEIL_GGUF_FLOAT32, A_ALL, 0},
    /* add_token_types (ints -> INT32); llama-vocab.cpp reads it as int * */
    {"tokenizer.ggml.token_type", QEIL_GGUF_ARRAY, QEIL_GGUF_INT32, A_ALL, 0},
    /* SpecialVocab merges; required for tokenizer model gpt2 (checked below) */
    {"tokenizer.ggml.merges", QEIL_GGUF_ARRAY, QEIL_GGUF_STRING, A_ALL, 0},
    /* SpecialVocab add_*_token_id (add_uint32); llama-vocab.cpp reads uint32 */
    {"tokenizer.ggml.bos_token_id", QEIL_GGUF_UINT32, NO_ELEM, A_ALL, 0},
    {"tokenizer.ggml.eos_token_id", QEIL_GGUF_UINT32, NO_ELEM, A_ALL, 0},
    {"tokenizer.ggml.unknown_token_id", QEIL_GGUF_UINT32, NO_ELEM, A_ALL, 0},
    {"tokenizer.ggml.padding_token_id", QEIL_GGUF_UINT32, NO_ELEM, A_ALL, 0},
    /* SpecialVocab add_add_bos_token / add_add_eos_token (add_bool) */
    {"tokenizer.ggml.add_bos_token", QEIL_GGUF_BOOL, NO_ELEM, A_ALL, 0},
    {"tokenizer.ggml.add_eos_token", QEIL_GGUF_BOOL, NO_ELEM, A_ALL, 0},
    {"tokenizer.ggml.add_space_prefix", QEIL_GGUF_BOOL, NO_ELEM, A_ALL, 0},
    {"tokenizer.chat_template", QEIL_GGUF_STRING, NO_ELEM, A_ALL, 0},
};
#define N_KEYS (sizeof k_keys / sizeof k_keys[0])

/* llama-model.cpp llama_rope_scaling_type_from_string: anything else is
 * LLAMA_ROPE_SCALING_TYPE_UNSPECIFIED and load_hparams aborts
 * (GGML_ASSERT(hparams.rope_scaling_type_train != ..._UNSPECIFIED)) */
static const char *const k_rope_scaling_types[] = {"none", "linear", "yarn", "longrope"};

/* llama-vocab.cpp load(): tokenizer models it knows (others: "unknown
 * tokenizer"); the converter writes "llama" (SentencePiece) and "gpt2"
 * (byte-level BPE) for these architectures */
static const char *const k_tokenizer_models[] = {"llama", "gpt2"};

/* llama-vocab.cpp: BPE pre-tokenizer names (a few of the list; older
 * releases throw "unknown pre-tokenizer type" for any other, newer ones
 * fall back to "default" with a warning). The converter's
 * get_vocab_base_pre gives "gpt-2" for openai-community/gpt2 and "qwen2"
 * for Qwen1.5/Qwen2; _set_vocab_sentencepiece writes "default". */
static const char *const k_bpe_pre[] = {"default", "llama3", "llama-v3", "llama-bpe", "gpt-2",
                                        "qwen2", "falcon", "mpt", "starcoder", "refact"};

static int in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; s && i < n; i++)
        if (strcmp(s, list[i]) == 0) return 1;
    return 0;
}
#define IN_LIST(s, list) in_list((s), (list), sizeof(list) / sizeof((list)[0]))

/* ------------------------------------------------------------------------ */
/* The tensor table                                                          */
/* ------------------------------------------------------------------------ */

/* shape symbols, from the file's own metadata */
enum { S_1D = 0, S_D, S_V, S_Q, S_KV, S_QKV, S_FF, S_CTX, S_ROT2, S_HD, S_3D, S_CONVL };

typedef struct {
    const char *name; /* per-layer names without the "blk.N." prefix */
    int per_layer;
    unsigned archs;   /* llama-arch.cpp / load_tensors create it for */
    unsigned req;     /* created without TENSOR_NOT_REQUIRED for */
    int ne0, ne1;     /* S_* (ne1 S_1D: a vector) */
} tensor_rule;

static const tensor_rule k_tensors[] = {
    /* llama-model.cpp load_tensors, LLM_ARCH_LLAMA / QWEN2 / GPT2;
     * src/models/granite.cpp and lfm2.cpp load_arch_tensors */
    {"token_embd.weight", 0, A_ALL, A_ALL, S_D, S_V},
    {"position_embd.weight", 0, A_GPT2, A_GPT2, S_D, S_CTX},
    {"output_norm.weight", 0, A_ALL & ~A_LFM2, A_ALL & ~A_LFM2, S_D, S_1D},
    /* lfm2: the final norm is LLM_TENSOR_OUTPUT_NORM_LFM2, named
     * "token_embd_norm" (llama-arch.cpp: "fix for wrong tensor name") */
    {"token_embd_norm.weight", 0, A_LFM2, A_LFM2, S_D, S_1D},
    {"output_norm.bias", 0, A_GPT2, A_GPT2, S_D, S_1D},
    /* TENSOR_NOT_REQUIRED: absent means tied to token_embd (duplicated) */
    {"output.weight", 0, A_ALL, 0, S_D, S_V},
    /* LLAMA: layer.rope_freqs, {n_rot/2}, TENSOR_NOT_REQUIRED (and
     * TENSOR_DUPLICATED after layer 0); written by LlamaModel.
     * generate_extra_tensors for rope_type llama3. QWEN2 and GPT2 do not
     * load it, so a file with one would fail "wrong number of tensors" */
    {"rope_freqs.weight", 0, A_LLAMA | A_GRANITE, 0, S_ROT2, S_1D},
    {"attn_norm.weight", 1, A_ALL, A_ALL, S_D, S_1D},
    {"attn_norm.bias", 1, A_GPT2, A_GPT2, S_D, S_1D},
    /* lfm2: attention tensors only in attention blocks, shortconv only in
     * conv blocks (checked per block in check_tensors) */
    {"attn_q.weight", 1, A_ROPE, A_LLAMALIKE, S_D, S_Q},
    {"attn_k.weight", 1, A_ROPE, A_LLAMALIKE, S_D, S_KV},
    {"attn_v.weight", 1, A_ROPE, A_LLAMALIKE, S_D, S_KV},
    /* LLAMA: optional biases; QWEN2: bq, bk, bv required */
    {"attn_q.bias", 1, A_LLAMA | A_QWEN2, A_QWEN2, S_Q, S_1D},
    {"attn_k.bias", 1, A_LLAMA | A_QWEN2, A_QWEN2, S_KV, S_1D},
    {"attn_v.bias", 1, A_LLAMA | A_QWEN2, A_QWEN2, S_KV, S_1D},
    /* lfm2 QK-norm: {n_embd_head_k} each */
    {"attn_q_norm.weight", 1, A_LFM2, 0, S_HD, S_1D},
    {"attn_k_norm.weight", 1, A_LFM2, 0, S_HD, S_1D},
    /* lfm2 short convolution: conv {L_cache, n_embd} (f32: the converter
     * squeezes HF's [d, 1, L] and keeps it f32; ggml_ssm_conv needs f32),
     * in_proj {n_embd, 3 n_embd}, out_proj {n_embd, n_embd} */
    {"shortconv.conv.weight", 1, A_LFM2, 0, S_CONVL, S_D},
    {"shortconv.in_proj.weight", 1, A_LFM2, 0, S_D, S_3D},
    {"shortconv.out_proj.weight", 1, A_LFM2, 0, S_D, S_D},
    {"attn_qkv.weight", 1, A_GPT2, A_GPT2, S_D, S_QKV},
    {"attn_qkv.bias", 1, A_GPT2, A_GPT2, S_QKV, S_1D},
    {"attn_output.weight", 1, A_ALL, A_ALL & ~A_LFM2, S_Q, S_D},
    {"attn_output.bias", 1, A_LLAMA | A_GPT2 | A_GRANITE, A_GPT2, S_D, S_1D},
    {"ffn_norm.weight", 1, A_ALL, A_ALL, S_D, S_1D},
    {"ffn_norm.bias", 1, A_GPT2, A_GPT2, S_D, S_1D},
    {"ffn_gate.weight", 1, A_ROPE, A_ROPE, S_D, S_FF},
    {"ffn_gate.bias", 1, A_LLAMA | A_GRANITE, 0, S_FF, S_1D},
    {"ffn_up.weight", 1, A_ALL, A_ALL, S_D, S_FF},
    {"ffn_up.bias", 1, A_LLAMA | A_GPT2 | A_GRANITE, A_GPT2, S_FF, S_1D},
    {"ffn_down.weight", 1, A_ALL, A_ALL, S_FF, S_D},
    {"ffn_down.bias", 1, A_LLAMA | A_GPT2 | A_GRANITE, A_GPT2, S_D, S_1D},
};
#define N_TENSORS (sizeof k_tensors / sizeof k_tensors[0])

/* ------------------------------------------------------------------------ */
/* Cases                                                                     */
/* ------------------------------------------------------------------------ */

/* include/llama.h enum llama_ftype, for general.file_type */
static uint32_t expected_ftype(int type)
{
    switch (type) {
    case QEIL_GGML_F32: return 0;  /* LLAMA_FTYPE_ALL_F32 */
    case QEIL_GGML_F16: return 1;  /* MOSTLY_F16 */
    case QEIL_GGML_Q4_0: return 2; /* MOSTLY_Q4_0 */
    case QEIL_GGML_Q8_0: return 7; /* MOSTLY_Q8_0 */
    case QEIL_GGML_Q4_K: return 14; /* MOSTLY_Q4_K_S */
    case QEIL_GGML_Q4_1: return 3;  /* MOSTLY_Q4_1 */
    case QEIL_GGML_Q5_0: return 8;  /* MOSTLY_Q5_0 */
    case QEIL_GGML_Q5_1: return 9;  /* MOSTLY_Q5_1 */
    case QEIL_GGML_Q5_K: return 16; /* MOSTLY_Q5_K_S: all Q5_K apart from fallbacks */
    case QEIL_GGML_IQ4_NL: return 25; /* MOSTLY_IQ4_NL */
    case QEIL_GGML_IQ4_XS: return 30; /* MOSTLY_IQ4_XS */
    case QEIL_GGML_Q6_K: return 18; /* MOSTLY_Q6_K */
    case QEIL_GGML_BF16: return 32; /* MOSTLY_BF16 */
    default: return 1024;          /* GUESSED: never expected */
    }
}

static unsigned arch_bit(qeil_arch a)
{
    switch (a) {
    case QEIL_ARCH_LLAMA: return A_LLAMA;
    case QEIL_ARCH_QWEN2: return A_QWEN2;
    case QEIL_ARCH_GPT2: return A_GPT2;
    case QEIL_ARCH_GRANITE: return A_GRANITE;
    case QEIL_ARCH_LFM2: return A_LFM2;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Checks of one file                                                        */
/* ------------------------------------------------------------------------ */

/* Llama 3 factors as convert_hf_to_gguf.py LlamaModel.generate_extra_tensors
 * computes them (its own formula, written again here), for Llama 3.2's
 * rope_scaling: factor 32, low 1, high 4, original context 8192. */
static double llama3_factor(uint32_t i, uint32_t n_rot, double base)
{
    const double freq = 1.0 / pow(base, (double)(2 * i) / (double)n_rot);
    const double wavelen = 2.0 * 3.14159265358979323846 / freq;
    const double factor = 32.0, low = 1.0, high = 4.0, old = 8192.0;
    if (wavelen < old / high) return 1.0;
    if (wavelen > old / low) return factor;
    const double smooth = (old / wavelen - low) / (high - low);
    return 1.0 / ((1.0 - smooth) / factor + smooth);
}

typedef struct {
    const char *what;      /* case name and type, for messages */
    const qeil_mkmodel_params *p;
    qeil_ctx *ctx;
    const qeil_gguf *g;
    char arch[16];
    unsigned bit;
} file_check;

#define BAD(c, ...)                                                                                \
    do {                                                                                           \
        fprintf(stdout, "  %s: ", (c)->what);                                                      \
        TEST_FAIL_(__VA_ARGS__);                                                                   \
    } while (0)

/* The rule for `key` that applies to this file's architecture (a key can
 * have one row per set of architectures: head_count_kv is a number, or a
 * per-block array for lfm2), else the first rule of that name. */
static const key_rule *find_rule(const file_check *c, const char *key)
{
    char name[160];
    const key_rule *first = NULL;
    for (size_t i = 0; i < N_KEYS; i++) {
        const char *k = k_keys[i].key;
        if (strncmp(k, "{arch}.", 7) == 0) snprintf(name, sizeof name, "%s.%s", c->arch, k + 7);
        else snprintf(name, sizeof name, "%s", k);
        if (strcmp(name, key) != 0) continue;
        if (k_keys[i].archs & c->bit) return &k_keys[i];
        if (!first) first = &k_keys[i];
    }
    return first;
}

static void check_keys(file_check *c)
{
    const qeil_gguf *g = c->g;
    /* every key is one the converter writes for this arch, with its type */
    for (size_t i = 0; i < qeil_gguf_n_kv(g); i++) {
        const char *key = qeil_gguf_key_at(g, i);
        const key_rule *r = find_rule(c, key);
        if (!r || !(r->archs & c->bit)) {
            BAD(c, "key '%s' is not one llama.cpp's converter writes for %s", key, c->arch);
            continue;
        }
        int t = (int)qeil_gguf_kv_type(g, i);
        if (t != r->type) {
            BAD(c, "key '%s' has type %d, llama.cpp reads type %d", key, t, r->type);
            continue;
        }
        if (r->elem != NO_ELEM) {
            qeil_gguf_vtype et;
            uint64_t n;
            if (qeil_gguf_get_arr(c->ctx, g, key, &et, &n) != QEIL_OK || (int)et != r->elem)
                BAD(c, "key '%s': array elements of type %d, llama.cpp reads type %d", key, (int)et,
                    r->elem);
        }
    }
    /* every key llama.cpp's loader requires is there */
    char name[160];
    for (size_t i = 0; i < N_KEYS; i++) {
        if (!(k_keys[i].req & c->bit)) continue;
        const char *k = k_keys[i].key;
        if (strncmp(k, "{arch}.", 7) == 0) snprintf(name, sizeof name, "%s.%s", c->arch, k + 7);
        else snprintf(name, sizeof name, "%s", k);
        if (qeil_gguf_find_key(g, name) < 0) BAD(c, "required key '%s' is missing", name);
    }
}

static uint64_t u64_or(file_check *c, const char *key, uint64_t dflt)
{
    uint64_t v = dflt;
    if (qeil_gguf_find_key(c->g, key) >= 0 && qeil_gguf_get_u64(c->ctx, c->g, key, &v) != QEIL_OK)
        BAD(c, "key '%s' unreadable", key);
    return v;
}

static void check_values(file_check *c)
{
    const qeil_gguf *g = c->g;
    const qeil_mkmodel_params *p = c->p;
    char key[160];

    /* general.file_type: the llama_ftype of the requested type */
    CHECK_EQ_INT(u64_or(c, "general.file_type", 1024), expected_ftype(p->type));

    /* RoPE: a scaling type llama.cpp knows, or none; n_rot = head_dim for
     * llama (load_hparams: "invalid n_rot") */
    snprintf(key, sizeof key, "%s.rope.scaling.type", c->arch);
    if (qeil_gguf_find_key(g, key) >= 0 && !IN_LIST(qeil_gguf_get_str(g, key), k_rope_scaling_types))
        BAD(c, "%s = '%s' is not a type llama.cpp knows (none, linear, yarn, longrope)", key,
            qeil_gguf_get_str(g, key) ? qeil_gguf_get_str(g, key) : "(not a string)");
    const uint32_t hd = p->d_model / p->n_heads;
    snprintf(key, sizeof key, "%s.rope.dimension_count", c->arch);
    if (p->arch == QEIL_ARCH_LLAMA || p->arch == QEIL_ARCH_GRANITE) CHECK_EQ_INT(u64_or(c, key, hd), hd);
    if (p->arch == QEIL_ARCH_GRANITE) {
        static const char *const sk[4] = {"attention.scale", "embedding_scale", "residual_scale",
                                          "logit_scale"};
        const float want[4] = {p->attention_scale, p->embedding_scale, p->residual_scale, p->logit_scale};
        for (int i = 0; i < 4; i++) {
            double v = -1.0;
            snprintf(key, sizeof key, "granite.%s", sk[i]);
            if (qeil_gguf_get_f64(c->ctx, g, key, &v) != QEIL_OK || v != (double)want[i])
                BAD(c, "%s = %g, the params say %g", key, v, (double)want[i]);
        }
    }
    if (p->arch == QEIL_ARCH_LFM2) {
        CHECK_EQ_INT(u64_or(c, "lfm2.shortconv.l_cache", 0), p->conv_L);
        int64_t ki = qeil_gguf_find_key(g, "lfm2.attention.head_count_kv");
        for (uint32_t l = 0; ki >= 0 && l < p->n_layers; l++) {
            const double want = (p->attn_layers >> l) & 1 ? (double)p->n_kv_heads : 0.0;
            if (qeil_gguf_arr_f64(g, ki, l) != want)
                BAD(c, "lfm2.attention.head_count_kv[%u] = %g, block %u is %s", l, qeil_gguf_arr_f64(g, ki, l),
                    l, want > 0 ? "attention" : "conv");
        }
    }

    /* tokenizer: a model and pre-tokenizer llama.cpp knows, the ones the
     * converter writes for this kind of vocabulary */
    const char *model = qeil_gguf_get_str(g, "tokenizer.ggml.model");
    const char *pre = qeil_gguf_get_str(g, "tokenizer.ggml.pre");
    if (!IN_LIST(model, k_tokenizer_models)) BAD(c, "tokenizer.ggml.model '%s' unknown to llama.cpp", model ? model : "");
    const int spm = model && strcmp(model, "llama") == 0;
    CHECK_EQ_STR(model, p->arch == QEIL_ARCH_LLAMA ? "llama" : "gpt2");
    if (pre && !spm && !IN_LIST(pre, k_bpe_pre)) BAD(c, "tokenizer.ggml.pre '%s' unknown to llama.cpp", pre);
    CHECK_EQ_STR(pre, p->arch == QEIL_ARCH_LLAMA ? "default" : p->arch == QEIL_ARCH_QWEN2 ? "qwen2" : "gpt-2");

    /* tokens: unique (llama-vocab.cpp GGML_ASSERT(id_to_token.size() ==
     * token_to_id.size())), as many as token_embd rows (n_vocab) and as
     * scores / token types; types 1..6; special ids in range */
    int64_t kt = qeil_gguf_find_key(g, "tokenizer.ggml.tokens");
    qeil_gguf_vtype et;
    uint64_t n = 0, m = 0;
    if (kt < 0 || qeil_gguf_get_arr(c->ctx, g, "tokenizer.ggml.tokens", &et, &n) != QEIL_OK) return;
    CHECK_EQ_INT(n, p->vocab);
    const char **toks = calloc(n, sizeof *toks);
    for (uint64_t i = 0; toks && i < n; i++) toks[i] = qeil_gguf_arr_str(g, kt, i, NULL);
    int dup = 0;
    for (uint64_t i = 0; toks && !dup && i < n; i++)
        for (uint64_t j = i + 1; !dup && j < n; j++)
            if (toks[i] && toks[j] && strcmp(toks[i], toks[j]) == 0) {
                BAD(c, "token %llu and %llu are both '%s'", (unsigned long long)i, (unsigned long long)j,
                    toks[i]);
                dup = 1;
            }
    if (qeil_gguf_find_key(g, "tokenizer.ggml.scores") >= 0) {
        CHECK(spm);
        CHECK_EQ_INT(qeil_gguf_get_arr(c->ctx, g, "tokenizer.ggml.scores", &et, &m), QEIL_OK);
        CHECK_EQ_INT(m, n);
    }
    int64_t ky = qeil_gguf_find_key(g, "tokenizer.ggml.token_type");
    if (ky >= 0) {
        CHECK_EQ_INT(qeil_gguf_get_arr(c->ctx, g, "tokenizer.ggml.token_type", &et, &m), QEIL_OK);
        CHECK_EQ_INT(m, n);
        for (uint64_t i = 0; i < m; i++) {
            double v = qeil_gguf_arr_f64(g, ky, i);
            if (!(v >= 1 && v <= 6)) {
                BAD(c, "token_type[%llu] = %g (llama.cpp: 1..6)", (unsigned long long)i, v);
                break;
            }
        }
    }
    static const char *const ids[] = {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                                      "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id"};
    for (size_t i = 0; i < 4; i++)
        if (qeil_gguf_find_key(g, ids[i]) >= 0 && u64_or(c, ids[i], 0) >= n)
            BAD(c, "%s out of range (%llu tokens)", ids[i], (unsigned long long)n);
    /* merges: required for "gpt2" (llama-vocab.cpp "cannot find tokenizer
     * merges"); each "a b" with a, b and ab tokens of the vocabulary */
    int64_t km = qeil_gguf_find_key(g, "tokenizer.ggml.merges");
    if (!spm && km < 0) BAD(c, "tokenizer.ggml.merges missing for a BPE vocabulary");
    if (km >= 0 && qeil_gguf_get_arr(c->ctx, g, "tokenizer.ggml.merges", &et, &m) == QEIL_OK) {
        CHECK(!spm);
        for (uint64_t i = 0; toks && i < m; i++) {
            const char *mg = qeil_gguf_arr_str(g, km, i, NULL);
            const char *sp = mg ? strchr(mg + 1, ' ') : NULL;
            char a[64], b[64], ab[128];
            if (!sp || (size_t)(sp - mg) >= sizeof a || strlen(sp + 1) >= sizeof b) {
                BAD(c, "merge %llu '%s' is not 'a b'", (unsigned long long)i, mg ? mg : "");
                break;
            }
            snprintf(a, sizeof a, "%.*s", (int)(sp - mg), mg);
            snprintf(b, sizeof b, "%s", sp + 1);
            snprintf(ab, sizeof ab, "%s%s", a, b);
            int fa = 0, fb = 0, fab = 0;
            for (uint64_t j = 0; j < n; j++) {
                if (!toks[j]) continue;
                fa |= strcmp(toks[j], a) == 0;
                fb |= strcmp(toks[j], b) == 0;
                fab |= strcmp(toks[j], ab) == 0;
            }
            if (!fa || !fb || !fab) BAD(c, "merge '%s': a part or the result is not a token", mg);
        }
    }
    free(toks);
}

static uint64_t dim_of(const file_check *c, int s)
{
    const qeil_mkmodel_params *p = c->p;
    const uint64_t hd = p->d_model / p->n_heads;
    switch (s) {
    case S_D: return p->d_model;
    case S_V: return p->vocab;
    case S_Q: return hd * p->n_heads;
    case S_KV: return hd * p->n_kv_heads;
    case S_QKV: return hd * (p->n_heads + 2u * p->n_kv_heads);
    case S_FF: return p->d_ff;
    case S_CTX: return p->ctx;
    case S_ROT2: return hd / 2;
    case S_HD: return hd;
    case S_3D: return 3u * (uint64_t)p->d_model;
    case S_CONVL: return p->conv_L;
    default: return 1;
    }
}

static const tensor_rule *tensor_rule_of(const char *name, uint64_t *layer)
{
    const char *suffix = name;
    int blk = 0;
    *layer = 0;
    if (strncmp(name, "blk.", 4) == 0) {
        char *end = NULL;
        *layer = strtoull(name + 4, &end, 10);
        if (!end || *end != '.') return NULL;
        suffix = end + 1;
        blk = 1;
    }
    for (size_t i = 0; i < N_TENSORS; i++)
        if (k_tensors[i].per_layer == blk && strcmp(k_tensors[i].name, suffix) == 0) return &k_tensors[i];
    return NULL;
}

static void check_tensors(file_check *c)
{
    const qeil_gguf *g = c->g;
    const qeil_mkmodel_params *p = c->p;
    for (size_t i = 0; i < qeil_gguf_n_tensors(g); i++) {
        const qeil_gguf_tensor *t = qeil_gguf_tensor_at(g, i);
        uint64_t layer;
        const tensor_rule *r = tensor_rule_of(t->name, &layer);
        if (!r || !(r->archs & c->bit) || (r->per_layer && layer >= p->n_layers)) {
            BAD(c, "tensor '%s' is not one llama.cpp loads for %s (its loader fails: wrong number of tensors)",
                t->name, c->arch);
            continue;
        }
        const uint32_t nd = r->ne1 == S_1D ? 1 : 2;
        if (t->n_dims != nd || t->ne[0] != dim_of(c, r->ne0) || (nd == 2 && t->ne[1] != dim_of(c, r->ne1)))
            BAD(c, "tensor '%s' has shape [%llu, %llu], llama.cpp creates [%llu, %llu]", t->name,
                (unsigned long long)t->ne[0], (unsigned long long)(t->n_dims > 1 ? t->ne[1] : 1),
                (unsigned long long)dim_of(c, r->ne0), (unsigned long long)dim_of(c, r->ne1));
        /* the converter stores every 1-D tensor as f32 (prepare_tensors),
         * and lfm2's conv kernels */
        if (nd == 1 || r->ne0 == S_CONVL) CHECK_EQ_INT(t->type, QEIL_GGML_F32);
        /* lfm2: a block has attention or short-convolution tensors, as its
         * head_count_kv entry says (0: conv), never both */
        if (p->arch == QEIL_ARCH_LFM2 && r->per_layer) {
            const int conv = !((p->attn_layers >> layer) & 1);
            const int is_conv_t = strncmp(r->name, "shortconv.", 10) == 0;
            const int is_attn_t = strncmp(r->name, "attn_", 5) == 0 && strcmp(r->name, "attn_norm.weight") != 0;
            if ((conv && is_attn_t) || (!conv && is_conv_t))
                BAD(c, "tensor '%s' in a %s block", t->name, conv ? "conv" : "attention");
        }
    }
    if (p->arch == QEIL_ARCH_LFM2) {
        static const char *const attn_t[] = {"attn_q.weight", "attn_k.weight", "attn_v.weight",
                                             "attn_output.weight", "attn_q_norm.weight",
                                             "attn_k_norm.weight"};
        static const char *const conv_t[] = {"shortconv.conv.weight", "shortconv.in_proj.weight",
                                             "shortconv.out_proj.weight"};
        char nm[96];
        for (uint32_t l = 0; l < p->n_layers; l++) {
            const int conv = !((p->attn_layers >> l) & 1);
            for (size_t k = 0; k < (conv ? 3u : 6u); k++) {
                snprintf(nm, sizeof nm, "blk.%u.%s", l, conv ? conv_t[k] : attn_t[k]);
                if (qeil_gguf_find_tensor(g, nm) < 0) BAD(c, "required tensor '%s' is missing", nm);
            }
        }
    }
    char name[96];
    for (size_t i = 0; i < N_TENSORS; i++) {
        const tensor_rule *r = &k_tensors[i];
        if (!(r->req & c->bit)) continue;
        for (uint32_t l = 0; l < (r->per_layer ? p->n_layers : 1u); l++) {
            if (r->per_layer) snprintf(name, sizeof name, "blk.%u.%s", l, r->name);
            else snprintf(name, sizeof name, "%s", r->name);
            if (qeil_gguf_find_tensor(g, name) < 0) BAD(c, "required tensor '%s' is missing", name);
        }
    }
    /* an untied model has its own head; a tied one relies on llama.cpp's
     * fallback to token_embd */
    CHECK_EQ_INT(qeil_gguf_find_tensor(g, "output.weight") >= 0, !p->tied);

    /* Llama-3 RoPE: the factors the converter writes, as f32 */
    int64_t rf = qeil_gguf_find_tensor(g, "rope_freqs.weight");
    CHECK_EQ_INT(rf >= 0, p->rope_scaling_llama3);
    if (rf >= 0) {
        const qeil_gguf_tensor *t = qeil_gguf_tensor_at(g, (size_t)rf);
        const uint8_t *d = qeil_gguf_tensor_data(g, t);
        const uint32_t hd = p->d_model / p->n_heads;
        for (uint32_t i = 0; d && t->type == QEIL_GGML_F32 && i < t->ne[0]; i++) {
            float f;
            memcpy(&f, d + 4 * (size_t)i, 4);
            double want = llama3_factor(i, hd, (double)p->rope_base);
            if (!(fabs((double)f - want) <= 1e-6 * want)) {
                BAD(c, "rope_freqs[%u] = %.9g, the converter's formula gives %.9g", i, (double)f, want);
                break;
            }
        }
    }
}

/* ------------------------------------------------------------------------ */
/* The test                                                                  */
/* ------------------------------------------------------------------------ */

TEST(every_mkmodel_file_matches_llama_cpp_tables)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    char path[512], what[64];
    int n_files = 0;
    for (size_t ci = 0; ci < N_CASES; ci++) {
        for (size_t ti = 0; ti < N_TYPES; ti++) {
            qeil_mkmodel_params p;
            snprintf(what, sizeof what, "%s %s", k_cases[ci], qeil_ggml_type_name(k_types[ti]));
            if (!case_params(ctx, k_cases[ci], k_types[ti], &p)) {
                TEST_FAIL_("%s: preset unknown: %s", what, qeil_ctx_errmsg(ctx));
                continue;
            }
            snprintf(path, sizeof path, "%s/%s-%s.gguf", g_dir, k_cases[ci], qeil_ggml_type_name(k_types[ti]));
            if (qeil_mkmodel_write(ctx, &p, path) != QEIL_OK) {
                TEST_FAIL_("%s: mkmodel: %s", what, qeil_ctx_errmsg(ctx));
                continue;
            }
            qeil_gguf *g = NULL;
            if (qeil_gguf_open(ctx, path, &g) != QEIL_OK) {
                TEST_FAIL_("%s: read back: %s", what, qeil_ctx_errmsg(ctx));
                continue;
            }
            file_check c = {what, &p, ctx, g, "", arch_bit(p.arch)};
            snprintf(c.arch, sizeof c.arch, "%s", qeil_arch_name(p.arch));
            CHECK_EQ_STR(qeil_gguf_get_str(g, "general.architecture"), c.arch);
            check_keys(&c);
            check_values(&c);
            check_tensors(&c);
            qeil_gguf_free(g);
            /* and qeil itself reads what llama.cpp reads */
            qeil_engine_params ep = qeil_engine_default_params();
            ep.n_ctx = 32;
            ep.n_batch = 8;
            ep.n_threads = 1;
            qeil_engine *e = NULL;
            if (qeil_engine_open(ctx, path, &ep, &e) != QEIL_OK)
                TEST_FAIL_("%s: engine open: %s", what, qeil_ctx_errmsg(ctx));
            qeil_engine_free(e);
            unlink(path);
            n_files++;
        }
    }
    printf("  %d files checked\n", n_files);
    CHECK_EQ_INT(n_files, (int)(N_CASES * N_TYPES));
    qeil_ctx_free(ctx);
}

/* The tables can fail: a file with what mkmodel wrote before (Llama-3
 * scaling keys, pre "gpt2", head_count_kv for gpt2) is refused row by row. */
TEST(tables_refuse_old_mkmodel_metadata)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_mkmodel_params p = qeil_mkmodel_default_params();
    p.arch = QEIL_ARCH_GPT2;
    p.n_kv_heads = p.n_heads;
    qeil_gguf_writer *w = qeil_gguf_writer_create(ctx);
    CHECK(w != NULL);
    if (!w) {
        qeil_ctx_free(ctx);
        return;
    }
    CHECK_EQ_INT(qeil_gguf_writer_set_str(w, "general.architecture", "gpt2"), QEIL_OK);
    CHECK_EQ_INT(qeil_gguf_writer_set_u32(w, "gpt2.attention.head_count_kv", 4), QEIL_OK);
    CHECK_EQ_INT(qeil_gguf_writer_set_str(w, "gpt2.rope.scaling.type", "llama3"), QEIL_OK);
    CHECK_EQ_INT(qeil_gguf_writer_set_i32(w, "gpt2.block_count", 2), QEIL_OK);
    CHECK_EQ_INT(qeil_gguf_writer_set_str(w, "tokenizer.ggml.pre", "gpt2"), QEIL_OK);
    void *buf = NULL;
    size_t len = 0;
    CHECK_EQ_INT(qeil_gguf_writer_to_memory(w, &buf, &len), QEIL_OK);
    qeil_gguf *g = NULL;
    CHECK_EQ_INT(qeil_gguf_from_memory(ctx, buf, len, &g), QEIL_OK);
    if (g) {
        /* run the checks with failures counted, not reported */
        const int before = test_failed_;
        file_check c = {"old gpt2", &p, ctx, g, "gpt2", A_GPT2};
        printf("  (refusals expected below)\n");
        test_failed_ = 0;
        check_keys(&c);
        const int keys_failed = test_failed_;
        test_failed_ = 0;
        check_values(&c);
        const int values_failed = test_failed_;
        test_failed_ = before;
        CHECK(keys_failed);   /* head_count_kv, rope.scaling.type, block_count i32 */
        CHECK(values_failed); /* scaling type llama3, pre gpt2 */
        qeil_gguf_free(g);
    }
    qeil_free(ctx, buf);
    qeil_gguf_writer_free(w);

    /* lfm2 with a single head_count_kv (the llama way) and no
     * shortconv.l_cache: both refused */
    p = qeil_mkmodel_default_params();
    p.arch = QEIL_ARCH_LFM2;
    w = qeil_gguf_writer_create(ctx);
    buf = NULL;
    len = 0;
    g = NULL;
    CHECK(w && qeil_gguf_writer_set_str(w, "general.architecture", "lfm2") == QEIL_OK);
    CHECK(w && qeil_gguf_writer_set_u32(w, "lfm2.attention.head_count_kv", 2) == QEIL_OK);
    CHECK(w && qeil_gguf_writer_to_memory(w, &buf, &len) == QEIL_OK);
    CHECK(buf && qeil_gguf_from_memory(ctx, buf, len, &g) == QEIL_OK);
    if (g) {
        const int before = test_failed_;
        file_check c = {"old lfm2", &p, ctx, g, "lfm2", A_LFM2};
        test_failed_ = 0;
        check_keys(&c);
        const int keys_failed = test_failed_;
        test_failed_ = before;
        CHECK(keys_failed); /* head_count_kv not an INT32 array; l_cache missing */
        qeil_gguf_free(g);
    }
    qeil_free(ctx, buf);
    qeil_gguf_writer_free(w);
    qeil_ctx_free(ctx);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/qeil-mkmodel-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 2;
    }
    RUN(every_mkmodel_file_matches_llama_cpp_tables);
    RUN(tables_refuse_old_mkmodel_metadata);
    rmdir(g_dir);
    return test_summary("mkmodel");
}
