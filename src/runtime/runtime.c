/* runtime.c — the generation runtime (include/qeil/runtime.h,
 * docs/runtime.md): a request's prompt is prefilled once on sequence 0,
 * forked into sample slots (sequences 1..batch) and decoded in batches
 * (one engine call per step for the whole batch); the selection module
 * decides how many samples to draw and which answer wins; the energy model
 * prices the executed work on the target platform under a configuration's
 * plan. Moved from cli/cmd_eval.c and cli/cmd_generate.c with the
 * algorithms unchanged. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qeil/runtime.h"
#include "runtime/rt_guard.h"
#include "runtime/rt_metrics.h"
#include "runtime/rt_recover.h"
#include "core/util.h"

#define RT_DEFAULT_SAMPLES 8u
#define RT_DEFAULT_BATCH 4u
#define RT_DEFAULT_MAX_TOKENS 128u
#define RT_DEFAULT_N_BATCH 512u /* the engine's prefill chunk when its params say 0 */

/* ------------------------------------------------------------------------ */
/* State                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct {
    char *text;
    size_t len, cap;
    uint32_t n_tokens;
    double logprob_sum;
    uint32_t flags;
    double wall_s; /* measured: this sample's share of its batch's time */
    qeil_sense_measure meas; /* measured: its share of its batch's energy */
} sample_rec;

typedef struct {
    qeil_runtime_config c;
    qeil_assignment plan;
    qeil_eval plan_ev;     /* the plan on the planning workload (modeled) */
    int plan_bounded;      /* 1: chosen under max_latency_s */
    qeil_selector *sel[2]; /* by answer mode: numeric, choice */
    /* for warm re-plans: the planning workload and the front's plans */
    qeil_workload wl;
    qeil_assignment *front; /* [n_front], from the ctx allocator */
    uint32_t n_front;
    double step_pred_s[QEIL_MAX_UNITS]; /* the plan's predicted decode step per platform unit */
} config;

struct qeil_runtime {
    qeil_ctx *ctx;
    qeil_runtime_params p;
    qeil_platform pf;
    qeil_engine *e;
    const qeil_tokenizer *tk;
    const qeil_model_desc *md;
    uint32_t n_vocab, n_ctx, n_batch, n_units;
    uint32_t slots;      /* samplers: max(batch, 1); engine sequences 1..batch hold samples */
    int32_t eos;
    qeil_sampler **smp;  /* [slots], NULL until set_sampler */
    uint64_t seed;       /* the sample streams' seed (the sampler params') */
    float *logits0;      /* [n_vocab]: after the prompt */
    float *logits;       /* [batch × n_vocab]: one decode step of the batch */
    const float **row;   /* [batch]: the row each slot samples from next */
    int32_t **hist;      /* [batch][hist_cap]: prompt + generated tokens */
    size_t *hlen, hist_cap;
    uint32_t *seqs, *rowslot;
    int32_t *toks;
    int *active;
    config cf[QEIL_RUNTIME_MAX_CONFIGS];
    uint32_t n_cf;
    /* the current request */
    int begun;
    qeil_runtime_request rq;
    sample_rec *cache;   /* [samples] */
    uint32_t n_cached;
    double prefill_s;
    qeil_sense_measure prefill_meas;
    qeil_sense_cpu_meter *meter; /* NULL: sensors off */
    rt_guard *guard;             /* the thermal guard; NULL: off (rt_guard.c) */
    qeil_status err;     /* the generator's failure, kept apart from the selector's */
    char errmsg[512];
    /* drift and re-planning (params.replan): one detector per platform unit */
    qeil_drift drift[QEIL_MAX_UNITS];
    int replan_pending;
    int drift_pending[QEIL_MAX_UNITS]; /* the unit's detector fired since the last re-plan */
    double drift_ratio[QEIL_MAX_UNITS]; /* the ratio that made it fire */
    double ut_step[QEIL_MAX_WUNITS];    /* engine unit times before the current decode step */
    uint32_t n_requests;
    uint32_t n_replans;  /* events ever; the newest QEIL_RUNTIME_MAX_REPLANS kept */
    qeil_runtime_replan replans[QEIL_RUNTIME_MAX_REPLANS];
    /* single-stream generation */
    int32_t stop[QEIL_RUNTIME_MAX_STOP]; /* end-of-generation tokens besides EOS */
    uint32_t n_stop;
    int gen_live;        /* sequence 0 holds the last generate's tokens (generate_more may append) */
    /* recovery: the placement create made, what a recompute replays, the
     * current request's recoveries */
    uint8_t place0[QEIL_MAX_WUNITS], place0_dc[QEIL_MAX_WUNITS]; /* prefill, decode */
    int fault_armed;
    uint8_t fault_dev;
    const int32_t *rp_seq0;   /* tokens of sequence 0 (prompt, then generated) */
    uint32_t rp_prompt;       /* of which the prompt (prefilled in n_batch chunks) */
    uint32_t rp_chunk;        /* in gen_chunk: sample slots 0..rp_chunk-1 live */
    qeil_runtime_recovery rec[QEIL_RUNTIME_MAX_RECOVERIES];
    uint32_t n_rec;
    /* DASI, CPQ and Φ of the last select (rt_metrics.c) */
    double ut_pf[QEIL_MAX_WUNITS]; /* engine unit times after the request's prefill */
    qeil_runtime_unit_metrics um[QEIL_MAX_UNITS];
    uint32_t n_um;
    int stepping; /* 1 inside the step API (seq_prefill, decode_step): recovery restores the
                     KV from the host copy only */
    /* the planner's re-placements of a running request (recover.c): the
     * last re-plan's front (the next one's warm start), the units the
     * guard moved work off, the placement before its first migration */
    qeil_assignment *arch;
    uint32_t n_arch;
    uint8_t hot[QEIL_MAX_UNITS];
    uint8_t guard_place[QEIL_MAX_WUNITS];
    int guard_moved;
};

/* Record "WHAT: <the detail ctx holds>" on ctx (the detail is copied first:
 * it lives in the buffer the new message overwrites). */
static qeil_status fail_wrap(qeil_ctx *ctx, qeil_status st, const char *what)
{
    char why[512];
    snprintf(why, sizeof why, "%s", qeil_ctx_errmsg(ctx));
    return qeil_ctx_fail(ctx, st, "%s: %s", what, why);
}

/* ------------------------------------------------------------------------ */
/* Params, create, free                                                     */
/* ------------------------------------------------------------------------ */

qeil_runtime_params qeil_runtime_default_params(void)
{
    qeil_runtime_params p;
    memset(&p, 0, sizeof p);
    p.samples = RT_DEFAULT_SAMPLES;
    p.batch = RT_DEFAULT_BATCH;
    p.max_tokens = RT_DEFAULT_MAX_TOKENS;
    p.select = qeil_select_default_params();
    p.sensors = 1;
    p.meter = qeil_sense_meter_default_params();
    p.drift = qeil_drift_default_params();
    p.replan_iters = 1000;
    p.guard = 1;
    p.guard_params = qeil_guard_default_params();
    p.recover = 1;
    p.kv_rebuild = QEIL_KV_REBUILD_HOST_COPY;
    p.watchdog_s = 0.25;
    return p;
}

qeil_runtime_config qeil_runtime_default_config(void)
{
    qeil_runtime_config c;
    memset(&c, 0, sizeof c);
    c.plan_method = QEIL_METHOD_PGSAM;
    c.select = QEIL_SELECT_CASCADE;
    return c;
}

static qeil_status params_validate(qeil_ctx *ctx, const qeil_runtime_params *p)
{
    if (!p->model_path) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "model_path: NULL (required)");
    if (p->n_threads < 0 || p->n_threads > QEIL_ENGINE_MAX_THREADS)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "n_threads: %d (allowed 0 = online CPUs, 1..%d)",
                             p->n_threads, QEIL_ENGINE_MAX_THREADS);
    if (p->samples < 1 || p->samples > QEIL_MAX_SAMPLES)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "samples: %u (allowed 1..%d)", p->samples,
                             QEIL_MAX_SAMPLES);
    uint32_t bmax = p->samples < QEIL_SELECT_MAX_BATCH ? p->samples : QEIL_SELECT_MAX_BATCH;
    if (p->batch > bmax)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                             "batch: %u (allowed 0..%u: at most samples and %u)", p->batch, bmax,
                             QEIL_SELECT_MAX_BATCH);
    if (p->sensors != 0 && p->sensors != 1)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "sensors: %d (allowed 0, 1)", p->sensors);
    if (p->guard != 0 && p->guard != 1)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "guard: %d (allowed 0, 1)", p->guard);
    if (p->recover != 0 && p->recover != 1)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "recover: %d (allowed 0, 1)", p->recover);
    if (p->kv_rebuild != QEIL_KV_REBUILD_HOST_COPY && p->kv_rebuild != QEIL_KV_REBUILD_RECOMPUTE)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                             "kv_rebuild: %d (allowed 0 = host copy, 1 = recompute)", p->kv_rebuild);
    if (!(p->watchdog_s > 0 && p->watchdog_s <= 3600))
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "watchdog_s: %g (allowed (0, 3600] s)",
                             p->watchdog_s);
    if (p->max_tokens < 1 || p->max_tokens > QEIL_RUNTIME_MAX_TOKENS)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "max_tokens: %u (allowed 1..%u)", p->max_tokens,
                             QEIL_RUNTIME_MAX_TOKENS);
    /* method, mode, budget and batch are the runtime's: check the tuning with them */
    qeil_select_params sp = p->select;
    sp.method = QEIL_SELECT_CASCADE;
    sp.mode = QEIL_ANSWER_NUMERIC;
    sp.budget = p->samples;
    sp.batch = p->batch ? p->batch : 1;
    if (sp.eac_min_votes > sp.budget) sp.eac_min_votes = sp.budget;
    if (sp.csvet_min_samples > sp.budget) sp.csvet_min_samples = sp.budget;
    if (sp.esc_window > sp.budget) sp.esc_window = sp.budget;
    if (qeil_select_params_validate(ctx, &sp) != QEIL_OK)
        return fail_wrap(ctx, QEIL_ERR_RANGE, "select");
    if (p->replan != 0 && p->replan != 1)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "replan: %d (allowed 0, 1)", p->replan);
    if (p->replan_iters < 1 || p->replan_iters > QEIL_MAX_ITERS)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "replan_iters: %u (allowed 1..%u)", p->replan_iters,
                             QEIL_MAX_ITERS);
    qeil_drift d;
    if (qeil_drift_init(ctx, &d, &p->drift) != QEIL_OK) return fail_wrap(ctx, QEIL_ERR_RANGE, "drift");
    return QEIL_OK;
}

