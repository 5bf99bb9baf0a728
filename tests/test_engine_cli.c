/* test_engine_cli.c — the engine's commands end to end (generate,
 * perplexity, bench, mkmodel): help and usage errors, a tiny random-weight
 * model made with `qeil mkmodel`, determinism of generation (greedy, seeded,
 * across thread counts), perplexity, the bench JSON contract, and clean
 * failures on a prompt longer than the context and on corrupt models. Runs
 * the qeil binary of the same build directory (argv[0]/../qeil), capturing
 * stdout and stderr in a temp directory. */
#include <cjson/cJSON.h>
#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qeil/qeil.h"
#include "qeil/device.h"
#include "qeil/engine.h"
#include "test.h"

#define CLI_HARNESS_TMPDIR "/tmp/qeil-ecli-XXXXXX"
#include "cli_harness.h"

static char model_llama[4200], model_gpt2[4200];
static char wiki_raw[4200]; /* tests/data/wikitext/wiki.test.raw */

TEST(help_for_each_command)
{
    static const char *cmds[] = {"generate", "perplexity", "bench", "mkmodel"};
    for (size_t i = 0; i < 4; i++) {
        char a[64], u[64];
        snprintf(a, sizeof a, "%s --help", cmds[i]);
        snprintf(u, sizeof u, "usage: qeil %s", cmds[i]);
        CHECK_EQ_INT(qeil(a), 0);
        CHECK_CONTAINS(out_text, u);
        CHECK_EQ_INT(err_text ? (int)strlen(err_text) : -1, 0);
    }
    CHECK_EQ_INT(qeil("--help"), 0);
    CHECK_CONTAINS(out_text, "generate");
    CHECK_CONTAINS(out_text, "mkmodel");
}

TEST(usage_errors_name_option_and_range)
{
    static const struct {
        const char *args, *say1, *say2;
    } t[] = {
        {"generate -p hi", "-m", "required"},
        {"generate -m x.gguf", "-p", "required"},
        {"generate -m x.gguf -p hi -n 0", "-n", "1..1048576"},
        {"generate -m x.gguf -p hi -n 12x", "-n", "12x"},
        {"generate -m x.gguf -p hi --temp 101", "--temp", "0..100"},
        {"generate -m x.gguf -p hi --temp -1", "--temp", "-1"},
        {"generate -m x.gguf -p hi --top-p 0", "--top-p", "(0, 1]"},
        {"generate -m x.gguf -p hi --top-p 1.01", "--top-p", "1.01"},
        {"generate -m x.gguf -p hi --min-p 1", "--min-p", "[0, 1)"},
        {"generate -m x.gguf -p hi --repeat-penalty 0", "--repeat-penalty", "(0, 10]"},
        {"generate -m x.gguf -p hi --repeat-penalty 11", "--repeat-penalty", "11"},
        {"generate -m x.gguf -p hi --top-k -3", "--top-k", "-3"},
        {"generate -m x.gguf -p hi --seed 1.5", "--seed", "1.5"},
        {"generate -m x.gguf -p hi -t 9999", "-t", "0..256"},
        {"generate -m x.gguf -p hi --output xml", "--output", "text|json"},
        {"generate -m x.gguf -p hi --frobnicate", "unknown option", "--frobnicate"},
        {"generate -m x.gguf -p", "-p", "needs a value"},
        {"perplexity -m x.gguf", "-f", "required"},
        {"perplexity -m x.gguf -f t.txt -c 2", "-c", "4..1048576"},
        {"perplexity -m x.gguf -f t.txt --output csv", "--output", "table|json"},
        {"bench", "-m", "required"},
        {"bench -m x.gguf -r 0", "-r", "1..1000"},
        {"bench -m x.gguf -p 0", "-p", "1..65536"},
        {"bench -m x.gguf --bw 0", "--bw", "0.001"},
        {"bench -m x.gguf --output csv", "--output", "table|json"},
        {"mkmodel --arch llama --type f32", "-o", "required"},
        {"mkmodel --arch llama -o m.gguf", "--type", "required"},
        {"mkmodel --arch mamba --type f32 -o m.gguf", "--arch", "mamba"},
        {"mkmodel --arch llama --type q9 -o m.gguf", "--type", "q9"},
        {"mkmodel --arch llama --layers 1 --dim 96 --heads 5 --ff 128 --vocab 64 --ctx 64 "
         "--type f32 -o m.gguf",
         "--dim", "divisible by --heads 5"},
        {"mkmodel --arch llama --layers 1 --dim 96 --heads 6 --kv-heads 4 --ff 128 --vocab 64 "
         "--ctx 64 --type f32 -o m.gguf",
         "--heads", "divisible by --kv-heads 4"},
        {"mkmodel --arch llama --layers 1 --dim 128 --heads 2 --ff 256 --vocab 64 --ctx 64 "
         "--type q4_k -o m.gguf",
         "--dim", "multiple of 256"},
        {"mkmodel --arch qwen2 --layers 1 --dim 256 --heads 2 --ff 320 --vocab 64 --ctx 64 "
         "--type q6_k -o m.gguf",
         "--ff", "multiple of 256"},
        {"mkmodel --arch llama --layers 1 --dim 48 --heads 2 --ff 64 --vocab 64 --ctx 64 "
         "--type q8_0 -o m.gguf",
         "--dim", "multiple of 32"},
        {"mkmodel --arch llama --layers 1 --dim 36 --heads 4 --ff 64 --vocab 64 --ctx 64 "
         "--type f32 -o m.gguf",
         "head size 9", "even"},
        {"mkmodel --arch llama --layers 0 --type f32 -o m.gguf", "--layers", "1..256"},
    };
    for (size_t k = 0; k < sizeof t / sizeof *t; k++) {
        int rc = qeil(t[k].args);
        if (rc != 2) TEST_FAIL_("'%s': exit %d, want 2 (stderr: %s)", t[k].args, rc, err_text);
        CHECK_CONTAINS(err_text, t[k].say1);
        CHECK_CONTAINS(err_text, t[k].say2);
    }
}

/* The tiny models every later test uses: a GQA llama (SentencePiece-style
 * vocabulary) and a gpt2 (byte-level BPE), random weights. */
