/* test_runtime.c — the library runtime (qeil/runtime.h) end to end on a
 * tiny random-weight model the test writes (qeil_mkmodel_write, preset
 * tiny-llama, q8_0, seed 1): a whole `--compare` evaluation of
 * tests/data/eval/tiny.jsonl driven through the API gives the answers,
 * sample counts, token counts and stages that the `qeil eval` CLI gave
 * before the runtime existed (golden values below) and gives now (the CLI
 * binary of the same build is run and its JSON compared, energy included);
 * the same results whatever the batch and thread count; the accounting of
 * a request (tokens, wall time per phase, per-unit time, energy and its
 * provenance); single-stream generation against `qeil generate`; the task
 * reader; and the error cases (bad params named with field, value and
 * range; NULL handles; free(NULL); calls out of order). */
#include <cjson/cJSON.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdint.h>
#include <unistd.h>

#include "qeil/runtime.h"
#include "runtime/rt_metrics.h"
#include "test.h"

static char qeil_bin[4200];
/* how a command line runs it: behind $QEIL_TEST_RUNNER (tests/run.sh's
 * emulator, e.g. qemu-aarch64-static for the aarch64 build) when set */
static char qeil_cmd[8400];
static char tasks_path[4300];
static char tmpdir[] = "/tmp/qeil-runtime-XXXXXX";
static char model[4200];

/* The evaluation the golden values come from: `qeil eval -m tiny-q8_0.gguf
 * --tasks tests/data/eval/tiny.jsonl --samples 8 -n 6 --seed 7 --temp 3
 * --top-k 0 --compare` (batch 4, all threads). */
#define G_SAMPLES 8u
#define G_MAX_TOKENS 6u
#define G_SEED 7u
#define G_CLI_ARGS "--samples 8 -n 6 --seed 7 --temp 3 --top-k 0 --compare"
#define N_TASKS 4u
#define N_CF 3u

typedef struct {
    const char *chosen; /* NULL: no answer */
    uint32_t samples;
    uint64_t tokens;
    const char *stage;
} golden;

/* Recorded with the pre-runtime CLI (commit 7e793ab, cli/cmd_eval.c's own
 * generation loop). The standard and v1 configurations both take the
 * majority of all 8 samples; v2's cascade (ARDE) reads the same samples.
 * Sample 3 of problem 2 ends at EOS: 39 tokens, not 8 x 6 = 48. */
static const golden GOLD[N_CF][N_TASKS] = {
    {{"360", 8, 48, "budget"}, {"510", 8, 39, "budget"}, {NULL, 8, 48, "no-answer"},
     {"427", 8, 48, "budget"}},
    {{"360", 8, 48, "budget"}, {"510", 8, 39, "budget"}, {NULL, 8, 48, "no-answer"},
     {"427", 8, 48, "budget"}},
    {{"0", 8, 48, "arde"}, {"489", 8, 39, "arde"}, {NULL, 8, 48, "no-answer"},
     {"8", 8, 48, "arde"}},
};

typedef struct {
    qeil_runtime_result r[N_CF][N_TASKS];
    qeil_runtime_config_info info[N_CF];
    double unit_sum_s[N_TASKS];
    uint32_t n_prompt[N_TASKS];
} eval_out;

static qeil_sampler_params golden_sampler(void)
{
    qeil_sampler_params sp = qeil_sampler_default_params();
    sp.seed = G_SEED;
    sp.temp = 3.0f;
    sp.top_k = 0;
    return sp;
}

/* `qeil eval --compare` through the runtime API, as a library user would
 * write it. Returns 0, or -1 after reporting the failure. */
static int run_eval(uint32_t batch, int threads, eval_out *out)
{
    memset(out, 0, sizeof *out);
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_tasks *ts = NULL;
    qeil_runtime *rt = NULL;
    int32_t ids[N_TASKS][512];
    int rc = -1;
#define NEED(call)                                                                         \
    do {                                                                                   \
        if ((call) != QEIL_OK) {                                                           \
            TEST_FAIL_("%s: %s", #call, qeil_ctx_errmsg(ctx));                             \
            goto done;                                                                     \
        }                                                                                  \
    } while (0)
    NEED(qeil_tasks_read(ctx, tasks_path, 0, &ts));
    if (qeil_tasks_count(ts) != N_TASKS) {
        TEST_FAIL_("tasks: %u, want %u", qeil_tasks_count(ts), N_TASKS);
        goto done;
    }
    qeil_runtime_params rp = qeil_runtime_default_params();
    rp.model_path = model;
    rp.samples = G_SAMPLES;
    rp.batch = batch;
    rp.max_tokens = G_MAX_TOKENS;
    rp.n_threads = threads;
    NEED(qeil_runtime_create(ctx, &rp, &rt));
    double sum = 0;
    for (uint32_t i = 0; i < N_TASKS; i++) {
        const qeil_task *t = qeil_tasks_get(ts, i);
        char prompt[1024];
        size_t n = 0;
        snprintf(prompt, sizeof prompt, "%s%s%s", QEIL_TASK_PROMPT_PREFIX, t->question,
                 QEIL_TASK_PROMPT_SUFFIX);
        NEED(qeil_runtime_tokenize(rt, prompt, -1, 0, ids[i], 512, &n));
        out->n_prompt[i] = (uint32_t)n;
        sum += (double)n;
    }
    qeil_sampler_params sp = golden_sampler();
    NEED(qeil_runtime_set_sampler(rt, &sp));
    qeil_workload_params wp = qeil_runtime_planning_workload(rt, (uint32_t)(sum / N_TASKS + 0.5));
    /* --compare: standard plan + majority, greedy + majority, PGSAM no slower
     * than the standard plan (else the knee) + cascade */
    const qeil_plan_method pm[N_CF] = {QEIL_METHOD_STANDARD, QEIL_METHOD_GREEDY,
                                       QEIL_METHOD_PGSAM};
    const qeil_select_method sm[N_CF] = {QEIL_SELECT_MAJORITY, QEIL_SELECT_MAJORITY,
                                         QEIL_SELECT_CASCADE};
    for (uint32_t c = 0; c < N_CF; c++) {
        qeil_runtime_config cfg = qeil_runtime_default_config();
        cfg.plan_method = pm[c];
        cfg.select = sm[c];
        cfg.plan_seed = G_SEED;
        if (c == 2) cfg.max_latency_s = out->info[0].plan_ev.latency_s;
        cfg.knee_fallback = 1;
        uint32_t idx = 99;
        NEED(qeil_runtime_add_config(rt, &cfg, &wp, &idx));
        CHECK_EQ_INT(idx, c);
        NEED(qeil_runtime_config_get(rt, c, &out->info[c]));
    }
    for (uint32_t i = 0; i < N_TASKS; i++) {
        const qeil_task *t = qeil_tasks_get(ts, i);
        qeil_runtime_request rq = {ids[i], out->n_prompt[i], t->mode, i, &t->gold};
        NEED(qeil_runtime_begin(rt, &rq));
        for (uint32_t c = 0; c < N_CF; c++) NEED(qeil_runtime_select(rt, c, &out->r[c][i]));
        double u[16];
        uint32_t nu = qeil_runtime_n_units(rt);
        CHECK_EQ_INT(nu, qeil_runtime_model(rt)->n_layers + 2);
        if (nu > 16) nu = 16;
        qeil_runtime_unit_times(rt, u, nu);
        for (uint32_t k = 0; k < nu; k++) out->unit_sum_s[i] += u[k];
    }
    rc = 0;
done:
#undef NEED
    qeil_runtime_free(rt);
    qeil_tasks_free(ts);
    qeil_ctx_free(ctx);
    return rc;
}

static void check_golden(const eval_out *o, const char *what)
{
    for (uint32_t c = 0; c < N_CF; c++)
        for (uint32_t i = 0; i < N_TASKS; i++) {
            const golden *g = &GOLD[c][i];
            const qeil_runtime_result *r = &o->r[c][i];
            const char *got = r->answer.has ? r->answer.text : NULL;
            if ((g->chosen == NULL) != (got == NULL) || (got && strcmp(got, g->chosen) != 0) ||
                r->n_samples != g->samples || r->n_tokens != g->tokens ||
                strcmp(qeil_select_stage_name(r->stage), g->stage) != 0)
                TEST_FAIL_("%s: config %u problem %u: %s, %u samples, %llu tokens, %s; want %s, "
                           "%u, %llu, %s",
                           what, c, i, got ? got : "(none)", r->n_samples,
                           (unsigned long long)r->n_tokens, qeil_select_stage_name(r->stage),
                           g->chosen ? g->chosen : "(none)", g->samples,
                           (unsigned long long)g->tokens, g->stage);
        }
}

/* ------------------------------------------------------------------------ */

TEST(make_tiny_model)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_mkmodel_params p;
    snprintf(model, sizeof model, "%s/tiny-q8_0.gguf", tmpdir);
    CHECK_EQ_INT(qeil_mkmodel_preset(ctx, "tiny-llama", &p), QEIL_OK);
    p.type = QEIL_GGML_Q8_0; /* integer dot products: the same bits on every CPU */
    p.seed = 1;
    CHECK_EQ_INT(qeil_mkmodel_write(ctx, &p, model), QEIL_OK);
    qeil_ctx_free(ctx);
    if (test_failed_) model[0] = '\0';
}

TEST(eval_gives_the_golden_results)
{
    static eval_out o;
    if (!model[0]) SKIP("no model (make_tiny_model failed)");
    if (run_eval(4, 0, &o) != 0) return;
    check_golden(&o, "batch 4");
    /* scored against the gold answers: nothing right on random weights,
     * but every drawn sample was compared */
    for (uint32_t c = 0; c < N_CF; c++)
        for (uint32_t i = 0; i < N_TASKS; i++) {
            CHECK_EQ_INT(o.r[c][i].correct, 0);
            CHECK_EQ_INT(o.r[c][i].n_correct, 0);
        }
    CHECK_EQ_INT(o.info[0].plan.batch >= 1, 1);
    CHECK_EQ_INT(o.info[2].config.plan_method, QEIL_METHOD_PGSAM);
}

TEST(eval_is_independent_of_batch_and_threads)
{
    static eval_out o;
    if (!model[0]) SKIP("no model (make_tiny_model failed)");
    if (run_eval(1, 1, &o) == 0) check_golden(&o, "batch 1, 1 thread");
    if (run_eval(3, 2, &o) == 0) check_golden(&o, "batch 3, 2 threads");
    if (run_eval(8, 0, &o) == 0) check_golden(&o, "batch 8");
}

