/*
 * test_engine.c — the inference engine: ops against hand-computed values,
 * mkmodel, logits against an independent PyTorch reference
 * (tests/ref/ref_forward.py) for every architecture and tensor type,
 * batching / sequence / thread-count invariants, memory accounting, and
 * every error path (each message checked).
 *
 * Tolerances (docs/engine.md, "Tolerances"), with M = max |reference logit|:
 *   f32, f16, bf16: every logit within 1e-4 M + 1e-5 (observed ~5e-7 M:
 *     float32 vs float64 rounding only).
 *   q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl, iq4_xs, q4_k, q5_k, q6_k: the
 *     reference applies
 *     the engine's activation quantization (Q8_0 / Q8_1 / Q8_K of every
 *     matmul input, Q8_1's s term included), so most positions
 *     agree to float rounding: the median position within 1e-4 M. A
 *     rounding tie (a Q8 scale or an 8-bit code sitting on a rounding
 *     boundary, ~4e-4 per block) can flip one way in float32 and the other
 *     in float64; the flip then cascades into the positions that attend to
 *     it. Such positions stay within the size of the activation
 *     quantization effect itself (measured 1-2.5 % of M against a reference
 *     without it): every logit within 5e-2 M.
 * Python reference cases SKIP when python3 with torch and numpy is missing.
 */
#include <stdint.h>
#include <unistd.h>

#include "engine/backend.h"
#include "engine/forward.h"
#include "kernels/ops.h"
#include "kernels/quant.h"
#include "qeil/engine.h"
#include "test.h"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */
/* ------------------------------------------------------------------------ */

static char g_dir[256];

static void *xmalloc(size_t n)
{
    void *p = calloc(1, n ? n : 1);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

static const char *tmp_path(const char *name)
{
    static char buf[8][512];
    static int k;
    char *b = buf[k++ % 8];
    snprintf(b, 512, "%s/%s", g_dir, name);
    return b;
}

static int make_model(qeil_ctx *ctx, const qeil_mkmodel_params *p, const char *path)
{
    qeil_status st = qeil_mkmodel_write(ctx, p, path);
    if (st != QEIL_OK) printf("  mkmodel %s: %s\n", path, qeil_ctx_errmsg(ctx));
    return st == QEIL_OK;
}

static qeil_mkmodel_params preset(const char *name)
{
    qeil_mkmodel_params p;
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    if (qeil_mkmodel_preset(ctx, name, &p) != QEIL_OK) {
        fprintf(stderr, "preset %s: %s\n", name, qeil_ctx_errmsg(ctx));
        exit(2);
    }
    qeil_ctx_free(ctx);
    return p;
}

static qeil_engine *open_engine(qeil_ctx *ctx, const char *path, int threads, uint32_t n_ctx,
                                uint32_t n_seq, uint32_t n_batch)
{
    qeil_engine_params ep = qeil_engine_default_params();
    ep.n_threads = threads;
    ep.n_ctx = n_ctx;
    ep.n_seq = n_seq;
    ep.n_batch = n_batch;
    qeil_engine *e = NULL;
    if (qeil_engine_open(ctx, path, &ep, &e) != QEIL_OK)
        printf("  open %s: %s\n", path, qeil_ctx_errmsg(ctx));
    return e;
}

/* A fixed prompt of n ids spread over the vocabulary. */
static void prompt(int32_t *ids, uint32_t n, uint32_t vocab, uint32_t salt)
{
    for (uint32_t i = 0; i < n; i++) ids[i] = (int32_t)((i * 37u + 5u + salt * 101u) % vocab);
}

static double max_abs_diff(const float *a, const float *b, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) m = d; /* NaN propagates as a failure */
    }
    return m;
}

static double max_abs(const float *a, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i]));
    return m;
}

/* ------------------------------------------------------------------------ */
/* Ops: hand-computed values                                                 */
/* ------------------------------------------------------------------------ */

TEST(ops_norms)
{
    /* x = (1, 2, 3, 4): mean(x^2) = 7.5, rms = sqrt(7.5 + eps) */
    const float x[4] = {1, 2, 3, 4}, w[4] = {1, 1, 2, 0.5f}, b[4] = {0, 1, 0, -1};
    float y[4];
    qeil_op_rmsnorm(x, w, y, 4, 0.0f);
    const double r = 1.0 / sqrt(7.5);
    CHECK_NEAR(y[0], 1 * r, 1e-6, 0);
    CHECK_NEAR(y[2], 3 * r * 2, 1e-6, 0);
    CHECK_NEAR(y[3], 4 * r * 0.5, 1e-6, 0);
    /* layernorm: mean 2.5, var = (2.25+0.25+0.25+2.25)/4 = 1.25 */
    qeil_op_layernorm(x, w, b, y, 4, 0.0f);
    const double s = 1.0 / sqrt(1.25);
    CHECK_NEAR(y[0], -1.5 * s, 1e-6, 0);
    CHECK_NEAR(y[1], -0.5 * s + 1, 1e-6, 0);
    CHECK_NEAR(y[2], 0.5 * s * 2, 1e-6, 0);
    CHECK_NEAR(y[3], 1.5 * s * 0.5 - 1, 1e-6, 0);
    /* eps matters: constant vector normalizes to 0 instead of NaN */
    const float c[4] = {2, 2, 2, 2};
    qeil_op_layernorm(c, w, b, y, 4, 1e-5f);
    CHECK_NEAR(y[0], 0.0, 0, 1e-6);
    CHECK_NEAR(y[1], 1.0, 0, 1e-6);
}

TEST(ops_rope_pairs)
{
    /* one head of 8 dims, n_rot 4 (dims 4..7 untouched); angles 90 and 180
     * degrees: cos = (0, -1), sin = (1, 0) */
    const float cs[2] = {0.0f, -1.0f}, sn[2] = {1.0f, 0.0f};
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    qeil_op_rope(x, 1, 8, 4, cs, sn, 0);
    /* normal: pairs (0,1) by 90 deg: (1,2) -> (-2, 1); (2,3) by 180: (3,4) -> (-3,-4) */
    const float want_n[8] = {-2, 1, -3, -4, 5, 6, 7, 8};
    for (int i = 0; i < 8; i++) CHECK_NEAR(x[i], want_n[i], 0, 1e-6);
    float z[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    qeil_op_rope(z, 1, 8, 4, cs, sn, 1);
    /* neox: pairs (0,2) by 90: (1,3) -> (-3, 1); (1,3) by 180: (2,4) -> (-2,-4) */
    const float want_x[8] = {-3, -2, 1, -4, 5, 6, 7, 8};
    for (int i = 0; i < 8; i++) CHECK_NEAR(z[i], want_x[i], 0, 1e-6);
    /* two heads: the second head rotates the same way */
    float h2[4] = {1, 0, 0, 1};
    const float c1[1] = {0.0f}, s1[1] = {1.0f};
    qeil_op_rope(h2, 2, 2, 2, c1, s1, 0);
    CHECK_NEAR(h2[0], 0, 0, 1e-7);
    CHECK_NEAR(h2[1], 1, 0, 1e-7);
    CHECK_NEAR(h2[2], -1, 0, 1e-7);
    CHECK_NEAR(h2[3], 0, 0, 1e-7);
}

TEST(ops_softmax_activations_attention)
{
    float s[3] = {0.0f, logf(2.0f), logf(5.0f)}; /* exp: 1, 2, 5 -> /8 */
    qeil_op_softmax(s, 3);
    CHECK_NEAR(s[0], 0.125, 1e-6, 0);
    CHECK_NEAR(s[1], 0.25, 1e-6, 0);
    CHECK_NEAR(s[2], 0.625, 1e-6, 0);
    float big[2] = {1000.0f, 1000.0f}; /* max subtraction: no overflow */
    qeil_op_softmax(big, 2);
    CHECK_NEAR(big[0], 0.5, 1e-7, 0);
    /* silu(1) = 1 / (1 + e^-1); gelu_tanh(1) = 0.5 (1 + tanh(sqrt(2/pi) 1.044715)) */
    CHECK_NEAR(qeil_op_silu(1.0f), 0.7310585786300049, 1e-6, 0);
    CHECK_NEAR(qeil_op_gelu(1.0f), 0.8411919906082768, 1e-6, 0);
    CHECK_NEAR(qeil_op_gelu(-3.0f), -0.0036373920817729943, 1e-4, 0);
    CHECK_NEAR(qeil_op_gelu(0.0f), 0.0, 0, 0);
    /* attention over two positions, head_dim 2, KV rows 4 floats apart:
     * q = (1, 0), k0 = (0, 0), k1 = (ln 3, 0), scale 1 -> p = (1/4, 3/4) */
    const float q[2] = {1, 0};
    const float k[8] = {0, 0, 9, 9, logf(3.0f), 0, 9, 9};
    const float v[8] = {4, 8, 9, 9, 0, 4, 9, 9};
    float sc[2], out[2];
    qeil_op_attention(q, k, v, 4, 2, 2, 1.0f, sc, out);
    CHECK_NEAR(out[0], 1.0, 1e-6, 0); /* 0.25 * 4 + 0.75 * 0 */
    CHECK_NEAR(out[1], 5.0, 1e-6, 0); /* 0.25 * 8 + 0.75 * 4 */
    /* one position: the output is v itself */
    qeil_op_attention(q, k, v, 4, 1, 2, 1.0f, sc, out);
    CHECK_NEAR(out[0], 4.0, 1e-7, 0);
    CHECK_NEAR(out[1], 8.0, 1e-7, 0);
}

/* Heads sharing one KV head (qeil_op_attention_heads, up to 4 at a time
 * on AVX2): every head gets the reference's bits — scores and output —
 * for 1..9 heads (groups of 4, 3, 2, 1 and mixes), key counts around the
 * 2-key step, head sizes with an odd number of 8-float blocks (the ymm
 * p.v), multiples of 16 with 1, 4, 5 and 8 zmm blocks (the AVX-512 p.v,
 * where the CPU has it), one that is no multiple of 8 (the portable
 * path), strided queries and outputs, and nothing written past a head's
 * scores or output. */
TEST(ops_attention_heads_same_bits)
{
    enum { MAXD = 136, MAXP = 41, MAXH = 9, SS = MAXP + 3, OS = MAXD + 5, QS = MAXD + 7 };
    static const uint32_t dims[] = {8, 16, 24, 64, 80, 128, 136, 12};
    static const uint32_t npos[] = {1, 2, 3, 4, 5, 40, 41};
    qeil_rng r;
    qeil_rng_seed(&r, 37);
    const size_t stride = 2 * MAXD + 8;
    float *k = malloc(MAXP * stride * sizeof *k), *v = malloc(MAXP * stride * sizeof *v);
    static float q[MAXH * QS], o1[MAXH * OS], s1[MAXH * SS], o2[MAXD], s2[MAXP];
    CHECK(k && v);
    if (!k || !v) return;
    for (size_t i = 0; i < MAXP * stride; i++) {
        k[i] = (float)(2 * qeil_rng_uniform(&r) - 1);
        v[i] = (float)(2 * qeil_rng_uniform(&r) - 1);
    }
    for (int i = 0; i < MAXH * QS; i++) q[i] = (float)(2 * qeil_rng_uniform(&r) - 1);
    for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++)
        for (size_t pi = 0; pi < sizeof npos / sizeof npos[0]; pi++)
            for (uint32_t nh = 1; nh <= MAXH; nh++) {
                const uint32_t d = dims[di], n = npos[pi];
                const float scale = 1.0f / sqrtf((float)d);
                memset(o1, 0x7f, sizeof o1); /* guards: 0x7f7f7f7f */
                memset(s1, 0x7f, sizeof s1);
                qeil_op_attention_heads(q, QS, nh, k + 5, v + 3, stride, n, d, scale, s1, SS, o1, OS);
                for (uint32_t h = 0; h < nh; h++) {
                    qeil_op_attention_ref(q + h * QS, k + 5, v + 3, stride, n, d, scale, s2, o2);
                    if (memcmp(o1 + h * OS, o2, d * sizeof *o2) != 0 ||
                        memcmp(s1 + h * SS, s2, n * sizeof *s2) != 0)
                        TEST_FAIL_("head_dim %u, %u positions, head %u of %u: differs from the reference",
                                   d, n, h, nh);
                    uint32_t guard;
                    memcpy(&guard, o1 + h * OS + d, sizeof guard);
                    if (guard != 0x7f7f7f7fu) TEST_FAIL_("head_dim %u, head %u: written past its output", d, h);
                    memcpy(&guard, s1 + h * SS + n, sizeof guard);
                    if (guard != 0x7f7f7f7fu) TEST_FAIL_("%u positions, head %u: written past its scores", n, h);
                }
            }
    free(k);
    free(v);
}

/* The AVX2 attention returns the portable definition's bits (scores and
 * output) for head sizes with and without a partial 64-float block, key
 * counts around the 4-key step, and KV rows wider than a head; the
 * definition itself is within 1e-5 of a double-precision evaluation. */
