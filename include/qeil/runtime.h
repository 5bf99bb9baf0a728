/*
 * runtime.h — the generation runtime: a model (engine), a target platform
 * profile and plans, run as requests. A request is one prompt: prefilled
 * once, forked into up to K samples decoded in batches, an answer chosen by
 * the selection module (EAC → ARDE with CSVET, through its generator
 * callback), and the work accounted: tokens, wall time per phase, wall time
 * per work unit (qeil_engine_unit_times) and energy. The runtime is the one
 * module that joins engine, plan, select (and later sense); `qeil eval` and
 * `qeil generate` are thin callers of it. docs/runtime.md.
 *
 * Usage (repeated sampling with the cascade on one question):
 *
 *     qeil_ctx *ctx = qeil_ctx_create(NULL);
 *     qeil_runtime_params rp = qeil_runtime_default_params();
 *     rp.model_path = "models/qeil-demo.gguf";
 *     rp.samples = 8;
 *     qeil_sampler_params sp = qeil_sampler_default_params();
 *     sp.seed = 42;
 *     qeil_runtime *rt = NULL;
 *     int32_t ids[256];
 *     size_t n = 0;
 *     uint32_t c = 0;
 *     qeil_runtime_config cfg = qeil_runtime_default_config();  // PGSAM knee, cascade
 *     qeil_runtime_result res;
 *     if (qeil_runtime_create(ctx, &rp, &rt) == QEIL_OK &&
 *         qeil_runtime_set_sampler(rt, &sp) == QEIL_OK &&
 *         qeil_runtime_tokenize(rt, "Q: What is 6 * 7?\nA:", -1, 0, ids, 256, &n) == QEIL_OK) {
 *         qeil_workload_params wp = qeil_runtime_planning_workload(rt, (uint32_t)n);
 *         qeil_runtime_request rq = {ids, (uint32_t)n, QEIL_ANSWER_NUMERIC, 0, NULL};
 *         if (qeil_runtime_add_config(rt, &cfg, &wp, &c) == QEIL_OK &&
 *             qeil_runtime_begin(rt, &rq) == QEIL_OK &&
 *             qeil_runtime_select(rt, c, &res) == QEIL_OK)
 *             printf("%s: %u samples, %llu tokens, %.3g J (%s)\n",
 *                    res.answer.has ? res.answer.text : "(none)", res.n_samples,
 *                    (unsigned long long)res.n_tokens, res.energy_J,
 *                    qeil_provenance_name(res.energy_src));
 *     }
 *     if (qeil_ctx_errmsg(ctx)[0]) fprintf(stderr, "%s\n", qeil_ctx_errmsg(ctx));
 *     qeil_runtime_free(rt);
 *     qeil_ctx_free(ctx);
 *
 * Lifecycle: create (platform, engine, buffers) → set_sampler → plans
 * (add_config, once per configuration, on a planning workload) → for each
 * request: begin (prefill) → select, once per configuration (the
 * configurations consume prefixes of one seeded sample stream, drawn on
 * first use and cached). qeil_runtime_generate is the single-stream path
 * (`qeil generate`): no selection, tokens streamed to a callback.
 *
 * Determinism: sample k of request stream s is seeded with a hash of
 * (sampler seed, s, k): the same seed gives the same samples whatever the
 * batch, the thread count or the selection method. Memory: everything is
 * allocated at create, set_sampler and add_config, except the per-sample
 * text buffers, which grow to the longest sample and are then reused, and
 * qeil_runtime_generate's token history (one per call). Thread-safety: a
 * runtime is mutable state (it owns an engine and its worker pool): use one
 * per thread of control; the ctx it was created with must outlive it and
 * must not be used by another thread meanwhile.
 */
#ifndef QEIL_RUNTIME_H
#define QEIL_RUNTIME_H

#include "qeil/device.h"
#include "qeil/energy.h"
#include "qeil/engine.h"
#include "qeil/guard.h"
#include "qeil/plan.h"
#include "qeil/sampler.h"
#include "qeil/select.h"
#include "qeil/sense.h"
#include "qeil/workload.h"

