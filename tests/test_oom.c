/*
 * test_oom.c — allocation failure at every allocation (SQLite-style) beyond
 * the GGUF reader (tests/test_gguf.c): the profile parser (cJSON's own
 * allocations included), the tokenizer (create and encode), engine open,
 * the sampler and the planner (search, front, hypervolume).
 *
 * For k = 0, 1, 2, ... the context's allocator fails every allocation after
 * the first k, and the operation runs again, until it succeeds. Each failed
 * run must return QEIL_ERR_NOMEM with a message, and leave no block of the
 * hook allocated (counted here, so a leak fails without ASan too; under
 * ASan a bad free or a use after a failed allocation crashes the run).
 */
#include "qeil/qeil.h"
#include "qeil/device.h"
#include "qeil/engine.h"
#include "qeil/gguf.h"
#include "qeil/plan.h"
#include "qeil/sampler.h"
#include "qeil/tokenizer.h"
#include "qeil/workload.h"
#include "test.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    long budget; /* allocations allowed before failing */
    long used;
    long live;   /* blocks handed out and not yet freed */
} alloc_budget;

static void *budget_realloc(void *user, void *ptr, size_t size)
{
    alloc_budget *a = user;
    if (size == 0) {
        if (ptr) a->live--;
        free(ptr);
        return NULL;
    }
    if (a->used >= a->budget) return NULL;
    a->used++;
    void *q = realloc(ptr, size);
    if (q && !ptr) a->live++;
    return q;
}

static alloc_budget *g_alloc; /* the sweep's, for checks inside an op */

typedef qeil_status (*oom_op)(qeil_ctx *ctx, void *arg);

/* Run op at budgets 0, 1, 2, ... until it succeeds (at most max_k runs).
 * Returns the allocations the successful run made, -1 if none succeeded. */
static long sweep(const char *what, oom_op op, void *arg, long max_k)
{
    alloc_budget a = {LONG_MAX, 0, 0};
    qeil_ctx_params p = qeil_ctx_default_params();
    p.realloc = budget_realloc;
    p.alloc_user = &a;
    qeil_ctx *ctx = qeil_ctx_create(&p);
    CHECK(ctx != NULL);
    if (!ctx) return -1;
    g_alloc = &a;
    long done = -1, bad = 0;
    for (long k = 0; k <= max_k && done < 0 && bad < 5; k++) {
        long live0 = a.live;
        a.used = 0;
        a.budget = k;
        qeil_ctx_clear(ctx);
        qeil_status st = op(ctx, arg);
        a.budget = LONG_MAX;
        if (a.live != live0) {
            TEST_FAIL_("%s: allocation %ld failed: %ld block(s) left allocated (status %s: %s)", what,
                       k, a.live - live0, qeil_status_str(st), qeil_ctx_errmsg(ctx));
            bad++;
        }
        if (st == QEIL_OK) {
            done = a.used;
        } else if (st != QEIL_ERR_NOMEM || qeil_ctx_errmsg(ctx)[0] == '\0') {
            TEST_FAIL_("%s: allocation %ld failed: status %s (want QEIL_ERR_NOMEM), message \"%s\"",
                       what, k, qeil_status_str(st), qeil_ctx_errmsg(ctx));
            bad++;
        }
    }
    if (done < 0 && bad == 0) TEST_FAIL_("%s: no success within %ld allocations", what, max_k);
    if (done == 0) TEST_FAIL_("%s: no allocation at all: the sweep tested nothing", what);
    if (done > 0) printf("  %s: failed at each of its %ld allocations\n", what, done);
    qeil_ctx_free(ctx);
    return done;
}

/* ------------------------------------------------------------------------ */
/* Profile parser                                                            */
/* ------------------------------------------------------------------------ */

static qeil_status op_profile(qeil_ctx *ctx, void *arg)
{
    const char *json = arg;
    qeil_platform pf;
    return qeil_platform_parse_json(ctx, json, strlen(json), &pf);
}

TEST(profile_parser)
{
    qeil_ctx *plain = qeil_ctx_create(NULL);
    const qeil_platform *pf = qeil_catalog_find(QEIL_DEFAULT_PLATFORM);
    char *json = NULL;
    CHECK(pf != NULL);
    if (pf && qeil_platform_to_json(plain, pf, &json) == QEIL_OK) {
        long n = sweep("profile parse", op_profile, json, 100000);
        /* cJSON's nodes are among them: a few per JSON value */
        if (n >= 0 && n < 50) TEST_FAIL_("profile parse: %ld allocations: cJSON's not hooked?", n);
    } else {
        CHECK(0);
    }
    qeil_free(plain, json);
    qeil_ctx_free(plain);
}

/* The writer: its cJSON tree and text through the ctx's allocator, every
 * failure a clean QEIL_ERR_NOMEM with nothing left allocated. */
static qeil_status op_profile_write(qeil_ctx *ctx, void *arg)
{
    char *json = NULL;
    qeil_status st = qeil_platform_to_json(ctx, arg, &json);
    if (st == QEIL_OK && !json) st = QEIL_ERR_INVALID;
    qeil_free(ctx, json);
    return st;
}