TEST(ops_attention_avx2_same_bits)
{
    /* at the scalar level qeil_op_attention is the reference: only the
     * check against double precision has anything to compare (AVX2 and
     * NEON run their own kernels) */
    const int avx2 = qeil_simd_best() != QEIL_SIMD_SCALAR;
    enum { MAXD = 264, MAXP = 300 };
    static const uint32_t dims[] = {8, 16, 24, 64, 72, 128, 136, 256, 264};
    static const uint32_t npos[] = {1, 2, 3, 4, 5, 7, 8, 9, 37, 300};
    qeil_rng r;
    qeil_rng_seed(&r, 31);
    const size_t stride = 3 * MAXD + 8;
    float *k = malloc(MAXP * stride * sizeof *k), *v = malloc(MAXP * stride * sizeof *v);
    float q[MAXD], o1[MAXD], o2[MAXD], s1[MAXP], s2[MAXP];
    CHECK(k && v);
    if (!k || !v) return;
    for (size_t i = 0; i < MAXP * stride; i++) {
        k[i] = (float)(2 * qeil_rng_uniform(&r) - 1);
        v[i] = (float)(2 * qeil_rng_uniform(&r) - 1);
    }
    for (int i = 0; i < MAXD; i++) q[i] = (float)(2 * qeil_rng_uniform(&r) - 1);
    for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++)
        for (size_t pi = 0; pi < sizeof npos / sizeof npos[0]; pi++) {
            const uint32_t d = dims[di], n = npos[pi];
            const float scale = 1.0f / sqrtf((float)d);
            qeil_op_attention(q, k + 5, v + 3, stride, n, d, scale, s1, o1);
            qeil_op_attention_ref(q, k + 5, v + 3, stride, n, d, scale, s2, o2);
            if (avx2 && (memcmp(o1, o2, d * sizeof *o1) != 0 || memcmp(s1, s2, n * sizeof *s1) != 0))
                TEST_FAIL_("head_dim %u, %u positions: %s attention differs from the reference", d, n,
                           qeil_simd_name(qeil_simd_best()));
            if (d != 72 || n != 37) continue;
            double sc[37], mx = -1e300, sum = 0;
            for (uint32_t j = 0; j < n; j++) {
                double dot = 0;
                for (uint32_t i = 0; i < d; i++) dot += (double)q[i] * k[5 + j * stride + i];
                sc[j] = dot * scale;
                mx = sc[j] > mx ? sc[j] : mx;
            }
            for (uint32_t j = 0; j < n; j++) sum += (sc[j] = exp(sc[j] - mx));
            for (uint32_t i = 0; i < d; i++) {
                double want = 0;
                for (uint32_t j = 0; j < n; j++) want += sc[j] / sum * v[3 + j * stride + i];
                CHECK_NEAR(o2[i], want, 0, 1e-5);
            }
        }
    free(k);
    free(v);
}

/* Distance in units in the last place between two positive floats. */
static int64_t ulp_dist(float a, float b)
{
    int32_t ia, ib;
    memcpy(&ia, &a, 4);
    memcpy(&ib, &b, 4);
    return ia > ib ? (int64_t)ia - ib : (int64_t)ib - ia;
}

/* qeil_op_exp within 2 ulp of expf over [-87, 88] (every 1/64 and 4096
 * random points), its clamps and NaN; the AVX2 silu_mul and softmax give
 * the scalar recipe's bits on every element, including the ragged tail. */
TEST(ops_exp)
{
    int64_t worst = 0;
    float at = 0;
    qeil_rng r;
    qeil_rng_seed(&r, 5);
    for (int i = 0; i < 175 * 64 + 4096; i++) {
        const float x = i < 175 * 64 ? -87.0f + (float)i / 64.0f
                                     : (float)(-87.0 + 175.0 * qeil_rng_uniform(&r));
        const int64_t d = ulp_dist(qeil_op_exp(x), expf(x));
        if (d > worst) {
            worst = d;
            at = x;
        }
    }
    if (worst > 2) TEST_FAIL_("qeil_op_exp(%.9g) is %lld ulp from expf", at, (long long)worst);
    CHECK(qeil_op_exp(-200.0f) == qeil_op_exp(-87.0f));
    CHECK(qeil_op_exp(1e30f) == qeil_op_exp(88.0f));
    CHECK(isfinite(qeil_op_exp(INFINITY)) && qeil_op_exp(-INFINITY) > 0);
    CHECK(isnan(qeil_op_exp(NAN)));
    CHECK(qeil_op_exp(0.0f) == 1.0f);
    enum { N = 1003 };
    float g[N], u[N], g2[N], sm[N], sm2[N];
    for (int i = 0; i < N; i++) {
        g[i] = g2[i] = (float)(40.0 * qeil_rng_uniform(&r) - 20.0);
        u[i] = (float)(2.0 * qeil_rng_uniform(&r) - 1.0);
        sm[i] = sm2[i] = (float)(30.0 * qeil_rng_uniform(&r) - 15.0);
    }
    g[7] = g2[7] = 120.0f; /* exp(-x) clamped */
    g[8] = g2[8] = -120.0f;
    qeil_op_silu_mul(g, u, N);
    int bad = 0;
    for (int i = 0; i < N; i++) bad += memcmp(&g[i], &(float){qeil_op_silu(g2[i]) * u[i]}, 4) != 0;
    CHECK_EQ_INT(bad, 0);
    CHECK(fabsf(g[7] - 120.0f * u[7]) <= 1e-5f * 120.0f && fabsf(g[8]) < 1e-30f);
    qeil_op_softmax(sm, N);
    float mx = sm2[0];
    for (int i = 1; i < N; i++) mx = sm2[i] > mx ? sm2[i] : mx;
    double sum = 0;
    for (int i = 0; i < N; i++) sum += (double)(sm2[i] = qeil_op_exp(sm2[i] - mx));
    bad = 0;
    for (int i = 0; i < N; i++) bad += memcmp(&sm[i], &(float){sm2[i] * (float)(1.0 / sum)}, 4) != 0;
    CHECK_EQ_INT(bad, 0);
}

/* ------------------------------------------------------------------------ */
/* mkmodel                                                                   */
/* ------------------------------------------------------------------------ */

TEST(mkmodel_presets_and_params)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    static const char *names[] = {"llama-3.2-1b", "qwen2-0.5b", "gpt2-125m",
                                  "tiny-llama",   "tiny-qwen2", "tiny-gpt2"};
    qeil_mkmodel_params p;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        CHECK_EQ_INT(qeil_mkmodel_preset(ctx, names[i], &p), QEIL_OK);
    CHECK_EQ_INT(qeil_mkmodel_preset(ctx, "llama-3.2-1b", &p), QEIL_OK);
    CHECK_EQ_INT(p.n_layers, 16);
    CHECK_EQ_INT(p.d_model, 2048);
    CHECK_EQ_INT(p.n_kv_heads, 8);
    CHECK_EQ_INT(p.vocab, 128256);
    CHECK_EQ_INT(p.rope_scaling_llama3, 1);
    CHECK_EQ_INT(qeil_mkmodel_preset(ctx, "qwen2-0.5b", &p), QEIL_OK);
    CHECK_EQ_INT(p.arch, QEIL_ARCH_QWEN2);
    CHECK_EQ_INT(p.d_ff, 4864);
    CHECK_EQ_INT(qeil_mkmodel_preset(ctx, "gpt3", &p), QEIL_ERR_NOTFOUND);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "tiny-gpt2");

    p = preset("tiny-llama");
    p.n_kv_heads = 3;
    CHECK_EQ_INT(qeil_mkmodel_write(ctx, &p, tmp_path("bad.gguf")), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "kv_heads");
    p = preset("tiny-gpt2");
    p.n_kv_heads = 2;
    CHECK_EQ_INT(qeil_mkmodel_write(ctx, &p, tmp_path("bad.gguf")), QEIL_ERR_RANGE);
    p = preset("tiny-llama");
    p.vocab = 100;
    CHECK_EQ_INT(qeil_mkmodel_write(ctx, &p, tmp_path("bad.gguf")), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "vocab: 100");
    p = preset("tiny-llama");
    p.type = QEIL_GGML_Q8_K; /* activations only */
    CHECK_EQ_INT(qeil_mkmodel_write(ctx, &p, tmp_path("bad.gguf")), QEIL_ERR_UNSUPPORTED);
    p = preset("tiny-qwen2");
    p.rope_scaling_llama3 = 1;
    CHECK_EQ_INT(qeil_mkmodel_write(ctx, &p, tmp_path("bad.gguf")), QEIL_ERR_RANGE);
    CHECK_EQ_INT(access(tmp_path("bad.gguf"), F_OK), -1); /* nothing written */

    /* d_model 128 with q4_k: rows of 128 fall back to q5_0, rows of d_ff 256
     * stay q4_k (llama.cpp's per-tensor fallback) */
    p = preset("tiny-llama");
    p.type = QEIL_GGML_Q4_K;
    CHECK(make_model(ctx, &p, tmp_path("mixed.gguf")));
    qeil_gguf *g = NULL;
    CHECK_EQ_INT(qeil_gguf_open(ctx, tmp_path("mixed.gguf"), &g), QEIL_OK);
    if (g) {
        const qeil_gguf_tensor *t = qeil_gguf_tensor_at(g, (size_t)qeil_gguf_find_tensor(g, "blk.0.attn_q.weight"));
        CHECK_EQ_INT(t->type, QEIL_GGML_Q5_0);
        t = qeil_gguf_tensor_at(g, (size_t)qeil_gguf_find_tensor(g, "blk.0.ffn_down.weight"));
        CHECK_EQ_INT(t->type, QEIL_GGML_Q4_K);
        t = qeil_gguf_tensor_at(g, (size_t)qeil_gguf_find_tensor(g, "blk.0.attn_norm.weight"));
        CHECK_EQ_INT(t->type, QEIL_GGML_F32);
        /* Llama 3 RoPE as llama.cpp's converter writes it: no scaling keys
         * (llama.cpp knows no "llama3" type), rope_freqs.weight [head_dim/2] */
        CHECK(qeil_gguf_find_key(g, "llama.rope.scaling.type") < 0);
        CHECK(qeil_gguf_find_key(g, "llama.rope.scaling.factor") < 0);
        int64_t rf = qeil_gguf_find_tensor(g, "rope_freqs.weight");
        CHECK(rf >= 0);
        if (rf >= 0) {
            t = qeil_gguf_tensor_at(g, (size_t)rf);
            CHECK_EQ_INT(t->type, QEIL_GGML_F32);
            CHECK_EQ_INT(t->n_dims, 1);
            CHECK_EQ_INT(t->ne[0], 16);
        }
        CHECK_EQ_STR(qeil_gguf_get_str(g, "tokenizer.ggml.model"), "llama");
        CHECK_EQ_STR(qeil_gguf_get_str(g, "tokenizer.ggml.pre"), "default");
        qeil_gguf_free(g);
    }
    /* q5_k falls back to q5_1, q6_k to q8_0 (llama.cpp's rule) */
    p = preset("tiny-llama");
    p.type = QEIL_GGML_Q5_K;
    CHECK(make_model(ctx, &p, tmp_path("mixed5.gguf")));
    p.type = QEIL_GGML_Q6_K;
    CHECK(make_model(ctx, &p, tmp_path("mixed6.gguf")));
    const char *mixed[2] = {"mixed5.gguf", "mixed6.gguf"};
    const int want_fb[2] = {QEIL_GGML_Q5_1, QEIL_GGML_Q8_0}, want_k[2] = {QEIL_GGML_Q5_K, QEIL_GGML_Q6_K};
    for (int k = 0; k < 2; k++) {
        g = NULL;
        CHECK_EQ_INT(qeil_gguf_open(ctx, tmp_path(mixed[k]), &g), QEIL_OK);
        if (!g) continue;
        const qeil_gguf_tensor *t = qeil_gguf_tensor_at(g, (size_t)qeil_gguf_find_tensor(g, "blk.0.attn_q.weight"));
        CHECK_EQ_INT(t->type, want_fb[k]);
        t = qeil_gguf_tensor_at(g, (size_t)qeil_gguf_find_tensor(g, "blk.0.ffn_down.weight"));
        CHECK_EQ_INT(t->type, want_k[k]);
        qeil_gguf_free(g);
    }
    /* same seed, same bytes; another seed, other bytes */
    p = preset("tiny-gpt2");
    CHECK(make_model(ctx, &p, tmp_path("s1.gguf")));
    CHECK(make_model(ctx, &p, tmp_path("s2.gguf")));
    p.seed = 2;
    CHECK(make_model(ctx, &p, tmp_path("s3.gguf")));
    FILE *f1 = fopen(tmp_path("s1.gguf"), "rb"), *f2 = fopen(tmp_path("s2.gguf"), "rb"),
         *f3 = fopen(tmp_path("s3.gguf"), "rb");
    CHECK(f1 && f2 && f3);
    if (f1 && f2 && f3) {
        int same12 = 1, same13 = 1, c1, c2, c3;
        do {
            c1 = fgetc(f1);
            c2 = fgetc(f2);
            c3 = fgetc(f3);
            same12 &= c1 == c2;
            same13 &= c1 == c3;
        } while (c1 != EOF);
        CHECK(same12);
        CHECK(!same13);
    }
    if (f1) fclose(f1);
    if (f2) fclose(f2);
    if (f3) fclose(f3);
    qeil_ctx_free(ctx);
}

