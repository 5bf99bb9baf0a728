/* test_recover_cli.c — QEIL_FAULT and recoveries through `qeil generate`
 * and `qeil eval` (docs/cli.md "Faults and recovery"): a strict parser
 * (exit 2 naming the value), recoveries in the JSON and text output with
 * the fault-free run's tokens, the last unit failing (exit 1, a clear
 * message; eval still reports the problems that finished). Two CPU units
 * (cpu, cpu1): no hardware needed. Runs the qeil binary of the same build
 * directory. */
#include <cjson/cJSON.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qeil/qeil.h"
#include "test.h"

#define CLI_HARNESS_TMPDIR "/tmp/qeil-reccli-XXXXXX"
#include "cli_harness.h"

static char model[4200], tasks[4200];

#define SPLIT "--placement emb..b0:cpu,b1..head:cpu1"

static char *json_get(const char *json, const char *key)
{
    cJSON *j = cJSON_Parse(json ? json : "");
    char *s = j ? cJSON_PrintUnformatted(cJSON_GetObjectItem(j, key)) : NULL;
    cJSON_Delete(j);
    return s;
}

TEST(fault_values_are_usage_errors)
{
    static const struct {
        const char *v, *msg;
    } bad[] = {
        {"vk0:crash:1", "QEIL_FAULT='vk0:crash:1': fault: kind 'crash' is not one of error, hang, oom"},
        {"gpu:error:1", "unknown device 'gpu' (known: cpu, vk0, cpu1)"},
        {"cpu:error", "is not DEVICE:KIND:N"},
        {"cpu:error:0", "fault: op N"},
        {"cpu:error:x", "fault: op N"},
    };
    char env[128];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(env, sizeof env, "QEIL_FAULT='%s'", bad[i].v);
        CHECK_RUN(qeil_env(env, "generate -m %s -p hi -n 2", model), 2);
        CHECK_CONTAINS(err_text, bad[i].msg);
        CHECK_RUN(qeil_env(env, "eval -m %s --tasks %s", model, tasks), 2);
        CHECK_CONTAINS(err_text, bad[i].msg);
    }
    /* a device that runs no unit */
    CHECK_RUN(qeil_env("QEIL_FAULT=cpu1:error:3", "generate -m %s -p hi -n 2", model), 1);
    CHECK_CONTAINS(err_text, "fault: device cpu1 runs no unit of the placement");
}

TEST(generate_recovers_with_the_same_tokens)
{
    const char *gen = "generate -m %s -p 'the quick brown' -n 8 --temp 0.9 --seed 4 -t 1 "
                      "--output json " SPLIT;
    CHECK_RUN(qeil_env("", gen, model), 0);
    char *ref = json_get(out_text, "tokens"), *none = json_get(out_text, "recoveries");
    CHECK_EQ_STR(none, "[]");
    const char *envs[] = {"QEIL_FAULT=cpu1:error:9", "QEIL_FAULT=cpu:oom:40",
                          "QEIL_FAULT=cpu1:hang:60"};
    const char *want[] = {"\"device\":\"cpu1\",\"op\":9,", "\"device\":\"cpu\",\"op\":40,",
                          "\"cause\":\"hang\""};
    for (int i = 0; i < 3; i++) {
        CHECK_RUN(qeil_env(envs[i], gen, model), 0);
        char *got = json_get(out_text, "tokens"), *rec = json_get(out_text, "recoveries");
        CHECK_EQ_STR(got, ref);
        CHECK_CONTAINS(rec, want[i]);
        CHECK_CONTAINS(rec, "\"total_s\":");
        free(got);
        free(rec);
    }
    /* text mode: one line per recovery on stderr */
    CHECK_RUN(qeil_env("QEIL_FAULT=cpu1:error:9", "generate -m %s -p 'the quick brown' -n 8 " SPLIT,
                       model),
              0);
    CHECK_CONTAINS(err_text, "recovered: cpu1 error at op 9 (");
    free(ref);
    free(none);
}

TEST(last_unit_failing_is_a_clear_error)
{
    CHECK_RUN(qeil_env("QEIL_FAULT=cpu:error:30", "generate -m %s -p 'the quick brown' -n 8", model), 1);
    CHECK_CONTAINS(err_text, "device cpu failed (error) and no other device of the placement "
                             "survives: the request ends");
    /* eval: the problems before the failure are still reported */
    CHECK_RUN(qeil_env("", "eval -m %s --tasks %s --samples 2 --batch 2 -n 6 -t 1 --output json",
                       model, tasks),
              0);
    cJSON *ref = cJSON_Parse(out_text ? out_text : "");
    CHECK_RUN(qeil_env("QEIL_FAULT=cpu:error:700",
                       "eval -m %s --tasks %s --samples 2 --batch 2 -n 6 -t 1 --output json", model,
                       tasks),
              1);
    CHECK_CONTAINS(err_text, "no other device of the placement survives");
    cJSON *j = cJSON_Parse(out_text ? out_text : "");
    CHECK(j != NULL);
    const cJSON *pr = cJSON_GetObjectItem(j, "problems"), *rp = cJSON_GetObjectItem(ref, "problems");
    const int done = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "problems_finished"));
    CHECK(done >= 1 && done < 3);
    CHECK_EQ_INT(cJSON_GetArraySize(pr), done);
    CHECK_EQ_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "problems_total")), 3);
    CHECK_CONTAINS(cJSON_GetStringValue(cJSON_GetObjectItem(j, "error")), "device cpu failed");
    for (int k = 0; k < done; k++) { /* the finished problems are the fault-free run's */
        char *a = cJSON_PrintUnformatted(cJSON_GetObjectItem(cJSON_GetArrayItem(pr, k), "tokens"));
        char *b = cJSON_PrintUnformatted(cJSON_GetObjectItem(cJSON_GetArrayItem(rp, k), "tokens"));
        CHECK_EQ_STR(a, b);
        free(a);
        free(b);
    }
    cJSON_Delete(j);
    cJSON_Delete(ref);
}