TEST(mkmodel_writes_tiny_models)
{
    snprintf(model_llama, sizeof model_llama, "%s/tiny-llama.gguf", tmpdir);
    snprintf(model_gpt2, sizeof model_gpt2, "%s/tiny-gpt2.gguf", tmpdir);
    CHECK_RUN(qeilf("mkmodel --arch llama --layers 2 --dim 64 --heads 4 --kv-heads 2 --ff 128 "
                    "--vocab 320 --ctx 256 --type q8_0 --seed 3 -o %s",
                    model_llama),
              0);
    CHECK_CONTAINS(out_text, model_llama);
    CHECK(access(model_llama, R_OK) == 0);
    CHECK_RUN(qeilf("mkmodel --arch gpt2 --layers 2 --dim 64 --heads 4 --ff 256 --vocab 400 "
                    "--ctx 256 --type f16 --tied -o %s",
                    model_gpt2),
              0);
    CHECK(access(model_gpt2, R_OK) == 0);
    /* --fallback: rows of 96 do not fit q4_k's 256-blocks, 96 = 3 x 32 so
     * q5_0 (llama.cpp's rule); d_ff 256 stays q4_k; the model runs */
    char fb[4300];
    snprintf(fb, sizeof fb, "%s/fallback.gguf", tmpdir);
    CHECK_RUN(qeilf("mkmodel --arch qwen2 --layers 1 --dim 96 --heads 2 --ff 256 --vocab 320 "
                    "--ctx 64 --type q4_k --fallback -o %s",
                    fb),
              0);
    CHECK_CONTAINS(err_text, "d_model = 96");
    CHECK_CONTAINS(err_text, "stored as q5_0");
    CHECK_RUN(qeilf("generate -m %s -p hello -n 4 --temp 0", fb), 0);
    /* q5_k: rows of 96 go to q5_1 (llama.cpp's rule), and the model runs */
    CHECK_RUN(qeilf("mkmodel --arch qwen2 --layers 1 --dim 96 --heads 2 --ff 256 --vocab 320 "
                    "--ctx 64 --type q5_k --fallback -o %s",
                    fb),
              0);
    CHECK_CONTAINS(err_text, "stored as q5_1");
    CHECK_RUN(qeilf("generate -m %s -p hello -n 4 --temp 0", fb), 0);
    /* an unknown type names the allowed ones */
    CHECK_RUN(qeilf("mkmodel --preset tiny-gpt2 --type q2_k -o %s", fb), 2);
    CHECK_CONTAINS(err_text, "q4_1|q5_0|q5_1|iq4_nl|iq4_xs|q4_k|q5_k|q6_k");
    /* presets, and an unknown one listing the known */
    CHECK_RUN(qeilf("mkmodel --preset tiny-gpt2 --type q8_0 -o %s", fb), 0);
    CHECK_CONTAINS(out_text, "gpt2");
    /* every arch the help lists is taken by --arch (granite and lfm2 too) */
    static const char *const archs[] = {"granite", "lfm2"};
    for (int k = 0; k < 2; k++) {
        CHECK_RUN(qeilf("mkmodel --arch %s --layers 2 --dim 64 --heads 4 --kv-heads 2 --ff 128 "
                        "--vocab 320 --ctx 64 --type f32 -o %s",
                        archs[k], fb),
                  0);
        CHECK_RUN(qeilf("models %s", fb), 0);
        CHECK_CONTAINS(out_text, archs[k]);
        CHECK_RUN(qeilf("generate -m %s -p hello -n 2 --temp 0", fb), 0);
    }
    CHECK_RUN(qeilf("mkmodel --arch mamba --layers 1 -o %s", fb), 2);
    CHECK_CONTAINS(err_text, "'mamba' is not one of llama|qwen2|gpt2|granite|lfm2");
    CHECK_RUN(qeilf("mkmodel --preset llama-9000 --type q8_0 -o %s", fb), 2);
    CHECK_CONTAINS(err_text, "llama-9000");
    CHECK_CONTAINS(err_text, "qwen2-0.5b");
}

/* -o never turns a FIFO, a device or a symbolic link into a regular file
 * (the writer renames a temp file over the path), and a bad path is
 * refused before any work. A symbolic link to a regular file is followed:
 * the file it points to gets the model, the link stays. */
