/* select.c — the selector: draws samples through the generator callback in
 * batches, clusters their normalised answers, and decides with one of five
 * methods: the qeil cascade (EAC → ARDE with CSVET early stopping) or a
 * baseline (first, majority, ESC, Adaptive-Consistency).
 *
 * All memory is one block allocated at create and sized by the budget; a
 * run allocates nothing. No randomness: the result is a function of the
 * samples. Equations and the reasoning behind every default:
 * docs/selection.md. */
#include "qeil/select.h"
#include "select/select_math.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* State                                                                     */
/* ------------------------------------------------------------------------ */

typedef struct {
    qeil_answer answer;
    uint32_t cluster; /* UINT32_MAX: NONE */
    uint32_t n_tokens;
    uint32_t flags;
    int repetitive;   /* repetition >= arde_rep_threshold */
    double logprob_sum;
    double repetition;
    double ll;        /* logprob_sum / max(1, n_tokens), nats per token */
    double z;         /* ARDE's standardised ll (0 until ARDE runs) */
} srec;

typedef struct {
    qeil_answer answer;
    uint32_t votes, first_sample, n_rep, n_lim;
    double sum_ll;
    double mean_z, score; /* ARDE */
} crec;

struct qeil_selector {
    qeil_ctx *ctx;
    qeil_select_params p;
    void *block;          /* the one allocation everything below lives in */
    qeil_sample *batch;   /* [max(batch, esc_window)] generator output slots */
    srec *smp;            /* [budget] samples of the current problem */
    crec *cl;             /* [budget] clusters, in order of first appearance */
    uint32_t *others;     /* [budget] scratch: rival vote counts for CSVET */
    uint64_t *ngram;      /* [QEIL_SELECT_NGRAM_SLOTS] repetition hash set */
    uint32_t n, n_cl, n_none;
    uint64_t n_tokens;
};

/* ------------------------------------------------------------------------ */
/* Names and parameters                                                      */
/* ------------------------------------------------------------------------ */

static const char *const method_names[QEIL_SELECT_METHOD_COUNT] = {"cascade", "first", "majority",
                                                                  "esc", "adaptive"};
static const char *const stage_names[QEIL_STAGE_COUNT] = {
    "no-answer", "first", "budget", "eac", "csvet-unbeatable", "csvet-bound", "arde",
    "esc-window", "adaptive"};

const char *qeil_select_method_name(qeil_select_method m)
{
    return (unsigned)m < QEIL_SELECT_METHOD_COUNT ? method_names[m] : "?";
}

qeil_status qeil_select_method_parse(qeil_ctx *ctx, const char *name, qeil_select_method *out)
{
    if (!name || !out) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "select method: NULL argument");
    for (int m = 0; m < QEIL_SELECT_METHOD_COUNT; m++)
        if (strcmp(name, method_names[m]) == 0) {
            *out = (qeil_select_method)m;
            return QEIL_OK;
        }
    return qeil_ctx_fail(ctx, QEIL_ERR_NOTFOUND,
                         "select method: '%.64s' is not one of cascade|first|majority|esc|adaptive",
                         name);
}

const char *qeil_select_stage_name(qeil_select_stage s)
{
    return (unsigned)s < QEIL_STAGE_COUNT ? stage_names[s] : "?";
}

qeil_select_params qeil_select_default_params(void)
{
    qeil_select_params p;
    memset(&p, 0, sizeof p);
    p.method = QEIL_SELECT_CASCADE;
    p.mode = QEIL_ANSWER_NUMERIC;
    p.budget = 16;
    p.batch = 2;
    p.eac_share = 0.6;
    p.eac_min_votes = 3;
    p.csvet_delta = 0.1;
    p.csvet_min_samples = 3;
    p.csvet_delta_late = 0.4;
    p.csvet_late_after = 7;
    p.csvet_prior = 0.5;
    p.csvet_unbeatable = 1;
    p.csvet_bound = QEIL_CSVET_PREDICTIVE;
    p.csvet_futility = 0;
    p.arde_lambda = 0.5;
    p.arde_rep_threshold = 0.5;
    p.arde_rep_penalty = 0.5;
    p.arde_limit_penalty = 0.5;
    p.esc_window = 4;
    p.adaptive_conf = 0.95;
    return p;
}

/* lo <= v <= hi, false for NaN */
static int in_range(double v, double lo, double hi) { return v >= lo && v <= hi; }

