/* test_sampler.c — the sampler, table-driven: greedy and ties, top-k,
 * top-p, min-p and the repetition penalty on hand-computed tables, draws
 * with an explicit uniform, determinism, a chi-square check of the drawn
 * frequencies, log-probabilities, a brute-force reference on a large
 * vocabulary, and rejection of every out-of-range parameter. */
#include <math.h>
#include <stdint.h>

#include "sampler/logits.h"
#include "qeil/sampler.h"
#include "test.h"

static qeil_ctx *ctx;

/* A sampler with no filters at temperature 1: draws from softmax(logits). */
static qeil_sampler_params plain(void)
{
    qeil_sampler_params p = qeil_sampler_default_params();
    p.temp = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.repeat_penalty = 1.0f;
    return p;
}

static qeil_sampler *make(const qeil_sampler_params *p, uint32_t n_vocab)
{
    qeil_sampler *s = NULL;
    qeil_status st = qeil_sampler_create(ctx, p, n_vocab, &s);
    if (st != QEIL_OK) TEST_FAIL_("create: %s", qeil_ctx_errmsg(ctx));
    return s;
}

/* Logits whose softmax at temperature 1 is exactly `prob` (log of it). */
static void logits_from_probs(const double *prob, size_t n, float *out)
{
    for (size_t i = 0; i < n; i++) out[i] = (float)log(prob[i]);
}

static double log_sum_exp(const float *l, size_t n)
{
    double m = -INFINITY, z = 0;
    for (size_t i = 0; i < n; i++)
        if (l[i] > m) m = l[i];
    for (size_t i = 0; i < n; i++) z += exp((double)l[i] - m);
    return m + log(z);
}

/* ------------------------------------------------------------------------ */

TEST(greedy_picks_argmax_lowest_id_on_ties)
{
    static const struct {
        float l[5];
        int32_t want;
    } t[] = {
        {{1, 3, 3, 2, 0}, 1},          /* tie 1 vs 2 -> 1 */
        {{-5, -4, -4.5f, -9, -4}, 1},  /* tie 1 vs 4 -> 1 */
        {{7, 7, 7, 7, 7}, 0},          /* all equal -> 0 */
        {{-INFINITY, -1, -INFINITY, -2, -3}, 1},
        {{0, 0, 0, 0, 0.001f}, 4},
    };
    qeil_sampler_params p = plain();
    p.temp = 0.0f;
    qeil_sampler *s = make(&p, 5);
    if (!s) return;
    for (size_t k = 0; k < sizeof t / sizeof *t; k++) {
        for (double u = 0.0; u < 1.0; u += 0.25) {
            int32_t tok = -1;
            qeil_sampler_logprob lp;
            CHECK_EQ_INT(qeil_sampler_sample_u(s, t[k].l, 5, NULL, 0, u, &tok, &lp), QEIL_OK);
            CHECK_EQ_INT(tok, t[k].want);
            CHECK_NEAR(lp.final, 0.0, 0, 0);
            CHECK_NEAR(lp.raw, (double)t[k].l[t[k].want] - log_sum_exp(t[k].l, 5), 1e-6, 1e-6);
        }
    }
    qeil_sampler_free(s);
}

TEST(top_k_1_is_greedy)
{
    enum { V = 1000 };
    static float l[V];
    qeil_rng r;
    qeil_rng_seed(&r, 5);
    qeil_sampler_params pk = plain(), pg = plain();
    pk.temp = 1.3f;
    pk.top_k = 1;
    pk.top_p = 0.5f;
    pg.temp = 0.0f;
    qeil_sampler *sk = make(&pk, V), *sg = make(&pg, V);
    if (!sk || !sg) return;
    for (int rep = 0; rep < 50; rep++) {
        for (int i = 0; i < V; i++) l[i] = (float)(qeil_rng_uniform(&r) * 10.0 - 5.0);
        if (rep % 5 == 0) l[V - 1] = l[3]; /* duplicates of a value */
        int32_t a = -1, b = -2;
        qeil_sampler_logprob lp;
        CHECK_EQ_INT(qeil_sampler_sample(sk, l, V, NULL, 0, &a, &lp), QEIL_OK);
        CHECK_NEAR(lp.final, 0.0, 0, 1e-12); /* the only kept token */
        CHECK_EQ_INT(qeil_sampler_sample(sg, l, V, NULL, 0, &b, NULL), QEIL_OK);
        CHECK_EQ_INT(a, b);
    }
    qeil_sampler_free(sk);
    qeil_sampler_free(sg);
}

/* Probabilities 0.5, 0.25, 0.15, 0.10 scattered over ids 2, 0, 3, 1: the
 * total order is 2, 0, 3, 1 and the CDF steps at 0.5, 0.75, 0.9, 1. */
static const double P4[4] = {0.25, 0.10, 0.50, 0.15};