#ifdef __cplusplus
extern "C" {
#endif

#define QEIL_RUNTIME_MAX_TOKENS 65536u /* max_tokens per sample */
#define QEIL_RUNTIME_MAX_CONFIGS 8u    /* configurations per runtime */
#define QEIL_RUNTIME_MAX_STOP 16u      /* stop tokens besides EOS (qeil_runtime_set_stop_tokens) */

/* ------------------------------------------------------------------------ */
/* Tasks: the JSONL task files of `qeil eval` (docs/eval.md)                 */
/* ------------------------------------------------------------------------ */

/* The prompt of every task: the demo model (models/qeil-demo.gguf) is
 * trained on "Q: <question>\nA: <working>\n#### <answer>\n\n". A few-shot
 * exemplar is QEIL_TASK_PROMPT_PREFIX <question> QEIL_TASK_SHOT_MIDDLE
 * <solution> QEIL_TASK_SHOT_END, ahead of the task's own prompt. */
#define QEIL_TASK_PROMPT_PREFIX "Q: "
#define QEIL_TASK_PROMPT_SUFFIX "\nA:"
#define QEIL_TASK_SHOT_MIDDLE "\nA: "
#define QEIL_TASK_SHOT_END "\n\n"

#define QEIL_TASKS_MAX 100000u            /* tasks per file */
#define QEIL_TASKS_MAX_LINE (64u * 1024u) /* bytes per line, newline excluded */
#define QEIL_TASKS_MAX_SHOTS 64u          /* few-shot exemplars per prompt */
#define QEIL_TASKS_MAX_CHOICES 8u         /* ARC choices per question (labels A-H / 1-8) */

/* Task file formats (docs/eval.md "Task files"). AUTO detects the format
 * from the first non-blank line: a member "answerKey" → ARC; else an
 * "answer" string holding "####" → GSM8K; else qeil's own. */
typedef enum {
    QEIL_TASKS_AUTO = 0,
    QEIL_TASKS_QEIL = 1,  /* {"id","question","answer","kind"} */
    QEIL_TASKS_GSM8K = 2, /* {"question","answer": "<working>\n#### 72"} */
    QEIL_TASKS_ARC = 3    /* AI2 {"id","question":{"stem","choices":[{"text","label"}]},
                             "answerKey"} or flattened {"id","question","choices":
                             {"text":[..],"label":[..]},"answerKey"} */
} qeil_tasks_format;

/* "auto", "qeil", "gsm8k", "arc" ("?" for a value outside the enum). */
QEIL_API const char *qeil_tasks_format_name(qeil_tasks_format f);
/* Parse one of those names; QEIL_ERR_RANGE naming the value and the names
 * otherwise. */
QEIL_API qeil_status qeil_tasks_format_parse(qeil_ctx *ctx, const char *name,
                                             qeil_tasks_format *out);

typedef struct {
    const char *id;        /* "id" field (a number is printed with %.17g), UTF-8 bytes;
                              GSM8K without one: the line number */
    const char *question;  /* non-empty; ARC: the stem, then each choice as " X) text" */
    const char *gold_text; /* the reference answer as given: "answer" (qeil), the text
                              after "####" (GSM8K), "answerKey" (ARC) */
    qeil_answer gold;      /* gold_text normalised under mode; ARC labels 1-8 as A-H */
    qeil_answer_mode mode; /* "kind": numeric (default) or choice; GSM8K numeric, ARC
                              choice */
    uint32_t line;         /* 1-based line in the file */
    const char *solution;  /* the answer as a few-shot exemplar shows it: GSM8K's
                              "answer" as given (working, then "#### 72"), otherwise
                              "The answer is X.\n#### X" with X = gold.text */
} qeil_task;

typedef struct qeil_tasks qeil_tasks;

/* Read up to `limit` tasks (0 = all, at most QEIL_TASKS_MAX) from a JSONL
 * file: one JSON object per line, blank lines skipped, a UTF-8 byte-order
 * mark at the start and CRLF line ends accepted. Hostile input: bounded
 * lines, NUL bytes and \u0000 escapes rejected, empty fields rejected.
 * Errors name the file, the line and the field ("FILE:LINE: field
 * 'question': missing (want a non-empty string)"): QEIL_ERR_IO (cannot
 * open/read), QEIL_ERR_FORMAT (bad line or no tasks), QEIL_ERR_RANGE (too
 * many tasks, line too long), QEIL_ERR_NOMEM. *out owns its strings; free
 * with qeil_tasks_free (NULL is a no-op). ctx supplies the allocator and
 * must outlive *out. qeil_tasks_read is qeil_tasks_read_as(QEIL_TASKS_AUTO). */
QEIL_API qeil_status qeil_tasks_read(qeil_ctx *ctx, const char *path, uint32_t limit, qeil_tasks **out);
QEIL_API qeil_status qeil_tasks_read_as(qeil_ctx *ctx, const char *path, qeil_tasks_format format,
                                        uint32_t limit, qeil_tasks **out);
QEIL_API void qeil_tasks_free(qeil_tasks *t);
QEIL_API uint32_t qeil_tasks_count(const qeil_tasks *t);
/* Task i (0-based), borrowed from t; NULL when i is out of range. */
QEIL_API const qeil_task *qeil_tasks_get(const qeil_tasks *t, uint32_t i);
/* The format the file was read as (detected or given); AUTO for NULL. */
QEIL_API qeil_tasks_format qeil_tasks_get_format(const qeil_tasks *t);

/* The prompt of task t, problem `problem` (its 0-based position in the
 * evaluation), with n_shots exemplars from `shots` (0..QEIL_TASKS_MAX_SHOTS;
 * shots may be NULL when n_shots is 0):
 *
 *     for each exemplar e:  "Q: " e.question "\nA: " e.solution "\n\n"
 *     then:                 "Q: " t.question "\nA:"
 *
 * The exemplars are drawn without replacement, uniformly, from the tasks of
 * `shots` whose question differs from t's (byte for byte), with an RNG
 * seeded from (seed, problem) only: the same seed gives every problem the
 * same exemplars whatever the other problems, --limit or the thread count.
 * QEIL_ERR_RANGE when n_shots is out of range or fewer than n_shots tasks
 * are eligible (named). *out is allocated from ctx (free with qeil_free);
 * shot_idx, when not NULL, receives the n_shots indices into `shots` in
 * prompt order. Thread-safe for distinct ctx. */
QEIL_API qeil_status qeil_tasks_prompt(qeil_ctx *ctx, const qeil_task *t, uint32_t problem,
                                       const qeil_tasks *shots, uint32_t n_shots, uint64_t seed,
                                       char **out, uint32_t *shot_idx);

/* ------------------------------------------------------------------------ */
/* Drift: measured against predicted, online (docs/runtime.md "Drift")      */
/* ------------------------------------------------------------------------ */

/* An EWMA of measured/predicted time per step, compared with a baseline
 * ratio: when it and each step's own ratio stay more than `threshold`
 * away from the baseline (same side) for `min_steps` consecutive
 * observations, the detector fires once (the
 * caller recalibrates and re-plans between requests) and takes the
 * current EWMA as its new baseline. Noise of ±10 % on single steps moves
 * an EWMA with alpha 0.2 by a few percent: it never fires on that. */
typedef struct {
    double alpha;       /* weight of a new observation, (0, 1]; default 0.2 */
    double threshold;   /* relative drift |ewma/baseline − 1| that counts, (0, 10];
                           default 0.20 */
    uint32_t min_steps; /* consecutive steps past the threshold to fire, 1..1e6;
                           default 5 */
    double baseline;    /* the calibrated ratio measured/predicted, > 0; default 1 */
} qeil_drift_params;

QEIL_API qeil_drift_params qeil_drift_default_params(void);

typedef struct {
    qeil_drift_params p;
    double ewma;        /* current EWMA of the ratio (baseline before any step) */
    double baseline;    /* current baseline ratio */
    uint32_t over;      /* consecutive steps past the threshold */
    uint64_t steps;     /* observations so far */
    uint64_t fires;     /* times it fired */
} qeil_drift;

/* Validate p (NULL: the defaults; QEIL_ERR_RANGE naming the field, value
 * and range via ctx, which may be NULL) and reset d. */
QEIL_API qeil_status qeil_drift_init(qeil_ctx *ctx, qeil_drift *d, const qeil_drift_params *p);
/* One step: measured and predicted seconds (both > 0 and finite, else the
 * step is ignored and 0 returned). Returns 1 when the detector fires on
 * this step, else 0. *ratio (may be NULL) gets ewma/baseline − 1 before a
 * re-baseline: the drift that made it fire. Pure arithmetic, no
 * allocation; not thread-safe per d. */
QEIL_API int qeil_drift_observe(qeil_drift *d, double measured_s, double predicted_s, double *ratio);

/* ------------------------------------------------------------------------ */
/* Runtime                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct {
    const char *model_path;         /* GGUF file (llama, qwen2, gpt2); required */
    const qeil_platform *platform;  /* target platform that plans and energy are modeled
                                       on; copied at create; NULL = QEIL_DEFAULT_PLATFORM
                                       from the catalog */
    int n_threads;                  /* engine workers, 0 = online CPUs;
                                       0..QEIL_ENGINE_MAX_THREADS; default 0 */
    uint32_t n_ctx;                 /* KV capacity per sequence in tokens, 0 = min(model,
                                       4096); default 0 */
    uint32_t samples;               /* K: sample budget per request; 1..QEIL_MAX_SAMPLES;
                                       default 8 */
    uint32_t batch;                 /* samples decoded together (engine sequences besides
                                       the prompt's); 0..min(samples,
                                       QEIL_SELECT_MAX_BATCH); 0 = no sample slots:
                                       qeil_runtime_generate only (one sequence of KV);
                                       default 4 */
    uint32_t max_tokens;            /* tokens per sample at most;
                                       1..QEIL_RUNTIME_MAX_TOKENS; default 128 */
    qeil_select_params select;      /* selection tuning (docs/selection.md); method, mode,
                                       budget and batch are set by the runtime; default
                                       qeil_select_default_params() */
    /* measured energy (docs/runtime.md "Measured energy"): a CPU meter
     * (qeil_sense_cpu_meter) read around each prefill and decode */
    int sensors;                    /* 1: open the sensors; 0: none (every measure is
                                       n/a); default 1 */
    qeil_sense_meter_params meter;  /* root ("/"), NVML, a test hook; default
                                       qeil_sense_meter_default_params() */
    /* online re-planning (docs/runtime.md "Drift and re-planning") */
    int replan;                     /* 1: watch each decode step's measured time per
                                       platform unit (the engine's per-work-unit times,
                                       each work unit counted on the unit the plan
                                       decodes it on) against the plan's prediction for
                                       that unit (one qeil_drift per unit) and, when a
                                       unit drifts, rescale that unit's η and re-plan
                                       every configuration before the next request
                                       (PGSAM warm-started from its front);
                                       0: never; default 0. Meaningful when the
                                       platform describes the machine that runs (a
                                       probed profile) */
    qeil_drift_params drift;        /* the detector; default qeil_drift_default_params() */
    uint32_t replan_iters;          /* evaluations of a warm re-plan, 1..QEIL_MAX_ITERS;
                                       default 1000 (docs/benchmarks.md "Re-planning") */
    /* the thermal guard (docs/guard.md "In the runtime"): reads the
     * temperature sensors under meter.root every guard_params.min_period_s
     * of the generation loop, and the throttle counters at the start and
     * end of each request */
    int guard;                      /* 1: run it when sensors is 1 (default); 0: off.
                                       Its migrations move a running request's blocks
                                       off a hot unit between decode steps when the
                                       platform's units name local devices */
    qeil_guard_params guard_params; /* default qeil_guard_default_params() */
    void (*guard_hook)(void *user); /* called right before each guard reading (tests
                                       change a fixture's files with it); NULL = none */
    void *guard_hook_user;
    const char *placement;          /* where the engine's work units run, e.g. "all:vk0",
                                       "emb..b7:cpu,b8..head:vk0" (both phases) or
                                       "prefill=all:vk0;decode=all:cpu"
                                       (qeil_placement_parse_phases; docs/runtime.md);
                                       read at create only; NULL = all on cpu; default NULL */
    /* recovery from a failed unit (docs/runtime.md "Recovery from a failed unit") */
    const qeil_fault *fault;        /* a fault to inject (tests; the CLI's QEIL_FAULT), armed
                                       at create after the placement; read at create only;
                                       NULL = none; default NULL */
    int recover;                    /* 1: a failed device's units move off it and the
                                       request resumes: to the placement PGSAM re-plans
                                       without the unit when the platform's units name
                                       local devices, else to the surviving devices of
                                       the placement; 0: the request fails with
                                       QEIL_ERR_DEVICE; default 1 */
    int kv_rebuild;                 /* how a moved block's KV is rebuilt:
                                       QEIL_KV_REBUILD_HOST_COPY (a host copy kept after
                                       every step) or QEIL_KV_REBUILD_RECOMPUTE (the
                                       sequences' prefixes run again); default HOST_COPY */
    double watchdog_s;              /* bound on a device's sync per row of a step (a hung
                                       device; it follows a device that is merely slow:
                                       docs/runtime.md), (0, 3600] s; default 0.25 */
    /* tests: called each decode step (replan = 1) with the plan's predicted
     * and the measured seconds of the step per platform unit (n_units =
     * the platform's; 0 where the plan decodes nothing on the unit), before
     * the drift detectors see them; it may rewrite meas_s (inject
     * timings). NULL = none; default NULL */
    void (*step_times_hook)(void *user, const double *pred_s, double *meas_s, int n_units);
    void *step_times_user;
} qeil_runtime_params;

