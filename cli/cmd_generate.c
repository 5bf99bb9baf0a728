/* cmd_generate.c — `qeil generate`: tokenize a prompt (formatted with the
 * model's chat template when it has one: docs/chat.md), prefill it, then
 * sample and stream tokens until EOS, the end of the turn or -n
 * (qeil_runtime_generate); report prefill and decode speed and the seed.
 * `-i` chats on the terminal, each turn appended to the KV cache of the
 * previous ones where the rendered conversation extends what it holds.
 * Flag names follow llama.cpp where the meaning is the same. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "opt.h"
#include "qeil/chat.h"
#include "qeil/runtime.h"

#define CMD "generate"
#define MAX_PREDICT (1u << 20)
#define MAX_CTX (1u << 24)
#define MAX_LINE (1u << 20) /* -i: bytes per line typed */


typedef struct {
    const char *model, *prompt, *sensors_root, *system, *placement, *plan, *platform;
    uint32_t n_predict, n_ctx;
    int threads, no_bos, json, seed_given, interactive, no_chat;
    qeil_chat_template chat; /* --chat-template; UNKNOWN: the model's */
    qeil_sampler_params sp;
} gen_opts;

static int parse_chat(const char *cmd, const char *opt, const char *v, void *o)
{
    qeil_chat_template t = qeil_chat_template_from_name(v);
    if (t == QEIL_CHAT_UNKNOWN)
        return cli_usage_error(cmd, "%s: '%s' is not one of %s", opt, v,
                               qeil_chat_template_names());
    ((gen_opts *)o)->chat = t;
    return 0;
}

/* The defaults in the help are qeil_sampler_default_params()'s and the
 * names qeil_chat_template_names()'s. */
#define T gen_opts
static const cli_optdef gen_table[] = {
    {CLI_STR("--model", "-m", "FILE", "GGUF model (llama, qwen2, gpt2)", T, model)},
    {CLI_STR("--prompt", "-p", "TEXT",
             "prompt; raw (--no-chat or no template): special tokens\n"
             "such as <|endoftext|> are parsed; in a chat template it\n"
             "is the user's message, kept as text",
             T, prompt)},
    {CLI_FLAG("--interactive", "-i",
              "chat on the terminal: one line per user message, /exit\n"
              "or end of input ends (stdin may be a pipe); -p, when\n"
              "given, is the first message",
              T, interactive)},
    {CLI_FN("--chat-template", NULL, "NAME",
            "format with NAME, not the model's template: llama3,\n"
            "chatml, granite, lfm2, gemma, mistral-v7, mistral-v7-tekken,\n"
            "mistral-v3, mistral-v3-tekken, mistral-v1, llama2, llama2-sys,\n"
            "llama2-sys-bos, llama2-sys-strip",
            parse_chat)},
    {CLI_FLAG("--no-chat", NULL, "the prompt as given, no chat template", T, no_chat)},
    {CLI_STR("--system", NULL, "TEXT", "a system message before the first user message", T,
             system)},
    {CLI_U64("--n-predict", "-n", "N", "tokens to generate at most (default 64; 1..1048576)", T,
             n_predict, 1, MAX_PREDICT)},
    {CLI_U64("--threads", "-t", "N", "worker threads (default 0 = all online CPUs)", T, threads,
             0, QEIL_ENGINE_MAX_THREADS)},
    {CLI_U64("--ctx-size", "-c", "N", "context length (default 0 = min(model's, 4096))", T, n_ctx,
             0, MAX_CTX)},
    {CLI_F32("--temp", NULL, "T", "temperature, 0 = greedy (default 0.80; 0..100)", T, sp.temp, 0,
             QEIL_SAMPLER_MAX_TEMP, 0, "0..100")},
    {CLI_U64("--top-k", NULL, "K", "keep the K most probable, 0 = off (default 40)", T, sp.top_k,
             0, QEIL_SAMPLER_MAX_VOCAB)},
    {CLI_F32("--top-p", NULL, "P", "nucleus mass, 1 = off (default 0.95; (0, 1])", T, sp.top_p, 0,
             1, CLI_OPT_LO_OPEN, "(0, 1]")},
    {CLI_F32("--min-p", NULL, "P",
             "drop tokens below P x the top probability, 0 = off\n(default 0.05; [0, 1))", T,
             sp.min_p, 0, 1, CLI_OPT_HI_OPEN, "[0, 1)")},
    {CLI_F32("--repeat-penalty", NULL, "R",
             "penalty on repeated tokens, 1 = off (default 1.00;\n(0, 10])", T,
             sp.repeat_penalty, 0, QEIL_SAMPLER_MAX_REPEAT_PENALTY, CLI_OPT_LO_OPEN, "(0, 10]")},
    {CLI_U64("--repeat-last-n", NULL, "N", "tokens the penalty looks back over (default 64)", T,
             sp.repeat_last_n, 0, QEIL_SAMPLER_MAX_REPEAT_LAST_N)},
    {CLI_U64("--seed", NULL, "S", "sampler seed (default: from the clock, printed)", T, sp.seed, 0,
             UINT64_MAX),
     .given = CLI_GIVEN(T, seed_given)},
    {CLI_FLAG("--no-bos", NULL, "do not add the BOS token the model asks for", T, no_bos)},
    {CLI_STR("--sensors-root", NULL, "DIR",
             "read energy sensors under DIR instead of / (fixture trees)", T, sensors_root)},
    {CLI_STR("--placement", NULL, "SPEC",
             "where the work units run, e.g. all:vk0 or\n"
             "emb..b7:cpu,b8..head:vk0, or per phase\n"
             "prefill=all:vk0;decode=all:cpu (default all:cpu; qeil devices)",
             T, placement)},
    {CLI_STR("--plan", NULL, "FILE|auto",
             "run a plan's prefill and decode maps: FILE from\n"
             "`qeil plan --output json` on a profile of this machine,\n"
             "auto = PGSAM's knee plan on --platform (default: a quick\n"
             "probe of this machine); not with --placement",
             T, plan)},
    {CLI_STR("--platform", NULL, "FILE",
             "the profile --plan FILE|auto runs on (`qeil probe -o`)", T, platform)},
    {CLI_ENUM("--output", NULL, "FMT",
              "text|json (default text; json prints one object at the\nend)", T, json,
              "text|json")},
};
#undef T

