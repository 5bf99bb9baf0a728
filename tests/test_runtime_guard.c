/* test_runtime_guard.c — the thermal guard inside the runtime on a tiny
 * model the test writes (qeil_mkmodel_write, tiny-llama q8_0): inactive,
 * with its reason, where no temperature sensor exists (this machine, an
 * empty root); on a copy of the intel-laptop sensor fixture it reads the
 * CPU package temperature every decode step and reports the throttle
 * counters' increments as ground truth; on a hot fixture it lowers the
 * CPU's scaling_max_freq in the copy (the values written are checked) and
 * restores them when the runtime is freed. Run from the repository root. */
#include <dirent.h>
#include <libgen.h>
#include <sys/stat.h>
#include <math.h>
#include <unistd.h>

#include "qeil/runtime.h"
#include "test.h"

static char tmpdir[] = "/tmp/qeil-rt-guard-XXXXXX";
static char model[4200];

TEST(make_tiny_model)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_mkmodel_params p;
    snprintf(model, sizeof model, "%s/tiny-q8_0.gguf", tmpdir);
    CHECK_EQ_INT(qeil_mkmodel_preset(ctx, "tiny-llama", &p), QEIL_OK);
    p.type = QEIL_GGML_Q8_0;
    p.seed = 1;
    CHECK_EQ_INT(qeil_mkmodel_write(ctx, &p, model), QEIL_OK);
    qeil_ctx_free(ctx);
    if (test_failed_) model[0] = '\0';
}

typedef struct {
    char temp_path[4400];  /* coretemp's "Package id 0" input in the copy */
    char thr_path[4400];   /* cpu0 core_throttle_count in the copy */
    long long thr_base;
    int calls;
    int rising;            /* 1: +1 °C per reading from 50 °C */
} hook_state;

static void guard_hook(void *user)
{
    hook_state *h = user;
    h->calls++;
    FILE *f;
    /* the first reading is the request's first throttle sample: from the
     * second on, 7 more throttle events */
    if (h->calls >= 2 && (f = fopen(h->thr_path, "w"))) {
        fprintf(f, "%lld\n", h->thr_base + 7);
        fclose(f);
    }
    if (h->rising && (f = fopen(h->temp_path, "w"))) {
        fprintf(f, "%d\n", 50000 + 1000 * h->calls);
        fclose(f);
    }
}

static long long read_ll(const char *path)
{
    FILE *f = fopen(path, "r");
    long long v = -1;
    if (!f) return -1;
    if (fscanf(f, "%lld", &v) != 1) v = -1;
    fclose(f);
    return v;
}

static void write_ll(const char *path, long long v)
{
    FILE *f = fopen(path, "w");
    if (!f) return;
    fprintf(f, "%lld\n", v);
    fclose(f);
}

/* A fresh copy of the intel-laptop tree; fills the hook's paths. */
static const char *copy_laptop(const char *name, hook_state *h)
{
    static char root[4300];
    char cmd[9000];
    snprintf(root, sizeof root, "%s/%s", tmpdir, name);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r tests/data/sense/intel-laptop '%s'", root, root);
    if (system(cmd) != 0) printf("  cannot copy the fixture\n");
    memset(h, 0, sizeof *h);
    for (int c = 0; c < 8; c++) {
        char lab[4400], buf[64] = "";
        for (int t = 1; t < 8; t++) {
            snprintf(lab, sizeof lab, "%s/sys/class/hwmon/hwmon%d/temp%d_label", root, c, t);
            FILE *f = fopen(lab, "r");
            if (!f) continue;
            if (fgets(buf, sizeof buf, f) && strncmp(buf, "Package id 0", 12) == 0)
                snprintf(h->temp_path, sizeof h->temp_path, "%s/sys/class/hwmon/hwmon%d/temp%d_input",
                         root, c, t);
            fclose(f);
        }
    }
    snprintf(h->thr_path, sizeof h->thr_path,
             "%s/sys/devices/system/cpu/cpu0/thermal_throttle/core_throttle_count", root);
    h->thr_base = read_ll(h->thr_path);
    return root;
}

static qeil_runtime *open_rt(qeil_ctx *ctx, const char *root, hook_state *h, int guard)
{
    qeil_runtime_params rp = qeil_runtime_default_params();
    rp.model_path = model;
    rp.batch = 0;
    rp.samples = 1;
    rp.meter.root = root;
    rp.guard = guard;
    rp.guard_params.min_period_s = 0; /* every decode step */
    rp.guard_hook = h ? guard_hook : NULL;
    rp.guard_hook_user = h;
    qeil_runtime *rt = NULL;
    if (qeil_runtime_create(ctx, &rp, &rt) != QEIL_OK) {
        printf("  runtime_create: %s\n", qeil_ctx_errmsg(ctx));
        return NULL;
    }
    qeil_sampler_params sp = qeil_sampler_default_params();
    sp.seed = 5;
    if (qeil_runtime_set_sampler(rt, &sp) != QEIL_OK) {
        qeil_runtime_free(rt);
        return NULL;
    }
    return rt;
}

