/* test_planexec_cli.c — plans run as placements (docs/cli.md "Running a
 * plan"): --plan FILE|auto and per-phase --placement on generate, bench,
 * perplexity and eval. Bad input (malformed prefill=...;decode=..., unknown
 * device, overlapping and out-of-range ranges, a plan for a catalog
 * platform, a plan whose work-unit count is not the model's, a profile
 * unit naming a device this build lacks) exits non-zero with the reason
 * and prints no result. Split plans on a two-unit profile whose units are
 * "cpu" and "cpu1" (the cpu backend as a second unit: runs everywhere) and
 * "cpu" and "vk0" (SKIP without a Vulkan device) give the all-CPU greedy
 * tokens; eval --plan auto gives the CPU's answers. Runs the qeil binary
 * of the same build directory. */
#include <cjson/cJSON.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qeil/qeil.h"
#include "test.h"

#define CLI_HARNESS_TMPDIR "/tmp/qeil-planexec-XXXXXX"
#include "cli_harness.h"

static char model[4200], tasks[4200], text[4200];
static int have_vk = -1;

static char *json_field(const char *json, const char *key)
{
    cJSON *j = cJSON_Parse(json ? json : "");
    char *s = j ? cJSON_PrintUnformatted(cJSON_GetObjectItem(j, key)) : NULL;
    cJSON_Delete(j);
    return s;
}

static void save_out(const char *path)
{
    FILE *f = fopen(path, "w");
    if (f && out_text) fputs(out_text, f);
    if (f) fclose(f);
}

static void write_json(const char *path, cJSON *j)
{
    char *s = cJSON_Print(j);
    FILE *f = fopen(path, "w");
    if (f && s) fputs(s, f);
    if (f) fclose(f);
    free(s);
}

/* profiles/example-dgpu.json as a local profile: its units stand for
 * devices a and b */
static void write_profile(const char *path, const char *name, const char *a, const char *b)
{
    char *src = slurp("profiles/example-dgpu.json");
    cJSON *j = cJSON_Parse(src ? src : "");
    free(src);
    CHECK(j != NULL);
    if (!j) return;
    cJSON_ReplaceItemInObject(j, "name", cJSON_CreateString(name));
    cJSON *units = cJSON_GetObjectItem(j, "units");
    cJSON_AddStringToObject(cJSON_GetArrayItem(units, 0), "device", a);
    cJSON_AddStringToObject(cJSON_GetArrayItem(units, 1), "device", b);
    write_json(path, j);
    cJSON_Delete(j);
}

/* A plan file `qeil plan` wrote, with the recommended plan's maps rewritten:
 * mode 0 alternating units (prefill and decode the same), 1 prefill on the
 * second unit and decode on the first, 2 the reverse; drop: remove the last
 * work unit (a plan for another model). */
static void write_split_plan(const char *src_path, const char *path, int mode, int drop)
{
    char *src = slurp(src_path);
    cJSON *j = cJSON_Parse(src ? src : "");
    free(src);
    CHECK(j != NULL);
    if (!j) return;
    const int rec = cJSON_GetObjectItem(j, "recommended")->valueint;
    cJSON *units = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "front"), rec), "units");
    const int n = cJSON_GetArraySize(units);
    for (int w = 0; w < n; w++) {
        cJSON *u = cJSON_GetArrayItem(units, w);
        const char *p = mode == 0 ? (w % 2 ? "dgpu" : "cpu") : mode == 1 ? "dgpu" : "cpu";
        const char *d = mode == 0 ? p : mode == 1 ? "cpu" : "dgpu";
        cJSON_ReplaceItemInObject(u, "prefill_device", cJSON_CreateString(p));
        cJSON_ReplaceItemInObject(u, "decode_device", cJSON_CreateString(d));
    }
    if (drop) cJSON_DeleteItemFromArray(units, n - 1);
    write_json(path, j);
    cJSON_Delete(j);
}

