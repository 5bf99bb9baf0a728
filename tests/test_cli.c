/* test_cli.c — the qeil command-line tool end to end: exit codes, error
 * messages, the JSON/CSV outputs, determinism, and plan from a GGUF file and
 * from a probed profile. Runs the qeil binary of the same build directory
 * (argv[0]/../../qeil), capturing stdout and stderr in a temp directory. */
#include <cjson/cJSON.h>
#include <libgen.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qeil/device.h"
#include "qeil/gguf.h"
#include "test.h"

#define CLI_HARNESS_TMPDIR "/tmp/qeil-cli-XXXXXX"
#include "cli_harness.h"

static char run_sh[4200];

TEST(help_and_usage_errors)
{
    CHECK_EQ_INT(qeil("--help"), 0);
    CHECK_CONTAINS(out_text, "usage: qeil");
    CHECK_EQ_INT(qeil("frobnicate"), 2);
    CHECK_CONTAINS(err_text, "unknown command");
    CHECK_EQ_INT(qeil(""), 2);
    CHECK_EQ_INT(qeil("plan --help"), 0);
    CHECK_CONTAINS(out_text, "--samples");
    CHECK_EQ_INT(qeil("platforms --help"), 0);
    CHECK_EQ_INT(qeil("models --help"), 0);
    CHECK_EQ_INT(qeil("probe --help"), 0);
    CHECK_EQ_INT(qeil("--version"), 0);
    CHECK_CONTAINS(out_text, "qeil 0.");
    /* nothing may follow --version / --help: a usage error, not a silent 0 */
    CHECK_EQ_INT(qeil("--version extra"), 2);
    CHECK_CONTAINS(err_text, "extra");
    CHECK_EQ_INT(qeil("--help extra"), 2);
}

/* Float options are as strict as integer ones (decimal only), and a value
 * that underflows is named as typed, not as the 0 it would become. */
TEST(float_options_are_strict)
{
    static const char *bad[] = {"0x10", "+3", "inf", "nan", "0x1p-2"};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        char a[128];
        snprintf(a, sizeof a, "plan --throttle-frac %s", bad[k]);
        CHECK_EQ_INT(qeil(a), 2);
        CHECK_CONTAINS(err_text, "--throttle-frac");
        CHECK_CONTAINS(err_text, bad[k]);
    }
    CHECK_EQ_INT(qeil("plan --max-latency 1e-400"), 2);
    CHECK_CONTAINS(err_text, "1e-400");
    CHECK_CONTAINS(err_text, "too small");
    /* the float options of generate are checked before the model is read */
    CHECK_EQ_INT(qeil("generate -m /nonexistent.gguf -p x --top-p 1e-300"), 2);
    CHECK_CONTAINS(err_text, "--top-p: 1e-300");
    CHECK_EQ_INT(qeil("generate -m /nonexistent.gguf -p x --temp 1e-320"), 2);
    CHECK_CONTAINS(err_text, "--temp: 1e-320");
    CHECK_EQ_INT(qeil("generate -m /nonexistent.gguf -p x --temp 0x1"), 2);
    CHECK_CONTAINS(err_text, "0x1");
}

/* tests/run.sh must fail when it found nothing to run (a plain `make`
 * builds no tests), and still pass a directory whose tests pass. */
TEST(runner_fails_when_it_ran_nothing)
{
    char dir[4200], cmd[9000];
    snprintf(dir, sizeof dir, "%s/runner/tests", tmpdir);
    snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
    CHECK_EQ_INT(system(cmd), 0);
    /* the nested runs are native and unfiltered, whatever this run's
     * emulator (QEIL_TEST_RUNNER) and subset (QEIL_TESTS) */
    snprintf(cmd, sizeof cmd, "QEIL_TEST_RUNNER= QEIL_TESTS= sh %s %s/runner >%s/out 2>&1", run_sh,
             tmpdir, tmpdir);
    int st = system(cmd);
    CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) != 0);
    snprintf(dir, sizeof dir, "%s/out", tmpdir);
    char *log = slurp(dir);
    CHECK_CONTAINS(log, "no test executables");
    CHECK_CONTAINS(log, "0 passed, 1 failed, 0 skipped\n");
    free(log);
    /* one passing test: exit 0 */
    snprintf(cmd, sizeof cmd,
             "printf '#!/bin/sh\\necho PASS one\\n' >%s/runner/tests/test_one && "
             "chmod +x %s/runner/tests/test_one && QEIL_TEST_RUNNER= QEIL_TESTS= sh %s %s/runner "
             ">%s/out 2>&1",
             tmpdir, tmpdir, run_sh, tmpdir, tmpdir);
    CHECK_EQ_INT(system(cmd), 0);
    log = slurp(dir);
    CHECK_CONTAINS(log, "1 passed, 0 failed, 0 skipped\n");
    free(log);
}

TEST(plan_rejects_bad_numbers)
{
    CHECK_EQ_INT(qeil("plan --samples 0"), 2);
    CHECK_CONTAINS(err_text, "--samples");
    CHECK_CONTAINS(err_text, "1..256");
    CHECK_EQ_INT(qeil("plan --samples 12x"), 2);
    CHECK_CONTAINS(err_text, "12x");
    CHECK_EQ_INT(qeil("plan --iters -5"), 2);
    CHECK_CONTAINS(err_text, "--iters");
    CHECK_EQ_INT(qeil("plan --method magic"), 2);
    CHECK_CONTAINS(err_text, "magic");
    CHECK_EQ_INT(qeil("plan --output xml"), 2);
    CHECK_EQ_INT(qeil("plan --prompt-tokens"), 2);
    CHECK_CONTAINS(err_text, "needs a value");
    CHECK_EQ_INT(qeil("plan --bogus"), 2);
    CHECK_EQ_INT(qeil("plan --throttle-frac 1.5"), 2);
    CHECK_CONTAINS(err_text, "--throttle-frac");
    CHECK_EQ_INT(qeil("plan --fail warp-drive --iters 200"), 2);
    CHECK_CONTAINS(err_text, "warp-drive");
}

TEST(plan_rejects_bad_inputs)
{
    CHECK_EQ_INT(qeil("plan --platform no-such-board"), 1);
    CHECK_CONTAINS(err_text, "no-such-board");
    CHECK_EQ_INT(qeil("plan --model no-such-model"), 1);
    CHECK_CONTAINS(err_text, "no-such-model");
    CHECK_EQ_INT(qeil("plan --platform /nonexistent/dir/p.json"), 1);
    CHECK_CONTAINS(err_text, "/nonexistent/dir/p.json");
    CHECK_EQ_INT(qeil("plan --model /nonexistent/m.gguf"), 1);
    /* a context the model cannot hold */
    CHECK_EQ_INT(qeil("plan --model gpt2-125m --prompt-tokens 1000 --gen-tokens 100"), 2);
    CHECK_CONTAINS(err_text, "1024");
}