/* A request's accounting: tokens, time per phase, per unit, energy. */
TEST(request_accounting)
{
    static eval_out o;
    if (!model[0]) SKIP("no model (make_tiny_model failed)");
    if (run_eval(4, 0, &o) != 0) return;
    for (uint32_t i = 0; i < N_TASKS; i++) {
        for (uint32_t c = 0; c < N_CF; c++) {
            const qeil_runtime_result *r = &o.r[c][i];
            CHECK_EQ_INT(r->n_prompt, o.n_prompt[i]);
            CHECK(r->prefill_s > 0 && r->decode_s > 0);
            CHECK_NEAR(r->wall_s, r->prefill_s + r->decode_s, 1e-12, 0);
            CHECK(isfinite(r->energy_J) && r->energy_J > 0);
            CHECK(isfinite(r->latency_s) && r->latency_s > 0);
            /* the provenance field: modeled until src/sense measures */
            CHECK_EQ_INT(r->energy_src, QEIL_PROV_MODELED);
        }
        /* the same samples, the same prefill: configurations differ only
         * in the plan that prices them */
        CHECK_NEAR(o.r[0][i].wall_s, o.r[1][i].wall_s, 1e-12, 0);
        /* greedy puts decode on the device with the best bandwidth per watt,
         * which is not the fastest: more modeled latency than standard */
        CHECK(o.r[1][i].latency_s > o.r[0][i].latency_s);
        /* per-unit wall time covers the request's forward passes */
        CHECK(o.unit_sum_s[i] > 0);
        CHECK(o.unit_sum_s[i] <= o.r[0][i].wall_s * 1.05 + 1e-3);
    }
}

/* ---- the CLI gives the same ---- */

static char *slurp_cmd(const char *cmd)
{
    FILE *f = popen(cmd, "r");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *s = malloc(cap);
    while (s) {
        if (n + 4096 + 1 > cap) {
            char *t = realloc(s, cap * 2);
            if (!t) {
                free(s);
                s = NULL;
                break;
            }
            s = t;
            cap *= 2;
        }
        size_t got = fread(s + n, 1, 4096, f);
        n += got;
        if (got == 0) break;
    }
    if (s) s[n] = '\0';
    if (pclose(f) != 0) {
        free(s);
        return NULL;
    }
    return s;
}

TEST(eval_matches_the_cli)
{
    static eval_out o;
    if (!model[0]) SKIP("no model (make_tiny_model failed)");
    if (run_eval(4, 0, &o) != 0) return;
    char cmd[24000];
    snprintf(cmd, sizeof cmd, "%s eval -m %s --tasks %s --output json %s 2>/dev/null", qeil_cmd,
             model, tasks_path, G_CLI_ARGS);
    char *text = slurp_cmd(cmd);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    CHECK(j != NULL);
    if (!j) return;
    cJSON *cfs = cJSON_GetObjectItem(j, "configurations");
    CHECK_EQ_INT(cJSON_GetArraySize(cfs), N_CF);
    for (uint32_t c = 0; c < N_CF && c < (uint32_t)cJSON_GetArraySize(cfs); c++) {
        cJSON *cc = cJSON_GetArrayItem(cfs, (int)c);
        CHECK_EQ_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(cc, "plan_batch")),
                     o.info[c].plan.batch);
        cJSON *pr = cJSON_GetObjectItem(cc, "problems");
        CHECK_EQ_INT(cJSON_GetArraySize(pr), N_TASKS);
        for (uint32_t i = 0; i < N_TASKS && i < (uint32_t)cJSON_GetArraySize(pr); i++) {
            cJSON *p = cJSON_GetArrayItem(pr, (int)i);
            const qeil_runtime_result *r = &o.r[c][i];
            cJSON *ch = cJSON_GetObjectItem(p, "chosen");
            if (r->answer.has) CHECK_EQ_STR(cJSON_GetStringValue(ch), r->answer.text);
            else CHECK(cJSON_IsNull(ch));
            CHECK_EQ_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(p, "samples")), r->n_samples);
            CHECK_EQ_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(p, "tokens")), r->n_tokens);
            CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(p, "stage")),
                         qeil_select_stage_name(r->stage));
            CHECK_NEAR(cJSON_GetNumberValue(cJSON_GetObjectItem(p, "energy_J")), r->energy_J,
                       1e-12, 0);
            CHECK_NEAR(cJSON_GetNumberValue(cJSON_GetObjectItem(p, "latency_s")), r->latency_s,
                       1e-12, 0);
        }
    }
    cJSON_Delete(j);
}

/* ---- single-stream generation ---- */

typedef struct {
    uint32_t n;
    int32_t last;
    uint32_t stop_after; /* 0: never */
} cb_state;

static qeil_status count_tokens(void *user, int32_t token, const char *piece, size_t len)
{
    cb_state *s = user;
    (void)piece;
    (void)len;
    s->n++;
    s->last = token;
    return s->stop_after && s->n == s->stop_after ? QEIL_ERR_RANGE : QEIL_OK;
}

TEST(generate_matches_the_cli)
{
    if (!model[0]) SKIP("no model (make_tiny_model failed)");
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_runtime_params rp = qeil_runtime_default_params();
    rp.model_path = model;
    rp.samples = 1;
    rp.batch = 0; /* generation only */
    qeil_runtime *rt = NULL;
    CHECK_EQ_INT(qeil_runtime_create(ctx, &rp, &rt), QEIL_OK);
    if (!rt) {
        qeil_ctx_free(ctx);
        return;
    }
    qeil_sampler_params sp = qeil_sampler_default_params();
    sp.seed = 9;
    sp.temp = 1.2f;
    CHECK_EQ_INT(qeil_runtime_set_sampler(rt, &sp), QEIL_OK);
    int32_t ids[64], gen[12];
    qeil_sampler_logprob lp[12];
    size_t n = 0;
    CHECK_EQ_INT(qeil_runtime_tokenize(rt, "hello", -1, 1, ids, 64, &n), QEIL_OK);
    cb_state cs = {0, -1, 0};
    qeil_runtime_gen_result g;
    CHECK_EQ_INT(qeil_runtime_generate(rt, ids, (uint32_t)n, 12, gen, lp, count_tokens, &cs, &g),
                 QEIL_OK);
    CHECK_EQ_INT(g.n_prompt, n);
    CHECK_EQ_INT(cs.n, g.n_gen);
    CHECK(g.prefill_s > 0);
    CHECK_EQ_INT(g.n_sampled, g.n_gen + (g.stop == QEIL_RUNTIME_STOP_EOS));
    /* the same as `qeil generate` with the same seed */
    char cmd[16000];
    snprintf(cmd, sizeof cmd,
             "%s generate -m %s -p hello -n 12 --seed 9 --temp 1.2 --output json 2>/dev/null",
             qeil_cmd, model);
    char *text = slurp_cmd(cmd);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    CHECK(j != NULL);
    if (j) {
        cJSON *toks = cJSON_GetObjectItem(j, "tokens");
        CHECK_EQ_INT(cJSON_GetArraySize(toks), g.n_gen);
        for (uint32_t k = 0; k < g.n_gen && k < (uint32_t)cJSON_GetArraySize(toks); k++)
            CHECK_EQ_INT(cJSON_GetNumberValue(cJSON_GetArrayItem(toks, (int)k)), gen[k]);
        CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "stop")),
                     qeil_runtime_stop_name(g.stop));
        cJSON_Delete(j);
    }
    /* a second call with the same seed gives the same tokens */
    int32_t gen2[12];
    qeil_runtime_gen_result g2;
    CHECK_EQ_INT(qeil_runtime_generate(rt, ids, (uint32_t)n, 12, gen2, NULL, NULL, NULL, &g2),
                 QEIL_OK);
    CHECK_EQ_INT(g2.n_gen, g.n_gen);
    CHECK(memcmp(gen, gen2, sizeof(int32_t) * g.n_gen) == 0);
    /* the callback's status ends generation and is returned */
    cb_state stop = {0, -1, 3};
    CHECK_EQ_INT(qeil_runtime_generate(rt, ids, (uint32_t)n, 12, NULL, NULL, count_tokens, &stop,
                                       &g2),
                 QEIL_ERR_RANGE);
    CHECK_EQ_INT(stop.n, 3);
    /* a runtime without sample slots takes no repeated-sampling request */
    qeil_runtime_request rq = {ids, (uint32_t)n, QEIL_ANSWER_NUMERIC, 0, NULL};
    CHECK_EQ_INT(qeil_runtime_begin(rt, &rq), QEIL_ERR_INVALID);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "batch");
    /* the context bounds generation */
    CHECK_EQ_INT(qeil_runtime_generate(rt, ids, 0, 12, NULL, NULL, NULL, NULL, &g2),
                 QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "n_prompt");
    qeil_runtime_free(rt);
    qeil_ctx_free(ctx);
}

TEST(generate_stops_at_the_context)
{
    if (!model[0]) SKIP("no model (make_tiny_model failed)");
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_runtime_params rp = qeil_runtime_default_params();
    rp.model_path = model;
    rp.n_ctx = 8;
    rp.samples = 1;
    rp.batch = 1;
    qeil_runtime *rt = NULL;
    CHECK_EQ_INT(qeil_runtime_create(ctx, &rp, &rt), QEIL_OK);
    qeil_sampler_params sp = qeil_sampler_default_params();
    sp.temp = 0; /* greedy */
    CHECK_EQ_INT(qeil_runtime_set_sampler(rt, &sp), QEIL_OK);
    int32_t ids[4] = {1, 2, 3, 4};
    qeil_runtime_gen_result g;
    CHECK_EQ_INT(qeil_runtime_generate(rt, ids, 4, 100, NULL, NULL, NULL, NULL, &g), QEIL_OK);
    /* greedy on these weights draws no EOS in 5 tokens: the context ends it */
    CHECK_EQ_INT(g.stop, QEIL_RUNTIME_STOP_CONTEXT);
    CHECK_EQ_INT(g.n_gen, 8 - 4 + 1); /* the last sampled token is never evaluated */
    CHECK_EQ_INT(g.n_decode, 8 - 4);
    CHECK_EQ_STR(qeil_runtime_stop_name(g.stop), "context");
    /* a repeated-sampling request on the same runtime: samples stop at the
     * context too (flagged as hitting the limit) */
    qeil_runtime_config cfg = qeil_runtime_default_config();
    cfg.plan_method = QEIL_METHOD_STANDARD;
    cfg.select = QEIL_SELECT_FIRST;
    qeil_workload_params wp = qeil_runtime_planning_workload(rt, 4);
    CHECK_EQ_INT(wp.gen_tokens, 8 - 4); /* 128 max_tokens do not fit: what fits */
    CHECK_EQ_INT(qeil_runtime_add_config(rt, &cfg, &wp, NULL), QEIL_OK);
    qeil_runtime_request rq = {ids, 4, QEIL_ANSWER_NUMERIC, 0, NULL};
    qeil_runtime_result r;
    CHECK_EQ_INT(qeil_runtime_begin(rt, &rq), QEIL_OK);
    CHECK_EQ_INT(qeil_runtime_select(rt, 0, &r), QEIL_OK);
    CHECK_EQ_INT(r.n_samples, 1);
    CHECK(r.n_tokens <= 8 - 4 + 1);
    /* generation reuses the prompt's sequence: it ends the request */
    CHECK_EQ_INT(qeil_runtime_generate(rt, ids, 4, 2, NULL, NULL, NULL, NULL, &g), QEIL_OK);
    CHECK_EQ_INT(qeil_runtime_select(rt, 0, &r), QEIL_ERR_INVALID);
    /* a prompt that fills the context leaves no room to sample */
    int32_t full[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    rq.prompt = full;
    rq.n_prompt = 8;
    CHECK_EQ_INT(qeil_runtime_begin(rt, &rq), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "n_prompt: 8");
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "1..7");
    /* ... and select after a failed begin is refused, not run on stale state */
    CHECK_EQ_INT(qeil_runtime_select(rt, 0, &r), QEIL_ERR_INVALID);
    qeil_runtime_free(rt);
    qeil_ctx_free(ctx);
}

