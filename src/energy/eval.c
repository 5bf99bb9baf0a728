/* eval.c — the unified energy equation applied to a whole assignment:
 *
 *   E = Σ_w (F_w ε_op,d (V_k/V_nom)² + Q_w ε_byte,d)(1 + c·CPQ_pool)   dynamic
 *     + Σ_d powered (P_const,d · T_req + ∫ P_leak,d(T_d(t)) dt)        static
 *     + Σ_links bytes · ε_link                                         links
 *
 * with times from the roofline, CPQ from the resident bytes of each pool and
 * temperatures from the thermal RC model started at the leakage fixed point.
 * Runs inside the annealing loop (~10^5 calls per plan search): nothing is
 * allocated, per-device constants are computed once per call, and the only
 * transcendental calls are in the thermal part (a few per powered unit).
 * docs/energy-model.md states every term, unit and assumption; the section
 * numbers below (§) refer to it. */
#include "energy_internal.h"

#include <math.h>
#include <string.h>

/* Bytes of the sampled token id sent back to the embedding each decode step,
 * per sequence: one int32 (llama.cpp's llama_token). */
#define TOKEN_ID_B 4.0

qeil_energy_params qeil_energy_default_params(void)
{
    qeil_energy_params p;
    memset(&p, 0, sizeof p);
    /* 0.05: at ρ = 0.5 (CPQ 1) work on the pool slows by 5 %, at ρ = 0.8
     * (CPQ 4) by 20 %, at ρ = 0.9 (CPQ 9) by 45 % — the order of the
     * allocator/TLB/page-cache slowdowns reported for nearly full unified
     * memory. A prior until measured: docs/energy-model.md §3. */
    p.cpq_penalty_coef = 0.05;
    /* Plan for junctions at most 85 % of T_max (°C): the margin the
     * planner keeps so model error never turns into throttling (§4). */
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
    for (int u = 0; u < pf->n_units && u < QEIL_MAX_UNITS; u++)
        a->dvfs[u] = (uint8_t)pf->units[u].dvfs_nominal;
    a->batch = (uint16_t)batch;
}

/* ------------------------------------------------------------------------ */
/* Validation                                                                */
/* ------------------------------------------------------------------------ */

/* Only what would make the evaluation read out of bounds or divide by a
 * count of zero; the platform's physics ranges are qeil_platform_validate's
 * job and the workload's qeil_workload_build's. */
static qeil_status check_inputs(const qeil_platform *pf, const qeil_workload *wl,
                                const qeil_assignment *a)
{
    if (pf->n_units < 1 || pf->n_units > QEIL_MAX_UNITS || pf->n_pools < 1 ||
        pf->n_pools > QEIL_MAX_POOLS || pf->n_links < 0 || pf->n_links > QEIL_MAX_LINKS)
        return QEIL_ERR_INVALID;
    for (int d = 0; d < pf->n_units; d++) {
        const qeil_unit *u = &pf->units[d];
        if (u->pool < 0 || u->pool >= pf->n_pools || u->n_dvfs < 1 || u->n_dvfs > QEIL_MAX_DVFS ||
            u->dvfs_nominal < 0 || u->dvfs_nominal >= u->n_dvfs)
            return QEIL_ERR_INVALID;
        if (a->dvfs[d] >= u->n_dvfs) return QEIL_ERR_INVALID;
    }
    for (int l = 0; l < pf->n_links; l++) {
        const qeil_link *lk = &pf->links[l];
        if (lk->pool_a < 0 || lk->pool_a >= pf->n_pools || lk->pool_b < 0 ||
            lk->pool_b >= pf->n_pools)
            return QEIL_ERR_INVALID;
    }
    if (wl->n_units < 1 || wl->n_units > QEIL_MAX_WUNITS || wl->samples < 1) return QEIL_ERR_INVALID;
    for (uint32_t w = 0; w < wl->n_units; w++) {
        if (a->pf_unit[w] >= pf->n_units || a->dc_unit[w] >= pf->n_units) return QEIL_ERR_INVALID;
        if ((unsigned)wl->dtype[w] >= QEIL_DT_COUNT) return QEIL_ERR_INVALID;
    }
    if (a->batch < 1 || a->batch > wl->samples) return QEIL_ERR_INVALID;
    return QEIL_OK;
}