/* ------------------------------------------------------------------------ */
/* Against the PyTorch reference                                             */
/* ------------------------------------------------------------------------ */

#define REF_N 16

typedef struct {
    const char *name;
    const char *preset;
    int type;
    uint32_t d_model; /* 0: the preset's */
    const char *file;
    float *logits;    /* engine, REF_N x vocab */
    uint32_t vocab;
    int built;
    uint64_t seed;    /* 0: the preset's weight seed */
} ref_case;

#define RC(nm, pr, ty, d) {nm, pr, ty, d, NULL, NULL, 0, 0, 0}
/* A case whose weights at the preset's seed put one element of a Q8_1
 * activation row within 4e-7 of a rounding step at position 0 of block 0:
 * the engine (f32 residual stream) and the reference (f64) round it to
 * neighbouring steps, up[0] of the FFN moves by one step (0.0025), and
 * the attention block after it passes that to every later position, so
 * the median position fails for a reason the test does not measure
 * (traced with the stage-by-stage comparison in the lfm2 commit). Another
 * seed gives the same architecture and type without the tie. */
#define RCS(nm, pr, ty, d, sd) {nm, pr, ty, d, NULL, NULL, 0, 0, sd}
static ref_case g_ref[] = {
    /* llama: GQA (4 heads, 2 KV heads) and Llama-3 rope scaling */
    RC("llama_f32", "tiny-llama", QEIL_GGML_F32, 0),
    RC("llama_f16", "tiny-llama", QEIL_GGML_F16, 0),
    RC("llama_bf16", "tiny-llama", QEIL_GGML_BF16, 0),
    RC("llama_q8_0", "tiny-llama", QEIL_GGML_Q8_0, 0),
    RC("llama_q4_0", "tiny-llama", QEIL_GGML_Q4_0, 0),
    RC("llama_q4_k", "tiny-llama", QEIL_GGML_Q4_K, 256),
    RC("llama_q6_k", "tiny-llama", QEIL_GGML_Q6_K, 256),
    RC("llama_q4_k_mixed", "tiny-llama", QEIL_GGML_Q4_K, 0), /* q5_0 + q4_k */
    RC("llama_q4_1", "tiny-llama", QEIL_GGML_Q4_1, 0),
    RC("llama_q5_0", "tiny-llama", QEIL_GGML_Q5_0, 0),
    RC("llama_q5_1", "tiny-llama", QEIL_GGML_Q5_1, 0),
    RC("llama_q5_k", "tiny-llama", QEIL_GGML_Q5_K, 256),
    RC("llama_q5_k_mixed", "tiny-llama", QEIL_GGML_Q5_K, 0), /* q5_1 + q5_k */
    RC("llama_iq4_nl", "tiny-llama", QEIL_GGML_IQ4_NL, 0),
    RC("llama_iq4_xs", "tiny-llama", QEIL_GGML_IQ4_XS, 256),
    RC("qwen2_f32", "tiny-qwen2", QEIL_GGML_F32, 0),
    RC("qwen2_f16", "tiny-qwen2", QEIL_GGML_F16, 0),
    RC("qwen2_bf16", "tiny-qwen2", QEIL_GGML_BF16, 0),
    RC("qwen2_q8_0", "tiny-qwen2", QEIL_GGML_Q8_0, 0),
    RC("qwen2_q4_0", "tiny-qwen2", QEIL_GGML_Q4_0, 0),
    RC("qwen2_q4_k", "tiny-qwen2", QEIL_GGML_Q4_K, 256),
    RC("qwen2_q6_k", "tiny-qwen2", QEIL_GGML_Q6_K, 256),
    RC("qwen2_q4_1", "tiny-qwen2", QEIL_GGML_Q4_1, 0),
    RC("qwen2_q5_0", "tiny-qwen2", QEIL_GGML_Q5_0, 0),
    RC("qwen2_q5_1", "tiny-qwen2", QEIL_GGML_Q5_1, 0),
    RC("qwen2_q5_k", "tiny-qwen2", QEIL_GGML_Q5_K, 256),
    RC("qwen2_iq4_nl", "tiny-qwen2", QEIL_GGML_IQ4_NL, 0),
    RC("qwen2_iq4_xs", "tiny-qwen2", QEIL_GGML_IQ4_XS, 256),
    RC("gpt2_f32", "tiny-gpt2", QEIL_GGML_F32, 0),
    RC("gpt2_f16", "tiny-gpt2", QEIL_GGML_F16, 0),
    RC("gpt2_bf16", "tiny-gpt2", QEIL_GGML_BF16, 0),
    RC("gpt2_q8_0", "tiny-gpt2", QEIL_GGML_Q8_0, 0),
    RC("gpt2_q4_0", "tiny-gpt2", QEIL_GGML_Q4_0, 0),
    RC("gpt2_q4_k", "tiny-gpt2", QEIL_GGML_Q4_K, 256),
    RC("gpt2_q6_k", "tiny-gpt2", QEIL_GGML_Q6_K, 256),
    RC("gpt2_q4_1", "tiny-gpt2", QEIL_GGML_Q4_1, 0),
    RC("gpt2_q5_0", "tiny-gpt2", QEIL_GGML_Q5_0, 0),
    RC("gpt2_q5_1", "tiny-gpt2", QEIL_GGML_Q5_1, 0),
    RC("gpt2_q5_k", "tiny-gpt2", QEIL_GGML_Q5_K, 256),
    RC("gpt2_iq4_nl", "tiny-gpt2", QEIL_GGML_IQ4_NL, 0),
    RC("gpt2_iq4_xs", "tiny-gpt2", QEIL_GGML_IQ4_XS, 256),
    /* granite: the four multipliers, GQA, tied */
    RC("granite_f32", "tiny-granite", QEIL_GGML_F32, 0),
    RC("granite_f16", "tiny-granite", QEIL_GGML_F16, 0),
    RC("granite_bf16", "tiny-granite", QEIL_GGML_BF16, 0),
    RC("granite_q8_0", "tiny-granite", QEIL_GGML_Q8_0, 0),
    RC("granite_q4_0", "tiny-granite", QEIL_GGML_Q4_0, 0),
    RC("granite_q4_k", "tiny-granite", QEIL_GGML_Q4_K, 256),
    RC("granite_q6_k", "tiny-granite", QEIL_GGML_Q6_K, 256),
    RC("granite_q4_1", "tiny-granite", QEIL_GGML_Q4_1, 0),
    RC("granite_q5_0", "tiny-granite", QEIL_GGML_Q5_0, 0),
    RC("granite_q5_1", "tiny-granite", QEIL_GGML_Q5_1, 0),
    RC("granite_q5_k", "tiny-granite", QEIL_GGML_Q5_K, 256),
    RC("granite_iq4_nl", "tiny-granite", QEIL_GGML_IQ4_NL, 0),
    RC("granite_iq4_xs", "tiny-granite", QEIL_GGML_IQ4_XS, 256),
    /* lfm2: conv, attention (QK-norm), conv, conv blocks */
    RC("lfm2_f32", "tiny-lfm2", QEIL_GGML_F32, 0),
    RC("lfm2_f16", "tiny-lfm2", QEIL_GGML_F16, 0),
    RC("lfm2_bf16", "tiny-lfm2", QEIL_GGML_BF16, 0),
    RC("lfm2_q8_0", "tiny-lfm2", QEIL_GGML_Q8_0, 0),
    RC("lfm2_q4_0", "tiny-lfm2", QEIL_GGML_Q4_0, 0),
    RC("lfm2_q4_k", "tiny-lfm2", QEIL_GGML_Q4_K, 256),
    RC("lfm2_q6_k", "tiny-lfm2", QEIL_GGML_Q6_K, 256),
    RCS("lfm2_q4_1", "tiny-lfm2", QEIL_GGML_Q4_1, 0, 2),
    RC("lfm2_q5_0", "tiny-lfm2", QEIL_GGML_Q5_0, 0),
    RCS("lfm2_q5_1", "tiny-lfm2", QEIL_GGML_Q5_1, 0, 2),
    RC("lfm2_q5_k", "tiny-lfm2", QEIL_GGML_Q5_K, 256),
    RC("lfm2_iq4_nl", "tiny-lfm2", QEIL_GGML_IQ4_NL, 0),
    RC("lfm2_iq4_xs", "tiny-lfm2", QEIL_GGML_IQ4_XS, 256),
};
#define N_REF (sizeof g_ref / sizeof g_ref[0])

static const char *g_python;      /* interpreter with torch + numpy, or NULL */
static int g_ref_ran;             /* the reference produced its files */
static char g_ref_skip[160];

static int python_ok(const char *py)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s -c 'import torch, numpy' >/dev/null 2>&1", py);
    return system(cmd) == 0;
}

/* The reference script: from the repository root (make test), or next to
 * this source file. */
static const char *g_script;

static const char *find_script(void)
{
    static char buf[512];
    if (access("tests/ref/ref_forward.py", R_OK) == 0) return "tests/ref/ref_forward.py";
    const char *slash = strrchr(__FILE__, '/');
    if (slash) {
        snprintf(buf, sizeof buf, "%.*s/ref/ref_forward.py", (int)(slash - __FILE__), __FILE__);
        if (access(buf, R_OK) == 0) return buf;
    }
    return NULL;
}

static const char *find_python(void)
{
    const char *env = getenv("QEIL_PYTHON");
    if (env && *env) return python_ok(env) ? env : NULL;
    if (python_ok("python3")) return "python3";
    if (python_ok("/usr/bin/python3")) return "/usr/bin/python3"; /* Debian's, past a pyenv shim */
    return NULL;
}

/* Build every model, run the engine on it, then the reference once for all. */
TEST(ref_setup)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    static char cmd[32768];
    g_script = find_script();
    int k = snprintf(cmd, sizeof cmd, "%s", g_script ? g_script : "missing");
    for (size_t i = 0; i < N_REF; i++) {
        ref_case *c = &g_ref[i];
        qeil_mkmodel_params p = preset(c->preset);
        p.type = c->type;
        if (c->seed) p.seed = c->seed;
        if (c->d_model) {
            p.d_model = c->d_model;
            p.d_ff = 2 * c->d_model;
        }
        char fn[96];
        snprintf(fn, sizeof fn, "%s.gguf", c->name);
        c->file = strdup(tmp_path(fn));
        if (!make_model(ctx, &p, c->file)) continue;
        qeil_engine *e = open_engine(ctx, c->file, 2, 64, 1, 512);
        CHECK(e != NULL);
        if (!e) continue;
        c->vocab = qeil_engine_n_vocab(e);
        c->logits = xmalloc(sizeof(float) * REF_N * c->vocab);
        int32_t ids[REF_N];
        prompt(ids, REF_N, c->vocab, 0);
        CHECK_EQ_INT(qeil_engine_eval(e, 0, ids, REF_N, c->logits, 1), QEIL_OK);
        qeil_engine_free(e);
        c->built = 1;
        k += snprintf(cmd + k, sizeof cmd - (size_t)k, " %s ", c->file);
        for (int t = 0; t < REF_N; t++) k += snprintf(cmd + k, sizeof cmd - (size_t)k, "%s%d", t ? "," : "", ids[t]);
        k += snprintf(cmd + k, sizeof cmd - (size_t)k, " %s.ref", c->file);
    }
    qeil_ctx_free(ctx);
    g_python = find_python();
    if (!g_script) {
        g_python = NULL;
        snprintf(g_ref_skip, sizeof g_ref_skip, "tests/ref/ref_forward.py not found (run from the repository root)");
        SKIP(g_ref_skip);
    }
    if (!g_python) {
        snprintf(g_ref_skip, sizeof g_ref_skip, "python3 with torch and numpy not found (set QEIL_PYTHON)");
        SKIP(g_ref_skip);
    }
    static char full[33000];
    snprintf(full, sizeof full, "%s %s > %s 2>&1", g_python, cmd, tmp_path("ref.log"));
    int rc = system(full);
    if (rc != 0) {
        printf("  reference failed (%d): see %s\n", rc, tmp_path("ref.log"));
        CHECK(rc == 0);
        return;
    }
    g_ref_ran = 1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void compare_ref(const char *name)
{
    ref_case *c = NULL;
    for (size_t i = 0; i < N_REF; i++)
        if (strcmp(g_ref[i].name, name) == 0) c = &g_ref[i];
    if (!c) {
        TEST_FAIL_("no reference case %s", name);
        return;
    }
    if (!g_python) SKIP(g_ref_skip);
    if (!c->built || !g_ref_ran) {
        TEST_FAIL_("case %s was not built or the reference did not run", name);
        return;
    }
    const size_t n = (size_t)REF_N * c->vocab;
    double *ref = xmalloc(n * sizeof *ref);
    char rp[600];
    snprintf(rp, sizeof rp, "%s.ref", c->file);
    FILE *f = fopen(rp, "rb");
    size_t got = f ? fread(ref, sizeof *ref, n, f) : 0;
    if (f) fclose(f);
    CHECK_EQ_INT(got, n);
    if (got == n) {
        double M = 0.0;
        for (size_t i = 0; i < n; i++) M = fmax(M, fabs(ref[i]));
        CHECK(M > 0.5); /* logits of order one: the comparison means something */
        const int quant = c->type != QEIL_GGML_F32 && c->type != QEIL_GGML_F16 &&
                          c->type != QEIL_GGML_BF16;
        double pos_err[REF_N], worst = 0.0;
        for (int t = 0; t < REF_N; t++) {
            pos_err[t] = 0.0;
            for (uint32_t v = 0; v < c->vocab; v++) {
                size_t i = (size_t)t * c->vocab + v;
                double d = fabs((double)c->logits[i] - ref[i]);
                if (!(d <= pos_err[t])) pos_err[t] = d;
            }
            if (!(pos_err[t] <= worst)) worst = pos_err[t];
        }
        double sorted0[REF_N];
        memcpy(sorted0, pos_err, sizeof sorted0);
        qsort(sorted0, REF_N, sizeof sorted0[0], cmp_double);
        printf("  %s: M %.4g, worst %.2e M, median position %.2e M\n", name, M, worst / M,
               sorted0[REF_N / 2] / M);
        if (!quant) {
            if (!(worst <= 1e-4 * M + 1e-5))
                TEST_FAIL_("%s: max |engine - reference| = %.3g > 1e-4 * %.4g + 1e-5", name, worst, M);
        } else {
            /* median position tight, every position within the quantization scale */
            double median = sorted0[REF_N / 2];
            if (!(median <= 1e-4 * M))
                TEST_FAIL_("%s: median position error %.3g > 1e-4 * %.4g", name, median, M);
            if (!(worst <= 5e-2 * M))
                TEST_FAIL_("%s: max |engine - reference| = %.3g > 5e-2 * %.4g", name, worst, M);
        }
    }
    free(ref);
}