/* generate_more appends to what sequence 0 holds: a chat's next turn gives
 * the tokens a fresh generate on the whole history gives (greedy), and an
 * extra stop token ends generation as EOS does. */
TEST(generate_more_continues_the_sequence)
{
    if (!model[0]) SKIP("no model (make_tiny_model failed)");
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_runtime_params rp = qeil_runtime_default_params();
    rp.model_path = model;
    rp.n_ctx = 64;
    rp.samples = 1;
    rp.batch = 1;
    qeil_runtime *rt = NULL;
    CHECK_EQ_INT(qeil_runtime_create(ctx, &rp, &rt), QEIL_OK);
    if (!rt) {
        qeil_ctx_free(ctx);
        return;
    }
    qeil_sampler_params sp = qeil_sampler_default_params();
    sp.temp = 0; /* greedy */
    sp.repeat_penalty = 1; /* the penalty's history differs between the two paths */
    CHECK_EQ_INT(qeil_runtime_set_sampler(rt, &sp), QEIL_OK);
    int32_t p1[3] = {5, 6, 7}, p2[2] = {8, 9}, g1[4], g2[4], g3[4];
    qeil_runtime_gen_result g;
    CHECK_EQ_INT(qeil_runtime_gen_len(rt), 0);
    CHECK_EQ_INT(qeil_runtime_generate_more(rt, p2, 2, 4, g2, NULL, NULL, NULL, &g), QEIL_ERR_INVALID);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "holds no generation");
    CHECK_EQ_INT(qeil_runtime_generate(rt, p1, 3, 4, g1, NULL, NULL, NULL, &g), QEIL_OK);
    uint32_t kept = g.n_decode; /* the last sampled token was not evaluated */
    CHECK_EQ_INT(qeil_runtime_gen_len(rt), 3 + kept);
    CHECK_EQ_INT(qeil_runtime_generate_more(rt, p2, 2, 4, g2, NULL, NULL, NULL, &g), QEIL_OK);
    uint32_t n2 = g.n_gen;
    CHECK_EQ_INT(qeil_runtime_gen_len(rt), 3 + kept + 2 + g.n_decode);
    /* the same history prefilled from empty */
    int32_t all[16];
    memcpy(all, p1, sizeof p1);
    memcpy(all + 3, g1, kept * sizeof *g1);
    memcpy(all + 3 + kept, p2, sizeof p2);
    CHECK_EQ_INT(qeil_runtime_generate(rt, all, 3 + kept + 2, 4, g3, NULL, NULL, NULL, &g), QEIL_OK);
    CHECK_EQ_INT(g.n_gen, n2);
    for (uint32_t i = 0; i < n2 && i < g.n_gen; i++)
        if (g2[i] != g3[i]) TEST_FAIL_("token %u: more %d, fresh %d", i, g2[i], g3[i]);
    /* a prompt past the context names both numbers */
    int32_t big[64] = {0};
    CHECK_EQ_INT(qeil_runtime_generate_more(rt, big, 64, 1, NULL, NULL, NULL, NULL, &g), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "context of 64 tokens holds");
    /* a stop token: greedy's first token ends it at once, as EOS would */
    int32_t first = g3[0];
    CHECK_EQ_INT(qeil_runtime_set_stop_tokens(rt, &first, 1), QEIL_OK);
    CHECK_EQ_INT(qeil_runtime_generate(rt, all, 3 + kept + 2, 4, g3, NULL, NULL, NULL, &g), QEIL_OK);
    CHECK_EQ_INT(g.n_gen, 0);
    CHECK_EQ_INT(g.stop, QEIL_RUNTIME_STOP_EOS);
    CHECK_EQ_INT(g.stop_token, first);
    CHECK_EQ_INT(qeil_runtime_set_stop_tokens(rt, NULL, 0), QEIL_OK);
    CHECK_EQ_INT(qeil_runtime_generate(rt, all, 3 + kept + 2, 4, g3, NULL, NULL, NULL, &g), QEIL_OK);
    CHECK(g.n_gen > 0);
    int32_t bad = (int32_t)qeil_runtime_n_vocab(rt);
    CHECK_EQ_INT(qeil_runtime_set_stop_tokens(rt, &bad, 1), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "stop tokens[0]");
    CHECK_EQ_INT(qeil_runtime_set_stop_tokens(rt, &first, QEIL_RUNTIME_MAX_STOP + 1), QEIL_ERR_RANGE);
    /* a request's prefill takes sequence 0: nothing left to continue */
    qeil_runtime_config cfg = qeil_runtime_default_config();
    cfg.plan_method = QEIL_METHOD_STANDARD;
    cfg.select = QEIL_SELECT_FIRST;
    qeil_workload_params wp = qeil_runtime_planning_workload(rt, 3);
    CHECK_EQ_INT(qeil_runtime_add_config(rt, &cfg, &wp, NULL), QEIL_OK);
    qeil_runtime_request rq = {p1, 3, QEIL_ANSWER_NUMERIC, 0, NULL};
    CHECK_EQ_INT(qeil_runtime_begin(rt, &rq), QEIL_OK);
    CHECK_EQ_INT(qeil_runtime_gen_len(rt), 0);
    CHECK_EQ_INT(qeil_runtime_generate_more(rt, p2, 2, 4, g2, NULL, NULL, NULL, &g), QEIL_ERR_INVALID);
    qeil_runtime_free(rt);
    qeil_ctx_free(ctx);
}

/* The step API (qeil serve's scheduler): two sequences prefilled with
 * different prompts, decoded together greedily in one batch per step, give
 * the tokens qeil_runtime_generate gives each prompt alone; bad arguments
 * name the field. */
TEST(step_api_batches_requests_like_generate_alone)
{
    if (!model[0]) SKIP("no model (make_tiny_model failed)");
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_runtime_params rp = qeil_runtime_default_params();
    rp.model_path = model;
    rp.samples = 2;
    rp.batch = 2;
    rp.sensors = 0;
    qeil_runtime *rt = NULL;
    CHECK_EQ_INT(qeil_runtime_create(ctx, &rp, &rt), QEIL_OK);
    qeil_sampler_params sp = qeil_sampler_default_params();
    sp.temp = 0;
    CHECK_EQ_INT(qeil_runtime_set_sampler(rt, &sp), QEIL_OK);
    CHECK_EQ_INT(qeil_runtime_n_seq(rt), 3);
    CHECK(qeil_runtime_tokenizer(rt) != NULL);
    enum { G = 6 };
    const int32_t pa[4] = {1, 2, 3, 4}, pb[2] = {7, 5};
    int32_t want[2][G];
    qeil_runtime_gen_result g;
    CHECK_EQ_INT(qeil_runtime_generate(rt, pa, 4, G, want[0], NULL, NULL, NULL, &g), QEIL_OK);
    CHECK_EQ_INT(g.n_gen, G);
    CHECK_EQ_INT(qeil_runtime_generate(rt, pb, 2, G, want[1], NULL, NULL, NULL, &g), QEIL_OK);
    CHECK_EQ_INT(g.n_gen, G);

    const uint32_t nv = qeil_runtime_n_vocab(rt);
    float *lg = calloc((size_t)nv * 2, sizeof *lg);
    CHECK(lg != NULL);
    if (!lg) goto out;
    CHECK_EQ_INT(qeil_runtime_seq_prefill(rt, 2, pa, 4, lg), QEIL_OK);
    CHECK_EQ_INT(qeil_runtime_seq_prefill(rt, 1, pb, 2, lg + nv), QEIL_OK);
    CHECK_EQ_INT(qeil_runtime_seq_len(rt, 2), 4);
    uint32_t seqs[2] = {2, 1};
    for (int t = 0; t < G; t++) {
        int32_t tok[2];
        for (int r = 0; r < 2; r++) { /* greedy: the arg max */
            uint32_t best = 0;
            for (uint32_t v = 1; v < nv; v++)
                if (lg[(size_t)r * nv + v] > lg[(size_t)r * nv + best]) best = v;
            tok[r] = (int32_t)best;
            CHECK_EQ_INT(tok[r], want[r][t]);
        }
        CHECK_EQ_INT(qeil_runtime_decode_step(rt, seqs, tok, 2, lg), QEIL_OK);
    }
    CHECK_EQ_INT(qeil_runtime_seq_len(rt, 1), 2 + G);
    CHECK_EQ_INT(qeil_runtime_seq_fork(rt, 1, 0), QEIL_OK);
    CHECK_EQ_INT(qeil_runtime_seq_len(rt, 0), 2 + G);
    /* bad arguments */
    CHECK_EQ_INT(qeil_runtime_seq_prefill(rt, 3, pa, 4, lg), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "seq: 3 (allowed 0..2)");
    CHECK_EQ_INT(qeil_runtime_seq_prefill(rt, 0, pa, 0, lg), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "n_prompt: 0");
    CHECK_EQ_INT(qeil_runtime_seq_fork(rt, 1, 1), QEIL_ERR_RANGE);
    uint32_t twice[2] = {1, 1};
    int32_t tk2[2] = {1, 1};
    CHECK_EQ_INT(qeil_runtime_decode_step(rt, twice, tk2, 2, lg), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "seq 1 given twice");
    CHECK_EQ_INT(qeil_runtime_decode_step(rt, seqs, tk2, 0, lg), QEIL_ERR_RANGE);
    CHECK_EQ_INT(qeil_runtime_seq_len(rt, 99), 0);
out:
    free(lg);
    qeil_runtime_free(rt);
    qeil_ctx_free(ctx);
}

/* ---- errors ---- */

/* Drift → re-plan: a platform that predicts every unit 1,000× slower than
 * it is (η_c = η_m = 1e-3 on the catalog laptop) makes the measured decode
 * steps far faster than predicted: the detector fires after min_steps
 * steps, and before the next request the runtime rescales the η of the
 * plan's decode units and re-plans every configuration (warm PGSAM), once
 * per firing. With replan = 0 nothing of this happens. */
