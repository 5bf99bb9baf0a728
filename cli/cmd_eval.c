/* cmd_eval.c — `qeil eval`: repeated sampling with verification on a task
 * file. For each problem the prompt is prefilled once, forked into sample
 * slots and decoded in batches (one engine call per step for the whole
 * batch); the selection module decides how many samples to draw and which
 * answer wins; the energy model prices the executed work on the target
 * platform under the chosen plan. Energy and target-platform latency are
 * modeled; wall time is measured on this machine's CPU. docs/eval.md. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "qeil/engine.h"
#include "qeil/plan.h"
#include "qeil/sampler.h"
#include "qeil/select.h"

#define CMD "eval"

/* The prompt format of every task: the demo model (models/qeil-demo.gguf)
 * is trained on "Q: <question>\nA: <working>\n#### <answer>\n\n". */
#define EVAL_PROMPT_PREFIX "Q: "
#define EVAL_PROMPT_SUFFIX "\nA:"

#define EVAL_MAX_TASKS 100000u       /* problems per task file */
#define EVAL_MAX_LINE (64u * 1024u)  /* bytes per task line, newline excluded */
#define EVAL_MAX_TOKENS 65536u       /* -n upper bound */
#define EVAL_DEFAULT_SEED 42u
#define EVAL_DEFAULT_BATCH 4u

static void usage(FILE *f)
{
    fprintf(f,
            "usage: qeil eval -m FILE --tasks FILE.jsonl [options]\n\n"
            "Repeated sampling with verification: for each task, draw up to K samples\n"
            "(prompt \"Q: <question>\\nA:\", prefilled once and forked into the samples), pick\n"
            "an answer with the selection method, and score it against the reference.\n"
            "Energy and target-platform latency are MODELED (the chosen plan on --platform,\n"
            "applied to the work actually executed); wall time is MEASURED on this machine's\n"
            "CPU, not on the target platform.\n\n"
            "options:\n"
            "  -m, --model FILE        GGUF model (llama, qwen2, gpt2)\n"
            "  --tasks FILE            JSONL: {\"id\":..,\"question\":..,\"answer\":\"42\",\n"
            "                          \"kind\":\"numeric\"|\"choice\"} per line (kind optional)\n"
            "  --samples K             sample budget per problem (default 8; 1..%u)\n"
            "  --select M              cascade|majority|esc|adaptive|first (default cascade)\n"
            "  --platform P            catalog name or profile JSON (default %s)\n"
            "  --plan M                pgsam|greedy|standard (default pgsam: the knee plan)\n"
            "  --max-latency S         pgsam: the lowest-energy plan within S seconds on the\n"
            "                          planning workload instead of the knee (1e-9..1e9)\n"
            "  --compare               standard (standard plan, majority of K), v1 (greedy\n"
            "                          plan, majority), v2 (PGSAM plan no slower than the\n"
            "                          standard plan, else the knee; cascade) on the same\n"
            "                          samples; not with --select/--plan\n"
            "  --limit N               first N tasks only (1..%u)\n"
            "  --batch B               samples decoded together on this CPU (default %u; 1..%u)\n"
            "  -t, --threads N         worker threads (default 0 = all online CPUs)\n"
            "  --temp T                temperature (default 0.8; 0..100)\n"
            "  --top-k K               top-k, 0 = off (default 40)\n"
            "  --top-p P               nucleus mass, 1 = off (default 0.95; (0, 1])\n"
            "  --seed S                seed of plans and samples (default %u)\n"
            "  -n, --max-tokens N      tokens per sample at most (default 128; 1..%u)\n"
            "  --output FMT            table|json (default table)\n"
            "  -v, --verbose           table: one line per problem (question, gold, chosen\n"
            "                          answer, samples, deciding stage, modeled energy)\n"
            "  --csvet-delta D         cascade: risk of CSVET's posterior stop (default 0.1;\n"
            "                          0..0.5, 0 = rule off)\n"
            "  --csvet-delta-late D    ... once --csvet-late-after samples are drawn\n"
            "                          (default 0.4; 0..0.5)\n"
            "  --csvet-late-after N    (default 7; 1..1024)\n"
            "  --arde-lambda L         cascade: ARDE votes per s.d. of log-likelihood\n"
            "                          (default 0.5; 0..100, 0 = votes and penalties only)\n"
            "  --futility              cascade: CSVET rule (c), stop once EAC cannot accept\n"
            "  -h, --help              this help\n\n"
            "A sample stops at EOS, at \"\\n\\n\" or \"Q:\" after its \"####\" answer line, or\n"
            "at -n tokens. Progress goes to stderr.\n\n"
            "examples:\n"
            "  qeil eval -m models/qeil-demo.gguf --tasks data/tasks/arith.jsonl --limit 50\n"
            "  qeil eval -m models/qeil-demo.gguf --tasks data/tasks/arith.jsonl --compare\n",
            QEIL_MAX_SAMPLES, QEIL_DEFAULT_PLATFORM, EVAL_MAX_TASKS, EVAL_DEFAULT_BATCH,
            QEIL_SELECT_MAX_BATCH, EVAL_DEFAULT_SEED, EVAL_MAX_TOKENS);
}

/* ------------------------------------------------------------------------ */
/* Options                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct {
    const char *model, *tasks, *platform;
    uint32_t samples, limit, batch, max_tokens;
    int threads, compare, json, select_given, plan_given, verbose;
    qeil_select_method select;
    qeil_plan_method plan;
    qeil_sampler_params sp;
    qeil_select_params tune;         /* cascade tuning from the options (docs/selection.md);
                                        method, budget and batch are set per configuration */
    double max_latency_s;            /* PGSAM plan: lowest energy within this (0: knee) */
    uint32_t plan_gen_tokens;        /* gen tokens of the planning workload: max_tokens, or
                                        what fits the context after the mean prompt */
    char warning[256];               /* why plan_gen_tokens < max_tokens ("" if not) */
} eval_opts;

