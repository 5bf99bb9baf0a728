/* energy_internal.h — pieces of the energy model shared between its files. */
#ifndef QEIL_ENERGY_INTERNAL_H
#define QEIL_ENERGY_INTERNAL_H

#include "qeil/energy.h"

/* Transient thermal step that also integrates the leakage energy (J) over
 * the step. Returns the end temperature; *peak_C the maximum on the way. */
double qeil_energy_thermal_integrate(const qeil_unit *u, int dvfs, double t0_C, double p_other_W,
                                     double dt_s, double *peak_C, double *leak_J);

#endif