static int generate(qeil_runtime *rt, uint32_t n)
{
    int32_t prompt[3] = {1, 2, 3};
    qeil_runtime_gen_result g;
    return qeil_runtime_generate(rt, prompt, 3, n, NULL, NULL, NULL, NULL, &g) == QEIL_OK;
}

TEST(inactive_without_a_temperature_sensor)
{
    if (!model[0]) SKIP("no model");
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    char empty[4300];
    snprintf(empty, sizeof empty, "%s/empty", tmpdir);
    mkdir(empty, 0755);
    qeil_runtime *rt = open_rt(ctx, empty, NULL, 1);
    CHECK(rt != NULL);
    if (rt && generate(rt, 4)) {
        qeil_runtime_guard_report r;
        qeil_runtime_guard_report_get(rt, &r);
        CHECK_EQ_INT(r.active, 0);
        CHECK_CONTAINS(r.reason, "no temperature sensor under");
        CHECK_CONTAINS(r.reason, empty);
        CHECK_EQ_INT(r.throttle_known, 0); /* no counter: unknown, not 0 */
        CHECK_EQ_INT(r.n_actions, 0);
        CHECK_EQ_INT(r.readings, 0);
    }
    qeil_runtime_free(rt);
    /* guard off */
    rt = open_rt(ctx, empty, NULL, 0);
    qeil_runtime_guard_report r;
    qeil_runtime_guard_report_get(rt, &r);
    CHECK_EQ_INT(r.active, 0);
    CHECK_EQ_STR(r.reason, "guard off");
    qeil_runtime_free(rt);
    qeil_ctx_free(ctx);
}

TEST(reads_temperatures_and_counts_throttles)
{
    if (!model[0]) SKIP("no model");
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    hook_state h;
    const char *root = copy_laptop("reads", &h);
    CHECK(h.temp_path[0] && h.thr_base >= 0);
    h.rising = 1;
    qeil_runtime *rt = open_rt(ctx, root, &h, 1);
    CHECK(rt != NULL);
    if (rt && generate(rt, 6)) {
        qeil_runtime_guard_report r;
        qeil_runtime_guard_report_get(rt, &r);
        CHECK_EQ_INT(r.active, 1);
        CHECK_CONTAINS(r.reason, "cpu <- hwmon:coretemp:Package id 0");
        /* begin (1 throttle sample + 1 reading), one per decode step (5),
         * and the end's throttle sample: 8 hook calls, 6 readings */
        CHECK_EQ_INT(h.calls, 8);
        CHECK_EQ_INT(r.readings, 6);
        /* the hottest reading is the last one: 50 + 7 °C */
        CHECK_NEAR(r.max_temp_C, 57, 0, 1e-9);
        CHECK_EQ_INT(r.throttle_known, 1);
        CHECK_EQ_INT(r.throttle_events, 7);
        CHECK_EQ_INT(r.n_actions, 0); /* 57 °C is far from 0.85 × 105 */
    }
    qeil_runtime_free(rt);
    qeil_ctx_free(ctx);
}

TEST(hot_cpu_lowers_scaling_max_freq_and_restores_it)
{
    if (!model[0]) SKIP("no model");
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    hook_state h;
    const char *root = copy_laptop("hot", &h);
    write_ll(h.temp_path, 99000); /* 99 °C: past qeil-laptop's cpu limit 0.85 × 105 */
    qeil_runtime *rt = open_rt(ctx, root, &h, 1);
    CHECK(rt != NULL);
    if (!rt) {
        qeil_ctx_free(ctx);
        return;
    }
    const qeil_unit *cpu = &qeil_runtime_platform(rt)->units[0];
    CHECK_EQ_STR(cpu->name, "cpu");
    char f[4][4400];
    for (int c = 0; c < 4; c++)
        snprintf(f[c], sizeof f[c], "%s/sys/devices/system/cpu/cpu%d/cpufreq/scaling_max_freq", root, c);
    if (generate(rt, 6)) {
        qeil_runtime_guard_report r;
        qeil_runtime_guard_report_get(rt, &r);
        CHECK(r.n_actions >= 1);
        int last_to = -1;
        for (size_t i = 0; i < r.n_actions; i++) {
            const qeil_guard_action *a = &r.actions[i];
            CHECK_EQ_INT(a->unit, 0);
            if (a->kind == QEIL_GUARD_DVFS_DOWN) {
                CHECK_EQ_INT(a->ok, 1); /* written to the copy */
                CHECK_EQ_INT(a->to, a->from - 1);
                last_to = a->to;
            } else {
                /* at the lowest point: a running request cannot move */
                CHECK_EQ_INT(a->kind, QEIL_GUARD_MIGRATE);
                CHECK_EQ_INT(a->ok, 0);
            }
        }
        CHECK_EQ_INT(r.actions[0].kind, QEIL_GUARD_DVFS_DOWN);
        CHECK_EQ_INT(r.actions[0].from, cpu->dvfs_nominal);
        CHECK(last_to >= 0);
        if (last_to >= 0) {
            /* the fixture's policies take any value in 0.4..4.7 GHz: the
             * profile's point itself, in kHz */
            long long want = llround(cpu->dvfs[last_to].freq_Hz / 1e3);
            for (int c = 0; c < 4; c++) CHECK_EQ_INT(read_ll(f[c]), want);
        }
    }
    qeil_runtime_free(rt);
    for (int c = 0; c < 4; c++) CHECK_EQ_INT(read_ll(f[c]), 4700000); /* restored */
    qeil_ctx_free(ctx);
}

