/* metrics.c — pass@k (the unbiased estimator), accuracy, samples and tokens
 * per problem, energy per problem, average power, IPW and ECE, with the
 * provenance of the energy figures carried through. Definitions with units:
 * docs/selection.md, "Metrics". */
#include "qeil/select.h"

#include <math.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* pass@k                                                                    */
/* ------------------------------------------------------------------------ */

/* Chen et al. (2021), eq. 1: pass@k = E[1 − C(n−c, k) / C(n, k)]. The ratio
 * of binomials telescopes to Π_{i=n−c+1..n} (1 − k/i) — c factors, each in
 * (0, 1), so nothing overflows (C(200, 100) ≈ 9e58 and larger binomials
 * would overflow or lose precision). When n − c < k every k-subset holds
 * a correct sample and the value is exactly 1. */
qeil_status qeil_metrics_pass_at_k(qeil_ctx *ctx, uint32_t n, uint32_t c, uint32_t k, double *out)
{
    if (!out) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "pass_at_k: out is NULL");
    *out = 0.0;
    if (n < 1) return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "pass@k n: %u is outside 1..%u", n, UINT32_MAX);
    if (c > n) return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "pass@k c: %u is outside 0..%u (n)", c, n);
    if (k < 1 || k > n)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "pass@k k: %u is outside 1..%u (n)", k, n);
    if (n - c < k) {
        *out = 1.0;
        return QEIL_OK;
    }
    /* the product as a sum of logs: 1 − Π(1 − k/i) = −expm1(Σ log1p(−k/i)),
     * which keeps full relative precision when the result is tiny (n =
     * 10^5, c = 1, k = 1 gives 1e-5 to the last bit, where 1 − 0.99999
     * would lose 5 digits) */
    double lsum = 0.0;
    for (uint32_t i = n - c + 1; i <= n && i != 0; i++) lsum += log1p(-(double)k / (double)i);
    *out = -expm1(lsum);
    return QEIL_OK;
}

qeil_status qeil_metrics_pass_at_k_mean(qeil_ctx *ctx, const uint32_t *n, const uint32_t *c,
                                        size_t n_problems, uint32_t k, double *out)
{
    if (!out || (n_problems && (!n || !c)))
        return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "pass_at_k_mean: NULL argument");
    *out = 0.0;
    if (n_problems == 0)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "pass@k: no problems (need at least 1)");
    double sum = 0.0;
    for (size_t i = 0; i < n_problems; i++) {
        if (n[i] < k)
            return qeil_ctx_fail(ctx, QEIL_ERR_RANGE,
                                 "pass@%u: problem %zu has n = %u samples (need >= %u)", k, i, n[i], k);
        double v;
        qeil_status st = qeil_metrics_pass_at_k(ctx, n[i], c[i], k, &v);
        if (st != QEIL_OK) return st;
        sum += v;
    }
    *out = sum / (double)n_problems;
    return QEIL_OK;
}

/* ------------------------------------------------------------------------ */
/* Aggregates                                                                */
/* ------------------------------------------------------------------------ */

const char *qeil_provenance_name(qeil_provenance p)
{
    switch (p) {
    case QEIL_PROV_MEASURED: return "measured";
    case QEIL_PROV_MEASURED_TIME_MODELED_POWER: return "measured-time\xC3\x97modeled-power";
    case QEIL_PROV_MODELED: return "modeled";
    }
    return "?";
}

void qeil_metrics_init(qeil_metrics_acc *acc)
{
    if (!acc) return;
    memset(acc, 0, sizeof *acc);
    acc->energy_src = QEIL_PROV_MEASURED; /* weakened by every add */
}

qeil_status qeil_metrics_add(qeil_ctx *ctx, qeil_metrics_acc *acc, const qeil_problem_record *r)
{
    if (!acc || !r) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "metrics_add: NULL argument");
    if (r->correct != 0 && r->correct != 1)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "correct: %d is outside 0..1", r->correct);
    if (r->n_samples < 1)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "n_samples: %u is outside 1..%u", r->n_samples,
                             UINT32_MAX);
    if (!(r->energy_J >= 0.0) || !isfinite(r->energy_J))
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "energy_J: %g is outside [0, inf)", r->energy_J);
    if (!(r->time_s >= 0.0) || !isfinite(r->time_s))
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "time_s: %g is outside [0, inf)", r->time_s);
    if ((unsigned)r->energy_src > (unsigned)QEIL_PROV_MODELED)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "energy_src: %d is outside 0..%d",
                             (int)r->energy_src, (int)QEIL_PROV_MODELED);
    if (acc->n_problems == UINT32_MAX)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "metrics: more than %u problems", UINT32_MAX);
    acc->n_problems++;
    acc->n_correct += (uint32_t)r->correct;
    acc->sum_samples += r->n_samples;
    acc->sum_tokens += r->n_tokens;
    acc->sum_energy_J += r->energy_J;
    acc->sum_time_s += r->time_s;
    /* a total is only as good as its weakest part */
    if (acc->n_problems == 1 || r->energy_src > acc->energy_src) acc->energy_src = r->energy_src;
    return QEIL_OK;
}

qeil_status qeil_metrics_summarize(qeil_ctx *ctx, const qeil_metrics_acc *acc,
                                   qeil_metrics_summary *out)
{
    if (!acc || !out) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "metrics_summarize: NULL argument");
    memset(out, 0, sizeof *out);
    if (acc->n_problems == 0)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "metrics: no problems added (need at least 1)");
    double np = (double)acc->n_problems;
    out->n_problems = acc->n_problems;
    out->accuracy = (double)acc->n_correct / np;
    out->accuracy_pct = 100.0 * out->accuracy;
    out->mean_samples = (double)acc->sum_samples / np;
    out->mean_tokens = (double)acc->sum_tokens / np;
    out->energy_per_problem_J = acc->sum_energy_J / np;
    out->latency_s = acc->sum_time_s / np;
    out->energy_src = acc->energy_src;
    out->power_valid = acc->sum_energy_J > 0.0 && acc->sum_time_s > 0.0;
    if (out->power_valid) {
        out->avg_power_W = acc->sum_energy_J / acc->sum_time_s;
        out->ipw = out->accuracy_pct / out->avg_power_W;
        out->ece = (double)acc->n_correct / acc->sum_energy_J;
        out->energy_per_token_J = acc->sum_tokens ? acc->sum_energy_J / (double)acc->sum_tokens : 0.0;
    }
    return QEIL_OK;
}