static const cli_command gen_cmd = {
    CMD,
    "usage: qeil generate -m FILE -p TEXT [options]\n"
    "       qeil generate -m FILE -i [options]\n\n"
    "Generate text from a GGUF model: prefill the prompt, then sample up to N tokens,\n"
    "streamed to stdout as they are produced (the prompt is not echoed). Timings and\n"
    "the seed go to stderr. A model with a chat template (tokenizer.chat_template of\n"
    "a known family) gets the prompt as a user message in that template, and stops\n"
    "at the end of the assistant's turn (docs/chat.md).\n",
    gen_table,
    CLI_NOPTS(gen_table),
    "Sampling order: repetition penalty, temperature, top-k, top-p, min-p\n"
    "(docs/sampler.md). EOS ends generation and is not printed.\n\n"
    "examples:\n"
    "  qeil generate -m model.gguf -p \"The capital of France is\" -n 32 --temp 0\n"
    "  qeil generate -m model.gguf -p \"Once upon a time\" --seed 42 --output json\n"
    "  qeil generate -m instruct.gguf -i --system \"Answer briefly.\"\n",
    NULL,
};

static int parse_args(int argc, char **argv, gen_opts *o, int *done)
{
    *done = 0;
    int rc = cli_opt_parse(&gen_cmd, argc, argv, o);
    if (rc == CLI_OPT_HELP) *done = 1;
    if (rc != CLI_OK) return rc == CLI_OPT_HELP ? CLI_OK : rc;
    if (!o->model) return cli_usage_error(CMD, "-m FILE is required");
    if (!o->prompt && !o->interactive) return cli_usage_error(CMD, "-p TEXT is required (or -i)");
    if (o->plan && o->placement)
        return cli_usage_error(CMD, "--plan and --placement exclude each other");
    if (o->platform && !o->plan) return cli_usage_error(CMD, "--platform is for --plan FILE|auto");
    if (o->no_chat && o->chat != QEIL_CHAT_UNKNOWN)
        return cli_usage_error(CMD, "--no-chat and --chat-template exclude each other");
    if (o->no_chat && o->system) return cli_usage_error(CMD, "--system needs a chat template (not --no-chat)");
    if (o->no_chat && o->interactive) return cli_usage_error(CMD, "-i needs a chat template (not --no-chat)");
    if (o->interactive && o->json) return cli_usage_error(CMD, "--output json is not for -i");
    return CLI_OK;
}

/* A seed nobody chose: wall clock nanoseconds and the pid through
 * splitmix64's finaliser, so runs a second apart differ in every bit. */
