/* mkmodel_cases.h — the files the llama.cpp checks cover
 * (tests/test_mkmodel.c, tests/test_oracle_llamacpp.c): each preset (the
 * real-model presets shrunk to one layer (lfm2: three) of width 256: keys, value
 * types and tensor names do not depend on the sizes) and each
 * architecture's defaults (qeil mkmodel --arch), at each weight type. */
#ifndef QEIL_TEST_MKMODEL_CASES_H
#define QEIL_TEST_MKMODEL_CASES_H

#include <string.h>

#include "qeil/engine.h"

static const int k_types[] = {QEIL_GGML_F32,  QEIL_GGML_F16,  QEIL_GGML_BF16,   QEIL_GGML_Q8_0,
                              QEIL_GGML_Q4_0, QEIL_GGML_Q4_1, QEIL_GGML_Q5_0,   QEIL_GGML_Q5_1,
                              QEIL_GGML_Q4_K, QEIL_GGML_Q5_K, QEIL_GGML_Q6_K,   QEIL_GGML_IQ4_NL,
                              QEIL_GGML_IQ4_XS};
#define N_TYPES (sizeof k_types / sizeof k_types[0])

/* The presets, and the defaults of each architecture (qeil mkmodel --arch). */
static const char *const k_cases[] = {"llama-3.2-1b", "qwen2-0.5b",       "gpt2-125m",  "tiny-llama",
                                      "tiny-qwen2",   "tiny-gpt2",        "llama",      "qwen2",
                                      "gpt2",         "granite-4.0-350m", "lfm2-350m",  "tiny-granite",
                                      "tiny-lfm2",    "granite",          "lfm2"};
#define N_CASES (sizeof k_cases / sizeof k_cases[0])

static int case_params(qeil_ctx *ctx, const char *name, int type, qeil_mkmodel_params *p)
{
    *p = qeil_mkmodel_default_params();
    if (strcmp(name, "llama") == 0) {
        p->arch = QEIL_ARCH_LLAMA;
    } else if (strcmp(name, "qwen2") == 0) {
        p->arch = QEIL_ARCH_QWEN2;
    } else if (strcmp(name, "gpt2") == 0) {
        p->arch = QEIL_ARCH_GPT2;
        p->n_kv_heads = p->n_heads; /* as the CLI sets it for gpt2 */
    } else if (strcmp(name, "granite") == 0) {
        p->arch = QEIL_ARCH_GRANITE;
    } else if (strcmp(name, "lfm2") == 0) {
        p->arch = QEIL_ARCH_LFM2;
    } else if (qeil_mkmodel_preset(ctx, name, p) != QEIL_OK) {
        return 0;
    }
    if (p->d_model > 256) {
        /* one layer 256 wide with the preset's head size (64 for all three),
         * its flags (Llama-3 RoPE, tied, RoPE base) and GQA kept */
        const uint32_t hd = p->d_model / p->n_heads, ratio = p->n_heads / p->n_kv_heads;
        /* lfm2: three blocks, so the preset's pattern (conv, conv,
         * attention for LFM2) keeps both kinds */
        p->n_layers = p->arch == QEIL_ARCH_LFM2 ? 3 : 1;
        p->d_model = 256;
        p->n_heads = 256 / hd;
        p->n_kv_heads = p->n_heads >= ratio && p->n_heads % ratio == 0 ? p->n_heads / ratio : 1;
        p->d_ff = 512;
        p->vocab = 1024;
        if (p->ctx > 4096 && p->arch == QEIL_ARCH_GPT2) p->ctx = 4096;
    }
    p->type = type;
    return 1;
}

#endif
