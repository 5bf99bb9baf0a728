/* cmd_perplexity.c — `qeil perplexity`: WikiText-style perplexity of a model
 * on a text file, scored as llama.cpp's perplexity tool does: the text is cut
 * into non-overlapping windows of CTX tokens and only the second half of
 * each window is scored, so every scored token sees at least CTX/2 tokens of
 * context. Exact definition: docs/cli-engine.md. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "qeil/engine.h"

#define CMD "perplexity"
#define MAX_TEXT_B (256u << 20) /* WikiText-103's test split is 1.3 MB */
#define MAX_CTX (1u << 20)
#define MIN_CTX 4 /* CTX/2 context tokens and at least one scored token */
/* Bytes of logits held at once (rows × n_vocab × 4): bounds memory for
 * 150k-token vocabularies. */
#define LOGITS_BUDGET_B (256u << 20)

static void usage(FILE *f)
{
    fprintf(f,
            "usage: qeil perplexity -m FILE -f TEXT_FILE [options]\n\n"
            "Perplexity of a GGUF model on a text file (WikiText style, as llama.cpp):\n"
            "the tokenized text is cut into non-overlapping windows of CTX tokens, each\n"
            "evaluated from an empty cache; in every window the tokens at positions\n"
            "CTX/2+1 .. CTX-1 are scored, so each sees at least CTX/2 tokens of context.\n"
            "When the model adds BOS, each window's first token is replaced by BOS.\n"
            "Running perplexity per window goes to stderr; the result to stdout.\n\n"
            "options:\n"
            "  -m, --model FILE     GGUF model\n"
            "  -f, --file FILE      UTF-8 text (at most %u MiB)\n"
            "  -c, --ctx-size N     window length in tokens (default 512; %u..%u)\n"
            "  -t, --threads N      worker threads (default 0 = all online CPUs)\n"
            "  --output FMT         table|json (default table)\n"
            "  -h, --help           this help\n\n"
            "example:\n"
            "  qeil perplexity -m model.gguf -f wiki.test.raw -c 512\n",
            MAX_TEXT_B >> 20, MIN_CTX, MAX_CTX);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Whole file as a NUL-terminated string; NULL with *why set on failure. */
static char *read_text(const char *path, size_t *len, const char **why)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        *why = "cannot open";
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *s = malloc(cap);
    while (s) {
        if (n + 1 >= cap) {
            if (cap > MAX_TEXT_B) {
                *why = "larger than the limit";
                free(s);
                s = NULL;
                break;
            }
            char *t = realloc(s, cap * 2);
            if (!t) {
                free(s);
                s = NULL;
                *why = "out of memory";
                break;
            }
            s = t;
            cap *= 2;
        }
        size_t got = fread(s + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                *why = "read error";
                free(s);
                s = NULL;
            }
            break;
        }
    }
    if (!s && !*why) *why = "out of memory";
    fclose(f);
    if (!s) return NULL;
    if (n > MAX_TEXT_B) {
        *why = "larger than the limit";
        free(s);
        return NULL;
    }
    if (memchr(s, '\0', n)) {
        *why = "contains a NUL byte (not text)";
        free(s);
        return NULL;
    }
    s[n] = '\0';
    *len = n;
    return s;
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
    const char *model = NULL, *file = NULL;
    uint64_t ctx_len = 512, threads = 0;
    cli_output out_fmt = CLI_OUT_TABLE;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int m;
        if (cli_flag(argv, i, "--help", "-h")) {
            usage(stdout);
            return CLI_OK;
        }
