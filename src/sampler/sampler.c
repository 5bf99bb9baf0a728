/* sampler.c — token sampling: repetition penalty, temperature, top-k, top-p,
 * min-p, and a draw by inverse CDF over the kept tokens in a fixed total
 * order. Equations and conventions: docs/sampler.md. */
#include "qeil/sampler.h"

#include "sampler/logits.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* State                                                                     */
/* ------------------------------------------------------------------------ */

typedef struct {
    double p;   /* exp((l - l_max) / temp): unnormalised probability, (0, 1] or 0 */
    float l;    /* logit after the repetition penalty */
    int32_t id; /* token id */
} cand;

struct qeil_sampler {
    qeil_ctx *ctx;
    qeil_sampler_params p;
    uint32_t n_vocab;
    qeil_rng rng;
    qeil_simd simd;    /* the logit passes' kernels (logits.h) */
    cand *c;           /* [n_vocab] candidates, permuted by the filters */
    float *pen;        /* [n_vocab] penalised logits; NULL when no penalty */
    uint32_t *stamp;   /* [n_vocab] "already penalised in this call" marks */
    uint32_t stamp_now;
};

qeil_sampler_params qeil_sampler_default_params(void)
{
    /* llama.cpp's common defaults (common/common.h: temp 0.80, top_k 40,
     * top_p 0.95, min_p 0.05, penalty_repeat 1.00, penalty_last_n 64). */
    qeil_sampler_params p;
    p.temp = 0.8f;
    p.top_k = 40;
    p.top_p = 0.95f;
    p.min_p = 0.05f;
    p.repeat_penalty = 1.0f;
    p.repeat_last_n = 64;
    p.seed = 0;
    return p;
}

qeil_status qeil_sampler_params_validate(qeil_ctx *ctx, const qeil_sampler_params *p,
                                         uint32_t n_vocab)
{
    if (!p) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "qeil_sampler: NULL params");
    if (n_vocab < 1 || n_vocab > QEIL_SAMPLER_MAX_VOCAB)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "n_vocab: %u is out of range (allowed 1..%u)",
                             n_vocab, QEIL_SAMPLER_MAX_VOCAB);
    /* !(a <= x && x <= b) also rejects NaN */
    if (!(p->temp >= 0.0f && p->temp <= QEIL_SAMPLER_MAX_TEMP))
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "temp: %g is out of range (allowed 0..%g)",
                             (double)p->temp, QEIL_SAMPLER_MAX_TEMP);
    if (p->top_k > n_vocab)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                             "top_k: %u is out of range (allowed 0..%u, the vocabulary size)",
                             p->top_k, n_vocab);
    if (!(p->top_p > 0.0f && p->top_p <= 1.0f))
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "top_p: %g is out of range (allowed (0, 1])",
                             (double)p->top_p);
    if (!(p->min_p >= 0.0f && p->min_p < 1.0f))
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "min_p: %g is out of range (allowed [0, 1))",
                             (double)p->min_p);
    if (!(p->repeat_penalty > 0.0f && p->repeat_penalty <= QEIL_SAMPLER_MAX_REPEAT_PENALTY))
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                             "repeat_penalty: %g is out of range (allowed (0, %g])",
                             (double)p->repeat_penalty, QEIL_SAMPLER_MAX_REPEAT_PENALTY);
    if (p->repeat_last_n > QEIL_SAMPLER_MAX_REPEAT_LAST_N)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                             "repeat_last_n: %u is out of range (allowed 0..%u)", p->repeat_last_n,
                             QEIL_SAMPLER_MAX_REPEAT_LAST_N);
    return QEIL_OK;
}

qeil_status qeil_sampler_create(qeil_ctx *ctx, const qeil_sampler_params *p, uint32_t n_vocab,
                                qeil_sampler **out)
{
    if (!out) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "qeil_sampler_create: NULL out");
    *out = NULL;
    qeil_status st = qeil_sampler_params_validate(ctx, p, n_vocab);
    if (st != QEIL_OK) return st;
    qeil_sampler *s = qeil_calloc(ctx, 1, sizeof *s);
    if (!s) return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "qeil_sampler_create: out of memory");
    s->ctx = ctx;
    s->p = *p;
    s->n_vocab = n_vocab;
    s->simd = qeil_simd_best();
    s->c = qeil_calloc(ctx, n_vocab, sizeof *s->c);
    s->stamp = qeil_calloc(ctx, n_vocab, sizeof *s->stamp);
    int penalise = p->repeat_penalty != 1.0f && p->repeat_last_n > 0;
    s->pen = penalise ? qeil_calloc(ctx, n_vocab, sizeof *s->pen) : NULL;
    if (!s->c || !s->stamp || (penalise && !s->pen)) {
        qeil_sampler_free(s);
        return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM,
                             "qeil_sampler_create: out of memory for %u candidates", n_vocab);
    }
    qeil_rng_seed(&s->rng, p->seed);
    *out = s;
    return QEIL_OK;
}