TEST(draw_with_fixed_uniform)
{
    static const struct {
        double u;
        int32_t want;
    } t[] = {{0.0, 2}, {0.49, 2}, {0.51, 0}, {0.74, 0}, {0.76, 3}, {0.89, 3}, {0.91, 1}, {0.999, 1}};
    float l[4];
    logits_from_probs(P4, 4, l);
    qeil_sampler_params p = plain();
    qeil_sampler *s = make(&p, 4);
    if (!s) return;
    for (size_t k = 0; k < sizeof t / sizeof *t; k++) {
        int32_t tok = -1;
        qeil_sampler_logprob lp;
        CHECK_EQ_INT(qeil_sampler_sample_u(s, l, 4, NULL, 0, t[k].u, &tok, &lp), QEIL_OK);
        CHECK_EQ_INT(tok, t[k].want);
        if (tok >= 0 && tok < 4) {
            /* unfiltered at temp 1: final == raw == log p */
            CHECK_NEAR(lp.final, log(P4[tok]), 1e-6, 1e-6);
            CHECK_NEAR(lp.raw, log(P4[tok]), 1e-6, 1e-6);
        }
    }
    qeil_sampler_free(s);
}

TEST(top_p_keeps_shortest_prefix_with_mass)
{
    /* top_p, u, expected token, expected kept mass (for the final logprob) */
    static const struct {
        float top_p;
        double u;
        int32_t want;
        double kept;
    } t[] = {
        {0.30f, 0.999, 2, 0.50},  /* 0.5 >= 0.3: only the top token */
        {0.49f, 0.999, 2, 0.50},  /* 0.5 >= 0.49 */
        {0.60f, 0.999, 0, 0.75},  /* needs 0.5 + 0.25 */
        {0.60f, 0.60, 2, 0.75},   /* 0.6 * 0.75 = 0.45 < 0.5 */
        {0.60f, 0.70, 0, 0.75},   /* 0.7 * 0.75 = 0.525 > 0.5 */
        {0.80f, 0.999, 3, 0.90},  /* needs three */
        {0.95f, 0.999, 1, 1.00},  /* all four */
    };
    float l[4];
    logits_from_probs(P4, 4, l);
    for (size_t k = 0; k < sizeof t / sizeof *t; k++) {
        qeil_sampler_params p = plain();
        p.top_p = t[k].top_p;
        qeil_sampler *s = make(&p, 4);
        if (!s) return;
        int32_t tok = -1;
        qeil_sampler_logprob lp;
        CHECK_EQ_INT(qeil_sampler_sample_u(s, l, 4, NULL, 0, t[k].u, &tok, &lp), QEIL_OK);
        CHECK_EQ_INT(tok, t[k].want);
        if (tok >= 0 && tok < 4) {
            CHECK_NEAR(lp.final, log(P4[tok] / t[k].kept), 1e-6, 1e-6);
            CHECK_NEAR(lp.raw, log(P4[tok]), 1e-6, 1e-6);
        }
        qeil_sampler_free(s);
    }
}

TEST(min_p_threshold)
{
    /* threshold = min_p * 0.5 (the top probability) */
    static const struct {
        float min_p;
        int32_t want; /* with u = 0.999: the last kept token */
        double kept;
    } t[] = {
        {0.05f, 1, 1.00},  /* 0.025: all kept */
        {0.21f, 3, 0.90},  /* 0.105: drops 0.10 */
        {0.29f, 3, 0.90},  /* 0.145: keeps 0.15 */
        {0.31f, 0, 0.75},  /* 0.155: drops 0.15 */
        {0.51f, 2, 0.50},  /* 0.255: only the top */
        {0.99f, 2, 0.50},
    };
    float l[4];
    logits_from_probs(P4, 4, l);
    for (size_t k = 0; k < sizeof t / sizeof *t; k++) {
        qeil_sampler_params p = plain();
        p.min_p = t[k].min_p;
        qeil_sampler *s = make(&p, 4);
        if (!s) return;
        int32_t tok = -1;
        qeil_sampler_logprob lp;
        CHECK_EQ_INT(qeil_sampler_sample_u(s, l, 4, NULL, 0, 0.999, &tok, &lp), QEIL_OK);
        CHECK_EQ_INT(tok, t[k].want);
        if (tok >= 0 && tok < 4) CHECK_NEAR(lp.final, log(P4[tok] / t[k].kept), 1e-6, 1e-6);
        qeil_sampler_free(s);
    }
}

