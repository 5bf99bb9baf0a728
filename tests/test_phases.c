/*
 * test_phases.c — separate prefill and decode placements
 * (qeil_engine_set_placements, docs/engine.md "Prefill and decode
 * placements"): the "prefill=SPEC;decode=SPEC" grammar and its inverse,
 * and whole tiny models (llama, qwen2, gpt2, lfm2) under split placements
 * giving the all-CPU tokens. The second device is "cpu1" (the cpu backend
 * as a second unit: its logits must be bit-identical, and it runs
 * everywhere) and "vk0" (Vulkan; lavapipe in CI: the same greedy tokens;
 * SKIP when there is no Vulkan device). The run covers both switch
 * directions: a prompt (prefill), greedy decode of two sequences (one
 * forked from the other), a second prompt on sequence 0 (its rows written
 * during decode go back to the prefill copy), then decode again.
 */
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "qeil/engine.h"
#include "test.h"

static char g_dir[256];

static void *xmalloc(size_t n)
{
    void *p = calloc(1, n ? n : 1);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

TEST(phase_placement_strings)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    uint8_t pf[6], dc[6];
    CHECK_EQ_INT(qeil_placement_parse_phases(ctx, "all:cpu1", 4, pf, dc, 6), QEIL_OK);
    for (int u = 0; u < 6; u++) CHECK(pf[u] == 2 && dc[u] == 2);
    CHECK_EQ_INT(qeil_placement_parse_phases(ctx, "prefill=emb..b1:cpu,b2..head:vk0;decode=all:cpu1",
                                             4, pf, dc, 6),
                 QEIL_OK);
    CHECK(pf[0] == 0 && pf[2] == 0 && pf[3] == 1 && pf[5] == 1);
    for (int u = 0; u < 6; u++) CHECK_EQ_INT(dc[u], 2);
    CHECK_EQ_INT(qeil_placement_parse_phases(ctx, "decode=all:vk0;prefill=all:cpu", 4, pf, dc, 6),
                 QEIL_OK);
    CHECK(pf[1] == 0 && dc[1] == 1);
    /* the inverse */
    char buf[200];
    CHECK_EQ_INT(qeil_placement_format(pf, dc, 6, buf, sizeof buf), QEIL_OK);
    CHECK_EQ_STR(buf, "prefill=all:cpu;decode=all:vk0");
    const uint8_t alt[6] = {0, 1, 0, 1, 0, 1};
    CHECK_EQ_INT(qeil_placement_format(alt, alt, 6, buf, sizeof buf), QEIL_OK);
    CHECK_EQ_STR(buf, "emb:cpu,b0:vk0,b1:cpu,b2:vk0,b3:cpu,head:vk0");
    const uint8_t two[6] = {0, 0, 0, 1, 1, 1};
    CHECK_EQ_INT(qeil_placement_format(two, NULL, 6, buf, sizeof buf), QEIL_OK);
    CHECK_EQ_STR(buf, "emb..b1:cpu,b2..head:vk0");
    CHECK_EQ_INT(qeil_placement_format(two, alt, 6, buf, 20), QEIL_ERR_RANGE);
    CHECK_EQ_STR(buf, "");
    /* round trip */
    CHECK_EQ_INT(qeil_placement_format(two, alt, 6, buf, sizeof buf), QEIL_OK);
    CHECK_EQ_INT(qeil_placement_parse_phases(ctx, buf, 4, pf, dc, 6), QEIL_OK);
    CHECK(memcmp(pf, two, 6) == 0 && memcmp(dc, alt, 6) == 0);

    /* malformed phase forms: each named */
    struct {
        const char *spec, *msg;
        qeil_status st;
    } bad[] = {
        {"prefill=all:cpu", "decode= is missing", QEIL_ERR_FORMAT},
        {"decode=all:cpu", "prefill= is missing", QEIL_ERR_FORMAT},
        {"prefill=all:cpu;decode=all:cpu;decode=all:vk0", "phase 'decode' is given twice",
         QEIL_ERR_FORMAT},
        {"prefil=all:cpu;decode=all:cpu", "'prefil=all:cpu' is not prefill=SPEC or decode=SPEC",
         QEIL_ERR_FORMAT},
        {"prefill=;decode=all:cpu", "prefill= is empty", QEIL_ERR_FORMAT},
        {"prefill=all:cpu;", "'' is not prefill=SPEC", QEIL_ERR_FORMAT},
        {"prefill=all:cpu,decode=all:vk0", "holds another '='", QEIL_ERR_FORMAT},
        {"prefill=all:gpu7;decode=all:cpu", "placement: prefill: unknown device 'gpu7'",
         QEIL_ERR_NOTFOUND},
        {"prefill=all:cpu;decode=emb..b4:cpu,head:vk0", "placement: decode: block 'b4' is out of range",
         QEIL_ERR_RANGE},
        {"prefill=all:cpu;decode=all:cpu,b1:vk0", "placement: decode: unit b1 is placed twice",
         QEIL_ERR_INVALID},
        {"prefill=emb..b2:cpu;decode=all:cpu", "placement: prefill: unit b3 is not placed",
         QEIL_ERR_INVALID},
        {"prefill=b3..b0:cpu;decode=all:cpu", "runs backwards", QEIL_ERR_RANGE},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ_INT(qeil_placement_parse_phases(ctx, bad[i].spec, 4, pf, dc, 6), bad[i].st);
        CHECK_CONTAINS(qeil_ctx_errmsg(ctx), bad[i].msg);
        if (test_failed_) {
            printf("  spec '%s': %s\n", bad[i].spec, qeil_ctx_errmsg(ctx));
            break;
        }
    }
    /* the one-map parser refuses the phase form by name */
    CHECK_EQ_INT(qeil_placement_parse(ctx, "prefill=all:cpu;decode=all:cpu", 4, pf, 6), QEIL_ERR_FORMAT);
    CHECK_CONTAINS(qeil_ctx_errmsg(ctx), "has phases");
    qeil_ctx_free(ctx);
}

