/* test_eval_cli.c — `qeil eval` end to end: help, usage errors (exit 2),
 * bad task files (exit 1 naming the line and field), an evaluation of three
 * problems with a tiny random-weight model (`qeil mkmodel --preset
 * tiny-llama`): the JSON contract with per-problem records and provenance
 * labels, --compare with its three configurations, and determinism with a
 * fixed seed (the same JSON minus the measured timings, whatever the batch
 * and thread count). Runs the qeil binary of the same build directory
 * (argv[0]/../qeil); the task file is tests/data/eval/tiny.jsonl. */
#include <cjson/cJSON.h>
#include <float.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qeil/qeil.h"
#include "qeil/device.h"
#include "test.h"

#define CLI_HARNESS_TMPDIR "/tmp/qeil-eval-XXXXXX"
#include "cli_harness.h"

static char tasks[4300];
static char model[4200];
static char demo_model[4300], demo_tasks[4300];
static char data_dir[4300]; /* tests/data/eval */

static int write_file(const char *name, const char *text, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    fputs(text, f);
    return fclose(f);
}

TEST(help)
{
    CHECK_EQ_INT(qeilf("eval --help"), 0);
    CHECK_CONTAINS(out_text, "usage: qeil eval");
    CHECK_CONTAINS(out_text, "--compare");
    CHECK_CONTAINS(out_text, "MODELED");
    CHECK_CONTAINS(out_text, "MEASURED");
    CHECK_EQ_INT(qeilf("--help"), 0);
    CHECK_CONTAINS(out_text, "eval");
}

TEST(bad_numbers_and_options_exit_2)
{
    static const struct {
        const char *args, *say1, *say2;
    } t[] = {
        {"eval --tasks t.jsonl", "-m", "required"},
        {"eval -m m.gguf", "--tasks", "required"},
        {"eval -m m.gguf --tasks t.jsonl --samples 0", "--samples", "1..256"},
        {"eval -m m.gguf --tasks t.jsonl --samples 257", "--samples", "257"},
        {"eval -m m.gguf --tasks t.jsonl --samples 8x", "--samples", "8x"},
        {"eval -m m.gguf --tasks t.jsonl --batch 0", "--batch", "1..64"},
        {"eval -m m.gguf --tasks t.jsonl --batch 65", "--batch", "65"},
        {"eval -m m.gguf --tasks t.jsonl -n 0", "-n", "1..65536"},
        {"eval -m m.gguf --tasks t.jsonl --limit 0", "--limit", "1..100000"},
        {"eval -m m.gguf --tasks t.jsonl --temp -1", "--temp", "-1"},
        {"eval -m m.gguf --tasks t.jsonl --top-p 0", "--top-p", "(0, 1]"},
        {"eval -m m.gguf --tasks t.jsonl --seed 1.5", "--seed", "1.5"},
        {"eval -m m.gguf --tasks t.jsonl -t 9999", "-t", "0..256"},
        {"eval -m m.gguf --tasks t.jsonl --select vote", "--select", "vote"},
        {"eval -m m.gguf --tasks t.jsonl --plan magic", "--plan", "pgsam|greedy|standard"},
        {"eval -m m.gguf --tasks t.jsonl --output csv", "--output", "table|json"},
        {"eval -m m.gguf --tasks t.jsonl --compare --select majority", "--compare", "--select"},
        {"eval -m m.gguf --tasks t.jsonl --csvet-delta 0.6", "--csvet-delta", "0..0.5"},
        {"eval -m m.gguf --tasks t.jsonl --arde-lambda -1", "--arde-lambda", "-1"},
        {"eval -m m.gguf --tasks t.jsonl --csvet-delta-late 1", "--csvet-delta-late", "0..0.5"},
        {"eval -m m.gguf --tasks t.jsonl --csvet-late-after 0", "--csvet-late-after", "1..1024"},
        {"eval -m m.gguf --tasks t.jsonl --max-latency 0", "--max-latency", "0"},
        {"eval -m m.gguf --tasks t.jsonl --frobnicate", "unknown option", "--frobnicate"},
        {"eval -m m.gguf --tasks", "--tasks", "needs a value"},
        {"eval -m m.gguf --tasks t.jsonl --format json", "--format", "auto|qeil|gsm8k|arc"},
        {"eval -m m.gguf --tasks t.jsonl --shots 65 --shots-file s.jsonl", "--shots", "0..64"},
        {"eval -m m.gguf --tasks t.jsonl --shots 2", "--shots 2", "--shots-file"},
        {"eval -m m.gguf --tasks t.jsonl --shots-file s.jsonl", "--shots-file", "--shots N"},
        {"eval -m m.gguf --tasks t.jsonl --shots -1 --shots-file s.jsonl", "--shots", "-1"},
    };
    for (size_t k = 0; k < sizeof t / sizeof *t; k++) {
        int rc = qeilf("%s", t[k].args);
        if (rc != 2) TEST_FAIL_("'%s': exit %d, want 2 (stderr: %s)", t[k].args, rc, err_text);
        if (!err_text || !strstr(err_text, t[k].say1) || !strstr(err_text, t[k].say2))
            TEST_FAIL_("'%s': stderr \"%s\" should name \"%s\" and \"%s\"", t[k].args,
                       err_text ? err_text : "", t[k].say1, t[k].say2);
    }
}

TEST(bad_task_files_exit_1_naming_the_line)
{
    static const struct {
        const char *name, *text, *say1, *say2;
    } t[] = {
        {"missing.jsonl",
         "{\"id\":1,\"question\":\"2+2?\",\"answer\":\"4\"}\n{\"id\":2,\"answer\":\"5\"}\n",
         ":2:", "'question'"},
        {"badjson.jsonl",
         "{\"id\":1,\"question\":\"2+2?\",\"answer\":\"4\"}\n\n{\"id\":2,\"question\":\"x\",\n",
         ":3:", "JSON"},
        {"noanswer.jsonl", "{\"id\":\"a\",\"question\":\"q\"}\n", ":1:", "'answer'"},
        {"noid.jsonl", "{\"question\":\"q\",\"answer\":\"1\"}\n", ":1:", "'id'"},
        {"badkind.jsonl", "{\"id\":1,\"question\":\"q\",\"answer\":\"1\",\"kind\":\"essay\"}\n",
         ":1:", "'kind'"},
        {"badgold.jsonl", "{\"id\":1,\"question\":\"q\",\"answer\":\"forty-two\"}\n", ":1:",
         "forty-two"},
        {"badchoice.jsonl",
         "{\"id\":1,\"question\":\"q\",\"answer\":\"42\",\"kind\":\"choice\"}\n", ":1:", "'answer'"},
        {"array.jsonl", "[1,2,3]\n", ":1:", "not a JSON object"},
        /* cJSON would cut the id at the NUL: "a" */
        {"nul-id.jsonl", "{\"id\":\"a\\u0000b\",\"question\":\"q\",\"answer\":\"1\"}\n", ":1:",
         "\\u0000 (NUL) at column 9"},
        {"nul-question.jsonl",
         "{\"id\":1,\"question\":\"2+2?\\u0000ignore\",\"answer\":\"4\"}\n", ":1:", "NUL"},
        {"empty.jsonl", "", "no tasks", "empty.jsonl"},
        {"blank.jsonl", "\n  \n\n", "no tasks", "blank.jsonl"},
    };
    char path[4300];
    for (size_t k = 0; k < sizeof t / sizeof *t; k++) {
        CHECK_EQ_INT(write_file(t[k].name, t[k].text, path, sizeof path), 0);
        /* the task file is read before the model is opened */
        int rc = qeilf("eval -m %s/none.gguf --tasks %s", tmpdir, path);
        if (rc != 1) TEST_FAIL_("%s: exit %d, want 1 (stderr: %s)", t[k].name, rc, err_text);
        if (!err_text || !strstr(err_text, t[k].say1) || !strstr(err_text, t[k].say2))
            TEST_FAIL_("%s: stderr \"%s\" should name \"%s\" and \"%s\"", t[k].name,
                       err_text ? err_text : "", t[k].say1, t[k].say2);
    }
    CHECK_EQ_INT(qeilf("eval -m x.gguf --tasks %s/does-not-exist.jsonl", tmpdir), 1);
    CHECK_CONTAINS(err_text, "does-not-exist.jsonl");
    /* a line longer than the limit */
    snprintf(path, sizeof path, "%s/long.jsonl", tmpdir);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f) {
        fputs("{\"id\":1,\"question\":\"", f);
        for (int i = 0; i < 70000; i++) fputc('x', f);
        fputs("\",\"answer\":\"1\"}\n", f);
        fclose(f);
        CHECK_EQ_INT(qeilf("eval -m x.gguf --tasks %s", path), 1);
        CHECK_CONTAINS(err_text, ":1:");
        CHECK_CONTAINS(err_text, "longer than");
    }
}