#define REF_TEST(nm) \
    TEST(ref_##nm) { compare_ref(#nm); }
REF_TEST(llama_f32)
REF_TEST(llama_f16)
REF_TEST(llama_bf16)
REF_TEST(llama_q8_0)
REF_TEST(llama_q4_0)
REF_TEST(llama_q4_k)
REF_TEST(llama_q6_k)
REF_TEST(llama_q4_k_mixed)
REF_TEST(qwen2_f32)
REF_TEST(qwen2_f16)
REF_TEST(qwen2_bf16)
REF_TEST(qwen2_q8_0)
REF_TEST(qwen2_q4_0)
REF_TEST(qwen2_q4_k)
REF_TEST(qwen2_q6_k)
REF_TEST(gpt2_f32)
REF_TEST(gpt2_f16)
REF_TEST(gpt2_bf16)
REF_TEST(gpt2_q8_0)
REF_TEST(gpt2_q4_0)
REF_TEST(gpt2_q4_k)
REF_TEST(gpt2_q6_k)
REF_TEST(llama_q4_1)
REF_TEST(llama_q5_0)
REF_TEST(llama_q5_1)
REF_TEST(llama_q5_k)
REF_TEST(llama_q5_k_mixed)
REF_TEST(qwen2_q4_1)
REF_TEST(qwen2_q5_0)
REF_TEST(qwen2_q5_1)
REF_TEST(qwen2_q5_k)
REF_TEST(gpt2_q4_1)
REF_TEST(gpt2_q5_0)
REF_TEST(gpt2_q5_1)
REF_TEST(gpt2_q5_k)
REF_TEST(llama_iq4_nl)
REF_TEST(qwen2_iq4_nl)
REF_TEST(gpt2_iq4_nl)
REF_TEST(llama_iq4_xs)
REF_TEST(qwen2_iq4_xs)
REF_TEST(gpt2_iq4_xs)
REF_TEST(granite_f32)
REF_TEST(granite_f16)
REF_TEST(granite_bf16)
REF_TEST(granite_q8_0)
REF_TEST(granite_q4_0)
REF_TEST(granite_q4_k)
REF_TEST(granite_q6_k)
REF_TEST(granite_q4_1)
REF_TEST(granite_q5_0)
REF_TEST(granite_q5_1)
REF_TEST(granite_q5_k)
REF_TEST(granite_iq4_nl)
REF_TEST(granite_iq4_xs)
REF_TEST(lfm2_f32)
REF_TEST(lfm2_f16)
REF_TEST(lfm2_bf16)
REF_TEST(lfm2_q8_0)
REF_TEST(lfm2_q4_0)
REF_TEST(lfm2_q4_k)
REF_TEST(lfm2_q6_k)
REF_TEST(lfm2_q4_1)
REF_TEST(lfm2_q5_0)
REF_TEST(lfm2_q5_1)
REF_TEST(lfm2_q5_k)
REF_TEST(lfm2_iq4_nl)
REF_TEST(lfm2_iq4_xs)

/* The comparisons above can fail: RoPE frequencies matter. The same
 * weights without the Llama-3 factors (rope_freqs.weight) give the same logits at
 * position 0 (angle 0) and logits far beyond the tolerance later on. */
TEST(llama3_scaling_changes_logits)
{
    ref_case *c = NULL;
    for (size_t i = 0; i < N_REF; i++)
        if (strcmp(g_ref[i].name, "llama_f32") == 0) c = &g_ref[i];
    if (!c || !c->built) {
        TEST_FAIL_("llama_f32 not built");
        return;
    }
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_mkmodel_params p = preset("tiny-llama");
    p.rope_scaling_llama3 = 0; /* different rope frequencies, same weights */
    CHECK(make_model(ctx, &p, tmp_path("noscale.gguf")));
    qeil_engine *e = open_engine(ctx, tmp_path("noscale.gguf"), 1, 64, 1, 512);
    CHECK(e != NULL);
    if (e) {
        float *lg = xmalloc(sizeof(float) * REF_N * c->vocab);
        int32_t ids[REF_N];
        prompt(ids, REF_N, c->vocab, 0);
        CHECK_EQ_INT(qeil_engine_eval(e, 0, ids, REF_N, lg, 1), QEIL_OK);
        /* position 0 has angle 0: identical; later positions must differ */
        double d0 = max_abs_diff(lg, c->logits, c->vocab);
        double dl = max_abs_diff(lg + (REF_N - 1) * (size_t)c->vocab, c->logits + (REF_N - 1) * (size_t)c->vocab, c->vocab);
        CHECK(d0 < 1e-5);
        CHECK(dl > 1e-3);
        free(lg);
        qeil_engine_free(e);
    }
    qeil_ctx_free(ctx);
}

/* ------------------------------------------------------------------------ */
/* Invariants: batching, sequences, threads                                  */
/* ------------------------------------------------------------------------ */

/* Relative comparison of two logit vectors: within 1e-5 of max |a|. */
static int close_rel(const float *a, const float *b, size_t n, double rel)
{
    double m = max_abs(a, n);
    double d = max_abs_diff(a, b, n);
    if (!(d <= rel * m)) {
        printf("  max diff %.3g vs scale %.3g\n", d, m);
        return 0;
    }
    return 1;
}

static void batch_vs_single(const char *presetname, int type, uint32_t d_model)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_mkmodel_params p = preset(presetname);
    p.type = type;
    if (d_model) {
        p.d_model = d_model;
        p.d_ff = 2 * d_model;
    }
    const char *path = tmp_path("bvs.gguf");
    CHECK(make_model(ctx, &p, path));
    const uint32_t n = 20;
    qeil_engine *whole = open_engine(ctx, path, 2, 64, 1, 512);
    qeil_engine *chunked = open_engine(ctx, path, 2, 64, 1, 6); /* 6 + 6 + 6 + 2 */
    qeil_engine *single = open_engine(ctx, path, 2, 64, 1, 512);
    qeil_engine *halves = open_engine(ctx, path, 2, 64, 1, 10); /* 10 + 10 */
    CHECK(whole && chunked && single && halves);
    if (whole && chunked && single && halves) {
        const uint32_t V = qeil_engine_n_vocab(whole);
        float *a = xmalloc(sizeof(float) * n * V), *b = xmalloc(sizeof(float) * n * V),
              *c = xmalloc(sizeof(float) * n * V), *h = xmalloc(sizeof(float) * n * V),
              *last = xmalloc(sizeof(float) * V);
        int32_t ids[32];
        prompt(ids, n, V, 3);
        CHECK_EQ_INT(qeil_engine_eval(whole, 0, ids, n, a, 1), QEIL_OK);
        CHECK_EQ_INT(qeil_engine_eval(chunked, 0, ids, n, b, 1), QEIL_OK);
        CHECK_EQ_INT(qeil_engine_eval(halves, 0, ids, n, h, 1), QEIL_OK);
        for (uint32_t i = 0; i < n; i++)
            CHECK_EQ_INT(qeil_engine_eval(single, 0, &ids[i], 1, c + (size_t)i * V, 0), QEIL_OK);
        /* Every matmul the engine issues gives each output the same
         * arithmetic whatever the batch: the interleaved (x8) kernel on VNNI
         * CPUs for Q4_0/Q8_0/Q4_K, the per-row tiles otherwise (Q4_1, Q5_0,
         * Q5_1, Q5_K everywhere; the packed
         * batch path is only for GGUF-row weights passed to qeil_matmul
         * directly). So whole, 10 + 10, 6 + 6 + 6 + 2 and token by token
         * agree bit for bit. */
        CHECK(memcmp(a, h, sizeof(float) * n * V) == 0);
        CHECK(memcmp(a, b, sizeof(float) * n * V) == 0);
        CHECK(memcmp(b, c, sizeof(float) * n * V) == 0);
        /* last-token-only logits are the last row of all_logits */
        qeil_engine_seq_reset(whole, 0);
        CHECK_EQ_INT(qeil_engine_seq_len(whole, 0), 0);
        CHECK_EQ_INT(qeil_engine_eval(whole, 0, ids, n, last, 0), QEIL_OK);
        CHECK(close_rel(a + (size_t)(n - 1) * V, last, V, 1e-5));
        CHECK_EQ_INT(qeil_engine_seq_len(whole, 0), n);
        CHECK_EQ_INT(qeil_engine_seq_len(chunked, 0), n);
        /* NULL logits: state advances, nothing written */
        CHECK_EQ_INT(qeil_engine_eval(whole, 0, ids, 2, NULL, 0), QEIL_OK);
        CHECK_EQ_INT(qeil_engine_seq_len(whole, 0), n + 2);
        free(a);
        free(b);
        free(c);
        free(h);
        free(last);
    }
    qeil_engine_free(whole);
    qeil_engine_free(chunked);
    qeil_engine_free(single);
    qeil_engine_free(halves);
    qeil_ctx_free(ctx);
}

TEST(batch_prefill_equals_token_by_token)
{
    batch_vs_single("tiny-llama", QEIL_GGML_F32, 0);
    batch_vs_single("tiny-gpt2", QEIL_GGML_F16, 0);
    batch_vs_single("tiny-qwen2", QEIL_GGML_Q4_K, 256);
    batch_vs_single("tiny-llama", QEIL_GGML_Q4_0, 0);
    batch_vs_single("tiny-gpt2", QEIL_GGML_Q8_0, 0);
    batch_vs_single("tiny-qwen2", QEIL_GGML_Q4_1, 0);
    batch_vs_single("tiny-llama", QEIL_GGML_Q5_0, 0);
    batch_vs_single("tiny-gpt2", QEIL_GGML_Q5_1, 0);
    batch_vs_single("tiny-qwen2", QEIL_GGML_Q5_K, 256);
    batch_vs_single("tiny-gpt2", QEIL_GGML_IQ4_NL, 0);
    batch_vs_single("tiny-llama", QEIL_GGML_IQ4_XS, 256);
    batch_vs_single("tiny-granite", QEIL_GGML_F32, 0);
    batch_vs_single("tiny-granite", QEIL_GGML_Q4_K, 256);
    /* lfm2: the conv state carries positions across chunks of 6, 10 and 1 */
    batch_vs_single("tiny-lfm2", QEIL_GGML_F32, 0);
    batch_vs_single("tiny-lfm2", QEIL_GGML_Q8_0, 0);
    batch_vs_single("tiny-lfm2", QEIL_GGML_Q4_K, 256);
}

