/*
 * select.h — repeated sampling with verification: answer extraction and
 * normalisation, the EAC → ARDE selection cascade with CSVET early stopping,
 * the baselines it is compared against (first sample, fixed-k majority vote,
 * ESC, Adaptive-Consistency), and the metrics (pass@k, accuracy, IPW, ECE).
 *
 * Usage:
 *
 *     // a generator: the engine in production, a fake in tests
 *     static qeil_status gen(void *user, uint32_t first, uint32_t n, qeil_sample *out)
 *     {
 *         static const char *texts[] = {"6 * 7 = 42\n#### 42", "The answer is 42."};
 *         (void)user;
 *         for (uint32_t i = 0; i < n; i++) {
 *             out[i].text = texts[(first + i) % 2];
 *             out[i].text_len = strlen(out[i].text);
 *             out[i].n_tokens = 12;
 *             out[i].logprob_sum = -3.5;
 *         }
 *         return QEIL_OK;
 *     }
 *
 *     qeil_select_params sp = qeil_select_default_params();  // cascade, k = 16
 *     qeil_selector *sel = NULL;
 *     qeil_select_result res;
 *     if (qeil_select_create(ctx, &sp, &sel) != QEIL_OK ||
 *         qeil_select_run(sel, gen, NULL, &res) != QEIL_OK)
 *         fprintf(stderr, "%s\n", qeil_ctx_errmsg(ctx));
 *     else
 *         printf("%s after %u samples (%s)\n", res.answer.text, res.n_samples,
 *                qeil_select_stage_name(res.stage));   // "42 after 3 samples (csvet-bound)"
 *     qeil_select_free(sel);
 *
 * The stages (docs/selection.md has every equation and the reasoning behind
 * every default):
 *   EAC   answer-agreement check: the top cluster of normalised answers is
 *         accepted when its share of the samples drawn is >= eac_share and
 *         its count >= eac_min_votes (and it is strictly ahead);
 *   ARDE  re-ranking when EAC is inconclusive: score = votes
 *         + λ·(mean standardised length-normalised log-likelihood)
 *         − penalties for degenerate samples; highest score wins;
 *   CSVET early stopping, checked after every batch: (a) the leader can no
 *         longer be overturned by the remaining budget; (b) a Dirichlet-
 *         posterior bound says the remaining budget overturns it (or that
 *         it is not the mode) with probability <= csvet_delta (<=
 *         csvet_delta_late once csvet_late_after samples are in); (c) EAC can
 *         no longer accept within the budget (ARDE decides at once).
 *
 * Determinism: no randomness anywhere in this module; the same samples give
 * the same result. Memory: everything is allocated at create (sized by the
 * budget); a run allocates nothing. Thread-safety: a selector is mutable
 * state, use one per thread; the free functions below are reentrant.
 */
#ifndef QEIL_SELECT_H
#define QEIL_SELECT_H

#include "qeil/qeil.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Answers: extraction and normalisation                                    */
/* ------------------------------------------------------------------------ */

#define QEIL_ANSWER_MAX 48                /* bytes of a normalised answer, with the NUL */
#define QEIL_ANSWER_MAX_TEXT (1u << 20)   /* longest text the extractor accepts, bytes */

typedef enum {
    QEIL_ANSWER_NUMERIC = 0, /* GSM8K style: "#### 42", "The answer is 1,234." */
    QEIL_ANSWER_CHOICE = 1   /* ARC style letters A–H: "The answer is (B)", "Answer: C" */
} qeil_answer_mode;

QEIL_API const char *qeil_answer_mode_name(qeil_answer_mode m); /* "numeric", "choice" */

/* A normalised answer. has == 0 is the NONE marker (no extractable answer):
 * text is "" and it never equals anything, not even another NONE. */
typedef struct {
    int has;
    char text[QEIL_ANSWER_MAX]; /* canonical form: "42", "-3.5", "0.75", "1/3", "B" */
} qeil_answer;

/* Extract the final answer from a model's output text (len bytes, need not
 * be NUL-terminated; text may be NULL when len is 0). Rules, in order (the
 * first that yields an answer wins; docs/selection.md lists them in full):
 *   numeric: the first "####" marker, then the last "\boxed{", the last
 *            "answer is / answer: / answer =" phrase, the last "= N", and
 *            finally the last number anywhere in the text;
 *   choice:  the first "####" marker, the last "answer is / answer:" phrase,
 *            then the last line that holds only a letter ("B", "(B)", "B.").
 * Numbers are normalised: thousands commas removed, leading '+' and zeros
 * dropped, trailing fractional zeros dropped, "-0" → "0", a fraction p/q
 * reduced (and written as a decimal when exact). No answer → out->has = 0,
 * status QEIL_OK. Errors: QEIL_ERR_INVALID (NULL out, NULL text with len >
 * 0, bad mode), QEIL_ERR_RANGE (len > QEIL_ANSWER_MAX_TEXT). */
