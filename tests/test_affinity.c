/* test_affinity.c — CPU devices bound to core clusters (docs/engine.md,
 * "CPU clusters"): the bound thread pool (src/core/threadpool.c), the
 * QEIL_CPU_CLUSTERS override (src/device/cpu_clusters.c), the engine's
 * "cpu-NAME" devices (src/engine/cpu_devices.c) and the probe's per-cluster
 * units naming them. On this 2-CPU machine, CPUs 0 and 1 are treated as two
 * clusters ("a=0,b=1"): a placement that splits the blocks over them gives
 * the greedy tokens of all-"cpu", and the worker threads are read back
 * bound (sched_getaffinity inside them, /proc/self/task/STAR/status). Tests
 * that need CPUs 0 and 1 SKIP where this process may not use both. */
#define _GNU_SOURCE /* sched_getaffinity, sched_getcpu, CPU_SET */
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/threadpool.h"
#include "device/cpu_clusters.h"
#include "qeil/device.h"
#include "qeil/engine.h"
#include "qeil/plan.h"
#include "qeil/runtime.h"
#include "qeil/workload.h"
#include "test.h"

static qeil_ctx *ctx;
static char tmpdir[] = "/tmp/qeil-affinity-XXXXXX";
static char model[4200];

/* May this thread run on CPUs 0 and 1? */
static int have_cpus_0_1(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    return sched_getaffinity(0, sizeof set, &set) == 0 && CPU_ISSET(0, &set) && CPU_ISSET(1, &set);
}

/* The calling thread's CPU list, e.g. "0-1". */
static void self_cpus(char *buf, size_t n)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    int cpus[QEIL_PROBE_MAX_THREADS], k = 0;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        for (int c = 0; c < CPU_SETSIZE && k < QEIL_PROBE_MAX_THREADS; c++)
            if (CPU_ISSET(c, &set)) cpus[k++] = c;
    qeil_cpu_list_format(cpus, k, buf, n);
}

/* How many of this process's threads have Cpus_allowed_list == want. */
static int threads_bound_to(const char *want)
{
    DIR *d = opendir("/proc/self/task");
    if (!d) return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') continue;
        char path[300], line[512];
        snprintf(path, sizeof path, "/proc/self/task/%s/status", de->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue; /* the thread ended meanwhile */
        while (fgets(line, sizeof line, f))
            if (strncmp(line, "Cpus_allowed_list:", 18) == 0) {
                const char *v = line + 18;
                while (*v == ' ' || *v == '\t') v++;
                n += strncmp(v, want, strlen(want)) == 0 && v[strlen(want)] == '\n';
                break;
            }
        fclose(f);
    }
    closedir(d);
    return n;
}

/* ------------------------------------------------------------------------ */
/* The bound thread pool                                                     */
/* ------------------------------------------------------------------------ */

typedef struct {
    char cpus[8][64];       /* each thread's CPU list, seen from inside it */
    pthread_t self[8];
    atomic_int covered[100];
} pin_args;

static void pin_task(void *p, int ith, int nth)
{
    pin_args *a = p;
    (void)nth;
    self_cpus(a->cpus[ith], sizeof a->cpus[ith]);
    a->self[ith] = pthread_self();
}

static void cover_range(void *p, int64_t b, int64_t e)
{
    pin_args *a = p;
    for (int64_t i = b; i < e; i++) atomic_fetch_add(&a->covered[i], 1);
}

