/* test_workload.c — the workload model: hand-computed FLOPs and bytes for a
 * tiny llama, qwen2 and gpt2 (arithmetic written out), decode sums against
 * an explicit per-step loop, FLOPs ≈ 2 × params on the real configs, and
 * parameter validation. Formulas: docs/workload.md. */
#include "qeil/workload.h"
#include "test.h"

/* Exact for these small integers and dyadic fractions: every value below is
 * a sum of products of small integers and halves. */
#define CHECK_EXACT(a, b) CHECK_NEAR(a, b, 0.0, 1e-9)

/* Tiny llama: 2 layers, d=8, 2 heads of 4, 1 KV head, d_ff 16, vocab 10,
 * context 64, untied, matrices F16 (2 B), 1-D tensors F32 (4 B).
 *   embedding: token_embd 8×10×2                      = 160 B
 *   block: attn_norm 8×4 = 32, wq 8×8×2 = 128, wk 8×4×2 = 64, wv 64,
 *          wo 128, ffn_norm 32, gate/up/down 3 × 8×16×2 = 768  = 1216 B
 *   head:  output_norm 32 + output 8×10×2 = 160                = 192 B */
static qeil_model_desc tiny_llama(void)
{
    qeil_model_desc md;
    memset(&md, 0, sizeof md);
    strcpy(md.name, "tiny-llama");
    md.arch = QEIL_ARCH_LLAMA;
    md.n_layers = 2;
    md.d_model = 8;
    md.n_heads = 2;
    md.n_kv_heads = 1;
    md.head_dim = 4;
    md.d_ff = 16;
    md.vocab = 10;
    md.ctx_max = 64;
    md.tied_embeddings = 0;
    md.unit_weight_B[0] = 160;
    md.unit_weight_B[1] = 1216;
    md.unit_weight_B[2] = 1216;
    md.unit_weight_B[3] = 192;
    for (int u = 0; u < 4; u++) md.unit_dtype[u] = QEIL_DT_F16;
    md.kv_type = QEIL_GGML_F16;
    md.weight_type = QEIL_GGML_F16;
    md.token_embd_B = 160;
    return md;
}

/* Tiny qwen2: the tiny llama with QKV biases (F32) and tied embeddings.
 *   block: 1216 + biases (8 + 4 + 4)×4 = 64                    = 1280 B
 *   head:  output_norm 32 + the tied table 160                 = 192 B */
static qeil_model_desc tiny_qwen2(void)
{
    qeil_model_desc md = tiny_llama();
    strcpy(md.name, "tiny-qwen2");
    md.arch = QEIL_ARCH_QWEN2;
    md.tied_embeddings = 1;
    md.unit_weight_B[1] = 1280;
    md.unit_weight_B[2] = 1280;
    md.unit_weight_B[3] = 192;
    return md;
}

/* Tiny gpt2: 2 layers, d=8, 2 heads of 4 (no GQA), d_ff 32, vocab 10,
 * context 16, tied.
 *   embedding: token_embd 8×10×2 = 160 + position_embd 8×16×2 = 256 = 416 B
 *   block: ln_1 (w,b) 2×8×4 = 64, c_attn w 8×24×2 = 384, b 24×4 = 96,
 *          c_proj w 8×8×2 = 128, b 32, ln_2 64, fc w 8×32×2 = 512, b 32×4 = 128,
 *          proj w 512, b 32                                     = 1952 B
 *   head:  ln_f (w,b) 64 + tied table 160                       = 224 B */
static qeil_model_desc tiny_gpt2(void)
{
    qeil_model_desc md;
    memset(&md, 0, sizeof md);
    strcpy(md.name, "tiny-gpt2");
    md.arch = QEIL_ARCH_GPT2;
    md.n_layers = 2;
    md.d_model = 8;
    md.n_heads = 2;
    md.n_kv_heads = 2;
    md.head_dim = 4;
    md.d_ff = 32;
    md.vocab = 10;
    md.ctx_max = 16;
    md.tied_embeddings = 1;
    md.unit_weight_B[0] = 416;
    md.unit_weight_B[1] = 1952;
    md.unit_weight_B[2] = 1952;
    md.unit_weight_B[3] = 224;
    for (int u = 0; u < 4; u++) md.unit_dtype[u] = QEIL_DT_F16;
    md.kv_type = QEIL_GGML_F16;
    md.weight_type = QEIL_GGML_F16;
    md.token_embd_B = 160;
    return md;
}