TEST(placement_phase_errors_are_usage_errors)
{
    static const struct {
        const char *spec, *msg;
    } bad[] = {
        {"prefill=all:cpu", "decode= is missing"},
        {"prefill=all:cpu;decode=all:gpu7", "placement: decode: unknown device 'gpu7'"},
        {"prefill=all:cpu,b0:cpu;decode=all:cpu", "unit b0 is placed twice"},
        {"prefill=emb..b5:cpu,head:cpu;decode=all:cpu", "block 'b5' is out of range"},
        {"prefill=all:cpu;decoder=all:cpu", "is not prefill=SPEC or decode=SPEC"},
        {"prefill=all:cpu;decode=all:cpu;prefill=all:cpu", "phase 'prefill' is given twice"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_RUN(qeilf("generate -m %s -p hi -n 2 --placement '%s' --output json", model,
                           bad[i].spec),
                  2);
        CHECK_CONTAINS(err_text, bad[i].msg);
        CHECK(out_text && !*out_text); /* nothing half-done on stdout */
        CHECK_RUN(qeilf("perplexity -m %s -f %s -c 16 --placement '%s'", model, text, bad[i].spec), 2);
        CHECK_CONTAINS(err_text, bad[i].msg);
        CHECK_RUN(qeilf("bench -m %s -p 4 -n 2 -r 1 --bw 10 --placement '%s'", model, bad[i].spec), 2);
        CHECK_CONTAINS(err_text, bad[i].msg);
        CHECK_RUN(qeilf("eval -m %s --tasks %s --placement '%s'", model, tasks, bad[i].spec), 2);
        CHECK_CONTAINS(err_text, bad[i].msg);
        if (test_failed_) {
            printf("  spec %s\n", bad[i].spec);
            break;
        }
    }
    CHECK_RUN(qeilf("generate -m %s -p hi --plan auto --placement all:cpu", model), 2);
    CHECK_CONTAINS(err_text, "--plan and --placement exclude each other");
    CHECK_RUN(qeilf("eval -m %s --tasks %s --plan auto --placement all:cpu", model, tasks), 2);
    CHECK_CONTAINS(err_text, "--plan and --placement exclude each other");
    CHECK_RUN(qeilf("perplexity -m %s -f %s --plan auto --placement all:cpu", model, text), 2);
    CHECK_RUN(qeilf("bench -m %s --plan auto --placement all:cpu", model), 2);
    CHECK_RUN(qeilf("generate -m %s -p hi --platform x.json", model), 2);
    CHECK_CONTAINS(err_text, "--platform is for --plan");
    /* eval's priced methods still parse */
    CHECK_RUN(qeilf("eval -m %s --tasks %s --plan greedy --limit 1 -n 2 --samples 1", model, tasks), 0);
}

TEST(plan_files_refused_by_name)
{
    char cat[4300], local[4300], bad[4300], dev9[4300];
    snprintf(cat, sizeof cat, "%s/cat.json", tmpdir);
    CHECK_RUN(qeilf("plan -m %s --platform qeil-laptop --output json --iters 200 --prompt-tokens 16 --gen-tokens 8", model), 0);
    save_out(cat);
    /* a catalog platform: its units stand for no device of this machine */
    CHECK_RUN(qeilf("generate -m %s -p hi -n 2 --plan %s --output json", model, cat), 1);
    CHECK_CONTAINS(err_text, "of platform 'qeil-laptop' stands for no local device");
    CHECK(out_text && !*out_text);
    CHECK_RUN(qeilf("eval -m %s --tasks %s --plan %s", model, tasks, cat), 1);
    CHECK_CONTAINS(err_text, "stands for no local device");
    CHECK_RUN(qeilf("perplexity -m %s -f %s -c 16 --plan %s", model, text, cat), 1);
    CHECK_RUN(qeilf("bench -m %s -p 4 -n 2 -r 1 --bw 10 --plan %s", model, cat), 1);
    /* the work-unit count of another model */
    snprintf(local, sizeof local, "%s/local-cpu1.json", tmpdir);
    write_profile(local, "local-cpu1", "cpu", "cpu1");
    char src[4300];
    snprintf(src, sizeof src, "%s/plan-cpu1.json", tmpdir);
    CHECK_RUN(qeilf("plan -m %s --platform %s --output json --iters 200 --prompt-tokens 16 "
                       "--gen-tokens 8", model, local),
              0);
    save_out(src);
    snprintf(bad, sizeof bad, "%s/short.json", tmpdir);
    write_split_plan(src, bad, 0, 1);
    CHECK_RUN(qeilf("generate -m %s -p hi -n 2 --plan %s --platform %s", model, bad, local), 1);
    CHECK_CONTAINS(err_text, "work units, the model has 4");
    /* a unit naming a device this build has no backend for */
    snprintf(dev9, sizeof dev9, "%s/local-vk9.json", tmpdir);
    write_profile(dev9, "local-cpu1", "cpu", "vk9");
    write_split_plan(src, bad, 0, 0);
    CHECK_RUN(qeilf("generate -m %s -p hi -n 2 --plan %s --platform %s", model, bad, dev9), 1);
    CHECK_CONTAINS(err_text, "stands for device 'vk9', which this build has no backend for");
    /* not a file, not JSON, no plan in it */
    CHECK_RUN(qeilf("generate -m %s -p hi --plan %s/none.json", model, tmpdir), 1);
    CHECK_CONTAINS(err_text, "cannot open");
    CHECK_RUN(qeilf("generate -m %s -p hi --plan %s --platform %s", model, text, local), 1);
    CHECK_CONTAINS(err_text, "is not JSON");
}

/* Split plans on profile (units device a, b) give the CPU's greedy tokens. */
static void split_plans_match_cpu(const char *dev)
{
    char local[4300], src[4300], plan[4300];
    snprintf(local, sizeof local, "%s/local-%s.json", tmpdir, dev);
    write_profile(local, "local-split", "cpu", dev);
    snprintf(src, sizeof src, "%s/plan-%s.json", tmpdir, dev);
    CHECK_RUN(qeilf("plan -m %s --platform %s --output json --iters 200 --prompt-tokens 16 "
                       "--gen-tokens 8", model, local),
              0);
    save_out(src);
    const char *gen = "generate -m %s -p 'the quick brown' -n 12 --temp 0 --seed 3 -t 2 --output json";
    CHECK_RUN(qeilf(gen, model), 0);
    char *ref = json_field(out_text, "tokens");
    CHECK(ref && strlen(ref) > 10);
    static const char *want[3][2] = {
        {"emb:cpu,b0:D,b1:cpu,head:D", "emb:cpu,b0:D,b1:cpu,head:D"},
        {"all:D", "all:cpu"},
        {"all:cpu", "all:D"},
    };
    char args[9000];
    for (int mode = 0; mode < 3; mode++) {
        snprintf(plan, sizeof plan, "%s/split-%s-%d.json", tmpdir, dev, mode);
        write_split_plan(src, plan, mode, 0);
        snprintf(args, sizeof args, "%s --plan %s --platform %s", gen, plan, local);
        CHECK_RUN(qeilf(args, model), 0);
        char *got = json_field(out_text, "tokens");
        CHECK_EQ_STR(got, ref);
        free(got);
        cJSON *j = cJSON_Parse(out_text ? out_text : "");
        cJSON *pl = cJSON_GetObjectItem(j, "placement"), *xs = cJSON_GetObjectItem(j, "transfers");
        for (int ph = 0; ph < 2; ph++) {
            char w[200];
            const char *t = want[mode][ph];
            size_t k = 0;
            for (; *t && k + 8 < sizeof w; t++) {
                if (*t == 'D') k += (size_t)snprintf(w + k, sizeof w - k, "%s", dev);
                else w[k++] = *t;
            }
            w[k] = '\0';
            CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(pl, ph ? "decode" : "prefill")), w);
        }
        CHECK_CONTAINS(cJSON_GetStringValue(cJSON_GetObjectItem(pl, "source")), "plan file");
        /* split phases move the prompt's KV once: prefill -> decode */
        const double kv = cJSON_GetNumberValue(cJSON_GetObjectItem(xs, "kv_B"));
        if (mode == 0) CHECK(kv == 0.0);
        else CHECK(kv > 0.0);
        const double act = cJSON_GetNumberValue(
            cJSON_GetObjectItem(cJSON_GetObjectItem(xs, "decode"), "act_B_per_token"));
        /* tiny-llama: d_model 128: 3 boundaries x 512 B per decode token */
        if (mode == 0) CHECK(act == 3.0 * 128 * 4);
        else CHECK(act == 0.0);
        cJSON_Delete(j);
        if (test_failed_) {
            printf("  device %s mode %d: %s\n", dev, mode, err_text ? err_text : "");
            break;
        }
    }
    /* perplexity and bench run the plan too */
    snprintf(plan, sizeof plan, "%s/split-%s-0.json", tmpdir, dev);
    CHECK_RUN(qeilf("perplexity -m %s -f %s -c 16 -t 2 --output json", model, text), 0);
    char *pref = json_field(out_text, "ppl");
    CHECK_RUN(qeilf("perplexity -m %s -f %s -c 16 -t 2 --output json --plan %s --platform %s",
                       model, text, plan, local),
              0);
    char *pgot = json_field(out_text, "ppl");
    if (strcmp(dev, "cpu1") == 0) CHECK_EQ_STR(pgot, pref);
    else CHECK(pgot && pref && fabs(atof(pgot) - atof(pref)) <= 1e-3 * atof(pref));
    free(pref);
    free(pgot);
    snprintf(plan, sizeof plan, "%s/split-%s-2.json", tmpdir, dev);
    CHECK_RUN(qeilf("bench -m %s -p 8 -n 4 -r 1 --bw 10 -t 2 --output json --plan %s --profile %s",
                       model, plan, local),
              0);
    char *x = json_field(out_text, "transfers");
    CHECK(x && strstr(x, "\"kv_B\":"));
    free(x);
    free(ref);
}