enum { N_PROMPT = 20, N_GEN = 12, N_TURN = 5, N_GEN2 = 6 };
#define N_TOKENS (2 * N_GEN + N_GEN2)

static int32_t argmax(const float *lg, uint32_t V)
{
    int32_t best = 0;
    for (uint32_t v = 1; v < V; v++)
        if (lg[v] > lg[best]) best = (int32_t)v;
    return best;
}

/* The run described at the top; the greedy tokens into gen[N_TOKENS] and
 * the prompt's logits (every position) into plog[N_PROMPT x V]. */
static void run(qeil_engine *e, uint32_t V, int32_t *gen, float *plog)
{
    int32_t ids[N_PROMPT];
    for (uint32_t i = 0; i < N_PROMPT; i++) ids[i] = (int32_t)((i * 37u + 5u) % V);
    qeil_engine_seq_reset(e, 0);
    qeil_engine_seq_reset(e, 1);
    float *lg = xmalloc(2 * (size_t)V * sizeof(float));
    size_t k = 0;
    CHECK_EQ_INT(qeil_engine_eval(e, 0, ids, N_PROMPT, plog, 1), QEIL_OK);
    CHECK_EQ_INT(qeil_engine_seq_copy(e, 0, 1), QEIL_OK);
    int32_t t[2];
    t[0] = argmax(plog + (size_t)(N_PROMPT - 1) * V, V);
    t[1] = (t[0] + 1) % (int32_t)V; /* sequence 1 goes another way */
    const uint32_t seqs[2] = {0, 1};
    for (int g = 0; g < N_GEN && !test_failed_; g++) {
        gen[k++] = t[0];
        gen[k++] = t[1];
        CHECK_EQ_INT(qeil_engine_eval_batch(e, seqs, t, 2, lg), QEIL_OK);
        t[0] = argmax(lg, V);
        t[1] = argmax(lg + V, V);
    }
    /* a second prompt on sequence 0: prefill again, after decode steps */
    int32_t turn[N_TURN];
    for (uint32_t i = 0; i < N_TURN; i++) turn[i] = (int32_t)((i * 11u + 3u) % V);
    CHECK_EQ_INT(qeil_engine_eval(e, 0, turn, N_TURN, lg, 0), QEIL_OK);
    for (int g = 0; g < N_GEN2 && !test_failed_; g++) {
        t[0] = argmax(lg, V);
        gen[k++] = t[0];
        CHECK_EQ_INT(qeil_engine_eval(e, 0, t, 1, lg, 0), QEIL_OK);
    }
    free(lg);
}