qeil_status qeil_select_params_validate(qeil_ctx *ctx, const qeil_select_params *p)
{
    if (!p) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "select params: NULL");
    if ((unsigned)p->method >= QEIL_SELECT_METHOD_COUNT)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "method: %d is outside 0..%d", (int)p->method,
                             QEIL_SELECT_METHOD_COUNT - 1);
    if (p->mode != QEIL_ANSWER_NUMERIC && p->mode != QEIL_ANSWER_CHOICE)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "mode: %d is outside 0..1", (int)p->mode);
    if (p->budget < 1 || p->budget > QEIL_SELECT_MAX_BUDGET)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "budget: %u is outside 1..%u", p->budget,
                             QEIL_SELECT_MAX_BUDGET);
    if (p->batch < 1 || p->batch > QEIL_SELECT_MAX_BATCH)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "batch: %u is outside 1..%u", p->batch,
                             QEIL_SELECT_MAX_BATCH);
    if (!(p->eac_share > 0.0 && p->eac_share <= 1.0))
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "eac_share: %g is outside (0, 1]", p->eac_share);
    if (p->eac_min_votes < 1 || p->eac_min_votes > QEIL_SELECT_MAX_BUDGET)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "eac_min_votes: %u is outside 1..%u",
                             p->eac_min_votes, QEIL_SELECT_MAX_BUDGET);
    if (!in_range(p->csvet_delta, 0.0, 0.5))
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "csvet_delta: %g is outside [0, 0.5]",
                             p->csvet_delta);
    if (p->csvet_min_samples < 1 || p->csvet_min_samples > QEIL_SELECT_MAX_BUDGET)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "csvet_min_samples: %u is outside 1..%u",
                             p->csvet_min_samples, QEIL_SELECT_MAX_BUDGET);
    if (!in_range(p->csvet_delta_late, 0.0, 0.5))
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "csvet_delta_late: %g is outside [0, 0.5]",
                             p->csvet_delta_late);
    if (p->csvet_late_after < 1 || p->csvet_late_after > QEIL_SELECT_MAX_BUDGET)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "csvet_late_after: %u is outside 1..%u",
                             p->csvet_late_after, QEIL_SELECT_MAX_BUDGET);
    if (!(p->csvet_prior > 0.0 && p->csvet_prior <= 10.0))
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "csvet_prior: %g is outside (0, 10]",
                             p->csvet_prior);
    if (p->csvet_unbeatable != 0 && p->csvet_unbeatable != 1)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "csvet_unbeatable: %d is outside 0..1",
                             p->csvet_unbeatable);
    if (p->csvet_bound != QEIL_CSVET_PREDICTIVE && p->csvet_bound != QEIL_CSVET_MODE)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "csvet_bound: %d is outside 0..1 "
                             "(predictive, mode)", p->csvet_bound);
    if (p->csvet_futility != 0 && p->csvet_futility != 1)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "csvet_futility: %d is outside 0..1",
                             p->csvet_futility);
    if (!in_range(p->arde_lambda, 0.0, 100.0))
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "arde_lambda: %g is outside [0, 100]",
                             p->arde_lambda);
    if (!(p->arde_rep_threshold > 0.0 && p->arde_rep_threshold <= 1.0))
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "arde_rep_threshold: %g is outside (0, 1]",
                             p->arde_rep_threshold);
    if (!in_range(p->arde_rep_penalty, 0.0, 1.0))
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "arde_rep_penalty: %g is outside [0, 1]",
                             p->arde_rep_penalty);
    if (!in_range(p->arde_limit_penalty, 0.0, 1.0))
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "arde_limit_penalty: %g is outside [0, 1]",
                             p->arde_limit_penalty);
    if (p->esc_window < 1 || p->esc_window > QEIL_SELECT_MAX_BATCH)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "esc_window: %u is outside 1..%u", p->esc_window,
                             QEIL_SELECT_MAX_BATCH);
    if (!(p->adaptive_conf > 0.5 && p->adaptive_conf < 1.0))
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "adaptive_conf: %g is outside (0.5, 1)",
                             p->adaptive_conf);
    return QEIL_OK;
}

/* ------------------------------------------------------------------------ */
/* Create / free                                                             */
/* ------------------------------------------------------------------------ */

static size_t align16(size_t n) { return (n + 15) & ~(size_t)15; }

qeil_status qeil_select_create(qeil_ctx *ctx, const qeil_select_params *p, qeil_selector **out)
{
    if (!out) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "select_create: out is NULL");
    *out = NULL;
    qeil_status st = qeil_select_params_validate(ctx, p);
    if (st != QEIL_OK) return st;

    /* Sizes are bounded by QEIL_SELECT_MAX_BUDGET (1024) and
     * QEIL_SELECT_MAX_BATCH (64): a few hundred KiB at most, no overflow. */
    size_t bcap = p->batch > p->esc_window ? p->batch : p->esc_window;
    size_t open = p->eac_min_votes < QEIL_SELECT_MAX_BATCH ? p->eac_min_votes : QEIL_SELECT_MAX_BATCH;
    if (bcap < open) bcap = open; /* the cascade's opening batch */
    size_t k = p->budget;
    size_t o_self = 0;
    size_t o_batch = align16(o_self + sizeof(qeil_selector));
    size_t o_smp = align16(o_batch + bcap * sizeof(qeil_sample));
    size_t o_cl = align16(o_smp + k * sizeof(srec));
    size_t o_oth = align16(o_cl + k * sizeof(crec));
    size_t o_ng = align16(o_oth + k * sizeof(uint32_t));
    size_t total = o_ng + QEIL_SELECT_NGRAM_SLOTS * sizeof(uint64_t);

    unsigned char *blk = qeil_calloc(ctx, 1, total);
    if (!blk) return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "select_create: out of memory for %zu bytes", total);
    qeil_selector *s = (qeil_selector *)(void *)blk;
    s->ctx = ctx;
    s->p = *p;
    s->block = blk;
    s->batch = (qeil_sample *)(void *)(blk + o_batch);
    s->smp = (srec *)(void *)(blk + o_smp);
    s->cl = (crec *)(void *)(blk + o_cl);
    s->others = (uint32_t *)(void *)(blk + o_oth);
    s->ngram = (uint64_t *)(void *)(blk + o_ng);
    *out = s;
    return QEIL_OK;
}