void qeil_runtime_free(qeil_runtime *rt)
{
    if (!rt) return;
    qeil_ctx *ctx = rt->ctx;
    for (uint32_t c = 0; c < rt->n_cf; c++) {
        qeil_select_free(rt->cf[c].sel[0]);
        qeil_select_free(rt->cf[c].sel[1]);
        qeil_free(ctx, rt->cf[c].front);
    }
    for (uint32_t j = 0; j < rt->slots; j++) {
        if (rt->smp) qeil_sampler_free(rt->smp[j]);
        if (rt->hist) qeil_free(ctx, rt->hist[j]);
    }
    for (uint32_t k = 0; rt->cache && k < rt->p.samples; k++) qeil_free(ctx, rt->cache[k].text);
    qeil_free(ctx, rt->smp);
    qeil_free(ctx, rt->hist);
    qeil_free(ctx, rt->hlen);
    qeil_free(ctx, rt->logits0);
    qeil_free(ctx, rt->logits);
    qeil_free(ctx, rt->row);
    qeil_free(ctx, rt->seqs);
    qeil_free(ctx, rt->rowslot);
    qeil_free(ctx, rt->toks);
    qeil_free(ctx, rt->active);
    qeil_free(ctx, rt->cache);
    qeil_free(ctx, rt->arch);
    qeil_sense_cpu_meter_free(rt->meter);
    rt_guard_free(rt->guard);
    qeil_engine_free(rt->e);
    qeil_free(ctx, rt);
}

static int guard_move(void *user, int d, int restore, const qeil_platform *view, int *from, int *to,
                      double *power_W);

qeil_status qeil_runtime_create(qeil_ctx *ctx, const qeil_runtime_params *p, qeil_runtime **out)
{
    if (!out) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "qeil_runtime_create: out is NULL");
    *out = NULL;
    if (!ctx) return QEIL_ERR_INVALID; /* every error detail of the runtime goes to ctx */
    if (!p) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "qeil_runtime_create: params is NULL");
    qeil_status st = params_validate(ctx, p);
    if (st != QEIL_OK) return st;
    qeil_runtime *rt = qeil_calloc(ctx, 1, sizeof *rt);
    if (!rt) return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "out of memory");
    rt->ctx = ctx;
    rt->p = *p;
    rt->p.model_path = NULL; /* borrowed only for the open below */
    rt->p.platform = NULL;   /* the copy is rt->pf */
    if (p->platform) rt->pf = *p->platform;
    else if ((st = qeil_platform_load(ctx, QEIL_DEFAULT_PLATFORM, &rt->pf)) != QEIL_OK) goto fail;
    rt->p.platform = &rt->pf;
    for (int d = 0; d < QEIL_MAX_UNITS; d++)
        qeil_drift_init(NULL, &rt->drift[d], &rt->p.drift); /* validated above */

    qeil_engine_params ep = qeil_engine_default_params();
    ep.n_threads = p->n_threads;
    ep.n_ctx = p->n_ctx;
    ep.n_seq = 1 + p->batch;
    ep.watchdog_s = p->watchdog_s;
    ep.kv_host_copy = p->recover && p->kv_rebuild == QEIL_KV_REBUILD_HOST_COPY;
    if ((st = qeil_engine_open(ctx, p->model_path, &ep, &rt->e)) != QEIL_OK) goto fail;
    if (p->placement) {
        const uint32_t nu = qeil_model_n_units(qeil_engine_desc(rt->e));
        uint8_t place[QEIL_MAX_WUNITS], place_dc[QEIL_MAX_WUNITS];
        if (nu > QEIL_MAX_WUNITS) {
            st = qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "placement: %u work units (at most %d)", nu,
                               QEIL_MAX_WUNITS);
            goto fail;
        }
        /* the parser's messages start "placement: " already */
        if ((st = qeil_placement_parse_phases(ctx, p->placement, qeil_engine_desc(rt->e)->n_layers,
                                              place, place_dc, nu)) != QEIL_OK)
            goto fail;
        if ((st = qeil_engine_set_placements(rt->e, place, place_dc, nu)) != QEIL_OK) {
            fail_wrap(ctx, st, "placement");
            goto fail;
        }
    }
    rt->p.placement = NULL; /* borrowed only here */
    if ((st = qeil_engine_get_placements(rt->e, rt->place0, rt->place0_dc,
                                         qeil_model_n_units(qeil_engine_desc(rt->e)))) != QEIL_OK)
        goto fail;
    if (p->fault) {
        if ((st = qeil_engine_set_fault(rt->e, p->fault)) != QEIL_OK) goto fail;
        rt->fault_armed = 1;
        rt->fault_dev = p->fault->device;
    }
    rt->p.fault = NULL;
    rt->tk = qeil_engine_tokenizer(rt->e);
    rt->md = qeil_engine_desc(rt->e);
    rt->n_vocab = qeil_engine_n_vocab(rt->e);
    rt->n_ctx = qeil_engine_n_ctx(rt->e);
    rt->n_batch = ep.n_batch ? ep.n_batch : RT_DEFAULT_N_BATCH;
    rt->n_units = rt->md->n_layers + 2;
    rt->eos = qeil_tokenizer_eos(rt->tk);
    rt->slots = p->batch ? p->batch : 1;
    if (p->sensors && (st = qeil_sense_cpu_meter_create(ctx, &p->meter, &rt->meter)) != QEIL_OK) {
        fail_wrap(ctx, st, "sensors");
        goto fail;
    }
    if ((st = rt_guard_create(ctx, p, &rt->pf, &rt->guard)) != QEIL_OK) {
        fail_wrap(ctx, st, "guard");
        goto fail;
    }
    rt_guard_set_mover(rt->guard, guard_move, rt);

    /* ---- buffers of the sample slots ---- */
    const uint32_t b = p->batch;
    /* a sample's history ends at the context: hist <= n_ctx + 1 tokens
     * (the last sampled token is never evaluated) */
    rt->hist_cap = (size_t)rt->n_ctx + 1;
    rt->smp = qeil_calloc(ctx, rt->slots, sizeof *rt->smp);
    rt->hist = qeil_calloc(ctx, rt->slots, sizeof *rt->hist);
    rt->logits0 = qeil_calloc(ctx, rt->n_vocab, sizeof(float));
    rt->cache = qeil_calloc(ctx, p->samples, sizeof *rt->cache);
    if (!rt->smp || !rt->hist || !rt->logits0 || !rt->cache) goto nomem;
    if (b) {
        rt->hlen = qeil_calloc(ctx, b, sizeof *rt->hlen);
        rt->logits = qeil_calloc(ctx, (size_t)rt->n_vocab * b, sizeof(float));
        rt->row = qeil_calloc(ctx, b, sizeof *rt->row);
        rt->seqs = qeil_calloc(ctx, b, sizeof *rt->seqs);
        rt->rowslot = qeil_calloc(ctx, b, sizeof *rt->rowslot);
        rt->toks = qeil_calloc(ctx, b, sizeof *rt->toks);
        rt->active = qeil_calloc(ctx, b, sizeof *rt->active);
        if (!rt->hlen || !rt->logits || !rt->row || !rt->seqs || !rt->rowslot || !rt->toks ||
            !rt->active)
            goto nomem;
        for (uint32_t j = 0; j < b; j++)
            if (!(rt->hist[j] = qeil_calloc(ctx, rt->hist_cap, sizeof(int32_t)))) goto nomem;
    }
    *out = rt;
    return QEIL_OK;
nomem:
    st = qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "out of memory");
fail:
    qeil_runtime_free(rt);
    return st;
}

qeil_status qeil_runtime_set_sampler(qeil_runtime *rt, const qeil_sampler_params *sp)
{
    if (!rt) return QEIL_ERR_INVALID;
    if (!sp) return qeil_ctx_fail(rt->ctx, QEIL_ERR_INVALID, "set_sampler: params is NULL");
    qeil_status st = qeil_sampler_params_validate(rt->ctx, sp, rt->n_vocab);
    if (st != QEIL_OK) return st;
    qeil_sampler **fresh = qeil_calloc(rt->ctx, rt->slots, sizeof *fresh);
    if (!fresh) return qeil_ctx_fail(rt->ctx, QEIL_ERR_NOMEM, "out of memory");
    for (uint32_t j = 0; j < rt->slots; j++) {
        if ((st = qeil_sampler_create(rt->ctx, sp, rt->n_vocab, &fresh[j])) != QEIL_OK) {
            for (uint32_t i = 0; i < j; i++) qeil_sampler_free(fresh[i]);
            qeil_free(rt->ctx, fresh);
            return st;
        }
    }
    for (uint32_t j = 0; j < rt->slots; j++) qeil_sampler_free(rt->smp[j]);
    qeil_free(rt->ctx, rt->smp);
    rt->smp = fresh;
    rt->seed = sp->seed;
    rt->begun = 0; /* cached samples came from the old params: not to be mixed */
    return QEIL_OK;
}

const qeil_model_desc *qeil_runtime_model(const qeil_runtime *rt) { return rt ? rt->md : NULL; }
const qeil_tokenizer *qeil_runtime_tokenizer(const qeil_runtime *rt) { return rt ? rt->tk : NULL; }
const char *qeil_runtime_chat_template(const qeil_runtime *rt) { return rt ? qeil_engine_chat_template(rt->e) : NULL; }
const qeil_platform *qeil_runtime_platform(const qeil_runtime *rt) { return rt ? &rt->pf : NULL; }
uint32_t qeil_runtime_n_ctx(const qeil_runtime *rt) { return rt ? rt->n_ctx : 0; }
uint32_t qeil_runtime_n_vocab(const qeil_runtime *rt) { return rt ? rt->n_vocab : 0; }
uint32_t qeil_runtime_n_units(const qeil_runtime *rt) { return rt ? rt->n_units : 0; }
const qeil_runtime_params *qeil_runtime_get_params(const qeil_runtime *rt)
{
    return rt ? &rt->p : NULL;
}

qeil_status qeil_runtime_tokenize(qeil_runtime *rt, const char *text, int add_bos,
                                  int parse_special, int32_t *ids, size_t cap, size_t *n)
{
    if (!rt) return QEIL_ERR_INVALID;
    return qeil_tokenizer_encode(rt->ctx, rt->tk, text, add_bos, parse_special, ids, cap, n);
}

/* ------------------------------------------------------------------------ */
/* Configurations: a plan, a selection method                               */
/* ------------------------------------------------------------------------ */

qeil_workload_params qeil_runtime_planning_workload(const qeil_runtime *rt, uint32_t prompt_tokens)
{
    qeil_workload_params wp = qeil_workload_default_params();
    if (!rt) return wp;
    wp.prompt_tokens = prompt_tokens;
    /* max_tokens beyond the context is not an error: generation stops at
     * the context; plan with the tokens that fit after the prompt */
    uint32_t room = rt->md->ctx_max < rt->n_ctx ? rt->md->ctx_max : rt->n_ctx;
    room = room > prompt_tokens ? room - prompt_tokens : 1;
    wp.gen_tokens = rt->p.max_tokens < room ? rt->p.max_tokens : room;
    wp.samples = rt->p.samples;
    return wp;
}