TEST(make_tiny_model)
{
    snprintf(model, sizeof model, "%s/tiny.gguf", tmpdir);
    CHECK_EQ_INT(qeilf("mkmodel --preset tiny-llama --type f32 -o %s", model), 0);
    if (test_failed_) model[0] = '\0';
}

/* The JSON of an eval run, or NULL (failure reported). */
static cJSON *eval_json(const char *extra)
{
    int rc = qeilf("eval -m %s --tasks %s --limit 3 -n 16 --samples 4 --output json %s", model,
                   tasks, extra);
    if (rc != 0) {
        TEST_FAIL_("eval %s: exit %d (stderr: %s)", extra, rc, err_text ? err_text : "");
        return NULL;
    }
    cJSON *j = cJSON_Parse(out_text);
    if (!j) TEST_FAIL_("eval %s: stdout is not JSON: %s", extra, out_text ? out_text : "");
    return j;
}

static const char *str_of(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

TEST(eval_json_contract)
{
    if (!model[0]) SKIP("no tiny model");
    cJSON *j = eval_json("--seed 5");
    if (!j) return;
    CHECK_EQ_STR(str_of(j, "seed"), "5");
    CHECK_EQ_STR(str_of(j, "platform"), "qeil-laptop");
    CHECK_EQ_STR(str_of(j, "plan"), "pgsam");
    CHECK_EQ_STR(str_of(j, "select"), "cascade");
    CHECK_EQ_STR(str_of(j, "prompt_format"), "Q: <question>\nA:");
    CHECK(str_of(j, "version") != NULL);
    cJSON *pv = cJSON_GetObjectItem(j, "provenance");
    CHECK_EQ_STR(str_of(pv, "energy_J"), "modeled");
    CHECK_CONTAINS(str_of(pv, "latency_s"), "modeled");
    CHECK_CONTAINS(str_of(pv, "wall_s"), "measured");
    CHECK_CONTAINS(str_of(pv, "wall_s"), "not the target");
    cJSON *su = cJSON_GetObjectItem(j, "summary");
    CHECK_EQ_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(su, "problems")), 3);
    double acc = cJSON_GetNumberValue(cJSON_GetObjectItem(su, "accuracy"));
    CHECK(acc >= 0 && acc <= 1);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(su, "energy_per_problem_J")) > 0);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(su, "latency_s")) > 0);
    CHECK(cJSON_GetObjectItem(su, "ipw") != NULL);
    CHECK(cJSON_GetObjectItem(su, "ece") != NULL);
    CHECK(cJSON_GetObjectItem(su, "pass_at_k") != NULL);
    cJSON *pr = cJSON_GetObjectItem(j, "problems");
    CHECK_EQ_INT(cJSON_GetArraySize(pr), 3);
    static const char *ids[] = {"add-1", "2", "choice-1"};
    static const char *golds[] = {"5", "10", "B"};
    for (int i = 0; i < cJSON_GetArraySize(pr); i++) {
        cJSON *p = cJSON_GetArrayItem(pr, i);
        CHECK_EQ_STR(str_of(p, "id"), ids[i]);
        CHECK_EQ_STR(str_of(p, "gold"), golds[i]);
        CHECK(cJSON_GetObjectItem(p, "chosen") != NULL);
        CHECK(cJSON_IsBool(cJSON_GetObjectItem(p, "correct")));
        double s = cJSON_GetNumberValue(cJSON_GetObjectItem(p, "samples"));
        CHECK(s >= 1 && s <= 4);
        double tk = cJSON_GetNumberValue(cJSON_GetObjectItem(p, "tokens"));
        CHECK(tk >= 0 && tk <= 16 * s);
        CHECK(str_of(p, "stage") != NULL);
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(p, "energy_J")) > 0);
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(p, "latency_s")) > 0);
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(p, "wall_s")) >= 0);
    }
    cJSON_Delete(j);

    /* the table labels every figure */
    CHECK_EQ_INT(qeilf("eval -m %s --tasks %s --limit 2 -n 8 --samples 2 --select majority",
                       model, tasks),
                 0);
    CHECK_CONTAINS(out_text, "accuracy");
    CHECK_CONTAINS(out_text, "pass@k");
    CHECK_CONTAINS(out_text, "[modeled");
    CHECK_CONTAINS(out_text, "[measured");
    CHECK_CONTAINS(err_text, "problem 2/2  accuracy");
}

/* A task id and question holding a byte that is not UTF-8 (0xFF) and an
 * escape sequence (ESC [31m): the JSON stays valid UTF-8 (U+FFFD for the
 * byte), and the table never sends the ESC to the terminal. */
TEST(hostile_task_text)
{
    if (!model[0]) SKIP("no tiny model");
    char path[4300];
    CHECK_EQ_INT(write_file("hostile.jsonl",
                            "{\"id\":\"\xff\\u001b[31mred\",\"question\":\"2+3=\xc3?\\u001b]0;x\","
                            "\"answer\":\"5\"}\n",
                            path, sizeof path),
                 0);
    CHECK_EQ_INT(qeilf("eval -m %s --tasks %s -n 4 --samples 2 --output json", model, path), 0);
    CHECK(out_text && utf8_valid(out_text));
    cJSON *j = cJSON_Parse(out_text);
    CHECK(j != NULL);
    cJSON *p0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "problems"), 0);
    CHECK_EQ_STR(str_of(p0, "id"), "\xEF\xBF\xBD\x1b[31mred");
    cJSON_Delete(j);
    CHECK_EQ_INT(qeilf("eval -m %s --tasks %s -n 4 --samples 2 -v", model, path), 0);
    CHECK(out_text && utf8_valid(out_text));
    CHECK(out_text && !strchr(out_text, 0x1b));
    CHECK_CONTAINS(out_text, "\\x1b[31m"); /* shown, cut to the column width */
    /* a path that is not UTF-8 goes into the JSON too */
    char odd[4300], cmd[9000];
    snprintf(odd, sizeof odd, "%s/t\xfe.jsonl", tmpdir);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", tasks, odd);
    CHECK_EQ_INT(system(cmd), 0);
    CHECK_EQ_INT(qeilf("eval -m %s --tasks '%s' --limit 1 -n 4 --samples 2 --output json", model,
                       odd),
                 0);
    CHECK(out_text && utf8_valid(out_text));
    j = cJSON_Parse(out_text);
    CHECK(j != NULL);
    CHECK_CONTAINS(str_of(j, "tasks"), "t\xEF\xBF\xBD.jsonl");
    cJSON_Delete(j);
}