void qeil_sampler_free(qeil_sampler *s)
{
    if (!s) return;
    qeil_ctx *ctx = s->ctx;
    qeil_free(ctx, s->c);
    qeil_free(ctx, s->pen);
    qeil_free(ctx, s->stamp);
    qeil_free(ctx, s);
}

void qeil_sampler_set_seed(qeil_sampler *s, uint64_t seed)
{
    if (!s) return;
    s->p.seed = seed;
    qeil_rng_seed(&s->rng, seed);
}

qeil_sampler_params qeil_sampler_get_params(const qeil_sampler *s)
{
    return s ? s->p : qeil_sampler_default_params();
}

/* ------------------------------------------------------------------------ */
/* Ordering: a total order (logit descending, then id ascending), so every   */
/* partial sort below gives one well-defined result on every machine.        */
/* ------------------------------------------------------------------------ */

static int before(const cand *a, const cand *b)
{
    return a->l > b->l || (a->l == b->l && a->id < b->id);
}

static int cand_cmp(const void *pa, const void *pb)
{
    const cand *a = pa, *b = pb;
    if (before(a, b)) return -1;
    if (before(b, a)) return 1;
    return 0;
}

static void swap_c(cand *a, cand *b)
{
    cand t = *a;
    *a = *b;
    *b = t;
}

/* Quickselect on c[lo, hi): afterwards c[kth] is the element that sorted
 * order puts there, everything in [lo, kth) comes before it and everything
 * after comes after. Expected O(hi - lo); a median-of-three pivot, and a
 * plain sort after 64 rounds bounds the worst case at O(n log n). */
static void select_kth(cand *c, size_t lo, size_t hi, size_t kth)
{
    for (int round = 0; hi - lo > 1; round++) {
        if (round == 64) {
            qsort(c + lo, hi - lo, sizeof *c, cand_cmp);
            return;
        }
        size_t mid = lo + (hi - lo) / 2, last = hi - 1;
        /* median of three into c[last] */
        if (before(&c[mid], &c[lo])) swap_c(&c[mid], &c[lo]);
        if (before(&c[last], &c[lo])) swap_c(&c[last], &c[lo]);
        if (before(&c[mid], &c[last])) swap_c(&c[mid], &c[last]);
        cand pivot = c[last];
        size_t store = lo;
        for (size_t i = lo; i < last; i++)
            if (before(&c[i], &pivot)) swap_c(&c[i], &c[store++]);
        swap_c(&c[store], &c[last]);
        if (kth == store) return;
        if (kth < store) hi = store;
        else lo = store + 1;
    }
}

/* Top k of the row l[0, n) into c[0, k) (in heap order, not sorted),
 * with an in-place heap whose root is the last of the kept k in the total
 * order. The row is read in id order, so a later token enters only with a
 * strictly larger logit (on a tie the lower id stays), and the next such
 * token is searched eight at a time: one comparison for most tokens,
 * O(n + k log k log(n/k)) expected, and no copy of the row — much cheaper
 * than a quickselect of all n when k is small (top-k 40 over a 150k
 * vocabulary). */
static void sift_down(cand *h, size_t k, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < k && before(&h[m], &h[l])) m = l;
        if (r < k && before(&h[m], &h[r])) m = r;
        if (m == i) return;
        swap_c(&h[i], &h[m]);
        i = m;
    }
}

static void top_k_heap(qeil_simd simd, const float *l, uint32_t n, cand *c, uint32_t k)
{
    for (uint32_t i = 0; i < k; i++) c[i] = (cand){.p = 0.0, .l = l[i], .id = (int32_t)i};
    for (size_t i = k / 2; i-- > 0;) sift_down(c, k, i);
    for (uint32_t i = qeil_logits_find(simd, l, k, n, c[0].l, 1); i < n;
         i = qeil_logits_find(simd, l, i + 1, n, c[0].l, 1)) {
        c[0] = (cand){.p = 0.0, .l = l[i], .id = (int32_t)i};
        sift_down(c, k, 0);
    }
}

