/* calib.c — fitting a unit's η_c, η_m, overheads and attention costs to measured
 * phase times (include/qeil/energy.h, docs/energy-model.md §10). */
#include <math.h>
#include <string.h>

#include "qeil/energy.h"
#include "core/util.h"

#define CALIB_MAX_POINTS 4096u
#define CALIB_ROUNDS 40  /* classing and reweighting rounds at most */
#define CALIB_L1_FLOOR 0.005 /* relative residual below which a point's weight stops growing */

/* Compute and memory time of work unit w at η = 1 (s): F/Π_t, Q/B; the
 * phase's steps and the unit's dispatches over them. */
static void unit_times(const qeil_unit *u, const qeil_workload *wl, uint32_t w, int phase,
                       double *tc, double *tm, double *steps, double *ops, double *attn)
{
    const qeil_unit_work *uw = &wl->u[w];
    double F, Q;
    if (phase == 0) {
        F = uw->pf_flops;
        Q = uw->pf_weight_B + uw->pf_kv_write_B + uw->pf_kv_read_B + uw->pf_act_B;
        *steps = 1;
        *attn = uw->pf_attn_flops;
    } else {
        double N = wl->gen_tokens;
        F = N * uw->dc_flops;
        Q = N * (uw->dc_weight_B + uw->dc_kv_read_B + uw->dc_kv_write_B + uw->dc_act_B);
        *steps = N;
        *attn = N * uw->dc_attn_flops;
    }
    *ops = *steps * uw->ops;
    qeil_unit one = *u;
    one.eta_compute = 1;
    one.eta_mem = 1;
    *tc = F > 0 ? qeil_roofline_time_s(&one, wl->dtype[w], one.dvfs_nominal, F, 0) : 0;
    *tm = Q > 0 ? Q / u->mem_bw_Bps : 0;
}

/* The model's time of point p under x (with the roofline's max). */
static double model_time(const qeil_unit *u, const qeil_calib_point *p, const double *x);

/* The work units point p covers: [*lo, *hi). */
static void point_units(const qeil_calib_point *p, uint32_t *lo, uint32_t *hi)
{
    *lo = p->w_count ? p->w_first : 0;
    *hi = p->w_count ? p->w_first + p->w_count : p->wl->n_units;
}

#define NX 6 /* unknowns: 1/η_c, 1/η_m, step_s, op_s, attn_pf_flop_s, attn_dc_flop_s */

/* Solve the k×k system A x = b (k <= NX) by Gaussian elimination with
 * partial pivoting; 0 on success, -1 when singular. */
static int solve(double A[NX][NX], double b[NX], int k, double x[NX])
{
    for (int c = 0; c < k; c++) {
        int p = c;
        for (int r = c + 1; r < k; r++)
            if (fabs(A[r][c]) > fabs(A[p][c])) p = r;
        if (!(fabs(A[p][c]) > 1e-300)) return -1;
        if (p != c) {
            for (int j = 0; j < k; j++) {
                double t = A[c][j];
                A[c][j] = A[p][j];
                A[p][j] = t;
            }
            double t = b[c];
            b[c] = b[p];
            b[p] = t;
        }
        for (int r = c + 1; r < k; r++) {
            double f = A[r][c] / A[c][c];
            for (int j = c; j < k; j++) A[r][j] -= f * A[c][j];
            b[r] -= f * b[c];
        }
    }
    for (int r = k - 1; r >= 0; r--) {
        double s = b[r];
        for (int j = r + 1; j < k; j++) s -= A[r][j] * x[j];
        x[r] = s / A[r][r];
    }
    for (int r = 0; r < k; r++)
        if (!isfinite(x[r])) return -1;
    return 0;
}

