/*
 * sampler.h — pick the next token from a row of logits: repetition penalty,
 * temperature, top-k, top-p, min-p, then a draw with the sampler's own RNG.
 * Returns the chosen token's log-probability twice: under the distribution
 * actually sampled from, and under the model's raw softmax (what the
 * selection cascade uses as the sample's log-likelihood).
 *
 * Usage:
 *
 *     qeil_sampler_params sp = qeil_sampler_default_params();
 *     sp.temp = 0.7f;
 *     sp.seed = 1234;
 *     qeil_sampler *s = NULL;
 *     if (qeil_sampler_create(ctx, &sp, n_vocab, &s) != QEIL_OK) { ...errmsg... }
 *     int32_t tok;
 *     qeil_sampler_logprob lp;
 *     qeil_sampler_sample(s, logits, n_vocab, history, n_history, &tok, &lp);
 *     qeil_sampler_free(s);
 *
 * Pipeline of one call (docs/sampler.md has the equations):
 *   1. repetition penalty on every distinct token among the last
 *      repeat_last_n entries of history (llama.cpp convention: a positive
 *      logit is divided by repeat_penalty, a negative one multiplied);
 *   2. temp == 0: greedy — the largest penalised logit, ties to the lowest
 *      id; steps 3–6 are skipped;
 *   3. temperature: p_i ∝ exp(l_i / temp);
 *   4. top-k: keep the k most probable (ties to the lower id);
 *   5. top-p: keep the shortest most-probable-first prefix whose mass is
 *      ≥ top_p of what top-k kept;
 *   6. min-p: keep tokens with p_i ≥ min_p · max_j p_j;
 *   7. renormalise the kept set and draw: with u uniform in [0, 1), the kept
 *      tokens in order of decreasing probability (ties: lower id first), the
 *      first whose cumulative mass exceeds u · (kept mass) is chosen.
 *
 * Determinism: the same seed, params, logits and history give the same
 * tokens on every machine and thread count (the order of candidates is a
 * total order, and every call consumes exactly one uniform from the RNG,
 * greedy or not). No allocation after create: scratch for n_vocab
 * candidates is allocated once. Thread-safety: a sampler is mutable state;
 * use one per thread (or per sequence).
 */
#ifndef QEIL_SAMPLER_H
#define QEIL_SAMPLER_H

#include "qeil/qeil.h"

#ifdef __cplusplus
extern "C" {
#endif

#define QEIL_SAMPLER_MAX_VOCAB (1u << 24)
#define QEIL_SAMPLER_MAX_TEMP 100.0
#define QEIL_SAMPLER_MAX_REPEAT_PENALTY 10.0
#define QEIL_SAMPLER_MAX_REPEAT_LAST_N (1u << 20)

typedef struct {
    float temp;             /* 0 = greedy; [0, 100]; default 0.8 */
    uint32_t top_k;         /* 0 = off; [0, n_vocab]; default 40 */
    float top_p;            /* 1 = off; (0, 1]; default 0.95 */
    float min_p;            /* 0 = off; [0, 1); default 0.05 */
    float repeat_penalty;   /* 1 = off; (0, 10]; default 1.0 */
    uint32_t repeat_last_n; /* history tokens penalised, 0 = none; default 64 */
    uint64_t seed;          /* RNG seed; default 0 — callers should set it and
                               report it (the CLI prints the one it used) */
} qeil_sampler_params;

/* llama.cpp's defaults for the same knobs (temp 0.8, top-k 40, top-p 0.95,
 * min-p 0.05, repeat penalty 1.0 over the last 64 tokens), seed 0. */
QEIL_API qeil_sampler_params qeil_sampler_default_params(void);

/* Check every field; n_vocab (1..QEIL_SAMPLER_MAX_VOCAB) bounds top_k. On
 * failure returns QEIL_ERR_RANGE with "FIELD: VALUE is outside RANGE". */
QEIL_API qeil_status qeil_sampler_params_validate(qeil_ctx *ctx, const qeil_sampler_params *p,
                                                  uint32_t n_vocab);

typedef struct qeil_sampler qeil_sampler;

/* Validate p, allocate scratch for n_vocab candidates and seed the RNG.
 * ctx (may be NULL) supplies the allocator and receives the error detail;
 * it must outlive the sampler. */
QEIL_API qeil_status qeil_sampler_create(qeil_ctx *ctx, const qeil_sampler_params *p, uint32_t n_vocab,
                                         qeil_sampler **out);
QEIL_API void qeil_sampler_free(qeil_sampler *s); /* NULL is a no-op */

/* Re-seed the RNG (e.g. one stream per repeated sample). */
QEIL_API void qeil_sampler_set_seed(qeil_sampler *s, uint64_t seed);
QEIL_API qeil_sampler_params qeil_sampler_get_params(const qeil_sampler *s);

/* Log-probabilities (natural log) of the chosen token. */
typedef struct {
    /* Under the distribution that was sampled from: after the penalty,
     * temperature and the top-k/top-p/min-p filters, renormalised over the
     * kept tokens. 0 for greedy (temp == 0: the choice was certain). */
    double final;
    /* Under softmax(logits) at temperature 1 over the whole vocabulary, with
     * no penalty and no filter: the model's own log-likelihood of the token,
     * which the selection cascade sums over a sample. Always ≤ 0. */
    double raw;
} qeil_sampler_logprob;

/* Sample one token. logits: n_vocab floats (the engine's row; not
 * modified); n_vocab must equal the sampler's; -inf entries are allowed
 * (masked tokens), NaN/+inf are not. history: the sequence so far (prompt
 * and generated tokens, oldest first; may be NULL when n_history is 0);
 * every id must be in [0, n_vocab). *token gets the id; lp may be NULL.
 * Consumes one uniform from the RNG. Errors: QEIL_ERR_INVALID (NULL, size
 * mismatch), QEIL_ERR_RANGE (bad logit or history id, named). */
QEIL_API qeil_status qeil_sampler_sample(qeil_sampler *s, const float *logits, uint32_t n_vocab,
                                         const int32_t *history, size_t n_history, int32_t *token,
                                         qeil_sampler_logprob *lp);

/* The same with the uniform draw u ∈ [0, 1) given explicitly (the RNG is
 * not touched): table-driven tests and callers with their own RNG. */
QEIL_API qeil_status qeil_sampler_sample_u(qeil_sampler *s, const float *logits, uint32_t n_vocab,
                                           const int32_t *history, size_t n_history, double u,
                                           int32_t *token, qeil_sampler_logprob *lp);

#ifdef __cplusplus
}
#endif

#endif /* QEIL_SAMPLER_H */