static cJSON *plan_json(const char *args)
{
    char a[1024];
    snprintf(a, sizeof a, "plan --output json %s", args);
    if (qeil(a) != 0) return NULL;
    return cJSON_Parse(out_text);
}

TEST(plan_json_has_the_contract)
{
    cJSON *j = plan_json("--iters 3000");
    CHECK(j != NULL);
    if (!j) return;
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "seed")), "42");
    CHECK(cJSON_GetStringValue(cJSON_GetObjectItem(j, "version")) != NULL);
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "provenance")), "modeled");
    cJSON *pf = cJSON_GetObjectItem(j, "platform");
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(pf, "name")), "qeil-laptop");
    cJSON *md = cJSON_GetObjectItem(j, "model");
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(md, "name")), "llama-3.1-8b-q4");
    int blocks = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(md, "blocks"));
    CHECK_EQ_INT(blocks, 32);
    cJSON *front = cJSON_GetObjectItem(j, "front");
    CHECK(cJSON_IsArray(front) && cJSON_GetArraySize(front) >= 1);
    double prev_e = -1;
    cJSON *p;
    cJSON_ArrayForEach(p, front)
    {
        double e = cJSON_GetNumberValue(cJSON_GetObjectItem(p, "energy_J"));
        double l = cJSON_GetNumberValue(cJSON_GetObjectItem(p, "latency_s"));
        double u = cJSON_GetNumberValue(cJSON_GetObjectItem(p, "underutilization"));
        double t = cJSON_GetNumberValue(cJSON_GetObjectItem(p, "peak_temp_C"));
        CHECK(e > 0 && l > 0 && u >= 0 && u <= 1 && t > 0);
        CHECK(e >= prev_e); /* sorted by energy */
        prev_e = e;
        CHECK(cJSON_IsString(cJSON_GetObjectItem(p, "prefill_map")));
        CHECK(cJSON_IsString(cJSON_GetObjectItem(p, "decode_map")));
        cJSON *units = cJSON_GetObjectItem(p, "units");
        CHECK_EQ_INT(cJSON_GetArraySize(units), blocks + 2);
        cJSON *u0 = cJSON_GetArrayItem(units, 1);
        double dasi = cJSON_GetNumberValue(cJSON_GetObjectItem(u0, "decode_dasi"));
        double cpq = cJSON_GetNumberValue(cJSON_GetObjectItem(u0, "decode_cpq"));
        double phi = cJSON_GetNumberValue(cJSON_GetObjectItem(u0, "decode_phi"));
        CHECK(dasi > 0 && dasi <= 1);
        CHECK(cpq >= 0);
        CHECK(phi > 0 && phi <= 1);
    }
    int rec = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "recommended"));
    CHECK(rec >= 0 && rec < cJSON_GetArraySize(front));
    cJSON *bl = cJSON_GetObjectItem(j, "baselines");
    CHECK(cJSON_GetObjectItem(bl, "standard") != NULL);
    CHECK(cJSON_GetObjectItem(bl, "greedy") != NULL);
    cJSON_Delete(j);
}

/* The front (not the timing) must be identical for the same seed. */
TEST(plan_is_deterministic)
{
    char *fronts[2] = {NULL, NULL};
    for (int r = 0; r < 2; r++) {
        cJSON *j = plan_json("--iters 2000 --seed 7 --samples 4");
        CHECK(j != NULL);
        if (!j) break;
        fronts[r] = cJSON_PrintUnformatted(cJSON_GetObjectItem(j, "front"));
        cJSON_Delete(j);
    }
    if (fronts[0] && fronts[1]) CHECK(strcmp(fronts[0], fronts[1]) == 0);
    free(fronts[0]);
    free(fronts[1]);
}

TEST(plan_table_and_csv)
{
    CHECK_EQ_INT(qeil("plan --iters 2000"), 0);
    CHECK_CONTAINS(out_text, "MODELED");
    CHECK_CONTAINS(out_text, "Pareto front");
    CHECK_CONTAINS(out_text, "recommended");
    CHECK_CONTAINS(out_text, "standard");
    CHECK_CONTAINS(out_text, "greedy");
    CHECK_EQ_INT(qeil("plan --iters 2000 --output csv"), 0);
    CHECK(strncmp(out_text, "index,energy_J,latency_s", 24) == 0);
    CHECK_EQ_INT(qeil("plan --method greedy --platform jetson-orin-nano-super-15w "
                      "--model llama-3.2-1b"), 0);
}

TEST(plan_with_failed_unit_avoids_it)
{
    cJSON *j = plan_json("--iters 2000 --fail rtx-pro-5000");
    if (!j) {
        /* the unit name is the catalog's; say which names exist */
        CHECK_EQ_INT(qeil("platforms qeil-laptop"), 0);
        TEST_FAIL_("plan --fail rtx-pro-5000 failed: %s", err_text ? err_text : "");
        return;
    }
    cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItem(j, "front"))
    {
        cJSON *d;
        cJSON_ArrayForEach(d, cJSON_GetObjectItem(p, "devices"))
        {
            if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(d, "name")), "rtx-pro-5000") == 0)
                CHECK(!cJSON_IsTrue(cJSON_GetObjectItem(d, "powered")));
        }
    }
    cJSON_Delete(j);
}

TEST(catalogs_list)
{
    const char *platforms[] = {"qeil-laptop", "jetson-orin-nano-super-7w",
                               "jetson-orin-nano-super-15w", "jetson-orin-nano-super-25w",
                               "jetson-agx-orin-64gb", "snapdragon-8-gen3", "apple-m3",
                               "rpi5-hailo10h"};
    CHECK_EQ_INT(qeil("platforms"), 0);
    for (size_t i = 0; i < sizeof platforms / sizeof *platforms; i++)
        CHECK_CONTAINS(out_text, platforms[i]);
    const char *models[] = {"gpt2-125m", "granite-350m", "qwen2-0.5b", "llama-3.2-1b",
                            "lfm2-2.6b", "llama-3.1-8b-f16", "llama-3.1-8b-q4"};
    CHECK_EQ_INT(qeil("models"), 0);
    for (size_t i = 0; i < sizeof models / sizeof *models; i++) CHECK_CONTAINS(out_text, models[i]);
    CHECK_EQ_INT(qeil("platforms --output json"), 0);
    cJSON *j = cJSON_Parse(out_text);
    CHECK(j != NULL);
    /* every catalog platform, each a profile of its own */
    cJSON *list = cJSON_GetObjectItem(j, "platforms");
    CHECK_EQ_INT(cJSON_GetArraySize(list), (int)(sizeof platforms / sizeof *platforms));
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "version")), qeil_version());
    for (int k = 0; k < cJSON_GetArraySize(list); k++) {
        char *one = cJSON_PrintUnformatted(cJSON_GetArrayItem(list, k));
        qeil_platform pf;
        qeil_ctx *c = qeil_ctx_create(NULL);
        CHECK(one != NULL);
        if (!one) break;
        CHECK_EQ_INT(qeil_platform_parse_json(c, one, strlen(one), &pf), QEIL_OK);
        CHECK_EQ_STR(pf.name, platforms[k]);
        qeil_ctx_free(c);
        free(one);
    }
    cJSON_Delete(j);
    CHECK_EQ_INT(qeil("models --output json"), 0);
    j = cJSON_Parse(out_text);
    CHECK(j != NULL);
    cJSON_Delete(j);
    /* lfm2's blocks say their kind: b0 is a short convolution, b2 attention */
    CHECK_EQ_INT(qeil("models lfm2-2.6b"), 0);
    CHECK_CONTAINS(out_text, "arch            lfm2");
    CHECK_CONTAINS(out_text, "(short convolution: no KV cache)");
    CHECK_EQ_INT(qeil("models lfm2-2.6b --output json"), 0);
    j = cJSON_Parse(out_text);
    cJSON *units = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "model"), "units");
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(units, 1), "kind")), "conv");
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(units, 3), "kind")), "attention");
    CHECK_EQ_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "model"), "conv_L")), 3);
    cJSON_Delete(j);
}