void qeil_select_free(qeil_selector *s)
{
    if (!s) return;
    qeil_free(s->ctx, s->block);
}

qeil_select_params qeil_select_get_params(const qeil_selector *s)
{
    return s ? s->p : qeil_select_default_params();
}

/* ------------------------------------------------------------------------ */
/* Drawing and clustering                                                    */
/* ------------------------------------------------------------------------ */

static uint32_t left(const qeil_selector *s) { return s->p.budget - s->n; }

static void reset(qeil_selector *s)
{
    s->n = s->n_cl = s->n_none = 0;
    s->n_tokens = 0;
}

/* Copy what we keep of one sample (already validated) and cluster it. */
static qeil_status ingest(qeil_selector *s, const qeil_sample *in)
{
    srec *r = &s->smp[s->n];
    memset(r, 0, sizeof *r);
    qeil_status st = qeil_answer_extract(s->ctx, s->p.mode, in->text, in->text_len, &r->answer);
    if (st != QEIL_OK) return st;
    r->n_tokens = in->n_tokens;
    r->flags = in->flags;
    r->logprob_sum = in->logprob_sum;
    r->repetition = qeil_answer_repetition(in->text, in->text_len, s->ngram);
    r->repetitive = r->repetition >= s->p.arde_rep_threshold;
    r->ll = in->logprob_sum / (double)(in->n_tokens ? in->n_tokens : 1);
    r->cluster = UINT32_MAX;
    s->n_tokens += in->n_tokens;

    if (!r->answer.has) {
        s->n_none++;
    } else {
        uint32_t c = 0;
        while (c < s->n_cl && strcmp(s->cl[c].answer.text, r->answer.text) != 0) c++;
        if (c == s->n_cl) {
            crec *nc = &s->cl[s->n_cl++];
            memset(nc, 0, sizeof *nc);
            nc->answer = r->answer;
            nc->first_sample = s->n;
        }
        crec *cr = &s->cl[c];
        cr->votes++;
        cr->n_rep += (uint32_t)r->repetitive;
        cr->n_lim += (r->flags & QEIL_SAMPLE_HIT_LIMIT) ? 1u : 0u;
        cr->sum_ll += r->ll;
        r->cluster = c;
    }
    s->n++;
    return QEIL_OK;
}

/* Draw m samples (1 <= m <= slots, n + m <= budget) in one generator call. */
static qeil_status draw(qeil_selector *s, qeil_sample_fn gen, void *user, uint32_t m)
{
    memset(s->batch, 0, (size_t)m * sizeof(qeil_sample));
    uint32_t first = s->n;
    qeil_status st = gen(user, first, m, s->batch);
    if (st != QEIL_OK) {
        const char *prev = qeil_ctx_errmsg(s->ctx);
        if (prev && prev[0]) {
            char keep[256];
            snprintf(keep, sizeof keep, "%s", prev);
            return qeil_ctx_fail(s->ctx, st, "generator failed on samples %u..%u: %s: %s", first,
                                 first + m - 1, qeil_status_str(st), keep);
        }
        return qeil_ctx_fail(s->ctx, st, "generator failed on samples %u..%u: %s", first,
                             first + m - 1, qeil_status_str(st));
    }
    for (uint32_t k = 0; k < m; k++) {
        const qeil_sample *in = &s->batch[k];
        uint32_t idx = first + k;
        if (!in->text && in->text_len)
            return qeil_ctx_fail(s->ctx, QEIL_ERR_RANGE, "sample %u: text is NULL with text_len %zu",
                                 idx, in->text_len);
        if (in->text_len > QEIL_ANSWER_MAX_TEXT)
            return qeil_ctx_fail(s->ctx, QEIL_ERR_RANGE, "sample %u: text_len: %zu is outside 0..%u",
                                 idx, in->text_len, (unsigned)QEIL_ANSWER_MAX_TEXT);
        if (!(in->logprob_sum <= 0.0) || !isfinite(in->logprob_sum))
            return qeil_ctx_fail(s->ctx, QEIL_ERR_RANGE,
                                 "sample %u: logprob_sum: %g is outside [-inf, 0] (finite)", idx,
                                 in->logprob_sum);
        if (in->flags & ~(uint32_t)QEIL_SAMPLE_FLAGS_ALL)
            return qeil_ctx_fail(s->ctx, QEIL_ERR_RANGE,
                                 "sample %u: flags: 0x%x has bits outside 0x%x", idx, in->flags,
                                 (unsigned)QEIL_SAMPLE_FLAGS_ALL);
        qeil_status st2 = ingest(s, in);
        if (st2 != QEIL_OK) return st2;
    }
    return QEIL_OK;
}