/* Mid-request migration (docs/guard.md "In the runtime"): a platform whose
 * units name this machine's two CPU devices (tests/data/recover/
 * local-cpu-cpu1.json: "cpu" and "cpu1", both CPU units, so both read the
 * fixture's package sensor), the blocks split over them. At 99 °C the guard
 * lowers both units' DVFS point, then, at the lowest, moves the blocks off
 * "cpu" between two decode steps of the running generation (cpu1's own
 * migration is refused: no unit would be left); the hook then cools the
 * package and the guard moves them back. The tokens and log-probabilities
 * are those of the same generation without the guard, bit for bit (the
 * two devices compute the same; the KV rows move with the blocks). */
typedef struct {
    hook_state h;
    qeil_runtime *rt;
    int cooled;
    float temp;
} move_hook_state;

static void move_hook(void *user)
{
    move_hook_state *m = user;
    guard_hook(&m->h);
    if (!m->rt || m->cooled) return;
    qeil_runtime_guard_report r;
    qeil_runtime_guard_report_get(m->rt, &r);
    for (size_t i = 0; i < r.n_actions; i++)
        if (r.actions[i].kind == QEIL_GUARD_MIGRATE && r.actions[i].ok) m->cooled = 1;
    if (m->cooled) write_ll(m->h.temp_path, 40000);
}

static qeil_runtime *open_split(qeil_ctx *ctx, const qeil_platform *pf, const char *root,
                                move_hook_state *m, int guard)
{
    qeil_runtime_params rp = qeil_runtime_default_params();
    rp.model_path = model;
    rp.platform = pf;
    rp.placement = "emb..b0:cpu,b1..head:cpu1";
    rp.batch = 0;
    rp.samples = 1;
    rp.n_threads = 1;
    rp.meter.root = root;
    rp.guard = guard;
    rp.guard_params.min_period_s = 0; /* every decode step */
    rp.guard_params.hold_s = 0;       /* cool once is cool enough: restore at the next step */
    rp.guard_params.min_samples = 1000; /* the profile's thermals throughout: a handful of
                                           readings at one power tell the fit nothing */
    rp.watchdog_s = 2.0; /* lavapipe's first waits on a loaded machine are no hang */
    rp.guard_hook = m ? move_hook : NULL;
    rp.guard_hook_user = m;
    qeil_runtime *rt = NULL;
    if (qeil_runtime_create(ctx, &rp, &rt) != QEIL_OK) {
        printf("  runtime_create: %s\n", qeil_ctx_errmsg(ctx));
        return NULL;
    }
    qeil_sampler_params sp = qeil_sampler_default_params();
    sp.seed = 5;
    sp.temp = m ? m->temp : 0.9f;
    if (qeil_runtime_set_sampler(rt, &sp) != QEIL_OK) {
        qeil_runtime_free(rt);
        return NULL;
    }
    if (m) m->rt = rt;
    return rt;
}

#define MOVE_GEN 12

/* with_vk 0: cpu + cpu1 at temperature 0.9 (outputs bit for bit); 1: the
 * profile adds vk0, modeled far better, so both hot CPU units' blocks go
 * to the GPU; greedy tokens identical. */