/* Weighted selection: the position, in the total order of c[lo, hi), of
 * the first element whose cumulative mass (the sum of p over it and every
 * element before it) exceeds `target` (strict: the draw) or reaches it
 * (ge != 0: top-p). Rearranges c[lo, hi) so that the elements before the
 * answer occupy c[lo, i) in some order and the answer sits at c[i]. This
 * is the inverse CDF of the sorted order computed without sorting:
 * expected O(hi - lo). When rounding leaves the target beyond the total
 * mass, the answer is the last element in order. */
static size_t select_mass(cand *c, size_t lo, size_t hi, double target, int ge)
{
    double acc = 0.0; /* mass of the elements known to come before c[lo] */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2, last = hi - 1;
        if (before(&c[mid], &c[lo])) swap_c(&c[mid], &c[lo]);
        if (before(&c[last], &c[lo])) swap_c(&c[last], &c[lo]);
        if (before(&c[mid], &c[last])) swap_c(&c[mid], &c[last]);
        cand pivot = c[last];
        size_t store = lo;
        double m = 0.0;
        for (size_t i = lo; i < last; i++)
            if (before(&c[i], &pivot)) {
                m += c[i].p;
                swap_c(&c[i], &c[store++]);
            }
        swap_c(&c[store], &c[last]);
        double below = acc + m, through = below + pivot.p;
        if (ge ? below >= target : below > target) {
            if (store == lo) return lo; /* cannot happen with p ≥ 0; guards the loop */
            hi = store;
        } else if (ge ? through >= target : through > target) {
            return store;
        } else {
            acc = through;
            lo = store + 1;
            if (lo == hi) return hi - 1;
        }
    }
    return lo;
}

/* Move the elements of c[0, n) with p >= thr to the front (in their current
 * relative order); returns how many. */
static size_t keep_at_least(cand *c, size_t n, double thr)
{
    size_t keep = 0;
    for (size_t i = 0; i < n; i++)
        if (c[i].p >= thr) swap_c(&c[i], &c[keep++]);
    return keep;
}

static double mass(const cand *c, size_t n)
{
    double z = 0.0;
    for (size_t i = 0; i < n; i++) z += c[i].p;
    return z;
}

/* ------------------------------------------------------------------------ */
/* Sampling                                                                  */
/* ------------------------------------------------------------------------ */