TEST(mkmodel_output_must_be_a_regular_file)
{
    static const char *SHAPE = "--arch llama --layers 1 --dim 64 --heads 2 --ff 64 --vocab 320 "
                               "--ctx 64 --type q8_0";
    char fifo[4300], target[4300], link_[4300], dangling[4300], fifolink[4300];
    snprintf(fifo, sizeof fifo, "%s/o-fifo", tmpdir);
    snprintf(target, sizeof target, "%s/o-target.gguf", tmpdir);
    snprintf(link_, sizeof link_, "%s/o-link.gguf", tmpdir);
    snprintf(dangling, sizeof dangling, "%s/o-dangling.gguf", tmpdir);
    snprintf(fifolink, sizeof fifolink, "%s/o-fifolink", tmpdir);
    CHECK_EQ_INT(mkfifo(fifo, 0644), 0);
    FILE *f = fopen(target, "wb");
    CHECK(f != NULL);
    if (f) fclose(f);
    CHECK_EQ_INT(symlink(target, link_), 0);
    CHECK_EQ_INT(symlink("o-missing.gguf", dangling), 0);
    CHECK_EQ_INT(symlink(fifo, fifolink), 0);
    struct stat sb;

    CHECK_RUN(qeilf("mkmodel %s -o %s", SHAPE, fifo), 1);
    CHECK_CONTAINS(err_text, "FIFO");
    CHECK_CONTAINS(err_text, "not a regular file");
    CHECK(lstat(fifo, &sb) == 0 && S_ISFIFO(sb.st_mode));
    CHECK_RUN(qeilf("mkmodel %s -o %s", SHAPE, fifolink), 1);
    CHECK_CONTAINS(err_text, "FIFO");
    CHECK(lstat(fifolink, &sb) == 0 && S_ISLNK(sb.st_mode));
    CHECK_RUN(qeilf("mkmodel %s -o %s", SHAPE, dangling), 1);
    CHECK_CONTAINS(err_text, "o-dangling.gguf");
    CHECK(lstat(dangling, &sb) == 0 && S_ISLNK(sb.st_mode));
    CHECK_RUN(qeilf("mkmodel %s -o %s", SHAPE, tmpdir), 1);
    CHECK_CONTAINS(err_text, "directory");
    /* refused up front: nothing is written, not even the "writing" line */
    CHECK_RUN(qeilf("mkmodel %s -o %s/no/such/dir/m.gguf", SHAPE, tmpdir), 1);
    CHECK_CONTAINS(err_text, "no/such/dir");
    CHECK(strstr(err_text ? err_text : "", "writing") == NULL);

    /* through the link: the target is the model, the link is still a link */
    CHECK_RUN(qeilf("mkmodel %s -o %s", SHAPE, link_), 0);
    CHECK(lstat(link_, &sb) == 0 && S_ISLNK(sb.st_mode));
    CHECK(stat(target, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 0);
    CHECK_RUN(qeilf("generate -m %s -p hi -n 2 --temp 0", link_), 0);
    unlink(fifo);
    unlink(link_);
    unlink(dangling);
    unlink(fifolink);
    unlink(target);
}

/* A directory the user cannot write in is refused before the work. */
TEST(mkmodel_output_dir_not_writable)
{
    if (geteuid() == 0) SKIP("running as root: every directory is writable");
    char dir[4300];
    snprintf(dir, sizeof dir, "%s/ro", tmpdir);
    CHECK_EQ_INT(mkdir(dir, 0555), 0);
    CHECK_RUN(qeilf("mkmodel --preset tiny-gpt2 --type q8_0 -o %s/m.gguf", dir), 1);
    CHECK_CONTAINS(err_text, "cannot write");
    CHECK(strstr(err_text ? err_text : "", "writing") == NULL);
    rmdir(dir);
}

static const char *PROMPT = "The quick brown fox jumps over the lazy dog";

/* The generated tokens of a JSON run, as a compact string, or NULL. */
static char *gen_tokens(const char *model, const char *extra)
{
    if (qeilf("generate -m %s -p \"%s\" -n 24 --output json %s", model, PROMPT, extra) != 0) {
        printf("  stderr: %s\n", err_text ? err_text : "");
        return NULL;
    }
    cJSON *j = cJSON_Parse(out_text);
    if (!j) return NULL;
    char *s = cJSON_PrintUnformatted(cJSON_GetObjectItem(j, "tokens"));
    cJSON_Delete(j);
    return s;
}

TEST(generate_greedy_is_deterministic)
{
    if (!model_llama[0]) SKIP("no tiny model");
    char a1[6000];
    CHECK_RUN(qeilf("generate -m %s -p \"%s\" -n 24 --temp 0", model_llama, PROMPT), 0);
    snprintf(a1, sizeof a1, "%s", out_text ? out_text : "");
    CHECK_CONTAINS(err_text, "prefill:");
    CHECK_CONTAINS(err_text, "decode:");
    CHECK_CONTAINS(err_text, "tok/s");
    CHECK_CONTAINS(err_text, "seed");
    CHECK_RUN(qeilf("generate -m %s -p \"%s\" -n 24 --temp 0", model_llama, PROMPT), 0);
    CHECK_EQ_STR(out_text, a1);
    /* same tokens whatever the thread count */
    char *t1 = gen_tokens(model_llama, "--temp 0 -t 1");
    char *t2 = gen_tokens(model_llama, "--temp 0 -t 2");
    CHECK(t1 && t2);
    if (t1 && t2) CHECK_EQ_STR(t1, t2);
    free(t1);
    free(t2);
    /* the gpt2 model too */
    t1 = gen_tokens(model_gpt2, "--temp 0");
    t2 = gen_tokens(model_gpt2, "--temp 0");
    CHECK(t1 && t2);
    if (t1 && t2) CHECK_EQ_STR(t1, t2);
    free(t1);
    free(t2);
}

TEST(generate_seeded_is_deterministic)
{
    if (!model_llama[0]) SKIP("no tiny model");
    /* temp 1.5, no top-k: a wide distribution so the seed matters */
    const char *opt = "--temp 1.5 --top-k 0 --min-p 0 --seed 77";
    char *a = gen_tokens(model_llama, opt), *b = gen_tokens(model_llama, opt);
    CHECK(a && b);
    if (a && b) CHECK_EQ_STR(a, b);
    char *c = gen_tokens(model_llama, "--temp 1.5 --top-k 0 --min-p 0 --seed 77 -t 1");
    if (a && c) CHECK_EQ_STR(a, c);
    free(a);
    free(b);
    free(c);
    /* no --seed: one is picked and printed */
    CHECK_RUN(qeilf("generate -m %s -p hello -n 4", model_llama), 0);
    CHECK_CONTAINS(err_text, "from the clock");
}

TEST(generate_json_contract)
{
    if (!model_llama[0]) SKIP("no tiny model");
    CHECK_RUN(qeilf("generate -m %s -p \"%s\" -n 16 --seed 5 --repeat-penalty 1.3 --output json",
                    model_llama, PROMPT),
              0);
    cJSON *j = cJSON_Parse(out_text);
    CHECK(j != NULL);
    if (!j) return;
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "seed")), "5");
    CHECK(cJSON_GetStringValue(cJSON_GetObjectItem(j, "version")) != NULL);
    CHECK(cJSON_IsString(cJSON_GetObjectItem(j, "text")));
    cJSON *toks = cJSON_GetObjectItem(j, "tokens"), *lp = cJSON_GetObjectItem(j, "logprobs"),
          *lr = cJSON_GetObjectItem(j, "logprobs_raw");
    int n = cJSON_GetArraySize(toks);
    const char *stop = cJSON_GetStringValue(cJSON_GetObjectItem(j, "stop"));
    CHECK(stop != NULL);
    /* 16 tokens unless EOS came first */
    if (stop && strcmp(stop, "eos") != 0) CHECK_EQ_INT(n, 16);
    CHECK(n <= 16);
    CHECK_EQ_INT(cJSON_GetArraySize(lp), n);
    CHECK_EQ_INT(cJSON_GetArraySize(lr), n);
    for (int i = 0; i < n; i++) {
        double f = cJSON_GetNumberValue(cJSON_GetArrayItem(lp, i));
        double r = cJSON_GetNumberValue(cJSON_GetArrayItem(lr, i));
        int id = (int)cJSON_GetNumberValue(cJSON_GetArrayItem(toks, i));
        CHECK(f <= 1e-9 && isfinite(f));
        CHECK(r <= 1e-9 && isfinite(r));
        CHECK(id >= 0 && id < 320);
    }
    cJSON *tm = cJSON_GetObjectItem(j, "timings");
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(tm, "prefill_tok_per_s")) > 0);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "prompt_tokens")) >= 1);
    cJSON_Delete(j);
}

/* A model path that is not UTF-8 (0xFE, ESC) goes into every JSON output:
 * the document stays valid UTF-8 (U+FFFD), the ESC escaped by JSON; the
 * table shows the ESC as text. */
