/*
 * export_demo.c — write qeil's demo model GGUF from tools/train_demo.py's dump
 * through the project's own writer (qeil_gguf_writer) and Q8_0 quantizer
 * (src/kernels/quant.h). Build and run: tools/export_demo.sh. Format of the
 * dump and of the GGUF: docs/demo-model.md.
 *
 *     export_demo DUMP_DIR OUT.gguf
 *
 * DUMP_DIR holds manifest.txt ("key value" hyperparameters, a "tensors"
 * line, then "name ne0 ne1" per tensor, ne1 = 0 for 1-D), weights.f32 (the
 * tensors' float32 values, little-endian, in manifest order) and vocab.txt
 * ("<token type> <score> <hex of the UTF-8 text>" per token id).
 * 2-D tensors are quantized to Q8_0 (every row length is a multiple of 32),
 * 1-D tensors (norm weights) stay f32 as the engine requires.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/quant.h"
#include "qeil/gguf.h"
#include "qeil/qeil.h"
#include "qeil/tokenizer.h"

#define MAX_TOK 4096
#define MAX_TOK_LEN 64

typedef struct {
    unsigned n_layers, d, heads, ff, ctx, vocab;
    float rope_base, eps;
} hparams;

static int die(const char *what, const char *detail)
{
    fprintf(stderr, "export_demo: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    return 1;
}

static int read_header(FILE *mf, hparams *hp)
{
    char key[64];
    double v;
    memset(hp, 0, sizeof *hp);
    while (fscanf(mf, "%63s", key) == 1) {
        if (strcmp(key, "tensors") == 0) return 0;
        if (fscanf(mf, "%lf", &v) != 1) return -1;
        if (strcmp(key, "n_layers") == 0) hp->n_layers = (unsigned)v;
        else if (strcmp(key, "d") == 0) hp->d = (unsigned)v;
        else if (strcmp(key, "heads") == 0) hp->heads = (unsigned)v;
        else if (strcmp(key, "ff") == 0) hp->ff = (unsigned)v;
        else if (strcmp(key, "ctx") == 0) hp->ctx = (unsigned)v;
        else if (strcmp(key, "vocab") == 0) hp->vocab = (unsigned)v;
        else if (strcmp(key, "rope_base") == 0) hp->rope_base = (float)v;
        else if (strcmp(key, "eps") == 0) hp->eps = (float)v;
    }
    return -1;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Read vocab.txt into texts/scores/types; returns the token count or -1. */
static long read_vocab(const char *path, char (*text)[MAX_TOK_LEN], float *score, int32_t *type)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long n = 0;
    int ty;
    float sc;
    char hex[2 * MAX_TOK_LEN + 2];
    while (n < MAX_TOK && fscanf(f, "%d %f %129s", &ty, &sc, hex) == 3) {
        size_t L = strlen(hex);
        if (L % 2 || L / 2 >= MAX_TOK_LEN) {
            fclose(f);
            return -1;
        }
        for (size_t i = 0; i < L / 2; i++) {
            int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
            if (hi < 0 || lo < 0) {
                fclose(f);
                return -1;
            }
            text[n][i] = (char)(hi * 16 + lo);
        }
        text[n][L / 2] = '\0';
        score[n] = sc;
        type[n] = ty;
        n++;
    }
    fclose(f);
    return n;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: export_demo DUMP_DIR OUT.gguf\n");
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.txt", argv[1]);
    FILE *mf = fopen(path, "r");
    if (!mf) return die("cannot open", path);
    hparams hp;
    if (read_header(mf, &hp) != 0 || !hp.n_layers || !hp.d || !hp.heads || !hp.ff || !hp.vocab)
        return die("bad manifest header", path);
    snprintf(path, sizeof path, "%s/weights.f32", argv[1]);
    FILE *wf = fopen(path, "rb");
    if (!wf) return die("cannot open", path);

    static char text[MAX_TOK][MAX_TOK_LEN];
    static float score[MAX_TOK];
    static int32_t type[MAX_TOK];
    static const char *ptr[MAX_TOK];
    snprintf(path, sizeof path, "%s/vocab.txt", argv[1]);
    long nv = read_vocab(path, text, score, type);
    if (nv <= 0 || (unsigned long)nv != hp.vocab) return die("bad vocabulary", path);
    for (long i = 0; i < nv; i++) {
        ptr[i] = text[i];
        /* SentencePiece scores: earlier normal pieces win merges; with
         * single-character pieces no merge exists, but give the usual
         * descending scores so the file reads like a converted one */
        score[i] = type[i] == QEIL_TOKTYPE_NORMAL ? -(float)i : 0.0f;
    }

    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_gguf_writer *w = ctx ? qeil_gguf_writer_create(ctx) : NULL;
    if (!w) return die("out of memory", NULL);
    qeil_status st = QEIL_OK;
