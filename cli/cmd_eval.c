/* cmd_eval.c — `qeil eval`: repeated sampling with verification on a task
 * file, a thin caller of the runtime (include/qeil/runtime.h): options,
 * the task file (qeil_tasks_read), one runtime request per problem and one
 * runtime configuration per plan/selection pair, the metrics and the
 * output. The runtime prefills each prompt once, forks it into sample
 * slots decoded in batches, runs the selection and prices the executed
 * work with the energy model. Energy and target-platform latency are
 * modeled; wall time is measured on this machine's CPU. docs/eval.md. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "opt.h"
#include "svg.h"
#include "qeil/runtime.h"

#define CMD "eval"

/* The prompt format of every task: QEIL_TASK_PROMPT_PREFIX <question>
 * QEIL_TASK_PROMPT_SUFFIX (runtime.h). */
#define EVAL_MAX_TASKS QEIL_TASKS_MAX         /* problems per task file */
#define EVAL_MAX_TOKENS QEIL_RUNTIME_MAX_TOKENS /* -n upper bound */
#define EVAL_DEFAULT_SEED 42u
#define EVAL_DEFAULT_BATCH 4u


/* ------------------------------------------------------------------------ */
/* Options                                                                  */
/* ------------------------------------------------------------------------ */

/* A problem's recoveries from failed devices (docs/runtime.md). */
typedef struct {
    qeil_runtime_recovery r[QEIL_RUNTIME_MAX_RECOVERIES];
    uint32_t n;
} prob_recoveries;

typedef struct {
    const char *model, *tasks, *platform, *sensors_root, *shots_file, *placement;
    const char *exec_plan; /* --plan FILE|auto: the plan run (its maps become the placement) */
    int platform_given;
    char plan_src[512];
    uint32_t samples, limit, batch, max_tokens, shots;
    qeil_tasks_format format;
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
    int replan;                      /* --replan */
    const char *svg;                 /* --svg FILE */
    const qeil_runtime *rt;          /* for the re-planning events in the output */
    qeil_tasks_format format_read;   /* the task file's format, detected or given */
    const char *first_prompt;        /* problem 0's prompt text (for -v) */
    uint32_t first_prompt_tokens;
    uint32_t *shot_lines;            /* [n * shots]: line of each exemplar in --shots-file */
    const prob_recoveries *recs;     /* [problems]: set before the output */
    const char *error;               /* the failure that ended the run early, or NULL */
} eval_opts;

/* --format and --select: the library's parsers and messages */
static int parse_format(const char *cmd, const char *opt, const char *v, void *o)
{
    qeil_ctx *c = qeil_ctx_create(NULL);
    qeil_status st = c ? qeil_tasks_format_parse(c, v, &((eval_opts *)o)->format) : QEIL_ERR_NOMEM;
    if (st != QEIL_OK) cli_usage_error(cmd, "%s: %s", opt, c ? qeil_ctx_errmsg(c) : "out of memory");
    qeil_ctx_free(c);
    return st == QEIL_OK ? 0 : CLI_USAGE;
}

static int parse_select(const char *cmd, const char *opt, const char *v, void *o)
{
    qeil_ctx *c = qeil_ctx_create(NULL);
    qeil_status st = c ? qeil_select_method_parse(c, v, &((eval_opts *)o)->select) : QEIL_ERR_NOMEM;
    if (st != QEIL_OK) cli_usage_error(cmd, "%s: %s", opt, c ? qeil_ctx_errmsg(c) : "out of memory");
    qeil_ctx_free(c);
    if (st == QEIL_OK) ((eval_opts *)o)->select_given = 1;
    return st == QEIL_OK ? 0 : CLI_USAGE;
}

/* --plan: the method of the plan that prices (pgsam|greedy|standard), or a
 * plan to run, FILE|auto (checked when the model is known). */
static int parse_plan(const char *cmd, const char *opt, const char *v, void *vo)
{
    eval_opts *o = vo;
    if (strcmp(v, "pgsam") == 0) o->plan = QEIL_METHOD_PGSAM;
    else if (strcmp(v, "greedy") == 0) o->plan = QEIL_METHOD_GREEDY;
    else if (strcmp(v, "standard") == 0) o->plan = QEIL_METHOD_STANDARD;
    else if (strcmp(v, "auto") == 0 || access(v, R_OK) == 0) o->exec_plan = v;
    else
        return cli_usage_error(cmd,
                               "%s: '%s' is not one of pgsam|greedy|standard (the plan that "
                               "prices), auto, or a readable plan file",
                               opt, v);
    if (!o->exec_plan) o->plan_given = 1;
    return 0;
}