static qeil_status build(qeil_ctx *ctx, const qeil_model_desc *md, uint32_t P, uint32_t N,
                         uint32_t k, qeil_workload *wl)
{
    qeil_workload_params wp = qeil_workload_default_params();
    wp.prompt_tokens = P;
    wp.gen_tokens = N;
    wp.samples = k;
    return qeil_workload_build(ctx, md, &wp, wl);
}

TEST(defaults)
{
    qeil_workload_params wp = qeil_workload_default_params();
    CHECK_EQ_INT(wp.prompt_tokens, 512);
    CHECK_EQ_INT(wp.gen_tokens, 128);
    CHECK_EQ_INT(wp.samples, 1);
}

/* P = 3, N = 4: c̄ = 3 + (4 − 1)/2 = 4.5. q = 2×4 = 8, kv = 1×4 = 4. */
TEST(tiny_llama_by_hand)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_model_desc md = tiny_llama();
    qeil_workload wl;
    CHECK_EQ_INT(build(ctx, &md, 3, 4, 2, &wl), QEIL_OK);
    CHECK_EQ_INT(wl.n_units, 4);
    CHECK_EQ_INT(wl.samples, 2);
    CHECK_EXACT(wl.mean_ctx, 4.5);
    CHECK_EQ_STR(wl.model_name, "tiny-llama");
    CHECK_EXACT(wl.tied_B, 0);
    CHECK_EQ_INT(wl.dtype[1], QEIL_DT_F16);

    /* Embedding: a row is 160/10 = 16 B; no FLOPs; writes d×4 = 32 B per token. */
    const qeil_unit_work *e = &wl.u[0];
    CHECK_EXACT(e->pf_flops, 0);
    CHECK_EXACT(e->pf_weight_B, 3 * 16);  /* 48: three rows gathered */
    CHECK_EXACT(e->pf_act_B, 3 * 32);     /* 96 */
    CHECK_EXACT(e->pf_out_B, 3 * 32);     /* 96 */
    CHECK_EXACT(e->dc_weight_B, 0);
    CHECK_EXACT(e->dc_act_B, 16 + 32);    /* the row (per sequence) + the hidden state */
    CHECK_EXACT(e->dc_out_B, 32);
    CHECK_EXACT(e->weight_res_B, 160);
    CHECK_EXACT(e->kv_res_B, 0);
    CHECK_EXACT(e->scratch_B, 3 * 32);

    /* Block, FLOPs per token independent of context:
     *   matmuls 2×(8·8 + 2·8·4 + 8·8 + 3·8·16) = 2×576 = 1152
     *   RMSNorms 2×4×8 = 64; RoPE 3×(8+4) = 36; SwiGLU 5×16 = 80; residuals 2×8 = 16
     *   fixed = 1152 + 64 + 36 + 80 + 16 = 1348
     * per attended position: 4×4×2 (QK and AV) + 5×2 (softmax) = 42
     * prefill: 3×1348 + 42×(3·4/2 = 6) = 4044 + 252 = 4296
     * decode:  1348 + 42×4.5 = 1348 + 189 = 1537 */
    for (int l = 1; l <= 2; l++) {
        const qeil_unit_work *b = &wl.u[l];
        CHECK_EXACT(b->pf_flops, 4296);
        CHECK_EXACT(b->dc_flops, 1537);
        CHECK_EXACT(b->pf_weight_B, 1216);
        CHECK_EXACT(b->dc_weight_B, 1216);
        /* K and V of a token: 2 × 4 × 2 B = 16 B */
        CHECK_EXACT(b->pf_kv_write_B, 3 * 16);     /* 48 */
        CHECK_EXACT(b->pf_kv_read_B, 3 * 16);      /* one query block reads 3 positions */
        CHECK_EXACT(b->dc_kv_read_B, 4.5 * 16);    /* 72 */
        CHECK_EXACT(b->dc_kv_write_B, 16);
        CHECK_EXACT(b->kv_res_B, (3 + 4) * 16);    /* 112 */
        /* activations per token: 17·8 + 6·8 + 6·4 + 6·16 = 136+48+24+96 = 304 el = 1216 B */
        CHECK_EXACT(b->pf_act_B, 3 * 1216);        /* 3648 */
        CHECK_EXACT(b->dc_act_B, 1216);
        CHECK_EXACT(b->pf_out_B, 3 * 32);
        CHECK_EXACT(b->dc_out_B, 32);
        CHECK_EXACT(b->weight_res_B, 1216);
        /* scratch: 3 × 4 B × (2·8 + max(2·8 + 2·4 = 24, 3·16 = 48)) = 12 × 64 = 768 */
        CHECK_EXACT(b->scratch_B, 768);
    }

    /* Head: RMSNorm 4×8 = 32 + logits 2×8×10 = 160 → 192 FLOPs, one position in
     * prefill, one per decode step; activations (3·8 + 10)×4 = 136 B; logits 40 B. */
    const qeil_unit_work *h = &wl.u[3];
    CHECK_EXACT(h->pf_flops, 192);
    CHECK_EXACT(h->dc_flops, 192);
    CHECK_EXACT(h->pf_weight_B, 192);
    CHECK_EXACT(h->dc_weight_B, 192);
    CHECK_EXACT(h->pf_act_B, 136);
    CHECK_EXACT(h->pf_out_B, 40);
    CHECK_EXACT(h->dc_out_B, 40);
    CHECK_EXACT(h->kv_res_B, 0);
    CHECK_EXACT(h->scratch_B, (8 + 10) * 4);

    /* Totals: prefill 0 + 2×4296 + 192 = 8784; decode 2×1537 + 192 = 3266. */
    CHECK_EXACT(qeil_workload_prefill_flops(&wl), 8784);
    CHECK_EXACT(qeil_workload_decode_flops_per_token(&wl), 3266);

    /* Weights 160 + 2×1216 + 192 = 2784 B; parameters
     * 80 (table) + 2×(8 + 64 + 32 + 32 + 64 + 8 + 3×128 = 592) + 8 + 80 = 1352. */
    CHECK_EXACT(qeil_model_weight_bytes(&md), 2784);
    CHECK_EXACT(qeil_model_params(&md), 1352);
    qeil_ctx_free(ctx);
}