/* -n beyond the context (tiny-llama: 256 tokens) is not an error: the
 * planning workload takes what fits after the prompt, with a warning. */
TEST(max_tokens_beyond_the_context_plans_what_fits)
{
    if (!model[0]) SKIP("no tiny model");
    CHECK_EQ_INT(qeilf("eval -m %s --tasks %s --limit 1 -n 250 --samples 2 --output json", model,
                       tasks),
                 0);
    CHECK_CONTAINS(err_text, "warning");
    CHECK_CONTAINS(err_text, "-n 250");
    cJSON *j = cJSON_Parse(out_text ? out_text : "");
    CHECK(j != NULL);
    double pg = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "plan_gen_tokens"));
    CHECK(pg >= 1 && pg < 250);
    CHECK_EQ_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "max_tokens")), 250);
    cJSON *w = cJSON_GetObjectItem(j, "warnings");
    CHECK_EQ_INT(cJSON_GetArraySize(w), 1);
    CHECK_CONTAINS(cJSON_GetStringValue(cJSON_GetArrayItem(w, 0)), "context of 256");
    cJSON_Delete(j);
    /* within the context: no warning, the plan uses -n as given */
    CHECK_EQ_INT(qeilf("eval -m %s --tasks %s --limit 1 -n 16 --samples 2 --output json", model,
                       tasks),
                 0);
    CHECK(strstr(err_text ? err_text : "", "warning") == NULL);
    j = cJSON_Parse(out_text ? out_text : "");
    CHECK_EQ_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "plan_gen_tokens")), 16);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(j, "warnings")), 0);
    cJSON_Delete(j);
    /* the table says it too */
    CHECK_EQ_INT(qeilf("eval -m %s --tasks %s --limit 1 -n 250 --samples 2", model, tasks), 0);
    CHECK_CONTAINS(out_text, "warning: -n 250");
}

/* Remove what is measured (it differs run to run) and print the rest. */
static char *without_timings(cJSON *j)
{
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(j, "summary"), "wall_s");
    cJSON *pr = cJSON_GetObjectItem(j, "problems");
    for (int i = 0; i < cJSON_GetArraySize(pr); i++)
        cJSON_DeleteItemFromObject(cJSON_GetArrayItem(pr, i), "wall_s");
    cJSON_DeleteItemFromObject(j, "batch");
    return cJSON_PrintUnformatted(j);
}

TEST(eval_is_deterministic)
{
    if (!model[0]) SKIP("no tiny model");
    /* a wide distribution so the seed matters */
    const char *opt[] = {"--seed 11 --temp 1.5 --top-k 0 --select majority",
                         "--seed 11 --temp 1.5 --top-k 0 --select majority -t 1 --batch 1",
                         "--seed 11 --temp 1.5 --top-k 0 --select majority -t 2 --batch 3",
                         "--seed 12 --temp 1.5 --top-k 0 --select majority"};
    char *s[4] = {NULL, NULL, NULL, NULL};
    for (int k = 0; k < 4; k++) {
        cJSON *j = eval_json(opt[k]);
        if (j) s[k] = without_timings(j);
        cJSON_Delete(j);
    }
    if (s[0] && s[1] && s[2] && s[3]) {
        CHECK_EQ_STR(s[0], s[1]);
        CHECK_EQ_STR(s[0], s[2]);
        CHECK(strcmp(s[0], s[3]) != 0); /* another seed, other samples */
    }
    for (int k = 0; k < 4; k++) free(s[k]);
}

TEST(compare_runs_three_configurations)
{
    if (!model[0]) SKIP("no tiny model");
    CHECK_EQ_INT(qeilf("eval -m %s --tasks %s --limit 3 -n 16 --samples 4 --compare", model,
                       tasks),
                 0);
    CHECK_CONTAINS(out_text, "standard");
    CHECK_CONTAINS(out_text, "v1");
    CHECK_CONTAINS(out_text, "v2");
    CHECK_CONTAINS(out_text, "v2 vs standard");
    CHECK_CONTAINS(out_text, "MODELED");
    CHECK_CONTAINS(out_text, "MEASURED");
    /* -v adds one line per problem */
    CHECK_EQ_INT(qeilf("eval -m %s --tasks %s --limit 3 -n 16 --samples 4 --compare -v", model,
                       tasks),
                 0);
    CHECK_CONTAINS(out_text, "DECIDED BY");
    CHECK_CONTAINS(out_text, "add-1 ");
    CHECK_CONTAINS(out_text, "What is 2 + 3?");

    /* greedy: every sample of a problem is the same text, so once the
     * cascade has an answer it stops after its first batch, while majority
     * draws all K */
    cJSON *j = eval_json("--compare --temp 0 --samples 8 --batch 2");
    if (!j) return;
    cJSON *cf = cJSON_GetObjectItem(j, "configurations");
    CHECK_EQ_INT(cJSON_GetArraySize(cf), 3);
    static const char *names[] = {"standard", "v1", "v2"};
    static const char *plans[] = {"standard", "greedy", "pgsam"};
    static const char *sels[] = {"majority", "majority", "cascade"};
    for (int i = 0; i < 3 && i < cJSON_GetArraySize(cf); i++) {
        cJSON *c = cJSON_GetArrayItem(cf, i);
        CHECK_EQ_STR(str_of(c, "name"), names[i]);
        CHECK_EQ_STR(str_of(c, "plan"), plans[i]);
        CHECK_EQ_STR(str_of(c, "select"), sels[i]);
        CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(c, "problems")), 3);
    }
    /* v2's plan is the lowest-energy PGSAM plan no slower than the
     * standard plan on the planning workload (or the knee when none is) */
    char same_plan[64] = "";
    if (cJSON_GetArraySize(cf) == 3) {
        cJSON *sp = cJSON_GetObjectItem(cJSON_GetArrayItem(cf, 0), "plan_on_planning_workload");
        cJSON *v2 = cJSON_GetArrayItem(cf, 2);
        cJSON *vp = cJSON_GetObjectItem(v2, "plan_on_planning_workload");
        double ls = cJSON_GetNumberValue(cJSON_GetObjectItem(sp, "latency_s"));
        double lv = cJSON_GetNumberValue(cJSON_GetObjectItem(vp, "latency_s"));
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(v2, "plan_max_latency_s")) == ls);
        const char *rule = str_of(v2, "plan_rule");
        CHECK(rule && (strcmp(rule, "max_latency") == 0 || strcmp(rule, "knee") == 0));
        if (rule && strcmp(rule, "max_latency") == 0) {
            CHECK(lv <= ls);
            /* cJSON prints a double with 15 digits when they read back
             * within DBL_EPSILON (relative), so ls may be an ulp or two
             * below the plan's latency: bound by a few ulps above it */
            snprintf(same_plan, sizeof same_plan, "--max-latency %.17g", ls * (1.0 + 8 * DBL_EPSILON));
        }
    }
    cJSON *v = cJSON_GetObjectItem(j, "v2_vs_standard");
    CHECK(cJSON_GetObjectItem(v, "energy_reduction_pct") != NULL);
    CHECK(cJSON_GetObjectItem(v, "latency_reduction_pct") != NULL);
    CHECK(cJSON_GetObjectItem(v, "ipw_ratio") != NULL);
    cJSON *std_p = cJSON_GetObjectItem(cJSON_GetArrayItem(cf, 0), "problems");
    cJSON *v2_p = cJSON_GetObjectItem(cJSON_GetArrayItem(cf, 2), "problems");
    for (int i = 0; i < cJSON_GetArraySize(v2_p); i++) {
        cJSON *a = cJSON_GetArrayItem(std_p, i), *b = cJSON_GetArrayItem(v2_p, i);
        CHECK_EQ_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(a, "samples")), 8);
        double sb = cJSON_GetNumberValue(cJSON_GetObjectItem(b, "samples"));
        if (cJSON_IsString(cJSON_GetObjectItem(b, "chosen"))) {
            CHECK(sb < 8);
            /* the same samples: majority agrees with the cascade */
            CHECK_EQ_STR(str_of(a, "chosen"), str_of(b, "chosen"));
        } else {
            CHECK_EQ_INT(sb, 8);
        }
    }

    /* reusing the samples equals a separate run with the same seed (and
     * the same plan) */
    char sep_args[160];
    snprintf(sep_args, sizeof sep_args, "--select cascade --temp 0 --samples 8 --batch 2 %s",
             same_plan);
    cJSON *sep = eval_json(sep_args);
    if (sep) {
        cJSON *sp = cJSON_GetObjectItem(sep, "problems");
        CHECK_EQ_INT(cJSON_GetArraySize(sp), cJSON_GetArraySize(v2_p));
        for (int i = 0; i < cJSON_GetArraySize(sp) && i < cJSON_GetArraySize(v2_p); i++) {
            cJSON *a = cJSON_GetArrayItem(sp, i), *b = cJSON_GetArrayItem(v2_p, i);
            cJSON_DeleteItemFromObject(a, "wall_s");
            cJSON_DeleteItemFromObject(b, "wall_s");
            char *sa = cJSON_PrintUnformatted(a), *sb = cJSON_PrintUnformatted(b);
            CHECK_EQ_STR(sa, sb);
            free(sa);
            free(sb);
        }
        cJSON_Delete(sep);
    }
    cJSON_Delete(j);
}