/* The limits in the help are the #defines and QEIL_* maxima above. */
#define T eval_opts
static const cli_optdef eval_table[] = {
    {CLI_STR("--model", "-m", "FILE", "GGUF model (llama, qwen2, gpt2)", T, model)},
    {CLI_STR("--tasks", NULL, "FILE",
             "JSONL, one task per line: qeil's {\"id\",\"question\",\n"
             "\"answer\":\"42\",\"kind\":\"numeric\"|\"choice\"}, GSM8K\n"
             "{\"question\",\"answer\":\"... #### 72\"} or ARC-Challenge\n"
             "(AI2 or flattened, \"answerKey\")",
             T, tasks)},
    {CLI_FN("--format", NULL, "F", "auto|qeil|gsm8k|arc (default auto: from the first line)",
            parse_format)},
    {CLI_U64("--shots", NULL, "N",
             "few-shot exemplars before each question (default 0;\n"
             "0..64), drawn with --seed from --shots-file",
             T, shots, 0, QEIL_TASKS_MAX_SHOTS)},
    {CLI_STR("--shots-file", NULL, "FILE",
             "tasks of the same format (a train split) to draw from;\n"
             "an exemplar's question is never the task's",
             T, shots_file)},
    {CLI_U64("--samples", "-k", "K", "sample budget per problem (default 8; 1..256)", T, samples,
             1, QEIL_MAX_SAMPLES)},
    {CLI_FN("--select", NULL, "M", "cascade|majority|esc|adaptive|first (default cascade)",
            parse_select)},
    {CLI_STR("--platform", NULL, "P",
             "catalog name or profile JSON (default " QEIL_DEFAULT_PLATFORM ")", T, platform),
     .given = CLI_GIVEN(T, platform_given)},
    {CLI_FN("--plan", NULL, "M",
            "pgsam|greedy|standard (default pgsam: the knee plan)\n"
            "prices; or FILE|auto: run a plan's prefill and decode\n"
            "maps on this machine (FILE from `qeil plan --output\n"
            "json` on --platform FILE, a profile of this machine;\n"
            "auto: PGSAM's knee plan on --platform, or on a quick\n"
            "probe when none is given); not with --placement",
            parse_plan)},
    {CLI_F64("--max-latency", NULL, "S",
             "pgsam: the lowest-energy plan within S seconds on the\n"
             "planning workload instead of the knee (1e-9..1e9)",
             T, max_latency_s, 1e-9, 1e9)},
    {CLI_FLAG("--compare", NULL,
              "standard (standard plan, majority of K), v1 (greedy\n"
              "plan, majority), v2 (PGSAM plan no slower than the\n"
              "standard plan, else the knee; cascade) on the same\n"
              "samples; not with --select/--plan",
              T, compare)},
    {CLI_U64("--limit", NULL, "N", "first N tasks only (1..100000)", T, limit, 1, EVAL_MAX_TASKS)},
    {CLI_U64("--batch", NULL, "B", "samples decoded together on this CPU (default 4; 1..64)", T,
             batch, 1, QEIL_SELECT_MAX_BATCH)},
    {CLI_U64("--threads", "-t", "N", "worker threads (default 0 = all online CPUs)", T, threads,
             0, QEIL_ENGINE_MAX_THREADS)},
    {CLI_F32("--temp", NULL, "T", "temperature (default 0.8; 0..100)", T, sp.temp, 0,
             QEIL_SAMPLER_MAX_TEMP, 0, "0..100")},
    {CLI_U64("--top-k", NULL, "K", "top-k, 0 = off (default 40)", T, sp.top_k, 0,
             QEIL_SAMPLER_MAX_VOCAB)},
    {CLI_F32("--top-p", NULL, "P", "nucleus mass, 1 = off (default 0.95; (0, 1])", T, sp.top_p, 0,
             1, CLI_OPT_LO_OPEN, "(0, 1]")},
    {CLI_U64("--seed", NULL, "S", "seed of plans and samples (default 42)", T, sp.seed, 0,
             UINT64_MAX)},
    {CLI_U64("--max-tokens", "-n", "N", "tokens per sample at most (default 128; 1..65536)", T,
             max_tokens, 1, EVAL_MAX_TOKENS)},
    {CLI_STR("--sensors-root", NULL, "DIR",
             "read energy sensors under DIR instead of / (fixture trees)", T, sensors_root)},
    {CLI_STR("--placement", NULL, "SPEC",
             "where the work units run on this machine, e.g. all:vk0\n"
             "or emb..b7:cpu,b8..head:vk0 (default all:cpu; qeil\n"
             "devices); the plans stay modeled on --platform",
             T, placement)},
    {CLI_FLAG("--replan", NULL,
              "re-plan between problems when measured decode steps\n"
              "drift from the plan's prediction (for a platform that\n"
              "describes this machine, e.g. from qeil probe)",
              T, replan)},
    {CLI_ENUM("--output", NULL, "FMT", "table|json (default table)", T, json, "table|json")},
    {CLI_STR("--svg", NULL, "FILE", "also draw pass@k and energy per configuration (SVG)", T, svg)},
    {CLI_FLAG("--verbose", "-v",
              "table: the prompt template and the first prompt, and\n"
              "one line per problem (question, gold, chosen answer,\n"
              "samples, deciding stage, modeled energy)",
              T, verbose)},
    {CLI_F64("--csvet-delta", NULL, "D",
             "cascade: risk of CSVET's posterior stop (default 0.1;\n0..0.5, 0 = rule off)", T,
             tune.csvet_delta, 0, 0.5)},
    {CLI_F64("--csvet-delta-late", NULL, "D",
             "... once --csvet-late-after samples are drawn\n(default 0.4; 0..0.5)", T,
             tune.csvet_delta_late, 0, 0.5)},
    {CLI_U64("--csvet-late-after", NULL, "N", "(default 7; 1..1024)", T, tune.csvet_late_after, 1,
             QEIL_SELECT_MAX_BUDGET)},
    {CLI_F64("--arde-lambda", NULL, "L",
             "cascade: ARDE votes per s.d. of log-likelihood\n"
             "(default 0.5; 0..100, 0 = votes and penalties only)",
             T, tune.arde_lambda, 0, 100)},
    {CLI_FLAG("--futility", NULL, "cascade: CSVET rule (c), stop once EAC cannot accept", T,
              tune.csvet_futility)},
};
#undef T

static const cli_command eval_cmd = {
    CMD,
    "usage: qeil eval -m FILE --tasks FILE.jsonl [options]\n\n"
    "Repeated sampling with verification: for each task, draw up to K samples\n"
    "(prompt \"Q: <question>\\nA:\", prefilled once and forked into the samples), pick\n"
    "an answer with the selection method, and score it against the reference.\n"
    "Energy and target-platform latency are MODELED (the chosen plan on --platform,\n"
    "applied to the work actually executed); wall time is MEASURED on this machine's\n"
    "CPU, not on the target platform.\n",
    eval_table,
    CLI_NOPTS(eval_table),
    "A sample stops at EOS, at \"\\n\\n\" or \"Q:\" after its \"####\" answer line, or\n"
    "at -n tokens. Progress goes to stderr.\n\n"
    "examples:\n"
    "  qeil eval -m models/qeil-demo.gguf --tasks data/tasks/arith.jsonl --limit 50\n"
    "  qeil eval -m models/qeil-demo.gguf --tasks data/tasks/arith.jsonl --compare\n"
    "  qeil eval -m model.gguf --tasks gsm8k/test.jsonl --shots 5 \\\n"
    "            --shots-file gsm8k/train.jsonl --samples 8 --compare\n",
    NULL,
};

static int parse_args(int argc, char **argv, eval_opts *o, int *done)
{
    *done = 0;
    int rc = cli_opt_parse(&eval_cmd, argc, argv, o);
    if (rc == CLI_OPT_HELP) *done = 1;
    if (rc != CLI_OK) return rc == CLI_OPT_HELP ? CLI_OK : rc;
    if (!o->model) return cli_usage_error(CMD, "-m FILE is required");
    if (!o->tasks) return cli_usage_error(CMD, "--tasks FILE is required");
    if (o->shots > 0 && !o->shots_file)
        return cli_usage_error(CMD, "--shots %u needs --shots-file FILE (the exemplars)", o->shots);
    if (o->shots_file && o->shots == 0)
        return cli_usage_error(CMD, "--shots-file needs --shots N (1..%u exemplars per prompt)",
                               QEIL_TASKS_MAX_SHOTS);
    if (o->compare && (o->select_given || o->plan_given))
        return cli_usage_error(CMD, "--compare fixes the plan and selection of each "
                                    "configuration; drop --select/--plan");
    return CLI_OK;
}


/* ------------------------------------------------------------------------ */
/* Configurations: a plan, a selection method, their outcomes               */
/* ------------------------------------------------------------------------ */

