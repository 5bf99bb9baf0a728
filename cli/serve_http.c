/* serve_http.c — the HTTP side of `qeil serve` (docs/serve.md): routing,
 * the API key, body limits, request JSON (every field type-checked, 400
 * naming it; unknown fields ignored), OpenAI-shaped responses with energy
 * in usage, server-sent events, /metrics, the page. libmicrohttpd runs one
 * thread per connection, so a handler may wait for its job; it polls its
 * socket while it waits, so a client that hangs up cancels its request. */
#define _GNU_SOURCE /* POLLRDHUP */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <time.h>

#include "cli.h"
#include "qeil/chat.h"
#include "serve.h"

enum { EP_PAGE = 0, EP_HEALTH, EP_MODELS, EP_COMPLETIONS, EP_CHAT, EP_METRICS, EP_OTHER };
static const char *const EP_NAME[SERVE_N_ENDPOINTS] = {"/", "/health", "/v1/models",
                                                       "/v1/completions", "/v1/chat/completions",
                                                       "/metrics", "other", "unused"};

#define DEFAULT_MAX_TOKENS 128u
#define WAIT_SLICE_MS 200 /* a waiting handler checks its socket this often */

typedef struct {
    serve_server *s;
    int ep;
    char *body;
    size_t len, cap;
    int too_big;
    int replied;
} conn;

/* ------------------------------------------------------------------------ */
/* Replies                                                                  */
/* ------------------------------------------------------------------------ */

static void count(serve_server *s, int ep, unsigned code)
{
    unsigned k = code >= 100 && code < 600 ? code / 100 - 1 : 5;
    pthread_mutex_lock(&s->mu);
    s->req[ep][k]++;
    pthread_mutex_unlock(&s->mu);
}

/* Queue body (malloc'd, taken) with the status; NULL body = out of memory. */
static enum MHD_Result reply(struct MHD_Connection *mc, conn *c, unsigned code, char *body,
                             const char *type, const char *hname, const char *hval)
{
    if (!body) {
        code = MHD_HTTP_INTERNAL_SERVER_ERROR;
        body = strdup("{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\"}}");
        if (!body) return MHD_NO;
        type = "application/json";
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    if (hname) MHD_add_response_header(r, hname, hval);
    count(c->s, c->ep, code);
    c->replied = 1;
    enum MHD_Result rc = MHD_queue_response(mc, code, r);
    MHD_destroy_response(r);
    return rc;
}

static char *json_take(cJSON *j)
{
    char *t = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    return t;
}

/* {"error": {"message", "type", "param", "code"}} as OpenAI shapes it. */
static cJSON *error_obj(const char *type, const char *param, const char *msg)
{
    cJSON *j = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(j, "error");
    char *clean = cli_utf8_clean(msg, strlen(msg));
    cJSON_AddStringToObject(e, "message", clean ? clean : "(out of memory)");
    free(clean);
    cJSON_AddStringToObject(e, "type", type);
    if (param) cJSON_AddStringToObject(e, "param", param);
    else cJSON_AddNullToObject(e, "param");
    cJSON_AddNullToObject(e, "code");
    return j;
}

static enum MHD_Result reply_error(struct MHD_Connection *mc, conn *c, unsigned code,
                                   const char *param, const char *hname, const char *hval,
                                   const char *fmt, ...) QEIL_PRINTF(7, 8);
static enum MHD_Result reply_error(struct MHD_Connection *mc, conn *c, unsigned code,
                                   const char *param, const char *hname, const char *hval,
                                   const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *type = code == 401   ? "authentication_error"
                       : code == 429 ? "rate_limit_error"
                       : code >= 500 ? "server_error"
                                     : "invalid_request_error";
    return reply(mc, c, code, json_take(error_obj(type, param, msg)), "application/json", hname,
                 hval);
}

/* ------------------------------------------------------------------------ */
/* Request fields: type and range checked, the field named                  */
/* ------------------------------------------------------------------------ */

typedef struct {
    char param[64];
    char msg[512];
} perr;

static int fail_param(perr *e, const char *param, const char *fmt, ...) QEIL_PRINTF(3, 4);
static int fail_param(perr *e, const char *param, const char *fmt, ...)
{
    snprintf(e->param, sizeof e->param, "%s", param);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return -1;
}

static const char *type_name(const cJSON *v)
{
    return cJSON_IsNull(v) ? "null" : cJSON_IsBool(v) ? "a boolean" : cJSON_IsNumber(v) ? "a number"
         : cJSON_IsString(v) ? "a string" : cJSON_IsArray(v) ? "an array" : "an object";
}

/* An integer field in [lo, hi]; absent or null: *out unchanged. */
static int get_uint(const cJSON *o, const char *name, double lo, double hi, uint64_t *out, perr *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v))
        return fail_param(e, name, "'%s' must be an integer, got %s", name, type_name(v));
    double x = v->valuedouble;
    if (x != floor(x) || x < lo || x > hi)
        return fail_param(e, name, "'%s': %.17g is not an integer in %.0f..%.0f", name, x, lo, hi);
    *out = (uint64_t)x;
    return 0;
}

/* A number field in [lo, hi] (an open end when lo_open/hi_open). */
static int get_num(const cJSON *o, const char *name, double lo, double hi, int lo_open,
                   int hi_open, float *out, perr *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v))
        return fail_param(e, name, "'%s' must be a number, got %s", name, type_name(v));
    double x = v->valuedouble;
    if (!(x >= lo && x <= hi) || (lo_open && x == lo) || (hi_open && x == hi))
        return fail_param(e, name, "'%s': %.17g is out of range (allowed %s%g, %g%s)", name, x,
                          lo_open ? "(" : "[", lo, hi, hi_open ? ")" : "]");
    *out = (float)x;
    return 0;
}

static int get_bool(const cJSON *o, const char *name, int *out, perr *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsBool(v))
        return fail_param(e, name, "'%s' must be a boolean, got %s", name, type_name(v));
    *out = cJSON_IsTrue(v);
    return 0;
}

static int get_str(const cJSON *o, const char *name, const char **out, perr *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsString(v))
        return fail_param(e, name, "'%s' must be a string, got %s", name, type_name(v));
    *out = v->valuestring;
    return 0;
}

/* A message's content: a string, or an array of {"type": "text", "text"}
 * parts (joined). *out is malloc'd. */
static int content_text(const cJSON *v, const char *param, char **out, perr *e)
{
    if (cJSON_IsString(v)) {
        *out = strdup(v->valuestring);
        return *out ? 0 : fail_param(e, param, "out of memory");
    }
    if (!cJSON_IsArray(v))
        return fail_param(e, param, "'%s' must be a string or an array of text parts, got %s",
                          param, v ? type_name(v) : "nothing");
    size_t total = 1;
    const cJSON *p;
    int k = 0;
    cJSON_ArrayForEach(p, v) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(p, "type");
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(p, "text");
        if (!cJSON_IsObject(p) || !cJSON_IsString(t) || strcmp(t->valuestring, "text") != 0 ||
            !cJSON_IsString(x))
            return fail_param(e, param,
                              "'%s[%d]' must be {\"type\": \"text\", \"text\": STRING} (only text "
                              "parts are supported)",
                              param, k);
        total += strlen(x->valuestring);
        k++;
    }
    char *s = malloc(total);
    if (!s) return fail_param(e, param, "out of memory");
    size_t at = 0;
    cJSON_ArrayForEach(p, v) {
        const char *t = cJSON_GetObjectItemCaseSensitive(p, "text")->valuestring;
        size_t l = strlen(t);
        memcpy(s + at, t, l);
        at += l;
    }
    s[at] = '\0';
    *out = s;
    return 0;
}