qeil_status qeil_sampler_sample_u(qeil_sampler *s, const float *logits, uint32_t n_vocab,
                                  const int32_t *history, size_t n_history, double u,
                                  int32_t *token, qeil_sampler_logprob *lp)
{
    if (!s || !logits || !token || (n_history > 0 && !history))
        return qeil_ctx_fail(s ? s->ctx : NULL, QEIL_ERR_INVALID,
                             "qeil_sampler_sample: NULL argument");
    qeil_ctx *ctx = s->ctx;
    if (n_vocab != s->n_vocab)
        return qeil_ctx_fail(ctx, QEIL_ERR_INVALID,
                             "n_vocab: %u does not match the sampler's %u", n_vocab, s->n_vocab);
    if (!(u >= 0.0 && u < 1.0))
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "u: %g is out of range (allowed [0, 1))", u);
    const qeil_sampler_params *p = &s->p;
    cand *c = s->c;

    /* Check, and find the raw maximum (for the raw log-softmax): one pass
     * over the row, eight at a time (logits.h). */
    float raw_max;
    if (!qeil_logits_max(s->simd, logits, n_vocab, &raw_max)) {
        for (uint32_t i = 0; i < n_vocab; i++)
            if (isnan(logits[i]) || logits[i] == INFINITY)
                return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                                     "logits[%u]: %g is not allowed (finite or -inf)", i,
                                     (double)logits[i]);
    }
    if (raw_max == -INFINITY)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "logits: all %u entries are -inf", n_vocab);
    for (size_t i = 0; i < n_history; i++)
        if (history[i] < 0 || (uint32_t)history[i] >= n_vocab)
            return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                                 "history[%zu]: token %d is out of range (allowed 0..%u)", i,
                                 (int)history[i], n_vocab - 1);

    /* 1. Repetition penalty, once per distinct token of the window
     *    (llama.cpp, llama_sampler_penalties_apply: logit <= 0 is multiplied,
     *    logit > 0 divided, so the token always becomes less likely), on a
     *    copy of the row: l is the row every later step reads. */
    const float *l = logits;
    float l_max = raw_max;
    if (s->pen && n_history > 0) {
        float *pen = s->pen;
        memcpy(pen, logits, (size_t)n_vocab * sizeof *pen);
        if (++s->stamp_now == 0) { /* wrapped after 2^32 calls: clear the marks */
            memset(s->stamp, 0, (size_t)n_vocab * sizeof *s->stamp);
            s->stamp_now = 1;
        }
        size_t from = n_history > p->repeat_last_n ? n_history - p->repeat_last_n : 0;
        for (size_t i = from; i < n_history; i++) {
            int32_t id = history[i];
            if (s->stamp[id] == s->stamp_now) continue;
            s->stamp[id] = s->stamp_now;
            if (pen[id] <= 0.0f) pen[id] *= p->repeat_penalty;
            else pen[id] /= p->repeat_penalty;
        }
        /* the penalised maximum; a logit divided by a penalty below 1 may
         * have overflowed to +inf, which the greedy choice still takes */
        l_max = -INFINITY;
        for (size_t i = from; i < n_history; i++)
            if (pen[history[i]] > l_max) l_max = pen[history[i]];
        if (!(l_max >= raw_max)) {
            /* every penalised token fell: the maximum is among the rest */
            if (!qeil_logits_max(s->simd, pen, n_vocab, &l_max)) l_max = INFINITY;
        }
        l = pen;
    }

    int32_t chosen = -1;
    double lp_final = 0.0;

    if (p->temp == 0.0f) {
        /* 2. Greedy: the first token holding the maximum. */
        chosen = (int32_t)qeil_logits_find(s->simd, l, 0, n_vocab, l_max, 0);
    } else {
        size_t n = n_vocab;
        /* 4. Top-k first: it depends only on the order, which temperature
         *    does not change, and then only k exponentials are needed. */
        if (p->top_k > 0 && p->top_k <= n / 8) {
            top_k_heap(s->simd, l, n_vocab, c, p->top_k);
            n = p->top_k;
        } else {
            for (uint32_t i = 0; i < n_vocab; i++) c[i] = (cand){.p = 0.0, .l = l[i], .id = (int32_t)i};
            if (p->top_k > 0 && p->top_k < n) {
                select_kth(c, 0, n, p->top_k - 1);
                n = p->top_k;
            }
        }
        /* 3. Temperature, relative to the maximum (always among the kept)
         *    so exp never overflows; dividing (not multiplying by 1/temp)
         *    keeps 0/temp = 0 for tiny temperatures. expf (~1 ulp of float)
         *    rather than exp: 3x cheaper over a whole vocabulary, and sums
         *    are kept in double. Tokens whose probability underflows to 0
         *    can never be drawn: drop them. */
        for (size_t i = 0; i < n; i++)
            c[i].p = (double)expf((c[i].l - l_max) / p->temp);
        n = keep_at_least(c, n, FLT_MIN);
        double z = mass(c, n);

        /* 5. Top-p: the shortest prefix (in the total order) with mass ≥
         *    top_p of the kept mass; at least one token. */
        if (p->top_p < 1.0f) {
            n = select_mass(c, 0, n, (double)p->top_p * z, 1) + 1;
            z = mass(c, n);
        }

        /* 6. Min-p: p_i ≥ min_p · p_max, and p_max = exp(0) = 1 here. */
        if (p->min_p > 0.0f) {
            n = keep_at_least(c, n, (double)p->min_p);
            z = mass(c, n);
        }

        /* 7. Draw by inverse CDF over the kept tokens in the total order. */
        size_t pick = select_mass(c, 0, n, u * z, 0);
        chosen = c[pick].id;
        lp_final = log(c[pick].p / z);
    }

    *token = chosen;
    if (lp) {
        /* raw log-softmax at temperature 1, max-shifted: every term is in
         * (0, 1], summed in double in a fixed order (logits.h), good to
         * ~1e-7 relative */
        double zr = qeil_logits_sum_exp(s->simd, logits, n_vocab, raw_max);
        lp->raw = (double)logits[chosen] - (double)raw_max - log(zr);
        lp->final = lp_final;
    }
    return QEIL_OK;
}

qeil_status qeil_sampler_sample(qeil_sampler *s, const float *logits, uint32_t n_vocab,
                                const int32_t *history, size_t n_history, int32_t *token,
                                qeil_sampler_logprob *lp)
{
    if (!s) return QEIL_ERR_INVALID;
    /* one uniform per call, greedy or not, so the stream position is the
     * number of calls */
    double u = qeil_rng_uniform(&s->rng);
    return qeil_sampler_sample_u(s, logits, n_vocab, history, n_history, u, token, lp);
}