TEST(eval_batch_equals_separate_evals)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_mkmodel_params p = preset("tiny-qwen2");
    p.type = QEIL_GGML_Q8_0;
    const char *path = tmp_path("eb.gguf");
    CHECK(make_model(ctx, &p, path));
    qeil_engine *b = open_engine(ctx, path, 3, 64, 4, 512);
    qeil_engine *s = open_engine(ctx, path, 1, 64, 4, 512);
    CHECK(b && s);
    if (b && s) {
        const uint32_t V = qeil_engine_n_vocab(b), m = 3;
        /* three sequences with prompts of different lengths (5, 9, 2) */
        const uint32_t len[3] = {5, 9, 2};
        const uint32_t seqs[3] = {2, 0, 3};
        int32_t ids[16], next[3] = {7, 300, 42};
        for (uint32_t i = 0; i < m; i++) {
            prompt(ids, len[i], V, i + 1);
            CHECK_EQ_INT(qeil_engine_eval(b, seqs[i], ids, len[i], NULL, 0), QEIL_OK);
            CHECK_EQ_INT(qeil_engine_eval(s, seqs[i], ids, len[i], NULL, 0), QEIL_OK);
        }
        float *lb = xmalloc(sizeof(float) * m * V), *ls = xmalloc(sizeof(float) * V);
        CHECK_EQ_INT(qeil_engine_eval_batch(b, seqs, next, m, lb), QEIL_OK);
        for (uint32_t i = 0; i < m; i++) {
            CHECK_EQ_INT(qeil_engine_eval(s, seqs[i], &next[i], 1, ls, 0), QEIL_OK);
            CHECK(close_rel(ls, lb + (size_t)i * V, V, 1e-5));
            CHECK_EQ_INT(qeil_engine_seq_len(b, seqs[i]), len[i] + 1);
        }
        CHECK_EQ_INT(qeil_engine_seq_len(b, 1), 0); /* untouched */
        /* a second step keeps agreeing */
        int32_t next2[3] = {1, 2, 3};
        CHECK_EQ_INT(qeil_engine_eval_batch(b, seqs, next2, m, lb), QEIL_OK);
        for (uint32_t i = 0; i < m; i++) {
            CHECK_EQ_INT(qeil_engine_eval(s, seqs[i], &next2[i], 1, ls, 0), QEIL_OK);
            CHECK(close_rel(ls, lb + (size_t)i * V, V, 1e-5));
        }
        free(lb);
        free(ls);
    }
    qeil_engine_free(b);
    qeil_engine_free(s);
    qeil_ctx_free(ctx);
}

TEST(seq_copy_fork_equals_rerun)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_mkmodel_params p = preset("tiny-llama");
    const char *path = tmp_path("fork.gguf");
    CHECK(make_model(ctx, &p, path));
    qeil_engine *e = open_engine(ctx, path, 2, 64, 3, 512);
    CHECK(e != NULL);
    if (e) {
        const uint32_t V = qeil_engine_n_vocab(e);
        int32_t pr[10], cont_a[3] = {11, 12, 13}, cont_b[2] = {400, 401}, all[13];
        prompt(pr, 10, V, 9);
        float *x = xmalloc(sizeof(float) * V), *y = xmalloc(sizeof(float) * V);
        CHECK_EQ_INT(qeil_engine_eval(e, 0, pr, 10, NULL, 0), QEIL_OK);
        CHECK_EQ_INT(qeil_engine_seq_copy(e, 0, 1), QEIL_OK);
        CHECK_EQ_INT(qeil_engine_seq_len(e, 1), 10);
        /* seq 1 continues with cont_a, seq 0 with cont_b: they must not mix */
        CHECK_EQ_INT(qeil_engine_eval(e, 1, cont_a, 3, x, 0), QEIL_OK);
        CHECK_EQ_INT(qeil_engine_eval(e, 0, cont_b, 2, NULL, 0), QEIL_OK);
        memcpy(all, pr, sizeof pr);
        memcpy(all + 10, cont_a, sizeof cont_a);
        CHECK_EQ_INT(qeil_engine_eval(e, 2, all, 13, y, 0), QEIL_OK);
        CHECK(close_rel(y, x, V, 1e-5));
        /* copy onto a longer sequence shortens it to the source */
        CHECK_EQ_INT(qeil_engine_seq_copy(e, 0, 2), QEIL_OK);
        CHECK_EQ_INT(qeil_engine_seq_len(e, 2), 12);
        CHECK_EQ_INT(qeil_engine_seq_copy(e, 1, 1), QEIL_OK); /* self: no-op */
        CHECK_EQ_INT(qeil_engine_seq_len(e, 1), 13);
        CHECK_EQ_INT(qeil_engine_seq_copy(e, 0, 3), QEIL_ERR_RANGE);
        CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "n_seq 3");
        free(x);
        free(y);
    }
    qeil_engine_free(e);
    qeil_ctx_free(ctx);
}

static void thread_case(const char *presetname, int type, uint32_t d_model, uint32_t n_heads,
                        uint32_t n_kv_heads)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_mkmodel_params p = preset(presetname);
    p.type = type;
    if (d_model) {
        p.d_model = d_model;
        p.d_ff = 2 * d_model;
    }
    if (n_heads) {
        p.n_heads = n_heads;
        p.n_kv_heads = n_kv_heads;
    }
    const char *path = tmp_path("thr.gguf");
    CHECK(make_model(ctx, &p, path));
    float *ref = NULL;
    size_t n = 0;
    for (int th = 1; th <= 3; th++) {
        qeil_engine *e = open_engine(ctx, path, th, 64, 2, 8);
        CHECK(e != NULL);
        if (!e) continue;
        const uint32_t V = qeil_engine_n_vocab(e);
        n = (size_t)(12 + 2 + 2) * V;
        float *lg = xmalloc(sizeof(float) * n);
        int32_t ids[12], t2[2] = {9, 10};
        const uint32_t seqs[2] = {0, 1};
        prompt(ids, 12, V, 4);
        CHECK_EQ_INT(qeil_engine_eval(e, 0, ids, 12, lg, 1), QEIL_OK); /* chunks of 8 + 4 */
        CHECK_EQ_INT(qeil_engine_seq_copy(e, 0, 1), QEIL_OK);
        CHECK_EQ_INT(qeil_engine_eval_batch(e, seqs, t2, 2, lg + (size_t)12 * V), QEIL_OK);
        CHECK_EQ_INT(qeil_engine_eval_batch(e, seqs, t2, 2, lg + (size_t)14 * V), QEIL_OK);
        if (!ref) {
            ref = lg;
        } else {
            if (memcmp(ref, lg, n * sizeof(float)) != 0)
                TEST_FAIL_("%s %s: logits with %d threads differ from 1 thread (max %.3g)", presetname,
                           qeil_ggml_type_name(type), th, max_abs_diff(ref, lg, n));
            free(lg);
        }
        qeil_engine_free(e);
    }
    free(ref);
    qeil_ctx_free(ctx);
}


/* ------------------------------------------------------------------------ */
/* lfm2: the conv state per sequence; granite and lfm2 placement             */
/* ------------------------------------------------------------------------ */

/* tiny-lfm2 (conv, attention, conv, conv): eval_batch of three sequences
 * equals separate evals; a fork by seq_copy continues as a rerun would
 * (the copied conv state, not the destination's); a reset sequence
 * reused for another prompt equals a fresh one (the stale state is never
 * read); memory counts K/V of the one attention block and the states of
 * the three conv blocks. */
TEST(lfm2_sequences_state)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_mkmodel_params p = preset("tiny-lfm2");
    p.type = QEIL_GGML_Q8_0;
    const char *path = tmp_path("lfm2seq.gguf");
    CHECK(make_model(ctx, &p, path));
    qeil_engine *b = open_engine(ctx, path, 2, 64, 4, 512);
    qeil_engine *s = open_engine(ctx, path, 1, 64, 4, 512);
    CHECK(b && s);
    if (b && s) {
        const uint32_t V = qeil_engine_n_vocab(b), m = 3;
        const uint32_t len[3] = {5, 9, 1}, seqs[3] = {2, 0, 3};
        int32_t ids[16], next[3] = {7, 300, 42}, next2[3] = {1, 2, 3};
        float *lb = xmalloc(sizeof(float) * m * V), *ls = xmalloc(sizeof(float) * V),
              *x = xmalloc(sizeof(float) * V), *y = xmalloc(sizeof(float) * V);
        for (uint32_t i = 0; i < m; i++) {
            prompt(ids, len[i], V, i + 1);
            CHECK_EQ_INT(qeil_engine_eval(b, seqs[i], ids, len[i], NULL, 0), QEIL_OK);
            CHECK_EQ_INT(qeil_engine_eval(s, seqs[i], ids, len[i], NULL, 0), QEIL_OK);
        }
        for (int step = 0; step < 2; step++) {
            const int32_t *nx = step ? next2 : next;
            CHECK_EQ_INT(qeil_engine_eval_batch(b, seqs, nx, m, lb), QEIL_OK);
            for (uint32_t i = 0; i < m; i++) {
                CHECK_EQ_INT(qeil_engine_eval(s, seqs[i], &nx[i], 1, ls, 0), QEIL_OK);
                CHECK(close_rel(ls, lb + (size_t)i * V, V, 1e-5));
            }
        }

        /* fork: seq 1 <- seq 0 (11 tokens), both continue differently */
        int32_t pr[10], cont_a[3] = {11, 12, 13}, cont_b[2] = {400, 401}, all[13];
        prompt(pr, 10, V, 9);
        qeil_engine_seq_reset(s, 0);
        qeil_engine_seq_reset(s, 1);
        CHECK_EQ_INT(qeil_engine_eval(s, 1, cont_b, 2, NULL, 0), QEIL_OK); /* a state to overwrite */
        CHECK_EQ_INT(qeil_engine_eval(s, 0, pr, 10, NULL, 0), QEIL_OK);
        CHECK_EQ_INT(qeil_engine_seq_copy(s, 0, 1), QEIL_OK);
        CHECK_EQ_INT(qeil_engine_eval(s, 1, cont_a, 3, x, 0), QEIL_OK);
        CHECK_EQ_INT(qeil_engine_eval(s, 0, cont_b, 2, NULL, 0), QEIL_OK);
        memcpy(all, pr, sizeof pr);
        memcpy(all + 10, cont_a, sizeof cont_a);
        qeil_engine_seq_reset(s, 2); /* reused: held 6 tokens of another prompt */
        CHECK_EQ_INT(qeil_engine_eval(s, 2, all, 13, y, 0), QEIL_OK);
        CHECK(close_rel(y, x, V, 1e-5));
        /* and a fresh engine agrees with the reused sequence */
        qeil_engine *f = open_engine(ctx, path, 1, 64, 1, 512);
        CHECK(f != NULL);
        if (f) {
            CHECK_EQ_INT(qeil_engine_eval(f, 0, all, 13, x, 0), QEIL_OK);
            CHECK(memcmp(x, y, sizeof(float) * V) == 0);
            qeil_engine_free(f);
        }

        /* memory: 1 attention block x 2 (K, V) x 4 seq x 64 ctx x kv_dim 64
         * + 3 conv blocks x 4 seq x (L - 1 = 2) x d 128, 4 bytes each */
        const qeil_model_desc *md = qeil_engine_desc(b);
        CHECK_EQ_INT(md->layer_kind[0], QEIL_LAYER_CONV);
        CHECK_EQ_INT(md->layer_kind[1], QEIL_LAYER_ATTN);
        CHECK_EQ_INT(md->conv_L, 3);
        qeil_engine_memory mem = qeil_engine_memory_use(b);
        CHECK_EQ_INT(mem.kv_B, (2u * 4u * 64u * 64u + 3u * 4u * 2u * 128u) * 4u);
        free(lb);
        free(ls);
        free(x);
        free(y);
    }
    qeil_engine_free(b);
    qeil_engine_free(s);
    qeil_ctx_free(ctx);
}

/* The ops an architecture needs beyond the common table: granite's scale
 * in every unit, lfm2's shortconv in conv blocks only. A backend table
 * without one (both shipped backends have both) is refused for exactly
 * those units; set_placement turns that into QEIL_ERR_UNSUPPORTED naming
 * unit, backend and op before anything moves. */
TEST(placement_refuses_missing_ops)
{
    qeil_backend bare = qeil_backend_cpu;
    bare.scale = NULL;
    bare.shortconv = NULL;
    qeil_fwd_hparams hp;
    memset(&hp, 0, sizeof hp);
    hp.n_layers = 2;
    hp.emb_scale = 12.0f; /* granite */
    hp.res_scale = hp.logit_scale = 1.0f;
    for (uint32_t u = 0; u < 4; u++) {
        CHECK_EQ_STR(qeil_fwd_missing_op(&bare, &hp, u, NULL), "scale");
        CHECK(qeil_fwd_missing_op(&qeil_backend_cpu, &hp, u, NULL) == NULL);
        CHECK(qeil_fwd_missing_op(&qeil_backend_vulkan, &hp, u, NULL) == NULL);
    }
    hp.emb_scale = 1.0f; /* lfm2: no multipliers */
    qeil_fwd_layer conv, attn;
    memset(&conv, 0, sizeof conv);
    memset(&attn, 0, sizeof attn);
    conv.conv_in.data = &hp; /* any non-NULL: a conv block */
    CHECK_EQ_STR(qeil_fwd_missing_op(&bare, &hp, 1, &conv), "shortconv");
    CHECK(qeil_fwd_missing_op(&bare, &hp, 2, &attn) == NULL);
    CHECK(qeil_fwd_missing_op(&bare, &hp, 0, NULL) == NULL);
    CHECK(qeil_fwd_missing_op(&qeil_backend_cpu, &hp, 1, &conv) == NULL);
    CHECK(qeil_fwd_missing_op(&qeil_backend_vulkan, &hp, 1, &conv) == NULL);
}