TEST(tiny_qwen2_biases_and_tied_head)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_model_desc md = tiny_qwen2();
    qeil_workload wl;
    CHECK_EQ_INT(build(ctx, &md, 3, 4, 1, &wl), QEIL_OK);
    /* Block: the llama fixed 1348 + bias adds (8 + 4 + 4 = 16) = 1364;
     * prefill 3×1364 + 42×6 = 4092 + 252 = 4344; decode 1364 + 189 = 1553.
     * Activations: 304 + 2×16 (each bias add reads and writes) = 336 el = 1344 B. */
    CHECK_EXACT(wl.u[1].pf_flops, 4344);
    CHECK_EXACT(wl.u[2].dc_flops, 1553);
    CHECK_EXACT(wl.u[1].dc_act_B, 1344);
    CHECK_EXACT(wl.u[1].pf_act_B, 3 * 1344);
    CHECK_EXACT(wl.u[1].weight_res_B, 1280);
    /* The tied head reads the 160-B table: it is in the head's traffic and
     * residency, reported once as tied_B, and counted once in the total:
     * 160 + 2×1280 + 192 − 160 = 2752. */
    CHECK_EXACT(wl.u[3].dc_weight_B, 192);
    CHECK_EXACT(wl.u[3].weight_res_B, 192);
    CHECK_EXACT(wl.tied_B, 160);
    CHECK_EXACT(qeil_model_weight_bytes(&md), 2752);
    /* Parameters: 80 + 2×(592 + 16) + 8 = 1304 (the table once). */
    CHECK_EXACT(qeil_model_params(&md), 1304);
    qeil_ctx_free(ctx);
}