TEST(json_outputs_are_utf8_whatever_the_path)
{
    if (!model_llama[0]) SKIP("no tiny model");
    char odd[4300];
    snprintf(odd, sizeof odd, "%s/odd-\xfe\x1b[1m.gguf", tmpdir);
    CHECK_EQ_INT(symlink(model_llama, odd), 0);
    static const char *cmds[] = {"generate -m '%s' -p hi -n 2 --temp 0 --output json",
                                 "bench -m '%s' -p 8 -n 4 -r 1 -t 1 --bw 10 --output json",
                                 "perplexity -m '%s' -f '%s' -c 64 --output json"};
    char txt[4300];
    snprintf(txt, sizeof txt, "%s/utf8-text.txt", tmpdir);
    FILE *f = fopen(txt, "wb");
    CHECK(f != NULL);
    if (!f) return;
    for (int i = 0; i < 40; i++) fputs("the quick brown fox jumps over the lazy dog. ", f);
    fclose(f);
    for (size_t k = 0; k < sizeof cmds / sizeof *cmds; k++) {
        CHECK_RUN(qeilf(cmds[k], odd, txt), 0);
        if (!out_text || !utf8_valid(out_text)) TEST_FAIL_("'%s': JSON is not UTF-8", cmds[k]);
        cJSON *j = cJSON_Parse(out_text ? out_text : "");
        CHECK(j != NULL);
        cJSON_Delete(j);
    }
    CHECK_RUN(qeilf("bench -m '%s' -p 8 -n 4 -r 1 -t 1 --bw 10", odd), 0);
    CHECK(out_text && !strchr(out_text, 0x1b));
    CHECK_CONTAINS(out_text, "\\x1b[1m");
    unlink(odd);
}

TEST(generate_prompt_longer_than_context_fails)
{
    if (!model_llama[0]) SKIP("no tiny model");
    char longp[2048] = "";
    for (int i = 0; i < 40; i++) strcat(longp, "many words here ");
    CHECK_RUN(qeilf("generate -m %s -p \"%s\" -c 16 -n 4", model_llama, longp), 1);
    CHECK_CONTAINS(err_text, "context");
    CHECK_CONTAINS(err_text, "16");
    /* a top-k beyond this model's vocabulary is a usage error naming it */
    CHECK_RUN(qeilf("generate -m %s -p hi --top-k 5000", model_llama), 2);
    CHECK_CONTAINS(err_text, "top_k");
    CHECK_CONTAINS(err_text, "5000");
}

/* English-ish text for perplexity: a few paragraphs repeated. */
static int write_text(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    for (int i = 0; i < 12; i++)
        fprintf(f, "Paragraph %d. The history of the region begins with small farming "
                   "settlements along the river, later joined by traders who built "
                   "roads, markets and a harbour. By the nineteenth century the town "
                   "had grown into a city of %d people.\n\n",
                i, 1000 + 37 * i);
    return fclose(f);
}

/* llama.cpp's perplexity (tools/perplexity/perplexity.cpp), worked out here
 * with the library on a model that adds BOS: the text is tokenized with BOS
 * in front, t_0 = BOS, t_1 .. t_{T-1}; W = floor(T / C) windows of C tokens;
 * window w is t_{wC} .. t_{wC+C-1} with its first token replaced by BOS;
 * the logits at positions C/2 .. C-2 score the tokens at C/2+1 .. C-1. */
static double window_ppl(qeil_engine *e, const int32_t *ids, uint32_t C, int32_t bos, float *lg)
{
    int32_t win[64];
    memcpy(win, ids, C * sizeof *win);
    win[0] = bos;
    qeil_engine_seq_reset(e, 0);
    if (qeil_engine_eval(e, 0, win, C, lg, 1) != QEIL_OK) return -1;
    uint32_t V = qeil_engine_n_vocab(e);
    double sum = 0;
    for (uint32_t j = C / 2; j + 1 < C; j++) {
        const float *row = lg + (size_t)j * V;
        double m = row[0], z = 0;
        for (uint32_t i = 1; i < V; i++) m = row[i] > m ? row[i] : m;
        for (uint32_t i = 0; i < V; i++) z += exp(row[i] - m);
        sum += log(z) + m - row[win[j + 1]];
    }
    return exp(sum / (C - 1 - C / 2));
}

TEST(perplexity_windows_as_llama_cpp)
{
    if (!model_llama[0]) SKIP("no tiny model");
    enum { C = 64 };
    char txt[4300];
    snprintf(txt, sizeof txt, "%s/text.txt", tmpdir);
    CHECK_EQ_INT(write_text(txt), 0);
    char *text = slurp_len(txt, NULL);
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_engine_params ep = qeil_engine_default_params();
    ep.n_threads = 1;
    ep.n_ctx = C;
    ep.n_batch = C;
    qeil_engine *e = NULL;
    CHECK_EQ_INT(qeil_engine_open(ctx, model_llama, &ep, &e), QEIL_OK);
    int32_t *ids = malloc(8192 * sizeof *ids);
    float *lg = malloc((size_t)C * 1024 * sizeof *lg);
    size_t T = 0;
    if (text && e && ids && lg && qeil_engine_n_vocab(e) <= 1024) {
        const qeil_tokenizer *tk = qeil_engine_tokenizer(e);
        int32_t bos = qeil_tokenizer_bos(tk);
        CHECK(bos >= 0 && qeil_tokenizer_add_bos(tk)); /* the case this test is about */
        CHECK_EQ_INT(qeil_tokenizer_encode(ctx, tk, text, 1, 0, ids, 8192, &T), QEIL_OK);
        CHECK_EQ_INT(ids[0], bos);
        size_t W = T / C;
        CHECK(W >= 2);
        CHECK_RUN(qeilf("perplexity -m %s -f %s -c %d -t 1 --output json", model_llama, txt, C), 0);
        cJSON *j = cJSON_Parse(out_text);
        CHECK(j != NULL);
        if (j) {
            CHECK_EQ_INT((long)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "tokens")), (long)T);
            CHECK_EQ_INT((long)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "windows")), (long)W);
            CHECK_EQ_INT((long)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "tokens_scored")),
                         (long)(W * (C - 1 - C / 2)));
            CHECK(cJSON_IsTrue(cJSON_GetObjectItem(j, "bos")));
            cJSON *a = cJSON_GetObjectItem(j, "window_ppl");
            CHECK_EQ_INT(cJSON_GetArraySize(a), (long)W);
            for (int w = 0; w < 2 && w < cJSON_GetArraySize(a); w++) {
                double want = window_ppl(e, ids + (size_t)w * C, C, bos, lg);
                double got = cJSON_GetNumberValue(cJSON_GetArrayItem(a, w));
                if (!(fabs(got - want) <= 1e-4 * want))
                    TEST_FAIL_("window %d: ppl %.6f, llama.cpp's rule gives %.6f", w + 1, got, want);
            }
            cJSON_Delete(j);
        }
        /* fewer than 2 windows: llama.cpp's minimum, named */
        CHECK_RUN(qeilf("perplexity -m %s -f %s -c %zu", model_llama, txt, T / 2 + 1), 1);
        CHECK_CONTAINS(err_text, "fewer than the 2 windows");
    } else {
        CHECK(0);
    }
    free(ids);
    free(lg);
    free(text);
    qeil_engine_free(e);
    qeil_ctx_free(ctx);
}