static int parse_args(int argc, char **argv, eval_opts *o, int *done)
{
    *done = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        uint64_t u;
        int m;
        if (cli_flag(argv, i, "--help", "-h")) {
            usage(stdout);
            *done = 1;
            return CLI_OK;
        }
#define OPT(name, alias) ((m = cli_opt(CMD, argc, argv, &i, name, alias, &v)) != 0)
        if (OPT("--model", "-m")) {
            if (m < 0) return CLI_USAGE;
            o->model = v;
        } else if (OPT("--tasks", NULL)) {
            if (m < 0) return CLI_USAGE;
            o->tasks = v;
        } else if (OPT("--platform", NULL)) {
            if (m < 0) return CLI_USAGE;
            o->platform = v;
        } else if (OPT("--samples", "-k")) {
            if (m < 0 || cli_u64(CMD, "--samples", v, 1, QEIL_MAX_SAMPLES, &u)) return CLI_USAGE;
            o->samples = (uint32_t)u;
        } else if (OPT("--limit", NULL)) {
            if (m < 0 || cli_u64(CMD, "--limit", v, 1, EVAL_MAX_TASKS, &u)) return CLI_USAGE;
            o->limit = (uint32_t)u;
        } else if (OPT("--batch", NULL)) {
            if (m < 0 || cli_u64(CMD, "--batch", v, 1, QEIL_SELECT_MAX_BATCH, &u)) return CLI_USAGE;
            o->batch = (uint32_t)u;
        } else if (OPT("--max-tokens", "-n")) {
            if (m < 0 || cli_u64(CMD, "-n", v, 1, EVAL_MAX_TOKENS, &u)) return CLI_USAGE;
            o->max_tokens = (uint32_t)u;
        } else if (OPT("--threads", "-t")) {
            if (m < 0 || cli_u64(CMD, "-t", v, 0, QEIL_ENGINE_MAX_THREADS, &u)) return CLI_USAGE;
            o->threads = (int)u;
        } else if (OPT("--temp", NULL)) {
            if (m < 0 || cli_f32_range(CMD, "--temp", v, 0, QEIL_SAMPLER_MAX_TEMP, 0, 0, "0..100",
                                       &o->sp.temp))
                return CLI_USAGE;
        } else if (OPT("--top-k", NULL)) {
            if (m < 0 || cli_u64(CMD, "--top-k", v, 0, QEIL_SAMPLER_MAX_VOCAB, &u)) return CLI_USAGE;
            o->sp.top_k = (uint32_t)u;
        } else if (OPT("--top-p", NULL)) {
            if (m < 0 || cli_f32_range(CMD, "--top-p", v, 0, 1, 1, 0, "(0, 1]", &o->sp.top_p))
                return CLI_USAGE;
        } else if (OPT("--seed", NULL)) {
            if (m < 0 || cli_u64(CMD, "--seed", v, 0, UINT64_MAX, &u)) return CLI_USAGE;
            o->sp.seed = u;
        } else if (OPT("--select", NULL)) {
            if (m < 0) return CLI_USAGE;
            qeil_ctx *c = qeil_ctx_create(NULL);
            qeil_status st = c ? qeil_select_method_parse(c, v, &o->select) : QEIL_ERR_NOMEM;
            if (st != QEIL_OK) {
                cli_usage_error(CMD, "--select: %s", c ? qeil_ctx_errmsg(c) : "out of memory");
                qeil_ctx_free(c);
                return CLI_USAGE;
            }
            qeil_ctx_free(c);
            o->select_given = 1;
        } else if (OPT("--plan", NULL)) {
            if (m < 0) return CLI_USAGE;
            if (strcmp(v, "pgsam") == 0) o->plan = QEIL_METHOD_PGSAM;
            else if (strcmp(v, "greedy") == 0) o->plan = QEIL_METHOD_GREEDY;
            else if (strcmp(v, "standard") == 0) o->plan = QEIL_METHOD_STANDARD;
            else return cli_usage_error(CMD, "--plan: '%s' is not one of pgsam|greedy|standard", v);
            o->plan_given = 1;
        } else if (OPT("--output", NULL)) {
            cli_output out;
            if (m < 0 || cli_parse_output(CMD, v, "table|json", &out)) return CLI_USAGE;
            o->json = out == CLI_OUT_JSON;
        } else if (cli_flag(argv, i, "--compare", NULL)) {
            o->compare = 1;
        } else if (cli_flag(argv, i, "--verbose", "-v")) {
            o->verbose = 1;
        } else if (OPT("--csvet-delta", NULL)) {
            if (m < 0 || cli_f64(CMD, "--csvet-delta", v, 0, 0.5, &o->tune.csvet_delta))
                return CLI_USAGE;
        } else if (OPT("--csvet-delta-late", NULL)) {
            if (m < 0 || cli_f64(CMD, "--csvet-delta-late", v, 0, 0.5,
                                      &o->tune.csvet_delta_late))
                return CLI_USAGE;
        } else if (OPT("--csvet-late-after", NULL)) {
            if (m < 0 || cli_u64(CMD, "--csvet-late-after", v, 1, QEIL_SELECT_MAX_BUDGET, &u))
                return CLI_USAGE;
            o->tune.csvet_late_after = (uint32_t)u;
        } else if (OPT("--arde-lambda", NULL)) {
            if (m < 0 || cli_f64(CMD, "--arde-lambda", v, 0, 100, &o->tune.arde_lambda))
                return CLI_USAGE;
        } else if (OPT("--max-latency", NULL)) {
            if (m < 0 || cli_f64(CMD, "--max-latency", v, 1e-9, 1e9, &o->max_latency_s))
                return CLI_USAGE;
        } else if (cli_flag(argv, i, "--futility", NULL)) {
            o->tune.csvet_futility = 1;
        } else {
#undef OPT
            return cli_usage_error(CMD, "unknown option '%s'", argv[i]);
        }
    }
    if (!o->model) return cli_usage_error(CMD, "-m FILE is required");
    if (!o->tasks) return cli_usage_error(CMD, "--tasks FILE is required");
    if (o->compare && (o->select_given || o->plan_given))
        return cli_usage_error(CMD, "--compare fixes the plan and selection of each "
                                    "configuration; drop --select/--plan");
    return CLI_OK;
}

/* ------------------------------------------------------------------------ */
/* Task file                                                                */
/* ------------------------------------------------------------------------ */

typedef struct {
    char *id, *question, *gold_text;
    qeil_answer gold;
    qeil_answer_mode mode;
    uint32_t line;
    int32_t *ids; /* prompt tokens */
    uint32_t n_ids;
} task;

static void tasks_free(task *t, uint32_t n)
{
    for (uint32_t i = 0; t && i < n; i++) {
        free(t[i].id);
        free(t[i].question);
        free(t[i].gold_text);
        free(t[i].ids);
    }
    free(t);
}

static char *dupstr(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* Parse one JSONL line into *t; on error print "FILE:LINE: ..." and return -1. */
static int task_parse(qeil_ctx *ctx, const char *file, uint32_t line, const char *s, size_t len,
                      task *t)
{
    cJSON *j = cJSON_ParseWithLength(s, len);
    int rc = -1;
    if (!j || !cJSON_IsObject(j)) {
        cli_fail(CMD, "%s:%u: not a JSON object", file, line);
        goto out;
    }
    /* cJSON's C strings would cut an id or a question at the NUL */
    size_t nul = qeil_json_find_nul(s, len);
    if (nul < len) {
        cli_fail(CMD, "%s:%u: a string holds \\u0000 (NUL) at column %zu (not allowed)", file,
                 line, nul + 1);
        goto out;
    }
    cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
    cJSON *q = cJSON_GetObjectItemCaseSensitive(j, "question");
    cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "answer");
    cJSON *k = cJSON_GetObjectItemCaseSensitive(j, "kind");
    char num[64];
    t->line = line;
    if (cJSON_IsString(id)) {
        t->id = dupstr(id->valuestring);
    } else if (cJSON_IsNumber(id)) {
        snprintf(num, sizeof num, "%.17g", id->valuedouble);
        t->id = dupstr(num);
    } else {
        cli_fail(CMD, "%s:%u: field 'id': %s (want a string or a number)", file, line,
                 id ? "wrong type" : "missing");
        goto out;
    }
    if (!cJSON_IsString(q) || q->valuestring[0] == '\0') {
        cli_fail(CMD, "%s:%u: field 'question': %s (want a non-empty string)", file, line,
                 !q ? "missing" : cJSON_IsString(q) ? "empty" : "wrong type");
        goto out;
    }
    t->question = dupstr(q->valuestring);
    if (cJSON_IsString(a)) {
        t->gold_text = dupstr(a->valuestring);
    } else if (cJSON_IsNumber(a)) {
        snprintf(num, sizeof num, "%.17g", a->valuedouble);
        t->gold_text = dupstr(num);
    } else {
        cli_fail(CMD, "%s:%u: field 'answer': %s (want a string such as \"42\" or \"B\")", file,
                 line, a ? "wrong type" : "missing");
        goto out;
    }
    t->mode = QEIL_ANSWER_NUMERIC;
    if (k) {
        if (cJSON_IsString(k) && strcmp(k->valuestring, "numeric") == 0) {
            t->mode = QEIL_ANSWER_NUMERIC;
        } else if (cJSON_IsString(k) && strcmp(k->valuestring, "choice") == 0) {
            t->mode = QEIL_ANSWER_CHOICE;
        } else {
            cli_fail(CMD, "%s:%u: field 'kind': not one of \"numeric\"|\"choice\"", file, line);
            goto out;
        }
    }
    if (!t->id || !t->question || !t->gold_text) {
        cli_fail(CMD, "out of memory");
        goto out;
    }
    if (qeil_answer_normalize(ctx, t->mode, t->gold_text, &t->gold) != QEIL_OK) {
        cli_fail(CMD, "%s:%u: field 'answer': %s", file, line, qeil_ctx_errmsg(ctx));
        goto out;
    }
    rc = 0;
out:
    cJSON_Delete(j);
    return rc;
}

