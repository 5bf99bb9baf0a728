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

#define CLI_HARNESS_TMPDIR "/tmp/qeil-affcli-XXXXXX"
#include "cli_harness.h"

static char model[4200];

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
    cJSON *pj = cJSON_Parse(txt ? txt : "");
    free(txt);
    int seen = 0; /* 1: cpu-a, 2: cpu-b, each a unit named as its device */
    const cJSON *u;
    cJSON_ArrayForEach(u, cJSON_GetObjectItem(pj, "units"))
    {
        const cJSON *nm = cJSON_GetObjectItem(u, "name"), *dv = cJSON_GetObjectItem(u, "device");
        if (!cJSON_IsString(nm) || !cJSON_IsString(dv)) continue;
        if (strcmp(nm->valuestring, "cpu-a") == 0 && strcmp(dv->valuestring, "cpu-a") == 0) seen |= 1;
        if (strcmp(nm->valuestring, "cpu-b") == 0 && strcmp(dv->valuestring, "cpu-b") == 0) seen |= 2;
    }
    cJSON_Delete(pj);
    CHECK_EQ_INT(seen, 3);
    CHECK_RUN(qeil_env("", "plan --platform %s -m %s --output json --iters 500", prof, model), 0);
    CHECK_CONTAINS(out_text, "cpu-a");
    CHECK_CONTAINS(out_text, "cpu-b");
    CHECK_RUN(qeil_env("QEIL_CPU_CLUSTERS=a=0,b=1,a=1", "probe --quick -o %s", prof), 1);
    CHECK_CONTAINS(err_text, "QEIL_CPU_CLUSTERS: cluster 'a' is named twice");
}

int main(int argc, char **argv)
{
    (void)argc;
    if (cli_harness_init(argv[0]) != 0) return 1;
    unsetenv("QEIL_CPU_CLUSTERS");
    snprintf(model, sizeof model, "%s/tiny.gguf", tmpdir);
    if (qeil_env("", "mkmodel --preset tiny-llama --type q8_0 -o %s", model) != 0) {
        printf("FAIL setup: mkmodel\n");
        return 1;
    }
    RUN(devices_lists_clusters_and_refuses_bad_ones);
    RUN(generate_split_over_clusters_gives_cpu_tokens);
    RUN(probe_writes_cluster_units_and_plan_uses_them);
    cli_harness_done();
    return test_summary("affinity_cli");
}