/* The cascade options reach the selector: they are echoed in the JSON,
 * and with rule (b) off (--csvet-delta 0) the cascade can only stop by
 * rule (a), so it never draws fewer samples than with the default. */
/* eval --svg: pass@k curve and energy bars per configuration, plain SVG;
 * rendered by headless Chromium when installed (release run only). */
TEST(eval_svg)
{
    if (!model[0]) SKIP("no tiny model");
    char svg[4400];
    snprintf(svg, sizeof svg, "%s/eval.svg", tmpdir);
    CHECK_EQ_INT(qeilf("eval -m %s --tasks %s --limit 3 -n 8 --samples 4 --compare --svg %s", model,
                       tasks, svg),
                 0);
    FILE *f = fopen(svg, "rb");
    CHECK(f != NULL);
    if (!f) return;
    static char t[1 << 16];
    size_t got = fread(t, 1, sizeof t - 1, f);
    t[got] = '\0';
    fclose(f);
    CHECK_CONTAINS(t, "<svg xmlns=\"http://www.w3.org/2000/svg\"");
    CHECK_CONTAINS(t, "pass@k (unbiased estimator)");
    CHECK_CONTAINS(t, "<polyline");
    CHECK_CONTAINS(t, ">standard</text>");
    CHECK_CONTAINS(t, ">v2</text>");
    CHECK_CONTAINS(t, "</svg>");
    CHECK_EQ_INT(qeilf("eval -m %s --tasks %s --limit 1 -n 4 --samples 2 --svg /nonexistent-dir/e.svg",
                       model, tasks),
                 1);
    CHECK_CONTAINS(err_text, "--svg: cannot write");
#if !defined(__SANITIZE_ADDRESS__)
    if (system("command -v chromium >/dev/null 2>&1") == 0) {
        char cmd[16384];
        snprintf(cmd, sizeof cmd,
                 "timeout 120 chromium --headless --no-sandbox --disable-gpu --user-data-dir=%s/chr "
                 "--dump-dom file://%s > %s/dom.txt 2>/dev/null",
                 tmpdir, svg, tmpdir);
        CHECK_EQ_INT(system(cmd), 0);
        char dom[4400];
        snprintf(dom, sizeof dom, "%s/dom.txt", tmpdir);
        f = fopen(dom, "rb");
        CHECK(f != NULL);
        if (f) {
            got = fread(t, 1, sizeof t - 1, f);
            t[got] = '\0';
            fclose(f);
            CHECK_CONTAINS(t, "energy per problem (modeled) and accuracy");
        }
    }
#endif
}

TEST(cascade_options)
{
    if (!model[0]) SKIP("no tiny model");
    cJSON *d = eval_json("");
    cJSON *j = eval_json("--csvet-delta 0 --arde-lambda 2 --futility");
    if (!d || !j) {
        cJSON_Delete(d);
        cJSON_Delete(j);
        return;
    }
    cJSON *cp = cJSON_GetObjectItem(j, "cascade_params");
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(cp, "csvet_delta")) == 0.0);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(cp, "arde_lambda")) == 2.0);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(cp, "futility")));
    cJSON *dp = cJSON_GetObjectItem(d, "cascade_params");
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(dp, "csvet_delta")) == 0.1);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(dp, "csvet_delta_late")) == 0.4);
    CHECK_EQ_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(dp, "csvet_late_after")), 7);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(dp, "arde_lambda")) == 0.5);
    CHECK(cJSON_IsFalse(cJSON_GetObjectItem(dp, "futility")));
    cJSON_Delete(d);
    cJSON_Delete(j);
    d = eval_json("");
    j = eval_json("--csvet-delta 0");
    if (d && j) {
        double sd = cJSON_GetNumberValue(
            cJSON_GetObjectItem(cJSON_GetObjectItem(d, "summary"), "mean_samples"));
        double sj = cJSON_GetNumberValue(
            cJSON_GetObjectItem(cJSON_GetObjectItem(j, "summary"), "mean_samples"));
        CHECK(sj >= sd);
    }
    cJSON_Delete(d);
    cJSON_Delete(j);
}

/* --select majority draws the whole budget, so pass@k is defined for every
 * k = 1..K: the JSON lists each one, in [0, 1] and non-decreasing in k. */
TEST(pass_at_k_every_k_in_json)
{
    if (!model[0]) SKIP("no tiny model");
    cJSON *j = eval_json("--select majority --samples 5");
    if (!j) return;
    cJSON *pk = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "summary"), "pass_at_k");
    CHECK(cJSON_IsObject(pk));
    CHECK_EQ_INT(cJSON_GetArraySize(pk), 5);
    double prev = 0;
    for (int k = 1; k <= 5; k++) {
        char key[16];
        snprintf(key, sizeof key, "%d", k);
        cJSON *v = cJSON_GetObjectItem(pk, key);
        CHECK(cJSON_IsNumber(v));
        double x = cJSON_GetNumberValue(v);
        CHECK(x >= prev - 1e-12 && x <= 1 + 1e-12);
        prev = x;
    }
    cJSON_Delete(j);
}

/* GSM8K and ARC-Challenge files (tests/data/eval/): detected, read, the
 * references normalised (1,234 -> 1234, $2.50 -> 2.5, ARC label 2 -> B),
 * the format in the JSON and the table. */