QEIL_API qeil_status qeil_answer_extract(qeil_ctx *ctx, qeil_answer_mode mode, const char *text, size_t len,
                                         qeil_answer *out);

/* Normalise a reference answer as written in a task file ("1,234", "042",
 * "b", "(C)"): the whole string must be one number (numeric) or one letter
 * (choice), surrounding spaces allowed. Errors: QEIL_ERR_FORMAT with the
 * text quoted when it is not. */
QEIL_API qeil_status qeil_answer_normalize(qeil_ctx *ctx, qeil_answer_mode mode, const char *ref,
                                           qeil_answer *out);

/* 1 when both have an answer and the canonical texts are equal; else 0. */
QEIL_API int qeil_answer_equal(const qeil_answer *a, const qeil_answer *b);

/* Word 4-gram repetition ratio of a text: (4-grams that repeat an earlier
 * 4-gram) / (all 4-grams), over the first 2048 whitespace-separated words;
 * 0 when the text has fewer than 8 4-grams. In [0, 1). scratch: NULL or
 * QEIL_SELECT_NGRAM_SLOTS uint64_t (used as a hash set, overwritten); with
 * NULL the function uses 32 KiB of stack. Reentrant. */
#define QEIL_SELECT_NGRAM_SLOTS 4096u
QEIL_API double qeil_answer_repetition(const char *text, size_t len, uint64_t *scratch);

/* ------------------------------------------------------------------------ */
/* Samples and the generator callback                                       */
/* ------------------------------------------------------------------------ */

#define QEIL_SAMPLE_HIT_LIMIT (1u << 0) /* generation stopped at max tokens, not at EOS */
#define QEIL_SAMPLE_FLAGS_ALL (QEIL_SAMPLE_HIT_LIMIT)

/* One generated sample, as the generator reports it. The selector zeroes the
 * slots before each call. text is borrowed: it must stay valid until the
 * generator is called again or qeil_select_run returns, whichever is first;
 * the selector copies what it keeps (the normalised answer, counts,
 * log-likelihood, flags, repetition ratio) before that. */
typedef struct {
    const char *text;   /* generated text, UTF-8; need not be NUL-terminated */
    size_t text_len;    /* bytes, <= QEIL_ANSWER_MAX_TEXT */
    uint32_t n_tokens;  /* tokens generated (prompt excluded) */
    double logprob_sum; /* Σ ln p(token) under the model's raw softmax
                           (qeil_sampler_logprob.raw summed), finite, <= 0 */
    uint32_t flags;     /* QEIL_SAMPLE_* bits; unknown bits are rejected */
} qeil_sample;

/* Generate samples first .. first+n-1 of the current problem into out[0..n-1]
 * (1 <= n <= 64: the selector's batch, ESC window or the cascade's opening
 * batch, never more than the budget leaves). Sample indices are
 * 0-based and consecutive across calls; the generator decides how a sample's
 * index maps to its RNG stream (e.g. seed + index). Return QEIL_OK, or an
 * error status that qeil_select_run returns unchanged (after recording
 * "generator failed on samples F..L" on the selector's ctx). */
typedef qeil_status (*qeil_sample_fn)(void *user, uint32_t first, uint32_t n, qeil_sample *out);

/* ------------------------------------------------------------------------ */
/* Selector                                                                 */
/* ------------------------------------------------------------------------ */

#define QEIL_SELECT_MAX_BUDGET 1024u
#define QEIL_SELECT_MAX_BATCH 64u

typedef enum {
    QEIL_SELECT_CASCADE = 0, /* EAC → ARDE with CSVET early stopping (qeil) */
    QEIL_SELECT_FIRST,       /* the first sample's answer */
    QEIL_SELECT_MAJORITY,    /* self-consistency: k samples, plurality vote (Wang et al., 2023) */
    QEIL_SELECT_ESC,         /* Early-Stopping Self-Consistency (Li et al., ICLR 2024) */
    QEIL_SELECT_ADAPTIVE,    /* Adaptive-Consistency, Beta criterion (Aggarwal et al., EMNLP 2023) */
    QEIL_SELECT_METHOD_COUNT
} qeil_select_method;

