/*
 * energy.h — the physics: roofline time and DASI, capacity pressure (CPQ),
 * leakage and thermal yield (Φ), the thermal RC model with its
 * leakage–temperature fixed point, DVFS scaling, and the unified energy
 * equation that evaluates a complete assignment of work to units.
 *
 * Usage:
 *
 *     qeil_assignment a;
 *     qeil_assignment_uniform(&a, &wl, 0, 1);   // everything on unit 0, batch 1
 *     qeil_eval ev;
 *     qeil_energy_params ep = qeil_energy_default_params();
 *     qeil_energy_eval(&pf, &wl, &a, &ep, &ev);
 *     printf("%.1f J in %.2f s, peak %.0f °C%s\n", ev.energy_J, ev.latency_s,
 *            ev.peak_temp_C, ev.feasible ? "" : " (infeasible)");
 *
 * Every equation, unit and default: docs/energy-model.md. All functions are
 * pure and reentrant; qeil_energy_eval allocates nothing (it runs inside the
 * annealing loop).
 */
#ifndef QEIL_ENERGY_H
#define QEIL_ENERGY_H

#include "qeil/device.h"
#include "qeil/workload.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Single formulas (hand-checkable; tests compute them by hand) ---- */

/* Ridge point I* = peak / (bandwidth), in FLOP/byte, for data type dt. */
QEIL_API double qeil_ridge_point(const qeil_unit *u, qeil_dtype dt);
/* DASI = eta_compute * min(1, I / I*), I = flops / bytes. In [0, 1]. */
QEIL_API double qeil_dasi(const qeil_unit *u, qeil_dtype dt, double flops, double bytes);
/* Roofline time at DVFS point k: max(F / (Π·η_c·f_k/f_nom), Q / (B·η_m)).
 * Memory time does not scale with core clock (DRAM is a separate domain).
 * Returns INFINITY when dt is unsupported (peak 0) and flops > 0. */
QEIL_API double qeil_roofline_time_s(const qeil_unit *u, qeil_dtype dt, int dvfs, double flops, double bytes);
/* CPQ = ρ / (1 − ρ) with ρ = resident / capacity; INFINITY for ρ >= 1. */
QEIL_API double qeil_cpq(double resident_B, double capacity_B);
/* Leakage at temperature T and DVFS point k: P_leak0·exp(κ(T−T0))·(V_k/V_nom). */
QEIL_API double qeil_leak_power_W(const qeil_unit *u, int dvfs, double temp_C);
/* Φ = P_dyn / (P_dyn + P_leak); 1 when both are 0. */
QEIL_API double qeil_phi(double p_dyn_W, double p_leak_W);
/* Dynamic energy scale at DVFS point k: (V_k / V_nom)^2. */
QEIL_API double qeil_dvfs_energy_scale(const qeil_unit *u, int dvfs);

/* Steady state of T = T_amb + R_th (P_other + P_leak(T)) by fixed-point
 * iteration. QEIL_ERR_INFEASIBLE (thermal runaway) when no fixed point
 * exists at or below t_max_C. p_other_W = dynamic + constant power. */
QEIL_API qeil_status qeil_thermal_steady(const qeil_unit *u, int dvfs, double p_other_W,
                                         double *temp_C, double *p_leak_W);
/* Transient: temperature after holding p_other_W (+ leakage, integrated) for
 * dt_s starting from t0_C. Returns the end temperature; *peak_C gets the
 * maximum along the way (INFINITY on runaway past t_max). */
QEIL_API double qeil_thermal_step(const qeil_unit *u, int dvfs, double t0_C, double p_other_W,
                                  double dt_s, double *peak_C);

/* ---- Assignments and their evaluation ---- */

/* What the planner decides; the energy model evaluates it. */
typedef struct {
    uint8_t pf_unit[QEIL_MAX_WUNITS]; /* compute unit (platform index) of each work unit, prefill */
    uint8_t dc_unit[QEIL_MAX_WUNITS]; /* ... decode */
    uint8_t dvfs[QEIL_MAX_UNITS];     /* DVFS point per compute unit */
    uint16_t batch;                   /* decode batch b, 1..samples */
} qeil_assignment;

/* Everything on compute unit d at its nominal DVFS point, decode batch b. */
QEIL_API void qeil_assignment_uniform(qeil_assignment *a, const qeil_platform *pf,
                                      const qeil_workload *wl, int d, int batch);

typedef struct {
    double cpq_penalty_coef; /* penalty(CPQ) = coef · CPQ on dynamic energy and time; default 0.05 */
    double throttle_frac;    /* junction limit = frac · t_max_C; default 0.85 */
    uint8_t healthy[QEIL_MAX_UNITS]; /* 0 = failed unit: any work on it is infeasible; default all 1 */
} qeil_energy_params;

QEIL_API qeil_energy_params qeil_energy_default_params(void);

/* Why a plan is infeasible (0 = feasible). */
enum {
    QEIL_INFEAS_NONE = 0,
    QEIL_INFEAS_MEMORY = 1 << 0,   /* ρ above rho_max in some pool */
    QEIL_INFEAS_THERMAL = 1 << 1,  /* predicted junction above the throttle limit, or runaway */
    QEIL_INFEAS_HEALTH = 1 << 2,   /* work on a failed unit */
    QEIL_INFEAS_DTYPE = 1 << 3,    /* a unit does not support the data type */
    QEIL_INFEAS_NOLINK = 1 << 4    /* consecutive work on pools with no link */
};