/* ------------------------------------------------------------------------ */
/* Drift and re-planning (docs/runtime.md "Drift and re-planning")          */
/* ------------------------------------------------------------------------ */

/* The plan's predicted time of one decode step per platform unit: the
 * decode time of the work units it decodes there (the energy model's
 * per-work-unit times on the planning workload) over the steps that
 * workload takes (N tokens in ceil(K / b) rounds); 0 where it decodes
 * nothing or the time is not finite. Decode is memory-bound: a step's time
 * barely depends on how many sequences it carries. */
static void predicted_step_s(config *c, int n_dev)
{
    const qeil_workload *wl = &c->wl;
    uint32_t b = c->plan.batch ? c->plan.batch : 1;
    double steps = (double)wl->gen_tokens * (double)((wl->samples + b - 1) / b);
    for (int d = 0; d < QEIL_MAX_UNITS; d++) c->step_pred_s[d] = 0;
    for (uint32_t w = 0; w < wl->n_units; w++) c->step_pred_s[c->plan.dc_unit[w]] += c->plan_ev.dc_time_s[w];
    for (int d = 0; d < n_dev; d++) {
        double t = steps > 0 ? c->step_pred_s[d] / steps : 0;
        c->step_pred_s[d] = isfinite(t) && t > 0 ? t : 0;
    }
}

/* Before a decode step: the engine's cumulative per-unit times. */
static void step_begin(qeil_runtime *rt)
{
    if (rt->p.replan && rt->n_cf) qeil_engine_unit_times(rt->e, rt->ut_step, rt->n_units);
}

/* After a decode step: the engine's per-work-unit times of the step, summed
 * per platform unit the way configuration 0's plan decodes them, against
 * that plan's prediction for the unit, one detector per unit. */
static void observe_step(qeil_runtime *rt)
{
    if (!rt->p.replan || rt->n_cf == 0) return;
    const config *c0 = &rt->cf[0];
    double now[QEIL_MAX_WUNITS], meas[QEIL_MAX_UNITS] = {0};
    qeil_engine_unit_times(rt->e, now, rt->n_units);
    for (uint32_t w = 0; w < rt->n_units && w < c0->wl.n_units; w++)
        meas[c0->plan.dc_unit[w]] += now[w] - rt->ut_step[w];
    const int n_dev = rt->pf.n_units;
    if (rt->p.step_times_hook) rt->p.step_times_hook(rt->p.step_times_user, c0->step_pred_s, meas, n_dev);
    for (int d = 0; d < n_dev; d++) {
        if (c0->step_pred_s[d] <= 0) continue;
        double ratio;
        if (qeil_drift_observe(&rt->drift[d], meas[d], c0->step_pred_s[d], &ratio) &&
            !rt->drift_pending[d]) {
            rt->drift_pending[d] = 1;
            rt->drift_ratio[d] = ratio;
            rt->replan_pending = 1;
        }
    }
}

static int same_plan(const qeil_assignment *a, const qeil_assignment *b, uint32_t n, int n_dev)
{
    if (a->batch != b->batch) return 0;
    for (uint32_t w = 0; w < n; w++)
        if (a->pf_unit[w] != b->pf_unit[w] || a->dc_unit[w] != b->dc_unit[w]) return 0;
    for (int d = 0; d < n_dev; d++)
        if (a->dvfs[d] != b->dvfs[d]) return 0;
    return 1;
}

/* Between requests, after unit d's detector fired: its measured decode
 * step is (1 + ratio) × the prediction, so its achieved-efficiency factors
 * are divided by that (time ∝ 1/η on the roofline), then every
 * configuration is re-planned on the updated platform — PGSAM
 * warm-started from its front with replan_iters evaluations, the
 * baselines searched again — and every unit's detector starts over from
 * its calibrated baseline (the coefficients now carry the drift, and the
 * plans, hence the predictions, may have changed). One event per unit. */
static qeil_status replan_unit(qeil_runtime *rt, int d)
{
    qeil_ctx *ctx = rt->ctx;
    qeil_runtime_replan ev;
    memset(&ev, 0, sizeof ev);
    ev.request = rt->n_requests;
    ev.cause = "drift";
    ev.unit = d;
    snprintf(ev.unit_name, sizeof ev.unit_name, "%s", rt->pf.units[d].name);
    ev.ratio = rt->drift_ratio[d];
    ev.scale = 1.0 / (1.0 + rt->drift_ratio[d]);
    if (!(ev.scale > 0) || !isfinite(ev.scale)) return QEIL_OK; /* nothing sane to apply */
    config *c0 = &rt->cf[0];
    ev.energy_before_J = c0->plan_ev.energy_J;
    ev.latency_before_s = c0->plan_ev.latency_s;
    qeil_assignment before = c0->plan;
    qeil_unit *u = &rt->pf.units[d];
    u->eta_compute *= ev.scale;
    u->eta_mem *= ev.scale;
    /* η is a fraction of peak: past 1 the profile's peak itself was low */
    if (u->eta_compute > 1.0) u->eta_compute = 1.0;
    if (u->eta_mem > 1.0) u->eta_mem = 1.0;
    double t0 = qeil_clock_s();
    for (uint32_t i = 0; i < rt->n_cf; i++) {
        config *c = &rt->cf[i];
        qeil_plan_params pp = qeil_plan_default_params();
        pp.method = c->c.plan_method;
        pp.seed = c->c.plan_seed;
        if (pp.method == QEIL_METHOD_PGSAM) {
            pp.iters = rt->p.replan_iters;
            pp.start = c->front;
            pp.n_start = c->n_front;
        }
        qeil_front *f = NULL;
        qeil_status st = qeil_plan_search(ctx, &rt->pf, &c->wl, &pp, &f);
        if (st != QEIL_OK) return fail_wrap(ctx, st, "re-plan");
        ev.evaluations += qeil_front_evaluations(f);
        size_t k = pp.method == QEIL_METHOD_PGSAM ? qeil_front_knee(f) : 0;
        if (pp.method == QEIL_METHOD_PGSAM && c->c.max_latency_s > 0) {
            size_t kb = qeil_front_best_under(f, c->c.max_latency_s, INFINITY);
            c->plan_bounded = kb != SIZE_MAX;
            if (kb != SIZE_MAX) k = kb;
        }
        c->plan = *qeil_front_plan(f, k);
        c->plan_ev = *qeil_front_eval(f, k);
        uint32_t n = (uint32_t)qeil_front_size(f);
        if (n > c->n_front) {
            qeil_assignment *nf = qeil_malloc(ctx, (size_t)n * sizeof *nf);
            if (!nf) {
                qeil_front_free(f);
                return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "re-plan: out of memory for the front");
            }
            qeil_free(ctx, c->front);
            c->front = nf;
        }
        c->n_front = n;
        for (uint32_t j = 0; j < n; j++) c->front[j] = *qeil_front_plan(f, j);
        qeil_front_free(f);
        predicted_step_s(c, rt->pf.n_units);
    }
    ev.replan_s = qeil_clock_s() - t0;
    ev.energy_after_J = c0->plan_ev.energy_J;
    ev.latency_after_s = c0->plan_ev.latency_s;
    ev.plan_changed = !same_plan(&before, &c0->plan, c0->wl.n_units, rt->pf.n_units);
    rt->replans[rt->n_replans % QEIL_RUNTIME_MAX_REPLANS] = ev;
    rt->n_replans++;
    qeil_ctx_log(ctx, QEIL_LOG_INFO,
                 "re-plan after drift %+.0f %% of unit '%s''s decode step time: its eta x %.3g, "
                 "%llu evaluations in %.2f ms, plan %s",
                 100 * ev.ratio, ev.unit_name, ev.scale, (unsigned long long)ev.evaluations,
                 ev.replan_s * 1e3, ev.plan_changed ? "changed" : "kept");
    return QEIL_OK;
}

/* Every unit whose detector fired, in unit order, then all detectors anew. */
static qeil_status replan_now(qeil_runtime *rt)
{
    rt->replan_pending = 0;
    qeil_status st = QEIL_OK;
    for (int d = 0; d < rt->pf.n_units && st == QEIL_OK; d++)
        if (rt->drift_pending[d]) st = replan_unit(rt, d);
    for (int d = 0; d < QEIL_MAX_UNITS; d++) {
        rt->drift_pending[d] = 0;
        qeil_drift_init(NULL, &rt->drift[d], &rt->p.drift);
    }
    return st;
}

uint32_t qeil_runtime_replan_count(const qeil_runtime *rt) { return rt ? rt->n_replans : 0; }

qeil_status qeil_runtime_replan_get(const qeil_runtime *rt, uint32_t i, qeil_runtime_replan *out)
{
    if (!rt || !out) return QEIL_ERR_INVALID;
    uint32_t kept = rt->n_replans < QEIL_RUNTIME_MAX_REPLANS ? rt->n_replans : QEIL_RUNTIME_MAX_REPLANS;
    if (i >= kept)
        return qeil_ctx_fail(rt->ctx, QEIL_ERR_RANGE, "replan event: %u (allowed 0..%d)", i, (int)kept - 1);
    uint32_t first = rt->n_replans - kept;
    *out = rt->replans[(first + i) % QEIL_RUNTIME_MAX_REPLANS];
    return QEIL_OK;
}