/* "cascade", "first", "majority", "esc", "adaptive". */
QEIL_API const char *qeil_select_method_name(qeil_select_method m);
/* Parse one of those names; QEIL_ERR_NOTFOUND naming the allowed set. */
QEIL_API qeil_status qeil_select_method_parse(qeil_ctx *ctx, const char *name, qeil_select_method *out);

/* What CSVET rule (b) bounds. */
enum {
    QEIL_CSVET_PREDICTIVE = 0, /* P(the remaining budget overturns the leader) */
    QEIL_CSVET_MODE = 1        /* P(the leader is not the mode), budget-independent */
};

typedef struct {
    qeil_select_method method; /* default QEIL_SELECT_CASCADE */
    qeil_answer_mode mode;     /* default QEIL_ANSWER_NUMERIC */
    uint32_t budget;           /* k, the most samples per problem; 1..1024; default 16 */
    uint32_t batch;            /* samples per generator call (cascade, majority,
                                  adaptive; `first` draws 1, ESC its window;
                                  the cascade's first call draws
                                  max(batch, eac_min_votes), at most 64);
                                  1..64, the last call draws only what the
                                  budget leaves; default 2 */

    /* EAC */
    double eac_share;          /* τ: top cluster's votes / samples drawn; (0, 1]; default 0.6 */
    uint32_t eac_min_votes;    /* n_min: top cluster's votes; 1..1024; default 3 */

    /* CSVET */
    double csvet_delta;        /* δ: accepted risk of rule (b) (a conservative
                                  union bound: the measured rate is far lower,
                                  docs/selection.md); [0, 0.5]; 0 disables
                                  rule (b); default 0.1 */
    uint32_t csvet_min_samples;/* rule (b) needs at least this many samples; 1..1024; default 3 */
    double csvet_delta_late;   /* δ₂: the risk rule (b) accepts once csvet_late_after
                                  samples are drawn (the evidence is no longer
                                  thin, and little budget is left to change the
                                  answer); [0, 0.5]; default 0.4; set it to δ for
                                  a single threshold */
    uint32_t csvet_late_after; /* n₂: samples drawn before δ₂ applies; 1..1024; default 7 */
    double csvet_prior;        /* Dirichlet pseudo-count per answer; (0, 10]; default 0.5 (Jeffreys) */
    int csvet_unbeatable;      /* 1: rule (a) on (default); 0: off */
    int csvet_bound;           /* rule (b)'s question: QEIL_CSVET_PREDICTIVE (default)
                                  or QEIL_CSVET_MODE */
    int csvet_futility;        /* 1: rule (c) on: stop once EAC can no longer accept
                                  within the budget; 0: off (default: it saves
                                  samples only when the log-likelihood is
                                  informative, docs/selection.md) */

    /* ARDE */
    double arde_lambda;        /* λ: votes per standard deviation of log-likelihood; [0, 100];
                                  default 0.5 */
    double arde_rep_threshold; /* a sample is repetitive when its 4-gram repetition
                                  ratio >= this; (0, 1]; default 0.5 */
    double arde_rep_penalty;   /* votes subtracted per repetitive sample; [0, 1]; default 0.5 */
    double arde_limit_penalty; /* votes subtracted per sample that hit the length
                                  limit; [0, 1]; default 0.5 */

    /* Baselines */
    uint32_t esc_window;       /* ESC window w; 1..64; default 4 */
    double adaptive_conf;      /* Adaptive-Consistency threshold; (0.5, 1); default 0.95 */
} qeil_select_params;

/* The defaults above; docs/selection.md gives the reasoning for each. */
QEIL_API qeil_select_params qeil_select_default_params(void);

/* Check every field; QEIL_ERR_RANGE "FIELD: VALUE is outside RANGE". */
QEIL_API qeil_status qeil_select_params_validate(qeil_ctx *ctx, const qeil_select_params *p);

typedef struct qeil_selector qeil_selector;

/* Validate p and allocate everything a run needs (O(budget) records and a
 * 32 KiB n-gram table). ctx (may be NULL) supplies the allocator and gets
 * the error detail; it must outlive the selector. */
QEIL_API qeil_status qeil_select_create(qeil_ctx *ctx, const qeil_select_params *p, qeil_selector **out);
QEIL_API void qeil_select_free(qeil_selector *s); /* NULL is a no-op */
QEIL_API qeil_select_params qeil_select_get_params(const qeil_selector *s);