/* P = 3, N = 4 again; q = kv = 8, q + 2kv = 24, F = 32. */
TEST(tiny_gpt2_by_hand)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_model_desc md = tiny_gpt2();
    qeil_workload wl;
    CHECK_EQ_INT(build(ctx, &md, 3, 4, 1, &wl), QEIL_OK);
    /* Embedding: token row 160/10 = 16 B + position row 256/16 = 16 B; the
     * position add is 8 FLOPs per token; activations 5×8×4 = 160 B per token. */
    const qeil_unit_work *e = &wl.u[0];
    CHECK_EXACT(e->pf_flops, 3 * 8);
    CHECK_EXACT(e->dc_flops, 8);
    CHECK_EXACT(e->pf_weight_B, 3 * 32);
    CHECK_EXACT(e->pf_act_B, 3 * 160);
    CHECK_EXACT(e->dc_act_B, 32 + 160);
    CHECK_EXACT(e->scratch_B, 3 * 2 * 32);
    /* Block fixed FLOPs per token:
     *   matmuls 2×(8·24 + 8·8 + 2·8·32) = 2×768 = 1536
     *   biases 24 + 8 + 32 + 8 = 72; LayerNorms 2×7×8 = 112; GELU 8×32 = 256;
     *   residuals 16 → 1536 + 72 + 112 + 256 + 16 = 1992
     * prefill 3×1992 + 42×6 = 5976 + 252 = 6228; decode 1992 + 189 = 2181 */
    CHECK_EXACT(wl.u[1].pf_flops, 6228);
    CHECK_EXACT(wl.u[1].dc_flops, 2181);
    /* K,V per token: 2 × 8 × 2 B = 32 B */
    CHECK_EXACT(wl.u[1].pf_kv_write_B, 96);
    CHECK_EXACT(wl.u[1].dc_kv_read_B, 4.5 * 32);
    CHECK_EXACT(wl.u[1].kv_res_B, 7 * 32);
    /* activations: 18·8 + 3·24 + 3·8 + 2·8 + 6·32 = 144+72+24+16+192 = 448 el = 1792 B */
    CHECK_EXACT(wl.u[2].dc_act_B, 1792);
    /* scratch 3 × 4 × (16 + max(32, 64)) = 960 */
    CHECK_EXACT(wl.u[2].scratch_B, 960);
    /* Head: LayerNorm 7×8 = 56 + 2×8×10 = 160 → 216 */
    CHECK_EXACT(wl.u[3].pf_flops, 216);
    CHECK_EXACT(wl.u[3].dc_flops, 216);
    CHECK_EXACT(wl.tied_B, 160);
    /* Weights 416 + 2×1952 + 224 − 160 = 4384; parameters
     * 80 + 128 + 2×(32 + 192 + 24 + 64 + 8 + 256 + 32 + 256 + 8 = 872) + 16 = 1968 */
    CHECK_EXACT(qeil_model_weight_bytes(&md), 4384);
    CHECK_EXACT(qeil_model_params(&md), 1968);
    qeil_ctx_free(ctx);
}

/* Tiled prefill KV reads: P = 200 in blocks of 64 → 4 blocks reading
 * 64, 128, 192, 200 positions = 584; × 16 B = 9344 B. */
TEST(prefill_kv_tiling)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_model_desc md = tiny_llama();
    md.ctx_max = 1024;
    qeil_workload wl;
    CHECK_EQ_INT(build(ctx, &md, 200, 1, 1, &wl), QEIL_OK);
    CHECK_EXACT(wl.u[1].pf_kv_read_B, (64 + 128 + 192 + 200) * 16);
    CHECK_EXACT(wl.u[1].pf_kv_write_B, 200 * 16);
    /* exactly one block: 64 positions read once */
    CHECK_EQ_INT(build(ctx, &md, 64, 1, 1, &wl), QEIL_OK);
    CHECK_EXACT(wl.u[1].pf_kv_read_B, 64 * 16);
    CHECK_EQ_INT(build(ctx, &md, 65, 1, 1, &wl), QEIL_OK);
    CHECK_EXACT(wl.u[1].pf_kv_read_B, (64 + 65) * 16);
    qeil_ctx_free(ctx);
}