TEST(benchmark_files_as_users_have_them)
{
    if (!model[0]) SKIP("no tiny model");
    static const struct {
        const char *file, *format, *gold[5];
        int n;
    } t[] = {
        {"gsm8k-test.jsonl", "gsm8k", {"42", "1234", "-5", "2.5", "200"}, 5},
        {"arc-ai2.jsonl", "arc", {"B", "C", "B", "A", NULL}, 4},
        {"arc-hf.jsonl", "arc", {"C", "D", "A", NULL, NULL}, 3},
    };
    for (size_t k = 0; k < sizeof t / sizeof *t; k++) {
        int rc = qeilf("eval -m %s --tasks %s/%s -n 4 --samples 2 --output json", model, data_dir,
                       t[k].file);
        if (rc != 0) {
            TEST_FAIL_("%s: exit %d (%s)", t[k].file, rc, err_text ? err_text : "");
            continue;
        }
        cJSON *j = cJSON_Parse(out_text);
        CHECK(j != NULL);
        if (!j) continue;
        CHECK_EQ_STR(str_of(j, "format"), t[k].format);
        CHECK_EQ_INT((int)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "shots")), 0);
        CHECK(cJSON_IsNull(cJSON_GetObjectItem(j, "shots_file")));
        const cJSON *pr = cJSON_GetObjectItem(j, "problems");
        CHECK_EQ_INT(cJSON_GetArraySize(pr), t[k].n);
        for (int i = 0; i < t[k].n && i < cJSON_GetArraySize(pr); i++) {
            CHECK_EQ_STR(str_of(cJSON_GetArrayItem(pr, i), "gold"), t[k].gold[i]);
            CHECK(cJSON_GetObjectItem(cJSON_GetArrayItem(pr, i), "shot_lines") == NULL);
        }
        cJSON_Delete(j);
        /* forced to the format it is, the same; the table names it */
        CHECK_EQ_INT(qeilf("eval -m %s --tasks %s/%s -n 4 --samples 2 --format %s", model,
                           data_dir, t[k].file, t[k].format),
                     0);
        char want[64];
        snprintf(want, sizeof want, "format %s\n", t[k].format);
        CHECK_CONTAINS(out_text, want);
    }
    /* a GSM8K file forced to qeil's format: the field it lacks, named */
    CHECK_EQ_INT(qeilf("eval -m %s --tasks %s/gsm8k-test.jsonl --format qeil", model, data_dir), 1);
    CHECK_CONTAINS(err_text, "gsm8k-test.jsonl:1: field 'id': missing");
    /* -v shows the template and the first prompt, choices listed */
    CHECK_EQ_INT(qeilf("eval -m %s --tasks %s/arc-ai2.jsonl -n 4 --samples 2 --limit 1 -v", model,
                       data_dir),
                 0);
    CHECK_CONTAINS(out_text, "prompt template");
    CHECK_CONTAINS(out_text, "\"Q: <question>\\nA:\"");
    CHECK_CONTAINS(out_text, "    | Q: Which form of energy does a plant store when it makes "
                             "sugar? A) heat energy B) chemical energy C) sound energy D) "
                             "electrical energy\n    | A:\n");
}

/* Every broken sample of tests/data/eval/bad/ exits 1 naming the file,
 * the line and the field (the library's cases in detail: test_tasks.c). */
TEST(broken_benchmark_files_exit_1)
{
    static const struct {
        const char *file, *say1, *say2;
    } t[] = {
        {"gsm8k-no-marker.jsonl", "gsm8k-no-marker.jsonl:2:", "field 'answer'"},
        {"gsm8k-empty-question.jsonl", "gsm8k-empty-question.jsonl:3:", "field 'question': empty"},
        {"gsm8k-broken-line.jsonl", "gsm8k-broken-line.jsonl:2:", "not valid JSON"},
        {"arc-empty-text.jsonl", "arc-empty-text.jsonl:2:", "field 'question.choices[1].text'"},
        {"arc-mixed-labels.jsonl", "arc-mixed-labels.jsonl:3:", "field 'choices.label[1]'"},
        {"arc-key-not-a-label.jsonl", "arc-key-not-a-label.jsonl:2:", "field 'answerKey'"},
        {"arc-label-count.jsonl", "arc-label-count.jsonl:2:", "field 'choices.label'"},
    };
    for (size_t k = 0; k < sizeof t / sizeof *t; k++) {
        /* read before the model is opened */
        int rc = qeilf("eval -m %s/none.gguf --tasks %s/bad/%s", tmpdir, data_dir, t[k].file);
        if (rc != 1) TEST_FAIL_("%s: exit %d, want 1 (stderr: %s)", t[k].file, rc, err_text);
        if (!err_text || !strstr(err_text, t[k].say1) || !strstr(err_text, t[k].say2))
            TEST_FAIL_("%s: stderr \"%s\" should name \"%s\" and \"%s\"", t[k].file,
                       err_text ? err_text : "", t[k].say1, t[k].say2);
    }
}

/* --shots from a train split: in the prompt (-v), recorded per problem,
 * never the problem's own question (train line 3 repeats test problem 1's),
 * the same exemplars for a problem whatever --limit; a shots file of
 * another format and too few exemplars are errors. */
