/* eval.c — the unified energy equation applied to a whole assignment:
 *
 *   E = Σ_w (F_w ε_op,d + Q_w ε_byte,d)(V/V_nom)²(1 + c·CPQ_pool)      dynamic
 *     + Σ_d powered (P_const,d T + ∫ P_leak,d(T_d(t)) dt)              static
 *     + Σ_links bytes · ε_link                                         links
 *
 * with times from the roofline, temperatures from the thermal RC model and
 * the leakage fixed point. Runs inside the annealing loop: no allocation,
 * few transcendental calls (a handful per powered unit). docs/energy-model.md
 * states every term, unit and assumption. */
#include "energy_internal.h"

#include <math.h>
#include <string.h>

qeil_energy_params qeil_energy_default_params(void)
{
    qeil_energy_params p;
    memset(&p, 0, sizeof p);
    /* 0.05: at ρ = 0.5 (CPQ 1) work on the pool slows by 5 %, at ρ = 0.9
     * (CPQ 9) by 45 % — the order of allocator/TLB/page-cache slowdowns
     * reported for nearly-full unified memory; docs/energy-model.md. */
    p.cpq_penalty_coef = 0.05;
    p.throttle_frac = 0.85;
    for (int i = 0; i < QEIL_MAX_UNITS; i++) p.healthy[i] = 1;
    return p;
}

void qeil_assignment_uniform(qeil_assignment *a, const qeil_platform *pf, const qeil_workload *wl,
                             int d, int batch)
{
    memset(a, 0, sizeof *a);
    for (uint32_t w = 0; w < wl->n_units && w < QEIL_MAX_WUNITS; w++)
        a->pf_unit[w] = a->dc_unit[w] = (uint8_t)d;
    for (int u = 0; u < pf->n_units; u++) a->dvfs[u] = (uint8_t)pf->units[u].dvfs_nominal;
    a->batch = (uint16_t)batch;
}

/* The type a unit actually computes in: the work's type if supported, else
 * the next wider one (weights can always be dequantized upward); -1 if none. */
static int effective_dtype(const qeil_unit *u, qeil_dtype dt)
{
    static const qeil_dtype wider[QEIL_DT_COUNT] = {
        [QEIL_DT_INT4] = QEIL_DT_INT8, [QEIL_DT_INT8] = QEIL_DT_F16,
        [QEIL_DT_F16] = QEIL_DT_F32, [QEIL_DT_F32] = QEIL_DT_COUNT};
    for (int t = (int)dt; t != QEIL_DT_COUNT; t = (int)wider[t])
        if (u->peak_ops[t] > 0) return t;
    return -1;
}

/* One link transfer: time and energy; returns 0 when no link joins the pools. */
static int transfer(const qeil_platform *pf, int pa, int pb, double bytes, double n_transfers,
                    double *t_s, double *e_J)
{
    int l = qeil_platform_link(pf, pa, pb);
    if (l < 0) return 0;
    const qeil_link *lk = &pf->links[l];
    *t_s += n_transfers * lk->latency_s + bytes / lk->bw_Bps;
    *e_J += bytes * lk->e_byte_J;
    return 1;
}

static qeil_status check_assignment(const qeil_platform *pf, const qeil_workload *wl,
                                    const qeil_assignment *a)
{
    if (wl->n_units < 2 || wl->n_units > QEIL_MAX_WUNITS || wl->samples < 1)
        return QEIL_ERR_INVALID;
    for (uint32_t w = 0; w < wl->n_units; w++)
        if (a->pf_unit[w] >= pf->n_units || a->dc_unit[w] >= pf->n_units) return QEIL_ERR_INVALID;
    for (int d = 0; d < pf->n_units; d++)
        if (a->dvfs[d] >= pf->units[d].n_dvfs) return QEIL_ERR_INVALID;
    if (a->batch < 1 || a->batch > wl->samples) return QEIL_ERR_INVALID;
    return QEIL_OK;
}