/* N × (decode value at c̄) must equal the sum over the N steps at contexts
 * P, P+1, ..., P+N−1. A workload with N = 1 has c̄ = its prompt length, so
 * building one per step is the explicit loop. */
static void check_decode_sum(const qeil_model_desc *md, uint32_t P, uint32_t N)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_workload wl, step;
    CHECK_EQ_INT(build(ctx, md, P, N, 1, &wl), QEIL_OK);
    CHECK_NEAR(wl.mean_ctx, P + (N - 1) / 2.0, 0, 0);
    for (uint32_t u = 0; u < wl.n_units; u++) {
        double f = 0, kr = 0, kw = 0, a = 0, w = 0;
        for (uint32_t i = 0; i < N; i++) {
            if (build(ctx, md, P + i, 1, 1, &step) != QEIL_OK) {
                TEST_FAIL_("step %u: %s", i, qeil_ctx_errmsg(ctx));
                break;
            }
            f += step.u[u].dc_flops;
            kr += step.u[u].dc_kv_read_B;
            kw += step.u[u].dc_kv_write_B;
            a += step.u[u].dc_act_B;
            w += step.u[u].dc_weight_B;
        }
        CHECK_NEAR(N * wl.u[u].dc_flops, f, 1e-12, 1e-9);
        CHECK_NEAR(N * wl.u[u].dc_kv_read_B, kr, 1e-12, 1e-9);
        CHECK_NEAR(N * wl.u[u].dc_kv_write_B, kw, 1e-12, 1e-9);
        CHECK_NEAR(N * wl.u[u].dc_act_B, a, 1e-12, 1e-9);
        CHECK_NEAR(N * wl.u[u].dc_weight_B, w, 1e-12, 1e-9);
    }
    qeil_ctx_free(ctx);
}

TEST(decode_sum_equals_n_times_mean)
{
    qeil_model_desc md = tiny_llama();
    check_decode_sum(&md, 3, 4);
    check_decode_sum(&md, 17, 30);
    md = tiny_gpt2();
    check_decode_sum(&md, 5, 11);
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    CHECK_EQ_INT(qeil_model_load(ctx, "llama-3.2-1b", &md), QEIL_OK);
    check_decode_sum(&md, 100, 64);
    qeil_ctx_free(ctx);
}

/* Decode FLOPs per token ≈ 2 × (parameters that take part in a matmul): all
 * of them for tied models, all but the input table for untied ones (a row
 * gather is free) — Kaplan et al. 2020, C_forward ≈ 2N. At short context the
 * attention and elementwise terms add well under 1 %. */
TEST(decode_flops_about_twice_params)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    for (size_t i = 0; i < qeil_model_catalog_count(); i++) {
        qeil_model_desc md;
        CHECK_EQ_INT(qeil_model_catalog_get(ctx, i, &md), QEIL_OK);
        qeil_workload wl;
        CHECK_EQ_INT(build(ctx, &md, 16, 1, 1, &wl), QEIL_OK);
        double p = qeil_model_params(&md);
        double gathered = md.tied_embeddings ? 0 : (double)md.vocab * md.d_model;
        if (md.arch == QEIL_ARCH_GPT2) gathered += (double)md.ctx_max * md.d_model;
        double r = qeil_workload_decode_flops_per_token(&wl) / (2 * (p - gathered));
        if (!(r >= 1.0 && r <= 1.03)) TEST_FAIL_("%s: decode FLOPs / 2N = %.4f", md.name, r);
        if (md.tied_embeddings && md.arch != QEIL_ARCH_GPT2)
            CHECK_NEAR(qeil_workload_decode_flops_per_token(&wl), 2 * p, 0.01, 0);
        /* prefill of P tokens costs about P decode steps (attention aside) */
        double pf_blocks = qeil_workload_prefill_flops(&wl) - wl.u[md.n_layers + 1].pf_flops;
        double dc_blocks = qeil_workload_decode_flops_per_token(&wl) - wl.u[md.n_layers + 1].dc_flops;
        CHECK_NEAR(pf_blocks, 16 * dc_blocks, 0.01, 0);
    }
    qeil_ctx_free(ctx);
}