TEST(eval_recovers_with_the_same_answers)
{
    const char *ev = "eval -m %s --tasks %s --samples 2 --batch 2 -n 6 -t 1 --output json " SPLIT;
    CHECK_RUN(qeil_env("", ev, model, tasks), 0);
    char *ref = json_get(out_text, "problems");
    CHECK_RUN(qeil_env("QEIL_FAULT=cpu1:oom:150", ev, model, tasks), 0);
    char *rec = json_get(out_text, "recoveries");
    CHECK_CONTAINS(rec, "\"device\":\"cpu1\",\"op\":150,");
    CHECK_CONTAINS(rec, "\"problem\":");
    cJSON *a = cJSON_Parse(ref ? ref : ""), *doc = cJSON_Parse(out_text ? out_text : "");
    const cJSON *b = cJSON_GetObjectItem(doc, "problems");
    CHECK_EQ_INT(cJSON_GetArraySize(b), cJSON_GetArraySize(a));
    for (int k = 0; k < cJSON_GetArraySize(a); k++) {
        const char *keys[] = {"chosen", "samples", "tokens", "stage"};
        for (int q = 0; q < 4; q++) {
            char *x = cJSON_PrintUnformatted(cJSON_GetObjectItem(cJSON_GetArrayItem(a, k), keys[q]));
            char *y = cJSON_PrintUnformatted(cJSON_GetObjectItem(cJSON_GetArrayItem(b, k), keys[q]));
            CHECK_EQ_STR(y, x);
            free(x);
            free(y);
        }
    }
    cJSON_Delete(a);
    cJSON_Delete(doc);
    free(ref);
    free(rec);
}

/* With a profile whose units name the local devices (--platform), eval's
 * recoveries go through the planner: "method": "planner", the placement
 * it resumed on, the same answers as the fault-free run. */
TEST(eval_recovers_through_the_planner)
{
    const char *ev = "eval -m %s --tasks %s --samples 2 --batch 2 -n 6 -t 1 --output json "
                     "--platform tests/data/recover/local-cpu-cpu1.json " SPLIT;
    CHECK_RUN(qeil_env("", ev, model, tasks), 0);
    char *ref = json_get(out_text, "problems");
    CHECK_RUN(qeil_env("QEIL_FAULT=cpu1:error:150", ev, model, tasks), 0);
    char *rec = json_get(out_text, "recoveries"), *got = json_get(out_text, "problems");
    CHECK_CONTAINS(rec, "\"device\":\"cpu1\",\"op\":150,");
    CHECK_CONTAINS(rec, "\"method\":\"planner\",\"fallback\":null,\"evaluations\":");
    CHECK_CONTAINS(rec, "\"placement\":[\"cpu\",\"cpu\",");
    cJSON *a = cJSON_Parse(ref ? ref : ""), *b = cJSON_Parse(got ? got : "");
    CHECK_EQ_INT(cJSON_GetArraySize(b), cJSON_GetArraySize(a));
    for (int k = 0; k < cJSON_GetArraySize(a); k++) {
        const char *keys[] = {"chosen", "samples", "tokens", "stage"};
        for (int q = 0; q < 4; q++) {
            char *x = cJSON_PrintUnformatted(cJSON_GetObjectItem(cJSON_GetArrayItem(a, k), keys[q]));
            char *y = cJSON_PrintUnformatted(cJSON_GetObjectItem(cJSON_GetArrayItem(b, k), keys[q]));
            CHECK_EQ_STR(y, x);
            free(x);
            free(y);
        }
    }
    cJSON_Delete(a);
    cJSON_Delete(b);
    free(ref);
    free(rec);
    free(got);
    /* text mode says how */
    CHECK_RUN(qeil_env("QEIL_FAULT=cpu1:error:150",
                       "eval -m %s --tasks %s --samples 2 --batch 2 -n 6 -t 1 --platform "
                       "tests/data/recover/local-cpu-cpu1.json " SPLIT,
                       model, tasks),
              0);
    CHECK_CONTAINS(out_text, "re-planned (");
    /* a catalog platform: the survivor rule, and why */
    CHECK_RUN(qeil_env("QEIL_FAULT=cpu1:error:9", "generate -m %s -p 'the quick brown' -n 8 " SPLIT,
                       model),
              0);
    CHECK_CONTAINS(err_text, "by survivor rule (platform 'qeil-laptop' names no local device");
}

int main(int argc, char **argv)
{
    (void)argc;
    if (cli_harness_init(argv[0]) != 0) return 1;
    snprintf(model, sizeof model, "%s/tiny.gguf", tmpdir);
    snprintf(tasks, sizeof tasks, "%s/tasks.jsonl", tmpdir);
    FILE *f = fopen(tasks, "w");
    for (int i = 0; f && i < 3; i++)
        fprintf(f, "{\"id\": %d, \"question\": \"What is %d + %d?\", \"answer\": \"%d\"}\n", i, i,
                2 * i, 3 * i);
    if (f) fclose(f);
    if (qeil_env("", "mkmodel --preset tiny-llama --type q8_0 -o %s", model) != 0) {
        printf("FAIL setup: mkmodel\n");
        return 1;
    }
    RUN(fault_values_are_usage_errors);
    RUN(generate_recovers_with_the_same_tokens);
    RUN(last_unit_failing_is_a_clear_error);
    RUN(eval_recovers_with_the_same_answers);
    RUN(eval_recovers_through_the_planner);
    cli_harness_done();
    return test_summary("recover_cli");
}
