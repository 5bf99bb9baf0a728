/* serve_worker.c — the worker thread of `qeil serve` (docs/serve.md
 * "Concurrency"): it alone owns the runtime. Requests wait in a bounded
 * FIFO; up to --parallel of them hold an engine sequence each and decode
 * together, one token each per step, in one batched engine call (the
 * runtime's step API). A request joins between steps: its prefill runs
 * alone while the others wait one step. A cascade request (n samples)
 * joins once a sequence is free: its prompt on sequence 0, its samples
 * forked into the free sequences and decoded in the same steps as the
 * running streams; the decode batch of a step is the plan's at its load. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "serve.h"

/* PGSAM's budget for a load re-plan: warm-started, a few milliseconds
 * (docs/serve.md "Decode batch"; bench_replan measures ~1.7 us per evaluation) */
#define SERVE_REPLAN_ITERS 2000u

/* serve_price on plan `a` (NULL: the server's). */
static int price_on(const serve_server *s, const qeil_assignment *plan, qeil_ctx *ctx,
                    uint32_t n_prompt, uint32_t gen, uint32_t samples, uint32_t batch,
                    qeil_eval *ev)
{
    qeil_workload_params wp = qeil_workload_default_params();
    wp.prompt_tokens = n_prompt ? n_prompt : 1;
    wp.gen_tokens = gen ? gen : 1;
    if (s->md->ctx_max > wp.prompt_tokens && wp.gen_tokens > s->md->ctx_max - wp.prompt_tokens)
        wp.gen_tokens = s->md->ctx_max - wp.prompt_tokens;
    wp.samples = samples ? samples : 1;
    qeil_workload wl;
    if (qeil_workload_build(ctx, s->md, &wp, &wl) != QEIL_OK) return -1;
    qeil_assignment a = plan ? *plan : s->plan;
    if (batch) a.batch = (uint16_t)(batch < 65535 ? batch : 65535);
    if (a.batch > wp.samples) a.batch = (uint16_t)wp.samples;
    if (a.batch < 1) a.batch = 1;
    qeil_energy_params ep = qeil_energy_default_params();
    if (qeil_energy_eval(&s->pf, &wl, &a, &ep, ev) != QEIL_OK) return -1;
    return isfinite(ev->energy_J) && isfinite(ev->latency_s) ? 0 : -1;
}

int serve_price(const serve_server *s, qeil_ctx *ctx, uint32_t n_prompt, uint32_t gen,
                uint32_t samples, uint32_t batch, qeil_eval *ev)
{
    return price_on(s, NULL, ctx, n_prompt, gen, samples, batch, ev);
}

qeil_assignment serve_load_plan(serve_server *s, uint32_t load, int *replanned)
{
    pthread_mutex_lock(&s->mu);
    int r = load >= 1 && load <= s->parallel && s->load_planned[load];
    qeil_assignment a = r ? s->load_plan[load] : s->plan;
    pthread_mutex_unlock(&s->mu);
    if (replanned) *replanned = r;
    return a;
}

/* PGSAM at load L: the planning workload with L samples, warm-started
 * from the server's plan and the plan of the nearest load planned so far
 * (batches clamped to L); the knee plan, as at start. A failed search
 * keeps the server's plan (batch clamped), with a warning. */
static void plan_load(serve_server *s, uint32_t load)
{
    qeil_workload_params wp = s->plan_wp;
    wp.samples = load;
    qeil_assignment start[2];
    uint32_t n_start = 0;
    start[n_start] = s->plan;
    if (start[n_start].batch > load) start[n_start].batch = (uint16_t)load;
    n_start++;
    for (uint32_t d = 1; d < s->parallel; d++) {
        uint32_t near = load > d && s->load_planned[load - d] ? load - d
                        : load + d <= s->parallel && s->load_planned[load + d] ? load + d : 0;
        if (!near) continue;
        start[n_start] = s->load_plan[near];
        if (start[n_start].batch > load) start[n_start].batch = (uint16_t)load;
        n_start++;
        break;
    }
    qeil_assignment plan = start[0];
    double t0 = cli_now_s();
    qeil_workload wl;
    qeil_front *f = NULL;
    qeil_plan_params pp = qeil_plan_default_params();
    pp.method = QEIL_METHOD_PGSAM;
    pp.iters = SERVE_REPLAN_ITERS;
    pp.start = start;
    pp.n_start = n_start;
    if (qeil_workload_build(s->ctx, s->md, &wp, &wl) == QEIL_OK &&
        qeil_plan_search(s->ctx, &s->pf, &wl, &pp, &f) == QEIL_OK && qeil_front_size(f) > 0)
        plan = *qeil_front_plan(f, qeil_front_knee(f));
    else
        fprintf(stderr, "qeil serve: warning: planning load %u: %s; decoding on the start plan\n",
                load, qeil_ctx_errmsg(s->ctx));
    qeil_front_free(f);
    double dt = cli_now_s() - t0;
    if (plan.batch < 1) plan.batch = 1;
    if (plan.batch > load) plan.batch = (uint16_t)load;
    pthread_mutex_lock(&s->mu);
    s->load_plan[load] = plan;
    s->load_planned[load] = 1;
    s->replans++;
    s->replan_s += dt;
    pthread_mutex_unlock(&s->mu);
}