TEST(temperature_then_filters)
{
    /* temp 0.5 squares the probabilities: 0.0625, 0.01, 0.25, 0.0225 (ids
     * 0..3) over Z = 0.345; order 2, 0, 3, 1. */
    float l[4];
    logits_from_probs(P4, 4, l);
    const double q[4] = {0.0625, 0.01, 0.25, 0.0225}, z = 0.345;
    qeil_sampler_params p = plain();
    p.temp = 0.5f;
    qeil_sampler *s = make(&p, 4);
    if (!s) return;
    static const struct {
        double u;
        int32_t want;
    } t[] = {{0.70, 2}, {0.73, 0}, {0.90, 0}, {0.91, 3}, {0.98, 1}};
    /* CDF: 0.25/0.345 = 0.7246, +0.0625 -> 0.9058, +0.0225 -> 0.9710, 1 */
    for (size_t k = 0; k < sizeof t / sizeof *t; k++) {
        int32_t tok = -1;
        qeil_sampler_logprob lp;
        CHECK_EQ_INT(qeil_sampler_sample_u(s, l, 4, NULL, 0, t[k].u, &tok, &lp), QEIL_OK);
        CHECK_EQ_INT(tok, t[k].want);
        if (tok >= 0 && tok < 4) {
            CHECK_NEAR(lp.final, log(q[tok] / z), 1e-6, 1e-6);
            CHECK_NEAR(lp.raw, log(P4[tok]), 1e-6, 1e-6); /* raw ignores temp */
        }
    }
    qeil_sampler_free(s);
    /* top-k 2 after temp: keep 2, 0 over 0.3125 */
    p.top_k = 2;
    s = make(&p, 4);
    if (!s) return;
    int32_t tok = -1;
    qeil_sampler_logprob lp;
    CHECK_EQ_INT(qeil_sampler_sample_u(s, l, 4, NULL, 0, 0.79, &tok, &lp), QEIL_OK);
    CHECK_EQ_INT(tok, 2); /* CDF step at 0.25 / 0.3125 = 0.8 */
    CHECK_NEAR(lp.final, log(0.8), 1e-6, 1e-6);
    CHECK_EQ_INT(qeil_sampler_sample_u(s, l, 4, NULL, 0, 0.81, &tok, &lp), QEIL_OK);
    CHECK_EQ_INT(tok, 0);
    CHECK_NEAR(lp.final, log(0.2), 1e-6, 1e-6);
    qeil_sampler_free(s);
}

TEST(repetition_penalty_table)
{
    /* logits 2, -1, 0.5, 1; penalty 2 (llama.cpp: divide if > 0, else
     * multiply), applied once per distinct token in the last n. */
    const float l[4] = {2.0f, -1.0f, 0.5f, 1.0f};
    static const struct {
        int32_t hist[5];
        size_t n_hist;
        uint32_t last_n;
        float want[4]; /* penalised logits */
    } t[] = {
        {{0}, 0, 64, {2.0f, -1.0f, 0.5f, 1.0f}},            /* no history */
        {{0, 1, 0}, 3, 64, {1.0f, -2.0f, 0.5f, 1.0f}},      /* 0 once, 1 */
        {{0, 0, 0, 0}, 4, 64, {1.0f, -1.0f, 0.5f, 1.0f}},   /* once, not 4x */
        {{0, 1, 0, 3}, 4, 1, {2.0f, -1.0f, 0.5f, 0.5f}},    /* window: 3 only */
        {{0, 1, 2, 3}, 4, 2, {2.0f, -1.0f, 0.25f, 0.5f}},   /* window: 2, 3 */
        {{0, 1, 2, 3}, 4, 0, {2.0f, -1.0f, 0.5f, 1.0f}},    /* last_n 0: off */
    };
    for (size_t k = 0; k < sizeof t / sizeof *t; k++) {
        qeil_sampler_params p = plain();
        p.repeat_penalty = 2.0f;
        p.repeat_last_n = t[k].last_n;
        qeil_sampler *s = make(&p, 4);
        if (!s) return;
        double lse = log_sum_exp(t[k].want, 4);
        /* u sweeps the CDF; each chosen token's final logprob reveals the
         * penalised logit of that token */
        int seen[4] = {0};
        for (double u = 0.0005; u < 1.0; u += 0.001) {
            int32_t tok = -1;
            qeil_sampler_logprob lp;
            CHECK_EQ_INT(qeil_sampler_sample_u(s, l, 4, t[k].hist, t[k].n_hist, u, &tok, &lp),
                         QEIL_OK);
            if (tok < 0 || tok > 3) break;
            seen[tok] = 1;
            CHECK_NEAR(lp.final, (double)t[k].want[tok] - lse, 1e-6, 1e-6);
            CHECK_NEAR(lp.raw, (double)l[tok] - log_sum_exp(l, 4), 1e-6, 1e-6);
        }
        CHECK(seen[0] && seen[1] && seen[2] && seen[3]);
        qeil_sampler_free(s);
    }
    /* greedy sees the penalty too: 2 -> 1 ties with id 3's 1 -> id 0 wins;
     * a penalty of 2.5 makes id 3 the argmax */
    qeil_sampler_params p = plain();
    p.temp = 0;
    p.repeat_penalty = 2.5f;
    qeil_sampler *s = make(&p, 4);
    if (!s) return;
    int32_t hist[1] = {0}, tok = -1;
    CHECK_EQ_INT(qeil_sampler_sample_u(s, l, 4, hist, 1, 0.5, &tok, NULL), QEIL_OK);
    CHECK_EQ_INT(tok, 3);
    qeil_sampler_free(s);
}

