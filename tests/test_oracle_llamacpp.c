/*
 * test_oracle_llamacpp.c — optional oracle: llama.cpp itself loads every
 * file qeil mkmodel writes (tests/mkmodel_cases.h: 63 files) and continues
 * a fixed token-id prompt greedily with the same tokens as qeil's engine.
 *
 * llama.cpp comes as the prebuilt library of the npm package node-llama-cpp
 * (pinned, with @node-llama-cpp/linux-x64), installed by
 * `sh tools/install-deps.sh --test` into build-oracle/ (gitignored); the
 * driver is tests/oracle/llamacpp_greedy.mjs. Nothing is downloaded at test
 * time. Without node or the package the test SKIPs. QEIL_ORACLE_DIR
 * overrides the folder holding node_modules.
 *
 * Greedy tokens: qeil's side is qeil_engine_eval + argmax, what
 * `qeil generate --temp 0` does. The two engines round differently (llama.cpp
 * multiplies f16/bf16/quantized weights by activations converted to
 * f16/bf16/q8), so where a continuation differs the test accepts it only as
 * a near tie: qeil's logit for llama.cpp's token must be within a
 * type-dependent fraction of the logit scale of qeil's best; after that
 * step the continuations are not compared (they no longer share a prefix).
 */
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mkmodel_cases.h"
#include "qeil/engine.h"
#include "test.h"

#define N_PREDICT 8
#define N_FILES (N_CASES * N_TYPES)

static char g_dir[256];
static const int32_t k_prompt[] = {260, 300, 280, 290, 100, 200};
#define N_PROMPT (sizeof k_prompt / sizeof k_prompt[0])

typedef struct {
    char path[512];
    char what[64];
    int type;
    int built;
    int32_t qeil[N_PREDICT];
    float *logits; /* N_PREDICT x vocab: qeil's logits before each pick */
    uint32_t vocab;
    int32_t eos;   /* qeil's EOS id: llama.cpp stops before yielding it */
    int got;       /* llama.cpp answered for this file */
    int ok;        /* ... with tokens */
    int32_t lcpp[N_PREDICT];
    int n_lcpp;
    char err[256];
} oracle_case;

static oracle_case g_case[N_FILES];

static int file_exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0;
}

static const char *script_path(void)
{
    static char buf[512];
    if (access("tests/oracle/llamacpp_greedy.mjs", R_OK) == 0) return "tests/oracle/llamacpp_greedy.mjs";
    const char *slash = strrchr(__FILE__, '/');
    if (slash) {
        snprintf(buf, sizeof buf, "%.*s/oracle/llamacpp_greedy.mjs", (int)(slash - __FILE__), __FILE__);
        if (access(buf, R_OK) == 0) return buf;
    }
    return NULL;
}

/* The node_modules folder with node-llama-cpp and its linux-x64 binaries. */
static const char *modules_dir(const char *script)
{
    static char buf[600];
    const char *env = getenv("QEIL_ORACLE_DIR");
    if (env && *env) snprintf(buf, sizeof buf, "%s/node_modules", env);
    else snprintf(buf, sizeof buf, "%.*sbuild-oracle/node_modules", (int)(strstr(script, "tests/oracle/") - script), script);
    char probe[700];
    snprintf(probe, sizeof probe, "%s/node-llama-cpp/dist/index.js", buf);
    if (!file_exists(probe)) return NULL;
    snprintf(probe, sizeof probe, "%s/@node-llama-cpp/linux-x64/package.json", buf);
    if (!file_exists(probe)) return NULL;
    return buf;
}

