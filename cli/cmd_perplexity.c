/* cmd_perplexity.c — `qeil perplexity`: WikiText-style perplexity of a model
 * on a text file, scored as llama.cpp's perplexity tool does: the text is cut
 * into non-overlapping windows of CTX tokens and only the second half of
 * each window is scored, so every scored token sees at least CTX/2 tokens of
 * context. Exact definition: docs/cli.md, "qeil perplexity". */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "opt.h"
#include "qeil/engine.h"

#define CMD "perplexity"
#define MAX_TEXT_B (256u << 20) /* WikiText-103's test split is 1.3 MB */
#define MAX_CTX (1u << 20)
#define MIN_CTX 4 /* CTX/2 context tokens and at least one scored token */
/* Bytes of logits held at once (rows × n_vocab × 4): bounds memory for
 * 150k-token vocabularies. */
#define LOGITS_BUDGET_B (256u << 20)

typedef struct {
    const char *model, *file, *placement, *plan, *platform;
    uint64_t ctx_len, threads;
    cli_output out_fmt;
} ppl_opts;

#define T ppl_opts
static const cli_optdef ppl_table[] = {
    {CLI_STR("--model", "-m", "FILE", "GGUF model", T, model)},
    {CLI_STR("--file", "-f", "FILE", "UTF-8 text (at most 256 MiB)", T, file)},
    {CLI_U64("--ctx-size", "-c", "N", "window length in tokens (default 512; 4..1048576)", T,
             ctx_len, MIN_CTX, MAX_CTX)},
    {CLI_U64("--threads", "-t", "N", "worker threads (default 0 = all online CPUs)", T, threads,
             0, QEIL_ENGINE_MAX_THREADS)},
    {CLI_STR("--placement", NULL, "SPEC",
             "where the work units run, e.g. all:vk0 or\n"
             "emb..b7:cpu,b8..head:vk0 or prefill=SPEC;decode=SPEC\n"
             "(default all:cpu; qeil devices)",
             T, placement)},
    {CLI_STR("--plan", NULL, "FILE|auto",
             "run a plan's maps (docs/cli.md \"Running a plan\"); not\n"
             "with --placement",
             T, plan)},
    {CLI_STR("--platform", NULL, "FILE",
             "the profile --plan FILE|auto runs on (`qeil probe -o`)", T, platform)},
    {CLI_OUTPUT("table|json (default table)", T, out_fmt, "table|json")},
};
#undef T

static const cli_command ppl_cmd = {
    CMD,
    "usage: qeil perplexity -m FILE -f TEXT_FILE [options]\n\n"
    "Perplexity of a GGUF model on a text file (WikiText style, as llama.cpp):\n"
    "the tokenized text is cut into non-overlapping windows of CTX tokens, each\n"
    "evaluated from an empty cache; in every window the tokens at positions\n"
    "CTX/2+1 .. CTX-1 are scored, so each sees at least CTX/2 tokens of context.\n"
    "The text is tokenized with BOS in front when the model adds BOS, and then\n"
    "each window's first token is replaced by BOS; at least 2 windows needed.\n"
    "Running perplexity per window goes to stderr; the result to stdout.\n",
    ppl_table,
    CLI_NOPTS(ppl_table),
    "example:\n"
    "  qeil perplexity -m model.gguf -f wiki.test.raw -c 512\n",
    NULL,
};

/* ------------------------------------------------------------------------ */
/* The text, read and tokenized in pieces                                    */
/* ------------------------------------------------------------------------ */

/* Bytes read at a time. The text is tokenized a piece at a time (cut where
 * qeil_tokenizer_cut allows, so the tokens are those of the whole text) and
 * only the tokens of the next windows are kept: memory does not grow with
 * the file. */
#define READ_B ((size_t)1 << 18)

typedef struct {
    qeil_ctx *ctx;
    const qeil_tokenizer *tk;
    const char *path;
    FILE *f;
    int add_bos, started, eof;
    char *buf; /* text read but not yet tokenized: buf[0 .. len) */
    size_t len, cap;
    uint64_t bytes;    /* read so far */
    int32_t *tok;      /* tokens not yet evaluated: tok[0 .. n) */
    size_t n, tok_cap;
    uint64_t n_total;  /* tokens produced so far, BOS included */
    double tok_s;      /* seconds spent reading and tokenizing */
} text_stream;