/* Leader = most votes, ties to the earliest cluster (first appearance; the
 * same order Python's Counter.most_common gives the reference
 * implementations of self-consistency, ESC and Adaptive-Consistency).
 * Returns UINT32_MAX when there is no cluster; *runner gets the runner-up's
 * votes (0 when none). */
static uint32_t leader(const qeil_selector *s, uint32_t *runner)
{
    uint32_t best = UINT32_MAX, bv = 0, rv = 0;
    for (uint32_t c = 0; c < s->n_cl; c++) {
        uint32_t v = s->cl[c].votes;
        if (best == UINT32_MAX || v > bv) {
            if (best != UINT32_MAX) rv = bv;
            best = c;
            bv = v;
        } else if (v > rv) {
            rv = v;
        }
    }
    if (runner) *runner = rv;
    return best;
}

/* Rule (b)'s risk for the current leader: the bound the params select
 * (predictive = 1 for the mode bound, i.e. mode_only = 1 forces it). */
static double risk_now(const qeil_selector *s, uint32_t lead, int mode_only)
{
    if (lead == UINT32_MAX) return 1.0;
    size_t n = 0;
    for (uint32_t c = 0; c < s->n_cl; c++)
        if (c != lead) s->others[n++] = s->cl[c].votes;
    if (mode_only || s->p.csvet_bound == QEIL_CSVET_MODE)
        return qeil_select_csvet_risk(s->cl[lead].votes, s->others, n, s->p.csvet_prior);
    return qeil_select_csvet_overturn_risk(s->cl[lead].votes, s->others, n, s->n, left(s),
                                           s->p.csvet_prior);
}

/* ------------------------------------------------------------------------ */
/* ARDE                                                                      */
/* ------------------------------------------------------------------------ */

/* z-scores are clipped so one outlier sample (a very short text with an
 * extreme per-token mean) cannot outvote a cluster on its own: with the
 * default λ = 0.5 the likelihood term is worth at most 1.5 votes. */
#define ARDE_Z_CLIP 3.0

static uint32_t arde(qeil_selector *s)
{
    /* Standardise the length-normalised log-likelihood over the samples that
     * have an answer and are not repetitive: a looping sample has an
     * inflated likelihood (each repeat is easy to predict) and would skew
     * the mean and deviation. Population statistics; z = 0 when they are
     * undefined (fewer than 2 such samples, or all equal). */
    double sum = 0, sum2 = 0;
    uint32_t m = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        const srec *r = &s->smp[i];
        if (r->cluster == UINT32_MAX || r->repetitive) continue;
        sum += r->ll;
        m++;
    }
    double mean = m ? sum / m : 0.0;
    for (uint32_t i = 0; i < s->n; i++) {
        const srec *r = &s->smp[i];
        if (r->cluster == UINT32_MAX || r->repetitive) continue;
        sum2 += (r->ll - mean) * (r->ll - mean);
    }
    double sd = m >= 2 ? sqrt(sum2 / m) : 0.0;
    for (uint32_t c = 0; c < s->n_cl; c++) s->cl[c].mean_z = 0.0;
    for (uint32_t i = 0; i < s->n; i++) {
        srec *r = &s->smp[i];
        if (r->cluster == UINT32_MAX) continue;
        double z = sd > 1e-12 ? (r->ll - mean) / sd : 0.0;
        if (z > ARDE_Z_CLIP) z = ARDE_Z_CLIP;
        if (z < -ARDE_Z_CLIP) z = -ARDE_Z_CLIP;
        if (r->repetitive && z > 0) z = 0; /* no credit for a loop's likelihood */
        r->z = z;
        s->cl[r->cluster].mean_z += z;
    }
    uint32_t best = UINT32_MAX;
    for (uint32_t c = 0; c < s->n_cl; c++) {
        crec *cr = &s->cl[c];
        cr->mean_z /= (double)cr->votes;
        cr->score = (double)cr->votes - s->p.arde_rep_penalty * cr->n_rep -
                    s->p.arde_limit_penalty * cr->n_lim + s->p.arde_lambda * cr->mean_z;
        if (best == UINT32_MAX) {
            best = c;
            continue;
        }
        const crec *b = &s->cl[best];
        /* deterministic order: score, then votes, then mean ll, then the
         * earlier cluster (already `best` when everything ties) */
        double mll = cr->sum_ll / cr->votes, bll = b->sum_ll / b->votes;
        if (cr->score > b->score ||
            (cr->score == b->score &&
             (cr->votes > b->votes || (cr->votes == b->votes && mll > bll))))
            best = c;
    }
    return best;
}

/* ------------------------------------------------------------------------ */
/* Methods                                                                   */
/* ------------------------------------------------------------------------ */

static uint32_t min_u32(uint32_t a, uint32_t b) { return a < b ? a : b; }

