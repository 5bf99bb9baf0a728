/* test_guard_cli.c — `qeil thermal-sim` end to end (exit codes, option
 * errors naming field/value/range, JSON fields and their provenance, the
 * table; unguarded throttles, guarded does not, on two catalog platforms)
 * and the `guard` object of `generate --output json` and `eval --output
 * json` (inactive with its reason on an empty root; active with throttle
 * counts on a copy of the intel-laptop sensor fixture). Runs the qeil
 * binary of the same build (argv[0]/../../qeil) from the repository root. */
#include <cjson/cJSON.h>
#include <libgen.h>
#include <math.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

#define CLI_HARNESS_TMPDIR "/tmp/qeil-guard-cli-XXXXXX"
#include "cli_harness.h"


static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

TEST(help_and_usage_errors)
{
    CHECK_EQ_INT(qeil("thermal-sim --help"), 0);
    CHECK_CONTAINS(out_text, "--no-guard");
    CHECK_CONTAINS(out_text, "--minutes");
    CHECK_EQ_INT(qeil("--help"), 0);
    CHECK_CONTAINS(out_text, "thermal-sim");
    CHECK_EQ_INT(qeil("thermal-sim --minutes 0"), 2);
    CHECK_CONTAINS(err_text, "--minutes");
    CHECK_CONTAINS(err_text, "(0, 1440]");
    CHECK_EQ_INT(qeil("thermal-sim --minutes 2000"), 2);
    CHECK_CONTAINS(err_text, "2000");
    CHECK_EQ_INT(qeil("thermal-sim --minutes 3x"), 2);
    CHECK_CONTAINS(err_text, "3x");
    CHECK_EQ_INT(qeil("thermal-sim --overshoot -1"), 2);
    CHECK_CONTAINS(err_text, "--overshoot");
    CHECK_EQ_INT(qeil("thermal-sim --output csv"), 2);
    CHECK_EQ_INT(qeil("thermal-sim --frobnicate"), 2);
    CHECK_CONTAINS(err_text, "--frobnicate");
    CHECK_EQ_INT(qeil("thermal-sim --platform no-such-platform"), 1);
    CHECK_CONTAINS(err_text, "no-such-platform");
}

/* --no-guard throttles, the guard does not; JSON fields, all modeled */
static void pair(const char *platform)
{
    char args[512];
    snprintf(args, sizeof args, "thermal-sim --platform %s --no-guard --output json", platform);
    CHECK_EQ_INT(qeil(args), 0);
    cJSON *off = cJSON_Parse(out_text);
    snprintf(args, sizeof args, "thermal-sim --platform %s --output json --seed 42", platform);
    CHECK_EQ_INT(qeil(args), 0);
    cJSON *on = cJSON_Parse(out_text);
    CHECK(off && on);
    if (off && on) {
        CHECK(num(off, "throttle_events") > 0);
        CHECK_EQ_INT(num(on, "throttle_events"), 0);
        CHECK_EQ_STR(cJSON_GetObjectItem(on, "provenance")->valuestring, "modeled");
        CHECK_EQ_STR(cJSON_GetObjectItem(on, "platform")->valuestring, platform);
        CHECK_EQ_STR(cJSON_GetObjectItem(on, "model")->valuestring, "llama-3.1-8b-q4");
        CHECK_EQ_STR(cJSON_GetObjectItem(on, "version")->valuestring, cJSON_GetObjectItem(off, "version")->valuestring);
        CHECK_NEAR(num(on, "minutes"), 30, 0, 0);
        CHECK(num(on, "energy_J") > 0 && num(on, "tokens") > 0 && num(on, "latency_per_token_s") > 0);
        const cJSON *acts = cJSON_GetObjectItem(on, "actions");
        CHECK(cJSON_IsArray(acts) && cJSON_GetArraySize(acts) > 0);
        const cJSON *a0 = cJSON_GetArrayItem(acts, 0);
        CHECK(a0 && cJSON_IsString(cJSON_GetObjectItem(a0, "kind")) &&
              cJSON_IsString(cJSON_GetObjectItem(a0, "from")) &&
              cJSON_IsString(cJSON_GetObjectItem(a0, "to")) && cJSON_IsNumber(cJSON_GetObjectItem(a0, "t_s")));
        const cJSON *u;
        cJSON_ArrayForEach(u, cJSON_GetObjectItem(on, "per_unit"))
            if (cJSON_IsTrue(cJSON_GetObjectItem(u, "powered")))
                CHECK(num(u, "peak_C") < num(u, "throttle_C"));
        CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(off, "actions")), 0);
    }
    cJSON_Delete(off);
    cJSON_Delete(on);
}