#define TRY(x)                                 \
    do {                                       \
        if (st == QEIL_OK) st = (x);           \
    } while (0)
    TRY(qeil_gguf_writer_set_str(w, "general.architecture", "llama"));
    TRY(qeil_gguf_writer_set_str(w, "general.name", "qeil-demo"));
    TRY(qeil_gguf_writer_set_u32(w, "general.file_type", 7)); /* llama.cpp: MOSTLY_Q8_0 */
    TRY(qeil_gguf_writer_set_u32(w, "llama.context_length", hp.ctx));
    TRY(qeil_gguf_writer_set_u32(w, "llama.embedding_length", hp.d));
    TRY(qeil_gguf_writer_set_u32(w, "llama.block_count", hp.n_layers));
    TRY(qeil_gguf_writer_set_u32(w, "llama.feed_forward_length", hp.ff));
    TRY(qeil_gguf_writer_set_u32(w, "llama.attention.head_count", hp.heads));
    TRY(qeil_gguf_writer_set_u32(w, "llama.attention.head_count_kv", hp.heads));
    TRY(qeil_gguf_writer_set_u32(w, "llama.vocab_size", hp.vocab));
    TRY(qeil_gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", hp.eps));
    TRY(qeil_gguf_writer_set_f32(w, "llama.rope.freq_base", hp.rope_base));
    TRY(qeil_gguf_writer_set_u32(w, "llama.rope.dimension_count", hp.d / hp.heads));
    TRY(qeil_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama"));
    TRY(qeil_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", ptr, (size_t)nv));
    TRY(qeil_gguf_writer_set_arr_f32(w, "tokenizer.ggml.scores", score, (size_t)nv));
    TRY(qeil_gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", type, (size_t)nv));
    TRY(qeil_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0));
    TRY(qeil_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1));
    TRY(qeil_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2));
    TRY(qeil_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", 1));
    /* no dummy prefix: "Q: ..." encodes exactly as the training did */
    TRY(qeil_gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", 0));

    char name[128];
    unsigned long ne0, ne1;
    size_t n_tensors = 0, n_q8 = 0;
    while (st == QEIL_OK && fscanf(mf, "%127s %lu %lu", name, &ne0, &ne1) == 3) {
        const size_t rows = ne1 ? ne1 : 1, n = (size_t)ne0 * rows;
        float *x = malloc(n * sizeof *x);
        if (!x) return die("out of memory", name);
        if (fread(x, sizeof *x, n, wf) != n) return die("weights.f32 is truncated at", name);
        uint64_t ne[2] = {ne0, rows};
        if (ne1) {
            if (ne0 % QEIL_QK8_0) return die("row length not a multiple of 32", name);
            const size_t row_b = ne0 / QEIL_QK8_0 * QEIL_Q8_0_BYTES;
            uint8_t *q = malloc(rows * row_b);
            if (!q) return die("out of memory", name);
            for (size_t r = 0; r < rows; r++) qeil_quantize_row_q8_0(x + r * ne0, q + r * row_b, (int64_t)ne0);
            st = qeil_gguf_writer_add_tensor(w, name, QEIL_GGML_Q8_0, 2, ne, q);
            free(q);
            n_q8++;
        } else {
            st = qeil_gguf_writer_add_tensor(w, name, QEIL_GGML_F32, 1, ne, x);
        }
        free(x);
        n_tensors++;
    }
    fclose(mf);
    if (st == QEIL_OK && fgetc(wf) != EOF) {
        fclose(wf);
        return die("weights.f32 has bytes past the last tensor", NULL);
    }
    fclose(wf);
    TRY(qeil_gguf_writer_write(w, argv[2]));
#undef TRY
    if (st != QEIL_OK) {
        int rc = die("writing the GGUF failed", qeil_ctx_errmsg(ctx));
        qeil_gguf_writer_free(w);
        qeil_ctx_free(ctx);
        return rc;
    }
    printf("export_demo: %s: %zu tensors (%zu Q8_0), vocab %ld, %u layers, d %u, ff %u\n", argv[2],
           n_tensors, n_q8, nv, hp.n_layers, hp.d, hp.ff);
    qeil_gguf_writer_free(w);
    qeil_ctx_free(ctx);
    return 0;
}