/* EAC: the leader is strictly ahead, has >= n_min votes and a share of the
 * samples drawn (NONE samples included: a sample without an answer did not
 * agree) >= τ. */
static int eac_accepts(const qeil_selector *s, uint32_t lead, uint32_t runner)
{
    if (lead == UINT32_MAX || s->n == 0) return 0;
    uint32_t v = s->cl[lead].votes;
    return v > runner && v >= s->p.eac_min_votes &&
           (double)v >= s->p.eac_share * (double)s->n - 1e-12;
}

/* Could EAC still accept some cluster by the end of the budget? The best
 * case is the leader (votes a) taking every remaining sample: final count
 * a + r out of `budget` samples. */
static int eac_reachable(const qeil_selector *s, uint32_t a)
{
    double best = (double)a + (double)left(s);
    return best >= s->p.eac_min_votes && best >= s->p.eac_share * (double)s->p.budget - 1e-12;
}

static qeil_status run_cascade(qeil_selector *s, qeil_sample_fn gen, void *user,
                               qeil_select_result *res)
{
    qeil_select_stop stop = QEIL_STOP_BUDGET;
    while (left(s) > 0) {
        /* The opening call draws at least eac_min_votes samples: rule (b)
         * cannot fire before the leader has that many votes, so smaller
         * first batches would only add a generator round trip. */
        uint32_t m = s->p.batch;
        if (s->n == 0 && m < s->p.eac_min_votes)
            m = min_u32(s->p.eac_min_votes, QEIL_SELECT_MAX_BATCH);
        qeil_status st = draw(s, gen, user, min_u32(m, left(s)));
        if (st != QEIL_OK) return st;
        uint32_t r = left(s);
        if (r == 0) break; /* a stop with nothing left to save is the budget */
        uint32_t runner, lead = leader(s, &runner);
        if (lead == UINT32_MAX) {
            if (s->p.csvet_futility && !eac_reachable(s, 0)) {
                stop = QEIL_STOP_FUTILE; /* nothing but NONE so far, and too little left */
                break;
            }
            continue;
        }
        uint32_t a = s->cl[lead].votes;
        /* (a) cannot be overturned: even if every remaining sample went to
         * the runner-up it would end below the leader (strictly, so no tie
         * is possible either); a new answer can reach at most r < a. */
        if (s->p.csvet_unbeatable && (uint64_t)a > (uint64_t)runner + r) {
            stop = QEIL_STOP_UNBEATABLE;
            break;
        }
        /* (b) the posterior bound, consulted once the leader has EAC's
         * minimum count (two agreeing samples are never enough evidence);
         * δ = 0 turns the rule off, and from n₂ samples on it accepts δ₂ */
        const double delta =
            s->n >= s->p.csvet_late_after ? s->p.csvet_delta_late : s->p.csvet_delta;
        if (s->p.csvet_delta > 0 && s->n >= s->p.csvet_min_samples &&
            a >= s->p.eac_min_votes && risk_now(s, lead, 0) <= delta) {
            stop = QEIL_STOP_BOUND;
            break;
        }
        /* (c) EAC unreachable: even if every remaining sample joined the
         * leader, its final share or count would stay below EAC's
         * thresholds, so the answer will be ARDE's whatever is drawn. */
        if (s->p.csvet_futility && !eac_reachable(s, a)) {
            stop = QEIL_STOP_FUTILE;
            break;
        }
    }
    res->stop = stop;
    uint32_t runner, lead = leader(s, &runner);
    if (lead == UINT32_MAX) {
        res->stage = QEIL_STAGE_NO_ANSWER;
        return QEIL_OK;
    }
    if (eac_accepts(s, lead, runner)) {
        res->stage = stop == QEIL_STOP_UNBEATABLE ? QEIL_STAGE_CSVET_UNBEATABLE
                   : stop == QEIL_STOP_BOUND      ? QEIL_STAGE_CSVET_BOUND
                                                  : QEIL_STAGE_EAC;
        res->chosen_cluster = lead;
    } else {
        res->stage = QEIL_STAGE_ARDE;
        res->chosen_cluster = arde(s);
    }
    return QEIL_OK;
}

/* Plurality over everything drawn; BUDGET (or the given early stage). */
static void plurality(qeil_selector *s, qeil_select_result *res, qeil_select_stage early)
{
    uint32_t lead = leader(s, NULL);
    if (lead == UINT32_MAX) {
        res->stage = QEIL_STAGE_NO_ANSWER;
        return;
    }
    res->stage = early;
    res->chosen_cluster = lead;
}

static qeil_status run_first(qeil_selector *s, qeil_sample_fn gen, void *user,
                             qeil_select_result *res)
{
    qeil_status st = draw(s, gen, user, 1);
    if (st != QEIL_OK) return st;
    res->stop = QEIL_STOP_BUDGET;
    plurality(s, res, QEIL_STAGE_FIRST);
    return QEIL_OK;
}