enum { QEIL_KV_REBUILD_HOST_COPY = 0, QEIL_KV_REBUILD_RECOMPUTE = 1 };

/* The defaults stated field by field above. */
QEIL_API qeil_runtime_params qeil_runtime_default_params(void);

typedef struct qeil_runtime qeil_runtime;

/* Validate p (QEIL_ERR_RANGE / QEIL_ERR_INVALID naming the field, its value
 * and the allowed range), copy the platform, open the model (the engine's
 * own errors pass through: QEIL_ERR_IO, QEIL_ERR_FORMAT,
 * QEIL_ERR_UNSUPPORTED, ...) and allocate the decode buffers. ctx (not
 * NULL) supplies the allocator, receives every error detail of this runtime
 * and must outlive it. *out is NULL on failure. */
QEIL_API qeil_status qeil_runtime_create(qeil_ctx *ctx, const qeil_runtime_params *p, qeil_runtime **out);
QEIL_API void qeil_runtime_free(qeil_runtime *rt); /* NULL is a no-op */

/* Sampling parameters of the requests that follow (one sampler per sample
 * slot, created here). sp->seed is the sample streams' seed. Must be called
 * before the first request; may be called again between requests (it ends
 * the current one: begin it again to select on it).
 * QEIL_ERR_RANGE naming the field when sp is invalid for this model (top_k
 * above its vocabulary, ...); the previous samplers stay on failure. */
