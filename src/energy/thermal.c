/* thermal.c — the lumped thermal RC model with temperature-dependent
 * leakage: C dT/dt = P + P_leak(T) − (T − T_amb)/R.
 *
 * Leakage heats the die and heat raises leakage, so the steady state is a
 * fixed point T = T_amb + R (P + P_leak(T)). g(T) = T_amb + R(P + P_leak(T)) − T
 * is convex in T; Newton from T_amb (where g ≥ 0) climbs monotonically to the
 * smallest root, the stable one. If g' reaches ≥ 0 before a root, or the
 * iterate passes T_max, there is no stable state below T_max: runaway. */
#include "energy_internal.h"

#include <math.h>

#define NEWTON_MAX_ITERS 64
#define NEWTON_TOL_K 1e-9
/* Transient substeps: leakage is linearised about each substep's start, and
 * the linear ODE is solved exactly, so the step only needs to be short
 * against the leakage's e-folding (1/κ ≈ 14 K) in temperature; τ/8 keeps the
 * linearisation error below 0.1 K on every catalog device. Capped so an
 * evaluation stays a few microseconds. */
#define SUBSTEPS_PER_TAU 8
#define MAX_SUBSTEPS 32

qeil_status qeil_thermal_steady(const qeil_unit *u, int dvfs, double p_other_W, double *temp_C,
                                double *p_leak_W)
{
    double t = u->t_amb_C;
    for (int it = 0; it < NEWTON_MAX_ITERS; it++) {
        double leak = qeil_leak_power_W(u, dvfs, t);
        double g = u->t_amb_C + u->r_th_KpW * (p_other_W + leak) - t;
        double dg = u->r_th_KpW * u->leak_kappa_perK * leak - 1.0;
        if (fabs(g) < NEWTON_TOL_K) {
            *temp_C = t;
            *p_leak_W = leak;
            return t <= u->t_max_C ? QEIL_OK : QEIL_ERR_INFEASIBLE;
        }
        if (dg >= 0 || t > u->t_max_C) break; /* no stable root below here */
        t -= g / dg;
    }
    if (t <= u->t_max_C) { /* converged slowly but still in range: accept */
        double leak = qeil_leak_power_W(u, dvfs, t);
        double g = u->t_amb_C + u->r_th_KpW * (p_other_W + leak) - t;
        if (fabs(g) < 1e-6) {
            *temp_C = t;
            *p_leak_W = leak;
            return QEIL_OK;
        }
    }
    *temp_C = INFINITY;
    *p_leak_W = INFINITY;
    return QEIL_ERR_INFEASIBLE;
}

double qeil_energy_thermal_integrate(const qeil_unit *u, int dvfs, double t0_C, double p_other_W,
                                     double dt_s, double *peak_C, double *leak_J)
{
    double t = t0_C, peak = t0_C, e_leak = 0;
    if (dt_s > 0) {
        double tau = u->r_th_KpW * u->c_th_JpK;
        int n = (int)ceil(dt_s / tau * SUBSTEPS_PER_TAU);
        if (n < 1) n = 1;
        if (n > MAX_SUBSTEPS) n = MAX_SUBSTEPS;
        double h = dt_s / n;
        for (int i = 0; i < n; i++) {
            /* P_leak(T) ≈ L0 + L0 κ (T − T_s): dT/dt = a − b T */
            double l0 = qeil_leak_power_W(u, dvfs, t);
            double b = (1.0 / u->r_th_KpW - l0 * u->leak_kappa_perK) / u->c_th_JpK;
            double a = (p_other_W + l0 - l0 * u->leak_kappa_perK * t + u->t_amb_C / u->r_th_KpW) /
                       u->c_th_JpK;
            double t_next, mean_t;
            if (b > 1e-12) {
                double t_inf = a / b, decay = exp(-b * h);
                t_next = t_inf + (t - t_inf) * decay;
                /* exact mean of the exponential over the substep */
                mean_t = t_inf + (t - t_inf) * (1 - decay) / (b * h);
            } else { /* leakage outruns cooling: grows at least linearly */
                t_next = t + (a - b * t) * h;
                mean_t = 0.5 * (t + t_next);
            }
            e_leak += (l0 + l0 * u->leak_kappa_perK * (mean_t - t)) * h;
            t = t_next;
            if (t > peak) peak = t;
            if (!(t < 1e4)) { /* numerically gone: runaway */
                peak = INFINITY;
                t = INFINITY;
                e_leak = INFINITY;
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
