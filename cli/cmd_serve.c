/* cmd_serve.c — `qeil serve`: an OpenAI-compatible HTTP server that reports
 * the energy of every answer (docs/serve.md). Options, the runtime and its
 * plan, the worker thread (cli/serve_worker.c) and the HTTP daemon
 * (cli/serve_http.c); SIGINT/SIGTERM stop it cleanly. */
#include <cjson/cJSON.h>
#include <math.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "opt.h"
#include "qeil/chat.h"
#include "serve.h"

#define CMD "serve"
#define MAX_CTX (1u << 24)
#define DEFAULT_PARALLEL 4u
#define DEFAULT_QUEUE 16u
#define DEFAULT_MAX_BODY (1u << 20)
#define MAX_MAX_BODY (64u << 20)
#define DEFAULT_TIMEOUT_S 30u
#define PLAN_PROMPT_TOKENS 64u /* the planning workload's prompt (docs/serve.md) */


typedef struct {
    const char *model, *host, *platform, *plan, *api_key, *placement, *sensors_root;
    uint32_t port, parallel, queue, max_body, timeout_s, n_ctx;
    int threads;
} serve_opts;

/* --plan: a method, or a file read once the model is open */
static int parse_plan(const char *cmd, const char *opt, const char *v, void *o)
{
    if (strcmp(v, "auto") != 0 && qeil_plan_method_from_name(v) < 0 && access(v, R_OK) != 0)
        return cli_usage_error(cmd, "%s: '%s' is not one of auto|pgsam|greedy|standard "
                                    "nor a readable file",
                               opt, v);
    ((serve_opts *)o)->plan = v;
    return 0;
}

/* the defaults and limits in the help are DEFAULT_* and *_MAX_* above */
#define T serve_opts
static const cli_optdef serve_table[] = {
    {CLI_STR("--model", "-m", "FILE", "GGUF model (llama, qwen2, gpt2)", T, model)},
    {CLI_STR("--host", NULL, "ADDR",
             "IPv4 or IPv6 address to bind (default 127.0.0.1: this\nmachine only)", T, host)},
    {CLI_U64("--port", NULL, "N",
             "TCP port, 0 = any free port (default 8080; 0..65535);\n"
             "the bound one is printed on stderr",
             T, port, 0, 65535)},
    {CLI_STR("--platform", NULL, "P",
             "target platform the energy is modeled on: catalog name\n"
             "or profile JSON (default " QEIL_DEFAULT_PLATFORM ")",
             T, platform)},
    {CLI_FN("--plan", NULL, "M|FILE",
            "auto|pgsam|greedy|standard, or a plan `qeil plan\n"
            "--output json` wrote (its recommended plan): the\n"
            "placement that prices the work (default auto =\n"
            "pgsam's knee plan)",
            parse_plan)},
    {CLI_U64("--parallel", NULL, "N", "requests decoded together (default 4; 1..64)", T,
             parallel, 1, SERVE_MAX_PARALLEL)},
    {CLI_U64("--queue", NULL, "N",
             "requests that may wait beyond those (default 16;\n"
             "0..4096); more get 429 with Retry-After",
             T, queue, 0, SERVE_MAX_QUEUE)},
    {CLI_STR("--api-key", NULL, "KEY",
             "require 'Authorization: Bearer KEY' on /v1/* and\n"
             "/metrics (compared in constant time); default: the\n"
             "environment variable QEIL_API_KEY when set",
             T, api_key),
     .flags = CLI_OPT_NONEMPTY},
    {CLI_U64("--max-body", NULL, "BYTES",
             "request body limit, 413 beyond (default 1048576;\n1..67108864)", T, max_body, 1,
             MAX_MAX_BODY)},
    {CLI_U64("--timeout", NULL, "S", "close a connection idle this long (default 30; 1..3600)",
             T, timeout_s, 1, 3600)},
    {CLI_U64("--threads", "-t", "N", "engine worker threads (default 0 = all online CPUs)", T,
             threads, 0, QEIL_ENGINE_MAX_THREADS)},
    {CLI_U64("--ctx-size", "-c", "N", "context per request (default 0 = min(model's, 4096))", T,
             n_ctx, 0, MAX_CTX)},
    {CLI_STR("--sensors-root", NULL, "DIR",
             "read sensors under DIR instead of / (fixture trees)", T, sensors_root)},
    {CLI_STR("--placement", NULL, "SPEC",
             "where the work units run on this machine, e.g. all:vk0\n"
             "or emb..b7:cpu,b8..head:vk0 (default all:cpu); a unit\n"
             "that fails moves to the others (QEIL_FAULT injects one)",
             T, placement)},
};
#undef T