/* The run-time metrics eval averages over problems (docs/runtime.md). */
enum {
    UM_DASI_PF_PRED, UM_DASI_PF_MEAS, UM_DASI_DC_PRED, UM_DASI_DC_MEAS, UM_PHI_PRED, UM_PHI_MEAS,
    UM_TEMP, UM_RHO_PRED, UM_RHO_MEAS, UM_CPQ_PRED, UM_CPQ_MEAS, UM_COUNT
};

static void um_values(const qeil_runtime_unit_metrics *m, double *v)
{
    const double x[UM_COUNT] = {m->dasi_pred[0], m->dasi_meas[0], m->dasi_pred[1],
                                m->dasi_meas[1], m->phi_pred,     m->phi_meas,
                                m->temp_C,       m->rho_pred,     m->rho_meas,
                                m->cpq_pred,     m->cpq_meas};
    memcpy(v, x, sizeof x);
}

typedef struct {
    qeil_answer chosen;
    int correct;
    uint32_t samples, n_correct;
    uint64_t tokens;
    qeil_select_stage stage;
    double energy_J, latency_s, wall_s; /* modeled, modeled, measured */
    qeil_sense_measure meas;            /* measured on this machine: prefill + decode */
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
    uint32_t index;       /* the runtime's configuration */
    qeil_metrics_acc acc;
    double wall_sum_s;
    prob_rec *recs;
    int full_budget; /* every problem drew the whole budget: pass@k is defined */
    qeil_metrics_summary sum;
    /* measured on this machine's CPU meter, summed over problems */
    qeil_sense_measure pf_meas, dc_meas;
    uint64_t pf_tokens, dc_tokens;
    const char *mprov, *mcov; /* the meter's provenance (NULL: none), coverage */
    /* DASI, Φ, CPQ per platform unit (qeil_runtime_unit_metrics_get), summed
     * over the problems where finite: um_sum[d][k], um_n[d][k], k one of UM_* */
    qeil_runtime_unit_metrics um_last[QEIL_MAX_UNITS];
    uint32_t n_um;
    double um_sum[QEIL_MAX_UNITS][UM_COUNT];
    uint32_t um_n[QEIL_MAX_UNITS][UM_COUNT];
} config;

static const char *plan_name(qeil_plan_method m)
{
    return m == QEIL_METHOD_PGSAM ? "pgsam" : m == QEIL_METHOD_GREEDY ? "greedy" : "standard";
}

/* Plan configuration c in the runtime; CLI_OK or CLI_FAIL (printed). */
static int config_setup(qeil_ctx *ctx, qeil_runtime *rt, config *c, const qeil_workload_params *wp,
                        const eval_opts *o, uint32_t n_tasks)
{
    qeil_runtime_config rc = qeil_runtime_default_config();
    rc.plan_method = c->plan_method;
    rc.select = c->select;
    rc.plan_seed = o->sp.seed;
    rc.max_latency_s = c->max_latency_s;
    rc.knee_fallback = !(o->max_latency_s > 0); /* only the user's bound is an error */
    const qeil_platform *pf = qeil_runtime_platform(rt);
    qeil_runtime_config_info info;
    qeil_status st = qeil_runtime_add_config(rt, &rc, wp, &c->index);
    if (st == QEIL_ERR_RANGE && !rc.knee_fallback) /* name the option, not the field */
        return cli_fail(CMD, "%s plan on %s: --max-latency: no plan on the front is within %g "
                             "s on the planning workload",
                        plan_name(c->plan_method), pf->name, c->max_latency_s);
    if (st != QEIL_OK || qeil_runtime_config_get(rt, c->index, &info) != QEIL_OK)
        return cli_fail(CMD, "%s plan on %s: %s", plan_name(c->plan_method), pf->name,
                        qeil_ctx_errmsg(ctx));
    c->plan = info.plan;
    c->plan_ev = info.plan_ev;
    c->plan_bounded = info.plan_bounded;
    qeil_metrics_init(&c->acc);
    c->full_budget = 1;
    c->pf_meas = c->dc_meas = (qeil_sense_measure){1, 0, 0, 0};
    c->mprov = qeil_runtime_meter_provenance(rt);
    c->mcov = qeil_runtime_meter_covers(rt);
    c->recs = qeil_calloc(ctx, n_tasks, sizeof *c->recs);
    return c->recs ? CLI_OK : cli_fail(CMD, "out of memory");
}

/* Select an answer for the current problem (a begun runtime request) and
 * record the outcome. */
static int config_run(qeil_ctx *ctx, qeil_runtime *rt, config *c, const qeil_task *t,
                      uint32_t budget, uint32_t pi, qeil_status *sel_st)
{
    qeil_runtime_result res;
    qeil_status st = qeil_runtime_select(rt, c->index, &res);
    *sel_st = st;
    if (st == QEIL_ERR_INFEASIBLE) /* the plan, not the task's text, is at fault */
        return cli_fail(CMD, "task %s: %s", t->id, qeil_ctx_errmsg(ctx));
    if (st != QEIL_OK)
        return cli_fail(CMD, "task %s (line %u): %s", t->id, t->line, qeil_ctx_errmsg(ctx));
    prob_rec *r = &c->recs[pi];
    r->chosen = res.answer;
    r->correct = res.correct;
    r->samples = res.n_samples;
    r->tokens = res.n_tokens;
    r->stage = res.stage;
    r->n_correct = res.n_correct;
    if (res.n_samples < budget) c->full_budget = 0;
    r->wall_s = res.wall_s;
    r->energy_J = res.energy_J;
    r->latency_s = res.latency_s;
    r->feasible = res.plan_feasible;
    r->meas = qeil_sense_measure_add(res.prefill_meas, res.decode_meas);
    c->pf_meas = qeil_sense_measure_add(c->pf_meas, res.prefill_meas);
    c->dc_meas = qeil_sense_measure_add(c->dc_meas, res.decode_meas);
    c->pf_tokens += res.n_prompt;
    c->dc_tokens += res.n_tokens;

    qeil_problem_record pr = {r->correct, r->samples, r->tokens, r->energy_J, r->latency_s,
                              res.energy_src};
    if (qeil_metrics_add(ctx, &c->acc, &pr) != QEIL_OK)
        return cli_fail(CMD, "task %s: %s", t->id, qeil_ctx_errmsg(ctx));
    c->wall_sum_s += r->wall_s;
    c->n_um = qeil_runtime_unit_metrics_get(rt, c->um_last, QEIL_MAX_UNITS);
    for (uint32_t d = 0; d < c->n_um && d < QEIL_MAX_UNITS; d++) {
        double v[UM_COUNT];
        um_values(&c->um_last[d], v);
        for (int k = 0; k < UM_COUNT; k++)
            if (isfinite(v[k])) {
                c->um_sum[d][k] += v[k];
                c->um_n[d][k]++;
            }
    }
    return CLI_OK;
}

/* The mean of metric k of unit d over the problems where it was finite. */
static double um_mean(const config *c, uint32_t d, int k)
{
    return c->um_n[d][k] ? c->um_sum[d][k] / c->um_n[d][k] : NAN;
}