qeil_status qeil_runtime_add_config(qeil_runtime *rt, const qeil_runtime_config *cc,
                                    const qeil_workload_params *wpp, uint32_t *index)
{
    if (!rt) return QEIL_ERR_INVALID;
    qeil_ctx *ctx = rt->ctx;
    if (!cc || !wpp) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "add_config: NULL argument");
    if (rt->n_cf == QEIL_RUNTIME_MAX_CONFIGS)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "configurations: more than %u",
                             QEIL_RUNTIME_MAX_CONFIGS);
    if (cc->plan_method != QEIL_METHOD_PGSAM && cc->plan_method != QEIL_METHOD_GREEDY &&
        cc->plan_method != QEIL_METHOD_STANDARD)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "plan_method: %d (allowed pgsam, greedy, standard)",
                             (int)cc->plan_method);
    if ((unsigned)cc->select >= QEIL_SELECT_METHOD_COUNT)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "select: %d (allowed 0..%d)", (int)cc->select,
                             QEIL_SELECT_METHOD_COUNT - 1);
    if (!(cc->max_latency_s >= 0) || !isfinite(cc->max_latency_s))
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "max_latency_s: %g (allowed >= 0, finite)",
                             cc->max_latency_s);
    qeil_workload wl;
    qeil_status st = qeil_workload_build(ctx, rt->md, wpp, &wl);
    if (st != QEIL_OK) return fail_wrap(ctx, st, "planning workload");

    config *c = &rt->cf[rt->n_cf];
    memset(c, 0, sizeof *c);
    c->c = *cc;
    qeil_plan_params pp = qeil_plan_default_params();
    pp.method = cc->plan_method;
    pp.seed = cc->plan_seed;
    qeil_front *f = NULL;
    if ((st = qeil_plan_search(ctx, &rt->pf, &wl, &pp, &f)) != QEIL_OK) return st;
    size_t k = 0;
    if (cc->plan_method == QEIL_METHOD_PGSAM) {
        k = qeil_front_knee(f);
        if (cc->max_latency_s > 0) {
            const size_t kb = qeil_front_best_under(f, cc->max_latency_s, INFINITY);
            if (kb != SIZE_MAX) {
                k = kb;
                c->plan_bounded = 1;
            } else if (!cc->knee_fallback) { /* a caller's bound: say so, don't guess */
                qeil_front_free(f);
                return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                                     "max_latency_s: no plan on the front is within %g s on "
                                     "the planning workload",
                                     cc->max_latency_s);
            }
        }
    }
    c->plan = *qeil_front_plan(f, k);
    c->plan_ev = *qeil_front_eval(f, k);
    c->wl = wl;
    c->n_front = (uint32_t)qeil_front_size(f);
    c->front = qeil_malloc(ctx, (size_t)c->n_front * sizeof *c->front);
    if (!c->front) {
        qeil_front_free(f);
        return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "add_config: out of memory for the front");
    }
    for (uint32_t i = 0; i < c->n_front; i++) c->front[i] = *qeil_front_plan(f, i);
    qeil_front_free(f);
    predicted_step_s(c, rt->pf.n_units);

    qeil_select_params sp = rt->p.select;
    const uint32_t budget = rt->p.samples;
    sp.method = cc->select;
    sp.budget = budget;
    sp.batch = rt->p.batch ? rt->p.batch : 1;
    /* thresholds that count samples cannot exceed a small budget */
    if (sp.eac_min_votes > budget) sp.eac_min_votes = budget;
    if (sp.csvet_min_samples > budget) sp.csvet_min_samples = budget;
    if (sp.esc_window > budget) sp.esc_window = budget;
    for (int m = 0; m < 2; m++) {
        sp.mode = m ? QEIL_ANSWER_CHOICE : QEIL_ANSWER_NUMERIC;
        if ((st = qeil_select_create(ctx, &sp, &c->sel[m])) != QEIL_OK) {
            qeil_select_free(c->sel[0]);
            c->sel[0] = NULL;
            qeil_free(ctx, c->front);
            c->front = NULL;
            return st;
        }
    }
    if (index) *index = rt->n_cf;
    rt->n_cf++;
    return QEIL_OK;
}

qeil_status qeil_runtime_config_get(const qeil_runtime *rt, uint32_t index,
                                    qeil_runtime_config_info *out)
{
    if (!rt || !out) return QEIL_ERR_INVALID;
    if (index >= rt->n_cf)
        return qeil_ctx_fail(rt->ctx, QEIL_ERR_RANGE, "config: %u (allowed 0..%d)", index,
                             (int)rt->n_cf - 1);
    const config *c = &rt->cf[index];
    out->config = c->c;
    out->plan = c->plan;
    out->plan_ev = c->plan_ev;
    out->plan_bounded = c->plan_bounded;
    return QEIL_OK;
}

/* ------------------------------------------------------------------------ */
/* Recovery from a failed unit (docs/runtime.md)                             */
/* ------------------------------------------------------------------------ */

/* The survivor rule — the new placement without the failed devices when
 * the planner cannot make one: each of their units goes to the device of
 * the unit before it (the first unit: the first healthy unit after it), so
 * the units stay contiguous segments and no boundary transfer is added.
 * QEIL_ERR_DEVICE when no device of the placement survives. */
static qeil_status replan(qeil_runtime *rt, const qeil_engine_failure *f, uint8_t *place)
{
    const uint32_t nu = rt->n_units;
    qeil_status st = qeil_engine_get_placement(rt->e, place, nu);
    if (st != QEIL_OK) return st;
    int first = -1;
    for (uint32_t u = 0; u < nu && first < 0; u++)
        if (!qeil_engine_device_failed(rt->e, place[u])) first = (int)u;
    if (first < 0)
        return qeil_ctx_fail(rt->ctx, QEIL_ERR_DEVICE,
                             "device %s failed (%s) and no other device of the placement survives: "
                             "the request ends",
                             qeil_engine_device_name(f->device), f->cause);
    for (uint32_t u = 0; u < nu; u++)
        if (qeil_engine_device_failed(rt->e, place[u]))
            place[u] = u == 0 ? place[first] : place[u - 1];
    return QEIL_OK;
}

/* Run sequence 0's committed tokens (rp_seq0) again, in the chunks they
 * were first run in (the prompt in n_batch chunks, then one token at a
 * time), and the live samples' tokens after a fork of it: the KV values
 * are bit for bit the first run's. */