TEST(tpool_pinned_threads_run_on_their_cpus)
{
    if (!have_cpus_0_1()) SKIP("needs CPUs 0 and 1");
    char before[64], after[64];
    self_cpus(before, sizeof before);
    static const struct {
        int cpus[2], n_cpus, n_threads;
        const char *want;
    } cases[] = {{{1, 0}, 1, 1, "1"}, {{0, 0}, 1, 2, "0"}, {{0, 1}, 2, 2, "0-1"}, {{1, 0}, 2, 3, "0-1"}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        qeil_tpool *pool = NULL;
        CHECK_EQ_INT(qeil_tpool_create_pinned(ctx, cases[c].n_threads, cases[c].cpus,
                                              cases[c].n_cpus, &pool),
                     QEIL_OK);
        if (!pool) return;
        CHECK_EQ_INT(qeil_tpool_pinned(pool), 1);
        CHECK_EQ_INT(qeil_tpool_n_threads(pool), cases[c].n_threads);
        static pin_args a;
        memset(&a, 0, sizeof a);
        qeil_tpool_run(pool, pin_task, &a);
        for (int t = 0; t < cases[c].n_threads; t++) {
            CHECK_EQ_STR(a.cpus[t], cases[c].want);
            /* every thread is a worker: the caller only waits */
            CHECK(!pthread_equal(a.self[t], pthread_self()));
        }
        /* the static split still covers every item once */
        for (int64_t n = 1; n <= 100; n += 33) {
            for (int i = 0; i < 100; i++) atomic_store(&a.covered[i], 0);
            qeil_tpool_parallel_for(pool, n, cover_range, &a);
            for (int64_t i = 0; i < n; i++) CHECK_EQ_INT(atomic_load(&a.covered[i]), 1);
        }
        qeil_tpool_free(pool);
    }
    self_cpus(after, sizeof after);
    CHECK_EQ_STR(after, before); /* the caller's own affinity is left alone */
    /* bad arguments */
    qeil_tpool *pool = NULL;
    const int bad_cpu[] = {-1};
    CHECK_EQ_INT(qeil_tpool_create_pinned(ctx, 1, bad_cpu, 1, &pool), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "cpu -1");
    CHECK_EQ_INT(qeil_tpool_create_pinned(ctx, 1, NULL, 1, &pool), QEIL_ERR_INVALID);
    CHECK_EQ_INT(qeil_tpool_create_pinned(ctx, 1, bad_cpu, 0, &pool), QEIL_ERR_RANGE);
    CHECK(pool == NULL);
}

/* ------------------------------------------------------------------------ */
/* QEIL_CPU_CLUSTERS: the parser                                             */
/* ------------------------------------------------------------------------ */