static uint64_t clock_seed(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t z = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    z ^= (uint64_t)getpid() << 32;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A float option as JSON shows it: 0.8f is 0.800000011920929 as a double;
 * 7 significant digits give back the number the user typed. */
static double f2d(float x)
{
    char b[32];
    snprintf(b, sizeof b, "%.7g", (double)x);
    return strtod(b, NULL);
}

/* Growable byte buffer for the generated text (JSON output). */
typedef struct {
    qeil_ctx *ctx;
    char *p;
    size_t n, cap;
} strbuf;

static int sb_add(strbuf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *q = qeil_realloc(b->ctx, b->p, cap);
        if (!q) return -1;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
    return 0;
}

/* The runtime's token callback: stream to stdout (text output) and keep
 * the text (JSON output). */
typedef struct {
    int json, oom;
    strbuf text;
    size_t *end;    /* -i: end of each token's text in `text` (n_predict entries) */
    uint32_t n_tok;
} stream_state;

static qeil_status on_token(void *user, int32_t token, const char *piece, size_t len)
{
    stream_state *s = user;
    (void)token;
    if (!s->json) {
        fwrite(piece, 1, len, stdout);
        fflush(stdout);
    }
    if (sb_add(&s->text, piece, len) != 0) {
        s->oom = 1;
        return QEIL_ERR_NOMEM;
    }
    if (s->end) s->end[s->n_tok] = s->text.n;
    s->n_tok++;
    return QEIL_OK;
}

/* ------------------------------------------------------------------------ */
/* Chat                                                                      */
/* ------------------------------------------------------------------------ */

/* The template of this run: --chat-template, else the model's when qeil
 * knows its family (a warning when it does not), else none. *from says
 * where it came from. */
static qeil_chat_template pick_template(const gen_opts *o, qeil_runtime *rt, const char **from)
{
    *from = NULL;
    if (o->no_chat) return QEIL_CHAT_UNKNOWN;
    if (o->chat != QEIL_CHAT_UNKNOWN) {
        *from = "--chat-template";
        return o->chat;
    }
    const char *src = qeil_runtime_chat_template(rt);
    if (!src) return QEIL_CHAT_UNKNOWN;
    qeil_chat_template t = qeil_chat_detect(src, 0);
    if (t == QEIL_CHAT_UNKNOWN)
        fprintf(stderr,
                "qeil generate: the model's chat template is not a family qeil knows; the prompt goes "
                "raw (--chat-template NAME picks one of: %s)\n",
                qeil_chat_template_names());
    else
        *from = "the model's tokenizer.chat_template";
    return t;
}

/* Stop at the template's end of turn; warn when the vocabulary lacks the
 * template's special tokens (they would be tokenized as text). */
static int chat_setup(qeil_ctx *ctx, qeil_runtime *rt, qeil_chat_template t)
{
    const qeil_tokenizer *tk = qeil_runtime_tokenizer(rt);
    for (const char *const *sp = qeil_chat_special_tokens(t); *sp; sp++)
        if (qeil_tokenizer_find(tk, *sp, strlen(*sp)) < 0)
            fprintf(stderr, "qeil generate: the vocabulary has no token %s (chat template %s): it is "
                            "tokenized as text\n", *sp, qeil_chat_template_name(t));
    const char *eot = qeil_chat_end_of_turn(t);
    int32_t id = qeil_tokenizer_find(tk, eot, strlen(eot));
    if (id >= 0 && id != qeil_tokenizer_eos(tk) && qeil_runtime_set_stop_tokens(rt, &id, 1) != QEIL_OK)
        return cli_fail(CMD, "%s", qeil_ctx_errmsg(ctx));
    return CLI_OK;
}

/* Render msgs in t and tokenize from byte `from` (0: all, with BOS as
 * asked): *ids allocated (caller frees), *text the whole rendering. */
static int chat_ids(qeil_ctx *ctx, qeil_runtime *rt, const gen_opts *o, qeil_chat_template t,
                    const qeil_chat_message *msgs, size_t n, size_t from, char **text, size_t *len,
                    int32_t **ids, size_t *n_ids)
{
    *ids = NULL;
    *n_ids = 0;
    if (qeil_chat_apply_alloc(ctx, t, msgs, n, 1, text, len) != QEIL_OK) return cli_fail(CMD, "%s", qeil_ctx_errmsg(ctx));
    qeil_chat_params cp = qeil_chat_default_params();
    cp.add_bos = o->no_bos ? 0 : -1;
    cp.from_byte = from;
    size_t cap = *len - from + 2; /* a token per byte at most, and BOS */
    *ids = qeil_malloc(ctx, sizeof **ids * cap);
    if (!*ids) return cli_fail(CMD, "out of memory");
    if (qeil_chat_tokenize(ctx, qeil_runtime_tokenizer(rt), t, msgs, n, &cp, *ids, cap, n_ids) != QEIL_OK)
        return cli_fail(CMD, "prompt: %s", qeil_ctx_errmsg(ctx));
    return CLI_OK;
}

/* A copy of s[0..n) without NUL bytes (a model may emit <0x00>; a message
 * is text); *had_nul says whether any was dropped. */
static char *copy_text(qeil_ctx *ctx, const char *s, size_t n, int *had_nul)
{
    char *c = qeil_malloc(ctx, n + 1);
    size_t k = 0;
    *had_nul = 0;
    if (!c) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i]) c[k++] = s[i];
        else *had_nul = 1;
    }
    c[k] = '\0';
    return c;
}