TEST(split_plans_on_cpu1_match_cpu) { split_plans_match_cpu("cpu1"); }

TEST(split_plans_on_vk0_match_cpu)
{
    if (have_vk != 1) SKIP("no Vulkan device");
    split_plans_match_cpu("vk0");
}

/* eval --plan auto: the same answers as eval on the CPU (greedy) */
TEST(eval_plan_auto_matches_cpu)
{
    const char *ev = "eval -m %s --tasks %s --samples 2 --batch 2 -n 6 --temp 0 --seed 5 -t 2 "
                     "--output json";
    CHECK_RUN(qeilf(ev, model, tasks), 0);
    char *ref = json_field(out_text, "problems");
    CHECK(ref && strstr(ref, "\"tokens\""));
    char args[9000], local[4300];
    snprintf(local, sizeof local, "%s/local-auto.json", tmpdir);
    write_profile(local, "local-auto", "cpu", have_vk == 1 ? "vk0" : "cpu1");
    for (int k = 0; k < 2; k++) {
        if (k == 0) snprintf(args, sizeof args, "%s --plan auto", ev);
        else snprintf(args, sizeof args, "%s --plan auto --platform %s", ev, local);
        CHECK_RUN(qeilf(args, model, tasks), 0);
        if (k == 0) CHECK_CONTAINS(err_text, "quick in-process probe");
        char *got = json_field(out_text, "problems");
        cJSON *a = cJSON_Parse(ref ? ref : ""), *b = cJSON_Parse(got ? got : "");
        CHECK_EQ_INT(cJSON_GetArraySize(a), cJSON_GetArraySize(b));
        for (int p = 0; p < cJSON_GetArraySize(a) && p < cJSON_GetArraySize(b); p++) {
            const char *keys[] = {"chosen", "samples", "tokens", "stage"};
            for (size_t q = 0; q < 4; q++) {
                char *x = cJSON_PrintUnformatted(cJSON_GetObjectItem(cJSON_GetArrayItem(a, p), keys[q]));
                char *y = cJSON_PrintUnformatted(cJSON_GetObjectItem(cJSON_GetArrayItem(b, p), keys[q]));
                CHECK_EQ_STR(y, x);
                free(x);
                free(y);
            }
        }
        cJSON *j = cJSON_Parse(out_text ? out_text : "");
        CHECK_CONTAINS(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "placement"),
                                                                "source")),
                       "auto: PGSAM");
        cJSON_Delete(j);
        cJSON_Delete(a);
        cJSON_Delete(b);
        free(got);
        if (test_failed_) break;
    }
    free(ref);
}