TEST(cluster_override_parses_and_names_bad_items)
{
    /* a root whose sysfs says CPUs 0-3 exist; this "process" may use 0-2 */
    char root[4300], dir[4400], path[4500];
    snprintf(root, sizeof root, "%s/root", tmpdir);
    const char *parts[] = {"", "/sys", "/sys/devices", "/sys/devices/system", "/sys/devices/system/cpu"};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        snprintf(dir, sizeof dir, "%s%s", root, parts[i]);
        mkdir(dir, 0700);
    }
    snprintf(path, sizeof path, "%s/sys/devices/system/cpu/present", root);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs("0-3\n", f);
    fclose(f);
    const int allowed[] = {2, 0, 1};

    qeil_cpu_clusters cl;
    CHECK_EQ_INT(qeil_cpu_clusters_parse(ctx, "X", "p=0-1,e=2", root, allowed, 3, &cl), QEIL_OK);
    CHECK_EQ_INT(cl.n, 2);
    CHECK_EQ_STR(cl.source, "override");
    CHECK_EQ_STR(cl.c[0].name, "p");
    CHECK_EQ_INT(cl.c[0].n_cpus, 2);
    CHECK_EQ_INT(cl.c[0].cpus[0], 0);
    CHECK_EQ_INT(cl.c[0].cpus[1], 1);
    CHECK_EQ_STR(cl.c[1].name, "e");
    CHECK_EQ_INT(cl.c[1].n_cpus, 1);
    CHECK_EQ_INT(cl.c[1].cpus[0], 2);
    /* a list runs on after a comma until the next NAME=; order kept, CPUs sorted */
    CHECK_EQ_INT(qeil_cpu_clusters_parse(ctx, "X", "little=2,0,big7=1", root, allowed, 3, &cl), QEIL_OK);
    CHECK_EQ_INT(cl.n, 2);
    CHECK_EQ_STR(cl.c[0].name, "little");
    CHECK_EQ_INT(cl.c[0].n_cpus, 2);
    CHECK_EQ_INT(cl.c[0].cpus[0], 0);
    CHECK_EQ_INT(cl.c[0].cpus[1], 2);
    CHECK_EQ_STR(cl.c[1].name, "big7");
    /* one cluster is allowed (a bound device on a uniform machine) */
    CHECK_EQ_INT(qeil_cpu_clusters_parse(ctx, "X", "all=0-2", root, allowed, 3, &cl), QEIL_OK);
    CHECK_EQ_INT(cl.n, 1);
    CHECK_EQ_INT(cl.c[0].n_cpus, 3);

    static const struct {
        const char *spec;
        qeil_status st;
        const char *msg;
    } bad[] = {
        {"", QEIL_ERR_FORMAT, "X: empty (e.g. p=0-3,e=4-7)"},
        {"0,a=1", QEIL_ERR_FORMAT, "X: '0' comes before any NAME="},
        {"A=0", QEIL_ERR_FORMAT, "X: cluster name 'A' (allowed: 1 to 15 of a-z, 0-9"},
        {"=0", QEIL_ERR_FORMAT, "X: cluster name '' (allowed"},
        {"abcdefghijklmnop=0", QEIL_ERR_FORMAT, "cluster name 'abcdefghijklmnop'"},
        {"a-b=0", QEIL_ERR_FORMAT, "cluster name 'a-b'"},
        {"a=0,a=1", QEIL_ERR_INVALID, "X: cluster 'a' is named twice"},
        {"a=0,b=0-1", QEIL_ERR_INVALID, "X: cpu 0 is in cluster 'a' and again in 'b' (clusters are disjoint)"},
        {"a=0,0", QEIL_ERR_INVALID, "X: cpu 0 is in cluster 'a' and again in 'a'"},
        {"a=1-0", QEIL_ERR_FORMAT, "X: cluster 'a': range '1-0' runs backwards"},
        {"a=x", QEIL_ERR_FORMAT, "X: cluster 'a': 'x' is not a CPU number or range N-M (CPU numbers 0..65535"},
        {"a=", QEIL_ERR_FORMAT, "X: cluster 'a': '' is not a CPU number"},
        {"a=0-", QEIL_ERR_FORMAT, "X: cluster 'a': '0-' is not a CPU number"},
        {"a=-1", QEIL_ERR_FORMAT, "X: cluster 'a': '-1' is not a CPU number"},
        {"a=99999", QEIL_ERR_FORMAT, "'99999' is not a CPU number"},
        {"a=0,", QEIL_ERR_FORMAT, "X: trailing ','"},
        {"a=0,b=7", QEIL_ERR_RANGE, "X: cluster 'b': cpu 7 does not exist (this machine has cpu 0-3)"},
        {"a=0,b=3", QEIL_ERR_RANGE,
         "X: cluster 'b': cpu 3 is outside the CPUs this process may run on (0-2)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        qeil_ctx_clear(ctx);
        CHECK_EQ_INT(qeil_cpu_clusters_parse(ctx, "X", bad[i].spec, root, allowed, 3, &cl), bad[i].st);
        CHECK_CONTAINS(qeil_ctx_errmsg(ctx), bad[i].msg);
    }
    const int allowed4[] = {0, 1, 2, 3};
    CHECK_EQ_INT(qeil_cpu_clusters_parse(ctx, "X", "a=0,b=1,c=2,d=3,e=4", root, allowed4, 4, &cl),
                 QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "X: more than 4 clusters (allowed 1..4)");
    /* without a readable present list, a CPU is checked against the allowed set */
    CHECK_EQ_INT(qeil_cpu_clusters_parse(ctx, "X", "a=0,b=3", tmpdir, allowed, 3, &cl), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "cpu 3 is outside the CPUs this process may run on (0-2)");
    CHECK_EQ_INT(qeil_cpu_clusters_parse(ctx, "X", NULL, root, allowed, 3, &cl), QEIL_ERR_INVALID);
}

/* ------------------------------------------------------------------------ */
/* The engine's cluster devices                                              */
/* ------------------------------------------------------------------------ */