static qeil_status replay(qeil_runtime *rt)
{
    qeil_engine *e = rt->e;
    uint32_t lens[QEIL_SELECT_MAX_BATCH];
    const uint32_t len0 = qeil_engine_seq_len(e, 0);
    for (uint32_t j = 0; j < rt->rp_chunk; j++) lens[j] = qeil_engine_seq_len(e, 1 + j);
    qeil_status st;
    qeil_engine_seq_reset(e, 0);
    for (uint32_t at = 0; at < len0;) {
        uint32_t n = 1;
        if (at < rt->rp_prompt) {
            n = rt->rp_prompt - at < rt->n_batch ? rt->rp_prompt - at : rt->n_batch;
            if (n > len0 - at) n = len0 - at;
        }
        if ((st = qeil_engine_eval(e, 0, rt->rp_seq0 + at, n, NULL, 0)) != QEIL_OK) return st;
        at += n;
    }
    for (uint32_t j = 0; j < rt->rp_chunk; j++) {
        if (!rt->active[j] || lens[j] == 0) continue; /* a finished sample's KV is never read */
        qeil_engine_seq_reset(e, 1 + j);
        if ((st = qeil_engine_seq_copy(e, 0, 1 + j)) != QEIL_OK) return st;
        for (uint32_t t = len0; t < lens[j]; t++)
            if ((st = qeil_engine_eval(e, 1 + j, &rt->hist[j][t], 1, NULL, 0)) != QEIL_OK) return st;
    }
    return QEIL_OK;
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

/* The planner's inputs for re-placing the running request on `view`:
 * configuration 0's planning workload, plan (its DVFS points and batch)
 * and front when the runtime has one, else the planning workload of the
 * request's prompt; the last re-plan's front, when there is one, as the
 * warm start; every unit that stands for a failed device, and every unit
 * the guard moved work off, left out. */
static qeil_status replan_inputs(qeil_runtime *rt, const qeil_platform *view, const uint8_t *place,
                                 qeil_workload *wl, rt_replan_in *in)
{
    memset(in, 0, sizeof *in);
    in->ctx = rt->ctx;
    in->pf = view;
    in->place = place;
    in->iters = rt->p.replan_iters;
    in->phase = 1; /* the engine runs one placement: the decode map, where a request spends its steps */
    in->front = rt->arch;
    in->n_front = rt->n_arch;
    if (rt->n_cf) {
        const config *c = &rt->cf[0];
        *wl = c->wl;
        in->base = &c->plan;
        in->seed = c->c.plan_seed;
        in->max_latency_s = c->plan_bounded ? c->c.max_latency_s : 0;
        if (!rt->n_arch) {
            in->front = c->front;
            in->n_front = c->n_front;
        }
    } else {
        qeil_workload_params wp = qeil_runtime_planning_workload(rt, rt->rp_prompt ? rt->rp_prompt : 1);
        qeil_status st = qeil_workload_build(rt->ctx, rt->md, &wp, wl);
        if (st != QEIL_OK) return fail_wrap(rt->ctx, st, "planning workload");
    }
    in->wl = wl;
    for (int d = 0; d < view->n_units; d++) in->leave[d] = rt->hot[d];
    for (size_t id = 0; id < qeil_engine_n_backends(); id++) {
        int d = rt_unit_of_device(view, id);
        if (d >= 0 && qeil_engine_device_failed(rt->e, id)) in->leave[d] = 1;
    }
    return QEIL_OK;
}

/* Keep a re-plan's front as the next re-plan's warm start. */
static void keep_front(qeil_runtime *rt, rt_replan_out *o)
{
    qeil_free(rt->ctx, rt->arch);
    rt->arch = o->front;
    rt->n_arch = o->n_front;
    o->front = NULL;
}

/* Step 1 of a recovery with the planner: PGSAM re-plans the request
 * without the failed unit (rt_replan_placement) into final[]. 0 when the
 * platform's units do not name this placement's devices or the re-plan
 * fails: r->fallback says why and the survivor rule places instead. */
static int plan_recovery(qeil_runtime *rt, uint8_t *final, qeil_runtime_recovery *r)
{
    uint8_t cur[QEIL_MAX_WUNITS];
    copy_str(r->method, sizeof r->method, "survivor");
    if (qeil_engine_get_placement(rt->e, cur, rt->n_units) != QEIL_OK ||
        !rt_profile_maps(&rt->pf, cur, rt->n_units, r->fallback, sizeof r->fallback))
        return 0;
    qeil_workload wl;
    rt_replan_in in;
    rt_replan_out o;
    qeil_status st = replan_inputs(rt, &rt->pf, cur, &wl, &in);
    if (st == QEIL_OK) st = rt_replan_placement(&in, &o);
    if (st != QEIL_OK) {
        snprintf(r->fallback, sizeof r->fallback, "planner: %s", qeil_ctx_errmsg(rt->ctx));
        return 0;
    }
    memcpy(final, o.place, rt->n_units);
    r->evaluations = o.evaluations;
    keep_front(rt, &o);
    copy_str(r->method, sizeof r->method, "planner");
    r->fallback[0] = '\0';
    return 1;
}

/* After QEIL_ERR_DEVICE from the engine: re-place, rebuild the KV, record.
 * Returns QEIL_OK when the failed call can run again. A device failing
 * during the rebuild starts another round (each round loses a device). */
static qeil_status recover(qeil_runtime *rt)
{
    qeil_status st = QEIL_ERR_DEVICE;
    while (st == QEIL_ERR_DEVICE) {
        qeil_engine_failure f;
        if (!rt->p.recover || !qeil_engine_last_failure(rt->e, &f)) return QEIL_ERR_DEVICE;
        if (rt->n_rec == QEIL_RUNTIME_MAX_RECOVERIES)
            return qeil_ctx_fail(rt->ctx, QEIL_ERR_DEVICE, "more than %u recoveries in one request",
                                 QEIL_RUNTIME_MAX_RECOVERIES);
        qeil_runtime_recovery *r = &rt->rec[rt->n_rec];
        memset(r, 0, sizeof *r);
        copy_str(r->device, sizeof r->device, qeil_engine_device_name(f.device));
        copy_str(r->op_name, sizeof r->op_name, f.op_name);
        copy_str(r->cause, sizeof r->cause, f.cause);
        r->unit = f.unit;
        r->op = f.op;
        r->detect_s = f.detect_s;
        qeil_ctx_log(rt->ctx, QEIL_LOG_WARN, "%s", qeil_ctx_errmsg(rt->ctx));

        const uint32_t nu = rt->n_units;
        uint8_t before[QEIL_MAX_WUNITS], place[QEIL_MAX_WUNITS], final[QEIL_MAX_WUNITS];
        if ((st = qeil_engine_get_placement(rt->e, before, nu)) != QEIL_OK) return st;
        double t0 = qeil_clock_s();
        int planned = plan_recovery(rt, final, r);
        if (planned) { /* the failed units first, to where the plan puts them */
            for (uint32_t u = 0; u < nu; u++)
                place[u] = qeil_engine_device_failed(rt->e, before[u]) ? final[u] : before[u];
        } else if ((st = replan(rt, &f, place)) != QEIL_OK) {
            return st;
        }
        r->replan_s = qeil_clock_s() - t0;
        qeil_engine_recovery er;
        st = qeil_engine_recover(rt->e, place, nu, &er);
        if (st != QEIL_OK && st != QEIL_ERR_DEVICE && planned) {
            /* the plan's devices cannot take the units (no Vulkan device
             * behind a "vk0" unit, ...): nothing moved, the survivor rule */
            snprintf(r->fallback, sizeof r->fallback, "the planner's placement: %s",
                     qeil_ctx_errmsg(rt->ctx));
            copy_str(r->method, sizeof r->method, "survivor");
            r->evaluations = 0;
            planned = 0;
            t0 = qeil_clock_s();
            if ((st = replan(rt, &f, place)) != QEIL_OK) return st;
            r->replan_s += qeil_clock_s() - t0;
            st = qeil_engine_recover(rt->e, place, nu, &er);
        }
        if (st != QEIL_OK) {
            if (st != QEIL_ERR_DEVICE) return fail_wrap(rt->ctx, st, "recovery");
            continue;
        }
        r->move_s = er.move_s;
        r->kv_s = er.kv_s;
        if (planned && memcmp(final, place, nu) != 0) {
            /* then the healthy units the plan moves: weights and KV move
             * between healthy devices as any placement change does */
            t0 = qeil_clock_s();
            st = qeil_engine_set_placement(rt->e, final, nu);
            r->move_s += qeil_clock_s() - t0;
            if (st == QEIL_ERR_DEVICE) continue;
            if (st != QEIL_OK) { /* resumed with the failed units moved, the rest in place */
                snprintf(r->fallback, sizeof r->fallback,
                         "the plan's moves of healthy units: %s (they stay)", qeil_ctx_errmsg(rt->ctx));
                st = QEIL_OK;
            }
        }
        if ((st = qeil_engine_get_placement(rt->e, r->placement, nu)) != QEIL_OK) return st;
        r->n_units = nu;
        r->units_moved = 0;
        for (uint32_t u = 0; u < nu; u++) r->units_moved += r->placement[u] != before[u];
        if (!er.kv_restored) {
            /* the step API's sequences belong to its caller: no prefix to replay */
            if (rt->stepping)
                return qeil_ctx_fail(rt->ctx, QEIL_ERR_DEVICE,
                                     "device %s failed (%s) and the KV of its blocks has no host "
                                     "copy (kv_rebuild host-copy is what the step API recovers "
                                     "with)",
                                     r->device, r->cause);
            t0 = qeil_clock_s();
            st = replay(rt);
            r->kv_s = qeil_clock_s() - t0;
            r->kv_recomputed = 1;
        }
        r->total_s = r->detect_s + r->replan_s + r->move_s + r->kv_s;
        rt->n_rec++;
        char txt[160];
        rt_placement_text(r->placement, nu, txt, sizeof txt);
        qeil_ctx_log(rt->ctx, QEIL_LOG_INFO,
                     "recovered from %s (%s at op %llu): %u units moved in %.3g s, placed by the %s%s%s "
                     "(%s)",
                     r->device, r->cause, (unsigned long long)r->op, r->units_moved, r->total_s,
                     r->method, r->fallback[0] ? ": " : "", r->fallback, txt);
    }
    return st;
}

/* Work units the placement runs on the device unit d of pf stands for. */
static int units_on(const qeil_platform *pf, const uint8_t *place, uint32_t nu, int d)
{
    int n = 0;
    for (uint32_t u = 0; u < nu; u++) n += rt_unit_of_device(pf, place[u]) == d;
    return n;
}

/* Re-place the running request without the units rt->hot marks (and the
 * failed ones), on `view`: PGSAM as a recovery's planner step, then the
 * placement change. 1 when done (d's work units before/after into *from /
 * *to when not NULL, the plan's mean power per unit into power_W when not
 * NULL); 0, nothing moved, with the reason logged and the ctx cleared. */
static int guard_replan(qeil_runtime *rt, const qeil_platform *view, const uint8_t *cur, int d,
                        int *from, int *to, double *power_W)
{
    const uint32_t nu = rt->n_units;
    qeil_workload wl;
    rt_replan_in in;
    rt_replan_out o;
    memset(&o, 0, sizeof o);
    qeil_status st = replan_inputs(rt, view, cur, &wl, &in);
    if (st == QEIL_OK) st = rt_replan_placement(&in, &o);
    if (st == QEIL_OK && memcmp(o.place, cur, nu) != 0 &&
        (st = qeil_engine_set_placement(rt->e, o.place, nu)) != QEIL_OK)
        fail_wrap(rt->ctx, st, "placement");
    if (st != QEIL_OK) {
        qeil_ctx_log(rt->ctx, QEIL_LOG_INFO, "guard: cannot re-place the work of %s: %s",
                     view->units[d].name, qeil_ctx_errmsg(rt->ctx));
        qeil_ctx_clear(rt->ctx); /* refused, in the guard's log: no error of the request */
        if (o.front) qeil_free(rt->ctx, o.front);
        return 0;
    }
    keep_front(rt, &o);
    if (from) *from = units_on(view, cur, nu, d);
    if (to) *to = units_on(view, o.place, nu, d);
    for (int k = 0; power_W && k < view->n_units; k++) {
        double w = o.ev.latency_s > 0 ? o.ev.dev_energy_J[k] / o.ev.latency_s : NAN;
        power_W[k] = isfinite(w) && w >= 0 ? w : NAN;
    }
    return 1;
}

/* The guard's migration (rt_guard.c), between two decode steps of a
 * running request: move the blocks off hot unit d to the placement PGSAM
 * re-plans without it (and without the units still hot from earlier
 * migrations) on the guard's fitted view (restore 0). A restore of d
 * (restore 1): with no other unit still hot, back to the placement before
 * the guard's first migration; else a re-plan without those that are.
 * Weights and KV move as any placement change moves them (the KV rows are
 * copied, not recomputed), so the next step computes what it would have.
 * 1 when done (a restore with nothing moved is done); *from / *to
 * (restore 0): work units on d before and after; power_W (restore 0): the
 * new plan's mean power per unit. 0, nothing moved, when the platform's
 * units do not name the placement's devices or no plan leaves d (logged). */
static int guard_move(void *user, int d, int restore, const qeil_platform *view, int *from, int *to,
                      double *power_W)
{
    qeil_runtime *rt = user;
    const uint32_t nu = rt->n_units;
    uint8_t cur[QEIL_MAX_WUNITS];
    char why[160];
    if (qeil_engine_get_placement(rt->e, cur, nu) != QEIL_OK) return 0;
    const uint8_t was_hot = rt->hot[d];
    if (restore) {
        if (!rt->guard_moved) return 1;
        rt->hot[d] = 0;
        int still = 0;
        for (int k = 0; k < view->n_units; k++) still |= rt->hot[k];
        if (still) {
            if (guard_replan(rt, view, cur, d, NULL, NULL, NULL)) return 1;
            rt->hot[d] = was_hot;
            return 0;
        }
        for (uint32_t u = 0; u < nu; u++)
            if (qeil_engine_device_failed(rt->e, rt->guard_place[u])) {
                rt->hot[d] = was_hot;
                return 0;
            }
        if (memcmp(cur, rt->guard_place, nu) != 0 &&
            qeil_engine_set_placement(rt->e, rt->guard_place, nu) != QEIL_OK) {
            qeil_ctx_log(rt->ctx, QEIL_LOG_WARN, "guard: restore: %s", qeil_ctx_errmsg(rt->ctx));
            qeil_ctx_clear(rt->ctx); /* refused, in the guard's log: no error of the request */
            rt->hot[d] = was_hot;
            return 0;
        }
        rt->guard_moved = 0;
        return 1;
    }
    if (!rt_profile_maps(view, cur, nu, why, sizeof why)) {
        qeil_ctx_log(rt->ctx, QEIL_LOG_INFO, "guard: cannot move work off %s: %s",
                     view->units[d].name, why);
        return 0;
    }
    rt->hot[d] = 1;
    if (!guard_replan(rt, view, cur, d, from, to, power_W)) {
        rt->hot[d] = was_hot;
        return 0;
    }
    if (!rt->guard_moved) memcpy(rt->guard_place, cur, nu);
    rt->guard_moved = 1;
    return 1;
}

/* The engine's eval and eval_batch, resumed after a recovery. */
static qeil_status rt_eval(qeil_runtime *rt, uint32_t seq, const int32_t *tok, uint32_t n,
                           float *logits)
{
    for (;;) {
        qeil_status st = qeil_engine_eval(rt->e, seq, tok, n, logits, 0);
        if (st != QEIL_ERR_DEVICE) return st;
        if ((st = recover(rt)) != QEIL_OK) return st;
    }
}

static qeil_status rt_eval_batch(qeil_runtime *rt, const uint32_t *seqs, const int32_t *tok,
                                 uint32_t m, float *logits)
{
    for (;;) {
        qeil_status st = qeil_engine_eval_batch(rt->e, seqs, tok, m, logits);
        if (st != QEIL_ERR_DEVICE) return st;
        if ((st = recover(rt)) != QEIL_OK) return st;
    }
}

const char *qeil_runtime_sample(const qeil_runtime *rt, uint32_t k, uint32_t *n_tokens,
                                double *logprob_sum)
{
    if (!rt || !rt->begun || k >= rt->n_cached) return NULL;
    const sample_rec *r = &rt->cache[k];
    if (n_tokens) *n_tokens = r->n_tokens;
    if (logprob_sum) *logprob_sum = r->logprob_sum;
    return r->text ? r->text : "";
}

uint32_t qeil_runtime_recoveries(const qeil_runtime *rt, qeil_runtime_recovery *out, uint32_t cap)
{
    if (!rt) return 0;
    for (uint32_t i = 0; out && i < rt->n_rec && i < cap; i++) out[i] = rt->rec[i];
    return rt->n_rec;
}

qeil_status qeil_runtime_set_fault(qeil_runtime *rt, const qeil_fault *f)
{
    if (!rt) return QEIL_ERR_INVALID;
    qeil_engine_readmit(rt->e);
    rt->n_rec = 0;
    qeil_free(rt->ctx, rt->arch); /* a sweep's runs start alike */
    rt->arch = NULL;
    rt->n_arch = 0;
    memset(rt->hot, 0, sizeof rt->hot);
    rt->guard_moved = 0;
    rt->begun = 0; /* the KV may move: the current request is over */
    rt->fault_armed = 0;
    uint8_t place[QEIL_MAX_WUNITS], place_dc[QEIL_MAX_WUNITS];
    qeil_status st = qeil_engine_get_placements(rt->e, place, place_dc, rt->n_units);
    if (st == QEIL_OK && (memcmp(place, rt->place0, rt->n_units) != 0 ||
                          memcmp(place_dc, rt->place0_dc, rt->n_units) != 0))
        st = qeil_engine_set_placements(rt->e, rt->place0, rt->place0_dc, rt->n_units);
    if (st == QEIL_OK) st = qeil_engine_set_fault(rt->e, f);
    if (st == QEIL_OK && f) {
        rt->fault_armed = 1;
        rt->fault_dev = f->device;
    }
    return st;
}

uint64_t qeil_runtime_fault_ops(const qeil_runtime *rt)
{
    return rt && rt->fault_armed ? qeil_engine_fault_ops(rt->e, rt->fault_dev) : 0;
}

/* ------------------------------------------------------------------------ */
/* Generation: prefill once, fork, decode a batch of samples together       */
/* ------------------------------------------------------------------------ */

/* splitmix64's finaliser (Steele, Lea, Flood 2014). */
static uint64_t mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* The RNG stream of sample `k` of request stream `p`: independent of
 * batching, of the selection method and of how many samples other requests
 * drew. */
uint64_t qeil_runtime_sample_seed(uint64_t seed, uint32_t p, uint32_t k)
{
    return mix64(seed ^ mix64(((uint64_t)p << 32) | k));
}

static const char *find_bytes(const char *h, size_t hn, const char *n, size_t nn)
{
    if (nn > hn) return NULL;
    for (size_t i = 0; i + nn <= hn; i++)
        if (memcmp(h + i, n, nn) == 0) return h + i;
    return NULL;
}

/* Length of the text to keep when the sample has finished its answer: after
 * the first "####", the first "\n\n" or "Q:" ends it. 0 = not finished. */
size_t qeil_runtime_answer_end(const char *s, size_t n)
{
    if (!s) return 0;
    const char *m = find_bytes(s, n, "####", 4);
    if (!m) return 0;
    size_t from = (size_t)(m - s) + 4;
    const char *a = find_bytes(s + from, n - from, "\n\n", 2);
    const char *b = find_bytes(s + from, n - from, "Q:", 2);
    const char *c = a && (!b || a < b) ? a : b;
    return c ? (size_t)(c - s) : 0;
}

static int rec_add(qeil_ctx *ctx, sample_rec *r, const char *s, size_t n)
{
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 256;
        while (cap < r->len + n + 1) cap *= 2;
        char *p = qeil_realloc(ctx, r->text, cap);
        if (!p) return -1;
        r->text = p;
        r->cap = cap;
    }
    memcpy(r->text + r->len, s, n);
    r->len += n;
    r->text[r->len] = '\0';
    return 0;
}

