/* bench_sampler.c — time per sampled token of qeil_sampler_sample, by
 * vocabulary size, for the settings generation uses (a program, not a test).
 *
 *     make bench      # or: build/bench/bench_sampler [ROUNDS]
 *
 * Logits: a fixed pseudo-random row per round (seed 7), N(0, 3²)-ish from a
 * sum of uniforms, so the top of the distribution looks like a language
 * model's (a few tokens well ahead, a long flat tail). Each setting is timed
 * over ROUNDS rows (default 400) with the raw log-probability requested, as
 * generate and eval do; the figure is the median of 5 repetitions, in µs
 * per token. One thread, as the CLI samples. Set it against a decode step
 * (`qeil bench` prints decode ms/token): docs/benchmarks.md.
 */
#include "qeil/sampler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/util.h"

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct {
    const char *name;
    float temp;
    uint32_t top_k;
    float top_p, min_p, penalty;
} setting;

int main(int argc, char **argv)
{
    unsigned rounds = 400;
    if (argc > 1) {
        char *end;
        unsigned long v = strtoul(argv[1], &end, 10);
        if (*end || v < 1 || v > 100000) {
            fprintf(stderr, "usage: bench_sampler [ROUNDS 1..100000]\n");
            return 2;
        }
        rounds = (unsigned)v;
    }
    static const uint32_t vocabs[] = {32000, 50257, 128256, 151936, 262144};
    static const setting sets[] = {
        {"greedy", 0.0f, 40, 0.95f, 0.05f, 1.0f},
        {"greedy, penalty 1.1", 0.0f, 40, 0.95f, 0.05f, 1.1f},
        {"default (T 0.8, k 40, p 0.95, min-p 0.05)", 0.8f, 40, 0.95f, 0.05f, 1.0f},
        {"T 0.8, no top-k (p 0.95, min-p 0.05)", 0.8f, 0, 0.95f, 0.05f, 1.0f},
        {"T 1, no filter", 1.0f, 0, 1.0f, 0.0f, 1.0f},
    };
    const unsigned n_rows = 16; /* distinct rows, cycled: more than L2 holds for big vocabularies */
    int32_t hist[64];
    for (int i = 0; i < 64; i++) hist[i] = (int32_t)(i * 97);

    printf("bench_sampler: us per sampled token (median of 5 x %u rows), raw log-prob requested\n",
           rounds);
    printf("%-44s", "setting \\ vocabulary");
    for (size_t v = 0; v < sizeof vocabs / sizeof *vocabs; v++) printf("%10u", vocabs[v]);
    printf("\n");
    for (size_t si = 0; si < sizeof sets / sizeof *sets; si++) {
        printf("%-44s", sets[si].name);
        for (size_t vi = 0; vi < sizeof vocabs / sizeof *vocabs; vi++) {
            uint32_t nv = vocabs[vi];
            float *rows = malloc(sizeof *rows * nv * n_rows);
            if (!rows) return 1;
            qeil_rng rng;
            qeil_rng_seed(&rng, 7);
            for (size_t i = 0; i < (size_t)nv * n_rows; i++) {
                double s = 0;
                for (int k = 0; k < 4; k++) s += qeil_rng_uniform(&rng) - 0.5;
                rows[i] = (float)(3.0 * s);
            }
            qeil_sampler_params sp = qeil_sampler_default_params();
            sp.temp = sets[si].temp;
            sp.top_k = sets[si].top_k;
            sp.top_p = sets[si].top_p;
            sp.min_p = sets[si].min_p;
            sp.repeat_penalty = sets[si].penalty;
            sp.seed = 1;
            qeil_sampler *s = NULL;
            if (qeil_sampler_create(NULL, &sp, nv, &s) != QEIL_OK) return 1;
            double t[5];
            long sink = 0;
            for (int rep = 0; rep < 5; rep++) {
                double t0 = qeil_clock_s();
                for (unsigned r = 0; r < rounds; r++) {
                    int32_t tok;
                    qeil_sampler_logprob lp;
                    if (qeil_sampler_sample(s, rows + (size_t)(r % n_rows) * nv, nv, hist, 64, &tok,
                                            &lp) != QEIL_OK)
                        return 1;
                    sink += tok;
                }
                t[rep] = (qeil_clock_s() - t0) / rounds;
            }
            qsort(t, 5, sizeof *t, cmp_d);
            printf("%10.1f", 1e6 * t[2]);
            fflush(stdout);
            if (sink == -1) printf("!");
            qeil_sampler_free(s);
            free(rows);
        }
        printf("\n");
    }
    return 0;
}