#define MAX_MESSAGES 4096

/* "messages" → the prompt text through serve_chat_render. */
static int chat_prompt(const serve_server *s, const cJSON *root, char **out, serve_msg **msgs_out,
                       char ***texts_out, int *n_out, perr *e)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "messages");
    if (!m) return fail_param(e, "messages", "'messages' is required");
    if (!cJSON_IsArray(m))
        return fail_param(e, "messages", "'messages' must be an array, got %s", type_name(m));
    int n = cJSON_GetArraySize(m);
    if (n < 1 || n > MAX_MESSAGES)
        return fail_param(e, "messages", "'messages': %d messages (allowed 1..%d)", n,
                          MAX_MESSAGES);
    serve_msg *msgs = calloc((size_t)n, sizeof *msgs);
    char **texts = calloc((size_t)n, sizeof *texts);
    int rc = -1, k = 0;
    if (!msgs || !texts) {
        fail_param(e, "messages", "out of memory");
        goto out;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, m) {
        char pname[64];
        if (!cJSON_IsObject(it)) {
            snprintf(pname, sizeof pname, "messages[%d]", k);
            fail_param(e, pname, "'%s' must be an object, got %s", pname, type_name(it));
            goto out;
        }
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(it, "role");
        snprintf(pname, sizeof pname, "messages[%d].role", k);
        if (!cJSON_IsString(role)) {
            fail_param(e, pname, "'%s' must be a string, got %s", pname,
                       role ? type_name(role) : "nothing");
            goto out;
        }
        const char *r = role->valuestring;
        if (strcmp(r, "system") != 0 && strcmp(r, "user") != 0 && strcmp(r, "assistant") != 0 &&
            strcmp(r, "tool") != 0 && strcmp(r, "developer") != 0) {
            fail_param(e, pname, "'%s': '%.40s' is not one of system|developer|user|assistant|tool",
                       pname, r);
            goto out;
        }
        snprintf(pname, sizeof pname, "messages[%d].content", k);
        if (content_text(cJSON_GetObjectItemCaseSensitive(it, "content"), pname, &texts[k], e))
            goto out;
        msgs[k].role = r;
        msgs[k].content = texts[k];
        k++;
    }
    if (s->chat_tmpl != QEIL_CHAT_UNKNOWN) { /* tokenized in the template by the caller */
        *msgs_out = msgs;
        *texts_out = texts;
        *n_out = n;
        return 0;
    }
    *out = serve_chat_render(msgs, (size_t)n);
    if (!*out) fail_param(e, "messages", "out of memory");
    else rc = 0;
out:
    for (int i = 0; texts && i < n; i++) free(texts[i]);
    free(texts);
    free(msgs);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Building a job from a request                                            */
/* ------------------------------------------------------------------------ */

typedef struct {
    int chat, stream;
    char id[48];
    long created;
} req_info;

static uint64_t req_seed(serve_server *s)
{
    pthread_mutex_lock(&s->mu);
    uint64_t z = s->next_id++;
    pthread_mutex_unlock(&s->mu);
    return z;
}

static void job_drop(serve_job *j)
{
    /* never submitted: the connection's reference is the only one */
    for (uint32_t k = 0; k < j->n_smp; k++) qeil_sampler_free(j->smp[k]);
    free(j->smp);
    qeil_select_free(j->sel);
    free(j->samples);
    free(j->prompt);
    pthread_cond_destroy(&j->cv);
    qeil_ctx_free(j->ctx);
    free(j);
}

static void free_msgs(serve_msg *m, char **texts, int n)
{
    for (int i = 0; texts && i < n; i++) free(texts[i]);
    free(texts);
    free(m);
}

/* Parse, validate, tokenize. 0 and *out, or -1 with e filled (400), or -2
 * out of memory (500). */