static const cli_command serve_cmd = {
    CMD,
    "usage: qeil serve -m FILE [options]\n\n"
    "Serve a GGUF model over HTTP with an OpenAI-compatible API; every answer's usage\n"
    "carries its energy (J), average power (W), their provenance (measured or modeled)\n"
    "and the placement it was priced on. Endpoints: POST /v1/completions, POST\n"
    "/v1/chat/completions (both with \"stream\": true as server-sent events), GET\n"
    "/v1/models, GET /health, GET /metrics (Prometheus), GET / (a chat page).\n"
    "Requests decode together, in engine steps of the batch the plan gives at the\n"
    "current load.\n",
    serve_table,
    CLI_NOPTS(serve_table),
    "examples:\n"
    "  qeil serve -m model.gguf --port 8080\n"
    "  curl -s localhost:8080/v1/chat/completions -d '{\"messages\":[{\"role\":\"user\",\n"
    "       \"content\":\"Hello\"}],\"max_tokens\":32}'\n",
    NULL,
};

/* "emb..b3:cpu,b4..head:gpu": the platform unit of each work unit. */
void serve_device_map(const qeil_platform *pf, uint32_t n_units, const uint8_t *dev, char *buf,
                      size_t n)
{
    size_t len = 0;
    buf[0] = '\0';
    for (uint32_t w = 0; w < n_units;) {
        uint32_t e = w;
        while (e + 1 < n_units && dev[e + 1] == dev[w]) e++;
        char a[16], b[16];
        for (int k = 0; k < 2; k++) {
            uint32_t x = k ? e : w;
            char *t = k ? b : a;
            if (x == 0) snprintf(t, 16, "emb");
            else if (x + 1 == n_units) snprintf(t, 16, "head");
            else snprintf(t, 16, "b%u", x - 1);
        }
        int k = e == w ? snprintf(buf + len, n - len, "%s%s:%s", len ? "," : "", a,
                                  pf->units[dev[w]].name)
                       : snprintf(buf + len, n - len, "%s%s..%s:%s", len ? "," : "", a, b,
                                  pf->units[dev[w]].name);
        if (k < 0 || (size_t)k >= n - len) break;
        len += (size_t)k;
        w = e + 1;
    }
}