qeil_status qeil_calib_fit_unit(const qeil_unit *u, const qeil_calib_point *pts, size_t n,
                                qeil_calib_fit *out)
{
    if (!u || !pts || !out || n < 1 || n > CALIB_MAX_POINTS) return QEIL_ERR_INVALID;
    for (size_t i = 0; i < n; i++) {
        const qeil_calib_point *p = &pts[i];
        if (!p->wl || p->wl->samples != 1 || !(p->t_s > 0) || !isfinite(p->t_s) ||
            (p->phase != 0 && p->phase != 1) || p->wl->n_units > QEIL_MAX_WUNITS ||
            (p->w_count && ((uint64_t)p->w_first + p->w_count > p->wl->n_units)))
            return QEIL_ERR_INVALID;
    }
    memset(out, 0, sizeof *out);
    /* the overheads only count when the data asks for them: a unit whose
     * points name no dispatches (ops 0, workloads from before `ops`) keeps
     * op_s at its prior */
    double x[NX] = {1.0 / u->eta_compute, 1.0 / u->eta_mem, u->step_s,
                    u->op_s, u->attn_pf_flop_s, u->attn_dc_flop_s};
    uint64_t cls_prev_hash = 0; /* FNV-1a of the classing: stop when it repeats */
    for (int round = 0; round < CALIB_ROUNDS; round++) {
        double x_prev[NX];
        memcpy(x_prev, x, sizeof x_prev);
        /* features of each point under the current classing: t ≈ a·x */
        double A[NX][NX] = {{0}}, b[NX] = {0};
        int used[NX] = {0};
        uint64_t hash = QEIL_FNV1A_BASIS;
        double feat[NX];
        for (size_t i = 0; i < n; i++) {
            const qeil_workload *wl = pts[i].wl;
            uint32_t lo, hi;
            point_units(&pts[i], &lo, &hi);
            memset(feat, 0, sizeof feat);
            for (uint32_t w = lo; w < hi; w++) {
                double tc, tm, st, op, at;
                unit_times(u, wl, w, pts[i].phase, &tc, &tm, &st, &op, &at);
                /* first round: the phase's textbook regime (prefill compute-,
                 * decode memory-bound), so a prior far off cannot pin the
                 * classing; then whichever bound the current fit says */
                int mem = round == 0 ? pts[i].phase == 1 : tm * x[1] >= tc * x[0];
                if (mem ? tm <= 0 : tc <= 0) mem = !mem;
                hash = qeil_fnv1a_step(hash, (unsigned char)mem);
                feat[mem ? 1 : 0] += mem ? tm : tc;
                feat[2] += st;
                feat[3] += op;
                feat[pts[i].phase == 0 ? 4 : 5] += at;
            }
            /* relative error: each row divided by the measured time; from
             * the second round on, least absolute deviations by iterative
             * reweighting (each row's square weighted 1/|its last relative
             * residual|, floored): one point a burst of load slowed pulls
             * the fit far less than under least squares */
            double wgt = 1.0 / pts[i].t_s;
            if (round > 0) {
                double e = fabs(model_time(u, &pts[i], x) / pts[i].t_s - 1);
                wgt /= sqrt(e > CALIB_L1_FLOOR ? e : CALIB_L1_FLOOR);
            }
            for (int r = 0; r < NX; r++) {
                if (feat[r] > 0) used[r] = 1;
                for (int c = 0; c < NX; c++) A[r][c] += feat[r] * feat[c] * wgt * wgt;
                b[r] += feat[r] * pts[i].t_s * wgt * wgt;
            }
        }
        /* drop unconstrained unknowns: they keep their prior. An unknown
         * the solve drives out of its domain (1/η <= 0, a negative
         * overhead) is one the data cannot separate from the others (a
         * tiny model's decode is all overhead): it is pinned (η at its
         * prior, an overhead at 0) and the rest solved again. */
        const double prior[NX] = {1.0 / u->eta_compute, 1.0 / u->eta_mem, 0, 0, 0, 0};
        int pinned[NX] = {0};
        for (;;) {
            int idx[NX], k = 0;
            for (int r = 0; r < NX; r++)
                if (used[r] && !pinned[r]) idx[k++] = r;
            if (k == 0) return QEIL_ERR_RANGE;
            double As[NX][NX], bs[NX], xs[NX];
            for (int r = 0; r < k; r++) {
                bs[r] = b[idx[r]];
                for (int c = 0; c < k; c++) As[r][c] = A[idx[r]][idx[c]];
                /* the fixed unknowns' contribution moves to the right side */
                for (int f = 0; f < NX; f++)
                    if (!used[f] || pinned[f]) bs[r] -= A[idx[r]][f] * x[f];
            }
            if (solve(As, bs, k, xs) != 0) return QEIL_ERR_RANGE;
            /* the worst offender first: the most negative overhead, else
             * a non-positive 1/η */
            int bad = -1;
            for (int r = 0; r < k; r++) {
                int out_of_domain = idx[r] >= 2 ? xs[r] < 0 : !(xs[r] > 0);
                if (out_of_domain && (bad < 0 || idx[r] >= 2)) bad = idx[r];
            }
            if (bad < 0) {
                for (int r = 0; r < k; r++) x[idx[r]] = xs[r];
                break;
            }
            pinned[bad] = 1;
            x[bad] = prior[bad];
        }
        out->fit_compute = used[0] && !pinned[0];
        out->fit_mem = used[1] && !pinned[1];
        out->fit_step = used[2];
        out->fit_op = used[3];
        out->fit_attn_pf = used[4];
        out->fit_attn_dc = used[5];
        /* done when the classing repeats and the reweighting has settled */
        double moved = 0;
        for (int r = 0; r < NX; r++) {
            double d = fabs(x[r] - x_prev[r]) / (fabs(x[r]) > 1e-300 ? fabs(x[r]) : 1);
            if (d > moved) moved = d;
        }
        if (round > 0 && hash == cls_prev_hash && moved < 1e-4) break;
        cls_prev_hash = hash;
    }
    out->eta_compute = 1.0 / x[0];
    out->eta_mem = 1.0 / x[1];
    out->step_s = x[2];
    out->op_s = x[3];
    out->attn_pf_flop_s = x[4];
    out->attn_dc_flop_s = x[5];
    /* the fit's own error, with the max() of the roofline */
    double ss = 0;
    for (size_t i = 0; i < n; i++) {
        double e = (model_time(u, &pts[i], x) - pts[i].t_s) / pts[i].t_s;
        ss += e * e;
    }
    out->rms_rel_error = sqrt(ss / (double)n);
    return QEIL_OK;
}

static double model_time(const qeil_unit *u, const qeil_calib_point *p, const double *x)
{
    uint32_t lo, hi;
    point_units(p, &lo, &hi);
    double t = 0;
    for (uint32_t w = lo; w < hi; w++) {
        double tc, tm, st, op, at;
        unit_times(u, p->wl, w, p->phase, &tc, &tm, &st, &op, &at);
        double a = tc * x[0], m = tm * x[1];
        t += (a > m ? a : m) + st * x[2] + op * x[3] + at * x[p->phase == 0 ? 4 : 5];
    }
    return t;
}