QEIL_API qeil_status qeil_runtime_set_sampler(qeil_runtime *rt, const qeil_sampler_params *sp);

/* The model, the platform copy, the context length; borrowed, valid while
 * rt lives. */
QEIL_API const qeil_model_desc *qeil_runtime_model(const qeil_runtime *rt);
/* The model's tokenizer (qeil_chat_tokenize takes it) and its
 * tokenizer.chat_template source (NULL when it has none); borrowed. */
QEIL_API const qeil_tokenizer *qeil_runtime_tokenizer(const qeil_runtime *rt);
QEIL_API const char *qeil_runtime_chat_template(const qeil_runtime *rt);
QEIL_API const qeil_platform *qeil_runtime_platform(const qeil_runtime *rt);
QEIL_API uint32_t qeil_runtime_n_ctx(const qeil_runtime *rt);
QEIL_API uint32_t qeil_runtime_n_vocab(const qeil_runtime *rt);
QEIL_API uint32_t qeil_runtime_n_units(const qeil_runtime *rt); /* work units: n_layers + 2 */
QEIL_API const qeil_runtime_params *qeil_runtime_get_params(const qeil_runtime *rt);

/* Tokenize text with the model's tokenizer into ids[0..cap). add_bos: -1 as
 * the model asks, 0 never, 1 always; parse_special: 1 turns special-token
 * text (<|endoftext|>) into its token, 0 keeps it as text (task questions are
 * data). *n gets the count. Errors as qeil_tokenizer_encode. */
QEIL_API qeil_status qeil_runtime_tokenize(qeil_runtime *rt, const char *text, int add_bos,
                                           int parse_special, int32_t *ids, size_t cap, size_t *n);

/* ---- Configurations: a plan and a selection method ---- */

typedef struct {
    qeil_plan_method plan_method; /* PGSAM, GREEDY or STANDARD; default PGSAM */
    qeil_select_method select;    /* default QEIL_SELECT_CASCADE */
    uint64_t plan_seed;           /* seed of the plan search; default 0 */
    double max_latency_s;         /* PGSAM: the lowest-energy front plan within this
                                     latency on the planning workload; 0 = the knee;
                                     >= 0; default 0 */
    int knee_fallback;            /* max_latency_s > 0 and no plan within it: 1 = take
                                     the knee, 0 = QEIL_ERR_RANGE; default 0 */
} qeil_runtime_config;

QEIL_API qeil_runtime_config qeil_runtime_default_config(void);

/* The planning workload for requests of `prompt_tokens` (e.g. the mean
 * over a task set): max_tokens generated tokens, or what fits the context
 * after the prompt when fewer (generation stops at the context), and the
 * sample budget. */
QEIL_API qeil_workload_params qeil_runtime_planning_workload(const qeil_runtime *rt,
                                                             uint32_t prompt_tokens);

/* Plan configuration c on the planning workload wp (qeil_plan_search on
 * the runtime's platform) and create its selectors; *index gets its number
 * (0, 1, ... in order of addition). Errors: the planner's, QEIL_ERR_RANGE
 * ("max_latency_s: no plan on the front is within S s") when knee_fallback
 * is 0, QEIL_ERR_RANGE for a bad field or more than
 * QEIL_RUNTIME_MAX_CONFIGS configurations. */