int cmd_serve(int argc, char **argv)
{
    serve_opts o;
    memset(&o, 0, sizeof o);
    o.host = "127.0.0.1";
    o.port = 8080;
    o.plan = "auto";
    o.parallel = DEFAULT_PARALLEL;
    o.queue = DEFAULT_QUEUE;
    o.max_body = DEFAULT_MAX_BODY;
    o.timeout_s = DEFAULT_TIMEOUT_S;
    int rc = cli_opt_parse(&serve_cmd, argc, argv, &o);
    if (rc != CLI_OK) return rc == CLI_OPT_HELP ? CLI_OK : rc;
    if (!o.model) return cli_usage_error(CMD, "-m FILE is required");
    /* the key from the environment keeps it out of the process list */
    const char *env = getenv("QEIL_API_KEY");
    if (!o.api_key && env && env[0]) o.api_key = env;

    /* signals go to sigwait below, not to a thread: blocked before any
     * thread starts (the engine's pool, the worker, the daemon's) */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    static serve_server s; /* the daemon's threads see it until the very end */
    memset(&s, 0, sizeof s);
    s.ctx = cli_ctx_create();
    if (!s.ctx) return cli_fail(CMD, "out of memory");
    rc = CLI_FAIL;
    struct MHD_Daemon *d = NULL;
    pthread_t worker;
    int worker_up = 0;
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.work, NULL);

    if (o.platform && qeil_platform_load(s.ctx, o.platform, &s.pf) != QEIL_OK) {
        rc = cli_usage_error(CMD, "--platform: %s", qeil_ctx_errmsg(s.ctx));
        goto out;
    }
    /* sequences 1..parallel hold the requests; sequence 0 a cascade's prompt */
    qeil_runtime_params rp = qeil_runtime_default_params();
    rp.model_path = o.model;
    rp.platform = o.platform ? &s.pf : NULL;
    rp.n_threads = o.threads;
    rp.n_ctx = o.n_ctx;
    rp.samples = o.parallel;
    rp.batch = o.parallel;
    rp.sensors = 0; /* the worker opens its own meter around each step */
    rp.placement = o.placement;
    qeil_fault fault;
    int fault_set = 0;
    if ((rc = cli_fault_env(CMD, s.ctx, &fault, &fault_set)) != CLI_OK) goto out;
    rc = CLI_FAIL;
    if (fault_set) rp.fault = &fault;
    snprintf(s.ran_on, sizeof s.ran_on, "%s", o.placement ? o.placement : "all:cpu");
    s.sensors_root = o.sensors_root;
    /* throttle ground truth (docs/serve.md "Metrics"): the kernel's and the
     * driver's counters, read at start and at each scrape */
    qeil_sense_params sp = qeil_sense_default_params();
    sp.root = o.sensors_root;
    if (qeil_sense_create(s.ctx, &sp, &s.sense) == QEIL_OK) {
        s.throttle0 = qeil_sense_sample_create(s.ctx, s.sense);
        if (s.throttle0) qeil_sense_read(s.sense, s.throttle0);
    } else if (o.sensors_root) {
        rc = cli_usage_error(CMD, "--sensors-root: %s", qeil_ctx_errmsg(s.ctx));
        goto out;
    }
    if (qeil_runtime_create(s.ctx, &rp, &s.rt) != QEIL_OK) {
        cli_fail(CMD, "%s", qeil_ctx_errmsg(s.ctx));
        goto out;
    }
    s.pf = *qeil_runtime_platform(s.rt);
    s.md = qeil_runtime_model(s.rt);
    s.tk = qeil_runtime_tokenizer(s.rt);
    /* the model's chat template, when qeil knows its family (qeil/chat.h) */
    const char *tsrc = qeil_runtime_chat_template(s.rt);
    s.chat_tmpl = tsrc ? (int)qeil_chat_detect(tsrc, strlen(tsrc)) : (int)QEIL_CHAT_UNKNOWN;
    s.eot = -1;
    const char *eot = qeil_chat_end_of_turn((qeil_chat_template)s.chat_tmpl);
    if (eot) s.eot = qeil_tokenizer_find(s.tk, eot, strlen(eot));
    if (tsrc && s.chat_tmpl == QEIL_CHAT_UNKNOWN)
        fprintf(stderr, "qeil serve: warning: the model's chat template is not a family qeil knows; "
                        "/v1/chat/completions uses the fallback format (docs/serve.md)\n");
    s.n_vocab = qeil_runtime_n_vocab(s.rt);
    s.n_ctx = qeil_runtime_n_ctx(s.rt);
    s.parallel = o.parallel;
    s.queue_cap = o.queue;
    s.api_key = o.api_key;
    s.max_body = o.max_body;
    const char *base = strrchr(o.model, '/');
    snprintf(s.model_id, sizeof s.model_id, "%s", base ? base + 1 : o.model);

    /* ---- the plan the answers are priced on ---- */
    uint32_t nu = qeil_runtime_n_units(s.rt);
    int method = strcmp(o.plan, "auto") == 0 ? QEIL_METHOD_PGSAM : qeil_plan_method_from_name(o.plan);
    if (method >= 0) {
        qeil_runtime_config cfg = qeil_runtime_default_config();
        cfg.plan_method = (qeil_plan_method)method;
        qeil_workload_params wp = qeil_runtime_planning_workload(
            s.rt, PLAN_PROMPT_TOKENS < s.n_ctx / 2 ? PLAN_PROMPT_TOKENS : s.n_ctx / 2 + 1);
        uint32_t ci;
        qeil_runtime_config_info info;
        if (qeil_runtime_add_config(s.rt, &cfg, &wp, &ci) != QEIL_OK ||
            qeil_runtime_config_get(s.rt, ci, &info) != QEIL_OK) {
            cli_fail(CMD, "plan: %s", qeil_ctx_errmsg(s.ctx));
            goto out;
        }
        s.plan = info.plan;
        s.plan_name = qeil_plan_method_name(cfg.plan_method);
        s.plan_wp = wp;
        /* PGSAM plans the decode batch per load; the start plan is the one
         * at full load (the runtime planned it for --parallel samples) */
        s.batch_planned = cfg.plan_method == QEIL_METHOD_PGSAM;
        if (s.batch_planned && o.parallel <= SERVE_MAX_PARALLEL) {
            s.load_plan[o.parallel] = s.plan;
            s.load_planned[o.parallel] = 1;
        }
    } else {
        if (cli_plan_read(CMD, o.plan, &s.pf, nu, &s.plan) != 0) goto out;
        s.plan_name = o.plan;
        qeil_eval ev;
        if (serve_price(&s, s.ctx, 8, 8, 1, 0, &ev) != 0) {
            cli_fail(CMD, "--plan: %s cannot price work on '%s': %s", o.plan, s.pf.name,
                      qeil_ctx_errmsg(s.ctx)[0] ? qeil_ctx_errmsg(s.ctx) : "infeasible");
            goto out;
        }
    }
    serve_device_map(&s.pf, nu, s.plan.pf_unit, s.plan_prefill, sizeof s.plan_prefill);
    serve_device_map(&s.pf, nu, s.plan.dc_unit, s.plan_decode, sizeof s.plan_decode);

    if (serve_worker_start(&s, &worker) != 0) {
        cli_fail(CMD, "cannot start the worker: %s", qeil_ctx_errmsg(s.ctx));
        goto out;
    }
    worker_up = 1;
    unsigned bound = 0;
    if (!(d = serve_http_start(&s, o.host, o.port, o.timeout_s, &bound))) goto out;
    fprintf(stderr,
            "qeil serve: %s (%u layers, context %u), %u parallel, queue %u, plan %s on %s\n"
            "qeil serve: energy meter: %s\n"
            "qeil serve: listening on http://%s%s%s:%u/\n",
            s.model_id, s.md->n_layers, s.n_ctx, s.parallel, s.queue_cap, s.plan_name, s.pf.name,
            s.meter_prov ? s.meter_prov : s.meter_covers,
            strchr(o.host, ':') ? "[" : "", o.host, strchr(o.host, ':') ? "]" : "", bound);
    fflush(stderr);
    for (;;) {
        int sig = 0;
        if (sigwait(&sigs, &sig) != 0) break;
        if (sig == SIGINT || sig == SIGTERM) break;
    }
    fprintf(stderr, "qeil serve: stopping\n");
    rc = CLI_OK;
out:
    /* the worker first: it ends every job, which lets waiting handlers return */
    if (worker_up) serve_worker_stop(&s, worker);
    if (d) MHD_stop_daemon(d);
    qeil_runtime_free(s.rt);
    qeil_sense_sample_free(s.throttle0);
    qeil_sense_free(s.sense);
    qeil_ctx_free(s.ctx);
    pthread_cond_destroy(&s.work);
    pthread_mutex_destroy(&s.mu);
    return rc;
}
