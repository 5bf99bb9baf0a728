/*
 * select_math.h — the selection cascade's stopping-rule math (internal):
 * the regularised incomplete beta and the CSVET / Adaptive-Consistency
 * bounds that select.c's stopping rules evaluate. Not part of the public
 * API (only select.c and tests/test_select.c, which checks them against
 * hand-computed values, call them; they are not exported from the shared
 * library). Equations and sources: docs/selection.md.
 */
#ifndef QEIL_SELECT_MATH_H
#define QEIL_SELECT_MATH_H

#include <stddef.h>
#include <stdint.h>

/* Regularised incomplete beta I_x(a, b) = B(x; a, b) / B(a, b), a, b > 0,
 * x in [0, 1]; by Lentz's continued fraction (relative error ~1e-14). NaN
 * for arguments outside those ranges. */
double qeil_select_betainc(double x, double a, double b);

/* CSVET rule (b), QEIL_CSVET_MODE: an upper bound on P(the leader is not
 * the mode) under a symmetric Dirichlet(prior) posterior over answers.
 * leader: its votes; others[0..n_others-1]: every other cluster's votes
 * (any order). The bound is the union over rivals of P(p_j >= p_leader) =
 * I_{1/2}(leader + prior, c_j + prior), plus one rival with zero votes
 * standing for every answer not seen yet. Clamped to [0, 1]; 1 when leader
 * is 0. */
double qeil_select_csvet_risk(uint32_t leader, const uint32_t *others, size_t n_others,
                              double prior);

/* CSVET rule (b), QEIL_CSVET_PREDICTIVE: an upper bound on P(after
 * `remaining` more samples some rival has at least the leader's votes)
 * under the Dirichlet(prior) posterior predictive (Dirichlet-multinomial).
 * n_drawn: samples drawn so far, NONE included (>= leader + Σ others).
 * Union over rivals (and one zero-vote rival for unseen answers); each term
 * is exact for the pair with everything else lumped into one category. 0
 * when remaining is 0; 1 when leader is 0. remaining > 256 falls back to
 * the mode bound (the pairwise sums cost O(remaining²)), which it
 * approaches as remaining grows. */
double qeil_select_csvet_overturn_risk(uint32_t leader, const uint32_t *others, size_t n_others,
                                       uint32_t n_drawn, uint32_t remaining, double prior);

/* Adaptive-Consistency's Beta criterion: P(p1 > p2) = 1 − I_{1/2}(v1 + 1,
 * v2 + 1) for the top two counts v1 >= v2 (uniform prior). */
double qeil_select_adaptive_prob(uint32_t v1, uint32_t v2);

#endif /* QEIL_SELECT_MATH_H */
