/*
 * serve.h — the pieces of `qeil serve` (docs/serve.md), shared by
 * cli/cmd_serve.c (options, start, stop), cli/serve_http.c (libmicrohttpd:
 * routing, request JSON, responses, SSE), cli/serve_worker.c (the worker
 * thread that owns the runtime: queue, step-level batch, cascade),
 * cli/serve_chat.c (messages → prompt text) and cli/serve_page.c (the page
 * at /). Only the CLI links libmicrohttpd; libqeil knows nothing of HTTP.
 *
 * Threads: libmicrohttpd runs one thread per connection; one worker thread
 * owns the runtime (engine, KV, meter). They meet in serve_job, under the
 * server's one mutex: the connection builds a job (tokens, sampler), the
 * worker fills its text and accounting, each side drops its reference.
 */
#ifndef QEIL_SERVE_H
#define QEIL_SERVE_H

#include <pthread.h>
#include <stdint.h>

#include "qeil/runtime.h"

#define SERVE_MAX_PARALLEL 64u    /* --parallel: sequences decoded together */
#define SERVE_MAX_QUEUE 4096u     /* --queue: requests waiting for a sequence */
#define SERVE_MAX_STOP 4          /* "stop" strings per request (as OpenAI) */
#define SERVE_MAX_STOP_LEN 64     /* bytes per stop string */
#define SERVE_MAX_N 256u          /* "n": samples per cascade request */
#define SERVE_N_ENDPOINTS 8
#define SERVE_MAX_JOB_RECOVERIES 4u /* listed per answer (more are counted in /metrics) */

/* ---- a request on its way through the worker ---- */

typedef enum { JOB_QUEUED = 0, JOB_RUNNING, JOB_DONE } serve_job_state;

typedef struct {
    char *text;
    size_t len, cap;
    uint32_t n_tokens;
    double logprob_sum;
    uint32_t flags;
} serve_sample;

typedef struct serve_job {
    struct serve_job *next;       /* queue link */
    qeil_ctx *ctx;                /* the job's own: samplers, selector, errors */
    /* set by the connection before submit, read-only afterwards */
    int32_t *prompt;              /* [n_prompt + max_tokens]: prompt, then history */
    uint32_t n_prompt, max_tokens;
    uint64_t seed;
    char stop[SERVE_MAX_STOP][SERVE_MAX_STOP_LEN + 1];
    int n_stop;
    size_t holdback;              /* bytes a stream keeps back (longest stop - 1) */
    qeil_sampler **smp;           /* [n_smp]: 1 for a stream, min(n, parallel) for a cascade */
    uint32_t n_smp;
    int cascade;                  /* 1: n samples, selection */
    uint32_t n;                   /* cascade budget */
    qeil_selector *sel;
    /* under the server mutex */
    int refs;                     /* the connection's and the worker's */
    int cancelled;                /* the client went away */
    serve_job_state state;
    pthread_cond_t cv;            /* signalled when text grows or the job ends */
    char *text;                   /* generated text (a stream's answer) */
    size_t len, cap;
    uint32_t n_gen;
    int finish_length;            /* 1: max_tokens or the context ended it; 0: EOS/stop */
    qeil_status st;               /* QEIL_OK, or the worker's failure */
    char err[512];
    double t_submit_s, t_start_s, t_end_s;
    double busy_s;                /* this job's share of engine wall time */
    uint64_t dec_steps, dec_seqs; /* decode steps it took part in, Σ their batch sizes */
    uint64_t dec_load;            /* Σ over those steps of the load (sequences wanting a token) */
    qeil_sense_measure meas;      /* its share of what the CPU meter measured */
    qeil_runtime_recovery rec[SERVE_MAX_JOB_RECOVERIES]; /* recoveries in steps it was in */
    uint32_t n_rec;
    /* cascade */
    serve_sample *samples;        /* [n] */
    qeil_select_result sres;
    uint32_t chosen_sample;       /* the chosen cluster's first sample */
} serve_job;

/* ---- the server ---- */