/* One line of f into buf[0..cap) (NUL-terminated, the newline dropped;
 * NUL bytes kept, *len counts them); a longer line is read to its end and
 * dropped (*too_long). -1 at the end of input with nothing read. Bounded:
 * a line of any length costs cap bytes of memory. */
static int read_line(FILE *f, char *buf, size_t cap, size_t *len, int *too_long)
{
    size_t n = 0;
    int c, any = 0;
    *too_long = 0;
    while ((c = getc(f)) != EOF) {
        any = 1;
        if (c == '\n') break;
        if (n + 1 < cap) buf[n++] = (char)c;
        else *too_long = 1;
    }
    buf[n] = '\0';
    *len = n;
    return any ? 0 : -1;
}

/* `qeil generate -i`: each line typed is a user message; the conversation
 * is rendered whole every turn, and when that text starts with the text
 * the KV cache holds (the previous rendering and the reply's evaluated
 * tokens), only the rest is tokenized and prefilled
 * (qeil_runtime_generate_more); otherwise the whole conversation is
 * prefilled again from empty (a template that rewrites earlier turns:
 * llama3 and gemma trim replies, lfm2 drops past thinking). */
static int chat_loop(qeil_ctx *ctx, qeil_runtime *rt, const gen_opts *o, qeil_chat_template t, int32_t *gen,
                     qeil_sampler_logprob *lps)
{
    int rc = CLI_OK, tty = isatty(STDIN_FILENO);
    size_t n_msg = 0, cap_msg = 0, n_turn = 0;
    qeil_chat_message *msgs = NULL;
    char *line = qeil_malloc(ctx, MAX_LINE + 1), *text = NULL;
    strbuf kv = {ctx, NULL, 0, 0}; /* the text sequence 0 holds */
    int kv_ok = 0;
    stream_state ss;
    memset(&ss, 0, sizeof ss);
    ss.text.ctx = ctx;
    ss.end = qeil_malloc(ctx, sizeof *ss.end * o->n_predict);
    int32_t *ids = NULL;
    if (!ss.end || !line) {
        rc = cli_fail(CMD, "out of memory");
        goto out;
    }
    const char *first = o->prompt;
    for (;;) {
        /* ---- the user's message: -p first, then a line of stdin ---- */
        const char *u;
        size_t ul;
        if (first) {
            u = first;
            ul = strlen(first);
            first = NULL;
        } else {
            if (tty) fputs("> ", stderr);
            int too_long;
            if (read_line(stdin, line, MAX_LINE + 1, &ul, &too_long) < 0) break;
            if (too_long) {
                fprintf(stderr, "qeil generate: a line longer than %u bytes skipped\n", MAX_LINE);
                continue;
            }
            if (ul && line[ul - 1] == '\r') line[--ul] = '\0';
            if (ul == 5 && memcmp(line, "/exit", 5) == 0) break;
            if (ul == 0) continue;
            u = line;
        }
        if (n_msg + 3 > cap_msg) {
            size_t nc = cap_msg ? cap_msg * 2 : 16;
            qeil_chat_message *nm = qeil_realloc(ctx, msgs, sizeof *nm * nc);
            if (!nm) {
                rc = cli_fail(CMD, "out of memory");
                goto out;
            }
            msgs = nm;
            cap_msg = nc;
        }
        if (n_msg == 0 && o->system) msgs[n_msg++] = (qeil_chat_message){"system", o->system, 0};
        int nul;
        char *uc = copy_text(ctx, u, ul, &nul);
        if (!uc) {
            rc = cli_fail(CMD, "out of memory");
            goto out;
        }
        if (nul) fprintf(stderr, "qeil generate: NUL bytes dropped from the message\n");
        msgs[n_msg++] = (qeil_chat_message){"user", uc, 0};

        /* ---- render; reuse the KV cache where the text extends it ---- */
        size_t len = 0, n_ids = 0, from = 0;
        uint32_t past = qeil_runtime_gen_len(rt);
        qeil_free(ctx, text);
        qeil_free(ctx, ids);
        text = NULL;
        ids = NULL;
        if (qeil_chat_apply_alloc(ctx, t, msgs, n_msg, 1, &text, &len) != QEIL_OK) {
            rc = cli_fail(CMD, "%s", qeil_ctx_errmsg(ctx));
            goto out;
        }
        if (kv_ok && past > 0 && kv.n < len && memcmp(text, kv.p, kv.n) == 0) from = kv.n;
        qeil_free(ctx, text);
        text = NULL;
        if ((rc = chat_ids(ctx, rt, o, t, msgs, n_msg, from, &text, &len, &ids, &n_ids)) != CLI_OK) goto out;
        int reuse = from > 0;
        uint32_t n_ctx = qeil_runtime_n_ctx(rt);
        if (n_ids == 0 || n_ids > n_ctx - (reuse ? past : 0)) {
            rc = cli_fail(CMD, "the conversation (%zu tokens) does not fit the context of %u tokens (raise -c)",
                          (reuse ? past : 0) + n_ids, n_ctx);
            goto out;
        }

        /* ---- generate, streamed ---- */
        ss.text.n = 0;
        ss.n_tok = 0;
        qeil_runtime_gen_result g;
        qeil_status st = reuse ? qeil_runtime_generate_more(rt, ids, (uint32_t)n_ids, o->n_predict, gen, lps,
                                                            on_token, &ss, &g)
                               : qeil_runtime_generate(rt, ids, (uint32_t)n_ids, o->n_predict, gen, lps, on_token,
                                                       &ss, &g);
        if (st != QEIL_OK) {
            rc = cli_fail(CMD, "%s", ss.oom ? "out of memory" : qeil_ctx_errmsg(ctx));
            goto out;
        }
        fputc('\n', stdout);
        fflush(stdout);
        n_turn++;
        if (reuse)
            fprintf(stderr, "[turn %zu: KV cache reused for %u tokens, %zu new prefilled; %u generated, stop %s]\n",
                    n_turn, past, n_ids, g.n_gen, qeil_runtime_stop_name(g.stop));
        else
            fprintf(stderr, "[turn %zu: %zu tokens prefilled from empty; %u generated, stop %s]\n", n_turn, n_ids,
                    g.n_gen, qeil_runtime_stop_name(g.stop));

        /* ---- the reply joins the conversation; the KV text follows ----
         * Mistral v1/v3/v7 write a space before an assistant's content:
         * the model's own leading space is that one (SentencePiece's
         * "▁word"), so it is not kept twice */
        const char *rp = ss.text.p ? ss.text.p : "";
        size_t rn = ss.text.n;
        if (rn && rp[0] == ' ' &&
            (t == QEIL_CHAT_MISTRAL_V7 || t == QEIL_CHAT_MISTRAL_V3 || t == QEIL_CHAT_MISTRAL_V1))
            rp++, rn--;
        char *rcopy = copy_text(ctx, rp, rn, &nul);
        if (!rcopy) {
            rc = cli_fail(CMD, "out of memory");
            goto out;
        }
        msgs[n_msg++] = (qeil_chat_message){"assistant", rcopy, 0};
        size_t kept = g.n_decode ? ss.end[g.n_decode - 1] : 0; /* evaluated tokens' text */
        kv.n = 0;
        kv_ok = !nul && sb_add(&kv, text, len) == 0 && sb_add(&kv, ss.text.p ? ss.text.p : "", kept) == 0;
    }
    if (ferror(stdin)) rc = cli_fail(CMD, "reading stdin failed");
    fprintf(stderr, "chat: %zu turns, template %s, seed %llu\n", n_turn, qeil_chat_template_name(t),
            (unsigned long long)o->sp.seed);

out:
    for (size_t i = 0; i < n_msg; i++)
        if (strcmp(msgs[i].role, "system")) qeil_free(ctx, (void *)msgs[i].content);
    qeil_free(ctx, msgs);
    qeil_free(ctx, ids);
    qeil_free(ctx, text);
    qeil_free(ctx, kv.p);
    qeil_free(ctx, ss.text.p);
    qeil_free(ctx, ss.end);
    qeil_free(ctx, line);
    return rc;
}