QEIL_API qeil_status qeil_runtime_add_config(qeil_runtime *rt, const qeil_runtime_config *c,
                                             const qeil_workload_params *wp, uint32_t *index);

typedef struct {
    qeil_runtime_config config;
    qeil_assignment plan;  /* the chosen plan */
    qeil_eval plan_ev;     /* the plan on the planning workload (modeled) */
    int plan_bounded;      /* 1: chosen under max_latency_s; 0: the knee (or not PGSAM) */
} qeil_runtime_config_info;

/* Copy configuration `index`'s plan; QEIL_ERR_RANGE for an unknown index. */
QEIL_API qeil_status qeil_runtime_config_get(const qeil_runtime *rt, uint32_t index,
                                             qeil_runtime_config_info *out);

/* ---- Requests ---- */

typedef struct {
    const int32_t *prompt;     /* tokens, borrowed until the next begin; 1..n_ctx-1 of them */
    uint32_t n_prompt;
    qeil_answer_mode mode;     /* how answers are extracted and compared */
    uint32_t stream;           /* sample stream id (e.g. the problem's index): sample k
                                  is seeded by (sampler seed, stream, k) */
    const qeil_answer *gold;   /* reference answer, or NULL: the result is then unscored;
                                  borrowed like prompt */
} qeil_runtime_request;

typedef struct {
    /* selection */
    qeil_answer answer;          /* the chosen answer (has == 0: none) */
    qeil_select_stage stage;     /* what decided it */
    qeil_select_stop stop;       /* why sampling ended */
    uint32_t n_samples;          /* samples the selection drew (>= 1) */
    uint64_t n_tokens;           /* tokens those samples generated (prompt excluded) */
    uint32_t n_prompt;           /* prompt tokens */
    int correct;                 /* gold given: 1 when answer equals it; else 0 */
    uint32_t n_correct;          /* gold given: samples whose own answer equals it */
    /* wall time, measured on this machine */
    double prefill_s;            /* the prompt's prefill */
    double decode_s;             /* the drawn samples' share of their decode batches
                                    (sampling included) */
    double wall_s;               /* prefill_s + decode_s */
    /* energy and latency of the work on the configuration's plan and platform */
    double energy_J;             /* finite, >= 0 */
    double latency_s;            /* on the target platform (modeled), finite, >= 0 */
    int plan_feasible;           /* the energy model's feasibility of the plan */
    /* Provenance of energy_J: always QEIL_PROV_MODELED. energy_J prices the
     * work on the configuration's plan and target platform, which need not
     * be this machine; what this machine's sensors measured is apart, below. */
    qeil_provenance energy_src;
    /* measured on this machine by the CPU meter (qeil_runtime_meter_provenance):
     * the prefill, and the drawn samples' share of their decode batches (each
     * batch measured whole, shared equally like decode_s). valid = 0 (NAN
     * energy) when there is no sensor or a reading failed: never modeled. */
    qeil_sense_measure prefill_meas, decode_meas;
} qeil_runtime_result;

/* Start a request: prefill its prompt on the prompt sequence, forget the
 * previous request's samples, reset the per-unit timers. QEIL_ERR_INVALID
 * without set_sampler or with batch 0; QEIL_ERR_RANGE for a bad request
 * (empty prompt, one that fills the context, a bad mode); the engine's
 * error as "prefill: ...". */
QEIL_API qeil_status qeil_runtime_begin(qeil_runtime *rt, const qeil_runtime_request *rq);

/* Run configuration `config` on the current request: its selector draws
 * samples (from the cache when an earlier configuration drew them), then
 * the work is priced on its plan. *out is zeroed on failure. Errors: the
 * generator's ("sampling: ...", "decode: ...", "fork: ..."), the selector's,
 * "energy model: ...", QEIL_ERR_INFEASIBLE when the plan cannot run the
 * work, QEIL_ERR_INVALID without a begun request. */
QEIL_API qeil_status qeil_runtime_select(qeil_runtime *rt, uint32_t config, qeil_runtime_result *out);

/* Seconds of wall time per work unit (0 = embedding, 1..n_layers = blocks,
 * n_layers+1 = head) since the current request began (every sample drawn
 * for it so far); n_units values (at most qeil_runtime_n_units) into t_s. */
QEIL_API void qeil_runtime_unit_times(const qeil_runtime *rt, double *t_s, uint32_t n_units);

/* Transfers between devices since create (qeil_engine_transfer_stats:
 * activations at unit boundaries per phase, KV moved at phase switches,
 * seconds per device per phase), and the placement each phase runs
 * (qeil_engine_get_placements; after a recovery both are the recovered
 * one). */
QEIL_API void qeil_runtime_transfer_stats(const qeil_runtime *rt, qeil_engine_transfers *out);
QEIL_API qeil_status qeil_runtime_placements(const qeil_runtime *rt, uint8_t *prefill,
                                             uint8_t *decode, uint32_t n_units);

/* The CPU meter's provenance ("rapl-package", ...; NULL: no sensor or
 * sensors off) and what it covers or why there is none (never NULL);
 * borrowed, valid while rt lives. */
QEIL_API const char *qeil_runtime_meter_provenance(const qeil_runtime *rt);
QEIL_API const char *qeil_runtime_meter_covers(const qeil_runtime *rt);

/* ---- Thermal guard ---- */