/* A tiny llama-style GGUF written with the library's writer: the planner
 * must take the model description from the file itself. */
static int write_tiny_gguf_ctx(const char *path, const char *name, uint32_t ctx_len)
{
    qeil_gguf_writer *w = qeil_gguf_writer_create(NULL);
    if (!w) return -1;
    enum { D = 64, FF = 128, V = 96, L = 3 };
    static float buf[FF * D];
    for (size_t i = 0; i < sizeof buf / sizeof *buf; i++) buf[i] = 0.01f * (float)(i % 7);
    int bad = 0;
    bad |= qeil_gguf_writer_set_str(w, "general.architecture", "llama");
    bad |= qeil_gguf_writer_set_str(w, "general.name", name);
    bad |= qeil_gguf_writer_set_u32(w, "llama.block_count", L);
    bad |= qeil_gguf_writer_set_u32(w, "llama.embedding_length", D);
    bad |= qeil_gguf_writer_set_u32(w, "llama.attention.head_count", 4);
    bad |= qeil_gguf_writer_set_u32(w, "llama.attention.head_count_kv", 2);
    bad |= qeil_gguf_writer_set_u32(w, "llama.feed_forward_length", FF);
    bad |= qeil_gguf_writer_set_u32(w, "llama.context_length", ctx_len);
    bad |= qeil_gguf_writer_set_u32(w, "llama.vocab_size", V);
    uint64_t emb[2] = {D, V}, sq[2] = {D, D}, kv[2] = {D, D / 2}, up[2] = {D, FF}, dn[2] = {FF, D},
             nrm[1] = {D};
    bad |= qeil_gguf_writer_add_tensor(w, "token_embd.weight", QEIL_GGML_F32, 2, emb, buf);
    for (int l = 0; l < L; l++) {
        char n[64];
#define ADD(suffix, nd, ne)                                                              \
    snprintf(n, sizeof n, "blk.%d." suffix, l);                                          \
    bad |= qeil_gguf_writer_add_tensor(w, n, QEIL_GGML_F32, nd, ne, buf)
        ADD("attn_norm.weight", 1, nrm);
        ADD("attn_q.weight", 2, sq);
        ADD("attn_k.weight", 2, kv);
        ADD("attn_v.weight", 2, kv);
        ADD("attn_output.weight", 2, sq);
        ADD("ffn_norm.weight", 1, nrm);
        ADD("ffn_gate.weight", 2, up);
        ADD("ffn_up.weight", 2, up);
        ADD("ffn_down.weight", 2, dn);
#undef ADD
    }
    bad |= qeil_gguf_writer_add_tensor(w, "output_norm.weight", QEIL_GGML_F32, 1, nrm, buf);
    bad |= qeil_gguf_writer_add_tensor(w, "output.weight", QEIL_GGML_F32, 2, emb, buf);
    bad |= qeil_gguf_writer_write(w, path);
    qeil_gguf_writer_free(w);
    return bad ? -1 : 0;
}

static int write_tiny_gguf_named(const char *path, const char *name)
{
    return write_tiny_gguf_ctx(path, name, 2048);
}

static int write_tiny_gguf(const char *path)
{
    return write_tiny_gguf_named(path, "tiny-cli-test");
}

/* A GGUF whose general.name holds a byte that is not UTF-8 (0xFF), an
 * escape sequence (ESC [31m) and a C1 CSI (U+009B): every JSON output is
 * valid UTF-8 (U+FFFD for the byte), no table sends a control to the
 * terminal, and the same for a model path that is not UTF-8. */
TEST(hostile_model_name)
{
    char path[4200], args[4600];
    snprintf(path, sizeof path, "%s/hostile-\xfe.gguf", tmpdir);
    CHECK_EQ_INT(write_tiny_gguf_named(path, "ev\xff" "il\x1b[31mred\xc2\x9b" "2J"), 0);
    static const char *json_cmds[] = {"plan --iters 300 --prompt-tokens 8 --gen-tokens 4 "
                                      "--output json --model",
                                      "models --output json"};
    for (size_t k = 0; k < 2; k++) {
        snprintf(args, sizeof args, "%s '%s'", json_cmds[k], path);
        CHECK_EQ_INT(qeil(args), 0);
        if (!out_text || !utf8_valid(out_text)) TEST_FAIL_("'%s': JSON is not UTF-8", args);
        cJSON *j = cJSON_Parse(out_text ? out_text : "");
        CHECK(j != NULL);
        cJSON *md = cJSON_GetObjectItem(j, "model");
        if (!md) md = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "models"), 0);
        if (!md) md = j;
        CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(md, "name")),
                     "ev\xEF\xBF\xBDil\x1b[31mred\xc2\x9b" "2J");
        cJSON_Delete(j);
    }
    static const char *table_cmds[] = {"plan --iters 300 --prompt-tokens 8 --gen-tokens 4 --model",
                                       "models"};
    for (size_t k = 0; k < 2; k++) {
        snprintf(args, sizeof args, "%s '%s'", table_cmds[k], path);
        CHECK_EQ_INT(qeil(args), 0);
        CHECK(out_text && utf8_valid(out_text));
        CHECK(out_text && !strchr(out_text, 0x1b));
        CHECK(out_text && !strstr(out_text, "\xc2\x9b"));
        CHECK_CONTAINS(out_text, "ev\xEF\xBF\xBDil\\x1b[31mred\\u009b2J");
    }
}

/* What qeil plan says so a user needn't guess: failed units listed, a
 * one-unit platform called what it is, defaults that fit a small model's
 * context, the terms explained, and an exhaustive search that counts its
 * plans before it starts and refuses a minutes-long one without --force. */