TEST(make_tiny_model)
{
    qeil_mkmodel_params p = qeil_mkmodel_default_params();
    p.arch = QEIL_ARCH_LLAMA;
    p.n_layers = 4;
    p.d_model = 64;
    p.n_heads = 4;
    p.n_kv_heads = 2;
    p.d_ff = 96;
    p.vocab = 320;
    p.ctx = 128;
    p.type = QEIL_GGML_Q8_0;
    p.seed = 3;
    snprintf(model, sizeof model, "%s/tiny.gguf", tmpdir);
    CHECK_EQ_INT(qeil_mkmodel_write(ctx, &p, model), QEIL_OK);
    if (test_failed_) model[0] = '\0';
}

static size_t device_id(const char *name)
{
    for (size_t id = 0; id < qeil_engine_n_backends(); id++)
        if (strcmp(qeil_engine_device_name(id), name) == 0) return id;
    return (size_t)-1;
}

TEST(override_makes_cluster_devices)
{
    if (!have_cpus_0_1()) SKIP("needs CPUs 0 and 1");
    char src[32];
    unsetenv("QEIL_CPU_CLUSTERS");
    const size_t n0 = qeil_engine_n_backends();
    CHECK_EQ_INT(qeil_engine_cpu_clusters(ctx, src, sizeof src), QEIL_OK);
    CHECK_EQ_STR(qeil_engine_device_name(0), "cpu");
    CHECK_EQ_STR(qeil_engine_device_name(2), "cpu1");
    CHECK_EQ_INT(qeil_engine_device_cpus(0, NULL, 0), 0); /* "cpu" is bound to no set */

    setenv("QEIL_CPU_CLUSTERS", "a=0,b=1", 1);
    CHECK_EQ_INT(qeil_engine_cpu_clusters(ctx, src, sizeof src), QEIL_OK);
    CHECK_EQ_STR(src, "override");
    CHECK_EQ_INT(qeil_engine_n_backends(), 5);
    CHECK_EQ_STR(qeil_engine_device_name(3), "cpu-a");
    CHECK_EQ_STR(qeil_engine_device_name(4), "cpu-b");
    CHECK(qeil_engine_device_name(5) == NULL);
    CHECK_EQ_STR(qeil_engine_backend_name(4), "cpu");
    char list[32];
    CHECK_EQ_INT(qeil_engine_device_cpus(3, list, sizeof list), 1);
    CHECK_EQ_STR(list, "0");
    CHECK_EQ_INT(qeil_engine_device_cpus(4, list, sizeof list), 1);
    CHECK_EQ_STR(list, "1");
    uint8_t b[6];
    CHECK_EQ_INT(qeil_placement_parse(ctx, "emb..b1:cpu-a,b2..head:cpu-b", 4, b, 6), QEIL_OK);
    CHECK_EQ_INT(b[0], 3);
    CHECK_EQ_INT(b[5], 4);
    CHECK_EQ_INT(qeil_placement_parse(ctx, "all:cpu-z", 4, b, 6), QEIL_ERR_NOTFOUND);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "unknown device 'cpu-z' (known: cpu, vk0, cpu1, cpu-a, cpu-b;");
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "QEIL_CPU_CLUSTERS");
    /* a fault on a cluster device parses too */
    qeil_fault fl;
    CHECK_EQ_INT(qeil_fault_parse(ctx, "cpu-b:error:3", &fl), QEIL_OK);
    CHECK_EQ_INT(fl.device, 4);

    unsetenv("QEIL_CPU_CLUSTERS");
    CHECK_EQ_INT(qeil_engine_n_backends(), n0); /* re-read when the override goes */
}