static void set_unreachable(qeil_eval *ev)
{
    ev->energy_J = ev->latency_s = INFINITY;
    ev->underutil = 1;
    ev->peak_temp_C = INFINITY;
    ev->avg_power_W = INFINITY;
    ev->feasible = 0;
}

qeil_status qeil_energy_eval(const qeil_platform *pf, const qeil_workload *wl,
                             const qeil_assignment *a, const qeil_energy_params *ep,
                             qeil_eval *ev)
{
    qeil_status st = check_assignment(pf, wl, a);
    if (st != QEIL_OK) return st;
    memset(ev, 0, sizeof *ev);
    const uint32_t n = wl->n_units;
    const int nd = pf->n_units;

    /* ---- which units are powered, in which pools things live ---- */
    int dt_of[QEIL_MAX_UNITS][QEIL_DT_COUNT];
    double e_scale[QEIL_MAX_UNITS];
    for (int d = 0; d < nd; d++) {
        for (int t = 0; t < QEIL_DT_COUNT; t++) dt_of[d][t] = effective_dtype(&pf->units[d], (qeil_dtype)t);
        e_scale[d] = qeil_dvfs_energy_scale(&pf->units[d], a->dvfs[d]);
    }
    double res[QEIL_MAX_POOLS] = {0}, scratch[QEIL_MAX_POOLS] = {0};
    for (uint32_t w = 0; w < n; w++) {
        int dp = a->pf_unit[w], dd = a->dc_unit[w];
        int pp = pf->units[dp].pool, pd = pf->units[dd].pool;
        const qeil_unit_work *uw = &wl->u[w];
        ev->powered[dp] = ev->powered[dd] = 1;
        if (dt_of[dp][wl->dtype[w]] < 0 || dt_of[dd][wl->dtype[w]] < 0) ev->infeas |= QEIL_INFEAS_DTYPE;
        res[pd] += uw->weight_res_B + a->batch * uw->kv_res_B;
        if (pp != pd) res[pp] += uw->weight_res_B + uw->pf_kv_write_B; /* prompt KV, then handed over */
        if (uw->scratch_B > scratch[pp]) scratch[pp] = uw->scratch_B;
    }
    /* a tied embedding/head matrix held in one pool is held once */
    if (wl->tied_B > 0) {
        for (int q = 0; q < pf->n_pools; q++) {
            int emb = pf->units[a->pf_unit[0]].pool == q || pf->units[a->dc_unit[0]].pool == q;
            int head = pf->units[a->pf_unit[n - 1]].pool == q || pf->units[a->dc_unit[n - 1]].pool == q;
            if (emb && head) res[q] -= wl->tied_B;
        }
    }
    double pen[QEIL_MAX_POOLS];
    for (int q = 0; q < pf->n_pools; q++) {
        double rho = (res[q] + scratch[q]) / pf->pools[q].capacity_B;
        ev->pool_rho[q] = rho;
        ev->pool_cpq[q] = qeil_cpq(res[q] + scratch[q], pf->pools[q].capacity_B);
        if (rho > pf->rho_max) ev->infeas |= QEIL_INFEAS_MEMORY;
        pen[q] = 1.0 + ep->cpq_penalty_coef * (isfinite(ev->pool_cpq[q]) ? ev->pool_cpq[q] : 1e9);
    }
    for (int d = 0; d < nd; d++)
        if (ev->powered[d] && !ep->healthy[d]) ev->infeas |= QEIL_INFEAS_HEALTH;
    if (ev->infeas & QEIL_INFEAS_DTYPE) {
        set_unreachable(ev);
        return QEIL_OK;
    }

    /* ---- prefill: each work unit once over the P-token prompt ---- */
    double e_dyn_pf[QEIL_MAX_UNITS] = {0}, e_dyn_dc[QEIL_MAX_UNITS] = {0};
    double useful_s = 0, t_pf = 0, t_xfer_pf = 0, e_link = 0;
    int nolink = 0;
    for (uint32_t w = 0; w < n; w++) {
        int d = a->pf_unit[w];
        const qeil_unit *u = &pf->units[d];
        const qeil_unit_work *uw = &wl->u[w];
        qeil_dtype dt = (qeil_dtype)dt_of[d][wl->dtype[w]];
        double q_B = uw->pf_weight_B + uw->pf_kv_write_B + uw->pf_kv_read_B + uw->pf_act_B;
        double p = pen[u->pool];
        double t = qeil_roofline_time_s(u, dt, a->dvfs[d], uw->pf_flops, q_B) * p;
        double dasi = qeil_dasi(u, dt, uw->pf_flops, q_B);
        ev->pf_time_s[w] = t;
        ev->pf_dasi[w] = dasi;
        ev->busy_s[d] += t;
        useful_s += t * dasi;
        t_pf += t;
        e_dyn_pf[d] += (uw->pf_flops * u->e_op_J[dt] * e_scale[d] + q_B * u->e_byte_J) * p;
        if (w > 0) {
            int pa = pf->units[a->pf_unit[w - 1]].pool, pb = u->pool;
            if (pa != pb && !transfer(pf, pa, pb, wl->u[w - 1].pf_out_B, 1, &t_xfer_pf, &e_link))
                nolink = 1;
        }
        /* the prompt's KV moves once to where the unit decodes */
        int pd = pf->units[a->dc_unit[w]].pool;
        if (pd != u->pool && !transfer(pf, u->pool, pd, uw->pf_kv_write_B, 1, &t_xfer_pf, &e_link))
            nolink = 1;
    }

    /* ---- decode: ceil(k/b) rounds of N steps; a step reads weights once
     * for the b sequences of its round ---- */
    const double k = wl->samples, b = a->batch, N = wl->gen_tokens;
    const double full = floor(k / b), rem = k - full * b;
    const double steps_full = N * full, steps_rem = rem > 0 ? N : 0;
    double t_dc = 0, t_xfer_dc = 0;
    for (uint32_t w = 0; w < n; w++) {
        int d = a->dc_unit[w];
        const qeil_unit *u = &pf->units[d];
        const qeil_unit_work *uw = &wl->u[w];
        qeil_dtype dt = (qeil_dtype)dt_of[d][wl->dtype[w]];
        double p = pen[u->pool];
        double per_seq_B = uw->dc_kv_read_B + uw->dc_kv_write_B + uw->dc_act_B;
        double f_b = b * uw->dc_flops, q_b = uw->dc_weight_B + b * per_seq_B;
        double t_b = qeil_roofline_time_s(u, dt, a->dvfs[d], f_b, q_b) * p;
        double t = steps_full * t_b, f_tot = steps_full * f_b, q_tot = steps_full * q_b;
        if (steps_rem > 0) {
            double f_r = rem * uw->dc_flops, q_r = uw->dc_weight_B + rem * per_seq_B;
            t += steps_rem * qeil_roofline_time_s(u, dt, a->dvfs[d], f_r, q_r) * p;
            f_tot += steps_rem * f_r;
            q_tot += steps_rem * q_r;
        }
        double dasi = qeil_dasi(u, dt, f_b, q_b);
        ev->dc_time_s[w] = t;
        ev->dc_dasi[w] = dasi;
        ev->busy_s[d] += t;
        useful_s += t * dasi;
        t_dc += t;
        e_dyn_dc[d] += (f_tot * u->e_op_J[dt] * e_scale[d] + q_tot * u->e_byte_J) * p;
        /* hidden state to the next unit, every step, for each sequence */
        if (w > 0) {
            int pa = pf->units[a->dc_unit[w - 1]].pool, pb = u->pool;
            if (pa != pb && !transfer(pf, pa, pb, k * N * wl->u[w - 1].dc_out_B,
                                      steps_full + steps_rem, &t_xfer_dc, &e_link))
                nolink = 1;
        }
    }
    /* the sampled token id (4 B per sequence) goes back to the embedding */
    {
        int ph = pf->units[a->dc_unit[n - 1]].pool, pe = pf->units[a->dc_unit[0]].pool;
        if (ph != pe && !transfer(pf, ph, pe, 4.0 * k * N, steps_full + steps_rem, &t_xfer_dc, &e_link))
            nolink = 1;
    }
    if (nolink) {
        ev->infeas |= QEIL_INFEAS_NOLINK;
        set_unreachable(ev);
        return QEIL_OK;
    }

    const double seg_pf = t_pf + t_xfer_pf, seg_dc = t_dc + t_xfer_dc;
    const double total = seg_pf + seg_dc;
    ev->prefill_s = t_pf;
    ev->decode_s = t_dc;
    ev->transfer_s = t_xfer_pf + t_xfer_dc;
    ev->latency_s = total;
    ev->energy_link_J = e_link;

    /* ---- thermal and static energy of each powered unit ----
     * Sustained serving: the unit starts at the steady state of this
     * request's average power (it has been serving such requests), then
     * runs the prefill and decode segments; the peak is what throttles. */
    double e_dyn = 0, e_static = 0, powered_s = 0, peak = -INFINITY;
    const double limit_C = ep->throttle_frac;
    for (int d = 0; d < nd; d++) {
        if (!ev->powered[d]) continue;
        const qeil_unit *u = &pf->units[d];
        int k_d = a->dvfs[d];
        double dyn = e_dyn_pf[d] + e_dyn_dc[d];
        double p_avg = (total > 0 ? dyn / total : 0) + u->p_const_W;
        double t_start, leak0, t_peak = -INFINITY, leak_pf = 0, leak_dc = 0, pk;
        if (qeil_thermal_steady(u, k_d, p_avg, &t_start, &leak0) != QEIL_OK) {
            ev->infeas |= QEIL_INFEAS_THERMAL;
            t_peak = INFINITY;
            leak_pf = leak_dc = INFINITY;
        } else {
            double p_pf = (seg_pf > 0 ? e_dyn_pf[d] / seg_pf : 0) + u->p_const_W;
            double p_dc = (seg_dc > 0 ? e_dyn_dc[d] / seg_dc : 0) + u->p_const_W;
            double t_mid = qeil_energy_thermal_integrate(u, k_d, t_start, p_pf, seg_pf, &pk, &leak_pf);
            t_peak = pk;
            qeil_energy_thermal_integrate(u, k_d, t_mid, p_dc, seg_dc, &pk, &leak_dc);
            if (pk > t_peak) t_peak = pk;
        }
        double leak = leak_pf + leak_dc;
        double stat = u->p_const_W * total + leak;
        ev->dev_temp_C[d] = t_peak;
        ev->dev_phi[d] = qeil_phi(dyn, leak);
        ev->dev_energy_J[d] = dyn + stat;
        if (t_peak > limit_C * u->t_max_C) ev->infeas |= QEIL_INFEAS_THERMAL;
        if (t_peak > peak) peak = t_peak;
        e_dyn += dyn;
        e_static += stat;
        powered_s += total;
    }
    ev->energy_dyn_J = e_dyn;
    ev->energy_static_J = e_static;
    ev->energy_J = e_dyn + e_static + e_link;
    ev->peak_temp_C = peak;
    ev->avg_power_W = total > 0 ? ev->energy_J / total : 0;
    /* powered capacity-time not doing useful work (idle or starved) */
    ev->underutil = powered_s > 0 ? 1.0 - useful_s / powered_s : 0;
    if (ev->underutil < 0) ev->underutil = 0; /* rounding only: useful ≤ powered */
    ev->feasible = ev->infeas == 0;
    return QEIL_OK;
}
