/*
 * rt_metrics.c — the QEIL metrics at run time (docs/runtime.md "DASI, CPQ
 * and Φ at run time"): per platform unit, the energy model's DASI, Φ and
 * CPQ for the plan beside the same quantities from what this machine
 * measured — the engine's per-work-unit times, the temperature the guard
 * read, the memory in use.
 *
 * DASI of a unit in a phase is its work over its time as a fraction of its
 * nominal peak, Σ_w F_w/Π(dtype_w) / Σ_w t_w: with the model's time
 * t = max(F/Π, Q/B)/η this is η·min(1, I/I*), the definition
 * (docs/energy-model.md §1.2); with measured times it is the achieved one.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "runtime/rt_metrics.h"

/* Σ F/Π and Σ t over the work units in `sel` (1 = counted). */
static double dasi_of(const qeil_unit *u, const qeil_workload *wl, const uint8_t *sel, uint32_t n,
                      const double *flops, const double *t)
{
    double work = 0, time = 0;
    for (uint32_t w = 0; w < n; w++) {
        if (!sel[w]) continue;
        double peak = u->peak_ops[wl->dtype[w]];
        if (!(peak > 0) || !(t[w] > 0) || !isfinite(t[w])) continue;
        work += flops[w] / peak;
        time += t[w];
    }
    return time > 0 ? work / time : NAN;
}

void rt_unit_metrics(const rt_metrics_in *in, qeil_runtime_unit_metrics *out)
{
    const qeil_platform *pf = in->pf;
    const qeil_workload *wl = in->wl;
    const qeil_eval *ev = in->ev;
    uint32_t n = in->n_units < wl->n_units ? in->n_units : wl->n_units;
    if (n > QEIL_MAX_WUNITS) n = QEIL_MAX_WUNITS;
    double f_pf[QEIL_MAX_WUNITS], f_dc_pred[QEIL_MAX_WUNITS], f_dc_meas[QEIL_MAX_WUNITS];
    const double seq_steps = (double)wl->samples * wl->gen_tokens;
    for (uint32_t w = 0; w < n; w++) {
        f_pf[w] = wl->u[w].pf_flops;
        f_dc_pred[w] = wl->u[w].dc_flops * seq_steps;
        f_dc_meas[w] = wl->u[w].dc_flops * in->dc_tokens;
    }
    /* the pools that are the host's memory (a unit standing for the CPU) */
    int host_pool[QEIL_MAX_POOLS] = {0};
    for (int d = 0; d < pf->n_units; d++)
        if (strncmp(pf->units[d].device, "cpu", 3) == 0) host_pool[pf->units[d].pool] = 1;

    for (int d = 0; d < pf->n_units; d++) {
        const qeil_unit *u = &pf->units[d];
        qeil_runtime_unit_metrics *m = &out[d];
        memset(m, 0, sizeof *m);
        snprintf(m->unit, sizeof m->unit, "%s", u->name);
        snprintf(m->device, sizeof m->device, "%s", u->device);
        uint8_t on_pf[QEIL_MAX_WUNITS] = {0}, on_dc[QEIL_MAX_WUNITS] = {0};
        uint8_t ran[QEIL_MAX_WUNITS] = {0};
        for (uint32_t w = 0; w < n; w++) {
            on_pf[w] = in->a->pf_unit[w] == d;
            on_dc[w] = in->a->dc_unit[w] == d;
            const char *dev = qeil_engine_device_name(in->place[w]);
            ran[w] = u->device[0] && dev && strcmp(dev, u->device) == 0;
        }
        m->dasi_pred[0] = dasi_of(u, wl, on_pf, n, f_pf, ev->pf_time_s);
        m->dasi_pred[1] = dasi_of(u, wl, on_dc, n, f_dc_pred, ev->dc_time_s);
        m->dasi_meas[0] = dasi_of(u, wl, ran, n, f_pf, in->t_pf);
        m->dasi_meas[1] = in->dc_tokens > 0 ? dasi_of(u, wl, ran, n, f_dc_meas, in->t_dc) : NAN;

        int k = in->a->dvfs[d];
        m->phi_pred = ev->powered[d] ? ev->dev_phi[d] : NAN;
        m->temp_C = in->temp_C ? in->temp_C[d] : NAN;
        m->phi_meas = NAN;
        if (isfinite(m->phi_pred) && isfinite(m->temp_C)) {
            /* the model's dynamic power, with the leakage at the measured T */
            double leak_pred = qeil_leak_power_W(u, k, ev->dev_temp_C[d]);
            double leak_meas = qeil_leak_power_W(u, k, m->temp_C);
            if (m->phi_pred < 1 && leak_pred > 0) {
                double p_dyn = m->phi_pred / (1 - m->phi_pred) * leak_pred;
                m->phi_meas = qeil_phi(p_dyn, leak_meas);
            } else if (!(leak_meas > 0)) {
                m->phi_meas = 1; /* no leakage at either temperature */
            } /* else the model had no leakage to recover P_dyn from: NAN */
        }

        int p = u->pool;
        snprintf(m->pool, sizeof m->pool, "%s", pf->pools[p].name);
        m->rho_pred = ev->pool_rho[p];
        m->cpq_pred = ev->pool_cpq[p];
        m->rho_meas = m->cpq_meas = NAN;
        if (host_pool[p] && isfinite(in->mem_used_B) && pf->pools[p].capacity_B > 0) {
            m->rho_meas = in->mem_used_B / pf->pools[p].capacity_B;
            m->cpq_meas = qeil_cpq(in->mem_used_B, pf->pools[p].capacity_B);
        }
    }
}

double rt_meminfo_used_B(const char *root)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/proc/meminfo", root && root[0] ? root : "");
    FILE *f = fopen(path, "r");
    if (!f) return NAN;
    char line[256];
    double total = NAN, avail = NAN;
    while (fgets(line, sizeof line, f)) {
        unsigned long long kb;
        if (sscanf(line, "MemTotal: %llu kB", &kb) == 1) total = (double)kb * 1024.0;
        else if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) avail = (double)kb * 1024.0;
    }
    fclose(f);
    return isfinite(total) && isfinite(avail) && avail <= total ? total - avail : NAN;
}
