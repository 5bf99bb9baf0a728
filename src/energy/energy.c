/* energy.c — the single formulas of the energy model: roofline time, DASI,
 * CPQ, leakage, thermal yield Φ, DVFS scaling. Each is hand-checkable
 * (tests/test_energy.c computes them by hand); docs/energy-model.md gives the
 * equations with units and sources (§ numbers below refer to it). */
#include "qeil/energy.h"

#include <math.h>

static double nominal_freq(const qeil_unit *u) { return u->dvfs[u->dvfs_nominal].freq_Hz; }
static double nominal_volt(const qeil_unit *u) { return u->dvfs[u->dvfs_nominal].volt_V; }

double qeil_ridge_point(const qeil_unit *u, qeil_dtype dt)
{
    return u->peak_ops[dt] / u->mem_bw_Bps;
}

double qeil_dasi(const qeil_unit *u, qeil_dtype dt, double flops, double bytes)
{
    if (u->peak_ops[dt] <= 0 || flops <= 0) return 0; /* nothing the unit can use */
    if (bytes <= 0) return u->eta_compute; /* no traffic: compute-bound by definition */
    double ridge = qeil_ridge_point(u, dt);
    double i = flops / bytes;
    return u->eta_compute * (i < ridge ? i / ridge : 1.0);
}

/* §1.1, Williams, Waterman & Patterson, "Roofline", CACM 52(4), 2009 */
double qeil_roofline_time_s(const qeil_unit *u, qeil_dtype dt, int dvfs, double flops, double bytes)
{
    double t_c = 0;
    if (flops > 0) {
        if (u->peak_ops[dt] <= 0) return INFINITY;
        double f_scale = u->dvfs[dvfs].freq_Hz / nominal_freq(u);
        t_c = flops / (u->peak_ops[dt] * u->eta_compute * f_scale);
    }
    /* DRAM runs in its own clock domain: core DVFS leaves bandwidth alone */
    double t_m = bytes > 0 ? bytes / (u->mem_bw_Bps * u->eta_mem) : 0;
    return t_c > t_m ? t_c : t_m;
}

/* §3: the M/M/1 mean queue length ρ/(1 − ρ) as a pressure index */
double qeil_cpq(double resident_B, double capacity_B)
{
    double rho = resident_B / capacity_B;
    if (!(rho < 1)) return INFINITY;
    return rho / (1 - rho);
}

double qeil_leak_power_W(const qeil_unit *u, int dvfs, double temp_C)
{
    /* §4.1: sub-threshold leakage grows ~exponentially with T and ~linearly
     * with V_dd at fixed T (the DIBL term linearised) */
    double v_scale = u->dvfs[dvfs].volt_V / nominal_volt(u);
    return u->p_leak_ref_W * exp(u->leak_kappa_perK * (temp_C - u->t_leak_ref_C)) * v_scale;
}

double qeil_phi(double p_dyn_W, double p_leak_W)
{
    double s = p_dyn_W + p_leak_W;
    return s > 0 ? p_dyn_W / s : 1.0;
}

/* §1.7: switching energy per operation is C_eff·V², independent of f */
double qeil_dvfs_energy_scale(const qeil_unit *u, int dvfs)
{
    double v = u->dvfs[dvfs].volt_V / nominal_volt(u);
    return v * v;
}
