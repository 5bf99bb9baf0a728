/*
 * plan_place.c — a plan's device map as an engine placement: each work
 * unit's platform unit, through the profile's `device` name, to the
 * backend id that runs it (docs/runtime.md, "Plans to placements").
 */
#include <stdio.h>
#include <string.h>

#include "qeil/runtime.h"

qeil_status qeil_plan_placement(qeil_ctx *ctx, const qeil_platform *pf, const qeil_assignment *a,
                                int phase, uint32_t n_units, uint8_t *backend)
{
    if (!pf || !a || !backend)
        return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "qeil_plan_placement: NULL argument");
    if (phase != 0 && phase != 1)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                             "plan placement: phase %d (allowed 0 prefill, 1 decode)", phase);
    if (n_units < 1 || n_units > QEIL_MAX_WUNITS)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                             "plan placement: %u work units (allowed 1..%d)", n_units,
                             QEIL_MAX_WUNITS);
    const uint8_t *map = phase == 0 ? a->pf_unit : a->dc_unit;
    for (uint32_t w = 0; w < n_units; w++) {
        int d = map[w];
        if (d >= pf->n_units)
            return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                                 "plan placement: work unit %u is on unit %d (platform '%s' has "
                                 "0..%d)",
                                 w, d, pf->name, pf->n_units - 1);
        const qeil_unit *u = &pf->units[d];
        if (!u->device[0])
            return qeil_ctx_fail(ctx, QEIL_ERR_NOTFOUND,
                                 "plan placement: unit '%s' of platform '%s' stands for no local "
                                 "device (plan on a profile `qeil probe` wrote to run the plan here)",
                                 u->name, pf->name);
        size_t id = 0, nb = qeil_engine_n_backends();
        while (id < nb && strcmp(qeil_engine_device_name(id), u->device) != 0) id++;
        if (id == nb) {
            char known[192] = "";
            for (size_t k = 0; k < nb; k++) {
                size_t used = strlen(known);
                snprintf(known + used, sizeof known - used, "%s%s", k ? ", " : "",
                         qeil_engine_device_name(k));
            }
            return qeil_ctx_fail(ctx, QEIL_ERR_NOTFOUND,
                                 "plan placement: unit '%s' stands for device '%s', which this build "
                                 "has no backend for (known: %s)",
                                 u->name, u->device, known);
        }
        backend[w] = (uint8_t)id;
    }
    return QEIL_OK;
}