/* What decided the answer. */
typedef enum {
    QEIL_STAGE_NO_ANSWER = 0,     /* no sample had an extractable answer: answer is NONE */
    QEIL_STAGE_FIRST,             /* baseline `first` */
    QEIL_STAGE_BUDGET,            /* the whole budget was drawn; plurality vote
                                     (majority; esc/adaptive when they never stopped) */
    QEIL_STAGE_EAC,               /* cascade: the whole budget was drawn; EAC accepted */
    QEIL_STAGE_CSVET_UNBEATABLE,  /* cascade: stopped by rule (a); EAC accepted */
    QEIL_STAGE_CSVET_BOUND,       /* cascade: stopped by rule (b); EAC accepted */
    QEIL_STAGE_ARDE,              /* cascade: EAC inconclusive where sampling ended (the
                                     budget, rule (c), or (a)/(b) below EAC's thresholds);
                                     ARDE chose */
    QEIL_STAGE_ESC_WINDOW,        /* esc: a unanimous window stopped sampling */
    QEIL_STAGE_ADAPTIVE,          /* adaptive: the Beta criterion stopped sampling */
    QEIL_STAGE_COUNT
} qeil_select_stage;

/* "no-answer", "first", "budget", "eac", "csvet-unbeatable", "csvet-bound",
 * "arde", "esc-window", "adaptive". */
QEIL_API const char *qeil_select_stage_name(qeil_select_stage s);

/* Why sampling ended (cascade: even when ARDE then chose the answer). */
typedef enum {
    QEIL_STOP_BUDGET = 0,     /* all `budget` samples drawn (or `first`: its one sample) */
    QEIL_STOP_UNBEATABLE,     /* CSVET rule (a) */
    QEIL_STOP_BOUND,          /* CSVET rule (b) */
    QEIL_STOP_FUTILE,         /* CSVET rule (c): EAC unreachable */
    QEIL_STOP_ESC_WINDOW,     /* ESC: unanimous window */
    QEIL_STOP_ADAPTIVE        /* Adaptive-Consistency criterion */
} qeil_select_stop;

typedef struct {
    qeil_answer answer;       /* the chosen answer (has == 0: NONE) */
    qeil_select_stage stage;  /* what decided it */
    qeil_select_stop stop;    /* why sampling ended */
    uint32_t n_samples;       /* samples drawn */
    uint64_t n_tokens;        /* Σ n_tokens of the samples drawn */
    uint32_t n_none;          /* samples with no extractable answer */
    uint32_t n_clusters;      /* distinct answers */
    uint32_t votes;           /* votes of the chosen answer's cluster (0 for NONE) */
    uint32_t chosen_cluster;  /* its index for qeil_select_cluster_get (UINT32_MAX: NONE) */
    double share;             /* votes / n_samples */
    double mode_risk;         /* CSVET mode bound (docs/selection.md) of the leader where sampling
                                 ended (a bound on P(it is not the mode)), for every
                                 method: a per-problem confidence; 1 with no leader */
} qeil_select_result;

/* Run one problem: draw samples from gen in batches and select an answer
 * with the selector's method. Resets the per-problem state, so a selector
 * is reused across problems. Errors: QEIL_ERR_INVALID (NULL argument), the
 * generator's own status, QEIL_ERR_RANGE for a bad sample ("sample 3:
 * logprob_sum: 0.5 is outside [-inf, 0]"). On error *out is zeroed. */
QEIL_API qeil_status qeil_select_run(qeil_selector *s, qeil_sample_fn gen, void *user,
                                     qeil_select_result *out);

/* Per-cluster detail of the last run, clusters in order of first appearance
 * (index 0 is the first sample's answer, unless it had none). */
typedef struct {
    qeil_answer answer;
    uint32_t votes;          /* samples in the cluster */
    uint32_t first_sample;   /* index of its first sample */
    uint32_t n_repetitive;   /* of them, repetition ratio >= arde_rep_threshold */
    uint32_t n_hit_limit;    /* of them, QEIL_SAMPLE_HIT_LIMIT */
    double mean_ll;          /* mean of logprob_sum / max(1, n_tokens), nats/token */
    double mean_z;           /* ARDE's mean standardised log-likelihood (0 when ARDE did not run) */
    double arde_score;       /* ARDE score (0 when ARDE did not run) */
} qeil_select_cluster;

QEIL_API uint32_t qeil_select_cluster_count(const qeil_selector *s);
/* QEIL_ERR_RANGE when i >= qeil_select_cluster_count(). */
QEIL_API qeil_status qeil_select_cluster_get(const qeil_selector *s, uint32_t i, qeil_select_cluster *out);