/* WikiText-103's raw layout (tests/data/wikitext/wiki.test.raw: " = Title = "
 * lines, " @-@ ", " @,@ ", " \n" blank lines; written for the tests), scored
 * by `qeil perplexity -c 16` and by hand here, one token at a time, with
 * llama.cpp's convention (tools/perplexity/perplexity.cpp, perplexity()):
 *
 *   tokens t_0 .. t_{T-1}: the whole file, BOS in front when the model adds
 *     BOS; W = floor(T / 16) windows, the rest unused;
 *   window w = t_{16w} .. t_{16w+15}, its first token replaced by BOS (when
 *     the model adds BOS), evaluated from an empty cache;
 *   first = 16 / 2 = 8: the logits at positions 8 .. 14 score the tokens at
 *     9 .. 15, 16 - 1 - 8 = 7 per window, N = 7 W in all;
 *   PPL = exp(mean nll); se = PPL * sqrt((mean nll^2 - mean^2) / (N - 1)).
 *
 * The CLI evaluates the unscored half in one batch and the scored half with
 * all logits; here every position is a single-token step, another code
 * path, so the agreement is the convention, not a shared loop. On both a
 * model that adds BOS (llama) and one that does not (gpt2). */
static void ppl_by_hand(const char *model, const char *text)
{
    enum { C = 16, FIRST = C / 2 };
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_engine_params ep = qeil_engine_default_params();
    ep.n_threads = 1;
    ep.n_ctx = C;
    qeil_engine *e = NULL;
    CHECK_EQ_INT(qeil_engine_open(ctx, model, &ep, &e), QEIL_OK);
    size_t cap = strlen(text) + 8, T = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    uint32_t V = e ? qeil_engine_n_vocab(e) : 0;
    float *lg = malloc((size_t)(V ? V : 1) * sizeof *lg);
    double *win = malloc(cap / C * sizeof *win + sizeof *win);
    if (!e || !ids || !lg || !win) {
        CHECK(0);
        goto out;
    }
    const qeil_tokenizer *tk = qeil_engine_tokenizer(e);
    int32_t bos = qeil_tokenizer_bos(tk);
    int add_bos = bos >= 0 && qeil_tokenizer_add_bos(tk);
    CHECK_EQ_INT(qeil_tokenizer_encode(ctx, tk, text, add_bos, 0, ids, cap, &T), QEIL_OK);
    size_t W = T / C, N = 0;
    double sum = 0, sum2 = 0;
    for (size_t w = 0; w < W && !test_failed_; w++) {
        qeil_engine_seq_reset(e, 0);
        double ws = 0;
        for (uint32_t j = 0; j + 1 < C; j++) {
            int32_t tok = j == 0 && add_bos ? bos : ids[w * C + j];
            if (qeil_engine_eval(e, 0, &tok, 1, lg, 0) != QEIL_OK) {
                TEST_FAIL_("window %zu position %u: %s", w, j, qeil_ctx_errmsg(ctx));
                break;
            }
            if (j < FIRST) continue;
            double m = lg[0], z = 0;
            for (uint32_t i = 1; i < V; i++) m = lg[i] > m ? lg[i] : m;
            for (uint32_t i = 0; i < V; i++) z += exp(lg[i] - m);
            double nll = log(z) + m - lg[ids[w * C + j + 1]];
            ws += nll;
            sum += nll;
            sum2 += nll * nll;
            N++;
        }
        win[w] = exp(ws / (C - 1 - FIRST));
    }
    CHECK(W >= 2);
    CHECK_EQ_INT((long)N, (long)(W * 7));
    double mu = sum / (double)N, ppl = exp(mu);
    double se = ppl * sqrt((sum2 / (double)N - mu * mu) / (double)(N - 1));
    CHECK_RUN(qeilf("perplexity -m %s -f %s -c %d -t 1 --output json", model, wiki_raw, C), 0);
    cJSON *j = cJSON_Parse(out_text);
    CHECK(j != NULL);
    if (j) {
        CHECK_EQ_INT((long)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "tokens")), (long)T);
        CHECK_EQ_INT((long)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "windows")), (long)W);
        CHECK_EQ_INT((long)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "tokens_scored")), (long)N);
        CHECK_EQ_INT(cJSON_IsTrue(cJSON_GetObjectItem(j, "bos")), add_bos);
        CHECK_NEAR(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "nll_mean")), mu, 1e-5, 0);
        CHECK_NEAR(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "ppl")), ppl, 1e-4, 0);
        CHECK_NEAR(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "ppl_se")), se, 1e-3, 0);
        cJSON *a = cJSON_GetObjectItem(j, "window_ppl");
        CHECK_EQ_INT(cJSON_GetArraySize(a), (long)W);
        for (int w = 0; w < cJSON_GetArraySize(a) && (size_t)w < W; w++) {
            double got = cJSON_GetNumberValue(cJSON_GetArrayItem(a, w));
            if (!(fabs(got - win[w]) <= 1e-4 * win[w]))
                TEST_FAIL_("%s window %d: ppl %.6f, by hand %.6f", model, w + 1, got, win[w]);
            if (test_failed_) break;
        }
        cJSON_Delete(j);
    }
out:
    free(ids);
    free(lg);
    free(win);
    qeil_engine_free(e);
    qeil_ctx_free(ctx);
}

TEST(perplexity_wikitext_sample_by_hand)
{
    if (!model_llama[0] || !model_gpt2[0]) SKIP("no tiny models");
    size_t n = 0;
    char *text = slurp_len(wiki_raw, &n);
    if (!text) SKIP("no tests/data/wikitext/wiki.test.raw");
    CHECK(strstr(text, " = Harrow Bridge = \n") && strstr(text, " @-@ ")); /* the layout */
    ppl_by_hand(model_llama, text);
    ppl_by_hand(model_gpt2, text);
    free(text);
}