static qeil_status run_majority(qeil_selector *s, qeil_sample_fn gen, void *user,
                                qeil_select_result *res)
{
    while (left(s) > 0) {
        qeil_status st = draw(s, gen, user, min_u32(s->p.batch, left(s)));
        if (st != QEIL_OK) return st;
    }
    res->stop = QEIL_STOP_BUDGET;
    plurality(s, res, QEIL_STAGE_BUDGET);
    return QEIL_OK;
}

/* ESC (Li et al., ICLR 2024): draw windows of w samples; stop when every
 * answer in the latest window is the same (zero entropy in the window); the
 * answer is the plurality over all samples drawn. A window with a NONE is
 * not unanimous. The last window may be short when w does not divide the
 * budget; then the budget ends sampling anyway. */
static qeil_status run_esc(qeil_selector *s, qeil_sample_fn gen, void *user,
                           qeil_select_result *res)
{
    uint32_t w = s->p.esc_window;
    res->stop = QEIL_STOP_BUDGET;
    while (left(s) > 0) {
        uint32_t first = s->n, m = min_u32(w, left(s));
        qeil_status st = draw(s, gen, user, m);
        if (st != QEIL_OK) return st;
        if (left(s) == 0) break;
        uint32_t c0 = s->smp[first].cluster;
        int same = c0 != UINT32_MAX;
        for (uint32_t i = first + 1; i < s->n && same; i++) same = s->smp[i].cluster == c0;
        if (same) {
            res->stop = QEIL_STOP_ESC_WINDOW;
            break;
        }
    }
    plurality(s, res, res->stop == QEIL_STOP_ESC_WINDOW ? QEIL_STAGE_ESC_WINDOW : QEIL_STAGE_BUDGET);
    return QEIL_OK;
}

/* Adaptive-Consistency (Aggarwal et al., EMNLP 2023), their default Beta
 * criterion: with v1 >= v2 the top two counts, stop when
 * P(p1 > p2 | v1, v2) = 1 − I_{1/2}(v1 + 1, v2 + 1) >= threshold (0.95 in
 * their code). No minimum sample count, as in the original. */
static qeil_status run_adaptive(qeil_selector *s, qeil_sample_fn gen, void *user,
                                qeil_select_result *res)
{
    res->stop = QEIL_STOP_BUDGET;
    while (left(s) > 0) {
        qeil_status st = draw(s, gen, user, min_u32(s->p.batch, left(s)));
        if (st != QEIL_OK) return st;
        if (left(s) == 0) break;
        uint32_t runner, lead = leader(s, &runner);
        if (lead == UINT32_MAX) continue;
        if (qeil_select_adaptive_prob(s->cl[lead].votes, runner) >= s->p.adaptive_conf) {
            res->stop = QEIL_STOP_ADAPTIVE;
            break;
        }
    }
    plurality(s, res, res->stop == QEIL_STOP_ADAPTIVE ? QEIL_STAGE_ADAPTIVE : QEIL_STAGE_BUDGET);
    return QEIL_OK;
}

qeil_status qeil_select_run(qeil_selector *s, qeil_sample_fn gen, void *user,
                            qeil_select_result *out)
{
    if (out) memset(out, 0, sizeof *out);
    if (!s || !gen || !out)
        return qeil_ctx_fail(s ? s->ctx : NULL, QEIL_ERR_INVALID, "select_run: NULL argument");
    qeil_ctx_clear(s->ctx);
    reset(s);
    qeil_select_result res;
    memset(&res, 0, sizeof res);
    res.chosen_cluster = UINT32_MAX;
    qeil_status st;
    switch (s->p.method) {
    case QEIL_SELECT_CASCADE: st = run_cascade(s, gen, user, &res); break;
    case QEIL_SELECT_FIRST: st = run_first(s, gen, user, &res); break;
    case QEIL_SELECT_MAJORITY: st = run_majority(s, gen, user, &res); break;
    case QEIL_SELECT_ESC: st = run_esc(s, gen, user, &res); break;
    case QEIL_SELECT_ADAPTIVE: st = run_adaptive(s, gen, user, &res); break;
    default: return qeil_ctx_fail(s->ctx, QEIL_ERR_INTERNAL, "method %d", (int)s->p.method);
    }
    if (st != QEIL_OK) {
        reset(s); /* no half-filled state for the accessors */
        return st;
    }
    res.n_samples = s->n;
    res.n_tokens = s->n_tokens;
    res.n_none = s->n_none;
    res.n_clusters = s->n_cl;
    if (res.chosen_cluster != UINT32_MAX) {
        const crec *c = &s->cl[res.chosen_cluster];
        res.answer = c->answer;
        res.votes = c->votes;
        res.share = s->n ? (double)c->votes / (double)s->n : 0.0;
    }
    res.mode_risk = risk_now(s, leader(s, NULL), 1);
    *out = res;
    return QEIL_OK;
}

/* ------------------------------------------------------------------------ */
/* Accessors                                                                 */
/* ------------------------------------------------------------------------ */

uint32_t qeil_select_cluster_count(const qeil_selector *s) { return s ? s->n_cl : 0; }