TEST(drift_replans_between_requests)
{
    if (!model[0]) SKIP("no model (make_tiny_model failed)");
    for (int on = 0; on <= 1; on++) {
        qeil_ctx *ctx = qeil_ctx_create(NULL);
        qeil_platform pf;
        CHECK_EQ_INT(qeil_platform_load(ctx, "qeil-laptop", &pf), QEIL_OK);
        for (int d = 0; d < pf.n_units; d++) pf.units[d].eta_compute = pf.units[d].eta_mem = 1e-3;
        qeil_runtime_params rp = qeil_runtime_default_params();
        rp.model_path = model;
        rp.platform = &pf;
        rp.samples = 4;
        rp.batch = 2;
        rp.max_tokens = 6;
        rp.sensors = 0;
        rp.replan = on;
        rp.replan_iters = 300;
        qeil_runtime *rt = NULL;
        CHECK_EQ_INT(qeil_runtime_create(ctx, &rp, &rt), QEIL_OK);
        if (!rt) {
            qeil_ctx_free(ctx);
            return;
        }
        qeil_sampler_params sp = golden_sampler();
        CHECK_EQ_INT(qeil_runtime_set_sampler(rt, &sp), QEIL_OK);
        int32_t ids[64];
        size_t n = 0;
        CHECK_EQ_INT(qeil_runtime_tokenize(rt, "Q: 1 + 2?\nA:", -1, 0, ids, 64, &n), QEIL_OK);
        qeil_workload_params wp = qeil_runtime_planning_workload(rt, (uint32_t)n);
        qeil_runtime_config cfg = qeil_runtime_default_config();
        uint32_t ci = 0;
        CHECK_EQ_INT(qeil_runtime_add_config(rt, &cfg, &wp, &ci), QEIL_OK);
        qeil_runtime_config_info before;
        CHECK_EQ_INT(qeil_runtime_config_get(rt, 0, &before), QEIL_OK);
        double eta0 = 0;
        int d0 = before.plan.dc_unit[1];
        eta0 = qeil_runtime_platform(rt)->units[d0].eta_mem;
        qeil_runtime_request rq = {ids, (uint32_t)n, QEIL_ANSWER_NUMERIC, 0, NULL};
        qeil_runtime_result res;
        for (uint32_t r = 0; r < 3; r++) {
            rq.stream = r;
            CHECK_EQ_INT(qeil_runtime_begin(rt, &rq), QEIL_OK);
            CHECK_EQ_INT(qeil_runtime_select(rt, ci, &res), QEIL_OK);
        }
        if (!on) {
            CHECK_EQ_INT((int)qeil_runtime_replan_count(rt), 0);
            CHECK_EQ_INT(qeil_runtime_replan_get(rt, 0, &(qeil_runtime_replan){0}), QEIL_ERR_RANGE);
        } else {
            CHECK(qeil_runtime_replan_count(rt) >= 1);
            qeil_runtime_replan ev;
            CHECK_EQ_INT(qeil_runtime_replan_get(rt, 0, &ev), QEIL_OK);
            CHECK_EQ_STR(ev.cause, "drift");
            CHECK(ev.unit >= 0 && ev.unit < pf.n_units);
            CHECK_EQ_STR(ev.unit_name, pf.units[ev.unit].name);
            CHECK(ev.request >= 1); /* between requests, never inside one */
            CHECK(ev.ratio < -0.2);  /* measured far below the prediction */
            CHECK(ev.scale > 1.0);
            CHECK(ev.replan_s > 0);
            CHECK(ev.evaluations >= 1 && ev.evaluations <= 300);
            CHECK(isfinite(ev.energy_after_J) && ev.energy_after_J > 0);
            /* the coefficients carry the drift: that unit's η went up */
            CHECK(qeil_runtime_platform(rt)->units[d0].eta_mem > eta0);
        }
        qeil_runtime_free(rt);
        qeil_ctx_free(ctx);
    }
}

/* Per-unit drift with injected timings: the step-times hook replaces
 * each unit's measured decode step by the plan's prediction × ±10 %
 * noise (a deterministic stream), and × 1.5 on one unit once `slow` is
 * set. Noise alone fires nothing over two requests; the slow-down fires
 * for that unit only: one event before the next request naming it, its η
 * divided by ~1.5, every other unit's η untouched. */
typedef struct {
    uint64_t rng;
    int slow_unit;       /* -1: none */
    int steps, decoding[QEIL_MAX_UNITS];
    int attributed;      /* steps whose engine times sat exactly on the plan's units */
} inject_state;

static void inject_times(void *user, const double *pred_s, double *meas_s, int n_units)
{
    inject_state *st = user;
    st->steps++;
    /* what the runtime measured: the engine's time on each unit the plan
     * decodes on, nothing elsewhere */
    int ok = 1;
    for (int d = 0; d < n_units; d++) ok &= pred_s[d] > 0 ? meas_s[d] > 0 : meas_s[d] == 0;
    st->attributed += ok;
    for (int d = 0; d < n_units; d++) {
        if (pred_s[d] <= 0) continue;
        st->decoding[d] = 1;
        st->rng = st->rng * 6364136223846793005ull + 1442695040888963407ull;
        double u = (double)(st->rng >> 11) / 9007199254740992.0; /* [0, 1) */
        meas_s[d] = pred_s[d] * (0.9 + 0.2 * u) * (d == st->slow_unit ? 1.5 : 1.0);
    }
}

/* A runtime on pf with one configuration planned for the golden prompt. */
static qeil_runtime *drift_runtime(qeil_ctx *ctx, const qeil_platform *pf, inject_state *inj,
                                   qeil_runtime_request *rq, int32_t *ids, uint32_t *ci)
{
    qeil_runtime_params rp = qeil_runtime_default_params();
    rp.model_path = model;
    rp.platform = pf;
    rp.samples = 4;
    rp.batch = 2;
    rp.max_tokens = 16;
    rp.sensors = 0;
    rp.replan = 1;
    rp.replan_iters = 300;
    rp.step_times_hook = inject_times;
    rp.step_times_user = inj;
    qeil_runtime *rt = NULL;
    if (qeil_runtime_create(ctx, &rp, &rt) != QEIL_OK) return NULL;
    qeil_sampler_params sp = golden_sampler();
    size_t n = 0;
    qeil_workload_params wp;
    qeil_runtime_config cfg = qeil_runtime_default_config();
    if (qeil_runtime_set_sampler(rt, &sp) != QEIL_OK ||
        qeil_runtime_tokenize(rt, "Q: 1 + 2?\nA:", -1, 0, ids, 64, &n) != QEIL_OK ||
        (wp = qeil_runtime_planning_workload(rt, (uint32_t)n),
         qeil_runtime_add_config(rt, &cfg, &wp, ci)) != QEIL_OK) {
        qeil_runtime_free(rt);
        return NULL;
    }
    *rq = (qeil_runtime_request){ids, (uint32_t)n, QEIL_ANSWER_NUMERIC, 0, NULL};
    return rt;
}

TEST(drift_per_unit_fires_for_the_slowed_unit_only)
{
    if (!model[0]) SKIP("no model (make_tiny_model failed)");
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_platform pf;
    CHECK_EQ_INT(qeil_platform_load(ctx, "qeil-laptop", &pf), QEIL_OK);
    inject_state inj = {42, -1, 0, {0}, 0};
    int32_t ids[64];
    uint32_t ci = 0;
    qeil_runtime_request rq;
    qeil_runtime_result res;
    /* the laptop's two memory pools, each shrunk to 60 % of what the
     * model needs where the unconstrained plan puts it: the plan must
     * split the model over a unit of each pool, so two units decode */
    qeil_runtime *rt = drift_runtime(ctx, &pf, &inj, &rq, ids, &ci);
    CHECK(rt != NULL);
    if (!rt) goto out;
    qeil_runtime_config_info info;
    CHECK_EQ_INT(qeil_runtime_config_get(rt, 0, &info), QEIL_OK);
    int q0 = pf.units[info.plan.dc_unit[1]].pool;
    double need_B = info.plan_ev.pool_rho[q0] * pf.pools[q0].capacity_B;
    qeil_runtime_free(rt);
    for (int q = 0; q < pf.n_pools; q++) pf.pools[q].capacity_B = 0.6 * need_B / pf.rho_max;
    rt = drift_runtime(ctx, &pf, &inj, &rq, ids, &ci);
    CHECK(rt != NULL);
    if (!rt) goto out;
    /* two requests of noise only */
    for (uint32_t r = 0; r < 2; r++) {
        rq.stream = r;
        CHECK_EQ_INT(qeil_runtime_begin(rt, &rq), QEIL_OK);
        CHECK_EQ_INT(qeil_runtime_select(rt, ci, &res), QEIL_OK);
    }
    CHECK(inj.steps >= 10);
    CHECK_EQ_INT(inj.attributed, inj.steps);
    CHECK_EQ_INT((int)qeil_runtime_replan_count(rt), 0);
    /* the last unit the plan decodes on slows down by 50 % */
    int target = -1, n_decoding = 0;
    for (int d = 0; d < pf.n_units; d++)
        if (inj.decoding[d]) {
            target = d;
            n_decoding++;
        }
    CHECK(target >= 0);
    CHECK(n_decoding >= 2); /* the others must not fire */
    if (target < 0) goto out;
    qeil_platform before = *qeil_runtime_platform(rt);
    inj.slow_unit = target;
    int steps0 = inj.steps;
    rq.stream = 2;
    CHECK_EQ_INT(qeil_runtime_begin(rt, &rq), QEIL_OK);
    CHECK_EQ_INT(qeil_runtime_select(rt, ci, &res), QEIL_OK);
    CHECK(inj.steps - steps0 >= 8); /* enough slow steps to fire (≥ 5 past the threshold) */
    CHECK_EQ_INT((int)qeil_runtime_replan_count(rt), 0); /* never inside a request */
    inj.slow_unit = -1;
    rq.stream = 3;
    CHECK_EQ_INT(qeil_runtime_begin(rt, &rq), QEIL_OK);
    CHECK_EQ_INT(qeil_runtime_select(rt, ci, &res), QEIL_OK);
    CHECK_EQ_INT((int)qeil_runtime_replan_count(rt), 1);
    qeil_runtime_replan ev;
    CHECK_EQ_INT(qeil_runtime_replan_get(rt, 0, &ev), QEIL_OK);
    CHECK_EQ_STR(ev.cause, "drift");
    CHECK_EQ_INT(ev.unit, target);
    CHECK_EQ_STR(ev.unit_name, pf.units[target].name);
    CHECK_EQ_INT((int)ev.request, 3);
    CHECK(ev.ratio > 0.2 && ev.ratio < 0.8); /* ~+50 % through the EWMA */
    CHECK_NEAR(ev.scale, 1.0 / (1.0 + ev.ratio), 1e-12, 0);
    const qeil_platform *after = qeil_runtime_platform(rt);
    for (int d = 0; d < pf.n_units; d++) {
        if (d == target) {
            CHECK_NEAR(after->units[d].eta_mem, before.units[d].eta_mem * ev.scale, 1e-12, 0);
        } else {
            CHECK(after->units[d].eta_mem == before.units[d].eta_mem);
            CHECK(after->units[d].eta_compute == before.units[d].eta_compute);
        }
    }
out:
    qeil_runtime_free(rt);
    qeil_ctx_free(ctx);
}