TEST(same_seed_same_tokens)
{
    enum { V = 500, STEPS = 200 };
    static float l[V];
    qeil_rng r;
    qeil_rng_seed(&r, 11);
    for (int i = 0; i < V; i++) l[i] = (float)(qeil_rng_uniform(&r) * 4.0);
    qeil_sampler_params p = qeil_sampler_default_params();
    p.seed = 1234;
    p.repeat_penalty = 1.1f;
    qeil_sampler *a = make(&p, V), *b = make(&p, V);
    if (!a || !b) return;
    int32_t ha[STEPS], hb[STEPS];
    int differ = 0, distinct = 0;
    for (int k = 0; k < STEPS; k++) {
        CHECK_EQ_INT(qeil_sampler_sample(a, l, V, ha, (size_t)k, &ha[k], NULL), QEIL_OK);
        CHECK_EQ_INT(qeil_sampler_sample(b, l, V, hb, (size_t)k, &hb[k], NULL), QEIL_OK);
        differ |= ha[k] != hb[k];
        distinct += k > 0 && ha[k] != ha[k - 1];
    }
    CHECK(!differ);
    CHECK(distinct > 10); /* it did sample, not just repeat one token */
    /* set_seed restarts the stream */
    qeil_sampler_set_seed(a, 1234);
    int32_t h2[STEPS];
    for (int k = 0; k < STEPS; k++) {
        CHECK_EQ_INT(qeil_sampler_sample(a, l, V, h2, (size_t)k, &h2[k], NULL), QEIL_OK);
        if (h2[k] != ha[k]) {
            TEST_FAIL_("step %d: %d != %d after set_seed", k, (int)h2[k], (int)ha[k]);
            break;
        }
    }
    CHECK_EQ_INT((long long)qeil_sampler_get_params(a).seed, 1234);
    qeil_sampler_free(a);
    qeil_sampler_free(b);
}

/* Pearson chi-square of observed counts against expected probabilities. */
static double chi_square(const int *obs, const double *prob, int k, int n)
{
    double x2 = 0;
    for (int i = 0; i < k; i++) {
        double e = prob[i] * n;
        x2 += (obs[i] - e) * (obs[i] - e) / e;
    }
    return x2;
}

TEST(frequencies_match_distribution)
{
    enum { V = 8, N = 20000 };
    const float l[V] = {0.3f, -1.2f, 2.0f, 0.0f, 1.1f, -0.4f, 0.9f, -2.5f};
    /* Case 1: plain softmax, 8 categories, 7 degrees of freedom.
     * Case 2: temp 0.7, top-k 5, renormalised over the 5 kept: 4 dof.
     * Critical values at p = 0.001 (chi-square table): 24.32 (7), 18.47 (4).
     * The draws are deterministic (fixed seed), so this cannot flake. */
    for (int c = 0; c < 2; c++) {
        qeil_sampler_params p = plain();
        p.seed = 2024 + (uint64_t)c;
        if (c == 1) {
            p.temp = 0.7f;
            p.top_k = 5;
        }
        double prob[V], z = 0, crit = c == 0 ? 24.32 : 18.47;
        /* expected: softmax(l / temp) over the kept set */
        float sorted[V];
        memcpy(sorted, l, sizeof sorted);
        for (int i = 0; i < V; i++) /* k-th largest as the top-k cut */
            for (int j = i + 1; j < V; j++)
                if (sorted[j] > sorted[i]) {
                    float t = sorted[i];
                    sorted[i] = sorted[j];
                    sorted[j] = t;
                }
        float cut = c == 1 ? sorted[4] : -INFINITY;
        for (int i = 0; i < V; i++) {
            prob[i] = l[i] >= cut ? exp((double)l[i] / p.temp) : 0.0;
            z += prob[i];
        }
        for (int i = 0; i < V; i++) prob[i] /= z;
        qeil_sampler *s = make(&p, V);
        if (!s) return;
        int obs[V] = {0}, bad = 0;
        double sum_final[V] = {0};
        for (int k = 0; k < N; k++) {
            int32_t tok = -1;
            qeil_sampler_logprob lp;
            if (qeil_sampler_sample(s, l, V, NULL, 0, &tok, &lp) != QEIL_OK || tok < 0 || tok >= V) {
                bad = 1;
                break;
            }
            obs[tok]++;
            sum_final[tok] = lp.final;
        }
        CHECK(!bad);
        /* filtered tokens are never drawn; the rest match in chi-square */
        int kept = 0, obs_k[V];
        double prob_k[V];
        for (int i = 0; i < V; i++) {
            if (prob[i] == 0.0) {
                CHECK_EQ_INT(obs[i], 0);
                continue;
            }
            CHECK_NEAR(sum_final[i], log(prob[i]), 1e-5, 1e-6);
            obs_k[kept] = obs[i];
            prob_k[kept++] = prob[i];
        }
        double x2 = chi_square(obs_k, prob_k, kept, N);
        if (!(x2 < crit)) TEST_FAIL_("case %d: chi-square %.2f >= %.2f", c, x2, crit);
        qeil_sampler_free(s);
    }
}