static int build_job(serve_server *s, const cJSON *root, req_info *ri, serve_job **out, perr *e)
{
    *out = NULL;
    serve_job *j = calloc(1, sizeof *j);
    if (!j) return -2;
    pthread_cond_init(&j->cv, NULL);
    j->refs = 1;
    j->ctx = cli_ctx_create();
    char *text = NULL;
    serve_msg *cmsg = NULL; /* chat in the model's template: tokenized below */
    size_t chat_len = 256; /* the template's own tokens */
    char **ctext = NULL;
    int cn = 0;
    int rc = -1;
    if (!j->ctx) {
        rc = -2;
        goto fail;
    }
    const char *model = NULL;
    if (get_str(root, "model", &model, e)) goto fail;
    if (get_bool(root, "stream", &ri->stream, e)) goto fail;

    /* ---- the prompt ---- */
    int parse_special = 0;
    if (ri->chat) {
        if (chat_prompt(s, root, &text, &cmsg, &ctext, &cn, e)) goto fail;
        if (cmsg) /* rendered by the template: its length bounded for the checks below */
            for (int i = 0; i < cn; i++) chat_len += strlen(cmsg[i].content) + strlen(cmsg[i].role) + 64;
    } else {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "prompt");
        if (cJSON_IsArray(p) && cJSON_GetArraySize(p) == 1 && cJSON_IsString(p->child))
            p = p->child; /* ["text"]: one prompt */
        if (!p) {
            fail_param(e, "prompt", "'prompt' is required");
            goto fail;
        }
        if (!cJSON_IsString(p)) {
            fail_param(e, "prompt", "'prompt' must be a string (or an array of one string), got %s",
                       type_name(p));
            goto fail;
        }
        text = strdup(p->valuestring);
        if (!text) {
            rc = -2;
            goto fail;
        }
        parse_special = 1; /* a raw prompt, as `qeil generate -p` */
    }

    /* ---- numbers ---- */
    uint64_t max_tokens = DEFAULT_MAX_TOKENS, n = 1, top_k, rln, seed = 0;
    if (get_uint(root, "max_completion_tokens", 1, QEIL_RUNTIME_MAX_TOKENS, &max_tokens, e) ||
        get_uint(root, "max_tokens", 1, QEIL_RUNTIME_MAX_TOKENS, &max_tokens, e) ||
        get_uint(root, "n", 1, SERVE_MAX_N, &n, e))
        goto fail;
    qeil_sampler_params sp = qeil_sampler_default_params();
    top_k = sp.top_k;
    rln = sp.repeat_last_n;
    if (get_num(root, "temperature", 0, QEIL_SAMPLER_MAX_TEMP, 0, 0, &sp.temp, e) ||
        get_num(root, "top_p", 0, 1, 1, 0, &sp.top_p, e) ||
        get_num(root, "min_p", 0, 1, 0, 1, &sp.min_p, e) ||
        get_num(root, "repeat_penalty", 0, QEIL_SAMPLER_MAX_REPEAT_PENALTY, 1, 0,
                &sp.repeat_penalty, e) ||
        get_uint(root, "top_k", 0, QEIL_SAMPLER_MAX_VOCAB, &top_k, e) ||
        get_uint(root, "repeat_last_n", 0, QEIL_SAMPLER_MAX_REPEAT_LAST_N, &rln, e))
        goto fail;
    sp.top_k = (uint32_t)top_k;
    sp.repeat_last_n = (uint32_t)rln;
    const cJSON *sv = cJSON_GetObjectItemCaseSensitive(root, "seed");
    if (sv && !cJSON_IsNull(sv)) {
        /* a JSON number is a double: integers are exact up to 2^53 */
        if (get_uint(root, "seed", 0, 9007199254740992.0, &seed, e)) goto fail;
        j->seed = seed;
    } else {
        uint64_t z = req_seed(s) + 0x9e3779b97f4a7c15ULL * (uint64_t)time(NULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        j->seed = z ^ (z >> 27);
    }
    if (qeil_sampler_params_validate(j->ctx, &sp, s->n_vocab) != QEIL_OK) {
        /* the sampler names its field first ("top_k: 900 is out of range ...") */
        const char *msg = qeil_ctx_errmsg(j->ctx);
        char field[32] = "sampling";
        size_t fl = strcspn(msg, ":");
        if (fl > 0 && fl < sizeof field && msg[fl] == ':') {
            memcpy(field, msg, fl);
            field[fl] = '\0';
            if (strcmp(field, "temp") == 0) snprintf(field, sizeof field, "temperature");
        }
        fail_param(e, field, "%s", msg);
        goto fail;
    }

    /* ---- stop strings ---- */
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(root, "stop");
    if (st && !cJSON_IsNull(st)) {
        const cJSON *one[1] = {st};
        int ns = cJSON_IsString(st) ? 1 : cJSON_IsArray(st) ? cJSON_GetArraySize(st) : -1;
        if (ns < 0 || ns > SERVE_MAX_STOP) {
            fail_param(e, "stop", "'stop' must be a string or an array of at most %d strings",
                       SERVE_MAX_STOP);
            goto fail;
        }
        for (int k = 0; k < ns; k++) {
            const cJSON *x = cJSON_IsString(st) ? one[0] : cJSON_GetArrayItem(st, k);
            size_t l = cJSON_IsString(x) ? strlen(x->valuestring) : 0;
            if (!cJSON_IsString(x) || l == 0 || l > SERVE_MAX_STOP_LEN) {
                char pn[32];
                snprintf(pn, sizeof pn, "stop[%d]", k);
                fail_param(e, pn, "'%s' must be a string of 1..%d bytes", pn, SERVE_MAX_STOP_LEN);
                goto fail;
            }
            memcpy(j->stop[k], x->valuestring, l + 1);
            if (l - 1 > j->holdback) j->holdback = l - 1;
        }
        j->n_stop = ns;
    }

    /* ---- repeated sampling ---- */
    const char *selection = NULL, *amode = NULL;
    if (get_str(root, "selection", &selection, e) || get_str(root, "answer_mode", &amode, e))
        goto fail;
    qeil_select_method method = QEIL_SELECT_CASCADE;
    if (selection && qeil_select_method_parse(j->ctx, selection, &method) != QEIL_OK) {
        fail_param(e, "selection", "'selection': %s", qeil_ctx_errmsg(j->ctx));
        goto fail;
    }
    qeil_answer_mode mode = QEIL_ANSWER_NUMERIC;
    if (amode) {
        if (strcmp(amode, "numeric") == 0) mode = QEIL_ANSWER_NUMERIC;
        else if (strcmp(amode, "choice") == 0) mode = QEIL_ANSWER_CHOICE;
        else {
            fail_param(e, "answer_mode", "'answer_mode': '%.40s' is not one of numeric|choice",
                       amode);
            goto fail;
        }
    }
    j->cascade = n > 1 || selection;
    j->n = (uint32_t)n;
    if (j->cascade && ri->stream) {
        fail_param(e, "stream", "'stream': not with repeated sampling (n > 1 or 'selection'): "
                                "the answer is known only once sampling stops");
        goto fail;
    }

    /* ---- tokenize ---- */
    size_t tlen = cmsg ? chat_len : strlen(text), cap = tlen + 8, n_prompt = 0;
    if (tlen >= (size_t)s->n_ctx * QEIL_TOKENIZER_MAX_TOKEN_BYTES + 64 || tlen > (64u << 20)) {
        fail_param(e, ri->chat ? "messages" : "prompt",
                   "the prompt (%zu bytes) cannot fit the context of %u tokens", tlen, s->n_ctx);
        goto fail;
    }
    j->max_tokens = (uint32_t)max_tokens;
    j->prompt = malloc(sizeof(int32_t) * (cap + max_tokens));
    if (!j->prompt) {
        rc = -2;
        goto fail;
    }
    qeil_status tst = cmsg ? serve_chat_tokenize(j->ctx, s->tk, s->chat_tmpl, cmsg, (size_t)cn, j->prompt,
                                                 cap, &n_prompt)
                           : qeil_tokenizer_encode(j->ctx, s->tk, text, -1, parse_special, j->prompt,
                                                   cap, &n_prompt);
    if (tst != QEIL_OK) {
        fail_param(e, ri->chat ? "messages" : "prompt", "tokenizer: %s", qeil_ctx_errmsg(j->ctx));
        goto fail;
    }
    if (n_prompt == 0 || n_prompt >= s->n_ctx) {
        fail_param(e, ri->chat ? "messages" : "prompt",
                   "the prompt is %zu tokens (allowed 1..%u: below the context of %u tokens)",
                   n_prompt, s->n_ctx - 1, s->n_ctx);
        goto fail;
    }
    j->n_prompt = (uint32_t)n_prompt;

    /* ---- samplers, selector ---- */
    j->n_smp = j->cascade ? (j->n < s->parallel ? j->n : s->parallel) : 1;
    j->smp = calloc(j->n_smp, sizeof *j->smp);
    if (!j->smp) {
        rc = -2;
        goto fail;
    }
    for (uint32_t k = 0; k < j->n_smp; k++)
        if (qeil_sampler_create(j->ctx, &sp, s->n_vocab, &j->smp[k]) != QEIL_OK) {
            rc = -2;
            goto fail;
        }
    if (j->cascade) {
        qeil_select_params sel = qeil_select_default_params();
        sel.method = method;
        sel.mode = mode;
        sel.budget = j->n;
        sel.batch = j->n_smp < QEIL_SELECT_MAX_BATCH ? j->n_smp : QEIL_SELECT_MAX_BATCH;
        /* thresholds that count samples cannot exceed a small budget (as the runtime) */
        if (sel.eac_min_votes > j->n) sel.eac_min_votes = j->n;
        if (sel.csvet_min_samples > j->n) sel.csvet_min_samples = j->n;
        if (sel.esc_window > j->n) sel.esc_window = j->n;
        if (qeil_select_create(j->ctx, &sel, &j->sel) != QEIL_OK) {
            fail_param(e, "selection", "%s", qeil_ctx_errmsg(j->ctx));
            goto fail;
        }
        j->samples = calloc(j->n, sizeof *j->samples);
        if (!j->samples) {
            rc = -2;
            goto fail;
        }
    }
    free(text);
    free_msgs(cmsg, ctext, cn);
    *out = j;
    return 0;
fail:
    free(text);
    free_msgs(cmsg, ctext, cn);
    job_drop(j);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Energy and placement in usage                                            */
/* ------------------------------------------------------------------------ */

static void add_placement(serve_server *s, const serve_job *j, cJSON *u)
{
    uint32_t load = j->dec_steps ? (uint32_t)((j->dec_load + j->dec_steps / 2) / j->dec_steps) : 1;
    int replanned;
    qeil_assignment lp = serve_load_plan(s, load, &replanned);
    const qeil_assignment *plan = &lp;
    cJSON *p = cJSON_AddObjectToObject(u, "placement");
    cJSON_AddStringToObject(p, "ran_on", s->ran_on);
    cJSON_AddStringToObject(p, "ran_on_note",
                            "where the work units ran on this machine (--placement; a recovery "
                            "below moves a failed device's units); the plan below is the "
                            "modeled placement the energy is priced on");
    cJSON_AddStringToObject(p, "platform", s->pf.name);
    cJSON_AddStringToObject(p, "plan", s->plan_name);
    char map[512];
    uint32_t nu = qeil_runtime_n_units(s->rt);
    serve_device_map(&s->pf, nu, plan->pf_unit, map, sizeof map);
    cJSON_AddStringToObject(p, "prefill", map);
    serve_device_map(&s->pf, nu, plan->dc_unit, map, sizeof map);
    cJSON_AddStringToObject(p, "decode", map);
    cJSON_AddNumberToObject(p, "plan_batch", plan->batch);
    cJSON_AddNumberToObject(p, "decode_load_mean",
                            j->dec_steps ? (double)j->dec_load / (double)j->dec_steps : 1);
    cJSON_AddStringToObject(p, "batch_source",
                            !s->batch_planned ? "the plan's batch"
                            : !replanned ? "the start plan (this load not planned yet)"
                                               : "the PGSAM plan for this load");
}

static int is_measured(const serve_job *j) { return j->meas.valid && j->meas.t_s > 0; }

/* The usage object of a finished job. */
static cJSON *usage_json(serve_server *s, const serve_job *j, qeil_ctx *ctx)
{
    cJSON *u = cJSON_CreateObject();
    uint32_t gen = j->cascade ? (uint32_t)j->sres.n_tokens : j->n_gen;
    cJSON_AddNumberToObject(u, "prompt_tokens", j->n_prompt);
    cJSON_AddNumberToObject(u, "completion_tokens", j->n_gen);
    cJSON_AddNumberToObject(u, "total_tokens", (double)j->n_prompt + j->n_gen);
    if (j->cascade) cJSON_AddNumberToObject(u, "generated_tokens_all_samples", gen);
    qeil_eval ev;
    uint32_t drawn = j->cascade ? j->sres.n_samples : 1;
    uint32_t per = j->cascade && drawn ? (uint32_t)((j->sres.n_tokens + drawn / 2) / drawn) : gen;
    double mod_J = NAN, mod_s = NAN, mod_W = NAN;
    int ok = serve_job_price(s, ctx, j, &mod_J, &mod_s, &mod_W, &ev) == 0;
    if (is_measured(j)) {
        char prov[160];
        snprintf(prov, sizeof prov, "measured: %s", s->meter_prov ? s->meter_prov : "meter");
        cJSON_AddNumberToObject(u, "energy_J", j->meas.energy_J);
        cJSON_AddNumberToObject(u, "avg_power_W", j->meas.energy_J / j->meas.t_s);
        cJSON_AddStringToObject(u, "energy_provenance", "measured");
        cJSON_AddStringToObject(u, "power_provenance", "measured");
        cJSON_AddStringToObject(u, "meter", prov);
    } else {
        if (ok) {
            cJSON_AddNumberToObject(u, "energy_J", mod_J);
            cJSON_AddNumberToObject(u, "avg_power_W", mod_W);
        } else {
            cJSON_AddNullToObject(u, "energy_J");
            cJSON_AddNullToObject(u, "avg_power_W");
        }
        cJSON_AddStringToObject(u, "energy_provenance", "modeled");
        cJSON_AddStringToObject(u, "power_provenance", "modeled");
    }
    if (ok) {
        cJSON_AddNumberToObject(u, "energy_modeled_J", mod_J);
        cJSON_AddNumberToObject(u, "latency_modeled_s", mod_s);
        if (!j->cascade)
            cJSON_AddNumberToObject(u, "decode_batch_mean",
                                    j->dec_steps ? (double)j->dec_seqs / (double)j->dec_steps : 1);
    }
    if (is_measured(j)) cJSON_AddNumberToObject(u, "energy_measured_J", j->meas.energy_J);
    else cJSON_AddNullToObject(u, "energy_measured_J");
    if (!s->meter_prov)
        cJSON_AddStringToObject(u, "measured_na", s->meter_covers ? s->meter_covers : "no sensor");
    cJSON_AddNumberToObject(u, "queue_s", j->t_start_s > 0 ? j->t_start_s - j->t_submit_s : 0);
    cJSON_AddNumberToObject(u, "wall_s", j->t_end_s - j->t_submit_s);
    cJSON_AddNumberToObject(u, "engine_busy_s", j->busy_s);
    add_placement(s, j, u);
    cli_recoveries_json(u, j->rec, j->n_rec);
    if (j->cascade) {
        cJSON *se = cJSON_AddObjectToObject(u, "selection");
        qeil_select_params sp = qeil_select_get_params(j->sel);
        cJSON_AddStringToObject(se, "method", qeil_select_method_name(sp.method));
        cJSON_AddStringToObject(se, "answer_mode", qeil_answer_mode_name(sp.mode));
        if (j->sres.answer.has) cJSON_AddStringToObject(se, "answer", j->sres.answer.text);
        else cJSON_AddNullToObject(se, "answer");
        cJSON_AddStringToObject(se, "stage", qeil_select_stage_name(j->sres.stage));
        cJSON_AddNumberToObject(se, "votes", j->sres.votes);
        cJSON_AddNumberToObject(se, "samples_requested", j->n);
        cJSON_AddNumberToObject(se, "samples_drawn", drawn);
        cJSON_AddNumberToObject(se, "chosen_sample", j->chosen_sample);
        qeil_eval all;
        if (ok && serve_price(s, ctx, j->n_prompt, per, j->n, j->n_smp, &all) == 0) {
            /* the undrawn samples priced as long as the drawn ones on average */
            cJSON_AddNumberToObject(se, "energy_all_n_modeled_J", all.energy_J);
            cJSON_AddNumberToObject(se, "energy_saved_J", all.energy_J - mod_J);
            cJSON_AddStringToObject(se, "energy_saved_provenance", "modeled");
        }
    }
    return u;
}

/* ------------------------------------------------------------------------ */
/* Waiting for a job; the client's socket                                   */
/* ------------------------------------------------------------------------ */

/* 1 when the peer has closed or reset the connection. */
static int client_gone(int fd)
{
    if (fd < 0) return 0;
    struct pollfd p = {fd, POLLRDHUP, 0};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

static int conn_fd(struct MHD_Connection *mc)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? ci->connect_fd : -1;
}

static void timed_wait(pthread_cond_t *cv, pthread_mutex_t *mu)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += WAIT_SLICE_MS * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(cv, mu, &ts);
}

