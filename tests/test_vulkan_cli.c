/* test_vulkan_cli.c — `qeil devices` and --placement end to end: the
 * device list (table and JSON) with and without a Vulkan loader, strict
 * placement errors in perplexity and bench, and perplexity on the Vulkan
 * device (all units, and split with the CPU) matching the CPU's; generate
 * and eval (through the runtime) on the Vulkan device giving the CPU's tokens. The GPU runs SKIP without a Vulkan device (CI: lavapipe). Runs the
 * qeil binary of the same build directory. */
#include <cjson/cJSON.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qeil/qeil.h"
#include "test.h"

#define CLI_HARNESS_TMPDIR "/tmp/qeil-vkcli-XXXXXX"
#include "cli_harness.h"

static char model[4200], text[4200], tasks[4200];
static int have_vk = -1; /* from `qeil devices --output json` */

#define NOLIB "QEIL_VULKAN_LIB=/nonexistent/libvulkan.so.1"

TEST(devices_json_lists_cpu_and_vulkan)
{
    CHECK_RUN(qeil_env("", "devices --output json"), 0);
    cJSON *j = cJSON_Parse(out_text ? out_text : "");
    CHECK(j != NULL);
    if (!j) return;
    const cJSON *arr = cJSON_GetObjectItem(j, "devices"), *why = cJSON_GetObjectItem(j, "vulkan_unavailable");
    CHECK(cJSON_IsArray(arr) && cJSON_GetArraySize(arr) >= 1);
    const cJSON *c = cJSON_GetArrayItem(arr, 0);
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(c, "id")), "cpu");
    CHECK(why != NULL);
    have_vk = cJSON_IsNull(why);
    if (have_vk) {
        const cJSON *v = cJSON_GetArrayItem(arr, 1);
        CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(v, "id")), "vk0");
        CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(v, "backend")), "vulkan");
        CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(v, "heaps")) >= 1);
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(v, "max_storage_buffer_B")) > 0);
        CHECK(cJSON_IsObject(cJSON_GetObjectItem(v, "features")));
    } else {
        CHECK_EQ_INT(cJSON_GetArraySize(arr), 1);
        CHECK(cJSON_IsString(why));
    }
    cJSON_Delete(j);
    CHECK_RUN(qeil_env("", "devices"), 0);
    CHECK(out_text && strncmp(out_text, "cpu ", 4) == 0);
    if (have_vk == 1) CHECK_CONTAINS(out_text, "vk0");
}

TEST(devices_without_a_loader_say_why)
{
    CHECK_RUN(qeil_env(NOLIB, "devices --output json"), 0);
    cJSON *j = cJSON_Parse(out_text ? out_text : "");
    CHECK(j != NULL);
    if (!j) return;
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(j, "devices")), 1);
    CHECK_CONTAINS(cJSON_GetStringValue(cJSON_GetObjectItem(j, "vulkan_unavailable")),
                   "cannot load /nonexistent/libvulkan.so.1");
    cJSON_Delete(j);
    CHECK_RUN(qeil_env(NOLIB, "devices"), 0);
    CHECK_CONTAINS(out_text, "no Vulkan device: vulkan: cannot load");
    CHECK_RUN(qeil_env("", "devices --output csv"), 2);
    CHECK_RUN(qeil_env("", "devices --frobnicate"), 2);
    CHECK_CONTAINS(err_text, "unknown option '--frobnicate'");
    CHECK_RUN(qeil_env("", "devices extra"), 2);
    CHECK_RUN(qeil_env("", "devices --help"), 0);
    CHECK_CONTAINS(out_text, "usage: qeil devices");
}

