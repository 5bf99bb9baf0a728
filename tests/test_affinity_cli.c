/* test_affinity_cli.c — core-cluster devices through the qeil binary
 * (docs/engine.md "CPU clusters", docs/cli.md): `qeil devices` lists
 * QEIL_CPU_CLUSTERS's devices and refuses a bad value (exit 1, naming the
 * item); `qeil generate` with the blocks split over two clusters prints
 * all-"cpu"'s greedy tokens; a cluster device that does not exist is a
 * usage error that says where they come from; `qeil probe` writes one unit
 * per cluster with its device, and `qeil plan --platform` plans over them.
 * On this 2-CPU machine, CPUs 0 and 1 are the clusters ("a=0,b=1"); SKIP
 * where this process may not use both. Runs the qeil binary of the same
 * build directory. */
#define _GNU_SOURCE /* sched_getaffinity */
#include <cjson/cJSON.h>
#include <libgen.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qeil/qeil.h"
#include "test.h"

static char qeil_bin[4096];
static char tmpdir[] = "/tmp/qeil-affcli-XXXXXX";
static char model[4200];
static char *out_text, *err_text;

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)(n < 0 ? 0 : n) + 1);
    size_t got = s ? fread(s, 1, (size_t)(n < 0 ? 0 : n), f) : 0;
    if (s) s[got] = '\0';
    fclose(f);
    return s;
}

/* Run `ENV qeil ARGS` (env may be ""); returns the exit code. */
static int qeil_env(const char *env, const char *fmt, ...) QEIL_PRINTF(2, 3);
static int qeil_env(const char *env, const char *fmt, ...)
{
    char args[6000], cmd[12000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "%s %s %s >%s/out 2>%s/err </dev/null", env, qeil_bin, args, tmpdir,
             tmpdir);
    int st = system(cmd);
    free(out_text);
    free(err_text);
    char p[4200];
    snprintf(p, sizeof p, "%s/out", tmpdir);
    out_text = slurp(p);
    snprintf(p, sizeof p, "%s/err", tmpdir);
    err_text = slurp(p);
    if (err_text && (strstr(err_text, "Sanitizer") || strstr(err_text, "runtime error:")))
        TEST_FAIL_("sanitizer report from 'qeil %s':\n%s", args, err_text);
    if (st == -1 || !WIFEXITED(st)) return -1;
    return WEXITSTATUS(st);
}

#define CHECK_RUN(rc, want)                                                          \
    do {                                                                             \
        int r_ = (rc);                                                               \
        CHECK_EQ_INT(r_, want);                                                      \
        if (r_ != (want)) printf("  stderr: %s\n", err_text ? err_text : "(none)"); \
    } while (0)

#define AB "QEIL_CPU_CLUSTERS=a=0,b=1"

static int have_cpus_0_1(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    return sched_getaffinity(0, sizeof set, &set) == 0 && CPU_ISSET(0, &set) && CPU_ISSET(1, &set);
}

static char *json_get(const char *json, const char *key)
{
    cJSON *j = cJSON_Parse(json ? json : "");
    char *s = j ? cJSON_PrintUnformatted(cJSON_GetObjectItem(j, key)) : NULL;
    cJSON_Delete(j);
    return s;
}

TEST(devices_lists_clusters_and_refuses_bad_ones)
{
    if (!have_cpus_0_1()) SKIP("needs CPUs 0 and 1");
    CHECK_RUN(qeil_env(AB, "devices"), 0);
    CHECK_CONTAINS(out_text, "cpu-a cpu        CPUs 0, threads bound (core cluster, found by override)");
    CHECK_CONTAINS(out_text, "cpu-b cpu        CPUs 1, threads bound");
    CHECK_RUN(qeil_env(AB, "devices --output json"), 0);
    CHECK_CONTAINS(out_text, "\"id\":\t\"cpu-b\"");
    CHECK_CONTAINS(out_text, "\"cpu_list\":\t\"1\"");
    CHECK_CONTAINS(out_text, "\"cpu_clusters\":\t\"override\"");
    CHECK_RUN(qeil_env("QEIL_CPU_CLUSTERS=a=0,b=4000", "devices"), 1);
    CHECK_CONTAINS(err_text,
                   "qeil devices: QEIL_CPU_CLUSTERS: cluster 'b': cpu 4000 does not exist");
    CHECK_RUN(qeil_env("QEIL_CPU_CLUSTERS=a=0,b=0", "devices"), 1);
    CHECK_CONTAINS(err_text, "cpu 0 is in cluster 'a' and again in 'b'");
    /* taskset: CPU 1 outside the process's mask */
    if (access("/usr/bin/taskset", X_OK) == 0) {
        char env[200];
        snprintf(env, sizeof env, AB " taskset -c 0");
        CHECK_RUN(qeil_env(env, "devices"), 1);
        CHECK_CONTAINS(err_text, "cluster 'b': cpu 1 is outside the CPUs this process may run on (0)");
    }
}

