/* rng.c — xoshiro256** (Blackman & Vigna, 2018) seeded with splitmix64.
 * The state lives in the caller's object: no hidden global RNG. */
#include "qeil/qeil.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void qeil_rng_seed(qeil_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

uint64_t qeil_rng_u64(qeil_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double qeil_rng_uniform(qeil_rng *r) { return (double)(qeil_rng_u64(r) >> 11) * 0x1.0p-53; }

uint64_t qeil_rng_below(qeil_rng *r, uint64_t n)
{
    if (n == 0) return 0;
    /* rejection sampling: drop the top partial copy of [0, n) so every value
     * is equally likely */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = qeil_rng_u64(r);
    while (x >= limit);
    return x % n;
}