TEST(plan_explains_itself)
{
    char path[4200], args[4400];
    CHECK_EQ_INT(qeil("plan --iters 500 --fail rtx-pro-5000 --fail npu"), 0);
    CHECK_CONTAINS(out_text, "failed units (--fail), given no work: npu rtx-pro-5000");
    CHECK_CONTAINS(out_text, "terms: underutil = ");
    CHECK_CONTAINS(out_text, "phi (");
    CHECK(strstr(out_text, "note: one compute unit") == NULL); /* cpu and igpu are left */
    CHECK_EQ_INT(qeil("plan --iters 500 --fail rtx-pro-5000 --fail npu --fail igpu"), 0);
    CHECK_CONTAINS(out_text, "note: one compute unit (cpu) is left to place work on");
    cJSON *j = plan_json("--iters 500 --fail npu");
    CHECK(j != NULL);
    if (j) {
        cJSON *fu = cJSON_GetObjectItem(j, "failed_units");
        CHECK_EQ_INT(cJSON_GetArraySize(fu), 1);
        CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetArrayItem(fu, 0)), "npu");
        cJSON_Delete(j);
    }
    /* a 128-token model: the defaults P=512 N=128 shrink to 102 + 26 */
    snprintf(path, sizeof path, "%s/ctx128.gguf", tmpdir);
    CHECK_EQ_INT(write_tiny_gguf_ctx(path, "ctx128", 128), 0);
    snprintf(args, sizeof args, "plan --iters 500 -m %s", path);
    CHECK_EQ_INT(qeil(args), 0);
    CHECK_CONTAINS(out_text, "P=102 N=26");
    CHECK_CONTAINS(out_text, "defaults shrunk to fit the model's context of 128 tokens");
    snprintf(args, sizeof args, "plan --iters 500 -m %s --prompt-tokens 100", path);
    CHECK_EQ_INT(qeil(args), 0);
    CHECK_CONTAINS(out_text, "P=100 N=28");
    /* a given value that does not fit is still an error naming it */
    snprintf(args, sizeof args, "plan -m %s --prompt-tokens 200", path);
    CHECK_EQ_INT(qeil(args), 2);
    CHECK_CONTAINS(err_text, "prompt_tokens: 200 is out of range");
    /* exhaustive: counted first; 4.8e7 plans on the defaults need --force */
    CHECK_EQ_INT(qeil("plan --method exhaustive"), 2);
    CHECK_CONTAINS(err_text, "4.82e+07 plans to evaluate");
    CHECK_CONTAINS(err_text, "--force");
    CHECK_EQ_INT(qeil("plan --platform rpi5-hailo10h -m gpt2-125m --method exhaustive"), 0);
    CHECK_CONTAINS(err_text, "qeil plan: exhaustive: evaluating ");
    CHECK_CONTAINS(err_text, "100 % (");
}

/* qeil plan --svg: a plain SVG with the front, the baselines, the
 * recommended plan and its device map; rendered by headless Chromium when
 * it is installed (a screenshot much larger than a blank page's, the
 * labels in the rendered DOM). */
static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

TEST(plan_svg)
{
    char svg[4200], args[4400];
    snprintf(svg, sizeof svg, "%s/plan.svg", tmpdir);
    snprintf(args, sizeof args, "plan --iters 2000 --fail npu --svg %s", svg);
    CHECK_EQ_INT(qeil(args), 0);
    char *t = slurp(svg);
    CHECK(t != NULL);
    if (!t) return;
    CHECK_CONTAINS(t, "<svg xmlns=\"http://www.w3.org/2000/svg\"");
    CHECK_CONTAINS(t, "</svg>");
    CHECK_CONTAINS(t, "recommended #");
    CHECK_CONTAINS(t, "standard");
    CHECK_CONTAINS(t, "greedy");
    CHECK_CONTAINS(t, "decode rtx-pro-5000");
    CHECK_CONTAINS(t, "prefill npu (failed)");
    CHECK_CONTAINS(t, "MODELED");
    free(t);
    /* an unwritable path is a failure naming it, after the table */
    CHECK_EQ_INT(qeil("plan --iters 200 --svg /nonexistent-dir/x.svg"), 1);
    CHECK_CONTAINS(err_text, "--svg: cannot write '/nonexistent-dir/x.svg'");
}

TEST(plan_svg_renders_in_chromium)
{
#if defined(__SANITIZE_ADDRESS__)
    SKIP("rendering is checked by the release run (Chromium is not our code)");
    return;
#endif
    if (system("command -v chromium >/dev/null 2>&1") != 0) {
        SKIP("chromium not installed (sh tools/install-deps.sh --test)");
        return;
    }
    char svg[4200], png[4200], fl[4400], cmd[32768];
    snprintf(svg, sizeof svg, "%s/render.svg", tmpdir);
    snprintf(png, sizeof png, "%s/render.png", tmpdir);
    snprintf(cmd, sizeof cmd, "plan --iters 2000 --svg %s", svg);
    CHECK_EQ_INT(qeil(cmd), 0);
    snprintf(fl, sizeof fl,
             "--headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir=%s/chromium "
             "--window-size=980,700", tmpdir);
    snprintf(cmd, sizeof cmd,
             "timeout 120 chromium %s --screenshot=%s file://%s >/dev/null 2>&1 && "
             "timeout 120 chromium %s --dump-dom file://%s >%s/dom.txt 2>/dev/null",
             fl, png, svg, fl, svg, tmpdir);
    CHECK_EQ_INT(system(cmd), 0);
    /* a blank white 980x700 page screenshots to 3.5 kB (measured with this
     * Chromium); the plan's points, text and map to ~60 kB */
    long n = file_size(png);
    CHECK(n > 20000);
    if (!(n > 20000)) TEST_FAIL_("screenshot %ld B: blank?", n);
    char dom[4300];
    snprintf(dom, sizeof dom, "%s/dom.txt", tmpdir);
    char *d = slurp(dom);
    CHECK(d != NULL);
    if (d) {
        CHECK_CONTAINS(d, "recommended #");
        CHECK_CONTAINS(d, "underutilization");
    }
    free(d);
}

/* qeil probe --svg: each unit's roofline, one roof per data type, with a
 * model's prefill and decode points; --platform draws a profile without
 * measuring (docs/probe.md, "Roofline picture"). */
TEST(probe_svg_draws_a_profile)
{
    char svg[4200], args[4400];
    snprintf(svg, sizeof svg, "%s/roof.svg", tmpdir);
    snprintf(args, sizeof args, "probe --svg %s --platform profiles/example-dgpu.json -m llama-3.2-1b", svg);
    CHECK_EQ_INT(qeil(args), 0);
    /* the table: the roofs, then where the points land (f16 model) */
    CHECK_CONTAINS(out_text, "roofline of example-dgpu (2 units");
    CHECK_CONTAINS(out_text, "dgpu           gpu   int4");
    CHECK_CONTAINS(out_text, "prefill of P=512 tokens 174.2 ops/B");
    CHECK_CONTAINS(out_text, "cpu            prefill f16              2000.0  compute");
    CHECK_CONTAINS(out_text, "dgpu           decode  f16               522.7  memory");
    CHECK_CONTAINS(err_text, "drawn to ");
    char *t = slurp(svg);
    CHECK(t != NULL);
    if (!t) return;
    CHECK_CONTAINS(t, "<svg xmlns=\"http://www.w3.org/2000/svg\"");
    CHECK_CONTAINS(t, "</svg>");
    CHECK_CONTAINS(t, "qeil probe: roofline of example-dgpu");
    CHECK_CONTAINS(t, "cpu (cpu, pool ddr5");
    CHECK_CONTAINS(t, "dgpu (gpu, pool vram");
    CHECK_CONTAINS(t, "int4 640 Tops/s");
    CHECK_CONTAINS(t, "f32, f16 2 Tops/s"); /* equal peaks share one roof */
    CHECK_CONTAINS(t, "512 GB/s");
    CHECK_CONTAINS(t, "in f16: prefill 89.2 Tops/s (memory-bound), decode 523 Gops/s (memory-bound)");
    free(t);
    /* without a model: the roofs only */
    snprintf(args, sizeof args, "probe --svg %s --platform qeil-laptop", svg);
    CHECK_EQ_INT(qeil(args), 0);
    t = slurp(svg);
    CHECK_CONTAINS(t, "rtx-pro-5000 (gpu");
    CHECK(t && !strstr(t, "-bound)") && !strstr(t, ">decode<"));
    free(t);
}