TEST(few_shot_from_a_train_split)
{
    if (!model[0]) SKIP("no tiny model");
    char big[4300]; /* the tiny preset's context of 256 tokens is too short for 2 exemplars */
    snprintf(big, sizeof big, "%s/tiny-2k.gguf", tmpdir);
    CHECK_EQ_INT(qeilf("mkmodel --preset tiny-llama --ctx 2048 --type f32 -o %s", big), 0);
    const char *gt = "gsm8k-test.jsonl", *gtr = "gsm8k-train.jsonl";
    int first[2] = {0, 0};
    for (uint64_t seed = 1; seed <= 8; seed++) {
        int rc = qeilf("eval -m %s --tasks %s/%s --shots 2 --shots-file %s/%s -n 2 --samples 1 "
                       "--seed %llu --output json",
                       big, data_dir, gt, data_dir, gtr, (unsigned long long)seed);
        if (rc != 0) {
            TEST_FAIL_("seed %llu: exit %d (%s)", (unsigned long long)seed, rc, err_text);
            return;
        }
        cJSON *j = cJSON_Parse(out_text);
        CHECK(j != NULL);
        if (!j) return;
        CHECK_EQ_INT((int)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "shots")), 2);
        CHECK_CONTAINS(str_of(j, "shots_file"), gtr);
        CHECK_CONTAINS(str_of(j, "prompt_format"), "<exemplar solution>\n\nQ: <question>\nA:");
        const cJSON *pr = cJSON_GetObjectItem(j, "problems");
        for (int i = 0; i < cJSON_GetArraySize(pr); i++) {
            const cJSON *sl = cJSON_GetObjectItem(cJSON_GetArrayItem(pr, i), "shot_lines");
            CHECK_EQ_INT(cJSON_GetArraySize(sl), 2);
            int a = (int)cJSON_GetNumberValue(cJSON_GetArrayItem(sl, 0));
            int b = (int)cJSON_GetNumberValue(cJSON_GetArrayItem(sl, 1));
            CHECK(a >= 1 && a <= 6 && b >= 1 && b <= 6 && a != b);
            if (i == 0) {
                CHECK(a != 3 && b != 3); /* train line 3 is this problem's question */
                if (seed == 1) first[0] = a, first[1] = b;
            }
        }
        cJSON_Delete(j);
    }
    /* --limit 1: problem 0 gets the same exemplars as in the full run */
    CHECK_EQ_INT(qeilf("eval -m %s --tasks %s/%s --shots 2 --shots-file %s/%s -n 2 --samples 1 "
                       "--seed 1 --limit 1 --output json",
                       big, data_dir, gt, data_dir, gtr),
                 0);
    cJSON *j = cJSON_Parse(out_text);
    if (j) {
        const cJSON *sl = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "problems"), 0),
                                              "shot_lines");
        CHECK_EQ_INT((int)cJSON_GetNumberValue(cJSON_GetArrayItem(sl, 0)), first[0]);
        CHECK_EQ_INT((int)cJSON_GetNumberValue(cJSON_GetArrayItem(sl, 1)), first[1]);
        cJSON_Delete(j);
    }
    /* -v: the template and the whole first prompt, its exemplars' working */
    CHECK_EQ_INT(qeilf("eval -m %s --tasks %s/%s --shots 2 --shots-file %s/%s -n 2 --samples 1 "
                       "--seed 1 --limit 1 -v",
                       big, data_dir, gt, data_dir, gtr),
                 0);
    CHECK_CONTAINS(out_text, "2-shot: exemplars from");
    CHECK_CONTAINS(out_text, "Q: <exemplar question>\\nA: <exemplar solution>\\n\\n");
    CHECK_CONTAINS(out_text, "    | #### ");
    CHECK_CONTAINS(out_text, "    | Q: Mara picks 14 apples");
    /* too few exemplars: 6 in the file, 5 of them another question */
    CHECK_EQ_INT(qeilf("eval -m %s --tasks %s/%s --shots 6 --shots-file %s/%s -n 2 --samples 1",
                       big, data_dir, gt, data_dir, gtr),
                 1);
    CHECK_CONTAINS(err_text, "gsm8k-test.jsonl:1:");
    CHECK_CONTAINS(err_text, "only 5 of the 6");
    /* a shots file of another benchmark */
    CHECK_EQ_INT(qeilf("eval -m %s --tasks %s/%s --shots 1 --shots-file %s/arc-train.jsonl -n 2",
                       big, data_dir, gt, data_dir),
                 1);
    CHECK_CONTAINS(err_text, "arc-train.jsonl: arc format, but the tasks of");
    /* a broken shots file names itself */
    CHECK_EQ_INT(qeilf("eval -m %s --tasks %s/%s --shots 1 --shots-file %s/bad/gsm8k-no-marker.jsonl",
                       big, data_dir, gt, data_dir),
                 1);
    CHECK_CONTAINS(err_text, "--shots-file: ");
    CHECK_CONTAINS(err_text, "gsm8k-no-marker.jsonl:2: field 'answer'");
}

/* The demo model another part of the project trains (models/qeil-demo.gguf,
 * data/tasks/arith.jsonl): a handful of problems end to end, when present. */
TEST(demo_model_end_to_end)
{
    if (access(demo_model, R_OK) != 0 || access(demo_tasks, R_OK) != 0)
        SKIP("no models/qeil-demo.gguf or data/tasks/arith.jsonl");
    int rc = qeilf("eval -m %s --tasks %s --limit 2 --samples 2 -n 48 --output json", demo_model,
                   demo_tasks);
    CHECK_EQ_INT(rc, 0);
    if (rc != 0) {
        printf("  stderr: %s\n", err_text ? err_text : "");
        return;
    }
    cJSON *j = cJSON_Parse(out_text);
    CHECK(j != NULL);
    cJSON *pr = cJSON_GetObjectItem(j, "problems");
    CHECK_EQ_INT(cJSON_GetArraySize(pr), 2);
    /* a trained model writes "#### N": some sample has an answer */
    int answered = 0;
    for (int i = 0; i < cJSON_GetArraySize(pr); i++)
        answered += cJSON_IsString(cJSON_GetObjectItem(cJSON_GetArrayItem(pr, i), "chosen"));
    CHECK(answered > 0);
    cJSON_Delete(j);
    /* greedy on ten problems: the trained model solves most of them (7/10
     * when committed, 87 % over the file); a broken forward pass, tokenizer
     * or answer extraction gets next to none */
    rc = qeilf("eval -m %s --tasks %s --limit 10 --samples 1 --select first --temp 0 --output json",
               demo_model, demo_tasks);
    CHECK_EQ_INT(rc, 0);
    j = rc == 0 ? cJSON_Parse(out_text) : NULL;
    CHECK(j != NULL);
    if (!j) return;
    cJSON *su = cJSON_GetObjectItem(j, "summary");
    double acc = cJSON_GetNumberValue(cJSON_GetObjectItem(su, "accuracy"));
    if (!(acc >= 0.5)) TEST_FAIL_("demo model greedy accuracy on 10 problems: %.2f (want >= 0.5)", acc);
    cJSON_Delete(j);
}

/* Measured energy beside the modeled: --sensors-root on fixture trees
 * (their counters stand still, so a measured interval is 0 J; the runtime
 * test advances one to get non-zero). Without a counter the provenance is
 * n/a and the numbers are null, never modeled ones. */
static void check_meas(const cJSON *m, const char *prov, int measured)
{
    CHECK_EQ_STR(str_of(m, "provenance"), prov);
    const cJSON *e = cJSON_GetObjectItem(m, "energy_J");
    if (measured) {
        CHECK(cJSON_IsNumber(e) && cJSON_GetNumberValue(e) >= 0);
        CHECK_CONTAINS(str_of(m, "covers"), "whole CPU package");
        CHECK(cJSON_IsNumber(cJSON_GetObjectItem(m, "t_s")));
    } else {
        CHECK(cJSON_IsNull(e));
        CHECK(cJSON_IsNull(cJSON_GetObjectItem(m, "J_per_token")));
        CHECK(cJSON_IsNull(cJSON_GetObjectItem(m, "power_W")));
    }
}

TEST(measured_energy_beside_modeled)
{
    if (!model[0]) SKIP("no tiny model");
    char laptop[4400], rpi[4400];
    snprintf(laptop, sizeof laptop, "%s", tasks);
    char *cut = strstr(laptop, "eval/tiny.jsonl");
    if (!cut) SKIP("tasks path has no tests/data/eval");
    snprintf(cut, sizeof laptop - (size_t)(cut - laptop), "sense/intel-laptop");
    snprintf(rpi, sizeof rpi, "%s", laptop);
    snprintf(strstr(rpi, "intel-laptop"), 16, "rpi5");
    const char *const tree[2] = {laptop, rpi};
    static const char *const prov[2] = {"measured: rapl-package", "n/a: no sensor"};
    for (int k = 0; k < 2; k++) {
        char extra[4500];
        snprintf(extra, sizeof extra, "--sensors-root %s", tree[k]);
        cJSON *j = eval_json(extra);
        if (!j) return;
        cJSON *me = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "summary"), "measured");
        check_meas(cJSON_GetObjectItem(me, "prefill"), prov[k], k == 0);
        check_meas(cJSON_GetObjectItem(me, "decode"), prov[k], k == 0);
        /* the modeled energy is still there, and still labelled modeled */
        CHECK_EQ_STR(str_of(cJSON_GetObjectItem(j, "provenance"), "energy_J"), "modeled");
        cJSON_Delete(j);

        CHECK_EQ_INT(qeilf("generate -m %s -p hi -n 4 --seed 1 --output json %s", model, extra), 0);
        j = cJSON_Parse(out_text);
        CHECK(j != NULL);
        me = cJSON_GetObjectItem(j, "measured");
        check_meas(cJSON_GetObjectItem(me, "prefill"), prov[k], k == 0);
        check_meas(cJSON_GetObjectItem(me, "decode"), prov[k], k == 0);
        cJSON_Delete(j);

        CHECK_EQ_INT(qeilf("bench -m %s -p 8 -n 4 -r 1 --bw 10 --output json %s", model, extra), 0);
        j = cJSON_Parse(out_text);
        CHECK(j != NULL);
        check_meas(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "prefill"), "measured"), prov[k],
                   k == 0);
        check_meas(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "decode"), "measured"), prov[k],
                   k == 0);
        cJSON_Delete(j);
    }
    /* the table says so too */
    CHECK_EQ_INT(qeilf("eval -m %s --tasks %s --limit 1 -n 4 --samples 2 --sensors-root %s", model,
                       tasks, rpi),
                 0);
    CHECK_CONTAINS(out_text, "prefill energy (total) measured: n/a (no sensor)");
    CHECK_EQ_INT(qeilf("generate -m %s -p hi -n 4 --sensors-root %s", model, laptop), 0);
    CHECK_CONTAINS(err_text, "decode  measured: 0 J, 0 J/token, 0 W (rapl-package)");
    CHECK_CONTAINS(err_text, "energy meter: rapl-package covers the whole CPU package");
    /* a root that is not a directory is a runtime failure naming it */
    CHECK_EQ_INT(qeilf("generate -m %s -p hi -n 4 --sensors-root /nonexistent-qeil", model), 1);
    CHECK_CONTAINS(err_text, "sensor root '/nonexistent-qeil'");
    CHECK_EQ_INT(qeilf("bench -m %s -p 8 -n 4 -r 1 --bw 10 --sensors-root /nonexistent-qeil", model), 1);
    CHECK_CONTAINS(err_text, "sensor root '/nonexistent-qeil'");
}