TEST(bad_params_name_field_value_and_range)
{
    if (!model[0]) SKIP("no model (make_tiny_model failed)");
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    static const struct {
        const char *field;
        int64_t value;
        qeil_status st;
        const char *say1, *say2;
    } t[] = {
        {"samples", 0, QEIL_ERR_RANGE, "samples: 0", "1..256"},
        {"samples", 257, QEIL_ERR_RANGE, "samples: 257", "1..256"},
        {"batch", 9, QEIL_ERR_RANGE, "batch: 9", "0..8"},
        {"max_tokens", 0, QEIL_ERR_RANGE, "max_tokens: 0", "1..65536"},
        {"max_tokens", 65537, QEIL_ERR_RANGE, "max_tokens: 65537", "1..65536"},
        {"replan", 2, QEIL_ERR_RANGE, "replan: 2", "0, 1"},
        {"replan_iters", 0, QEIL_ERR_RANGE, "replan_iters: 0", "1..10000000"},
        {"n_threads", -1, QEIL_ERR_RANGE, "n_threads: -1", "1..256"},
        {"n_threads", 257, QEIL_ERR_RANGE, "n_threads: 257", "1..256"},
        {"select.eac_share", 0, QEIL_ERR_RANGE, "select", "eac_share"},
    };
    for (size_t k = 0; k < sizeof t / sizeof *t; k++) {
        qeil_runtime_params rp = qeil_runtime_default_params();
        rp.model_path = model;
        rp.samples = 8;
        if (strcmp(t[k].field, "samples") == 0) rp.samples = (uint32_t)t[k].value, rp.batch = 1;
        else if (strcmp(t[k].field, "batch") == 0) rp.batch = (uint32_t)t[k].value;
        else if (strcmp(t[k].field, "max_tokens") == 0) rp.max_tokens = (uint32_t)t[k].value;
        else if (strcmp(t[k].field, "replan") == 0) rp.replan = (int)t[k].value;
        else if (strcmp(t[k].field, "replan_iters") == 0) rp.replan_iters = (uint32_t)t[k].value;
        else if (strcmp(t[k].field, "n_threads") == 0) rp.n_threads = (int)t[k].value;
        else rp.select.eac_share = (double)t[k].value;
        qeil_runtime *rt = (qeil_runtime *)&rp; /* must come back NULL */
        qeil_status st = qeil_runtime_create(ctx, &rp, &rt);
        if (st != t[k].st || rt != NULL || !strstr(qeil_ctx_errmsg(ctx), t[k].say1) ||
            !strstr(qeil_ctx_errmsg(ctx), t[k].say2))
            TEST_FAIL_("%s = %lld: status %d, rt %p, \"%s\"; want %d naming \"%s\" and \"%s\"",
                       t[k].field, (long long)t[k].value, (int)st, (void *)rt,
                       qeil_ctx_errmsg(ctx), (int)t[k].st, t[k].say1, t[k].say2);
        qeil_runtime_free(rt);
    }
    /* no model, a missing one */
    qeil_runtime_params rp = qeil_runtime_default_params();
    qeil_runtime *rt = NULL;
    CHECK_EQ_INT(qeil_runtime_create(ctx, &rp, &rt), QEIL_ERR_INVALID);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "model_path");
    char missing[4300];
    snprintf(missing, sizeof missing, "%s/none.gguf", tmpdir);
    rp.model_path = missing;
    CHECK(qeil_runtime_create(ctx, &rp, &rt) != QEIL_OK);
    CHECK(rt == NULL);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "none.gguf");
    CHECK_EQ_INT(qeil_runtime_create(ctx, &rp, NULL), QEIL_ERR_INVALID);
    CHECK_EQ_INT(qeil_runtime_create(ctx, NULL, &rt), QEIL_ERR_INVALID);
    CHECK_EQ_INT(qeil_runtime_create(NULL, &rp, &rt), QEIL_ERR_INVALID);

    /* sampler params checked against this model's vocabulary (512) */
    rp.model_path = model;
    CHECK_EQ_INT(qeil_runtime_create(ctx, &rp, &rt), QEIL_OK);
    qeil_sampler_params sp = qeil_sampler_default_params();
    sp.top_k = 513;
    CHECK_EQ_INT(qeil_runtime_set_sampler(rt, &sp), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "top_k");
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "513");
    CHECK_EQ_INT(qeil_runtime_set_sampler(rt, NULL), QEIL_ERR_INVALID);

    /* out of order: a request before the sampler, select before begin */
    int32_t ids[3] = {1, 2, 3};
    qeil_runtime_request rq = {ids, 3, QEIL_ANSWER_NUMERIC, 0, NULL};
    CHECK_EQ_INT(qeil_runtime_begin(rt, &rq), QEIL_ERR_INVALID);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "set_sampler");
    qeil_runtime_gen_result g;
    CHECK_EQ_INT(qeil_runtime_generate(rt, ids, 3, 4, NULL, NULL, NULL, NULL, &g), QEIL_ERR_INVALID);
    sp.top_k = 512;
    CHECK_EQ_INT(qeil_runtime_set_sampler(rt, &sp), QEIL_OK);
    qeil_runtime_result r;
    CHECK_EQ_INT(qeil_runtime_select(rt, 0, &r), QEIL_ERR_INVALID);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "no request");
    rq.mode = (qeil_answer_mode)7;
    CHECK_EQ_INT(qeil_runtime_begin(rt, &rq), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "mode: 7");
    rq.mode = QEIL_ANSWER_NUMERIC;
    CHECK_EQ_INT(qeil_runtime_begin(rt, &rq), QEIL_OK);
    CHECK_EQ_INT(qeil_runtime_select(rt, 0, &r), QEIL_ERR_RANGE); /* no configuration yet */
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "config: 0");

    /* configurations: a bad plan method or latency, a bound no plan meets,
     * and at most QEIL_RUNTIME_MAX_CONFIGS */
    qeil_workload_params wp = qeil_runtime_planning_workload(rt, 3);
    qeil_runtime_config cfg = qeil_runtime_default_config();
    cfg.plan_method = QEIL_METHOD_RANDOM;
    CHECK_EQ_INT(qeil_runtime_add_config(rt, &cfg, &wp, NULL), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "plan_method");
    cfg = qeil_runtime_default_config();
    cfg.max_latency_s = -1;
    CHECK_EQ_INT(qeil_runtime_add_config(rt, &cfg, &wp, NULL), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "max_latency_s: -1");
    cfg.max_latency_s = 1e-12;
    CHECK_EQ_INT(qeil_runtime_add_config(rt, &cfg, &wp, NULL), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "no plan on the front is within");
    cfg.knee_fallback = 1;
    uint32_t idx = 99;
    CHECK_EQ_INT(qeil_runtime_add_config(rt, &cfg, &wp, &idx), QEIL_OK);
    CHECK_EQ_INT(idx, 0);
    qeil_runtime_config_info info;
    CHECK_EQ_INT(qeil_runtime_config_get(rt, 0, &info), QEIL_OK);
    CHECK_EQ_INT(info.plan_bounded, 0); /* the knee */
    CHECK_EQ_INT(qeil_runtime_config_get(rt, 1, &info), QEIL_ERR_RANGE);
    cfg = qeil_runtime_default_config();
    cfg.plan_method = QEIL_METHOD_STANDARD;
    for (uint32_t k = 1; k < QEIL_RUNTIME_MAX_CONFIGS; k++)
        CHECK_EQ_INT(qeil_runtime_add_config(rt, &cfg, &wp, NULL), QEIL_OK);
    CHECK_EQ_INT(qeil_runtime_add_config(rt, &cfg, &wp, NULL), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "configurations");
    CHECK_EQ_INT(qeil_runtime_select(rt, QEIL_RUNTIME_MAX_CONFIGS, &r), QEIL_ERR_RANGE);
    CHECK_EQ_INT(qeil_runtime_select(rt, 0, &r), QEIL_OK);
    CHECK_EQ_INT(r.correct, 0); /* unscored without a gold answer */
    /* new sampler params end the request: its cached samples are not mixed
     * with samples drawn under the new ones */
    CHECK_EQ_INT(qeil_runtime_set_sampler(rt, &sp), QEIL_OK);
    CHECK_EQ_INT(qeil_runtime_select(rt, 0, &r), QEIL_ERR_INVALID);
    CHECK_EQ_INT(qeil_runtime_begin(rt, &rq), QEIL_OK);
    CHECK_EQ_INT(qeil_runtime_select(rt, 0, &r), QEIL_OK);
    qeil_runtime_free(rt);
    qeil_ctx_free(ctx);
}

TEST(null_handles)
{
    qeil_runtime_free(NULL);
    qeil_tasks_free(NULL);
    CHECK(qeil_runtime_model(NULL) == NULL);
    CHECK(qeil_runtime_platform(NULL) == NULL);
    CHECK(qeil_runtime_get_params(NULL) == NULL);
    CHECK_EQ_INT(qeil_runtime_n_ctx(NULL), 0);
    CHECK_EQ_INT(qeil_runtime_n_vocab(NULL), 0);
    CHECK_EQ_INT(qeil_runtime_n_units(NULL), 0);
    CHECK_EQ_INT(qeil_tasks_count(NULL), 0);
    CHECK(qeil_tasks_get(NULL, 0) == NULL);
    qeil_sampler_params sp = qeil_sampler_default_params();
    CHECK_EQ_INT(qeil_runtime_set_sampler(NULL, &sp), QEIL_ERR_INVALID);
    CHECK_EQ_INT(qeil_runtime_begin(NULL, NULL), QEIL_ERR_INVALID);
    qeil_runtime_result r;
    CHECK_EQ_INT(qeil_runtime_select(NULL, 0, &r), QEIL_ERR_INVALID);
    qeil_runtime_gen_result g;
    int32_t t = 1;
    CHECK_EQ_INT(qeil_runtime_generate(NULL, &t, 1, 1, NULL, NULL, NULL, NULL, &g),
                 QEIL_ERR_INVALID);
    CHECK_EQ_INT(qeil_runtime_tokenize(NULL, "x", 0, 0, &t, 1, NULL), QEIL_ERR_INVALID);
    qeil_runtime_config cfg = qeil_runtime_default_config();
    qeil_workload_params wp = qeil_runtime_planning_workload(NULL, 1);
    CHECK_EQ_INT(qeil_runtime_add_config(NULL, &cfg, &wp, NULL), QEIL_ERR_INVALID);
    qeil_runtime_config_info info;
    CHECK_EQ_INT(qeil_runtime_config_get(NULL, 0, &info), QEIL_ERR_INVALID);
    double u[2] = {7, 7};
    qeil_runtime_unit_times(NULL, u, 2); /* a no-op */
    CHECK(u[0] == 7 && u[1] == 7);
    CHECK_EQ_STR(qeil_runtime_stop_name((qeil_runtime_stop)9), "unknown");
    /* the defaults are what the header says */
    qeil_runtime_params rp = qeil_runtime_default_params();
    CHECK(rp.model_path == NULL && rp.platform == NULL);
    CHECK_EQ_INT(rp.samples, 8);
    CHECK_EQ_INT(rp.batch, 4);
    CHECK_EQ_INT(rp.max_tokens, 128);
    CHECK_EQ_INT(rp.n_threads, 0);
    CHECK_EQ_INT(cfg.plan_method, QEIL_METHOD_PGSAM);
    CHECK_EQ_INT(cfg.select, QEIL_SELECT_CASCADE);
}

/* ---- out of memory: every allocation of the pipeline fails once ---- */

typedef struct {
    long n, fail_at; /* allocation calls so far; the one that fails (0: none) */
} oom_state;

static void *oom_realloc(void *user, void *ptr, size_t size)
{
    oom_state *o = user;
    if (size == 0) {
        free(ptr);
        return NULL;
    }
    if (++o->n == o->fail_at) return NULL;
    return realloc(ptr, size);
}