/* Read up to `limit` tasks (0 = all). Blank lines are skipped; every other
 * line must be one task. Returns 0 or -1 (message printed). */
static int tasks_read(qeil_ctx *ctx, const char *file, uint32_t limit, task **out, uint32_t *n_out)
{
    FILE *f = fopen(file, "rb");
    if (!f) return cli_fail(CMD, "%s: cannot open", file), -1;
    char *buf = malloc(EVAL_MAX_LINE + 2);
    task *t = NULL;
    uint32_t n = 0, cap = 0, line = 0;
    int rc = -1;
    if (!buf) {
        cli_fail(CMD, "out of memory");
        goto out;
    }
    for (;;) {
        if (limit && n == limit) break;
        size_t len = 0;
        int c = 0, any = 0;
        while ((c = fgetc(f)) != EOF) {
            any = 1;
            if (c == '\n') break;
            if (len == EVAL_MAX_LINE) {
                cli_fail(CMD, "%s:%u: line longer than %u bytes", file, line + 1, EVAL_MAX_LINE);
                goto out;
            }
            buf[len++] = (char)c;
        }
        if (!any) break;
        line++;
        if (len && buf[len - 1] == '\r') len--;
        size_t k = 0;
        while (k < len && (buf[k] == ' ' || buf[k] == '\t')) k++;
        if (k == len) continue; /* blank line */
        if (memchr(buf, '\0', len)) {
            cli_fail(CMD, "%s:%u: NUL byte in line", file, line);
            goto out;
        }
        if (n == EVAL_MAX_TASKS) {
            cli_fail(CMD, "%s:%u: more than %u tasks", file, line, EVAL_MAX_TASKS);
            goto out;
        }
        if (n == cap) {
            uint32_t nc = cap ? 2 * cap : 64;
            task *nt = realloc(t, sizeof *t * nc);
            if (!nt) {
                cli_fail(CMD, "out of memory");
                goto out;
            }
            t = nt;
            cap = nc;
        }
        memset(&t[n], 0, sizeof t[n]);
        n++;
        if (task_parse(ctx, file, line, buf, len, &t[n - 1]) != 0) goto out;
    }
    if (ferror(f)) {
        cli_fail(CMD, "%s: read error", file);
        goto out;
    }
    if (n == 0) {
        cli_fail(CMD, "%s:%u: no tasks in the file (want one JSON object per line)", file, line);
        goto out;
    }
    rc = 0;
out:
    fclose(f);
    free(buf);
    if (rc != 0) {
        tasks_free(t, n);
        t = NULL;
        n = 0;
    }
    *out = t;
    *n_out = n;
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Generation: prefill once, fork, decode a batch of samples together       */
/* ------------------------------------------------------------------------ */

typedef struct {
    char *text;
    size_t len, cap;
    uint32_t n_tokens;
    double logprob_sum;
    uint32_t flags;
    double wall_s; /* measured: this sample's share of its batch's time */
} sample_rec;

typedef struct {
    qeil_ctx *ctx;
    qeil_engine *e;
    const qeil_tokenizer *tk;
    qeil_sampler **smp;  /* one per slot */
    uint32_t slots;      /* engine sequences 1..slots hold samples; 0 the prompt */
    uint32_t n_vocab, n_ctx, max_tokens, budget;
    int32_t eos;
    uint64_t seed;
    float *logits0;      /* [n_vocab]: after the prompt */
    float *logits;       /* [slots × n_vocab]: one decode step of the batch */
    const float **row;   /* [slots]: the row each slot samples from next */
    int32_t **hist;      /* [slots][hist_cap]: prompt + generated tokens */
    size_t *hlen, hist_cap;
    uint32_t *seqs, *rowslot;
    int32_t *toks;
    int *active;
    /* the current problem */
    const task *t;
    uint32_t problem;
    sample_rec *cache; /* [budget] */
    uint32_t n_cached;
    double prefill_wall_s;
    qeil_status err;
    char errmsg[512];
} gen_state;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* splitmix64's finaliser (Steele, Lea, Flood 2014). */
static uint64_t mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* The RNG stream of sample `k` of problem `p`: independent of batching, of
 * the selection method and of how many samples other problems drew. */
static uint64_t sample_seed(uint64_t seed, uint32_t p, uint32_t k)
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
static size_t answer_boundary(const char *s, size_t n)
{
    const char *m = find_bytes(s, n, "####", 4);
    if (!m) return 0;
    size_t from = (size_t)(m - s) + 4;
    const char *a = find_bytes(s + from, n - from, "\n\n", 2);
    const char *b = find_bytes(s + from, n - from, "Q:", 2);
    const char *c = a && (!b || a < b) ? a : b;
    return c ? (size_t)(c - s) : 0;
}

static int rec_add(sample_rec *r, const char *s, size_t n)
{
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 256;
        while (cap < r->len + n + 1) cap *= 2;
        char *p = realloc(r->text, cap);
        if (!p) return -1;
        r->text = p;
        r->cap = cap;
    }
    memcpy(r->text + r->len, s, n);
    r->len += n;
    r->text[r->len] = '\0';
    return 0;
}

static qeil_status gen_failf(gen_state *g, qeil_status st, const char *what)
{
    snprintf(g->errmsg, sizeof g->errmsg, "%s: %s", what, qeil_ctx_errmsg(g->ctx));
    g->err = st;
    return st;
}