TEST(logprobs_are_consistent)
{
    /* Over a fine sweep of u, the distinct chosen tokens are the kept set:
     * their final probabilities sum to 1, and raw log-probabilities are the
     * model's softmax at temperature 1. */
    enum { V = 300 };
    static float l[V];
    qeil_rng r;
    qeil_rng_seed(&r, 99);
    for (int i = 0; i < V; i++) l[i] = (float)(qeil_rng_uniform(&r) * 6.0 - 3.0);
    double lse = log_sum_exp(l, V);
    static const float temps[] = {0.3f, 0.8f, 1.0f, 2.5f};
    for (size_t ti = 0; ti < 4; ti++) {
        qeil_sampler_params p = qeil_sampler_default_params();
        p.temp = temps[ti];
        p.top_k = 60;
        p.top_p = 0.9f;
        p.min_p = 0.02f;
        qeil_sampler *s = make(&p, V);
        if (!s) return;
        static double fin[V];
        static int hit[V];
        memset(hit, 0, sizeof hit);
        for (int k = 0; k < 20000; k++) {
            double u = (k + 0.5) / 20000.0;
            int32_t tok = -1;
            qeil_sampler_logprob lp;
            if (qeil_sampler_sample_u(s, l, V, NULL, 0, u, &tok, &lp) != QEIL_OK) break;
            CHECK(lp.final <= 1e-12 && lp.raw <= 0);
            if (!hit[tok]) CHECK_NEAR(lp.raw, (double)l[tok] - lse, 1e-6, 1e-6);
            hit[tok] = 1;
            fin[tok] = lp.final;
        }
        double sum = 0;
        int n = 0;
        for (int i = 0; i < V; i++)
            if (hit[i]) {
                sum += exp(fin[i]);
                n++;
            }
        CHECK(n > 1 && n <= 60);
        /* every kept token has p >= min_p * p_max >= 0.02 / 60, far above the
         * sweep's step of 1/20000, so the sweep hits them all */
        CHECK_NEAR(sum, 1.0, 1e-9, 0);
        qeil_sampler_free(s);
    }
}

/* ------------------------------------------------------------------------ */
/* Brute force on a large vocabulary: full sort, then the rules of the       */
/* header applied literally. Exercises the partial sorts inside.             */
/* ------------------------------------------------------------------------ */

typedef struct {
    float l;
    int32_t id;
} ref_c;