/* Text of a job that can go out now: all of it once done; while running,
 * not the last holdback bytes (a stop string may be forming) nor a
 * UTF-8 sequence cut by a token boundary. */
static size_t sendable(const serve_job *j)
{
    if (j->state == JOB_DONE) return j->len;
    size_t n = j->len > j->holdback ? j->len - j->holdback : 0;
    /* back off over an incomplete trailing UTF-8 sequence (at most 3 bytes) */
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        unsigned char c = (unsigned char)j->text[n - back];
        if ((c & 0xC0) == 0x80) continue; /* continuation */
        size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        if (need > back) n -= back;
        break;
    }
    return n;
}

/* ------------------------------------------------------------------------ */
/* Responses: whole, and streamed                                           */
/* ------------------------------------------------------------------------ */

static cJSON *response_head(const serve_server *s, const req_info *ri, int chunk)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "id", ri->id);
    cJSON_AddStringToObject(r, "object", ri->chat ? (chunk ? "chat.completion.chunk"
                                                           : "chat.completion")
                                                  : "text_completion");
    cJSON_AddNumberToObject(r, "created", (double)ri->created);
    cJSON_AddStringToObject(r, "model", s->model_id);
    return r;
}

static cJSON *choice(const req_info *ri, const char *text, size_t n, const char *finish,
                     int delta_role)
{
    cJSON *c = cJSON_CreateObject();
    cJSON_AddNumberToObject(c, "index", 0);
    char *clean = cli_utf8_clean(text ? text : "", n);
    if (ri->chat) {
        cJSON *m = cJSON_AddObjectToObject(c, ri->stream ? "delta" : "message");
        if (delta_role || !ri->stream) cJSON_AddStringToObject(m, "role", "assistant");
        if (n || !ri->stream) cJSON_AddStringToObject(m, "content", clean ? clean : "");
    } else {
        cJSON_AddStringToObject(c, "text", clean ? clean : "");
        cJSON_AddNullToObject(c, "logprobs");
    }
    free(clean);
    if (finish) cJSON_AddStringToObject(c, "finish_reason", finish);
    else cJSON_AddNullToObject(c, "finish_reason");
    return c;
}

