/* thermal.c — the lumped thermal RC model with temperature-dependent
 * leakage (docs/energy-model.md §4):
 *
 *     C dT/dt = P + P_leak(T) − (T − T_amb)/R,   P_leak(T) = L_k e^{κ(T − T_ref)}
 *
 * Leakage heats the die and heat raises leakage, so the steady state is a
 * fixed point T = T_amb + R (P + P_leak(T)). g(T) = T_amb + R(P + P_leak(T)) − T
 * is convex in T and g(T_amb) ≥ 0 for P ≥ 0; Newton from T_amb climbs
 * monotonically to the smallest root, which is the stable one (g' < 0
 * there). If g' reaches ≥ 0 before a root, g never returns to zero:
 * thermal runaway. */
#include "energy_internal.h"

#include <math.h>

#define NEWTON_MAX_ITERS 100
#define NEWTON_TOL_K 1e-9
/* Past this the die is long destroyed; a fixed point up there is reported
 * as runaway rather than as a temperature. */
#define T_CAP_C 1000.0
/* Transient substeps: leakage is linearised about each substep's start and
 * the linear ODE is solved exactly, so a substep only needs to be short
 * against the leakage's e-folding (1/κ ≈ 14 K) in temperature. With
 * h ≤ τ/8 (τ = R·C) a substep moves T by at most 1 − e^{−1/8} ≈ 12 % of its
 * distance to equilibrium, and the linearisation error of the leakage is
 * O((κΔT)²/2): below 0.1 K on every catalog device. The cap keeps an
 * evaluation at a few microseconds; on segments longer than 4τ the
 * substeps grow, and each then acts as one Newton step towards the
 * segment's own steady state, which 32 of them reach. */
#define SUBSTEPS_PER_TAU 8
#define MAX_SUBSTEPS 32

qeil_status qeil_thermal_steady(const qeil_unit *u, int dvfs, double p_other_W, double *temp_C,
                                double *p_leak_W)
{
    const double R = u->r_th_KpW, kappa = u->leak_kappa_perK;
    double t = u->t_amb_C;
    for (int it = 0; it < NEWTON_MAX_ITERS; it++) {
        double leak = qeil_leak_power_W(u, dvfs, t);
        double g = u->t_amb_C + R * (p_other_W + leak) - t;
        if (fabs(g) <= NEWTON_TOL_K) {
            *temp_C = t;
            *p_leak_W = leak;
            /* a fixed point above T_max is reported, but it is not a state
             * the device can hold */
            return t <= u->t_max_C ? QEIL_OK : QEIL_ERR_INFEASIBLE;
        }
        double dg = R * kappa * leak - 1.0;
        if (!(dg < 0)) break; /* g has stopped falling: no root ahead */
        t -= g / dg;
        if (!(t <= T_CAP_C)) break;
    }
    *temp_C = INFINITY;
    *p_leak_W = INFINITY;
    return QEIL_ERR_INFEASIBLE;
}

double qeil_energy_thermal_integrate(const qeil_unit *u, int dvfs, double t0_C, double p_other_W,
                                     double dt_s, double *peak_C, double *leak_J)
{
    const double R = u->r_th_KpW, C = u->c_th_JpK, kappa = u->leak_kappa_perK;
    const double g_th = 1.0 / R, inv_c = 1.0 / C;
    /* P_leak(T) = leak_k · e^{κ(T − T_ref)} at this DVFS point */
    const double leak_k = qeil_leak_power_W(u, dvfs, u->t_leak_ref_C);
    double t = t0_C, peak = t0_C, e_leak = 0;
    if (dt_s > 0) {
        /* clamp in double: for dt > ~2.7e8 τ (or dt = ∞) the count does not
         * fit an int, and converting it would be undefined */
        double n_sub = ceil(dt_s / (R * C) * SUBSTEPS_PER_TAU);
        int n = !(n_sub <= MAX_SUBSTEPS) ? MAX_SUBSTEPS : n_sub < 1 ? 1 : (int)n_sub;
        double h = dt_s / n;
        for (int i = 0; i < n; i++) {
            /* P_leak(T) ≈ l0 + l0 κ (T − t): then dT/dt = a − b T */
            double l0 = leak_k * exp(kappa * (t - u->t_leak_ref_C));
            double bb = (g_th - l0 * kappa) * inv_c;
            double aa = (p_other_W + l0 - l0 * kappa * t + u->t_amb_C * g_th) * inv_c;
            double rate = aa - bb * t; /* dT/dt now, K/s */
            /* heating already exceeds cooling and its excess grows with T
             * (the RHS is convex in T): nothing stops the climb */
            if (bb <= 0 && rate > 0) {
                t = peak = e_leak = INFINITY;
                break;
            }
            double t_next, mean_t;
            if (fabs(bb) * h > 1e-9) {
                double t_inf = aa / bb, decay = exp(-bb * h);
                t_next = t_inf + (t - t_inf) * decay;
                /* exact mean of the exponential over the substep */
                mean_t = t_inf + (t - t_inf) * (1 - decay) / (bb * h);
            } else { /* cooling and leakage slope cancel: straight line */
                t_next = t + rate * h;
                mean_t = 0.5 * (t + t_next);
            }
            e_leak += l0 * (1 + kappa * (mean_t - t)) * h;
            t = t_next;
            /* within a substep T is monotone: the peak is at an end */
            if (t > peak) peak = t;
            if (!(t < T_CAP_C)) {
                t = peak = e_leak = INFINITY;
                break;
            }
        }
    }
    if (peak_C) *peak_C = peak;
    if (leak_J) *leak_J = e_leak;
    return t;
}

double qeil_thermal_step(const qeil_unit *u, int dvfs, double t0_C, double p_other_W, double dt_s,
                         double *peak_C)
{
    return qeil_energy_thermal_integrate(u, dvfs, t0_C, p_other_W, dt_s, peak_C, NULL);
}