#define OPT(name, alias) ((m = cli_opt(CMD, argc, argv, &i, name, alias, &v)) != 0)
        if (OPT("--model", "-m")) {
            if (m < 0) return CLI_USAGE;
            model = v;
        } else if (OPT("--file", "-f")) {
            if (m < 0) return CLI_USAGE;
            file = v;
        } else if (OPT("--ctx-size", "-c")) {
            if (m < 0 || cli_u64(CMD, "-c", v, MIN_CTX, MAX_CTX, &ctx_len)) return CLI_USAGE;
        } else if (OPT("--threads", "-t")) {
            if (m < 0 || cli_u64(CMD, "-t", v, 0, QEIL_ENGINE_MAX_THREADS, &threads))
                return CLI_USAGE;
        } else if (OPT("--output", NULL)) {
            if (m < 0 || cli_parse_output(CMD, v, "table|json", &out_fmt)) return CLI_USAGE;
        } else {
#undef OPT
            return cli_usage_error(CMD, "unknown option '%s'", argv[i]);
        }
    }
    if (!model) return cli_usage_error(CMD, "-m FILE is required");
    if (!file) return cli_usage_error(CMD, "-f TEXT_FILE is required");

    int rc = CLI_FAIL;
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    if (!ctx) return cli_fail(CMD, "out of memory");
    qeil_engine *e = NULL;
    char *text = NULL;
    int32_t *tokens = NULL;
    float *logits = NULL;
    double *win_ppl = NULL;
    size_t text_len = 0;
    const char *why = NULL;

    text = read_text(file, &text_len, &why);
    if (!text) {
        cli_fail(CMD, "%s: %s", file, why);
        goto out;
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
    const qeil_tokenizer *tk = qeil_engine_tokenizer(e);
    uint32_t n_vocab = qeil_engine_n_vocab(e);
    if (qeil_engine_n_ctx(e) < C) {
        cli_fail(CMD, "-c %u: the engine's context holds only %u tokens", C, qeil_engine_n_ctx(e));
        goto out;
    }

    /* Does the model add BOS by default? (encode "" with its default) */
    int32_t probe[4];
    size_t n_probe = 0;
    int32_t bos = qeil_tokenizer_bos(tk);
    int add_bos = bos >= 0 &&
                  qeil_tokenizer_encode(ctx, tk, "", -1, 0, probe, 4, &n_probe) == QEIL_OK &&
                  n_probe == 1 && probe[0] == bos;

    /* One token per byte at most (byte fallback / byte-level BPE). */
    size_t n_tok = 0;
    tokens = malloc(sizeof *tokens * (text_len + 8));
    if (!tokens) {
        cli_fail(CMD, "out of memory for %zu tokens", text_len + 8);
        goto out;
    }
    fprintf(stderr, "qeil perplexity: tokenizing %zu bytes ...\n", text_len);
    if (qeil_tokenizer_encode(ctx, tk, text, 0, 0, tokens, text_len + 8, &n_tok) != QEIL_OK) {
        cli_fail(CMD, "%s: %s", file, qeil_ctx_errmsg(ctx));
        goto out;
    }
    size_t n_win = n_tok / C;
    if (n_win == 0) {
        cli_fail(CMD, "%s: %zu tokens, fewer than one window of the context -c %u", file, n_tok,
                 C);
        goto out;
    }

    /* Logit rows held at once: the scored half is evaluated in chunks of
     * `rows` tokens so rows × n_vocab floats stay within the budget. */
    uint32_t n_batch = ep.n_batch ? ep.n_batch : C;
    uint64_t rows = LOGITS_BUDGET_B / (4ull * n_vocab);
    if (rows < 1) rows = 1;
    if (rows > n_batch) rows = n_batch;
    logits = malloc(sizeof *logits * (size_t)rows * n_vocab);
    win_ppl = malloc(sizeof *win_ppl * n_win);
    if (!logits || !win_ppl) {
        cli_fail(CMD, "out of memory for logits");
        goto out;
    }

    const uint32_t first = C / 2; /* positions first..C-2 predict tokens first+1..C-1 */
    double sum = 0, sum2 = 0, t0 = now_s();
    size_t n_scored = 0;
    for (size_t w = 0; w < n_win; w++) {
        int32_t *win = tokens + w * C;
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
                win[0] = saved;
                cli_fail(CMD, "window %zu: %s", w + 1, qeil_ctx_errmsg(ctx));
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
        win_ppl[w] = exp(wsum / (double)wn);
        fprintf(stderr, "[%zu/%zu] window ppl %.4f, running ppl %.4f\n", w + 1, n_win, win_ppl[w],
                exp(sum / (double)n_scored));
    }
    double t_total = now_s() - t0;

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
        printf("perplexity   %.4f +/- %.4f\n", ppl, ppl_se);
    }
    rc = CLI_OK;

out:
    free(text);
    free(tokens);
    free(logits);
    free(win_ppl);
    qeil_engine_free(e);
    qeil_ctx_free(ctx);
    return rc;
}