TEST(profile_writer)
{
    const qeil_platform *pf = qeil_catalog_find(QEIL_DEFAULT_PLATFORM);
    CHECK(pf != NULL);
    /* a node per value: hundreds for the four-unit laptop */
    long n = pf ? sweep("profile write", op_profile_write, (void *)pf, 100000) : -1;
    if (n >= 0 && n < 50) TEST_FAIL_("profile write: %ld allocations: cJSON's not hooked?", n);
}

/* ------------------------------------------------------------------------ */
/* Tokenizer                                                                 */
/* ------------------------------------------------------------------------ */

#define SP "\xE2\x96\x81"

static qeil_status op_tokenizer(qeil_ctx *ctx, void *arg)
{
    (void)arg;
    static const char *const tok[] = {"<unk>", "<s>", "</s>", "<0x41>", "e", SP, "h", "t",
                                      "he", "\xE2\x96\x81t", "\xE2\x96\x81the", "<tool>", "r",
                                      "ee", "ere"};
    static const float score[] = {0, 0, 0, 0, -1, -2, -3, -4, -1, -1, -0.5f, 0, -5, -2, -1};
    static const int32_t type[] = {2, 3, 3, 6, 1, 1, 1, 1, 1, 1, 1, 4, 1, 1, 5};
    qeil_tokenizer_spec s = {
        .kind = QEIL_TOK_SPM,
        .n_vocab = sizeof tok / sizeof tok[0],
        .tokens = tok,
        .scores = score,
        .types = type,
        .bos_id = 1,
        .eos_id = 2,
        .unk_id = 0,
        .add_bos = 1,
    };
    qeil_tokenizer *tk = NULL;
    qeil_status st = qeil_tokenizer_create(ctx, &s, &tk);
    if (st != QEIL_OK) return st;
    /* a run long enough to be encoded in pieces, the special token, the
     * UNUSED "ere" undone, a byte token, an unknown character */
    static char text[200000];
    if (!text[0]) {
        for (size_t i = 0; i + 1 < sizeof text; i++) text[i] = "the here there A<tool> \xC3\xA9 "[i % 27];
    }
    int32_t ids[2048];
    size_t n = 0;
    st = qeil_tokenizer_encode_bytes(ctx, tk, text, 2000, -1, 0, ids, 2048, &n);
    if (st == QEIL_OK) {
        int32_t *big = qeil_malloc(ctx, sizeof text * sizeof *big);
        st = big ? qeil_tokenizer_encode_bytes(ctx, tk, text, sizeof text - 1, -1, 1, big,
                                               sizeof text, &n)
                 : qeil_ctx_fail(ctx, QEIL_ERR_NOMEM, "test: out of memory");
        qeil_free(ctx, big);
    }
    qeil_tokenizer_free(tk);
    return st;
}

TEST(tokenizer_create_and_encode)
{
    sweep("tokenizer", op_tokenizer, NULL, 100000);
}

/* ------------------------------------------------------------------------ */
/* Engine open (GGUF, tokenizer, weights, KV cache, scratch)                 */
/* ------------------------------------------------------------------------ */

static qeil_status op_engine(qeil_ctx *ctx, void *arg)
{
    qeil_engine_params ep = qeil_engine_default_params();
    ep.n_threads = 1;
    ep.n_ctx = 32;
    qeil_engine *e = NULL;
    qeil_status st = qeil_engine_open(ctx, arg, &ep, &e);
    if (st != QEIL_OK) return st;
    int32_t ids[4] = {1, 5, 6, 7};
    float logits[320];
    st = qeil_engine_eval(e, 0, ids, 4, logits, 0);
    qeil_engine_free(e);
    return st;
}

static char model_path[] = "/tmp/qeil-oom-XXXXXX.gguf";
static int have_model;

/* A 2-layer random-weight model, for engine open and (as a workload) the
 * planner. */
static void make_model(void)
{
    int fd = mkstemps(model_path, 5);
    if (fd < 0) return;
    close(fd);
    qeil_ctx *plain = qeil_ctx_create(NULL);
    qeil_mkmodel_params mp = qeil_mkmodel_default_params();
    mp.arch = QEIL_ARCH_LLAMA;
    mp.n_layers = 2;
    mp.d_model = 32;
    mp.n_heads = 2;
    mp.n_kv_heads = 1;
    mp.d_ff = 64;
    mp.vocab = 320;
    mp.ctx = 64;
    mp.type = QEIL_GGML_Q8_0;
    qeil_status st = qeil_mkmodel_write(plain, &mp, model_path);
    if (st != QEIL_OK) printf("  mkmodel: %s\n", qeil_ctx_errmsg(plain));
    have_model = st == QEIL_OK;
    qeil_ctx_free(plain);
}

TEST(engine_open)
{
    CHECK(have_model);
    if (have_model) sweep("engine open", op_engine, model_path, 100000);
}