static const char *finish_name(const serve_job *j) { return j->finish_length ? "length" : "stop"; }

typedef struct {
    serve_server *s;
    serve_job *j;
    req_info ri;
    int fd;
    int phase;        /* 0 role, 1 tokens, 2 end */
    size_t sent;      /* bytes of j->text sent */
    char *out;
    size_t out_len, out_pos, out_cap;
    double e1_J, slope_J, power_W; /* the running modeled energy */
    int priced;
    qeil_ctx *ctx;
} sse;

static int sse_add(sse *x, const char *a, size_t n)
{
    if (x->out_len + n + 1 > x->out_cap) {
        size_t c = x->out_cap ? x->out_cap : 1024;
        while (c < x->out_len + n + 1) c *= 2;
        char *q = realloc(x->out, c);
        if (!q) return -1;
        x->out = q;
        x->out_cap = c;
    }
    memcpy(x->out + x->out_len, a, n);
    x->out_len += n;
    return 0;
}

static int sse_event(sse *x, cJSON *j)
{
    char *t = json_take(j);
    if (!t) return -1;
    int rc = sse_add(x, "data: ", 6) || sse_add(x, t, strlen(t)) || sse_add(x, "\n\n", 2);
    free(t);
    return rc;
}

static void sse_running(sse *x, cJSON *chunk, uint32_t n_gen)
{
    if (!x->priced) return;
    cJSON *q = cJSON_AddObjectToObject(chunk, "qeil");
    double e = x->e1_J + x->slope_J * (n_gen > 1 ? n_gen - 1 : 0);
    cJSON_AddNumberToObject(q, "energy_J", e);
    cJSON_AddNumberToObject(q, "avg_power_W", x->power_W);
    cJSON_AddStringToObject(q, "energy_provenance", "modeled");
    cJSON_AddNumberToObject(q, "completion_tokens", n_gen);
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    sse *x = cls;
    (void)pos;
    serve_server *s = x->s;
    serve_job *j = x->j;
    for (;;) {
        if (x->out_pos < x->out_len) {
            size_t n = x->out_len - x->out_pos < max ? x->out_len - x->out_pos : max;
            memcpy(buf, x->out + x->out_pos, n);
            x->out_pos += n;
            return (ssize_t)n;
        }
        x->out_len = x->out_pos = 0;
        if (x->phase == 2) return MHD_CONTENT_READER_END_OF_STREAM;
        if (x->phase == 0) { /* the role first, as OpenAI streams a chat */
            x->phase = 1;
            if (x->ri.chat) {
                cJSON *c = response_head(s, &x->ri, 1);
                cJSON *ch = cJSON_AddArrayToObject(c, "choices");
                cJSON_AddItemToArray(ch, choice(&x->ri, "", 0, NULL, 1));
                if (sse_event(x, c)) return MHD_CONTENT_READER_END_WITH_ERROR;
                continue;
            }
        }
        pthread_mutex_lock(&s->mu);
        while (j->state != JOB_DONE && sendable(j) <= x->sent) {
            timed_wait(&j->cv, &s->mu);
            if (j->state != JOB_DONE && client_gone(x->fd)) {
                pthread_mutex_unlock(&s->mu);
                return MHD_CONTENT_READER_END_WITH_ERROR; /* free callback cancels */
            }
        }
        size_t upto = sendable(j), from = x->sent;
        char *piece = NULL;
        if (upto > from && (piece = malloc(upto - from))) memcpy(piece, j->text + from, upto - from);
        int done = j->state == JOB_DONE;
        uint32_t n_gen = j->n_gen;
        pthread_mutex_unlock(&s->mu);
        if (upto > from && !piece) return MHD_CONTENT_READER_END_WITH_ERROR;
        x->sent = upto;
        if (upto > from) {
            cJSON *c = response_head(s, &x->ri, 1);
            cJSON *ch = cJSON_AddArrayToObject(c, "choices");
            cJSON_AddItemToArray(ch, choice(&x->ri, piece, upto - from, NULL, 0));
            sse_running(x, c, n_gen);
            free(piece);
            if (sse_event(x, c)) return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (!done) continue;
        /* the end: finish reason, usage, [DONE] (or the error) */
        x->phase = 2;
        if (j->st != QEIL_OK) {
            if (sse_event(x, error_obj("server_error", NULL, j->err)))
                return MHD_CONTENT_READER_END_WITH_ERROR;
        } else {
            cJSON *c = response_head(s, &x->ri, 1);
            cJSON *ch = cJSON_AddArrayToObject(c, "choices");
            cJSON_AddItemToArray(ch, choice(&x->ri, "", 0, finish_name(j), 0));
            if (sse_event(x, c)) return MHD_CONTENT_READER_END_WITH_ERROR;
            c = response_head(s, &x->ri, 1);
            cJSON_AddArrayToObject(c, "choices");
            cJSON_AddItemToObject(c, "usage", usage_json(s, j, x->ctx));
            if (sse_event(x, c)) return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (sse_add(x, "data: [DONE]\n\n", 14)) return MHD_CONTENT_READER_END_WITH_ERROR;
    }
}

static void sse_free(void *cls)
{
    sse *x = cls;
    pthread_mutex_lock(&x->s->mu);
    if (x->j->state != JOB_DONE) x->j->cancelled = 1; /* the client left: stop generating */
    serve_job_unref_locked(x->s, x->j);
    pthread_mutex_unlock(&x->s->mu);
    qeil_ctx_free(x->ctx);
    free(x->out);
    free(x);
}

static enum MHD_Result reply_stream(struct MHD_Connection *mc, conn *c, serve_job *j,
                                    const req_info *ri)
{
    serve_server *s = c->s;
    sse *x = calloc(1, sizeof *x);
    qeil_ctx *ctx = x ? cli_ctx_create() : NULL;
    if (!x || !ctx) {
        free(x);
        pthread_mutex_lock(&s->mu);
        j->cancelled = 1;
        serve_job_unref_locked(s, j);
        pthread_mutex_unlock(&s->mu);
        return reply(mc, c, 500, NULL, NULL, NULL, NULL);
    }
    x->s = s;
    x->j = j;
    x->ri = *ri;
    x->fd = conn_fd(mc);
    x->ctx = ctx;
    /* the running energy: the first token's price plus a per-token slope */
    qeil_eval e1, eg;
    if (serve_price(s, ctx, j->n_prompt, 1, 1, 1, &e1) == 0 &&
        serve_price(s, ctx, j->n_prompt, j->max_tokens, 1, 1, &eg) == 0) {
        x->priced = 1;
        x->e1_J = e1.energy_J;
        x->slope_J = j->max_tokens > 1 ? (eg.energy_J - e1.energy_J) / (j->max_tokens - 1) : 0;
        x->power_W = eg.avg_power_W;
    }
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sse_read, x, sse_free);
    if (!r) {
        sse_free(x);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    count(s, c->ep, 200);
    c->replied = 1;
    enum MHD_Result rc = MHD_queue_response(mc, 200, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result reply_whole(struct MHD_Connection *mc, conn *c, serve_job *j,
                                   const req_info *ri)
{
    serve_server *s = c->s;
    int fd = conn_fd(mc), gone = 0;
    pthread_mutex_lock(&s->mu);
    while (j->state != JOB_DONE) {
        timed_wait(&j->cv, &s->mu);
        if (j->state != JOB_DONE && client_gone(fd)) {
            j->cancelled = 1;
            gone = 1;
            break;
        }
    }
    pthread_mutex_unlock(&s->mu);
    enum MHD_Result rc;
    if (gone) {
        rc = MHD_NO; /* nobody to answer: close */
    } else if (j->st != QEIL_OK) {
        rc = reply_error(mc, c, 500, NULL, NULL, NULL, "%s", j->err);
    } else {
        cJSON *r = response_head(s, ri, 0);
        cJSON *ch = cJSON_AddArrayToObject(r, "choices");
        cJSON_AddItemToArray(ch, choice(ri, j->text, j->len, finish_name(j), 0));
        cJSON_AddItemToObject(r, "usage", usage_json(s, j, j->ctx));
        if (ri->chat) {
            cJSON *q = cJSON_AddObjectToObject(r, "qeil");
            cJSON_AddStringToObject(q, "prompt_format", serve_chat_format(s->chat_tmpl));
        }
        rc = reply(mc, c, 200, json_take(r), "application/json", NULL, NULL);
    }
    pthread_mutex_lock(&s->mu);
    serve_job_unref_locked(s, j);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static enum MHD_Result handle_generate(struct MHD_Connection *mc, conn *c, int chat)
{
    serve_server *s = c->s;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(c->body ? c->body : "", c->len, &end, 0);
    if (!root) {
        size_t at = end && c->body && end >= c->body ? (size_t)(end - c->body) : 0;
        return reply_error(mc, c, 400, NULL, NULL, NULL,
                           "the body is not valid JSON (error near byte %zu)", at);
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return reply_error(mc, c, 400, NULL, NULL, NULL, "the body must be a JSON object");
    }
    req_info ri;
    memset(&ri, 0, sizeof ri);
    ri.chat = chat;
    ri.created = (long)time(NULL);
    serve_job *j = NULL;
    perr e;
    memset(&e, 0, sizeof e);
    int rc = build_job(s, root, &ri, &j, &e);
    cJSON_Delete(root);
    if (rc == -2) return reply(mc, c, 500, NULL, NULL, NULL, NULL);
    if (rc < 0) return reply_error(mc, c, 400, e.param, NULL, NULL, "%s", e.msg);
    snprintf(ri.id, sizeof ri.id, "%s-%llu", chat ? "chatcmpl" : "cmpl",
             (unsigned long long)req_seed(s));
    if (serve_submit(s, j) != 0) {
        pthread_mutex_lock(&s->mu);
        double wait = s->avg_job_s > 0 ? s->avg_job_s : 1;
        pthread_mutex_unlock(&s->mu);
        char ra[32];
        snprintf(ra, sizeof ra, "%.0f", ceil(wait < 1 ? 1 : wait > 3600 ? 3600 : wait));
        job_drop(j);
        return reply_error(mc, c, 429, NULL, "Retry-After", ra,
                           "busy: the %u running places (--parallel) and %u waiting places "
                           "(--queue) are taken; retry after %s s",
                           s->parallel, s->queue_cap, ra);
    }
    return ri.stream ? reply_stream(mc, c, j, &ri) : reply_whole(mc, c, j, &ri);
}

/* ------------------------------------------------------------------------ */
/* The small endpoints                                                      */
/* ------------------------------------------------------------------------ */

static enum MHD_Result handle_models(struct MHD_Connection *mc, conn *c)
{
    serve_server *s = c->s;
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "object", "list");
    cJSON *d = cJSON_AddArrayToObject(r, "data");
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "id", s->model_id);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", 0);
    cJSON_AddStringToObject(m, "owned_by", "qeil");
    cJSON *meta = cJSON_AddObjectToObject(m, "meta");
    cJSON_AddStringToObject(meta, "arch", qeil_arch_name(s->md->arch));
    cJSON_AddNumberToObject(meta, "n_layers", s->md->n_layers);
    cJSON_AddNumberToObject(meta, "n_vocab", s->n_vocab);
    cJSON_AddNumberToObject(meta, "n_ctx", s->n_ctx);
    cJSON_AddStringToObject(meta, "chat_format", serve_chat_format(s->chat_tmpl));
    cJSON_AddItemToArray(d, m);
    return reply(mc, c, 200, json_take(r), "application/json", NULL, NULL);
}

static enum MHD_Result handle_health(struct MHD_Connection *mc, conn *c)
{
    serve_server *s = c->s;
    cJSON *r = cJSON_CreateObject();
    pthread_mutex_lock(&s->mu);
    cJSON_AddStringToObject(r, "status", s->stopping ? "stopping" : "ok");
    cJSON_AddNumberToObject(r, "running", s->n_active);
    cJSON_AddNumberToObject(r, "queued", s->n_queued);
    pthread_mutex_unlock(&s->mu);
    cJSON_AddNumberToObject(r, "parallel", s->parallel);
    cJSON_AddNumberToObject(r, "queue", s->queue_cap);
    return reply(mc, c, 200, json_take(r), "application/json", NULL, NULL);
}

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} text_buf;

static void tb_printf(text_buf *b, const char *fmt, ...) QEIL_PRINTF(2, 3);
static void tb_printf(text_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[1024];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || b->oom) return;
    size_t k = (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1;
    if (b->len + k + 1 > b->cap) {
        size_t c = b->cap ? b->cap * 2 : 4096;
        while (c < b->len + k + 1) c *= 2;
        char *q = realloc(b->p, c);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = c;
    }
    memcpy(b->p + b->len, tmp, k);
    b->len += k;
    b->p[b->len] = '\0';
}

/* A label value for Prometheus: \\, \" and \n escaped, other control bytes dropped. */
static void label(const char *in, char *out, size_t n)
{
    size_t k = 0;
    for (; *in && k + 3 < n; in++) {
        unsigned char ch = (unsigned char)*in;
        if (ch == '\\' || ch == '"') {
            out[k++] = '\\';
            out[k++] = (char)ch;
        } else if (ch == '\n') {
            out[k++] = '\\';
            out[k++] = 'n';
        } else if (ch >= 0x20) {
            out[k++] = (char)ch;
        }
    }
    out[k] = '\0';
}

static enum MHD_Result handle_metrics(struct MHD_Connection *mc, conn *c)
{
    serve_server *s = c->s;
    text_buf b = {0};
    pthread_mutex_lock(&s->mu);
    tb_printf(&b, "# HELP qeil_requests_total HTTP requests answered, by endpoint and status class.\n"
                  "# TYPE qeil_requests_total counter\n");
    static const char *cls[6] = {"1xx", "2xx", "3xx", "4xx", "5xx", "other"};
    for (int ep = 0; ep <= EP_OTHER; ep++)
        for (int k = 0; k < 6; k++)
            if (s->req[ep][k])
                tb_printf(&b, "qeil_requests_total{endpoint=\"%s\",code=\"%s\"} %llu\n",
                          EP_NAME[ep], cls[k], (unsigned long long)s->req[ep][k]);
    tb_printf(&b,
              "# HELP qeil_requests_rejected_total Requests refused with 429 (--parallel and "
              "--queue full).\n# TYPE qeil_requests_rejected_total counter\n"
              "qeil_requests_rejected_total %llu\n",
              (unsigned long long)s->rejected_429);
    tb_printf(&b,
              "# HELP qeil_client_disconnects_total Requests whose client went away before the "
              "end (generation stopped).\n# TYPE qeil_client_disconnects_total counter\n"
              "qeil_client_disconnects_total %llu\n",
              (unsigned long long)s->disconnects);
    tb_printf(&b,
              "# HELP qeil_prompt_tokens_total Prompt tokens prefilled.\n"
              "# TYPE qeil_prompt_tokens_total counter\nqeil_prompt_tokens_total %llu\n"
              "# HELP qeil_generated_tokens_total Tokens generated (all samples).\n"
              "# TYPE qeil_generated_tokens_total counter\nqeil_generated_tokens_total %llu\n",
              (unsigned long long)s->prompt_tokens, (unsigned long long)s->gen_tokens);
    tb_printf(&b,
              "# HELP qeil_queue_depth Requests waiting for a sequence.\n"
              "# TYPE qeil_queue_depth gauge\nqeil_queue_depth %u\n"
              "# HELP qeil_running_requests Requests holding a sequence (or running a cascade).\n"
              "# TYPE qeil_running_requests gauge\nqeil_running_requests %u\n",
              s->n_queued, s->n_active);
    tb_printf(&b,
              "# HELP qeil_decode_steps_total Batched decode steps (one engine call each).\n"
              "# TYPE qeil_decode_steps_total counter\nqeil_decode_steps_total %llu\n"
              "# HELP qeil_decode_step_sequences_total Sequences over all decode steps "
              "(divided by the steps: the mean decode batch).\n"
              "# TYPE qeil_decode_step_sequences_total counter\n"
              "qeil_decode_step_sequences_total %llu\n"
              "# HELP qeil_decode_batch Sequences in the last decode step.\n"
              "# TYPE qeil_decode_batch gauge\nqeil_decode_batch %llu\n"
              "# HELP qeil_decode_load Sequences that wanted a token in the last step (decoded "
              "in batches of the plan's size at that load).\n"
              "# TYPE qeil_decode_load gauge\nqeil_decode_load %llu\n",
              (unsigned long long)s->steps, (unsigned long long)s->step_seqs,
              (unsigned long long)s->last_batch, (unsigned long long)s->last_load);
    tb_printf(&b,
              "# HELP qeil_plan_replans_total PGSAM re-plans of the decode batch, one per load "
              "level first seen (--plan auto|pgsam).\n"
              "# TYPE qeil_plan_replans_total counter\nqeil_plan_replans_total %llu\n"
              "# HELP qeil_plan_replan_seconds_total Wall time of those re-plans.\n"
              "# TYPE qeil_plan_replan_seconds_total counter\nqeil_plan_replan_seconds_total %.9g\n"
              "# HELP qeil_planned_decode_batch The decode batch the plan chose at each load "
              "planned so far.\n# TYPE qeil_planned_decode_batch gauge\n",
              (unsigned long long)s->replans, s->replan_s);
    for (uint32_t l = 1; l <= s->parallel && l <= SERVE_MAX_PARALLEL; l++)
        if (s->load_planned[l])
            tb_printf(&b, "qeil_planned_decode_batch{load=\"%u\"} %u\n", l,
                      (unsigned)s->load_plan[l].batch);
    if (!s->batch_planned)
        tb_printf(&b, "qeil_planned_decode_batch{load=\"any\"} %u\n", (unsigned)s->plan.batch);
    tb_printf(&b, "# HELP qeil_device_busy_seconds_total Busy time per device: measured wall "
                  "time of this machine's engine (device=\"cpu\"), and the modeled busy time "
                  "of each unit of the target platform under the plan.\n"
                  "# TYPE qeil_device_busy_seconds_total counter\n"
                  "qeil_device_busy_seconds_total{device=\"cpu\",platform=\"this-machine\",provenance=\"measured\"} %.9g\n",
              s->busy_s);
    for (int d = 0; d < s->pf.n_units && d < QEIL_MAX_UNITS; d++) {
        char l1[160], l2[160];
        label(s->pf.name, l1, sizeof l1);
        label(s->pf.units[d].name, l2, sizeof l2);
        tb_printf(&b,
                  "qeil_device_busy_seconds_total{device=\"%s\",platform=\"%s\","
                  "provenance=\"modeled\"} %.9g\n",
                  l2, l1, s->dev_busy_s[d]);
    }
    char mp[200];
    label(s->meter_prov ? s->meter_prov : "", mp, sizeof mp);
    tb_printf(&b,
              "# HELP qeil_energy_joules_total Energy of the answers: modeled (the plan on the "
              "target platform) and, where a CPU energy counter exists, measured.\n"
              "# TYPE qeil_energy_joules_total counter\n"
              "qeil_energy_joules_total{provenance=\"modeled\"} %.9g\n",
              s->energy_modeled_J);
    if (s->meter_prov)
        tb_printf(&b, "qeil_energy_joules_total{provenance=\"measured\",meter=\"%s\"} %.9g\n", mp,
                  s->energy_measured_J);
    tb_printf(&b,
              "# HELP qeil_cascade_samples_drawn_total Samples drawn by repeated-sampling "
              "requests.\n# TYPE qeil_cascade_samples_drawn_total counter\n"
              "qeil_cascade_samples_drawn_total %llu\n"
              "# HELP qeil_cascade_samples_saved_total Samples requested (n) but not drawn: "
              "the selection stopped early.\n# TYPE qeil_cascade_samples_saved_total counter\n"
              "qeil_cascade_samples_saved_total %llu\n",
              (unsigned long long)s->samples_drawn, (unsigned long long)s->samples_saved);
    /* throttle ground truth since start: cpufreq thermal_throttle counters,
     * NVML clocks-event reasons, hwmon critical alarms; no line where none
     * is readable (unknown is not 0) */
    qeil_sense_throttle th = {0};
    qeil_ctx *tctx = s->throttle0 ? qeil_ctx_create(NULL) : NULL;
    qeil_sense_sample *now = tctx ? qeil_sense_sample_create(tctx, s->sense) : NULL;
    if (now) {
        qeil_sense_read(s->sense, now);
        qeil_sense_throttle_between(s->sense, s->throttle0, now, &th);
        qeil_sense_sample_free(now);
    }
    qeil_ctx_free(tctx);
    tb_printf(&b,
              "# HELP qeil_throttle_events_total Thermal throttle events since start, from the "
              "kernel's and the driver's counters (cpufreq thermal_throttle, NVML clocks-event "
              "reasons, hwmon critical alarms): %s.\n"
              "# TYPE qeil_throttle_events_total counter\n",
              th.available ? "ground truth, not a model"
                           : "no such counter is readable on this machine, so no value (unknown, "
                             "not 0)");
    if (th.available)
        tb_printf(&b, "qeil_throttle_events_total %llu\n", (unsigned long long)th.events);
    tb_printf(&b,
              "# HELP qeil_faults_recovered_total Device faults the runtime recovered from "
              "(a failed device's units moved to the others, the step resumed).\n"
              "# TYPE qeil_faults_recovered_total counter\nqeil_faults_recovered_total %llu\n",
              (unsigned long long)s->faults_recovered);
    pthread_mutex_unlock(&s->mu);
    if (b.oom) {
        free(b.p);
        b.p = NULL;
    }
    /* (this scrape is counted once answered: the next one shows it) */
    return reply(mc, c, 200, b.p, "text/plain; version=0.0.4; charset=utf-8", NULL, NULL);
}

/* ------------------------------------------------------------------------ */
/* The access handler                                                       */
/* ------------------------------------------------------------------------ */

static int route(const char *url)
{
    if (strcmp(url, "/") == 0 || strcmp(url, "/index.html") == 0) return EP_PAGE;
    if (strcmp(url, "/health") == 0) return EP_HEALTH;
    if (strcmp(url, "/v1/models") == 0) return EP_MODELS;
    if (strcmp(url, "/v1/completions") == 0) return EP_COMPLETIONS;
    if (strcmp(url, "/v1/chat/completions") == 0) return EP_CHAT;
    if (strcmp(url, "/metrics") == 0) return EP_METRICS;
    return EP_OTHER;
}

/* Constant time in the key's content: every byte of the expected key is
 * compared whatever the given one holds; only the expected length shows. */
static int key_ok(const char *want, const char *hdr)
{
    static const char bearer[] = "Bearer ";
    if (!hdr || strncmp(hdr, bearer, sizeof bearer - 1) != 0) return 0;
    const char *got = hdr + sizeof bearer - 1;
    size_t wl = strlen(want), gl = strlen(got);
    unsigned char d = wl != gl;
    for (size_t i = 0; i < wl; i++) d |= (unsigned char)(want[i] ^ (i < gl ? got[i] : 0));
    return d == 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **req_cls)
{
    serve_server *s = cls;
    (void)version;
    conn *c = *req_cls;
    if (!c) {
        if (!(c = calloc(1, sizeof *c))) return MHD_NO;
        c->s = s;
        c->ep = route(url);
        *req_cls = c;
        int post = c->ep == EP_COMPLETIONS || c->ep == EP_CHAT;
        if (c->ep == EP_OTHER)
            return reply_error(mc, c, 404, NULL, NULL, NULL, "no endpoint '%.100s'", url);
        if (strcmp(method, post ? "POST" : "GET") != 0 &&
            !(!post && strcmp(method, "HEAD") == 0))
            return reply_error(mc, c, 405, NULL, "Allow", post ? "POST" : "GET, HEAD",
                               "%.100s takes %s, not %.20s", url, post ? "POST" : "GET",
                               method);
        if (s->api_key && c->ep != EP_PAGE && c->ep != EP_HEALTH &&
            !key_ok(s->api_key,
                    MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Authorization")))
            return reply_error(mc, c, 401, NULL, "WWW-Authenticate", "Bearer",
                               "a valid API key is required (Authorization: Bearer KEY)");
        const char *cl = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Content-Length");
        if (cl) {
            char *endp;
            errno = 0;
            unsigned long long v = strtoull(cl, &endp, 10);
            if (errno || *endp || v > s->max_body)
                return reply_error(mc, c, 413, NULL, NULL, NULL,
                                   "the body (Content-Length %.30s) is over the limit of %zu "
                                   "bytes (--max-body)",
                                   cl, s->max_body);
        }
        return MHD_YES;
    }
    if (c->replied) { /* an early reply: discard what still comes */
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (c->too_big || n > s->max_body - c->len) {
            c->too_big = 1; /* chunked and over: drop it, answer 413 at the end */
            return MHD_YES;
        }
        if (c->len + n + 1 > c->cap) {
            size_t cap = c->cap ? c->cap : 4096;
            while (cap < c->len + n + 1) cap *= 2;
            char *q = realloc(c->body, cap);
            if (!q) return MHD_NO;
            c->body = q;
            c->cap = cap;
        }
        memcpy(c->body + c->len, upload_data, n);
        c->len += n;
        c->body[c->len] = '\0';
        return MHD_YES;
    }
    if (c->too_big)
        return reply_error(mc, c, 413, NULL, NULL, NULL,
                           "the body is over the limit of %zu bytes (--max-body)", s->max_body);
    switch (c->ep) {
    case EP_PAGE: return reply(mc, c, 200, strdup(serve_page_html), "text/html; charset=utf-8",
                               NULL, NULL);
    case EP_HEALTH: return handle_health(mc, c);
    case EP_MODELS: return handle_models(mc, c);
    case EP_METRICS: return handle_metrics(mc, c);
    case EP_COMPLETIONS: return handle_generate(mc, c, 0);
    case EP_CHAT: return handle_generate(mc, c, 1);
    }
    return MHD_NO;
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)mc;
    (void)toe;
    conn *c = *req_cls;
    if (!c) return;
    free(c->body);
    free(c);
    *req_cls = NULL;
}

struct MHD_Daemon *serve_http_start(serve_server *s, const char *host, unsigned port,
                                    unsigned timeout_s, unsigned *bound)
{
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    struct sockaddr *sa;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD;
    memset(&a4, 0, sizeof a4);
    memset(&a6, 0, sizeof a6);
    if (inet_pton(AF_INET, host, &a4.sin_addr) == 1) {
        a4.sin_family = AF_INET;
        a4.sin_port = htons((uint16_t)port);
        sa = (struct sockaddr *)&a4;
    } else if (inet_pton(AF_INET6, host, &a6.sin6_addr) == 1) {
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons((uint16_t)port);
        sa = (struct sockaddr *)&a6;
        flags |= MHD_USE_IPv6;
    } else {
        fprintf(stderr, "qeil serve: --host: '%s' is not an IPv4 or IPv6 address\n", host);
        return NULL;
    }
    /* threads are bounded: the running and queued requests, plus room for
     * the cheap endpoints and for clients that get a 429 */
    unsigned limit = s->parallel + s->queue_cap + 32;
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, sa,
        MHD_OPTION_CONNECTION_TIMEOUT, timeout_s, MHD_OPTION_CONNECTION_LIMIT, limit,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, s, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "qeil serve: cannot listen on %s port %u: %s\n", host, port,
                errno ? strerror(errno) : "libmicrohttpd refused");
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    *bound = di ? di->port : port;
    return d;
}