TEST(probe_svg_rejects_bad_use)
{
    /* drawing options need --svg; the workload options need -m */
    CHECK_EQ_INT(qeil("probe --platform qeil-laptop"), 2);
    CHECK_CONTAINS(err_text, "--platform: only with --svg FILE");
    CHECK_EQ_INT(qeil("probe -m gpt2-125m"), 2);
    CHECK_CONTAINS(err_text, "--model: only with --svg FILE");
    CHECK_EQ_INT(qeil("probe --svg x.svg --platform qeil-laptop --prompt-tokens 8"), 2);
    CHECK_CONTAINS(err_text, "--prompt-tokens: only with -m MODEL");
    /* --platform measures nothing: a measurement option is refused by name */
    CHECK_EQ_INT(qeil("probe --svg x.svg --platform qeil-laptop --quick"), 2);
    CHECK_CONTAINS(err_text, "'--quick' does not apply");
    CHECK_EQ_INT(qeil("probe --svg x.svg --platform qeil-laptop -t 1"), 2);
    CHECK_CONTAINS(err_text, "'-t' does not apply");
    /* the file, the model and the workload are checked before measuring */
    CHECK_EQ_INT(qeil("probe --quick --svg /nonexistent-dir/x.svg"), 1);
    CHECK_CONTAINS(err_text, "--svg");
    CHECK_CONTAINS(err_text, "/nonexistent-dir");
    CHECK(!strstr(err_text, "triad"));
    char svg[4200], args[4400];
    snprintf(svg, sizeof svg, "%s/never.svg", tmpdir);
    snprintf(args, sizeof args, "probe --quick --svg %s -m no-such-model", svg);
    CHECK_EQ_INT(qeil(args), 1);
    CHECK_CONTAINS(err_text, "no-such-model");
    CHECK(!strstr(err_text, "triad"));
    snprintf(args, sizeof args, "probe --quick --svg %s -m gpt2-125m --prompt-tokens 1048576", svg);
    CHECK_EQ_INT(qeil(args), 2);
    CHECK_CONTAINS(err_text, "prompt_tokens: 1048576 is out of range");
    CHECK_EQ_INT(qeil("probe --svg -m gpt2-125m --platform qeil-laptop"), 2);
    CHECK_CONTAINS(err_text, "--svg: '-m' looks like an option");
    CHECK_EQ_INT(qeil("probe --svg x.svg --platform no-such-platform"), 1);
    CHECK_CONTAINS(err_text, "--platform: ");
}

/* Measured, then drawn: --output json stays one JSON document. */
TEST(probe_svg_after_measuring)
{
    char svg[4200], args[4400];
    snprintf(svg, sizeof svg, "%s/measured.svg", tmpdir);
    snprintf(args, sizeof args, "probe --quick --svg %s -m gpt2-125m --output json", svg);
    CHECK_EQ_INT(qeil(args), 0);
    cJSON *j = cJSON_Parse(out_text);
    CHECK(j != NULL);
    cJSON_Delete(j);
    char *t = slurp(svg);
    CHECK(t != NULL);
    if (!t) return;
    CHECK_CONTAINS(t, "gpt2-125m, measured profile: prefill of P=512 tokens");
    CHECK_CONTAINS(t, "compute figures: measured");
    CHECK_CONTAINS(t, "in f16: prefill ");
    free(t);
}

TEST(probe_svg_renders_in_chromium)
{
#if defined(__SANITIZE_ADDRESS__)
    SKIP("rendering is checked by the release run (Chromium is not our code)");
    return;
#endif
    if (system("command -v chromium >/dev/null 2>&1") != 0) {
        SKIP("chromium not installed (sh tools/install-deps.sh --test)");
        return;
    }
    char svg[4200], png[4200], fl[4400], cmd[32768];
    snprintf(svg, sizeof svg, "%s/roof-render.svg", tmpdir);
    snprintf(png, sizeof png, "%s/roof-render.png", tmpdir);
    snprintf(cmd, sizeof cmd, "probe --svg %s --platform qeil-laptop -m llama-3.1-8b-q4", svg);
    CHECK_EQ_INT(qeil(cmd), 0);
    snprintf(fl, sizeof fl,
             "--headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir=%s/chromium "
             "--window-size=980,820", tmpdir);
    snprintf(cmd, sizeof cmd,
             "timeout 120 chromium %s --screenshot=%s file://%s >/dev/null 2>&1 && "
             "timeout 120 chromium %s --dump-dom file://%s >%s/roof-dom.txt 2>/dev/null",
             fl, png, svg, fl, svg, tmpdir);
    CHECK_EQ_INT(system(cmd), 0);
    /* a blank white page screenshots to ~3.5 kB; four panels of roofs,
     * points and text to ~110 kB (measured with this Chromium) */
    long n = file_size(png);
    CHECK(n > 20000);
    if (!(n > 20000)) TEST_FAIL_("screenshot %ld B: blank?", n);
    char dom[4300];
    snprintf(dom, sizeof dom, "%s/roof-dom.txt", tmpdir);
    char *d = slurp(dom);
    CHECK(d != NULL);
    if (d) {
        CHECK_CONTAINS(d, "roofline of qeil-laptop");
        CHECK_CONTAINS(d, "rtx-pro-5000 (gpu");
        CHECK_CONTAINS(d, "decode");
    }
    free(d);
}

