/* logits.h — whole-vocabulary passes over a row of logits for the sampler:
 * the maximum (with a check for NaN/+inf), the first index above or equal
 * to a value, and Σ exp(l_i − shift). Internal to the library.
 *
 * Each pass has a portable definition and an AVX2 version that returns the
 * same bits (tests/test_sampler.c compares them): the maximum and the
 * searches are exact in any order, and the sum has its order fixed by
 * definition — 16 partial sums in double, element i into lane i mod 16,
 * added lane 0 to 15 at the end — with an exponential made of the same
 * IEEE single operations in both (qeil_logits_exp, no FMA).
 *
 * Why not libm's expf: a row is 32k–262k exponentials per token, and a
 * call per element cost ~0.4 ms per token at 152k (bench_sampler); and
 * libm's bits are not the same on every machine.
 */
#ifndef QEIL_ENGINE_LOGITS_H
#define QEIL_ENGINE_LOGITS_H

#include <stdint.h>

#include "kernels/quant.h" /* qeil_simd */

/* e^x for x ≤ 0 (and −inf → 0): Cody–Waite reduction to r ∈ [−ln2/2,
 * ln2/2] and Cephes' degree-6 polynomial for expf; relative error ≤ 2e-7
 * (a few float ulps) against exp in double, checked in tests. Results
 * below 2^-126 (x < −87) are 0. Not for x > 0. */
float qeil_logits_exp(float x);

/* Largest of l[0, n) into *max (n ≥ 1). Returns 0, leaving *max unset,
 * when some entry is NaN or +inf; 1 otherwise. */
int qeil_logits_max(qeil_simd simd, const float *l, uint32_t n, float *max);

/* The first i in [from, n) with l[i] > v (gt != 0) or l[i] == v (gt == 0);
 * n when there is none. */
uint32_t qeil_logits_find(qeil_simd simd, const float *l, uint32_t from, uint32_t n, float v,
                          int gt);

/* Σ_i qeil_logits_exp(l[i] − shift) over [0, n), in the fixed order above.
 * shift ≥ every l[i] (the maximum), finite. */
double qeil_logits_sum_exp(qeil_simd simd, const float *l, uint32_t n, float shift);

#endif /* QEIL_ENGINE_LOGITS_H */