/* A text file over the limit is refused from its size, before reading it;
 * the message names the size and the limit. */
TEST(perplexity_refuses_a_text_over_the_limit)
{
    if (!model_llama[0]) SKIP("no tiny model");
    char big[4300];
    snprintf(big, sizeof big, "%s/big.txt", tmpdir);
    FILE *f = fopen(big, "wb");
    CHECK(f != NULL);
    if (!f) return;
    CHECK_EQ_INT(ftruncate(fileno(f), (off_t)(256u << 20) + 1), 0); /* sparse: no disk used */
    fclose(f);
    CHECK_RUN(qeilf("perplexity -m %s -f %s -c 64", model_llama, big), 1);
    CHECK_CONTAINS(err_text, "268435457 bytes");
    CHECK_CONTAINS(err_text, "limit of 268435456 bytes");
    unlink(big);
}

TEST(perplexity_is_finite)
{
    if (!model_llama[0]) SKIP("no tiny model");
    char txt[4300];
    snprintf(txt, sizeof txt, "%s/text.txt", tmpdir);
    CHECK_EQ_INT(write_text(txt), 0);
    CHECK_RUN(qeilf("perplexity -m %s -f %s -c 64 --output json", model_llama, txt), 0);
    cJSON *j = cJSON_Parse(out_text);
    CHECK(j != NULL);
    if (j) {
        double ppl = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "ppl"));
        double se = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "ppl_se"));
        int win = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "windows"));
        int scored = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "tokens_scored"));
        CHECK(isfinite(ppl) && ppl > 1);
        CHECK(isfinite(se) && se >= 0);
        CHECK(win >= 1);
        CHECK_EQ_INT(scored, win * (64 - 1 - 32));
        CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(j, "window_ppl")), win);
        cJSON_Delete(j);
    }
    CHECK_CONTAINS(err_text, "running ppl");
    CHECK_RUN(qeilf("perplexity -m %s -f %s -c 64", model_llama, txt), 0);
    CHECK_CONTAINS(out_text, "perplexity");
    CHECK_CONTAINS(out_text, "+/-");
    /* significant digits, not a fixed 4 decimals: a random model's
     * perplexity of 1e140 once printed as 141 digits */
    const char *pl = out_text ? strstr(out_text, "perplexity   ") : NULL;
    CHECK(pl != NULL);
    if (pl) {
        const char *num = pl + strlen("perplexity   ");
        size_t len = strcspn(num, " ");
        CHECK(len >= 1 && len <= 12);
    }
    /* fewer tokens than one window */
    CHECK_RUN(qeilf("perplexity -m %s -f %s -c 200000", model_llama, txt), 1);
    CHECK_CONTAINS(err_text, "context");
    CHECK_RUN(qeilf("perplexity -m %s -f %s/missing.txt", model_llama, tmpdir), 1);
    CHECK_CONTAINS(err_text, "missing.txt");
}

/* ppl and per-window ppl of `model` on txt (-c 64), or 0 on failure. */
static int ppl_of(const char *model, const char *txt, double *ppl, double *win, int max_win)
{
    if (qeilf("perplexity -m %s -f %s -c 64 --output json", model, txt) != 0) return 0;
    cJSON *j = cJSON_Parse(out_text);
    if (!j) return 0;
    *ppl = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "ppl"));
    cJSON *w = cJSON_GetObjectItem(j, "window_ppl");
    int n = cJSON_GetArraySize(w);
    if (n > max_win) n = max_win;
    for (int i = 0; i < n; i++) win[i] = cJSON_GetNumberValue(cJSON_GetArrayItem(w, i));
    cJSON_Delete(j);
    return n;
}

/* The same random weights (same seed) stored as q5_0 and q5_k score the
 * text like the f32 file: aggregate perplexity within 3 % and the mean
 * over windows of |ln(ppl_q / ppl_f32)| below 0.05. Measured (2 layers,
 * d 256, 31 windows): q5_0 1.4 % / 0.015, q5_k 0.5 % / 0.010 (q4_0 and
 * q4_k: 0.3-1.6 % / 0.04, q8_0 0.04 % / 0.003). The control is the f32
 * file of another seed: 11 % / 0.18, so the window bound does tell
 * unrelated weights apart. */
TEST(perplexity_quantized_near_f32)
{
    char txt[4300], f[4][4300];
    snprintf(txt, sizeof txt, "%s/text_q.txt", tmpdir);
    CHECK_EQ_INT(write_text(txt), 0);
    const char *types[4] = {"f32", "q5_0", "q5_k", "f32"};
    for (int k = 0; k < 4; k++) {
        snprintf(f[k], sizeof f[k], "%s/ppl_%d.gguf", tmpdir, k);
        CHECK_RUN(qeilf("mkmodel --arch llama --layers 2 --dim 256 --heads 4 --kv-heads 2 --ff 512 "
                        "--vocab 320 --ctx 256 --type %s --seed %d -o %s",
                        types[k], k == 3 ? 4 : 3, f[k]),
                  0);
    }
    double p0 = 0, w0[64];
    int n0 = ppl_of(f[0], txt, &p0, w0, 64);
    CHECK(n0 >= 8 && p0 > 1);
    if (n0 < 8) return;
    for (int k = 1; k < 4; k++) {
        double p = 0, w[64];
        int n = ppl_of(f[k], txt, &p, w, 64);
        CHECK_EQ_INT(n, n0);
        if (n != n0) continue;
        double mean = 0;
        for (int i = 0; i < n; i++) mean += fabs(log(w[i] / w0[i])) / n;
        const double rel = fabs(p / p0 - 1);
        printf("  %s%s: ppl %.2f vs f32 %.2f (%.2f %%), mean |ln window ratio| %.4f\n", types[k],
               k == 3 ? " (other seed)" : "", p, p0, 100 * rel, mean);
        if (k < 3) {
            CHECK(rel < 0.03);
            CHECK(mean < 0.05);
        } else {
            CHECK(mean > 0.05); /* the bound separates unrelated weights */
        }
    }
}