TEST(real_model_kv_and_residency)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_model_desc md;
    CHECK_EQ_INT(qeil_model_load(ctx, "llama-3.1-8b-q4", &md), QEIL_OK);
    qeil_workload wl;
    CHECK_EQ_INT(build(ctx, &md, 512, 128, 8, &wl), QEIL_OK);
    /* K and V of one token in one layer: 2 × 8 heads × 128 × 2 B = 4096 B;
     * one sequence at 640 tokens: 2,621,440 B per layer (80 MiB over 32 layers) */
    CHECK_EXACT(wl.u[1].kv_res_B, 640.0 * 4096);
    CHECK_EXACT(wl.u[1].dc_kv_read_B, (512 + 63.5) * 4096);
    CHECK_EQ_INT(wl.dtype[1], QEIL_DT_INT8);
    CHECK_EXACT(wl.tied_B, 0);
    double res = 0;
    for (uint32_t u = 0; u < wl.n_units; u++) res += wl.u[u].weight_res_B;
    CHECK_EXACT(res, qeil_model_weight_bytes(&md));
    /* decode is memory-bound: about 1 FLOP per weight byte... times 2 for q4 */
    double f = qeil_workload_decode_flops_per_token(&wl), b = 0;
    for (uint32_t u = 0; u < wl.n_units; u++) b += wl.u[u].dc_weight_B;
    CHECK(f / b > 2.5 && f / b < 3.5);
    /* a tied model: residency counts the table in both units, tied_B once */
    CHECK_EQ_INT(qeil_model_load(ctx, "qwen2-0.5b", &md), QEIL_OK);
    CHECK_EQ_INT(build(ctx, &md, 512, 128, 1, &wl), QEIL_OK);
    res = 0;
    for (uint32_t u = 0; u < wl.n_units; u++) res += wl.u[u].weight_res_B;
    CHECK_EXACT(res - wl.tied_B, qeil_model_weight_bytes(&md));
    CHECK_EXACT(wl.tied_B, 151936.0 * 896 * 2);
    qeil_ctx_free(ctx);
}

/* LFM2-2.6B (d 2048, F 10752, L 3; 22 conv + 8 attention blocks): a conv
 * block keeps no KV, only (L - 1) x d f32 values of state per sequence =
 * 2 x 2048 x 4 = 16,384 B, and its decode step costs the same at any
 * context. By hand, per token:
 *   matmuls 2 (3d² + d² + 3dF) = 2 (4 x 4,194,304 + 3 x 2048 x 10752)
 *                              = 165,675,008
 *   norms 2 x 4d = 16,384; conv + gates (2L + 2) d = 16,384;
 *   SwiGLU 5F = 53,760; residuals 2d = 4,096      -> 165,765,632 FLOPs.
 * The attention blocks hold f16 K and V of 8 x 64 each per token:
 * 2 x 512 x 2 = 2,048 B per position; at P + N = 4096 all blocks hold
 * 8 x 4096 x 2,048 + 22 x 16,384 = 67,469,312 B (a dense 30-block stack
 * would hold 251,658,240). */