/* ------------------------------------------------------------------------ */
/* Output                                                                   */
/* ------------------------------------------------------------------------ */

/* One exemplar of the prompt template, repeated --shots times. */
#define SHOT_FORMAT                                                                                \
    QEIL_TASK_PROMPT_PREFIX "<exemplar question>" QEIL_TASK_SHOT_MIDDLE                            \
                            "<exemplar solution>" QEIL_TASK_SHOT_END

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
    uint32_t *nn = qeil_calloc(ctx, n, sizeof *nn), *cc = qeil_calloc(ctx, n, sizeof *cc);
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
    qeil_free(ctx, nn);
    qeil_free(ctx, cc);
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

static void json_summary(cJSON *o, qeil_ctx *ctx, const config *c, const qeil_tasks *t, uint32_t n,
                         uint32_t budget, int with_problems, const eval_opts *eo)
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
    /* measured on this machine, beside the modeled energy: totals over the problems */
    cJSON *me = cJSON_AddObjectToObject(su, "measured");
    cli_meas_json(me, "prefill", c->pf_meas.valid, c->pf_meas.energy_J, c->pf_meas.t_s,
                  c->pf_tokens, c->mprov, c->mcov);
    cli_meas_json(me, "decode", c->dc_meas.valid, c->dc_meas.energy_J, c->dc_meas.t_s,
                  c->dc_tokens, c->mprov, c->mcov);
    cJSON *um = cJSON_AddObjectToObject(o, "unit_metrics");
    cJSON_AddStringToObject(um, "note",
                            "DASI, Phi and CPQ per platform unit, mean over the problems: "
                            "predicted by the energy model for the plan, measured on this "
                            "machine (engine times, the guard's temperature, memory in use); "
                            "null where not measurable (the unit is not a local device, ran no "
                            "work, or has no sensor) - docs/runtime.md");
    cJSON *ua = cJSON_AddArrayToObject(um, "units");
    for (uint32_t d = 0; d < c->n_um && d < QEIL_MAX_UNITS; d++) {
        cJSON *u = cJSON_CreateObject();
        cJSON_AddStringToObject(u, "unit", c->um_last[d].unit);
        if (c->um_last[d].device[0]) cJSON_AddStringToObject(u, "device", c->um_last[d].device);
        else cJSON_AddNullToObject(u, "device");
        static const char *names[] = {"dasi_prefill", "dasi_decode", "phi", "rho", "cpq"};
        static const int ks_pred[] = {UM_DASI_PF_PRED, UM_DASI_DC_PRED, UM_PHI_PRED, UM_RHO_PRED,
                                      UM_CPQ_PRED};
        for (int q = 0; q < 5; q++) {
            cJSON *x = cJSON_AddObjectToObject(u, names[q]);
            add_num_or_null(x, "predicted", um_mean(c, d, ks_pred[q]));
            add_num_or_null(x, "measured", um_mean(c, d, ks_pred[q] + 1));
        }
        add_num_or_null(u, "temp_C", um_mean(c, d, UM_TEMP));
        cJSON_AddStringToObject(u, "pool", c->um_last[d].pool);
        cJSON_AddItemToArray(ua, u);
    }
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
        cJSON_AddStringToObject(p, "id", qeil_tasks_get(t, i)->id);
        cJSON_AddStringToObject(p, "gold", qeil_tasks_get(t, i)->gold.text);
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
        add_num_or_null(p, "measured_energy_J", r->meas.valid ? r->meas.energy_J : NAN);
        if (eo->shots) {
            cJSON *sl = cJSON_AddArrayToObject(p, "shot_lines");
            for (uint32_t k = 0; k < eo->shots; k++)
                cJSON_AddItemToArray(
                    sl, cJSON_CreateNumber(eo->shot_lines[(size_t)i * eo->shots + k]));
        }
        cJSON_AddItemToArray(arr, p);
    }
}

/* ---- SVG: pass@k and energy per configuration (--svg) ------------------- */