/* bench's roofline is the placed device's: the bandwidth of the unit
 * standing for the decode's device, the peak of the prefill's; blocks
 * split over devices take the CPU's; a device no unit stands for is an
 * error naming it (before the model loads). example-dgpu's units: "cpu"
 * (89.6 GB/s) and "dgpu" (512 GB/s), here standing for cpu and cpu1. */
static double bench_bw(const char *prof, const char *spec, char *src, size_t n)
{
    src[0] = '\0';
    if (qeilf("bench -m %s -p 8 -n 2 -r 1 -t 2 --output json --profile %s --placement '%s'", model,
              prof, spec) != 0)
        return -1;
    cJSON *j = cJSON_Parse(out_text ? out_text : "");
    cJSON *bw = cJSON_GetObjectItem(j, "bandwidth");
    const double v = cJSON_GetNumberValue(cJSON_GetObjectItem(bw, "bw_Bps"));
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(bw, "source"));
    snprintf(src, n, "%s", s ? s : "");
    cJSON_Delete(j);
    return v;
}

TEST(bench_roofline_of_the_placed_device)
{
    char local[4300], src[400];
    snprintf(local, sizeof local, "%s/roof.json", tmpdir);
    write_profile(local, "local-roof", "cpu", "cpu1");
    CHECK_NEAR(bench_bw(local, "all:cpu1", src, sizeof src), 512e9, 0, 0);
    CHECK_CONTAINS(src, "(unit dgpu)");
    CHECK_NEAR(bench_bw(local, "all:cpu", src, sizeof src), 89.6e9, 0, 0);
    CHECK_CONTAINS(src, "(unit cpu)");
    CHECK_NEAR(bench_bw(local, "emb..b0:cpu,b1..head:cpu1", src, sizeof src), 89.6e9, 0, 0);
    CHECK_NEAR(bench_bw(local, "prefill=all:cpu1;decode=all:cpu", src, sizeof src), 89.6e9, 0, 0);
    CHECK_CONTAINS(src, "bandwidth: unit cpu; peak: unit dgpu");
    CHECK_RUN(qeilf("bench -m %s -p 8 -n 2 -r 1 --profile %s --placement all:vk0", model, local), 1);
    CHECK_CONTAINS(err_text, "stands for device vk0");
    CHECK(!strstr(err_text, "vulkan:")); /* refused before the engine opened */
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
    if (qeilf("mkmodel --preset tiny-llama --type f32 -o %s", model) != 0) {
        printf("FAIL setup: mkmodel: %s\n", err_text ? err_text : "");
        return 1;
    }
    if (qeilf("devices --output json") == 0) {
        cJSON *j = cJSON_Parse(out_text ? out_text : "");
        const char *s = out_text ? strstr(out_text, "\"vk0\"") : NULL;
        have_vk = j && s ? 1 : 0;
        cJSON_Delete(j);
    }
    RUN(placement_phase_errors_are_usage_errors);
    RUN(plan_files_refused_by_name);
    RUN(split_plans_on_cpu1_match_cpu);
    RUN(split_plans_on_vk0_match_cpu);
    RUN(eval_plan_auto_matches_cpu);
    RUN(bench_roofline_of_the_placed_device);
    cli_harness_done();
    return test_summary("planexec_cli");
}