/* Granite's multipliers each change the logits (the reference checks they
 * change them the right way): a file whose four keys are 1 (and attention
 * scale 1/sqrt(head_dim)) gives tiny-llama-like logits that differ. And
 * logit_scale is required, as llama.cpp requires it. */
TEST(granite_multipliers_matter)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_mkmodel_params p = preset("tiny-granite");
    const char *pa = tmp_path("gr_a.gguf"), *pb = tmp_path("gr_b.gguf");
    CHECK(make_model(ctx, &p, pa));
    p.embedding_scale = p.residual_scale = p.logit_scale = 1.0f;
    p.attention_scale = 1.0f / sqrtf(32.0f);
    CHECK(make_model(ctx, &p, pb));
    qeil_engine *a = open_engine(ctx, pa, 1, 32, 1, 8), *b = open_engine(ctx, pb, 1, 32, 1, 8);
    CHECK(a && b);
    if (a && b) {
        const uint32_t V = qeil_engine_n_vocab(a);
        float *la = xmalloc(sizeof(float) * V), *lb = xmalloc(sizeof(float) * V);
        int32_t ids[6];
        prompt(ids, 6, V, 1);
        CHECK_EQ_INT(qeil_engine_eval(a, 0, ids, 6, la, 0), QEIL_OK);
        CHECK_EQ_INT(qeil_engine_eval(b, 0, ids, 6, lb, 0), QEIL_OK);
        CHECK(max_abs_diff(la, lb, V) > 1e-2 * max_abs(lb, V));
        free(la);
        free(lb);
    }
    qeil_engine_free(a);
    qeil_engine_free(b);
    /* without granite.logit_scale the file is refused, naming the key: the
     * key renamed in place (same length) in a copy of the file */
    FILE *f = fopen(pa, "rb");
    long n = -1;
    char *buf = NULL;
    if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = xmalloc((size_t)n);
        if (fread(buf, 1, (size_t)n, f) != (size_t)n) n = -1;
    }
    if (f) fclose(f);
    CHECK(n > 0);
    int renamed = 0;
    for (long i = 0; buf && n > 0 && i + 19 <= n; i++)
        if (memcmp(buf + i, "granite.logit_scale", 19) == 0) {
            buf[i + 18] = 'X';
            renamed++;
        }
    CHECK_EQ_INT(renamed, 1);
    f = buf ? fopen(pb, "wb") : NULL;
    CHECK(f && fwrite(buf, 1, (size_t)n, f) == (size_t)n);
    if (f) fclose(f);
    free(buf);
    qeil_engine *c = open_engine(ctx, pb, 1, 32, 1, 8);
    CHECK(c == NULL);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "granite.logit_scale");
    qeil_engine_free(c);
    qeil_ctx_free(ctx);
}

/* The cpu backend's element-wise activations split long vectors over the
 * pool; every element must equal the scalar op's, including the ragged
 * last chunk. */
TEST(cpu_backend_activations_over_the_pool)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    const qeil_backend *be = &qeil_backend_cpu;
    qeil_backend_config cfg = {.ctx = ctx, .n_threads = 3, .max_rows = 8, .max_ctx = 64};
    void *st = NULL;
    CHECK_EQ_INT(be->create(&cfg, &st), QEIL_OK);
    enum { N = 3 * 16384 + 77 };
    float *g = xmalloc(N * sizeof *g), *u = xmalloc(N * sizeof *u);
    float *g2 = xmalloc(N * sizeof *g2), *x = xmalloc(N * sizeof *x), *x2 = xmalloc(N * sizeof *x2);
    for (int i = 0; i < N; i++) {
        g[i] = g2[i] = (float)((i * 37) % 2001 - 1000) / 97.0f;
        u[i] = (float)((i * 11) % 101 - 50) / 13.0f;
        x[i] = x2[i] = (float)((i * 53) % 1999 - 999) / 211.0f;
    }
    if (st) {
        be->silu_mul(st, g, u, N);
        be->gelu(st, x, N);
        be->destroy(st);
    }
    qeil_op_silu_mul(g2, u, N);
    qeil_op_gelu_vec(x2, N);
    CHECK(memcmp(g, g2, N * sizeof *g) == 0);
    CHECK(memcmp(x, x2, N * sizeof *x) == 0);
    free(g);
    free(u);
    free(g2);
    free(x);
    free(x2);
    qeil_ctx_free(ctx);
}

TEST(threads_bit_identical)
{
    thread_case("tiny-llama", QEIL_GGML_F16, 0, 0, 0);
    thread_case("tiny-qwen2", QEIL_GGML_Q4_K, 256, 0, 0);
    thread_case("tiny-gpt2", QEIL_GGML_Q4_0, 0, 0, 0);
    /* d_ff 2048 x a prefill chunk of 8 rows = 16384 elements: the cpu
     * backend's activations (SiLU·mul, GELU) then run over the pool */
    thread_case("tiny-llama", QEIL_GGML_Q4_0, 1024, 0, 0);
    thread_case("tiny-gpt2", QEIL_GGML_Q8_0, 1024, 0, 0);
    /* Qwen2-0.5B's grouping, 7 query heads per KV head (head_dim 16):
     * attention items split a group 4 + 3 (2 + 2 + 2 + 1 when items are
     * few), every head computed once whatever the thread count */
    thread_case("tiny-qwen2", QEIL_GGML_F32, 224, 14, 2);
}

/* ------------------------------------------------------------------------ */
/* Accessors, tokenizer, memory, unit times, placement                       */
/* ------------------------------------------------------------------------ */

TEST(accessors_memory_and_unit_times)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_mkmodel_params p = preset("tiny-llama");
    p.type = QEIL_GGML_Q8_0;
    const char *path = tmp_path("acc.gguf");
    CHECK(make_model(ctx, &p, path));
    qeil_engine *e = open_engine(ctx, path, 2, 32, 2, 16);
    CHECK(e != NULL);
    if (!e) {
        qeil_ctx_free(ctx);
        return;
    }
    CHECK_EQ_INT(qeil_engine_n_vocab(e), 512);
    CHECK_EQ_INT(qeil_engine_n_ctx(e), 32);
    const qeil_model_desc *md = qeil_engine_desc(e);
    CHECK(md != NULL);
    CHECK_EQ_INT(md->n_layers, 2);
    CHECK_EQ_INT(md->n_kv_heads, 2);

    /* memory: weights = every tensor in the file (untied, no extras);
     * KV = 2 (K and V) x layers x n_seq x n_ctx x kv_dim x 4 bytes */
    qeil_gguf *g = NULL;
    CHECK_EQ_INT(qeil_gguf_open(ctx, path, &g), QEIL_OK);
    size_t sum = 0;
    for (size_t i = 0; g && i < qeil_gguf_n_tensors(g); i++) sum += qeil_gguf_tensor_at(g, i)->nbytes;
    qeil_gguf_free(g);
    qeil_engine_memory m = qeil_engine_memory_use(e);
    CHECK_EQ_INT(m.weights_B, sum);
    CHECK_EQ_INT(m.kv_B, 2u * 2u * 2u * 32u * 64u * 4u);
    CHECK(m.scratch_B > 0);

    /* tokenizer from the file: encodes, and the ids evaluate */
    const qeil_tokenizer *tk = qeil_engine_tokenizer(e);
    CHECK(tk != NULL);
    /* its bytes: at least the id hash (>= 2 slots of 4 bytes per token)
     * and one score and one offset per token, at most what a byte-level
     * vocabulary of this size could need */
    CHECK_EQ_INT(m.tokenizer_B, qeil_tokenizer_memory_use(tk));
    CHECK(m.tokenizer_B >= qeil_tokenizer_n_vocab(tk) * (8 + 4 + 4));
    CHECK(m.tokenizer_B < qeil_tokenizer_n_vocab(tk) * 4096 + 65536);
    int32_t ids[32];
    size_t n = 0;
    CHECK_EQ_INT(qeil_tokenizer_encode(ctx, tk, "hello world", -1, 0, ids, 32, &n), QEIL_OK);
    CHECK(n >= 2);
    CHECK_EQ_INT(ids[0], qeil_tokenizer_bos(tk)); /* SPM adds BOS by default */
    qeil_engine_unit_times_reset(e);
    double t[8];
    qeil_engine_unit_times(e, t, 8);
    for (int i = 0; i < 8; i++) CHECK(t[i] == 0.0);
    float *lg = xmalloc(sizeof(float) * 512);
    CHECK_EQ_INT(qeil_engine_eval(e, 0, ids, (uint32_t)n, lg, 0), QEIL_OK);
    qeil_engine_unit_times(e, t, 8);
    for (int u = 0; u < 4; u++) CHECK(t[u] > 0.0); /* embedding, 2 blocks, head */
    for (int u = 4; u < 8; u++) CHECK(t[u] == 0.0); /* past the last unit */
    qeil_engine_unit_times_reset(e);
    qeil_engine_unit_times(e, t, 4);
    CHECK(t[0] == 0.0 && t[3] == 0.0);

    /* backends and placement */
    CHECK_EQ_INT(qeil_engine_n_backends(), 3);
    CHECK_EQ_STR(qeil_engine_backend_name(0), "cpu");
    CHECK_EQ_STR(qeil_engine_backend_name(1), "vulkan"); /* tests/test_vulkan.c */
    CHECK_EQ_STR(qeil_engine_backend_name(2), "cpu1");   /* a second CPU unit (tests/test_recover.c) */
    CHECK(qeil_engine_backend_name(3) == NULL);
    CHECK_EQ_STR(qeil_engine_device_name(1), "vk0");
    CHECK(qeil_engine_device_name(3) == NULL);
    uint8_t place[4] = {0, 0, 0, 0};
    CHECK_EQ_INT(qeil_engine_set_placement(e, place, 4), QEIL_OK);
    CHECK_EQ_INT(qeil_engine_set_placement(e, place, 3), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "the model has 4");
    place[2] = 3;
    CHECK_EQ_INT(qeil_engine_set_placement(e, place, 4), QEIL_ERR_UNSUPPORTED);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "unit 2 asks for backend 3");
    CHECK_EQ_INT(qeil_engine_set_placement(e, NULL, 4), QEIL_ERR_INVALID);
    /* the refused placement changed nothing: the sequence continues */
    float *lg2 = xmalloc(sizeof(float) * 512);
    int32_t tok = 5;
    CHECK_EQ_INT(qeil_engine_eval(e, 0, &tok, 1, lg2, 0), QEIL_OK);
    CHECK(max_abs(lg2, 512) > 0.0);
    free(lg);
    free(lg2);
    qeil_engine_free(e);
    qeil_engine_free(NULL);
    qeil_ctx_free(ctx);
}

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