TEST(lfm2_conv_blocks_have_no_kv)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_model_desc md;
    CHECK_EQ_INT(qeil_model_load(ctx, "lfm2-2.6b", &md), QEIL_OK);
    qeil_workload a, b;
    CHECK_EQ_INT(build(ctx, &md, 512, 128, 1, &a), QEIL_OK);
    CHECK_EQ_INT(build(ctx, &md, 3968, 128, 1, &b), QEIL_OK);
    const qeil_unit_work *c0 = &a.u[1 + 0], *c1 = &b.u[1 + 0]; /* block 0: conv */
    const qeil_unit_work *t0 = &a.u[1 + 2], *t1 = &b.u[1 + 2]; /* block 2: attention */
    CHECK_EQ_INT(md.layer_kind[0], QEIL_LAYER_CONV);
    CHECK_EQ_INT(md.layer_kind[2], QEIL_LAYER_ATTN);
    CHECK_NEAR(c0->dc_flops, 165765632.0, 0, 0);
    CHECK_NEAR(c1->dc_flops, c0->dc_flops, 0, 0);
    CHECK_NEAR(c0->kv_res_B, 16384.0, 0, 0);
    CHECK_NEAR(c1->kv_res_B, 16384.0, 0, 0);
    CHECK_NEAR(c0->dc_kv_read_B, 16384.0, 0, 0);
    CHECK_NEAR(c0->dc_kv_write_B, 16384.0, 0, 0);
    CHECK_NEAR(c0->pf_kv_read_B, 0.0, 0, 0);
    CHECK_NEAR(c0->pf_flops, 512.0 * c0->dc_flops, 0, 0);
    /* attention blocks grow with the context */
    CHECK_NEAR(t1->kv_res_B, 4096.0 * 2048.0, 0, 0);
    CHECK(t1->dc_flops > t0->dc_flops);
    CHECK(t1->dc_kv_read_B > t0->dc_kv_read_B);
    double kv = 0;
    for (uint32_t l = 0; l < md.n_layers; l++) kv += b.u[1 + l].kv_res_B;
    CHECK_NEAR(kv, 67469312.0, 0, 0);
    /* a conv block streams more weight bytes than an attention block (4 d²
     * vs 2.5 d² of projections): the planner sees the blocks differ */
    CHECK(c0->dc_weight_B > t0->dc_weight_B);
    qeil_ctx_free(ctx);
}

/* Granite's multipliers: the embedding unit multiplies d values per token,
 * the head divides V logits, each block scales two residual branches. */
TEST(granite_multipliers_counted)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_model_desc md;
    CHECK_EQ_INT(qeil_model_load(ctx, "granite-350m", &md), QEIL_OK);
    qeil_workload g, l;
    CHECK_EQ_INT(build(ctx, &md, 64, 8, 1, &g), QEIL_OK);
    md.arch = QEIL_ARCH_LLAMA; /* the same shapes without the multipliers */
    CHECK_EQ_INT(build(ctx, &md, 64, 8, 1, &l), QEIL_OK);
    CHECK_NEAR(g.u[0].dc_flops, 1024.0, 0, 0);
    CHECK_NEAR(l.u[0].dc_flops, 0.0, 0, 0);
    CHECK_NEAR(g.u[1].dc_flops - l.u[1].dc_flops, 2.0 * 1024, 0, 0);
    CHECK_NEAR(g.u[29].dc_flops - l.u[29].dc_flops, 100352.0, 0, 0);
    qeil_ctx_free(ctx);
}

/* The counts of the latency model's terms beyond the roofline
 * (docs/workload.md "Dispatches (ops) and attention FLOPs apart"), by hand
 * on tiny-llama, P = 3, N = 4 (c̄ = 4.5): attention per position is
 * 2·2·hd·H + 5·H = 2·2·4·2 + 10 = 42 FLOPs, so a block's prefill has
 * 42 · 3·4/2 = 252 and its decode step 42 · 4.5 = 189, both inside the
 * phase's FLOPs; calls per step: embedding 1, block 13, head 3 (gpt2:
 * 2, 15, 3). */