TEST(placement_errors_are_usage_errors)
{
    CHECK_RUN(qeil_env("", "mkmodel --preset tiny-llama --type q8_0 -o %s", model), 0);
    static const struct {
        const char *spec, *msg;
    } bad[] = {
        {"all:vk9", "unknown device 'vk9' (known: cpu, vk0, cpu1)"},
        {"all:gpu", "unknown device 'gpu'"},
        {"emb..b2:cpu,head:vk0", "block 'b2' is out of range (the model has b0..b1)"},
        {"emb..b1:cpu,b1..head:vk0", "unit b1 is placed twice"},
        {"emb..b0:cpu", "unit b1 is not placed"},
        {"b1..b0:cpu,emb:cpu,head:cpu", "range 'b1..b0' runs backwards"},
        {"all", "'all' is not RANGE:DEVICE"},
        {"all:vk0,", "trailing ','"},
        {"b01:cpu", "unit 'b01' is not one of"},
        {"", "empty"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_RUN(qeil_env("", "perplexity -m %s -f %s -c 16 --placement '%s'", model, text, bad[i].spec), 2);
        CHECK_CONTAINS(err_text, bad[i].msg);
    }
    /* bench checks it before any probe or load */
    CHECK_RUN(qeil_env("", "bench -m %s -p 4 -n 2 -r 1 --bw 10 --placement all:vk7", model), 2);
    CHECK_CONTAINS(err_text, "unknown device 'vk7'");
    /* a valid placement on a device that is not there: a runtime failure */
    CHECK_RUN(qeil_env(NOLIB, "perplexity -m %s -f %s -c 16 --placement all:vk0", model, text), 1);
    CHECK_CONTAINS(err_text, "vulkan: cannot load");
}

/* perplexity of the same text with every unit on the GPU, and split */
TEST(perplexity_on_vulkan_matches_cpu)
{
    if (have_vk != 1) SKIP("no Vulkan device");
    CHECK_RUN(qeil_env("", "perplexity -m %s -f %s -c 16 -t 2 --output json", model, text), 0);
    cJSON *j = cJSON_Parse(out_text ? out_text : "");
    const double ref = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "ppl"));
    cJSON_Delete(j);
    CHECK(ref > 1.0);
    const char *specs[] = {"all:vk0", "emb..b0:cpu,b1..head:vk0", "emb:vk0,b0:cpu,b1:vk0,head:cpu"};
    for (size_t i = 0; i < 3; i++) {
        CHECK_RUN(qeil_env("", "perplexity -m %s -f %s -c 16 -t 2 --output json --placement %s",
                           model, text, specs[i]),
                  0);
        j = cJSON_Parse(out_text ? out_text : "");
        const double got = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "ppl"));
        cJSON_Delete(j);
        /* Q8_0 model: logits within 2e-2 of max |logit| (test_vulkan.c);
         * the mean log-likelihood moves far less */
        CHECK_NEAR(got, ref, 1e-3, 0.0);
    }
    CHECK_RUN(qeil_env("", "bench -m %s -p 8 -n 4 -r 1 --bw 10 --placement all:vk0 --output json",
                       model),
              0);
    j = cJSON_Parse(out_text ? out_text : "");
    CHECK(j != NULL);
    cJSON_Delete(j);
}

/* The test knobs from the command line: weights split into chunks of a
 * few rows and the staged path give the same perplexity as all:vk0 plain
 * (the logits are bit-identical, test_vulkan.c); a knob that is not a
 * number fails the placement naming it. */
TEST(perplexity_split_and_staged_on_vulkan)
{
    if (have_vk != 1) SKIP("no Vulkan device");
    CHECK_RUN(qeil_env("", "perplexity -m %s -f %s -c 16 -t 2 --output json --placement all:vk0",
                       model, text),
              0);
    char *ref = out_text ? strdup(out_text) : NULL;
    cJSON *j = cJSON_Parse(ref ? ref : "");
    const double want = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "ppl"));
    cJSON_Delete(j);
    CHECK(want > 1.0);
    CHECK_RUN(qeil_env("QEIL_VK_MAX_BUFFER=1040 QEIL_VK_FORCE_STAGING=1",
                       "perplexity -m %s -f %s -c 16 -t 2 --output json --placement all:vk0", model,
                       text),
              0);
    j = cJSON_Parse(out_text ? out_text : "");
    const double got = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "ppl"));
    cJSON_Delete(j);
    CHECK(got == want);
    free(ref);
    CHECK(qeil_env("QEIL_VK_MAX_BUFFER=abc",
                   "perplexity -m %s -f %s -c 16 -t 2 --placement all:vk0", model, text) != 0);
    CHECK_CONTAINS(err_text, "QEIL_VK_MAX_BUFFER='abc' (allowed 16..");
}

/* generate and eval through the runtime: --placement checked like the
 * other commands, and on the GPU the greedy tokens (generate) and every
 * problem's samples (eval: tokens, answers, log-likelihood) match the CPU's */