TEST(plan_from_gguf_file)
{
    char path[4200], args[4400];
    snprintf(path, sizeof path, "%s/tiny.gguf", tmpdir);
    CHECK_EQ_INT(write_tiny_gguf(path), 0);
    snprintf(args, sizeof args, "--iters 1000 --model %s --prompt-tokens 64 --gen-tokens 16", path);
    cJSON *j = plan_json(args);
    CHECK(j != NULL);
    if (!j) {
        TEST_FAIL_("stderr: %s", err_text ? err_text : "");
        return;
    }
    cJSON *md = cJSON_GetObjectItem(j, "model");
    CHECK_EQ_INT((int)cJSON_GetNumberValue(cJSON_GetObjectItem(md, "blocks")), 3);
    cJSON *p0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "front"), 0);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(p0, "units")), 5);
    cJSON_Delete(j);
    /* a corrupt file is a clean failure naming the file */
    FILE *f = fopen(path, "r+b");
    CHECK(f != NULL);
    if (f) {
        fputs("XXXX", f);
        fclose(f);
    }
    char plan_args[4500];
    snprintf(plan_args, sizeof plan_args, "plan %s", args);
    CHECK_EQ_INT(qeil(plan_args), 1);
    CHECK_CONTAINS(err_text, "gguf");
}

/* probe -o is checked before the measurement, and never replaces a FIFO
 * (or device, or link) with a regular file. */
TEST(probe_output_checked_first)
{
    char fifo[4200], args[4400];
    CHECK_EQ_INT(qeil("probe --quick -o /nonexistent/dir/x.json"), 1);
    CHECK_CONTAINS(err_text, "/nonexistent/dir");
    CHECK(strstr(err_text ? err_text : "", "done") == NULL); /* no progress: not run */
    CHECK(strstr(out_text ? out_text : "", "GFLOP/s") == NULL);
    snprintf(fifo, sizeof fifo, "%s/p-fifo", tmpdir);
    CHECK_EQ_INT(mkfifo(fifo, 0644), 0);
    snprintf(args, sizeof args, "probe --quick -o %s", fifo);
    CHECK_EQ_INT(qeil(args), 1);
    CHECK_CONTAINS(err_text, "FIFO");
    CHECK(strstr(out_text ? out_text : "", "GFLOP/s") == NULL);
    struct stat sb;
    CHECK(lstat(fifo, &sb) == 0 && S_ISFIFO(sb.st_mode));
    unlink(fifo);
}

/* --root: a fixture topology makes this machine's two CPUs a big and a
 * little cluster; the profile then has one unit per cluster, and plan
 * takes it. A root that is not a directory is a usage error. */
TEST(probe_root_clusters)
{
    CHECK_EQ_INT(qeil("probe --quick --root /nonexistent/root"), 2);
    CHECK_CONTAINS(err_text, "--root");
    CHECK_CONTAINS(err_text, "/nonexistent/root");
    if (access("tests/data/clusters/two-cpu", R_OK) != 0) SKIP("run from the repository root");
    if (sysconf(_SC_NPROCESSORS_ONLN) < 2) SKIP("needs 2 CPUs");
    char path[4200], args[4400];
    snprintf(path, sizeof path, "%s/probe-clusters.json", tmpdir);
    snprintf(args, sizeof args, "probe --quick --root tests/data/clusters/two-cpu -o %s", path);
    CHECK_EQ_INT(qeil(args), 0);
    CHECK_CONTAINS(out_text, "core clusters (by cpu_capacity");
    char *json = slurp(path);
    CHECK(json != NULL);
    if (!json) return;
    CHECK_CONTAINS(json, "\"cpu-big\"");
    CHECK_CONTAINS(json, "\"cpu-little\"");
    free(json);
    snprintf(args, sizeof args, "plan --iters 500 --platform %s --model qwen2-0.5b", path);
    CHECK_EQ_INT(qeil(args), 0);
    CHECK_CONTAINS(out_text, "Recommended");
}

TEST(probe_profile_feeds_plan)
{
    char path[4200], args[4400];
    snprintf(path, sizeof path, "%s/probe.json", tmpdir);
    snprintf(args, sizeof args, "probe --quick -o %s", path);
    CHECK_EQ_INT(qeil(args), 0);
    CHECK_CONTAINS(out_text, "GFLOP/s");
    snprintf(args, sizeof args, "plan --iters 500 --platform %s --model qwen2-0.5b", path);
    CHECK_EQ_INT(qeil(args), 0);
    CHECK_CONTAINS(out_text, "Recommended");
    /* a bad value in the profile is named */
    char *json = slurp(path);
    CHECK(json != NULL);
    if (!json) return;
    char *hit = strstr(json, "\"eta_mem\"");
    CHECK(hit != NULL);
    if (hit) {
        char *colon = strchr(hit, ':');
        char *end = strpbrk(colon, ",}");
        FILE *f = fopen(path, "wb");
        fwrite(json, 1, (size_t)(colon + 1 - json), f);
        fputs(" 1.5", f);
        fputs(end, f);
        fclose(f);
        snprintf(args, sizeof args, "plan --iters 500 --platform %s", path);
        CHECK_EQ_INT(qeil(args), 1);
        CHECK_CONTAINS(err_text, "eta_mem");
        CHECK_CONTAINS(err_text, "1.5");
    }
    free(json);
}

/* The fastest probe that still measures: 1 thread, 1 MiB sweep, 5 ms. */
#define PROBE_FAST "probe -t 1 --max-ws 1 --min-time 0.005"

/* --devices: a bad set is a usage error naming the option, the value and
 * the allowed sets; cpu measures no Vulkan device and says so. */
TEST(probe_devices_option)
{
    CHECK_EQ_INT(qeil("probe --devices gpu"), 2);
    CHECK_CONTAINS(err_text, "--devices: 'gpu' is not a device set (allowed all, cpu)");
    CHECK(strstr(err_text ? err_text : "", "done") == NULL); /* nothing measured */
    CHECK_EQ_INT(qeil("probe --devices"), 2);
    CHECK_CONTAINS(err_text, "--devices");
    CHECK_EQ_INT(qeil("probe --devices ''"), 2);
    CHECK_EQ_INT(qeil(PROBE_FAST " --devices cpu --output json"), 0);
    cJSON *j = cJSON_Parse(out_text ? out_text : "");
    CHECK(j != NULL);
    if (!j) return;
    const cJSON *g = cJSON_GetObjectItem(j, "gpus");
    CHECK(cJSON_IsString(cJSON_GetObjectItem(g, "status")));
    CHECK_CONTAINS(cJSON_GetStringValue(cJSON_GetObjectItem(g, "status")), "not asked");
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(g, "devices")), 0);
    const cJSON *units = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "profile"), "units");
    CHECK_EQ_INT(cJSON_GetArraySize(units), 1);
    cJSON_Delete(j);
}

/* Without Vulkan (no loader; a loader with no driver) probe still
 * succeeds, with the CPU only, and says why in the table and the JSON. */
