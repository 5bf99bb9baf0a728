/* cmd_mkmodel.c — `qeil mkmodel`: write a valid GGUF with random weights and
 * a small vocabulary (qeil_mkmodel_write), for tests and benchmarks. Shapes
 * come from a preset and/or explicit options; every number is checked here
 * against the rules the engine needs, naming the option and the rule. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "opt.h"
#include "qeil/chat.h"
#include "qeil/engine.h"

#define CMD "mkmodel"

/* Upper bounds for the shape options: generous for real models (Llama-3.1
 * 405B has d_model 16384, d_ff 53248, vocab 128256), small enough that the
 * products below cannot overflow 64 bits. */
#define MAX_DIM 65536u
#define MAX_HEADS 1024u
#define MAX_FF 262144u
#define MAX_CTX (1u << 24)


static const char *const TYPES[] = {"f32",  "f16",    "bf16",   "q8_0", "q4_0",
                                    "q4_1", "q5_0",   "q5_1",   "iq4_nl", "iq4_xs",
                                    "q4_k", "q5_k", "q6_k"};
#define TYPE_LIST "f32|f16|bf16|q8_0|q4_0|q4_1|q5_0|q5_1|iq4_nl|iq4_xs|q4_k|q5_k|q6_k"
#define N_TYPES (sizeof TYPES / sizeof TYPES[0])

typedef struct {
    const char *preset, *out, *type_name, *chat;
    qeil_arch arch;
    int arch_set, tied, llama3, fallback;
    /* a shape option given on the command line (*_set) overrides the preset */
    uint64_t layers, dim, heads, kvh, ff, vocab, ctxl;
    int layers_set, dim_set, heads_set, kvh_set, ff_set, vocab_set, ctxl_set;
    uint64_t seed;
    double rope_base;
    int rope_set;
} mk_opts;

static int parse_arch(const char *cmd, const char *opt, const char *v, void *vo)
{
    static const qeil_arch archs[] = {QEIL_ARCH_LLAMA, QEIL_ARCH_QWEN2, QEIL_ARCH_GPT2,
                                      QEIL_ARCH_GRANITE, QEIL_ARCH_LFM2};
    mk_opts *o = vo;
    for (size_t i = 0; i < sizeof archs / sizeof *archs; i++)
        if (strcmp(v, qeil_arch_name(archs[i])) == 0) {
            o->arch = archs[i];
            o->arch_set = 1;
            return 0;
        }
    return cli_usage_error(cmd, "%s: '%s' is not one of llama|qwen2|gpt2|granite|lfm2", opt, v);
}

static int parse_chat(const char *cmd, const char *opt, const char *v, void *vo)
{
    qeil_chat_template ct = qeil_chat_template_from_name(v);
    if (ct == QEIL_CHAT_UNKNOWN || !qeil_chat_template_source(ct))
        return cli_usage_error(cmd, "%s: '%s' is not one of "
                                    "llama3|chatml|granite|lfm2|gemma|mistral-v7", opt, v);
    ((mk_opts *)vo)->chat = v;
    return 0;
}

#define T mk_opts
#define SHAPE(nm, mv, hp, m, lo, hi) {CLI_U64(nm, NULL, mv, hp, T, m, lo, hi), .given = CLI_GIVEN(T, m##_set)}
static const cli_optdef mk_table[] = {
    {CLI_FN("--arch", NULL, "A", "llama|qwen2|gpt2|granite|lfm2 (required unless --preset gives it)",
            parse_arch)},
    {CLI_STR("--preset", NULL, "NAME", "shapes of a known model family", T, preset)},
    SHAPE("--layers", "N", "transformer blocks (1..256)", layers, 1, QEIL_MAX_LAYERS),
    SHAPE("--dim", "D", "embedding width d_model (1..65536)", dim, 1, MAX_DIM),
    SHAPE("--heads", "H", "attention heads; must divide --dim (1..1024)", heads, 1, MAX_HEADS),
    SHAPE("--kv-heads", "H", "key/value heads; must divide --heads (1..1024)", kvh, 1, MAX_HEADS),
    SHAPE("--ff", "F", "feed-forward width (1..262144)", ff, 1, MAX_FF),
    SHAPE("--vocab", "V", "vocabulary size (8..1048576)", vocab, 8, QEIL_TOKENIZER_MAX_VOCAB),
    SHAPE("--ctx", "C", "trained context length written to the file (1..16777216)", ctxl, 1,
          MAX_CTX),
    {CLI_STR("--type", NULL, "TYPE",
             "f32|f16|bf16|q8_0|q4_0|q4_1|q5_0|q5_1|iq4_nl|iq4_xs|\nq4_k|q5_k|q6_k (2-D weights)",
             T, type_name)},
    {CLI_F64("--rope-base", NULL, "F", "RoPE frequency base (llama/qwen2; default 10000)", T,
             rope_base, 1.0, 1e9),
     .given = CLI_GIVEN(T, rope_set)},
    {CLI_FLAG("--llama3-rope", NULL, "Llama-3 RoPE: write the rope_freqs.weight factors", T,
              llama3)},
    {CLI_FLAG("--tied", NULL, "share the token embedding with the output matrix", T, tied)},
    {CLI_FLAG("--fallback", NULL,
              "allow rows the type's block does not divide: those matrices\n"
              "are stored as q5_0 (from q4_k), q5_1 (from q5_k), q8_0 (from\n"
              "q6_k) or f16, as llama.cpp's quantizer does (needed for e.g.\n"
              "qwen2-0.5b at q4_k)",
              T, fallback)},
    {CLI_FN("--chat-template", NULL, "NAME",
            "write NAME's real chat template to tokenizer.chat_template\n"
            "and its special tokens to the vocabulary (instruct-style test\n"
            "models): llama3|chatml|granite|lfm2|gemma|mistral-v7",
            parse_chat)},
    {CLI_U64("--seed", NULL, "S", "weight seed (default 1)", T, seed, 0, UINT64_MAX)},
    {CLI_STR("--output", "-o", "FILE", "output GGUF (written atomically)", T, out)},
};
#undef SHAPE
#undef T