typedef struct {
    int active;             /* 1: a temperature sensor of this machine maps to a unit
                               of the platform and is read */
    const char *reason;     /* what it reads ("cpu <- hwmon:coretemp:Package id 0") or
                               why it is inactive ("no temperature sensor under /");
                               owned by rt */
    size_t n_actions;       /* guard actions since the current request began */
    const qeil_guard_action *actions; /* borrowed, valid until the next request */
    int throttle_known;     /* 1: a throttle counter exists; 0: none (report null) */
    uint64_t throttle_events; /* ground truth (qeil_sense_throttle_between) since the
                                 request began: cpufreq throttle counters, NVML
                                 clocks-event reasons, hwmon critical alarms */
    double max_temp_C;      /* hottest reading since the request began; NAN: none */
    uint32_t readings;      /* guard readings since the request began */
    double t0_s;            /* when the request began, CLOCK_MONOTONIC s (the clock of
                               the actions' t_s); NAN when the guard is off */
} qeil_runtime_guard_report;

/* The guard's report on the current (or last) request or generation.
 * Zeroed with reason "guard off" when params.guard or params.sensors is 0. */
QEIL_API void qeil_runtime_guard_report_get(const qeil_runtime *rt, qeil_runtime_guard_report *out);

/* ---- Single-stream generation (`qeil generate`) ---- */

typedef enum {
    QEIL_RUNTIME_STOP_LENGTH = 0, /* max_tokens generated */
    QEIL_RUNTIME_STOP_EOS,        /* the model's end-of-sequence token */
    QEIL_RUNTIME_STOP_CONTEXT     /* the context is full */
} qeil_runtime_stop;

QEIL_API const char *qeil_runtime_stop_name(qeil_runtime_stop s); /* "length", "eos", "context" */

/* Called with each generated token and its text (piece: `len` bytes, not
 * NUL-terminated, borrowed for the call). A status other than QEIL_OK ends
 * generation; qeil_runtime_generate then returns it. */
typedef qeil_status (*qeil_runtime_token_fn)(void *user, int32_t token, const char *piece,
                                             size_t len);

typedef struct {
    uint32_t n_prompt;       /* prompt tokens prefilled */
    uint32_t n_gen;          /* tokens generated (EOS excluded) */
    uint32_t n_decode;       /* decode steps evaluated */
    uint32_t n_sampled;      /* sampler calls (n_gen, plus one for a final EOS) */
    double prefill_s;        /* wall time of the prefill, s */
    double decode_s;         /* wall time of the decode steps, s */
    double sample_s;         /* wall time in the sampler, s */
    qeil_runtime_stop stop;
    /* measured by the CPU meter around the prefill and around the whole
     * decode loop (sampling and the callback included); valid = 0 when
     * there is no sensor or a reading failed */
    qeil_sense_measure prefill_meas, decode_meas;
    int32_t stop_token;      /* stop EOS: the token that ended it (EOS or a stop token);
                                else 0 */
} qeil_runtime_gen_result;

/* Prefill prompt[0..n_prompt) on the prompt sequence (from empty) and
 * sample up to max_tokens (>= 1; not bounded by the params' max_tokens)
 * tokens with slot 0's sampler re-seeded with the sampler params' seed,
 * decoding one token at a time (qeil_engine_eval on sequence 0). Allocates
 * the (n_prompt + max_tokens)-token history the repetition penalty reads. tokens (may be NULL) gets the generated ids and lps (may be NULL)
 * their log-probabilities, max_tokens entries each; cb (may be NULL) sees
 * each token as it is produced. Errors: QEIL_ERR_INVALID (no sampler, NULL
 * prompt), QEIL_ERR_RANGE (n_prompt 0 or above n_ctx), "prefill: ...",
 * "sampling: ...", "decode: ...", or the callback's status. It reuses the
 * prompt sequence, so it ends the current request of qeil_runtime_begin. */
QEIL_API qeil_status qeil_runtime_generate(qeil_runtime *rt, const int32_t *prompt, uint32_t n_prompt,
                                           uint32_t max_tokens, int32_t *tokens,
                                           qeil_sampler_logprob *lps, qeil_runtime_token_fn cb,
                                           void *user, qeil_runtime_gen_result *out);

/* Continue the last generation on sequence 0 (a chat's next turn, reusing
 * the KV cache of the previous ones): prefill prompt[0..n_prompt) after the
 * qeil_runtime_gen_len tokens sequence 0 holds, then sample as
 * qeil_runtime_generate (the sampler re-seeded; the repetition penalty
 * sees this call's prompt and tokens only). n_prompt 1..n_ctx minus what
 * sequence 0 holds (QEIL_ERR_RANGE naming both). QEIL_ERR_INVALID when
 * sequence 0 holds no generation: none yet, or the last one failed, or
 * qeil_runtime_begin ran since. Sequence 0 then holds the previous tokens,
 * this prompt and the generated tokens that were evaluated: every one but
 * a final stop token, and but the last when generation stopped at
 * max_tokens or the context (out->n_decode of them). */
QEIL_API qeil_status qeil_runtime_generate_more(qeil_runtime *rt, const int32_t *prompt, uint32_t n_prompt,
                                                uint32_t max_tokens, int32_t *tokens,
                                                qeil_sampler_logprob *lps, qeil_runtime_token_fn cb,
                                                void *user, qeil_runtime_gen_result *out);
/* Sample k of the current request, drawn so far by a select: its text
 * (NUL-terminated, borrowed until the next begin), its token count and the
 * sum of its tokens' raw log-probabilities (either may be NULL). NULL when
 * k was not drawn. */
QEIL_API const char *qeil_runtime_sample(const qeil_runtime *rt, uint32_t k, uint32_t *n_tokens,
                                         double *logprob_sum);

