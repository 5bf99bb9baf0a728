/*
 * guard.h — the runtime thermal guard: per compute unit, fit the lumped RC
 * thermal model (docs/energy-model.md §4) online to temperature and power
 * readings, predict the junction temperature over a horizon, and act
 * before it crosses the guard limit (default 0.85 × T_max, the planner's
 * constraint): first lower the unit's DVFS point, then move its work
 * (re-plan with the unit's fitted thermals), restore when it has cooled.
 * Also the simulated platform of `qeil thermal-sim`, whose sensors and
 * actuators are the RC model itself. docs/guard.md.
 *
 * Usage (the caller owns the sensors and the actuators):
 *
 *     qeil_guard_params gp = qeil_guard_default_params();
 *     qeil_guard *g = NULL;
 *     uint8_t dvfs[QEIL_MAX_UNITS] = {0};   // the running plan's DVFS points
 *     if (qeil_guard_create(ctx, &gp, &pf, dvfs, &g) != QEIL_OK) return 1;
 *     for (;;) {
 *         double t = now_s();
 *         for (int d = 0; d < pf.n_units; d++)
 *             qeil_guard_observe(g, d, t, read_temp_C(d), read_power_W(d));
 *         qeil_guard_action act[QEIL_MAX_UNITS];
 *         size_t n = qeil_guard_step(g, t, act, QEIL_MAX_UNITS);
 *         for (size_t i = 0; i < n; i++)
 *             qeil_guard_applied(g, &act[i], apply(&act[i]) == 0);
 *     }
 *     qeil_guard_free(g);
 *
 * Determinism: the guard is arithmetic on its inputs (no clock, no RNG):
 * the same readings give the same actions. Memory: everything is allocated
 * at create; observe and step allocate nothing. Thread-safety: a guard is
 * mutable state, one thread at a time.
 */
#ifndef QEIL_GUARD_H
#define QEIL_GUARD_H

#include <stddef.h>
#include <stdint.h>

#include "qeil/device.h"
#include "qeil/plan.h"
#include "qeil/workload.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    double limit_frac;    /* guard limit = limit_frac × t_max_C, (0, 1]; default 0.85 */
    double horizon_s;     /* prediction horizon, (0, 3600]; default 30 */
    double margin_K;      /* act when the predicted peak reaches limit − margin, [0, 50];
                             default 1 */
    double hyst_K;        /* restore only when the predicted steady state at the
                             higher setting is below limit − hyst, [0, 50]; default 5 */
    double hold_s;        /* a unit stays this long below limit − hyst before a
                             restore, [0, 3600]; default 20 */
    double min_period_s;  /* readings closer than this to the previous one of the
                             unit are ignored, [0, 60]; default 0.25 */
    double forget;        /* weight kept by the fit's past per reading, (0, 1];
                             default 0.995 (an effective window of 200 readings) */
    double prior_weight;  /* pull of the profile's R_th and T_amb on the fit,
                             relative to the data's own scale, (0, 1e6]; default 1e-3 */
    uint32_t min_samples; /* readings before the fit replaces the prior, 3..1e6;
                             default 8 */
    double prior_weight_c; /* pull of the profile's C_th, (0, 1e6]; default 1: as
                              strong as the data (a package's heat capacity does
                              not drift; readings at one power cannot tell "more
                              kelvin per watt" from "a hotter room" apart) */
} qeil_guard_params;

QEIL_API qeil_guard_params qeil_guard_default_params(void);

typedef enum {
    QEIL_GUARD_DVFS_DOWN = 0, /* lower the unit's DVFS point: from → to are indices */
    QEIL_GUARD_DVFS_UP,       /* restore a higher point (cooled): from → to indices */
    QEIL_GUARD_MIGRATE,       /* move work off the unit: the caller re-plans on
                                 qeil_guard_platform's view; from → to are filled by
                                 the caller (work units on the unit before → after) */
    QEIL_GUARD_RESTORE_PLAN   /* the unit's fitted steady state at its pre-migration
                                 power is below limit − hyst: the caller may go back
                                 to the original plan */
} qeil_guard_action_kind;

/* "dvfs-down", "dvfs-up", "migrate", "restore-plan"; "?" out of range. */
QEIL_API const char *qeil_guard_action_name(qeil_guard_action_kind k);