typedef struct {
    /* Objectives (all minimised). */
    double energy_J;
    double latency_s;
    double underutil; /* in [0, 1], defined in docs/energy-model.md */

    int feasible;      /* 1 when infeas == 0 */
    unsigned infeas;   /* QEIL_INFEAS_* bits */
    double peak_temp_C; /* hottest predicted junction over the request */

    /* Breakdown. */
    double prefill_s, decode_s, transfer_s;
    double energy_dyn_J, energy_static_J, energy_link_J;
    double avg_power_W;

    /* Per compute unit. */
    int powered[QEIL_MAX_UNITS];
    double busy_s[QEIL_MAX_UNITS];
    double dev_energy_J[QEIL_MAX_UNITS];
    double dev_temp_C[QEIL_MAX_UNITS]; /* peak junction */
    double dev_phi[QEIL_MAX_UNITS];    /* Φ over the request */
    double pool_rho[QEIL_MAX_POOLS];
    double pool_cpq[QEIL_MAX_POOLS];

    /* Per work unit and phase. */
    double pf_dasi[QEIL_MAX_WUNITS];
    double dc_dasi[QEIL_MAX_WUNITS];
    double pf_time_s[QEIL_MAX_WUNITS];
    double dc_time_s[QEIL_MAX_WUNITS]; /* all decode steps of all samples */

    /* How many places break the health, dtype and link constraints: work
     * units on a failed unit or on one without their data type (prefill and
     * decode placements counted apiece), plus transfers that need a missing
     * link (counted while the plan is evaluated far enough to see them: a
     * dtype violation stops before the links). 0 when those hold. The
     * planner's feasibility-first walk follows this count down. */
    uint32_t n_violations;
} qeil_eval;

/* Evaluate an assignment. Never fails on a well-formed assignment: an
 * infeasible one is reported through ev->feasible/infeas (objectives are
 * still computed where finite). Returns QEIL_ERR_INVALID only for a
 * malformed assignment (unit index or DVFS index out of range, batch 0 or
 * above samples). */
QEIL_API qeil_status qeil_energy_eval(const qeil_platform *pf, const qeil_workload *wl,
                                      const qeil_assignment *a, const qeil_energy_params *ep,
                                      qeil_eval *ev);


/* ---- Calibration: fit a unit's η_c, η_m and overheads to measured times ----
 * (docs/energy-model.md §10; `qeil calibrate`). A point is one phase of one
 * measured run, all work units on unit u, one sequence (samples 1, batch
 * 1): prefill (one step per work unit) or decode (gen_tokens steps), timed
 * over all its work units or over a contiguous range of them (the engine's
 * per-unit times, qeil_engine_unit_times: e.g. the blocks apart from the
 * head, which separates the per-step overhead from the bandwidth). The
 * model fitted is the latency model's on that unit:
 *   t = Σ_w [max(F_w / (Π_t η_c), Q_w / (B η_m)) + steps · (step_s + ops_w · op_s)
 *            + A_w · attn_ph_flop_s]
 * (CPQ penalty taken as 1; A_w the context-dependent attention FLOPs of
 * the phase, attn_ph_flop_s the phase's attention cost: attn_pf_flop_s or
 * attn_dc_flop_s). Each work unit is classed compute- or memory-bound
 * under the current coefficients, the six unknowns 1/η_c, 1/η_m, step_s,
 * op_s, attn_pf_flop_s and attn_dc_flop_s are solved on the relative
 * error by least absolute deviations (iteratively reweighted least
 * squares: robust to a point slowed by load), and the classing and
 * weights are repeated until they settle (at most 40 rounds). A coefficient no point constrains (no compute-bound
 * work: η_c; workloads with ops 0: op_s; no attention in a phase: its
 * attention cost) keeps its prior value and is reported unfitted; an
 * overhead the solve drives negative is pinned at 0. */
typedef struct {
    const qeil_workload *wl; /* borrowed; samples 1 */
    int phase;               /* 0 = prefill, 1 = decode */
    double t_s;              /* measured wall time of the phase (of the units timed), > 0 */
    uint32_t w_first, w_count; /* the work units timed: [w_first, w_first + w_count);
                                  w_count 0 = all of the workload's units */
} qeil_calib_point;

typedef struct {
    double eta_compute;  /* fitted achieved/peak compute fraction (may exceed 1:
                            the unit's peak is then below what it ran at) */
    double eta_mem;      /* fitted achieved/peak bandwidth fraction (may exceed 1) */
    double step_s;       /* fitted per-step overhead per work unit, s, >= 0 */
    int fit_compute, fit_mem, fit_step; /* 1: constrained by the points */
    double rms_rel_error; /* of the fit on its points */
    double op_s;         /* fitted per-dispatch overhead, s per backend call, >= 0 */
    int fit_op;          /* 1: constrained by the points (some ops > 0) */
    double attn_pf_flop_s; /* fitted attention cost of a prefill, s per context-dependent
                              attention FLOP, >= 0 */
    double attn_dc_flop_s; /* ... of decode */
    int fit_attn_pf, fit_attn_dc; /* 1: constrained by the points (attention FLOPs in
                                     some point of the phase) */
} qeil_calib_fit;

/* Fit unit u (its peak_ops, mem_bw_Bps at the nominal DVFS point; its
 * eta_compute, eta_mem, step_s, op_s, attn_pf_flop_s and attn_dc_flop_s are the
 * priors) to n points (n >= 1,
 * at most 4096). Errors: QEIL_ERR_INVALID (NULL, a point with t_s <= 0 or
 * not finite, a workload with samples != 1, a unit range past the
 * workload's units, n out of range),
 * QEIL_ERR_RANGE (the least-squares system is singular even with the
 * unconstrained coefficients fixed). Pure, reentrant, allocates nothing. */
QEIL_API qeil_status qeil_calib_fit_unit(const qeil_unit *u, const qeil_calib_point *pts, size_t n,
                                qeil_calib_fit *out);

#ifdef __cplusplus
}
#endif

#endif /* QEIL_ENERGY_H */