/* `qeil calibrate --quick` on the tiny model: exit 0, the profile written
 * loads and holds the fitted coefficients, the JSON carries the fidelity
 * medians per set, time, unit and phase. Timings on a tiny model are
 * mostly overhead and noise, so only the contract is checked here; the
 * fit itself is tested on synthetic timings (test_energy). */
static double num_at(const cJSON *o, const char *const *path)
{
    for (; *path; path++) o = cJSON_GetObjectItemCaseSensitive(o, *path);
    return cJSON_IsNumber(o) ? cJSON_GetNumberValue(o) : NAN;
}

/* DASI, Φ and CPQ per unit in eval's JSON: on a profile whose cpu unit
 * stands for this machine's CPU (example-soc with "device": "cpu") and the
 * intel-laptop sensor tree, the cpu unit has measured values beside the
 * predicted ones (temperature from coretemp, memory in use from
 * /proc/meminfo); its gpu and npu units, which stand for no local device,
 * only predicted ones; on the default catalog platform nothing is measured. */
TEST(unit_metrics_in_json)
{
    if (!model[0]) SKIP("no tiny model");
    char root[4400], prof[4400], soc[4400], src[4400];
    snprintf(root, sizeof root, "%s", tasks);
    char *cut = strstr(root, "tests/data/eval/tiny.jsonl");
    if (!cut) SKIP("tasks path has no tests/data/eval");
    snprintf(cut, sizeof root - (size_t)(cut - root), "tests/data/sense/intel-laptop");
    /* this machine's profile: one cpu unit standing for the CPU */
    snprintf(prof, sizeof prof, "%s/host.json", tmpdir);
    CHECK_EQ_INT(qeilf("probe --quick -t 1 --devices cpu -o %s", prof), 0);
    char extra[9000];
    snprintf(extra, sizeof extra, "--platform %s --sensors-root %s", prof, root);
    cJSON *j = eval_json(extra);
    if (!j) return;
#define NUM(u, k, f) cJSON_GetObjectItem(cJSON_GetObjectItem(u, k), f)
    const cJSON *units = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "unit_metrics"), "units");
    CHECK_EQ_INT(cJSON_GetArraySize(units), 1);
    const cJSON *cpu = cJSON_GetArrayItem(units, 0);
    CHECK_EQ_STR(str_of(cpu, "device"), "cpu");
    static const char *const keys[] = {"dasi_prefill", "dasi_decode", "phi", "rho", "cpq"};
    for (int k = 0; k < 5; k++)
        for (int side = 0; side < 2; side++) {
            const cJSON *m = NUM(cpu, keys[k], side ? "measured" : "predicted");
            if (!cJSON_IsNumber(m))
                TEST_FAIL_("cpu %s.%s: not a number", keys[k], side ? "measured" : "predicted");
            else if (k < 3 && !(m->valuedouble > 0 && m->valuedouble <= (k < 2 ? 2.0 : 1.0)))
                TEST_FAIL_("cpu %s: %g", keys[k], m->valuedouble);
        }
    /* the fixture's 16253140 kB total and 10485760 kB available, over the
     * probed capacity (this machine's memory) */
    cJSON *pj = NULL;
    FILE *f = fopen(prof, "r");
    if (f) {
        char buf[8192];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = '\0';
        fclose(f);
        pj = cJSON_Parse(buf);
    }
    const cJSON *cap = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(pj, "pools"), 0),
                                           "capacity_B");
    if (cJSON_IsNumber(cap) && cJSON_IsNumber(NUM(cpu, "rho", "measured")))
        CHECK_NEAR(NUM(cpu, "rho", "measured")->valuedouble,
                   (16253140.0 - 10485760.0) * 1024 / cap->valuedouble, 1e-12, 1e-9);
    else TEST_FAIL_("no capacity_B in %s", prof);
    cJSON_Delete(pj);
    const cJSON *t = cJSON_GetObjectItem(cpu, "temp_C");
    CHECK(cJSON_IsNumber(t) && t->valuedouble > 20 && t->valuedouble < 110);
    cJSON_Delete(j);

    /* example-soc with its cpu unit standing for this CPU: the gpu unit
     * stands for no local device (nothing measured) but shares the cpu's
     * memory pool (the same measured pressure) */
    snprintf(src, sizeof src, "%s", tasks);
    snprintf(strstr(src, "tests/data/eval/tiny.jsonl"), 40, "profiles/example-soc.json");
    snprintf(soc, sizeof soc, "%s/soc-local.json", tmpdir);
    char cmd[9000];
    snprintf(cmd, sizeof cmd,
             "sed '0,/\"name\": \"cpu\",/s//\"name\": \"cpu\", \"device\": \"cpu\",/' %s > %s",
             src, soc);
    CHECK(system(cmd) == 0);
    snprintf(extra, sizeof extra, "--platform %s --sensors-root %s", soc, root);
    j = eval_json(extra);
    if (!j) return;
    units = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "unit_metrics"), "units");
    CHECK_EQ_INT(cJSON_GetArraySize(units), 3);
    cpu = cJSON_GetArrayItem(units, 0);
    const cJSON *gpu = cJSON_GetArrayItem(units, 1);
    CHECK_EQ_STR(str_of(cpu, "device"), "cpu");
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(gpu, "device")));
    CHECK(cJSON_IsNumber(NUM(cpu, "dasi_prefill", "measured"))); /* the engine ran it all here */
    for (int k = 0; k < 3; k++)
        if (!cJSON_IsNull(NUM(gpu, keys[k], "measured")))
            TEST_FAIL_("gpu %s.measured: not null (no local device)", keys[k]);
    CHECK(cJSON_IsNumber(NUM(gpu, "rho", "measured")) &&
          NUM(gpu, "rho", "measured")->valuedouble == NUM(cpu, "rho", "measured")->valuedouble);
    cJSON_Delete(j);

    /* the default platform is a catalog machine, not this one */
    j = eval_json("--seed 5");
    if (!j) return;
    units = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "unit_metrics"), "units");
    CHECK(cJSON_GetArraySize(units) >= 1);
    int predicted = 0;
    for (int i = 0; i < cJSON_GetArraySize(units); i++) {
        const cJSON *u = cJSON_GetArrayItem(units, i);
        CHECK(cJSON_IsNull(NUM(u, "dasi_prefill", "measured")));
        CHECK(cJSON_IsNull(NUM(u, "dasi_decode", "measured")));
        predicted += cJSON_IsNumber(NUM(u, "dasi_decode", "predicted"));
    }
    CHECK(predicted >= 1); /* the unit the plan decodes on */
