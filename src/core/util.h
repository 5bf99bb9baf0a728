/*
 * util.h — the one monotonic clock and the one string hash of the library
 * (internal: src/, tests/ and bench/ include it; the CLI, which sees only
 * public headers, has its own clock in cli/util.c).
 */
#ifndef QEIL_CORE_UTIL_H
#define QEIL_CORE_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Seconds on CLOCK_MONOTONIC (not wall time: never steps back). */
static inline double qeil_clock_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* FNV-1a, 64-bit (Fowler/Noll/Vo; the published offset basis and prime):
 * short strings, no setup. qeil_fnv1a_step folds one more byte into h, for
 * callers that hash as they scan. */
#define QEIL_FNV1A_BASIS 0xcbf29ce484222325ull /* = 14695981039346656037 */
#define QEIL_FNV1A_PRIME 0x100000001b3ull      /* = 1099511628211 */

static inline uint64_t qeil_fnv1a_step(uint64_t h, unsigned char byte)
{
    return (h ^ byte) * QEIL_FNV1A_PRIME;
}

static inline uint64_t qeil_fnv1a(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = QEIL_FNV1A_BASIS;
    for (size_t i = 0; i < n; i++) h = qeil_fnv1a_step(h, s[i]);
    return h;
}

#endif