qeil_status qeil_select_cluster_get(const qeil_selector *s, uint32_t i, qeil_select_cluster *out)
{
    if (!s || !out) return qeil_ctx_fail(s ? s->ctx : NULL, QEIL_ERR_INVALID, "cluster_get: NULL");
    if (i >= s->n_cl)
        return qeil_ctx_fail(s->ctx, QEIL_ERR_RANGE, "cluster: %u is outside 0..%d", i,
                             (int)s->n_cl - 1);
    const crec *c = &s->cl[i];
    memset(out, 0, sizeof *out);
    out->answer = c->answer;
    out->votes = c->votes;
    out->first_sample = c->first_sample;
    out->n_repetitive = c->n_rep;
    out->n_hit_limit = c->n_lim;
    out->mean_ll = c->sum_ll / (double)c->votes;
    out->mean_z = c->mean_z;
    out->arde_score = c->score;
    return QEIL_OK;
}

qeil_status qeil_select_sample_get(const qeil_selector *s, uint32_t i, qeil_select_sample_info *out)
{
    if (!s || !out) return qeil_ctx_fail(s ? s->ctx : NULL, QEIL_ERR_INVALID, "sample_get: NULL");
    if (i >= s->n)
        return qeil_ctx_fail(s->ctx, QEIL_ERR_RANGE, "sample: %u is outside 0..%d", i,
                             (int)s->n - 1);
    const srec *r = &s->smp[i];
    memset(out, 0, sizeof *out);
    out->answer = r->answer;
    out->cluster = r->cluster;
    out->n_tokens = r->n_tokens;
    out->logprob_sum = r->logprob_sum;
    out->flags = r->flags;
    out->repetition = r->repetition;
    return QEIL_OK;
}

/* ------------------------------------------------------------------------ */
/* Stopping-rule math                                                        */
/* ------------------------------------------------------------------------ */

/* ln Γ(x) for x > 0, our own (not libm's lgamma: that one writes the global
 * signgam, so is not reentrant, and differs in the last bits between libms,
 * which would make stop decisions at a threshold platform-dependent).
 * Stirling's series to the x^-11 term for x >= 16, where the first omitted
 * term (1/(156 x^13)) is below 1e-17; smaller x are shifted up with
 * Γ(x) = Γ(x + n) / (x (x+1) ... (x+n-1)). */
static double lngamma(double x)
{
    double shift = 0.0;
    while (x < 16.0) {
        shift += log(x);
        x += 1.0;
    }
    double x2 = 1.0 / (x * x);
    double series =
        (1.0 / 12 - x2 * (1.0 / 360 - x2 * (1.0 / 1260 - x2 * (1.0 / 1680 -
                                                             x2 * (1.0 / 1188 - x2 * 691.0 / 360360))))) /
        x;
    return (x - 0.5) * log(x) - x + 0.91893853320467274178 /* ln √(2π) */ + series - shift;
}

/* Continued fraction for I_x(a, b) (the even/odd terms d_2m, d_2m+1 of the
 * classical expansion), evaluated with the modified Lentz method. Converges
 * fast for x < (a + 1) / (a + b + 2); the caller uses the symmetry
 * I_x(a, b) = 1 − I_{1−x}(b, a) otherwise. */
static double beta_cf(double a, double b, double x)
{
    const double tiny = 1e-300, eps = 1e-16;
    double c = 1.0, d = 1.0 - (a + b) * x / (a + 1.0);
    if (fabs(d) < tiny) d = tiny;
    d = 1.0 / d;
    double h = d;
    for (int m = 1; m <= 1000; m++) {
        double m2 = 2.0 * m;
        double num = m * (b - m) * x / ((a + m2 - 1.0) * (a + m2));
        d = 1.0 + num * d;
        if (fabs(d) < tiny) d = tiny;
        c = 1.0 + num / c;
        if (fabs(c) < tiny) c = tiny;
        d = 1.0 / d;
        h *= d * c;
        num = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0));
        d = 1.0 + num * d;
        if (fabs(d) < tiny) d = tiny;
        c = 1.0 + num / c;
        if (fabs(c) < tiny) c = tiny;
        d = 1.0 / d;
        double del = d * c;
        h *= del;
        if (fabs(del - 1.0) < eps) break;
    }
    return h;
}

double qeil_select_betainc(double x, double a, double b)
{
    if (!(a > 0.0) || !(b > 0.0) || !(x >= 0.0 && x <= 1.0) || !isfinite(a) || !isfinite(b))
        return NAN;
    if (x == 0.0) return 0.0;
    if (x == 1.0) return 1.0;
    double lf = lngamma(a + b) - lngamma(a) - lngamma(b) + a * log(x) + b * log1p(-x);
    double f = exp(lf);
    if (x < (a + 1.0) / (a + b + 2.0)) return f * beta_cf(a, b, x) / a;
    return 1.0 - f * beta_cf(b, a, 1.0 - x) / b;
}