typedef struct {
    double t_s;            /* time of the decision (the caller's clock, s) */
    int unit;              /* platform unit index */
    qeil_guard_action_kind kind;
    int from, to;          /* see the kinds */
    double temp_C;         /* the unit's last reading */
    double predicted_C;    /* predicted peak over the horizon at the current setting */
    int ok;                /* set by qeil_guard_applied: 1 done, 0 refused */
    double apply_s;        /* wall time the caller spent applying it (a migration in
                              the runtime: the re-plan and the move of weights and KV),
                              s; 0 = not measured */
} qeil_guard_action;

/* The fitted model of one unit. */
typedef struct {
    double r_th_KpW, c_th_JpK, t_amb_C; /* the fit, or the profile's prior until
                                           min_samples readings */
    int fitted;                         /* 1: from readings; 0: the prior */
    uint32_t n_samples;                 /* readings used */
    double temp_C, power_W;             /* the last reading (NAN before any) */
    double t_s;                         /* its time */
    int dvfs;                           /* the DVFS point the guard believes is set */
    double limit_C;                     /* limit_frac × t_max_C */
} qeil_guard_model;

typedef struct qeil_guard qeil_guard;

/* Validate p (NULL: defaults; QEIL_ERR_RANGE naming field, value and range)
 * and the platform (qeil_platform_validate), copy both, and take dvfs[u]
 * (n_units entries, each < the unit's n_dvfs; NULL: each unit's nominal
 * point) as the DVFS points now set. ctx (may be NULL: C allocator) must
 * outlive *out. Free with qeil_guard_free (NULL is a no-op). */
QEIL_API qeil_status qeil_guard_create(qeil_ctx *ctx, const qeil_guard_params *p,
                                       const qeil_platform *pf, const uint8_t *dvfs,
                                       qeil_guard **out);
QEIL_API void qeil_guard_free(qeil_guard *g);

/* One reading of unit u at time t_s: junction temperature (°C) and the
 * unit's power (W, leakage included, as a power sensor reads it; the
 * modeled power where no sensor exists). A reading with a non-finite value,
 * a time not after the unit's previous reading, or closer than min_period_s
 * to it, is ignored: returns 0; used: 1. Fits by exponentially forgotten
 * least squares on the trapezoidal discretisation of
 *   C dT/dt = P − (T − T_amb)/R,
 * i.e. (T₁ − T₀)/Δt = a P₀ − b (T₀ + T₁)/2 + c with a = 1/C, b = 1/(RC),
 * c = T_amb/(RC), ridge-pulled towards the profile's (a, b, c). */
QEIL_API int qeil_guard_observe(qeil_guard *g, int u, double t_s, double temp_C, double power_W);

/* Decide at time t_s: for each unit with a reading, the predicted peak over
 * the horizon at its current setting (qeil_guard_predict_C); at or above
 * limit − margin: DVFS_DOWN to the next lower point, or MIGRATE when it is
 * at its lowest point or its DVFS actuator refused; cool for hold_s with
 * the steady state at the setting above below limit − hyst: DVFS_UP or
 * RESTORE_PLAN. At most one action per unit per step; up to cap written to
 * out; returns how many (0 when g or out is NULL). The guard's view of
 * each unit's setting changes only through qeil_guard_applied. */
QEIL_API size_t qeil_guard_step(qeil_guard *g, double t_s, qeil_guard_action *out, size_t cap);

/* Tell the guard what became of an action (ok 1: done; 0: the actuator
 * refused, e.g. no permission): a refused DVFS change marks the unit's DVFS
 * as unavailable, so the next action on it is MIGRATE. The action goes to
 * the guard's log (qeil_guard_log) with ok set. */
QEIL_API void qeil_guard_applied(qeil_guard *g, const qeil_guard_action *a, int ok);

/* After a re-plan the caller ran: the DVFS points the new plan sets
 * (n_units entries) become each unit's point and restore target; the power
 * seen per point is forgotten (the work per unit changed) and every unit
 * waits for a fresh reading. restored 1 (the caller went back to the
 * original plan after RESTORE_PLAN) also clears the units' migrated state. */
QEIL_API void qeil_guard_set_plan(qeil_guard *g, const uint8_t *dvfs, int restored);

/* Predicted peak junction temperature of unit u over horizon_s from its
 * last reading, power held (its leakage following the temperature by the
 * profile's leakage law), with the fitted model (qeil_thermal_step on the
 * fitted unit). NAN before the unit's first reading. */