/* Per-sample detail of the last run (i < result.n_samples). */
typedef struct {
    qeil_answer answer;      /* normalised (has == 0: NONE) */
    uint32_t cluster;        /* UINT32_MAX for NONE */
    uint32_t n_tokens;
    double logprob_sum;
    uint32_t flags;
    double repetition;       /* qeil_answer_repetition of its text */
} qeil_select_sample_info;

QEIL_API qeil_status qeil_select_sample_get(const qeil_selector *s, uint32_t i, qeil_select_sample_info *out);

/* ------------------------------------------------------------------------ */
/* Metrics                                                                  */
/* ------------------------------------------------------------------------ */

/* Unbiased pass@k estimator (Chen et al., 2021, "Evaluating Large Language
 * Models Trained on Code", eq. 1): 1 − C(n−c, k) / C(n, k), computed as
 * 1 − Π_{i=n−c+1..n} (1 − k/i) (no binomials; summed as logs with log1p
 * and finished with expm1 for precision). n >= 1, c <= n, 1 <= k <= n;
 * exactly 1 when n − c < k. QEIL_ERR_RANGE naming the bad argument. */
QEIL_API qeil_status qeil_metrics_pass_at_k(qeil_ctx *ctx, uint32_t n, uint32_t c, uint32_t k, double *out);

/* Mean pass@k over problems (n[i] samples, c[i] correct). Every n[i] >= k. */
QEIL_API qeil_status qeil_metrics_pass_at_k_mean(qeil_ctx *ctx, const uint32_t *n, const uint32_t *c,
                                                 size_t n_problems, uint32_t k, double *out);

/* Where an energy figure came from, weakest last. */
typedef enum {
    QEIL_PROV_MEASURED = 0,            /* a power/energy sensor measured it */
    QEIL_PROV_MEASURED_TIME_MODELED_POWER, /* measured time × modeled power */
    QEIL_PROV_MODELED                  /* the energy model alone */
} qeil_provenance;

/* "measured", "measured-time×modeled-power" (UTF-8 ×), "modeled". */
QEIL_API const char *qeil_provenance_name(qeil_provenance p);

/* One problem's outcome, filled in by the caller. */
typedef struct {
    int correct;             /* 1: the selected answer equals the reference */
    uint32_t n_samples;      /* samples drawn (>= 1) */
    uint64_t n_tokens;       /* tokens generated */
    double energy_J;         /* energy spent on the problem, finite, >= 0 */
    double time_s;           /* wall time of the problem, finite, >= 0 */
    qeil_provenance energy_src;
} qeil_problem_record;

/* Running totals (a plain value; zero it with qeil_metrics_init). */
typedef struct {
    uint32_t n_problems;
    uint32_t n_correct;
    uint64_t sum_samples;
    uint64_t sum_tokens;
    double sum_energy_J;
    double sum_time_s;
    qeil_provenance energy_src; /* the weakest provenance added so far */
} qeil_metrics_acc;

typedef struct {
    uint32_t n_problems;
    double accuracy;           /* n_correct / n_problems, fraction in [0, 1] */
    double accuracy_pct;       /* × 100 */
    double mean_samples;       /* samples per problem */
    double mean_tokens;        /* tokens per problem */
    double energy_per_problem_J;
    double energy_per_token_J; /* Σ energy / Σ tokens (0 when no tokens) */
    double latency_s;          /* mean wall time per problem */
    double avg_power_W;        /* Σ energy / Σ time */
    double ipw;                /* intelligence per watt: accuracy_pct / avg_power_W, %/W */
    double ece;                /* ECE, accuracy per joule: n_correct / Σ energy
                                  = accuracy / energy_per_problem_J, in correct
                                  answers per J (1/J) */
    int power_valid;           /* 0 when Σ time or Σ energy is 0: power, IPW, ECE and
                                  energy_per_token are then 0 and must not be printed */
    qeil_provenance energy_src;
} qeil_metrics_summary;

QEIL_API void qeil_metrics_init(qeil_metrics_acc *acc);
/* Validate and add one problem (QEIL_ERR_RANGE naming the field). */
QEIL_API qeil_status qeil_metrics_add(qeil_ctx *ctx, qeil_metrics_acc *acc, const qeil_problem_record *r);
/* QEIL_ERR_RANGE when no problem was added. */
QEIL_API qeil_status qeil_metrics_summarize(qeil_ctx *ctx, const qeil_metrics_acc *acc,
                                            qeil_metrics_summary *out);

#ifdef __cplusplus
}
#endif

#endif /* QEIL_SELECT_H */