static uint32_t argmax(const float *x, uint32_t n)
{
    uint32_t b = 0;
    for (uint32_t i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

/* qeil's greedy continuation, keeping the logits of every step. */
static int qeil_greedy(qeil_ctx *ctx, oracle_case *c)
{
    qeil_engine_params ep = qeil_engine_default_params();
    ep.n_ctx = 64;
    ep.n_threads = 1;
    qeil_engine *e = NULL;
    if (qeil_engine_open(ctx, c->path, &ep, &e) != QEIL_OK) {
        TEST_FAIL_("%s: qeil engine: %s", c->what, qeil_ctx_errmsg(ctx));
        return 0;
    }
    c->vocab = qeil_engine_n_vocab(e);
    c->eos = qeil_tokenizer_eos(qeil_engine_tokenizer(e));
    c->logits = calloc((size_t)N_PREDICT * c->vocab, sizeof(float));
    int ok = c->logits != NULL;
    int32_t t = 0;
    for (int k = 0; ok && k < N_PREDICT; k++) {
        float *lg = c->logits + (size_t)k * c->vocab;
        qeil_status st = k == 0 ? qeil_engine_eval(e, 0, k_prompt, N_PROMPT, lg, 0)
                                : qeil_engine_eval(e, 0, &t, 1, lg, 0);
        ok = st == QEIL_OK;
        t = (int32_t)argmax(lg, c->vocab);
        c->qeil[k] = t;
    }
    qeil_engine_free(e);
    if (!ok) TEST_FAIL_("%s: qeil eval failed: %s", c->what, qeil_ctx_errmsg(ctx));
    return ok;
}

/* Run the driver on cases [from, N_FILES) that were built and not yet
 * answered; returns how many got an answer. A file that makes llama.cpp
 * abort (GGML_ASSERT) kills the process: the first unanswered file is then
 * marked as the culprit and the caller runs the rest again. */
static int run_driver(const char *script, const char *mods)
{
    static char cmd[65536];
    int k = snprintf(cmd, sizeof cmd, "node '%s' '%s' %d ", script, mods, N_PREDICT);
    for (size_t i = 0; i < N_PROMPT; i++) k += snprintf(cmd + k, sizeof cmd - (size_t)k, "%s%d", i ? "," : "", k_prompt[i]);
    int n_files = 0;
    for (size_t i = 0; i < N_FILES; i++)
        if (g_case[i].built && !g_case[i].got) {
            k += snprintf(cmd + k, sizeof cmd - (size_t)k, " '%s'", g_case[i].path);
            n_files++;
        }
    if (n_files == 0) return 0;
    k += snprintf(cmd + k, sizeof cmd - (size_t)k, " 2>%s/driver.err", g_dir);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    char line[4096];
    int answered = 0;
    while (fgets(line, sizeof line, p)) {
        char *sp1 = strchr(line, ' ');
        if (!sp1) continue;
        *sp1 = '\0';
        char *file = sp1 + 1, *sp2 = strchr(file, ' ');
        if (sp2) *sp2 = '\0';
        char *rest = sp2 ? sp2 + 1 : file + strlen(file);
        rest[strcspn(rest, "\n")] = '\0';
        for (size_t i = 0; i < N_FILES; i++) {
            oracle_case *c = &g_case[i];
            if (!c->built || c->got || strcmp(c->path, file) != 0) continue;
            c->got = 1;
            answered++;
            if (strcmp(line, "OK") == 0) {
                c->ok = 1;
                char *s = rest, *end;
                while (c->n_lcpp < N_PREDICT) {
                    long v = strtol(s, &end, 10);
                    if (end == s) break;
                    c->lcpp[c->n_lcpp++] = (int32_t)v;
                    s = end;
                }
            } else {
                snprintf(c->err, sizeof c->err, "%s", rest);
            }
        }
    }
    int rc = pclose(p);
    if (rc != 0) {
        /* the first unanswered file brought llama.cpp down */
        char msg[160] = "";
        snprintf(line, sizeof line, "%s/driver.err", g_dir);
        FILE *f = fopen(line, "r");
        if (f) {
            char l[512];
            while (fgets(l, sizeof l, f))
                if (strstr(l, "GGML_ASSERT") || strstr(l, "error") || strstr(l, "Error")) {
                    l[strcspn(l, "\n")] = '\0';
                    snprintf(msg, sizeof msg, "%.150s", l);
                    break;
                }
            fclose(f);
        }
        for (size_t i = 0; i < N_FILES; i++)
            if (g_case[i].built && !g_case[i].got) {
                g_case[i].got = 1;
                snprintf(g_case[i].err, sizeof g_case[i].err, "llama.cpp exited (status %d): %s", rc,
                         msg[0] ? msg : "see stderr of the driver");
                answered++;
                break;
            }
    }
    return answered;
}

/* Fraction of qeil's logit scale within which a different greedy pick is a
 * near tie, per weight type: llama.cpp converts the activations to the
 * weights' vec_dot type (f16, bf16, q8_0, q8_K) where qeil keeps f32. */
static double tie_tolerance(int type)
{
    switch (type) {
    case QEIL_GGML_F32: return 1e-4;
    case QEIL_GGML_F16: return 2e-3;
    default: return 2e-2;
    }
}

TEST(llama_cpp_loads_and_continues_like_qeil)
{
    const char *script = script_path();
    if (!script) SKIP("tests/oracle/llamacpp_greedy.mjs not found (run from the repository root)");
    /* node-llama-cpp 3.22.1 declares engines node >= 20 */
    if (system("node -e 'process.exit(+process.versions.node.split(\".\")[0] >= 20 ? 0 : 1)' > /dev/null 2>&1") != 0)
        SKIP("node >= 20 not found (sh tools/install-deps.sh --test)");
    const char *mods = modules_dir(script);
    if (!mods)
        SKIP("node-llama-cpp not installed in build-oracle/ (sh tools/install-deps.sh --test, or set "
             "QEIL_ORACLE_DIR)");

    qeil_ctx *ctx = qeil_ctx_create(NULL);
    for (size_t ci = 0; ci < N_CASES; ci++)
        for (size_t ti = 0; ti < N_TYPES; ti++) {
            oracle_case *c = &g_case[ci * N_TYPES + ti];
            qeil_mkmodel_params p;
            snprintf(c->what, sizeof c->what, "%s %s", k_cases[ci], qeil_ggml_type_name(k_types[ti]));
            snprintf(c->path, sizeof c->path, "%s/%s-%s.gguf", g_dir, k_cases[ci], qeil_ggml_type_name(k_types[ti]));
            c->type = k_types[ti];
            if (!case_params(ctx, k_cases[ci], k_types[ti], &p) || qeil_mkmodel_write(ctx, &p, c->path) != QEIL_OK) {
                TEST_FAIL_("%s: mkmodel: %s", c->what, qeil_ctx_errmsg(ctx));
                continue;
            }
            c->built = qeil_greedy(ctx, c);
        }
    qeil_ctx_free(ctx);

    /* one llama.cpp process for all files; again for the rest after an abort */
    for (int round = 0; round < (int)N_FILES; round++) {
        int r = run_driver(script, mods);
        if (r < 0) {
            TEST_FAIL_("cannot run node");
            break;
        }
        if (r == 0) break;
    }

    int n_loaded = 0, n_same = 0, n_tie = 0;
    for (size_t i = 0; i < N_FILES; i++) {
        oracle_case *c = &g_case[i];
        if (!c->built) continue;
        if (!c->got || !c->ok) {
            TEST_FAIL_("%s: llama.cpp did not load it: %s", c->what, c->got ? c->err : "no answer");
            continue;
        }
        n_loaded++;
        int k = 0;
        while (k < c->n_lcpp && c->lcpp[k] == c->qeil[k]) k++;
        /* llama.cpp ends a continuation at an end-of-generation token
         * without yielding it (node-llama-cpp's evaluate), as qeil generate
         * does: a shorter answer must stop where qeil picks EOS */
        if (k == c->n_lcpp && (k == N_PREDICT || c->qeil[k] == c->eos)) {
            n_same++;
            continue;
        }
        if (k == c->n_lcpp) {
            TEST_FAIL_("%s: llama.cpp stopped after %d tokens, qeil's next pick %d is not EOS %d", c->what,
                       k, c->qeil[k], c->eos);
            continue;
        }
        const float *lg = c->logits + (size_t)k * c->vocab;
        double scale = 0;
        for (uint32_t v = 0; v < c->vocab; v++) scale = fmax(scale, fabs((double)lg[v]));
        const int32_t theirs = c->lcpp[k];
        const double gap = theirs >= 0 && (uint32_t)theirs < c->vocab ? (double)lg[c->qeil[k]] - (double)lg[theirs] : INFINITY;
        if (gap <= tie_tolerance(c->type) * scale) {
            n_tie++;
            printf("  %s: step %d: llama.cpp %d, qeil %d, a near tie (gap %.3g of scale %.3g)\n", c->what, k,
                   theirs, c->qeil[k], gap, scale);
        } else {
            TEST_FAIL_("%s: step %d: llama.cpp picks %d, qeil %d (qeil's logit gap %.4g, scale %.4g, "
                       "tolerance %.0e of scale)",
                       c->what, k, theirs, c->qeil[k], gap, scale, tie_tolerance(c->type));
        }
    }
    printf("  %d files: %d loaded by llama.cpp, %d with the same %d greedy tokens, %d diverging at a near "
           "tie\n",
           (int)N_FILES, n_loaded, n_same, N_PREDICT, n_tie);
    for (size_t i = 0; i < N_FILES; i++) {
        free(g_case[i].logits);
        if (g_case[i].built) unlink(g_case[i].path);
    }
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/qeil-oracle-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 2;
    }
    RUN(llama_cpp_loads_and_continues_like_qeil);
    char p[300];
    snprintf(p, sizeof p, "%s/driver.err", g_dir);
    unlink(p);
    rmdir(g_dir);
    return test_summary("oracle_llamacpp");
}