/* ------------------------------------------------------------------------ */
/* Sampler                                                                   */
/* ------------------------------------------------------------------------ */

static qeil_status op_sampler(qeil_ctx *ctx, void *arg)
{
    (void)arg;
    enum { V = 1000 };
    static float logits[V];
    for (int i = 0; i < V; i++) logits[i] = (float)((i * 37) % 101) / 10.0f;
    qeil_sampler_params sp = qeil_sampler_default_params();
    sp.temp = 0.8f;
    sp.top_k = 40;
    sp.top_p = 0.9f;
    sp.seed = 7;
    qeil_sampler *s = NULL;
    qeil_status st = qeil_sampler_create(ctx, &sp, V, &s);
    if (st != QEIL_OK) return st;
    int32_t hist[3] = {1, 2, 3}, tok = -1;
    qeil_sampler_logprob lp;
    st = qeil_sampler_sample(s, logits, V, hist, 3, &tok, &lp);
    qeil_sampler_free(s);
    return st;
}

TEST(sampler)
{
    sweep("sampler", op_sampler, NULL, 10000);
}

/* ------------------------------------------------------------------------ */
/* Planner                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct {
    qeil_platform pf;
    qeil_workload wl;
    qeil_plan_method method;
} plan_job;

static qeil_status op_plan(qeil_ctx *ctx, void *arg)
{
    const plan_job *j = arg;
    qeil_plan_params pp = qeil_plan_default_params();
    pp.method = j->method;
    pp.iters = 300;
    pp.archive_max = 16;
    pp.restart_every = 100;
    pp.exhaustive_full_max = 1; /* contiguous segments only: run ~15 times */
    qeil_front *f = NULL;
    long live0 = g_alloc->live;
    qeil_status st = qeil_plan_search(ctx, &j->pf, &j->wl, &pp, &f);
    if (st != QEIL_OK) return st;
    /* the front is held in blocks of the ctx's allocator */
    if (g_alloc->live < live0 + 3)
        TEST_FAIL_("plan %s: the front holds %ld blocks of the ctx's allocator (want >= 3)",
                   qeil_plan_method_name(j->method), g_alloc->live - live0);
    double ref[3] = {INFINITY, INFINITY, INFINITY};
    if (qeil_front_size(f) > 0) {
        const qeil_eval *ev = qeil_front_eval(f, 0);
        ref[0] = 2 * ev->energy_J + 1;
        ref[1] = 2 * ev->latency_s + 1;
        ref[2] = 2;
    }
    long used0 = g_alloc->used;
    double hv = qeil_front_hypervolume(f, ref);
    if (isnan(hv)) st = QEIL_ERR_NOMEM; /* the message is on ctx */
    else if (qeil_front_size(f) > 0 && g_alloc->used < used0 + 4) /* points + 3 scratch arrays */
        TEST_FAIL_("plan %s: the hypervolume made %ld allocations through the ctx (want >= 4)",
                   qeil_plan_method_name(j->method), g_alloc->used - used0);
    qeil_front_free(f);
    return st;
}

TEST(planner)
{
    qeil_ctx *plain = qeil_ctx_create(NULL);
    static plan_job j;
    qeil_model_desc md;
    qeil_workload_params wp = qeil_workload_default_params();
    wp.prompt_tokens = 32;
    wp.gen_tokens = 16;
    wp.samples = 2;
    if (qeil_platform_load(plain, QEIL_DEFAULT_PLATFORM, &j.pf) == QEIL_OK &&
        have_model && qeil_model_load(plain, model_path, &md) == QEIL_OK &&
        qeil_workload_build(plain, &md, &wp, &j.wl) == QEIL_OK) {
        /* one DVFS level per unit keeps the exhaustive search to a moment */
        for (int u = 0; u < j.pf.n_units; u++) {
            j.pf.units[u].dvfs[0] = j.pf.units[u].dvfs[j.pf.units[u].dvfs_nominal];
            j.pf.units[u].n_dvfs = 1;
            j.pf.units[u].dvfs_nominal = 0;
        }
        static const qeil_plan_method m[] = {QEIL_METHOD_PGSAM, QEIL_METHOD_GREEDY,
                                             QEIL_METHOD_STANDARD, QEIL_METHOD_EXHAUSTIVE,
                                             QEIL_METHOD_RANDOM};
        for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
            j.method = m[i];
            char what[64];
            snprintf(what, sizeof what, "plan %s", qeil_plan_method_name(m[i]));
            sweep(what, op_plan, &j, 100000);
        }
    } else {
        printf("  setup: %s\n", qeil_ctx_errmsg(plain));
        CHECK(0);
    }
    qeil_ctx_free(plain);
}

int main(void)
{
    make_model();
    RUN(profile_parser);
    RUN(profile_writer);
    RUN(tokenizer_create_and_encode);
    RUN(engine_open);
    RUN(sampler);
    RUN(planner);
    if (have_model) unlink(model_path);
    return test_summary("oom");
}