TEST(generate_split_over_clusters_gives_cpu_tokens)
{
    if (!have_cpus_0_1()) SKIP("needs CPUs 0 and 1");
    const char *gen = "generate -m %s -p 'the quick brown' -n 8 --temp 0 -t 2 --output json %s";
    CHECK_RUN(qeil_env("", gen, model, ""), 0);
    char *ref = json_get(out_text, "tokens");
    CHECK(ref && strlen(ref) > 4);
    CHECK_RUN(qeil_env(AB, gen, model, "--placement emb..b0:cpu-a,b1..head:cpu-b"), 0);
    char *got = json_get(out_text, "tokens");
    CHECK_EQ_STR(got, ref);
    free(got);
    CHECK_RUN(qeil_env(AB, gen, model, "--placement all:cpu-b"), 0);
    got = json_get(out_text, "tokens");
    CHECK_EQ_STR(got, ref);
    free(got);
    free(ref);
    /* no such cluster device: a usage error saying where they come from */
    CHECK_RUN(qeil_env("", gen, model, "--placement all:cpu-a"), 2);
    CHECK_CONTAINS(err_text, "unknown device 'cpu-a' (known: cpu, vk0, cpu1; CPU cluster devices "
                             "come from the machine's core clusters or QEIL_CPU_CLUSTERS");
    /* a bad override: the engine refuses to open */
    CHECK_RUN(qeil_env("QEIL_CPU_CLUSTERS=a=9999", gen, model, ""), 1);
    CHECK_CONTAINS(err_text, "QEIL_CPU_CLUSTERS: cluster 'a': cpu 9999 does not exist");
}

TEST(probe_writes_cluster_units_and_plan_uses_them)
{
    if (!have_cpus_0_1()) SKIP("needs CPUs 0 and 1");
    char prof[4300];
    snprintf(prof, sizeof prof, "%s/probe.json", tmpdir);
    CHECK_RUN(qeil_env(AB, "probe --quick --min-time 0.005 --max-ws 2 -o %s", prof), 0);
    char *txt = slurp(prof);
    CHECK_CONTAINS(txt, "\"name\": \"cpu-a\"");
    CHECK_CONTAINS(txt, "\"device\": \"cpu-a\"");
    CHECK_CONTAINS(txt, "\"device\": \"cpu-b\"");
    free(txt);
    CHECK_RUN(qeil_env("", "plan --platform %s -m %s --output json --iters 500", prof, model), 0);
    CHECK_CONTAINS(out_text, "cpu-a");
    CHECK_CONTAINS(out_text, "cpu-b");
    CHECK_RUN(qeil_env("QEIL_CPU_CLUSTERS=a=0,b=1,a=1", "probe --quick -o %s", prof), 1);
    CHECK_CONTAINS(err_text, "QEIL_CPU_CLUSTERS: cluster 'a' is named twice");
}

int main(int argc, char **argv)
{
    (void)argc;
    char self[4096];
    snprintf(self, sizeof self, "%s", argv[0]);
    snprintf(qeil_bin, sizeof qeil_bin, "%s/../qeil", dirname(self));
    if (access(qeil_bin, X_OK) != 0 || !mkdtemp(tmpdir)) {
        printf("FAIL setup: no qeil binary at %s or no temp dir\n", qeil_bin);
        return 1;
    }
    unsetenv("QEIL_CPU_CLUSTERS");
    snprintf(model, sizeof model, "%s/tiny.gguf", tmpdir);
    if (qeil_env("", "mkmodel --preset tiny-llama --type q8_0 -o %s", model) != 0) {
        printf("FAIL setup: mkmodel\n");
        return 1;
    }
    RUN(devices_lists_clusters_and_refuses_bad_ones);
    RUN(generate_split_over_clusters_gives_cpu_tokens);
    RUN(probe_writes_cluster_units_and_plan_uses_them);
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) printf("# could not remove %s\n", tmpdir);
    free(out_text);
    free(err_text);
    return test_summary("affinity_cli");
}