/* Placement mode m for device d over nu units into pf/dc; its name. */
static const char *mode_maps(int m, uint8_t d, uint32_t nu, uint8_t *pf, uint8_t *dc)
{
    for (uint32_t u = 0; u < nu; u++) {
        switch (m) {
        case 0: pf[u] = dc[u] = d; break;                              /* all on d */
        case 1: pf[u] = (uint8_t)(u % 2 ? d : 0); dc[u] = pf[u]; break; /* alternating */
        case 2: pf[u] = d; dc[u] = 0; break;                           /* prefill on d */
        case 3: pf[u] = 0; dc[u] = d; break;                           /* decode on d */
        default: pf[u] = (uint8_t)(u % 2 ? d : 0); dc[u] = d; break;   /* mixed */
        }
    }
    static const char *names[] = {"all on D", "alternating", "prefill on D, decode on cpu",
                                  "prefill on cpu, decode on D", "prefill alternating, decode on D"};
    return names[m];
}

static void models_split(uint8_t dev)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    const char *presets[] = {"tiny-llama", "tiny-qwen2", "tiny-gpt2", "tiny-lfm2"};
    for (size_t pi = 0; pi < 4 && !test_failed_; pi++) {
        qeil_mkmodel_params mp;
        CHECK_EQ_INT(qeil_mkmodel_preset(ctx, presets[pi], &mp), QEIL_OK);
        char path[512];
        snprintf(path, sizeof path, "%s/%s.gguf", g_dir, presets[pi]);
        CHECK_EQ_INT(qeil_mkmodel_write(ctx, &mp, path), QEIL_OK);
        qeil_engine_params ep = qeil_engine_default_params();
        ep.n_threads = 2;
        ep.n_ctx = 64;
        ep.n_seq = 2;
        ep.n_batch = 16; /* the prompt takes two chunks */
        qeil_engine *e = NULL;
        if (qeil_engine_open(ctx, path, &ep, &e) != QEIL_OK) {
            printf("  open: %s\n", qeil_ctx_errmsg(ctx));
            CHECK(0);
            continue;
        }
        const uint32_t V = qeil_engine_n_vocab(e), nu = mp.n_layers + 2;
        float *pref = xmalloc((size_t)N_PROMPT * V * sizeof(float));
        float *pgot = xmalloc((size_t)N_PROMPT * V * sizeof(float));
        int32_t gref[N_TOKENS], ggot[N_TOKENS];
        run(e, V, gref, pref);
        for (int m = 0; m < 5 && !test_failed_; m++) {
            uint8_t pf[16], dc[16], gp[16], gd[16];
            const char *name = mode_maps(m, dev, nu, pf, dc);
            if (qeil_engine_set_placements(e, pf, dc, nu) != QEIL_OK) {
                printf("  %s %s: %s\n", presets[pi], name, qeil_ctx_errmsg(ctx));
                CHECK(0);
                break;
            }
            CHECK_EQ_INT(qeil_engine_get_placements(e, gp, gd, nu), QEIL_OK);
            CHECK(memcmp(gp, pf, nu) == 0 && memcmp(gd, dc, nu) == 0);
            qeil_engine_transfer_stats_reset(e);
            run(e, V, ggot, pgot);
            CHECK(memcmp(gref, ggot, sizeof gref) == 0);
            if (dev == 2) /* the same kernels: bit for bit */
                CHECK(memcmp(pref, pgot, (size_t)N_PROMPT * V * sizeof(float)) == 0);
            qeil_engine_transfers x;
            qeil_engine_transfer_stats(e, &x);
            /* rows: 20 + 5 prompt rows; 12 steps x 2 + 6 decode rows */
            CHECK_EQ_INT(x.rows[0], N_PROMPT + N_TURN);
            CHECK_EQ_INT(x.rows[1], 2 * N_GEN + N_GEN2);
            if (m == 2 || m == 3 || m == 4) {
                /* every attention block's K and V rows, 4 B each, move at
                 * the switches: decode -> prefill (the last run ended in
                 * decode; its sequences were reset: nothing); prefill ->
                 * decode: the prompt's 20 rows of both sequences (seq 1 was
                 * forked: its copy is stale); decode -> prefill: the 12
                 * decoded rows of each sequence; prefill -> decode: the
                 * turn's 5; a conv block moves its whole state (n_seq x
                 * (L - 1) x d_model) at each of the 4 switches. Mode 4
                 * splits only the even units (the odd ones are on D in
                 * both phases). */
                uint64_t want = 0;
                for (uint32_t l = 0; l < mp.n_layers; l++) {
                    if (m == 4 && (l + 1) % 2) continue;
                    const int conv = pi == 3 && !((mp.attn_layers >> l) & 1);
                    const uint64_t kvd = (uint64_t)mp.n_kv_heads * (mp.d_model / mp.n_heads);
                    want += conv ? 4ull * 2 * (mp.conv_L - 1) * mp.d_model * 4
                                 : (2ull * N_PROMPT + 2 * N_GEN + N_TURN) * 2 * kvd * 4;
                }
                CHECK_EQ_INT(x.kv_B, want);
                CHECK_EQ_INT(x.n_switch, 4);
            } else {
                CHECK_EQ_INT(x.kv_B, 0);
            }
            if (m == 1) {
                /* every boundary between units is a device change: n_units
                 * - 1 copies of n rows x d_model floats per call (the head
                 * runs in every call here) */
                CHECK_EQ_INT(x.act_B[0], (uint64_t)(nu - 1) * (N_PROMPT + N_TURN) * mp.d_model * 4);
                CHECK_EQ_INT(x.act_B[1], (uint64_t)(nu - 1) * (2 * N_GEN + N_GEN2) * mp.d_model * 4);
            }
            if (m == 0) CHECK(x.act_B[0] == 0 && x.act_B[1] == 0);
            CHECK(x.dev_s[m == 2 ? 0 : 1][dev] > 0.0 && x.dev_s[m == 2 ? 1 : 0][0] >= 0.0);
            if (m == 2 || m == 3) CHECK(x.dev_s[m == 2 ? 1 : 0][dev] == 0.0);
            /* one decode step: vk0 is submitted to once per run of
             * consecutive units on it (its sync comes at the boundary after
             * the run, or at the step's end); the cpu never */
            uint64_t runs = 0;
            for (uint32_t u = 0; u < nu; u++) runs += dc[u] == dev && (u == 0 || dc[u - 1] != dev);
            qeil_engine_transfer_stats_reset(e);
            const uint32_t seqs[2] = {0, 1};
            const int32_t tk[2] = {3, 4};
            float *lg2 = xmalloc(2 * (size_t)V * sizeof(float));
            CHECK_EQ_INT(qeil_engine_eval_batch(e, seqs, tk, 2, lg2), QEIL_OK);
            free(lg2);
            qeil_engine_transfer_stats(e, &x);
            CHECK_EQ_INT(x.submits[dev], dev == 1 ? runs : 0);
            CHECK_EQ_INT(x.submits[0], 0);
            if (test_failed_) printf("  %s, device %u: %s\n", presets[pi], dev, name);
        }
        /* back to one map for both phases */
        uint8_t cpu[16] = {0};
        CHECK_EQ_INT(qeil_engine_set_placement(e, cpu, nu), QEIL_OK);
        run(e, V, ggot, pgot);
        CHECK(memcmp(gref, ggot, sizeof gref) == 0);
        qeil_engine_memory mem = qeil_engine_memory_use(e);
        CHECK(mem.kv_B > 0);
        free(pref);
        free(pgot);
        qeil_engine_free(e);
    }
    qeil_ctx_free(ctx);
}

