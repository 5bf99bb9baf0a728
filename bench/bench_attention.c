/*
 * bench_attention.c — decode attention per token, one thread, Llama-3.2-1B
 * shapes (16 layers, 32 query heads over 8 KV heads, head_dim 64), f32 KV
 * cache of 2048 positions per layer, at several context lengths:
 *
 *   per head, position-major  qeil_op_attention for each query head over a
 *                             cache laid out [pos][kv head][dim] (the
 *                             engine before 2026-12-03: a head's keys
 *                             256 B every 2 KB)
 *   per head, head-major      the same calls over [kv head][pos][dim]
 *   grouped, head-major       qeil_op_attention_heads, the 4 query heads of
 *                             a KV head together (what the engine runs)
 *
 * All three give the same bits (tests/test_engine.c). µs per token = best
 * of REPS passes over the 16 layers; the cache is written once, so short
 * contexts run from L2/L3 and long ones from DRAM, as in decode.
 *
 *     build/bench/bench_attention
 */
#include "kernels/ops.h"
#include "qeil/qeil.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "core/util.h"

enum { L = 16, KVH = 8, H = 32, HD = 64, CTX = 2048, G = H / KVH, REPS = 15 };

int main(void)
{
    const size_t per = (size_t)CTX * KVH * HD; /* floats per layer, K or V */
    float *k = malloc(L * per * sizeof *k), *v = malloc(L * per * sizeof *v);
    static float q[H * HD], out[H * HD], sc[G * CTX];
    if (!k || !v) {
        fprintf(stderr, "bench_attention: out of memory\n");
        return 1;
    }
    qeil_rng r;
    qeil_rng_seed(&r, 5);
    for (size_t i = 0; i < L * per; i++) {
        k[i] = (float)(2 * qeil_rng_uniform(&r) - 1);
        v[i] = (float)(2 * qeil_rng_uniform(&r) - 1);
    }
    for (int i = 0; i < H * HD; i++) q[i] = (float)(2 * qeil_rng_uniform(&r) - 1) * 0.1f;
    static const int npos[] = {128, 512, 1000, 2000};
    printf("bench_attention: decode attention per token, 1 thread, 16 layers x 32 heads over 8 KV "
           "heads, head_dim 64 (us per token, best of %d)\n\n",
           REPS);
    printf("| positions | KV MB per token | per head, position-major | per head, head-major | "
           "grouped, head-major | speed-up |\n|---:|---:|---:|---:|---:|---:|\n");
    for (size_t pi = 0; pi < sizeof npos / sizeof npos[0]; pi++) {
        const uint32_t n = (uint32_t)npos[pi];
        double best[3] = {1e30, 1e30, 1e30};
        for (int rep = 0; rep < REPS; rep++)
            for (int mode = 0; mode < 3; mode++) { /* alternated: all see the same machine */
                const double t0 = qeil_clock_s();
                for (int l = 0; l < L; l++)
                    for (int kh = 0; kh < KVH; kh++) {
                        const float *kl = k + (size_t)l * per, *vl = v + (size_t)l * per;
                        if (mode == 0) /* position-major: rows of all KV heads side by side */
                            for (int g = 0; g < G; g++)
                                qeil_op_attention(q + (kh * G + g) * HD, kl + kh * HD, vl + kh * HD,
                                                  (size_t)KVH * HD, n, HD, 0.125f, sc, out + (kh * G + g) * HD);
                        else if (mode == 1)
                            for (int g = 0; g < G; g++)
                                qeil_op_attention(q + (kh * G + g) * HD, kl + (size_t)kh * CTX * HD,
                                                  vl + (size_t)kh * CTX * HD, HD, n, HD, 0.125f, sc,
                                                  out + (kh * G + g) * HD);
                        else
                            qeil_op_attention_heads(q + kh * G * HD, HD, G, kl + (size_t)kh * CTX * HD,
                                                    vl + (size_t)kh * CTX * HD, HD, n, HD, 0.125f, sc,
                                                    CTX, out + kh * G * HD, HD);
                    }
                const double dt = qeil_clock_s() - t0;
                if (dt < best[mode]) best[mode] = dt;
            }
        printf("| %u | %.1f | %.0f | %.0f | %.0f | %.2fx |\n", n, (double)L * KVH * n * HD * 8 / 1e6,
               best[0] * 1e6, best[1] * 1e6, best[2] * 1e6, best[0] / best[2]);
    }
    free(k);
    free(v);
    return 0;
}