static const cli_command mk_cmd = {
    CMD,
    "usage: qeil mkmodel --arch llama|qwen2|gpt2|granite|lfm2 [--preset NAME] [shape options]\n"
    "                    --type TYPE -o FILE.gguf\n\n"
    "Write a valid GGUF file with random weights and a small vocabulary, for tests\n"
    "and benchmarks. A preset gives the shapes of a real model (e.g. llama-3.2-1b,\n"
    "qwen2-0.5b, gpt2-125m, granite-4.0-350m, lfm2-350m); options given after it\n"
    "override single values. lfm2 files make the odd blocks attention and the\n"
    "others short convolutions (kernel 3) unless the preset says otherwise.\n",
    mk_table,
    CLI_NOPTS(mk_table),
    "rules: --dim divisible by --heads, --heads by --kv-heads; head size (--dim /\n"
    "--heads) even for llama/qwen2 (RoPE rotates pairs); --dim and --ff multiples of\n"
    "the type's block (32 for q8_0/q4_0/q4_1/q5_0/q5_1/iq4_nl, 256 for iq4_xs/\n"
    "q4_k/q5_k/q6_k) unless --fallback.\n\n"
    "examples:\n"
    "  qeil mkmodel --arch llama --layers 2 --dim 64 --heads 4 --kv-heads 2 --ff 128 \\\n"
    "      --vocab 256 --ctx 512 --type f32 -o tiny.gguf\n"
    "  qeil mkmodel --preset llama-3.2-1b --type q4_0 -o llama1b-q4_0.gguf\n",
    NULL,
};