/* Greedy tokens of the tiny model under a placement ("" = the default). */
static int greedy(const char *placement, int n_threads, int32_t *out, int n_out, int check_bound)
{
    qeil_engine_params ep = qeil_engine_default_params();
    ep.n_threads = n_threads;
    ep.n_ctx = 64;
    qeil_engine *e = NULL;
    if (qeil_engine_open(ctx, model, &ep, &e) != QEIL_OK) {
        TEST_FAIL_("open: %s", qeil_ctx_errmsg(ctx));
        return -1;
    }
    const uint32_t nu = qeil_engine_desc(e)->n_layers + 2;
    uint8_t b[QEIL_MAX_WUNITS];
    if (placement[0] && (qeil_placement_parse(ctx, placement, nu - 2, b, nu) != QEIL_OK ||
                         qeil_engine_set_placement(e, b, nu) != QEIL_OK)) {
        TEST_FAIL_("placement %s: %s", placement, qeil_ctx_errmsg(ctx));
        qeil_engine_free(e);
        return -1;
    }
    const uint32_t V = qeil_engine_n_vocab(e);
    float *lg = malloc(V * sizeof *lg);
    int32_t tok[8] = {1, 17, 42, 99, 7};
    uint32_t n = 5;
    int got = 0;
    for (; got < n_out && lg; got++) {
        if (qeil_engine_eval(e, 0, tok, n, lg, 0) != QEIL_OK) {
            TEST_FAIL_("eval: %s", qeil_ctx_errmsg(ctx));
            break;
        }
        uint32_t best = 0;
        for (uint32_t v = 1; v < V; v++)
            if (lg[v] > lg[best]) best = v;
        out[got] = (int32_t)best;
        tok[0] = (int32_t)best;
        n = 1;
    }
    if (check_bound) { /* while the engine lives: its workers, read back */
        CHECK_EQ_INT(threads_bound_to("0"), 1); /* cpu-a: 1 CPU, so 1 worker */
        CHECK_EQ_INT(threads_bound_to("1"), 1);
        char me[64];
        self_cpus(me, sizeof me);
        CHECK_EQ_STR(me, "0-1"); /* the caller is not moved */
    }
    free(lg);
    qeil_engine_free(e);
    return got;
}

TEST(split_over_two_clusters_matches_cpu)
{
    if (!model[0]) SKIP("no model");
    if (!have_cpus_0_1()) SKIP("needs CPUs 0 and 1");
    char me[64];
    self_cpus(me, sizeof me);
    if (strcmp(me, "0-1") != 0) SKIP("this process may run on more CPUs than 0 and 1");
    enum { N = 8 };
    int32_t ref[N], got[N];
    CHECK_EQ_INT(greedy("", 2, ref, N, 0), N);
    setenv("QEIL_CPU_CLUSTERS", "a=0,b=1", 1);
    static const char *places[] = {"emb..b1:cpu-a,b2..head:cpu-b", "emb:cpu-b,b0:cpu-a,b1:cpu,b2..head:cpu-b",
                                   "all:cpu-a"};
    for (size_t i = 0; i < sizeof places / sizeof places[0]; i++) {
        memset(got, 0xff, sizeof got);
        CHECK_EQ_INT(greedy(places[i], 2, got, N, i == 0), N);
        for (int t = 0; t < N; t++) CHECK_EQ_INT(got[t], ref[t]);
    }
    CHECK_EQ_INT(threads_bound_to("0"), 0); /* the engine is gone, and its workers */
    /* fewer threads than the cluster's CPUs, as asked (-t 1): one worker on 0-1 */
    setenv("QEIL_CPU_CLUSTERS", "ab=0-1", 1);
    int32_t one[N];
    CHECK_EQ_INT(greedy("all:cpu-ab", 1, one, N, 0), N);
    for (int t = 0; t < N; t++) CHECK_EQ_INT(one[t], ref[t]);
    unsetenv("QEIL_CPU_CLUSTERS");
}