TEST(jetson_orin_nano_15w_pair) { pair("jetson-orin-nano-super-15w"); }
TEST(jetson_agx_orin_pair) { pair("jetson-agx-orin-64gb"); }

TEST(table)
{
    CHECK_EQ_INT(qeil("thermal-sim --platform jetson-orin-nano-super-15w --minutes 10"), 0);
    CHECK_CONTAINS(out_text, "all figures modeled");
    CHECK_CONTAINS(out_text, "throttle events");
    CHECK_CONTAINS(out_text, "dvfs-down");
    CHECK_CONTAINS(out_text, "guard actions");
}

/* generate and eval: the guard object */
static char model[4300];

TEST(generate_and_eval_report_the_guard)
{
    snprintf(model, sizeof model, "%s/tiny.gguf", tmpdir);
    char args[9000];
    snprintf(args, sizeof args, "mkmodel --preset tiny-llama --type q8_0 -o %s", model);
    if (qeil(args) != 0) SKIP("mkmodel failed");
    char empty[4300], root[4300], cmd[9000];
    snprintf(empty, sizeof empty, "%s/empty", tmpdir);
    mkdir(empty, 0755);
    snprintf(args, sizeof args, "generate -m %s -p hello -n 3 --seed 1 --sensors-root %s --output json",
             model, empty);
    CHECK_EQ_INT(qeil(args), 0);
    cJSON *j = cJSON_Parse(out_text);
    const cJSON *g = cJSON_GetObjectItem(j, "guard");
    CHECK(g != NULL);
    if (g) {
        CHECK(cJSON_IsFalse(cJSON_GetObjectItem(g, "active")));
        CHECK_CONTAINS(cJSON_GetObjectItem(g, "reason")->valuestring, "no temperature sensor");
        CHECK(cJSON_IsNull(cJSON_GetObjectItem(g, "throttle_events")));
        CHECK(cJSON_IsArray(cJSON_GetObjectItem(g, "actions")));
    }
    cJSON_Delete(j);
    CHECK_CONTAINS(err_text, "guard: inactive (no temperature sensor under");

    snprintf(root, sizeof root, "%s/laptop", tmpdir);
    snprintf(cmd, sizeof cmd, "cp -r tests/data/sense/intel-laptop %s", root);
    CHECK_EQ_INT(system(cmd), 0);
    snprintf(args, sizeof args,
             "eval -m %s --tasks tests/data/eval/tiny.jsonl --samples 2 -n 3 --sensors-root %s "
             "--output json",
             model, root);
    CHECK_EQ_INT(qeil(args), 0);
    j = cJSON_Parse(out_text);
    g = cJSON_GetObjectItem(j, "guard");
    CHECK(g != NULL);
    if (g) {
        CHECK(cJSON_IsTrue(cJSON_GetObjectItem(g, "active")));
        CHECK_CONTAINS(cJSON_GetObjectItem(g, "reason")->valuestring, "cpu <- hwmon:coretemp");
        CHECK_NEAR(num(g, "throttle_events"), 0, 0, 0); /* the counters did not move */
        CHECK_NEAR(num(g, "max_temp_C"), 52, 0, 1e-9);   /* the fixture's package */
        CHECK(num(g, "readings") >= 4);                  /* at least one per problem */
    }
    cJSON_Delete(j);
    snprintf(args, sizeof args,
             "eval -m %s --tasks tests/data/eval/tiny.jsonl --samples 2 -n 3 --sensors-root %s", model,
             root);
    CHECK_EQ_INT(qeil(args), 0);
    CHECK_CONTAINS(out_text, "guard: active (cpu <- hwmon:coretemp:Package id 0), 0 actions, "
                             "throttle events 0");
}

int main(int argc, char **argv)
{
    (void)argc;
    if (cli_harness_init(argv[0]) != 0) return 1;
    RUN(help_and_usage_errors);
    RUN(jetson_orin_nano_15w_pair);
    RUN(jetson_agx_orin_pair);
    RUN(table);
    RUN(generate_and_eval_report_the_guard);
    cli_harness_done();
    return test_summary("guard-cli");
}