static int write_svg(qeil_ctx *ctx, const char *path, const eval_opts *o, const qeil_platform *pf,
                     const config *cf, int n_cf, uint32_t n)
{
    FILE *fp = fopen(path, "w");
    if (!fp) return -1;
    char title[512];
    snprintf(title, sizeof title, "qeil eval: %u problems, %s", n, o->model);
    svg_begin(fp, 980, 470, title);
    svg_text(fp, 20, 24, "start", 15, "%s", title);
    svg_text(fp, 20, 42, "start", 11, "K=%u samples, seed %llu, platform %s; energy MODELED on it, accuracy measured",
             o->samples, (unsigned long long)o->sp.seed, pf->name);
    /* left: pass@k over k (the configurations that drew the whole budget) */
    double pk[QEIL_MAX_SAMPLES];
    uint32_t ks[QEIL_MAX_SAMPLES];
    svg_axis ax = svg_axis_fit(1, o->samples > 1 ? o->samples : 2, 80, 440);
    ax.log = o->samples >= 8;
    if (ax.log) ax.lo = 0.9, ax.hi = o->samples * 1.1;
    svg_axis ay = {0, 100, 400, 80, 0, 0};
    svg_axes(fp, &ax, &ay, "samples k", "pass@k, %");
    svg_text(fp, 260, 66, "middle", 12, "pass@k (unbiased estimator)");
    int drawn = 0;
    for (int c = 0; c < n_cf; c++) {
        int m = pass_at(ctx, &cf[c], n, o->samples, 1, pk, ks);
        if (m <= 0) continue;
        fprintf(fp, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", svg_category(c));
        for (int i = 0; i < m; i++)
            fprintf(fp, "%.1f,%.1f ", svg_map(&ax, ks[i]), svg_map(&ay, 100 * pk[i]));
        fputs("\"/>\n", fp);
        svg_text(fp, 452, svg_map(&ay, 100 * pk[m - 1]) + 4, "start", 11, "%s %.1f %%", cf[c].name,
                 100 * pk[m - 1]);
        drawn++;
        if (c == 0 && n_cf == 3) break; /* --compare: the three draw the same samples */
    }
    if (!drawn)
        svg_text(fp, 260, 240, "middle", 12, "no configuration drew all K samples on every problem");
    /* right: energy per problem and accuracy, one bar per configuration */
    double emax = 0;
    for (int c = 0; c < n_cf; c++)
        if (isfinite(cf[c].sum.energy_per_problem_J)) emax = fmax(emax, cf[c].sum.energy_per_problem_J);
    svg_axis by = svg_axis_fit(0, emax > 0 ? emax * 1.15 : 1, 400, 80); /* room for the labels */
    by.log = 0;
    svg_axis bx = {0, 1, 620, 940, 0, 1};
    svg_axes(fp, &bx, &by, "", "energy per problem, J");
    svg_text(fp, 780, 66, "middle", 12, "energy per problem (modeled) and accuracy");
    double w = 320.0 / (n_cf > 0 ? n_cf : 1);
    for (int c = 0; c < n_cf; c++) {
        double e = cf[c].sum.energy_per_problem_J, x = 620 + c * w + w * 0.2;
        if (!isfinite(e)) continue;
        double y = svg_map(&by, e);
        fprintf(fp, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>\n", x, y,
                w * 0.6, 400 - y, svg_category(c));
        svg_text(fp, x + w * 0.3, 416, "middle", 11, "%s", cf[c].name);
        svg_text(fp, x + w * 0.3, y - 16, "middle", 11, "%.4g J", e);
        svg_text(fp, x + w * 0.3, y - 4, "middle", 11, "acc %.1f %%", cf[c].sum.accuracy_pct);
    }
    svg_text(fp, 20, 455, "start", 10,
             "qeil %s. pass@k: chance one of k samples is right; energy priced by the energy model on "
             "the platform's plan (docs/eval.md)", qeil_version());
    svg_end(fp);
    int bad = ferror(fp);
    if (fclose(fp) != 0) bad = 1;
    return bad ? -1 : 0;
}
/* the thermal guard over all problems (cli/guard_report.c) */
static cli_guard_acc guard_acc;

static const qeil_runtime *g_rt; /* for print_json's placement and transfers */

static void print_json(qeil_ctx *ctx, const eval_opts *o, const qeil_platform *pf, config *cf,
                       int n_cf, const qeil_tasks *t, uint32_t n, double mean_prompt)
{
    cJSON *j = cJSON_CreateObject();
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->sp.seed);
    cJSON_AddStringToObject(j, "version", qeil_version());
    cJSON_AddStringToObject(j, "seed", seed);
    cJSON_AddStringToObject(j, "model", o->model);
    cJSON_AddStringToObject(j, "tasks", o->tasks);
    cJSON_AddStringToObject(j, "platform", pf->name);
    cJSON_AddStringToObject(j, "format", qeil_tasks_format_name(o->format_read));
    if (g_rt) {
        const uint32_t nu = qeil_runtime_n_units(g_rt);
        uint8_t mp[QEIL_MAX_WUNITS], mdc[QEIL_MAX_WUNITS];
        const int ok = qeil_runtime_placements(g_rt, mp, mdc, nu) == QEIL_OK;
        cli_placement_json(j, o->placement, o->exec_plan ? o->plan_src : NULL, ok ? mp : NULL,
                           ok ? mdc : NULL, nu);
        /* wall-clock seconds: only when asked for a placement (the
         * default output stays the same for the same seed) */
        qeil_engine_transfers xs;
        qeil_runtime_transfer_stats(g_rt, &xs);
        if (o->placement) cli_transfers_json(j, &xs);
    }
    cJSON_AddStringToObject(j, "prompt_format",
                            o->shots ? SHOT_FORMAT QEIL_TASK_PROMPT_PREFIX "<question>"
                                           QEIL_TASK_PROMPT_SUFFIX
                                     : QEIL_TASK_PROMPT_PREFIX "<question>" QEIL_TASK_PROMPT_SUFFIX);
    cJSON_AddNumberToObject(j, "shots", o->shots);
    if (o->shots_file) cJSON_AddStringToObject(j, "shots_file", o->shots_file);
    else cJSON_AddNullToObject(j, "shots_file");
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
        json_summary(j, ctx, &cf[0], t, n, o->samples, 1, o);
    } else {
        cJSON *arr = cJSON_AddArrayToObject(j, "configurations");
        for (int i = 0; i < n_cf; i++) {
            cJSON *c = cJSON_CreateObject();
            cJSON_AddStringToObject(c, "name", cf[i].name);
            json_summary(c, ctx, &cf[i], t, n, o->samples, 1, o);
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
    cJSON *rj = cJSON_AddArrayToObject(j, "replans");
    for (uint32_t i = 0; o->rt && i < qeil_runtime_replan_count(o->rt); i++) {
        qeil_runtime_replan ev;
        if (qeil_runtime_replan_get(o->rt, i, &ev) != QEIL_OK) break;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "before_problem", ev.request);
        cJSON_AddStringToObject(e, "cause", ev.cause);
        cJSON_AddStringToObject(e, "unit", ev.unit_name);
        cJSON_AddNumberToObject(e, "drift", ev.ratio);
        cJSON_AddNumberToObject(e, "eta_scale", ev.scale);
        cJSON_AddNumberToObject(e, "replan_s", ev.replan_s);
        cJSON_AddNumberToObject(e, "evaluations", (double)ev.evaluations);
        cJSON_AddNumberToObject(e, "energy_before_J", ev.energy_before_J);
        cJSON_AddNumberToObject(e, "energy_after_J", ev.energy_after_J);
        cJSON_AddNumberToObject(e, "latency_before_s", ev.latency_before_s);
        cJSON_AddNumberToObject(e, "latency_after_s", ev.latency_after_s);
        cJSON_AddBoolToObject(e, "plan_changed", ev.plan_changed);
        cJSON_AddItemToArray(rj, e);
    }
    cli_guard_json(j, &guard_acc);
    /* recoveries from failed devices, each with its problem's id */
    cJSON *ra = cJSON_AddArrayToObject(j, "recoveries");
    for (uint32_t i = 0; o->recs && i <= n && i < qeil_tasks_count(t); i++) {
        cJSON *tmp = cJSON_CreateObject();
        cli_recoveries_json(tmp, o->recs[i].r, o->recs[i].n);
        cJSON *arr = cJSON_DetachItemFromObject(tmp, "recoveries");
        cJSON_Delete(tmp);
        cJSON *it = arr ? arr->child : NULL;
        while (it) {
            cJSON *next = it->next;
            cJSON_DetachItemViaPointer(arr, it);
            cJSON_AddStringToObject(it, "problem", qeil_tasks_get(t, i)->id);
            cJSON_AddItemToArray(ra, it);
            it = next;
        }
        cJSON_Delete(arr);
    }
    if (o->error) {
        cJSON_AddStringToObject(j, "error", o->error);
        cJSON_AddNumberToObject(j, "problems_finished", n);
        cJSON_AddNumberToObject(j, "problems_total", qeil_tasks_count(t));
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

/* The text of a prompt as indented lines (file data: cleaned for the
 * terminal line by line). */
static void print_text_lines(const char *s)
{
    while (*s) {
        const char *e = strchr(s, '\n');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        char *line = malloc(n + 1);
        if (!line) return;
        memcpy(line, s, n);
        line[n] = '\0';
        printf("    | %s\n", cli_term(line));
        free(line);
        s += n + (e != NULL);
        if (e && !*s) printf("    | \n");
    }
}

/* -v: the prompt template, then the first problem's prompt as the model
 * sees it. */
static void print_prompt(const eval_opts *o)
{
    printf("  prompt template (\\n = newline):\n");
    if (o->shots)
        printf("    %u exemplar%s, each \"Q: <exemplar question>\\nA: <exemplar solution>\\n\\n\"\n"
               "      (solution: %s)\n    then ",
               o->shots, o->shots == 1 ? "" : "s",
               o->format_read == QEIL_TASKS_GSM8K
                   ? "the train split's answer as given, its working then \"#### N\""
                   : "\"The answer is X.\\n#### X\", X the reference answer");
    else
        printf("    ");
    printf("\"Q: <question>\\nA:\"%s\n",
           o->format_read == QEIL_TASKS_ARC ? "  (ARC: <question> = the stem, then \" X) text\" "
                                              "per choice)"
                                            : "");
    if (o->first_prompt) {
        printf("  first prompt (%u tokens):\n", o->first_prompt_tokens);
        print_text_lines(o->first_prompt);
    }
    printf("\n");
}

/* One line per problem for the last configuration (v2 under --compare). */
static void print_problems(const config *c, const qeil_tasks *t, uint32_t n)
{
    printf("  %-12s %-32s %8s %8s %3s %7s %-13s %10s\n", "ID", "QUESTION", "GOLD", "CHOSEN", "OK",
           "SAMPLES", "DECIDED BY", "ENERGY J");
    for (uint32_t i = 0; i < n; i++) {
        const prob_rec *r = &c->recs[i];
        const qeil_task *ti = qeil_tasks_get(t, i);
        char q[33];
        size_t k = 0;
        for (const char *p = ti->question; *p && k + 1 < sizeof q; p++)
            q[k++] = (*p == '\n' || *p == '\t') ? ' ' : *p;
        q[k] = '\0';
        if (strlen(ti->question) >= sizeof q) memcpy(q + sizeof q - 4, "...", 4);
        /* ids and questions are file data: no control bytes to the terminal */
        printf("  %-12.12s %-32s %8.8s %8.8s %3s %7u %-13s %10.4g\n", cli_term(ti->id),
               cli_term(q), cli_term(ti->gold.text),
               r->chosen.has ? cli_term(r->chosen.text) : "(none)", r->correct ? "yes" : "no",
               r->samples, qeil_select_stage_name(r->stage), r->energy_J);
    }
    printf("\n");
}

static void print_recoveries(const eval_opts *o, const qeil_tasks *t, uint32_t n)
{
    for (uint32_t i = 0; o->recs && i <= n && i < qeil_tasks_count(t); i++) {
        char pre[96];
        snprintf(pre, sizeof pre, "  task %s: ", cli_term(qeil_tasks_get(t, i)->id));
        cli_recoveries_text(stdout, pre, o->recs[i].r, o->recs[i].n);
    }
    if (o->error)
        printf("  error: %s (%u of %u problems finished)\n", o->error, n, qeil_tasks_count(t));
}

/* "0.123" or "n/a" in a 7-wide column. */
static const char *um_cell(char *b, size_t cap, double v)
{
    if (isfinite(v)) snprintf(b, cap, "%7.3g", v);
    else snprintf(b, cap, "%7s", "n/a");
    return b;
}

/* DASI, Φ and CPQ per unit, predicted beside measured (means over problems). */
static void print_unit_metrics(const config *c)
{
    if (!c->n_um) return;
    printf("\n  run-time metrics of plan %s per unit, mean over problems (pred: energy model;\n"
           "  meas: this machine; n/a where the unit is not a local device, ran no work or has\n"
           "  no sensor):\n",
           plan_name(c->plan_method));
    printf("  %-16s %-6s %15s %15s %15s %15s\n", "UNIT", "DEVICE", "DASI prefill", "DASI decode",
           "PHI", "CPQ");
    printf("  %-16s %-6s %7s %7s %7s %7s %7s %7s %7s %7s\n", "", "", "pred", "meas", "pred",
           "meas", "pred", "meas", "pred", "meas");
    for (uint32_t d = 0; d < c->n_um && d < QEIL_MAX_UNITS; d++) {
        char b[8][16];
        static const int k[8] = {UM_DASI_PF_PRED, UM_DASI_PF_MEAS, UM_DASI_DC_PRED, UM_DASI_DC_MEAS,
                                 UM_PHI_PRED,     UM_PHI_MEAS,     UM_CPQ_PRED,     UM_CPQ_MEAS};
        for (int i = 0; i < 8; i++) um_cell(b[i], sizeof b[i], um_mean(c, d, k[i]));
        printf("  %-16.16s %-6.6s %s %s %s %s %s %s %s %s\n", c->um_last[d].unit,
               c->um_last[d].device[0] ? c->um_last[d].device : "-", b[0], b[1], b[2], b[3], b[4],
               b[5], b[6], b[7]);
    }
    printf("  DASI: achieved fraction of the unit's peak. PHI: useful (switching) share of its\n"
           "  power. CPQ: memory pressure rho/(1-rho) of its pool (docs/runtime.md).\n");
}

static void print_table(qeil_ctx *ctx, const eval_opts *o, const qeil_platform *pf, config *cf,
                        int n_cf, const qeil_tasks *t, uint32_t n, double mean_prompt)
{
    printf("qeil eval: %u problems from %s, model %s\n", n, cli_term(o->tasks), cli_term(o->model));
    printf("  K = %u samples, batch %u, max %u tokens, temp %.2f, seed %llu, platform %s\n",
           o->samples, o->batch, o->max_tokens, (double)o->sp.temp,
           (unsigned long long)o->sp.seed, pf->name);
    printf("  planning workload: %.0f prompt tokens (mean), %u gen tokens, %u samples\n",
           mean_prompt, o->plan_gen_tokens, o->samples);
    printf("  format %s", qeil_tasks_format_name(o->format_read));
    if (o->shots)
        printf(", %u-shot: exemplars from %s drawn per problem with seed %llu", o->shots,
               cli_term(o->shots_file), (unsigned long long)o->sp.seed);
    printf("\n");
    if (o->warning[0]) printf("  warning: %s\n", o->warning);
    printf("  ");
    cli_guard_text(stdout, &guard_acc);
    uint32_t n_rp = o->rt ? qeil_runtime_replan_count(o->rt) : 0;
    if (o->replan)
        printf("  re-plans after drift: %u%s\n", n_rp, n_rp ? " (--output json lists them)" : "");
    printf("\n");
    if (o->verbose) print_prompt(o);
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
        cli_meas_text(stdout, "  prefill energy (total)", c->pf_meas.valid, c->pf_meas.energy_J,
                      c->pf_meas.t_s, c->pf_tokens, c->mprov, c->mcov);
        cli_meas_text(stdout, "  decode energy (total) ", c->dc_meas.valid, c->dc_meas.energy_J,
                      c->dc_meas.t_s, c->dc_tokens, c->mprov, c->mcov);
        if (c->mprov) printf("  energy meter: %s covers %s\n", c->mprov, c->mcov);
        if (s->power_valid) {
            printf("  %-22s %-14s [modeled power]\n", "IPW", fmt_num(b, s->ipw, "%/W"));
            printf("  %-22s %-14s [modeled energy]\n", "ECE (energy-coverage)",
                   fmt_num(b, s->ece, "correct/J"));
        }
        print_recoveries(o, t, n);
        print_unit_metrics(c);
        printf("\n  IPW = intelligence per watt: accuracy %% / average W. ECE = the QEIL papers'\n"
               "  energy-coverage efficiency, correct answers per joule (not expected\n"
               "  calibration error).\n");
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
    printf("\n");
    for (int i = 0; i < n_cf; i++) {
        char label[64];
        snprintf(label, sizeof label, "  %-9s prefill energy (total)", cf[i].name);
        cli_meas_text(stdout, label, cf[i].pf_meas.valid, cf[i].pf_meas.energy_J,
                      cf[i].pf_meas.t_s, cf[i].pf_tokens, cf[i].mprov, cf[i].mcov);
        snprintf(label, sizeof label, "  %-9s decode energy (total) ", cf[i].name);
        cli_meas_text(stdout, label, cf[i].dc_meas.valid, cf[i].dc_meas.energy_J,
                      cf[i].dc_meas.t_s, cf[i].dc_tokens, cf[i].mprov, cf[i].mcov);
    }
    if (cf[0].mprov) printf("  energy meter: %s covers %s\n", cf[0].mprov, cf[0].mcov);
    printf("\n  IPW = intelligence per watt: accuracy %% / average W; pass@k = chance that at\n"
           "  least one of k samples is right (unbiased estimator). JSON's ece is the QEIL\n"
           "  papers' energy-coverage efficiency, correct answers per joule (not expected\n"
           "  calibration error).\n");
    printf("\n  note: energy, power, IPW and latency are MODELED for %s (each plan applied\n"
           "  to the work actually executed); accuracy, samples and tokens come from the real\n"
           "  model; wall time is MEASURED on this machine's CPU (not the target platform).\n"
           "  All configurations consume prefixes of one seeded sample stream per problem,\n"
           "  which equals running them separately with the same seeds.\n",
           pf->name);
    print_recoveries(o, t, n);
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

    qeil_ctx *ctx = cli_ctx_create();
    if (!ctx) return cli_fail(CMD, "out of memory");
    qeil_tasks *t = NULL, *shots = NULL;
    uint32_t n = 0;
    char *first_prompt = NULL;
    qeil_runtime *rt = NULL;
    int32_t **ids = NULL;    /* [n]: each problem's prompt tokens */
    prob_recoveries *ev_recs = NULL; /* [n]: each problem's recoveries */
    uint32_t *n_ids = NULL;  /* [n] */
    config cf[3];
    memset(cf, 0, sizeof cf);
    int n_cf = 0;
    rc = CLI_FAIL;

    qeil_platform pf;
    if (qeil_platform_load(ctx, o.platform, &pf) != QEIL_OK) {
        cli_fail(CMD, "--platform: %s", qeil_ctx_errmsg(ctx));
        goto out;
    }
    /* the task files are read before the model is opened */
    if (qeil_tasks_read_as(ctx, o.tasks, o.format, o.limit, &t) != QEIL_OK) {
        cli_fail(CMD, "%s", qeil_ctx_errmsg(ctx));
        goto out;
    }
    n = qeil_tasks_count(t);
    o.format_read = qeil_tasks_get_format(t);
    if (o.shots_file) {
        if (qeil_tasks_read_as(ctx, o.shots_file, o.format, 0, &shots) != QEIL_OK) {
            cli_fail(CMD, "--shots-file: %s", qeil_ctx_errmsg(ctx));
            goto out;
        }
        if (qeil_tasks_get_format(shots) != o.format_read) {
            cli_fail(CMD, "--shots-file %s: %s format, but the tasks of %s are %s (want the "
                          "same benchmark's train split)",
                     cli_term(o.shots_file), qeil_tasks_format_name(qeil_tasks_get_format(shots)),
                     cli_term(o.tasks), qeil_tasks_format_name(o.format_read));
            goto out;
        }
        o.shot_lines = qeil_calloc(ctx, (size_t)n * o.shots, sizeof *o.shot_lines);
        if (!o.shot_lines) {
            cli_fail(CMD, "out of memory");
            goto out;
        }
    }

    qeil_runtime_params rp = qeil_runtime_default_params();
    rp.model_path = o.model;
    rp.platform = &pf;
    rp.n_threads = o.threads;
    rp.samples = o.samples;
    rp.batch = o.batch;
    rp.max_tokens = o.max_tokens;
    rp.select = o.tune;
    rp.meter.root = o.sensors_root;
    rp.replan = o.replan;
    static char plan_spec[2048];
    if (o.exec_plan) {
        if (o.placement) {
            rc = cli_usage_error(CMD, "--plan and --placement exclude each other");
            goto out;
        }
        if ((rc = cli_plan_spec(CMD, ctx, o.exec_plan, o.platform_given ? o.platform : NULL, o.model,
                                plan_spec, sizeof plan_spec, o.plan_src, sizeof o.plan_src)) != CLI_OK)
            goto out;
        o.placement = plan_spec;
        fprintf(stderr, "qeil eval: placement %s (%s)\n", plan_spec, o.plan_src);
    }
    rp.placement = o.placement;
    qeil_fault fault;
    int fault_set = 0;
    if ((rc = cli_placement_check(CMD, ctx, o.model, o.placement)) != CLI_OK) goto out;
    if ((rc = cli_fault_env(CMD, ctx, &fault, &fault_set)) != CLI_OK) goto out;
    if (fault_set) rp.fault = &fault;
    rc = CLI_FAIL;
    if (qeil_runtime_create(ctx, &rp, &rt) != QEIL_OK) {
        cli_fail(CMD, "%s", qeil_ctx_errmsg(ctx));
        goto out;
    }
    g_rt = rt;
    const qeil_model_desc *md = qeil_runtime_model(rt);
    const uint32_t n_ctx = qeil_runtime_n_ctx(rt);

    /* ---- tokenize every prompt ---- */
    ids = qeil_calloc(ctx, n, sizeof *ids);
    n_ids = qeil_calloc(ctx, n, sizeof *n_ids);
    if (!ids || !n_ids) {
        cli_fail(CMD, "out of memory");
        goto out;
    }
    double sum_prompt = 0;
    for (uint32_t i = 0; i < n; i++) {
        const qeil_task *ti = qeil_tasks_get(t, i);
        char *p = NULL;
        uint32_t idx[QEIL_TASKS_MAX_SHOTS];
        /* --shots exemplars, drawn for problem i with --seed (the same
         * exemplars whatever --limit, --batch or -t) */
        if (qeil_tasks_prompt(ctx, ti, i, shots, o.shots, o.sp.seed, &p, idx) != QEIL_OK) {
            cli_fail(CMD, "%s:%u: %s", o.tasks, ti->line, qeil_ctx_errmsg(ctx));
            goto out;
        }
        for (uint32_t k = 0; k < o.shots; k++)
            o.shot_lines[(size_t)i * o.shots + k] = qeil_tasks_get(shots, idx[k])->line;
        size_t cap = strlen(p) + 8, got = 0; /* at most a token per byte, BOS, a prefix space */
        ids[i] = qeil_calloc(ctx, cap, sizeof(int32_t));
        if (!ids[i]) {
            qeil_free(ctx, p);
            cli_fail(CMD, "out of memory");
            goto out;
        }
        /* the question is data: special-token text in it stays text */
        qeil_status st = qeil_runtime_tokenize(rt, p, -1, 0, ids[i], cap, &got);
        if (i == 0) first_prompt = p;
        else qeil_free(ctx, p);
        if (st != QEIL_OK) {
            cli_fail(CMD, "%s:%u: question: %s", o.tasks, ti->line, qeil_ctx_errmsg(ctx));
            goto out;
        }
        if (got == 0 || got >= n_ctx) {
            cli_fail(CMD, "%s:%u: prompt of %zu tokens does not fit the context of %u tokens",
                     o.tasks, ti->line, got, n_ctx);
            goto out;
        }
        n_ids[i] = (uint32_t)got;
        sum_prompt += (double)got;
    }
    o.first_prompt = first_prompt;
    o.first_prompt_tokens = n_ids[0];
    double mean_prompt = sum_prompt / n;

    /* ---- samplers: a --top-k above this model's vocabulary is a usage error ---- */
    qeil_status sst = qeil_runtime_set_sampler(rt, &o.sp);
    if (sst != QEIL_OK) {
        rc = sst == QEIL_ERR_NOMEM ? cli_fail(CMD, "%s", qeil_ctx_errmsg(ctx))
                                   : cli_usage_error(CMD, "%s", qeil_ctx_errmsg(ctx));
        goto out;
    }

    /* ---- plan once on the planning workload ---- */
    qeil_workload_params wp = qeil_runtime_planning_workload(rt, (uint32_t)(mean_prompt + 0.5));
    o.plan_gen_tokens = wp.gen_tokens;
    if (o.plan_gen_tokens < o.max_tokens) {
        snprintf(o.warning, sizeof o.warning,
                 "-n %u does not fit the context of %u tokens after a prompt of %u tokens "
                 "(mean): generation stops at the context; planning with %u generated tokens",
                 o.max_tokens, md->ctx_max < n_ctx ? md->ctx_max : n_ctx, wp.prompt_tokens,
                 o.plan_gen_tokens);
        fprintf(stderr, "qeil eval: warning: %s\n", o.warning);
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
        if (config_setup(ctx, rt, &cf[i], &wp, &o, n) != CLI_OK) goto out;
    }

    /* ---- the problems: one runtime request each ---- */
    int tty = isatty(fileno(stderr));
    cli_guard_acc_init(&guard_acc);
    const uint32_t n_all = n;
    int failed = 0; /* a device failure nothing recovered from ended the run at problem n */
    ev_recs = qeil_calloc(ctx, n, sizeof *ev_recs);
    if (!ev_recs) {
        cli_fail(CMD, "out of memory");
        goto out;
    }
    for (uint32_t i = 0; i < n; i++) {
        const qeil_task *ti = qeil_tasks_get(t, i);
        qeil_runtime_request rq = {ids[i], n_ids[i], ti->mode, i, &ti->gold};
        config snap[3];
        memcpy(snap, cf, sizeof snap); /* the totals before this problem */
        qeil_status bst = qeil_runtime_begin(rt, &rq);
        if (bst != QEIL_OK) {
            cli_fail(CMD, "task %s (line %u): %s", ti->id, ti->line, qeil_ctx_errmsg(ctx));
            if (bst != QEIL_ERR_DEVICE) goto out;
        }
        int c = 0;
        qeil_status sel_st = QEIL_OK;
        for (; bst == QEIL_OK && c < n_cf; c++)
            if (config_run(ctx, rt, &cf[c], ti, o.samples, i, &sel_st) != CLI_OK) break;
        ev_recs[i].n = qeil_runtime_recoveries(rt, ev_recs[i].r, QEIL_RUNTIME_MAX_RECOVERIES);
        if (bst != QEIL_OK || c < n_cf) {
            /* the last device of the placement failed: keep the problems
             * that finished, report them, and fail */
            if (bst != QEIL_ERR_DEVICE && sel_st != QEIL_ERR_DEVICE) goto out;
            memcpy(cf, snap, sizeof snap);
            cli_recoveries_text(stderr, "before that, ", ev_recs[i].r, ev_recs[i].n);
            n = i;
            failed = 1;
            break;
        }
        cli_guard_acc_add(&guard_acc, rt, (long)i);
        progress(i + 1, n, &cf[n_cf - 1].acc, tty);
    }
    if (failed && n == 0) goto out;
    if (failed)
        fprintf(stderr, "qeil eval: reporting the %u of %u problems that finished\n", n, n_all);
    for (int c = 0; c < n_cf; c++) {
        if (qeil_metrics_summarize(ctx, &cf[c].acc, &cf[c].sum) != QEIL_OK) {
            cli_fail(CMD, "%s", qeil_ctx_errmsg(ctx));
            goto out;
        }
    }
    o.rt = rt;
    o.recs = ev_recs;
    o.error = failed ? qeil_ctx_errmsg(ctx) : NULL;
    if (o.json) print_json(ctx, &o, &pf, cf, n_cf, t, n, mean_prompt);
    else print_table(ctx, &o, &pf, cf, n_cf, t, n, mean_prompt);
    if (o.svg && write_svg(ctx, o.svg, &o, &pf, cf, n_cf, n) != 0) {
        cli_fail(CMD, "--svg: cannot write '%s': %s", o.svg, strerror(errno));
        goto out;
    }
    rc = failed ? CLI_FAIL : CLI_OK;

out:
    cli_guard_acc_free(&guard_acc);
    qeil_free(ctx, ev_recs);
    for (int c = 0; c < 3; c++) qeil_free(ctx, cf[c].recs);
    for (uint32_t i = 0; ids && i < qeil_tasks_count(t); i++) qeil_free(ctx, ids[i]); /* n may be cut */
    qeil_free(ctx, ids);
    qeil_free(ctx, n_ids);
    qeil_runtime_free(rt);
    qeil_free(ctx, first_prompt);
    qeil_free(ctx, o.shot_lines);
    qeil_tasks_free(t);
    qeil_tasks_free(shots);
    qeil_ctx_free(ctx);
    return rc;
}