static int ref_cmp(const void *pa, const void *pb)
{
    const ref_c *a = pa, *b = pb;
    if (a->l != b->l) return a->l > b->l ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

static int32_t reference(const float *l, uint32_t n, const qeil_sampler_params *p, double u,
                         ref_c *c, double *pr)
{
    for (uint32_t i = 0; i < n; i++) {
        c[i].l = l[i];
        c[i].id = (int32_t)i;
    }
    qsort(c, n, sizeof *c, ref_cmp);
    size_t keep = n;
    double z = 0;
    for (size_t i = 0; i < n; i++) pr[i] = exp(((double)c[i].l - c[0].l) / p->temp);
    if (p->top_k) keep = p->top_k;
    for (size_t i = 0; i < keep; i++) z += pr[i];
    if (p->top_p < 1) {
        double cum = 0;
        size_t i = 0;
        while (i < keep) {
            cum += pr[i++];
            if (cum >= p->top_p * z) break;
        }
        keep = i;
    }
    if (p->min_p > 0) {
        size_t i = 0;
        while (i < keep && pr[i] >= p->min_p) i++;
        keep = i;
    }
    z = 0;
    for (size_t i = 0; i < keep; i++) z += pr[i];
    double cum = 0;
    for (size_t i = 0; i < keep; i++) {
        cum += pr[i];
        if (cum > u * z) return c[i].id;
    }
    return c[keep - 1].id;
}

TEST(large_vocab_matches_brute_force)
{
    enum { V = 151936 }; /* Qwen2's vocabulary */
    float *l = malloc(sizeof(float) * V);
    ref_c *rc = malloc(sizeof(ref_c) * V);
    double *pr = malloc(sizeof(double) * V);
    CHECK(l && rc && pr);
    if (!l || !rc || !pr) goto out;
    qeil_rng r;
    qeil_rng_seed(&r, 7);
    for (int i = 0; i < V; i++) {
        /* rounded to 1/64 so many logits tie: the id tie-break matters */
        l[i] = (float)floor((qeil_rng_uniform(&r) * 8.0 - 4.0) * 64.0) / 64.0f;
    }
    static const struct {
        float temp;
        uint32_t top_k;
        float top_p, min_p;
    } cfg[] = {
        {1.0f, 0, 1.0f, 0.0f},   {1.0f, 0, 0.9f, 0.0f},  {0.5f, 0, 0.5f, 0.0f},
        {1.0f, 0, 1.0f, 0.05f},  {0.8f, 40, 0.95f, 0.05f}, {2.0f, 1000, 0.99f, 0.0f},
        {0.1f, 0, 0.95f, 0.2f},  {1.0f, 0, 0.999f, 0.9f},
    };
    for (size_t k = 0; k < sizeof cfg / sizeof *cfg; k++) {
        qeil_sampler_params p = plain();
        p.temp = cfg[k].temp;
        p.top_k = cfg[k].top_k;
        p.top_p = cfg[k].top_p;
        p.min_p = cfg[k].min_p;
        qeil_sampler *s = make(&p, V);
        if (!s) break;
        static const double us[] = {0.0, 0.13, 0.5, 0.77, 0.999999};
        for (size_t j = 0; j < 5; j++) {
            int32_t tok = -1;
            CHECK_EQ_INT(qeil_sampler_sample_u(s, l, V, NULL, 0, us[j], &tok, NULL), QEIL_OK);
            int32_t want = reference(l, V, &p, us[j], rc, pr);
            if (tok != want)
                TEST_FAIL_("config %zu, u %g: token %d, brute force %d", k, us[j], (int)tok,
                           (int)want);
        }
        qeil_sampler_free(s);
    }
out:
    free(l);
    free(rc);
    free(pr);
}

/* ------------------------------------------------------------------------ */
/* Rejections                                                                */
/* ------------------------------------------------------------------------ */

TEST(invalid_params_rejected_by_name)
{
    static const struct {
        const char *field;
        float temp;
        uint32_t top_k;
        float top_p, min_p, penalty;
        uint32_t last_n;
        const char *value, *range;
    } t[] = {
        {"temp", 100.5f, 0, 1, 0, 1, 64, "100.5", "0..100"},
        {"temp", -0.1f, 0, 1, 0, 1, 64, "-0.1", "0..100"},
        {"temp", NAN, 0, 1, 0, 1, 64, "nan", "0..100"},
        {"top_k", 1, 101, 1, 0, 1, 64, "101", "0..100"},
        {"top_p", 1, 0, 0.0f, 0, 1, 64, "0", "(0, 1]"},
        {"top_p", 1, 0, 1.5f, 0, 1, 64, "1.5", "(0, 1]"},
        {"min_p", 1, 0, 1, 1.0f, 1, 64, "1", "[0, 1)"},
        {"min_p", 1, 0, 1, -0.25f, 1, 64, "-0.25", "[0, 1)"},
        {"repeat_penalty", 1, 0, 1, 0, 0.0f, 64, "0", "(0, 10]"},
        {"repeat_penalty", 1, 0, 1, 0, 10.5f, 64, "10.5", "(0, 10]"},
        {"repeat_last_n", 1, 0, 1, 0, 1, 2000000, "2000000", "0..1048576"},
    };
    for (size_t k = 0; k < sizeof t / sizeof *t; k++) {
        qeil_sampler_params p = plain();
        p.temp = t[k].temp;
        p.top_k = t[k].top_k;
        p.top_p = t[k].top_p;
        p.min_p = t[k].min_p;
        p.repeat_penalty = t[k].penalty;
        p.repeat_last_n = t[k].last_n;
        qeil_sampler *s = (qeil_sampler *)&p; /* must be reset to NULL */
        CHECK_EQ_INT(qeil_sampler_create(ctx, &p, 100, &s), QEIL_ERR_RANGE);
        CHECK(s == NULL);
        const char *m = qeil_ctx_errmsg(ctx);
        CHECK_CONTAINS(m, t[k].field);
        CHECK_CONTAINS(m, t[k].value);
        CHECK_CONTAINS(m, t[k].range);
    }
    /* the edges of each range are valid */
    qeil_sampler_params p = plain();
    p.temp = 100.0f;
    p.top_k = 100;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.repeat_penalty = 10.0f;
    CHECK_EQ_INT(qeil_sampler_params_validate(ctx, &p, 100), QEIL_OK);
    p.temp = 0.0f;
    p.repeat_penalty = 0.01f;
    p.min_p = 0.999f;
    CHECK_EQ_INT(qeil_sampler_params_validate(ctx, &p, 100), QEIL_OK);
    CHECK_EQ_INT(qeil_sampler_params_validate(ctx, &p, 0), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "n_vocab");
    qeil_sampler_free(NULL);
}

TEST(bad_inputs_rejected)
{
    qeil_sampler_params p = plain();
    qeil_sampler *s = make(&p, 4);
    if (!s) return;
    float l[4] = {0, 1, NAN, 2};
    int32_t tok;
    CHECK_EQ_INT(qeil_sampler_sample_u(s, l, 4, NULL, 0, 0.5, &tok, NULL), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "logits[2]");
    l[2] = INFINITY;
    CHECK_EQ_INT(qeil_sampler_sample(s, l, 4, NULL, 0, &tok, NULL), QEIL_ERR_RANGE);
    float minf[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
    CHECK_EQ_INT(qeil_sampler_sample(s, minf, 4, NULL, 0, &tok, NULL), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "-inf");
    l[2] = 0.5f;
    int32_t hist[3] = {1, 4, 0};
    CHECK_EQ_INT(qeil_sampler_sample(s, l, 4, hist, 3, &tok, NULL), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "history[1]");
    hist[1] = -3;
    CHECK_EQ_INT(qeil_sampler_sample(s, l, 4, hist, 3, &tok, NULL), QEIL_ERR_RANGE);
    CHECK_EQ_INT(qeil_sampler_sample(s, l, 5, NULL, 0, &tok, NULL), QEIL_ERR_INVALID);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "n_vocab");
    CHECK_EQ_INT(qeil_sampler_sample_u(s, l, 4, NULL, 0, 1.0, &tok, NULL), QEIL_ERR_RANGE);
    CHECK_EQ_INT(qeil_sampler_sample_u(s, l, 4, NULL, 0, -0.1, &tok, NULL), QEIL_ERR_RANGE);
    CHECK_EQ_INT(qeil_sampler_sample(s, NULL, 4, NULL, 0, &tok, NULL), QEIL_ERR_INVALID);
    CHECK_EQ_INT(qeil_sampler_sample(s, l, 4, NULL, 2, &tok, NULL), QEIL_ERR_INVALID);
    /* -inf entries are masked, never drawn */
    float masked[4] = {-INFINITY, 0.0f, -INFINITY, 0.0f};
    for (double u = 0; u < 1; u += 0.01) {
        CHECK_EQ_INT(qeil_sampler_sample_u(s, masked, 4, NULL, 0, u, &tok, NULL), QEIL_OK);
        CHECK(tok == 1 || tok == 3);
    }
    qeil_sampler_free(s);
}

TEST(extreme_temperatures)
{
    float l[4];
    logits_from_probs(P4, 4, l);
    qeil_sampler_params p = plain();
    p.temp = 1e-30f; /* effectively greedy, no NaN from 0/0 or inf*0 */
    qeil_sampler *s = make(&p, 4);
    if (!s) return;
    int32_t tok = -1;
    qeil_sampler_logprob lp;
    CHECK_EQ_INT(qeil_sampler_sample_u(s, l, 4, NULL, 0, 0.999, &tok, &lp), QEIL_OK);
    CHECK_EQ_INT(tok, 2);
    CHECK_NEAR(lp.final, 0.0, 0, 1e-12);
    qeil_sampler_free(s);
    p.temp = 100.0f; /* nearly uniform: u = 0.9 falls in the 4th quarter */
    s = make(&p, 4);
    if (!s) return;
    CHECK_EQ_INT(qeil_sampler_sample_u(s, l, 4, NULL, 0, 0.9, &tok, &lp), QEIL_OK);
    CHECK_EQ_INT(tok, 1);
    CHECK_NEAR(lp.final, log(0.25), 0.02, 0);
    qeil_sampler_free(s);
}

/* ------------------------------------------------------------------------ */
/* The whole-row passes (engine/logits.h)                                    */
/* ------------------------------------------------------------------------ */

TEST(logits_exp_accuracy)
{
    /* against exp in double on a fine grid of [-87, 0] and at the edges */
    double worst = 0;
    for (int k = 0; k <= 870000; k++) {
        float x = (float)(-87.0 * k / 870000.0);
        double want = exp((double)x), got = qeil_logits_exp(x);
        double rel = fabs(got - want) / want;
        if (rel > worst) worst = rel;
    }
    if (worst > 2e-7) TEST_FAIL_("worst relative error %.3g > 2e-7", worst);
    CHECK(qeil_logits_exp(0.0f) == 1.0f);
    CHECK(qeil_logits_exp(-0.0f) == 1.0f);
    CHECK(qeil_logits_exp(-87.5f) == 0.0f);
    CHECK(qeil_logits_exp(-INFINITY) == 0.0f);
    CHECK(qeil_logits_exp(NAN) == 0.0f);
}

/* Random rows in [-20, 20) with some -inf, lengths around every tail. */
static void random_row(qeil_rng *r, float *l, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        l[i] = qeil_rng_below(r, 50) == 0 ? -INFINITY : (float)(40 * qeil_rng_uniform(r) - 20);
}

TEST(logits_avx2_matches_portable)
{
    if (qeil_simd_best() < QEIL_SIMD_AVX2) {
        test_skip_ = "this CPU has no AVX2";
        return;
    }
    enum { NMAX = 151936 };
    float *l = malloc(sizeof *l * NMAX);
    if (!l) return;
    qeil_rng r;
    qeil_rng_seed(&r, 11);
    static const uint32_t big[] = {1000, 32000, 151936};
    for (uint32_t t = 0; t < 70 + 3; t++) {
        uint32_t n = t < 70 ? t + 1 : big[t - 70];
        random_row(&r, l, n);
        float m0 = 0, m1 = 0;
        CHECK_EQ_INT(qeil_logits_max(QEIL_SIMD_SCALAR, l, n, &m0), 1);
        CHECK_EQ_INT(qeil_logits_max(QEIL_SIMD_AVX2, l, n, &m1), 1);
        if (m0 != m1) TEST_FAIL_("n=%u: max %g != %g", n, (double)m0, (double)m1);
        if (m0 == -INFINITY) continue;
        for (uint32_t from = 0; from < n; from += 1 + n / 16) {
            float v = l[from + (n - from) / 2];
            for (int gt = 0; gt < 2; gt++)
                CHECK_EQ_INT(qeil_logits_find(QEIL_SIMD_SCALAR, l, from, n, v, gt),
                             qeil_logits_find(QEIL_SIMD_AVX2, l, from, n, v, gt));
        }
        double s0 = qeil_logits_sum_exp(QEIL_SIMD_SCALAR, l, n, m0);
        double s1 = qeil_logits_sum_exp(QEIL_SIMD_AVX2, l, n, m0);
        if (memcmp(&s0, &s1, sizeof s0) != 0)
            TEST_FAIL_("n=%u: sum_exp %.17g != %.17g (bits must match)", n, s0, s1);
        /* and the sum is the sum: against exp in double */
        double want = 0;
        for (uint32_t i = 0; i < n; i++) want += exp((double)l[i] - (double)m0);
        CHECK_NEAR(s0, want, 0, 1e-6);
        /* a bad entry anywhere is reported by both */
        uint32_t at = (uint32_t)qeil_rng_below(&r, n);
        float keep = l[at];
        l[at] = (t & 1) ? NAN : INFINITY;
        CHECK_EQ_INT(qeil_logits_max(QEIL_SIMD_SCALAR, l, n, &m0), 0);
        CHECK_EQ_INT(qeil_logits_max(QEIL_SIMD_AVX2, l, n, &m1), 0);
        l[at] = keep;
    }
    free(l);
}

/* Greedy with a repetition penalty on a vocabulary large enough for the
 * eight-wide passes, against the penalised argmax by brute force; penalties
 * above and below 1, with the history holding the raw maximum or not. */
TEST(greedy_penalty_matches_brute_force)
{
    enum { NV = 1003, NH = 40 };
    static float l[NV], pen[NV];
    int32_t hist[NH];
    static const float pens[] = {1.3f, 0.7f, 10.0f};
    qeil_rng r;
    qeil_rng_seed(&r, 5);
    for (size_t pi = 0; pi < sizeof pens / sizeof *pens; pi++) {
        qeil_sampler_params p = plain();
        p.temp = 0.0f;
        p.repeat_penalty = pens[pi];
        p.repeat_last_n = 32;
        qeil_sampler *s = make(&p, NV);
        if (!s) return;
        for (int trial = 0; trial < 200; trial++) {
            random_row(&r, l, NV);
            uint32_t top = 0;
            for (uint32_t i = 1; i < NV; i++)
                if (l[i] > l[top]) top = i;
            for (int h = 0; h < NH; h++) hist[h] = (int32_t)qeil_rng_below(&r, NV);
            if (trial % 2) hist[NH - 1 - trial % 8] = (int32_t)top; /* penalise the top */
            memcpy(pen, l, sizeof l);
            static uint8_t seen[NV];
            memset(seen, 0, sizeof seen);
            for (int h = NH - 32; h < NH; h++) {
                int32_t id = hist[h];
                if (seen[id]) continue;
                seen[id] = 1;
                if (pen[id] <= 0.0f) pen[id] *= p.repeat_penalty;
                else pen[id] /= p.repeat_penalty;
            }
            int32_t want = 0;
            for (int32_t i = 1; i < NV; i++)
                if (pen[i] > pen[want]) want = i;
            int32_t tok = -1;
            CHECK_EQ_INT(qeil_sampler_sample_u(s, l, NV, hist, NH, 0.5, &tok, NULL), QEIL_OK);
            if (tok != want) {
                TEST_FAIL_("penalty %g trial %d: token %d != %d", (double)p.repeat_penalty,
                           trial, (int)tok, (int)want);
                break;
            }
        }
        qeil_sampler_free(s);
    }
}

int main(void)
{
    ctx = qeil_ctx_create(NULL);
    if (!ctx) return 1;
    RUN(greedy_picks_argmax_lowest_id_on_ties);
    RUN(top_k_1_is_greedy);
    RUN(draw_with_fixed_uniform);
    RUN(top_p_keeps_shortest_prefix_with_mass);
    RUN(min_p_threshold);
    RUN(temperature_then_filters);
    RUN(repetition_penalty_table);
    RUN(same_seed_same_tokens);
    RUN(frequencies_match_distribution);
    RUN(logprobs_are_consistent);
    RUN(large_vocab_matches_brute_force);
    RUN(invalid_params_rejected_by_name);
    RUN(bad_inputs_rejected);
    RUN(extreme_temperatures);
    RUN(logits_exp_accuracy);
    RUN(logits_avx2_matches_portable);
    RUN(greedy_penalty_matches_brute_force);
    qeil_ctx_free(ctx);
    return test_summary("sampler");
}