static qeil_status gen_failf(qeil_runtime *g, qeil_status st, const char *what)
{
    snprintf(g->errmsg, sizeof g->errmsg, "%s: %s", what, qeil_ctx_errmsg(g->ctx));
    g->err = st;
    return st;
}

static qeil_status gen_nomem(qeil_runtime *g)
{
    snprintf(g->errmsg, sizeof g->errmsg, "out of memory");
    return g->err = QEIL_ERR_NOMEM;
}

static qeil_status gen_chunk_run(qeil_runtime *g, uint32_t first, uint32_t c);

/* Generate samples first..first+c-1 (c <= batch) of the current request. */
static qeil_status gen_chunk(qeil_runtime *g, uint32_t first, uint32_t c)
{
    qeil_status st = gen_chunk_run(g, first, c);
    g->rp_chunk = 0;
    return st;
}

static qeil_status gen_chunk_run(qeil_runtime *g, uint32_t first, uint32_t c)
{
    qeil_status st;
    qeil_sense_cpu_meter_start(g->meter);
    double t0 = qeil_clock_s();
    char piece[QEIL_TOKENIZER_MAX_TOKEN_BYTES + 8];
    g->rp_seq0 = g->rq.prompt;
    g->rp_prompt = g->rq.n_prompt;
    g->rp_chunk = c;
    for (uint32_t j = 0; j < c; j++) {
        sample_rec *r = &g->cache[first + j];
        r->len = 0;
        r->n_tokens = 0;
        r->logprob_sum = 0;
        r->flags = 0;
        if (rec_add(g->ctx, r, "", 0) != 0) return gen_nomem(g);
        if ((st = qeil_engine_seq_copy(g->e, 0, 1 + j)) != QEIL_OK)
            return gen_failf(g, st, "fork");
        qeil_sampler_set_seed(g->smp[j], qeil_runtime_sample_seed(g->seed, g->rq.stream, first + j));
        memcpy(g->hist[j], g->rq.prompt, sizeof(int32_t) * g->rq.n_prompt);
        g->hlen[j] = g->rq.n_prompt;
        g->row[j] = g->logits0;
        g->active[j] = 1;
    }
    for (;;) {
        uint32_t m = 0;
        for (uint32_t j = 0; j < c; j++) {
            if (!g->active[j]) continue;
            sample_rec *r = &g->cache[first + j];
            int32_t tok;
            qeil_sampler_logprob lp;
            if ((st = qeil_sampler_sample(g->smp[j], g->row[j], g->n_vocab, g->hist[j], g->hlen[j],
                                          &tok, &lp)) != QEIL_OK)
                return gen_failf(g, st, "sampling");
            if (tok == g->eos) {
                g->active[j] = 0;
                continue;
            }
            size_t pl = qeil_tokenizer_piece(g->tk, tok, piece, sizeof piece);
            if (pl > sizeof piece) pl = sizeof piece;
            if (rec_add(g->ctx, r, piece, pl) != 0) return gen_nomem(g);
            r->n_tokens++;
            r->logprob_sum += lp.raw;
            g->hist[j][g->hlen[j]++] = tok;
            size_t cut = qeil_runtime_answer_end(r->text, r->len);
            if (cut) {
                r->len = cut;
                r->text[cut] = '\0';
                g->active[j] = 0;
            } else if (r->n_tokens >= g->p.max_tokens ||
                       qeil_engine_seq_len(g->e, 1 + j) >= g->n_ctx) {
                r->flags |= QEIL_SAMPLE_HIT_LIMIT;
                g->active[j] = 0;
            } else {
                g->seqs[m] = 1 + j;
                g->toks[m] = tok;
                g->rowslot[m] = j;
                m++;
            }
        }
        if (m == 0) break;
        /* one decode step for the whole batch: weights read once */
        step_begin(g);
        if ((st = rt_eval_batch(g, g->seqs, g->toks, m, g->logits)) != QEIL_OK)
            return gen_failf(g, st, "decode");
        observe_step(g);
        for (uint32_t r = 0; r < m; r++) g->row[g->rowslot[r]] = g->logits + (size_t)r * g->n_vocab;
        rt_guard_poll(g->guard);
    }
    double share = (qeil_clock_s() - t0) / c;
    qeil_sense_measure m;
    qeil_sense_cpu_meter_stop(g->meter, &m);
    m.energy_J /= c; /* NAN stays NAN */
    m.t_s /= c;
    for (uint32_t j = 0; j < c; j++) {
        g->cache[first + j].wall_s = share;
        g->cache[first + j].meas = m;
    }
    return QEIL_OK;
}

static qeil_status gen_upto(qeil_runtime *g, uint32_t need)
{
    while (g->n_cached < need) {
        uint32_t c = need - g->n_cached;
        if (c > g->p.batch) c = g->p.batch;
        qeil_status st = gen_chunk(g, g->n_cached, c);
        if (st != QEIL_OK) return st;
        g->n_cached += c;
    }
    return QEIL_OK;
}

/* The selector's generator: samples come from the per-request cache, drawn
 * on first use. A configuration that asks for samples 0..j-1 gets exactly
 * what a separate run with the same seeds would have drawn. */
static qeil_status gen_cb(void *user, uint32_t first, uint32_t n, qeil_sample *out)
{
    qeil_runtime *g = user;
    if ((uint64_t)first + n > g->p.samples) return QEIL_ERR_RANGE;
    qeil_status st = gen_upto(g, first + n);
    if (st != QEIL_OK) return st;
    for (uint32_t i = 0; i < n; i++) {
        const sample_rec *r = &g->cache[first + i];
        out[i].text = r->text;
        /* the extractor's limit; the answer line comes early, so the head is kept */
        out[i].text_len = r->len < QEIL_ANSWER_MAX_TEXT ? r->len : QEIL_ANSWER_MAX_TEXT;
        out[i].n_tokens = r->n_tokens;
        out[i].logprob_sum = r->logprob_sum;
        out[i].flags = r->flags;
    }
    return QEIL_OK;
}

/* ------------------------------------------------------------------------ */
/* Requests                                                                 */
/* ------------------------------------------------------------------------ */

