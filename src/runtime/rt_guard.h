/* rt_guard.h — the runtime's thermal guard (rt_guard.c): this machine's
 * temperature sensors and actuators wired to a qeil_guard, polled from
 * the generation loop. Internal to the runtime. */
#ifndef QEIL_RT_GUARD_H
#define QEIL_RT_GUARD_H

#include "qeil/runtime.h"

typedef struct rt_guard rt_guard;

/* Open the sensors under p->meter.root and map them to pf's units. Never
 * fails for want of sensors (the guard is then inactive, with the reason);
 * QEIL_ERR_NOMEM, or the guard's parameter errors. *out NULL when
 * p->guard or p->sensors is 0. */
qeil_status rt_guard_create(qeil_ctx *ctx, const qeil_runtime_params *p, const qeil_platform *pf,
                            rt_guard **out);
/* Moves a running request's work between decode steps (the runtime's
 * guard_move): off unit `unit` to a re-plan on `view` (restore 0; *from /
 * *to get the work units on the unit before and after, power_W[d] each
 * unit's new mean power or NAN), or back to the placement before the first
 * migration (restore 1; from, to and power_W are NULL). 1 when done. */
typedef int (*rt_guard_mover)(void *user, int unit, int restore, const qeil_platform *view,
                              int *from, int *to, double *power_W);
/* Without a mover (or g NULL) a migration is refused, as before. */
void rt_guard_set_mover(rt_guard *g, rt_guard_mover fn, void *user);
/* Restores every actuator the guard wrote to its value at discovery. */
void rt_guard_free(rt_guard *g);
/* A request begins: the power the fit sees per unit is the plan's modeled
 * mean (dev_energy_J / latency_s of plan_ev; NULL: the units' constant
 * power), and the throttle counters' first sample is taken. */
void rt_guard_begin(rt_guard *g, const qeil_eval *plan_ev);
/* Between steps: reads and decides when min_period_s has passed. */
void rt_guard_poll(rt_guard *g);
/* The request's work is done (so far): the throttle counters again. */
void rt_guard_end(rt_guard *g);
void rt_guard_report(const rt_guard *g, qeil_runtime_guard_report *out);
/* The latest reading of unit u's temperature sensor (taken by the last
 * poll or end); NAN when none maps to it or it did not read. */
double rt_guard_unit_temp(const rt_guard *g, int u);

#endif /* QEIL_RT_GUARD_H */