TEST(bench_json_has_the_fields)
{
    if (!model_llama[0]) SKIP("no tiny model");
    CHECK_RUN(qeilf("bench -m %s -p 16 -n 8 -r 2 -t 1 --bw 10 --output json", model_llama), 0);
    cJSON *j = cJSON_Parse(out_text);
    CHECK(j != NULL);
    if (!j) return;
    cJSON *pf = cJSON_GetObjectItem(j, "prefill"), *dc = cJSON_GetObjectItem(j, "decode"),
          *bw = cJSON_GetObjectItem(j, "bandwidth"), *mem = cJSON_GetObjectItem(j, "memory");
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(pf, "tok_per_s")) > 0);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(pf, "tok_per_s_sd")) >= 0);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(pf, "flops")) > 0);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(pf, "gflop_per_s")) > 0);
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(pf, "peak_frac"))); /* --bw gives no peak */
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(dc, "tok_per_s")) > 0);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(dc, "bytes_per_token")) > 0);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(dc, "bound_tok_per_s")) > 0);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(dc, "ratio")) > 0);
    /* decode times what generation does: the output layer (its own time
     * per token is not 0) and a greedy pick, reported apart */
    cJSON *ut = cJSON_GetObjectItem(dc, "unit_s_per_token");
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(ut, "head")) > 0);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(ut, "blocks")) > 0);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(dc, "sample_s_per_token")) > 0);
    double frac = cJSON_GetNumberValue(cJSON_GetObjectItem(dc, "sample_frac"));
    CHECK(frac > 0 && frac < 1);
    CHECK_NEAR(cJSON_GetNumberValue(cJSON_GetObjectItem(bw, "bw_Bps")), 10e9, 1e-12, 0);
    CHECK_CONTAINS(cJSON_GetStringValue(cJSON_GetObjectItem(bw, "source")), "--bw");
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(mem, "weights_B")) > 0);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(mem, "kv_B")) > 0);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(mem, "vm_rss_B")) > 0);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(mem, "tokenizer_B")) > 0);
    /* the engine's copies and scratch are anonymous memory: at least the
     * KV cache and scratch it reports */
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(mem, "rss_anon_B")) >=
          cJSON_GetNumberValue(cJSON_GetObjectItem(mem, "kv_B")) +
              cJSON_GetNumberValue(cJSON_GetObjectItem(mem, "scratch_B")));
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(mem, "rss_file_B")) > 0);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "runs"),
                                                        "decode_tok_per_s")),
                 2);
    CHECK(cJSON_GetStringValue(cJSON_GetObjectItem(j, "version")) != NULL);
    cJSON_Delete(j);
    /* --bw-live: per repetition, the streams around the decode and the
     * decode's ratio against them */
    CHECK_RUN(qeilf("bench -m %s -p 8 -n 8 -r 2 -t 1 --bw 10 --bw-live --output json", model_llama), 0);
    j = cJSON_Parse(out_text);
    CHECK(j != NULL);
    if (!j) return;
    dc = cJSON_GetObjectItem(j, "decode");
    cJSON *lv = cJSON_GetObjectItem(dc, "live");
    CHECK(lv != NULL);
    const double rbw = cJSON_GetNumberValue(cJSON_GetObjectItem(lv, "read_bw_Bps"));
    CHECK(rbw > 1e8);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(lv, "triad_bw_Bps")) > 1e8);
    CHECK_EQ_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(lv, "ws_B")), 256 << 20);
    cJSON *rr = cJSON_GetObjectItem(lv, "ratio_read_runs"), *rb = cJSON_GetObjectItem(lv, "read_bw_Bps_runs"),
          *dr = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "runs"), "decode_tok_per_s");
    CHECK_EQ_INT(cJSON_GetArraySize(rr), 2);
    CHECK_EQ_INT(cJSON_GetArraySize(rb), 2);
    /* ratio of a repetition = its decode tok/s x bytes per token / its bandwidth */
    const double bpt = cJSON_GetNumberValue(cJSON_GetObjectItem(dc, "bytes_per_token"));
    double mean = 0;
    for (int r = 0; r < 2; r++) {
        const double want = cJSON_GetNumberValue(cJSON_GetArrayItem(dr, r)) * bpt /
                            cJSON_GetNumberValue(cJSON_GetArrayItem(rb, r));
        CHECK_NEAR(cJSON_GetNumberValue(cJSON_GetArrayItem(rr, r)), want, 1e-9, 0);
        mean += want / 2;
    }
    CHECK_NEAR(cJSON_GetNumberValue(cJSON_GetObjectItem(lv, "ratio_read")), mean, 1e-9, 0);
    /* a repetition's bandwidth = the mean of its readings before and after */
    cJSON *rbf = cJSON_GetObjectItem(lv, "read_bw_Bps_before"), *raf = cJSON_GetObjectItem(lv, "read_bw_Bps_after");
    CHECK_EQ_INT(cJSON_GetArraySize(rbf), 2);
    CHECK_EQ_INT(cJSON_GetArraySize(raf), 2);
    for (int r = 0; r < 2; r++)
        CHECK_NEAR(cJSON_GetNumberValue(cJSON_GetArrayItem(rb, r)),
                   (cJSON_GetNumberValue(cJSON_GetArrayItem(rbf, r)) +
                    cJSON_GetNumberValue(cJSON_GetArrayItem(raf, r))) / 2,
                   1e-12, 0);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(lv, "triad_bw_Bps_after")), 2);
    CHECK_EQ_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(lv, "threads")), 1);
    cJSON_Delete(j);
    /* the meter's threads are pinned one per CPU: -t above the CPUs this
     * process may use is a usage error naming -t, before any work */
    if (qeil_probe_cpu_count() < 256) {
        CHECK_RUN(qeilf("bench -m %s -t %d --bw 10 --bw-live", model_llama, qeil_probe_cpu_count() + 1), 2);
        CHECK_CONTAINS(err_text, "-t:");
        CHECK_CONTAINS(err_text, "with --bw-live (allowed 0..");
    }
    CHECK_RUN(qeilf("bench -m %s -p 8 -n 4 -r 1 -t 1 --bw 10 --bw-live", model_llama), 0);
    CHECK_CONTAINS(out_text, "decode live");
    CHECK_CONTAINS(err_text, "live read");
    /* bound = bandwidth / bytes per token, ratio = achieved / bound */
    CHECK_RUN(qeilf("bench -m %s -p 8 -n 4 -r 1 --bw 10", model_llama), 0);
    CHECK_CONTAINS(out_text, "bound");
    CHECK_CONTAINS(out_text, "VmRSS");
}