TEST(phases_split_cpu1_bit_identical) { models_split(2); }

static const char *g_no_vk;

TEST(phases_split_vk0_same_tokens)
{
    if (g_no_vk) SKIP(g_no_vk);
    models_split(1);
}

/* A map refused before anything moves: the engine keeps its placement. */
TEST(phases_refused_map_changes_nothing)
{
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_mkmodel_params mp;
    CHECK_EQ_INT(qeil_mkmodel_preset(ctx, "tiny-llama", &mp), QEIL_OK);
    char path[512];
    snprintf(path, sizeof path, "%s/refuse.gguf", g_dir);
    CHECK_EQ_INT(qeil_mkmodel_write(ctx, &mp, path), QEIL_OK);
    qeil_engine *e = NULL;
    qeil_engine_params ep = qeil_engine_default_params();
    ep.n_threads = 1;
    ep.n_ctx = 32;
    CHECK_EQ_INT(qeil_engine_open(ctx, path, &ep, &e), QEIL_OK);
    if (!e) {
        qeil_ctx_free(ctx);
        return;
    }
    const uint32_t nu = mp.n_layers + 2;
    uint8_t pf[16] = {0}, dc[16] = {0}, gp[16], gd[16];
    for (uint32_t u = 0; u < nu; u++) pf[u] = 2;
    dc[1] = 9; /* no such backend */
    CHECK_EQ_INT(qeil_engine_set_placements(e, pf, dc, nu), QEIL_ERR_UNSUPPORTED);
    CHECK_EQ_INT(qeil_engine_set_placements(e, pf, dc, nu - 1), QEIL_ERR_RANGE);
    CHECK_EQ_INT(qeil_engine_set_placements(e, pf, NULL, nu), QEIL_ERR_INVALID);
    CHECK_EQ_INT(qeil_engine_get_placements(e, gp, gd, nu), QEIL_OK);
    for (uint32_t u = 0; u < nu; u++) CHECK(gp[u] == 0 && gd[u] == 0);
    qeil_engine_free(e);
    qeil_ctx_free(ctx);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/qeil-phases-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 2;
    }
    /* is there a Vulkan device? (placing a unit on vk0 of a tiny model) */
    static char why[512];
    {
        qeil_ctx *ctx = qeil_ctx_create(NULL);
        qeil_mkmodel_params mp;
        char path[512];
        snprintf(path, sizeof path, "%s/probe.gguf", g_dir);
        qeil_engine *e = NULL;
        qeil_engine_params ep = qeil_engine_default_params();
        ep.n_threads = 1;
        ep.n_ctx = 16;
        if (qeil_mkmodel_preset(ctx, "tiny-llama", &mp) == QEIL_OK &&
            qeil_mkmodel_write(ctx, &mp, path) == QEIL_OK &&
            qeil_engine_open(ctx, path, &ep, &e) == QEIL_OK) {
            uint8_t place[16] = {0};
            place[1] = 1;
            if (qeil_engine_set_placement(e, place, mp.n_layers + 2) != QEIL_OK) {
                snprintf(why, sizeof why, "no Vulkan device (%s)", qeil_ctx_errmsg(ctx));
                g_no_vk = why;
            }
        } else {
            snprintf(why, sizeof why, "setup: %s", qeil_ctx_errmsg(ctx));
            g_no_vk = why;
        }
        qeil_engine_free(e);
        qeil_ctx_free(ctx);
    }
    RUN(phase_placement_strings);
    RUN(phases_split_cpu1_bit_identical);
    RUN(phases_split_vk0_same_tokens);
    RUN(phases_refused_map_changes_nothing);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    return test_summary("phases");
}