/* The whole pipeline on one problem with a ctx whose fail_at-th allocation
 * fails; returns the first failing status (QEIL_OK when all succeed). */
static qeil_status oom_pipeline(oom_state *o, char *msg, size_t cap)
{
    qeil_ctx_params cp = qeil_ctx_default_params();
    cp.realloc = oom_realloc;
    cp.alloc_user = o;
    qeil_ctx *ctx = qeil_ctx_create(&cp);
    if (!ctx) {
        snprintf(msg, cap, "qeil_ctx_create: out of memory");
        return QEIL_ERR_NOMEM;
    }
    qeil_tasks *ts = NULL;
    qeil_runtime *rt = NULL;
    qeil_runtime_params rp = qeil_runtime_default_params();
    rp.model_path = model;
    rp.samples = 3;
    rp.batch = 2;
    rp.max_tokens = 3;
    rp.n_threads = 1;
    qeil_sampler_params sp = golden_sampler();
    qeil_runtime_config cfg = qeil_runtime_default_config();
    cfg.plan_method = QEIL_METHOD_STANDARD;
    cfg.select = QEIL_SELECT_MAJORITY;
    int32_t ids[256];
    size_t n = 0;
    qeil_runtime_result r;
    qeil_runtime_gen_result g;
    qeil_status st = qeil_tasks_read(ctx, tasks_path, 1, &ts);
    if (st == QEIL_OK) st = qeil_runtime_create(ctx, &rp, &rt);
    if (st == QEIL_OK) st = qeil_runtime_set_sampler(rt, &sp);
    if (st == QEIL_OK)
        st = qeil_runtime_tokenize(rt, qeil_tasks_get(ts, 0)->question, -1, 0, ids, 256, &n);
    qeil_workload_params wp = qeil_runtime_planning_workload(rt, (uint32_t)n);
    if (st == QEIL_OK) st = qeil_runtime_add_config(rt, &cfg, &wp, NULL);
    qeil_runtime_request rq = {ids, (uint32_t)n, QEIL_ANSWER_NUMERIC, 0, NULL};
    if (st == QEIL_OK) st = qeil_runtime_begin(rt, &rq);
    if (st == QEIL_OK) st = qeil_runtime_select(rt, 0, &r);
    if (st == QEIL_OK) st = qeil_runtime_generate(rt, ids, (uint32_t)n, 3, NULL, NULL, NULL, NULL, &g);
    snprintf(msg, cap, "%s", qeil_ctx_errmsg(ctx));
    qeil_runtime_free(rt);
    qeil_tasks_free(ts);
    qeil_ctx_free(ctx);
    return st;
}

TEST(out_of_memory_fails_cleanly)
{
    if (!model[0]) SKIP("no model (make_tiny_model failed)");
    char msg[512];
    oom_state o = {0, 0};
    CHECK_EQ_INT(oom_pipeline(&o, msg, sizeof msg), QEIL_OK);
    const long total = o.n;
    CHECK(total > 10);
    /* each allocation fails in turn: a status and a message, never a crash
     * or a leak (the ASan build checks those) */
    long failed = 0;
    for (long k = 2; k <= total; k++) { /* 1 is the ctx itself */
        oom_state f = {0, k};
        qeil_status st = oom_pipeline(&f, msg, sizeof msg);
        if (st == QEIL_OK) continue; /* a failure some path tolerates */
        failed++;
        if (!msg[0]) TEST_FAIL_("allocation %ld of %ld failed: status %d with no message", k,
                                total, (int)st);
    }
    CHECK(failed > 0);
}

static int write_file(const char *name, const char *text, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    fputs(text, f);
    return fclose(f);
}

TEST(tasks_reader)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_tasks *ts = NULL;
    CHECK_EQ_INT(qeil_tasks_read(ctx, tasks_path, 0, &ts), QEIL_OK);
    CHECK_EQ_INT(qeil_tasks_count(ts), 4); /* the blank line is skipped */
    const qeil_task *t = qeil_tasks_get(ts, 1);
    CHECK(t != NULL);
    if (t) {
        CHECK_EQ_STR(t->id, "2"); /* a number id */
        CHECK_EQ_STR(t->gold.text, "10");
        CHECK_EQ_INT(t->line, 2);
        CHECK_EQ_INT(t->mode, QEIL_ANSWER_NUMERIC);
    }
    t = qeil_tasks_get(ts, 2);
    if (t) {
        CHECK_EQ_INT(t->mode, QEIL_ANSWER_CHOICE);
        CHECK_EQ_INT(t->line, 4);
    }
    CHECK(qeil_tasks_get(ts, 4) == NULL);
    qeil_tasks_free(ts);
    CHECK_EQ_INT(qeil_tasks_read(ctx, tasks_path, 2, &ts), QEIL_OK);
    CHECK_EQ_INT(qeil_tasks_count(ts), 2);
    qeil_tasks_free(ts);

    char path[4400];
    CHECK_EQ_INT(write_file("bad.jsonl", "{\"id\":1,\"question\":\"q\",\"answer\":\"1\"}\n"
                                         "{\"id\":2,\"answer\":\"5\"}\n",
                            path, sizeof path),
                 0);
    ts = (qeil_tasks *)ctx; /* must come back NULL */
    CHECK_EQ_INT(qeil_tasks_read(ctx, path, 0, &ts), QEIL_ERR_FORMAT);
    CHECK(ts == NULL);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "bad.jsonl:2: field 'question': missing");
    CHECK_EQ_INT(write_file("gold.jsonl", "{\"id\":1,\"question\":\"q\",\"answer\":\"many\"}\n",
                            path, sizeof path),
                 0);
    CHECK_EQ_INT(qeil_tasks_read(ctx, path, 0, &ts), QEIL_ERR_FORMAT);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "gold.jsonl:1: field 'answer': ");
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "many");
    CHECK_EQ_INT(write_file("empty.jsonl", "\n\n", path, sizeof path), 0);
    CHECK_EQ_INT(qeil_tasks_read(ctx, path, 0, &ts), QEIL_ERR_FORMAT);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "no tasks");
    snprintf(path, sizeof path, "%s/missing.jsonl", tmpdir);
    CHECK_EQ_INT(qeil_tasks_read(ctx, path, 0, &ts), QEIL_ERR_IO);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "missing.jsonl: cannot open");
    CHECK_EQ_INT(qeil_tasks_read(ctx, tasks_path, QEIL_TASKS_MAX + 1, &ts), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "limit: 100001");
    CHECK_EQ_INT(qeil_tasks_read(ctx, NULL, 0, &ts), QEIL_ERR_INVALID);
    CHECK_EQ_INT(qeil_tasks_read(ctx, tasks_path, 0, NULL), QEIL_ERR_INVALID);
    qeil_ctx_free(ctx);
}

/* ---- measured energy: a fixture tree whose RAPL counter the test advances ---- */

typedef struct {
    char path[4400]; /* intel-rapl:0/energy_uj of the copied tree */
    uint64_t uj;     /* the counter's value */
    uint64_t step;   /* µJ added before each reading */
    int calls;
    int vanish_after; /* > 0: remove the file on this call */
} rapl_hook;

/* Runs right before each meter reading: the counter advances by exactly
 * `step`, so every interval measures step µJ whatever the timing. */
static void advance_rapl(void *user)
{
    rapl_hook *h = user;
    h->calls++;
    if (h->vanish_after && h->calls >= h->vanish_after) {
        unlink(h->path);
        return;
    }
    h->uj += h->step;
    FILE *f = fopen(h->path, "w");
    if (!f) return;
    fprintf(f, "%llu\n", (unsigned long long)h->uj);
    fclose(f);
}

static qeil_runtime *measured_runtime(qeil_ctx *ctx, const char *root, rapl_hook *h,
                                      uint32_t batch)
{
    qeil_runtime_params rp = qeil_runtime_default_params();
    rp.model_path = model;
    rp.samples = 4;
    rp.batch = batch;
    rp.max_tokens = 6;
    rp.meter.root = root;
    rp.meter.hook = h ? advance_rapl : NULL;
    rp.meter.hook_user = h;
    qeil_runtime *rt = NULL;
    if (qeil_runtime_create(ctx, &rp, &rt) != QEIL_OK) {
        printf("  runtime_create: %s\n", qeil_ctx_errmsg(ctx));
        return NULL;
    }
    qeil_sampler_params sp = qeil_sampler_default_params();
    sp.seed = 3;
    if (qeil_runtime_set_sampler(rt, &sp) != QEIL_OK) {
        qeil_runtime_free(rt);
        return NULL;
    }
    return rt;
}