/* Generate samples first..first+c-1 (c <= slots) of the current problem. */
static qeil_status gen_chunk(gen_state *g, uint32_t first, uint32_t c)
{
    qeil_status st;
    double t0 = now_s();
    char piece[QEIL_TOKENIZER_MAX_TOKEN_BYTES + 8];
    for (uint32_t j = 0; j < c; j++) {
        sample_rec *r = &g->cache[first + j];
        r->len = 0;
        r->n_tokens = 0;
        r->logprob_sum = 0;
        r->flags = 0;
        if (rec_add(r, "", 0) != 0) return g->err = QEIL_ERR_NOMEM;
        if ((st = qeil_engine_seq_copy(g->e, 0, 1 + j)) != QEIL_OK)
            return gen_failf(g, st, "fork");
        qeil_sampler_set_seed(g->smp[j], sample_seed(g->seed, g->problem, first + j));
        memcpy(g->hist[j], g->t->ids, sizeof(int32_t) * g->t->n_ids);
        g->hlen[j] = g->t->n_ids;
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
            if (rec_add(r, piece, pl) != 0) return g->err = QEIL_ERR_NOMEM;
            r->n_tokens++;
            r->logprob_sum += lp.raw;
            g->hist[j][g->hlen[j]++] = tok;
            size_t cut = answer_boundary(r->text, r->len);
            if (cut) {
                r->len = cut;
                r->text[cut] = '\0';
                g->active[j] = 0;
            } else if (r->n_tokens >= g->max_tokens ||
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
        if ((st = qeil_engine_eval_batch(g->e, g->seqs, g->toks, m, g->logits)) != QEIL_OK)
            return gen_failf(g, st, "decode");
        for (uint32_t r = 0; r < m; r++) g->row[g->rowslot[r]] = g->logits + (size_t)r * g->n_vocab;
    }
    double share = (now_s() - t0) / c;
    for (uint32_t j = 0; j < c; j++) g->cache[first + j].wall_s = share;
    return QEIL_OK;
}

static qeil_status gen_upto(gen_state *g, uint32_t need)
{
    while (g->n_cached < need) {
        uint32_t c = need - g->n_cached;
        if (c > g->slots) c = g->slots;
        qeil_status st = gen_chunk(g, g->n_cached, c);
        if (st != QEIL_OK) return st;
        g->n_cached += c;
    }
    return QEIL_OK;
}

/* The selector's generator: samples come from the per-problem cache, drawn
 * on first use. A configuration that asks for samples 0..j-1 gets exactly
 * what a separate run with the same seeds would have drawn. */
static qeil_status gen_cb(void *user, uint32_t first, uint32_t n, qeil_sample *out)
{
    gen_state *g = user;
    if ((uint64_t)first + n > g->budget) return QEIL_ERR_RANGE;
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

/* Prefill the current problem's prompt on sequence 0. */
static qeil_status gen_prefill(gen_state *g, uint32_t n_batch)
{
    double t0 = now_s();
    qeil_engine_seq_reset(g->e, 0);
    const int32_t *ids = g->t->ids;
    for (uint32_t at = 0; at < g->t->n_ids;) {
        uint32_t n = g->t->n_ids - at < n_batch ? g->t->n_ids - at : n_batch;
        int last = at + n == g->t->n_ids;
        qeil_status st = qeil_engine_eval(g->e, 0, ids + at, n, last ? g->logits0 : NULL, 0);
        if (st != QEIL_OK) return gen_failf(g, st, "prefill");
        at += n;
    }
    g->n_cached = 0;
    g->prefill_wall_s = now_s() - t0;
    return QEIL_OK;
}

/* ------------------------------------------------------------------------ */
/* Configurations: a plan, a selection method, their outcomes               */
/* ------------------------------------------------------------------------ */

typedef struct {
    qeil_answer chosen;
    int correct;
    uint32_t samples, n_correct;
    uint64_t tokens;
    qeil_select_stage stage;
    double energy_J, latency_s, wall_s; /* modeled, modeled, measured */
    int feasible;
} prob_rec;

typedef struct {
    const char *name;
    qeil_plan_method plan_method;
    qeil_select_method select;
    qeil_assignment plan;
    qeil_eval plan_ev; /* the plan on the planning workload (modeled) */
    double max_latency_s; /* PGSAM: lowest-energy front plan within this latency; 0: the knee */
    int plan_bounded;     /* 1: chosen under max_latency_s, 0: the knee (or not PGSAM) */
    qeil_selector *sel[2]; /* by answer mode */
    qeil_metrics_acc acc;
    double wall_sum_s;
    prob_rec *recs;
    int full_budget; /* every problem drew the whole budget: pass@k is defined */
    qeil_metrics_summary sum;
} config;

static const char *plan_name(qeil_plan_method m)
{
    return m == QEIL_METHOD_PGSAM ? "pgsam" : m == QEIL_METHOD_GREEDY ? "greedy" : "standard";
}

static qeil_status config_setup(qeil_ctx *ctx, config *c, const qeil_platform *pf,
                                const qeil_workload *wl, const eval_opts *o, uint32_t n_tasks)
{
    const uint64_t seed = o->sp.seed;
    const uint32_t budget = o->samples, batch = o->batch;
    qeil_plan_params pp = qeil_plan_default_params();
    pp.method = c->plan_method;
    pp.seed = seed;
    qeil_front *f = NULL;
    qeil_status st = qeil_plan_search(ctx, pf, wl, &pp, &f);
    if (st != QEIL_OK) return st;
    size_t k = 0;
    c->plan_bounded = 0;
    if (c->plan_method == QEIL_METHOD_PGSAM) {
        k = qeil_front_knee(f);
        if (c->max_latency_s > 0) {
            const size_t kb = qeil_front_best_under(f, c->max_latency_s, INFINITY);
            if (kb != SIZE_MAX) {
                k = kb;
                c->plan_bounded = 1;
            } else if (o->max_latency_s > 0) { /* the user's bound: say so, don't guess */
                qeil_front_free(f);
                return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                                     "--max-latency: no plan on the front is within %g s on "
                                     "the planning workload",
                                     c->max_latency_s);
            }
        }
    }
    c->plan = *qeil_front_plan(f, k);
    c->plan_ev = *qeil_front_eval(f, k);
    qeil_front_free(f);

    qeil_select_params sp = o->tune;
    sp.method = c->select;
    sp.budget = budget;
    sp.batch = batch;
    /* thresholds that count samples cannot exceed a small budget */
    if (sp.eac_min_votes > budget) sp.eac_min_votes = budget;
    if (sp.csvet_min_samples > budget) sp.csvet_min_samples = budget;
    if (sp.esc_window > budget) sp.esc_window = budget;
    for (int m = 0; m < 2; m++) {
        sp.mode = m ? QEIL_ANSWER_CHOICE : QEIL_ANSWER_NUMERIC;
        if ((st = qeil_select_create(ctx, &sp, &c->sel[m])) != QEIL_OK) return st;
    }
    qeil_metrics_init(&c->acc);
    c->full_budget = 1;
    c->recs = calloc(n_tasks, sizeof *c->recs);
    return c->recs ? QEIL_OK : QEIL_ERR_NOMEM;
}

/* Select an answer for the current problem and price the executed work. */
static int config_run(qeil_ctx *ctx, config *c, gen_state *g, const qeil_platform *pf,
                      const qeil_model_desc *md, uint32_t pi)
{
    const task *t = g->t;
    qeil_selector *sel = c->sel[t->mode == QEIL_ANSWER_CHOICE];
    qeil_select_result res;
    qeil_status st = qeil_select_run(sel, gen_cb, g, &res);
    if (st != QEIL_OK) {
        if (g->err != QEIL_OK)
            return cli_fail(CMD, "task %s (line %u): %s", t->id, t->line, g->errmsg);
        return cli_fail(CMD, "task %s (line %u): %s", t->id, t->line, qeil_ctx_errmsg(ctx));
    }
    prob_rec *r = &c->recs[pi];
    r->chosen = res.answer;
    r->correct = qeil_answer_equal(&res.answer, &t->gold);
    r->samples = res.n_samples;
    r->tokens = res.n_tokens;
    r->stage = res.stage;
    r->n_correct = 0;
    for (uint32_t i = 0; i < res.n_samples; i++) {
        qeil_select_sample_info si;
        if (qeil_select_sample_get(sel, i, &si) == QEIL_OK && qeil_answer_equal(&si.answer, &t->gold))
            r->n_correct++;
    }
    if (res.n_samples < g->budget) c->full_budget = 0;
    r->wall_s = g->prefill_wall_s;
    for (uint32_t i = 0; i < res.n_samples; i++) r->wall_s += g->cache[i].wall_s;

    /* the energy model on the work actually executed */
    qeil_workload_params wp = qeil_workload_default_params();
    wp.prompt_tokens = t->n_ids;
    uint64_t per = (res.n_tokens + res.n_samples / 2) / res.n_samples;
    wp.gen_tokens = per < 1 ? 1 : (uint32_t)per;
    if (wp.gen_tokens > md->ctx_max - wp.prompt_tokens) wp.gen_tokens = md->ctx_max - wp.prompt_tokens;
    wp.samples = res.n_samples;
    qeil_workload wl;
    qeil_eval ev;
    qeil_assignment a = c->plan;
    if (a.batch > wp.samples) a.batch = (uint16_t)wp.samples;
    qeil_energy_params ep = qeil_energy_default_params();
    if (qeil_workload_build(ctx, md, &wp, &wl) != QEIL_OK ||
        qeil_energy_eval(pf, &wl, &a, &ep, &ev) != QEIL_OK)
        return cli_fail(CMD, "task %s: energy model: %s", t->id, qeil_ctx_errmsg(ctx));
    if (!isfinite(ev.energy_J) || !isfinite(ev.latency_s))
        return cli_fail(CMD, "task %s: the %s plan cannot run this workload on %s "
                             "(infeasible: flags 0x%x)",
                        t->id, plan_name(c->plan_method), pf->name, ev.infeas);
    r->energy_J = ev.energy_J;
    r->latency_s = ev.latency_s;
    r->feasible = ev.feasible;

    qeil_problem_record pr = {r->correct, r->samples, r->tokens, r->energy_J, r->latency_s,
                              QEIL_PROV_MODELED};
    if (qeil_metrics_add(ctx, &c->acc, &pr) != QEIL_OK)
        return cli_fail(CMD, "task %s: %s", t->id, qeil_ctx_errmsg(ctx));
    c->wall_sum_s += r->wall_s;
    return CLI_OK;
}

/* ------------------------------------------------------------------------ */
/* Output                                                                   */
/* ------------------------------------------------------------------------ */

#define PROV_ENERGY "modeled"
#define PROV_LATENCY "modeled (target platform)"
#define PROV_WALL "measured (this machine's CPU, not the target platform)"

/* pass@k for k = 1, 2, 4, ..., K and K itself, or every k = 1..K when
 * `dense`; out and ks hold QEIL_MAX_SAMPLES entries. Returns the count
 * written (0: undefined). */
static int pass_at(qeil_ctx *ctx, const config *c, uint32_t n, uint32_t budget, int dense,
                   double *out, uint32_t *ks)
{
    if (!c->full_budget) return 0;
    uint32_t *nn = malloc(sizeof *nn * n), *cc = malloc(sizeof *cc * n);
    int m = 0;
    if (nn && cc) {
        for (uint32_t i = 0; i < n; i++) {
            nn[i] = c->recs[i].samples;
            cc[i] = c->recs[i].n_correct;
        }
        for (uint32_t k = 1; k <= budget && m < QEIL_MAX_SAMPLES; k = dense ? k + 1 : 2 * k)
            if (qeil_metrics_pass_at_k_mean(ctx, nn, cc, n, k, &out[m]) == QEIL_OK) ks[m++] = k;
        if (m > 0 && ks[m - 1] != budget &&
            qeil_metrics_pass_at_k_mean(ctx, nn, cc, n, budget, &out[m]) == QEIL_OK)
            ks[m++] = budget;
    }
    free(nn);
    free(cc);
    return m;
}

static double ratio_or_nan(double a, double b)
{
    return b > 0 && isfinite(a) && isfinite(b) ? a / b : NAN;
}

static void add_num_or_null(cJSON *o, const char *k, double v)
{
    if (isfinite(v)) cJSON_AddNumberToObject(o, k, v);
    else cJSON_AddNullToObject(o, k);
}

static void json_summary(cJSON *o, qeil_ctx *ctx, const config *c, const task *t, uint32_t n,
                         uint32_t budget, int with_problems)
{
    const qeil_metrics_summary *s = &c->sum;
    cJSON_AddStringToObject(o, "plan", plan_name(c->plan_method));
    if (c->plan_method == QEIL_METHOD_PGSAM) {
        cJSON_AddStringToObject(o, "plan_rule", c->plan_bounded ? "max_latency" : "knee");
        add_num_or_null(o, "plan_max_latency_s", c->max_latency_s > 0 ? c->max_latency_s : NAN);
    }
    cJSON_AddStringToObject(o, "select", qeil_select_method_name(c->select));
    cJSON_AddNumberToObject(o, "plan_batch", c->plan.batch);
    cJSON *pl = cJSON_AddObjectToObject(o, "plan_on_planning_workload");
    add_num_or_null(pl, "energy_J", c->plan_ev.energy_J);
    add_num_or_null(pl, "latency_s", c->plan_ev.latency_s);
    cJSON_AddBoolToObject(pl, "feasible", c->plan_ev.feasible);
    cJSON *su = cJSON_AddObjectToObject(o, "summary");
    cJSON_AddNumberToObject(su, "problems", s->n_problems);
    cJSON_AddNumberToObject(su, "accuracy", s->accuracy);
    cJSON_AddNumberToObject(su, "accuracy_pct", s->accuracy_pct);
    cJSON_AddNumberToObject(su, "mean_samples", s->mean_samples);
    cJSON_AddNumberToObject(su, "mean_tokens", s->mean_tokens);
    cJSON_AddNumberToObject(su, "energy_per_problem_J", s->energy_per_problem_J);
    cJSON_AddNumberToObject(su, "latency_s", s->latency_s);
    if (s->power_valid) {
        cJSON_AddNumberToObject(su, "avg_power_W", s->avg_power_W);
        cJSON_AddNumberToObject(su, "ipw", s->ipw);
        cJSON_AddNumberToObject(su, "ece", s->ece);
    } else {
        cJSON_AddNullToObject(su, "avg_power_W");
        cJSON_AddNullToObject(su, "ipw");
        cJSON_AddNullToObject(su, "ece");
    }
    cJSON_AddNumberToObject(su, "wall_s", c->wall_sum_s / n);
    double pk[QEIL_MAX_SAMPLES];
    uint32_t ks[QEIL_MAX_SAMPLES];
    int m = pass_at(ctx, c, n, budget, 1, pk, ks);
    if (m > 0) {
        cJSON *p = cJSON_AddObjectToObject(su, "pass_at_k");
        for (int i = 0; i < m; i++) {
            char key[16];
            snprintf(key, sizeof key, "%u", ks[i]);
            cJSON_AddNumberToObject(p, key, pk[i]);
        }
    } else {
        cJSON_AddNullToObject(su, "pass_at_k");
        cJSON_AddStringToObject(su, "pass_at_k_note",
                                "pass@k needs the full budget on every problem: --select majority");
    }
    if (!with_problems) return;
    cJSON *arr = cJSON_AddArrayToObject(o, "problems");
    for (uint32_t i = 0; i < n; i++) {
        const prob_rec *r = &c->recs[i];
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "id", t[i].id);
        cJSON_AddStringToObject(p, "gold", t[i].gold.text);
        if (r->chosen.has) cJSON_AddStringToObject(p, "chosen", r->chosen.text);
        else cJSON_AddNullToObject(p, "chosen");
        cJSON_AddBoolToObject(p, "correct", r->correct);
        cJSON_AddNumberToObject(p, "samples", r->samples);
        cJSON_AddNumberToObject(p, "tokens", (double)r->tokens);
        cJSON_AddStringToObject(p, "stage", qeil_select_stage_name(r->stage));
        cJSON_AddNumberToObject(p, "energy_J", r->energy_J);
        cJSON_AddNumberToObject(p, "latency_s", r->latency_s);
        cJSON_AddBoolToObject(p, "plan_feasible", r->feasible);
        cJSON_AddNumberToObject(p, "wall_s", r->wall_s);
        cJSON_AddItemToArray(arr, p);
    }
}