QEIL_API double qeil_guard_predict_C(const qeil_guard *g, int u, double horizon_s);

/* The fitted model of unit u (zeroed, NAN temperatures, for a bad u). */
QEIL_API qeil_guard_model qeil_guard_get_model(const qeil_guard *g, int u);

/* The platform with every unit's r_th, c_th and t_amb replaced by the
 * fitted values: re-planning on it gives the planner the measured headroom
 * (its 0.85 × T_max constraint then holds at the ambient actually met). */
QEIL_API void qeil_guard_platform(const qeil_guard *g, qeil_platform *out);

/* The actions applied so far (in order; at most QEIL_GUARD_LOG_MAX kept,
 * later ones counted only), and how many were recorded in all. */
#define QEIL_GUARD_LOG_MAX 256
QEIL_API size_t qeil_guard_log(const qeil_guard *g, const qeil_guard_action **out);
QEIL_API uint64_t qeil_guard_log_total(const qeil_guard *g);

/* ------------------------------------------------------------------------ */
/* The simulated platform (`qeil thermal-sim`)                               */
/* ------------------------------------------------------------------------ */

/* A sustained generation workload (requests back to back) on the plan the
 * planner picks (PGSAM knee), on a platform whose temperatures follow the
 * RC model (qeil_thermal_step) with ambient raised so that the plan, left
 * alone, heats its hottest unit `overshoot_K` past the throttle point
 * (throttle_frac × T_max). Crossing the throttle point throttles the unit
 * to its lowest DVFS point, as hardware does, until it is hyst_K below
 * (each crossing is one throttle event); a unit that reaches T_max even
 * so (leakage running away at the lowest point) trips: all work stops
 * until it is back below its throttle point. With the guard, every step the
 * guard reads each unit's temperature and power and its actions are
 * applied: DVFS changes on the simulated actuator, migrations by
 * re-planning (qeil_plan_search) on qeil_guard_platform's view. Every
 * figure is modeled. Deterministic for a seed. */
typedef struct {
    double minutes;       /* simulated time, (0, 1440]; default 30 */
    double dt_s;          /* step (the guard's sampling period), [0.01, 10]; default 0.5 */
    int guard;            /* 1: guard on (default); 0: off */
    double overshoot_K;   /* the unguarded plan's steady state above the throttle
                             point, (0, 100]; default 6 */
    double throttle_hyst_K; /* hardware un-throttles this far below, (0, 50]; default 5 */
    qeil_plan_params plan;  /* seed, iterations; throttle_frac is the throttle point */
    qeil_guard_params gp;
} qeil_thermal_sim_params;

QEIL_API qeil_thermal_sim_params qeil_thermal_sim_default_params(void);

typedef struct {
    double t_amb_C;                    /* the simulated ambient */
    double sim_s;                      /* simulated seconds */
    uint64_t throttle_events;          /* throttle-point crossings, all units */
    uint64_t throttle_events_unit[QEIL_MAX_UNITS];
    double throttled_s;                /* unit-seconds spent throttled */
    double energy_J;                   /* modeled energy of the whole run */
    double tokens;                     /* modeled tokens generated (fractional: the
                                          last request is in flight) */
    double latency_per_token_s;        /* sim_s / tokens */
    double peak_C[QEIL_MAX_UNITS];     /* per unit (NAN: never powered) */
    double limit_C[QEIL_MAX_UNITS];    /* throttle point = guard limit */
    int powered[QEIL_MAX_UNITS];       /* carried work at some point */
    qeil_assignment plan0;             /* the planner's plan */
    uint32_t replans;                  /* migrations executed */
    uint32_t critical_trips;           /* a unit reached T_max (throttling could not hold
                                          it): the work stopped until it cooled */
} qeil_thermal_sim_result;

/* Run it. The guard's actions are in *guard_out (may be NULL: freed here;
 * else the caller frees it) when p->guard is 1, NULL otherwise. Errors:
 * QEIL_ERR_RANGE naming a bad field, the planner's, QEIL_ERR_INFEASIBLE
 * when the planner finds no feasible plan. */
QEIL_API qeil_status qeil_thermal_sim_run(qeil_ctx *ctx, const qeil_platform *pf,
                                          const qeil_workload *wl,
                                          const qeil_thermal_sim_params *p,
                                          qeil_thermal_sim_result *out, qeil_guard **guard_out);

#ifdef __cplusplus
}
#endif

#endif /* QEIL_GUARD_H */