static void move_test(int with_vk)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_platform pf;
    CHECK_EQ_INT(qeil_platform_load(ctx,
                                    with_vk ? "tests/data/recover/local-cpu-cpu1-vk0.json"
                                            : "tests/data/recover/local-cpu-cpu1.json",
                                    &pf),
                 QEIL_OK);
    move_hook_state m;
    memset(&m, 0, sizeof m);
    m.temp = with_vk ? 0.0f : 0.9f;
    const char *root = copy_laptop(with_vk ? "move-vk" : "move", &m.h);
    write_ll(m.h.temp_path, 99000); /* past 0.85 × 95 °C */
    int32_t prompt[3] = {1, 2, 3}, ref[MOVE_GEN], got[MOVE_GEN];
    qeil_sampler_logprob rlp[MOVE_GEN], glp[MOVE_GEN];
    qeil_runtime_gen_result g, gr;
    /* the reference: the same generation, guard off */
    move_hook_state ref_m = m; /* the same sampler, no hook */
    qeil_runtime *rt = open_split(ctx, &pf, root, NULL, 0);
    if (rt) {
        qeil_sampler_params sp = qeil_sampler_default_params();
        sp.seed = 5;
        sp.temp = ref_m.temp;
        CHECK_EQ_INT(qeil_runtime_set_sampler(rt, &sp), QEIL_OK);
    }
    CHECK(rt != NULL);
    if (rt) CHECK_EQ_INT(qeil_runtime_generate(rt, prompt, 3, MOVE_GEN, ref, rlp, NULL, NULL, &gr), QEIL_OK);
    qeil_runtime_free(rt);
    rt = open_split(ctx, &pf, root, &m, 1);
    CHECK(rt != NULL);
    if (rt && !test_failed_) {
        CHECK_EQ_INT(qeil_runtime_generate(rt, prompt, 3, MOVE_GEN, got, glp, NULL, NULL, &g), QEIL_OK);
        CHECK_EQ_INT(g.n_gen, gr.n_gen);
        for (uint32_t i = 0; i < g.n_gen && i < gr.n_gen; i++) {
            CHECK_EQ_INT(got[i], ref[i]);
            if (!with_vk) CHECK(glp[i].raw == rlp[i].raw);
        }
        qeil_runtime_guard_report r;
        qeil_runtime_guard_report_get(rt, &r);
        int moved = -1, restored = -1, refused = 0;
        for (size_t i = 0; i < r.n_actions; i++) {
            const qeil_guard_action *a = &r.actions[i];
            printf("  %.4f s %s %s %d -> %d ok %d (%.3f ms)\n", a->t_s - r.t0_s,
                   pf.units[a->unit].name, qeil_guard_action_name(a->kind), a->from, a->to, a->ok,
                   1e3 * a->apply_s);
            if (a->kind == QEIL_GUARD_MIGRATE && a->unit == 0 && a->ok && moved < 0) moved = (int)i;
            if (a->kind == QEIL_GUARD_MIGRATE && a->unit == 1) refused += !a->ok;
            if (a->kind == QEIL_GUARD_RESTORE_PLAN && a->unit == 0 && a->ok) restored = (int)i;
        }
        CHECK(moved >= 0);
        if (moved >= 0) {
            const qeil_guard_action *a = &r.actions[moved];
            CHECK_EQ_INT(a->from, 2); /* emb and b0 were on cpu */
            CHECK_EQ_INT(a->to, 0);
            CHECK(a->apply_s > 0);
            CHECK(a->t_s > r.t0_s); /* inside the generation */
        }
        if (!with_vk) CHECK(refused >= 1); /* cpu1 hot too, and nowhere left to go */
        else CHECK_EQ_INT(refused, 0);       /* cpu1's blocks go to vk0 as well */
        CHECK(restored > moved);
        if (restored > 0) CHECK(r.actions[restored].apply_s > 0);
    }
    qeil_runtime_free(rt);
    qeil_ctx_free(ctx);
}

TEST(hot_unit_moves_blocks_mid_request)
{
    if (!model[0]) SKIP("no model");
    move_test(0);
}

TEST(hot_units_move_blocks_to_the_gpu_mid_request)
{
    if (!model[0]) SKIP("no model");
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_runtime_params rp = qeil_runtime_default_params();
    rp.model_path = model;
    rp.placement = "all:vk0";
    rp.sensors = 0;
    rp.batch = 0;
    rp.samples = 1;
    qeil_runtime *rt = NULL;
    int have_vk = qeil_runtime_create(ctx, &rp, &rt) == QEIL_OK;
    qeil_runtime_free(rt);
    qeil_ctx_free(ctx);
    if (!have_vk) SKIP("no Vulkan device");
    move_test(1);
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        printf("FAIL setup: no temp dir\n");
        return 1;
    }
    RUN(make_tiny_model);
    RUN(inactive_without_a_temperature_sensor);
    RUN(reads_temperatures_and_counts_throttles);
    RUN(hot_cpu_lowers_scaling_max_freq_and_restores_it);
    RUN(hot_unit_moves_blocks_mid_request);
    RUN(hot_units_move_blocks_to_the_gpu_mid_request);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) printf("  cannot remove %s\n", tmpdir);
    return test_summary("runtime-guard");
}