static char *json_field(const char *json, const char *key)
{
    cJSON *j = cJSON_Parse(json ? json : "");
    char *s = j ? cJSON_PrintUnformatted(cJSON_GetObjectItem(j, key)) : NULL;
    cJSON_Delete(j);
    return s;
}

TEST(generate_and_eval_on_vulkan_match_cpu)
{
    CHECK_RUN(qeil_env("", "generate -m %s -p 'the quick' -n 4 --placement all:vk9", model), 2);
    CHECK_CONTAINS(err_text, "unknown device 'vk9'");
    CHECK_RUN(qeil_env("", "eval -m %s --tasks %s --placement emb..b0:cpu", model, tasks), 2);
    CHECK_CONTAINS(err_text, "unit b1 is not placed");
    CHECK_RUN(qeil_env(NOLIB, "generate -m %s -p 'the quick' -n 4 --placement all:vk0", model), 1);
    CHECK_CONTAINS(err_text, "vulkan: cannot load");
    if (have_vk != 1) SKIP("no Vulkan device");
    const char *gen = "generate -m %s -p 'the quick brown' -n 12 --temp 0 --seed 3 -t 2 --output json";
    CHECK_RUN(qeil_env("", gen, model), 0);
    char *ref = json_field(out_text, "tokens");
    CHECK(ref && strlen(ref) > 10);
    const char *specs[] = {"all:vk0", "emb..b0:cpu,b1..head:vk0"};
    char args[512];
    for (size_t i = 0; i < 2; i++) {
        snprintf(args, sizeof args, "%s --placement %s", gen, specs[i]);
        CHECK_RUN(qeil_env("", args, model), 0);
        char *got = json_field(out_text, "tokens");
        CHECK_EQ_STR(got, ref);
        free(got);
    }
    free(ref);
    const char *ev = "eval -m %s --tasks %s --samples 3 --batch 3 -n 8 --temp 0.8 --seed 5 -t 2 "
                     "--output json";
    CHECK_RUN(qeil_env("", ev, model, tasks), 0);
    ref = json_field(out_text, "problems");
    CHECK(ref && strstr(ref, "\"tokens\""));
    snprintf(args, sizeof args, "%s --placement all:vk0", ev);
    CHECK_RUN(qeil_env("", args, model, tasks), 0);
    char *got = json_field(out_text, "problems");
    /* wall time and energy differ; the samples' answers and token counts must not */
    cJSON *a = cJSON_Parse(ref ? ref : ""), *b = cJSON_Parse(got ? got : "");
    CHECK_EQ_INT(cJSON_GetArraySize(a), cJSON_GetArraySize(b));
    for (int k = 0; k < cJSON_GetArraySize(a) && k < cJSON_GetArraySize(b); k++) {
        const char *keys[] = {"chosen", "samples", "tokens", "stage"};
        for (size_t q = 0; q < 4; q++) {
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
    free(got);
}

int main(int argc, char **argv)
{
    (void)argc;
    if (cli_harness_init(argv[0]) != 0) return 1;
    snprintf(model, sizeof model, "%s/tiny.gguf", tmpdir);
    snprintf(text, sizeof text, "%s/text.txt", tmpdir);
    FILE *f = fopen(text, "w");
    for (int i = 0; f && i < 40; i++) fprintf(f, "the quick brown fox %d jumps over the lazy dog. ", i);
    if (f) fclose(f);
    snprintf(tasks, sizeof tasks, "%s/tasks.jsonl", tmpdir);
    f = fopen(tasks, "w");
    for (int i = 0; f && i < 3; i++)
        fprintf(f, "{\"id\": %d, \"question\": \"What is %d + %d?\", \"answer\": \"%d\"}\n", i, i,
                2 * i, 3 * i);
    if (f) fclose(f);
    RUN(devices_json_lists_cpu_and_vulkan);
    RUN(devices_without_a_loader_say_why);
    RUN(placement_errors_are_usage_errors);
    RUN(perplexity_on_vulkan_matches_cpu);
    RUN(perplexity_split_and_staged_on_vulkan);
    RUN(generate_and_eval_on_vulkan_match_cpu);
    cli_harness_done();
    return test_summary("vulkan_cli");
}