#undef NUM
    cJSON_Delete(j);
}

TEST(calibrate_cli)
{
    if (!model[0]) SKIP("no tiny model");
    char out[4300];
    snprintf(out, sizeof out, "%s/cal.json", tmpdir);
    CHECK_EQ_INT(qeilf("calibrate -m %s -o %s --quick -r 1 -t 1 --output json", model, out), 0);
    cJSON *j = cJSON_Parse(out_text);
    CHECK(j != NULL);
    if (!j) return;
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(j, "points")), 12);
    static const char *const sets[2] = {"fit", "held_out"}, *const when[2] = {"before", "after"};
    for (int s = 0; s < 2; s++)
        for (int w = 0; w < 2; w++) {
            const char *p0[] = {"fidelity", sets[s], when[w], "median_abs_error", NULL};
            const char *p1[] = {"fidelity", sets[s], when[w], "units", "cpu", "prefill",
                                "median_abs_error", NULL};
            const char *p2[] = {"fidelity", sets[s], when[w], "units", "cpu", "decode",
                                "median_abs_error", NULL};
            CHECK(num_at(j, p0) >= 0);
            CHECK(num_at(j, p1) >= 0);
            CHECK(num_at(j, p2) >= 0);
        }
    /* the file is a valid profile with the coefficients the JSON reports */
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_platform pf;
    CHECK_EQ_INT(qeil_platform_load(ctx, out, &pf), QEIL_OK);
    const char *pm[] = {"coefficients", "after", "eta_mem", NULL};
    const char *ps[] = {"coefficients", "after", "step_s", NULL};
    CHECK_NEAR(pf.units[0].eta_mem, num_at(j, pm), 1e-9, 0);
    CHECK_NEAR(pf.units[0].step_s, num_at(j, ps), 1e-9, 1e-15);
    const char *po[] = {"coefficients", "after", "op_s", NULL};
    const char *pa[] = {"coefficients", "after", "attn_pf_flop_s", NULL};
    const char *pd[] = {"coefficients", "after", "attn_dc_flop_s", NULL};
    CHECK(num_at(j, po) >= 0 && num_at(j, pa) >= 0 && num_at(j, pd) >= 0);
    CHECK_NEAR(pf.units[0].op_s, num_at(j, po), 1e-9, 1e-15);
    CHECK_NEAR(pf.units[0].attn_pf_flop_s, num_at(j, pa), 1e-9, 1e-22);
    CHECK_NEAR(pf.units[0].attn_dc_flop_s, num_at(j, pd), 1e-9, 1e-22);
    CHECK_EQ_INT(pf.units[0].src_compute, QEIL_SRC_MEASURED);
    CHECK_EQ_STR(str_of(j, "clock"), "wall");
    /* each point carries the engine's per-unit times beside the model's */
    const cJSON *p0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "points"), 0);
    const char *pm0[] = {"work_units", "blocks", "measured_s", NULL};
    const char *ph0[] = {"work_units", "head", "after_s", NULL};
    CHECK(num_at(p0, pm0) > 0 && num_at(p0, ph0) > 0);
    qeil_ctx_free(ctx);
    cJSON_Delete(j);
    /* --clock cpu: the process's CPU time over the workers */
    CHECK_EQ_INT(qeilf("calibrate -m %s -o %s --quick -r 1 -t 1 --clock cpu --output json", model,
                       out), 0);
    j = cJSON_Parse(out_text);
    CHECK(j != NULL);
    if (j) {
        CHECK_EQ_STR(str_of(j, "clock"), "cpu");
        const char *pt[] = {"measured_s", NULL};
        CHECK(num_at(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "points"), 0), pt) > 0);
        cJSON_Delete(j);
    }
    CHECK_EQ_INT(qeilf("calibrate -m %s -o %s --quick --clock sun", model, out), 2);
    CHECK_CONTAINS(err_text, "--clock");
    /* the table */
    CHECK_EQ_INT(qeilf("calibrate -m %s -o %s --quick -r 1 -t 1", model, out), 0);
    CHECK_CONTAINS(out_text, "held_out cpu  prefill");
    CHECK_CONTAINS(out_text, "median |error|");
    CHECK_CONTAINS(out_text, "measured energy: n/a (no sensor)");
    /* the output path is checked before any measuring; usage errors exit 2 */
    CHECK_EQ_INT(qeilf("calibrate -m %s -o /nonexistent-qeil/cal.json --quick", model), 1);
    CHECK_CONTAINS(err_text, "--out /nonexistent-qeil/cal.json");
    CHECK(!strstr(err_text, "P=8"));
    CHECK_EQ_INT(qeilf("calibrate -m %s --quick", model), 2);
    CHECK_CONTAINS(err_text, "-o FILE is required");
    CHECK_EQ_INT(qeilf("calibrate -m %s -o %s -r 0", model, out), 2);
    CHECK_CONTAINS(err_text, "--repetitions");
}

int main(int argc, char **argv)
{
    (void)argc;
    if (cli_harness_init(argv[0]) != 0) return 1;
    /* build/tests/test_eval_cli: the repository root is two levels above */
    const char *dir = test_dir;
    snprintf(tasks, sizeof tasks, "%s/../../tests/data/eval/tiny.jsonl", dir);
    if (access(tasks, R_OK) != 0) snprintf(tasks, sizeof tasks, "tests/data/eval/tiny.jsonl");
    snprintf(data_dir, sizeof data_dir, "%s", tasks);
    *strrchr(data_dir, '/') = '\0';
    snprintf(demo_model, sizeof demo_model, "%s/../../models/qeil-demo.gguf", dir);
    snprintf(demo_tasks, sizeof demo_tasks, "%s/../../data/tasks/arith.jsonl", dir);
    if (access(tasks, R_OK) != 0) {
        printf("FAIL setup: no %s\n", tasks);
        cli_harness_done();
        return 1;
    }
    RUN(help);
    RUN(bad_numbers_and_options_exit_2);
    RUN(bad_task_files_exit_1_naming_the_line);
    RUN(make_tiny_model);
    RUN(eval_json_contract);
    RUN(hostile_task_text);
    RUN(max_tokens_beyond_the_context_plans_what_fits);
    RUN(eval_is_deterministic);
    RUN(compare_runs_three_configurations);
    RUN(eval_svg);
    RUN(cascade_options);
    RUN(pass_at_k_every_k_in_json);
    RUN(benchmark_files_as_users_have_them);
    RUN(broken_benchmark_files_exit_1);
    RUN(few_shot_from_a_train_split);
    RUN(demo_model_end_to_end);
    RUN(measured_energy_beside_modeled);
    RUN(unit_metrics_in_json);
    RUN(calibrate_cli);
    cli_harness_done();
    return test_summary("eval_cli");
}