qeil_status qeil_runtime_begin(qeil_runtime *rt, const qeil_runtime_request *rq)
{
    if (!rt) return QEIL_ERR_INVALID;
    qeil_ctx *ctx = rt->ctx;
    rt->begun = 0;
    if (!rq || !rq->prompt) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "begin: request or prompt is NULL");
    if (!rt->p.batch)
        return qeil_ctx_fail(ctx, QEIL_ERR_INVALID,
                             "begin: batch is 0 (no sample slots; only qeil_runtime_generate)");
    if (!rt->smp[0])
        return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "begin: no sampler (call qeil_runtime_set_sampler)");
    if (rq->n_prompt == 0 || rq->n_prompt >= rt->n_ctx)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                             "n_prompt: %u tokens (allowed 1..%u: below the context of %u tokens)",
                             rq->n_prompt, rt->n_ctx - 1, rt->n_ctx);
    if (rq->mode != QEIL_ANSWER_NUMERIC && rq->mode != QEIL_ANSWER_CHOICE)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "mode: %d (allowed numeric, choice)",
                             (int)rq->mode);
    if (rt->replan_pending) { /* between requests: before this one runs */
        qeil_status st = replan_now(rt);
        if (st != QEIL_OK) return st;
    }
    rt->n_requests++;
    rt->rq = *rq;
    rt->err = QEIL_OK;
    rt->errmsg[0] = '\0';
    qeil_engine_unit_times_reset(rt->e);
    rt->n_rec = 0;

    rt_guard_begin(rt->guard, rt->n_cf ? &rt->cf[0].plan_ev : NULL);

    /* ---- prefill the prompt on sequence 0 ---- */
    qeil_sense_cpu_meter_start(rt->meter);
    double t0 = qeil_clock_s();
    qeil_engine_seq_reset(rt->e, 0);
    rt->gen_live = 0;
    const int32_t *ids = rq->prompt;
    rt->rp_seq0 = ids;
    rt->rp_prompt = rq->n_prompt;
    rt->rp_chunk = 0;
    for (uint32_t at = 0; at < rq->n_prompt;) {
        uint32_t n = rq->n_prompt - at < rt->n_batch ? rq->n_prompt - at : rt->n_batch;
        int last = at + n == rq->n_prompt;
        qeil_status st = rt_eval(rt, 0, ids + at, n, last ? rt->logits0 : NULL);
        if (st != QEIL_OK) return fail_wrap(ctx, st, "prefill");
        at += n;
    }
    rt->n_cached = 0;
    rt->prefill_s = qeil_clock_s() - t0;
    qeil_engine_unit_times(rt->e, rt->ut_pf, rt->n_units);
    qeil_sense_cpu_meter_stop(rt->meter, &rt->prefill_meas);
    rt->begun = 1;
    return QEIL_OK;
}

/* Energy and latency of the work a request executed, on a plan.
 *
 * PROVENANCE: energy_J is the energy model on the executed work, priced on
 * the configuration's plan and target platform (QEIL_PROV_MODELED), which
 * need not be this machine. What this machine's CPU meter measured is kept
 * apart (prefill_meas, decode_meas, read in begin and gen_chunk), never
 * mixed into the modeled figure. */
static qeil_status request_energy(qeil_runtime *rt, const config *c, uint32_t n_samples,
                                  uint64_t n_tokens, qeil_runtime_result *out)
{
    qeil_ctx *ctx = rt->ctx;
    const qeil_model_desc *md = rt->md;
    qeil_workload_params wp = qeil_workload_default_params();
    wp.prompt_tokens = rt->rq.n_prompt;
    uint64_t per = (n_tokens + n_samples / 2) / n_samples;
    wp.gen_tokens = per < 1 ? 1 : (uint32_t)per;
    if (wp.gen_tokens > md->ctx_max - wp.prompt_tokens) wp.gen_tokens = md->ctx_max - wp.prompt_tokens;
    wp.samples = n_samples;
    qeil_workload wl;
    qeil_eval ev;
    qeil_assignment a = c->plan;
    if (a.batch > wp.samples) a.batch = (uint16_t)wp.samples;
    qeil_energy_params ep = qeil_energy_default_params();
    qeil_status st = qeil_workload_build(ctx, md, &wp, &wl);
    if (st == QEIL_OK) st = qeil_energy_eval(&rt->pf, &wl, &a, &ep, &ev);
    if (st != QEIL_OK) return fail_wrap(ctx, st, "energy model");
    if (!isfinite(ev.energy_J) || !isfinite(ev.latency_s))
        return qeil_ctx_fail(ctx, QEIL_ERR_INFEASIBLE,
                             "the %s plan cannot run this workload on %s (infeasible: flags 0x%x)",
                             qeil_plan_method_name(c->c.plan_method), rt->pf.name, ev.infeas);
    out->energy_J = ev.energy_J;
    out->latency_s = ev.latency_s;
    out->plan_feasible = ev.feasible;
    out->energy_src = QEIL_PROV_MODELED;

    /* DASI, CPQ and Φ: the plan's beside this machine's (rt_metrics.c) */
    double t_all[QEIL_MAX_WUNITS], t_dc[QEIL_MAX_WUNITS], temp[QEIL_MAX_UNITS];
    uint8_t place[QEIL_MAX_WUNITS];
    qeil_engine_unit_times(rt->e, t_all, rt->n_units);
    for (uint32_t w = 0; w < rt->n_units; w++) t_dc[w] = t_all[w] - rt->ut_pf[w];
    if (qeil_engine_get_placement(rt->e, place, rt->n_units) != QEIL_OK)
        memset(place, 0, sizeof place);
    for (int d = 0; d < rt->pf.n_units; d++) temp[d] = rt_guard_unit_temp(rt->guard, d);
    double dc_tokens = 0; /* every sample the request decoded so far, whichever config drew it */
    for (uint32_t i = 0; i < rt->n_cached; i++) dc_tokens += rt->cache[i].n_tokens;
    rt_metrics_in mi = {&rt->pf, &wl, &a, &ev, rt->n_units, place, rt->ut_pf, t_dc, dc_tokens,
                        temp, rt_meminfo_used_B(rt->p.meter.root)};
    rt_unit_metrics(&mi, rt->um);
    rt->n_um = (uint32_t)rt->pf.n_units;
    return QEIL_OK;
}

uint32_t qeil_runtime_unit_metrics_get(const qeil_runtime *rt, qeil_runtime_unit_metrics *out,
                                       uint32_t cap)
{
    if (!rt) return 0;
    for (uint32_t i = 0; out && i < rt->n_um && i < cap; i++) out[i] = rt->um[i];
    return rt->n_um;
}

qeil_status qeil_runtime_select(qeil_runtime *rt, uint32_t ci, qeil_runtime_result *out)
{
    if (!rt || !out) return QEIL_ERR_INVALID;
    memset(out, 0, sizeof *out);
    qeil_ctx *ctx = rt->ctx;
    if (!rt->begun) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "select: no request begun");
    if (ci >= rt->n_cf)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "config: %u (allowed 0..%d)", ci,
                             (int)rt->n_cf - 1);
    config *c = &rt->cf[ci];
    qeil_selector *sel = c->sel[rt->rq.mode == QEIL_ANSWER_CHOICE];
    qeil_select_result res;
    rt->err = QEIL_OK;
    qeil_status st = qeil_select_run(sel, gen_cb, rt, &res);
    rt_guard_end(rt->guard);
    if (st != QEIL_OK) {
        /* the generator's own failure says more than "generator failed" */
        if (rt->err != QEIL_OK) return qeil_ctx_fail(ctx, rt->err, "%s", rt->errmsg);
        return st;
    }
    qeil_runtime_result r;
    memset(&r, 0, sizeof r);
    r.answer = res.answer;
    r.stage = res.stage;
    r.stop = res.stop;
    r.n_samples = res.n_samples;
    r.n_tokens = res.n_tokens;
    r.n_prompt = rt->rq.n_prompt;
    if (rt->rq.gold) {
        r.correct = qeil_answer_equal(&res.answer, rt->rq.gold);
        for (uint32_t i = 0; i < res.n_samples; i++) {
            qeil_select_sample_info si;
            if (qeil_select_sample_get(sel, i, &si) == QEIL_OK &&
                qeil_answer_equal(&si.answer, rt->rq.gold))
                r.n_correct++;
        }
    }
    r.prefill_s = rt->prefill_s;
    r.prefill_meas = rt->prefill_meas;
    r.decode_meas = rt->cache[0].meas;
    for (uint32_t i = 0; i < res.n_samples; i++) {
        r.decode_s += rt->cache[i].wall_s;
        if (i) r.decode_meas = qeil_sense_measure_add(r.decode_meas, rt->cache[i].meas);
    }
    r.wall_s = r.prefill_s + r.decode_s;
    if ((st = request_energy(rt, c, res.n_samples, res.n_tokens, &r)) != QEIL_OK) return st;
    *out = r;
    return QEIL_OK;
}

const char *qeil_runtime_meter_provenance(const qeil_runtime *rt)
{
    return rt ? qeil_sense_cpu_meter_provenance(rt->meter) : NULL;
}

const char *qeil_runtime_meter_covers(const qeil_runtime *rt)
{
    if (rt && !rt->meter) return "sensors off";
    return qeil_sense_cpu_meter_covers(rt ? rt->meter : NULL);
}

void qeil_runtime_unit_times(const qeil_runtime *rt, double *t_s, uint32_t n_units)
{
    if (!rt || !t_s) return;
    if (n_units > rt->n_units) n_units = rt->n_units;
    qeil_engine_unit_times(rt->e, t_s, n_units);
}

void qeil_runtime_transfer_stats(const qeil_runtime *rt, qeil_engine_transfers *out)
{
    qeil_engine_transfer_stats(rt ? rt->e : NULL, out);
}

qeil_status qeil_runtime_placements(const qeil_runtime *rt, uint8_t *prefill, uint8_t *decode,
                                    uint32_t n_units)
{
    if (!rt) return QEIL_ERR_INVALID;
    return qeil_engine_get_placements(rt->e, prefill, decode, n_units);
}

/* ------------------------------------------------------------------------ */
/* Single-stream generation                                                 */
/* ------------------------------------------------------------------------ */

const char *qeil_runtime_stop_name(qeil_runtime_stop s)
{
    switch (s) {
    case QEIL_RUNTIME_STOP_LENGTH: return "length";
    case QEIL_RUNTIME_STOP_EOS: return "eos";
    case QEIL_RUNTIME_STOP_CONTEXT: return "context";
    }
    return "unknown";
}

qeil_status qeil_runtime_set_stop_tokens(qeil_runtime *rt, const int32_t *ids, uint32_t n)
{
    if (!rt) return QEIL_ERR_INVALID;
    if (n > QEIL_RUNTIME_MAX_STOP)
        return qeil_ctx_fail(rt->ctx, QEIL_ERR_RANGE, "stop tokens: %u (allowed 0..%u)", n,
                             QEIL_RUNTIME_MAX_STOP);
    if (n && !ids) return qeil_ctx_fail(rt->ctx, QEIL_ERR_INVALID, "stop tokens: ids is NULL");
    for (uint32_t i = 0; i < n; i++)
        if (ids[i] < 0 || (uint32_t)ids[i] >= rt->n_vocab)
            return qeil_ctx_fail(rt->ctx, QEIL_ERR_RANGE, "stop tokens[%u]: %d (allowed 0..%u)", i, ids[i],
                                 rt->n_vocab - 1);
    for (uint32_t i = 0; i < n; i++) rt->stop[i] = ids[i];
    rt->n_stop = n;
    return QEIL_OK;
}

static int is_stop(const qeil_runtime *rt, int32_t tok)
{
    if (tok == rt->eos) return 1;
    for (uint32_t i = 0; i < rt->n_stop; i++)
        if (tok == rt->stop[i]) return 1;
    return 0;
}