TEST(probe_without_vulkan)
{
    char cmd[16800];
    snprintf(cmd, sizeof cmd, "QEIL_VULKAN_LIB=/nonexistent/libvulkan.so.1 %s " PROBE_FAST
             " >%s/out 2>%s/err </dev/null", qeil_cmd, tmpdir, tmpdir);
    int st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    char path[4200];
    snprintf(path, sizeof path, "%s/out", tmpdir);
    char *out = slurp(path);
    CHECK_CONTAINS(out, "Vulkan devices: not measured: vulkan: cannot load /nonexistent/libvulkan.so.1");
    CHECK_CONTAINS(out, "profile: 1 unit;");
    free(out);
    snprintf(cmd, sizeof cmd, "VK_ICD_FILENAMES=/nonexistent/icd.json %s " PROBE_FAST
             " --output json >%s/out 2>%s/err </dev/null", qeil_cmd, tmpdir, tmpdir);
    st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    out = slurp(path);
    cJSON *j = cJSON_Parse(out ? out : "");
    free(out);
    CHECK(j != NULL);
    if (!j) return;
    const cJSON *g = cJSON_GetObjectItem(j, "gpus");
    CHECK(cJSON_IsString(cJSON_GetObjectItem(g, "status"))); /* the reason, whatever it is */
    CHECK_CONTAINS(cJSON_GetStringValue(cJSON_GetObjectItem(g, "status")), "vulkan");
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(g, "devices")), 0);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "profile"), "units")),
                 1);
    cJSON_Delete(j);
}

/* The JSON (written through cJSON) keeps its keys; with a Vulkan device
 * the profile has a unit on vk0, and plan takes the profile with both. */
TEST(probe_json_and_vk0_plan)
{
    char path[4200], args[4400];
    snprintf(path, sizeof path, "%s/probe-vk.json", tmpdir);
    snprintf(args, sizeof args, PROBE_FAST " --output json -o %s", path);
    CHECK_EQ_INT(qeil(args), 0);
    cJSON *j = cJSON_Parse(out_text ? out_text : "");
    CHECK(j != NULL);
    if (!j) return;
    static const char *const keys[] = {"version", "command", "cpu", "params", "kernels", "units",
                                       "compute", "clusters", "bandwidth", "caches", "dram",
                                       "theory", "gpus", "provenance", "profile_path", "profile"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
        if (!cJSON_HasObjectItem(j, keys[k])) TEST_FAIL_("probe JSON: no key '%s'", keys[k]);
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "command")), "probe");
    const cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "compute"), 0);
    CHECK_NEAR(cJSON_GetNumberValue(cJSON_GetObjectItem(c0, "threads")), 1, 0, 0);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(c0, "f32_flops")) > 0);
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "profile_path")), path);
    const cJSON *devs = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "gpus"), "devices");
    const cJSON *units = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "profile"), "units");
    if (cJSON_GetArraySize(devs) == 0) {
        cJSON_Delete(j);
        SKIP("no Vulkan device");
    }
    const cJSON *d0 = cJSON_GetArrayItem(devs, 0);
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(d0, "device")), "vk0");
    const double f32 = cJSON_GetNumberValue(cJSON_GetObjectItem(d0, "f32_flops"));
    CHECK(isfinite(f32) && f32 > 0);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(d0, "bw_Bps")) > 0);
    CHECK(cJSON_IsString(cJSON_GetObjectItem(cJSON_GetObjectItem(d0, "shaders"), "f32")));
    CHECK(cJSON_IsString(cJSON_GetObjectItem(d0, "timing")));
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(d0, "error")));
    const char *unit = cJSON_GetStringValue(cJSON_GetObjectItem(d0, "unit"));
    CHECK(unit != NULL);
    char unit_name[64] = "";
    if (unit) snprintf(unit_name, sizeof unit_name, "%s", unit);
    CHECK_EQ_INT(cJSON_GetArraySize(units), 2);
    const cJSON *u1 = cJSON_GetArrayItem(units, 1);
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(u1, "device")), "vk0");
    if (unit) CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(u1, "name")), unit);
    cJSON_Delete(j);
    snprintf(args, sizeof args, "plan --iters 500 --platform %s -m qwen2-0.5b", path);
    CHECK_EQ_INT(qeil(args), 0);
    CHECK_CONTAINS(out_text, "(2 units)");
    CHECK_CONTAINS(out_text, "Recommended");
    /* the plan's platform lists both units, the second standing for vk0 */
    snprintf(args, sizeof args, "plan --iters 500 --platform %s -m qwen2-0.5b --output json", path);
    CHECK_EQ_INT(qeil(args), 0);
    j = cJSON_Parse(out_text ? out_text : "");
    CHECK(j != NULL);
    if (!j) return;
    const cJSON *pu = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "platform"), "units");
    CHECK_EQ_INT(cJSON_GetArraySize(pu), 2);
    char *pj = cJSON_PrintUnformatted(pu);
    CHECK_CONTAINS(pj, "\"cpu\"");
    if (unit_name[0]) CHECK_CONTAINS(pj, unit_name);
    free(pj);
    cJSON_Delete(j);
}

/* The library's log reaches stderr through the CLI's one hook: a restricted
 * exhaustive search warns that its result is no ground truth (apple-m3 with
 * qwen2-0.5b: 7.6e7 contiguous-segment plans > the 5e7 budget, restricted
 * to a few thousand, 0.2 s); the global -q silences it, -v adds the
 * information lines; errors print once (by the command, not the hook). */
static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; p && (p = strstr(p, needle)) != NULL; p += strlen(needle)) n++;
    return n;
}

TEST(library_warnings_reach_stderr)
{
    const char *restricted = "plan --platform apple-m3 -m qwen2-0.5b --method exhaustive";
    char a[256];
    CHECK_EQ_INT(qeil(restricted), 0);
    CHECK_CONTAINS(err_text, "qeil plan: warning: exhaustive: ");
    CHECK_CONTAINS(err_text, "not a ground truth");
    snprintf(a, sizeof a, "-q %s", restricted);
    CHECK_EQ_INT(qeil(a), 0);
    CHECK(err_text && strstr(err_text, "ground truth") == NULL);
    CHECK_CONTAINS(out_text, "searched 37460 plans"); /* the same search, quietly */
    snprintf(a, sizeof a, "--quiet %s", restricted);
    CHECK_EQ_INT(qeil(a), 0);
    CHECK(err_text && strstr(err_text, "warning") == NULL);
    /* information lines: only with -v (a full enumeration is no warning) */
    const char *small = "plan --platform rpi5-hailo10h -m gpt2-125m --method exhaustive";
    CHECK_EQ_INT(qeil(small), 0);
    CHECK(err_text && strstr(err_text, "info:") == NULL);
    snprintf(a, sizeof a, "-v %s", small);
    CHECK_EQ_INT(qeil(a), 0);
    CHECK_CONTAINS(err_text, "qeil plan: info: exhaustive: ");
    /* global options go before the command name; after it they are the
     * command's (plan has no -q), and -q with -v is a contradiction */
    CHECK_EQ_INT(qeil("plan -q"), 2);
    CHECK_CONTAINS(err_text, "unknown option '-q'");
    CHECK_EQ_INT(qeil("-q -v plan"), 2);
    CHECK_CONTAINS(err_text, "-q and -v");
    CHECK_EQ_INT(qeil("-q"), 2);
    CHECK_CONTAINS(err_text, "usage: qeil");
    CHECK_EQ_INT(qeil("-v --version"), 0);
    CHECK_CONTAINS(out_text, "qeil 0.");
    /* a failure is reported once, by the command, even with -v */
    CHECK_EQ_INT(qeil("-v plan --platform no-such-platform"), 1);
    CHECK_EQ_INT(count_of(err_text, "no-such-platform"), 1);
}