static int grow(qeil_ctx *ctx, void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 1024;
    while (c < need) c *= 2;
    void *q = qeil_realloc(ctx, *p, c * elem);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

/* Open path, refusing a regular file over the limit before reading it. */
static int stream_open(text_stream *ts, const char *path)
{
    ts->path = path;
    ts->f = fopen(path, "rb");
    if (!ts->f) return cli_fail(CMD, "%s: cannot open", path);
    struct stat st;
    if (fstat(fileno(ts->f), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > (off_t)MAX_TEXT_B)
        return cli_fail(CMD, "%s: %lld bytes, more than the limit of %u bytes (%u MiB)", path,
                        (long long)st.st_size, MAX_TEXT_B, MAX_TEXT_B >> 20);
    return 0;
}

/* Tokenize until ts->n >= want or the text is used up. */
static int read_and_encode(text_stream *ts, size_t want)
{
    while (ts->n < want && !(ts->eof && ts->len == 0 && ts->started)) {
        if (!ts->eof) {
            if (grow(ts->ctx, (void **)&ts->buf, &ts->cap, ts->len + READ_B, 1))
                return cli_fail(CMD, "out of memory for %zu bytes of text", ts->len + READ_B);
            size_t got = fread(ts->buf + ts->len, 1, READ_B, ts->f);
            if (got < READ_B) {
                if (ferror(ts->f)) return cli_fail(CMD, "%s: read error", ts->path);
                ts->eof = 1;
            }
            ts->bytes += got;
            if (ts->bytes > MAX_TEXT_B) /* not a regular file, or it grew */
                return cli_fail(CMD, "%s: more than the limit of %u bytes (%u MiB)", ts->path,
                                MAX_TEXT_B, MAX_TEXT_B >> 20);
            if (memchr(ts->buf + ts->len, '\0', got))
                return cli_fail(CMD, "%s: contains a NUL byte (not text)", ts->path);
            ts->len += got;
        }
        size_t piece = ts->eof ? ts->len : qeil_tokenizer_cut(ts->tk, ts->buf, ts->len);
        if (piece == 0 && !ts->eof) continue; /* no cut yet: read more */
        /* at most one token per byte, plus BOS and SPM's prefix space */
        if (grow(ts->ctx, (void **)&ts->tok, &ts->tok_cap, ts->n + piece + 8, sizeof *ts->tok))
            return cli_fail(CMD, "out of memory for %zu tokens", ts->n + piece + 8);
        size_t got = 0, room = ts->tok_cap - ts->n;
        qeil_status st =
            ts->started ? qeil_tokenizer_encode_more(ts->ctx, ts->tk, ts->buf, piece, 0,
                                                     ts->tok + ts->n, room, &got)
                        : qeil_tokenizer_encode_bytes(ts->ctx, ts->tk, ts->buf, piece, ts->add_bos,
                                                      0, ts->tok + ts->n, room, &got);
        if (st != QEIL_OK) return cli_fail(CMD, "%s: %s", ts->path, qeil_ctx_errmsg(ts->ctx));
        ts->started = 1;
        ts->n += got;
        ts->n_total += got;
        memmove(ts->buf, ts->buf + piece, ts->len - piece);
        ts->len -= piece;
    }
    return 0;
}

static int stream_fill(text_stream *ts, size_t want)
{
    double t0 = cli_now_s();
    int rc = read_and_encode(ts, want);
    ts->tok_s += cli_now_s() - t0;
    return rc;
}

/* Drop the first k tokens (an evaluated window). */
static void stream_consume(text_stream *ts, size_t k)
{
    memmove(ts->tok, ts->tok + k, (ts->n - k) * sizeof *ts->tok);
    ts->n -= k;
}

/* -log softmax(row)[target], in double, max-shifted. expf suffices: every
 * term is in (0, 1] with ~1e-7 relative error, summed in double. */
static double nll_of(const float *row, uint32_t n_vocab, int32_t target)
{
    float m = row[0];
    for (uint32_t i = 1; i < n_vocab; i++)
        if (row[i] > m) m = row[i];
    double z = 0;
    for (uint32_t i = 0; i < n_vocab; i++) z += (double)expf(row[i] - m);
    return log(z) + (double)m - (double)row[target];
}

int cmd_perplexity(int argc, char **argv)
{
    ppl_opts o = {.ctx_len = 512, .out_fmt = CLI_OUT_TABLE};
    int prc = cli_opt_parse(&ppl_cmd, argc, argv, &o);
    if (prc != CLI_OK) return prc == CLI_OPT_HELP ? CLI_OK : prc;
    const char *model = o.model, *file = o.file, *placement = o.placement, *plan = o.plan;
    const char *platform = o.platform;
    const uint64_t ctx_len = o.ctx_len, threads = o.threads;
    const cli_output out_fmt = o.out_fmt;
    if (!model) return cli_usage_error(CMD, "-m FILE is required");
    if (!file) return cli_usage_error(CMD, "-f TEXT_FILE is required");
    if (plan && placement) return cli_usage_error(CMD, "--plan and --placement exclude each other");
    if (platform && !plan) return cli_usage_error(CMD, "--platform is for --plan FILE|auto");

    int rc = CLI_FAIL;
    qeil_ctx *ctx = cli_ctx_create();
    if (!ctx) return cli_fail(CMD, "out of memory");
    qeil_engine *e = NULL;
    float *logits = NULL;
    double *win_ppl = NULL;
    size_t win_cap = 0;
    text_stream ts;
    memset(&ts, 0, sizeof ts);
    ts.ctx = ctx;

    /* the size check comes before the model is loaded or anything read */
    if (stream_open(&ts, file)) goto out;
    static char plan_spec[2048], plan_src[512];
    if (plan) {
        if ((rc = cli_plan_spec(CMD, ctx, plan, platform, model, plan_spec, sizeof plan_spec,
                                plan_src, sizeof plan_src)) != CLI_OK)
            goto out;
        placement = plan_spec;
        rc = CLI_FAIL;
    }

    const uint32_t C = (uint32_t)ctx_len;
    qeil_engine_params ep = qeil_engine_default_params();
    ep.n_threads = (int)threads;
    ep.n_ctx = C;
    ep.n_seq = 1;
    if (ep.n_batch == 0 || ep.n_batch > C) ep.n_batch = C;
    if (qeil_engine_open(ctx, model, &ep, &e) != QEIL_OK) {
        cli_fail(CMD, "%s", qeil_ctx_errmsg(ctx));
        goto out;
    }
    if ((rc = cli_placement(CMD, ctx, e, placement)) != CLI_OK) goto out;
    rc = CLI_FAIL;
    const qeil_tokenizer *tk = qeil_engine_tokenizer(e);
    uint32_t n_vocab = qeil_engine_n_vocab(e);
    if (qeil_engine_n_ctx(e) < C) {
        cli_fail(CMD, "-c %u: the engine's context holds only %u tokens", C, qeil_engine_n_ctx(e));
        goto out;
    }

    /* As llama.cpp: the text is tokenized with the model's default BOS in
     * front (common_tokenize(..., add_special = true)), and each window's
     * first token is replaced by BOS when the model adds BOS. */
    int32_t bos = qeil_tokenizer_bos(tk);
    int add_bos = bos >= 0 && qeil_tokenizer_add_bos(tk);
    ts.tk = tk;
    ts.add_bos = add_bos;

    /* llama.cpp refuses a text of fewer than 2·C tokens */
    fprintf(stderr, "qeil perplexity: tokenizing %s in pieces of %zu bytes ...\n", file, READ_B);
    if (stream_fill(&ts, 2 * (size_t)C)) goto out;
    if (ts.n < 2 * (size_t)C) {
        cli_fail(CMD, "%s: %llu tokens, fewer than the 2 windows of the context -c %u (%u tokens) "
                      "that llama.cpp's perplexity requires",
                 file, (unsigned long long)ts.n_total, C, 2 * C);
        goto out;
    }

    /* Logit rows held at once: the scored half is evaluated in chunks of
     * `rows` tokens so rows × n_vocab floats stay within the budget. */
    uint32_t n_batch = ep.n_batch ? ep.n_batch : C;
    uint64_t rows = LOGITS_BUDGET_B / (4ull * n_vocab);
    if (rows < 1) rows = 1;
    if (rows > n_batch) rows = n_batch;
    logits = qeil_malloc(ctx, sizeof *logits * (size_t)rows * n_vocab);
    if (!logits) {
        cli_fail(CMD, "out of memory for logits");
        goto out;
    }

    const uint32_t first = C / 2; /* positions first..C-2 predict tokens first+1..C-1 */
    double sum = 0, sum2 = 0, t0 = cli_now_s(), tok_s0 = ts.tok_s;
    size_t n_scored = 0, n_win = 0;
    for (;;) {
        if (stream_fill(&ts, C)) goto out;
        if (ts.n < C) break;
        if (grow(ctx, (void **)&win_ppl, &win_cap, n_win + 1, sizeof *win_ppl)) {
            cli_fail(CMD, "out of memory after %zu windows", n_win);
            goto out;
        }
        int32_t *win = ts.tok;
        int32_t saved = win[0];
        if (add_bos) win[0] = bos;
        qeil_engine_seq_reset(e, 0);
        double wsum = 0;
        size_t wn = 0;
        for (uint32_t at = 0; at < C;) {
            /* unscored prefix in full batches without logits; the scored
             * part in chunks of `rows` with all logits */
            uint32_t n;
            float *lg = NULL;
            if (at < first) {
                n = first - at < n_batch ? first - at : n_batch;
            } else {
                n = C - at < rows ? C - at : (uint32_t)rows;
                lg = logits;
            }
            if (qeil_engine_eval(e, 0, win + at, n, lg, lg != NULL) != QEIL_OK) {
                cli_fail(CMD, "window %zu: %s", n_win + 1, qeil_ctx_errmsg(ctx));
                goto out;
            }
            for (uint32_t k = 0; lg && k < n; k++) {
                uint32_t pos = at + k;
                if (pos + 1 >= C) break; /* the last position predicts past the window */
                double nll = nll_of(lg + (size_t)k * n_vocab, n_vocab, win[pos + 1]);
                wsum += nll;
                sum += nll;
                sum2 += nll * nll;
                wn++;
            }
            at += n;
        }
        win[0] = saved;
        n_scored += wn;
        win_ppl[n_win++] = exp(wsum / (double)wn);
        fprintf(stderr, "[%zu] window ppl %.6g, running ppl %.6g\n", n_win, win_ppl[n_win - 1],
                exp(sum / (double)n_scored));
        stream_consume(&ts, C);
    }
    size_t n_tok = (size_t)ts.n_total;
    double t_total = cli_now_s() - t0 - (ts.tok_s - tok_s0); /* evaluation only */

    /* Mean NLL μ over the N scored tokens; standard error of μ from the
     * sample variance, carried to PPL = exp(μ) by the delta method:
     * se(PPL) ≈ PPL · se(μ) (as llama.cpp reports it). */
    double N = (double)n_scored, mu = sum / N;
    double var = N > 1 ? (sum2 / N - mu * mu) * N / (N - 1) : 0;
    if (var < 0) var = 0;
    double se_mu = sqrt(var / N), ppl = exp(mu), ppl_se = ppl * se_mu;

    if (out_fmt == CLI_OUT_JSON) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "version", qeil_version());
        cJSON_AddStringToObject(j, "model", model);
        cJSON_AddStringToObject(j, "file", file);
        cJSON_AddNumberToObject(j, "ctx", C);
        cJSON_AddNumberToObject(j, "tokens", (double)n_tok);
        cJSON_AddNumberToObject(j, "windows", (double)n_win);
        cJSON_AddNumberToObject(j, "tokens_scored", N);
        cJSON_AddBoolToObject(j, "bos", add_bos);
        cJSON_AddNumberToObject(j, "nll_mean", mu);
        cJSON_AddNumberToObject(j, "nll_se", se_mu);
        cJSON_AddNumberToObject(j, "ppl", ppl);
        cJSON_AddNumberToObject(j, "ppl_se", ppl_se);
        cJSON_AddNumberToObject(j, "time_s", t_total);
        cJSON_AddNumberToObject(j, "tok_per_s", t_total > 0 ? (double)(n_win * C) / t_total : 0);
        {
            const uint32_t nu = qeil_model_n_units(qeil_engine_desc(e));
            uint8_t mp[QEIL_MAX_WUNITS], md[QEIL_MAX_WUNITS];
            const int ok = qeil_engine_get_placements(e, mp, md, nu) == QEIL_OK;
            cli_placement_json(j, placement, plan ? plan_src : NULL, ok ? mp : NULL, ok ? md : NULL, nu);
        }
        cJSON *a = cJSON_AddArrayToObject(j, "window_ppl");
        for (size_t w = 0; w < n_win; w++) cJSON_AddItemToArray(a, cJSON_CreateNumber(win_ppl[w]));
        if (cli_json_print(j) != 0) fputs("qeil: out of memory printing JSON\n", stderr);
        cJSON_Delete(j);
    } else {
        printf("model        %s\n", cli_term(model));
        printf("text         %s: %zu tokens, %zu windows of %u (%zu tokens unused at the end)\n",
               file, n_tok, n_win, C, n_tok - n_win * C);
        printf("scored       %.0f tokens (positions %u..%u of each window)%s\n", N, first + 1,
               C - 1, add_bos ? ", BOS first" : "");
        printf("time         %.2f s (%.1f tok/s evaluated)\n", t_total,
               t_total > 0 ? (double)(n_win * C) / t_total : 0);
        printf("perplexity   %.6g +/- %.3g\n", ppl, ppl_se);
    }
    rc = CLI_OK;

out:
    if (ts.f) fclose(ts.f);
    qeil_free(ctx, ts.buf);
    qeil_free(ctx, ts.tok);
    qeil_free(ctx, logits);
    qeil_free(ctx, win_ppl);
    qeil_engine_free(e);
    qeil_ctx_free(ctx);
    return rc;
}