/* The two rules every sample of a request follows, for callers that drive
 * the step API themselves (qeil serve's cascade) and must draw the same
 * samples as qeil_runtime_select:
 * - qeil_runtime_sample_seed: the sampler seed of sample k of request
 *   stream `stream` under the request's seed (splitmix64's finaliser, twice):
 *   independent of batching, of the selection method and of how many
 *   samples other requests drew. Pure; thread-safe.
 * - qeil_runtime_answer_end: the length of text[0..len) to keep once the
 *   sample's answer is complete (after the first "####", the first "\n\n"
 *   or "Q:" ends it, docs/runtime.md); 0 while it is not. Pure; text may
 *   hold NULs; NULL with len 0 is allowed. */
QEIL_API uint64_t qeil_runtime_sample_seed(uint64_t seed, uint32_t stream, uint32_t k);
QEIL_API size_t qeil_runtime_answer_end(const char *text, size_t len);

/* ---- Recovery from a failed unit ---- */

#define QEIL_RUNTIME_MAX_RECOVERIES 8u /* per request: one per device at most */

/* One recovery: what failed, and the time of each step. total_s is the
 * time the request lost: detect_s + replan_s + move_s + kv_s. */
typedef struct {
    char device[16];      /* the failed device ("vk0") */
    uint32_t unit;        /* the work unit whose check failed */
    uint64_t op;          /* the failing op's index on the device (injected faults;
                             0 = unknown) */
    char op_name[16];     /* "matmul", "sync", ... ("" = unknown) */
    char cause[8];        /* "error", "hang", "oom", "sensor" */
    uint32_t units_moved; /* work units moved to the survivors */
    int kv_recomputed;    /* 1: KV rebuilt by recomputing the prefixes; 0: from the
                             host copy */
    double detect_s;      /* failing op (or unit start) to detection */
    double replan_s;      /* the new placement chosen */
    double move_s;        /* weights prepared on the survivors, KV allocated */
    double kv_s;          /* KV of the moved blocks rebuilt */
    double total_s;
    /* how the new placement was chosen (docs/runtime.md "Recovery from a
     * failed unit", step 1) */
    char method[12];      /* "planner": PGSAM re-planned the request without the failed
                             unit on the runtime's platform, whose units name local
                             devices (qeil_unit.device), warm-started from its fronts;
                             "survivor": each failed unit went to the device of the unit
                             before it */
    char fallback[160];   /* method "survivor": why the planner was not used (the
                             platform names no local device, no feasible plan, ...);
                             for "planner": "", or why the plan's moves of healthy units
                             were not made (the failed units' were; the others stayed) */
    uint64_t evaluations; /* plans the re-plan evaluated (0 for "survivor") */
    uint32_t n_units;     /* entries of placement (the model's work units) */
    uint8_t placement[QEIL_MAX_WUNITS]; /* the placement the request resumed on (backend
                                           ids, qeil_engine_device_name) */
} qeil_runtime_recovery;

/* Recoveries of the current request (since qeil_runtime_begin or the start
 * of qeil_runtime_generate), in order; up to cap into out (may be NULL);
 * returns how many there were. */
QEIL_API uint32_t qeil_runtime_recoveries(const qeil_runtime *rt, qeil_runtime_recovery *out,
                                          uint32_t cap);

/* Re-admit every failed device, put the units back where create placed
 * them, forget the recoveries, and arm fault f (NULL: none) — a sweep runs
 * many faults on one runtime. Errors: qeil_engine_set_fault's,
 * set_placement's. */
QEIL_API qeil_status qeil_runtime_set_fault(qeil_runtime *rt, const qeil_fault *f);
/* Ops counted on the armed fault's device so far (0 without one). */
QEIL_API uint64_t qeil_runtime_fault_ops(const qeil_runtime *rt);


/* Tokens sequence 0 holds after a successful qeil_runtime_generate /
 * generate_more (0 when it holds none to continue). */
QEIL_API uint32_t qeil_runtime_gen_len(const qeil_runtime *rt);

/* End-of-generation tokens besides the model's EOS (a chat template's end
 * of turn, e.g. Gemma's <end_of_turn>), for qeil_runtime_generate and
 * generate_more: sampling one ends generation as EOS does (stop "eos",
 * the token not counted nor evaluated; out->stop_token names it). ids
 * copied; n 0..QEIL_RUNTIME_MAX_STOP (0 clears); each id 0..n_vocab-1
 * (QEIL_ERR_RANGE naming the index). */
QEIL_API qeil_status qeil_runtime_set_stop_tokens(qeil_runtime *rt, const int32_t *ids, uint32_t n);

/* ---- Re-planning events ---- */

#define QEIL_RUNTIME_MAX_REPLANS 64u /* events kept (the oldest are dropped) */

typedef struct {
    uint32_t request;        /* requests begun before it (it ran before request #request) */
    const char *cause;       /* "drift" (static string) */
    double ratio;            /* the unit's measured/predicted decode step time over the
                                baseline, − 1 */
    double scale;            /* factor applied to η_c and η_m of that unit */
    double replan_s;         /* wall time of the re-plans (all configurations), s */
    uint64_t evaluations;    /* plans evaluated */
    /* configuration 0's plan on its planning workload, before and after
     * (modeled; after = on the updated coefficients) */
    double energy_before_J, energy_after_J;
    double latency_before_s, latency_after_s;
    int plan_changed;        /* configuration 0's plan is a different assignment */
    int unit;                /* the platform unit that drifted (index) */
    char unit_name[QEIL_NAME_MAX]; /* ... and its name */
} qeil_runtime_replan;

/* Re-planning events since create (at most QEIL_RUNTIME_MAX_REPLANS kept:
 * the count keeps growing, qeil_runtime_replan_get returns the newest
 * ones); get copies event i (0 = the oldest kept) into *out,
 * QEIL_ERR_RANGE for an index not kept. */