typedef struct {
    /* fixed after start */
    qeil_ctx *ctx;                /* the runtime's: the worker's thread only */
    qeil_runtime *rt;
    int chat_tmpl;   /* qeil_chat_template of the model's tokenizer.chat_template
                        (QEIL_CHAT_UNKNOWN: the fallback format) */
    int32_t eot;     /* its end-of-turn token, -1 = none (generation stops there) */
    const qeil_tokenizer *tk;
    uint32_t n_vocab, n_ctx, parallel, queue_cap;
    qeil_platform pf;             /* the target platform plans are priced on */
    qeil_assignment plan;
    const char *plan_name;        /* "pgsam", "greedy", "standard", or the file */
    char ran_on[512];             /* --placement (default "all:cpu") */
    char plan_prefill[512], plan_decode[512]; /* "emb..b3:cpu,..." */
    /* The decode batch as a planning decision (docs/serve.md "Decode
     * batch"): with --plan auto|pgsam, PGSAM re-plans, warm-started, the
     * first time the load (sequences wanting a token in one step) reaches a
     * level, and the steps at that load decode in batches of that plan's b;
     * otherwise the plan's batch caps every step. */
    int batch_planned;
    qeil_workload_params plan_wp; /* the planning workload; samples = the load */
    const qeil_model_desc *md;
    char model_id[256];
    const char *api_key;          /* NULL: none */
    size_t max_body;
    const char *sensors_root;     /* --sensors-root (NULL: "/") */
    qeil_sense *sense;            /* throttle ground truth (NULL: none could be opened) */
    qeil_sense_sample *throttle0; /* its reading at start */
    const char *meter_prov;       /* NULL: no sensor; else meter_prov_buf */
    const char *meter_covers;     /* meter_covers_buf */
    char meter_prov_buf[160], meter_covers_buf[256]; /* copies: the meter is the worker's */
    /* under mu */
    pthread_mutex_t mu;
    pthread_cond_t work;          /* the worker waits here */
    serve_job *head, *tail;
    uint32_t n_queued, n_active, stopping;
    uint64_t next_id;
    double avg_job_s;             /* EWMA of request wall time (Retry-After) */
    /* metrics, under mu */
    uint64_t req[SERVE_N_ENDPOINTS][6]; /* by endpoint and status class 1xx..5xx, other */
    uint64_t prompt_tokens, gen_tokens, steps, step_seqs, last_batch;
    uint64_t samples_drawn, samples_saved, disconnects, rejected_429;
    double busy_s;                /* engine wall time on this machine */
    double energy_modeled_J, energy_measured_J, energy_saved_J;
    double dev_busy_s[QEIL_MAX_UNITS]; /* modeled, per platform unit */
    /* per load level L = 1..parallel (the worker writes, under mu) */
    qeil_assignment load_plan[SERVE_MAX_PARALLEL + 1]; /* the plan at load L */
    uint8_t load_planned[SERVE_MAX_PARALLEL + 1];     /* 1: load_plan[L] is set */
    uint64_t replans;             /* load re-plans done */
    double replan_s;              /* their wall time */
    uint64_t last_load;           /* sequences wanting a token in the last step */
    uint64_t faults_recovered;    /* device faults the runtime recovered from */
} serve_server;

/* serve_worker.c: start/stop the worker thread; submit a job (takes the
 * worker's reference) or refuse it: 0, or -1 when parallel + queue are
 * taken (429). */
int serve_worker_start(serve_server *s, pthread_t *th);
void serve_worker_stop(serve_server *s, pthread_t th);
int serve_submit(serve_server *s, serve_job *j);
/* Drop one reference (under s->mu); the last frees the job. */
void serve_job_unref_locked(serve_server *s, serve_job *j);

/* serve_http.c: the libmicrohttpd daemon on host:port (port 0: any free
 * port); *port gets the bound one. NULL on failure (message printed). */
struct MHD_Daemon;
struct MHD_Daemon *serve_http_start(serve_server *s, const char *host, unsigned port,
                                    unsigned timeout_s, unsigned *bound);

/* serve_chat.c: messages → the prompt. The model's chat template when
 * qeil knows its family (serve_chat_tokenize: template tokens parsed,
 * special-token text inside contents kept as text), else the fallback
 * text format (serve_chat_render, malloc'd, NULL when out of memory);
 * serve_chat_format names the one in use. */
typedef struct {
    const char *role;    /* "system", "user", "assistant", "tool" */
    const char *content; /* UTF-8 */
} serve_msg;
char *serve_chat_render(const serve_msg *msgs, size_t n);
const char *serve_chat_format(int chat_tmpl);
/* Tokenize msgs in template chat_tmpl into ids[0..cap) (*n_out the count;
 * QEIL_ERR_RANGE when cap is too small); "developer" is sent as "system".
 * Errors as qeil_chat_tokenize, the detail on ctx. */
qeil_status serve_chat_tokenize(qeil_ctx *ctx, const qeil_tokenizer *tk, int chat_tmpl,
                                const serve_msg *msgs, size_t n, int32_t *ids, size_t cap,
                                size_t *n_out);

/* serve_page.c: the page at / (HTML, NUL-terminated) */
extern const char serve_page_html[];

/* Modeled energy of a workload on the server's plan: prompt tokens,
 * gen tokens per sample, samples, decoded in batches of `batch` (0: the
 * plan's; clamped to 1..samples). 0 or -1 (infeasible / error). Pure:
 * any thread, ctx for errors. */
int serve_price(const serve_server *s, qeil_ctx *ctx, uint32_t n_prompt, uint32_t gen,
                uint32_t samples, uint32_t batch, qeil_eval *ev);
/* The decode batch for a step at load L (1..parallel sequences wanting a
 * token): the plan's batch at that load (re-planned with PGSAM the first
 * time the load is seen, --plan auto|pgsam), else the server plan's batch;
 * in 1..L. Worker thread only. */
uint32_t serve_decode_batch(serve_server *s, uint32_t load);
/* The plan decode at load L ran on (the server plan until L is planned;
 * *replanned 1 when it is a load re-plan's). Takes s->mu: any thread not
 * holding it. */
qeil_assignment serve_load_plan(serve_server *s, uint32_t load, int *replanned);

/* A plan's device map as text, "emb..b3:cpu,b4..head:gpu" (cmd_serve.c). */
void serve_device_map(const qeil_platform *pf, uint32_t n_units, const uint8_t *dev, char *buf,
                      size_t n);

/* The modeled energy (J), latency (s) and average power (W) of a finished
 * job's executed work (docs/serve.md "Responses and usage"). 0 or -1. */
int serve_job_price(serve_server *s, qeil_ctx *ctx, const serve_job *j, double *energy_J,
                    double *latency_s, double *power_W, qeil_eval *ev);


#endif /* QEIL_SERVE_H */