TEST(dispatches_and_attention_flops)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_model_desc md = tiny_llama();
    qeil_workload wl;
    CHECK_EQ_INT(build(ctx, &md, 3, 4, 1, &wl), QEIL_OK);
    CHECK_EXACT(wl.u[1].pf_attn_flops, 252);
    CHECK_EXACT(wl.u[1].dc_attn_flops, 189);
    CHECK(wl.u[1].pf_attn_flops < wl.u[1].pf_flops && wl.u[1].dc_attn_flops < wl.u[1].dc_flops);
    CHECK_EXACT(wl.u[0].pf_attn_flops + wl.u[3].pf_attn_flops + wl.u[3].dc_attn_flops, 0);
    CHECK_EXACT(wl.u[0].ops, 1);
    CHECK_EXACT(wl.u[1].ops, 13);
    CHECK_EXACT(wl.u[2].ops, 13);
    CHECK_EXACT(wl.u[3].ops, 3);
    md = tiny_gpt2();
    CHECK_EQ_INT(build(ctx, &md, 3, 4, 1, &wl), QEIL_OK);
    CHECK_EXACT(wl.u[0].ops, 2);
    CHECK_EXACT(wl.u[1].ops, 15);
    CHECK_EXACT(wl.u[wl.n_units - 1].ops, 3);
    qeil_ctx_free(ctx);
}

TEST(bad_params_rejected_with_field)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_model_desc md = tiny_llama(); /* context 64 */
    qeil_workload wl;
    CHECK_EQ_INT(build(ctx, &md, 0, 4, 1, &wl), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "prompt_tokens: 0");
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "1..63");
    CHECK_EQ_INT(build(ctx, &md, 64, 1, 1, &wl), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "prompt_tokens: 64");
    CHECK_EQ_INT(build(ctx, &md, 3, 0, 1, &wl), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "gen_tokens: 0");
    CHECK_EQ_INT(build(ctx, &md, 60, 5, 1, &wl), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "gen_tokens: 5");
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "1..4");
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "64");
    CHECK_EQ_INT(build(ctx, &md, 60, 4, 1, &wl), QEIL_OK); /* exactly fills the context */
    CHECK_EQ_INT(build(ctx, &md, 3, 4, 0, &wl), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "samples: 0");
    CHECK_EQ_INT(build(ctx, &md, 3, 4, QEIL_MAX_SAMPLES + 1, &wl), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "samples: 257");
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "1..256");
    CHECK_EQ_INT(build(ctx, &md, 3, 4, QEIL_MAX_SAMPLES, &wl), QEIL_OK);
    /* an invalid model is rejected before anything is computed */
    md.n_kv_heads = 3;
    CHECK_EQ_INT(build(ctx, &md, 3, 4, 1, &wl), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "n_kv_heads");
    md = tiny_llama();
    md.unit_weight_B[2] = NAN;
    CHECK_EQ_INT(build(ctx, &md, 3, 4, 1, &wl), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "unit_weight_B[2]");
    CHECK_EQ_INT(qeil_workload_build(ctx, NULL, NULL, &wl), QEIL_ERR_INVALID);
    qeil_ctx_free(ctx);
}

/* token_embd_B = 0 (a hand-built description that does not know it): the
 * table is derived from unit 0, and the numbers do not change. */
TEST(token_table_derived_when_not_given)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_model_desc a = tiny_gpt2(), b = tiny_gpt2();
    b.token_embd_B = 0; /* 416 × 10/(10 + 16) = 160: same */
    qeil_workload wa, wb;
    CHECK_EQ_INT(build(ctx, &a, 3, 4, 1, &wa), QEIL_OK);
    CHECK_EQ_INT(build(ctx, &b, 3, 4, 1, &wb), QEIL_OK);
    CHECK_EXACT(wb.tied_B, 160);
    CHECK_EXACT(wb.u[0].pf_weight_B, wa.u[0].pf_weight_B);
    CHECK_EXACT(qeil_model_weight_bytes(&b), qeil_model_weight_bytes(&a));
    qeil_ctx_free(ctx);
}

int main(void)
{
    RUN(defaults);
    RUN(tiny_llama_by_hand);
    RUN(tiny_qwen2_biases_and_tied_head);
    RUN(tiny_gpt2_by_hand);
    RUN(prefill_kv_tiling);
    RUN(decode_sum_equals_n_times_mean);
    RUN(decode_flops_about_twice_params);
    RUN(real_model_kv_and_residency);
    RUN(lfm2_conv_blocks_have_no_kv);
    RUN(granite_multipliers_counted);
    RUN(dispatches_and_attention_flops);
    RUN(bad_params_rejected_with_field);
    RUN(token_table_derived_when_not_given);
    return test_summary("workload");
}
