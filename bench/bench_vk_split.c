/*
 * bench_vk_split.c — a model all on the CPU, then all on vk0, through the
 * engine: placement (weights uploaded, a weight over the device's largest
 * storage buffer split into row chunks), a 4-token prefill, 4 greedy decode
 * steps; prints the times, the greedy tokens of each and the largest logit
 * difference after the prefill. For a Llama-3.2-1B-shaped vocabulary
 * (docs/vulkan.md):
 *
 *     qeil mkmodel --preset llama-3.2-1b --layers 1 --type q8_0 -o 1b1.gguf
 *     build/bench/bench_vk_split 1b1.gguf
 *
 * The engine's watchdog is set to 600 s per row: lavapipe (Vulkan on the
 * CPU) takes tens of seconds per token here, which the default 0.25 s per
 * row calls a hung device. QEIL_VK_FORCE_STAGING=1 / QEIL_VK_MAX_BUFFER
 * (docs/vulkan.md, "Test knobs") apply as usual.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "qeil/engine.h"

enum { N_PROMPT = 4, N_GEN = 4 };

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s MODEL.gguf\n", argv[0]);
        return 2;
    }
    qeil_ctx *ctx = qeil_ctx_create(NULL);
    qeil_engine_params ep = qeil_engine_default_params();
    ep.n_threads = 2;
    ep.n_ctx = 16;
    ep.n_batch = N_PROMPT;
    ep.watchdog_s = 600;
    qeil_engine *e = NULL;
    if (qeil_engine_open(ctx, argv[1], &ep, &e) != QEIL_OK) {
        fprintf(stderr, "open: %s\n", qeil_ctx_errmsg(ctx));
        return 1;
    }
    const uint32_t V = qeil_engine_n_vocab(e);
    uint8_t place[258];
    uint32_t nu = 3; /* units: embedding, blocks, head (the count get_placement accepts) */
    while (nu < sizeof place && qeil_engine_get_placement(e, place, nu) != QEIL_OK) nu++;
    float *lg = malloc(sizeof(float) * V), *ref = malloc(sizeof(float) * V);
    if (!lg || !ref || nu == sizeof place) return 1;
    int rc = 0;
    for (int m = 0; m < 2 && rc == 0; m++) {
        memset(place, m, nu);
        const double t0 = qeil_clock_s();
        if (m == 1 && qeil_engine_set_placement(e, place, nu) != QEIL_OK) {
            fprintf(stderr, "placement: %s\n", qeil_ctx_errmsg(ctx));
            rc = 1;
            break;
        }
        const double t1 = qeil_clock_s();
        int32_t ids[N_PROMPT];
        for (uint32_t i = 0; i < N_PROMPT; i++) ids[i] = (int32_t)((i * 40009u + 7u) % V);
        qeil_engine_seq_reset(e, 0);
        if (qeil_engine_eval(e, 0, ids, N_PROMPT, lg, 0) != QEIL_OK) {
            fprintf(stderr, "prefill: %s\n", qeil_ctx_errmsg(ctx));
            rc = 1;
            break;
        }
        const double t2 = qeil_clock_s();
        printf("%s: placement %.2f s, prefill of %d tokens %.2f s", m ? "vk0" : "cpu", t1 - t0,
               N_PROMPT, t2 - t1);
        if (m == 0) {
            memcpy(ref, lg, sizeof(float) * V);
        } else {
            double d = 0, mx = 0;
            for (uint32_t v = 0; v < V; v++) {
                d = fmax(d, fabs((double)lg[v] - ref[v]));
                mx = fmax(mx, fabs((double)ref[v]));
            }
            printf(", max |logit - cpu's| %.3g (max |logit| %.3g)", d, mx);
        }
        printf("\n  greedy:");
        const double t3 = qeil_clock_s();
        for (int g = 0; g < N_GEN && rc == 0; g++) {
            int32_t best = 0;
            for (uint32_t v = 1; v < V; v++)
                if (lg[v] > lg[best]) best = (int32_t)v;
            printf(" %d", best);
            if (qeil_engine_eval(e, 0, &best, 1, lg, 0) != QEIL_OK) {
                fprintf(stderr, "\ndecode: %s\n", qeil_ctx_errmsg(ctx));
                rc = 1;
            }
        }
        printf(" (%d decode steps: %.2f s)\n", N_GEN, qeil_clock_s() - t3);
    }
    free(lg);
    free(ref);
    qeil_engine_free(e);
    qeil_ctx_free(ctx);
    return rc;
}