TEST(bad_override_is_a_clear_error)
{
    if (!model[0]) SKIP("no model");
    qeil_engine *e = NULL;
    char src[32];
    setenv("QEIL_CPU_CLUSTERS", "a=0,b=4000", 1);
    CHECK_EQ_INT(qeil_engine_cpu_clusters(ctx, src, sizeof src), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "QEIL_CPU_CLUSTERS: cluster 'b': cpu 4000 does not exist");
    CHECK_EQ_INT(qeil_engine_n_backends(), 3); /* no cluster device */
    qeil_ctx_clear(ctx);
    CHECK_EQ_INT(qeil_engine_open(ctx, model, NULL, &e), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "QEIL_CPU_CLUSTERS: cluster 'b': cpu 4000 does not exist");
    CHECK(e == NULL);
    setenv("QEIL_CPU_CLUSTERS", "a=0;b=1", 1);
    CHECK_EQ_INT(qeil_engine_open(ctx, model, NULL, &e), QEIL_ERR_FORMAT);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "QEIL_CPU_CLUSTERS: cluster 'a': '0;b=1' is not a CPU number");

    /* a CPU outside the thread's affinity mask (taskset, a cpuset) */
    if (have_cpus_0_1()) {
        cpu_set_t all, only0;
        sched_getaffinity(0, sizeof all, &all);
        CPU_ZERO(&only0);
        CPU_SET(0, &only0);
        CHECK_EQ_INT(sched_setaffinity(0, sizeof only0, &only0), 0);
        setenv("QEIL_CPU_CLUSTERS", "a=0,b=1", 1);
        CHECK_EQ_INT(qeil_engine_cpu_clusters(ctx, src, sizeof src), QEIL_ERR_RANGE);
        CHECK_CONTAINS(qeil_ctx_errmsg(ctx),
                       "QEIL_CPU_CLUSTERS: cluster 'b': cpu 1 is outside the CPUs this process may "
                       "run on (0)");
        CHECK_EQ_INT(qeil_engine_open(ctx, model, NULL, &e), QEIL_ERR_RANGE);
        CHECK_EQ_INT(sched_setaffinity(0, sizeof all, &all), 0);
        CHECK_EQ_INT(qeil_engine_cpu_clusters(ctx, src, sizeof src), QEIL_OK); /* re-read */
    }
    unsetenv("QEIL_CPU_CLUSTERS");
    CHECK_EQ_INT(qeil_engine_cpu_clusters(ctx, src, sizeof src), QEIL_OK);
}

/* ------------------------------------------------------------------------ */
/* The probe's per-cluster units name the devices; a plan maps onto them     */
/* ------------------------------------------------------------------------ */