/* The option tables (cli/opt.c): --name=VALUE and --name VALUE alike, a
 * flag takes no value, a missing value, a repeatable option's limit, an
 * argument that is no option, --help anywhere. */
TEST(option_table_parser)
{
    CHECK_EQ_INT(qeil("plan --samples=0"), 2);
    CHECK_CONTAINS(err_text, "--samples: 0 is out of range (allowed 1..256)");
    CHECK_EQ_INT(qeil("plan --method=magic"), 2);
    CHECK_CONTAINS(err_text, "--method: 'magic' is not one of pgsam|greedy|standard|exhaustive|random");
    CHECK_EQ_INT(qeil("plan --force=1"), 2);
    CHECK_CONTAINS(err_text, "unknown option '--force=1'");
    CHECK_EQ_INT(qeil("plan --seed"), 2);
    CHECK_CONTAINS(err_text, "option --seed needs a value");
    CHECK_EQ_INT(qeil("plan extra"), 2);
    CHECK_CONTAINS(err_text, "unexpected argument 'extra'");
    CHECK_EQ_INT(qeil("plan --iters 200 --bogus --help"), 2); /* left to right */
    CHECK_CONTAINS(err_text, "unknown option '--bogus'");
    CHECK_EQ_INT(qeil("plan --iters 200 --help --bogus"), 0);
    CHECK_CONTAINS(out_text, "usage: qeil plan");
    /* the same plan from either spelling */
    CHECK_EQ_INT(qeil("plan --output=csv --method=greedy --samples=2 --seed=7"), 0);
    char *a = out_text ? strdup(out_text) : NULL;
    CHECK_EQ_INT(qeil("plan --output csv --method greedy --samples 2 --seed 7"), 0);
    CHECK_EQ_STR(a, out_text);
    CHECK(a && strlen(a) > 100);
    free(a);
    /* --fail: repeatable, QEIL_MAX_UNITS (8) at most */
    char args[512] = "plan";
    for (int k = 0; k < 9; k++) strcat(args, " --fail x");
    CHECK_EQ_INT(qeil(args), 2);
    CHECK_CONTAINS(err_text, "--fail: at most 8 units");
    /* a float option with an open end (thermal-sim --minutes (0, 1440]) */
    CHECK_EQ_INT(qeil("thermal-sim --minutes=0"), 2);
    CHECK_CONTAINS(err_text, "--minutes: 0 is out of range (allowed (0, 1440])");
}

/* docs/cli.md lists every option each command's --help (generated from
 * its option table) lists, in that command's section. */
static void check_doc_section(const char *doc, const char *cmd)
{
    char head[64], a[128];
    snprintf(head, sizeof head, "\n## qeil %s\n", cmd);
    const char *sec = doc ? strstr(doc, head) : NULL;
    CHECK(sec != NULL);
    if (!sec) return;
    sec += strlen(head);
    const char *end = strstr(sec, "\n## ");
    size_t len = end ? (size_t)(end - sec) : strlen(sec);
    snprintf(a, sizeof a, "%s --help", cmd);
    CHECK_EQ_INT(qeil(a), 0);
    for (const char *l = out_text; l && *l;) {
        const char *nl = strchr(l, '\n');
        size_t n = nl ? (size_t)(nl - l) : strlen(l);
        /* "  -m, --model FILE  ..." or "  --seed S  ..." */
        if (n > 3 && l[0] == ' ' && l[1] == ' ' && l[2] == '-') {
            char opt[64], alias[8] = "";
            const char *p = l + 2;
            if (p[1] != '-' && p[2] == ',') {
                snprintf(alias, sizeof alias, "%.2s", p);
                p += 4;
            }
            size_t k = strcspn(p, " \n");
            snprintf(opt, sizeof opt, "%.*s", (int)(k < 63 ? k : 63), p);
            int found = 0;
            for (int pass = 0; pass < 2 && !found; pass++) {
                const char *name = pass ? alias : opt;
                size_t nl2 = strlen(name);
                for (const char *q = sec; nl2 && q < sec + len && !found; q++) {
                    q = strstr(q, name);
                    if (!q || q >= sec + len) break;
                    char after = q[nl2], before = q > sec ? q[-1] : ' ';
                    found = !(after == '-' || (after >= 'a' && after <= 'z')) && before != '-' &&
                            !(before >= 'a' && before <= 'z');
                }
            }
            if (!found && strcmp(opt, "--help") != 0)
                TEST_FAIL_("docs/cli.md, section 'qeil %s', does not mention %s\n", cmd, opt);
        }
        l = nl ? nl + 1 : NULL;
    }
}

TEST(docs_list_every_option)
{
    char path[4200];
    snprintf(path, sizeof path, "%.4080s/../../docs/cli.md", test_dir);
    char *doc = slurp(path);
    if (!doc) doc = slurp("docs/cli.md");
    CHECK(doc != NULL);
    static const char *cmds[] = {"plan",    "platforms",  "models", "probe",   "sensors",
                                 "devices", "generate",   "perplexity", "bench", "mkmodel",
                                 "eval",    "serve",      "calibrate",  "thermal-sim"};
    for (size_t k = 0; k < sizeof cmds / sizeof *cmds; k++) check_doc_section(doc, cmds[k]);
    free(doc);
}

int main(int argc, char **argv)
{
    (void)argc;
    if (cli_harness_init(argv[0]) != 0) return 1;
    /* build/tests/test_cli -> tests/run.sh */
    snprintf(run_sh, sizeof run_sh, "%.4080s/../../tests/run.sh", test_dir);
    RUN(help_and_usage_errors);
    RUN(float_options_are_strict);
    RUN(runner_fails_when_it_ran_nothing);
    RUN(plan_rejects_bad_numbers);
    RUN(plan_rejects_bad_inputs);
    RUN(plan_json_has_the_contract);
    RUN(plan_is_deterministic);
    RUN(plan_table_and_csv);
    RUN(plan_with_failed_unit_avoids_it);
    RUN(catalogs_list);
    RUN(plan_explains_itself);
    RUN(plan_svg);
    RUN(plan_svg_renders_in_chromium);
    RUN(probe_svg_draws_a_profile);
    RUN(probe_svg_rejects_bad_use);
    RUN(probe_svg_after_measuring);
    RUN(probe_svg_renders_in_chromium);
    RUN(plan_from_gguf_file);
    RUN(hostile_model_name);
    RUN(probe_output_checked_first);
    RUN(probe_profile_feeds_plan);
    RUN(probe_root_clusters);
    RUN(probe_devices_option);
    RUN(probe_without_vulkan);
    RUN(probe_json_and_vk0_plan);
    RUN(library_warnings_reach_stderr);
    RUN(option_table_parser);
    RUN(docs_list_every_option);
    cli_harness_done();
    return test_summary("cli");
}