/* ------------------------------------------------------------------------ */
/* Per-device constants at the assignment's operating points                 */
/* ------------------------------------------------------------------------ */

typedef struct {
    int ok[QEIL_DT_COUNT];          /* the work's type (or a wider one) is supported */
    double inv_c[QEIL_DT_COUNT];    /* s per FLOP: 1 / (Π_t η_c f_k/f_nom), t = effective type */
    double ridge[QEIL_DT_COUNT];    /* I*_k = Π_t (f_k/f_nom) / B, FLOP/B */
    double e_op[QEIL_DT_COUNT];     /* J per FLOP: ε_op,t (V_k/V_nom)² */
    double inv_m;                   /* s per byte: 1 / (B η_m) */
    double eta_c;
    double e_byte;
} dev_consts;

/* The type a unit actually computes in (§1.2): the work's type if
 * supported, else the next wider one (int4 → int8 → f16 → f32: weights are
 * dequantized upward, bytes stay those of the stored weights); -1 if none. */
static int effective_dtype(const qeil_unit *u, int dt)
{
    static const int wider[QEIL_DT_COUNT] = {
        [QEIL_DT_INT4] = QEIL_DT_INT8, [QEIL_DT_INT8] = QEIL_DT_F16,
        [QEIL_DT_F16] = QEIL_DT_F32, [QEIL_DT_F32] = -1};
    for (int t = dt; t >= 0; t = wider[t])
        if (u->peak_ops[t] > 0) return t;
    return -1;
}

static void dev_consts_init(dev_consts *c, const qeil_unit *u, int dvfs)
{
    double f_scale = u->dvfs[dvfs].freq_Hz / u->dvfs[u->dvfs_nominal].freq_Hz;
    double e_scale = qeil_dvfs_energy_scale(u, dvfs);
    for (int t = 0; t < QEIL_DT_COUNT; t++) {
        int e = effective_dtype(u, t);
        c->ok[t] = e >= 0;
        if (e < 0) {
            c->inv_c[t] = INFINITY;
            c->ridge[t] = INFINITY;
            c->e_op[t] = 0;
            continue;
        }
        double peak_k = u->peak_ops[e] * f_scale;
        c->inv_c[t] = 1.0 / (peak_k * u->eta_compute);
        c->ridge[t] = peak_k / u->mem_bw_Bps;
        c->e_op[t] = u->e_op_J[e] * e_scale;
    }
    c->inv_m = 1.0 / (u->mem_bw_Bps * u->eta_mem);
    c->eta_c = u->eta_compute;
    c->e_byte = u->e_byte_J;
}

/* Roofline time (§1.1) without the CPQ penalty. */
static double roof_s(const dev_consts *c, int dt, double flops, double bytes)
{
    double t_c = flops > 0 ? flops * c->inv_c[dt] : 0;
    double t_m = bytes > 0 ? bytes * c->inv_m : 0;
    return t_c > t_m ? t_c : t_m;
}

/* Dispatch overhead of one forward step of work unit uw on unit u (§1.8):
 * the per-step cost plus the per-call cost times the unit's calls. */
static double step_overhead_s(const qeil_unit *u, const qeil_unit_work *uw)
{
    return u->step_s + uw->ops * u->op_s;
}

/* DASI at the operating point (§2): η_c min(1, I / I*_k). Equals qeil_dasi
 * at the nominal point. */
static double dasi_k(const dev_consts *c, int dt, double flops, double bytes)
{
    if (flops <= 0) return 0;
    if (bytes <= 0) return c->eta_c;
    double i = flops / bytes;
    return c->eta_c * (i < c->ridge[dt] ? i / c->ridge[dt] : 1.0);
}

/* ------------------------------------------------------------------------ */
/* Links                                                                     */
/* ------------------------------------------------------------------------ */

typedef struct {
    signed char of[QEIL_MAX_POOLS][QEIL_MAX_POOLS]; /* link index joining two pools, -1 none */
    double bytes[2][QEIL_MAX_LINKS];                /* [phase][link] bytes carried */
    double n_xfer[2][QEIL_MAX_LINKS];               /* [phase][link] transfers (each pays latency) */
    int missing;                                    /* transfers that needed a link that is not there */
} link_acc;