QEIL_API uint32_t qeil_runtime_replan_count(const qeil_runtime *rt);
QEIL_API qeil_status qeil_runtime_replan_get(const qeil_runtime *rt, uint32_t i, qeil_runtime_replan *out);


/* ---- DASI, CPQ and Φ at run time ---- */

/* Per unit of the platform, after qeil_runtime_select: the planner's
 * values for the configuration's plan on the request's work, beside what
 * this machine measured (docs/runtime.md "DASI, CPQ and Φ at run time").
 * Measured values are NAN where they cannot be measured: the unit stands
 * for no local device (a catalog platform: it is not this machine), ran no
 * work, or has no sensor. */
typedef struct {
    char unit[QEIL_NAME_MAX];   /* the platform unit */
    char device[QEIL_NAME_MAX]; /* the local device it stands for; "" none */
    /* DASI, [0] prefill, [1] decode: the unit's work over its time, as a
     * fraction of its nominal peak (Σ F_w / Π_d(dtype_w) over Σ t_w).
     * pred: the plan's work units on it and the energy model's times;
     * meas: the work units the engine ran on its device and their measured
     * times (qeil_engine_unit_times) */
    double dasi_pred[2], dasi_meas[2];
    /* Φ = P_dyn / (P_dyn + P_leak(T)). pred: the energy model's over the
     * request; meas: the same dynamic power with the leakage at the
     * measured temperature (temp_C; the thermal guard's sensor for the unit) */
    double phi_pred, phi_meas, temp_C;
    /* the unit's memory pool: occupancy ρ and CPQ = ρ/(1−ρ). pred: the
     * plan's resident bytes; meas: the memory in use on this machine
     * (MemTotal − MemAvailable of <sensors root>/proc/meminfo) where the
     * pool is the host's (a cpu unit's) */
    char pool[QEIL_NAME_MAX];
    double rho_pred, cpq_pred, rho_meas, cpq_meas;
} qeil_runtime_unit_metrics;

/* The last select's metrics: copies min(cap, n) entries, returns n (the
 * platform's units; 0 before any select). */
QEIL_API uint32_t qeil_runtime_unit_metrics_get(const qeil_runtime *rt,
                                                qeil_runtime_unit_metrics *out, uint32_t cap);

/* ------------------------------------------------------------------------ */
/* Step-level decoding: sequences of several requests in one batch          */
/* ------------------------------------------------------------------------ */

/* For a server that interleaves requests (`qeil serve`, docs/serve.md): the
 * caller owns the scheduling, the samplers and the accounting; the runtime
 * evaluates. Sequences are 0..qeil_runtime_n_seq()-1 (1 + the params'
 * batch), each with its own KV of n_ctx tokens. Every call here ends the
 * current request of qeil_runtime_begin (sequence 0 may be reused) and
 * resets nothing else: a sequence keeps its KV until it is prefilled again.
 * Errors go to the runtime's ctx; same thread rules as the rest. */

/* Engine sequences: 1 + batch. */
QEIL_API uint32_t qeil_runtime_n_seq(const qeil_runtime *rt);
/* (qeil_runtime_tokenizer, above: immutable, so encode and piece may run
 * on other threads concurrently, each with its own ctx.) */
/* Tokens held by sequence seq (0 for an unknown seq). */
QEIL_API uint32_t qeil_runtime_seq_len(const qeil_runtime *rt, uint32_t seq);

/* Clear sequence seq and prefill prompt[0..n) on it in chunks; logits (may
 * be NULL) gets the n_vocab logits after the last token. QEIL_ERR_RANGE for
 * an unknown seq or n outside 1..n_ctx-1; the engine's error as
 * "prefill: ...". */
QEIL_API qeil_status qeil_runtime_seq_prefill(qeil_runtime *rt, uint32_t seq, const int32_t *prompt,
                                              uint32_t n, float *logits);
/* Copy src's KV into dst (fork a prefilled prompt into samples).
 * QEIL_ERR_RANGE for an unknown or equal sequence. */
QEIL_API qeil_status qeil_runtime_seq_fork(qeil_runtime *rt, uint32_t src, uint32_t dst);
/* One decode step for m sequences (one token each, distinct sequences,
 * none full): weights read once for the whole batch. logits: m × n_vocab
 * floats, row r for seqs[r]. QEIL_ERR_RANGE for m 0 or above n_seq, an
 * unknown, repeated or full sequence; the engine's error as "decode: ...". */
QEIL_API qeil_status qeil_runtime_decode_step(qeil_runtime *rt, const uint32_t *seqs,
                                              const int32_t *tokens, uint32_t m, float *logits);

/* ---- Plans to placements ---- */

/* The engine placement of one phase of plan a over profile pf: backend[w]
 * (qeil_engine_set_placement's ids) for each of the n_units work units,
 * from the unit the plan puts w on (a->pf_unit[w] for phase 0, prefill;
 * a->dc_unit[w] for phase 1, decode) through that unit's local device
 * (qeil_unit.device, which `qeil probe` writes). n_units 1..QEIL_MAX_WUNITS.
 * QEIL_ERR_RANGE for a phase other than 0/1 or a plan unit index outside
 * the profile; QEIL_ERR_NOTFOUND naming the unit when it stands for no local
 * device (a catalog platform) or for a device this build has no backend
 * for. Reads the plan's DVFS points and batch not at all. */
QEIL_API qeil_status qeil_plan_placement(qeil_ctx *ctx, const qeil_platform *pf,
                                         const qeil_assignment *a, int phase, uint32_t n_units,
                                         uint8_t *backend);

#ifdef __cplusplus
}
#endif

#endif /* QEIL_RUNTIME_H */