uint32_t serve_decode_batch(serve_server *s, uint32_t load)
{
    if (load <= 1) return 1;
    if (load > s->parallel) load = s->parallel;
    if (s->batch_planned && !s->load_planned[load]) plan_load(s, load);
    uint32_t b = s->batch_planned ? s->load_plan[load].batch : s->plan.batch;
    return b < 1 ? 1 : b > load ? load : b;
}

/* A stream that decoded in steps of B sequences on average (its own and
 * other requests') is priced as its share of B such sequences decoded
 * together: its prefill alone, plus 1/B of the decode of B sequences —
 *   E = f(p, 1, 1) + [f(p, g, B) − f(p, 1, B)] / B,
 * f(prompt, gen, samples) the energy model with decode batch B (the
 * weights are read once per step for the whole batch: that is what
 * batching saves). B = 1 gives f(p, g, 1) − f(p, 1, 1) + f(p, 1, 1) =
 * f(p, g, 1). A cascade is its drawn samples decoded in batches of up to
 * --parallel: f(p, mean gen, drawn). */
int serve_job_price(serve_server *s, qeil_ctx *ctx, const serve_job *j, double *energy_J,
                    double *latency_s, double *power_W, qeil_eval *ev)
{
    if (j->cascade) {
        uint32_t drawn = j->sres.n_samples ? j->sres.n_samples : 1;
        uint32_t per = (uint32_t)((j->sres.n_tokens + drawn / 2) / drawn);
        uint32_t load = j->dec_steps ? (uint32_t)((j->dec_load + j->dec_steps / 2) / j->dec_steps)
                                     : 1;
        uint32_t b = j->dec_steps ? (uint32_t)((j->dec_seqs + j->dec_steps / 2) / j->dec_steps) : 1;
        qeil_assignment plan = serve_load_plan(s, load, NULL);
        if (price_on(s, &plan, ctx, j->n_prompt, per, drawn, b, ev) != 0) return -1;
        *energy_J = ev->energy_J;
        *latency_s = ev->latency_s;
        *power_W = ev->avg_power_W;
        return 0;
    }
    uint32_t b = j->dec_steps ? (uint32_t)((j->dec_seqs + j->dec_steps / 2) / j->dec_steps) : 1;
    uint32_t load = j->dec_steps ? (uint32_t)((j->dec_load + j->dec_steps / 2) / j->dec_steps) : 1;
    qeil_assignment lp = serve_load_plan(s, load, NULL);
    const qeil_assignment *plan = &lp;
    if (b <= 1 || j->n_gen <= 1) {
        if (price_on(s, plan, ctx, j->n_prompt, j->n_gen, 1, 1, ev) != 0) return -1;
        *energy_J = ev->energy_J;
        *latency_s = ev->latency_s;
        *power_W = ev->avg_power_W;
        return 0;
    }
    qeil_eval e11, eg, e1;
    if (price_on(s, plan, ctx, j->n_prompt, 1, 1, 1, &e11) != 0 ||
        price_on(s, plan, ctx, j->n_prompt, j->n_gen, b, b, &eg) != 0 ||
        price_on(s, plan, ctx, j->n_prompt, 1, b, b, &e1) != 0)
        return -1;
    *energy_J = e11.energy_J + (eg.energy_J - e1.energy_J) / b;
    *latency_s = e11.latency_s + (eg.latency_s - e1.latency_s); /* every step is this one's */
    *power_W = *latency_s > 0 ? *energy_J / *latency_s : 0;
    *ev = eg;
    for (int d = 0; d < QEIL_MAX_UNITS; d++) /* its share of the busy time */
        ev->busy_s[d] = e11.busy_s[d] + (eg.busy_s[d] - e1.busy_s[d]) / b;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Jobs and the queue                                                       */
/* ------------------------------------------------------------------------ */

static void job_free(serve_job *j)
{
    for (uint32_t k = 0; k < j->n_smp; k++) qeil_sampler_free(j->smp[k]);
    free(j->smp);
    qeil_select_free(j->sel);
    for (uint32_t k = 0; j->samples && k < j->n; k++) free(j->samples[k].text);
    free(j->samples);
    free(j->prompt);
    free(j->text);
    pthread_cond_destroy(&j->cv);
    qeil_ctx_free(j->ctx);
    free(j);
}

void serve_job_unref_locked(serve_server *s, serve_job *j)
{
    (void)s;
    if (--j->refs == 0) job_free(j);
}

int serve_submit(serve_server *s, serve_job *j)
{
    pthread_mutex_lock(&s->mu);
    if (s->stopping || s->n_queued + s->n_active >= s->parallel + s->queue_cap) {
        s->rejected_429++;
        pthread_mutex_unlock(&s->mu);
        return -1;
    }
    j->refs++; /* the worker's */
    j->state = JOB_QUEUED;
    j->t_submit_s = cli_now_s();
    j->next = NULL;
    if (s->tail) s->tail->next = j;
    else s->head = j;
    s->tail = j;
    s->n_queued++;
    pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

static serve_job *pop_locked(serve_server *s)
{
    serve_job *j = s->head;
    s->head = j->next;
    if (!s->head) s->tail = NULL;
    j->next = NULL;
    s->n_queued--;
    return j;
}

/* ------------------------------------------------------------------------ */
/* The worker's state                                                       */
/* ------------------------------------------------------------------------ */

typedef struct {
    serve_job *job;  /* NULL: free */
    const float *row;
    int fresh;       /* admitted this round: prefill pending */
} slot;

typedef struct {
    serve_server *s;
    qeil_sense_cpu_meter *meter;
    slot sl[SERVE_MAX_PARALLEL];
    float *lg_pf;    /* [parallel × n_vocab]: each slot's logits after its prefill */
    float *lg;       /* [parallel × n_vocab]: one batched decode step */
    float *lg0;      /* [n_vocab]: a cascade's prompt */
    int32_t *hist;   /* [parallel × (n_ctx + 1)]: cascade samples' histories */
    size_t hlen[SERVE_MAX_PARALLEL];
    uint32_t seqs[SERVE_MAX_PARALLEL], rowslot[SERVE_MAX_PARALLEL];
    int32_t toks[SERVE_MAX_PARALLEL];
    int active[SERVE_MAX_PARALLEL];
    uint8_t rowcasc[SERVE_MAX_PARALLEL];   /* row r of a step: 1 a cascade sample, 0 a stream */
    const float *crow[SERVE_MAX_PARALLEL]; /* a cascade sample's logits row, by chunk index */
    uint32_t cslot[SERVE_MAX_PARALLEL];    /* a cascade sample's slot (sequence 1 + slot) */
    uint32_t n_rec_seen; /* the runtime's recoveries counted so far */
} worker;

static int buf_add(char **p, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 256;
        while (c < *len + n + 1) c *= 2;
        char *q = realloc(*p, c);
        if (!q) return -1;
        *p = q;
        *cap = c;
    }
    memcpy(*p + *len, s, n);
    *len += n;
    (*p)[*len] = '\0';
    return 0;
}

/* The earliest stop string in text[from..len) (a match may start up to
 * stop_len-1 bytes before the newest piece); its offset, or SIZE_MAX. */
static size_t find_stop(const serve_job *j, const char *text, size_t len, size_t piece)
{
    size_t best = SIZE_MAX;
    for (int k = 0; k < j->n_stop; k++) {
        size_t sl = strlen(j->stop[k]);
        if (sl == 0 || sl > len) continue;
        size_t from = len - piece > sl - 1 ? len - piece - (sl - 1) : 0;
        for (size_t i = from; i + sl <= len; i++)
            if (memcmp(text + i, j->stop[k], sl) == 0) {
                if (i < best) best = i;
                break;
            }
    }
    return best;
}

/* End a job: accounting into the metrics, wake its connection, drop the
 * worker's reference. */
static void finish(worker *w, serve_job *j, qeil_status st, const char *msg, int length)
{
    serve_server *s = w->s;
    qeil_eval ev;
    double e_J = 0, lat_s, pw_W;
    int priced = st == QEIL_OK && serve_job_price(s, s->ctx, j, &e_J, &lat_s, &pw_W, &ev) == 0;
    pthread_mutex_lock(&s->mu);
    j->state = JOB_DONE;
    j->st = st;
    if (msg) snprintf(j->err, sizeof j->err, "%s", msg);
    j->finish_length = length;
    j->t_end_s = cli_now_s();
    s->n_active--;
    s->prompt_tokens += j->n_prompt;
    s->gen_tokens += j->cascade ? j->sres.n_tokens : j->n_gen;
    if (j->cancelled) s->disconnects++;
    if (priced) {
        s->energy_modeled_J += e_J;
        for (int d = 0; d < s->pf.n_units && d < QEIL_MAX_UNITS; d++)
            s->dev_busy_s[d] += ev.busy_s[d];
    }
    if (j->meas.valid) s->energy_measured_J += j->meas.energy_J;
    double dt = j->t_end_s - j->t_submit_s;
    s->avg_job_s = s->avg_job_s > 0 ? 0.8 * s->avg_job_s + 0.2 * dt : dt;
    pthread_cond_broadcast(&j->cv);
    serve_job_unref_locked(s, j);
    pthread_mutex_unlock(&s->mu);
}

static void fail_rt(worker *w, serve_job *j)
{
    char msg[512];
    snprintf(msg, sizeof msg, "%s", qeil_ctx_errmsg(w->s->ctx));
    finish(w, j, QEIL_ERR_INVALID, msg, 0);
}

/* ------------------------------------------------------------------------ */
/* Streams: one sequence per request, decoded together                      */
/* ------------------------------------------------------------------------ */

/* Append a token's piece to a stream job (under the mutex: its connection
 * reads the text). Returns the job's cancelled flag, or -1 out of memory. */
static int job_append(serve_server *s, serve_job *j, int32_t tok, const char *piece, size_t n)
{
    pthread_mutex_lock(&s->mu);
    int rc = j->cancelled;
    if (!rc) {
        if (buf_add(&j->text, &j->len, &j->cap, piece, n) != 0) rc = -1;
        else {
            j->prompt[j->n_prompt + j->n_gen] = tok;
            j->n_gen++;
            pthread_cond_broadcast(&j->cv);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static void release(worker *w, uint32_t i) { w->sl[i].job = NULL; }

/* Recoveries the runtime made since the last look (a failed device's units
 * moved, the step resumed): counted in /metrics and listed in the answer
 * of each job of the step. The runtime keeps at most
 * QEIL_RUNTIME_MAX_RECOVERIES (one per device of the placement). */
static void note_recoveries(worker *w, serve_job *const *jobs, uint32_t n)
{
    serve_server *s = w->s;
    qeil_runtime_recovery rec[QEIL_RUNTIME_MAX_RECOVERIES];
    uint32_t total = qeil_runtime_recoveries(s->rt, rec, QEIL_RUNTIME_MAX_RECOVERIES);
    if (total > QEIL_RUNTIME_MAX_RECOVERIES) total = QEIL_RUNTIME_MAX_RECOVERIES;
    if (total <= w->n_rec_seen) return;
    for (uint32_t k = 0; k < n; k++)
        for (uint32_t r = w->n_rec_seen; r < total; r++)
            if (jobs[k] && jobs[k]->n_rec < SERVE_MAX_JOB_RECOVERIES)
                jobs[k]->rec[jobs[k]->n_rec++] = rec[r];
    pthread_mutex_lock(&s->mu);
    s->faults_recovered += total - w->n_rec_seen;
    pthread_mutex_unlock(&s->mu);
    w->n_rec_seen = total;
}

static void prefill_fresh(worker *w)
{
    serve_server *s = w->s;
    for (uint32_t i = 0; i < s->parallel; i++) {
        slot *sl = &w->sl[i];
        if (!sl->job || !sl->fresh) continue;
        sl->fresh = 0;
        serve_job *j = sl->job;
        float *row = w->lg_pf + (size_t)i * s->n_vocab;
        qeil_sense_cpu_meter_start(w->meter);
        double t0 = cli_now_s();
        qeil_status st = qeil_runtime_seq_prefill(s->rt, 1 + i, j->prompt, j->n_prompt, row);
        double dt = cli_now_s() - t0;
        note_recoveries(w, &j, 1);
        qeil_sense_measure m;
        qeil_sense_cpu_meter_stop(w->meter, &m);
        j->busy_s += dt;
        j->meas = m;
        pthread_mutex_lock(&s->mu);
        s->busy_s += dt;
        pthread_mutex_unlock(&s->mu);
        if (st != QEIL_OK) {
            fail_rt(w, j);
            release(w, i);
            continue;
        }
        qeil_sampler_set_seed(j->smp[0], j->seed);
        sl->row = row;
    }
}

/* Sample the next token of every running stream; a stream that ended is
 * finished and its slot released, the others are appended to the step's
 * rows from w->seqs[*m] on (rowcasc 0). */
static void collect_streams(worker *w, uint32_t *m_io)
{
    serve_server *s = w->s;
    char piece[QEIL_TOKENIZER_MAX_TOKEN_BYTES + 8];
    const int32_t eos = qeil_tokenizer_eos(s->tk);
    uint32_t m = *m_io;
    for (uint32_t i = 0; i < s->parallel; i++) {
        slot *sl = &w->sl[i];
        serve_job *j = sl->job;
        if (!j) continue;
        int32_t tok;
        qeil_sampler_logprob lp;
        if (qeil_sampler_sample(j->smp[0], sl->row, s->n_vocab, j->prompt, j->n_prompt + j->n_gen,
                                &tok, &lp) != QEIL_OK) {
            char msg[512];
            snprintf(msg, sizeof msg, "sampling: %s", qeil_ctx_errmsg(j->ctx));
            finish(w, j, QEIL_ERR_RANGE, msg, 0);
            release(w, i);
            continue;
        }
        if (tok == eos || tok == s->eot) {
            finish(w, j, QEIL_OK, NULL, 0);
            release(w, i);
            continue;
        }
        size_t pl = qeil_tokenizer_piece(s->tk, tok, piece, sizeof piece);
        if (pl > sizeof piece) pl = sizeof piece;
        int c = job_append(s, j, tok, piece, pl);
        if (c != 0) { /* the client went away (or no memory): stop now */
            finish(w, j, c < 0 ? QEIL_ERR_NOMEM : QEIL_OK, c < 0 ? "out of memory" : NULL, 0);
            release(w, i);
            continue;
        }
        size_t cut = j->n_stop ? find_stop(j, j->text, j->len, pl) : SIZE_MAX;
        if (cut != SIZE_MAX) {
            pthread_mutex_lock(&s->mu);
            j->len = cut;
            j->text[cut] = '\0';
            pthread_mutex_unlock(&s->mu);
            finish(w, j, QEIL_OK, NULL, 0);
            release(w, i);
        } else if (j->n_gen >= j->max_tokens || qeil_runtime_seq_len(s->rt, 1 + i) >= s->n_ctx) {
            finish(w, j, QEIL_OK, NULL, 1);
            release(w, i);
        } else {
            w->seqs[m] = 1 + i;
            w->toks[m] = tok;
            w->rowslot[m] = i;
            w->rowcasc[m] = 0;
            m++;
        }
    }
    *m_io = m;
}

/* One decode step of the m rows collected (streams, and a running
 * cascade's samples when casc is not NULL), in engine calls of the batch
 * the plan gives at load m; each stream row's accounting and logits row.
 * The cascade's rows get their logits rows; its accounting is summed into
 * casc. Returns the engine's status (a failed stream is finished here). */
static qeil_status decode_rows(worker *w, uint32_t m, serve_job *casc)
{
    serve_server *s = w->s;
    qeil_status worst = QEIL_OK;
    if (m == 0) return QEIL_OK;
    const uint32_t load = m, b = serve_decode_batch(s, load);
    for (uint32_t r0 = 0; r0 < m; r0 += b) {
        uint32_t c = m - r0 < b ? m - r0 : b;
        qeil_sense_cpu_meter_start(w->meter);
        double t0 = cli_now_s();
        qeil_status st = qeil_runtime_decode_step(s->rt, w->seqs + r0, w->toks + r0, c,
                                                  w->lg + (size_t)r0 * s->n_vocab);
        double dt = cli_now_s() - t0;
        serve_job *in_step[SERVE_MAX_PARALLEL];
        uint32_t n_in = 0, n_casc = 0;
        for (uint32_t r = r0; r < r0 + c; r++) {
            if (w->rowcasc[r]) n_casc++;
            else in_step[n_in++] = w->sl[w->rowslot[r]].job;
        }
        if (n_casc) in_step[n_in++] = casc;
        note_recoveries(w, in_step, n_in);
        qeil_sense_measure ms;
        qeil_sense_cpu_meter_stop(w->meter, &ms);
        ms.energy_J /= c; /* NAN stays NAN */
        ms.t_s /= c;
        pthread_mutex_lock(&s->mu);
        s->busy_s += dt;
        s->steps++;
        s->step_seqs += c;
        s->last_batch = c;
        s->last_load = load;
        pthread_mutex_unlock(&s->mu);
        if (st != QEIL_OK) worst = st;
        if (n_casc) { /* the cascade's share: its rows of the step */
            casc->busy_s += dt * n_casc / c;
            qeil_sense_measure mc = ms;
            mc.energy_J *= n_casc;
            mc.t_s *= n_casc;
            casc->meas = qeil_sense_measure_add(casc->meas, mc);
            casc->dec_steps++;
            casc->dec_seqs += c;
            casc->dec_load += load;
        }
        for (uint32_t r = r0; r < r0 + c; r++) {
            uint32_t i = w->rowslot[r];
            if (w->rowcasc[r]) { /* a cascade sample: its row for the next sampling */
                w->crow[i] = w->lg + (size_t)r * s->n_vocab;
                continue;
            }
            serve_job *j = w->sl[i].job;
            j->busy_s += dt / c;
            j->dec_steps++;
            j->dec_seqs += c;
            j->dec_load += load;
            j->meas = qeil_sense_measure_add(j->meas, ms);
            if (st != QEIL_OK) {
                fail_rt(w, j);
                release(w, i);
            } else {
                w->sl[i].row = w->lg + (size_t)r * s->n_vocab;
            }
        }
    }
    return worst;
}

static void step(worker *w)
{
    uint32_t m = 0;
    collect_streams(w, &m);
    decode_rows(w, m, NULL);
}

/* ------------------------------------------------------------------------ */
/* Cascade: n samples of one prompt, the selection module decides           */
/* ------------------------------------------------------------------------ */

typedef struct {
    worker *w;
    serve_job *j;
} cascade_ctx;

static int is_cancelled(serve_server *s, serve_job *j)
{
    pthread_mutex_lock(&s->mu);
    int c = j->cancelled;
    pthread_mutex_unlock(&s->mu);
    return c;
}

/* Samples first..first+c-1 forked from sequence 0 into the free slots
 * w->cslot[0..c-1], decoded together with the running streams (their
 * sequences join each step: one batch across requests). */
static qeil_status cascade_chunk(worker *w, serve_job *j, uint32_t first, uint32_t c)
{
    serve_server *s = w->s;
    const size_t hcap = (size_t)s->n_ctx + 1;
    const int32_t eos = qeil_tokenizer_eos(s->tk);
    char piece[QEIL_TOKENIZER_MAX_TOKEN_BYTES + 8];
    qeil_status st;
    for (uint32_t k = 0; k < c; k++) {
        serve_sample *r = &j->samples[first + k];
        r->len = r->n_tokens = 0;
        r->logprob_sum = 0;
        r->flags = 0;
        if (buf_add(&r->text, &r->len, &r->cap, "", 0) != 0) return QEIL_ERR_NOMEM;
        if ((st = qeil_runtime_seq_fork(s->rt, 0, 1 + w->cslot[k])) != QEIL_OK) return st;
        qeil_sampler_set_seed(j->smp[k], qeil_runtime_sample_seed(j->seed, 0, first + k));
        memcpy(w->hist + k * hcap, j->prompt, sizeof(int32_t) * j->n_prompt);
        w->hlen[k] = j->n_prompt;
        w->crow[k] = w->lg0;
        w->active[k] = 1;
    }
    for (;;) {
        if (is_cancelled(s, j)) return QEIL_ERR_IO;
        uint32_t m = 0;
        for (uint32_t k = 0; k < c; k++) {
            if (!w->active[k]) continue;
            serve_sample *r = &j->samples[first + k];
            int32_t tok;
            qeil_sampler_logprob lp;
            if ((st = qeil_sampler_sample(j->smp[k], w->crow[k], s->n_vocab, w->hist + k * hcap,
                                          w->hlen[k], &tok, &lp)) != QEIL_OK)
                return st;
            if (tok == eos || tok == s->eot) {
                w->active[k] = 0;
                continue;
            }
            size_t pl = qeil_tokenizer_piece(s->tk, tok, piece, sizeof piece);
            if (pl > sizeof piece) pl = sizeof piece;
            if (buf_add(&r->text, &r->len, &r->cap, piece, pl) != 0) return QEIL_ERR_NOMEM;
            r->n_tokens++;
            r->logprob_sum += lp.raw;
            w->hist[k * hcap + w->hlen[k]++] = tok;
            size_t cut = qeil_runtime_answer_end(r->text, r->len);
            size_t sc = j->n_stop ? find_stop(j, r->text, r->len, pl) : SIZE_MAX;
            if (sc != SIZE_MAX && (!cut || sc < cut)) cut = sc;
            if (cut || sc == 0) {
                r->len = cut;
                r->text[cut] = '\0';
                w->active[k] = 0;
            } else if (r->n_tokens >= j->max_tokens ||
                       qeil_runtime_seq_len(s->rt, 1 + w->cslot[k]) >= s->n_ctx) {
                r->flags |= QEIL_SAMPLE_HIT_LIMIT;
                w->active[k] = 0;
            } else {
                w->seqs[m] = 1 + w->cslot[k];
                w->toks[m] = tok;
                w->rowslot[m] = k;
                w->rowcasc[m] = 1;
                m++;
            }
        }
        if (m == 0) break;
        collect_streams(w, &m); /* the running streams share the step */
        if ((st = decode_rows(w, m, j)) != QEIL_OK) return st;
    }
    return QEIL_OK;
}

static qeil_status cascade_gen(void *user, uint32_t first, uint32_t n, qeil_sample *out)
{
    cascade_ctx *cc = user;
    serve_job *j = cc->j;
    worker *w = cc->w;
    if ((uint64_t)first + n > j->n) return QEIL_ERR_RANGE;
    for (uint32_t k = first; k < first + n;) {
        /* the slots no stream holds now (streams end, never start, meanwhile) */
        uint32_t c = 0;
        for (uint32_t i = 0; i < w->s->parallel && c < first + n - k; i++)
            if (!w->sl[i].job) w->cslot[c++] = i;
        if (c == 0) return QEIL_ERR_RANGE; /* admission keeps one free: not reached */
        qeil_status st = cascade_chunk(w, j, k, c);
        if (st != QEIL_OK) return st;
        k += c;
    }
    for (uint32_t i = 0; i < n; i++) {
        const serve_sample *r = &j->samples[first + i];
        out[i].text = r->text;
        out[i].text_len = r->len < QEIL_ANSWER_MAX_TEXT ? r->len : QEIL_ANSWER_MAX_TEXT;
        out[i].n_tokens = r->n_tokens;
        out[i].logprob_sum = r->logprob_sum;
        out[i].flags = r->flags;
    }
    return QEIL_OK;
}

static void run_cascade(worker *w, serve_job *j)
{
    serve_server *s = w->s;
    qeil_sense_cpu_meter_start(w->meter);
    double t0 = cli_now_s();
    qeil_status st = qeil_runtime_seq_prefill(s->rt, 0, j->prompt, j->n_prompt, w->lg0);
    double dt = cli_now_s() - t0;
    note_recoveries(w, &j, 1);
    qeil_sense_cpu_meter_stop(w->meter, &j->meas);
    j->busy_s += dt;
    pthread_mutex_lock(&s->mu);
    s->busy_s += dt;
    pthread_mutex_unlock(&s->mu);
    if (st != QEIL_OK) {
        fail_rt(w, j);
        return;
    }
    cascade_ctx cc = {w, j};
    st = qeil_select_run(j->sel, cascade_gen, &cc, &j->sres);
    if (st != QEIL_OK) {
        if (is_cancelled(s, j)) {
            finish(w, j, QEIL_OK, NULL, 0);
            return;
        }
        char msg[512];
        snprintf(msg, sizeof msg, "selection: %s (%s)", qeil_ctx_errmsg(j->ctx),
                 qeil_ctx_errmsg(s->ctx));
        finish(w, j, st, msg, 0);
        return;
    }
    uint32_t pick = 0;
    qeil_select_cluster cl;
    if (j->sres.chosen_cluster != UINT32_MAX &&
        qeil_select_cluster_get(j->sel, j->sres.chosen_cluster, &cl) == QEIL_OK)
        pick = cl.first_sample;
    j->chosen_sample = pick;
    const serve_sample *r = &j->samples[pick];
    pthread_mutex_lock(&s->mu);
    int oom = buf_add(&j->text, &j->len, &j->cap, r->text ? r->text : "", r->len);
    j->n_gen = r->n_tokens;
    s->samples_drawn += j->sres.n_samples;
    s->samples_saved += j->n - j->sres.n_samples;
    pthread_mutex_unlock(&s->mu);
    finish(w, j, oom ? QEIL_ERR_NOMEM : QEIL_OK, oom ? "out of memory" : NULL,
           (r->flags & QEIL_SAMPLE_HIT_LIMIT) != 0);
}

/* ------------------------------------------------------------------------ */
/* The loop                                                                 */
/* ------------------------------------------------------------------------ */

static void *worker_main(void *arg)
{
    worker *w = arg;
    serve_server *s = w->s;
    for (;;) {
        serve_job *casc = NULL;
        pthread_mutex_lock(&s->mu);
        while (!s->stopping && s->n_active == 0 && !s->head) pthread_cond_wait(&s->work, &s->mu);
        if (s->stopping) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        /* admit, in order: a cascade needs one free sequence; later requests wait for it */
        while (s->head) {
            serve_job *j = s->head;
            if (j->cancelled) {
                pop_locked(s);
                j->state = JOB_DONE;
                s->disconnects++;
                pthread_cond_broadcast(&j->cv);
                serve_job_unref_locked(s, j);
                continue;
            }
            if (j->cascade) {
                /* it decodes beside the running streams, in the slots they
                 * leave free (at least one) */
                uint32_t held = 0;
                for (uint32_t i = 0; i < s->parallel; i++) held += w->sl[i].job != NULL;
                if (held < s->parallel) {
                    casc = pop_locked(s);
                    casc->state = JOB_RUNNING;
                    casc->t_start_s = cli_now_s();
                    s->n_active++;
                }
                break;
            }
            uint32_t i = 0;
            while (i < s->parallel && w->sl[i].job) i++;
            if (i == s->parallel) break;
            pop_locked(s);
            j->state = JOB_RUNNING;
            j->t_start_s = cli_now_s();
            s->n_active++;
            w->sl[i].job = j;
            w->sl[i].fresh = 1;
        }
        pthread_mutex_unlock(&s->mu);
        if (casc) {
            prefill_fresh(w); /* streams admitted with it: prefilled before it runs */
            run_cascade(w, casc);
            continue;
        }
        prefill_fresh(w);
        step(w);
    }
    /* stopping: end what runs and what waits */
    for (uint32_t i = 0; i < s->parallel; i++)
        if (w->sl[i].job) finish(w, w->sl[i].job, QEIL_ERR_INVALID, "the server is stopping", 0);
    pthread_mutex_lock(&s->mu);
    while (s->head) {
        serve_job *j = pop_locked(s);
        j->state = JOB_DONE;
        j->st = QEIL_ERR_INVALID;
        snprintf(j->err, sizeof j->err, "the server is stopping");
        pthread_cond_broadcast(&j->cv);
        serve_job_unref_locked(s, j);
    }
    pthread_mutex_unlock(&s->mu);
    free(w->lg_pf);
    free(w->lg);
    free(w->lg0);
    free(w->hist);
    qeil_sense_cpu_meter_free(w->meter);
    free(w);
    return NULL;
}

int serve_worker_start(serve_server *s, pthread_t *th)
{
    worker *w = calloc(1, sizeof *w);
    if (!w) return -1;
    w->s = s;
    size_t nv = s->n_vocab, p = s->parallel;
    w->lg_pf = calloc(nv * p, sizeof(float));
    w->lg = calloc(nv * p, sizeof(float));
    w->lg0 = calloc(nv, sizeof(float));
    w->hist = calloc(((size_t)s->n_ctx + 1) * p, sizeof(int32_t));
    qeil_sense_meter_params mp = qeil_sense_meter_default_params();
    mp.root = s->sensors_root;
    if (!w->lg_pf || !w->lg || !w->lg0 || !w->hist ||
        qeil_sense_cpu_meter_create(s->ctx, &mp, &w->meter) != QEIL_OK) {
        free(w->lg_pf);
        free(w->lg);
        free(w->lg0);
        free(w->hist);
        free(w);
        return -1;
    }
    const char *prov = qeil_sense_cpu_meter_provenance(w->meter);
    snprintf(s->meter_prov_buf, sizeof s->meter_prov_buf, "%s", prov ? prov : "");
    snprintf(s->meter_covers_buf, sizeof s->meter_covers_buf, "%s",
             qeil_sense_cpu_meter_covers(w->meter));
    s->meter_prov = prov ? s->meter_prov_buf : NULL;
    s->meter_covers = s->meter_covers_buf;
    if (pthread_create(th, NULL, worker_main, w) != 0) {
        qeil_sense_cpu_meter_free(w->meter);
        free(w->lg_pf);
        free(w->lg);
        free(w->lg0);
        free(w->hist);
        free(w);
        return -1;
    }
    return 0;
}

void serve_worker_stop(serve_server *s, pthread_t th)
{
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_broadcast(&s->work);
    pthread_mutex_unlock(&s->mu);
    pthread_join(th, NULL);
}