static void print_json(qeil_ctx *ctx, const eval_opts *o, const qeil_platform *pf, config *cf,
                       int n_cf, const task *t, uint32_t n, double mean_prompt)
{
    cJSON *j = cJSON_CreateObject();
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->sp.seed);
    cJSON_AddStringToObject(j, "version", qeil_version());
    cJSON_AddStringToObject(j, "seed", seed);
    cJSON_AddStringToObject(j, "model", o->model);
    cJSON_AddStringToObject(j, "tasks", o->tasks);
    cJSON_AddStringToObject(j, "platform", pf->name);
    cJSON_AddStringToObject(j, "prompt_format", EVAL_PROMPT_PREFIX "<question>" EVAL_PROMPT_SUFFIX);
    cJSON_AddNumberToObject(j, "samples", o->samples);
    cJSON_AddNumberToObject(j, "batch", o->batch);
    cJSON_AddNumberToObject(j, "max_tokens", o->max_tokens);
    cJSON_AddNumberToObject(j, "plan_gen_tokens", o->plan_gen_tokens);
    cJSON *warn = cJSON_AddArrayToObject(j, "warnings");
    if (o->warning[0]) cJSON_AddItemToArray(warn, cJSON_CreateString(o->warning));
    cJSON_AddNumberToObject(j, "mean_prompt_tokens", mean_prompt);
    cJSON *cp = cJSON_AddObjectToObject(j, "cascade_params");
    cJSON_AddNumberToObject(cp, "csvet_delta", o->tune.csvet_delta);
    cJSON_AddNumberToObject(cp, "csvet_delta_late", o->tune.csvet_delta_late);
    cJSON_AddNumberToObject(cp, "csvet_late_after", o->tune.csvet_late_after);
    cJSON_AddNumberToObject(cp, "arde_lambda", o->tune.arde_lambda);
    cJSON_AddBoolToObject(cp, "futility", o->tune.csvet_futility);
    cJSON *pv = cJSON_AddObjectToObject(j, "provenance");
    cJSON_AddStringToObject(pv, "energy_J", PROV_ENERGY);
    cJSON_AddStringToObject(pv, "avg_power_W", PROV_ENERGY);
    cJSON_AddStringToObject(pv, "latency_s", PROV_LATENCY);
    cJSON_AddStringToObject(pv, "ipw", PROV_ENERGY);
    cJSON_AddStringToObject(pv, "ece", PROV_ENERGY);
    cJSON_AddStringToObject(pv, "wall_s", PROV_WALL);
    if (!o->compare) {
        json_summary(j, ctx, &cf[0], t, n, o->samples, 1);
    } else {
        cJSON *arr = cJSON_AddArrayToObject(j, "configurations");
        for (int i = 0; i < n_cf; i++) {
            cJSON *c = cJSON_CreateObject();
            cJSON_AddStringToObject(c, "name", cf[i].name);
            json_summary(c, ctx, &cf[i], t, n, o->samples, 1);
            cJSON_AddItemToArray(arr, c);
        }
        const qeil_metrics_summary *s0 = &cf[0].sum, *s2 = &cf[n_cf - 1].sum;
        cJSON *v = cJSON_AddObjectToObject(j, "v2_vs_standard");
        add_num_or_null(v, "energy_reduction_pct",
                        100 * (1 - ratio_or_nan(s2->energy_per_problem_J, s0->energy_per_problem_J)));
        add_num_or_null(v, "latency_reduction_pct",
                        100 * (1 - ratio_or_nan(s2->latency_s, s0->latency_s)));
        add_num_or_null(v, "ipw_ratio", s0->power_valid && s2->power_valid
                                            ? ratio_or_nan(s2->ipw, s0->ipw) : NAN);
        cJSON_AddStringToObject(j, "note",
                                "energy, power, IPW, ECE and latency are modeled on the target "
                                "platform; wall_s is measured on this machine's CPU. All "
                                "configurations consume prefixes of one seeded sample stream "
                                "per problem.");
    }
    if (cli_json_print(j) != 0) fputs("qeil: out of memory printing JSON\n", stderr);
    cJSON_Delete(j);
}