uint32_t qeil_runtime_gen_len(const qeil_runtime *rt)
{
    return rt && rt->gen_live ? qeil_engine_seq_len(rt->e, 0) : 0;
}

static qeil_status gen_impl(qeil_runtime *rt, int more, const int32_t *prompt, uint32_t n_prompt,
                            uint32_t max_tokens, int32_t *tokens, qeil_sampler_logprob *lps,
                            qeil_runtime_token_fn cb, void *user, qeil_runtime_gen_result *out);

qeil_status qeil_runtime_generate(qeil_runtime *rt, const int32_t *prompt, uint32_t n_prompt,
                                  uint32_t max_tokens, int32_t *tokens,
                                  qeil_sampler_logprob *lps, qeil_runtime_token_fn cb,
                                  void *user, qeil_runtime_gen_result *out)
{
    return gen_impl(rt, 0, prompt, n_prompt, max_tokens, tokens, lps, cb, user, out);
}

qeil_status qeil_runtime_generate_more(qeil_runtime *rt, const int32_t *prompt, uint32_t n_prompt,
                                       uint32_t max_tokens, int32_t *tokens,
                                       qeil_sampler_logprob *lps, qeil_runtime_token_fn cb,
                                       void *user, qeil_runtime_gen_result *out)
{
    return gen_impl(rt, 1, prompt, n_prompt, max_tokens, tokens, lps, cb, user, out);
}

static qeil_status gen_impl(qeil_runtime *rt, int more, const int32_t *prompt, uint32_t n_prompt,
                            uint32_t max_tokens, int32_t *tokens, qeil_sampler_logprob *lps,
                            qeil_runtime_token_fn cb, void *user, qeil_runtime_gen_result *out)
{
    if (!rt) return QEIL_ERR_INVALID;
    qeil_ctx *ctx = rt->ctx;
    if (!prompt || !out) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "generate: prompt or out is NULL");
    memset(out, 0, sizeof *out);
    if (!rt->smp[0])
        return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "generate: no sampler (call qeil_runtime_set_sampler)");
    if (more && !rt->gen_live)
        return qeil_ctx_fail(ctx, QEIL_ERR_INVALID,
                             "generate_more: sequence 0 holds no generation to continue (call "
                             "qeil_runtime_generate first)");
    uint32_t past = more ? qeil_engine_seq_len(rt->e, 0) : 0;
    if (n_prompt == 0 || n_prompt > rt->n_ctx - past)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                             "n_prompt: %u tokens (allowed 1..%u: the context of %u tokens holds %u)",
                             n_prompt, rt->n_ctx - past, rt->n_ctx, past);
    if (max_tokens == 0)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "max_tokens: 0 (allowed >= 1)");
    rt->begun = 0; /* sequence 0 no longer holds a request's prompt */
    /* the history the sampler's repetition penalty looks back over */
    if ((size_t)max_tokens > SIZE_MAX / sizeof(int32_t) - n_prompt)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "max_tokens: %u is too large", max_tokens);
    int32_t *ids = qeil_malloc(ctx, sizeof *ids * ((size_t)n_prompt + max_tokens));
    if (!ids) return qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "out of memory");
    memcpy(ids, prompt, sizeof *ids * n_prompt);
    qeil_sampler *smp = rt->smp[0];
    qeil_sampler_set_seed(smp, rt->seed);
    qeil_engine_unit_times_reset(rt->e);
    qeil_status st = QEIL_OK;
    out->n_prompt = n_prompt;
    rt->n_rec = 0;
    rt->rp_seq0 = ids;
    rt->rp_prompt = n_prompt;
    rt->rp_chunk = 0;

    /* ---- prefill, in chunks of at most n_batch tokens, after what
     * sequence 0 holds (generate_more) or from empty ---- */
    rt->gen_live = 0; /* until this call succeeds */
    if (!more) qeil_engine_seq_reset(rt->e, 0);
    qeil_sense_measure none;
    qeil_sense_cpu_meter_stop(NULL, &none);
    out->prefill_meas = out->decode_meas = none;
    rt_guard_begin(rt->guard, NULL);
    qeil_sense_cpu_meter_start(rt->meter);
    double t0 = qeil_clock_s();
    for (uint32_t at = 0; at < n_prompt;) {
        uint32_t n = n_prompt - at < rt->n_batch ? n_prompt - at : rt->n_batch;
        int last = at + n == n_prompt;
        if ((st = rt_eval(rt, 0, ids + at, n, last ? rt->logits0 : NULL)) != QEIL_OK) {
            fail_wrap(ctx, st, "prefill");
            goto out;
        }
        at += n;
    }
    out->prefill_s = qeil_clock_s() - t0;
    qeil_sense_cpu_meter_stop(rt->meter, &out->prefill_meas);
    qeil_sense_cpu_meter_start(rt->meter);

    /* ---- decode: sample, hand over, evaluate the sampled token ---- */
    size_t n_hist = n_prompt;
    char piece[QEIL_TOKENIZER_MAX_TOKEN_BYTES + 8];
    out->stop = QEIL_RUNTIME_STOP_LENGTH;
    while (out->n_gen < max_tokens) {
        int32_t tok;
        qeil_sampler_logprob lp;
        double ts = qeil_clock_s();
        if ((st = qeil_sampler_sample(smp, rt->logits0, rt->n_vocab, ids, n_hist, &tok, &lp)) !=
            QEIL_OK) {
            fail_wrap(ctx, st, "sampling");
            goto out;
        }
        out->sample_s += qeil_clock_s() - ts;
        out->n_sampled++;
        if (is_stop(rt, tok)) {
            out->stop = QEIL_RUNTIME_STOP_EOS;
            out->stop_token = tok;
            break;
        }
        ids[n_hist++] = tok;
        if (tokens) tokens[out->n_gen] = tok;
        if (lps) lps[out->n_gen] = lp;
        out->n_gen++;
        if (cb) {
            size_t pl = qeil_tokenizer_piece(rt->tk, tok, piece, sizeof piece);
            if (pl > sizeof piece) pl = sizeof piece;
            if ((st = cb(user, tok, piece, pl)) != QEIL_OK) goto out;
        }
        if (out->n_gen == max_tokens) break;
        if (qeil_engine_seq_len(rt->e, 0) >= rt->n_ctx) {
            out->stop = QEIL_RUNTIME_STOP_CONTEXT;
            break;
        }
        double td = qeil_clock_s();
        if ((st = rt_eval(rt, 0, &tok, 1, rt->logits0)) != QEIL_OK) {
            fail_wrap(ctx, st, "decode");
            goto out;
        }
        out->decode_s += qeil_clock_s() - td;
        out->n_decode++;
        rt_guard_poll(rt->guard);
    }
    qeil_sense_cpu_meter_stop(rt->meter, &out->decode_meas);
    rt->gen_live = 1;
out:
    rt_guard_end(rt->guard);
    qeil_free(ctx, ids);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Step-level decoding (a server's scheduler: docs/runtime.md "Step API")    */
/* ------------------------------------------------------------------------ */

uint32_t qeil_runtime_n_seq(const qeil_runtime *rt) { return rt ? 1 + rt->p.batch : 0; }


uint32_t qeil_runtime_seq_len(const qeil_runtime *rt, uint32_t seq)
{
    return rt && seq < 1 + rt->p.batch ? qeil_engine_seq_len(rt->e, seq) : 0;
}

qeil_status qeil_runtime_seq_prefill(qeil_runtime *rt, uint32_t seq, const int32_t *prompt,
                                     uint32_t n, float *logits)
{
    if (!rt) return QEIL_ERR_INVALID;
    qeil_ctx *ctx = rt->ctx;
    rt->begun = 0;
    if (!prompt) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "seq_prefill: prompt is NULL");
    if (seq >= 1 + rt->p.batch)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "seq: %u (allowed 0..%u)", seq, rt->p.batch);
    if (n == 0 || n >= rt->n_ctx)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                             "n_prompt: %u tokens (allowed 1..%u: below the context of %u tokens)",
                             n, rt->n_ctx - 1, rt->n_ctx);
    qeil_engine_seq_reset(rt->e, seq);
    for (uint32_t at = 0; at < n;) {
        uint32_t k = n - at < rt->n_batch ? n - at : rt->n_batch;
        int last = at + k == n;
        rt->stepping = 1;
        qeil_status st = rt_eval(rt, seq, prompt + at, k, last ? logits : NULL);
        rt->stepping = 0;
        if (st != QEIL_OK) return fail_wrap(ctx, st, "prefill");
        at += k;
    }
    return QEIL_OK;
}

qeil_status qeil_runtime_seq_fork(qeil_runtime *rt, uint32_t src, uint32_t dst)
{
    if (!rt) return QEIL_ERR_INVALID;
    rt->begun = 0;
    if (src >= 1 + rt->p.batch || dst >= 1 + rt->p.batch || src == dst)
        return qeil_ctx_fail(rt->ctx, QEIL_ERR_RANGE,
                             "seq_fork: %u -> %u (allowed two distinct sequences of 0..%u)", src,
                             dst, rt->p.batch);
    qeil_status st = qeil_engine_seq_copy(rt->e, src, dst);
    return st == QEIL_OK ? QEIL_OK : fail_wrap(rt->ctx, st, "fork");
}

qeil_status qeil_runtime_decode_step(qeil_runtime *rt, const uint32_t *seqs, const int32_t *tokens,
                                     uint32_t m, float *logits)
{
    if (!rt) return QEIL_ERR_INVALID;
    qeil_ctx *ctx = rt->ctx;
    rt->begun = 0;
    if (!seqs || !tokens || !logits)
        return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "decode_step: NULL argument");
    const uint32_t n_seq = 1 + rt->p.batch;
    if (m == 0 || m > n_seq)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "decode_step: m = %u (allowed 1..%u)", m, n_seq);
    for (uint32_t r = 0; r < m; r++) {
        if (seqs[r] >= n_seq)
            return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "decode_step: seq %u (allowed 0..%u)",
                                 seqs[r], n_seq - 1);
        for (uint32_t q = 0; q < r; q++)
            if (seqs[q] == seqs[r])
                return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "decode_step: seq %u given twice",
                                     seqs[r]);
        if (qeil_engine_seq_len(rt->e, seqs[r]) >= rt->n_ctx)
            return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                                 "decode_step: seq %u is full (%u tokens, the context)", seqs[r],
                                 rt->n_ctx);
    }
    rt->stepping = 1;
    qeil_status st = rt_eval_batch(rt, seqs, tokens, m, logits);
    rt->stepping = 0;
    return st == QEIL_OK ? QEIL_OK : fail_wrap(ctx, st, "decode");
}

void qeil_runtime_guard_report_get(const qeil_runtime *rt, qeil_runtime_guard_report *out)
{
    if (!out) return;
    rt_guard_report(rt ? rt->guard : NULL, out);
}