TEST(probe_with_override_plans_onto_bound_devices)
{
    if (!model[0]) SKIP("no model");
    if (!have_cpus_0_1()) SKIP("needs CPUs 0 and 1");
    setenv("QEIL_CPU_CLUSTERS", "a=0,b=1", 1);
    qeil_probe_params p = qeil_probe_default_params();
    p.max_threads = 2;
    p.min_time_s = 0.005;
    p.max_ws_B = 1u << 20;
    p.gpus = 0; /* the clusters only (a Vulkan device would add a unit) */
    static qeil_probe_result res;
    CHECK_EQ_INT(qeil_probe_run(ctx, &p, &res), QEIL_OK);
    CHECK_EQ_INT(res.n_clusters, 2);
    CHECK_EQ_STR(res.cluster_source, "override");
    CHECK_EQ_STR(res.clusters[0].cpus, "0");
    CHECK_EQ_STR(res.clusters[1].cpus, "1");
    static qeil_platform pf;
    CHECK_EQ_INT(qeil_probe_to_platform(ctx, &res, &pf), QEIL_OK);
    CHECK_EQ_INT(pf.n_units, 2);
    CHECK_EQ_STR(pf.units[0].name, "cpu-a");
    CHECK_EQ_STR(pf.units[0].device, "cpu-a");
    CHECK_EQ_STR(pf.units[1].device, "cpu-b");
    if (test_failed_) {
        unsetenv("QEIL_CPU_CLUSTERS");
        return;
    }
    /* the profile round-trips with its devices */
    char path[4300];
    snprintf(path, sizeof path, "%s/probe.json", tmpdir);
    CHECK_EQ_INT(qeil_platform_write_file(ctx, &pf, path), QEIL_OK);
    static qeil_platform back;
    CHECK_EQ_INT(qeil_platform_load(ctx, path, &back), QEIL_OK);
    CHECK_EQ_STR(back.units[1].device, "cpu-b");

    /* a hand-made split and the planner's knee, each through
     * qeil_plan_placement onto the bound devices: the tokens of "cpu" */
    enum { N = 6 };
    int32_t ref[N], got[N];
    unsetenv("QEIL_CPU_CLUSTERS");
    CHECK_EQ_INT(greedy("", 2, ref, N, 0), N);
    setenv("QEIL_CPU_CLUSTERS", "a=0,b=1", 1);
    const uint32_t nu = 6;
    qeil_assignment a;
    memset(&a, 0, sizeof a);
    for (uint32_t w = 0; w < nu; w++) a.dc_unit[w] = a.pf_unit[w] = w < 3 ? 0 : 1;
    uint8_t b[QEIL_MAX_WUNITS];
    CHECK_EQ_INT(qeil_plan_placement(ctx, &back, &a, 1, nu, b), QEIL_OK);
    CHECK_EQ_INT(b[0], device_id("cpu-a"));
    CHECK_EQ_INT(b[5], device_id("cpu-b"));

    qeil_engine *e = NULL;
    qeil_engine_params ep = qeil_engine_default_params();
    ep.n_threads = 2;
    ep.n_ctx = 64;
    CHECK_EQ_INT(qeil_engine_open(ctx, model, &ep, &e), QEIL_OK);
    if (!e) return;
    qeil_workload_params wp = qeil_workload_default_params();
    wp.prompt_tokens = 16;
    wp.gen_tokens = 16;
    static qeil_workload wl;
    CHECK_EQ_INT(qeil_workload_build(ctx, qeil_engine_desc(e), &wp, &wl), QEIL_OK);
    qeil_engine_free(e);
    qeil_plan_params pp = qeil_plan_default_params();
    pp.iters = 2000;
    qeil_front *fr = NULL;
    CHECK_EQ_INT(qeil_plan_search(ctx, &back, &wl, &pp, &fr), QEIL_OK);
    if (fr) {
        const qeil_assignment *knee = qeil_front_plan(fr, qeil_front_knee(fr));
        uint8_t kb[QEIL_MAX_WUNITS];
        CHECK_EQ_INT(qeil_plan_placement(ctx, &back, knee, 1, nu, kb), QEIL_OK);
        char spec[256] = "";
        for (uint32_t w = 0; w < nu; w++) {
            char item[48];
            const char *u = w == 0 ? "emb" : w == nu - 1 ? "head" : NULL;
            char bn[8];
            if (!u) {
                snprintf(bn, sizeof bn, "b%u", w - 1);
                u = bn;
            }
            snprintf(item, sizeof item, "%s%s:%s", w ? "," : "", u, qeil_engine_device_name(kb[w]));
            strncat(spec, item, sizeof spec - strlen(spec) - 1);
        }
        CHECK(strstr(spec, "cpu-a") || strstr(spec, "cpu-b"));
        memset(got, 0xff, sizeof got);
        CHECK_EQ_INT(greedy(spec, 2, got, N, 0), N);
        for (int t = 0; t < N; t++) CHECK_EQ_INT(got[t], ref[t]);
        qeil_front_free(fr);
    }
    /* a bad override stops the probe with its error */
    setenv("QEIL_CPU_CLUSTERS", "a=0,b=4000", 1);
    CHECK_EQ_INT(qeil_probe_run(ctx, &p, &res), QEIL_ERR_RANGE);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "QEIL_CPU_CLUSTERS: cluster 'b': cpu 4000 does not exist");
    unsetenv("QEIL_CPU_CLUSTERS");
}

int main(void)
{
    ctx = qeil_ctx_create(NULL);
    if (!ctx || !mkdtemp(tmpdir)) return 1;
    unsetenv("QEIL_CPU_CLUSTERS");
    RUN(tpool_pinned_threads_run_on_their_cpus);
    RUN(cluster_override_parses_and_names_bad_items);
    RUN(make_tiny_model);
    RUN(override_makes_cluster_devices);
    RUN(split_over_two_clusters_matches_cpu);
    RUN(bad_override_is_a_clear_error);
    RUN(probe_with_override_plans_onto_bound_devices);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) printf("# could not remove %s\n", tmpdir);
    qeil_ctx_free(ctx);
    return test_summary("affinity");
}