TEST(measured_energy_through_the_runtime)
{
    if (!model[0]) SKIP("no model (make_tiny_model failed)");
    char root[4300], cmd[8800];
    snprintf(root, sizeof root, "%s/intel-laptop", tmpdir);
    snprintf(cmd, sizeof cmd, "cp -r tests/data/sense/intel-laptop %s", root);
    CHECK_EQ_INT(system(cmd), 0);
    static rapl_hook h;
    memset(&h, 0, sizeof h);
    snprintf(h.path, sizeof h.path, "%s/sys/class/powercap/intel-rapl:0/energy_uj", root);
    h.uj = 123456789; /* the fixture's value */
    h.step = 1000000; /* 1 J per reading */
    qeil_ctx *ctx = qeil_ctx_create(NULL);

    /* single-stream: prefill and the decode loop each measure one step */
    qeil_runtime *rt = measured_runtime(ctx, root, &h, 0);
    CHECK(rt != NULL);
    if (!rt) goto done;
    CHECK_EQ_STR(qeil_runtime_meter_provenance(rt), "rapl-package");
    CHECK(strstr(qeil_runtime_meter_covers(rt), "whole CPU package") != NULL);
    int32_t ids[64], gen[8];
    size_t n = 0;
    CHECK_EQ_INT(qeil_runtime_tokenize(rt, "hello", -1, 1, ids, 64, &n), QEIL_OK);
    qeil_runtime_gen_result g;
    CHECK_EQ_INT(qeil_runtime_generate(rt, ids, (uint32_t)n, 8, gen, NULL, NULL, NULL, &g),
                 QEIL_OK);
    CHECK_EQ_INT(h.calls, 4);
    CHECK_EQ_INT(g.prefill_meas.valid, 1);
    CHECK_EQ_INT(g.decode_meas.valid, 1);
    CHECK_NEAR(g.prefill_meas.energy_J, 1.0, 1e-12, 0);
    CHECK_NEAR(g.decode_meas.energy_J, 1.0, 1e-12, 0);
    CHECK(g.prefill_meas.t_s > 0 && g.decode_meas.t_s > 0);
    CHECK_NEAR(g.decode_meas.power_W, 1.0 / g.decode_meas.t_s, 1e-12, 0);
    qeil_runtime_free(rt);

    /* requests: the prefill, then one decode batch of all 4 samples (each
     * gets a quarter); majority draws the whole budget */
    h.calls = 0;
    rt = measured_runtime(ctx, root, &h, 4);
    CHECK(rt != NULL);
    if (!rt) goto done;
    qeil_runtime_config cfg = qeil_runtime_default_config();
    cfg.plan_method = QEIL_METHOD_STANDARD;
    cfg.select = QEIL_SELECT_MAJORITY;
    qeil_workload_params wp = qeil_runtime_planning_workload(rt, (uint32_t)n);
    uint32_t ci = 0;
    CHECK_EQ_INT(qeil_runtime_add_config(rt, &cfg, &wp, &ci), QEIL_OK);
    qeil_runtime_request rq = {ids, (uint32_t)n, QEIL_ANSWER_NUMERIC, 0, NULL};
    qeil_runtime_result r;
    CHECK_EQ_INT(qeil_runtime_begin(rt, &rq), QEIL_OK);
    CHECK_EQ_INT(qeil_runtime_select(rt, ci, &r), QEIL_OK);
    CHECK_EQ_INT(r.n_samples, 4);
    CHECK_EQ_INT(h.calls, 4);
    CHECK_EQ_INT(r.prefill_meas.valid && r.decode_meas.valid, 1);
    CHECK_NEAR(r.prefill_meas.energy_J, 1.0, 1e-12, 0);
    CHECK_NEAR(r.decode_meas.energy_J, 1.0, 1e-12, 0);
    /* the modeled figure stays modeled and apart */
    CHECK_EQ_INT(r.energy_src, QEIL_PROV_MODELED);
    CHECK(r.energy_J != r.prefill_meas.energy_J + r.decode_meas.energy_J);

    /* the sensor vanishes mid-run: a warning's worth (invalid measure), no failure */
    h.vanish_after = h.calls + 3; /* prefill start, stop; gone at the decode start */
    CHECK_EQ_INT(qeil_runtime_begin(rt, &rq), QEIL_OK);
    CHECK_EQ_INT(qeil_runtime_select(rt, ci, &r), QEIL_OK);
    CHECK_EQ_INT(r.prefill_meas.valid, 1);
    CHECK_EQ_INT(r.decode_meas.valid, 0);
    CHECK(isnan(r.decode_meas.energy_J));
    CHECK(r.decode_s > 0);
    qeil_runtime_free(rt);

    /* a tree without energy counters (Raspberry Pi 5): n/a, never a number */
    rt = measured_runtime(ctx, "tests/data/sense/rpi5", NULL, 0);
    CHECK(rt != NULL);
    if (!rt) goto done;
    CHECK(qeil_runtime_meter_provenance(rt) == NULL);
    CHECK_EQ_STR(qeil_runtime_meter_covers(rt), "no sensor");
    CHECK_EQ_INT(qeil_runtime_generate(rt, ids, (uint32_t)n, 4, gen, NULL, NULL, NULL, &g),
                 QEIL_OK);
    CHECK_EQ_INT(g.prefill_meas.valid + g.decode_meas.valid, 0);
    CHECK(isnan(g.prefill_meas.energy_J) && isnan(g.decode_meas.energy_J));
    qeil_runtime_free(rt);

    /* a sensor root that is not a directory: named at create */
    qeil_runtime_params rp = qeil_runtime_default_params();
    rp.model_path = model;
    rp.meter.root = "/nonexistent-qeil-root";
    rt = NULL;
    CHECK_EQ_INT(qeil_runtime_create(ctx, &rp, &rt), QEIL_ERR_NOTFOUND);
    CHECK(strstr(qeil_ctx_errmsg(ctx), "sensors: sensor root '/nonexistent-qeil-root'") != NULL);
    rp.sensors = 0; /* off: the root is not looked at */
    CHECK_EQ_INT(qeil_runtime_create(ctx, &rp, &rt), QEIL_OK);
    CHECK_EQ_STR(qeil_runtime_meter_covers(rt), "sensors off");
    qeil_runtime_free(rt);
    rp.sensors = 2;
    rt = NULL;
    CHECK_EQ_INT(qeil_runtime_create(ctx, &rp, &rt), QEIL_ERR_RANGE);
    CHECK_EQ_STR(qeil_ctx_errmsg(ctx), "sensors: 2 (allowed 0, 1)");
done:
    qeil_ctx_free(ctx);
}

/* ---- drift: fires exactly when the timings change, not on noise ---- */

static double noise10(qeil_rng *r) /* uniform in [0.9, 1.1] */
{
    return 0.9 + 0.2 * (double)(qeil_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
}

TEST(drift_detector)
{
    qeil_drift d;
    qeil_rng r;
    qeil_rng_seed(&r, 11);
    CHECK_EQ_INT(qeil_drift_init(NULL, &d, NULL), QEIL_OK);
    /* ±10 % noise around the prediction for 20000 steps: never */
    int fired = 0;
    for (int i = 0; i < 20000; i++) fired += qeil_drift_observe(&d, 1e-3 * noise10(&r), 1e-3, NULL);
    CHECK_EQ_INT(fired, 0);
    /* the machine slows by 40 % at step 100 (noise kept): exactly one fire,
     * after the change and within 15 steps of it; the new level is then
     * the baseline (no second fire) */
    CHECK_EQ_INT(qeil_drift_init(NULL, &d, NULL), QEIL_OK);
    int first = -1, n_fire = 0;
    double why = 0;
    for (int i = 0; i < 2000; i++) {
        double slow = i >= 100 ? 1.4 : 1.0, ratio;
        if (qeil_drift_observe(&d, 1e-3 * slow * noise10(&r), 1e-3, &ratio)) {
            n_fire++;
            if (first < 0) {
                first = i;
                why = ratio;
            }
        }
    }
    CHECK_EQ_INT(n_fire, 1);
    CHECK(first >= 100 && first < 115);
    CHECK(why > 0.2);
    CHECK_NEAR(d.baseline, 1.4, 0.1, 0);
    /* a change back fires again (a speed-up is drift too) */
    n_fire = 0;
    for (int i = 0; i < 200; i++) n_fire += qeil_drift_observe(&d, 1e-3 * noise10(&r), 1e-3, NULL);
    CHECK_EQ_INT(n_fire, 1);
    /* a 15 % change stays under the 20 % threshold */
    CHECK_EQ_INT(qeil_drift_init(NULL, &d, NULL), QEIL_OK);
    n_fire = 0;
    for (int i = 0; i < 2000; i++) n_fire += qeil_drift_observe(&d, 1.15e-3, 1e-3, NULL);
    CHECK_EQ_INT(n_fire, 0);
    /* a blip shorter than min_steps does not fire */
    CHECK_EQ_INT(qeil_drift_init(NULL, &d, NULL), QEIL_OK);
    n_fire = 0;
    for (int i = 0; i < 100; i++) n_fire += qeil_drift_observe(&d, i == 50 ? 5e-3 : 1e-3, 1e-3, NULL);
    CHECK_EQ_INT(n_fire, 0);
    /* bad steps are ignored; bad params named */
    CHECK_EQ_INT(qeil_drift_observe(&d, NAN, 1e-3, NULL), 0);
    CHECK_EQ_INT(qeil_drift_observe(&d, 1e-3, 0, NULL), 0);
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_drift_params p = qeil_drift_default_params();
    p.threshold = 0;
    CHECK_EQ_INT(qeil_drift_init(ctx, &d, &p), QEIL_ERR_RANGE);
    CHECK_EQ_STR(qeil_ctx_errmsg(ctx), "threshold: 0 (allowed (0, 10])");
    p = qeil_drift_default_params();
    p.alpha = 1.5;
    CHECK_EQ_INT(qeil_drift_init(ctx, &d, &p), QEIL_ERR_RANGE);
    CHECK_EQ_STR(qeil_ctx_errmsg(ctx), "alpha: 1.5 (allowed (0, 1])");
    qeil_ctx_free(ctx);
}

/* rt_unit_metrics on synthetic measurements: DASI from times chosen to
 * give a known fraction of the peak, Φ at the predicted temperature equal
 * to the model's and lower when hotter, CPQ from the memory in use, and NAN
 * for what cannot be measured (a unit with no local device). */
TEST(unit_metrics_from_synthetic_measurements)
{
    if (!model[0]) SKIP("no model (make_tiny_model failed)");
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    static qeil_model_desc md;
    if (qeil_model_load(ctx, model, &md) != QEIL_OK) {
        TEST_FAIL_("load: %s", qeil_ctx_errmsg(ctx));
        qeil_ctx_free(ctx);
        return;
    }
    qeil_platform pf = *qeil_catalog_find("jetson-agx-orin-64gb");
    snprintf(pf.units[0].device, sizeof pf.units[0].device, "cpu"); /* unit 1 stands for none */
    qeil_workload_params wp = qeil_workload_default_params();
    wp.prompt_tokens = 16;
    wp.gen_tokens = 8;
    wp.samples = 2;
    qeil_workload wl;
    CHECK_EQ_INT(qeil_workload_build(ctx, &md, &wp, &wl), QEIL_OK);
    qeil_assignment a;
    qeil_assignment_uniform(&a, &pf, &wl, 0, 2);
    qeil_energy_params ep = qeil_energy_default_params();
    qeil_eval ev;
    CHECK_EQ_INT(qeil_energy_eval(&pf, &wl, &a, &ep, &ev), QEIL_OK);
    const uint32_t n = wl.n_units;
    double t_pf[QEIL_MAX_WUNITS], t_dc[QEIL_MAX_WUNITS], temp[QEIL_MAX_UNITS];
    uint8_t place[QEIL_MAX_WUNITS] = {0}; /* all on backend 0, "cpu" */
    const double dc_tokens = 16, frac_pf = 0.25, frac_dc = 0.05;
    double work_pf = 0, time_pred_pf = 0; /* Σ F/Π and Σ of the model's prefill times */
    for (uint32_t w = 0; w < n; w++) {
        double peak = pf.units[0].peak_ops[wl.dtype[w]];
        t_pf[w] = wl.u[w].pf_flops / peak / frac_pf;
        t_dc[w] = wl.u[w].dc_flops * dc_tokens / peak / frac_dc;
        work_pf += wl.u[w].pf_flops / peak;
        time_pred_pf += ev.pf_time_s[w];
    }
    temp[0] = ev.dev_temp_C[0];
    temp[1] = NAN;
    rt_metrics_in in = {&pf, &wl, &a, &ev, n, place, t_pf, t_dc, dc_tokens, temp,
                        0.5 * pf.pools[pf.units[0].pool].capacity_B};
    qeil_runtime_unit_metrics um[QEIL_MAX_UNITS];
    rt_unit_metrics(&in, um);
    CHECK_EQ_STR(um[0].unit, pf.units[0].name);
    CHECK_EQ_STR(um[0].device, "cpu");
    CHECK_NEAR(um[0].dasi_meas[0], frac_pf, 1e-12, 1e-9);
    CHECK_NEAR(um[0].dasi_meas[1], frac_dc, 1e-12, 1e-9);
    CHECK_NEAR(um[0].dasi_pred[0], work_pf / time_pred_pf, 1e-12, 1e-9);
    CHECK(um[0].dasi_pred[1] > 0 && um[0].dasi_pred[1] <= 1);
    /* Φ at the model's own temperature is the model's; hotter leaks more */
    CHECK(um[0].phi_pred > 0 && um[0].phi_pred < 1);
    CHECK_NEAR(um[0].phi_meas, um[0].phi_pred, 1e-12, 1e-9);
    temp[0] = ev.dev_temp_C[0] + 20;
    rt_unit_metrics(&in, um);
    CHECK(um[0].phi_meas < um[0].phi_pred);
    CHECK_NEAR(um[0].rho_meas, 0.5, 1e-12, 0);
    CHECK_NEAR(um[0].cpq_meas, 1.0, 1e-12, 1e-9);
    CHECK(isfinite(um[0].rho_pred) && um[0].rho_pred > 0);
    /* the unit with no local device: predicted only */
    CHECK_EQ_STR(um[1].device, "");
    CHECK(isnan(um[1].dasi_meas[0]) && isnan(um[1].dasi_meas[1]) && isnan(um[1].phi_meas));
    CHECK(isnan(um[1].dasi_pred[0])); /* the plan put nothing there */
    /* no memory reading: no measured CPQ */
    in.mem_used_B = NAN;
    rt_unit_metrics(&in, um);
    CHECK(isnan(um[0].rho_meas) && isnan(um[0].cpq_meas));
    /* /proc/meminfo under a root */
    char dir[4300], path[4400];
    snprintf(dir, sizeof dir, "%s/mi/proc", tmpdir);
    char cmd[4500];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
    CHECK(system(cmd) == 0);
    snprintf(path, sizeof path, "%s/meminfo", dir);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs("MemTotal:       16000000 kB\nMemFree:         1000 kB\n"
              "MemAvailable:   12000000 kB\n", f);
        fclose(f);
    }
    snprintf(dir, sizeof dir, "%s/mi", tmpdir);
    CHECK_NEAR(rt_meminfo_used_B(dir), 4000000.0 * 1024, 0, 0);
    snprintf(dir, sizeof dir, "%s/nonexistent", tmpdir);
    CHECK(isnan(rt_meminfo_used_B(dir)));
    qeil_ctx_free(ctx);
}