static void link_acc_init(link_acc *la, const qeil_platform *pf)
{
    memset(la, 0, sizeof *la);
    memset(la->of, -1, sizeof la->of);
    /* the first link listed between two pools is the one used, as
     * qeil_platform_link does */
    for (int l = pf->n_links - 1; l >= 0; l--) {
        int x = pf->links[l].pool_a, y = pf->links[l].pool_b;
        la->of[x][y] = la->of[y][x] = (signed char)l;
    }
}

/* n_xfer transfers carrying `bytes` in all from pool pa to pool pb. */
static void link_add(link_acc *la, int phase, int pa, int pb, double bytes, double n_xfer)
{
    if (pa == pb) return;
    int l = la->of[pa][pb];
    if (l < 0) {
        la->missing++;
        return;
    }
    la->bytes[phase][l] += bytes;
    la->n_xfer[phase][l] += n_xfer;
}

/* ------------------------------------------------------------------------ */
/* Evaluation                                                                */
/* ------------------------------------------------------------------------ */

/* Objectives of a plan that cannot run at all (a pool over capacity, an
 * unsupported type, a missing link): infinite, so no comparison prefers it. */
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
    if (!pf || !wl || !a || !ep || !ev) return QEIL_ERR_INVALID;
    qeil_status st = check_inputs(pf, wl, a);
    if (st != QEIL_OK) return st;
    memset(ev, 0, sizeof *ev);
    const uint32_t n = wl->n_units;
    const int nd = pf->n_units, np = pf->n_pools;

    /* ---- powered units, data types, health ---- */
    for (uint32_t w = 0; w < n; w++) ev->powered[a->pf_unit[w]] = ev->powered[a->dc_unit[w]] = 1;
    dev_consts dc[QEIL_MAX_UNITS];
    for (int d = 0; d < nd; d++) {
        if (!ev->powered[d]) continue;
        dev_consts_init(&dc[d], &pf->units[d], a->dvfs[d]);
        if (!ep->healthy[d]) ev->infeas |= QEIL_INFEAS_HEALTH;
    }
    for (uint32_t w = 0; w < n; w++) {
        const uint8_t at[2] = {a->pf_unit[w], a->dc_unit[w]};
        for (int ph = 0; ph < 2; ph++) {
            if (!ep->healthy[at[ph]]) ev->n_violations++;
            if (!dc[at[ph]].ok[wl->dtype[w]]) {
                ev->infeas |= QEIL_INFEAS_DTYPE;
                ev->n_violations++;
            }
        }
    }

    /* ---- resident bytes, ρ and CPQ per pool (§3) ---- */
    const double b = a->batch;
    double res[QEIL_MAX_POOLS] = {0}, scratch[QEIL_MAX_POOLS] = {0};
    for (uint32_t w = 0; w < n; w++) {
        const qeil_unit_work *uw = &wl->u[w];
        int pp = pf->units[a->pf_unit[w]].pool, pd = pf->units[a->dc_unit[w]].pool;
        /* weights once per pool where the unit runs; b sequences' KV where
         * it decodes */
        res[pd] += uw->weight_res_B + b * uw->kv_res_B;
        /* prefilled elsewhere: weights there too, and the prompt's KV until
         * it is handed over (only the P prompt tokens exist at that point) */
        if (pp != pd) res[pp] += uw->weight_res_B + uw->pf_kv_write_B;
        /* prefill runs one unit at a time: the largest scratch is the peak */
        if (uw->scratch_B > scratch[pp]) scratch[pp] = uw->scratch_B;
    }
    /* a tied embedding/head matrix held in one pool is held once */
    if (wl->tied_B > 0 && n >= 2) {
        for (int q = 0; q < np; q++) {
            int emb = pf->units[a->pf_unit[0]].pool == q || pf->units[a->dc_unit[0]].pool == q;
            int head = pf->units[a->pf_unit[n - 1]].pool == q || pf->units[a->dc_unit[n - 1]].pool == q;
            if (emb && head) res[q] -= wl->tied_B;
        }
    }
    double pen[QEIL_MAX_POOLS];
    int overfull = 0;
    for (int q = 0; q < np; q++) {
        double used = res[q] + scratch[q];
        ev->pool_rho[q] = used / pf->pools[q].capacity_B;
        ev->pool_cpq[q] = qeil_cpq(used, pf->pools[q].capacity_B);
        if (ev->pool_rho[q] > pf->rho_max) ev->infeas |= QEIL_INFEAS_MEMORY;
        if (!isfinite(ev->pool_cpq[q])) overfull = 1;
        pen[q] = 1.0 + ep->cpq_penalty_coef * ev->pool_cpq[q];
    }
    if (overfull || (ev->infeas & QEIL_INFEAS_DTYPE)) {
        set_unreachable(ev);
        return QEIL_OK;
    }

    link_acc la;
    link_acc_init(&la, pf);

    /* ---- prefill: each work unit once over the P-token prompt (§1.3) ---- */
    double e_dyn_pf[QEIL_MAX_UNITS] = {0}, e_dyn_dc[QEIL_MAX_UNITS] = {0};
    double useful_s = 0, t_pf = 0;
    for (uint32_t w = 0; w < n; w++) {
        int d = a->pf_unit[w], dt = wl->dtype[w];
        int q = pf->units[d].pool;
        const dev_consts *c = &dc[d];
        const qeil_unit_work *uw = &wl->u[w];
        double F = uw->pf_flops;
        double Q = uw->pf_weight_B + uw->pf_kv_write_B + uw->pf_kv_read_B + uw->pf_act_B;
        double t0 = roof_s(c, dt, F, Q), dasi = dasi_k(c, dt, F, Q);
        /* + one step's dispatch overhead (§1.8): not memory pressure, no penalty */
        double t = t0 * pen[q] + step_overhead_s(&pf->units[d], uw) +
                   uw->pf_attn_flops * pf->units[d].attn_pf_flop_s; /* §1.9 */
        ev->pf_time_s[w] = t;
        ev->pf_dasi[w] = dasi;
        ev->busy_s[d] += t;
        useful_s += t0 * dasi; /* CPQ stalls count as starved capacity */
        t_pf += t;
        e_dyn_pf[d] += (F * c->e_op[dt] + Q * c->e_byte) * pen[q];
        /* hand the prompt's activations to the next unit */
        if (w > 0) link_add(&la, 0, pf->units[a->pf_unit[w - 1]].pool, q, wl->u[w - 1].pf_out_B, 1);
        /* the prompt's KV moves once to where the unit decodes */
        link_add(&la, 0, q, pf->units[a->dc_unit[w]].pool, uw->pf_kv_write_B, 1);
    }

    /* ---- decode (§1.4): R = ceil(k/b) rounds of N steps; `full` rounds of b
     * sequences and, when b does not divide k, one round of rem. A step
     * reads the unit's weights once for the whole round. ---- */
    const double k = wl->samples, N = wl->gen_tokens;
    const double full = floor(k / b), rem = k - full * b;
    const double steps = N * (full + (rem > 0 ? 1 : 0)); /* R·N */
    double t_dc = 0;
    for (uint32_t w = 0; w < n; w++) {
        int d = a->dc_unit[w], dt = wl->dtype[w];
        int q = pf->units[d].pool;
        const dev_consts *c = &dc[d];
        const qeil_unit_work *uw = &wl->u[w];
        double per_seq_B = uw->dc_kv_read_B + uw->dc_kv_write_B + uw->dc_act_B;
        double f_b = b * uw->dc_flops, q_b = uw->dc_weight_B + b * per_seq_B;
        double t_b = roof_s(c, dt, f_b, q_b);
        double t0 = N * full * t_b, use = t0 * dasi_k(c, dt, f_b, q_b);
        double f_tot = N * full * f_b, q_tot = N * full * q_b;
        if (rem > 0) {
            double f_r = rem * uw->dc_flops, q_r = uw->dc_weight_B + rem * per_seq_B;
            double t_r = N * roof_s(c, dt, f_r, q_r);
            t0 += t_r;
            use += t_r * dasi_k(c, dt, f_r, q_r);
            f_tot += N * f_r;
            q_tot += N * q_r;
        }
        double t = t0 * pen[q] + steps * step_overhead_s(&pf->units[d], uw) /* §1.8 */
                   + k * N * uw->dc_attn_flops * pf->units[d].attn_dc_flop_s; /* §1.9: every sequence */
        ev->dc_time_s[w] = t;
        ev->dc_dasi[w] = t0 > 0 ? use / t0 : 0; /* time-weighted over the rounds */
        ev->busy_s[d] += t;
        useful_s += use;
        t_dc += t;
        e_dyn_dc[d] += (f_tot * c->e_op[dt] + q_tot * c->e_byte) * pen[q];
        /* hidden state to the next unit: b_r·dc_out_B each step, so
         * k·N·dc_out_B over the R·N steps */
        if (w > 0)
            link_add(&la, 1, pf->units[a->dc_unit[w - 1]].pool, q, k * N * wl->u[w - 1].dc_out_B, steps);
    }
    /* the sampled token id of each sequence goes back to the embedding */
    link_add(&la, 1, pf->units[a->dc_unit[n - 1]].pool, pf->units[a->dc_unit[0]].pool,
             TOKEN_ID_B * k * N, steps);
    if (la.missing) {
        ev->n_violations += (uint32_t)la.missing;
        ev->infeas |= QEIL_INFEAS_NOLINK;
        set_unreachable(ev);
        return QEIL_OK;
    }

    /* ---- link time and energy (§1.5) ---- */
    double t_x[2] = {0, 0}, e_link = 0;
    for (int l = 0; l < pf->n_links; l++) {
        const qeil_link *lk = &pf->links[l];
        for (int ph = 0; ph < 2; ph++) {
            if (la.n_xfer[ph][l] <= 0) continue;
            t_x[ph] += la.n_xfer[ph][l] * lk->latency_s + la.bytes[ph][l] / lk->bw_Bps;
            e_link += la.bytes[ph][l] * lk->e_byte_J;
        }
    }

    /* ---- latency: one request runs its units one after another (§1.6) ---- */
    const double seg_pf = t_pf + t_x[0], seg_dc = t_dc + t_x[1];
    const double total = seg_pf + seg_dc;
    ev->prefill_s = t_pf;
    ev->decode_s = t_dc;
    ev->transfer_s = t_x[0] + t_x[1];
    ev->latency_s = total;
    ev->energy_link_J = e_link;

    /* ---- thermal and static energy of each powered unit (§4, §5) ----
     * Sustained serving: the unit starts at the steady state of this
     * request's average power (it has been serving such requests back to
     * back), then runs the prefill segment and the decode segment, each at
     * its average power; the peak decides throttling. */
    double e_dyn = 0, e_static = 0, powered_s = 0, peak = -INFINITY;
    for (int d = 0; d < nd; d++) {
        if (!ev->powered[d]) continue;
        const qeil_unit *u = &pf->units[d];
        int kd = a->dvfs[d];
        double dyn = e_dyn_pf[d] + e_dyn_dc[d];
        double p_avg = (total > 0 ? dyn / total : 0) + u->p_const_W;
        double t_start, leak_start, t_peak, leak_pf = 0, leak_dc = 0, pk;
        if (qeil_thermal_steady(u, kd, p_avg, &t_start, &leak_start) != QEIL_OK)
            ev->infeas |= QEIL_INFEAS_THERMAL; /* runaway, or a fixed point above T_max */
        if (isfinite(t_start)) {
            double p_pf = (seg_pf > 0 ? e_dyn_pf[d] / seg_pf : 0) + u->p_const_W;
            double p_dc = (seg_dc > 0 ? e_dyn_dc[d] / seg_dc : 0) + u->p_const_W;
            double t_mid = qeil_energy_thermal_integrate(u, kd, t_start, p_pf, seg_pf, &pk, &leak_pf);
            t_peak = pk;
            qeil_energy_thermal_integrate(u, kd, t_mid, p_dc, seg_dc, &pk, &leak_dc);
            if (pk > t_peak) t_peak = pk;
        } else {
            t_peak = leak_pf = INFINITY;
        }
        double leak = leak_pf + leak_dc;
        double stat = u->p_const_W * total + leak;
        ev->dev_temp_C[d] = t_peak;
        ev->dev_phi[d] = qeil_phi(dyn, leak);
        ev->dev_energy_J[d] = dyn + stat;
        if (!(t_peak <= ep->throttle_frac * u->t_max_C)) ev->infeas |= QEIL_INFEAS_THERMAL;
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
    /* §6: powered capacity-time not doing useful work (idle or starved) */
    ev->underutil = powered_s > 0 ? 1.0 - useful_s / powered_s : 0;
    if (ev->underutil < 0) ev->underutil = 0; /* rounding only: useful ≤ powered */
    ev->feasible = ev->infeas == 0;
    return QEIL_OK;
}