TEST(errors_eval)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_mkmodel_params p = preset("tiny-gpt2");
    const char *path = tmp_path("err.gguf");
    CHECK(make_model(ctx, &p, path));
    qeil_engine *e = open_engine(ctx, path, 1, 8, 2, 4);
    CHECK(e != NULL);
    if (e) {
        int32_t ids[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
        float *lg = xmalloc(sizeof(float) * 12 * 512);
        /* prompt longer than the context */
        CHECK_EQ_INT(qeil_engine_eval(e, 0, ids, 9, lg, 0), QEIL_ERR_RANGE);
        CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "n_ctx 8");
        CHECK_EQ_INT(qeil_engine_seq_len(e, 0), 0); /* nothing happened */
        CHECK_EQ_INT(qeil_engine_eval(e, 0, ids, 6, lg, 0), QEIL_OK);
        CHECK_EQ_INT(qeil_engine_eval(e, 0, ids, 3, lg, 0), QEIL_ERR_RANGE); /* 6 + 3 > 8 */
        CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "holds 6 tokens");
        CHECK_EQ_INT(qeil_engine_eval(e, 0, ids, 2, lg, 0), QEIL_OK); /* exactly full */
        int32_t one = 1;
        const uint32_t s0 = 0, s1 = 1;
        CHECK_EQ_INT(qeil_engine_eval_batch(e, &s0, &one, 1, lg), QEIL_ERR_RANGE);
        CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "n_ctx 8");
        /* token ids */
        int32_t bad[3] = {1, 512, 2};
        CHECK_EQ_INT(qeil_engine_eval(e, 1, bad, 3, lg, 0), QEIL_ERR_RANGE);
        CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "id 512 (allowed 0..511)");
        bad[1] = -1;
        CHECK_EQ_INT(qeil_engine_eval(e, 1, bad, 3, lg, 0), QEIL_ERR_RANGE);
        CHECK_EQ_INT(qeil_engine_eval_batch(e, &s1, &bad[1], 1, lg), QEIL_ERR_RANGE);
        CHECK_EQ_INT(qeil_engine_seq_len(e, 1), 0);
        /* sequences */
        CHECK_EQ_INT(qeil_engine_eval(e, 2, ids, 1, lg, 0), QEIL_ERR_RANGE);
        CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "seq: 2 (allowed 0..1");
        const uint32_t dup[2] = {1, 1}, far[2] = {1, 7};
        CHECK_EQ_INT(qeil_engine_eval_batch(e, dup, ids, 2, lg), QEIL_ERR_INVALID);
        CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "appears twice");
        CHECK_EQ_INT(qeil_engine_eval_batch(e, far, ids, 2, lg), QEIL_ERR_RANGE);
        CHECK_EQ_INT(qeil_engine_eval_batch(e, far, ids, 3, lg), QEIL_ERR_RANGE); /* m > n_seq */
        CHECK_EQ_INT(qeil_engine_eval_batch(e, far, ids, 0, lg), QEIL_ERR_RANGE);
        CHECK_EQ_INT(qeil_engine_eval(e, 1, ids, 0, lg, 0), QEIL_ERR_RANGE);
        CHECK_EQ_INT(qeil_engine_eval(e, 1, NULL, 1, lg, 0), QEIL_ERR_INVALID);
        CHECK_EQ_INT(qeil_engine_eval(NULL, 0, ids, 1, lg, 0), QEIL_ERR_INVALID);
        CHECK_EQ_INT(qeil_engine_seq_len(e, 9), 0);
        qeil_engine_seq_reset(e, 9); /* ignored */
        free(lg);
    }
    qeil_engine_free(e);

    /* open-time parameters */
    qeil_engine_params ep = qeil_engine_default_params();
    CHECK_EQ_INT(ep.n_seq, 1);
    CHECK_EQ_INT(ep.n_batch, 512);
    qeil_engine *x = (qeil_engine *)&ep; /* must be reset to NULL on failure */
    ep.n_batch = 0;
    CHECK_EQ_INT(qeil_engine_open(ctx, path, &ep, &x), QEIL_ERR_RANGE);
    CHECK(x == NULL);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "n_batch: 0");
    ep = qeil_engine_default_params();
    ep.n_threads = 1000;
    CHECK_EQ_INT(qeil_engine_open(ctx, path, &ep, &x), QEIL_ERR_RANGE);
    ep = qeil_engine_default_params();
    ep.n_seq = 0;
    CHECK_EQ_INT(qeil_engine_open(ctx, path, &ep, &x), QEIL_ERR_RANGE);
    /* gpt2 has 256 learned positions in this file */
    ep = qeil_engine_default_params();
    ep.n_ctx = 257;
    CHECK_EQ_INT(qeil_engine_open(ctx, path, &ep, &x), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "position_embd.weight");
    ep.n_ctx = 0; /* default: min(model context 256, 4096) */
    CHECK_EQ_INT(qeil_engine_open(ctx, path, &ep, &x), QEIL_OK);
    CHECK_EQ_INT(qeil_engine_n_ctx(x), 256);
    qeil_engine_free(x);
    CHECK_EQ_INT(qeil_engine_open(ctx, tmp_path("no-such.gguf"), NULL, &x), QEIL_ERR_IO);
    CHECK_EQ_INT(qeil_engine_open(ctx, path, NULL, NULL), QEIL_ERR_INVALID);
    qeil_ctx_free(ctx);
}

/* ---- Damaged files: a copy of a good file with one change ---- */

typedef struct {
    const char *drop;        /* tensor to leave out */
    const char *reshape;     /* tensor whose ne[0] (1-D) or ne[1] (2-D) grows by 32 */
    const char *retype;      /* tensor written as `new_type` (zeros) */
    int new_type;
    const char *set_key;     /* string key to set (or replace) */
    const char *set_val;
    const char *add_vec;     /* extra f32 vector tensor of add_len ones */
    uint64_t add_len;
    int llama3_keys;         /* add the numeric llama.rope.scaling.* keys mkmodel once wrote */
} rewrite_opts;

/* Copy metadata (the value types mkmodel writes) and tensors of src to dst,
 * applying opts. Returns 1 on success. */
static int rewrite(qeil_ctx *ctx, const char *src, const char *dst, const rewrite_opts *o)
{
    qeil_gguf *g = NULL;
    if (qeil_gguf_open(ctx, src, &g) != QEIL_OK) return 0;
    qeil_gguf_writer *w = qeil_gguf_writer_create(ctx);
    int ok = w != NULL;
    for (size_t i = 0; ok && i < qeil_gguf_n_kv(g); i++) {
        const char *key = qeil_gguf_key_at(g, i);
        if (o->set_key && strcmp(key, o->set_key) == 0) continue;
        qeil_status st = QEIL_OK;
        switch (qeil_gguf_kv_type(g, i)) {
        case QEIL_GGUF_UINT32: {
            uint64_t v;
            st = qeil_gguf_get_u64(ctx, g, key, &v);
            if (st == QEIL_OK) st = qeil_gguf_writer_set_u32(w, key, (uint32_t)v);
            break;
        }
        case QEIL_GGUF_FLOAT32: {
            double v;
            st = qeil_gguf_get_f64(ctx, g, key, &v);
            if (st == QEIL_OK) st = qeil_gguf_writer_set_f32(w, key, (float)v);
            break;
        }
        case QEIL_GGUF_BOOL: {
            int v;
            st = qeil_gguf_get_bool(ctx, g, key, &v);
            if (st == QEIL_OK) st = qeil_gguf_writer_set_bool(w, key, v);
            break;
        }
        case QEIL_GGUF_STRING: st = qeil_gguf_writer_set_str(w, key, qeil_gguf_get_str(g, key)); break;
        case QEIL_GGUF_ARRAY: {
            qeil_gguf_vtype et;
            uint64_t n;
            st = qeil_gguf_get_arr(ctx, g, key, &et, &n);
            if (st != QEIL_OK) break;
            if (et == QEIL_GGUF_STRING) {
                const char **v = xmalloc(n * sizeof *v);
                for (uint64_t j = 0; j < n; j++) v[j] = qeil_gguf_arr_str(g, (int64_t)i, j, NULL);
                st = qeil_gguf_writer_set_arr_str(w, key, v, n);
                free(v);
            } else if (et == QEIL_GGUF_FLOAT32) {
                float *v = xmalloc(n * sizeof *v);
                for (uint64_t j = 0; j < n; j++) v[j] = (float)qeil_gguf_arr_f64(g, (int64_t)i, j);
                st = qeil_gguf_writer_set_arr_f32(w, key, v, n);
                free(v);
            } else {
                int32_t *v = xmalloc(n * sizeof *v);
                for (uint64_t j = 0; j < n; j++) v[j] = (int32_t)qeil_gguf_arr_f64(g, (int64_t)i, j);
                st = qeil_gguf_writer_set_arr_i32(w, key, v, n);
                free(v);
            }
            break;
        }
        default: st = QEIL_ERR_UNSUPPORTED; break;
        }
        ok = st == QEIL_OK;
    }
    if (ok && o->set_key) ok = qeil_gguf_writer_set_str(w, o->set_key, o->set_val) == QEIL_OK;
    if (ok && o->llama3_keys) /* Llama 3.2's rope_scaling */
        ok = qeil_gguf_writer_set_f32(w, "llama.rope.scaling.factor", 32.0f) == QEIL_OK &&
             qeil_gguf_writer_set_f32(w, "llama.rope.scaling.low_freq_factor", 1.0f) == QEIL_OK &&
             qeil_gguf_writer_set_f32(w, "llama.rope.scaling.high_freq_factor", 4.0f) == QEIL_OK &&
             qeil_gguf_writer_set_u32(w, "llama.rope.scaling.original_context_length", 8192) == QEIL_OK;
    for (size_t i = 0; ok && i < qeil_gguf_n_tensors(g); i++) {
        const qeil_gguf_tensor *t = qeil_gguf_tensor_at(g, i);
        if (o->drop && strcmp(t->name, o->drop) == 0) continue;
        uint64_t ne[4] = {t->ne[0], t->ne[1], t->ne[2], t->ne[3]};
        int type = t->type;
        const void *data = qeil_gguf_tensor_data(g, t);
        void *fresh = NULL;
        if (o->reshape && strcmp(t->name, o->reshape) == 0) ne[t->n_dims == 1 ? 0 : 1] += 32;
        if (o->retype && strcmp(t->name, o->retype) == 0) type = o->new_type;
        if (ne[0] != t->ne[0] || ne[1] != t->ne[1] || type != t->type) {
            int k = 1;
            uint64_t nb = qeil_ggml_nbytes(type, ne[0] * ne[1], &k);
            fresh = xmalloc((size_t)nb);
            data = fresh;
        }
        ok = qeil_gguf_writer_add_tensor(w, t->name, type, t->n_dims, ne, data) == QEIL_OK;
        free(fresh);
    }
    if (ok && o->add_vec) {
        float *v = xmalloc(o->add_len * sizeof *v);
        for (uint64_t j = 0; j < o->add_len; j++) v[j] = 1.0f + 0.5f * (float)j;
        uint64_t ne[1] = {o->add_len};
        ok = qeil_gguf_writer_add_tensor(w, o->add_vec, QEIL_GGML_F32, 1, ne, v) == QEIL_OK;
        free(v);
    }
    if (ok) ok = qeil_gguf_writer_write(w, dst) == QEIL_OK;
    if (!ok) printf("  rewrite: %s\n", qeil_ctx_errmsg(ctx));
    qeil_gguf_writer_free(w);
    qeil_gguf_free(g);
    return ok;
}

/* Open `path` and expect status st with every needle in the message. */
static void expect_open(qeil_ctx *ctx, const char *path, qeil_status st, const char *n1, const char *n2,
                        const char *n3)
{
    qeil_engine *e = NULL;
    qeil_status got = qeil_engine_open(ctx, path, NULL, &e);
    CHECK_EQ_INT(got, st);
    CHECK(e == NULL || st == QEIL_OK);
    if (n1) CHECK_CONTAINS(qeil_ctx_errmsg(ctx), n1);
    if (n2) CHECK_CONTAINS(qeil_ctx_errmsg(ctx), n2);
    if (n3) CHECK_CONTAINS(qeil_ctx_errmsg(ctx), n3);
    qeil_engine_free(e);
}

TEST(errors_bad_files)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_mkmodel_params p = preset("tiny-llama");
    const char *good = tmp_path("good.gguf"), *bad = tmp_path("damaged.gguf");
    CHECK(make_model(ctx, &p, good));
    rewrite_opts o;

    /* the copier itself keeps a file valid */
    memset(&o, 0, sizeof o);
    CHECK(rewrite(ctx, good, bad, &o));
    expect_open(ctx, bad, QEIL_OK, NULL, NULL, NULL);

    memset(&o, 0, sizeof o);
    o.drop = "blk.1.ffn_gate.weight";
    CHECK(rewrite(ctx, good, bad, &o));
    expect_open(ctx, bad, QEIL_ERR_FORMAT, "'blk.1.ffn_gate.weight' is missing", NULL, NULL);

    memset(&o, 0, sizeof o);
    o.drop = "output_norm.weight";
    CHECK(rewrite(ctx, good, bad, &o));
    expect_open(ctx, bad, QEIL_ERR_FORMAT, "output_norm.weight", NULL, NULL);

    memset(&o, 0, sizeof o);
    o.reshape = "blk.0.attn_k.weight"; /* [128, 64] -> [128, 96] */
    CHECK(rewrite(ctx, good, bad, &o));
    expect_open(ctx, bad, QEIL_ERR_FORMAT, "blk.0.attn_k.weight", "[128, 96]", "[128, 64]");

    memset(&o, 0, sizeof o);
    o.reshape = "blk.1.ffn_norm.weight"; /* [128] -> [160] */
    CHECK(rewrite(ctx, good, bad, &o));
    expect_open(ctx, bad, QEIL_ERR_FORMAT, "blk.1.ffn_norm.weight", "[160]", "expected [128]");

    memset(&o, 0, sizeof o);
    o.reshape = "output.weight"; /* [128, 512] -> [128, 544] */
    CHECK(rewrite(ctx, good, bad, &o));
    expect_open(ctx, bad, QEIL_ERR_FORMAT, "output.weight", "[128, 544]", "[128, 512]");

    memset(&o, 0, sizeof o);
    o.retype = "blk.0.ffn_up.weight";
    o.new_type = QEIL_GGML_Q8_1; /* an activation format: no weight kernel */
    CHECK(rewrite(ctx, good, bad, &o));
    expect_open(ctx, bad, QEIL_ERR_UNSUPPORTED, "blk.0.ffn_up.weight", "q8_1", NULL);

    memset(&o, 0, sizeof o);
    o.retype = "blk.0.attn_norm.weight";
    o.new_type = QEIL_GGML_F16;
    CHECK(rewrite(ctx, good, bad, &o));
    expect_open(ctx, bad, QEIL_ERR_UNSUPPORTED, "blk.0.attn_norm.weight", "f16", NULL);

    memset(&o, 0, sizeof o);
    o.set_key = "general.architecture";
    o.set_val = "mamba";
    CHECK(rewrite(ctx, good, bad, &o));
    expect_open(ctx, bad, QEIL_ERR_UNSUPPORTED, "mamba", NULL, NULL);

    memset(&o, 0, sizeof o);
    o.set_key = "llama.rope.scaling.type";
    o.set_val = "yarn";
    CHECK(rewrite(ctx, good, bad, &o));
    expect_open(ctx, bad, QEIL_ERR_UNSUPPORTED, "yarn", NULL, NULL);

    memset(&o, 0, sizeof o);
    o.set_key = "tokenizer.ggml.model";
    o.set_val = "t5";
    CHECK(rewrite(ctx, good, bad, &o));
    expect_open(ctx, bad, QEIL_ERR_UNSUPPORTED, "t5", NULL, NULL);

    memset(&o, 0, sizeof o);
    o.drop = "rope_freqs.weight";
    o.add_vec = "rope_freqs.weight";
    o.add_len = 3; /* head_dim 32 -> 16 factors expected */
    CHECK(rewrite(ctx, good, bad, &o));
    expect_open(ctx, bad, QEIL_ERR_FORMAT, "rope_freqs.weight", "[3]", "expected [16]");

    /* truncated: every prefix length class fails cleanly */
    FILE *f = fopen(good, "rb");
    CHECK(f != NULL);
    if (f) {
        fseek(f, 0, SEEK_END);
        long len = ftell(f);
        fseek(f, 0, SEEK_SET);
        unsigned char *buf = xmalloc((size_t)len);
        CHECK_EQ_INT(fread(buf, 1, (size_t)len, f), len);
        fclose(f);
        const long cuts[] = {0, 3, 20, 200, 5000, len / 2, len - 1};
        for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
            FILE *o2 = fopen(bad, "wb");
            fwrite(buf, 1, (size_t)cuts[i], o2);
            fclose(o2);
            qeil_engine *e = NULL;
            qeil_status st = qeil_engine_open(ctx, bad, NULL, &e);
            CHECK(st == QEIL_ERR_FORMAT || st == QEIL_ERR_IO);
            CHECK(e == NULL);
            CHECK(strlen(qeil_ctx_errmsg(ctx)) > 0);
        }
        /* corrupt magic */
        buf[0] = 'X';
        FILE *o3 = fopen(bad, "wb");
        fwrite(buf, 1, (size_t)len, o3);
        fclose(o3);
        expect_open(ctx, bad, QEIL_ERR_FORMAT, NULL, NULL, NULL);
        free(buf);
    }
    qeil_ctx_free(ctx);
}