TEST(corrupt_models_fail_cleanly)
{
    if (!model_llama[0]) SKIP("no tiny model");
    size_t n = 0;
    char *bytes = slurp_len(model_llama, &n);
    CHECK(bytes != NULL && n > 64);
    if (!bytes || n <= 64) {
        free(bytes);
        return;
    }
    char bad[4300];
    snprintf(bad, sizeof bad, "%s/bad.gguf", tmpdir);
    /* 1. wrong magic */
    FILE *f = fopen(bad, "wb");
    fwrite("XXXX", 1, 4, f);
    fwrite(bytes + 4, 1, n - 4, f);
    fclose(f);
    CHECK_RUN(qeilf("generate -m %s -p hi -n 2", bad), 1);
    CHECK(err_text && strlen(err_text) > 10);
    CHECK_RUN(qeilf("bench -m %s --bw 10 -r 1 -p 4 -n 2", bad), 1);
    CHECK_RUN(qeilf("perplexity -m %s -f %s", bad, bad), 1);
    /* 2. truncated to half */
    f = fopen(bad, "wb");
    fwrite(bytes, 1, n / 2, f);
    fclose(f);
    CHECK_RUN(qeilf("generate -m %s -p hi -n 2", bad), 1);
    CHECK(err_text && strlen(err_text) > 10);
    /* 3. missing file */
    CHECK_RUN(qeilf("generate -m %s/nope.gguf -p hi", tmpdir), 1);
    CHECK_CONTAINS(err_text, "nope.gguf");
    free(bytes);
}

/* Whole commands with every allocation failing in turn (cli/alloc.c's
 * QEIL_TEST_ALLOC_FAIL=K: allocations after the first K fail), until one
 * run succeeds: each failed run must exit 1 naming memory, with no crash
 * and, under ASan, no leak report (qeil() fails on any sanitizer output).
 * Under an emulator every cli_harness_stride()-th allocation. */
/* A copy of the qeil binary's path (dirname may modify its argument). */
static char *qeil_dir_buf(void)
{
    static char b[4096];
    snprintf(b, sizeof b, "%s", qeil_bin);
    return b;
}

static void oom_sweep(const char *what, const char *args)
{
    int done = 0;
    const int step = cli_harness_stride(); /* every allocation natively */
    for (int k = 0; k < 5000 && !done; k += step) {
        char kv[32];
        snprintf(kv, sizeof kv, "%d", k);
        setenv("QEIL_TEST_ALLOC_FAIL", kv, 1);
        int rc = qeil(args);
        unsetenv("QEIL_TEST_ALLOC_FAIL");
        if (rc == 0) {
            done = 1;
            if (k < 10) TEST_FAIL_("%s: succeeded with %d allocations: is the hook used?", what, k);
            if (step == 1) printf("  %s: failed cleanly at each of its first %d allocations\n", what, k);
            else printf("  %s: failed cleanly at every %dth of its first %d allocations (emulated: "
                        "not each)\n", what, step, k);
        } else if (rc != 1 || !err_text || !strstr(err_text, "memory")) {
            TEST_FAIL_("%s: allocation %d failed: exit %d, stderr: %s", what, k, rc,
                       err_text ? err_text : "(none)");
            return;
        }
    }
    if (!done) TEST_FAIL_("%s: never succeeded", what);
}

TEST(commands_fail_cleanly_out_of_memory)
{
    if (!model_llama[0]) SKIP("no tiny model");
    char txt[4300], args[9000];
    snprintf(txt, sizeof txt, "%s/text.txt", tmpdir);
    CHECK_EQ_INT(write_text(txt), 0);
    snprintf(args, sizeof args, "perplexity -m %s -f %s -c 256 -t 1 --output json", model_llama, txt);
    oom_sweep("perplexity", args);
    snprintf(args, sizeof args, "generate -m %s -p 'The history of' -n 4 --seed 1 -t 1 --output json",
             model_llama);
    oom_sweep("generate", args);
    snprintf(args, sizeof args, "plan -m %s --prompt-tokens 64 --gen-tokens 16 --iters 200", model_llama);
    oom_sweep("plan", args);
    snprintf(args, sizeof args, "bench -m %s -p 8 -n 2 -r 1 -t 1 --bw 1 --output json", model_llama);
    oom_sweep("bench", args);
    snprintf(args, sizeof args, "models %s --output json", model_llama);
    oom_sweep("models", args);
    snprintf(args, sizeof args, "mkmodel --preset tiny-llama --type q8_0 -o %s/oom.gguf", tmpdir);
    oom_sweep("mkmodel", args);
    /* build/tests/../qeil -> the source tree's task file */
    char tasks[4200];
    snprintf(tasks, sizeof tasks, "%s/../tests/data/eval/tiny.jsonl", dirname(qeil_dir_buf()));
    if (access(tasks, R_OK) != 0) snprintf(tasks, sizeof tasks, "tests/data/eval/tiny.jsonl");
    snprintf(args, sizeof args, "eval -m %s --tasks %s --samples 2 -n 4 --seed 1 -t 1 --output json",
             model_llama, tasks);
    oom_sweep("eval", args);
}

int main(int argc, char **argv)
{
    (void)argc;
    if (cli_harness_init(argv[0]) != 0) return 1;
    snprintf(wiki_raw, sizeof wiki_raw, "%.4080s/../../tests/data/wikitext/wiki.test.raw", test_dir);
    if (access(wiki_raw, R_OK) != 0)
        snprintf(wiki_raw, sizeof wiki_raw, "tests/data/wikitext/wiki.test.raw");
    RUN(help_for_each_command);
    RUN(usage_errors_name_option_and_range);
    RUN(mkmodel_writes_tiny_models);
    RUN(mkmodel_output_must_be_a_regular_file);
    RUN(mkmodel_output_dir_not_writable);
    if (test_failed_) model_llama[0] = model_gpt2[0] = '\0';
    RUN(generate_greedy_is_deterministic);
    RUN(generate_seeded_is_deterministic);
    RUN(generate_json_contract);
    RUN(json_outputs_are_utf8_whatever_the_path);
    RUN(generate_prompt_longer_than_context_fails);
    RUN(perplexity_is_finite);
    RUN(perplexity_windows_as_llama_cpp);
    RUN(perplexity_refuses_a_text_over_the_limit);
    RUN(perplexity_wikitext_sample_by_hand);
    RUN(perplexity_quantized_near_f32);
    RUN(bench_json_has_the_fields);
    RUN(corrupt_models_fail_cleanly);
    RUN(commands_fail_cleanly_out_of_memory);
    cli_harness_done();
    return test_summary("engine_cli");
}
