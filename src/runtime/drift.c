/* drift.c — the online drift detector (include/qeil/runtime.h,
 * docs/runtime.md "Drift"): an EWMA of measured/predicted step time against
 * a baseline ratio, firing after several consecutive steps past a
 * threshold. */
#include <math.h>
#include <string.h>

#include "qeil/runtime.h"

qeil_drift_params qeil_drift_default_params(void)
{
    qeil_drift_params p;
    /* alpha 0.2: an effective memory of ~9 steps (2/alpha − 1), short
     * enough to follow a frequency cap within a request, long enough that
     * ±10 % step noise moves it by ~2.5 % (σ_ewma = σ·sqrt(α/(2−α))) */
    p.alpha = 0.2;
    /* 20 %: the default; twice the noise band the planner tolerates */
    p.threshold = 0.20;
    p.min_steps = 5;
    p.baseline = 1.0;
    return p;
}

qeil_status qeil_drift_init(qeil_ctx *ctx, qeil_drift *d, const qeil_drift_params *pp)
{
    if (!d) return qeil_ctx_fail(ctx, QEIL_ERR_INVALID, "drift: NULL detector");
    qeil_drift_params p = pp ? *pp : qeil_drift_default_params();
    if (!(p.alpha > 0 && p.alpha <= 1))
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "alpha: %g (allowed (0, 1])", p.alpha);
    if (!(p.threshold > 0 && p.threshold <= 10))
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "threshold: %g (allowed (0, 10])", p.threshold);
    if (p.min_steps < 1 || p.min_steps > 1000000)
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "min_steps: %u (allowed 1..1000000)",
                             p.min_steps);
    if (!(p.baseline > 0) || !isfinite(p.baseline))
        return qeil_ctx_fail(ctx, QEIL_ERR_RANGE, "baseline: %g (allowed > 0, finite)",
                             p.baseline);
    memset(d, 0, sizeof *d);
    d->p = p;
    d->ewma = p.baseline;
    d->baseline = p.baseline;
    return QEIL_OK;
}

int qeil_drift_observe(qeil_drift *d, double measured_s, double predicted_s, double *ratio)
{
    if (ratio) *ratio = 0;
    if (!d || !(measured_s > 0) || !(predicted_s > 0) || !isfinite(measured_s) ||
        !isfinite(predicted_s))
        return 0;
    const double r = measured_s / predicted_s;
    d->ewma = d->p.alpha * r + (1 - d->p.alpha) * d->ewma;
    d->steps++;
    const double drift = d->ewma / d->baseline - 1;
    if (ratio) *ratio = drift;
    /* a step counts when both the step itself and the EWMA are past the
     * threshold on the same side: one outlier (a page fault, a preempted
     * thread) lifts the EWMA for a few steps but is not itself repeated */
    const double step = r / d->baseline - 1;
    if (fabs(drift) > d->p.threshold && fabs(step) > d->p.threshold && (drift > 0) == (step > 0))
        d->over++;
    else
        d->over = 0;
    if (d->over < d->p.min_steps) return 0;
    /* fire once, then the current level is the new normal */
    d->fires++;
    d->baseline = d->ewma;
    d->over = 0;
    return 1;
}