/* mkmodel's Llama-3 files carry rope_freqs.weight, as llama.cpp's converter
 * writes them; before, they carried llama.rope.scaling.type = "llama3" and
 * its factor keys, which llama.cpp refuses. The same weights with the old
 * keys instead of the tensor must give the same logits at every position
 * (the factors are rounded to f32: 1e-5 of the logit scale) and the same
 * greedy tokens. Position 0 (angle 0) cannot tell them apart, so positions
 * up to 40 are compared, where the scaled frequencies matter. */
TEST(llama3_rope_freqs_equal_old_scaling_keys)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_mkmodel_params p = preset("tiny-llama");
    CHECK_EQ_INT(p.rope_scaling_llama3, 1);
    const char *now = tmp_path("l3new.gguf"), *old = tmp_path("l3old.gguf"),
               *plain = tmp_path("l3none.gguf");
    CHECK(make_model(ctx, &p, now));
    p.rope_scaling_llama3 = 0;
    CHECK(make_model(ctx, &p, plain));
    rewrite_opts o;
    memset(&o, 0, sizeof o);
    o.drop = "rope_freqs.weight";
    o.set_key = "llama.rope.scaling.type";
    o.set_val = "llama3";
    o.llama3_keys = 1;
    CHECK(rewrite(ctx, now, old, &o));
    const uint32_t V = 512, n = 40;
    qeil_engine *en = open_engine(ctx, now, 1, 64, 1, 512), *eo = open_engine(ctx, old, 1, 64, 1, 512),
                *ep = open_engine(ctx, plain, 1, 64, 1, 512);
    CHECK(en && eo && ep);
    if (en && eo && ep) {
        float *a = xmalloc(sizeof(float) * n * V), *b = xmalloc(sizeof(float) * n * V),
              *c = xmalloc(sizeof(float) * n * V);
        int32_t ids[40];
        prompt(ids, n, V, 7);
        CHECK_EQ_INT(qeil_engine_eval(en, 0, ids, n, a, 1), QEIL_OK);
        CHECK_EQ_INT(qeil_engine_eval(eo, 0, ids, n, b, 1), QEIL_OK);
        CHECK_EQ_INT(qeil_engine_eval(ep, 0, ids, n, c, 1), QEIL_OK);
        double worst = 0, m = max_abs(b, (size_t)n * V);
        int same_argmax = 1;
        for (uint32_t t = 0; t < n; t++) {
            worst = fmax(worst, max_abs_diff(a + (size_t)t * V, b + (size_t)t * V, V));
            uint32_t ia = 0, ib = 0;
            for (uint32_t v = 1; v < V; v++) {
                if (a[(size_t)t * V + v] > a[(size_t)t * V + ia]) ia = v;
                if (b[(size_t)t * V + v] > b[(size_t)t * V + ib]) ib = v;
            }
            same_argmax &= ia == ib;
        }
        if (!(worst <= 1e-5 * m)) TEST_FAIL_("rope_freqs vs llama3 keys: max diff %.3g vs scale %.3g", worst, m);
        printf("  rope_freqs vs llama3 keys: max diff %.3g of scale %.3g over %u positions\n", worst, m, n);
        CHECK(same_argmax);
        /* and the factors act: without them the last position differs */
        CHECK(max_abs_diff(a + (size_t)(n - 1) * V, c + (size_t)(n - 1) * V, V) > 1e-3);
        free(a);
        free(b);
        free(c);
    }
    qeil_engine_free(en);
    qeil_engine_free(eo);
    qeil_engine_free(ep);
    qeil_ctx_free(ctx);
}

/* rope_freqs.weight: the file's factors drive RoPE (llama.cpp's Llama 3
 * files); both the engine and the reference must use them. */
TEST(rope_freqs_tensor_against_reference)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_mkmodel_params p = preset("tiny-llama");
    p.rope_scaling_llama3 = 0;
    const char *plain = tmp_path("rf0.gguf"), *withf = tmp_path("rf1.gguf");
    CHECK(make_model(ctx, &p, plain));
    rewrite_opts o;
    memset(&o, 0, sizeof o);
    o.add_vec = "rope_freqs.weight";
    o.add_len = 16; /* factors 1, 1.5, 2, ... */
    CHECK(rewrite(ctx, plain, withf, &o));
    qeil_engine *e0 = open_engine(ctx, plain, 1, 32, 1, 512), *e1 = open_engine(ctx, withf, 1, 32, 1, 512);
    CHECK(e0 && e1);
    if (e0 && e1) {
        const uint32_t V = 512, n = 12;
        float *a = xmalloc(sizeof(float) * n * V), *b = xmalloc(sizeof(float) * n * V);
        int32_t ids[12];
        prompt(ids, n, V, 5);
        CHECK_EQ_INT(qeil_engine_eval(e0, 0, ids, n, a, 1), QEIL_OK);
        CHECK_EQ_INT(qeil_engine_eval(e1, 0, ids, n, b, 1), QEIL_OK);
        CHECK(max_abs_diff(a, b, V) < 1e-6);             /* position 0: angle 0 */
        CHECK(max_abs_diff(a + 11 * V, b + 11 * V, V) > 1e-3); /* the factors act */
        CHECK(qeil_engine_memory_use(e1).weights_B == qeil_engine_memory_use(e0).weights_B + 64);
        if (!g_python) {
            free(a);
            free(b);
            qeil_engine_free(e0);
            qeil_engine_free(e1);
            qeil_ctx_free(ctx);
            SKIP(g_ref_skip);
        }
        char cmd[2048], toks[256];
        int k = 0;
        for (uint32_t i = 0; i < n; i++) k += snprintf(toks + k, sizeof toks - (size_t)k, "%s%d", i ? "," : "", ids[i]);
        snprintf(cmd, sizeof cmd, "%s %s %s %s %s.ref > /dev/null 2>&1", g_python, g_script, withf, toks,
                 withf);
        CHECK_EQ_INT(system(cmd), 0);
        double *r = xmalloc(sizeof(double) * n * V);
        char rp[600];
        snprintf(rp, sizeof rp, "%s.ref", withf);
        FILE *f = fopen(rp, "rb");
        size_t got = f ? fread(r, sizeof(double), (size_t)n * V, f) : 0;
        if (f) fclose(f);
        CHECK_EQ_INT(got, (size_t)n * V);
        double M = 0, worst = 0;
        for (size_t i = 0; i < got; i++) {
            M = fmax(M, fabs(r[i]));
            worst = fmax(worst, fabs(r[i] - (double)b[i]));
        }
        if (!(worst <= 1e-4 * M + 1e-5)) TEST_FAIL_("rope_freqs: max diff %.3g vs M %.3g", worst, M);
        free(r);
        free(a);
        free(b);
    }
    qeil_engine_free(e0);
    qeil_engine_free(e1);
    qeil_ctx_free(ctx);
}

/* ------------------------------------------------------------------------ */

static void cleanup(void)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (g_dir[0] && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/qeil-engine-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 2;
    }
    snprintf(g_ref_skip, sizeof g_ref_skip, "python3 with torch and numpy not found (set QEIL_PYTHON)");
    RUN(ops_norms);
    RUN(ops_rope_pairs);
    RUN(ops_softmax_activations_attention);
    RUN(ops_exp);
    RUN(ops_attention_avx2_same_bits);
    RUN(ops_attention_heads_same_bits);
    RUN(mkmodel_presets_and_params);
    RUN(ref_setup);
    RUN(ref_llama_f32);
    RUN(ref_llama_f16);
    RUN(ref_llama_bf16);
    RUN(ref_llama_q8_0);
    RUN(ref_llama_q4_0);
    RUN(ref_llama_q4_k);
    RUN(ref_llama_q6_k);
    RUN(ref_llama_q4_k_mixed);
    RUN(ref_qwen2_f32);
    RUN(ref_qwen2_f16);
    RUN(ref_qwen2_bf16);
    RUN(ref_qwen2_q8_0);
    RUN(ref_qwen2_q4_0);
    RUN(ref_qwen2_q4_k);
    RUN(ref_qwen2_q6_k);
    RUN(ref_gpt2_f32);
    RUN(ref_gpt2_f16);
    RUN(ref_gpt2_bf16);
    RUN(ref_gpt2_q8_0);
    RUN(ref_gpt2_q4_0);
    RUN(ref_gpt2_q4_k);
    RUN(ref_gpt2_q6_k);
    RUN(ref_llama_q4_1);
    RUN(ref_llama_q5_0);
    RUN(ref_llama_q5_1);
    RUN(ref_llama_q5_k);
    RUN(ref_llama_q5_k_mixed);
    RUN(ref_qwen2_q4_1);
    RUN(ref_qwen2_q5_0);
    RUN(ref_qwen2_q5_1);
    RUN(ref_qwen2_q5_k);
    RUN(ref_gpt2_q4_1);
    RUN(ref_gpt2_q5_0);
    RUN(ref_gpt2_q5_1);
    RUN(ref_gpt2_q5_k);
    RUN(ref_llama_iq4_nl);
    RUN(ref_qwen2_iq4_nl);
    RUN(ref_gpt2_iq4_nl);
    RUN(ref_llama_iq4_xs);
    RUN(ref_qwen2_iq4_xs);
    RUN(ref_gpt2_iq4_xs);
    RUN(ref_granite_f32);
    RUN(ref_granite_f16);
    RUN(ref_granite_bf16);
    RUN(ref_granite_q8_0);
    RUN(ref_granite_q4_0);
    RUN(ref_granite_q4_k);
    RUN(ref_granite_q6_k);
    RUN(ref_granite_q4_1);
    RUN(ref_granite_q5_0);
    RUN(ref_granite_q5_1);
    RUN(ref_granite_q5_k);
    RUN(ref_granite_iq4_nl);
    RUN(ref_granite_iq4_xs);
    RUN(ref_lfm2_f32);
    RUN(ref_lfm2_f16);
    RUN(ref_lfm2_bf16);
    RUN(ref_lfm2_q8_0);
    RUN(ref_lfm2_q4_0);
    RUN(ref_lfm2_q4_k);
    RUN(ref_lfm2_q6_k);
    RUN(ref_lfm2_q4_1);
    RUN(ref_lfm2_q5_0);
    RUN(ref_lfm2_q5_1);
    RUN(ref_lfm2_q5_k);
    RUN(ref_lfm2_iq4_nl);
    RUN(ref_lfm2_iq4_xs);
    RUN(llama3_scaling_changes_logits);
    RUN(rope_freqs_tensor_against_reference);
    RUN(llama3_rope_freqs_equal_old_scaling_keys);
    RUN(batch_prefill_equals_token_by_token);
    RUN(eval_batch_equals_separate_evals);
    RUN(seq_copy_fork_equals_rerun);
    RUN(lfm2_sequences_state);
    RUN(placement_refuses_missing_ops);
    RUN(granite_multipliers_matter);
    RUN(cpu_backend_activations_over_the_pool);
    RUN(threads_bit_identical);
    RUN(accessors_memory_and_unit_times);
    RUN(errors_eval);
    RUN(errors_bad_files);
    for (size_t i = 0; i < N_REF; i++) {
        free(g_ref[i].logits);
        free((void *)g_ref[i].file);
    }
    cleanup();
    return test_summary("engine");
}