double qeil_select_csvet_risk(uint32_t leader_votes, const uint32_t *others, size_t n_others,
                              double prior)
{
    if (leader_votes == 0 || !(prior > 0.0)) return 1.0;
    double a = leader_votes + prior;
    /* the unseen answers, lumped into one rival with no votes: the lump's
     * mass bounds any single unseen answer's, so one term covers them all */
    double risk = qeil_select_betainc(0.5, a, prior);
    for (size_t j = 0; others && j < n_others && risk < 1.0; j++)
        risk += qeil_select_betainc(0.5, a, others[j] + prior);
    return risk < 1.0 ? risk : 1.0;
}

/* ln B(x, y) */
static double lnbeta(double x, double y) { return lngamma(x) + lngamma(y) - lngamma(x + y); }

/* ln of the beta-binomial pmf: C(n, k) B(k + al, n − k + be) / B(al, be) */
static double ln_bb(uint32_t k, uint32_t n, double al, double be)
{
    return lngamma(n + 1.0) - lngamma(k + 1.0) - lngamma(n - k + 1.0) +
           lnbeta(k + al, n - k + be) - lnbeta(al, be);
}

/* P(c + Y_j >= a + Y_a) for one rival, where the r remaining samples split
 * (Y_a, Y_j, Y_rest) ~ Dirichlet-multinomial(r; a+α, c+α, rest+α). Write
 * T = Y_a + Y_j ~ BetaBin(r; 2α+a+c, rest+α) and, given T,
 * Y_j ~ BetaBin(T; c+α, a+α) (aggregation and conditioning properties of
 * the Dirichlet); the rival draws level when 2·Y_j >= a − c + T. Both pmfs
 * are walked with their term ratio
 * pmf(k)/pmf(k−1) = (n−k+1)/k · (k−1+α)/(n−k+β), in logs (no underflow). */
static double overturn_pair(uint32_t a, uint32_t c, uint32_t rest, uint32_t r, double al)
{
    if ((uint64_t)c + r < a) return 0.0; /* cannot even draw level */
    double aa = a + al, aj = c + al, ar = rest + al, at = aa + aj;
    int64_t gap = (int64_t)a - (int64_t)c;
    uint32_t t0 = gap > 0 ? (uint32_t)gap : 0;
    double p = 0.0, lpt = 0.0;
    for (uint32_t t = t0; t <= r; t++) {
        lpt = t == t0 ? ln_bb(t0, r, at, ar)
                      : lpt + log((double)(r - t + 1) / t * (t - 1 + at) / (r - t + ar));
        int64_t need = gap + (int64_t)t; /* 2·Y_j >= need */
        uint32_t kmin = need <= 0 ? 0 : (uint32_t)((need + 1) / 2);
        if (kmin > t) continue;
        double lk = 0.0, tail = 0.0;
        for (uint32_t k = kmin; k <= t; k++) {
            lk = k == kmin ? ln_bb(kmin, t, aj, aa)
                           : lk + log((double)(t - k + 1) / k * (k - 1 + aj) / (t - k + aa));
            tail += exp(lk);
        }
        p += exp(lpt) * tail;
    }
    return p;
}

/* Above this many remaining samples the O(r²) sums give way to the mode
 * bound (a budget of 256+ left is far beyond what repeated sampling on an
 * edge device uses; the two bounds meet as r grows). */
#define CSVET_PRED_MAX_REMAINING 256u

double qeil_select_csvet_overturn_risk(uint32_t leader_votes, const uint32_t *others,
                                       size_t n_others, uint32_t n_drawn, uint32_t remaining,
                                       double prior)
{
    if (leader_votes == 0 || !(prior > 0.0)) return 1.0;
    if (remaining == 0) return 0.0;
    if (remaining > CSVET_PRED_MAX_REMAINING)
        return qeil_select_csvet_risk(leader_votes, others, n_others, prior);
    /* Rivals with equal votes give equal terms: compute each distinct count
     * once (counts summing to <= 1024 take at most 45 distinct values, so
     * 64 memo slots always suffice; beyond them we just recompute). */
    uint32_t memo_c[64];
    double memo_p[64];
    size_t n_memo = 0;
    uint64_t rest0 = n_drawn > leader_votes ? n_drawn - leader_votes : 0;
    /* the unseen answers as one zero-vote rival; everything else lumped */
    double risk = overturn_pair(leader_votes, 0, (uint32_t)rest0, remaining, prior);
    for (size_t j = 0; others && j < n_others && risk < 1.0; j++) {
        uint32_t c = others[j];
        double t = -1.0;
        for (size_t m = 0; m < n_memo; m++)
            if (memo_c[m] == c) t = memo_p[m];
        if (t < 0.0) {
            uint32_t rest = rest0 > c ? (uint32_t)(rest0 - c) : 0;
            t = overturn_pair(leader_votes, c, rest, remaining, prior);
            if (n_memo < 64) memo_c[n_memo] = c, memo_p[n_memo++] = t;
        }
        risk += t;
    }
    return risk < 1.0 ? risk : 1.0;
}

double qeil_select_adaptive_prob(uint32_t v1, uint32_t v2)
{
    return 1.0 - qeil_select_betainc(0.5, (double)v1 + 1.0, (double)v2 + 1.0);
}