int cmd_generate(int argc, char **argv)
{
    gen_opts o;
    memset(&o, 0, sizeof o);
    o.n_predict = 64;
    o.sp = qeil_sampler_default_params();
    int done = 0, rc = parse_args(argc, argv, &o, &done);
    if (rc != CLI_OK || done) return rc;
    if (!o.seed_given) o.sp.seed = clock_seed();

    qeil_ctx *ctx = cli_ctx_create();
    if (!ctx) return cli_fail(CMD, "out of memory");
    qeil_runtime *rt = NULL;
    int32_t *ids = NULL, *gen = NULL;
    qeil_sampler_logprob *lps = NULL;
    stream_state ss;
    memset(&ss, 0, sizeof ss);
    ss.json = o.json;
    ss.text.ctx = ctx;
    rc = CLI_FAIL;

    /* one sequence, no sample slots: single-stream generation */
    qeil_runtime_params rp = qeil_runtime_default_params();
    rp.model_path = o.model;
    rp.n_threads = o.threads;
    rp.n_ctx = o.n_ctx;
    rp.samples = 1;
    rp.batch = 0;
    rp.meter.root = o.sensors_root;
    static char plan_spec[2048], plan_src[512];
    if (o.plan) {
        if ((rc = cli_plan_spec(CMD, ctx, o.plan, o.platform, o.model, plan_spec, sizeof plan_spec,
                                plan_src, sizeof plan_src)) != CLI_OK)
            goto out;
        o.placement = plan_spec;
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
    uint32_t n_ctx = qeil_runtime_n_ctx(rt);

    /* sampler first: a --top-k above this model's vocabulary is a usage error */
    qeil_status sst = qeil_runtime_set_sampler(rt, &o.sp);
    if (sst != QEIL_OK) {
        rc = sst == QEIL_ERR_NOMEM ? cli_fail(CMD, "%s", qeil_ctx_errmsg(ctx))
                                   : cli_usage_error(CMD, "%s", qeil_ctx_errmsg(ctx));
        goto out;
    }

    /* ---- the chat template, if any ---- */
    const char *ct_from = NULL;
    qeil_chat_template ct = pick_template(&o, rt, &ct_from);
    if (ct == QEIL_CHAT_UNKNOWN && (o.system || o.interactive)) {
        rc = cli_usage_error(CMD, "%s needs a chat template and the model has none known (--chat-template "
                             "NAME: %s)", o.interactive ? "-i" : "--system", qeil_chat_template_names());
        goto out;
    }
    if (ct != QEIL_CHAT_UNKNOWN) {
        fprintf(stderr, "chat template: %s (%s)\n", qeil_chat_template_name(ct), ct_from);
        if (chat_setup(ctx, rt, ct) != CLI_OK) goto out;
    }
    gen = qeil_malloc(ctx, sizeof *gen * o.n_predict);
    lps = qeil_malloc(ctx, sizeof *lps * o.n_predict);
    if (!gen || !lps) {
        cli_fail(CMD, "out of memory");
        goto out;
    }
    if (o.interactive) {
        rc = chat_loop(ctx, rt, &o, ct, gen, lps);
        goto out;
    }

    /* ---- tokenize: every byte gives at most one token, plus BOS ---- */
    size_t plen = strlen(o.prompt), cap = plen + 8, n_prompt = 0;
    if (plen > MAX_CTX) {
        cli_fail(CMD, "prompt: %zu bytes is more than any context could hold", plen);
        goto out;
    }
    if (ct != QEIL_CHAT_UNKNOWN) {
        qeil_chat_message m[2] = {{"system", o.system, 0}, {"user", o.prompt, 0}};
        char *text = NULL;
        size_t len = 0;
        int r = chat_ids(ctx, rt, &o, ct, o.system ? m : m + 1, o.system ? 2 : 1, 0, &text, &len, &ids,
                         &n_prompt);
        qeil_free(ctx, text);
        if (r != CLI_OK) goto out;
    } else {
        ids = qeil_malloc(ctx, sizeof *ids * cap);
        if (!ids) {
            cli_fail(CMD, "out of memory");
            goto out;
        }
        if (qeil_runtime_tokenize(rt, o.prompt, o.no_bos ? 0 : -1, 1, ids, cap, &n_prompt) != QEIL_OK) {
            cli_fail(CMD, "prompt: %s", qeil_ctx_errmsg(ctx));
            goto out;
        }
    }
    if (n_prompt == 0) {
        cli_fail(CMD, "prompt: no tokens (empty prompt and no BOS)");
        goto out;
    }
    if (n_prompt > n_ctx) {
        cli_fail(CMD, "prompt: %zu tokens do not fit the context of %u tokens (raise -c)",
                 n_prompt, n_ctx);
        goto out;
    }

    /* ---- prefill, then sample and stream until EOS, -n or the context ---- */
    qeil_runtime_gen_result g;
    if (qeil_runtime_generate(rt, ids, (uint32_t)n_prompt, o.n_predict, gen, lps, on_token, &ss,
                              &g) != QEIL_OK) {
        if (ss.oom) cli_fail(CMD, "out of memory");
        else cli_fail(CMD, "%s", qeil_ctx_errmsg(ctx));
        qeil_runtime_recovery rec[QEIL_RUNTIME_MAX_RECOVERIES];
        uint32_t n_rec = qeil_runtime_recoveries(rt, rec, QEIL_RUNTIME_MAX_RECOVERIES);
        cli_recoveries_text(stderr, "before that, ", rec, n_rec);
        goto out;
    }
    qeil_runtime_recovery rec[QEIL_RUNTIME_MAX_RECOVERIES];
    const uint32_t n_rec = qeil_runtime_recoveries(rt, rec, QEIL_RUNTIME_MAX_RECOVERIES);
    if (!o.json) {
        fputc('\n', stdout);
        fflush(stdout);
    }
    size_t n_gen = g.n_gen;
    uint32_t n_dec = g.n_decode, n_smp = g.n_sampled;
    double t_prefill = g.prefill_s, t_dec = g.decode_s, t_smp = g.sample_s;
    const char *stop = qeil_runtime_stop_name(g.stop);

    double pf_tps = t_prefill > 0 ? (double)n_prompt / t_prefill : 0;
    double dc_tps = t_dec > 0 ? (double)n_dec / t_dec : 0;
    fprintf(stderr, "\nprompt:   %zu tokens\n", n_prompt);
    fprintf(stderr, "prefill:  %.2f tok/s (%zu tokens in %.3f s)\n", pf_tps, n_prompt, t_prefill);
    fprintf(stderr, "decode:   %.2f tok/s (%u tokens in %.3f s)\n", dc_tps, n_dec, t_dec);
    fprintf(stderr, "sampling: %.3f ms/token\n", n_smp ? 1e3 * t_smp / n_smp : 0.0);
    fprintf(stderr, "generated %zu tokens (stop: %s), seed %llu%s\n", n_gen, stop,
            (unsigned long long)o.sp.seed, o.seed_given ? "" : " (from the clock)");
    /* measured on this machine: never a modeled figure */
    const char *mprov = qeil_runtime_meter_provenance(rt), *mcov = qeil_runtime_meter_covers(rt);
    cli_meas_text(stderr, "prefill", g.prefill_meas.valid, g.prefill_meas.energy_J,
                  g.prefill_meas.t_s, n_prompt, mprov, mcov);
    cli_meas_text(stderr, "decode ", g.decode_meas.valid, g.decode_meas.energy_J,
                  g.decode_meas.t_s, n_gen, mprov, mcov);
    if (mprov) fprintf(stderr, "energy meter: %s covers %s\n", mprov, mcov);
    cli_recoveries_text(stderr, "", rec, n_rec);
    const uint32_t nu = qeil_runtime_n_units(rt);
    uint8_t map_pf[QEIL_MAX_WUNITS], map_dc[QEIL_MAX_WUNITS];
    qeil_engine_transfers xs;
    qeil_runtime_transfer_stats(rt, &xs);
    const int have_maps = qeil_runtime_placements(rt, map_pf, map_dc, nu) == QEIL_OK;
    if (o.placement && have_maps) {
        char mp_s[1024];
        if (qeil_placement_format(map_pf, map_dc, nu, mp_s, sizeof mp_s) == QEIL_OK)
            fprintf(stderr, "placement: %s (%s)\n", mp_s, o.plan ? plan_src : "--placement");
        cli_transfers_text(stderr, &xs);
    }
    cli_guard_acc guard;
    cli_guard_acc_init(&guard);
    cli_guard_acc_add(&guard, rt, -1);
    cli_guard_text(stderr, &guard);

    if (o.json) {
        cJSON *j = cJSON_CreateObject();
        char seed[32];
        snprintf(seed, sizeof seed, "%llu", (unsigned long long)o.sp.seed);
        cJSON_AddStringToObject(j, "version", qeil_version());
        cJSON_AddStringToObject(j, "seed", seed);
        cJSON_AddStringToObject(j, "model", o.model);
        if (ct != QEIL_CHAT_UNKNOWN) cJSON_AddStringToObject(j, "chat_template", qeil_chat_template_name(ct));
        else cJSON_AddNullToObject(j, "chat_template");
        /* random-weight models emit lone byte tokens: JSON text is Unicode */
        char *clean = cli_utf8_clean(ss.text.p ? ss.text.p : "", ss.text.n);
        cJSON_AddStringToObject(j, "text", clean ? clean : "");
        free(clean);
        cJSON_AddNumberToObject(j, "prompt_tokens", (double)n_prompt);
        cJSON *toks = cJSON_AddArrayToObject(j, "tokens");
        cJSON *lpf = cJSON_AddArrayToObject(j, "logprobs");
        cJSON *lpr = cJSON_AddArrayToObject(j, "logprobs_raw");
        for (size_t k = 0; k < n_gen; k++) {
            cJSON_AddItemToArray(toks, cJSON_CreateNumber(gen[k]));
            cJSON_AddItemToArray(lpf, cJSON_CreateNumber(lps[k].final));
            cJSON_AddItemToArray(lpr, cJSON_CreateNumber(lps[k].raw));
        }
        cJSON_AddStringToObject(j, "stop", stop);
        cJSON *tm = cJSON_AddObjectToObject(j, "timings");
        cJSON_AddNumberToObject(tm, "prefill_s", t_prefill);
        cJSON_AddNumberToObject(tm, "prefill_tok_per_s", pf_tps);
        cJSON_AddNumberToObject(tm, "decode_s", t_dec);
        cJSON_AddNumberToObject(tm, "decode_tokens", n_dec);
        cJSON_AddNumberToObject(tm, "decode_tok_per_s", dc_tps);
        cJSON_AddNumberToObject(tm, "sample_s", t_smp);
        cJSON *me = cJSON_AddObjectToObject(j, "measured");
        cli_meas_json(me, "prefill", g.prefill_meas.valid, g.prefill_meas.energy_J,
                      g.prefill_meas.t_s, n_prompt, mprov, mcov);
        cli_meas_json(me, "decode", g.decode_meas.valid, g.decode_meas.energy_J,
                      g.decode_meas.t_s, n_gen, mprov, mcov);
        cli_recoveries_json(j, rec, n_rec);
        cli_placement_json(j, o.placement, o.plan ? plan_src : NULL, have_maps ? map_pf : NULL,
                           have_maps ? map_dc : NULL, nu);
        cli_transfers_json(j, &xs);
        cJSON *pa = cJSON_AddObjectToObject(j, "params");
        cJSON_AddNumberToObject(pa, "n_predict", o.n_predict);
        cJSON_AddNumberToObject(pa, "n_ctx", n_ctx);
        cJSON_AddNumberToObject(pa, "threads", o.threads);
        cJSON_AddNumberToObject(pa, "temp", f2d(o.sp.temp));
        cJSON_AddNumberToObject(pa, "top_k", o.sp.top_k);
        cJSON_AddNumberToObject(pa, "top_p", f2d(o.sp.top_p));
        cJSON_AddNumberToObject(pa, "min_p", f2d(o.sp.min_p));
        cJSON_AddNumberToObject(pa, "repeat_penalty", f2d(o.sp.repeat_penalty));
        cJSON_AddNumberToObject(pa, "repeat_last_n", o.sp.repeat_last_n);
        cJSON_AddBoolToObject(pa, "bos", !o.no_bos);
        cli_guard_json(j, &guard);
        if (cli_json_print(j) != 0) fputs("qeil: out of memory printing JSON\n", stderr);
        cJSON_Delete(j);
    }
    cli_guard_acc_free(&guard);
    rc = CLI_OK;

out:
    qeil_free(ctx, ss.text.p);
    qeil_free(ctx, ids);
    qeil_free(ctx, gen);
    qeil_free(ctx, lps);
    qeil_runtime_free(rt);
    qeil_ctx_free(ctx);
    return rc;
}