/* "1.234 J" into b (static-size scratch of the caller). */
static const char *fmt_num(char *b, double v, const char *unit)
{
    snprintf(b, 48, "%.4g %s", v, unit);
    return b;
}

/* One line per problem for the last configuration (v2 under --compare). */
static void print_problems(const config *c, const task *t, uint32_t n)
{
    printf("  %-12s %-32s %8s %8s %3s %7s %-13s %10s\n", "ID", "QUESTION", "GOLD", "CHOSEN", "OK",
           "SAMPLES", "DECIDED BY", "ENERGY J");
    for (uint32_t i = 0; i < n; i++) {
        const prob_rec *r = &c->recs[i];
        char q[33];
        size_t k = 0;
        for (const char *p = t[i].question; *p && k + 1 < sizeof q; p++)
            q[k++] = (*p == '\n' || *p == '\t') ? ' ' : *p;
        q[k] = '\0';
        if (strlen(t[i].question) >= sizeof q) memcpy(q + sizeof q - 4, "...", 4);
        /* ids and questions are file data: no control bytes to the terminal */
        printf("  %-12.12s %-32s %8.8s %8.8s %3s %7u %-13s %10.4g\n", cli_term(t[i].id),
               cli_term(q), cli_term(t[i].gold.text),
               r->chosen.has ? cli_term(r->chosen.text) : "(none)", r->correct ? "yes" : "no",
               r->samples, qeil_select_stage_name(r->stage), r->energy_J);
    }
    printf("\n");
}