/* Through a request: a profile whose unit stands for the CPU gets measured
 * DASI beside the predicted one; a catalog platform (not this machine)
 * only the predicted. */
TEST(unit_metrics_through_a_request)
{
    if (!model[0]) SKIP("no model (make_tiny_model failed)");
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    for (int local = 0; local < 2; local++) {
        qeil_platform pf = *qeil_catalog_find("jetson-agx-orin-64gb");
        if (local) snprintf(pf.units[0].device, sizeof pf.units[0].device, "cpu");
        qeil_runtime_params rp = qeil_runtime_default_params();
        rp.model_path = model;
        rp.platform = &pf;
        rp.samples = 2;
        rp.batch = 2;
        rp.max_tokens = 6;
        rp.n_threads = 1;
        qeil_runtime *rt = NULL;
        if (qeil_runtime_create(ctx, &rp, &rt) != QEIL_OK) {
            TEST_FAIL_("create: %s", qeil_ctx_errmsg(ctx));
            break;
        }
        CHECK_EQ_INT(qeil_runtime_unit_metrics_get(rt, NULL, 0), 0);
        qeil_sampler_params sp = golden_sampler();
        int32_t ids[64];
        size_t n = 0;
        qeil_runtime_config cfg = qeil_runtime_default_config();
        cfg.plan_method = QEIL_METHOD_STANDARD;
        cfg.select = QEIL_SELECT_MAJORITY;
        uint32_t ci;
        qeil_runtime_result r;
        qeil_answer gold;
        memset(&gold, 0, sizeof gold);
        if (qeil_runtime_set_sampler(rt, &sp) != QEIL_OK ||
            qeil_runtime_tokenize(rt, "Q: 1 + 1?\nA:", -1, 0, ids, 64, &n) != QEIL_OK) {
            TEST_FAIL_("setup: %s", qeil_ctx_errmsg(ctx));
            qeil_runtime_free(rt);
            break;
        }
        qeil_workload_params wp = qeil_runtime_planning_workload(rt, (uint32_t)n);
        qeil_runtime_request rq = {ids, (uint32_t)n, QEIL_ANSWER_NUMERIC, 0, NULL};
        if (qeil_runtime_add_config(rt, &cfg, &wp, &ci) != QEIL_OK ||
            qeil_runtime_begin(rt, &rq) != QEIL_OK || qeil_runtime_select(rt, ci, &r) != QEIL_OK) {
            TEST_FAIL_("request: %s", qeil_ctx_errmsg(ctx));
            qeil_runtime_free(rt);
            break;
        }
        qeil_runtime_unit_metrics um[QEIL_MAX_UNITS];
        CHECK_EQ_INT(qeil_runtime_unit_metrics_get(rt, um, QEIL_MAX_UNITS), pf.n_units);
        qeil_runtime_config_info info;
        CHECK_EQ_INT(qeil_runtime_config_get(rt, ci, &info), QEIL_OK);
        int d = info.plan.pf_unit[1]; /* where the standard plan puts the work */
        CHECK(um[d].dasi_pred[0] > 0 && um[d].dasi_pred[0] <= 1);
        CHECK(um[d].dasi_pred[1] > 0 && um[d].dasi_pred[1] <= 1);
        CHECK(isfinite(um[d].rho_pred) && isfinite(um[d].phi_pred));
        if (local) {
            /* the work ran on this CPU, which unit 0 stands for (against
             * the Orin CPU's peak: another machine's, so no upper bound) */
            CHECK(um[0].dasi_meas[0] > 0 && isfinite(um[0].dasi_meas[0]));
            CHECK(um[0].dasi_meas[1] > 0 && isfinite(um[0].dasi_meas[1]));
            for (int k = 1; k < pf.n_units; k++) CHECK(isnan(um[k].dasi_meas[0]));
        } else {
            for (int k = 0; k < pf.n_units; k++)
                CHECK(isnan(um[k].dasi_meas[0]) && isnan(um[k].dasi_meas[1]) &&
                      isnan(um[k].rho_meas));
        }
        qeil_runtime_free(rt);
    }
    qeil_ctx_free(ctx);
}

/* A plan's device map becomes an engine placement through the profile's
 * device names, per phase; a unit standing for no local device, or for a
 * device this build has no backend for, is refused by name. */
TEST(plan_placement_maps_units_through_devices)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_platform pf = *qeil_catalog_find("jetson-agx-orin-64gb");
    CHECK(pf.n_units >= 2);
    snprintf(pf.units[0].device, sizeof pf.units[0].device, "cpu");
    snprintf(pf.units[1].device, sizeof pf.units[1].device, "vk0");
    qeil_assignment a;
    memset(&a, 0, sizeof a);
    const uint32_t n = 6;
    for (uint32_t w = 0; w < n; w++) {
        a.pf_unit[w] = (uint8_t)(w % 2); /* alternating for prefill */
        a.dc_unit[w] = 1;                /* all on the GPU for decode */
    }
    size_t cpu = 0, vk = 0;
    for (size_t id = 0; id < qeil_engine_n_backends(); id++) {
        if (strcmp(qeil_engine_device_name(id), "cpu") == 0) cpu = id;
        if (strcmp(qeil_engine_device_name(id), "vk0") == 0) vk = id;
    }
    CHECK(vk != cpu);
    uint8_t b[6];
    CHECK_EQ_INT(qeil_plan_placement(ctx, &pf, &a, 0, n, b), QEIL_OK);
    for (uint32_t w = 0; w < n; w++) CHECK_EQ_INT(b[w], w % 2 ? vk : cpu);
    CHECK_EQ_INT(qeil_plan_placement(ctx, &pf, &a, 1, n, b), QEIL_OK);
    for (uint32_t w = 0; w < n; w++) CHECK_EQ_INT(b[w], vk);
    /* errors */
    CHECK_EQ_INT(qeil_plan_placement(ctx, &pf, &a, 2, n, b), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "phase 2 (allowed 0 prefill, 1 decode)");
    CHECK_EQ_INT(qeil_plan_placement(ctx, &pf, &a, 0, 0, b), QEIL_ERR_RANGE);
    a.dc_unit[3] = (uint8_t)pf.n_units;
    CHECK_EQ_INT(qeil_plan_placement(ctx, &pf, &a, 1, n, b), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "work unit 3 is on unit");
    a.dc_unit[3] = 1;
    pf.units[1].device[0] = '\0';
    CHECK_EQ_INT(qeil_plan_placement(ctx, &pf, &a, 1, n, b), QEIL_ERR_NOTFOUND);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "stands for no local device");
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), pf.units[1].name);
    snprintf(pf.units[1].device, sizeof pf.units[1].device, "npu7");
    CHECK_EQ_INT(qeil_plan_placement(ctx, &pf, &a, 1, n, b), QEIL_ERR_NOTFOUND);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "device 'npu7', which this build has no backend for (known: cpu");
    CHECK_EQ_INT(qeil_plan_placement(ctx, &pf, NULL, 1, n, b), QEIL_ERR_INVALID);
    qeil_ctx_free(ctx);
}

int main(int argc, char **argv)
{
    (void)argc;
    char self[4096], dir[4096];
    snprintf(self, sizeof self, "%s", argv[0]);
    snprintf(dir, sizeof dir, "%s", dirname(self));
    /* build/tests/test_runtime -> build/qeil; the repository root above */
    snprintf(qeil_bin, sizeof qeil_bin, "%s/../qeil", dir);
    snprintf(tasks_path, sizeof tasks_path, "%s/../../tests/data/eval/tiny.jsonl", dir);
    if (access(tasks_path, R_OK) != 0)
        snprintf(tasks_path, sizeof tasks_path, "tests/data/eval/tiny.jsonl");
    const char *runner = getenv("QEIL_TEST_RUNNER");
    snprintf(qeil_cmd, sizeof qeil_cmd, "%.4000s%s%s", runner ? runner : "",
             runner && runner[0] ? " " : "", qeil_bin);
    if (access(qeil_bin, X_OK) != 0 || access(tasks_path, R_OK) != 0 || !mkdtemp(tmpdir)) {
        printf("FAIL setup: no qeil binary at %s, no %s, or no temp dir\n", qeil_bin, tasks_path);
        return 1;
    }
    RUN(make_tiny_model);
    RUN(eval_gives_the_golden_results);
    RUN(eval_is_independent_of_batch_and_threads);
    RUN(request_accounting);
    RUN(eval_matches_the_cli);
    RUN(generate_matches_the_cli);
    RUN(generate_stops_at_the_context);
    RUN(generate_more_continues_the_sequence);
    RUN(step_api_batches_requests_like_generate_alone);
    RUN(measured_energy_through_the_runtime);
    RUN(drift_detector);
    RUN(drift_replans_between_requests);
    RUN(drift_per_unit_fires_for_the_slowed_unit_only);
    RUN(bad_params_name_field_value_and_range);
    RUN(null_handles);
    RUN(tasks_reader);
    RUN(plan_placement_maps_units_through_devices);
    RUN(unit_metrics_from_synthetic_measurements);
    RUN(unit_metrics_through_a_request);
    RUN(out_of_memory_fails_cleanly);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) printf("# could not remove %s\n", tmpdir);
    return test_summary("runtime");
}