int cmd_mkmodel(int argc, char **argv)
{
    mk_opts o = {.arch = QEIL_ARCH_LLAMA, .seed = 1};
    int prc = cli_opt_parse(&mk_cmd, argc, argv, &o);
    if (prc != CLI_OK) return prc == CLI_OPT_HELP ? CLI_OK : prc;
    const char *preset = o.preset, *out = o.out, *type_name = o.type_name, *chat = o.chat;

    if (!out) return cli_usage_error(CMD, "-o FILE is required");
    if (!type_name) return cli_usage_error(CMD, "--type is required (" TYPE_LIST ")");
    int type = -1;
    for (size_t k = 0; k < N_TYPES; k++)
        if (strcmp(type_name, TYPES[k]) == 0) type = qeil_ggml_type_from_name(TYPES[k]);
    if (type < 0)
        return cli_usage_error(CMD, "--type: '%s' is not one of " TYPE_LIST,
                               type_name);
    if (!preset && !o.arch_set) return cli_usage_error(CMD, "--arch or --preset is required");
    char *target = NULL; /* -o checked before the work; a symlink resolved */
    if (cli_out_path(CMD, "-o", out, &target) != CLI_OK) return CLI_FAIL;

    qeil_ctx *ctx = cli_ctx_create();
    if (!ctx) {
        free(target);
        return cli_fail(CMD, "out of memory");
    }
    qeil_mkmodel_params p = qeil_mkmodel_default_params();
    if (preset && qeil_mkmodel_preset(ctx, preset, &p) != QEIL_OK) {
        int rc = cli_usage_error(CMD, "--preset: %s", qeil_ctx_errmsg(ctx));
        qeil_ctx_free(ctx);
        free(target);
        return rc;
    }
    if (o.arch_set) p.arch = o.arch;
    if (o.layers_set) p.n_layers = (uint32_t)o.layers;
    if (o.dim_set) p.d_model = (uint32_t)o.dim;
    if (o.heads_set) p.n_heads = (uint32_t)o.heads;
    if (o.kvh_set) p.n_kv_heads = (uint32_t)o.kvh;
    else if ((o.heads_set && !preset) || p.arch == QEIL_ARCH_GPT2)
        p.n_kv_heads = p.n_heads; /* no GQA unless asked; gpt2 has none */
    if (o.ff_set) p.d_ff = (uint32_t)o.ff;
    if (o.vocab_set) p.vocab = (uint32_t)o.vocab;
    if (o.ctxl_set) p.ctx = (uint32_t)o.ctxl;
    p.seed = o.seed;
    if (o.rope_set) p.rope_base = (float)o.rope_base;
    if (o.llama3) p.rope_scaling_llama3 = 1;
    if (o.tied) p.tied = 1;
    p.chat_template = chat;
    p.type = type;

    /* ---- the rules, each naming the option ---- */
    int rc = CLI_OK;
    uint32_t blk = qeil_ggml_block_elems(type);
    if (p.n_kv_heads > p.n_heads)
        rc = cli_usage_error(CMD, "--kv-heads: %u is more than --heads %u", p.n_kv_heads,
                             p.n_heads);
    else if (p.d_model % p.n_heads != 0)
        rc = cli_usage_error(CMD, "--dim: %u is not divisible by --heads %u", p.d_model,
                             p.n_heads);
    else if (p.n_heads % p.n_kv_heads != 0)
        rc = cli_usage_error(CMD, "--heads: %u is not divisible by --kv-heads %u", p.n_heads,
                             p.n_kv_heads);
    else if (p.arch == QEIL_ARCH_GPT2 && p.n_kv_heads != p.n_heads)
        rc = cli_usage_error(CMD, "--kv-heads: %u differs from --heads %u (gpt2 has no "
                                  "grouped-query attention)",
                             p.n_kv_heads, p.n_heads);
    else if ((p.d_model / p.n_heads) % 2 != 0)
        rc = cli_usage_error(CMD, "--dim / --heads: head size %u is odd (the engine needs an even "
                                  "head size: RoPE rotates pairs of elements)",
                             p.d_model / p.n_heads);
    else if (!o.fallback && blk > 1 && p.d_model % blk != 0)
        rc = cli_usage_error(CMD, "--dim: %u is not a multiple of %u (%s stores each row in "
                                  "blocks of %u; --fallback stores such matrices in another type)",
                             p.d_model, blk, type_name, blk);
    else if (!o.fallback && blk > 1 && p.d_ff % blk != 0)
        rc = cli_usage_error(CMD, "--ff: %u is not a multiple of %u (%s stores each row in "
                                  "blocks of %u; ffn_down rows are d_ff long; --fallback stores "
                                  "such matrices in another type)",
                             p.d_ff, blk, type_name, blk);
    if (rc != CLI_OK) {
        qeil_ctx_free(ctx);
        free(target);
        return rc;
    }

    /* what --fallback does (qeil_mkmodel_write, llama.cpp's rule): rows
     * whose length the block does not divide go to q5_0 (from q4_k), q5_1
     * (from q5_k), q8_0 (from q6_k) when 32 divides them, else f16 */
    static const struct {
        const char *what;
        int is_ff;
    } rows[] = {{"d_model", 0}, {"d_ff", 1}};
    for (size_t k = 0; o.fallback && blk > 1 && k < 2; k++) {
        uint32_t len = rows[k].is_ff ? p.d_ff : p.d_model;
        if (len % blk == 0) continue;
        const char *to = "f16";
        if (len % 32 == 0 && type == QEIL_GGML_Q4_K) to = "q5_0";
        if (len % 32 == 0 && type == QEIL_GGML_Q5_K) to = "q5_1";
        if (len % 32 == 0 && type == QEIL_GGML_Q6_K) to = "q8_0";
        fprintf(stderr, "qeil mkmodel: --fallback: matrices with rows of %s = %u (not a multiple of "
                        "%u) are stored as %s\n",
                rows[k].what, len, blk, to);
    }
    fprintf(stderr, "qeil mkmodel: writing %s ...\n", cli_term(out));
    qeil_status st = qeil_mkmodel_write(ctx, &p, target);
    free(target);
    if (st != QEIL_OK) {
        /* a parameter the library's own rules refuse (e.g. a vocabulary too
         * small for its fixed token list) is still a usage error */
        if (st == QEIL_ERR_RANGE || st == QEIL_ERR_UNSUPPORTED)
            rc = cli_usage_error(CMD, "%s", qeil_ctx_errmsg(ctx));
        else
            rc = cli_fail(CMD, "%s", qeil_ctx_errmsg(ctx));
        qeil_ctx_free(ctx);
        return rc;
    }
    printf("wrote %s: %s, %u layers, d_model %u, heads %u/%u, d_ff %u, vocab %u, ctx %u, %s%s, "
           "seed %llu\n",
           cli_term(out), qeil_arch_name(p.arch), p.n_layers, p.d_model, p.n_heads, p.n_kv_heads, p.d_ff,
           p.vocab, p.ctx, type_name, p.tied ? ", tied embeddings" : "",
           (unsigned long long)p.seed);
    qeil_ctx_free(ctx);
    return CLI_OK;
}