static void print_table(qeil_ctx *ctx, const eval_opts *o, const qeil_platform *pf, config *cf,
                        int n_cf, const task *t, uint32_t n, double mean_prompt)
{
    printf("qeil eval: %u problems from %s, model %s\n", n, cli_term(o->tasks), cli_term(o->model));
    printf("  K = %u samples, batch %u, max %u tokens, temp %.2f, seed %llu, platform %s\n",
           o->samples, o->batch, o->max_tokens, (double)o->sp.temp,
           (unsigned long long)o->sp.seed, pf->name);
    printf("  planning workload: %.0f prompt tokens (mean), %u gen tokens, %u samples\n",
           mean_prompt, o->plan_gen_tokens, o->samples);
    if (o->warning[0]) printf("  warning: %s\n", o->warning);
    printf("\n");
    if (o->verbose) print_problems(&cf[n_cf - 1], t, n);
    if (!o->compare) {
        const config *c = &cf[0];
        const qeil_metrics_summary *s = &c->sum;
        char b[48];
        printf("  plan %s%s (decode batch %u): %.4g J, %.4g s on the planning workload "
               "[modeled]\n  select %s\n\n",
               plan_name(c->plan_method),
               c->plan_method != QEIL_METHOD_PGSAM ? ""
               : c->plan_bounded                   ? ", lowest energy within --max-latency"
                                                   : ", knee",
               c->plan.batch, c->plan_ev.energy_J, c->plan_ev.latency_s,
               qeil_select_method_name(c->select));
        printf("  %-22s %.1f %% (%u/%u)\n", "accuracy", s->accuracy_pct,
               (unsigned)(s->accuracy * s->n_problems + 0.5), s->n_problems);
        double pk[QEIL_MAX_SAMPLES];
        uint32_t ks[QEIL_MAX_SAMPLES];
        int m = pass_at(ctx, c, n, o->samples, 0, pk, ks);
        if (m > 0) {
            printf("  %-22s", "pass@k");
            for (int i = 0; i < m; i++) printf(" @%u %.1f %%", ks[i], 100 * pk[i]);
            printf("\n");
        } else {
            printf("  %-22s (pass@k needs --select majority: the full budget on every problem)\n",
                   "pass@k");
        }
        printf("  %-22s %.2f\n", "samples/problem", s->mean_samples);
        printf("  %-22s %.1f\n", "tokens/problem", s->mean_tokens);
        printf("  %-22s", "decided by");
        for (int k = 0; k < QEIL_STAGE_COUNT; k++) {
            uint32_t cnt = 0;
            for (uint32_t i = 0; i < n; i++) cnt += c->recs[i].stage == (qeil_select_stage)k;
            if (cnt) printf(" %s %u", qeil_select_stage_name((qeil_select_stage)k), cnt);
        }
        printf("\n");
        printf("  %-22s %-14s [modeled, %s]\n", "energy/problem",
               fmt_num(b, s->energy_per_problem_J, "J"), pf->name);
        if (s->power_valid)
            printf("  %-22s %-14s [modeled]\n", "average power", fmt_num(b, s->avg_power_W, "W"));
        printf("  %-22s %-14s [modeled, %s]\n", "latency/problem", fmt_num(b, s->latency_s, "s"),
               pf->name);
        printf("  %-22s %-14s [measured on this machine's CPU, not the target]\n",
               "wall time/problem", fmt_num(b, c->wall_sum_s / n, "s"));
        if (s->power_valid) {
            printf("  %-22s %-14s [modeled power]\n", "IPW", fmt_num(b, s->ipw, "%/W"));
            printf("  %-22s %-14s [modeled energy]\n", "ECE", fmt_num(b, s->ece, "correct/J"));
        }
        return;
    }
    printf("  %-9s %-9s %-9s %7s %8s %8s %12s %12s %11s %9s\n", "CONFIG", "PLAN", "SELECT",
           "ACC %", "SAMPLES", "TOKENS", "ENERGY J", "LATENCY s", "WALL s", "IPW %/W");
    printf("  %-9s %-9s %-9s %7s %8s %8s %12s %12s %11s %9s\n", "", "", "", "", "/problem",
           "/problem", "modeled", "modeled", "measured", "modeled");
    for (int i = 0; i < n_cf; i++) {
        const qeil_metrics_summary *s = &cf[i].sum;
        char ipw[32];
        if (s->power_valid) snprintf(ipw, sizeof ipw, "%.4g", s->ipw);
        else snprintf(ipw, sizeof ipw, "n/a");
        printf("  %-9s %-9s %-9s %7.1f %8.2f %8.1f %12.4g %12.4g %11.4g %9s\n", cf[i].name,
               plan_name(cf[i].plan_method), qeil_select_method_name(cf[i].select),
               s->accuracy_pct, s->mean_samples, s->mean_tokens, s->energy_per_problem_J,
               s->latency_s, cf[i].wall_sum_s / n, ipw);
    }
    const qeil_metrics_summary *s0 = &cf[0].sum, *s2 = &cf[n_cf - 1].sum;
    double er = 100 * (1 - ratio_or_nan(s2->energy_per_problem_J, s0->energy_per_problem_J));
    double lr = 100 * (1 - ratio_or_nan(s2->latency_s, s0->latency_s));
    double ir = s0->power_valid && s2->power_valid ? ratio_or_nan(s2->ipw, s0->ipw) : NAN;
    printf("\n  v2 vs standard: energy %s%.1f %% (modeled), latency %s%.1f %% (modeled), ",
           er >= 0 ? "-" : "+", fabs(er), lr >= 0 ? "-" : "+", fabs(lr));
    if (isfinite(ir)) printf("IPW x%.2f (modeled power)\n", ir);
    else printf("IPW ratio n/a (an IPW is 0 or undefined)\n");
    if (cf[2].plan_bounded)
        printf("  v2 plan: lowest-energy PGSAM plan within %.4g s (%s)\n", cf[2].max_latency_s,
               o->max_latency_s > 0 ? "--max-latency" : "the standard plan's latency");
    else
        printf("  v2 plan: knee of the PGSAM front (no plan within %.4g s)\n", cf[2].max_latency_s);
    double pk[QEIL_MAX_SAMPLES];
    uint32_t ks[QEIL_MAX_SAMPLES];
    int m = pass_at(ctx, &cf[0], n, o->samples, 0, pk, ks);
    if (m > 0) {
        printf("  pass@k (standard, all K samples):");
        for (int i = 0; i < m; i++) printf(" @%u %.1f %%", ks[i], 100 * pk[i]);
        printf("\n");
    }
    printf("\n  note: energy, power, IPW and latency are MODELED for %s (each plan applied\n"
           "  to the work actually executed); accuracy, samples and tokens come from the real\n"
           "  model; wall time is MEASURED on this machine's CPU (not the target platform).\n"
           "  All configurations consume prefixes of one seeded sample stream per problem,\n"
           "  which equals running them separately with the same seeds.\n",
           pf->name);
}

/* Progress on stderr: a redrawn bar on a terminal; otherwise about ten
 * plain lines, so logs stay readable. Accuracy is the last configuration's
 * (v2 under --compare). */
static void progress(uint32_t done, uint32_t n, const qeil_metrics_acc *a, int tty)
{
    double acc = a->n_problems ? 100.0 * a->n_correct / a->n_problems : 0;
    if (tty) {
        char bar[21];
        uint32_t fill = (uint32_t)(20ull * done / n);
        for (uint32_t k = 0; k < 20; k++) bar[k] = k < fill ? '#' : '.';
        bar[20] = '\0';
        fprintf(stderr, "\r[%s] problem %u/%u  accuracy %.1f %%%s", bar, done, n, acc,
                done == n ? "\n" : "");
    } else {
        uint32_t step = n >= 10 ? n / 10 : 1;
        if (done % step == 0 || done == n)
            fprintf(stderr, "eval: problem %u/%u  accuracy %.1f %%\n", done, n, acc);
    }
    fflush(stderr);
}

/* ------------------------------------------------------------------------ */
/* Main                                                                     */
/* ------------------------------------------------------------------------ */

int cmd_eval(int argc, char **argv)
{
    eval_opts o;
    memset(&o, 0, sizeof o);
    o.platform = QEIL_DEFAULT_PLATFORM;
    o.samples = 8;
    o.batch = EVAL_DEFAULT_BATCH;
    o.max_tokens = 128;
    o.select = QEIL_SELECT_CASCADE;
    o.plan = QEIL_METHOD_PGSAM;
    o.sp = qeil_sampler_default_params();
    o.sp.seed = EVAL_DEFAULT_SEED;
    o.tune = qeil_select_default_params();
    int done = 0, rc = parse_args(argc, argv, &o, &done);
    if (rc != CLI_OK || done) return rc;
    if (o.batch > o.samples) o.batch = o.samples;

    qeil_ctx *ctx = qeil_ctx_create(NULL);
    if (!ctx) return cli_fail(CMD, "out of memory");
    task *t = NULL;
    uint32_t n = 0;
    qeil_engine *e = NULL;
    gen_state g;
    memset(&g, 0, sizeof g);
    config cf[3];
    memset(cf, 0, sizeof cf);
    int n_cf = 0;
    rc = CLI_FAIL;

    qeil_platform pf;
    if (qeil_platform_load(ctx, o.platform, &pf) != QEIL_OK) {
        cli_fail(CMD, "--platform: %s", qeil_ctx_errmsg(ctx));
        goto out;
    }
    if (tasks_read(ctx, o.tasks, o.limit, &t, &n) != 0) goto out;

    qeil_engine_params ep = qeil_engine_default_params();
    ep.n_threads = o.threads;
    ep.n_seq = 1 + o.batch;
    if (qeil_engine_open(ctx, o.model, &ep, &e) != QEIL_OK) {
        cli_fail(CMD, "%s", qeil_ctx_errmsg(ctx));
        goto out;
    }
    const qeil_model_desc *md = qeil_engine_desc(e);
    g.ctx = ctx;
    g.e = e;
    g.tk = qeil_engine_tokenizer(e);
    g.n_vocab = qeil_engine_n_vocab(e);
    g.n_ctx = qeil_engine_n_ctx(e);
    g.eos = qeil_tokenizer_eos(g.tk);
    g.slots = o.batch;
    g.max_tokens = o.max_tokens;
    g.budget = o.samples;
    g.seed = o.sp.seed;

    /* ---- tokenize every prompt ---- */
    double sum_prompt = 0;
    uint32_t max_prompt = 0;
    for (uint32_t i = 0; i < n; i++) {
        size_t ql = strlen(t[i].question);
        size_t pl = ql + sizeof EVAL_PROMPT_PREFIX + sizeof EVAL_PROMPT_SUFFIX;
        char *p = malloc(pl);
        size_t cap = pl + 8, got = 0;
        t[i].ids = malloc(sizeof(int32_t) * cap);
        if (!p || !t[i].ids) {
            free(p);
            cli_fail(CMD, "out of memory");
            goto out;
        }
        snprintf(p, pl, "%s%s%s", EVAL_PROMPT_PREFIX, t[i].question, EVAL_PROMPT_SUFFIX);
        /* the question is data: special-token text in it stays text */
        qeil_status st = qeil_tokenizer_encode(ctx, g.tk, p, -1, 0, t[i].ids, cap, &got);
        free(p);
        if (st != QEIL_OK) {
            cli_fail(CMD, "%s:%u: question: %s", o.tasks, t[i].line, qeil_ctx_errmsg(ctx));
            goto out;
        }
        if (got == 0 || got >= g.n_ctx) {
            cli_fail(CMD, "%s:%u: prompt of %zu tokens does not fit the context of %u tokens",
                     o.tasks, t[i].line, got, g.n_ctx);
            goto out;
        }
        t[i].n_ids = (uint32_t)got;
        sum_prompt += (double)got;
        if (got > max_prompt) max_prompt = (uint32_t)got;
    }
    double mean_prompt = sum_prompt / n;

    /* ---- sampler slots and buffers ---- */
    qeil_sampler_params sp = o.sp;
    g.smp = calloc(g.slots, sizeof *g.smp);
    g.hist = calloc(g.slots, sizeof *g.hist);
    g.hist_cap = (size_t)max_prompt + o.max_tokens + 1;
    g.hlen = calloc(g.slots, sizeof *g.hlen);
    g.logits0 = malloc(sizeof(float) * g.n_vocab);
    g.logits = malloc(sizeof(float) * g.n_vocab * g.slots);
    g.row = calloc(g.slots, sizeof *g.row);
    g.seqs = calloc(g.slots, sizeof *g.seqs);
    g.rowslot = calloc(g.slots, sizeof *g.rowslot);
    g.toks = calloc(g.slots, sizeof *g.toks);
    g.active = calloc(g.slots, sizeof *g.active);
    g.cache = calloc(o.samples, sizeof *g.cache);
    if (!g.smp || !g.hist || !g.hlen || !g.logits0 || !g.logits || !g.row || !g.seqs ||
        !g.rowslot || !g.toks || !g.active || !g.cache) {
        cli_fail(CMD, "out of memory");
        goto out;
    }
    for (uint32_t j = 0; j < g.slots; j++) {
        if (qeil_sampler_create(ctx, &sp, g.n_vocab, &g.smp[j]) != QEIL_OK) {
            rc = cli_usage_error(CMD, "%s", qeil_ctx_errmsg(ctx));
            goto out;
        }
        if (!(g.hist[j] = malloc(sizeof(int32_t) * g.hist_cap))) {
            cli_fail(CMD, "out of memory");
            goto out;
        }
    }

    /* ---- plan once on the planning workload ---- */
    qeil_workload_params wp = qeil_workload_default_params();
    wp.prompt_tokens = (uint32_t)(mean_prompt + 0.5);
    /* -n beyond the context is not an error: generation stops at the
     * context; plan with the tokens that fit after the mean prompt (which
     * is shorter than the context: every prompt was checked above) */
    uint32_t room = md->ctx_max < g.n_ctx ? md->ctx_max : g.n_ctx;
    room = room > wp.prompt_tokens ? room - wp.prompt_tokens : 1;
    o.plan_gen_tokens = o.max_tokens < room ? o.max_tokens : room;
    if (o.plan_gen_tokens < o.max_tokens) {
        snprintf(o.warning, sizeof o.warning,
                 "-n %u does not fit the context of %u tokens after a prompt of %u tokens "
                 "(mean): generation stops at the context; planning with %u generated tokens",
                 o.max_tokens, md->ctx_max < g.n_ctx ? md->ctx_max : g.n_ctx, wp.prompt_tokens,
                 o.plan_gen_tokens);
        fprintf(stderr, "qeil eval: warning: %s\n", o.warning);
    }
    wp.gen_tokens = o.plan_gen_tokens;
    wp.samples = o.samples;
    qeil_workload wl;
    if (qeil_workload_build(ctx, md, &wp, &wl) != QEIL_OK) {
        cli_fail(CMD, "planning workload: %s", qeil_ctx_errmsg(ctx));
        goto out;
    }
    if (o.compare) {
        cf[0] = (config){.name = "standard", .plan_method = QEIL_METHOD_STANDARD,
                         .select = QEIL_SELECT_MAJORITY};
        cf[1] = (config){.name = "v1", .plan_method = QEIL_METHOD_GREEDY,
                         .select = QEIL_SELECT_MAJORITY};
        cf[2] = (config){.name = "v2", .plan_method = QEIL_METHOD_PGSAM,
                         .select = QEIL_SELECT_CASCADE};
        n_cf = 3;
    } else {
        cf[0] = (config){.name = "eval", .plan_method = o.plan, .select = o.select};
        n_cf = 1;
    }
    for (int i = 0; i < n_cf; i++) {
        /* --compare: v2 takes the lowest-energy PGSAM plan that is no slower
         * than the standard plan on the planning workload (the knee when
         * none is), unless --max-latency says otherwise */
        cf[i].max_latency_s = o.max_latency_s;
        if (o.compare && i == 2 && o.max_latency_s <= 0) cf[i].max_latency_s = cf[0].plan_ev.latency_s;
        if (config_setup(ctx, &cf[i], &pf, &wl, &o, n) != QEIL_OK) {
            cli_fail(CMD, "%s plan on %s: %s", plan_name(cf[i].plan_method), pf.name,
                     qeil_ctx_errmsg(ctx));
            goto out;
        }
    }

    /* ---- the problems ---- */
    uint32_t n_batch = ep.n_batch ? ep.n_batch : 512;
    int tty = isatty(fileno(stderr));
    for (uint32_t i = 0; i < n; i++) {
        g.t = &t[i];
        g.problem = i;
        if (gen_prefill(&g, n_batch) != QEIL_OK) {
            cli_fail(CMD, "task %s (line %u): %s", t[i].id, t[i].line, g.errmsg);
            goto out;
        }
        for (int c = 0; c < n_cf; c++)
            if (config_run(ctx, &cf[c], &g, &pf, md, i) != CLI_OK) goto out;
        progress(i + 1, n, &cf[n_cf - 1].acc, tty);
    }
    for (int c = 0; c < n_cf; c++) {
        if (qeil_metrics_summarize(ctx, &cf[c].acc, &cf[c].sum) != QEIL_OK) {
            cli_fail(CMD, "%s", qeil_ctx_errmsg(ctx));
            goto out;
        }
    }
    if (o.json) print_json(ctx, &o, &pf, cf, n_cf, t, n, mean_prompt);
    else print_table(ctx, &o, &pf, cf, n_cf, t, n, mean_prompt);
    rc = CLI_OK;

out:
    for (int c = 0; c < 3; c++) {
        qeil_select_free(cf[c].sel[0]);
        qeil_select_free(cf[c].sel[1]);
        free(cf[c].recs);
    }
    for (uint32_t j = 0; j < g.slots; j++) {
        if (g.smp) qeil_sampler_free(g.smp[j]);
        if (g.hist) free(g.hist[j]);
    }
    for (uint32_t k = 0; g.cache && k < o.samples; k++) free(g.cache[k].text);
    free(g.smp);
    free(g.hist);
    free(g.hlen);
    free(g.logits0);
    free(g.logits);
    free(g.row);
    free(g.seqs);
    free(g.rowslot);
    free(g.toks);
    free(g.active);
    free(g.cache);
    qeil_engine_free(e);
    tasks_free(t, n);
    qeil_ctx_free(ctx);
    return rc;
}
